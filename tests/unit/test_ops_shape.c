/*
 * test_ops_shape.c — Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout,
 * Shape, Constant, ConstantOfShape, Cast (src/ops/shape.c).
 *
 * References are hand-derived from the ONNX operator specification (the
 * shapes and values are small enough to check by reading), including the
 * opset-dependent forms (attributes before opset 13 / 5 / 11...).
 * Backward: Cast float -> float is the identity (accumulating), casts
 * touching int64 do nothing; which ops have a backward, which are views.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "shape_harness.h"

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

static float seq[64] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
                        42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* ---- Reshape ---------------------------------------------------------------- */

static gb_status reshape(gb_ctx *ctx, int opset, const int64_t *x_dims, int x_nd, int64_t *shape, int ns,
                         int allowzero, gb_tensor *out) {
    tnode t;
    tn_init(&t, "Reshape", opset, opset < 5 ? 1 : 2, 1);
    if (opset < 5) tn_ints(&t, "shape", ns, shape);
    if (allowzero) tn_int(&t, "allowzero", 1);
    gb_tensor x = tens(GB_DTYPE_F32, x_nd, x_dims, seq);
    gb_tensor s = tens(GB_DTYPE_I64, 1, (int64_t[]){ns}, shape);
    gb_tensor *in[] = {&x, &s};
    return run_node(ctx, &t, in, out);
}

static void test_reshape(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    const int64_t d234[] = {2, 3, 4};
    /* 0 copies the input dim, -1 takes the rest */
    assert_int_equal(reshape(ctx, 14, d234, 3, (int64_t[]){0, -1}, 2, 0, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){2, 12});
    assert_close(out[0].data, seq, 24, 0, 0);
    out_free(out, 1);
    assert_int_equal(reshape(ctx, 13, d234, 3, (int64_t[]){4, -1, 3}, 3, 0, out), GB_OK);
    assert_shape(&out[0], 3, (int64_t[]){4, 2, 3});
    out_free(out, 1);
    /* opset 4: 'shape' attribute */
    assert_int_equal(reshape(ctx, 4, d234, 3, (int64_t[]){24}, 1, 0, out), GB_OK);
    assert_shape(&out[0], 1, (int64_t[]){24});
    out_free(out, 1);
    /* allowzero=1: 0 is a real dimension (empty input) */
    const int64_t d03[] = {0, 3};
    assert_int_equal(reshape(ctx, 14, d03, 2, (int64_t[]){3, 0}, 2, 1, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){3, 0});
    out_free(out, 1);
    /* without allowzero, [3, 0] copies dim 1 (3) -> 9 elements != 0 */
    assert_int_equal(reshape(ctx, 14, d03, 2, (int64_t[]){3, 0}, 2, 0, out), GB_ERR_SHAPE);
    /* errors */
    assert_int_equal(reshape(ctx, 14, d234, 3, (int64_t[]){-1, -1}, 2, 0, out), GB_ERR_SHAPE);
    assert_msg(ctx, "-1");
    assert_int_equal(reshape(ctx, 14, d234, 3, (int64_t[]){5, -1}, 2, 0, out), GB_ERR_SHAPE);
    assert_int_equal(reshape(ctx, 14, d234, 3, (int64_t[]){5, 5}, 2, 0, out), GB_ERR_SHAPE);
    assert_msg(ctx, "2x3x4");
    assert_int_equal(reshape(ctx, 14, d234, 3, (int64_t[]){0, 0, 0, 0}, 4, 0, out), GB_ERR_SHAPE);
    /* dims whose product overflows int64 */
    assert_int_equal(reshape(ctx, 14, d234, 3, (int64_t[]){1LL << 40, 1LL << 40, 1LL << 40, 0}, 4, 1, out),
                     GB_ERR_SHAPE);

    /* a shape that is only known at run time cannot be planned */
    tnode t;
    tn_init(&t, "Reshape", 13, 2, 1);
    gb_tensor x = tens(GB_DTYPE_F32, 3, d234, seq);
    gb_tensor s = tens(GB_DTYPE_I64, 1, (int64_t[]){2}, NULL);
    gb_tensor *in[] = {&x, &s};
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "plan time");
}

