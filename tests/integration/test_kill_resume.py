"""Crash-safe batches: a batch killed with SIGKILL (its whole process group) at many points and
resumed with --resume-anonymization each time ends exactly as one uninterrupted run with the same
key does: the same output files byte for byte (DICOM, header JSON; for deid-us also the JPEG
DICOM, mask JSON and QC overview PNG), no temporary file anywhere, and a keys.csv (mode 0600)
with exactly one complete row per input, none twice, none torn, the same rows as the reference.

After every kill, before the resume, the outputs are also checked as the kill left them: a file
under its final name is complete (its size is the reference's), and every keys.csv row names
outputs that are all there and identical to the reference (the row is written last). Half way,
partial temporary files of a dead process are planted beside a few outputs, as a kill leaves
them on a file system without O_TMPFILE (where every output is first written under a temporary
name): the resumes must remove them.

The kill points are drawn with a seeded RNG and scaled by the run time measured here (the
uninterrupted reference run, and a resume with nothing left to do for the start-up and scan), so
a slower build (sanitizers) gets proportionally later kills: some right at the start (before or
during the scan), most at random points of the work, some near the end (last files, final sync).

Run by ctest (exit 77 when neither deid-header nor deid-us is built), or by hand:
  DEID_BUILD_DIR=build DEID_HEADER_TOOL=build/tools/deid-header \
      /usr/bin/python3 -m pytest -q -s tests/integration/test_kill_resume.py
"""
import collections
import csv
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

import deidtest as dt

SEED = 20251125
HEADER_SEEDS = 6      # distinct PHI corpora of 30 files (CT, MR, US, SR, RTSTRUCT; RLE, JPEG) in
HEADER_COPIES = 8     # the same folders, linked into 8 trees: 1440 inputs, four folders deep
HEADER_KILLS = (3, 18, 3)   # kills right at the start, at random points, near the end (the
                            # last one at the last files or the final sync)
HEADER_MIN_KILLS = 20       # of which at least this many must hit a running batch (those near
                            # the end may find it finished)
US_KILLS = (2, 6, 2)
US_MIN_KILLS = 7
US_GEN_ARGS = ["--count", "16", "--seed", "7", "--sizes", "120x160,96x128", "--min-frames", "1",
               "--max-frames", "3", "--ecg-fraction", "0.5", "--regions-fraction", "0.5",
               "--jobs", "1"]
US_COPIES = 4         # 64 clips
TEMP_NAME = re.compile(r"\.tmp\d*|~$|\.part$|\.partial$", re.I)
KEYS_COLUMNS = 12


# ---- helpers ------------------------------------------------------------------------------------

def link(src, dst):
    """dst a hard link to src (a copy where links are refused)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def sizes_under(root):
    """{relative path: size} of every regular file under root."""
    out, stack = {}, [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    out[os.path.relpath(e.path, root)] = e.stat(follow_symlinks=False).st_size
    return out


def dirs_under(root):
    out = []
    for d, names, _ in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return sorted(out)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def stem_of(rel):
    """The output a file belongs to: OUT/a/b/X.dcm, HDR/a/b/X_DICOMHeader.json, HDR/a/b/X_mask.json
    and OVERVIEW/a/b/X.png all belong to a/b/X."""
    for suffix in ("_DICOMHeader.json", "_mask.json", ".dcm", ".png"):
        if rel.endswith(suffix):
            return rel[:-len(suffix)]
    return None


class Batch:
    """One tool on one input tree; every run of it writes under a root (out/, hdr/, overview/)."""

    def __init__(self, name, tool, inp, key, overview=False):
        self.name, self.tool, self.inp, self.key, self.overview = name, tool, inp, key, overview
        self.inputs = dt.files_under(inp)

    def trees(self, root):
        t = {"out": os.path.join(root, "out"), "hdr": os.path.join(root, "hdr")}
        if self.overview:
            t["overview"] = os.path.join(root, "overview")
        return t

    def args(self, root, resume, sync=False):
        t = self.trees(root)
        a = [self.tool, self.inp, t["out"], t["hdr"], "--key", self.key, "--workers", "2", "-q"]
        if self.overview:
            a += ["--overview-dir", t["overview"]]
        if resume:
            a.append("--resume-anonymization")
        if sync:
            a.append("--sync")
        return a

    def run(self, root, resume):
        args = self.args(root, resume)
        t0 = time.monotonic()
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900)
        return p, time.monotonic() - t0, args


def explain(p, args):
    return (f"{' '.join(args)}\nexit {p.returncode}\n--- stdout\n"
            f"{p.stdout.decode(errors='replace')[-3000:]}\n--- stderr\n"
            f"{p.stderr.decode(errors='replace')[-3000:]}")


def start_and_kill(args, delay, err_path):
    """Start a batch in its own process group and SIGKILL the group `delay` seconds later.
    Returns the exit status: -SIGKILL when it was killed, the tool's own when it ended first."""
    with open(err_path, "wb") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        left = delay - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return p.wait(timeout=900)


