/*
 * resize.c — Resize (opset 10, 11, 13+) and Upsample (opset 7, 9), modes
 * nearest and (N-d multi)linear, float32.
 *
 * Output size per axis: from 'sizes' if given, else floor(in * scale). With
 * sizes the scale used below is out / in.
 *
 * Each output coordinate x along an axis of input length L maps to an input
 * coordinate x' by coordinate_transformation_mode (opset 11+; opset 10 and
 * Upsample are 'asymmetric'), with s the scale and W = s * L the (real)
 * resized length — the ONNX reference implementation
 * (onnx/backend/test/case/node/resize.py) uses W, not the rounded output
 * length, which matters for align_corners with scales:
 *   half_pixel            x' = (x + 0.5) / s - 0.5
 *   pytorch_half_pixel    x' = W > 1 ? (x + 0.5) / s - 0.5 : -0.5
 *   align_corners         x' = W > 1 ? x * (L - 1) / (W - 1) : 0
 *   asymmetric            x' = x / s
 *   tf_half_pixel_for_nn  x' = (x + 0.5) / s
 *   tf_crop_and_resize    x' = roi_start * (L - 1) + x * (roi_end - roi_start) * (L - 1) / (W - 1)
 *                         (W == 1: the roi centre); an x' outside [0, L-1] on
 *                         any axis gives extrapolation_value.
 * nearest: x' rounded by nearest_mode (round_prefer_floor (default),
 *   round_prefer_ceil, floor, ceil), then clamped to [0, L-1]. Opset-10
 *   Resize and Upsample have no nearest_mode; like ONNX Runtime they take
 *   floor(x') when upsampling (s >= 1: nearest-neighbour repetition, which
 *   the Upsample test expects) and ceil(x') when downsampling.
 * linear: i0 = floor(x'), weight w = x' - i0 on i0 + 1; both indices
 *   clamped to [0, L-1] (edge padding, as in the reference). Interpolates
 *   along every axis whose mapping is not an identity (so 2-D bilinear on
 *   NCHW, trilinear on NCDHW, 1-D on NCW).
 * Backward: y is linear in x, y = A x with A the interpolation weights, so
 *   dx = A^T dy: each output's gradient goes back to the taps it read, with
 *   the same weights (nearest: the one source pixel, scatter-ADD since many
 *   outputs read it; linear: (1 - w) to i0 and w to i1 along each axis —
 *   PyTorch's upsample_*_backward). Extrapolated outputs
 *   (tf_crop_and_resize) read no input and send nothing back. Every
 *   coordinate mode above is covered, since they only change the taps.
 *   The roi input of tf_crop_and_resize is a float that moves the sample
 *   points: for linear mode d y / d x' = the interpolated difference
 *   x[i1] - x[i0] along that axis and x' is affine in roi_start/roi_end, so
 *   it gets a gradient too (nearest is piecewise constant in x': 0).
 *   'scales' and 'sizes' only set shapes (plan-time constants): none.
 * Not supported (GB_ERR_UNSUPPORTED naming the node): mode cubic,
 * exclude_outside != 0, antialias != 0, keep_aspect_ratio_policy other than
 * stretch, the 'axes' attribute (opset 18), half_pixel_symmetric (opset 19).
 */
#include "ops/const_input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { RZ_NEAREST, RZ_LINEAR } rz_mode;
typedef enum {
    CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_HALF_PIXEL_FOR_NN,
    CT_TF_CROP_AND_RESIZE
} rz_ctm;
typedef enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE } rz_nearest;

typedef struct {
    rz_mode mode;
    rz_ctm ctm;
    rz_nearest nearest;
    float extrapolation;
    int roi_in, scales_in, sizes_in; /* input indices, -1 if the opset has none */
    int n_scales_attr;               /* Upsample-7 'scales' attribute; -1 if absent */
    float scales_attr[GB_MAX_DIMS];
} rz_params;

/* One output coordinate along one axis: read (1 - w) * x[i0] + w * x[i1];
 * `outside` for tf_crop_and_resize extrapolation. */
