#!/usr/bin/python3
"""Synthetic DICOM corpus in which every identifying value is a known marker.

Three patients x studies x series, 30 files: CT (explicit VR, implicit VR, RLE), MR (implicit and
explicit VR) with overlay planes, US multi-frame (RLE RGB and native) with curves, a Basic Text
SR whose Content Sequence is nested three deep, and an RT Structure Set whose references point
at the CT slices. PHI markers go into every text-bearing VR (PN LO SH LT ST UT DA DT TM AS UI CS
AE DS IS, and binary in private/overlay/curve data) of attributes that PS3.15 Table E.1-1 says to
remove, empty, replace or clean, at depths 0 to 3, into private blocks with and without a private
creator, into overlays (60xx) and curves (50xx). Attributes the profile keeps are recorded with
their raw bytes, and UID references between files are listed so a test can check they resolve.

Text markers all start with "PHIX", so a test can look for that one string; values whose VR
cannot hold letters (dates, times, ages, numbers, UIDs) are listed one by one in the manifest.
Every original UID lies under UID_ROOT. The output is a pure function of --seed.

Usage:
  make_phi_corpus.py --out DIR [--manifest FILE] [--seed N]   the 30-file corpus (about 1 s)
  make_phi_corpus.py --sample --out DIR                        3 small CT files for demos
Requires pydicom >= 2.2 and numpy (Debian: /usr/bin/python3).
"""
import argparse
import datetime
import json
import os
import random
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

UID_ROOT = "1.2.826.0.1.3680043.9.7777"
TEXT_MARKER = "PHIX"
PRIVATE_CREATOR = "LIBDEID TEST PRIVATE"

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"

# ---- PHI attributes per information level: (tag, VR). Every tag here has a non-K action in
# the Basic Profile of Table E.1-1 (the test checks that against the 2024b table when present).
PATIENT_PHI = [
    (0x00100010, "PN"), (0x00100020, "LO"), (0x00100021, "LO"), (0x00100030, "DA"),
    (0x00100032, "TM"), (0x00101010, "AS"), (0x00101020, "DS"), (0x00101030, "DS"),
    (0x00101000, "LO"), (0x00101001, "PN"), (0x00101005, "PN"), (0x00101040, "LO"),
    (0x00101060, "PN"), (0x00101080, "LO"), (0x00101081, "LO"), (0x00102154, "SH"),
    (0x00102155, "LT"), (0x00102160, "SH"), (0x00102180, "SH"), (0x001021A0, "CS"),
    (0x001021B0, "LT"), (0x001021F0, "LO"), (0x00102000, "LO"), (0x00102110, "LO"),
    (0x00104000, "LT"), (0x00102203, "CS"), (0x00102150, "LO"), (0x00102152, "LO"),
]
STUDY_PHI = [
    (0x00080020, "DA"), (0x00080030, "TM"), (0x00080050, "SH"), (0x00080090, "PN"),
    (0x00080092, "ST"), (0x00080094, "SH"), (0x00200010, "SH"), (0x00081030, "LO"),
    (0x00081048, "PN"), (0x00081060, "PN"), (0x00321032, "PN"), (0x00324000, "LT"),
    (0x00380010, "LO"), (0x00321066, "UT"), (0x00081080, "LO"),
]
SERIES_PHI = [
    (0x00080021, "DA"), (0x00080031, "TM"), (0x0008103E, "LO"), (0x00081070, "PN"),
    (0x00081050, "PN"), (0x00181030, "LO"), (0x00081010, "SH"), (0x00080080, "LO"),
    (0x00080081, "ST"), (0x00081040, "LO"), (0x00181000, "LO"), (0x00080055, "AE"),
    (0x00400241, "AE"), (0x00400242, "SH"), (0x00400243, "SH"), (0x00400244, "DA"),
    (0x00400245, "TM"), (0x00400253, "SH"), (0x00400254, "LO"), (0x00400280, "ST"),
    (0x00181002, "UI"),
]
INSTANCE_PHI = [
    (0x00080012, "DA"), (0x00080013, "TM"), (0x00080014, "UI"), (0x00080023, "DA"),
    (0x00080033, "TM"), (0x00080022, "DA"), (0x00080032, "TM"), (0x0008002A, "DT"),
    (0x00204000, "LT"), (0x00082111, "ST"), (0x00184000, "LT"), (0x00181400, "LO"),
    (0x00080054, "AE"),
]
# Identifying attributes placed inside items of sequences the profile keeps (depth 1..3).
NESTED_PHI = [(0x00080080, "LO"), (0x00081070, "PN"), (0x0040A123, "PN"), (0x00080020, "DA"),
              (0x00080030, "TM"), (0x00100010, "PN")]

# Attributes the profile keeps (absent from Table E.1-1): their raw bytes must survive.
KEPT_COMMON = ["SpecificCharacterSet", "Modality", "SOPClassUID", "Manufacturer",
               "ManufacturerModelName", "SoftwareVersions", "SeriesNumber", "InstanceNumber"]
