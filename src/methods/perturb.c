/* perturb.c — the perturbation family's shared machinery (perturb.h) and
 * its simplest methods: occlusion, feature_ablation, shapley_sampling.
 * lime and kernel_shap are in perturb_surrogate.c, rise in perturb_rise.c.
 *
 * All of them explain f_n (explain.h's target) with forward passes only, on
 * rows that are item n of x with some elements replaced by the baseline x'
 * (o->baseline: GB_BASELINE_ZERO, or GB_BASELINE_TENSOR of shape (1, ...) or
 * (N, ...); the CLI's `--baseline VALUE` is a constant tensor). Every pass
 * goes through gb__explain_forward_perturbed with the bounding box of the
 * changed pixels when there is one, so incremental inference can recompute
 * only what the box reaches.
 *
 *   occlusion   Zeiler & Fergus 2014, sec. 4.2, as Captum's Occlusion: a
 *               window of o->window pixels over all channels slides with
 *               o->stride from the corner (0, 0) until the whole image is
 *               covered: ceil((H - h) / s) + 1 positions per dimension, the
 *               last one cut off at the edge. Each element's attribution is
 *               the mean over the windows covering it of f(x) - f(x with the
 *               window set to x').
 *   feature_ablation  as Captum's FeatureAblation: feature m's attribution
 *               (on each of its elements) is f(x) - f(x with feature m set
 *               to x').
 *   shapley_sampling  Strumbelj & Kononenko 2010, Algorithm 1 (as Captum's
 *               ShapleyValueSampling): S = o->n_samples (default 25, Captum's)
 *               random permutations of the M features; along each, starting
 *               from x', features are switched to x one at a time and each
 *               receives the change of f; phi = the mean over permutations.
 *               Exact on models additive in the features. The last step of a
 *               permutation is x itself, whose value is known (not re-run).
 *
 * Features (feature_ablation, shapley_sampling, lime, kernel_shap) come from
 * o->feature_mask, else a grid of o->grid cells, else SLIC superpixels
 * (segment.h) of each item with o->segments (default 50) and compactness
 * o->compactness (default 10) computed on the item's channels scaled so that
 * its range is [0, 100] (comparable to CIELAB's L). Inputs that are not 4-D
 * images need a mask with one label per element, or get one feature per
 * element. */
#include "methods/perturb.h"
#include "glassbox/segment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- setup ---------------------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t sz) { return calloc(n ? n : 1, sz); }