/* ---- Flatten ------------------------------------------------------------------ */

static void flatten_case(gb_ctx *ctx, int64_t axis, int64_t a, int64_t b) {
    tnode t;
    tn_init(&t, "Flatten", 13, 1, 1);
    tn_int(&t, "axis", axis);
    gb_tensor x = tens(GB_DTYPE_F32, 4, (int64_t[]){2, 3, 4, 2}, seq);
    gb_tensor *in[] = {&x};
    gb_tensor out[1];
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){a, b});
    out_free(out, 1);
}

static void test_flatten(void **state) {
    gb_ctx *ctx = *state;
    flatten_case(ctx, 0, 1, 48);
    flatten_case(ctx, 1, 2, 24);
    flatten_case(ctx, 3, 24, 2);
    flatten_case(ctx, 4, 48, 1);
    flatten_case(ctx, -1, 24, 2);
    flatten_case(ctx, -4, 1, 48);
    tnode t;
    tn_init(&t, "Flatten", 13, 1, 1);
    tn_int(&t, "axis", 5);
    gb_tensor x = tens(GB_DTYPE_F32, 4, (int64_t[]){2, 3, 4, 2}, seq);
    gb_tensor *in[] = {&x};
    gb_tensor out[1];
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_SHAPE);
    assert_msg(ctx, "axis 5");
}

/* ---- Squeeze / Unsqueeze --------------------------------------------------------- */

static void test_squeeze(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    const int64_t d[] = {1, 3, 1, 2};
    gb_tensor x = tens(GB_DTYPE_F32, 4, d, seq);
    int64_t ax_neg[] = {-2};
    gb_tensor axes = I64V(ax_neg);
    gb_tensor *in[] = {&x, &axes};
    tnode t;
    /* opset 11: attribute, negative axis */
    tn_init(&t, "Squeeze", 11, 1, 1);
    tn_ints(&t, "axes", 1, ax_neg);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 3, (int64_t[]){1, 3, 2});
    out_free(out, 1);
    /* opset 13: input */
    tn_init(&t, "Squeeze", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 3, (int64_t[]){1, 3, 2});
    out_free(out, 1);
    /* no axes: every size-1 axis */
    tn_init(&t, "Squeeze", 13, 1, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){3, 2});
    out_free(out, 1);
    /* squeezing a non-1 axis is an error */
    int64_t ax_bad[] = {1};
    tn_init(&t, "Squeeze", 11, 1, 1);
    tn_ints(&t, "axes", 1, ax_bad);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_SHAPE);
    assert_msg(ctx, "not 1");
}

static void test_unsqueeze(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    gb_tensor x = tens(GB_DTYPE_I64, 2, (int64_t[]){3, 4}, NULL);
    int64_t ax[] = {2, 0}; /* unsorted; positions in the output */
    gb_tensor axes = I64V(ax);
    gb_tensor *in[] = {&x, &axes};
    tnode t;
    tn_init(&t, "Unsqueeze", 13, 2, 1);
    int64_t xd[12] = {0};
    x.data = xd;
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 4, (int64_t[]){1, 3, 1, 4});
    assert_int_equal(out[0].dtype, GB_DTYPE_I64);
    out_free(out, 1);
    /* opset 11 attribute; -1 is the last axis of the output */
    int64_t ax_neg[] = {-1};
    tn_init(&t, "Unsqueeze", 11, 1, 1);
    tn_ints(&t, "axes", 1, ax_neg);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 3, (int64_t[]){3, 4, 1});
    out_free(out, 1);
    /* repeated axis */
    int64_t ax_dup[] = {1, -3};
    tn_init(&t, "Unsqueeze", 11, 1, 1);
    tn_ints(&t, "axes", 2, ax_dup);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_SHAPE);
    /* opset 11 requires the attribute */
    tn_init(&t, "Unsqueeze", 11, 1, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_FORMAT);
}

