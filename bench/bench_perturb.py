#!/usr/bin/python3
"""Perturbation methods: glassbox vs Captum, same run, 2 threads each, separate processes.

    cmake --build BUILD -j2 --target bench_perturb
    PYTHONPATH=/tmp/captum_src:/tmp/captum_stubs /usr/bin/python3 bench/bench_perturb.py \\
        --build BUILD --cache /tmp/tvcache [--cases occlusion:resnet18,occlusion:vgg16,lime:resnet18]
        [--window 16] [--stride 8] [--samples 1000] [--batch 0] [--ppe 16] [--threads 2] [--runs 1] [--json FILE]

Cases (the issue's benchmark):
  occlusion:M  gb_explain "occlusion", window 16 x 16 over all channels, stride 8
               (27 x 27 = 729 rows), zero baseline, target = top-1 — in glassbox's
               default mode (incremental inference where its FLOP model says it
               pays) and with full passes only (--incremental full) — against
               Captum's Occlusion(sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8),
               baselines=0, perturbations_per_eval=--ppe) under torch.no_grad().
  lime:M       gb_explain "lime", 1000 samples, a grid of 32 x 32 cells (49 features)
               as the feature mask, Lasso(alpha=0.01) surrogate — against Captum's
               Lime() (its defaults: SkLearnLasso(alpha=0.01), exponential kernel on
               cosine distance) with the same mask, n_samples=1000,
               perturbations_per_eval=--ppe. (scikit-learn: Debian's python3-sklearn.)
glassbox runs --batch rows per pass (default 0: the library's default).
M is a model exported by tests/scripts/export_torchvision.py into --cache; the
torch side runs explain_reference.Net's float32 model (the exported Conv
weights, BatchNorm folded: the function glassbox runs) on the first item of
M.input.npy. Each side: --runs timed calls after --warmup untimed ones, median.
The script also reports the relative L2 difference of the two attributions
(occlusion: should be ~1e-5; lime: sampling differs, so only a sanity number)
and the FLOPs incremental inference saved (1 - flops_done / flops_full, from
glassbox's counters). The machine's 1-minute load average before each
measurement is recorded: other jobs running make both sides slower.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "scripts"))


def load1():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def grid_mask(H, W, cell):
    import numpy as np
    hh, ww = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return ((hh // cell) * ((W + cell - 1) // cell) + ww // cell).astype(np.int64)


def torch_worker(a):
    """One Captum measurement, in its own process: prints a RESULT json line."""
    import numpy as np
    import torch
    torch.set_num_threads(a.threads)
    import explain_reference as er
    from captum.attr import Lime, Occlusion
    net = er.Net(a.model, os.path.join(a.cache, f"{a.model}.onnx")).m32.eval()
    x = torch.from_numpy(np.load(os.path.join(a.cache, f"{a.model}.input.npy"))[:1].astype(np.float32))
    with torch.no_grad():
        target = int(net(x)[0].argmax())
    times = []
    for r in range(a.warmup + a.runs):
        t0 = time.time()
        with torch.no_grad():
            if a.method == "occlusion":
                attr = Occlusion(net).attribute(x, sliding_window_shapes=(3, a.window, a.window),
                                                strides=(3, a.stride, a.stride), baselines=0, target=target,
                                                perturbations_per_eval=a.ppe)
            else:
                mask = torch.from_numpy(np.load(a.mask))[None, None]
                attr = Lime(net).attribute(x, feature_mask=mask, n_samples=a.samples, target=target,
                                           perturbations_per_eval=a.ppe)
        if r >= a.warmup:
            times.append(time.time() - t0)
    np.save(a.out, attr.numpy())
    times.sort()
    print("RESULT " + json.dumps({"median_ms": 1e3 * times[len(times) // 2], "min_ms": 1e3 * times[0],
                                  "target": target, "torch": torch.__version__}))


def parse(text, prefix):
    for line in text.splitlines():
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"no {prefix!r} line in:\n{text}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--cache", default="/tmp/tvcache")
    ap.add_argument("--cases", default="occlusion:resnet18,occlusion:vgg16,lime:resnet18")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--cell", type=int, default=32, help="lime's grid cells (pixels)")
    ap.add_argument("--batch", type=int, default=0, help="glassbox's rows per pass (0: its default)")
    ap.add_argument("--ppe", type=int, default=16, help="Captum's perturbations_per_eval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--mask", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return torch_worker(a)
    import numpy as np
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(a.threads))
    tmp = tempfile.mkdtemp(prefix="gb_bench_perturb_")
    mask = os.path.join(tmp, "mask.npy")
    np.save(mask, grid_mask(224, 224, a.cell))
    results = []
    for case in a.cases.split(","):
        method, model = case.split(":")
        onnx = os.path.join(a.cache, f"{model}.onnx")
        x1 = os.path.join(tmp, f"{model}.x.npy")
        np.save(x1, np.load(os.path.join(a.cache, f"{model}.input.npy"))[:1].astype(np.float32))
        gb_common = [os.path.join(a.build, "bench", "bench_perturb"), onnx, "--input", x1, "--method", method,
                     "--batch", str(a.batch), "--threads", str(a.threads), "--warmup", str(a.warmup),
                     "--runs", str(a.runs)]
        if method == "occlusion":
            gb_common += ["--window", str(a.window), "--stride", str(a.stride)]
        else:
            gb_common += ["--mask", mask, "--samples", str(a.samples)]
        # Captum first (gives the target), then glassbox with that target
        cap_out = os.path.join(tmp, f"{case.replace(':', '_')}.captum.npy")
        load_c = load1()
        p = subprocess.run([sys.executable, __file__, "--worker", "--model", model, "--method", method,
                            "--cache", a.cache, "--mask", mask, "--out", cap_out, "--window", str(a.window),
                            "--stride", str(a.stride), "--samples", str(a.samples), "--ppe", str(a.ppe),
                            "--threads", str(a.threads), "--warmup", str(a.warmup), "--runs", str(a.runs)],
                           env=env, capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"captum worker failed:\n{p.stderr}")
        cap = json.loads(parse(p.stdout, "RESULT ")[7:])
        modes = ["auto", "full"] if method == "occlusion" else ["auto"]
        for mode in modes:
            gb_out = os.path.join(tmp, f"{case.replace(':', '_')}.{mode}.npy")
            load_g = load1()
            p = subprocess.run(gb_common + ["--target", str(cap["target"]), "--incremental", mode, "--out", gb_out],
                               env=env, capture_output=True, text=True)
            if p.returncode:
                sys.exit(f"bench_perturb failed:\n{p.stdout}\n{p.stderr}")
            kv = dict(t.split("=", 1) for t in parse(p.stdout, "RESULT perturb").split()[2:])
            g, c = np.load(gb_out).astype(np.float64), np.load(cap_out).astype(np.float64)
            ff, fd = float(kv["flops_full"]), float(kv["flops_done"])
            res = {"case": case, "mode": mode, "rows": int(kv["rows"]), "glassbox_ms": float(kv["median_ms"]),
                   "captum_ms": cap["median_ms"], "ratio": float(kv["median_ms"]) / cap["median_ms"],
                   "flops_full": ff, "flops_done": fd,
                   "flops_saved": (1 - fd / ff) if ff > 0 else 0.0,
                   "rows_incr": int(kv["rows_incr"]), "rows_full": int(kv["rows_full"]),
                   "rel_l2_vs_captum": float(np.linalg.norm(g - c) / max(np.linalg.norm(c), 1e-30)),
                   "load_before_captum": load_c, "load_before_glassbox": load_g}
            results.append(res)
            print(json.dumps(res), flush=True)
    print()
    print(f"{'case':20s} {'mode':5s} {'rows':>5s} {'glassbox ms':>12s} {'Captum ms':>10s} {'ratio':>6s} "
          f"{'FLOPs saved':>11s} {'rel L2':>8s} {'load':>9s}")
    for r in results:
        print(f"{r['case']:20s} {r['mode']:5s} {r['rows']:5d} {r['glassbox_ms']:12.0f} {r['captum_ms']:10.0f} "
              f"{r['ratio']:6.3f} {100 * r['flops_saved']:10.1f}% {r['rel_l2_vs_captum']:8.1e} "
              f"{r['load_before_glassbox']:4.1f}/{r['load_before_captum']:4.1f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
