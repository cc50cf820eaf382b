/*
 * test_ops_resize.c — Resize and Upsample (src/ops/resize.c).
 *
 * References: PyTorch's F.interpolate (tests/fixtures/shape_ops_ref.h,
 * written by tests/scripts/gen_shape_fixtures.py), whose modes correspond to
 * ONNX settings as PyTorch's own ONNX exporter maps them:
 *   bilinear/trilinear/linear, align_corners=False -> linear, half_pixel
 *       (torch clamps negative source coordinates to 0, which for linear
 *       interpolation equals ONNX's edge padding)
 *   ... align_corners=True                        -> linear, align_corners
 *   nearest                                       -> nearest, asymmetric, floor
 *   nearest-exact                                 -> nearest, half_pixel, round_prefer_ceil
 * plus hand values from the ONNX operator examples (Upsample, tf_half_pixel).
 *
 * Backward: PyTorch autograd through F.interpolate (the same mapping;
 * tests/fixtures/shape_grad_torch.h from gen_shape_grad_fixtures.py) and
 * element-wise central differences for every coordinate mode, nearest mode
 * and opset form, including the roi gradient of tf_crop_and_resize.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "shape_harness.h"

#include "../fixtures/shape_ops_ref.h"
#include "../fixtures/shape_grad_torch.h"

static int setup(void **state) {
    gb_ctx *ctx;
    if (gb_ctx_create(&ctx)) return -1;
    *state = ctx;
    return 0;
}
static int teardown(void **state) {
    gb_ctx_free(*state);
    return 0;
}

/* Resize-13 with sizes (or scales if sizes is NULL). */
static gb_status resize13(gb_ctx *ctx, const char *mode, const char *ctm, const char *nm, gb_tensor *x,
                          const int64_t *sizes, const float *scales, gb_tensor *out, int threads) {
    tnode t;
    tn_init(&t, "Resize", 13, 4, 1);
    tn_str(&t, "mode", mode);
    if (ctm) tn_str(&t, "coordinate_transformation_mode", ctm);
    if (nm) tn_str(&t, "nearest_mode", nm);
    gb_tensor ts = tens(GB_DTYPE_F32, 1, (int64_t[]){x->ndim}, scales);
    gb_tensor tz = tens(GB_DTYPE_I64, 1, (int64_t[]){x->ndim}, sizes);
    gb_tensor *in[] = {x, NULL, scales ? &ts : NULL, sizes ? &tz : NULL};
    t.in_ids[1] = -1;
    if (!scales) t.in_ids[2] = -1;
    if (!sizes) t.n.n_in = 3;
    return run_node2(ctx, &t, in, NULL, out, threads);
}

static void check(gb_ctx *ctx, const char *mode, const char *ctm, const char *nm, gb_tensor *x,
                  const int64_t *sizes, const float *scales, const int64_t *want_dims, const float *want) {
    gb_tensor out[1];
    assert_int_equal(resize13(ctx, mode, ctm, nm, x, sizes, scales, out, 1), GB_OK);
    assert_shape(&out[0], x->ndim, want_dims);
    assert_close(out[0].data, want, out[0].numel, 1e-5f, 1e-6f);
    out_free(out, 1);
}

