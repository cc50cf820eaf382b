/*
 * test_explain_gradient.c — the gradient-family attribution methods against
 * Captum, on the two-headed ReLU network of tests/fixtures/explain/
 * (made by tests/scripts/make_explain_fixtures.py: Captum's Saliency,
 * InputXGradient, IntegratedGradients with every quadrature, NoiseTunnel and
 * GradientShap fed the same noise / alphas / baseline picks, GuidedBackprop,
 * Deconvolution, NeuronGradient, LayerGradientXActivation, LayerConductance).
 * Deterministic methods must match within 1e-3 relative L2 error (they match
 * to ~1e-6); completeness deltas within 1e-4 absolute.
 *
 * Also: determinism across batch sizes and seeds, IG completeness shrinking
 * with steps, and the default Fashion-MNIST model when it is present.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/explain.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    gb_ctx *ctx;
    gb_model *m;
    gb_explainer *e;
    gb_tensor *x;
} fixture;

static void fix_path(char *p, size_t cap, const char *file) {
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, cap, "%s/tests/fixtures/explain/%s", src ? src : ".", file);
}

static gb_tensor *load(gb_ctx *ctx, const char *file) {
    char p[1024];
    fix_path(p, sizeof p, file);
    gb_tensor *t = NULL;
    if (gb_npy_read(ctx, p, &t)) fail_msg("%s", gb_ctx_errmsg(ctx));
    return t;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    char p[1024];
    fix_path(p, sizeof p, "explain_net.onnx");
    assert_int_equal(gb_ctx_create(&f->ctx), GB_OK);
    if (gb_model_load(f->ctx, p, &f->m)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    if (gb_explainer_create(f->ctx, f->m, &f->e)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    f->x = load(f->ctx, "input.npy");
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    gb_tensor_free(f->x);
    gb_explainer_free(f->e);
    gb_model_free(f->m);
    gb_ctx_free(f->ctx);
    free(f);
    return 0;
}

static double rel_l2(const gb_tensor *a, const gb_tensor *b) {
    assert_int_equal(a->numel, b->numel);
    const float *x = a->data, *y = b->data;
    double num = 0, den = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        den += (double)y[i] * y[i];
    }
    return sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
}

static gb_explanation *run(fixture *f, const char *method, const gb_explain_opts *o) {
    gb_explanation *r = NULL;
    if (gb_explain(f->e, method, f->x, o, &r)) fail_msg("%s: %s", method, gb_ctx_errmsg(f->ctx));
    return r;
}

/* Run and compare with fixture `ref` (and its shape). */
static gb_explanation *check(fixture *f, const char *method, const gb_explain_opts *o, const char *ref) {
    gb_explanation *r = run(f, method, o);
    char file[256];
    snprintf(file, sizeof file, "%s.npy", ref);
    gb_tensor *want = load(f->ctx, file);
    assert_int_equal(r->attr->ndim, want->ndim);
    for (int i = 0; i < want->ndim; i++) assert_int_equal(r->attr->dims[i], want->dims[i]);
    double e = rel_l2(r->attr, want);
    print_message("  %-22s vs Captum %-30s relative L2 error %.2e\n", method, ref, e);
    if (e > 1e-3) fail_msg("%s vs %s: relative L2 error %.3g", method, ref, e);
    gb_tensor_free(want);
    return r;
}

static void check_delta(fixture *f, const gb_explanation *r, const char *ref) {
    gb_tensor *d = load(f->ctx, ref);
    assert_non_null(r->delta);
    assert_int_equal(d->numel, r->n_items);
    for (int64_t n = 0; n < r->n_items; n++) {
        double want = ((const float *)d->data)[n];
        if (fabs(r->delta[n] - want) > 1e-4 + 1e-3 * fabs(want))
            fail_msg("%s item %lld: delta %.6g, Captum %.6g", ref, (long long)n, r->delta[n], want);
    }
    gb_tensor_free(d);
}

/* ---- one pass methods ----------------------------------------------------------- */

