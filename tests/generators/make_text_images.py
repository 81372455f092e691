#!/usr/bin/python3
"""Synthetic medical images with burned-in text (DICOM, PNG, JPEG, TIFF, BMP) and the ground
truth of every text item, for deid-ocr's tests and its evaluation (tests/bench/ocr).

Backgrounds: CT-like (body ellipse, soft-tissue texture, bone ring; 8- or 16-bit), X-ray-like
(gradients, bone-like bands), ultrasound-like (a fan of speckle on black) and plain dark.
Text: the patient's name ("DOE^JOHN", "John Doe", "DOE, JOHN", "Name: ..."), IDs and accession
numbers (6-10 digits or letters and digits, "ID: ..."), birth and study dates in several written
forms (the header's own dates), institution and time ("other", not PHI here), and annotations
that are not PHI ("L", "5 cm", "MI 1.2", "kVp 120", "Se 3 Im 12"...). Fonts: DejaVu, Liberation
and FreeFont (Sans, Serif, Mono, Bold) at 8-40 px; placed mostly in corner stacks and bands, some
in the centre; contrast from faint (>= 50 grey levels above the local background) to full;
inverted (dark text on a light label box or on a light background); coloured (yellow, green,
cyan, orange) on RGB images.

Formats: DICOM MONOCHROME2 8- and 16-bit, RGB, multi-frame (the same text on every frame), and
with an overlay plane (6000) holding more text; the header's PatientName, PatientID,
PatientBirthDate, StudyDate and AccessionNumber are the PHI burned into the pixels (one patient
per DICOM file). Raster files (PNG, JPEG, TIFF, BMP; grey or RGB) all show one patient, whose
terms are in phi.txt (deid-ocr --phi-file format).

Layout of --out:
  images/dicom/<name>.dcm, images/raster/<name>.{png,jpg,tif,bmp}   the inputs (nothing else)
  truth/<name>.json   ground truth: file (relative to images/), format, rows, cols, frames,
                      channels, bits, background, patient, items: [{box [x, y, w, h] tight to the
                      ink (alpha >= 20%), text, kind (name|id|date|other|annotation), is_phi,
                      source ("pixels" | "overlay 6000"), font, size (px), contrast (grey levels
                      between the text and the median background under it), inverted, colour
                      (null or name), zone, and for a labelled PHI field ("DOB: 1984...")
                      value_box: the ink box of the value after the label}]
  phi.txt             the raster patient's terms (name:, id:, date: lines)
  manifest.json       options and the list of truth files
The output is a pure function of the options and --seed; image i is the same whatever --count is.

Usage: make_text_images.py --out DIR [--count N] [--seed S] [--size RxC] [--formats LIST]
                           [--jobs J]
  --size RxC      every image this size (default: per background, 480x640 to 1024x1024)
  --formats LIST  comma list of dicom8,dicom16,dicomrgb,multiframe,overlay,png,jpeg,tiff,bmp
                  (default: all, weighted towards DICOM)
Requires numpy, pydicom >= 2.2, PIL and the fonts of fonts-dejavu-core, fonts-liberation2 and
fonts-freefont-ttf (missing font files are skipped).
"""
import argparse
import datetime
import json
import multiprocessing
import os
import random
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

UID_ROOT = "1.2.826.0.1.3680043.9.7777.23"   # test root shared with make_phi_corpus.py, arc 23
SOP = {"CT": "1.2.840.10008.5.1.4.1.1.2", "US": "1.2.840.10008.5.1.4.1.1.6.1",
       "USMF": "1.2.840.10008.5.1.4.1.1.3.1", "XA": "1.2.840.10008.5.1.4.1.1.12.1",
       "SC": "1.2.840.10008.5.1.4.1.1.7"}
