"""Hostile inputs (issue 6): files a malicious or broken modality could send, through every tool.

The cases, built here from real samples:
- every sample truncated at many points (inside the file meta, inside each element's header and
  value, at element boundaries);
- wrong VRs, lengths past the end or into the next element, odd lengths;
- Rows/Columns/NumberOfFrames/BitsAllocated claiming gigabytes over a few kilobytes of pixels;
- sequences nested 1000 deep (undefined and defined lengths);
- unknown and garbage transfer syntaxes, a compressed syntax over native pixels;
- empty, zero-length and missing pixel data, encapsulated pixel data with no fragment;
- unknown character sets and bytes invalid in the declared one.

What every tool must do with them: one error line naming the file with a reason (never "out of
memory": a file that claims gigabytes is refused for what it is, before anything that size is
allocated), exit status 1, no output and no temporary file for a failed input, no crash and no
sanitizer report, and bounded memory. Memory is bounded twice: the tools run under a 3 GiB
address-space limit (a sanitizer build instead gets ASan's 1 GiB allocation limit), so an
allocation sized by a hostile header fails as "out of memory", which the test rejects; and each
tool's peak RSS must stay small. Where a hostile file is still a readable object (an odd length,
an unknown character set, a cut at an element boundary), the tool may de-identify it: then its
output must hold none of the sample's PHI.
"""
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import zlib

import pydicom
import pytest

import deidtest as dt

SANITIZED = os.environ.get("DEID_SANITIZE", "").upper() in ("1", "ON", "TRUE", "YES")
TOOLS = ("deid-header", "deid-us", "deid-ocr", "deid-ct")
PIXEL_TOOLS = ("deid-us", "deid-ocr", "deid-ct")
ADDRESS_LIMIT = 3 << 30
RSS_LIMIT_KB = (1536 if SANITIZED else 512) * 1024

ITEM, ITEM_DELIM, SEQ_DELIM = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}
PATIENT_NAME, PATIENT_ID, ROWS, COLUMNS = 0x00100010, 0x00100020, 0x00280010, 0x00280011
FRAMES, BITS_ALLOCATED, CHARSET, PIXEL_DATA = 0x00280008, 0x00280100, 0x00080005, 0x7FE00010
TS_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


# ---- a small DICOM byte walker ------------------------------------------------------------

class Elem:
    def __init__(self, tag, vr, start, vstart, vend, long_form):
        self.tag, self.vr, self.start, self.vstart, self.vend = tag, vr, start, vstart, vend
        self.long_form = long_form


def u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def skip_undefined(b, pos, explicit):
    """Position after the sequence delimiter of an undefined-length value starting at pos."""
    while pos + 8 <= len(b):
        tag = (u16(b, pos) << 16) | u16(b, pos + 2)
        n = u32(b, pos + 4)
        pos += 8
        if tag == SEQ_DELIM:
            return pos
        if tag == ITEM and n == 0xFFFFFFFF:
            _, pos = walk(b, pos, explicit)
        elif tag == ITEM:
            pos += n
    raise ValueError("no sequence delimiter")


def walk(b, pos, explicit, end=None):
    """Elements from pos to end (or to an item delimiter): (list of Elem, position after)."""
    end = len(b) if end is None else end
    out = []
    while pos + 8 <= end:
        tag = (u16(b, pos) << 16) | u16(b, pos + 2)
        if tag == ITEM_DELIM:
            return out, pos + 8
        vr = bytes(b[pos + 4:pos + 6]) if explicit and (tag >> 16) != 0xFFFE else None
        if vr is None:
            n, vstart, long_form = u32(b, pos + 4), pos + 8, True
        elif vr in LONG_VRS:
            n, vstart, long_form = u32(b, pos + 8), pos + 12, True
        else:
            n, vstart, long_form = u16(b, pos + 6), pos + 8, False
        vend = skip_undefined(b, vstart, explicit) if n == 0xFFFFFFFF else vstart + n
        out.append(Elem(tag, vr, pos, vstart, vend, long_form))
        pos = vend
    return out, pos


