/*
 * test_ops_activation.c — pointwise activations, PRelu and Clip.
 *
 * Each activation is compared with its defining formula evaluated in double
 * precision (written here from the ONNX operator docs, independently of the
 * kernels' numerically-stable forms) over a sweep of inputs including large
 * magnitudes; attribute defaults are checked by omitting the attributes.
 * PRelu's slope broadcasting (including the opset-6 per-channel form) and
 * Clip's attribute (opset < 11) and input (opset >= 11) forms use hand values.
 *
 * Backward: every activation against PyTorch autograd at and around its
 * kinks (tests/fixtures/elem_grad_torch.h: the value at each kink is a
 * convention, and ours is PyTorch's), against central differences away from
 * them with default and custom attributes, PRelu's slope gradient for each
 * broadcast form, Clip's gradients to x, min and max, thread-count
 * independence, and parameter gradients on/off through the engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "op_harness.h"
#include "../fixtures/elem_grad_torch.h"

/* ---- formulas, as the ONNX docs state them --------------------------------- */

typedef double (*ref_fn)(double x, double alpha, double beta);

static double r_relu(double x, double a, double b) { return x > 0 ? x : 0; }
static double r_leaky(double x, double a, double b) { return x >= 0 ? x : a * x; }
static double r_elu(double x, double a, double b) { return x >= 0 ? x : a * (exp(x) - 1); }
/* Selu: gamma * (alpha * e^x - alpha) for x <= 0, gamma * x for x > 0 (beta = gamma) */
static double r_selu(double x, double a, double g) { return x > 0 ? g * x : g * (a * exp(x) - a); }
static double r_celu(double x, double a, double b) {
    return fmax(0, x) + fmin(0, a * (exp(x / a) - 1));
}
static double r_sigmoid(double x, double a, double b) { return 1 / (1 + exp(-x)); }
static double r_tanh(double x, double a, double b) { return tanh(x); }
static double r_hsig(double x, double a, double b) { return fmax(0, fmin(1, a * x + b)); }
static double r_hswish(double x, double a, double b) { return x * fmax(0, fmin(1, x / 6 + 0.5)); }
static double r_softplus(double x, double a, double b) { return log(exp(x) + 1); }
static double r_softsign(double x, double a, double b) { return x / (1 + fabs(x)); }
static double r_thresh(double x, double a, double b) { return x > a ? x : 0; }
static double r_shrink(double x, double l, double bias) {
    return x < -l ? x + bias : x > l ? x - bias : 0;
}

/* Run op on a sweep of inputs and compare with ref(x, ra, rb). */
static void check_act(const char *op, gb__attr *attrs, int n_attrs, ref_fn ref, double ra,
                      double rb) {
    enum { N = 401 };
    float xv[N];
    for (int i = 0; i < N - 6; i++) xv[i] = -8.0f + 16.0f * (float)i / (float)(N - 7);
    xv[N - 6] = 0.0f;
    xv[N - 5] = -0.0f;
    xv[N - 4] = 60.0f;
    xv[N - 3] = -60.0f;
    xv[N - 2] = 3.0f; /* HardSwish / HardSigmoid kinks */
    xv[N - 1] = -3.0f;
    int64_t d[1] = {N};
    gb_tensor *x = tensor_f32(1, d, xv), *y;
    gb_tensor *in[1] = {x};
    assert_int_equal(run_op(op, 16, attrs, n_attrs, in, 1, 1, &y), GB_OK);
    assert_int_equal(y->ndim, 1);
    assert_int_equal(y->dims[0], N);
    for (int i = 0; i < N; i++) {
        double want = ref(xv[i], ra, rb);
        double got = ((float *)y->data)[i];
        if (!(fabs(got - want) <= 1e-6 + 2e-6 * fabs(want))) {
            print_error("%s(%g): got %.9g want %.9g\n", op, xv[i], got, want);
            fail();
        }
    }
    gb_tensor_free(x);
    gb_tensor_free(y);
}

