#!/usr/bin/env bash
# Scale-out benchmark: one Wharf replica on PostgreSQL + Garage (S3) vs Debian's reference
# docker-registry (Distribution 2.8) on its `s3` storage driver against the same Garage node.
#
#   scripts/bench-scale.sh      # as root (PostgreSQL runs as `postgres`); also: BENCH_SCALE=1 scripts/bench.sh
#
# Starts, all in one temp dir and on loopback: a throw-away PostgreSQL cluster (fsync on: this is
# a benchmark of a real deployment), a one-node Garage with two buckets (`wharf`, `ref`), Wharf
# (generated TLS, as bench.sh) and docker-registry 2.8 (own small config and CA, like
# /work/shared/tools/reference-stack.sh). Measures, one server after the other:
#   1. 1 GiB blob upload MB/s (one stream, monolithic PUT) and server CPU seconds
#   2. 1 GiB blob download MB/s and server CPU seconds
#   3. manifest GET by tag req/s (wrk -t2 -c16 -d10s)
#   4. peak RSS (VmRSS sampled every 100 ms) while streaming
#   5. catalog and tag list at scale: BENCH_REPOS repositories (default 100,000) and one
#      repository with BENCH_TAGS tags (default 100,000); median ms of BENCH_SAMPLES (20) GETs
#      of the first page (n=100) and of a page near the end (last=...).
#      Wharf is seeded with SQL in its database (generate_series): the API would take hours.
#      The reference is seeded with the object keys its catalog and tag list read, PUT to
#      Garage by scripts/s3-seed.py within BENCH_REF_SEED_SECONDS (default 600) in total; if
#      that is not enough it gets fewer, the table says how many, and Wharf is measured at the
#      same count too (like for like) before being seeded to the full count.
# Other knobs: BENCH_SIZE_MIB (default 1024), BENCH_WRK_SECONDS (10), BENCH_SKIP_BUILD=1,
# BENCH_KEEP=1 (keep the temp dir), BENCH_SETTLE (seconds of quiet before each 1 GiB transfer,
# default 15; see bench.sh's settle). MB = 10^6 bytes; MiB = 2^20 bytes.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
NREPOS=${BENCH_REPOS:-100000}
NTAGS=${BENCH_TAGS:-100000}
SAMPLES=${BENCH_SAMPLES:-20}
REF_SEED_SECONDS=${BENCH_REF_SEED_SECONDS:-600}
XFER_TIMEOUT=300          # seconds allowed for one 1 GiB transfer (S3 is slower than a disk)
PW=benchpw
REPO_NAME=bench/x
SCALE_FMT='scale/r%06d'   # seeded repositories: scale/r000000 ... (sort = seeding order)
TAG_REPO=scale-tags/app   # the repository with many tags
TAG_FMT='t%06d'

