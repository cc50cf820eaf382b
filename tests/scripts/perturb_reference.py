#!/usr/bin/python3
"""Reference perturbation attributions on torchvision architectures, for tests/models/test_perturb_tv.c.

    /usr/bin/python3 tests/scripts/perturb_reference.py --cache DIR [--models resnet18] [--force]
    PYTHONPATH=/tmp/captum_src:/tmp/captum_stubs \\
        /usr/bin/python3 tests/scripts/perturb_reference.py --cache DIR --verify-with-captum

A re-statement of Captum's Occlusion, FeatureAblation and ShapleyValueSampling
in a few lines of torch (forward passes only), run in float64 on the seeded
model that export_torchvision.py exported into DIR — rebuilt, with the
exported Conv weights and folded BatchNorms, by explain_reference.Net, so it
computes the function glassbox runs. The first item of <model>.input.npy is
explained for its top-1 class with the settings the C test gives glassbox
(coarser than the benchmark's 16 / 8, to keep CI short):

  occlusion          window 3 x 32 x 32 (all channels), strides 16, baseline 0:
                     ceil((224 - 32) / 16) + 1 = 13 positions per side, 169 rows;
                     per pixel the mean over the windows covering it of f(x) - f(x_occluded)
  feature_ablation   a grid of 32 x 32 cells (49 features), baseline 0: f(x) - f(x, feature off)
  shapley_sampling   a grid of 56 x 56 cells (16 features), zero baseline, 2 permutations
                     drawn here (seed 41) and saved: the mean over permutations of the
                     change of f as each feature is switched from x' to x in turn

Rows are built in float32 exactly as glassbox builds them (x with the region
replaced by the baseline) and evaluated in float64.

Writes into DIR, per model M:
  M.perturb.occlusion.npy, M.perturb.feature_ablation.npy, M.perturb.shapley_sampling.npy
                       float32 (1, 3, 224, 224)
  M.perturb.shapley_perms.npy   int64 (2, 16) the permutations
  M.perturb.meta.txt   version, target, and the reference's own float32 uncertainty per
                       method (the same computation with the float32 model, relative L2)
  M.perturb.meta.json  the same, timings, and with --verify-with-captum the relative L2
                       between this re-statement and Captum 0.8 itself (Occlusion,
                       FeatureAblation, ShapleyValueSampling fed the same permutations),
                       both in float64.
A model is skipped when its files exist with the same VERSION (--force recomputes).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import explain_reference as er  # noqa: E402  (Net: the exported model rebuilt in torch)

VERSION = 1
WINDOW, STRIDE = 32, 16
FA_CELL = 32
SV_CELL, SV_PERMS, SV_SEED = 56, 2, 41
METHODS = ["occlusion", "feature_ablation", "shapley_sampling"]


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


class Evaluator:
    """f(rows) for the target logit, chunked, in a dtype."""

    def __init__(self, model, target, dtype, chunk=8):
        self.m, self.t, self.dtype, self.chunk, self.rows = model, target, dtype, chunk, 0

    @torch.no_grad()
    def __call__(self, rows):
        out = []
        for r0 in range(0, len(rows), self.chunk):
            x = torch.from_numpy(np.ascontiguousarray(rows[r0:r0 + self.chunk])).to(self.dtype)
            out.append(self.m(x)[:, self.t].double().numpy())
        self.rows += len(rows)
        return np.concatenate(out)


def grid(H, W, cell):
    hh, ww = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return (hh // cell) * ((W + cell - 1) // cell) + ww // cell


def occlusion(f, x, win, stride, base=0.0):
    """Captum's Occlusion with a (C, win, win) window and strides (C, stride, stride)."""
    _, C, H, W = x.shape
    nh, nw = -(-(H - win) // stride) + 1, -(-(W - win) // stride) + 1
    fx = f(x)[0]
    acc, cnt = np.zeros((H, W)), np.zeros((H, W))
    boxes = [(i * stride, min(i * stride + win, H), j * stride, min(j * stride + win, W))
             for i in range(nh) for j in range(nw)]
    for b0 in range(0, len(boxes), 16):
        rows = np.repeat(x, len(boxes[b0:b0 + 16]), axis=0).astype(np.float32)
        for k, (h0, h1, w0, w1) in enumerate(boxes[b0:b0 + 16]):
            rows[k, :, h0:h1, w0:w1] = base
        v = f(rows)
        for k, (h0, h1, w0, w1) in enumerate(boxes[b0:b0 + 16]):
            acc[h0:h1, w0:w1] += fx - v[k]
            cnt[h0:h1, w0:w1] += 1
    return np.broadcast_to(acc / cnt, x.shape).astype(np.float32)


def feature_ablation(f, x, mask, base=0.0):
    fx = f(x)[0]
    M = mask.max() + 1
    rows = np.repeat(x, M, axis=0).astype(np.float32)
    for m in range(M):
        rows[m][:, mask == m] = base
    v = f(rows)
    phi = fx - v
    return np.broadcast_to(phi[mask], x.shape).astype(np.float32)


def shapley_sampling(f, x, mask, perms, base=0.0):
    M = mask.max() + 1
    fb = f(np.full_like(x, base))[0]
    phi = np.zeros(M)
    for p in perms:
        rows = np.empty((M,) + x.shape[1:], np.float32)
        cur = np.full_like(x[0], base)
        for j, m in enumerate(p):
            cur[:, mask == m] = x[0][:, mask == m]
            rows[j] = cur
        v = f(rows)
        prev = fb
        for j, m in enumerate(p):
            phi[m] += v[j] - prev
            prev = v[j]
    phi /= len(perms)
    return np.broadcast_to(phi[mask], x.shape).astype(np.float32)


def compute(f, x, fa_mask, sv_mask, perms):
    return {"occlusion": occlusion(f, x, WINDOW, STRIDE),
            "feature_ablation": feature_ablation(f, x, fa_mask),
            "shapley_sampling": shapley_sampling(f, x, sv_mask, perms)}


def verify_with_captum(model, x, target, fa_mask, sv_mask, perms, ref):
    from captum.attr import FeatureAblation, Occlusion, ShapleyValueSampling
    xt = torch.from_numpy(x).double()
    out = {}
    with torch.no_grad():
        a = Occlusion(model).attribute(xt, sliding_window_shapes=(3, WINDOW, WINDOW), strides=(3, STRIDE, STRIDE),
                                       baselines=0.0, target=target, perturbations_per_eval=16)
        out["occlusion"] = rel(a.numpy(), ref["occlusion"])
        a = FeatureAblation(model).attribute(xt, feature_mask=torch.from_numpy(fa_mask)[None, None], target=target,
                                             perturbations_per_eval=16)
        out["feature_ablation"] = rel(a.numpy(), ref["feature_ablation"])
        sv = ShapleyValueSampling(model)
        sv.permutation_generator = lambda n, s: iter([list(map(int, p)) for p in perms])
        a = sv.attribute(xt, feature_mask=torch.from_numpy(sv_mask)[None, None], n_samples=len(perms), target=target,
                         perturbations_per_eval=16)
        out["shapley_sampling"] = rel(a.numpy(), ref["shapley_sampling"])
    return out


def run_model(cache, name, verify):
    t0 = time.time()
    net = er.Net(name, os.path.join(cache, f"{name}.onnx"))
    x = np.load(os.path.join(cache, f"{name}.input.npy"))[:1].astype(np.float32)
    with torch.no_grad():
        target = int(net.m64(torch.from_numpy(x).double())[0].argmax())
    H, W = x.shape[2:]
    fa_mask, sv_mask = grid(H, W, FA_CELL), grid(H, W, SV_CELL)
    rng = np.random.default_rng(SV_SEED)
    perms = np.stack([rng.permutation(sv_mask.max() + 1) for _ in range(SV_PERMS)]).astype(np.int64)
    f64 = Evaluator(net.m64, target, torch.float64)
    ref = compute(f64, x, fa_mask, sv_mask, perms)
    t_ref = time.time() - t0
    t1 = time.time()
    r32 = compute(Evaluator(net.m32, target, torch.float32), x, fa_mask, sv_mask, perms)
    u32 = {m: rel(r32[m], ref[m]) for m in METHODS}
    t_32 = time.time() - t1

    def save(key, a, dtype=np.float32):
        np.save(os.path.join(cache, f"{name}.perturb.{key}.npy"), np.ascontiguousarray(np.asarray(a, dtype)))
    for m in METHODS:
        save(m, ref[m])
    save("shapley_perms", perms, np.int64)
    meta = {"version": VERSION, "model": name, "target": target, "rows": f64.rows, "fp32_uncertainty": u32,
            "window": WINDOW, "stride": STRIDE, "fa_cell": FA_CELL, "sv_cell": SV_CELL, "sv_perms": SV_PERMS,
            "seconds": {"float64": round(t_ref, 1), "float32": round(t_32, 1)}, "torch": torch.__version__}
    if verify:
        t1 = time.time()
        meta["captum_vs_reference"] = verify_with_captum(net.m64, x, target, fa_mask, sv_mask, perms, ref)
        meta["seconds"]["captum"] = round(time.time() - t1, 1)
    with open(os.path.join(cache, f"{name}.perturb.meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    with open(os.path.join(cache, f"{name}.perturb.meta.txt"), "w") as fh:
        fh.write(f"version {VERSION}\ntarget {target}\n")
        for m in METHODS:
            fh.write(f"method {m} {u32[m]:.6e}\n")
    return meta


def is_cached(cache, name):
    p = os.path.join(cache, f"{name}.perturb.meta.txt")
    if not os.path.exists(p) or not all(os.path.exists(os.path.join(cache, f"{name}.perturb.{m}.npy"))
                                        for m in METHODS + ["shapley_perms"]):
        return False
    with open(p) as fh:
        return fh.readline().split() == ["version", str(VERSION)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--models", default="resnet18")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--verify-with-captum", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        if not args.force and not args.verify_with_captum and is_cached(args.cache, name):
            print(f"{name}: cached")
            continue
        meta = run_model(args.cache, name, args.verify_with_captum)
        print(json.dumps(meta))
        if args.verify_with_captum:
            worst = max(meta["captum_vs_reference"].values())
            if worst > 1e-6:   # Captum accumulates its attributions in float32
                sys.exit(f"{name}: the re-statement differs from Captum by {worst:.2e}")


if __name__ == "__main__":
    main()
