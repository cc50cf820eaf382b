#!/usr/bin/python3
"""Reference attributions on torchvision architectures, for tests/models/test_explain_tv.c.

    /usr/bin/python3 tests/scripts/explain_reference.py --cache DIR \\
        [--models resnet18,vgg16,...] [--threads 2] [--force]
    PYTHONPATH=/tmp/captum_src:/tmp/captum_stubs PYTORCH_GRAD_CAM=/tmp/cam_ref \\
        /usr/bin/python3 tests/scripts/explain_reference.py --cache DIR --verify-with-captum

For every model it rebuilds the seeded network that export_torchvision.py
exported into DIR (its own build() and make_interesting(): same seeds), gives
every Conv2d the weights of the exported file's Conv nodes and drops the
BatchNorm layers the exporter folded into them (so the reference computes the
function glassbox runs, not one that differs by the float32 rounding of the
folding — see Chaos), and computes with torch autograd, in float64, the
attribution of the first item of <model>.input.npy (batch 1) for its top-1
class by each method as Captum (or pytorch-grad-cam) defines it, with the
settings the C test gives glassbox:

  saliency              df/dx                                 Captum Saliency(abs=False)
  input_x_gradient      x * df/dx                             InputXGradient
  integrated_gradients.gausslegendre, integrated_gradients.riemann_trapezoid
                        zero baseline, 50 steps:              IntegratedGradients
                        (x - x') * sum_k w_k df/dx(x' + a_k (x - x')),
                        w, a from Captum's approximation_methods.py
  guided_backprop       every ReLU passes relu(grad) where its input > 0    GuidedBackprop
  deconvnet             every ReLU passes relu(grad), input ignored         Deconvolution
  gradcam               ReLU(sum_k mean_ij(dF/dA_k) A_k), bilinear to 224   LayerGradCam + interpolate
  gradcam_pp            pytorch-grad-cam's GradCAMPlusPlus weights           (pytorch-grad-cam)
  smoothgrad, smoothgrad_sq, vargrad
                        S = 4 noisy copies x + eps_s,         NoiseTunnel(Saliency)
                        eps ~ N(0, (0.05 range(x))^2)
  gradient_shap         S = 4 draws (eps_s, alpha_s, b_s) over a set of 3 baselines,
                        eps ~ N(0, 0.2^2):                    GradientShap
                        mean_s (x~ - b) df/dx(b + alpha (x~ - b)), x~ = x + eps

A is the default Grad-CAM layer: the output of the last module call producing
a 4-D map with H, W > 1 (resnet18: layer4's last ReLU; vgg16/alexnet: the
adaptive average pool; squeezenet1_1: the classifier's ReLU; mobilenet /
efficientnet: the last feature block) — what glassbox picks walking back
from the logits; its value is saved so the C test can check that it is.
guided_backprop / deconvnet modify every F.relu call (nn.ReLU modules call
it), as glassbox's rules modify every Relu node; the number of calls is saved
so the C test can check the graph has as many Relu nodes. (Captum hooks
nn.ReLU modules only: for these models the same thing.)

The random draws (noise, alphas, baseline indices, the baseline set) are
drawn here from fixed seeds and saved as .npy; the C test injects them
through gb_explain_opts.fixed_noise / fixed_alpha / fixed_baseline. Every
evaluation point ("row") is built in float32 exactly as glassbox and Captum
build it (b + alpha * (x - b) with alpha rounded to float32, x + eps, alpha
x~ + (1 - alpha) b), then evaluated in float64.

Chaos. In a deep random ReLU / max-pool network some pre-activations sit
within float32 rounding of zero (resnet18 at its test input: one at 2.9e-7 of
its layer's largest value) and some max-pool windows have two taps that
close; which side rounding puts them on flips a mask or a switch, and moves
the gradient by ~1e-3 in a receptive-field-sized blob. No float32
implementation can match the exact (float64) gradient better than that, so
each method's reference comes with three measures of its own uncertainty,
relative L2 against the float64 result:
  fp32   PyTorch's float32 result (same rows);
  kinks  the float64 backward pass with every such kink taken the other way:
         each ReLU whose |input| is within C_TAU x the rms float32 error of
         that tensor (measured by a float32 forward pass of the same row), and
         each max-pool window whose runner-up is that close to its maximum
         (ties of exact zeros excepted: every implementation computes those
         exactly). This is the measure that catches resnet18's flip above.
  shift  (one-row methods) every row moved by 1e-6, relative, seeded — the
         measure of tests/models/test_torchvision.c.
For integrated gradients, fp32 and kinks are evaluated at every 5th point
(and at every exactly-zero point) and extrapolated assuming independent
per-point errors (ig_estimate). A zero point (the trapezoid's alpha = 0 from
a zero baseline) makes every first-layer pre-activation its bias, so max-pool
windows tie exactly: the gradient there is not defined, and an
implementation's choice is up to its rounding — the trapezoid's references
are uncertain by ~1e-2 on max-pool networks for that reason. The C test
allows max(1e-3, 2 x the largest measure) when that exceeds 5e-4, as the
torchvision gradient test does.

Writes into DIR, per model M:
  M.attr.<method>.npy        float32 reference, (1, 3, 224, 224), CAMs (1, 1, 224, 224)
  M.attr.layer.npy           float32 (1, K, h, w): the Grad-CAM layer's activation
  M.attr.sg_noise.npy        float32 (S, 3, 224, 224) the smoothgrad noise eps_s (absolute)
  M.attr.shap_noise.npy      float32 (S, 3, 224, 224) gradient_shap's eps_s
  M.attr.shap_alpha.npy      float32 (S,)   its alphas
  M.attr.shap_bidx.npy       int64 (S,)     its baseline indices into
  M.attr.shap_bset.npy       float32 (3, 3, 224, 224) the baseline set
  M.attr.meta.txt            for the C test, one "key value..." per line:
                               version, target, samples, steps, relu_calls,
                               layer_module, "method NAME u_fp32 u_shift u_kinks"
                               per method (u_shift -1: not measured)
  M.attr.meta.json           the same and timings, versions, IG's completeness
                             deltas, Captum agreement (--verify-with-captum)
A model is skipped when its files exist with the same VERSION (--force
recomputes). Needs only torch/torchvision/onnx (Debian's python3); Captum and
pytorch-grad-cam only for --verify-with-captum, which recomputes everything
and also runs Captum 0.8 (Saliency, InputXGradient, IntegratedGradients,
GuidedBackprop, Deconvolution, LayerGradCam, NoiseTunnel, GradientShap with
the draws fed in as tests/scripts/make_explain_fixtures.py does) and
pytorch-grad-cam (GradCAM, GradCAMPlusPlus) in float64 on the same model and
reports their relative L2 difference from the reference.
Time (2 cores, idle): about 4 min for vgg16 (100 float64 IG rows), 1 min for
resnet18, well under a minute for the others.
"""
import argparse
import contextlib
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_torchvision as ex  # noqa: E402  (build, make_interesting, seeds)

