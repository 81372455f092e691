"""The synthetic ultrasound clip generator (tests/generators/make_us_clips.py) makes what its
ground truth says: readable US DICOM files whose header PHI is burned into the pixels, a mask
PNG equal to the scan area re-drawn from the JSON fields (within 1 px of its edge), corners that
rebuild the same fan the way SlicerUltrasound's 4-point mask does, text that never touches the
scan area, black elsewhere, live pixels inside and static ones outside, and the same bytes for
the same seed. Run by ctest, by pytest, or directly (exit 0 pass, 1 fail, 77 skipped: numpy,
pydicom or PIL missing)."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

try:
    import pytest
except ImportError:   # run as a plain script without pytest
    pytest = None

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("DEID_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
GENERATOR = os.path.join(SOURCE_DIR, "tests", "generators", "make_us_clips.py")
# 6 clips covering the three probe kinds, mono and RGB, 1 and several frames, Doppler, an ECG
# sweep and a Sequence of Ultrasound Regions (test_coverage checks that the seed still does).
ARGS = ["--count", "6", "--seed", "7", "--sizes", "240x320,300x400,480x640", "--min-frames", "1",
        "--max-frames", "6", "--colour-fraction", "0.3", "--rgb-fraction", "0.3",
        "--ecg-fraction", "0.5", "--regions-fraction", "0.5", "--jobs", "1"]
MODULES = ("numpy", "pydicom", "PIL.Image")


def missing_modules():
    out = []
    for m in MODULES:
        try:
            __import__(m)
        except ImportError:
            out.append(m)
    return out


def workdir():
    build = os.environ.get("DEID_BUILD_DIR")
    if build:
        d = os.path.join(build, "tests", "integration", "work", "us_generator")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d
    return tempfile.mkdtemp(prefix="us_generator_")


def generate(out, extra=()):
    run = subprocess.run([sys.executable, GENERATOR, "--out", out] + ARGS + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert run.returncode == 0, run.stdout
    with open(os.path.join(out, "manifest.json")) as f:
        return json.load(f)


class Clip:
    def __init__(self, root, entry):
        import numpy as np
        import pydicom
        from PIL import Image
        self.name = entry["name"]
        with open(os.path.join(root, entry["json"])) as f:
            self.truth = json.load(f)
        self.ds = pydicom.dcmread(os.path.join(root, entry["dcm"]))
        px = self.ds.pixel_array
        nf = self.truth["frames"]
        px = px.reshape((nf,) + px.shape[-3:] if self.truth["rgb"] else (nf,) + px.shape[-2:])
        self.frames = px
        self.mask = np.asarray(Image.open(os.path.join(root, entry["mask_png"]))) > 0
        self.text = np.asarray(Image.open(os.path.join(root, entry["text_png"]))) > 0
        self.grey = px.astype(np.float32).mean(-1) if self.truth["rgb"] else px.astype(np.float32)


def make_clips():
    root = workdir()
    manifest = generate(os.path.join(root, "a"))
    return root, manifest, [Clip(os.path.join(root, "a"), e) for e in manifest["clips"]]


def _module_fixture(f):
    return pytest.fixture(scope="module")(f) if pytest else f


@_module_fixture
def clips():
    miss = missing_modules()
    if miss:
        pytest.skip("missing Python modules: " + ", ".join(miss))
    return make_clips()


# ---- independent geometry ------------------------------------------------------------------

def redraw(t):
    """The scan area re-drawn from the JSON fields with half-planes through the apex and the
    edge directions (cross products), not with the generator's angle test."""
    import numpy as np
    rows, cols = t["image_size_rows"], t["image_size_cols"]
    r = np.arange(rows, dtype=np.float64)[:, None]
    c = np.arange(cols, dtype=np.float64)[None, :]
    if t["mask_type"] == "rectangle":
        return ((c >= t["rectangle_left"]) & (c <= t["rectangle_right"])
                & (r >= t["rectangle_top"]) & (r <= t["rectangle_bottom"]))
    x, y = c - t["center_cols_px"], r - t["center_rows_px"]
    d2 = x * x + y * y
    lx, ly = math.cos(math.radians(t["angle1"])), math.sin(math.radians(t["angle1"]))
    rx, ry = math.cos(math.radians(t["angle2"])), math.sin(math.radians(t["angle2"]))
    wedge = (rx * y - ry * x >= 0) & (x * ly - y * lx >= 0)
    return wedge & (d2 >= t["radius1"] ** 2) & (d2 <= t["radius2"] ** 2)


def shift_or(m):
    import numpy as np
    p = np.pad(m, 1)
    out = np.zeros_like(m)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= p[dy:dy + m.shape[0], dx:dx + m.shape[1]]
    return out


def edge_band(m):
    """Pixels within 1 px (8-neighbourhood) of the mask's boundary."""
    return shift_or(m) & ~(~shift_or(~m))


