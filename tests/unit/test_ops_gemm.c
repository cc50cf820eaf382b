/*
 * test_ops_gemm.c — Gemm and MatMul against naive triple loops in double.
 *
 * Gemm: every combination of transA/transB, alpha/beta and each shape C may
 * take under unidirectional broadcasting (absent, scalar, (N), (1, N),
 * (M, 1), (M, N)). MatMul: NumPy matmul rules — 1-D operands promoted and
 * the promoted dim removed from the result, batch dims broadcast — with the
 * expected output shapes written out by hand.
 *
 * Backward: dA, dB and dC by central differences for every transA/transB,
 * alpha/beta and C shape, and for each MatMul shape rule (1-D promotion,
 * batch broadcasting summed back); bigger threaded cases against triple
 * loops; a Linear layer and a broadcast batched product against PyTorch
 * autograd, through the engine with parameter gradients on and off.
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

/* ---- Gemm ------------------------------------------------------------------------ */

/* c_kind: 0 absent, 1 scalar (0-d), 2 (N), 3 (1, N), 4 (M, 1), 5 (M, N), 6 (1, 1) */
static void check_gemm(int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha, float beta,
                       int c_kind, int opset, int n_threads) {
    int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
    gb_tensor *a = rand_f32(2, ad, -1, 1), *b = rand_f32(2, bd, -1, 1), *c = NULL, *y;
    int64_t cd[2];
    int cn = 0;
    switch (c_kind) {
    case 1: cn = 0; break;
    case 2: cn = 1, cd[0] = N; break;
    case 3: cn = 2, cd[0] = 1, cd[1] = N; break;
    case 4: cn = 2, cd[0] = M, cd[1] = 1; break;
    case 5: cn = 2, cd[0] = M, cd[1] = N; break;
    case 6: cn = 2, cd[0] = 1, cd[1] = 1; break;
    }
    if (c_kind) c = rand_f32(cn, cd, -1, 1);
    gb_tensor *in[3] = {a, b, c};
    gb__attr at[4] = {attr_i("transA", ta), attr_i("transB", tb), attr_f("alpha", alpha),
                      attr_f("beta", beta)};
    assert_int_equal(run_op("Gemm", opset, at, 4, in, c ? 3 : 2, n_threads, &y), GB_OK);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->dims[0], M);
    assert_int_equal(y->dims[1], N);
    double *want = calloc((size_t)(M * N) + 1, sizeof *want);
    const float *A = a->data, *B = b->data;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                double av = ta ? A[k * M + m] : A[m * K + k];
                double bv = tb ? B[n * K + k] : B[k * N + n];
                s += av * bv;
            }
            double cv = 0;
            if (c) {
                const float *C = c->data;
                switch (c_kind) {
                case 1: case 6: cv = C[0]; break;
                case 2: case 3: cv = C[n]; break;
                case 4: cv = C[m]; break;
                case 5: cv = C[m * N + n]; break;
                }
            }
            want[m * N + n] = alpha * s + beta * cv;
        }
    expect_close(y->data, want, M * N, 1e-5);
    free(want);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(c);
    gb_tensor_free(y);
}

static void test_gemm_combinations(void **state) {
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int ck = 0; ck <= 6; ck++) {
                check_gemm(3, 5, 4, ta, tb, 1.0f, 1.0f, ck, 13, 1);
                check_gemm(4, 2, 7, ta, tb, 0.5f, -2.0f, ck, 11, 1);
            }
    check_gemm(1, 1, 1, 0, 0, 1.0f, 1.0f, 0, 13, 1);
    check_gemm(70, 60, 50, 1, 1, 0.25f, 0.5f, 2, 13, 2); /* threaded C fill */
    check_gemm(2, 3, 4, 0, 1, 1.0f, 1.0f, 2, 6, 1);      /* opset 6 (PyTorch Linear) */
    check_gemm(3, 4, 0, 0, 0, 1.0f, 1.0f, 5, 13, 1);     /* K = 0: Y = beta * C */
    check_gemm(3, 4, 0, 0, 0, 1.0f, 1.0f, 0, 13, 1);     /* K = 0, no C: zeros */
}

