#!/usr/bin/python3
"""Train glassbox's scene model: a small CNN that classifies the synthetic
scenes of `glassbox concepts-gen` (village, forest, winter, harbor,
playground) — the model that `glassbox dissect`, `tcav` and `probe` are
demonstrated and tested on.

Run with Debian's interpreter (torch 1.13, onnx, numpy, PIL), CPU only:

    /usr/bin/python3 models/scenes/train_scenes.py --glassbox BUILD/glassbox
        [--out models/scenes] [--data /tmp/scenes_train] [--count 6000] [--epochs 15]
        [--threads 2] [--seed 0]

The data are made by the glassbox binary itself (`concepts-gen --count N
--size 64 --seed 1000`), read back with PIL from the Broden files: the scene
label is index.csv's `scene` column (label numbers 34..38 -> classes 0..4),
split `train` trains, split `val` (20%) measures the test accuracy.

Model (input (N, 3, 64, 64), normalised; output (N, 5) logits):

    3x3 conv(3->16)  + BN + ReLU -> relu1   (N, 16, 64, 64)
    2x2 max pool                            (N, 16, 32, 32)
    3x3 conv(16->32) + BN + ReLU -> relu2   (N, 32, 32, 32)
    2x2 max pool                            (N, 32, 16, 16)
    3x3 conv(32->64) + BN + ReLU -> relu3   (N, 64, 16, 16)
    2x2 max pool                            (N, 64,  8,  8)
    3x3 conv(64->64) + BN + ReLU -> relu4   (N, 64,  8,  8)
    global average pool + linear(64 -> 5)   (N, 5)

BN is folded into the convolutions by the eval-mode ONNX export; the ReLU
outputs are renamed relu1..relu4 so that users can name them (`--layer
relu3`). Preprocessing (in the sidecar, not in the graph): x = (pixel / 255 -
mean) / std per channel with the training set's statistics, 4 decimals.

Training: Adam (lr 2e-3, cosine decay), batch 64, cross-entropy, random
horizontal flips. Seeds fixed; torch.use_deterministic_algorithms(True).

Writes into --out: scenes_cnn.onnx, scenes_cnn.json (sidecar), metrics.json.
"""
import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from PIL import Image  # noqa: E402

SCENES = ["village", "forest", "winter", "harbor", "playground"]


def load(data):
    rows = list(csv.DictReader(open(os.path.join(data, "index.csv"))))
    cats = {r["name"]: int(r["first"]) for r in csv.DictReader(open(os.path.join(data, "category.csv")))}
    first = cats["scene"]
    x = np.stack([np.array(Image.open(os.path.join(data, "images", r["image"])).convert("RGB")) for r in rows])
    y = np.array([int(r["scene"]) - first for r in rows], dtype=np.int64)
    split = np.array([r["split"] for r in rows])
    return x, y, split


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class ScenesCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                                      *block(32, 64), nn.MaxPool2d(2), *block(64, 64))
        self.fc = nn.Linear(64, len(SCENES))

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def rename_relus(path):
    m = onnx.load(path)
    ren, k = {}, 0
    for node in m.graph.node:
        if node.op_type == "Relu":
            k += 1
            ren[node.output[0]] = "relu%d" % k
            node.output[0] = ren[node.output[0]]
            node.name = "relu%d" % k
        else:
            for i, name in enumerate(node.input):
                if name in ren:
                    node.input[i] = ren[name]
    for n in m.graph.node:
        for i, name in enumerate(n.input):
            if name in ren:
                n.input[i] = ren[name]
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glassbox", required=True)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--data", default="/tmp/scenes_train")
    ap.add_argument("--count", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    if not os.path.exists(os.path.join(a.data, "index.csv")):
        subprocess.check_call([a.glassbox, "concepts-gen", "--out", a.data, "--count", str(a.count), "--size", "64",
                               "--seed", "1000"])
    x, y, split = load(a.data)
    tr, te = split == "train", split != "train"
    mean = np.round(x[tr].reshape(-1, 3).mean(0) / 255.0, 4)
    std = np.round(x[tr].reshape(-1, 3).std(0) / 255.0, 4)
    X = (torch.from_numpy(x).float().div(255.0) - torch.tensor(mean).float()) / torch.tensor(std).float()
    X = X.permute(0, 3, 1, 2).contiguous()
    Y = torch.from_numpy(y)
    xtr, ytr, xte, yte = X[tr], Y[tr], X[te], Y[te]
    model = ScenesCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = a.epochs * ((len(xtr) + 63) // 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(a.seed)
    history = []
    for ep in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        tot = 0.0
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            xb = xtr[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = nn.functional.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
        model.eval()
        with torch.no_grad():
            acc = float((model(xte).argmax(1) == yte).float().mean())
        history.append({"epoch": ep + 1, "train_loss": tot / len(xtr), "test_accuracy": acc})
        print("epoch %d loss %.4f test acc %.4f (%.0f s)" % (ep + 1, tot / len(xtr), acc, time.time() - t0),
              flush=True)
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "scenes_cnn.onnx")
    model.eval()
    torch.onnx.export(model, xte[:1], path, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
    n_relu = rename_relus(path)
    assert n_relu == 4, n_relu
    with torch.no_grad():
        logits = model(xte)
    acc = float((logits.argmax(1) == yte).float().mean())
    side = {"input": {"name": "image", "layout": "NCHW", "channels": 3, "color": "rgb", "height": 64, "width": 64,
                      "resize": "stretch", "scale": 255, "mean": [float(v) for v in mean],
                      "std": [float(v) for v in std]},
            "labels": SCENES, "task": "classification", "dataset": "glassbox concepts-gen --size 64 --seed 1000",
            "test_accuracy": round(acc, 4), "trained_by": "models/scenes/train_scenes.py"}
    with open(os.path.join(a.out, "scenes_cnn.json"), "w") as f:
        json.dump(side, f, indent=2)
        f.write("\n")
    per_class = {SCENES[k]: float((logits.argmax(1)[yte == k] == k).float().mean()) for k in range(len(SCENES))}
    metrics = {"test_accuracy": acc, "per_class_accuracy": per_class, "n_train": int(tr.sum()),
               "n_test": int(te.sum()), "history": history, "seconds": time.time() - t0,
               "params": sum(p.numel() for p in model.parameters()),
               "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                            "python": platform.python_version()}}
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print("test accuracy %.4f; wrote %s" % (acc, path))


if __name__ == "__main__":
    sys.exit(main())
