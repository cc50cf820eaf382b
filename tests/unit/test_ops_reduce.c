/*
 * test_ops_reduce.c — Reduce{Sum,Mean,Max,Min,Prod,SumSquare,L1,L2,LogSum,
 * LogSumExp} (src/ops/reduce.c).
 *
 * References: NumPy in float64 (tests/fixtures/shape_ops_ref.h, written by
 * tests/scripts/gen_shape_fixtures.py) and hand-derived values for the
 * opset-dependent forms (axes attribute / input, noop_with_empty_axes).
 *
 * Backward: PyTorch autograd in float64 (tests/fixtures/shape_grad_torch.h,
 * written by tests/scripts/gen_shape_grad_fixtures.py) — including ties for
 * Max/Min (torch.amax/amin split the gradient evenly, our convention), zeros
 * for Prod and L1 — plus element-wise central differences on random data
 * for every reduction and axes form.
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

/* Runs op on fx_red_x (2x3x4) with the axes attribute (opset 13 unless
 * ReduceSum, where it is an input). */
static void red_case(gb_ctx *ctx, const char *op, int na, int64_t *axes, int keepdims, const float *want,
                     int nd, const int64_t *want_dims, const float *xdata) {
    tnode t;
    bool input = strcmp(op, "ReduceSum") == 0;
    tn_init(&t, op, 13, input ? 2 : 1, 1);
    if (!input && na >= 0) tn_ints(&t, "axes", na, axes);
    tn_int(&t, "keepdims", keepdims);
    gb_tensor x = tens(GB_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, xdata);
    gb_tensor ta = tens(GB_DTYPE_I64, 1, (int64_t[]){na}, axes);
    gb_tensor *in[] = {&x, &ta};
    gb_tensor out[1];
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], nd, want_dims);
    assert_close(out[0].data, want, out[0].numel, 1e-5f, 1e-5f);
    out_free(out, 1);
}

static void test_numpy(void **state) {
    gb_ctx *ctx = *state;
    red_case(ctx, "ReduceMean", 1, (int64_t[]){1}, 0, fx_red_mean_1, 2, (int64_t[]){2, 4}, fx_red_x);
    red_case(ctx, "ReduceSum", 2, (int64_t[]){0, 2}, 1, fx_red_sum_02, 3, (int64_t[]){1, 3, 1}, fx_red_x);
    red_case(ctx, "ReduceMax", 1, (int64_t[]){-1}, 1, fx_red_max_m1, 3, (int64_t[]){2, 3, 1}, fx_red_x);
    red_case(ctx, "ReduceMin", -1, NULL, 1, fx_red_min_all, 3, (int64_t[]){1, 1, 1}, fx_red_x);
    red_case(ctx, "ReduceProd", 1, (int64_t[]){1}, 1, fx_red_prod_1, 3, (int64_t[]){2, 1, 4}, fx_red_x);
    red_case(ctx, "ReduceSumSquare", 1, (int64_t[]){2}, 1, fx_red_sumsq_2, 3, (int64_t[]){2, 3, 1}, fx_red_x);
    red_case(ctx, "ReduceL1", 1, (int64_t[]){0}, 1, fx_red_l1_0, 3, (int64_t[]){1, 3, 4}, fx_red_x);
    red_case(ctx, "ReduceL2", 2, (int64_t[]){2, 1}, 1, fx_red_l2_12, 3, (int64_t[]){2, 1, 1}, fx_red_x);
    /* LogSum of |x| + 0.1, LogSumExp of 50 x (overflows exp in float without the max shift) */
    float xa[24], x50[24];
    for (int i = 0; i < 24; i++) xa[i] = fabsf(fx_red_x[i]) + 0.1f, x50[i] = fx_red_x[i] * 50;
    red_case(ctx, "ReduceLogSum", 1, (int64_t[]){1}, 1, fx_red_logsum_1, 3, (int64_t[]){2, 1, 4}, xa);
    red_case(ctx, "ReduceLogSumExp", 1, (int64_t[]){2}, 1, fx_red_lse_2, 3, (int64_t[]){2, 3, 1}, x50);
}

