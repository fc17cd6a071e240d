#!/usr/bin/env bash
# Side-by-side benchmark: Wharf vs Debian's reference docker-registry (Distribution 2.8) and, for
# content trust, Debian's notary-server 0.7 (both started by /work/shared/tools/reference-stack.sh).
#
#   scripts/bench.sh            # run from anywhere; needs root (install-deps.sh, start-dockerd.sh)
#
# Measures, in one run and on loopback only:
#   1. 1 GiB blob upload MB/s (one stream, monolithic PUT; Wharf also over h2)
#   2. 1 GiB blob download MB/s
#   3. manifest GET by tag req/s (wrk -t2 -c16 -d10s)
#   4. Wharf peak RSS (VmRSS sampled every 100 ms) and VmHWM during upload / download
#   5. content trust: GET req/s of timestamp.json and targets.json (wrk -t2 -c16 -d10s each) after one
#      GUN was published on each trust server with the real notary 0.7 CLI (init, add, publish)
#   6. content trust: added latency of a signed docker push over an unsigned one (BENCH_PUSHES, default
#      9, new tags of new one-file images, interleaved unsigned/signed after one untimed push of each
#      kind; median signed - median unsigned), for Wharf and for docker-registry + notary-server
#   7. signature policy: manifest GET by tag req/s with a pull-only token, no policy vs `enforce` with
#      DCT (3 delegations) and with cosign, and the first read after a publish (BENCH_SKIP_POLICY=1 skips)
# and prints figures, ratios Wharf/reference and the targets next to them.
# Environment knobs: BENCH_SIZE_MIB (default 1024), BENCH_WRK_SECONDS (default 10), BENCH_PUSHES
# (default 9), BENCH_SKIP_BUILD=1, BENCH_SKIP_DEPS=1, BENCH_SKIP_TRUST=1, BENCH_KEEP=1 (keep the temp dir),
# BENCH_SETTLE (seconds of quiet before each 1 GiB transfer, default 15; see settle),
# BENCH_PIN=1 (req/s runs: server on CPU 1, wrk on CPU 0; see wrk_get).
# MB = 10^6 bytes; MiB = 2^20 bytes.
# Scale-out (Wharf on PostgreSQL + Garage vs docker-registry on its s3 driver, catalog and tag
# list at 100,000): scripts/bench-scale.sh, or BENCH_SCALE=1 scripts/bench.sh (runs only that).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
[ -z "${BENCH_SCALE:-}" ] || exec bash "$REPO/scripts/bench-scale.sh"

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
PUSHES=${BENCH_PUSHES:-9}
XFER_TIMEOUT=150          # seconds allowed for one 1 GiB transfer
PW=benchpw
REPO_NAME=bench/x
TRUST_REPO=bench/app      # trust benchmarks: GUN localhost:PORT/bench/app on each stack

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- set-up / clean-up
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wharf-bench.XXXXXX")
WHARF_PID=
SAMPLER_PID=
REF_DIR=$TMP/reference
REF_STARTED=
DOCKER_TAGS=()            # images imported into dockerd by this run (removed on exit)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  if [ -n "$WHARF_PID" ]; then
    kill "$WHARF_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$WHARF_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$WHARF_PID" 2>/dev/null || true
  fi
  [ -n "$REF_STARTED" ] && bash /work/shared/tools/reference-stack.sh stop "$REF_DIR" >/dev/null 2>&1 || true
  if [ ${#DOCKER_TAGS[@]} -gt 0 ]; then
    printf '%s\n' "${DOCKER_TAGS[@]}" | xargs -r -n 50 docker rmi -f >/dev/null 2>&1 || true
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

# ---------------------------------------------------------------- tools and build
if [ -z "${BENCH_SKIP_DEPS:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    bash scripts/install-deps.sh >&2 || die "install-deps.sh failed"
  else
    log "not root: skipping scripts/install-deps.sh"
  fi
fi
for t in curl jq wrk openssl sha256sum docker-registry python3; do
  command -v "$t" >/dev/null || die "$t is missing (run scripts/install-deps.sh as root)"
done
if [ -z "${BENCH_SKIP_TRUST:-}" ]; then
  for t in notary notary-server docker dockerd tar; do
    command -v "$t" >/dev/null || die "$t is missing (run scripts/install-deps.sh as root, or BENCH_SKIP_TRUST=1)"
  done
  bash scripts/start-dockerd.sh >&2 || die "cannot start dockerd (scripts/start-dockerd.sh)"
fi
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  log "cargo build --release -p wharf"
  cargo build --release -p wharf >&2 || die "build failed"
fi
WHARF_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/wharf
[ -x "$WHARF_BIN" ] || die "no binary at $WHARF_BIN"

# ---------------------------------------------------------------- servers
WPORT=$(free_port)
log "starting Wharf on 127.0.0.1:$WPORT"
WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP=true WHARF_ADMIN_PASSWORD=$PW WHARF_LISTEN=127.0.0.1:$WPORT WHARF_DATA_DIR=$TMP/wharf-data WHARF_LOG=${WHARF_LOG:-warn} \
  "$WHARF_BIN" serve >"$TMP/wharf.out" 2>"$TMP/wharf.err" &
WHARF_PID=$!
for _ in $(seq 1 100); do
  grep -q "Wharf is listening on" "$TMP/wharf.out" 2>/dev/null && break
  kill -0 "$WHARF_PID" 2>/dev/null || { cat "$TMP/wharf.err" >&2; die "Wharf exited at start-up"; }
  sleep 0.1
done
grep -q "Wharf is listening on" "$TMP/wharf.out" || die "Wharf did not start within 10 s"
W_URL=https://localhost:$WPORT
W_CA=$TMP/wharf-data/tls/ca.crt
[ -f "$W_CA" ] || die "no Wharf CA at $W_CA"

RPORT=$(free_port); TPORT=$(free_port)
log "starting reference docker-registry on 127.0.0.1:$RPORT"
REF_STARTED=1
ref_env=$(REF_REGISTRY_PORT=$RPORT REF_TRUST_PORT=$TPORT bash /work/shared/tools/reference-stack.sh start "$REF_DIR")
eval "$ref_env"     # REF_REGISTRY REF_TRUST REF_CA
R_URL=https://$REF_REGISTRY
R_PID=$(cat "$REF_DIR/registry.pid")
curl -fsS --max-time 5 --cacert "$REF_CA" -o /dev/null "$R_URL/v2/" || die "reference registry not answering on $R_URL"

# ---------------------------------------------------------------- helpers
# Per-target auth: Wharf needs a bearer token (valid 300 s). Fetch it once and reuse it for
# up to 240 s, as a docker client would: every /token call runs an Argon2 password check whose
# memory shows up in Wharf's RSS, and that must not be billed to the transfer being sampled.
W_TOKEN=; W_TOKEN_AT=0
fetch_wharf_token() {
  curl -fsS --max-time 10 --cacert "$W_CA" -u "admin:$PW" \
    "$W_URL/token?service=wharf&scope=repository:$REPO_NAME:pull,push" | jq -er .token
}
wharf_token() {
  if [ -z "$W_TOKEN" ] || [ $((SECONDS - W_TOKEN_AT)) -gt 240 ]; then
    W_TOKEN=$(fetch_wharf_token) || die "could not get a Wharf token"; W_TOKEN_AT=$SECONDS
  fi
  printf '%s' "$W_TOKEN"
}
# target_args TARGET -> sets URL CA AUTH (array of curl args) PID
set_target() {
  case $1 in
    wharf) URL=$W_URL; CA=$W_CA; PID=$WHARF_PID; wharf_token >/dev/null; AUTH=(-H "Authorization: Bearer $W_TOKEN") ;;
    ref)   URL=$R_URL; CA=$REF_CA; PID=$R_PID; AUTH=() ;;
  esac
}

# RSS sampler: every 100 ms append VmRSS (kB) of $1 to $2.
start_sampler() {
  local pid=$1 out=$2
  : >"$out"
  ( while kill -0 "$pid" 2>/dev/null; do
      awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null >>"$out" || true
      sleep 0.1
    done ) &
  SAMPLER_PID=$!
}
stop_sampler() { [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"; }   # utime+stime
delta() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
peak_mib() { sort -n "$1" | tail -1 | awk '{printf "%.1f", $1/1024}'; }
hwm_mib() { awk '/^VmHWM:/{printf "%.1f", $2/1024}' "/proc/$1/status"; }

abs_location() {   # make a Location header absolute
  case $1 in http*) printf '%s' "$1" ;; *) printf '%s%s' "$URL" "$1" ;; esac
}

# timed_curl ARGS... -> curl's stdout in $TMP/xfer.out, stderr in $TMP/xfer.err, its user and
# system CPU seconds in $TMP/xfer.time (bash's `time`). curl shares the two cores with the
# server, so its CPU per GiB bounds what any server can show here; the table prints it.
timed_curl() {
  local TIMEFORMAT='%U %S'
  { time curl "$@" >"$TMP/xfer.out" 2>"$TMP/xfer.err"; } 2>"$TMP/xfer.time"
}
client_cpu() { awk '{printf "%.2f", $1+$2}' "$TMP/xfer.time"; }

# settle: before each 1 GiB transfer, write back everything dirty (`sync`) and then wait
# BENCH_SETTLE seconds (default 15). The `sync` keeps the previous step's writeback (the
# generated blob, the other server's upload) out of this transfer. The wait is for the
# host: this VM's disk is a file on it, and after a 1 GiB write the host keeps working on
# it for several seconds, taking CPU from this VM. Measured without the wait: whichever
# server ran second after an upload lost ~30% (Wharf 2.91 s and 3.6 CPU-s when second,
# 1.57 s and 1.8 CPU-s when first; the reference 6.6 s second vs 5.4 s first); with 15 s
# Wharf second took 1.99 s.
settle() {
  sync
  sleep "${BENCH_SETTLE:-15}"
}

# upload TARGET HTTPVER(1.1|2) FILE DIGEST -> prints "MB/s seconds curl-CPU-seconds"
upload() {
  local target=$1 ver=$2 file=$3 digest=$4 hdrs loc sep out code t size
  set_target "$target"
  hdrs=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X POST -D - -o /dev/null \
         "$URL/v2/$REPO_NAME/blobs/uploads/" | tr -d '\r')
  grep -q '^HTTP/[0-9.]* 202' <<<"$hdrs" || { log "upload start on $target failed:"; printf '%s\n' "$hdrs" >&2; return 1; }
  loc=$(abs_location "$(awk 'tolower($1)=="location:"{print $2}' <<<"$hdrs")")
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  timed_curl -sS --http"$ver" --max-time "$XFER_TIMEOUT" --cacert "$CA" "${AUTH[@]}" \
          -H 'Content-Type: application/octet-stream' -T "$file" -o "$TMP/put.body" \
          -w '%{http_code} %{time_total} %{size_upload} %{http_version}' \
          "$loc${sep}digest=$digest" || { log "upload to $target failed: $(cat "$TMP/xfer.err")"; return 1; }
  read -r code t size hv <<<"$(<"$TMP/xfer.out")"
  [ "$code" = 201 ] || { log "upload to $target: HTTP $code: $(head -c 300 "$TMP/put.body")"; return 1; }
  [ "$hv" = "$ver" ] || [ "$ver" = 1.1 ] || log "warning: asked for HTTP/$ver, curl used HTTP/$hv"
  awk -v s="$size" -v t="$t" -v c="$(client_cpu)" 'BEGIN{printf "%.1f %.2f %s\n", s/t/1e6, t, c}'
}

