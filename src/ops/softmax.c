/*
 * softmax.c — normalisations along an axis (float32): Softmax, LogSoftmax,
 * Hardmax.
 *
 * The opset difference that matters (ONNX Softmax-1/11 vs Softmax-13):
 * - opset < 13: the input is coerced to 2-D at `axis` (default 1):
 *   (d0*...*d{axis-1}, d{axis}*...*d{n-1}), and each row of that matrix is
 *   normalised — i.e. over ALL trailing dims from `axis` on. axis == rank is
 *   allowed (rows of length 1). Negative axes were added in opset 11.
 * - opset >= 13: normalisation is over the single dimension `axis`
 *   (default -1), as torch.softmax(x, dim).
 * Both reduce to: outer x L x inner, normalise each of the outer*inner
 * columns of length L (stride inner); opset < 13 always has inner = 1.
 *
 * Numerically stable: the column maximum is subtracted before exp, so
 * softmax(x + c) == softmax(x) and large inputs never overflow
 * (test_softmax_large_number). Hardmax puts a 1 at the first maximum.
 *
 * Backward runs over the same columns as forward, from the output y:
 * Softmax dx = y (g - <g, y>), LogSoftmax dx = g - e^y <g, 1>. Hardmax's
 * backward adds zero (its output is piecewise constant), so graphs that
 * contain it still differentiate; see sm_backward.
 */
#include "ops/util.h"

#include <math.h>
#include <stdlib.h>

typedef enum { SM_SOFTMAX, SM_LOG_SOFTMAX, SM_HARDMAX } sm_kind;

typedef struct {
    sm_kind kind;
    int64_t axis;  /* as given; normalised against the rank in infer/forward */
    bool coerce2d; /* opset < 13 semantics */
} sm_params;

static gb_status sm_init(gb_ctx *ctx, gb__node *n, sm_kind kind) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    sm_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->kind = kind;
    p->coerce2d = n->opset < 13;
    p->axis = gb__attr_int(n, "axis", p->coerce2d ? 1 : -1);
    n->params = p;
    return GB_OK;
}

/* Split x's shape into (outer, L, inner); false if the axis is out of range. */
static bool sm_split(const sm_params *p, const gb_tensor *x, int64_t *outer, int64_t *len,
                     int64_t *inner) {
    int r = x->ndim;
    int64_t a = p->axis;
    if (p->coerce2d) {
        if (a < -r || a > r) return false; /* axis == r: rows of length 1 */
        if (a < 0) a += r;
        *outer = gb__numel((int)a, x->dims);
        *len = gb__numel(r - (int)a, x->dims + a);
        *inner = 1;
    } else {
        int ax = gb__axis(a, r);
        if (ax < 0) return false;
        *outer = gb__numel(ax, x->dims);
        *len = x->dims[ax];
        *inner = gb__numel(r - ax - 1, x->dims + ax + 1);
    }
    return true;
}

static gb_status sm_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                          gb_tensor **out, size_t *ws_bytes, double *flops) {
    const sm_params *p = n->params;
    const gb_tensor *x = in[0];
    if (x->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): input type %s, expected float32",
                       n->name, n->op_type, gb_dtype_name(x->dtype));
    int64_t outer, len, inner;
    if (!sm_split(p, x, &outer, &len, &inner)) {
        char sx[128];
        gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for input %s",
                       n->name, n->op_type, (long long)p->axis, sx);
    }
    gb__set_shape(out[0], x->dtype, x->ndim, x->dims);
    *flops = 4.0 * (double)x->numel; /* max, sub+exp, sum, scale */
    return GB_OK;
}

/* Normalise one column of n elements at stride s: y = f(x). Inlined into
 * the caller twice, once with s == 1 so contiguous rows vectorise. */
static inline void sm_column(sm_kind kind, float *y, const float *x, int64_t n, int64_t s) {
    if (n == 0) return;
    float mx = x[0];
    int64_t arg = 0;
    for (int64_t k = 1; k < n; k++)
        if (x[k * s] > mx) mx = x[k * s], arg = k;
    switch (kind) {
    case SM_SOFTMAX: {
        float sum = 0.0f;
        for (int64_t k = 0; k < n; k++) {
            float e = expf(x[k * s] - mx);
            y[k * s] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        for (int64_t k = 0; k < n; k++) y[k * s] *= inv;
        break;
    }
    case SM_LOG_SOFTMAX: {
        /* log softmax = (x - max) - log(sum exp(x - max)); subtracting max
         * first keeps x - max exact when |x| is large */
        float sum = 0.0f;
        for (int64_t k = 0; k < n; k++) sum += expf(x[k * s] - mx);
        float ls = logf(sum);
        for (int64_t k = 0; k < n; k++) y[k * s] = (x[k * s] - mx) - ls;
        break;
    }
    case SM_HARDMAX:
        for (int64_t k = 0; k < n; k++) y[k * s] = k == arg ? 1.0f : 0.0f;
        break;
    }
}

static gb_status sm_forward(const gb__node *n, const gb_tensor *const *in,
                            gb_tensor *const *out, const gb__exec *ex) {
    const sm_params *p = n->params;
    const gb_tensor *x = in[0];
    int64_t outer, len, inner;
    if (!sm_split(p, x, &outer, &len, &inner)) return GB_ERR_SHAPE;
    const float *xp = GB_CF32(x);
    float *yp = GB_F32(out[0]);
    const int64_t cols = outer * inner;
    const sm_kind kind = p->kind;
    int nt = x->numel > GB_PAR_MIN / 4 ? ex->n_threads : 1;
    /* Column c = (o, i) starts at o*len*inner + i. Consecutive columns of one
     * thread share cache lines when inner > 1. */
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t c = 0; c < cols; c++) {
        if (inner == 1) {
            sm_column(kind, yp + c * len, xp + c * len, len, 1);
        } else {
            int64_t o = c / inner, i = c % inner;
            int64_t base = o * len * inner + i;
            sm_column(kind, yp + base, xp + base, len, inner);
        }
    }
    return GB_OK;
}