static void test_torch(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor x = tens(GB_DTYPE_F32, 4, (int64_t[]){1, 2, 3, 4}, fx_rz_x);
    const int64_t s57[] = {1, 2, 5, 7}, s23[] = {1, 2, 2, 3}, s68[] = {1, 2, 6, 8};
    check(ctx, "linear", NULL, NULL, &x, s57, NULL, s57, fx_rz_bilinear_hp);
    check(ctx, "linear", "pytorch_half_pixel", NULL, &x, s57, NULL, s57, fx_rz_bilinear_hp);
    check(ctx, "linear", "align_corners", NULL, &x, s57, NULL, s57, fx_rz_bilinear_ac);
    check(ctx, "linear", "half_pixel", NULL, &x, s23, NULL, s23, fx_rz_bilinear_down);
    check(ctx, "nearest", "asymmetric", "floor", &x, NULL, (float[]){1, 1, 2, 2}, s68, fx_rz_nearest_x2);
    check(ctx, "nearest", "half_pixel", "round_prefer_ceil", &x, s57, NULL, s57, fx_rz_nearest_exact);
    /* 3-D spatial (trilinear) and 1-D (linear) */
    gb_tensor x5 = tens(GB_DTYPE_F32, 5, (int64_t[]){1, 1, 2, 3, 4}, fx_rz3_x);
    const int64_t s356[] = {1, 1, 3, 5, 6};
    check(ctx, "linear", NULL, NULL, &x5, s356, NULL, s356, fx_rz3_trilinear);
    gb_tensor x1 = tens(GB_DTYPE_F32, 3, (int64_t[]){1, 2, 5}, fx_rz1_x);
    const int64_t s8[] = {1, 2, 8};
    check(ctx, "linear", "align_corners", NULL, &x1, s8, NULL, s8, fx_rz1_linear_ac);
}

/* Hand values: the ONNX examples for Upsample (opset 7 attribute, opset 9
 * input) and opset-10 Resize: nearest repeats each pixel scale times. */
