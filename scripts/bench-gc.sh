#!/usr/bin/env bash
# Garbage-collection benchmark: Wharf's online GC vs Debian's reference `docker-registry
# garbage-collect` (Distribution 2.8) on the same synthetic registry, both on local disk.
#
#   scripts/bench-gc.sh         # as root, like bench.sh (needs scripts/install-deps.sh)
#
# 1. Seeds the same registry into Wharf's embedded store (SQLite + disk) and into the
#    reference's filesystem layout (scripts/gc-bench-seed.py): BENCH_GC_MANIFESTS manifests
#    (default 100,000) in BENCH_GC_REPOS repositories (100), each with a config and two layer
#    blobs of its own (300,000 blobs), BENCH_GC_GARBAGE percent of them deleted (30): their
#    blobs are garbage, everything dated two days back.
# 2. Wharf: small manifest PUTs run in a loop from one client (scripts/gc-bench-client.py)
#    for BENCH_GC_IDLE seconds (20), then `POST /api/v1/gc` runs while they go on. Reports
#    the run's time (mark + sweep) and what it removed, and PUT latency p50 / p99 / max idle
#    vs during the run (target: p99 during GC within 2x of idle, no request blocked for the
#    whole run).
# 3. Reference: `docker-registry garbage-collect` on its copy, timed (it must run with the
#    registry stopped or read-only: no push latency to measure), and what it removed.
# Knobs: BENCH_SKIP_BUILD=1, BENCH_WHARF_BIN (another binary), BENCH_KEEP=1 (keep the temp dir),
# BENCH_GC_SKIP_REFERENCE=1 (Wharf only: the reference's run takes 10-15 minutes here).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
MANIFESTS=${BENCH_GC_MANIFESTS:-100000}
REPOS=${BENCH_GC_REPOS:-100}
GARBAGE=${BENCH_GC_GARBAGE:-30}
IDLE=${BENCH_GC_IDLE:-20}
PW=benchpw

