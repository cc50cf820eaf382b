/*
 * test_ops_elementwise.c — Add/Sub/Mul/Div/Pow and the unary math ops.
 *
 * Broadcasting is checked against a naive reference that maps every output
 * index to each input index with modulo arithmetic (the NumPy rule written
 * out), over many shape pairs, with 1 and 2 threads and sizes above the
 * parallel threshold. Integer semantics (truncating Div, wrapping, Pow with
 * negative exponents) and the opset-6 `axis` form use hand values; unary ops
 * compare with double-precision libm.
 *
 * Backward: binary gradients against the same index map (every output
 * element adds g * partial to the input elements it read, so broadcast dims
 * are summed), the partial formulas against central differences, Pow's and
 * the unary ops' values at 0 / negative inputs against PyTorch autograd
 * (tests/fixtures/elem_grad_torch.h), thread-count independence, and one
 * pass through the engine (a single-node model, parameter gradients on/off).
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

/* ---- naive NumPy broadcasting reference ----------------------------------- */

/* Index into t of the output element with coordinates idx (rank nd). */
static int64_t ref_index(const gb_tensor *t, int nd, const int64_t *idx) {
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t c = idx[nd - t->ndim + i];
        if (t->dims[i] == 1) c = 0;
        off = off * t->dims[i] + c;
    }
    return off;
}

static double ref_op(const char *op, double x, double y) {
    if (!strcmp(op, "Add")) return x + y;
    if (!strcmp(op, "Sub")) return x - y;
    if (!strcmp(op, "Mul")) return x * y;
    if (!strcmp(op, "Div")) return x / y;
    return pow(x, y);
}

/* Compare op(a, b) with the reference, shape included. */
static void check_broadcast(const char *op, int na, const int64_t *ad, int nb, const int64_t *bd,
                            int n_threads) {
    gb_tensor *a = rand_f32(na, ad, strcmp(op, "Pow") ? -2.0f : 0.1f, 2.0f);
    gb_tensor *b = rand_f32(nb, bd, 0.5f, 2.0f); /* nonzero: Div */
    gb_tensor *in[2] = {a, b}, *y;
    assert_int_equal(run_op(op, 14, NULL, 0, in, 2, n_threads, &y), GB_OK);
    int nd = na > nb ? na : nb;
    assert_int_equal(y->ndim, nd);
    int64_t want_dims[GB_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int64_t da = i < nd - na ? 1 : ad[i - (nd - na)];
        int64_t db = i < nd - nb ? 1 : bd[i - (nd - nb)];
        want_dims[i] = da == 1 ? db : da;
        assert_int_equal(y->dims[i], want_dims[i]);
    }
    int64_t idx[GB_MAX_DIMS];
    for (int64_t q = 0; q < y->numel; q++) {
        int64_t r = q;
        for (int i = nd - 1; i >= 0; i--) idx[i] = r % want_dims[i], r /= want_dims[i];
        double x = ((float *)a->data)[ref_index(a, nd, idx)];
        double v = ((float *)b->data)[ref_index(b, nd, idx)];
        double want = ref_op(op, x, v);
        double got = ((float *)y->data)[q];
        if (fabs(got - want) > 1e-5 + 1e-5 * fabs(want)) {
            print_error("%s q=%lld got %g want %g\n", op, (long long)q, got, want);
            fail();
        }
    }
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(y);
}

/* ---- binary float ops -------------------------------------------------------- */

static void test_add_hand_values(void **state) {
    (void)state;
    int64_t d23[2] = {2, 3}, d3[1] = {3};
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30};
    gb_tensor *a = tensor_f32(2, d23, av), *b = tensor_f32(1, d3, bv), *y;
    gb_tensor *in[2] = {a, b};
    assert_int_equal(run_op("Add", 14, NULL, 0, in, 2, 1, &y), GB_OK);
    const float want[6] = {11, 22, 33, 14, 25, 36};
    for (int i = 0; i < 6; i++) assert_float_equal(((float *)y->data)[i], want[i], 0);
    gb_tensor_free(y);
    /* B - A: (3) - (2, 3) */
    gb_tensor *in2[2] = {b, a};
    assert_int_equal(run_op("Sub", 14, NULL, 0, in2, 2, 1, &y), GB_OK);
    const float want2[6] = {9, 18, 27, 6, 15, 24};
    for (int i = 0; i < 6; i++) assert_float_equal(((float *)y->data)[i], want2[i], 0);
    gb_tensor_free(y);
    gb_tensor_free(a);
    gb_tensor_free(b);
}

