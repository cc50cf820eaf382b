#!/usr/bin/python3
"""Write tests/fixtures/shape_grad_torch.h: PyTorch autograd references for
the backward passes of the data-movement, reduction and resize kernels
(src/ops/index.c, src/ops/reduce.c, src/ops/resize.c).

Every case: an input x, an incoming gradient g shaped like the output, and
dx = the vector-Jacobian product computed by torch.autograd in float64.
  Pad      F.pad reflect / replicate (PyTorch's reflection_pad and
           replication_pad backward) and constant with negative pads
  Gather   x[:, idx] with repeated and negative indices (index backward is a
           scatter-add)
  Expand   Tensor.expand
  Reduce*  torch.sum/mean/amax/amin/prod/norm/logsumexp, with ties for
           amax/amin (split evenly) and zeros for prod (one and two zeros)
  Resize   F.interpolate bilinear (align_corners False/True), trilinear,
           linear, nearest and nearest-exact, mapped to ONNX settings as in
           tests/unit/test_ops_resize.c

Run with the system python that has torch:
    /usr/bin/python3 tests/scripts/gen_shape_grad_fixtures.py
The header is committed; re-run only to change the cases.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(20240612)
rng = np.random.default_rng(20240612)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "shape_grad_torch.h")

lines = []


def cfloat(v):
    v = float(v)
    t = "%.9g" % v
    if not any(c in t for c in ".en"):
        t += ".0"
    return t + "f"


def arr(name, a):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    body = ", ".join(cfloat(v) for v in a)
    lines.append("static const float %s[%d] FX_UNUSED = {%s};" % (name, max(len(a), 1), body))


def f32(shape, lo=-2.0, hi=2.0):
    """Random values exactly representable in float32, as float64 tensors."""
    return torch.tensor(rng.uniform(lo, hi, size=shape).astype(np.float32).astype(np.float64), requires_grad=True)


def vjp(name, x, fn):
    """Write x, g and dx = g^T d fn(x) / dx under the prefix name."""
    y = fn(x)
    g = torch.tensor(rng.uniform(-1, 1, size=tuple(y.shape)).astype(np.float32).astype(np.float64))
    (dx,) = torch.autograd.grad(y, x, g)
    arr(name + "_x", x.detach().numpy())
    arr(name + "_g", g.numpy())
    arr(name + "_dx", dx.numpy())
    return g


# ---- Pad (x is (2, 3, 4, 5); pads on H and W) ------------------------------------
xp = f32((2, 3, 4, 5))
# F.pad's pad tuple is (W_begin, W_end, H_begin, H_end).
vjp("fx_gpad_reflect", xp, lambda x: F.pad(x, (3, 2, 1, 2), mode="reflect"))
vjp("fx_gpad_edge", xp, lambda x: F.pad(x, (6, 2, 1, 5), mode="replicate"))
g = vjp("fx_gpad_const", xp, lambda x: F.pad(x, (-1, 2, 1, -2), value=0.5))
# d value: the sum of g over the filled positions (F.pad's value is not a tensor).
mask = F.pad(torch.zeros(2, 3, 4, 5, dtype=torch.float64), (-1, 2, 1, -2), value=1.0)
arr("fx_gpad_const_dvalue", [(g * mask).sum().item()])

# ---- Gather: axis 1 of a (3, 5, 4) with indices (2, 3), repeats and negatives --------
xg = f32((3, 5, 4))
gidx = [[1, 4, 1], [-1, 0, 1]]
arr_idx = [i % 5 for row in gidx for i in row]
vjp("fx_ggather", xg, lambda x: x[:, torch.tensor(arr_idx).reshape(2, 3)])

# ---- Expand: (3, 1, 4) -> (2, 3, 5, 4) -------------------------------------------
vjp("fx_gexpand", f32((3, 1, 4)), lambda x: x.expand(2, 3, 5, 4))

# ---- Reductions over axis 1 of a (3, 4, 2), keepdims --------------------------------
xr = f32((3, 4, 2), -1.5, 1.5)
vjp("fx_gred_sum", xr, lambda x: x.sum(1, keepdim=True))
vjp("fx_gred_mean", xr, lambda x: x.mean(1, keepdim=True))
vjp("fx_gred_sumsq", xr, lambda x: (x * x).sum(1, keepdim=True))
vjp("fx_gred_l2", xr, lambda x: torch.norm(x, p=2, dim=1, keepdim=True))
vjp("fx_gred_lse", xr, lambda x: torch.logsumexp(x, 1, keepdim=True))
vjp("fx_gred_prod", xr, lambda x: torch.prod(x, 1, keepdim=True))
xpos = f32((3, 4, 2), 0.2, 2.0)
vjp("fx_gred_logsum", xpos, lambda x: torch.log(x.sum(1, keepdim=True)))
# L1 with exact zeros: torch.norm(p=1)'s gradient is sign(x), 0 at 0.
xl1 = xr.detach().clone()
xl1[0, 1, 0] = 0
xl1[2, 3, 1] = 0
vjp("fx_gred_l1", xl1.requires_grad_(), lambda x: torch.norm(x, p=1, dim=1, keepdim=True))
# Ties for amax / amin: integer values with repeats in several blocks.
xt = torch.tensor([[3, 1, 3, 2], [0, 0, -1, 0], [5, 5, 5, 5]], dtype=torch.float64).reshape(3, 4, 1).repeat(1, 1, 2)
xt[:, :, 1] = torch.tensor([[1, 2, 2, -4], [7, -7, 7, 6], [0, 1, 0, 1]], dtype=torch.float64)
xt.requires_grad_()
vjp("fx_gred_max", xt, lambda x: torch.amax(x, 1, keepdim=True))
vjp("fx_gred_min", xt, lambda x: torch.amin(x, 1, keepdim=True))
vjp("fx_gred_maxall", xt, lambda x: torch.amax(x, (0, 1, 2), keepdim=True))
# Prod with one zero (block 0) and two zeros (block 2) per reduced block.
xz = xr.detach().clone()
xz[0, 2, 0] = 0
xz[2, 0, 1] = 0
xz[2, 3, 1] = 0
vjp("fx_gred_prodz", xz.requires_grad_(), lambda x: torch.prod(x, 1, keepdim=True))

# ---- Resize: F.interpolate on a (1, 2, 3, 4) -----------------------------------------
xi = f32((1, 2, 3, 4))
vjp("fx_grz_bilinear_hp", xi, lambda x: F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False))
vjp("fx_grz_bilinear_ac", xi, lambda x: F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=True))
vjp("fx_grz_bilinear_down", xi, lambda x: F.interpolate(x, size=(2, 3), mode="bilinear", align_corners=False))
vjp("fx_grz_nearest_x2", xi, lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))
vjp("fx_grz_nearest_exact", xi, lambda x: F.interpolate(x, size=(5, 7), mode="nearest-exact"))
vjp("fx_grz_nearest_down", xi, lambda x: F.interpolate(x, size=(2, 3), mode="nearest"))
vjp("fx_grz_trilinear", f32((1, 1, 2, 3, 4)),
    lambda x: F.interpolate(x, size=(3, 5, 6), mode="trilinear", align_corners=False))
vjp("fx_grz_linear_ac", f32((1, 2, 5)), lambda x: F.interpolate(x, size=8, mode="linear", align_corners=True))

header = [
    "/* shape_grad_torch.h — generated by tests/scripts/gen_shape_grad_fixtures.py",
    " * (PyTorch %s, float64 autograd). Do not edit. Each case NAME has NAME_x," % torch.__version__,
    " * the incoming gradient NAME_g and the expected NAME_dx. */",
    "#define FX_UNUSED __attribute__((unused))",
    "",
]
with open(OUT, "w") as f:
    f.write("\n".join(header + lines) + "\n")
print("wrote", OUT)
