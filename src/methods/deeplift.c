/* deeplift.c — DeepLIFT (Shrikumar, Greenside & Kundaje 2017) and
 * DeepLIFT-SHAP (Lundberg & Lee 2017, sec. 4.2; Captum's DeepLiftShap).
 *
 * DeepLIFT explains f(x) - f(x') for a reference x' by "multipliers"
 * m = dC/dDelta propagated backward with the chain rule (paper, sec. 3.3);
 * the attribution is (x - x') * m, and its sum is exactly f(x) - f(x')
 * (summation-to-delta, eq. 1) because every rule below maps the differences
 * exactly:
 *   linear ops (Conv, Gemm, MatMul with a constant, Add, Sub, pooling by
 *       averaging, BatchNormalization, Concat, Reshape, Transpose, Pad...):
 *       the gradient (Linear rule, sec. 3.5.1): Delta y = J Delta x exactly.
 *   elementwise nonlinearities (Relu, Sigmoid, Tanh, Clip, HardSwish, Elu,
 *       Softplus, Exp, Erf...): the Rescale rule (sec. 3.5.2),
 *       m_x = m_y * (y - y') / (x - x'), with the gradient where
 *       |x - x'| < 1e-10 (Captum's nonlinear(), eps = 1e-10).
 *   Mul of two varying tensors (SiLU x * sigmoid(x), squeeze-excitation
 *       gates): the exact product split Delta(ab) = (b + b')/2 Delta a +
 *       (a + a')/2 Delta b, i.e. m_a = m_y (b + b')/2, m_b = m_y (a + a')/2
 *       (the Shapley split of a two-player product; Captum has no rule for
 *       it and treats Mul as linear, which breaks summation-to-delta).
 *   MaxPool: Captum's maxpool() rule, which keeps summation-to-delta with
 *       max-pooling: with M = max(y, y'), the contributions
 *         C = unpool_x(m_y (M - y')) + unpool_x'(m_y (y - M))
 *       (unpool_x scatters to the argmax of the window at x) give
 *       m_x = C / (x - x'), or the gradient where |x - x'| < 1e-10.
 *       o->deeplift_maxpool_grad = 1 leaves max-pooling to its gradient
 *       instead: that is what Captum's DeepLift computes when run on torch
 *       1.13 (its maxpool hook does not fire; checked exactly by
 *       tests/scripts/deeplift_reference.py), at the price of
 *       summation-to-delta.
 *   anything else (Softmax, LayerNormalization, Div, MatMul of two
 *       activations...): the gradient — summation-to-delta then holds only
 *       approximately; the reported delta shows by how much.
 *
 * Because glassbox sees every node of the graph, a PyTorch module called
 * twice (torchvision's ResNet calls one nn.ReLU twice per block, which
 * Captum's module hooks cannot handle) is simply two nodes here.
 *
 * RevealCancel (sec. 3.5.3, o->deeplift_rule): see its section below; it
 * applies to nonlinearities fed directly by a Conv / Gemm / MatMul layer,
 * the others keep Rescale.
 */
#include "methods/relevance.h"
#include "engine/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESCALE_EPS 1e-10   /* Captum's DeepLift eps for |x - x'| */

/* ---- rules -------------------------------------------------------------------------------- */

static gb_status need_ref(const gb_rule_call *c, gb_ctx *ctx) {
    if (c->ref_in && c->ref_out) return GB_OK;
    return gb__err(ctx, GB_ERR_INTERNAL, "deeplift: %s: no reference activations", c->node_name);
}

