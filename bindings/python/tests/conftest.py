"""Fixtures: small synthetic DICOM objects made with pydicom (no real patient data)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import pytest

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

import deid

PATIENT_NAME = "Doe^Jane^Q"
PATIENT_ID = "PID-4711-XYZ"
STUDY_UID = "1.2.826.0.1.3680043.10.543.1.1"
SERIES_UID = "1.2.826.0.1.3680043.10.543.1.2"


def make_dataset(index: int = 0, patient_id: str = PATIENT_ID) -> FileDataset:
    sop_uid = f"1.2.826.0.1.3680043.10.543.1.3.{index + 1}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.PatientName = PATIENT_NAME
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240315"
    ds.InstitutionName = "Hospital of Nowhere"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.AccessionNumber = "ACC123456"
    ds.Modality = "OT"
    ds.StudyID = "S1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(256, dtype=np.uint8) + index).astype(np.uint8).tobytes()
    return ds


def to_bytes(ds: FileDataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, write_like_original=False)
    return buf.getvalue()


@pytest.fixture
def dicom_bytes() -> bytes:
    return to_bytes(make_dataset())


@pytest.fixture
def dicom_dir(tmp_path: Path) -> Path:
    """A small input tree: 3 files in two subfolders plus one non-DICOM file."""
    root = tmp_path / "in"
    for i in range(3):
        sub = root / ("a" if i < 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"img{i}.dcm").write_bytes(to_bytes(make_dataset(i)))
    return root


@pytest.fixture
def key(tmp_path: Path) -> deid.Key:
    return deid.Key.load(tmp_path / "test.key", create=True)


@pytest.fixture
def make() -> Callable[..., FileDataset]:
    return make_dataset