class Sample:
    """A Part 10 file (explicit or implicit VR little endian data set) and its elements."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.path = path
        assert self.data[128:132] == b"DICM", path
        self.meta_end = 144 + u32(self.data, 140)
        ts = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        self.explicit = ts != "1.2.840.10008.1.2"
        self.elems, _ = walk(self.data, self.meta_end, self.explicit)

    def find(self, tag):
        return next((e for e in self.elems if e.tag == tag), None)

    def cut_points(self, rng, per_file):
        """(inside, boundaries): offsets strictly inside an element or the file meta (a reader
        must fail there), and top-level element boundaries (the rest is a shorter object)."""
        inside = {64, 131, 133, 140, (132 + self.meta_end) // 2, self.meta_end - 1}
        for e in self.elems:
            inside.add(e.start + 2)
            inside.add(e.vstart - 1)
            if e.vend - e.vstart > 1:
                inside.add(e.vstart + (e.vend - e.vstart) // 2)
                inside.add(e.vend - 1)
        bounds = sorted({e.start for e in self.elems[1:]})
        inside = sorted(x for x in inside if 0 < x < len(self.data) and x not in bounds)
        if len(inside) > per_file:
            inside = sorted(rng.sample(inside, per_file))
        return inside, rng.sample(bounds, min(len(bounds), 6))

    def with_value(self, tag, value, vr=None):
        """The file with element `tag`'s value (and VR, when given) replaced; lengths follow."""
        e = self.find(tag)
        vr = vr or e.vr
        if not self.explicit:
            head = struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value))
        elif vr in LONG_VRS:
            head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + b"\0\0" + struct.pack(
                "<I", len(value))
        else:
            head = struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value))
        return self.data[:e.start] + head + value + self.data[e.vend:]

    def with_length(self, tag, n):
        """The file with only element `tag`'s length field rewritten (its value unchanged)."""
        e = self.find(tag)
        b = bytearray(self.data)
        if e.long_form:
            struct.pack_into("<I", b, e.vstart - 4, n)
        else:
            struct.pack_into("<H", b, e.vstart - 2, n)
        return bytes(b)

    def without(self, tag):
        e = self.find(tag)
        return self.data[:e.start] + self.data[e.vend:]

    def inserted(self, raw, before_tag):
        """`raw` elements inserted before the first element with a tag >= before_tag."""
        at = next(e.start for e in self.elems if e.tag >= before_tag)
        return self.data[:at] + raw + self.data[at:]

    def with_ts(self, uid):
        """The file with another transfer syntax UID in its meta (group length kept right)."""
        meta, _ = walk(self.data, 132, True, self.meta_end)
        e = next(x for x in meta if x.tag == 0x00020010)
        v = uid.encode() + (b"\0" if len(uid) % 2 else b"")
        head = struct.pack("<HH2sH", 2, 0x10, b"UI", len(v))
        body = self.data[:e.start] + head + v + self.data[e.vend:]
        b = bytearray(body)
        struct.pack_into("<I", b, 140, u32(self.data, 140) + len(v) - (e.vend - e.vstart))
        return bytes(b)


def text_value(s):
    v = s.encode("latin-1")
    return v + b" " if len(v) % 2 else v


def nested_sequences(depth, undefined):
    """(0040,A730) Content Sequence nested `depth` deep, each item holding the next."""
    def seq(level):
        if level == depth:
            return b""
        inner = seq(level + 1)
        if undefined:
            item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner + struct.pack(
                "<HHI", 0xFFFE, 0xE00D, 0)
            return (struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)
                    + item + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
        return struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0" + struct.pack("<I", len(item)) + item
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * depth + 100))
    return seq(0)


