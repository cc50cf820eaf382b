#!/usr/bin/python3
"""LRP references for the torchvision-scale tests (test_relevance_tv).

A torch re-statement of Zennit's rules and composites (zennit/rules.py,
composites.py, canonizers.py, torchvision.py), written as autograd
Functions so that a backward pass propagates relevance exactly as Zennit's
BasicHook does (the "gradient" of every tensor is its relevance):

  Conv2d / Linear   Epsilon, ZPlus, AlphaBeta, Gamma, ZBox, WSquare, Flat:
                    Zennit's input / parameter modifiers, gradient mapper
                    and reducer, with stabilize(z) = z + eps * sign(z)
                    (sign(0) = +1)
  ReLU, BatchNorm   Pass (relevance unchanged)
  AvgPool, AdaptiveAvgPool, the residual sum   Norm (stabiliser 1e-6)
  MaxPool, Flatten, Dropout   the gradient

BatchNorm is merged into the preceding Conv2d first (Zennit's
SequentialMergeBatchNorm / ResNetCanonizer); the residual addition of
torchvision's BasicBlock/Bottleneck goes through the Norm rule (Zennit's
ResNetCanonizer Sum). The composites assign rules as Zennit's do:
EpsilonPlus (conv ZPlus, linear Epsilon), EpsilonGammaBox (first conv ZBox
with the ImageNet bounds (0 - mean) / std, (1 - mean) / std; conv Gamma
0.25; linear Epsilon), EpsilonAlpha2Beta1 (conv AlphaBeta(2, 1)).
Relevance enters as one-hot * logit (glassbox's R = f(x)).

  --cache DIR           the tv_export cache: writes NAME.lrp.COMPOSITE.npy for
                        resnet18 and vgg16 (the exported input, top-1 class).
  --verify-with-zennit  also run Zennit itself (from $ZENNIT_SRC, default
                        /tmp/zennit_src/src; a release whose hooks work with
                        Debian's torch 1.13, e.g. commit 6b0bbdf) on the same
                        model and input and print the relative L2 between
                        Zennit and this re-statement.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
STAB = 1e-6
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def stabilize(z, eps):
    return z + ((z == 0).to(z) + z.sign()) * eps


def _vjp(f, x, g):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (c,) = torch.autograd.grad(f(x), x, g)
    return c


class _Layer(torch.autograd.Function):
    """y = f(x; W, b) forward; relevance by `rule` backward."""

    @staticmethod
    def forward(ctx, x, mod, rule):
        ctx.save_for_backward(x)
        ctx.mod, ctx.rule = mod, rule
        return mod(x)

    @staticmethod
    def backward(ctx, R):
        (x,) = ctx.saved_tensors
        mod, (kind, p) = ctx.mod, ctx.rule
        W = mod.weight.detach()
        b = mod.bias.detach() if mod.bias is not None else torch.zeros(W.shape[0])
        fn = F.conv2d if isinstance(mod, torch.nn.Conv2d) else F.linear
        kw = dict(stride=mod.stride, padding=mod.padding, dilation=mod.dilation, groups=mod.groups) \
            if fn is F.conv2d else {}
        f = lambda w, bb: (lambda t: fn(t, w, bb, **kw))
        zero = torch.zeros_like(b)
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        Wp, Wn, bp, bn = W.clamp(min=0), W.clamp(max=0), b.clamp(min=0), b.clamp(max=0)
        if kind == "epsilon":
            s = R / stabilize(f(W, b)(x), p["epsilon"])
            return x * _vjp(f(W, b), x, s), None, None
        if kind in ("zplus", "alphabeta"):
            alpha, beta = (1.0, 0.0) if kind == "zplus" else (p["alpha"], p["alpha"] - 1)
            sp = R / stabilize(f(Wp, bp)(xp) + f(Wn, zero)(xn), STAB)
            out = alpha * (xp * _vjp(f(Wp, bp), xp, sp) + xn * _vjp(f(Wn, zero), xn, sp))
            if beta:
                sn = R / stabilize(f(Wn, bn)(xp) + f(Wp, zero)(xn), STAB)
                out = out - beta * (xp * _vjp(f(Wn, bn), xp, sn) + xn * _vjp(f(Wp, zero), xn, sn))
            return out, None, None
        if kind == "gamma":
            g = p["gamma"]
            Wg, Wh, bg, bh = W + g * Wp, W + g * Wn, b + g * bp, b + g * bn
            z = f(W, b)(x)
            s0 = (z > 0) * R / stabilize(f(Wg, bg)(xp) + f(Wh, zero)(xn), STAB)
            s1 = (z < 0) * R / stabilize(f(Wh, bh)(xp) + f(Wg, zero)(xn), STAB)
            out = xp * (_vjp(f(Wg, bg), xp, s0) + _vjp(f(Wh, bh), xp, s1)) \
                + xn * (_vjp(f(Wh, zero), xn, s0) + _vjp(f(Wg, zero), xn, s1))
            return out, None, None
        if kind == "zbox":
            lo, hi = p["low"].expand_as(x), p["high"].expand_as(x)
            s = R / stabilize(f(W, b)(x) - f(Wp, bp)(lo) - f(Wn, bn)(hi), STAB)
            return x * _vjp(f(W, b), x, s) - lo * _vjp(f(Wp, bp), lo, s) - hi * _vjp(f(Wn, bn), hi, s), None, None
        if kind == "wsquare":
            one = torch.ones_like(x)
            s = R / stabilize(f(W * W, b * b)(one), STAB)
            return _vjp(f(W * W, b * b), one, s), None, None
        if kind == "flat":
            one, Wo = torch.ones_like(x), torch.ones_like(W)
            s = R / stabilize(f(Wo, zero)(one), STAB)
            return _vjp(f(Wo, zero), one, s), None, None
        raise ValueError(kind)


class _Norm(torch.autograd.Function):
    """Zennit's Norm for y = fn(inputs...) without parameters."""

    @staticmethod
    def forward(ctx, fn, *xs):
        ctx.save_for_backward(*xs)
        ctx.fn = fn
        return fn(*xs)

    @staticmethod
    def backward(ctx, R):
        xs = [x.detach().requires_grad_(True) for x in ctx.saved_tensors]
        with torch.enable_grad():
            z = ctx.fn(*xs)
            gs = torch.autograd.grad(z, xs, R / stabilize(z.detach(), STAB))
        return (None,) + tuple(x * g for x, g in zip(xs, gs))


