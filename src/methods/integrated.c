/* integrated.c — path methods: Integrated Gradients (and its layer form,
 * conductance) and GradientSHAP / expected gradients, with their baselines
 * and Captum's quadrature rules. */
#include "methods/methods.h"
#include "engine/ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IG_DEFAULT_STEPS 50      /* Captum's IntegratedGradients.attribute(n_steps=50) */
#define SHAP_DEFAULT_SAMPLES 5   /* Captum's GradientShap.attribute(n_samples=5) */

/* ---- quadrature: captum/attr/_utils/approximation_methods.py -------------------------- */

static const char *const integration_names[GB_INTEGRATION_COUNT] = {
    "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre",
};

const char *gb_integration_name(gb_integration m) {
    return (unsigned)m < GB_INTEGRATION_COUNT ? integration_names[m] : "?";
}

gb_integration gb_integration_parse(const char *name) {
    for (int i = 0; name && i < GB_INTEGRATION_COUNT; i++)
        if (!strcmp(name, integration_names[i])) return (gb_integration)i;
    return GB_INTEGRATION_COUNT;
}

/* Gauss-Legendre nodes and weights on [-1, 1] in ascending order, as
 * numpy.polynomial.legendre.leggauss: roots of P_n by Newton's method from
 * the Tricomi-like guess cos(pi (i + 3/4) / (n + 1/2)); w = 2 / ((1 - x^2) P_n'(x)^2). */