def hostile_cases(s):
    """name -> (bytes, must_fail_for): the structured cases built from sample `s`."""
    everyone, pixels = set(TOOLS), set(PIXEL_TOOLS)
    px = s.find(PIXEL_DATA)
    name = s.data[s.find(PATIENT_NAME).vstart:s.find(PATIENT_NAME).vend]
    cases = {
        # wrong VRs and lengths
        "vr_unknown_on_name": (s.with_value(PATIENT_NAME, name, b"ZZ"), set()),
        "vr_sq_on_name": (s.with_value(PATIENT_NAME, name, b"SQ"), set()),
        "vr_ul_on_rows": (s.with_value(ROWS, b"\x40\x00\x00", b"UL"), set()),
        "length_past_end": (s.with_length(PIXEL_DATA, 0x7FFFFFF0), everyone),
        "length_into_next": (s.with_length(PATIENT_NAME, (s.find(PATIENT_NAME).vend -
                                                          s.find(PATIENT_NAME).vstart) + 6), set()),
        "length_undefined_on_name": (s.with_length(PATIENT_NAME, 0xFFFF), set()),
        "odd_length_name": (s.with_value(PATIENT_NAME, name.rstrip(b" ") + b"X"), set()),
        # sizes claiming gigabytes over the pixels that are there
        "rows_columns_65535": (Sample.patch(s, [(ROWS, b"\xff\xff"), (COLUMNS, b"\xff\xff")]),
                               pixels),
        "frames_2147483647": (s.with_value(FRAMES, b"2147483647", b"IS") if s.find(FRAMES) else
                              s.inserted(struct.pack("<HH2sH", 0x28, 0x08, b"IS", 10)
                                         + b"2147483647", FRAMES), pixels),
        "bits_32_rows_46341": (Sample.patch(s, [(ROWS, struct.pack("<H", 46341)),
                                                (COLUMNS, struct.pack("<H", 46341)),
                                                (BITS_ALLOCATED, b"\x20\x00")]), pixels),
        # deep nesting
        "sequence_depth_1000_undefined": (s.inserted(nested_sequences(1000, True), 0x0040A730),
                                          everyone),
        "sequence_depth_1000_defined": (s.inserted(nested_sequences(1000, False), 0x0040A730),
                                        everyone),
        # transfer syntaxes
        "ts_unknown_uid": (s.with_ts("1.2.3.4.5.6.7.8.9"), pixels),
        "ts_garbage": (s.with_ts("ZZZZ-not-a-uid"), pixels),
        "ts_jpeg_over_native_pixels": (s.with_ts(TS_JPEG_BASELINE), pixels),
        # pixel data
        "pixel_data_empty": (s.with_value(PIXEL_DATA, b""), pixels),
        "pixel_data_missing": (s.without(PIXEL_DATA), pixels),
        "pixel_data_encapsulated_no_fragment": (encapsulated_empty(s), pixels),
        # character sets
        "charset_unknown": (s.with_value(CHARSET, b"ISO_IR 999") if s.find(CHARSET) else
                            s.inserted(struct.pack("<HH2sH", 8, 5, b"CS", 10) + b"ISO_IR 999",
                                       CHARSET), set()),
        "charset_utf8_invalid_bytes": (
            charset_case(s, b"ISO_IR 192", name.split(b"^")[0] + b"\xff\xfe\xc3^" +
                         b"^".join(name.split(b"^")[1:])), set()),
        "charset_2022_bad_escape": (
            charset_case(s, b"ISO 2022 IR 87", b"\x1b$B\x1b(Z" + name), set()),
    }
    assert px is not None
    return cases


def _patch(s, changes):
    b = bytearray(s.data)
    for tag, value in changes:
        e = s.find(tag)
        assert e is not None and e.vend - e.vstart == len(value), hex(tag)
        b[e.vstart:e.vend] = value
    return bytes(b)


Sample.patch = staticmethod(_patch)


