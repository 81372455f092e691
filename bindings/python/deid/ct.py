"""CT and CBCT volumes for Python: numpy in and out, face removal, NIfTI/NRRD export, QC render.

A :class:`Volume` holds the library's ``deid_volume`` (include/deid/ct.h); its voxels are a
numpy view of the C buffer (no copy), shaped ``(slices, rows, columns)``, i.e. ``[k, j, i]``::

    import numpy as np
    from deid.ct import Volume
    vol = Volume.from_numpy(hu.astype(np.int32), spacing=(0.5, 0.5, 1.0), hounsfield=True)
    report = vol.deface()                 # the face method; vol.deface("drown") for drown
    vol.write_nifti("case.nii.gz")
    clean = vol.array                     # the defaced voxels, same shape

Geometry follows DICOM's patient coordinates (LPS, mm); see :class:`Geometry`.
"""
from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple, Union

from . import _lib
from ._api import DeidError, _check, _Handle

PathLike = Union[str, "os.PathLike[str]"]

METHODS = {"face": 0, "drown": 1, "model": 2}
REPLACERS = {"tissue": 0, "air": 1, "value": 2}


@dataclass
class Geometry:
    """Where the volume lies: voxel ``[k, j, i]`` is centred at
    ``origin + i*spacing[0]*direction[0] + j*spacing[1]*direction[1] + k*spacing[2]*direction[2]``
    (LPS millimetres). ``spacing`` is (columns, rows, slices); ``direction`` holds the unit
    vectors of i (along a row), j (down a column) and k (slice to slice)."""

    spacing: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: Tuple[Tuple[float, float, float], ...] = (
        (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass
class DefaceReport:
    """What :meth:`Volume.deface` did (``deid_deface_report``)."""

    altered: int
    face_found: bool
    anterior: Tuple[int, int]   # (volume axis 0=i 1=j 2=k, sign)
    superior: Tuple[int, int]
    body_threshold: float
    bone_threshold: float
    seconds: float
    message: str
    mask: Optional["object"] = field(default=None, repr=False)  # numpy uint8 [k, j, i]


class Volume(_Handle):
    """A 3-D image held by libdeid (int32 stored values, rescale, geometry)."""

    _free_function = "deid_volume_free"

    def __init__(self, _handle: int) -> None:
        self._handle = _handle

    @classmethod
    def from_numpy(cls, voxels: "object", geometry: Optional[Geometry] = None, *,
                   spacing: Optional[Sequence[float]] = None, slope: float = 1.0,
                   intercept: float = 0.0, hounsfield: bool = False) -> "Volume":
        """A new volume holding a copy of ``voxels`` (any integer array shaped
        ``(slices, rows, columns)``; stored values). ``spacing`` (columns, rows, slices)
        overrides ``geometry.spacing``. Values are ``stored * slope + intercept``;
        ``hounsfield`` says they are calibrated HU (CT), otherwise thresholds come from the
        histogram (CBCT)."""
        import numpy as np

        a = np.asarray(voxels)
        if a.ndim != 3:
            raise ValueError("voxels must be a 3-D array (slices, rows, columns)")
        dims = (ctypes.c_size_t * 3)(a.shape[2], a.shape[1], a.shape[0])
        h = ctypes.c_void_p()
        _check(_lib.lib().deid_volume_new(dims, ctypes.byref(h)))
        vol = cls(h.value)
        vol.array[...] = a
        g = geometry or Geometry()
        if spacing is not None:
            g = Geometry(tuple(spacing), g.origin, g.direction)  # type: ignore[arg-type]
        vol.geometry = g
        _check(_lib.lib().deid_volume_set_rescale(vol._ptr(), float(slope), float(intercept),
                                                  1 if hounsfield else 0))
        return vol

    @property
    def array(self) -> "object":
        """The voxels as a writable numpy int32 view ``[k, j, i]`` of the C buffer (valid
        while the volume is open)."""
        import numpy as np

        lib = _lib.lib()
        g = _lib.VolumeGeometry()
        lib.deid_volume_get_geometry(self._ptr(), ctypes.byref(g))
        ptr = lib.deid_volume_voxels(self._ptr())
        n = lib.deid_volume_count(self._ptr())
        buf = (ctypes.c_int32 * n).from_address(ctypes.addressof(ptr.contents))
        buf._owner = self  # type: ignore[attr-defined]  # the view keeps the volume alive
        return np.frombuffer(buf, np.int32).reshape(g.dims[2], g.dims[1], g.dims[0])

    @property
    def geometry(self) -> Geometry:
        g = _lib.VolumeGeometry()
        _lib.lib().deid_volume_get_geometry(self._ptr(), ctypes.byref(g))
        d = list(g.direction)
        return Geometry(tuple(g.spacing), tuple(g.origin),  # type: ignore[arg-type]
                        (tuple(d[0:3]), tuple(d[3:6]), tuple(d[6:9])))  # type: ignore

    @geometry.setter
    def geometry(self, geom: Geometry) -> None:
        g = _lib.VolumeGeometry()
        _lib.lib().deid_volume_get_geometry(self._ptr(), ctypes.byref(g))
        for a in range(3):
            g.spacing[a] = float(geom.spacing[a])
            g.origin[a] = float(geom.origin[a])
            for b in range(3):
                g.direction[3 * a + b] = float(geom.direction[a][b])
        _check(_lib.lib().deid_volume_set_geometry(self._ptr(), ctypes.byref(g)))

    @property
    def rescale(self) -> Tuple[float, float]:
        """(slope, intercept)."""
        s, i = ctypes.c_double(), ctypes.c_double()
        _lib.lib().deid_volume_get_rescale(self._ptr(), ctypes.byref(s), ctypes.byref(i))
        return s.value, i.value

    @property
    def hounsfield(self) -> bool:
        return bool(_lib.lib().deid_volume_is_hounsfield(self._ptr()))

    def copy(self) -> "Volume":
        h = ctypes.c_void_p()
        _check(_lib.lib().deid_volume_copy(self._ptr(), ctypes.byref(h)))
        return Volume(h.value)

    def deface(self, method: str = "face", *, replacer: Optional[str] = None,
               value: float = 0.0, body_threshold: Optional[float] = None,
               shell_mm: float = 0.0, ears: bool = False, seed: int = 0, threads: int = 0,
               mask: bool = False, model_path: Optional[PathLike] = None,
               device: Optional[str] = None) -> DefaceReport:
        """Remove the face in place (``deid_volume_deface``): ``method`` "face" (default),
        "drown" or "model" (a TorchScript face model, ``model_path``, run on ``device`` "cpu",
        "cuda" or "mps"; needs libdeid's libtorch module); ``replacer`` "tissue", "air" or
        "value" (default: air for face and model, tissue for drown). With ``mask`` the report
        carries the replaced voxels as a uint8 array."""
        import numpy as np

        lib = _lib.lib()
        o = _lib.DefaceOptions()
        _check(lib.deid_deface_options_init(ctypes.byref(o), _lib.DEFACE_OPTIONS_VERSION))
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}")
        o.method = METHODS[method]
        if replacer is not None:
            if replacer not in REPLACERS:
                raise ValueError(f"replacer must be one of {sorted(REPLACERS)}")
            o.replacer = REPLACERS[replacer]
        o.value = float(value)
        o.body_threshold = math.nan if body_threshold is None else float(body_threshold)
        o.shell_mm = float(shell_mm)
        o.ears = 1 if ears else 0
        o.seed = int(seed)
        o.threads = int(threads)
        path_b = os.fsencode(model_path) if model_path is not None else None
        dev_b = device.encode() if device is not None else None
        o.model_path = path_b
        o.device = dev_b
        m = np.zeros(self.array.shape, np.uint8) if mask else None
        r = _lib.DefaceReport()
        _check(lib.deid_volume_deface(self._ptr(), ctypes.byref(o),
                                      m.ctypes.data_as(ctypes.c_void_p) if m is not None
                                      else None, ctypes.byref(r)))
        return DefaceReport(r.altered, bool(r.face_found), (r.anterior_axis, r.anterior_sign),
                            (r.superior_axis, r.superior_sign), r.body_threshold,
                            r.bone_threshold, r.seconds,
                            r.message.decode(errors="replace"), m)

    def write_nifti(self, path: PathLike) -> None:
        """NIfTI-1 (``.nii`` or ``.nii.gz``), affine from the geometry (RAS, as dcm2niix)."""
        _check(_lib.lib().deid_volume_write_nifti(self._ptr(), os.fsencode(path)))

    def write_nrrd(self, path: PathLike, gzip: bool = True) -> None:
        """NRRD with an attached header (space left-posterior-superior)."""
        _check(_lib.lib().deid_volume_write_nrrd(self._ptr(), os.fsencode(path),
                                                 1 if gzip else 0))

    def render_qc(self, path: PathLike, after: Optional["Volume"] = None) -> None:
        """A PNG with front and side skin renders of this volume (and of ``after`` below)."""
        _check(_lib.lib().deid_volume_render_qc(self._ptr(),
                                                after._ptr() if after is not None else None,
                                                os.fsencode(path)))


__all__ = ["DefaceReport", "DeidError", "Geometry", "Volume", "METHODS", "REPLACERS"]
