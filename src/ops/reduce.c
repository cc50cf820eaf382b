/*
 * reduce.c — Reduce{Sum,Mean,Max,Min,Prod,SumSquare,L1,L2,LogSum,LogSumExp}.
 *
 * Semantics (ONNX Reduce* family):
 *   - axes: the 'axes' attribute, or input 1 for ReduceSum from opset 13 and
 *     for every Reduce* from opset 18; negative axes count from the end;
 *     a repeated axis is an error.
 *   - no axes (absent, or an empty 'axes' input) reduces over all axes,
 *     unless noop_with_empty_axes=1 (ReduceSum 13+, all 18+), which makes
 *     the op an identity.
 *   - keepdims (default 1) keeps reduced axes as size 1.
 *   - Over zero elements: Sum 0, Prod 1, Mean NaN (0/0), Max -inf, Min +inf
 *     (the identities of each reduction).
 * float32 for all; int64 also for Sum, Max, Min and Prod (exact integer
 * arithmetic, wrapping on overflow is not checked). Float sums accumulate in
 * double.
 *
 * Backward (float32; never w.r.t. the axes input), per reduced block with
 * output y and output gradient g, for each x_i in the block:
 *   Sum        dx_i = g
 *   Mean       dx_i = g / n
 *   SumSquare  dx_i = 2 x_i g
 *   L1         dx_i = sign(x_i) g             (sign(0) = 0, as torch.norm(p=1))
 *   L2         dx_i = x_i / y g               (0 when y = 0, as torch.norm)
 *   LogSum     dx_i = g / sum(x)
 *   LogSumExp  dx_i = exp(x_i - y) g          (0 when y = -inf)
 *   Prod       dx_i = g prod_{j != i} x_j     (no division by a zero x_i:
 *              with one zero only that element gets g * prod of the others;
 *              with two or more every dx_i is 0 — PyTorch's prod_backward)
 *   Max, Min   the gradient is split EVENLY among the elements equal to y
 *              (ties), dx_i = g / #ties. This is torch.amax / torch.amin's
 *              backward, and torch.amax(x, dim) is what PyTorch exports as
 *              ReduceMax; torch.max(x, dim) would send all of it to one
 *              index. Without ties both agree. A NaN y ties with the NaN
 *              elements (it came from them).
 * The noop_with_empty_axes identity passes g through.
 */
#include "ops/const_input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_SUMSQ, RED_L1, RED_L2, RED_LOGSUM, RED_LOGSUMEXP,
    RED_COUNT
} red_kind;

typedef struct {
    red_kind kind;
    int keepdims;
    int noop_empty;
    int n_axes;                  /* attribute form; -1 if absent or from input */
    int64_t axes[GB_MAX_DIMS];
    bool axes_input;
} reduce_params;

static bool axes_from_input(red_kind k, int opset) { return opset >= 18 || (k == RED_SUM && opset >= 13); }

static gb_status reduce_init_kind(gb_ctx *ctx, gb__node *n, red_kind kind) {
    bool from_input = axes_from_input(kind, n->opset);
    gb_status st = gb__check_arity(ctx, n, 1, from_input ? 2 : 1, 1, 1);
    if (st) return st;
    reduce_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    n->params = p;
    p->kind = kind;
    p->axes_input = from_input;
    p->keepdims = gb__attr_int(n, "keepdims", 1) != 0;
    p->noop_empty = gb__attr_int(n, "noop_with_empty_axes", 0) != 0;
    p->n_axes = from_input ? -1 : gb__attr_ints(n, "axes", p->axes, GB_MAX_DIMS);
    if (p->n_axes > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): %d axes (at most %d)", n->name, n->op_type, p->n_axes,
                       GB_MAX_DIMS);
    return GB_OK;
}

