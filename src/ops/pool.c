/*
 * pool.c — spatial pooling: MaxPool, AveragePool, GlobalMaxPool,
 * GlobalAveragePool.
 *
 * Layout: X is (N, C, D1, ..., Dk), k = 1..3 for the windowed pools (any k
 * for the global ones). The windowed kernels view every input as 3-D
 * (D, H, W) by prepending unit axes (kernel 1, stride 1, pad 0), so one loop
 * nest covers 1-D, 2-D and 3-D.
 *
 * ONNX semantics implemented (spec versions MaxPool 1/8/10/11/12,
 * AveragePool 1/7/10/11/19):
 * - kernel_shape is required; strides and dilations default to 1, pads to 0.
 *   pads are [x1_begin, x2_begin, ..., x1_end, x2_end, ...].
 * - dilations (MaxPool >= 10, AveragePool >= 19): window taps are
 *   start + j * dilation, j in [0, kernel).
 * - auto_pad (deprecated but common in old exports): NOTSET uses pads;
 *   VALID means no padding; SAME_UPPER / SAME_LOWER choose
 *   out = ceil(in / stride) and total padding
 *   (out - 1) * stride + ((k - 1) * d + 1) - in, with the odd extra pixel at
 *   the end (UPPER) or at the beginning (LOWER). ceil_mode is ignored for
 *   SAME (the output size is fixed by the rule above).
 * - ceil_mode (opset >= 10): out = ceil((in + pads - ext) / stride) + 1, but,
 *   as in PyTorch and the newer ONNX reference (op_pool_common.py), the last
 *   window must start inside the input or the left padding:
 *   if (out - 1) * stride >= in + pad_begin, out is decremented.
 * - MaxPool: padding never wins (the max is over in-range taps only).
 *   NaN in a window propagates to the output, as in PyTorch.
 * - AveragePool count_include_pad (opset >= 7): with 1 the divisor counts the
 *   taps that fall inside [-pad_begin, in + pad_end), i.e. explicit padding
 *   counts but the extra overhang created by ceil_mode does not (PyTorch's
 *   avg_pool rule; the ONNX reference pads the ceil overhang with NaN, which
 *   it then excludes). With 0 the divisor is the number of in-range taps.
 *   A window with no tap in range yields 0.
 * - MaxPool's optional second output Indices is not supported (init fails
 *   with GB_ERR_UNSUPPORTED when it is requested); storage_order only
 *   affects Indices, so it is accepted and ignored.
 * - Global pools reduce over every spatial axis; the output is
 *   (N, C, 1, ..., 1).
 *
 * Backward (vector-Jacobian products, next to each forward): MaxPool and
 * GlobalMaxPool route each output's gradient to the FIRST maximum of its
 * window in scan order (the tap the forward's strict `>` keeps; padding never
 * wins); AveragePool and GlobalAveragePool spread dy / divisor over the
 * in-range taps with exactly the forward's divisor.
 */
#include "ops/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX_K 3   /* spatial rank of windowed pools */

typedef enum { POOL_MAX, POOL_AVG } pool_kind;
typedef enum { PAD_NOTSET, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER } pool_autopad;

typedef struct {
    pool_kind kind;
    int nk;                          /* spatial rank k (length of kernel_shape) */
    int64_t kernel[POOL_MAX_K];
    int64_t strides[POOL_MAX_K];
    int64_t dilations[POOL_MAX_K];
    int64_t pads[2 * POOL_MAX_K];    /* begins then ends, as in ONNX */
    pool_autopad auto_pad;
    bool ceil_mode;
    bool count_include_pad;
} pool_params;

/* Geometry of one plan, in the 3-D view (unit axes prepended). */
typedef struct {
    int64_t in[3], out[3];
    int64_t k[3], s[3], d[3];
    int64_t pb[3], pe[3];            /* padding at the beginning / end */
} pool_geom;

/* ---- attribute parsing ---------------------------------------------------- */

