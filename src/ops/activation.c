/*
 * activation.c — pointwise nonlinearities (float32):
 *   Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Sigmoid, Tanh, HardSigmoid,
 *   HardSwish, Softplus, Softsign, ThresholdedRelu, Shrink, and Clip
 *   (float32 and, from opset 12, int64).
 *
 * ONNX subtleties handled:
 * - Opset 1 versions carried a `consumed_inputs` attribute (ignored: it has
 *   no effect on the result). Later versions only widened the type lists.
 * - Clip: opsets 1-10 take `min`/`max` as float attributes (defaults
 *   numeric_limits lowest()/max()); from opset 11 they are optional scalar
 *   inputs 1 and 2, either of which may be omitted (empty name). Opset 12
 *   added integer types. min > max yields max everywhere (as numpy.clip).
 * - PRelu: from opset 7 `slope` broadcasts unidirectionally to X (NumPy
 *   alignment from the right). Opset 6 only said "if slope has size 1 it is
 *   shared"; PyTorch's opset-6 exports pass a per-channel slope of shape (C)
 *   for X of shape (N, C, ...), so there a 1-D slope of length C is applied
 *   along dim 1 (test_PReLU_*_multiparam).
 * - Defaults: LeakyRelu alpha 0.01, Elu alpha 1, Selu alpha 1.6732632...,
 *   gamma 1.0507009..., Celu alpha 1, HardSigmoid alpha 0.2 beta 0.5,
 *   HardSwish = x * HardSigmoid(x; 1/6, 1/2), ThresholdedRelu alpha 1,
 *   Shrink bias 0 lambd 0.5.
 * - NaN propagates through Relu, LeakyRelu, PRelu and Clip (comparisons are
 *   written so that a NaN input takes the identity branch).
 *
 * Backward: act_bwd_run (formulas listed there), PRelu_backward (input and
 * slope) and Clip_backward (input, and the min/max inputs). At every kink
 * the derivative is the one PyTorch's autograd returns — Relu'(0) = 0,
 * Clip passes the gradient where min <= x <= max, HardSwish'(+-3) from
 * torch's hardswish_backward — checked against tests/fixtures/
 * elem_grad_torch.h.
 */
#include "ops/util.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

static void split_range(int64_t n, int t, int nt, int64_t *lo, int64_t *hi) {
    *lo = n * t / nt;
    *hi = n * (t + 1) / nt;
}

static bool is_float_tensor(const gb_tensor *t) { return t->dtype == GB_DTYPE_F32; }

/* ---- pointwise activations with scalar parameters ------------------------- */

typedef enum {
    ACT_RELU,
    ACT_LEAKY_RELU,
    ACT_ELU,
    ACT_SELU,
    ACT_CELU,
    ACT_SIGMOID,
    ACT_TANH,
    ACT_HARD_SIGMOID,
    ACT_HARD_SWISH,
    ACT_SOFTPLUS,
    ACT_SOFTSIGN,
    ACT_THRESHOLDED_RELU,
    ACT_SHRINK,
} act_kind;

typedef struct {
    act_kind kind;
    float alpha, beta, gamma;
} act_params;

