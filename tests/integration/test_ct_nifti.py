"""NIfTI export of real CT against dcm2niix: libdeid's deid_volume_write_nifti (called through
ctypes on the shared library) and dcm2niix convert ../shared/data/ct/head_ct_5mm (a series) and
the enhanced CT object; the affines (sform and qform) agree within 1e-3, and the voxels,
dimensions, spacing and rescale are equal. Skipped when dcm2niix (Debian package dcm2niix), the library or the data are absent.

Run by hand:  DEID_LIBRARY=build/libdeid/libdeid.so /usr/bin/python3 -m pytest -q \
              tests/integration/test_ct_nifti.py
"""
import ctypes
import glob
import gzip
import os
import shutil
import struct
import subprocess

import pytest

from deidtest import require_shared_data, workdir

TOL = 1e-3


def library():
    path = os.environ.get("DEID_LIBRARY")
    if not path or not os.path.isfile(path):
        pytest.skip("libdeid shared library not found (set DEID_LIBRARY)")
    lib = ctypes.CDLL(path)
    vp, pp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    lib.deid_dataset_read_file.argtypes = [ctypes.c_char_p, vp, pp]
    lib.deid_series_new.argtypes = [pp]
    lib.deid_series_add.argtypes = [vp, vp, ctypes.c_char_p]
    lib.deid_series_sort.argtypes = [vp, vp]
    lib.deid_volume_from_series.argtypes = [vp, pp]
    lib.deid_volume_from_dataset.argtypes = [vp, pp]
    lib.deid_dataset_free.argtypes = [vp]
    lib.deid_volume_write_nifti.argtypes = [vp, ctypes.c_char_p]
    lib.deid_volume_free.argtypes = [vp]
    lib.deid_series_free.argtypes = [vp]
    lib.deid_last_error.restype = ctypes.c_char_p
    return lib


def check(lib, status, what):
    assert status == 0, "%s: status %d: %s" % (what, status, lib.deid_last_error().decode())


def write_ours(lib, files, paths):
    series = ctypes.c_void_p()
    check(lib, lib.deid_series_new(ctypes.byref(series)), "deid_series_new")
    try:
        for f in files:
            ds = ctypes.c_void_p()
            check(lib, lib.deid_dataset_read_file(f.encode(), None, ctypes.byref(ds)), f)
            check(lib, lib.deid_series_add(series, ds, os.path.basename(f).encode()), f)
        check(lib, lib.deid_series_sort(series, None), "deid_series_sort")
        vol = ctypes.c_void_p()
        check(lib, lib.deid_volume_from_series(series, ctypes.byref(vol)), "volume")
        try:
            for p in paths:
                check(lib, lib.deid_volume_write_nifti(vol, p.encode()), p)
        finally:
            lib.deid_volume_free(vol)
    finally:
        lib.deid_series_free(series)


def nifti(data):
    """The fields compared, from a NIfTI-1 single file (little endian)."""
    assert struct.unpack("<i", data[:4])[0] == 348 and data[344:347] == b"n+1"
    dim = struct.unpack("<8h", data[40:56])
    datatype, bitpix = struct.unpack("<2h", data[70:74])
    pixdim = struct.unpack("<8f", data[76:108])
    vox_offset, slope, inter = struct.unpack("<3f", data[108:120])
    qform, sform = struct.unpack("<2h", data[252:256])
    quat = struct.unpack("<6f", data[256:280])
    srow = [struct.unpack("<4f", data[280 + 16 * r:296 + 16 * r]) for r in range(3)]
    n = dim[1] * dim[2] * dim[3]
    assert datatype in (4, 512), "int16 or uint16 expected for CT"
    code = "h" if datatype == 4 else "H"
    voxels = struct.unpack("<%d%s" % (n, code), data[int(vox_offset):int(vox_offset) + 2 * n])
    return dict(dim=dim[:4], pixdim=pixdim, slope=slope, inter=inter, qform=qform, sform=sform,
                quat=quat, srow=srow, voxels=voxels)


