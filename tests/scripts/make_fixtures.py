#!/usr/bin/python3
"""Write the small model fixtures used by the bad-input tests.

Run with the system interpreter that has torch and onnx:

    /usr/bin/python3 tests/scripts/make_fixtures.py

Files written into tests/fixtures/models/ (each well under 50 KB, committed):

* tiny_cnn.onnx       a seeded PyTorch CNN, opset 13, input 'input' of shape
                      (batch, 3, 16, 16) with a dynamic batch, output 'logits'
                      (batch, 5): Conv(stride 2, pad 1) + BatchNormalization +
                      Relu + MaxPool + Conv + GlobalAveragePool + Flatten + Gemm.
                      Exported with TrainingMode.PRESERVE on a model in eval
                      mode, so BatchNormalization stays a node (the default
                      EVAL export folds it into the Conv weights).
* tiny_cnn.input.npy  float32 (2, 3, 16, 16), seeded normal values.
* tiny_cnn.logits.npy float32 (2, 5), PyTorch's output for that input.
* unknown_op.onnx     Relu -> FooBar -> NonMaxSuppression: two op types
                      glassbox does not support, with node names, so the load
                      error must name both.
* int32_input.onnx    one graph input of element type INT32 (-> Identity).
* multi_output.onnx   input 'x' float32 (1, 4); three outputs whose names
                      need sanitising into file names: 'head/out:0' and
                      'head:out/0' both map to head_out_0 (the second becomes
                      head_out_0_2), and '../escape' maps to _._escape.
                      Outputs are Relu(x), Neg(x) and Identity(x).
* writes_input.onnx, dup_input.onnx, empty_required_input.onnx
                      malformed graphs that must be refused cleanly (see
                      malformed_graphs below).

The script checks every file it writes: the ONNX models are reloaded with
onnx.load, the CNN is re-run through onnx.reference when available, and the
size limit is asserted.
"""
import os
import sys
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "models")
MAX_BYTES = 50 * 1024


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)   # (N,3,16,16) -> (N,8,8,8)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.pool = torch.nn.MaxPool2d(2)                                         # -> (N,8,4,4)
        self.conv2 = torch.nn.Conv2d(8, 16, kernel_size=3, padding=1)             # -> (N,16,4,4)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)                                  # -> (N,16,1,1)
        self.fc = torch.nn.Linear(16, 5)                                          # -> (N,5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.gap(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


def check_size(path):
    n = os.path.getsize(path)
    assert n < MAX_BYTES, f"{path}: {n} bytes (limit {MAX_BYTES})"
    print(f"wrote {os.path.relpath(path)} ({n} bytes)")


