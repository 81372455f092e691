"""ctypes declarations of libdeid's public C API (include/deid/*.h).

Only this module knows about ctypes; the rest of the package uses :data:`lib` and the
structures below. Struct layouts mirror the C headers field for field: keep them in step
when a ``*_OPTIONS_VERSION`` changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import List, Optional

c_size_p = ctypes.POINTER(ctypes.c_size_t)


class ReadOptions(ctypes.Structure):
    """``deid_read_options`` (version 1)."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("max_file_bytes", ctypes.c_uint64),
        ("max_depth", ctypes.c_uint),
        ("max_elements", ctypes.c_uint64),
    ]


class ProfileOptions(ctypes.Structure):
    """``deid_profile_options`` (version 1)."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("recipe_path", ctypes.c_char_p),
        ("max_date_shift_days", ctypes.c_uint),
        ("patient_name_prefix", ctypes.c_char_p),
    ]


class Progress(ctypes.Structure):
    """``deid_progress``."""

    _fields_ = [
        ("total", ctypes.c_size_t),
        ("done", ctypes.c_size_t),
        ("ok", ctypes.c_size_t),
        ("skipped", ctypes.c_size_t),
        ("failed", ctypes.c_size_t),
        ("elapsed_s", ctypes.c_double),
    ]


PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(Progress))
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p)


class EncodeOptions(ctypes.Structure):
    """``deid_encode_options`` (version 1)."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("codec", ctypes.c_int),
        ("quality", ctypes.c_int),
        ("chroma", ctypes.c_int),
    ]


class UsOptions(ctypes.Structure):
    """``deid_us_options`` (version 1)."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("detector", ctypes.c_int),
        ("model_path", ctypes.c_char_p),
        ("device", ctypes.c_char_p),
        ("erosion_px", ctypes.c_double),
        ("min_confidence", ctypes.c_double),
        ("fallback", ctypes.c_int),
        ("encode", EncodeOptions),
        ("overview_dir", ctypes.c_char_p),
        ("mask_json", ctypes.c_int),
        ("model", ctypes.c_void_p),
        ("max_samples", ctypes.c_uint64),
    ]


class BatchOptions(ctypes.Structure):
    """``deid_batch_options`` (version 1)."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("input", ctypes.c_char_p),
        ("output_dir", ctypes.c_char_p),
        ("headers_dir", ctypes.c_char_p),
        ("workers", ctypes.c_uint),
        ("flat", ctypes.c_int),
        ("resume", ctypes.c_int),
        ("filename_prefix", ctypes.c_char_p),
        ("modalities", ctypes.c_char_p),
        ("sop_classes", ctypes.c_char_p),
        ("skip_single_frame", ctypes.c_int),
        ("write_json", ctypes.c_int),
        ("log_path", ctypes.c_char_p),
        ("log", LOG_FN),
        ("log_user", ctypes.c_void_p),
        ("progress", PROGRESS_FN),
        ("progress_user", ctypes.c_void_p),
        ("read", ReadOptions),
        ("durable", ctypes.c_int),
        ("us", ctypes.POINTER(UsOptions)),
        ("text", ctypes.c_void_p),  # const deid_text_options * (not exposed yet)
        ("text_phi", ctypes.c_void_p),  # const deid_text_phi *
        ("ct", ctypes.c_void_p),  # const deid_ct_options * (not exposed yet)
    ]


