/* gradient.c — attribution from the gradient at the input itself or at noisy
 * copies of it: saliency, input x gradient, SmoothGrad / SmoothGrad^2 /
 * VarGrad, Guided Backprop and DeconvNet.
 *
 * Each is one evaluation (or S noisy evaluations) of g = d f / d x, where f is
 * the item's target (explain.h) and x the input — or, with o->layer, the
 * hidden tensor y that the gradient is read at (the rows still vary the
 * input). All arithmetic is float32 like PyTorch's, except the SmoothGrad
 * accumulators (double: means over up to thousands of samples). */
#include "methods/methods.h"
#include "engine/ir.h"

#include <stdlib.h>
#include <string.h>

/* Rows 0..N-1 are the items themselves. */
static int64_t *identity_items(int64_t n) {
    int64_t *it = malloc(sizeof *it * (size_t)(n ? n : 1));
    if (it)
        for (int64_t i = 0; i < n; i++) it[i] = i;
    return it;
}

/* One pass at x: r->attr = g (times the activation when `times_act`),
 * under `rules`. */
static gb_status grad_at_input(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r,
                               const gb_rule *rules, int n_rules, bool times_act) {
    int64_t N = r->n_items;
    int64_t *items = identity_items(N);
    if (!items) return gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    gb_status st = gb__explain_alloc_attr(e, r, o->layer);
    float *act = NULL;
    if (!st && times_act && o->layer) {
        act = malloc(sizeof *act * (size_t)r->attr->numel);
        if (!act) st = gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    if (!st)
        st = gb__explain_pass(e, r, x->data, N, items, o->layer, rules, n_rules, NULL, r->attr->data, act);
    if (!st && times_act) {
        /* Input x Gradient (Shrikumar et al. 2016): x_i * df/dx_i; with a layer,
         * y_j * df/dy_j (Captum's LayerGradientXActivation). */
        const float *a = o->layer ? act : x->data;
        float *g = r->attr->data;
        for (int64_t i = 0; i < r->attr->numel; i++) g[i] *= a[i];
    }
    free(act);
    free(items);
    return st;
}

/* Saliency (Simonyan et al. 2014, sec. 3.1): w = df/dx at x, kept signed;
 * the paper's map max_c |w| is the heatmap's MAGNITUDE view. */
static gb_status saliency(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return grad_at_input(e, x, o, r, NULL, 0, false);
}

static gb_status input_x_gradient(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return grad_at_input(e, x, o, r, NULL, 0, true);
}

/* Guided Backprop (Springenberg et al. 2015, Fig. 1): through every ReLU only
 * positive signal where the forward input was positive. */
static gb_status guided_backprop(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_rule rule = gb_rule_guided_relu();
    return grad_at_input(e, x, o, r, &rule, 1, false);
}

/* DeconvNet (Zeiler & Fergus 2014, sec. 2.1): the signal through each ReLU is
 * itself rectified; max-unpooling with the forward switches and transposed
 * convolution with the same filters are the MaxPool and Conv backward passes. */
static gb_status deconvnet(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_rule rule = gb_rule_deconvnet_relu();
    return grad_at_input(e, x, o, r, &rule, 1, false);
}

/* ---- SmoothGrad family ------------------------------------------------------------ */

typedef enum { NT_SMOOTHGRAD, NT_SMOOTHGRAD_SQ, NT_VARGRAD } nt_type;

#define SMOOTHGRAD_SAMPLES 50    /* Smilkov et al. 2017, sec. 3: "n = 50" */
#define SMOOTHGRAD_NOISE 0.15    /* ... sigma / (x_max - x_min) of 10-20% works well */

/* Smilkov et al. 2017, eq. 3: M^(x) = 1/S sum_s M(x + eps_s), eps_s ~ N(0, sigma^2),
 * sigma = noise * (max(x_n) - min(x_n)) per item. Captum's NoiseTunnel:
 *   smoothgrad     E[g],   smoothgrad_sq  E[g^2],   vargrad  E[g^2] - E[g]^2.
 * Draws: for item n, sample s, element i in C order: eps = sigma * normal()
 * (or o->fixed_noise[(n * S + s) * item + i], taken as is). Rows are built
 * and evaluated o->batch at a time, so memory stays bounded and the draws do
 * not depend on the batch size. */
static gb_status noise_tunnel(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r,
                              nt_type type) {
    gb_ctx *ctx = e->ctx;
    int64_t N = r->n_items, S = gb__opt_samples(o, SMOOTHGRAD_SAMPLES), D = e->item_numel;
    double frac = gb__opt_noise(o, SMOOTHGRAD_NOISE);
    if (o->fixed_noise) {
        if (o->fixed_noise->dtype != GB_DTYPE_F32 || o->fixed_noise->numel != N * S * D)
            return gb__err(ctx, GB_ERR_ARG, "explain: fixed noise has %lld elements, %lld needed (N x samples x item)",
                           (long long)o->fixed_noise->numel, (long long)(N * S * D));
    }
    gb_status st = gb__explain_alloc_attr(e, r, o->layer);
    if (st) return st;
    int64_t W = r->attr->numel / N;   /* elements per item of what is attributed */
    int64_t B = e->static_batch ? e->static_batch : e->batch;
    float *rows = malloc(sizeof *rows * (size_t)(B * D));
    float *grad = malloc(sizeof *grad * (size_t)(B * W));
    int64_t *items = malloc(sizeof *items * (size_t)B);
    double *sum = calloc((size_t)(N * W), sizeof *sum), *sum2 = calloc((size_t)(N * W), sizeof *sum2);
    if (!rows || !grad || !items || !sum || !sum2) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto out;
    }
    gb__rng rng;
    gb__rng_seed(&rng, o->seed);
    const float *xd = x->data;
    const float *fixed = o->fixed_noise ? o->fixed_noise->data : NULL;
    float sigma = 0;
    int64_t total = N * S;
    for (int64_t q0 = 0; q0 < total; q0 += B) {
        int64_t b = total - q0 < B ? total - q0 : B;
        for (int64_t k = 0; k < b; k++) {
            int64_t q = q0 + k, n = q / S;
            if (q % S == 0) {
                float lo, hi;
                gb__minmax(xd + n * D, D, &lo, &hi);
                sigma = (float)(frac * ((double)hi - (double)lo));
            }
            items[k] = n;
            float *row = rows + k * D;
            const float *xn = xd + n * D;
            if (fixed)
                for (int64_t i = 0; i < D; i++) row[i] = xn[i] + fixed[q * D + i];
            else
                for (int64_t i = 0; i < D; i++) row[i] = xn[i] + (float)(sigma * gb__rng_normal(&rng));
        }
        if ((st = gb__explain_pass(e, r, rows, b, items, o->layer, NULL, 0, NULL, grad, NULL))) goto out;
        for (int64_t k = 0; k < b; k++) {
            const float *g = grad + k * W;
            double *s1 = sum + items[k] * W, *s2 = sum2 + items[k] * W;
            for (int64_t i = 0; i < W; i++) {
                s1[i] += g[i];
                s2[i] += (double)g[i] * g[i];
            }
        }
    }
    float *a = r->attr->data;
    for (int64_t i = 0; i < N * W; i++) {
        double m1 = sum[i] / (double)S, m2 = sum2[i] / (double)S;
        a[i] = (float)(type == NT_SMOOTHGRAD ? m1 : type == NT_SMOOTHGRAD_SQ ? m2 : m2 - m1 * m1);
    }
out:
    free(rows);
    free(grad);
    free(items);
    free(sum);
    free(sum2);
    return st;
}