static void test_gemm_beta_zero_ignores_c(void **state) {
    (void)state;
    int64_t d22[2] = {2, 2};
    float av[4] = {1, 2, 3, 4}, bv[4] = {1, 0, 0, 1}, cv[4] = {NAN, NAN, NAN, NAN};
    gb_tensor *a = tensor_f32(2, d22, av), *b = tensor_f32(2, d22, bv), *c = tensor_f32(2, d22, cv);
    gb_tensor *in[3] = {a, b, c}, *y;
    gb__attr at[1] = {attr_f("beta", 0.0f)};
    assert_int_equal(run_op("Gemm", 13, at, 1, in, 3, 1, &y), GB_OK);
    for (int i = 0; i < 4; i++) assert_float_equal(((float *)y->data)[i], av[i], 0);
    gb_tensor_free(y);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(c);
}

static void test_gemm_errors(void **state) {
    (void)state;
    int64_t d23[2] = {2, 3}, d24[2] = {2, 4}, d3[1] = {3}, d32[2] = {3, 2};
    gb_tensor *a = tensor_f32(2, d23, NULL), *b = tensor_f32(2, d24, NULL);
    gb_tensor *v = tensor_f32(1, d3, NULL), *b34 = tensor_f32(2, d32, NULL), *y;
    gb_tensor *in[2] = {a, b};
    assert_int_equal(run_op("Gemm", 13, NULL, 0, in, 2, 1, &y), GB_ERR_SHAPE); /* K 3 vs 2 */
    gb_tensor *in2[2] = {a, v};
    assert_int_equal(run_op("Gemm", 13, NULL, 0, in2, 2, 1, &y), GB_ERR_SHAPE); /* 1-D B */
    /* (2,3) x (3,2) -> (2,2); C (3) does not broadcast to it */
    gb_tensor *in3[3] = {a, b34, v};
    assert_int_equal(run_op("Gemm", 13, NULL, 0, in3, 3, 1, &y), GB_ERR_SHAPE);
    gb_tensor *ai = tensor_i64(2, d23, NULL);
    gb_tensor *in4[2] = {ai, b34};
    assert_int_equal(run_op("Gemm", 13, NULL, 0, in4, 2, 1, &y), GB_ERR_UNSUPPORTED);
    gb_tensor_free(ai);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(v);
    gb_tensor_free(b34);
}

/* ---- MatMul ------------------------------------------------------------------------ */

/* Reference numpy.matmul for A (na dims) and B (nb dims), output shape given. */
static void check_matmul(int na, const int64_t *ad, int nb, const int64_t *bd, int ny,
                         const int64_t *yd, int n_threads) {
    gb_tensor *a = rand_f32(na, ad, -1, 1), *b = rand_f32(nb, bd, -1, 1), *y;
    gb_tensor *in[2] = {a, b};
    assert_int_equal(run_op("MatMul", 13, NULL, 0, in, 2, n_threads, &y), GB_OK);
    assert_int_equal(y->ndim, ny);
    for (int i = 0; i < ny; i++) assert_int_equal(y->dims[i], yd[i]);
    /* promote to >= 2-D, then broadcast batch dims (written out directly) */
    int64_t M = na == 1 ? 1 : ad[na - 2], K = ad[na - 1], N = nb == 1 ? 1 : bd[nb - 1];
    int ba = na > 2 ? na - 2 : 0, bb = nb > 2 ? nb - 2 : 0, bo = ba > bb ? ba : bb;
    int64_t bod[GB_MAX_DIMS], nbatch = 1;
    for (int i = 0; i < bo; i++) {
        int64_t x = i < bo - ba ? 1 : ad[i - (bo - ba)];
        int64_t z = i < bo - bb ? 1 : bd[i - (bo - bb)];
        bod[i] = x == 1 ? z : x;
        nbatch *= bod[i];
    }
    double *want = calloc((size_t)(nbatch * M * N) + 1, sizeof *want);
    const float *A = a->data, *B = b->data;
    for (int64_t t = 0; t < nbatch; t++) {
        int64_t idx[GB_MAX_DIMS], r = t, ia = 0, ib = 0;
        for (int i = bo - 1; i >= 0; i--) idx[i] = r % bod[i], r /= bod[i];
        for (int i = 0; i < ba; i++) {
            int64_t dim = ad[i];
            ia = ia * dim + (dim == 1 ? 0 : idx[i + bo - ba]);
        }
        for (int i = 0; i < bb; i++) {
            int64_t dim = bd[i];
            ib = ib * dim + (dim == 1 ? 0 : idx[i + bo - bb]);
        }
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)A[ia * M * K + m * K + k] * B[ib * K * N + k * N + n];
                want[t * M * N + m * N + n] = s;
            }
    }
    expect_close(y->data, want, nbatch * M * N, 1e-5);
    free(want);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(y);
}

