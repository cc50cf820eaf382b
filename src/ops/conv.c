/*
 * conv.c — Conv and ConvTranspose (ONNX default domain, opsets 1 and 11;
 * 1-, 2- and 3-D spatial), forward and backward.
 *
 * Conv:  X (N, C_in, *in) and W (C_out, C_in/group, *k), optional B (C_out)
 *        -> Y (N, C_out, *out) with
 *        Y[n, oc, o] = B[oc] + sum_{ic in group(oc), t} X[n, ic, o*s + t*d - pad_begin] * W[oc, ic', t]
 *        where positions outside the input read as zero.
 * ConvTranspose: X (N, C_in, *in), W (C_in, C_out/group, *k), optional B (C_out)
 *        -> Y (N, C_out, *out): every input pixel i scatters X[n, ic, i] * W[ic, oc', t]
 *        to output position i*s + t*d - pad_begin (the adjoint of Conv).
 *
 * ONNX subtleties handled here:
 *  - kernel_shape may be absent: it is taken from W's spatial dims (if present
 *    it must agree with W). strides/dilations default to 1, pads to 0.
 *  - pads are [x1_begin, x2_begin, ..., x1_end, x2_end, ...]; asymmetric pads
 *    are supported. pads are ignored when auto_pad is not NOTSET.
 *  - Conv auto_pad SAME_UPPER / SAME_LOWER (opset 11 wording, which is what
 *    every runtime also does for opset 1): out = ceil(in / stride), total pad =
 *    max(0, (out - 1) * stride + (k - 1) * dilation + 1 - in), the odd pixel
 *    going at the end for SAME_UPPER and at the beginning for SAME_LOWER.
 *    VALID: no padding, out = floor((in - dk) / stride) + 1.
 *  - ConvTranspose: out = stride * (in - 1) + output_padding + (k - 1) * dilation
 *    + 1 - pad_begin - pad_end. With auto_pad SAME_*, out = in * stride and the
 *    total padding (full size minus out) is split with the odd pixel at the end
 *    for SAME_UPPER and at the beginning for SAME_LOWER. This is what the ONNX
 *    1.12 backend data (test_convtranspose_autopad_same, opset 11) expects; the
 *    opset-1 and opset-11 docs state the split in opposite ways.
 *  - ConvTranspose output_shape (spatial dims, or N, C and spatial dims): pads
 *    are then derived from total = full - output_shape, split as above (NOTSET:
 *    odd pixel at the end, as onnxruntime does). A negative total (output_shape
 *    larger than the full result) is clamped to 0: the extra output positions
 *    at the end receive no contribution and hold only the bias.
 *  - group: C_in and C_out are split into `group` equal parts; group == C_in
 *    with C_out a multiple of C_in is the depthwise case (direct loop below,
 *    for kernel widths up to 16).
 *
 * Kernels. Conv uses im2col + SGEMM per (batch item, group) over tiles of
 * output rows (so the column buffer stays a few MB even for 224x224 inputs);
 * 1x1 stride-1 unpadded convs run SGEMM directly on the input; for N > 1 with
 * a small output plane several batch items are laid side by side in one
 * column buffer and multiplied by one larger GEMM; depthwise convs use a
 * direct loop parallel over channels.
 *
 * Backward (vector-Jacobian products, accumulated into din):
 *  - Conv dX = col2im(W_g^T dY_g) per group, over the same tiles as forward
 *    (col2im parallel over input channels: race-free); 1x1 stride 1: one
 *    GEMM into dX with beta = 1; depthwise: a direct loop over (n, c).
 *  - Conv dW += dY_g im2col(X_g)^T (GEMM, beta = 1); dB += sum of dY over N
 *    and positions. Only computed when din[1] / din[2] are non-NULL.
 *  - ConvTranspose is the adjoint of the Conv taking ConvTranspose's output
 *    as its input (swap_geom), with the same W layout. So ConvTranspose's
 *    forward is that Conv's dX kernel (tiled col2im), its dX is that Conv's
 *    forward, and its dW is that Conv's dW with the roles of X and dY swapped.
 * One plan (plan_conv) serves forward and both gradients, so backward needs
 * no more workspace than forward. im2col / col2im / depthwise loops are
 * parallel with OpenMP; SGEMM is never called inside a parallel region
 * (OpenBLAS's OpenMP build shares the thread pool).
 */
#include "ops/conv_dnnl.h"
#include "ops/util.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CONV_MAX_SP 3 /* spatial dims supported (Conv1d .. Conv3d) */

/* Tiling and batching knobs (columns of the GEMM's B matrix), chosen by
 * measurement on a 2-core Zen3 with OpenBLAS 0.3.21 (single-thread CPU time,
 * ResNet/VGG shapes): 1024-column tiles keep the column buffer in L2/L3 and
 * beat whole-plane im2col by ~3% (56x56) to ~13% (224x224); ganging batch
 * items helps 7x7 planes (~15%) but not 14x14 or larger, where the extra
 * scatter copy costs more than the wider GEMM gains. */
#ifndef CONV_TILE_COLS
#define CONV_TILE_COLS 1024 /* output positions per im2col tile */
#endif
#ifndef CONV_BATCH_PLANE
#define CONV_BATCH_PLANE 128 /* below this output plane size, batch items... */
#endif
#ifndef CONV_BATCH_COLS
#define CONV_BATCH_COLS 1024 /* ...up to about this many GEMM columns */
#endif

typedef enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID } conv_autopad;

typedef struct {
    bool transpose;
    int64_t group;
    conv_autopad auto_pad;
    int n_kernel, n_strides, n_dil, n_pads, n_outpad, n_outshape; /* -1: absent */
    int64_t kernel[CONV_MAX_SP], strides[CONV_MAX_SP], dil[CONV_MAX_SP];
    int64_t pads[2 * CONV_MAX_SP], outpad[CONV_MAX_SP], outshape[CONV_MAX_SP + 2];
} conv_params;

/* Everything a kernel needs, with 1-D and 2-D problems padded to 3-D by
 * leading spatial dims of size 1 (kernel 1, stride 1, dilation 1, pad 0), so
 * one loop nest serves all ranks. For Conv, x_sp is the input and y_sp the
 * output plane; for ConvTranspose likewise (x is the small side there). */
typedef struct {
    int n_sp;                       /* spatial rank of the ONNX tensors, 1..3 */
    int64_t n, c_in, c_out, group;
    int64_t x_sp[3], y_sp[3], k[3], s[3], d[3], pb[3], pe[3];
} conv_geom;

/* ---- init --------------------------------------------------------------- */

static gb_status read_ints(gb_ctx *ctx, const gb__node *n, const char *name, int64_t *out,
                           int cap, int *len) {
    *len = gb__attr_ints(n, name, out, cap);
    if (*len > cap)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): attribute %s has %d values; at most %d spatial dims are supported",
                       n->name, n->op_type, name, *len, CONV_MAX_SP);
    return GB_OK;
}

