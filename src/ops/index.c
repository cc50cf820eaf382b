/*
 * index.c — data-movement ops: Transpose, Expand, Slice, Gather, Concat,
 * Split, Pad. All of them move float32 or int64 elements without arithmetic,
 * so the kernels work on 4- or 8-byte words and serve both types.
 *
 * Opset differences handled here (ONNX operator changelog):
 *   Slice  opset 1-9 starts/ends/axes attributes; 10+ inputs starts, ends,
 *          optional axes and steps (negative steps; INT64_MAX/INT64_MIN as
 *          "to the end" sentinels, clamped per the spec).
 *   Split  opset 1 optional 'split' input or attribute; 2-12 'split'
 *          attribute; 13+ optional 'split' input. Equal parts if absent.
 *          (opset 18's num_outputs is not handled.)
 *   Pad    opset 1 'paddings', 2-10 'pads' and 'value' attributes; 11+
 *          'pads' and optional 'constant_value' inputs; 18 optional 'axes'
 *          input. Modes constant, reflect, edge (19's wrap is refused).
 *   Concat opset 1 axis defaults to 1; 4+ required; negative from 11.
 *   Gather negative indices (valid since opset 11 and accepted for all).
 *
 * Backward (vector-Jacobian products, float32 data only; never w.r.t. the
 * int64 index/shape inputs): every op here is linear in its data input, so
 * its backward is the transpose of the copy — dx[src(o)] += dy[o] over the
 * forward's (output o <- input src(o)) pairs. Where src is injective
 * (Transpose, Slice, Concat, Split, constant Pad) this is a scatter; where
 * it is not (Expand's broadcast, Gather's repeated indices, reflect/edge
 * Pad) contributions are summed, and the parallel loops are split so that
 * no two threads write the same dx element (deterministic for any thread
 * count).
 */
#include "ops/const_input.h"

#include <stdlib.h>
#include <string.h>

static gb_status alloc_params(gb_ctx *ctx, gb__node *n, size_t size) {
    n->params = calloc(1, size);
    if (!n->params) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    return GB_OK;
}

/* ---- the strided copy kernel shared by Transpose, Expand and Slice --------- */
/*
 * dst (contiguous, shape od[0..nd)) [i0..] = src[base + sum_k i_k * st[k]]
 * with element strides st that may be 0 (broadcast) or negative (reversed
 * slice). One parallel task per row of the last dimension.
 */
static void strided_copy(void *dst, const void *src, size_t esize, int nd, const int64_t *od,
                         const int64_t *st, int64_t base, int n_threads) {
    int64_t total = gb__numel(nd, od);
    if (total == 0) return;
    if (nd == 0) {
        memcpy(dst, (const char *)src + base * (int64_t)esize, esize);
        return;
    }
    int64_t inner = od[nd - 1], rows = total / inner, sin = st[nd - 1];
#pragma omp parallel for num_threads(n_threads) if (total > GB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = base, rem = r;
        for (int d = nd - 2; d >= 0; d--) {
            off += (rem % od[d]) * st[d];
            rem /= od[d];
        }
        if (sin == 1) {
            memcpy((char *)dst + r * inner * (int64_t)esize, (const char *)src + off * (int64_t)esize,
                   (size_t)inner * esize);
        } else if (esize == 4) {
            uint32_t *o = (uint32_t *)dst + r * inner;
            const uint32_t *s = (const uint32_t *)src + off;
            for (int64_t j = 0; j < inner; j++) o[j] = s[j * sin];
        } else {
            uint64_t *o = (uint64_t *)dst + r * inner;
            const uint64_t *s = (const uint64_t *)src + off;
            for (int64_t j = 0; j < inner; j++) o[j] = s[j * sin];
        }
    }
}

/*
 * The two transposes of strided_copy, float32 and accumulating:
 *   strided_gather_add:  dst[i] += src[base + sum_k i_k * st[k]]  (dst contiguous)
 *   strided_scatter_add: dst[base + sum_k i_k * st[k]] += src[i]  (src contiguous)
 * The scatter runs rows in parallel, so its map must be injective (Slice's
 * is: steps are non-zero).
 */
static void strided_gather_add(float *dst, const float *src, int nd, const int64_t *od, const int64_t *st,
                               int64_t base, int n_threads) {
    int64_t total = gb__numel(nd, od);
    if (total == 0) return;
    if (nd == 0) {
        dst[0] += src[base];
        return;
    }
    int64_t inner = od[nd - 1], rows = total / inner, sin = st[nd - 1];
#pragma omp parallel for num_threads(n_threads) if (total > GB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = base, rem = r;
        for (int d = nd - 2; d >= 0; d--) {
            off += (rem % od[d]) * st[d];
            rem /= od[d];
        }
        float *o = dst + r * inner;
        const float *s = src + off;
        for (int64_t j = 0; j < inner; j++) o[j] += s[j * sin];
    }
}

static void strided_scatter_add(float *dst, const float *src, int nd, const int64_t *od, const int64_t *st,
                                int64_t base, int n_threads) {
    int64_t total = gb__numel(nd, od);
    if (total == 0) return;
    if (nd == 0) {
        dst[base] += src[0];
        return;
    }
    int64_t inner = od[nd - 1], rows = total / inner, sin = st[nd - 1];
#pragma omp parallel for num_threads(n_threads) if (total > GB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = base, rem = r;
        for (int d = nd - 2; d >= 0; d--) {
            off += (rem % od[d]) * st[d];
            rem /= od[d];
        }
        float *o = dst + off;
        const float *s = src + r * inner;
        for (int64_t j = 0; j < inner; j++) o[j * sin] += s[j];
    }
}

/* True when there is a float32 gradient to propagate into input 0. */
static bool wants_dx(const gb_tensor *const *in, const gb_tensor *const *dout, gb_tensor *const *din) {
    return din[0] && dout[0] && in[0]->dtype == GB_DTYPE_F32;
}

/* ---- Transpose -------------------------------------------------------------- */
/* out.dims[i] = in.dims[perm[i]]; perm defaults to reversing the axes. */
typedef struct {
    int n_perm;                  /* -1: reverse */
    int64_t perm[GB_MAX_DIMS];
} transpose_params;

