"""The synthetic head phantom generator (tests/generators/make_head_phantom.py) makes what its
ground truth says. Low-resolution phantoms of one seed in HU and CBCT scale, in the three
acquisition planes (one with anisotropic pixels, one with gantry tilt), are read back with
pydicom only: the slices sorted by ImagePositionPatient along the normal give a volume whose
masks line up with the values (bone > brain > air; HU air near -1000, CBCT air not), the
patient coordinates computed from the DICOM geometry put the face in front of and below the
brain, the nose tip as the most anterior skin, the fiducial on the left, the ears on both sides,
and the same landmarks at the same place whatever the plane; file names and InstanceNumbers do
not follow position; the library call gives the same voxels; the same seed gives the same
bytes. Run by ctest, by pytest, or directly (exit 0 pass, 1 fail, 77 skipped: numpy or pydicom
missing). DEID_HEAD_PHANTOM may name another generator script (used to check that a broken
geometry fails)."""
import glob
import json
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
GENERATOR = os.environ.get("DEID_HEAD_PHANTOM") or os.path.join(
    SOURCE_DIR, "tests", "generators", "make_head_phantom.py")
SEED = 5
# name: extra options (all --size low --seed SEED)
CASES = {
    "hu_axial": ["--scale", "hu", "--orientation", "axial", "--order", "dec",
                 "--spacing", "2.2,2.8,3"],                 # column 2.2 mm, row 2.8 mm
    "hu_coronal": ["--scale", "hu", "--orientation", "coronal", "--order", "inc"],
    "hu_sagittal": ["--scale", "hu", "--orientation", "sagittal", "--order", "random",
                    "--pixel", "signed"],
    "cbct_axial": ["--scale", "cbct", "--orientation", "axial", "--order", "random",
                   "--tilt", "12"],
    "cbct_coronal": ["--scale", "cbct", "--orientation", "coronal", "--order", "dec"],
    "cbct_sagittal": ["--scale", "cbct", "--orientation", "sagittal", "--order", "inc"],
}
MASKS = {"body", "skull", "brain", "eyes", "nose", "lips", "ears", "face", "teeth", "holder",
         "marker", "fov"}
MODULES = ("numpy", "pydicom")


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
        d = os.path.join(build, "tests", "integration", "work", "head_phantom")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d
    return tempfile.mkdtemp(prefix="head_phantom_")


def generate(out, extra):
    run = subprocess.run([sys.executable, GENERATOR, "--out", out, "--size", "low", "--seed",
                          str(SEED)] + extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    assert run.returncode == 0, run.stdout


class Series:
    """A generated case read back independently of the generator: slices sorted along the
    normal, modality values, patient coordinates of every voxel, the masks."""

    def __init__(self, root, name):
        import numpy as np
        import pydicom
        self.name, self.root = name, root
        with open(os.path.join(root, "manifest.json")) as f:
            self.manifest = json.load(f)
        paths = sorted(glob.glob(os.path.join(root, "dicom", "*.dcm")))
        dss = [pydicom.dcmread(p) for p in paths]
        first = dss[0]
        for ds in dss:
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.Modality == "CT"
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
            for key in ("SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID", "Rows",
                        "Columns", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope",
                        "RescaleIntercept", "RescaleType"):
                assert ds.data_element(key).value == first.data_element(key).value, (name, key)
        assert len({ds.SOPInstanceUID for ds in dss}) == len(dss)
        iop = np.array([float(v) for v in first.ImageOrientationPatient])
        self.r, self.c = iop[:3], iop[3:]
        self.n = np.cross(self.r, self.c)
        proj = [float(np.dot([float(v) for v in ds.ImagePositionPatient], self.n)) for ds in dss]
        order = np.argsort(proj, kind="stable")
        self.dss = [dss[i] for i in order]
        self.paths = [os.path.basename(paths[i]) for i in order]
        self.pos = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in self.dss])
        self.row_sp, self.col_sp = (float(v) for v in first.PixelSpacing)
        slope, icpt = float(first.RescaleSlope), float(first.RescaleIntercept)
        self.stored = np.stack([ds.pixel_array for ds in self.dss])
        self.vol = self.stored.astype(np.float32) * slope + icpt
        self.rescale = (slope, icpt, str(first.RescaleType))
        nk, nj, ni = self.vol.shape
        j = np.arange(nj, dtype=np.float64)[None, :, None]
        i = np.arange(ni, dtype=np.float64)[None, None, :]
        self.xyz = [(self.pos[:, a][:, None, None] + i * self.col_sp * self.r[a]
                     + j * self.row_sp * self.c[a]).astype(np.float32) for a in range(3)]
        self.xyz = [np.broadcast_to(v, self.vol.shape) for v in self.xyz]
        with np.load(os.path.join(root, "truth.npz")) as z:
            self.masks = {k: z[k] for k in z.files}
        self.m = {k: v.astype(bool) for k, v in self.masks.items()}

    def centroid(self, mask):
        import numpy as np
        return np.array([float(v[mask].mean()) for v in self.xyz])