/*
 * Backward of one column (n elements at stride s), from the forward output y
 * and the incoming gradient g:
 *   Softmax:    dx_k += y_k (g_k - sum_j g_j y_j)       (J = diag(y) - y y^T)
 *   LogSoftmax: dx_k += g_k - e^(y_k) sum_j g_j          (J = I - 1 softmax^T)
 *   Hardmax:    piecewise constant: the gradient is 0 (nothing to add).
 */
static inline void sm_column_bwd(sm_kind kind, float *dx, const float *y, const float *g,
                                 int64_t n, int64_t s) {
    double dot = 0.0;
    switch (kind) {
    case SM_SOFTMAX:
        for (int64_t k = 0; k < n; k++) dot += (double)g[k * s] * y[k * s];
        for (int64_t k = 0; k < n; k++) dx[k * s] += y[k * s] * (g[k * s] - (float)dot);
        break;
    case SM_LOG_SOFTMAX:
        for (int64_t k = 0; k < n; k++) dot += g[k * s];
        for (int64_t k = 0; k < n; k++) dx[k * s] += g[k * s] - expf(y[k * s]) * (float)dot;
        break;
    case SM_HARDMAX:
        break;
    }
}

/* Softmax / LogSoftmax backward over the same (outer, L, inner) columns as
 * forward, so both opset conventions (2-D coercion before 13, one axis
 * from 13) are handled by sm_split. Hardmax's output is piecewise constant
 * in x: its backward exists and adds zero, so a graph containing it can
 * still be differentiated (the gradient through it is exactly 0 almost
 * everywhere; at ties it is undefined and we still say 0). */
static gb_status sm_backward(const gb__node *n, const gb_tensor *const *in,
                             const gb_tensor *const *out, const gb_tensor *const *dout,
                             gb_tensor *const *din, const gb__exec *ex) {
    const sm_params *p = n->params;
    if (!dout[0] || !din[0] || p->kind == SM_HARDMAX) return GB_OK;
    int64_t outer, len, inner;
    if (!sm_split(p, in[0], &outer, &len, &inner)) return GB_ERR_SHAPE;
    const float *yp = GB_CF32(out[0]), *gp = GB_CF32(dout[0]);
    float *dxp = GB_F32(din[0]);
    const int64_t cols = outer * inner;
    const sm_kind kind = p->kind;
    int nt = in[0]->numel > GB_PAR_MIN / 4 ? ex->n_threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t c = 0; c < cols; c++) {
        if (inner == 1) {
            sm_column_bwd(kind, dxp + c * len, yp + c * len, gp + c * len, len, 1);
        } else {
            int64_t o = c / inner, i = c % inner;
            int64_t base = o * len * inner + i;
            sm_column_bwd(kind, dxp + base, yp + base, gp + base, len, inner);
        }
    }
    return GB_OK;
}

static gb_status Softmax_init(gb_ctx *ctx, gb__node *n) { return sm_init(ctx, n, SM_SOFTMAX); }
static gb_status LogSoftmax_init(gb_ctx *ctx, gb__node *n) {
    return sm_init(ctx, n, SM_LOG_SOFTMAX);
}
static gb_status Hardmax_init(gb_ctx *ctx, gb__node *n) { return sm_init(ctx, n, SM_HARDMAX); }

const gb__op gb__op_Softmax = {
    .name = "Softmax", .init = Softmax_init, .infer = sm_infer, .forward = sm_forward,
    .backward = sm_backward};
const gb__op gb__op_LogSoftmax = {
    .name = "LogSoftmax", .init = LogSoftmax_init, .infer = sm_infer, .forward = sm_forward,
    .backward = sm_backward};
const gb__op gb__op_Hardmax = {
    .name = "Hardmax", .init = Hardmax_init, .infer = sm_infer, .forward = sm_forward,
    .backward = sm_backward};

const gb__op *const gb__ops_softmax[] = {&gb__op_Softmax, &gb__op_LogSoftmax, &gb__op_Hardmax,
                                         NULL};