/* Rescale (Shrikumar et al. 2017, sec. 3.5.2). */
static gb_status rescale_rule(void *user, const gb_rule_call *c) {
    gb_ctx *ctx = user;
    if (!c->grad_out[0]) return GB_OK;
    if (!c->grad_in[0]) return gb_rule_default(c, NULL, NULL, NULL);
    gb_status st = need_ref(c, ctx);
    if (st) return st;
    bool elementwise = c->in[0]->numel == c->out[0]->numel;
    for (int k = 1; k < c->n_in; k++) elementwise &= c->grad_in[k] == NULL;   /* other inputs constant */
    if (!elementwise) return gb_rule_default(c, NULL, NULL, NULL);
    const float *x = c->in[0]->data, *xr = c->ref_in[0]->data, *y = c->out[0]->data, *yr = c->ref_out[0]->data,
                *g = c->grad_out[0]->data;
    float *dx = c->grad_in[0]->data;
    int64_t n = c->in[0]->numel;
    bool tiny = false;
    for (int64_t i = 0; i < n && !tiny; i++) tiny = fabsf(x[i] - xr[i]) < RESCALE_EPS;
    gb_tensor *grad = NULL;
    if (tiny) {
        /* the gradient at x where the difference vanishes */
        gb_tensor *gi[8] = {0};
        if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, c->in[0]->ndim, c->in[0]->dims, &grad))) return st;
        gi[0] = grad;
        if ((st = gb_rule_default(c, NULL, NULL, gi))) {
            gb_tensor_free(grad);
            return st;
        }
    }
    const float *gd = grad ? grad->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - xr[i];
        dx[i] += fabsf(d) < RESCALE_EPS ? gd[i] : g[i] * (y[i] - yr[i]) / d;
    }
    gb_tensor_free(grad);
    return GB_OK;
}

/* Product: m_a = m_y (b + b')/2, m_b = m_y (a + a')/2 — Mul's own backward
 * evaluated at the midpoints (it broadcasts and reduces as the forward did). */
static gb_status mul_rule(void *user, const gb_rule_call *c) {
    gb_ctx *ctx = user;
    if (!c->grad_out[0] || c->n_in != 2) return gb_rule_default(c, NULL, NULL, NULL);
    gb_status st = need_ref(c, ctx);
    if (st) return st;
    gb_tensor *mid[2] = {0};
    for (int k = 0; k < 2 && !st; k++) {
        if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, c->in[k]->ndim, c->in[k]->dims, &mid[k]))) break;
        const float *a = c->in[k]->data, *ar = c->ref_in[k]->data;
        float *m = mid[k]->data;
        for (int64_t i = 0; i < c->in[k]->numel; i++) m[i] = 0.5f * (a[i] + ar[i]);
    }
    const gb_tensor *in[2] = {mid[0], mid[1]};
    if (!st) st = gb_rule_default(c, in, NULL, NULL);
    gb_tensor_free(mid[0]);
    gb_tensor_free(mid[1]);
    return st;
}

/* Captum's maxpool() (deep_lift.py): see the top comment. */
static gb_status maxpool_rule(void *user, const gb_rule_call *c) {
    gb_ctx *ctx = user;
    if (!c->grad_in[0] || !c->grad_out[0]) return GB_OK;
    gb_status st = need_ref(c, ctx);
    if (st) return st;
    const gb_tensor *X = c->in[0];
    const float *y = c->out[0]->data, *yr = c->ref_out[0]->data, *g = c->grad_out[0]->data;
    int64_t no = c->out[0]->numel, nx = X->numel;
    gb_tensor *ga = NULL, *gbt = NULL, *con = NULL, *grad = NULL;
    if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, c->out[0]->ndim, c->out[0]->dims, &ga)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, c->out[0]->ndim, c->out[0]->dims, &gbt)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, X->ndim, X->dims, &con)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, X->ndim, X->dims, &grad)))
        goto out;
    float *a = ga->data, *b = gbt->data;
    for (int64_t i = 0; i < no; i++) {
        float M = y[i] > yr[i] ? y[i] : yr[i];
        a[i] = g[i] * (M - yr[i]);
        b[i] = g[i] * (y[i] - M);
    }
    const gb_tensor *in_x[8] = {0}, *in_r[8] = {0}, *go_a[8] = {0}, *go_b[8] = {0};
    gb_tensor *gi[8] = {0};
    in_x[0] = X;
    in_r[0] = c->ref_in[0];
    go_a[0] = ga;
    go_b[0] = gbt;
    gi[0] = con;
    if ((st = gb_rule_default(c, in_x, go_a, gi)) || (st = gb_rule_default(c, in_r, go_b, gi))) goto out;
    gi[0] = grad;
    if ((st = gb_rule_default(c, NULL, NULL, gi))) goto out;
    const float *x = X->data, *xr = c->ref_in[0]->data, *cd = con->data, *gd = grad->data;
    float *dx = c->grad_in[0]->data;
    for (int64_t i = 0; i < nx; i++) {
        float d = x[i] - xr[i];
        dx[i] += fabsf(d) < RESCALE_EPS ? gd[i] : cd[i] / d;
    }