static void test_activation_defaults(void **state) {
    (void)state;
    check_act("Relu", NULL, 0, r_relu, 0, 0);
    check_act("LeakyRelu", NULL, 0, r_leaky, 0.01, 0);
    check_act("Elu", NULL, 0, r_elu, 1.0, 0);
    check_act("Selu", NULL, 0, r_selu, 1.67326319217681884765625, 1.05070102214813232421875);
    check_act("Celu", NULL, 0, r_celu, 1.0, 0);
    check_act("Sigmoid", NULL, 0, r_sigmoid, 0, 0);
    check_act("Tanh", NULL, 0, r_tanh, 0, 0);
    check_act("HardSigmoid", NULL, 0, r_hsig, 0.2, 0.5);
    check_act("HardSwish", NULL, 0, r_hswish, 0, 0);
    check_act("Softplus", NULL, 0, r_softplus, 0, 0);
    check_act("Softsign", NULL, 0, r_softsign, 0, 0);
    check_act("ThresholdedRelu", NULL, 0, r_thresh, 1.0, 0);
    check_act("Shrink", NULL, 0, r_shrink, 0.5, 0.0);
}

static void test_activation_attributes(void **state) {
    (void)state;
    gb__attr a1[1] = {attr_f("alpha", 0.3f)};
    check_act("LeakyRelu", a1, 1, r_leaky, (double)0.3f, 0);
    gb__attr a2[1] = {attr_f("alpha", 2.0f)};
    check_act("Elu", a2, 1, r_elu, 2.0, 0);
    gb__attr a3[2] = {attr_f("alpha", 2.0f), attr_f("gamma", 3.0f)};
    check_act("Selu", a3, 2, r_selu, 2.0, 3.0);
    gb__attr a4[2] = {attr_f("alpha", 0.5f), attr_f("beta", 0.6f)};
    check_act("HardSigmoid", a4, 2, r_hsig, 0.5, (double)0.6f);
    gb__attr a5[1] = {attr_f("alpha", 2.0f)};
    check_act("Celu", a5, 1, r_celu, 2.0, 0);
    gb__attr a6[1] = {attr_f("alpha", 2.0f)};
    check_act("ThresholdedRelu", a6, 1, r_thresh, 2.0, 0);
    gb__attr a7[2] = {attr_f("lambd", 1.5f), attr_f("bias", 1.5f)};
    check_act("Shrink", a7, 2, r_shrink, 1.5, 1.5);
}

static void test_activation_nan_and_threads(void **state) {
    (void)state;
    int64_t d[1] = {2};
    float xv[2] = {NAN, -1.0f};
    gb_tensor *x = tensor_f32(1, d, xv), *y;
    gb_tensor *in[1] = {x};
    assert_int_equal(run_op("Relu", 14, NULL, 0, in, 1, 1, &y), GB_OK);
    assert_true(isnan(((float *)y->data)[0]));
    assert_float_equal(((float *)y->data)[1], 0.0f, 0);
    gb_tensor_free(y);
    gb_tensor_free(x);
    int64_t big[3] = {4, 100, 101};
    x = rand_f32(3, big, -5.0f, 5.0f);
    gb_tensor *in2[1] = {x};
    assert_int_equal(run_op("Sigmoid", 13, NULL, 0, in2, 1, 2, &y), GB_OK);
    for (int64_t i = 0; i < x->numel; i++) {
        double want = 1 / (1 + exp(-(double)((float *)x->data)[i]));
        assert_float_equal(((float *)y->data)[i], want, 1e-6);
    }
    gb_tensor_free(y);
    gb_tensor_free(x);
    /* integer input is rejected with a message */
    gb_tensor *xi = tensor_i64(1, d, NULL);
    gb_tensor *in3[1] = {xi};
    assert_int_equal(run_op("Relu", 14, NULL, 0, in3, 1, 1, &y), GB_ERR_UNSUPPORTED);
    gb_tensor_free(xi);
}

/* ---- PRelu ------------------------------------------------------------------- */

