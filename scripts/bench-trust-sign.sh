#!/usr/bin/env bash
# Signing benchmark (issue 15): the tags of one repository signed with Docker Content Trust
# by ONE `wharf trust sign` call (one publish) vs a loop of `docker trust sign`, against the
# same Wharf in the same run; plus the time of one `wharf trust sign` of a single tag.
#
#   scripts/bench-trust-sign.sh      # as root, like bench.sh (needs scripts/install-deps.sh)
#
# Knobs: BENCH_TRUST_TAGS (tags for the wharf batch, default 1000), BENCH_TRUST_DOCKER_TAGS
# (tags for the docker loop, default the same; about a second each), BENCH_SKIP_BUILD=1,
# BENCH_WHARF_BIN (another binary), BENCH_KEEP=1 (keep the temp dir).
# Reports seconds per signed tag for both and their ratio (target: wharf batch >= 20x faster),
# and checks with `docker trust inspect` that every tag came out signed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
N=${BENCH_TRUST_TAGS:-1000}
M=${BENCH_TRUST_DOCKER_TAGS:-$N}
PW=benchpw
export DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=bench-root-pass
export DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=bench-repo-pass

log() { printf '[bench-trust-sign %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wharf-bench-sign.XXXXXX")
WHARF_PID=
IMAGES=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$WHARF_PID" ]; then kill "$WHARF_PID" 2>/dev/null || true; wait "$WHARF_PID" 2>/dev/null || true; fi
  [ ${#IMAGES[@]} -gt 0 ] && docker rmi -f "${IMAGES[@]}" >/dev/null 2>&1 || true
  if [ -n "${BENCH_KEEP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

for t in curl jq python3 docker; do
  command -v "$t" >/dev/null || die "$t is missing (run scripts/install-deps.sh as root)"
done
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  log "cargo build --release -p wharf"
  cargo build --release -p wharf >&2 || die "build failed"
fi
WHARF_BIN=${BENCH_WHARF_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/wharf}
[ -x "$WHARF_BIN" ] || die "no binary at $WHARF_BIN"

PORT=$(free_port)
HOST=localhost:$PORT
log "starting Wharf on $HOST"
WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP=true WHARF_ADMIN_PASSWORD=$PW WHARF_LISTEN=127.0.0.1:$PORT \
  WHARF_DATA_DIR=$TMP/data WHARF_LOG=warn "$WHARF_BIN" serve >"$TMP/wharf.out" 2>"$TMP/wharf.err" &
WHARF_PID=$!
for _ in $(seq 1 100); do
  grep -q "Wharf is listening on" "$TMP/wharf.out" 2>/dev/null && break
  kill -0 "$WHARF_PID" 2>/dev/null || { cat "$TMP/wharf.err" >&2; die "Wharf exited at start-up"; }
  sleep 0.1
done
CA=$TMP/data/tls/ca.crt
[ -f "$CA" ] || die "Wharf did not start"

# One Docker config for both clients: wharf's login is docker's, the trust keys are shared.
export DOCKER_CONFIG=$TMP/docker
mkdir -p "$DOCKER_CONFIG/tls/$HOST"
cp "$CA" "$DOCKER_CONFIG/tls/$HOST/ca.crt"
printf '%s\n' "$PW" | "$WHARF_BIN" login "$HOST" -u admin --password-stdin --ca-file "$CA" >/dev/null \
  || die "wharf login failed"

IMG=$HOST/bench/sign
d=$TMP/img; mkdir -p "$d/root/etc"
printf 'wharf signing bench %s\n' "$(now)" >"$d/root/etc/wharf-bench"
tar -C "$d/root" -cf "$d/img.tar" . && docker import "$d/img.tar" "$IMG:base" >/dev/null || die "docker import failed"
IMAGES+=("$IMG:base")
log "first signed push (creates the root and repository keys, initialises trust)"
DOCKER_CONTENT_TRUST=1 docker push "$IMG:base" >"$TMP/push.log" 2>&1 || { cat "$TMP/push.log" >&2; die "signed push failed"; }

# The wharf tags: the same manifest under N tags, through the registry API.
TOKEN=$(curl -fsS --cacert "$CA" -u "admin:$PW" \
  "https://$HOST/token?service=wharf&scope=repository:bench/sign:pull,push" | jq -r .token)
ACCEPT=application/vnd.docker.distribution.manifest.v2+json
curl -fsS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H "Accept: $ACCEPT" \
  -o "$TMP/manifest.json" "https://$HOST/v2/bench/sign/manifests/base" || die "manifest GET failed"
log "tagging $N tags for wharf"
for i in $(seq 0 $((N - 1))); do
  curl -fsS --cacert "$CA" -X PUT -H "Authorization: Bearer $TOKEN" -H "Content-Type: $ACCEPT" \
    --data-binary "@$TMP/manifest.json" "https://$HOST/v2/bench/sign/manifests/w$i" -o /dev/null \
    || die "manifest PUT w$i failed"
done

refs=()
for i in $(seq 0 $((N - 1))); do refs+=("$IMG:w$i"); done
log "wharf trust sign: $N tags in one call"
t0=$(now)
"$WHARF_BIN" trust sign "${refs[@]}" >"$TMP/wharf-sign.log" 2>&1 || { tail "$TMP/wharf-sign.log" >&2; die "wharf trust sign failed"; }
t1=$(now)
WHARF_BATCH=$(secs "$t0" "$t1")
log "wharf trust sign: one tag"
t0=$(now)
"$WHARF_BIN" trust sign "$IMG:w0" >/dev/null 2>"$TMP/wharf-one.log" || { cat "$TMP/wharf-one.log" >&2; die "single sign failed"; }
t1=$(now)
WHARF_ONE=$(secs "$t0" "$t1")

log "docker trust sign: $M tags, one call each"
for i in $(seq 0 $((M - 1))); do
  docker tag "$IMG:base" "$IMG:d$i"; IMAGES+=("$IMG:d$i")
done
t0=$(now)
for i in $(seq 0 $((M - 1))); do
  docker trust sign "$IMG:d$i" >"$TMP/docker-sign.log" 2>&1 || { cat "$TMP/docker-sign.log" >&2; die "docker trust sign d$i failed"; }
done
t1=$(now)
DOCKER_LOOP=$(secs "$t0" "$t1")

SIGNED=$(docker trust inspect "$IMG" | jq '.[0].SignedTags | length')
EXPECTED=$((N + M + 1))
[ "$SIGNED" = "$EXPECTED" ] || die "docker trust inspect lists $SIGNED signed tags, expected $EXPECTED"

awk -v n="$N" -v m="$M" -v wb="$WHARF_BATCH" -v w1="$WHARF_ONE" -v dl="$DOCKER_LOOP" -v signed="$SIGNED" 'BEGIN{
  wp = wb / n; dp = dl / m;
  printf "\nSigning benchmark: Docker Content Trust, one repository, %d signed tags checked with docker trust inspect\n", signed
  printf "%-46s %12s %14s\n", "", "total (s)", "per tag (ms)"
  printf "%-46s %12.2f %14.2f\n", sprintf("wharf trust sign, %d tags in one call", n), wb, wp * 1000
  printf "%-46s %12.2f %14.2f\n", "wharf trust sign, one tag", w1, w1 * 1000
  printf "%-46s %12.2f %14.2f\n", sprintf("docker trust sign, %d tags one by one", m), dl, dp * 1000
  printf "%-46s %12.1fx  (target >= 20x)\n", "docker per tag / wharf batch per tag", dp / wp
}'