static gb_status conv_init_common(gb_ctx *ctx, gb__node *n, bool transpose) {
    gb_status st = gb__check_arity(ctx, n, 2, 3, 1, 1);
    if (st != GB_OK) return st;
    conv_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    n->params = p;
    p->transpose = transpose;
    p->group = gb__attr_int(n, "group", 1);
    if (p->group < 1)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): group %lld must be >= 1", n->name,
                       n->op_type, (long long)p->group);
    const char *ap = gb__attr_str(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") == 0) p->auto_pad = PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0) p->auto_pad = PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0) p->auto_pad = PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0) p->auto_pad = PAD_VALID;
    else
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): unsupported auto_pad '%s'", n->name,
                       n->op_type, ap);
    if ((st = read_ints(ctx, n, "kernel_shape", p->kernel, CONV_MAX_SP, &p->n_kernel)) ||
        (st = read_ints(ctx, n, "strides", p->strides, CONV_MAX_SP, &p->n_strides)) ||
        (st = read_ints(ctx, n, "dilations", p->dil, CONV_MAX_SP, &p->n_dil)) ||
        (st = read_ints(ctx, n, "pads", p->pads, 2 * CONV_MAX_SP, &p->n_pads)))
        return st;
    p->n_outpad = p->n_outshape = -1;
    if (transpose) {
        if ((st = read_ints(ctx, n, "output_padding", p->outpad, CONV_MAX_SP, &p->n_outpad)) ||
            (st = read_ints(ctx, n, "output_shape", p->outshape, CONV_MAX_SP + 2,
                            &p->n_outshape)))
            return st;
    }
    for (int i = 0; i < p->n_strides; i++)
        if (p->strides[i] < 1)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): strides must be >= 1", n->name,
                           n->op_type);
    for (int i = 0; i < p->n_dil; i++)
        if (p->dil[i] < 1)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): dilations must be >= 1", n->name,
                           n->op_type);
    for (int i = 0; i < p->n_kernel; i++)
        if (p->kernel[i] < 1)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): kernel_shape must be >= 1", n->name,
                           n->op_type);
    for (int i = 0; i < p->n_pads; i++)
        if (p->pads[i] < 0)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): negative pads are not supported",
                           n->name, n->op_type);
    for (int i = 0; i < p->n_outpad; i++)
        if (p->outpad[i] < 0)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): output_padding must be >= 0", n->name,
                           n->op_type);
    return GB_OK;
}

static gb_status conv_init(gb_ctx *ctx, gb__node *n) { return conv_init_common(ctx, n, false); }
static gb_status convt_init(gb_ctx *ctx, gb__node *n) { return conv_init_common(ctx, n, true); }

/* ---- geometry (shared by infer, forward and backward) -------------------- */

/* Check the attribute lengths against the spatial rank r. */
static gb_status check_len(gb_ctx *ctx, const gb__node *n, const char *name, int len, int want,
                           int want2) {
    if (len >= 0 && len != want && len != want2)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): attribute %s has %d values, expected %d",
                       n->name, n->op_type, name, len, want);
    return GB_OK;
}

/* Derive shapes and paddings from the input shapes and attributes. ctx may be
 * NULL (forward re-derives what infer already validated). */
static gb_status conv_geometry(gb_ctx *ctx, const gb__node *n, const gb_tensor *const *in,
                               conv_geom *g) {
    const conv_params *p = n->params;
    const gb_tensor *x = in[0], *w = in[1];
    const gb_tensor *b = n->n_in > 2 && in[2] ? in[2] : NULL;
    char xs[96], ws[96];
    gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
    gb_shape_str(w->ndim, w->dims, ws, sizeof ws);
    if (x->dtype != GB_DTYPE_F32 || w->dtype != GB_DTYPE_F32 || (b && b->dtype != GB_DTYPE_F32))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): only float32 inputs are supported",
                       n->name, n->op_type);
    if (x->ndim < 3 || x->ndim > 2 + CONV_MAX_SP)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): X has shape %s; 1 to %d spatial dims are supported", n->name,
                       n->op_type, xs, CONV_MAX_SP);
    if (w->ndim != x->ndim)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): W %s and X %s differ in rank", n->name,
                       n->op_type, ws, xs);
    const int r = x->ndim - 2, off = 3 - r;
    gb_status st;
    if ((st = check_len(ctx, n, "kernel_shape", p->n_kernel, r, r)) ||
        (st = check_len(ctx, n, "strides", p->n_strides, r, r)) ||
        (st = check_len(ctx, n, "dilations", p->n_dil, r, r)) ||
        (st = check_len(ctx, n, "pads", p->n_pads, 2 * r, 2 * r)) ||
        (st = check_len(ctx, n, "output_padding", p->n_outpad, r, r)) ||
        (st = check_len(ctx, n, "output_shape", p->n_outshape, r, r + 2)))
        return st;

    memset(g, 0, sizeof *g);
    g->n_sp = r;
    g->n = x->dims[0];
    g->c_in = x->dims[1];
    g->group = p->group;
    if (g->c_in % g->group != 0)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): X %s: %lld channels not divisible by group %lld",
                       n->name, n->op_type, xs, (long long)g->c_in, (long long)g->group);
    if (!p->transpose) {
        /* W (C_out, C_in/group, *k) */
        if (w->dims[1] != g->c_in / g->group || w->dims[0] % g->group != 0)
            return gb__err(ctx, GB_ERR_SHAPE,
                           "%s (%s): W %s does not fit X %s with group %lld (want (C_out, %lld, ...) "
                           "with C_out divisible by group)",
                           n->name, n->op_type, ws, xs, (long long)g->group,
                           (long long)(g->c_in / g->group));
        g->c_out = w->dims[0];
    } else {
        /* W (C_in, C_out/group, *k) */
        if (w->dims[0] != g->c_in)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): W %s does not fit X %s (want (%lld, ...))",
                           n->name, n->op_type, ws, xs, (long long)g->c_in);
        g->c_out = w->dims[1] * g->group;
    }
    if (b && (b->ndim != 1 || b->dims[0] != g->c_out)) {
        char bs[96];
        gb_shape_str(b->ndim, b->dims, bs, sizeof bs);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): B has shape %s, expected %lld", n->name,
                       n->op_type, bs, (long long)g->c_out);
    }

    for (int i = 0; i < 3; i++) {
        g->x_sp[i] = g->y_sp[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->pb[i] = g->pe[i] = 0;
    }
    for (int i = 0; i < r; i++) {
        const int a = off + i;
        const int64_t in_sz = x->dims[2 + i];
        const int64_t k = w->dims[2 + i];
        if (in_sz < 1 || k < 1)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): empty spatial dim in X %s or W %s",
                           n->name, n->op_type, xs, ws);
        if (p->n_kernel >= 0 && p->kernel[i] != k)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): kernel_shape[%d] = %lld but W is %s",
                           n->name, n->op_type, i, (long long)p->kernel[i], ws);
        const int64_t s = p->n_strides >= 0 ? p->strides[i] : 1;
        const int64_t d = p->n_dil >= 0 ? p->dil[i] : 1;
        const int64_t dk = (k - 1) * d + 1; /* extent of the dilated kernel */
        int64_t pb = p->n_pads >= 0 ? p->pads[i] : 0;
        int64_t pe = p->n_pads >= 0 ? p->pads[r + i] : 0;
        int64_t out;
        if (!p->transpose) {
            if (p->auto_pad == PAD_SAME_UPPER || p->auto_pad == PAD_SAME_LOWER) {
                out = (in_sz + s - 1) / s;
                int64_t total = (out - 1) * s + dk - in_sz;
                if (total < 0) total = 0;
                pb = p->auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
                pe = total - pb;
            } else {
                if (p->auto_pad == PAD_VALID) pb = pe = 0;
                if (in_sz + pb + pe < dk)
                    return gb__err(ctx, GB_ERR_SHAPE,
                                   "%s (%s): dilated kernel %lld larger than padded input %lld "
                                   "(X %s, W %s)",
                                   n->name, n->op_type, (long long)dk,
                                   (long long)(in_sz + pb + pe), xs, ws);
                out = (in_sz + pb + pe - dk) / s + 1;
            }
        } else {
            const int64_t op = p->n_outpad >= 0 ? p->outpad[i] : 0;
            const int64_t full = s * (in_sz - 1) + op + dk;
            bool derive = false;
            if (p->n_outshape >= 0) {
                out = p->outshape[p->n_outshape == r ? i : 2 + i];
                derive = true;
            } else if (p->auto_pad == PAD_SAME_UPPER || p->auto_pad == PAD_SAME_LOWER) {
                out = in_sz * s;
                derive = true;
            } else {
                if (p->auto_pad == PAD_VALID) pb = pe = 0;
                out = full - pb - pe;
            }
            if (derive) {
                int64_t total = full - out;
                if (total < 0) total = 0;
                pb = p->auto_pad == PAD_SAME_LOWER ? total - total / 2 : total / 2;
                pe = total - pb;
            }
        }
        if (out < 1)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): output size %lld along spatial axis %d "
                           "(X %s, W %s)",
                           n->name, n->op_type, (long long)out, i, xs, ws);
        g->x_sp[a] = in_sz;
        g->y_sp[a] = out;
        g->k[a] = k;
        g->s[a] = s;
        g->d[a] = d;
        g->pb[a] = pb;
        g->pe[a] = pe;
    }
    return GB_OK;
}

