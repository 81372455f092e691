#!/usr/bin/python3
"""Synthetic head CT / CBCT series (DICOM) with ground-truth masks, for testing face removal.

The phantom is an adult head and neck built from analytic shapes in patient coordinates (LPS,
millimetres: x to the patient's left, y posterior, z superior; the face looks to -y; z = 0 is
eye level): skin and soft tissue (a lofted body whose cross-sections follow forehead, brow,
cheeks, upper lip, chin, submental and neck, plus a cranial ellipsoid), a subcutaneous fat layer
and buccal fat pads, the skull vault (outer and inner tables with diploe between, thicker at the
base, foramen magnum), facial bones (maxilla, zygoma and zygomatic arches, nasal bones) with
orbits (fat, eyeballs with sclera, vitreous and lens, optic nerves), nasal cavity and septum,
maxillary sinuses, mandible (U-shaped body and rami), upper and lower teeth (dense, with gaps),
lips, the external nose with nostrils open to the outside, pinnae on both sides with ear
canals, the airway (pharynx, trachea), cervical vertebrae with discs and the spinal canal, and
the brain (cortex and white matter with a gyral pattern, ventricles, CSF rim). A carbon-fibre
head holder (a thin dense curved plate) lies behind and below the head, and an 8 mm skin
fiducial bead (1500 HU) sits on the patient's LEFT temple (it makes left and right tell apart). Each seed scales the
head (0.95-1.04 per axis), turns it a little (pitch +-10, yaw +-6, roll +-4 degrees; --pose
none: upright) and moves it so the occiput rests just in front of the holder.

Values (--scale):
  hu    calibrated CT: air -1000, fat -90, soft tissue/skin 40, grey matter 38, white matter 28,
        CSF 6-8, bone 900-1400 (cortical) / 500-650 (diploe, marrow), teeth 2200, holder 350,
        fiducial 1500;
        Gaussian noise (sigma 10-20 HU per seed) after a light partial-volume blur.
        Stored = HU + 1024 (unsigned, 12 bits stored, clipped to 0..4095), RescaleSlope 1,
        RescaleIntercept -1024, RescaleType HU (--pixel signed: stored = HU, signed 16-bit,
        intercept 0).
  cbct  uncalibrated cone-beam values: the attenuation (HU + 1000) is shaded by cupping (darker
        towards the rotation axis, 4-10 %) and a slow drift along z (+-3 %), then
        stored = round(a * HU' + b) with a in [1.3, 1.6] and b such that air is 250-550 (bone
        about 3000-4000), noise sigma 25-40 HU * a, and 0 outside the reconstruction cylinder
        (radius 120 mm about the z axis). Unsigned 16-bit, RescaleSlope 1, RescaleIntercept 0,
        RescaleType US (unspecified), Modality CT.

Geometry (--orientation, the acquisition plane):
  axial     ImageOrientationPatient 1\\0\\0\\0\\1\\0  (columns along +x, rows along +y, normal +z)
  coronal   1\\0\\0\\0\\0\\-1                            (columns +x, rows -z, normal +y)
  sagittal  0\\1\\0\\0\\0\\-1                            (columns +y, rows -z, normal -x)
The centre of voxel (column i, row j) of a slice is ImagePositionPatient + i * PixelSpacing[1] *
row direction + j * PixelSpacing[0] * column direction (PixelSpacing is [row spacing, column
spacing]). The field of view is x -120..120, y -118..122, z -138..126 mm; --size picks the
spacing (low: 2.5 mm in-plane, 3 mm slices, 96 x 96 x 88 axial; mid: 1.2 / 1.5 mm, 200 x 200 x
176; high: 0.6 / 0.75 mm, 400 x 400 x 352, about 113 MB); --dims C,R,S and --spacing override
(centred on the same field). --tilt DEG (axial only) tilts the gantry: the column direction is
(0, cos t, sin t), slice positions still advance along +z, so ImagePositionPatient does not
follow the slice normal (GantryDetectorTilt is written).

Slice files: file names are a seeded shuffle (IM0001.dcm ... in no spatial order); --order sets
InstanceNumber: inc (1 at the lowest position along the normal: inferior for axial), dec (1 at
the highest: superior-to-inferior, the default) or random. A reader has to sort by
ImagePositionPatient projected on the normal.

Layout of --out:
  dicom/IMnnnn.dcm   one CT Image Storage file per slice, explicit VR little endian, 16-bit,
                     one Study/Series/FrameOfReference UID, fake PatientName/PatientID under the
                     test UID root
  truth.npz          uint8 0/1 masks, each shaped [slices, rows, columns] in the order of the
                     series sorted along the slice normal (mask[k, j, i] is column i, row j of the
                     k-th slice by position; k = 0 is the lowest projection on the normal):
    body    everything inside the skin envelope (soft tissue, bone, brain, and the air inside
            it: nasal cavity, sinuses, airway, ear canals, nostrils); not the holder
    skull   every bone voxel: vault, facial bones, nasal bones, mandible, teeth, vertebrae
            (not the cartilaginous septum)
    brain   everything inside the inner surface of the skull vault: brain and CSF
    eyes    eyeballs and eyelids
    nose    the external nose: the nose shape outside the facial surface, bone excluded
            (nostril air included)
    lips    the upper and lower lips in front of the teeth, bone excluded
    ears    the pinnae outside the head surface
    face    what a defacer must remove: non-bone body voxels of nose, lips, eyelids, the front
            half of the eyeballs, and the chin's soft tissue in front of the mandible
            (|x| < 24 mm, below the lower lip, in front of the bone)
    teeth   teeth only
    holder  the head holder
    marker  the fiducial bead on the left temple (outside body)
    fov     voxels inside the reconstruction field (all 1 for hu; the cylinder for cbct)
  manifest.json      options, seed, dims [columns, rows, slices], spacing [column, row, slice]
                     mm, pixel_spacing (DICOM order), orientation, image_orientation_patient,
                     direction (9 numbers: row direction, column direction, unit slice-to-slice
                     vector; the deid_volume_geometry convention), normal, slice_step (mm vector
                     from sorted slice k to k+1), origin (position of sorted slice 0), tilt,
                     order, the value scale and its stored<->HU mapping, pose, mask voxel
                     counts, UIDs, and per slice {file, instance, k, position}.
The output is a pure function of the options (same seed, same bytes; no dates from the clock).

Library use (no DICOM written):
  import make_head_phantom as hp
  ph = hp.make_phantom(size="low", scale="hu", orientation="axial", seed=1)
  ph.volume    stored values [slices, rows, columns] (uint16, or int16 for --pixel signed)
  ph.masks     {name: uint8 array like volume}
  ph.geometry  {"dims", "spacing", "origin", "direction", "normal", "slice_step", ...}
  ph.mapping   {"slope", "intercept", "rescale_type", "hounsfield", ...}
  ph.hu        the noiseless modality values (float32, same order) before the stored mapping

Usage:
  make_head_phantom.py --out DIR [--size low|mid|high] [--dims C,R,S] [--spacing S|S,T|C,R,T]
                       [--scale hu|cbct] [--orientation axial|coronal|sagittal]
                       [--order inc|dec|random] [--tilt DEG] [--pose random|none]
                       [--no-holder] [--no-noise] [--pixel unsigned|signed] [--seed N]
Requires numpy and pydicom >= 2.2 (Debian: /usr/bin/python3).
"""
import argparse
import collections
import io
import json
import math
import os
import sys
import time
import zipfile
import zlib

