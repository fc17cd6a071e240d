#!/usr/bin/env bash
# Soak test: one Wharf server under a mixed load for a set time; memory, descriptors, threads,
# scratch files and latency must stay flat, no request may fail unexpectedly, and with
# --kill-every no acknowledged push may be lost to `kill -9`. Not part of .ci/run.
#
#   scripts/soak.sh [--minutes N] [--kill-every M] [--backend embedded|postgres-s3] [--out DIR]
#                   (as root, like bench.sh: dockerd, skopeo, gnuplot from scripts/install-deps.sh)
#
#   --minutes N      length of the load (default 120)
#   --kill-every M   kill -9 the server every M minutes and restart it (default 0 = never)
#   --backend        embedded (SQLite + disk, default) or postgres-s3: a throw-away PostgreSQL
#                    (fsync on) and one-node Garage started here as bench-scale.sh does, or,
#                    if WHARF_DATABASE_URL is exported, that database with the caller's
#                    WHARF_STORAGE_* / AWS_* settings (the run writes to them)
#   --out DIR        where samples.csv, summary.txt, failures.log and the PNGs go
#                    (default ./soak-<date>)
#   --plot-only DIR  only draw the PNGs again from DIR/samples.csv
# Knobs: SOAK_SKIP_BUILD=1, SOAK_WHARF_BIN (another binary), SOAK_SAMPLE_SECONDS (default 60),
# SOAK_KEEP=1 (keep the temp data dir).
#
# The load (scripts/soak-driver.py, one thread per activity, small fixed content pools
# re-pushed to rotating tags so steady-state data is bounded): registry-API pushes and pulls,
# docker push/pull, skopeo push/pull, signed pushes (DOCKER_CONTENT_TRUST=1), trust metadata
# reads, token requests with good and (from 127.0.0.2, so its address lockout stays apart)
# bad passwords, portal sign-in + pages + sign-out, owner admin API calls, aborted uploads
# (a chunk, then DELETE or abandoned), slow clients (256 KiB trickled up in 4 KiB pieces,
# read down 8 KiB every 0.2 s).
#
# Every SOAK_SAMPLE_SECONDS: VmRSS, open fds, threads (/proc/PID), metadata.db + WAL size,
# files in storage/uploads, per-activity p50/p99, uploads abandoned -> samples.csv.
# Verdict rule: the median of the last third of the samples of RSS / fds / threads must be
# <= 1.10 x the median of the middle third + a floor (8 MiB / 16 / 4), and api_pull p50
# <= 2 x + 20 ms; in kill mode RSS/fds/threads restart with the process and are only
# reported. Scratch files in a sample <= uploads abandoned in the last 4 samples + 5. DB growth is reported in MB/hour (the audit log grows by design). Any
# unexpected request outcome, lost acknowledged manifest, scratch file left 135 s after the
# load stops (idle timeout 60 s + a housekeeping pass), or integrity check other than ok
# (PRAGMA integrity_check after every kill and at the end; amcheck bt_index_check of every
# btree index on PostgreSQL) fails the run. Exit status 0 = PASS.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
MINUTES=120
KILL_EVERY=0
BACKEND=embedded
OUT=
PLOT_ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) MINUTES=$2; shift 2 ;;
    --kill-every) KILL_EVERY=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --plot-only) PLOT_ONLY=1; OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $BACKEND in embedded|postgres-s3) ;; *) echo "soak.sh: --backend embedded|postgres-s3" >&2; exit 2 ;; esac