static gb_status smoothgrad(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return noise_tunnel(e, x, o, r, NT_SMOOTHGRAD);
}
static gb_status smoothgrad_sq(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return noise_tunnel(e, x, o, r, NT_SMOOTHGRAD_SQ);
}
static gb_status vargrad(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return noise_tunnel(e, x, o, r, NT_VARGRAD);
}

const gb_method gb__methods_gradient[] = {
    {"saliency", saliency, GB_HEATMAP_MAGNITUDE, GB_METHOD_LAYER, "Simonyan et al. 2014",
     "the gradient of the target (signed; shown as max |.| over channels)"},
    {"input_x_gradient", input_x_gradient, GB_HEATMAP_SIGNED, GB_METHOD_LAYER, "Shrikumar et al. 2016",
     "input times gradient"},
    {"smoothgrad", smoothgrad, GB_HEATMAP_MAGNITUDE, GB_METHOD_LAYER | GB_METHOD_RANDOM, "Smilkov et al. 2017",
     "mean gradient over noisy copies of the input"},
    {"smoothgrad_sq", smoothgrad_sq, GB_HEATMAP_MAGNITUDE, GB_METHOD_LAYER | GB_METHOD_RANDOM, "Smilkov et al. 2017",
     "mean squared gradient over noisy copies"},
    {"vargrad", vargrad, GB_HEATMAP_MAGNITUDE, GB_METHOD_LAYER | GB_METHOD_RANDOM, "Adebayo et al. 2018",
     "variance of the gradient over noisy copies"},
    {"guided_backprop", guided_backprop, GB_HEATMAP_MAGNITUDE, GB_METHOD_LAYER, "Springenberg et al. 2015",
     "gradient with only positive signal through ReLUs where their input was positive"},
    {"deconvnet", deconvnet, GB_HEATMAP_MAGNITUDE, GB_METHOD_LAYER, "Zeiler & Fergus 2014",
     "backward signal rectified at every ReLU"},
    {0},
};
