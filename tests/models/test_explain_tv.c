/*
 * test_explain_tv.c — every attribution method of gb_explain against an
 * independent reference on torchvision architectures.
 *
 * tests/scripts/explain_reference.py (ctest fixture `tv_explain`, after the
 * export `tv_export`) rebuilds each seeded model that export_torchvision.py
 * exported into $GB_TV_CACHE and computes with torch autograd, in float64,
 * the attribution of item 0 of <model>.input.npy for its top-1 class by each
 * method as Captum / pytorch-grad-cam define it (that script checks its
 * formulas against both libraries with --verify-with-captum), writing
 * <model>.attr.<method>.npy. The random draws (SmoothGrad's noise,
 * GradientSHAP's noise, alphas, baseline indices and baseline set) are saved
 * next to them and injected here through gb_explain_opts.fixed_*, so the
 * sampled methods are compared draw for draw.
 *
 * Settings, the same on both sides: target = the reference's top-1 logit
 * (given explicitly); integrated_gradients zero baseline, 50 steps,
 * gausslegendre and riemann_trapezoid; smoothgrad / smoothgrad_sq / vargrad
 * and gradient_shap 4 samples (a set of 3 baselines); gradcam and gradcam_pp
 * at glassbox's default layer, whose value must equal the reference's layer
 * activation (<model>.attr.layer.npy) — the last spatial map before the head.
 *
 * Tolerance (as tests/models/test_torchvision.c): relative L2 error
 * ||got - want|| / ||want|| <= 1e-3, or, where the reference itself is less
 * certain than that, twice its uncertainty: the largest of PyTorch's float32
 * error on the same method, the change of the float64 result when every
 * ReLU / max-pool kink within float32 rounding is taken the other way, and
 * (one-row methods) its change when every evaluation point moves by 1e-6
 * (relative) — <model>.attr.meta.txt has all three per method. In a deep
 * ReLU / max-pool network with random weights a few pre-activations sit
 * within float32 rounding of zero; their masks decide the gradient, so no
 * float32 implementation can be closer than that (explain_reference.py,
 * "Chaos"; the integrated gradients' trapezoid rule also evaluates the
 * gradient at the zero input, where max-pool windows tie exactly). Every
 * number is printed.
 *
 * Also checked: gradcam's default layer holds the reference layer's values
 * (so glassbox picked the same map), and the graph has as many Relu nodes as
 * the reference's guided/deconvnet rules saw ReLU calls.
 *
 * GB_EXPLAIN_TV_MODELS=resnet18,vgg16 restricts the models (default: all
 * that explain_reference.py wrote).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/explain.h"
#include "glassbox/glassbox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const all_models[] = {
    "resnet18", "vgg16", "alexnet", "squeezenet1_1", "mobilenet_v3_small", "efficientnet_b0",
};
enum { N_MODELS = sizeof all_models / sizeof all_models[0] };

static const char *const methods[] = {
    "saliency",      "input_x_gradient", "integrated_gradients.gausslegendre", "integrated_gradients.riemann_trapezoid",
    "guided_backprop", "deconvnet",      "gradcam",                            "gradcam_pp",
    "smoothgrad",    "smoothgrad_sq",    "vargrad",                            "gradient_shap",
};
enum { N_METHODS = sizeof methods / sizeof methods[0] };

/* One model: loaded once for all its methods (group setup). */
typedef struct {
    const char *name;
    const char *dir;
    gb_ctx *ctx;
    gb_model *m;
    gb_explainer *e;
    gb_tensor *x;          /* item 0 of <name>.input.npy, (1, 3, 224, 224) */
    int64_t target;
    int samples, steps, relu_calls;
    double u32[N_METHODS], ushift[N_METHODS], ukink[N_METHODS];
    gb_tensor *sg_noise, *shap_noise, *shap_alpha, *shap_bidx, *shap_bset, *layer;
} model_state;

typedef struct {
    model_state *ms;
    int method;
    char label[96];
} method_case;

