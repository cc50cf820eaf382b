/*
 * test_deeplift.c — DeepLIFT and DeepLIFT-SHAP (src/methods/deeplift.c)
 * against Captum, and summation-to-delta.
 *
 * Fixtures (tests/fixtures/relevance/, made by
 * tests/scripts/make_relevance_fixtures.py, which runs Captum from source):
 * the residual CNN with BatchNorm and max-pooling (relnet.onnx, and with BN
 * kept: relnet_keepbn.onnx); DeepLift with a zero baseline and with a given
 * one (dl_ref.npy), and DeepLiftShap over four baselines (dl_bset.npy), by
 * deeplift_reference.py's torch re-statement of Captum's deep_lift.py
 * (nonlinear() and maxpool()). Captum itself on Debian's torch skips its
 * maxpool() hook (its output, captum_*.npy, equals max-pooling by the
 * gradient; the script prints the check), which breaks summation-to-delta. glassbox must match within 1e-3 relative L2 on both exports
 * and its attributions must sum to f(x) - f(x') within float tolerance (the
 * max-pool, the residual and BN included). RevealCancel matches the
 * paper's equations computed in NumPy on a ReLU MLP and keeps summation on
 * the residual CNN. Bad references fail cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-3

typedef struct {
    gb_ctx *ctx;
    gb_model *m, *mbn;
    gb_explainer *e, *ebn;
    gb_tensor *x, *ref, *bset;
} fixture;

static void fix_path(char *p, size_t cap, const char *dir, const char *file) {
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, cap, "%s/%s/%s", src ? src : ".", dir, file);
}

static gb_tensor *load(gb_ctx *ctx, const char *file) {
    char p[1024];
    fix_path(p, sizeof p, "tests/fixtures/relevance", file);
    gb_tensor *t = NULL;
    if (gb_npy_read(ctx, p, &t)) fail_msg("%s", gb_ctx_errmsg(ctx));
    return t;
}

static void open_model(fixture *f, const char *file, gb_model **m, gb_explainer **e) {
    char p[1024];
    fix_path(p, sizeof p, "tests/fixtures/relevance", file);
    if (gb_model_load(f->ctx, p, m)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    if (gb_explainer_create(f->ctx, *m, e)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(gb_ctx_create(&f->ctx), GB_OK);
    open_model(f, "relnet.onnx", &f->m, &f->e);
    open_model(f, "relnet_keepbn.onnx", &f->mbn, &f->ebn);
    f->x = load(f->ctx, "input.npy");
    f->ref = load(f->ctx, "dl_ref.npy");
    f->bset = load(f->ctx, "dl_bset.npy");
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    gb_tensor_free(f->x);
    gb_tensor_free(f->ref);
    gb_tensor_free(f->bset);
    gb_explainer_free(f->e);
    gb_explainer_free(f->ebn);
    gb_model_free(f->m);
    gb_model_free(f->mbn);
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

/* sum(attr) = f(x) - f(x') for every item, and delta says so. */
static void check_summation(const gb_explanation *r) {
    int64_t per = r->attr->numel / r->n_items;
    for (int64_t n = 0; n < r->n_items; n++) {
        double sum = 0, scale = 0;
        for (int64_t k = 0; k < per; k++) {
            double v = ((const float *)r->attr->data)[n * per + k];
            sum += v;
            scale += fabs(v);
        }
        double want = r->value[n] - r->baseline_value[n], tol = 1e-5 * (scale + fabs(want)) + 1e-6;
        if (fabs(sum - want) > tol) fail_msg("item %lld: sum %.8g, f(x) - f(x') = %.8g", (long long)n, sum, want);
        assert_true(fabs(r->delta[n] - (sum - want)) < 1e-6 * (scale + 1));
    }
}

