/*
 * norm.c — normalisation layers: BatchNormalization (inference),
 * InstanceNormalization, LayerNormalization, LRN.
 *
 * All four read X as (N, C, D1, ..., Dk) except LayerNormalization, which
 * splits X at `axis` into (outer, inner) rows. Statistics are accumulated in
 * double so that large planes do not lose precision; results are float32.
 *
 * Each op's backward (vector-Jacobian product) follows its forward. They
 * differentiate the whole map: through the batch statistics of
 * InstanceNormalization and LayerNormalization (including gradients arriving
 * at LayerNormalization's Mean / InvStdDev outputs), through the window sums
 * of LRN, and, for inference BatchNormalization, w.r.t. X, scale, B and the
 * running mean / var. Parameter gradients are computed only when the engine
 * passes their buffers. Reductions are split so that each output element is
 * summed by one thread in a fixed order (bit-reproducible across thread
 * counts).
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

/* Backward (inference mode). With r = 1 / sqrt(var + eps), a = scale * r and
 * xc = x - mean, the map is y = a[c] * xc + B[c], so
 *   dx        = a[c] * dy
 *   dscale[c] = sum_{n,s} dy * xc * r
 *   dB[c]     = sum_{n,s} dy
 *   dmean[c]  = -a[c] * sum_{n,s} dy
 *   dvar[c]   = -1/2 * scale[c] * r^3 * sum_{n,s} dy * xc
 * Statistics inputs are constants in a trained model; their gradients are
 * computed only when the engine asks (din[3] / din[4] non-NULL). */
