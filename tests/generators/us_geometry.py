"""Ultrasound scan-area geometry in the field layout of SlicerUltrasound's AnonymizeUltrasound.

A scan area is a dict with the same keys SlicerUltrasound writes in its mask JSON:

  fan:       mask_type "fan", center_rows_px, center_cols_px, radius1, radius2, angle1, angle2,
             image_size_rows, image_size_cols
  rectangle: mask_type "rectangle", rectangle_left, rectangle_right, rectangle_top,
             rectangle_bottom, image_size_rows, image_size_cols

Conventions (those of AnonymizeUltrasound.createFanMask, 4-point mode, and
common/create_masks.py; docs/testing.md has the derivation):
- pixel (row r, col c) has its centre at x = c, y = r; y grows downwards;
- (center_cols_px, center_rows_px) is the apex: the intersection of the fan's two straight
  edges, integer, possibly above the image (negative row) for curvilinear probes;
- an angle is atan2(dy, dx) in degrees from the +x (column) axis turning towards +y (down the
  image), i.e. clockwise on screen: 0 = right, 90 = straight down, 180 = left;
- angle1 is the left edge (apex -> lower-left corner), angle2 the right edge, both in [0, 180],
  so a downward fan has angle1 > angle2; the fan covers the angles between them;
- radius1 is the apex-to-upper-corner distance (the inner arc, 0 for a sector whose apex is
  on the image), radius2 the apex-to-lower-corner distance (the outer arc), integers;
- a pixel is inside a fan when radius1 <= |p - apex| <= radius2 and its angle lies in
  [min(angle1, angle2), max(angle1, angle2)]; inside a rectangle when
  rectangle_left <= c <= rectangle_right and rectangle_top <= r <= rectangle_bottom
  (bounds inclusive, as create_masks.create_rectangle_mask fills [top:bottom+1, left:right+1]);
- corners (SlicerUltrasound's corner model): upper_left = apex + radius1 * dir(angle1),
  upper_right = apex + radius1 * dir(angle2), lower_left = apex + radius2 * dir(angle1),
  lower_right = apex + radius2 * dir(angle2), each as (x, y) = (col, row); a rectangle's are
  (left, top), (right, top), (left, bottom), (right, bottom). The model's normalised output is
  the 4 x 2 array [UL, UR, LL, LR] of (x / image_size_cols, y / image_size_rows).
"""
import math

import numpy as np

CORNER_ORDER = ("upper_left", "upper_right", "lower_left", "lower_right")


def fan(cx, cy, r1, r2, angle1, angle2, rows, cols):
    return {"mask_type": "fan", "center_rows_px": int(cy), "center_cols_px": int(cx),
            "radius1": int(r1), "radius2": int(r2),
            "angle1": round(float(angle1), 2), "angle2": round(float(angle2), 2),
            "image_size_rows": int(rows), "image_size_cols": int(cols)}


def rectangle(left, right, top, bottom, rows, cols):
    return {"mask_type": "rectangle", "rectangle_left": int(left), "rectangle_right": int(right),
            "rectangle_top": int(top), "rectangle_bottom": int(bottom),
            "image_size_rows": int(rows), "image_size_cols": int(cols)}


def _unit(deg):
    a = math.radians(deg)
    return math.cos(a), math.sin(a)


def corners(g):
    """{name: [x, y]} in pixels, SlicerUltrasound's corner definition."""
    if g["mask_type"] == "rectangle":
        l, r = g["rectangle_left"], g["rectangle_right"]
        t, b = g["rectangle_top"], g["rectangle_bottom"]
        pts = [(l, t), (r, t), (l, b), (r, b)]
    else:
        cx, cy = g["center_cols_px"], g["center_rows_px"]
        pts = []
        for radius, angle in ((g["radius1"], g["angle1"]), (g["radius1"], g["angle2"]),
                              (g["radius2"], g["angle1"]), (g["radius2"], g["angle2"])):
            ux, uy = _unit(angle)
            pts.append((cx + radius * ux, cy + radius * uy))
    return {k: [round(float(x), 3), round(float(y), 3)] for k, (x, y) in zip(CORNER_ORDER, pts)}


def corners_normalized(g):
    """[[x / cols, y / rows]] in the order UL, UR, LL, LR (the corner model's output layout)."""
    c = corners(g)
    return [[round(c[k][0] / g["image_size_cols"], 6), round(c[k][1] / g["image_size_rows"], 6)]
            for k in CORNER_ORDER]


def rasterize(g, y0=0, y1=None, x0=0, x1=None):
    """Boolean mask of the scan area over rows y0..y1-1, cols x0..x1-1 (default: whole image)."""
    rows, cols = g["image_size_rows"], g["image_size_cols"]
    y1 = rows if y1 is None else y1
    x1 = cols if x1 is None else x1
    r = np.arange(y0, y1)[:, None]
    c = np.arange(x0, x1)[None, :]
    if g["mask_type"] == "rectangle":
        return ((r >= g["rectangle_top"]) & (r <= g["rectangle_bottom"])
                & (c >= g["rectangle_left"]) & (c <= g["rectangle_right"]))
    dy = (r - g["center_rows_px"]).astype(np.int64)
    dx = (c - g["center_cols_px"]).astype(np.int64)
    d2 = dy * dy + dx * dx
    inside = (d2 >= g["radius1"] ** 2) & (d2 <= g["radius2"] ** 2)
    theta = np.degrees(np.arctan2(dy.astype(np.float64), dx.astype(np.float64)))
    lo, hi = sorted((g["angle1"], g["angle2"]))
    return inside & (theta >= lo) & (theta <= hi)


