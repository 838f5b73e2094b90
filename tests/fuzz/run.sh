#!/usr/bin/env bash
# Longer fuzzing of every target (make fuzz): SECONDS per target (default 300), on a
# scratch copy of each seed corpus; new interesting inputs stay in build/fuzz/corpus-<name>.
# A crash leaves its reproducer in build/fuzz/ and fails the run.
set -u
cd "$(dirname "$0")/../.."
secs=${1:-300}
fail=0
for f in build/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  work=build/fuzz/corpus-${name#fuzz_}
  mkdir -p "$work"
  cp -rn "tests/fuzz/corpus/${name#fuzz_}/." "$work/" 2>/dev/null || true
  echo "== $name for ${secs}s"
  if ! (cd build/fuzz && "./$name" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 "corpus-${name#fuzz_}"); then
    echo "FAIL $name"
    fail=1
  fi
done
exit $fail