log() { printf '[bench-scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: PostgreSQL's initdb must run as the postgres user"

# ---------------------------------------------------------------- set-up / clean-up
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wharf-bench-scale.XXXXXX")
# The postgres user must reach its cluster directory inside: traverse, not read.
chmod 711 "$TMP"
WHARF_PID= REF_PID= GARAGE_PID= SAMPLER_PID=
# shellcheck source=scripts/throwaway-backends.sh
source "$REPO/scripts/throwaway-backends.sh"
stop_pid() {   # TERM, wait up to 3 s, then KILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  stop_pid "$WHARF_PID"; stop_pid "$REF_PID"
  throwaway_stop "$TMP"
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
wait_port() {   # wait_port PORT SECONDS
  for _ in $(seq 1 $(($2 * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- tools and build
for t in curl jq wrk openssl sha256sum docker-registry python3 runuser psql; do
  command -v "$t" >/dev/null || die "$t is missing (run scripts/install-deps.sh as root)"
done
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  log "cargo build --release -p wharf"
  cargo build --release -p wharf >&2 || die "build failed"
fi
WHARF_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/wharf
[ -x "$WHARF_BIN" ] || die "no binary at $WHARF_BIN"

# ---------------------------------------------------------------- PostgreSQL + Garage
# (scripts/throwaway-backends.sh: fsync on in PostgreSQL; Garage with its own defaults.)
throwaway_postgres "$TMP"
DB_URL=$THROWAWAY_DATABASE_URL
psql_w() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U wharf -d wharf "$@"; }
[ "$(psql_w -Atc 'SHOW fsync')" = on ] || die "fsync is not on"
throwaway_garage "$TMP" bench-key wharf ref

# ---------------------------------------------------------------- servers
WPORT=$(free_port)
log "starting Wharf on 127.0.0.1:$WPORT (PostgreSQL + Garage bucket wharf)"
WHARF_ADMIN_PASSWORD=$PW WHARF_LISTEN=127.0.0.1:$WPORT WHARF_DATA_DIR=$TMP/wharf-data WHARF_LOG=${WHARF_LOG:-warn} \
WHARF_DATABASE_URL=$DB_URL WHARF_STORAGE_BACKEND=s3 WHARF_STORAGE_S3_ENDPOINT=$S3_URL \
WHARF_STORAGE_S3_REGION=garage WHARF_STORAGE_S3_BUCKET=wharf WHARF_STORAGE_S3_PATH_STYLE=true \
WHARF_STORAGE_S3_ACCESS_KEY_ID=$S3_KEY WHARF_STORAGE_S3_SECRET_ACCESS_KEY=$S3_SECRET \
  "$WHARF_BIN" serve >"$TMP/wharf.out" 2>"$TMP/wharf.err" &
WHARF_PID=$!
for _ in $(seq 1 300); do
  grep -q "Wharf is listening on" "$TMP/wharf.out" 2>/dev/null && break
  kill -0 "$WHARF_PID" 2>/dev/null || { cat "$TMP/wharf.err" >&2; die "Wharf exited at start-up"; }
  sleep 0.1
done
grep -q "Wharf is listening on" "$TMP/wharf.out" || die "Wharf did not start within 30 s"
W_URL=https://localhost:$WPORT
W_CA=$TMP/wharf-data/tls/ca.crt
[ -f "$W_CA" ] || die "no Wharf CA at $W_CA"

# The reference: a CA and a localhost certificate as reference-stack.sh makes them, and its
# s3 driver on bucket `ref` under /ref. Redirects are disabled so blob bytes go through the
# registry as they do through Wharf (whose redirect_downloads is off by default); otherwise
# curl -L would time Garage, not the registry. AWS_CA_BUNDLE is unset: with it set, the Go
# AWS SDK of 2.8 panics at start (see /work/shared/research/scale-out.md).
REF_DIR=$TMP/reference; mkdir -p "$REF_DIR"
(cd "$REF_DIR"
 openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=reference-ca" 2>/dev/null
 openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" 2>/dev/null
 printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" >ext.cnf
 openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext.cnf 2>/dev/null) \
  || die "cannot make the reference's certificate"
RPORT=$(free_port)
cat >"$REF_DIR/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  s3: {accesskey: $S3_KEY, secretkey: $S3_SECRET, region: garage, regionendpoint: "$S3_URL",
       bucket: ref, rootdirectory: /ref, secure: false, v4auth: true, forcepathstyle: true}
  delete: {enabled: true}
  redirect: {disable: true}
http: {addr: 127.0.0.1:$RPORT, tls: {certificate: $REF_DIR/srv.crt, key: $REF_DIR/srv.key}}
EOF
log "starting reference docker-registry on 127.0.0.1:$RPORT (s3 driver, bucket ref, /ref)"
env -u AWS_CA_BUNDLE docker-registry serve "$REF_DIR/registry.yml" >"$REF_DIR/registry.log" 2>&1 &
REF_PID=$!
R_URL=https://localhost:$RPORT
REF_CA=$REF_DIR/ca.crt
for _ in $(seq 1 100); do curl -s --cacert "$REF_CA" -o /dev/null "$R_URL/v2/" && break; sleep 0.1; done
curl -fsS --max-time 5 --cacert "$REF_CA" -o /dev/null "$R_URL/v2/" \
  || { tail -n 20 "$REF_DIR/registry.log" >&2; die "reference registry not answering on $R_URL"; }

# ---------------------------------------------------------------- helpers (as in bench.sh)
# Wharf needs a bearer token (valid 300 s): fetched once, reused up to 240 s, so the Argon2
# password check of /token is not billed to the transfer being sampled.
W_TOKEN=; W_TOKEN_AT=0
fetch_wharf_token() {
  curl -fsS --max-time 10 --cacert "$W_CA" -u "admin:$PW" \
    "$W_URL/token?service=wharf&scope=repository:$REPO_NAME:pull,push&scope=repository:$TAG_REPO:pull,push&scope=registry:catalog:*" \
    | jq -er .token
}
wharf_token() {
  if [ -z "$W_TOKEN" ] || [ $((SECONDS - W_TOKEN_AT)) -gt 240 ]; then
    W_TOKEN=$(fetch_wharf_token) || die "could not get a Wharf token"; W_TOKEN_AT=$SECONDS
  fi
  printf '%s' "$W_TOKEN"
}
set_target() {   # -> URL CA PID AUTH (array of curl args)
  case $1 in
    wharf) URL=$W_URL; CA=$W_CA; PID=$WHARF_PID; wharf_token >/dev/null; AUTH=(-H "Authorization: Bearer $W_TOKEN") ;;
    ref)   URL=$R_URL; CA=$REF_CA; PID=$REF_PID; AUTH=() ;;
  esac
}

start_sampler() {   # every 100 ms append VmRSS (kB) of $1 to $2
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
# PostgreSQL's CPU seconds: the postmaster with its reaped children (cutime, cstime) plus the
# live backends (Wharf's pool keeps its connections, so their time is there).
pg_cpu() {
  local pm; pm=$(head -n1 "$TMP/pg/data/postmaster.pid")
  { awk '{print $14+$15+$16+$17}' "/proc/$pm/stat"
    for c in $(pgrep -P "$pm"); do awk '{print $14+$15}' "/proc/$c/stat" 2>/dev/null || true; done
  } | awk -v hz="$(getconf CLK_TCK)" '{s+=$1} END{printf "%.2f", s/hz}'
}
delta() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
peak_mib() { sort -n "$1" | tail -1 | awk '{printf "%.1f", $1/1024}'; }
rss_mib() { awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
abs_location() { case $1 in http*) printf '%s' "$1" ;; *) printf '%s%s' "$URL" "$1" ;; esac; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "n/a"; exit} if (NR%2) printf "%.2f", a[(NR+1)/2]; else printf "%.2f", (a[NR/2]+a[NR/2+1])/2 }'; }
# Garage works on every transfer too (hashing, writing, its own fsync-less writeback): it is
# a process of this benchmark, so its CPU seconds are shown next to each server's.
settle() { sync; sleep "${BENCH_SETTLE:-15}"; }

# upload TARGET FILE DIGEST -> "MB/s seconds"
upload() {
  local target=$1 file=$2 digest=$3 hdrs loc sep code t size
  set_target "$target"
  hdrs=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X POST -D - -o /dev/null \
         "$URL/v2/$REPO_NAME/blobs/uploads/" | tr -d '\r')
  grep -q '^HTTP/[0-9.]* 202' <<<"$hdrs" || { log "upload start on $target failed:"; printf '%s\n' "$hdrs" >&2; return 1; }
  loc=$(abs_location "$(awk 'tolower($1)=="location:"{print $2}' <<<"$hdrs")")
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  read -r code t size < <(curl -sS --http1.1 --max-time "$XFER_TIMEOUT" --cacert "$CA" "${AUTH[@]}" \
      -H 'Content-Type: application/octet-stream' -T "$file" -o "$TMP/put.body" \
      -w '%{http_code} %{time_total} %{size_upload}\n' "$loc${sep}digest=$digest") \
    || { log "upload to $target failed"; return 1; }
  [ "$code" = 201 ] || { log "upload to $target: HTTP $code: $(head -c 300 "$TMP/put.body")"; return 1; }
  awk -v s="$size" -v t="$t" 'BEGIN{printf "%.1f %.2f\n", s/t/1e6, t}'
}