out:
    gb_tensor_free(ga);
    gb_tensor_free(gbt);
    gb_tensor_free(con);
    gb_tensor_free(grad);
    return st;
}

static const char *const rescale_ops[] = {"Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "Tanh",
                                          "Clip", "HardSigmoid", "HardSwish", "Softplus", "Softsign",
                                          "ThresholdedRelu", "Shrink", "Exp", "Log", "Sqrt", "Abs", "Erf", "Pow"};
#define N_RESCALE (int)(sizeof rescale_ops / sizeof *rescale_ops)
#define N_RULES (N_RESCALE + 2)

static int make_rules(gb_ctx *ctx, gb_rule *rules, bool maxpool_grad) {
    int n = 0;
    for (int k = 0; k < N_RESCALE; k++) rules[n++] = (gb_rule){.op_type = rescale_ops[k], .fn = rescale_rule, .user = ctx};
    rules[n++] = (gb_rule){.op_type = "Mul", .fn = mul_rule, .user = ctx};
    if (!maxpool_grad) rules[n++] = (gb_rule){.op_type = "MaxPool", .fn = maxpool_rule, .user = ctx};
    return n;
}

/* ---- RevealCancel (Shrikumar et al. 2017, sec. 3.5.3) --------------------------------------
 *
 * For a nonlinearity y = f(x) whose input x = W a + b comes straight from a
 * layer (Conv, Gemm, MatMul with a constant weight; x used by nothing else),
 * the difference Delta x is split into its positive and negative parts by the
 * linear rule (sec. 3.5.1): Delta x+ = sum of the terms w Delta a > 0,
 * Delta x- = sum of the terms < 0, i.e. with a+ / a- the parts of Delta a
 * and W+ / W- of W:
 *     Delta x+ = W+ Delta a+ + W- Delta a-,   Delta x- = W- Delta a+ + W+ Delta a-.
 * The nonlinearity gives each part the average of its two orderings:
 *     Delta y+ = 1/2 (f(x' + Dx+) - f(x')) + 1/2 (f(x) - f(x' + Dx-))
 *     Delta y- = 1/2 (f(x' + Dx-) - f(x')) + 1/2 (f(x) - f(x' + Dx+))
 * (so Delta y+ + Delta y- = Delta y: summation-to-delta still holds), with
 * multipliers M+ = m_y Delta y+ / Delta x+ and M- = m_y Delta y- / Delta x-.
 * The layer then hands its input the multiplier of the part each term fell
 * in (deeplift's Dense/Conv layers, kundajelab/deeplift):
 *     Delta a > 0:  W+^T M+ + W-^T M-;   Delta a < 0:  W+^T M- + W-^T M+;
 *     Delta a = 0:  W^T (M+ + M-) / 2.
 * Delta x+- need a forward computation at the layer before the nonlinearity's
 * backward runs, so each pass makes two backward sweeps: the first (rules
 * rc_collect on the layers) only computes Delta x+- into the pair's
 * buffers; the second propagates. Nonlinearities fed by anything else (a
 * residual Add, BatchNormalization kept as a node) use Rescale. */

typedef struct {
    gb_ctx *ctx;
    gb_tensor *dp, *dn;   /* Delta x+ / Delta x-, then M+ / M- (the layer output's shape) */
} rc_pair;

typedef struct {
    rc_pair *pairs;
    int n;                /* pairs */
    gb_rule *pre, *rules; /* the two sweeps' rules */
    int n_rules;
} rc_plan;

static gb_status ensure_like(gb_ctx *ctx, gb_tensor **t, const gb_tensor *like) {
    if (*t && (*t)->numel == like->numel) {
        (*t)->ndim = like->ndim;
        memcpy((*t)->dims, like->dims, sizeof like->dims);
        return GB_OK;
    }
    gb_tensor_free(*t);
    *t = NULL;
    return gb_tensor_create(ctx, GB_DTYPE_F32, like->ndim, like->dims, t);
}

/* A layer's forward on a (no bias: the bias cancels in differences) with
 * weight W into out (overwritten). */
