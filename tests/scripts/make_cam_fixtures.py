#!/usr/bin/python3
"""Reference maps for glassbox's CAM family (src/methods/cam.c).

A small seeded two-headed ReLU network is exported to ONNX:

    input (N, 3, 13, 11)
    conv 3x3 (3->6, pad 1) + ReLU        "feat1" (N, 6, 13, 11)
    max pool 2                                   (N, 6, 6, 5)   "pooled"
    conv 3x3 (6->8, pad 1) + ReLU        "feat"  (N, 8, 6, 5)
    GlobalAveragePool + Flatten + Gemm   "logits" (N, 5)
    ReduceMean over (H, W) + Gemm        "score"  (N, 1)       (a regression head)

(13 x 11 and 6 x 5: upsampling with ratios that are not integers and differ
per axis.) Two more graphs reuse the weights: cam_mm.onnx with the logits head
written as ReduceMean(keepdims=1) -> Reshape -> MatMul -> Add (CAM must find
it too), and cam_mlp.onnx with a hidden layer in the head (GAP -> Gemm -> Relu
-> Gemm: not a CAM head; Grad-CAM still applies), and cam_nhwc.onnx, cam_net
behind a Transpose from an (N, 13, 11, 3) input (the same maps, in NHWC).

Each map is computed here from its paper's formula with torch autograd, and
checked against the independent implementations when they import:
  pytorch-grad-cam (https://github.com/jacobgil/pytorch-grad-cam, its
      GradCAM / GradCAMPlusPlus / ScoreCAM .get_cam_image: the raw map before
      its min-max scaling; set PYTORCH_GRAD_CAM=/path/to/checkout; cv2, ttach,
      tqdm and sklearn are stubbed: the code paths used need none of them)
  Captum (LayerGradCam, GuidedGradCam; PYTHONPATH=/path/to/captum, with the
      tqdm stub)
Each check is an assert, so the fixtures stand even where neither imports.

Conventions (as cam.c): the map is computed at the layer's resolution,
rectified (ReLU) unless said otherwise, then upsampled to the input's H x W by
F.interpolate(mode="bilinear", align_corners=False). Maps are never
normalised. Score-CAM follows Wang et al. 2020 (CVPRW version, Algorithm 1):
score_k = softmax over classes of f(X o H_k) at the target class (for a target
that is one element of an (N, K >= 2) output; the raw target value otherwise),
weights = softmax over channels of the scores. pytorch-grad-cam's ScoreCAM
with ClassifierOutputSoftmaxTarget computes exactly that, except that it
upsamples the masks with align_corners=True (UpsamplingBilinear2d): the check
below swaps in align_corners=False.

usage: PYTORCH_GRAD_CAM=/tmp/cam_ref PYTHONPATH=/tmp/captum_src:/tmp/captum_stubs \\
           /usr/bin/python3 tests/scripts/make_cam_fixtures.py
(checked with pytorch-grad-cam at commit 084273b and Debian's torch 1.13: every
library map agrees with the formulas to < 2e-7 relative L2). The output is
deterministic: the same bytes with or without the libraries.
"""
import os
import sys
import types

import numpy as np
import onnx
from onnx import helper, numpy_helper
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "cam")
H_IN, W_IN = 13, 11


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2 = torch.nn.Conv2d(6, 8, 3, padding=1)
        self.relu2 = torch.nn.ReLU()
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 5)
        self.head = torch.nn.Linear(8, 1)

    def features(self, x):
        return self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))

    def forward(self, x):
        f = self.features(x)
        return self.fc(torch.flatten(self.gap(f), 1)), self.head(f.mean(dim=(2, 3)))


class Head(torch.nn.Module):
    """One output of Net as a module (pytorch-grad-cam and Captum want one tensor)."""

    def __init__(self, net, k):
        super().__init__()
        self.net, self.k = net, k

    def forward(self, x):
        return self.net(x)[self.k]


