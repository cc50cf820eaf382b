#!/usr/bin/python3
"""Write tests/fixtures/elem_grad_torch.h: PyTorch autograd gradients for the
backward passes of src/ops/{elementwise,activation,softmax,gemm}.c.

What the unit tests cannot get from a finite difference: the values PyTorch
chooses at kinks (Relu'(0), HardSwish at +-3, Clip at its bounds, the Pow
masks at base 0, NaN patterns), and weight/bias gradients of Gemm and MatMul
from an independent implementation.

Run with the system python that has torch:
    /usr/bin/python3 tests/scripts/gen_elem_grad_fixtures.py
The header is committed; re-run only to change the cases.
"""
import os
import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "elem_grad_torch.h")
rng = np.random.default_rng(20240611)
lines = []


def fmt(v):
    v = float(v)
    if np.isnan(v):
        return "NAN"
    if np.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    t = "%.9g" % v
    return t + ("f" if ("." in t or "e" in t) else ".0f")


def arr(name, a):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    lines.append("static const float %s[%d] FX_UNUSED = {%s};" % (name, max(len(a), 1), ", ".join(fmt(v) for v in a)))


def grads(f, *xs):
    ts = [torch.tensor(np.asarray(x, dtype=np.float32), requires_grad=True) for x in xs]
    y = f(*ts)
    g = torch.tensor(np.asarray(G[: y.numel()], dtype=np.float32)).reshape(y.shape)
    (y * g).sum().backward()
    return [t.grad.numpy() for t in ts]


# ---- pointwise ops at and around their kinks --------------------------------
# Incoming gradient g_i = 1 + i/8, so a gradient that ignores g shows up.
X = [-4, -3, -2.5, -1, -0.5, 0, 0.25, 0.5, 1, 2, 2.5, 3, 4]
G = [1 + i / 8 for i in range(1024)]
arr("fx_pw_x", X)
arr("fx_pw_g", G[: len(X)])

# (ONNX op, float attributes, torch function)
pointwise = [
    ("Relu", [], torch.relu),
    ("LeakyRelu", [("alpha", "0.1f")], lambda x: F.leaky_relu(x, 0.1)),
    ("Elu", [("alpha", "2.0f")], lambda x: F.elu(x, 2.0)),
    ("Selu", [], torch.selu),
    ("Celu", [("alpha", "2.0f")], lambda x: F.celu(x, 2.0)),
    ("Sigmoid", [], torch.sigmoid),
    ("Tanh", [], torch.tanh),
    ("HardSigmoid", [("alpha", "1.0f / 6.0f"), ("beta", "0.5f")], F.hardsigmoid),
    ("HardSwish", [], F.hardswish),
    ("Softplus", [], F.softplus),
    ("Softsign", [], F.softsign),
    ("ThresholdedRelu", [("alpha", "1.0f")], lambda x: F.threshold(x, 1.0, 0.0)),
    ("Shrink", [("lambd", "0.5f")], lambda x: F.hardshrink(x, 0.5)),
    ("Shrink", [("lambd", "0.5f"), ("bias", "0.5f")], lambda x: F.softshrink(x, 0.5)),
    ("Abs", "", torch.abs),
    ("Neg", "", torch.neg),
    ("Exp", "", torch.exp),
    ("Erf", "", torch.erf),
    ("Sqrt", "", torch.sqrt),
    ("Log", "", torch.log),
]
rows = []
for i, (op, at, f) in enumerate(pointwise):
    (dx,) = grads(f, X)
    arr("fx_pw_dx_%d" % i, dx)
    ats = ", ".join('{"%s", %s}' % a for a in at) or "{0}"
    rows.append('    {"%s", {%s}, %d, fx_pw_dx_%d},' % (op, ats, len(at), i))
lines.append("/* A pointwise case: op, float attributes (name, value), expected dx. */")
lines.append("typedef struct { const char *name; float value; } fx_attr;")
lines.append("typedef struct { const char *op; fx_attr attrs[2]; int n_attrs; const float *dx; } fx_pw_case;")
lines.append("static const fx_pw_case fx_pw_cases[] FX_UNUSED = {\n%s\n};" % "\n".join(rows))

# ---- Pow: the masks at base 0 and NaN for negative bases ---------------------
PB = [-2, -2, 0, 0, 0, 2, -1.5, 3, 0.5]
PE = [2, 0.5, 0, 2, -1, 0, 3, -0.5, 1.5]
db, de = grads(torch.pow, PB, PE)
arr("fx_pow_b", PB)
arr("fx_pow_e", PE)
arr("fx_pow_db", db)
arr("fx_pow_de", de)

