#!/usr/bin/python3
"""deid-ocr on the real DICOM files of ../shared/data that carry burned-in text or overlays:
per file and per mode (--redact all, --redact phi against the file's own header), the regions
found, redacted and left, the text of each (these are public test files with made-up
patients), seconds per frame, and before/after PNGs of the first frame for a person to look at.

Files: the ultrasound clips of data/us (burned-in banners) and data/text (XA and MR with
overlay planes). Each runs alone (deid-ocr --workers 1), so the seconds are per file.
Before/after PNGs are written to --png DIR (default: a temporary folder, printed); a file whose
pixels pydicom cannot decode is converted with gdcmconv --raw first.

Usage: tests/bench/ocr/real_files.py [--data ../shared/data] [--tool PATH] [--png DIR]
                                     [--modes all,phi] [--text]
  --text   print every region's text (otherwise the counts and the redacted texts only)
It only reports; it never fails on a figure (exit 1 only when deid-ocr cannot run at all).
"""
import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_corpus  # noqa: E402  (the same tool lookup and key)

DEFAULT_DATA = os.path.join(eval_corpus.SOURCE_DIR, "..", "shared", "data")


def first_frame(path):
    """Frame 0 of a DICOM file as 8-bit grey or RGB, or None when it cannot be decoded."""
    import pydicom
    tmp = None
    try:
        try:
            ds = pydicom.dcmread(path)
            a = ds.pixel_array
        except Exception:
            tmp = tempfile.mktemp(suffix=".dcm")
            subprocess.run(["gdcmconv", "--raw", path, tmp], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ds = pydicom.dcmread(tmp)
            a = ds.pixel_array
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        if frames > 1:
            a = a[0]
        pi = str(getattr(ds, "PhotometricInterpretation", ""))
        if pi.startswith("YBR"):
            from pydicom.pixel_data_handlers.util import convert_color_space
            a = convert_color_space(a, pi, "RGB")
        if pi == "PALETTE COLOR":
            from pydicom.pixel_data_handlers.util import apply_color_lut
            a = apply_color_lut(a, ds)
            a = (a / 256).astype(np.uint8) if a.dtype != np.uint8 else a
        a = a.astype(np.float64)
        lo, hi = np.percentile(a, 0.5), a.max()
        a = np.clip((a - lo) / max(1e-9, hi - lo) * 255, 0, 255)
        if pi == "MONOCHROME1":
            a = 255 - a
        return a.astype(np.uint8)
    except Exception:
        return None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def save_png(a, path):
    from PIL import Image
    Image.fromarray(a).save(path)


def run_one(tool, src, mode, work):
    """deid-ocr on one file: (report dict or None, output path or None, seconds, stderr)."""
    shutil.rmtree(work, ignore_errors=True)
    inp = os.path.join(work, "in")
    os.makedirs(inp)
    shutil.copy(src, inp)
    key = eval_corpus.write_key(os.path.join(work, "key"))
    args = [tool, inp, os.path.join(work, "out"), os.path.join(work, "hdr"), "--key", key,
            "--workers", "1", "--quiet", "--redact", mode, "--report-text"]
    t = time.monotonic()
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.monotonic() - t
    err = p.stderr.decode(errors="replace").strip()
    reports = glob.glob(os.path.join(work, "hdr", "**", "*_text.json"), recursive=True)
    rep = json.load(open(reports[0], encoding="utf-8")) if reports else None
    out = None
    keys = os.path.join(work, "hdr", "keys.csv")
    if os.path.exists(keys):
        with open(keys, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                o = row.get("output_path") or ""
                if o:
                    out = o if os.path.isabs(o) else os.path.join(work, "out", o)
    if out and not os.path.exists(out):
        cands = glob.glob(os.path.join(work, "out", "**", "*.dcm"), recursive=True)
        out = cands[0] if cands else None
    return rep, out, dt, err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--tool")
    ap.add_argument("--png")
    ap.add_argument("--modes", default="all,phi")
    ap.add_argument("--text", action="store_true")
    a = ap.parse_args(argv)
    tool = eval_corpus.find_tool(a.tool)
    if not tool or not os.access(tool, os.X_OK):
        print("real_files: deid-ocr not found (build it, or give --tool / $DEID_OCR)",
              file=sys.stderr)
        return 1
    files = sorted(glob.glob(os.path.join(a.data, "us", "*.dcm")) +
                   glob.glob(os.path.join(a.data, "text", "*.dcm")))
    if not files:
        print(f"real_files: no DICOM files under {a.data}/us or {a.data}/text", file=sys.stderr)
        return 1
    png = a.png or tempfile.mkdtemp(prefix="deid-ocr-real-")
    os.makedirs(png, exist_ok=True)
    work = tempfile.mkdtemp(prefix="deid-ocr-real-work-")
    print(f"deid-ocr: {tool}; {len(files)} files; PNGs in {png}")
    try:
        for src in files:
            name = os.path.splitext(os.path.basename(src))[0]
            before = first_frame(src)
            if before is not None:
                save_png(before, os.path.join(png, f"{name}_before.png"))
            print(f"\n== {os.path.relpath(src, a.data)}")
            for mode in [m for m in a.modes.split(",") if m]:
                rep, out, dt, err = run_one(tool, src, mode, os.path.join(work, mode))
                if rep is None:
                    print(f"  {mode}: no report ({err.splitlines()[-1] if err else 'no error'})")
                    continue
                regs = rep.get("regions", [])
                frames = max([r.get("frame", 0) for r in regs] + [0]) + 1
                by = {}
                for r in regs:
                    by.setdefault(r["decision"], []).append(r)
                counts = ", ".join(f"{k} {len(v)}" for k, v in sorted(by.items()))
                print(f"  {mode}: {len(regs)} regions over {frames} frame(s) ({counts}); "
                      f"{dt:.1f} s" + (f"; stderr: {err.splitlines()[-1]}" if err else ""))
                seen = set()
                for r in regs:
                    if r.get("frame", 0) != 0 and not a.text:
                        continue
                    if r["decision"] != "redacted" and not a.text:
                        continue
                    key = (r["decision"], r.get("text", ""), r.get("source", ""))
                    if key in seen:
                        continue
                    seen.add(key)
                    print(f"    {r['decision']:<8} {r.get('source', 'pixels'):<13} "
                          f"{str(r['box']):<22} {r.get('reason', ''):<24} {r.get('text', '')!r}")
                after = first_frame(out) if out else None
                if after is not None:
                    save_png(after, os.path.join(png, f"{name}_after_{mode}.png"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
