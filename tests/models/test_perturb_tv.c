/*
 * test_perturb_tv.c — occlusion, feature_ablation and shapley_sampling on a
 * torchvision architecture (resnet18, the model export_torchvision.py put in
 * $GB_TV_CACHE) against tests/scripts/perturb_reference.py: a float64 torch
 * re-statement of Captum's Occlusion, FeatureAblation and
 * ShapleyValueSampling, checked once against Captum itself (agreement
 * 0 / 2e-8 / 4e-8 relative L2; bench/README_perturb.md). Same settings as the
 * reference: occlusion window 32 x 32 stride 16, zero baseline; ablation over
 * a grid of 32 x 32 cells; Shapley sampling over 56 x 56 cells with the
 * reference's 2 permutations (fixed_perms). The bar: 1e-4 relative
 * (the reference's own float32 uncertainty is ~1e-5).
 *
 *     GB_TV_CACHE=DIR test_perturb_tv [model...]
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

static const char *g_models[8] = {"resnet18"};
static int g_n_models = 1;

static double rel_l2(const gb_tensor *a, const gb_tensor *b) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double d = (double)((const float *)a->data)[i] - ((const float *)b->data)[i];
        num += d * d;
        den += (double)((const float *)b->data)[i] * ((const float *)b->data)[i];
    }
    return sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
}

static gb_tensor *load(gb_ctx *ctx, const char *cache, const char *name, const char *what) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s.%s.npy", cache, name, what);
    gb_tensor *t = NULL;
    if (gb_npy_read(ctx, p, &t)) fail_msg("%s", gb_ctx_errmsg(ctx));
    return t;
}

static void test_models(void **state) {
    (void)state;
    const char *cache = getenv("GB_TV_CACHE");
    if (!cache) fail_msg("GB_TV_CACHE is not set");
    for (int mi = 0; mi < g_n_models; mi++) {
        const char *name = g_models[mi];
        gb_ctx *ctx;
        assert_int_equal(gb_ctx_create(&ctx), GB_OK);
        gb_ctx_set_threads(ctx, 2);
        char p[2048];
        snprintf(p, sizeof p, "%s/%s.perturb.meta.txt", cache, name);
        FILE *fh = fopen(p, "r");
        if (!fh) fail_msg("missing %s (run tests/scripts/perturb_reference.py)", p);
        long target = -1;
        char line[256];
        while (fgets(line, sizeof line, fh)) sscanf(line, "target %ld", &target);
        fclose(fh);
        assert_true(target >= 0);
        snprintf(p, sizeof p, "%s/%s.onnx", cache, name);
        gb_model *m = NULL;
        gb_explainer *e = NULL;
        if (gb_model_load(ctx, p, &m)) fail_msg("%s", gb_ctx_errmsg(ctx));
        assert_int_equal(gb_explainer_create(ctx, m, &e), GB_OK);
        gb_tensor *xall = load(ctx, cache, name, "input"), *perms = load(ctx, cache, name, "perturb.shapley_perms");
        gb_tensor x = *xall;   /* the first item */
        x.dims[0] = 1;
        x.numel = xall->numel / xall->dims[0];
        const char *methods[3] = {"occlusion", "feature_ablation", "shapley_sampling"};
        for (int k = 0; k < 3; k++) {
            gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
            o.target.kind = GB_TARGET_OUTPUT;
            o.target.n_index = 1;
            o.target.index[0] = target;
            o.window[0] = o.window[1] = 32;
            o.stride[0] = o.stride[1] = 16;
            o.grid[0] = o.grid[1] = k == 1 ? 32 : 56;
            o.n_samples = (int)perms->dims[0];
            o.fixed_perms = perms->data;
            gb_explanation *r = NULL;
            if (gb_explain(e, methods[k], &x, &o, &r)) fail_msg("%s %s: %s", name, methods[k], gb_ctx_errmsg(ctx));
            char what[64];
            snprintf(what, sizeof what, "perturb.%s", methods[k]);
            gb_tensor *want = load(ctx, cache, name, what);
            assert_int_equal(want->numel, r->attr->numel);
            double err = rel_l2(r->attr, want);
            print_message("%-10s %-17s rel L2 %.2e  (%lld rows, %.2f s)\n", name, methods[k], err, (long long)r->rows,
                          r->seconds);
            assert_true(err < 1e-4);
            gb_tensor_free(want);
            gb_explanation_free(r);
        }
        gb_tensor_free(perms);
        gb_tensor_free(xall);
        gb_explainer_free(e);
        gb_model_free(m);
        gb_ctx_free(ctx);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) {
        g_n_models = 0;
        for (int i = 1; i < argc && g_n_models < 8; i++) g_models[g_n_models++] = argv[i];
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_models)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