class _Pass(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fn):
        return fn(x)

    @staticmethod
    def backward(ctx, R):
        return R, None


class LayerMod(torch.nn.Module):
    def __init__(self, mod, rule):
        super().__init__()
        self.mod, self.rule = mod, rule

    def forward(self, x):
        return _Layer.apply(x, self.mod, self.rule)


class NormMod(torch.nn.Module):
    def __init__(self, mod):
        super().__init__()
        self.mod = mod

    def forward(self, x):
        return _Norm.apply(self.mod, x)


class PassMod(torch.nn.Module):
    def __init__(self, mod):
        super().__init__()
        self.mod = mod

    def forward(self, x):
        return _Pass.apply(x, self.mod)


def merge_bn(conv, bn):
    """Zennit's MergeBatchNorm: BN folded into conv's weight and bias."""
    with torch.no_grad():
        s = bn.weight / (bn.running_var + bn.eps) ** 0.5
        b = conv.bias if conv.bias is not None else torch.zeros_like(bn.bias)
        conv.weight.mul_(s[:, None, None, None])
        conv.bias = torch.nn.Parameter((b - bn.running_mean) * s + bn.bias)


def canonize(model):
    """Merge every Conv2d -> BatchNorm2d pair (vgg: in Sequentials; resnet:
    conv1/bn1, conv2/bn2(, conv3/bn3), downsample.0/1) into the conv, with
    the BN left as an identity."""
    import torchvision.models.resnet as R

    def ident(bn):
        return torch.nn.Identity()

    for mod in model.modules():
        if isinstance(mod, torch.nn.Sequential):
            ch = list(mod.named_children())
            for (n1, a), (n2, b) in zip(ch, ch[1:]):
                if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d):
                    merge_bn(a, b)
                    setattr(mod, n2, ident(b))
        if isinstance(mod, (R.BasicBlock, R.Bottleneck)):
            for i in (1, 2, 3):
                if hasattr(mod, f"conv{i}"):
                    merge_bn(getattr(mod, f"conv{i}"), getattr(mod, f"bn{i}"))
                    setattr(mod, f"bn{i}", torch.nn.Identity())
    if hasattr(model, "bn1") and hasattr(model, "conv1"):
        merge_bn(model.conv1, model.bn1)
        model.bn1 = torch.nn.Identity()
    return model


def _block_forward(self, x):
    """torchvision's BasicBlock/Bottleneck forward with the residual sum
    through the Norm rule (Zennit's ResNetCanonizer)."""
    identity = x
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if hasattr(self, "conv3"):
        out = self.bn3(self.conv3(self.relu(out)))
    if self.downsample is not None:
        identity = self.downsample(x)
    out = _Norm.apply(torch.add, identity, out)
    return self.relu(out)


COMPOSITES = {
    "epsilon_plus": ("zplus", "epsilon", None),
    "epsilon_gamma_box": ("gamma", "epsilon", "zbox"),
    "epsilon_alpha2_beta1": ("alphabeta", "epsilon", None),
}


