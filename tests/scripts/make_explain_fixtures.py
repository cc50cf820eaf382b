#!/usr/bin/python3
"""Reference attributions for glassbox's gradient-family methods, from Captum.

A small seeded two-headed ReLU network (conv-relu-maxpool-conv-relu, global
mean, a 6-class head "logits" and a regression head "score") is exported to
ONNX, and Captum (https://github.com/pytorch/captum, pure Python on Debian's
python3-torch) computes every method glassbox's tests/unit/test_explain_*.c
compare against:

  saliency            Saliency(abs=False)                  (Simonyan et al. 2014)
  input_x_gradient    InputXGradient
  ig_<method>         IntegratedGradients, n_steps=7, zero baseline, each of
                      riemann_left/right/middle/trapezoid and gausslegendre,
                      with return_convergence_delta (ig_<method>_delta)
  ig_tensor           IG (gausslegendre, 16 steps) from baseline.npy
  ig_blur             IG (riemann_middle, 9 steps) from the Gaussian-blurred
                      input, blur as explain.h defines it (sigma 1.5, radius
                      ceil(3 sigma), edges replicated), computed here in
                      float64 with torch.conv2d
  smoothgrad, smoothgrad_sq, vargrad
                      NoiseTunnel(Saliency(abs=False)), 4 samples, with the
                      noise drawn here (noise.npy) and fed to Captum by
                      replacing torch.normal during the call
  gradient_shap       GradientShap over bset.npy (5 baselines), 4 samples,
                      with noise (shap_noise.npy), alphas (shap_alpha.npy) and
                      baseline indices (shap_bidx.npy) fed in by replacing
                      torch.normal, np.random.uniform and np.random.choice
  guided_backprop     GuidedBackprop                       (Springenberg et al. 2015)
  deconvnet           Deconvolution                        (Zeiler & Fergus 2014)
  saliency_t4         Saliency at target=4 (instead of each item's top-1)
  saliency_score      Saliency of the regression head "score" (target 0)
  saliency_neuron_c   NeuronGradient of channel 3 of "feat" (summed map)
  saliency_neuron_chw NeuronGradient of feat[3, 1, 2]
  layer_gxa           LayerGradientXActivation on "feat"
  layer_grad          LayerGradientXActivation(multiply_by_inputs=False)
  layer_cond_<m>      LayerConductance on "feat", 7 steps, gausslegendre and
                      riemann_trapezoid (+ _delta)
explain_net_b1.onnx is the same network exported with a fixed batch of 1,
explain_net_softmax.onnx its logits head followed by Softmax.

The draws are in glassbox's order (explain.h: item n, sample s is row
n * S + s), which is also Captum's (inputs repeat_interleave'd per sample).
Captum's own formulas are restated beside each call and checked against it
here (assert), so the fixtures stand even without Captum.

usage: PYTHONPATH=/path/to/captum /usr/bin/python3 tests/scripts/make_explain_fixtures.py
  (Captum needs tqdm; a stub module with a `tqdm` class that iterates its
  argument is enough.)
"""
import contextlib
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from captum.attr import (Deconvolution, GradientShap, GuidedBackprop, InputXGradient, IntegratedGradients,
                         LayerConductance, LayerGradientXActivation, NeuronGradient, NoiseTunnel, Saliency)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "explain")
METHODS = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2 = torch.nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.relu2 = torch.nn.ReLU()
        self.fc = torch.nn.Linear(12, 6)
        self.head = torch.nn.Linear(12, 1)

    def forward(self, x):
        f = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
        h = f.mean(dim=(2, 3))
        return self.fc(h), self.head(h)


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


@contextlib.contextmanager
def fixed_draws(noise=None, alpha=None, bidx=None):
    """Replace the three random sources Captum's NoiseTunnel / GradientShap use."""
    saved = torch.normal, np.random.uniform, np.random.choice
    if noise is not None:
        torch.normal = lambda mean, std, *a, **k: noise.clone().reshape(std.shape)
    if alpha is not None:
        np.random.uniform = lambda lo, hi, size: alpha.astype(np.float64)[:size]
    if bidx is not None:
        np.random.choice = lambda n, size: np.asarray(bidx[:size])
    try:
        yield
    finally:
        torch.normal, np.random.uniform, np.random.choice = saved