gb_status pt_begin(pt_run *pt, gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    memset(pt, 0, sizeof *pt);
    pt->e = e;
    pt->x = x;
    pt->o = o;
    pt->r = r;
    pt->N = x->dims[0];
    pt->D = e->item_numel;
    if (o->layer) return gb__err(ctx, GB_ERR_UNSUPPORTED, "explain: %s has no layer form", r->method);
    if (x->ndim == 4) {
        pt->image = true;
        pt->nhwc = o->layout == GB_LAYOUT_NHWC;
        pt->C = x->dims[pt->nhwc ? 3 : 1];
        pt->H = x->dims[pt->nhwc ? 1 : 2];
        pt->W = x->dims[pt->nhwc ? 2 : 3];
    }
    int64_t N = pt->N, D = pt->D;
    /* Rows per pass: o->batch when given; by default at least 32, the batch
     * incremental inference works in (perturb_pass.c). Full passes still run
     * e->batch rows at a time inside gb__explain_pass, so only the row
     * buffer (B x D floats) grows. */
    pt->B = o->batch > 0 ? o->batch : e->batch > 32 ? e->batch : 32;
    pt->base = malloc((size_t)(N * D) * sizeof *pt->base);
    pt->rows = malloc((size_t)(pt->B * D) * sizeof *pt->rows);
    pt->items = xcalloc((size_t)pt->B, sizeof *pt->items);
    pt->boxes = xcalloc((size_t)(4 * pt->B), sizeof *pt->boxes);
    pt->vals = xcalloc((size_t)pt->B, sizeof *pt->vals);
    if (!pt->base || !pt->rows || !pt->items || !pt->boxes || !pt->vals)
        return gb__err(ctx, GB_ERR_NOMEM, "explain: %s: out of memory for %lld rows of %lld elements", r->method,
                       (long long)pt->B, (long long)D);
    switch (o->baseline) {
    case GB_BASELINE_ZERO:
        memset(pt->base, 0, (size_t)(N * D) * sizeof *pt->base);
        break;
    case GB_BASELINE_TENSOR: {
        const gb_tensor *b = o->baseline_tensor;
        if (!b || b->dtype != GB_DTYPE_F32 || !b->data)
            return gb__err(ctx, GB_ERR_ARG, "explain: %s: the baseline must be a float32 tensor", r->method);
        if (b->numel != D && b->numel != N * D) {
            char shp[128];
            gb_shape_str(b->ndim, b->dims, shp, sizeof shp);
            return gb__err(ctx, GB_ERR_SHAPE, "explain: %s: baseline of shape %s for %lld item(s) of %lld elements",
                           r->method, shp, (long long)N, (long long)D);
        }
        for (int64_t n = 0; n < N; n++)
            memcpy(pt->base + n * D, (const float *)b->data + (b->numel == D ? 0 : n * D), (size_t)D * sizeof(float));
        break;
    }
    default:
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "explain: %s: baseline must be zero, a value or a tensor (blur and uniform baselines are for "
                       "gradient methods)",
                       r->method);
    }
    return GB_OK;
}

void pt_end(pt_run *pt) {
    free(pt->base);
    free(pt->rows);
    free(pt->items);
    free(pt->boxes);
    free(pt->vals);
    memset(pt, 0, sizeof *pt);
}

gb_status pt_pass(pt_run *pt, int64_t b, bool with_boxes) {
    if (b <= 0) return GB_OK;
    gb_status st = gb__explain_forward_perturbed(pt->e, pt->r, pt->x, pt->rows, b, pt->items,
                                                 with_boxes && pt->image ? pt->boxes : NULL, pt->vals);
    if (st) return st;
    pt->done += b;
    if (pt->o->progress) pt->o->progress(pt->o->progress_user, pt->done, pt->total > pt->done ? pt->total : pt->done);
    return GB_OK;
}

void pt_row_x(pt_run *pt, int64_t k, int64_t n) {
    memcpy(pt->rows + k * pt->D, (const float *)pt->x->data + n * pt->D, (size_t)pt->D * sizeof(float));
    pt->items[k] = n;
}

void pt_row_base(pt_run *pt, int64_t k, int64_t n) {
    memcpy(pt->rows + k * pt->D, pt->base + n * pt->D, (size_t)pt->D * sizeof(float));
    pt->items[k] = n;
}

void pt_feature_base(pt_run *pt, const pt_features *f, int64_t k, int64_t n, int64_t m) {
    float *row = pt->rows + k * pt->D;
    const float *b = pt->base + n * pt->D;
    for (int64_t i = f->start[m]; i < f->start[m + 1]; i++) row[f->elem[i]] = b[f->elem[i]];
}

void pt_feature_x(pt_run *pt, const pt_features *f, int64_t k, int64_t n, int64_t m) {
    float *row = pt->rows + k * pt->D;
    const float *xv = (const float *)pt->x->data + n * pt->D;
    for (int64_t i = f->start[m]; i < f->start[m + 1]; i++) row[f->elem[i]] = xv[f->elem[i]];
}

gb_status pt_baseline_values(pt_run *pt, double *vals) {
    for (int64_t n0 = 0; n0 < pt->N; n0 += pt->B) {
        int64_t b = pt->N - n0 < pt->B ? pt->N - n0 : pt->B;
        for (int64_t k = 0; k < b; k++) pt_row_base(pt, k, n0 + k);
        gb_status st = pt_pass(pt, b, false);
        if (st) return st;
        memcpy(vals + n0, pt->vals, (size_t)b * sizeof *vals);
    }
    return GB_OK;
}