static void test_upsample(void **state) {
    gb_ctx *ctx = *state;
    float x[] = {1, 2, 3, 4};
    gb_tensor tx = tens(GB_DTYPE_F32, 4, (int64_t[]){1, 1, 2, 2}, x);
    float sc[] = {1, 1, 2, 3};
    const float want[] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    const int64_t wd[] = {1, 1, 4, 6};
    gb_tensor ts = F32V(sc);
    gb_tensor *in[] = {&tx, &ts};
    gb_tensor out[1];
    tnode t;
    tn_init(&t, "Upsample", 7, 1, 1);
    tn_floats(&t, "scales", 4, sc);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 4, wd);
    assert_close(out[0].data, want, 24, 0, 0);
    out_free(out, 1);
    tn_init(&t, "Upsample", 9, 2, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_close(out[0].data, want, 24, 0, 0);
    out_free(out, 1);
    tn_init(&t, "Resize", 10, 2, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_close(out[0].data, want, 24, 0, 0);
    out_free(out, 1);
    /* Upsample-9 linear (asymmetric): x' = x / 2 on a 1x1x1x2 row [1, 3]:
     * 0 -> 1, 0.5 -> 2, 1 -> 3, 1.5 -> 3 (edge) */
    float r[] = {1, 3}, s2[] = {1, 1, 1, 2};
    gb_tensor tr = tens(GB_DTYPE_F32, 4, (int64_t[]){1, 1, 1, 2}, r), ts2 = F32V(s2);
    gb_tensor *in2[] = {&tr, &ts2};
    tn_init(&t, "Upsample", 9, 2, 1);
    tn_str(&t, "mode", "linear");
    assert_int_equal(run_node(ctx, &t, in2, out), GB_OK);
    assert_close(out[0].data, (float[]){1, 2, 3, 3}, 4, 0, 0);
    out_free(out, 1);
}

/* Hand values for the coordinate modes torch lacks. Input row [10, 20, 30, 40]. */
static void test_modes(void **state) {
    gb_ctx *ctx = *state;
    float r[] = {10, 20, 30, 40};
    gb_tensor x = tens(GB_DTYPE_F32, 2, (int64_t[]){1, 4}, r);
    /* tf_half_pixel_for_nn, sizes 1x3: s = 0.75, x' = (x + 0.5) / 0.75 = 0.667, 2, 3.33
     * -> round_prefer_floor 1, 2, 3 */
    check(ctx, "nearest", "tf_half_pixel_for_nn", NULL, &x, (int64_t[]){1, 3}, NULL, (int64_t[]){1, 3},
          (float[]){20, 30, 40});
    /* asymmetric linear, scale 0.5 -> 2 outputs at x' = 0, 2 */
    check(ctx, "linear", "asymmetric", NULL, &x, NULL, (float[]){1, 0.5f}, (int64_t[]){1, 2}, (float[]){10, 30});
    /* ceil / round_prefer_floor on ties: scale 2 asymmetric: x' = 0, .5, 1, 1.5, ... */
    check(ctx, "nearest", "asymmetric", "ceil", &x, NULL, (float[]){1, 2}, (int64_t[]){1, 8},
          (float[]){10, 20, 20, 30, 30, 40, 40, 40});
    check(ctx, "nearest", "asymmetric", "round_prefer_floor", &x, NULL, (float[]){1, 2}, (int64_t[]){1, 8},
          (float[]){10, 10, 20, 20, 30, 30, 40, 40});
    /* align_corners with a scale (not sizes) uses the real length W = s L
     * (ONNX reference): s = 0.6, W = 2.4, output 2: x' = 0, 3 / 1.4 */
    check(ctx, "linear", "align_corners", NULL, &x, NULL, (float[]){1, 0.6f}, (int64_t[]){1, 2},
          (float[]){10, 10 + 10 * 3 / 1.4f});
}

static void test_tf_crop(void **state) {
    gb_ctx *ctx = *state;
    float r[] = {10, 20, 30, 40};
    gb_tensor x = tens(GB_DTYPE_F32, 2, (int64_t[]){1, 4}, r);
    /* roi [0, 0.5, 1, 1.5] on axis 1: x' = 1.5 + o * 3 * 1 / 2 = 1.5, 3, 4.5 (outside) */
    float roi[] = {0, 0.5f, 1, 1.5f};
    int64_t sz[] = {1, 3};
    gb_tensor troi = F32V(roi), tsz = I64V(sz), troin = tens(GB_DTYPE_F32, 1, (int64_t[]){4}, NULL);
    gb_tensor *run[] = {&x, &troi, NULL, &tsz}, *plan[] = {&x, &troin, NULL, &tsz};
    gb_tensor out[1];
    tnode t;
    tn_init(&t, "Resize", 13, 4, 1);
    t.in_ids[2] = -1;
    tn_str(&t, "mode", "linear");
    tn_str(&t, "coordinate_transformation_mode", "tf_crop_and_resize");
    tn_float(&t, "extrapolation_value", -1);
    /* the roi is only needed at run time */
    assert_int_equal(run_node2(ctx, &t, plan, run, out, 1), GB_OK);
    assert_close(out[0].data, (float[]){25, 40, -1}, 3, 1e-6f, 0);
    out_free(out, 1);
}

static void test_errors(void **state) {
    gb_ctx *ctx = *state;
    float r[] = {1, 2, 3, 4};
    gb_tensor x = tens(GB_DTYPE_F32, 2, (int64_t[]){1, 4}, r);
    gb_tensor out[1];
    assert_int_equal(resize13(ctx, "cubic", NULL, NULL, &x, (int64_t[]){1, 8}, NULL, out, 1), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "cubic");
    assert_int_equal(resize13(ctx, "linear", "half_pixel_symmetric", NULL, &x, (int64_t[]){1, 8}, NULL, out, 1),
                     GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "half_pixel_symmetric");
    assert_int_equal(resize13(ctx, "nearest", NULL, "round", &x, (int64_t[]){1, 8}, NULL, out, 1),
                     GB_ERR_UNSUPPORTED);
    /* both or neither of scales and sizes */
    assert_int_equal(resize13(ctx, "linear", NULL, NULL, &x, (int64_t[]){1, 8}, (float[]){1, 2}, out, 1),
                     GB_ERR_FORMAT);
    tnode t;
    /* sizes of the wrong length */
    int64_t sz3[] = {1, 8, 3};
    gb_tensor tz3 = I64V(sz3);
    gb_tensor *in3[] = {&x, NULL, NULL, &tz3};
    tn_init(&t, "Resize", 13, 4, 1);
    t.in_ids[1] = t.in_ids[2] = -1;
    assert_int_equal(run_node(ctx, &t, in3, out), GB_ERR_SHAPE);
    assert_msg(ctx, "3 sizes");
    static const char *const flags[] = {"exclude_outside", "antialias"};
    for (int k = 0; k < 2; k++) {
        tn_init(&t, "Resize", 13, 1, 1);
        tn_int(&t, flags[k], 1);
        gb_tensor *in[] = {&x};
        assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_UNSUPPORTED);
        assert_msg(ctx, flags[k]);
    }
    /* absurd or invalid scales */
    float bigs[] = {1, 1e30f}, nans[] = {1, NAN}, negs[] = {1, -2};
    assert_int_equal(resize13(ctx, "linear", NULL, NULL, &x, NULL, bigs, out, 1), GB_ERR_SHAPE);
    assert_int_equal(resize13(ctx, "linear", NULL, NULL, &x, NULL, nans, out, 1), GB_ERR_SHAPE);
    assert_int_equal(resize13(ctx, "linear", NULL, NULL, &x, NULL, negs, out, 1), GB_ERR_SHAPE);
    /* scales known only at run time */
    gb_tensor ts = tens(GB_DTYPE_F32, 1, (int64_t[]){2}, NULL);
    gb_tensor *in2[] = {&x, NULL, &ts};
    tn_init(&t, "Resize", 13, 3, 1);
    t.in_ids[1] = -1;
    assert_int_equal(run_node(ctx, &t, in2, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "scales");
}

/* A large bilinear resize: 2 threads agree exactly with 1. */
static void test_threads(void **state) {
    gb_ctx *ctx = *state;
    const int64_t d[] = {2, 3, 40, 50};
    int64_t n = gb__numel(4, d);
    float *x = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 31) % 101) / 10.0f;
    gb_tensor tx = tens(GB_DTYPE_F32, 4, d, x);
    const int64_t sz[] = {2, 3, 97, 123};
    gb_tensor o1[1], o2[1];
    assert_int_equal(resize13(ctx, "linear", NULL, NULL, &tx, sz, NULL, o1, 1), GB_OK);
    assert_int_equal(resize13(ctx, "linear", NULL, NULL, &tx, sz, NULL, o2, 2), GB_OK);
    assert_memory_equal(o1[0].data, o2[0].data, (size_t)o1[0].numel * sizeof(float));
    out_free(o1, 1);
    out_free(o2, 1);
    free(x);
}

