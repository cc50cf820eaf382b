/*
 * test_ops_softmax.c — Softmax, LogSoftmax and Hardmax, both opset semantics.
 *
 * The reference normalises in double precision over an explicit list of the
 * elements of each group: for opset >= 13 the elements sharing all
 * coordinates except `axis`; for opset < 13 the elements sharing the
 * coordinates before `axis` (the 2-D coercion). It computes exp(x) / sum
 * directly (no max subtraction), so inputs are kept moderate there; the
 * large-number cases check shift invariance instead.
 *
 * Backward: both opset conventions against PyTorch autograd
 * (tests/fixtures/elem_grad_torch.h) and central differences over every
 * axis, a large strided case with two threads against the closed forms,
 * and Hardmax's zero gradient.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "op_harness.h"
#include "../fixtures/elem_grad_torch.h"

/* ---- reference ------------------------------------------------------------------ */

/* Group key of element p: its flat index with the normalised coordinates
 * (axis only, or axis and all after it for the 2-D coercion) set to 0. */
static int64_t group_key(int nd, const int64_t *dims, int axis, bool coerce, int64_t p) {
    int64_t idx[GB_MAX_DIMS], key = 0;
    for (int i = nd - 1; i >= 0; i--) idx[i] = p % dims[i], p /= dims[i];
    for (int i = 0; i < nd; i++) {
        bool normalised = coerce ? i >= axis : i == axis;
        key = key * dims[i] + (normalised ? 0 : idx[i]);
    }
    return key;
}

/* y = op(x) by the definitions, in double; kind: 0 softmax, 1 log softmax,
 * 2 hardmax (1 at the first maximum of each group). */
static void ref_normalise(int kind, const float *x, int nd, const int64_t *dims, int axis,
                          bool coerce, double *y) {
    int64_t n = gb__numel(nd, dims);
    double *sum = calloc((size_t)n, sizeof *sum), *best = malloc((size_t)n * sizeof *best);
    int64_t *arg = malloc((size_t)n * sizeof *arg);
    for (int64_t k = 0; k < n; k++) best[k] = -INFINITY, arg[k] = -1;
    for (int64_t p = 0; p < n; p++) {
        int64_t k = group_key(nd, dims, axis, coerce, p);
        sum[k] += exp(x[p]);
        if (x[p] > best[k]) best[k] = x[p], arg[k] = p;
    }
    for (int64_t p = 0; p < n; p++) {
        int64_t k = group_key(nd, dims, axis, coerce, p);
        y[p] = kind == 0 ? exp(x[p]) / sum[k] : kind == 1 ? x[p] - log(sum[k]) : p == arg[k];
    }
    free(sum);
    free(best);
    free(arg);
}

static void check_softmax(const char *op, int opset, int nd, const int64_t *dims, bool set_axis,
                          int64_t axis, int n_threads) {
    int kind = !strcmp(op, "Softmax") ? 0 : !strcmp(op, "LogSoftmax") ? 1 : 2;
    gb_tensor *x = rand_f32(nd, dims, -4.0f, 4.0f), *y;
    gb_tensor *in[1] = {x};
    gb__attr at[1] = {attr_i("axis", axis)};
    assert_int_equal(run_op(op, opset, at, set_axis ? 1 : 0, in, 1, n_threads, &y), GB_OK);
    assert_int_equal(y->ndim, nd);
    bool coerce = opset < 13;
    int64_t a = set_axis ? axis : coerce ? 1 : -1;
    if (a < 0) a += nd;
    double *ref = malloc((size_t)x->numel * sizeof *ref);
    ref_normalise(kind, x->data, nd, dims, (int)a, coerce, ref);
    for (int64_t p = 0; p < x->numel; p++) {
        double want = ref[p];
        double got = ((float *)y->data)[p];
        if (!(fabs(got - want) <= 1e-6 + 1e-5 * fabs(want))) {
            print_error("%s opset %d axis %lld p=%lld: got %.8g want %.8g\n", op, opset,
                        (long long)axis, (long long)p, got, want);
            fail();
        }
    }
    free(ref);
    gb_tensor_free(x);
    gb_tensor_free(y);
}

static void test_softmax_opset13(void **state) {
    (void)state;
    int64_t d[3] = {2, 3, 4};
    const char *ops[3] = {"Softmax", "LogSoftmax", "Hardmax"};
    for (int o = 0; o < 3; o++) {
        check_softmax(ops[o], 13, 3, d, false, 0, 1); /* default axis -1 */
        for (int64_t a = -3; a < 3; a++) check_softmax(ops[o], 13, 3, d, true, a, 1);
    }
    int64_t d1[1] = {7};
    check_softmax("Softmax", 13, 1, d1, false, 0, 1);
}