static void test_saliency(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation *r = check(f, "saliency", &o, "saliency");
    /* the target: each item's top-1 logit, value = that logit */
    gb_tensor *logits = load(f->ctx, "logits.npy");
    for (int n = 0; n < 2; n++) {
        const float *row = (const float *)logits->data + n * 6;
        int best = 0;
        for (int k = 1; k < 6; k++)
            if (row[k] > row[best]) best = k;
        assert_int_equal(r->target_offset[n], best);
        assert_true(fabs(r->value[n] - row[best]) < 1e-5);
    }
    assert_string_equal(r->target_tensor, "logits");
    assert_string_equal(r->attributed_to, "input");
    assert_int_equal(r->target_count, 1);
    assert_int_equal(r->mode, GB_HEATMAP_MAGNITUDE);
    assert_null(r->delta);
    gb_tensor_free(logits);
    gb_explanation_free(r);
}

static void test_input_x_gradient(void **state) {
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation_free(check(*state, "input_x_gradient", &o, "input_x_gradient"));
}

static void test_guided_deconv(void **state) {
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation_free(check(*state, "guided_backprop", &o, "guided_backprop"));
    gb_explanation_free(check(*state, "deconvnet", &o, "deconvnet"));
}

/* ---- targets --------------------------------------------------------------------- */

static void test_targets(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    assert_int_equal(gb_target_parse(f->ctx, "4", GB_TARGET_OUTPUT, &o.target), GB_OK);
    gb_explanation *r = check(f, "saliency", &o, "saliency_t4");
    assert_int_equal(r->target_offset[0], 4);
    assert_int_equal(r->target_offset[1], 4);
    gb_explanation_free(r);

    assert_int_equal(gb_target_parse(f->ctx, "score:0", GB_TARGET_OUTPUT, &o.target), GB_OK);
    r = check(f, "saliency", &o, "saliency_score");
    gb_tensor *score = load(f->ctx, "score.npy");
    assert_true(fabs(r->value[1] - ((const float *)score->data)[1]) < 1e-5);
    gb_tensor_free(score);
    gb_explanation_free(r);
    /* the whole (N, 1) head by name alone: the same */
    assert_int_equal(gb_target_parse(f->ctx, "score", GB_TARGET_OUTPUT, &o.target), GB_OK);
    gb_explanation_free(check(f, "saliency", &o, "saliency_score"));

    assert_int_equal(gb_target_parse(f->ctx, "feat:3", GB_TARGET_NEURON, &o.target), GB_OK);
    r = check(f, "saliency", &o, "saliency_neuron_c");
    assert_int_equal(r->target_count, 3 * 3);   /* feat is (N, 12, 3, 3) */
    gb_explanation_free(r);
    assert_int_equal(gb_target_parse(f->ctx, "feat:3,1,2", GB_TARGET_NEURON, &o.target), GB_OK);
    r = check(f, "saliency", &o, "saliency_neuron_chw");
    assert_int_equal(r->target_count, 1);
    assert_int_equal(r->target_offset[0], 3 * 9 + 1 * 3 + 2);
    gb_explanation_free(r);
}