static gb_status transpose_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(transpose_params)))) return st;
    transpose_params *p = n->params;
    p->n_perm = gb__attr_ints(n, "perm", p->perm, GB_MAX_DIMS);
    if (p->n_perm > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): perm of %d axes (at most %d)", n->name, n->op_type,
                       p->n_perm, GB_MAX_DIMS);
    return GB_OK;
}

static void transpose_perm(const gb__node *n, int r, int64_t *perm) {
    const transpose_params *p = n->params;
    for (int i = 0; i < r; i++) perm[i] = p->n_perm < 0 ? r - 1 - i : p->perm[i];
}

static gb_status transpose_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                                 size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const gb_tensor *x = in[0];
    const transpose_params *p = n->params;
    gb_status st = gb__check_f32_i64(ctx, n, x, "input");
    if (st) return st;
    char xs[128];
    gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
    if (p->n_perm >= 0 && p->n_perm != x->ndim)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): perm has %d entries for input %s", n->name, n->op_type,
                       p->n_perm, xs);
    int64_t perm[GB_MAX_DIMS], dims[GB_MAX_DIMS];
    transpose_perm(n, x->ndim, perm);
    bool seen[GB_MAX_DIMS] = {false};
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]])
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): perm is not a permutation of 0..%d", n->name, n->op_type,
                           x->ndim - 1);
        seen[perm[i]] = true;
        dims[i] = x->dims[perm[i]];
    }
    gb__set_shape(out[0], x->dtype, x->ndim, dims);
    return GB_OK;
}

static gb_status transpose_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                                   const gb__exec *ex) {
    const gb_tensor *x = in[0];
    int64_t perm[GB_MAX_DIMS], xst[GB_MAX_DIMS], st[GB_MAX_DIMS];
    transpose_perm(n, x->ndim, perm);
    gb__strides(x->ndim, x->dims, xst);
    for (int i = 0; i < x->ndim; i++) st[i] = xst[perm[i]];
    strided_copy(out[0]->data, x->data, gb_dtype_size(x->dtype), out[0]->ndim, out[0]->dims, st, 0,
                 ex->n_threads);
    return GB_OK;
}

/*
 * y = transpose(x, perm)  =>  dx = transpose(dy, perm^-1): input axis perm[i]
 * is output axis i, so dx (contiguous, x's shape) reads dy with stride
 * dy_stride[i] along axis perm[i].
 */
static gb_status transpose_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                                    const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    if (!wants_dx(in, dout, din)) return GB_OK;
    const gb_tensor *x = in[0];
    int64_t perm[GB_MAX_DIMS], yst[GB_MAX_DIMS], st[GB_MAX_DIMS];
    transpose_perm(n, x->ndim, perm);
    gb__strides(out[0]->ndim, out[0]->dims, yst);
    for (int i = 0; i < x->ndim; i++) st[perm[i]] = yst[i];
    strided_gather_add(GB_F32(din[0]), GB_CF32(dout[0]), x->ndim, x->dims, st, 0, ex->n_threads);
    return GB_OK;
}

const gb__op gb__op_Transpose = {.name = "Transpose", .init = transpose_init, .infer = transpose_infer,
                                 .forward = transpose_forward, .backward = transpose_backward};

/* ---- Expand --------------------------------------------------------------------- */
/*
 * Broadcast data to the constant 'shape' input, bidirectionally: the output
 * shape is broadcast(data.shape, shape), so a 1 in 'shape' keeps the data's
 * dimension and 'shape' may have fewer dimensions than the data.
 */
static gb_status expand_init(gb_ctx *ctx, gb__node *n) { return gb__check_arity(ctx, n, 2, 2, 1, 1); }

static gb_status expand_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                              size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 2)) return GB_ERR_FORMAT;
    const gb_tensor *x = in[0];
    gb_status st = gb__check_f32_i64(ctx, n, x, "input");
    if (st) return st;
    int64_t shape[GB_MAX_DIMS], dims[GB_MAX_DIMS];
    int ns, nd;
    if ((st = gb__const_ints(ctx, n, in, 1, "shape", shape, GB_MAX_DIMS, &ns))) return st;
    for (int i = 0; i < ns; i++)
        if (shape[i] < 0)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): negative dimension %lld in 'shape'", n->name, n->op_type,
                           (long long)shape[i]);
    if (!gb__broadcast_shape(x->ndim, x->dims, ns, shape, &nd, dims)) {
        char xs[128], ss[128];
        gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
        gb_shape_str(ns, shape, ss, sizeof ss);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): cannot broadcast input %s to shape %s", n->name, n->op_type,
                       xs, ss);
    }
    if ((st = gb__check_size(ctx, n, nd, dims))) return st;
    gb__set_shape(out[0], x->dtype, nd, dims);
    return GB_OK;
}

static gb_status expand_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                                const gb__exec *ex) {
    const gb_tensor *x = in[0];
    gb_tensor *y = out[0];
    int64_t st[GB_MAX_DIMS];
    gb__broadcast_strides(x->ndim, x->dims, y->ndim, y->dims, st);
    strided_copy(y->data, x->data, gb_dtype_size(x->dtype), y->ndim, y->dims, st, 0, ex->n_threads);
    return GB_OK;
}

/*
 * y[o] = x[bcast(o)]  =>  dx[i] = sum of dy over the output positions that
 * read x[i]: the output axes where x has size 1 (or is missing) are summed
 * over. Each thread takes whole x elements and sums their block of dy in
 * double, in a fixed order.
 */
