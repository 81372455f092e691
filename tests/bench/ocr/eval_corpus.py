#!/usr/bin/python3
"""deid-ocr against the ground truth of generated images (tests/generators/make_text_images.py):
the figures of issue 4's "must show", and where the misses are.

Runs deid-ocr on the corpus in --redact all (both passes, then each pass alone) and in
--redact phi (DICOM files match their own header, raster files the terms of the corpus's
phi.txt given as --phi-file), reads every <name>_text.json and prints:
  - text-region recall: a true box counts as found when >= 90% of its area lies inside the
    union of the boxes decided "redacted", each padded by the engine's pad (1 px); on a
    multi-frame image, on every frame;
  - PHI-string recall in phi mode (names, IDs, dates): a PHI string counts as redacted when
    >= 90% of its value's ink box is redacted (the value after a label: "08/07/1988" of
    "DOB: 08/07/1988"; the label itself identifies no one); the figure with the label's ink
    box included (the whole field) is printed too. And the share of annotations redacted
    there (a true annotation box >= 50% inside the redacted union);
  - over-redaction per image: redacted pixels outside the true boxes / pixels outside the true
    boxes (mean, 95th percentile, max, share of images <= 2%); the true boxes are grown by the
    engine's pad (the margin it adds on purpose), the figure against the bare ink boxes is
    printed too;
  - the passes: merged regions found only by "lines", only by "page", by both, and the recall
    with each pass alone;
  - recall by font size, contrast, inversion, colour, format, background, kind, font, zone;
  - overlay planes: text of overlay 6000 reported, planes gone from the outputs;
  - seconds per image (wall clock, all workers) and the misses (file, box, kind, size...).
Targets: recall >= 0.95, PHI recall >= 0.98, over-redaction <= 2%. The exit status is 0
whatever the figures (1 only when deid-ocr cannot be run).

Usage: tests/bench/ocr/eval_corpus.py [--count 300] [--seed S] [--corpus DIR] [--tool PATH]
         [--workers N] [--modes all,phi,lines,page] [--misses 40] [--json FILE] [--keep DIR]
         [--tool-args "--min-confidence 20 ..."]
  --corpus DIR   reuse the corpus in DIR (generated there first when DIR has no manifest.json)
  --modes        which runs (default all four); e.g. --modes all for a quick loop
The tool is --tool, $DEID_OCR, or the newest build*/tools/deid-ocr.
"""
import argparse
import csv
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
GENERATOR = os.path.join(SOURCE_DIR, "tests", "generators", "make_text_images.py")
PYTHON = "/usr/bin/python3"
KEY = "5f1c3a7e9b2d4f6081a3c5e7092b4d6f8a1c3e5079b2d4f6a8c0e2f4b6d8fa1c"
PAD = 1              # the engine's default pad (deid_text_options.pad)
FOUND = 0.90         # share of a true box inside the redacted union for "found"
ANNOT_HIT = 0.50     # share of an annotation's box inside the redacted union for "redacted"
SIZE_BANDS = [(8, 11), (12, 17), (18, 27), (28, 40)]
MODES = {"all": ["--redact", "all"], "phi": ["--redact", "phi"],
         "lines": ["--redact", "all", "--passes", "lines"],
         "page": ["--redact", "all", "--passes", "page"]}


# ---- locating things ----------------------------------------------------------------------------