static void test_broadcast_shapes(void **state) {
    (void)state;
    static const struct {
        int na, nb;
        int64_t a[5], b[5];
    } cases[] = {
        {3, 3, {2, 3, 4}, {2, 3, 4}},       /* same shape */
        {3, 0, {2, 3, 4}, {0}},             /* scalar B */
        {0, 3, {0}, {2, 3, 4}},             /* scalar A */
        {3, 1, {2, 3, 4}, {1}},             /* size-1 B */
        {3, 1, {2, 3, 4}, {4}},             /* trailing vector */
        {3, 2, {2, 3, 4}, {3, 1}},          /* middle */
        {4, 4, {2, 3, 4, 5}, {1, 3, 1, 1}}, /* per-channel bias */
        {2, 2, {5, 1}, {1, 6}},             /* outer product */
        {3, 3, {1, 4, 1}, {3, 1, 5}},       /* both stretch */
        {4, 2, {2, 1, 3, 1}, {3, 5}},
        {5, 3, {2, 1, 3, 1, 2}, {3, 2, 1}},
        {2, 3, {3, 1}, {2, 1, 7}},
        {3, 3, {4, 1, 6}, {4, 5, 6}},       /* row reuse in the middle */
    };
    const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int o = 0; o < 5; o++)
            for (int t = 1; t <= 2; t++)
                check_broadcast(ops[o], cases[c].na, cases[c].a, cases[c].nb, cases[c].b, t);
}

/* Sizes above GB_PAR_MIN so the threaded paths (row split, single-row split,
 * odometer positioned mid-tensor) run. */
static void test_broadcast_large_threaded(void **state) {
    (void)state;
    int64_t a1[3] = {7, 130, 67}, b1[3] = {7, 1, 67};  /* rows of 67, B reused */
    int64_t a2[2] = {300, 301}, b2[2] = {300, 301};    /* one big row */
    int64_t a3[4] = {3, 50, 3, 150}, b3[2] = {3, 1};   /* short inner stride-0 rows */
    int64_t s0[1] = {1};
    check_broadcast("Mul", 3, a1, 3, b1, 2);
    check_broadcast("Add", 2, a2, 2, b2, 2);
    check_broadcast("Sub", 4, a3, 2, b3, 2);
    check_broadcast("Div", 0, s0, 4, a3, 2);
    check_broadcast("Sub", 4, a3, 0, s0, 3);
}

static void test_scalars_and_empty(void **state) {
    (void)state;
    float one = 1.5f, two = 2.0f;
    gb_tensor *a = tensor_f32(0, NULL, &one), *b = tensor_f32(0, NULL, &two), *y;
    gb_tensor *in[2] = {a, b};
    assert_int_equal(run_op("Mul", 14, NULL, 0, in, 2, 1, &y), GB_OK);
    assert_int_equal(y->ndim, 0);
    assert_float_equal(((float *)y->data)[0], 3.0f, 0);
    gb_tensor_free(y);
    gb_tensor_free(a);
    gb_tensor_free(b);

    int64_t d03[2] = {0, 3}, d13[2] = {1, 3};
    a = tensor_f32(2, d03, NULL);
    b = tensor_f32(2, d13, NULL);
    gb_tensor *in2[2] = {a, b};
    assert_int_equal(run_op("Add", 14, NULL, 0, in2, 2, 1, &y), GB_OK);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->dims[0], 0);
    assert_int_equal(y->dims[1], 3);
    gb_tensor_free(y);
    gb_tensor_free(a);
    gb_tensor_free(b);
}

static void test_shape_and_type_errors(void **state) {
    (void)state;
    int64_t d23[2] = {2, 3}, d4[1] = {4};
    gb_tensor *a = tensor_f32(2, d23, NULL), *b = tensor_f32(1, d4, NULL), *y;
    gb_tensor *in[2] = {a, b};
    assert_int_equal(run_op("Add", 14, NULL, 0, in, 2, 1, &y), GB_ERR_SHAPE);
    assert_null(y);
    gb_tensor *c = tensor_i64(2, d23, NULL);
    gb_tensor *in2[2] = {a, c};
    assert_int_equal(run_op("Mul", 14, NULL, 0, in2, 2, 1, &y), GB_ERR_UNSUPPORTED);
    gb_tensor *in3[1] = {a};
    assert_int_equal(run_op("Add", 14, NULL, 0, in3, 1, 1, &y), GB_ERR_FORMAT);
    gb_tensor *in4[1] = {c};
    assert_int_equal(run_op("Sqrt", 13, NULL, 0, in4, 1, 1, &y), GB_ERR_UNSUPPORTED);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(c);
}