static void test_matmul_shapes(void **state) {
    (void)state;
    static const struct {
        int na, nb, ny, n_threads;
        int64_t a[4], b[4], y[4];
    } cases[] = {
        {2, 2, 2, 1, {3, 4}, {4, 5}, {3, 5}},
        {1, 2, 1, 1, {4}, {4, 5}, {5}},                     /* 1-D A: (1, K), 1 removed */
        {2, 1, 1, 1, {3, 4}, {4}, {3}},                     /* 1-D B: (K, 1), 1 removed */
        {1, 1, 0, 1, {4}, {4}, {0}},                        /* dot product: 0-d */
        {3, 2, 3, 1, {2, 3, 4}, {4, 5}, {2, 3, 5}},         /* Linear on (B, T, C): folds */
        {2, 3, 3, 1, {3, 4}, {2, 4, 5}, {2, 3, 5}},         /* shared A, batched B */
        {4, 3, 4, 1, {2, 1, 3, 4}, {3, 4, 5}, {2, 3, 3, 5}}, /* batch broadcast */
        {4, 4, 4, 1, {2, 1, 3, 4}, {1, 5, 4, 2}, {2, 5, 3, 2}},
        {1, 3, 2, 1, {4}, {2, 4, 5}, {2, 5}},               /* 1-D with batched other */
        {3, 1, 2, 1, {2, 3, 4}, {4}, {2, 3}},
        {3, 3, 3, 1, {2, 3, 4}, {1, 4, 5}, {2, 3, 5}},      /* B batch of 1: still folds */
        {3, 3, 3, 2, {4, 33, 65}, {4, 65, 17}, {4, 33, 17}}, /* bigger, BLAS threads */
        {2, 2, 2, 1, {3, 0}, {0, 2}, {3, 2}},               /* K = 0: zeros */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_matmul(cases[i].na, cases[i].a, cases[i].nb, cases[i].b, cases[i].ny, cases[i].y,
                     cases[i].n_threads);
}

static void test_matmul_errors(void **state) {
    (void)state;
    int64_t d34[2] = {3, 4}, d35[2] = {3, 5}, b2[3] = {2, 3, 4}, b3[3] = {3, 4, 5};
    gb_tensor *a = tensor_f32(2, d34, NULL), *b = tensor_f32(2, d35, NULL), *y;
    gb_tensor *in[2] = {a, b};
    assert_int_equal(run_op("MatMul", 13, NULL, 0, in, 2, 1, &y), GB_ERR_SHAPE);
    gb_tensor *c = tensor_f32(3, b2, NULL), *d = tensor_f32(3, b3, NULL);
    gb_tensor *in2[2] = {c, d}; /* batch 2 vs 3 */
    assert_int_equal(run_op("MatMul", 13, NULL, 0, in2, 2, 1, &y), GB_ERR_SHAPE);
    gb_tensor *s = tensor_f32(0, NULL, NULL);
    gb_tensor *in3[2] = {s, a};
    assert_int_equal(run_op("MatMul", 13, NULL, 0, in3, 2, 1, &y), GB_ERR_SHAPE);
    gb_tensor_free(s);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(c);
    gb_tensor_free(d);
}

/* ---- backward ------------------------------------------------------------------ */

/* Gemm's gradients to A, B and C by central differences, for each
 * transposition, alpha/beta and each shape of C. */
static void check_gemm_backward(int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha,
                                float beta, int c_kind, int opset) {
    int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N}, cd[2];
    int cn = 0;
    switch (c_kind) {
    case 2: cn = 1, cd[0] = N; break;
    case 3: cn = 2, cd[0] = 1, cd[1] = N; break;
    case 4: cn = 2, cd[0] = M, cd[1] = 1; break;
    case 5: cn = 2, cd[0] = M, cd[1] = N; break;
    case 6: cn = 2, cd[0] = 1, cd[1] = 1; break;
    }
    gb_tensor *a = rand_f32(2, ad, -1, 1), *b = rand_f32(2, bd, -1, 1);
    gb_tensor *c = c_kind ? rand_f32(cn, cd, -1, 1) : NULL;
    gb_tensor *in[3] = {a, b, c};
    gb__attr at[4] = {attr_i("transA", ta), attr_i("transB", tb), attr_f("alpha", alpha),
                      attr_f("beta", beta)};
    check_grad_fd("Gemm", opset, at, 4, in, c ? 3 : 2, 7u, 1, 1e-2f, 1e-2, 1e-3);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(c);
}