static gb_status expand_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                                 const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    if (!wants_dx(in, dout, din)) return GB_OK;
    const gb_tensor *x = in[0], *y = out[0];
    int nd = y->ndim, lead = y->ndim - x->ndim;
    int64_t yst[GB_MAX_DIMS], rd[GB_MAX_DIMS], rs[GB_MAX_DIMS], kst[GB_MAX_DIMS];
    gb__strides(nd, y->dims, yst);
    /* Kept: x's own axes of full size (stride into dy); reduced: the rest. */
    int nr = 0;
    for (int i = 0; i < nd; i++) {
        bool bcast = i < lead || x->dims[i - lead] != y->dims[i];
        if (i >= lead) kst[i - lead] = bcast ? 0 : yst[i];
        if (bcast) rd[nr] = y->dims[i], rs[nr++] = yst[i];
    }
    int64_t cnt = gb__numel(nr, rd), nx = x->numel;
    const float *dy = GB_CF32(dout[0]);
    float *dx = GB_F32(din[0]);
    if (cnt == 0) return GB_OK;
#pragma omp parallel for num_threads(ex->n_threads) if (y->numel > GB_PAR_MIN)
    for (int64_t i = 0; i < nx; i++) {
        int64_t base = 0, rem = i;
        for (int k = x->ndim - 1; k >= 0; k--) {
            base += (rem % x->dims[k]) * kst[k];
            rem /= x->dims[k];
        }
        int64_t idx[GB_MAX_DIMS] = {0}, off = base;
        double acc = 0;
        for (int64_t c = 0; c < cnt; c++) { /* odometer over the summed axes */
            acc += dy[off];
            for (int k = nr - 1; k >= 0; k--) {
                off += rs[k];
                if (++idx[k] < rd[k]) break;
                off -= rs[k] * rd[k];
                idx[k] = 0;
            }
        }
        dx[i] += (float)acc;
    }
    return GB_OK;
}

const gb__op gb__op_Expand = {.name = "Expand", .init = expand_init, .infer = expand_infer,
                              .forward = expand_forward, .backward = expand_backward, .const_inputs = 1u << 1};

/* ---- Slice -------------------------------------------------------------------- */
/*
 * For each listed axis (default: the first len(starts) axes), with d its
 * size: negative start/end get d added; then for step > 0 both clamp to
 * [0, d], for step < 0 start clamps to [0, d-1] and end to [-1, d-1]. The
 * output has max(0, ceil((end - start) / step)) elements along the axis.
 * INT64_MAX / INT64_MIN ends ("slice to the end") fall out of the clamping.
 */
typedef struct {
    int n;                        /* opset < 10: attribute count */
    int64_t starts[GB_MAX_DIMS], ends[GB_MAX_DIMS], axes[GB_MAX_DIMS];
    int n_axes;
} slice_params;

static gb_status slice_init(gb_ctx *ctx, gb__node *n) {
    bool attrs = n->opset < 10;
    gb_status st = gb__check_arity(ctx, n, attrs ? 1 : 3, attrs ? 1 : 5, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(slice_params)))) return st;
    slice_params *p = n->params;
    if (!attrs) return GB_OK;
    int ns = gb__attr_ints(n, "starts", p->starts, GB_MAX_DIMS);
    int ne = gb__attr_ints(n, "ends", p->ends, GB_MAX_DIMS);
    p->n_axes = gb__attr_ints(n, "axes", p->axes, GB_MAX_DIMS);
    if (ns < 0 || ne < 0)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'starts' or 'ends' attribute", n->name, n->op_type);
    if (ns != ne || (p->n_axes >= 0 && p->n_axes != ns) || ns > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): starts, ends and axes must have the same length (at most %d)",
                       n->name, n->op_type, GB_MAX_DIMS);
    p->n = ns;
    return GB_OK;
}

/* Per input axis: first index, step and output size. */
static gb_status slice_plan(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, int64_t *start,
                            int64_t *step, int64_t *odims) {
    const slice_params *p = n->params;
    const gb_tensor *x = in[0];
    int64_t starts[GB_MAX_DIMS], ends[GB_MAX_DIMS], axes[GB_MAX_DIMS], steps[GB_MAX_DIMS];
    int ns, na, nst = -1;
    if (n->opset < 10) {
        ns = p->n;
        na = p->n_axes;
        memcpy(starts, p->starts, sizeof starts);
        memcpy(ends, p->ends, sizeof ends);
        memcpy(axes, p->axes, sizeof axes);
    } else {
        int ne;
        gb_status st;
        if ((st = gb__const_ints(ctx, n, in, 1, "starts", starts, GB_MAX_DIMS, &ns))) return st;
        if ((st = gb__const_ints(ctx, n, in, 2, "ends", ends, GB_MAX_DIMS, &ne))) return st;
        if ((st = gb__const_ints(ctx, n, in, 3, "axes", axes, GB_MAX_DIMS, &na))) return st;
        if ((st = gb__const_ints(ctx, n, in, 4, "steps", steps, GB_MAX_DIMS, &nst))) return st;
        if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): starts, ends, axes and steps must have the same length",
                           n->name, n->op_type);
    }
    for (int i = 0; i < x->ndim; i++) start[i] = 0, step[i] = 1, odims[i] = x->dims[i];
    bool seen[GB_MAX_DIMS] = {false};
    for (int k = 0; k < ns; k++) {
        int a = gb__axis(na >= 0 ? axes[k] : k, x->ndim);
        if (a < 0 || seen[a])
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range or repeated for a rank-%d input",
                           n->name, n->op_type, (long long)(na >= 0 ? axes[k] : k), x->ndim);
        seen[a] = true;
        int64_t d = x->dims[a], s = starts[k], e = ends[k], t = nst >= 0 ? steps[k] : 1;
        if (t == 0) return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): step 0 on axis %d", n->name, n->op_type, a);
        /* A step of |t| >= d takes at most one element, so clamping it to d
         * changes nothing but keeps -t and t * stride from overflowing. */
        if (t > d) t = d > 0 ? d : 1;
        if (t < -d) t = d > 0 ? -d : -1;
        if (s < 0) s += d;
        if (e < 0) e += d;
        int64_t cnt;
        if (t > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            cnt = e > s ? (e - s + t - 1) / t : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            cnt = s > e ? (s - e + (-t) - 1) / (-t) : 0;
        }
        start[a] = s, step[a] = t, odims[a] = cnt;
    }
    return GB_OK;
}

