/* visualize_invert.c — network inversion (Mahendran & Vedaldi 2015,
 * "Understanding Deep Image Representations by Inverting Them") and the
 * feature perturbations of Dosovitskiy & Brox 2016 ("Inverting Visual
 * Representations with Convolutional Networks", sec. 5.2) that show what
 * information a layer keeps. */
#include "methods/visualize_internal.h"
#include "engine/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gb_status gb_features_perturb(gb_ctx *ctx, gb_tensor *feat, gb_feature_perturb kind, double p, uint64_t seed) {
    if (!feat || feat->dtype != GB_DTYPE_F32 || feat->ndim < 1)
        return gb__err(ctx, GB_ERR_ARG, "perturb: need a float32 (N, ...) tensor");
    if (kind < 0 || kind >= GB_PERTURB_COUNT) return gb__err(ctx, GB_ERR_ARG, "perturb: unknown kind");
    if (p == 0) p = 0.5;
    if (!(p > 0 && p < 1)) return gb__err(ctx, GB_ERR_ARG, "perturb: dropout rate %g must be in (0, 1)", p);
    int64_t N = feat->dims[0], D = N ? feat->numel / N : 0;
    float *f = feat->data;
    gb__rng rng;
    gb__rng_seed(&rng, seed);
    for (int64_t n = 0; n < N; n++) {
        float *v = f + n * D;
        if (kind == GB_PERTURB_BINARIZE) {
            /* Keep the signs, make the magnitudes equal, keep the L2 norm:
             * a = ||v|| / sqrt(#non-zero). */
            double n2 = 0;
            int64_t nz = 0;
            for (int64_t i = 0; i < D; i++) n2 += (double)v[i] * v[i], nz += v[i] != 0;
            float a = nz ? (float)(sqrt(n2) / sqrt((double)nz)) : 0;
            for (int64_t i = 0; i < D; i++) v[i] = v[i] > 0 ? a : v[i] < 0 ? -a : 0;
        } else if (kind == GB_PERTURB_DROPOUT) {
            float keep = (float)(1.0 / (1.0 - p));
            for (int64_t i = 0; i < D; i++) v[i] = gb__rng_uniform(&rng) < p ? 0 : v[i] * keep;
        }
    }
    return GB_OK;
}

static gb_status check_opts(gb_ctx *ctx, const gb_invert_opts *o) {
    if (o->steps < 0 || o->steps > 1000000 || !(o->lr > 0) || !(o->init_sd >= 0) || !(o->alpha >= 1) ||
        !(o->alpha_weight >= 0) || !(o->tv_weight >= 0) || !(o->tv_beta >= 1) || !(o->jitter >= 0))
        return gb__err(ctx, GB_ERR_ARG,
                       "invert: need steps in 0..1000000, lr > 0, alpha >= 1, tv_beta >= 1 and non-negative "
                       "weights, init_sd and jitter");
    return GB_OK;
}

