#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the real clients (docker/dockerd, skopeo,
# notary...), start a docker daemon if none answers, then run every test of the workspace.
# Needs root for the first two steps (it uses sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root bash scripts/install-deps.sh
as_root bash scripts/start-dockerd.sh
exec cargo test --workspace --locked "$@"
