#!/bin/sh
# Build the libFuzzer harnesses and run each for SECONDS (default 20).
#
#   spec/fuzz/run.sh [SECONDS] [HARNESS...]   fuzz (all harnesses by default)
#   spec/fuzz/run.sh replay [HARNESS...]      run the saved crash inputs and the
#                                             seed corpora once each (after a fix)
#
# Builds in build-fuzz/ (FUZZ_BUILD=DIR for another folder; FUZZ_NO_BUILD=1
# to use it as it is).  New corpus entries go to build-fuzz/fuzz-corpus/<h>/,
# crash inputs to build-fuzz/fuzz-crashes/<h>-*, logs to build-fuzz/fuzz-logs/.
# Exits 1 if any harness found a crash (or a replayed input still crashes).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_DIR=$ROOT/spec/fuzz
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
ALL="container app_output datapath json exec rest pattern copy"

MODE=fuzz
DURATION=20
if [ $# -gt 0 ] && [ "$1" = replay ]; then MODE=replay; shift
elif [ $# -gt 0 ] && [ -n "$1" ] && [ -z "$(printf '%s' "$1" | tr -d 0-9)" ]; then DURATION=$1; shift
fi
HARNESSES=${*:-$ALL}

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  cmake -S "$ROOT" -B "$BUILD" -DLSR_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 2
  cmake --build "$BUILD" --target fuzz_build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null || {
    echo "run.sh: the build failed; run: cmake --build $BUILD --target fuzz_build" >&2; exit 2; }
fi

# per-harness options: a dictionary, and for exec inputs over its 4096-byte limit
options() {
  case $1 in
    datapath) echo "-dict=$FUZZ_DIR/dict/datapath.dict -timeout=10" ;;
    exec) echo "-max_len=8192 -timeout=20" ;;
    pattern) echo "-dict=$FUZZ_DIR/dict/pattern.dict -max_len=512 -timeout=10" ;;
    *) echo "-dict=$FUZZ_DIR/dict/json.dict -timeout=10" ;;
  esac
}

mkdir -p "$BUILD/fuzz-logs" "$BUILD/fuzz-crashes"
status=0
for h in $HARNESSES; do
  bin=$BUILD/fuzz_$h
  [ -x "$bin" ] || { echo "run.sh: no harness $bin" >&2; status=1; continue; }
  log=$BUILD/fuzz-logs/$h.log
  if [ $MODE = replay ]; then
    # the seeds in one go, then each saved crash input on its own
    # shellcheck disable=SC2046
    if "$bin" $(options "$h") "$FUZZ_DIR"/corpus/"$h"/* >"$log" 2>&1; then
      echo "$h: seeds: no crash"
    else
      echo "$h: seeds: CRASH (see $log)"; status=1
    fi
    for f in "$FUZZ_DIR"/crashes/"$h"-*; do
      [ -e "$f" ] || continue
      flog=$BUILD/fuzz-logs/replay-$(basename "$f").log
      # shellcheck disable=SC2046
      if "$bin" $(options "$h") "$f" >"$flog" 2>&1; then
        echo "$h: $(basename "$f"): no crash (fixed)"
      else
        echo "$h: $(basename "$f"): CRASH: $(grep -E "FUZZ CHECK FAILED|SUMMARY: " "$flog" | head -1)"
        status=1
      fi
    done
    continue
  fi
  mkdir -p "$BUILD/fuzz-corpus/$h"
  # shellcheck disable=SC2046
  "$bin" -max_total_time="$DURATION" -rss_limit_mb=2048 -print_final_stats=1 $(options "$h") \
    -artifact_prefix="$BUILD/fuzz-crashes/$h-" "$BUILD/fuzz-corpus/$h" "$FUZZ_DIR/corpus/$h" >"$log" 2>&1
  rc=$?
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "$h: ${DURATION}s, ${execs:-?} execs (${rate:-?}/s), $cov, no crash"
  else
    echo "$h: CRASH after ${execs:-?} execs, $cov (log: $log)"
    grep -E "FUZZ CHECK FAILED|ERROR: |SUMMARY: |Test unit written" "$log" | head -4 | sed 's/^/    /'
    status=1
  fi
done
exit $status