static double rel_l2(const float *got, const float *want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static gb_tensor *load_attr(model_state *ms, const char *key) {
    char p[1024];
    gb_tensor *t = NULL;
    snprintf(p, sizeof p, "%s/%s.attr.%s.npy", ms->dir, ms->name, key);
    if (gb_npy_read(ms->ctx, p, &t)) return NULL;
    return t;
}

/* <name>.attr.meta.txt: "target K", "samples S", "steps N", "relu_calls R",
 * "method NAME u_fp32 u_shift u_kinks" (u_shift < 0: not measured). */
static int read_meta(model_state *ms) {
    char p[1024], line[512];
    snprintf(p, sizeof p, "%s/%s.attr.meta.txt", ms->dir, ms->name);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    int got = 0;
    for (int i = 0; i < N_METHODS; i++) ms->u32[i] = ms->ushift[i] = ms->ukink[i] = -2;
    while (fgets(line, sizeof line, f)) {
        char key[64], name[96];
        long long v;
        double a, b, c;
        if (sscanf(line, "method %95s %lf %lf %lf", name, &a, &b, &c) == 4) {
            for (int i = 0; i < N_METHODS; i++)
                if (!strcmp(name, methods[i])) {
                    ms->u32[i] = a;
                    ms->ushift[i] = b;
                    ms->ukink[i] = c;
                    got++;
                }
        } else if (sscanf(line, "%63s %lld", key, &v) == 2) {
            if (!strcmp(key, "target")) ms->target = v;
            if (!strcmp(key, "samples")) ms->samples = (int)v;
            if (!strcmp(key, "steps")) ms->steps = (int)v;
            if (!strcmp(key, "relu_calls")) ms->relu_calls = (int)v;
        }
    }
    fclose(f);
    return got == N_METHODS && ms->samples > 0 && ms->steps > 0 ? 0 : -1;
}

static void free_state(model_state *ms) {
    gb_tensor *ts[] = {ms->x, ms->sg_noise, ms->shap_noise, ms->shap_alpha, ms->shap_bidx, ms->shap_bset, ms->layer};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) gb_tensor_free(ts[i]);
    gb_explainer_free(ms->e);
    gb_model_free(ms->m);
    gb_ctx_free(ms->ctx);
    const char *name = ms->name, *dir = ms->dir;
    memset(ms, 0, sizeof *ms);
    ms->name = name;
    ms->dir = dir;
}

/* The model of the group being run. (cmocka gives every test the group
 * state instead of its own initial_state when the group setup sets one, so
 * the setup leaves it NULL and the tests find their model through their case.) */
static model_state *current;