/* y = x >= 0 ? x : slope[c] * x with slope indexed by channel function */
static void check_prelu(int opset, int nx, const int64_t *xd, int ns, const int64_t *sd,
                        int64_t (*slope_index)(const int64_t *idx), int n_threads) {
    gb_tensor *x = rand_f32(nx, xd, -1.0f, 1.0f), *s = rand_f32(ns, sd, 0.1f, 0.9f), *y;
    gb_tensor *in[2] = {x, s};
    assert_int_equal(run_op("PRelu", opset, NULL, 0, in, 2, n_threads, &y), GB_OK);
    assert_int_equal(y->ndim, nx);
    int64_t idx[GB_MAX_DIMS];
    for (int64_t q = 0; q < x->numel; q++) {
        int64_t r = q;
        for (int i = nx - 1; i >= 0; i--) idx[i] = r % xd[i], r /= xd[i];
        float xv = ((float *)x->data)[q];
        float want = xv >= 0 ? xv : ((float *)s->data)[slope_index(idx)] * xv;
        assert_float_equal(((float *)y->data)[q], want, 1e-7);
    }
    gb_tensor_free(x);
    gb_tensor_free(s);
    gb_tensor_free(y);
}

static int64_t si_zero(const int64_t *idx) { return 0; }
static int64_t si_dim1(const int64_t *idx) { return idx[1]; }
static int64_t si_dim2_of3(const int64_t *idx) { return idx[2]; }      /* X (2, 3, 4), slope (4) */
static int64_t si_c_w(const int64_t *idx) { return idx[1] * 5 + idx[3]; } /* slope (3, 1, 5) */

static void test_prelu(void **state) {
    (void)state;
    int64_t x4[4] = {2, 3, 4, 5}, x3[3] = {2, 3, 4}, xbig[4] = {2, 3, 80, 81};
    int64_t s1[1] = {1}, s311[3] = {3, 1, 1}, s4[1] = {4}, s3[1] = {3}, s315[3] = {3, 1, 5};
    check_prelu(9, 4, x4, 1, s1, si_zero, 1);
    check_prelu(9, 4, x4, 3, s311, si_dim1, 1);     /* PyTorch's per-channel export */
    check_prelu(9, 4, xbig, 3, s311, si_dim1, 2);   /* threaded */
    check_prelu(9, 3, x3, 1, s4, si_dim2_of3, 1);   /* NumPy: trailing dim */
    check_prelu(9, 4, x4, 3, s315, si_c_w, 1);      /* mixed strides */
    check_prelu(9, 4, xbig, 0, s1, si_zero, 2);     /* 0-d slope */
    /* opset 6: slope (C) on (N, C, L) is per channel */
    check_prelu(6, 3, x3, 1, s3, si_dim1, 1);
    /* opset 9: (3) does not broadcast to (2, 3, 4) */
    gb_tensor *x = tensor_f32(3, x3, NULL), *s = tensor_f32(1, s3, NULL), *y;
    gb_tensor *in[2] = {x, s};
    assert_int_equal(run_op("PRelu", 9, NULL, 0, in, 2, 1, &y), GB_ERR_SHAPE);
    /* unidirectional: a slope larger than X is an error */
    gb_tensor *in2[2] = {s, x};
    assert_int_equal(run_op("PRelu", 9, NULL, 0, in2, 2, 1, &y), GB_ERR_SHAPE);
    gb_tensor_free(x);
    gb_tensor_free(s);
}

/* ---- Clip -------------------------------------------------------------------- */

static const float clip_x[6] = {-3.0f, -0.5f, 0.0f, 0.25f, 2.0f, NAN};

static void expect_f32(const gb_tensor *y, const float *want, int n) {
    for (int i = 0; i < n; i++) {
        float g = ((float *)y->data)[i];
        if (isnan(want[i])) assert_true(isnan(g));
        else assert_float_equal(g, want[i], 0);
    }
}