static void test_axes_forms(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    float x[] = {1, 2, 3, 4, 5, 6};
    gb_tensor tx = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 3}, x);
    /* opset 11 ReduceSum: axes attribute; keepdims default 1 */
    int64_t a1[] = {1};
    gb_tensor *in1[] = {&tx};
    tn_init(&t, "ReduceSum", 11, 1, 1);
    tn_ints(&t, "axes", 1, a1);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){2, 1});
    assert_close(out[0].data, (float[]){6, 15}, 2, 0, 0);
    out_free(out, 1);
    /* opset 13 ReduceSum without axes: everything */
    tn_init(&t, "ReduceSum", 13, 1, 1);
    tn_int(&t, "keepdims", 0);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    assert_int_equal(out[0].ndim, 0);
    assert_close(out[0].data, (float[]){21}, 1, 0, 0);
    out_free(out, 1);
    /* empty axes input + noop_with_empty_axes: identity */
    gb_tensor te = tens(GB_DTYPE_I64, 1, (int64_t[]){0}, a1);
    gb_tensor *in2[] = {&tx, &te};
    tn_init(&t, "ReduceSum", 13, 2, 1);
    tn_int(&t, "noop_with_empty_axes", 1);
    assert_int_equal(run_node(ctx, &t, in2, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){2, 3});
    assert_close(out[0].data, x, 6, 0, 0);
    out_free(out, 1);
    /* empty axes input without it: reduce all */
    tn_init(&t, "ReduceSum", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, in2, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){1, 1});
    assert_close(out[0].data, (float[]){21}, 1, 0, 0);
    out_free(out, 1);
    /* opset 18: every Reduce* takes axes as an input */
    int64_t a0[] = {0};
    gb_tensor ta0 = I64V(a0);
    gb_tensor *in3[] = {&tx, &ta0};
    tn_init(&t, "ReduceMean", 18, 2, 1);
    tn_int(&t, "keepdims", 0);
    assert_int_equal(run_node(ctx, &t, in3, out), GB_OK);
    assert_close(out[0].data, (float[]){2.5f, 3.5f, 4.5f}, 3, 0, 0);
    out_free(out, 1);
    /* axes input not known at plan time */
    gb_tensor tan = tens(GB_DTYPE_I64, 1, (int64_t[]){1}, NULL);
    gb_tensor *in4[] = {&tx, &tan};
    tn_init(&t, "ReduceSum", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, in4, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "axes");
    /* repeated / out-of-range axes */
    int64_t dup[] = {1, -1};
    tn_init(&t, "ReduceMax", 13, 1, 1);
    tn_ints(&t, "axes", 2, dup);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_ERR_SHAPE);
    int64_t big[] = {2};
    tn_init(&t, "ReduceMax", 13, 1, 1);
    tn_ints(&t, "axes", 1, big);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_ERR_SHAPE);
    assert_msg(ctx, "2x3");
}

static void test_int64_and_empty(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    int64_t x[] = {5, -7, 3, 10000000000LL, 2, -1};
    gb_tensor tx = tens(GB_DTYPE_I64, 2, (int64_t[]){2, 3}, x);
    gb_tensor *in[] = {&tx};
    int64_t a1[] = {1};
    tn_init(&t, "ReduceMax", 13, 1, 1);
    tn_ints(&t, "axes", 1, a1);
    tn_int(&t, "keepdims", 0);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_i64(out[0].data, (int64_t[]){5, 10000000000LL}, 2);
    out_free(out, 1);
    tn_init(&t, "ReduceSum", 11, 1, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_i64(out[0].data, (int64_t[]){10000000002LL}, 1);
    out_free(out, 1);
    /* Mean of int64 is refused */
    tn_init(&t, "ReduceMean", 13, 1, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "int64");
    /* reducing an empty axis gives the identity of the reduction */
    float f[1] = {0};
    gb_tensor te = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 0}, f);
    gb_tensor *ine[] = {&te};
    tn_init(&t, "ReduceSum", 11, 1, 1);
    tn_ints(&t, "axes", 1, a1);
    assert_int_equal(run_node(ctx, &t, ine, out), GB_OK);
    assert_close(out[0].data, (float[]){0, 0}, 2, 0, 0);
    out_free(out, 1);
    tn_init(&t, "ReduceMax", 11, 1, 1);
    tn_ints(&t, "axes", 1, a1);
    assert_int_equal(run_node(ctx, &t, ine, out), GB_OK);
    assert_true(isinf(((float *)out[0].data)[0]) && ((float *)out[0].data)[0] < 0);
    out_free(out, 1);
}

/* A big reduction over the middle axis: 1 and 2 threads agree with a naive sum. */
static void test_threads(void **state) {
    gb_ctx *ctx = *state;
    const int64_t A = 16, B = 300, C = 37;
    float *x = malloc(sizeof(float) * A * B * C);
    for (int64_t i = 0; i < A * B * C; i++) x[i] = (float)((i * 7919) % 1000) / 100.0f - 5;
    gb_tensor tx = tens(GB_DTYPE_F32, 3, (int64_t[]){A, B, C}, x);
    gb_tensor *in[] = {&tx};
    int64_t a1[] = {1};
    for (int th = 1; th <= 2; th++) {
        tnode t;
        tn_init(&t, "ReduceMean", 13, 1, 1);
        tn_ints(&t, "axes", 1, a1);
        gb_tensor out[1];
        assert_int_equal(run_node2(ctx, &t, in, NULL, out, th), GB_OK);
        for (int64_t a = 0; a < A; a++)
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int64_t b = 0; b < B; b++) s += x[(a * B + b) * C + c];
                float want = (float)(s / B), got = ((float *)out[0].data)[a * C + c];
                if (fabsf(got - want) > 1e-5f) fail_msg("(%lld, %lld): %g vs %g", (long long)a, (long long)c, got, want);
            }
        out_free(out, 1);
    }
    free(x);
}

