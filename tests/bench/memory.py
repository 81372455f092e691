#!/usr/bin/python3
"""Peak memory (RSS) of the tools on long inputs, against tools that hold the whole image:

- ultrasound: a 1000-frame 600x800 colour clip (JPEG baseline, YBR_FULL_422, as scanners send
  it), made from a generated clip's frames; deid-us (one worker) against gdcmconv --raw, which
  decodes the clip into memory;
- CT: a 600-slice 512x512 head phantom series (tests/generators/make_head_phantom.py,
  uncompressed); deid-ct (one worker, face defacing) against dcm2niix, which holds the volume.

    /usr/bin/python3 tests/bench/memory.py [--build build] [--work DIR] [--frames 1000]
                                          [--slices 600] [--only us|ct]

Prints each peak RSS, the input's decoded size and the ratios; never part of pass/fail.
"""
import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
GENERATORS = os.path.join(SOURCE, "tests", "generators")
KEY = "5f1c3a7e9b2d4f6081a3c5e7092b4d6f8a1c3e5079b2d4f6a8c0e2f4b6d8fa1c"


def peak_rss(args):
    """(exit status, peak RSS in MiB, seconds) of one command."""
    t = time.time()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace")
    rc = os.waitstatus_to_exitcode(status)
    if rc not in (0,):
        print(f"  ({os.path.basename(args[0])} exit {rc}: {err.strip()[-300:]})")
    return rc, usage.ru_maxrss / 1024.0, time.time() - t


def write_key(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(KEY + "\n")
    return path


def long_clip(work, frames):
    """A `frames`-frame JPEG baseline clip from a generated 600x800 clip's frames."""
    src = os.path.join(work, "clip_src")
    subprocess.run([sys.executable, os.path.join(GENERATORS, "make_us_clips.py"), "--out", src,
                    "--count", "1", "--seed", "3", "--sizes", "600x800", "--min-frames", "24",
                    "--max-frames", "24", "--rgb-fraction", "1", "--colour-fraction", "0",
                    "--jobs", "1"], check=True, stdout=subprocess.DEVNULL)
    ds = pydicom.dcmread(os.path.join(src, "us_0000.dcm"))
    px = ds.pixel_array
    if px.ndim == 3:
        px = px[None]
    if ds.PhotometricInterpretation != "RGB":
        from pydicom.pixel_data_handlers.util import convert_color_space
        px = convert_color_space(px, ds.PhotometricInterpretation, "RGB")
    jpegs = []
    for i in range(px.shape[0]):
        b = io.BytesIO()
        Image.fromarray(px[i]).save(b, "JPEG", quality=90, subsampling=1)  # 4:2:2
        jpegs.append(b.getvalue())
    ds.PixelData = encapsulate([jpegs[i % len(jpegs)] for i in range(frames)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    path = os.path.join(work, "clip_in", "long_clip.dcm")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)
    return path, frames * ds.Rows * ds.Columns * 3


def bench_us(build, work, frames):
    print(f"== ultrasound: {frames} frames")
    path, decoded = long_clip(work, frames)
    size = os.path.getsize(path)
    key = write_key(os.path.join(work, "key.hex"))
    out = os.path.join(work, "us_out")
    shutil.rmtree(out, ignore_errors=True)
    rc, ours, secs = peak_rss([os.path.join(build, "tools", "deid-us"), os.path.dirname(path), out,
                               "--key", key, "--workers", "1", "--quiet"])
    ref_rc, ref, ref_secs = peak_rss(["gdcmconv", "--raw", path, os.path.join(work, "raw.dcm")])
    print(f"  clip: {size / 1e6:.1f} MB on disk, {decoded / 1e6:.1f} MB decoded "
          f"(600x800x3 x {frames})")
    print(f"  deid-us --workers 1: peak RSS {ours:.0f} MB in {secs:.1f} s (exit {rc})")
    print(f"  gdcmconv --raw (whole clip decoded): peak RSS {ref:.0f} MB in {ref_secs:.1f} s "
          f"(exit {ref_rc})")
    print(f"  ratio deid-us / gdcmconv: {ours / ref:.2f}; deid-us / decoded clip: "
          f"{ours * 2**20 / decoded:.2f}")
    return ours


def bench_ct(build, work, slices):
    print(f"== CT: {slices} slices of 512x512")
    series = os.path.join(work, "ct_in")
    shutil.rmtree(series, ignore_errors=True)
    t = time.time()
    subprocess.run([sys.executable, os.path.join(GENERATORS, "make_head_phantom.py"), "--out",
                    series, "--dims", f"512,512,{slices}", "--spacing", "0.45,0.4",
                    "--seed", "4"], check=True, stdout=subprocess.DEVNULL)
    print(f"  phantom generated in {time.time() - t:.0f} s")
    dcm = []
    for r, _, fs in os.walk(series):
        for f in fs:
            if f.endswith(".dcm"):
                dcm.append(os.path.join(r, f))
            else:  # the generator's truth files: not part of the series
                os.remove(os.path.join(r, f))
    size = sum(os.path.getsize(p) for p in dcm)
    key = write_key(os.path.join(work, "key.hex"))
    out = os.path.join(work, "ct_out")
    shutil.rmtree(out, ignore_errors=True)
    rc, ours, secs = peak_rss([os.path.join(build, "tools", "deid-ct"), series, out, "--key", key,
                               "--workers", "1", "--quiet"])
    nii = os.path.join(work, "nii")
    shutil.rmtree(nii, ignore_errors=True)
    os.makedirs(nii)
    ref_rc, ref, ref_secs = peak_rss(["dcm2niix", "-z", "n", "-o", nii, os.path.dirname(dcm[0])])
    written = sum(len([f for f in fs if f.endswith(".dcm")]) for _, _, fs in os.walk(out))
    stored = slices * 512 * 512 * 2
    print(f"  series: {len(dcm)} files, {size / 1e6:.0f} MB on disk, {stored / 1e6:.0f} MB of "
          f"16-bit voxels")
    print(f"  deid-ct --workers 1 (face defacing): peak RSS {ours:.0f} MB in {secs:.1f} s "
          f"(exit {rc}, {written} slices written)")
    print(f"  dcm2niix (whole volume): peak RSS {ref:.0f} MB in {ref_secs:.1f} s (exit {ref_rc})")
    print(f"  ratio deid-ct / dcm2niix: {ours / ref:.2f}; deid-ct / 16-bit volume: "
          f"{ours * 2**20 / stored:.2f}")
    return ours


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--slices", type=int, default=600)
    ap.add_argument("--only", choices=("us", "ct"))
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="deid_memory_")
    os.makedirs(work, exist_ok=True)
    try:
        if a.only in (None, "us"):
            bench_us(a.build, work, a.frames)
        if a.only in (None, "ct"):
            bench_ct(a.build, work, a.slices)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
