"""deid-header over the real files of ../shared/data (CT, US, XA, MR, SR, RT, a file without
meta header, JPEG/JPEG 2000/RLE): every file de-identifies, every output is a readable Part 10
file (pydicom, dcmdump), pixel data is byte-identical (only the header is touched, compressed
fragments included), original instance UIDs are gone and references still resolve."""
import os
import shutil
import subprocess

import pydicom
import pytest

import deidtest as dt
from test_dciodvfy import copy_shared


@pytest.fixture(scope="module")
def run():
    root = dt.require_shared_data()
    work = dt.workdir("shared_data")
    inp = os.path.join(work, "in")
    files = copy_shared(root, inp)
    key = dt.write_key(os.path.join(work, "key.hex"))
    r = dt.run_tool(inp, os.path.join(work, "out"), os.path.join(work, "headers"), key=key)
    r.inp, r.files = inp, files
    r.pairs, r.pair_problems = dt.pair_outputs(inp, files, r.out)
    return r


def test_exit_status_ok(run):
    assert run.rc == 0, run.explain()


def test_every_file_has_an_output(run):
    assert not run.pair_problems, "\n".join(run.pair_problems) + "\n" + run.explain()


def test_outputs_readable_by_pydicom(run):
    problems = []
    for rel, out in sorted(run.pairs.items()):
        if not out:
            continue
        try:   # force=False: a proper Part 10 file (preamble, DICM, meta), even when the
            ds = pydicom.dcmread(os.path.join(run.out, out))   # input had no meta header
            for _ in ds.iterall():
                pass
            if "PixelData" in ds and not ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.pixel_array   # native pixel data must have the right length
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            problems.append(f"{rel} -> {out}: {type(e).__name__}: {e}")
    assert not problems, "\n".join(problems)


def test_outputs_readable_by_dcmdump(run):
    if shutil.which("dcmdump") is None:
        pytest.skip("dcmdump (dcmtk) is not installed")
    problems = []
    for rel, out in sorted(run.pairs.items()):
        if not out:
            continue
        p = subprocess.run(["dcmdump", "-q", os.path.join(run.out, out)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        err = [x for x in p.stderr.decode("latin-1").splitlines() if x.startswith(("E:", "F:"))]
        if p.returncode != 0 or err:
            problems.append(f"{rel} -> {out}: dcmdump exit {p.returncode} {err[:3]}")
    assert not problems, "\n".join(problems)


def test_pixel_data_byte_identical(run):
    problems, compared = [], 0
    for rel, out in sorted(run.pairs.items()):
        if not out:
            continue
        a, enc_a = dt.pixel_value(os.path.join(run.inp, rel))
        b, enc_b = dt.pixel_value(os.path.join(run.out, out))
        if a is None:
            continue
        compared += 1
        if b is None:
            problems.append(f"{rel}: Pixel Data missing in the output")
        elif enc_a != enc_b:
            problems.append(f"{rel}: encapsulation changed ({enc_a} -> {enc_b})")
        elif enc_a:
            fa, fb = dt.fragments(a)[1:], dt.fragments(b)[1:]   # after the offset table
            if fa != fb:
                diff = next((i for i, (x, y) in enumerate(zip(fa, fb)) if x != y), None)
                problems.append(f"{rel}: encapsulated fragments differ ({len(fa)} -> {len(fb)} "
                                f"fragments, first difference at fragment {diff})")
        elif a != b:
            problems.append(f"{rel}: native Pixel Data differs ({len(a)} -> {len(b)} bytes)")
    assert compared, "no pixel data compared"
    assert not problems, "\n".join(problems)


def uid_index(root, rels):
    """Original instance-level UIDs: {uid: (rel, tag)} for SOP/Series/Study/FrameOfReference."""
    idx = {}
    for rel in rels:
        ds = pydicom.dcmread(os.path.join(root, rel), force=True, stop_before_pixels=True)
        for kw, tag in (("SOPInstanceUID", 0x00080018), ("SeriesInstanceUID", 0x0020000E),
                        ("StudyInstanceUID", 0x0020000D), ("FrameOfReferenceUID", 0x00200052)):
            v = str(ds.get(kw, "") or "")
            if v:
                idx.setdefault(v, (rel, tag))
    return idx


def test_original_uids_gone(run):
    idx = uid_index(run.inp, run.files)
    problems = []
    for rel, out in sorted(run.pairs.items()):
        if not out:
            continue
        with open(os.path.join(run.out, out), "rb") as f:
            data = f.read()
        for uid, (src, tag) in idx.items():
            if len(uid) > 12 and uid.encode() in data:
                problems.append(f"{rel}: original UID ({tag >> 16:04X},{tag & 0xFFFF:04X}) of "
                                f"{src} still present")
    assert not problems, "\n".join(problems[:40])


def test_references_resolve(run):
    """Every UID in an input that names another input's SOP instance, series, study or frame of
    reference becomes, in the output (same element path), that output's new UID."""
    idx = uid_index(run.inp, run.files)
    new_ids, problems, checked = {}, [], 0
    for rel, out in run.pairs.items():
        if out:
            new_ids[rel] = pydicom.dcmread(os.path.join(run.out, out), stop_before_pixels=True)
    for rel, out in sorted(run.pairs.items()):
        if not out:
            continue
        src = pydicom.dcmread(os.path.join(run.inp, rel), force=True, stop_before_pixels=True)
        dst = new_ids[rel]
        for path, tag, vr, value in dt.walk_values(src):
            if vr != "UI" or len(path) == 1 or str(value) not in idx:
                continue
            target, target_tag = idx[str(value)]
            got = dt.element_at(dst, list(path))
            if got is None or target not in new_ids:
                continue   # the sequence was removed by the profile: nothing to resolve
            checked += 1
            want = str(new_ids[target].get(target_tag).value)
            if str(got) != want:
                problems.append(f"{rel}: {'/'.join(map(str, path))} = {got}, {target} has "
                                f"{want}")
    assert checked, "no cross-file reference found to check"
    assert not problems, "\n".join(problems[:40])