def rel(a, b):
    a, b = [np.asarray(t.detach().numpy() if isinstance(t, torch.Tensor) else t, np.float64) for t in (a, b)]
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def blur(x, sigma):
    """explain.h's blurred baseline: separable Gaussian, radius ceil(3 sigma), replicated edges."""
    R = int(np.ceil(3 * sigma))
    j = np.arange(-R, R + 1, dtype=np.float64)
    k = np.exp(-j * j / (2 * sigma * sigma))
    k /= k.sum()
    xd = torch.from_numpy(x.astype(np.float64))
    C = xd.shape[1]
    kh = torch.from_numpy(k).reshape(1, 1, 1, -1).repeat(C, 1, 1, 1)
    kv = torch.from_numpy(k).reshape(1, 1, -1, 1).repeat(C, 1, 1, 1)
    y = F.conv2d(F.pad(xd, (R, R, 0, 0), mode="replicate"), kh, groups=C)
    y = F.conv2d(F.pad(y, (0, 0, R, R), mode="replicate"), kv, groups=C)
    return y.float().numpy()


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(11)
    net = Net().eval()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(12))
    path = os.path.join(OUT, "explain_net.onnx")
    torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits", "score"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "score": {0: "batch"}})
    # Name the second ReLU's output "feat" (the hidden layer the layer and neuron cases use).
    m = onnx.load(path)
    relus = [n for n in m.graph.node if n.op_type == "Relu"]
    old = relus[1].output[0]
    for n in m.graph.node:
        n.output[:] = ["feat" if o == old else o for o in n.output]
        n.input[:] = ["feat" if i == old else i for i in n.input]
    onnx.checker.check_model(m)
    onnx.save(m, path)
    # The same network with its batch dimension fixed to 1 (as many exported
    # models are): glassbox must run it one row at a time.
    path1 = os.path.join(OUT, "explain_net_b1.onnx")
    torch.onnx.export(net, x[:1], path1, opset_version=13, input_names=["input"], output_names=["logits", "score"])
    # ... and ending in Softmax (one output): `glassbox predict` must not apply softmax twice.
    torch.onnx.export(Probs(net), x, os.path.join(OUT, "explain_net_softmax.onnx"), opset_version=13,
                      input_names=["input"], output_names=["probs"],
                      dynamic_axes={"input": {0: "batch"}, "probs": {0: "batch"}})
    save("input", x.numpy())

    logits_fn = lambda t: net(t)[0]
    score_fn = lambda t: net(t)[1]
    with torch.no_grad():
        logits, score = net(x)
    save("logits", logits.numpy())
    save("score", score.numpy())
    top = logits.argmax(dim=1)
    tgt = top.tolist()
    N, D = x.shape[0], x[0].numel()

    def grad_of(fn, xx, seed_fn):
        xx = xx.clone().requires_grad_(True)
        out = fn(xx)
        (g,) = torch.autograd.grad((out * seed_fn(out)).sum(), xx)
        return g

    onehot = lambda t: (lambda out: F.one_hot(torch.as_tensor(t), out.shape[1]).float())

    # -- saliency, input x gradient --
    sal = Saliency(logits_fn).attribute(x, target=tgt, abs=False)
    assert rel(sal, grad_of(logits_fn, x, onehot(tgt))) < 1e-6
    save("saliency", sal.detach().numpy())
    ixg = InputXGradient(logits_fn).attribute(x, target=tgt)
    assert rel(ixg, x * sal) < 1e-6
    save("input_x_gradient", ixg.detach().numpy())

    # -- integrated gradients: every quadrature of approximation_methods.py --
    # IG_i = (x_i - x'_i) * sum_k w_k dF/dx_i(x' + a_k (x - x')), Captum's step sizes w and alphas a.
    ig = IntegratedGradients(logits_fn)
    for meth in METHODS:
        a, d = ig.attribute(x, baselines=torch.zeros_like(x), target=tgt, n_steps=7, method=meth,
                            return_convergence_delta=True)
        save("ig_" + meth, a.detach().numpy())
        save("ig_" + meth + "_delta", d.detach().numpy())
    baseline = torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(13)) * 0.5
    save("baseline", baseline.numpy())
    a = ig.attribute(x, baselines=baseline.expand_as(x), target=tgt, n_steps=16, method="gausslegendre")
    save("ig_tensor", a.detach().numpy())
    xb = torch.from_numpy(blur(x.numpy(), 1.5))
    save("blurred", xb.numpy())
    a = ig.attribute(x, baselines=xb, target=tgt, n_steps=9, method="riemann_middle")
    save("ig_blur", a.detach().numpy())

    # -- SmoothGrad family: NoiseTunnel over Saliency(abs=False), fixed noise --
    S = 4
    noise = torch.randn(N * S, 3, 12, 12, generator=torch.Generator().manual_seed(14)) * 0.3
    save("noise", noise.numpy())
    nt = NoiseTunnel(Saliency(logits_fn))
    gs = torch.stack([grad_of(logits_fn, (x[n:n + 1] + noise[n * S + s:n * S + s + 1]), onehot([tgt[n]]))[0]
                      for n in range(N) for s in range(S)]).reshape(N, S, 3, 12, 12)
    mine = {"smoothgrad": gs.mean(1), "smoothgrad_sq": (gs * gs).mean(1),
            "vargrad": (gs * gs).mean(1) - gs.mean(1) ** 2}
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        with fixed_draws(noise=noise):
            a = nt.attribute(x, nt_type=kind, nt_samples=S, stdevs=1.0, target=tgt, abs=False)
        assert rel(a, mine[kind]) < 1e-5, (kind, rel(a, mine[kind]))
        save(kind, a.detach().numpy())

    # -- GradientSHAP with fixed draws --
    bset = torch.randn(5, 3, 12, 12, generator=torch.Generator().manual_seed(15)) * 0.7
    save("bset", bset.numpy())
    snoise = torch.randn(N * S, 3, 12, 12, generator=torch.Generator().manual_seed(16)) * 0.2
    rs = np.random.RandomState(17)
    alpha = rs.uniform(0, 1, N * S).astype(np.float32)
    bidx = rs.randint(0, 5, N * S).astype(np.int64)
    save("shap_noise", snoise.numpy())
    save("shap_alpha", alpha)
    np.save(os.path.join(OUT, "shap_bidx.npy"), bidx)
    with fixed_draws(noise=snoise, alpha=alpha, bidx=bidx):
        a = GradientShap(logits_fn).attribute(x, baselines=bset, n_samples=S, stdevs=0.2, target=tgt)
    # attr_n = 1/S sum_s (x~ - b) dF/dx(b + alpha (x~ - b)), x~ = x + eps
    ref = torch.zeros_like(x)
    fb = np.zeros(N)
    for n in range(N):
        for s in range(S):
            q = n * S + s
            xt = x[n:n + 1] + snoise[q:q + 1]
            b = bset[bidx[q]:bidx[q] + 1]
            al = float(alpha[q])
            g = grad_of(logits_fn, al * xt + (1 - al) * b, onehot([tgt[n]]))
            ref[n] += ((xt - b) * g)[0] / S
            with torch.no_grad():
                fb[n] += logits_fn(b)[0, tgt[n]].item() / S
    assert rel(a, ref) < 1e-5, rel(a, ref)
    save("gradient_shap", a.detach().numpy())
    save("gradient_shap_fb", fb)

    # -- Guided Backprop, DeconvNet (module hooks on the nn.ReLU modules) --
    save("guided_backprop", GuidedBackprop(net_logits(net)).attribute(x, target=tgt).detach().numpy())
    save("deconvnet", Deconvolution(net_logits(net)).attribute(x, target=tgt).detach().numpy())

    # -- other targets --
    save("saliency_t4", Saliency(logits_fn).attribute(x, target=4, abs=False).detach().numpy())
    save("saliency_score", Saliency(score_fn).attribute(x, target=0, abs=False).detach().numpy())
    ng = NeuronGradient(logits_fn, net.relu2)
    save("saliency_neuron_c", ng.attribute(x, neuron_selector=(3, slice(None), slice(None))).detach().numpy())
    save("saliency_neuron_chw", ng.attribute(x, neuron_selector=(3, 1, 2)).detach().numpy())

    # -- layer attribution on "feat" (relu2's output) --
    save("layer_gxa", LayerGradientXActivation(logits_fn, net.relu2).attribute(x, target=tgt).detach().numpy())
    save("layer_grad", LayerGradientXActivation(logits_fn, net.relu2, multiply_by_inputs=False)
         .attribute(x, target=tgt).detach().numpy())
    for meth in ("gausslegendre", "riemann_trapezoid"):
        a, d = LayerConductance(logits_fn, net.relu2).attribute(x, baselines=torch.zeros_like(x), target=tgt,
                                                                 n_steps=7, method=meth,
                                                                 return_convergence_delta=True)
        save("layer_cond_" + meth, a.detach().numpy())
        save("layer_cond_" + meth + "_delta", d.detach().numpy())
    print("wrote", OUT)


class Probs(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x)[0], dim=1)


class net_logits(torch.nn.Module):
    """The logits head as a module (Captum's GuidedBackprop hooks the model's ReLU modules)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)[0]


if __name__ == "__main__":
    main()