static gb_status layer_nobias(const gb_rule_call *c, gb_ctx *ctx, const gb_tensor *a, const gb_tensor *W, gb_tensor *out) {
    const gb_tensor *in[8] = {0};
    gb_tensor *outs[8] = {0}, *zb = NULL;
    gb_status st = GB_OK;
    in[0] = a;
    in[1] = W;
    if (c->n_in > 2 && c->in[2]) {
        if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, c->in[2]->ndim, c->in[2]->dims, &zb))) return st;
        in[2] = zb;
    }
    outs[0] = out;
    st = gb_rule_forward(c, in, outs);
    gb_tensor_free(zb);
    return st;
}

/* dst += src elementwise */
static void add_to(gb_tensor *dst, const gb_tensor *src) {
    float *d = dst->data;
    const float *s = src->data;
    for (int64_t i = 0; i < dst->numel; i++) d[i] += s[i];
}

typedef struct {
    gb_tensor *ap, *an, *wp, *wn, *t;
} rc_tmp;

static void rc_tmp_free(rc_tmp *k) {
    gb_tensor_free(k->ap);
    gb_tensor_free(k->an);
    gb_tensor_free(k->wp);
    gb_tensor_free(k->wn);
    gb_tensor_free(k->t);
}

/* Delta a+-, W+- of a layer call. */
static gb_status rc_parts(const gb_rule_call *c, gb_ctx *ctx, rc_tmp *k) {
    const gb_tensor *a = c->in[0], *ar = c->ref_in[0], *W = c->in[1];
    gb_status st;
    if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, a->ndim, a->dims, &k->ap)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, a->ndim, a->dims, &k->an)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, W->ndim, W->dims, &k->wp)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, W->ndim, W->dims, &k->wn)))
        return st;
    const float *x = a->data, *xr = ar->data, *w = W->data;
    float *p = k->ap->data, *n = k->an->data, *q = k->wp->data, *v = k->wn->data;
    for (int64_t i = 0; i < a->numel; i++) {
        float d = x[i] - xr[i];
        p[i] = d > 0 ? d : 0;
        n[i] = d < 0 ? d : 0;
    }
    for (int64_t i = 0; i < W->numel; i++) {
        q[i] = w[i] > 0 ? w[i] : 0;
        v[i] = w[i] < 0 ? w[i] : 0;
    }
    return GB_OK;
}

/* First sweep, at the layer: Delta x+ and Delta x- into the pair. */
static gb_status rc_collect(void *user, const gb_rule_call *c) {
    rc_pair *pr = user;
    gb_ctx *ctx = pr->ctx;
    gb_status st = need_ref(c, ctx);
    if (st) return st;
    rc_tmp k = {0};
    const gb_tensor *y = c->out[0];
    if ((st = rc_parts(c, ctx, &k)) || (st = ensure_like(ctx, &pr->dp, y)) || (st = ensure_like(ctx, &pr->dn, y)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, y->ndim, y->dims, &k.t)))
        goto out;
    if ((st = layer_nobias(c, ctx, k.ap, k.wp, pr->dp)) || (st = layer_nobias(c, ctx, k.an, k.wn, k.t))) goto out;
    add_to(pr->dp, k.t);
    if ((st = layer_nobias(c, ctx, k.ap, k.wn, pr->dn)) || (st = layer_nobias(c, ctx, k.an, k.wp, k.t))) goto out;
    add_to(pr->dn, k.t);
out:
    rc_tmp_free(&k);
    return st;
}

/* Second sweep, at the nonlinearity: M+ and M- into the pair (and the
 * Rescale multiplier into the usual buffer, which the layer's rule ignores). */