static gb_status slice_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                             size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, n->opset < 10 ? 1 : 3)) return GB_ERR_FORMAT;
    gb_status st = gb__check_f32_i64(ctx, n, in[0], "input");
    if (st) return st;
    int64_t start[GB_MAX_DIMS], step[GB_MAX_DIMS], dims[GB_MAX_DIMS];
    if ((st = slice_plan(ctx, n, in, start, step, dims))) return st;
    gb__set_shape(out[0], in[0]->dtype, in[0]->ndim, dims);
    return GB_OK;
}

static gb_status slice_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                               const gb__exec *ex) {
    const gb_tensor *x = in[0];
    int64_t start[GB_MAX_DIMS], step[GB_MAX_DIMS], dims[GB_MAX_DIMS], xst[GB_MAX_DIMS], st[GB_MAX_DIMS];
    /* Infer already validated the same constant inputs, so this cannot fail. */
    if (slice_plan(NULL, n, (gb_tensor *const *)in, start, step, dims)) return GB_ERR_INTERNAL;
    gb__strides(x->ndim, x->dims, xst);
    int64_t base = 0;
    for (int i = 0; i < x->ndim; i++) {
        base += start[i] * xst[i];
        st[i] = step[i] * xst[i];
    }
    strided_copy(out[0]->data, x->data, gb_dtype_size(x->dtype), x->ndim, dims, st, base, ex->n_threads);
    return GB_OK;
}

/*
 * y[o] = x[start + o * step] per axis  =>  dx[start + o * step] += dy[o]; the
 * rest of dx gets nothing. Negative steps are negative strides; the map is
 * injective, so rows scatter in parallel.
 */
static gb_status slice_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                                const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    if (!wants_dx(in, dout, din)) return GB_OK;
    const gb_tensor *x = in[0];
    int64_t start[GB_MAX_DIMS], step[GB_MAX_DIMS], dims[GB_MAX_DIMS], xst[GB_MAX_DIMS], st[GB_MAX_DIMS];
    if (slice_plan(NULL, n, (gb_tensor *const *)in, start, step, dims)) return GB_ERR_INTERNAL;
    gb__strides(x->ndim, x->dims, xst);
    int64_t base = 0;
    for (int i = 0; i < x->ndim; i++) {
        base += start[i] * xst[i];
        st[i] = step[i] * xst[i];
    }
    strided_scatter_add(GB_F32(din[0]), GB_CF32(dout[0]), x->ndim, dims, st, base, ex->n_threads);
    return GB_OK;
}

const gb__op gb__op_Slice = {.name = "Slice", .init = slice_init, .infer = slice_infer,
                             .forward = slice_forward, .backward = slice_backward,
                             .const_inputs = 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4};

/* ---- Gather ------------------------------------------------------------------- */
/*
 * out = data[:axis] ++ indices.shape ++ data[axis+1:], picking along `axis`
 * (default 0); index i < 0 means i + d. Scalar indices remove the axis.
 * Out-of-range indices are checked at plan time when the indices are
 * constant, otherwise in forward (GB_ERR_ARG).
 */
typedef struct {
    int64_t axis;
} gather_params;

static gb_status gather_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 2, 2, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(gather_params)))) return st;
    ((gather_params *)n->params)->axis = gb__attr_int(n, "axis", 0);
    return GB_OK;
}

/* Index of the first out-of-range entry, or -1. */
static int64_t gather_bad_index(const gb_tensor *idx, int64_t d) {
    const int64_t *v = GB_CI64(idx);
    for (int64_t k = 0; k < idx->numel; k++)
        if (v[k] < -d || v[k] >= d) return k;
    return -1;
}

static gb_status gather_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                              size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 2)) return GB_ERR_FORMAT;
    const gb_tensor *x = in[0], *idx = in[1];
    gb_status st = gb__check_f32_i64(ctx, n, x, "data");
    if (st) return st;
    if (idx->dtype != GB_DTYPE_I64)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): indices must be int64, got %s", n->name, n->op_type,
                       gb_dtype_name(idx->dtype));
    char xs[128];
    gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
    int64_t axis_attr = ((const gather_params *)n->params)->axis;
    int a = gb__axis(axis_attr, x->ndim);
    if (a < 0)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for data %s", n->name, n->op_type,
                       (long long)axis_attr, xs);
    int nd = x->ndim - 1 + idx->ndim;
    if (nd > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): output would have %d dimensions (at most %d)", n->name,
                       n->op_type, nd, GB_MAX_DIMS);
    if (idx->data) {
        int64_t bad = gather_bad_index(idx, x->dims[a]);
        if (bad >= 0)
            return gb__err(ctx, GB_ERR_ARG, "%s (%s): index %lld out of range for axis %d of data %s", n->name,
                           n->op_type, (long long)GB_CI64(idx)[bad], a, xs);
    }
    int64_t dims[GB_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < a; i++) dims[k++] = x->dims[i];
    for (int i = 0; i < idx->ndim; i++) dims[k++] = idx->dims[i];
    for (int i = a + 1; i < x->ndim; i++) dims[k++] = x->dims[i];
    if ((st = gb__check_size(ctx, n, nd, dims))) return st;
    gb__set_shape(out[0], x->dtype, nd, dims);
    return GB_OK;
}

static gb_status gather_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                                const gb__exec *ex) {
    const gb_tensor *x = in[0], *idx = in[1];
    int a = gb__axis(((const gather_params *)n->params)->axis, x->ndim);
    int64_t d = x->dims[a];
    if (gather_bad_index(idx, d) >= 0) return GB_ERR_ARG;
    size_t es = gb_dtype_size(x->dtype);
    int64_t outer = gb__numel(a, x->dims), inner = gb__numel(x->ndim - a - 1, x->dims + a + 1);
    int64_t ni = idx->numel;
    size_t row = (size_t)inner * es;
    const int64_t *iv = GB_CI64(idx);
    const char *src = x->data;
    char *dst = out[0]->data;
#pragma omp parallel for num_threads(ex->n_threads) if (outer * ni * inner > GB_PAR_MIN)
    for (int64_t t = 0; t < outer * ni; t++) {
        int64_t o = t / ni, k = t % ni;
        int64_t i = iv[k] < 0 ? iv[k] + d : iv[k];
        memcpy(dst + (size_t)t * row, src + (size_t)(o * d + i) * row, row);
    }
    return GB_OK;
}