static void test_gemm_backward_fd(void **state) {
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int ck = 0; ck <= 6; ck++) {
                check_gemm_backward(3, 5, 4, ta, tb, 1.0f, 1.0f, ck, 13);
                check_gemm_backward(4, 2, 7, ta, tb, 0.5f, -2.0f, ck, 11);
            }
    check_gemm_backward(2, 3, 4, 0, 1, 1.0f, 1.0f, 2, 6); /* opset 6 (PyTorch Linear) */
    check_gemm_backward(3, 4, 2, 1, 0, 1.0f, 0.0f, 5, 13); /* beta 0: C gets nothing */
}

/* Bigger, threaded, against triple loops in double; the gradient buffers
 * start at 1 to check accumulation. C is a bias of shape (N). */
static void test_gemm_backward_large(void **state) {
    (void)state;
    const int64_t M = 70, N = 150, K = 50;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N}, cd[1] = {N};
            gb_tensor *a = rand_f32(2, ad, -1, 1), *b = rand_f32(2, bd, -1, 1), *c = rand_f32(1, cd, -1, 1);
            int64_t gd[2] = {M, N};
            gb_tensor *g = rand_f32(2, gd, -1, 1), *in[3] = {a, b, c};
            gb__attr at[4] = {attr_i("transA", ta), attr_i("transB", tb), attr_f("alpha", 0.5f),
                              attr_f("beta", -1.5f)};
            gb_tensor *din[3] = {filled_like(a, 1.0f), filled_like(b, 1.0f), filled_like(c, 1.0f)};
            assert_int_equal(run_op_backward("Gemm", 13, at, 4, in, 3, 2, g, din, NULL), GB_OK);
            double *wa = calloc((size_t)(M * K), sizeof(double)), *wb = calloc((size_t)(K * N), sizeof(double));
            double *wc = calloc((size_t)N, sizeof(double));
            const float *A = a->data, *B = b->data, *G = g->data;
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double gv = G[m * N + n];
                    wc[n] += -1.5 * gv;
                    for (int64_t k = 0; k < K; k++) {
                        double av = ta ? A[k * M + m] : A[m * K + k];
                        double bv = tb ? B[n * K + k] : B[k * N + n];
                        wa[ta ? k * M + m : m * K + k] += 0.5 * gv * bv;
                        wb[tb ? n * K + k : k * N + n] += 0.5 * gv * av;
                    }
                }
            for (int64_t i = 0; i < M * K; i++) wa[i] += 1;
            for (int64_t i = 0; i < K * N; i++) wb[i] += 1;
            for (int64_t i = 0; i < N; i++) wc[i] += 1;
            expect_close(din[0]->data, wa, M * K, 1e-5);
            expect_close(din[1]->data, wb, K * N, 1e-5);
            expect_close(din[2]->data, wc, N, 1e-5);
            free(wa);
            free(wb);
            free(wc);
            free_tensors(din, 3);
            gb_tensor_free(g);
            gb_tensor_free(a);
            gb_tensor_free(b);
            gb_tensor_free(c);
        }
}