static int64_t prod3(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* Every kernel below works on a Conv-oriented geometry: X (N, c_in, x_sp)
 * -> Y (N, c_out, y_sp), W (c_out, c_in/group, k). ConvTranspose is the
 * adjoint of the Conv whose input is ConvTranspose's output, so with the
 * sides swapped (swap_geom) its forward is that Conv's input gradient, and
 * its input gradient is that Conv's forward: W (C_in, C_out/group, k) is
 * already laid out as the weights of that Conv (c_out = C_in, c_in = C_out). */
static conv_geom swap_geom(const conv_geom *g) {
    conv_geom s = *g;
    s.c_in = g->c_out;
    s.c_out = g->c_in;
    for (int i = 0; i < 3; i++) {
        s.x_sp[i] = g->y_sp[i];
        s.y_sp[i] = g->x_sp[i];
        /* padding left at the end: negative when ConvTranspose's output has
         * positions no input pixel reaches (output_padding, output_shape) */
        s.pe[i] = (s.y_sp[i] - 1) * s.s[i] + (s.k[i] - 1) * s.d[i] + 1 - s.pb[i] - s.x_sp[i];
    }
    return s;
}

/* Widest kernel the direct depthwise loop handles (it precomputes one output
 * column range per kernel column); wider ones take the im2col path. */
#define DW_MAX_KW 16

static bool is_depthwise(const conv_geom *g) {
    return g->group > 1 && g->group == g->c_in && g->c_out % g->c_in == 0 &&
           g->k[2] <= DW_MAX_KW;
}

/* 1x1 kernel, stride 1, no padding (output plane == input plane): the input
 * plane is already the column matrix. */
static bool is_pointwise(const conv_geom *g) {
    for (int i = 0; i < 3; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] != 0 || g->y_sp[i] != g->x_sp[i])
            return false;
    return true;
}

/* Conv tiling plan: `items` batch items side by side (small output planes),
 * or one item in tiles of `rows` output rows (rows of the flattened (D, H)
 * plane, each W wide). Forward, input gradient and weight gradient all use
 * it, so they share one workspace size. */
typedef struct {
    int64_t items, rows, cols; /* cols: GEMM N per tile = items * rows * W */
    bool direct;               /* GEMM straight on X (pointwise, items == 1) */
} conv_plan;

static conv_plan plan_conv(const conv_geom *g) {
    conv_plan pl;
    const int64_t yhw = prod3(g->y_sp), nrows = g->y_sp[0] * g->y_sp[1], ow = g->y_sp[2];
    if (g->n > 1 && yhw < CONV_BATCH_PLANE) {
        pl.items = (CONV_BATCH_COLS + yhw - 1) / yhw;
        if (pl.items > g->n) pl.items = g->n;
        pl.rows = nrows;
    } else {
        pl.items = 1;
        pl.rows = CONV_TILE_COLS / ow;
        if (pl.rows < 1) pl.rows = 1;
        if (pl.rows > nrows) pl.rows = nrows;
    }
    pl.direct = pl.items == 1 && is_pointwise(g);
    if (pl.direct) pl.rows = nrows; /* no buffer: one GEMM over the plane */
    pl.cols = pl.items * pl.rows * ow;
    return pl;
}

/* Scratch floats the kernels need for a Conv-oriented geometry. */
static int64_t conv_ws_floats(const conv_geom *g) {
    const int64_t kg = g->c_in / g->group * prod3(g->k), mg = g->c_out / g->group;
    if (g->n == 0 || is_depthwise(g)) return 0;
    conv_plan pl = plan_conv(g);
    if (pl.direct) return 0;
    /* column buffer (kg, cols), plus (mg, cols) for the side-by-side Y or dY
     * when batching */
    return kg * pl.cols + (pl.items > 1 ? mg * pl.cols : 0);
}

/* The oneDNN form of a Conv-oriented geometry with at most 2 spatial dims
 * (1-D convs as 1 x W); false for 3-D. */
static bool dnnl_geom(const conv_geom *g, gb__dnnl_conv *c) {
    if (g->x_sp[0] != 1 || g->y_sp[0] != 1 || g->k[0] != 1 || g->pb[0] != 0 || g->pe[0] != 0) return false;
    *c = (gb__dnnl_conv){.n = g->n, .c_in = g->c_in, .c_out = g->c_out, .group = g->group,
                         .ih = g->x_sp[1], .iw = g->x_sp[2], .oh = g->y_sp[1], .ow = g->y_sp[2],
                         .kh = g->k[1], .kw = g->k[2], .sh = g->s[1], .sw = g->s[2], .dh = g->d[1], .dw = g->d[2],
                         .pt = g->pb[1], .pl = g->pb[2], .pb = g->pe[1], .pr = g->pe[2]};
    return true;
}

/* ---- infer -------------------------------------------------------------- */