static gb_status rc_act(void *user, const gb_rule_call *c) {
    rc_pair *pr = user;
    gb_ctx *ctx = pr->ctx;
    if (!c->grad_out[0] || !c->grad_in[0]) return GB_OK;
    gb_status st = need_ref(c, ctx);
    if (st) return st;
    const gb_tensor *X = c->in[0];
    int64_t n = X->numel;
    gb_tensor *xin = NULL, *fp = NULL, *fn = NULL;
    const gb_tensor *in[8] = {0};
    gb_tensor *outs[8] = {0};
    if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, X->ndim, X->dims, &xin)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, c->out[0]->ndim, c->out[0]->dims, &fp)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, c->out[0]->ndim, c->out[0]->dims, &fn)))
        goto out;
    const float *xr = c->ref_in[0]->data, *dp = pr->dp->data, *dn = pr->dn->data;
    float *xi = xin->data;
    in[0] = xin;
    for (int64_t i = 0; i < n; i++) xi[i] = xr[i] + dp[i];
    outs[0] = fp;
    if ((st = gb_rule_forward(c, in, outs))) goto out;
    for (int64_t i = 0; i < n; i++) xi[i] = xr[i] + dn[i];
    outs[0] = fn;
    if ((st = gb_rule_forward(c, in, outs))) goto out;
    if ((st = rescale_rule(ctx, c))) goto out;
    const float *y = c->out[0]->data, *yr = c->ref_out[0]->data, *g = c->grad_out[0]->data, *yp = fp->data,
                *yn = fn->data, *x = X->data;
    float *mp = pr->dp->data, *mn = pr->dn->data;   /* overwritten in place: M+ / M- */
    for (int64_t i = 0; i < n; i++) {
        double dyp = 0.5 * ((double)yp[i] - yr[i]) + 0.5 * ((double)y[i] - yn[i]);
        double dyn = 0.5 * ((double)yn[i] - yr[i]) + 0.5 * ((double)y[i] - yp[i]);
        double dx = (double)x[i] - xr[i], rescale = fabs(dx) < RESCALE_EPS ? 0 : ((double)y[i] - yr[i]) / dx;
        /* a part too small to divide by gets the Rescale multiplier */
        double a = fabs(dp[i]) < RESCALE_EPS ? rescale : dyp / dp[i];
        double b = fabs(dn[i]) < RESCALE_EPS ? rescale : dyn / dn[i];
        mp[i] = (float)(g[i] * a);
        mn[i] = (float)(g[i] * b);
    }
out:
    gb_tensor_free(xin);
    gb_tensor_free(fp);
    gb_tensor_free(fn);
    return st;
}

/* Second sweep, at the layer: the input's multiplier by the sign of Delta a. */
static gb_status rc_linear(void *user, const gb_rule_call *c) {
    rc_pair *pr = user;
    gb_ctx *ctx = pr->ctx;
    if (!c->grad_in[0]) return GB_OK;
    gb_status st = need_ref(c, ctx);
    if (st) return st;
    rc_tmp k = {0};
    gb_tensor *pos = NULL, *neg = NULL, *zer = NULL, *avg = NULL;
    const gb_tensor *A = c->in[0];
    if ((st = rc_parts(c, ctx, &k)) || (st = gb_tensor_create(ctx, GB_DTYPE_F32, A->ndim, A->dims, &pos)) ||
        (st = gb_tensor_create(ctx, GB_DTYPE_F32, A->ndim, A->dims, &neg)))
        goto out;
    const gb_tensor *in[8] = {0}, *go[8] = {0};
    gb_tensor *gi[8] = {0};
#define BWD(W, M, acc)                                                                                               do {                                                                                                                 in[1] = (W);                                                                                                     go[0] = (M);                                                                                                     gi[0] = (acc);                                                                                                   if ((st = gb_rule_default(c, in, go, gi))) goto out;                                                         } while (0)
    BWD(k.wp, pr->dp, pos);
    BWD(k.wn, pr->dn, pos);
    BWD(k.wn, pr->dp, neg);
    BWD(k.wp, pr->dn, neg);
    const float *x = A->data, *xr = c->ref_in[0]->data;
    bool zeros = false;
    for (int64_t i = 0; i < A->numel && !zeros; i++) zeros = x[i] == xr[i];
    if (zeros) {
        if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, A->ndim, A->dims, &zer)) ||
            (st = gb_tensor_create(ctx, GB_DTYPE_F32, pr->dp->ndim, pr->dp->dims, &avg)))
            goto out;
        float *av = avg->data;
        const float *p = pr->dp->data, *q = pr->dn->data;
        for (int64_t i = 0; i < avg->numel; i++) av[i] = 0.5f * (p[i] + q[i]);
        BWD(c->in[1], avg, zer);
    }
#undef BWD
    float *dx = c->grad_in[0]->data;
    const float *pd = pos->data, *nd = neg->data, *zd = zer ? zer->data : NULL;
    for (int64_t i = 0; i < A->numel; i++) {
        float d = x[i] - xr[i];
        dx[i] += d > 0 ? pd[i] : d < 0 ? nd[i] : zd[i];
    }
out:
    rc_tmp_free(&k);
    gb_tensor_free(pos);
    gb_tensor_free(neg);
    gb_tensor_free(zer);
    gb_tensor_free(avg);
    return st;
}

