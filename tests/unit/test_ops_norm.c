/*
 * test_ops_norm.c — BatchNormalization, InstanceNormalization,
 * LayerNormalization, LRN.
 *
 * References: PyTorch outputs (tests/fixtures/pool_norm_torch.h, written by
 * tests/scripts/gen_pool_norm_fixtures.py) and naive loops in this file that
 * follow the ONNX formulas literally (double precision).
 * Backward: PyTorch float64 autograd of the ONNX formulas
 * (tests/fixtures/pool_norm_grad_torch.h, from
 * tests/scripts/gen_pool_norm_grad_fixtures.py), for every input including
 * BatchNormalization's mean/var and LayerNormalization's broadcast Scale/B,
 * with gradients into LayerNormalization's Mean/InvStdDev outputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/util.h"

#include "../fixtures/pool_norm_torch.h"
#include "../fixtures/pool_norm_grad_torch.h"

/* ---- a tiny harness: build a node, run init/infer/forward ------------------- */

typedef struct {
    gb__node n;
    gb__attr attrs[12];
    int in_ids[8], out_ids[8];
} tnode;

static void tn_init(tnode *t, const char *op, int opset, int n_in, int n_out) {
    memset(t, 0, sizeof *t);
    t->n.name = (char *)"node0";
    t->n.op_type = (char *)op;
    t->n.opset = opset;
    t->n.n_in = n_in;
    t->n.n_out = n_out;
    t->n.in = t->in_ids;
    t->n.out = t->out_ids;
    t->n.attrs = t->attrs;
    for (int i = 0; i < 8; i++) t->in_ids[i] = i;
    for (int k = 0; k < 8; k++) t->out_ids[k] = 100 + k;
}

static gb__attr *tn_attr(tnode *t, const char *name, gb__attr_type type) {
    gb__attr *a = &t->attrs[t->n.n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = type;
    return a;
}
static void tn_int(tnode *t, const char *name, int64_t v) { tn_attr(t, name, GB_ATTR_INT)->i = v; }
static gb_tensor tens(gb_dtype dt, int ndim, const int64_t *dims, const void *data) {
    gb_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.dims[i] = dims[i];
    t.numel = gb__numel(ndim, dims);
    t.data = (void *)data;
    return t;
}

/* Runs the node; on success out[k].data is malloc'ed (caller frees). */
static gb_status run_node(gb_ctx *ctx, tnode *t, gb_tensor **in, gb_tensor *out, int threads) {
    const gb__op *op = gb__op_lookup(t->n.op_type);
    assert_non_null(op);
    t->n.op = op;
    gb_status st = op->init(ctx, &t->n);
    gb_tensor *outp[8] = {0};
    void *ws = NULL;
    size_t ws_bytes = 0;
    double flops = 0;
    if (st) goto done;
    for (int k = 0; k < t->n.n_out; k++) {
        memset(&out[k], 0, sizeof out[k]);
        outp[k] = t->out_ids[k] >= 0 ? &out[k] : NULL;
    }
    st = op->infer(ctx, &t->n, in, outp, &ws_bytes, &flops);
    if (st) goto done;
    assert_true(flops > 0);
    for (int k = 0; k < t->n.n_out; k++)
        if (outp[k]) {
            outp[k]->data = malloc((size_t)outp[k]->numel * sizeof(float) + 1);
            assert_non_null(outp[k]->data);
        }
    if (ws_bytes) ws = malloc(ws_bytes);
    gb__exec ex = {.n_threads = threads, .ws = ws, .ws_size = ws_bytes};
    st = op->forward(&t->n, (const gb_tensor *const *)in, outp, &ex);
done:
    free(ws);
    free(t->n.params);
    t->n.params = NULL;
    return st;
}

static void assert_close(const float *got, const float *want, int64_t n, float rtol, float atol) {
    for (int64_t i = 0; i < n; i++) {
        float tol = atol + rtol * fabsf(want[i]);
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("element %lld: got %.8g, want %.8g", (long long)i, got[i], want[i]);
    }
}

static void assert_shape(const gb_tensor *t, int ndim, const int64_t *dims) {
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(t->dims[i], dims[i]);
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}
static float frand(uint32_t *s) { return (float)(lcg(s) % 20001) / 10000.0f - 1.0f; }

static void tn_float(tnode *t, const char *name, float v) { tn_attr(t, name, GB_ATTR_FLOAT)->f = v; }

static float *rand_buf(int64_t n, uint32_t *seed, float scale, float shift) {
    float *b = malloc((size_t)n * sizeof(float));
    assert_non_null(b);
    for (int64_t i = 0; i < n; i++) b[i] = frand(seed) * scale + shift;
    return b;
}

/* ---- BatchNormalization ------------------------------------------------------ */

static void test_batchnorm_torch(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 3, 4, 5}, dc[1] = {3};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, fx_bn_x), s = tens(GB_DTYPE_F32, 1, dc, fx_bn_scale),
              b = tens(GB_DTYPE_F32, 1, dc, fx_bn_bias), m = tens(GB_DTYPE_F32, 1, dc, fx_bn_mean),
              v = tens(GB_DTYPE_F32, 1, dc, fx_bn_var);
    gb_tensor *in[5] = {&x, &s, &b, &m, &v};
    for (int opset = 7; opset <= 15; opset += 8) {
        tnode t;
        tn_init(&t, "BatchNormalization", opset, 5, 1);
        tn_float(&t, "epsilon", 1e-3f);
        tn_float(&t, "momentum", 0.5f);
        gb_tensor y[1];
        assert_int_equal(run_node(ctx, &t, in, y, 2), GB_OK);
        assert_shape(&y[0], 4, dx);
        assert_close(y[0].data, fx_bn_y, 120, 1e-5f, 1e-5f);
        free(y[0].data);
    }
}