/* Opset 6: B (2) aligned with A (2, 3) at axis 0 — not NumPy's rule. */
static void test_legacy_broadcast_axis(void **state) {
    (void)state;
    int64_t d23[2] = {2, 3}, d2[1] = {2};
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[2] = {100, 200};
    gb_tensor *a = tensor_f32(2, d23, av), *b = tensor_f32(1, d2, bv), *y;
    gb_tensor *in[2] = {a, b};
    gb__attr at[2] = {attr_i("broadcast", 1), attr_i("axis", 0)};
    assert_int_equal(run_op("Add", 6, at, 2, in, 2, 1, &y), GB_OK);
    const float want[6] = {101, 102, 103, 204, 205, 206};
    assert_int_equal(y->ndim, 2);
    for (int i = 0; i < 6; i++) assert_float_equal(((float *)y->data)[i], want[i], 0);
    gb_tensor_free(y);
    /* the same attributes mean nothing from opset 7 on: NumPy rules, error */
    assert_int_equal(run_op("Add", 7, at, 2, in, 2, 1, &y), GB_ERR_SHAPE);
    /* axis = -2 counts from A's rank: same as 0 */
    gb__attr at2[2] = {attr_i("broadcast", 1), attr_i("axis", -2)};
    assert_int_equal(run_op("Mul", 6, at2, 2, in, 2, 1, &y), GB_OK);
    assert_float_equal(((float *)y->data)[5], 1200.0f, 0);
    gb_tensor_free(y);
    gb_tensor_free(a);
    gb_tensor_free(b);
}

/* ---- int64 ------------------------------------------------------------------- */

static void test_int64_arith(void **state) {
    (void)state;
    int64_t d6[1] = {6}, d1[1] = {1};
    int64_t av[6] = {7, -7, 7, -7, 0, INT64_MIN}, bv[6] = {2, 2, -2, -2, 5, -1};
    gb_tensor *a = tensor_i64(1, d6, av), *b = tensor_i64(1, d6, bv), *y;
    gb_tensor *in[2] = {a, b};
    assert_int_equal(run_op("Div", 14, NULL, 0, in, 2, 1, &y), GB_OK);
    assert_int_equal(y->dtype, GB_DTYPE_I64);
    /* truncation toward zero, not floor; INT64_MIN / -1 wraps */
    const int64_t wdiv[6] = {3, -3, -3, 3, 0, INT64_MIN};
    for (int i = 0; i < 6; i++) assert_int_equal(((int64_t *)y->data)[i], wdiv[i]);
    gb_tensor_free(y);
    assert_int_equal(run_op("Add", 14, NULL, 0, in, 2, 1, &y), GB_OK);
    assert_int_equal(((int64_t *)y->data)[0], 9);
    assert_int_equal(((int64_t *)y->data)[5], INT64_MAX); /* INT64_MIN + -1 wraps */
    gb_tensor_free(y);
    assert_int_equal(run_op("Sub", 14, NULL, 0, in, 2, 1, &y), GB_OK);
    assert_int_equal(((int64_t *)y->data)[3], -5);
    gb_tensor_free(y);
    assert_int_equal(run_op("Mul", 14, NULL, 0, in, 2, 1, &y), GB_OK);
    assert_int_equal(((int64_t *)y->data)[2], -14);
    gb_tensor_free(y);
    /* shape arithmetic as PyTorch exports it: (6) // scalar */
    int64_t two = 2;
    gb_tensor *s = tensor_i64(1, d1, &two);
    gb_tensor *in2[2] = {a, s};
    assert_int_equal(run_op("Div", 14, NULL, 0, in2, 2, 1, &y), GB_OK);
    assert_int_equal(((int64_t *)y->data)[1], -3);
    gb_tensor_free(y);
    /* division by zero is a data error */
    int64_t zero = 0;
    gb_tensor *z = tensor_i64(1, d1, &zero);
    gb_tensor *in3[2] = {a, z};
    assert_int_equal(run_op("Div", 14, NULL, 0, in3, 2, 1, &y), GB_ERR_ARG);
    gb_tensor_free(z);
    gb_tensor_free(s);
    gb_tensor_free(a);
    gb_tensor_free(b);
}

