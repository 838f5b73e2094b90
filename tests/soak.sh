#!/usr/bin/env bash
# make soak: the seeded fault schedule (tests/integration/test_cluster_faults.py) with many
# rounds and several seeds, on 3 and 5 brokers in turn, until SOAK_MINUTES (default 10) are
# spent; a run still going then is interrupted. Prints one line per run
# with its seed (replay: RN_FAULT_SEED=<seed> RN_FAULT_ROUNDS=<rounds>) and a closing
# "N passed, N failed".
#   SOAK_MINUTES  time budget (default 10)
#   SOAK_ROUNDS   faults per run (default 12)
#   SOAK_SEEDS    seeds to run, space-separated (default: fresh random ones until the budget ends)
set -u
cd "$(dirname "$0")/.."
minutes=${SOAK_MINUTES:-10}
rounds=${SOAK_ROUNDS:-12}
seeds=${SOAK_SEEDS:-}
end=$(( $(date +%s) + minutes * 60 ))
mkdir -p build/test-logs
export RUNNEL_BIN=${RUNNEL_BIN:-$PWD/build/dev/runnel}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
failures=()
run=0
while :; do
  now=$(date +%s)
  [ $(( end - now )) -lt 90 ] && break # too little left for a run
  if [ -n "$seeds" ]; then
    set -- $seeds
    [ "$run" -ge "$#" ] && break
    shift "$run"
    seed=$1
  else
    seed=$(( (RANDOM << 15 | RANDOM) % 1000000 ))
  fi
  nodes=$(( run % 2 ? 5 : 3 ))
  run=$((run + 1))
  log=build/test-logs/soak-$seed-$nodes.log
  # SIGINT at the budget: pytest unwinds, the test's cleanup stops its brokers and unmounts.
  RN_FAULT_SEED=$seed RN_FAULT_ROUNDS=$rounds timeout -s INT -k 60 $(( end - now )) /usr/bin/python3 -m pytest \
    tests/integration/test_cluster_faults.py -q -p no:cacheprovider -x -s \
    -k "test_seeded_faults_exactly_once_identical_replicas and $nodes" >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok   seed $seed, $nodes brokers, $rounds rounds"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "--   seed $seed, $nodes brokers: stopped at the time budget"
  else
    failed=$((failed + 1))
    failures+=("RN_FAULT_SEED=$seed RN_FAULT_ROUNDS=$rounds ($nodes brokers, see $log)")
    echo "FAIL seed $seed, $nodes brokers (see $log)"
    grep -E "AssertionError|replay:" "$log" | head -5
  fi
done
for f in ${failures[@]+"${failures[@]}"}; do echo "failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