# download TARGET DIGEST -> prints "MB/s seconds curl-CPU-seconds"
download() {
  local target=$1 digest=$2 out code t size
  set_target "$target"
  timed_curl -sS -L --http1.1 --max-time "$XFER_TIMEOUT" --cacert "$CA" "${AUTH[@]}" -o /dev/null \
          -w '%{http_code} %{time_total} %{size_download}' \
          "$URL/v2/$REPO_NAME/blobs/$digest" || { log "download from $target failed: $(cat "$TMP/xfer.err")"; return 1; }
  read -r code t size <<<"$(<"$TMP/xfer.out")"
  [ "$code" = 200 ] || { log "download from $target: HTTP $code"; return 1; }
  [ "$size" = "$BYTES" ] || { log "download from $target: got $size bytes, expected $BYTES"; return 1; }
  awk -v s="$size" -v t="$t" -v c="$(client_cpu)" 'BEGIN{printf "%.1f %.2f %s\n", s/t/1e6, t, c}'
}

# small blob via monolithic POST ?digest=
put_small_blob() {
  local file=$1 digest=$2 code
  code=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X POST -H 'Content-Type: application/octet-stream' \
         --data-binary @"$file" -o "$TMP/post.body" -w '%{http_code}' \
         "$URL/v2/$REPO_NAME/blobs/uploads/?digest=$digest")
  if [ "$code" = 202 ]; then   # registry ignored ?digest=: finish with PUT
    log "POST ?digest= answered 202, falling back to POST+PUT"
    local hdrs loc sep
    hdrs=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X POST -D - -o /dev/null \
           "$URL/v2/$REPO_NAME/blobs/uploads/" | tr -d '\r')
    loc=$(abs_location "$(awk 'tolower($1)=="location:"{print $2}' <<<"$hdrs")")
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    code=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X PUT -H 'Content-Type: application/octet-stream' \
           --data-binary @"$file" -o "$TMP/post.body" -w '%{http_code}' "$loc${sep}digest=$digest")
  fi
  [ "$code" = 201 ] || { log "small blob upload: HTTP $code: $(head -c 300 "$TMP/post.body")"; return 1; }
}

