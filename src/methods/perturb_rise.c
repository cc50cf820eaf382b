/* perturb_rise.c — RISE (Petsiuk, Das & Saenko 2018, "RISE: Randomized Input
 * Sampling for Explanation of Black-box Models", sec. 3, eq. 6 and the mask
 * generation of sec. 3.2), following the authors' code (explanations.py):
 *
 *   N = o->n_samples masks (default 1000); each a binary s x s grid
 *   (s = o->rise_cells, default 7) with P(1) = p (o->rise_p, default 0.5),
 *   upsampled bilinearly (align_corners = False) to (s + 1) c_h x (s + 1) c_w
 *   with cells c = ceil(H / s) x ceil(W / s), then cropped to H x W at a
 *   random shift (0..c_h - 1, 0..c_w - 1): smooth masks M_i in [0, 1].
 *   The masked input is M x + (1 - M) x' (x' = 0 is the paper's x . M), the
 *   same mask on every channel, and
 *       S(pixel) = 1 / (N p) sum_i f(M_i x + (1 - M_i) x') M_i(pixel)
 *   (eq. 6 with E[M] = p). attr has the input's shape (S on each channel).
 * Masks are drawn from o->seed; every item gets the same N masks. */
#include "methods/perturb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* (h, w) -> (H, W) bilinear, align_corners = False (as cam.c and torch). */
static void upsample(const float *src, int64_t h, int64_t w, float *dst, int64_t H, int64_t W) {
    float sh = (float)h / (float)H, sw = (float)w / (float)W;
    for (int64_t y = 0; y < H; y++) {
        float sy = sh * ((float)y + 0.5f) - 0.5f;
        if (sy < 0) sy = 0;
        int64_t y0 = (int64_t)sy, y1 = y0 + (y0 < h - 1);
        float ly = sy - (float)y0;
        for (int64_t x = 0; x < W; x++) {
            float sx = sw * ((float)x + 0.5f) - 0.5f;
            if (sx < 0) sx = 0;
            int64_t x0 = (int64_t)sx, x1 = x0 + (x0 < w - 1);
            float lx = sx - (float)x0;
            dst[y * W + x] = (1 - ly) * ((1 - lx) * src[y0 * w + x0] + lx * src[y0 * w + x1]) +
                             ly * ((1 - lx) * src[y1 * w + x0] + lx * src[y1 * w + x1]);
        }
    }
}

gb_status gb__perturb_rise(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    pt_run pt;
    float *masks = NULL, *grid = NULL, *up = NULL;
    double *acc = NULL;
    gb_status st = pt_begin(&pt, e, x, o, r);
    if (st) goto done;
    if (!pt.image) {
        st = gb__err(ctx, GB_ERR_UNSUPPORTED, "explain: rise needs a 4-D image input (this one is %d-D)", x->ndim);
        goto done;
    }
    int64_t s = o->rise_cells > 0 ? o->rise_cells : 7, S = gb__opt_samples(o, 1000), H = pt.H, W = pt.W, HW = H * W;
    double p = o->rise_p > 0 ? o->rise_p : 0.5;
    if (p > 1) {
        st = gb__err(ctx, GB_ERR_ARG, "explain: rise keep probability %g is not in (0, 1]", p);
        goto done;
    }
    int64_t ch = (H + s - 1) / s, cw = (W + s - 1) / s, UH = (s + 1) * ch, UW = (s + 1) * cw;
    if ((st = gb__explain_alloc_attr(e, r, NULL))) goto done;
    masks = malloc((size_t)(pt.B * HW) * sizeof *masks);
    grid = malloc((size_t)(s * s) * sizeof *grid);
    up = malloc((size_t)(UH * UW) * sizeof *up);
    acc = calloc((size_t)HW, sizeof *acc);
    if (!masks || !grid || !up || !acc) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto done;
    }
    pt.total = pt.N * S;
    for (int64_t n = 0; n < pt.N; n++) {
        gb__rng g;   /* the same masks for every item */
        gb__rng_seed(&g, o->seed);
        memset(acc, 0, (size_t)HW * sizeof *acc);
        const float *xv = (const float *)x->data + n * pt.D, *bv = pt.base + n * pt.D;
        for (int64_t s0 = 0; s0 < S; s0 += pt.B) {
            int64_t b = S - s0 < pt.B ? S - s0 : pt.B;
            for (int64_t k = 0; k < b; k++) {
                for (int64_t i = 0; i < s * s; i++) grid[i] = gb__rng_uniform(&g) < p ? 1.0f : 0.0f;
                int64_t dy = (int64_t)gb__rng_below(&g, (uint64_t)ch), dx = (int64_t)gb__rng_below(&g, (uint64_t)cw);
                upsample(grid, s, s, up, UH, UW);
                float *mk = masks + k * HW, *row = pt.rows + k * pt.D;
                for (int64_t h = 0; h < H; h++) memcpy(mk + h * W, up + (h + dy) * UW + dx, (size_t)W * sizeof *mk);
                for (int64_t c = 0; c < pt.C; c++)
                    for (int64_t h = 0; h < H; h++)
                        for (int64_t w = 0; w < W; w++) {
                            int64_t i = pt.nhwc ? (h * W + w) * pt.C + c : (c * H + h) * W + w;
                            float m = mk[h * W + w];
                            row[i] = m * xv[i] + (1 - m) * bv[i];
                        }
                pt.items[k] = n;
            }
            if ((st = pt_pass(&pt, b, false))) goto done;
            for (int64_t k = 0; k < b; k++)
                for (int64_t i = 0; i < HW; i++) acc[i] += pt.vals[k] * masks[k * HW + i];
        }
        float *a = (float *)r->attr->data + n * pt.D;
        for (int64_t c = 0; c < pt.C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    int64_t i = pt.nhwc ? (h * W + w) * pt.C + c : (c * H + h) * W + w;
                    a[i] = (float)(acc[h * W + w] / ((double)S * p));
                }
    }
done:
    free(masks);
    free(grid);
    free(up);
    free(acc);
    pt_end(&pt);
    return st;
}