/* (N, C) input, default epsilon, opset 6/7 attributes is_test and spatial = 1. */
static void test_batchnorm_naive(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 5;
    int64_t N = 4, C = 3, S = 1;
    for (int rank = 2; rank <= 5; rank += 3) {
        int64_t dx[5] = {N, C, 2, 3, 2};
        if (rank == 5) S = 12;
        int64_t dc[1] = {C};
        float *xd = rand_buf(N * C * S, &seed, 3.0f, 0.5f);
        float *sd = rand_buf(C, &seed, 1.0f, 0.0f), *bd = rand_buf(C, &seed, 1.0f, 0.0f);
        float *md = rand_buf(C, &seed, 1.0f, 0.0f), *vd = rand_buf(C, &seed, 0.4f, 0.5f);
        gb_tensor x = tens(GB_DTYPE_F32, rank, dx, xd), s = tens(GB_DTYPE_F32, 1, dc, sd),
                  b = tens(GB_DTYPE_F32, 1, dc, bd), m = tens(GB_DTYPE_F32, 1, dc, md),
                  v = tens(GB_DTYPE_F32, 1, dc, vd);
        gb_tensor *in[5] = {&x, &s, &b, &m, &v};
        tnode t;
        tn_init(&t, "BatchNormalization", 7, 5, 1);
        tn_int(&t, "is_test", 1);
        tn_int(&t, "spatial", 1);
        gb_tensor y[1];
        assert_int_equal(run_node(ctx, &t, in, y, 1), GB_OK);
        float *want = malloc((size_t)(N * C * S) * sizeof(float));
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < S; i++) {
                    int64_t k = (n * C + c) * S + i;
                    want[k] = (float)((xd[k] - md[c]) / sqrt((double)vd[c] + 1e-5) * sd[c] + bd[c]);
                }
        assert_close(y[0].data, want, N * C * S, 1e-5f, 1e-5f);
        free(want);
        free(y[0].data);
        free(xd); free(sd); free(bd); free(md); free(vd);
    }
}

static void test_batchnorm_errors(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 3, 4, 5}, dc[1] = {3}, d4[1] = {4};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, fx_bn_x), s = tens(GB_DTYPE_F32, 1, dc, fx_bn_scale),
              s4 = tens(GB_DTYPE_F32, 1, d4, fx_bn_x);
    gb_tensor *in[5] = {&x, &s, &s, &s, &s};
    gb_tensor y[5];
    tnode t;
    /* training_mode = 1 (opset 14+) */
    tn_init(&t, "BatchNormalization", 15, 5, 1);
    tn_int(&t, "training_mode", 1);
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_ERR_UNSUPPORTED);
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "training-mode"));
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "node0"));
    /* running_mean / running_var requested (opset 15) or saved stats (opset 7) */
    tn_init(&t, "BatchNormalization", 15, 5, 3);
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_ERR_UNSUPPORTED);
    tn_init(&t, "BatchNormalization", 7, 5, 5);
    t.out_ids[1] = t.out_ids[2] = t.out_ids[3] = -1;
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_ERR_UNSUPPORTED);
    /* ...but omitted (empty-named) optional outputs are fine */
    tn_init(&t, "BatchNormalization", 15, 5, 3);
    t.out_ids[1] = t.out_ids[2] = -1;
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_OK);
    free(y[0].data);
    /* spatial = 0 (opset 7) */
    tn_init(&t, "BatchNormalization", 7, 5, 1);
    tn_int(&t, "spatial", 0);
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_ERR_UNSUPPORTED);
    /* a per-channel vector of the wrong length */
    gb_tensor *bad[5] = {&x, &s, &s, &s4, &s};
    tn_init(&t, "BatchNormalization", 15, 5, 1);
    assert_int_equal(run_node(ctx, &t, bad, y, 1), GB_ERR_SHAPE);
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "mean"));
    /* four inputs */
    tn_init(&t, "BatchNormalization", 15, 4, 1);
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_ERR_FORMAT);
    /* rank 1 */
    gb_tensor x1 = tens(GB_DTYPE_F32, 1, dc, fx_bn_x);
    gb_tensor *in1[5] = {&x1, &s, &s, &s, &s};
    tn_init(&t, "BatchNormalization", 15, 5, 1);
    assert_int_equal(run_node(ctx, &t, in1, y, 1), GB_ERR_SHAPE);
}

/* ---- InstanceNormalization ---------------------------------------------------- */

