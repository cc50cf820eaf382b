/*
 * norm.c — normalisation layers: BatchNormalization (inference),
 * InstanceNormalization, LayerNormalization, LRN.
 *
 * All four read X as (N, C, D1, ..., Dk) except LayerNormalization, which
 * splits X at `axis` into (outer, inner) rows. Statistics are accumulated in
 * double so that large planes do not lose precision; results are float32.
 */
#include "ops/util.h"

#include <math.h>
#include <stdlib.h>

/* Optional outputs that are present: an omitted one has id -1. */
static bool output_requested(const gb__node *n, int k) {
    return k < n->n_out && n->out[k] >= 0;
}

static gb_status need_f32(gb_ctx *ctx, const gb__node *n, const gb_tensor *t, const char *what) {
    if (t->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): %s has type %s (float32 only)", n->name,
                       n->op_type, what, gb_dtype_name(t->dtype));
    return GB_OK;
}

/* A per-channel vector (scale, bias, mean, var): C elements. Accepts shape
 * (C) and, leniently, any shape with C elements (old exporters). */
static gb_status need_channel_vec(gb_ctx *ctx, const gb__node *n, const gb_tensor *t,
                                  const char *what, int64_t C, const gb_tensor *x) {
    gb_status st = need_f32(ctx, n, t, what);
    if (st) return st;
    if (t->numel != C) {
        char sx[128], st_[128];
        gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
        gb_shape_str(t->ndim, t->dims, st_, sizeof st_);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): %s has shape %s, expected (%lld) for input %s",
                       n->name, n->op_type, what, st_, (long long)C, sx);
    }
    return GB_OK;
}

/* ========================================================================== */
/* BatchNormalization (inference)
 *
 *   Y[n, c, ...] = (X[n, c, ...] - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + B[c]
 *
 * Opsets: 6 (is_test, ignored), 7 and 9 (5 outputs in training mode; opset 7
 * has `spatial`, which must be 1 here: per-activation statistics are not
 * supported), 14/15 (`training_mode`; outputs running_mean, running_var).
 * Only inference is supported: training_mode = 1 or any requested output
 * besides Y fails with GB_ERR_UNSUPPORTED. X may be (N, C) or (N, C, D1...).
 * Computed as Y = X * a[c] + b[c] with a = scale / sqrt(var + eps) and
 * b = B - mean * a (the same affine map, rounded differently).
 */
typedef struct {
    float epsilon;
} bn_params;

static gb_status bn_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 5, 5, 1, 5);
    if (st) return st;
    bool extra = false;
    for (int k = 1; k < n->n_out; k++) extra |= output_requested(n, k);
    if (gb__attr_int(n, "training_mode", 0) != 0 || extra)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): training-mode BatchNormalization is not supported", n->name,
                       n->op_type);
    if (gb__attr_int(n, "spatial", 1) != 1)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): spatial=0 (per-activation statistics) is not supported",
                       n->name, n->op_type);
    bn_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->epsilon = gb__attr_float(n, "epsilon", 1e-5f);
    n->params = p;
    return GB_OK;
}

static gb_status bn_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                          size_t *ws_bytes, double *flops) {
    const gb_tensor *x = in[0];
    gb_status st = need_f32(ctx, n, x, "X");
    if (st) return st;
    if (x->ndim < 2) {
        char sx[128];
        gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %s needs rank >= 2 (N, C, ...)",
                       n->name, n->op_type, sx);
    }
    static const char *const names[5] = {"X", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++) {
        if (!in[i])
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing input %s", n->name, n->op_type,
                           names[i]);
        st = need_channel_vec(ctx, n, in[i], names[i], x->dims[1], x);
        if (st) return st;
    }
    gb__set_shape(out[0], GB_DTYPE_F32, x->ndim, x->dims);
    *flops = 2.0 * (double)x->numel;
    (void)ws_bytes;
    return GB_OK;
}

static gb_status bn_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                            const gb__exec *ex) {
    const bn_params *p = n->params;
    const gb_tensor *x = in[0];
    const float *xd = GB_CF32(x);          /* (N, C, S) */
    const float *scale = GB_CF32(in[1]);   /* (C) */
    const float *bias = GB_CF32(in[2]);    /* (C) */
    const float *mean = GB_CF32(in[3]);    /* (C) */
    const float *var = GB_CF32(in[4]);     /* (C) */
    float *yd = GB_F32(out[0]);            /* (N, C, S) */
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t S = N * C > 0 ? x->numel / (N * C) : 0;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t nc = 0; nc < N * C; nc++) {
        int64_t c = nc % C;
        float a = scale[c] / sqrtf(var[c] + p->epsilon);
        float b = bias[c] - mean[c] * a;
        const float *xp = xd + nc * S;
        float *yp = yd + nc * S;
        for (int64_t i = 0; i < S; i++) yp[i] = xp[i] * a + b;
    }
    return GB_OK;
}

