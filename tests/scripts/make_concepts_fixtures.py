#!/usr/bin/python3
"""Hand-made ONNX models for the concept tests (tests/unit/test_concepts*.c,
tests/cli/test_concepts.sh). Run with Debian's python3 (onnx, numpy):

    /usr/bin/python3 tests/scripts/make_concepts_fixtures.py [--out tests/fixtures/concepts]

color_detector.onnx  input "image" (N, 3, H, W) = pixel / 255 (sidecar: 64 x 64);
    layer "colors" (N, 12, H, W): unit k = relu(1 - beta * |x - c_k|^2) for the 12 named
    colors c_k of glassbox's synthetic scenes (src/concepts/scenegen.c, same
    order), beta = 2 / (smallest squared distance between two palette
    colors), so unit k is > 0 exactly on pixels of color k: an exact color
    detector. Head: global average pool + a fixed linear layer (5 logits).
    Network Dissection must match unit k to color k with IoU ~1.

tcav_toy.onnx  input "image" (N, 3, 32, 32) = pixel / 255; layer "feat"
    (N, 2, 32, 32) = relu(1x1 conv): channel 0 = redness relu(R - (G + B)/2),
    channel 1 = greenness relu(G - (R + B)/2). Logits (N, 2):
    logit_0 = mean(feat0^2) (class A: depends on red), logit_1 = mean(feat1^2)
    (class B: depends on green only). With concept "red patches" the TCAV
    of class 0 must be high and significant, of class 1 not significant.

graded_units.onnx  input "image" (N, 3, 48, 48); layer "units" (N, 8, 48, 48) =
    relu(1x1 conv(x) + a fixed random offset per unit and pixel): continuous
    activations without ties, to check the sketch's T_k against an exact sort.
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

COLORS = [(0, 0, 0), (255, 255, 255), (220, 30, 30), (40, 170, 50), (40, 70, 220), (240, 220, 40),
          (245, 140, 20), (140, 50, 170), (250, 150, 190), (130, 80, 30), (128, 128, 128), (40, 200, 210)]


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def color_detector(path):
    c = np.array(COLORS, dtype=np.float64) / 255.0                       # (12, 3)
    d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    dmin = d2[~np.eye(len(c), dtype=bool)].min()
    beta = 2.0 / dmin
    K = len(c)
    # beta*|x - c|^2 = beta*|x|^2 - 2 beta c.x + beta |c|^2, so
    # 1 - beta*d^2 = conv(x; 2 beta c, 1 - beta|c|^2) - beta * conv(x*x; ones)
    w_lin = (2 * beta * c).reshape(K, 3, 1, 1)
    b_lin = 1 - beta * (c ** 2).sum(1)
    w_sq = np.full((1, 3, 1, 1), -beta)
    rng = np.random.default_rng(0)
    w_fc = rng.normal(size=(5, K)) * 0.5
    nodes = [
        helper.make_node("Mul", ["image", "image"], ["sq"], name="square"),
        helper.make_node("Conv", ["sq", "w_sq"], ["sqsum"], name="sqsum"),
        helper.make_node("Conv", ["image", "w_lin", "b_lin"], ["lin"], name="lin"),
        helper.make_node("Add", ["lin", "sqsum"], ["score"], name="score"),
        helper.make_node("Relu", ["score"], ["colors"], name="colors"),
        helper.make_node("GlobalAveragePool", ["colors"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "w_fc", "b_fc"], ["logits"], name="fc", transB=1),
    ]
    g = helper.make_graph(
        nodes, "color_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
        [init("w_sq", w_sq), init("w_lin", w_lin), init("b_lin", b_lin), init("w_fc", w_fc),
         init("b_fc", np.zeros(5))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_concepts_fixtures")
    onnx.checker.check_model(m)
    onnx.save(m, path)
    side = {"input": {"name": "image", "layout": "NCHW", "channels": 3, "color": "rgb", "height": 64,
                      "width": 64, "resize": "stretch", "scale": 255, "mean": [0, 0, 0], "std": [1, 1, 1]},
            "labels": ["village", "forest", "winter", "harbor", "playground"], "task": "classification"}
    with open(path[:-5] + ".json", "w") as f:
        json.dump(side, f, indent=2)


def tcav_toy(path):
    w = np.array([[1, -0.5, -0.5], [-0.5, 1, -0.5]]).reshape(2, 3, 1, 1)
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["pre"], name="conv"),
        helper.make_node("Relu", ["pre"], ["feat"], name="feat"),
        helper.make_node("Mul", ["feat", "feat"], ["sq"], name="sq"),
        helper.make_node("GlobalAveragePool", ["sq"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["logits"], name="flat"),
    ]
    g = helper.make_graph(
        nodes, "tcav_toy",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [init("w", w)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_concepts_fixtures")
    onnx.checker.check_model(m)
    onnx.save(m, path)
    side = {"input": {"name": "image", "layout": "NCHW", "channels": 3, "color": "rgb", "height": 32,
                      "width": 32, "resize": "stretch", "scale": 255, "mean": [0, 0, 0], "std": [1, 1, 1]},
            "labels": ["red-dependent", "green-dependent"], "task": "classification"}
    with open(path[:-5] + ".json", "w") as f:
        json.dump(side, f, indent=2)


def graded_units(path):
    """A layer with continuous values, for checking the quantile sketch's T_k
    against the exact quantile: units = relu(1x1 conv(x) + a fixed random
    offset per unit and pixel), so no two activations tie."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 3, 1, 1))
    off = rng.normal(size=(1, 8, 48, 48))
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["lin"], name="conv"),
        helper.make_node("Add", ["lin", "off"], ["pre"], name="offset"),
        helper.make_node("Relu", ["pre"], ["units"], name="units"),
        helper.make_node("GlobalAveragePool", ["units"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["logits"], name="flat"),
    ]
    g = helper.make_graph(
        nodes, "graded_units",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 48, 48])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 8])],
        [init("w", w), init("off", off)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_concepts_fixtures")
    onnx.checker.check_model(m)
    onnx.save(m, path)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fixtures", "concepts"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    color_detector(os.path.join(a.out, "color_detector.onnx"))
    tcav_toy(os.path.join(a.out, "tcav_toy.onnx"))
    graded_units(os.path.join(a.out, "graded_units.onnx"))
    print("wrote", a.out)