/* ---- backward ------------------------------------------------------------------ */

/* A Reduce* node at opset 13 over `axes` (ReduceSum: an input), keepdims. */
static void red_node(tnode *t, const char *op, int na, const int64_t *axes, int keepdims, int opset) {
    bool input = strcmp(op, "ReduceSum") == 0 ? opset >= 13 : opset >= 18;
    tn_init(t, op, opset, input && na >= 0 ? 2 : 1, 1);
    if (!input && na >= 0) tn_ints(t, "axes", na, axes);
    tn_int(t, "keepdims", keepdims);
}

/* dx of op over axis 1 of a (3, 4, 2) against PyTorch. */
static void red_torch(gb_ctx *ctx, const char *op, const float *x, const float *g, const float *want) {
    tnode t;
    int64_t a1[] = {1};
    red_node(&t, op, 1, a1, 1, 13);
    gb_tensor tx = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 4, 2}, x), ta = I64V(a1);
    gb_tensor *in[] = {&tx, &ta};
    float dx[24];
    grad_of(ctx, &t, in, 0, g, dx, 1);
    for (int i = 0; i < 24; i++)
        if (!(fabsf(dx[i] - want[i]) <= 1e-6f + 1e-5f * fabsf(want[i])))
            fail_msg("%s: dx[%d] = %.8g, PyTorch %.8g", op, i, dx[i], want[i]);
}

static void test_backward_torch(void **state) {
    gb_ctx *ctx = *state;
    red_torch(ctx, "ReduceSum", fx_gred_sum_x, fx_gred_sum_g, fx_gred_sum_dx);
    red_torch(ctx, "ReduceMean", fx_gred_mean_x, fx_gred_mean_g, fx_gred_mean_dx);
    red_torch(ctx, "ReduceSumSquare", fx_gred_sumsq_x, fx_gred_sumsq_g, fx_gred_sumsq_dx);
    red_torch(ctx, "ReduceL2", fx_gred_l2_x, fx_gred_l2_g, fx_gred_l2_dx);
    red_torch(ctx, "ReduceLogSumExp", fx_gred_lse_x, fx_gred_lse_g, fx_gred_lse_dx);
    red_torch(ctx, "ReduceProd", fx_gred_prod_x, fx_gred_prod_g, fx_gred_prod_dx);
    red_torch(ctx, "ReduceLogSum", fx_gred_logsum_x, fx_gred_logsum_g, fx_gred_logsum_dx);
    /* exact zeros: sign(0) = 0 for L1; one zero / two zeros in a Prod block */
    red_torch(ctx, "ReduceL1", fx_gred_l1_x, fx_gred_l1_g, fx_gred_l1_dx);
    red_torch(ctx, "ReduceProd", fx_gred_prodz_x, fx_gred_prodz_g, fx_gred_prodz_dx);
    /* ties: split evenly, as torch.amax / torch.amin */
    red_torch(ctx, "ReduceMax", fx_gred_max_x, fx_gred_max_g, fx_gred_max_dx);
    red_torch(ctx, "ReduceMin", fx_gred_min_x, fx_gred_min_g, fx_gred_min_dx);
    tnode t;
    red_node(&t, "ReduceMax", -1, NULL, 1, 13);
    gb_tensor tx = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 4, 2}, fx_gred_maxall_x);
    gb_tensor *in[] = {&tx};
    float dx[24];
    grad_of(ctx, &t, in, 0, fx_gred_maxall_g, dx, 1);
    assert_close(dx, fx_gred_maxall_dx, 24, 1e-6f, 1e-7f);
}