/* y[i] = f(x[i]) for i < n. One plain loop per activation. */
static void act_run(const act_params *p, float *y, const float *x, int64_t n) {
    const float alpha = p->alpha, beta = p->beta, gamma = p->gamma;
    switch (p->kind) {
    case ACT_RELU:
        /* simd: a select, not a branch (ReLU inputs are ~half negative, so a
         * branch mispredicts constantly). */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? alpha * x[i] : x[i];
        break;
    case ACT_ELU: /* x < 0: alpha * (e^x - 1) */
        for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? alpha * expm1f(x[i]) : x[i];
        break;
    case ACT_SELU: /* gamma * (x > 0 ? x : alpha * (e^x - 1)) */
        for (int64_t i = 0; i < n; i++)
            y[i] = gamma * (x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]));
        break;
    case ACT_CELU: /* max(0, x) + min(0, alpha * (e^(x/alpha) - 1)) */
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i] / alpha);
        break;
    case ACT_SIGMOID:
        /* 1 / (1 + e^-x), evaluated so that e^(...) never overflows */
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            if (v >= 0.0f) {
                y[i] = 1.0f / (1.0f + expf(-v));
            } else {
                float e = expf(v);
                y[i] = e / (1.0f + e);
            }
        }
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case ACT_HARD_SIGMOID: /* max(0, min(1, alpha * x + beta)) */
        for (int64_t i = 0; i < n; i++) y[i] = fmaxf(0.0f, fminf(1.0f, alpha * x[i] + beta));
        break;
    case ACT_HARD_SWISH: /* x * max(0, min(1, x / 6 + 1/2)) */
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * fmaxf(0.0f, fminf(1.0f, (1.0f / 6.0f) * x[i] + 0.5f));
        break;
    case ACT_SOFTPLUS: /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */
        for (int64_t i = 0; i < n; i++) y[i] = fmaxf(x[i], 0.0f) + log1pf(expf(-fabsf(x[i])));
        break;
    case ACT_SOFTSIGN: /* x / (1 + |x|) */
        for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    case ACT_THRESHOLDED_RELU: /* x > alpha ? x : 0 */
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > alpha ? x[i] : 0.0f;
        break;
    case ACT_SHRINK: /* x < -lambd ? x + bias : x > lambd ? x - bias : 0 */
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < -alpha ? x[i] + beta : x[i] > alpha ? x[i] - beta : 0.0f;
        break;
    }
}

/*
 * dx[i] += g[i] * f'(x[i]) (y = f(x) is the forward output). Comparisons are
 * written as PyTorch's backward kernels write them (threshold_backward,
 * leaky_relu_backward, elu_backward, hardsigmoid/hardswish_backward,
 * softshrink_backward), so the value at each kink is PyTorch's:
 *   Relu:        x > 0 ? 1 : 0                       (Relu'(0) = 0)
 *   LeakyRelu:   x > 0 ? 1 : alpha                    (alpha at 0)
 *   Elu:         x > 0 ? 1 : alpha e^x                (alpha at 0)
 *   Selu:        x > 0 ? gamma : gamma alpha e^x
 *   Celu:        x > 0 ? 1 : e^(x/alpha)              (1 at 0)
 *   Sigmoid:     y (1 - y);   Tanh: 1 - y^2
 *   HardSigmoid: 0 < alpha x + beta < 1 ? alpha : 0   (0 on both corners)
 *   HardSwish:   x < -3 ? 0 : x <= 3 ? x/3 + 1/2 : 1  (-1/2 at -3, 3/2 at 3)
 *   Softplus:    sigmoid(x)
 *   Softsign:    1 / (1 + |x|)^2
 *   ThresholdedRelu: x > alpha ? 1 : 0
 *   Shrink:      |x| > lambd ? 1 : 0                  (0 at +-lambd)
 * A NaN input gets the branch PyTorch's comparison gives it.
 */
static void act_bwd_run(const act_params *p, float *dx, const float *x, const float *y,
                        const float *g, int64_t n) {
    const float alpha = p->alpha, beta = p->beta, gamma = p->gamma;
    switch (p->kind) {
    case ACT_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] <= 0.0f ? 0.0f : g[i];
        break;
    case ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? g[i] : alpha * g[i];
        break;
    case ACT_ELU:
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] <= 0.0f ? g[i] * alpha * expf(x[i]) : g[i];
        break;
    case ACT_SELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] <= 0.0f ? g[i] * gamma * alpha * expf(x[i]) : g[i] * gamma;
        break;
    case ACT_CELU:
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] <= 0.0f ? g[i] * expf(x[i] / alpha) : g[i];
        break;
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) dx[i] += g[i] * y[i] * (1.0f - y[i]);
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++) dx[i] += g[i] * (1.0f - y[i] * y[i]);
        break;
    case ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = alpha * x[i] + beta;
            dx[i] += v > 0.0f && v < 1.0f ? alpha * g[i] : 0.0f;
        }
        break;
    case ACT_HARD_SWISH:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] < -3.0f ? 0.0f : x[i] <= 3.0f ? g[i] * (x[i] / 3.0f + 0.5f) : g[i];
        break;
    case ACT_SOFTPLUS: /* sigmoid(x), without overflow for large |x| */
        for (int64_t i = 0; i < n; i++) {
            float e = expf(-fabsf(x[i]));
            float s = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
            dx[i] += g[i] * s;
        }
        break;
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) {
            float d = 1.0f + fabsf(x[i]);
            dx[i] += g[i] / (d * d);
        }
        break;
    case ACT_THRESHOLDED_RELU:
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] <= alpha ? 0.0f : g[i];
        break;
    case ACT_SHRINK:
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] >= -alpha && x[i] <= alpha ? 0.0f : g[i];
        break;
    }
}

