"""No PHI in logs, errors, progress lines or reports, and keys kept private (issue 6, part 5).

Inputs carry distinctive injected PHI: Patient's Name, Patient ID, Other Patient IDs, birth
date, Accession Number, Institution Name, Referring Physician's Name, a Study Description that
holds the name, a private block with the name and the birth date, and sequence items holding
the ID; one file per tool has the PHI in odd forms too (a Patient's Name that is not valid
UTF-8 under ISO_IR 192, a birth date written with VR PN as "1951-08-29", a Patient ID with VR
DA, an Accession Number with VR UN). Each tool runs on its own generated inputs:

- deid-header: the PHI corpus (tests/generators/make_phi_corpus.py) plus injected samples;
- deid-us: clips of tests/generators/make_us_clips.py with the PHI injected;
- deid-ocr: a DICOM image and a PNG (with a tEXt chunk) showing the PHI as burned-in text,
  plus --phi-file (skipped without Tesseract);
- deid-ct: a head phantom series (tests/generators/make_head_phantom.py) with the PHI;

and every tool also gets BAD files holding the PHI: one cut right after the Patient's Name
value (a complete data set without pixels), one cut inside that value, one without Pixel Data,
one with Rows and Columns of 65535. Each tool runs verbose with --log (pipes), verbose under a
pseudo-terminal (progress bar on), quiet, and with its report options (overview PNGs, mask
JSONs, QC renders, NIfTI/NRRD, review.csv, text reports, deid-ct --keep-headers). Then stdout,
stderr, the log and every file the tool wrote (de-identified DICOM included) except keys.csv
(the crosswalk: PHI by design) are searched, case-insensitively, for every injected string and
its DICOM-formatted variants (name parts, "1951-08-29", "29.08.1951"...) and for original UIDs;
gzip files and PNG text chunks are searched decompressed. deid-ocr --report-text asks for the
text read: its _text.json files and review.csv are then exempt, its console and log are not;
deid-ct --keep-headers keeps the header: its DICOM and header JSONs are exempt, and its
original UIDs may be named.

Also searched: the Python binding's exception for bad files (bindings/python/deid) and the
messages of the library's log callback (deid.Batch(log=...): every level, debug included).

Keys: a key file created by --key is mode 0600 under umask 000, 022 and 077, and so is
keys.csv; a key file readable by group or others (0640, 0644, 0604) is refused by every tool
with one line naming the file and its mode, exit status 1 and nothing written.

Input paths are printed as given ("ok <path> -> ..."): the test keeps PHI out of its own folder
names (docs/cli.md says so for users).

Run by ctest (exit 77 when no tool is built or numpy/pydicom is missing), or by hand:
  DEID_BUILD_DIR=build DEID_TOOLS_DIR=build/tools DEID_LIBRARY=build/libdeid/libdeid.so \
  /usr/bin/python3 -m pytest -q -s tests/integration/test_no_phi_logs.py
"""
import gzip
import json
import os
import pty
import re
import select
import shutil
import stat
import subprocess
import sys
import warnings
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("DEID_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("DEID_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
GENERATORS = os.path.join(SOURCE_DIR, "tests", "generators")
BINDINGS = os.path.join(SOURCE_DIR, "bindings", "python")
KEY = "5f1c3a7e9b2d4f6081a3c5e7092b4d6f8a1c3e5079b2d4f6a8c0e2f4b6d8fa1c"

try:
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian
except ImportError:  # the fixtures skip
    pydicom = None

# ---- the injected PHI ---------------------------------------------------------------------

LAST, FIRST = "QUIXWORTH", "ZEBEDIAH"
PATIENT_NAME = f"{LAST}^{FIRST}"
PATIENT_ID = "PHX7734913"
OTHER_ID = "OPX5582641"
BIRTH = "19510829"
ACCESSION = "ACQ9081726"
INSTITUTION = "Quillfeather Memorial Hospital"
REFERRING = "VANTROMP^ISOLDE"
STUDY_DESCRIPTION = "CT head of Zebediah Quixworth, follow-up"
PRIVATE_CREATOR = "LIBDEID PHI TEST"

# Words: case-insensitive, not inside a longer word. Numbers: not inside a longer number or a
# decimal (so that the digits of a 2.25 UID or a pseudonym do not match by chance).
PHI_WORDS = [LAST, FIRST, "Quillfeather", "VANTROMP", "ISOLDE", PATIENT_ID, OTHER_ID, ACCESSION]
PHI_NUMBERS = ["7734913", "5582641", "9081726", BIRTH, "1951-08-29", "1951/08/29", "1951.08.29",
               "29.08.1951", "29/08/1951", "08/29/1951", "29-08-1951", "29-Aug-1951",
               "Aug 29 1951", "29 August 1951"]
# Every input's UIDs come from the generators' test root: an original UID is never printed or
# written either (outputs get new 2.25 UIDs).
UID_ROOT = "1.2.826.0.1.3680043.9.7777"
NO_UID_PATTERNS = (
    [re.compile(rb"(?<![A-Za-z0-9])" + re.escape(w.encode()) + rb"(?![a-z])", re.I)
     for w in PHI_WORDS] +
    [re.compile(rb"(?<![0-9.])" + re.escape(n.encode()) + rb"(?![0-9])", re.I)
     for n in PHI_NUMBERS])
PATTERNS = NO_UID_PATTERNS + [re.compile(rb"(?<![0-9.])" + re.escape(UID_ROOT.encode()) + rb"\.")]


def phi_hits(where, data, limit=3, patterns=None):
    """'where: ...context...' for each injected PHI string found in data (bytes)."""
    out = []
    for p in patterns or PATTERNS:
        for m in list(p.finditer(data))[:limit]:
            out.append(f"{where}: {m.group(0).decode(errors='replace')!r} in "
                       f"...{data[max(0, m.start() - 40):m.end() + 40]!r}...")
    return out


def self_check_patterns():
    """The search finds every form the issue names (and not a UID's digits)."""
    for s in ("DOE^JOHN".replace("DOE", LAST).replace("JOHN", FIRST), f"{LAST} {FIRST}",
              f"{FIRST.title()} {LAST.title()}", "born 1951-08-29", f"x{BIRTH}.", "id 7734913",
              "Quillfeather", "isolde", UID_ROOT + ".21.3.1"):
        assert phi_hits("self", s.encode()), s
    assert not phi_hits("self", b"2.25.119510829000 1.2.3.19510829 pseudonym 0123456789")


# ---- locations ----------------------------------------------------------------------------

def tool(name):
    """Path of a tool, or None. DEID_TOOLS_DIR set but empty (ctest, tools not built) means
    none; DEID_HEADER_TOOL, when set, names deid-header."""
    d = os.environ.get("DEID_TOOLS_DIR", os.path.join(BUILD_DIR, "tools"))
    t = os.path.join(d, name) if d else ""
    if name == "deid-header" and os.environ.get("DEID_HEADER_TOOL"):
        t = os.environ["DEID_HEADER_TOOL"]
    return t if t and os.path.isfile(t) and os.access(t, os.X_OK) else None


def require(name):
    if pydicom is None:
        pytest.skip("numpy or pydicom is missing")
    t = tool(name)
    if t is None:
        pytest.skip(f"{name} is not built")
    return t


@pytest.fixture(scope="module")
def root():
    if pydicom is None:
        pytest.skip("numpy or pydicom is missing")
    if not any(tool(t) for t in ("deid-header", "deid-us", "deid-ocr", "deid-ct")):
        pytest.skip("no deid-* tool is built")
    d = os.path.join(BUILD_DIR, "tests", "integration", "work", "no_phi_logs")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write_key(path, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(KEY + "\n")
    os.chmod(path, mode)
    return path


def generate(script, *args):
    p = subprocess.run([sys.executable, os.path.join(GENERATORS, script)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert p.returncode == 0, p.stdout.decode(errors="replace")


# ---- building inputs ----------------------------------------------------------------------

def inject(ds):
    """Put the PHI in the header of ds (in place)."""
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.add_new(0x00101000, "LO", OTHER_ID)                       # Other Patient IDs
    ds.PatientBirthDate = BIRTH
    ds.AccessionNumber = ACCESSION
    ds.InstitutionName = INSTITUTION
    ds.ReferringPhysicianName = REFERRING
    ds.StudyDescription = STUDY_DESCRIPTION
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", f"{LAST} {FIRST}")
    block.add_new(0x02, "DA", BIRTH)
    block.add_new(0x03, "LT", f"Patient {FIRST.title()} {LAST.title()}, born 1951-08-29")
    other = Dataset()
    other.PatientID = PATIENT_ID
    other.IssuerOfPatientID = INSTITUTION
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    req = Dataset()
    req.AccessionNumber = ACCESSION
    req.RequestedProcedureID = PATIENT_ID
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "PHX1", "99TEST"
    code.CodeMeaning = f"Protocol for {PATIENT_NAME}"
    req.ScheduledProtocolCodeSequence = Sequence([code])
    ds.RequestAttributesSequence = Sequence([req])
    return ds


def save(ds, path):
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)
    return path


def new_uid(ds, n):
    """A new SOP Instance UID (the odd and bad copies must not collide with their source)."""
    u = str(ds.SOPInstanceUID).rsplit(".", 1)[0] + f".{900 + n}"
    ds.SOPInstanceUID = u
    ds.file_meta.MediaStorageSOPInstanceUID = u


def write_odd(ds, path):
    """ds with the PHI in odd forms: Patient's Name not valid in its character set (ISO_IR 192,
    bytes that are not UTF-8), birth date with VR PN and a dashed value, Patient ID with VR DA,
    Accession Number with VR UN."""
    ds.SpecificCharacterSet = "ISO_IR 192"
    placeholder = PATIENT_NAME + "=ZZ"                           # even length, patched below
    ds.PatientName = placeholder
    del ds[0x00100030]
    ds.add_new(0x00100030, "PN", "1951-08-29")
    del ds[0x00100020]
    del ds[0x00080050]
    ds.add_new(0x00080050, "UN", ACCESSION.encode())
    with warnings.catch_warnings():          # pydicom: "Invalid value for VR DA" (on purpose)
        warnings.simplefilter("ignore")
        ds.add_new(0x00100020, "DA", PATIENT_ID)
        save(ds, path)
    with open(path, "rb") as f:
        data = f.read()
    at = data.find(placeholder.encode())
    assert at > 0
    data = data[:at] + PATIENT_NAME.encode() + b"=\xc3\x28" + data[at + len(placeholder):]
    with open(path, "wb") as f:
        f.write(data)


def write_bad(src, folder, stem):
    """Bad copies of the injected file src in folder: cut right after the Patient's Name value
    (a complete data set without pixels), cut inside that value, without Pixel Data, with
    Rows = Columns = 65535. Returns their paths in that order."""
    os.makedirs(folder, exist_ok=True)
    ds = pydicom.dcmread(src)
    new_uid(ds, 1)
    path = save(ds, os.path.join(folder, stem + "_cut.dcm"))
    with open(path, "rb") as f:
        data = f.read()
    name = PATIENT_NAME.encode()                                 # even length: no padding
    at = data.find(b"\x10\x00\x10\x00PN" + len(name).to_bytes(2, "little") + name)
    assert at > 0
    end = at + 8 + len(name)
    with open(path, "wb") as f:
        f.write(data[:end])
    mid = os.path.join(folder, stem + "_cutname.dcm")
    with open(mid, "wb") as f:
        f.write(data[:end - 6])                                  # inside the name: "...^ZEBE"
    out = [path, mid]
    ds = pydicom.dcmread(src)
    new_uid(ds, 2)
    del ds.PixelData
    out.append(save(ds, os.path.join(folder, stem + "_nopixels.dcm")))
    ds = pydicom.dcmread(src)
    new_uid(ds, 3)
    ds.Rows = ds.Columns = 65535
    out.append(save(ds, os.path.join(folder, stem + "_rows.dcm")))
    return out


def files_under(d):
    out = []
    for r, _, names in os.walk(d):
        out += [os.path.join(r, n) for n in names]
    return sorted(out)


# ---- running a tool and searching what it wrote -------------------------------------------

class Run:
    def __init__(self, name, args, tty=False, umask=None, cwd=None):
        self.name, self.args, self.tty = name, [str(a) for a in args], tty
        pre = (lambda: os.umask(umask)) if umask is not None else None
        if tty:
            self.rc, self.stdout, self.stderr = run_with_tty(self.args, pre)
        else:
            p = subprocess.run(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=600, preexec_fn=pre, cwd=cwd)
            self.rc, self.stdout, self.stderr = p.returncode, p.stdout, p.stderr

    def explain(self):
        return (f"{' '.join(self.args)}\nexit {self.rc}\n--- stdout\n"
                f"{self.stdout.decode(errors='replace')[-3000:]}\n--- stderr\n"
                f"{self.stderr.decode(errors='replace')[-3000:]}")


def run_with_tty(args, pre):
    """Run with stderr on a pseudo-terminal (the progress bar is drawn only on a TTY)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, preexec_fn=pre)
    os.close(slave)
    err = bytearray()
    while True:
        r, _, _ = select.select([master], [], [], 600)
        if not r:
            p.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    out = p.stdout.read()
    p.stdout.close()
    return p.wait(timeout=600), out, bytes(err)


def png_text(data):
    """Text of a PNG's tEXt, zTXt and iTXt chunks (decompressed)."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"tEXt":
            out.append(body)
        elif kind in (b"zTXt", b"iTXt"):
            key, _, rest = body.partition(b"\0")
            try:
                if kind == b"zTXt":
                    out.append(key + b" " + zlib.decompress(rest[1:]))
                elif rest[:1] == b"\1":
                    out.append(key + b" " + zlib.decompress(rest[2:].split(b"\0", 2)[-1]))
                else:
                    out.append(body)
            except zlib.error:
                out.append(body)
        pos += 12 + n
    return b"\n".join(out)


def contents(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        data += b"\n" + png_text(data)
    return data


def leaks(run, dirs, exempt=(), patterns=None):
    """PHI found in the run's stdout, stderr and every file under dirs except keys.csv and the
    base names in exempt. Returns (hits, number of files searched)."""
    hits = (phi_hits(f"{run.name} stdout", run.stdout, patterns=patterns) +
            phi_hits(f"{run.name} stderr", run.stderr, patterns=patterns))
    n = 0
    for d in dirs:
        for path in files_under(d) if os.path.isdir(d) else [d] if os.path.isfile(d) else []:
            base = os.path.basename(path)
            if base == "keys.csv" or base in exempt or any(
                    base.endswith(e[1:]) for e in exempt if e.startswith("*")):
                continue
            n += 1
            hits += phi_hits(f"{run.name} {os.path.relpath(path, os.path.dirname(d))}",
                             contents(path), patterns=patterns)
    return hits, n


def run_tool(root, name, label, inputs, *options, tty=False, out_dirs=(), log=None):
    """Run tool `name` on inputs into root/label/{out,hdr} with --log (or, with log=REL, no
    --log and the log the tool writes itself at root/label/REL); returns the Run with .dirs:
    every folder or file it may have written."""
    d = os.path.join(root, label)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out, hdr = os.path.join(d, "out"), os.path.join(d, "hdr")
    key = write_key(os.path.join(d, "key"))
    args = [tool(name), inputs, out, hdr, "--key", key, "--workers", "2"]
    if log is None:
        log = os.path.join(d, "run.log")
        args += ["--log", log]
    else:
        log = os.path.join(d, log)
    args += [o.replace("{d}", d) for o in options]
    r = Run(f"{name} {label}", args, tty=tty)
    r.dir, r.out, r.hdr, r.log = d, out, hdr, log
    r.dirs = [out, hdr, log] + [os.path.join(d, x) for x in out_dirs]
    return r


def assert_clean(runs, exempt=(), min_files=1, patterns=None):
    hits, searched = [], 0
    for r in runs:
        h, n = leaks(r, r.dirs, exempt, patterns)
        hits += h
        searched += n
    print(f"\n  {len(runs)} runs, {searched} files searched, {len(hits)} PHI hits")
    assert searched >= min_files, "the runs wrote fewer files than expected:\n" + "\n".join(
        r.explain() for r in runs)
    assert not hits, "PHI in console, logs or reports:\n" + "\n".join(hits[:20]) + "\n\n" + \
        "\n".join(r.explain() for r in runs[:2])


def check_runs(runs, bad_names, need_ok=True):
    """Every run named each bad file on stderr (its error path ran), wrote its log, and
    exited 1 (bad files fail the run); a run that crashed fails the test."""
    problems = []
    for r in runs:
        err = r.stderr.decode(errors="replace")
        if r.rc != 1:
            problems.append(f"{r.name}: exit {r.rc}, expected 1 (bad files among the inputs)")
        for b in bad_names:
            if b not in err:
                problems.append(f"{r.name}: no line names {b}")
        if r.tty and b"files/s" not in r.stderr:
            problems.append(f"{r.name}: no progress bar on the terminal")
        if not os.path.isfile(r.log):
            problems.append(f"{r.name}: no log file")
        if need_ok and not [p for p in files_under(r.out) if p.endswith(".dcm")]:
            problems.append(f"{r.name}: no DICOM output")
    assert not problems, "\n".join(problems) + "\n\n" + "\n".join(r.explain() for r in runs)


def the_runs(root, name, inputs, extra_verbose=(), extra_tty=(), extra_quiet=(), out_dirs=(),
             tty_log=None):
    """The verbosity and progress variants every tool gets: verbose to pipes, verbose with the
    progress bar on a pseudo-terminal, quiet."""
    return [run_tool(root, name, "verbose", inputs, "-v", *extra_verbose, out_dirs=out_dirs),
            run_tool(root, name, "tty", inputs, "--verbose", *extra_tty, tty=True,
                     out_dirs=out_dirs, log=tty_log),
            run_tool(root, name, "quiet", inputs, "-q", *extra_quiet, out_dirs=out_dirs)]


# ---- the search itself --------------------------------------------------------------------

def test_search_patterns(root):
    self_check_patterns()


# ---- deid-header --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def header_inputs(root):
    require("deid-header")
    d = os.path.join(root, "header")
    generate("make_phi_corpus.py", "--out", os.path.join(d, "in", "corpus"), "--manifest",
             os.path.join(d, "manifest.json"))
    generate("make_phi_corpus.py", "--sample", "--out", os.path.join(d, "sample"))
    inp = os.path.join(d, "in", "injected")
    srcs = [p for p in files_under(os.path.join(d, "sample")) if p.endswith(".dcm")]
    for i, src in enumerate(srcs):
        save(inject(pydicom.dcmread(src)), os.path.join(inp, f"ct{i + 1}.dcm"))
    ds = inject(pydicom.dcmread(srcs[0]))
    new_uid(ds, 4)
    write_odd(ds, os.path.join(inp, "odd.dcm"))
    bad = write_bad(os.path.join(inp, "ct1.dcm"), os.path.join(d, "in", "bad"), "ct")
    with open(os.path.join(d, "manifest.json")) as f:
        marker = json.load(f)["text_marker"].encode()
    return d, os.path.join(d, "in"), bad, marker


def test_deid_header(header_inputs):
    d, inp, bad, marker = header_inputs
    runs = the_runs(d, "deid-header", inp)
    # resume over the verbose run: the "skip" lines and the repaired keys.csv path
    v = runs[0]
    r = Run("deid-header resume", [tool("deid-header"), inp, v.out, v.hdr, "--key",
                                   os.path.join(v.dir, "key"), "-v", "--log", v.log,
                                   "--resume-anonymization"])
    r.dir, r.out, r.hdr, r.log, r.dirs = v.dir, v.out, v.hdr, v.log, []
    assert r.rc == 1 and b"skip" in r.stderr, r.explain()
    runs.append(r)
    # the bad files fail the header tool only when it cannot parse them
    check_runs(runs[:3], [os.path.basename(bad[1])])
    assert_clean(runs, min_files=60)
    for r in runs:   # the corpus's own PHI markers (make_phi_corpus.py) are not echoed either
        for where, data in (("stdout", r.stdout), ("stderr", r.stderr)):
            assert marker not in data, f"{r.name} {where}: corpus PHI marker\n" + r.explain()
        if os.path.isfile(r.log):
            assert marker not in contents(r.log), f"{r.name}: corpus PHI marker in the log"


# ---- deid-us ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def us_inputs(root):
    require("deid-us")
    d = os.path.join(root, "us")
    gen = os.path.join(d, "gen")
    generate("make_us_clips.py", "--out", gen, "--count", "3", "--seed", "61", "--sizes",
             "240x320", "--min-frames", "1", "--max-frames", "3", "--rgb-fraction", "0.3",
             "--jobs", "1")
    inp = os.path.join(d, "in")
    srcs = [p for p in files_under(gen) if p.endswith(".dcm")]
    for i, src in enumerate(srcs):
        save(inject(pydicom.dcmread(src)), os.path.join(inp, "clips", f"clip{i + 1}.dcm"))
    ds = inject(pydicom.dcmread(srcs[0]))
    new_uid(ds, 4)
    write_odd(ds, os.path.join(inp, "clips", "odd.dcm"))
    bad = write_bad(os.path.join(inp, "clips", "clip1.dcm"), os.path.join(inp, "bad"), "us")
    return d, inp, bad


def test_deid_us(us_inputs):
    d, inp, bad = us_inputs
    runs = the_runs(d, "deid-us", inp, extra_verbose=["--overview-dir", "{d}/overview"],
                    extra_tty=["--overview-dir", "{d}/overview", "--fallback", "rectangle"],
                    extra_quiet=["--lossless", "--fallback", "regions"], out_dirs=["overview"])
    check_runs(runs, [os.path.basename(b) for b in bad])
    assert [p for p in files_under(runs[0].dir) if p.endswith(".png")], "no overview PNG"
    assert [p for p in files_under(runs[0].hdr) if p.endswith("_mask.json")], "no mask JSON"
    assert_clean(runs, min_files=15)


# ---- deid-ocr -----------------------------------------------------------------------------

def font(size):
    from PIL import ImageFont
    for f in ("dejavu/DejaVuSans-Bold.ttf", "liberation2/LiberationSans-Bold.ttf",
              "freefont/FreeSansBold.ttf"):
        p = os.path.join("/usr/share/fonts/truetype", f)
        if os.path.exists(p):
            return ImageFont.truetype(p, size)
    return ImageFont.load_default()


LINES = [PATIENT_NAME, f"ID: {PATIENT_ID}", "DOB: 1951-08-29", f"Acc: {ACCESSION}"]


def text_image(rows=320, cols=480):
    from PIL import Image, ImageDraw
    img = Image.new("L", (cols, rows), 0)
    g = ImageDraw.Draw(img)
    g.ellipse((cols // 4, rows // 3, 3 * cols // 4, rows - 10), fill=70)
    f = font(22)
    for i, line in enumerate(LINES):
        g.text((12, 10 + 30 * i), line, fill=255, font=f)
    return img


def ocr_dicom(path):
    img = np.asarray(text_image(), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.9.7777.61.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, \
        meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.9.7777.61.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7777.61.3"
    ds.StudyDate = ds.ContentDate = "20230405"
    ds.Modality, ds.ConversionType = "OT", "WSD"
    ds.InstanceNumber = 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = img.shape
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = img.tobytes()
    return save(inject(ds), path)


def probe_tesseract(d):
    if os.environ.get("DEID_HAVE_TESSERACT") == "0":
        pytest.skip("libdeid was built without Tesseract")
    from PIL import Image
    p = os.path.join(d, "probe")
    os.makedirs(p, exist_ok=True)
    Image.new("L", (64, 32), 0).save(os.path.join(p, "blank.png"))
    r = Run("probe", [tool("deid-ocr"), p, os.path.join(d, "probe-out"), "-q"])
    if r.rc != 0 and re.search(rb"tesseract|unsupported", r.stderr, re.I):
        pytest.skip("deid-ocr has no Tesseract: " + r.stderr.decode(errors="replace").strip())


@pytest.fixture(scope="module")
def ocr_inputs(root):
    require("deid-ocr")
    try:
        from PIL import PngImagePlugin
    except ImportError:
        pytest.skip("PIL is missing")
    d = os.path.join(root, "ocr")
    os.makedirs(d)
    probe_tesseract(d)
    inp = os.path.join(d, "in")
    dcm = ocr_dicom(os.path.join(inp, "img", "burned.dcm"))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", f"Patient {PATIENT_NAME} {PATIENT_ID} born {BIRTH}")
    info.add_text("Author", INSTITUTION, zip=True)
    text_image().save(os.path.join(inp, "img", "burned.png"), pnginfo=info)
    ds = inject(pydicom.dcmread(dcm))
    new_uid(ds, 4)
    write_odd(ds, os.path.join(inp, "img", "odd.dcm"))
    bad = write_bad(dcm, os.path.join(inp, "bad"), "ocr")
    phi = os.path.join(d, "phi.txt")
    with open(phi, "w") as f:
        f.write(f"name: {PATIENT_NAME}\nid: {PATIENT_ID}\ndate: {BIRTH}\nid: {ACCESSION}\n"
                f"other: {INSTITUTION}\n")
    return d, inp, bad, phi


def test_deid_ocr(ocr_inputs):
    d, inp, bad, phi = ocr_inputs
    runs = the_runs(d, "deid-ocr", inp,
                    extra_verbose=["--redact", "phi", "--phi-file", phi],
                    extra_tty=["--redact", "none", "--phi-file", phi],
                    extra_quiet=["--redact", "all", "--fill", "inpaint"])
    check_runs(runs, [os.path.basename(b) for b in bad])
    reports = [p for p in files_under(runs[1].hdr) if p.endswith("_text.json")]
    assert reports, "no _text.json report\n" + runs[1].explain()
    assert os.path.isfile(os.path.join(runs[1].hdr, "review.csv")), runs[1].explain()
    assert_clean(runs, min_files=10)
    # --report-text asks for the text read in the reports: they are exempt, the console and
    # the log are not; and the reports do hold the PHI (the search would see a leak).
    told = run_tool(d, "deid-ocr", "report-text", inp, "-v", "--redact", "none",
                    "--report-text", "--phi-file", phi)
    check_runs([told], [os.path.basename(b) for b in bad])
    assert_clean([told], exempt=("review.csv", "*_text.json"))
    shown = []
    for p in files_under(told.hdr):
        if p.endswith("_text.json") or p.endswith("review.csv"):
            shown += phi_hits(p, contents(p))
    assert shown, "--report-text: no burned-in PHI read back, so the search proves little"


def test_deid_ocr_bad_phi_file(ocr_inputs):
    """A --phi-file line that cannot be used is reported by number, not by value."""
    d, inp, _, _ = ocr_inputs
    bad = os.path.join(d, "bad_phi.txt")
    with open(bad, "w") as f:
        f.write(f"name: {PATIENT_NAME}\ndate: {FIRST} 1951-08-29\n")
    r = Run("deid-ocr bad --phi-file", [tool("deid-ocr"), inp, os.path.join(d, "o-bad"),
                                        "--phi-file", bad])
    assert r.rc != 0 and b"line 2" in r.stderr, r.explain()
    assert not phi_hits("console", r.stdout + r.stderr), r.explain()


# ---- deid-ct ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ct_inputs(root):
    require("deid-ct")
    d = os.path.join(root, "ct")
    gen = os.path.join(d, "gen")
    generate("make_head_phantom.py", "--out", gen, "--size", "low", "--seed", "5")
    inp = os.path.join(d, "in")
    srcs = [p for p in files_under(os.path.join(gen, "dicom")) if p.endswith(".dcm")]
    for src in srcs:
        save(inject(pydicom.dcmread(src)), os.path.join(inp, "case1", "head",
                                                         os.path.basename(src)))
    first = os.path.join(inp, "case1", "head", os.path.basename(srcs[0]))
    ds = pydicom.dcmread(first)
    ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".9"
    new_uid(ds, 4)
    write_odd(ds, os.path.join(inp, "case1", "odd", "odd.dcm"))
    bad = write_bad(first, os.path.join(inp, "case1", "bad"), "ct")
    return d, inp, bad


def test_deid_ct(ct_inputs):
    d, inp, bad = ct_inputs
    runs = the_runs(d, "deid-ct", inp,
                    extra_verbose=["--qc-dir", "{d}/qc", "--nifti-root-out", "{d}/nifti",
                                   "--nrrd", "--min-slices", "1"],
                    extra_tty=["--workdir", "{d}/work", "--enhanced", "legacy"],
                    extra_quiet=["--method", "drown", "--no-dicom", "--nifti-root-out",
                                 "{d}/nifti", "--min-slices", "1"],
                    out_dirs=["qc", "nifti", "work"], tty_log="work/deid-ct.log")
    check_runs(runs[:2], [os.path.basename(b) for b in bad[:2]])
    written = files_under(runs[0].dir)
    for ext in (".png", ".nii.gz", ".nrrd"):
        assert [p for p in written if p.endswith(ext)], f"no {ext} written\n" + runs[0].explain()
    assert_clean(runs, min_files=40)
    # --keep-headers keeps the PHI in the DICOM headers by design (and in the header JSONs
    # made from them), and the original UIDs (the QC render is named by the Series Instance
    # UID); its console, log and QC renders still hold no other PHI.
    kept = run_tool(d, "deid-ct", "keep-headers", inp, "-v", "--keep-headers", "--qc-dir",
                    "{d}/qc", out_dirs=["qc"])
    check_runs([kept], [os.path.basename(b) for b in bad[:2]])
    assert_clean([kept], exempt=("*.dcm", "*_DICOMHeader.json"), min_files=2,
                 patterns=NO_UID_PATTERNS)


# ---- the Python binding and the log callback -----------------------------------------------

@pytest.fixture(scope="module")
def binding(root):
    if not os.environ.get("DEID_LIBRARY") and not os.path.isfile(
            os.path.join(BUILD_DIR, "libdeid", "libdeid.so")):
        pytest.skip("libdeid.so not found (DEID_LIBRARY)")
    os.environ.setdefault("DEID_LIBRARY", os.path.join(BUILD_DIR, "libdeid", "libdeid.so"))
    sys.path.insert(0, BINDINGS)
    import deid
    return deid


def test_python_binding_errors_and_log(root, binding, header_inputs):
    deid = binding
    d, inp, bad, _ = header_inputs
    key = deid.Key.from_bytes(bytes.fromhex(KEY))
    messages, hits = [], []
    with open(bad[1], "rb") as f:
        cut = f.read()                                           # cut inside Patient's Name
    cases = [("cut inside the name", cut), ("the same, as a path", bad[1]),
             ("the same without preamble", cut[128:]), ("cut inside the header", cut[:200]),
             ("cut after the name", bad[0]), ("no pixels", bad[2]), ("absurd Rows", bad[3]),
             ("odd forms", os.path.join(inp, "injected", "odd.dcm"))]
    for label, data in cases:
        try:
            result = deid.deidentify(data, key=key)
            hits += phi_hits(f"deidentify({label}) output", result)
        except deid.DeidError as e:
            messages.append((label, f"{e} | {e.detail}"))
    assert len(messages) >= 3, f"expected the cut inputs to fail: {messages}"
    log = []
    out = os.path.join(root, "binding")
    with deid.Batch(inp, os.path.join(out, "out"), os.path.join(out, "hdr"), key=key,
                    workers=2, log=lambda lv, mod, msg: log.append(f"{lv} {mod}: {msg}")) as b:
        s = b.run()
    assert s.failed >= 1 and s.ok >= 3, (s, log[-20:])
    assert len(log) >= s.ok, log[-20:]
    for label, m in messages:
        hits += phi_hits(f"DeidError for {label}", m.encode())
    hits += phi_hits("log callback", "\n".join(log).encode())
    assert not hits, "\n".join(hits[:20])


def test_python_cli(root, binding, header_inputs):
    """python3 -m deid: keygen writes 0600 under umask 000; file and batch print no PHI on
    bad inputs, and batch writes none outside keys.csv."""
    _, inp, bad, _ = header_inputs
    d = os.path.join(root, "python-cli")
    os.makedirs(d)
    env = dict(os.environ, PYTHONPATH=BINDINGS + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def py(label, *args, umask=None):
        pre = (lambda: os.umask(umask)) if umask is not None else None
        p = subprocess.run([sys.executable, "-B", "-m", "deid"] + list(args), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300,
                           preexec_fn=pre)
        r = Run.__new__(Run)
        r.name, r.args, r.tty = label, list(args), False
        r.rc, r.stdout, r.stderr = p.returncode, p.stdout, p.stderr
        return r

    key = os.path.join(d, "site.key")
    r = py("keygen", "keygen", key, umask=0)
    assert r.rc == 0 and stat.S_IMODE(os.stat(key).st_mode) == 0o600, r.explain()
    r = py("keygen again", "keygen", key)
    assert r.rc == 1 and key.encode() in r.stderr, r.explain()
    f = py("file", "file", bad[1], os.path.join(d, "one.dcm"), "--key", key)
    assert f.rc == 1 and f.stderr.strip(), f.explain()
    assert not os.path.exists(os.path.join(d, "one.dcm")), f.explain()
    b = py("batch", "batch", inp, os.path.join(d, "out"), os.path.join(d, "hdr"), "--key", key,
           "--workers", "2")
    assert b.rc == 1 and b"failed 1" in b.stdout, b.explain()
    b.dirs = [os.path.join(d, "out"), os.path.join(d, "hdr")]
    f.dirs = []
    assert_clean([f, b], min_files=60)


# ---- keys ---------------------------------------------------------------------------------

def key_tools():
    return [t for t in ("deid-header", "deid-us", "deid-ocr", "deid-ct") if tool(t)]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077],
                         ids=["umask000", "umask022", "umask077"])
def test_new_key_and_keys_csv_are_0600(root, header_inputs, umask):
    _, inp, _, _ = header_inputs
    d = os.path.join(root, f"key-umask-{umask:03o}")
    os.makedirs(d)
    key = os.path.join(d, "site.key")
    r = Run(f"deid-header umask {umask:03o}", [tool("deid-header"), os.path.join(
        inp, "injected"), os.path.join(d, "out"), os.path.join(d, "hdr"), "--key", key, "-q"],
        umask=umask)
    assert os.path.isfile(key), "no key file created\n" + r.explain()
    mode = stat.S_IMODE(os.stat(key).st_mode)
    assert mode == 0o600, f"key file created with mode {mode:04o} under umask {umask:03o}"
    with open(key) as f:
        assert re.fullmatch(r"[0-9a-f]{64}\n", f.read()), "the key file is not 64 hex digits"
    keys = os.path.join(d, "hdr", "keys.csv")
    assert os.path.isfile(keys), r.explain()
    mode = stat.S_IMODE(os.stat(keys).st_mode)
    assert mode == 0o600, f"keys.csv created with mode {mode:04o} under umask {umask:03o}"
    assert not phi_hits("stderr", r.stderr + r.stdout), r.explain()
    leftovers = [n for n in os.listdir(d) if n.startswith("site.key.")]
    assert not leftovers, f"temporary key files left behind: {leftovers}"


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604], ids=["mode640", "mode644", "mode604"])
def test_group_or_world_readable_key_is_refused(root, header_inputs, mode):
    _, inp, _, _ = header_inputs
    tools = key_tools()
    problems = []
    for t in tools:
        d = os.path.join(root, f"key-{mode:03o}-{t}")
        os.makedirs(d)
        key = write_key(os.path.join(d, "open.key"), mode)
        out, hdr = os.path.join(d, "out"), os.path.join(d, "hdr")
        r = Run(t, [tool(t), os.path.join(inp, "injected"), out, hdr, "--key", key])
        lines = [ln for ln in r.stderr.decode(errors="replace").splitlines() if ln.strip()]
        if r.rc != 1:
            problems.append(f"{t} {mode:03o}: exit {r.rc}, expected 1\n{r.explain()}")
        if len(lines) != 1 or key not in lines[0] or f"{mode:03o}" not in lines[0]:
            problems.append(f"{t} {mode:03o}: expected one line naming {key} and mode "
                            f"{mode:03o}:\n{r.explain()}")
        written = files_under(out) + files_under(hdr)
        if written:
            problems.append(f"{t} {mode:03o}: wrote {written}")
        if stat.S_IMODE(os.stat(key).st_mode) != mode:
            problems.append(f"{t} {mode:03o}: the key file's mode was changed")
    assert not problems, "\n".join(problems)


def test_binding_key_modes(root, binding):
    """deid.Key.load creates 0600 (umask 000) and refuses a 0644 key, naming file and mode."""
    deid = binding
    new = os.path.join(root, "binding-new.key")
    old = os.umask(0)
    try:
        assert deid.Key.load(new, create=True).created
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o600, oct(os.stat(new).st_mode)
    key = write_key(os.path.join(root, "binding-0644.key"), 0o644)
    with pytest.raises(deid.DeidError) as e:
        deid.Key.load(key, create=False)
    assert key in str(e.value) and "644" in str(e.value), str(e.value)