# download TARGET DIGEST -> "MB/s seconds"
download() {
  local target=$1 digest=$2 code t size
  set_target "$target"
  read -r code t size < <(curl -sS -L --http1.1 --max-time "$XFER_TIMEOUT" --cacert "$CA" "${AUTH[@]}" -o /dev/null \
      -w '%{http_code} %{time_total} %{size_download}\n' "$URL/v2/$REPO_NAME/blobs/$digest") \
    || { log "download from $target failed"; return 1; }
  [ "$code" = 200 ] || { log "download from $target: HTTP $code"; return 1; }
  [ "$size" = "$BYTES" ] || { log "download from $target: got $size bytes, expected $BYTES"; return 1; }
  awk -v s="$size" -v t="$t" 'BEGIN{printf "%.1f %.2f\n", s/t/1e6, t}'
}

# put_small_blob FILE DIGEST: POST, PATCH with the bytes, PUT ?digest= (as docker pushes).
# Not a monolithic PUT: 2.8's s3 driver fails to complete a multipart upload whose only part
# arrives with the closing PUT (Garage answers "No data was uploaded"; measured).
put_small_blob() {
  local hdrs loc sep code
  hdrs=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X POST -D - -o /dev/null \
         "$URL/v2/$REPO_NAME/blobs/uploads/" | tr -d '\r')
  loc=$(abs_location "$(awk 'tolower($1)=="location:"{print $2}' <<<"$hdrs")")
  hdrs=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X PATCH -H 'Content-Type: application/octet-stream' \
         --data-binary @"$1" -D - -o /dev/null "$loc" | tr -d '\r')
  grep -q '^HTTP/[0-9.]* 202' <<<"$hdrs" || { log "small blob PATCH: $(head -n1 <<<"$hdrs")"; return 1; }
  loc=$(abs_location "$(awk 'tolower($1)=="location:"{print $2}' <<<"$hdrs")")
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  code=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X PUT -o "$TMP/post.body" -w '%{http_code}' "$loc${sep}digest=$2")
  [ "$code" = 201 ] || { log "small blob upload: HTTP $code: $(head -c 300 "$TMP/post.body")"; return 1; }
}

put_manifest() {   # put_manifest REPOSITORY TAG FILE
  local code
  code=$(curl -sS --max-time 10 --cacert "$CA" "${AUTH[@]}" -X PUT \
         -H "Content-Type: $ACCEPT" --data-binary @"$3" \
         -o "$TMP/man.body" -w '%{http_code}' "$URL/v2/$1/manifests/$2")
  [ "$code" = 201 ] || { log "manifest PUT $1:$2: HTTP $code: $(head -c 300 "$TMP/man.body")"; return 1; }
}