FONT_FILES = [
    "dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSerif.ttf",
    "dejavu/DejaVuSerif-Bold.ttf", "dejavu/DejaVuSansMono.ttf", "dejavu/DejaVuSansMono-Bold.ttf",
    "liberation2/LiberationSans-Regular.ttf", "liberation2/LiberationSans-Bold.ttf",
    "liberation2/LiberationSerif-Regular.ttf", "liberation2/LiberationSerif-Bold.ttf",
    "liberation2/LiberationMono-Regular.ttf", "liberation2/LiberationMono-Bold.ttf",
    "freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf", "freefont/FreeMono.ttf",
    "freefont/FreeMonoBold.ttf"]
FONT_ROOT = "/usr/share/fonts/truetype"
COLOURS = {"yellow": (245, 235, 60), "green": (80, 235, 80), "cyan": (70, 225, 235),
           "orange": (255, 160, 40)}
FORMAT_WEIGHTS = {"dicom8": 10, "dicom16": 10, "dicomrgb": 8, "multiframe": 5, "overlay": 5,
                  "png": 9, "jpeg": 7, "tiff": 7, "bmp": 6}
SIZE_BANDS = [(8, 11), (12, 17), (18, 27), (28, 40)]
INK = 51          # alpha (0..255) from which a pixel is ink for the ground-truth box
GAP = 6           # free pixels kept between two text items

# Invented people and places: any resemblance is accidental. Name parts have >= 4 letters so
# that no annotation matches them.
FIRST = ["Adelina", "Bertram", "Cosima", "Desmond", "Eleonora", "Florian", "Gunilla", "Horatio",
         "Isadora", "Jasper", "Katarina", "Leopold", "Marisol", "Nikolai", "Ottilie", "Percival",
         "Rosalind", "Sebastian", "Theodora", "Ulysses", "Valentina", "Wilhelmina", "Yolanda",
         "Zebulon", "Benedikt", "Cordelia", "Evander", "Fenella"]
LAST = ["Abernethy", "Blackwood", "Carrington", "Delacroix", "Ellsworth", "Fitzgerald",
        "Grimaldi", "Hargreaves", "Isenberg", "Jorgensen", "Kowalski", "Lindqvist", "Montague",
        "Nakashima", "Oyelowo", "Pemberton", "Quisling", "Rasmussen", "Sorensen", "Thornbury",
        "Underhill", "Vasquez", "Whitcombe", "Yamamoto", "Zimmerman", "Ashcroft", "Brennan"]
INSTITUTIONS = ["Northvale General Hospital", "ST ALDRIC MEDICAL CENTRE", "Lakeside Clinic",
                "RIVERBEND IMAGING", "Harrowgate University Hospital", "Meridian Radiology"]
ANNOTATIONS = ["L", "R", "5 cm", "10 cm", "MI 1.2", "TIS 0.4", "kVp 120", "mAs 250", "HEAD",
               "CHEST", "ABDOMEN", "1/34", "12/40", "Se 3 Im 12", "Se 2 Im 7", "W 400 L 40",
               "W 1500 L 450", "AP", "PA", "SUPINE", "Zoom 1.5", "2.5 mm", "FOV 350", "ST 5.0",
               "Gain 52", "Depth 16", "1:1", "Frq 3.5 MHz", "LAT", "PORTABLE"]
DATE_FORMATS = ["%Y%m%d", "%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y",
                "%d-%b-%Y", "%b {day} %Y", "{day} %B %Y"]


def fonts():
    out = [f for f in FONT_FILES if os.path.exists(os.path.join(FONT_ROOT, f))]
    if not out:
        sys.exit("make_text_images: no font found under " + FONT_ROOT)
    return out


# ---- patients --------------------------------------------------------------------------------