VERSION = 3
DEFAULT_MODELS = ["resnet18", "vgg16", "alexnet", "squeezenet1_1", "mobilenet_v3_small", "efficientnet_b0"]
STEPS = 50
IG_METHODS = ["gausslegendre", "riemann_trapezoid"]
SAMPLES = 4            # smoothgrad family and gradient_shap draws
N_BASELINES = 3        # gradient_shap's baseline set
SG_NOISE = 0.05        # smoothgrad sigma, fraction of the input's range. Not the default 0.15: with
                       # it, the random efficientnet_b0's logits grow from ~4 to ~5000 and even
                       # PyTorch's float32 gradients differ from float64 by 87-150% (0.05: 1e-4)
SHAP_SIGMA = 0.2       # gradient_shap noise, absolute
DRAW_SEED = 40         # the draws
SHIFT = 1e-6           # relative row perturbation for the sensitivity
METHODS = ["saliency", "input_x_gradient", "integrated_gradients.gausslegendre",
           "integrated_gradients.riemann_trapezoid", "guided_backprop", "deconvnet", "gradcam", "gradcam_pp",
           "smoothgrad", "smoothgrad_sq", "vargrad", "gradient_shap"]
ONE_ROW = {"saliency", "input_x_gradient", "guided_backprop", "deconvnet", "gradcam", "gradcam_pp"}


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# ---- Captum's quadrature (captum/attr/_utils/approximation_methods.py) ------------------

def ig_params(method, n):
    """step sizes w and alphas a, as Captum: Riemann alphas are torch.linspace
    in float32 (then .tolist()), Gauss-Legendre from numpy's leggauss."""
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return list(0.5 * w), list(0.5 * (x + 1))
    w = [1.0 / n] * n
    if method == "riemann_trapezoid":
        w[0] /= 2
        w[-1] /= 2
        return w, torch.linspace(0, 1, n).tolist()
    raise ValueError(method)


# ---- modified ReLU backward passes --------------------------------------------------------

C_TAU = 3   # "within float32 rounding of a kink": C_TAU x the rms float32 error of that tensor
            # (per-unit errors are ~Gaussian with that rms: 1 would miss the flips another
            # float32 implementation makes at 1-2 rms — glassbox with oneDNN convolutions does)


def _tau(x, x32):
    """Per item (broadcastable to x): C_TAU times the rms difference between
    this float64 tensor and the same tensor in PyTorch's float32 pass — the
    size of float32 rounding at this point of the network."""
    d = (x.detach() - x32.to(x.dtype))
    d = torch.where(torch.isfinite(d), d, torch.zeros_like(d))
    return (C_TAU * d.pow(2).flatten(1).mean(1).sqrt()).view(-1, *[1] * (x.dim() - 1))