def save(name, a):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def rel(a, b):
    a, b = [np.asarray(t.detach().numpy() if isinstance(t, torch.Tensor) else t, np.float64) for t in (a, b)]
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def up(m):
    """(N, 1, h, w) -> (N, 1, H, W), bilinear, align_corners=False (F.interpolate's)."""
    return F.interpolate(m, size=(H_IN, W_IN), mode="bilinear", align_corners=False)


# ---- the methods, from the papers ------------------------------------------------------------

def acts_grads(fn, layer, x, seed):
    """Activation A of module `layer` and dS/dA, S = sum(fn(x) * seed(out))."""
    store = {}
    h = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    out = fn(x)
    h.remove()
    A = store["a"]
    (g,) = torch.autograd.grad((out * seed(out)).sum(), A)
    return A.detach(), g.detach(), out.detach()


def gradcam(A, g, relu=True):
    """Selvaraju et al. 2017, eq. 1-2: alpha_k = mean_ij dS/dA_k; ReLU(sum_k alpha_k A_k)."""
    m = (g.mean(dim=(2, 3), keepdim=True) * A).sum(1, keepdim=True)
    return F.relu(m) if relu else m


def gradcam_pp(A, g):
    """Chattopadhyay et al. 2018, eq. 19 with the exp(S) trick (second and third
    derivatives of exp(S) are powers of the first, the exp factor cancels in
    alpha and is a positive constant in w): as pytorch-grad-cam computes it."""
    g2, g3 = g * g, g * g * g
    s = A.sum(dim=(2, 3), keepdim=True)
    a = g2 / (2 * g2 + s * g3 + 1e-6)
    a = torch.where(g != 0, a, torch.zeros_like(a))
    w = (F.relu(g) * a).sum(dim=(2, 3), keepdim=True)
    return F.relu((w * A).sum(1, keepdim=True))


def cam(A, W, cls):
    """Zhou et al. 2016, eq. 2 (M_c = sum_k w_k^c f_k), no bias, no ReLU."""
    return torch.einsum("nk,nkhw->nhw", W[cls], A)[:, None]


def score_cam(model_out, x, A, score_of, batch=5):
    """Wang et al. 2020, Algorithm 1: H_k = normalise(up(A_k)) (min-max per
    channel, + 1e-8 as pytorch-grad-cam), score_k = f(x o H_k), weights =
    softmax over k; map = ReLU(sum_k w_k A_k)."""
    N, K = A.shape[:2]
    U = F.interpolate(A, size=(H_IN, W_IN), mode="bilinear", align_corners=False)
    lo = U.flatten(2).min(-1)[0][:, :, None, None]
    hi = U.flatten(2).max(-1)[0][:, :, None, None]
    Hk = (U - lo) / (hi - lo + 1e-8)
    scores = torch.zeros(N, K)
    with torch.no_grad():
        for n in range(N):
            rows = x[n:n + 1] * Hk[n][:, None]          # (K, C, H, W)
            for k0 in range(0, K, batch):
                scores[n, k0:k0 + batch] = score_of(n, model_out(rows[k0:k0 + batch]))
    w = torch.softmax(scores, dim=1)
    return F.relu((w[:, :, None, None] * A).sum(1, keepdim=True)), scores


# ---- the independent implementations, when they import ----------------------------------------

def import_pytorch_grad_cam():
    path = os.environ.get("PYTORCH_GRAD_CAM")
    if not path:
        return None
    sys.path.insert(0, path)
    class Stub(types.ModuleType):
        def __getattr__(self, name):   # constants such as cv2.COLORMAP_JET
            return 0

    def stub(name, **kw):
        mod = sys.modules.setdefault(name, Stub(name))
        for k, v in kw.items():
            setattr(mod, k, v)
        return mod
    stub("cv2", resize=lambda img, size: img, merge=lambda l: np.stack(l, -1))

    class _Compose(list):
        def __init__(self, items):
            super().__init__(items)
    stub("ttach", Compose=_Compose, HorizontalFlip=lambda: None, Multiply=lambda factors: None)
    if "tqdm" not in sys.modules:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            stub("tqdm", tqdm=lambda it, **k: it)
    sk = stub("sklearn")
    sk.decomposition = stub("sklearn.decomposition", NMF=None, KernelPCA=None)
    try:
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
    except Exception as ex:  # noqa: BLE001
        print("pytorch-grad-cam does not import (%s): formulas only" % ex)
        return None
    return pgc, ClassifierOutputTarget, ClassifierOutputSoftmaxTarget