/* Which axes of x are reduced; *noop if the op is an identity. */
static gb_status reduce_axes(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, bool *red, bool *noop) {
    const reduce_params *p = n->params;
    const gb_tensor *x = in[0];
    int64_t axes[GB_MAX_DIMS];
    int na = p->n_axes;
    if (p->axes_input) {
        gb_status st = gb__const_ints(ctx, n, in, 1, "axes", axes, GB_MAX_DIMS, &na);
        if (st) return st;
    } else {
        memcpy(axes, p->axes, sizeof axes);
    }
    *noop = false;
    for (int i = 0; i < x->ndim; i++) red[i] = false;
    if (na <= 0) {
        if (p->noop_empty) *noop = true;
        else
            for (int i = 0; i < x->ndim; i++) red[i] = true;
        return GB_OK;
    }
    for (int k = 0; k < na; k++) {
        int a = gb__axis(axes[k], x->ndim);
        if (a < 0 || red[a]) {
            char xs[128];
            gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range or repeated for input %s",
                           n->name, n->op_type, (long long)axes[k], xs);
        }
        red[a] = true;
    }
    return GB_OK;
}

static gb_status reduce_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                              size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const reduce_params *p = n->params;
    const gb_tensor *x = in[0];
    bool int_ok = p->kind == RED_SUM || p->kind == RED_MAX || p->kind == RED_MIN || p->kind == RED_PROD;
    if (x->dtype != GB_DTYPE_F32 && !(int_ok && x->dtype == GB_DTYPE_I64))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): input of element type %s is not supported (%s)",
                       n->name, n->op_type, gb_dtype_name(x->dtype), int_ok ? "float32 or int64" : "float32 only");
    bool red[GB_MAX_DIMS], noop;
    gb_status st = reduce_axes(ctx, n, in, red, &noop);
    if (st) return st;
    int64_t dims[GB_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (!red[i]) dims[nd++] = x->dims[i];
        else if (p->keepdims) dims[nd++] = 1;
    }
    gb__set_shape(out[0], x->dtype, nd, dims);
    *flops = noop ? 0 : (double)x->numel * (p->kind >= RED_SUMSQ ? 2 : 1);
    return GB_OK;
}

/*
 * One output element: walk the reduced sub-tensor starting at `base` with an
 * odometer over the reduced dims (rd sizes, rs strides; the last one is the
 * tight inner loop). `shift` is subtracted before exp (LogSumExp's max).
 */
#define RED_WALK(BODY)                                                                       \
    do {                                                                                     \
        int64_t idx[GB_MAX_DIMS] = {0};                                                      \
        int64_t inner = nr ? rd[nr - 1] : 1, istr = nr ? rs[nr - 1] : 0;                     \
        int64_t outer_cnt = cnt / (inner ? inner : 1);                                       \
        if (!inner) outer_cnt = 0;                                                           \
        int64_t off = base;                                                                  \
        for (int64_t oc = 0; oc < outer_cnt; oc++) {                                         \
            for (int64_t j = 0; j < inner; j++) {                                            \
                int64_t at = off + j * istr;                                                 \
                BODY;                                                                        \
            }                                                                                \
            for (int k = nr - 2; k >= 0; k--) { /* advance the odometer */                   \
                off += rs[k];                                                                \
                if (++idx[k] < rd[k]) break;                                                 \
                off -= rs[k] * rd[k];                                                        \
                idx[k] = 0;                                                                  \
            }                                                                                \
        }                                                                                    \
    } while (0)

static double reduce_f32(red_kind kind, const float *x, int64_t base, int nr, const int64_t *rd,
                         const int64_t *rs, int64_t cnt) {
    double acc;
    switch (kind) {
    case RED_MAX:
        acc = -INFINITY;
        RED_WALK(if (x[at] > acc || isnan(x[at])) acc = x[at]);
        return acc;
    case RED_MIN:
        acc = INFINITY;
        RED_WALK(if (x[at] < acc || isnan(x[at])) acc = x[at]);
        return acc;
    case RED_PROD:
        acc = 1;
        RED_WALK(acc *= x[at]);
        return acc;
    case RED_SUMSQ:
    case RED_L2:
        acc = 0;
        RED_WALK(acc += (double)x[at] * x[at]);
        return kind == RED_L2 ? sqrt(acc) : acc;
    case RED_L1:
        acc = 0;
        RED_WALK(acc += fabs((double)x[at]));
        return acc;
    case RED_LOGSUMEXP: {
        double m = -INFINITY;
        RED_WALK(if (x[at] > m) m = x[at]);
        if (isinf(m)) m = 0; /* all -inf, or empty: avoid inf - inf */
        acc = 0;
        RED_WALK(acc += exp((double)x[at] - m));
        return log(acc) + m;
    }
    default: /* SUM, MEAN, LOGSUM */
        acc = 0;
        RED_WALK(acc += x[at]);
        if (kind == RED_MEAN) return acc / (double)cnt;
        if (kind == RED_LOGSUM) return log(acc);
        return acc;
    }
}

