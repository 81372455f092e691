#!/usr/bin/python3
"""Synthetic ultrasound cine clips (DICOM) with ground truth for fan detection and masking.

Each clip is a curvilinear fan, a phased-array sector or a linear rectangle filled with moving
speckled tissue (Rayleigh speckle, smooth layers, pulsating and moving structures, depth
attenuation, sometimes a colour Doppler box), on a black background carrying static burned-in
text (patient name, ID, birth date, study date/time, institution, operator, probe settings, in
DejaVu fonts of 8 to 40 px, white/grey/yellow/green/cyan), a vendor logo, depth ticks, and
sometimes an ECG trace (static or with a moving sweep), a grey bar, a Doppler colour bar and a
static thumbnail. Nothing but scan data is ever drawn inside the scan area, and the PHI burned
into the pixels is the PHI in the header.

Beside every <name>.dcm it writes:
  <name>.json       the scan area in SlicerUltrasound's mask layout (mask_type, center_rows_px,
                    center_cols_px, radius1, radius2, angle1, angle2, image_size_rows,
                    image_size_cols, or rectangle_left/right/top/bottom), its 4 corners in pixels
                    and normalised, the bounding box, every burned-in text line and annotation
                    with its inclusive box [x0, y0, x1, y1], the header's PHI values, the options
                    of the clip (frames, RGB, Doppler, ECG, regions, transfer syntax);
  <name>_mask.png   uint8 0/255 scan-area mask;
  <name>_text.png   uint8 0/255 mask of every burned-in text/annotation pixel (union over frames):
                    the pixels that must be 0 after masking; it never meets the scan area.
and manifest.json listing the clips. Geometry conventions: tests/generators/us_geometry.py and
docs/testing.md. The output is a pure function of the options and --seed; clip i is the same
whatever --count and --jobs are.

Usage:
  make_us_clips.py --out DIR --count N --seed S [--min-frames A --max-frames B]
                   [--sizes tiny|small|full|RxC[,RxC...]] [--kinds curvilinear,phased,linear]
                   [--colour-fraction F] [--rgb-fraction F] [--ecg-fraction F]
                   [--regions-fraction F] [--rle-fraction F] [--jobs J] [--preview]
                   [--geometry JSON]    every clip uses this scan area (its image size too)
Requires numpy, pydicom >= 2.2 and PIL with the DejaVu fonts (Debian: /usr/bin/python3,
python3-pil, fonts-dejavu-core).
"""
import argparse
import datetime
import json
import math
import multiprocessing
import os
import sys
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import us_geometry as geo  # noqa: E402

UID_ROOT = "1.2.826.0.1.3680043.9.7777.21"   # test root shared with make_phi_corpus.py, arc 21
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
         "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansCondensed.ttf",
         "DejaVuSansCondensed-Bold.ttf"]
COLOURS = {"white": (255, 255, 255), "grey": (170, 170, 170), "lightgrey": (210, 210, 210),
           "yellow": (240, 230, 60), "green": (90, 230, 90), "cyan": (90, 220, 230)}
SIZES = {"tiny": [(240, 320)], "small": [(480, 640)],
         "full": [(480, 640), (600, 800), (768, 1024), (720, 1280), (1050, 1400), (1080, 1920)]}
FAN_MARGIN = 4      # no annotation pixel closer than this to the scan area (px)
TEXT_GAP = 3        # free space kept around every annotation

# Invented people, places and devices: any resemblance is accidental.
FIRST = ["ALICE", "BORIS", "CHIARA", "DMITRI", "ELENA", "FARID", "GRETA", "HUGO", "INGRID",
         "JONAS", "KEIKO", "LUCAS", "MARTA", "NIKOS", "OLGA", "PAVEL", "QUINN", "ROSA", "SAMIR",
         "TILDA", "ULRIK", "VERA", "WANDA", "XAVIER", "YUSUF", "ZOE"]
LAST = ["ABERNATHY", "BRANDVOLD", "CASTELLANO", "DRUMMOND", "EKSTROM", "FAIRWEATHER",
        "GALLOWAY", "HOLLINGSWORTH", "IVANESCU", "JANSSEN", "KOWALCZYK", "LINDQVIST", "MORCOMBE",
        "NAKAMURA", "OYELARAN", "PETROVSKY", "QUARTERMAINE", "RADCLIFFE", "SZYMANSKI",
        "TREMBLAY", "UMBERTI", "VANTERPOOL", "WAKEFIELD", "YARBOROUGH", "ZANDVLIET"]
INSTITUTIONS = ["NORTHVALE GENERAL HOSPITAL", "St. Aldric Medical Centre", "LAKESIDE WOMENS CLINIC",
                "Riverbend Cardiology", "HARROWGATE UNIVERSITY HOSPITAL", "Meridian Imaging Center",
                "PINECREST CHILDRENS HOSPITAL", "Blackwater Valley Infirmary"]
VENDORS = [("SONORIA", "Vista 7"), ("ECHOVANT", "EV-300"), ("MEDISONA", "Lumen X"),
           ("ULTRAVUE", "UV Pro 2")]
PROBES = {"curvilinear": ["C5-1", "C6-2", "C1-5", "AC4-1"], "phased": ["P4-2", "S5-1", "3Sc"],
          "linear": ["L12-5", "L15-7", "L11-3", "ML6-15"]}
PRESETS = {"curvilinear": ["ABD", "OB", "RENAL", "LIVER", "PELVIS"],
           "phased": ["CARD", "ADULT ECHO", "TTE", "LUNG"],
           "linear": ["VASC", "THYROID", "MSK", "BREAST", "CAROTID"]}
DATE_FORMATS = ["%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d", "%d-%b-%Y", "%Y/%m/%d"]


# ---- small helpers -------------------------------------------------------------------------

class Fonts:
    def __init__(self):
        self.cache = {}

    def get(self, name, size):
        key = (name, size)
        if key not in self.cache:
            self.cache[key] = ImageFont.truetype(os.path.join(FONT_DIR, name), size)
        return self.cache[key]


FONT_CACHE = Fonts()


def choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def smooth_noise(rng, shape, cells):
    """Low-frequency noise in [-1, 1]: a small random grid upscaled bicubically."""
    h, w = shape
    grid = rng.uniform(-1, 1, size=(max(2, cells), max(2, int(cells * w / max(h, 1)) + 1)))
    img = Image.fromarray(grid.astype(np.float32), mode="F").resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def box_blur(a, k, axis):
    """Moving average of width k along one axis, same shape (edges repeated)."""
    if k <= 1:
        return a
    pad = [(0, 0)] * a.ndim
    pad[axis] = (k // 2 + 1, (k - 1) // 2)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.float32)
    n = a.shape[axis]
    hi = np.take(c, np.arange(k, k + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return (hi - lo) / k


def ecg_wave(phase):
    """One synthetic PQRST beat; phase in [0, 1)."""
    g = lambda c, w, a: a * np.exp(-((phase - c) / w) ** 2)  # noqa: E731
    return (g(0.18, 0.035, 0.15) - g(0.36, 0.010, 0.12) + g(0.39, 0.012, 1.0)
            - g(0.42, 0.012, 0.25) + g(0.65, 0.06, 0.3))


# ---- scan content --------------------------------------------------------------------------

class Scene:
    """Moving tissue inside the scan area, rendered frame by frame over its bounding box."""

    def __init__(self, rng, g, mask, frames, doppler):
        self.rng, self.g = rng, g
        x0, y0, x1, y1 = geo.bbox(mask)
        self.box = (x0, y0, x1, y1)
        hb, wb = y1 - y0 + 1, x1 - x0 + 1
        self.hb, self.wb = hb, wb
        self.win = mask[y0:y1 + 1, x0:x1 + 1]
        self.period = rng.uniform(8, 30)          # frames per motion cycle
        self.motion = int(rng.integers(2, 7))       # breathing shift amplitude (px)
        m = self.motion
        u, v = geo.polar(g, y0 - m, y1 + 1 + m, x0, x1 + 1)
        self.base = self._tissue(u, v)
        u0, v0 = u[m:m + hb], v[m:m + hb]
        self.u, self.v = u0, v0
        # beam physics: depth attenuation with a near-field bump, darker beam edges
        alpha = rng.uniform(0.4, 1.6)
        edge = np.clip(np.minimum(v0, 1 - v0) / 0.04, 0.55, 1.0)
        att = np.exp(-alpha * np.clip(u0, 0, 1)) * (1 + 0.25 * np.exp(-((u0 - 0.05) / 0.05) ** 2))
        self.att = (att * edge * self.win).astype(np.float32)
        self.floor = np.zeros_like(self.att)
        # speckle: Rayleigh, log-compressed, grains elongated laterally; shifted per frame
        # magnitude of a smoothed complex Gaussian field: Rayleigh distributed, with grains
        # about ry x rx pixels (wider than tall, growing with the image)
        scale = max(1.0, g["image_size_rows"] / 480)
        ry = max(1, int(round(scale * rng.uniform(1, 2))))
        rx = max(1, int(round(scale * rng.uniform(1.5, 3.5))))
        self.step = max(2, rx + 1)
        self.pad = 6 * self.step
        fh, fw = hb + 2 * m + self.pad, wb + self.pad
        z = rng.standard_normal((2, fh // ry + 2, fw // rx + 2)).astype(np.float32)
        z = np.repeat(np.repeat(z, ry, axis=1), rx, axis=2)[:, :fh, :fw]
        z = box_blur(box_blur(z, ry, 1), rx, 2)
        s = np.sqrt(z[0] ** 2 + z[1] ** 2)
        self.speckle = ((s / s.mean()) ** rng.uniform(0.6, 0.9)).astype(np.float32)
        self.offsets = self._walk(frames)
        self.structures = self._structures()
        self.gain = 1.0
        level = float(np.median(self.render(0)[self.win]))
        self.gain = rng.uniform(55, 110) / max(1e-3, level)
        self.floor = (rng.uniform(3, 10) * self.win).astype(np.float32)   # electronic noise
        self.doppler = self._doppler() if doppler else None

    def _walk(self, n):
        oy, ox, out = self.pad // 2, self.pad // 2, []
        for _ in range(n):
            out.append((oy, ox))
            oy = int(np.clip(oy + self.rng.integers(-self.step, self.step + 1), 0, self.pad))
            ox = int(np.clip(ox + self.rng.integers(-self.step, self.step + 1), 0, self.pad))
        return out

    def _tissue(self, u, v):
        rng = self.rng
        b = 0.45 + 0.15 * smooth_noise(rng, u.shape, int(rng.integers(4, 10)))
        for c in np.sort(rng.uniform(0.05, 0.95, size=int(rng.integers(3, 7)))):
            edge = c + rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * (rng.uniform(0.3, 2) * v
                                                                     + rng.uniform()))
            step = rng.uniform(-0.25, 0.3)
            b += step / (1 + np.exp(np.clip((edge - u) / rng.uniform(0.004, 0.03), -30, 30)))
            b += rng.uniform(0, 0.5) * np.exp(-((u - edge) / rng.uniform(0.003, 0.008)) ** 2)
        for _ in range(int(rng.integers(0, 3))):   # static lesions, bright or dark
            cu, cv = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
            ru, rv = rng.uniform(0.03, 0.1), rng.uniform(0.04, 0.12)
            inside = ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 < 1
            b = np.where(inside, b * rng.choice([0.25, 1.8]), b)
        return np.clip(b, 0.04, 1.4).astype(np.float32)

    def _structures(self):
        """Pulsating anechoic chambers with bright walls, and swinging bright leaflets."""
        rng, out = self.rng, []
        size = min(self.hb, self.wb)
        for _ in range(int(rng.integers(1, 4))):
            for _ in range(50):
                cy, cx = rng.uniform(0.2, 0.8) * self.hb, rng.uniform(0.2, 0.8) * self.wb
                if self.win[int(cy), int(cx)] and 0.15 < self.u[int(cy), int(cx)] < 0.85:
                    break
            else:
                continue
            kind = "leaflet" if rng.random() < 0.3 else "chamber"
            out.append({"kind": kind, "cy": cy, "cx": cx, "r": rng.uniform(0.03, 0.1) * size,
                        "aspect": rng.uniform(0.6, 1.5), "amp": rng.uniform(2, 0.04 * size + 3),
                        "phase": rng.uniform(0, 2 * np.pi), "wall": rng.uniform(0.25, 0.7),
                        "angle": rng.uniform(0, np.pi)})
        return out

    def _doppler(self):
        """A colour box (a sub-sector of the fan or a sub-rectangle) with one pulsatile vessel."""
        rng = self.rng
        ua = rng.uniform(0.1, 0.45)
        va = rng.uniform(0.15, 0.55)
        ub, vb = ua + rng.uniform(0.2, 0.4), va + rng.uniform(0.2, 0.3)
        box = (self.u >= ua) & (self.u <= ub) & (self.v >= va) & (self.v <= vb) & self.win
        ys, xs = np.nonzero(box)
        cy, cx = ys.mean(), xs.mean()
        ang = rng.uniform(-0.6, 0.6)
        rr = np.arange(self.hb, dtype=np.float32)[:, None] - cy
        cc = np.arange(self.wb, dtype=np.float32)[None, :] - cx
        dist = np.abs(-math.sin(ang) * cc + math.cos(ang) * rr)
        radius = rng.uniform(0.05, 0.12) * (ys.max() - ys.min() + 1)
        profile = np.clip(1 - (dist / radius) ** 2, 0, 1).astype(np.float32)
        inner = box.copy()
        inner[1:-1, 1:-1] = box[1:-1, 1:-1] & box[:-2, 1:-1] & box[2:, 1:-1] \
            & box[1:-1, :-2] & box[1:-1, 2:]
        return {"box": box, "outline": box & ~inner, "profile": profile * box,
                "sign": float(rng.choice([-1, 1])), "u": [ua, ub], "v": [va, vb],
                "bbox": [int(xs.min()) + self.box[0], int(ys.min()) + self.box[1],
                         int(xs.max()) + self.box[0], int(ys.max()) + self.box[1]]}

    def render(self, t):
        """Float image of frame t over the bounding box (0 outside the scan area)."""
        m = self.motion
        shift = int(round(m * math.sin(2 * math.pi * t / self.period)))
        b = self.base[m + shift:m + shift + self.hb]
        oy, ox = self.offsets[t]
        s = self.speckle[oy:oy + self.hb, ox:ox + self.wb]
        img = b * s
        phase = 2 * math.pi * t / self.period
        for st in self.structures:
            self._draw_structure(img, s, st, phase)
        img *= self.att
        img *= self.gain
        img += self.floor * s
        return img

    def _draw_structure(self, img, s, st, phase):
        cy = st["cy"] + st["amp"] * math.sin(phase + st["phase"])
        cx = st["cx"] + 0.6 * st["amp"] * math.cos(phase + st["phase"])
        r = st["r"] * (1 + 0.2 * math.sin(phase * 1.7 + st["phase"]))
        ry, rx = r, r * st["aspect"]
        reach = int(max(ry, rx) * 1.3) + 2
        ya, yb = max(0, int(cy) - reach), min(self.hb, int(cy) + reach + 1)
        xa, xb = max(0, int(cx) - reach), min(self.wb, int(cx) + reach + 1)
        if ya >= yb or xa >= xb:
            return
        yy = np.arange(ya, yb, dtype=np.float32)[:, None] - cy
        xx = np.arange(xa, xb, dtype=np.float32)[None, :] - cx
        sub, ssub = img[ya:yb, xa:xb], s[ya:yb, xa:xb]
        if st["kind"] == "chamber":
            q = np.sqrt((yy / ry) ** 2 + (xx / rx) ** 2)
            wall = np.exp(-((q - 1.0) / 0.12) ** 2) * st["wall"]
            np.multiply(sub, np.where(q < 0.92, 0.06, 1.0).astype(np.float32), out=sub)
            sub += wall * ssub
        else:
            a = st["angle"] + 0.6 * math.sin(phase * 1.3 + st["phase"])
            ux, uy = math.cos(a), math.sin(a)
            along = np.clip(xx * ux + yy * uy, 0, 2 * r)
            d = np.sqrt((xx - along * ux) ** 2 + (yy - along * uy) ** 2)
            np.maximum(sub, np.exp(-(d / 2.0) ** 2) * st["wall"] * 1.2 * ssub, out=sub)

    def colour(self, t, grey, tint):
        """RGB uint8 over the bounding box: grey (tinted) B-mode plus the Doppler colours."""
        rgb = np.empty(grey.shape + (3,), np.uint8)
        for ch in range(3):
            rgb[..., ch] = grey if tint[ch] == 1.0 else (grey * tint[ch]).astype(np.uint8)
        d = self.doppler
        if d is None:
            return rgb
        pulse = 0.25 + 0.75 * (0.5 + 0.5 * math.sin(2 * math.pi * t / self.period)) ** 3
        oy, ox = self.offsets[t]
        noise = self.speckle[oy:oy + self.hb, ox:ox + self.wb] - 1.0
        vel = d["profile"] * pulse * (1 + 0.6 * noise)
        flow = d["box"] & (vel > 0.15)
        mag = np.clip(vel, 0, 1)
        hot = (120 + 135 * mag).astype(np.uint8)
        warm = (np.clip(mag - 0.55, 0, 1) * 400).clip(0, 255).astype(np.uint8)
        first, last = (0, 2) if d["sign"] > 0 else (2, 0)
        rgb[..., first][flow] = hot[flow]
        rgb[..., 1][flow] = warm[flow]
        rgb[..., last][flow] = 0
        rgb[d["outline"]] = (190, 190, 190)
        return rgb


# ---- burned-in annotations -----------------------------------------------------------------

class Overlay:
    """Static annotations drawn around the scan area, never within FAN_MARGIN px of it."""

    def __init__(self, rng, mask):
        self.rng, self.mask = rng, mask
        self.rows, self.cols = mask.shape
        self.img = Image.new("RGB", (self.cols, self.rows))
        self.cov = Image.new("L", (self.cols, self.rows))
        self.draw, self.dcov = ImageDraw.Draw(self.img), ImageDraw.Draw(self.cov)
        self.integral = np.pad(mask.astype(np.int32), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        self.occ = np.zeros(mask.shape, bool)
        self.texts, self.items = [], []
        x0, y0, x1, y1 = geo.bbox(mask)
        r, c = self.rows, self.cols
        self.zones = {"top": (0, 0, c - 1, y0 - 1), "bottom": (0, y1 + 1, c - 1, r - 1),
                      "left": (0, 0, x0 - 1, r - 1), "right": (x1 + 1, 0, c - 1, r - 1),
                      "upper_left": (0, 0, c // 2, r // 2),
                      "upper_right": (c // 2, 0, c - 1, r // 2),
                      "lower_left": (0, r // 2, c // 2, r - 1),
                      "lower_right": (c // 2, r // 2, c - 1, r - 1), "all": (0, 0, c - 1, r - 1)}

    def free(self, x0, y0, x1, y1):
        if x0 < 1 or y0 < 1 or x1 > self.cols - 2 or y1 > self.rows - 2:
            return False
        m = FAN_MARGIN
        a, b = max(0, y0 - m), min(self.rows, y1 + m + 1)
        c, d = max(0, x0 - m), min(self.cols, x1 + m + 1)
        s = self.integral
        if s[b, d] - s[a, d] - s[b, c] + s[a, c]:
            return False
        g = TEXT_GAP
        return not self.occ[max(0, y0 - g):y1 + g + 1, max(0, x0 - g):x1 + g + 1].any()

    def find(self, w, h, zones, tries=60):
        """Top-left corner of a free w x h box in one of the zones, or None."""
        rng = self.rng
        zs = [self.zones[z] for z in zones if z in self.zones]
        zs = [z for z in zs if z[2] - z[0] + 1 >= w and z[3] - z[1] + 1 >= h]
        if not zs:
            return None
        for _ in range(tries):
            zx0, zy0, zx1, zy1 = zs[int(rng.integers(len(zs)))]
            x = int(rng.integers(zx0, zx1 - w + 2))
            y = int(rng.integers(zy0, zy1 - h + 2))
            if self.free(x, y, x + w - 1, y + h - 1):
                return x, y
        return None

    def claim(self, x0, y0, x1, y1):
        self.occ[y0:y1 + 1, x0:x1 + 1] = True

    def ink_box(self, x0, y0, x1, y1):
        a = np.asarray(self.cov.crop((x0, y0, x1 + 1, y1 + 1)))
        ys, xs = np.nonzero(a)
        if len(ys) == 0:
            return None
        return [int(x0 + xs.min()), int(y0 + ys.min()), int(x0 + xs.max()), int(y0 + ys.max())]

    def text_block(self, lines, zones, font, size, colour, min_size=8, align="left", tries=60):
        """Lines [(text, fields)] stacked with one font; shrinks the font until it fits.
        Returns False when even min_size does not fit anywhere."""
        size = max(size, min_size)
        while size >= min_size:
            f = FONT_CACHE.get(font, size)
            boxes = [self.draw.textbbox((0, 0), t, font=f) for t, _ in lines]
            step = int(size * 1.25)
            w = max(b[2] - b[0] for b in boxes) + 1
            h = step * (len(lines) - 1) + max(b[3] for b in boxes) - min(b[1] for b in boxes) + 1
            pos = self.find(w, h, zones, tries)
            if pos is not None:
                x, y = pos
                top = min(b[1] for b in boxes)
                for i, ((text, fields), b) in enumerate(zip(lines, boxes)):
                    lw = b[2] - b[0]
                    lx = x - b[0] + (w - 1 - lw if align == "right" else 0)
                    ly = y - top + i * step
                    self.draw.text((lx, ly), text, font=f, fill=COLOURS[colour])
                    self.dcov.text((lx, ly), text, font=f, fill=255)
                    ink = self.ink_box(max(0, lx + b[0]), max(0, ly + b[1]),
                                       min(self.cols - 1, lx + b[2]),
                                       min(self.rows - 1, ly + b[3]))
                    if ink:
                        self.texts.append({"text": text, "fields": fields, "box": ink,
                                           "font": font, "size_px": size, "colour": colour})
                self.claim(x, y, x + w - 1, y + h - 1)
                return True
            size = int(size * 0.85) if size > min_size else min_size - 1
        return False

    def shape(self, kind, w, h, zones, paint):
        """A non-text annotation: paint(draw, dcov, x, y) inside a free w x h box."""
        pos = self.find(w, h, zones)
        if pos is None:
            return None
        x, y = pos
        paint(self.draw, self.dcov, x, y)
        box = self.ink_box(x, y, x + w - 1, y + h - 1) or [x, y, x + w - 1, y + h - 1]
        self.claim(x, y, x + w - 1, y + h - 1)
        self.items.append({"kind": kind, "box": box})
        return x, y

    def pixels(self):
        return np.asarray(self.img), np.asarray(self.cov) > 0


def fmt_date(d, f):
    return d.strftime(f).upper()


def draw_annotations(ov, rng, g, kind, phi, vendor, doppler, thumb):
    """Every static annotation of one clip; returns (PHI fields not burned in, depth in cm)."""
    rows = ov.rows
    base = int(np.clip(rows * rng.uniform(0.018, 0.04), 8, 40))
    font = choice(rng, FONTS)
    colours = list(COLOURS)
    dfmt = choice(rng, DATE_FORMATS)
    name_fmt = int(rng.integers(4))
    last, first = phi["PatientName"].split("^")
    name_txt = [f"{last}, {first}", f"{first} {last}", f"{last}^{first}", f"Name: {last} {first}"
                ][name_fmt]
    dob = datetime.datetime.strptime(phi["PatientBirthDate"], "%Y%m%d")
    study = datetime.datetime.strptime(phi["StudyDate"] + phi["StudyTime"][:6], "%Y%m%d%H%M%S")
    id_txt = choice(rng, ["ID: {}", "MRN {}", "{}", "Pat ID {}"]).format(phi["PatientID"])
    dob_txt = choice(rng, ["DOB: {}", "Born {}", "{}"]).format(fmt_date(dob, dfmt))
    date_txt, time_txt = fmt_date(study, dfmt), study.strftime("%H:%M:%S")
    top_zones = ["top", "upper_left", "upper_right"]
    side_zones = ["left", "right", "upper_left", "upper_right", "lower_left", "lower_right"]
    required = []
    # patient block (one block or separate lines)
    patient = [(name_txt, ["PatientName"]), (id_txt, ["PatientID"]),
               (dob_txt, ["PatientBirthDate"])]
    if rng.random() < 0.3:
        patient.append((f"Acc# {phi['AccessionNumber']}", ["AccessionNumber"]))
    if rng.random() < 0.5:
        required.append((patient, top_zones, choice(rng, colours), base))
    else:
        for line in patient:
            required.append(([line], top_zones + side_zones, choice(rng, colours), base))
    if rng.random() < 0.5:
        required.append(([(f"{date_txt} {time_txt}", ["StudyDate", "StudyTime"])],
                         top_zones, choice(rng, colours), base))
    else:
        required.append(([(date_txt, ["StudyDate"]), (time_txt, ["StudyTime"])],
                         top_zones + side_zones, choice(rng, colours), base))
    inst_size = int(np.clip(base * rng.uniform(1.0, 2.2), 8, 40))
    required.append(([(phi["InstitutionName"], ["InstitutionName"])],
                     top_zones + ["bottom"], choice(rng, colours), inst_size))
    missing = []
    for lines, zones, colour, size in required:
        f = choice(rng, [font] * 3 + FONTS)
        if ov.text_block(lines, zones, f, size, colour):
            continue
        for line in lines:   # no room for the block: line by line, anywhere
            if not ov.text_block([line], list(ov.zones), f, size, colour, tries=400):
                missing.extend(line[1])
    # optional PHI and device text
    extra = []
    if rng.random() < 0.5:
        extra.append(([(f"Ref: {phi['ReferringPhysicianName'].replace('^', ' ')}",
                        ["ReferringPhysicianName"])], top_zones + side_zones))
    if rng.random() < 0.5:
        extra.append(([(f"Op: {phi['OperatorsName'].replace('^', ' ')}", ["OperatorsName"])],
                      side_zones + ["bottom"]))
    depth_cm = scene_depth_cm(rng)
    params = [(choice(rng, PROBES[kind]), []), (choice(rng, PRESETS[kind]), []),
              (f"{rng.uniform(2, 12):.1f}MHz", []), (f"G {int(rng.integers(30, 80))}%", []),
              (f"D {depth_cm:.1f}cm", []), (f"FR {int(rng.integers(12, 60))}Hz", []),
              (f"MI {rng.uniform(0.2, 1.4):.1f}  TIs {rng.uniform(0.1, 1.0):.1f}", [])]
    params = params[:int(rng.integers(3, len(params) + 1))]
    extra.append((params, side_zones))
    if rng.random() < 0.4:
        extra.append(([(f"{vendor[0]} {vendor[1]}", ["ManufacturerModelName"])],
                      ["bottom", "top"] + side_zones))
    for lines, zones in extra:
        ov.text_block(lines, zones, choice(rng, FONTS), int(base * rng.uniform(0.7, 1.1)),
                      choice(rng, colours), align=choice(rng, ["left", "right"]))
    draw_logo(ov, rng, vendor[0], base)
    draw_depth_ticks(ov, rng, g, depth_cm, base, font)
    if rng.random() < 0.35:
        draw_grey_bar(ov, rng)
    if doppler:
        draw_colour_bar(ov, rng, base, font)
    if thumb is not None:
        h, w = thumb.shape[:2]

        def paste(d, dc, x, y):
            ov.img.paste(Image.fromarray(thumb), (x, y))
            dc.rectangle([x, y, x + w - 1, y + h - 1], fill=255)
            d.rectangle([x, y, x + w - 1, y + h - 1], outline=COLOURS["grey"])
        ov.shape("thumbnail", w, h, ["upper_left", "upper_right", "lower_left", "lower_right"],
                 paste)
    return missing, depth_cm


def scene_depth_cm(rng):
    return float(rng.choice([4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 24]))


def draw_logo(ov, rng, brand, base):
    size = int(np.clip(base * rng.uniform(1.0, 1.8), 8, 40))
    f = FONT_CACHE.get(choice(rng, ["DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf"]), size)
    b = ov.draw.textbbox((0, 0), brand, font=f)
    tw, th = b[2] - b[0] + 1, b[3] - b[1] + 1
    w, h = tw + th + 4, th
    colour = COLOURS[choice(rng, ["white", "cyan", "lightgrey", "yellow"])]

    def paint(d, dc, x, y):
        for dd, fill in ((d, colour), (dc, 255)):
            dd.ellipse([x, y, x + th - 1, y + th - 1], outline=fill, width=max(1, th // 8))
            dd.polygon([(x + th // 2, y + 2), (x + th - 3, y + th - 3), (x + 2, y + th - 3)],
                       fill=fill)
            dd.text((x + th + 4 - b[0], y - b[1]), brand, font=f, fill=fill)
    if ov.shape("logo", w, h, ["top", "bottom", "upper_left", "upper_right", "lower_left",
                               "lower_right"], paint):
        ov.texts.append({"text": brand, "fields": ["Manufacturer"], "box": ov.items[-1]["box"],
                         "font": "logo", "size_px": size, "colour": "logo"})


def draw_depth_ticks(ov, rng, g, depth_cm, base, font):
    """Ticks every cm just outside the right (or left) edge, numbered every few cm."""
    side = choice(rng, ["right", "left"])
    gap = FAN_MARGIN + 2 + int(rng.integers(0, 8))
    every = 5 if depth_cm >= 10 else 2 if depth_cm >= 6 else 1
    size = int(np.clip(base * 0.8, 8, 40))
    f = FONT_CACHE.get(font, size)
    colour = COLOURS[choice(rng, ["white", "grey", "lightgrey"])]
    boxes = []
    for cm in range(0, int(depth_cm) + 1):
        u = cm / depth_cm
        v = 1.0 if side == "right" else 0.0
        x, y = geo.point(g, u, v)
        if g["mask_type"] == "fan":
            a = math.radians(g["angle2"] if side == "right" else g["angle1"])
            nx, ny = (math.sin(a), -math.cos(a)) if side == "right" else (-math.sin(a), math.cos(a))
        else:
            nx, ny = (1.0, 0.0) if side == "right" else (-1.0, 0.0)
        long = cm % every == 0
        length = 6 if long else 3
        tx, ty = x + nx * gap, y + ny * gap
        x0, y0 = int(math.floor(min(tx, tx + nx * length))), int(math.floor(ty)) - 1
        x1, y1 = int(math.ceil(max(tx, tx + nx * length))), int(math.floor(ty)) + 1
        if not ov.free(x0, y0, x1, y1):
            continue
        for dd, fill in ((ov.draw, colour), (ov.dcov, 255)):
            dd.rectangle([x0, y0, x1, y1], fill=fill)
        ov.claim(x0, y0, x1, y1)
        boxes.append([x0, y0, x1, y1])
        if long and cm > 0:
            label = str(cm)
            b = ov.draw.textbbox((0, 0), label, font=f)
            lw, lh = b[2] - b[0] + 1, b[3] - b[1] + 1
            lx = x1 + 3 if nx >= 0 else x0 - 3 - lw
            ly = int(ty) - lh // 2
            if ov.free(lx, ly, lx + lw - 1, ly + lh - 1):
                for dd, fill in ((ov.draw, colour), (ov.dcov, 255)):
                    dd.text((lx - b[0], ly - b[1]), label, font=f, fill=fill)
                ov.claim(lx, ly, lx + lw - 1, ly + lh - 1)
                ink = ov.ink_box(lx, ly, lx + lw - 1, ly + lh - 1)
                if ink:
                    ov.texts.append({"text": label, "fields": [], "box": ink, "font": font,
                                     "size_px": size, "colour": "depth"})
    if boxes:
        b = np.array(boxes)
        ov.items.append({"kind": "depth_ticks", "box": [int(b[:, 0].min()), int(b[:, 1].min()),
                                                        int(b[:, 2].max()), int(b[:, 3].max())]})


def draw_grey_bar(ov, rng):
    w, h = int(rng.integers(6, 16)), int(rng.integers(40, max(41, ov.rows // 4)))
    ramp = np.linspace(255, 0, h).astype(np.uint8)

    def paint(d, dc, x, y):
        for i, val in enumerate(ramp):
            d.line([(x, y + i), (x + w - 1, y + i)], fill=(int(val),) * 3)
        dc.rectangle([x, y, x + w - 1, y + h - 1], fill=255)
    ov.shape("grey_bar", w, h, ["left", "right"], paint)


def draw_colour_bar(ov, rng, base, font):
    w, h = int(rng.integers(6, 14)), int(rng.integers(40, max(41, ov.rows // 4)))
    half = h // 2

    def paint(d, dc, x, y):
        for i in range(h):
            m = abs(i - half) / max(1, half)
            c = (int(120 + 135 * m), int(max(0, m - 0.6) * 400) % 256, 0) if i < half else \
                (0, int(max(0, m - 0.6) * 400) % 256, int(120 + 135 * m))
            d.line([(x, y + i), (x + w - 1, y + i)], fill=c)
        dc.rectangle([x, y, x + w - 1, y + h - 1], fill=255)
    pos = ov.shape("colour_bar", w, h, ["left", "right"], paint)
    if pos:
        vmax = f"{rng.uniform(10, 80):.1f}"
        size = int(np.clip(base * 0.75, 8, 40))
        ov.text_block([(f"+{vmax}", []), (f"-{vmax}", [])], ["left", "right"], font, size, "white")


def ecg_layer(rng, rows, cols, band_top, band_h, frames, sweep):
    """ECG trace in rows band_top..band_top+band_h-1: (static rgb, coverage, per-frame gaps)."""
    x0, x1 = int(cols * rng.uniform(0.05, 0.2)), int(cols * rng.uniform(0.8, 0.95))
    hr = rng.uniform(50, 110)
    beat_px = rng.uniform(0.12, 0.3) * (x1 - x0)
    xs = np.arange(x0, x1)
    phase = ((xs - x0) / beat_px + rng.uniform()) % 1.0
    ys = band_top + band_h * (0.75 - 0.6 * ecg_wave(phase))
    img = Image.new("RGB", (cols, rows))
    cov = Image.new("L", (cols, rows))
    colour = COLOURS[choice(rng, ["green", "yellow", "white"])]
    width = int(rng.integers(1, 3))
    pts = list(zip(xs.tolist(), ys.tolist()))
    ImageDraw.Draw(img).line(pts, fill=colour, width=width)
    ImageDraw.Draw(cov).line(pts, fill=255, width=width)
    gaps = []
    if sweep:
        speed = (x1 - x0) / max(1.0, rng.uniform(1.5, 3.0) * frames)
        start = rng.uniform(0, x1 - x0)
        gw = int(rng.integers(8, 20))
        for t in range(frames):
            gx = x0 + int((start + speed * t) % (x1 - x0))
            gaps.append((gx, min(x1, gx + gw)))
    return np.asarray(img), np.asarray(cov) > 0, gaps, {"x": [x0, x1 - 1],
                                                        "heart_rate": int(round(hr))}


# ---- patient and header --------------------------------------------------------------------

def patient_phi(seed, p):
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1_000_000 + p]))
    dob = datetime.date(1930, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 31000)))
    study = datetime.datetime(2019, 1, 1) + datetime.timedelta(seconds=int(rng.integers(0, 2e8)))
    pid = choice(rng, ["{:08d}", "{:010d}", "A{:07d}", "US{:06d}"]).format(
        int(rng.integers(10**5, 10**9)))
    return {"PatientName": f"{choice(rng, LAST)}^{choice(rng, FIRST)}",
            "PatientID": pid[:12],
            "PatientBirthDate": dob.strftime("%Y%m%d"),
            "PatientSex": choice(rng, ["F", "M", "O"]),
            "StudyDate": study.strftime("%Y%m%d"), "StudyTime": study.strftime("%H%M%S"),
            "InstitutionName": choice(rng, INSTITUTIONS),
            "ReferringPhysicianName": f"{choice(rng, LAST)}^{choice(rng, FIRST)}",
            "OperatorsName": f"{choice(rng, LAST)}^{choice(rng, FIRST)}",
            "AccessionNumber": f"ACC{int(rng.integers(10**6, 10**7))}",
            "StudyID": str(int(rng.integers(1, 9999)))}


def uid(*parts):
    return ".".join([UID_ROOT] + [str(int(p)) for p in parts])


def build_dataset(spec, phi, frames_arr, region, doppler_region, frame_time):
    nframes, rows, cols = frames_arr.shape[:3]
    rgb = frames_arr.ndim == 4
    multi = nframes > 1
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME if multi else US_IMAGE
    meta.MediaStorageSOPInstanceUID = uid(spec["seed"], 3, spec["index"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = uid(0, 1)
    ds = FileDataset(spec["name"] + ".dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL" if spec["kind"] != "phased" else "CARDIAC"]
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    p = spec["patient"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = phi["StudyDate"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = phi["StudyTime"]
    ds.AcquisitionDateTime = phi["StudyDate"] + phi["StudyTime"]
    ds.AccessionNumber = phi["AccessionNumber"]
    ds.Modality = "US"
    ds.Manufacturer, ds.ManufacturerModelName = spec["vendor"]
    ds.InstitutionName = phi["InstitutionName"]
    ds.ReferringPhysicianName = phi["ReferringPhysicianName"]
    ds.StationName = f"US{spec['index'] % 7:02d}"
    ds.StudyDescription = f"US {spec['preset']}"
    ds.OperatorsName = phi["OperatorsName"]
    ds.PatientName = phi["PatientName"]
    ds.PatientID = phi["PatientID"]
    ds.PatientBirthDate = phi["PatientBirthDate"]
    ds.PatientSex = phi["PatientSex"]
    ds.StudyInstanceUID = uid(spec["seed"], 1, p)
    ds.SeriesInstanceUID = uid(spec["seed"], 2, spec["index"])
    ds.StudyID = phi["StudyID"]
    ds.SeriesNumber = spec["index"] % 3 + 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.Laterality = ""
    if spec["burned_in"] is not None:
        ds.BurnedInAnnotation = spec["burned_in"]
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    if multi:
        ds.NumberOfFrames = nframes
        ds.FrameTime = f"{frame_time:.1f}"
        ds.FrameIncrementPointer = 0x00181063
        ds.CineRate = int(round(1000 / frame_time))
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    if region is not None:
        items = [region] + ([doppler_region] if doppler_region else [])
        seq = []
        for r in items:
            it = Dataset()
            it.RegionSpatialFormat = 1
            it.RegionDataType = r["data_type"]
            it.RegionFlags = 0
            it.RegionLocationMinX0, it.RegionLocationMinY0 = r["box"][0], r["box"][1]
            it.RegionLocationMaxX1, it.RegionLocationMaxY1 = r["box"][2], r["box"][3]
            it.PhysicalUnitsXDirection = it.PhysicalUnitsYDirection = 3   # cm
            it.PhysicalDeltaX = it.PhysicalDeltaY = r["cm_per_px"]
            it.ReferencePixelX0, it.ReferencePixelY0 = r["ref"]
            seq.append(it)
        ds.SequenceOfUltrasoundRegions = Sequence(seq)
    ds.PixelData = frames_arr.tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    if spec["rle"]:
        ds.compress(RLELossless, frames_arr if multi else frames_arr[0])
    return ds


# ---- one clip ------------------------------------------------------------------------------

def plan(args, index):
    """Everything random about clip `index` except its pixels."""
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, index]))
    kind = choice(rng, args.kinds)
    rows, cols = choice(rng, args.sizes)
    frames = int(rng.integers(args.min_frames, args.max_frames + 1))
    doppler = rng.random() < args.colour_fraction
    rgb = doppler or rng.random() < args.rgb_fraction
    ecg = None
    if rng.random() < args.ecg_fraction:
        ecg = "sweep" if frames > 1 and rng.random() < 0.6 else "static"
    return rng, {
        "index": index, "seed": args.seed, "name": f"us_{index:04d}", "kind": kind,
        "rows": rows, "cols": cols, "frames": frames, "rgb": bool(rgb), "doppler": bool(doppler),
        "ecg": ecg, "regions": bool(rng.random() < args.regions_fraction),
        "rle": bool(rng.random() < args.rle_fraction), "patient": index // 3,
        "thumbnail": bool(rng.random() < 0.15), "vendor": choice(rng, VENDORS),
        "preset": choice(rng, PRESETS[kind]),
        "burned_in": choice(rng, [None, None, "YES", "NO"]),
        "frame_time": float(rng.choice([16.7, 20.0, 25.0, 33.3, 40.0, 50.0]))}


def make_geometry(rng, spec, fixed):
    if fixed is not None:   # the probe kind follows the given scan area
        spec["kind"] = ("linear" if fixed["mask_type"] == "rectangle" else
                        "curvilinear" if fixed["radius1"] > 5 else "phased")
        spec["preset"] = choice(rng, PRESETS[spec["kind"]])
        return dict(fixed)
    rows, cols = spec["rows"], spec["cols"]
    ecg_h = int(rows * rng.uniform(0.06, 0.1)) if spec["ecg"] else 0
    spec["ecg_band"] = ecg_h
    for _ in range(20):
        if spec["kind"] == "phased":
            top = int(rows * rng.uniform(0.0, 0.1))
        else:
            top = int(rows * rng.uniform(0.06, 0.18))
        bottom = int(rows * rng.uniform(0.02, 0.12)) + (ecg_h + 6 if ecg_h else 0)
        side = int(cols * rng.uniform(0.02, 0.12))
        g = geo.sample(spec["kind"], rows, cols, rng, top, bottom, side)
        if g is not None:
            return g
    raise RuntimeError(f"{spec['name']}: no {spec['kind']} geometry fits {rows}x{cols}")


def make_clip(args, index):
    rng, spec = plan(args, index)
    g = make_geometry(rng, spec, args.geometry)
    rows, cols, nf = g["image_size_rows"], g["image_size_cols"], spec["frames"]
    spec["rows"], spec["cols"] = rows, cols
    mask = geo.rasterize(g)
    phi = patient_phi(args.seed, spec["patient"])
    scene = Scene(rng, g, mask, nf, spec["doppler"])
    x0, y0, x1, y1 = scene.box
    thumb = None
    if spec["thumbnail"]:
        k = int(rng.integers(5, 9))
        t0 = np.clip(scene.render(0), 0, 255).astype(np.uint8)[::k, ::k]
        thumb = np.repeat(t0[..., None], 3, axis=2)
    ov = Overlay(rng, mask)
    ecg_info = None
    if spec["ecg"]:
        band_h = spec.get("ecg_band") or int(rows * 0.08)
        band_top = rows - 3 - band_h
        if y1 + FAN_MARGIN + 2 < band_top:
            eimg, ecov, gaps, ecg_info = ecg_layer(rng, rows, cols, band_top, band_h, nf,
                                                   spec["ecg"] == "sweep")
            ov.claim(0, band_top - 2, cols - 1, rows - 1)
            ecg_info.update({"rows": [band_top, band_top + band_h - 1], "mode": spec["ecg"]})
        else:
            spec["ecg"] = None
    missing, depth_cm = draw_annotations(ov, rng, g, spec["kind"], phi, spec["vendor"],
                                         spec["doppler"], thumb)
    over_rgb, text_mask = ov.pixels()
    if ecg_info:
        over_rgb = np.maximum(over_rgb, eimg)
        text_mask = text_mask | ecg_cov_union(ecov, gaps, ecg_info)
        ov.items.append({"kind": "ecg", "box": [ecg_info["x"][0], ecg_info["rows"][0],
                                                 ecg_info["x"][1], ecg_info["rows"][1]]})
    if (text_mask & mask).any():
        raise AssertionError(f"{spec['name']}: an annotation touches the scan area")
    # frames
    tint = (1.0, 1.0, 1.0)
    if spec["rgb"] and rng.random() < 0.3:
        tint = (1.0, float(rng.uniform(0.85, 1.0)), float(rng.uniform(0.7, 0.95)))
    ch = 3 if spec["rgb"] else 1
    bg = over_rgb if spec["rgb"] else np.asarray(Image.fromarray(over_rgb).convert("L"))
    bg = bg.reshape(rows, cols, ch)
    frames = np.empty((nf, rows, cols, ch), np.uint8)
    frames[:] = bg
    win = scene.win[..., None]
    for t in range(nf):
        val = np.clip(scene.render(t), 0, 255).astype(np.uint8)
        val = scene.colour(t, val, tint) if spec["rgb"] else val[..., None]
        np.copyto(frames[t, y0:y1 + 1, x0:x1 + 1], val, where=win)
        if ecg_info and spec["ecg"] == "sweep":
            a, b = gaps[t]
            r0, r1 = ecg_info["rows"][0] - 2, ecg_info["rows"][1] + 3
            frames[t, r0:r1, a:b] = 0
            frames[t, r0:r1, b:b + 2] = 255 if ch == 1 else COLOURS["white"]
    if not spec["rgb"]:
        frames = frames[..., 0]
    # regions and header
    bb = geo.bbox(mask)
    cm_per_px = depth_cm / max(1, (g["radius2"] - g["radius1"]) if g["mask_type"] == "fan"
                               else g["rectangle_bottom"] - g["rectangle_top"])
    region = doppler_region = None
    if spec["regions"]:
        ref = ((g["center_cols_px"] - bb[0], g["center_rows_px"] - bb[1])
               if g["mask_type"] == "fan" else (0, 0))
        region = {"box": bb, "data_type": 1, "cm_per_px": round(cm_per_px, 6), "ref": ref}
        if scene.doppler:
            db = scene.doppler["bbox"]
            doppler_region = {"box": db, "data_type": 2, "cm_per_px": round(cm_per_px, 6),
                              "ref": (ref[0] + bb[0] - db[0], ref[1] + bb[1] - db[1])}
    ds = build_dataset(spec, phi, frames, region, doppler_region, spec["frame_time"])
    base = os.path.join(args.out, spec["name"])
    ds.save_as(base + ".dcm", write_like_original=False)
    Image.fromarray(mask.astype(np.uint8) * 255).save(base + "_mask.png")
    Image.fromarray(text_mask.astype(np.uint8) * 255).save(base + "_text.png")
    if args.preview:
        Image.fromarray(frames[0]).save(base + "_frame0.png")
    truth = dict(g)
    truth.update({
        "file": spec["name"] + ".dcm", "probe_kind": spec["kind"],
        "corners_px": geo.corners(g), "corners_normalized": geo.corners_normalized(g),
        "corner_order": list(geo.CORNER_ORDER), "mask_bbox": bb,
        "mask_png": spec["name"] + "_mask.png", "text_png": spec["name"] + "_text.png",
        "frames": nf, "frame_time_ms": spec["frame_time"], "rgb": spec["rgb"],
        "photometric": "RGB" if spec["rgb"] else "MONOCHROME2",
        "transfer_syntax": "RLELossless" if spec["rle"] else "ExplicitVRLittleEndian",
        "sop_class": ds.SOPClassUID, "depth_cm": depth_cm,
        "doppler": None if not scene.doppler else {
            "u": [round(x, 4) for x in scene.doppler["u"]],
            "v": [round(x, 4) for x in scene.doppler["v"]], "bbox": scene.doppler["bbox"]},
        "ecg": ecg_info, "ultrasound_regions": [r for r in (region, doppler_region) if r],
        "burned_in_annotation": spec["burned_in"], "tint": list(tint),
        "phi": phi, "phi_missing_from_pixels": missing,
        "text_boxes": ov.texts, "annotations": ov.items,
        "text_pixels": int(text_mask.sum()), "mask_pixels": int(mask.sum()),
        "seed": [args.seed, index]})
    with open(base + ".json", "w") as f:
        json.dump(truth, f, indent=1, default=lambda o: o.item())
    return {"name": spec["name"], "dcm": spec["name"] + ".dcm", "json": spec["name"] + ".json",
            "mask_png": truth["mask_png"], "text_png": truth["text_png"],
            "probe_kind": spec["kind"], "mask_type": g["mask_type"], "rows": rows, "cols": cols,
            "frames": nf, "rgb": spec["rgb"], "doppler": spec["doppler"], "ecg": spec["ecg"],
            "regions": spec["regions"], "rle": spec["rle"], "patient": spec["patient"]}


def ecg_cov_union(cov, gaps, info):
    """Every pixel the ECG lights in some frame: the trace plus each sweep cursor position."""
    out = cov.copy()
    r0, r1 = info["rows"][0] - 2, info["rows"][1] + 3
    for _, b in gaps:
        out[r0:r1, b:b + 2] = True
    return out


# ---- command line --------------------------------------------------------------------------

def parse_sizes(text):
    if text in SIZES:
        return SIZES[text]
    out = []
    for part in text.split(","):
        r, c = part.lower().split("x")
        out.append((int(r), int(c)))
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-frames", type=int, default=8)
    ap.add_argument("--max-frames", type=int, default=12)
    ap.add_argument("--sizes", default="small", help="tiny|small|full or RxC[,RxC...]")
    ap.add_argument("--kinds", default="curvilinear,phased,linear")
    ap.add_argument("--colour-fraction", type=float, default=0.2,
                    help="fraction of clips with a colour Doppler box (always RGB)")
    ap.add_argument("--rgb-fraction", type=float, default=0.4,
                    help="fraction of the other clips stored as RGB")
    ap.add_argument("--ecg-fraction", type=float, default=0.3)
    ap.add_argument("--regions-fraction", type=float, default=0.5,
                    help="fraction with a Sequence of Ultrasound Regions")
    ap.add_argument("--rle-fraction", type=float, default=0.0,
                    help="fraction written RLE Lossless (pydicom's Python encoder, ~10x slower)")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--preview", action="store_true", help="also write <name>_frame0.png")
    ap.add_argument("--geometry", help="JSON scan area (SlicerUltrasound layout) for every clip")
    args = ap.parse_args(argv)
    args.sizes = parse_sizes(args.sizes)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in args.kinds:
        if k not in PROBES:
            ap.error(f"unknown kind {k!r}")
    if not 1 <= args.min_frames <= args.max_frames <= 1000:
        ap.error("need 1 <= --min-frames <= --max-frames")
    if args.geometry:
        args.geometry = json.loads(args.geometry)
    return args


def _worker(job):
    args, index = job
    return make_clip(args, index)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    jobs = [(args, i) for i in range(args.count)]
    if args.jobs > 1 and args.count > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            clips = pool.map(_worker, jobs, chunksize=1)
    else:
        clips = [_worker(j) for j in jobs]
    manifest = {"generator": "tests/generators/make_us_clips.py", "seed": args.seed,
                "count": args.count, "uid_root": UID_ROOT,
                "options": {k: v for k, v in vars(args).items() if k not in ("out", "jobs")},
                "clips": clips}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(clips)} clips in {args.out} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