static void test_clip_attributes(void **state) {
    (void)state;
    int64_t d[1] = {6};
    gb_tensor *x = tensor_f32(1, d, clip_x), *y;
    gb_tensor *in[1] = {x};
    gb__attr at[2] = {attr_f("min", -0.5f), attr_f("max", 0.5f)};
    assert_int_equal(run_op("Clip", 6, at, 2, in, 1, 1, &y), GB_OK);
    const float w[6] = {-0.5f, -0.5f, 0.0f, 0.25f, 0.5f, NAN};
    expect_f32(y, w, 6);
    gb_tensor_free(y);
    /* only max: min defaults to the lowest float */
    assert_int_equal(run_op("Clip", 6, at + 1, 1, in, 1, 1, &y), GB_OK);
    const float w2[6] = {-3.0f, -0.5f, 0.0f, 0.25f, 0.5f, NAN};
    expect_f32(y, w2, 6);
    gb_tensor_free(y);
    /* opset 11 ignores the attributes: no bounds at all */
    assert_int_equal(run_op("Clip", 11, at, 2, in, 1, 1, &y), GB_OK);
    expect_f32(y, clip_x, 6);
    gb_tensor_free(y);
    gb_tensor_free(x);
}

static void test_clip_inputs(void **state) {
    (void)state;
    int64_t d[1] = {6};
    float lo = -1.0f, hi = 1.0f;
    gb_tensor *x = tensor_f32(1, d, clip_x), *y;
    gb_tensor *tlo = tensor_f32(0, NULL, &lo), *thi = tensor_f32(0, NULL, &hi);
    gb_tensor *in[3] = {x, tlo, thi};
    assert_int_equal(run_op("Clip", 13, NULL, 0, in, 3, 1, &y), GB_OK);
    const float w[6] = {-1.0f, -0.5f, 0.0f, 0.25f, 1.0f, NAN};
    expect_f32(y, w, 6);
    gb_tensor_free(y);
    /* min omitted (empty name), max given */
    gb_tensor *in2[3] = {x, NULL, thi};
    assert_int_equal(run_op("Clip", 13, NULL, 0, in2, 3, 1, &y), GB_OK);
    const float w2[6] = {-3.0f, -0.5f, 0.0f, 0.25f, 1.0f, NAN};
    expect_f32(y, w2, 6);
    gb_tensor_free(y);
    /* only min */
    gb_tensor *in3[2] = {x, tlo};
    assert_int_equal(run_op("Clip", 11, NULL, 0, in3, 2, 1, &y), GB_OK);
    const float w3[6] = {-1.0f, -0.5f, 0.0f, 0.25f, 2.0f, NAN};
    expect_f32(y, w3, 6);
    gb_tensor_free(y);
    /* min > max: everything becomes max (numpy.clip) */
    gb_tensor *in4[3] = {x, thi, tlo};
    assert_int_equal(run_op("Clip", 13, NULL, 0, in4, 3, 1, &y), GB_OK);
    for (int i = 0; i < 5; i++) assert_float_equal(((float *)y->data)[i], -1.0f, 0);
    gb_tensor_free(y);
    /* a non-scalar bound is an error */
    int64_t d2[1] = {2};
    gb_tensor *bad = tensor_f32(1, d2, NULL);
    gb_tensor *in5[3] = {x, bad, NULL};
    assert_int_equal(run_op("Clip", 13, NULL, 0, in5, 3, 1, &y), GB_ERR_SHAPE);
    gb_tensor_free(bad);
    gb_tensor_free(tlo);
    gb_tensor_free(thi);
    gb_tensor_free(x);
}

