#!/usr/bin/python3
"""Train, evaluate and export libdeid's ultrasound fan corner model (corners.pt).

The model takes what SlicerUltrasound's AnonymizeUltrasound corner models take, so that
`deid-us --model-path` accepts either:

  input   float32 tensor 1 x 1 x 240 x 320 (N x C x H x W), values 0..255: the clip's maximum
          over frames (per channel), converted to grey with PIL's 'L' formula
          (Y = (19595 R + 38470 G + 7471 B + 32768) >> 16), resized to 240 x 320 with
          bilinear interpolation at pixel centres (OpenCV INTER_LINEAR: source coordinate
          (i + 0.5) * n / out - 0.5, clamped at 0 and at n - 1), rounded to integers;
  output  float32, 8 values, read as the 4 x 2 array [upper-left, upper-right, lower-left,
          lower-right] of (x / image width, y / image height), x = column and y = row of the
          corner in the ORIGINAL image (SlicerUltrasound's corner convention; see
          docs/testing.md and tests/generators/us_geometry.py).

Network: a small Attention U-Net (encoder at 1/2 .. 1/16 of the input, attention-gated skip
connections, decoder to 1/4) whose 4 output heatmaps (60 x 80) become coordinates through
DSNT (softmax, then the expected position). It normalises its input (x / 255) itself.

Data: clips of tests/generators/make_us_clips.py (all probe kinds, mono/RGB, Doppler, ECG,
1 to 10 frames, 7 image sizes from 240x320 to 1080x1920), generated clip by clip, reduced to
the model input and deleted; the training set and the held-out validation set use different
generator seeds.

  train_corners.py data   --out D [--train-count 3000] [--val-count 300] [--jobs 2]
  train_corners.py train  --data D --ckpt C.pth [--steps N] [--max-minutes M]
  train_corners.py export --ckpt C.pth --out corners.pt [--test-vector DIR]
  train_corners.py eval   --data D --model corners.pt [--text] [--json metrics.json]
  train_corners.py predict --model corners.pt [--png DIR] FILE.dcm...   (corners in any clip)
  train_corners.py all    --work D            (the four steps above, the shipped recipe)

Deterministic for the seeds with one thread (torch.set_num_threads(1), the default here).
Needs /usr/bin/python3 with Debian's python3-torch, numpy, pydicom, PIL (and the generator's
DejaVu fonts). README.md beside this file has the recipe, times and metrics.
"""
import argparse
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "generators"))

IN_H, IN_W = 240, 320                 # model input (rows, cols)
HM_H, HM_W = 60, 80                   # heatmap size (1/4 of the input)
SIZES = "480x640,600x800,768x1024,720x1280,1050x1400,1080x1920,240x320"
TRAIN_SEED, VAL_SEED, TORCH_SEED = 1001, 2002, 7
GEOMETRY_KEYS = ("mask_type", "center_rows_px", "center_cols_px", "radius1", "radius2",
                 "angle1", "angle2", "rectangle_left", "rectangle_right", "rectangle_top",
                 "rectangle_bottom", "image_size_rows", "image_size_cols")


# ---- preprocessing (the C side, libdeid/shim/torch_loader.c, does exactly this) ------------

def luminance(a):
    """PIL 'L' of an 8-bit RGB array (ITU-R 601-2 luma, integer arithmetic)."""
    if a.ndim == 2:
        return a.astype(np.uint8)
    a = a.astype(np.uint32)
    return ((a[..., 0] * 19595 + a[..., 1] * 38470 + a[..., 2] * 7471 + 0x8000) >> 16).astype(
        np.uint8)


def _axis(n, out):
    s = (np.arange(out, dtype=np.float64) + 0.5) * (float(n) / out) - 0.5
    s = np.maximum(s, 0.0)
    i0 = np.floor(s).astype(np.int64)
    f = s - i0
    last = i0 >= n - 1
    i0 = np.minimum(i0, n - 1)
    f[last] = 0.0
    return i0, np.minimum(i0 + 1, n - 1), f


def resize_linear(img, out_h=IN_H, out_w=IN_W):
    """Bilinear resize at pixel centres (OpenCV INTER_LINEAR), rounded to 0..255 integers."""
    y0, y1, fy = _axis(img.shape[0], out_h)
    x0, x1, fx = _axis(img.shape[1], out_w)
    src = img.astype(np.float64)
    t = src[:, x0] * (1.0 - fx) + src[:, x1] * fx
    o = t[y0] * (1.0 - fy)[:, None] + t[y1] * fy[:, None]
    return np.clip(np.floor(o + 0.5), 0, 255).astype(np.uint8)


