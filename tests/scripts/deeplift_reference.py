#!/usr/bin/python3
"""DeepLIFT references for the torchvision-scale tests (test_relevance_tv).

A torch re-statement of Captum's DeepLift (Shrikumar et al. 2017, Rescale
rule; captum/attr/_core/deep_lift.py): the model runs on the batch
[x; x'] like Captum's, with every nn.ReLU call replaced by an autograd
Function whose backward is Captum's nonlinear() (m = g * dy / dx, the
gradient where |dx| < 1e-10) and every nn.MaxPool2d call by Captum's
maxpool(); linear ops keep their gradient. The attribution is
(x - x') * the x half's multipliers. Because the replacement is a Function
called at every use, a module used twice (torchvision's ResNet calls one
nn.ReLU twice per block, which Captum's module hooks refuse) is handled.

  --verify-with-captum   run Captum itself (from $CAPTUM_SRC, default
                         /tmp/captum_src, with a tqdm stub in
                         /tmp/captum_stubs) on the same model and input and
                         print the relative L2 between it and this
                         re-statement (vgg16 and alexnet; Captum cannot run
                         resnet18), and between it and the re-statement with
                         max-pooling left to its gradient: Captum, as run on
                         Debian's torch 1.13, does not apply its maxpool()
                         hook, so only the latter agrees.
  --cache DIR            the tv_export cache; writes NAME.deeplift.npy (zero
                         reference, top-1 of the exported input) for each model,
                         and NAME.deeplift_gpool.npy (max-pooling by its
                         gradient, i.e. Captum as run) for vgg16 and alexnet.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-10


class _Rescale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp, fn):
        out = fn(inp)
        ctx.save_for_backward(inp, out)
        ctx.fn = fn
        return out

    @staticmethod
    def backward(ctx, g):
        inp, out = ctx.saved_tensors
        x, xr = inp.chunk(2)
        y, yr = out.chunk(2)
        with torch.enable_grad():
            i2 = inp.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(ctx.fn(i2), i2, g)
        dx = torch.cat([x - xr] * 2)
        dy = torch.cat([y - yr] * 2)
        return torch.where(dx.abs() < EPS, grad, g * dy / dx), None


class _MaxPool(torch.autograd.Function):
    """Captum's maxpool(): C = unpool_x(g (M - y')) + unpool_x'(g (y - M)),
    M = max(y, y'), m = C / dx (the gradient where |dx| < 1e-10). The
    unpooling is max-pooling's own backward (which sums where windows
    overlap, as in alexnet's and resnet's 3x3 / 2 pools; Captum's
    F.max_unpool2d overwrites there instead)."""

    @staticmethod
    def forward(ctx, inp, k, s, p, d, ceil):
        out = F.max_pool2d(inp, k, s, p, d, ceil)
        ctx.save_for_backward(inp, out)
        ctx.args = (k, s, p, d, ceil)
        return out

    @staticmethod
    def backward(ctx, g):
        inp, out = ctx.saved_tensors
        pool = lambda t: F.max_pool2d(t, *ctx.args)
        x, xr = inp.chunk(2)
        y, yr = out.chunk(2)
        gx = g.chunk(2)[0]
        m = torch.max(y, yr)
        contrib = _vjp(pool, x, gx * (m - yr)) + _vjp(pool, xr, gx * (y - m))
        grad = _vjp(pool, x, gx)
        dx = x - xr
        mx = torch.where(dx.abs() < EPS, grad, contrib / dx)
        return torch.cat([mx, mx]), None, None, None, None, None


def _vjp(f, x, g):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (r,) = torch.autograd.grad(f(x), x, g)
    return r


class RescaleReLU(torch.nn.Module):
    def forward(self, x):
        return _Rescale.apply(x, F.relu)


class RescaleMaxPool(torch.nn.Module):
    def __init__(self, mp):
        super().__init__()
        self.mp = mp

    def forward(self, x):
        mp = self.mp
        return _MaxPool.apply(x, mp.kernel_size, mp.stride, mp.padding, mp.dilation, mp.ceil_mode)


def patch(model, maxpool=True):
    """Replace every nn.ReLU (and nn.MaxPool2d unless maxpool=False: then it
    keeps its gradient) submodule, in place."""
    for name, child in list(model.named_children()):
        if isinstance(child, torch.nn.ReLU):
            setattr(model, name, RescaleReLU())
        elif isinstance(child, torch.nn.MaxPool2d) and maxpool:
            setattr(model, name, RescaleMaxPool(child))
        else:
            patch(child, maxpool)
    return model


def deeplift(model, x, ref, target):
    """Rescale-rule DeepLIFT of logit `target` (one per item); model patched."""
    n = x.shape[0]
    inp = torch.cat([x, ref]).detach().requires_grad_(True)
    out = model(inp)
    sel = out[torch.arange(n), target].sum() + out[torch.arange(n) + n, target].sum()
    (g,) = torch.autograd.grad(sel, inp)
    return ((x - ref) * g[:n]).detach(), out[:n].detach(), out[n:].detach()


def rel_l2(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--models", default="vgg16,alexnet,resnet18")
    ap.add_argument("--verify-with-captum", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from lrp_reference import load_model
    for name in a.models.split(","):
        model, x = load_model(a.cache, name)
        if model is None:
            print(f"{name}: not in the cache, skipped")
            continue
        with torch.no_grad():
            target = model(x).argmax(1)
        ref = torch.zeros_like(x)
        verify = a.verify_with_captum and not name.startswith("resnet")   # Captum refuses reused ReLUs
        plain = copy.deepcopy(model) if verify else None
        if verify:
            sys.path[:0] = [os.environ.get("CAPTUM_SRC", "/tmp/captum_src"), "/tmp/captum_stubs"]
            from captum.attr import DeepLift
            for m in model.modules():
                if isinstance(m, torch.nn.ReLU):
                    m.inplace = False
            cap = DeepLift(model).attribute(x, baselines=ref, target=target).detach()
        attr, y, yr = deeplift(patch(model), x, ref, target)
        delta = attr.flatten(1).sum(1) - (y - yr)[torch.arange(len(x)), target]
        np.save(os.path.join(a.cache, f"{name}.deeplift.npy"), attr.numpy().astype(np.float32))
        if not name.startswith("resnet"):   # Captum-as-run: max-pooling by its gradient
            gp = deeplift(patch(load_model(a.cache, name)[0], maxpool=False), x, ref, target)[0]
            np.save(os.path.join(a.cache, f"{name}.deeplift_gpool.npy"), gp.numpy().astype(np.float32))
        msg = f"{name}: summation delta {delta.abs().max().item():.2e}"
        if verify:
            msg += f"; vs Captum DeepLift rel L2 {rel_l2(attr.numpy(), cap.numpy()):.2e}"
            # Captum as run on torch 1.13 leaves max-pooling to its gradient:
            gpool = deeplift(patch(plain, maxpool=False), x, ref, target)[0]
            msg += f" (with max-pool by its gradient: {rel_l2(gpool.numpy(), cap.numpy()):.2e})"
        print(msg, flush=True)


if __name__ == "__main__":
    main()
