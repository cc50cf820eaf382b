#!/usr/bin/python3
"""Forward-pass benchmark: glassbox vs PyTorch on torchvision models, 2 threads.

Run with Debian's interpreter (it has torch/torchvision/onnx), after building:

    cmake -S . -B build && cmake --build build -j2
    /usr/bin/python3 bench/run_forward.py --build build

In one run this
  1. exports the models (default resnet18,vgg16) with
     tests/scripts/export_torchvision.py --variants plain into --cache
     (default BUILD/tvcache, the directory the torchvision ctest fixture also
     uses; files already there are reused);
  2. measures this machine's OpenBLAS SGEMM peak (BUILD/bench/bench_gemm_peak,
     2048^3, best of 7) so "% of peak" is measured, not assumed;
  3. for every model and batch size (default 1 and 8, 3x224x224) runs
     BUILD/bench/bench_forward (seeded N(0,1) input, --warmup untimed runs,
     then --runs timed runs of gb_session_run) and then the same model in
     PyTorch in a separate process (torch.set_num_threads, eval(), no_grad(),
     the *same* weights: the worker builds the model with the export script's
     own build() + make_interesting(), i.e. the same seeds), with the same
     warm-up and repetitions;
  4. prints a table: model, batch, glassbox ms, torch ms (medians), ratio
     glassbox/torch, GFLOP per forward (glassbox's count: sum of node flops,
     a multiply-add = 2), glassbox GFLOP/s, % of the SGEMM peak, and the
     1-minute load average seen just before the row was measured.

Both sides use --threads threads (default 2); OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS are exported to every child process as well.  The machine
should be otherwise idle: before each measurement the script waits (up to
--wait seconds) for the 1-minute load average to drop below --max-load and
reports what it saw.  --profile adds bench_forward's per-node breakdown
(printed after the table).  --json FILE writes every number measured.

Note: the ONNX export (eval mode) folds BatchNorm into the preceding Conv,
while eager PyTorch runs BatchNorm as a separate (cheap) op.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXPORT = os.path.join(ROOT, "tests", "scripts", "export_torchvision.py")


def load1():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def busy_others(seconds=1.0):
    """Fraction of all CPUs busy over `seconds` while we sleep (i.e. others)."""
    def snap():
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v), idle
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(max_load, wait_s):
    """Wait until the 1-minute load is below max_load (at most wait_s)."""
    t0 = time.time()
    l = load1()
    announced = False
    while l >= max_load and time.time() - t0 < wait_s:
        if not announced:
            print(f"  load {l:.2f} >= {max_load}: waiting up to {wait_s:.0f}s "
                  f"for the machine to calm down...", flush=True)
            announced = True
        time.sleep(5)
        l = load1()
    return l, busy_others()


def parse_result(text, kind):
    for line in text.splitlines():
        if line.startswith("RESULT " + kind + " "):
            return dict(kv.split("=", 1) for kv in line.split()[2:])
    raise RuntimeError(f"no 'RESULT {kind}' line in:\n{text}")


def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n"
                           f"{p.stdout}\n{p.stderr}")
    return p.stdout


# --------------------------------------------------------------------------
# PyTorch worker (a separate process, so torch's OpenMP threads never
# compete with glassbox's and each side starts from the same state).

def torch_worker(args):
    import torch
    sys.path.insert(0, os.path.dirname(EXPORT))
    import export_torchvision as ex

    torch.set_num_threads(args.threads)
    model = ex.build(args.model)          # same seed as the export...
    ex.make_interesting(model)            # ...and the same weight rescaling
    model.eval()
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, 3, 224, 224, generator=g)
    times = []
    if args.backward:
        # The same work as bench_forward --backward: forward, then the
        # gradient of each item's top-1 logit w.r.t. the input only (the
        # weights do not require grad, so no weight gradients are computed).
        for p in model.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            top = model(x).argmax(dim=1)
        def step():
            xg = x.clone().requires_grad_(True)
            out = model(xg)
            seed = torch.zeros_like(out)
            seed[torch.arange(out.shape[0]), top] = 1
            (g,) = torch.autograd.grad(out, xg, grad_outputs=seed)
            return g
        for _ in range(args.warmup):
            step()
        for _ in range(args.runs):
            t0 = time.perf_counter()
            y = step()
            times.append((time.perf_counter() - t0) * 1e3)
    else:
      with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        for _ in range(args.runs):
            t0 = time.perf_counter()      # CLOCK_MONOTONIC on Linux
            y = model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"output sum {float(y.sum()):.6g}")
    print(f"RESULT torch model={args.model} batch={args.batch} "
          f"threads={torch.get_num_threads()} runs={n} median_ms={med:.3f} "
          f"min_ms={times[0]:.3f}")
    return 0


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("GB_BUILD_DIR",
                                                      os.path.join(ROOT, "build")),
                    help="CMake build directory holding bench/bench_forward")
    ap.add_argument("--cache", help="export directory (default BUILD/tvcache)")
    ap.add_argument("--models", default="resnet18,vgg16")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gemm-size", type=int, default=2048)
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--wait", type=float, default=300,
                    help="max seconds to wait for a quiet machine per step")
    ap.add_argument("--omp-wait-policy", choices=["unset", "passive", "active"],
                    default="unset",
                    help="OMP_WAIT_POLICY for both sides (default: leave it "
                         "as the environment has it); passive matters a lot "
                         "on a loaded machine, see bench/README.md")
    ap.add_argument("--profile", action="store_true",
                    help="also print bench_forward's per-node breakdown")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--backward", action="store_true",
                    help="time forward + backward to the input (d top-1 logit of each item / d input) "
                         "against torch.autograd.grad, instead of the forward alone")
    # internal: the PyTorch side
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)

    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    if args.omp_wait_policy != "unset":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    policy = env.get("OMP_WAIT_POLICY", "unset")
    build = os.path.abspath(args.build)
    bench_fwd = os.path.join(build, "bench", "bench_forward")
    bench_gemm = os.path.join(build, "bench", "bench_gemm_peak")
    for b in (bench_fwd, bench_gemm):
        if not os.access(b, os.X_OK):
            sys.exit(f"run_forward: {b} not found; build first "
                     f"(cmake --build {args.build} --target bench_forward bench_gemm_peak)")
    cache = os.path.abspath(args.cache or os.path.join(build, "tvcache"))
    models = [m for m in args.models.split(",") if m]
    batches = [int(b) for b in args.batches.split(",") if b]

    print(f"== exporting {','.join(models)} into {cache}", flush=True)
    t0 = time.time()
    out = run([sys.executable, EXPORT, "--out", cache, "--models", ",".join(models),
               "--variants", "plain", "--threads", str(args.threads)], env)
    for line in out.splitlines():
        if any(line.startswith(m + " ") for m in models):
            print("  " + line)
    print(f"  ({time.time() - t0:.0f}s)")

    print(f"== SGEMM peak ({args.gemm_size}^3, {args.threads} threads)", flush=True)
    l, busy = wait_quiet(args.max_load, args.wait)
    gemm = parse_result(run([bench_gemm, "--size", str(args.gemm_size),
                             "--threads", str(args.threads), "--reps", "7"], env),
                        "gemm_peak")
    peak = float(gemm["best_gflops"])
    print(f"  best {peak:.1f} GFLOP/s, median {float(gemm['median_gflops']):.1f} "
          f"GFLOP/s (load {l:.2f}, others busy {100 * busy:.0f}%)", flush=True)

    rows, profiles = [], []
    for m in models:
        onnx_path = os.path.join(cache, m + ".onnx")
        for b in batches:
            print(f"== {m} batch {b}", flush=True)
            l, busy = wait_quiet(args.max_load, args.wait)
            gb_out = run([bench_fwd, onnx_path, "--shape", f"{b}x3x224x224",
                          "--warmup", str(args.warmup), "--runs", str(args.runs),
                          "--threads", str(args.threads), "--seed", str(args.seed)]
                         + (["--profile"] if args.profile else [])
                         + (["--backward"] if args.backward else []), env)
            gb = parse_result(gb_out, "backward" if args.backward else "forward")
            if args.profile:
                profiles.append((m, b, gb_out))
            l2, busy2 = wait_quiet(args.max_load, args.wait)
            th = parse_result(run([sys.executable, os.path.abspath(__file__),
                                   "--torch-worker", "--model", m, "--batch", str(b),
                                   "--warmup", str(args.warmup), "--runs", str(args.runs),
                                   "--threads", str(args.threads), "--seed", str(args.seed)]
                                  + (["--backward"] if args.backward else []),
                                  env), "torch")
            gms, tms = float(gb["median_ms"]), float(th["median_ms"])
            gflop = float(gb["gflop"])
            row = {"model": m, "batch": b, "glassbox_ms": gms,
                   "glassbox_min_ms": float(gb["min_ms"]), "torch_ms": tms,
                   "torch_min_ms": float(th["min_ms"]), "ratio": gms / tms,
                   "gflop": gflop, "glassbox_gflops": gflop / gms * 1e3,
                   "torch_gflops": gflop / tms * 1e3,
                   "pct_peak": 100 * gflop / gms * 1e3 / peak,
                   "load_before_glassbox": l, "others_busy_before_glassbox": busy,
                   "load_before_torch": l2, "others_busy_before_torch": busy2}
            rows.append(row)
            print(f"  glassbox {gms:.1f} ms (min {row['glassbox_min_ms']:.1f}), "
                  f"torch {tms:.1f} ms (min {row['torch_min_ms']:.1f}), "
                  f"ratio {row['ratio']:.2f}", flush=True)

    what = "Forward + backward to the input" if args.backward else "Forward pass"
    print(f"\n{what}, {args.threads} threads, median of {args.runs} runs after "
          f"{args.warmup} warm-up; SGEMM peak {peak:.1f} GFLOP/s "
          f"({args.gemm_size}^3 best of 7); OMP_WAIT_POLICY={policy}\n")
    hdr = ("| model | batch | glassbox ms | torch ms | glassbox/torch | GFLOP "
           "| glassbox GFLOP/s | % SGEMM peak | load |")
    print(hdr)
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['glassbox_ms']:.1f} | "
              f"{r['torch_ms']:.1f} | {r['ratio']:.2f} | {r['gflop']:.2f} | "
              f"{r['glassbox_gflops']:.1f} | {r['pct_peak']:.0f}% | "
              f"{r['load_before_glassbox']:.2f} |")
    for m, b, text in profiles:
        print(f"\n--- per-node profile: {m} batch {b}")
        print("\n".join(l for l in text.splitlines() if not l.startswith("RESULT")))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "threads": args.threads, "warmup": args.warmup,
                       "runs": args.runs, "omp_wait_policy": policy,
                       "gemm": gemm, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
