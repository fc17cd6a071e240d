#!/usr/bin/env bash
# Side-by-side benchmark: Wharf vs Debian's reference docker-registry (Distribution 2.8).
#
#   scripts/bench.sh            # run from anywhere; needs root for install-deps.sh on first use
#
# Measures, in one run and on loopback only:
#   1. 1 GiB blob upload MB/s (one stream, monolithic PUT; Wharf also over h2)
#   2. 1 GiB blob download MB/s
#   3. manifest GET by tag req/s (wrk -t2 -c16 -d10s)
#   4. Wharf peak RSS (VmRSS sampled every 100 ms) and VmHWM during upload / download
# and prints figures, ratios Wharf/reference and the targets next to them.
# Environment knobs: BENCH_SIZE_MIB (default 1024), BENCH_WRK_SECONDS (default 10),
# BENCH_SKIP_BUILD=1, BENCH_SKIP_DEPS=1, BENCH_KEEP=1 (keep the temp dir).
# MB = 10^6 bytes; MiB = 2^20 bytes.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
XFER_TIMEOUT=150          # seconds allowed for one 1 GiB transfer
PW=benchpw
REPO_NAME=bench/x

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- set-up / clean-up
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wharf-bench.XXXXXX")
WHARF_PID=
SAMPLER_PID=
REF_DIR=$TMP/reference
REF_STARTED=
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
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  log "cargo build --release -p wharf"
  cargo build --release -p wharf >&2 || die "build failed"
fi
WHARF_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/wharf
[ -x "$WHARF_BIN" ] || die "no binary at $WHARF_BIN"

# ---------------------------------------------------------------- servers
WPORT=$(free_port)
log "starting Wharf on 127.0.0.1:$WPORT"
WHARF_ADMIN_PASSWORD=$PW WHARF_LISTEN=127.0.0.1:$WPORT WHARF_DATA_DIR=$TMP/wharf-data WHARF_LOG=${WHARF_LOG:-warn} \
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

# upload TARGET HTTPVER(1.1|2) FILE DIGEST -> prints "MB/s seconds"
upload() {
  local target=$1 ver=$2 file=$3 digest=$4 hdrs loc sep out code t size
  set_target "$target"
  hdrs=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X POST -D - -o /dev/null \
         "$URL/v2/$REPO_NAME/blobs/uploads/" | tr -d '\r')
  grep -q '^HTTP/[0-9.]* 202' <<<"$hdrs" || { log "upload start on $target failed:"; printf '%s\n' "$hdrs" >&2; return 1; }
  loc=$(abs_location "$(awk 'tolower($1)=="location:"{print $2}' <<<"$hdrs")")
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  out=$(curl -sS --http"$ver" --max-time "$XFER_TIMEOUT" --cacert "$CA" "${AUTH[@]}" \
          -H 'Content-Type: application/octet-stream' -T "$file" -o "$TMP/put.body" \
          -w '%{http_code} %{time_total} %{size_upload} %{http_version}' \
          "$loc${sep}digest=$digest") || { log "upload to $target failed (curl $?)"; return 1; }
  read -r code t size hv <<<"$out"
  [ "$code" = 201 ] || { log "upload to $target: HTTP $code: $(head -c 300 "$TMP/put.body")"; return 1; }
  [ "$hv" = "$ver" ] || [ "$ver" = 1.1 ] || log "warning: asked for HTTP/$ver, curl used HTTP/$hv"
  awk -v s="$size" -v t="$t" 'BEGIN{printf "%.1f %.2f\n", s/t/1e6, t}'
}