static gb_status pool_init_common(gb_ctx *ctx, gb__node *n, pool_kind kind) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, kind == POOL_MAX ? 2 : 1);
    if (st) return st;
    /* Indices (MaxPool output 1): an omitted optional output has id -1. */
    if (n->n_out > 1 && n->out[1] >= 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): the optional Indices output is not supported", n->name,
                       n->op_type);

    pool_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    n->params = p;
    p->kind = kind;

    int64_t tmp[2 * POOL_MAX_K + 1];
    int nk = gb__attr_ints(n, "kernel_shape", tmp, POOL_MAX_K + 1);
    if (nk < 1)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing attribute kernel_shape", n->name,
                       n->op_type);
    if (nk > POOL_MAX_K)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): %d-D pooling (only 1-D, 2-D and 3-D are supported)", n->name,
                       n->op_type, nk);
    p->nk = nk;
    for (int i = 0; i < nk; i++) {
        p->kernel[i] = tmp[i];
        p->strides[i] = 1;
        p->dilations[i] = 1;
        if (tmp[i] < 1)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): kernel_shape[%d] = %lld must be >= 1",
                           n->name, n->op_type, i, (long long)tmp[i]);
    }

    int ns = gb__attr_ints(n, "strides", tmp, POOL_MAX_K + 1);
    if (ns >= 0) {
        if (ns != nk)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): %d strides for a %d-D kernel", n->name,
                           n->op_type, ns, nk);
        for (int i = 0; i < nk; i++) {
            if (tmp[i] < 1)
                return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): strides[%d] = %lld must be >= 1",
                               n->name, n->op_type, i, (long long)tmp[i]);
            p->strides[i] = tmp[i];
        }
    }

    int nd = gb__attr_ints(n, "dilations", tmp, POOL_MAX_K + 1);
    if (nd >= 0) {
        if (nd != nk)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): %d dilations for a %d-D kernel",
                           n->name, n->op_type, nd, nk);
        for (int i = 0; i < nk; i++) {
            if (tmp[i] < 1)
                return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): dilations[%d] = %lld must be >= 1",
                               n->name, n->op_type, i, (long long)tmp[i]);
            p->dilations[i] = tmp[i];
        }
    }

    int np = gb__attr_ints(n, "pads", tmp, 2 * POOL_MAX_K + 1);
    if (np >= 0) {
        if (np != 2 * nk)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): %d pads for a %d-D kernel (need %d)",
                           n->name, n->op_type, np, nk, 2 * nk);
        for (int i = 0; i < 2 * nk; i++) {
            if (tmp[i] < 0)
                return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): pads[%d] = %lld is negative",
                               n->name, n->op_type, i, (long long)tmp[i]);
            p->pads[i] = tmp[i];
        }
    }

    const char *ap = gb__attr_str(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0') p->auto_pad = PAD_NOTSET;
    else if (strcmp(ap, "VALID") == 0) p->auto_pad = PAD_VALID;
    else if (strcmp(ap, "SAME_UPPER") == 0) p->auto_pad = PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0) p->auto_pad = PAD_SAME_LOWER;
    else
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): unknown auto_pad \"%s\"", n->name,
                       n->op_type, ap);

    p->ceil_mode = gb__attr_int(n, "ceil_mode", 0) != 0;
    p->count_include_pad = gb__attr_int(n, "count_include_pad", 0) != 0;
    return GB_OK;
}

static gb_status maxpool_init(gb_ctx *ctx, gb__node *n) {
    return pool_init_common(ctx, n, POOL_MAX);
}

static gb_status avgpool_init(gb_ctx *ctx, gb__node *n) {
    return pool_init_common(ctx, n, POOL_AVG);
}

/* ---- geometry ------------------------------------------------------------- */

/* Output size and padding of every spatial axis of x (N, C, D1..Dk).
 * Returns false (with *bad set to the offending axis) if an output would be
 * empty. */
static bool pool_geometry(const pool_params *p, const gb_tensor *x, pool_geom *g, int *bad) {
    int off = 3 - p->nk;  /* the 3-D view prepends `off` unit axes */
    for (int a = 0; a < 3; a++) {
        g->in[a] = g->out[a] = g->k[a] = g->s[a] = g->d[a] = 1;
        g->pb[a] = g->pe[a] = 0;
    }
    for (int i = 0; i < p->nk; i++) {
        int a = off + i;
        int64_t in = x->dims[2 + i], k = p->kernel[i], s = p->strides[i], d = p->dilations[i];
        int64_t ext = (k - 1) * d + 1;  /* extent of the dilated window */
        int64_t pb = 0, pe = 0, out;
        if (p->auto_pad == PAD_SAME_UPPER || p->auto_pad == PAD_SAME_LOWER) {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + ext - in;
            if (total < 0) total = 0;
            pb = p->auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            if (p->auto_pad == PAD_NOTSET) {
                pb = p->pads[i];
                pe = p->pads[p->nk + i];
            }
            int64_t span = in + pb + pe - ext;
            if (span < 0) {
                *bad = i;
                return false;
            }
            out = (p->ceil_mode ? (span + s - 1) / s : span / s) + 1;
            /* ceil_mode: the last window must start inside input or left pad */
            if (p->ceil_mode && (out - 1) * s >= in + pb) out--;
        }
        if (out < 1) {
            *bad = i;
            return false;
        }
        g->in[a] = in;
        g->out[a] = out;
        g->k[a] = k;
        g->s[a] = s;
        g->d[a] = d;
        g->pb[a] = pb;
        g->pe[a] = pe;
    }
    return true;
}