put_manifest() {
  local code
  code=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X PUT \
         -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$TMP/manifest.json" \
         -o "$TMP/man.body" -w '%{http_code}' "$URL/v2/$REPO_NAME/manifests/latest")
  [ "$code" = 201 ] || { log "manifest PUT: HTTP $code: $(head -c 300 "$TMP/man.body")"; return 1; }
  code=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -H "Accept: $ACCEPT" -o "$TMP/man.get" \
         -w '%{http_code}' "$URL/v2/$REPO_NAME/manifests/latest")
  [ "$code" = 200 ] && cmp -s "$TMP/man.get" "$TMP/manifest.json" || { log "manifest GET check failed: HTTP $code"; return 1; }
}

# wrk_get NAME URL [wrk args (headers)...] -> prints "req/s p50 p99 non2xx"; full output in $TMP/wrk-NAME.txt
# The server under test is $PID. With BENCH_PIN=1 the server (all its threads) gets CPU 1 and wrk
# (one thread) CPU 0 for the run, so the load generator cannot take the server's CPU: on a 2-core
# machine req/s then compares the servers' own cost per request. Default: no pinning.
wrk_get() {
  local name=$1 url=$2 out rps non2xx p50 p99 pin=() threads=2 all; shift 2
  if [ -n "${BENCH_PIN:-}" ]; then
    all=0-$(($(nproc) - 1))
    taskset -a -cp 1 "$PID" >/dev/null || die "cannot pin $PID"
    pin=(taskset -c 0); threads=1
  fi
  out=$(timeout $((WRK_SECONDS + 20)) "${pin[@]}" wrk -t$threads -c16 -d"${WRK_SECONDS}s" --latency --timeout 5s "$@" "$url" 2>&1) \
    || { log "wrk $name failed: $out"; return 1; }
  [ -n "${BENCH_PIN:-}" ] && { taskset -a -cp "$all" "$PID" >/dev/null || die "cannot unpin $PID"; }
  printf '%s\n' "$out" >"$TMP/wrk-$name.txt"
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  [ "$non2xx" = 0 ] || log "warning: $name: $non2xx non-2xx responses during wrk"
  echo "$rps $p50 $p99 $non2xx"
}

# wrk_manifest TARGET -> prints "req/s p50 p99 non2xx"
wrk_manifest() {
  local target=$1
  set_target "$target"
  local hdr=() ; [ ${#AUTH[@]} -gt 0 ] && hdr=(-H "${AUTH[1]}")
  wrk_get "$target" "$URL/v2/$REPO_NAME/manifests/latest" "${hdr[@]}" -H "Accept: $ACCEPT"
}

# ---------------------------------------------------------------- content-trust helpers
# notary_cli TARGET ARGS... : the real notary 0.7 CLI against TARGET's trust server, one trust dir per
# target. Wharf's token service wants credentials, which notary 0.7 reads from stdin once per token.
notary_cli() {
  local target=$1; shift
  case $target in
    wharf) for _ in 1 2 3 4 5 6 7 8; do printf 'admin\n%s\n' "$PW"; done \
             | timeout 60 notary -s "$W_URL" --tlscacert "$W_CA" -d "$TMP/notary-wharf" "$@" ;;
    ref)   timeout 60 notary -s "$REF_TRUST" --tlscacert "$REF_CA" -d "$TMP/notary-ref" "$@" </dev/null ;;
  esac
}

# trust_url TARGET GUN FILE -> URL of a trust metadata file
trust_url() {
  case $1 in
    wharf) printf '%s/v2/%s/_trust/tuf/%s' "$W_URL" "$2" "$3" ;;
    ref)   printf '%s/v2/%s/_trust/tuf/%s' "$REF_TRUST" "$2" "$3" ;;
  esac
}

# now: wall clock seconds with ns resolution
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "n/a"; exit} if (NR%2) printf "%.3f", a[(NR+1)/2]; else printf "%.3f", (a[NR/2]+a[NR/2+1])/2 }'; }

# new_image REF: import a unique one-file image (a few hundred bytes) into dockerd as REF.
new_image() {
  local d; d=$(mktemp -d "$TMP/img.XXXXXX")
  mkdir -p "$d/root/etc"
  printf 'wharf bench %s %s %s\n' "$1" "$(now)" "$RANDOM" >"$d/root/etc/wharf-bench"
  tar -C "$d/root" -cf "$d/img.tar" . && docker import "$d/img.tar" "$1" >/dev/null || return 1
  DOCKER_TAGS+=("$1"); rm -rf "$d"
}