static void test_pow_types(void **state) {
    (void)state;
    int64_t d4[1] = {4};
    float fb[4] = {2, -3, 0.5f, 9}, fe[4] = {10, 3, -1, 0.5f};
    int64_t ib[4] = {2, -3, 2, 1}, ie[4] = {10, 3, -1, -5};
    gb_tensor *bf = tensor_f32(1, d4, fb), *ef = tensor_f32(1, d4, fe);
    gb_tensor *bi = tensor_i64(1, d4, ib), *ei = tensor_i64(1, d4, ie), *y;

    gb_tensor *ff[2] = {bf, ef};
    assert_int_equal(run_op("Pow", 15, NULL, 0, ff, 2, 1, &y), GB_OK);
    const float wff[4] = {1024, -27, 2, 3};
    for (int i = 0; i < 4; i++) assert_float_equal(((float *)y->data)[i], wff[i], 1e-5);
    gb_tensor_free(y);

    gb_tensor *fi[2] = {bf, ei}; /* float base, int exponent: float result */
    assert_int_equal(run_op("Pow", 15, NULL, 0, fi, 2, 1, &y), GB_OK);
    assert_int_equal(y->dtype, GB_DTYPE_F32);
    const float wfi[4] = {1024, -27, 2, 1.0f / 59049.0f};
    for (int i = 0; i < 4; i++) assert_float_equal(((float *)y->data)[i], wfi[i], 1e-6);
    gb_tensor_free(y);

    gb_tensor *ii[2] = {bi, ei}; /* int base: int result, 2^-1 truncates to 0 */
    assert_int_equal(run_op("Pow", 15, NULL, 0, ii, 2, 1, &y), GB_OK);
    assert_int_equal(y->dtype, GB_DTYPE_I64);
    const int64_t wii[4] = {1024, -27, 0, 1};
    for (int i = 0; i < 4; i++) assert_int_equal(((int64_t *)y->data)[i], wii[i]);
    gb_tensor_free(y);

    gb_tensor *i_f[2] = {bi, ef};
    assert_int_equal(run_op("Pow", 15, NULL, 0, i_f, 2, 1, &y), GB_OK);
    assert_int_equal(y->dtype, GB_DTYPE_I64);
    const int64_t wif[4] = {1024, -27, 0 /* 2^-1 = 0.5 -> 0 */, 1};
    for (int i = 0; i < 4; i++) assert_int_equal(((int64_t *)y->data)[i], wif[i]);
    gb_tensor_free(y);

    gb_tensor_free(bf);
    gb_tensor_free(ef);
    gb_tensor_free(bi);
    gb_tensor_free(ei);
}

/* ---- unary ------------------------------------------------------------------- */

static void check_unary(const char *op, double (*ref)(double), float lo, float hi) {
    int64_t d[2] = {3, 17};
    gb_tensor *x = rand_f32(2, d, lo, hi), *y;
    gb_tensor *in[1] = {x};
    assert_int_equal(run_op(op, 13, NULL, 0, in, 1, 1, &y), GB_OK);
    assert_int_equal(y->ndim, 2);
    for (int64_t i = 0; i < x->numel; i++) {
        double want = ref(((float *)x->data)[i]);
        double got = ((float *)y->data)[i];
        if (fabs(got - want) > 1e-6 + 1e-6 * fabs(want)) {
            print_error("%s(%g): got %g want %g\n", op, ((float *)x->data)[i], got, want);
            fail();
        }
    }
    gb_tensor_free(x);
    gb_tensor_free(y);
}

static double neg_d(double x) { return -x; }

static void test_unary_float(void **state) {
    (void)state;
    check_unary("Sqrt", sqrt, 0.0f, 100.0f);
    check_unary("Exp", exp, -10.0f, 10.0f);
    check_unary("Log", log, 0.001f, 100.0f);
    check_unary("Neg", neg_d, -5.0f, 5.0f);
    check_unary("Abs", fabs, -5.0f, 5.0f);
    check_unary("Erf", erf, -3.0f, 3.0f);
    /* edge values as NumPy gives them */
    int64_t d3[1] = {3};
    float xv[3] = {0.0f, -1.0f, INFINITY};
    gb_tensor *x = tensor_f32(1, d3, xv), *y;
    gb_tensor *in[1] = {x};
    assert_int_equal(run_op("Log", 13, NULL, 0, in, 1, 1, &y), GB_OK);
    assert_true(isinf(((float *)y->data)[0]) && ((float *)y->data)[0] < 0);
    assert_true(isnan(((float *)y->data)[1]));
    assert_true(isinf(((float *)y->data)[2]));
    gb_tensor_free(y);
    assert_int_equal(run_op("Sqrt", 13, NULL, 0, in, 1, 1, &y), GB_OK);
    assert_true(isnan(((float *)y->data)[1]));
    gb_tensor_free(y);
    gb_tensor_free(x);
}