static void test_instancenorm(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 3, 5, 4}, dc[1] = {3};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, fx_in_x), s = tens(GB_DTYPE_F32, 1, dc, fx_bn_scale),
              b = tens(GB_DTYPE_F32, 1, dc, fx_bn_bias);
    gb_tensor *in[3] = {&x, &s, &b};
    gb_tensor y[1];
    tnode t;
    tn_init(&t, "InstanceNormalization", 6, 3, 1);
    assert_int_equal(run_node(ctx, &t, in, y, 2), GB_OK);
    assert_shape(&y[0], 4, dx);
    assert_close(y[0].data, fx_in_y, 120, 1e-4f, 1e-5f);
    free(y[0].data);

    /* 3-D input, epsilon 0.1, against the formula */
    uint32_t seed = 11;
    int64_t N = 2, C = 3, L = 7, d3[3] = {2, 3, 7};
    float *xd = rand_buf(N * C * L, &seed, 2.0f, 1.0f);
    gb_tensor x3 = tens(GB_DTYPE_F32, 3, d3, xd);
    gb_tensor *in3[3] = {&x3, &s, &b};
    tn_init(&t, "InstanceNormalization", 6, 3, 1);
    tn_float(&t, "epsilon", 0.1f);
    assert_int_equal(run_node(ctx, &t, in3, y, 1), GB_OK);
    float want[42];
    for (int64_t nc = 0; nc < N * C; nc++) {
        double mu = 0, var = 0;
        for (int64_t i = 0; i < L; i++) mu += xd[nc * L + i];
        mu /= (double)L;
        for (int64_t i = 0; i < L; i++) var += (xd[nc * L + i] - mu) * (xd[nc * L + i] - mu);
        var /= (double)L;
        int64_t c = nc % C;
        for (int64_t i = 0; i < L; i++)
            want[nc * L + i] = (float)(fx_bn_scale[c] * (xd[nc * L + i] - mu) /
                                           sqrt(var + (double)0.1f) + fx_bn_bias[c]);
    }
    assert_close(y[0].data, want, 42, 1e-5f, 1e-5f);
    free(y[0].data);
    free(xd);

    /* rank 2 and a wrong scale length */
    int64_t d2[2] = {2, 3}, d4[1] = {4};
    gb_tensor x2 = tens(GB_DTYPE_F32, 2, d2, fx_in_x), s4 = tens(GB_DTYPE_F32, 1, d4, fx_in_x);
    gb_tensor *in2[3] = {&x2, &s, &b}, *bad[3] = {&x, &s4, &b};
    tn_init(&t, "InstanceNormalization", 6, 3, 1);
    assert_int_equal(run_node(ctx, &t, in2, y, 1), GB_ERR_SHAPE);
    tn_init(&t, "InstanceNormalization", 6, 3, 1);
    assert_int_equal(run_node(ctx, &t, bad, y, 1), GB_ERR_SHAPE);
}

/* ---- LayerNormalization ------------------------------------------------------- */

static void test_layernorm_torch(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 3, 4, 5}, dw[2] = {4, 5};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, fx_ln_x), w = tens(GB_DTYPE_F32, 2, dw, fx_ln_w),
              b = tens(GB_DTYPE_F32, 2, dw, fx_ln_b);
    gb_tensor *in[3] = {&x, &w, &b};
    gb_tensor y[1];
    tnode t;
    tn_init(&t, "LayerNormalization", 17, 3, 1);
    tn_int(&t, "axis", -2);
    assert_int_equal(run_node(ctx, &t, in, y, 2), GB_OK);
    assert_shape(&y[0], 4, dx);
    assert_close(y[0].data, fx_ln_y, 120, 1e-4f, 1e-5f);
    free(y[0].data);
}

/* Naive LayerNorm of x (dims) at axis with Scale/B given by shapes that
 * broadcast to dims[axis:]; checks Y, Mean and InvStdDev. */
