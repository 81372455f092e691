"""--resume-anonymization redoes only the files whose output is missing: the others are not
rewritten, and keys.csv keeps exactly one row per file."""
import csv
import os
import time

import pytest

import deidtest as dt


def snapshot(root):
    out = {}
    for rel in dt.files_under(root):
        st = os.stat(os.path.join(root, rel))
        out[rel] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def key_rows(headers):
    with open(os.path.join(headers, "keys.csv"), newline="") as f:
        rows = [tuple(r) for r in csv.reader(f) if r]
    has_header = bool(rows) and not any(ch.isdigit() for cell in rows[0] for ch in cell)
    return rows[1:] if has_header else rows


@pytest.fixture(scope="module")
def first():
    dt.require_tool()
    work = dt.workdir("resume")
    corpus, manifest = dt.make_corpus(work)
    key = dt.write_key(os.path.join(work, "key.hex"))
    out, hdr = os.path.join(work, "out"), os.path.join(work, "headers")
    run = dt.run_tool(corpus, out, hdr, key=key)
    assert run.rc == 0, run.explain()
    run.corpus, run.manifest, run.key = corpus, manifest, key
    return run


def resume(first):
    return dt.run_tool(first.corpus, first.out, first.headers, "--resume-anonymization",
                       key=first.key)


def test_first_run_complete(first):
    outs = [r for r in dt.files_under(first.out) if r.endswith(".dcm")]
    assert len(outs) == len(first.manifest["files"])
    assert len(key_rows(first.headers)) == len(first.manifest["files"])


def test_resume_redoes_only_missing_outputs(first):
    outs = [r for r in dt.files_under(first.out) if r.endswith(".dcm")]
    deleted = outs[::7]   # a few, spread over the tree
    for rel in deleted:
        os.remove(os.path.join(first.out, rel))
    before_out, before_hdr = snapshot(first.out), snapshot(first.headers)
    time.sleep(0.05)   # so a rewrite shows in st_mtime_ns even on coarse clocks
    run = resume(first)
    assert run.rc == 0, run.explain()
    after_out, after_hdr = snapshot(first.out), snapshot(first.headers)
    problems = [f"{rel}: not redone" for rel in deleted if rel not in after_out]
    problems += [f"{rel}: rewritten although its output existed" for rel, s in before_out.items()
                 if after_out.get(rel) != s]
    problems += [f"{rel}: new unexpected output" for rel in after_out
                 if rel not in before_out and rel not in deleted]
    untouched_json = [r for r in before_hdr if r.endswith("_DICOMHeader.json")
                      and r[:-len("_DICOMHeader.json")] + ".dcm" not in deleted]
    problems += [f"headers/{rel}: rewritten although its output existed"
                 for rel in untouched_json if after_hdr.get(rel) != before_hdr[rel]]
    assert not problems, "\n".join(problems) + "\n" + run.explain()
    rows = key_rows(first.headers)
    assert len(rows) == len(first.manifest["files"]), f"{len(rows)} rows in keys.csv"
    assert len(set(rows)) == len(rows), "duplicate rows in keys.csv"


def test_resume_with_nothing_to_do(first):
    before = snapshot(first.out)
    run = resume(first)
    assert run.rc == 0, run.explain()
    assert snapshot(first.out) == before
    rows = key_rows(first.headers)
    assert len(rows) == len(first.manifest["files"]) and len(set(rows)) == len(rows)