/*
 * y[o, k, j] = x[o, idx[k], j]  =>  dx[o, idx[k], j] += dy[o, k, j], a
 * scatter-ADD: an index listed twice collects both gradients (an embedding
 * row used twice). Threads split the (outer, inner) plane into disjoint
 * column blocks and each walks k in order, so repeated indices never race
 * and the sum order is fixed.
 */
#define GATHER_COLS 256
static gb_status gather_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                                 const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    if (!wants_dx(in, dout, din)) return GB_OK;
    const gb_tensor *x = in[0], *idx = in[1];
    int a = gb__axis(((const gather_params *)n->params)->axis, x->ndim);
    int64_t d = x->dims[a];
    if (gather_bad_index(idx, d) >= 0) return GB_ERR_ARG;
    int64_t outer = gb__numel(a, x->dims), inner = gb__numel(x->ndim - a - 1, x->dims + a + 1);
    int64_t ni = idx->numel, nblk = (inner + GATHER_COLS - 1) / GATHER_COLS;
    const int64_t *iv = GB_CI64(idx);
    const float *dy = GB_CF32(dout[0]);
    float *dx = GB_F32(din[0]);
#pragma omp parallel for num_threads(ex->n_threads) if (outer * ni * inner > GB_PAR_MIN)
    for (int64_t t = 0; t < outer * nblk; t++) {
        int64_t o = t / nblk, j0 = (t % nblk) * GATHER_COLS;
        int64_t j1 = j0 + GATHER_COLS < inner ? j0 + GATHER_COLS : inner;
        for (int64_t k = 0; k < ni; k++) {
            int64_t i = iv[k] < 0 ? iv[k] + d : iv[k];
            float *xr = dx + (o * d + i) * inner;
            const float *yr = dy + (o * ni + k) * inner;
            for (int64_t j = j0; j < j1; j++) xr[j] += yr[j];
        }
    }
    return GB_OK;
}

const gb__op gb__op_Gather = {.name = "Gather", .init = gather_init, .infer = gather_infer,
                              .forward = gather_forward, .backward = gather_backward};

/* ---- Concat ------------------------------------------------------------------- */
/* Joins inputs of equal rank and type along `axis`; other dimensions must match. */
typedef struct {
    int64_t axis;
} concat_params;

static gb_status concat_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, n->n_in, 1, 1);
    if (st) return st;
    if (n->opset >= 4 && !gb__attr_find(n, "axis"))
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'axis' attribute", n->name, n->op_type);
    if ((st = alloc_params(ctx, n, sizeof(concat_params)))) return st;
    ((concat_params *)n->params)->axis = gb__attr_int(n, "axis", 1);
    return GB_OK;
}

static gb_status concat_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                              size_t *ws, double *flops) {
    const gb_tensor *x0 = NULL;
    int64_t dims[GB_MAX_DIMS];
    int a = -1;
    char s0[128], si[128];
    for (int j = 0; j < n->n_in; j++) {
        const gb_tensor *x = in[j];
        if (!gb__has_input(n, in, j))
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): input %d is missing", n->name, n->op_type, j);
        gb_status st = gb__check_f32_i64(ctx, n, x, "input");
        if (st) return st;
        if (!x0) {
            x0 = x;
            int64_t axis = ((const concat_params *)n->params)->axis;
            a = gb__axis(axis, x->ndim);
            gb_shape_str(x->ndim, x->dims, s0, sizeof s0);
            if (a < 0)
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for input %s", n->name,
                               n->op_type, (long long)axis, s0);
            memcpy(dims, x->dims, sizeof dims);
            continue;
        }
        gb_shape_str(x->ndim, x->dims, si, sizeof si);
        if (x->dtype != x0->dtype)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %d is %s, input 0 is %s", n->name, n->op_type, j,
                           gb_dtype_name(x->dtype), gb_dtype_name(x0->dtype));
        bool ok = x->ndim == x0->ndim;
        for (int i = 0; ok && i < x->ndim; i++) ok = i == a || x->dims[i] == x0->dims[i];
        if (!ok)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): cannot concatenate %s and %s (input %d) along axis %d",
                           n->name, n->op_type, s0, si, j, a);
        dims[a] += x->dims[a];
    }
    gb_status st = gb__check_size(ctx, n, x0->ndim, dims);
    if (st) return st;
    gb__set_shape(out[0], x0->dtype, x0->ndim, dims);
    return GB_OK;
}

static gb_status concat_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                                const gb__exec *ex) {
    gb_tensor *y = out[0];
    int a = gb__axis(((const concat_params *)n->params)->axis, y->ndim);
    size_t es = gb_dtype_size(y->dtype);
    int64_t outer = gb__numel(a, y->dims), inner = gb__numel(y->ndim - a - 1, y->dims + a + 1);
    int64_t yrow = y->dims[a] * inner; /* elements of y per outer index */
    int64_t off = 0;                   /* where input j starts inside a y row */
    for (int j = 0; j < n->n_in; j++) {
        const gb_tensor *x = in[j];
        int64_t xrow = x->dims[a] * inner;
        const char *src = x->data;
        char *dst = y->data;
#pragma omp parallel for num_threads(ex->n_threads) if (outer * xrow > GB_PAR_MIN)
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + (size_t)(o * yrow + off) * es, src + (size_t)(o * xrow) * es, (size_t)xrow * es);
        off += xrow;
    }
    return GB_OK;
}

/* dx_j = the slab of dy that input j was copied to. */
static gb_status concat_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                                 const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    const gb_tensor *y = out[0];
    if (!dout[0] || y->dtype != GB_DTYPE_F32) return GB_OK;
    int a = gb__axis(((const concat_params *)n->params)->axis, y->ndim);
    int64_t outer = gb__numel(a, y->dims), inner = gb__numel(y->ndim - a - 1, y->dims + a + 1);
    int64_t yrow = y->dims[a] * inner, off = 0;
    const float *dy = GB_CF32(dout[0]);
    for (int j = 0; j < n->n_in; j++) {
        int64_t xrow = in[j]->dims[a] * inner;
        if (din[j] && xrow) {
            float *dx = GB_F32(din[j]);
#pragma omp parallel for num_threads(ex->n_threads) if (outer * xrow > GB_PAR_MIN)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t t = 0; t < xrow; t++) dx[o * xrow + t] += dy[o * yrow + off + t];
        }
        off += xrow;
    }
    return GB_OK;
}