/* ========================================================================== */
/* InstanceNormalization (opset 1, 6)
 *
 *   Y[n, c, ...] = scale[c] * (X[n, c, ...] - mu[n, c]) / sqrt(var[n, c] + epsilon) + B[c]
 *
 * with mu and the (biased, population) variance taken over the spatial axes
 * of each (n, c) plane. X must be (N, C, D1, ..., Dk) with k >= 1.
 */
typedef struct {
    float epsilon;
} in_params;

static gb_status inorm_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 3, 3, 1, 1);
    if (st) return st;
    in_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->epsilon = gb__attr_float(n, "epsilon", 1e-5f);
    n->params = p;
    return GB_OK;
}

static gb_status inorm_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                             gb_tensor **out, size_t *ws_bytes, double *flops) {
    const gb_tensor *x = in[0];
    gb_status st = need_f32(ctx, n, x, "X");
    if (st) return st;
    if (x->ndim < 3) {
        char sx[128];
        gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %s needs rank >= 3 (N, C, D1, ...)",
                       n->name, n->op_type, sx);
    }
    if (!in[1] || !in[2])
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing scale or B", n->name, n->op_type);
    st = need_channel_vec(ctx, n, in[1], "scale", x->dims[1], x);
    if (st) return st;
    st = need_channel_vec(ctx, n, in[2], "B", x->dims[1], x);
    if (st) return st;
    gb__set_shape(out[0], GB_DTYPE_F32, x->ndim, x->dims);
    *flops = 5.0 * (double)x->numel;  /* mean, centred square, normalise */
    (void)ws_bytes;
    return GB_OK;
}

/* Mean and population variance of n floats (two passes, double sums). */
static void mean_var(const float *x, int64_t n, double *mean, double *var) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    double mu = n > 0 ? s / (double)n : 0.0;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - mu;
        ss += d * d;
    }
    *mean = mu;
    *var = n > 0 ? ss / (double)n : 0.0;
}

static gb_status inorm_forward(const gb__node *n, const gb_tensor *const *in,
                               gb_tensor *const *out, const gb__exec *ex) {
    const in_params *p = n->params;
    const gb_tensor *x = in[0];
    const float *xd = GB_CF32(x);          /* (N, C, S) */
    const float *scale = GB_CF32(in[1]);   /* (C) */
    const float *bias = GB_CF32(in[2]);    /* (C) */
    float *yd = GB_F32(out[0]);            /* (N, C, S) */
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t S = N * C > 0 ? x->numel / (N * C) : 0;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t nc = 0; nc < N * C; nc++) {
        int64_t c = nc % C;
        const float *xp = xd + nc * S;
        float *yp = yd + nc * S;
        double mu, var;
        mean_var(xp, S, &mu, &var);
        float inv = (float)(1.0 / sqrt(var + (double)p->epsilon));
        float a = scale[c] * inv;
        float m = (float)mu;
        for (int64_t i = 0; i < S; i++) yp[i] = (xp[i] - m) * a + bias[c];
    }
    return GB_OK;
}

/* ========================================================================== */
/* LayerNormalization (opset 17)
 *
 * X is split at `axis` (default -1, negative counts from the end) into
 * (outer, inner) with inner = prod(X.shape[axis:]). For each row:
 *
 *   Mean = mean(x),  InvStdDev = 1 / sqrt(mean((x - Mean)^2) + epsilon)
 *   Y    = (x - Mean) * InvStdDev * Scale + B
 *
 * Scale and the optional B are unidirectionally broadcast to X.shape[axis:]
 * (the spec defines the affine step as Mul/Add, so e.g. a (1, W) Scale with
 * axis = -2 is legal); a Scale or B smaller than inner is expanded into the
 * workspace once per forward. The optional outputs Mean and InvStdDev have
 * shape X.shape[:axis] + [1] * (rank - axis). stash_type only selects the
 * precision of the statistics (1 = float); we always accumulate in double,
 * which satisfies any stash_type.
 */
typedef struct {
    int64_t axis;
    float epsilon;
} ln_params;

static gb_status ln_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 2, 3, 1, 3);
    if (st) return st;
    ln_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->axis = gb__attr_int(n, "axis", -1);
    p->epsilon = gb__attr_float(n, "epsilon", 1e-5f);
    n->params = p;
    return GB_OK;
}

/* Can t (Scale or B) be broadcast to the trailing shape dims[0..nd)? */
static bool ln_broadcasts(const gb_tensor *t, int nd, const int64_t *dims) {
    if (t->ndim > nd) {
        /* extra leading axes are allowed only if they are all 1 */
        for (int i = 0; i < t->ndim - nd; i++)
            if (t->dims[i] != 1) return false;
    }
    for (int i = 1; i <= t->ndim && i <= nd; i++) {
        int64_t a = t->dims[t->ndim - i], b = dims[nd - i];
        if (a != 1 && a != b) return false;
    }
    return true;
}

