#!/usr/bin/python3
"""Export torchvision classifiers to ONNX together with PyTorch reference outputs.

Run with Debian's interpreter (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 tests/scripts/export_torchvision.py --out /tmp/tvcache \
        [--models resnet18,densenet121] [--opset 13] [--variants plain,keepbn]

No network is needed: every model is built with weights=None and seeded random
weights, then made numerically "interesting" (see make_interesting()):

  * every Conv2d / Linear is rescaled (a data-dependent, LSUV-like pass on a
    seeded calibration batch) so that its output has unit standard deviation;
    without this, random VGG/AlexNet/SqueezeNet logits vanish or explode;
    existing biases (mostly initialised to 0 by torchvision) get a random
    per-channel offset of ~0.2 output std, so the bias path is exercised;
  * every BatchNorm2d gets non-trivial parameters: weight ~ U(0.5, 1.5) with
    ~20% of the channels negated, bias ~ N(0, 0.2^2), running_mean = the
    channel mean on the calibration batch + N(0, (0.2 sd)^2) and
    running_var = the channel variance on the calibration batch * U(0.5, 1.5).
    (A freshly initialised BN has mean 0 / var 1 / weight 1 / bias 0, which
    makes it the identity and hides folding bugs.)

For each model NAME the script writes into --out:

  NAME.onnx            torch.onnx.export, default training=EVAL: the exporter
                       fuses Conv+BatchNorm pairs itself (what a casual user
                       gets); BN only survives where it does not follow a Conv
                       (e.g. DenseNet's pre-activation BN).
  NAME.keepbn.onnx     (variant "keepbn", only for models that contain BN)
                       same model exported with training=PRESERVE on an eval()
                       model: no Conv+BN fusion, so every BatchNormalization
                       node is in the graph with its own parameters.
  NAME.input.npy       float32 [2,3,224,224], torch.randn with a fixed seed
                       (identical for all models).
  NAME.logits.npy      float32 [2,1000], PyTorch's output for that input.
  NAME.grad_input.npy  float32 [2,3,224,224], d logits[0, argmax(logits[0])]
                       / d input (batch item 1 gets a zero gradient).
  NAME.act.npy         an intermediate activation (the middle 4-D output among
                       leaf modules that run once), batch 2; the C test finds
                       the ONNX tensor holding the same values.
  NAME.grad_act.npy    d logits[0, top-1] / d that activation, in float64.
  NAME.grad_input64.npy the input gradient computed in float64.
  NAME.torch32_err.npy [input, activation] relative L2 error of PyTorch's own
                       float32 gradients against the float64 ones, then the
                       same for float64 gradients at an input perturbed by
                       1e-6 (relative), then for float64 gradients with every
                       ReLU / max-pool kink within float32 rounding flipped
                       (explain_reference.py's "kinks"): how chaotic the
                       exact gradient is.
  NAME.meta.json       opset, top-1 index, logits statistics, versions, ONNX
                       op-type histogram per exported file, timings.

All exports use input name "input", output name "logits", a dynamic batch
axis ("batch") and do_constant_folding=False, so shape-computing subgraphs
(Shape/Gather/Unsqueeze/Concat/Reshape, e.g. ShuffleNet's channel shuffle)
stay in the graph.  Every exported file is validated with
onnx.checker.check_model(full_check=True).

A model is skipped (cached) when all its files exist and NAME.meta.json
records the same opset and variants.  At the end a summary of all ONNX op
types used by the selected models is printed.
"""

import argparse
import collections
import copy
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torchvision

DEFAULT_MODELS = [
    "alexnet", "vgg16", "resnet18", "resnet50", "squeezenet1_1",
    "mobilenet_v2", "mobilenet_v3_small", "densenet121", "googlenet",
    "shufflenet_v2_x1_0", "efficientnet_b0",
]
VARIANTS = ["plain", "keepbn"]

MODEL_SEED = 0          # torch.manual_seed before building the model
CALIB_SEED = 1          # extra calibration images for the rescaling pass
CALIB_EXTRA = 2
INPUT_SEED = 2          # the saved test input
BN_SEED = 3             # random BN weight/bias/perturbations
BATCH = 2
SIZE = 224


