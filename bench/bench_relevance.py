#!/usr/bin/python3
"""LRP-EpsilonPlus and DeepLIFT on resnet18 and vgg16: glassbox against Zennit
and Captum in the same run (separate processes, 2 threads each).

    flock /tmp/gb_cpu.lock /usr/bin/python3 bench/bench_relevance.py \
        --build BUILD --cache /tmp/tvcache [--runs 3]

glassbox: BUILD/bench/bench_explain MODEL --method lrp|deeplift (gb_explain:
the target's forward pass, then the method; lrp's default composite is
epsilon_plus, deeplift's reference is zero). Reference: Zennit's
EpsilonPlus (with ResNetCanonizer / VGGCanonizer) from $ZENNIT_SRC
(default /tmp/zennit_src/src), Captum's DeepLift from $CAPTUM_SRC (default
/tmp/captum_src) on vgg16; Captum cannot run resnet18 (one nn.ReLU is
called twice per block), so for resnet18 DeepLIFT is timed with
tests/scripts/deeplift_reference.py's torch re-statement (the same work).
Each timing: 1 warm-up, then the median of --runs calls, batch 1.
Prints one line per case: ms, ratio glassbox / reference.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def torch_worker(args):
    import numpy as np
    import torch
    torch.set_num_threads(2)
    sys.path[:0] = [os.path.join(SRC, "tests", "scripts"), os.environ.get("ZENNIT_SRC", "/tmp/zennit_src/src"),
                    os.environ.get("CAPTUM_SRC", "/tmp/captum_src"), "/tmp/captum_stubs"]
    from lrp_reference import load_model
    model, x = load_model(args.cache, args.model)
    with torch.no_grad():
        target = model(x).argmax(1)
    if args.method == "lrp":
        from zennit.composites import EpsilonPlus
        from zennit.torchvision import ResNetCanonizer, VGGCanonizer
        canon = [ResNetCanonizer()] if hasattr(model, "layer1") else [VGGCanonizer()]
        comp = EpsilonPlus(canonizers=canon)

        def call():
            xi = x.clone().requires_grad_(True)
            with comp.context(model) as mod:
                y = mod(xi)
                seed = torch.zeros_like(y)
                seed[0, target] = y.detach()[0, target]
                y.backward(seed)
            return xi.grad
        ref = "zennit EpsilonPlus"
    elif hasattr(model, "layer1"):
        import copy
        import deeplift_reference as R
        pm = R.patch(copy.deepcopy(model))
        call = lambda: R.deeplift(pm, x, torch.zeros_like(x), target)
        ref = "torch re-statement (Captum refuses resnet18)"
    else:
        from captum.attr import DeepLift
        for m in model.modules():
            if isinstance(m, torch.nn.ReLU):
                m.inplace = False
        dl = DeepLift(model)
        call = lambda: dl.attribute(x, baselines=torch.zeros_like(x), target=target)
        ref = "captum DeepLift"
    call()
    ts = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        call()
        ts.append(1e3 * (time.perf_counter() - t0))
    print(json.dumps({"ms": statistics.median(ts), "ref": ref}))


def glassbox(build, cache, model, method, runs):
    exe = os.path.join(build, "bench", "bench_explain")
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    out = subprocess.run([exe, os.path.join(cache, f"{model}.onnx"), "--input", os.path.join(cache, f"{model}.x1.npy"),
                          "--method", method, "--threads", "2", "--runs", str(runs)],
                         capture_output=True, text=True, env=env, check=True).stdout
    return float(re.search(r"median_ms=([0-9.]+)", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--method")
    a = ap.parse_args()
    if a.worker:
        return torch_worker(a)
    import numpy as np
    for model in ("resnet18", "vgg16"):
        x1 = os.path.join(a.cache, f"{model}.x1.npy")
        np.save(x1, np.load(os.path.join(a.cache, f"{model}.input.npy"))[:1])
        for method in ("lrp", "deeplift"):
            g = glassbox(a.build, a.cache, model, method, a.runs)
            r = json.loads(subprocess.run([sys.executable, __file__, "--worker", "--cache", a.cache, "--model", model,
                                           "--method", method, "--runs", str(a.runs)],
                                          capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
            print(f"{model:9s} {method:9s} glassbox {g:8.1f} ms   {r['ref']}: {r['ms']:8.1f} ms   "
                  f"ratio {g / r['ms']:.2f}", flush=True)


if __name__ == "__main__":
    main()
