#!/usr/bin/env bash
# Set up libdeid on Debian 12: install the dependencies, build into ./build, and de-identify the
# bundled synthetic sample data as a demonstration. Re-running is fast: installed packages are
# skipped, the build is incremental and the demo output is rewritten.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: cmake/setup.sh [options]

  (no option)        install dependencies, build into ./build, run the demo
  --no-install       do not install Debian packages (they must already be there)
  --no-torch         do not install libtorch-dev (the learned ultrasound detector's backend,
                     installed by default; the build works without it, minus that detector)
  --no-demo          build only, do not run the demo
  --dev              also install the developer tools: clang (tests/fuzz/run_fuzz.sh) and
                     valgrind
  --build-dir DIR    build directory (default: build)
  --build-type TYPE  CMAKE_BUILD_TYPE (default: RelWithDebInfo)
  -h, --help         this text

After it: `ctest --test-dir build --output-on-failure` runs every test (C and Python).
EOF
}

install=1 torch=1 demo=1 dev=0 build_dir=build build_type=RelWithDebInfo
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0 ;;
    --with-torch) torch=1 ;;
    --no-torch) torch=0 ;;
    --no-demo) demo=0 ;;
    --dev) dev=1 ;;
    --demo) demo=1 ;;
    --build-dir) build_dir=${2:?--build-dir needs a value}; shift ;;
    --build-type) build_type=${2:?--build-type needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf '\n== %s\n' "$*"; }

# ---- 1. Debian packages ----------------------------------------------------------------------
packages=(
  build-essential g++ cmake pkg-config git openssl
  libgdcm-dev libgdcm-tools libsodium-dev libjansson-dev libjpeg62-turbo-dev libstb-dev
  libtesseract-dev tesseract-ocr-eng libleptonica-dev libpng-dev libnifti2-dev
  libniftiio-dev zlib1g-dev dcm2niix
  dicom3tools dcmtk hyperfine
  python3-pydicom python3-numpy python3-pytest python3-venv python3-pip python3-setuptools
  python3-pil fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf tesseract-ocr
)
[ "$dev" = 1 ] && packages+=(clang valgrind)
# Optional: installed on their own, so that a failure there leaves a working build without them.
optional=()
[ "$torch" = 1 ] && optional+=(libtorch-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "dependencies: all ${#packages[@]} Debian packages present"
elif [ "$install" = 0 ]; then
  echo "setup.sh: missing Debian packages (--no-install given): ${missing[*]}" >&2
  exit 1
else
  say "installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "setup.sh: need root or sudo to run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$install" = 1 ] && [ ${#optional[@]} -gt 0 ]; then
  opt_missing=()
  for p in "${optional[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || opt_missing+=("$p")
  done
  if [ ${#opt_missing[@]} -gt 0 ]; then
    say "installing optional ${opt_missing[*]}"
    if [ "$(id -u)" = 0 ]; then osudo=(); else osudo=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    { "${osudo[@]}" apt-get update -qq &&
      "${osudo[@]}" apt-get install -y -qq --no-install-recommends "${opt_missing[@]}"; } ||
      echo "setup.sh: warning: could not install ${opt_missing[*]}: building without them" >&2
  fi
fi

# ---- 2. Build ---------------------------------------------------------------------------------
say "building into $build_dir ($build_type)"
mkdir -p "$build_dir"
log=$build_dir/configure.log
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
grep -E "libdeid features" "$log" || true
cmake --build "$build_dir" -j"$(nproc)"

# ---- 3. Demo ----------------------------------------------------------------------------------
[ "$demo" = 1 ] || exit 0
sample=tests/data/sample/dicom
if [ ! -d "$sample" ]; then
  echo "setup.sh: no sample data in $sample: skipping the demo" >&2
  exit 0
fi
demo_dir=$build_dir/demo
rm -rf "$demo_dir/out" "$demo_dir/headers"
mkdir -p "$demo_dir"
say "demo: de-identifying the synthetic files in $sample"
"$build_dir/tools/deid-header" "$sample" "$demo_dir/out" "$demo_dir/headers" --key "$demo_dir/demo.key"

# Show one file before and after (dcmdump is DCMTK's, installed above).
first_in=$(find "$sample" -type f -name '*.dcm' | sort | head -n 1)
first_out=$(find "$demo_dir/out" -type f -name '*.dcm' | sort | head -n 1)
if command -v dcmdump >/dev/null && [ -n "$first_in" ] && [ -n "$first_out" ]; then
  for f in "$first_in" "$first_out"; do
    say "$f"
    dcmdump -q +P PatientName +P PatientID +P PatientBirthDate +P StudyInstanceUID \
      +P PatientIdentityRemoved +P DeidentificationMethod "$f" 2>/dev/null || true
  done
fi

# The sample's identifying values all contain "PHIX" (tests/data/sample/README.md). keys.csv
# is the link back to the originals: it holds them by design and is left out of the count.
left=$(grep -rl --exclude=keys.csv PHIX "$demo_dir/out" "$demo_dir/headers" | wc -l || true)
say "output files containing a PHIX marker: $left (inputs containing one: $(grep -rl PHIX "$sample" | wc -l))"

cat <<EOF

== done
  de-identified DICOM:   $root/$demo_dir/out
  header JSON, keys.csv: $root/$demo_dir/headers (keys.csv maps back to the originals)
  pseudonym key:         $root/$demo_dir/demo.key (keep a real key private: it re-identifies)
  run every test:        ctest --test-dir $build_dir --output-on-failure
EOF
