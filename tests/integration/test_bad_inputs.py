"""Bad inputs among good ones: deid-header reports each bad file once, by name, de-identifies
the good files, exits 1, and leaves no partial or temporary file behind. An output directory
that cannot be created is a clear error, not a crash."""
import csv
import os
import shutil
import struct
import subprocess
import sys
import zlib

import pydicom
import pytest

import deidtest as dt


def png_bytes(w=8, h=8):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\0" + bytes(range(w)) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def cut_points(data):
    """Named offsets at which a good explicit-VR file is cut."""
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")
    name = data.find(b"\x10\x00\x10\x00")               # (0010,0010) Patient's Name
    pixels = data.rfind(b"\xe0\x7f\x10\x00")             # (7FE0,0010) Pixel Data
    return {"preamble": 64, "magic": 132, "meta": 132 + (meta_end - 132) // 2,
            "element": name + 10, "pixelheader": pixels + 6,
            "pixels": pixels + 12 + (len(data) - pixels - 12) // 2}


@pytest.fixture(scope="module")
def tree():
    dt.require_tool()
    work = dt.workdir("bad_inputs")
    sample = os.path.join(work, "sample")
    subprocess.run([sys.executable, os.path.join(dt.GENERATORS, "make_phi_corpus.py"), "--sample",
                    "--out", sample], check=True, stderr=subprocess.DEVNULL)
    samples = [os.path.join(sample, r) for r in dt.files_under(sample)]
    inp = os.path.join(work, "in")
    os.makedirs(os.path.join(inp, "sub"))
    good = {}
    for i, src in enumerate(samples):
        rel = f"good_{i + 1}.dcm" if i < 2 else f"sub/good_{i + 1}.dcm"
        shutil.copy(src, os.path.join(inp, rel))
        good[rel] = src
    with open(samples[0], "rb") as f:
        data = f.read()
    bad = {"empty.dcm": b"", "notes.txt": b"Patient list, not DICOM\n", "picture.png": png_bytes(),
           "sub/text_named.dcm": b"This is not DICOM either.\n" * 20}
    for label, n in cut_points(data).items():
        bad[f"cut_at_{label}.dcm"] = data[:n]
    for rel, content in bad.items():
        with open(os.path.join(inp, rel), "wb") as f:
            f.write(content)
    locked = None
    if os.geteuid() != 0:   # root reads a chmod 000 folder or file anyway
        locked = os.path.join(inp, "locked_dir")
        os.makedirs(locked)
        shutil.copy(samples[0], os.path.join(locked, "hidden.dcm"))
        os.chmod(locked, 0)
        shutil.copy(samples[0], os.path.join(inp, "unreadable.dcm"))
        os.chmod(os.path.join(inp, "unreadable.dcm"), 0)
        bad["unreadable.dcm"] = None
    key = dt.write_key(os.path.join(work, "key.hex"))
    run = dt.run_tool(inp, os.path.join(work, "out"), os.path.join(work, "headers"), key=key)
    if locked:
        os.chmod(locked, 0o755)
    run.inp, run.good, run.bad, run.locked, run.work, run.key = inp, good, bad, locked, work, key
    return run


def test_exit_status_is_1(tree):
    assert tree.rc == 1, tree.explain()


def test_one_error_line_per_bad_file(tree):
    lines = tree.console.decode("utf-8", errors="replace").splitlines()
    names = [os.path.basename(r) for r in tree.bad] + (["locked_dir"] if tree.locked else [])
    problems = []
    for name in names:
        hits = [x for x in lines if name in x]
        if len(hits) != 1:
            problems.append(f"{name}: {len(hits)} lines name it (expected 1): {hits[:4]}")
        elif len(hits[0].replace(name, "").strip(" :-/.")) < 8:
            problems.append(f"{name}: the line gives no reason: {hits[0]!r}")
    for rel in tree.good:
        name = os.path.basename(rel)
        errs = [x for x in lines if name in x and "error" in x.lower()]
        if errs:
            problems.append(f"good file {name} reported as an error: {errs}")
    assert not problems, "\n".join(problems) + "\n" + tree.explain()


def test_good_files_done(tree):
    pairs, problems = dt.pair_outputs(tree.inp, list(tree.good), tree.out)
    assert not problems, "\n".join(problems) + "\n" + tree.explain()
    for rel, out in pairs.items():
        ds = pydicom.dcmread(os.path.join(tree.out, out))
        assert str(ds.get("PatientIdentityRemoved", "")) == "YES", rel


def test_no_partial_or_temporary_files(tree):
    problems = []
    dcm = []
    for rel in dt.files_under(tree.out):
        path = os.path.join(tree.out, rel)
        if not dt.OUTPUT_NAME.match(os.path.basename(rel)):
            problems.append(f"output tree: unexpected file {rel}")
        elif os.path.getsize(path) < 132:
            problems.append(f"output tree: {rel} is only {os.path.getsize(path)} bytes")
        else:
            dcm.append(rel)
    if len(dcm) != len(tree.good):
        problems.append(f"{len(dcm)} outputs for {len(tree.good)} good inputs: {dcm}")
    for rel in dt.files_under(tree.headers):
        base = os.path.basename(rel)
        if base == "keys.csv" or base.endswith(".log"):
            continue
        if not base.endswith("_DICOMHeader.json"):
            problems.append(f"headers: unexpected file {rel}")
        elif rel[:-len("_DICOMHeader.json")] + ".dcm" not in dcm:
            problems.append(f"headers: {rel} has no DICOM output beside it")
    assert not problems, "\n".join(problems)


def test_keys_csv_lists_only_good_files(tree):
    path = os.path.join(tree.headers, "keys.csv")
    assert os.path.isfile(path), "keys.csv missing"
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    has_header = bool(rows) and not any(ch.isdigit() for cell in rows[0] for ch in cell)
    assert len(rows) - has_header == len(tree.good), rows


def test_unwritable_output_directory(tree):
    blocker = os.path.join(tree.work, "blocker.txt")
    with open(blocker, "w") as f:
        f.write("a regular file where a directory is needed\n")
    for out, hdr in ((os.path.join(blocker, "out"), os.path.join(tree.work, "h2")),
                     (os.path.join(tree.work, "o3"), os.path.join(blocker, "headers"))):
        run = dt.run_tool(tree.inp, out, hdr, key=tree.key, timeout=60)
        text = run.console.decode("utf-8", errors="replace")
        assert run.rc == 1, run.explain()
        assert "blocker.txt" in text, "the message does not name the path:\n" + run.explain()
        assert "Segmentation" not in text and "Traceback" not in text, run.explain()


def test_missing_input(tree):
    missing = os.path.join(tree.work, "no_such_dir")
    run = dt.run_tool(missing, os.path.join(tree.work, "o4"), os.path.join(tree.work, "h4"),
                      key=tree.key, timeout=60)
    assert run.rc == 1, run.explain()
    assert "no_such_dir" in run.console.decode("utf-8", errors="replace"), run.explain()