static int group_setup(void **state) {
    (void)state;
    model_state *ms = current;
    char p[1024];
    if (gb_ctx_create(&ms->ctx)) return -1;
    if (read_meta(ms)) {
        print_error("%s: no complete %s/%s.attr.meta.txt (run tests/scripts/explain_reference.py)\n", ms->name,
                    ms->dir, ms->name);
        return -1;
    }
    snprintf(p, sizeof p, "%s/%s.onnx", ms->dir, ms->name);
    if (gb_model_load(ms->ctx, p, &ms->m) || gb_explainer_create(ms->ctx, ms->m, &ms->e)) {
        print_error("%s: %s\n", ms->name, gb_ctx_errmsg(ms->ctx));
        return -1;
    }
    gb_tensor *x2 = NULL;
    snprintf(p, sizeof p, "%s/%s.input.npy", ms->dir, ms->name);
    if (gb_npy_read(ms->ctx, p, &x2)) {
        print_error("%s: %s\n", ms->name, gb_ctx_errmsg(ms->ctx));
        return -1;
    }
    int64_t d[GB_MAX_DIMS];
    memcpy(d, x2->dims, sizeof d);
    d[0] = 1;
    if (gb_tensor_create(ms->ctx, GB_DTYPE_F32, x2->ndim, d, &ms->x)) return -1;
    memcpy(ms->x->data, x2->data, (size_t)ms->x->numel * sizeof(float));
    gb_tensor_free(x2);
    ms->sg_noise = load_attr(ms, "sg_noise");
    ms->shap_noise = load_attr(ms, "shap_noise");
    ms->shap_alpha = load_attr(ms, "shap_alpha");
    ms->shap_bidx = load_attr(ms, "shap_bidx");
    ms->shap_bset = load_attr(ms, "shap_bset");
    ms->layer = load_attr(ms, "layer");
    if (!ms->sg_noise || !ms->shap_noise || !ms->shap_alpha || !ms->shap_bidx || !ms->shap_bset || !ms->layer) {
        print_error("%s: %s\n", ms->name, gb_ctx_errmsg(ms->ctx));
        return -1;
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    free_state(current);
    return 0;
}

static void check_method(void **state) {
    method_case *mc = *state;
    model_state *ms = mc->ms;
    const char *full = methods[mc->method];
    char method[64];
    snprintf(method, sizeof method, "%s", full);
    char *dot = strchr(method, '.');   /* integrated_gradients.<integration> */
    if (dot) *dot = 0;

    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    char spec[32];
    snprintf(spec, sizeof spec, "%lld", (long long)ms->target);
    assert_int_equal(gb_target_parse(ms->ctx, spec, GB_TARGET_OUTPUT, &o.target), GB_OK);
    o.n_steps = ms->steps;
    o.n_samples = ms->samples;
    if (dot) {
        o.integration = gb_integration_parse(dot + 1);
        assert_int_not_equal(o.integration, GB_INTEGRATION_COUNT);
    }
    if (!strcmp(method, "smoothgrad") || !strcmp(method, "smoothgrad_sq") || !strcmp(method, "vargrad"))
        o.fixed_noise = ms->sg_noise;
    if (!strcmp(method, "gradient_shap")) {
        o.baseline = GB_BASELINE_TENSOR;
        o.baseline_tensor = ms->shap_bset;
        o.fixed_noise = ms->shap_noise;
        o.fixed_alpha = ms->shap_alpha->data;
        o.fixed_baseline = ms->shap_bidx->data;
        assert_int_equal(ms->shap_alpha->numel, ms->samples);
        assert_int_equal(ms->shap_bidx->dtype, GB_DTYPE_I64);
    }
    gb_tensor *want = load_attr(ms, full);
    if (!want) fail_msg("%s: %s", mc->label, gb_ctx_errmsg(ms->ctx));
    gb_explanation *r = NULL;
    if (gb_explain(ms->e, method, ms->x, &o, &r)) fail_msg("%s: %s", mc->label, gb_ctx_errmsg(ms->ctx));
    if (r->attr->numel != want->numel) fail_msg("%s: %lld elements, want %lld", mc->label, (long long)r->attr->numel,
                                                (long long)want->numel);
    double err = rel_l2(r->attr->data, want->data, want->numel);
    double u32 = ms->u32[mc->method], ush = ms->ushift[mc->method], uk = ms->ukink[mc->method];
    double u = fmax(u32, fmax(ush, uk)), tol = u > 5e-4 ? 2 * u : 1e-3;
    char extra[400] = "";
    if (r->delta)
        snprintf(extra, sizeof extra, ", delta %.3g", r->delta[0]);
    if (!strcmp(method, "gradcam") || !strcmp(method, "gradcam_pp")) {
        /* the default layer must hold the reference's layer activation */
        const gb_tensor *A = gb_session_tensor(gb_explainer_session(ms->e), r->attributed_to);
        if (!A || A->numel != ms->layer->numel)
            fail_msg("%s: default layer '%s' is not the reference's (%lld elements)", mc->label, r->attributed_to,
                     (long long)ms->layer->numel);
        double la = rel_l2(A->data, ms->layer->data, A->numel);
        snprintf(extra, sizeof extra, ", layer '%s' value rel L2 %.2g", r->attributed_to, la);
        if (!(la <= 1e-4)) fail_msg("%s: default layer '%s' differs from the reference's (%.3g)", mc->label,
                                    r->attributed_to, la);
    }
    if (!strcmp(method, "guided_backprop") || !strcmp(method, "deconvnet")) {
        /* the rule applies to every Relu node; the reference to every ReLU call */
        int n_relu = 0;
        for (int i = 0; i < gb_model_num_nodes(ms->m); i++) {
            gb_node_info ni;
            gb_model_node(ms->m, i, &ni);
            n_relu += !strcmp(ni.op_type, "Relu");
        }
        snprintf(extra, sizeof extra, ", %d Relu nodes", n_relu);
        if (n_relu != ms->relu_calls) fail_msg("%s: %d Relu nodes, the reference has %d ReLU calls", mc->label,
                                               n_relu, ms->relu_calls);
    }
    char shs[32] = "n/a";
    if (ush >= 0) snprintf(shs, sizeof shs, "%.3g", ush);
    print_message("%-50s rel L2 %.3g (tol %.3g; torch fp32 %.3g, kinks %.3g, 1e-6 shift %s) %.2fs, %lld rows%s\n",
                  mc->label, err, tol, u32, uk, shs, r->seconds, (long long)r->rows, extra);
    gb_tensor_free(want);
    gb_explanation_free(r);
    if (!(err <= tol)) fail_msg("%s: relative L2 error %.3g > %.3g", mc->label, err, tol);
}

static int wanted(const char *name) {
    const char *sel = getenv("GB_EXPLAIN_TV_MODELS");
    if (!sel || !*sel) return 1;
    size_t n = strlen(name);
    for (const char *p = sel; *p;) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!q) break;
        p = q + 1;
    }
    return 0;
}

int main(void) {
    const char *dir = getenv("GB_TV_CACHE");
    if (!dir) {
        fprintf(stderr, "GB_TV_CACHE is not set (run through ctest)\n");
        return 1;
    }
    static model_state ms[N_MODELS];
    static method_case cases[N_MODELS][N_METHODS];
    int failed = 0, ran = 0;
    for (int i = 0; i < N_MODELS; i++) {
        if (!wanted(all_models[i])) continue;
        ms[i].name = all_models[i];
        ms[i].dir = dir;
        struct CMUnitTest tests[N_METHODS];
        for (int k = 0; k < N_METHODS; k++) {
            method_case *mc = &cases[i][k];
            mc->ms = &ms[i];
            mc->method = k;
            snprintf(mc->label, sizeof mc->label, "%s %s", all_models[i], methods[k]);
            tests[k] = (struct CMUnitTest){.name = mc->label, .test_func = check_method, .initial_state = mc};
        }
        char gname[64];
        snprintf(gname, sizeof gname, "explain %s", all_models[i]);
        current = &ms[i];
        failed += _cmocka_run_group_tests(gname, tests, N_METHODS, group_setup, group_teardown);
        ran++;
    }
    return failed ? 1 : ran ? 0 : 1;
}
