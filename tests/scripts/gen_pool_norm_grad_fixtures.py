#!/usr/bin/python3
"""Write tests/fixtures/pool_norm_grad_torch.h: PyTorch autograd references for
the backward passes of src/ops/pool.c and src/ops/norm.c.

Run with the system python that has torch:
    /usr/bin/python3 tests/scripts/gen_pool_norm_grad_fixtures.py
The header is committed; re-run only to change the cases.

Every case stores the forward inputs, a random upstream gradient dy (one per
output) and the gradients of L = sum_k <dy_k, y_k> w.r.t. every input, from
torch.autograd in float64. The normalisations are written out from the ONNX
formulas (not torch's fused kernels) so that the running mean / var of
BatchNormalization get gradients and LRN uses ONNX's window for even sizes.
MaxPool cases include ties (integer-valued inputs): PyTorch's CPU kernel, like
glassbox, sends the gradient to the first maximum in scan order.
"""
import os
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(4321)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                   "pool_norm_grad_torch.h")

lines = []


def lit(v):
    s = "%.9g" % float(v)
    return s + ("f" if any(ch in s for ch in ".e") else ".0f")  # 3 -> 3.0f, not 3f


def arr(name, a):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    body = ", ".join(lit(v) for v in a)
    lines.append("static const float %s[%d] = {%s};" % (name, max(len(a), 1), body))


def dims(shape, n=5):
    s = list(shape) + [0] * (n - len(shape))
    return "{" + ", ".join(str(v) for v in s) + "}"