/* Central differences for every reduction on random data (no ties, no zeros). */
static void test_backward_fd(void **state) {
    gb_ctx *ctx = *state;
    static const char *const ops[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                      "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"};
    float *x = frand(24, 21);
    for (int i = 0; i < 24; i++) x[i] = x[i] > 0 ? 0.3f + x[i] : x[i] - 0.3f; /* |x| >= 0.3: no kink within h */
    float *xp = malloc(sizeof x[0] * 24);
    for (int i = 0; i < 24; i++) xp[i] = fabsf(x[i]); /* LogSum needs a positive sum */
    const int64_t d[] = {2, 3, 4};
    gb_tensor tx = tens(GB_DTYPE_F32, 3, d, x), txp = tens(GB_DTYPE_F32, 3, d, xp);
    const int64_t axes[][2] = {{1, 0}, {0, 2}, {-1, 0}};
    const int nas[] = {1, 2, 1};
    for (int o = 0; o < 10; o++) {
        gb_tensor *in[] = {o == 8 ? &txp : &tx, NULL};
        for (int c = 0; c < 4; c++) { /* three axes sets, then all axes */
            tnode t;
            int na = c < 3 ? nas[c] : -1;
            red_node(&t, ops[o], na, c < 3 ? axes[c] : NULL, c & 1, 13);
            gb_tensor ta = tens(GB_DTYPE_I64, 1, (int64_t[]){na}, c < 3 ? axes[c] : NULL);
            in[1] = &ta;
            check_grad(ctx, &t, in, 1, 0, 1, 2e-3f, 2e-3); /* x[8], x[23] are 0.006 apart */
        }
    }
    /* opset 18: axes input for every Reduce*; noop_with_empty_axes passes dy through */
    int64_t a1[] = {1};
    gb_tensor ta = I64V(a1);
    gb_tensor *in18[] = {&tx, &ta};
    tnode t;
    red_node(&t, "ReduceL2", 1, a1, 0, 18);
    check_grad(ctx, &t, in18, 1, 0, 1, 1e-2f, 2e-3);
    int64_t none[1];
    gb_tensor te = tens(GB_DTYPE_I64, 1, (int64_t[]){0}, none);
    gb_tensor *ine[] = {&tx, &te};
    red_node(&t, "ReduceSum", 0, none, 1, 13);
    tn_int(&t, "noop_with_empty_axes", 1);
    float dx[24];
    grad_of(ctx, &t, ine, 0, x, dx, 1);
    assert_close(dx, x, 24, 0, 0);
    free(x);
    free(xp);
}

/* Hand values at the edges: L2 of zeros, LogSumExp of -inf, Max with NaN. */
static void test_backward_edges(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    float g[2] = {1, 2}, dx[4];
    /* L2 of an all-zero block: 0 (PyTorch's norm backward masks y == 0) */
    float xz[4] = {0, 0, 3, 4};
    gb_tensor tz = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 2}, xz);
    gb_tensor *inz[] = {&tz};
    int64_t a1[] = {1};
    red_node(&t, "ReduceL2", 1, a1, 1, 13);
    grad_of(ctx, &t, inz, 0, g, dx, 1);
    assert_close(dx, (float[]){0, 0, 2 * 0.6f, 2 * 0.8f}, 4, 1e-6f, 0);
    /* LogSumExp of all -inf: no gradient (instead of NaN) */
    float xi[4] = {-INFINITY, -INFINITY, 1, 1};
    gb_tensor ti = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 2}, xi);
    gb_tensor *ini[] = {&ti};
    red_node(&t, "ReduceLogSumExp", 1, a1, 1, 13);
    grad_of(ctx, &t, ini, 0, g, dx, 1);
    assert_close(dx, (float[]){0, 0, 1, 1}, 4, 1e-6f, 0);
    /* Max of a block with a NaN: the NaN (which the output is) takes it */
    float xn[4] = {1, NAN, 5, 5};
    gb_tensor tn = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 2}, xn);
    gb_tensor *inn[] = {&tn};
    red_node(&t, "ReduceMax", 1, a1, 0, 13);
    grad_of(ctx, &t, inn, 0, g, dx, 1);
    assert_close(dx, (float[]){0, 1, 1, 1}, 4, 0, 0);
    /* int64 data and a missing dy: nothing to do */
    int64_t xl[4] = {1, 2, 3, 4};
    gb_tensor tl = tens(GB_DTYPE_I64, 2, (int64_t[]){2, 2}, xl), out[1];
    gb_tensor *inl[] = {&tl};
    red_node(&t, "ReduceSum", 1, a1, 1, 11);
    assert_int_equal(run_backward(ctx, &t, inl, out, NULL, NULL, 1), GB_OK);
    out_free(out, 1);
}

/* A big reduction: 1 and 2 threads give the same gradient bits. */
static void test_backward_threads(void **state) {
    gb_ctx *ctx = *state;
    float *x = frand(16 * 300 * 37, 22);
    gb_tensor tx = tens(GB_DTYPE_F32, 3, (int64_t[]){16, 300, 37}, x);
    gb_tensor *in[] = {&tx};
    int64_t a1[] = {1};
    static const char *const ops[] = {"ReduceMean", "ReduceMax", "ReduceLogSumExp"};
    for (int o = 0; o < 3; o++) {
        tnode t;
        red_node(&t, ops[o], 1, a1, 0, 13);
        check_grad_threads(ctx, &t, in, 0);
    }
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_numpy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_axes_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int64_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_torch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
