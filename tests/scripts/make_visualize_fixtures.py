#!/usr/bin/python3
"""Fixtures for tests/unit/test_visualize.c (run with Debian's python3: numpy + onnx).

    /usr/bin/python3 tests/scripts/make_visualize_fixtures.py [--out tests/fixtures/visualize]

Writes:
  linear_unit.onnx   image (1, 1, 4, 4) -> Flatten -> Gemm(w (1, 16), b) -> y (1, 1): a single
                     linear unit whose maximizing input under an L2 penalty is known in closed
                     form: argmax_x w.x + b - lambda |x|^2 = w / (2 lambda).
  fft_spec_HxW.npy   a random half spectrum (2, H, W//2+1) (real part, imaginary part), and
  fft_img_HxW.npy    lucid's fft_image of it with decay_power 1:
                     numpy.fft.irfft2(scale * (re + i im), s=(H, W), norm='ortho') / 4,
                     scale = 1 / max(f, 1 / max(H, W)), f the frequency magnitude (lucid's
                     rfft2d_freqs), for (H, W) in (5, 6) and (4, 7) (odd and even sides).
Seeded (numpy default_rng(0)); reruns give identical files.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def linear_unit(path, rng):
    w = rng.standard_normal((1, 16)).astype(np.float32)
    b = np.array([0.25], np.float32)
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "w", "b"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "linear_unit",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_visualize_fixtures")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def rfft2d_freqs(h, w):
    """lucid/optvis/param/spatial.py rfft2d_freqs (the first w//2+1 columns)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[: w // 2 + 1]
    return np.sqrt(fx * fx + fy * fy)


def fft_fixture(out, h, w, rng):
    spec = rng.standard_normal((2, h, w // 2 + 1)).astype(np.float32)
    scale = 1.0 / np.maximum(rfft2d_freqs(h, w), 1.0 / max(h, w))
    img = np.fft.irfft2(scale * (spec[0].astype(np.float64) + 1j * spec[1]), s=(h, w), norm="ortho") / 4.0
    np.save(os.path.join(out, f"fft_spec_{h}x{w}.npy"), spec)
    np.save(os.path.join(out, f"fft_img_{h}x{w}.npy"), img.astype(np.float32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fixtures", "visualize"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    linear_unit(os.path.join(a.out, "linear_unit.onnx"), rng)
    for h, w in ((5, 6), (4, 7)):
        fft_fixture(a.out, h, w, rng)


if __name__ == "__main__":
    main()