static void test_unary_int64_and_threads(void **state) {
    (void)state;
    int64_t d3[1] = {3};
    int64_t xv[3] = {-4, 0, 9};
    gb_tensor *x = tensor_i64(1, d3, xv), *y;
    gb_tensor *in[1] = {x};
    assert_int_equal(run_op("Neg", 13, NULL, 0, in, 1, 1, &y), GB_OK);
    assert_int_equal(((int64_t *)y->data)[0], 4);
    assert_int_equal(((int64_t *)y->data)[2], -9);
    gb_tensor_free(y);
    assert_int_equal(run_op("Abs", 13, NULL, 0, in, 1, 1, &y), GB_OK);
    assert_int_equal(((int64_t *)y->data)[0], 4);
    assert_int_equal(((int64_t *)y->data)[2], 9);
    gb_tensor_free(y);
    gb_tensor_free(x);

    int64_t big[1] = {100003};
    x = rand_f32(1, big, -3.0f, 3.0f);
    gb_tensor *in2[1] = {x};
    assert_int_equal(run_op("Exp", 13, NULL, 0, in2, 1, 2, &y), GB_OK);
    for (int64_t i = 0; i < x->numel; i += 997)
        assert_float_equal(((float *)y->data)[i], expf(((float *)x->data)[i]), 1e-6);
    assert_float_equal(((float *)y->data)[x->numel - 1], expf(((float *)x->data)[x->numel - 1]),
                       1e-6);
    gb_tensor_free(y);
    gb_tensor_free(x);
}

/* ---- backward ------------------------------------------------------------------ */

/* d op(x, y) / dx and / dy in double, written from the definitions. */
static void ref_partials(const char *op, double x, double y, double *dx, double *dy) {
    if (!strcmp(op, "Add")) *dx = 1, *dy = 1;
    else if (!strcmp(op, "Sub")) *dx = 1, *dy = -1;
    else if (!strcmp(op, "Mul")) *dx = y, *dy = x;
    else if (!strcmp(op, "Div")) *dx = 1 / y, *dy = -x / (y * y);
    else *dx = y * pow(x, y - 1), *dy = pow(x, y) * log(x);
}

/*
 * Backward of op(a, b) against the NumPy index map: output element q adds
 * g[q] * partial to the element of each input it read, so broadcast dims are
 * summed. The gradient buffers start at 0.5 to check that backward adds.
 */
static void check_binary_backward(const char *op, int na, const int64_t *ad, int nb,
                                  const int64_t *bd, int n_threads) {
    bool pw = !strcmp(op, "Pow");
    gb_tensor *a = rand_f32(na, ad, pw ? 0.5f : -2.0f, 2.0f);
    gb_tensor *b = rand_f32(nb, bd, pw ? -1.5f : 0.5f, pw ? 1.5f : 2.0f);
    gb_tensor *in[2] = {a, b}, *y;
    assert_int_equal(run_op(op, 14, NULL, 0, in, 2, 1, &y), GB_OK);
    gb_tensor *g = rand_f32(y->ndim, y->dims, -1.0f, 1.0f);
    gb_tensor *din[2] = {filled_like(a, 0.5f), filled_like(b, 0.5f)};
    assert_int_equal(run_op_backward(op, 14, NULL, 0, in, 2, n_threads, g, din, NULL), GB_OK);
    double *wa = malloc(sizeof(double) * (size_t)a->numel + 8);
    double *wb = malloc(sizeof(double) * (size_t)b->numel + 8);
    for (int64_t i = 0; i < a->numel; i++) wa[i] = 0.5;
    for (int64_t i = 0; i < b->numel; i++) wb[i] = 0.5;
    int nd = y->ndim;
    int64_t idx[GB_MAX_DIMS];
    for (int64_t q = 0; q < y->numel; q++) {
        int64_t r = q;
        for (int i = nd - 1; i >= 0; i--) idx[i] = r % y->dims[i], r /= y->dims[i];
        int64_t ia = ref_index(a, nd, idx), ib = ref_index(b, nd, idx);
        double px, py, gq = ((float *)g->data)[q];
        ref_partials(op, ((float *)a->data)[ia], ((float *)b->data)[ib], &px, &py);
        wa[ia] += gq * px;
        wb[ib] += gq * py;
    }
    expect_close(din[0]->data, wa, a->numel, 1e-4);
    expect_close(din[1]->data, wb, b->numel, 1e-4);
    /* only one gradient asked for: the same numbers for it */
    gb_tensor *only[2] = {NULL, filled_like(b, 0.5f)};
    assert_int_equal(run_op_backward(op, 14, NULL, 0, in, 2, n_threads, g, only, NULL), GB_OK);
    assert_memory_equal(only[1]->data, din[1]->data, sizeof(float) * (size_t)b->numel);
    free(wa);
    free(wb);
    free_tensors(only, 2);
    free_tensors(din, 2);
    gb_tensor_free(g);
    gb_tensor_free(y);
    gb_tensor_free(a);
    gb_tensor_free(b);
}