def build(name):
    """Seeded, randomly initialised torchvision model in eval() mode."""
    torch.manual_seed(MODEL_SEED)
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=True)
    if name.startswith("inception"):
        kwargs.update(aux_logits=False, init_weights=True)
    model = getattr(torchvision.models, name)(**kwargs)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def seeded_input(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, 3, SIZE, SIZE, generator=g)


def calibration_batch():
    """The test input plus CALIB_EXTRA other seeded images.  Calibrating on
    the test images themselves keeps their activations O(1) everywhere;
    calibrating on other images only (batch 2) left e.g. EfficientNet's
    logits at std ~18 on the test input (noise images pooled to 7x7 differ
    little, so per-channel statistics from two images overfit)."""
    g = torch.Generator().manual_seed(CALIB_SEED)
    extra = torch.randn(CALIB_EXTRA, 3, SIZE, SIZE, generator=g)
    return torch.cat([seeded_input(INPUT_SEED), extra])


@torch.no_grad()
def make_interesting(model):
    """One forward pass over a calibration batch with hooks that
    (a) randomise the bias of each Conv2d/Linear and rescale the layer so
    its output has unit std and
    (b) give each BatchNorm2d non-trivial parameters/statistics matched to
    its actual input, so activations stay O(1) through deep networks.
    Hooks run in execution order, so later layers see the corrected
    activations of earlier ones.  Returns the number of BN layers."""
    gen = torch.Generator().manual_seed(BN_SEED)
    handles = []
    done = set()

    def rescale_hook(mod, inp, out):
        if id(mod) in done:       # a module reused in one forward: once only
            return None
        done.add(id(mod))
        if mod.bias is not None:
            # torchvision initialises most biases to 0, which would leave the
            # bias path untested: add a per-channel offset of ~0.2 std.
            c = out.shape[1] if isinstance(mod, torch.nn.Conv2d) else out.shape[-1]
            delta = 0.2 * float(out.std()) * torch.randn(c, generator=gen)
            mod.bias.add_(delta)
            shape = [1] * out.dim()
            shape[1 if isinstance(mod, torch.nn.Conv2d) else -1] = c
            out = out + delta.view(shape)
        s = float(out.std())
        if not np.isfinite(s) or s <= 0:
            return None
        mod.weight.div_(s)
        if mod.bias is not None:
            mod.bias.div_(s)
        return out / s

    def bn_pre_hook(mod, inp):
        if id(mod) in done:
            return None
        done.add(id(mod))
        x = inp[0]
        c = x.shape[1]
        dims = [d for d in range(x.dim()) if d != 1]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False).clamp_min(1e-4)
        sd = var.sqrt()
        u = lambda: torch.rand(c, generator=gen)
        n = lambda: torch.randn(c, generator=gen)
        sign = torch.where(u() < 0.2, -1.0, 1.0)
        mod.weight.copy_(sign * (0.5 + u()))
        mod.bias.copy_(0.2 * n())
        mod.running_mean.copy_(mean + 0.2 * sd * n())
        mod.running_var.copy_(var * (0.5 + u()))
        return None

    n_bn = 0
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            handles.append(m.register_forward_hook(rescale_hook))
        elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_pre_hook(bn_pre_hook))
            n_bn += 1
    try:
        model(calibration_batch())
    finally:
        for h in handles:
            h.remove()
    return n_bn