def model_input(frames):
    """frames: (F, H, W) or (F, H, W, 3) uint8 -> (240, 320) uint8 model input."""
    return resize_linear(luminance(frames.max(axis=0)))


# ---- data ----------------------------------------------------------------------------------

def _clip_job(job):
    import pydicom
    import make_us_clips as gen
    gen_args, index = job
    args = gen.parse_args(gen_args)
    gen.make_clip(args, index)
    base = os.path.join(args.out, f"us_{index:04d}")
    ds = pydicom.dcmread(base + ".dcm")
    px = ds.pixel_array
    if int(getattr(ds, "NumberOfFrames", 1) or 1) == 1:
        px = px[None]
    img = model_input(px)
    with open(base + ".json") as f:
        truth = json.load(f)
    for suffix in (".dcm", ".json", "_mask.png", "_text.png"):
        os.remove(base + suffix)
    geom = {k: truth[k] for k in GEOMETRY_KEYS if k in truth}
    return img, np.asarray(truth["corners_normalized"], np.float32), geom, truth["probe_kind"]


def make_set(path, count, seed, jobs):
    """Generate `count` clips with `seed`, keep only the model input and the truth."""
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="deid-corners-") as tmp:
        gen_args = ["--out", tmp, "--seed", str(seed), "--sizes", SIZES,
                    "--min-frames", "1", "--max-frames", "10"]
        jobs_list = [(gen_args, i) for i in range(count)]
        if jobs > 1:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                out = pool.map(_clip_job, jobs_list, chunksize=4)
        else:
            out = [_clip_job(j) for j in jobs_list]
    images = np.stack([o[0] for o in out])
    corners = np.stack([o[1] for o in out])
    meta = [{"geometry": o[2], "probe_kind": o[3]} for o in out]
    np.savez_compressed(path, images=images, corners=corners,
                        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                        seed=np.int64(seed))
    print(f"{path}: {count} clips, seed {seed}, {time.time() - t0:.0f} s", flush=True)


def load_set(path):
    z = np.load(path)
    return z["images"], z["corners"], json.loads(z["meta"].tobytes().decode())


# ---- model ---------------------------------------------------------------------------------