static void test_binary_backward_broadcast(void **state) {
    (void)state;
    static const struct {
        int na, nb;
        int64_t a[5], b[5];
    } cases[] = {
        {3, 3, {2, 3, 4}, {2, 3, 4}},       {3, 0, {2, 3, 4}, {0}},
        {0, 3, {0}, {2, 3, 4}},             {3, 1, {2, 3, 4}, {4}},
        {3, 2, {2, 3, 4}, {3, 1}},          {4, 4, {2, 3, 4, 5}, {1, 3, 1, 1}},
        {2, 2, {5, 1}, {1, 6}},             {3, 3, {1, 4, 1}, {3, 1, 5}},
        {5, 3, {2, 1, 3, 1, 2}, {3, 2, 1}}, {3, 3, {4, 1, 6}, {4, 5, 6}},
        {0, 0, {0}, {0}},
        /* three separate reduced groups for b, three kept groups for a */
        {5, 4, {2, 3, 4, 5, 6}, {3, 1, 5, 1}}, {5, 5, {2, 1, 4, 1, 6}, {2, 3, 4, 5, 6}},
    };
    const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int o = 0; o < 5; o++)
            for (int t = 1; t <= 2; t++)
                check_binary_backward(ops[o], cases[c].na, cases[c].a, cases[c].nb, cases[c].b, t);
    /* above the parallel threshold: per-channel reduction, row split */
    int64_t big[4] = {4, 16, 30, 40}, ch[3] = {16, 1, 1}, row[1] = {40};
    check_binary_backward("Mul", 4, big, 3, ch, 2);
    check_binary_backward("Add", 1, row, 4, big, 2);
    check_binary_backward("Div", 4, big, 4, big, 2);
}

/* The formulas themselves, against central differences (independent of the
 * partials written above). */
static void test_binary_backward_fd(void **state) {
    (void)state;
    int64_t d234[3] = {2, 3, 4}, d31[2] = {3, 1}, d4[1] = {4};
    const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow"};
    for (int o = 0; o < 5; o++) {
        bool pw = o == 4;
        gb_tensor *a = rand_f32(3, d234, pw ? 0.5f : -2.0f, 2.0f);
        gb_tensor *b = rand_f32(2, d31, pw ? -1.5f : 0.5f, pw ? 1.5f : 2.0f);
        gb_tensor *c = rand_f32(1, d4, 0.5f, 2.0f);
        gb_tensor *in[2] = {a, b}, *in2[2] = {c, a};
        check_grad_fd(ops[o], 14, NULL, 0, in, 2, 3u, 1, 1e-3f, 1e-2, 1e-3);
        if (!pw) check_grad_fd(ops[o], 14, NULL, 0, in2, 2, 3u, 1, 1e-3f, 1e-2, 1e-3);
        gb_tensor_free(a);
        gb_tensor_free(b);
        gb_tensor_free(c);
    }
    /* opset 6: B (2) aligned with A (2, 3) at axis 0 sums over A's last dim */
    int64_t d23[2] = {2, 3}, d2[1] = {2};
    gb_tensor *a = rand_f32(2, d23, -1.0f, 1.0f), *b = rand_f32(1, d2, 0.5f, 1.5f);
    gb_tensor *in[2] = {a, b};
    gb__attr at[2] = {attr_i("broadcast", 1), attr_i("axis", 0)};
    check_grad_fd("Mul", 6, at, 2, in, 2, 3u, 1, 1e-3f, 1e-2, 1e-3);
    check_grad_fd("Div", 6, at, 2, in, 2, 3u, 1, 1e-3f, 1e-2, 1e-3);
    gb_tensor_free(a);
    gb_tensor_free(b);
}

/* Threads take disjoint ranges of each input's elements: bit-identical. */
static void test_binary_backward_deterministic(void **state) {
    (void)state;
    int64_t big[3] = {50, 30, 40}, ch[3] = {1, 30, 1};
    gb_tensor *a = rand_f32(3, big, -1.0f, 1.0f), *b = rand_f32(3, ch, 0.5f, 1.5f);
    gb_tensor *g = rand_f32(3, big, -1.0f, 1.0f), *in[2] = {a, b};
    gb_tensor *d1[2] = {zeros_like(a), zeros_like(b)}, *d2[2] = {zeros_like(a), zeros_like(b)};
    assert_int_equal(run_op_backward("Div", 14, NULL, 0, in, 2, 1, g, d1, NULL), GB_OK);
    assert_int_equal(run_op_backward("Div", 14, NULL, 0, in, 2, 2, g, d2, NULL), GB_OK);
    assert_memory_equal(d1[0]->data, d2[0]->data, sizeof(float) * (size_t)a->numel);
    assert_memory_equal(d1[1]->data, d2[1]->data, sizeof(float) * (size_t)b->numel);
    free_tensors(d1, 2);
    free_tensors(d2, 2);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(g);
}

