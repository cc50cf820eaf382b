#!/usr/bin/python3
"""Fixtures for tests/unit/test_lrp.c and test_deeplift.c (tests/fixtures/relevance/).

A small residual CNN with BatchNorm, max- and average-pooling and two dense
layers ("relnet") is exported twice — with BatchNorm kept as nodes
(relnet_keepbn.onnx, TrainingMode.PRESERVE) and with the exporter folding it
(relnet.onnx, TrainingMode.EVAL) — plus a bias-free, BN-free ReLU variant
(relnet_nobias.onnx) for the conservation checks. Then the real libraries,
run from source offline against Debian's torch, produce the expected maps:

  Zennit (github:chr5tphr/zennit, unpacked at $ZENNIT_SRC, default
  /tmp/zennit_src/src): relevance at the input for the composites
  EpsilonPlus, EpsilonGammaBox (low -2, high 2), EpsilonAlpha2Beta1,
  EpsilonPlusFlat and for single rules on every conv/linear layer (Epsilon,
  Gamma, ZPlus, AlphaBeta(1, 0), WSquare-first), with the
  SequentialMergeBatchNorm canonizer and zennit.layer.Sum for the residual
  addition — each attribution seeded with one-hot * logit (glassbox's
  R = f(x)); and the relevance at the flattened features (EpsilonPlus).
  Captum (github:pytorch/captum at $CAPTUM_SRC, default /tmp/captum_src,
  with a tqdm stub in /tmp/captum_stubs): DeepLift (zero baseline and a
  given baseline) and DeepLiftShap over a set of 4 baselines — kept for the
  record — and the same by deeplift_reference.py's re-statement of Captum's
  formulas (dl_deeplift_*.npy, what the C test compares with; see the note
  at the end of main()), and RevealCancel on a small MLP computed in NumPy
  from the paper's equations (rc_*.npy).

Run:  /usr/bin/python3 tests/scripts/make_relevance_fixtures.py
Neither library is committed, only the .npy/.onnx outputs.
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "relevance")
sys.path[:0] = [os.environ.get("ZENNIT_SRC", "/tmp/zennit_src/src"),
                os.environ.get("CAPTUM_SRC", "/tmp/captum_src"), "/tmp/captum_stubs", HERE]

torch.manual_seed(0)
torch.set_num_threads(2)


class Sum(torch.nn.Module):
    """zennit.layer.Sum's arithmetic (stack on a new last dim, sum it)."""

    def forward(self, x):
        return x.sum(dim=-1)


class RelNet(torch.nn.Module):
    """(N, 3, 16, 16) -> 5 logits. Each ReLU is its own module (Captum's
    DeepLift needs that); the residual sum is a module (Zennit's Norm)."""

    def __init__(self, bias=True, bn=True, sum_module=None):
        super().__init__()
        norm = (lambda c: torch.nn.BatchNorm2d(c)) if bn else (lambda c: torch.nn.Identity())
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=bias), norm(8), torch.nn.ReLU())
        self.pool = torch.nn.MaxPool2d(2)
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1, bias=bias), norm(8), torch.nn.ReLU(),
                                          torch.nn.Conv2d(8, 8, 3, padding=1, bias=bias), norm(8))
        self.sum = sum_module
        self.relu2 = torch.nn.ReLU()
        self.avg = torch.nn.AvgPool2d(2)
        self.fc1 = torch.nn.Linear(8 * 4 * 4, 16, bias=bias)
        self.relu3 = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(16, 5, bias=bias)

    def forward(self, x):
        h = self.pool(self.stem(x))
        b = self.branch(h)
        s = self.sum(torch.stack([h, b], dim=-1)) if self.sum is not None else h + b
        f = torch.flatten(self.avg(self.relu2(s)), 1)
        self.feat = f
        return self.fc2(self.relu3(self.fc1(f)))