log() { printf '[bench-gc %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wharf-bench-gc.XXXXXX")
WHARF_PID=
CLIENT_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2>/dev/null || true
  if [ -n "$WHARF_PID" ]; then kill "$WHARF_PID" 2>/dev/null || true; wait "$WHARF_PID" 2>/dev/null || true; fi
  if [ -n "${BENCH_KEEP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

for t in curl jq python3 docker-registry; do
  command -v "$t" >/dev/null || die "$t is missing (run scripts/install-deps.sh as root)"
done
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  log "cargo build --release -p wharf"
  cargo build --release -p wharf >&2 || die "build failed"
fi
WHARF_BIN=${BENCH_WHARF_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/wharf}
[ -x "$WHARF_BIN" ] || die "no binary at $WHARF_BIN"

WPORT=$(free_port)
W_URL=https://localhost:$WPORT
W_CA=$TMP/wharf/tls/ca.crt
start_wharf() {
  : >"$TMP/wharf.out"
  WHARF_ADMIN_PASSWORD=$PW WHARF_LISTEN=127.0.0.1:$WPORT WHARF_DATA_DIR=$TMP/wharf WHARF_LOG=warn \
    WHARF_AUTH_TOKEN_TTL_SECONDS=3600 "$WHARF_BIN" serve >"$TMP/wharf.out" 2>>"$TMP/wharf.err" &
  WHARF_PID=$!
  for _ in $(seq 1 600); do
    grep -q "Wharf is listening on" "$TMP/wharf.out" 2>/dev/null && return 0
    kill -0 "$WHARF_PID" 2>/dev/null || { cat "$TMP/wharf.err" >&2; die "Wharf exited at start-up"; }
    sleep 0.1
  done
  die "Wharf did not start within 60 s"
}
stop_wharf() { kill "$WHARF_PID"; wait "$WHARF_PID" 2>/dev/null || true; WHARF_PID=; }
token() {
  curl -fsS --max-time 10 --cacert "$W_CA" -u "admin:$PW" "$W_URL/token?service=wharf&scope=$1" | jq -er .token
}

# ---------------------------------------------------------------- seed
log "first start of Wharf (creates the schema), then stop"
start_wharf; stop_wharf
log "seeding $MANIFESTS manifests in $REPOS repositories ($GARBAGE % deleted) into both registries"
t0=$(now_ms)
SEEDED=$(python3 scripts/gc-bench-seed.py "$TMP/wharf" "$TMP/ref" "$MANIFESTS" "$REPOS" "$GARBAGE")
log "seeded in $(( ($(now_ms) - t0) / 1000 )) s: $SEEDED"
sync
count_files() { find "$1" -type f | wc -l; }
W_BLOBS_BEFORE=$(count_files "$TMP/wharf/storage/blobs")
R_BLOBS_BEFORE=$(find "$TMP/ref/docker/registry/v2/blobs" -name data -type f | wc -l)

# ---------------------------------------------------------------- Wharf: GC while pushing
start_wharf
ADMIN=$(token 'registry:admin:*') || die "no admin token"
PUSH=$(token 'repository:bench/lat:pull,push') || die "no push token"
CONFIG='{"bench":"latency"}'
CONFIG_DIGEST=sha256:$(printf '%s' "$CONFIG" | sha256sum | cut -d' ' -f1)
curl -fsS --cacert "$W_CA" -H "Authorization: Bearer $PUSH" -X POST --data-binary "$CONFIG" \
  "$W_URL/v2/bench/lat/blobs/uploads/?digest=$CONFIG_DIGEST" -o /dev/null || die "config upload failed"
log "PUT latency: ${IDLE} s idle, then during the collection"
python3 scripts/gc-bench-client.py localhost "$WPORT" "$W_CA" "$PUSH" bench/lat "$CONFIG_DIGEST" "${#CONFIG}" \
  "$TMP/latency.txt" "$TMP/stop" &
CLIENT_PID=$!
sleep "$IDLE"
GC_START=$(now_ms)
curl -fsS --max-time 3600 --cacert "$W_CA" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -X POST --data '{}' "$W_URL/api/v1/gc" >"$TMP/gc.json" || die "Wharf GC failed: $(cat "$TMP/gc.json")"
GC_END=$(now_ms)
sleep 2
touch "$TMP/stop"; wait "$CLIENT_PID" || die "latency client failed"; CLIENT_PID=
stop_wharf
W_BLOBS_AFTER=$(count_files "$TMP/wharf/storage/blobs")
read -r W_LAT_IDLE W_LAT_GC < <(python3 - "$TMP/latency.txt" "$GC_START" "$GC_END" <<'PY'
import sys
path, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
idle, during, bad = [], [], 0
for line in open(path):
    t, ms, status = line.split()
    if status != "201":
        bad += 1
    (during if start <= int(t) <= end else idle if int(t) < start else []).append(float(ms))
if bad:
    sys.exit(f"{bad} PUTs failed")
def stats(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return f"{len(xs)},{q(0.5):.2f},{q(0.99):.2f},{xs[-1]:.2f}"
print(stats(idle), stats(during))
PY
) || die "latency figures"

# ---------------------------------------------------------------- reference: offline GC
R_GC_MS=0; R_BLOBS_AFTER=-
if [ -z "${BENCH_GC_SKIP_REFERENCE:-}" ]; then
cat >"$TMP/ref.yml" <<EOC
version: 0.1
storage: {filesystem: {rootdirectory: $TMP/ref}, delete: {enabled: true}}
http: {addr: 127.0.0.1:0}
EOC
log "docker-registry garbage-collect (the registry must be stopped or read-only meanwhile)"
t0=$(now_ms)
docker-registry garbage-collect "$TMP/ref.yml" >"$TMP/ref-gc.log" 2>&1 || { tail -5 "$TMP/ref-gc.log" >&2; die "reference GC failed"; }
R_GC_MS=$(( $(now_ms) - t0 ))
R_BLOBS_AFTER=$(find "$TMP/ref/docker/registry/v2/blobs" -name data -type f | wc -l)
fi

# ---------------------------------------------------------------- report
W_GC_MS=$(( GC_END - GC_START ))
IFS=, read -r n_idle p50_idle p99_idle max_idle <<<"$W_LAT_IDLE"
IFS=, read -r n_gc p50_gc p99_gc max_gc <<<"$W_LAT_GC"
echo
echo "GC benchmark: $MANIFESTS manifests in $REPOS repositories, $((MANIFESTS * 3)) blobs, $GARBAGE % of the manifests deleted"
printf '%-46s %16s %16s %8s\n' "" "Wharf (online)" "docker-registry" "ratio"
if [ "$R_GC_MS" -gt 0 ]; then
  printf '%-46s %16s %16s %8s\n' "GC run, mark + sweep (s)" "$(awk "BEGIN{printf \"%.1f\", $W_GC_MS/1000}")" \
    "$(awk "BEGIN{printf \"%.1f\", $R_GC_MS/1000}")" "$(awk "BEGIN{printf \"%.2fx\", $R_GC_MS/$W_GC_MS}")"
else
  printf '%-46s %16s %16s\n' "GC run, mark + sweep (s)" "$(awk "BEGIN{printf \"%.1f\", $W_GC_MS/1000}")" "skipped"
fi
printf '%-46s %16s %16s\n' "blob files before -> after" "$W_BLOBS_BEFORE -> $W_BLOBS_AFTER" "$R_BLOBS_BEFORE -> $R_BLOBS_AFTER"
printf '%-46s %16s %16s\n' "Wharf report (links / blobs removed)" "$(jq -r '"\(.links_removed) / \(.blobs_removed)"' "$TMP/gc.json")" ""
printf '%-46s %16s %16s\n' "push: small manifest PUTs idle (n)" "$n_idle" "-"
printf '%-46s %16s %16s\n' "push p50 / p99 / max idle (ms)" "$p50_idle / $p99_idle / $max_idle" "-"
printf '%-46s %16s %16s\n' "push PUTs during GC (n)" "$n_gc" "read-only"
printf '%-46s %16s %16s\n' "push p50 / p99 / max during GC (ms)" "$p50_gc / $p99_gc / $max_gc" "read-only"
printf '%-46s %16s %16s\n' "p99 during GC / p99 idle (target <= 2x)" "$(awk "BEGIN{printf \"%.2fx\", $p99_gc/$p99_idle}")" ""
printf '%-46s %16s %16s\n' "longest PUT / GC run (target < 1)" "$(awk "BEGIN{printf \"%.3f\", $max_gc/$W_GC_MS}")" ""