static void check_layernorm(gb_ctx *ctx, int ndim, const int64_t *dims, int64_t axis_attr,
                            int wnd, const int64_t *wdims, int bnd, const int64_t *bdims,
                            float eps, uint32_t *seed) {
    int axis = (int)(axis_attr < 0 ? axis_attr + ndim : axis_attr);
    int64_t numel = gb__numel(ndim, dims), inner = gb__numel(ndim - axis, dims + axis);
    int64_t outer = numel / inner;
    float *xd = rand_buf(numel, seed, 2.0f, 0.3f);
    float *wd = rand_buf(gb__numel(wnd, wdims), seed, 1.0f, 0.0f);
    float *bd = bnd >= 0 ? rand_buf(gb__numel(bnd, bdims), seed, 1.0f, 0.0f) : NULL;
    gb_tensor x = tens(GB_DTYPE_F32, ndim, dims, xd), w = tens(GB_DTYPE_F32, wnd, wdims, wd);
    gb_tensor b = bd ? tens(GB_DTYPE_F32, bnd, bdims, bd) : w;
    gb_tensor *in[3] = {&x, &w, &b};
    tnode t;
    tn_init(&t, "LayerNormalization", 17, bd ? 3 : 2, 3);
    tn_int(&t, "axis", axis_attr);
    tn_float(&t, "epsilon", eps);
    gb_tensor y[3];
    gb_status st = run_node(ctx, &t, in, y, 2);
    if (st) fail_msg("%s", gb_ctx_errmsg(ctx));
    assert_shape(&y[0], ndim, dims);
    int64_t sd[GB_MAX_DIMS];
    for (int i = 0; i < ndim; i++) sd[i] = i < axis ? dims[i] : 1;
    assert_shape(&y[1], ndim, sd);
    assert_shape(&y[2], ndim, sd);

    /* expand Scale / B to inner by right-aligned broadcasting */
    int nd = ndim - axis;
    float *we = malloc((size_t)inner * sizeof(float)), *be = malloc((size_t)inner * sizeof(float));
    for (int64_t j = 0; j < inner; j++) {
        int64_t idx[GB_MAX_DIMS], rem = j;
        for (int i = nd - 1; i >= 0; i--) {
            idx[i] = rem % dims[axis + i];
            rem /= dims[axis + i];
        }
        int64_t ow = 0, ob = 0;
        for (int i = 0; i < wnd; i++) {
            int64_t di = nd - wnd + i >= 0 ? idx[nd - wnd + i] : 0;
            ow = ow * wdims[i] + (wdims[i] == 1 ? 0 : di);
        }
        for (int i = 0; bd && i < bnd; i++) {
            int64_t di = nd - bnd + i >= 0 ? idx[nd - bnd + i] : 0;
            ob = ob * bdims[i] + (bdims[i] == 1 ? 0 : di);
        }
        we[j] = wd[ow];
        be[j] = bd ? bd[ob] : 0.0f;
    }
    float *want = malloc((size_t)numel * sizeof(float));
    float *wm = malloc((size_t)outer * sizeof(float)), *wi = malloc((size_t)outer * sizeof(float));
    for (int64_t r = 0; r < outer; r++) {
        double mu = 0, var = 0;
        for (int64_t j = 0; j < inner; j++) mu += xd[r * inner + j];
        mu /= (double)inner;
        for (int64_t j = 0; j < inner; j++)
            var += (xd[r * inner + j] - mu) * (xd[r * inner + j] - mu);
        var /= (double)inner;
        double isd = 1.0 / sqrt(var + (double)eps);
        for (int64_t j = 0; j < inner; j++)
            want[r * inner + j] = (float)((xd[r * inner + j] - mu) * isd * we[j] + be[j]);
        wm[r] = (float)mu;
        wi[r] = (float)isd;
    }
    assert_close(y[0].data, want, numel, 1e-5f, 1e-5f);
    assert_close(y[1].data, wm, outer, 1e-6f, 1e-6f);
    assert_close(y[2].data, wi, outer, 1e-5f, 1e-6f);
    for (int k = 0; k < 3; k++) free(y[k].data);
    free(want); free(wm); free(wi); free(we); free(be);
    free(xd); free(wd); free(bd);
}

static void test_layernorm_naive(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 21;
    int64_t dx[4] = {2, 3, 4, 5};
    int64_t w345[3] = {3, 4, 5}, w5[1] = {5}, w15[2] = {1, 5}, w41[2] = {4, 1}, w2345[4] = {2, 3, 4, 5};
    int64_t w1145[4] = {1, 1, 4, 5};
    check_layernorm(ctx, 4, dx, 1, 3, w345, 3, w345, 1e-5f, &seed);       /* full Scale, B */
    check_layernorm(ctx, 4, dx, -1, 1, w5, -1, NULL, 1e-5f, &seed);       /* default axis, no B */
    check_layernorm(ctx, 4, dx, 2, 2, w15, 2, w41, 1e-2f, &seed);         /* broadcast Scale, B */
    check_layernorm(ctx, 4, dx, 0, 4, w2345, 1, w5, 1e-5f, &seed);        /* whole tensor */
    check_layernorm(ctx, 4, dx, -2, 4, w1145, 1, w5, 1e-5f, &seed);       /* leading unit axes */
    int64_t big[3] = {3, 40, 300}, w300[1] = {300};                       /* parallel path */
    check_layernorm(ctx, 3, big, -1, 1, w300, 1, w300, 1e-5f, &seed);
}

static void test_layernorm_errors(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 3, 4, 5}, d3[1] = {3}, d45[2] = {4, 5}, d2[1] = {2};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, fx_ln_x), w3 = tens(GB_DTYPE_F32, 1, d3, fx_ln_w),
              w45 = tens(GB_DTYPE_F32, 2, d45, fx_ln_w), w2 = tens(GB_DTYPE_F32, 1, d2, fx_ln_w);
    gb_tensor y[3];
    tnode t;
    gb_tensor *in_ok[2] = {&x, &w45};
    tn_init(&t, "LayerNormalization", 17, 2, 1);
    tn_int(&t, "axis", 4);
    assert_int_equal(run_node(ctx, &t, in_ok, y, 1), GB_ERR_SHAPE);
    tn_init(&t, "LayerNormalization", 17, 2, 1);
    tn_int(&t, "axis", -5);
    assert_int_equal(run_node(ctx, &t, in_ok, y, 1), GB_ERR_SHAPE);
    /* Scale (3) does not broadcast to (5) */
    gb_tensor *in_bad[2] = {&x, &w3};
    tn_init(&t, "LayerNormalization", 17, 2, 1);
    assert_int_equal(run_node(ctx, &t, in_bad, y, 1), GB_ERR_SHAPE);
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "Scale"));
    /* B (2) does not broadcast to (4, 5) */
    gb_tensor *in_badb[3] = {&x, &w45, &w2};
    tn_init(&t, "LayerNormalization", 17, 3, 1);
    tn_int(&t, "axis", 2);
    assert_int_equal(run_node(ctx, &t, in_badb, y, 1), GB_ERR_SHAPE);
    /* (4, 5) Scale with axis 1: needs (3, 4, 5) -> broadcasts */
    tn_init(&t, "LayerNormalization", 17, 2, 1);
    tn_int(&t, "axis", 1);
    assert_int_equal(run_node(ctx, &t, in_ok, y, 1), GB_OK);
    free(y[0].data);
    /* only Y and InvStdDev requested */
    tn_init(&t, "LayerNormalization", 17, 2, 3);
    tn_int(&t, "axis", 2);
    t.out_ids[1] = -1;
    assert_int_equal(run_node(ctx, &t, in_ok, y, 1), GB_OK);
    assert_int_equal(y[2].numel, 6);
    free(y[0].data);
    free(y[2].data);
    /* one input */
    tn_init(&t, "LayerNormalization", 17, 1, 1);
    assert_int_equal(run_node(ctx, &t, in_ok, y, 1), GB_ERR_FORMAT);
}

