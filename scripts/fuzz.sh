#!/usr/bin/env bash
# Runs one fuzz target (or all of them, one after another) for SECONDS each:
#   scripts/fuzz.sh TARGET SECONDS      scripts/fuzz.sh all SECONDS      scripts/fuzz.sh list
# cargo-fuzz on the nightly toolchain (`cargo install cargo-fuzz --locked` once), no
# sanitizer (the code is safe Rust; the targets check properties and panics), debug
# assertions and overflow checks on. One libFuzzer process, no -jobs/-workers: the
# machine is shared.
# Seeds come from fuzz/corpus-seed/<target>/ (committed); the growing corpus lives in
# fuzz/corpus/<target>/ and findings in fuzz/artifacts/<target>/ (both ignored by git).
# Reproduce a finding: scripts/fuzz.sh TARGET repro fuzz/artifacts/TARGET/crash-…
# A summary line (execs/s, cov, ft, corpus) is appended to fuzz/runs.log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
export CARGO_TARGET_DIR=${WHARF_FUZZ_TARGET_DIR:-$root/fuzz/target}
targets=(canonical_json tuf_metadata tuf_update manifest multipart names jwt config keyfile)

dict_for() {
    case $1 in
        canonical_json) echo json ;;
        tuf_metadata | tuf_update) echo tuf ;;
        *) echo "$1" ;;
    esac
}

usage() {
    echo "usage: $0 TARGET|all SECONDS | $0 TARGET repro FILE | $0 list" >&2
    echo "targets: ${targets[*]}" >&2
    exit 2
}

build() {
    cargo +nightly fuzz build --fuzz-dir "$fuzz" -s none --target-dir "$CARGO_TARGET_DIR" "$@"
}

run_one() {
    local target=$1 seconds=$2
    local corpus="$fuzz/corpus/$target" artifacts="$fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    local log="$fuzz/artifacts/$target.log"
    echo "== $target for ${seconds}s (log: $log)"
    local status=0
    cargo +nightly fuzz run --fuzz-dir "$fuzz" -s none --target-dir "$CARGO_TARGET_DIR" "$target" \
        "$corpus" "$fuzz/corpus-seed/$target" -- \
        -dict="$fuzz/dict/$(dict_for "$target").dict" -max_total_time="$seconds" \
        -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    # The last status line, e.g. "#123456 DONE cov: 2345 ft: 6789 corp: 321/45Kb exec/s: 4321".
    local last execs
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    execs=$( (grep -E '^stat::number_of_executed_units' "$log" || true) | awk '{print $2}')
    local summary
    summary="$(date -u +%FT%TZ) $target ${seconds}s status=$status execs=${execs:-?} $(
        echo "$last" | grep -oE '(cov|ft|corp|exec/s): [^ ]+' | tr '\n' ' ')"
    echo "$summary" | tee -a "$fuzz/runs.log"
    if [ "$status" -ne 0 ]; then
        grep -E 'panicked at|Test unit written|SUMMARY' "$log" | head -5 || true
    fi
    return "$status"
}

[ $# -ge 1 ] || usage
case $1 in
    list) printf '%s\n' "${targets[@]}"; exit 0 ;;
esac
[ $# -ge 2 ] || usage
if [ "$2" = repro ]; then
    [ $# -eq 3 ] || usage
    build "$1"
    exec cargo +nightly fuzz run --fuzz-dir "$fuzz" -s none --target-dir "$CARGO_TARGET_DIR" "$1" "$3"
fi
[[ $2 =~ ^[0-9]+$ ]] || usage
build
if [ "$1" = all ]; then
    failed=0
    for t in "${targets[@]}"; do run_one "$t" "$2" || failed=1; done
    exit "$failed"
fi
printf '%s\n' "${targets[@]}" | grep -qx "$1" || usage
run_one "$1" "$2"
