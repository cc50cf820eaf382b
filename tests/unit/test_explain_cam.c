/*
 * test_explain_cam.c — the CAM family (src/methods/cam.c) against references
 * made by tests/scripts/make_cam_fixtures.py on a small two-headed ReLU
 * network (tests/fixtures/cam/): each map from its paper's formula in PyTorch,
 * cross-checked there against pytorch-grad-cam (GradCAM, GradCAMPlusPlus,
 * ScoreCAM) and Captum (LayerGradCam, GuidedGradCam). Maps must match within
 * 1e-3 relative L2 error (they match to ~1e-6).
 *
 * Also: cam = h w * gradcam on a GAP + linear head (and the same head written
 * as ReduceMean + MatMul + Add), cam refusing other heads, targets other than
 * the top-1 logit, the default layer, NHWC inputs, batch invariance of
 * Score-CAM, and on the default Fashion-MNIST model (when present) maps that
 * are denser on the object than on the background, and cam = h w gradcam.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/explain.h"

#include <dirent.h>
#include <math.h>
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
    snprintf(p, cap, "%s/tests/fixtures/cam/%s", src ? src : ".", file);
}

static gb_tensor *load(gb_ctx *ctx, const char *file) {
    char p[1024];
    fix_path(p, sizeof p, file);
    gb_tensor *t = NULL;
    if (gb_npy_read(ctx, p, &t)) fail_msg("%s", gb_ctx_errmsg(ctx));
    return t;
}

static void open_model(fixture *f, const char *file) {
    char p[1024];
    fix_path(p, sizeof p, file);
    gb_explainer_free(f->e);
    gb_model_free(f->m);
    f->e = NULL;
    f->m = NULL;
    if (gb_model_load(f->ctx, p, &f->m)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    if (gb_explainer_create(f->ctx, f->m, &f->e)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(gb_ctx_create(&f->ctx), GB_OK);
    open_model(f, "cam_net.onnx");
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

static gb_explanation *run_on(fixture *f, const char *method, const gb_tensor *x, const gb_explain_opts *o) {
    gb_explanation *r = NULL;
    if (gb_explain(f->e, method, x, o, &r)) fail_msg("%s: %s", method, gb_ctx_errmsg(f->ctx));
    return r;
}

static void compare(fixture *f, const char *method, const gb_explanation *r, const char *ref) {
    char file[256];
    snprintf(file, sizeof file, "%s.npy", ref);
    gb_tensor *want = load(f->ctx, file);
    assert_int_equal(r->attr->ndim, want->ndim);
    for (int i = 0; i < want->ndim; i++) assert_int_equal(r->attr->dims[i], want->dims[i]);
    double e = rel_l2(r->attr, want);
    print_message("  %-15s vs %-24s relative L2 error %.2e\n", method, ref, e);
    if (e > 1e-3) fail_msg("%s vs %s: relative L2 error %.3g", method, ref, e);
    gb_tensor_free(want);
}

/* Run and compare with fixture `ref`. */
static gb_explanation *check(fixture *f, const char *method, const gb_explain_opts *o, const char *ref) {
    gb_explanation *r = run_on(f, method, f->x, o);
    compare(f, method, r, ref);
    return r;
}

/* ---- Grad-CAM, Grad-CAM++ ------------------------------------------------------------ */

static void test_gradcam(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation *r = check(f, "gradcam", &o, "gradcam");
    assert_string_equal(r->attributed_to, "feat");   /* the default layer: last spatial map */
    assert_int_equal(r->target_offset[0], 0);        /* top-1 classes of the two items */
    assert_int_equal(r->target_offset[1], 3);
    assert_int_equal(r->mode, GB_HEATMAP_MAGNITUDE);
    assert_int_equal(r->rows, 2);
    gb_explanation_free(r);
    o.upsample = 0;
    gb_explanation_free(check(f, "gradcam", &o, "gradcam_lowres"));
    o.relu = 0;
    r = check(f, "gradcam", &o, "gradcam_norelu_lowres");
    assert_int_equal(r->mode, GB_HEATMAP_SIGNED);
    gb_explanation_free(r);
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    gb_explanation_free(check(f, "gradcam_pp", &o, "gradcam_pp"));
    /* another layer, by value name and by node name (the Relu node's first output) */
    o.layer = "feat1";
    r = check(f, "gradcam", &o, "gradcam_feat1");
    assert_string_equal(r->attributed_to, "feat1");
    gb_explanation_free(r);
    gb_explanation_free(check(f, "gradcam_pp", &o, "gradcam_pp_feat1"));
    o.layer = "/relu1/Relu";
    r = run_on(f, "gradcam", f->x, &o);
    assert_string_equal(r->attributed_to, "feat1");
    gb_explanation_free(r);
}

