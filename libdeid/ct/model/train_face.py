#!/usr/bin/python3
"""Train libdeid's CT face-segmentation model (face.pt) on generated head phantoms.

  train_face.py data  --out /tmp/face_data.npz [--train-seeds 8] [--val-seeds 2]
  train_face.py train --data /tmp/face_data.npz --out face.pt [--epochs 40] [--json metrics.json]
  train_face.py eval  --model face.pt --json metrics.json [--bench]
                      (held-out phantoms, seeds 2001-2002, through libdeid's C pipeline via
                      bindings/python: share of face voxels replaced, brain voxels touched;
                      with --bench the seconds for a 512 x 512 x 300 volume on the CPU; set
                      DEID_LIBRARY to a libdeid.so built with libtorch)
  train_face.py fixture --out DIR [--seed 2001] [--size low]
                      (held-out phantoms for tests/unit/test_ct_model.c: per case
                      <size>_<scale>_<orientation>.{meta,i32,face,brain,canon}: geometry and
                      rescale as text, stored voxels int32 [k][j][i], face and brain masks
                      uint8, the canonical input float32 built here)

Everything comes from tests/generators/make_head_phantom.py: nothing is downloaded.

Canonical grid (must match libdeid/ct/model.c exactly):
  * values are mapped to "HU" (calibrated CT: the modality value; uncalibrated CBCT: the linear
    map that puts the air peak at -1000 and the soft-tissue peak at 30 -- the C side takes the
    peaks from the histogram, this script from the phantom's known mapping), then normalised
    to n = clamp((HU + 1000) / 2000, 0, 1.5): air 0, soft tissue ~0.5, bone ~1;
  * body = voxels with HU > -500; its bounding box in voxel indices, the 8 corners taken to
    patient coordinates (LPS, mm), their min/max give the box whose centre C is the grid's;
  * the grid is G = 64 points per axis, 4 mm apart, along L (x), P (y), S (z): point (a, b, c)
    is at C + 4 * ((a, b, c) - 31.5); flat index a + 64 * (b + 64 * c) (tensor [c][b][a]);
  * each point is mapped to continuous voxel indices u = M^-1 (p - origin), M's columns being
    spacing[d] * direction[d]; a point outside [0, dims[d] - 1] on any axis is 0 (air),
    otherwise the trilinear interpolation of n over the 8 voxels around it (upper index
    clamped to dims - 1).
The target is the phantom's "face" mask (nose, lips, eyes' front, chin: the facial soft
tissue) interpolated the same way, > 0.05 (a margin of about one grid point).
The model maps [1, 64, 64, 64] (the shim's c x h x w) to 64^3 face probabilities.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "generators"))

G = 64
STEP = 4.0
BODY_HU = -500.0
COMBOS = [(size, scale, ori) for size in ("low", "mid") for scale in ("hu", "cbct")
          for ori in ("axial", "coronal", "sagittal")]


def to_hu(ph):
    v = ph.volume.astype(np.float64)
    m = ph.mapping
    if m["hounsfield"]:
        return v * m["slope"] + m["intercept"]
    return (v - m["b"]) / m["a"]


def grid_points(geom, body):
    """Continuous voxel indices (3, G^3: i, j, k) of the canonical points, and the centre."""
    dims = geom["dims"]
    sp = np.array(geom["spacing"], np.float64)
    d = np.array(geom["direction"], np.float64).reshape(3, 3)   # rows: directions of i, j, k
    M = (d * sp[:, None]).T                                      # columns: spacing * direction
    origin = np.array(geom["origin"], np.float64)
    ks, js, is_ = np.nonzero(body)
    if len(is_) == 0:
        lo = np.zeros(3)
        hi = np.array(dims, np.float64) - 1
    else:
        lo = np.array([is_.min(), js.min(), ks.min()], np.float64)
        hi = np.array([is_.max(), js.max(), ks.max()], np.float64)
    corners = []
    for c in range(8):
        idx = np.array([hi[0] if c & 1 else lo[0], hi[1] if c & 2 else lo[1],
                        hi[2] if c & 4 else lo[2]])
        corners.append(origin + M @ idx)
    corners = np.array(corners)
    centre = 0.5 * (corners.min(0) + corners.max(0))
    g = (np.arange(G, dtype=np.float64) - 31.5) * STEP
    cz, cy, cx = np.meshgrid(g, g, g, indexing="ij")       # [c][b][a]
    P = np.stack([cx.ravel() + centre[0], cy.ravel() + centre[1], cz.ravel() + centre[2]])
    U = np.linalg.solve(M, P - origin[:, None])
    return U, centre


def trilinear(arr, U):
    """arr [k, j, i] float64 sampled at U (3, N): 0 outside [0, n - 1] on any axis."""
    nk, nj, ni = arr.shape
    n = np.array([ni, nj, nk], np.float64)[:, None]
    inside = np.all((U >= 0) & (U <= n - 1), axis=0)
    out = np.zeros(U.shape[1], np.float64)
    u = U[:, inside]
    f0 = np.floor(u)
    f = u - f0
    i0 = f0.astype(np.int64)
    i1 = np.minimum(i0 + 1, (n - 1).astype(np.int64))
    acc = np.zeros(u.shape[1], np.float64)
    for c in range(8):
        ii = i1[0] if c & 1 else i0[0]
        jj = i1[1] if c & 2 else i0[1]
        kk = i1[2] if c & 4 else i0[2]
        w = ((f[0] if c & 1 else 1 - f[0]) * (f[1] if c & 2 else 1 - f[1]) *
             (f[2] if c & 4 else 1 - f[2]))
        acc += w * arr[kk, jj, ii]
    out[inside] = acc
    return out


def canonical(ph):
    """(input float32 [G, G, G], target uint8 [G, G, G] or None, U, centre) of one phantom."""
    hu = to_hu(ph)
    norm = np.clip((hu + 1000.0) / 2000.0, 0.0, 1.5)
    U, centre = grid_points(ph.geometry, hu > BODY_HU)
    x = trilinear(norm, U).astype(np.float32).reshape(G, G, G)
    t = None
    if "face" in ph.masks:
        t = (trilinear(ph.masks["face"].astype(np.float64), U) > 0.05).astype(np.uint8)
        t = t.reshape(G, G, G)
    return x, t, U, centre


def phantom(size, scale, ori, seed):
    import make_head_phantom as hp
    return hp.make_phantom(size=size, scale=scale, orientation=ori, seed=seed)


def cmd_data(a):
    xs, ts, info = [], [], []
    t0 = time.time()
    for split, seeds in (("train", range(1, 1 + a.train_seeds)),
                         ("val", range(1001, 1001 + a.val_seeds))):
        for seed in seeds:
            for size, scale, ori in COMBOS:
                ph = phantom(size, scale, ori, seed)
                x, t, _, _ = canonical(ph)
                xs.append(x)
                ts.append(t)
                info.append((split, size, scale, ori, seed))
    np.savez_compressed(a.out, x=np.array(xs), t=np.array(ts),
                        info=np.array(json.dumps(info)))
    print(f"{len(xs)} phantoms in {time.time() - t0:.0f} s -> {a.out}")


def make_net():
    import torch
    import torch.nn as nn

    def block(i, o, stride=1):
        return nn.Sequential(nn.Conv3d(i, o, 3, stride, 1), nn.BatchNorm3d(o), nn.ReLU(inplace=True))

    class FaceNet(nn.Module):
        """A small 3-D U-Net: 64^3 -> 32^3 -> 16^3 -> back."""

        def __init__(self):
            super().__init__()
            self.e1 = nn.Sequential(nn.Conv3d(1, 4, 3, 1, 1), nn.ReLU(inplace=True))
            self.e2 = nn.Sequential(block(4, 16, 2), block(16, 16))
            self.e3 = nn.Sequential(block(16, 32, 2), block(32, 32), block(32, 32))
            self.d2 = block(32 + 16, 16)
            self.d1 = nn.Conv3d(16 + 4, 1, 3, 1, 1)

        def forward(self, x):
            x = x.reshape(-1, 1, G, G, G)
            a = self.e1(x)
            b = self.e2(a)
            c = self.e3(b)
            c = nn.functional.interpolate(c, scale_factor=2.0, mode="trilinear",
                                          align_corners=False)
            b = self.d2(torch.cat([c, b], 1))
            b = nn.functional.interpolate(b, scale_factor=2.0, mode="trilinear",
                                          align_corners=False)
            return self.d1(torch.cat([b, a], 1))

    return FaceNet()


def dice(p, t):
    inter = float((p & t).sum())
    s = float(p.sum() + t.sum())
    return 1.0 if s == 0 else 2 * inter / s


def cmd_train(a):
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    z = np.load(a.data)
    info = json.loads(str(z["info"]))
    X, T = z["x"], z["t"]
    tr = [n for n, r in enumerate(info) if r[0] == "train"]
    va = [n for n, r in enumerate(info) if r[0] == "val"]
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    t0 = time.time()
    steps = a.epochs * len(tr) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for step in range(steps):
        idx = rng.choice(tr, a.batch, replace=False)
        x = torch.from_numpy(X[idx]).unsqueeze(1)
        t = torch.from_numpy(T[idx].astype(np.float32)).unsqueeze(1)
        if rng.random() < 0.5:       # left-right mirror (a face is about symmetric)
            x, t = x.flip(4), t.flip(4)
        y = net(x)
        p = torch.sigmoid(y)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            y, t, pos_weight=torch.tensor(3.0))
        dl = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
        loss = bce + dl
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 20 == 0:
            print(f"step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f} s",
                  flush=True)
    train_s = time.time() - t0
    net.eval()
    res = {"train_seconds": round(train_s, 1), "steps": steps, "batch": a.batch,
           "train_phantoms": len(tr), "val_phantoms": len(va)}
    with torch.no_grad():
        for name, ids in (("train", tr), ("val", va)):
            ds = []
            for n in ids:
                y = net(torch.from_numpy(X[n:n + 1]))
                ds.append(dice(torch.sigmoid(y).numpy().reshape(G, G, G) > 0.5, T[n] > 0))
            res[f"{name}_dice_mean"] = round(float(np.mean(ds)), 4)
            res[f"{name}_dice_min"] = round(float(np.min(ds)), 4)
    print(json.dumps(res), flush=True)
    example = torch.from_numpy(X[:1])
    traced = torch.jit.freeze(torch.jit.trace(net, example))
    spec = {"input": {"shape": [1, G, G, G]}, "output": {"shape": [1, 1, G, G, G],
            "meaning": "face logits on the canonical grid (see train_face.py)"},
            "grid": {"points": G, "step_mm": STEP, "body_hu": BODY_HU}}
    torch.jit.save(traced, a.out, _extra_files={"deid_model.json": json.dumps(spec)})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


def cmd_fixture(a):
    os.makedirs(a.out, exist_ok=True)
    for scale in ("hu", "cbct"):
        for ori in ("axial", "coronal", "sagittal"):
            ph = phantom(a.size, scale, ori, a.seed)
            g, m = ph.geometry, ph.mapping
            base = os.path.join(a.out, f"{a.size}_{scale}_{ori}")
            with open(base + ".meta", "w") as f:
                f.write(" ".join(str(int(x)) for x in g["dims"]) + "\n")
                for key in ("spacing", "origin", "direction"):
                    f.write(" ".join(repr(float(x)) for x in g[key]) + "\n")
                f.write(f"{float(m['slope'])!r} {float(m['intercept'])!r} "
                        f"{1 if m['hounsfield'] else 0}\n")
            ph.volume.astype("<i4").tofile(base + ".i32")
            ph.masks["face"].astype(np.uint8).tofile(base + ".face")
            ph.masks["brain"].astype(np.uint8).tofile(base + ".brain")
            x, _, _, _ = canonical(ph)
            x.astype("<f4").tofile(base + ".canon")
    print(a.out)


def cmd_eval(a):
    sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "bindings", "python"))
    from deid import ct
    res = {}
    if os.path.exists(a.json):
        with open(a.json) as f:
            res = json.load(f)
    rows = []
    for seed in (2001, 2002):
        for size in ("low", "mid"):
            for scale in ("hu", "cbct"):
                for ori in ("axial", "coronal", "sagittal"):
                    ph = phantom(size, scale, ori, seed)
                    g = ph.geometry
                    d = g["direction"]
                    geom = ct.Geometry(tuple(g["spacing"]), tuple(g["origin"]),
                                       (tuple(d[0:3]), tuple(d[3:6]), tuple(d[6:9])))
                    m = ph.mapping
                    vol = ct.Volume.from_numpy(ph.volume.astype(np.int32), geom,
                                               slope=m["slope"], intercept=m["intercept"],
                                               hounsfield=bool(m["hounsfield"]))
                    r = vol.deface("model", model_path=a.model, mask=True, threads=a.threads)
                    face = ph.masks["face"] > 0
                    brain = ph.masks["brain"] > 0
                    row = {"case": f"{size}_{scale}_{ori}_{seed}",
                           "face_replaced_pct": round(100.0 * float((r.mask[face] > 0).mean()), 2),
                           "brain_voxels_touched": int((r.mask[brain] > 0).sum()),
                           "altered": int(r.altered), "seconds": round(r.seconds, 3)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    res["heldout_c_pipeline"] = rows
    res["heldout_face_replaced_pct_min"] = min(r["face_replaced_pct"] for r in rows)
    res["heldout_face_replaced_pct_mean"] = round(
        float(np.mean([r["face_replaced_pct"] for r in rows])), 2)
    res["heldout_brain_voxels_touched_total"] = sum(r["brain_voxels_touched"] for r in rows)
    if a.bench:
        ph = phantom_dims((512, 512, 300), (0.5, 0.5, 0.8))
        g = ph.geometry
        d = g["direction"]
        geom = ct.Geometry(tuple(g["spacing"]), tuple(g["origin"]),
                           (tuple(d[0:3]), tuple(d[3:6]), tuple(d[6:9])))
        vol = ct.Volume.from_numpy(ph.volume.astype(np.int32), geom, slope=1.0,
                                   intercept=-1024.0, hounsfield=True)
        t = time.time()
        r = vol.deface("model", model_path=a.model, threads=a.threads)
        res["bench_512x512x300_cpu_seconds"] = round(time.time() - t, 2)
        res["bench_threads"] = a.threads
        res["bench_face_replaced_pct"] = round(
            100.0 * float((ph.volume != vol.array)[ph.masks["face"] > 0].mean()), 2)
        print("bench", res["bench_512x512x300_cpu_seconds"], "s", r.message, flush=True)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")


def phantom_dims(dims, spacing):
    import make_head_phantom as hp
    return hp.make_phantom(size="high", dims=dims, spacing=spacing, scale="hu",
                           orientation="axial", seed=2003)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--out", required=True)
    d.add_argument("--train-seeds", type=int, default=8)
    d.add_argument("--val-seeds", type=int, default=2)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--json")
    e = sub.add_parser("eval")
    e.add_argument("--model", required=True)
    e.add_argument("--json", required=True)
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--bench", action="store_true")
    c = sub.add_parser("fixture")
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=2001)
    c.add_argument("--size", default="low")
    a = p.parse_args()
    {"data": cmd_data, "train": cmd_train, "fixture": cmd_fixture, "eval": cmd_eval}[a.cmd](a)


if __name__ == "__main__":
    main()