static gb_status pool_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                            size_t *ws_bytes, double *flops) {
    const pool_params *p = n->params;
    const gb_tensor *x = in[0];
    char sx[128];
    gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
    if (x->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): input type %s (float32 only)", n->name,
                       n->op_type, gb_dtype_name(x->dtype));
    if (x->ndim != 2 + p->nk)
        return gb__err(ctx, GB_ERR_SHAPE,
                       "%s (%s): input %s does not match a %d-D kernel (need rank %d)", n->name,
                       n->op_type, sx, p->nk, 2 + p->nk);
    pool_geom g;
    int bad = 0;
    if (!pool_geometry(p, x, &g, &bad))
        return gb__err(ctx, GB_ERR_SHAPE,
                       "%s (%s): input %s too small for kernel %lld (dilation %lld) on spatial "
                       "axis %d",
                       n->name, n->op_type, sx, (long long)p->kernel[bad],
                       (long long)p->dilations[bad], bad);
    int64_t dims[GB_MAX_DIMS];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 0; i < p->nk; i++) dims[2 + i] = g.out[3 - p->nk + i];
    gb__set_shape(out[0], GB_DTYPE_F32, x->ndim, dims);
    /* one compare or add per window tap */
    *flops = (double)out[0]->numel * (double)(g.k[0] * g.k[1] * g.k[2]);
    (void)ws_bytes;
    return GB_OK;
}

/* ---- kernels -------------------------------------------------------------- */

/* Taps j in [*lo, *hi) of a window starting at `start` (may be negative) with
 * k taps spaced d apart that land inside [0, in). */
static inline void tap_range(int64_t start, int64_t k, int64_t d, int64_t in, int64_t *lo,
                             int64_t *hi) {
    if (d == 1) { /* the common case, without 64-bit divisions (they dominated MaxPool's time) */
        *lo = start < 0 ? -start : 0;
        *hi = in - start < k ? in - start : k;
        if (*hi < 0) *hi = 0;
        if (*lo > *hi) *lo = *hi;
        return;
    }
    *lo = start < 0 ? (-start + d - 1) / d : 0;
    *hi = start > in - 1 ? 0 : (in - 1 - start) / d + 1;
    if (*hi > k) *hi = k;
    if (*lo > *hi) *lo = *hi;
}

/* Taps of the window inside [-pb, in + pe): what count_include_pad counts.
 * The window never starts before -pb, so only the end can be clipped (by
 * the ceil_mode overhang). */
static inline int64_t tap_count_padded(int64_t start, int64_t k, int64_t d, int64_t in,
                                       int64_t pe) {
    int64_t lim = in + pe - start;  /* taps j with j * d < lim */
    if (lim <= 0) return 0;
    int64_t c = (lim + d - 1) / d;
    return c < k ? c : k;
}