/* Mul(x, x): both inputs are one tensor, so the engine hands backward the
 * same gradient buffer twice; the two contributions must both land. */
static void test_binary_backward_same_input(void **state) {
    (void)state;
    int64_t d[1] = {5};
    float xv[5] = {-2, -0.5f, 0, 1, 3};
    gb_tensor *x = tensor_f32(1, d, xv), *g = ramp_like(x), *in[2] = {x, x};
    gb_tensor *dx = zeros_like(x), *din[2] = {dx, dx};
    assert_int_equal(run_op_backward("Mul", 14, NULL, 0, in, 2, 1, g, din, NULL), GB_OK);
    for (int i = 0; i < 5; i++)
        assert_float_equal(((float *)dx->data)[i], 2 * xv[i] * ((float *)g->data)[i], 1e-6);
    gb_tensor_free(dx);
    gb_tensor_free(g);
    gb_tensor_free(x);
}

/* torch.pow's autograd at the awkward points: 0 where the exponent is 0
 * (base side) or where the base is 0 and the exponent >= 0 (exponent side),
 * NaN for negative bases in the exponent gradient, -inf at 0^-1. */
static void test_pow_backward_torch(void **state) {
    (void)state;
    int64_t d[1] = {9};
    gb_tensor *b = tensor_f32(1, d, fx_pow_b), *e = tensor_f32(1, d, fx_pow_e);
    gb_tensor *in[2] = {b, e}, *g = ramp_like(b);
    gb_tensor *din[2] = {zeros_like(b), zeros_like(e)};
    assert_int_equal(run_op_backward("Pow", 15, NULL, 0, in, 2, 1, g, din, NULL), GB_OK);
    assert_close_f32(din[0]->data, fx_pow_db, 9, 1e-5f, 1e-6f);
    assert_close_f32(din[1]->data, fx_pow_de, 9, 1e-5f, 1e-6f);
    free_tensors(din, 2);
    /* an int64 exponent (opset 15 T1) gets no gradient; the base does */
    int64_t iev[4] = {2, 3, -1, 0};
    float bv[4] = {1.5f, -2.0f, 4.0f, 0.0f};
    int64_t d4[1] = {4};
    gb_tensor *bf = tensor_f32(1, d4, bv), *ei = tensor_i64(1, d4, iev), *g4 = ramp_like(bf);
    gb_tensor *in2[2] = {bf, ei}, *din2[2] = {zeros_like(bf), NULL};
    assert_int_equal(run_op_backward("Pow", 15, NULL, 0, in2, 2, 1, g4, din2, NULL), GB_OK);
    const float want[4] = {2 * 1.5f * 1.0f, 3 * 4.0f * 1.125f, -1 / 16.0f * 1.25f, 0.0f};
    assert_close_f32(din2[0]->data, want, 4, 1e-6f, 0);
    gb_tensor_free(din2[0]);
    gb_tensor_free(bf);
    gb_tensor_free(ei);
    gb_tensor_free(g4);
    gb_tensor_free(g);
    gb_tensor_free(b);
    gb_tensor_free(e);
}

