"""The Python face of libdeid: keys, profiles, in-memory de-identification and batches.

Every call goes straight to the C library through :mod:`deid._lib`; nothing here
re-implements a de-identification rule, so Python and the command-line tools always agree.
"""
from __future__ import annotations

import ctypes
import enum
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, TypeVar,
                    Union, overload)

from . import _lib

if TYPE_CHECKING:  # pydicom is optional: only deidentify(Dataset) needs it
    import pydicom

PathLike = Union[str, "os.PathLike[str]"]


class Status(enum.IntEnum):
    """``deid_status`` codes (include/deid/status.h)."""

    OK = 0
    NOT_DICOM = 1
    NO_PIXELS = 2
    UNSUPPORTED = 3
    LIMIT = 4
    IO = 5
    NOMEM = 6
    ARGUMENT = 7
    CANCELLED = 8
    GENERIC = 9


class DeidError(Exception):
    """A libdeid call failed.

    Attributes:
        status: the :class:`Status` code (an ``int`` if the library is newer than this
            binding and returned a code it does not know).
        detail: the library's detail message (``deid_last_error()``), e.g.
            ``"dicom: <memory>: not a DICOM object: ..."``; it never contains PHI.
    """

    def __init__(self, status: int, detail: str) -> None:
        try:
            self.status: Union[Status, int] = Status(status)
        except ValueError:
            self.status = status
        self.detail = detail
        text = _lib.lib().deid_strerror(int(status)).decode()
        super().__init__(f"{text}: {detail}" if detail else text)


def _check(status: int) -> None:
    if status != 0:
        raise DeidError(status, _lib.lib().deid_last_error().decode(errors="replace"))


def _encode(value: Optional[PathLike]) -> Optional[bytes]:
    return None if value is None else os.fsencode(value)


def version() -> str:
    """Version of the loaded C library, e.g. ``"0.1.0"``."""
    return _lib.lib().deid_version().decode()


def features() -> List[str]:
    """Optional features compiled into the loaded library, e.g.
    ``["gdcm", "sodium", "jansson", "jpeg", "png", "tesseract"]``."""
    return [f for f in _lib.lib().deid_features().decode().split(",") if f]


def options() -> Dict[str, str]:
    """The de-identification options the library knows (Annex E profile options plus
    libdeid's own), as ``{name: one-line description}`` in the library's order."""
    lib = _lib.lib()
    return {lib.deid_option_name(i).decode(): lib.deid_option_description(i).decode()
            for i in range(lib.deid_option_count())}


def _flags(names: Iterable[str]) -> int:
    if isinstance(names, str):
        names = [names]
    flags = 0
    for name in names:
        flag = ctypes.c_uint(0)
        _check(_lib.lib().deid_option_parse(name.encode(), ctypes.byref(flag)))
        flags |= flag.value
    return flags


class _Handle:
    """An owned C handle: :meth:`close` frees it (also done when the object is collected), and
    the object is a context manager that closes it."""

    _free_function = ""  # name of the deid_*_free function for this kind of handle
    _handle: Optional[int] = None

    def _ptr(self) -> int:
        if self._handle is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._handle

    def close(self) -> None:
        """Free the handle now (keys are wiped first)."""
        if self._handle is not None:
            getattr(_lib.lib(), self._free_function)(self._handle)
            self._handle = None

    def __enter__(self: "_H") -> "_H":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


_H = TypeVar("_H", bound=_Handle)


class Key(_Handle):
    """A secret 32-byte key for keyed pseudonyms, held (and wiped when freed) by the library.

    Anyone holding the key can link pseudonyms back to the original identifiers: keep the key
    file private (the library refuses one readable by group or others).
    """

    _free_function = "deid_key_free"

    def __init__(self, _handle: int, created: bool = False) -> None:
        self._handle = _handle
        #: True when :meth:`load` created the key file.
        self.created = created

    @classmethod
    def load(cls, path: PathLike, create: bool = True) -> "Key":
        """Load a key file (64 hex digits). When it does not exist and ``create`` is true, a
        fresh random key is written there with mode 0600 and ``key.created`` is True."""
        handle = ctypes.c_void_p()
        created = ctypes.c_int(0)
        _check(_lib.lib().deid_key_load_file(os.fsencode(path), int(create),
                                             ctypes.byref(created), ctypes.byref(handle)))
        return cls(handle.value, bool(created.value))  # type: ignore[arg-type]

    @classmethod
    def generate(cls) -> "Key":
        """A fresh random key (not saved anywhere: see :meth:`save`)."""
        handle = ctypes.c_void_p()
        _check(_lib.lib().deid_key_generate(ctypes.byref(handle)))
        return cls(handle.value)  # type: ignore[arg-type]

    @classmethod
    def from_bytes(cls, data: bytes) -> "Key":
        """A key from 32 raw bytes (copied)."""
        handle = ctypes.c_void_p()
        _check(_lib.lib().deid_key_from_bytes(bytes(data), len(data), ctypes.byref(handle)))
        return cls(handle.value)  # type: ignore[arg-type]

    def save(self, path: PathLike) -> None:
        """Write the key to a new 0600 key file; fails if ``path`` exists."""
        _check(_lib.lib().deid_key_save_file(self._ptr(), os.fsencode(path)))

    def __repr__(self) -> str:
        return "<deid.Key (secret)>" if self._handle is not None else "<deid.Key closed>"