/* A Linear layer through the engine, weights as initializers, against
 * PyTorch autograd: 0.5 * A B^T + 2 C. Weight and bias gradients exist only
 * with parameter gradients on. */
static void test_gemm_backward_torch_params(void **state) {
    (void)state;
    int64_t ad[2] = {3, 4}, bd[2] = {5, 4}, cd[1] = {5};
    gb_tensor *a = tensor_f32(2, ad, fx_gemm_a), *b = tensor_f32(2, bd, fx_gemm_b), *c = tensor_f32(1, cd, fx_gemm_c);
    gb_tensor *in[3] = {a, b, c};
    gb__attr at[3] = {attr_i("transB", 1), attr_f("alpha", 0.5f), attr_f("beta", 2.0f)};
    int64_t yd[2] = {3, 5};
    gb_tensor *y0 = tensor_f32(2, yd, NULL), *g = ramp_like(y0);
    for (int params = 0; params <= 1; params++) {
        oh_model om;
        assert_int_equal(oh_model_build(&om, "Gemm", 13, at, 3, in, 3, 6u, 1, GB_DTYPE_F32), GB_OK);
        gb_session_param_grads(om.s, params);
        assert_int_equal(oh_model_run(&om), GB_OK);
        assert_int_equal(oh_model_backward(&om, g), GB_OK);
        assert_close_f32(oh_model_grad(&om, 0)->data, fx_gemm_da, 12, 1e-5f, 1e-6f);
        if (params) {
            assert_close_f32(oh_model_grad(&om, 1)->data, fx_gemm_db, 20, 1e-5f, 1e-6f);
            assert_close_f32(oh_model_grad(&om, 2)->data, fx_gemm_dc, 5, 1e-6f, 0);
        } else {
            assert_null(oh_model_grad(&om, 1));
            assert_null(oh_model_grad(&om, 2));
        }
        oh_model_free(&om);
    }
    /* the op alone: din NULL for the weights is skipped, dA unchanged */
    gb_tensor *din[3] = {zeros_like(a), NULL, NULL};
    assert_int_equal(run_op_backward("Gemm", 13, at, 3, in, 3, 1, g, din, NULL), GB_OK);
    assert_close_f32(din[0]->data, fx_gemm_da, 12, 1e-5f, 1e-6f);
    gb_tensor_free(din[0]);
    gb_tensor_free(g);
    gb_tensor_free(y0);
    gb_tensor_free(a);
    gb_tensor_free(b);
    gb_tensor_free(c);
}

/* MatMul's gradients by central differences over NumPy's shape rules: 1-D
 * promotion, and batch broadcasting (the gradient of a broadcast operand is
 * summed over the batch dims it was repeated along). */