def pgc_raw(pgc_cls, model, layer, x, targets):
    """pytorch-grad-cam's raw map (get_cam_image, then its np.maximum(., 0)),
    before scale_cam_image's min-max normalisation and cv2 resize."""
    c = pgc_cls(model=model, target_layers=[layer])
    out = c.activations_and_grads(x)
    if c.uses_gradients:
        model.zero_grad()
        sum(t(o) for t, o in zip(targets, out)).backward(retain_graph=True)
    A = c.activations_and_grads.activations[0].numpy()
    G = c.activations_and_grads.gradients[0].numpy() if c.uses_gradients else None
    m = np.maximum(c.get_cam_image(x, layer, targets, A, G), 0)
    c.activations_and_grads.release()
    return torch.from_numpy(np.asarray(m, np.float32))[:, None]


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(31)
    net = Net().eval()
    with torch.no_grad():   # a livelier head: bigger weights, so the classes differ
        net.fc.weight.mul_(3)
    x = torch.randn(2, 3, H_IN, W_IN, generator=torch.Generator().manual_seed(22))
    save("input", x)

    # -- export, naming the hidden tensors --
    path = os.path.join(OUT, "cam_net.onnx")
    torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits", "score"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "score": {0: "batch"}})
    m = onnx.load(path)
    ops = [n.op_type for n in m.graph.node]
    assert "GlobalAveragePool" in ops and "ReduceMean" in ops and ops.count("Gemm") == 2, ops
    relus = [n for n in m.graph.node if n.op_type == "Relu"]
    pool = [n for n in m.graph.node if n.op_type == "MaxPool"][0]
    rename = {relus[0].output[0]: "feat1", relus[1].output[0]: "feat", pool.output[0]: "pooled"}
    for n in m.graph.node:
        n.output[:] = [rename.get(o, o) for o in n.output]
        n.input[:] = [rename.get(i, i) for i in n.input]
    onnx.checker.check_model(m)
    onnx.save(m, path)
    make_variants(m)

    logits_fn, score_fn = Head(net, 0), Head(net, 1)
    with torch.no_grad():
        logits, score = net(x)
    save("logits", logits)
    top = logits.argmax(1)
    onehot = lambda t: (lambda out: F.one_hot(torch.as_tensor(t), out.shape[1]).float())
    ones = lambda out: torch.ones_like(out)
    print("top-1", top.tolist())

    # -- Grad-CAM, Grad-CAM++ at "feat" (the default layer), top-1 --
    A, g, _ = acts_grads(logits_fn, net.relu2, x, onehot(top))
    m_gc = gradcam(A, g)
    save("gradcam", up(m_gc))
    save("gradcam_lowres", m_gc)
    save("gradcam_norelu_lowres", gradcam(A, g, relu=False))
    m_pp = gradcam_pp(A, g)
    save("gradcam_pp", up(m_pp))
    # -- CAM from the head's weights: equals h*w * Grad-CAM on a GAP + linear head --
    m_cam = cam(A, net.fc.weight.detach(), top)
    assert rel(m_cam, gradcam(A, g, relu=False) * A.shape[2] * A.shape[3]) < 1e-5
    save("cam_norelu_lowres", m_cam)
    save("cam", up(F.relu(m_cam)))
    # -- other targets and layers --
    A3, g3, _ = acts_grads(logits_fn, net.relu2, x, onehot([3, 3]))
    save("gradcam_t3", up(gradcam(A3, g3)))
    save("cam_t3", up(F.relu(cam(A3, net.fc.weight.detach(), [3, 3]))))
    As, gs, _ = acts_grads(score_fn, net.relu2, x, ones)
    save("gradcam_score", up(gradcam(As, gs)))
    save("gradcam_pp_score", up(gradcam_pp(As, gs)))
    m_cs = (net.head.weight.detach()[0][None, :, None, None] * As).sum(1, keepdim=True)
    save("cam_score", up(F.relu(m_cs)))
    A1, g1, _ = acts_grads(logits_fn, net.relu1, x, onehot(top))
    save("gradcam_feat1", up(gradcam(A1, g1)))   # same size as the input: no resampling
    save("gradcam_pp_feat1", up(gradcam_pp(A1, g1)))
    # neuron target: channel 2 of "feat" summed over its map, at the default
    # layer: the map before it, conv2's output (pre-ReLU)
    feat_c2 = lambda t: net.features(t)
    Ap, gp, _ = acts_grads(feat_c2, net.conv2, x, lambda out: F.one_hot(torch.tensor(2), 8).float()[None, :, None, None]
                           .expand_as(out))
    save("gradcam_neuron", up(gradcam(Ap, gp)))

    # -- Score-CAM --
    probs = lambda n, out: torch.softmax(out, 1)[:, top[n]]
    sc, scores = score_cam(logits_fn, x, A, probs)
    save("score_cam", up(sc))
    save("score_cam_scores", scores)
    sc_s, _ = score_cam(score_fn, x, As, lambda n, out: out[:, 0])
    save("score_cam_score", up(sc_s))

    # -- Guided Grad-CAM: guided backprop * upsampled Grad-CAM (Selvaraju et al., sec. 3.2) --
    gb = guided_backprop(logits_fn, net, x, onehot(top))
    ggc = gb * up(m_gc)
    save("guided_gradcam", ggc)

    # -- the libraries --
    pg = import_pytorch_grad_cam()
    if pg:
        pgc, COT, COST = pg
        tg = [COT(int(c)) for c in top]
        e1 = rel(up(pgc_raw(pgc.GradCAM, logits_fn, net.relu2, x, tg)), up(m_gc))
        e2 = rel(up(pgc_raw(pgc.GradCAMPlusPlus, logits_fn, net.relu2, x, tg)), up(m_pp))
        e3 = rel(up(pgc_raw(pgc.GradCAM, logits_fn, net.relu1, x, tg)), up(gradcam(A1, g1)))
        e4 = rel(up(pgc_raw(pgc.GradCAMPlusPlus, score_fn, net.relu2, x, [lambda o: o[0]] * 2)), up(gradcam_pp(As, gs)))
        saved = torch.nn.UpsamplingBilinear2d   # align_corners=True; glassbox: False
        torch.nn.UpsamplingBilinear2d = lambda size: (lambda t: F.interpolate(t, size=size, mode="bilinear",
                                                                              align_corners=False))
        try:
            e5 = rel(up(pgc_raw(pgc.ScoreCAM, logits_fn, net.relu2, x, [COST(int(c)) for c in top])), up(sc))
            e6 = rel(up(pgc_raw(pgc.ScoreCAM, score_fn, net.relu2, x, [lambda o: o[0]] * 2)), up(sc_s))
        finally:
            torch.nn.UpsamplingBilinear2d = saved
        print("pytorch-grad-cam vs formulas: GradCAM %.1e GradCAM++ %.1e GradCAM(feat1) %.1e GradCAM++(score) %.1e"
              " ScoreCAM %.1e ScoreCAM(score) %.1e" % (e1, e2, e3, e4, e5, e6))
        assert max(e1, e2, e3, e4, e5, e6) < 1e-5
    try:
        from captum.attr import GuidedGradCam, LayerAttribution, LayerGradCam
    except ImportError as ex:
        print("Captum does not import (%s): formulas only" % ex)
    else:
        lg = LayerGradCam(logits_fn, net.relu2)
        e1 = rel(LayerAttribution.interpolate(lg.attribute(x, target=top.tolist(), relu_attributions=True),
                                              (H_IN, W_IN), "bilinear"), up(m_gc))
        e2 = rel(GuidedGradCam(logits_fn, net.relu2).attribute(x, target=top.tolist(), interpolate_mode="bilinear"),
                 ggc)
        e3 = rel(LayerGradCam(score_fn, net.relu2).attribute(x, target=0, relu_attributions=True), gradcam(As, gs))
        print("Captum vs formulas: LayerGradCam %.1e GuidedGradCam %.1e LayerGradCam(score) %.1e" % (e1, e2, e3))
        assert max(e1, e2, e3) < 1e-5
    print("wrote", OUT)