/* One output row: y (OW) from the plane x (ID, IH, IW) at output (od, oh). */
static void pool_row(const pool_params *p, const pool_geom *g, const float *x, float *y,
                     int64_t od, int64_t oh) {
    int64_t sd = od * g->s[0] - g->pb[0], sh = oh * g->s[1] - g->pb[1];
    int64_t d_lo, d_hi, h_lo, h_hi;
    tap_range(sd, g->k[0], g->d[0], g->in[0], &d_lo, &d_hi);
    tap_range(sh, g->k[1], g->d[1], g->in[1], &h_lo, &h_hi);
    int64_t cnt_dh = 0;
    if (p->count_include_pad)
        cnt_dh = tap_count_padded(sd, g->k[0], g->d[0], g->in[0], g->pe[0]) *
                 tap_count_padded(sh, g->k[1], g->d[1], g->in[1], g->pe[1]);
    for (int64_t ow = 0; ow < g->out[2]; ow++) {
        int64_t sw = ow * g->s[2] - g->pb[2];
        int64_t w_lo, w_hi;
        tap_range(sw, g->k[2], g->d[2], g->in[2], &w_lo, &w_hi);
        if (p->kind == POOL_MAX) {
            /* Branch-free: a data-dependent `if` here mispredicted on half
             * the taps and made MaxPool cost more than a convolution. NaN
             * propagates through the flag instead of the comparison. */
            float m = -INFINITY;
            int nan = 0;
            for (int64_t jd = d_lo; jd < d_hi; jd++)
                for (int64_t jh = h_lo; jh < h_hi; jh++) {
                    const float *row =
                        x + ((sd + jd * g->d[0]) * g->in[1] + (sh + jh * g->d[1])) * g->in[2];
                    for (int64_t jw = w_lo; jw < w_hi; jw++) {
                        float v = row[sw + jw * g->d[2]];
                        m = v > m ? v : m;
                        nan |= v != v;
                    }
                }
            y[ow] = nan ? NAN : m;
        } else {
            float sum = 0.0f;
            for (int64_t jd = d_lo; jd < d_hi; jd++)
                for (int64_t jh = h_lo; jh < h_hi; jh++) {
                    const float *row =
                        x + ((sd + jd * g->d[0]) * g->in[1] + (sh + jh * g->d[1])) * g->in[2];
                    for (int64_t jw = w_lo; jw < w_hi; jw++) sum += row[sw + jw * g->d[2]];
                }
            int64_t cnt = p->count_include_pad
                              ? cnt_dh * tap_count_padded(sw, g->k[2], g->d[2], g->in[2], g->pe[2])
                              : (d_hi - d_lo) * (h_hi - h_lo) * (w_hi - w_lo);
            y[ow] = cnt > 0 ? sum / (float)cnt : 0.0f;
        }
    }
}

static gb_status pool_forward(const gb__node *n, const gb_tensor *const *in,
                              gb_tensor *const *out, const gb__exec *ex) {
    const pool_params *p = n->params;
    const gb_tensor *x = in[0];
    pool_geom g;
    int bad;
    if (!pool_geometry(p, x, &g, &bad)) return GB_ERR_SHAPE;
    const float *xd = GB_CF32(x);   /* (N, C, ID, IH, IW) */
    float *yd = GB_F32(out[0]);     /* (N, C, OD, OH, OW) */
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
    int64_t out_plane = g.out[0] * g.out[1] * g.out[2];
    /* one task per output row, so a single large plane still splits */
    int64_t rows = planes * g.out[0] * g.out[1];
    int64_t work = planes * out_plane * g.k[0] * g.k[1] * g.k[2];
#pragma omp parallel for num_threads(ex->n_threads) if (work > GB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oh = r % g.out[1];
        int64_t od = (r / g.out[1]) % g.out[0];
        int64_t pl = r / (g.out[1] * g.out[0]);
        pool_row(p, &g, xd + pl * in_plane, yd + pl * out_plane + (od * g.out[1] + oh) * g.out[2],
                 od, oh);
    }
    return GB_OK;
}

/* Backward of one output row: the mirror of pool_row, scattering dy (OW) into
 * the plane dx (ID, IH, IW).
 *   MaxPool:     dx[argmax] += dy, with argmax the FIRST in-range tap (scan
 *                order d, h, w) holding the window's maximum — the same tap
 *                pool_row's strict `v > m` keeps. Padding never wins, so it
 *                never receives gradient; a NaN window sends its gradient to
 *                its first NaN. (ir.h kink convention.)
 *   AveragePool: y = sum(taps) / cnt, so every in-range tap gets dy / cnt,
 *                with cnt exactly the forward's divisor (count_include_pad
 *                and the ceil_mode overhang handled alike). */
