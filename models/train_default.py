#!/usr/bin/python3
"""Train glassbox's embedded default model: a small CNN on Fashion-MNIST.

Run with Debian's interpreter (torch 1.13, onnx 1.12, numpy, PIL), CPU only:

    /usr/bin/python3 models/train_default.py [--out models/default] [--epochs 12]
        [--threads 2] [--seed 0] [--data /usr/share/datasets/fashion-mnist]

Nothing is downloaded: the data are the IDX files of the Debian package
dataset-fashion-mnist, read with gzip + numpy.

Model (input (N, 1, 28, 28), normalised; output (N, 10) logits):

    3x3 conv(1->C1)  + BN + ReLU      (N, C1, 28, 28)
    3x3 conv(C1->C1) + BN + ReLU      (N, C1, 28, 28)
    2x2 max pool                      (N, C1, 14, 14)
    3x3 conv(C1->C2) + BN + ReLU      (N, C2, 14, 14)
    3x3 conv(C2->C2) + BN + ReLU      (N, C2, 14, 14)
    2x2 max pool                      (N, C2,  7,  7)
    3x3 conv(C2->C3) + BN + ReLU      (N, C3,  7,  7)
    3x3 conv(C3->C3) + BN + ReLU      (N, C3,  7,  7)   <- last spatial map (CAM)
    global average pool               (N, C3)
    linear(C3 -> 10)                  (N, 10)

with widths (C1, C2, C3) = (16, 32, 64) by default. Convolutions have no bias
(the BN that follows has one); the ONNX exporter folds each BN into its conv
(eval-mode export), so the ONNX graph is Conv/Relu/MaxPool/GlobalAveragePool/
Flatten/Gemm only. The global-average-pool + linear head makes class
activation maps (CAM, Zhou et al. 2016) exact: logit_c = b_c + sum_k w_ck *
mean_ij A_k[i, j].

Preprocessing (recorded in the sidecar JSON, NOT baked into the ONNX model):
x = (pixel / 255 - mean) / std with the training set's pixel mean and std,
rounded to 4 decimals (0.2860, 0.3530).

Training: Adam, batch 128, one-cycle learning-rate schedule (peak 3e-3),
cross-entropy, random horizontal flips (Fashion-MNIST garments are roughly
left-right symmetric) and random translations of up to --shift pixels, on all
60,000 training images. Seeds: Python, NumPy and torch are seeded with
--seed; the shuffling and augmentation use their own seeded generators;
torch.use_deterministic_algorithms(True). With the same PyTorch build and
thread count a rerun reproduces the weights bit for bit.

Writes into --out:
    fashion_cnn.onnx        opset 13, input "image" (batch, 1, 28, 28),
                            output "logits" (batch, 10), dynamic batch axis
    fashion_cnn.json        sidecar: preprocessing, labels, test accuracy
    samples/K_<name>.png    for each class K, the first test image that the
                            model classifies correctly with probability >=
                            --min-conf (28x28 grayscale uint8, as in the data)
    samples/expected.json   per sample: test index, label, PyTorch's logits
                            and softmax probabilities for the preprocessed
                            image
    metrics.json            per-class test accuracy, confusion matrix,
                            per-epoch loss/accuracy, timings, versions (the
                            numbers quoted in README.md)
"""

import argparse
import gzip
import json
import os
import platform
import random
import sys
import time

# On a shared machine, OpenMP threads that spin while waiting for a
# descheduled peer burn several times the useful CPU time (measured here:
# 2 threads used 5x the CPU of 1 thread per batch, and ran slower). A passive
# wait policy makes 2 threads cost the same CPU as 1. libgomp reads this when
# torch loads it, so it must be set before the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SAMPLE_NAMES = ["tshirt", "trouser", "pullover", "dress", "coat",
                "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


# ----------------------------------------------------------------------------
# Data

