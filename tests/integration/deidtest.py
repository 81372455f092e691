"""Helpers shared by the integration tests: locating the tool and data, running deid-header,
pairing inputs with outputs, and searching bytes for PHI.

Environment (set by ctest from tests/CMakeLists.txt): DEID_SOURCE_DIR, DEID_BUILD_DIR,
DEID_SHARED_DATA, DEID_TOOLS_DIR, DEID_HEADER_TOOL (path of deid-header when built).
Run by hand:  DEID_HEADER_TOOL=build/tools/deid-header /usr/bin/python3 -m pytest -q \
              tests/integration/test_phi_corpus.py
"""
import base64
import datetime
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("DEID_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("DEID_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
GENERATORS = os.path.join(SOURCE_DIR, "tests", "generators")
sys.path.insert(0, GENERATORS)

import make_phi_corpus  # noqa: E402  (tests/generators)
import pydicom  # noqa: E402

# Fixed test keys (never used for real data): results are reproducible run to run.
KEY1 = "5f1c3a7e9b2d4f6081a3c5e7092b4d6f8a1c3e5079b2d4f6a8c0e2f4b6d8fa1c"
KEY2 = "c0ffee00d15ea5e0badc0de0123456789abcdef0fedcba9876543210aa55aa55"

OUTPUT_NAME = re.compile(r"^(?P<prefix>.*?)(?P<patient>\d{10})_(?P<instance>\d{8})\.dcm$")
DEID_METHOD_CODES = {
    "basic": "113100", "retain-longitudinal-modified-dates": "113107",
    "retain-patient-characteristics": "113108",
}


# ---- locations ----------------------------------------------------------------------------

def shared_data():
    """../shared/data when present, else None (tests that need it skip)."""
    d = os.environ.get("DEID_SHARED_DATA") or os.path.join(SOURCE_DIR, "..", "shared", "data")
    return d if os.path.isdir(d) else None


def require_shared_data():
    d = shared_data()
    if d is None:
        pytest.skip("reference data ../shared/data is absent")
    return d


def tool_path(name="deid-header"):
    """A built tool (DEID_HEADER_TOOL for deid-header, else DEID_TOOLS_DIR/name), or None."""
    t = os.environ.get("DEID_HEADER_TOOL") if name == "deid-header" else None
    if not t:
        t = os.path.join(os.environ.get("DEID_TOOLS_DIR") or os.path.join(BUILD_DIR, "tools"),
                         name)
    return t if os.path.isfile(t) and os.access(t, os.X_OK) else None


def require_tool():
    t = tool_path()
    if t is None:
        pytest.skip("deid-header is not built")
    return t


def workdir(name):
    """A fresh directory for one test module under the build tree."""
    d = os.path.join(BUILD_DIR, "tests", "integration", "work", name)
    if os.path.exists(d):
        for root, dirs, _ in os.walk(d):   # a test may have left a chmod 000 folder behind
            for x in dirs:
                os.chmod(os.path.join(root, x), 0o755)
        shutil.rmtree(d)
    os.makedirs(d)
    return d


def write_key(path, hexkey=KEY1):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(hexkey + "\n")
    os.chmod(path, 0o600)
    return path


# ---- corpus and tool ------------------------------------------------------------------------

def make_corpus(dest, seed=20240611):
    """The PHI corpus in dest/corpus, its manifest (dict) from dest/manifest.json."""
    corpus, manifest = os.path.join(dest, "corpus"), os.path.join(dest, "manifest.json")
    subprocess.run([sys.executable, os.path.join(GENERATORS, "make_phi_corpus.py"), "--out",
                    corpus, "--manifest", manifest, "--seed", str(seed)], check=True)
    with open(manifest, encoding="utf-8") as f:
        return corpus, json.load(f)


class Run:
    """One deid-header run: paths, exit code, console output."""

    def __init__(self, args, proc, out, headers):
        self.args, self.proc, self.out, self.headers = args, proc, out, headers
        self.rc = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.console = proc.stdout + proc.stderr

    def explain(self):
        return (f"command: {' '.join(self.args)}\nexit {self.rc}\n--- stdout\n"
                f"{self.stdout.decode(errors='replace')[-4000:]}\n--- stderr\n"
                f"{self.stderr.decode(errors='replace')[-4000:]}")


def run_tool(inp, out, headers, *options, key=None, workers=2, timeout=600):
    args = [require_tool(), inp, out, headers]
    if key:
        args += ["--key", key]
    if workers:
        args += ["--workers", str(workers)]
    args += list(options)
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return Run(args, proc, out, headers)


def files_under(root):
    """Relative paths of every regular file under root, sorted."""
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                out.append(os.path.relpath(p, root))
    return sorted(out)


def header_json_for(run, rel_out):
    """Where the *_DICOMHeader.json of output rel_out should be."""
    base = rel_out[:-4] if rel_out.endswith(".dcm") else rel_out
    return os.path.join(run.headers, base + "_DICOMHeader.json")


# ---- pairing inputs with outputs ------------------------------------------------------------

def identity(path):
    """What survives de-identification and tells files of one folder apart."""
    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if ts in NATIVE_SYNTAXES:   # a writer may re-encode implicit as explicit VR (or add a meta)
        ts = "native"
    return (str(ds.get("SOPClassUID", "")), ts, str(ds.get("InstanceNumber", "")),
            str(ds.get("Rows", "")), str(ds.get("Columns", "")), str(ds.get("NumberOfFrames", "")))


NATIVE_SYNTAXES = ("", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


def pair_outputs(in_root, inputs, out_root, mirrored=True):
    """Map each input (relative path) to its output (relative path) or None. Outputs mirror the
    input folders; inside a folder they are told apart by identity(). Returns (pairs, problems)."""
    outputs = [r for r in files_under(out_root) if r.endswith(".dcm")]
    by_key = {}
    for r in outputs:
        key = ((os.path.dirname(r) if mirrored else ""), identity(os.path.join(out_root, r)))
        by_key.setdefault(key, []).append(r)
    pairs, problems = {}, []
    for rel in inputs:
        key = ((os.path.dirname(rel) if mirrored else ""), identity(os.path.join(in_root, rel)))
        found = by_key.get(key, [])
        if len(found) == 1:
            pairs[rel] = found[0]
        elif not found:
            pairs[rel] = None
            problems.append(f"{rel}: no output in {os.path.dirname(rel) or '.'}/ with the same "
                            f"SOP class, transfer syntax, instance number and size")
        else:
            pairs[rel] = None
            problems.append(f"{rel}: ambiguous outputs {found}")
    return pairs, problems


# ---- element access -------------------------------------------------------------------------

raw_elements = make_phi_corpus.raw_elements


def element_at(ds, path):
    """Value at a manifest path ["30060010", 0, "00200052"], or None when a step is missing."""
    cur = ds
    for step in path:
        if isinstance(step, int):
            if cur is None or step >= len(cur):
                return None
            cur = cur[step]
        else:
            tag = int(step, 16)
            if cur is None or tag not in cur:
                return None
            cur = cur[tag].value
    return cur


def walk_values(ds, path=()):
    """(path, tag, VR, value) of every element at any depth."""
    for elem in ds:
        p = path + (f"{int(elem.tag):08X}",)
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from walk_values(item, p + (i,))
        else:
            yield p, int(elem.tag), elem.VR, elem.value


def pixel_value(path):
    """Raw bytes of top-level Pixel Data as stored, and whether it is encapsulated."""
    ds = pydicom.dcmread(path, force=True)
    elem = ds.get_item(0x7FE00010)
    if elem is None:
        return None, False
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    encapsulated = bool(ts and ts.is_compressed)
    return bytes(elem.value), encapsulated


def fragments(value):
    """Items of an encapsulated Pixel Data value: [basic offset table, fragment, ...]."""
    out, pos = [], 0
    while pos + 8 <= len(value):
        group, elem, length = (int.from_bytes(value[pos:pos + 2], "little"),
                               int.from_bytes(value[pos + 2:pos + 4], "little"),
                               int.from_bytes(value[pos + 4:pos + 8], "little"))
        pos += 8
        if (group, elem) == (0xFFFE, 0xE0DD):
            break
        if (group, elem) != (0xFFFE, 0xE000):
            raise ValueError(f"unexpected tag ({group:04X},{elem:04X}) in encapsulated data")
        out.append(value[pos:pos + length])
        pos += length
    return out


# ---- PHI search -------------------------------------------------------------------------------

class PhiSearch:
    """Finds PHI markers of a manifest in bytes. Text markers are found by their common prefix;
    values that are only digits (dates, times, numbers, ages) are found when not preceded by a
    digit or '.', so that the digits of a new 2.25 UID do not match by chance."""

    def __init__(self, manifest, exclude_tags=(), exclude_vrs=()):
        """exclude_tags/exclude_vrs: values an option legitimately keeps. Text markers of
        excluded tags are then looked for one by one instead of by their common prefix."""
        self.prefix = manifest["text_marker"].encode()
        self.uid_root = manifest["uid_root"].encode()
        excluded = {t.upper() for t in exclude_tags}
        self.values = [p for p in manifest["phi"]
                       if not (set(p["tags"]) & excluded) and p["vr"] not in exclude_vrs]
        self.by_prefix = len(self.values) == len(manifest["phi"])
        text = [p["value"] for p in self.values if manifest["text_marker"] in p["value"]]
        self.text_re = None if self.by_prefix else re.compile(
            b"|".join(re.escape(v.encode("utf-8")) for v in sorted(text, key=len, reverse=True)))
        numeric = sorted({p["value"] for p in self.values
                          if manifest["text_marker"] not in p["value"]}, key=len, reverse=True)
        self.numeric = numeric
        self.numeric_re = (re.compile(rb"(?<![0-9.])(" + b"|".join(re.escape(v.encode())
                                                                   for v in numeric) + rb")")
                           if numeric else None)
        self.numbers = {}
        for p in self.values:
            if p["vr"] in ("DS", "IS"):
                self.numbers[float(p["value"])] = p["value"]

    def in_bytes(self, data, check_uids=True):
        """List of (what, context) found in data."""
        hits = []
        for m in (re.finditer(re.escape(self.prefix), data) if self.by_prefix
                  else self.text_re.finditer(data)):
            hits.append(("text marker", data[max(0, m.start() - 8):m.end() + 24]))
        if self.numeric_re:
            for m in self.numeric_re.finditer(data):
                hits.append(("value " + m.group(1).decode(), data[max(0, m.start() - 8):
                                                                    m.end() + 8]))
        if check_uids:
            for m in re.finditer(re.escape(self.uid_root), data):
                hits.append(("original UID", data[m.start():m.end() + 16]))
        return hits

    def in_json(self, text_bytes):
        """Raw bytes, every decoded string, InlineBinary (base64) and number of a JSON file."""
        hits = self.in_bytes(text_bytes)
        try:
            doc = json.loads(text_bytes.decode("utf-8"))
        except ValueError as e:
            return hits + [("unparsable JSON", str(e).encode())]

        def walk(x, key=None):
            if isinstance(x, dict):
                for k, v in x.items():
                    walk(v, k)
            elif isinstance(x, list):
                for v in x:
                    walk(v, key)
            elif isinstance(x, str):
                data = base64.b64decode(x) if key == "InlineBinary" else x.encode("utf-8")
                hits.extend(self.in_bytes(data))
            elif isinstance(x, (int, float)) and not isinstance(x, bool):
                for num, text in self.numbers.items():
                    if abs(float(x) - num) <= 1e-9 * max(1.0, abs(num)):
                        hits.append(("number " + text, repr(x).encode()))
        walk(doc)
        return hits


def describe_hits(where, hits, limit=5):
    lines = [f"{where}: {what} in ...{ctx!r}..." for what, ctx in hits[:limit]]
    if len(hits) > limit:
        lines.append(f"{where}: ... and {len(hits) - limit} more")
    return lines


# ---- dates ------------------------------------------------------------------------------------

def parse_da(v):
    return datetime.datetime.strptime(v[:8], "%Y%m%d").date()


def days_between(a, b):
    return (parse_da(b) - parse_da(a)).days