class BatchSummary(ctypes.Structure):
    """``deid_batch_summary``."""

    _fields_ = [
        ("found", ctypes.c_size_t),
        ("ok", ctypes.c_size_t),
        ("skipped", ctypes.c_size_t),
        ("failed", ctypes.c_size_t),
        ("seconds_scan", ctypes.c_double),
        ("seconds_read", ctypes.c_double),
        ("seconds_deid", ctypes.c_double),
        ("seconds_write", ctypes.c_double),
        ("seconds_total", ctypes.c_double),
        ("bytes_in", ctypes.c_uint64),
        ("bytes_out", ctypes.c_uint64),
        ("seconds_decode", ctypes.c_double),
        ("seconds_detect", ctypes.c_double),
        ("seconds_mask", ctypes.c_double),
        ("seconds_encode", ctypes.c_double),
        ("us_low_confidence", ctypes.c_size_t),
        ("us_fallback", ctypes.c_size_t),
        ("text_files", ctypes.c_size_t),
        ("text_found", ctypes.c_size_t),
        ("text_merged", ctypes.c_size_t),
        ("text_redacted", ctypes.c_size_t),
        ("text_review", ctypes.c_size_t),
        ("text_kept", ctypes.c_size_t),
        ("text_residual_failed", ctypes.c_size_t),
        ("seconds_ocr", ctypes.c_double),
        ("ct_series", ctypes.c_size_t),
        ("ct_failed", ctypes.c_size_t),
        ("ct_altered", ctypes.c_uint64),
        ("seconds_deface", ctypes.c_double),
    ]


class VolumeGeometry(ctypes.Structure):
    """``deid_volume_geometry``."""

    _fields_ = [
        ("dims", ctypes.c_size_t * 3),
        ("spacing", ctypes.c_double * 3),
        ("origin", ctypes.c_double * 3),
        ("direction", ctypes.c_double * 9),
    ]