typedef struct {
    int64_t i0, i1;
    float w;
    int outside;
} rz_tap;

static int pick(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static gb_status rz_common_init(gb_ctx *ctx, gb__node *n, rz_params **pp) {
    rz_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    n->params = p;
    p->roi_in = p->scales_in = p->sizes_in = -1;
    p->n_scales_attr = -1;
    p->ctm = CT_ASYMMETRIC;
    p->nearest = NM_SIMPLE;
    const char *mode = gb__attr_str(n, "mode", "nearest");
    if (strcmp(mode, "nearest") == 0) p->mode = RZ_NEAREST;
    else if (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0) p->mode = RZ_LINEAR;
    else
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): mode '%s' is not supported (nearest, linear)", n->name,
                       n->op_type, mode);
    *pp = p;
    return GB_OK;
}

static gb_status upsample_init(gb_ctx *ctx, gb__node *n) {
    bool attr = n->opset < 9;
    gb_status st = gb__check_arity(ctx, n, attr ? 1 : 2, attr ? 1 : 2, 1, 1);
    if (st) return st;
    rz_params *p;
    if ((st = rz_common_init(ctx, n, &p))) return st;
    if (attr) {
        p->n_scales_attr = gb__attr_floats(n, "scales", p->scales_attr, GB_MAX_DIMS);
        if (p->n_scales_attr < 0)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): missing 'scales' attribute (opset %d)", n->name,
                           n->op_type, n->opset);
        if (p->n_scales_attr > GB_MAX_DIMS)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): %d scales (at most %d)", n->name, n->op_type,
                           p->n_scales_attr, GB_MAX_DIMS);
    } else {
        p->scales_in = 1;
    }
    return GB_OK;
}

static gb_status resize_init(gb_ctx *ctx, gb__node *n) {
    bool v10 = n->opset < 11;
    gb_status st = gb__check_arity(ctx, n, v10 ? 2 : n->opset < 13 ? 3 : 1, v10 ? 2 : 4, 1, 1);
    if (st) return st;
    if (v10) n->const_inputs = 1u << 1; /* Resize-10: scales is input 1 */
    rz_params *p;
    if ((st = rz_common_init(ctx, n, &p))) return st;
    if (strcmp(gb__attr_str(n, "mode", "nearest"), "bilinear") == 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): mode 'bilinear' is not supported (nearest, linear)",
                       n->name, n->op_type);
    if (v10) {
        p->scales_in = 1;
        return GB_OK;
    }
    p->roi_in = 1, p->scales_in = 2, p->sizes_in = 3;
    static const char *const ctms[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                       "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *ctm = gb__attr_str(n, "coordinate_transformation_mode", "half_pixel");
    const char *nm = gb__attr_str(n, "nearest_mode", "round_prefer_floor");
    int c = pick(ctm, ctms, 6), m = pick(nm, nms, 4);
    if (c < 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): coordinate_transformation_mode '%s' is not supported",
                       n->name, n->op_type, ctm);
    if (m < 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): nearest_mode '%s' is not supported", n->name, n->op_type,
                       nm);
    p->ctm = (rz_ctm)c;
    p->nearest = (rz_nearest)m;
    p->extrapolation = gb__attr_float(n, "extrapolation_value", 0.0f);
    if (gb__attr_int(n, "exclude_outside", 0) != 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): exclude_outside=1 is not supported", n->name, n->op_type);
    if (gb__attr_int(n, "antialias", 0) != 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): antialias=1 is not supported", n->name, n->op_type);
    if (strcmp(gb__attr_str(n, "keep_aspect_ratio_policy", "stretch"), "stretch") != 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): keep_aspect_ratio_policy '%s' is not supported", n->name,
                       n->op_type, gb__attr_str(n, "keep_aspect_ratio_policy", ""));
    if (gb__attr_find(n, "axes"))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): the 'axes' attribute is not supported", n->name,
                       n->op_type);
    return GB_OK;
}