import numpy as np

UID_ROOT = "1.2.826.0.1.3680043.9.7777.25"   # test root shared with make_phi_corpus.py, arc 25
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
VERSION = 1

FOV_LO = np.array([-120.0, -118.0, -138.0])
FOV_HI = np.array([120.0, 122.0, 126.0])
SIZES = {"low": (2.5, 3.0), "mid": (1.2, 1.5), "high": (0.6, 0.75)}
ORIENTATIONS = {   # row direction (along a row: +column), column direction (down the rows)
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
MASKS = ("body", "skull", "brain", "eyes", "nose", "lips", "ears", "face", "teeth", "holder",
         "marker", "fov")
HEAD_CENTRE = np.array([0.0, 10.0, 0.0])   # pose rotation centre, head frame
HOLDER_R = (114.0, 117.5)                  # holder shell radii about the scanner z axis
FOV_RADIUS = 120.0                         # cbct reconstruction cylinder
SLAB_VOXELS = 3_000_000

Phantom = collections.namedtuple("Phantom", "volume masks geometry mapping hu pose")

# ---- the body's lofted cross-sections (head frame) ------------------------------------------
# z: half-width a, centre y, front half-depth bf (superellipse exponent pf), back half-depth bb
LOFT_Z = [-150, -118, -108, -96, -75, -50, -25, 0, 25, 40]
LOFT_A = [56, 54, 52, 50, 58, 64, 70, 73, 77, 78]
LOFT_YC = [20, 20, 8, 4, 4, 6, 8, 9, 9, 10]
LOFT_BF = [48, 50, 78, 86, 78, 82, 86, 87, 92, 99]
LOFT_BB = [50, 52, 62, 66, 66, 70, 87, 96, 99, 99]
LOFT_PF = [2.0, 2.0, 2.2, 2.3, 2.6, 2.8, 3.0, 3.0, 2.5, 2.0]
LOFT_TOP = 40.0
SCALP = ((0.0, 10.0, 40.0), (78.0, 99.0, 78.0))       # cranial ellipsoid (skin)
SKULL_OUT = ((0.0, 10.0, 41.0), (72.0, 92.0, 71.0))   # outer table
CAVITY = ((0.0, 10.0, 42.0), (65.0, 86.0, 64.0))      # inner table (brain + CSF)
FLOOR_Y, FLOOR_Z = [-40.0, -20.0, 10.0], [20.0, -8.0, -30.0]   # cranial fossae floor
# external nose: profile y_n(z) and base half-width w(z)
NOSE_Z = [-36, -33, -28, -22, -15, 0, 12]
NOSE_YN = [-80, -88, -100, -106, -102, -88, -80]
NOSE_W = [15, 17, 16.5, 16, 12, 9, 8]
NOSE_BASE_Y, NOSE_RIDGE = -70.0, 3.5
EYE_C = (32.0, -62.0, 0.0)
EYE_R = 12.0
MARKER_C, MARKER_R = (76.0, -30.0, 35.0), 4.0   # skin fiducial on the LEFT temple


# ---- small helpers ---------------------------------------------------------------------------

def _f32(x):
    return np.float32(x)


def ellipsoid(c, r, d=0.0):
    """(bbox, fn) of the ellipsoid centre c, radii r shrunk by d mm."""
    rr = [max(1e-3, ri - d) for ri in r]
    bbox = ([c[0] - rr[0], c[1] - rr[1], c[2] - rr[2]], [c[0] + rr[0], c[1] + rr[1], c[2] + rr[2]])

    def fn(X, Y, Z):
        return (((X - _f32(c[0])) * _f32(1 / rr[0])) ** 2 + ((Y - _f32(c[1])) * _f32(1 / rr[1])) ** 2
                + ((Z - _f32(c[2])) * _f32(1 / rr[2])) ** 2) < 1
    return bbox, fn


def capsule(a, b, r):
    """(bbox, fn) of the points within r of the segment a-b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    L2 = float(ab @ ab)
    bbox = (list(np.minimum(a, b) - r), list(np.maximum(a, b) + r))

    def fn(X, Y, Z):
        px, py, pz = X - _f32(a[0]), Y - _f32(a[1]), Z - _f32(a[2])
        t = np.clip((px * _f32(ab[0]) + py * _f32(ab[1]) + pz * _f32(ab[2])) * _f32(1 / L2), 0, 1)
        return ((px - t * _f32(ab[0])) ** 2 + (py - t * _f32(ab[1])) ** 2
                + (pz - t * _f32(ab[2])) ** 2) < _f32(r * r)
    return bbox, fn


def arch(y0, k, xmax, hw, z0, z1, gaps=0):
    """(bbox, fn) of a U-shaped tube around the parabola y = y0 + k x^2 (|x| <= xmax), half
    width hw in the axial plane, z0 <= z <= z1; with gaps > 0, cut into that many teeth."""
    ymax = y0 + k * xmax * xmax
    bbox = ([-xmax - hw, y0 - hw, z0], [xmax + hw, ymax + hw, z1])

    def fn(X, Y, Z):
        f = (Y - _f32(y0) - _f32(k) * X * X) / np.sqrt(1 + (_f32(2 * k) * X) ** 2)
        m = (np.abs(f) < _f32(hw)) & (np.abs(X) <= _f32(xmax)) & (Z >= _f32(z0)) & (Z <= _f32(z1))
        if gaps:
            # arc length along the parabola, approximately: x * sqrt(1 + (k x)^2 ...) -> use x
            # and y together so the gaps cut across the tube
            s = np.arctan2(X, (_f32(ymax) - Y)) * _f32(gaps / 2.2)
            m &= np.abs(s - np.round(s)) > _f32(0.07)
        return m
    return bbox, fn


class Table:
    """Piecewise-linear functions of one coordinate sampled every 0.05 mm (np.interp, clamped
    at the ends, but a gather instead of a search: the loft is evaluated on millions of
    voxels)."""
    STEP = 0.05

    def __init__(self, xs, **ys):
        self.x0 = float(xs[0])
        n = int(math.ceil((xs[-1] - xs[0]) / self.STEP)) + 1
        grid = self.x0 + self.STEP * np.arange(n)
        self.n = n
        self.t = {k: np.interp(grid, xs, v).astype(np.float32) for k, v in ys.items()}

    def index(self, X):
        i = (X - _f32(self.x0)) * _f32(1 / self.STEP) + _f32(0.5)
        return np.clip(i, 0, self.n - 1).astype(np.intp)

    def __call__(self, X, key):
        return self.t[key][self.index(X)]


LOFT = Table(LOFT_Z, a=LOFT_A, yc=LOFT_YC, bf=LOFT_BF, bb=LOFT_BB, pf=LOFT_PF)
FLOOR = Table(FLOOR_Y, z=FLOOR_Z)
NOSE = Table(NOSE_Z, yn=NOSE_YN, w=NOSE_W)


def loft_params(Z, d):
    i = LOFT.index(Z)
    t = LOFT.t
    return (t["a"][i] - _f32(d), t["yc"][i], t["bf"][i] - _f32(d), t["bb"][i] - _f32(d),
            t["pf"][i])


def loft(d=0.0, zmin=-1e4, zmax=LOFT_TOP, scale_xy=1.0):
    """(bbox, fn) of the lofted body (face, jaw, neck) inset by d mm, zmin <= z <= zmax."""
    bbox = ([-max(LOFT_A) * scale_xy, min(np.subtract(LOFT_YC, LOFT_BF)) - 1, zmin],
            [max(LOFT_A) * scale_xy, max(np.add(LOFT_YC, LOFT_BB)) + 1, zmax])

    def fn(X, Y, Z):
        a, yc, bf, bb, pf = loft_params(Z, d)
        a = a * _f32(scale_xy)
        dy = Y - yc
        front = dy < 0
        u = np.abs(X) / a
        v = np.abs(dy) / np.where(front, bf, bb)
        p = np.where(front, pf, _f32(2.0))
        m = (u ** p + v ** p) < 1
        return m & (Z <= _f32(zmax)) & (Z >= _f32(zmin))
    return bbox, fn


def cavity(d=0.0):
    """(bbox, fn) of the cranial cavity (inside the inner table) inset by d (negative: out)."""
    (c, r) = CAVITY
    bbox, ell = ellipsoid(c, r, d)

    def fn(X, Y, Z):
        floor = FLOOR(Y, "z") + _f32(d)
        return ell(X, Y, Z) & (Z > floor)
    return bbox, fn


def nose(d=0.0):
    """(bbox, fn) of the external nose (a rounded wedge from the face to the profile y_n(z)),
    inset by d mm."""
    bbox = ([-max(NOSE_W), min(NOSE_YN) - 1, NOSE_Z[0]], [max(NOSE_W), NOSE_BASE_Y, NOSE_Z[-1]])

    def fn(X, Y, Z):
        i = NOSE.index(Z)
        yn = NOSE.t["yn"][i] + _f32(d)
        w = NOSE.t["w"][i]
        s = np.clip((Y - yn) / (_f32(NOSE_BASE_Y) - yn), 0, 1)
        half = _f32(NOSE_RIDGE) + (w - _f32(NOSE_RIDGE)) * np.sqrt(s) - _f32(d)
        return ((Y > yn) & (Y < _f32(NOSE_BASE_Y)) & (np.abs(X) < half)
                & (Z > _f32(NOSE_Z[0] + d)) & (Z < _f32(NOSE_Z[-1])))
    return bbox, fn


def pinna(side):
    """(bbox, fn) of one ear: a cupped plate 5 mm thick, 32 x 60 mm, flaring backwards."""
    c = np.array([78.0 * side, 22.0, -5.0])
    u = np.array([0.5 * side, 0.866, 0.0])        # in-plane, back and out
    n = np.array([0.866 * side, -0.5, 0.0])       # plate normal, out and forward
    bbox = (list(c - [22, 22, 31]), list(c + [22, 22, 31]))

    def fn(X, Y, Z):
        px, py, pz = X - _f32(c[0]), Y - _f32(c[1]), Z - _f32(c[2])
        s = px * _f32(u[0]) + py * _f32(u[1])
        h = px * _f32(n[0]) + py * _f32(n[1]) - _f32(0.012) * (s * s + _f32(0.3) * pz * pz)
        return (np.abs(h) < 2.5) & ((s / _f32(16)) ** 2 + (pz / _f32(30)) ** 2 < 1)
    return bbox, fn


def cut_y(shape, y):
    """The part of shape in front of (y less than) y."""
    bbox, fn = shape
    return (bbox[0], [bbox[1][0], min(bbox[1][1], y), bbox[1][2]]), \
        lambda X, Y, Z: fn(X, Y, Z) & (Y < _f32(y))


def union(*shapes):
    lo = np.min([s[0][0] for s in shapes], axis=0)
    hi = np.max([s[0][1] for s in shapes], axis=0)

    def fn(X, Y, Z):
        m = None
        for _, f in shapes:
            r = f(X, Y, Z)
            m = r if m is None else (m | r)
        return m
    return (list(lo), list(hi)), fn


# ---- the sampling grid -----------------------------------------------------------------------

class Grid:
    """Voxel (k, j, i) of the sorted series -> scanner (patient) and head coordinates, both
    affine: P = P0 + k * Vk + j * Vj + i * Vi. Evaluates shapes on slabs of slices, each shape
    only on the index box its bounding box can touch."""

    def __init__(self, dims_kji, origin, vk, vj, vi, head_from_scanner):
        self.shape = tuple(int(x) for x in dims_kji)
        self.P0 = np.asarray(origin, float)
        self.V = np.array([vk, vj, vi], float)          # rows: index dims k, j, i
        M, t = head_from_scanner                        # q = M p + t
        self.frames = {"scanner": (self.P0, self.V),
                       "head": (M @ self.P0 + t, self.V @ M.T)}

    def slab(self, k0, k1):
        return Slab(self, k0, k1)


class Slab:
    def __init__(self, grid, k0, k1):
        self.g, self.k0, self.k1 = grid, k0, k1
        self.shape = (k1 - k0,) + grid.shape[1:]

    def box(self, bbox, frame):
        """Index ranges (inclusive, slab-relative) that may hold points of bbox, or None."""
        A0, A = self.g.frames[frame]
        lo = [self.k0, 0, 0]
        hi = [self.k1 - 1, self.g.shape[1] - 1, self.g.shape[2] - 1]
        blo, bhi = bbox
        for _ in range(3):
            for a in range(3):
                if all(abs(A[d][a]) < 1e-12 for d in range(3)):
                    if not blo[a] <= A0[a] <= bhi[a]:
                        return None
                    continue
                for d in range(3):
                    cf = A[d][a]
                    if abs(cf) < 1e-12:
                        continue
                    omin = omax = A0[a]
                    for e in range(3):
                        if e != d:
                            x1, x2 = A[e][a] * lo[e], A[e][a] * hi[e]
                            omin += min(x1, x2)
                            omax += max(x1, x2)
                    t1, t2 = (blo[a] - omax) / cf, (bhi[a] - omin) / cf
                    lo[d] = max(lo[d], math.ceil(min(t1, t2) - 1e-9))
                    hi[d] = min(hi[d], math.floor(max(t1, t2) + 1e-9))
                    if lo[d] > hi[d]:
                        return None
        return (slice(lo[0] - self.k0, hi[0] + 1 - self.k0), slice(lo[1], hi[1] + 1),
                slice(lo[2], hi[2] + 1))

    def coords(self, blk, frame):
        """X, Y, Z of a slab-relative index box: float32 arrays broadcastable to its shape."""
        A0, A = self.g.frames[frame]
        starts = [blk[0].start + self.k0, blk[1].start, blk[2].start]
        lens = [blk[d].stop - blk[d].start for d in range(3)]
        idx = []
        for d in range(3):
            shape = [1, 1, 1]
            shape[d] = lens[d]
            idx.append(np.arange(starts[d], starts[d] + lens[d], dtype=np.float64).reshape(shape))
        out = []
        for a in range(3):
            v = np.float64(A0[a])
            for d in range(3):
                if abs(A[d][a]) >= 1e-12:
                    v = v + idx[d] * A[d][a]
            out.append(np.asarray(v, dtype=np.float32))
        return out

    def region(self, shape, frame="head"):
        out = np.zeros(self.shape, bool)
        blk = self.box(shape[0], frame)
        if blk is not None:
            X, Y, Z = self.coords(blk, frame)
            out[blk] = shape[1](X, Y, Z)
        return out

    def field(self, fn, frame="scanner"):
        """fn(X, Y, Z) over the whole slab (broadcast to the slab shape)."""
        blk = (slice(0, self.shape[0]), slice(0, self.shape[1]), slice(0, self.shape[2]))
        X, Y, Z = self.coords(blk, frame)
        return np.broadcast_to(fn(X, Y, Z), self.shape)


# ---- the anatomy -----------------------------------------------------------------------------

def render_slab(s, holder):
    """HU (float32) and masks (bool) of one slab."""
    R = s.region
    hu = np.full(s.shape, -1000.0, np.float32)
    bone = np.zeros(s.shape, bool)

    def paint(m, value, is_bone=False):
        if is_bone:
            m = m & body     # bone never pierces the skin
        hu[m] = value
        bone[m] = is_bone

    env = R(union(loft(), ellipsoid(*SCALP)))                  # head and neck envelope
    nose_m = R(nose())
    lips_shape = union(ellipsoid((0, -78, -52), (25, 7.5, 8)), ellipsoid((0, -76, -65), (23, 7.5, 7)))
    lips_m = R(lips_shape)
    ears_m = R(pinna(1)) | R(pinna(-1))
    eyeball = R(ellipsoid(EYE_C, (EYE_R,) * 3)) | R(ellipsoid((-EYE_C[0],) + EYE_C[1:], (EYE_R,) * 3))
    lid = np.zeros(s.shape, bool)
    for side in (1, -1):
        c = (EYE_C[0] * side,) + EYE_C[1:]
        lid |= R(cut_y(ellipsoid(c, (14.5,) * 3), c[1] - 4))
    lid &= ~eyeball
    body = env | nose_m | lips_m | ears_m | lid
    deep = R(union(loft(3.0), ellipsoid(SCALP[0], SCALP[1], 3.0))) | R(nose(2.5))

    if holder:
        def holder_fn(X, Y, Z):
            r2 = X * X + Y * Y
            return ((r2 > _f32(HOLDER_R[0] ** 2)) & (r2 < _f32(HOLDER_R[1] ** 2)) & (Y > 55)
                    & (Z > -140) & (Z < 60))
        holder_m = s.region((([-120, 50, -140], [120, 120, 60]), holder_fn), "scanner")
        holder_m &= ~body
        paint(holder_m, 350.0)
    else:
        holder_m = np.zeros(s.shape, bool)
    marker = R(ellipsoid(MARKER_C, (MARKER_R,) * 3)) & ~body
    paint(marker, 1500.0)

    paint(body, 40.0)
    fat = R(union(loft(2.5), ellipsoid(SCALP[0], SCALP[1], 2.5))) & \
        ~R(union(loft(6.0), ellipsoid(SCALP[0], SCALP[1], 6.0)))
    paint(fat, -90.0)
    for side in (1, -1):
        paint(R(ellipsoid((44 * side, -45, -42), (11, 15, 16))), -90.0)

    # skull vault: outer table, diploe, inner table; base from the fossae floor down 11 mm
    vault_shape = ellipsoid(*SKULL_OUT)
    vault = R((vault_shape[0], lambda X, Y, Z: vault_shape[1](X, Y, Z)
               & (Z > FLOOR(Y, "z") - _f32(11))))
    cav = R(cavity())
    paint(vault & ~cav, 1400.0, True)
    paint(vault & R(ellipsoid(SKULL_OUT[0], SKULL_OUT[1], 2.2)) & ~R(cavity(-2.2)), 650.0, True)

    # facial bones: an inset copy of the face, cut behind and narrowed below the cheekbones
    fb = loft(7.0, -44.0, 24.0, 1.0)
    paint(R((fb[0], lambda X, Y, Z: fb[1](X, Y, Z) & (Y < np.where(np.abs(X) < 20, -12, -28))
             & ((Z >= -30) | (np.abs(X) < 36)))), 900.0, True)
    paint(R(arch(-67.0, 0.058, 27.0, 6.0, -50.0, -44.0)), 900.0, True)          # upper alveolus
    for side in (1, -1):
        paint(R(capsule((56 * side, -42, -14), (62 * side, 0, -12), 4.0)), 900.0, True)
        paint(R(capsule((45 * side, 6, -97), (50 * side, 6, -22), 5.0)), 1300.0, True)  # ramus
    paint(R(arch(-70.0, 0.0375, 46.0, 5.0, -100.0, -60.0)), 1300.0, True)        # mandible
    paint(R(arch(-70.0, 0.0375, 46.0, 2.2, -96.0, -64.0)), 500.0, True)          # marrow
    top = R((([-20, -120, -8], [20, -60, 14]), lambda X, Y, Z: Z > -8))
    paint(R(nose(2.0)) & ~R(nose(4.5)) & top, 900.0, True)             # nasal bones

    # cervical spine: bodies with discs, posterior arches, spinous processes
    def vert_fn(X, Y, Z):
        return (X * X + (Y - 28) ** 2 < 100) & (Z < -48)
    spine_body = R((([-10, 18, -1e4], [10, 38, -48]), vert_fn))
    paint(spine_body, 750.0, True)
    paint(spine_body & R((([-10, 18, -1e4], [10, 38, -48]),
                          lambda X, Y, Z: np.mod(Z + 48, 16) < 4)), 80.0)
    paint(R((([-12, 34, -1e4], [12, 64, -44]),
             lambda X, Y, Z: (((X * X + (Y - 46) ** 2) < 144) | ((np.abs(X) < 3) & (Y > 46)
                                                                   & (Y < 62))) & (Z < -44)
             & (np.mod(Z + 44, 16) < 11))), 800.0, True)

    # cavities: orbits, nasal cavity, sinuses, airway, canals, nostrils
    orbits = np.zeros(s.shape, bool)
    for side in (1, -1):
        orbits |= R(ellipsoid((32 * side, -58, 0), (18, 26, 17)))
    paint(orbits & deep, -80.0)
    ncav = R((([-13, -80, -36], [13, -10, 12]),
         lambda X, Y, Z: ((np.abs(X) / 13) ** 4 + (np.abs(Y + 45) / 35) ** 4
                          + (np.abs(Z + 12) / 24) ** 4) < 1))
    paint(ncav & deep, -1000.0)
    paint(ncav & deep & R((([-1.2, -80, -36], [1.2, -10, 12]),
                           lambda X, Y, Z: (np.abs(X) < 1.2) & (Y > -72))), 300.0)   # septum
    for side in (1, -1):
        paint(R(ellipsoid((60 * side, -14, 8), (9, 26, 32))) & deep & ~R(cavity(-3.0)),
              45.0)                                                 # temporal muscle
        paint(R(ellipsoid((30 * side, -42, -30), (16, 19, 14))) & deep, -1000.0)
        paint(R(capsule((74 * side, 14, -10), (58 * side, 12, -10), 3.5)) & body, -1000.0)
        paint(R(capsule((7 * side, -96, -31), (7 * side, -76, -22), 4.0)) & body, -1000.0)
        paint(R(capsule((7 * side, -94, -38), (7 * side, -94, -30), 3.5)) & body, -1000.0)
    paint(R(capsule((0, -10, -20), (0, 2, -60), 7.0)) & deep, -1000.0)
    paint(R(capsule((0, 2, -60), (0, -12, -150), 8.0)) & deep, -1000.0)
    paint(R(capsule((0, 44, -150), (0, 44, -12), 7.5)), 25.0)       # canal, foramen magnum
    paint(R(capsule((0, 44, -40), (0, 40, -16), 13.0)) & ~cav & deep, 25.0)

    # brain: CSF rim, cortex, white matter with a gyral pattern, ventricles
    paint(cav, 8.0)
    inner = R(cavity(2.5))
    paint(inner, 38.0)

    def wm_fn(X, Y, Z):
        q = (X / _f32(50)) ** 2 + ((Y - 12) / _f32(70)) ** 2 + ((Z - 48) / _f32(44)) ** 2
        g = np.sin(X * _f32(0.31)) * np.sin(Y * _f32(0.27)) * np.sin(Z * _f32(0.29))
        return q < 1 + _f32(0.18) * g
    paint(R((([-55, -63, 0], [55, 87, 95]), wm_fn)) & R(cavity(9.0)), 28.0)
    for side in (1, -1):
        paint(R(ellipsoid((10 * side, 4, 50), (6, 28, 10))), 6.0)
    paint(R(ellipsoid((0, 10, 36), (2.5, 12, 9))), 6.0)

    # eyes, eyelids, lips, teeth
    for side in (1, -1):
        c = (EYE_C[0] * side,) + EYE_C[1:]
        paint(R(capsule((c[0], c[1] + 8, c[2]), (14 * side, -25, 5), 2.5)) & orbits & deep, 35.0)
    paint(eyeball, 45.0)
    for side in (1, -1):
        c = (EYE_C[0] * side,) + EYE_C[1:]
        paint(R(ellipsoid(c, (EYE_R - 1,) * 3)), 8.0)
        paint(R(ellipsoid((c[0], c[1] - 8.5, c[2]), (4.5, 2.0, 4.5))), 110.0)
    paint(lid, 40.0)
    paint(lips_m & ~bone, 45.0)
    upper = R(arch(-67.0, 0.058, 27.0, 4.0, -58.5, -48.0, gaps=14))
    lower = R(arch(-65.0, 0.062, 25.0, 3.8, -69.0, -59.0, gaps=14))
    teeth = upper | lower
    paint(teeth, 2200.0, True)

    # masks
    front_of_teeth = R((([-40, -130, -80], [40, -40, -40]),
                        lambda X, Y, Z: Y < _f32(-71.0) + _f32(0.058) * X * X))
    chin = R((([-24, -130, -106], [24, -60, -70]),
              lambda X, Y, Z: (np.abs(X) < 24) & (Z > -106) & (Z < -70)
              & (Y < _f32(-75.0) + _f32(0.0375) * X * X)))
    eye_front = np.zeros(s.shape, bool)
    for side in (1, -1):
        c = (EYE_C[0] * side,) + EYE_C[1:]
        eye_front |= R(cut_y(ellipsoid(c, (EYE_R,) * 3), c[1]))
    soft = body & ~bone
    m = {"body": body, "skull": bone.copy(), "brain": cav, "eyes": eyeball | lid,
         "nose": nose_m & ~env & ~bone, "lips": lips_m & ~bone & front_of_teeth,
         "ears": ears_m & ~env, "teeth": teeth, "holder": holder_m, "marker": marker}
    m["face"] = soft & (m["nose"] | m["lips"] | lid | eye_front | (chin & body))
    return hu, m


# ---- geometry, values, the phantom -----------------------------------------------------------

def rotation(yaw, pitch, roll):
    """Head -> scanner rotation (degrees): pitch about x (chin down > 0), yaw about z, roll
    about y."""
    p, y, r = (math.radians(v) for v in (pitch, yaw, roll))
    Rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    Rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    Ry = np.array([[math.cos(r), 0, math.sin(r)], [0, 1, 0], [-math.sin(r), 0, math.cos(r)]])
    return Rz @ Ry @ Rx


def make_pose(seed, pose):
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    scale = rng.uniform(0.95, 1.04, 3)
    yaw, pitch, roll = rng.uniform(-6, 6), rng.uniform(-10, 10), rng.uniform(-4, 4)
    tx, tz = rng.uniform(-4, 4), rng.uniform(-5, 5)
    if pose == "none":
        scale, yaw, pitch, roll, tx, tz = np.ones(3), 0.0, 0.0, 0.0, 0.0, 0.0
    Rm = rotation(yaw, pitch, roll)
    # the occiput (head frame (0, 109, 40) scaled) rests 3 mm in front of the holder
    back = HEAD_CENTRE + Rm @ ((np.array([0.0, 109.0, 40.0]) - HEAD_CENTRE) * scale)
    ty = (HOLDER_R[0] - 3.0) - back[1] if pose != "none" else 0.0
    t = np.array([tx, ty, tz])
    # scanner p = c + R S (q - c) + t  ->  q = S^-1 R^T (p - c - t) + c
    M = np.diag(1.0 / scale) @ Rm.T
    tq = HEAD_CENTRE - M @ (HEAD_CENTRE + t)
    return {"scale": [float(v) for v in scale], "yaw": float(yaw), "pitch": float(pitch),
            "roll": float(roll), "translation": [float(v) for v in t]}, (M, tq)


def make_geometry(size, dims, spacing, orientation, tilt):
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}")
    if tilt and orientation != "axial":
        raise ValueError("--tilt applies to axial series only")
    r, c = (np.array(v) for v in ORIENTATIONS[orientation])
    if tilt:
        t = math.radians(tilt)
        c = np.array([0.0, math.cos(t), math.sin(t)])
    n = np.cross(r, c)
    if spacing is None:
        ins, th = SIZES[size]
        spacing = (ins, ins, th)
    elif len(spacing) == 1:
        spacing = (spacing[0], spacing[0], spacing[0])
    elif len(spacing) == 2:
        spacing = (spacing[0], spacing[0], spacing[1])
    sc, sr, ss = (float(v) for v in spacing)
    if min(sc, sr, ss) <= 0:
        raise ValueError("spacing must be > 0")
    step = np.array([0.0, 0.0, ss]) if tilt else ss * n
    ext = FOV_HI - FOV_LO
    if dims is None:
        along = np.abs(np.array(ORIENTATIONS[orientation]))
        nsl = np.abs(np.cross(along[0], along[1]))
        dims = (int(round(float(along[0] @ ext) / sc)), int(round(float(along[1] @ ext) / sr)),
                int(round(float(nsl @ ext) / ss)))
    ncol, nrow, nsl = (int(v) for v in dims)
    if min(ncol, nrow, nsl) < 1:
        raise ValueError("dims must be >= 1")
    centre = (FOV_LO + FOV_HI) / 2
    origin = centre - (ncol - 1) / 2 * sc * r - (nrow - 1) / 2 * sr * c - (nsl - 1) / 2 * step
    return {"dims": [ncol, nrow, nsl], "spacing": [sc, sr, ss], "pixel_spacing": [sr, sc],
            "orientation": orientation, "tilt_degrees": float(tilt or 0.0),
            "image_orientation_patient": [float(v) for v in np.concatenate([r, c])],
            "row_direction": [float(v) for v in r], "column_direction": [float(v) for v in c],
            "normal": [float(v) for v in n], "slice_step": [float(v) for v in step],
            "origin": [float(v) for v in origin],
            "direction": [float(v) for v in np.concatenate([r, c, step / ss])],
            "positions": [[float(v) for v in origin + k * step] for k in range(nsl)]}


def blur(v):
    """A light partial-volume blur: [0.2, 0.6, 0.2] along each axis, in place."""
    for ax in range(3):
        if v.shape[ax] < 3:
            continue
        a = np.moveaxis(v, ax, 0)
        prev = a[0].copy()
        for k in range(a.shape[0]):
            cur = a[k].copy()
            nxt = a[k + 1] if k + 1 < a.shape[0] else cur
            a[k] = _f32(0.6) * cur + _f32(0.2) * (prev + nxt)
            prev = cur
    return v


def make_phantom(size="low", dims=None, spacing=None, scale="hu", orientation="axial",
                 seed=1, tilt=0.0, pose="random", holder=True, noise=True, pixel="unsigned"):
    """The phantom as arrays (see the module docstring): Phantom(volume, masks, geometry,
    mapping, hu, pose). volume, masks and hu are [slices, rows, columns] in the order of the
    slices sorted along the normal."""
    if scale not in ("hu", "cbct"):
        raise ValueError(f"unknown scale {scale!r}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}")
    geo = make_geometry(size, dims, spacing, orientation, tilt)
    pose_info, head_from_scanner = make_pose(seed, pose)
    ncol, nrow, nsl = geo["dims"]
    sc, sr, _ = geo["spacing"]
    grid = Grid((nsl, nrow, ncol), geo["origin"], geo["slice_step"],
                np.array(geo["column_direction"]) * sr, np.array(geo["row_direction"]) * sc,
                head_from_scanner)
    hu = np.empty((nsl, nrow, ncol), np.float32)
    masks = {k: np.zeros((nsl, nrow, ncol), np.uint8) for k in MASKS}
    per = max(1, SLAB_VOXELS // (nrow * ncol))
    for k0 in range(0, nsl, per):
        k1 = min(nsl, k0 + per)
        sl = grid.slab(k0, k1)
        h, m = render_slab(sl, holder)
        hu[k0:k1] = h
        for name, arr in m.items():
            masks[name][k0:k1] = arr
        if scale == "cbct":
            masks["fov"][k0:k1] = sl.field(
                lambda X, Y, Z: (X * X + (Y - 2) ** 2) < _f32(FOV_RADIUS ** 2))
        else:
            masks["fov"][k0:k1] = 1
    blur(hu)

    rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
    sigma = float(rng.uniform(10, 20)) if scale == "hu" else float(rng.uniform(25, 40))
    a = float(rng.uniform(1.3, 1.6))
    air = float(rng.uniform(250, 550))
    cup = float(rng.uniform(0.04, 0.10))
    drift = float(rng.uniform(-0.03, 0.03))
    noise_rng = np.random.default_rng(np.random.SeedSequence([seed, 29]))
    if scale == "hu":
        if pixel == "signed":
            mapping = {"slope": 1.0, "intercept": 0.0, "rescale_type": "HU", "hounsfield": True,
                       "stored": "round(HU + noise)", "dtype": "int16", "bits_stored": 16,
                       "pixel_representation": 1, "offset": 0.0}
        else:
            mapping = {"slope": 1.0, "intercept": -1024.0, "rescale_type": "HU",
                       "hounsfield": True, "stored": "clip(round(HU + noise + 1024), 0, 4095)",
                       "dtype": "uint16", "bits_stored": 12, "pixel_representation": 0,
                       "offset": 1024.0}
        mapping["noise_sigma_hu"] = sigma if noise else 0.0
        lo, hi = (-32768, 32767) if pixel == "signed" else (0, 4095)
        vol = np.empty(hu.shape, np.int16 if pixel == "signed" else np.uint16)
        for k0 in range(0, nsl, per):
            k1 = min(nsl, k0 + per)
            v = hu[k0:k1] + _f32(mapping["offset"])
            if noise:
                v = v + noise_rng.standard_normal(v.shape, dtype=np.float32) * _f32(sigma)
            vol[k0:k1] = np.clip(np.rint(v), lo, hi)
    else:
        b = air + 1000.0 * a
        mapping = {"slope": 1.0, "intercept": 0.0, "rescale_type": "US", "hounsfield": False,
                   "stored": "round(a * HU' + b + noise), 0 outside the field; HU' = "
                             "(HU + 1000) * (1 - cupping * (1 - r^2 / R^2)) * "
                             "(1 + drift * (z - zc) / 130) - 1000",
                   "a": a, "b": b, "cupping": cup, "drift": drift, "R": FOV_RADIUS,
                   "zc": float((FOV_LO[2] + FOV_HI[2]) / 2), "air_stored": air,
                   "bone_stored_1200hu": a * 1200 + b, "dtype": "uint16", "bits_stored": 16,
                   "pixel_representation": 0,
                   "noise_sigma_stored": sigma * a if noise else 0.0}
        zc = mapping["zc"]
        vol = np.empty(hu.shape, np.uint16)
        for k0 in range(0, nsl, per):
            k1 = min(nsl, k0 + per)
            sl = grid.slab(k0, k1)
            shade = sl.field(lambda X, Y, Z: (_f32(1) - _f32(cup) * np.clip(
                _f32(1) - (X * X + (Y - 2) ** 2) / _f32(FOV_RADIUS ** 2), 0, 1))
                * (_f32(1) + _f32(drift) * (Z - _f32(zc)) / _f32(130)))
            v = ((hu[k0:k1] + _f32(1000)) * shade - _f32(1000)) * _f32(a) + _f32(b)
            if noise:
                v = v + noise_rng.standard_normal(v.shape, dtype=np.float32) * _f32(sigma * a)
            v = np.clip(np.rint(v), 0, 65535)
            v[masks["fov"][k0:k1] == 0] = 0
            vol[k0:k1] = v
    mapping["scale"] = scale
    for name in MASKS:
        masks[name] = masks[name].astype(np.uint8)
    return Phantom(vol, masks, geo, mapping, hu, pose_info)


# ---- DICOM and the truth files ---------------------------------------------------------------

def ds_str(v, decimals=6):
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    s = "0" if s in ("-0", "") else s
    return s[:16]


def uid(*parts):
    return ".".join([UID_ROOT] + [str(int(p)) for p in parts])


def write_npz(path, arrays):
    """np.savez_compressed with fixed zip timestamps (same arrays, same bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def write_series(out, ph, opts):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    geo, mp = ph.geometry, ph.mapping
    ncol, nrow, nsl = geo["dims"]
    key = zlib.crc32(json.dumps(opts, sort_keys=True).encode()) % 100_000_000
    seed = opts["seed"] % 100_000
    rng = np.random.default_rng(np.random.SeedSequence([opts["seed"], 31]))
    names = rng.permutation(nsl)                    # file name of sorted slice k
    if opts["order"] == "inc":
        inst = np.arange(nsl)
    elif opts["order"] == "dec":
        inst = np.arange(nsl)[::-1]
    else:
        inst = rng.permutation(nsl)
    study, series, frame = uid(seed, key, 1), uid(seed, key, 2), uid(seed, key, 3)
    pid = f"PH{int(rng.integers(10**6, 10**7))}"
    os.makedirs(os.path.join(out, "dicom"), exist_ok=True)
    normal = np.array(geo["normal"])
    cbct = mp["scale"] == "cbct"
    files = []
    for k in range(nsl):
        fname = f"IM{int(names[k]) + 1:04d}.dcm"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE
        meta.MediaStorageSOPInstanceUID = uid(seed, key, 4, k + 1)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = uid(0, 1)
        ds = FileDataset(fname, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = (["ORIGINAL", "PRIMARY", "AXIAL"] if geo["orientation"] == "axial"
                        else ["DERIVED", "SECONDARY", "REFORMATTED"])
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE, meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20200102"
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "093000"
        ds.AccessionNumber = f"PHA{key % 10**6:06d}"
        ds.Modality = "CT"
        ds.Manufacturer = "LIBDEID TEST"
        ds.ManufacturerModelName = "HEAD PHANTOM CBCT" if cbct else "HEAD PHANTOM CT"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "HEAD PHANTOM"
        ds.SeriesDescription = f"{mp['scale'].upper()} {geo['orientation']} phantom"
        ds.PatientName = "PHANTOM^HEAD"
        ds.PatientID = pid
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.BodyPartExamined = "HEAD"
        ds.SliceThickness = ds_str(geo["spacing"][2])
        ds.KVP = "90" if cbct else "120"
        if geo["tilt_degrees"]:
            ds.GantryDetectorTilt = ds_str(geo["tilt_degrees"])
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyID = "1"
        ds.SeriesNumber = 2
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = int(inst[k]) + 1
        pos = geo["positions"][k]
        ds.ImagePositionPatient = [ds_str(v, 4) for v in pos]
        ds.ImageOrientationPatient = [ds_str(v, 8) for v in geo["image_orientation_patient"]]
        ds.FrameOfReferenceUID = frame
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = ds_str(float(np.dot(pos, normal)), 4)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = nrow, ncol
        ds.PixelSpacing = [ds_str(v) for v in geo["pixel_spacing"]]
        ds.BitsAllocated = 16
        ds.BitsStored = mp["bits_stored"]
        ds.HighBit = mp["bits_stored"] - 1
        ds.PixelRepresentation = mp["pixel_representation"]
        if cbct:
            ds.WindowCenter, ds.WindowWidth = ds_str(mp["b"] + 40 * mp["a"], 1), \
                ds_str(400 * mp["a"], 1)
        else:
            ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.RescaleIntercept = ds_str(mp["intercept"])
        ds.RescaleSlope = ds_str(mp["slope"])
        ds.RescaleType = mp["rescale_type"]
        ds.PixelData = np.ascontiguousarray(ph.volume[k]).astype("<" + ph.volume.dtype.str[1:]) \
            .tobytes()
        ds.save_as(os.path.join(out, "dicom", fname), write_like_original=False)
        files.append({"file": "dicom/" + fname, "instance": int(inst[k]) + 1, "k": k,
                      "position": pos})
    return files, {"study": study, "series": series, "frame_of_reference": frame}


def parse_list(text, kind, n):
    vals = [kind(v) for v in text.replace("x", ",").split(",") if v.strip()]
    if len(vals) not in n:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {' or '.join(map(str, n))} values")
    return vals


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--size", choices=sorted(SIZES), default="low")
    ap.add_argument("--dims", type=lambda t: parse_list(t, int, (3,)),
                    help="C,R,S: columns, rows, slices (centred on the field of view)")
    ap.add_argument("--spacing", type=lambda t: parse_list(t, float, (1, 2, 3)),
                    help="S (isotropic), S,T (in-plane, slice) or C,R,T (column, row, slice) mm")
    ap.add_argument("--scale", choices=("hu", "cbct"), default="hu")
    ap.add_argument("--orientation", choices=sorted(ORIENTATIONS), default="axial")
    ap.add_argument("--order", choices=("inc", "dec", "random"), default="dec",
                    help="InstanceNumber order along the normal (file names are always shuffled)")
    ap.add_argument("--tilt", type=float, default=0.0, help="gantry tilt, degrees (axial only)")
    ap.add_argument("--pose", choices=("random", "none"), default="random")
    ap.add_argument("--no-holder", action="store_true")
    ap.add_argument("--no-noise", action="store_true")
    ap.add_argument("--pixel", choices=("unsigned", "signed"), default="unsigned",
                    help="hu only: unsigned 12-bit (stored = HU + 1024) or signed (stored = HU)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.tilt and a.orientation != "axial":
        ap.error("--tilt applies to --orientation axial only")
    t0 = time.perf_counter()
    ph = make_phantom(size=a.size, dims=a.dims, spacing=a.spacing, scale=a.scale,
                      orientation=a.orientation, seed=a.seed, tilt=a.tilt, pose=a.pose,
                      holder=not a.no_holder, noise=not a.no_noise,
                      pixel=a.pixel if a.scale == "hu" else "unsigned")
    t1 = time.perf_counter()
    opts = {k: v for k, v in vars(a).items() if k != "out"}
    os.makedirs(a.out, exist_ok=True)
    files, uids = write_series(a.out, ph, opts)
    write_npz(os.path.join(a.out, "truth.npz"), ph.masks)
    geo = {k: v for k, v in ph.geometry.items() if k != "positions"}
    manifest = {"generator": "tests/generators/make_head_phantom.py", "version": VERSION,
                "options": opts, "seed": a.seed, **geo, "order": a.order,
                "mask_index_order": "[k, j, i] = [slice sorted along the normal, row, column]",
                "value_scale": ph.mapping, "pose": ph.pose, "uid_root": UID_ROOT,
                "uids": uids, "stored_dtype": str(ph.volume.dtype),
                "mask_counts": {k: int(v.sum(dtype=np.int64)) for k, v in ph.masks.items()},
                "files": files}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    c, r, s = ph.geometry["dims"]
    print(f"head phantom {a.scale} {a.orientation} {c}x{r}x{s} -> {a.out} "
          f"(model {t1 - t0:.1f} s, total {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
