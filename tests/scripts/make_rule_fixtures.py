#!/usr/bin/python3
"""Reference outputs for glassbox's backward API and shipped backward rules.

A small seeded ReLU network (two ReLUs, a max-pool, a residual-free head) is
exported to ONNX, and PyTorch computes, for the top-1 class of each batch
item (a one-hot seed per item):
  grad.npy      plain gradient d logit / d input (torch.autograd.grad)
  guided.npy    Guided Backprop (Springenberg et al. 2015): through each ReLU
                the gradient is (x > 0) * (g > 0) * g
  deconv.npy    DeconvNet (Zeiler & Fergus 2014): through each ReLU the
                gradient is (g > 0) * g, whatever the forward input
Both rules are implemented here as custom autograd Functions replacing
torch.relu, the same modification Captum's GuidedBackprop and Deconvolution
make with module hooks.

usage: /usr/bin/python3 tests/scripts/make_rule_fixtures.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "rules")


class GuidedRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0) * (g > 0)


class DeconvRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


class ReluNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2 = torch.nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(12, 6)
        self.relu = torch.relu

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(7)
    net = ReluNet().eval()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(8))
    path = os.path.join(OUT, "relu_net.onnx")
    torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    np.save(os.path.join(OUT, "input.npy"), x.numpy())
    with torch.no_grad():
        logits = net(x)
    np.save(os.path.join(OUT, "logits.npy"), logits.numpy())
    top = logits.argmax(dim=1)
    seed = torch.nn.functional.one_hot(top, logits.shape[1]).float()
    for name, relu in (("grad", torch.relu), ("guided", GuidedRelu.apply), ("deconv", DeconvRelu.apply)):
        net.relu = relu
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(xg), xg, grad_outputs=seed)
        np.save(os.path.join(OUT, name + ".npy"), g.numpy().astype(np.float32))
        print(name, "norm", float(g.norm()))
    for f in sorted(os.listdir(OUT)):
        print("wrote", f, os.path.getsize(os.path.join(OUT, f)), "bytes")


if __name__ == "__main__":
    main()