/* ---- backward ------------------------------------------------------------------ */

/* A Resize-13 node over x with sizes (or scales); in[] gets its 4 inputs,
 * backed by the caller's ts / tz. */
static void rz_node(tnode *t, const char *mode, const char *ctm, const char *nm, gb_tensor *x,
                    const int64_t *sizes, const float *scales, gb_tensor *ts, gb_tensor *tz, gb_tensor **in) {
    tn_init(t, "Resize", 13, 4, 1);
    tn_str(t, "mode", mode);
    if (ctm) tn_str(t, "coordinate_transformation_mode", ctm);
    if (nm) tn_str(t, "nearest_mode", nm);
    *ts = tens(GB_DTYPE_F32, 1, (int64_t[]){x->ndim}, scales);
    *tz = tens(GB_DTYPE_I64, 1, (int64_t[]){x->ndim}, sizes);
    in[0] = x, in[1] = NULL, in[2] = scales ? ts : NULL, in[3] = sizes ? tz : NULL;
    t->in_ids[1] = -1;
    if (!scales) t->in_ids[2] = -1;
    if (!sizes) t->n.n_in = 3;
}

static void grad_torch(gb_ctx *ctx, const char *mode, const char *ctm, const char *nm, gb_tensor *x,
                       const int64_t *sizes, const float *scales, const float *g, const float *want) {
    tnode t;
    gb_tensor ts, tz, *in[4];
    rz_node(&t, mode, ctm, nm, x, sizes, scales, &ts, &tz, in);
    float dx[64];
    assert_true(x->numel <= 64);
    grad_of(ctx, &t, in, 0, g, dx, 1);
    for (int64_t i = 0; i < x->numel; i++)
        if (!(fabsf(dx[i] - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i])))
            fail_msg("%s %s: dx[%lld] = %.8g, PyTorch %.8g", mode, ctm ? ctm : "", (long long)i, dx[i], want[i]);
}