def polar(g, y0, y1, x0, x1):
    """(u, v) over a window: u = normalised depth (0 at the inner arc / top, 1 at the outer arc /
    bottom), v = normalised lateral position (0 at the left edge, 1 at the right edge)."""
    r = np.arange(y0, y1, dtype=np.float32)[:, None]
    c = np.arange(x0, x1, dtype=np.float32)[None, :]
    if g["mask_type"] == "rectangle":
        t, b = g["rectangle_top"], g["rectangle_bottom"]
        l, rr = g["rectangle_left"], g["rectangle_right"]
        u = (r - t) / max(1, b - t) + 0 * c
        v = (c - l) / max(1, rr - l) + 0 * r
        return u.astype(np.float32), v.astype(np.float32)
    dy = r - g["center_rows_px"]
    dx = c - g["center_cols_px"]
    d = np.sqrt(dy * dy + dx * dx)
    theta = np.degrees(np.arctan2(dy, dx))
    u = (d - g["radius1"]) / max(1, g["radius2"] - g["radius1"])
    # angle1 (left edge) is the larger angle: v grows from the left edge to the right edge
    v = (g["angle1"] - theta) / (g["angle1"] - g["angle2"])
    return u.astype(np.float32), v.astype(np.float32)


def point(g, u, v):
    """Image (x, y) of normalised depth u and lateral position v (inverse of polar)."""
    if g["mask_type"] == "rectangle":
        return (g["rectangle_left"] + v * (g["rectangle_right"] - g["rectangle_left"]),
                g["rectangle_top"] + u * (g["rectangle_bottom"] - g["rectangle_top"]))
    d = g["radius1"] + u * (g["radius2"] - g["radius1"])
    ux, uy = _unit(g["angle1"] + v * (g["angle2"] - g["angle1"]))
    return g["center_cols_px"] + d * ux, g["center_rows_px"] + d * uy


def bbox(mask):
    """Inclusive [x0, y0, x1, y1] of a boolean mask's true pixels."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return [int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])]


# ---- sampling ------------------------------------------------------------------------------

def _fit_fan(rng, rows, cols, apex_row, r1, a_left, a_right, bottom_row, side, cx_jitter):
    """Outer radius reaching bottom_row on the centre line, shortened to fit laterally."""
    cx = cols / 2 + rng.uniform(-cx_jitter, cx_jitter) * cols
    r2 = bottom_row - apex_row
    cl, cr = math.cos(math.radians(a_left)), math.cos(math.radians(a_right))
    if cl < 0:
        r2 = min(r2, (cx - side) / -cl)
    if cr > 0:
        r2 = min(r2, (cols - 1 - side - cx) / cr)
    return int(round(cx)), r2


def sample(kind, rows, cols, rng, top, bottom, side):
    """A random scan area of a probe kind (curvilinear, phased, linear) that leaves `top` rows
    above, `bottom` rows below and `side` columns each side free; None when it cannot fit."""
    usable_bottom = rows - 1 - bottom
    span = usable_bottom - top
    if span < 40:
        return None
    for _ in range(200):
        if kind == "linear":
            w = int(rng.uniform(0.35, 0.7) * cols)
            w = min(w, cols - 2 * side - 2)
            left = int(round(cols / 2 - w / 2 + rng.uniform(-0.08, 0.08) * cols))
            left = min(max(left, side + 1), cols - side - 2 - w)
            bot = int(usable_bottom - rng.uniform(0, 0.12) * span)
            if w < 40 or bot - top < 40:
                continue
            return rectangle(left, left + w, top, bot, rows, cols)
        if kind == "curvilinear":
            opening = rng.uniform(50, 80)
            tilt = rng.uniform(-3, 3) if rng.random() < 0.3 else 0.0
            a_left, a_right = 90 + opening / 2 + tilt, 90 - opening / 2 + tilt
            s = min(math.sin(math.radians(a_left)), math.sin(math.radians(a_right)))
            r1 = rng.uniform(0.15, 0.6) * span
            r1 = max(r1, (top + rng.uniform(4, 40)) / s)   # apex above the image
            apex_row = int(math.floor(top - r1 * s))       # upper corners at row >= top
            r1 = int(round(r1))
            cx, r2 = _fit_fan(rng, rows, cols, apex_row, r1, a_left, a_right, usable_bottom,
                              side, 0.1)
        elif kind == "phased":
            opening = rng.uniform(60, 90)
            tilt = rng.uniform(-2, 2) if rng.random() < 0.2 else 0.0
            a_left, a_right = 90 + opening / 2 + tilt, 90 - opening / 2 + tilt
            apex_row = int(round(top))
            r1 = int(rng.integers(0, 6))
            cx, r2 = _fit_fan(rng, rows, cols, apex_row, r1, a_left, a_right, usable_bottom,
                              side, 0.06)
        else:
            raise ValueError(f"unknown probe kind {kind!r}")
        r2 = int(math.floor(r2))
        if r2 - r1 < 0.55 * span:
            continue
        g = fan(cx, apex_row, r1, r2, a_left, a_right, rows, cols)
        m = rasterize(g)
        if not m.any():
            continue
        x0, y0, x1, y1 = bbox(m)
        if x0 < side or x1 > cols - 1 - side or y1 > usable_bottom or y0 < 0:
            continue
        return g
    return None