def keys_rows_now(hdr):
    """Complete rows in keys.csv as a kill left it (a torn last line is not a row)."""
    try:
        data = read(os.path.join(hdr, "keys.csv"))
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n")
    if end < 0:
        return []
    text = data[:end + 1].decode("utf-8", errors="surrogateescape")
    rows = list(csv.reader(text.splitlines(keepends=True)))
    return rows[1:] if rows and rows[0] and rows[0][0] == "original_path" else rows


def parse_keys(path):
    """(header, rows, problems) of a finished keys.csv."""
    data = read(path)
    problems = []
    if not data.endswith(b"\n"):
        problems.append(f"keys.csv does not end with a newline: ...{data[-80:]!r}")
    text = data.decode("utf-8", errors="surrogateescape")
    records = list(csv.reader(text.splitlines(keepends=True), strict=True))
    if not records:
        return None, [], problems + ["keys.csv is empty"]
    header, rows = records[0], records[1:]
    if len(header) != KEYS_COLUMNS or header[0] != "original_path":
        problems.append(f"keys.csv header: {header}")
    for i, r in enumerate(rows, 2):
        if len(r) != KEYS_COLUMNS:
            problems.append(f"keys.csv record {i}: {len(r)} columns instead of {KEYS_COLUMNS} "
                            f"(torn or merged line): {r[:1]}...")
    return header, rows, problems


def normalized(rows, inp, out):
    """Rows with original_path relative to the input and output_path relative to the output
    tree (the reference and the killed run write to different trees)."""
    out = os.path.realpath(out) + "/"
    res, problems = [], []
    for r in rows:
        if len(r) != KEYS_COLUMNS:
            continue
        r = list(r)
        if not r[0].startswith(inp + "/"):
            problems.append(f"keys.csv: original_path outside the input: {r[0]}")
        if not r[6].startswith(out):
            problems.append(f"keys.csv: output_path outside the output tree: {r[6]}")
        r[0], r[6] = r[0][len(inp) + 1:], r[6][len(out):]
        res.append(tuple(r))
    return res, problems


# ---- the scenario -------------------------------------------------------------------------------

class Reference:
    def __init__(self, batch, root):
        self.root = root
        self.trees = batch.trees(root)
        found = {name: sizes_under(t) for name, t in self.trees.items()}
        self.files = {name: sorted(sizes) for name, sizes in found.items()}
        self.sizes = {(name, rel): size for name, sizes in found.items()
                      for rel, size in sizes.items()}
        self.by_stem = {}
        for name, rels in self.files.items():
            for rel in rels:
                s = stem_of(rel)
                if s is not None:
                    self.by_stem.setdefault(s, []).append((name, rel))
        _, rows, problems = parse_keys(os.path.join(self.trees["hdr"], "keys.csv"))
        assert not problems, "reference keys.csv:\n" + "\n".join(problems)
        self.rows, problems = normalized(rows, batch.inp, self.trees["out"])
        assert not problems, "\n".join(problems)

    def content(self, name, rel):
        return read(os.path.join(self.trees[name], rel))