static void test_target_errors(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation *r = (gb_explanation *)1;
    assert_int_equal(gb_target_parse(f->ctx, "6", GB_TARGET_OUTPUT, &o.target), GB_OK);
    assert_int_equal(gb_explain(f->e, "saliency", f->x, &o, &r), GB_ERR_ARG);
    assert_null(r);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "out of range"));
    assert_int_equal(gb_target_parse(f->ctx, "nosuch:1", GB_TARGET_OUTPUT, &o.target), GB_OK);
    assert_int_equal(gb_explain(f->e, "saliency", f->x, &o, &r), GB_ERR_NOT_FOUND);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "nosuch"));
    assert_int_equal(gb_target_parse(f->ctx, "logits:1,0", GB_TARGET_OUTPUT, &o.target), GB_OK);
    assert_int_equal(gb_explain(f->e, "saliency", f->x, &o, &r), GB_ERR_ARG);
    assert_int_equal(gb_target_parse(f->ctx, "feat:1,3,0", GB_TARGET_NEURON, &o.target), GB_OK);
    assert_int_equal(gb_explain(f->e, "saliency", f->x, &o, &r), GB_ERR_ARG);

    gb_target_default(&o.target);
    assert_int_equal(gb_explain(f->e, "nosuch_method", f->x, &o, &r), GB_ERR_NOT_FOUND);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "integrated_gradients"));   /* lists them */
    o.layer = "nosuch_layer";
    assert_int_equal(gb_explain(f->e, "saliency", f->x, &o, &r), GB_ERR_NOT_FOUND);
    o.layer = NULL;
    /* wrong input shape */
    int64_t dims[4] = {1, 3, 10, 12};
    gb_tensor *bad;
    assert_int_equal(gb_tensor_create(f->ctx, GB_DTYPE_F32, 4, dims, &bad), GB_OK);
    assert_int_equal(gb_explain(f->e, "saliency", bad, &o, &r), GB_ERR_SHAPE);
    gb_tensor_free(bad);
    /* IG's riemann rules need 2 steps */
    o.n_steps = 1;
    o.integration = GB_INTEGRATION_RIEMANN_LEFT;
    assert_int_equal(gb_explain(f->e, "integrated_gradients", f->x, &o, &r), GB_ERR_ARG);
    assert_null(r);
}

static void test_target_parse(void **state) {
    fixture *f = *state;
    gb_target t;
    char s[128];
    assert_int_equal(gb_target_parse(f->ctx, "17", GB_TARGET_OUTPUT, &t), GB_OK);
    assert_int_equal(t.kind, GB_TARGET_OUTPUT);
    assert_string_equal(t.tensor, "");
    assert_int_equal(t.n_index, 1);
    assert_int_equal(t.index[0], 17);
    assert_int_equal(gb_target_parse(f->ctx, "boxes:0,3,1", GB_TARGET_OUTPUT, &t), GB_OK);
    assert_string_equal(t.tensor, "boxes");
    assert_int_equal(t.n_index, 3);
    assert_int_equal(t.index[2], 1);
    gb_target_str(&t, s, sizeof s);
    assert_string_equal(s, "boxes[0,3,1]");
    assert_int_equal(gb_target_parse(f->ctx, "scope:a:2", GB_TARGET_NEURON, &t), GB_OK);   /* last ':' */
    assert_string_equal(t.tensor, "scope:a");
    assert_int_equal(t.index[0], 2);
    gb_target_str(&t, s, sizeof s);
    assert_string_equal(s, "scope:a[2,*]");
    assert_int_equal(gb_target_parse(f->ctx, "value", GB_TARGET_OUTPUT, &t), GB_OK);
    assert_int_equal(t.n_index, 0);
    static const char *bad_out[] = {"", "-1", "3x", "1.5", ":3", "out:", "out:1,", "out:,1", "out:a", "out:-1",
                                    "out:1,2,3,4,5,6,7,8", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_out / sizeof *bad_out; i++) {
        if (gb_target_parse(f->ctx, bad_out[i], GB_TARGET_OUTPUT, &t) != GB_ERR_ARG)
            fail_msg("--target '%s' accepted", bad_out[i]);
        assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "--target"));
    }
    static const char *bad_neuron[] = {"feat", "3", "feat:", ":1", "feat:1,,2"};
    for (size_t i = 0; i < sizeof bad_neuron / sizeof *bad_neuron; i++)
        if (gb_target_parse(f->ctx, bad_neuron[i], GB_TARGET_NEURON, &t) != GB_ERR_ARG)
            fail_msg("--neuron '%s' accepted", bad_neuron[i]);
}

/* ---- integrated gradients ----------------------------------------------------------- */