static bool is_rescale_op(const char *op) {
    for (int k = 0; k < N_RESCALE; k++)
        if (!strcmp(rescale_ops[k], op)) return true;
    return false;
}

static void rc_free(rc_plan *p) {
    for (int i = 0; i < p->n; i++) {
        gb_tensor_free(p->pairs[i].dp);
        gb_tensor_free(p->pairs[i].dn);
    }
    free(p->pairs);
    free(p->pre);
    free(p->rules);
    memset(p, 0, sizeof *p);
}

/* Find the (layer -> nonlinearity) pairs and build both sweeps' rules. */
static gb_status rc_build(gb_explainer *e, rc_plan *p, bool maxpool_grad) {
    gb_session *s = e->s;
    const gb_model *m = e->m;
    int nn = m->n_nodes;
    p->pairs = calloc((size_t)nn + 1, sizeof *p->pairs);
    p->pre = calloc((size_t)nn + 1, sizeof *p->pre);
    p->rules = calloc((size_t)2 * nn + N_RULES + 1, sizeof *p->rules);
    if (!p->pairs || !p->pre || !p->rules) return gb__err(e->ctx, GB_ERR_NOMEM, "deeplift: out of memory");
    for (int i = 0; i < nn; i++) {
        const gb__node *a = &m->nodes[i];
        if (!is_rescale_op(a->op_type) || a->n_in < 1 || a->in[0] < 0) continue;
        int t = a->in[0], li = m->tensors[t].producer, uses = 0;
        if (li < 0) continue;
        const gb__node *l = &m->nodes[li];
        bool layer = (!strcmp(l->op_type, "Conv") || !strcmp(l->op_type, "Gemm") || !strcmp(l->op_type, "MatMul")) &&
                     l->n_in >= 2 && l->in[0] >= 0 && l->in[1] >= 0 && l->out[0] == t;
        if (!layer) continue;
        const gb_tensor *x = gb__session_tensor(s, l->in[0]), *w = gb__session_tensor(s, l->in[1]);
        (void)x;
        if (!w || !w->data || gb__session_tensor(s, t) == NULL) continue;
        if (!strcmp(l->op_type, "Gemm") && gb__attr_int(l, "transA", 0)) continue;
        /* the weight must be a plan-time constant and x used only by the nonlinearity */
        bool const_w = m->tensors[l->in[1]].producer < 0 && m->tensors[l->in[1]].init;
        if (!const_w) continue;
        for (int j = 0; j < nn; j++)
            for (int k = 0; k < m->nodes[j].n_in; k++) uses += m->nodes[j].in[k] == t;
        for (int j = 0; j < m->n_outputs; j++) uses += m->outputs[j] == t;
        if (uses != 1) continue;
        rc_pair *pr = &p->pairs[p->n];
        pr->ctx = e->ctx;
        p->pre[p->n] = (gb_rule){.node = l->name, .fn = rc_collect, .user = pr};
        p->rules[p->n_rules++] = (gb_rule){.node = l->name, .fn = rc_linear, .user = pr};
        p->rules[p->n_rules++] = (gb_rule){.node = a->name, .fn = rc_act, .user = pr};
        p->n++;
    }
    p->n_rules += make_rules(e->ctx, p->rules + p->n_rules, maxpool_grad);
    return GB_OK;
}

/* ---- references ------------------------------------------------------------------------- */

/* Gaussian blur of one item over its two spatial dims (as explain.h's
 * GB_BASELINE_BLUR: sigma pixels, <= 0: max(H, W) / 8; radius ceil(3 sigma);
 * edges replicated). dims: the input's (N, C, H, W) or (N, H, W, C). */