def load_cases():
    root = workdir()
    out = {}
    for name, extra in CASES.items():
        d = os.path.join(root, name)
        generate(d, extra)
        out[name] = Series(d, name)
    return root, out


def _module_fixture(f):
    return pytest.fixture(scope="module")(f) if pytest else f


@_module_fixture
def cases():
    miss = missing_modules()
    if miss:
        pytest.skip("missing Python modules: " + ", ".join(miss))
    return load_cases()


# ---- tests ---------------------------------------------------------------------------------

def test_truth_files(cases):
    import numpy as np
    for s in cases[1].values():
        assert set(s.masks) == MASKS, (s.name, sorted(s.masks))
        for k, v in s.masks.items():
            assert v.dtype == np.uint8 and v.shape == s.vol.shape, (s.name, k, v.dtype, v.shape)
            assert v.max() <= 1
            assert s.manifest["mask_counts"][k] == int(v.sum()), (s.name, k)
        for k in MASKS - {"holder"}:
            assert s.m[k].any(), (s.name, k)
        nk, nj, ni = s.vol.shape
        assert s.manifest["dims"] == [ni, nj, nk], s.name
        assert s.manifest["pixel_spacing"] == [s.row_sp, s.col_sp], s.name
        for k in ("eyes", "nose", "lips", "brain", "skull", "face", "teeth"):
            assert not (s.m[k] & ~s.m["body"]).any(), (s.name, k, "outside body")
        assert not (s.m["face"] & s.m["skull"]).any(), s.name
        assert not (s.m["face"] & s.m["brain"]).any(), s.name
        assert not ((s.m["holder"] | s.m["marker"]) & s.m["body"]).any(), s.name
        assert (s.m["face"] & s.m["nose"]).any() and (s.m["face"] & s.m["lips"]).any()


def test_slices_and_files(cases):
    import numpy as np
    for s in cases[1].values():
        steps = np.diff(s.pos, axis=0)
        step = steps.mean(axis=0)
        assert np.abs(steps - step).max() < 1e-3, (s.name, "uneven slices")
        assert abs(np.linalg.norm(step) - float(s.dss[0].SliceThickness)) < 1e-3, s.name
        opts = s.manifest["options"]
        angle = np.degrees(np.arccos(abs(np.dot(step / np.linalg.norm(step), s.n))))
        if opts["tilt"]:
            assert abs(angle - opts["tilt"]) < 0.01, (s.name, angle)
            assert abs(step[0]) < 1e-6 and abs(step[1]) < 1e-6, (s.name, "table moves along z")
            assert abs(float(s.dss[0].GantryDetectorTilt) - opts["tilt"]) < 1e-6
        else:
            assert angle < 1e-3, (s.name, angle)
        inst = [int(ds.InstanceNumber) for ds in s.dss]
        n = len(inst)
        assert sorted(inst) == list(range(1, n + 1)), s.name
        want = {"inc": list(range(1, n + 1)), "dec": list(range(n, 0, -1))}.get(s.manifest["order"])
        if want:
            assert inst == want, s.name
        else:
            assert inst != sorted(inst) and inst != sorted(inst, reverse=True), s.name
        assert s.paths != sorted(s.paths) and s.paths != sorted(s.paths, reverse=True), \
            (s.name, "file names follow position")
        for f in s.manifest["files"]:
            k = f["k"]
            assert "dicom/" + s.paths[k] == f["file"], (s.name, k)
            assert np.allclose(f["position"], s.pos[k], atol=1e-3)


def test_values(cases):
    import numpy as np
    for s in cases[1].values():
        v, m = s.vol, s.m
        air = ~m["body"] & ~m["holder"] & ~m["marker"] & m["fov"]
        means = {k: float(v[x].mean()) for k, x in
                 (("air", air), ("brain", m["brain"]), ("skull", m["skull"]),
                  ("teeth", m["teeth"]), ("face", m["face"]), ("marker", m["marker"]))}
        assert means["teeth"] > means["skull"] > means["face"] > means["air"], (s.name, means)
        assert means["skull"] > means["brain"] > means["air"], (s.name, means)
        assert means["marker"] > means["brain"], (s.name, means)
        cbct = s.manifest["options"]["scale"] == "cbct"
        if cbct:
            assert s.rescale == (1.0, 0.0, "US"), s.name
            assert means["air"] > 100, (s.name, "CBCT air looks like HU", means["air"])
            assert (s.stored[~m["fov"]] == 0).all(), s.name
            assert m["fov"].mean() < 0.95, s.name
            assert 2500 < float(np.median(v[m["skull"]])) < 5000, s.name
        else:
            assert s.rescale[2] == "HU" and s.rescale[0] == 1.0, s.name
            assert abs(float(np.median(v[air])) + 1000) < 15, (s.name, means)
            assert 15 < float(np.median(v[m["brain"]])) < 45, (s.name, means)
            assert float(np.median(v[m["skull"]])) > 500, (s.name, means)
            assert m["fov"].all(), s.name
        # the masks follow the anatomy voxel by voxel (not only on average)
        body_thr = (means["air"] + means["brain"]) / 2
        assert (v[m["brain"]] > body_thr).mean() > 0.97, s.name
        assert (v[air] < body_thr).mean() > 0.97, s.name