static void test_integration_params(void **state) {
    fixture *f = *state;
    double w[64], a[64];
    /* numpy.polynomial.legendre.leggauss(5), scaled as Captum scales it */
    static const double x5[5] = {-0.9061798459386640, -0.5384693101056831, 0.0, 0.5384693101056831,
                                 0.9061798459386640};
    static const double w5[5] = {0.2369268850561891, 0.4786286704993665, 0.5688888888888889, 0.4786286704993665,
                                 0.2369268850561891};
    assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_GAUSS_LEGENDRE, 5, w, a), GB_OK);
    for (int i = 0; i < 5; i++) {
        assert_true(fabs(a[i] - 0.5 * (1 + x5[i])) < 1e-14);
        assert_true(fabs(w[i] - 0.5 * w5[i]) < 1e-14);
    }
    for (int n = 1; n <= 64; n++) {   /* weights sum to 1, nodes ascending in (0, 1) */
        assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_GAUSS_LEGENDRE, n, w, a), GB_OK);
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += w[i];
            assert_true(a[i] > 0 && a[i] < 1);
            if (i) assert_true(a[i] > a[i - 1]);
        }
        assert_true(fabs(s - 1) < 1e-12);
    }
    assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_RIEMANN_TRAPEZOID, 4, w, a), GB_OK);
    assert_true(fabs(w[0] - 0.125) < 1e-15 && fabs(w[1] - 0.25) < 1e-15 && fabs(w[3] - 0.125) < 1e-15);
    assert_true(a[0] == 0 && fabs(a[1] - 1.0 / 3) < 1e-7 && a[3] == 1);
    assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_RIEMANN_MIDDLE, 4, w, a), GB_OK);
    assert_true(fabs(a[0] - 0.125) < 1e-7 && fabs(a[3] - 0.875) < 1e-7);
    assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_RIEMANN_LEFT, 4, w, a), GB_OK);
    assert_true(a[0] == 0 && fabs(a[3] - 0.75) < 1e-7);
    assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_RIEMANN_RIGHT, 4, w, a), GB_OK);
    assert_true(fabs(a[0] - 0.25) < 1e-7 && a[3] == 1);
    assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_RIEMANN_RIGHT, 1, w, a), GB_ERR_ARG);
    assert_int_equal(gb_integration_params(f->ctx, GB_INTEGRATION_GAUSS_LEGENDRE, 0, w, a), GB_ERR_ARG);
    assert_int_equal(gb_integration_parse("gausslegendre"), GB_INTEGRATION_GAUSS_LEGENDRE);
    assert_int_equal(gb_integration_parse("riemann_trapezoid"), GB_INTEGRATION_RIEMANN_TRAPEZOID);
    assert_int_equal(gb_integration_parse("simpson"), GB_INTEGRATION_COUNT);
}

static void test_ig_methods(void **state) {
    fixture *f = *state;
    static const char *names[] = {"riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
                                  "gausslegendre"};
    for (int m = 0; m < 5; m++) {
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.n_steps = 7;
        o.integration = gb_integration_parse(names[m]);
        o.batch = 5;   /* 14 rows: passes of 5, 5, 4 mixing both items */
        char ref[64], dref[80];
        snprintf(ref, sizeof ref, "ig_%s", names[m]);
        snprintf(dref, sizeof dref, "ig_%s_delta.npy", names[m]);
        gb_explanation *r = check(f, "integrated_gradients", &o, ref);
        check_delta(f, r, dref);
        assert_int_equal(r->mode, GB_HEATMAP_SIGNED);
        assert_int_equal(r->rows, 2 + 2 * 7);   /* f(x') + the path */
        gb_explanation_free(r);
    }
}

