#!/usr/bin/python3
"""Activation maximization benchmark: glassbox vs the same loop in PyTorch, same run, 2 threads.

    cmake --build BUILD -j2 --target bench_maximize
    flock /tmp/gb_cpu.lock /usr/bin/python3 bench/bench_maximize.py --build BUILD [--cache DIR]
        [--models vgg16,resnet18] [--steps 256] [--size 224] [--threads 2] [--target 1] [--json FILE]

For each model (the seeded torchvision exports of tests/scripts/export_torchvision.py in
--cache, default /tmp/tvcache) it times `steps` steps of the lucent-style loop (Olah et al.
2017; lucent's render_vis with param.image(fft=True, decorrelate=True)):

  glassbox  BUILD/bench/bench_maximize (gb_maximize, GB_VIS_PARAM_FOURIER) on MODEL.onnx;
  PyTorch   in a separate process, on the same weights (export_torchvision.build and
            make_interesting, eval()):
            a (1, 3, H, W//2+1) complex spectrum scaled by 1/max(f, 1/max(H, W)),
            torch.fft.irfftn(norm='ortho') / 4, lucid's colour decorrelation, sigmoid, one random
            affine transformation per step (F.affine_grid + F.grid_sample, bilinear, outside =
            0.5: jitter +-16 px, scale +-5%, rotation +-5 degrees), ImageNet normalization, the
            model, loss = -logit[target], backward, torch.optim.Adam(lr=0.05).

Both sides do the same work per step: one forward and one backward pass of the model at
H x W plus the parameterization and its adjoint. 4 untimed warm-up steps first on each side.
--torch-first runs PyTorch before glassbox (to see whether the order, i.e. the machine's load
at the time, matters). Ratio = glassbox / PyTorch (<= 1.0: glassbox no slower). FLOPs per
step: 2 x the forward FLOPs of glassbox's plan (forward, and backward to the input only:
no weight gradients on either side); fraction of the 169 GFLOP/s 2-thread SGEMM peak
(bench/gemm_peak.c). Results: bench/README_visualize.md.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = os.path.join(ROOT, "tests", "scripts")
PEAK = 169.0


def load1():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def parse_result(text):
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[2:])
    raise RuntimeError("no RESULT line in:\n" + text)


def torch_worker(a):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numpy as np
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, SCRIPTS)
    import export_torchvision as ex

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = ex.build(a.model)
    ex.make_interesting(model)   # the exact weights of the exported ONNX (bench_explain.py does the same)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    h = w = a.size
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[: w // 2 + 1]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = torch.tensor(1.0 / np.maximum(freqs, 1.0 / max(h, w)), dtype=torch.float32)[None, None, ..., None]
    svd_sqrt = np.asarray([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
    M = torch.tensor(svd_sqrt / np.max(np.linalg.norm(svd_sqrt, axis=0)))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    spec = (torch.randn(1, 3, h, w // 2 + 1, 2) * 0.01).requires_grad_()
    opt = torch.optim.Adam([spec], lr=0.05)
    gen = torch.Generator().manual_seed(a.seed)

    def step():
        opt.zero_grad()
        img = torch.fft.irfftn(torch.view_as_complex(scale * spec), s=(h, w), norm="ortho") / 4.0
        img = (img.permute(0, 2, 3, 1) @ M.T).permute(0, 3, 1, 2)
        img = torch.sigmoid(img)
        r = (torch.rand(4, generator=gen) * 2 - 1).tolist()
        th, s = r[0] * 5 * np.pi / 180, 1 + 0.05 * r[1]
        theta = torch.tensor([[[np.cos(th) / s, -np.sin(th) / s, r[2] * 16 * 2 / w],
                               [np.sin(th) / s, np.cos(th) / s, r[3] * 16 * 2 / h]]], dtype=torch.float32)
        grid = F.affine_grid(theta, list(img.shape), align_corners=False)
        img = F.grid_sample(img - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5
        loss = -model((img - mean) / std)[0, a.target]
        loss.backward()
        opt.step()
        return -float(loss)

    for _ in range(4):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        obj = step()
    ms = (time.perf_counter() - t0) * 1e3
    print(f"RESULT torch model={a.model} steps={a.steps} ms={ms:.1f} objective={obj:.4g} torch={torch.__version__}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--cache", default="/tmp/tvcache")
    ap.add_argument("--models", default="vgg16,resnet18")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--torch-first", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        torch_worker(a)
        return
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(a.threads))
    rows = []
    print(f"{'model':10s} {'steps':>5s} {'glassbox ms':>12s} {'torch ms':>10s} {'ratio':>6s} "
          f"{'GFLOP/step':>10s} {'gb %peak':>8s}  load")
    for name in a.models.split(","):
        onnx = os.path.join(a.cache, name + ".onnx")
        l0 = load1()
        gcmd = [os.path.join(a.build, "bench", "bench_maximize"), onnx, "--steps", str(a.steps), "--size",
                str(a.size), "--threads", str(a.threads), "--target", str(a.target), "--seed", str(a.seed)]
        tcmd = [sys.executable, __file__, "--worker", "--model", name, "--steps", str(a.steps), "--size",
                str(a.size), "--threads", str(a.threads), "--target", str(a.target), "--seed", str(a.seed)]
        out = {}
        for side in (("t", "g") if a.torch_first else ("g", "t")):
            cmd = gcmd if side == "g" else tcmd
            out[side] = parse_result(subprocess.run(cmd, env=env, capture_output=True, text=True,
                                                    check=True).stdout)
        g, t = out["g"], out["t"]
        l1 = load1()
        gms, tms = float(g["median_ms"]), float(t["ms"])
        gf = 2 * float(g["fwd_gflop"])
        pct = 100 * gf * a.steps / (gms / 1e3) / PEAK
        rows.append(dict(model=name, steps=a.steps, glassbox_ms=gms, torch_ms=tms, ratio=gms / tms,
                         gflop_per_step=gf, gb_peak_pct=pct, load_before=l0, load_after=l1,
                         gb_objective=g["objective"], torch_objective=t["objective"], torch=t["torch"]))
        print(f"{name:10s} {a.steps:5d} {gms:12.0f} {tms:10.0f} {gms / tms:6.2f} {gf:10.2f} {pct:7.1f}%  "
              f"{l0:.2f}->{l1:.2f}", flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
