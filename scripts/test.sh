#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the real clients and servers (docker/dockerd,
# skopeo, notary, PostgreSQL, Garage, HAProxy...), start a docker daemon if none answers, run
# every test of the workspace on the embedded default (SQLite + local disk), then the
# integration suite once more with every server on PostgreSQL + Garage S3
# (WHARF_TEST_BACKEND=postgres-s3; each test server gets its own database and bucket).
# Needs root for the first two steps (it uses sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root bash scripts/install-deps.sh
as_root bash scripts/start-dockerd.sh
cargo test --workspace --locked "$@"
echo "== the integration suite again, on PostgreSQL + Garage S3 =="
WHARF_TEST_BACKEND=postgres-s3 exec cargo test -p wharf --locked "$@"