# download TARGET DIGEST -> prints "MB/s seconds"
download() {
  local target=$1 digest=$2 out code t size
  set_target "$target"
  out=$(curl -sS -L --http1.1 --max-time "$XFER_TIMEOUT" --cacert "$CA" "${AUTH[@]}" -o /dev/null \
          -w '%{http_code} %{time_total} %{size_download}' \
          "$URL/v2/$REPO_NAME/blobs/$digest") || { log "download from $target failed"; return 1; }
  read -r code t size <<<"$out"
  [ "$code" = 200 ] || { log "download from $target: HTTP $code"; return 1; }
  [ "$size" = "$BYTES" ] || { log "download from $target: got $size bytes, expected $BYTES"; return 1; }
  awk -v s="$size" -v t="$t" 'BEGIN{printf "%.1f %.2f\n", s/t/1e6, t}'
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

# wrk_manifest TARGET -> prints "req/s p50 p99 non2xx"
wrk_manifest() {
  local target=$1 out rps non2xx
  set_target "$target"
  local hdr=() ; [ ${#AUTH[@]} -gt 0 ] && hdr=(-H "${AUTH[1]}")
  out=$(timeout $((WRK_SECONDS + 20)) wrk -t2 -c16 -d"${WRK_SECONDS}s" --latency --timeout 5s "${hdr[@]}" \
        -H "Accept: $ACCEPT" "$URL/v2/$REPO_NAME/manifests/latest" 2>&1) || { log "wrk against $target failed: $out"; return 1; }
  printf '%s\n' "$out" >"$TMP/wrk-$target.txt"
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  local p50 p99
  p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  [ "$non2xx" = 0 ] || log "warning: $target answered $non2xx non-2xx responses during wrk"
  echo "$rps $p50 $p99 $non2xx"
}

# ---------------------------------------------------------------- test data
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY0=$(pgrep -c -x 'rustc|cargo|cargo-clippy|clippy-driver' || true)
[ "${BUSY0:-0}" -gt 0 ] && log "warning: $BUSY0 cargo/rustc processes are running: figures will be noisy"
BYTES=$((SIZE_MIB * 1024 * 1024))
log "generating $SIZE_MIB MiB of random data (AES-CTR keystream) and hashing it"
BLOB=$TMP/blob.bin
# openssl dies of SIGPIPE when head has enough: expected, so no pipefail here.
HEX=$(set +o pipefail; openssl enc -aes-128-ctr -nosalt -pass "pass:wharf-bench-$$-$RANDOM" -pbkdf2 </dev/zero 2>/dev/null \
      | head -c "$BYTES" | tee "$BLOB" | sha256sum | cut -d' ' -f1)
[ "$(stat -c %s "$BLOB")" = "$BYTES" ] && [[ $HEX =~ ^[0-9a-f]{64}$ ]] || die "generating the test blob failed"
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
  c0=$(cpu_s "$PID"); start_sampler "$PID" "$TMP/rss-$target-up.txt"
  read -r R[$target.up] R[$target.up_s] < <(upload "$target" 1.1 "$BLOB" "$DIGEST") || die "upload to $target failed"
  stop_sampler; R[$target.up_cpu]=$(delta "$c0" "$(cpu_s "$PID")")
  R[$target.up_peak]=$(peak_mib "$TMP/rss-$target-up.txt"); R[$target.up_hwm]=$(hwm_mib "$PID")

  if [ "$target" = wharf ]; then
    log "[$target] upload 1 GiB over HTTP/2"
    c0=$(cpu_s "$PID"); start_sampler "$PID" "$TMP/rss-$target-up2.txt"
    read -r R[$target.up2] R[$target.up2_s] < <(upload "$target" 2 "$BLOB" "$DIGEST") || die "h2 upload to $target failed"
    stop_sampler; R[$target.up2_cpu]=$(delta "$c0" "$(cpu_s "$PID")")
    R[$target.up2_peak]=$(peak_mib "$TMP/rss-$target-up2.txt"); R[$target.up2_hwm]=$(hwm_mib "$PID")
  fi

  log "[$target] download 1 GiB"
  c0=$(cpu_s "$PID"); start_sampler "$PID" "$TMP/rss-$target-down.txt"
  read -r R[$target.down] R[$target.down_s] < <(download "$target" "$DIGEST") || die "download from $target failed"
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
rm -f "$BLOB"

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
printf "$fmt" "server CPU s per 1k manifest GETs" \
  "$(awk -v c="${R[wharf.wrk_cpu]}" -v r="${R[wharf.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f", c/(r*d/1000)}')" \
  "$(awk -v c="${R[ref.wrk_cpu]}" -v r="${R[ref.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f", c/(r*d/1000)}')" "" "" ""
printf "$fmt" "RSS MiB idle before / after +6 /token" "${R[wharf.idle]} / ${R[wharf.rss_tok]}" "${R[ref.idle]}" "" "" ""
printf 'load average at start / end: %s / %s; other cargo/rustc processes at start: %s\n' "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$BUSY0"
echo "(MB = 10^6 bytes; RSS sampled every 100 ms from /proc/<pid>/status; VmHWM is cumulative since the server started.)"
