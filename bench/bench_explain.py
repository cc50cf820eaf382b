#!/usr/bin/python3
"""Attribution benchmark: glassbox vs Captum in the same run, 2 threads.

    cmake --build BUILD -j2 --target bench_explain
    /usr/bin/python3 bench/bench_explain.py --build BUILD [--cache DIR]
        [--models resnet18,vgg16] [--methods saliency,integrated_gradients,gradcam,guided_backprop]
        [--batch 10] [--steps 50] [--threads 2] [--warmup 1] [--runs 3] [--ig-runs 2]
        [--captum /tmp/captum_src] [--max-load 1.5] [--wait 300] [--json FILE]

For each model (default resnet18 and vgg16, 1x3x224x224) and method it times

  glassbox  BUILD/bench/bench_explain (gb_explain on one explainer, plans
            cached) on the exported ONNX model;
  Captum    in a separate process (so the two runtimes' thread pools never
            compete), on the same weights: the worker builds the model with
            tests/scripts/export_torchvision.py's own build() and
            make_interesting() (same seeds), eval(), torch.set_num_threads:
              saliency              Saliency(model).attribute(x, target, abs=False)
              integrated_gradients  IntegratedGradients(model).attribute(x, baselines=0,
                                    target, n_steps=--steps, method="gausslegendre",
                                    internal_batch_size=--batch)
              gradcam               LayerGradCam(model, layer).attribute(x, target,
                                    relu_attributions=True), then
                                    LayerAttribution.interpolate(., (224, 224), "bilinear")
              guided_backprop       GuidedBackprop(model).attribute(x, target)
            Captum is imported from --captum (with its tqdm stub next to it,
            /tmp/captum_stubs). When it does not import, the script says so and
            times tests/scripts/explain_reference.py's torch implementation of
            the same formulas instead, labelled "torch-ref" in the table.

Both sides get the same seeded N(0, 1) input and the same target (the torch
model's top-1 class, passed to glassbox as --target); glassbox's
integrated_gradients runs --batch rows per pass (gb_explain_opts.batch), the
same as Captum's internal_batch_size. The Grad-CAM layer is the default one on
both sides (the last spatial feature map; see explain_reference.find_layer).
Each measurement: --warmup untimed calls, then --runs timed calls
(--ig-runs for integrated_gradients), median reported. Before each
measurement the script waits (up to --wait seconds) for the 1-minute load
average to drop below --max-load and reports the load it saw.

What a glassbox call includes: gb_explain's target-resolving forward pass
and, for integrated_gradients, the baseline's forward pass (for the
completeness delta) — work Captum's calls do not do. Eager PyTorch runs
BatchNorm as separate ops where glassbox runs the exporter's fused Conv
(resnet18; vgg16 has no BatchNorm).

The ratio is glassbox / Captum (<= 1.0: glassbox no slower). Results:
bench/README_explain.md.
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
METHODS = ["saliency", "integrated_gradients", "gradcam", "guided_backprop"]


def load1():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def wait_quiet(max_load, wait_s):
    t0 = time.time()
    l = load1()
    announced = False
    while l >= max_load and time.time() - t0 < wait_s:
        if not announced:
            print(f"  load {l:.2f} >= {max_load}: waiting up to {wait_s:.0f}s for the machine to calm down...",
                  flush=True)
            announced = True
        time.sleep(5)
        l = load1()
    return l


def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p.stdout


def parse_result(text):
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[2:])
    raise RuntimeError("no RESULT line in:\n" + text)


# --------------------------------------------------------------------------
# The PyTorch side (a separate process).

def import_captum(path):
    for p in (path, os.path.join(os.path.dirname(path.rstrip("/")), "captum_stubs")):
        if p and os.path.isdir(p) and p not in sys.path:
            sys.path.append(p)
    try:
        import captum.attr as ca
        return ca
    except Exception as e:  # noqa: BLE001
        print(f"Captum does not import from {path} ({type(e).__name__}: {e}): timing the torch reference "
              f"implementation (tests/scripts/explain_reference.py) instead", file=sys.stderr)
        return None


def torch_worker(args):
    import numpy as np
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, SCRIPTS)
    import explain_reference as er
    import export_torchvision as ex

    torch.set_num_threads(args.threads)
    model = ex.build(args.model)
    ex.make_interesting(model)
    model.eval()
    x = torch.from_numpy(np.load(args.input))
    with torch.no_grad():
        target = int(model(x)[0].argmax())
    layer_name, layer_call = er.find_layer(model)
    layer = dict(model.named_modules())[layer_name]
    ca = import_captum(args.captum) if args.captum else None

    if ca is not None:
        impl = "captum"
        fns = {
            "saliency": lambda: ca.Saliency(model).attribute(x, target=target, abs=False),
            "integrated_gradients": lambda: ca.IntegratedGradients(model).attribute(
                x, baselines=torch.zeros_like(x), target=target, n_steps=args.steps, method="gausslegendre",
                internal_batch_size=args.batch),
            "gradcam": lambda: ca.LayerAttribution.interpolate(
                ca.LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True),
                tuple(x.shape[2:]), "bilinear"),
            "guided_backprop": lambda: ca.GuidedBackprop(model).attribute(x, target=target),
        }
    else:
        impl = "torch-ref"

        def grad(xx, rule=None):
            xx = xx.clone().requires_grad_(True)
            with er.backward_rules(rule, [0]):
                (g,) = torch.autograd.grad(model(xx)[:, target].sum(), xx)
            return g

        def ig():
            w, a = er.ig_params("gausslegendre", args.steps)
            acc = torch.zeros_like(x)
            for k0 in range(0, args.steps, args.batch):
                rows = torch.cat([float(al) * x for al in a[k0:k0 + args.batch]])
                g = grad(rows)
                acc += (torch.tensor(w[k0:k0 + args.batch], dtype=x.dtype).view(-1, 1, 1, 1) * g).sum(0, keepdim=True)
            return x * acc

        def gradcam():
            store = []
            h = layer.register_forward_hook(lambda m, i, o: store.append(o))
            out = model(x)
            h.remove()
            (g,) = torch.autograd.grad(out[:, target].sum(), store[0])
            m = F.relu((g.mean(dim=(2, 3), keepdim=True) * store[0]).sum(1, keepdim=True))
            return F.interpolate(m, size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)
        fns = {"saliency": lambda: grad(x), "integrated_gradients": ig, "gradcam": gradcam,
               "guided_backprop": lambda: grad(x, "guided")}

    fn = fns[args.method]
    runs = args.runs
    times = []
    for r in range(args.warmup + runs):
        t0 = time.perf_counter()
        fn()
        dt = (time.perf_counter() - t0) * 1e3
        if r >= args.warmup:
            times.append(dt)
    times.sort()
    med = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
    print(f"RESULT torch impl={impl} target={target} layer={layer_name} median_ms={med:.3f} min_ms={times[0]:.3f}")


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--cache", default=None, help="export directory (default BUILD/tvcache)")
    ap.add_argument("--models", default="resnet18,vgg16")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--batch", type=int, default=10, help="IG rows per pass, both sides")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ig-runs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--captum", default="/tmp/captum_src", help="directory holding the captum package ('' = none)")
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--wait", type=float, default=300)
    ap.add_argument("--json", default=None)
    # worker mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        torch_worker(args)
        return 0

    cache = args.cache or os.path.join(args.build, "tvcache")
    exe = os.path.join(args.build, "bench", "bench_explain")
    if not os.path.exists(exe):
        ap.error(f"{exe} not found: cmake --build {args.build} --target bench_explain")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    models = [m for m in args.models.split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    missing = [m for m in models if not os.path.exists(os.path.join(cache, m + ".onnx"))]
    if missing:
        print(f"exporting {','.join(missing)} into {cache} ...", flush=True)
        run([sys.executable, EXPORT, "--out", cache, "--models", ",".join(missing), "--variants", "plain"], env)

    import numpy as np
    import torch
    tmp = tempfile.mkdtemp(prefix="gb_bench_explain_")
    xpath = os.path.join(tmp, "x.npy")
    g = torch.Generator().manual_seed(args.seed)
    np.save(xpath, torch.randn(1, 3, 224, 224, generator=g).numpy())

    rows = []
    for model in models:
        for method in methods:
            runs = args.ig_runs if method == "integrated_gradients" else args.runs
            l_t = wait_quiet(args.max_load, args.wait)
            out = run([sys.executable, os.path.abspath(__file__), "--worker", "--model", model, "--method", method,
                       "--input", xpath, "--threads", str(args.threads), "--warmup", str(args.warmup),
                       "--runs", str(runs), "--steps", str(args.steps), "--batch", str(args.batch),
                       "--captum", args.captum], env)
            tr = parse_result(out)
            l_g = wait_quiet(args.max_load, args.wait)
            cmd = [exe, os.path.join(cache, model + ".onnx"), "--input", xpath, "--method", method,
                   "--target", tr["target"], "--threads", str(args.threads), "--warmup", str(args.warmup),
                   "--runs", str(runs)]
            if method == "integrated_gradients":
                cmd += ["--steps", str(args.steps), "--batch", str(args.batch), "--integration", "gausslegendre"]
            gr = parse_result(run(cmd, env))
            row = {"model": model, "method": method, "impl": tr["impl"], "target": int(tr["target"]),
                   "layer": tr["layer"], "rows": int(gr["rows"]), "runs": runs,
                   "glassbox_ms": float(gr["median_ms"]), "glassbox_min_ms": float(gr["min_ms"]),
                   "torch_ms": float(tr["median_ms"]), "torch_min_ms": float(tr["min_ms"]),
                   "load_torch": l_t, "load_glassbox": l_g}
            row["ratio"] = row["glassbox_ms"] / row["torch_ms"]
            rows.append(row)
            print(f"  {model:10s} {method:22s} glassbox {row['glassbox_ms']:9.1f} ms   {row['impl']} "
                  f"{row['torch_ms']:9.1f} ms   ratio {row['ratio']:.2f}   (load {l_t:.2f} / {l_g:.2f})", flush=True)

    print()
    print(f"threads {args.threads}, input 1x3x224x224, IG {args.steps} steps gausslegendre, batch {args.batch}; "
          f"medians of {args.runs} runs ({args.ig_runs} for IG) after {args.warmup} warm-up")
    hdr = f"| model | method | vs | glassbox ms | {'Captum' if all(r['impl'] == 'captum' for r in rows) else 'torch'} ms " \
          f"| ratio | load (torch / glassbox) |"
    print(hdr)
    print("|---|---|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['method']} | {r['impl']} | {r['glassbox_ms']:.1f} | {r['torch_ms']:.1f} | "
              f"{r['ratio']:.2f} | {r['load_torch']:.2f} / {r['load_glassbox']:.2f} |")
    worst = max(r["ratio"] for r in rows)
    print(f"\nworst ratio {worst:.2f} ({'goal met' if worst <= 1.0 else 'goal NOT met'}: every ratio <= 1.0)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