static gb_status ln_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                          size_t *ws_bytes, double *flops) {
    const ln_params *p = n->params;
    const gb_tensor *x = in[0];
    gb_status st = need_f32(ctx, n, x, "X");
    if (st) return st;
    char sx[128], sw[128];
    gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
    int axis = gb__axis(p->axis, x->ndim);
    if (x->ndim < 1 || axis < 0)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for input %s",
                       n->name, n->op_type, (long long)p->axis, sx);
    int nd = x->ndim - axis;
    const int64_t *nshape = x->dims + axis;
    int64_t inner = gb__numel(nd, nshape);
    bool expand = false;
    for (int i = 1; i < 3; i++) {
        const gb_tensor *t = i < n->n_in ? in[i] : NULL;
        if (!t) continue;
        const char *what = i == 1 ? "Scale" : "B";
        st = need_f32(ctx, n, t, what);
        if (st) return st;
        if (!ln_broadcasts(t, nd, nshape)) {
            gb_shape_str(t->ndim, t->dims, sw, sizeof sw);
            return gb__err(ctx, GB_ERR_SHAPE,
                           "%s (%s): %s of shape %s does not broadcast to X%s[axis %d:]", n->name,
                           n->op_type, what, sw, sx, axis);
        }
        if (t->numel != inner) expand = true;
    }
    if (!in[1])
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing Scale", n->name, n->op_type);
    gb__set_shape(out[0], GB_DTYPE_F32, x->ndim, x->dims);
    int64_t sdims[GB_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) sdims[i] = i < axis ? x->dims[i] : 1;
    for (int k = 1; k < 3 && k < n->n_out; k++)
        if (out[k] && output_requested(n, k)) gb__set_shape(out[k], GB_DTYPE_F32, x->ndim, sdims);
    if (expand) {
        size_t need = 2 * (size_t)inner * sizeof(float);
        if (*ws_bytes < need) *ws_bytes = need;
    }
    *flops = 7.0 * (double)x->numel;
    return GB_OK;
}

/* Expand t (broadcastable to dims[0..nd)) into dst (prod(dims) floats). */
static void ln_expand(const gb_tensor *t, int nd, const int64_t *dims, float *dst) {
    int64_t strides[GB_MAX_DIMS];
    /* drop leading unit axes beyond nd (checked in infer) */
    int tnd = t->ndim > nd ? nd : t->ndim;
    const int64_t *tdims = t->dims + (t->ndim - tnd);
    gb__broadcast_strides(tnd, tdims, nd, dims, strides);
    const float *src = GB_CF32(t);
    int64_t total = gb__numel(nd, dims);
    for (int64_t j = 0; j < total; j++) {
        int64_t rem = j, off = 0;
        for (int i = nd - 1; i >= 0; i--) {
            off += (rem % dims[i]) * strides[i];
            rem /= dims[i];
        }
        dst[j] = src[off];
    }
}

static gb_status ln_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                            const gb__exec *ex) {
    const ln_params *p = n->params;
    const gb_tensor *x = in[0];
    int axis = gb__axis(p->axis, x->ndim);
    if (axis < 0) return GB_ERR_SHAPE;
    int nd = x->ndim - axis;
    const int64_t *nshape = x->dims + axis;
    int64_t inner = gb__numel(nd, nshape);
    int64_t outer = inner > 0 ? x->numel / inner : 0;
    const gb_tensor *ts = in[1];
    const gb_tensor *tb = n->n_in > 2 ? in[2] : NULL;

    const float *scale = GB_CF32(ts);          /* (inner) after expansion */
    const float *bias = tb ? GB_CF32(tb) : NULL;
    float *ws = ex->ws;
    if (ts->numel != inner) {
        if (!ws || ex->ws_size < 2 * (size_t)inner * sizeof(float)) return GB_ERR_INTERNAL;
        ln_expand(ts, nd, nshape, ws);
        scale = ws;
    }
    if (tb && tb->numel != inner) {
        if (!ws || ex->ws_size < 2 * (size_t)inner * sizeof(float)) return GB_ERR_INTERNAL;
        ln_expand(tb, nd, nshape, ws + inner);
        bias = ws + inner;
    }
    const float *xd = GB_CF32(x);   /* (outer, inner) */
    float *yd = GB_F32(out[0]);     /* (outer, inner) */
    float *mean_out = output_requested(n, 1) && out[1] ? GB_F32(out[1]) : NULL;  /* (outer) */
    float *isd_out = output_requested(n, 2) && out[2] ? GB_F32(out[2]) : NULL;   /* (outer) */
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t r = 0; r < outer; r++) {
        const float *xr = xd + r * inner;
        float *yr = yd + r * inner;
        double mu, var;
        mean_var(xr, inner, &mu, &var);
        float isd = (float)(1.0 / sqrt(var + (double)p->epsilon));
        float m = (float)mu;
        for (int64_t j = 0; j < inner; j++) {
            float v = (xr[j] - m) * isd * scale[j];
            yr[j] = bias ? v + bias[j] : v;
        }
        if (mean_out) mean_out[r] = m;
        if (isd_out) isd_out[r] = isd;
    }
    return GB_OK;
}