def export(model, x, path, opset, keep_bn):
    mode = (torch.onnx.TrainingMode.PRESERVE if keep_bn
            else torch.onnx.TrainingMode.EVAL)
    torch.onnx.export(
        model, x, path,
        export_params=True,
        opset_version=opset,
        training=mode,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    hist = collections.Counter(
        (n.domain or "") + ("::" if n.domain else "") + n.op_type
        for n in m.graph.node)
    return dict(sorted(hist.items()))


def files_for(out, name, variants):
    f = [f"{name}.input.npy", f"{name}.logits.npy", f"{name}.grad_input.npy",
         f"{name}.act.npy", f"{name}.grad_act.npy", f"{name}.grad_input64.npy",
         f"{name}.torch32_err.npy", f"{name}.meta.json"]
    if "plain" in variants:
        f.append(f"{name}.onnx")
    return [os.path.join(out, x) for x in f]


def cached(out, name, opset, variants):
    if not all(os.path.exists(p) for p in files_for(out, name, variants)):
        return None
    try:
        with open(os.path.join(out, f"{name}.meta.json")) as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    if meta.get("opset") != opset:
        return None
    import explain_reference as er
    if (np.load(os.path.join(out, f"{name}.torch32_err.npy")).size != ERR_VALUES
            or meta.get("kinks_c_tau") != er.C_TAU):
        return None
    for v in variants:
        if v not in meta.get("variants_requested", []):
            return None
        f = meta["onnx"].get(v)
        if f and not os.path.exists(os.path.join(out, f["file"])):
            return None
    return meta


# Modules whose output survives into the ONNX graph under any export: the
# exporter fuses Conv+BatchNorm, so a Conv's or BN's output may not exist.
KEEP_TYPES = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Hardswish, torch.nn.SiLU, torch.nn.MaxPool2d,
              torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d)


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / max(float(b.norm()), 1e-30))