def slicer_fan_from_corners(c):
    """Fan fields rebuilt from 4 corners with the formulas of SlicerUltrasound's 4-point
    createFanMask: edge angles from the corner pairs (folded into [0, 180]), apex at the
    intersection of the edges, radii = mean corner distances, all rounded like theirs."""
    (tlx, tly), (trx, try_) = c["upper_left"], c["upper_right"]
    (blx, bly), (brx, bry) = c["lower_left"], c["lower_right"]

    def edge_angle(dy, dx, offset):
        if abs(dx) < 1e-3:
            return 90.0
        a = math.degrees(math.atan(dy / dx)) + offset
        return a - 180 if a > 180 else a + 180 if a < 0 else a

    a1 = edge_angle(tly - bly, tlx - blx, 180.0)
    a2 = edge_angle(try_ - bry, trx - brx, 0.0)

    def line(p, q):   # A x + B y + C = 0 through p and q
        return q[1] - p[1], p[0] - q[0], q[0] * p[1] - p[0] * q[1]
    la, lb, lc = line((tlx, tly), (blx, bly))
    ra, rb, rc = line((trx, try_), (brx, bry))
    det = la * rb - lb * ra
    x = (lb * rc - rb * lc) / det
    y = (ra * lc - la * rc) / det
    top = (math.hypot(tlx - x, tly - y) + math.hypot(trx - x, try_ - y)) / 2
    bottom = (math.hypot(blx - x, bly - y) + math.hypot(brx - x, bry - y)) / 2
    return {"center_cols_px": round(x), "center_rows_px": round(y), "radius1": round(top),
            "radius2": round(bottom), "angle1": a1, "angle2": a2}


# ---- tests ---------------------------------------------------------------------------------

def test_coverage(clips):
    _, manifest, cs = clips
    kinds = {c.truth["probe_kind"] for c in cs}
    assert kinds == {"curvilinear", "phased", "linear"}, kinds
    assert {c.truth["rgb"] for c in cs} == {True, False}
    assert any(c.truth["frames"] == 1 for c in cs) and any(c.truth["frames"] > 1 for c in cs)
    assert any(c.truth["doppler"] for c in cs)
    assert any(c.truth["ecg"] and c.truth["ecg"]["mode"] == "sweep" for c in cs)
    assert any(c.truth["ultrasound_regions"] for c in cs)
    assert len(manifest["clips"]) == 6


def test_dicom_header(clips):
    for c in clips[2]:
        t, ds = c.truth, c.ds
        assert ds.Modality == "US"
        multi = t["frames"] > 1
        assert ds.SOPClassUID == ("1.2.840.10008.5.1.4.1.1.3.1" if multi
                                  else "1.2.840.10008.5.1.4.1.1.6.1"), c.name
        assert ds.file_meta.TransferSyntaxUID == {"ExplicitVRLittleEndian": "1.2.840.10008.1.2.1",
                                                  "RLELossless": "1.2.840.10008.1.2.5"}[
                                                      t["transfer_syntax"]]
        assert (int(ds.NumberOfFrames) if multi else 1) == t["frames"]
        if multi:
            assert float(ds.FrameTime) > 0 and ds.FrameIncrementPointer == 0x00181063
        assert (ds.Rows, ds.Columns) == (t["image_size_rows"], t["image_size_cols"])
        assert ds.PhotometricInterpretation == t["photometric"]
        assert ds.BitsAllocated == 8 and ds.SamplesPerPixel == (3 if t["rgb"] else 1)
        for key in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate",
                    "InstitutionName"):
            assert str(ds.data_element(key).value) == t["phi"][key], (c.name, key)
        regions = ds.get("SequenceOfUltrasoundRegions")
        if t["ultrasound_regions"]:
            r = regions[0]
            assert r.RegionSpatialFormat == 1
            assert [r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1,
                    r.RegionLocationMaxY1] == t["mask_bbox"]
        else:
            assert regions is None


def test_mask_matches_geometry(clips):
    import numpy as np
    for c in clips[2]:
        t = c.truth
        assert c.mask.shape == (t["image_size_rows"], t["image_size_cols"])
        drawn = redraw(t)
        diff = drawn ^ c.mask
        assert not (diff & ~edge_band(c.mask)).any(), \
            f"{c.name}: {int((diff & ~edge_band(c.mask)).sum())} pixels off by more than 1 px"
        iou = (drawn & c.mask).sum() / (drawn | c.mask).sum()
        assert iou > 0.97, (c.name, iou)
        ys, xs = np.nonzero(c.mask)
        assert [xs.min(), ys.min(), xs.max(), ys.max()] == t["mask_bbox"]