def qform_matrix(h):
    """The qform affine (NIfTI-1 method 2)."""
    b, c, d, qx, qy, qz = h["quat"]
    a = max(0.0, 1.0 - (b * b + c * c + d * d)) ** 0.5
    r = [[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
         [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
         [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]]
    qfac = -1.0 if h["pixdim"][0] < 0 else 1.0
    s = [h["pixdim"][1], h["pixdim"][2], h["pixdim"][3] * qfac]
    return [[r[i][j] * s[j] for j in range(3)] + [(qx, qy, qz)[i]] for i in range(3)]


def max_diff(a, b):
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def test_affine_and_voxels_match_dcm2niix():
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix is not installed (Debian package dcm2niix): cannot compare")
    series_dir = os.path.join(require_shared_data(), "ct", "head_ct_5mm")
    files = sorted(glob.glob(os.path.join(series_dir, "*.dcm")))
    if not files:
        pytest.skip("../shared/data/ct/head_ct_5mm is absent")
    lib = library()
    work = workdir("ct_nifti")
    ours_nii, ours_gz = os.path.join(work, "ours.nii"), os.path.join(work, "ours.nii.gz")
    write_ours(lib, files, [ours_nii, ours_gz])
    run = subprocess.run([exe, "-z", "n", "-b", "n", "-f", "ref", "-o", work, series_dir],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert run.returncode == 0, run.stdout.decode(errors="replace")
    refs = glob.glob(os.path.join(work, "ref*.nii"))
    assert len(refs) == 1, "dcm2niix wrote %s" % refs

    with open(ours_nii, "rb") as f:
        raw = f.read()
    with gzip.open(ours_gz, "rb") as f:
        assert f.read() == raw, ".nii.gz holds other bytes than .nii"
    ours = nifti(raw)
    with open(refs[0], "rb") as f:
        ref = nifti(f.read())

    sform_diff = max_diff(ours["srow"], ref["srow"])
    qform_diff = max_diff(qform_matrix(ours), qform_matrix(ref))
    print("head_ct_5mm: |sform - dcm2niix| = %.2g, |qform - dcm2niix| = %.2g"
          % (sform_diff, qform_diff))
    assert ours["dim"] == ref["dim"] == (3, 512, 512, 34)
    assert sform_diff < TOL, (ours["srow"], ref["srow"])
    assert qform_diff < TOL
    assert ours["qform"] == ours["sform"] == 1
    assert all(abs(x - y) < TOL for x, y in zip(ours["pixdim"][1:4], ref["pixdim"][1:4]))
    assert (ours["slope"], ours["inter"]) == (ref["slope"], ref["inter"]) == (1.0, -1024.0)
    differing = sum(1 for x, y in zip(ours["voxels"], ref["voxels"]) if x != y)
    assert differing == 0, "%d voxels differ from dcm2niix's" % differing


def test_enhanced_ct_matches_dcm2niix():
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix is not installed (Debian package dcm2niix): cannot compare")
    src = os.path.join(require_shared_data(), "ct", "pydicom-data_eCT_Supplemental_enhancedCT.dcm")
    if not os.path.isfile(src):
        pytest.skip("the enhanced CT object of ../shared/data/ct is absent")
    lib = library()
    work = workdir("ct_nifti_enhanced")
    shutil.copy(src, os.path.join(work, "in.dcm"))
    ds, vol = ctypes.c_void_p(), ctypes.c_void_p()
    check(lib, lib.deid_dataset_read_file(src.encode(), None, ctypes.byref(ds)), src)
    try:
        check(lib, lib.deid_volume_from_dataset(ds, ctypes.byref(vol)), "volume")
        ours_path = os.path.join(work, "ours.nii")
        check(lib, lib.deid_volume_write_nifti(vol, ours_path.encode()), ours_path)
    finally:
        lib.deid_volume_free(vol)
        lib.deid_dataset_free(ds)
    run = subprocess.run([exe, "-z", "n", "-b", "n", "-f", "ref", "-o", work,
                          os.path.join(work, "in.dcm")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert run.returncode == 0, run.stdout.decode(errors="replace")
    refs = glob.glob(os.path.join(work, "ref*.nii"))
    assert len(refs) == 1, "dcm2niix wrote %s" % refs
    with open(ours_path, "rb") as f:
        ours = nifti(f.read())
    with open(refs[0], "rb") as f:
        ref = nifti(f.read())
    sform_diff = max_diff(ours["srow"], ref["srow"])
    print("enhanced CT: |sform - dcm2niix| = %.2g" % sform_diff)
    assert ours["dim"] == ref["dim"] == (3, 512, 512, 2)
    assert sform_diff < TOL, (ours["srow"], ref["srow"])
    assert max_diff(qform_matrix(ours), qform_matrix(ref)) < TOL
    assert ours["voxels"] == ref["voxels"]