const gb__op gb__op_Concat = {.name = "Concat", .init = concat_init, .infer = concat_infer,
                              .forward = concat_forward, .backward = concat_backward};

/* ---- Split -------------------------------------------------------------------- */
/*
 * Splits along `axis` (default 0) into n_out parts of the sizes in 'split'
 * (attribute before opset 13, input from 13; opset 1 accepted either), which
 * must sum to the axis size; without it, into equal parts (the axis size
 * must divide evenly). Zero-size parts are allowed.
 */
#define SPLIT_MAX 64
typedef struct {
    int64_t axis;
    int n_split;                 /* attribute form; -1 if absent */
    int64_t split[SPLIT_MAX];
} split_params;

static gb_status split_init(gb_ctx *ctx, gb__node *n) {
    bool input_ok = n->opset >= 13 || n->opset == 1;
    gb_status st = gb__check_arity(ctx, n, 1, input_ok ? 2 : 1, 1, SPLIT_MAX);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(split_params)))) return st;
    split_params *p = n->params;
    p->axis = gb__attr_int(n, "axis", 0);
    p->n_split = n->opset < 13 ? gb__attr_ints(n, "split", p->split, SPLIT_MAX) : -1;
    if (p->n_split >= 0 && p->n_split != n->n_out)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): 'split' has %d entries for %d outputs", n->name, n->op_type,
                       p->n_split, n->n_out);
    if (gb__attr_find(n, "num_outputs"))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): attribute 'num_outputs' (opset 18) is not supported",
                       n->name, n->op_type);
    return GB_OK;
}

static gb_status split_sizes(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, int a, int64_t *sizes) {
    const split_params *p = n->params;
    const gb_tensor *x = in[0];
    int ns = p->n_split;
    if (ns >= 0) {
        memcpy(sizes, p->split, sizeof p->split);
    } else {
        gb_status st = gb__const_ints(ctx, n, in, 1, "split", sizes, SPLIT_MAX, &ns);
        if (st) return st;
    }
    char xs[128];
    gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
    int64_t d = x->dims[a];
    if (ns < 0) {
        if (d % n->n_out)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %d of input %s does not split into %d equal parts",
                           n->name, n->op_type, a, xs, n->n_out);
        for (int k = 0; k < n->n_out; k++) sizes[k] = d / n->n_out;
        return GB_OK;
    }
    if (ns != n->n_out)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): 'split' has %d entries for %d outputs", n->name, n->op_type, ns,
                       n->n_out);
    int64_t sum = 0;
    for (int k = 0; k < ns; k++) {
        if (sizes[k] < 0 || sizes[k] > d)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): split size %lld out of range for axis %d of input %s",
                           n->name, n->op_type, (long long)sizes[k], a, xs);
        sum += sizes[k];
    }
    if (sum != d)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): split sizes sum to %lld but axis %d of input %s has %lld",
                       n->name, n->op_type, (long long)sum, a, xs, (long long)d);
    return GB_OK;
}

static gb_status split_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                             size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const gb_tensor *x = in[0];
    gb_status st = gb__check_f32_i64(ctx, n, x, "input");
    if (st) return st;
    int64_t axis = ((const split_params *)n->params)->axis;
    int a = gb__axis(axis, x->ndim);
    if (a < 0)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for a rank-%d input", n->name,
                       n->op_type, (long long)axis, x->ndim);
    int64_t sizes[SPLIT_MAX];
    if ((st = split_sizes(ctx, n, in, a, sizes))) return st;
    for (int k = 0; k < n->n_out; k++) {
        if (!out[k]) continue;
        int64_t dims[GB_MAX_DIMS];
        memcpy(dims, x->dims, sizeof dims);
        dims[a] = sizes[k];
        gb__set_shape(out[k], x->dtype, x->ndim, dims);
    }
    return GB_OK;
}

static gb_status split_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                               const gb__exec *ex) {
    const gb_tensor *x = in[0];
    int a = gb__axis(((const split_params *)n->params)->axis, x->ndim);
    size_t es = gb_dtype_size(x->dtype);
    int64_t outer = gb__numel(a, x->dims), inner = gb__numel(x->ndim - a - 1, x->dims + a + 1);
    int64_t sizes[SPLIT_MAX];
    /* Infer already validated the sizes, so this cannot fail. */
    if (split_sizes(NULL, n, (gb_tensor *const *)in, a, sizes)) return GB_ERR_INTERNAL;
    int64_t xrow = x->dims[a] * inner, off = 0;
    for (int k = 0; k < n->n_out; k++) {
        int64_t yrow = sizes[k] * inner;
        /* An omitted output still takes its part of the axis. */
        if (n->out[k] >= 0 && out[k] && yrow) {
            const char *src = x->data;
            char *dst = out[k]->data;
#pragma omp parallel for num_threads(ex->n_threads) if (outer * yrow > GB_PAR_MIN)
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)(o * yrow) * es, src + (size_t)(o * xrow + off) * es, (size_t)yrow * es);
        }
        off += yrow;
    }
    return GB_OK;
}

/* Concat's transpose: part k's gradient goes back to its slab of dx;
 * parts without a gradient (or omitted outputs) add nothing. */