/* Output dims, per-axis scales, whether sizes were given, and the roi. */
typedef struct {
    int64_t dims[GB_MAX_DIMS];
    double scale[GB_MAX_DIMS];
    bool from_sizes;
    float roi[2 * GB_MAX_DIMS];
} rz_plan;

static gb_status rz_make_plan(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, rz_plan *pl,
                              bool read_roi) {
    const rz_params *p = n->params;
    const gb_tensor *x = in[0];
    int r = x->ndim;
    char xs[128];
    gb_shape_str(r, x->dims, xs, sizeof xs);
    float scales[GB_MAX_DIMS];
    int64_t sizes[GB_MAX_DIMS];
    int nsc = -1, nsz = -1;
    gb_status st;
    if (p->n_scales_attr >= 0) {
        nsc = p->n_scales_attr;
        memcpy(scales, p->scales_attr, sizeof scales);
    } else if ((st = gb__const_floats(ctx, n, in, p->scales_in, "scales", scales, GB_MAX_DIMS, &nsc))) {
        return st;
    }
    if (p->sizes_in >= 0 && (st = gb__const_ints(ctx, n, in, p->sizes_in, "sizes", sizes, GB_MAX_DIMS, &nsz)))
        return st;
    if (nsc == 0) nsc = -1; /* opset 11-12: an empty 'scales' means "use sizes" */
    if ((nsc < 0) == (nsz < 0))
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): exactly one of 'scales' and 'sizes' must be given", n->name,
                       n->op_type);
    if ((nsc >= 0 ? nsc : nsz) != r)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): %d %s for input %s", n->name, n->op_type,
                       nsc >= 0 ? nsc : nsz, nsc >= 0 ? "scales" : "sizes", xs);
    pl->from_sizes = nsz >= 0;
    for (int d = 0; d < r; d++) {
        if (pl->from_sizes) {
            if (sizes[d] < 0)
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): negative size %lld", n->name, n->op_type,
                               (long long)sizes[d]);
            if (x->dims[d] == 0 && sizes[d] != 0)
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): cannot resize the empty axis %d of input %s", n->name,
                               n->op_type, d, xs);
            pl->dims[d] = sizes[d];
            pl->scale[d] = x->dims[d] ? (double)sizes[d] / (double)x->dims[d] : 1.0;
        } else {
            if (!(scales[d] > 0) || isinf(scales[d]))
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): scale %g on axis %d must be positive", n->name,
                               n->op_type, (double)scales[d], d);
            pl->scale[d] = scales[d];
            double len = floor((double)x->dims[d] * (double)scales[d]);
            pl->dims[d] = len > (double)GB_MAX_NUMEL ? -1 : (int64_t)len; /* rejected below */
        }
    }
    if ((st = gb__check_size(ctx, n, r, pl->dims))) return st;
    if (p->ctm == CT_TF_CROP_AND_RESIZE) {
        /* The roi does not change shapes: it need only be known at run time
         * (read_roi is false in infer, where only its size is checked). */
        const gb_tensor *roi = gb__has_input(n, in, p->roi_in) ? in[p->roi_in] : NULL;
        if (!roi || roi->dtype != GB_DTYPE_F32 || roi->ndim != 1 || roi->numel != 2 * r)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): tf_crop_and_resize needs a float32 roi of %d values",
                           n->name, n->op_type, 2 * r);
        if (read_roi)
            for (int k = 0; k < 2 * r; k++) pl->roi[k] = GB_CF32(roi)[k];
    }
    return GB_OK;
}

static gb_status rz_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                          size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const rz_params *p = n->params;
    const gb_tensor *x = in[0];
    if (x->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): input of element type %s (float32 only)", n->name,
                       n->op_type, gb_dtype_name(x->dtype));
    rz_plan pl;
    gb_status st = rz_make_plan(ctx, n, in, &pl, false);
    if (st) return st;
    gb__set_shape(out[0], x->dtype, x->ndim, pl.dims);
    size_t taps = 0;
    int interp = 0;
    for (int d = 0; d < x->ndim; d++) {
        taps += (size_t)pl.dims[d];
        interp += pl.dims[d] != x->dims[d];
    }
    size_t need = taps * sizeof(rz_tap);
    if (need > *ws) *ws = need;
    *flops = (double)out[0]->numel * (p->mode == RZ_LINEAR ? 3.0 * (double)(1 << interp) : 1.0);
    return GB_OK;
}

