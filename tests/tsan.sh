#!/usr/bin/env bash
# ThreadSanitizer check of the worker pool and of the library used from several threads:
# builds the static library and the three unit tests that run threads (test_threads,
# test_batch, test_batch_text) with -DDEID_TSAN=ON (gcc's -fsanitize=thread; libtorch off)
# in build-tsan-ci, and runs them. Any data race or lock-order inversion fails the step
# (halt_on_error=1). tests/tsan.supp lists the reports that come from uninstrumented system
# libraries, never our own code. About 1.5 minutes on 2 cores (one build job). ctest runs it
# as tsan.threads (so the README's test command includes it), with DEID_TSAN_BUILD inside the
# build tree.
# Environment: DEID_JOBS (build jobs, default nproc), DEID_TSAN_BUILD (default build-tsan-ci).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${DEID_TSAN_BUILD:-build-tsan-ci}
jobs=${DEID_JOBS:-$(nproc)}
t0=$SECONDS

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEID_TSAN=ON -DDEID_WITH_TORCH=OFF \
  -DDEID_BUILD_EXAMPLES=OFF >"$build.log" 2>&1 || { cat "$build.log"; exit 1; }
rm -f "$build.log"
cmake --build "$build" -j"$jobs" --target test_threads test_batch test_batch_text
t1=$SECONDS

# gcc 12's TSan cannot map its shadow memory on kernels with high ASLR entropy
# (vm.mmap_rnd_bits > 28: "FATAL: ThreadSanitizer: unexpected memory mapping"): run the tests
# with address randomisation off when setarch can do that.
norandom=()
if setarch "$(uname -m)" -R true 2>/dev/null; then
  norandom=(setarch "$(uname -m)" -R)
fi
# OMP_THREAD_LIMIT=1: Tesseract's OpenMP threads only spin on a small machine (see text.h).
OMP_THREAD_LIMIT=1 \
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp" \
  "${norandom[@]}" ctest --test-dir "$build" -R '^unit\.test_(threads|batch|batch_text)$' \
  --no-tests=error --output-on-failure
printf 'tsan: build %ds, tests %ds\n' $((t1 - t0)) $((SECONDS - t1))
