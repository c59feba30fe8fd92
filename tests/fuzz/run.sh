#!/usr/bin/env bash
# `make fuzz`: runs every libFuzzer target built in BUILD_DIR (EVSTREAM_FUZZ=ON) for FUZZ_SECONDS
# each, one after the other, and prints per target the executions, the coverage reached (libFuzzer's
# cov: edges and ft: features), the corpus size and whether it crashed.
# Usage: tests/fuzz/run.sh BUILD_DIR [TARGET...]   (default: every fuzz_* in BUILD_DIR/tests/fuzz)
# The working corpus of each target grows in BUILD_DIR/corpus/<target> (seeded from
# tests/fuzz/corpus/<target>, never committed); a crash, leak, timeout or out-of-memory input is
# written to tests/fuzz/corpus/<target>/ (crash-<sha1>, ...) to become a regression case once fixed.
set -uo pipefail
cd "$(dirname "$0")/../.."
build_dir=${1:?usage: tests/fuzz/run.sh BUILD_DIR [TARGET...]}
shift
seconds=${FUZZ_SECONDS:-60}
bin_dir=$build_dir/tests/fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$bin_dir"/fuzz_*; do targets+=("${bin##*/fuzz_}"); done
fi

failed=()
summary=()
for target in "${targets[@]}"; do
  bin=$bin_dir/fuzz_$target
  seeds=tests/fuzz/corpus/$target
  work=$build_dir/corpus/$target
  log=$build_dir/fuzz-$target.log
  [ -x "$bin" ] || { echo "make fuzz: $bin was not built" >&2; exit 2; }
  mkdir -p "$work"
  echo "== fuzz_$target: ${seconds}s (log: $log)" >&2
  # -timeout: an input taking 10 s is a hang worth reporting; the corpus dirs: the first is the
  # writable working corpus, the second (seeds and past crashes) is only read.
  "$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$seeds/" "$work" "$seeds" >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
  corpus=$(find "$work" -type f | wc -l)
  if [ $status -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $status): $(grep -o "Test unit written to .*" "$log" | tail -1)"
    grep -m1 -B2 -A12 'ERROR: \|invariant violated\|terminate called\|deadly signal' "$log" >&2
    failed+=("$target")
  fi
  summary+=("$(printf '%-14s execs=%-10s execs/s=%-7s %-22s corpus=%-5s %s' "$target" \
    "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$corpus" "$result")")
done

echo "make fuzz: ${seconds}s per target"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "make fuzz: ${#failed[@]} target(s) failed: ${failed[*]}; inputs are in tests/fuzz/corpus/<target>/" >&2
  exit 1
fi