def test_anatomy_in_patient_coordinates(cases):
    import numpy as np
    for s in cases[1].values():
        m = s.m
        b = s.centroid(m["brain"])
        x, y, z = s.xyz
        face = s.centroid(m["face"])
        assert face[1] < b[1] - 60, (s.name, "face not anterior", face, b)   # LPS: -y anterior
        assert face[2] < b[2] - 20, (s.name, "face not below the brain", face, b)
        assert (y[m["face"]] < b[1] - 20).all(), s.name
        eyes = s.centroid(m["eyes"])
        assert eyes[1] < b[1] - 50 and eyes[2] < b[2], (s.name, eyes, b)
        # nose tip: the most anterior body voxel is nose
        body_y = np.where(m["body"], y, np.inf)
        tip = np.unravel_index(int(np.argmin(body_y)), body_y.shape)
        assert m["nose"][tip], (s.name, "most anterior body voxel is not nose", tip)
        # the top of the body is above the brain, the brain above the face
        assert z[m["body"]].max() > z[m["brain"]].max() > face[2], s.name
        # the fiducial is on the patient's left (+x), the ears on both sides
        mk = s.centroid(m["marker"])
        assert mk[0] > b[0] + 50, (s.name, "marker not on the left", mk, b)
        ex = x[m["ears"]] - b[0]
        assert (np.abs(ex) > 55).all(), s.name
        assert 0.6 < (ex > 0).sum() / max(1, (ex < 0).sum()) < 1.6, s.name
        # the holder lies behind the head
        if m["holder"].any():
            assert s.centroid(m["holder"])[1] > b[1] + 60, s.name


def test_same_place_in_every_plane(cases):
    """Same seed, same pose: landmarks from each plane's DICOM geometry coincide (catches a
    swapped PixelSpacing, a flipped direction or a wrong position)."""
    import numpy as np
    ss = list(cases[1].values())
    ref = ss[0]
    for s in ss[1:]:
        for k, tol in (("brain", 1.5), ("skull", 2.0), ("eyes", 2.5), ("marker", 3.0),
                       ("body", 2.5)):
            d = np.abs(s.centroid(s.m[k]) - ref.centroid(ref.m[k]))
            assert d.max() < tol, (s.name, ref.name, k, d)


def test_library_matches_files(cases):
    import numpy as np
    sys.path.insert(0, os.path.dirname(GENERATOR))
    try:
        import importlib
        hp = importlib.import_module(os.path.splitext(os.path.basename(GENERATOR))[0])
    finally:
        sys.path.pop(0)
    for name in ("hu_axial", "cbct_coronal"):
        s = cases[1][name]
        o = s.manifest["options"]
        ph = hp.make_phantom(size=o["size"], dims=o["dims"], spacing=o["spacing"],
                             scale=o["scale"], orientation=o["orientation"], seed=o["seed"],
                             tilt=o["tilt"], pose=o["pose"], pixel=o["pixel"])
        assert ph.volume.shape == s.stored.shape and (ph.volume == s.stored).all(), name
        for k in MASKS:
            assert (ph.masks[k] == s.masks[k]).all(), (name, k)
        g = ph.geometry
        assert np.allclose(g["origin"], s.pos[0], atol=1e-3), name
        assert np.allclose(g["direction"][:3], s.r) and np.allclose(g["direction"][3:6], s.c)


def test_deterministic(cases):
    root, cs = cases
    name = "cbct_axial"
    again = os.path.join(root, name + "_again")
    generate(again, CASES[name])
    a, b = os.path.join(root, name), again
    files_a = sorted(os.path.relpath(os.path.join(d, f), a)
                     for d, _, fs in os.walk(a) for f in fs)
    files_b = sorted(os.path.relpath(os.path.join(d, f), b)
                     for d, _, fs in os.walk(b) for f in fs)
    assert files_a == files_b
    for f in files_a:
        with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
            assert fa.read() == fb.read(), f


def main():
    """Plain-script run: 0 all passed, 1 a test failed, 77 skipped."""
    if missing_modules():
        print("skipped: missing " + ", ".join(missing_modules()))
        return 77
    data = load_cases()
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