static void compare(fixture *f, gb_explainer *e, const char *method, gb_baseline_kind b, const gb_tensor *bt,
                    const char *fixture_file, const char *what) {
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.baseline = b;
    o.baseline_tensor = bt;
    gb_explanation *r = NULL;
    if (gb_explain(e, method, f->x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    gb_tensor *ref = load(f->ctx, fixture_file);
    double err = rel_l2(r->attr, ref);
    print_message("%-7s %-28s rel L2 %.2e  delta[0] %+.1e\n", what, fixture_file, err, r->delta[0]);
    if (err > TOL) fail_msg("%s %s: relative L2 %g > %g", what, fixture_file, err, TOL);
    check_summation(r);
    gb_tensor_free(ref);
    gb_explanation_free(r);
}

static void captum(void **state) {
    fixture *f = *state;
    gb_explainer *es[2] = {f->e, f->ebn};
    const char *names[2] = {"folded", "keepbn"};
    for (int i = 0; i < 2; i++) {
        compare(f, es[i], "deeplift", GB_BASELINE_ZERO, NULL, "dl_deeplift_zero.npy", names[i]);
        compare(f, es[i], "deeplift", GB_BASELINE_TENSOR, f->ref, "dl_deeplift_ref.npy", names[i]);
        compare(f, es[i], "deeplift_shap", GB_BASELINE_TENSOR, f->bset, "dl_deepliftshap.npy", names[i]);
    }
}

/* The layer form: (y - y') * m_y also sums to f(x) - f(x') at a cut. */
static void layer_summation(void **state) {
    fixture *f = *state;
    const char *feat = NULL;
    for (int i = 0; i < gb_model_num_nodes(f->m) && !feat; i++) {
        gb_node_info ni;
        gb_model_node(f->m, i, &ni);
        if (!strcmp(ni.op_type, "Gemm")) feat = ni.inputs[0];
    }
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.layer = feat;
    o.baseline = GB_BASELINE_TENSOR;
    o.baseline_tensor = f->ref;
    gb_explanation *r = NULL;
    if (gb_explain(f->e, "deeplift", f->x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    assert_string_equal(r->attributed_to, feat);
    check_summation(r);
    gb_explanation_free(r);
}

/* Blurred and uniform references: no fixture, but summation-to-delta. */
static void other_references(void **state) {
    fixture *f = *state;
    gb_baseline_kind kinds[2] = {GB_BASELINE_BLUR, GB_BASELINE_UNIFORM};
    for (int i = 0; i < 2; i++) {
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.baseline = kinds[i];
        o.batch = 2;
        gb_explanation *r = NULL;
        if (gb_explain(f->e, "deeplift", f->x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
        check_summation(r);
        for (int64_t n = 0; n < r->n_items; n++) assert_true(fabs(r->value[n] - r->baseline_value[n]) > 1e-3);
        gb_explanation_free(r);
    }
}

/* The default Fashion-MNIST model (Conv, MaxPool, Gemm...). */
static void default_model(void **state) {
    fixture *f = *state;
    char p[1024];
    fix_path(p, sizeof p, "models/default", "fashion_cnn.onnx");
    gb_model *m = NULL;
    gb_explainer *e = NULL;
    if (gb_model_load(f->ctx, p, &m)) {
        print_message("skipped: %s\n", gb_ctx_errmsg(f->ctx));
        skip();
    }
    assert_int_equal(gb_explainer_create(f->ctx, m, &e), GB_OK);
    gb_value_info in;
    gb_model_input(m, 0, &in);
    int64_t dims[4] = {2, in.dims[1], in.dims[2], in.dims[3]};
    gb_tensor *x = NULL;
    assert_int_equal(gb_tensor_create(f->ctx, GB_DTYPE_F32, 4, dims, &x), GB_OK);
    float *d = x->data;
    for (int64_t i = 0; i < x->numel; i++) d[i] = (float)sin(0.37 * (double)i) * 1.5f;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation *r = NULL;
    if (gb_explain(e, "deeplift", x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    check_summation(r);
    gb_explanation_free(r);
    gb_tensor_free(x);
    gb_explainer_free(e);
    gb_model_free(m);
}

static void bad_references(void **state) {
    fixture *f = *state;
    gb_explanation *r = NULL;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.baseline = GB_BASELINE_TENSOR;
    o.baseline_tensor = f->bset;   /* 4 references for 3 items: only deeplift_shap takes a set */
    assert_int_equal(gb_explain(f->e, "deeplift", f->x, &o, &r), GB_ERR_SHAPE);
    assert_null(r);
    int64_t d1 = 7;
    gb_tensor *odd = NULL;
    assert_int_equal(gb_tensor_create(f->ctx, GB_DTYPE_F32, 1, &d1, &odd), GB_OK);
    o.baseline_tensor = odd;
    assert_int_equal(gb_explain(f->e, "deeplift_shap", f->x, &o, &r), GB_ERR_ARG);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "reference"));
    gb_tensor_free(odd);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.deeplift_rule = (gb_deeplift_rule)7;
    assert_int_equal(gb_explain(f->e, "deeplift", f->x, &o, &r), GB_ERR_ARG);
    assert_null(r);
}

/* RevealCancel on a ReLU MLP against the paper's equations in NumPy
 * (rc_expected.npy), and summation-to-delta on the residual CNN (where the
 * ReLU after the residual Add keeps Rescale). */
static void reveal_cancel(void **state) {
    fixture *f = *state;
    char p[1024];
    fix_path(p, sizeof p, "tests/fixtures/relevance", "rc_mlp.onnx");
    gb_model *m = NULL;
    gb_explainer *e = NULL;
    if (gb_model_load(f->ctx, p, &m)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    assert_int_equal(gb_explainer_create(f->ctx, m, &e), GB_OK);
    gb_tensor *x = load(f->ctx, "rc_x.npy"), *ref = load(f->ctx, "rc_ref.npy"), *want = load(f->ctx, "rc_expected.npy");
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.deeplift_rule = GB_DEEPLIFT_REVEAL_CANCEL;
    o.baseline = GB_BASELINE_TENSOR;
    o.baseline_tensor = ref;
    assert_int_equal(gb_target_parse(f->ctx, "0", GB_TARGET_OUTPUT, &o.target), GB_OK);
    gb_explanation *r = NULL;
    if (gb_explain(e, "deeplift", x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    double err = rel_l2(r->attr, want);
    print_message("RevealCancel MLP vs NumPy: rel L2 %.2e\n", err);
    assert_true(err < TOL);
    check_summation(r);
    gb_explanation_free(r);
    /* the residual CNN: exact summation, and not the Rescale answer */
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.baseline = GB_BASELINE_TENSOR;
    o.baseline_tensor = f->ref;
    gb_explanation *a = NULL, *b = NULL;
    if (gb_explain(f->ebn, "deeplift", f->x, &o, &a)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    o.deeplift_rule = GB_DEEPLIFT_REVEAL_CANCEL;
    if (gb_explain(f->e, "deeplift", f->x, &o, &b)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    check_summation(b);
    assert_true(rel_l2(b->attr, a->attr) > 0.05);
    gb_explanation_free(a);
    gb_explanation_free(b);
    gb_tensor_free(x);
    gb_tensor_free(ref);
    gb_tensor_free(want);
    gb_explainer_free(e);
    gb_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(captum),         cmocka_unit_test(layer_summation), cmocka_unit_test(other_references),
        cmocka_unit_test(default_model),  cmocka_unit_test(bad_references),  cmocka_unit_test(reveal_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