static bool is_elementwise_op(const char *op) {
    static const char *const ops[] = {"Sqrt", "Exp", "Log", "Neg", "Abs", "Erf"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

/* Unary ops at 0, 1 and negative values against PyTorch: Abs'(0) = 0,
 * Sqrt'(0) = inf and NaN below, Log'(0) = inf. */
static void test_unary_backward_torch(void **state) {
    (void)state;
    int64_t d[1] = {13};
    gb_tensor *x = tensor_f32(1, d, fx_pw_x), *g = tensor_f32(1, d, fx_pw_g);
    gb_tensor *in[1] = {x};
    int checked = 0;
    for (size_t c = 0; c < sizeof fx_pw_cases / sizeof fx_pw_cases[0]; c++) {
        const fx_pw_case *fc = &fx_pw_cases[c];
        if (!is_elementwise_op(fc->op)) continue;
        gb_tensor *din[1] = {zeros_like(x)};
        assert_int_equal(run_op_backward(fc->op, 13, NULL, 0, in, 1, 1, g, din, NULL), GB_OK);
        assert_close_f32(din[0]->data, fc->dx, 13, 2e-6f, 1e-7f);
        gb_tensor_free(din[0]);
        checked++;
    }
    assert_int_equal(checked, 6);
    gb_tensor_free(x);
    gb_tensor_free(g);
}

static void test_unary_backward_fd(void **state) {
    (void)state;
    int64_t d[2] = {3, 7};
    static const struct {
        const char *op;
        float lo, hi;
    } cases[] = {{"Sqrt", 0.5f, 4.0f}, {"Exp", -3.0f, 3.0f}, {"Log", 0.5f, 4.0f},
                 {"Neg", -3.0f, 3.0f}, {"Abs", 0.1f, 3.0f},  {"Erf", -2.0f, 2.0f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gb_tensor *x = rand_f32(2, d, cases[c].lo, cases[c].hi), *in[1] = {x};
        if (!strcmp(cases[c].op, "Abs")) /* both signs, away from the kink */
            for (int64_t i = 0; i < x->numel; i += 2) ((float *)x->data)[i] *= -1.0f;
        check_grad_fd(cases[c].op, 13, NULL, 0, in, 1, 1u, 1, 1e-3f, 1e-2, 1e-3);
        gb_tensor_free(x);
    }
    /* threaded: same bits as one thread */
    int64_t big[1] = {100003};
    gb_tensor *x = rand_f32(1, big, 0.5f, 3.0f), *g = rand_f32(1, big, -1.0f, 1.0f), *in[1] = {x};
    gb_tensor *d1[1] = {zeros_like(x)}, *d2[1] = {zeros_like(x)};
    assert_int_equal(run_op_backward("Log", 13, NULL, 0, in, 1, 1, g, d1, NULL), GB_OK);
    assert_int_equal(run_op_backward("Log", 13, NULL, 0, in, 1, 2, g, d2, NULL), GB_OK);
    assert_memory_equal(d1[0]->data, d2[0]->data, sizeof(float) * (size_t)x->numel);
    free_tensors(d1, 1);
    free_tensors(d2, 1);
    gb_tensor_free(x);
    gb_tensor_free(g);
}

/* Through the engine: a single-node model Mul(x0, x1) with x1 a weight
 * (initializer). Without parameter gradients only x0 gets one; with them,
 * both, reduced over the broadcast. No gradient flows into an int64 op. */
static void test_backward_through_session(void **state) {
    (void)state;
    int64_t d23[2] = {2, 3}, d3[1] = {3};
    float xv[6] = {1, 2, 3, 4, 5, 6}, wv[3] = {0.5f, -1.0f, 2.0f};
    gb_tensor *x = tensor_f32(2, d23, xv), *w = tensor_f32(1, d3, wv), *in[2] = {x, w};
    gb_tensor *seed = ramp_like(x); /* 1, 1.125, ... */
    for (int params = 0; params <= 1; params++) {
        oh_model om;
        assert_int_equal(oh_model_build(&om, "Mul", 14, NULL, 0, in, 2, 2u, 1, GB_DTYPE_F32), GB_OK);
        gb_session_param_grads(om.s, params);
        assert_int_equal(oh_model_run(&om), GB_OK);
        assert_int_equal(oh_model_backward(&om, seed), GB_OK);
        const gb_tensor *gx = oh_model_grad(&om, 0), *gw = oh_model_grad(&om, 1);
        assert_non_null(gx);
        const float *s = seed->data;
        for (int i = 0; i < 6; i++) assert_float_equal(((float *)gx->data)[i], s[i] * wv[i % 3], 1e-6);
        if (!params) {
            assert_null(gw);
        } else {
            assert_non_null(gw);
            for (int j = 0; j < 3; j++)
                assert_float_equal(((float *)gw->data)[j], s[j] * xv[j] + s[3 + j] * xv[3 + j], 1e-5);
        }
        oh_model_free(&om);
    }
    gb_tensor_free(seed);
    gb_tensor_free(x);
    gb_tensor_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_hand_values),
        cmocka_unit_test(test_broadcast_shapes),
        cmocka_unit_test(test_broadcast_large_threaded),
        cmocka_unit_test(test_scalars_and_empty),
        cmocka_unit_test(test_shape_and_type_errors),
        cmocka_unit_test(test_legacy_broadcast_axis),
        cmocka_unit_test(test_int64_arith),
        cmocka_unit_test(test_pow_types),
        cmocka_unit_test(test_unary_float),
        cmocka_unit_test(test_unary_int64_and_threads),
        cmocka_unit_test(test_binary_backward_broadcast),
        cmocka_unit_test(test_binary_backward_fd),
        cmocka_unit_test(test_binary_backward_deterministic),
        cmocka_unit_test(test_binary_backward_same_input),
        cmocka_unit_test(test_pow_backward_torch),
        cmocka_unit_test(test_unary_backward_torch),
        cmocka_unit_test(test_unary_backward_fd),
        cmocka_unit_test(test_backward_through_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