def encapsulated_empty(s):
    """The sample relabelled JPEG baseline with Pixel Data holding only an empty offset table."""
    t = Sample.__new__(Sample)
    t.data, t.explicit = s.with_ts(TS_JPEG_BASELINE), True
    t.meta_end = 144 + u32(t.data, 140)
    t.elems, _ = walk(t.data, t.meta_end, True)
    e = t.find(PIXEL_DATA)
    enc = (struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\0\0" + struct.pack("<I", 0xFFFFFFFF)
           + struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    return t.data[:e.start] + enc + t.data[e.vend:]


def charset_case(s, charset, name):
    t = Sample.__new__(Sample)
    t.explicit, t.meta_end = s.explicit, s.meta_end
    if s.find(CHARSET):
        t.data = s.with_value(CHARSET, text_value(charset.decode()))
    else:
        v = text_value(charset.decode())
        t.data = s.inserted(struct.pack("<HH2sH", 8, 5, b"CS", len(v)) + v, CHARSET)
    t.elems, _ = walk(t.data, t.meta_end, t.explicit)
    return t.with_value(PATIENT_NAME, name + (b" " if len(name) % 2 else b""))


# ---- running a tool ---------------------------------------------------------------------------

class ToolRun:
    def __init__(self, tool, inp, out, rc, maxrss_kb, stdout, stderr):
        self.tool, self.inp, self.out, self.rc, self.maxrss_kb = tool, inp, out, rc, maxrss_kb
        self.stdout = stdout.decode("utf-8", errors="replace")
        self.stderr = stderr.decode("utf-8", errors="replace")

    def explain(self):
        return (f"{self.tool} {self.inp} -> exit {self.rc}, peak RSS {self.maxrss_kb // 1024} MB"
                f"\n--- stderr (last 3000 chars)\n{self.stderr[-3000:]}")


def tool_path(tool):
    return dt.tool_path(tool)


def run_tool(tool, inp, out, key, *extra):
    """Run a tool with the address-space limit (or ASan's allocation limit); its peak RSS."""
    env = dict(os.environ)
    if SANITIZED:
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":allocator_may_return_null=1:max_allocation_size_mb=1024").strip(":")

    def limit():
        if not SANITIZED:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))

    args = [tool_path(tool), inp, out, "--key", key, "--workers", "2", "--verbose"]
    if tool == "deid-ct":
        args.append("--no-deface")
    args += list(extra)
    log_out, log_err = out + ".stdout", out + ".stderr"
    with open(log_out, "wb") as fo, open(log_err, "wb") as fe:
        p = subprocess.Popen(args, stdout=fo, stderr=fe, env=env, preexec_fn=limit)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    with open(log_out, "rb") as fo, open(log_err, "rb") as fe:
        return ToolRun(tool, inp, out, p.returncode, usage.ru_maxrss, fo.read(), fe.read())


def phi_strings(path):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    out = set()
    for part in re.split(r"[\^ =]+", str(ds.PatientName)):
        if len(part) >= 4:
            out.add(part.encode())
    out.add(str(ds.PatientID).encode())
    if ds.get("PatientBirthDate"):
        out.add(str(ds.PatientBirthDate).encode())
    return {x for x in out if len(x) >= 4}


