"""De-identification must not break IOD conformance: dciodvfy (dicom3tools) reports no Error
for an output that it did not already report for the input, for the synthetic corpus and for
every DICOM file of ../shared/data."""
import concurrent.futures
import os
import re
import shutil
import subprocess

import pytest

import deidtest as dt

# Values inside messages change legitimately (UIDs, names, dates): compare messages without them.
_VALUE = [(re.compile(r" = <[^>]*>"), " = <>"), (re.compile(r"value <[^>]*>"), "value <>"),
          (re.compile(r"\[\d+\]"), "[]")]


def normalise(line):
    for rx, repl in _VALUE:
        line = rx.sub(repl, line)
    return line.strip()


def errors_of(path):
    proc = subprocess.run(["dciodvfy", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=300)
    text = proc.stdout.decode("latin-1")
    return {normalise(x) for x in text.splitlines() if x.startswith("Error")}


def new_errors(pairs, in_root, out_root):
    """{input rel: sorted new Error lines} for each pair whose output gained errors."""
    todo = [(rel, out) for rel, out in pairs.items() if out]
    result = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        futures = {(rel, out): (ex.submit(errors_of, os.path.join(in_root, rel)),
                                ex.submit(errors_of, os.path.join(out_root, out)))
                   for rel, out in todo}
        for (rel, out), (fin, fout) in futures.items():
            extra = fout.result() - fin.result()
            if extra:
                result[rel] = sorted(extra)
    return result


def report(new):
    lines = []
    for rel, errs in sorted(new.items()):
        lines.append(f"{rel}:")
        lines += [f"    {e}" for e in errs]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def work():
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    return dt.workdir("dciodvfy")


def test_corpus_outputs_conform(work):
    corpus, manifest = dt.make_corpus(work)
    key = dt.write_key(os.path.join(work, "key.hex"))
    run = dt.run_tool(corpus, os.path.join(work, "out"), os.path.join(work, "headers"), key=key)
    assert run.rc == 0, run.explain()
    pairs, problems = dt.pair_outputs(corpus, list(manifest["files"]), run.out)
    assert not problems, "\n".join(problems)
    new = new_errors(pairs, corpus, run.out)
    assert not new, "dciodvfy errors introduced by de-identification:\n" + report(new)


def shared_dicom_files(root):
    """DICOM files of ../shared/data (everything but the profile tables and documentation)."""
    skip_ext = (".json", ".md", ".tsv", ".csv", ".txt")
    return [r for r in dt.files_under(root)
            if not r.startswith("profile/") and not r.lower().endswith(skip_ext)]


def copy_shared(root, dest):
    files = shared_dicom_files(root)
    for rel in files:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(os.path.join(root, rel), os.path.join(dest, rel))
    return files


def test_shared_data_outputs_conform(work):
    root = dt.require_shared_data()
    inp = os.path.join(work, "shared_in")
    files = copy_shared(root, inp)
    key = dt.write_key(os.path.join(work, "key_shared.hex"))
    run = dt.run_tool(inp, os.path.join(work, "shared_out"), os.path.join(work, "shared_hdr"),
                      key=key)
    pairs, problems = dt.pair_outputs(inp, files, run.out)
    new = new_errors(pairs, inp, run.out)
    msg = []
    if run.rc != 0:
        msg.append(run.explain())
    if problems:
        msg.append("\n".join(problems))
    if new:
        msg.append("dciodvfy errors introduced by de-identification:\n" + report(new))
    assert not msg, "\n".join(msg)