def check_after_kill(batch, ref, root, checked, what):
    """The state a kill left: no partial file under a final name, and every keys.csv row's
    outputs complete. Rows already checked after an earlier kill are not read again."""
    trees = batch.trees(root)
    problems = []
    for name, t in trees.items():
        if not os.path.isdir(t):
            continue
        for rel, size in sizes_under(t).items():
            want = ref.sizes.get((name, rel))
            if want is not None and size != want and rel != "keys.csv":
                problems.append(f"{what}: {name}/{rel} is {size} bytes, {want} in the "
                                f"reference: a partial file under its final name")
    rows, bad = normalized(keys_rows_now(trees["hdr"]), batch.inp, trees["out"])
    problems += [f"{what}: {b}" for b in bad]
    for r in rows:
        out_rel = r[6]
        if out_rel in checked:
            continue
        checked.add(out_rel)
        stem = stem_of(out_rel)
        for name, rel in ref.by_stem.get(stem, [("out", out_rel)]):
            path = os.path.join(trees[name], rel)
            if not os.path.isfile(path):
                problems.append(f"{what}: keys.csv has the row of {out_rel} but {name}/{rel} "
                                f"is missing")
            elif (name, rel) not in ref.sizes or read(path) != ref.content(name, rel):
                problems.append(f"{what}: keys.csv has the row of {out_rel} but {name}/{rel} "
                                f"differs from the reference")
    return len(rows), problems