def read_idx(path):
    """Read a gzipped IDX file (big-endian header: magic 0x0000 08 <ndim>,
    then ndim uint32 sizes, then uint8 data) into a numpy uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    data = np.frombuffer(raw, dtype=np.uint8, offset=off)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for dims {dims}")
    return data.reshape(dims)


def load_fashion_mnist(root):
    def p(name):
        return os.path.join(root, name)
    xtr = read_idx(p("train-images-idx3-ubyte.gz"))  # (60000, 28, 28) uint8
    ytr = read_idx(p("train-labels-idx1-ubyte.gz"))  # (60000,) uint8
    xte = read_idx(p("t10k-images-idx3-ubyte.gz"))   # (10000, 28, 28) uint8
    yte = read_idx(p("t10k-labels-idx1-ubyte.gz"))   # (10000,) uint8
    assert xtr.shape == (60000, 28, 28) and ytr.shape == (60000,)
    assert xte.shape == (10000, 28, 28) and yte.shape == (10000,)
    return xtr, ytr, xte, yte


def preprocess(u8, mean, std):
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28): (x / 255 - mean) / std.
    Exactly what the sidecar JSON tells a user to do."""
    x = torch.from_numpy(np.array(u8, dtype=np.float32)).div_(255.0)
    return x.sub_(mean).div_(std).unsqueeze(1)


