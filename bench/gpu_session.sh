#!/usr/bin/env bash
# One GPU session in one call, well inside 10 minutes: build and install fastinit from
# this working tree (default CUDA architectures), run the CUDA tests, the whole test
# suite, the CUDA tests under compute-sanitizer memcheck, and bench/bench_cuda.py.
#
#   OUT=/some/folder bash bench/gpu_session.sh
#
# Every step runs under `timeout` (the limits below, with 5 s each to kill a step
# that ignores SIGTERM, sum to 560 s) and writes its log to $OUT; a failing step does
# not stop the ones after it, except that nothing runs against a build that failed.
# Files in $OUT (7): env.txt build.log tests_cuda.log tests_all.log sanitizer.log
# bench_cuda.txt bench_cuda.json. Each step ends with a one-line summary carrying its
# exit code; the script exits nonzero if any step failed or was skipped.
set -euo pipefail

cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for logs and results}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

# Seconds per step, each overridable from the environment: environment 3 x 5, build
# 170 + 20 for the import check, tests 55 + 100, sanitizer 125, benchmark 50 (535 in
# all), plus up to 5 x 5 for --kill-after.
LIMIT_ENV=${LIMIT_ENV:-5}
LIMIT_BUILD=${LIMIT_BUILD:-170}
LIMIT_IMPORT=${LIMIT_IMPORT:-20}
LIMIT_TESTS_CUDA=${LIMIT_TESTS_CUDA:-55}
LIMIT_TESTS_ALL=${LIMIT_TESTS_ALL:-100}
LIMIT_SANITIZER=${LIMIT_SANITIZER:-125}
LIMIT_BENCH=${LIMIT_BENCH:-50}
KILL_AFTER=${KILL_AFTER:-5}

SUMMARY=()
FAILED=0
START=$SECONDS

# record NAME RC SECONDS LOG [NOTE]: the step's one-line summary, kept for the end.
record() {
  local name=$1 rc=$2 took=$3 log=$4 note=${5:-}
  local verdict=ok
  if [[ $rc == skipped ]]; then
    verdict=SKIPPED
    FAILED=1
  elif ((rc == 124 || rc == 137)); then
    verdict=TIMEOUT
    FAILED=1
  elif ((rc != 0)); then
    verdict=FAILED
    FAILED=1
  fi
  local line
  line=$(printf '[%s] %-10s rc=%-7s %4ss  %s%s' "$verdict" "$name" "$rc" "$took" "$log" \
    "${note:+  ($note)}")
  SUMMARY+=("$line")
  echo "$line"
}

# run LIMIT LOG COMMAND...: the command under timeout, output to LOG; sets RC and TOOK.
run() {
  local limit=$1 log=$2
  shift 2
  local began=$SECONDS
  RC=0
  timeout --kill-after="$KILL_AFTER" "$limit" "$@" >"$log" 2>&1 || RC=$?
  TOOK=$((SECONDS - began))
}

# pytest_tail LOG: the lines of a pytest log that say how it went; after a failure,
# also its last lines (a crash or a timeout leaves no summary).
pytest_tail() {
  local outcome='^(FAILED|ERROR|SKIPPED|XPASS)|^=* ?[0-9]+ (passed|failed|errors?|skipped)'
  grep -E "$outcome|no tests ran" "$1" | tail -n 20 || true
  if ((RC != 0)); then
    echo "--- rc=$RC; the end of $(basename "$1"):"
    tail -n 8 "$1"
  fi
}

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
echo "=== GPU session $(date -u +%Y-%m-%dT%H:%M:%SZ) in $PWD, commit $COMMIT"
git status --short 2>/dev/null | head -n 20 || true

# 1. The machine: nvidia-smi's summary here, the details in env.txt.
echo
echo "=== environment"
if command -v nvidia-smi >/dev/null; then
  timeout "$LIMIT_ENV" nvidia-smi || true
  timeout "$LIMIT_ENV" nvidia-smi --format=csv \
    --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit || true
fi
{
  echo "## nvidia-smi -q"
  timeout "$LIMIT_ENV" nvidia-smi -q 2>&1 || true
  echo "## nvcc --version"
  nvcc --version 2>&1 || true
  echo "## compute-sanitizer --version"
  compute-sanitizer --version 2>&1 || true
  echo "## $PY"
  "$PY" -VV 2>&1 || true
  PACKAGES='torch|cupy.*|numpy|ml.dtypes|scipy|pytest|hypothesis|scikit.build.core|pybind11'
  "$PY" -m pip list 2>/dev/null | grep -iE "^($PACKAGES|cmake|ninja|fastinit) " || true
  echo "## CPU"
  lscpu 2>/dev/null | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\))' || true
} >"$OUT/env.txt" 2>&1
nvcc --version 2>/dev/null | tail -n 1 || echo "nvcc: not found"