static gb_status conv_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                            gb_tensor **out, size_t *ws_bytes, double *flops) {
    const conv_params *p = n->params;
    conv_geom g;
    gb_status st = conv_geometry(ctx, n, (const gb_tensor *const *)in, &g);
    if (st != GB_OK) return st;
    int64_t dims[2 + CONV_MAX_SP];
    dims[0] = g.n;
    dims[1] = g.c_out;
    for (int i = 0; i < g.n_sp; i++) dims[2 + i] = g.y_sp[3 - g.n_sp + i];
    gb__set_shape(out[0], GB_DTYPE_F32, 2 + g.n_sp, dims);

    const int64_t kvol = prod3(g.k);
    int64_t ws;
    if (!p->transpose) {
        ws = conv_ws_floats(&g);
        /* oneDNN (when built in) runs forward and input gradient; its
         * reorder buffers share the workspace with the im2col path, which
         * stays the fallback and computes weight gradients */
        gb__dnnl_conv dc;
        bool dnnl_ok = false;
        if (gb__dnnl_enabled(ctx) && dnnl_geom(&g, &dc)) {
            size_t db = gb__dnnl_conv_ws(ctx, &dc, n->n_in > 2 && in[2], &dnnl_ok);
            int64_t dfl = (int64_t)((db + sizeof(float) - 1) / sizeof(float));
            if (dnnl_ok && dfl > ws) ws = dfl;
        }
        /* 2 * N * C_out * prod(out) * (C_in/group) * prod(k) */
        *flops = 2.0 * (double)g.n * (double)g.c_out * (double)prod3(g.y_sp) *
                 (double)(g.c_in / g.group) * (double)kvol;
    } else {
        const conv_geom gs = swap_geom(&g);
        ws = conv_ws_floats(&gs);
        /* every input pixel meets (C_out/group) * prod(k) weights */
        *flops = 2.0 * (double)g.n * (double)g.c_in * (double)prod3(g.x_sp) *
                 (double)(g.c_out / g.group) * (double)kvol;
    }
    /* cblas takes int sizes and leading dimensions */
    if (prod3(g.x_sp) > INT_MAX || prod3(g.y_sp) > INT_MAX || g.c_in * kvol > INT_MAX ||
        g.c_out * kvol > INT_MAX)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): tensors too large for int BLAS sizes",
                       n->name, n->op_type);
    /* backward (input and weight gradients) uses the same plan and buffers */
    size_t bytes = (size_t)ws * sizeof(float);
    if (bytes > *ws_bytes) *ws_bytes = bytes;
    return GB_OK;
}

/* ---- kernels ------------------------------------------------------------- */

/* The iterations t in [0, n) whose position t * s + off lands in [0, limit)
 * form one range [*lo, *hi) (empty if *lo == *hi). */
static void tap_range(int64_t n, int64_t s, int64_t off, int64_t limit, int64_t *lo,
                      int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = limit - 1 - off < 0 ? 0 : (limit - 1 - off) / s + 1;
    if (a > n) a = n;
    if (b > n) b = n;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* im2col for one batch item and one group, output rows [r0, r1) of the
 * flattened (D_out, H_out) plane:
 *   col[(c, kz, ky, kx), j] = X[c, oz*sz + kz*dz - pbz, oy*sy + ky*dy - pby, ox*sx + kx*dx - pbx]
 * for j = (rr - r0) * W_out + ox, zero where the position falls in the padding.
 * x: (cg, D_in, H_in, W_in); col: (cg * prod(k), ldc) row-major. */
static void im2col(float *col, int64_t ldc, const float *x, int64_t cg, const conv_geom *g,
                   int64_t r0, int64_t r1, int nt) {
    const int64_t kd = g->k[0], kh = g->k[1], kw = g->k[2], kvol = kd * kh * kw;
    const int64_t id = g->x_sp[0], ih = g->x_sp[1], iw = g->x_sp[2], ihw = id * ih * iw;
    const int64_t oh = g->y_sp[1], ow = g->y_sp[2];
    const int64_t rows = cg * kvol;
#pragma omp parallel for num_threads(nt) schedule(static) if (rows * (r1 - r0) * ow > GB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t c = r / kvol, t = r % kvol;
        const int64_t kz = t / (kh * kw), ky = (t / kw) % kh, kx = t % kw;
        const int64_t offz = kz * g->d[0] - g->pb[0], offy = ky * g->d[1] - g->pb[1],
                      offx = kx * g->d[2] - g->pb[2];
        const float *xc = x + c * ihw;
        float *dst = col + r * ldc;
        int64_t x0, x1;
        tap_range(ow, g->s[2], offx, iw, &x0, &x1);
        for (int64_t rr = r0; rr < r1; rr++, dst += ow) {
            const int64_t oz = rr / oh, oy = rr % oh;
            const int64_t iz = oz * g->s[0] + offz, iy = oy * g->s[1] + offy;
            if (iz < 0 || iz >= id || iy < 0 || iy >= ih || x0 == x1) {
                memset(dst, 0, (size_t)ow * sizeof *dst);
                continue;
            }
            const float *src = xc + (iz * ih + iy) * iw;
            if (x0 > 0) memset(dst, 0, (size_t)x0 * sizeof *dst);
            if (g->s[2] == 1) {
                memcpy(dst + x0, src + x0 + offx, (size_t)(x1 - x0) * sizeof *dst);
            } else {
                const int64_t sx = g->s[2];
                for (int64_t ox = x0; ox < x1; ox++) dst[ox] = src[ox * sx + offx];
            }
            if (x1 < ow) memset(dst + x1, 0, (size_t)(ow - x1) * sizeof *dst);
        }
    }
}

/* col2im, the adjoint of im2col, for `items` batch items of one group and
 * output rows [r0, r1): scatter-add
 *   dX[c, oz*sz + kz*dz - pbz, oy*sy + ky*dy - pby, ox*sx + kx*dx - pbx] += col[(c, kz, ky, kx), j]
 * dropping positions in the padding. Item j's columns start at column
 * j * (r1 - r0) * W_out of col, its dX plane block at dx + j * dx_stride.
 * Parallel over input channels c, which own disjoint planes of dX (race-free,
 * and the sum order does not depend on the thread count).
 * dx: (cg, *x_sp) per item; col: (cg * prod(k), ldc). */
static void col2im(float *dx, int64_t dx_stride, const float *col, int64_t ldc, int64_t items,
                   int64_t cg, const conv_geom *g, int64_t r0, int64_t r1, int nt) {
    const int64_t kd = g->k[0], kh = g->k[1], kw = g->k[2], kvol = kd * kh * kw;
    const int64_t id = g->x_sp[0], ih = g->x_sp[1], iw = g->x_sp[2], ihw = id * ih * iw;
    const int64_t oh = g->y_sp[1], ow = g->y_sp[2], tile = (r1 - r0) * ow, sx = g->s[2];
#pragma omp parallel for num_threads(nt) schedule(static) if (cg * kvol * items * tile > GB_PAR_MIN)
    for (int64_t c = 0; c < cg; c++)
        for (int64_t j = 0; j < items; j++) {
            float *dxc = dx + j * dx_stride + c * ihw;
            for (int64_t t = 0; t < kvol; t++) {
                const int64_t kz = t / (kh * kw), ky = (t / kw) % kh, kx = t % kw;
                const int64_t offz = kz * g->d[0] - g->pb[0], offy = ky * g->d[1] - g->pb[1],
                              offx = kx * g->d[2] - g->pb[2];
                int64_t x0, x1;
                tap_range(ow, sx, offx, iw, &x0, &x1);
                if (x0 == x1) continue;
                const float *src = col + (c * kvol + t) * ldc + j * tile;
                for (int64_t rr = r0; rr < r1; rr++, src += ow) {
                    const int64_t oz = rr / oh, oy = rr % oh;
                    const int64_t iz = oz * g->s[0] + offz, iy = oy * g->s[1] + offy;
                    if (iz < 0 || iz >= id || iy < 0 || iy >= ih) continue;
                    float *dst = dxc + (iz * ih + iy) * iw + offx;
                    if (sx == 1) {
#pragma omp simd
                        for (int64_t ox = x0; ox < x1; ox++) dst[ox] += src[ox];
                    } else {
#pragma omp simd
                        for (int64_t ox = x0; ox < x1; ox++) dst[ox * sx] += src[ox];
                    }
                }
            }
        }
}