/* ---- LRN ------------------------------------------------------------------------ */

static void naive_lrn(const float *x, int64_t N, int64_t C, int64_t S, int64_t size, double alpha,
                      double beta, double bias, float *y) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < S; i++) {
                int64_t lo = c - (int64_t)floor((size - 1) / 2.0);
                int64_t hi = c + (int64_t)ceil((size - 1) / 2.0);
                double sq = 0;
                for (int64_t j = lo; j <= hi; j++)
                    if (j >= 0 && j < C) sq += (double)x[(n * C + j) * S + i] * x[(n * C + j) * S + i];
                y[(n * C + c) * S + i] =
                    (float)(x[(n * C + c) * S + i] / pow(bias + alpha / (double)size * sq, beta));
            }
}

static void test_lrn(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 7, 3, 3};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, fx_lrn_x);
    gb_tensor *in[1] = {&x};
    gb_tensor y[1];
    tnode t;
    /* PyTorch, odd sizes */
    tn_init(&t, "LRN", 13, 1, 1);
    tn_float(&t, "alpha", 2e-4f);
    tn_float(&t, "beta", 0.5f);
    tn_float(&t, "bias", 2.0f);
    tn_int(&t, "size", 3);
    assert_int_equal(run_node(ctx, &t, in, y, 2), GB_OK);
    assert_close(y[0].data, fx_lrn3_y, 126, 1e-5f, 1e-6f);
    free(y[0].data);
    tn_init(&t, "LRN", 13, 1, 1);
    tn_float(&t, "alpha", 1e-2f);
    tn_int(&t, "size", 5);  /* default beta 0.75, bias 1 */
    assert_int_equal(run_node(ctx, &t, in, y, 2), GB_OK);
    assert_close(y[0].data, fx_lrn5_y, 126, 1e-5f, 1e-6f);
    free(y[0].data);
    /* the ONNX formula for even and degenerate sizes (window past C too) */
    for (int64_t size = 1; size <= 9; size++) {
        tn_init(&t, "LRN", 1, 1, 1);
        tn_float(&t, "alpha", 0.05f);
        tn_float(&t, "beta", 0.8f);
        tn_float(&t, "bias", 1.5f);
        tn_int(&t, "size", size);
        assert_int_equal(run_node(ctx, &t, in, y, 1), GB_OK);
        float want[126];
        naive_lrn(fx_lrn_x, 2, 7, 9, size, 0.05f, 0.8f, 1.5f, want);
        assert_close(y[0].data, want, 126, 1e-5f, 1e-6f);
        free(y[0].data);
    }
    /* size missing */
    tn_init(&t, "LRN", 13, 1, 1);
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_ERR_FORMAT);
    /* int64 input */
    static const int64_t xi[126] = {0};
    gb_tensor xl = tens(GB_DTYPE_I64, 4, dx, xi);
    gb_tensor *inl[1] = {&xl};
    tn_init(&t, "LRN", 13, 1, 1);
    tn_int(&t, "size", 3);
    assert_int_equal(run_node(ctx, &t, inl, y, 1), GB_ERR_UNSUPPORTED);
}

/* Big inputs take the OpenMP path; results must not depend on the thread count. */
static void test_parallel_deterministic(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 77;
    int64_t N = 2, C = 16, H = 33, W = 33, dx[4] = {2, 16, 33, 33}, dc[1] = {16};
    int64_t numel = N * C * H * W;
    float *xd = rand_buf(numel, &seed, 2.0f, 0.0f);
    float *vd = rand_buf(C, &seed, 0.4f, 0.5f);
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, xd), v = tens(GB_DTYPE_F32, 1, dc, vd);
    gb_tensor *in[5] = {&x, &v, &v, &v, &v};
    static const char *const ops[3] = {"BatchNormalization", "InstanceNormalization", "LRN"};
    for (int o = 0; o < 3; o++) {
        gb_tensor y1[1], y2[1];
        for (int th = 1; th <= 2; th++) {
            tnode t;
            tn_init(&t, ops[o], 15, o == 0 ? 5 : o == 1 ? 3 : 1, 1);
            if (o == 2) tn_int(&t, "size", 5);
            assert_int_equal(run_node(ctx, &t, in, th == 1 ? y1 : y2, th), GB_OK);
        }
        assert_memory_equal(y1[0].data, y2[0].data, (size_t)numel * sizeof(float));
        if (o == 2) {
            float *want = malloc((size_t)numel * sizeof(float));
            naive_lrn(xd, N, C, H * W, 5, 1e-4, 0.75, 1.0, want);
            assert_close(y1[0].data, want, numel, 1e-5f, 1e-6f);
            free(want);
        }
        free(y1[0].data);
        free(y2[0].data);
    }
    free(xd);
    free(vd);
}

