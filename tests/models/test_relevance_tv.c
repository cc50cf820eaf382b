/*
 * test_relevance_tv.c — LRP and DeepLIFT on the torchvision exports
 * ($GB_TV_CACHE, tests/scripts/export_torchvision.py).
 *
 *   - LRP parity: resnet18 (plain and BatchNorm kept) and vgg16, composites
 *     epsilon_plus, epsilon_gamma_box (ImageNet box bounds) and
 *     epsilon_alpha2_beta1, against lrp_reference.py's torch re-statement of
 *     Zennit (NAME.lrp.COMPOSITE.npy), within 1e-3 relative L2.
 *   - DeepLIFT parity: vgg16, alexnet, resnet18 (zero reference) against
 *     deeplift_reference.py's re-statement of Captum (NAME.deeplift.npy),
 *     within 1e-3 relative L2; and, for vgg16 and alexnet, with max-pooling
 *     by its gradient against what Captum itself computes on torch 1.13
 *     (NAME.deeplift_gpool.npy; the script checks it equals Captum exactly).
 *   - DeepLIFT summation-to-delta on every exported architecture (plain and
 *     keepbn): sum(attr) = f(x) - f(0) within float tolerance.
 *   - LRP on the gated networks (mobilenet_v3_small, efficientnet_b0) stays
 *     finite and of the order of f(x).
 * Models or reference files missing from the cache are skipped with a
 * message (the reference scripts run as ctest fixtures first).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/explain.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-3

static const char *cache(void) {
    const char *c = getenv("GB_TV_CACHE");
    return c ? c : "tvcache";
}

static bool exists(const char *p) { return access(p, R_OK) == 0; }

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

typedef struct {
    gb_ctx *ctx;
    gb_model *m;
    gb_explainer *e;
    gb_tensor *x;   /* the first item of NAME.input.npy */
} tv;

static bool tv_open(tv *t, const char *name, const char *variant) {
    char p[1024];
    memset(t, 0, sizeof *t);
    snprintf(p, sizeof p, "%s/%s%s.onnx", cache(), name, variant);
    if (!exists(p)) {
        print_message("%s: not in the cache, skipped\n", p);
        return false;
    }
    assert_int_equal(gb_ctx_create(&t->ctx), GB_OK);
    if (gb_model_load(t->ctx, p, &t->m)) fail_msg("%s", gb_ctx_errmsg(t->ctx));
    if (gb_explainer_create(t->ctx, t->m, &t->e)) fail_msg("%s", gb_ctx_errmsg(t->ctx));
    snprintf(p, sizeof p, "%s/%s.input.npy", cache(), name);
    gb_tensor *all = NULL;
    if (gb_npy_read(t->ctx, p, &all)) fail_msg("%s", gb_ctx_errmsg(t->ctx));
    int64_t dims[GB_MAX_DIMS];
    memcpy(dims, all->dims, sizeof dims);
    dims[0] = 1;
    assert_int_equal(gb_tensor_create(t->ctx, GB_DTYPE_F32, all->ndim, dims, &t->x), GB_OK);
    memcpy(t->x->data, all->data, sizeof(float) * (size_t)t->x->numel);
    gb_tensor_free(all);
    return true;
}

static void tv_close(tv *t) {
    gb_tensor_free(t->x);
    gb_explainer_free(t->e);
    gb_model_free(t->m);
    gb_ctx_free(t->ctx);
}

static gb_tensor *load_ref(tv *t, const char *file) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", cache(), file);
    if (!exists(p)) return NULL;
    gb_tensor *r = NULL;
    if (gb_npy_read(t->ctx, p, &r)) fail_msg("%s", gb_ctx_errmsg(t->ctx));
    return r;
}

static const char *const composites[] = {"epsilon_plus", "epsilon_gamma_box", "epsilon_alpha2_beta1"};