/* ---- CAM --------------------------------------------------------------------------- */

static void test_cam(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation *r = check(f, "cam", &o, "cam");
    assert_string_equal(r->attributed_to, "feat");
    gb_explanation_free(r);
    o.relu = 0;
    o.upsample = 0;
    gb_explanation *c = check(f, "cam", &o, "cam_norelu_lowres");
    /* Zhou et al.'s map averages to the logit minus the bias; and on a GAP +
     * linear head Grad-CAM's weights are w / (h w): cam = h w gradcam */
    gb_explanation *g = run_on(f, "gradcam", f->x, &o);
    int64_t hw = c->attr->dims[2] * c->attr->dims[3];
    assert_int_equal(hw, 6 * 5);
    float *gd = g->attr->data;
    for (int64_t i = 0; i < g->attr->numel; i++) gd[i] *= (float)hw;
    double e = rel_l2(g->attr, c->attr);
    print_message("  cam vs h w gradcam (unrectified): relative L2 error %.2e\n", e);
    assert_true(e < 1e-5);
    gb_explanation_free(g);
    gb_explanation_free(c);

    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    assert_int_equal(gb_target_parse(f->ctx, "3", GB_TARGET_OUTPUT, &o.target), GB_OK);
    gb_explanation_free(check(f, "cam", &o, "cam_t3"));
    /* the regression head: ReduceMean over (H, W) + Gemm */
    assert_int_equal(gb_target_parse(f->ctx, "score", GB_TARGET_OUTPUT, &o.target), GB_OK);
    gb_explanation_free(check(f, "cam", &o, "cam_score"));
}

/* The same head as ReduceMean(keepdims) -> Reshape -> MatMul -> Add. */
static void test_cam_matmul_head(void **state) {
    fixture *f = *state;
    open_model(f, "cam_mm.onnx");
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation_free(check(f, "cam", &o, "cam"));
    gb_explanation_free(check(f, "gradcam", &o, "gradcam"));
    open_model(f, "cam_net.onnx");
}

static void expect_fail(fixture *f, const char *method, const gb_explain_opts *o, gb_status want, const char *msg) {
    gb_explanation *r = (gb_explanation *)1;
    gb_status st = gb_explain(f->e, method, f->x, o, &r);
    if (st != want) fail_msg("%s: status %d (%s), expected %d", method, st, gb_ctx_errmsg(f->ctx), want);
    assert_null(r);
    if (msg && !strstr(gb_ctx_errmsg(f->ctx), msg))
        fail_msg("%s: message '%s' lacks '%s'", method, gb_ctx_errmsg(f->ctx), msg);
    print_message("  refused as expected: %s\n", gb_ctx_errmsg(f->ctx));
}

static void test_cam_refused(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.layer = "feat1";   /* not the map the head pools */
    expect_fail(f, "cam", &o, GB_ERR_UNSUPPORTED, "pools 'feat'");
    o.layer = NULL;
    assert_int_equal(gb_target_parse(f->ctx, "feat:2", GB_TARGET_NEURON, &o.target), GB_OK);
    expect_fail(f, "cam", &o, GB_ERR_UNSUPPORTED, "Gemm or MatMul");
    /* a hidden layer in the head: not CAM's form; Grad-CAM still works */
    open_model(f, "cam_mlp.onnx");
    o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    expect_fail(f, "cam", &o, GB_ERR_UNSUPPORTED, "gradcam");
    gb_explanation *r = run_on(f, "gradcam", f->x, &o);
    assert_string_equal(r->attributed_to, "feat");
    const float *a = r->attr->data;
    double s = 0;
    for (int64_t i = 0; i < r->attr->numel; i++) {
        assert_true(isfinite(a[i]) && a[i] >= 0);
        s += a[i];
    }
    assert_true(s > 0);
    gb_explanation_free(r);
    open_model(f, "cam_net.onnx");
}

static void test_errors(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.layer = "logits";
    expect_fail(f, "gradcam", &o, GB_ERR_UNSUPPORTED, "4-D");
    o.layer = "nosuch";
    expect_fail(f, "score_cam", &o, GB_ERR_NOT_FOUND, "nosuch");
    o.layer = NULL;
    /* before conv1's output there is only the input: no feature map */
    assert_int_equal(gb_target_parse(f->ctx, "/conv1/Conv_output_0:0,1,1", GB_TARGET_NEURON, &o.target), GB_OK);
    expect_fail(f, "gradcam", &o, GB_ERR_UNSUPPORTED, "--layer");
}

