/*
 * test_lrp.c — LRP (src/methods/lrp.c) against Zennit, and its conservation.
 *
 * Fixtures (tests/fixtures/relevance/, made by
 * tests/scripts/make_relevance_fixtures.py, which runs Zennit from source):
 * a residual CNN with BatchNorm, max- and average-pooling and two dense
 * layers, exported with BN folded (relnet.onnx) and kept (relnet_keepbn.onnx);
 * Zennit's relevance at the input for its composites and single rules, with
 * SequentialMergeBatchNorm and its Sum module for the residual addition,
 * seeded with one-hot * logit. glassbox must match within 1e-3 relative L2
 * on both exports (the keepbn one exercises the BN folding), and:
 *   - LRP-0 (epsilon exactly 0) on the bias-free ReLU variant conserves the
 *     relevance: at the input and at every hidden tensor outside the residual
 *     branch (every cut of the graph) it sums to f(x);
 *   - the relevance at a hidden tensor (--layer) matches Zennit's gradient
 *     there;
 *   - bad options fail with a message.
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
    gb_model *m, *mbn, *mnb;
    gb_explainer *e, *ebn, *enb;
    gb_tensor *x;
    gb_tensor *target;   /* int64 (N,) */
} fixture;

static void fix_path(char *p, size_t cap, const char *file) {
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, cap, "%s/tests/fixtures/relevance/%s", src ? src : ".", file);
}

static gb_tensor *load(gb_ctx *ctx, const char *file) {
    char p[1024];
    fix_path(p, sizeof p, file);
    gb_tensor *t = NULL;
    if (gb_npy_read(ctx, p, &t)) fail_msg("%s", gb_ctx_errmsg(ctx));
    return t;
}

