#!/usr/bin/env bash
# Install Garage 2.x (S3-compatible object store) for the S3 blob-store tests
# (crates/wharf-testbed/src/garage.rs starts a one-node cluster from it), as root.
# Idempotent: when /var/cache/wharf-tools/garage/bin/garage already reports 2.x, nothing is done.
# Building from source takes 15–25 minutes on two cores.
set -euo pipefail

root=/var/cache/wharf-tools/garage
bin=$root/bin/garage

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -Eq '(^|[ :v])2\.'; then
  echo "install-garage.sh: $("$bin" --version 2>/dev/null | head -n1) already at $bin"
  exit 0
fi
command -v cargo >/dev/null 2>&1 || { echo "install-garage.sh: cargo is needed to build Garage" >&2; exit 1; }
echo "install-garage.sh: building Garage 2.5.0 into $root"
cargo install garage --locked --version 2.5.0 --root "$root"
"$bin" --version
