#!/usr/bin/python3
"""Make an untrained up-convolutional decoder for `glassbox train-decoder` (Dosovitskiy & Brox
2016, "UpconvNet"): features of one layer of the default Fashion-MNIST model -> a (1, 28, 28)
image in the model's input space.

    /usr/bin/python3 models/make_decoder.py --in-dim 10 --out models/default/decoder_logits_init.onnx
    /usr/bin/python3 models/make_decoder.py --in-dim 64 --out decoder_pool_init.onnx   # pooled features

Graph (input "features" (N, D), output "image" (N, 1, 28, 28)):

    Gemm D -> 16*7*7, Relu, Reshape (N, 16, 7, 7)
    ConvTranspose 16 -> 16, 4x4, stride 2, pad 1, Relu      (N, 16, 14, 14)
    ConvTranspose 16 -> 8, 4x4, stride 2, pad 1, Relu       (N, 8, 28, 28)
    Conv 8 -> 1, 3x3, pad 1                                  (N, 1, 28, 28)

Weights and biases are drawn like PyTorch's default initialization (uniform in
+-1/sqrt(fan_in)) from numpy.random.default_rng(--seed), so the file is reproducible.
The weights are then trained by glassbox itself (glassbox train-decoder), not here.
Needs numpy and onnx only.
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in-dim", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)

    def u(shape, fan_in):
        b = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)

    D = a.in_dim
    inits = [
        numpy_helper.from_array(u((16 * 49, D), D), "fc.weight"),
        numpy_helper.from_array(u((16 * 49,), D), "fc.bias"),
        numpy_helper.from_array(np.array([-1, 16, 7, 7], np.int64), "shape"),
        # ConvTranspose weights are (C_in, C_out, kh, kw); PyTorch's fan_in for them is C_out * k * k
        numpy_helper.from_array(u((16, 16, 4, 4), 16 * 16), "up1.weight"),
        numpy_helper.from_array(u((16,), 16 * 16), "up1.bias"),
        numpy_helper.from_array(u((16, 8, 4, 4), 8 * 16), "up2.weight"),
        numpy_helper.from_array(u((8,), 8 * 16), "up2.bias"),
        numpy_helper.from_array(u((1, 8, 3, 3), 8 * 9), "out.weight"),
        numpy_helper.from_array(u((1,), 8 * 9), "out.bias"),
    ]
    up = dict(kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["fc"], transB=1, name="fc"),
        helper.make_node("Relu", ["fc"], ["fc_relu"], name="fc_relu"),
        helper.make_node("Reshape", ["fc_relu", "shape"], ["map"], name="reshape"),
        helper.make_node("ConvTranspose", ["map", "up1.weight", "up1.bias"], ["up1"], name="up1", **up),
        helper.make_node("Relu", ["up1"], ["up1_relu"], name="up1_relu"),
        helper.make_node("ConvTranspose", ["up1_relu", "up2.weight", "up2.bias"], ["up2"], name="up2", **up),
        helper.make_node("Relu", ["up2"], ["up2_relu"], name="up2_relu"),
        helper.make_node("Conv", ["up2_relu", "out.weight", "out.bias"], ["image"], name="out",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    g = helper.make_graph(nodes, "upconv_decoder",
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", D])],
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="models/make_decoder.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, a.out)


if __name__ == "__main__":
    main()