static gb_status split_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                                const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    const gb_tensor *x = in[0];
    if (!din[0] || x->dtype != GB_DTYPE_F32) return GB_OK;
    int a = gb__axis(((const split_params *)n->params)->axis, x->ndim);
    int64_t outer = gb__numel(a, x->dims), inner = gb__numel(x->ndim - a - 1, x->dims + a + 1);
    int64_t sizes[SPLIT_MAX];
    if (split_sizes(NULL, n, (gb_tensor *const *)in, a, sizes)) return GB_ERR_INTERNAL;
    int64_t xrow = x->dims[a] * inner, off = 0;
    float *dx = GB_F32(din[0]);
    for (int k = 0; k < n->n_out; k++) {
        int64_t yrow = sizes[k] * inner;
        if (n->out[k] >= 0 && dout[k] && yrow) {
            const float *dy = GB_CF32(dout[k]);
#pragma omp parallel for num_threads(ex->n_threads) if (outer * yrow > GB_PAR_MIN)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t t = 0; t < yrow; t++) dx[o * xrow + off + t] += dy[o * yrow + t];
        }
        off += yrow;
    }
    return GB_OK;
}

const gb__op gb__op_Split = {.name = "Split", .init = split_init, .infer = split_infer,
                             .forward = split_forward, .backward = split_backward, .const_inputs = 1u << 1};

/* ---- Pad ---------------------------------------------------------------------- */
/*
 * pads = [x1_begin, x2_begin, ..., x1_end, x2_end] (for the listed axes in
 * opset 18, else all); output dim = d + begin + end, and negative pads crop.
 * Output index o along an axis reads input index i = o - begin, mapped for
 * i outside [0, d):
 *   constant: the constant value;
 *   edge:     clamp to [0, d-1];
 *   reflect:  mirror without repeating the edge (numpy 'reflect'), which
 *             for pads wider than d-1 is periodic with period 2(d-1).
 */
enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

typedef struct {
    int mode;
    int n_pads;                  /* attribute form (opset < 11); -1 otherwise */
    int64_t pads[2 * GB_MAX_DIMS];
    float value;                 /* attribute form */
} pad_params;

static gb_status pad_init(gb_ctx *ctx, gb__node *n) {
    bool attrs = n->opset < 11;
    gb_status st = gb__check_arity(ctx, n, attrs ? 1 : 2, attrs ? 1 : 4, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(pad_params)))) return st;
    pad_params *p = n->params;
    const char *mode = gb__attr_str(n, "mode", "constant");
    if (strcmp(mode, "constant") == 0) p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0) p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0) p->mode = PAD_EDGE;
    else
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): mode '%s' is not supported (constant, reflect, edge)",
                       n->name, n->op_type, mode);
    p->n_pads = -1;
    if (attrs) {
        p->n_pads = gb__attr_ints(n, n->opset < 2 ? "paddings" : "pads", p->pads, 2 * GB_MAX_DIMS);
        if (p->n_pads < 0)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'pads' attribute", n->name, n->op_type);
        p->value = gb__attr_float(n, "value", 0.0f);
    }
    return GB_OK;
}

/*
 * Output dims and per-axis begin pads; *value the constant fill. The fill
 * value does not affect shapes, so a 'constant_value' input need only be
 * known at run time: pass value == NULL in infer (it is then only checked).
 */
static gb_status pad_plan(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, int64_t *begin,
                          int64_t *odims, double *value) {
    const pad_params *p = n->params;
    const gb_tensor *x = in[0];
    int r = x->ndim;
    int64_t pads[2 * GB_MAX_DIMS], axes[GB_MAX_DIMS];
    int np = p->n_pads, na = -1;
    if (value) *value = p->value;
    if (np >= 0) {
        memcpy(pads, p->pads, sizeof pads);
    } else {
        gb_status st;
        if ((st = gb__const_ints(ctx, n, in, 1, "pads", pads, 2 * GB_MAX_DIMS, &np))) return st;
        if ((st = gb__const_ints(ctx, n, in, 3, "axes", axes, GB_MAX_DIMS, &na))) return st;
        if (gb__has_input(n, in, 2)) {
            const gb_tensor *v = in[2];
            if (v->dtype != x->dtype || v->numel != 1)
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): 'constant_value' must be one %s element", n->name,
                               n->op_type, gb_dtype_name(x->dtype));
            if (value) *value = gb__value_at(v, 0);
        }
    }
    int nax = na >= 0 ? na : r;
    if (np != 2 * nax)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): %d pads for %d axes (need %d)", n->name, n->op_type, np, nax,
                       2 * nax);
    for (int i = 0; i < r; i++) begin[i] = 0, odims[i] = x->dims[i];
    char xs[128];
    gb_shape_str(r, x->dims, xs, sizeof xs);
    for (int k = 0; k < nax; k++) {
        int a = na >= 0 ? gb__axis(axes[k], r) : k;
        if (a < 0)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for input %s", n->name, n->op_type,
                           (long long)axes[k], xs);
        if (pads[k] < -GB_MAX_NUMEL || pads[k] > GB_MAX_NUMEL || pads[k + nax] < -GB_MAX_NUMEL ||
            pads[k + nax] > GB_MAX_NUMEL)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): pads of axis %d out of range", n->name, n->op_type, a);
        begin[a] = pads[k];
        odims[a] = x->dims[a] + pads[k] + pads[k + nax];
        if (odims[a] < 0)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): pads crop axis %d of input %s below zero", n->name,
                           n->op_type, a, xs);
        if (p->mode != PAD_CONSTANT && x->dims[a] == 0 && odims[a] > 0)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): cannot %s-pad the empty axis %d of input %s", n->name,
                           n->op_type, p->mode == PAD_EDGE ? "edge" : "reflect", a, xs);
    }
    return gb__check_size(ctx, n, r, odims);
}

static gb_status pad_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                           size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, n->opset < 11 ? 1 : 2)) return GB_ERR_FORMAT;
    gb_status st = gb__check_f32_i64(ctx, n, in[0], "input");
    if (st) return st;
    int64_t begin[GB_MAX_DIMS], dims[GB_MAX_DIMS];
    if ((st = pad_plan(ctx, n, in, begin, dims, NULL))) return st;
    gb__set_shape(out[0], in[0]->dtype, in[0]->ndim, dims);
    return GB_OK;
}