/* Input coordinate of output coordinate x along an axis (see the header). */
static double rz_coord(rz_ctm ctm, double x, double s, int64_t len, double w, const float *roi, int *outside) {
    double xo = 0;
    *outside = 0;
    switch (ctm) {
    case CT_HALF_PIXEL: xo = (x + 0.5) / s - 0.5; break;
    case CT_PYTORCH_HALF_PIXEL: xo = w > 1 ? (x + 0.5) / s - 0.5 : -0.5; break;
    case CT_ALIGN_CORNERS: xo = w > 1 ? x * (double)(len - 1) / (w - 1) : 0; break;
    case CT_ASYMMETRIC: xo = x / s; break;
    case CT_TF_HALF_PIXEL_FOR_NN: xo = (x + 0.5) / s; break;
    case CT_TF_CROP_AND_RESIZE: {
        double r0 = roi[0], r1 = roi[1];
        xo = w > 1 ? x * (r1 - r0) * (double)(len - 1) / (w - 1) : (r1 - r0) * (double)(len - 1) / 2;
        xo += r0 * (double)(len - 1);
        *outside = xo < 0 || xo > (double)(len - 1);
        break;
    }
    }
    return xo;
}

static int64_t clamp_index(int64_t i, int64_t len) { return i < 0 ? 0 : i >= len ? len - 1 : i; }

/* Fill the taps of one axis. Returns true if any tap interpolates. */
static bool rz_axis_taps(const rz_params *p, const rz_plan *pl, int d, int r, int64_t len, rz_tap *t) {
    int64_t olen = pl->dims[d];
    double s = pl->scale[d];
    double w = pl->from_sizes ? (double)olen : s * (double)len;
    float roi[2] = {pl->roi[d], pl->roi[d + r]};
    bool interp = false;
    for (int64_t o = 0; o < olen; o++) {
        int outside;
        double xo = rz_coord(p->ctm, (double)o, s, len, w, roi, &outside);
        double fl = floor(xo), frac = xo - fl;
        int64_t i0 = (int64_t)fl;
        float wt = 0;
        if (p->mode == RZ_LINEAR) {
            wt = (float)frac;
        } else {
            bool up;
            switch (p->nearest) {
            case NM_ROUND_PREFER_FLOOR: up = frac > 0.5; break;
            case NM_ROUND_PREFER_CEIL: up = frac >= 0.5; break;
            case NM_FLOOR: up = false; break;
            case NM_CEIL: up = frac > 0; break;
            default: up = s < 1 && frac > 0; break; /* NM_SIMPLE */
            }
            i0 += up;
        }
        t[o].i0 = clamp_index(i0, len);
        t[o].i1 = clamp_index(i0 + 1, len);
        t[o].w = wt;
        t[o].outside = outside;
        if (wt != 0 && t[o].i0 != t[o].i1) interp = true;
    }
    return interp;
}