/* Lay `items` batch items' blocks of mg planes (`plane` floats each; item j's
 * block at planes + j * stride) side by side: dst (mg, items * plane). */
static void pack_items(float *dst, const float *planes, int64_t stride, int64_t items, int64_t mg,
                       int64_t plane, int nt) {
    const int64_t cols = items * plane;
#pragma omp parallel for num_threads(nt) schedule(static) if (mg * cols > GB_PAR_MIN)
    for (int64_t r = 0; r < mg * items; r++) {
        const int64_t oc = r / items, j = r % items;
        memcpy(dst + oc * cols + j * plane, planes + j * stride + oc * plane,
               (size_t)plane * sizeof *dst);
    }
}

/* Depthwise conv (group == C_in, C_out = C_in * mult): a direct loop, parallel
 * over (n, oc). Each output row is the bias (or, when `acc`, its current
 * value) plus, for every valid kernel row (kz, ky), the sum over kx of w *
 * (input row shifted by kx * dx - pad). The columns where every kx lands
 * inside the input (the interior) take one vectorised loop with all kw taps
 * inside; the few border columns check each tap.
 * y: (N, C_out, *y_sp), x: (N, C_in, *x_sp), w: (C_out, 1, *k), b: (C_out) or NULL. */
static void depthwise_forward(float *y, const float *x, const float *w, const float *b,
                              bool acc, const conv_geom *g, int nt) {
    const int64_t mult = g->c_out / g->c_in;
    const int64_t kd = g->k[0], kh = g->k[1], kw = g->k[2], kvol = kd * kh * kw;
    const int64_t id = g->x_sp[0], ih = g->x_sp[1], iw = g->x_sp[2], ihw = id * ih * iw;
    const int64_t od = g->y_sp[0], oh = g->y_sp[1], ow = g->y_sp[2], ohw = od * oh * ow;
    const int64_t sx = g->s[2], planes = g->n * g->c_out;
    /* interior [lo, hi): ox * sx + kx * dx - pbx in [0, iw) for every kx */
    int64_t xoff[DW_MAX_KW], lo = 0, hi = ow;
    for (int64_t kx = 0; kx < kw; kx++) {
        int64_t a, e;
        xoff[kx] = kx * g->d[2] - g->pb[2];
        tap_range(ow, sx, xoff[kx], iw, &a, &e);
        if (a > lo) lo = a;
        if (e < hi) hi = e;
    }
    if (hi < lo) hi = lo;
#pragma omp parallel for num_threads(nt) schedule(static) if (planes * ohw * kvol > GB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t bi = pl / g->c_out, oc = pl % g->c_out, ic = oc / mult;
        const float *xc = x + (bi * g->c_in + ic) * ihw;
        const float *wc = w + oc * kvol;
        float *yc = y + pl * ohw;
        const float bias = b ? b[oc] : 0.0f;
        for (int64_t oz = 0; oz < od; oz++)
            for (int64_t oy = 0; oy < oh; oy++) {
                float *yrow = yc + (oz * oh + oy) * ow;
                if (!acc)
                    for (int64_t ox = 0; ox < ow; ox++) yrow[ox] = bias;
                for (int64_t kz = 0; kz < kd; kz++) {
                    const int64_t iz = oz * g->s[0] + kz * g->d[0] - g->pb[0];
                    if (iz < 0 || iz >= id) continue;
                    for (int64_t ky = 0; ky < kh; ky++) {
                        const int64_t iy = oy * g->s[1] + ky * g->d[1] - g->pb[1];
                        if (iy < 0 || iy >= ih) continue;
                        const float *xrow = xc + (iz * ih + iy) * iw;
                        const float *wk = wc + (kz * kh + ky) * kw;
                        /* border columns: check every tap */
                        for (int64_t ox = 0; ox < ow; ox++) {
                            if (ox == lo) ox = hi; /* skip the interior */
                            if (ox >= ow) break;
                            float s = 0.0f;
                            for (int64_t kx = 0; kx < kw; kx++) {
                                const int64_t ix = ox * sx + xoff[kx];
                                if (ix >= 0 && ix < iw) s += wk[kx] * xrow[ix];
                            }
                            yrow[ox] += s;
                        }
                        /* interior: all taps valid */
                        if (kw == 3 && sx <= 2) { /* the MobileNet case, unrolled */
                            const float w0 = wk[0], w1 = wk[1], w2 = wk[2];
                            const float *x0 = xrow + xoff[0], *x1 = xrow + xoff[1],
                                        *x2 = xrow + xoff[2];
                            if (sx == 1) {
#pragma omp simd
                                for (int64_t ox = lo; ox < hi; ox++)
                                    yrow[ox] += w0 * x0[ox] + w1 * x1[ox] + w2 * x2[ox];
                            } else {
#pragma omp simd
                                for (int64_t ox = lo; ox < hi; ox++)
                                    yrow[ox] += w0 * x0[2 * ox] + w1 * x1[2 * ox] + w2 * x2[2 * ox];
                            }
                        } else {
                            for (int64_t kx = 0; kx < kw; kx++) {
                                const float wv = wk[kx];
                                const float *xs = xrow + xoff[kx];
                                if (sx == 1) {
#pragma omp simd
                                    for (int64_t ox = lo; ox < hi; ox++) yrow[ox] += wv * xs[ox];
                                } else if (sx == 2) {
#pragma omp simd
                                    for (int64_t ox = lo; ox < hi; ox++)
                                        yrow[ox] += wv * xs[2 * ox];
                                } else {
                                    for (int64_t ox = lo; ox < hi; ox++)
                                        yrow[ox] += wv * xs[ox * sx];
                                }
                            }
                        }
                    }
                }
            }
    }
}

/* Depthwise input gradient: dX[n, ic, o*s + t*d - pb] += W[oc, 0, t] * dY[n, oc, o]
 * for the mult output channels oc of input channel ic. Parallel over (n, ic)
 * planes of dX, so no two threads write the same element; for each kernel
 * column kx the valid output columns form one range, scattered with one
 * vectorised loop (distinct ox hit distinct dX columns). */
