#!/usr/bin/env bash
# Install the external tools the Wharf test suite and benchmarks use, on Debian bookworm, as root.
# Idempotent: when every tool is already present, apt is not touched at all.
# It never starts a daemon (dockerd, docker-registry, notary-server): tests start what they need
# (scripts/start-dockerd.sh, /work/shared/tools/reference-stack.sh).
#
#   tool (command -v)  Debian package     used for
#   dockerd            docker.io          integration tests (docker push/pull, DOCKER_CONTENT_TRUST=1)
#   docker             docker.io          CLI; an already installed CLI earlier in PATH (e.g. /usr/local/bin/docker 28) stays first
#   skopeo             skopeo             OCI/multi-arch copies against the registry
#   notary             notary             notary 0.7 CLI (also provides notary-server, notary-signer)
#   notary-server      notary             reference trust server
#   docker-registry    docker-registry    reference registry (Distribution 2.8)
#   openssl curl jq    openssl curl jq    certificates, HTTP probes, JSON
#   wrk                wrk                benchmarks
#   chromium           chromium           headless browser for the web portal tests (crates/wharf/tests/common/browser.rs)
#   chromedriver       chromium-driver    W3C WebDriver server those tests drive chromium through
#   podman             podman             podman login/push/pull and manifest lists (rootful, vfs storage)
#   update-ca-certificates  ca-certificates
#   haproxy            haproxy            the load balancer in front of the replicas tests (crates/wharf/tests/replicas.rs)
#   gnuplot            gnuplot-nox        PNG plots of the soak test's samples (scripts/soak.sh)
#   sqlite3            sqlite3            the soak test's `PRAGMA integrity_check` on the stopped server's database
#   /usr/lib/postgresql/*/bin/initdb  postgresql  throw-away PostgreSQL for the metadata-store contract tests
#                                         (crates/wharf-testbed; Debian keeps the server binaries off PATH)
#   /usr/bin/python3 with cryptography + requests + nacl: python3 python3-cryptography python3-requests
#                                         python3-nacl (testdata/notary-capture scripts, e.g. crafted.py;
#                                         crates/wharf/tests/tools/cosign_key.py, cosign-format keys)
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: must run as root" >&2; exit 1
fi

# command -> package
declare -A pkg_of=(
  [dockerd]=docker.io [docker]=docker.io [containerd]=containerd [runc]=runc
  [skopeo]=skopeo [notary]=notary [notary-server]=notary [docker-registry]=docker-registry
  [openssl]=openssl [curl]=curl [jq]=jq [wrk]=wrk [update-ca-certificates]=ca-certificates
  [chromium]=chromium [chromedriver]=chromium-driver [podman]=podman
  [haproxy]=haproxy [gnuplot]=gnuplot-nox [sqlite3]=sqlite3
)

missing=()
for cmd in "${!pkg_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
done
# Python for the research/replay tools (Debian's interpreter, not whatever python3 comes first in PATH).
if ! /usr/bin/python3 -c 'import cryptography, requests, nacl.secret' >/dev/null 2>&1; then
  missing+=(python3 python3-cryptography python3-requests python3-nacl)
fi
# PostgreSQL server binaries (not on PATH in Debian, so checked by path, any version).
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all tools present, nothing to install"
else
  # unique package list
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "install-deps.sh: installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep maintainer scripts from starting docker / docker-registry services (invoke-rc.d and
  # deb-systemd-invoke both honour policy-rc.d). Only add one if none exists, and remove it again.
  added_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  trap '[ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  log=$(mktemp /tmp/install-deps.XXXXXX.log)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${pkgs[@]}"; } >"$log" 2>&1; then
    echo "install-deps.sh: apt failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  rm -f "$log"
fi

# Report what the tests will actually run (a docker CLI installed earlier in PATH, e.g.
# /usr/local/bin/docker 28.x, stays in front of Debian's /usr/bin/docker 20.10).
for cmd in docker dockerd skopeo notary notary-server docker-registry wrk chromium chromedriver podman haproxy gnuplot sqlite3; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "install-deps.sh: $cmd still missing" >&2; exit 1; }
done
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { echo "install-deps.sh: initdb (postgresql) still missing" >&2; exit 1; }
echo "install-deps.sh: docker CLI $(command -v docker) ($(docker --version 2>/dev/null | sed 's/^Docker version //')), dockerd $(dockerd --version 2>/dev/null | sed 's/^Docker version //'), $(skopeo --version), $(chromedriver --version 2>/dev/null | cut -d" " -f1,2)"

# Garage (S3 store for the S3 blob-store tests) is built with cargo, not apt.
"$(dirname "$0")/install-garage.sh"