/* ---- backward ------------------------------------------------------------------ */

/* Runs init/infer/forward, then backward with upstream gradients dy[k] (NULL:
 * no gradient into output k) accumulating into din[i] (NULL: not asked). */
static gb_status run_node_bwd(gb_ctx *ctx, tnode *t, gb_tensor **in, const float *const *dy,
                              gb_tensor **din, int threads) {
    const gb__op *op = gb__op_lookup(t->n.op_type);
    assert_non_null(op);
    assert_non_null(op->backward);
    t->n.op = op;
    gb_tensor out[8], dout[8];
    gb_tensor *outp[8] = {0};
    const gb_tensor *doutp[8] = {0};
    void *ws = NULL;
    size_t ws_bytes = 0;
    double flops = 0;
    gb_status st = op->init(ctx, &t->n);
    if (st) goto done;
    for (int k = 0; k < t->n.n_out; k++) {
        memset(&out[k], 0, sizeof out[k]);
        outp[k] = t->out_ids[k] >= 0 ? &out[k] : NULL;
    }
    st = op->infer(ctx, &t->n, in, outp, &ws_bytes, &flops);
    if (st) goto done;
    for (int k = 0; k < t->n.n_out; k++)
        if (outp[k]) outp[k]->data = malloc((size_t)outp[k]->numel * sizeof(float) + 1);
    if (ws_bytes) ws = malloc(ws_bytes);
    gb__exec ex = {.n_threads = threads, .ws = ws, .ws_size = ws_bytes};
    st = op->forward(&t->n, (const gb_tensor *const *)in, outp, &ex);
    if (st) goto done;
    for (int k = 0; k < t->n.n_out; k++)
        if (outp[k] && dy[k]) {
            dout[k] = *outp[k];
            dout[k].data = (void *)dy[k];
            doutp[k] = &dout[k];
        }
    /* forward's use of the workspace must not matter to backward */
    if (ws) memset(ws, 0xA5, ws_bytes);
    st = op->backward(&t->n, (const gb_tensor *const *)in, (const gb_tensor *const *)outp, doutp,
                      din, &ex);
done:
    for (int k = 0; k < t->n.n_out; k++)
        if (outp[k]) free(outp[k]->data);
    free(ws);
    free(t->n.params);
    t->n.params = NULL;
    return st;
}

/* A zeroed gradient buffer shaped like t (free g->data). */
static gb_tensor grad_like(const gb_tensor *t, float fill) {
    float *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    assert_non_null(d);
    for (int64_t i = 0; i < t->numel; i++) d[i] = fill;
    return tens(GB_DTYPE_F32, t->ndim, t->dims, d);
}

/* got - fill == want, elementwise (fill: the value the buffer started with). */
static void assert_grad(const char *what, const gb_tensor *g, float fill, const float *want,
                        float rtol, float atol) {
    for (int64_t i = 0; i < g->numel; i++) {
        float v = GB_F32(g)[i] - fill;
        if (!(fabsf(v - want[i]) <= atol + rtol * fabsf(want[i])))
            fail_msg("%s[%lld]: got %.8g want %.8g", what, (long long)i, v, want[i]);
    }
}

static void free_grads(gb_tensor *g, int n) {
    for (int i = 0; i < n; i++) free(g[i].data);
}

/* PyTorch autograd of the formula: dX, dscale, dB, dmean, dvar. Also with
 * only dX asked (the others NULL, as when parameter gradients are off), and
 * accumulation into non-zero buffers. */
static void test_backward_batchnorm(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 3, 4, 5}, dc[1] = {3};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, gx_bn_x), s = tens(GB_DTYPE_F32, 1, dc, gx_bn_scale),
              b = tens(GB_DTYPE_F32, 1, dc, gx_bn_bias), m = tens(GB_DTYPE_F32, 1, dc, gx_bn_mean),
              v = tens(GB_DTYPE_F32, 1, dc, gx_bn_var);
    gb_tensor *in[5] = {&x, &s, &b, &m, &v};
    const float *want[5] = {gx_bn_dx, gx_bn_dscale, gx_bn_dbias, gx_bn_dmean, gx_bn_dvar};
    static const char *const names[5] = {"dX", "dscale", "dB", "dmean", "dvar"};
    const float *dy[1] = {gx_bn_dy};
    for (int mode = 0; mode < 2; mode++) {
        float fill = mode ? 0.25f : 0.0f;
        gb_tensor g[5];
        gb_tensor *din[5];
        for (int i = 0; i < 5; i++) {
            g[i] = grad_like(in[i], fill);
            din[i] = mode == 1 && i > 0 ? NULL : &g[i];
        }
        tnode t;
        tn_init(&t, "BatchNormalization", 15, 5, 1);
        tn_float(&t, "epsilon", 1e-3f);
        assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1 + mode), GB_OK);
        for (int i = 0; i < 5; i++) {
            if (din[i]) assert_grad(names[i], &g[i], fill, want[i], 1e-5f, 1e-5f);
            else
                for (int64_t j = 0; j < g[i].numel; j++) assert_true(GB_F32(&g[i])[j] == fill);
        }
        free_grads(g, 5);
    }
}