static void test_ig_baselines(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_tensor *b = load(f->ctx, "baseline.npy");
    o.baseline = GB_BASELINE_TENSOR;
    o.baseline_tensor = b;
    o.n_steps = 16;
    gb_explanation *r = check(f, "integrated_gradients", &o, "ig_tensor");
    gb_explanation_free(r);
    gb_tensor_free(b);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.baseline = GB_BASELINE_BLUR;
    o.blur_sigma = 1.5;
    o.n_steps = 9;
    o.integration = GB_INTEGRATION_RIEMANN_MIDDLE;
    gb_explanation_free(check(f, "integrated_gradients", &o, "ig_blur"));
    /* uniform noise: seeded, within the input's range, reproducible */
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.baseline = GB_BASELINE_UNIFORM;
    o.seed = 5;
    gb_explanation *r1 = run(f, "integrated_gradients", &o), *r2 = run(f, "integrated_gradients", &o);
    assert_memory_equal(r1->attr->data, r2->attr->data, (size_t)r1->attr->numel * 4);
    assert_true(fabs(r1->delta[0]) < 0.05 * (fabs(r1->value[0] - r1->baseline_value[0]) + 1e-3));
    gb_explanation_free(r1);
    gb_explanation_free(r2);
}

/* Completeness: |delta| shrinks as the number of steps grows (Riemann). */
static void test_ig_completeness(void **state) {
    fixture *f = *state;
    double prev = INFINITY;
    for (int steps = 4; steps <= 256; steps *= 4) {
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.n_steps = steps;
        o.integration = GB_INTEGRATION_RIEMANN_MIDDLE;
        o.batch = 64;
        gb_explanation *r = run(f, "integrated_gradients", &o);
        double d = fabs(r->delta[0]) + fabs(r->delta[1]);
        assert_true(d < prev);
        prev = d;
        gb_explanation_free(r);
    }
    assert_true(prev < 1e-3);
}

/* The same numbers whatever the batch size (rows of different items mixed). */
static void test_batch_invariance(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.n_steps = 10;
    o.batch = 1;
    gb_explanation *a = run(f, "integrated_gradients", &o);
    o.batch = 7;
    gb_explanation *b = run(f, "integrated_gradients", &o);
    assert_true(rel_l2(a->attr, b->attr) < 1e-6);
    gb_explanation_free(a);
    gb_explanation_free(b);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.n_samples = 6;
    o.seed = 42;
    o.batch = 4;
    a = run(f, "smoothgrad", &o);
    o.batch = 5;
    b = run(f, "smoothgrad", &o);
    assert_true(rel_l2(a->attr, b->attr) < 1e-6);
    gb_explanation_free(b);
    o.seed = 43;
    b = run(f, "smoothgrad", &o);
    assert_true(rel_l2(a->attr, b->attr) > 1e-3);   /* another seed, other noise */
    gb_explanation_free(a);
    gb_explanation_free(b);
}

/* ---- noise methods with the fixture's draws ---------------------------------------------- */

static void test_smoothgrad_family(void **state) {
    fixture *f = *state;
    gb_tensor *noise = load(f->ctx, "noise.npy");
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.n_samples = 4;
    o.fixed_noise = noise;
    o.batch = 3;
    gb_explanation_free(check(f, "smoothgrad", &o, "smoothgrad"));
    gb_explanation_free(check(f, "smoothgrad_sq", &o, "smoothgrad_sq"));
    gb_explanation_free(check(f, "vargrad", &o, "vargrad"));
    o.n_samples = 3;   /* the wrong number of draws */
    gb_explanation *r;
    assert_int_equal(gb_explain(f->e, "smoothgrad", f->x, &o, &r), GB_ERR_ARG);
    gb_tensor_free(noise);
}