static void depthwise_dx(float *dx, const float *dy, const float *w, const conv_geom *g,
                         int nt) {
    const int64_t mult = g->c_out / g->c_in;
    const int64_t kd = g->k[0], kh = g->k[1], kw = g->k[2], kvol = kd * kh * kw;
    const int64_t id = g->x_sp[0], ih = g->x_sp[1], iw = g->x_sp[2], ihw = id * ih * iw;
    const int64_t od = g->y_sp[0], oh = g->y_sp[1], ow = g->y_sp[2], ohw = od * oh * ow;
    const int64_t sx = g->s[2], planes = g->n * g->c_in;
    int64_t xoff[DW_MAX_KW], xlo[DW_MAX_KW], xhi[DW_MAX_KW];
    for (int64_t kx = 0; kx < kw; kx++) {
        xoff[kx] = kx * g->d[2] - g->pb[2];
        tap_range(ow, sx, xoff[kx], iw, &xlo[kx], &xhi[kx]);
    }
#pragma omp parallel for num_threads(nt) schedule(static) if (planes * mult * ohw * kvol > GB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t bi = pl / g->c_in, ic = pl % g->c_in;
        float *dxc = dx + pl * ihw;
        for (int64_t m = 0; m < mult; m++) {
            const int64_t oc = ic * mult + m;
            const float *dyc = dy + (bi * g->c_out + oc) * ohw;
            const float *wc = w + oc * kvol;
            for (int64_t oz = 0; oz < od; oz++)
                for (int64_t oy = 0; oy < oh; oy++) {
                    const float *dyrow = dyc + (oz * oh + oy) * ow;
                    for (int64_t kz = 0; kz < kd; kz++) {
                        const int64_t iz = oz * g->s[0] + kz * g->d[0] - g->pb[0];
                        if (iz < 0 || iz >= id) continue;
                        for (int64_t ky = 0; ky < kh; ky++) {
                            const int64_t iy = oy * g->s[1] + ky * g->d[1] - g->pb[1];
                            if (iy < 0 || iy >= ih) continue;
                            float *dxrow = dxc + (iz * ih + iy) * iw;
                            const float *wk = wc + (kz * kh + ky) * kw;
                            for (int64_t kx = 0; kx < kw; kx++) {
                                const float wv = wk[kx];
                                float *xs = dxrow + xoff[kx];
                                const int64_t a = xlo[kx], e = xhi[kx];
                                if (sx == 1) {
#pragma omp simd
                                    for (int64_t ox = a; ox < e; ox++) xs[ox] += wv * dyrow[ox];
                                } else {
#pragma omp simd
                                    for (int64_t ox = a; ox < e; ox++)
                                        xs[ox * sx] += wv * dyrow[ox];
                                }
                            }
                        }
                    }
                }
        }
    }
}

/* Depthwise weight gradient:
 *   dW[oc, 0, t] += sum_{n, o} dY[n, oc, o] * X[n, ic, o*s + t*d - pb]
 * Parallel over output channels, which own their kernels; each tap is a sum
 * of row dot products over the output positions where it lands inside X,
 * accumulated in double. */
static void depthwise_dw(float *dw, const float *x, const float *dy, const conv_geom *g,
                         int nt) {
    const int64_t mult = g->c_out / g->c_in;
    const int64_t kd = g->k[0], kh = g->k[1], kw = g->k[2], kvol = kd * kh * kw;
    const int64_t id = g->x_sp[0], ih = g->x_sp[1], iw = g->x_sp[2], ihw = id * ih * iw;
    const int64_t od = g->y_sp[0], oh = g->y_sp[1], ow = g->y_sp[2], ohw = od * oh * ow;
    const int64_t sx = g->s[2];
#pragma omp parallel for num_threads(nt) schedule(static) if (g->n * g->c_out * ohw * kvol > GB_PAR_MIN)
    for (int64_t oc = 0; oc < g->c_out; oc++) {
        const int64_t ic = oc / mult;
        for (int64_t t = 0; t < kvol; t++) {
            const int64_t kz = t / (kh * kw), ky = (t / kw) % kh, kx = t % kw;
            const int64_t offz = kz * g->d[0] - g->pb[0], offy = ky * g->d[1] - g->pb[1],
                          offx = kx * g->d[2] - g->pb[2];
            int64_t z0, z1, y0, y1, x0, x1;
            tap_range(od, g->s[0], offz, id, &z0, &z1);
            tap_range(oh, g->s[1], offy, ih, &y0, &y1);
            tap_range(ow, sx, offx, iw, &x0, &x1);
            double acc = 0.0;
            for (int64_t bi = 0; bi < g->n; bi++) {
                const float *xc = x + (bi * g->c_in + ic) * ihw;
                const float *dyc = dy + (bi * g->c_out + oc) * ohw;
                for (int64_t oz = z0; oz < z1; oz++)
                    for (int64_t oy = y0; oy < y1; oy++) {
                        const float *dyrow = dyc + (oz * oh + oy) * ow;
                        const float *xrow =
                            xc + ((oz * g->s[0] + offz) * ih + oy * g->s[1] + offy) * iw + offx;
                        float s = 0.0f;
#pragma omp simd reduction(+ : s)
                        for (int64_t ox = x0; ox < x1; ox++) s += dyrow[ox] * xrow[ox * sx];
                        acc += s;
                    }
            }
            dw[oc * kvol + t] += (float)acc;
        }
    }
}

/* Fill `rows` rows of length len with the bias of channels c0.. (0 if none). */
static void fill_bias(float *y, const float *b, int64_t c0, int64_t rows, int64_t len, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static) if (rows * len > GB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float v = b ? b[c0 + r] : 0.0f;
        float *row = y + r * len;
        for (int64_t j = 0; j < len; j++) row[j] = v;
    }
}

/* ---- Conv-oriented drivers: Y, dX and dW ------------------------------------ */

/* Y = conv(X, W) + B, or Y += conv(X, W) when acc (b is then NULL).
 * Per (batch item, group): Y_g (mg, yhw) = W_g (mg, kg) * im2col(X_g) (kg, yhw)
 * over tiles of output rows; 1x1 stride-1 convs multiply X directly; small
 * planes with N > 1 put several items side by side in one GEMM. */