static void test_softmax_opset11_coerces_to_2d(void **state) {
    (void)state;
    int64_t d[3] = {2, 3, 4};
    const char *ops[3] = {"Softmax", "LogSoftmax", "Hardmax"};
    for (int o = 0; o < 3; o++) {
        check_softmax(ops[o], 11, 3, d, false, 0, 1); /* default axis 1: rows of 12 */
        for (int64_t a = -3; a <= 3; a++) check_softmax(ops[o], 11, 3, d, true, a, 1);
        check_softmax(ops[o], 1, 3, d, true, 2, 1);
    }
    /* axis 1 differs between the two semantics: rows of 12 vs columns of 3 */
    float xv[24];
    for (int i = 0; i < 24; i++) xv[i] = (float)i / 10.0f;
    gb_tensor *x = tensor_f32(3, d, xv), *y11, *y13;
    gb_tensor *in[1] = {x};
    gb__attr at[1] = {attr_i("axis", 1)};
    assert_int_equal(run_op("Softmax", 11, at, 1, in, 1, 1, &y11), GB_OK);
    assert_int_equal(run_op("Softmax", 13, at, 1, in, 1, 1, &y13), GB_OK);
    double s11 = 0, s13 = 0;
    for (int i = 0; i < 12; i++) s11 += ((float *)y11->data)[i];
    for (int c = 0; c < 3; c++) s13 += ((float *)y13->data)[c * 4];
    assert_float_equal(s11, 1.0, 1e-6);
    assert_float_equal(s13, 1.0, 1e-6);
    assert_true(fabsf(((float *)y11->data)[0] - ((float *)y13->data)[0]) > 0.01f);
    gb_tensor_free(y11);
    gb_tensor_free(y13);
    gb_tensor_free(x);
}

static void test_softmax_large_numbers(void **state) {
    (void)state;
    int64_t d[2] = {2, 4};
    float xv[8] = {0, 1, 2, 3, 10000, 10001, 10002, 10003};
    gb_tensor *x = tensor_f32(2, d, xv), *y, *ly;
    gb_tensor *in[1] = {x};
    assert_int_equal(run_op("Softmax", 13, NULL, 0, in, 1, 1, &y), GB_OK);
    assert_int_equal(run_op("LogSoftmax", 13, NULL, 0, in, 1, 1, &ly), GB_OK);
    /* softmax is shift invariant: both rows equal softmax([0, 1, 2, 3]) */
    double sum = exp(0) + exp(1) + exp(2) + exp(3);
    for (int i = 0; i < 4; i++) {
        double want = exp(i) / sum;
        assert_float_equal(((float *)y->data)[i], want, 1e-6);
        assert_float_equal(((float *)y->data)[4 + i], want, 1e-6);
        assert_float_equal(((float *)ly->data)[i], log(want), 1e-5);
        assert_float_equal(((float *)ly->data)[4 + i], log(want), 1e-5);
    }
    gb_tensor_free(y);
    gb_tensor_free(ly);
    gb_tensor_free(x);
}

static void test_softmax_threaded_and_strided(void **state) {
    (void)state;
    int64_t big[3] = {3, 50, 70}; /* above the parallel threshold */
    check_softmax("Softmax", 13, 3, big, true, 1, 2);  /* strided columns */
    check_softmax("LogSoftmax", 13, 3, big, true, -1, 2);
    check_softmax("Softmax", 11, 3, big, true, 1, 2);
}

static void test_hardmax_ties_and_errors(void **state) {
    (void)state;
    int64_t d[2] = {2, 3};
    float xv[6] = {1, 3, 3, 2, 2, 2};
    gb_tensor *x = tensor_f32(2, d, xv), *y;
    gb_tensor *in[1] = {x};
    assert_int_equal(run_op("Hardmax", 13, NULL, 0, in, 1, 1, &y), GB_OK);
    const float want[6] = {0, 1, 0, 1, 0, 0}; /* first maximum wins */
    for (int i = 0; i < 6; i++) assert_float_equal(((float *)y->data)[i], want[i], 0);
    gb_tensor_free(y);
    gb__attr at[1] = {attr_i("axis", 2)};
    assert_int_equal(run_op("Softmax", 13, at, 1, in, 1, 1, &y), GB_ERR_SHAPE);
    gb__attr at3[1] = {attr_i("axis", 3)};
    assert_int_equal(run_op("Softmax", 11, at3, 1, in, 1, 1, &y), GB_ERR_SHAPE);
    gb_tensor_free(x);
    gb_tensor *xi = tensor_i64(2, d, NULL);
    gb_tensor *in2[1] = {xi};
    assert_int_equal(run_op("LogSoftmax", 13, NULL, 0, in2, 1, 1, &y), GB_ERR_UNSUPPORTED);
    gb_tensor_free(xi);
}

/* ---- backward ------------------------------------------------------------------ */

/* Both conventions against PyTorch autograd on (2, 3, 4) with axis 1:
 * opset 13 normalises over dim 1 only, opset 11 over dims 1.. (rows of 12). */