def plant_stale_temps(batch, root):
    """What a kill leaves on a file system without O_TMPFILE, where every output is written
    under a temporary name <name>.tmp<pid>.<n> first: a partial file of a dead process beside
    two outputs of each tree. The next resume must remove them."""
    p = subprocess.Popen(["true"])
    p.wait()   # a pid that no process has
    planted = []
    for name, t in batch.trees(root).items():
        for rel in sorted(r for r in sizes_under(t) if r != "keys.csv")[:2]:
            data = read(os.path.join(t, rel))
            with open(os.path.join(t, f"{rel}.tmp{p.pid}.{len(planted)}"), "wb") as f:
                f.write(data[:len(data) // 2])
            planted.append(f"{name}/{rel}.tmp{p.pid}.{len(planted)}")
    return planted


def compare_final(batch, ref, root):
    trees = batch.trees(root)
    problems = []
    for name, t in trees.items():
        got = dt.files_under(t)
        temps = [r for r in got if TEMP_NAME.search(os.path.basename(r))]
        problems += [f"{name}/{r}: temporary file left behind" for r in temps]
        missing = sorted(set(ref.files[name]) - set(got))
        extra = sorted(set(got) - set(ref.files[name]) - set(temps))
        problems += [f"{name}/{r}: missing (in the reference)" for r in missing[:20]]
        problems += [f"{name}/{r}: not in the reference" for r in extra[:20]]
        if len(missing) + len(extra) > 40:
            problems.append(f"{name}: {len(missing)} missing, {len(extra)} extra in all")
        if dirs_under(t) != dirs_under(ref.trees[name]):
            problems.append(f"{name}: folders differ from the reference: "
                            f"{sorted(set(dirs_under(t)) ^ set(dirs_under(ref.trees[name])))[:10]}")
        different = [r for r in sorted(set(got) & set(ref.files[name]))
                     if not (name == "hdr" and r == "keys.csv")
                     and read(os.path.join(t, r)) != ref.content(name, r)]
        problems += [f"{name}/{r}: differs from the reference" for r in different[:20]]
        if len(different) > 20:
            problems.append(f"{name}: {len(different)} files differ in all")

    keys = os.path.join(trees["hdr"], "keys.csv")
    mode = stat.S_IMODE(os.stat(keys).st_mode)
    if mode != 0o600:
        problems.append(f"keys.csv has mode {mode:o}, not 600")
    _, rows, bad = parse_keys(keys)
    problems += bad
    rows, bad = normalized(rows, batch.inp, trees["out"])
    problems += bad
    if len(rows) != len(batch.inputs):
        problems.append(f"keys.csv: {len(rows)} rows for {len(batch.inputs)} inputs")
    originals = [r[0] for r in rows]
    problems += [f"keys.csv: {k} rows for input {o}"
                 for o, k in sorted(collections.Counter(originals).items()) if k > 1][:10]
    problems += [f"keys.csv: {k} rows for output {o}"
                 for o, k in sorted(collections.Counter(r[6] for r in rows).items()) if k > 1][:10]
    if set(originals) != set(batch.inputs):
        problems.append(f"keys.csv: inputs without a row: "
                        f"{sorted(set(batch.inputs) - set(originals))[:10]}; rows of no input: "
                        f"{sorted(set(originals) - set(batch.inputs))[:10]}")
    if sorted(rows) != sorted(ref.rows):
        diff = sorted(set(rows) ^ set(ref.rows))
        problems.append(f"keys.csv rows differ from the reference ({len(diff)} differ), e.g. "
                        f"{[r[0] + ' -> ' + r[6] for r in diff[:4]]}")
    return problems


def kill_and_resume(batch, work, kills, min_kills):
    """The reference run, then a fresh output killed `kills` = (at start, random, near end)
    times and resumed after each kill, then run to completion; compared with the reference."""
    rng = random.Random(f"{SEED}-{batch.name}")
    n = len(batch.inputs)
    clock = time.monotonic()
    ref_root = os.path.join(work, "reference")
    p, t_ref, args = batch.run(ref_root, resume=False)
    assert p.returncode == 0, explain(p, args)
    empty = os.path.join(work, "empty")
    os.makedirs(empty)
    nothing = Batch(batch.name, batch.tool, empty, batch.key, batch.overview)
    t_skip, t_start = [], []
    for _ in range(3):   # medians: the machine may be busy
        p, t, args = batch.run(ref_root, resume=True)   # nothing left to do: n skips
        assert p.returncode == 0, explain(p, args)
        t_skip.append(t)
        p, t, args = nothing.run(os.path.join(work, "scratch"), resume=True)   # start-up only
        assert p.returncode == 0, explain(p, args)
        t_start.append(t)
    t_skip, t_start = sorted(t_skip)[1], sorted(t_start)[1]
    ref = Reference(batch, ref_root)
    assert len(ref.rows) == n, f"reference keys.csv: {len(ref.rows)} rows for {n} inputs"
    # A resume: start-up, then the files done before are skipped (scan, keys.csv, a stat
    # each), then the work. The reference's time per file includes its final sync, so it is
    # an upper bound; it is refined from what the kills find (a slow build, load).
    skip = max(t_skip - t_start, 0) / n
    per_file = max((t_ref - t_start) / n, 1e-5)

    n_start, n_random, n_end = kills
    plan = ["start"] + ["random"] * n_random
    for _ in range(n_start - 1):   # a resume killed at its start, somewhere in the middle
        plan.insert(rng.randint(2, len(plan)), "start")
    plan += ["end"] * (n_end - 1) + ["last"]

    root = os.path.join(work, "killed")
    checked, log, problems = set(), [], []
    done = killed = mid_batch = 0
    late = 0.0   # start-up beyond the estimate, learnt from kills that found no new row
    for i, kind in enumerate(plan):
        if kind == "random" and done >= n and mid_batch < n_random // 2:
            # A busy machine let the batch finish before enough kills landed in it: go on
            # with a fresh output (what the last round leaves is what is compared at the end).
            shutil.rmtree(root, ignore_errors=True)
            done, checked = 0, set()
            log.append("fresh output: the batch had finished before enough kills hit it")
        base = t_start + done * skip
        ready = base + late   # when this run starts on new files
        left = n - done
        if kind == "start" or left <= 0:
            more = None
        elif kind == "random":   # a random share of the work left, spread over the kills left
            more = left / (plan[i:].count("random") + n_end) * rng.uniform(0.2, 1.8)
        elif kind == "end":      # among the last files
            more = left * rng.uniform(0.5, 0.95)
        else:                    # the last file, or the final sync and keys.csv close
            more = left * rng.uniform(1.0, 1.15)
        delay = (ready + more * per_file if more is not None
                 else 0.0 if i == 0 else rng.uniform(0, 0.7) * ready)
        sync = i > 0 and rng.random() < 0.25
        args = batch.args(root, resume=i > 0, sync=sync)
        rc = start_and_kill(args, delay, os.path.join(work, f"run{i:02d}.err"))
        before = done
        done, found = check_after_kill(batch, ref, root, checked,
                                       f"after kill {i} ({kind}, {delay * 1000:.0f} ms)")
        problems += found
        log.append(f"kill {i:2d} {kind:6s} {'sync ' if sync else '     '}after "
                   f"{delay * 1000:6.1f} ms: exit {rc}, rows {before} -> {done}")
        if rc not in (0, -signal.SIGKILL):
            with open(os.path.join(work, f"run{i:02d}.err"), "rb") as f:
                err = f.read().decode(errors="replace")[-3000:]
            problems.append(f"kill {i}: the batch ended with exit {rc} before the kill:\n{err}")
        if rc == -signal.SIGKILL:
            killed += 1
            mid_batch += 0 < done < n and done > before
        if rc == -signal.SIGKILL and more is not None and done == before:
            late = max(late, delay - base)
        elif done > before:
            late *= 0.5
        if not sync and done > before + 10 and delay > ready:
            seen = (delay - ready) / (done - before)
            per_file = min(per_file, seen) if rc == 0 else (per_file * seen) ** 0.5
        if problems:
            break
        if i == len(plan) // 2:
            log.append(f"planted {len(plant_stale_temps(batch, root))} stale temporary files")

    p, _, args = batch.run(root, resume=True)
    summary = "\n".join(log)
    print(f"\n{batch.name}: {n} inputs; reference {t_ref:.2f} s, resume with nothing to do "
          f"{t_skip:.2f} s, start-up {t_start:.2f} s; {killed} kills ({mid_batch} with files "
          f"written since the previous one); {time.monotonic() - clock:.1f} s in all\n{summary}")
    assert not problems, "\n".join(problems[:30]) + "\n" + summary
    assert p.returncode == 0, explain(p, args)
    problems = compare_final(batch, ref, root)
    assert not problems, "\n".join(problems[:40]) + "\n" + summary
    assert killed >= min_kills, f"only {killed} kills hit a running batch\n{summary}"
    assert mid_batch >= n_random // 2, \
        f"only {mid_batch} kills interrupted a batch writing files\n{summary}"


# ---- the tools ----------------------------------------------------------------------------------

def test_deid_header_killed_and_resumed():
    tool = dt.require_tool()
    work = dt.workdir("kill_resume_header")
    t0 = time.monotonic()
    distinct = os.path.join(work, "distinct")
    corpus = os.path.abspath(os.path.join(work, "corpus"))
    for s in range(HEADER_SEEDS):
        src = os.path.join(distinct, f"s{s}")
        dt.make_phi_corpus.write(dt.make_phi_corpus.build(SEED + s), src, None)
        for rel in dt.files_under(src):   # the corpora share their folders p1/study1/ct...
            d, name = os.path.split(rel)
            for c in range(HEADER_COPIES):
                link(os.path.join(src, rel), os.path.join(corpus, f"g{c}", d, f"s{s}_{name}"))
    key = dt.write_key(os.path.join(work, "key.hex"))
    print(f"\ncorpus: {time.monotonic() - t0:.1f} s")
    kill_and_resume(Batch("deid-header", tool, corpus, key), work, HEADER_KILLS,
                    HEADER_MIN_KILLS)


def us_tool():
    return dt.tool_path("deid-us")


def test_deid_us_killed_and_resumed():
    tool = us_tool()
    if tool is None:
        pytest.skip("deid-us is not built")
    for m in ("numpy", "PIL.Image"):
        try:
            __import__(m)
        except ImportError:
            pytest.skip(f"missing Python module {m} (tests/generators/make_us_clips.py)")
    work = dt.workdir("kill_resume_us")
    gen = os.path.join(work, "generated")
    subprocess.run([sys.executable, os.path.join(dt.GENERATORS, "make_us_clips.py"), "--out", gen]
                   + US_GEN_ARGS, check=True, stdout=subprocess.DEVNULL)
    clips = sorted(f for f in os.listdir(gen) if f.endswith(".dcm"))
    assert len(clips) == 16, clips
    corpus = os.path.abspath(os.path.join(work, "corpus"))
    for c in range(US_COPIES):
        for i, f in enumerate(clips):   # nested folders, up to three deep
            link(os.path.join(gen, f),
                 os.path.join(corpus, f"copy{c}" if c else "", ["", "a", "a/b"][i % 3], f))
    key = dt.write_key(os.path.join(work, "key.hex"))
    kill_and_resume(Batch("deid-us", tool, corpus, key, overview=True), work, US_KILLS,
                    US_MIN_KILLS)