/* ---- features ------------------------------------------------------------------------- */

/* Element index of (c, h, w) within an item. */
static int64_t elem_at(const pt_run *pt, int64_t c, int64_t h, int64_t w) {
    return pt->nhwc ? (h * pt->W + w) * pt->C + c : (c * pt->H + h) * pt->W + w;
}

/* Label i of a mask tensor of any numeric dtype; false if not an integer >= 0. */
static bool mask_label(const gb_tensor *t, int64_t i, int64_t *out) {
    double v;
    switch (t->dtype) {
    case GB_DTYPE_I64: *out = ((const int64_t *)t->data)[i]; return *out >= 0 && *out < ((int64_t)1 << 31);
    case GB_DTYPE_U8: *out = ((const uint8_t *)t->data)[i]; return true;
    case GB_DTYPE_F32: v = ((const float *)t->data)[i]; break;
    case GB_DTYPE_F64: v = ((const double *)t->data)[i]; break;
    default: return false;
    }
    if (!(v >= 0 && v < 2147483648.0) || v != floor(v)) return false;
    *out = (int64_t)v;
    return true;
}

/* SLIC on item n: (C, H, W) channels scaled so the item's range is [0, 100]. */
static gb_status slic_item(pt_run *pt, int64_t n, gb_tensor **out) {
    int64_t dims[3] = {pt->C, pt->H, pt->W};
    gb_tensor *im = NULL;
    gb_status st = gb_tensor_create(pt->e->ctx, GB_DTYPE_F32, 3, dims, &im);
    if (st) return st;
    const float *xv = (const float *)pt->x->data + n * pt->D;
    float lo, hi;
    gb__minmax(xv, pt->D, &lo, &hi);
    float scale = hi > lo ? 100.0f / (hi - lo) : 0.0f, *d = im->data;
    for (int64_t c = 0; c < pt->C; c++)
        for (int64_t h = 0; h < pt->H; h++)
            for (int64_t w = 0; w < pt->W; w++)
                d[(c * pt->H + h) * pt->W + w] = (xv[elem_at(pt, c, h, w)] - lo) * scale;
    int segs = pt->o->segments > 0 ? pt->o->segments : 50;
    double m = pt->o->compactness > 0 ? pt->o->compactness : 10.0;
    st = gb_segment_slic(pt->e->ctx, im, segs, m, out);
    gb_tensor_free(im);
    return st;
}