class _ReLU(torch.autograd.Function):
    """ReLU with a chosen backward rule:
      None      grad * (x > 0)                     (autograd's own)
      "guided"  relu(grad) * (x > 0)               Springenberg et al. 2015 (Captum's GuidedBackprop:
                                                   relu of the ReLU's input gradient)
      "deconv"  relu(grad), x ignored              Zeiler & Fergus 2014 (Captum's Deconvolution)
    With x32 (the same tensor from a float32 pass), the mask (x > 0) is
    inverted where |x| <= _tau: the gradient an implementation gets when
    float32 rounding puts those pre-activations on the other side of 0."""

    @staticmethod
    def forward(ctx, x, kind, x32):
        mask = x > 0
        if x32 is not None:
            mask = mask ^ (x.abs() <= _tau(x, x32))
        ctx.save_for_backward(mask)
        ctx.kind = kind
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        if ctx.kind == "deconv":
            return g.clamp(min=0), None, None
        if ctx.kind == "guided":
            g = g.clamp(min=0)
        return g * mask.to(g.dtype), None, None


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class _MaxPoolFlip(torch.autograd.Function):
    """max_pool2d (dilation 1) whose backward sends each window's gradient to
    its first maximum in scan order (PyTorch's and glassbox's tie rule) —
    or, where the runner-up is within _tau(x, x32) of it (exact ties
    included, except ties of exact zeros), to the runner-up: the switch
    float32 rounding could flip."""

    @staticmethod
    def forward(ctx, x, k, st, pad, ceil_mode, x32):
        y = _max_pool2d(x, k, st, pad, ceil_mode=ceil_mode)
        N, C, H, W = x.shape
        OH, OW = y.shape[2:]
        (kh, kw), (sh, sw), (ph, pw) = k, st, pad
        pb, pr = max(0, (OH - 1) * sh + kh - H - ph), max(0, (OW - 1) * sw + kw - W - pw)
        xp = F.pad(x.detach(), (pw, pr, ph, pb), value=-float("inf"))
        cols = F.unfold(xp, (kh, kw), stride=(sh, sw)).view(N, C, kh * kw, OH * OW)
        first = cols.argmax(dim=2, keepdim=True)            # the first maximum
        top = cols.gather(2, first)
        rest = cols.scatter(2, first, -float("inf"))
        second = rest.argmax(dim=2, keepdim=True)
        # exact ties of zeros (windows of ReLU outputs clamped to 0.0) are
        # exact in every implementation: first tap, no ambiguity
        near = ((top - rest.gather(2, second)) <= _tau(x, x32)) & (top != 0)
        ctx.save_for_backward(torch.where(near, second, first))
        ctx.geom = (N, C, H, W, kh, kw, sh, sw, ph, pw, pb, pr)
        return y

    @staticmethod
    def backward(ctx, g):
        (choice,) = ctx.saved_tensors
        N, C, H, W, kh, kw, sh, sw, ph, pw, pb, pr = ctx.geom
        L = choice.shape[-1]
        gc = torch.zeros(N, C, kh * kw, L, dtype=g.dtype)
        gc.scatter_(2, choice, g.reshape(N, C, 1, L))
        gx = F.fold(gc.view(N, C * kh * kw, L), (H + ph + pb, W + pw + pr), (kh, kw), stride=(sh, sw))
        return gx[:, :, ph:ph + H, pw:pw + W], None, None, None, None, None


_max_pool2d = F.max_pool2d


@contextlib.contextmanager
def backward_rules(kind, counter, flip32=None):
    """Every ReLU (nn.ReLU modules call F.relu, as do torchvision's
    functional uses) runs as _ReLU(kind); with flip32 (the inputs of every
    F.relu and F.max_pool2d call of a float32 pass, in call order) the kinks
    within float32 rounding are taken the other way (_ReLU, _MaxPoolFlip).
    counter[0] counts the ReLU calls (glassbox's graph must have as many
    Relu nodes: its rules apply to each)."""
    if kind is None and flip32 is None:
        yield
        return
    saved = F.relu, F.max_pool2d
    pending = list(flip32 or [])

    def relu(x, inplace=False):
        counter[0] += 1
        return _ReLU.apply(x, kind, pending.pop(0)[1] if flip32 is not None else None)

    def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        if _pair(dilation) != (1, 1) or return_indices:
            raise NotImplementedError("max_pool2d with dilation or indices")
        return _MaxPoolFlip.apply(x, _pair(kernel_size), _pair(stride or kernel_size), _pair(padding), ceil_mode,
                                  pending.pop(0)[1])
    F.relu = relu
    if flip32 is not None:
        F.max_pool2d = max_pool2d
    try:
        yield
    finally:
        F.relu, F.max_pool2d = saved


@contextlib.contextmanager
def record_kinks(store):
    """Record the input of every F.relu / F.max_pool2d call (kind, tensor)."""
    saved = F.relu, F.max_pool2d

    def relu(x, inplace=False):
        store.append(("relu", x.detach().clone()))
        return saved[0](x)

    def max_pool2d(x, *a, **k):
        store.append(("pool", x.detach().clone()))
        return saved[1](x, *a, **k)
    F.relu, F.max_pool2d = relu, max_pool2d
    try:
        yield
    finally:
        F.relu, F.max_pool2d = saved