static void leggauss(int n, double *x, double *w) {
    for (int i = 0; i < (n + 1) / 2; i++) {
        double z = cos(3.14159265358979323846 * (i + 0.75) / (n + 0.5)), dp = 1;
        for (int it = 0; it < 100; it++) {
            double p0 = 1, p1 = z;   /* P_0, P_1; recurrence k P_k = (2k-1) z P_{k-1} - (k-1) P_{k-2} */
            for (int k = 2; k <= n; k++) {
                double p2 = ((2.0 * k - 1) * z * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            if (n == 1) p0 = 1;
            dp = n * (z * p1 - p0) / (z * z - 1);   /* P_n'(z) */
            double dz = p1 / dp;
            z -= dz;
            if (fabs(dz) < 1e-16) break;
        }
        {   /* derivative at the converged root */
            double p0 = 1, p1 = z;
            for (int k = 2; k <= n; k++) {
                double p2 = ((2.0 * k - 1) * z * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            dp = n == 1 ? 1 : n * (z * p1 - p0) / (z * z - 1);
        }
        double wi = 2.0 / ((1 - z * z) * dp * dp);
        x[i] = -z;           /* z is descending from near 1: mirror into ascending order */
        x[n - 1 - i] = z;
        w[i] = w[n - 1 - i] = wi;
    }
    if (n % 2) x[n / 2] = 0;   /* exact middle node */
}

/* Captum's linspace is torch.linspace in float32 then .tolist(): we round
 * each alpha through float to match it bit for bit. */
static double linspace_f32(double lo, double hi, int n, int i) {
    /* torch.linspace(start, end, steps): start + i * step for i < steps/2,
     * end - (steps - 1 - i) * step after (ATen's symmetric formula) */
    double step = (hi - lo) / (n - 1);
    float v = i < n / 2 ? (float)lo + (float)step * (float)i : (float)hi - (float)step * (float)(n - 1 - i);
    return (double)v;
}

gb_status gb_integration_params(gb_ctx *ctx, gb_integration m, int n, double *w, double *a) {
    if ((unsigned)m >= GB_INTEGRATION_COUNT) return gb__err(ctx, GB_ERR_ARG, "explain: unknown integration method %d", (int)m);
    if (m == GB_INTEGRATION_GAUSS_LEGENDRE) {
        if (n < 1) return gb__err(ctx, GB_ERR_ARG, "explain: gausslegendre needs at least 1 step (got %d)", n);
        leggauss(n, a, w);
        for (int i = 0; i < n; i++) {
            w[i] *= 0.5;                 /* "Scaling from 2 to 1" */
            a[i] = 0.5 * (1 + a[i]);     /* "Scaling from [-1, 1] to [0, 1]" */
        }
        return GB_OK;
    }
    if (n < 2) return gb__err(ctx, GB_ERR_ARG, "explain: %s needs at least 2 steps (got %d)", gb_integration_name(m), n);
    for (int i = 0; i < n; i++) w[i] = 1.0 / n;
    switch (m) {
    case GB_INTEGRATION_RIEMANN_TRAPEZOID:
        w[0] /= 2;
        w[n - 1] /= 2;
        for (int i = 0; i < n; i++) a[i] = linspace_f32(0, 1, n, i);
        break;
    case GB_INTEGRATION_RIEMANN_LEFT:
        for (int i = 0; i < n; i++) a[i] = linspace_f32(0, 1 - 1.0 / n, n, i);
        break;
    case GB_INTEGRATION_RIEMANN_MIDDLE:
        for (int i = 0; i < n; i++) a[i] = linspace_f32(1.0 / (2 * n), 1 - 1.0 / (2 * n), n, i);
        break;
    default: /* right */
        for (int i = 0; i < n; i++) a[i] = linspace_f32(1.0 / n, 1, n, i);
        break;
    }
    return GB_OK;
}

/* ---- baselines ------------------------------------------------------------------------ */

/* Separable Gaussian blur of one item (C, H, W) or (H, W, C) with replicated
 * edges: k(j) = exp(-j^2 / (2 sigma^2)) / sum, |j| <= ceil(3 sigma). */
static gb_status blur_item(gb_ctx *ctx, const float *x, float *out, const int64_t *dims, gb_layout layout,
                           double sigma) {
    int64_t C, H, W, sh, sw, sc;
    if (layout == GB_LAYOUT_NHWC) {
        H = dims[1]; W = dims[2]; C = dims[3];
        sh = W * C; sw = C; sc = 1;
    } else {
        C = dims[1]; H = dims[2]; W = dims[3];
        sh = W; sw = 1; sc = H * W;
    }
    if (sigma <= 0) sigma = (double)(H > W ? H : W) / 8.0;
    int R = (int)ceil(3 * sigma);
    double *k = malloc(sizeof *k * (size_t)(2 * R + 1)), *tmp = malloc(sizeof *tmp * (size_t)(H * W));
    if (!k || !tmp) {
        free(k);
        free(tmp);
        return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    double ks = 0;
    for (int j = -R; j <= R; j++) ks += k[j + R] = exp(-(double)j * j / (2 * sigma * sigma));
    for (int j = 0; j <= 2 * R; j++) k[j] /= ks;
    for (int64_t c = 0; c < C; c++) {
        const float *p = x + c * sc;
        for (int64_t y = 0; y < H; y++)
            for (int64_t xx = 0; xx < W; xx++) {
                double s = 0;
                for (int j = -R; j <= R; j++) {
                    int64_t q = xx + j < 0 ? 0 : xx + j >= W ? W - 1 : xx + j;
                    s += k[j + R] * p[y * sh + q * sw];
                }
                tmp[y * W + xx] = s;
            }
        float *o = out + c * sc;
        for (int64_t y = 0; y < H; y++)
            for (int64_t xx = 0; xx < W; xx++) {
                double s = 0;
                for (int j = -R; j <= R; j++) {
                    int64_t q = y + j < 0 ? 0 : y + j >= H ? H - 1 : y + j;
                    s += k[j + R] * tmp[q * W + xx];
                }
                o[y * sh + xx * sw] = (float)s;
            }
    }
    free(k);
    free(tmp);
    return GB_OK;
}

/* The baseline of item n into out (D floats), for IG and for gradient_shap's
 * non-tensor sets. The TENSOR kind with K items: item `pick`. */
static gb_status baseline_item(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, int64_t n, int64_t pick,
                               gb__rng *rng, float *out) {
    int64_t D = e->item_numel;
    const float *xn = (const float *)x->data + n * D;
    switch (o->baseline) {
    case GB_BASELINE_ZERO:
        memset(out, 0, sizeof *out * (size_t)D);
        return GB_OK;
    case GB_BASELINE_BLUR:
        if (x->ndim != 4)
            return gb__err(e->ctx, GB_ERR_UNSUPPORTED, "explain: a blurred baseline needs a 4-D image input (N, C, H, W)");
        return blur_item(e->ctx, xn, out, x->dims, o->layout, o->blur_sigma);
    case GB_BASELINE_UNIFORM: {
        float lo, hi;
        gb__minmax(xn, D, &lo, &hi);
        for (int64_t i = 0; i < D; i++) out[i] = (float)(lo + ((double)hi - lo) * gb__rng_uniform(rng));
        return GB_OK;
    }
    case GB_BASELINE_TENSOR:
        memcpy(out, (const float *)o->baseline_tensor->data + pick * D, sizeof *out * (size_t)D);
        return GB_OK;
    default:
        return gb__err(e->ctx, GB_ERR_ARG, "explain: unknown baseline kind %d", (int)o->baseline);
    }
}

/* Number of items in the TENSOR baseline (1, N or K), checked against x. */
static gb_status baseline_count(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, int64_t *K) {
    *K = 1;
    if (o->baseline != GB_BASELINE_TENSOR) return GB_OK;
    const gb_tensor *b = o->baseline_tensor;
    if (!b) return gb__err(e->ctx, GB_ERR_ARG, "explain: baseline kind 'tensor' without a tensor");
    char bs[128], xs[128];
    gb_shape_str(b->ndim, b->dims, bs, sizeof bs);
    gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
    bool ok = b->dtype == GB_DTYPE_F32 && b->ndim == x->ndim && b->dims[0] >= 1;
    for (int i = 1; ok && i < x->ndim; i++) ok = b->dims[i] == x->dims[i];
    if (!ok)
        return gb__err(e->ctx, GB_ERR_SHAPE, "explain: baseline of shape %s (%s) does not fit input of shape %s",
                       bs, gb_dtype_name(b->dtype), xs);
    *K = b->dims[0];
    return GB_OK;
}

/* ---- Integrated Gradients ------------------------------------------------------------------ */

/* Sundararajan et al. 2017, eq. 3 with Captum's quadrature:
 *   IG_i(x) = (x_i - x'_i) * sum_k w_k dF/dx_i(x' + a_k (x - x')).
 * With a layer y: conductance (Dhamdhere et al. 2018), as Captum's
 * LayerConductance: alphas a_0..a_n of the method for n + 1 points x_k,
 *   Cond_j = sum_{k<n} dF/dy_j(x_k) (y_j(x_{k+1}) - y_j(x_k)).
 * Rows are item-major (item n, step k) so conductance can difference
 * consecutive rows; they are built and run o->batch at a time. */
static gb_status integrated_gradients(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    int64_t N = r->n_items, D = e->item_numel, K;
    int steps = o->n_steps > 0 ? o->n_steps : IG_DEFAULT_STEPS;
    bool layer = o->layer != NULL;
    int npts = layer ? steps + 1 : steps;
    gb_status st = baseline_count(e, x, o, &K);
    if (st) return st;
    if (K != 1 && K != N)
        return gb__err(ctx, GB_ERR_SHAPE, "explain: integrated_gradients takes 1 baseline or one per item (%lld), not %lld",
                       (long long)N, (long long)K);
    double *w = malloc(sizeof *w * (size_t)npts), *a = malloc(sizeof *a * (size_t)npts);
    float *xb = malloc(sizeof *xb * (size_t)(N * D));
    int64_t B = e->static_batch ? e->static_batch : e->batch;
    float *rows = malloc(sizeof *rows * (size_t)(B * D));
    int64_t *items = malloc(sizeof *items * (size_t)(B > N ? B : N));
    int64_t *steps_of = malloc(sizeof *steps_of * (size_t)B);
    float *grad = NULL, *act = NULL, *gprev = NULL, *yprev = NULL;
    double *acc = NULL;
    r->baseline_value = calloc((size_t)N, sizeof *r->baseline_value);
    r->delta = calloc((size_t)N, sizeof *r->delta);
    if (!w || !a || !xb || !rows || !items || !steps_of || !r->baseline_value || !r->delta) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto out;
    }
    if ((st = gb_integration_params(ctx, o->integration, npts, w, a))) goto out;
    gb__rng rng;
    gb__rng_seed(&rng, o->seed);
    for (int64_t n = 0; n < N; n++)
        if ((st = baseline_item(e, x, o, n, K == 1 ? 0 : n, &rng, xb + n * D))) goto out;
    /* f(x') for the completeness delta */
    for (int64_t n = 0; n < N; n++) items[n] = n;
    if ((st = gb__explain_pass(e, r, xb, N, items, NULL, NULL, 0, r->baseline_value, NULL, NULL))) goto out;
    if ((st = gb__explain_alloc_attr(e, r, o->layer))) goto out;
    int64_t Wn = r->attr->numel / N;
    grad = malloc(sizeof *grad * (size_t)(B * Wn));
    acc = calloc((size_t)(N * Wn), sizeof *acc);
    if (layer) {
        act = malloc(sizeof *act * (size_t)(B * Wn));
        gprev = malloc(sizeof *gprev * (size_t)Wn);
        yprev = malloc(sizeof *yprev * (size_t)Wn);
    }
    if (!grad || !acc || (layer && (!act || !gprev || !yprev))) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto out;
    }
    const float *xd = x->data;
    int64_t total = N * npts;
    for (int64_t q0 = 0; q0 < total; q0 += B) {
        int64_t b = total - q0 < B ? total - q0 : B;
        for (int64_t k = 0; k < b; k++) {
            int64_t q = q0 + k, n = q / npts, s = q % npts;
            items[k] = n;
            steps_of[k] = s;
            const float *xn = xd + n * D, *bn = xb + n * D;
            float al = (float)a[s], *row = rows + k * D;
            /* Captum: baseline + alpha * (input - baseline), in float32 */
            for (int64_t i = 0; i < D; i++) row[i] = bn[i] + al * (xn[i] - bn[i]);
        }
        if ((st = gb__explain_pass(e, r, rows, b, items, o->layer, NULL, 0, NULL, grad, act))) goto out;
        for (int64_t k = 0; k < b; k++) {
            const float *g = grad + k * Wn;
            double *acn = acc + items[k] * Wn;
            int64_t s = steps_of[k];
            if (!layer) {
                for (int64_t i = 0; i < Wn; i++) acn[i] += w[s] * g[i];
                continue;
            }
            const float *y = act + k * Wn;
            if (s > 0)
                for (int64_t i = 0; i < Wn; i++) acn[i] += (double)gprev[i] * ((double)y[i] - yprev[i]);
            memcpy(gprev, g, sizeof *g * (size_t)Wn);
            memcpy(yprev, y, sizeof *y * (size_t)Wn);
        }
    }
    float *at = r->attr->data;
    for (int64_t n = 0; n < N; n++) {
        double sum = 0;
        for (int64_t i = 0; i < Wn; i++) {
            double v = acc[n * Wn + i];
            if (!layer) v *= (double)xd[n * D + i] - xb[n * D + i];
            at[n * Wn + i] = (float)v;
            sum += v;
        }
        r->delta[n] = sum - (r->value[n] - r->baseline_value[n]);
    }
out:
    free(w);
    free(a);
    free(xb);
    free(rows);
    free(items);
    free(steps_of);
    free(grad);
    free(act);
    free(gprev);
    free(yprev);
    free(acc);
    return st;
}

/* ---- GradientSHAP ------------------------------------------------------------------------------ */

/* Expected gradients (Erion et al. 2019) in Captum's GradientShap form
 * (Lundberg & Lee 2017): per item n, S draws s of
 *   b      a baseline from the set (uniformly; the TENSOR set has K items, the
 *          zero and blur sets one, uniform noise a fresh draw),
 *   alpha  ~ U(0, 1),
 *   eps    ~ N(0, sigma^2) per element, sigma = o->noise * range(x_n)
 *          (NoiseTunnel's noise; default 0, Captum's stdevs=0.0);
 *   x~ = x_n + eps,   attr_n = 1/S sum_s (x~ - b) * dF/dx(b + alpha (x~ - b)).
 * Layer form (Captum's LayerGradientShap): (y(x~) - y(b)) * dF/dy(same point).
 * Draw order per (n, s): the baseline index (K > 1), the uniform baseline's
 * elements, alpha, then eps element by element (only when sigma > 0).
 * baseline_value = mean_s F(b); delta = sum(attr_n) - (F(x_n) - baseline_value). */
static gb_status gradient_shap(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    int64_t N = r->n_items, D = e->item_numel, K;
    int64_t S = gb__opt_samples(o, SHAP_DEFAULT_SAMPLES);
    double frac = gb__opt_noise(o, 0.0);
    bool layer = o->layer != NULL;
    gb_status st = baseline_count(e, x, o, &K);
    if (st) return st;
    if (o->fixed_noise && (o->fixed_noise->dtype != GB_DTYPE_F32 || o->fixed_noise->numel != N * S * D))
        return gb__err(ctx, GB_ERR_ARG, "explain: fixed noise has %lld elements, %lld needed (N x samples x item)",
                       (long long)o->fixed_noise->numel, (long long)(N * S * D));
    if (o->fixed_baseline)
        for (int64_t q = 0; q < N * S; q++)
            if (o->fixed_baseline[q] < 0 || o->fixed_baseline[q] >= K)
                return gb__err(ctx, GB_ERR_ARG, "explain: fixed baseline index %lld out of range 0..%lld",
                               (long long)o->fixed_baseline[q], (long long)(K - 1));
    if ((st = gb__explain_alloc_attr(e, r, o->layer))) return st;
    int64_t Wn = r->attr->numel / N;
    int64_t B = e->static_batch ? e->static_batch : e->batch;
    float *interp = malloc(sizeof *interp * (size_t)(B * D)), *diff = malloc(sizeof *diff * (size_t)(B * D));
    float *base = malloc(sizeof *base * (size_t)(B * D)), *xt = NULL;
    float *grad = malloc(sizeof *grad * (size_t)(B * Wn)), *ya = NULL, *yb = NULL;
    int64_t *items = malloc(sizeof *items * (size_t)B);
    double *acc = calloc((size_t)(N * Wn), sizeof *acc), *fb = malloc(sizeof *fb * (size_t)B);
    r->baseline_value = calloc((size_t)N, sizeof *r->baseline_value);
    r->delta = calloc((size_t)N, sizeof *r->delta);
    if (layer) {
        xt = malloc(sizeof *xt * (size_t)(B * D));
        ya = malloc(sizeof *ya * (size_t)(B * Wn));
        yb = malloc(sizeof *yb * (size_t)(B * Wn));
    }
    float *blurred = NULL;
    if (o->baseline == GB_BASELINE_BLUR) blurred = malloc(sizeof *blurred * (size_t)D);
    if (!interp || !diff || !base || !grad || !items || !acc || !fb || !r->baseline_value || !r->delta ||
        (layer && (!xt || !ya || !yb)) || (o->baseline == GB_BASELINE_BLUR && !blurred)) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto out;
    }
    gb__rng rng;
    gb__rng_seed(&rng, o->seed);
    const float *xd = x->data, *fixed = o->fixed_noise ? o->fixed_noise->data : NULL;
    float sigma = 0;
    int64_t total = N * S;
    for (int64_t q0 = 0; q0 < total; q0 += B) {
        int64_t b = total - q0 < B ? total - q0 : B;
        for (int64_t k = 0; k < b; k++) {
            int64_t q = q0 + k, n = q / S;
            const float *xn = xd + n * D;
            if (q % S == 0) {
                float lo, hi;
                gb__minmax(xn, D, &lo, &hi);
                sigma = (float)(frac * ((double)hi - (double)lo));
                if (blurred && (st = baseline_item(e, x, o, n, 0, &rng, blurred))) goto out;
            }
            items[k] = n;
            int64_t pick = o->fixed_baseline ? o->fixed_baseline[q] : (int64_t)gb__rng_below(&rng, (uint64_t)K);
            float *bk = base + k * D;
            if (blurred) memcpy(bk, blurred, sizeof *bk * (size_t)D);
            else if ((st = baseline_item(e, x, o, n, pick, &rng, bk))) goto out;
            float al = o->fixed_alpha ? o->fixed_alpha[q] : (float)gb__rng_uniform(&rng);
            float *ik = interp + k * D, *dk = diff + k * D;
            for (int64_t i = 0; i < D; i++) {
                float eps = fixed ? fixed[q * D + i] : sigma > 0 ? (float)(sigma * gb__rng_normal(&rng)) : 0.0f;
                float xv = xn[i] + eps;
                if (layer) xt[k * D + i] = xv;
                dk[i] = xv - bk[i];
                /* Captum's _scale_input: alpha * input + (1 - alpha) * baseline */
                ik[i] = al * xv + (1.0f - al) * bk[i];
            }
        }
        if ((st = gb__explain_pass(e, r, base, b, items, o->layer, NULL, 0, fb, NULL, layer ? yb : NULL))) goto out;
        if (layer && (st = gb__explain_pass(e, r, xt, b, items, o->layer, NULL, 0, NULL, NULL, ya))) goto out;
        if ((st = gb__explain_pass(e, r, interp, b, items, o->layer, NULL, 0, NULL, grad, NULL))) goto out;
        for (int64_t k = 0; k < b; k++) {
            int64_t n = items[k];
            const float *g = grad + k * Wn;
            double *an = acc + n * Wn;
            r->baseline_value[n] += fb[k] / (double)S;
            if (layer)
                for (int64_t i = 0; i < Wn; i++) an[i] += (double)g[i] * ((double)ya[k * Wn + i] - yb[k * Wn + i]);
            else
                for (int64_t i = 0; i < Wn; i++) an[i] += (double)g[i] * diff[k * D + i];
        }
    }
    float *at = r->attr->data;
    for (int64_t n = 0; n < N; n++) {
        double sum = 0;
        for (int64_t i = 0; i < Wn; i++) {
            double v = acc[n * Wn + i] / (double)S;
            at[n * Wn + i] = (float)v;
            sum += v;
        }
        r->delta[n] = sum - (r->value[n] - r->baseline_value[n]);
    }
out:
    free(interp);
    free(diff);
    free(base);
    free(xt);
    free(grad);
    free(ya);
    free(yb);
    free(items);
    free(acc);
    free(fb);
    free(blurred);
    return st;
}

const gb_method gb__methods_integrated[] = {
    {"integrated_gradients", integrated_gradients, GB_HEATMAP_SIGNED, GB_METHOD_LAYER | GB_METHOD_DELTA,
     "Sundararajan et al. 2017", "path integral of the gradient from a baseline (completeness delta reported)"},
    {"gradient_shap", gradient_shap, GB_HEATMAP_SIGNED, GB_METHOD_LAYER | GB_METHOD_DELTA | GB_METHOD_RANDOM,
     "Lundberg & Lee 2017; Erion et al. 2019", "expected gradients over random baselines and path points"},
    {0},
};
