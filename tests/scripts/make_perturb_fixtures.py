#!/usr/bin/python3
"""Reference attributions for glassbox's perturbation family (src/methods/perturb*.c),
from Captum itself, for tests/unit/test_perturb.c.

    PYTHONPATH=/tmp/captum_src:/tmp/captum_stubs /usr/bin/python3 tests/scripts/make_perturb_fixtures.py

needs Captum (github:pytorch/captum, run from a checkout; tqdm stubbed) and,
for Captum's default Lime surrogate SkLearnLasso and KernelShap's
SkLearnLinearRegression, scikit-learn (Debian's python3-sklearn, installed for
this offline run only; CI never runs this script). Writes tests/fixtures/perturb/:

  pt_net.onnx    a small seeded ReLU network, input (N, 3, 12, 10) -> logits (N, 4):
                 conv 3x3 (3->5) + ReLU, max pool 2, conv 3x3 (5->6) + ReLU, flatten, linear
  linear.onnx    f(x) = W flatten(x) + b, input (N, 2, 6, 6) -> (N, 3) (exact Shapley values
                 are known: phi_m = sum over feature m of W_k (x - x'))
  input.npy      x, (2, 3, 12, 10)
  mask.npy       the feature mask, (12, 10) int64 with 8 features, labels 3 l + 2 (l = Captum's
                 0..7: glassbox renumbers them in order to the same 0..7)
  baseline.npy   a random baseline (1, 3, 12, 10) for feature_ablation
  occlusion.npy  Captum Occlusion(sliding_window_shapes=(3, 4, 3), strides=(3, 2, 2),
                 baselines=0.5), target 2: windows cut off at the right edge
  feature_ablation.npy   FeatureAblation, the mask, the baseline, target 2
  shapley_sampling.npy   ShapleyValueSampling, the mask, zero baseline, n_samples=6, target 2;
  shapley_perms.npy      the permutations it drew (6, 8), recorded
  lime.npy, lime_samples.npy   Lime() (defaults: SkLearnLasso(alpha=0.01), exp kernel on cosine
                 distance, width 1), the mask, zero baseline, n_samples=60, target 2; the
                 coalitions it drew, (2 * 60, 8) (item 0's, then item 1's)
  lime_ridge.npy, lime_ridge_samples.npy   Lime(interpretable_model=SkLearnRidge(alpha=1.0))
  kernel_shap.npy, kernel_shap_samples.npy   KernelShap, the mask, zero baseline, n_samples=60
  logits.npy     f(x) (2, 4)

Captum is called with perturbations_per_eval=1 on the whole batch of 2 (Lime
and KernelShap then fit one surrogate per item, drawing item 0's samples
first). The recorded draws are given to glassbox through
gb_explain_opts.fixed_perms / fixed_coalitions.
Generated with Captum at /tmp/captum_src (v0.8-dev), torch 1.13, scikit-learn 1.2.1.
"""
import os

import numpy as np
import onnx
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "perturb")
TARGET = 2


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 5, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2 = torch.nn.Conv2d(5, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 6 * 5, 4)

    def forward(self, x):
        h = torch.relu(self.conv2(self.pool(torch.relu(self.conv1(x)))))
        return self.fc(torch.flatten(h, 1))


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


def save(name, a, dtype=np.float32):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(a, dtype=dtype)))


def export(net, x, path):
    torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(onnx.load(path))


def main():
    from captum.attr import FeatureAblation, KernelShap, Lime, Occlusion, ShapleyValueSampling
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr._core.lime import default_perturb_func

    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(5)
    net = Net().eval()
    x = torch.randn(2, 3, 12, 10, generator=torch.Generator().manual_seed(6))
    export(net, x, os.path.join(OUT, "pt_net.onnx"))
    lin = Linear().eval()
    export(lin, torch.zeros(1, 2, 6, 6), os.path.join(OUT, "linear.onnx"))
    save("input", x)
    with torch.no_grad():
        save("logits", net(x))

    hh, ww = np.meshgrid(np.arange(12), np.arange(10), indexing="ij")
    lab = (hh // 3) * 2 + (ww // 5)                      # 8 blocks of 3 x 5
    lab[(hh + ww) % 7 == 0] = (lab[(hh + ww) % 7 == 0] + 3) % 8   # scattered pixels elsewhere
    save("mask", 3 * lab + 2, np.int64)
    mask = torch.from_numpy(lab).long()[None, None]      # Captum's: (1, 1, 12, 10), 0..7
    baseline = torch.randn(1, 3, 12, 10, generator=torch.Generator().manual_seed(7))
    save("baseline", baseline)

    with torch.no_grad():
        occ = Occlusion(net).attribute(x, sliding_window_shapes=(3, 4, 3), strides=(3, 2, 2), baselines=0.5,
                                       target=TARGET)
        save("occlusion", occ)
        fa = FeatureAblation(net).attribute(x, baselines=baseline, feature_mask=mask, target=TARGET)
        save("feature_ablation", fa)

        sv = ShapleyValueSampling(net)
        perms = []
        gen = sv.permutation_generator

        def rec_perms(n, s):
            for p in gen(n, s):
                perms.append(list(p))
                yield p
        sv.permutation_generator = rec_perms
        torch.manual_seed(8)
        save("shapley_sampling", sv.attribute(x, feature_mask=mask, n_samples=6, target=TARGET))
        save("shapley_perms", np.array(perms), np.int64)

        def lime_run(name, **kw):
            drawn = []

            def rec(inp, **k):
                z = default_perturb_func(inp, **k)
                drawn.append(z.clone())
                return z
            torch.manual_seed(9)
            a = Lime(net, perturb_func=rec, **kw).attribute(x, feature_mask=mask, n_samples=60, target=TARGET)
            save(name, a)
            save(name + "_samples", torch.cat(drawn).float())
        lime_run("lime")
        lime_run("lime_ridge", interpretable_model=SkLearnRidge(alpha=1.0))

        class RecShap(KernelShap):
            def kernel_shap_perturb_generator(self, inp, **k):
                for z in super().kernel_shap_perturb_generator(inp, **k):
                    self.drawn.append(z.clone())
                    yield z
        ks = RecShap(net)
        ks.drawn = []
        torch.manual_seed(10)
        save("kernel_shap", ks.attribute(x, feature_mask=mask, n_samples=60, target=TARGET))
        save("kernel_shap_samples", torch.cat(ks.drawn).float())
    print("wrote", OUT)


if __name__ == "__main__":
    main()