def augment(x, gen, shift):
    """x: (B, 1, 28, 28) normalised batch. Random horizontal flip (p = 0.5)
    and a random translation of up to `shift` pixels in each direction,
    filling with the background value (pixel 0 -> -mean/std = x.min())."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift > 0:
        bg = float(x.min())
        padded = F.pad(x, (shift, shift, shift, shift), value=bg)
        dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen).tolist()
        dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen).tolist()
        x = torch.stack([padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
                         for i in range(b)])
    return x


# ----------------------------------------------------------------------------
# Model

def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FashionCNN(nn.Module):
    def __init__(self, c1=16, c2=32, c3=64):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(1, c1), *conv_bn_relu(c1, c1), nn.MaxPool2d(2),
            *conv_bn_relu(c1, c2), *conv_bn_relu(c2, c2), nn.MaxPool2d(2),
            *conv_bn_relu(c2, c3), *conv_bn_relu(c3, c3))
        self.pool = nn.AdaptiveAvgPool2d(1)   # exported as GlobalAveragePool
        self.fc = nn.Linear(c3, 10)

    def forward(self, x):
        x = self.features(x)                  # (N, C3, 7, 7)
        x = torch.flatten(self.pool(x), 1)    # (N, C3)
        return self.fc(x)                     # (N, 10)


@torch.no_grad()
def predict(model, x, batch=1000):
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])


# ----------------------------------------------------------------------------
# Outputs

def write_png(path, img_u8):
    from PIL import Image  # Debian package python3-pil
    Image.fromarray(np.ascontiguousarray(img_u8), mode="L").save(path, optimize=False)


def export_onnx(model, path, opset):
    import onnx
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(model, dummy, path, opset_version=opset,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return sorted({n.op_type for n in m.graph.node})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=os.path.join(here, "default"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate")
    ap.add_argument("--wd", type=float, default=0.0, help="Adam weight decay")
    ap.add_argument("--widths", default="16,32,64", help="C1,C2,C3")
    ap.add_argument("--shift", type=int, default=2, help="max random translation (pixels)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--min-conf", type=float, default=0.9,
                    help="minimum softmax probability of a sample image")
    args = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    xtr_u8, ytr_u8, xte_u8, yte_u8 = load_fashion_mnist(args.data)
    px = xtr_u8.astype(np.float64) / 255.0
    mean_exact, std_exact = float(px.mean()), float(px.std())
    mean, std = round(mean_exact, 4), round(std_exact, 4)
    print(f"training-set pixel mean {mean_exact:.6f} std {std_exact:.6f} "
          f"-> using mean {mean} std {std}", flush=True)

    xtr, xte = preprocess(xtr_u8, mean, std), preprocess(xte_u8, mean, std)
    ytr = torch.from_numpy(ytr_u8.astype(np.int64))
    yte = torch.from_numpy(yte_u8.astype(np.int64))

    widths = [int(w) for w in args.widths.split(",")]
    model = FashionCNN(*widths).to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"FashionCNN{tuple(widths)}: {n_params} parameters", flush=True)

    steps_per_epoch = (xtr.shape[0] + args.batch - 1) // args.batch
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)

    history = []
    t_train = time.time()
    for epoch in range(args.epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        tot_loss, tot_ok = 0.0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb = augment(xtr[idx], gen, args.shift).contiguous(
                memory_format=torch.channels_last)
            yb = ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss) * yb.shape[0]
            tot_ok += int((logits.argmax(1) == yb).sum())
        test_acc = float((predict(model, xte).argmax(1) == yte).float().mean())
        rec = {"epoch": epoch + 1, "train_loss": tot_loss / xtr.shape[0],
               "train_acc": tot_ok / xtr.shape[0], "test_acc": test_acc,
               "seconds": time.time() - t0}
        history.append(rec)
        print(f"epoch {epoch + 1:2d}/{args.epochs}  loss {rec['train_loss']:.4f}  "
              f"train {rec['train_acc']:.4f}  test {test_acc:.4f}  "
              f"({rec['seconds']:.0f} s)", flush=True)
    train_seconds = time.time() - t_train

    # Final evaluation on the whole test set.
    model.eval()
    model = model.to(memory_format=torch.contiguous_format)
    logits_te = predict(model, xte)
    prob_te = torch.softmax(logits_te, 1)
    pred_te = logits_te.argmax(1)
    test_acc = float((pred_te == yte).float().mean())
    conf = np.zeros((10, 10), dtype=np.int64)  # conf[true, predicted]
    for t, p in zip(yte.tolist(), pred_te.tolist()):
        conf[t, p] += 1
    per_class = {LABELS[k]: float(conf[k, k] / conf[k].sum()) for k in range(10)}
    print(f"test accuracy {test_acc:.4f}")
    for k in range(10):
        print(f"  {k} {LABELS[k]:12s} {per_class[LABELS[k]]:.4f}")

    os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)

    # ONNX + sidecar.
    onnx_path = os.path.join(args.out, "fashion_cnn.onnx")
    op_types = export_onnx(model, onnx_path, args.opset)
    sidecar = {
        "input": {"name": "image", "layout": "NCHW", "channels": 1, "color": "gray",
                  "height": 28, "width": 28, "resize": "stretch", "scale": 255,
                  "mean": [mean], "std": [std]},
        "labels": LABELS,
        "task": "classification",
        "dataset": "Fashion-MNIST",
        "test_accuracy": round(test_acc, 4),
        "trained_by": "models/train_default.py",
    }
    with open(os.path.join(args.out, "fashion_cnn.json"), "w") as f:
        json.dump(sidecar, f, indent=2)
        f.write("\n")

    # Sample images: first confidently and correctly classified test image per class.
    samples = []
    for k in range(10):
        ok = ((yte == k) & (pred_te == k) & (prob_te[:, k] >= args.min_conf)).nonzero()
        if ok.numel() == 0:
            sys.exit(f"no test image of class {k} reaches probability {args.min_conf}")
        i = int(ok[0, 0])
        fname = f"{k}_{SAMPLE_NAMES[k]}.png"
        write_png(os.path.join(args.out, "samples", fname), xte_u8[i])
        # Recompute from the PNG's own pixels, one image at a time (batch 1,
        # as glassbox will run it), so the fixture is exactly what a user gets.
        from PIL import Image
        back = np.asarray(Image.open(os.path.join(args.out, "samples", fname)))
        assert back.dtype == np.uint8 and back.shape == (28, 28)
        assert np.array_equal(back, xte_u8[i])
        with torch.no_grad():
            lg = model(preprocess(back[None], mean, std))[0]
        pr = torch.softmax(lg, 0)
        samples.append({"file": fname, "test_index": i, "label": k,
                        "label_name": LABELS[k], "predicted": int(lg.argmax()),
                        "logits": [float(v) for v in lg],
                        "probabilities": [float(v) for v in pr]})
        print(f"  sample {fname:18s} test index {i:4d}  p = {float(pr[k]):.4f}")
    expected = {
        "model": "fashion_cnn.onnx",
        "preprocess": "x = (pixel / 255 - mean) / std, shape (1, 1, 28, 28), float32",
        "mean": mean, "std": std,
        "samples": samples,
    }
    with open(os.path.join(args.out, "samples", "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")

    total_seconds = time.time() - t_start
    metrics = {
        "test_accuracy": test_acc,
        "test_errors": int((pred_te != yte).sum()),
        "per_class_accuracy": per_class,
        "confusion_matrix_true_by_pred": conf.tolist(),
        "history": history,
        "parameters": n_params,
        "onnx_bytes": os.path.getsize(onnx_path),
        "onnx_op_types": op_types,
        "data_mean_exact": mean_exact, "data_std_exact": std_exact,
        "args": {**vars(args), "out": os.path.relpath(args.out, os.path.dirname(here))},
        "train_seconds": train_seconds, "total_seconds": total_seconds,
        "cpu_seconds": time.process_time(),
        "torch": torch.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}: onnx {metrics['onnx_bytes']} bytes, ops {op_types}; "
          f"training {train_seconds:.0f} s, total {total_seconds:.0f} s, "
          f"CPU {metrics['cpu_seconds']:.0f} s")


if __name__ == "__main__":
    main()