def check_run(run, cases, phi, good=()):
    """The checks every tool run must pass. cases: rel path -> must_fail (bool); the `good`
    files beside them must be written."""
    problems = []
    for marker in ("AddressSanitizer", "runtime error", "LeakSanitizer", "Segmentation",
                   "Aborted", "terminate called"):
        if marker in run.stderr:
            problems.append(f"{marker} in stderr")
    if run.rc != 1:
        problems.append(f"exit status {run.rc} (expected 1: some inputs are bad)")
    if run.maxrss_kb > RSS_LIMIT_KB:
        problems.append(f"peak RSS {run.maxrss_kb // 1024} MB > {RSS_LIMIT_KB // 1024} MB")
    # Per input, with --verbose: "ok PATH -> ...", "skip PATH: why", or one error line
    # "TOOL: PATH: reason". (Warnings, e.g. two boundary cuts of one sample sharing a SOP
    # Instance UID, are neither.)
    lines = [x for x in run.stderr.splitlines() if ": warning: " not in x]
    failed, written = set(), 0
    for rel, must_fail in sorted(cases.items()):
        path = os.path.join(run.inp, rel)
        errors = [x for x in lines if x.startswith(f"{run.tool}: {path}: ")]
        ok = [x for x in lines if f" ok {path} -> " in x]
        skipped = [x for x in lines if f" skip {path}: " in x]
        if len(errors) + len(ok) + len(skipped) != 1:
            problems.append(f"{rel}: {len(errors)} error, {len(ok)} ok and {len(skipped)} skip "
                            f"lines (expected one line): {(errors + ok + skipped)[:3]}")
        if errors:
            failed.add(rel)
            reason = errors[0][len(f"{run.tool}: {path}: "):]
            if len(reason) < 8:
                problems.append(f"{rel}: no reason given: {errors[0]!r}")
            if "out of memory" in reason:
                problems.append(f"{rel}: refused only when memory ran out: {errors[0]!r}")
        elif must_fail:
            problems.append(f"{rel}: {'skipped' if skipped else 'accepted'} (expected a clear "
                            "error)")
        written += bool(ok)
    for rel in good:
        path = os.path.join(run.inp, rel)
        if not any(f" ok {path} -> " in x for x in lines):
            problems.append(f"good file {rel} beside a hostile one was not written")
    # outputs: one de-identified file per accepted input, nothing else, no PHI
    dcm, other = [], []
    for rel in dt.files_under(run.out):
        base = os.path.basename(rel)
        if base.startswith(".") or "tmp" in base.lower() or base.endswith("~"):
            problems.append(f"temporary file left: {rel}")
        elif base.endswith(".dcm"):
            dcm.append(rel)
        else:
            other.append(rel)
    if len(dcm) != written + len(good):
        problems.append(f"{len(dcm)} DICOM outputs for {written + len(good)} inputs written")
    for rel in dcm:
        with open(os.path.join(run.out, rel), "rb") as f:
            data = f.read().upper()
        leaked = [p for p in phi if p.upper() in data]
        if leaked:
            problems.append(f"output {rel} holds PHI {leaked}")
    return problems, failed