def f32(shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ---- pooling ---------------------------------------------------------------
pool_cases = []


def pool_case(name, op, x, k, s, p, d=None, ceil=0, cip=0):
    nk = x.ndim - 2
    d = d or [1] * nk
    xt = t64(x)
    if op == "MaxPool":
        f = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nk - 1]
        y = f(xt, k, s, p, d, ceil_mode=bool(ceil))
    else:
        assert d == [1] * nk
        f = [F.avg_pool1d, F.avg_pool2d, F.avg_pool3d][nk - 1]
        y = f(xt, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(cip))
    dy = f32(tuple(y.shape))
    (y * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    arr("gx_%s_x" % name, x)
    arr("gx_%s_dy" % name, dy)
    arr("gx_%s_dx" % name, xt.grad.numpy())
    pad3 = lambda v, fill: list(v) + [fill] * (3 - len(v))
    pool_cases.append(
        '    {"%s", "%s", %d, %s, %s, %s, %s, %d, %d, %d, %s, gx_%s_x, %d, %s, gx_%s_dy, gx_%s_dx},'
        % (name, op, nk, "{%s}" % ", ".join(map(str, pad3(k, 1))),
           "{%s}" % ", ".join(map(str, pad3(s, 1))),
           "{%s}" % ", ".join(map(str, list(p) * 2 + [0] * (6 - 2 * nk))),  # ONNX order, symmetric
           "{%s}" % ", ".join(map(str, pad3(d, 1))), ceil, cip, x.ndim, dims(x.shape), name,
           y.dim(), dims(y.shape), name, name))


def ints(shape, hi=4):
    """Integer-valued input: many ties inside every window."""
    return rng.integers(0, hi, size=shape).astype(np.float32)


pool_case("max1d_ceil", "MaxPool", f32((2, 3, 11)), [3], [2], [1], ceil=1)
pool_case("max1d_dil", "MaxPool", f32((1, 2, 20)), [4], [2], [2], d=[3])
pool_case("max2d_overlap", "MaxPool", f32((2, 2, 7, 6)), [3, 3], [1, 2], [1, 1])
pool_case("max2d_dil_ceil", "MaxPool", f32((1, 2, 9, 8)), [3, 2], [2, 2], [1, 1], d=[2, 2], ceil=1)
pool_case("max2d_ties", "MaxPool", ints((2, 2, 6, 7)), [3, 3], [1, 2], [1, 1])
pool_case("max2d_ties_ceil", "MaxPool", ints((1, 3, 5, 5), 2), [2, 2], [2, 2], [1, 1], ceil=1)
pool_case("max2d_all_equal_neg", "MaxPool", np.full((1, 1, 4, 4), -3.0, np.float32), [3, 3], [1, 1], [1, 1])
pool_case("max3d_ceil", "MaxPool", f32((1, 2, 5, 6, 5)), [2, 3, 2], [2, 2, 2], [1, 1, 1], ceil=1)
pool_case("max3d_ties", "MaxPool", ints((1, 2, 4, 4, 4), 3), [2, 2, 2], [1, 1, 1], [1, 0, 1])
pool_case("avg1d_ceil_cip", "AveragePool", f32((2, 2, 10)), [3], [2], [1], ceil=1, cip=1)
pool_case("avg1d_ceil", "AveragePool", f32((2, 2, 10)), [3], [2], [1], ceil=1, cip=0)
pool_case("avg2d_ceil_cip", "AveragePool", f32((1, 3, 6, 7)), [3, 3], [2, 2], [1, 1], ceil=1, cip=1)
pool_case("avg2d_ceil", "AveragePool", f32((1, 3, 6, 7)), [3, 3], [2, 2], [1, 1], ceil=1, cip=0)
pool_case("avg2d_overhang_cip", "AveragePool", f32((1, 1, 5, 5)), [2, 2], [2, 2], [0, 0], ceil=1, cip=1)
pool_case("avg2d_pad_cip", "AveragePool", f32((2, 2, 7, 7)), [3, 3], [1, 1], [1, 1], cip=1)
pool_case("avg2d_pad", "AveragePool", f32((2, 2, 7, 7)), [3, 3], [1, 1], [1, 1], cip=0)
pool_case("avg3d_ceil_cip", "AveragePool", f32((1, 2, 5, 6, 5)), [3, 2, 3], [2, 2, 2], [1, 1, 1],
          ceil=1, cip=1)
pool_case("avg3d", "AveragePool", f32((1, 2, 5, 6, 5)), [3, 2, 3], [2, 1, 2], [1, 0, 1])

# ---- normalisation ---------------------------------------------------------


def bc(v, nd):
    return v.reshape([1, -1] + [1] * (nd - 2))


# BatchNormalization (inference): y = (x - mean) / sqrt(var + eps) * scale + B
x = f32((2, 3, 4, 5))
sc, b, mu = f32(3), f32(3), f32(3)
var = (rng.random(3) + 0.1).astype(np.float32)
ts = [t64(v) for v in (x, sc, b, mu, var)]
y = (ts[0] - bc(ts[3], 4)) / torch.sqrt(bc(ts[4], 4) + 1e-3) * bc(ts[1], 4) + bc(ts[2], 4)
dy = f32(tuple(y.shape))
(y * torch.tensor(dy, dtype=torch.float64)).sum().backward()
for nm, v in zip(("x", "scale", "bias", "mean", "var"), (x, sc, b, mu, var)):
    arr("gx_bn_" + nm, v)
arr("gx_bn_dy", dy)
for nm, t in zip(("dx", "dscale", "dbias", "dmean", "dvar"), ts):
    arr("gx_bn_" + nm, t.grad.numpy())

# InstanceNormalization: statistics per (n, c) plane
x = f32((2, 3, 5, 4), 3.0, 1.0)
sc, b = f32(3), f32(3)
ts = [t64(v) for v in (x, sc, b)]
m = ts[0].mean(dim=(2, 3), keepdim=True)
v = ((ts[0] - m) ** 2).mean(dim=(2, 3), keepdim=True)
y = (ts[0] - m) / torch.sqrt(v + 1e-5) * bc(ts[1], 4) + bc(ts[2], 4)
dy = f32(tuple(y.shape))
(y * torch.tensor(dy, dtype=torch.float64)).sum().backward()
for nm, a in zip(("x", "scale", "bias", "dy"), (x, sc, b, dy)):
    arr("gx_in_" + nm, a)
for nm, t in zip(("dx", "dscale", "dbias"), ts):
    arr("gx_in_" + nm, t.grad.numpy())


# LayerNormalization, axis = -2 on (2, 3, 4, 5): inner = (4, 5)
def layer_norm_case(name, xshape, sshape, bshape, eps):
    x = f32(xshape)
    sc, b = f32(sshape), f32(bshape)
    ts = [t64(a) for a in (x, sc, b)]
    red = (-2, -1)
    m = ts[0].mean(dim=red, keepdim=True)
    isd = 1.0 / torch.sqrt(((ts[0] - m) ** 2).mean(dim=red, keepdim=True) + eps)
    y = (ts[0] - m) * isd * ts[1] + ts[2]
    dy, dm, di = f32(tuple(y.shape)), f32(tuple(m.shape)), f32(tuple(isd.shape))
    L = (y * torch.tensor(dy, dtype=torch.float64)).sum() \
        + (m * torch.tensor(dm, dtype=torch.float64)).sum() \
        + (isd * torch.tensor(di, dtype=torch.float64)).sum()
    L.backward()
    for nm, a in zip(("x", "scale", "bias", "dy", "dmean", "disd"), (x, sc, b, dy, dm, di)):
        arr("gx_%s_%s" % (name, nm), a)
    for nm, t in zip(("dx", "dscale", "dbias"), ts):
        arr("gx_%s_%s" % (name, nm), t.grad.numpy())
    # gradient through Y alone (Mean / InvStdDev outputs not used)
    ts2 = [t64(a) for a in (x, sc, b)]
    m = ts2[0].mean(dim=red, keepdim=True)
    isd = 1.0 / torch.sqrt(((ts2[0] - m) ** 2).mean(dim=red, keepdim=True) + eps)
    ((((ts2[0] - m) * isd * ts2[1] + ts2[2])) * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    arr("gx_%s_dx_yonly" % name, ts2[0].grad.numpy())


layer_norm_case("ln", (2, 3, 4, 5), (4, 5), (4, 5), 1e-5)
layer_norm_case("lnb", (2, 3, 4, 5), (5,), (4, 1), 1e-3)  # Scale and B broadcast


# LRN with ONNX's window [c - floor((size-1)/2), c + ceil((size-1)/2)]
def lrn_case(name, size, alpha, beta, bias):
    x = f32((2, 7, 3, 3))
    xt = t64(x)
    C = x.shape[1]
    sq = []
    for c in range(C):
        lo, hi = max(0, c - (size - 1) // 2), min(C - 1, c + size // 2)
        sq.append((xt[:, lo:hi + 1] ** 2).sum(1))
    y = xt / (bias + alpha / size * torch.stack(sq, 1)) ** beta
    dy = f32(tuple(y.shape))
    (y * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    arr("gx_%s_x" % name, x)
    arr("gx_%s_dy" % name, dy)
    arr("gx_%s_dx" % name, xt.grad.numpy())


lrn_case("lrn3", 3, 2e-4, 0.5, 2.0)
lrn_case("lrn4", 4, 0.5, 0.75, 1.0)  # even size: the window is longer after c
lrn_case("lrn5", 5, 1e-1, 0.75, 1.0)

with open(OUT, "w") as f:
    f.write("/* pool_norm_grad_torch.h — generated by tests/scripts/gen_pool_norm_grad_fixtures.py\n"
            " * (PyTorch %s, float64 autograd). Do not edit. */\n" % torch.__version__)
    f.write("#include <stdint.h>\n\n")
    f.write("\n".join(lines) + "\n\n")
    f.write("typedef struct {\n"
            "    const char *name, *op;\n"
            "    int nk;\n"
            "    int64_t kernel[3], strides[3], pads[6], dilations[3];\n"
            "    int ceil_mode, count_include_pad;\n"
            "    int x_ndim; int64_t x_dims[5]; const float *x;\n"
            "    int y_ndim; int64_t y_dims[5]; const float *dy, *dx;\n"
            "} pool_grad_fixture;\n\n")
    f.write("static const pool_grad_fixture pool_grad_fixtures[] = {\n" + "\n".join(pool_cases) + "\n};\n")
print("wrote", OUT)