def find_tool(given=None):
    if given:
        return given
    if os.environ.get("DEID_OCR"):
        return os.environ["DEID_OCR"]
    found = [f for f in glob.glob(os.path.join(SOURCE_DIR, "build*", "tools", "deid-ocr"))
             if os.access(f, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


def generate(corpus, count, seed, extra=()):
    subprocess.run([PYTHON, GENERATOR, "--out", corpus, "--count", str(count), "--seed",
                    str(seed)] + list(extra), check=True)


def load_truth(corpus):
    with open(os.path.join(corpus, "manifest.json"), encoding="utf-8") as f:
        man = json.load(f)
    out = []
    for name in man["truth"]:
        with open(os.path.join(corpus, "truth", name), encoding="utf-8") as f:
            out.append(json.load(f))
    return out


def write_key(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(KEY + "\n")
    return path


# ---- running deid-ocr -------------------------------------------------------------------------------

class Run:
    """One deid-ocr run over a corpus: console, time, and each input's report and output."""

    def __init__(self, tool, corpus, work, options, workers, key=None):
        self.out, self.hdr = os.path.join(work, "out"), os.path.join(work, "hdr")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        key = key or write_key(os.path.join(work, "key"))
        self.images = os.path.join(corpus, "images")
        self.args = [tool, self.images, self.out, self.hdr, "--key", key, "--workers",
                     str(workers), "--quiet"] + list(options)
        phi = os.path.join(corpus, "phi.txt")
        if os.path.exists(phi) and "--phi-file" not in options:
            self.args += ["--phi-file", phi]
        t = time.monotonic()
        p = subprocess.run(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.seconds = time.monotonic() - t
        self.rc, self.stdout, self.stderr = p.returncode, p.stdout.decode(errors="replace"), \
            p.stderr.decode(errors="replace")
        self.outputs = self._dicom_outputs()

    def _dicom_outputs(self):
        """input file name -> output path (relative to OUTPUT) for DICOM files, from keys.csv."""
        keys, out = os.path.join(self.hdr, "keys.csv"), {}
        if not os.path.exists(keys):
            return out
        with open(keys, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                o = row.get("output_path") or ""
                if not o:
                    continue
                o = os.path.relpath(o, self.out) if os.path.isabs(o) else o
                if o.startswith(".." + os.sep):            # relative to the working directory
                    o = os.path.relpath(os.path.abspath(row["output_path"]), self.out)
                out[os.path.basename(row["original_path"])] = o
        return out

    def output_of(self, truth):
        """Output path (absolute) of a truth's input, or None."""
        rel = truth["file"]
        if rel.endswith(".dcm"):
            o = self.outputs.get(os.path.basename(rel))
            return os.path.join(self.out, o) if o else None
        p = os.path.join(self.out, rel)
        return p if os.path.exists(p) else None

    def report_of(self, truth):
        """The parsed <name>_text.json of a truth's input, or None."""
        rel = truth["file"]
        if rel.endswith(".dcm"):
            o = self.outputs.get(os.path.basename(rel))
            if not o:
                return None
            path = os.path.join(self.hdr, os.path.splitext(o)[0] + "_text.json")
        else:
            path = os.path.join(self.hdr, os.path.splitext(rel)[0] + "_text.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def explain(self):
        return (f"{' '.join(self.args)}\nexit {self.rc}\n--- stdout\n{self.stdout[-3000:]}\n"
                f"--- stderr\n{self.stderr[-3000:]}")


# ---- scoring -----------------------------------------------------------------------------------

def masks(truth, report, decision="redacted", pad=PAD, source="pixels", passes=None):
    """Per frame, the union of the padded boxes of the report's regions with `decision`
    (None: any) from `source` (and including pass `passes` when given)."""
    rows, cols, frames = truth["rows"], truth["cols"], truth["frames"]
    m = np.zeros((frames, rows, cols), bool)
    for reg in (report or {}).get("regions", []):
        if decision and reg.get("decision") != decision:
            continue
        if not str(reg.get("source", "pixels")).startswith(source):
            continue
        if passes and passes not in reg.get("passes", []):
            continue
        x, y, w, h = reg["box"]
        f = reg.get("frame", 0) if source == "pixels" else 0
        if f >= frames:
            continue
        m[f, max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad] = True
    return m


def coverage(m, box):
    """Least share, over frames, of `box` inside the frame's mask."""
    x, y, w, h = box
    return float(min(m[f, y:y + h, x:x + w].mean() for f in range(m.shape[0])))


def truth_mask(truth, pad=0):
    t = np.zeros((truth["rows"], truth["cols"]), bool)
    for it in truth["items"]:
        if it["source"] == "pixels":
            x, y, w, h = it["box"]
            t[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad] = True
    return t


def over_redaction(truth, m, pad=PAD):
    """Redacted pixels outside the true boxes (grown by the engine's pad: the safety margin
    it adds on purpose; pad=0 for the ink boxes themselves) / pixels outside them (mean over
    frames)."""
    t = truth_mask(truth, pad)
    outside = (~t).sum()
    if outside == 0:
        return 0.0
    return float(np.mean([(m[f] & ~t).sum() / outside for f in range(m.shape[0])]))


def size_band(size):
    for lo, hi in SIZE_BANDS:
        if lo <= size <= hi:
            return f"{lo:2d}-{hi:2d} px"
    return f"{size} px"


def font_family(font):
    for fam in ("DejaVuSansMono", "DejaVuSerif", "DejaVuSans", "LiberationMono",
                "LiberationSerif", "LiberationSans", "FreeMono", "FreeSans"):
        if font.startswith(fam):
            return fam + ("-Bold" if "Bold" in font else "")
    return font


def facets(truth, it):
    return {"size": size_band(it["size"]), "contrast": it.get("contrast_band", "?"),
            "inverted": ("label box" if it.get("label") else "dark on light")
            if it.get("inverted") else "no",
            "colour": it.get("colour") or ("grey on RGB" if truth["channels"] == 3 else "grey"),
            "format": truth["format"], "background": truth["background"], "kind": it["kind"],
            "font": font_family(it["font"]), "zone": it.get("zone", "?")}


class Score:
    """Recall of one run, item by item."""

    def __init__(self, run, truths):
        self.items, self.missing_reports, self.over, self.region_passes = [], [], [], {}
        self.value = {}   # id(item) -> coverage of a labelled PHI field's value box
        self.over_ink = []
        self.residual_files, self.overlay = 0, {"items": 0, "found": 0, "planes_left": 0,
                                                "files": 0}
        self.regions_total = 0
        for t in truths:
            rep = run.report_of(t)
            if rep is None:
                self.missing_reports.append(t["file"])
            m = masks(t, rep)
            if rep is not None:
                self.over.append((over_redaction(t, m), t["file"]))
                self.over_ink.append(over_redaction(t, m, 0))
                regs = rep.get("regions", [])
                self.regions_total += len(regs)
                if any(r.get("residual") for r in regs):
                    self.residual_files += 1
                for r in regs:
                    k = "+".join(sorted(r.get("passes", []))) or "none"
                    self.region_passes[k] = self.region_passes.get(k, 0) + 1
            ov = None
            for it in t["items"]:
                if it["source"] != "pixels":
                    if ov is None:
                        ov = masks(t, rep, decision=None, source="overlay")
                    self.overlay["items"] += 1
                    self.overlay["found"] += coverage(ov, it["box"]) >= FOUND
                    continue
                self.items.append((t, it, coverage(m, it["box"])))
                if "value_box" in it:
                    self.value[id(it)] = coverage(m, it["value_box"])
            if t["format"] == "overlay":
                self.overlay["files"] += 1
                out = run.output_of(t)
                if out and has_overlay(out):
                    self.overlay["planes_left"] += 1

    def recall(self, pred=lambda t, it: True, need=FOUND, value=False):
        """Share of the items `pred` selects found (and how many); value: a labelled PHI
        field counts by its value's box."""
        sel = [self.value.get(id(it), c) if value else c for t, it, c in self.items
               if pred(t, it)]
        return (sum(c >= need for c in sel) / len(sel) if sel else float("nan")), len(sel)

    def misses(self, pred=lambda t, it: True, need=FOUND, value=False):
        return [(t, it, self.value.get(id(it), c) if value else c) for t, it, c in self.items
                if pred(t, it) and (self.value.get(id(it), c) if value else c) < need]


def has_overlay(path):
    import pydicom
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return any(0x6000 <= e.tag.group <= 0x601E and e.tag.group % 2 == 0 for e in ds)


# ---- printing ------------------------------------------------------------------------------------

def pct(x):
    return "  n/a" if x != x else f"{100 * x:5.1f}%"


def breakdown(score, title):
    print(f"\n{title}")
    keys = ["size", "contrast", "inverted", "colour", "format", "background", "kind", "font",
            "zone"]
    for key in keys:
        groups = {}
        for t, it, c in score.items:
            g = facets(t, it)[key]
            groups.setdefault(g, []).append(c >= FOUND)
        cells = [f"{g} {pct(sum(v) / len(v)).strip()} ({len(v)})" for g, v in sorted(groups.items())]
        print(f"  {key:<10} " + "; ".join(cells))


def print_misses(score, limit, title, pred=lambda t, it: True, value=False):
    miss = score.misses(pred, value=value)
    print(f"\n{title}: {len(miss)}" + (f" (first {limit})" if len(miss) > limit else ""))
    for t, it, c in sorted(miss, key=lambda m: (m[0]["file"], m[1]["box"][1]))[:limit]:
        f = facets(t, it)
        box = it.get("value_box", it["box"]) if value else it["box"]
        print(f"  {t['file']:<22} box {box} {it['kind']:<10} "
              f"{it['size']:2d}px "
              f"contrast {it['contrast']:5.1f} {f['inverted']:<13} {f['colour']:<11} "
              f"{f['font']:<20} {f['zone']:<11} covered {100 * c:3.0f}%  {it['text']!r}")


def summary_over(score):
    v = sorted(o for o, _ in score.over)
    if not v:
        return {}
    return {"mean": float(np.mean(v)), "p95": float(v[min(len(v) - 1, int(0.95 * len(v)))]),
            "max": v[-1], "share_le_2pct": sum(o <= 0.02 for o in v) / len(v)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20240704)
    ap.add_argument("--corpus", help="reuse (or generate once into) this corpus directory")
    ap.add_argument("--size", help="generate every image RxC")
    ap.add_argument("--tool")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--modes", default="all,phi,lines,page")
    ap.add_argument("--misses", type=int, default=40, help="misses printed per run")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", help="keep the runs' outputs and reports in this directory")
    ap.add_argument("--tool-args", default="", help="extra deid-ocr options for every run")
    a = ap.parse_args(argv)
    tool = find_tool(a.tool)
    if not tool or not os.access(tool, os.X_OK):
        print("eval_corpus: deid-ocr not found (build it, or give --tool / $DEID_OCR)",
              file=sys.stderr)
        return 1
    modes = [m for m in a.modes.split(",") if m]
    tmp = tempfile.mkdtemp(prefix="deid-ocr-eval-")
    try:
        corpus = a.corpus or os.path.join(tmp, "corpus")
        if not os.path.exists(os.path.join(corpus, "manifest.json")):
            t = time.monotonic()
            generate(corpus, a.count, a.seed, ["--size", a.size] if a.size else [])
            print(f"generated {a.count} images in {time.monotonic() - t:.1f} s -> {corpus}")
        truths = load_truth(corpus)
        work = a.keep or tmp
        figures = {"images": len(truths), "tool": tool, "workers": a.workers}
        scores = {}
        for mode in modes:
            run = Run(tool, corpus, os.path.join(work, "run-" + mode),
                      MODES[mode] + shlex.split(a.tool_args), a.workers)
            if run.rc not in (0, 1):
                print(run.explain(), file=sys.stderr)
                return 1
            s = Score(run, truths)
            scores[mode] = s
            rec, n = s.recall()
            failed = [ln for ln in run.stderr.splitlines() if ln.strip()]
            figures[mode] = {"recall": rec, "items": n, "seconds": run.seconds,
                             "seconds_per_image": run.seconds / max(1, len(truths)),
                             "exit": run.rc, "missing_reports": len(s.missing_reports),
                             "residual_refused": s.residual_files,
                             "regions": s.regions_total}
            print(f"\n== --redact {' '.join(MODES[mode][1:])} {a.tool_args}: exit {run.rc}, "
                  f"{run.seconds:.1f} s for {len(truths)} images = "
                  f"{run.seconds / max(1, len(truths)):.3f} s/image wall with {a.workers} "
                  f"workers ({run.seconds * a.workers / max(1, len(truths)):.3f} "
                  f"worker-s/image)")
            if failed:
                print(f"  stderr ({len(failed)} lines): " + " | ".join(failed[:5]))
            if s.missing_reports:
                refused = [f for f in s.missing_reports
                           if any(os.path.basename(f) in ln and "residual" in ln
                                  for ln in failed)]
                print(f"  no _text.json for {len(s.missing_reports)} inputs (their boxes count "
                      f"as missed; {len(refused)} of them refused by the residual check): "
                      + ", ".join(s.missing_reports[:8]))
                figures[mode]["refused_without_report"] = len(refused)
                kept = set(s.missing_reports)
                r2, n2 = s.recall(lambda t, it: t["file"] not in kept)
                print(f"  recall over the {len(truths) - len(kept)} files with a report: "
                      f"{r2:.4f} ({n2} boxes)")
            print(f"  text-region recall {rec:.4f} ({n} boxes; target >= 0.95)"
                  if mode != "phi" else f"  region recall (redacted) {rec:.4f} ({n} boxes)")
            if mode == "all":
                ov = summary_over(s)
                figures["all"]["over_redaction"] = ov
                if ov:
                    print(f"  over-redaction per image: mean {pct(ov['mean'])}, p95 "
                          f"{pct(ov['p95'])}, max {pct(ov['max'])}, images <= 2%: "
                          f"{pct(ov['share_le_2pct'])} (target: <= 2%)")
                    ink = sorted(s.over_ink)
                    print(f"  (against the unpadded ink boxes: mean {pct(float(np.mean(ink)))}, "
                          f"p95 {pct(ink[min(len(ink) - 1, int(0.95 * len(ink)))])})")
                    worst = sorted(s.over, reverse=True)[:5]
                    print("  most over-redacted: " + ", ".join(f"{f} {pct(o).strip()}"
                                                               for o, f in worst))
                rp = s.region_passes
                figures["all"]["region_passes"] = rp
                print(f"  merged regions: lines only {rp.get('lines', 0)}, page only "
                      f"{rp.get('page', 0)}, both {rp.get('lines+page', 0)}"
                      f"; files refused by the residual check: {s.residual_files}")
                if s.overlay["files"]:
                    o = s.overlay
                    print(f"  overlay text reported {o['found']}/{o['items']}; overlay planes "
                          f"left in outputs: {o['planes_left']}/{o['files']}")
                breakdown(s, "recall by (share found, boxes):")
                print_misses(s, a.misses, "misses (--redact all)")
            if mode == "phi":
                phi, nphi = s.recall(lambda t, it: it["is_phi"], value=True)
                ann, nann = s.recall(lambda t, it: it["kind"] == "annotation", ANNOT_HIT)
                oth, noth = s.recall(lambda t, it: it["kind"] == "other", ANNOT_HIT)
                figures["phi"].update(phi_recall=phi, phi_items=nphi, annotation_redacted=ann,
                                      annotations=nann, other_redacted=oth)
                field = s.recall(lambda t, it: it["is_phi"])[0]
                figures["phi"]["phi_field_recall"] = field
                print(f"  PHI-string recall {phi:.4f} ({nphi} names, IDs, dates; target >= 0.98;"
                      f" {len(s.value)} of them after a label)")
                print(f"    whole fields, labels included: {field:.4f}")
                for kind in ("name", "id", "date"):
                    r, k = s.recall(lambda t, it: it["kind"] == kind, value=True)
                    print(f"    {kind:<5} {r:.4f} ({k})")
                print(f"  annotations redacted (false redaction) {pct(ann)} of {nann}; "
                      f"other text (institution, time) redacted {pct(oth)} of {noth}")
                print_misses(s, a.misses, "PHI misses (--redact phi)",
                             lambda t, it: it["is_phi"], value=True)
                wrong = [(t, it) for t, it, c in s.items
                         if it["kind"] == "annotation" and c >= ANNOT_HIT]
                if wrong:
                    print("  annotations redacted: " + ", ".join(
                        f"{t['file']} {it['text']!r}" for t, it in wrong[:15]))
        if "lines" in scores or "page" in scores:
            print("\n== passes")
            for mode in ("all", "lines", "page"):
                if mode in scores:
                    print(f"  recall with {mode:<5}: {scores[mode].recall()[0]:.4f}, "
                          f"{figures[mode]['seconds_per_image']:.3f} s/image wall")
            if "lines" in scores and "page" in scores:
                lf = {id(it): c >= FOUND for t, it, c in scores["lines"].items}
                both = [(c >= FOUND, lf[id(it)]) for t, it, c in scores["page"].items]
                print(f"  true boxes found only by lines {sum(l and not p for p, l in both)}, "
                      f"only by page {sum(p and not l for p, l in both)}, by both "
                      f"{sum(p and l for p, l in both)}, by neither "
                      f"{sum(not p and not l for p, l in both)}")
        print("\n== summary")
        for k, label in (("all", "text-region recall"), ("phi", "PHI-string recall")):
            if k in figures:
                v = figures[k]["phi_recall"] if k == "phi" else figures[k]["recall"]
                target = 0.98 if k == "phi" else 0.95
                print(f"  {label:<22} {v:.4f}  (target >= {target}) "
                      f"{'ok' if v >= target else 'BELOW TARGET'}")
        if "all" in figures and figures["all"].get("over_redaction"):
            ov = figures["all"]["over_redaction"]
            print(f"  {'over-redaction mean':<22} {pct(ov['mean'])} (p95 {pct(ov['p95'])}, "
                  f"max {pct(ov['max'])}; target <= 2%) "
                  f"{'ok' if ov['p95'] <= 0.02 else 'ABOVE TARGET at p95'}")
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump(figures, f, indent=1)
        return 0
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