KEPT_IMAGE = KEPT_COMMON + ["ImageType", "BodyPartExamined", "AcquisitionNumber", "Rows",
                            "Columns",
                            "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                            "SamplesPerPixel", "PhotometricInterpretation"]
KEPT_BY_MODALITY = {
    "CT": KEPT_IMAGE + ["PixelSpacing", "SliceThickness", "ImagePositionPatient",
                        "ImageOrientationPatient", "RescaleIntercept", "RescaleSlope",
                        "RescaleType", "WindowCenter", "WindowWidth", "KVP", "SliceLocation"],
    "MR": KEPT_IMAGE + ["PixelSpacing", "SliceThickness", "ImagePositionPatient",
                        "ImageOrientationPatient", "EchoTime", "RepetitionTime",
                        "MagneticFieldStrength", "ScanningSequence", "SequenceVariant",
                        "ScanOptions", "MRAcquisitionType"],
    "US": KEPT_IMAGE + ["NumberOfFrames", "FrameTime", "PlanarConfiguration",
                        "FrameIncrementPointer"],
    "SR": KEPT_COMMON + ["CompletionFlag", "VerificationFlag", "ValueType"],
    "RTSTRUCT": KEPT_COMMON,
}


class Phi:
    """Hands out unique marker values and records where each one was written."""

    def __init__(self, rng):
        self.rng = rng
        self.n = 0
        self.entries = {}   # value -> {"value","vr","kind","tags":set,"files":set,"depths":set}
        self.uids = []
        self.file = None    # relative path of the file being built

    def _fresh(self, make):
        for _ in range(1000):
            v = make()
            if v not in self.entries and not any(v in u for u in self.uids):
                return v
        raise RuntimeError("could not draw a unique marker")

    def new(self, vr):
        """A fresh marker value valid (as far as possible) for `vr`."""
        self.n += 1
        n, r = self.n, self.rng
        if vr == "PN":
            return f"{TEXT_MARKER}{n:03d}^FAMILY{n:03d}^GIVEN"
        if vr == "LO":
            return f"{TEXT_MARKER}{n:03d} LONG STRING"
        if vr == "SH":
            return f"{TEXT_MARKER}{n:03d}SH"
        if vr in ("LT", "ST", "UT"):
            return f"{TEXT_MARKER}{n:03d} free text: seen by Dr {TEXT_MARKER}{n:03d}B"
        if vr == "CS":
            return f"{TEXT_MARKER}{n:03d}CS"
        if vr == "AE":
            return f"{TEXT_MARKER}{n:03d}AE"
        if vr == "DA":
            return self._fresh(lambda: self._date())
        if vr == "TM":
            return self._fresh(lambda: self._time())
        if vr == "DT":
            return self._fresh(lambda: self._date() + self._time())
        if vr == "AS":
            return self._fresh(lambda: f"{r.randint(18, 97):03d}Y")
        if vr == "DS":
            return self._fresh(lambda: f"{r.randint(41, 119)}.{r.randint(1000, 9999)}")
        if vr == "IS":
            return self._fresh(lambda: str(r.randint(10**8, 10**9 - 1)))
        if vr == "UI":
            uid = f"{UID_ROOT}.{n}.{r.randint(1000, 9999)}"
            self.uids.append(uid)
            return uid
        raise ValueError(vr)

    def _date(self):
        # Month/day never 01/01 so a year-only birth date is told apart from the original.
        d = datetime.date(1931, 1, 1) + datetime.timedelta(days=self.rng.randint(40, 32000))
        return d.strftime("%Y%m%d")

    def _time(self):
        r = self.rng
        return (f"{r.randint(0, 23):02d}{r.randint(0, 59):02d}{r.randint(0, 59):02d}"
                f".{r.randint(0, 999999):06d}")

    def note(self, value, vr, tag, kind, depth):
        e = self.entries.setdefault(value, {"value": value, "vr": vr, "kind": kind,
                                            "tags": set(), "files": set(), "depths": set()})
        e["tags"].add(f"{tag:08X}")
        e["files"].add(self.file)
        e["depths"].add(depth)

    def put(self, ds, tag, vr, depth, value=None, kind="table"):
        """Write a marker (fresh unless `value` is given) into ds and record it."""
        if value is None:
            value = self.new(vr)
        ds.add_new(tag, vr, value)
        if vr != "UI":
            self.note(value, vr, tag, kind, depth)
        return value

    def put_bytes(self, ds, tag, vr, depth, kind, pad=0):
        """A binary value (OB/OW/UN) that carries a text marker in its bytes."""
        self.n += 1
        text = f"{TEXT_MARKER}{self.n:03d} BINARY"
        raw = text.encode("ascii")
        raw = raw + b"\0" * (pad - len(raw)) if pad > len(raw) else raw
        if len(raw) % 2:
            raw += b"\0"
        ds.add_new(tag, vr, raw)
        self.note(text, vr, tag, kind, depth)


# ---- building blocks ------------------------------------------------------------------------

def add_private_blocks(ds, phi, depth, group_with=0x0009, group_without=0x0011):
    """A private block with its creator and a creatorless one, both carrying markers."""
    ds.add_new((group_with << 16) | 0x0010, "LO", PRIVATE_CREATOR)
    base = (group_with << 16) | 0x1000
    phi.put(ds, base | 0x01, "LO", depth, kind="private")
    phi.put(ds, base | 0x02, "PN", depth, kind="private")
    phi.put(ds, base | 0x03, "DA", depth, kind="private")
    phi.put(ds, base | 0x04, "UT", depth, kind="private")
    phi.put_bytes(ds, base | 0x05, "OB", depth, kind="private")
    if depth == 0:
        item = Dataset()
        phi.put(item, 0x00100010, "PN", depth + 1, kind="private")
        phi.put(item, base | 0x07, "SH", depth + 1, kind="private")
        ds.add_new(base | 0x06, "SQ", Sequence([item]))
    # Elements in an odd group without any creator (illegal, seen in the wild).
    phi.put(ds, (group_without << 16) | 0x1010, "LO", depth, kind="private-no-creator")
    phi.put(ds, (group_without << 16) | 0x1011, "LT", depth, kind="private-no-creator")


def add_overlay(ds, phi, rows, cols):
    g = 0x6000 << 16
    ds.add_new(g | 0x0010, "US", rows)
    ds.add_new(g | 0x0011, "US", cols)
    ds.add_new(g | 0x0040, "CS", "G")
    ds.add_new(g | 0x0050, "SS", [1, 1])
    ds.add_new(g | 0x0100, "US", 1)
    ds.add_new(g | 0x0102, "US", 0)
    phi.put(ds, g | 0x0022, "LO", 0, kind="overlay")       # Overlay Description
    phi.put(ds, g | 0x1500, "LO", 0, kind="overlay")       # Overlay Label
    phi.put(ds, g | 0x4000, "LT", 0, kind="overlay")       # Overlay Comments (X)
    phi.put_bytes(ds, g | 0x3000, "OW", 0, kind="overlay", pad=rows * cols // 8)


def add_curve(ds, phi, points=16):
    g = 0x5000 << 16
    ds.add_new(g | 0x0005, "US", 1)
    ds.add_new(g | 0x0010, "US", points)
    ds.add_new(g | 0x0020, "CS", "ECG")
    phi.put(ds, g | 0x0022, "LO", 0, kind="curve")        # Curve Description
    ds.add_new(g | 0x0030, "SH", "DPPS")
    phi.put(ds, g | 0x2500, "LO", 0, kind="curve")        # Curve Label
    ds.add_new(g | 0x0103, "US", 0)
    phi.put_bytes(ds, g | 0x3000, "OB", 0, kind="curve", pad=points * 2)


def sop_ref(sop_class, sop_uid):
    """An item naming one SOP instance (Referenced SOP Class/Instance UID)."""
    it = Dataset()
    it.ReferencedSOPClassUID, it.ReferencedSOPInstanceUID = sop_class, sop_uid
    return it


def code_item(value, scheme, meaning):
    it = Dataset()
    it.CodeValue, it.CodingSchemeDesignator, it.CodeMeaning = value, scheme, meaning
    return it


def nested_reference(ds, phi, target, refs, rel):
    """Referenced Series Sequence (kept by the profile) three levels deep, with markers at each
    level and a reference to the first instance of `target` (another series)."""
    lvl3 = code_item("121311", "DCM", "Localizer")
    for tag, vr in NESTED_PHI[3:]:
        phi.put(lvl3, tag, vr, 3, kind="nested")
    add_private_blocks(lvl3, phi, 3, 0x0019, 0x0021)
    lvl2 = sop_ref(target["sop_class"], target["sop_uid"])
    phi.put(lvl2, *NESTED_PHI[1], 2, kind="nested")
    phi.put(lvl2, *NESTED_PHI[2], 2, kind="nested")
    lvl2.PurposeOfReferenceCodeSequence = Sequence([lvl3])
    lvl1 = Dataset()
    lvl1.SeriesInstanceUID = target["series_uid"]
    phi.put(lvl1, *NESTED_PHI[0], 1, kind="nested")
    lvl1.ReferencedInstanceSequence = Sequence([lvl2])
    ds.ReferencedSeriesSequence = Sequence([lvl1])
    img = sop_ref(target["sop_class"], target["sop_uid"])   # Referenced Image Sequence (X/Z/U*)
    if "ReferencedImageSequence" in ds:
        ds.ReferencedImageSequence.append(img)
    else:
        ds.ReferencedImageSequence = Sequence([img])
    refs.append(ref(rel, ["00081115", 0, "0020000E"], target["rel"], "0020000E"))
    refs.append(ref(rel, ["00081115", 0, "0008114A", 0, "00081155"], target["rel"], "00080018"))


def ref(src, path, dst, dst_tag):
    return {"file": src, "path": path, "target_file": dst, "target_tag": dst_tag}


class Corpus:
    def __init__(self, seed, stream_to=None):
        self.stream_to = stream_to   # write each file when built and keep nothing (big corpora)
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.phi = Phi(self.rng)
        self.files = []      # (rel, dataset, info)
        self.refs = []
        self.patients = {}

    # -- levels ---------------------------------------------------------------------------
    def patient(self, key, sex, charset="ISO_IR 100"):
        p = {"key": key, "sex": sex, "charset": charset, "values": {}}
        for tag, vr in PATIENT_PHI:
            p["values"][tag] = (vr, self.phi.new(vr))
        if charset == "ISO_IR 192":   # a UTF-8 name: markers must go in any encoding
            n = self.phi.n = self.phi.n + 1
            p["values"][0x00100010] = ("PN", f"{TEXT_MARKER}{n:03d}^MÜLLER^JOSÉ")
        p["other_ids"] = [(0x00100020, "LO", self.phi.new("LO")),
                          (0x00100021, "LO", self.phi.new("LO"))]
        self.patients[key] = p
        return p

    def study(self, p):
        s = {"patient": p, "uid": self.phi.new("UI"), "values": {},
             "ref_study_uid": self.phi.new("UI"),
             "request": [(0x00401001, "SH", self.phi.new("SH")),
                         (0x00400009, "SH", self.phi.new("SH")),
                         (0x00321060, "LO", self.phi.new("LO")),
                         (0x00400007, "LO", self.phi.new("LO"))],
             "protocol_meaning": self.phi.new("LO")}
        for tag, vr in STUDY_PHI:
            s["values"][tag] = (vr, self.phi.new(vr))
        return s

    def series(self, st, modality, number, folder):
        se = {"study": st, "modality": modality, "number": number, "folder": folder,
              "uid": self.phi.new("UI"), "for_uid": self.phi.new("UI"), "values": {},
              "instances": []}
        for tag, vr in SERIES_PHI:
            se["values"][tag] = (vr, self.phi.new(vr))
        return se

    def base(self, se, sop_class, number, ts):
        """Dataset with patient/study/series/instance PHI and kept general attributes."""
        st, p = se["study"], se["study"]["patient"]
        phi = self.phi
        sop_uid = phi.new("UI")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ts
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.is_little_endian = True
        ds.is_implicit_VR = ts == ImplicitVRLittleEndian
        ds.SpecificCharacterSet = p["charset"]
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = st["uid"]
        ds.SeriesInstanceUID = se["uid"]
        ds.Modality = se["modality"]
        ds.SeriesNumber = se["number"]
        ds.InstanceNumber = number
        ds.Manufacturer = "LIBDEID SYNTHETIC"
        ds.ManufacturerModelName = "GENERATOR " + se["modality"]
        ds.SoftwareVersions = "1.0"
        ds.PatientSex = p["sex"]
        for level in (p, st, se):
            for tag, (vr, value) in level["values"].items():
                phi.put(ds, tag, vr, 0, value=value)
        for tag, vr in INSTANCE_PHI:
            phi.put(ds, tag, vr, 0)
        other = Dataset()
        for tag, vr, value in p["other_ids"]:
            phi.put(other, tag, vr, 1, value=value)
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = Sequence([other])
        ds.ReferencedStudySequence = Sequence([sop_ref(STUDY_COMPONENT, st["ref_study_uid"])])
        req = Dataset()
        for tag, vr, value in st["request"]:
            phi.put(req, tag, vr, 1, value=value)
        proto = code_item("P1", "99LOCAL", st["protocol_meaning"])
        phi.note(st["protocol_meaning"], "LO", 0x00080104, "in-removed-sequence", 2)
        req.ScheduledProtocolCodeSequence = Sequence([proto])
        ds.RequestAttributesSequence = Sequence([req])
        add_private_blocks(ds, phi, 0)
        return ds

    def image(self, ds, se, rows, cols, frames=1, samples=1, bits=16, signed=True):
        ds.ImageType = (["ORIGINAL", "PRIMARY", "AXIAL"] if se["modality"] in ("CT", "MR")
                        else ["ORIGINAL", "PRIMARY"])
        ds.BodyPartExamined = "HEAD"
        ds.AcquisitionNumber = 1
        if se["modality"] in ("CT", "MR"):
            ds.PatientPosition = "HFS"
        else:
            ds.PatientOrientation = ["L", "F"]
        if se["modality"] in ("CT", "MR"):
            ds.FrameOfReferenceUID = se["for_uid"]
            ds.PositionReferenceIndicator = ""
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = samples
        ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
        if samples == 3:
            ds.PlanarConfiguration = 0
        ds.BitsAllocated = bits
        ds.BitsStored = bits if bits == 8 else 12
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if signed else 0
        if frames > 1:
            ds.NumberOfFrames = frames
        shape = (frames, rows, cols, samples)
        if bits == 8:
            arr = self.np_rng.integers(0, 255, size=shape, dtype=np.uint8)
        else:
            yy, xx = np.mgrid[:rows, :cols]
            disc = ((yy - rows / 2) ** 2 + (xx - cols / 2) ** 2 < (rows / 2.5) ** 2) * 1000
            noise = self.np_rng.integers(-40, 40, size=shape, dtype=np.int16)
            arr = (noise + disc[None, :, :, None] - 1000).astype(np.int16 if signed else np.uint16)
        arr = arr.reshape(shape if samples == 3 else shape[:3])
        if frames == 1:
            arr = arr[0]
        ds.PixelData = arr.tobytes()
        return arr

    def add(self, rel, ds, se, kept, compress=False, arr=None):
        if compress:
            ds.compress(RLELossless, arr)
        if self.stream_to:
            path = os.path.join(self.stream_to, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            ds.save_as(path, write_like_original=False)
            self.files.append((rel, None, None))
            return
        se["instances"].append({"rel": rel, "sop_uid": ds.SOPInstanceUID,
                                "sop_class": ds.SOPClassUID, "series_uid": ds.SeriesInstanceUID,
                                "ds": ds})
        self.files.append((rel, ds, {"series": se, "kept": kept}))

    # -- objects --------------------------------------------------------------------------
    def ct(self, se, n, ts=ExplicitVRLittleEndian, size=64, compress=False, target=None):
        for i in range(1, n + 1):
            rel = f"{se['folder']}/IM{i:04d}.dcm"
            self.phi.file = rel
            ds = self.base(se, CT_IMAGE, i, ts)
            arr = self.image(ds, se, size, size)
            ds.PixelSpacing = ["0.703125", "0.703125"]
            ds.SliceThickness = "5.000000"
            ds.ImagePositionPatient = ["-180.0", "-180.0", f"{12.5 + 5 * i:.1f}"]
            ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
            ds.SliceLocation = f"{12.5 + 5 * i:.1f}"
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
            ds.WindowCenter, ds.WindowWidth = "40", "400"
            ds.KVP = "120"
            self.phi.put(ds, 0x00083010, "UI", 0)   # Irradiation Event UID
            if target:
                nested_reference(ds, self.phi, target, self.refs, rel)
            self.add(rel, ds, se, KEPT_BY_MODALITY["CT"], compress, arr)

    def mr(self, se, n, ts, target=None):
        for i in range(1, n + 1):
            rel = f"{se['folder']}/IM{i:04d}.dcm"
            self.phi.file = rel
            ds = self.base(se, MR_IMAGE, i, ts)
            self.image(ds, se, 64, 64, signed=False)
            ds.PixelSpacing = ["0.9375", "0.9375"]
            ds.SliceThickness = "3"
            ds.ImagePositionPatient = ["-120", "-120", f"{3 * i}"]
            ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
            ds.EchoTime, ds.RepetitionTime, ds.MagneticFieldStrength = "12", "500", "1.5"
            ds.ScanningSequence, ds.SequenceVariant = "SE", "NONE"
            ds.ScanOptions, ds.MRAcquisitionType = "", "2D"
            ds.EchoTrainLength = 1
            add_overlay(ds, self.phi, 64, 64)
            if i > 1:   # Referenced Image Sequence (X/Z/U*): previous slice
                it = sop_ref(MR_IMAGE, se["instances"][-1]["sop_uid"])
                ds.ReferencedImageSequence = Sequence([it])
            if target:
                nested_reference(ds, self.phi, target, self.refs, rel)
            self.add(rel, ds, se, KEPT_BY_MODALITY["MR"])

    def us(self, se, n, frames, rgb, compress):
        for i in range(1, n + 1):
            rel = f"{se['folder']}/IM{i:04d}.dcm"
            self.phi.file = rel
            ds = self.base(se, US_MULTIFRAME, i, ExplicitVRLittleEndian)
            arr = self.image(ds, se, 48, 64, frames=frames, samples=3 if rgb else 1, bits=8,
                             signed=False)
            ds.FrameTime = "33.3"
            ds.FrameIncrementPointer = 0x00181063
            ds.AcquisitionTimeSynchronized = "N"
            ds.SynchronizationTrigger = "NO TRIGGER"
            self.phi.put(ds, 0x00200200, "UI", 0)   # Synchronization Frame of Reference UID
            self.phi.put(ds, 0x00160076, "DS", 0)   # GPS Altitude
            self.phi.put(ds, 0x0016008E, "IS", 0)   # GPS Differential
            self.phi.put(ds, 0x00160071, "CS", 0)   # GPS Latitude Ref
            add_curve(ds, self.phi)
            self.add(rel, ds, se, KEPT_BY_MODALITY["US"], compress, arr)

    def sr(self, se, ts, evidence, name):
        rel = f"{se['folder']}/{name}"
        self.phi.file = rel
        phi = self.phi
        ds = self.base(se, BASIC_TEXT_SR, 1, ts)
        ds.ValueType = "CONTAINER"
        ds.ConceptNameCodeSequence = Sequence([code_item("11528-7", "LN", "Radiology Report")])
        ds.ContinuityOfContent = "SEPARATE"
        ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "VERIFIED"
        obs = Dataset()
        phi.put(obs, 0x0040A075, "PN", 1)   # Verifying Observer Name (D)
        phi.put(obs, 0x0040A027, "LO", 1)   # Verifying Organization (D)
        phi.put(obs, 0x0040A030, "DT", 1)   # Verification DateTime (D)
        obs.VerifyingObserverIdentificationCodeSequence = Sequence([])
        ds.VerifyingObserverSequence = Sequence([obs])
        ds.PerformedProcedureCodeSequence = Sequence([])
        ds.ReferencedPerformedProcedureStepSequence = Sequence([])
        ds.add_new(0x0040A730, "SQ", Sequence(self.content_tree()))
        first = evidence[0]
        sops = [sop_ref(inst["sop_class"], inst["sop_uid"]) for inst in evidence]
        ser = Dataset()
        ser.SeriesInstanceUID = first["series_uid"]
        ser.ReferencedSOPSequence = Sequence(sops)
        stu = Dataset()
        stu.StudyInstanceUID = first["ds"].StudyInstanceUID
        stu.ReferencedSeriesSequence = Sequence([ser])
        ds.CurrentRequestedProcedureEvidenceSequence = Sequence([stu])
        base = ["0040A375", 0]
        self.refs.append(ref(rel, base + ["0020000D"], first["rel"], "0020000D"))
        self.refs.append(ref(rel, base + ["00081115", 0, "0020000E"], first["rel"], "0020000E"))
        for k, inst in enumerate(evidence):
            self.refs.append(ref(rel, base + ["00081115", 0, "00081199", k, "00081155"],
                                 inst["rel"], "00080018"))
        self.add(rel, ds, se, KEPT_BY_MODALITY["SR"])

    def content_tree(self):
        """Content Sequence three levels deep with a marker of each content type."""
        phi = self.phi

        def item(rel, vt, code, meaning):
            it = Dataset()
            it.RelationshipType, it.ValueType = rel, vt
            it.ConceptNameCodeSequence = Sequence([code_item(code, "99TEST", meaning)])
            return it

        def text(depth):
            it = item("CONTAINS", "TEXT", "T1", "Finding")
            phi.put(it, 0x0040A160, "UT", depth, kind="sr-text")
            return it

        lvl3 = [text(3)]
        uidref = item("CONTAINS", "UIDREF", "U1", "Study UID")
        phi.put(uidref, 0x0040A124, "UI", 3)
        lvl3.append(uidref)
        dt = item("CONTAINS", "DATETIME", "D1", "Event")
        phi.put(dt, 0x0040A120, "DT", 3)
        lvl3.append(dt)
        tm = item("CONTAINS", "TIME", "D2", "Event time")
        phi.put(tm, 0x0040A122, "TM", 3)
        lvl3.append(tm)
        pn3 = item("CONTAINS", "PNAME", "P2", "Technologist")
        phi.put(pn3, 0x0040A123, "PN", 3)
        add_private_blocks(pn3, phi, 3, 0x0029, 0x0031)
        lvl3.append(pn3)
        c3 = item("CONTAINS", "CONTAINER", "C3", "Details")
        c3.ContinuityOfContent = "SEPARATE"
        c3.ContentSequence = Sequence(lvl3)
        date = item("CONTAINS", "DATE", "D3", "Exam date")
        phi.put(date, 0x0040A121, "DA", 2)
        lvl2 = [date, text(2), c3]
        c2 = item("CONTAINS", "CONTAINER", "C2", "Findings")
        c2.ContinuityOfContent = "SEPARATE"
        c2.ContentSequence = Sequence(lvl2)
        pn = item("HAS OBS CONTEXT", "PNAME", "P1", "Recording observer")
        phi.put(pn, 0x0040A123, "PN", 1)
        return [pn, text(1), c2]

    def rtstruct(self, se, ct_series, ts):
        rel = f"{se['folder']}/RS0001.dcm"
        self.phi.file = rel
        phi = self.phi
        ds = self.base(se, RT_STRUCT, 1, ts)
        phi.put(ds, 0x30060002, "SH", 0)   # Structure Set Label (D)
        phi.put(ds, 0x30060004, "LO", 0)   # Structure Set Name (X)
        phi.put(ds, 0x30060006, "ST", 0)   # Structure Set Description (X)
        phi.put(ds, 0x30060008, "DA", 0)   # Structure Set Date (Z)
        phi.put(ds, 0x30060009, "TM", 0)   # Structure Set Time (Z)
        cts = ct_series["instances"]
        first = cts[0]
        ds.FrameOfReferenceUID = first["ds"].FrameOfReferenceUID
        ds.PositionReferenceIndicator = ""
        contour_images = [sop_ref(inst["sop_class"], inst["sop_uid"]) for inst in cts]
        rser = Dataset()
        rser.SeriesInstanceUID = first["series_uid"]
        rser.ContourImageSequence = Sequence(contour_images)
        rstu = sop_ref(STUDY_COMPONENT, first["ds"].StudyInstanceUID)
        rstu.RTReferencedSeriesSequence = Sequence([rser])
        rfor = Dataset()
        rfor.FrameOfReferenceUID = first["ds"].FrameOfReferenceUID
        rfor.RTReferencedStudySequence = Sequence([rstu])
        ds.ReferencedFrameOfReferenceSequence = Sequence([rfor])
        roi = Dataset()
        roi.ROINumber = 1
        roi.ReferencedFrameOfReferenceUID = first["ds"].FrameOfReferenceUID
        phi.put(roi, 0x30060026, "LO", 1)   # ROI Name (Z)
        phi.put(roi, 0x30060028, "ST", 1)   # ROI Description (X)
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence = Sequence([roi])
        contours = []
        for k, inst in enumerate(cts[:3]):
            img = sop_ref(inst["sop_class"], inst["sop_uid"])
            c = Dataset()
            c.ContourImageSequence = Sequence([img])
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = 3
            z = inst["ds"].ImagePositionPatient[2]
            c.ContourData = ["0", "0", str(z), "10", "0", str(z), "0", "10", str(z)]
            contours.append(c)
            self.refs.append(ref(rel, ["30060039", 0, "30060040", k, "30060016", 0, "00081155"],
                                 inst["rel"], "00080018"))
        rc = Dataset()
        rc.ReferencedROINumber = 1
        rc.ROIDisplayColor = [255, 0, 0]
        rc.ContourSequence = Sequence(contours)
        ds.ROIContourSequence = Sequence([rc])
        obs = Dataset()
        obs.ObservationNumber = 1
        obs.ReferencedROINumber = 1
        obs.RTROIInterpretedType = "ORGAN"
        phi.put(obs, 0x300600A6, "PN", 1)   # ROI Interpreter (Z)
        phi.put(obs, 0x30060085, "SH", 1)   # ROI Observation Label (X)
        ds.RTROIObservationsSequence = Sequence([obs])
        b = ["30060010", 0]
        self.refs += [
            ref(rel, ["0020000D"], first["rel"], "0020000D"),
            ref(rel, ["00200052"], first["rel"], "00200052"),
            ref(rel, b + ["00200052"], first["rel"], "00200052"),
            ref(rel, b + ["30060012", 0, "00081155"], first["rel"], "0020000D"),
            ref(rel, b + ["30060012", 0, "30060014", 0, "0020000E"], first["rel"], "0020000E"),
            ref(rel, ["30060020", 0, "30060024"], first["rel"], "00200052"),
        ]
        for k, inst in enumerate(cts):
            self.refs.append(ref(rel, b + ["30060012", 0, "30060014", 0, "30060016", k,
                                           "00081155"], inst["rel"], "00080018"))
        self.add(rel, ds, se, KEPT_BY_MODALITY["RTSTRUCT"])


def first_instance(series):
    i = series["instances"][0]
    return {"rel": i["rel"], "sop_uid": i["sop_uid"], "sop_class": i["sop_class"],
            "series_uid": i["series_uid"]}


def build(seed):
    """The 30-file corpus; returns the Corpus with datasets not yet written."""
    c = Corpus(seed)
    p1 = c.patient("P1", "F")
    s1 = c.study(p1)
    ct1 = c.series(s1, "CT", 1, "p1/study1/ct")
    c.ct(ct1, 8)
    rt1 = c.series(s1, "RTSTRUCT", 2, "p1/study1/rtstruct")
    c.rtstruct(rt1, ct1, ImplicitVRLittleEndian)
    s2 = c.study(p1)
    mr1 = c.series(s2, "MR", 1, "p1/study2/mr")
    c.mr(mr1, 5, ImplicitVRLittleEndian, target=first_instance(ct1))
    sr1 = c.series(s2, "SR", 2, "p1/study2/sr")
    c.sr(sr1, ExplicitVRLittleEndian, mr1["instances"], "IM0001")   # no extension, as on PACS

    p2 = c.patient("P2", "M")
    s3 = c.study(p2)
    us2 = c.series(s3, "US", 1, "p2/study1/us")
    c.us(us2, 2, frames=3, rgb=True, compress=True)
    ct2 = c.series(s3, "CT", 2, "p2/study1/ct")
    c.ct(ct2, 4, ts=ImplicitVRLittleEndian, target=first_instance(us2))

    p3 = c.patient("P3", "O", charset="ISO_IR 192")
    s4 = c.study(p3)
    ct3 = c.series(s4, "CT", 1, "p3/study1/ct_rle")
    c.ct(ct3, 3, compress=True)
    mr3 = c.series(s4, "MR", 2, "p3/study1/mr")
    c.mr(mr3, 4, ExplicitVRLittleEndian, target=first_instance(ct3))
    us3 = c.series(s4, "US", 3, "p3/study1/us")
    c.us(us3, 1, frames=4, rgb=False, compress=False)
    sr3 = c.series(s4, "SR", 4, "p3/study1/sr")
    c.sr(sr3, ImplicitVRLittleEndian, mr3["instances"][:2], "SR0001.dcm")
    return c


def build_ct_series(seed, slices=3, size=64, folder="patient1/ct", stream_to=None):
    """One patient's CT series: the README sample (3 slices 64x64, a few KB each) and, with
    stream_to, the benchmark corpus (make_ct_corpus.py)."""
    c = Corpus(seed, stream_to=stream_to)
    p = c.patient("P1", "F")
    s = c.study(p)
    ct = c.series(s, "CT", 1, folder)
    c.ct(ct, slices, size=size)
    return c


# ---- writing and the manifest --------------------------------------------------------------

def raw_elements(path):
    """Top-level elements of a Part 10 file as written: {tag: raw value bytes} (sequences are
    left out). Independent of pydicom's value conversion, so the bytes are exactly the file's."""
    from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble
    out = {}
    with open(path, "rb") as fp:
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
        implicit = meta.TransferSyntaxUID == ImplicitVRLittleEndian
        for elem in data_element_generator(fp, implicit, True, defer_size=None):
            if elem.VR != "SQ" and isinstance(elem.value, bytes):
                out[int(elem.tag)] = elem.value
    return out


def write(c, out, manifest_path):
    files = {}
    for rel, ds, info in c.files:
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ds.save_as(path, write_like_original=False)
    phi_values = sorted(c.phi.entries.values(), key=lambda e: e["value"])
    numeric = [e["value"] for e in phi_values if TEXT_MARKER not in e["value"]]
    for rel, ds, info in c.files:
        back = pydicom.dcmread(os.path.join(out, rel))
        raw = raw_elements(os.path.join(out, rel))
        se = info["series"]
        p = se["study"]["patient"]
        kept = {}
        for kw in info["kept"]:
            tag = pydicom.datadict.tag_for_keyword(kw)
            if tag in raw:
                kept[f"{tag:08X}"] = raw[tag].hex()
        # The checks below rely on markers appearing only where they were put.
        pix = raw.get(0x7FE00010, b"")
        for v in numeric + [TEXT_MARKER]:
            if v.encode() in pix:
                raise RuntimeError(f"{rel}: marker {v} occurs by chance in pixel data")
            for kv in kept.values():
                if v.encode() in bytes.fromhex(kv):
                    raise RuntimeError(f"{rel}: marker {v} occurs in a kept value")
        dates = {}
        for tag in (0x00080020, 0x00080021, 0x00080022, 0x00080023, 0x00080012, 0x00400244,
                    0x0008002A, 0x00100030):
            if tag in back:
                dates[f"{tag:08X}"] = str(back[tag].value)
        files[rel] = {
            "patient": p["key"],
            "modality": back.Modality,
            "sop_class_uid": back.SOPClassUID,
            "sop_instance_uid": back.SOPInstanceUID,
            "study_instance_uid": back.StudyInstanceUID,
            "series_instance_uid": back.SeriesInstanceUID,
            "instance_number": int(back.InstanceNumber),
            "transfer_syntax": str(back.file_meta.TransferSyntaxUID),
            "encapsulated": back.file_meta.TransferSyntaxUID.is_compressed,
            "kept": kept,
            "dates": dates,
        }
    patients = {}
    for key, p in c.patients.items():
        v = p["values"]
        patients[key] = {
            "patient_id": v[0x00100020][1], "patient_name": v[0x00100010][1],
            "birth_date": v[0x00100030][1], "sex": p["sex"], "age": v[0x00101010][1],
            "weight": v[0x00101030][1], "size": v[0x00101020][1], "charset": p["charset"],
        }
    manifest = {
        "generator": "tests/generators/make_phi_corpus.py",
        "pydicom": pydicom.__version__,
        "uid_root": UID_ROOT,
        "text_marker": TEXT_MARKER,
        "phi": [{"value": e["value"], "vr": e["vr"], "kind": e["kind"],
                 "tags": sorted(e["tags"]), "files": sorted(e["files"]),
                 "depths": sorted(e["depths"])} for e in phi_values],
        "uids": sorted(set(c.phi.uids)),
        "patients": patients,
        "files": files,
        "references": c.refs,
    }
    if manifest_path:
        with open(manifest_path, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="corpus directory (created)")
    ap.add_argument("--manifest", help="manifest JSON path (keep it outside --out)")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--sample", action="store_true", help="3 small CT files for demos")
    a = ap.parse_args(argv)
    c = build_ct_series(a.seed) if a.sample else build(a.seed)
    m = write(c, a.out, a.manifest)
    print(f"{len(m['files'])} files, {len(m['phi'])} PHI values, {len(m['uids'])} UIDs "
          f"-> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