static gb_status rz_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                            const gb__exec *ex) {
    const rz_params *p = n->params;
    const gb_tensor *x = in[0];
    gb_tensor *y = out[0];
    int r = x->ndim;
    if (y->numel == 0) return GB_OK;
    if (r == 0) {
        GB_F32(y)[0] = GB_CF32(x)[0];
        return GB_OK;
    }
    rz_plan pl;
    if (rz_make_plan(NULL, n, (gb_tensor *const *)in, &pl, true)) return GB_ERR_INTERNAL;
    size_t ntaps = 0;
    for (int d = 0; d < r; d++) ntaps += (size_t)y->dims[d];
    if (ex->ws_size < ntaps * sizeof(rz_tap) || !ex->ws) return GB_ERR_INTERNAL;
    rz_tap *taps[GB_MAX_DIMS];
    bool interp[GB_MAX_DIMS];
    rz_tap *t = ex->ws;
    for (int d = 0; d < r; d++) {
        taps[d] = t;
        interp[d] = rz_axis_taps(p, &pl, d, r, x->dims[d], t);
        t += y->dims[d];
    }
    int64_t xst[GB_MAX_DIMS];
    gb__strides(r, x->dims, xst);
    int64_t inner = y->dims[r - 1], rows = y->numel / inner;
    const rz_tap *tl = taps[r - 1];
    bool il = interp[r - 1];
    const float *xd = GB_CF32(x);
    float *yd = GB_F32(y);
    float ext = p->extrapolation;
#pragma omp parallel for num_threads(ex->n_threads) if (y->numel > GB_PAR_MIN / 4)
    for (int64_t row = 0; row < rows; row++) {
        /* Corners over the outer axes: offsets and weights (at most 2^(r-1)). */
        int64_t coff[1 << (GB_MAX_DIMS - 1)];
        float cw[1 << (GB_MAX_DIMS - 1)];
        int nc = 1;
        coff[0] = 0, cw[0] = 1;
        bool outside = false;
        int64_t rem = row;
        for (int d = r - 2; d >= 0; d--) {
            const rz_tap *tp = &taps[d][rem % y->dims[d]];
            rem /= y->dims[d];
            outside |= tp->outside;
            if (interp[d] && tp->w != 0) {
                for (int c = 0; c < nc; c++) {
                    coff[nc + c] = coff[c] + tp->i1 * xst[d];
                    cw[nc + c] = cw[c] * tp->w;
                    coff[c] += tp->i0 * xst[d];
                    cw[c] *= 1 - tp->w;
                }
                nc *= 2;
            } else {
                for (int c = 0; c < nc; c++) coff[c] += tp->i0 * xst[d];
            }
        }
        float *yr = yd + row * inner;
        if (outside) {
            for (int64_t j = 0; j < inner; j++) yr[j] = ext;
            continue;
        }
        for (int64_t j = 0; j < inner; j++) {
            const rz_tap *tj = &tl[j];
            if (tj->outside) {
                yr[j] = ext;
                continue;
            }
            float acc = 0;
            if (il && tj->w != 0) {
                for (int c = 0; c < nc; c++)
                    acc += cw[c] * ((1 - tj->w) * xd[coff[c] + tj->i0] + tj->w * xd[coff[c] + tj->i1]);
            } else {
                for (int c = 0; c < nc; c++) acc += cw[c] * xd[coff[c] + tj->i0];
            }
            yr[j] = acc;
        }
    }
    return GB_OK;
}

/* True if axis d maps output o to input o with one tap (a non-resized N or C). */
static bool rz_identity_axis(const rz_tap *t, bool interp, int64_t olen, int64_t len) {
    if (olen != len) return false;
    for (int64_t o = 0; o < olen; o++)
        if (t[o].outside || t[o].i0 != o || (interp && t[o].w != 0 && t[o].i1 != t[o].i0)) return false;
    return true;
}

/*
 * d roi_start, d roi_end of the sample coordinate x'(o) of tf_crop_and_resize:
 * x' = r0 (L - 1) + o (r1 - r0) (L - 1) / (W - 1), or (r0 + r1) (L - 1) / 2
 * when W <= 1.
 */
static void rz_roi_dcoord(double o, int64_t len, double w, double *d0, double *d1) {
    double l1 = (double)(len - 1);
    if (w > 1) {
        *d1 = l1 * o / (w - 1);
        *d0 = l1 - *d1;
    } else {
        *d0 = *d1 = l1 / 2;
    }
}

