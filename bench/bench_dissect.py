#!/usr/bin/python3
"""Network Dissection throughput: glassbox (bench_dissect) against a PyTorch
reference loop that computes the same thresholds and IoUs on the same data,
in the same run (separate processes, 2 threads each, one after the other).

    /usr/bin/python3 bench/bench_dissect.py --bench BUILD/bench/bench_dissect \
        --model models/scenes/scenes_cnn.onnx --data DIR --layer relu3 [--max-images N] [--repeat 3]

The reference (NetDissect-Lite's algorithm, restated in torch):
  1. forward every image (batches of 16), keeping the layer's activations in
     memory, as NetDissect-Lite's feature dump does;
  2. T_k = the exact (1 - 0.005) quantile of all of unit k's values (sort;
     the smallest value whose rank reaches 0.995 n, glassbox's definition);
  3. per batch: F.interpolate(bilinear, align_corners=False) to the label
     size, M = up > T_k, and NetDissect-Lite's tally: intersections by a
     (units x pixels) @ (pixels x labels) one-hot product, the per-category
     activation count in images where the fired region touches a label of
     that category, label areas (a whole-image label covers every pixel);
  4. IoU = I / (A_cat + L - I), best concept per unit.
The model runs in torch through a small ONNX interpreter (Conv, Relu,
MaxPool, ReduceMean, GlobalAveragePool, Flatten, Gemm, Add, Mul) over the
same .onnx file, so both sides use identical weights. Data loading (PNG
decode, preprocessing) is inside both timings.

In the test suite (ctest concepts_dissect_torch) it runs once with --gen 200
--check: the per-unit results must agree (timings are printed, never asserted).

Prints per side: seconds, images/s, peak RSS; the ratio; and the agreement
of the per-unit results (same best concept; max |IoU difference|, which
comes from the sketch's T_k vs the exact sort).
"""
import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def reference(model_path, data, layer, max_images, quantile=0.005, batch=16):
    import numpy as np
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper
    from PIL import Image
    torch.set_num_threads(2)
    t0 = time.time()
    m = onnx.load(model_path)
    W = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
    side = json.load(open(model_path[:-5] + ".json"))["input"]
    mean = torch.tensor(side["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(side["std"]).view(1, -1, 1, 1)
    H, Wd = side["height"], side["width"]

    def attr(n, name, d=None):
        for a in n.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return d

    def run(x):
        env = {m.graph.input[0].name: x}
        env.update(W)
        for n in m.graph.node:
            i = [env[k] for k in n.input if k]
            op = n.op_type
            if op == "Conv":
                p = attr(n, "pads", [0, 0, 0, 0])
                y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=tuple(attr(n, "strides", [1, 1])),
                             padding=(p[0], p[1]), groups=attr(n, "group", 1))
            elif op == "Relu":
                y = torch.relu(i[0])
            elif op == "MaxPool":
                y = F.max_pool2d(i[0], tuple(attr(n, "kernel_shape")), tuple(attr(n, "strides")))
            elif op == "GlobalAveragePool":
                y = i[0].mean((2, 3), keepdim=True)
            elif op == "ReduceMean":
                y = i[0].mean(tuple(attr(n, "axes")), keepdim=bool(attr(n, "keepdims", 1)))
            elif op == "Flatten":
                y = i[0].flatten(attr(n, "axis", 1))
            elif op == "Gemm":
                b = i[1].t() if attr(n, "transB", 0) else i[1]
                y = i[0] @ b + (i[2] if len(i) > 2 else 0)
            elif op == "Add":
                y = i[0] + i[1]
            elif op == "Mul":
                y = i[0] * i[1]
            else:
                raise SystemExit("reference interpreter: unsupported op " + op)
            env[n.output[0]] = y
            if n.output[0] == layer:
                return y
        return env[layer]

    rows = list(csv.DictReader(open(os.path.join(data, "index.csv"))))[:max_images]
    cats = [r["name"] for r in csv.DictReader(open(os.path.join(data, "category.csv")))]
    labels = list(csv.DictReader(open(os.path.join(data, "label.csv"))))
    L = max(int(r["number"]) for r in labels) + 1
    names = [""] * L
    for r in labels:
        names[int(r["number"])] = r["name"]
    lcat = torch.full((L,), -1, dtype=torch.long)
    best = torch.full((L,), -1.0, dtype=torch.float64)
    for ci, c in enumerate(cats):
        for r in csv.DictReader(open(os.path.join(data, "c_%s.csv" % c))):
            n, cov = int(r["number"]), float(r["coverage"])
            if cov >= best[n]:
                best[n], lcat[n] = cov, ci
    C = len(cats)
    catonehot = torch.zeros(L, C)
    for l in range(1, L):
        if lcat[l] >= 0:
            catonehot[l, lcat[l]] = 1

    def load_batch(rs):
        x = np.stack([np.asarray(Image.open(os.path.join(data, "images", r["image"])).convert("RGB"))
                      for r in rs]).astype(np.float32)
        x = torch.from_numpy(x).permute(0, 3, 1, 2) / 255.0
        if x.shape[2] != H or x.shape[3] != Wd:
            x = F.interpolate(x * 255.0, size=(H, Wd), mode="bilinear", align_corners=False) / 255.0
        return (x - mean) / std

    feats = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            feats.append(run(load_batch(rows[i:i + batch])))
    A = torch.cat(feats)                       # (N, K, h, w)
    N, K = A.shape[:2]
    vals = A.permute(1, 0, 2, 3).reshape(K, -1)
    srt = vals.sort(1).values
    n = srt.shape[1]
    idx = max(0, int(np.ceil((1 - quantile) * n)) - 1)
    T = srt[:, idx]
    t1 = time.time()
    I = torch.zeros(K, L, dtype=torch.float64)
    Acat = torch.zeros(K, C, dtype=torch.float64)
    Lc = torch.zeros(L, dtype=torch.float64)
    for i, r in enumerate(rows):
        sh, sw = int(r["sh"]), int(r["sw"])
        planes, scalars = [], []
        for c in cats:
            for e in [s for s in r.get(c, "").split(";") if s]:
                if e.isdigit():
                    scalars.append(int(e))
                else:
                    a = np.asarray(Image.open(os.path.join(data, "images", e)).convert("RGB")).astype(np.int64)
                    planes.append(torch.from_numpy(a[:, :, 0] + 256 * a[:, :, 1]))
        P = sh * sw
        lab = torch.stack(planes).reshape(len(planes), P) if planes else torch.zeros(0, P, dtype=torch.long)
        bc = torch.bincount(lab.reshape(-1), minlength=L).double()
        bc[0] = 0
        Lc += bc
        for s in scalars:
            Lc[s] += P
        a = A[i]
        fire = a.reshape(K, -1).max(1).values > T
        if not fire.any():
            continue
        up = F.interpolate(a[None], size=(sh, sw), mode="bilinear", align_corners=False)[0].reshape(K, P)
        M = (up > T[:, None]) & fire[:, None]
        cnt = M.sum(1).double()
        onehot = torch.zeros(P, L)
        for pl in range(lab.shape[0]):
            onehot[torch.arange(P), lab[pl]] += 1
        onehot[:, 0] = 0
        inter = (M.float() @ onehot).double()          # (K, L)
        for s in scalars:
            inter[:, s] += cnt
        seen = (inter @ catonehot.double()) > 0       # (K, C)
        for s in scalars:
            if lcat[s] >= 0:
                seen[:, lcat[s]] |= cnt > 0
        I += inter
        Acat += seen.double() * cnt[:, None]
    iou = I / (Acat[:, lcat.clamp(min=0)] + Lc[None, :] - I + 1e-10)
    iou[:, lcat < 0] = 0
    iou[:, 0] = 0
    bi, bl = iou.max(1)
    t2 = time.time()
    res = [(int(k), names[int(bl[k])] if bi[k] > 0 else "", float(bi[k]), float(T[k])) for k in range(K)]
    return {"images": len(rows), "seconds": t2 - t0, "seconds_features_quantile": t1 - t0, "seconds_tally": t2 - t1,
            "images_per_s": len(rows) / (t2 - t0),
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--layer", required=True)
    ap.add_argument("--max-images", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--gen", type=int, default=0,
                    help="first generate this many 64x64 scenes into --data with --glassbox concepts-gen")
    ap.add_argument("--glassbox", help="the glassbox binary (for --gen)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless >= 90%% of units agree on the best concept and |IoU diff| < 0.03")
    a = ap.parse_args()
    if a.gen:
        subprocess.check_call([a.glassbox, "concepts-gen", "--out", a.data, "--count", str(a.gen), "--size", "64",
                               "--seed", "11"], stdout=subprocess.DEVNULL)
    if a.reference_only:
        t, res = reference(a.model, a.data, a.layer, a.max_images)
        print(json.dumps({"timing": t, "units": res}))
        return
    gb_runs, ref_runs = [], []
    ref_units = None
    csv_path = "/tmp/bench_dissect_units.%d.csv" % os.getpid()
    for _ in range(a.repeat):
        out = subprocess.check_output([a.bench, a.model, a.data, a.layer, "--max-images", str(a.max_images),
                                       "--threads", "2", "--csv", csv_path], text=True)
        gb_runs.append(json.loads(out.strip().splitlines()[-1]))
        out = subprocess.check_output([sys.executable, __file__, "--bench", a.bench, "--model", a.model, "--data",
                                       a.data, "--layer", a.layer, "--max-images", str(a.max_images),
                                       "--reference-only"], text=True)
        r = json.loads(out)
        ref_runs.append(r["timing"])
        ref_units = r["units"]
    gb = min(gb_runs, key=lambda r: r["seconds"])
    ref = min(ref_runs, key=lambda r: r["seconds"])
    units = list(csv.DictReader(open(csv_path)))
    os.unlink(csv_path)
    same = sum(1 for u, r in zip(units, ref_units) if u["concept"] == r[1])
    diou = max(abs(float(u["iou"]) - r[2]) for u, r in zip(units, ref_units))
    dT = max(abs(float(u["threshold"]) - r[3]) / (abs(r[3]) + 1e-12) for u, r in zip(units, ref_units))
    print("layer %s, %d images, best of %d runs" % (a.layer, gb["images"], a.repeat))
    print("  glassbox: %.3f s (%.1f img/s; thresholds %.3f s, IoU %.3f s), max RSS %.1f MB"
          % (gb["seconds"], gb["images_per_s"], gb["seconds_quantile"], gb["seconds_tally"], gb["maxrss_kb"] / 1024))
    print("  pytorch : %.3f s (%.1f img/s; features+quantile %.3f s, IoU %.3f s), max RSS %.1f MB"
          % (ref["seconds"], ref["images_per_s"], ref["seconds_features_quantile"], ref["seconds_tally"],
             ref["maxrss_kb"] / 1024))
    print("  speed-up glassbox vs pytorch: %.2fx" % (ref["seconds"] / gb["seconds"]))
    print("  agreement: %d/%d units same best concept; max |IoU diff| %.4f; max rel. T_k diff %.2e"
          % (same, len(units), diou, dT))
    if a.check and (same < 0.9 * len(units) or diou >= 0.03):
        print("FAIL: glassbox and the PyTorch reference disagree")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