def randomise_bn(net):
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def export(net, x, path, keep_bn):
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, training=mode,
                      do_constant_folding=not keep_bn)


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def zennit_maps(net, x, target):
    from zennit import composites as zc, rules as zr
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.core import Composite
    from zennit.types import Convolution, Linear as ZLinear

    out = {}
    logits = net(x).detach()
    seed = torch.zeros_like(logits)
    seed[torch.arange(len(x)), target] = logits[torch.arange(len(x)), target]

    def attribute(composite, tag, layer=False):
        xi = x.clone().requires_grad_(True)
        with composite.context(net) as mod:
            y = mod(xi)
            if layer:
                mod.feat.retain_grad()
            y.backward(seed)
        out[tag] = xi.grad.detach().numpy()
        if layer:
            out[tag + "_feat"] = mod.feat.grad.detach().numpy()

    canon = lambda: [SequentialMergeBatchNorm()]
    attribute(zc.EpsilonPlus(canonizers=canon()), "epsilon_plus", layer=True)
    attribute(zc.EpsilonGammaBox(low=-2.0, high=2.0, canonizers=canon()), "epsilon_gamma_box")
    attribute(zc.EpsilonAlpha2Beta1(canonizers=canon()), "epsilon_alpha2_beta1")
    attribute(zc.EpsilonPlusFlat(canonizers=canon()), "epsilon_plus_flat")
    base = zc.layer_map_base()
    for tag, rule in [("rule_epsilon", zr.Epsilon(epsilon=1e-6)), ("rule_gamma", zr.Gamma(gamma=0.25)),
                      ("rule_zplus", zr.ZPlus()), ("rule_alpha1beta0", zr.AlphaBeta(alpha=1, beta=0))]:
        attribute(zc.LayerMapComposite(base + [(ZLinear, rule)], canonizers=canon()), tag)
    attribute(zc.SpecialFirstLayerMapComposite(base + [(ZLinear, zr.Epsilon())], [(ZLinear, zr.WSquare())],
                                               canonizers=canon()), "first_wsquare")
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    from zennit.layer import Sum as ZSum

    net = RelNet(sum_module=ZSum()).eval()
    randomise_bn(net)
    x = torch.randn(3, 3, 16, 16)
    plain = RelNet().eval()
    plain.load_state_dict(net.state_dict())
    export(plain, x, os.path.join(OUT, "relnet.onnx"), keep_bn=False)
    export(plain, x, os.path.join(OUT, "relnet_keepbn.onnx"), keep_bn=True)
    nob = RelNet(bias=False, bn=False).eval()
    export(nob, x, os.path.join(OUT, "relnet_nobias.onnx"), keep_bn=False)
    save("input", x.numpy())
    with torch.no_grad():
        logits = net(x)
    target = logits.argmax(1)
    save("logits", logits.numpy())
    np.save(os.path.join(OUT, "target.npy"), target.numpy().astype(np.int64))

    for tag, a in zennit_maps(net, x, target).items():
        save("zennit_" + tag, a)

    # Captum's DeepLift / DeepLiftShap (on a copy: Captum's hooks stay off net)
    from captum.attr import DeepLift, DeepLiftShap
    dl_net = RelNet().eval()
    dl_net.load_state_dict(net.state_dict())
    ref = torch.randn(1, 3, 16, 16) * 0.5
    bset = torch.randn(4, 3, 16, 16) * 0.5
    save("dl_ref", ref.numpy())
    save("dl_bset", bset.numpy())
    dl = DeepLift(dl_net)
    save("captum_deeplift_zero", dl.attribute(x, target=target).detach().numpy())
    save("captum_deeplift_ref", dl.attribute(x, baselines=ref.expand_as(x), target=target).detach().numpy())
    save("captum_deepliftshap", DeepLiftShap(dl_net).attribute(x, baselines=bset, target=target).detach().numpy())
    # The same formulas re-stated in torch (deeplift_reference.py: Captum's
    # nonlinear() and maxpool()). Captum itself, run on Debian's torch 1.13,
    # does not apply its maxpool() hook: its result equals the re-statement
    # with max-pooling left to its gradient (checked below), which breaks
    # summation-to-delta whenever the reference's window maximum sits
    # elsewhere. glassbox follows deep_lift.py's maxpool() as written.
    import deeplift_reference as R
    def fresh():
        m = RelNet().eval()
        m.load_state_dict(net.state_dict())
        return m

    rn = R.patch(fresh())
    zero = torch.zeros_like(x)
    save("dl_deeplift_zero", R.deeplift(rn, x, zero, target)[0].numpy())
    save("dl_deeplift_ref", R.deeplift(rn, x, ref.expand_as(x), target)[0].numpy())
    shap = sum(R.deeplift(rn, x, bset[k:k + 1].expand_as(x), target)[0] for k in range(len(bset))) / len(bset)
    save("dl_deepliftshap", shap.numpy())
    relu_only = fresh()
    for mod in relu_only.modules():
        for n, ch in list(mod.named_children()):
            if isinstance(ch, torch.nn.ReLU):
                setattr(mod, n, R.RescaleReLU())
    cap = np.load(os.path.join(OUT, "captum_deeplift_ref.npy"))
    print("Captum DeepLift vs re-statement with max-pool by gradient: rel L2",
          R.rel_l2(R.deeplift(relu_only, x, ref.expand_as(x), target)[0].numpy(), cap),
          "; with Captum's maxpool():", R.rel_l2(np.load(os.path.join(OUT, "dl_deeplift_ref.npy")), cap))
    revealcancel_mlp()
    print("fixtures written to", os.path.normpath(OUT))


