#!/usr/bin/python3
"""Fashion-MNIST images as model inputs of the default model, for `glassbox train-decoder` and
`glassbox features --dataset` (nothing is downloaded: the IDX files of Debian's
dataset-fashion-mnist package are read with gzip + numpy, as models/train_default.py does).

    /usr/bin/python3 tests/scripts/fashion_mnist_npy.py --split train --count 20000 --out x.npy
        [--data /usr/share/datasets/fashion-mnist] [--labels y.npy]

Writes (count, 1, 28, 28) float32: (pixel / 255 - 0.286) / 0.353 (models/default/fashion_cnn.json),
the first `count` images of the split in file order.
"""
import argparse
import gzip
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["train", "t10k"], default="train")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels")
    a = ap.parse_args()
    with gzip.open(os.path.join(a.data, f"{a.split}-images-idx3-ubyte.gz")) as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[: a.count]
    x = ((img.astype(np.float64) / 255 - 0.286) / 0.353).astype(np.float32)
    np.save(a.out, x)
    if a.labels:
        with gzip.open(os.path.join(a.data, f"{a.split}-labels-idx1-ubyte.gz")) as f:
            np.save(a.labels, np.frombuffer(f.read(), np.uint8, offset=8)[: a.count].astype(np.int64))


if __name__ == "__main__":
    main()