static void test_clip_int64(void **state) {
    (void)state;
    int64_t d[1] = {5};
    int64_t xv[5] = {-100, -1, 0, 7, 100}, lo = -2, hi = 10;
    gb_tensor *x = tensor_i64(1, d, xv), *y;
    gb_tensor *tlo = tensor_i64(0, NULL, &lo), *thi = tensor_i64(0, NULL, &hi);
    gb_tensor *in[3] = {x, tlo, thi};
    assert_int_equal(run_op("Clip", 13, NULL, 0, in, 3, 1, &y), GB_OK);
    assert_int_equal(y->dtype, GB_DTYPE_I64);
    const int64_t w[5] = {-2, -1, 0, 7, 10};
    for (int i = 0; i < 5; i++) assert_int_equal(((int64_t *)y->data)[i], w[i]);
    gb_tensor_free(y);
    gb_tensor *in2[2] = {x, NULL};
    assert_int_equal(run_op("Clip", 13, NULL, 0, in2, 2, 1, &y), GB_OK);
    for (int i = 0; i < 5; i++) assert_int_equal(((int64_t *)y->data)[i], xv[i]);
    gb_tensor_free(y);
    /* mismatched bound type */
    float f = 1.0f;
    gb_tensor *tf = tensor_f32(0, NULL, &f);
    gb_tensor *in3[3] = {x, tf, NULL};
    assert_int_equal(run_op("Clip", 13, NULL, 0, in3, 3, 1, &y), GB_ERR_ARG);
    gb_tensor_free(tf);
    gb_tensor_free(tlo);
    gb_tensor_free(thi);
    gb_tensor_free(x);
}

/* ---- backward ------------------------------------------------------------------ */

/* Every activation at and around its kinks against PyTorch autograd: the
 * value chosen at each kink (Relu'(0) = 0, LeakyRelu/Elu take the negative
 * side at 0, HardSwish -1/2 and 3/2 at -3 and 3, Shrink 0 at +-lambd...). */
static void test_activation_backward_torch(void **state) {
    (void)state;
    int64_t d[1] = {13};
    gb_tensor *x = tensor_f32(1, d, fx_pw_x), *g = tensor_f32(1, d, fx_pw_g), *in[1] = {x};
    int checked = 0;
    for (size_t c = 0; c < sizeof fx_pw_cases / sizeof fx_pw_cases[0]; c++) {
        const fx_pw_case *fc = &fx_pw_cases[c];
        const gb__op *op = gb__op_lookup(fc->op);
        bool mine = false;
        for (int k = 0; gb__ops_activation[k]; k++) mine |= gb__ops_activation[k] == op;
        if (!mine) continue;
        gb__attr at[2];
        for (int k = 0; k < fc->n_attrs; k++) at[k] = attr_f(fc->attrs[k].name, fc->attrs[k].value);
        gb_tensor *din[1] = {filled_like(x, 0.25f)};
        assert_int_equal(run_op_backward(fc->op, 14, at, fc->n_attrs, in, 1, 1, g, din, NULL), GB_OK);
        float want[13];
        for (int i = 0; i < 13; i++) want[i] = 0.25f + fc->dx[i]; /* backward accumulates */
        assert_close_f32(din[0]->data, want, 13, 2e-6f, 1e-7f);
        gb_tensor_free(din[0]);
        checked++;
    }
    assert_int_equal(checked, 14);
    gb_tensor_free(x);
    gb_tensor_free(g);
}

/* Random inputs moved away from every kink by more than the step. */
static gb_tensor *rand_off_kinks(int n, const float *kinks, int nk) {
    int64_t d[1] = {n};
    gb_tensor *x = rand_f32(1, d, -5.0f, 5.0f);
    for (int64_t i = 0; i < x->numel; i++)
        for (int k = 0; k < nk; k++) {
            float *v = &((float *)x->data)[i];
            if (fabsf(*v - kinks[k]) < 0.05f) *v = kinks[k] + (*v < kinks[k] ? -0.05f : 0.05f);
        }
    return x;
}