static void test_gradient_shap(void **state) {
    fixture *f = *state;
    gb_tensor *bset = load(f->ctx, "bset.npy"), *noise = load(f->ctx, "shap_noise.npy");
    gb_tensor *alpha = load(f->ctx, "shap_alpha.npy"), *bidx = load(f->ctx, "shap_bidx.npy");
    gb_tensor *fb = load(f->ctx, "gradient_shap_fb.npy");
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.n_samples = 4;
    o.baseline = GB_BASELINE_TENSOR;
    o.baseline_tensor = bset;
    o.fixed_noise = noise;
    o.fixed_alpha = alpha->data;
    o.fixed_baseline = bidx->data;
    gb_explanation *r = check(f, "gradient_shap", &o, "gradient_shap");
    for (int n = 0; n < 2; n++) {
        assert_true(fabs(r->baseline_value[n] - ((const float *)fb->data)[n]) < 1e-4);
        double s = 0;
        for (int64_t i = 0; i < r->attr->numel / 2; i++) s += ((const float *)r->attr->data)[n * 432 + i];
        assert_true(fabs(r->delta[n] - (s - (r->value[n] - r->baseline_value[n]))) < 1e-6);
    }
    gb_explanation_free(r);
    /* seeded draws: reproducible */
    o.fixed_noise = NULL;
    o.fixed_alpha = NULL;
    o.fixed_baseline = NULL;
    o.noise = 0.1;
    o.seed = 9;
    gb_explanation *r1 = run(f, "gradient_shap", &o), *r2 = run(f, "gradient_shap", &o);
    assert_memory_equal(r1->attr->data, r2->attr->data, (size_t)r1->attr->numel * 4);
    gb_explanation_free(r1);
    gb_explanation_free(r2);
    gb_tensor_free(bset);
    gb_tensor_free(noise);
    gb_tensor_free(alpha);
    gb_tensor_free(bidx);
    gb_tensor_free(fb);
}

/* ---- layer attribution ------------------------------------------------------------------- */

static void test_layer(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.layer = "feat";
    gb_explanation *r = check(f, "saliency", &o, "layer_grad");
    assert_string_equal(r->attributed_to, "feat");
    assert_int_equal(r->attr->dims[1], 12);
    gb_explanation_free(r);
    gb_explanation_free(check(f, "input_x_gradient", &o, "layer_gxa"));
    o.n_steps = 7;
    gb_explanation *c = check(f, "integrated_gradients", &o, "layer_cond_gausslegendre");
    check_delta(f, c, "layer_cond_gausslegendre_delta.npy");
    gb_explanation_free(c);
    o.integration = GB_INTEGRATION_RIEMANN_TRAPEZOID;
    o.batch = 3;
    c = check(f, "integrated_gradients", &o, "layer_cond_riemann_trapezoid");
    check_delta(f, c, "layer_cond_riemann_trapezoid_delta.npy");
    gb_explanation_free(c);
}

/* ---- a model with a fixed batch of 1: rows run one at a time ------------------------------ */