static void pool_row_backward(const pool_params *p, const pool_geom *g, const float *x,
                              const float *dy, float *dx, int64_t od, int64_t oh) {
    int64_t sd = od * g->s[0] - g->pb[0], sh = oh * g->s[1] - g->pb[1];
    int64_t d_lo, d_hi, h_lo, h_hi;
    tap_range(sd, g->k[0], g->d[0], g->in[0], &d_lo, &d_hi);
    tap_range(sh, g->k[1], g->d[1], g->in[1], &h_lo, &h_hi);
    int64_t cnt_dh = 0;
    if (p->count_include_pad)
        cnt_dh = tap_count_padded(sd, g->k[0], g->d[0], g->in[0], g->pe[0]) *
                 tap_count_padded(sh, g->k[1], g->d[1], g->in[1], g->pe[1]);
    for (int64_t ow = 0; ow < g->out[2]; ow++) {
        int64_t sw = ow * g->s[2] - g->pb[2];
        int64_t w_lo, w_hi;
        tap_range(sw, g->k[2], g->d[2], g->in[2], &w_lo, &w_hi);
        if (p->kind == POOL_MAX) {
            float m = -INFINITY;
            int64_t arg = -1;  /* offset of the winning tap in the plane */
            for (int64_t jd = d_lo; jd < d_hi; jd++)
                for (int64_t jh = h_lo; jh < h_hi; jh++) {
                    int64_t row = ((sd + jd * g->d[0]) * g->in[1] + (sh + jh * g->d[1])) * g->in[2];
                    for (int64_t jw = w_lo; jw < w_hi; jw++) {
                        int64_t o = row + sw + jw * g->d[2];
                        float v = x[o];
                        /* strict >: ties keep the first; -inf taps still win
                         * an empty slot; the first NaN sticks. Selects, not
                         * branches (see pool_row). */
                        int take = (arg < 0) | (v > m) | ((v != v) & (m == m));
                        m = take ? v : m;
                        arg = take ? o : arg;
                    }
                }
            if (arg >= 0) dx[arg] += dy[ow];
        } else {
            int64_t cnt = p->count_include_pad
                              ? cnt_dh * tap_count_padded(sw, g->k[2], g->d[2], g->in[2], g->pe[2])
                              : (d_hi - d_lo) * (h_hi - h_lo) * (w_hi - w_lo);
            if (cnt <= 0) continue;  /* forward wrote a constant 0 */
            float gv = dy[ow] / (float)cnt;
            for (int64_t jd = d_lo; jd < d_hi; jd++)
                for (int64_t jh = h_lo; jh < h_hi; jh++) {
                    float *row =
                        dx + ((sd + jd * g->d[0]) * g->in[1] + (sh + jh * g->d[1])) * g->in[2];
                    for (int64_t jw = w_lo; jw < w_hi; jw++) row[sw + jw * g->d[2]] += gv;
                }
        }
    }
}

/* dX += J^T dY. Windows overlap inside a plane, so the work is split by
 * (n, c) plane: each plane is scattered by one thread, in a fixed order,
 * which keeps the result independent of the thread count. */
static gb_status pool_backward(const gb__node *n, const gb_tensor *const *in,
                               const gb_tensor *const *out, const gb_tensor *const *dout,
                               gb_tensor *const *din, const gb__exec *ex) {
    if (!din[0] || !dout[0]) return GB_OK;
    const pool_params *p = n->params;
    const gb_tensor *x = in[0];
    pool_geom g;
    int bad;
    if (!pool_geometry(p, x, &g, &bad)) return GB_ERR_SHAPE;
    const float *xd = GB_CF32(x);          /* (N, C, ID, IH, IW) */
    const float *dyd = GB_CF32(dout[0]);   /* (N, C, OD, OH, OW) */
    float *dxd = GB_F32(din[0]);           /* (N, C, ID, IH, IW) */
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
    int64_t out_plane = g.out[0] * g.out[1] * g.out[2];
    int64_t work = planes * out_plane * g.k[0] * g.k[1] * g.k[2];
#pragma omp parallel for num_threads(ex->n_threads) if (work > GB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t od = 0; od < g.out[0]; od++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                pool_row_backward(p, &g, xd + pl * in_plane,
                                  dyd + pl * out_plane + (od * g.out[1] + oh) * g.out[2],
                                  dxd + pl * in_plane, od, oh);
    return GB_OK;
}

/* ---- global pools ------------------------------------------------------------ */

static gb_status global_init(gb_ctx *ctx, gb__node *n) {
    return gb__check_arity(ctx, n, 1, 1, 1, 1);
}

static gb_status global_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                              gb_tensor **out, size_t *ws_bytes, double *flops) {
    const gb_tensor *x = in[0];
    if (x->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): input type %s (float32 only)", n->name,
                       n->op_type, gb_dtype_name(x->dtype));
    if (x->ndim < 3) {
        char sx[128];
        gb_shape_str(x->ndim, x->dims, sx, sizeof sx);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %s needs rank >= 3 (N, C, D1, ...)",
                       n->name, n->op_type, sx);
    }
    int64_t dims[GB_MAX_DIMS];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 2; i < x->ndim; i++) dims[i] = 1;
    gb__set_shape(out[0], GB_DTYPE_F32, x->ndim, dims);
    *flops = (double)x->numel;
    (void)ws_bytes;
    return GB_OK;
}