gb_status gb_invert(gb_session *s, const gb_preproc *pp, const char *layer, const gb_tensor *phi0,
                    const gb_invert_opts *o, gb_tensor **x_out, double *loss) {
    gb_ctx *ctx = s->ctx;
    *x_out = NULL;
    gb_invert_opts dflt = GB_INVERT_OPTS_INIT;
    if (!o) o = &dflt;
    gb_status rc = check_opts(ctx, o);
    if (rc) return rc;
    if (!layer || !phi0 || phi0->dtype != GB_DTYPE_F32 || phi0->ndim < 1 || phi0->dims[0] != 1)
        return gb__err(ctx, GB_ERR_ARG, "invert: need a layer and a float32 (1, ...) target representation");
    gb__vis_space sp;
    if ((rc = gb__vis_space_init(s, pp, &sp))) return rc;
    if (sp.static_batch && sp.static_batch != 1)
        return gb__err(ctx, GB_ERR_ARG, "invert: the model's batch is fixed to %lld, not 1", (long long)sp.static_batch);
    double n0 = 0;
    const float *f0 = phi0->data;
    for (int64_t i = 0; i < phi0->numel; i++) n0 += (double)f0[i] * f0[i];
    if (!(n0 > 0)) return gb__err(ctx, GB_ERR_ARG, "invert: the target representation at '%s' is all zero", layer);

    /* The paper's normalization (sec. 3.3): B is the largest |x| of an image
     * in range, V = B / 6.5 a typical edge; the regularizers are divided by
     * H W B^alpha and H W V^beta so their weights do not depend on the scale. */
    double B = 0;
    for (int c = 0; c < sp.C; c++) {
        double lo = fabs(sp.b[c]), hi = fabs(sp.a[c] + sp.b[c]);
        B = fmax(B, fmax(lo, hi));
    }
    double V = B / 6.5, ra = o->alpha_weight / ((double)sp.HW * pow(B, o->alpha));
    double rv = o->tv_weight / ((double)sp.HW * pow(V, o->tv_beta));

    int64_t dims[4] = {1, sp.C, sp.H, sp.W}, N = sp.CHW;
    gb_tensor *xin = NULL, *seed = NULL;
    float *x = malloc(sizeof(float) * (size_t)N), *g = malloc(sizeof(float) * (size_t)N);
    float *gw = malloc(sizeof(float) * (size_t)N), *m1 = calloc((size_t)N, sizeof(float));
    float *m2 = calloc((size_t)N, sizeof(float));
    if (!x || !g || !gw || !m1 || !m2) rc = gb__err(ctx, GB_ERR_NOMEM, "invert: out of memory");
    if (!rc) rc = gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, &xin);
    if (!rc) rc = gb_tensor_create(ctx, phi0->dtype, phi0->ndim, phi0->dims, &seed);
    gb__rng rng;
    gb__rng_seed(&rng, o->seed);
    if (!rc) {
        /* start from noise around mid-gray */
        for (int c = 0; c < sp.C; c++)
            for (int64_t i = 0; i < sp.HW; i++)
                x[c * sp.HW + i] = (float)(sp.a[c] * 0.5 + sp.b[c] + o->init_sd * B * gb__rng_normal(&rng));
    }
    float fill[GB_PREPROC_MAX_CHANNELS];
    for (int c = 0; c < sp.C; c++) fill[c] = (float)(sp.a[c] * 0.5 + sp.b[c]);
    double dist = 0;
    for (int step = 0; !rc && step <= o->steps; step++) {
        bool last = step == o->steps;   /* the final evaluation, without transformation */
        gb__warp w;
        gb__warp_random(&rng, sp.H, sp.W, last ? 0 : o->jitter, 0, 0, &w);
        bool warp = !gb__warp_is_identity(&w);
        float *xi = xin->data;
        for (int c = 0; c < sp.C; c++) {
            if (warp) gb__warp_forward(&w, sp.H, sp.W, x + c * sp.HW, fill[c], xi + c * sp.HW);
            else memcpy(xi + c * sp.HW, x + c * sp.HW, sizeof(float) * (size_t)sp.HW);
        }
        const gb_tensor *phi;
        if ((rc = gb__vis_forward(s, xin, layer, &phi))) break;
        if (phi->numel != phi0->numel) {
            char a[128], b[128];
            gb_shape_str(phi->ndim, phi->dims, a, sizeof a);
            gb_shape_str(phi0->ndim, phi0->dims, b, sizeof b);
            rc = gb__err(ctx, GB_ERR_SHAPE, "invert: '%s' is %s here but the target is %s", layer, a, b);
            break;
        }
        /* ||phi - phi0||^2 / ||phi0||^2 and its gradient 2 (phi - phi0) / ||phi0||^2 */
        const float *f = phi->data;
        float *sd = seed->data;
        dist = 0;
        for (int64_t i = 0; i < phi->numel; i++) {
            double d = (double)f[i] - f0[i];
            dist += d * d;
            sd[i] = (float)(2 * d / n0);
        }
        dist /= n0;
        if (last) break;
        memset(gw, 0, sizeof(float) * (size_t)N);
        if ((rc = gb__vis_backward_into(s, layer, seed, gw))) break;
        if (warp) {
            memset(g, 0, sizeof(float) * (size_t)N);
            for (int c = 0; c < sp.C; c++) gb__warp_backward(&w, sp.H, sp.W, gw + c * sp.HW, g + c * sp.HW);
        } else {
            memcpy(g, gw, sizeof(float) * (size_t)N);
        }
        /* + lambda_alpha R_alpha: d/dx |x|^alpha = alpha |x|^(alpha-1) sign(x) */
        if (ra > 0)
            for (int64_t i = 0; i < N; i++) {
                double ax = fabs(x[i]);
                g[i] += (float)(ra * o->alpha * pow(ax, o->alpha - 1) * (x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0));
            }
        if (rv > 0) gb__tv(x, sp.C, sp.H, sp.W, o->tv_beta, rv, g);
        /* Adam, descending */
        double bc1 = 1 - pow(0.9, step + 1), bc2 = 1 - pow(0.999, step + 1);
        for (int64_t i = 0; i < N; i++) {
            m1[i] = (float)(0.9 * m1[i] + 0.1 * g[i]);
            m2[i] = (float)(0.999 * m2[i] + 0.001 * g[i] * g[i]);
            x[i] -= (float)(o->lr * B / bc1 * m1[i] / (sqrt(m2[i]) / sqrt(bc2) + 1e-8));
        }
        if (o->clip_range != 0)
            for (int c = 0; c < sp.C; c++) {
                float lo = (float)fmin(sp.b[c], sp.a[c] + sp.b[c]), hi = (float)fmax(sp.b[c], sp.a[c] + sp.b[c]);
                for (int64_t i = 0; i < sp.HW; i++) {
                    float *p = &x[c * sp.HW + i];
                    *p = *p < lo ? lo : *p > hi ? hi : *p;
                }
            }
    }
    if (!rc) {
        memcpy(xin->data, x, sizeof(float) * (size_t)N);
        *x_out = xin;
        xin = NULL;
        if (loss) *loss = dist;
    }
    free(x), free(g), free(gw), free(m1), free(m2);
    gb_tensor_free(xin);
    gb_tensor_free(seed);
    return rc;
}
