#!/usr/bin/python3
"""make_train_fixture.py — PyTorch reference for glassbox's training loop.

Writes tests/fixtures/train/ (read by tests/unit/test_train.c):

  model.onnx            a small seeded CNN at its initial weights
                        (Conv-Relu-MaxPool-Conv-Relu-MaxPool-Flatten-Gemm),
                        input (16, 1, 12, 12), logits (16, 10)
  x.npy  (400, 1, 12, 12) float32   inputs: 25 batches of 16
  y.npy  (400,) int64               class labels (cross-entropy runs)
  t.npy  (400, 10) float32          regression targets (MSE runs)
  logits0.npy (16, 10) float32      logits of batch 0 at the initial weights
  grads0.npy  (P,) float32          d mean-CE(batch 0) / d params at the
                                    initial weights, flattened in the order
                                    of the ONNX initializers
  <run>.loss.npy   (100,) float32   the loss of every step (computed on the
                                    step's batch before its update)
  <run>.params.npy (P,) float32     every parameter after the 100 steps,
                                    same flat order

Step k (0-based) uses batch k % 25, i.e. 4 epochs over the 400 samples in a
fixed order. The runs (the C test hard-codes the same table):

  sgd        SGD(lr=0.03, momentum=0.9)                                   CE
  adam       Adam(lr=3e-3)                                                CE
  nesterov   SGD(lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3) MSE
  damp       SGD(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=5e-4) CE
  adam_wd    Adam(lr=2e-3, betas=(0.85, 0.99), eps=1e-6, weight_decay=1e-2) MSE
  adamw      AdamW(lr=3e-3, weight_decay=0.05)                            CE

Conditioning. Training a ReLU/MaxPool network is piecewise smooth: when a
pre-activation crosses zero (or a pooling window's maximum changes hands),
the gradient jumps, and a trajectory that passes close to such a kink can
turn a float32 rounding difference into a visible change of the loss curve
that later steps amplify. Two correct implementations then disagree. The
hyperparameters above were chosen so that no run sits near such a
bifurcation: `--check-stability` retrains every run from initial weights
perturbed by a relative 1e-6 (about ten times the float32 noise between two
implementations) and prints the largest loss deviation over the 100 steps;
all stay below 1e-4 (with SGD at lr=0.05, two seeds in eight jumped to
1e-1). Re-run it after changing the model, data or table.

Run with the system interpreter (it has torch and onnx):
    /usr/bin/python3 tests/scripts/make_train_fixture.py [--out DIR] [--check-stability]
"""
import argparse
import copy
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

N_SAMPLES, BATCH, STEPS, CLASSES = 400, 16, 100, 10


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)   # (N, 4, 12, 12)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)   # (N, 8, 6, 6)
        self.fc = nn.Linear(8 * 3 * 3, CLASSES)      # (N, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # (N, 4, 6, 6)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # (N, 8, 3, 3)
        return self.fc(torch.flatten(x, 1))


RUNS = [
    ("sgd", "ce", lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.9)),
    ("adam", "ce", lambda p: torch.optim.Adam(p, lr=3e-3)),
    ("nesterov", "mse", lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("damp", "ce", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=5e-4)),
    ("adam_wd", "mse", lambda p: torch.optim.Adam(p, lr=2e-3, betas=(0.85, 0.99), eps=1e-6, weight_decay=1e-2)),
    ("adamw", "ce", lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.05)),
]


def make_data(rng):
    """Class prototypes plus noise, so the loss has something to learn."""
    protos = rng.standard_normal((CLASSES, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, CLASSES, N_SAMPLES).astype(np.int64)
    x = (0.8 * protos[y] + rng.standard_normal((N_SAMPLES, 1, 12, 12))).astype(np.float32)
    t = (0.5 * np.eye(CLASSES)[y] + 0.3 * rng.standard_normal((N_SAMPLES, CLASSES))).astype(np.float32)
    return x, y, t


def loss_fn(kind, logits, yb, tb):
    return F.cross_entropy(logits, yb) if kind == "ce" else F.mse_loss(logits, tb)


def flat_params(model, names):
    sd = dict(model.named_parameters())
    return np.concatenate([sd[n].detach().numpy().ravel() for n in names]).astype(np.float32)


def flat_grads(model, names):
    sd = dict(model.named_parameters())
    return np.concatenate([sd[n].grad.numpy().ravel() for n in names]).astype(np.float32)


def train(model0, make_opt, kind, xs, ys, ts, noise=0.0, seed=0):
    """100 steps from a copy of model0 (weights scaled by 1 + noise * N(0, 1));
    returns the per-step losses and the trained model."""
    m = copy.deepcopy(model0)
    if noise:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(1 + noise * torch.randn(p.shape, generator=gen))
    opt = make_opt(m.parameters())
    losses = []
    for step in range(STEPS):
        b = step % (N_SAMPLES // BATCH)
        sl = slice(b * BATCH, (b + 1) * BATCH)
        opt.zero_grad()
        loss = loss_fn(kind, m(xs[sl]), ys[sl], ts[sl])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses, dtype=np.float32), m


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "train"))
    ap.add_argument("--check-stability", action="store_true",
                    help="retrain each run from perturbed weights and report the loss deviation")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model0 = SmallCNN().eval()
    x, y, t = make_data(rng)

    path = os.path.join(args.out, "model.onnx")
    torch.onnx.export(model0, torch.from_numpy(x[:BATCH]), path, input_names=["x"], output_names=["logits"],
                      opset_version=13, export_params=True, do_constant_folding=False,
                      keep_initializers_as_inputs=False, training=torch.onnx.TrainingMode.EVAL)
    names = [i.name for i in onnx.load(path).graph.initializer]
    assert sorted(names) == sorted(n for n, _ in model0.named_parameters()), names

    np.save(os.path.join(args.out, "x.npy"), x)
    np.save(os.path.join(args.out, "y.npy"), y)
    np.save(os.path.join(args.out, "t.npy"), t)

    xs, ys, ts = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(t)
    m = copy.deepcopy(model0)
    logits = m(xs[:BATCH])
    np.save(os.path.join(args.out, "logits0.npy"), logits.detach().numpy().astype(np.float32))
    F.cross_entropy(logits, ys[:BATCH]).backward()
    np.save(os.path.join(args.out, "grads0.npy"), flat_grads(m, names))

    for name, kind, make_opt in RUNS:
        losses, m = train(model0, make_opt, kind, xs, ys, ts)
        np.save(os.path.join(args.out, name + ".loss.npy"), losses)
        np.save(os.path.join(args.out, name + ".params.npy"), flat_params(m, names))
        line = "%-9s loss %.4f -> %.4f" % (name, losses[0], losses[-1])
        if args.check_stability:
            dev = [np.abs(losses - train(model0, make_opt, kind, xs, ys, ts, 1e-6, s)[0]).max() for s in range(8)]
            line += "   weights * (1 + 1e-6 N(0,1)), 8 seeds: max |loss diff| %.1e" % max(dev)
        print(line)


if __name__ == "__main__":
    main()
