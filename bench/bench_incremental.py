#!/usr/bin/python3
"""Occlusion benchmark: glassbox (incremental and full) vs Captum, same run, 2 threads.

    cmake --build BUILD -j2 --target bench_incremental
    /usr/bin/python3 bench/bench_incremental.py --build BUILD [--cache DIR]
        [--models resnet18,vgg16] [--window 16] [--stride 8] [--ppe 32]
        [--threads 2] [--warmup 1] [--runs 3] [--captum /tmp/captum_src]
        [--max-load 1.5] [--wait 300] [--json FILE]

For each model (default resnet18 and vgg16, one 1x3x224x224 seeded N(0, 1)
image) it times

  glassbox  BUILD/bench/bench_incremental: gb_explain(e, "occlusion", x) with a
            window x window window over all channels, stride --stride, zero
            baseline, target = the torch model's top-1 class; once in the
            library's default mode (incremental inference where its FLOP model
            says it pays) and once with full forward passes only. It also
            reports the FLOPs of full passes of the perturbed rows, the FLOPs
            the incremental passes computed, and checks that the two
            attributions agree.
  Captum    in a separate process, on the same weights (the model built by
            tests/scripts/export_torchvision.py's build() + make_interesting(),
            same seeds, eval()):
              Occlusion(model).attribute(x, sliding_window_shapes=(3, w, w),
                  strides=(3, s, s), baselines=0, target=top-1,
                  perturbations_per_eval=--ppe)
            under torch.no_grad() (Captum's forward passes need no graph).

Both runtimes use --threads threads. Each measurement: --warmup untimed calls,
then --runs timed calls, median reported; before each the script waits (up to
--wait s) for the 1-minute load average to drop below --max-load and records
the load it saw. GFLOP/s and the fraction of the GEMM peak (--peak, measured
with BUILD/bench/bench_gemm_peak: 169 GFLOP/s on the reference machine) are
computed from the FLOPs glassbox computed (incremental) or would compute
(full). The goal of issue 6: incremental occlusion ratio glassbox/Captum <= 0.25.
Results: bench/README_incremental.md.
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
SCRIPTS = os.path.join(ROOT, "tests", "scripts")
EXPORT = os.path.join(SCRIPTS, "export_torchvision.py")


def load1():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def wait_quiet(max_load, wait_s):
    t0 = time.time()
    l = load1()
    while l >= max_load and time.time() - t0 < wait_s:
        time.sleep(5)
        l = load1()
    return l


def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p.stdout


def parse_results(text, tag):
    out = []
    for line in text.splitlines():
        if line.startswith(tag + " "):
            out.append(dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv))
    if not out:
        raise RuntimeError(f"no {tag} line in:\n" + text)
    return out


def torch_worker(args):
    import numpy as np
    import torch
    sys.path.insert(0, SCRIPTS)
    import export_torchvision as ex
    for p in (args.captum, os.path.join(os.path.dirname(args.captum.rstrip("/")), "captum_stubs")):
        if p and os.path.isdir(p) and p not in sys.path:
            sys.path.append(p)
    from captum.attr import Occlusion

    torch.set_num_threads(args.threads)
    model = ex.build(args.model)
    ex.make_interesting(model)
    model.eval()
    x = torch.from_numpy(np.load(args.input))
    with torch.no_grad():
        target = int(model(x)[0].argmax())
    occ = Occlusion(model)
    w, s = args.window, args.stride
    times = []
    for r in range(args.warmup + args.runs):
        t0 = time.perf_counter()
        with torch.no_grad():
            occ.attribute(x, sliding_window_shapes=(3, w, w), strides=(3, s, s), baselines=0, target=target,
                          perturbations_per_eval=args.ppe)
        dt = (time.perf_counter() - t0) * 1e3
        if r >= args.warmup:
            times.append(dt)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(f"RESULT impl=captum target={target} median_ms={med:.3f} min_ms={times[0]:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--cache", default=None, help="export directory (default BUILD/tvcache)")
    ap.add_argument("--models", default="resnet18,vgg16")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--ppe", type=int, default=32, help="Captum's perturbations_per_eval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peak", type=float, default=169.0, help="GEMM peak GFLOP/s (bench_gemm_peak)")
    ap.add_argument("--captum", default="/tmp/captum_src")
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--wait", type=float, default=300)
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        torch_worker(args)
        return 0

    cache = args.cache or os.path.join(args.build, "tvcache")
    exe = os.path.join(args.build, "bench", "bench_incremental")
    if not os.path.exists(exe):
        ap.error(f"{exe} not found: cmake --build {args.build} --target bench_incremental")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OMP_WAIT_POLICY="passive")
    models = [m for m in args.models.split(",") if m]
    missing = [m for m in models if not os.path.exists(os.path.join(cache, m + ".onnx"))]
    if missing:
        print(f"exporting {','.join(missing)} into {cache} ...", flush=True)
        run([sys.executable, EXPORT, "--out", cache, "--models", ",".join(missing), "--variants", "plain"], env)

    import numpy as np
    import torch
    tmp = tempfile.mkdtemp(prefix="gb_bench_incr_")
    xpath = os.path.join(tmp, "x.npy")
    g = torch.Generator().manual_seed(args.seed)
    np.save(xpath, torch.randn(1, 3, 224, 224, generator=g).numpy())

    rows = []
    for model in models:
        l_t = wait_quiet(args.max_load, args.wait)
        tr = parse_results(run([sys.executable, os.path.abspath(__file__), "--worker", "--model", model, "--input",
                                xpath, "--threads", str(args.threads), "--warmup", str(args.warmup), "--runs",
                                str(args.runs), "--window", str(args.window), "--stride", str(args.stride),
                                "--ppe", str(args.ppe), "--captum", args.captum], env), "RESULT")[0]
        l_g = wait_quiet(args.max_load, args.wait)
        out = run([exe, os.path.join(cache, model + ".onnx"), "--input", xpath, "--target", tr["target"],
                   "--window", str(args.window), "--stride", str(args.stride), "--threads", str(args.threads),
                   "--warmup", str(args.warmup), "--runs", str(args.runs), "--modes", "auto,full"], env)
        res = {r["mode"]: r for r in parse_results(out, "RESULT")}
        check = parse_results(out, "CHECK")[0]
        captum_ms = float(tr["median_ms"])
        for mode in ("auto", "full"):
            r = res[mode]
            ms = float(r["median_ms"])
            fd = float(r["flops_done"])
            row = {"model": model, "mode": "incremental" if mode == "auto" else "full", "rows": int(r["rows"]),
                   "glassbox_ms": ms, "captum_ms": captum_ms, "ratio": ms / captum_ms,
                   "flops_full": float(r["flops_full"]), "flops_done": fd,
                   "gflops_s": fd / ms * 1e-6, "peak_frac": fd / ms * 1e-6 / args.peak,
                   "rows_incr": int(r["rows_incr"]), "rows_full": int(r["rows_full"]),
                   "max_rel_diff": float(check["max_rel_diff"]), "load_captum": l_t, "load_glassbox": l_g}
            rows.append(row)
            print(f"  {model:9s} {row['mode']:11s} glassbox {ms:9.1f} ms  Captum {captum_ms:9.1f} ms  ratio "
                  f"{row['ratio']:.3f}  FLOPs {fd / 1e9:8.1f} G of {row['flops_full'] / 1e9:8.1f} G  "
                  f"{row['gflops_s']:.1f} GFLOP/s ({100 * row['peak_frac']:.0f}% of peak)  "
                  f"(load {l_t:.2f} / {l_g:.2f})", flush=True)
    print()
    print(f"threads {args.threads}, input 1x3x224x224, window {args.window}, stride {args.stride}, Captum "
          f"perturbations_per_eval {args.ppe}; medians of {args.runs} runs after {args.warmup} warm-up")
    print("| model | glassbox mode | rows | glassbox ms | Captum ms | ratio | GFLOP computed / full | GFLOP/s | "
          "% of GEMM peak | attr max rel diff (incr vs full) | load (Captum / glassbox) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['mode']} | {r['rows']} | {r['glassbox_ms']:.0f} | {r['captum_ms']:.0f} | "
              f"{r['ratio']:.3f} | {r['flops_done'] / 1e9:.0f} / {r['flops_full'] / 1e9:.0f} | "
              f"{r['gflops_s']:.1f} | {100 * r['peak_frac']:.0f}% | {r['max_rel_diff']:.1e} | "
              f"{r['load_captum']:.2f} / {r['load_glassbox']:.2f} |")
    worst = max(r["ratio"] for r in rows if r["mode"] == "incremental")
    print(f"\nworst incremental ratio {worst:.3f} ({'goal met' if worst <= 0.25 else 'goal NOT met'}: <= 0.25)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