static gb_status blur_item(gb_ctx *ctx, const float *x, float *out, const int64_t *dims, gb_layout layout,
                           double sigma) {
    bool nhwc = layout == GB_LAYOUT_NHWC;
    int64_t C = nhwc ? dims[3] : dims[1], H = nhwc ? dims[1] : dims[2], W = nhwc ? dims[2] : dims[3];
    if (sigma <= 0) sigma = (double)(H > W ? H : W) / 8.0;
    int64_t rad = (int64_t)ceil(3 * sigma);
    double *k = malloc(sizeof *k * (size_t)(2 * rad + 1));
    float *tmp = malloc(sizeof *tmp * (size_t)(C * H * W));
    if (!k || !tmp) {
        free(k);
        free(tmp);
        return gb__err(ctx, GB_ERR_NOMEM, "deeplift: out of memory");
    }
    double sum = 0;
    for (int64_t i = -rad; i <= rad; i++) sum += k[i + rad] = exp(-0.5 * (double)(i * i) / (sigma * sigma));
    for (int64_t i = 0; i <= 2 * rad; i++) k[i] /= sum;
#define AT(c, h, w) (nhwc ? ((h) * W + (w)) * C + (c) : ((c) * H + (h)) * W + (w))
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) {
                double v = 0;
                for (int64_t j = -rad; j <= rad; j++) {
                    int64_t ww = w + j < 0 ? 0 : w + j >= W ? W - 1 : w + j;
                    v += k[j + rad] * x[AT(c, h, ww)];
                }
                tmp[AT(c, h, w)] = (float)v;
            }
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) {
                double v = 0;
                for (int64_t j = -rad; j <= rad; j++) {
                    int64_t hh = h + j < 0 ? 0 : h + j >= H ? H - 1 : h + j;
                    v += k[j + rad] * tmp[AT(c, hh, w)];
                }
                out[AT(c, h, w)] = (float)v;
            }
#undef AT
    free(k);
    free(tmp);
    return GB_OK;
}

/* The K references of item n into refs (K * D floats). */
static gb_status references(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, int64_t n, int64_t K,
                            gb__rng *rng, float *refs) {
    int64_t D = e->item_numel;
    const float *xn = (const float *)x->data + n * D;
    switch (o->baseline) {
    case GB_BASELINE_ZERO:
        memset(refs, 0, sizeof *refs * (size_t)(K * D));
        return GB_OK;
    case GB_BASELINE_BLUR:
        if (x->ndim != 4)
            return gb__err(e->ctx, GB_ERR_UNSUPPORTED, "deeplift: a blurred reference needs a 4-D image input (N, C, H, W)");
        return blur_item(e->ctx, xn, refs, x->dims, o->layout, o->blur_sigma);
    case GB_BASELINE_UNIFORM: {
        float lo, hi;
        gb__minmax(xn, D, &lo, &hi);
        for (int64_t i = 0; i < K * D; i++) refs[i] = lo + (float)((double)(hi - lo) * gb__rng_uniform(rng));
        return GB_OK;
    }
    case GB_BASELINE_TENSOR: {
        const gb_tensor *b = o->baseline_tensor;
        const float *bd = b->data;
        int64_t nb = b->numel / D;
        if (K == nb) memcpy(refs, bd, sizeof *refs * (size_t)(K * D));          /* the set, or one for all */
        else memcpy(refs, bd + n * D, sizeof *refs * (size_t)D);               /* (N, ...): item n's */
        return GB_OK;
    }
    default:
        return gb__err(e->ctx, GB_ERR_ARG, "deeplift: unknown baseline kind %d", (int)o->baseline);
    }
}

/* ---- the methods ------------------------------------------------------------------------ */

