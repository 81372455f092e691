#!/usr/bin/python3
"""Time deid_volume_from_series on a synthetic series (default 300 slices of 512 x 512, signed
16-bit, uncompressed) against decoding the same slices alone with deid_image_decode: the
difference is what ordering, geometry and copying into the volume cost.

    DEID_LIBRARY=build/libdeid/libdeid.so /usr/bin/python3 tests/bench/ct/volume_from_series.py [slices]

Prints the figures and the ratio; never part of pass/fail.
"""
import ctypes
import os
import random
import sys
import tempfile
import time

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def make_series(folder, n, size=512):
    series = generate_uid()
    rng = np.random.default_rng(1)
    base = rng.integers(-1024, 2000, size=(size, size), dtype=np.int16)
    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = os.path.join(folder, "s%04d.dcm" % k)
        ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-125.0, -125.0, 0.625 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.488, 0.488]
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.roll(base, k, axis=0).tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)
        paths.append(path)
    random.Random(2).shuffle(paths)
    return paths


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    lib = ctypes.CDLL(os.environ.get("DEID_LIBRARY", "build/libdeid/libdeid.so"))
    vp, pp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    lib.deid_dataset_read_file.argtypes = [ctypes.c_char_p, vp, pp]
    lib.deid_series_new.argtypes = [pp]
    lib.deid_series_add.argtypes = [vp, vp, ctypes.c_char_p]
    lib.deid_series_sort.argtypes = [vp, vp]
    lib.deid_series_dataset.argtypes = [vp, ctypes.c_size_t]
    lib.deid_series_dataset.restype = vp
    lib.deid_volume_from_series.argtypes = [vp, pp]
    lib.deid_volume_free.argtypes = [vp]
    lib.deid_series_free.argtypes = [vp]
    lib.deid_image_decode.argtypes = [vp, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint64, pp]
    lib.deid_image_free.argtypes = [vp]
    with tempfile.TemporaryDirectory() as folder:
        paths = make_series(folder, n)
        series = vp()
        assert lib.deid_series_new(ctypes.byref(series)) == 0
        for p in paths:
            ds = vp()
            assert lib.deid_dataset_read_file(p.encode(), None, ctypes.byref(ds)) == 0
            assert lib.deid_series_add(series, ds, None) == 0
        t0 = time.perf_counter()
        assert lib.deid_series_sort(series, None) == 0
        t_sort = time.perf_counter() - t0
        best_decode = best_volume = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for k in range(n):
                img = vp()
                assert lib.deid_image_decode(lib.deid_series_dataset(series, k), 0, 1, 0,
                                             ctypes.byref(img)) == 0
                lib.deid_image_free(img)
            best_decode = min(best_decode, time.perf_counter() - t0)
            t0 = time.perf_counter()
            vol = vp()
            assert lib.deid_volume_from_series(series, ctypes.byref(vol)) == 0
            best_volume = min(best_volume, time.perf_counter() - t0)
            lib.deid_volume_free(vol)
        lib.deid_series_free(series)
    print("%d slices of 512 x 512: sort %.3f s, decode alone %.3f s, volume_from_series %.3f s"
          % (n, t_sort, best_decode, best_volume))
    print("beyond decoding: %.3f s (volume / decode ratio %.2f)"
          % (best_volume - best_decode, best_volume / best_decode))


if __name__ == "__main__":
    main()
