"""deid-ocr end to end on 40 generated images (tests/generators/make_text_images.py: DICOM 8/16-bit,
RGB, multi-frame and with an overlay plane; PNG, JPEG, TIFF, BMP):

- --redact all finds >= 90% of the burned-in text boxes (the 300-image targets are for
  tests/bench/ocr/eval_corpus.py), --redact phi >= 95% of the names, IDs and dates;
- no PHI string (names, IDs, dates) is in stdout, stderr, the --log file, any _text.json or
  review.csv unless --report-text is given, and it is there with it;
- --redact none writes a review.csv row per region found;
- outputs keep their format (PNG stays PNG...); DICOM outputs have no overlay group (60xx) and
  Burned In Annotation is NO exactly when every region found was redacted;
- a truncated PNG, an empty .png file and a DICOM file without pixels each get a one-line error
  naming the file, the other files are still processed, and the exit status is 1.

Run by ctest (exit 77 when deid-ocr is not built, was built without Tesseract, or numpy, pydicom
or PIL is missing), or by hand:
  DEID_BUILD_DIR=build /usr/bin/python3 -m pytest -q -s tests/integration/test_deid_ocr.py
"""
import csv
import glob
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
GENERATOR = os.path.join(SOURCE_DIR, "tests", "generators", "make_text_images.py")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "bench", "ocr"))
GEN_ARGS = ["--count", "40", "--seed", "11", "--size", "512x512", "--jobs", "2"]
MAGIC = {".png": (b"\x89PNG",), ".jpg": (b"\xff\xd8",), ".tif": (b"II*\0", b"MM\0*"),
         ".bmp": (b"BM",)}
# Regression floors on these 40 images, below what the engine measures on them today (region
# 0.92, PHI 0.92); the targets (0.95 and 0.98 on 300 images) are measured by
# tests/bench/ocr/eval_corpus.py and are not met yet.
RECALL, PHI_RECALL = 0.90, 0.90

try:
    import eval_corpus   # tests/bench/ocr: the scoring shared with the 300-image evaluation
except ImportError:      # numpy missing: the fixture skips
    eval_corpus = None


def missing_modules():
    out = []
    for m in ("numpy", "pydicom", "PIL.Image"):
        try:
            __import__(m)
        except ImportError:
            out.append(m)
    return out


def tool():
    t = os.path.join(os.environ.get("DEID_TOOLS_DIR") or os.path.join(BUILD_DIR, "tools"),
                     "deid-ocr")
    return t if os.access(t, os.X_OK) else None


try:  # the helpers every integration test shares (deidtest needs pydicom)
    from deidtest import workdir, write_key
except ImportError:  # pydicom missing: the fixture skips before they are needed
    workdir = write_key = None