static gb_status run(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r, bool shap) {
    gb_ctx *ctx = e->ctx;
    if (o->deeplift_rule != GB_DEEPLIFT_RESCALE && o->deeplift_rule != GB_DEEPLIFT_REVEAL_CANCEL)
        return gb__err(ctx, GB_ERR_ARG, "deeplift: unknown rule %d", o->deeplift_rule);
    int64_t N = r->n_items, D = e->item_numel, K = 1;
    if (o->baseline == GB_BASELINE_TENSOR) {
        const gb_tensor *b = o->baseline_tensor;
        if (!b || b->dtype != GB_DTYPE_F32 || b->numel % D || b->numel == 0)
            return gb__err(ctx, GB_ERR_ARG, "deeplift: the reference must be float32 with a multiple of %lld elements (one input item)",
                           (long long)D);
        int64_t nb = b->numel / D;
        if (shap) K = nb;
        else if (nb != 1 && nb != N)
            return gb__err(ctx, GB_ERR_SHAPE, "deeplift: %lld references for %lld items (give 1 or one per item; "
                           "deeplift_shap takes a set)", (long long)nb, (long long)N);
    }
    gb_status st = gb__explain_alloc_attr(e, r, o->layer);
    if (st) return st;
    int64_t W = r->attr->numel / N, B = e->static_batch ? e->static_batch : e->batch;
    if (B > N * K) B = N * K;
    gb_rule rules[N_RULES];
    int n_rules = make_rules(ctx, rules, o->deeplift_maxpool_grad != 0);
    rc_plan rc = {0};
    if (o->deeplift_rule == GB_DEEPLIFT_REVEAL_CANCEL && (st = rc_build(e, &rc, o->deeplift_maxpool_grad != 0))) {
        rc_free(&rc);
        return st;
    }
    float *xr = malloc(sizeof *xr * (size_t)(B * D)), *rr = malloc(sizeof *rr * (size_t)(B * D));
    float *refs = malloc(sizeof *refs * (size_t)(K * D));
    float *m = malloc(sizeof *m * (size_t)(B * W)), *ya = NULL, *yr = NULL;
    int64_t *items = malloc(sizeof *items * (size_t)B);
    double *fr = malloc(sizeof *fr * (size_t)B);
    r->delta = calloc((size_t)N, sizeof *r->delta);
    r->baseline_value = calloc((size_t)N, sizeof *r->baseline_value);
    if (o->layer) {
        ya = malloc(sizeof *ya * (size_t)(B * W));
        yr = malloc(sizeof *yr * (size_t)(B * W));
    }
    if (!xr || !rr || !refs || !m || !items || !fr || !r->delta || !r->baseline_value || (o->layer && (!ya || !yr))) {
        st = gb__err(ctx, GB_ERR_NOMEM, "deeplift: out of memory");
        goto out;
    }
    gb__rng rng;
    gb__rng_seed(&rng, o->seed);
    float *attr = r->attr->data;
    const float *xd = x->data;
    int64_t total = N * K, cur = -1;
    for (int64_t q0 = 0; q0 < total; q0 += B) {
        int64_t b = total - q0 < B ? total - q0 : B;
        for (int64_t j = 0; j < b; j++) {
            int64_t q = q0 + j, n = q / K, k = q % K;
            if (n != cur && (st = references(e, x, o, n, K, &rng, refs))) goto out;
            cur = n;
            items[j] = n;
            memcpy(xr + j * D, xd + n * D, sizeof *xr * (size_t)D);
            memcpy(rr + j * D, refs + k * D, sizeof *rr * (size_t)D);
        }
        if ((st = gb__relevance_pass(e, r, xr, rr, b, items, o->layer, false, rc.n ? rc.pre : NULL, rc.n, rc.n ? rc.rules : rules,
                                      rc.n ? rc.n_rules : n_rules, NULL, fr, m, ya, yr)))
            goto out;
        for (int64_t j = 0; j < b; j++) {
            /* attribution = (a - a') * multiplier, averaged over the K references
             * (DeepLIFT-SHAP: Captum's DeepLiftShap mean over baselines) */
            int64_t n = items[j];
            const float *a = o->layer ? ya + j * W : xr + j * D, *ar = o->layer ? yr + j * W : rr + j * D;
            const float *mj = m + j * W;
            float *dst = attr + n * W;
            for (int64_t i = 0; i < W; i++) dst[i] += (a[i] - ar[i]) * mj[i] / (float)K;
            r->baseline_value[n] += fr[j] / (double)K;
        }
    }
    for (int64_t n = 0; n < N; n++) {
        double sum = 0;
        for (int64_t i = 0; i < W; i++) sum += attr[n * W + i];
        r->delta[n] = sum - (r->value[n] - r->baseline_value[n]);
    }
out:
    rc_free(&rc);
    free(xr);
    free(rr);
    free(refs);
    free(m);
    free(ya);
    free(yr);
    free(items);
    free(fr);
    return st;
}

static gb_status deeplift(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return run(e, x, o, r, false);
}

static gb_status deeplift_shap(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return run(e, x, o, r, true);
}

const gb_method gb__methods_relevance_deeplift[] = {
    {"deeplift", deeplift, GB_HEATMAP_SIGNED, GB_METHOD_LAYER | GB_METHOD_DELTA, "Shrikumar et al. 2017",
     "(x - x') times multipliers (Rescale rule); sums to f(x) - f(x')"},
    {"deeplift_shap", deeplift_shap, GB_HEATMAP_SIGNED, GB_METHOD_LAYER | GB_METHOD_DELTA | GB_METHOD_RANDOM,
     "Lundberg & Lee 2017", "DeepLIFT averaged over a set of references (--baseline set.npy)"},
    {0},
};