def test_corners(clips):
    import numpy as np
    for c in clips[2]:
        t = c.truth
        corners = t["corners_px"]
        rows, cols = t["image_size_rows"], t["image_size_cols"]
        for (x, y), name, norm in zip([corners[k] for k in t["corner_order"]],
                                      t["corner_order"], t["corners_normalized"]):
            assert abs(norm[0] * cols - x) < 1e-3 and abs(norm[1] * rows - y) < 1e-3, name
        assert corners["lower_left"][0] < corners["lower_right"][0]
        assert corners["upper_left"][1] < corners["lower_left"][1]
        # every lower corner lies on the scan area (a pixel centre within 2 px: the corners of
        # a fan are acute, the nearest pixel centre inside can be more than a diagonal away)
        ys, xs = np.nonzero(c.mask)
        for k in ("lower_left", "lower_right"):
            x, y = corners[k]
            assert np.min(np.hypot(xs - x, ys - y)) <= 2.0, (c.name, k)
        if t["mask_type"] != "fan":
            continue
        assert t["angle1"] > t["angle2"], "angle1 is the left edge, larger on a downward fan"
        rebuilt = slicer_fan_from_corners(corners)
        for k in ("center_cols_px", "center_rows_px", "radius1", "radius2"):
            assert abs(rebuilt[k] - t[k]) <= 1, (c.name, k, rebuilt[k], t[k])
        for k in ("angle1", "angle2"):
            assert abs(rebuilt[k] - t[k]) < 0.05, (c.name, k, rebuilt[k], t[k])
        if t["probe_kind"] == "curvilinear":
            assert t["center_rows_px"] < 0 < t["radius1"]
        if t["probe_kind"] == "phased":
            assert t["radius1"] <= 5


def test_text_outside_scan_area(clips):
    for c in clips[2]:
        t = c.truth
        assert c.text.any(), c.name
        assert not (c.text & shift_or(shift_or(c.mask))).any(), \
            f"{c.name}: burned-in text within 2 px of the scan area"
        assert not t["phi_missing_from_pixels"], (c.name, t["phi_missing_from_pixels"])
        burned = {f for b in t["text_boxes"] for f in b["fields"]}
        for key in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate",
                    "InstitutionName"):
            assert key in burned, (c.name, key)
        for b in t["text_boxes"]:
            x0, y0, x1, y1 = b["box"]
            assert 0 <= x0 <= x1 < t["image_size_cols"] and 0 <= y0 <= y1 < t["image_size_rows"]
            assert c.text[y0:y1 + 1, x0:x1 + 1].any(), (c.name, b["text"])
            assert not c.mask[y0:y1 + 1, x0:x1 + 1].any(), (c.name, b["text"])
        name = t["phi"]["PatientName"].split("^")
        assert any(all(p in b["text"] for p in name) for b in t["text_boxes"]), c.name


def test_pixels(clips):
    import numpy as np
    for c in clips[2]:
        g = c.grey
        elsewhere = ~c.mask & ~c.text
        assert not g[:, elsewhere].any(), f"{c.name}: non-black pixels outside text and scan"
        lit = (g[0][c.text] > 0).mean()
        assert lit > 0.5, (c.name, lit)                 # the text mask is the text
        assert (g[:, c.mask] > 0).mean() > 0.9, c.name  # the scan area is live image
        if c.truth["frames"] < 3:
            continue
        std = g.std(axis=0)
        inside = float(np.median(std[c.mask]))
        outside = float(std[~c.mask].mean())
        assert inside > 8 and inside > 20 * outside, (c.name, inside, outside)
        if not c.truth["ecg"] or c.truth["ecg"]["mode"] != "sweep":
            assert (g[:, ~c.mask] == g[0, ~c.mask]).all(), f"{c.name}: moving pixels outside"


def test_doppler(clips):
    import numpy as np
    for c in clips[2]:
        if not c.truth["rgb"]:
            continue
        r, b = c.frames[..., 0], c.frames[..., 2]
        # flow colours are (red, warm, 0) or (0, warm, blue); tinted grey never has a 0 channel
        colour = ((r == 0) & (b >= 100)) | ((b == 0) & (r >= 100))
        inside = colour & c.mask
        if c.truth["doppler"]:
            assert inside.any(), c.name
            x0, y0, x1, y1 = c.truth["doppler"]["bbox"]
            ys, xs = np.nonzero(inside.any(axis=0))
            assert x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1
            if c.truth["frames"] > 2:
                counts = inside.reshape(len(r), -1).sum(1)
                assert len(set(counts.tolist())) > 1, f"{c.name}: Doppler does not change"
        else:
            assert not inside.any(), c.name


def test_deterministic(clips):
    root, manifest, _ = clips
    again = generate(os.path.join(root, "b"), ["--count", "2", "--jobs", "2"])
    for e in again["clips"]:
        for key in ("dcm", "json", "mask_png", "text_png"):
            with open(os.path.join(root, "a", e[key]), "rb") as f1, \
                    open(os.path.join(root, "b", e[key]), "rb") as f2:
                assert f1.read() == f2.read(), (e["name"], key)


def main():
    """Plain-script run: 0 all passed, 1 a test failed, 77 skipped."""
    if missing_modules():
        print("skipped: missing " + ", ".join(missing_modules()))
        return 77
    data = make_clips()
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn(data)
                print("ok  ", name)
            except Exception:   # noqa: BLE001  (report every failing test, then exit 1)
                failed += 1
                print("FAIL", name)
                traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