class Run(eval_corpus.Run if eval_corpus else object):
    """One deid-ocr run: console, log, reports, outputs (report_of, output_of: eval_corpus)."""

    def __init__(self, root, name, inp, *options, phi_file=None):
        d = os.path.join(root, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        self.images = inp
        self.out, self.hdr, self.log = (os.path.join(d, "out"), os.path.join(d, "hdr"),
                                        os.path.join(d, "log.txt"))
        self.args = [tool(), inp, self.out, self.hdr, "--key", write_key(os.path.join(d, "key")),
                     "--workers", "2", "--log", self.log] + list(options)
        if phi_file:
            self.args += ["--phi-file", phi_file]
        p = subprocess.run(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=600)
        self.rc, self.stdout, self.stderr = (p.returncode, p.stdout.decode(errors="replace"),
                                             p.stderr.decode(errors="replace"))
        self.outputs = self._dicom_outputs()

    def explain(self):
        return f"{' '.join(self.args)}\nexit {self.rc}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"

    def reports(self):
        return sorted(glob.glob(os.path.join(self.hdr, "**", "*_text.json"), recursive=True))

    def review_rows(self):
        path = os.path.join(self.hdr, "review.csv")
        if not os.path.exists(path):
            return None
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def texts(self):
        """(where, text) of everything that must not hold PHI without --report-text."""
        out = [("stdout", self.stdout), ("stderr", self.stderr)]
        for p in [self.log] + self.reports() + [os.path.join(self.hdr, "review.csv")]:
            if os.path.exists(p):
                with open(p, encoding="utf-8", errors="replace") as f:
                    out.append((os.path.relpath(p, os.path.dirname(self.out)), f.read()))
        return out


def probe_tesseract(root):
    """Skip when deid-ocr runs but was built without Tesseract."""
    if os.environ.get("DEID_HAVE_TESSERACT") == "0":
        pytest.skip("libdeid was built without Tesseract")
    d = os.path.join(root, "probe")
    os.makedirs(d)
    from PIL import Image
    Image.new("L", (64, 32), 0).save(os.path.join(d, "blank.png"))
    r = Run(root, "probe-run", d)
    if r.rc != 0 and re.search(r"tesseract|unsupported", r.stderr, re.I):
        pytest.skip("deid-ocr has no Tesseract: " + r.stderr.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def corpus():
    miss = missing_modules() + ([] if eval_corpus else ["tests/bench/ocr/eval_corpus"])
    if miss:
        pytest.skip("missing Python modules: " + ", ".join(miss))
    if tool() is None:
        pytest.skip("deid-ocr is not built")
    root = workdir("deid_ocr")
    probe_tesseract(root)
    gen = os.path.join(root, "gen")
    p = subprocess.run([sys.executable, GENERATOR, "--out", gen] + GEN_ARGS,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout
    return root, gen, eval_corpus.load_truth(gen)


@pytest.fixture(scope="module")
def run_all(corpus):
    root, gen, _ = corpus
    return Run(root, "all", os.path.join(gen, "images"), "--redact", "all",
               phi_file=os.path.join(gen, "phi.txt"))


@pytest.fixture(scope="module")
def run_phi(corpus):
    root, gen, _ = corpus
    return Run(root, "phi", os.path.join(gen, "images"), "--redact", "phi",
               phi_file=os.path.join(gen, "phi.txt"))


@pytest.fixture(scope="module")
def subset(corpus):
    """8 of the images (both DICOM and rasters) for the report-only runs."""
    root, gen, truths = corpus
    d = os.path.join(root, "subset")
    for t in truths[:8]:
        os.makedirs(os.path.join(d, os.path.dirname(t["file"])), exist_ok=True)
        shutil.copy(os.path.join(gen, "images", t["file"]), os.path.join(d, t["file"]))
    return d


def phi_patterns(truths):
    """Regexes of every PHI value burned into the corpus: name parts, IDs, dates as written
    and as DICOM dates (digits not inside a longer number or a decimal)."""
    words, numbers = set(), set()
    for t in truths:
        p = t["patient"]
        words.update(part for part in re.split(r"[\^ ,]+", p["pn"]) if len(part) >= 4)
        words.update([p["id"], p["accession"]])
        numbers.update([p["birth"], p["study"]])
        for it in t["items"]:
            if it["kind"] == "date":
                numbers.add(re.sub(r"^(DOB:?|Born|Study:|Date:)\s*", "", it["text"]))
    pats = [re.compile(r"(?<![0-9A-Za-z.])" + re.escape(w) + r"(?![0-9A-Za-z])", re.I)
            for w in sorted(words)]
    pats += [re.compile(r"(?<![0-9.])" + re.escape(n) + r"(?![0-9])", re.I)
             for n in sorted(numbers)]
    return pats


def phi_hits(texts, pats):
    hits = []
    for where, text in texts:
        for p in pats:
            m = p.search(text)
            if m:
                hits.append(f"{where}: ...{text[max(0, m.start() - 20):m.end() + 20]!r}...")
    return hits


def refused(run):
    """Base names of the inputs refused by the residual check (nothing written for them)."""
    return {os.path.basename(m.group(1)) for m in
            re.finditer(r"^deid-ocr: (.+?): .*residual", run.stderr, re.M)}


def score_written(run, truths):
    """eval_corpus.Score over the files not refused by the residual check (at most 10% may
    be: the residual check is a safety net, not the way text gets redacted)."""
    gone = refused(run)
    assert len(gone) <= 0.1 * len(truths), f"{len(gone)} files refused\n" + run.explain()
    return eval_corpus.Score(run, [t for t in truths
                                   if os.path.basename(t["file"]) not in gone])


def failed_lines(run):
    """stderr lines about failed files, other than refusals by the residual check."""
    return [ln for ln in run.stderr.splitlines()
            if ln.strip() and not re.search(r"residual", ln, re.I)]


def test_region_recall(corpus, run_all):
    _, _, truths = corpus
    assert run_all.rc == 0 or not failed_lines(run_all), run_all.explain()
    s = score_written(run_all, truths)
    assert not s.missing_reports, f"no _text.json for {s.missing_reports}\n" + run_all.explain()
    rec, n = s.recall()
    over = eval_corpus.summary_over(s)
    print(f"\ndeid-ocr --redact all: region recall {rec:.3f} over {n} boxes, over-redaction "
          f"mean {100 * over['mean']:.2f}% max {100 * over['max']:.2f}%")
    for t, it, c in s.misses()[:15]:
        print(f"  miss {t['file']} {it['box']} {it['kind']} {it['size']}px "
              f"contrast {it['contrast']} covered {100 * c:.0f}%")
    assert rec >= RECALL, f"region recall {rec:.3f} < {RECALL}"


def test_phi_recall(corpus, run_phi):
    _, _, truths = corpus
    assert run_phi.rc == 0 or not failed_lines(run_phi), run_phi.explain()
    s = score_written(run_phi, truths)
    rec, n = s.recall(lambda t, it: it["is_phi"])
    ann, nann = s.recall(lambda t, it: it["kind"] == "annotation", eval_corpus.ANNOT_HIT)
    print(f"\ndeid-ocr --redact phi: PHI recall {rec:.3f} over {n} boxes, annotations redacted "
          f"{100 * ann:.1f}% of {nann}")
    assert rec >= PHI_RECALL, f"PHI recall {rec:.3f} < {PHI_RECALL}"


def test_no_phi_in_reports_or_console(corpus, run_all, run_phi):
    _, _, truths = corpus
    pats = phi_patterns(truths)
    hits = phi_hits(run_all.texts(), pats) + phi_hits(run_phi.texts(), pats)
    assert not hits, "PHI in reports or console:\n" + "\n".join(hits[:10])


def test_review_csv_without_and_with_text(corpus, subset):
    root, _, truths = corpus
    pats = phi_patterns(truths)
    plain = Run(root, "none", subset, "--redact", "none")
    assert plain.rc == 0 or not failed_lines(plain), plain.explain()
    rows = plain.review_rows()
    assert rows is not None, "no review.csv\n" + plain.explain()
    regions = 0
    for p in plain.reports():
        with open(p, encoding="utf-8") as f:
            regions += sum(1 for r in json.load(f)["regions"] if r["decision"] == "review")
    assert regions > 0, "--redact none found no text in 8 images"
    assert len(rows) == regions, f"{len(rows)} review.csv rows for {regions} review regions"
    with open(os.path.join(plain.hdr, "review.csv"), encoding="utf-8") as f:
        header = f.readline().strip()
    assert header == "output_path,frame,source,x,y,w,h,confidence,reason,text"
    assert all(not r["text"] for r in rows), "review.csv has text without --report-text"
    hits = phi_hits(plain.texts(), pats)
    assert not hits, "PHI without --report-text:\n" + "\n".join(hits[:10])

    told = Run(root, "none-text", subset, "--redact", "none", "--report-text")
    assert told.rc == 0 or not failed_lines(told), told.explain()
    rows = told.review_rows()
    assert rows and any(r["text"] for r in rows), "--report-text left review.csv's text empty"
    csv_hits = phi_hits([("review.csv", "\n".join(r["text"] for r in rows))], pats)
    json_hits = phi_hits([(p, open(p, encoding="utf-8").read()) for p in told.reports()], pats)
    assert csv_hits and json_hits, "--report-text: no PHI read back in review.csv or _text.json"


def magic_ok(path, ext):
    with open(path, "rb") as f:
        head = f.read(4)
    return any(head.startswith(m) for m in MAGIC[ext])


def test_formats_and_dicom_bookkeeping(corpus, run_all):
    import pydicom
    _, _, truths = corpus
    problems = []
    for t in truths:
        out = run_all.output_of(t)
        rep = run_all.report_of(t)
        if out is None:
            if os.path.basename(t["file"]) in refused(run_all):
                continue                  # refused by the residual check: nothing written
            problems.append(f"{t['file']}: no output")
            continue
        ext = os.path.splitext(t["file"])[1]
        if ext != ".dcm":
            if not out.endswith(ext) or not magic_ok(out, ext):
                problems.append(f"{t['file']}: output {out} is not {ext}")
            continue
        ds = pydicom.dcmread(out, stop_before_pixels=True)
        groups = sorted({e.tag.group for e in ds if 0x6000 <= e.tag.group <= 0x60FF})
        if groups:
            problems.append(f"{t['file']}: overlay groups {[hex(g) for g in groups]} kept")
        every = all(r["decision"] == "redacted" for r in rep["regions"]) if rep else None
        want = "NO" if every else "YES"
        if ds.get("BurnedInAnnotation") != want:
            problems.append(f"{t['file']}: BurnedInAnnotation {ds.get('BurnedInAnnotation')!r}"
                            f", expected {want} ({len(rep['regions'])} regions)")
        if ds.Rows != t["rows"] or ds.Columns != t["cols"]:
            problems.append(f"{t['file']}: size changed")
    assert not problems, "\n".join(problems)


def test_bad_inputs_fail_one_line_each(corpus):
    import pydicom
    root, gen, truths = corpus
    d = os.path.join(root, "bad-in")
    os.makedirs(d)
    good = [t for t in truths if t["file"].endswith(".png")][:1] + \
        [t for t in truths if t["format"] == "dicom8"][:1]
    for t in good:
        shutil.copy(os.path.join(gen, "images", t["file"]), d)
    png = [t for t in truths if t["file"].endswith(".png")][0]
    with open(os.path.join(gen, "images", png["file"]), "rb") as f:
        data = f.read()
    with open(os.path.join(d, "truncated.png"), "wb") as f:
        f.write(data[:len(data) // 3])
    open(os.path.join(d, "empty.png"), "wb").close()
    dcm = [t for t in truths if t["file"].endswith(".dcm")][0]
    ds = pydicom.dcmread(os.path.join(gen, "images", dcm["file"]))
    del ds.PixelData
    ds.save_as(os.path.join(d, "nopixels.dcm"))
    r = Run(root, "bad", d)
    assert r.rc == 1, r.explain()
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    for bad in ("truncated.png", "empty.png", "nopixels.dcm"):
        named = [ln for ln in lines if bad in ln]
        assert len(named) == 1, f"{bad}: expected one error line naming it\n" + r.explain()
    outs = glob.glob(os.path.join(r.out, "**", "*"), recursive=True)
    assert any(o.endswith(".png") for o in outs), "the good PNG was not written\n" + r.explain()
    assert any(o.endswith(".dcm") for o in outs), "the good DICOM was not written\n" + r.explain()