static void lrp_model(const char *name, const char *variant) {
    tv t;
    if (!tv_open(&t, name, variant)) skip();
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    float lo[3], hi[3];
    for (int c = 0; c < 3; c++) {
        lo[c] = (0 - mean[c]) / sd[c];
        hi[c] = (1 - mean[c]) / sd[c];
    }
    int done = 0;
    for (size_t k = 0; k < sizeof composites / sizeof *composites; k++) {
        char f[256];
        snprintf(f, sizeof f, "%s.lrp.%s.npy", name, composites[k]);
        gb_tensor *ref = load_ref(&t, f);
        if (!ref) {
            print_message("%s: no reference (lrp_reference.py), skipped\n", f);
            continue;
        }
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        o.lrp_composite = composites[k];
        o.lrp_low = lo;
        o.lrp_high = hi;
        o.lrp_box_n = 3;
        gb_explanation *r = NULL;
        if (gb_explain(t.e, "lrp", t.x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(t.ctx));
        double err = rel_l2(r->attr, ref);
        print_message("%s%s lrp %-22s rel L2 %.2e  (%.2f s)\n", name, variant, composites[k], err, r->seconds);
        if (err > TOL) fail_msg("%s%s %s: relative L2 %g > %g", name, variant, composites[k], err, TOL);
        gb_explanation_free(r);
        gb_tensor_free(ref);
        done++;
    }
    tv_close(&t);
    if (!done) skip();
}

static void lrp_resnet18(void **s) {
    (void)s;
    lrp_model("resnet18", "");
}
static void lrp_resnet18_keepbn(void **s) {
    (void)s;
    lrp_model("resnet18", ".keepbn");
}
static void lrp_vgg16(void **s) {
    (void)s;
    lrp_model("vgg16", "");
}

/* DeepLIFT with a zero reference; parity when a reference file exists,
 * summation-to-delta always. */
static void deeplift_model(const char *name, const char *variant, bool parity) {
    tv t;
    if (!tv_open(&t, name, variant)) return;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation *r = NULL;
    if (gb_explain(t.e, "deeplift", t.x, &o, &r)) fail_msg("%s%s: %s", name, variant, gb_ctx_errmsg(t.ctx));
    double sum = 0, scale = 0;
    for (int64_t i = 0; i < r->attr->numel; i++) {
        double v = ((const float *)r->attr->data)[i];
        sum += v;
        scale += fabs(v);
    }
    double want = r->value[0] - r->baseline_value[0];
    print_message("%s%s deeplift: sum %.6g, f(x) - f(0) = %.6g (delta %.1e, %.2f s)", name, variant, sum, want,
                  r->delta[0], r->seconds);
    if (fabs(sum - want) > 1e-4 * (scale + fabs(want)))
        fail_msg("%s%s: DeepLIFT sums to %.7g, f(x) - f(x') = %.7g", name, variant, sum, want);
    if (parity) {
        char f[256];
        snprintf(f, sizeof f, "%s.deeplift.npy", name);
        gb_tensor *ref = load_ref(&t, f);
        if (ref) {
            double err = rel_l2(r->attr, ref);
            print_message("; vs Captum re-statement rel L2 %.2e", err);
            if (err > TOL) fail_msg("%s: DeepLIFT relative L2 %g > %g", name, err, TOL);
            gb_tensor_free(ref);
        }
    }
    print_message("\n");
    gb_explanation_free(r);
    if (parity) {
        /* Captum as run (max-pooling by its gradient) */
        char f[256];
        snprintf(f, sizeof f, "%s.deeplift_gpool.npy", name);
        gb_tensor *ref = load_ref(&t, f);
        if (ref) {
            o.deeplift_maxpool_grad = 1;
            if (gb_explain(t.e, "deeplift", t.x, &o, &r)) fail_msg("%s: %s", name, gb_ctx_errmsg(t.ctx));
            double err = rel_l2(r->attr, ref);
            print_message("%s deeplift (max-pool by gradient, = Captum as run): rel L2 %.2e\n", name, err);
            if (err > TOL) fail_msg("%s: DeepLIFT (max-pool gradient) relative L2 %g > %g", name, err, TOL);
            gb_explanation_free(r);
            gb_tensor_free(ref);
        }
    }
    tv_close(&t);
}

static void deeplift_parity(void **s) {
    (void)s;
    deeplift_model("vgg16", "", true);
    deeplift_model("alexnet", "", true);
    deeplift_model("resnet18", "", true);
}

static const char *const archs[] = {"squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small", "resnet50", "densenet121",
                                    "googlenet", "shufflenet_v2_x1_0", "efficientnet_b0"};

static void deeplift_summation(void **s) {
    (void)s;
    for (size_t k = 0; k < sizeof archs / sizeof *archs; k++) deeplift_model(archs[k], "", false);
    deeplift_model("resnet18", ".keepbn", false);
    deeplift_model("mobilenet_v2", ".keepbn", false);
}

/* Gated products (SiLU, squeeze-excitation): with the gradient through the
 * Mul, relevance-sized numbers enter the gates' layers and the map blows up
 * (|sum| ~ 1e16 on efficientnet_b0); with the signal-take-all rule the
 * relevance stays of the order of f(x). */
static void lrp_gated(void **s) {
    (void)s;
    const char *names[2] = {"mobilenet_v3_small", "efficientnet_b0"};
    for (int k = 0; k < 2; k++) {
        tv t;
        if (!tv_open(&t, names[k], "")) continue;
        gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
        gb_explanation *r = NULL;
        if (gb_explain(t.e, "lrp", t.x, &o, &r)) fail_msg("%s: %s", names[k], gb_ctx_errmsg(t.ctx));
        double sum = 0;
        for (int64_t i = 0; i < r->attr->numel; i++) {
            double v = ((const float *)r->attr->data)[i];
            if (!isfinite(v)) fail_msg("%s: non-finite relevance", names[k]);
            sum += v;
        }
        print_message("%s lrp epsilon_plus: sum %.4g, f(x) = %.4g\n", names[k], sum, r->value[0]);
        if (!(fabs(sum) < 5 * fabs(r->value[0]))) fail_msg("%s: relevance %g for f(x) = %g", names[k], sum, r->value[0]);
        gb_explanation_free(r);
        tv_close(&t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lrp_resnet18),    cmocka_unit_test(lrp_resnet18_keepbn), cmocka_unit_test(lrp_vgg16),
        cmocka_unit_test(deeplift_parity), cmocka_unit_test(deeplift_summation), cmocka_unit_test(lrp_gated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