# timed_push TARGET signed|unsigned REF -> prints seconds; output in $TMP/push-*.log
timed_push() {
  local target=$1 kind=$2 ref=$3 t0 t1 logf env=()
  logf=$TMP/push-$target-$kind-${ref##*:}.log
  env=(DOCKER_CONFIG="$TMP/docker-$target")
  [ "$target" = ref ] && env+=(DOCKER_CONTENT_TRUST_SERVER="$REF_TRUST")
  if [ "$kind" = signed ]; then
    env+=(DOCKER_CONTENT_TRUST=1 DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=bench-root-pass
          DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=bench-repo-pass)
  else
    env+=(DOCKER_CONTENT_TRUST=0)
  fi
  t0=$(now)
  env -u DOCKER_CONTENT_TRUST_SERVER "${env[@]}" timeout 120 docker push "$ref" >"$logf" 2>&1 </dev/null \
    || { log "docker push ($kind) of $ref failed:"; tail -n 15 "$logf" >&2; return 1; }
  t1=$(now)
  if [ "$kind" = signed ]; then
    grep -q "Successfully signed" "$logf" || { log "signed push of $ref did not sign:"; tail -n 15 "$logf" >&2; return 1; }
  fi
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", b-a}'
}

# ---------------------------------------------------------------- test data
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY0=$(ps -eo comm= | grep -cxE 'rustc|cargo|cargo-clippy|clippy-driver' || true)
[ "${BUSY0:-0}" -gt 0 ] && log "warning: $BUSY0 cargo/rustc processes are running: figures will be noisy"
BYTES=$((SIZE_MIB * 1024 * 1024))
log "generating $SIZE_MIB MiB of random data (AES-CTR keystream) and hashing it"
# random_blob FILE -> writes $BYTES random bytes to FILE, prints their hex SHA-256
random_blob() {
  local hex
  # openssl dies of SIGPIPE when head has enough: expected, so no pipefail here.
  hex=$(set +o pipefail; openssl enc -aes-128-ctr -nosalt -pass "pass:wharf-bench-$$-$RANDOM" -pbkdf2 </dev/zero 2>/dev/null \
        | head -c "$BYTES" | tee "$1" | sha256sum | cut -d' ' -f1)
  [ "$(stat -c %s "$1")" = "$BYTES" ] && [[ $hex =~ ^[0-9a-f]{64}$ ]] || die "generating a test blob failed"
  printf '%s' "$hex"
}
BLOB=$TMP/blob.bin
HEX=$(random_blob "$BLOB")
DIGEST=sha256:$HEX

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}' "$DIGEST" >"$TMP/config.json"
CFG_DIGEST=sha256:$(sha256sum "$TMP/config.json" | cut -d' ' -f1)
CFG_SIZE=$(stat -c %s "$TMP/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
  "$CFG_DIGEST" "$CFG_SIZE" "$DIGEST" "$BYTES" >"$TMP/manifest.json"
ACCEPT='application/vnd.oci.image.manifest.v1+json'

# ---------------------------------------------------------------- measurements
# Targets run one after the other (never concurrently) so they do not share the 2 cores.
declare -A R
for target in ref wharf; do
  set_target "$target"
  log "[$target] upload 1 GiB over HTTP/1.1"
  R[$target.idle]=$(awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$PID/status")
  settle
  c0=$(cpu_s "$PID"); start_sampler "$PID" "$TMP/rss-$target-up.txt"
  read -r R[$target.up] R[$target.up_s] R[$target.up_ccpu] < <(upload "$target" 1.1 "$BLOB" "$DIGEST") || die "upload to $target failed"
  stop_sampler; R[$target.up_cpu]=$(delta "$c0" "$(cpu_s "$PID")")
  R[$target.up_peak]=$(peak_mib "$TMP/rss-$target-up.txt"); R[$target.up_hwm]=$(hwm_mib "$PID")

  if [ "$target" = wharf ]; then
    # Other bytes than the first upload: Wharf verifies content it already holds without
    # storing it again, so re-sending the first blob would not measure an upload. Made
    # here, after the HTTP/1.1 figures, so its page cache is not theirs to pay for.
    BLOB2=$TMP/blob2.bin
    DIGEST2=sha256:$(random_blob "$BLOB2")
    log "[$target] upload 1 GiB over HTTP/2"
    settle
    c0=$(cpu_s "$PID"); start_sampler "$PID" "$TMP/rss-$target-up2.txt"
    read -r R[$target.up2] R[$target.up2_s] R[$target.up2_ccpu] < <(upload "$target" 2 "$BLOB2" "$DIGEST2") || die "h2 upload to $target failed"
    stop_sampler; R[$target.up2_cpu]=$(delta "$c0" "$(cpu_s "$PID")")
    R[$target.up2_peak]=$(peak_mib "$TMP/rss-$target-up2.txt"); R[$target.up2_hwm]=$(hwm_mib "$PID")
  fi

  log "[$target] download 1 GiB"
  settle
  c0=$(cpu_s "$PID"); start_sampler "$PID" "$TMP/rss-$target-down.txt"
  read -r R[$target.down] R[$target.down_s] R[$target.down_ccpu] < <(download "$target" "$DIGEST") || die "download from $target failed"
  stop_sampler; R[$target.down_cpu]=$(delta "$c0" "$(cpu_s "$PID")")
  R[$target.down_peak]=$(peak_mib "$TMP/rss-$target-down.txt"); R[$target.down_hwm]=$(hwm_mib "$PID")

  log "[$target] manifest PUT, then wrk -t2 -c16 -d${WRK_SECONDS}s on GET by tag"
  put_small_blob "$TMP/config.json" "$CFG_DIGEST" || die "config blob upload to $target failed"
  put_manifest || die "manifest round trip on $target failed"
  c0=$(cpu_s "$PID")
  read -r R[$target.rps] R[$target.p50] R[$target.p99] R[$target.non2xx] < <(wrk_manifest "$target") || die "wrk on $target failed"
  R[$target.wrk_cpu]=$(delta "$c0" "$(cpu_s "$PID")")
done
# Informational: Wharf RSS after 6 more /token (Basic auth, Argon2) requests.
for _ in 1 2 3 4 5 6; do fetch_wharf_token >/dev/null || die "token request failed"; done
sleep 0.2
R[wharf.rss_tok]=$(awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$WHARF_PID/status")
rm -f "$BLOB" "${BLOB2:-}"

# ---------------------------------------------------------------- content trust
if [ -z "${BENCH_SKIP_TRUST:-}" ]; then
  printf 'wharf bench trust target %s\n' "$(now)" >"$TMP/target.txt"
  for target in ref wharf; do
    case $target in
      wharf) host=localhost:$WPORT; PID=$WHARF_PID ;;
      ref)   host=$REF_REGISTRY;    PID=$(cat "$REF_DIR/notary-server.pid") ;;
    esac
    gun=$host/$TRUST_REPO
    log "[$target] notary init / add / publish $gun"
    mkdir -p "$TMP/notary-$target"
    export NOTARY_ROOT_PASSPHRASE=bench-root-pass NOTARY_TARGETS_PASSPHRASE=bench-targets-pass \
           NOTARY_SNAPSHOT_PASSPHRASE=bench-snapshot-pass
    t0=$(now)
    for step in "init $gun" "add $gun v1 $TMP/target.txt" "publish $gun"; do
      # shellcheck disable=SC2086
      notary_cli "$target" $step >"$TMP/notary-$target.log" 2>&1 \
        || { cat "$TMP/notary-$target.log" >&2; die "notary $step on $target failed"; }
    done
    R[$target.publish_s]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')

    hdr=()
    if [ "$target" = wharf ]; then
      tok=$(curl -fsS --max-time 10 --cacert "$W_CA" -u "admin:$PW" \
            "$W_URL/token?service=wharf&scope=repository:$gun:pull" | jq -er .token) || die "no Wharf token for $gun"
      hdr=(-H "Authorization: Bearer $tok")
    fi
    ca=$W_CA; [ "$target" = ref ] && ca=$REF_CA
    for f in timestamp targets; do
      url=$(trust_url "$target" "$gun" "$f.json")
      code=$(curl -sS --max-time 10 --cacert "$ca" "${hdr[@]}" -o "$TMP/$target-$f.json" -w '%{http_code}' "$url")
      [ "$code" = 200 ] || die "GET $url: HTTP $code: $(head -c 300 "$TMP/$target-$f.json")"
      R[$target.$f.bytes]=$(stat -c %s "$TMP/$target-$f.json")
      # (not `notary list`: notary 0.7 read-only commands never prompt for credentials.)
      [ "$f" = timestamp ] || jq -e '.signed.targets.v1.length' "$TMP/$target-$f.json" >/dev/null \
        || die "$target: published targets.json has no target v1"
      log "[$target] wrk -t2 -c16 -d${WRK_SECONDS}s on GET $f.json (${R[$target.$f.bytes]} bytes)"
      c0=$(cpu_s "$PID")
      read -r R[$target.$f.rps] R[$target.$f.p50] R[$target.$f.p99] R[$target.$f.non2xx] \
        < <(wrk_get "trust-$target-$f" "$url" "${hdr[@]}") || die "wrk $f.json on $target failed"
      R[$target.$f.cpu]=$(delta "$c0" "$(cpu_s "$PID")")
    done
  done
  R[wharf.rss_trust]=$(awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$WHARF_PID/status")

  # Signed vs unsigned docker push. Each stack has its own DOCKER_CONFIG (credentials, trust keys and
  # cached trust data). localhost registries are insecure for docker, so the docker CLI also skips TLS
  # verification of their trust server; the CAs are installed in $DOCKER_CONFIG/tls/<host>/ anyway,
  # as a user of a private CA would.
  for target in ref wharf; do
    case $target in
      wharf) host=localhost:$WPORT; tsrv=localhost:$WPORT; ca=$W_CA ;;
      ref)   host=$REF_REGISTRY;    tsrv=${REF_TRUST#https://}; ca=$REF_CA ;;
    esac
    dc=$TMP/docker-$target
    mkdir -p "$dc/tls/$host" "$dc/tls/$tsrv"
    cp "$ca" "$dc/tls/$host/ca.crt"; cp "$ca" "$dc/tls/$tsrv/ca.crt"
    if [ "$target" = wharf ]; then
      printf '%s\n' "$PW" | DOCKER_CONFIG=$dc docker login "$host" -u admin --password-stdin >"$TMP/login.log" 2>&1 \
        || { cat "$TMP/login.log" >&2; die "docker login $host failed"; }
    fi
    img=$host/bench/pushed
    log "[$target] importing $((2 * PUSHES + 2)) one-file images"
    for i in $(seq 0 "$PUSHES"); do
      new_image "$img:u$i" || die "docker import failed"
      new_image "$img:s$i" || die "docker import failed"
    done
    log "[$target] untimed unsigned push, first signed push (creates the keys and initialises trust)"
    timed_push "$target" unsigned "$img:u0" >/dev/null || die "push to $target failed"
    R[$target.push_init]=$(timed_push "$target" signed "$img:s0") || die "first signed push to $target failed"
    log "[$target] $PUSHES x (unsigned push, signed push), interleaved"
    : >"$TMP/push-$target-unsigned.txt"; : >"$TMP/push-$target-signed.txt"
    for i in $(seq 1 "$PUSHES"); do
      timed_push "$target" unsigned "$img:u$i" >>"$TMP/push-$target-unsigned.txt" || die "unsigned push to $target failed"
      timed_push "$target" signed "$img:s$i" >>"$TMP/push-$target-signed.txt" || die "signed push to $target failed"
    done
    R[$target.push_u]=$(median <"$TMP/push-$target-unsigned.txt")
    R[$target.push_s]=$(median <"$TMP/push-$target-signed.txt")
    R[$target.push_add]=$(awk -v s="${R[$target.push_s]}" -v u="${R[$target.push_u]}" 'BEGIN{printf "%.3f", s-u}')
    R[$target.push_u_all]=$(tr '\n' ' ' <"$TMP/push-$target-unsigned.txt")
    R[$target.push_s_all]=$(tr '\n' ' ' <"$TMP/push-$target-signed.txt")
    log "[$target] unsigned: ${R[$target.push_u_all]}; signed: ${R[$target.push_s_all]}"
  done
fi

# ---------------------------------------------------------------- signature policy
# Manifest GET by tag with a pull-only token (a consumer's: no publisher exemption) with no
# policy, then under `enforce` with Docker Content Trust (trust data with three signing
# delegations) and with cosign (the skopeo-made signature of testdata/cosign). Verification
# is remembered, so the steady state is the cost of finding the current trust head / the
# .sig manifest on every read. Then the first read after each of 5 publishes (a new head:
# the chain is verified again), against the read right after it.
if [ -z "${BENCH_SKIP_POLICY:-}" ] && [ -z "${BENCH_SKIP_TRUST:-}" ]; then
  PID=$WHARF_PID
  admin_tok=$(curl -fsS --max-time 10 --cacert "$W_CA" -u "admin:$PW" \
              "$W_URL/token?service=wharf&scope=registry:admin:*" | jq -er .token) || die "no admin token"
  pull_tok() {
    curl -fsS --max-time 10 --cacert "$W_CA" -u "admin:$PW" \
      "$W_URL/token?service=wharf&scope=repository:$1:pull" | jq -er .token
  }
  set_policy() {  # RULES_JSON
    local v code
    v=$(curl -fsS --cacert "$W_CA" -H "Authorization: Bearer $admin_tok" "$W_URL/api/v1/signature-policy" | jq -er .version)
    code=$(curl -sS --cacert "$W_CA" -H "Authorization: Bearer $admin_tok" -X PUT -H 'Content-Type: application/json' \
           --data-binary "{\"version\":$v,\"rules\":$1}" -o "$TMP/policy.body" -w '%{http_code}' "$W_URL/api/v1/signature-policy")
    [ "$code" = 200 ] || die "policy PUT: HTTP $code: $(cat "$TMP/policy.body")"
  }
  wrk_tag() {  # NAME REPO TAG TOKEN
    wrk_get "$1" "$W_URL/v2/$2/manifests/$3" -H "Authorization: Bearer $4" -H "Accept: $ACCEPT"
  }
  gun=localhost:$WPORT/$REPO_NAME
  m_size=$(stat -c %s "$TMP/manifest.json"); m_hex=$(sha256sum "$TMP/manifest.json" | cut -d' ' -f1)
  export NOTARY_DELEGATION_PASSPHRASE=bench-delegation-pass
  log "[policy] trust data for $gun: targets + 3 delegations, each signing tag latest"
  notary_cli wharf init "$gun" >"$TMP/notary-policy.log" 2>&1 || { cat "$TMP/notary-policy.log" >&2; die "notary init $gun"; }
  for i in 1 2 3; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -x509 -days 30 \
      -subj "/CN=bench-d$i" -keyout "$TMP/d$i.key" -out "$TMP/d$i.crt" >/dev/null 2>&1 || die "openssl d$i"
    notary_cli wharf delegation add "$gun" "targets/d$i" "$TMP/d$i.crt" --all-paths >>"$TMP/notary-policy.log" 2>&1 \
      || { cat "$TMP/notary-policy.log" >&2; die "delegation add d$i"; }
    notary_cli wharf key import "$TMP/d$i.key" --role "targets/d$i" --gun "$gun" >>"$TMP/notary-policy.log" 2>&1 \
      || { cat "$TMP/notary-policy.log" >&2; die "key import d$i"; }
  done
  notary_cli wharf addhash "$gun" latest "$m_size" --sha256 "$m_hex" >>"$TMP/notary-policy.log" 2>&1 || die "addhash targets"
  notary_cli wharf addhash "$gun" latest "$m_size" --sha256 "$m_hex" --roles targets/d1 --roles targets/d2 --roles targets/d3 \
    >>"$TMP/notary-policy.log" 2>&1 || { cat "$TMP/notary-policy.log" >&2; die "addhash delegations"; }
  notary_cli wharf publish "$gun" >>"$TMP/notary-policy.log" 2>&1 || { cat "$TMP/notary-policy.log" >&2; die "publish $gun"; }

  log "[policy] cosign-signed image (testdata/cosign) as bench/c:v1"
  cos_tok=$(curl -fsS --max-time 10 --cacert "$W_CA" -u "admin:$PW" \
            "$W_URL/token?service=wharf&scope=repository:bench/c:pull,push" | jq -er .token) || die "no token"
  for f in "$REPO"/testdata/cosign/image-blobs/* "$REPO"/testdata/cosign/blobs/6e8fa0cee587ea5b8683a966f3ec67ffd39abedb9811abdee8655805cbb27b52; do
    code=$(curl -sS --cacert "$W_CA" -H "Authorization: Bearer $cos_tok" -X POST --data-binary @"$f" -o /dev/null \
           -w '%{http_code}' "$W_URL/v2/bench/c/blobs/uploads/?digest=sha256:$(basename "$f")")
    [ "$code" = 201 ] || die "cosign fixture blob upload: HTTP $code"
  done
  c_digest=$(cat "$REPO/testdata/cosign/image-digest.txt")
  for pair in "v1:image-manifest.json" "sha256-${c_digest#sha256:}.sig:signature-manifest.json"; do
    code=$(curl -sS --cacert "$W_CA" -H "Authorization: Bearer $cos_tok" -X PUT \
           -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
           --data-binary @"$REPO/testdata/cosign/${pair#*:}" -o /dev/null -w '%{http_code}' \
           "$W_URL/v2/bench/c/manifests/${pair%%:*}")
    [ "$code" = 201 ] || die "cosign fixture manifest PUT ${pair%%:*}: HTTP $code"
  done
  x_tok=$(pull_tok "$REPO_NAME") || die "no pull token"
  c_tok=$(pull_tok bench/c) || die "no pull token"

  set_policy '[]'
  log "[policy] off: wrk GET $REPO_NAME:latest and bench/c:v1 (pull-only token)"
  read -r R[pol.off.rps] R[pol.off.p50] R[pol.off.p99] _ < <(wrk_tag policy-off "$REPO_NAME" latest "$x_tok") || die "wrk"
  read -r R[pol.coff.rps] R[pol.coff.p50] R[pol.coff.p99] _ < <(wrk_tag policy-cosign-off bench/c v1 "$c_tok") || die "wrk"
  cosign_key=$(jq -Rs . <"$REPO/testdata/cosign/signer.pub")
  set_policy "[{\"scope\":\"repository:$REPO_NAME\",\"mode\":\"enforce\",\"dct\":{}},
               {\"scope\":\"repository:bench/c\",\"mode\":\"enforce\",\"cosign\":{\"keys\":[{\"name\":\"signer\",\"public_key\":$cosign_key}]}}]"
  code=$(curl -sS --cacert "$W_CA" -H "Authorization: Bearer $x_tok" -H "Accept: $ACCEPT" -o "$TMP/pol.get" -w '%{http_code}' \
         "$W_URL/v2/$REPO_NAME/manifests/latest")
  [ "$code" = 200 ] || die "enforce DCT: GET latest answered $code: $(head -c 300 "$TMP/pol.get")"
  log "[policy] enforce: wrk GET $REPO_NAME:latest (DCT) and bench/c:v1 (cosign)"
  read -r R[pol.dct.rps] R[pol.dct.p50] R[pol.dct.p99] R[pol.dct.non2xx] < <(wrk_tag policy-dct "$REPO_NAME" latest "$x_tok") || die "wrk"
  read -r R[pol.cos.rps] R[pol.cos.p50] R[pol.cos.p99] R[pol.cos.non2xx] < <(wrk_tag policy-cosign bench/c v1 "$c_tok") || die "wrk"

  log "[policy] first read after a publish (3 delegations) vs the next read, 5 times"
  : >"$TMP/pol-first.txt"; : >"$TMP/pol-next.txt"
  for i in 1 2 3 4 5; do
    notary_cli wharf addhash "$gun" "extra$i" 10 --sha256 "$(printf 'extra%s' "$i" | sha256sum | cut -d' ' -f1)" -p \
      >>"$TMP/notary-policy.log" 2>&1 || die "publish extra$i"
    for out in first next; do
      curl -sS --cacert "$W_CA" -H "Authorization: Bearer $x_tok" -H "Accept: $ACCEPT" -o /dev/null \
        -w '%{time_starttransfer}\n' "$W_URL/v2/$REPO_NAME/manifests/latest" >>"$TMP/pol-$out.txt"
    done
  done
  R[pol.first]=$(awk '{print $1*1000}' "$TMP/pol-first.txt" | median)
  R[pol.next]=$(awk '{print $1*1000}' "$TMP/pol-next.txt" | median)
  set_policy '[]'
fi

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0 > 0) printf "%.2fx", a/b; else print "n/a" }'; }
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN{ if (b+0 > 0 && a/b >= t) print "met"; else print "MISSED" }'; }
echo
echo "Wharf vs reference docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}') — $SIZE_MIB MiB blob, loopback TLS, $(nproc) cores, $(date -u +%FT%TZ)"
fmt='%-38s %14s %14s %9s  %-8s %s\n'
printf "$fmt" "metric" "wharf" "reference" "ratio" "target" "status"
printf "$fmt" "--------------------------------------" "--------------" "--------------" "---------" "--------" "------"
printf "$fmt" "upload MB/s (HTTP/1.1, monolithic PUT)" "${R[wharf.up]}" "${R[ref.up]}" "$(ratio "${R[wharf.up]}" "${R[ref.up]}")" ">= 5x" "$(verdict "${R[wharf.up]}" "${R[ref.up]}" 5)"
printf "$fmt" "upload MB/s (Wharf HTTP/2 vs ref h1)" "${R[wharf.up2]}" "${R[ref.up]}" "$(ratio "${R[wharf.up2]}" "${R[ref.up]}")" "(info)" ""
printf "$fmt" "download MB/s" "${R[wharf.down]}" "${R[ref.down]}" "$(ratio "${R[wharf.down]}" "${R[ref.down]}")" ">= 2x" "$(verdict "${R[wharf.down]}" "${R[ref.down]}" 2)"
printf "$fmt" "manifest GET by tag req/s (c16)" "${R[wharf.rps]}" "${R[ref.rps]}" "$(ratio "${R[wharf.rps]}" "${R[ref.rps]}")" ">= 10x" "$(verdict "${R[wharf.rps]}" "${R[ref.rps]}" 10)"
printf "$fmt" "  manifest GET latency p50 / p99" "${R[wharf.p50]}/${R[wharf.p99]}" "${R[ref.p50]}/${R[ref.p99]}" "" "" ""
rss_status=$(awk -v a="${R[wharf.up_peak]}" 'BEGIN{ print (a < 64) ? "met" : "MISSED" }')
printf "$fmt" "peak RSS MiB during upload h1.1 (HWM)" "${R[wharf.up_peak]} (${R[wharf.up_hwm]})" "${R[ref.up_peak]} (${R[ref.up_hwm]})" "" "< 64 MiB" "$rss_status"
printf "$fmt" "peak RSS MiB during upload h2 (HWM)" "${R[wharf.up2_peak]} (${R[wharf.up2_hwm]})" "" "" "" ""
printf "$fmt" "peak RSS MiB during download (HWM)" "${R[wharf.down_peak]} (${R[wharf.down_hwm]})" "${R[ref.down_peak]} (${R[ref.down_hwm]})" "" "" ""
printf "$fmt" "transfer seconds up h1 / h2 / down" "${R[wharf.up_s]}/${R[wharf.up2_s]}/${R[wharf.down_s]}" "${R[ref.up_s]}/-/${R[ref.down_s]}" "" "" ""
printf "$fmt" "server CPU s: up h1 / h2 / down" "${R[wharf.up_cpu]}/${R[wharf.up2_cpu]}/${R[wharf.down_cpu]}" "${R[ref.up_cpu]}/-/${R[ref.down_cpu]}" "" "" ""
printf "$fmt" "client (curl) CPU s: up h1 / h2 / down" "${R[wharf.up_ccpu]}/${R[wharf.up2_ccpu]}/${R[wharf.down_ccpu]}" "${R[ref.up_ccpu]}/-/${R[ref.down_ccpu]}" "" "" ""
printf "$fmt" "server CPU s per 1k manifest GETs" \
  "$(awk -v c="${R[wharf.wrk_cpu]}" -v r="${R[wharf.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f", c/(r*d/1000)}')" \
  "$(awk -v c="${R[ref.wrk_cpu]}" -v r="${R[ref.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f", c/(r*d/1000)}')" "" "" ""
printf "$fmt" "RSS MiB idle before / after +6 /token" "${R[wharf.idle]} / ${R[wharf.rss_tok]}" "${R[ref.idle]}" "" "" ""
if [ -z "${BENCH_SKIP_TRUST:-}" ]; then
  echo
  echo "Content trust: Wharf vs reference notary-server $(dpkg-query -W -f='${Version}' notary 2>/dev/null || echo 0.7) (memory storage, no auth) + docker-registry; docker $(docker version --format '{{.Client.Version}}/{{.Server.Version}}' 2>/dev/null)"
  printf "$fmt" "metric" "wharf" "reference" "ratio" "target" "status"
  printf "$fmt" "--------------------------------------" "--------------" "--------------" "---------" "--------" "------"
  for f in timestamp targets; do
    printf "$fmt" "trust GET $f.json req/s (c16)" "${R[wharf.$f.rps]}" "${R[ref.$f.rps]}" "$(ratio "${R[wharf.$f.rps]}" "${R[ref.$f.rps]}")" ">= 2x" "$(verdict "${R[wharf.$f.rps]}" "${R[ref.$f.rps]}" 2)"
    printf "$fmt" "  latency p50 / p99" "${R[wharf.$f.p50]}/${R[wharf.$f.p99]}" "${R[ref.$f.p50]}/${R[ref.$f.p99]}" "" "" ""
    printf "$fmt" "  server CPU s per 1k GETs; bytes" \
      "$(awk -v c="${R[wharf.$f.cpu]}" -v r="${R[wharf.$f.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f", c/(r*d/1000)}'); ${R[wharf.$f.bytes]}" \
      "$(awk -v c="${R[ref.$f.cpu]}" -v r="${R[ref.$f.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f", c/(r*d/1000)}'); ${R[ref.$f.bytes]}" "" "" ""
  done
  printf "$fmt" "notary init+add+publish s (3 CLI runs)" "${R[wharf.publish_s]}" "${R[ref.publish_s]}" "" "" ""
  printf "$fmt" "docker push s, unsigned (median of $PUSHES)" "${R[wharf.push_u]}" "${R[ref.push_u]}" "$(ratio "${R[wharf.push_u]}" "${R[ref.push_u]}")" "" ""
  printf "$fmt" "docker push s, signed (median of $PUSHES)" "${R[wharf.push_s]}" "${R[ref.push_s]}" "$(ratio "${R[wharf.push_s]}" "${R[ref.push_s]}")" "" ""
  push_status=$(awk -v a="${R[wharf.push_add]}" -v b="${R[ref.push_add]}" 'BEGIN{ print (a <= b) ? "met" : "MISSED" }')
  printf "$fmt" "added s of signing (signed - unsigned)" "${R[wharf.push_add]}" "${R[ref.push_add]}" "$(ratio "${R[wharf.push_add]}" "${R[ref.push_add]}")" "<= ref" "$push_status"
  printf "$fmt" "first signed push s (key gen + init)" "${R[wharf.push_init]}" "${R[ref.push_init]}" "" "" ""
  printf "$fmt" "Wharf RSS MiB after trust benchmarks" "${R[wharf.rss_trust]}" "" "" "" ""
  printf 'push seconds, wharf unsigned: %s| signed: %s\n' "${R[wharf.push_u_all]}" "${R[wharf.push_s_all]}"
  printf 'push seconds, ref   unsigned: %s| signed: %s\n' "${R[ref.push_u_all]}" "${R[ref.push_s_all]}"
fi
if [ -z "${BENCH_SKIP_POLICY:-}" ] && [ -z "${BENCH_SKIP_TRUST:-}" ]; then
  echo
  echo "Signature policy: manifest GET by tag (c16, pull-only token); the reference registry has no such policy"
  printf "$fmt" "metric" "wharf" "compared to" "ratio" "target" "status"
  printf "$fmt" "--------------------------------------" "--------------" "--------------" "---------" "--------" "------"
  printf "$fmt" "req/s, no policy" "${R[pol.off.rps]}" "" "" "" ""
  printf "$fmt" "req/s, enforce DCT (3 delegations)" "${R[pol.dct.rps]}" "${R[pol.off.rps]}" "$(ratio "${R[pol.dct.rps]}" "${R[pol.off.rps]}")" ">= 0.67x" "$(verdict "${R[pol.dct.rps]}" "${R[pol.off.rps]}" 0.67)"
  printf "$fmt" "  vs reference registry (no policy)" "${R[pol.dct.rps]}" "${R[ref.rps]}" "$(ratio "${R[pol.dct.rps]}" "${R[ref.rps]}")" ">= 10x" "$(verdict "${R[pol.dct.rps]}" "${R[ref.rps]}" 10)"
  printf "$fmt" "  latency p50 / p99" "${R[pol.dct.p50]}/${R[pol.dct.p99]}" "${R[pol.off.p50]}/${R[pol.off.p99]}" "" "" ""
  printf "$fmt" "req/s, no policy (cosign image)" "${R[pol.coff.rps]}" "" "" "" ""
  printf "$fmt" "req/s, enforce cosign" "${R[pol.cos.rps]}" "${R[pol.coff.rps]}" "$(ratio "${R[pol.cos.rps]}" "${R[pol.coff.rps]}")" ">= 0.67x" "$(verdict "${R[pol.cos.rps]}" "${R[pol.coff.rps]}" 0.67)"
  printf "$fmt" "  vs reference registry (no policy)" "${R[pol.cos.rps]}" "${R[ref.rps]}" "$(ratio "${R[pol.cos.rps]}" "${R[ref.rps]}")" ">= 10x" "$(verdict "${R[pol.cos.rps]}" "${R[ref.rps]}" 10)"
  printf "$fmt" "  latency p50 / p99" "${R[pol.cos.p50]}/${R[pol.cos.p99]}" "${R[pol.coff.p50]}/${R[pol.coff.p99]}" "" "" ""
  printf "$fmt" "ms to first byte: first read after a" "${R[pol.first]}" "${R[pol.next]}" "" "(info)" ""
  printf "$fmt" "  publish (DCT verified) / next read" "" "" "" "" ""
fi
printf 'load average at start / end: %s / %s; other cargo/rustc processes at start: %s\n' "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$BUSY0"
if [ -n "${BENCH_PIN:-}" ]; then
  echo "req/s runs pinned (BENCH_PIN=1): server on CPU 1, wrk -t1 on CPU 0"
else
  echo "req/s runs unpinned: wrk -t2 shares the CPUs with the server"
fi
echo "(MB = 10^6 bytes; RSS sampled every 100 ms from /proc/<pid>/status; VmHWM is cumulative since the server started.)"
