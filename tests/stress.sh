#!/usr/bin/env bash
# Flake hunt: the whole ctest suite RUNS times in a row on an idle machine, then BUSY_RUNS times
# with every core kept busy by spinning processes (started here, stopped on exit). Prints one line
# per run and a summary naming every test that failed and how often; exits 1 if any run failed.
# A test that passes only most of the time is a bug: fix the race, in the code or in the test.
#
#     make stress                      # RUNS=20 BUSY_RUNS=10
#     RUNS=3 BUSY_RUNS=2 make stress   # a shorter hunt
#     TESTS=integration.test_cluster make stress   # only tests matching this ctest -R regex
# Env: BUILD_DIR (build), RUNS (20), BUSY_RUNS (10), TESTS (all), JOBS (nproc)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
RUNS=${RUNS:-20}
BUSY_RUNS=${BUSY_RUNS:-10}
JOBS=${JOBS:-$(nproc)}
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/evstream-stress.XXXXXX")
burners=()
stop_burners() {
  [[ ${#burners[@]} -gt 0 ]] && kill "${burners[@]}" 2>/dev/null
  [[ ${#burners[@]} -gt 0 ]] && wait "${burners[@]}" 2>/dev/null
  burners=()
}
trap stop_burners EXIT

declare -A failures=()
passed=0
failed=0

one_run() {  # one_run LABEL INDEX
  local label=$1 i=$2 log="$LOG_DIR/$1-$2.log" start=$SECONDS
  (cd "$BUILD_DIR" && ctest -j "$JOBS" --output-on-failure ${TESTS:+-R "$TESTS"}) >"$log" 2>&1
  local rc=$?
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
    echo "stress: $label run $i passed ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    local names
    names=$(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (\(Failed\|Timeout\|SEGFAULT\|Subprocess aborted\|Exception\).*/\1/p' "$log")
    echo "stress: $label run $i FAILED ($((SECONDS - start)) s): ${names//$'\n'/, } (log $log)"
    while read -r name; do
      [[ -n $name ]] && failures[$name]=$((${failures[$name]:-0} + 1))
    done <<<"$names"
  fi
}

for i in $(seq "$RUNS"); do one_run idle "$i"; done
if [[ $BUSY_RUNS -gt 0 ]]; then
  for _ in $(seq "$(nproc)"); do
    (while :; do :; done) &
    burners+=($!)
  done
  for i in $(seq "$BUSY_RUNS"); do one_run busy "$i"; done
  stop_burners
fi

echo "stress: $passed of $((passed + failed)) runs passed ($RUNS idle, $BUSY_RUNS with every core busy)"
for name in "${!failures[@]}"; do echo "stress:   $name failed ${failures[$name]} time(s)"; done
if [[ $failed -gt 0 ]]; then
  echo "stress: logs kept in $LOG_DIR"
  exit 1
fi
rm -rf "$LOG_DIR"