static void test_softmax_backward_torch(void **state) {
    (void)state;
    int64_t d[3] = {2, 3, 4};
    gb_tensor *x = tensor_f32(3, d, fx_sm_x), *g = ramp_like(x), *in[1] = {x};
    gb__attr at[1] = {attr_i("axis", 1)};
    static const struct {
        const char *op;
        int opset;
        const float *want;
    } cases[] = {{"Softmax", 13, fx_sm13_dx},
                 {"LogSoftmax", 13, fx_lsm13_dx},
                 {"Softmax", 11, fx_sm11_dx},
                 {"LogSoftmax", 11, fx_lsm11_dx}};
    for (int c = 0; c < 4; c++) {
        gb_tensor *din[1] = {zeros_like(x)};
        assert_int_equal(run_op_backward(cases[c].op, cases[c].opset, at, 1, in, 1, 1, g, din, NULL), GB_OK);
        assert_close_f32(din[0]->data, cases[c].want, 24, 1e-5f, 1e-6f);
        gb_tensor_free(din[0]);
    }
    gb_tensor_free(g);
    gb_tensor_free(x);
}

static void test_softmax_backward_fd(void **state) {
    (void)state;
    int64_t d[3] = {2, 3, 4};
    gb_tensor *x = rand_f32(3, d, -2.0f, 2.0f), *in[1] = {x};
    const char *ops[2] = {"Softmax", "LogSoftmax"};
    for (int o = 0; o < 2; o++) {
        check_grad_fd(ops[o], 13, NULL, 0, in, 1, 1u, 1, 1e-3f, 1e-2, 1e-3);
        check_grad_fd(ops[o], 11, NULL, 0, in, 1, 1u, 1, 1e-3f, 1e-2, 1e-3);
        for (int64_t a = -3; a <= 3; a++) {
            gb__attr at[1] = {attr_i("axis", a)};
            if (a < 3) check_grad_fd(ops[o], 13, at, 1, in, 1, 1u, 1, 1e-3f, 1e-2, 1e-3);
            check_grad_fd(ops[o], 11, at, 1, in, 1, 1u, 1, 1e-3f, 1e-2, 1e-3);
        }
    }
    gb_tensor_free(x);
}

/* Large and strided, two threads, against the formulas in double:
 * softmax dx = y (g - <g, y>), log-softmax dx = g - softmax <g, 1>. */
static void test_softmax_backward_threaded(void **state) {
    (void)state;
    int64_t d[3] = {3, 50, 70};
    gb_tensor *x = rand_f32(3, d, -4.0f, 4.0f), *g = rand_f32(3, d, -1.0f, 1.0f), *in[1] = {x};
    gb__attr at[1] = {attr_i("axis", 1)};
    double *ref = malloc(sizeof(double) * (size_t)x->numel), *sm = malloc(sizeof(double) * (size_t)x->numel);
    ref_normalise(0, x->data, 3, d, 1, false, sm);
    for (int kind = 0; kind < 2; kind++) {
        const float *gv = g->data;
        for (int64_t o = 0; o < 3; o++)
            for (int64_t i = 0; i < 70; i++) {
                double dot = 0, sum = 0;
                for (int64_t k = 0; k < 50; k++) {
                    int64_t p = (o * 50 + k) * 70 + i;
                    dot += gv[p] * sm[p];
                    sum += gv[p];
                }
                for (int64_t k = 0; k < 50; k++) {
                    int64_t p = (o * 50 + k) * 70 + i;
                    ref[p] = kind == 0 ? sm[p] * (gv[p] - dot) : gv[p] - sm[p] * sum;
                }
            }
        gb_tensor *din[1] = {zeros_like(x)};
        assert_int_equal(run_op_backward(kind ? "LogSoftmax" : "Softmax", 13, at, 1, in, 1, 2, g, din, NULL),
                         GB_OK);
        expect_close(din[0]->data, ref, x->numel, 1e-5);
        gb_tensor_free(din[0]);
    }
    free(ref);
    free(sm);
    gb_tensor_free(x);
    gb_tensor_free(g);
}

/* Hardmax is piecewise constant: it has a backward, and it adds nothing. */
static void test_hardmax_backward_is_zero(void **state) {
    (void)state;
    assert_non_null(gb__op_lookup("Hardmax")->backward);
    int64_t d[2] = {2, 3};
    gb_tensor *x = rand_f32(2, d, -1.0f, 1.0f), *g = ramp_like(x), *in[1] = {x};
    gb_tensor *din[1] = {filled_like(x, 0.5f)};
    assert_int_equal(run_op_backward("Hardmax", 13, NULL, 0, in, 1, 1, g, din, NULL), GB_OK);
    for (int i = 0; i < 6; i++) assert_float_equal(((float *)din[0]->data)[i], 0.5f, 0);
    gb_tensor_free(din[0]);
    gb_tensor_free(g);
    gb_tensor_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_opset13),
        cmocka_unit_test(test_softmax_opset11_coerces_to_2d),
        cmocka_unit_test(test_softmax_large_numbers),
        cmocka_unit_test(test_softmax_threaded_and_strided),
        cmocka_unit_test(test_hardmax_ties_and_errors),
        cmocka_unit_test(test_softmax_backward_torch),
        cmocka_unit_test(test_softmax_backward_fd),
        cmocka_unit_test(test_softmax_backward_threaded),
        cmocka_unit_test(test_hardmax_backward_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
