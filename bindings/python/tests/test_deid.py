"""The binding end to end: what a Python user of libdeid relies on."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

import deid
from conftest import PATIENT_ID, PATIENT_NAME, SERIES_UID, STUDY_UID, make_dataset, to_bytes


def read(data: bytes) -> "pydicom.Dataset":
    return pydicom.dcmread(io.BytesIO(data))


def assert_deidentified(ds: "pydicom.Dataset") -> None:
    assert str(ds.get("PatientName", "")) != PATIENT_NAME
    assert ds.get("PatientID", "") != PATIENT_ID
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.StudyInstanceUID != STUDY_UID and ds.StudyInstanceUID.startswith("2.25.")
    assert ds.SeriesInstanceUID != SERIES_UID
    assert "InstitutionName" not in ds or ds.InstitutionName != "Hospital of Nowhere"


def test_version_and_features():
    assert deid.version().count(".") == 2
    assert "gdcm" in deid.features()


def test_options_listed_from_library():
    opts = deid.options()
    assert "retain-uids" in opts
    assert all(isinstance(text, str) and text for text in opts.values())


def test_bytes_in_bytes_out(dicom_bytes, key):
    out = deid.deidentify(dicom_bytes, key=key)
    assert isinstance(out, bytes)
    assert PATIENT_NAME.encode() not in out and PATIENT_ID.encode() not in out
    assert_deidentified(read(out))


def test_same_key_same_uids_other_key_other_uids(dicom_bytes, key, tmp_path):
    first = read(deid.deidentify(dicom_bytes, key=key))
    again = read(deid.deidentify(dicom_bytes, key=deid.Key.load(tmp_path / "test.key")))
    other = read(deid.deidentify(dicom_bytes, key=deid.Key.generate()))
    assert first.StudyInstanceUID == again.StudyInstanceUID
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.PatientID == again.PatientID
    assert first.StudyInstanceUID != other.StudyInstanceUID


def test_uids_follow_profile_helpers(dicom_bytes, key):
    with deid.Profile(key) as profile:
        out = read(profile.deidentify(dicom_bytes))
        assert out.StudyInstanceUID == profile.uid(STUDY_UID)
        assert len(profile.patient_pseudonym(PATIENT_ID)) == 10
        assert profile.date_shift(PATIENT_ID) != 0


def test_retain_uids_option(dicom_bytes, key):
    out = read(deid.deidentify(dicom_bytes, key=key, options=["retain-uids"]))
    assert out.StudyInstanceUID == STUDY_UID
    assert out.PatientIdentityRemoved == "YES"


def test_path_input_and_output(dicom_bytes, key, tmp_path):
    src = tmp_path / "in.dcm"
    src.write_bytes(dicom_bytes)
    dst = tmp_path / "out.dcm"
    out = deid.deidentify(src, key=key, output=dst)
    assert dst.read_bytes() == out
    assert src.read_bytes() == dicom_bytes  # input untouched
    assert_deidentified(read(out))
    assert deid.deidentify(str(src), key=key) == out


def test_pydicom_dataset(key):
    ds = make_dataset()
    out = deid.deidentify(ds, key=key)
    assert isinstance(out, pydicom.Dataset)
    assert_deidentified(out)
    assert ds.PatientName == PATIENT_NAME  # the caller's dataset is not modified
    assert out.Rows == 16 and out.PixelData == ds.PixelData


def test_bad_bytes_raise_with_status(key):
    with pytest.raises(deid.DeidError) as info:
        deid.deidentify(b"this is not DICOM at all" * 10, key=key)
    assert info.value.status == deid.Status.NOT_DICOM
    assert info.value.detail


def test_missing_key_and_unknown_option(dicom_bytes, key):
    with pytest.raises(deid.DeidError) as info:
        deid.deidentify(dicom_bytes)
    assert info.value.status == deid.Status.ARGUMENT
    with pytest.raises(deid.DeidError) as info:
        deid.deidentify(dicom_bytes, key=key, options=["no-such-option"])
    assert info.value.status == deid.Status.ARGUMENT


def test_key_file_created_private_and_reused(tmp_path):
    path = tmp_path / "new.key"
    k1 = deid.Key.load(path)
    assert k1.created and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    k2 = deid.Key.load(path)
    assert not k2.created
    with deid.Profile(k1) as p1, deid.Profile(k2) as p2:
        assert p1.patient_pseudonym("x") == p2.patient_pseudonym("x")
    with pytest.raises(deid.DeidError):
        deid.Key.load(tmp_path / "absent.key", create=False)


def test_batch_on_generated_folder(dicom_dir, key, tmp_path):
    seen = []
    out, headers = tmp_path / "out", tmp_path / "headers"
    summary = deid.Batch(dicom_dir, out, headers, key=key, workers=2,
                         progress=seen.append).run()
    assert (summary.found, summary.ok, summary.failed) == (3, 3, 0)
    assert not summary.cancelled
    assert seen and seen[-1].done == 3
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == 3
    for f in written:
        data = f.read_bytes()
        assert PATIENT_NAME.encode() not in data
        assert_deidentified(read(data))
    assert (headers / "keys.csv").exists()
    assert len(list(headers.rglob("*_DICOMHeader.json"))) == 3
    again = deid.Batch(dicom_dir, out, headers, key=key, resume=True).run()
    assert again.ok == 0 and again.skipped == 3


def test_batch_cancel_from_progress(key, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(40):  # enough that the first progress call comes before the last file
        (src / f"{i}.dcm").write_bytes(to_bytes(make_dataset(i)))
    calls = []
    summary = deid.Batch(src, tmp_path / "out", key=key, workers=1,
                         progress=lambda p: calls.append(p) or True).run()
    assert summary.cancelled
    assert summary.ok < 40
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == summary.ok  # finished files kept


def test_progress_exception_propagates(dicom_dir, key, tmp_path):
    def boom(_p):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        deid.Batch(dicom_dir, tmp_path / "out", key=key, progress=boom).run()


def test_batch_unreadable_input_raises(key, tmp_path):
    with pytest.raises(deid.DeidError):
        deid.Batch(tmp_path / "missing", tmp_path / "out", key=key).run()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(deid.__file__).parents[1]), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "deid", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_help_lists_options():
    r = run_cli("--help")
    assert r.returncode == 0
    assert "retain-uids" in r.stdout


def test_cli_file(dicom_bytes, tmp_path):
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    src.write_bytes(dicom_bytes)
    r = run_cli("file", str(src), str(dst), "--key", str(tmp_path / "cli.key"))
    assert r.returncode == 0, r.stderr
    assert_deidentified(pydicom.dcmread(dst))
    r = run_cli("file", str(tmp_path / "cli.key"), str(dst), "--key", str(tmp_path / "cli.key"))
    assert r.returncode == 1 and "deid:" in r.stderr