static void test_backward_torch(void **state) {
    gb_ctx *ctx = *state;
    const int64_t d[] = {1, 2, 3, 4};
    gb_tensor x = tens(GB_DTYPE_F32, 4, d, fx_grz_bilinear_hp_x);
    const int64_t s57[] = {1, 2, 5, 7}, s23[] = {1, 2, 2, 3};
    grad_torch(ctx, "linear", NULL, NULL, &x, s57, NULL, fx_grz_bilinear_hp_g, fx_grz_bilinear_hp_dx);
    grad_torch(ctx, "linear", "pytorch_half_pixel", NULL, &x, s57, NULL, fx_grz_bilinear_hp_g, fx_grz_bilinear_hp_dx);
    grad_torch(ctx, "linear", "align_corners", NULL, &x, s57, NULL, fx_grz_bilinear_ac_g, fx_grz_bilinear_ac_dx);
    grad_torch(ctx, "linear", "half_pixel", NULL, &x, s23, NULL, fx_grz_bilinear_down_g, fx_grz_bilinear_down_dx);
    grad_torch(ctx, "nearest", "asymmetric", "floor", &x, NULL, (float[]){1, 1, 2, 2}, fx_grz_nearest_x2_g,
               fx_grz_nearest_x2_dx);
    grad_torch(ctx, "nearest", "half_pixel", "round_prefer_ceil", &x, s57, NULL, fx_grz_nearest_exact_g,
               fx_grz_nearest_exact_dx);
    grad_torch(ctx, "nearest", "asymmetric", "floor", &x, s23, NULL, fx_grz_nearest_down_g, fx_grz_nearest_down_dx);
    gb_tensor x5 = tens(GB_DTYPE_F32, 5, (int64_t[]){1, 1, 2, 3, 4}, fx_grz_trilinear_x);
    grad_torch(ctx, "linear", NULL, NULL, &x5, (int64_t[]){1, 1, 3, 5, 6}, NULL, fx_grz_trilinear_g,
               fx_grz_trilinear_dx);
    gb_tensor x1 = tens(GB_DTYPE_F32, 3, (int64_t[]){1, 2, 5}, fx_grz_linear_ac_x);
    grad_torch(ctx, "linear", "align_corners", NULL, &x1, (int64_t[]){1, 2, 8}, NULL, fx_grz_linear_ac_g,
               fx_grz_linear_ac_dx);
}