# ---- Clip: gradients to x, min and max, PyTorch's clamp ----------------------
CX = [-2, -1, 0, 1, 2, float("nan")]
arr("fx_clip_x", CX)
clip_rows = []
for i, (lo, hi) in enumerate([(-1, 1), (1, -1), (-1, None), (None, 1), (1, 1)]):
    args = [CX] + [v for v in (lo, hi) if v is not None]

    def f(x, *b, lo=lo, hi=hi):
        bl = b[0] if lo is not None else None
        bh = b[-1] if hi is not None else None
        return torch.clamp(x, bl, bh)

    gs = grads(f, *args)
    arr("fx_clip_dx_%d" % i, gs[0])
    dlo = float(gs[1]) if lo is not None else 0.0
    dhi = float(gs[-1]) if hi is not None else 0.0
    clip_rows.append("    {%d, %s, %d, %s, fx_clip_dx_%d, %s, %s}," % (
        lo is not None, fmt(lo or 0), hi is not None, fmt(hi or 0), i, fmt(dlo), fmt(dhi)))
lines.append("typedef struct { int has_lo; float lo; int has_hi; float hi; const float *dx; float dlo, dhi; } fx_clip_case;")
lines.append("static const fx_clip_case fx_clip_cases[] FX_UNUSED = {\n%s\n};" % "\n".join(clip_rows))

# ---- PRelu with zeros in x: slope (3, 1, 1) on x (2, 3, 2, 2) -----------------
px = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
px.reshape(-1)[::5] = 0.0
ps = np.array([0.25, -0.5, 1.5], dtype=np.float32).reshape(3, 1, 1)
dpx, dps = grads(lambda x, s: torch.where(x > 0, x, s * x), px, ps)
# torch.nn.functional.prelu agrees (per-channel weight):
dpx2, dps2 = grads(lambda x, s: F.prelu(x, s.reshape(3)), px, ps)
assert np.allclose(dpx, dpx2) and np.allclose(dps, dps2)
arr("fx_prelu_x", px)
arr("fx_prelu_slope", ps)
arr("fx_prelu_dx", dpx)
arr("fx_prelu_dslope", dps)

# ---- Softmax / LogSoftmax: opset 13 (one axis) and opset 11 (2-D coercion) ---
sx = rng.standard_normal((2, 3, 4)).astype(np.float32)
arr("fx_sm_x", sx)
arr("fx_sm13_dx", grads(lambda x: torch.softmax(x, 1), sx)[0])
arr("fx_lsm13_dx", grads(lambda x: torch.log_softmax(x, 1), sx)[0])
arr("fx_sm11_dx", grads(lambda x: torch.softmax(x.reshape(2, 12), 1).reshape(2, 3, 4), sx)[0])
arr("fx_lsm11_dx", grads(lambda x: torch.log_softmax(x.reshape(2, 12), 1).reshape(2, 3, 4), sx)[0])

# ---- Gemm as a Linear layer: A (3, 4), B (5, 4) with transB, C (5) ------------
ga = rng.standard_normal((3, 4)).astype(np.float32)
gb = rng.standard_normal((5, 4)).astype(np.float32)
gc = rng.standard_normal((5,)).astype(np.float32)
gda, gdb, gdc = grads(lambda a, b, c: 0.5 * (a @ b.t()) + 2.0 * c, ga, gb, gc)
for n, v in [("a", ga), ("b", gb), ("c", gc), ("da", gda), ("db", gdb), ("dc", gdc)]:
    arr("fx_gemm_" + n, v)

# ---- MatMul with batch broadcasting: (2, 1, 3, 4) x (3, 4, 5) -----------------
ma = rng.standard_normal((2, 1, 3, 4)).astype(np.float32)
mb = rng.standard_normal((3, 4, 5)).astype(np.float32)
mda, mdb = grads(torch.matmul, ma, mb)
for n, v in [("a", ma), ("b", mb), ("da", mda), ("db", mdb)]:
    arr("fx_matmul_" + n, v)

with open(OUT, "w") as f:
    f.write("/* elem_grad_torch.h — generated by tests/scripts/gen_elem_grad_fixtures.py\n"
            " * (PyTorch %s). Do not edit. The incoming gradient is fx_pw_g for the\n"
            " * pointwise cases and G[i] = 1 + i/8 (row-major over the output) elsewhere. */\n"
            % torch.__version__)
    f.write("#include <math.h>\n\n#define FX_UNUSED __attribute__((unused))\n\n")
    f.write("\n".join(lines) + "\n")
print("wrote", OUT)