OUT=${OUT:-$REPO/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

rc=0
[ -n "$PLOT_ONLY" ] && [ -s "$OUT/samples.csv" ] || [ -z "$PLOT_ONLY" ] || die "no $OUT/samples.csv"
if [ -z "$PLOT_ONLY" ]; then
[ "$(id -u)" = 0 ] || die "run as root (docker, /etc/docker/certs.d, the 127.0.0.2 source address)"
for t in docker skopeo gnuplot tar /usr/bin/python3; do
  command -v "$t" >/dev/null || die "$t is missing (run scripts/install-deps.sh as root)"
done
[ "$BACKEND" = embedded ] || command -v psql >/dev/null || die "psql is missing (amcheck on PostgreSQL)"
bash scripts/start-dockerd.sh >&2 || die "cannot start dockerd (scripts/start-dockerd.sh)"
if [ -z "${SOAK_SKIP_BUILD:-}" ] && [ -z "${SOAK_WHARF_BIN:-}" ]; then
  log "cargo build --release -p wharf"
  cargo build --release -p wharf >&2 || die "build failed"
fi
WHARF_BIN=${SOAK_WHARF_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/wharf}
[ -x "$WHARF_BIN" ] || die "no binary at $WHARF_BIN"

# ---------------------------------------------------------------- PostgreSQL + Garage
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wharf-soak-backend.XXXXXX")
# shellcheck source=scripts/throwaway-backends.sh
source "$REPO/scripts/throwaway-backends.sh"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  throwaway_stop "$TMP"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A throw-away PostgreSQL (Debian's defaults, fsync on) and one-node Garage, as
# scripts/bench-scale.sh starts them.
if [ "$BACKEND" = postgres-s3 ] && [ -z "${WHARF_DATABASE_URL:-}" ]; then
  throwaway_postgres "$TMP"
  throwaway_garage "$TMP" soak-key wharf
  export WHARF_DATABASE_URL=$THROWAWAY_DATABASE_URL WHARF_STORAGE_BACKEND=s3 WHARF_STORAGE_S3_ENDPOINT=$S3_URL \
    WHARF_STORAGE_S3_REGION=garage WHARF_STORAGE_S3_BUCKET=wharf WHARF_STORAGE_S3_PATH_STYLE=true \
    WHARF_STORAGE_S3_ACCESS_KEY_ID=$S3_KEY WHARF_STORAGE_S3_SECRET_ACCESS_KEY=$S3_SECRET
fi

log "soak: $MINUTES min, kill -9 every ${KILL_EVERY} min (0 = never), backend $BACKEND, out $OUT"
/usr/bin/python3 scripts/soak-driver.py --bin "$WHARF_BIN" --out "$OUT" --minutes "$MINUTES" \
  --kill-every "$KILL_EVERY" --backend "$BACKEND" --sample-seconds "${SOAK_SAMPLE_SECONDS:-60}" || rc=$?
fi

# ---------------------------------------------------------------- plots
CSV=$OUT/samples.csv
if [ -s "$CSV" ] && [ "$(wc -l <"$CSV")" -gt 2 ]; then
  gnuplot <<EOF || log "gnuplot failed (the CSV is still there)"
set datafile separator ","
set key autotitle columnhead outside bottom
set terminal pngcairo size 900,600 font ",10" noenhanced
set xlabel "minute"
set grid
set output "$OUT/resources.png"
set yrange [0:*]
set multiplot layout 2,2 title "Wharf soak: process resources ($(tail -n 1 "$CSV" | cut -d, -f12) kill -9 restarts)"
set title "RSS (MiB)"; plot "$CSV" using 1:(\$3/1024) with linespoints title "VmRSS"
set title "open file descriptors"; plot "$CSV" using 1:4 with linespoints title "fds"
set title "threads"; plot "$CSV" using 1:5 with linespoints title "threads"
set title "upload scratch files"; plot "$CSV" using 1:8 with linespoints title "storage/uploads"
unset multiplot
set yrange [*:*]
set output "$OUT/database.png"
set title "metadata database (MB)"
plot "$CSV" using 1:(\$6/1e6) with linespoints title "metadata.db", "" using 1:(\$7/1e6) with linespoints title "WAL"
set logscale y
set output "$OUT/latency-p50.png"
set title "per-minute p50 latency by activity (ms, log scale)"
plot for [i=13:41:2] "$CSV" using 1:i with linespoints title columnhead(i)
set output "$OUT/latency-p99.png"
set title "per-minute p99 latency by activity (ms, log scale)"
plot for [i=14:42:2] "$CSV" using 1:i with linespoints title columnhead(i)
EOF
  log "plots: $OUT/{resources,database,latency-p50,latency-p99}.png"
fi
log "summary: $OUT/summary.txt (exit $rc)"
exit $rc