/* Central differences over every coordinate / nearest mode, up and down. */
static void test_backward_fd(void **state) {
    gb_ctx *ctx = *state;
    float *xd = frand(2 * 3 * 4, 31);
    gb_tensor x = tens(GB_DTYPE_F32, 4, (int64_t[]){1, 2, 3, 4}, xd);
    static const char *const ctms[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                       "tf_half_pixel_for_nn"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const int64_t sizes[][4] = {{1, 2, 5, 7}, {1, 2, 2, 3}, {1, 2, 1, 9}};
    const float scales[][4] = {{1, 1, 1.7f, 0.6f}, {1, 1, 2, 2}};
    tnode t;
    gb_tensor ts, tz, *in[4];
    for (int c = 0; c < 5; c++) {
        for (int z = 0; z < 5; z++) {
            const int64_t *sz = z < 3 ? sizes[z] : NULL;
            const float *sc = z < 3 ? NULL : scales[z - 3];
            rz_node(&t, "linear", ctms[c], NULL, &x, sz, sc, &ts, &tz, in);
            check_grad(ctx, &t, in, 1, 0, 1, 1e-2f, 1e-4);
            for (int m = 0; m < 4; m++) {
                rz_node(&t, "nearest", ctms[c], nms[m], &x, sz, sc, &ts, &tz, in);
                check_grad(ctx, &t, in, 1, 0, 1, 1e-2f, 1e-4);
            }
        }
    }
    /* the batch and channel axes resized too (no identity axes to split threads on) */
    rz_node(&t, "linear", "align_corners", NULL, &x, (int64_t[]){2, 3, 4, 3}, NULL, &ts, &tz, in);
    check_grad(ctx, &t, in, 1, 0, 2, 1e-2f, 1e-4);
    /* Upsample-7 (attribute), Upsample-9 and Resize-10 (scales input), nearest and linear */
    float sc[] = {1, 1, 2, 1.5f};
    gb_tensor tsc = F32V(sc);
    gb_tensor *in2[] = {&x, &tsc};
    static const char *const modes[] = {"nearest", "linear"};
    for (int m = 0; m < 2; m++) {
        tn_init(&t, "Upsample", 7, 1, 1);
        tn_str(&t, "mode", modes[m]);
        tn_floats(&t, "scales", 4, sc);
        check_grad(ctx, &t, in2, 1, 0, 1, 1e-2f, 1e-4);
        tn_init(&t, "Upsample", 9, 2, 1);
        tn_str(&t, "mode", modes[m]);
        check_grad(ctx, &t, in2, 1, 0, 1, 1e-2f, 1e-4);
        tn_init(&t, "Resize", 10, 2, 1);
        tn_str(&t, "mode", modes[m]);
        check_grad(ctx, &t, in2, 1, 0, 1, 1e-2f, 1e-4);
    }
    free(xd);
}

/* tf_crop_and_resize: gradients of x and of the roi (a run-time float input). */
static void test_backward_tf_crop(void **state) {
    gb_ctx *ctx = *state;
    float *xd = frand(20, 32);
    gb_tensor x = tens(GB_DTYPE_F32, 4, (int64_t[]){1, 1, 4, 5}, xd);
    /* sample points: axis 2 at 0.3, 1.35, 2.4; axis 3 at 0.6, 1.87, 3.13 and
     * 4.4 (outside: extrapolated) — all well inside a cell, so the function
     * is smooth in roi within the step */
    float roi[] = {0, 0, 0.1f, 0.15f, 1, 1, 0.8f, 1.1f};
    int64_t sz[] = {1, 1, 3, 4};
    gb_tensor troi = F32V(roi), tsz = I64V(sz);
    gb_tensor *in[] = {&x, &troi, NULL, &tsz};
    tnode t;
    tn_init(&t, "Resize", 13, 4, 1);
    t.in_ids[2] = -1;
    tn_str(&t, "mode", "linear");
    tn_str(&t, "coordinate_transformation_mode", "tf_crop_and_resize");
    tn_float(&t, "extrapolation_value", 7);
    check_grad(ctx, &t, in, 3, 0, 1, 1e-3f, 2e-3);
    /* a single output per axis (W = 1: the roi centre) */
    int64_t sz1[] = {1, 1, 1, 1};
    gb_tensor tsz1 = I64V(sz1);
    gb_tensor *in1[] = {&x, &troi, NULL, &tsz1};
    check_grad(ctx, &t, in1, 3, 0, 1, 1e-3f, 2e-3);
    /* nearest: piecewise constant in the roi (zero gradient), linear in x */
    tn_init(&t, "Resize", 13, 4, 1);
    t.in_ids[2] = -1;
    tn_str(&t, "mode", "nearest");
    tn_str(&t, "coordinate_transformation_mode", "tf_crop_and_resize");
    check_grad(ctx, &t, in, 3, 0, 1, 1e-3f, 2e-3);
    free(xd);
}

/* Large resizes: the backward with 2 threads equals 1 thread bit for bit. */
static void test_backward_threads(void **state) {
    gb_ctx *ctx = *state;
    const int64_t d[] = {2, 3, 40, 50};
    float *xd = frand(gb__numel(4, d), 33);
    gb_tensor x = tens(GB_DTYPE_F32, 4, d, xd);
    tnode t;
    gb_tensor ts, tz, *in[4];
    rz_node(&t, "linear", NULL, NULL, &x, (int64_t[]){2, 3, 97, 123}, NULL, &ts, &tz, in);
    check_grad_threads(ctx, &t, in, 0);
    rz_node(&t, "nearest", "asymmetric", "floor", &x, NULL, (float[]){1, 1, 2.5f, 3}, &ts, &tz, in);
    check_grad_threads(ctx, &t, in, 0);
    rz_node(&t, "linear", "align_corners", NULL, &x, (int64_t[]){1, 3, 60, 70}, NULL, &ts, &tz, in);
    check_grad_threads(ctx, &t, in, 0);
    free(xd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_torch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tf_crop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_torch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_tf_crop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