static void conv_run(const conv_geom *g, float *y, const float *x, const float *w,
                     const float *b, bool acc, float *ws, int nt) {
    if (g->n == 0) return;
    if (is_depthwise(g)) {
        depthwise_forward(y, x, w, b, acc, g, nt);
        return;
    }
    const int64_t cg = g->c_in / g->group, mg = g->c_out / g->group;
    const int64_t kg = cg * prod3(g->k);
    const int64_t xhw = prod3(g->x_sp), yhw = prod3(g->y_sp), ow = g->y_sp[2];
    const int64_t nrows = g->y_sp[0] * g->y_sp[1];
    const conv_plan pl = plan_conv(g);
    float *col = ws;

    for (int64_t b0 = 0; b0 < g->n; b0 += pl.items) {
        const int64_t items = g->n - b0 < pl.items ? g->n - b0 : pl.items;
        for (int64_t gi = 0; gi < g->group; gi++) {
            const float *wg = w + gi * mg * kg; /* (mg, kg) */
            if (pl.items == 1) {
                /* Y_g (mg, yhw) = W_g (mg, kg) * col (kg, yhw), one row tile at a time. */
                const float *xg = x + (b0 * g->c_in + gi * cg) * xhw;
                float *yg = y + (b0 * g->c_out + gi * mg) * yhw;
                if (!acc) fill_bias(yg, b, gi * mg, mg, yhw, nt);
                for (int64_t r0 = 0; r0 < nrows; r0 += pl.rows) {
                    const int64_t r1 = r0 + pl.rows < nrows ? r0 + pl.rows : nrows;
                    const int64_t cols = (r1 - r0) * ow;
                    const float *bm = xg;
                    int64_t ldb = yhw;
                    if (!pl.direct) {
                        im2col(col, cols, xg, cg, g, r0, r1, nt);
                        bm = col;
                        ldb = cols;
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)cols,
                                (int)kg, 1.0f, wg, (int)kg, bm, (int)ldb, 1.0f,
                                yg + r0 * ow, (int)yhw);
                }
            } else {
                /* Several items side by side: col (kg, items * yhw), one GEMM
                 * into tmp (mg, items * yhw), then scatter to (N, C_out, yhw). */
                const int64_t cols = items * yhw;
                float *tmp = col + kg * pl.cols;
                for (int64_t j = 0; j < items; j++)
                    im2col(col + j * yhw, cols, x + ((b0 + j) * g->c_in + gi * cg) * xhw, cg, g,
                           0, nrows, nt);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)cols, (int)kg,
                            1.0f, wg, (int)kg, col, (int)cols, 0.0f, tmp, (int)cols);
#pragma omp parallel for num_threads(nt) schedule(static) if (mg * cols > GB_PAR_MIN)
                for (int64_t r = 0; r < mg * items; r++) {
                    const int64_t oc = r / items, j = r % items;
                    const float v = b ? b[gi * mg + oc] : 0.0f;
                    const float *src = tmp + oc * cols + j * yhw;
                    float *dst = y + ((b0 + j) * g->c_out + gi * mg + oc) * yhw;
                    if (acc)
                        for (int64_t q = 0; q < yhw; q++) dst[q] += src[q];
                    else
                        for (int64_t q = 0; q < yhw; q++) dst[q] = src[q] + v;
                }
            }
        }
    }
}

/* dX += conv's input gradient (the adjoint of conv_run):
 *   dX_g = col2im(W_g^T (kg, mg) * dY_g (mg, yhw))
 * over the same tiles as forward, col2im scatter-adding each tile's columns;
 * 1x1 stride-1: dX_g += W_g^T dY_g in one GEMM with beta = 1; depthwise: a
 * direct loop. */
static void conv_dx(const conv_geom *g, float *dx, const float *dy, const float *w, float *ws,
                    int nt) {
    if (g->n == 0) return;
    if (is_depthwise(g)) {
        depthwise_dx(dx, dy, w, g, nt);
        return;
    }
    const int64_t cg = g->c_in / g->group, mg = g->c_out / g->group;
    const int64_t kg = cg * prod3(g->k);
    const int64_t xhw = prod3(g->x_sp), yhw = prod3(g->y_sp), ow = g->y_sp[2];
    const int64_t nrows = g->y_sp[0] * g->y_sp[1];
    const conv_plan pl = plan_conv(g);
    float *col = ws;

    for (int64_t b0 = 0; b0 < g->n; b0 += pl.items) {
        const int64_t items = g->n - b0 < pl.items ? g->n - b0 : pl.items;
        for (int64_t gi = 0; gi < g->group; gi++) {
            const float *wg = w + gi * mg * kg; /* (mg, kg) */
            float *dxg = dx + (b0 * g->c_in + gi * cg) * xhw;
            const float *dyg = dy + (b0 * g->c_out + gi * mg) * yhw;
            if (pl.direct) { /* dX_g (cg, xhw) += W_g^T (cg, mg) * dY_g (mg, yhw) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cg, (int)yhw, (int)mg,
                            1.0f, wg, (int)kg, dyg, (int)yhw, 1.0f, dxg, (int)xhw);
            } else if (pl.items == 1) {
                for (int64_t r0 = 0; r0 < nrows; r0 += pl.rows) {
                    const int64_t r1 = r0 + pl.rows < nrows ? r0 + pl.rows : nrows;
                    const int64_t cols = (r1 - r0) * ow;
                    /* col (kg, cols) = W_g^T * dY_g[:, tile] */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kg, (int)cols,
                                (int)mg, 1.0f, wg, (int)kg, dyg + r0 * ow, (int)yhw, 0.0f, col,
                                (int)cols);
                    col2im(dxg, 0, col, cols, 1, cg, g, r0, r1, nt);
                }
            } else {
                /* dY of several items side by side in tmp (mg, items * yhw),
                 * one GEMM into col (kg, items * yhw), then col2im per item */
                const int64_t cols = items * yhw;
                float *tmp = col + kg * pl.cols;
                pack_items(tmp, dyg, g->c_out * yhw, items, mg, yhw, nt);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kg, (int)cols, (int)mg,
                            1.0f, wg, (int)kg, tmp, (int)cols, 0.0f, col, (int)cols);
                col2im(dxg, g->c_in * xhw, col, cols, items, cg, g, 0, nrows, nt);
            }
        }
    }
}

/* dW += conv's weight gradient: dW_g (mg, kg) += dY_g (mg, yhw) * im2col(X_g)^T
 * (yhw, kg), one GEMM with beta = 1 per (batch item or item block, group,
 * tile). */