static gb_status bn_backward(const gb__node *n, const gb_tensor *const *in,
                             const gb_tensor *const *out, const gb_tensor *const *dout,
                             gb_tensor *const *din, const gb__exec *ex) {
    if (!dout[0]) return GB_OK;
    const bn_params *p = n->params;
    const gb_tensor *x = in[0];
    const float *xd = GB_CF32(x);          /* (N, C, S) */
    const float *scale = GB_CF32(in[1]);   /* (C) */
    const float *mean = GB_CF32(in[3]);    /* (C) */
    const float *var = GB_CF32(in[4]);     /* (C) */
    const float *dy = GB_CF32(dout[0]);    /* (N, C, S) */
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t S = N * C > 0 ? x->numel / (N * C) : 0;
    if (din[0]) {
        float *dx = GB_F32(din[0]);        /* (N, C, S) */
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
        for (int64_t nc = 0; nc < N * C; nc++) {
            int64_t c = nc % C;
            float a = scale[c] / sqrtf(var[c] + p->epsilon);  /* as in forward */
            const float *g = dy + nc * S;
            float *d = dx + nc * S;
            for (int64_t i = 0; i < S; i++) d[i] += a * g[i];
        }
    }
    bool params = false;
    for (int k = 1; k < 5; k++) params |= din[k] != NULL;
    if (!params) return GB_OK;
    float *dscale = din[1] ? GB_F32(din[1]) : NULL;   /* (C) each */
    float *dbias = din[2] ? GB_F32(din[2]) : NULL;
    float *dmean = din[3] ? GB_F32(din[3]) : NULL;
    float *dvar = din[4] ? GB_F32(din[4]) : NULL;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        double sg = 0.0, sgx = 0.0;  /* sum dy, sum dy * (x - mean) */
        for (int64_t b = 0; b < N; b++) {
            const float *g = dy + (b * C + c) * S;
            const float *xp = xd + (b * C + c) * S;
            for (int64_t i = 0; i < S; i++) {
                sg += g[i];
                sgx += (double)g[i] * ((double)xp[i] - mean[c]);
            }
        }
        double r = 1.0 / sqrt((double)var[c] + (double)p->epsilon);
        if (dscale) dscale[c] += (float)(sgx * r);
        if (dbias) dbias[c] += (float)sg;
        if (dmean) dmean[c] += (float)(-(double)scale[c] * r * sg);
        if (dvar) dvar[c] += (float)(-0.5 * (double)scale[c] * r * r * r * sgx);
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

/* Backward. Per (n, c) plane of S elements, with r = 1 / sqrt(var + eps),
 * xh = (x - mu) * r and g = scale[c] * dy, differentiating through mu and
 * var (both depend on every x of the plane):
 *   dx        = r * (g - mean(g) - xh * mean(g * xh))
 *   dscale[c] = sum_{n,s} dy * xh
 *   dB[c]     = sum_{n,s} dy
 * Split by channel: one thread owns channel c for every n, so dscale[c] and
 * dB[c] are accumulated in a fixed order without races. */
static gb_status inorm_backward(const gb__node *n, const gb_tensor *const *in,
                                const gb_tensor *const *out, const gb_tensor *const *dout,
                                gb_tensor *const *din, const gb__exec *ex) {
    if (!dout[0]) return GB_OK;
    const in_params *p = n->params;
    const gb_tensor *x = in[0];
    const float *xd = GB_CF32(x);          /* (N, C, S) */
    const float *scale = GB_CF32(in[1]);   /* (C) */
    const float *dyd = GB_CF32(dout[0]);   /* (N, C, S) */
    float *dx = din[0] ? GB_F32(din[0]) : NULL;        /* (N, C, S) */
    float *dscale = din[1] ? GB_F32(din[1]) : NULL;    /* (C) */
    float *dbias = din[2] ? GB_F32(din[2]) : NULL;     /* (C) */
    if (!dx && !dscale && !dbias) return GB_OK;
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t S = N * C > 0 ? x->numel / (N * C) : 0;
    if (S == 0) return GB_OK;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        double ds = 0.0, db = 0.0;
        for (int64_t b = 0; b < N; b++) {
            const float *xp = xd + (b * C + c) * S;
            const float *g = dyd + (b * C + c) * S;
            double mu, var;
            mean_var(xp, S, &mu, &var);
            double r = 1.0 / sqrt(var + (double)p->epsilon);
            double sg = 0.0, sgx = 0.0;  /* sum dy, sum dy * xh */
            for (int64_t i = 0; i < S; i++) {
                sg += g[i];
                sgx += (double)g[i] * ((double)xp[i] - mu) * r;
            }
            ds += sgx;
            db += sg;
            if (dx) {
                float *d = dx + (b * C + c) * S;
                double sc = scale[c];
                double mg = sc * sg / (double)S, mgx = sc * sgx / (double)S;
                for (int64_t i = 0; i < S; i++) {
                    double xh = ((double)xp[i] - mu) * r;
                    d[i] += (float)(r * (sc * g[i] - mg - xh * mgx));
                }
            }
        }
        if (dscale) dscale[c] += (float)ds;
        if (dbias) dbias[c] += (float)db;
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
    /* forward: Scale and B expanded (2 * inner) when broadcast; backward
     * (ln_backward): 3 * inner then 2 * outer row statistics */
    int64_t outer = inner > 0 ? x->numel / inner : 0;
    size_t need = (size_t)(2 * outer + (expand ? 3 * inner : 0)) * sizeof(float);
    if (*ws_bytes < need) *ws_bytes = need;
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

/* Backward. Per row of n = inner elements, with r = InvStdDev,
 * xh = (x - Mean) * r and g = dy * Scale (Scale expanded to (inner)):
 *   dx_j     = r * (g_j - mean(g) - xh_j * mean(g * xh))     (through Y)
 *            + dMean / n                                      (Mean = mean(x))
 *            - dInvStdDev * r^2 * xh_j / n                    (dr/dx_j = -r^3 (x_j - Mean) / n)
 *   dScale_j = sum_rows dy_j * xh_j,   dB_j = sum_rows dy_j
 * then dScale / dB are summed over the axes along which Scale / B were
 * broadcast. Workspace (floats): [Scale expanded (inner) | dScale full
 * (inner) | dB full (inner)] when Scale or B is broadcast, then Mean and
 * InvStdDev of every row (2 * outer), which the column pass reuses. */
#define LN_COLS 256  /* columns per task in the Scale/B reduction */

/* Adds full (dims[0..nd) expanded) into t's gradient g (t's shape). */
static void ln_reduce(const gb_tensor *t, int nd, const int64_t *dims, const float *full,
                      float *g) {
    int64_t strides[GB_MAX_DIMS];
    int tnd = t->ndim > nd ? nd : t->ndim;
    const int64_t *tdims = t->dims + (t->ndim - tnd);
    gb__broadcast_strides(tnd, tdims, nd, dims, strides);
    int64_t total = gb__numel(nd, dims);
    for (int64_t j = 0; j < total; j++) {
        int64_t rem = j, off = 0;
        for (int i = nd - 1; i >= 0; i--) {
            off += (rem % dims[i]) * strides[i];
            rem /= dims[i];
        }
        g[off] += full[j];
    }
}

static gb_status ln_backward(const gb__node *n, const gb_tensor *const *in,
                             const gb_tensor *const *out, const gb_tensor *const *dout,
                             gb_tensor *const *din, const gb__exec *ex) {
    const ln_params *p = n->params;
    const gb_tensor *x = in[0];
    int axis = gb__axis(p->axis, x->ndim);
    if (axis < 0) return GB_ERR_SHAPE;
    int nd = x->ndim - axis;
    const int64_t *nshape = x->dims + axis;
    int64_t inner = gb__numel(nd, nshape);
    int64_t outer = inner > 0 ? x->numel / inner : 0;
    if (inner == 0 || outer == 0) return GB_OK;
    const gb_tensor *ts = in[1];
    const gb_tensor *tb = n->n_in > 2 ? in[2] : NULL;
    /* an omitted optional output has no gradient */
    const float *dy = dout[0] ? GB_CF32(dout[0]) : NULL;                             /* (outer, inner) */
    const float *dmean = output_requested(n, 1) && dout[1] ? GB_CF32(dout[1]) : NULL; /* (outer) */
    const float *disd = output_requested(n, 2) && dout[2] ? GB_CF32(dout[2]) : NULL; /* (outer) */
    float *dx = din[0] ? GB_F32(din[0]) : NULL;                                      /* (outer, inner) */
    float *dscale = dy && din[1] ? GB_F32(din[1]) : NULL;
    float *dbias = dy && tb && n->n_in > 2 && din[2] ? GB_F32(din[2]) : NULL;
    if (!dx && !dscale && !dbias) return GB_OK;
    if (!dy && !dmean && !disd) return GB_OK;

    bool expand = ts->numel != inner || (tb && tb->numel != inner);
    size_t need = (size_t)(2 * outer + (expand ? 3 * inner : 0)) * sizeof(float);
    if (!ex->ws || ex->ws_size < need) return GB_ERR_INTERNAL;
    float *ws = ex->ws;
    float *ws_dscale = ws + inner, *ws_dbias = ws + 2 * inner;
    float *row_mean = ws + (expand ? 3 * inner : 0), *row_isd = row_mean + outer;
    const float *scale = GB_CF32(ts);   /* (inner) after expansion */
    if (ts->numel != inner) {
        ln_expand(ts, nd, nshape, ws);
        scale = ws;
    }
    const float *xd = GB_CF32(x);       /* (outer, inner) */

    /* Pass 1, one task per row: the row's statistics (rounded to float as in
     * forward) and dx. */
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t r = 0; r < outer; r++) {
        const float *xr = xd + r * inner;
        double mu, var;
        mean_var(xr, inner, &mu, &var);
        float isd = (float)(1.0 / sqrt(var + (double)p->epsilon));
        float m = (float)mu;
        row_mean[r] = m;
        row_isd[r] = isd;
        if (!dx) continue;
        double rr = isd, sg = 0.0, sgx = 0.0;  /* sum g, sum g * xh */
        if (dy) {
            const float *gr = dy + r * inner;
            for (int64_t j = 0; j < inner; j++) {
                double g = (double)gr[j] * scale[j];
                sg += g;
                sgx += g * ((double)xr[j] - m) * rr;
            }
        }
        double mg = sg / (double)inner, mgx = sgx / (double)inner;
        double cm = dmean ? (double)dmean[r] / (double)inner : 0.0;
        double ci = disd ? (double)disd[r] * rr * rr / (double)inner : 0.0;
        float *dr = dx + r * inner;
        for (int64_t j = 0; j < inner; j++) {
            double xh = ((double)xr[j] - m) * rr;
            double g = dy ? (double)dy[r * inner + j] * scale[j] : 0.0;
            dr[j] += (float)(rr * (g - mg - xh * mgx) + cm - ci * xh);
        }
    }
    if (!dscale && !dbias) return GB_OK;

    /* Pass 2, one task per block of LN_COLS columns: sums over rows into
     * the full-size (inner) gradients, in a fixed order. */
    bool s_full = ts->numel == inner, b_full = !tb || tb->numel == inner;
    float *fs = dscale ? (s_full ? dscale : ws_dscale) : NULL;
    float *fb = dbias ? (b_full ? dbias : ws_dbias) : NULL;
    int64_t blocks = (inner + LN_COLS - 1) / LN_COLS;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t j0 = blk * LN_COLS, j1 = j0 + LN_COLS < inner ? j0 + LN_COLS : inner;
        double as[LN_COLS] = {0}, ab[LN_COLS] = {0};
        for (int64_t r = 0; r < outer; r++) {
            const float *xr = xd + r * inner, *gr = dy + r * inner;
            double m = row_mean[r], rr = row_isd[r];
            for (int64_t j = j0; j < j1; j++) {
                as[j - j0] += (double)gr[j] * ((double)xr[j] - m) * rr;
                ab[j - j0] += gr[j];
            }
        }
        for (int64_t j = j0; j < j1; j++) {
            if (fs) fs[j] = (s_full ? fs[j] : 0.0f) + (float)as[j - j0];
            if (fb) fb[j] = (b_full ? fb[j] : 0.0f) + (float)ab[j - j0];
        }
    }
    if (dscale && !s_full) ln_reduce(ts, nd, nshape, ws_dscale, dscale);
    if (dbias && !b_full) ln_reduce(tb, nd, nshape, ws_dbias, dbias);
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
    /* lrn_backward keeps one float per element between its two passes */
    size_t need = (size_t)x->numel * sizeof(float);
    if (*ws_bytes < need) *ws_bytes = need;
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

/* Backward. With k = alpha / size, D_c = bias + k * square_sum_c and
 * y_c = x_c * D_c^-beta, channel j appears in the windows of the channels
 * c in [j - after, j + before] (the window of c is [c - before, c + after]):
 *   dx_j = dy_j * D_j^-beta
 *        - 2 * k * beta * x_j * sum_{c = max(0, j - after)}^{min(C - 1, j + before)} dy_c * x_c * D_c^(-beta - 1)
 * Pass 1 (per plane) adds the first term and stores
 * q_c = dy_c * x_c * D_c^-beta / D_c in the workspace (numel floats); pass 2
 * adds the window sums once every channel's q is known. */
static gb_status lrn_backward(const gb__node *n, const gb_tensor *const *in,
                              const gb_tensor *const *out, const gb_tensor *const *dout,
                              gb_tensor *const *din, const gb__exec *ex) {
    if (!din[0] || !dout[0]) return GB_OK;
    const lrn_params *p = n->params;
    const gb_tensor *x = in[0];
    if (!ex->ws || ex->ws_size < (size_t)x->numel * sizeof(float)) return GB_ERR_INTERNAL;
    const float *xd = GB_CF32(x);          /* (N, C, S) */
    const float *dy = GB_CF32(dout[0]);    /* (N, C, S) */
    float *dx = GB_F32(din[0]);            /* (N, C, S) */
    float *q = ex->ws;                     /* (N, C, S) */
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t S = N * C > 0 ? x->numel / (N * C) : 0;
    int64_t before = (p->size - 1) / 2, after = p->size / 2;
    float k = p->alpha / (float)p->size;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel * p->size > GB_PAR_MIN)
    for (int64_t nc = 0; nc < N * C; nc++) {
        int64_t b = nc / C, c = nc % C;
        int64_t lo = c - before < 0 ? 0 : c - before;
        int64_t hi = c + after > C - 1 ? C - 1 : c + after;
        const float *xb = xd + b * C * S;
        for (int64_t i = 0; i < S; i++) {
            float sq = 0.0f;
            for (int64_t j = lo; j <= hi; j++) {
                float v = xb[j * S + i];
                sq += v * v;
            }
            float D = p->bias + k * sq;
            float Pw = powf(D, -p->beta);
            int64_t e = nc * S + i;
            dx[e] += dy[e] * Pw;
            q[e] = dy[e] * xd[e] * Pw / D;
        }
    }
    float coef = 2.0f * k * p->beta;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel * p->size > GB_PAR_MIN)
    for (int64_t nj = 0; nj < N * C; nj++) {
        int64_t b = nj / C, j = nj % C;
        int64_t lo = j - after < 0 ? 0 : j - after;
        int64_t hi = j + before > C - 1 ? C - 1 : j + before;
        const float *qb = q + b * C * S;
        for (int64_t i = 0; i < S; i++) {
            float s = 0.0f;
            for (int64_t c = lo; c <= hi; c++) s += qb[c * S + i];
            dx[nj * S + i] -= coef * xd[nj * S + i] * s;
        }
    }
    return GB_OK;
}

/* ---- registration ------------------------------------------------------------ */

const gb__op gb__op_BatchNormalization = {.name = "BatchNormalization",
                                          .init = bn_init,
                                          .infer = bn_infer,
                                          .forward = bn_forward,
                                          .backward = bn_backward};
const gb__op gb__op_InstanceNormalization = {.name = "InstanceNormalization",
                                             .init = inorm_init,
                                             .infer = inorm_infer,
                                             .forward = inorm_forward,
                                             .backward = inorm_backward};
const gb__op gb__op_LayerNormalization = {.name = "LayerNormalization",
                                          .init = ln_init,
                                          .infer = ln_infer,
                                          .forward = ln_forward,
                                          .backward = ln_backward};
const gb__op gb__op_LRN = {.name = "LRN",
                           .init = lrn_init,
                           .infer = lrn_infer,
                           .forward = lrn_forward,
                           .backward = lrn_backward};

const gb__op *const gb__ops_norm[] = {&gb__op_BatchNormalization, &gb__op_InstanceNormalization,
                                      &gb__op_LayerNormalization, &gb__op_LRN, NULL};
