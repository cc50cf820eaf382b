#!/usr/bin/python3
"""Write tests/fixtures/pool_norm_torch.h: PyTorch reference outputs for the
pooling and normalisation kernels (src/ops/pool.c, src/ops/norm.c).

Run with the system python that has torch:  /usr/bin/python3 tests/scripts/gen_pool_norm_fixtures.py
The header is committed; re-run only to change the cases.
"""
import os
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(1234)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pool_norm_torch.h")

lines = []


def arr(name, a, ctype="float"):
    a = np.asarray(a).reshape(-1)
    if ctype == "float":
        body = ", ".join("%.9gf" % float(v) for v in a)
    else:
        body = ", ".join("%d" % int(v) for v in a)
    lines.append("static const %s %s[%d] = {%s};" % (ctype, name, max(len(a), 1), body))


def dims(shape, n=5):
    s = list(shape) + [0] * (n - len(shape))
    return "{" + ", ".join(str(v) for v in s) + "}"


# ---- pooling ---------------------------------------------------------------
pool_cases = []


def pool_case(name, op, shape, k, s, p, d=None, ceil=0, cip=0):
    nk = len(shape) - 2
    d = d or [1] * nk
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    if op == "MaxPool":
        f = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nk - 1]
        y = f(x, k, s, p, d, ceil_mode=bool(ceil))
    else:
        assert d == [1] * nk
        f = [F.avg_pool1d, F.avg_pool2d, F.avg_pool3d][nk - 1]
        y = f(x, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(cip))
    arr("fx_%s_x" % name, x.numpy())
    arr("fx_%s_y" % name, y.numpy())
    pad3 = lambda v, fill: list(v) + [fill] * (3 - len(v))
    pool_cases.append(
        '    {"%s", "%s", %d, %s, %s, %s, %s, %d, %d, %d, %s, fx_%s_x, %d, %s, fx_%s_y},'
        % (name, op, nk, "{%s}" % ", ".join(map(str, pad3(k, 1))),
           "{%s}" % ", ".join(map(str, pad3(s, 1))),
           "{%s}" % ", ".join(map(str, list(p) * 2 + [0] * (6 - 2 * nk))),  # ONNX order, symmetric
           "{%s}" % ", ".join(map(str, pad3(d, 1))), ceil, cip, len(shape), dims(shape), name,
           y.dim(), dims(y.shape), name))


pool_case("max1d_ceil", "MaxPool", (2, 3, 11), [3], [2], [1], ceil=1)
pool_case("max1d_dil", "MaxPool", (1, 2, 20), [4], [2], [2], d=[3])
pool_case("max2d_dil_ceil", "MaxPool", (1, 2, 9, 8), [3, 2], [2, 2], [1, 1], d=[2, 2], ceil=1)
pool_case("max2d_ceil_drop", "MaxPool", (1, 2, 4, 4), [2, 2], [3, 3], [1, 1], ceil=1)
pool_case("max3d_ceil", "MaxPool", (1, 2, 5, 6, 5), [2, 3, 2], [2, 2, 2], [1, 1, 1], ceil=1)
pool_case("avg1d_ceil_cip", "AveragePool", (2, 2, 10), [3], [2], [1], ceil=1, cip=1)
pool_case("avg1d_ceil", "AveragePool", (2, 2, 10), [3], [2], [1], ceil=1, cip=0)
pool_case("avg2d_ceil_cip", "AveragePool", (1, 3, 6, 7), [3, 3], [2, 2], [1, 1], ceil=1, cip=1)
pool_case("avg2d_ceil", "AveragePool", (1, 3, 6, 7), [3, 3], [2, 2], [1, 1], ceil=1, cip=0)
pool_case("avg2d_overhang_cip", "AveragePool", (1, 1, 5, 5), [2, 2], [2, 2], [0, 0], ceil=1, cip=1)
pool_case("avg2d_ceil_drop_cip", "AveragePool", (1, 2, 4, 4), [2, 2], [3, 3], [1, 1], ceil=1, cip=1)
pool_case("avg2d_pad_cip", "AveragePool", (2, 2, 7, 7), [3, 3], [1, 1], [1, 1], cip=1)
pool_case("avg3d_ceil_cip", "AveragePool", (1, 2, 5, 6, 5), [3, 2, 3], [2, 2, 2], [1, 1, 1],
          ceil=1, cip=1)
pool_case("avg3d", "AveragePool", (1, 2, 5, 6, 5), [3, 2, 3], [2, 1, 2], [1, 0, 1])

# ---- normalisation ---------------------------------------------------------
x = torch.from_numpy(rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
sc = torch.from_numpy(rng.standard_normal(3).astype(np.float32))
b = torch.from_numpy(rng.standard_normal(3).astype(np.float32))
mu = torch.from_numpy(rng.standard_normal(3).astype(np.float32))
var = torch.from_numpy(rng.random(3).astype(np.float32) + 0.1)
arr("fx_bn_x", x.numpy())
arr("fx_bn_scale", sc.numpy())
arr("fx_bn_bias", b.numpy())
arr("fx_bn_mean", mu.numpy())
arr("fx_bn_var", var.numpy())
arr("fx_bn_y", F.batch_norm(x, mu, var, sc, b, training=False, eps=1e-3).numpy())  # eps 1e-3

xi = torch.from_numpy((3 * rng.standard_normal((2, 3, 5, 4)) + 1).astype(np.float32))
arr("fx_in_x", xi.numpy())
arr("fx_in_y", F.instance_norm(xi, weight=sc, bias=b, eps=1e-5).numpy())

xl = torch.from_numpy(rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
wl = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
bl = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
arr("fx_ln_x", xl.numpy())
arr("fx_ln_w", wl.numpy())
arr("fx_ln_b", bl.numpy())
arr("fx_ln_y", F.layer_norm(xl, (4, 5), wl, bl, eps=1e-5).numpy())  # axis = -2

xr = torch.from_numpy(rng.standard_normal((2, 7, 3, 3)).astype(np.float32))
arr("fx_lrn_x", xr.numpy())
# odd sizes only: for an even size torch centres the window differently from ONNX
arr("fx_lrn3_y", F.local_response_norm(xr, 3, alpha=2e-4, beta=0.5, k=2.0).numpy())
arr("fx_lrn5_y", F.local_response_norm(xr, 5, alpha=1e-2, beta=0.75, k=1.0).numpy())

with open(OUT, "w") as f:
    f.write("/* pool_norm_torch.h — generated by tests/scripts/gen_pool_norm_fixtures.py\n"
            " * (PyTorch %s). Do not edit. */\n" % torch.__version__)
    f.write("#include <stdint.h>\n\n")
    f.write("\n".join(lines) + "\n\n")
    f.write("typedef struct {\n"
            "    const char *name, *op;\n"
            "    int nk;\n"
            "    int64_t kernel[3], strides[3], pads[6], dilations[3];\n"
            "    int ceil_mode, count_include_pad;\n"
            "    int x_ndim; int64_t x_dims[5]; const float *x;\n"
            "    int y_ndim; int64_t y_dims[5]; const float *y;\n"
            "} pool_fixture;\n\n")
    f.write("static const pool_fixture pool_fixtures[] = {\n" + "\n".join(pool_cases) + "\n};\n")
print("wrote", OUT)
