"""deid-ct end to end on the real head CT of ../shared/data/ct/head_ct_5mm (34 slices) laid out
as a root of case folders:

- `-i ROOT` with no output writes ROOT_d, mirroring the cases; every slice is written with its
  header de-identified (no original name, ID or UID left), one keys.csv row each, one new
  series; the face slices' pixels changed and the top of the head did not;
- a file that is no CT slice is skipped with a reason; NIfTI, NRRD and the QC render exist;
- --keep-headers keeps every header element but the pixel data, under the input names;
- --enhanced legacy|ct writes one de-identified multi-frame object per series (dciodvfy clean),
  and such a multi-frame object as input is defaced as one volume;
- a resume redoes nothing; a truncated slice fails alone (one line naming the file, exit 1):
  its series is written without it and reported with the gap, and the other cases go on.

Run by ctest (exit 77 when deid-ct, numpy or pydicom is missing), or by hand:
  DEID_BUILD_DIR=build /usr/bin/python3 -m pytest -q -s tests/integration/test_deid_ct.py
"""
import csv
import glob
import os
import shutil
import subprocess

import pytest

np = pytest.importorskip("numpy")
pydicom = pytest.importorskip("pydicom")

from deidtest import require_shared_data, workdir, write_key  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("DEID_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("DEID_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")


def tool():
    d = os.environ.get("DEID_TOOLS_DIR", os.path.join(BUILD_DIR, "tools"))
    t = os.path.join(d, "deid-ct") if d else ""
    if not t or not os.access(t, os.X_OK):
        pytest.skip("deid-ct is not built")
    return t


def run(*args):
    p = subprocess.run([tool(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def cases():
    """ROOT/case1/head (the 34 slices), ROOT/case2/us.dcm (an ultrasound file: not CT)."""
    data = require_shared_data()
    head = os.path.join(data, "ct", "head_ct_5mm")
    if not os.path.isdir(head):
        pytest.skip("../shared/data/ct/head_ct_5mm is absent")
    d = workdir("deid_ct")
    root = os.path.join(d, "root")
    shutil.copytree(head, os.path.join(root, "case1", "head"))
    os.makedirs(os.path.join(root, "case2"))
    shutil.copy(os.path.join(data, "us", "orthanc_Issue19_ATL_sector.dcm"),
                os.path.join(root, "case2", "us.dcm"))
    return d, root, head


def slices(folder):
    """{original SOP Instance UID or file name: dataset} of the DICOM files in folder."""
    out = {}
    for p in sorted(glob.glob(os.path.join(folder, "*.dcm"))):
        out[p] = pydicom.dcmread(p)
    return out


def by_position(datasets):
    return sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2]))


def test_case_tree(cases):
    d, root, head = cases
    key = write_key(os.path.join(d, "k1.key"))
    w, nii = os.path.join(d, "work"), os.path.join(d, "nii")
    rc, out, err = run("-i", root, "--key", key, "-w", w, "--nifti-root-out", nii, "--nrrd")
    assert rc == 0, out + err
    dest = root + "_d"
    outs = slices(os.path.join(dest, "case1", "head"))
    ins = slices(head)
    assert len(outs) == len(ins) == 34
    # headers de-identified: no original identifier in any output
    orig = next(iter(ins.values()))
    for ds in outs.values():
        assert str(ds.PatientName) != str(orig.PatientName)
        assert ds.PatientID != orig.PatientID
        assert ds.StudyInstanceUID != orig.StudyInstanceUID
        assert ds.SeriesInstanceUID != orig.SeriesInstanceUID
        assert ds.PatientIdentityRemoved == "YES"
    assert len({ds.SeriesInstanceUID for ds in outs.values()}) == 1
    assert len({ds.SOPInstanceUID for ds in outs.values()}) == 34
    assert not {ds.SOPInstanceUID for ds in outs.values()} & \
        {ds.SOPInstanceUID for ds in ins.values()}
    # pixels: the face slices changed, the top of the head did not (the reference is the same
    # run without defacing: the inputs' own pixels, decoded by libdeid)
    plain = os.path.join(d, "plain")
    rc, so, se = run(root, plain, "--no-deface", "--key", key)
    assert rc == 0, so + se
    a = [ds.pixel_array for ds in by_position(slices(os.path.join(plain, "case1", "head"))
                                             .values())]
    b = [ds.pixel_array for ds in by_position(outs.values())]
    changed = [int((x != y).sum()) for x, y in zip(a, b)]
    assert sum(changed) > 10000, changed
    assert changed[-1] == 0, changed  # the most superior slice: skull top, no face
    # reports and volumes
    with open(os.path.join(dest, "keys.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 34
    niis = glob.glob(os.path.join(nii, "case1", "head", "*.nii.gz"))
    nrrds = glob.glob(os.path.join(nii, "case1", "head", "*.nrrd"))
    pngs = glob.glob(os.path.join(w, "qc", "case1", "head", "*.png"))
    assert len(niis) == len(nrrds) == len(pngs) == 1
    assert os.path.basename(niis[0]) == next(iter(outs.values())).SeriesInstanceUID + ".nii.gz"
    with open(pngs[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(w, "deid-ct.log"), encoding="utf-8") as f:
        log = f.read()
    assert "series in case1/head: 34 slices" in log
    assert "case2/us.dcm: not CT" in log
    assert str(orig.PatientName) not in log + out + err
    # resume: nothing redone
    mtimes = {p: os.stat(p).st_mtime_ns for p in outs}
    rc, out, err = run("-i", root, "--key", key, "--resume-anonymization", "--log",
                       os.path.join(d, "resume.log"))
    assert rc == 0, out + err
    assert {p: os.stat(p).st_mtime_ns for p in outs} == mtimes
    with open(os.path.join(d, "resume.log"), encoding="utf-8") as f:
        assert f.read().count("already done") == 34


def test_keep_headers(cases):
    d, root, head = cases
    out = os.path.join(d, "kept")
    rc, so, se = run(root, out, "--keep-headers", "--key", write_key(os.path.join(d, "k2.key")))
    assert rc == 0, so + se
    ins = slices(head)
    for p, ds in ins.items():
        q = os.path.join(out, "case1", "head", os.path.basename(p))
        assert os.path.exists(q), q
        o = pydicom.dcmread(q)
        pixel_module = {0x7FE00010, 0x00280100, 0x00280101, 0x00280102, 0x00280103,
                        0x00280106, 0x00280107}
        for el in ds:
            if el.tag in pixel_module or el.tag.group == 0x0002:
                continue
            assert el.tag in o and o[el.tag].value == el.value, (q, el.tag)


def test_broken_slice_fails_alone(cases):
    d, root, head = cases
    broken = os.path.join(d, "broken")
    shutil.copytree(os.path.join(root, "case1"), os.path.join(broken, "case1"))
    shutil.copytree(os.path.join(root, "case1"), os.path.join(broken, "case3"))
    victim = sorted(glob.glob(os.path.join(broken, "case1", "head", "*.dcm")))[5]
    with open(victim, "r+b") as f:
        f.truncate(3000)
    log = os.path.join(d, "broken.log")
    rc, out, err = run(broken, os.path.join(d, "broken_out"), "--key",
                       write_key(os.path.join(d, "k3.key")), "--log", log)
    assert rc == 1, out + err
    lines = [ln for ln in err.splitlines() if os.path.basename(victim) in ln]
    assert len(lines) == 1, err
    assert len(glob.glob(os.path.join(d, "broken_out", "case1", "head", "*.dcm"))) == 33
    assert len(glob.glob(os.path.join(d, "broken_out", "case3", "head", "*.dcm"))) == 34
    with open(log, encoding="utf-8") as f:
        series = [ln for ln in f if "series in case1/head" in ln]
    assert len(series) == 1 and "33 slices" in series[0] and "1 missing" in series[0], series


@pytest.mark.parametrize("kind,sop", [("legacy", "1.2.840.10008.5.1.4.1.1.2.2"),
                                      ("ct", "1.2.840.10008.5.1.4.1.1.2.1")])
def test_enhanced(cases, kind, sop):
    """--enhanced: one multi-frame object per series, de-identified (no original UID or name
    anywhere in the file, nested sequences included), dciodvfy without Error."""
    d, root, head = cases
    out = os.path.join(d, "enhanced_" + kind)
    rc, so, se = run(root, out, "--enhanced", kind, "--key",
                     write_key(os.path.join(d, "k4.key")))
    assert rc == 0, so + se
    files = glob.glob(os.path.join(out, "case1", "head", "*.dcm"))
    assert len(files) == 1, files
    o = pydicom.dcmread(files[0])
    assert o.SOPClassUID == sop and int(o.NumberOfFrames) == 34
    assert o.pixel_array.shape == (34, 512, 512)
    raw = open(files[0], "rb").read()
    ins = slices(head).values()
    for ds in ins:
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID):
            assert uid.encode() not in raw
    assert str(next(iter(ins)).PatientName).encode() not in raw
    with open(os.path.join(out, "keys.csv"), newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 1
    if shutil.which("dciodvfy"):
        p = subprocess.run(["dciodvfy", files[0]], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        errors = [ln for ln in p.stdout.decode(errors="replace").splitlines()
                  if ln.startswith("Error")]
        assert not errors, errors


def test_usage_errors(cases):
    """No input: usage error (2). An input without output: <input>_d (tested above)."""
    rc, out, err = run()
    assert rc == 2 and "missing INPUT" in err, err
    rc, out, err = run("-i", "/nonexistent/deid-ct-input", "--key",
                       write_key(os.path.join(cases[0], "k5.key")))
    assert rc == 1 and "/nonexistent/deid-ct-input" in err, err


def test_multiframe_input(cases):
    """A multi-frame CT object (here a Legacy Converted Enhanced CT made by deid-ct itself
    without defacing) is a volume too: defaced and written back into one object."""
    d, root, head = cases
    key = write_key(os.path.join(d, "k6.key"))
    src, hdr, out = (os.path.join(d, "mf_in"), os.path.join(d, "mf_hdr"),
                     os.path.join(d, "mf_out"))
    rc, so, se = run(os.path.join(root, "case1"), src, hdr, "--enhanced", "legacy",
                     "--no-deface", "--no-json", "--key", key)
    assert rc == 0, so + se
    rc, so, se = run(src, out, os.path.join(d, "mf_hdr2"), "--key", key)
    assert rc == 0, so + se
    a_files = glob.glob(os.path.join(src, "**", "*.dcm"), recursive=True)
    b_files = glob.glob(os.path.join(out, "**", "*.dcm"), recursive=True)
    assert len(a_files) == len(b_files) == 1
    a = pydicom.dcmread(a_files[0]).pixel_array
    b = pydicom.dcmread(b_files[0]).pixel_array
    assert a.shape == b.shape == (34, 512, 512)
    changed = [int((a[k] != b[k]).sum()) for k in range(34)]
    assert sum(changed) > 10000, changed
    top = int(np.argmax([float(p[2]) for p in (
        fg.PlanePositionSequence[0].ImagePositionPatient
        for fg in pydicom.dcmread(a_files[0]).PerFrameFunctionalGroupsSequence)]))
    assert changed[top] == 0, changed


def test_model_method(cases):
    """--model-path runs the shipped face model (trained on phantoms) end to end; skipped when
    libdeid has no torch module. On this real scan only a run that writes the series and
    changes face voxels is asserted: the model's quality is measured on phantoms."""
    d, root, head = cases
    model = os.path.join(SOURCE_DIR, "libdeid", "ct", "model", "face.pt")
    out = os.path.join(d, "model_out")
    rc, so, se = run(os.path.join(root, "case1"), out, "--model-path", model, "--key",
                     write_key(os.path.join(d, "k7.key")), "--log", os.path.join(d, "m.log"))
    if rc != 0 and "torch" in se:
        pytest.skip("libdeid has no torch module: " + se.strip().splitlines()[-1])
    assert rc == 0, so + se
    assert len(glob.glob(os.path.join(out, "head", "*.dcm"))) == 34
    with open(os.path.join(d, "m.log"), encoding="utf-8") as f:
        line = [ln for ln in f if ln.startswith("deface")]
    assert line and "model:" in line[0], line
    assert int(line[0].split("model: ")[1].split()[0]) > 1000, line