static void test_fixed_batch(void **state) {
    fixture *f = *state;
    char p[1024];
    fix_path(p, sizeof p, "explain_net_b1.onnx");
    gb_model *m;
    gb_explainer *e;
    if (gb_model_load(f->ctx, p, &m)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    if (gb_explainer_create(f->ctx, m, &e)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.n_steps = 7;
    o.integration = GB_INTEGRATION_RIEMANN_LEFT;
    o.batch = 4;   /* ignored: the model takes exactly 1 row */
    gb_explanation *r;
    if (gb_explain(e, "integrated_gradients", f->x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    gb_tensor *want = load(f->ctx, "ig_riemann_left.npy");
    assert_true(rel_l2(r->attr, want) < 1e-3);
    gb_tensor_free(want);
    gb_explanation_free(r);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    if (gb_explain(e, "guided_backprop", f->x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    want = load(f->ctx, "guided_backprop.npy");
    assert_true(rel_l2(r->attr, want) < 1e-3);
    gb_tensor_free(want);
    gb_explanation_free(r);
    gb_explainer_free(e);
    gb_model_free(m);
}

/* ---- the default model: completeness and where the maps put their mass ------------------------ */

typedef struct {
    gb_ctx *ctx;
    gb_model *m;
    gb_sidecar *sc;
    gb_explainer *e;
    gb_tensor *x;            /* (10, 1, 28, 28): one sample image per class */
    uint8_t *pix;            /* the samples' pixels, (10, 28, 28) */
    int n;
} defmodel;

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Load models/default with every samples/K_<name>.png; false if absent. */
static bool load_default(defmodel *d) {
    char p[1024], dir[1024];
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/models/default/fashion_cnn.onnx", src ? src : ".");
    snprintf(dir, sizeof dir, "%s/models/default/samples", src ? src : ".");
    FILE *fp = fopen(p, "rb");
    if (!fp) return false;
    fclose(fp);
    memset(d, 0, sizeof *d);
    assert_int_equal(gb_ctx_create(&d->ctx), GB_OK);
    if (gb_model_load(d->ctx, p, &d->m)) fail_msg("%s", gb_ctx_errmsg(d->ctx));
    if (gb_sidecar_for_model(d->ctx, d->m, p, &d->sc)) fail_msg("%s", gb_ctx_errmsg(d->ctx));
    char *names[64];
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    struct dirent *ent;
    while ((ent = readdir(dh)) && d->n < 64)
        if (strstr(ent->d_name, ".png")) names[d->n++] = strdup(ent->d_name);
    closedir(dh);
    assert_true(d->n >= 1);
    qsort(names, (size_t)d->n, sizeof *names, cmp_name);
    gb_image *imgs[64];
    d->pix = malloc((size_t)d->n * 28 * 28);
    for (int i = 0; i < d->n; i++) {
        char ip[1200];
        snprintf(ip, sizeof ip, "%s/%s", dir, names[i]);
        if (gb_image_load(d->ctx, ip, &imgs[i])) fail_msg("%s", gb_ctx_errmsg(d->ctx));
        assert_int_equal(imgs[i]->width, 28);
        assert_int_equal(imgs[i]->channels, 1);
        for (int y = 0; y < 28; y++) memcpy(d->pix + (i * 28 + y) * 28, imgs[i]->data + y * imgs[i]->stride, 28);
        free(names[i]);
    }
    if (gb_preproc_batch(d->ctx, &d->sc->input, (const gb_image *const *)imgs, d->n, &d->x))
        fail_msg("%s", gb_ctx_errmsg(d->ctx));
    for (int i = 0; i < d->n; i++) gb_image_free(imgs[i]);
    if (gb_explainer_create(d->ctx, d->m, &d->e)) fail_msg("%s", gb_ctx_errmsg(d->ctx));
    return true;
}

static void free_default(defmodel *d) {
    gb_explainer_free(d->e);
    gb_tensor_free(d->x);
    free(d->pix);
    gb_sidecar_free(d->sc);
    gb_model_free(d->m);
    gb_ctx_free(d->ctx);
}

/* IG's completeness delta shrinks with the steps on a real model and real
 * images, and Captum's default (50 Gauss-Legendre steps) is accurate. */
static void test_default_model_completeness(void **state) {
    (void)state;
    defmodel d;
    if (!load_default(&d)) skip();
    double prev = INFINITY;
    for (int steps = 8; steps <= 128; steps *= 4) {
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.n_steps = steps;
        o.integration = GB_INTEGRATION_RIEMANN_TRAPEZOID;
        gb_explanation *r;
        if (gb_explain(d.e, "integrated_gradients", d.x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(d.ctx));
        double sum = 0, scale = 0;
        for (int n = 0; n < d.n; n++) {
            sum += fabs(r->delta[n]);
            scale += fabs(r->value[n] - r->baseline_value[n]);
        }
        print_message("default model, %3d steps riemann_trapezoid: mean |delta| %.3g (mean |f(x) - f(x')| %.3g)\n",
                      steps, sum / d.n, scale / d.n);
        assert_true(sum < prev);
        prev = sum;
        gb_explanation_free(r);
    }
    /* Gauss-Legendre: Captum's default 50 steps within 5% of f(x) - f(x')
     * on every sample (ReLU kinks limit it), 200 steps within 1% */
    for (int steps = 50; steps <= 200; steps *= 4) {
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.n_steps = steps;
        gb_explanation *r;
        if (gb_explain(d.e, "integrated_gradients", d.x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(d.ctx));
        double worst = 0, tol = steps == 50 ? 0.05 : 0.01;
        for (int n = 0; n < d.n; n++) {
            double rel = fabs(r->delta[n]) / fabs(r->value[n] - r->baseline_value[n]);
            if (rel > worst) worst = rel;
        }
        print_message("default model, %3d steps gausslegendre: max |delta| / |f(x) - f(x')| = %.3g\n", steps, worst);
        if (worst > tol) fail_msg("%d Gauss-Legendre steps: relative delta %.3g over %.2g", steps, worst, tol);
        gb_explanation_free(r);
    }
    free_default(&d);
}

/* "Maps of sample images put more mass on the object than on the empty
 * background": the mean |attribution| per pixel on the garment and its
 * 2-pixel outline (Manhattan distance <= 2 from a non-zero pixel: a
 * silhouette classifier looks at the outline too) over the mean on the rest
 * of the background. The median over the 10 samples must exceed 1.2 for the
 * methods below. (Not for smoothgrad, whose noise makes the empty background
 * light up on this small model, nor saliency: see the printed ratios.) */
static void test_default_model_mass(void **state) {
    (void)state;
    defmodel d;
    if (!load_default(&d)) skip();
    static const char *methods[] = {"integrated_gradients", "gradient_shap", "input_x_gradient", "guided_backprop",
                                    "deconvnet", "saliency", "smoothgrad"};
    static const bool required[] = {true, true, true, true, true, false, false};
    unsigned char *obj = malloc((size_t)d.n * 28 * 28);
    for (int i = 0; i < d.n; i++)
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                bool near = false;
                for (int dy = -2; dy <= 2 && !near; dy++)
                    for (int dx = -2; dx <= 2 && !near; dx++) {
                        int yy = y + dy, xx = x + dx;
                        if (abs(dy) + abs(dx) > 2 || yy < 0 || yy >= 28 || xx < 0 || xx >= 28) continue;
                        near = d.pix[(i * 28 + yy) * 28 + xx] > 0;
                    }
                obj[(i * 28 + y) * 28 + x] = near;
            }
    for (size_t k = 0; k < sizeof methods / sizeof *methods; k++) {
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.seed = 1;
        gb_explanation *r;
        if (gb_explain(d.e, methods[k], d.x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(d.ctx));
        double ratio[64];
        char line[512];
        size_t lo = (size_t)snprintf(line, sizeof line, "%-21s object/background density:", methods[k]);
        for (int i = 0; i < d.n; i++) {
            double so = 0, sb = 0;
            int no = 0, nb = 0;
            for (int p = 0; p < 28 * 28; p++) {
                double v = fabs(((const float *)r->attr->data)[i * 784 + p]);
                if (obj[i * 784 + p]) so += v, no++;
                else sb += v, nb++;
            }
            ratio[i] = nb ? (so / (no ? no : 1)) / (sb / nb + 1e-30) : INFINITY;
            if (lo < sizeof line) lo += (size_t)snprintf(line + lo, sizeof line - lo, " %.2f", ratio[i]);
        }
        for (int i = 1; i < d.n; i++)   /* insertion sort for the median */
            for (int j = i; j > 0 && ratio[j] < ratio[j - 1]; j--) {
                double t = ratio[j];
                ratio[j] = ratio[j - 1];
                ratio[j - 1] = t;
            }
        double med = d.n % 2 ? ratio[d.n / 2] : 0.5 * (ratio[d.n / 2 - 1] + ratio[d.n / 2]);
        print_message("%s  median %.2f\n", line, med);
        if (required[k] && !(med > 1.2)) fail_msg("%s: median object/background density %.2f", methods[k], med);
        gb_explanation_free(r);
    }
    free(obj);
    free_default(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_parse),
        cmocka_unit_test(test_integration_params),
        cmocka_unit_test(test_saliency),
        cmocka_unit_test(test_input_x_gradient),
        cmocka_unit_test(test_guided_deconv),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_target_errors),
        cmocka_unit_test(test_ig_methods),
        cmocka_unit_test(test_ig_baselines),
        cmocka_unit_test(test_ig_completeness),
        cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_smoothgrad_family),
        cmocka_unit_test(test_gradient_shap),
        cmocka_unit_test(test_layer),
        cmocka_unit_test(test_fixed_batch),
        cmocka_unit_test(test_default_model_completeness),
        cmocka_unit_test(test_default_model_mass),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