static int64_t reduce_i64(red_kind kind, const int64_t *x, int64_t base, int nr, const int64_t *rd,
                          const int64_t *rs, int64_t cnt) {
    int64_t acc;
    switch (kind) {
    case RED_MAX:
        acc = INT64_MIN;
        RED_WALK(if (x[at] > acc) acc = x[at]);
        return acc;
    case RED_MIN:
        acc = INT64_MAX;
        RED_WALK(if (x[at] < acc) acc = x[at]);
        return acc;
    case RED_PROD:
        acc = 1;
        RED_WALK(acc = (int64_t)((uint64_t)acc * (uint64_t)x[at]));
        return acc;
    default:
        acc = 0;
        RED_WALK(acc = (int64_t)((uint64_t)acc + (uint64_t)x[at]));
        return acc;
    }
}

static gb_status reduce_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                                const gb__exec *ex) {
    const reduce_params *p = n->params;
    const gb_tensor *x = in[0];
    gb_tensor *y = out[0];
    bool red[GB_MAX_DIMS], noop;
    if (reduce_axes(NULL, n, (gb_tensor *const *)in, red, &noop)) return GB_ERR_INTERNAL;
    if (noop) {
        if (x->numel) memcpy(y->data, x->data, (size_t)x->numel * gb_dtype_size(x->dtype));
        return GB_OK;
    }
    /* Split the input dims into kept (output order) and reduced ones. */
    int64_t xst[GB_MAX_DIMS], kd[GB_MAX_DIMS], ks[GB_MAX_DIMS], rd[GB_MAX_DIMS], rs[GB_MAX_DIMS];
    gb__strides(x->ndim, x->dims, xst);
    int nk = 0, nr = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (red[i]) rd[nr] = x->dims[i], rs[nr++] = xst[i];
        else kd[nk] = x->dims[i], ks[nk++] = xst[i];
    }
    int64_t cnt = gb__numel(nr, rd), nout = y->numel;
    red_kind kind = p->kind;
    bool f32 = x->dtype == GB_DTYPE_F32;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN && nout > 1)
    for (int64_t o = 0; o < nout; o++) {
        int64_t base = 0, rem = o;
        for (int k = nk - 1; k >= 0; k--) {
            base += (rem % kd[k]) * ks[k];
            rem /= kd[k];
        }
        if (f32) GB_F32(y)[o] = (float)reduce_f32(kind, GB_CF32(x), base, nr, rd, rs, cnt);
        else GB_I64(y)[o] = reduce_i64(kind, GB_CI64(x), base, nr, rd, rs, cnt);
    }
    return GB_OK;
}

/* dx += d y / d x * g over one reduced block (see the header for the formulas). */
static void reduce_bwd_f32(red_kind kind, const float *x, float *dx, float yv, double g, int64_t base, int nr,
                           const int64_t *rd, const int64_t *rs, int64_t cnt) {
    switch (kind) {
    case RED_SUM:
        RED_WALK(dx[at] += (float)g);
        return;
    case RED_MEAN: {
        float s = (float)(g / (double)cnt);
        RED_WALK(dx[at] += s);
        return;
    }
    case RED_MAX:
    case RED_MIN: {
        bool ynan = isnan(yv);
        int64_t ties = 0;
        RED_WALK(ties += ynan ? isnan(x[at]) != 0 : x[at] == yv);
        if (ties == 0) return;
        float s = (float)(g / (double)ties);
        RED_WALK(if (ynan ? isnan(x[at]) : x[at] == yv) dx[at] += s);
        return;
    }
    case RED_PROD: {
        int64_t zeros = 0;
        double pnz = 1; /* product of the non-zero elements */
        RED_WALK(if (x[at] == 0) zeros++; else pnz *= x[at]);
        if (zeros == 0) RED_WALK(dx[at] += (float)(g * pnz / x[at]));
        else if (zeros == 1) RED_WALK(if (x[at] == 0) dx[at] += (float)(g * pnz));
        return;
    }
    case RED_SUMSQ:
        RED_WALK(dx[at] += (float)(2.0 * g * x[at]));
        return;
    case RED_L1:
        RED_WALK(dx[at] += x[at] > 0 ? (float)g : x[at] < 0 ? (float)-g : 0.0f);
        return;
    case RED_L2: {
        double l2 = reduce_f32(RED_L2, x, base, nr, rd, rs, cnt);
        if (l2 > 0) RED_WALK(dx[at] += (float)(g * x[at] / l2));
        return;
    }
    case RED_LOGSUM: {
        double sum = reduce_f32(RED_SUM, x, base, nr, rd, rs, cnt);
        RED_WALK(dx[at] += (float)(g / sum));
        return;
    }
    case RED_LOGSUMEXP: {
        double lse = reduce_f32(RED_LOGSUMEXP, x, base, nr, rd, rs, cnt);
        if (lse > -INFINITY) RED_WALK(dx[at] += (float)(g * exp((double)x[at] - lse)));
        return;
    }
    default:
        return;
    }
}