static void conv_dw(const conv_geom *g, float *dw, const float *x, const float *dy, float *ws,
                    int nt) {
    if (g->n == 0) return;
    if (is_depthwise(g)) {
        depthwise_dw(dw, x, dy, g, nt);
        return;
    }
    const int64_t cg = g->c_in / g->group, mg = g->c_out / g->group;
    const int64_t kg = cg * prod3(g->k);
    const int64_t xhw = prod3(g->x_sp), yhw = prod3(g->y_sp), ow = g->y_sp[2];
    const int64_t nrows = g->y_sp[0] * g->y_sp[1];
    const conv_plan pl = plan_conv(g);
    float *col = ws;

    for (int64_t b0 = 0; b0 < g->n; b0 += pl.items) {
        const int64_t items = g->n - b0 < pl.items ? g->n - b0 : pl.items;
        for (int64_t gi = 0; gi < g->group; gi++) {
            float *dwg = dw + gi * mg * kg; /* (mg, kg) */
            const float *xg = x + (b0 * g->c_in + gi * cg) * xhw;
            const float *dyg = dy + (b0 * g->c_out + gi * mg) * yhw;
            if (pl.direct) { /* dW_g (mg, cg) += dY_g (mg, yhw) * X_g^T (yhw, cg) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mg, (int)kg, (int)yhw,
                            1.0f, dyg, (int)yhw, xg, (int)xhw, 1.0f, dwg, (int)kg);
            } else if (pl.items == 1) {
                for (int64_t r0 = 0; r0 < nrows; r0 += pl.rows) {
                    const int64_t r1 = r0 + pl.rows < nrows ? r0 + pl.rows : nrows;
                    const int64_t cols = (r1 - r0) * ow;
                    im2col(col, cols, xg, cg, g, r0, r1, nt);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mg, (int)kg,
                                (int)cols, 1.0f, dyg + r0 * ow, (int)yhw, col, (int)cols, 1.0f,
                                dwg, (int)kg);
                }
            } else {
                const int64_t cols = items * yhw;
                float *tmp = col + kg * pl.cols;
                for (int64_t j = 0; j < items; j++)
                    im2col(col + j * yhw, cols, xg + j * g->c_in * xhw, cg, g, 0, nrows, nt);
                pack_items(tmp, dyg, g->c_out * yhw, items, mg, yhw, nt);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mg, (int)kg, (int)cols,
                            1.0f, tmp, (int)cols, col, (int)cols, 1.0f, dwg, (int)kg);
            }
        }
    }
}

/* dB[c] += sum over batch items and positions of dY[n, c, :] (in double),
 * parallel over channels. */
static void bias_grad(float *db, const float *dy, int64_t n, int64_t c, int64_t plane, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static) if (n * c * plane > GB_PAR_MIN)
    for (int64_t oc = 0; oc < c; oc++) {
        double acc = 0.0;
        for (int64_t bi = 0; bi < n; bi++) {
            const float *row = dy + (bi * c + oc) * plane;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t q = 0; q < plane; q++) s += row[q];
            acc += s;
        }
        db[oc] += (float)acc;
    }
}

/* ---- forward and backward ------------------------------------------------ */

static gb_status conv_forward(const gb__node *n, const gb_tensor *const *in,
                              gb_tensor *const *out, const gb__exec *ex) {
    conv_geom g;
    if (conv_geometry(NULL, n, in, &g) != GB_OK) return GB_ERR_ARG;
    if ((size_t)conv_ws_floats(&g) * sizeof(float) > ex->ws_size) return GB_ERR_ARG;
    const float *b = n->n_in > 2 && in[2] ? GB_CF32(in[2]) : NULL;
    gb__dnnl_conv dc;
    if (dnnl_geom(&g, &dc) && gb__dnnl_conv_forward(ex, &dc, GB_F32(out[0]), GB_CF32(in[0]), GB_CF32(in[1]), b, false))
        return GB_OK;
    conv_run(&g, GB_F32(out[0]), GB_CF32(in[0]), GB_CF32(in[1]), b, false, ex->ws,
             ex->n_threads);
    return GB_OK;
}

/* Conv backward (Y = conv(X, W) + B, G = dY):
 *   dX[n, ic, o*s + t*d - pb] += sum_{oc in group(ic)} W[oc, ic', t] * G[n, oc, o]
 *                                 (= col2im(W_g^T G_g): a ConvTranspose of G)
 *   dW[oc, ic', t] += sum_{n, o} G[n, oc, o] * X[n, ic, o*s + t*d - pb]   (= G_g im2col(X_g)^T)
 *   dB[oc] += sum_{n, o} G[n, oc, o]
 * positions in the padding contributing nothing. dW and dB only when asked. */
static gb_status conv_backward(const gb__node *n, const gb_tensor *const *in,
                               const gb_tensor *const *out, const gb_tensor *const *dout,
                               gb_tensor *const *din, const gb__exec *ex) {
    if (!dout[0]) return GB_OK;
    conv_geom g;
    if (conv_geometry(NULL, n, in, &g) != GB_OK) return GB_ERR_ARG;
    if ((size_t)conv_ws_floats(&g) * sizeof(float) > ex->ws_size) return GB_ERR_ARG;
    const float *x = GB_CF32(in[0]), *w = GB_CF32(in[1]), *dy = GB_CF32(dout[0]);
    const int nt = ex->n_threads;
    gb__dnnl_conv dc;
    if (din[0] && !(dnnl_geom(&g, &dc) && gb__dnnl_conv_dx(ex, &dc, GB_F32(din[0]), dy, w)))
        conv_dx(&g, GB_F32(din[0]), dy, w, ex->ws, nt);
    if (din[1]) conv_dw(&g, GB_F32(din[1]), x, dy, ex->ws, nt);
    if (n->n_in > 2 && in[2] && din[2])
        bias_grad(GB_F32(din[2]), dy, g.n, g.c_out, prod3(g.y_sp), nt);
    return GB_OK;
}

/* ConvTranspose forward: Y = B + (the input gradient of the swapped Conv
 * applied to X), i.e. Y_g = col2im(W_g^T X_g) tile by tile. */
static gb_status convt_forward(const gb__node *n, const gb_tensor *const *in,
                               gb_tensor *const *out, const gb__exec *ex) {
    conv_geom g;
    if (conv_geometry(NULL, n, in, &g) != GB_OK) return GB_ERR_ARG;
    const conv_geom gs = swap_geom(&g);
    if ((size_t)conv_ws_floats(&gs) * sizeof(float) > ex->ws_size) return GB_ERR_ARG;
    const float *b = n->n_in > 2 && in[2] ? GB_CF32(in[2]) : NULL;
    float *y = GB_F32(out[0]);
    const int64_t yhw = prod3(g.y_sp);
    for (int64_t bi = 0; bi < g.n; bi++)
        fill_bias(y + bi * g.c_out * yhw, b, 0, g.c_out, yhw, ex->n_threads);
    conv_dx(&gs, y, GB_CF32(in[0]), GB_CF32(in[1]), ex->ws, ex->n_threads);
    return GB_OK;
}

/* ConvTranspose backward (Y[n, oc, i*s + t*d - pb] += X[n, ic, i] W[ic, oc', t], G = dY):
 *   dX[n, ic, i] += sum_{oc', t} W[ic, oc', t] * G[n, oc, i*s + t*d - pb]
 *                   (= the swapped Conv of G with W: conv_run, accumulating)
 *   dW[ic, oc', t] += sum_{n, i} X[n, ic, i] * G[n, oc, i*s + t*d - pb]
 *                   (= the swapped Conv's weight gradient with X as its dY)
 *   dB[oc] += sum_{n, o} G[n, oc, o] */
static gb_status convt_backward(const gb__node *n, const gb_tensor *const *in,
                                const gb_tensor *const *out, const gb_tensor *const *dout,
                                gb_tensor *const *din, const gb__exec *ex) {
    if (!dout[0]) return GB_OK;
    conv_geom g;
    if (conv_geometry(NULL, n, in, &g) != GB_OK) return GB_ERR_ARG;
    const conv_geom gs = swap_geom(&g);
    if ((size_t)conv_ws_floats(&gs) * sizeof(float) > ex->ws_size) return GB_ERR_ARG;
    const float *x = GB_CF32(in[0]), *w = GB_CF32(in[1]), *dy = GB_CF32(dout[0]);
    const int nt = ex->n_threads;
    if (din[0]) conv_run(&gs, GB_F32(din[0]), dy, w, NULL, true, ex->ws, nt);
    if (din[1]) conv_dw(&gs, GB_F32(din[1]), dy, x, ex->ws, nt);
    if (n->n_in > 2 && in[2] && din[2])
        bias_grad(GB_F32(din[2]), dy, g.n, g.c_out, prod3(g.y_sp), nt);
    return GB_OK;
}

/* ---- registration -------------------------------------------------------- */

const gb__op gb__op_Conv = {.name = "Conv",
                            .init = conv_init,
                            .infer = conv_infer,
                            .forward = conv_forward,
                            .backward = conv_backward};
const gb__op gb__op_ConvTranspose = {.name = "ConvTranspose",
                                     .init = convt_init,
                                     .infer = conv_infer,
                                     .forward = convt_forward,
                                     .backward = convt_backward};

const gb__op *const gb__ops_conv[] = {&gb__op_Conv, &gb__op_ConvTranspose, NULL};