def build_model(width=16):
    import torch
    from torch import nn
    import torch.nn.functional as F

    def cbr(cin, cout, stride=1, dilation=1):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class AttentionGate(nn.Module):
        """Oktay et al. 2018: the coarse decoder signal g weighs the skip features x."""

        def __init__(self, g_ch, x_ch, inter):
            super().__init__()
            self.wg = nn.Sequential(nn.Conv2d(g_ch, inter, 1, bias=False), nn.BatchNorm2d(inter))
            self.wx = nn.Sequential(nn.Conv2d(x_ch, inter, 1, bias=False), nn.BatchNorm2d(inter))
            self.psi = nn.Sequential(nn.Conv2d(inter, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

        def forward(self, g, x):
            return x * self.psi(F.relu(self.wg(g) + self.wx(x)))

    class Up(nn.Module):
        def __init__(self, cin, cskip, cout):
            super().__init__()
            self.reduce = nn.Sequential(nn.Conv2d(cin, cskip, 1, bias=False),
                                        nn.BatchNorm2d(cskip), nn.ReLU(inplace=True))
            self.gate = AttentionGate(cskip, cskip, max(8, cskip // 2))
            self.conv = cbr(2 * cskip, cout)

        def forward(self, x, skip):
            g = self.reduce(F.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                                          align_corners=False))
            return self.conv(torch.cat([g, self.gate(g, skip)], 1))

    class CornerNet(nn.Module):
        """Attention U-Net + DSNT: (N, 1, 240, 320) in 0..255 -> (N, 4, 2) in [0, 1]."""

        def __init__(self, w):
            super().__init__()
            self.enc0 = nn.Sequential(cbr(1, w // 2), cbr(w // 2, w))              # 1/2
            self.enc1 = nn.Sequential(cbr(w, 2 * w, 2), cbr(2 * w, 2 * w))          # 1/4
            self.enc2 = nn.Sequential(cbr(2 * w, 4 * w, 2), cbr(4 * w, 4 * w))      # 1/8
            self.enc3 = nn.Sequential(cbr(4 * w, 8 * w, 2), cbr(8 * w, 8 * w, 1, 2),
                                      cbr(8 * w, 8 * w, 1, 4))                      # 1/16
            self.up2 = Up(8 * w, 4 * w, 4 * w)                                      # 1/8
            self.up1 = Up(4 * w, 2 * w, 2 * w)                                      # 1/4
            self.head = nn.Conv2d(2 * w, 4, 1)
            self.register_buffer("gx", (torch.arange(HM_W, dtype=torch.float32) + 0.5) / HM_W)
            self.register_buffer("gy", (torch.arange(HM_H, dtype=torch.float32) + 0.5) / HM_H)

        def heatmaps(self, x):
            x = F.avg_pool2d(x * (1.0 / 255.0), 2)
            e0 = self.enc0(x)
            e1 = self.enc1(e0)
            e2 = self.enc2(e1)
            e3 = self.enc3(e2)
            d = self.up1(self.up2(e3, e2), e1)
            logits = self.head(d)
            n, k, h, w = logits.shape
            return torch.softmax(logits.reshape(n, k, h * w), -1).reshape(n, k, h, w)

        def dsnt(self, p):
            x = (p.sum(2) * self.gx).sum(-1)
            y = (p.sum(3) * self.gy).sum(-1)
            return torch.stack([x, y], -1)

        def forward(self, x):
            return self.dsnt(self.heatmaps(x))

    return CornerNet(width)


# ---- geometry and metrics -----------------------------------------------------------------

def corners_to_geometry(c, rows, cols):
    """SlicerUltrasound's 4-corner rule (as deid_fan_from_corners): c = [UL, UR, LL, LR] (x, y)
    pixels -> scan area dict (us_geometry layout)."""
    import us_geometry as geo
    (ulx, uly), (urx, ury), (llx, lly), (lrx, lry) = [tuple(map(float, p)) for p in c]
    left_v = abs(ulx - llx) < round(0.1 * abs(uly - lly))
    right_v = abs(urx - lrx) < round(0.1 * abs(ury - lry))
    if left_v and right_v:
        return geo.rectangle(round((ulx + llx) / 2), round((urx + lrx) / 2),
                             round((uly + ury) / 2), round((lly + lry) / 2), rows, cols)
    # intersection of the left line (UL -> LL) and the right line (UR -> LR)
    d1x, d1y = llx - ulx, lly - uly
    d2x, d2y = lrx - urx, lry - ury
    den = d1x * d2y - d1y * d2x
    if abs(den) < 1e-9:
        return None
    t = ((urx - ulx) * d2y - (ury - uly) * d2x) / den
    ax, ay = ulx + t * d1x, uly + t * d1y
    r1 = (math.hypot(ulx - ax, uly - ay) + math.hypot(urx - ax, ury - ay)) / 2
    r2 = (math.hypot(llx - ax, lly - ay) + math.hypot(lrx - ax, lry - ay)) / 2
    a1 = math.degrees(math.atan2(lly - ay, llx - ax))
    a2 = math.degrees(math.atan2(lry - ay, lrx - ax))
    return geo.fan(round(ax), round(ay), round(r1), round(r2), a1, a2, rows, cols)


def iou(g_true, g_pred):
    import us_geometry as geo
    m = geo.rasterize(g_true)
    if g_pred is None:
        return 0.0
    p = geo.rasterize(g_pred)
    union = np.logical_or(m, p).sum()
    return float(np.logical_and(m, p).sum() / union) if union else 1.0


def predict(model, images, batch=32):
    import torch
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).float()[:, None]
            out.append(model(x).numpy())
    return np.concatenate(out).reshape(-1, 4, 2)


def metrics(pred, corners, meta, with_iou=True):
    """Corner errors in original-image pixels and mask IoU per clip, summarised."""
    sizes = np.array([[m["geometry"]["image_size_cols"], m["geometry"]["image_size_rows"]]
                      for m in meta], np.float64)
    err = np.linalg.norm((pred - corners) * sizes[:, None, :], axis=-1)       # (N, 4) px
    err_in = np.linalg.norm((pred - corners) * np.array([IN_W, IN_H]), axis=-1)
    res = {"clips": int(len(pred)),
           "corner_px_mean": float(err.mean()), "corner_px_median": float(np.median(err)),
           "corner_px_p95": float(np.percentile(err, 95)), "corner_px_max": float(err.max()),
           "corner_px_at_240x320_mean": float(err_in.mean())}
    if with_iou:
        ious, kinds = [], {}
        for p, m in zip(pred, meta):
            g = m["geometry"]
            rows, cols = g["image_size_rows"], g["image_size_cols"]
            gp = corners_to_geometry(p * np.array([cols, rows]), rows, cols)
            v = iou(g, gp)
            ious.append(v)
            kinds.setdefault(m["probe_kind"], []).append(v)
        ious = np.array(ious)
        res.update({"iou_mean": float(ious.mean()), "iou_min": float(ious.min()),
                    "iou_below_0.97": int((ious < 0.97).sum()),
                    "iou_mean_by_kind": {k: float(np.mean(v)) for k, v in sorted(kinds.items())}})
    return res


# ---- training ------------------------------------------------------------------------------

def augment(x, y, sizes, gen):
    """Flip left-right, zoom out/shift, gain/gamma/noise. x (N,1,H,W) 0..255, y (N,4,2),
    sizes (N,2) = original (width, height): a normalised corner x = column / width maps to the
    grid coordinate u = 2 x - 1 + 1 / width of the resized image (pixel centres)."""
    import torch
    import torch.nn.functional as F
    n = x.shape[0]
    y = y.clone()
    half = (1.0 / sizes)[:, None, :]                       # (N, 1, 2)
    flip = torch.rand(n, generator=gen) < 0.5
    if flip.any():
        x[flip] = x[flip].flip(-1)
        yf = y[flip][:, [1, 0, 3, 2]]
        yf[..., 0] = 1.0 - yf[..., 0] - half[flip][..., 0]
        y[flip] = yf
    zoom = torch.rand(n, generator=gen) < 0.4
    if zoom.any():
        k = int(zoom.sum())
        a = 1.0 + 0.35 * torch.rand(k, generator=gen)
        t = (torch.rand(k, 2, generator=gen) * 2 - 1) * (a - 1)[:, None]
        theta = torch.zeros(k, 2, 3)
        theta[:, 0, 0] = a
        theta[:, 1, 1] = a
        theta[:, :, 2] = t
        grid = F.affine_grid(theta, (k, 1, IN_H, IN_W), align_corners=False)
        x[zoom] = F.grid_sample(x[zoom], grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)
        u = 2 * y[zoom] - 1 + half[zoom]                   # input grid coordinates
        u = (u - t[:, None, :]) / a[:, None, None]         # output pixel sampling them
        y[zoom] = (u + 1 - half[zoom]) / 2
    gain = 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=gen)
    gamma = 0.7 + 0.7 * torch.rand(n, 1, 1, 1, generator=gen)
    x = 255.0 * (x / 255.0).clamp(0, 1) ** gamma * gain
    sigma = 6.0 * torch.rand(n, 1, 1, 1, generator=gen)
    x = x + sigma * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 255).round(), y


def js_regulariser(p, y, sigma=1.0):
    """Jensen-Shannon divergence between each heatmap and a Gaussian at its target (DSNT)."""
    import torch
    gx = (torch.arange(HM_W, dtype=torch.float32) + 0.5)
    gy = (torch.arange(HM_H, dtype=torch.float32) + 0.5)
    cx = y[..., 0:1] * HM_W
    cy = y[..., 1:2] * HM_H
    q = (torch.exp(-((gy[None, None, :] - cy) ** 2) / (2 * sigma ** 2))[..., :, None]
         * torch.exp(-((gx[None, None, :] - cx) ** 2) / (2 * sigma ** 2))[..., None, :])
    q = q / q.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    m = 0.5 * (p + q)
    eps = 1e-12

    def kl(a, b):
        return (a * (torch.log(a + eps) - torch.log(b + eps))).sum(dim=(-2, -1))
    return (0.5 * kl(p, m) + 0.5 * kl(q, m)).mean()


def train(args):
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(TORCH_SEED)
    gen = torch.Generator().manual_seed(TORCH_SEED)
    images, corners, meta = load_set(os.path.join(args.data, "train.npz"))
    v_images, v_corners, v_meta = load_set(os.path.join(args.data, "val.npz"))
    sizes = torch.tensor([[m["geometry"]["image_size_cols"], m["geometry"]["image_size_rows"]]
                          for m in meta], dtype=torch.float32)
    x_all = torch.from_numpy(images)
    y_all = torch.from_numpy(corners)
    model = build_model(args.width)
    nparam = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = max(1, min(100, args.steps // 20))

    def lr_factor(i):   # linear warm-up, then cosine decay to 2% of the peak
        if i < warm:
            return (i + 1) / warm
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (i - warm) / max(1, args.steps - warm)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    scale = torch.tensor([IN_W, IN_H], dtype=torch.float32)
    n = len(images)
    order = torch.randperm(n, generator=gen)
    pos, t0, step, log = 0, time.time(), 0, []
    print(f"train: {n} images, val {len(v_images)}, {nparam} parameters, "
          f"{args.steps} steps of {args.batch}, {args.threads} thread(s)", flush=True)
    model.train()
    while step < args.steps:
        if pos + args.batch > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + args.batch]
        pos += args.batch
        x, y = augment(x_all[idx].float()[:, None], y_all[idx], sizes[idx], gen)
        p = model.heatmaps(x)
        pred = model.dsnt(p)
        dist = ((pred - y) * scale).norm(dim=-1)          # px at 240 x 320
        loss = dist.mean() / 4.0 + js_regulariser(p, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        elapsed = time.time() - t0
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.4f} px {dist.mean().item():.2f} "
                  f"lr {sched.get_last_lr()[0]:.2e} {elapsed / 60:.1f} min", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            k = min(len(v_images), 150 if step < args.steps else len(v_images))
            res = metrics(predict(model, v_images[:k]), v_corners[:k], v_meta[:k], False)
            model.train()
            res.update({"step": step, "minutes": elapsed / 60})
            log.append(res)
            print("val", json.dumps(res), flush=True)
            torch.save({"model": model.state_dict(), "width": args.width, "step": step,
                        "log": log, "args": vars(args)}, args.ckpt)
        if elapsed > args.max_minutes * 60:
            print(f"stopping at step {step}: time budget of {args.max_minutes} min", flush=True)
            torch.save({"model": model.state_dict(), "width": args.width, "step": step,
                        "log": log, "args": vars(args)}, args.ckpt)
            break
    print(f"trained {step} steps in {(time.time() - t0) / 60:.1f} min", flush=True)


# ---- export and evaluation -----------------------------------------------------------------

MODEL_INFO = {
    "name": "libdeid ultrasound fan corners",
    "input": {"shape": [1, 1, IN_H, IN_W], "dtype": "float32", "range": [0, 255],
              "content": "max over frames, PIL 'L' grey, bilinear (INTER_LINEAR) resize"},
    "output": {"shape": [1, 4, 2], "order": ["upper_left", "upper_right", "lower_left",
                                             "lower_right"],
               "coordinates": "x = column / width, y = row / height of the original image"},
}


def export(args):
    import torch
    torch.set_num_threads(args.threads)
    ck = torch.load(args.ckpt, map_location="cpu")
    model = build_model(ck["width"])
    model.load_state_dict(ck["model"])
    model.eval()
    example = torch.zeros(1, 1, IN_H, IN_W)
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(model, example))
    info = dict(MODEL_INFO, step=ck["step"], train_seed=TRAIN_SEED, val_seed=VAL_SEED,
                torch_seed=TORCH_SEED)
    torch.jit.save(traced, args.out, _extra_files={"deid_model.json": json.dumps(info)})
    print(f"{args.out}: {os.path.getsize(args.out)} bytes", flush=True)
    if args.test_vector:
        # One validation clip's model input and the exported model's output: the C test
        # (tests/unit/test_torch_model.c) runs the same input through the shim.
        v_images, v_corners, v_meta = load_set(os.path.join(args.data, "val.npz"))
        i = args.test_index
        reloaded = torch.jit.load(args.out)
        with torch.no_grad():
            out = reloaded(torch.from_numpy(v_images[i:i + 1]).float()[:, None]).numpy()
        os.makedirs(args.test_vector, exist_ok=True)
        v_images[i].tofile(os.path.join(args.test_vector, "test_input_240x320.u8"))
        g = v_meta[i]["geometry"]
        with open(os.path.join(args.test_vector, "test_expected.txt"), "w") as f:
            f.write("# validation clip %d (seed %d): %s %dx%d; rows: model output, truth "
                    "(UL UR LL LR, x y normalised)\n" % (i, VAL_SEED, v_meta[i]["probe_kind"],
                                                         g["image_size_rows"],
                                                         g["image_size_cols"]))
            f.write(" ".join("%.6f" % v for v in out.reshape(-1)) + "\n")
            f.write(" ".join("%.6f" % v for v in v_corners[i].reshape(-1)) + "\n")
            f.write("%d %d\n" % (g["image_size_rows"], g["image_size_cols"]))
        print(f"test vector: clip {i}, output {out.reshape(-1).round(4).tolist()}", flush=True)


def _text_job(job):
    """Regenerate validation clip `index` and count its burned-in text pixels that the scan
    area drawn from the predicted corners would keep (they must all be masked)."""
    import make_us_clips as gen
    import us_geometry as geo
    from PIL import Image
    gen_args, index, geom = job
    args = gen.parse_args(gen_args)
    gen.make_clip(args, index)
    base = os.path.join(args.out, f"us_{index:04d}")
    text = np.asarray(Image.open(base + "_text.png")) > 0
    for suffix in (".dcm", ".json", "_mask.png", "_text.png"):
        os.remove(base + suffix)
    return int((text & geo.rasterize(geom)).sum()) if geom else 0


def text_survivors(pred, meta, seed, jobs):
    geoms = []
    for p, m in zip(pred, meta):
        g = m["geometry"]
        rows, cols = g["image_size_rows"], g["image_size_cols"]
        geoms.append(corners_to_geometry(p * np.array([cols, rows]), rows, cols))
    with tempfile.TemporaryDirectory(prefix="deid-corners-") as tmp:
        gen_args = ["--out", tmp, "--seed", str(seed), "--sizes", SIZES,
                    "--min-frames", "1", "--max-frames", "10"]
        work = [(gen_args, i, g) for i, g in enumerate(geoms)]
        if jobs > 1:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                counts = pool.map(_text_job, work, chunksize=4)
        else:
            counts = [_text_job(w) for w in work]
    return {"text_pixels_kept": int(sum(counts)), "clips_with_text_kept": int(sum(c > 0 for c in counts))}


def evaluate(args):
    import torch
    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.model)
    model.eval()
    images, corners, meta = load_set(os.path.join(args.data, "val.npz"))
    x = torch.from_numpy(images[:1]).float()[:, None]
    with torch.no_grad():
        for _ in range(3):
            model(x)
        t0 = time.perf_counter()
        reps = 20
        for _ in range(reps):
            model(x)
        ms = (time.perf_counter() - t0) / reps * 1000
    pred = predict(model, images)
    res = metrics(pred, corners, meta)
    if args.text:
        res.update(text_survivors(pred, meta, VAL_SEED, args.jobs))
    res.update({"inference_ms_python_1_thread": ms, "model_bytes": os.path.getsize(args.model),
                "val_seed": VAL_SEED})
    print(json.dumps(res, indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


def predict_files(args):
    """Corners and scan area the model finds in DICOM files (for a look at real clips)."""
    import pydicom
    import torch
    from PIL import Image, ImageDraw
    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.model)
    model.eval()
    for path in args.files:
        try:
            ds = pydicom.dcmread(path)
            px = ds.pixel_array
            if int(getattr(ds, "NumberOfFrames", 1) or 1) == 1:
                px = px[None]
            pm = str(getattr(ds, "PhotometricInterpretation", ""))
            if pm in ("YBR_FULL", "YBR_FULL_422"):   # J2K/JPEG decoders give RGB already
                px = pydicom.pixel_data_handlers.util.convert_color_space(px, pm, "RGB",
                                                                          per_frame=True)
            elif pm == "PALETTE COLOR":
                px = pydicom.pixel_data_handlers.util.apply_color_lut(px, ds)
            if px.dtype != np.uint8:
                px = (px.astype(np.float64) * 255.0 / max(1, float(px.max()))).astype(np.uint8)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"{path}: cannot read pixels: {e}")
            continue
        rows, cols = px.shape[1], px.shape[2]
        with torch.no_grad():
            out = model(torch.from_numpy(model_input(px)).float()[None, None]).numpy()
        c = out.reshape(4, 2) * np.array([cols, rows])
        g = corners_to_geometry(c, rows, cols)
        print(f"{os.path.basename(path)} {rows}x{cols}: corners (x, y) px "
              f"{np.round(c, 1).tolist()}\n  {json.dumps(g)}")
        if args.png:
            import us_geometry as geo
            os.makedirs(args.png, exist_ok=True)
            base = Image.fromarray(luminance(px.max(axis=0))).convert("RGB")
            if g is not None:
                edge = geo.rasterize(g)
                inner = np.zeros_like(edge)
                inner[1:-1, 1:-1] = (edge[1:-1, 1:-1] & edge[:-2, 1:-1] & edge[2:, 1:-1]
                                     & edge[1:-1, :-2] & edge[1:-1, 2:])
                a = np.asarray(base).copy()
                a[edge & ~inner] = (255, 0, 0)
                base = Image.fromarray(a)
            d = ImageDraw.Draw(base)
            for x, y in c:
                d.ellipse([x - 4, y - 4, x + 4, y + 4], outline=(0, 255, 0), width=2)
            base.save(os.path.join(args.png, os.path.basename(path) + ".png"))


# ---- command line --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--out", required=True)
    d.add_argument("--train-count", type=int, default=3000)
    d.add_argument("--val-count", type=int, default=300)
    d.add_argument("--jobs", type=int, default=2)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--ckpt", required=True)
    e = sub.add_parser("export")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--data", help="dataset folder (for --test-vector)")
    e.add_argument("--test-vector", help="folder for test_input_240x320.u8 + test_expected.txt")
    e.add_argument("--test-index", type=int, default=0)
    v = sub.add_parser("eval")
    v.add_argument("--data", required=True)
    v.add_argument("--model", required=True)
    v.add_argument("--json")
    v.add_argument("--text", action="store_true",
                   help="also regenerate the validation clips and count the burned-in text "
                        "pixels inside the predicted scan areas (must be 0)")
    v.add_argument("--jobs", type=int, default=2)
    r = sub.add_parser("predict")
    r.add_argument("--model", required=True)
    r.add_argument("--png", help="folder for max-over-frames images with the corners drawn")
    r.add_argument("files", nargs="+")
    a = sub.add_parser("all")
    a.add_argument("--work", required=True)
    a.add_argument("--train-count", type=int, default=3000)
    a.add_argument("--val-count", type=int, default=300)
    a.add_argument("--jobs", type=int, default=2)
    for p in (t, a):
        p.add_argument("--steps", type=int, default=3000)
        p.add_argument("--batch", type=int, default=16)
        p.add_argument("--lr", type=float, default=2e-3)
        p.add_argument("--width", type=int, default=16)
        p.add_argument("--eval-every", type=int, default=500)
        p.add_argument("--max-minutes", type=float, default=40.0)
    for p in (t, e, v, r, a):
        p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.cmd == "data":
        os.makedirs(args.out, exist_ok=True)
        make_set(os.path.join(args.out, "train.npz"), args.train_count, TRAIN_SEED, args.jobs)
        make_set(os.path.join(args.out, "val.npz"), args.val_count, VAL_SEED, args.jobs)
    elif args.cmd == "train":
        train(args)
    elif args.cmd == "export":
        export(args)
    elif args.cmd == "eval":
        evaluate(args)
    elif args.cmd == "predict":
        predict_files(args)
    else:
        w = args.work
        os.makedirs(w, exist_ok=True)
        if not os.path.exists(os.path.join(w, "val.npz")):
            main(["data", "--out", w, "--train-count", str(args.train_count),
                  "--val-count", str(args.val_count), "--jobs", str(args.jobs)])
        main(["train", "--data", w, "--ckpt", os.path.join(w, "corners.pth"),
              "--steps", str(args.steps), "--batch", str(args.batch), "--lr", str(args.lr),
              "--width", str(args.width), "--eval-every", str(args.eval_every),
              "--max-minutes", str(args.max_minutes), "--threads", str(args.threads)])
        main(["export", "--ckpt", os.path.join(w, "corners.pth"),
              "--out", os.path.join(HERE, "corners.pt"), "--data", w,
              "--test-vector", HERE, "--threads", str(args.threads)])
        main(["eval", "--data", w, "--model", os.path.join(HERE, "corners.pt"), "--text",
              "--jobs", str(args.jobs), "--json", os.path.join(HERE, "metrics.json"),
              "--threads", str(args.threads)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