/* ---- Identity / Dropout ------------------------------------------------------------ */

static void test_identity_dropout(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[2];
    gb_tensor x = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 3}, seq);
    tnode t;
    tn_init(&t, "Identity", 16, 1, 1);
    gb_tensor *in1[] = {&x};
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){2, 3});
    assert_close(out[0].data, seq, 6, 0, 0);
    out_free(out, 1);

    /* opset 10: ratio attribute, pass-through */
    tn_init(&t, "Dropout", 10, 1, 1);
    tn_float(&t, "ratio", 0.3f);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    assert_close(out[0].data, seq, 6, 0, 0);
    out_free(out, 1);
    /* the mask output is refused at init */
    tn_init(&t, "Dropout", 13, 1, 2);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "mask");
    /* ... unless it is an omitted (empty-named) output */
    tn_init(&t, "Dropout", 13, 1, 2);
    t.out_ids[1] = -1;
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    out_free(out, 1);
    /* opset 12+: training_mode input */
    float ratio[] = {0.5f};
    int64_t on[] = {1}, off[] = {0};
    gb_tensor r = tens(GB_DTYPE_F32, 0, NULL, ratio);
    gb_tensor tm = tens(GB_DTYPE_I64, 0, NULL, off);
    gb_tensor *in3[] = {&x, &r, &tm};
    tn_init(&t, "Dropout", 13, 3, 1);
    assert_int_equal(run_node(ctx, &t, in3, out), GB_OK);
    out_free(out, 1);
    tm.data = on;
    tn_init(&t, "Dropout", 13, 3, 1);
    assert_int_equal(run_node(ctx, &t, in3, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "training-mode Dropout");
    tm.data = NULL; /* not a plan-time constant */
    tn_init(&t, "Dropout", 13, 3, 1);
    assert_int_equal(run_node(ctx, &t, in3, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "training-mode Dropout");
    /* training_mode omitted (empty name) with a ratio input */
    tn_init(&t, "Dropout", 13, 3, 1);
    t.in_ids[2] = -1;
    gb_tensor *in3b[] = {&x, &r, NULL};
    assert_int_equal(run_node(ctx, &t, in3b, out), GB_OK);
    out_free(out, 1);
}

/* ---- Shape ----------------------------------------------------------------------- */

static void shape_case(gb_ctx *ctx, int opset, int has_start, int64_t start, int has_end, int64_t end,
                       int n, const int64_t *want) {
    tnode t;
    tn_init(&t, "Shape", opset, 1, 1);
    if (has_start) tn_int(&t, "start", start);
    if (has_end) tn_int(&t, "end", end);
    gb_tensor x = tens(GB_DTYPE_F32, 4, (int64_t[]){2, 3, 4, 5}, NULL); /* data not needed */
    gb_tensor *in[] = {&x};
    gb_tensor out[1];
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_int_equal(out[0].dtype, GB_DTYPE_I64);
    assert_shape(&out[0], 1, (int64_t[]){n});
    assert_i64(out[0].data, want, n);
    out_free(out, 1);
}

static void test_shape(void **state) {
    gb_ctx *ctx = *state;
    shape_case(ctx, 13, 0, 0, 0, 0, 4, (int64_t[]){2, 3, 4, 5});
    shape_case(ctx, 15, 1, 1, 0, 0, 3, (int64_t[]){3, 4, 5});
    shape_case(ctx, 15, 1, -1, 0, 0, 1, (int64_t[]){5});
    shape_case(ctx, 15, 1, 1, 1, -1, 2, (int64_t[]){3, 4});
    shape_case(ctx, 15, 1, -10, 1, 10, 4, (int64_t[]){2, 3, 4, 5}); /* clipped */
    shape_case(ctx, 15, 1, 3, 1, 1, 0, NULL);                       /* empty */
}

/* ---- Constant / ConstantOfShape ------------------------------------------------------- */

static void test_constant(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    float v[] = {1.5f, -2, 3, 4, 5, 6};
    gb_tensor val = tens(GB_DTYPE_F32, 2, (int64_t[]){3, 2}, v);
    tn_init(&t, "Constant", 13, 0, 1);
    tn_tensor(&t, "value", &val);
    assert_int_equal(run_node(ctx, &t, NULL, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){3, 2});
    assert_close(out[0].data, v, 6, 0, 0);
    out_free(out, 1);

    int64_t iv[] = {7, -8, 9};
    tn_init(&t, "Constant", 13, 0, 1);
    tn_ints(&t, "value_ints", 3, iv);
    assert_int_equal(run_node(ctx, &t, NULL, out), GB_OK);
    assert_int_equal(out[0].dtype, GB_DTYPE_I64);
    assert_shape(&out[0], 1, (int64_t[]){3});
    assert_i64(out[0].data, iv, 3);
    out_free(out, 1);

    tn_init(&t, "Constant", 13, 0, 1);
    tn_float(&t, "value_float", 0.25f);
    assert_int_equal(run_node(ctx, &t, NULL, out), GB_OK);
    assert_int_equal(out[0].ndim, 0);
    assert_close(out[0].data, (float[]){0.25f}, 1, 0, 0);
    out_free(out, 1);

    tn_init(&t, "Constant", 13, 0, 1);
    tn_int(&t, "value_int", -3);
    assert_int_equal(run_node(ctx, &t, NULL, out), GB_OK);
    assert_int_equal(out[0].ndim, 0);
    assert_i64(out[0].data, (int64_t[]){-3}, 1);
    out_free(out, 1);

    tn_init(&t, "Constant", 13, 0, 1);
    tn_str(&t, "value_string", "hello");
    assert_int_equal(run_node(ctx, &t, NULL, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "value_string");
    tn_init(&t, "Constant", 13, 0, 1);
    assert_int_equal(run_node(ctx, &t, NULL, out), GB_ERR_FORMAT);
}

static void test_constant_of_shape(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    int64_t sh[] = {2, 3};
    gb_tensor s = I64V(sh);
    gb_tensor *in[] = {&s};
    /* default: float32 zeros */
    tn_init(&t, "ConstantOfShape", 9, 1, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_int_equal(out[0].dtype, GB_DTYPE_F32);
    assert_shape(&out[0], 2, sh);
    assert_close(out[0].data, (float[6]){0}, 6, 0, 0);
    out_free(out, 1);
    /* int64 value */
    int64_t seven[] = {7};
    gb_tensor val = tens(GB_DTYPE_I64, 1, (int64_t[]){1}, seven);
    tn_init(&t, "ConstantOfShape", 9, 1, 1);
    tn_tensor(&t, "value", &val);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_int_equal(out[0].dtype, GB_DTYPE_I64);
    assert_i64(out[0].data, (int64_t[]){7, 7, 7, 7, 7, 7}, 6);
    out_free(out, 1);
    /* empty shape -> scalar; a zero dimension -> no elements */
    int64_t zero[] = {3, 0};
    gb_tensor e = tens(GB_DTYPE_I64, 1, (int64_t[]){0}, zero);
    gb_tensor *ine[] = {&e};
    tn_init(&t, "ConstantOfShape", 9, 1, 1);
    assert_int_equal(run_node(ctx, &t, ine, out), GB_OK);
    assert_int_equal(out[0].ndim, 0);
    assert_int_equal(out[0].numel, 1);
    out_free(out, 1);
    gb_tensor z = I64V(zero);
    gb_tensor *inz[] = {&z};
    tn_init(&t, "ConstantOfShape", 9, 1, 1);
    assert_int_equal(run_node(ctx, &t, inz, out), GB_OK);
    assert_shape(&out[0], 2, zero);
    out_free(out, 1);
    /* absurd sizes */
    int64_t huge[] = {INT64_MAX, 2};
    gb_tensor th = I64V(huge);
    gb_tensor *inh[] = {&th};
    tn_init(&t, "ConstantOfShape", 9, 1, 1);
    assert_int_equal(run_node(ctx, &t, inh, out), GB_ERR_SHAPE);
    /* a two-element value is malformed */
    float two[] = {1, 2};
    gb_tensor v2 = tens(GB_DTYPE_F32, 1, (int64_t[]){2}, two);
    tn_init(&t, "ConstantOfShape", 9, 1, 1);
    tn_tensor(&t, "value", &v2);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_FORMAT);
}

/* ---- Cast ---------------------------------------------------------------------------- */

static void test_cast(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    float xf[] = {-2.7f, -0.5f, 0.5f, 2.9f, 1e20f, NAN, -1e30f, 123456.0f};
    gb_tensor x = F32V(xf);
    gb_tensor *in[] = {&x};
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", 7);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_int_equal(out[0].dtype, GB_DTYPE_I64);
    assert_i64(out[0].data, (int64_t[]){-2, 0, 0, 2, INT64_MIN, INT64_MIN, INT64_MIN, 123456}, 8);
    out_free(out, 1);

    int64_t xi[] = {-3, 0, 16777217, 5};
    gb_tensor y = I64V(xi);
    gb_tensor *iny[] = {&y};
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", 1);
    assert_int_equal(run_node(ctx, &t, iny, out), GB_OK);
    assert_int_equal(out[0].dtype, GB_DTYPE_F32);
    assert_close(out[0].data, (float[]){-3, 0, 16777216.0f, 5}, 4, 0, 0);
    out_free(out, 1);

    /* opset 5: 'to' is a string */
    tn_init(&t, "Cast", 5, 1, 1);
    tn_str(&t, "to", "FLOAT");
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_close(out[0].data, xf, 4, 0, 0);
    out_free(out, 1);

    /* other targets are refused at init, naming the type */
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", 11);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "DOUBLE");
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", 9);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "BOOL");
}

/* ---- backward ------------------------------------------------------------------ */

static void test_backward(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    gb_tensor out[1];
    /* Cast float -> float: dx += dy */
    float xf[3] = {1, 2, 3}, dy[3] = {0.5f, -1, 2}, acc[3] = {1, 1, 1};
    gb_tensor x = F32V(xf), tdy = F32V(dy), tacc = F32V(acc);
    gb_tensor *in[] = {&x}, *dout[] = {&tdy}, *din[] = {&tacc};
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", 1);
    assert_int_equal(run_backward(ctx, &t, in, out, dout, din, 1), GB_OK);
    out_free(out, 1);
    assert_close(acc, (float[]){1.5f, 0, 3}, 3, 0, 0);
    /* Cast float -> int64: the output carries no gradient, dx is left alone */
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", 7);
    assert_int_equal(run_backward(ctx, &t, in, out, NULL, din, 1), GB_OK);
    out_free(out, 1);
    assert_close(acc, (float[]){1.5f, 0, 3}, 3, 0, 0);
    /* Shape, Constant, ConstantOfShape: no backward; the views are aliases */
    assert_null(gb__op_lookup("Shape")->backward);
    assert_null(gb__op_lookup("Constant")->backward);
    assert_null(gb__op_lookup("ConstantOfShape")->backward);
    assert_non_null(gb__op_lookup("Cast")->backward);
    static const char *const views[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"};
    for (int k = 0; k < 6; k++) assert_true(gb__op_lookup(views[k])->alias);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reshape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flatten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_squeeze, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsqueeze, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_dropout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constant_of_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