/*
 * droi += sum_o dy[o] * d y[o] / d x'_d * d x'_d / d roi, linear mode. For an
 * output element the axes with two distinct taps (A) form 2^|A| corners;
 * d y / d x'_d = sum over corners of (+1 if the corner takes i1 on d, else
 * -1) * prod over the other axes of A of their weight * x[corner]. Serial:
 * only asked for when a graph feeds a run-time roi.
 */
static void rz_roi_backward(const rz_plan *pl, const rz_tap *const *taps, const gb_tensor *x, const gb_tensor *y,
                            const float *dy, float *droi) {
    int r = x->ndim;
    int64_t xst[GB_MAX_DIMS];
    gb__strides(r, x->dims, xst);
    double d0[GB_MAX_DIMS], d1[GB_MAX_DIMS], acc[GB_MAX_DIMS][2];
    for (int d = 0; d < r; d++) acc[d][0] = acc[d][1] = 0;
    for (int64_t e = 0; e < y->numel; e++) {
        const rz_tap *tp[GB_MAX_DIMS];
        int64_t oc[GB_MAX_DIMS], rem = e, base = 0;
        bool outside = false;
        int ax[GB_MAX_DIMS], na = 0;
        for (int d = r - 1; d >= 0; d--) {
            oc[d] = rem % y->dims[d];
            rem /= y->dims[d];
            tp[d] = &taps[d][oc[d]];
            outside |= tp[d]->outside != 0;
        }
        if (outside || dy[e] == 0) continue;
        for (int d = 0; d < r; d++) {
            if (tp[d]->i0 != tp[d]->i1) ax[na++] = d;
            else base += tp[d]->i0 * xst[d];
        }
        double der[GB_MAX_DIMS] = {0};
        for (int c = 0; c < (1 << na); c++) {
            int64_t off = base;
            for (int k = 0; k < na; k++) off += ((c >> k & 1) ? tp[ax[k]]->i1 : tp[ax[k]]->i0) * xst[ax[k]];
            double v = GB_CF32(x)[off];
            for (int k = 0; k < na; k++) {
                double coef = (c >> k & 1) ? 1.0 : -1.0;
                for (int m = 0; m < na; m++)
                    if (m != k) coef *= (c >> m & 1) ? tp[ax[m]]->w : 1.0 - tp[ax[m]]->w;
                der[k] += coef * v;
            }
        }
        for (int k = 0; k < na; k++) {
            int d = ax[k];
            double w = pl->from_sizes ? (double)y->dims[d] : pl->scale[d] * (double)x->dims[d];
            rz_roi_dcoord((double)oc[d], x->dims[d], w, &d0[d], &d1[d]);
            acc[d][0] += dy[e] * der[k] * d0[d];
            acc[d][1] += dy[e] * der[k] * d1[d];
        }
    }
    for (int d = 0; d < r; d++) {
        droi[d] += (float)acc[d][0];
        droi[d + r] += (float)acc[d][1];
    }
}

/*
 * dx = A^T dy, mirroring rz_forward row by row: each output's gradient is
 * spread over the same corners with the same weights. Many outputs share a
 * source pixel, so threads take blocks of the leading identity axes (N, C
 * when only H, W are resized), which own disjoint planes of dx; the rest
 * runs in the same order for any thread count.
 */