static void test_matmul_backward_fd(void **state) {
    (void)state;
    static const struct {
        int na, nb;
        int64_t a[4], b[4];
    } cases[] = {
        {2, 2, {3, 4}, {4, 5}},          {1, 2, {4}, {4, 5}},
        {2, 1, {3, 4}, {4}},             {1, 1, {4}, {4}},
        {3, 2, {2, 3, 4}, {4, 5}},       {2, 3, {3, 4}, {2, 4, 5}},
        {4, 3, {2, 1, 3, 4}, {3, 4, 5}}, {4, 4, {2, 1, 3, 4}, {1, 2, 4, 2}},
        {1, 3, {4}, {2, 4, 5}},          {3, 1, {2, 3, 4}, {4}},
        {3, 3, {2, 3, 4}, {1, 4, 5}},    {2, 2, {3, 0}, {0, 2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gb_tensor *a = rand_f32(cases[i].na, cases[i].a, -1, 1), *b = rand_f32(cases[i].nb, cases[i].b, -1, 1);
        gb_tensor *in[2] = {a, b};
        check_grad_fd("MatMul", 13, NULL, 0, in, 2, 3u, 1, 1e-2f, 1e-2, 1e-3);
        gb_tensor_free(a);
        gb_tensor_free(b);
    }
}

/* (2, 1, 3, 4) x (3, 4, 5) against PyTorch autograd, directly and through
 * the engine; and a bigger folded case (Linear on (B, T, C)) with threads. */
static void test_matmul_backward_torch(void **state) {
    (void)state;
    int64_t ad[4] = {2, 1, 3, 4}, bd[3] = {3, 4, 5}, yd[4] = {2, 3, 3, 5};
    gb_tensor *a = tensor_f32(4, ad, fx_matmul_a), *b = tensor_f32(3, bd, fx_matmul_b), *in[2] = {a, b};
    gb_tensor *y0 = tensor_f32(4, yd, NULL), *g = ramp_like(y0);
    gb_tensor *din[2] = {zeros_like(a), zeros_like(b)};
    assert_int_equal(run_op_backward("MatMul", 13, NULL, 0, in, 2, 1, g, din, NULL), GB_OK);
    assert_close_f32(din[0]->data, fx_matmul_da, 24, 1e-5f, 1e-5f);
    assert_close_f32(din[1]->data, fx_matmul_db, 60, 1e-5f, 1e-5f);
    free_tensors(din, 2);
    oh_model om;
    assert_int_equal(oh_model_build(&om, "MatMul", 13, NULL, 0, in, 2, 0u, 1, GB_DTYPE_F32), GB_OK);
    assert_int_equal(oh_model_run(&om), GB_OK);
    assert_int_equal(oh_model_backward(&om, g), GB_OK);
    assert_close_f32(oh_model_grad(&om, 0)->data, fx_matmul_da, 24, 1e-5f, 1e-5f);
    assert_close_f32(oh_model_grad(&om, 1)->data, fx_matmul_db, 60, 1e-5f, 1e-5f);
    oh_model_free(&om);
    gb_tensor_free(g);
    gb_tensor_free(y0);
    gb_tensor_free(a);
    gb_tensor_free(b);

    /* folded (B*T, C) x (C, N): dA = G W^T, dW = A^T G, 2 threads */
    int64_t xd[3] = {4, 33, 65}, wd[2] = {65, 17}, gd[3] = {4, 33, 17};
    gb_tensor *x = rand_f32(3, xd, -1, 1), *w = rand_f32(2, wd, -1, 1), *gg = rand_f32(3, gd, -1, 1);
    gb_tensor *in2[2] = {x, w}, *d2[2] = {zeros_like(x), zeros_like(w)};
    assert_int_equal(run_op_backward("MatMul", 13, NULL, 0, in2, 2, 2, gg, d2, NULL), GB_OK);
    double *wx = calloc((size_t)x->numel, sizeof(double)), *ww = calloc((size_t)w->numel, sizeof(double));
    const float *X = x->data, *W = w->data, *G = gg->data;
    for (int64_t r = 0; r < 4 * 33; r++)
        for (int64_t n = 0; n < 17; n++)
            for (int64_t k = 0; k < 65; k++) {
                wx[r * 65 + k] += (double)G[r * 17 + n] * W[k * 17 + n];
                ww[k * 17 + n] += (double)X[r * 65 + k] * G[r * 17 + n];
            }
    expect_close(d2[0]->data, wx, x->numel, 1e-5);
    expect_close(d2[1]->data, ww, w->numel, 1e-5);
    free(wx);
    free(ww);
    free_tensors(d2, 2);
    gb_tensor_free(x);
    gb_tensor_free(w);
    gb_tensor_free(gg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_combinations),
        cmocka_unit_test(test_gemm_beta_zero_ignores_c),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_gemm_backward_fd),
        cmocka_unit_test(test_gemm_backward_large),
        cmocka_unit_test(test_gemm_backward_torch_params),
        cmocka_unit_test(test_matmul_backward_fd),
        cmocka_unit_test(test_matmul_backward_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