def gradients(model, x, dtype, top1=None):
    """d logits[0, top1] / d x and / d (an intermediate activation): the
    middle 4-D output among KEEP_TYPES modules that run exactly once
    (ResNet calls its ReLU modules several times per block)."""
    xg = x.clone().to(dtype).requires_grad_(True)
    calls = []
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.append((mod, o)))
             for m in model.modules() if isinstance(m, KEEP_TYPES)]
    logits = model(xg)
    for h in hooks:
        h.remove()
    count = collections.Counter(id(mod) for mod, _ in calls)
    once = [o for mod, o in calls
            if count[id(mod)] == 1 and isinstance(o, torch.Tensor) and o.dim() == 4]
    act = once[len(once) // 2]
    if top1 is None:
        top1 = int(logits[0].argmax())
    grad, grad_act = torch.autograd.grad(logits[0, top1], [xg, act])
    return top1, grad, grad_act, act.detach(), logits.detach()


def kink_gradients(model, model64, x, top1):
    """The float64 gradients of gradients() with the kinks within float32
    rounding flipped (explain_reference.record_kinks / backward_rules)."""
    import explain_reference as er
    store = []
    with torch.no_grad(), er.record_kinks(store):
        model(x.float())
    with er.backward_rules(None, [0], store):
        _, gk, gak, _, _ = gradients(model64, x.double(), torch.float64, top1)
    return gk, gak


ERR_VALUES = 6   # entries of NAME.torch32_err.npy (older caches have 4: re-exported)


def run_one(out, name, opset, variants):
    t0 = time.time()
    model = build(name)
    n_bn = make_interesting(model)

    x = seeded_input(INPUT_SEED)
    top1, grad, grad_act, act, logits = gradients(model, x, torch.float32)
    # The same in float64: ReLU masks and max-pool winners of a deep random
    # network flip under float32 rounding, so even PyTorch's own float32
    # gradient differs from the exact one (by up to a few percent on
    # GoogLeNet/ShuffleNet). The C test compares glassbox with this float64
    # reference and allows max(1e-3, 2 x PyTorch float32's own error).
    model64 = copy.deepcopy(model).double()
    _, grad64, grad_act64, _, _ = gradients(model64, x.double(), torch.float64, top1)
    # ...and the exact gradient's own sensitivity: at an input moved by 1e-6
    # (relative, seeded), about what float32 rounding (and the exporter's
    # Conv+BN weight fusion) does to the pre-activations.
    g = torch.Generator().manual_seed(INPUT_SEED + 1)
    xp = x.double() * (1 + 1e-6 * torch.randn(x.shape, generator=g, dtype=torch.float64))
    _, gradp, grad_actp, _, _ = gradients(model64, xp, torch.float64, top1)
    # ...and with every ReLU / max-pool kink that float32 rounding could flip
    # taken the other way (explain_reference.py's "kinks" measure: a
    # pre-activation within float32 rounding of 0 decides part of the
    # gradient, so any float32 implementation — another convolution
    # algorithm, say — may land on either side of it).
    gk, gak = kink_gradients(model, model64, x, top1)
    err = np.array([rel_l2(grad, grad64), rel_l2(grad_act, grad_act64),
                    rel_l2(gradp, grad64), rel_l2(grad_actp, grad_act64),
                    rel_l2(gk, grad64), rel_l2(gak, grad_act64)], dtype=np.float64)
    np.save(os.path.join(out, f"{name}.act.npy"), act.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.grad_act.npy"), grad_act64.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.grad_input64.npy"), grad64.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.torch32_err.npy"), err)

    lstd = float(logits.std())
    if not torch.isfinite(logits).all() or not torch.isfinite(grad).all():
        raise RuntimeError(f"{name}: non-finite logits or gradient")
    if lstd <= 1e-3:
        raise RuntimeError(f"{name}: logits have no spread (std {lstd:g})")

    np.save(os.path.join(out, f"{name}.input.npy"),
            x.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.logits.npy"),
            logits.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.grad_input.npy"),
            grad.numpy().astype(np.float32))
    t_torch = time.time() - t0

    onnx_info = {}
    for v in variants:
        if v == "keepbn" and n_bn == 0:
            continue          # identical to the plain export
        fname = f"{name}.onnx" if v == "plain" else f"{name}.{v}.onnx"
        path = os.path.join(out, fname)
        t1 = time.time()
        hist = export(model, x, path, opset, keep_bn=(v == "keepbn"))
        onnx_info[v] = {"file": fname, "bytes": os.path.getsize(path),
                        "export_seconds": round(time.time() - t1, 2),
                        "op_types": hist,
                        "n_nodes": sum(hist.values())}

    meta = {
        "model": name,
        "opset": opset,
        "variants_requested": list(variants),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnx": onnx_info,
        "seeds": {"model": MODEL_SEED, "calibration": CALIB_SEED,
                  "calibration_extra_images": CALIB_EXTRA,
                  "input": INPUT_SEED, "bn": BN_SEED},
        "input_shape": list(x.shape),
        "logits_shape": list(logits.shape),
        "top1": [int(i) for i in logits.argmax(dim=1)],
        "logits_std": lstd,
        "logits_absmax": float(logits.abs().max()),
        "grad_absmax": float(grad.abs().max()),
        "n_batchnorm": n_bn,
        "kinks_c_tau": __import__("explain_reference").C_TAU,
        "torch_seconds": round(t_torch, 2),
        "total_seconds": round(time.time() - t0, 2),
    }
    with open(os.path.join(out, f"{name}.meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help="comma-separated torchvision model names")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--variants", default="plain,keepbn",
                    help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="ignore the cache")
    args = ap.parse_args()

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}")
    for n in names:
        if not hasattr(torchvision.models, n):
            ap.error(f"unknown torchvision model {n!r}")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)

    t_all = time.time()
    total = collections.defaultdict(collections.Counter)  # op -> variant -> #models
    per_model = {}
    failed = []
    for name in names:
        t0 = time.time()
        meta = None if args.force else cached(args.out, name, args.opset,
                                              variants)
        status = "cached"
        if meta is None:
            status = "exported"
            try:
                meta = run_one(args.out, name, args.opset, variants)
            except Exception as e:  # report and go on with the others
                print(f"{name:20s} FAILED after {time.time() - t0:6.1f}s: "
                      f"{type(e).__name__}: {e}", flush=True)
                failed.append(name)
                continue
        sizes = " ".join(f"{v}={i['bytes'] / 1e6:.1f}MB/{i['n_nodes']}n"
                         for v, i in meta["onnx"].items())
        print(f"{name:20s} {status:8s} {time.time() - t0:6.1f}s  "
              f"top1={meta['top1']} logit_std={meta['logits_std']:.3g} "
              f"bn={meta['n_batchnorm']} {sizes}", flush=True)
        per_model[name] = meta
        for v, info in meta["onnx"].items():
            for op in info["op_types"]:
                total[op][v] += 1

    print(f"\n{len(per_model)} models ok, {len(failed)} failed, "
          f"{time.time() - t_all:.1f}s total")
    print(f"ONNX op types (opset {args.opset}) across all files; number of "
          f"models using each op, per variant:")
    print("  " + "op".ljust(24) + "".join(v.rjust(8) for v in variants))
    for op in sorted(total):
        print("  " + op.ljust(24)
              + "".join(str(total[op][v]).rjust(8) for v in variants))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