static gb_status rz_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                             const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    const rz_params *p = n->params;
    const gb_tensor *x = in[0], *y = out[0];
    if (!dout[0] || x->dtype != GB_DTYPE_F32 || y->numel == 0) return GB_OK;
    float *dx = din[0] ? GB_F32(din[0]) : NULL;
    bool roi_grad = p->ctm == CT_TF_CROP_AND_RESIZE && p->mode == RZ_LINEAR && p->roi_in >= 0 &&
                    p->roi_in < n->n_in && din[p->roi_in];
    if (!dx && !roi_grad) return GB_OK;
    const float *dy = GB_CF32(dout[0]);
    int r = x->ndim;
    if (r == 0) {
        if (dx) dx[0] += dy[0];
        return GB_OK;
    }
    rz_plan pl;
    if (rz_make_plan(NULL, n, (gb_tensor *const *)in, &pl, true)) return GB_ERR_INTERNAL;
    size_t ntaps = 0;
    for (int d = 0; d < r; d++) ntaps += (size_t)y->dims[d];
    if (ex->ws_size < ntaps * sizeof(rz_tap) || !ex->ws) return GB_ERR_INTERNAL;
    rz_tap *taps[GB_MAX_DIMS];
    bool interp[GB_MAX_DIMS];
    rz_tap *t = ex->ws;
    for (int d = 0; d < r; d++) {
        taps[d] = t;
        interp[d] = rz_axis_taps(p, &pl, d, r, x->dims[d], t);
        t += y->dims[d];
    }
    if (roi_grad) rz_roi_backward(&pl, (const rz_tap *const *)taps, x, y, dy, GB_F32(din[p->roi_in]));
    if (!dx) return GB_OK;
    int64_t xst[GB_MAX_DIMS];
    gb__strides(r, x->dims, xst);
    int64_t inner = y->dims[r - 1], rows = y->numel / inner;
    int lead = 0;
    while (lead < r - 1 && rz_identity_axis(taps[lead], interp[lead], y->dims[lead], x->dims[lead])) lead++;
    int64_t nblk = gb__numel(lead, y->dims), per = rows / nblk;
    const rz_tap *tl = taps[r - 1];
    bool il = interp[r - 1];
#pragma omp parallel for num_threads(ex->n_threads) if (y->numel > GB_PAR_MIN / 4)
    for (int64_t blk = 0; blk < nblk; blk++) {
        for (int64_t row = blk * per; row < (blk + 1) * per; row++) {
            int64_t coff[1 << (GB_MAX_DIMS - 1)];
            float cw[1 << (GB_MAX_DIMS - 1)];
            int nc = 1;
            coff[0] = 0, cw[0] = 1;
            bool outside = false;
            int64_t rem = row;
            for (int d = r - 2; d >= 0; d--) {
                const rz_tap *tp = &taps[d][rem % y->dims[d]];
                rem /= y->dims[d];
                outside |= tp->outside;
                if (interp[d] && tp->w != 0) {
                    for (int c = 0; c < nc; c++) {
                        coff[nc + c] = coff[c] + tp->i1 * xst[d];
                        cw[nc + c] = cw[c] * tp->w;
                        coff[c] += tp->i0 * xst[d];
                        cw[c] *= 1 - tp->w;
                    }
                    nc *= 2;
                } else {
                    for (int c = 0; c < nc; c++) coff[c] += tp->i0 * xst[d];
                }
            }
            if (outside) continue;
            const float *g = dy + row * inner;
            for (int64_t j = 0; j < inner; j++) {
                const rz_tap *tj = &tl[j];
                if (tj->outside) continue;
                if (il && tj->w != 0) {
                    for (int c = 0; c < nc; c++) {
                        float gc = cw[c] * g[j];
                        dx[coff[c] + tj->i0] += (1 - tj->w) * gc;
                        dx[coff[c] + tj->i1] += tj->w * gc;
                    }
                } else {
                    for (int c = 0; c < nc; c++) dx[coff[c] + tj->i0] += cw[c] * g[j];
                }
            }
        }
    }
    return GB_OK;
}

/*
 * Plan-time inputs: scales (2) and sizes (3) from opset 11; the roi (1) is a
 * run-time float (tf_crop_and_resize reads it in forward, with a gradient).
 * Resize-10 has scales at input 1: its init sets the node's mask to that.
 */
const gb__op gb__op_Resize = {.name = "Resize", .init = resize_init, .infer = rz_infer, .forward = rz_forward,
                              .backward = rz_backward, .const_inputs = 1u << 2 | 1u << 3};
const gb__op gb__op_Upsample = {.name = "Upsample", .init = upsample_init, .infer = rz_infer,
                                .forward = rz_forward, .backward = rz_backward, .const_inputs = 1u << 1};

const gb__op *const gb__ops_resize[] = {&gb__op_Resize, &gb__op_Upsample, NULL};