gb_status pt_features_make(pt_run *pt, int64_t n, pt_features *f) {
    gb_ctx *ctx = pt->e->ctx;
    const gb_explain_opts *o = pt->o;
    memset(f, 0, sizeof *f);
    int64_t D = pt->D, HW = pt->H * pt->W;
    gb_tensor *map = NULL;   /* a compact spatial map, when one is made here */
    gb_status st = GB_OK;
    int64_t L;               /* labels: HW (spatial) or D */
    if (o->feature_mask) {
        const gb_tensor *t = o->feature_mask;
        int64_t off;
        /* (N, H, W) or (N, 1, H, W): one map per item (told apart by shape from a
         * per-element (1, C, H, W) mask when N == C) */
        bool per_item = pt->image && pt->N > 1 && t->numel == pt->N * HW && t->ndim >= 1 && t->dims[0] == pt->N &&
                        (t->ndim == 3 || (t->ndim == 4 && t->dims[1] == 1));
        if (pt->image && t->numel == HW) f->spatial = true, off = 0;
        else if (per_item) f->spatial = true, off = n * HW;
        else if (t->numel == D) off = 0;
        else if (pt->N > 1 && t->numel == pt->N * D) off = n * D;
        else {
            char shp[128];
            gb_shape_str(t->ndim, t->dims, shp, sizeof shp);
            return gb__err(ctx, GB_ERR_SHAPE,
                           "explain: %s: feature mask of shape %s fits neither the image (H x W = %lld x %lld, per item "
                           "or for all) nor one item (%lld elements)",
                           pt->r->method, shp, (long long)pt->H, (long long)pt->W, (long long)D);
        }
        L = f->spatial ? HW : D;
        int64_t dims[1] = {L};
        if ((st = gb_tensor_create(ctx, GB_DTYPE_I64, 1, dims, &map))) return st;
        int64_t *l = map->data;
        for (int64_t i = 0; i < L; i++)
            if (!mask_label(t, off + i, &l[i])) {
                gb_tensor_free(map);
                return gb__err(ctx, GB_ERR_ARG, "explain: %s: feature mask value at %lld is not an integer in 0..2^31-1",
                               pt->r->method, (long long)(off + i));
            }
        gb_segment_compact(map);
    } else if (pt->image && o->grid[0] > 0 && o->grid[1] > 0) {
        f->spatial = true;
        if ((st = gb_segment_grid(ctx, pt->H, pt->W, o->grid[0], o->grid[1], &map))) return st;
        gb_segment_compact(map);
    } else if (pt->image) {
        f->spatial = true;
        if ((st = slic_item(pt, n, &map))) return st;
    } else {
        int64_t dims[1] = {D};
        if ((st = gb_tensor_create(ctx, GB_DTYPE_I64, 1, dims, &map))) return st;
        for (int64_t i = 0; i < D; i++) ((int64_t *)map->data)[i] = i;
    }
    L = f->spatial ? HW : D;
    f->label = malloc((size_t)L * sizeof *f->label);
    if (!f->label) {
        gb_tensor_free(map);
        return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    memcpy(f->label, map->data, (size_t)L * sizeof *f->label);
    gb_tensor_free(map);
    f->M = gb_segment_count(&(gb_tensor){.dtype = GB_DTYPE_I64, .ndim = 1, .dims = {L}, .numel = L, .data = f->label});
    /* group the elements by feature (counting sort, increasing element order) */
    f->start = calloc((size_t)(f->M + 1), sizeof *f->start);
    f->elem = malloc((size_t)D * sizeof *f->elem);
    int64_t *feat_of = malloc((size_t)D * sizeof *feat_of);
    if (pt->image) f->box = malloc((size_t)(4 * f->M) * sizeof *f->box);
    if (!f->start || !f->elem || !feat_of || (pt->image && !f->box)) {
        free(feat_of);
        pt_features_free(f);
        return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    if (f->spatial) {
        for (int64_t c = 0; c < pt->C; c++)
            for (int64_t h = 0; h < pt->H; h++)
                for (int64_t w = 0; w < pt->W; w++) feat_of[elem_at(pt, c, h, w)] = f->label[h * pt->W + w];
    } else {
        memcpy(feat_of, f->label, (size_t)D * sizeof *feat_of);
    }
    for (int64_t i = 0; i < D; i++) f->start[feat_of[i] + 1]++;
    for (int64_t m = 0; m < f->M; m++) f->start[m + 1] += f->start[m];
    int64_t *fill = malloc((size_t)(f->M + 1) * sizeof *fill);
    if (!fill) {
        free(feat_of);
        pt_features_free(f);
        return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    memcpy(fill, f->start, (size_t)(f->M + 1) * sizeof *fill);
    for (int64_t i = 0; i < D; i++) f->elem[fill[feat_of[i]]++] = i;
    free(fill);
    if (f->box) {
        for (int64_t m = 0; m < f->M; m++) {
            int64_t *b = f->box + 4 * m;
            b[0] = pt->H, b[1] = 0, b[2] = pt->W, b[3] = 0;
        }
        for (int64_t c = 0; c < pt->C; c++)
            for (int64_t h = 0; h < pt->H; h++)
                for (int64_t w = 0; w < pt->W; w++) {
                    int64_t *b = f->box + 4 * feat_of[elem_at(pt, c, h, w)];
                    if (h < b[0]) b[0] = h;
                    if (h + 1 > b[1]) b[1] = h + 1;
                    if (w < b[2]) b[2] = w;
                    if (w + 1 > b[3]) b[3] = w + 1;
                }
    }
    free(feat_of);
    return GB_OK;
}

void pt_features_free(pt_features *f) {
    free(f->start);
    free(f->elem);
    free(f->box);
    free(f->label);
    memset(f, 0, sizeof *f);
}

gb_status pt_features_all(pt_run *pt, pt_features **out) {
    *out = NULL;
    pt_features *fs = calloc((size_t)pt->N, sizeof *fs);
    if (!fs) return gb__err(pt->e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    gb_status st = GB_OK;
    for (int64_t n = 0; n < pt->N && !st; n++) st = pt_features_make(pt, n, &fs[n]);
    /* record the maps: (N, H, W) when every item's is spatial, else (N, D) */
    bool spatial = true;
    for (int64_t n = 0; n < pt->N && !st; n++) spatial &= fs[n].spatial;
    if (!st) {
        int64_t L = spatial ? pt->H * pt->W : pt->D;
        int64_t dims[3] = {pt->N, spatial ? pt->H : pt->D, pt->W};
        gb_tensor_free(pt->r->features);
        pt->r->features = NULL;
        st = gb_tensor_create(pt->e->ctx, GB_DTYPE_I64, spatial ? 3 : 2, dims, &pt->r->features);
        for (int64_t n = 0; n < pt->N && !st; n++) {
            int64_t *dst = (int64_t *)pt->r->features->data + n * L;
            if (fs[n].spatial == spatial) {
                memcpy(dst, fs[n].label, (size_t)L * sizeof *dst);
            } else {   /* a spatial map among per-element ones: broadcast it */
                for (int64_t c = 0; c < pt->C; c++)
                    for (int64_t h = 0; h < pt->H; h++)
                        for (int64_t w = 0; w < pt->W; w++) dst[elem_at(pt, c, h, w)] = fs[n].label[h * pt->W + w];
            }
        }
    }
    if (st) {
        pt_features_all_free(pt, fs);
        return st;
    }
    *out = fs;
    return GB_OK;
}

void pt_features_all_free(pt_run *pt, pt_features *fs) {
    if (!fs) return;
    for (int64_t n = 0; n < pt->N; n++) pt_features_free(&fs[n]);
    free(fs);
}

void pt_attr_features(pt_run *pt, int64_t n, const pt_features *f, const double *phi) {
    float *a = (float *)pt->r->attr->data + n * pt->D;
    for (int64_t m = 0; m < f->M; m++)
        for (int64_t i = f->start[m]; i < f->start[m + 1]; i++) a[f->elem[i]] = (float)phi[m];
}

/* ---- occlusion ------------------------------------------------------------------------- */

static gb_status occlusion(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    pt_run pt;
    gb_status st = pt_begin(&pt, e, x, o, r);
    double *acc = NULL;
    int64_t *cnt = NULL;
    if (st) goto done;
    if (!pt.image) {
        st = gb__err(ctx, GB_ERR_UNSUPPORTED, "explain: occlusion needs a 4-D image input (this one is %d-D); "
                     "use feature_ablation with a mask", x->ndim);
        goto done;
    }
    int64_t H = pt.H, W = pt.W;
    int64_t wh = o->window[0] > 0 ? o->window[0] : (H + 7) / 8, ww = o->window[1] > 0 ? o->window[1] : (W + 7) / 8;
    int64_t sh = o->stride[0] > 0 ? o->stride[0] : (wh + 1) / 2, sw = o->stride[1] > 0 ? o->stride[1] : (ww + 1) / 2;
    if (wh > H || ww > W) {
        st = gb__err(ctx, GB_ERR_ARG, "explain: occlusion window %lldx%lld is larger than the %lldx%lld image",
                     (long long)wh, (long long)ww, (long long)H, (long long)W);
        goto done;
    }
    /* Captum's rule: a stride longer than the window would leave pixels never occluded */
    if ((wh < H && sh > wh) || (ww < W && sw > ww)) {
        st = gb__err(ctx, GB_ERR_ARG, "explain: occlusion stride %lldx%lld is longer than the window %lldx%lld "
                     "(pixels would never be occluded)",
                     (long long)sh, (long long)sw, (long long)wh, (long long)ww);
        goto done;
    }
    int64_t nh = (H - wh + sh - 1) / sh + 1, nw = (W - ww + sw - 1) / sw + 1, P = nh * nw;
    if ((st = gb__explain_alloc_attr(e, r, NULL))) goto done;
    acc = calloc((size_t)(H * W), sizeof *acc);
    cnt = calloc((size_t)(H * W), sizeof *cnt);
    if (!acc || !cnt) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto done;
    }
    pt.total = pt.N * P;
    for (int64_t n = 0; n < pt.N; n++) {
        memset(acc, 0, (size_t)(H * W) * sizeof *acc);
        memset(cnt, 0, (size_t)(H * W) * sizeof *cnt);
        const float *xv = (const float *)x->data + n * pt.D;
        const float *bv = pt.base + n * pt.D;
        for (int64_t p0 = 0; p0 < P; p0 += pt.B) {
            int64_t b = P - p0 < pt.B ? P - p0 : pt.B;
            for (int64_t k = 0; k < b; k++) {
                int64_t p = p0 + k, h0 = (p / nw) * sh, w0 = (p % nw) * sw;
                int64_t h1 = h0 + wh < H ? h0 + wh : H, w1 = w0 + ww < W ? w0 + ww : W;
                float *row = pt.rows + k * pt.D;
                memcpy(row, xv, (size_t)pt.D * sizeof *row);
                for (int64_t c = 0; c < pt.C; c++)
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) {
                            int64_t i = elem_at(&pt, c, h, w);
                            row[i] = bv[i];
                        }
                pt.items[k] = n;
                int64_t *bx = pt.boxes + 4 * k;
                bx[0] = h0, bx[1] = h1, bx[2] = w0, bx[3] = w1;
            }
            if ((st = pt_pass(&pt, b, true))) goto done;
            for (int64_t k = 0; k < b; k++) {
                const int64_t *bx = pt.boxes + 4 * k;
                double d = r->value[n] - pt.vals[k];
                for (int64_t h = bx[0]; h < bx[1]; h++)
                    for (int64_t w = bx[2]; w < bx[3]; w++) {
                        acc[h * W + w] += d;
                        cnt[h * W + w]++;
                    }
            }
        }
        float *a = (float *)r->attr->data + n * pt.D;
        for (int64_t c = 0; c < pt.C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++)
                    a[elem_at(&pt, c, h, w)] = cnt[h * W + w] ? (float)(acc[h * W + w] / (double)cnt[h * W + w]) : 0.0f;
    }
done:
    free(acc);
    free(cnt);
    pt_end(&pt);
    return st;
}

/* ---- feature ablation ------------------------------------------------------------------ */

static gb_status feature_ablation(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    pt_run pt;
    pt_features *fs = NULL;
    double *phi = NULL;
    gb_status st = pt_begin(&pt, e, x, o, r);
    if (!st) st = pt_features_all(&pt, &fs);
    if (!st) st = gb__explain_alloc_attr(e, r, NULL);
    if (st) goto done;
    int64_t Mmax = 0;
    for (int64_t n = 0; n < pt.N; n++) {
        pt.total += fs[n].M;
        if (fs[n].M > Mmax) Mmax = fs[n].M;
    }
    if (!(phi = calloc((size_t)Mmax, sizeof *phi))) {
        st = gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto done;
    }
    for (int64_t n = 0; n < pt.N; n++) {
        const pt_features *f = &fs[n];
        for (int64_t m0 = 0; m0 < f->M; m0 += pt.B) {
            int64_t b = f->M - m0 < pt.B ? f->M - m0 : pt.B;
            for (int64_t k = 0; k < b; k++) {
                pt_row_x(&pt, k, n);
                pt_feature_base(&pt, f, k, n, m0 + k);
                if (f->box) memcpy(pt.boxes + 4 * k, f->box + 4 * (m0 + k), 4 * sizeof *pt.boxes);
            }
            if ((st = pt_pass(&pt, b, true))) goto done;
            for (int64_t k = 0; k < b; k++) phi[m0 + k] = r->value[n] - pt.vals[k];
        }
        pt_attr_features(&pt, n, f, phi);
    }
done:
    free(phi);
    pt_features_all_free(&pt, fs);
    pt_end(&pt);
    return st;
}

/* ---- Shapley value sampling --------------------------------------------------------------- */

static gb_status shapley_sampling(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    pt_run pt;
    pt_features *fs = NULL;
    double *phi = NULL, *fb = NULL;
    int64_t *perm = NULL, *rbox = NULL;
    gb_status st = pt_begin(&pt, e, x, o, r);
    if (!st) st = pt_features_all(&pt, &fs);
    if (!st) st = gb__explain_alloc_attr(e, r, NULL);
    if (st) goto done;
    int64_t S = gb__opt_samples(o, 25), Mmax = 0;
    for (int64_t n = 0; n < pt.N; n++) {
        pt.total += S * (fs[n].M - 1);
        if (fs[n].M > Mmax) Mmax = fs[n].M;
    }
    pt.total += pt.N;
    phi = calloc((size_t)Mmax, sizeof *phi);
    perm = calloc((size_t)Mmax, sizeof *perm);
    rbox = calloc((size_t)(4 * (Mmax + 1)), sizeof *rbox);
    fb = calloc((size_t)pt.N, sizeof *fb);
    r->delta = calloc((size_t)pt.N, sizeof *r->delta);
    r->baseline_value = calloc((size_t)pt.N, sizeof *r->baseline_value);
    if (!phi || !perm || !rbox || !fb || !r->delta || !r->baseline_value) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto done;
    }
    if ((st = pt_baseline_values(&pt, fb))) goto done;
    gb__rng g;
    gb__rng_seed(&g, o->seed);
    for (int64_t n = 0; n < pt.N; n++) {
        const pt_features *f = &fs[n];
        int64_t M = f->M;
        memset(phi, 0, (size_t)M * sizeof *phi);
        for (int64_t s = 0; s < S; s++) {
            if (o->fixed_perms) {
                const int64_t *fp = o->fixed_perms + (n * S + s) * M;
                for (int64_t j = 0; j < M; j++) {
                    if (fp[j] < 0 || fp[j] >= M) {
                        st = gb__err(ctx, GB_ERR_ARG, "explain: fixed permutation %lld holds %lld (M = %lld)",
                                     (long long)(n * S + s), (long long)fp[j], (long long)M);
                        goto done;
                    }
                    perm[j] = fp[j];
                }
            } else {   /* Fisher-Yates */
                for (int64_t j = 0; j < M; j++) perm[j] = j;
                for (int64_t j = M - 1; j > 0; j--) {
                    int64_t t = (int64_t)gb__rng_below(&g, (uint64_t)(j + 1)), v = perm[j];
                    perm[j] = perm[t];
                    perm[t] = v;
                }
            }
            /* rbox[j]: the box of the features still at the baseline after step j
             * (perm[j + 1..M)): the pixels where that row differs from x */
            if (f->box) {
                int64_t *acc = rbox + 4 * M;
                acc[0] = pt.H, acc[1] = 0, acc[2] = pt.W, acc[3] = 0;
                for (int64_t j = M - 1; j >= 0; j--) {
                    int64_t *bj = rbox + 4 * j;
                    memcpy(bj, rbox + 4 * (j + 1), 4 * sizeof *bj);
                    if (j + 1 < M) {
                        const int64_t *fbx = f->box + 4 * perm[j + 1];
                        if (fbx[0] < bj[0]) bj[0] = fbx[0];
                        if (fbx[1] > bj[1]) bj[1] = fbx[1];
                        if (fbx[2] < bj[2]) bj[2] = fbx[2];
                        if (fbx[3] > bj[3]) bj[3] = fbx[3];
                    }
                }
            }
            /* the walk x' -> x: row j has features perm[0..j] at x; the last
             * (j = M - 1) is x itself */
            double prev = fb[n];
            float *cur = pt.rows;   /* row 0 carries the walk; later rows copy it */
            pt_row_base(&pt, 0, n);
            for (int64_t j0 = 0; j0 < M - 1; j0 += pt.B) {
                int64_t b = M - 1 - j0 < pt.B ? M - 1 - j0 : pt.B;
                for (int64_t k = 0; k < b; k++) {
                    if (k > 0) memcpy(pt.rows + k * pt.D, pt.rows + (k - 1) * pt.D, (size_t)pt.D * sizeof *cur);
                    pt_feature_x(&pt, f, k, n, perm[j0 + k]);
                    pt.items[k] = n;
                    if (f->box) {
                        const int64_t *rb = rbox + 4 * (j0 + k);
                        bool empty = rb[0] >= rb[1];
                        int64_t *bx = pt.boxes + 4 * k;
                        bx[0] = empty ? 0 : rb[0], bx[1] = empty ? 0 : rb[1];
                        bx[2] = empty ? 0 : rb[2], bx[3] = empty ? 0 : rb[3];
                    }
                }
                if ((st = pt_pass(&pt, b, f->box != NULL))) goto done;
                for (int64_t k = 0; k < b; k++) {
                    phi[perm[j0 + k]] += pt.vals[k] - prev;
                    prev = pt.vals[k];
                }
                /* carry the walk on from the last row of this batch */
                if (b > 1) memcpy(pt.rows, pt.rows + (b - 1) * pt.D, (size_t)pt.D * sizeof *cur);
            }
            phi[perm[M - 1]] += r->value[n] - prev;
        }
        double sum = 0;
        for (int64_t m = 0; m < M; m++) {
            phi[m] /= (double)S;
            sum += phi[m];
        }
        r->baseline_value[n] = fb[n];
        r->delta[n] = sum - (r->value[n] - fb[n]);
        pt_attr_features(&pt, n, f, phi);
    }
done:
    free(phi);
    free(perm);
    free(rbox);
    free(fb);
    pt_features_all_free(&pt, fs);
    pt_end(&pt);
    return st;
}

const gb_method gb__methods_perturb[] = {
    {"occlusion", occlusion, GB_HEATMAP_SIGNED, 0, "Zeiler & Fergus 2014",
     "f(x) - f(x with a sliding window set to the baseline), averaged per pixel"},
    {"feature_ablation", feature_ablation, GB_HEATMAP_SIGNED, 0, "Captum's FeatureAblation",
     "f(x) - f(x with one feature (superpixel, grid cell, label) set to the baseline)"},
    {"shapley_sampling", shapley_sampling, GB_HEATMAP_SIGNED, GB_METHOD_DELTA | GB_METHOD_RANDOM,
     "Strumbelj & Kononenko 2010", "Shapley values of the features by permutation sampling"},
    {"rise", gb__perturb_rise, GB_HEATMAP_MAGNITUDE, GB_METHOD_RANDOM, "Petsiuk et al. 2018",
     "mean of f over random smooth masks, weighted by each pixel's mask"},
    {"lime", gb__perturb_lime, GB_HEATMAP_SIGNED, GB_METHOD_RANDOM, "Ribeiro et al. 2016",
     "weights of a local linear surrogate over features switched on and off"},
    {"kernel_shap", gb__perturb_kernel_shap, GB_HEATMAP_SIGNED, GB_METHOD_DELTA | GB_METHOD_RANDOM,
     "Lundberg & Lee 2017", "Shapley values of the features by weighted linear regression"},
    {0},
};