def guided_backprop(fn, net, x, seed):
    """Springenberg et al. 2015: through each nn.ReLU only positive gradient
    where the input was positive (Captum's GuidedBackprop hooks)."""
    hooks = [mod.register_full_backward_hook(lambda mod, gi, go: (F.relu(gi[0]),))
             for mod in net.modules() if isinstance(mod, torch.nn.ReLU)]
    xx = x.clone().requires_grad_(True)
    out = fn(xx)
    (g,) = torch.autograd.grad((out * seed(out)).sum(), xx)
    for h in hooks:
        h.remove()
    return g.detach()


def make_variants(m):
    """cam_mm.onnx: logits head as ReduceMean(keepdims=1) -> Reshape -> MatMul -> Add;
    cam_mlp.onnx: GAP -> Flatten -> Gemm(8->8) -> Relu -> Gemm(8->5), not a CAM head."""
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    gemms = [n for n in m.graph.node if n.op_type == "Gemm"]
    fc = [n for n in gemms if n.output[0] == "logits"][0]
    Wfc, bfc = inits[fc.input[1]], inits[fc.input[2]]
    body = []
    for n in m.graph.node:   # everything up to "feat"
        body.append(n)
        if "feat" in n.output:
            break
    keep = {i for n in body for i in n.input}
    base_inits = [t for t in m.graph.initializer if t.name in keep]
    inp = m.graph.input[0]

    def out_vi(name, k):
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", k])

    nodes = list(body) + [
        helper.make_node("ReduceMean", ["feat"], ["gap"], axes=[2, 3], keepdims=1, name="mean"),
        helper.make_node("Reshape", ["gap", "shape2"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "Wt"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "b"], ["logits"], name="bias"),
    ]
    extra = [numpy_helper.from_array(np.array([0, -1], np.int64), "shape2"),
             numpy_helper.from_array(np.ascontiguousarray(Wfc.T), "Wt"), numpy_helper.from_array(bfc, "b")]
    g = helper.make_graph(nodes, "cam_mm", [inp], [out_vi("logits", 5)], base_inits + extra)
    mm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(mm)
    onnx.save(mm, os.path.join(OUT, "cam_mm.onnx"))

    rs = np.random.RandomState(23)
    W1 = (rs.randn(8, 8) * 0.5).astype(np.float32)
    nodes = list(body) + [
        helper.make_node("GlobalAveragePool", ["feat"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "W1", "b1"], ["hid"], transB=1, name="fc1"),
        helper.make_node("Relu", ["hid"], ["hid_r"], name="relu_h"),
        helper.make_node("Gemm", ["hid_r", "W2", "b2"], ["logits"], transB=1, name="fc2"),
    ]
    extra = [numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(np.zeros(8, np.float32) + 0.1, "b1"),
             numpy_helper.from_array(Wfc, "W2"), numpy_helper.from_array(bfc, "b2")]
    g = helper.make_graph(nodes, "cam_mlp", [inp], [out_vi("logits", 5)], base_inits + extra)
    ml = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(ml)
    onnx.save(ml, os.path.join(OUT, "cam_mlp.onnx"))

    # cam_nhwc.onnx: the whole cam_net behind a Transpose from an NHWC input
    # (o.layout = NHWC: masks and guided maps in the input's layout)
    nodes = [helper.make_node("Transpose", ["input_nhwc"], ["input"], perm=[0, 3, 1, 2], name="to_nchw")]
    nodes += list(m.graph.node)
    inp = helper.make_tensor_value_info("input_nhwc", onnx.TensorProto.FLOAT, ["batch", H_IN, W_IN, 3])
    g = helper.make_graph(nodes, "cam_nhwc", [inp], list(m.graph.output), list(m.graph.initializer))
    mn = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(mn)
    onnx.save(mn, os.path.join(OUT, "cam_nhwc.onnx"))


if __name__ == "__main__":
    main()