# ---- the model ------------------------------------------------------------------------------

def find_layer(model):
    """The default Grad-CAM layer: the last leaf-module call whose output is
    4-D with H, W > 1 (what glassbox picks walking back from the logits).
    Returns (the outermost module that returns that same tensor and runs once
    — for Captum / pytorch-grad-cam — or None; the call's index among the
    calls of every module, in completion order)."""
    calls, names = [], {id(mod): n for n, mod in model.named_modules()}
    hooks = [mod.register_forward_hook(lambda mod, i, o: calls.append((mod, o)))
             for mod in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, 3, ex.SIZE, ex.SIZE))
    for h in hooks:
        h.remove()
    leaf_calls = [(k, mod, o) for k, (mod, o) in enumerate(calls)
                  if not list(mod.children()) and isinstance(o, torch.Tensor) and o.dim() == 4
                  and o.shape[2] > 1 and o.shape[3] > 1]
    k, _, out = leaf_calls[-1]
    counts = {}
    for mod, _ in calls:
        counts[id(mod)] = counts.get(id(mod), 0) + 1
    # outermost first, then the latest call (an in-place ReLU returns its
    # input: squeezenet's classifier conv "returns" the ReLU's output too)
    same = [(names[id(mod)].count("."), -j, names[id(mod)]) for j, (mod, o) in enumerate(calls)
            if o is out and counts[id(mod)] == 1]
    # k: the leaf's call index among all calls (which hooked output is A)
    return (min(same)[2] if same else None), k