/* ========================================================================== */
/* LRN (opset 1, 13) — local response normalisation across channels
 * (Krizhevsky et al. 2012, section 3.3):
 *
 *   square_sum[n, c, ...] = sum_{i = max(0, c - floor((size - 1) / 2))}
 *                              ^{min(C - 1, c + ceil((size - 1) / 2))} X[n, i, ...]^2
 *   Y[n, c, ...] = X[n, c, ...] / (bias + alpha / size * square_sum)^beta
 *
 * For an even size the window is longer after c than before it (PyTorch's
 * local_response_norm does the opposite; ONNX's rule is implemented here).
 * Defaults: alpha 1e-4, beta 0.75, bias 1; size is required.
 */
typedef struct {
    float alpha, beta, bias;
    int64_t size;
} lrn_params;

static gb_status lrn_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    lrn_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    n->params = p;
    p->alpha = gb__attr_float(n, "alpha", 1e-4f);
    p->beta = gb__attr_float(n, "beta", 0.75f);
    p->bias = gb__attr_float(n, "bias", 1.0f);
    p->size = gb__attr_int(n, "size", 0);
    if (p->size < 1)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): attribute size missing or < 1", n->name,
                       n->op_type);
    return GB_OK;
}

static gb_status lrn_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                           size_t *ws_bytes, double *flops) {
    const lrn_params *p = n->params;
    const gb_tensor *x = in[0];
    gb_status st = need_f32(ctx, n, x, "X");
    if (st) return st;
    if (x->ndim < 2) {
        char sx[128];
        gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %s needs rank >= 2 (N, C, ...)",
                       n->name, n->op_type, sx);
    }
    gb__set_shape(out[0], GB_DTYPE_F32, x->ndim, x->dims);
    *flops = (double)x->numel * (2.0 * (double)p->size + 4.0);
    (void)ws_bytes;
    return GB_OK;
}

static gb_status lrn_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                             const gb__exec *ex) {
    const lrn_params *p = n->params;
    const gb_tensor *x = in[0];
    const float *xd = GB_CF32(x);   /* (N, C, S) */
    float *yd = GB_F32(out[0]);     /* (N, C, S) */
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t S = N * C > 0 ? x->numel / (N * C) : 0;
    int64_t before = (p->size - 1) / 2;       /* floor((size - 1) / 2) */
    int64_t after = p->size / 2;              /* ceil((size - 1) / 2) */
    float k = p->alpha / (float)p->size;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel * p->size > GB_PAR_MIN)
    for (int64_t nc = 0; nc < N * C; nc++) {
        int64_t b = nc / C, c = nc % C;
        int64_t lo = c - before < 0 ? 0 : c - before;
        int64_t hi = c + after > C - 1 ? C - 1 : c + after;
        const float *xb = xd + b * C * S;   /* (C, S) of sample b */
        const float *xp = xd + nc * S;
        float *yp = yd + nc * S;
        for (int64_t i = 0; i < S; i++) {
            float sq = 0.0f;
            for (int64_t j = lo; j <= hi; j++) {
                float v = xb[j * S + i];
                sq += v * v;
            }
            yp[i] = xp[i] * powf(p->bias + k * sq, -p->beta);
        }
    }
    return GB_OK;
}

/* ---- registration ------------------------------------------------------------ */

const gb__op gb__op_BatchNormalization = {
    .name = "BatchNormalization", .init = bn_init, .infer = bn_infer, .forward = bn_forward};
const gb__op gb__op_InstanceNormalization = {.name = "InstanceNormalization",
                                             .init = inorm_init,
                                             .infer = inorm_infer,
                                             .forward = inorm_forward};
const gb__op gb__op_LayerNormalization = {
    .name = "LayerNormalization", .init = ln_init, .infer = ln_infer, .forward = ln_forward};
const gb__op gb__op_LRN = {
    .name = "LRN", .init = lrn_init, .infer = lrn_infer, .forward = lrn_forward};

const gb__op *const gb__ops_norm[] = {&gb__op_BatchNormalization, &gb__op_InstanceNormalization,
                                      &gb__op_LayerNormalization, &gb__op_LRN, NULL};