def apply_composite(model, name, low=None, high=None):
    """A canonized copy of model with every layer replaced per the composite."""
    import torchvision.models.resnet as R
    conv_rule, lin_rule, first_rule = COMPOSITES[name]
    params = {"epsilon": 1e-6, "gamma": 0.25, "alpha": 2.0, "low": low, "high": high}
    model = canonize(copy.deepcopy(model))
    first = [first_rule is not None]

    def walk(mod):
        for n, ch in list(mod.named_children()):
            if isinstance(ch, torch.nn.Conv2d):
                kind = conv_rule
                if first[0]:
                    kind, first[0] = first_rule, False
                setattr(mod, n, LayerMod(ch, (kind, params)))
            elif isinstance(ch, torch.nn.Linear):
                setattr(mod, n, LayerMod(ch, (lin_rule, params)))
            elif isinstance(ch, (torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d)):
                setattr(mod, n, NormMod(ch))
            elif isinstance(ch, (torch.nn.ReLU, torch.nn.BatchNorm2d)):
                setattr(mod, n, PassMod(ch))
            else:
                if isinstance(ch, (R.BasicBlock, R.Bottleneck)):
                    ch.forward = _block_forward.__get__(ch)
                walk(ch)

    walk(model)
    return model


def lrp(model, x, target):
    xi = x.clone().requires_grad_(True)
    y = model(xi)
    seed = torch.zeros_like(y)
    seed[torch.arange(len(x)), target] = y.detach()[torch.arange(len(x)), target]
    (g,) = torch.autograd.grad(y, xi, seed)
    return g.detach()


def box():
    m = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
    s = torch.tensor(IMAGENET_STD)[None, :, None, None]
    return (0 - m) / s, (1 - m) / s


def load_model(cache, name):
    """The exported model (seeded torchvision weights, BN statistics made
    interesting, as tests/scripts/export_torchvision.py builds them) and its
    exported input (first item)."""
    p = os.path.join(cache, f"{name}.input.npy")
    if not os.path.exists(p):
        return None, None
    sys.path.insert(0, HERE)
    import export_torchvision as ex
    m = ex.build(name)
    ex.make_interesting(m)
    m.eval()
    return m, torch.from_numpy(np.load(p)[:1].astype(np.float32))


def zennit_lrp(model, x, target, name, low, high):
    sys.path.insert(0, os.environ.get("ZENNIT_SRC", "/tmp/zennit_src/src"))
    from zennit import composites as zc
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer
    canon = [ResNetCanonizer()] if hasattr(model, "layer1") else [VGGCanonizer()]
    # The Zennit commit that runs on torch 1.13 merges BatchNorm into a
    # bias-free conv as a plain attribute, which its ParamMod (reading
    # named_parameters) then does not clamp: ZPlus and friends would count the
    # merged bias unclamped. Upstream fixed it (1cdc001: the merged bias is a
    # real parameter); giving every bias-free conv a zero bias parameter first
    # does the same here without changing the function.
    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d) and mod.bias is None:
            mod.bias = torch.nn.Parameter(torch.zeros(mod.out_channels), requires_grad=False)
    comp = {"epsilon_plus": lambda: zc.EpsilonPlus(canonizers=canon),
            "epsilon_gamma_box": lambda: zc.EpsilonGammaBox(low=low, high=high, canonizers=canon),
            "epsilon_alpha2_beta1": lambda: zc.EpsilonAlpha2Beta1(canonizers=canon)}[name]()
    xi = x.clone().requires_grad_(True)
    with comp.context(model) as mod:
        y = mod(xi)
        seed = torch.zeros_like(y)
        seed[torch.arange(len(x)), target] = y.detach()[torch.arange(len(x)), target]
        y.backward(seed)
    return xi.grad.detach()


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--models", default="resnet18,vgg16")
    ap.add_argument("--composites", default="epsilon_plus,epsilon_gamma_box,epsilon_alpha2_beta1")
    ap.add_argument("--verify-with-zennit", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    low, high = box()
    for name in a.models.split(","):
        model, x = load_model(a.cache, name)
        if model is None:
            print(f"{name}: not in the cache, skipped")
            continue
        with torch.no_grad():
            target = model(x).argmax(1)
        for comp in a.composites.split(","):
            attr = lrp(apply_composite(model, comp, low, high), x, target)
            np.save(os.path.join(a.cache, f"{name}.lrp.{comp}.npy"), attr.numpy().astype(np.float32))
            msg = f"{name} {comp}: sum {attr.sum().item():.5g}"
            if a.verify_with_zennit:
                z = zennit_lrp(copy.deepcopy(model), x, target, comp, low, high)
                msg += f"; vs Zennit rel L2 {rel_l2(attr.numpy(), z.numpy()):.2e}"
            print(msg, flush=True)


if __name__ == "__main__":
    main()