/* Input index for output index o along an axis of size d, or -1 (fill). */
static inline int64_t pad_map(int64_t o, int64_t begin, int64_t d, int mode) {
    int64_t i = o - begin;
    if (i >= 0 && i < d) return i;
    if (mode == PAD_CONSTANT) return -1;
    if (mode == PAD_EDGE || d == 1) return i < 0 ? 0 : d - 1;
    int64_t period = 2 * (d - 1);
    i %= period;
    if (i < 0) i += period;
    return i < d ? i : period - i;
}

static gb_status pad_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                             const gb__exec *ex) {
    const gb_tensor *x = in[0];
    gb_tensor *y = out[0];
    int mode = ((const pad_params *)n->params)->mode;
    int64_t begin[GB_MAX_DIMS], dims[GB_MAX_DIMS], xst[GB_MAX_DIMS];
    double value;
    if (pad_plan(NULL, n, (gb_tensor *const *)in, begin, dims, &value)) return GB_ERR_INTERNAL;
    if (y->numel == 0) return GB_OK;
    if (y->ndim == 0) {
        memcpy(y->data, x->data, gb_dtype_size(x->dtype));
        return GB_OK;
    }
    int r = y->ndim;
    gb__strides(r, x->dims, xst);
    int64_t inner = y->dims[r - 1], rows = y->numel / inner, d = x->dims[r - 1], b = begin[r - 1];
    bool f32 = x->dtype == GB_DTYPE_F32;
    float vf = (float)value;
    int64_t vi = (int64_t)value;
#pragma omp parallel for num_threads(ex->n_threads) if (y->numel > GB_PAR_MIN)
    for (int64_t row = 0; row < rows; row++) {
        /* Input offset of this output row, or fill if an outer index maps outside. */
        int64_t off = 0, rem = row;
        bool fill = false;
        for (int k = r - 2; k >= 0; k--) {
            int64_t o = rem % y->dims[k];
            rem /= y->dims[k];
            int64_t i = pad_map(o, begin[k], x->dims[k], mode);
            if (i < 0) fill = true;
            else off += i * xst[k];
        }
        for (int64_t j = 0; j < inner; j++) {
            int64_t i = fill ? -1 : pad_map(j, b, d, mode);
            if (f32) GB_F32(y)[row * inner + j] = i < 0 ? vf : GB_CF32(x)[off + i];
            else GB_I64(y)[row * inner + j] = i < 0 ? vi : GB_CI64(x)[off + i];
        }
    }
    return GB_OK;
}

/*
 * y[o] = x[map(o)] or the fill value  =>  dx[map(o)] += dy[o] for every o
 * that reads x. constant: a crop of dy (negative pads: zero-padded dy);
 * edge and reflect: an x element read by several outputs (an edge
 * replicated, a mirrored border) collects all of them — exactly PyTorch's
 * replication_pad / reflection_pad backward. With a 'constant_value' input
 * (opset 11+) that needs a gradient: d value = sum of dy over the filled
 * positions.
 *
 * Threads: the leading axes that are not padded map output rows to input
 * rows one to one (N and C of an (N, C, H, W) pad), so each thread takes
 * whole blocks of them and no two threads write the same dx element.
 */
static gb_status pad_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                              const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    const gb_tensor *x = in[0], *y = out[0];
    if (!dout[0] || x->dtype != GB_DTYPE_F32 || y->numel == 0) return GB_OK;
    int mode = ((const pad_params *)n->params)->mode;
    float *dx = din[0] ? GB_F32(din[0]) : NULL;
    float *dv = n->opset >= 11 && n->n_in > 2 && din[2] && mode == PAD_CONSTANT ? GB_F32(din[2]) : NULL;
    if (!dx && !dv) return GB_OK;
    const float *dy = GB_CF32(dout[0]);
    if (y->ndim == 0) {
        if (dx) dx[0] += dy[0];
        return GB_OK;
    }
    int64_t begin[GB_MAX_DIMS], dims[GB_MAX_DIMS], xst[GB_MAX_DIMS];
    if (pad_plan(NULL, n, (gb_tensor *const *)in, begin, dims, NULL)) return GB_ERR_INTERNAL;
    int r = y->ndim;
    gb__strides(r, x->dims, xst);
    int64_t inner = y->dims[r - 1], rows = y->numel / inner, d = x->dims[r - 1], b = begin[r - 1];
    int lead = 0; /* leading axes (excluding the last) that are not padded */
    while (lead < r - 1 && begin[lead] == 0 && y->dims[lead] == x->dims[lead]) lead++;
    int64_t nblk = gb__numel(lead, y->dims), per = rows / nblk;
    double vsum = 0;
#pragma omp parallel for num_threads(ex->n_threads) if (y->numel > GB_PAR_MIN && !dv)
    for (int64_t blk = 0; blk < nblk; blk++) {
        for (int64_t row = blk * per; row < (blk + 1) * per; row++) {
            int64_t off = 0, rem = row;
            bool fill = false;
            for (int k = r - 2; k >= 0; k--) {
                int64_t o = rem % y->dims[k];
                rem /= y->dims[k];
                int64_t i = pad_map(o, begin[k], x->dims[k], mode);
                if (i < 0) fill = true;
                else off += i * xst[k];
            }
            const float *g = dy + row * inner;
            for (int64_t j = 0; j < inner; j++) {
                int64_t i = fill ? -1 : pad_map(j, b, d, mode);
                if (i >= 0) {
                    if (dx) dx[off + i] += g[j];
                } else if (dv) {
                    vsum += g[j]; /* the loop is serial when dv is asked for */
                }
            }
        }
    }
    if (dv) dv[0] += (float)vsum;
    return GB_OK;
}

/* pads (1) and axes (3) set the shape; constant_value (2) stays a run-time
 * float (with a gradient). */
const gb__op gb__op_Pad = {.name = "Pad", .init = pad_init, .infer = pad_infer, .forward = pad_forward,
                           .backward = pad_backward, .const_inputs = 1u << 1 | 1u << 3};

/* ---- table ------------------------------------------------------------------------ */

const gb__op *const gb__ops_index[] = {
    &gb__op_Transpose, &gb__op_Expand, &gb__op_Slice, &gb__op_Gather, &gb__op_Concat,
    &gb__op_Split,     &gb__op_Pad,    NULL,
};