# wrk_manifest TARGET -> "req/s p50 p99 non2xx"; full output in $TMP/wrk-TARGET.txt
wrk_manifest() {
  local target=$1 out rps non2xx p50 p99 hdr=()
  set_target "$target"
  [ ${#AUTH[@]} -gt 0 ] && hdr=(-H "${AUTH[1]}")
  out=$(timeout $((WRK_SECONDS + 20)) wrk -t2 -c16 -d"${WRK_SECONDS}s" --latency --timeout 5s "${hdr[@]}" \
        -H "Accept: $ACCEPT" "$URL/v2/$REPO_NAME/manifests/latest" 2>&1) || { log "wrk $target failed: $out"; return 1; }
  printf '%s\n' "$out" >"$TMP/wrk-$target.txt"
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  [ "$non2xx" = 0 ] || log "warning: $target: $non2xx non-2xx responses during wrk"
  echo "$rps $p50 $p99 $non2xx"
}

# page_ms TARGET PATH EXPECT [SAMPLES] [MAX_SECONDS] -> "median-ms samples": GETs PATH up to
# SAMPLES times (default $SAMPLES) after one untimed warm-up (none when SAMPLES is 1), and
# stops early once $PAGE_SECONDS have passed with one timed sample: the reference's catalog
# walks take seconds to minutes. Each GET is a new curl, so its TCP and TLS set-up is left
# out (time_total - time_appconnect): what a client paging on a kept-alive connection waits,
# and the handshake is not what is compared. Dies unless the page has EXPECT entries. A
# request that runs past MAX_SECONDS (default 120) ends the measurement: "><ms> 0", a
# measured lower bound.
PAGE_SECONDS=${BENCH_PAGE_SECONDS:-60}
page_ms() {
  local target=$1 path=$2 expect=$3 samples=${4:-$SAMPLES} max=${5:-120} code t ta got i first=0 t0=$SECONDS rc out
  set_target "$target"
  : >"$TMP/page.times"
  [ "$samples" = 1 ] && first=1
  for i in $(seq "$first" "$samples"); do
    rc=0
    out=$(curl -sS --max-time "$max" --cacert "$CA" "${AUTH[@]}" -o "$TMP/page.json" \
            -w '%{http_code} %{time_total} %{time_appconnect}' "$URL$path" 2>"$TMP/page.err") || rc=$?
    [ "$rc" = 28 ] && { log "[$target] GET $path: no answer within ${max}s"; echo ">$((max * 1000)) 0"; return 0; }
    [ "$rc" = 0 ] || { log "GET $path on $target failed (curl exit $rc): $(cat "$TMP/page.err")"; return 1; }
    read -r code t ta <<<"$out"
    [ "$code" = 200 ] || { log "GET $path on $target: HTTP $code: $(head -c 300 "$TMP/page.json")"; return 1; }
    got=$(jq '(.repositories // .tags) | length' "$TMP/page.json")
    [ "$got" = "$expect" ] || { log "GET $path on $target: $got entries, expected $expect"; return 1; }
    [ "$i" = 0 ] || awk -v t="$t" -v a="$ta" 'BEGIN{printf "%.3f\n", (t-a)*1000}' >>"$TMP/page.times"
    [ $((SECONDS - t0)) -lt "$PAGE_SECONDS" ] || [ "$i" = 0 ] || break
  done
  echo "$(median <"$TMP/page.times") $(wc -l <"$TMP/page.times")"
}

# ---------------------------------------------------------------- test data
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY0=$(ps -eo comm= | grep -cxE 'rustc|cargo|cargo-clippy|clippy-driver' || true)
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
# The manifest every seeded repository and tag points at: the config blob only, no layers.
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
  "$CFG_DIGEST" "$CFG_SIZE" >"$TMP/small.json"
SMALL_DIGEST=sha256:$(sha256sum "$TMP/small.json" | cut -d' ' -f1)
ACCEPT='application/vnd.oci.image.manifest.v1+json'

# ---------------------------------------------------------------- transfers and manifest GETs
# Targets run one after the other (never concurrently) so they do not share the 2 cores.
declare -A R
for target in ref wharf; do
  set_target "$target"
  R[$target.idle]=$(rss_mib "$PID")
  log "[$target] upload $SIZE_MIB MiB over HTTP/1.1 (monolithic PUT)"
  settle
  c0=$(cpu_s "$PID"); g0=$(cpu_s "$GARAGE_PID"); start_sampler "$PID" "$TMP/rss-$target-up.txt"
  read -r R[$target.up] R[$target.up_s] < <(upload "$target" "$BLOB" "$DIGEST") || die "upload to $target failed"
  stop_sampler; R[$target.up_cpu]=$(delta "$c0" "$(cpu_s "$PID")"); R[$target.up_gcpu]=$(delta "$g0" "$(cpu_s "$GARAGE_PID")")
  R[$target.up_peak]=$(peak_mib "$TMP/rss-$target-up.txt")

  log "[$target] download $SIZE_MIB MiB"
  settle
  c0=$(cpu_s "$PID"); g0=$(cpu_s "$GARAGE_PID"); start_sampler "$PID" "$TMP/rss-$target-down.txt"
  read -r R[$target.down] R[$target.down_s] < <(download "$target" "$DIGEST") || die "download from $target failed"
  stop_sampler; R[$target.down_cpu]=$(delta "$c0" "$(cpu_s "$PID")"); R[$target.down_gcpu]=$(delta "$g0" "$(cpu_s "$GARAGE_PID")")
  R[$target.down_peak]=$(peak_mib "$TMP/rss-$target-down.txt")

  log "[$target] manifest PUT, then wrk -t2 -c16 -d${WRK_SECONDS}s on GET by tag"
  put_small_blob "$TMP/config.json" "$CFG_DIGEST" || die "config blob upload to $target failed"
  put_manifest "$REPO_NAME" latest "$TMP/manifest.json" || die "manifest PUT on $target failed"
  c0=$(cpu_s "$PID"); g0=$(cpu_s "$GARAGE_PID"); p0=$(pg_cpu)
  read -r R[$target.rps] R[$target.p50] R[$target.p99] R[$target.non2xx] < <(wrk_manifest "$target") || die "wrk on $target failed"
  R[$target.wrk_cpu]=$(delta "$c0" "$(cpu_s "$PID")"); R[$target.wrk_gcpu]=$(delta "$g0" "$(cpu_s "$GARAGE_PID")")
  R[$target.wrk_pcpu]=$(delta "$p0" "$(pg_cpu)")
done
rm -f "$BLOB"

# ---------------------------------------------------------------- seeding helpers
# The reference: Distribution 2.8's catalog walks <root>/docker/registry/v2/repositories/ one
# directory listing at a time and reports a directory holding `_layers` (it skips other `_`
# directories; a repository with only `_manifests` keys is not listed: measured), and its tag
# list lists the directories under <repo>/_manifests/tags/. Each seeded repository gets the
# two keys a push writes for that: a layer link and a `latest` tag link; each seeded tag its
# tag link. (A pushed repository has more keys: revisions, tag index, uploads; the walk skips
# them, so they would not change its cost.)
RROOT=ref/docker/registry/v2/repositories
REF_REPO_KEYS="$RROOT/$SCALE_FMT/_layers/sha256/${CFG_DIGEST#sha256:}/link|$RROOT/$SCALE_FMT/_manifests/tags/latest/current/link"
REF_TAG_KEYS="$RROOT/$TAG_REPO/_manifests/tags/$TAG_FMT/current/link"
REF_SEED_USED=0   # seconds spent seeding so far (the caller adds each run's)
seed_ref() {   # seed_ref KEY_FORMATS FROM COUNT -> "seeded seconds", within what is left of the budget
  local left
  left=$(awk -v b="$REF_SEED_SECONDS" -v u="$REF_SEED_USED" 'BEGIN{printf "%d", b-u}')
  [ "$left" -gt 0 ] || { echo "0 0"; return 0; }
  [ "$3" -gt 0 ] || { echo "0 0"; return 0; }
  S3_ACCESS_KEY=$S3_KEY S3_SECRET_KEY=$S3_SECRET S3_BODY=$SMALL_DIGEST \
    python3 "$REPO/scripts/s3-seed.py" "$S3_URL" garage ref "$1" "$2" "$3" "$left"
}

# Wharf: rows copied with generate_series from TAG_REPO's manifest, which was pushed through
# the API (so its blob row, link and manifest row are Wharf's own). Per repository: a
# `repositories` row, a `repository_blobs` link to the config blob, its own `manifests` row
# (same bytes), the `manifest_references` row and a `latest` tag; per tag one `tags` row.
# Names are SCALE_FMT / TAG_FMT (lpad here, printf's %06d there).
seed_wharf_repos() {   # seed_wharf_repos FROM TO (indexes, inclusive)
  psql_w -v from="$1" -v to="$2" -v tagrepo="$TAG_REPO" <<'SQL'
BEGIN;
CREATE TEMP TABLE src ON COMMIT DROP AS
  SELECT m.digest, m.media_type, m.content, rb.digest AS blob
    FROM repositories r JOIN manifests m ON m.repository_id = r.id
    JOIN repository_blobs rb ON rb.repository_id = r.id
   WHERE r.name = :'tagrepo';
CREATE TEMP TABLE new_repos ON COMMIT DROP AS
  WITH ins AS (
    INSERT INTO repositories (name, created_at)
    SELECT 'scale/r' || lpad(i::text, 6, '0'), extract(epoch FROM now())::bigint FROM generate_series(:from, :to) i
    RETURNING id)
  SELECT id FROM ins;
INSERT INTO repository_blobs (repository_id, digest, linked_at)
  SELECT n.id, s.blob, extract(epoch FROM now())::bigint FROM new_repos n, src s;
INSERT INTO manifests (repository_id, digest, media_type, content, created_at)
  SELECT n.id, s.digest, s.media_type, s.content, extract(epoch FROM now())::bigint FROM new_repos n, src s;
INSERT INTO manifest_references (repository_id, manifest_digest, child_digest)
  SELECT n.id, s.digest, s.blob FROM new_repos n, src s;
INSERT INTO tags (repository_id, name, manifest_digest, updated_at)
  SELECT n.id, 'latest', s.digest, extract(epoch FROM now())::bigint FROM new_repos n, src s;
COMMIT;
ANALYZE;
SQL
}
seed_wharf_tags() {   # seed_wharf_tags FROM TO
  psql_w -v from="$1" -v to="$2" -v tagrepo="$TAG_REPO" <<'SQL'
BEGIN;
INSERT INTO tags (repository_id, name, manifest_digest, updated_at)
  SELECT t.repository_id, 't' || lpad(i::text, 6, '0'), t.manifest_digest, extract(epoch FROM now())::bigint
    FROM repositories r JOIN tags t ON t.repository_id = r.id AND t.name = 'base',
         generate_series(:from, :to) i
   WHERE r.name = :'tagrepo';
COMMIT;
ANALYZE;
SQL
}
count_wharf() {   # -> "<scale/r* repositories> <t* tags of TAG_REPO>"
  psql_w -Atc "SELECT (SELECT count(*) FROM repositories WHERE name LIKE 'scale/r%'),
                      (SELECT count(*) FROM tags t JOIN repositories r ON r.id = t.repository_id
                        WHERE r.name = '$TAG_REPO' AND t.name LIKE 't%')" | tr '|' ' '
}
seed_wharf_to() {   # seed_wharf_to NREPOS NTAGS: from what it holds now; prints seconds
  local have_r have_t t0; t0=$(date +%s.%N)
  read -r have_r have_t < <(count_wharf)
  [ "$have_r" -lt "$1" ] && { seed_wharf_repos "$have_r" $(($1 - 1)) || die "seeding Wharf's repositories failed"; }
  [ "$have_t" -lt "$2" ] && { seed_wharf_tags "$have_t" $(($2 - 1)) || die "seeding Wharf's tags failed"; }
  [ "$(count_wharf)" = "$1 $2" ] || die "Wharf holds $(count_wharf) seeded repositories/tags, expected $1 $2"
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'
}

# pages TARGET NREPOS NTAGS KEY [CATN_SAMPLES CATN_MAX]: first page and a page near the end
# (last = the 101st name from the end) of the catalog and of TAG_REPO's tag list, n=100, into
# R[TARGET.KEY.{cat1,catN,tag1,tagN}] (median ms) and R[TARGET.KEY.*_n] (samples).
# Distribution 2.8 ignores n and last on tag lists and always answers every tag (measured):
# for it the "page" is the whole list, NTAGS + `base`.
pages() {
  local target=$1 nr=$2 nt=$3 key=$4 lastr lastt tagn=100
  lastr=$(printf "$SCALE_FMT" $((nr - 101))); lastt=$(printf "$TAG_FMT" $((nt - 101)))
  [ "$target" = ref ] && tagn=$((nt + 1))
  log "[$target] catalog and tag list pages at $nr repositories / $nt tags"
  read -r R[$target.$key.cat1] R[$target.$key.cat1_n] < <(page_ms "$target" "/v2/_catalog?n=100" 100) || die "catalog on $target failed"
  read -r R[$target.$key.catN] R[$target.$key.catN_n] < <(page_ms "$target" "/v2/_catalog?n=100&last=$lastr" 100 "${5:-$SAMPLES}" "${6:-120}") || die "catalog on $target failed"
  read -r R[$target.$key.tag1] R[$target.$key.tag1_n] < <(page_ms "$target" "/v2/$TAG_REPO/tags/list?n=100" "$tagn") || die "tag list on $target failed"
  read -r R[$target.$key.tagN] R[$target.$key.tagN_n] < <(page_ms "$target" "/v2/$TAG_REPO/tags/list?n=100&last=$lastt" "$tagn") || die "tag list on $target failed"
}

# ---------------------------------------------------------------- listings at scale
# Phase A, like for like: both at KA repositories / KAT tags (BENCH_REF_WALK_REPOS, default
# 10,000: a late catalog page on the reference walks every repository before it, measured at
# ~3-7 ms each here, so 100,000 would take minutes per request). Phase B: both seeded on to
# BENCH_REPOS / BENCH_TAGS (the reference as far as BENCH_REF_SEED_SECONDS allows); the
# reference's late catalog page is then tried once with BENCH_CATALOG_TIMEOUT (default 180 s).
KA=${BENCH_REF_WALK_REPOS:-10000}; [ "$KA" -le "$NREPOS" ] || KA=$NREPOS
KAT=$KA; [ "$KAT" -le "$NTAGS" ] || KAT=$NTAGS
[ "$KA" -ge 200 ] && [ "$KAT" -ge 200 ] || die "need at least 200 repositories and tags for two pages"
for target in ref wharf; do
  set_target "$target"
  log "[$target] pushing the small manifest to $TAG_REPO:base (what every seeded repository and tag names)"
  REPO_NAME=$TAG_REPO put_small_blob "$TMP/config.json" "$CFG_DIGEST" || die "config blob upload to $target failed"
  put_manifest "$TAG_REPO" base "$TMP/small.json" || die "manifest PUT on $target failed"
done

log "[ref] seeding $KA repositories (2 keys each) and $KAT tags into Garage"
read -r n s < <(seed_ref "$REF_REPO_KEYS" 0 "$KA") || die "seeding the reference failed"
REF_SEED_USED=$(delta 0 "$s")
[ "$n" = "$KA" ] || die "the reference got only $n of $KA repositories within ${REF_SEED_SECONDS}s"
R[seed_rate]=$(awk -v n="$n" -v s="$s" 'BEGIN{printf "%.0f", 2*n/s}')
log "[ref] $n repositories in ${s}s (${R[seed_rate]} keys/s)"
read -r n s < <(seed_ref "$REF_TAG_KEYS" 0 "$KAT") || die "seeding the reference failed"
REF_SEED_USED=$(delta "-$REF_SEED_USED" "$s")
[ "$n" = "$KAT" ] || die "the reference got only $n of $KAT tags within ${REF_SEED_SECONDS}s"
log "[wharf] seeding $KA repositories and $KAT tags with SQL"
R[wharf.seedA_s]=$(seed_wharf_to "$KA" "$KAT")
pages ref "$KA" "$KAT" a 3 120
pages wharf "$KA" "$KAT" a

KR=$KA; KT=$KAT; PHASE_B=
if [ "$NREPOS" -gt "$KA" ] || [ "$NTAGS" -gt "$KAT" ]; then
  PHASE_B=1
  log "[ref] seeding on to $NREPOS repositories and $NTAGS tags (within ${REF_SEED_SECONDS}s in all)"
  read -r n s1 < <(seed_ref "$REF_REPO_KEYS" "$KA" $((NREPOS - KA))) || die "seeding the reference failed"
  KR=$((KA + n)); REF_SEED_USED=$(delta "-$REF_SEED_USED" "$s1")
  read -r n s2 < <(seed_ref "$REF_TAG_KEYS" "$KAT" $((NTAGS - KAT))) || die "seeding the reference failed"
  KT=$((KAT + n)); REF_SEED_USED=$(delta "-$REF_SEED_USED" "$s2")
  log "[ref] now $KR repositories (+${s1}s) and $KT tags (+${s2}s)"
  log "[wharf] seeding on to $NREPOS repositories and $NTAGS tags with SQL"
  R[wharf.seedB_s]=$(seed_wharf_to "$NREPOS" "$NTAGS")
  pages ref "$KR" "$KT" b 1 "${BENCH_CATALOG_TIMEOUT:-180}"
  pages wharf "$NREPOS" "$NTAGS" b
fi
R[ref.seed_s]=$REF_SEED_USED
R[wharf.rss_end]=$(rss_mib "$WHARF_PID")

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a !~ /^>/ && b+0 > 0) printf "%.2fx", a/b; else if (b+0 > 0) printf ">%.0fx", substr(a,2)/b; else print "n/a" }'; }
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN{ if (b+0 > 0 && a/b >= t) print "met"; else print "MISSED" }'; }
under() { awk -v a="$1" -v t="$2" 'BEGIN{ print (a+0 < t) ? "met" : "MISSED" }'; }
echo
echo "Scale-out: Wharf on PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') + Garage $("$GARAGE" --version 2>/dev/null | awk '{print $2}') vs reference docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}') on its s3 driver (same Garage) — $SIZE_MIB MiB blob, loopback TLS, $(nproc) cores, $(date -u +%FT%TZ)"
fmt='%-44s %15s %15s %9s  %-9s %s\n'
hdr() {
  printf "$fmt" "metric" "wharf" "reference" "ratio" "target" "status"
  printf "$fmt" "--------------------------------------------" "---------------" "---------------" "---------" "---------" "------"
}
hdr
printf "$fmt" "upload MB/s (HTTP/1.1, monolithic PUT)" "${R[wharf.up]}" "${R[ref.up]}" "$(ratio "${R[wharf.up]}" "${R[ref.up]}")" ">= 1x" "$(verdict "${R[wharf.up]}" "${R[ref.up]}" 1)"
printf "$fmt" "download MB/s" "${R[wharf.down]}" "${R[ref.down]}" "$(ratio "${R[wharf.down]}" "${R[ref.down]}")" ">= 1x" "$(verdict "${R[wharf.down]}" "${R[ref.down]}" 1)"
printf "$fmt" "manifest GET by tag req/s (c16)" "${R[wharf.rps]}" "${R[ref.rps]}" "$(ratio "${R[wharf.rps]}" "${R[ref.rps]}")" ">= 10x" "$(verdict "${R[wharf.rps]}" "${R[ref.rps]}" 10)"
printf "$fmt" "  manifest GET latency p50 / p99" "${R[wharf.p50]}/${R[wharf.p99]}" "${R[ref.p50]}/${R[ref.p99]}" "" "" ""
printf "$fmt" "peak RSS MiB during upload" "${R[wharf.up_peak]}" "${R[ref.up_peak]}" "" "< 64 MiB" "$(under "${R[wharf.up_peak]}" 64)"
printf "$fmt" "peak RSS MiB during download" "${R[wharf.down_peak]}" "${R[ref.down_peak]}" "" "< 64 MiB" "$(under "${R[wharf.down_peak]}" 64)"
printf "$fmt" "RSS MiB idle at start / at end" "${R[wharf.idle]} / ${R[wharf.rss_end]}" "${R[ref.idle]}" "" "" ""
printf "$fmt" "transfer seconds up / down" "${R[wharf.up_s]}/${R[wharf.down_s]}" "${R[ref.up_s]}/${R[ref.down_s]}" "" "" ""
printf "$fmt" "server CPU s up / down" "${R[wharf.up_cpu]}/${R[wharf.down_cpu]}" "${R[ref.up_cpu]}/${R[ref.down_cpu]}" "" "" ""
printf "$fmt" "Garage CPU s up / down" "${R[wharf.up_gcpu]}/${R[wharf.down_gcpu]}" "${R[ref.up_gcpu]}/${R[ref.down_gcpu]}" "" "" ""
printf "$fmt" "PostgreSQL CPU s per 1k manifest GETs" \
  "$(awk -v c="${R[wharf.wrk_pcpu]}" -v r="${R[wharf.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f", c/(r*d/1000)}')" "-" "" "" ""
printf "$fmt" "server (Garage) CPU s per 1k manifest GETs" \
  "$(awk -v c="${R[wharf.wrk_cpu]}" -v g="${R[wharf.wrk_gcpu]}" -v r="${R[wharf.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f (%.3f)", c/(r*d/1000), g/(r*d/1000)}')" \
  "$(awk -v c="${R[ref.wrk_cpu]}" -v g="${R[ref.wrk_gcpu]}" -v r="${R[ref.rps]}" -v d="$WRK_SECONDS" 'BEGIN{printf "%.3f (%.3f)", c/(r*d/1000), g/(r*d/1000)}')" "" "" ""
echo
echo "Listings, n=100: median ms (samples) of GETs; ratio = reference ms / Wharf ms. The reference (2.8) ignores n/last on tag lists: it answers all tags every time."
hdr
row() {   # row LABEL KEY FIELD TARGET_MS(or "")
  local w=${R[wharf.$2.$3]} r=${R[ref.$2.$3]} st=""
  [ -n "$4" ] && st=$(under "$w" "$4")
  printf "$fmt" "$1" "$w (${R[wharf.$2.${3}_n]})" "$r (${R[ref.$2.${3}_n]})" "$(ratio "$r" "$w")" "${4:+< $4 ms}" "$st"
}
if [ -n "$PHASE_B" ]; then ta=""; else ta=10; fi
row "catalog first page, $KA repos" a cat1 "$ta"
row "catalog page near the end, $KA repos" a catN ""
row "tag list first page, $KAT tags" a tag1 "$ta"
row "tag list page near the end, $KAT tags" a tagN "$ta"
if [ -n "$PHASE_B" ]; then
  lr=$NREPOS; [ "$KR" = "$NREPOS" ] || lr="$NREPOS (ref $KR)"
  lt=$NTAGS; [ "$KT" = "$NTAGS" ] || lt="$NTAGS (ref $KT)"
  row "catalog first page, $lr repos" b cat1 10
  row "catalog page near the end, $lr repos" b catN ""
  row "tag list first page, $lt tags" b tag1 10
  row "tag list page near the end, $lt tags" b tagN 10
fi
printf 'seeding: reference %s repositories (2 keys each) + %s tags PUT to Garage in %s s (%s keys/s at first; budget %s s); Wharf by SQL in %s s%s\n' \
  "$KR" "$KT" "${R[ref.seed_s]}" "${R[seed_rate]}" "$REF_SEED_SECONDS" "${R[wharf.seedA_s]}" "${PHASE_B:+ + ${R[wharf.seedB_s]} s}"
printf 'load average at start / end: %s / %s; other cargo/rustc processes at start: %s\n' "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$BUSY0"
echo "PostgreSQL: fsync on (Debian defaults). Garage: its defaults (no data/metadata fsync). Reference: no blobdescriptor cache, redirects disabled (bytes through the registry, as Wharf)."
echo "(MB = 10^6 bytes; RSS sampled every 100 ms from /proc/<pid>/status; wrk -t2 unpinned, shares the CPUs with the server and Garage.)"
