"""deid-us end to end on generated clips (tests/generators/make_us_clips.py) and on the real
ultrasound files of ../shared/data/us:

- every clip is written; no burned-in text pixel (the generator's <name>_text.png) survives
  masking and JPEG re-encoding beyond TEXT_THRESHOLD grey levels;
- a mask JSON in the SlicerUltrasound layout (+ detector, confidence) and a QC overview PNG
  exist per clip;
- dciodvfy reports no Error on an output that it did not report on its input;
- the PHI the generator burned into the pixels (its header values) is in no output header;
- each real file is either written (dciodvfy-clean against its input) or refused with a clear
  low-confidence line; the detected geometry per file is printed.

Run by ctest (exit 77 when deid-us, numpy, pydicom or PIL is missing), or by hand:
  DEID_BUILD_DIR=build /usr/bin/python3 -m pytest -q -s tests/integration/test_deid_us.py
"""
import csv
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("DEID_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("DEID_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
GENERATOR = os.path.join(SOURCE_DIR, "tests", "generators", "make_us_clips.py")

# 12 clips: the three probe kinds, mono and RGB, 1 to 8 frames, Doppler, ECG, Ultrasound
# Regions, sizes up to 480x640.
GEN_ARGS = ["--count", "12", "--seed", "31", "--sizes", "240x320,300x400,480x640",
            "--min-frames", "1", "--max-frames", "8", "--colour-fraction", "0.25",
            "--rgb-fraction", "0.3", "--ecg-fraction", "0.5", "--regions-fraction", "0.5",
            "--jobs", "2"]

# A text pixel counts as surviving when any channel of any output frame exceeds this. The
# masked pixels are exactly 0 before encoding; JPEG (q95, 8x8 blocks, 4:2:2 chroma) spreads a
# little of the scan data inside the fan into the blanked part of the blocks the fan border
# crosses (ringing), a few grey levels at most. Burned-in text is 100-255 and the generator
# keeps it away from the fan, so 8 levels separates ringing from any trace of text. The count
# at threshold 0 is printed too.
TEXT_THRESHOLD = 8

SLICER_FAN = ("mask_type", "angle1", "angle2", "center_rows_px", "center_cols_px", "radius1",
              "radius2", "image_size_rows", "image_size_cols")
SLICER_RECT = ("mask_type", "rectangle_left", "rectangle_right", "rectangle_top",
               "rectangle_bottom", "image_size_rows", "image_size_cols")
PHI_FIELDS = ("PatientName", "PatientID", "ReferringPhysicianName", "OperatorsName",
              "AccessionNumber", "InstitutionName", "StudyDate", "PatientBirthDate")


def missing_modules():
    out = []
    for m in ("numpy", "pydicom", "PIL.Image"):
        try:
            __import__(m)
        except ImportError:
            out.append(m)
    return out


def tool():
    t = os.path.join(os.environ.get("DEID_TOOLS_DIR", os.path.join(BUILD_DIR, "tools")),
                     "deid-us")
    return t if os.access(t, os.X_OK) else None


def require():
    miss = missing_modules()
    if miss:
        pytest.skip("missing Python modules: " + ", ".join(miss))
    if tool() is None:
        pytest.skip("deid-us is not built")
    return tool()


try:  # the helpers every integration test shares (deidtest needs pydicom)
    from deidtest import workdir, write_key
except ImportError:  # pydicom missing: the fixture skips before they are needed
    workdir = write_key = None


class Run:
    def __init__(self, root, inp, *options):
        self.out, self.hdr = os.path.join(root, "out"), os.path.join(root, "hdr")
        self.ov, self.log = os.path.join(root, "overview"), os.path.join(root, "log.txt")
        self.args = [tool(), inp, self.out, self.hdr, "--key", write_key(os.path.join(root, "key")),
                     "--workers", "2", "--overview-dir", self.ov, "--log", self.log, "-q"]
        self.args += list(options)
        p = subprocess.run(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        self.rc, self.stdout, self.stderr = p.returncode, p.stdout.decode(), p.stderr.decode()
        self.rows = {}
        keys = os.path.join(self.hdr, "keys.csv")
        if os.path.exists(keys):
            with open(keys, newline="") as f:
                for row in csv.DictReader(f):
                    self.rows[os.path.basename(row["original_path"])] = row

    def explain(self):
        return f"{' '.join(self.args)}\nexit {self.rc}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"

    def stem(self, name):
        return os.path.splitext(os.path.basename(self.rows[name]["output_path"]))[0]

    def mask_json(self, name):
        with open(os.path.join(self.hdr, self.stem(name) + "_mask.json")) as f:
            return json.load(f)


def decoded(path):
    """Output frames as frames x rows x cols x samples uint8 (YBR converted to RGB)."""
    import pydicom
    from pydicom.pixel_data_handlers.util import convert_color_space
    ds = pydicom.dcmread(path)
    a = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(ds.SamplesPerPixel)
    if str(ds.PhotometricInterpretation).startswith("YBR"):
        a = convert_color_space(a, "YBR_FULL", "RGB")
    return a.reshape((frames, int(ds.Rows), int(ds.Columns), spp))


# ---- dciodvfy --------------------------------------------------------------------------------

_VALUE = [(re.compile(r" = <[^>]*>"), " = <>"), (re.compile(r"value <[^>]*>"), "value <>"),
          (re.compile(r"\[\d+\]"), "[]"), (re.compile(r'"[0-9.]+"'), '""')]


def dciodvfy_errors(path):
    p = subprocess.run(["dciodvfy", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    out = set()
    for line in p.stdout.decode("latin-1").splitlines():
        if line.startswith("Error"):
            for rx, repl in _VALUE:
                line = rx.sub(repl, line)
            out.add(line.strip())
    return out


def new_dciodvfy_errors(inp, out):
    if shutil.which("dciodvfy") is None:
        return None
    return sorted(dciodvfy_errors(out) - dciodvfy_errors(inp))


# ---- generated clips -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clips():
    require()
    root = workdir("deid_us")
    gen = os.path.join(root, "gen")
    p = subprocess.run([sys.executable, GENERATOR, "--out", gen] + GEN_ARGS,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout
    inp = os.path.join(root, "in")
    os.makedirs(inp)
    truth = {}
    for j in sorted(glob.glob(os.path.join(gen, "us_*.json"))):
        with open(j) as f:
            t = json.load(f)
        shutil.copy(os.path.join(gen, t["file"]), inp)
        truth[t["file"]] = (t, os.path.join(gen, t["text_png"]))
    return root, inp, truth, Run(root, inp)


def test_every_clip_written(clips):
    _, _, truth, run = clips
    assert run.rc == 0, run.explain()
    missing = [n for n in truth if n not in run.rows or
               not os.path.isfile(run.rows[n]["output_path"])]
    assert not missing, f"no output for {missing}\n" + run.explain()


def test_masked_clips_get_new_series_and_instance_uids(clips):
    """A masked clip is a new image: deid-header on the same input (same key) keeps the Study
    Instance UID but never the Series or SOP Instance UID that deid-us writes."""
    import pydicom
    root, inp, truth, run = clips
    header_tool = os.path.join(os.path.dirname(tool()), "deid-header")
    if not os.access(header_tool, os.X_OK):
        pytest.skip("deid-header is not built")
    out = os.path.join(root, "header_only")
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.run([header_tool, inp, out, out, "--key", write_key(os.path.join(root, "key")),
                        "-q"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout
    with open(os.path.join(out, "keys.csv"), newline="") as f:
        header = {os.path.basename(r["original_path"]): r for r in csv.DictReader(f)}
    for name, row in run.rows.items():
        h = header[name]
        assert row["new_study_uid"] == h["new_study_uid"], name
        assert row["new_series_uid"] != h["new_series_uid"], name
        assert row["new_sop_uid"] != h["new_sop_uid"], name
        ds = pydicom.dcmread(row["output_path"], stop_before_pixels=True)
        assert ds.SOPInstanceUID == row["new_sop_uid"], name
        assert ds.file_meta.MediaStorageSOPInstanceUID == row["new_sop_uid"], name
        assert ds.SeriesInstanceUID == row["new_series_uid"], name


def test_no_text_pixel_survives(clips):
    import numpy as np
    from PIL import Image
    _, _, truth, run = clips
    total = above0 = above = worst = 0
    bad = []
    for name, (t, text_png) in sorted(truth.items()):
        text = np.asarray(Image.open(text_png)) > 0
        px = decoded(run.rows[name]["output_path"]).max(axis=(0, 3))  # brightest over all
        v = px[text]
        total += int(text.sum())
        above0 += int((v > 0).sum())
        n = int((v > TEXT_THRESHOLD).sum())
        above += n
        worst = max(worst, int(v.max()) if v.size else 0)
        if n:
            bad.append(f"{name}: {n} text pixels > {TEXT_THRESHOLD} (max {int(v.max())})")
    print(f"\ntext pixels: {total} over {len(truth)} clips; > 0: {above0}; "
          f"> {TEXT_THRESHOLD}: {above}; max value {worst}")
    assert not bad, "\n".join(bad)


def test_mask_json_and_overview(clips):
    _, _, truth, run = clips
    problems = []
    for name in sorted(truth):
        m = run.mask_json(name)
        fields = SLICER_FAN if m.get("mask_type") == "fan" else SLICER_RECT
        lacking = [k for k in fields + ("detector", "confidence") if k not in m]
        if lacking:
            problems.append(f"{name}: mask JSON lacks {lacking}")
        t = truth[name][0]
        if (m.get("image_size_rows"), m.get("image_size_cols")) != (t["image_size_rows"],
                                                                    t["image_size_cols"]):
            problems.append(f"{name}: mask JSON image size differs from the clip's")
        png = os.path.join(run.ov, run.stem(name) + ".png")
        if not os.path.isfile(png) or os.path.getsize(png) < 100:
            problems.append(f"{name}: no overview PNG {png}")
    assert not problems, "\n".join(problems)


def test_long_clip_in_chunks(clips):
    """A clip longer than 64 frames is decoded, masked and encoded 32 frames at a time (memory
    stays bounded, tests/bench/memory.py): the first multi-frame clip tiled to 150 frames comes
    out with 150 frames in order (its frames 0, 1, 2 repeated: output frame k is byte for byte
    output frame k mod 3), no text pixel in any of them, and the scan area of the short clip."""
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.encaps import generate_pixel_data_frame
    root, inp, truth, run = clips
    name, (t, text_png) = next((n, v) for n, v in sorted(truth.items())
                               if v[0]["frames"] >= 4)
    ds = pydicom.dcmread(os.path.join(inp, name))
    n = int(ds.NumberOfFrames)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    frame_bytes = len(ds.PixelData) // n
    period = 3  # prime to the chunk size: a chunk read from the wrong place shows
    ds.PixelData = b"".join(ds.PixelData[(k % period) * frame_bytes:(k % period + 1) * frame_bytes]
                            for k in range(150))
    ds.NumberOfFrames = 150
    long_in = os.path.join(root, "long_in")
    os.makedirs(long_in, exist_ok=True)
    ds.save_as(os.path.join(long_in, "long.dcm"), write_like_original=False)
    os.makedirs(os.path.join(root, "long"), exist_ok=True)
    long_run = Run(os.path.join(root, "long"), long_in)
    assert long_run.rc == 0, long_run.explain()
    out = long_run.rows["long.dcm"]["output_path"]
    px = decoded(out)
    assert px.shape[0] == 150, px.shape
    frames = pydicom.dcmread(out)
    jpeg = list(generate_pixel_data_frame(frames.PixelData, 150))
    misplaced = [k for k in range(150) if jpeg[k] != jpeg[k % period]]
    assert not misplaced, f"frames out of order or masked differently: {misplaced[:10]}"
    text = np.asarray(Image.open(text_png)) > 0
    v = px.max(axis=(0, 3))[text]
    assert int((v > TEXT_THRESHOLD).sum()) == 0, f"text survives (max {int(v.max())})"
    short, long_ = run.mask_json(name), long_run.mask_json("long.dcm")
    assert short["mask_type"] == long_["mask_type"], (short, long_)
    for k in SLICER_FAN if short["mask_type"] == "fan" else SLICER_RECT:
        if k == "mask_type":
            continue
        tol = 2.0 if "angle" not in k else 0.02
        assert abs(float(short[k]) - float(long_[k])) <= tol, (k, short[k], long_[k])


def test_dciodvfy_no_new_errors(clips):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    _, inp, truth, run = clips
    new = {n: new_dciodvfy_errors(os.path.join(inp, n), run.rows[n]["output_path"])
           for n in sorted(truth)}
    new = {n: e for n, e in new.items() if e}
    print(f"\ndciodvfy: {len(truth) - len(new)}/{len(truth)} outputs with no new Error")
    assert not new, "\n".join(f"{n}: {e}" for n, e in new.items())


def test_burned_in_phi_not_in_headers(clips):
    import pydicom
    _, _, truth, run = clips
    hits = []
    for name, (t, _) in sorted(truth.items()):
        values = set()
        for field in PHI_FIELDS:
            v = str(t["phi"].get(field, "") or "")
            values.update(x for x in re.split(r"[\^ ]+", v) if len(x) >= 4)
            if len(v) >= 6:
                values.add(v)
        out = run.rows[name]["output_path"]
        ds = pydicom.dcmread(out, stop_before_pixels=True)
        texts = [str(ds)]
        stem = run.stem(name)
        for suffix in ("_DICOMHeader.json", "_mask.json"):
            with open(os.path.join(run.hdr, stem + suffix), encoding="utf-8") as f:
                texts.append(f.read())
        blob = "\n".join(texts)
        hits += [f"{name}: {v!r} in the output header or JSON" for v in sorted(values)
                 if v in blob]
    assert not hits, "\n".join(hits)


# ---- real clips ------------------------------------------------------------------------------

def shared_us():
    d = os.environ.get("DEID_SHARED_DATA") or os.path.join(SOURCE_DIR, "..", "shared", "data")
    d = os.path.join(d, "us")
    return d if os.path.isdir(d) else None


def geometry(m):
    if m["mask_type"] == "fan":
        return (f"fan apex ({m['center_rows_px']}, {m['center_cols_px']}) r {m['radius1']}.."
                f"{m['radius2']} angles {m['angle1']:.1f}/{m['angle2']:.1f}")
    return (f"rectangle rows {m['rectangle_top']}..{m['rectangle_bottom']} cols "
            f"{m['rectangle_left']}..{m['rectangle_right']}")


def test_real_clips():
    require()
    src = shared_us()
    if src is None:
        pytest.skip("../shared/data/us is absent")
    root = workdir("deid_us_real")
    inp = os.path.join(root, "in")
    os.makedirs(inp)
    names = sorted(n for n in os.listdir(src) if n.endswith(".dcm"))
    for n in names:
        shutil.copy(os.path.join(src, n), inp)
    run = Run(root, inp)
    assert run.rc in (0, 1), run.explain()
    problems = []
    print()
    for n in names:
        if n in run.rows:
            m = run.mask_json(n)
            new = new_dciodvfy_errors(os.path.join(inp, n), run.rows[n]["output_path"])
            print(f"{n}: written; {m['detector']} confidence {m['confidence']:.2f}; "
                  f"{geometry(m)}; {m['image_size_rows']}x{m['image_size_cols']}; "
                  f"dciodvfy new errors: {'n/a' if new is None else len(new)}")
            if new:
                problems.append(f"{n}: new dciodvfy errors {new}")
        else:
            line = re.search(re.escape(n) + r": (fan detection [^\n]*not written[^\n]*)",
                             run.stderr)
            print(f"{n}: not written: {line.group(1) if line else 'NO REASON'}")
            if not line:
                problems.append(f"{n}: neither written nor refused for low confidence\n"
                                + run.explain())
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    if missing_modules() or tool() is None:
        sys.exit(77)
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