static gb_status act_init(gb_ctx *ctx, gb__node *n, act_kind kind, float alpha, float beta,
                          float gamma) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    act_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->kind = kind;
    p->alpha = alpha;
    p->beta = beta;
    p->gamma = gamma;
    n->params = p;
    return GB_OK;
}

static gb_status act_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                           gb_tensor **out, size_t *ws_bytes, double *flops) {
    const gb_tensor *x = in[0];
    if (!is_float_tensor(x))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): input type %s, expected float32",
                       n->name, n->op_type, gb_dtype_name(x->dtype));
    gb__set_shape(out[0], x->dtype, x->ndim, x->dims);
    *flops = (double)x->numel;
    return GB_OK;
}

static gb_status act_forward(const gb__node *n, const gb_tensor *const *in,
                             gb_tensor *const *out, const gb__exec *ex) {
    const act_params *p = n->params;
    const float *x = GB_CF32(in[0]);
    float *y = GB_F32(out[0]);
    int64_t total = in[0]->numel;
    int nt = total > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        split_range(total, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) act_run(p, y + lo, x + lo, hi - lo);
    }
    return GB_OK;
}

static gb_status act_backward(const gb__node *n, const gb_tensor *const *in,
                              const gb_tensor *const *out, const gb_tensor *const *dout,
                              gb_tensor *const *din, const gb__exec *ex) {
    const act_params *p = n->params;
    if (!dout[0] || !din[0]) return GB_OK;
    const float *x = GB_CF32(in[0]), *y = GB_CF32(out[0]), *g = GB_CF32(dout[0]);
    float *dx = GB_F32(din[0]);
    int64_t total = in[0]->numel;
    int nt = total > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        split_range(total, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) act_bwd_run(p, dx + lo, x + lo, y + lo, g + lo, hi - lo);
    }
    return GB_OK;
}

static gb_status Relu_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_RELU, 0, 0, 0);
}
static gb_status LeakyRelu_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_LEAKY_RELU, gb__attr_float(n, "alpha", 0.01f), 0, 0);
}
static gb_status Elu_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_ELU, gb__attr_float(n, "alpha", 1.0f), 0, 0);
}
static gb_status Selu_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_SELU, gb__attr_float(n, "alpha", 1.67326319217681884765625f), 0,
                    gb__attr_float(n, "gamma", 1.05070102214813232421875f));
}
static gb_status Celu_init(gb_ctx *ctx, gb__node *n) {
    float alpha = gb__attr_float(n, "alpha", 1.0f);
    if (alpha == 0.0f)
        return gb__err(ctx, GB_ERR_ARG, "%s (%s): alpha must be non-zero", n->name, n->op_type);
    return act_init(ctx, n, ACT_CELU, alpha, 0, 0);
}
static gb_status Sigmoid_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_SIGMOID, 0, 0, 0);
}
static gb_status Tanh_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_TANH, 0, 0, 0);
}
static gb_status HardSigmoid_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_HARD_SIGMOID, gb__attr_float(n, "alpha", 0.2f),
                    gb__attr_float(n, "beta", 0.5f), 0);
}
static gb_status HardSwish_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_HARD_SWISH, 0, 0, 0);
}
static gb_status Softplus_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_SOFTPLUS, 0, 0, 0);
}
static gb_status Softsign_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_SOFTSIGN, 0, 0, 0);
}
static gb_status ThresholdedRelu_init(gb_ctx *ctx, gb__node *n) {
    return act_init(ctx, n, ACT_THRESHOLDED_RELU, gb__attr_float(n, "alpha", 1.0f), 0, 0);
}
static gb_status Shrink_init(gb_ctx *ctx, gb__node *n) {
    /* alpha = lambd, beta = bias */
    return act_init(ctx, n, ACT_SHRINK, gb__attr_float(n, "lambd", 0.5f),
                    gb__attr_float(n, "bias", 0.0f), 0);
}