/* Outputs own disjoint blocks of x, so threads split the outputs. */
static gb_status reduce_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                                 const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    const reduce_params *p = n->params;
    const gb_tensor *x = in[0], *y = out[0];
    if (!din[0] || !dout[0] || x->dtype != GB_DTYPE_F32) return GB_OK;
    bool red[GB_MAX_DIMS], noop;
    if (reduce_axes(NULL, n, (gb_tensor *const *)in, red, &noop)) return GB_ERR_INTERNAL;
    float *dx = GB_F32(din[0]);
    const float *dy = GB_CF32(dout[0]), *yd = GB_CF32(y), *xd = GB_CF32(x);
    if (noop) {
        for (int64_t i = 0; i < x->numel; i++) dx[i] += dy[i];
        return GB_OK;
    }
    int64_t xst[GB_MAX_DIMS], kd[GB_MAX_DIMS], ks[GB_MAX_DIMS], rd[GB_MAX_DIMS], rs[GB_MAX_DIMS];
    gb__strides(x->ndim, x->dims, xst);
    int nk = 0, nr = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (red[i]) rd[nr] = x->dims[i], rs[nr++] = xst[i];
        else kd[nk] = x->dims[i], ks[nk++] = xst[i];
    }
    int64_t cnt = gb__numel(nr, rd), nout = y->numel;
    red_kind kind = p->kind;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN && nout > 1)
    for (int64_t o = 0; o < nout; o++) {
        int64_t base = 0, rem = o;
        for (int k = nk - 1; k >= 0; k--) {
            base += (rem % kd[k]) * ks[k];
            rem /= kd[k];
        }
        reduce_bwd_f32(kind, xd, dx, yd[o], dy[o], base, nr, rd, rs, cnt);
    }
    return GB_OK;
}

#define REDUCE_OP(NAME, KIND)                                                                  \
    static gb_status init_##NAME(gb_ctx *ctx, gb__node *n) { return reduce_init_kind(ctx, n, KIND); } \
    const gb__op gb__op_##NAME = {.name = #NAME, .init = init_##NAME, .infer = reduce_infer,  \
                                  .forward = reduce_forward, .backward = reduce_backward,       \
                                  .const_inputs = 1u << 1};

REDUCE_OP(ReduceSum, RED_SUM)
REDUCE_OP(ReduceMean, RED_MEAN)
REDUCE_OP(ReduceMax, RED_MAX)
REDUCE_OP(ReduceMin, RED_MIN)
REDUCE_OP(ReduceProd, RED_PROD)
REDUCE_OP(ReduceSumSquare, RED_SUMSQ)
REDUCE_OP(ReduceL1, RED_L1)
REDUCE_OP(ReduceL2, RED_L2)
REDUCE_OP(ReduceLogSum, RED_LOGSUM)
REDUCE_OP(ReduceLogSumExp, RED_LOGSUMEXP)

const gb__op *const gb__ops_reduce[] = {
    &gb__op_ReduceSum,       &gb__op_ReduceMean, &gb__op_ReduceMax, &gb__op_ReduceMin,
    &gb__op_ReduceProd,      &gb__op_ReduceSumSquare, &gb__op_ReduceL1, &gb__op_ReduceL2,
    &gb__op_ReduceLogSum,    &gb__op_ReduceLogSumExp, NULL,
};
_Static_assert(RED_COUNT == 10, "one REDUCE_OP per kind");