def revealcancel_mlp():
    """RevealCancel on a 6-10-10-3 ReLU MLP, straight from the paper's
    equations (Shrikumar et al. 2017, sec. 3.5.1 and 3.5.3) in NumPy float64:
    rc_mlp.onnx, rc_x.npy, rc_ref.npy, rc_expected.npy (target: logit 0)."""
    g = torch.Generator().manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 10), torch.nn.ReLU(),
                              torch.nn.Linear(10, 3)).eval()
    with torch.no_grad():
        for p_ in net.parameters():
            p_.copy_(torch.randn(p_.shape, generator=g) * 0.6)
    x = torch.randn(4, 6, generator=g)
    ref = torch.randn(1, 6, generator=g) * 0.3
    torch.onnx.export(net, x, os.path.join(OUT, "rc_mlp.onnx"), opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    save("rc_x", x.numpy())
    save("rc_ref", ref.numpy())
    Ws = [net[i].weight.detach().double().numpy() for i in (0, 2, 4)]
    bs = [net[i].bias.detach().double().numpy() for i in (0, 2, 4)]
    relu = lambda v: np.maximum(v, 0)
    out = []
    for xi in x.double().numpy():
        a, ar = [xi], [ref.double().numpy()[0]]
        parts = []
        for W, b in zip(Ws[:2], bs[:2]):          # forward: pre-activations and their +/- parts
            da = a[-1] - ar[-1]
            t = W * da[None, :]                    # (out, in) terms w_ij * Delta a_j
            dp, dn = np.where(t > 0, t, 0).sum(1), np.where(t < 0, t, 0).sum(1)
            z, zr = W @ a[-1] + b, W @ ar[-1] + b
            parts.append((W, da, z, zr, dp, dn))
            a.append(relu(z))
            ar.append(relu(zr))
        m = Ws[2][0].copy()                        # multipliers of the last hidden layer (linear head)
        for W, da, z, zr, dp, dn in reversed(parts):
            yp = 0.5 * (relu(zr + dp) - relu(zr)) + 0.5 * (relu(z) - relu(zr + dn))
            yn = 0.5 * (relu(zr + dn) - relu(zr)) + 0.5 * (relu(z) - relu(zr + dp))
            dx = z - zr
            resc = np.where(np.abs(dx) < 1e-10, 0, (relu(z) - relu(zr)) / np.where(dx == 0, 1, dx))
            Mp = m * np.where(np.abs(dp) < 1e-10, resc, yp / np.where(dp == 0, 1, dp))
            Mn = m * np.where(np.abs(dn) < 1e-10, resc, yn / np.where(dn == 0, 1, dn))
            Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
            m = np.where(da > 0, Wp.T @ Mp + Wn.T @ Mn,
                         np.where(da < 0, Wp.T @ Mn + Wn.T @ Mp, W.T @ (0.5 * (Mp + Mn))))
        out.append((xi - ar[0]) * m)
    save("rc_expected", np.stack(out))


if __name__ == "__main__":
    main()