def make_patient(r):
    first, last = r.choice(FIRST), r.choice(LAST)
    if r.random() < 0.6:
        pid = "".join(r.choice("0123456789") for _ in range(r.randint(6, 10)))
    else:
        pid = (r.choice(["A", "B", "K", "M", "X"]) + r.choice(["B", "R", "Z", "T"]) +
               "".join(r.choice("0123456789") for _ in range(r.randint(5, 7))))
    birth = datetime.date(1930, 1, 1) + datetime.timedelta(days=r.randint(0, 30000))
    study = datetime.date(2005, 1, 1) + datetime.timedelta(days=r.randint(0, 6900))
    acc = "".join(r.choice("0123456789") for _ in range(r.randint(7, 9)))
    return {"first": first, "last": last, "pn": f"{last.upper()}^{first.upper()}", "id": pid,
            "birth": birth.strftime("%Y%m%d"), "study": study.strftime("%Y%m%d"),
            "accession": "A" + acc}


def write_date(r, yyyymmdd):
    d = datetime.datetime.strptime(yyyymmdd, "%Y%m%d")
    fmt = r.choice(DATE_FORMATS).replace("{day}", str(d.day))
    return d.strftime(fmt)


def phi_items(r, p):
    """(text, kind) of the patient's PHI items shown on one image."""
    first, last = p["first"], p["last"]
    name = r.choice([f"{last.upper()}^{first.upper()}", f"{first} {last}",
                     f"{last.upper()}, {first.upper()}", f"Name: {last.upper()}^{first.upper()}",
                     f"{last}, {first}", f"{first.upper()} {last.upper()}",
                     f"Patient: {first} {last}"])
    out = [(name, "name")]
    if r.random() < 0.85:
        out.append((r.choice(["ID: ", "MRN: ", "PID ", "", "ID "]) + p["id"], "id"))
    if r.random() < 0.6:
        out.append((r.choice(["DOB: ", "Born ", "", "DOB "]) + write_date(r, p["birth"]), "date"))
    if r.random() < 0.7:
        out.append((r.choice(["", "Study: ", "Date: "]) + write_date(r, p["study"]), "date"))
    if r.random() < 0.3:
        out.append((r.choice(["Acc: ", "ACC# ", ""]) + p["accession"], "id"))
    return out


def other_items(r):
    out = []
    if r.random() < 0.4:
        out.append((r.choice(INSTITUTIONS), "other"))
    if r.random() < 0.4:
        out.append((f"{r.randint(7, 19):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
                    "other"))
    for a in r.sample(ANNOTATIONS, r.randint(1, 4)):
        out.append((a, "annotation"))
    return out


# ---- backgrounds (float32 display levels 0..255) ----------------------------------------------