static void test_backward_instancenorm(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 3, 5, 4}, dc[1] = {3};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, gx_in_x), s = tens(GB_DTYPE_F32, 1, dc, gx_in_scale),
              b = tens(GB_DTYPE_F32, 1, dc, gx_in_bias);
    gb_tensor *in[3] = {&x, &s, &b};
    const float *want[3] = {gx_in_dx, gx_in_dscale, gx_in_dbias};
    static const char *const names[3] = {"dX", "dscale", "dB"};
    const float *dy[1] = {gx_in_dy};
    for (int mode = 0; mode < 3; mode++) {
        /* 0: everything; 1: dX only; 2: parameters only */
        gb_tensor g[3];
        gb_tensor *din[3];
        for (int i = 0; i < 3; i++) {
            g[i] = grad_like(in[i], 0.0f);
            din[i] = (mode == 1 && i > 0) || (mode == 2 && i == 0) ? NULL : &g[i];
        }
        tnode t;
        tn_init(&t, "InstanceNormalization", 6, 3, 1);
        assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1 + mode % 2), GB_OK);
        for (int i = 0; i < 3; i++)
            if (din[i]) assert_grad(names[i], &g[i], 0.0f, want[i], 1e-4f, 1e-5f);
        free_grads(g, 3);
    }
}

/* axis -2 on (2, 3, 4, 5) with Scale/B of full (4, 5) shape ("ln") and
 * broadcast shapes Scale (5), B (4, 1) ("lnb"); gradients flowing into Y
 * only, into all three outputs, and with Mean/InvStdDev omitted. */
static void check_ln_backward(gb_ctx *ctx, const char *name, const int64_t *sdims, int snd,
                              const int64_t *bdims, int bnd, float eps, const float *const *data,
                              const float *const *want) {
    /* data: x, scale, bias, dy, dmean, disd; want: dx, dscale, dbias, dx_yonly */
    int64_t dx[4] = {2, 3, 4, 5};
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, data[0]), s = tens(GB_DTYPE_F32, snd, sdims, data[1]),
              b = tens(GB_DTYPE_F32, bnd, bdims, data[2]);
    gb_tensor *in[3] = {&x, &s, &b};
    for (int mode = 0; mode < 3; mode++) {
        /* 0: dY, dMean, dInvStdDev; 1: dY only (outputs present); 2: outputs omitted */
        gb_tensor g[3];
        gb_tensor *din[3];
        for (int i = 0; i < 3; i++) {
            g[i] = grad_like(in[i], 0.0f);
            din[i] = &g[i];
        }
        const float *dy[3] = {data[3], mode == 0 ? data[4] : NULL, mode == 0 ? data[5] : NULL};
        tnode t;
        tn_init(&t, "LayerNormalization", 17, 3, 3);
        tn_int(&t, "axis", -2);
        tn_float(&t, "epsilon", eps);
        if (mode == 2) t.out_ids[1] = t.out_ids[2] = -1;
        gb_status st = run_node_bwd(ctx, &t, in, dy, din, 1 + mode % 2);
        if (st) fail_msg("%s mode %d: %s", name, mode, gb_ctx_errmsg(ctx));
        assert_grad(name, &g[0], 0.0f, mode == 0 ? want[0] : want[3], 1e-4f, 1e-5f);
        assert_grad(name, &g[1], 0.0f, want[1], 1e-4f, 1e-5f);
        assert_grad(name, &g[2], 0.0f, want[2], 1e-4f, 1e-5f);
        free_grads(g, 3);
    }
    /* without B: only two inputs */
    gb_tensor g[2] = {grad_like(&x, 0.0f), grad_like(&s, 0.0f)};
    gb_tensor *din[2] = {&g[0], &g[1]};
    const float *dy[1] = {data[3]};
    tnode t;
    tn_init(&t, "LayerNormalization", 17, 2, 1);
    tn_int(&t, "axis", -2);
    tn_float(&t, "epsilon", eps);
    assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 2), GB_OK);
    assert_grad(name, &g[0], 0.0f, want[3], 1e-4f, 1e-5f);
    assert_grad(name, &g[1], 0.0f, want[1], 1e-4f, 1e-5f);
    free_grads(g, 2);
}

static void test_backward_layernorm(void **state) {
    gb_ctx *ctx = *state;
    int64_t full[2] = {4, 5}, s5[1] = {5}, b41[2] = {4, 1};
    const float *d1[6] = {gx_ln_x, gx_ln_scale, gx_ln_bias, gx_ln_dy, gx_ln_dmean, gx_ln_disd};
    const float *w1[4] = {gx_ln_dx, gx_ln_dscale, gx_ln_dbias, gx_ln_dx_yonly};
    check_ln_backward(ctx, "ln", full, 2, full, 2, 1e-5f, d1, w1);
    const float *d2[6] = {gx_lnb_x, gx_lnb_scale, gx_lnb_bias, gx_lnb_dy, gx_lnb_dmean, gx_lnb_disd};
    const float *w2[4] = {gx_lnb_dx, gx_lnb_dscale, gx_lnb_dbias, gx_lnb_dx_yonly};
    check_ln_backward(ctx, "lnb", s5, 1, b41, 2, 1e-3f, d2, w2);
}

