#!/usr/bin/env bash
# Start a docker daemon for the integration tests unless one already answers. Idempotent and safe
# to call concurrently (flock). Leaves dockerd running in the background; it is never stopped here.
#
#   dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none
#
# vfs: works on any filesystem, no overlay/kernel module needed. --iptables/--ip6tables=false and
# --bridge=none: dockerd does not touch the host firewall or create docker0 (registry tests never
# need container networking; `docker run` works with --network none or --network host).
#
# Environment (all optional):
#   DOCKER_HOST          unix:///path.sock to use another socket (default /var/run/docker.sock)
#   DOCKERD_DATA_ROOT    default /var/lib/docker
#   DOCKERD_EXEC_ROOT    default /var/run/docker
#   DOCKERD_PIDFILE      default /var/run/docker.pid
#   DOCKERD_LOG          default /tmp/wharf-dockerd.log
#   DOCKERD_TIMEOUT      seconds to wait for the daemon to answer, default 60
#   DOCKERD_EXTRA_ARGS   extra dockerd flags, e.g. "--insecure-registry=myhost:5000"
set -euo pipefail

log=${DOCKERD_LOG:-/tmp/wharf-dockerd.log}
data_root=${DOCKERD_DATA_ROOT:-/var/lib/docker}
exec_root=${DOCKERD_EXEC_ROOT:-/var/run/docker}
pidfile=${DOCKERD_PIDFILE:-/var/run/docker.pid}
timeout=${DOCKERD_TIMEOUT:-60}

host_args=()
sock=/var/run/docker.sock
if [ -n "${DOCKER_HOST:-}" ]; then
  case "$DOCKER_HOST" in
    unix://*) sock=${DOCKER_HOST#unix://}; host_args=(-H "$DOCKER_HOST") ;;
    *) echo "start-dockerd.sh: DOCKER_HOST=$DOCKER_HOST is not a unix socket; start that daemon yourself" >&2; exit 1 ;;
  esac
fi

answers() {
  if command -v docker >/dev/null 2>&1; then
    docker -H "unix://$sock" version --format '{{.Server.Version}}' >/dev/null 2>&1
  else
    curl -sf --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
  fi
}

answers && exit 0

command -v dockerd >/dev/null 2>&1 || {
  echo "start-dockerd.sh: dockerd not found (Debian package docker.io); run scripts/install-deps.sh as root" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "start-dockerd.sh: dockerd must be started as root" >&2; exit 1; }

mkdir -p "$(dirname "$log")" "$(dirname "$pidfile")"
exec 9>"$pidfile.start-lock"
flock -w "$timeout" 9 || { echo "start-dockerd.sh: timed out waiting for $pidfile.start-lock" >&2; exit 1; }
# Another caller may have started it while we waited for the lock.
answers && exit 0

alive_pid=
if [ -s "$pidfile" ]; then
  p=$(cat "$pidfile")
  if kill -0 "$p" 2>/dev/null && grep -q dockerd "/proc/$p/cmdline" 2>/dev/null; then
    alive_pid=$p     # a dockerd is already starting (or hung): wait for it instead of starting another
  else
    rm -f "$pidfile" # stale pidfile would make dockerd refuse to start
  fi
fi

start=$(date +%s.%N)
if [ -z "$alive_pid" ]; then
  echo "=== start-dockerd.sh $(date -u +%FT%TZ)" >>"$log"
  # shellcheck disable=SC2086
  setsid dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root "$data_root" --exec-root "$exec_root" --pidfile "$pidfile" "${host_args[@]}" \
    ${DOCKERD_EXTRA_ARGS:-} </dev/null >>"$log" 2>&1 9>&- &   # 9>&-: dockerd must not inherit the lock
  alive_pid=$!
fi

deadline=$(( $(date +%s) + timeout ))
until answers; do
  if ! kill -0 "$alive_pid" 2>/dev/null; then
    echo "start-dockerd.sh: dockerd (pid $alive_pid) exited before answering; see $log:" >&2
    tail -n 20 "$log" >&2; exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "start-dockerd.sh: dockerd (pid $alive_pid) did not answer on $sock within ${timeout}s; see $log" >&2
    tail -n 20 "$log" >&2; exit 1
  fi
  sleep 0.1
done
echo "start-dockerd.sh: dockerd pid $(cat "$pidfile" 2>/dev/null || echo "$alive_pid") answering on $sock after $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s (log $log)"
