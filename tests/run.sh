#!/usr/bin/env bash
# Runs every test and prints one closing line: "N passed, N failed".
#   unit         every build/dev/test_* binary (ASan + UBSan), each prints its own counts
#   fuzz smoke   every build/fuzz/fuzz_* target for FUZZ_SMOKE_SECONDS (default 20) on its seed corpus,
#                FUZZ_SMOKE_JOBS (default: the number of cores) at a time
#   integration  pytest against the real broker (build/dev/runnel) with real clients
#   js           node's test runner with kafkajs against the real broker
# Set RN_TEST_ONLY=unit|fuzz|integration|js to run one group.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
passed=0
failed=0
failures=()
only=${RN_TEST_ONLY:-}
mkdir -p build/test-logs

count_line() { # parse "N passed, N failed" from a file's last matching line
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  if [ -n "$line" ]; then
    echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1 \2/'
  fi
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ -z "$only" ] || [ "$only" = unit ]; then
  echo "== unit tests"
  for t in build/dev/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log=build/test-logs/$name.log
    (cd build/dev && timeout 600 "./$name") >"$log" 2>&1
    rc=$?
    counts=$(count_line "$log")
    if [ -n "$counts" ]; then
      p=${counts% *}; f=${counts#* }
    else
      p=0; f=1
    fi
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" != 0 ]; then failures+=("unit/$name (see $log)"); echo "FAIL $name"; tail -20 "$log"; else echo "ok   $name ($p)"; fi
  done
fi

if [ -z "$only" ] || [ "$only" = fuzz ]; then
  # Targets run FUZZ_SMOKE_JOBS at a time (default: one per core); each still fuzzes for its
  # full time on a core of its own.
  jobs=${FUZZ_SMOKE_JOBS:-$(nproc)}
  echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS:-20}s each, $jobs at a time)"
  fuzz_one() { # runs one target; its exit status in build/test-logs/<name>.rc
    local f=$1 name corpus work log
    name=$(basename "$f")
    corpus=tests/fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
    log=build/test-logs/$name.log
    timeout 300 "$f" -max_total_time="${FUZZ_SMOKE_SECONDS:-20}" -rss_limit_mb=2048 -timeout=10 "$work" >"$log" 2>&1
    echo $? >"build/test-logs/$name.rc"
    rm -rf "$work"
  }
  targets=()
  for f in build/fuzz/fuzz_*; do
    [ -x "$f" ] && targets+=("$f")
  done
  for f in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    rm -f "build/test-logs/$(basename "$f").rc"
    fuzz_one "$f" &
  done
  wait
  for f in "${targets[@]}"; do
    name=$(basename "$f")
    log=build/test-logs/$name.log
    if [ "$(cat "build/test-logs/$name.rc" 2>/dev/null)" = 0 ]; then
      passed=$((passed + 1)); echo "ok   $name"
    else
      failed=$((failed + 1)); failures+=("fuzz/$name (see $log)"); echo "FAIL $name"; tail -30 "$log"
    fi
  done
fi

if [ -z "$only" ] || [ "$only" = integration ]; then
  echo "== integration tests (pytest)"
  xml=build/test-logs/pytest.xml
  rm -f "$xml"
  RUNNEL_BIN=${RUNNEL_BIN:-$root/build/dev/runnel} timeout 3600 /usr/bin/python3 -m pytest tests/integration \
      -q -p no:cacheprovider --junitxml="$xml" ${PYTEST_ARGS:-}
  rc=$?
  if [ -f "$xml" ]; then
    read -r t f e s < <(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) for s in suites)
e = sum(int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t, f, e, sk)
PY
)
    passed=$((passed + t - f - e - s)); failed=$((failed + f + e))
    [ $((f + e)) -ne 0 ] && failures+=("integration: $((f + e)) failed")
  elif [ $rc -ne 0 ]; then
    failed=$((failed + 1)); failures+=("integration: pytest did not run (exit $rc)")
  fi
fi

if [ -z "$only" ] || [ "$only" = js ]; then
  if ls tests/integration/js/*.test.js >/dev/null 2>&1; then
    echo "== integration tests (kafkajs)"
    log=build/test-logs/js.log
    RUNNEL_BIN=${RUNNEL_BIN:-$root/build/dev/runnel} timeout 1200 node --test tests/integration/js/ 2>&1 | tee "$log" | grep -E '^(not ok|ok|# )' || true
    p=$(grep -E '^# pass ' "$log" | tail -1 | awk '{print $3}')
    f=$(grep -E '^# fail ' "$log" | tail -1 | awk '{print $3}')
    if [ -z "$p" ]; then p=0; f=1; fi
    passed=$((passed + p)); failed=$((failed + ${f:-0}))
    [ "${f:-0}" != 0 ] && failures+=("js: $f failed (see $log)")
  fi
fi

if [ ${#failures[@]} -gt 0 ]; then
  echo "== failures"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