KeyLike = Union[Key, PathLike]


def _as_key(key: Optional[KeyLike]) -> Key:
    if key is None:
        raise DeidError(Status.ARGUMENT, "no key: pass key=deid.Key.load(path) or a key "
                        "file path (a default key would make pseudonyms reversible by anyone)")
    return key if isinstance(key, Key) else Key.load(key, create=True)


class Profile(_Handle):
    """A configured de-identification profile (PS3.15 Annex E Basic Profile plus options).

    Args:
        key: a :class:`Key`, or the path of a key file (created when missing, like
            ``deid-header --key``).
        options: option names from :func:`options`, e.g. ``["retain-uids"]``.
        recipe: path of a JSON recipe overriding actions per tag.
        max_date_shift_days: bound of the per-patient date shift (``retain-longitudinal-
            modified-dates``); None keeps the library default.
        patient_name_prefix: text prepended to the pseudonym written as Patient's Name.

    A profile is immutable and may be used from several threads at once.
    """

    _free_function = "deid_profile_free"

    def __init__(self, key: KeyLike, options: Iterable[str] = (),
                 recipe: Optional[PathLike] = None, max_date_shift_days: Optional[int] = None,
                 patient_name_prefix: Optional[str] = None) -> None:
        lib = _lib.lib()
        opts = _lib.ProfileOptions()
        _check(lib.deid_profile_options_init(ctypes.byref(opts), _lib.PROFILE_OPTIONS_VERSION))
        opts.flags = _flags(options)
        opts.recipe_path = _encode(recipe)
        if max_date_shift_days is not None:
            opts.max_date_shift_days = max_date_shift_days
        if patient_name_prefix is not None:
            opts.patient_name_prefix = patient_name_prefix.encode()
        k = _as_key(key)
        handle = ctypes.c_void_p()
        _check(lib.deid_profile_new(ctypes.byref(opts), k._ptr(), ctypes.byref(handle)))
        self._handle = handle.value

    @overload
    def deidentify(self, data: "pydicom.Dataset", output: Optional[PathLike] = None
                   ) -> "pydicom.Dataset": ...

    @overload
    def deidentify(self, data: Union[bytes, bytearray, memoryview, PathLike],
                   output: Optional[PathLike] = None) -> bytes: ...

    def deidentify(self, data: Any, output: Optional[PathLike] = None) -> Any:
        """De-identify one DICOM object with this profile. See :func:`deidentify`."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            result: Any = self._memory(bytes(data))
        elif isinstance(data, (str, os.PathLike)):
            result = self._memory(Path(data).read_bytes())
        elif _is_pydicom_dataset(data):
            import pydicom
            raw = self._memory(_dataset_bytes(data))
            result = pydicom.dcmread(io.BytesIO(raw))
            if output is not None:
                _write_atomic(output, raw)
            return result
        else:
            raise TypeError("deidentify() takes bytes, a path or a pydicom.Dataset, not "
                            + type(data).__name__)
        if output is not None:
            _write_atomic(output, result)
        return result

    def _memory(self, data: bytes) -> bytes:
        lib = _lib.lib()
        out = ctypes.c_void_p()
        size = ctypes.c_size_t(0)
        _check(lib.deid_deidentify_memory(self._ptr(), data, len(data), ctypes.byref(out),
                                          ctypes.byref(size)))
        try:
            return ctypes.string_at(out.value, size.value) if size.value else b""
        finally:
            lib.deid_free(out)

    def patient_pseudonym(self, patient_id: str) -> str:
        """The 10-digit keyed pseudonym this profile gives ``patient_id``."""
        buf = ctypes.create_string_buffer(11)
        _check(_lib.lib().deid_profile_patient_pseudonym(self._ptr(), patient_id.encode(), buf))
        return buf.value.decode()

    def uid(self, uid: str) -> str:
        """The keyed replacement (``2.25.<decimal>``) of a UID."""
        buf = ctypes.create_string_buffer(65)
        _check(_lib.lib().deid_profile_uid(self._ptr(), uid.encode(), buf))
        return buf.value.decode()

    def date_shift(self, patient_id: str) -> int:
        """The per-patient date shift in days (never 0)."""
        days = ctypes.c_int(0)
        _check(_lib.lib().deid_profile_date_shift(self._ptr(), patient_id.encode(),
                                                  ctypes.byref(days)))
        return days.value



def _is_pydicom_dataset(obj: Any) -> bool:
    return any(c.__module__.startswith("pydicom") and c.__name__ == "Dataset"
               for c in type(obj).__mro__)


def _dataset_bytes(ds: "pydicom.Dataset") -> bytes:
    """Serialise a pydicom Dataset as a Part 10 stream (file meta added when missing)."""
    import pydicom

    buf = io.BytesIO()
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        ds = ds.copy()
        meta = pydicom.dataset.FileMetaDataset()
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        if "SOPClassUID" in ds:
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta = meta
        ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(buf, write_like_original=False)
    return buf.getvalue()


def _write_atomic(path: PathLike, data: bytes) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@overload
def deidentify(data: "pydicom.Dataset", *, key: Optional[KeyLike] = None,
               options: Iterable[str] = (), profile: Optional[Profile] = None,
               output: Optional[PathLike] = None) -> "pydicom.Dataset": ...


@overload
def deidentify(data: Union[bytes, bytearray, memoryview, PathLike], *,
               key: Optional[KeyLike] = None, options: Iterable[str] = (),
               profile: Optional[Profile] = None, output: Optional[PathLike] = None) -> bytes: ...


def deidentify(data: Any, *, key: Optional[KeyLike] = None, options: Iterable[str] = (),
               profile: Optional[Profile] = None, output: Optional[PathLike] = None) -> Any:
    """De-identify one DICOM object in memory (``deid_deidentify_memory``).

    Args:
        data: the object as ``bytes`` (a Part 10 stream, e.g. a C-STORE payload), the path of
            a DICOM file (``str`` or ``os.PathLike``; the file is not modified), or a
            ``pydicom.Dataset``.
        key: a :class:`Key` or a key file path (created when missing). Required unless
            ``profile`` is given.
        options: option names (see :func:`options`); ignored when ``profile`` is given.
        profile: a :class:`Profile` to reuse (faster for many objects).
        output: when given, the de-identified Part 10 bytes are also written there
            (atomically).

    Returns:
        ``bytes`` of the de-identified Part 10 object, or a new ``pydicom.Dataset`` when
        ``data`` was one.

    Raises:
        DeidError: the library refused the input (``status`` says why, e.g.
            ``Status.NOT_DICOM``) or the key/options are wrong (``Status.ARGUMENT``).
    """
    if profile is None:
        with Profile(_as_key(key), options) as p:
            return p.deidentify(data, output)
    return profile.deidentify(data, output)


@dataclass(frozen=True)
class Progress:
    """Progress of a :class:`Batch`, passed to its ``progress`` callback after each file."""

    total: int
    done: int
    ok: int
    skipped: int
    failed: int
    elapsed_s: float


@dataclass(frozen=True)
class BatchSummary:
    """Outcome of :meth:`Batch.run`. ``cancelled`` is True when the progress callback stopped
    the run (the files finished before that are kept). The ``seconds_decode`` ..
    ``us_fallback`` fields are filled by ultrasound runs (deid-us): stage times summed over
    workers, files refused for low fan-detection confidence, files masked by a fallback."""

    found: int
    ok: int
    skipped: int
    failed: int
    seconds_scan: float
    seconds_read: float
    seconds_deid: float
    seconds_write: float
    seconds_total: float
    bytes_in: int
    bytes_out: int
    cancelled: bool = False
    seconds_decode: float = 0.0
    seconds_detect: float = 0.0
    seconds_mask: float = 0.0
    seconds_encode: float = 0.0
    us_low_confidence: int = 0
    us_fallback: int = 0


ProgressCallback = Callable[[Progress], Optional[bool]]
LogCallback = Callable[[int, str, str], None]


class Batch(_Handle):
    """De-identify a directory tree the way ``deid-header`` does (``deid_batch_*``).

    Args:
        input: input file or directory (scanned recursively; never modified).
        output: directory for the de-identified DICOM tree.
        headers: directory for the ``*_DICOMHeader.json`` files and ``keys.csv``
            (default: ``output``).
        key, options, recipe: as for :class:`Profile`; or pass ``profile``.
        workers: worker threads (0 = number of cores).
        resume: skip files whose output already exists.
        flat: write every output directly in ``output`` instead of mirroring the input tree.
        prefix: prefix of output file names.
        modalities: only these modalities, e.g. ``["US", "CT"]``.
        sop_classes: only these SOP Class UIDs.
        skip_single_frame: skip objects with a single frame.
        write_json: write a ``*_DICOMHeader.json`` per file.
        log_path: log file (appended).
        durable: flush each output to disk before recording it (survives a power loss per
            file; slower). By default outputs are flushed once at the end of the run.
        progress: called with a :class:`Progress` after each file; return True to cancel.
        log: called with ``(level, module, message)`` for each log line; may be called from
            worker threads.
    """

    _free_function = "deid_batch_free"

    def __init__(self, input: PathLike, output: PathLike, headers: Optional[PathLike] = None,
                 *, key: Optional[KeyLike] = None, profile: Optional[Profile] = None,
                 options: Iterable[str] = (), recipe: Optional[PathLike] = None,
                 workers: int = 0, resume: bool = False, flat: bool = False,
                 prefix: Optional[str] = None, modalities: Optional[Iterable[str]] = None,
                 sop_classes: Optional[Iterable[str]] = None, skip_single_frame: bool = False,
                 write_json: bool = True, log_path: Optional[PathLike] = None,
                 durable: bool = False, progress: Optional[ProgressCallback] = None,
                 log: Optional[LogCallback] = None) -> None:
        self._profile = profile if profile is not None else Profile(_as_key(key), options,
                                                                    recipe)
        self._progress = progress
        self._log = log
        self._error: Optional[BaseException] = None
        lib = _lib.lib()
        opts = _lib.BatchOptions()
        _check(lib.deid_batch_options_init(ctypes.byref(opts), _lib.BATCH_OPTIONS_VERSION))
        opts.input = os.fsencode(input)
        opts.output_dir = os.fsencode(output)
        opts.headers_dir = _encode(headers)
        opts.workers = workers
        opts.flat = int(flat)
        opts.resume = int(resume)
        opts.filename_prefix = prefix.encode() if prefix else None
        opts.modalities = ",".join(modalities).encode() if modalities else None
        opts.sop_classes = ",".join(sop_classes).encode() if sop_classes else None
        opts.skip_single_frame = int(skip_single_frame)
        opts.write_json = int(write_json)
        opts.log_path = _encode(log_path)
        opts.durable = int(durable)
        # The C callbacks must stay alive as long as the batch: keep them on self.
        self._c_progress = _lib.PROGRESS_FN(self._on_progress)
        self._c_log = _lib.LOG_FN(self._on_log)
        if progress is not None:
            opts.progress = self._c_progress
        if log is not None:
            opts.log = self._c_log
        handle = ctypes.c_void_p()
        _check(lib.deid_batch_new(ctypes.byref(opts), self._profile._ptr(), ctypes.byref(handle)))
        self._handle = handle.value

    def _on_progress(self, _user: Any, p: Any) -> int:
        c = p.contents
        try:
            stop = self._progress(Progress(c.total, c.done, c.ok, c.skipped, c.failed,  # type: ignore[misc]
                                           c.elapsed_s))
            return 1 if stop else 0
        except BaseException as exc:  # never let an exception unwind through C
            self._error = exc
            return 1

    def _on_log(self, _user: Any, level: int, module: bytes, message: bytes) -> None:
        try:
            self._log(level, module.decode(errors="replace"),  # type: ignore[misc]
                      message.decode(errors="replace"))
        except BaseException as exc:
            self._error = exc

    def run(self) -> BatchSummary:
        """Run the batch and return its :class:`BatchSummary`.

        Files that fail are counted in ``summary.failed`` (and logged); the run goes on.

        Raises:
            DeidError: the run could not start (unreadable input, unwritable output).
            Exception: whatever the progress or log callback raised (the run is cancelled).
        """
        s = _lib.BatchSummary()
        self._error = None
        status = _lib.lib().deid_batch_run(self._ptr(), ctypes.byref(s))
        if self._error is not None:
            raise self._error
        cancelled = status == Status.CANCELLED
        if not cancelled:
            _check(status)
        return BatchSummary(s.found, s.ok, s.skipped, s.failed, s.seconds_scan, s.seconds_read,
                            s.seconds_deid, s.seconds_write, s.seconds_total, s.bytes_in,
                            s.bytes_out, cancelled, s.seconds_decode, s.seconds_detect,
                            s.seconds_mask, s.seconds_encode, s.us_low_confidence, s.us_fallback)
