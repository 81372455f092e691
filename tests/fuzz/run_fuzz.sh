#!/usr/bin/env bash
# Build the libFuzzer targets (clang, -DDEID_FUZZ=ON in build-fuzz) and run each for a while.
#   tests/fuzz/run_fuzz.sh [SECONDS] [TARGET...]     (default 60 s, every target)
# Seeds: every DICOM file of ../shared/data (and tests/data) up to 2 MB, and the committed inputs
# of tests/fuzz/corpus/<target> (regressions and minimised seeds, which ctest replays); the
# fuzz_volume target also gets the head CT slices joined by its separator. Corpora grow in build-fuzz/corpus/<t>,
# crashes, leaks and timeouts go to build-fuzz/artifacts/<t>/. Prints per target: executions,
# and what was found. Exit 1 when any target found something.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_deidentify fuzz_decode fuzz_fan fuzz_text_prep fuzz_volume)
b="$src/build-fuzz"
if [ ! -f "$b/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEID_FUZZ=ON \
    -DDEID_WITH_TORCH=OFF -DDEID_BUILD_TESTS=OFF -DDEID_BUILD_EXAMPLES=OFF >/dev/null || exit 1
fi
cmake --build "$b" -j"$(nproc)" --target "${targets[@]}" >/dev/null || exit 1
shared="$src/../shared/data"
seeds="$b/seeds"
if [ ! -d "$seeds" ]; then
  mkdir -p "$seeds/dicom" "$seeds/volume"
  find "$shared" "$src/tests/data" -type f -name '*.dcm' -size -2M 2>/dev/null |
    while read -r f; do cp "$f" "$seeds/dicom/$(echo "$f" | md5sum | cut -c1-16).dcm"; done
  # a volume seed: four slices of the head CT joined by fuzz_volume's separator
  if [ -d "$shared/ct/head_ct_5mm" ]; then
    ls "$shared/ct/head_ct_5mm"/*.dcm | head -4 | while read -r f; do cat "$f"; printf DEIDFUZZ; done \
      >"$seeds/volume/head4"
  fi
fi
found=0
for t in "${targets[@]}"; do
  [ -x "$b/tests/fuzz/$t" ] || { echo "$t: not built"; continue; }
  corpus="$b/corpus/$t" art="$b/artifacts/$t"
  mkdir -p "$corpus" "$art"
  extra="$seeds/dicom"
  [ "$t" = fuzz_volume ] && extra="$seeds/volume $seeds/dicom"
  [ -d "$src/tests/fuzz/corpus/$t" ] && extra="$extra $src/tests/fuzz/corpus/$t"
  log="$b/$t.log"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    LSAN_OPTIONS=suppressions="$src/tests/lsan.supp" \
    "$b/tests/fuzz/$t" "$corpus" $extra -max_total_time="$secs" -rss_limit_mb=2560 \
    -timeout=20 -max_len=2200000 -artifact_prefix="$art/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  if [ $rc -ne 0 ]; then
    found=1
    what=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$log")
    echo "$t: FOUND after ${runs:-?} runs: $what (log $log, input in $art)"
  else
    echo "$t: ${runs:-?} runs in ${secs} s, nothing found"
  fi
done
exit $found