static gb_status global_forward(const gb_tensor *const *in,
                                gb_tensor *const *out, const gb__exec *ex, pool_kind kind) {
    const gb_tensor *x = in[0];
    const float *xd = GB_CF32(x);   /* (N, C, S) with S = D1 * ... * Dk */
    float *yd = GB_F32(out[0]);     /* (N, C) */
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t S = planes > 0 ? x->numel / planes : 0;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = xd + pl * S;
        if (kind == POOL_MAX) {
            float m = -INFINITY;
            for (int64_t i = 0; i < S; i++)
                if (xp[i] > m || xp[i] != xp[i]) m = xp[i];
            yd[pl] = m;
        } else {
            double sum = 0.0;  /* planes can be large: accumulate in double */
            for (int64_t i = 0; i < S; i++) sum += xp[i];
            yd[pl] = S > 0 ? (float)(sum / (double)S) : 0.0f;
        }
    }
    return GB_OK;
}

static gb_status global_max_forward(const gb__node *n, const gb_tensor *const *in,
                                    gb_tensor *const *out, const gb__exec *ex) {
    return global_forward(in, out, ex, POOL_MAX);
}

static gb_status global_avg_forward(const gb__node *n, const gb_tensor *const *in,
                                    gb_tensor *const *out, const gb__exec *ex) {
    return global_forward(in, out, ex, POOL_AVG);
}

/* GlobalMaxPool:     dx[first argmax of the plane] += dy (kink convention as
 *                    MaxPool; a NaN plane sends it to its first NaN).
 * GlobalAveragePool: y = sum(x) / S, so dx[i] += dy / S for every i. */
static gb_status global_backward(const gb_tensor *const *in, const gb_tensor *const *dout,
                                 gb_tensor *const *din, const gb__exec *ex, pool_kind kind) {
    if (!din[0] || !dout[0]) return GB_OK;
    const gb_tensor *x = in[0];
    const float *xd = GB_CF32(x);          /* (N, C, S) */
    const float *dyd = GB_CF32(dout[0]);   /* (N, C) */
    float *dxd = GB_F32(din[0]);           /* (N, C, S) */
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t S = planes > 0 ? x->numel / planes : 0;
    if (S == 0) return GB_OK;
#pragma omp parallel for num_threads(ex->n_threads) if (x->numel > GB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = xd + pl * S;
        float *dxp = dxd + pl * S;
        if (kind == POOL_MAX) {
            int64_t arg = 0;
            float m = xp[0];
            for (int64_t i = 1; i < S; i++)
                if (xp[i] > m || (xp[i] != xp[i] && m == m)) {
                    m = xp[i];
                    arg = i;
                }
            dxp[arg] += dyd[pl];
        } else {
            float gv = (float)((double)dyd[pl] / (double)S);
            for (int64_t i = 0; i < S; i++) dxp[i] += gv;
        }
    }
    return GB_OK;
}

static gb_status global_max_backward(const gb__node *n, const gb_tensor *const *in,
                                     const gb_tensor *const *out, const gb_tensor *const *dout,
                                     gb_tensor *const *din, const gb__exec *ex) {
    return global_backward(in, dout, din, ex, POOL_MAX);
}

static gb_status global_avg_backward(const gb__node *n, const gb_tensor *const *in,
                                     const gb_tensor *const *out, const gb_tensor *const *dout,
                                     gb_tensor *const *din, const gb__exec *ex) {
    return global_backward(in, dout, din, ex, POOL_AVG);
}

/* ---- registration ------------------------------------------------------------ */

const gb__op gb__op_MaxPool = {.name = "MaxPool",
                               .init = maxpool_init,
                               .infer = pool_infer,
                               .forward = pool_forward,
                               .backward = pool_backward};
const gb__op gb__op_AveragePool = {.name = "AveragePool",
                                   .init = avgpool_init,
                                   .infer = pool_infer,
                                   .forward = pool_forward,
                                   .backward = pool_backward};
const gb__op gb__op_GlobalMaxPool = {.name = "GlobalMaxPool",
                                     .init = global_init,
                                     .infer = global_infer,
                                     .forward = global_max_forward,
                                     .backward = global_max_backward};
const gb__op gb__op_GlobalAveragePool = {.name = "GlobalAveragePool",
                                         .init = global_init,
                                         .infer = global_infer,
                                         .forward = global_avg_forward,
                                         .backward = global_avg_backward};

const gb__op *const gb__ops_pool[] = {
    &gb__op_MaxPool, &gb__op_AveragePool, &gb__op_GlobalMaxPool, &gb__op_GlobalAveragePool, NULL};