#define GB_ACT_OP(Name) \
    const gb__op gb__op_##Name = { \
        .name = #Name, .init = Name##_init, .infer = act_infer, .forward = act_forward, \
        .backward = act_backward};

GB_ACT_OP(Relu)
GB_ACT_OP(LeakyRelu)
GB_ACT_OP(Elu)
GB_ACT_OP(Selu)
GB_ACT_OP(Celu)
GB_ACT_OP(Sigmoid)
GB_ACT_OP(Tanh)
GB_ACT_OP(HardSigmoid)
GB_ACT_OP(HardSwish)
GB_ACT_OP(Softplus)
GB_ACT_OP(Softsign)
GB_ACT_OP(ThresholdedRelu)
GB_ACT_OP(Shrink)

/* ---- PRelu ------------------------------------------------------------------ */

/* Slope's shape as seen by NumPy broadcasting against X (see the header for
 * the opset-6 per-channel form). */
static void prelu_slope_shape(const gb__node *n, const gb_tensor *x, const gb_tensor *s, int *ns,
                              int64_t *sd) {
    *ns = s->ndim;
    for (int i = 0; i < s->ndim; i++) sd[i] = s->dims[i];
    if (n->opset < 7 && s->ndim == 1 && s->dims[0] > 1 && x->ndim >= 2 &&
        s->dims[0] == x->dims[1]) {
        *ns = x->ndim - 1; /* (C) -> (C, 1, ..., 1) */
        for (int i = 1; i < *ns; i++) sd[i] = 1;
    }
}

static gb_status PRelu_init(gb_ctx *ctx, gb__node *n) {
    return gb__check_arity(ctx, n, 2, 2, 1, 1);
}

static gb_status PRelu_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                             gb_tensor **out, size_t *ws_bytes, double *flops) {
    const gb_tensor *x = in[0], *s = in[1];
    if (!is_float_tensor(x) || !is_float_tensor(s))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): input types %s and %s, expected float32",
                       n->name, n->op_type, gb_dtype_name(x->dtype), gb_dtype_name(s->dtype));
    int ns, nd;
    int64_t sd[GB_MAX_DIMS], od[GB_MAX_DIMS];
    prelu_slope_shape(n, x, s, &ns, sd);
    /* unidirectional: the broadcast of X and slope must be X's own shape */
    bool ok = gb__broadcast_shape(x->ndim, x->dims, ns, sd, &nd, od) && nd == x->ndim;
    for (int i = 0; ok && i < nd; i++) ok = od[i] == x->dims[i];
    if (!ok) {
        char bx[128], bs[128];
        gb_shape_str(x->ndim, x->dims, bx, sizeof bx);
        gb_shape_str(s->ndim, s->dims, bs, sizeof bs);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): slope %s does not broadcast to X %s", n->name,
                       n->op_type, bs, bx);
    }
    gb__set_shape(out[0], x->dtype, x->ndim, x->dims);
    *flops = (double)x->numel;
    return GB_OK;
}

/* X viewed as rows for PRelu: `rows` rows of `inner` elements, along each of
 * which the slope has a fixed stride `sstride` (0 or 1...). Trailing dims
 * over which the slope is constant (stride 0) or contiguous (stride 1
 * continued) are merged: for X (N, C, H, W) and slope (C, 1, 1) a row is
 * one (H*W) plane. Dims 0..d (d may be -1) are walked per row, with the
 * slope's broadcast strides ss. */
