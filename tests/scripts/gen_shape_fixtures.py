#!/usr/bin/python3
"""Write tests/fixtures/shape_ops_ref.h: NumPy and PyTorch reference outputs
for the data-movement, reduction and resize kernels (src/ops/index.c,
src/ops/reduce.c, src/ops/resize.c).

NumPy gives Slice (Python slicing), Pad (np.pad), Transpose, Expand
(broadcasting), Gather (np.take) and the reductions (in float64);
PyTorch's F.interpolate gives Resize/Upsample (bilinear, trilinear, linear,
nearest, nearest-exact), an implementation independent of ONNX's.

Run with the system python that has torch:
    /usr/bin/python3 tests/scripts/gen_shape_fixtures.py
The header is committed; re-run only to change the cases.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

rng = np.random.default_rng(20240611)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "shape_ops_ref.h")
I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1

lines = []


def cfloat(v):
    t = "%.9g" % float(v)
    if not any(c in t for c in ".en"):
        t += ".0"
    return t + "f"


def arr(name, a, ctype="float"):
    a = np.asarray(a).reshape(-1)
    if ctype == "float":
        body = ", ".join(cfloat(v) for v in a)
    else:
        body = ", ".join("INT64_MIN" if int(v) == I64_MIN else "INT64_C(%d)" % int(v) for v in a)
    lines.append("static const %s %s[%d] = {%s};" % (ctype, name, max(len(a), 1), body))


def shape(name, s):
    s = list(s)
    lines.append("static const int64_t %s[%d] = {%s}; /* ndim %d */" %
                 (name, max(len(s), 1), ", ".join(map(str, s)) or "0", len(s)))


# ---- Slice: Python slicing of a 3x4x5 arange -----------------------------------
x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
arr("fx_slice_x", x)
slices = {
    # name: (starts, ends, axes, steps, numpy index)
    "neg": ([-1, 3, 0], [I64_MIN, 0, I64_MAX], [0, 1, 2], [-1, -2, 2],
            (slice(None, None, -1), slice(3, 0, -2), slice(0, None, 2))),
    "clip": ([1, -3], [1000, -1], [-2, 2], [1, 1], (slice(None), slice(1, 1000), slice(-3, -1))),
    "empty": ([2], [1], [0], [1], (slice(2, 1),)),
    "far": ([100], [-100], [2], [-3], (slice(None), slice(None), slice(100, -100, -3))),
}
for k, (st, en, ax, sp, idx) in slices.items():
    y = x[idx]
    arr("fx_slice_%s_starts" % k, st, "int64_t")
    arr("fx_slice_%s_ends" % k, en, "int64_t")
    arr("fx_slice_%s_axes" % k, ax, "int64_t")
    arr("fx_slice_%s_steps" % k, sp, "int64_t")
    arr("fx_slice_%s_y" % k, y)
    shape("fx_slice_%s_shape" % k, y.shape)

# ---- Pad: np.pad ---------------------------------------------------------------
xp = rng.standard_normal((2, 3)).astype(np.float32)
arr("fx_pad_x", xp)
pw = ((3, 2), (4, 5))  # ONNX pads [3, 4, 2, 5]
for mode in ("reflect", "edge"):
    y = np.pad(xp, pw, mode=mode)
    arr("fx_pad_%s_y" % mode, y)
    shape("fx_pad_%s_shape" % mode, y.shape)
y = np.pad(xp, pw, mode="constant", constant_values=1.5)
arr("fx_pad_constant_y", y)
shape("fx_pad_constant_shape", y.shape)
# negative pads crop: ONNX pads [-1, 2, 0, -3] on a 3x6 input
xc = rng.standard_normal((3, 6)).astype(np.float32)
y = np.pad(xc, ((0, 0), (2, 0)), mode="constant")[1:, :-3]
arr("fx_crop_x", xc)
arr("fx_crop_y", y)
shape("fx_crop_shape", y.shape)
# reflect with a crop on the other side: pads [0, 3, 0, -2] on 2x4
xr = rng.standard_normal((2, 4)).astype(np.float32)
y = np.pad(xr, ((0, 0), (3, 0)), mode="reflect")[:, :-2]
arr("fx_reflcrop_x", xr)
arr("fx_reflcrop_y", y)
shape("fx_reflcrop_shape", y.shape)

# ---- Transpose / Expand / Gather --------------------------------------------------
xt = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
arr("fx_tr_x", xt)
arr("fx_tr_perm_y", np.transpose(xt, (2, 0, 3, 1)))
arr("fx_tr_rev_y", np.transpose(xt))
xe = rng.standard_normal((3, 1)).astype(np.float32)
arr("fx_expand_x", xe)
arr("fx_expand_y", xe * np.ones((2, 1, 4), np.float32))
xg = rng.standard_normal((3, 4, 2)).astype(np.float32)
ig = np.array([[0, -1], [2, 1], [-4, 3]], np.int64)
arr("fx_gather_x", xg)
arr("fx_gather_idx", ig, "int64_t")
arr("fx_gather_y", np.take(xg, ig % 4, axis=1))

# ---- reductions (float64) ----------------------------------------------------------
xr = rng.standard_normal((2, 3, 4))
arr("fx_red_x", xr.astype(np.float32))
x64 = xr.astype(np.float32).astype(np.float64)


def lse(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)


reds = {
    "mean_1": x64.mean(axis=1),
    "sum_02": x64.sum(axis=(0, 2), keepdims=True),
    "max_m1": x64.max(axis=-1, keepdims=True),
    "min_all": x64.min(keepdims=True),
    "prod_1": x64.prod(axis=1, keepdims=True),
    "sumsq_2": (x64 ** 2).sum(axis=2, keepdims=True),
    "l1_0": np.abs(x64).sum(axis=0, keepdims=True),
    "l2_12": np.sqrt((x64 ** 2).sum(axis=(1, 2), keepdims=True)),
    "logsum_1": np.log((np.abs(x64) + 0.1).sum(axis=1, keepdims=True)),
    "lse_2": lse(x64 * 50, (2,))[..., None],
}
for k, v in reds.items():
    arr("fx_red_%s" % k, v)

# ---- Resize: torch.nn.functional.interpolate ------------------------------------------
xi = torch.from_numpy(rng.standard_normal((1, 2, 3, 4)).astype(np.float32))
arr("fx_rz_x", xi.numpy())
rz = {
    "bilinear_hp": F.interpolate(xi, size=(5, 7), mode="bilinear", align_corners=False),
    "bilinear_ac": F.interpolate(xi, size=(5, 7), mode="bilinear", align_corners=True),
    "bilinear_down": F.interpolate(xi, size=(2, 3), mode="bilinear", align_corners=False),
    "nearest_x2": F.interpolate(xi, scale_factor=2, mode="nearest"),
    "nearest_exact": F.interpolate(xi, size=(5, 7), mode="nearest-exact"),
}
for k, v in rz.items():
    arr("fx_rz_%s" % k, v.numpy())
x5 = torch.from_numpy(rng.standard_normal((1, 1, 2, 3, 4)).astype(np.float32))
arr("fx_rz3_x", x5.numpy())
arr("fx_rz3_trilinear", F.interpolate(x5, size=(3, 5, 6), mode="trilinear", align_corners=False).numpy())
x1 = torch.from_numpy(rng.standard_normal((1, 2, 5)).astype(np.float32))
arr("fx_rz1_x", x1.numpy())
arr("fx_rz1_linear_ac", F.interpolate(x1, size=8, mode="linear", align_corners=True).numpy())

with open(OUT, "w") as f:
    f.write("/* shape_ops_ref.h — generated by tests/scripts/gen_shape_fixtures.py\n"
            " * (NumPy %s, PyTorch %s). Do not edit. */\n" % (np.__version__, torch.__version__))
    f.write("#include <stdint.h>\n\n")
    f.write("\n".join(lines) + "\n")
print("wrote", OUT)