class Net:
    """The seeded model in float64 and float32 and its Grad-CAM layer."""

    def __init__(self, name, onnx_path=None):
        self.name = name
        m = ex.build(name)
        ex.make_interesting(m)
        self.m32 = m
        self.fused = self.take_onnx_weights(onnx_path) if onnx_path else 0
        self.m64 = copy.deepcopy(m).double()
        self.layer_module, self.layer_call = self.find_layer()

    @torch.no_grad()
    def take_onnx_weights(self, path):
        """Give every Conv2d the weights of the exported file's Conv nodes (in
        execution order) and drop the BatchNorm2d layers the exporter folded
        into them: the reference then computes the function glassbox runs, not
        one that differs by the float32 rounding of the folding — which, in a
        network whose ReLU masks are chaotic, moves the exact gradient by up to
        ~1e-3 (resnet18's saliency). Returns the number of BN layers folded."""
        import onnx
        from onnx import numpy_helper
        g = onnx.load(path).graph
        init = {t.name: t for t in g.initializer}
        nodes = [n for n in g.node if n.op_type == "Conv"]
        calls = []
        hooks = [mod.register_forward_hook(lambda mod, i, o: calls.append((mod, i[0], o)))
                 for mod in self.m32.modules() if not list(mod.children())]
        self.m32(torch.zeros(1, 3, ex.SIZE, ex.SIZE))
        for h in hooks:
            h.remove()
        convs = [c for c in calls if isinstance(c[0], torch.nn.Conv2d)]
        if len(convs) != len(nodes) or len({id(c[0]) for c in convs}) != len(convs):
            raise RuntimeError(f"{self.name}: {len(convs)} Conv2d calls, {len(nodes)} ONNX Conv nodes")
        conv_outs = {id(o) for _, _, o in convs}
        for (mod, _, _), node in zip(convs, nodes):
            w = torch.from_numpy(numpy_helper.to_array(init[node.input[1]]).copy())
            if w.shape != mod.weight.shape:
                raise RuntimeError(f"{self.name}: Conv node {node.name} has weight {tuple(w.shape)}, "
                                   f"the module {tuple(mod.weight.shape)}")
            mod.weight.copy_(w)
            if len(node.input) > 2 and node.input[2]:
                b = torch.from_numpy(numpy_helper.to_array(init[node.input[2]]).copy())
                if mod.bias is None:
                    mod.bias = torch.nn.Parameter(b, requires_grad=False)
                else:
                    mod.bias.copy_(b)
        names = {id(mod): n for n, mod in self.m32.named_modules()}
        folded = 0
        for mod, inp, _ in calls:
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and id(inp) in conv_outs:
                parent, _, attr = names[id(mod)].rpartition(".")
                setattr(self.m32.get_submodule(parent) if parent else self.m32, attr, torch.nn.Identity())
                folded += 1
        return folded

    def find_layer(self):
        return find_layer(self.m32)

    def model(self, dtype):
        return self.m64 if dtype == torch.float64 else self.m32

    def run(self, rows, target, dtype, rule=None, want_layer=False, chunk=4, flip=False):
        """For each row (float32 or float64 numpy, (R, 3, H, W)): the logit
        `target`, the input gradient (float64 numpy) and, with want_layer, the
        Grad-CAM layer's activation and gradient."""
        m = self.model(dtype)
        gx_all, f_all, A_all, gA_all = [], [], [], []
        count = [0]
        for r0 in range(0, len(rows), chunk):
            x = torch.from_numpy(np.ascontiguousarray(rows[r0:r0 + chunk])).to(dtype).requires_grad_(True)
            calls = []
            hooks = []
            if want_layer:
                hooks = [mod.register_forward_hook(lambda mod, i, o: calls.append(o)) for mod in m.modules()]
            flip32 = None
            if flip:
                flip32 = []
                with torch.no_grad(), record_kinks(flip32):
                    self.m32(x.detach().float())
            with backward_rules(rule, count, flip32):
                out = m(x)
                for h in hooks:
                    h.remove()
                wrt = [x] + ([calls[self.layer_call]] if want_layer else [])
                grads = torch.autograd.grad(out[:, target].sum(), wrt)
            f_all.append(out[:, target].detach().double().numpy())
            gx_all.append(grads[0].double().numpy())
            if want_layer:
                A_all.append(wrt[1].detach().double().numpy())
                gA_all.append(grads[1].double().numpy())
        res = {"f": np.concatenate(f_all), "gx": np.concatenate(gx_all), "relu_calls": count[0] // len(f_all)}
        if want_layer:
            res["A"], res["gA"] = np.concatenate(A_all), np.concatenate(gA_all)
        return res


# ---- the methods on evaluated rows -------------------------------------------------------

def up(m):
    return F.interpolate(torch.from_numpy(m), size=(ex.SIZE, ex.SIZE), mode="bilinear",
                         align_corners=False).numpy()


def gradcam(A, g):
    """Selvaraju et al. 2017, eq. 1-2, then bilinear upsampling (ReLU first)."""
    m = (g.mean(axis=(2, 3), keepdims=True) * A).sum(1, keepdims=True)
    return up(np.maximum(m, 0))


def gradcam_pp(A, g):
    """pytorch-grad-cam's grad_cam_plusplus.py (Chattopadhyay et al. 2018, eq.
    19 with the exp trick): alpha = g^2 / (2 g^2 + sum_ij(A) g^3 + 1e-6), 0
    where g == 0; w = sum_ij alpha relu(g)."""
    g2, g3 = g * g, g * g * g
    s = A.sum(axis=(2, 3), keepdims=True)
    a = np.where(g != 0, g2 / (2 * g2 + s * g3 + 1e-6), 0.0)
    w = (np.maximum(g, 0) * a).sum(axis=(2, 3), keepdims=True)
    return up(np.maximum((w * A).sum(1, keepdims=True), 0))


class Draws:
    """The fixed random draws, all float32 like glassbox's inputs."""

    def __init__(self, x):
        g = torch.Generator().manual_seed(DRAW_SEED)
        rng = np.random.RandomState(DRAW_SEED)
        shape = (SAMPLES,) + x.shape[1:]
        lo, hi = float(x.min()), float(x.max())
        sigma = np.float32(SG_NOISE * (hi - lo))
        self.sg_noise = (torch.randn(shape, generator=g, dtype=torch.float32).numpy() * sigma).astype(np.float32)
        self.shap_noise = (torch.randn(shape, generator=g).numpy() * np.float32(SHAP_SIGMA)).astype(np.float32)
        self.shap_bset = (torch.randn((N_BASELINES,) + x.shape[1:], generator=g).numpy()
                          * np.float32(0.5)).astype(np.float32)
        self.shap_alpha = rng.uniform(0, 1, SAMPLES).astype(np.float32)
        self.shap_bidx = rng.randint(0, N_BASELINES, SAMPLES).astype(np.int64)


def build_rows(x, d):
    """All evaluation points, float32, built as glassbox/Captum build them.
    Returns (rows, plan): plan names the slice of rows each method uses."""
    rows, plan = [x], {"x": slice(0, 1)}
    for meth in IG_METHODS:
        w, a = ig_params(meth, STEPS)
        start = len(rows)
        for al in a:   # Captum: baseline + alpha * (input - baseline), float32, baseline 0
            rows.append(np.float32(0) + np.float32(al) * (x - np.float32(0)))
        plan["ig." + meth] = (slice(start, len(rows)), np.array(w))
    start = len(rows)
    for s in range(SAMPLES):
        rows.append(x + d.sg_noise[s:s + 1])
    plan["sg"] = slice(start, len(rows))
    start = len(rows)
    diffs = []
    for s in range(SAMPLES):
        xt = x + d.shap_noise[s:s + 1]
        b = d.shap_bset[d.shap_bidx[s]][None]
        al = d.shap_alpha[s]
        rows.append(al * xt + (np.float32(1) - al) * b)   # Captum's _scale_input
        diffs.append(xt - b)
    plan["shap"] = (slice(start, len(rows)), np.concatenate(diffs).astype(np.float64))
    return np.concatenate(rows).astype(np.float32), plan


IG_SUBSET = 5   # the uncertainty of IG evaluates every 5th point (and every zero point)


def ig_subset(rows_ig):
    """Indices of the IG points the uncertainty estimates evaluate: every
    IG_SUBSET-th, plus every point that is exactly zero (see ig_estimate)."""
    zero = {k for k in range(len(rows_ig)) if not rows_ig[k].any()}
    return sorted(set(range(0, len(rows_ig), IG_SUBSET)) | zero), zero


def attributions(net, x, rows, plan, target, dtype, shift=None, flip=False, parts=("one", "ig", "sg", "shap")):
    """The methods' maps from the rows evaluated at `dtype`. shift: a
    relative perturbation multiplied into every row (float64); flip: the
    backward passes with every kink within float32 rounding taken the other way. parts:
    "one" the one-row methods; "ig" / "ig_subset" integrated gradients at all
    points / at ig_subset()'s (then only the per-point terms, in info);
    "sg" the SmoothGrad family; "shap" gradient_shap."""
    chunk = 8 if dtype == torch.float32 else 2 if net.name == "vgg16" else 4

    def ev(r, **kw):
        if shift is not None:
            r = r.astype(np.float64) * (1 + SHIFT * shift)
        return net.run(r, target, dtype, chunk=chunk, flip=flip, **kw)
    x64 = x.astype(np.float64)
    out, info = {}, {}
    if "one" in parts:
        r = ev(rows[plan["x"]], want_layer=True)
        out["saliency"] = r["gx"]
        out["input_x_gradient"] = x64 * r["gx"]
        out["gradcam"] = gradcam(r["A"], r["gA"])
        out["gradcam_pp"] = gradcam_pp(r["A"], r["gA"])
        info["f"], info["A"] = float(r["f"][0]), r["A"]
        for kind, name in (("guided", "guided_backprop"), ("deconv", "deconvnet")):
            r = ev(rows[plan["x"]], rule=kind)
            out[name] = r["gx"]
            info["relu_calls"] = r["relu_calls"]
    for meth in IG_METHODS:
        sl, w = plan["ig." + meth]
        if "ig" in parts:
            r = ev(rows[sl])
            # per point: (x - x') * w_k * grad_k, kept for the uncertainty estimates
            info["ig_terms." + meth] = x64 * w[:, None, None, None] * r["gx"]
            info["ig_f." + meth] = r["f"]
            out["integrated_gradients." + meth] = info["ig_terms." + meth].sum(0, keepdims=True)
        elif "ig_subset" in parts:
            k, _ = ig_subset(rows[sl])
            r = ev(rows[sl][k])
            info["ig_terms." + meth] = x64 * w[k, None, None, None] * r["gx"]
    if "sg" in parts:
        g = ev(rows[plan["sg"]])["gx"]
        out["smoothgrad"] = g.mean(0, keepdims=True)
        out["smoothgrad_sq"] = (g * g).mean(0, keepdims=True)
        out["vargrad"] = out["smoothgrad_sq"] - out["smoothgrad"] ** 2
    if "shap" in parts:
        sl, diff = plan["shap"]
        out["gradient_shap"] = (diff * ev(rows[sl])["gx"]).mean(0, keepdims=True)
    return out, info


def ig_estimate(ref_info, sub_info, rows, plan, ref):
    """Relative error of IG from the points ig_subset() evaluated. The errors
    e_k of the per-point terms of a chaotic gradient are (nearly) independent,
    so E||sum_k e_k||^2 = sum_k ||e_k||^2: the evaluated non-zero points'
    sum, times (non-zero points) / (evaluated non-zero points), plus the
    zero points' own (a zero input — the trapezoid's alpha = 0 from a zero
    baseline — makes every first-layer pre-activation its bias: max-pool
    windows tie exactly and the gradient there is not defined; which tap
    wins is up to each implementation's rounding)."""
    est = {}
    for meth in IG_METHODS:
        sl, _ = plan["ig." + meth]
        k, zero = ig_subset(rows[sl])
        e = sub_info["ig_terms." + meth] - ref_info["ig_terms." + meth][k]
        ss = (e * e).sum(axis=(1, 2, 3))
        nz = [i for i, kk in enumerate(k) if kk not in zero]
        total = float(sum(ss[i] for i, kk in enumerate(k) if kk in zero))
        total += float(sum(ss[i] for i in nz)) * (STEPS - len(zero)) / max(1, len(nz))
        est["integrated_gradients." + meth] = float(np.sqrt(total) / np.linalg.norm(ref["integrated_gradients." + meth]))
    return est


# ---- Captum / pytorch-grad-cam, offline check -----------------------------------------------

def verify_with_captum(net, x, d, target, ref):
    """The same methods by Captum 0.8 and pytorch-grad-cam in float64 on the
    float64 model; returns {method: relative L2 error against ref}."""
    from captum.attr import (Deconvolution, GradientShap, GuidedBackprop, InputXGradient, IntegratedGradients,
                             LayerAttribution, LayerGradCam, NoiseTunnel, Saliency)
    from make_explain_fixtures import fixed_draws
    m = net.m64
    x64 = torch.from_numpy(x).double()
    res = {}
    res["saliency"] = Saliency(m).attribute(x64, target=target, abs=False)
    res["input_x_gradient"] = InputXGradient(m).attribute(x64, target=target)
    ig = IntegratedGradients(m)
    for meth in IG_METHODS:
        res["integrated_gradients." + meth] = ig.attribute(x64, baselines=torch.zeros_like(x64), target=target,
                                                           n_steps=STEPS, method=meth, internal_batch_size=4)
    res["guided_backprop"] = GuidedBackprop(m).attribute(x64, target=target)
    res["deconvnet"] = Deconvolution(m).attribute(x64, target=target)
    layer = dict(m.named_modules())[net.layer_module] if net.layer_module else None
    if layer is not None:
        lg = LayerGradCam(m, layer).attribute(x64, target=target, relu_attributions=True)
        res["gradcam"] = LayerAttribution.interpolate(lg, (ex.SIZE, ex.SIZE), "bilinear")
    noise = torch.from_numpy(d.sg_noise).double()
    nt = NoiseTunnel(Saliency(m))
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        with fixed_draws(noise=noise):
            res[kind] = nt.attribute(x64, nt_type=kind, nt_samples=SAMPLES, stdevs=1.0, target=target, abs=False)
    with fixed_draws(noise=torch.from_numpy(d.shap_noise).double(), alpha=d.shap_alpha, bidx=d.shap_bidx):
        res["gradient_shap"] = GradientShap(m).attribute(x64, baselines=torch.from_numpy(d.shap_bset).double(),
                                                         n_samples=SAMPLES, stdevs=SHAP_SIGMA, target=target)
    errs = {k: rel(v.detach().numpy(), ref[k]) for k, v in res.items()}
    # pytorch-grad-cam: GradCAM and GradCAMPlusPlus raw maps
    from make_cam_fixtures import import_pytorch_grad_cam, pgc_raw
    pg = import_pytorch_grad_cam() if layer is not None else None
    if pg:
        pgc, COT, _ = pg
        tg = [COT(int(target))]
        x64 = x64.clone().requires_grad_(True)   # the model's weights do not need grad: the input must
        errs["gradcam (pytorch-grad-cam)"] = rel(up(pgc_raw(pgc.GradCAM, m, layer, x64, tg).double().numpy()),
                                                 ref["gradcam"])
        errs["gradcam_pp"] = rel(up(pgc_raw(pgc.GradCAMPlusPlus, m, layer, x64, tg).double().numpy()),
                                 ref["gradcam_pp"])
    return errs


# ---- driver ---------------------------------------------------------------------------------

def outputs(cache, name):
    return ([os.path.join(cache, f"{name}.attr.{m}.npy") for m in METHODS]
            + [os.path.join(cache, f"{name}.attr.{k}.npy")
               for k in ("layer", "sg_noise", "shap_noise", "shap_alpha", "shap_bidx", "shap_bset")]
            + [os.path.join(cache, f"{name}.attr.meta.txt")])


def is_cached(cache, name):
    if not all(os.path.exists(p) for p in outputs(cache, name)):
        return False
    with open(os.path.join(cache, f"{name}.attr.meta.txt")) as fh:
        return fh.readline().split() == ["version", str(VERSION)]


def run_model(cache, name, verify):
    t0 = time.time()
    net = Net(name, os.path.join(cache, f"{name}.onnx"))
    x = np.load(os.path.join(cache, f"{name}.input.npy"))[:1].astype(np.float32)
    with torch.no_grad():
        l64 = net.m64(torch.from_numpy(x).double())[0]
        l32 = net.m32(torch.from_numpy(x))[0]
    target = int(l64.argmax())
    want = np.load(os.path.join(cache, f"{name}.logits.npy"))[0]
    if rel(l64.numpy(), want) > 1e-5:   # torch's own logits of the unfolded model
        raise RuntimeError(f"{name}: the model with the ONNX weights gives other logits ({rel(l64.numpy(), want):.2g})")
    if int(l32.argmax()) != target:
        raise RuntimeError(f"{name}: float32 and float64 top-1 differ")
    d = Draws(x)
    rows, plan = build_rows(x, d)
    t1 = time.time()
    ref, info = attributions(net, x, rows, plan, target, torch.float64)
    t_ref = time.time() - t1
    t1 = time.time()
    r32, info32 = attributions(net, x, rows, plan, target, torch.float32, parts=("one", "ig_subset", "sg", "shap"))
    u32 = {m: rel(r32[m], ref[m]) for m in r32}
    u32.update(ig_estimate(info, info32, rows, plan, ref))
    t_32 = time.time() - t1
    t1 = time.time()
    sh = torch.randn(x.shape, generator=torch.Generator().manual_seed(ex.INPUT_SEED + 1),
                     dtype=torch.float64).numpy()
    rsh, _ = attributions(net, x, rows, plan, target, torch.float64, shift=sh, parts=("one",))
    ush = {m: rel(rsh[m], ref[m]) for m in rsh}
    t_sh = time.time() - t1
    t1 = time.time()
    rfl, infofl = attributions(net, x, rows, plan, target, torch.float64, flip=True,
                               parts=("one", "ig_subset", "sg", "shap"))
    ufl = {m: rel(rfl[m], ref[m]) for m in rfl}
    ufl.update(ig_estimate(info, infofl, rows, plan, ref))
    t_fl = time.time() - t1
    unc = {m: (u32[m], ush.get(m, -1.0), ufl[m]) for m in METHODS}
    # IG's completeness delta: the reference's own quadrature error
    f_zero = net.run(np.zeros_like(x), target, torch.float64)["f"][0]
    delta = {m: float(ref["integrated_gradients." + m].sum() - (info["f"] - f_zero)) for m in IG_METHODS}

    def save(key, a, dtype=np.float32):
        np.save(os.path.join(cache, f"{name}.attr.{key}.npy"), np.ascontiguousarray(np.asarray(a, dtype)))
    for m in METHODS:
        save(m, ref[m])
    save("layer", info["A"])
    save("sg_noise", d.sg_noise)
    save("shap_noise", d.shap_noise)
    save("shap_alpha", d.shap_alpha)
    save("shap_bidx", d.shap_bidx, np.int64)
    save("shap_bset", d.shap_bset)
    meta = {"version": VERSION, "model": name, "target": target, "logit": info["f"], "samples": SAMPLES,
            "steps": STEPS, "n_baselines": N_BASELINES, "layer_module": net.layer_module or "?", "bn_folded": net.fused,
            "layer_shape": list(info["A"].shape), "relu_calls": info["relu_calls"], "rows": int(len(rows)),
            "uncertainty": {m: {"fp32": unc[m][0], "shift": unc[m][1], "kinks": unc[m][2]} for m in METHODS},
            "c_tau": C_TAU,
            "ig_delta": delta, "f_baseline": float(f_zero), "ig_fp32_subset": IG_SUBSET,
            "seconds": {"float64": round(t_ref, 1), "float32": round(t_32, 1), "shift": round(t_sh, 1),
                        "kinks": round(t_fl, 1)},
            "torch": torch.__version__}
    if verify:
        t1 = time.time()
        meta["captum_vs_reference"] = verify_with_captum(net, x, d, target, ref)
        meta["seconds"]["captum"] = round(time.time() - t1, 1)
    meta["seconds"]["total"] = round(time.time() - t0, 1)
    with open(os.path.join(cache, f"{name}.attr.meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    with open(os.path.join(cache, f"{name}.attr.meta.txt"), "w") as fh:
        fh.write(f"version {VERSION}\ntarget {target}\nsamples {SAMPLES}\nsteps {STEPS}\n"
                 f"relu_calls {info['relu_calls']}\nlayer_module {net.layer_module or '?'}\n")
        for m in METHODS:
            fh.write(f"method {m} {unc[m][0]:.6e} {unc[m][1]:.6e} {unc[m][2]:.6e}\n")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="export_torchvision.py's --out directory")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="recompute cached models")
    ap.add_argument("--verify-with-captum", action="store_true",
                    help="also run Captum (PYTHONPATH) and pytorch-grad-cam (PYTORCH_GRAD_CAM) and report agreement")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.verify_with_captum:
        for p in ("/tmp/captum_src", "/tmp/captum_stubs"):
            if os.path.isdir(p) and p not in sys.path:
                sys.path.append(p)
        os.environ.setdefault("PYTORCH_GRAD_CAM", "/tmp/cam_ref")
    failed = 0
    t0 = time.time()
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if not os.path.exists(os.path.join(args.cache, f"{name}.input.npy")):
            print(f"{name}: no {name}.input.npy in {args.cache} (run export_torchvision.py first)")
            failed += 1
            continue
        if not args.force and not args.verify_with_captum and is_cached(args.cache, name):
            print(f"{name:20s} cached")
            continue
        meta = run_model(args.cache, name, args.verify_with_captum)
        u = meta["uncertainty"]
        print(f"{name:20s} {meta['seconds']['total']:6.1f}s target {meta['target']} layer {meta['layer_module']} "
              f"{tuple(meta['layer_shape'])} relu calls {meta['relu_calls']}", flush=True)
        for m in METHODS:
            line = f"    {m:40s} torch fp32 {u[m]['fp32']:.2e}  kinks {u[m]['kinks']:.2e}"
            if u[m]["shift"] >= 0:
                line += f"  1e-6 shift {u[m]['shift']:.2e}"
            if "captum_vs_reference" in meta and m in meta["captum_vs_reference"]:
                line += f"  captum/pgc vs ref {meta['captum_vs_reference'][m]:.2e}"
            print(line, flush=True)
        for k, v in meta.get("captum_vs_reference", {}).items():
            if k not in METHODS:
                print(f"    {k:40s} vs ref {v:.2e}")
    print(f"{time.time() - t0:.1f}s total")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
