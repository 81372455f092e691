"""libdeid for Python: de-identify DICOM objects per DICOM PS3.15 Annex E.

A thin ctypes binding over the C library (no compiler needed)::

    import deid
    key = deid.Key.load("deid.key")               # created (mode 0600) when missing
    clean = deid.deidentify(open("in.dcm", "rb").read(), key=key)
    summary = deid.Batch("in/", "out/", "headers/", key=key).run()

The library is found through the ``DEID_LIBRARY`` environment variable, else the source
tree's ``build/libdeid/libdeid.so``, else the installed ``libdeid.so.0``.
"""
from ._api import (Batch, BatchSummary, DeidError, Key, Profile, Progress, Status, deidentify,
                   features, options, version)

__version__ = "0.1.0"

__all__ = ["Batch", "BatchSummary", "DeidError", "Key", "Profile", "Progress", "Status",
           "deidentify", "features", "options", "version", "__version__"]