typedef struct {
    int64_t rows, inner, sstride;
    int d;
    int64_t ss[GB_MAX_DIMS];
} prelu_rows;

static void prelu_plan(const gb__node *n, const gb_tensor *x, const gb_tensor *s, prelu_rows *r) {
    int ns;
    int64_t sd[GB_MAX_DIMS];
    prelu_slope_shape(n, x, s, &ns, sd);
    gb__broadcast_strides(ns, sd, x->ndim, x->dims, r->ss);
    r->inner = 1;
    r->sstride = 0;
    r->d = x->ndim - 1;
    if (r->d >= 0) {
        r->inner = x->dims[r->d];
        r->sstride = r->ss[r->d];
        for (r->d = r->d - 1; r->d >= 0; r->d--) {
            if (x->dims[r->d] == 1) continue;
            if (r->ss[r->d] != r->sstride * r->inner) break;
            r->inner *= x->dims[r->d];
        }
    }
    r->rows = r->inner ? x->numel / r->inner : 0;
}

/* Offset into the slope of the first element of row r. */
static int64_t prelu_row_slope(const prelu_rows *pr, const gb_tensor *x, int64_t r) {
    int64_t off = 0, q = r;
    for (int j = pr->d; j >= 0; j--) {
        off += (q % x->dims[j]) * pr->ss[j];
        q /= x->dims[j];
    }
    return off;
}

static gb_status PRelu_forward(const gb__node *n, const gb_tensor *const *in,
                               gb_tensor *const *out, const gb__exec *ex) {
    const gb_tensor *x = in[0], *s = in[1];
    const float *xp = GB_CF32(x), *sp = GB_CF32(s);
    float *yp = GB_F32(out[0]);
    if (x->numel == 0) return GB_OK;
    prelu_rows pr;
    prelu_plan(n, x, s, &pr);
    const int64_t inner = pr.inner, sstride = pr.sstride;
    int nt = x->numel > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < pr.rows; r++) {
        const float *xr = xp + r * inner;
        float *yr = yp + r * inner;
        const float *sr = sp + prelu_row_slope(&pr, x, r);
        if (sstride == 0) {
            const float a = sr[0];
            for (int64_t i = 0; i < inner; i++) yr[i] = xr[i] < 0.0f ? a * xr[i] : xr[i];
        } else {
            for (int64_t i = 0; i < inner; i++)
                yr[i] = xr[i] < 0.0f ? sr[i * sstride] * xr[i] : xr[i];
        }
    }
    return GB_OK;
}

/*
 * PRelu backward, PyTorch's prelu formulas:
 *   dX     += X > 0 ? g : slope * g            (slope at X = 0)
 *   dslope += sum over the X elements sharing that slope of (X > 0 ? 0 : X * g)
 * dX is split across threads by rows. The slope gradient (only asked for in
 * training, or when the slope is a graph input) reduces many rows into one
 * slope entry, so it runs serially in row order: deterministic.
 */