static void open_model(fixture *f, const char *file, gb_model **m, gb_explainer **e) {
    char p[1024];
    fix_path(p, sizeof p, file);
    if (gb_model_load(f->ctx, p, m)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    if (gb_explainer_create(f->ctx, *m, e)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(gb_ctx_create(&f->ctx), GB_OK);
    open_model(f, "relnet.onnx", &f->m, &f->e);
    open_model(f, "relnet_keepbn.onnx", &f->mbn, &f->ebn);
    open_model(f, "relnet_nobias.onnx", &f->mnb, &f->enb);
    f->x = load(f->ctx, "input.npy");
    f->target = load(f->ctx, "target.npy");
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    gb_tensor_free(f->x);
    gb_tensor_free(f->target);
    gb_explainer_free(f->e);
    gb_explainer_free(f->ebn);
    gb_explainer_free(f->enb);
    gb_model_free(f->m);
    gb_model_free(f->mbn);
    gb_model_free(f->mnb);
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

static gb_explanation *run(fixture *f, gb_explainer *e, const gb_explain_opts *o) {
    gb_explanation *r = NULL;
    if (gb_explain(e, "lrp", f->x, o, &r)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    /* the explained class is the fixture's (the top-1 of the same logits) */
    const int64_t *t = f->target->data;
    for (int64_t n = 0; n < r->n_items; n++) assert_int_equal(r->target_offset[n], t[n]);
    return r;
}

typedef struct {
    const char *fixture, *composite, *rule, *first_rule;
} zcase;

static const zcase zcases[] = {
    {"zennit_epsilon_plus.npy", "epsilon_plus", NULL, NULL},
    {"zennit_epsilon_gamma_box.npy", "epsilon_gamma_box", NULL, NULL},
    {"zennit_epsilon_alpha2_beta1.npy", "epsilon_alpha2_beta1", NULL, NULL},
    {"zennit_epsilon_plus_flat.npy", "epsilon_plus_flat", NULL, NULL},
    {"zennit_rule_epsilon.npy", NULL, "epsilon", NULL},
    {"zennit_rule_gamma.npy", NULL, "gamma", NULL},
    {"zennit_rule_zplus.npy", NULL, "zplus", NULL},
    {"zennit_rule_alpha1beta0.npy", NULL, "alpha1beta0", NULL},
    {"zennit_first_wsquare.npy", NULL, "epsilon", "wsquare"},
};

static void check_zennit(fixture *f, gb_explainer *e, const char *what) {
    static const float low = -2.0f, high = 2.0f;   /* the fixture's EpsilonGammaBox bounds */
    for (size_t i = 0; i < sizeof zcases / sizeof *zcases; i++) {
        const zcase *z = &zcases[i];
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.lrp_composite = z->composite;
        o.lrp_rule = z->rule;
        o.lrp_first_rule = z->first_rule;
        o.lrp_low = &low;
        o.lrp_high = &high;
        o.lrp_box_n = 1;
        gb_explanation *r = run(f, e, &o);
        gb_tensor *ref = load(f->ctx, z->fixture);
        double err = rel_l2(r->attr, ref);
        print_message("%-9s %-34s rel L2 %.2e\n", what, z->fixture, err);
        if (err > TOL) fail_msg("%s %s: relative L2 error %g > %g", what, z->fixture, err, TOL);
        gb_tensor_free(ref);
        gb_explanation_free(r);
    }
}

static void zennit_folded(void **state) {
    fixture *f = *state;
    check_zennit(f, f->e, "folded");
}

/* BatchNormalization kept as nodes: folded into the convolutions by lrp.c. */
static void zennit_keepbn(void **state) {
    fixture *f = *state;
    check_zennit(f, f->ebn, "keepbn");
}

/* Relevance at a hidden tensor (the flattened features, Gemm's input). */
static void layer_relevance(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    /* the Flatten output: the input of the first Gemm */
    const char *feat = NULL;
    for (int i = 0; i < gb_model_num_nodes(f->m) && !feat; i++) {
        gb_node_info ni;
        gb_model_node(f->m, i, &ni);
        if (!strcmp(ni.op_type, "Gemm")) feat = ni.inputs[0];
    }
    assert_non_null(feat);
    o.layer = feat;
    gb_explanation *r = run(f, f->e, &o);
    gb_tensor *ref = load(f->ctx, "zennit_epsilon_plus_feat.npy");
    double err = rel_l2(r->attr, ref);
    print_message("layer %s rel L2 %.2e\n", feat, err);
    assert_true(err < TOL);
    gb_tensor_free(ref);
    gb_explanation_free(r);
}

/* LRP-0 on a bias-free ReLU network: sum R = f(x) at the input and at every
 * hidden tensor (Bach et al. 2015, eq. 5), here up to float rounding. */
static void conservation(void **state) {
    fixture *f = *state;
    int checked = 0;
    for (int i = -1; i < gb_model_num_nodes(f->mnb); i++) {
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.lrp_rule = "epsilon";
        o.lrp_epsilon = -1;   /* exactly 0 */
        gb_node_info ni = {0};
        if (i >= 0) {
            gb_model_node(f->mnb, i, &ni);
            if (!ni.n_outputs || !strcmp(ni.op_type, "Shape") || !strcmp(ni.op_type, "Constant")) continue;
            /* inside the residual branch a tensor carries only the branch's
             * share; conservation holds on cuts of the graph */
            if (strstr(ni.outputs[0], "/branch/")) continue;
            o.layer = ni.outputs[0];
        }
        gb_explanation *r = NULL;
        gb_status st = gb_explain(f->enb, "lrp", f->x, &o, &r);
        if (st) {   /* integer shape math and the logits themselves have no relevance form */
            assert_null(r);
            continue;
        }
        int64_t N = r->n_items, per = r->attr->numel / N;
        for (int64_t n = 0; n < N; n++) {
            double sum = 0;
            for (int64_t k = 0; k < per; k++) sum += ((const float *)r->attr->data)[n * per + k];
            if (fabs(sum - r->value[n]) > 1e-4 * fabs(r->value[n]) + 1e-5)
                fail_msg("relevance at %s sums to %.7g, f(x) = %.7g", o.layer ? o.layer : "input", sum, r->value[n]);
            if (!o.layer) assert_true(fabs(r->delta[n]) < 1e-4 * fabs(r->value[n]) + 1e-5);
        }
        checked++;
        gb_explanation_free(r);
    }
    print_message("conservation checked at %d tensors\n", checked);
    assert_true(checked >= 8);
}

/* With biases and epsilon > 0 relevance is absorbed: delta is what is lost. */
static void delta_reports_absorption(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.lrp_rule = "epsilon";
    o.lrp_epsilon = 10;
    gb_explanation *r = run(f, f->e, &o);
    int64_t per = r->attr->numel / r->n_items;
    for (int64_t n = 0; n < r->n_items; n++) {
        double sum = 0;
        for (int64_t k = 0; k < per; k++) sum += ((const float *)r->attr->data)[n * per + k];
        assert_true(fabs(sum - r->value[n] - r->delta[n]) < 1e-4 * (fabs(sum) + fabs(r->value[n])));
        assert_true(fabs(sum) < fabs(r->value[n]));   /* a large epsilon absorbs */
    }
    gb_explanation_free(r);
}

static void bad_options(void **state) {
    fixture *f = *state;
    gb_explanation *r = NULL;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.lrp_rule = "nonsense";
    assert_int_equal(gb_explain(f->e, "lrp", f->x, &o, &r), GB_ERR_ARG);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "nonsense"));
    assert_null(r);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.lrp_composite = "epsilon_minus";
    assert_int_equal(gb_explain(f->e, "lrp", f->x, &o, &r), GB_ERR_ARG);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "epsilon_plus"));
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    static const float lo[2] = {0, 0}, hi[2] = {1, 1};
    o.lrp_composite = "epsilon_gamma_box";
    o.lrp_low = lo;
    o.lrp_high = hi;
    o.lrp_box_n = 2;   /* the input has 3 channels */
    assert_int_equal(gb_explain(f->e, "lrp", f->x, &o, &r), GB_ERR_ARG);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.lrp_rule = "alphabeta";
    o.lrp_alpha = 0.5;
    assert_int_equal(gb_explain(f->e, "lrp", f->x, &o, &r), GB_ERR_ARG);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    o.layer = "no_such_tensor";
    assert_int_equal(gb_explain(f->e, "lrp", f->x, &o, &r), GB_ERR_NOT_FOUND);
    assert_null(r);
}

/* The same map whatever the batch size. */
static void batch_invariance(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.lrp_composite = "epsilon_alpha2_beta1";
    gb_explanation *a = run(f, f->e, &o);
    o.batch = 1;
    gb_explanation *b = run(f, f->e, &o);
    assert_true(rel_l2(a->attr, b->attr) < 1e-5);
    gb_explanation_free(a);
    gb_explanation_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zennit_folded),     cmocka_unit_test(zennit_keepbn),
        cmocka_unit_test(layer_relevance),   cmocka_unit_test(conservation),
        cmocka_unit_test(delta_reports_absorption), cmocka_unit_test(bad_options),
        cmocka_unit_test(batch_invariance),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