/* ---- targets ------------------------------------------------------------------------ */

static void test_targets(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    assert_int_equal(gb_target_parse(f->ctx, "3", GB_TARGET_OUTPUT, &o.target), GB_OK);
    gb_explanation_free(check(f, "gradcam", &o, "gradcam_t3"));
    assert_int_equal(gb_target_parse(f->ctx, "score:0", GB_TARGET_OUTPUT, &o.target), GB_OK);
    gb_explanation_free(check(f, "gradcam", &o, "gradcam_score"));
    gb_explanation_free(check(f, "gradcam_pp", &o, "gradcam_pp_score"));
    /* a neuron: channel 2 of "feat" over its map; the default layer is the
     * last map before it, conv2's (pre-ReLU) output */
    assert_int_equal(gb_target_parse(f->ctx, "feat:2", GB_TARGET_NEURON, &o.target), GB_OK);
    gb_explanation *r = check(f, "gradcam", &o, "gradcam_neuron");
    assert_string_equal(r->attributed_to, "/conv2/Conv_output_0");
    gb_explanation_free(r);
}

/* ---- Score-CAM ------------------------------------------------------------------------ */

static void test_score_cam(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.batch = 5;   /* 2 items x 8 channels = 16 masked rows: passes of 5, 5, 5, 1 mixing items */
    gb_explanation *a = check(f, "score_cam", &o, "score_cam");
    assert_int_equal(a->rows, 2 + 2 * 8);
    o.batch = 16;
    gb_explanation *b = run_on(f, "score_cam", f->x, &o);
    assert_true(rel_l2(a->attr, b->attr) < 1e-6);
    gb_explanation_free(a);
    gb_explanation_free(b);
    /* a regression target: its raw value is the score */
    assert_int_equal(gb_target_parse(f->ctx, "score", GB_TARGET_OUTPUT, &o.target), GB_OK);
    o.batch = 3;
    gb_explanation_free(check(f, "score_cam", &o, "score_cam_score"));
}

/* ---- Guided Grad-CAM -------------------------------------------------------------------- */

static void test_guided_gradcam(void **state) {
    fixture *f = *state;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    gb_explanation *r = check(f, "guided_gradcam", &o, "guided_gradcam");
    assert_int_equal(r->attr->dims[1], 3);   /* the input's shape */
    gb_explanation_free(r);
}

/* ---- NHWC input: the same maps; masks and guided maps in the input's layout ---------------- */

static gb_tensor *to_nhwc(gb_ctx *ctx, const gb_tensor *x) {
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], d[4] = {N, H, W, C};
    gb_tensor *y;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 4, d, &y), GB_OK);
    const float *s = x->data;
    float *t = y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t p = 0; p < H * W; p++) t[(n * H * W + p) * C + c] = s[(n * C + c) * H * W + p];
    return y;
}

static void test_nhwc(void **state) {
    fixture *f = *state;
    open_model(f, "cam_nhwc.onnx");
    gb_tensor *xn = to_nhwc(f->ctx, f->x);
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.layout = GB_LAYOUT_NHWC;
    static const char *const methods[] = {"gradcam", "gradcam_pp", "cam", "score_cam"};
    for (int i = 0; i < 4; i++) {
        gb_explanation *r = run_on(f, methods[i], xn, &o);
        compare(f, methods[i], r, methods[i]);
        gb_explanation_free(r);
    }
    gb_explanation *r = run_on(f, "guided_gradcam", xn, &o);
    gb_tensor *want = load(f->ctx, "guided_gradcam.npy"), *wn = to_nhwc(f->ctx, want);
    double e = rel_l2(r->attr, wn);
    print_message("  guided_gradcam (NHWC) relative L2 error %.2e\n", e);
    assert_true(e < 1e-3);
    gb_tensor_free(want);
    gb_tensor_free(wn);
    gb_explanation_free(r);
    gb_tensor_free(xn);
    open_model(f, "cam_net.onnx");
}

/* ---- the default model: maps on the object ------------------------------------------------ */

/* Sum of the map over the object's pixels (raw pixel > 0.1) and the rest. */
static void mass(const gb_image *img, const float *map, double *in, double *out, int64_t *n_in) {
    *in = *out = 0;
    *n_in = 0;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            double v = map[y * img->width + x];
            if (img->data[(size_t)y * img->stride + (size_t)x * img->channels] > 0.1 * 255) {
                *in += v;
                (*n_in)++;
            } else {
                *out += v;
            }
        }
}