static gb_status PRelu_backward(const gb__node *n, const gb_tensor *const *in,
                                const gb_tensor *const *out, const gb_tensor *const *dout,
                                gb_tensor *const *din, const gb__exec *ex) {
    (void)out;
    const gb_tensor *x = in[0], *s = in[1];
    if (!dout[0] || x->numel == 0) return GB_OK;
    const float *xp = GB_CF32(x), *sp = GB_CF32(s), *g = GB_CF32(dout[0]);
    prelu_rows pr;
    prelu_plan(n, x, s, &pr);
    const int64_t inner = pr.inner, sstride = pr.sstride;
    if (din[0]) {
        float *dx = GB_F32(din[0]);
        int nt = x->numel > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t r = 0; r < pr.rows; r++) {
            const float *xr = xp + r * inner, *gr = g + r * inner;
            const float *sr = sp + prelu_row_slope(&pr, x, r);
            float *dr = dx + r * inner;
            for (int64_t i = 0; i < inner; i++)
                dr[i] += xr[i] > 0.0f ? gr[i] : sr[i * sstride] * gr[i];
        }
    }
    if (din[1]) {
        float *ds = GB_F32(din[1]);
        for (int64_t r = 0; r < pr.rows; r++) {
            const float *xr = xp + r * inner, *gr = g + r * inner;
            float *dr = ds + prelu_row_slope(&pr, x, r);
            if (sstride == 0) {
                double acc = 0.0;
                for (int64_t i = 0; i < inner; i++) acc += xr[i] > 0.0f ? 0.0 : (double)xr[i] * gr[i];
                dr[0] += (float)acc;
            } else {
                for (int64_t i = 0; i < inner; i++)
                    dr[i * sstride] += xr[i] > 0.0f ? 0.0f : xr[i] * gr[i];
            }
        }
    }
    return GB_OK;
}

const gb__op gb__op_PRelu = {
    .name = "PRelu", .init = PRelu_init, .infer = PRelu_infer, .forward = PRelu_forward,
    .backward = PRelu_backward};

/* ---- Clip ------------------------------------------------------------------- */

typedef struct {
    float lo, hi; /* opset < 11: the attributes */
} clip_params;

static gb_status Clip_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, n->opset < 11 ? 1 : 3, 1, 1);
    if (st) return st;
    clip_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->lo = gb__attr_float(n, "min", -FLT_MAX);
    p->hi = gb__attr_float(n, "max", FLT_MAX);
    n->params = p;
    return GB_OK;
}

/* Optional input i (min or max), or NULL when omitted. */
static const gb_tensor *clip_bound(const gb__node *n, const gb_tensor *const *in, int i) {
    return i < n->n_in && n->in[i] >= 0 ? in[i] : NULL;
}

static gb_status Clip_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                            gb_tensor **out, size_t *ws_bytes, double *flops) {
    const gb_tensor *x = in[0];
    bool int_ok = n->opset >= 12;
    if (!(x->dtype == GB_DTYPE_F32 || (int_ok && x->dtype == GB_DTYPE_I64)))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): unsupported input type %s", n->name,
                       n->op_type, gb_dtype_name(x->dtype));
    for (int i = 1; i <= 2; i++) {
        const gb_tensor *b = clip_bound(n, (const gb_tensor *const *)in, i);
        if (!b) continue;
        if (b->dtype != x->dtype)
            return gb__err(ctx, GB_ERR_ARG, "%s (%s): %s has type %s, input has %s", n->name,
                           n->op_type, i == 1 ? "min" : "max", gb_dtype_name(b->dtype),
                           gb_dtype_name(x->dtype));
        if (b->numel != 1) {
            char sb[128];
            gb_shape_str(b->ndim, b->dims, sb, sizeof sb);
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): %s must be a scalar, got shape %s",
                           n->name, n->op_type, i == 1 ? "min" : "max", sb);
        }
    }
    gb__set_shape(out[0], x->dtype, x->ndim, x->dims);
    *flops = (double)x->numel;
    return GB_OK;
}

static gb_status Clip_forward(const gb__node *n, const gb_tensor *const *in,
                              gb_tensor *const *out, const gb__exec *ex) {
    const clip_params *p = n->params;
    const gb_tensor *x = in[0];
    const gb_tensor *tlo = n->opset >= 11 ? clip_bound(n, in, 1) : NULL;
    const gb_tensor *thi = n->opset >= 11 ? clip_bound(n, in, 2) : NULL;
    int64_t total = x->numel;
    int nt = total > GB_PAR_MIN ? ex->n_threads : 1;
    if (x->dtype == GB_DTYPE_F32) {
        float lo = p->lo, hi = p->hi;
        if (n->opset >= 11) {
            lo = tlo ? GB_CF32(tlo)[0] : -FLT_MAX;
            hi = thi ? GB_CF32(thi)[0] : FLT_MAX;
        }
        const float *xp = GB_CF32(x);
        float *yp = GB_F32(out[0]);
        /* lower bound first, then upper: lo > hi gives hi; NaN stays NaN */
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t i = 0; i < total; i++) {
            float v = xp[i] < lo ? lo : xp[i];
            yp[i] = v > hi ? hi : v;
        }
    } else {
        int64_t lo = tlo ? GB_CI64(tlo)[0] : INT64_MIN;
        int64_t hi = thi ? GB_CI64(thi)[0] : INT64_MAX;
        const int64_t *xp = GB_CI64(x);
        int64_t *yp = GB_I64(out[0]);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t i = 0; i < total; i++) {
            int64_t v = xp[i] < lo ? lo : xp[i];
            yp[i] = v > hi ? hi : v;
        }
    }
    return GB_OK;
}