# ---- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def work():
    if not any(tool_path(t) for t in TOOLS):
        pytest.skip("no tool built")
    d = dt.workdir("hostile")
    sample = os.path.join(d, "sample")
    subprocess.run([sys.executable, os.path.join(dt.GENERATORS, "make_phi_corpus.py"), "--sample",
                    "--out", sample], check=True, stderr=subprocess.DEVNULL)
    ct = sorted(os.path.join(sample, r) for r in dt.files_under(sample) if r.endswith(".dcm"))
    clips = os.path.join(d, "clips")
    subprocess.run([sys.executable, os.path.join(dt.GENERATORS, "make_us_clips.py"), "--out", clips,
                    "--count", "1", "--seed", "6", "--sizes", "tiny", "--min-frames", "3",
                    "--max-frames", "3", "--rgb-fraction", "0", "--jobs", "1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    us = sorted(os.path.join(clips, r) for r in dt.files_under(clips) if r.endswith(".dcm"))
    key = dt.write_key(os.path.join(d, "key.hex"))
    return {"dir": d, "ct": ct, "us": us[0], "key": key}


def write_cases(root, cases):
    if os.path.exists(root):
        shutil.rmtree(root)
    for rel, data in cases.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


def truncations(paths, rng, per_file):
    """rel path -> (bytes, must_fail) for every sample cut inside and at boundaries."""
    out = {}
    for i, path in enumerate(paths):
        s = Sample(path)
        inside, bounds = s.cut_points(rng, per_file)
        for n in inside:
            out[f"s{i:02d}/cut_{n:07d}.dcm"] = (s.data[:n], True)
        for n in bounds:
            out[f"s{i:02d}/boundary_{n:07d}.dcm"] = (s.data[:n], False)
    return out


def shared_samples(limit):
    d = dt.shared_data()
    if not d:
        return []
    found = []
    for root, _, names in os.walk(d):
        for n in sorted(names):
            p = os.path.join(root, n)
            if not n.endswith(".dcm") or os.path.getsize(p) > 400_000:
                continue
            try:
                ts = pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID
                Sample(p)
            except Exception:
                continue
            if ts in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1") or ts.startswith("1.2.840.10008.1.2.4"):
                found.append(p)
    found.sort()
    return found[:limit]


# ---- tests --------------------------------------------------------------------------------

def test_truncated_everywhere_header_tool(work):
    """Every sample (3 CT slices, the US clip, up to 12 shared files of every syntax) cut at up
    to 40 points inside its elements and at 6 boundaries: deid-header refuses each inside cut
    with a reason, and what it accepts (a boundary cut) comes out without PHI."""
    if not tool_path("deid-header"):
        pytest.skip("deid-header not built")
    rng = random.Random(20261125)
    paths = work["ct"] + [work["us"]] + shared_samples(12)
    cases = truncations(paths, rng, 40)
    inp = os.path.join(work["dir"], "trunc_in")
    write_cases(inp, {k: v[0] for k, v in cases.items()})
    run = run_tool("deid-header", inp, os.path.join(work["dir"], "trunc_out"), work["key"])
    phi = set()
    for p in work["ct"] + [work["us"]]:
        phi |= phi_strings(p)
    problems, failed = check_run(run, {k: v[1] for k, v in cases.items()}, phi)
    print(f"deid-header: {len(cases)} truncated files from {len(paths)} samples, "
          f"{len(failed)} refused, peak RSS {run.maxrss_kb // 1024} MB")
    assert not problems, "\n".join(problems[:30]) + "\n" + run.explain()


@pytest.mark.parametrize("tool", TOOLS)
def test_hostile_cases(work, tool):
    """The structured hostile cases, built from the US clip (the CT slice for deid-ct), plus a
    dozen truncations, through one tool."""
    if not tool_path(tool):
        pytest.skip(f"{tool} not built")
    base = work["ct"][0] if tool == "deid-ct" else work["us"]
    s = Sample(base)
    cases = {}
    for name, (data, must_fail) in hostile_cases(s).items():
        # deid-ct groups slices into series by folder: one folder per case
        cases[f"{name}/{name}.dcm"] = (data, tool in must_fail)
    rng = random.Random(zlib.crc32(tool.encode()))
    for rel, (data, must_fail) in truncations([base], rng, 12).items():
        cases["trunc/" + rel.replace("/", "_")] = (data, must_fail or tool in PIXEL_TOOLS and
                                                   not rel.split("/")[-1].startswith("boundary"))
    good = {}
    if tool == "deid-ct":
        # deid-ct groups slices into series by folder (and a series under 3 slices is no volume):
        # each case is the hostile slice with the sample's three slices, which must be
        # written whatever becomes of the hostile one.
        cases = {(k if not k.startswith("trunc/") else
                  "trunc_" + os.path.basename(k)[:-4] + "/" + os.path.basename(k)): v
                 for k, v in cases.items()}
        for k in list(cases):
            for i, src in enumerate(work["ct"]):
                with open(src, "rb") as f:
                    good[os.path.join(os.path.dirname(k), f"good_{i}.dcm")] = f.read()
    inp = os.path.join(work["dir"], f"{tool}_in")
    write_cases(inp, dict({k: v[0] for k, v in cases.items()}, **good))
    run = run_tool(tool, inp, os.path.join(work["dir"], f"{tool}_out"), work["key"])
    problems, failed = check_run(run, {k: v[1] for k, v in cases.items()}, phi_strings(base),
                                 sorted(good))
    print(f"{tool}: {len(cases)} hostile files, {len(failed)} refused, "
          f"peak RSS {run.maxrss_kb // 1024} MB")
    assert not problems, "\n".join(problems[:30]) + "\n" + run.explain()