def tiny_cnn():
    torch.manual_seed(1234)
    net = TinyCNN()
    # Non-trivial BatchNorm statistics, so the normalisation is not a no-op.
    with torch.no_grad():
        net.bn1.running_mean.copy_(torch.randn(8) * 0.1)
        net.bn1.running_var.copy_(torch.rand(8) + 0.5)
        net.bn1.weight.copy_(torch.rand(8) + 0.5)
        net.bn1.bias.copy_(torch.randn(8) * 0.1)
    net.eval()
    gen = torch.Generator().manual_seed(99)
    x = torch.randn(2, 3, 16, 16, generator=gen)
    with torch.no_grad():
        y = net(x)
    path = os.path.join(OUT, "tiny_cnn.onnx")
    with warnings.catch_warnings():
        # PRESERVE warns about constant folding in training mode; the model
        # is in eval mode, so BatchNormalization is exported for inference.
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    np.save(os.path.join(OUT, "tiny_cnn.input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "tiny_cnn.logits.npy"), y.numpy().astype(np.float32))

    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    print("tiny_cnn ops:", " ".join(ops))
    for want in ("Conv", "BatchNormalization", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"):
        assert want in ops, f"export lost {want}: {ops}"
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 16, 16], dims
    bn = [n for n in m.graph.node if n.op_type == "BatchNormalization"][0]
    assert len(bn.output) == 1, "BatchNormalization exported in training form"
    try:  # independent check through ONNX's NumPy reference (onnx >= 1.13)
        from onnx.reference import ReferenceEvaluator
        ref = ReferenceEvaluator(m).run(None, {"input": x.numpy()})[0]
        err = np.max(np.abs(ref - y.numpy()))
        assert err < 1e-4, f"onnx.reference disagrees with torch by {err}"
        print(f"onnx.reference agrees with torch (max abs diff {err:.2e})")
    except ImportError:
        print("onnx.reference not available (onnx < 1.13): logits not cross-checked")
    for f in ("tiny_cnn.onnx", "tiny_cnn.input.npy", "tiny_cnn.logits.npy"):
        check_size(os.path.join(OUT, f))


def save_model(graph, name, opset=13):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="glassbox make_fixtures.py")
    model.ir_version = 8
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    onnx.load(path)  # parses
    check_size(path)
    return model


def unknown_op():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3])
    y = helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu_ok"),
        helper.make_node("FooBar", ["r"], ["boxes"], name="mystery_node", alpha=0.5),
        helper.make_node("NonMaxSuppression", ["boxes", "r"], ["selected"], name="nms_node"),
    ]
    g = helper.make_graph(nodes, "unknown_op", [x], [y])
    save_model(g, "unknown_op.onnx")


def int32_input():
    x = helper.make_tensor_value_info("ids", TensorProto.INT32, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [2, 3])
    g = helper.make_graph([helper.make_node("Identity", ["ids"], ["y"], name="ident")], "int32_input", [x], [y])
    m = save_model(g, "int32_input.onnx")
    onnx.checker.check_model(m)


def multi_output():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    names = ["head/out:0", "head:out/0", "../escape"]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in names]
    nodes = [
        helper.make_node("Relu", ["x"], [names[0]], name="relu"),
        helper.make_node("Neg", ["x"], [names[1]], name="neg"),
        helper.make_node("Identity", ["x"], [names[2]], name="ident"),
    ]
    g = helper.make_graph(nodes, "multi_output", [x], outs)
    m = save_model(g, "multi_output.onnx")
    onnx.checker.check_model(m)
    np.save(os.path.join(OUT, "multi_output.input.npy"),
            np.array([[-1.5, 0.0, 2.0, -0.25]], dtype=np.float32))
    check_size(os.path.join(OUT, "multi_output.input.npy"))


def malformed_graphs():
    """Structurally invalid graphs the fuzzer found crashes with (kept small
    and explicit so the unit test pins each fix):
    - writes_input.onnx: a Conv whose output 'y' is also declared as a graph
      input (the node would write into the caller's input buffer);
    - dup_input.onnx: graph input 'x' listed twice;
    - empty_required_input.onnx: Conv(x, '', B): the required weight input
      is '' (the ONNX spelling of an omitted optional input) while the bias
      after it is present."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])
    w = helper.make_tensor_value_info("W", TensorProto.FLOAT, [1, 1, 3, 3])
    y_in = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])
    conv = helper.make_node("Conv", ["x", "W"], ["y"], name="conv", kernel_shape=[3, 3])
    save_model(helper.make_graph([conv], "writes_input", [x, w, y_in], [y]), "writes_input.onnx")
    save_model(helper.make_graph([conv], "dup_input", [x, w, x], [y]), "dup_input.onnx")
    # W omitted but the bias present, so the gap is not a trailing omission.
    b = helper.make_tensor_value_info("B", TensorProto.FLOAT, [1])
    conv_empty = helper.make_node("Conv", ["x", "", "B"], ["y"], name="conv_no_w", kernel_shape=[3, 3])
    save_model(helper.make_graph([conv_empty], "empty_required_input", [x, b], [y]), "empty_required_input.onnx")


def main():
    os.makedirs(OUT, exist_ok=True)
    tiny_cnn()
    unknown_op()
    int32_input()
    multi_output()
    malformed_graphs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