static void test_default_model(void **state) {
    (void)state;
    char p[1024], d[1024];
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/models/default/fashion_cnn.onnx", src ? src : ".");
    snprintf(d, sizeof d, "%s/models/default/samples", src ? src : ".");
    FILE *fp = fopen(p, "rb");
    DIR *dir = fp ? opendir(d) : NULL;
    if (fp) fclose(fp);
    if (!dir) skip();
    gb_ctx *ctx;
    gb_model *m;
    gb_explainer *e;
    gb_sidecar *sc;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    if (gb_model_load(ctx, p, &m)) fail_msg("%s", gb_ctx_errmsg(ctx));
    if (gb_sidecar_for_model(ctx, m, p, &sc)) fail_msg("%s", gb_ctx_errmsg(ctx));
    if (gb_explainer_create(ctx, m, &e)) fail_msg("%s", gb_ctx_errmsg(ctx));
    static const char *const methods[] = {"gradcam", "cam", "gradcam_pp", "score_cam"};
    int n_images = 0, wins[4] = {0, 0, 0, 0}, total_wins[4] = {0, 0, 0, 0};
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".png")) continue;
        char ip[1300];
        snprintf(ip, sizeof ip, "%s/%s", d, de->d_name);
        gb_image *img, *gray;
        gb_tensor *x;
        if (gb_image_load(ctx, ip, &img)) fail_msg("%s", gb_ctx_errmsg(ctx));
        if (gb_image_convert(ctx, img, 1, &gray)) fail_msg("%s", gb_ctx_errmsg(ctx));
        if (gb_preproc_image(ctx, &sc->input, img, &x)) fail_msg("%s", gb_ctx_errmsg(ctx));
        n_images++;
        for (int k = 0; k < 4; k++) {
            gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
            gb_explanation *r;
            if (gb_explain(e, methods[k], x, &o, &r)) fail_msg("%s: %s", methods[k], gb_ctx_errmsg(ctx));
            assert_int_equal(r->attr->dims[2], gray->height);
            assert_int_equal(r->attr->dims[3], gray->width);
            double in, out;
            int64_t n_in;
            mass(gray, r->attr->data, &in, &out, &n_in);
            int64_t n_out = (int64_t)gray->width * gray->height - n_in;
            double din = in / (double)(n_in ? n_in : 1), dout = out / (double)(n_out ? n_out : 1);
            print_message("  %-18s %-10s class %lld: object %3lld px mass %8.3g (%.3g/px), background %3lld px "
                          "mass %8.3g (%.3g/px)\n",
                          de->d_name, methods[k], (long long)r->target_offset[0], (long long)n_in, in, din,
                          (long long)n_out, out, dout);
            total_wins[k] += in > out;
            wins[k] += din > dout;
            if (k == 0) {
                /* CAM = h w Grad-CAM on this GAP + linear head (issue 5's property) */
                gb_explanation *c;
                o.relu = 0;
                o.upsample = 0;
                if (gb_explain(e, "cam", x, &o, &c)) fail_msg("%s", gb_ctx_errmsg(ctx));
                gb_explanation *g;
                if (gb_explain(e, "gradcam", x, &o, &g)) fail_msg("%s", gb_ctx_errmsg(ctx));
                float *gd = g->attr->data;
                for (int64_t i = 0; i < g->attr->numel; i++) gd[i] *= (float)(g->attr->dims[2] * g->attr->dims[3]);
                assert_true(rel_l2(g->attr, c->attr) < 1e-4);
                gb_explanation_free(c);
                gb_explanation_free(g);
            }
            gb_explanation_free(r);
        }
        gb_tensor_free(x);
        gb_image_free(gray);
        gb_image_free(img);
    }
    closedir(dir);
    /* The map is 7x7 upsampled 4x: it spreads past a thin object's edges, so
     * for small objects (a sandal covers 84 of 784 pixels) the total mass on
     * the background can exceed the object's. The check is per pixel: the
     * mean of the map over the object is above its mean over the background. */
    print_message("  default model, %d images: map denser on the object than on the background: gradcam %d, cam %d, "
                  "gradcam_pp %d, score_cam %d (more total mass on the object: %d, %d, %d, %d)\n",
                  n_images, wins[0], wins[1], wins[2], wins[3], total_wins[0], total_wins[1], total_wins[2],
                  total_wins[3]);
    for (int k = 0; k < 4; k++) assert_int_equal(wins[k], n_images);
    gb_explainer_free(e);
    gb_sidecar_free(sc);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcam),
        cmocka_unit_test(test_cam),
        cmocka_unit_test(test_cam_matmul_head),
        cmocka_unit_test(test_cam_refused),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_score_cam),
        cmocka_unit_test(test_guided_gradcam),
        cmocka_unit_test(test_nhwc),
        cmocka_unit_test(test_default_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