class DefaceOptions(ctypes.Structure):
    """``deid_deface_options`` (version 1)."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("method", ctypes.c_int),
        ("replacer", ctypes.c_int),
        ("value", ctypes.c_double),
        ("body_threshold", ctypes.c_double),
        ("shell_mm", ctypes.c_double),
        ("ears", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("threads", ctypes.c_uint),
        ("model_path", ctypes.c_char_p),
        ("device", ctypes.c_char_p),
    ]


class DefaceReport(ctypes.Structure):
    """``deid_deface_report``."""

    _fields_ = [
        ("altered", ctypes.c_size_t),
        ("face_found", ctypes.c_int),
        ("anterior_axis", ctypes.c_int),
        ("anterior_sign", ctypes.c_int),
        ("superior_axis", ctypes.c_int),
        ("superior_sign", ctypes.c_int),
        ("body_threshold", ctypes.c_double),
        ("bone_threshold", ctypes.c_double),
        ("seconds", ctypes.c_double),
        ("message", ctypes.c_char * 256),
    ]


PROFILE_OPTIONS_VERSION = 1
DEFACE_OPTIONS_VERSION = 1
BATCH_OPTIONS_VERSION = 1
READ_OPTIONS_VERSION = 1
US_OPTIONS_VERSION = 1

_vp = ctypes.c_void_p
_st = ctypes.c_int  # deid_status
_str = ctypes.c_char_p

# name: (restype, argtypes)
_PROTOTYPES = {
    "deid_version": (_str, []),
    "deid_version_number": (ctypes.c_uint, []),
    "deid_features": (_str, []),
    "deid_free": (None, [_vp]),
    "deid_strerror": (_str, [_st]),
    "deid_last_error": (_str, []),
    "deid_last_error_code": (_st, []),
    "deid_clear_error": (None, []),
    "deid_key_bytes": (ctypes.c_size_t, []),
    "deid_key_load_file": (_st, [_str, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                 ctypes.POINTER(_vp)]),
    "deid_key_generate": (_st, [ctypes.POINTER(_vp)]),
    "deid_key_from_bytes": (_st, [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_vp)]),
    "deid_key_save_file": (_st, [_vp, _str]),
    "deid_key_free": (None, [_vp]),
    "deid_option_count": (ctypes.c_size_t, []),
    "deid_option_name": (_str, [ctypes.c_size_t]),
    "deid_option_description": (_str, [ctypes.c_size_t]),
    "deid_option_flag": (ctypes.c_uint, [ctypes.c_size_t]),
    "deid_option_parse": (_st, [_str, ctypes.POINTER(ctypes.c_uint)]),
    "deid_profile_options_init": (_st, [ctypes.POINTER(ProfileOptions), ctypes.c_uint]),
    "deid_profile_new": (_st, [ctypes.POINTER(ProfileOptions), _vp, ctypes.POINTER(_vp)]),
    "deid_profile_free": (None, [_vp]),
    "deid_profile_patient_pseudonym": (_st, [_vp, _str, ctypes.c_char_p]),
    "deid_profile_uid": (_st, [_vp, _str, ctypes.c_char_p]),
    "deid_profile_date_shift": (_st, [_vp, _str, ctypes.POINTER(ctypes.c_int)]),
    "deid_deidentify_memory": (_st, [_vp, ctypes.c_char_p, ctypes.c_size_t,
                                     ctypes.POINTER(_vp), c_size_p]),
    "deid_batch_options_init": (_st, [ctypes.POINTER(BatchOptions), ctypes.c_uint]),
    "deid_batch_new": (_st, [ctypes.POINTER(BatchOptions), _vp, ctypes.POINTER(_vp)]),
    "deid_batch_run": (_st, [_vp, ctypes.POINTER(BatchSummary)]),
    "deid_batch_free": (None, [_vp]),
    "deid_volume_new": (_st, [ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(_vp)]),
    "deid_volume_free": (None, [_vp]),
    "deid_volume_copy": (_st, [_vp, ctypes.POINTER(_vp)]),
    "deid_volume_get_geometry": (None, [_vp, ctypes.POINTER(VolumeGeometry)]),
    "deid_volume_set_geometry": (_st, [_vp, ctypes.POINTER(VolumeGeometry)]),
    "deid_volume_voxels": (ctypes.POINTER(ctypes.c_int32), [_vp]),
    "deid_volume_count": (ctypes.c_size_t, [_vp]),
    "deid_volume_get_rescale": (None, [_vp, ctypes.POINTER(ctypes.c_double),
                                       ctypes.POINTER(ctypes.c_double)]),
    "deid_volume_set_rescale": (_st, [_vp, ctypes.c_double, ctypes.c_double, ctypes.c_int]),
    "deid_volume_is_hounsfield": (ctypes.c_int, [_vp]),
    "deid_volume_write_nifti": (_st, [_vp, _str]),
    "deid_volume_write_nrrd": (_st, [_vp, _str, ctypes.c_int]),
    "deid_deface_options_init": (_st, [ctypes.POINTER(DefaceOptions), ctypes.c_uint]),
    "deid_volume_deface": (_st, [_vp, ctypes.POINTER(DefaceOptions), ctypes.c_void_p,
                                 ctypes.POINTER(DefaceReport)]),
    "deid_volume_render_qc": (_st, [_vp, _vp, _str]),
}


def _candidates() -> List[str]:
    """Where to look for the shared library, most specific first."""
    found: List[str] = []
    env = os.environ.get("DEID_LIBRARY")
    if env:
        return [env]  # an explicit choice is never second-guessed
    here = Path(__file__).resolve().parent
    # Source checkout: bindings/python/deid -> <repo>/build/libdeid/libdeid.so
    found.append(str(here.parents[2] / "build" / "libdeid" / "libdeid.so"))
    # Installed by CMake next to the library: _install.py records the relative path.
    try:
        from . import _install  # type: ignore[attr-defined]

        found.append(str((here / _install.LIBRARY).resolve()))
    except ImportError:
        pass
    system = ctypes.util.find_library("deid")
    if system:
        found.append(system)
    found.append("libdeid.so.0")
    return found


def _load() -> ctypes.CDLL:
    # Tesseract (linked into libdeid) runs OpenMP threads inside every recognition; idle ones
    # spin, and a text run took 10x the time with them on 2 cores. OpenMP reads its limit
    # when it is loaded, i.e. with libdeid: set it first unless the user (or a library loaded
    # earlier) already did.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append(f"{path}: not found")
            continue
        try:
            handle = ctypes.CDLL(path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(handle, name)
            except AttributeError:  # an older library: calling it raises AttributeError
                continue
            fn.restype = restype
            fn.argtypes = argtypes
        handle.deid_path = path  # type: ignore[attr-defined]
        return handle
    raise OSError("libdeid shared library not found (set DEID_LIBRARY to its path); tried:\n  "
                  + "\n  ".join(errors))


_handle: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded libdeid (loaded on first use, so ``import deid`` never fails)."""
    global _handle
    if _handle is None:
        _handle = _load()
    return _handle