# 2. Build and install from this tree; a second call on a warm machine reuses build/gpu.
echo
echo "=== build and install (limit ${LIMIT_BUILD}s, log build.log)"
run "$LIMIT_BUILD" "$OUT/build.log" \
  "$PY" -m pip install --no-build-isolation --no-deps -v . --config-settings=build-dir=build/gpu
BUILD_NOTE=""
if ((RC == 0)); then
  grep -E 'fastinit: (CUDA backend|no CUDA compiler)' "$OUT/build.log" | tail -n 1 || true
  CHECK='import fastinit; print(fastinit.__file__, fastinit.cuda_status())'
  if STATUS=$(cd /tmp && timeout "$LIMIT_IMPORT" "$PY" -c "$CHECK" 2>&1); then
    echo "$STATUS"
    [[ $STATUS == *available=True* ]] || BUILD_NOTE="installed; fastinit cannot run CUDA kernels"
  else
    echo "$STATUS" | tail -n 20
    RC=1
    BUILD_NOTE="installed, but import fastinit fails"
  fi
else
  echo "--- build failed; the end of build.log:"
  tail -n 60 "$OUT/build.log"
fi
BUILD_RC=$RC
record build "$RC" "$TOOK" build.log "$BUILD_NOTE"

if ((BUILD_RC != 0)); then
  for step in tests_cuda tests_all sanitizer bench; do
    record "$step" skipped 0 - "the build failed"
  done
else
  # 3. The tests that need nvcc or a GPU.
  echo
  echo "=== pytest -m cuda (limit ${LIMIT_TESTS_CUDA}s, log tests_cuda.log)"
  run "$LIMIT_TESTS_CUDA" "$OUT/tests_cuda.log" \
    "$PY" -m pytest -q -m cuda tests/ -rs -p no:cacheprovider
  pytest_tail "$OUT/tests_cuda.log"
  record tests_cuda "$RC" "$TOOK" tests_cuda.log

  # 4. The whole suite, stopping at the first failure.
  echo
  echo "=== pytest, whole suite (limit ${LIMIT_TESTS_ALL}s, log tests_all.log)"
  run "$LIMIT_TESTS_ALL" "$OUT/tests_all.log" "$PY" -m pytest -q -x tests/ -p no:cacheprovider
  pytest_tail "$OUT/tests_all.log"
  record tests_all "$RC" "$TOOK" tests_all.log

  # 5. The CUDA tests under memcheck. Without torch's caching allocator every torch
  # tensor is its own cudaMalloc, so memcheck sees its exact bounds.
  echo
  echo "=== compute-sanitizer memcheck (limit ${LIMIT_SANITIZER}s, log sanitizer.log)"
  SANITIZED=tests/test_cuda.py
  SANITIZER_NOTE=""
  if [[ ! -f $SANITIZED ]]; then
    SANITIZED=tests/
    SANITIZER_NOTE="tests/test_cuda.py absent: ran -m cuda over tests/"
  fi
  if command -v compute-sanitizer >/dev/null; then
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 run "$LIMIT_SANITIZER" "$OUT/sanitizer.log" \
      compute-sanitizer --tool memcheck --error-exitcode 1 --target-processes all \
      "$PY" -m pytest -q -m cuda "$SANITIZED" -p no:cacheprovider
    pytest_tail "$OUT/sanitizer.log"
    ERRORS=$(grep -E 'ERROR SUMMARY' "$OUT/sanitizer.log" | tail -n 1 | sed 's/^=* *//' || true)
    echo "${ERRORS:-no ERROR SUMMARY line in sanitizer.log}"
    SANITIZER_NOTE="${ERRORS:-no ERROR SUMMARY}${SANITIZER_NOTE:+; $SANITIZER_NOTE}"
  else
    echo "compute-sanitizer: not found" | tee "$OUT/sanitizer.log"
    RC=127
    TOOK=0
  fi
  record sanitizer "$RC" "$TOOK" sanitizer.log "$SANITIZER_NOTE"

  # 6. The benchmark, its output shown as it comes.
  echo
  echo "=== bench/bench_cuda.py (limit ${LIMIT_BENCH}s, bench_cuda.txt, bench_cuda.json)"
  BEGAN=$SECONDS
  RC=0
  timeout --kill-after="$KILL_AFTER" "$LIMIT_BENCH" \
    "$PY" bench/bench_cuda.py --json "$OUT/bench_cuda.json" 2>&1 \
    | tee "$OUT/bench_cuda.txt" || RC=$?
  record bench "$RC" $((SECONDS - BEGAN)) bench_cuda.txt
fi

echo
FILES=$(find "$OUT" -maxdepth 1 -type f | wc -l)
echo "=== summary ($((SECONDS - START)) s in all; $FILES files in \$OUT)"
for line in "${SUMMARY[@]}"; do
  echo "$line"
done
if ((FAILED)); then
  echo "RESULT: a step failed"
  exit 1
fi
echo "RESULT: every step passed"