static void test_activation_backward_fd(void **state) {
    (void)state;
    static const float kinks[] = {0.0f, -3.0f, 3.0f, -2.5f, 2.5f, -0.5f, 0.5f, 1.0f, -1.5f, 1.5f, 2.0f, -1.0f};
    gb_tensor *x = rand_off_kinks(60, kinks, (int)(sizeof kinks / sizeof kinks[0])), *in[1] = {x};
    static const char *const ops[] = {"Relu",     "LeakyRelu", "Elu",         "Selu",
                                      "Celu",     "Sigmoid",   "Tanh",        "HardSigmoid",
                                      "HardSwish", "Softplus", "Softsign", "ThresholdedRelu", "Shrink"};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        check_grad_fd(ops[o], 14, NULL, 0, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    gb__attr a1[1] = {attr_f("alpha", 0.3f)};
    check_grad_fd("LeakyRelu", 16, a1, 1, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    gb__attr a2[1] = {attr_f("alpha", 2.0f)};
    check_grad_fd("Elu", 6, a2, 1, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    check_grad_fd("Celu", 12, a2, 1, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    check_grad_fd("ThresholdedRelu", 10, a2, 1, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    gb__attr a3[2] = {attr_f("alpha", 2.0f), attr_f("gamma", 3.0f)};
    check_grad_fd("Selu", 6, a3, 2, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    gb__attr a4[2] = {attr_f("alpha", 0.5f), attr_f("beta", 0.25f)}; /* corners at -0.5, 1.5 */
    check_grad_fd("HardSigmoid", 6, a4, 2, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    gb__attr a5[2] = {attr_f("lambd", 1.5f), attr_f("bias", 1.0f)};
    check_grad_fd("Shrink", 9, a5, 2, in, 1, 1u, 1, 1e-3f, 1e-2, 2e-3);
    gb_tensor_free(x);
}

/* Threads split the elements: the same bits as one thread. */
static void test_activation_backward_threads(void **state) {
    (void)state;
    int64_t big[3] = {4, 100, 101};
    gb_tensor *x = rand_f32(3, big, -5.0f, 5.0f), *g = rand_f32(3, big, -1.0f, 1.0f), *in[1] = {x};
    static const char *const ops[] = {"Sigmoid", "Relu", "HardSwish", "Softplus"};
    for (int o = 0; o < 4; o++) {
        gb_tensor *d1[1] = {zeros_like(x)}, *d2[1] = {zeros_like(x)};
        assert_int_equal(run_op_backward(ops[o], 14, NULL, 0, in, 1, 1, g, d1, NULL), GB_OK);
        assert_int_equal(run_op_backward(ops[o], 14, NULL, 0, in, 1, 2, g, d2, NULL), GB_OK);
        assert_memory_equal(d1[0]->data, d2[0]->data, sizeof(float) * (size_t)x->numel);
        free_tensors(d1, 1);
        free_tensors(d2, 1);
    }
    gb_tensor_free(x);
    gb_tensor_free(g);
}

/* PRelu: gradients to X and to the slope (summed over the dims it
 * broadcasts along) for each slope shape, by central differences. Inputs
 * avoid X = 0. */
static void check_prelu_backward(int opset, int nx, const int64_t *xd, int ns, const int64_t *sd,
                                 int n_threads) {
    gb_tensor *x = rand_f32(nx, xd, -1.0f, 1.0f), *s = rand_f32(ns, sd, 0.1f, 0.9f);
    for (int64_t i = 0; i < x->numel; i++) {
        float *v = &((float *)x->data)[i];
        if (fabsf(*v) < 0.05f) *v = *v < 0 ? -0.05f : 0.05f;
    }
    gb_tensor *in[2] = {x, s};
    check_grad_fd("PRelu", opset, NULL, 0, in, 2, 3u, n_threads, 1e-3f, 1e-2, 2e-3);
    gb_tensor_free(x);
    gb_tensor_free(s);
}

static void test_prelu_backward(void **state) {
    (void)state;
    int64_t x4[4] = {2, 3, 4, 5}, x3[3] = {2, 3, 4};
    int64_t s1[1] = {1}, s311[3] = {3, 1, 1}, s4[1] = {4}, s3[1] = {3}, s315[3] = {3, 1, 5};
    check_prelu_backward(9, 4, x4, 1, s1, 1);
    check_prelu_backward(9, 4, x4, 3, s311, 1);  /* per channel */
    check_prelu_backward(9, 4, x4, 3, s311, 2);
    check_prelu_backward(9, 3, x3, 1, s4, 1);    /* trailing dim */
    check_prelu_backward(9, 4, x4, 3, s315, 1);  /* mixed strides */
    check_prelu_backward(9, 4, x4, 0, s1, 1);    /* 0-d slope */
    check_prelu_backward(6, 3, x3, 1, s3, 1);    /* opset 6 per channel */

    /* X = 0 takes the slope side, as torch.nn.functional.prelu */
    int64_t xd[4] = {2, 3, 2, 2}, sd[3] = {3, 1, 1};
    gb_tensor *x = tensor_f32(4, xd, fx_prelu_x), *s = tensor_f32(3, sd, fx_prelu_slope);
    gb_tensor *in[2] = {x, s}, *g = ramp_like(x);
    gb_tensor *din[2] = {zeros_like(x), zeros_like(s)};
    assert_int_equal(run_op_backward("PRelu", 16, NULL, 0, in, 2, 1, g, din, NULL), GB_OK);
    assert_close_f32(din[0]->data, fx_prelu_dx, 24, 1e-6f, 1e-7f);
    assert_close_f32(din[1]->data, fx_prelu_dslope, 3, 1e-5f, 1e-6f);
    free_tensors(din, 2);

    /* threaded, big: the slope gradient (serial) and dX (split) unchanged */
    int64_t xb[4] = {2, 3, 80, 81};
    gb_tensor *xbig = rand_f32(4, xb, -1.0f, 1.0f), *gbig = rand_f32(4, xb, -1.0f, 1.0f);
    gb_tensor *inb[2] = {xbig, s};
    gb_tensor *d1[2] = {zeros_like(xbig), zeros_like(s)}, *d2[2] = {zeros_like(xbig), zeros_like(s)};
    assert_int_equal(run_op_backward("PRelu", 16, NULL, 0, inb, 2, 1, gbig, d1, NULL), GB_OK);
    assert_int_equal(run_op_backward("PRelu", 16, NULL, 0, inb, 2, 2, gbig, d2, NULL), GB_OK);
    assert_memory_equal(d1[0]->data, d2[0]->data, sizeof(float) * (size_t)xbig->numel);
    assert_memory_equal(d1[1]->data, d2[1]->data, sizeof(float) * 3);
    double ref[3] = {0, 0, 0};
    for (int64_t i = 0; i < xbig->numel; i++) {
        float xv = ((float *)xbig->data)[i];
        if (xv <= 0) ref[(i / (80 * 81)) % 3] += (double)xv * ((float *)gbig->data)[i];
    }
    expect_close(d1[1]->data, ref, 3, 1e-5);
    free_tensors(d1, 2);
    free_tensors(d2, 2);
    gb_tensor_free(xbig);
    gb_tensor_free(gbig);
    gb_tensor_free(g);
    gb_tensor_free(x);
    gb_tensor_free(s);
}

/* Through the engine with the slope as a weight: its gradient exists only
 * with parameter gradients on; dX is the same either way. */
static void test_prelu_backward_through_session(void **state) {
    (void)state;
    int64_t xd[4] = {2, 3, 2, 2}, sd[3] = {3, 1, 1};
    gb_tensor *x = tensor_f32(4, xd, fx_prelu_x), *s = tensor_f32(3, sd, fx_prelu_slope);
    gb_tensor *in[2] = {x, s}, *g = ramp_like(x);
    for (int params = 0; params <= 1; params++) {
        oh_model om;
        assert_int_equal(oh_model_build(&om, "PRelu", 16, NULL, 0, in, 2, 2u, 1, GB_DTYPE_F32), GB_OK);
        gb_session_param_grads(om.s, params);
        assert_int_equal(oh_model_run(&om), GB_OK);
        assert_int_equal(oh_model_backward(&om, g), GB_OK);
        assert_close_f32(oh_model_grad(&om, 0)->data, fx_prelu_dx, 24, 1e-6f, 1e-7f);
        if (params) assert_close_f32(oh_model_grad(&om, 1)->data, fx_prelu_dslope, 3, 1e-5f, 1e-6f);
        else assert_null(oh_model_grad(&om, 1));
        oh_model_free(&om);
    }
    gb_tensor_free(g);
    gb_tensor_free(x);
    gb_tensor_free(s);
}

/* Clip against torch.clamp's autograd, gradients to min and max included:
 * inclusive bounds, NaN gets nothing, min > max sends everything to max,
 * min == max drops the clipped-below elements. Then the attribute form. */
static void test_clip_backward_torch(void **state) {
    (void)state;
    int64_t d[1] = {6};
    gb_tensor *x = tensor_f32(1, d, fx_clip_x), *g = ramp_like(x);
    for (size_t c = 0; c < sizeof fx_clip_cases / sizeof fx_clip_cases[0]; c++) {
        const fx_clip_case *fc = &fx_clip_cases[c];
        gb_tensor *lo = fc->has_lo ? tensor_f32(0, NULL, &fc->lo) : NULL;
        gb_tensor *hi = fc->has_hi ? tensor_f32(0, NULL, &fc->hi) : NULL;
        gb_tensor *in[3] = {x, lo, hi};
        gb_tensor *din[3] = {zeros_like(x), lo ? zeros_like(lo) : NULL, hi ? zeros_like(hi) : NULL};
        assert_int_equal(run_op_backward("Clip", 13, NULL, 0, in, 3, 1, g, din, NULL), GB_OK);
        assert_close_f32(din[0]->data, fc->dx, 6, 0, 0);
        if (lo) assert_float_equal(((float *)din[1]->data)[0], fc->dlo, 1e-6);
        if (hi) assert_float_equal(((float *)din[2]->data)[0], fc->dhi, 1e-6);
        free_tensors(din, 3);
        gb_tensor_free(lo);
        gb_tensor_free(hi);
    }
    gb_tensor *in[1] = {x}, *din[1] = {zeros_like(x)};
    gb__attr at[2] = {attr_f("min", -1.0f), attr_f("max", 1.0f)};
    assert_int_equal(run_op_backward("Clip", 6, at, 2, in, 1, 1, g, din, NULL), GB_OK);
    assert_close_f32(din[0]->data, fx_clip_cases[0].dx, 6, 0, 0);
    gb_tensor_free(din[0]);
    gb_tensor_free(g);
    gb_tensor_free(x);
}

static void test_clip_backward_fd(void **state) {
    (void)state;
    static const float kinks[] = {-1.0f, 1.5f};
    gb_tensor *x = rand_off_kinks(40, kinks, 2);
    float lo = -1.0f, hi = 1.5f;
    gb_tensor *tlo = tensor_f32(0, NULL, &lo), *thi = tensor_f32(0, NULL, &hi);
    gb_tensor *in[3] = {x, tlo, thi};
    check_grad_fd("Clip", 13, NULL, 0, in, 3, 7u, 1, 1e-3f, 1e-2, 2e-3);
    gb_tensor *in2[3] = {x, NULL, thi};
    check_grad_fd("Clip", 11, NULL, 0, in2, 3, 7u, 1, 1e-3f, 1e-2, 2e-3);
    gb_tensor_free(x);
    gb_tensor_free(tlo);
    gb_tensor_free(thi);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_defaults),
        cmocka_unit_test(test_activation_attributes),
        cmocka_unit_test(test_activation_nan_and_threads),
        cmocka_unit_test(test_prelu),
        cmocka_unit_test(test_clip_attributes),
        cmocka_unit_test(test_clip_inputs),
        cmocka_unit_test(test_clip_int64),
        cmocka_unit_test(test_activation_backward_torch),
        cmocka_unit_test(test_activation_backward_fd),
        cmocka_unit_test(test_activation_backward_threads),
        cmocka_unit_test(test_prelu_backward),
        cmocka_unit_test(test_prelu_backward_through_session),
        cmocka_unit_test(test_clip_backward_torch),
        cmocka_unit_test(test_clip_backward_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