/*
 * Clip backward (float32 only), PyTorch's clamp_backward and
 * clamp_backward_min_max:
 *   dX   += min <= X <= max ? g : 0            (inclusive; NaN gets 0)
 *   dmin += sum of g where X < min and min < max
 *   dmax += sum of g where X > max or max < min
 * With one bound omitted: dmin += sum of g where X < min (resp. X > max).
 * min > max outputs max everywhere, so then all of the gradient goes to max
 * and none to X; with min == max the gradient of the clipped elements below
 * is dropped, as PyTorch does. The bound gradients are scalar reductions,
 * computed serially in element order (in double) so they are reproducible.
 */
static gb_status Clip_backward(const gb__node *n, const gb_tensor *const *in,
                               const gb_tensor *const *out, const gb_tensor *const *dout,
                               gb_tensor *const *din, const gb__exec *ex) {
    (void)out;
    const clip_params *p = n->params;
    const gb_tensor *x = in[0];
    if (!dout[0] || x->dtype != GB_DTYPE_F32) return GB_OK;
    const gb_tensor *tlo = n->opset >= 11 ? clip_bound(n, in, 1) : NULL;
    const gb_tensor *thi = n->opset >= 11 ? clip_bound(n, in, 2) : NULL;
    float lo = p->lo, hi = p->hi;
    if (n->opset >= 11) {
        lo = tlo ? GB_CF32(tlo)[0] : -FLT_MAX;
        hi = thi ? GB_CF32(thi)[0] : FLT_MAX;
    }
    const float *xp = GB_CF32(x), *g = GB_CF32(dout[0]);
    int64_t total = x->numel;
    if (din[0]) {
        float *dx = GB_F32(din[0]);
        int nt = total > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t i = 0; i < total; i++) dx[i] += xp[i] >= lo && xp[i] <= hi ? g[i] : 0.0f;
    }
    gb_tensor *dlo = tlo && din[1] ? din[1] : NULL, *dhi = thi && din[2] ? din[2] : NULL;
    if (dlo) {
        double acc = 0.0;
        for (int64_t i = 0; i < total; i++)
            if (xp[i] < lo && (!thi || lo < hi)) acc += g[i];
        GB_F32(dlo)[0] += (float)acc;
    }
    if (dhi) {
        double acc = 0.0;
        for (int64_t i = 0; i < total; i++)
            if (xp[i] > hi || (tlo && hi < lo)) acc += g[i];
        GB_F32(dhi)[0] += (float)acc;
    }
    return GB_OK;
}

const gb__op gb__op_Clip = {
    .name = "Clip", .init = Clip_init, .infer = Clip_infer, .forward = Clip_forward,
    .backward = Clip_backward};

const gb__op *const gb__ops_activation[] = {
    &gb__op_Relu,        &gb__op_LeakyRelu, &gb__op_PRelu,    &gb__op_Elu,
    &gb__op_Selu,        &gb__op_Celu,      &gb__op_Sigmoid,  &gb__op_Tanh,
    &gb__op_HardSigmoid, &gb__op_HardSwish, &gb__op_Softplus, &gb__op_Softsign,
    &gb__op_ThresholdedRelu, &gb__op_Shrink, &gb__op_Clip,    NULL,
};