static void test_backward_lrn(void **state) {
    gb_ctx *ctx = *state;
    int64_t dx[4] = {2, 7, 3, 3};
    const struct {
        int64_t size;
        float alpha, beta, bias;
        const float *x, *dy, *dx;
    } cases[3] = {{3, 2e-4f, 0.5f, 2.0f, gx_lrn3_x, gx_lrn3_dy, gx_lrn3_dx},
                  {4, 0.5f, 0.75f, 1.0f, gx_lrn4_x, gx_lrn4_dy, gx_lrn4_dx},
                  {5, 1e-1f, 0.75f, 1.0f, gx_lrn5_x, gx_lrn5_dy, gx_lrn5_dx}};
    for (int c = 0; c < 3; c++) {
        gb_tensor x = tens(GB_DTYPE_F32, 4, dx, cases[c].x);
        gb_tensor g = grad_like(&x, 1.0f);
        gb_tensor *in[1] = {&x}, *din[1] = {&g};
        const float *dy[1] = {cases[c].dy};
        tnode t;
        tn_init(&t, "LRN", 13, 1, 1);
        tn_int(&t, "size", cases[c].size);
        tn_float(&t, "alpha", cases[c].alpha);
        tn_float(&t, "beta", cases[c].beta);
        tn_float(&t, "bias", cases[c].bias);
        assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1 + c % 2), GB_OK);
        assert_grad("LRN dX", &g, 1.0f, cases[c].dx, 1e-4f, 1e-5f);
        free(g.data);
    }
}

/* Big inputs take the OpenMP path: every gradient is bit-identical with 1
 * and 2 threads (each element is reduced by one thread in a fixed order). */
static void test_backward_parallel(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 78;
    int64_t dx[4] = {2, 16, 33, 33}, dc[1] = {16}, dsc[1] = {33}, numel = 2 * 16 * 33 * 33;
    float *xd = rand_buf(numel, &seed, 2.0f, 0.0f), *dyd = rand_buf(numel, &seed, 1.0f, 0.0f);
    float *vd = rand_buf(33, &seed, 0.4f, 0.5f), *dmd = rand_buf(64, &seed, 1.0f, 0.0f);
    gb_tensor x = tens(GB_DTYPE_F32, 4, dx, xd), v = tens(GB_DTYPE_F32, 1, dc, vd),
              vs = tens(GB_DTYPE_F32, 1, dsc, vd);
    static const char *const ops[4] = {"BatchNormalization", "InstanceNormalization",
                                       "LayerNormalization", "LRN"};
    for (int o = 0; o < 4; o++) {
        int n_in = o == 0 ? 5 : o == 1 ? 3 : o == 2 ? 3 : 1;
        gb_tensor *in[5] = {&x, o == 2 ? &vs : &v, o == 2 ? &vs : &v, &v, &v};
        gb_tensor g[2][5];
        for (int th = 0; th < 2; th++) {
            gb_tensor *din[5];
            for (int i = 0; i < n_in; i++) {
                g[th][i] = grad_like(in[i], 0.0f);
                din[i] = &g[th][i];
            }
            const float *dy[3] = {dyd, dmd, dmd + 32};  /* dMean, dInvStdDev: (2, 16, 1, 1) */
            tnode t;
            tn_init(&t, ops[o], 17, n_in, o == 2 ? 3 : 1);
            if (o == 2) tn_int(&t, "axis", -2);  /* inner 33 x 33, Scale/B (33) broadcast */
            if (o == 3) tn_int(&t, "size", 5);
            gb_status st = run_node_bwd(ctx, &t, in, dy, din, th + 1);
            if (st) fail_msg("%s: %s", ops[o], gb_ctx_errmsg(ctx));
        }
        for (int i = 0; i < n_in; i++)
            assert_memory_equal(g[0][i].data, g[1][i].data, (size_t)g[0][i].numel * sizeof(float));
        for (int th = 0; th < 2; th++) free_grads(g[th], n_in);
    }
    free(xd);
    free(dyd);
    free(vd);
    free(dmd);
}

static int setup(void **state) {
    gb_ctx *ctx;
    if (gb_ctx_create(&ctx) != GB_OK) return -1;
    *state = ctx;
    return 0;
}
static int teardown(void **state) {
    gb_ctx_free(*state);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm_torch),   cmocka_unit_test(test_batchnorm_naive),
        cmocka_unit_test(test_batchnorm_errors),  cmocka_unit_test(test_instancenorm),
        cmocka_unit_test(test_layernorm_torch),   cmocka_unit_test(test_layernorm_naive),
        cmocka_unit_test(test_layernorm_errors),  cmocka_unit_test(test_lrn),
        cmocka_unit_test(test_parallel_deterministic),
        cmocka_unit_test(test_backward_batchnorm), cmocka_unit_test(test_backward_instancenorm),
        cmocka_unit_test(test_backward_layernorm), cmocka_unit_test(test_backward_lrn),
        cmocka_unit_test(test_backward_parallel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
