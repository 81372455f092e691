#!/usr/bin/python3
"""deid-ocr speed: seconds per image for 512x512 and 1024x1024 generated images on one core,
images/s with every core, and the reference measured in the same run: the tesseract command
line (full page, default settings, OMP_THREAD_LIMIT=1) on the same files.

The images come from tests/generators/make_text_images.py (PNG, grey and colour, CT/X-ray/US/
dark backgrounds with burned-in names, IDs, dates and annotations), generated once and cached
under $TMPDIR. deid-ocr runs over each folder with --redact all --workers 1 (start-up and the
engine's load are included, spread over the images); tesseract runs once per file. It prints
seconds per image, the ratio tesseract/deid-ocr (> 1: deid-ocr is faster than reading the page
once with Tesseract), and the issue's target (<= 0.5 s per 512x512 image, i.e. >= 25x faster than
the 12-15 s of the Python pipeline). It only reports; it never fails on a figure.

Usage: tests/bench/ocr/bench_ocr.py [--count 20] [--tool PATH] [--no-tesseract] [--cache DIR]
                                    [--sizes 512x512,1024x1024] [--tool-args "..."]
The tool is --tool, $DEID_OCR, or the newest build*/tools/deid-ocr.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_corpus  # noqa: E402  (the same tool lookup, generator and key)


def corpus(cache, size, count, seed):
    d = os.path.join(cache, f"{size}-{count}-{seed}")
    if not os.path.exists(os.path.join(d, "manifest.json")):
        eval_corpus.generate(d, count, seed, ["--size", size, "--formats", "png"])
    return d


def images_of(d):
    root = os.path.join(d, "images", "raster")
    return sorted(os.path.join(root, n) for n in os.listdir(root) if n.endswith(".png"))


def time_tool(tool, d, workers, extra):
    work = tempfile.mkdtemp(prefix="deid-ocr-bench-")
    try:
        key = eval_corpus.write_key(os.path.join(work, "key"))
        args = [tool, os.path.join(d, "images"), os.path.join(work, "out"),
                os.path.join(work, "hdr"), "--key", key, "--workers", str(workers), "--quiet",
                "--redact", "all", "--phi-file", os.path.join(d, "phi.txt")] + extra
        t = time.monotonic()
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        dt = time.monotonic() - t
        if p.returncode not in (0, 1):
            sys.exit(f"bench_ocr: deid-ocr failed (exit {p.returncode}):\n"
                     f"{p.stderr.decode(errors='replace')[-2000:]}")
        return dt
    finally:
        shutil.rmtree(work, ignore_errors=True)


def time_tesseract(files):
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    t = time.monotonic()
    for f in files:
        subprocess.run(["tesseract", f, "-"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, check=False)
    return time.monotonic() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=20, help="images per size")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sizes", default="512x512,1024x1024")
    ap.add_argument("--tool")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "deid-ocr-bench"))
    ap.add_argument("--no-tesseract", action="store_true")
    ap.add_argument("--tool-args", default="", help="extra deid-ocr options")
    a = ap.parse_args(argv)
    tool = eval_corpus.find_tool(a.tool)
    if not tool:
        sys.exit("bench_ocr: deid-ocr not found (build it, or give --tool / $DEID_OCR)")
    tess = None if a.no_tesseract else shutil.which("tesseract")
    extra = shlex.split(a.tool_args)
    cores = os.cpu_count() or 1
    print(f"deid-ocr: {tool}; reference: {tess or 'none (tesseract CLI not found)'}; "
          f"{cores} cores; {a.count} PNG images per size")
    for size in [s for s in a.sizes.split(",") if s]:
        d = corpus(a.cache, size, a.count, a.seed)
        files = images_of(d)
        n = len(files)
        one = time_tool(tool, d, 1, extra) / n
        line = f"{size:>9}: deid-ocr {one:6.3f} s/image on 1 core"
        if cores > 1:
            allc = time_tool(tool, d, cores, extra)
            line += f", {n / allc:6.2f} images/s on {cores} cores"
        if tess:
            ref = time_tesseract(files) / n
            line += f"; tesseract CLI {ref:6.3f} s/image; ratio tesseract/deid-ocr {ref / one:5.2f}"
        if size == "512x512":
            line += (f"; target <= 0.5 s ({'met' if one <= 0.5 else 'NOT met'}), "
                     f"{13.5 / one:5.1f}x faster than 12-15 s")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