def smooth_noise(g, rows, cols, scale, sigma):
    small = g.normal(0, sigma, (max(2, rows // scale), max(2, cols // scale))).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((cols, rows), Image.BICUBIC))


def bg_ct(g, rows, cols):
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows * g.uniform(0.45, 0.55), cols * g.uniform(0.45, 0.55)
    ay, ax = rows * g.uniform(0.28, 0.40), cols * g.uniform(0.30, 0.42)
    d = np.sqrt(((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2)
    img = np.full((rows, cols), g.uniform(2, 12), np.float32)
    tissue = 95 + smooth_noise(g, rows, cols, 16, 12) + smooth_noise(g, rows, cols, 3, 5)
    img = np.where(d < 1.0, tissue, img)
    img = np.where((d > 0.80) & (d < 0.88), 215 + smooth_noise(g, rows, cols, 8, 10), img)
    img = np.where((d < 0.80) & (d > 0.76), 75, img)          # fat under the bone
    for _ in range(g.integers(1, 4)):                          # organs
        oy, ox = cy + g.uniform(-0.4, 0.4) * ay, cx + g.uniform(-0.4, 0.4) * ax
        ry, rx = g.uniform(0.08, 0.2) * ay, g.uniform(0.08, 0.2) * ax
        o = ((yy - oy) / ry) ** 2 + ((xx - ox) / rx) ** 2 < 1
        img = np.where(o, img + g.uniform(-25, 35), img)
    table = int(cy + ay * 1.12)
    if table + 6 < rows:
        img[table:table + 4, int(cols * 0.15):int(cols * 0.85)] = 60
    return img + g.normal(0, 2.0, img.shape).astype(np.float32)


def bg_xray(g, rows, cols):
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    a = g.uniform(0, np.pi)
    grad = (np.cos(a) * xx / cols + np.sin(a) * yy / rows)
    img = g.uniform(30, 70) + g.uniform(20, 60) * grad
    for _ in range(g.integers(2, 5)):                          # bone-like bands
        b = g.uniform(0, np.pi)
        off = g.uniform(0.2, 0.8) * (rows + cols) / 2
        dist = np.abs(np.cos(b) * xx + np.sin(b) * yy - off)
        width = g.uniform(0.03, 0.08) * cols
        img = img + g.uniform(50, 110) * np.exp(-(dist / width) ** 2)
    img = img + smooth_noise(g, rows, cols, 24, 8) + g.normal(0, 2.5, img.shape)
    if g.random() < 0.4:                                       # collimation: dark borders
        m = int(g.uniform(0.03, 0.08) * min(rows, cols))
        img[:m, :] = img[-m:, :] = 8
        img[:, :m] = img[:, -m:] = 8
    return np.clip(img, 0, 255).astype(np.float32)


def bg_us(g, rows, cols):
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    ay, ax = rows * 0.10, cols / 2
    r = np.sqrt((yy - ay + rows * 0.05) ** 2 + (xx - ax) ** 2)
    th = np.arctan2(xx - ax, yy - ay + rows * 0.05)
    half = g.uniform(0.45, 0.7)
    fan = (np.abs(th) < half) & (r > rows * 0.08) & (r < rows * 0.88)
    speckle = g.rayleigh(1.0, (rows, cols)).astype(np.float32)
    speckle = np.asarray(Image.fromarray(speckle, "F").resize(
        (cols // 2, rows // 2), Image.BILINEAR).resize((cols, rows), Image.BILINEAR))
    tissue = np.clip(60 * speckle * (1 + 0.5 * smooth_noise(g, rows, cols, 20, 0.6)), 0, 230)
    tissue = tissue * np.exp(-r / (rows * 1.5))
    img = np.where(fan, tissue, 0).astype(np.float32)
    return img + np.abs(g.normal(0, 1.0, img.shape)).astype(np.float32)


def bg_dark(g, rows, cols):
    return (np.full((rows, cols), g.uniform(0, 25), np.float32) +
            g.normal(0, 2.0, (rows, cols)).astype(np.float32))


BACKGROUNDS = {"ct": bg_ct, "xray": bg_xray, "us": bg_us, "dark": bg_dark}
DEFAULT_SIZES = {"ct": [(512, 512)], "xray": [(1024, 1024), (1000, 800), (768, 1024)],
                 "us": [(480, 640), (600, 800)], "dark": [(512, 512), (600, 800)]}


# ---- text --------------------------------------------------------------------------------------

def render(text, font_path, size):
    """Alpha mask (uint8) of `text` cut to its ink box (alpha >= INK), with a 2-pixel fringe."""
    font = ImageFont.truetype(os.path.join(FONT_ROOT, font_path), size)
    x0, y0, x1, y1 = font.getbbox(text)
    pad = 4
    im = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 0)
    ImageDraw.Draw(im).text((pad - x0, pad - y0), text, font=font, fill=255)
    a = np.asarray(im)
    ys, xs = np.nonzero(a >= INK)
    if len(xs) == 0:
        return None, None
    bx0, by0, bx1, by1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    f = 2
    cx0, cy0 = max(0, bx0 - f), max(0, by0 - f)
    cut = a[cy0:by1 + f, cx0:bx1 + f]
    return cut, (int(bx0 - cx0), int(by0 - cy0), int(bx1 - bx0), int(by1 - by0))


LABELS = ("Name: ", "Patient: ", "MRN: ", "PID ", "ID: ", "ID ", "DOB: ", "DOB ", "Born ",
          "Study: ", "Date: ", "Acc: ", "ACC# ")


def value_ink(text, font_path, size):
    """Ink box (x, y, w, h), relative to render()'s ink box, of what follows a PHI label
    ("DOB: ", "MRN: "...) in `text`: the identifying value itself. None without a label."""
    prefix = next((lb for lb in LABELS if text.startswith(lb) and len(text) > len(lb)), None)
    if prefix is None:
        return None
    font = ImageFont.truetype(os.path.join(FONT_ROOT, font_path), size)
    x0, y0, x1, y1 = font.getbbox(text)
    pad = 4
    im = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 0)
    ImageDraw.Draw(im).text((pad - x0, pad - y0), text, font=font, fill=255)
    a = np.asarray(im)
    ys, xs = np.nonzero(a >= INK)
    start = int(pad - x0 + font.getlength(prefix))
    vys, vxs = np.nonzero(a[:, start:] >= INK)
    if len(vxs) == 0:
        return None
    return (int(vxs.min() + start - xs.min()), int(vys.min() - ys.min()),
            int(vxs.max() - vxs.min() + 1), int(vys.max() - vys.min() + 1))


def overlaps(box, taken, gap=GAP):
    x, y, w, h = box
    for (a, b, c, d) in taken:
        if x < a + c + gap and a < x + w + gap and y < b + d + gap and b < y + h + gap:
            return True
    return False


class Placer:
    """Corner stacks (tl, tr, bl, br), a top and a bottom band, and free central positions."""

    def __init__(self, r, rows, cols):
        self.r, self.rows, self.cols = r, rows, cols
        self.m = r.randint(3, max(4, min(rows, cols) // 30))
        self.cursor = {z: self.m for z in ("tl", "tr", "bl", "br")}
        self.taken = []

    def place(self, zone, w, h, extra):
        """Top-left of a w x h box (extra: label padding around it) in zone, or None."""
        r, rows, cols, m = self.r, self.rows, self.cols, self.m + extra
        for _ in range(12):
            if zone in self.cursor:
                top, left = zone[0] == "t", zone[1] == "l"
                off = self.cursor[zone] + extra
                x = m if left else cols - m - w
                y = off if top else rows - off - h
            elif zone in ("band_top", "band_bottom"):
                x = r.randint(m, max(m, cols - m - w))
                y = m if zone == "band_top" else rows - m - h
            else:
                x = r.randint(int(cols * 0.2), max(int(cols * 0.2), int(cols * 0.8) - w))
                y = r.randint(int(rows * 0.2), max(int(rows * 0.2), int(rows * 0.8) - h))
            box = (x - extra, y - extra, w + 2 * extra, h + 2 * extra)
            if x - extra < 1 or y - extra < 1 or x + w + extra > cols - 1 or \
                    y + h + extra > rows - 1:
                return None
            if not overlaps(box, self.taken):
                self.taken.append(box)
                if zone in self.cursor:
                    self.cursor[zone] += h + 2 * extra + r.randint(GAP, GAP + 8)
                return x, y
            if zone in self.cursor:
                self.cursor[zone] += h // 2 + 2
            elif zone.startswith("band"):
                zone = "tl" if zone == "band_top" else "bl"
        return None


def pick_zone(r, kind):
    if kind in ("name", "id", "date"):
        return r.choices(["tl", "tr", "bl", "br", "band_top", "centre"],
                         [30, 25, 10, 10, 13, 12])[0]
    if kind == "other":
        return r.choices(["tl", "tr", "bl", "br", "band_bottom"], [15, 25, 15, 25, 20])[0]
    return r.choices(["bl", "br", "tl", "tr", "band_bottom", "centre"],
                     [27, 27, 11, 11, 12, 12])[0]


def pick_size(r, rows, cols):
    lo, hi = r.choice(SIZE_BANDS)
    s = r.randint(lo, hi)
    return min(s, max(8, min(rows, cols) // 14))


# ---- one image ------------------------------------------------------------------------------------

def luminance(rgb):
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def draw_items(r, img, items, font_list, colour_ok, taken_from=None, binary=False):
    """Composite `items` [(text, kind)] into img (float32, HxW or HxWx3); return the truth."""
    rows, cols = img.shape[:2]
    pl = Placer(r, rows, cols)
    if taken_from is not None:
        pl.taken = list(taken_from)
    base_font = r.choice(font_list)
    truth = []
    for text, kind in items:
        font = base_font if r.random() < 0.6 else r.choice(font_list)
        size = pick_size(r, rows, cols)
        zone = pick_zone(r, kind)
        label = not binary and r.random() < 0.12
        extra = r.randint(2, 5) if label else 0
        spot = None
        for _ in range(4):
            mask, ink = render(text, font, size)
            if mask is None:
                break
            w, h = ink[2], ink[3]
            if w <= cols * 0.6:
                spot = pl.place(zone, w, h, extra)
                if spot:
                    break
            size = max(8, int(size * 0.75))
            zone = r.choice(["tl", "tr", "bl", "br", "centre"])
        if not spot:
            continue
        x, y = spot
        w, h = ink[2], ink[3]
        ox, oy = x - ink[0], y - ink[1]          # where the mask's corner goes
        mh, mw = mask.shape
        mx0, my0 = max(0, -ox), max(0, -oy)
        mx1, my1 = min(mw, cols - ox), min(mh, rows - oy)
        alpha = mask[my0:my1, mx0:mx1].astype(np.float32) / 255.0
        sl = (slice(oy + my0, oy + my1), slice(ox + mx0, ox + mx1))
        grey = img if img.ndim == 2 else img.mean(axis=2)
        bgmed = float(np.median(grey[y:y + h, x:x + w]))
        inverted, colour = False, None
        band = r.choices(["faint", "medium", "full"], [30, 30, 40])[0]
        c = {"faint": r.uniform(50, 90), "medium": r.uniform(90, 160),
             "full": r.uniform(160, 255)}[band]
        if label:                                 # dark text on a light label box
            boxlevel = r.uniform(max(170.0, min(255.0, c + 10)), 255)
            bx = (slice(y - extra, y + h + extra), slice(x - extra, x + w + extra))
            img[bx] = boxlevel
            level = max(0.0, boxlevel - c)
            bgmed, inverted = boxlevel, True
        elif bgmed + c <= 255:
            level = bgmed + c
        elif bgmed - c >= 0:
            level, inverted = bgmed - c, True
        else:
            level = 255.0 if 255 - bgmed >= bgmed else 0.0
            inverted = level == 0.0
        if binary:
            level, inverted = 255.0, False
        rgb = None
        if colour_ok and not inverted and r.random() < 0.5:
            colour = r.choice(list(COLOURS))
            k = max(0.55, min(1.0, (bgmed + c) / luminance(COLOURS[colour])))
            rgb = [k * v for v in COLOURS[colour]]
            level = luminance(rgb)
        if img.ndim == 2:
            img[sl] = img[sl] * (1 - alpha) + level * alpha
        else:
            a3 = alpha[..., None]
            col = np.array(rgb if rgb else [level] * 3, np.float32)
            img[sl] = img[sl] * (1 - a3) + col * a3
        truth.append({"box": [int(x), int(y), int(w), int(h)], "text": text, "kind": kind,
                      "is_phi": kind in ("name", "id", "date"), "source": "pixels",
                      "font": os.path.basename(font), "size": size,
                      "contrast": round(abs(level - bgmed), 1), "contrast_band": band,
                      "inverted": inverted, "label": label, "colour": colour, "zone": zone})
        v = value_ink(text, font, size) if kind in ("name", "id", "date") else None
        if v:                                     # the value after "DOB: ", "MRN: "...
            truth[-1]["value_box"] = [int(x + v[0]), int(y + v[1]), v[2], v[3]]
    return truth, pl.taken


def make_overlay(r, rows, cols, font_list, items, taken):
    """A 1-bit overlay plane holding `items`; returns (plane uint8 0/1, truth)."""
    plane = np.zeros((rows, cols), np.float32)
    truth, _ = draw_items(r, plane, items, font_list, False, taken_from=taken, binary=True)
    bits = (plane >= 127).astype(np.uint8)
    for t in truth:
        t.update(source="overlay 6000", contrast=255.0, contrast_band="full", inverted=False,
                 colour=None, label=False)
    return bits, truth


def plan(seed, index, formats):
    r = random.Random(seed * 1000003 + index)
    fmt = r.choices(formats, [FORMAT_WEIGHTS[f] for f in formats])[0]
    if fmt == "dicom16":
        bg = "ct"
    elif fmt == "multiframe":
        bg = r.choice(["xray", "us"])
    else:
        bg = r.choice(list(BACKGROUNDS))
    rgb = fmt == "dicomrgb" or (fmt in ("png", "jpeg", "tiff", "bmp") and r.random() < 0.5)
    return r, fmt, bg, rgb


def make_one(args):
    seed, index, formats, size, out, raster_patient = args
    r, fmt, bg, rgb = plan(seed, index, formats)
    g = np.random.default_rng([seed, index])
    rows, cols = size if size else r.choice(DEFAULT_SIZES[bg])
    font_list = fonts()
    patient = raster_patient if fmt in ("png", "jpeg", "tiff", "bmp") else make_patient(r)
    frames = r.randint(2, 4) if fmt == "multiframe" else 1
    base = BACKGROUNDS[bg](g, rows, cols)
    img = np.repeat(base[..., None], 3, axis=2) if rgb else base.copy()
    items = phi_items(r, patient) + other_items(r)
    r.shuffle(items)
    if r.random() < 0.3:                          # central side marker
        items.append((r.choice(["L", "R"]), "annotation"))
    overlay_items = []
    if fmt == "overlay":
        k = r.randint(1, 3)
        overlay_items, items = items[:k], items[k:]
    truth, taken = draw_items(r, img, items, font_list, rgb)
    ov_bits, ov_truth = (None, [])
    if fmt == "overlay":
        ov_bits, ov_truth = make_overlay(r, rows, cols, font_list, overlay_items, taken)
    name = f"t{index:04d}"
    bits = 16 if fmt == "dicom16" else 8
    stack = [img]
    for _ in range(1, frames):                    # text fixed, background moving a little
        shift = np.roll(base, (g.integers(-6, 7), g.integers(-6, 7)), axis=(0, 1))
        f = img.copy()
        textfree = np.ones((rows, cols), bool)
        for t in truth:
            x, y, w, h = t["box"]
            textfree[max(0, y - 8):y + h + 8, max(0, x - 8):x + w + 8] = False
        f[textfree] = shift[textfree] if not rgb else shift[textfree][:, None]
        stack.append(f + g.normal(0, 1.5, f.shape).astype(np.float32))
    if bits == 16:
        pix = [np.clip(np.rint(s * (4095.0 / 255.0)), 0, 4095).astype(np.uint16) for s in stack]
    else:
        pix = [np.clip(np.rint(s), 0, 255).astype(np.uint8) for s in stack]
    if fmt.startswith("dicom") or fmt in ("multiframe", "overlay"):
        rel = os.path.join("dicom", name + ".dcm")
        write_dicom(os.path.join(out, "images", rel), r, fmt, bg, patient, pix, rgb, bits,
                    ov_bits, seed, index)
    else:
        ext = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp"}[fmt]
        rel = os.path.join("raster", name + ext)
        write_raster(os.path.join(out, "images", rel), r, fmt, pix[0])
    doc = {"file": rel, "format": fmt, "rows": rows, "cols": cols, "frames": frames,
           "channels": 3 if rgb else 1, "bits": bits, "background": bg,
           "patient": {k: patient[k] for k in ("pn", "id", "birth", "study", "accession")},
           "items": truth + ov_truth}
    with open(os.path.join(out, "truth", name + ".json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    return name + ".json"


def write_raster(path, r, fmt, pix):
    im = Image.fromarray(pix, "RGB" if pix.ndim == 3 else "L")
    if fmt == "png":
        im.save(path, "PNG")
    elif fmt == "jpeg":
        im.save(path, "JPEG", quality=r.randint(88, 96))
    elif fmt == "tiff":
        im.save(path, "TIFF", compression=r.choice([None, "tiff_adobe_deflate"]))
    else:
        im.save(path, "BMP")


def uid(seed, index, arc):
    return f"{UID_ROOT}.{seed % 100000}.{index}.{arc}"


def write_dicom(path, r, fmt, bg, p, pix, rgb, bits, ov_bits, seed, index):
    frames = len(pix)
    if fmt == "dicom16":
        sop, modality = SOP["CT"], "CT"
    elif bg == "us":
        sop, modality = (SOP["USMF"] if frames > 1 else SOP["US"]), "US"
    elif bg == "xray" and not rgb:
        sop, modality = SOP["XA"], "XA"
    else:
        sop, modality = SOP["SC"], "OT"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = uid(seed, index, 3)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + ".1"
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = sop, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(seed, index, 1), uid(seed, index, 2)
    ds.PatientName, ds.PatientID = p["pn"], p["id"]
    ds.PatientBirthDate, ds.PatientSex = p["birth"], r.choice(["F", "M", "O"])
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = p["study"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.AccessionNumber = p["accession"]
    ds.Modality = modality
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", "1", str(index + 1)
    ds.Manufacturer = "LIBDEID TEST"
    if sop == SOP["SC"]:
        ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "YES"
    rows, cols = pix[0].shape[:2]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits
    ds.BitsStored = 12 if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = "120"
        ds.SliceThickness = "5"
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = "33.3"
    arr = np.stack(pix) if frames > 1 else pix[0]
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    if ov_bits is not None:
        ds.add_new(0x60000010, "US", rows)
        ds.add_new(0x60000011, "US", cols)
        ds.add_new(0x60000040, "CS", "G")
        ds.add_new(0x60000050, "SS", [1, 1])
        ds.add_new(0x60000100, "US", 1)
        ds.add_new(0x60000102, "US", 0)
        ds.add_new(0x60003000, "OW", np.packbits(ov_bits.ravel(), bitorder="little").tobytes())
    ds.save_as(path, write_like_original=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="corpus directory (created)")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20240704)
    ap.add_argument("--size", help="RxC: every image this size")
    ap.add_argument("--formats", default=",".join(FORMAT_WEIGHTS))
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    a = ap.parse_args(argv)
    formats = [f.strip() for f in a.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMAT_WEIGHTS]
    if bad or not formats:
        ap.error(f"unknown format(s) {bad}; choose from {','.join(FORMAT_WEIGHTS)}")
    size = None
    if a.size:
        rr, cc = a.size.lower().split("x")
        size = (int(rr), int(cc))
    for d in ("images/dicom", "images/raster", "truth"):
        os.makedirs(os.path.join(a.out, d), exist_ok=True)
    raster_patient = make_patient(random.Random(a.seed * 7 + 1))
    with open(os.path.join(a.out, "phi.txt"), "w", encoding="utf-8") as f:
        f.write("# the patient shown on every raster image (make_text_images.py)\n")
        f.write(f"name: {raster_patient['pn']}\nid: {raster_patient['id']}\n"
                f"id: {raster_patient['accession']}\ndate: {raster_patient['birth']}\n"
                f"date: {raster_patient['study']}\n")
    jobs = [(a.seed, i, formats, size, a.out, raster_patient) for i in range(a.count)]
    if a.jobs > 1 and a.count > 4:
        with multiprocessing.Pool(a.jobs) as pool:
            names = pool.map(make_one, jobs, chunksize=4)
    else:
        names = [make_one(j) for j in jobs]
    with open(os.path.join(a.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "make_text_images.py", "seed": a.seed, "count": a.count,
                   "size": a.size, "formats": formats, "truth": names}, f, indent=1)
    print(f"{a.count} images -> {a.out}/images (truth in {a.out}/truth)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
