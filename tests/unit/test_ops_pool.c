/*
 * test_ops_pool.c — MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool.
 *
 * Three independent references:
 *  - hand values from the ONNX operator examples (onnx/backend/test/case/node),
 *  - PyTorch outputs (tests/fixtures/pool_norm_torch.h, written by
 *    tests/scripts/gen_pool_norm_fixtures.py) for ceil_mode, count_include_pad,
 *    dilations, 1-D and 3-D,
 *  - a naive 2-D reference written the way ONNX's NumPy reference is: pad the
 *    input with NaN (or 0 for count_include_pad) plus a NaN overhang for
 *    ceil_mode, then reduce each window over its non-NaN taps.
 * Backward: PyTorch float64 autograd (tests/fixtures/pool_norm_grad_torch.h,
 * from tests/scripts/gen_pool_norm_grad_fixtures.py) including MaxPool ties,
 * a naive 2-D backward over random configurations, and hand values.
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
static void tn_ints(tnode *t, const char *name, int n, const int64_t *v) {
    gb__attr *a = tn_attr(t, name, GB_ATTR_INTS);
    a->n = n;
    a->ints = (int64_t *)v;
}
static void tn_int(tnode *t, const char *name, int64_t v) { tn_attr(t, name, GB_ATTR_INT)->i = v; }
static void tn_str(tnode *t, const char *name, const char *s) {
    tn_attr(t, name, GB_ATTR_STRING)->s = (char *)s;
}

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

/* ---- naive 2-D reference in the style of ONNX's NumPy reference ------------- */

typedef struct {
    int64_t k[2], s[2], d[2], pads[4];  /* pads: top, left, bottom, right */
    int ceil_mode, cip, is_max;
} ref_cfg;

static int64_t ref_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
                            int ceil_mode) {
    int64_t ext = (k - 1) * d + 1;
    double q = (double)(in + pb + pe - ext) / (double)s;
    int64_t out = (int64_t)(ceil_mode ? ceil(q) : floor(q)) + 1;
    if (ceil_mode && (out - 1) * s >= in + pb) out--;
    return out;
}

/* x (N, C, H, W) -> y (N, C, OH, OW); returns OH * OW. */
static void ref_pool2d(const ref_cfg *c, const float *x, int64_t N, int64_t C, int64_t H,
                       int64_t W, float *y, int64_t *OH, int64_t *OW) {
    int64_t oh = ref_out_size(H, c->k[0], c->s[0], c->d[0], c->pads[0], c->pads[2], c->ceil_mode);
    int64_t ow = ref_out_size(W, c->k[1], c->s[1], c->d[1], c->pads[1], c->pads[3], c->ceil_mode);
    *OH = oh;
    *OW = ow;
    /* padded plane: explicit pads, then a NaN overhang big enough for ceil */
    int64_t PH = H + c->pads[0] + c->pads[2] + c->k[0] * c->d[0] + c->s[0];
    int64_t PW = W + c->pads[1] + c->pads[3] + c->k[1] * c->d[1] + c->s[1];
    float *pad = malloc((size_t)(PH * PW) * sizeof(float));
    assert_non_null(pad);
    for (int64_t nc = 0; nc < N * C; nc++) {
        for (int64_t i = 0; i < PH; i++)
            for (int64_t j = 0; j < PW; j++) {
                int64_t hi = i - c->pads[0], wj = j - c->pads[1];
                bool inside = hi >= 0 && hi < H && wj >= 0 && wj < W;
                bool explicit_pad = i < H + c->pads[0] + c->pads[2] && j < W + c->pads[1] + c->pads[3];
                if (inside) pad[i * PW + j] = x[nc * H * W + hi * W + wj];
                else if (explicit_pad && c->cip && !c->is_max) pad[i * PW + j] = 0.0f;
                else pad[i * PW + j] = NAN;
            }
        for (int64_t a = 0; a < oh; a++)
            for (int64_t b = 0; b < ow; b++) {
                double acc = c->is_max ? -INFINITY : 0.0;
                int64_t cnt = 0;
                for (int64_t u = 0; u < c->k[0]; u++)
                    for (int64_t v = 0; v < c->k[1]; v++) {
                        float val = pad[(a * c->s[0] + u * c->d[0]) * PW + b * c->s[1] + v * c->d[1]];
                        if (isnan(val)) continue;
                        cnt++;
                        if (c->is_max) acc = val > acc ? val : acc;
                        else acc += val;
                    }
                y[nc * oh * ow + a * ow + b] =
                    c->is_max ? (float)acc : (cnt ? (float)(acc / (double)cnt) : 0.0f);
            }
    }
    free(pad);
}

/* Run MaxPool/AveragePool with cfg through glassbox. */
static gb_status run_pool2d(gb_ctx *ctx, const ref_cfg *c, gb_tensor *x, gb_tensor *y,
                            int threads) {
    tnode t;
    tn_init(&t, c->is_max ? "MaxPool" : "AveragePool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, c->k);
    tn_ints(&t, "strides", 2, c->s);
    tn_ints(&t, "pads", 4, c->pads);
    if (c->is_max) tn_ints(&t, "dilations", 2, c->d);
    tn_int(&t, "ceil_mode", c->ceil_mode);
    if (!c->is_max) tn_int(&t, "count_include_pad", c->cip);
    gb_tensor *in[1] = {x};
    return run_node(ctx, &t, in, y, threads);
}

/* ---- tests ------------------------------------------------------------------ */

static const float X5[25] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                             14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25};
static const float X4[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Hand values from the ONNX operator examples. */
static void test_onnx_examples(void **state) {
    gb_ctx *ctx = *state;
    int64_t d5[4] = {1, 1, 5, 5}, d4[4] = {1, 1, 4, 4};
    gb_tensor x5 = tens(GB_DTYPE_F32, 4, d5, X5), x4 = tens(GB_DTYPE_F32, 4, d4, X4);
    gb_tensor *in5[1] = {&x5}, *in4[1] = {&x4};
    gb_tensor y[1];
    tnode t;

    /* averagepool_2d_precomputed_pads_count_include_pad */
    static const int64_t k5[2] = {5, 5}, p2[4] = {2, 2, 2, 2};
    static const float want_cip[25] = {2.52f, 3.6f, 4.8f,  4.08f,  3.24f, 4.56f, 6.4f, 8.4f,  7.04f,
                                       5.52f, 7.2f, 10.f,  13.f,   10.8f, 8.4f,  6.96f, 9.6f, 12.4f,
                                       10.24f, 7.92f, 6.12f, 8.4f, 10.8f, 8.88f, 6.84f};
    tn_init(&t, "AveragePool", 11, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k5);
    tn_ints(&t, "pads", 4, p2);
    tn_int(&t, "count_include_pad", 1);
    assert_int_equal(run_node(ctx, &t, in5, y, 2), GB_OK);
    assert_shape(&y[0], 4, d5);
    assert_close(y[0].data, want_cip, 25, 1e-5f, 1e-5f);
    free(y[0].data);

    /* averagepool_2d_precomputed_pads (count_include_pad = 0) */
    static const float want_avg[25] = {7,  7.5f,  8,  8.5f,  9,  9.5f,  10, 10.5f, 11, 11.5f,
                                       12, 12.5f, 13, 13.5f, 14, 14.5f, 15, 15.5f, 16, 16.5f,
                                       17, 17.5f, 18, 18.5f, 19};
    tn_init(&t, "AveragePool", 11, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k5);
    tn_ints(&t, "pads", 4, p2);
    assert_int_equal(run_node(ctx, &t, in5, y, 2), GB_OK);
    assert_close(y[0].data, want_avg, 25, 1e-6f, 1e-6f);
    free(y[0].data);

    /* maxpool_2d_precomputed_pads */
    static const float want_max[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                                       25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k5);
    tn_ints(&t, "pads", 4, p2);
    assert_int_equal(run_node(ctx, &t, in5, y, 2), GB_OK);
    assert_close(y[0].data, want_max, 25, 0, 0);
    free(y[0].data);

    /* *_precomputed_same_upper: 5x5, k 3, s 2 -> 3x3 */
    static const int64_t k3[2] = {3, 3}, s2[2] = {2, 2}, d3[4] = {1, 1, 3, 3};
    static const float want_su_max[9] = {7, 9, 10, 17, 19, 20, 22, 24, 25};
    static const float want_su_avg[9] = {4, 5.5f, 7, 11.5f, 13, 14.5f, 19, 20.5f, 22};
    for (int is_max = 0; is_max < 2; is_max++) {
        tn_init(&t, is_max ? "MaxPool" : "AveragePool", 11, 1, 1);
        tn_ints(&t, "kernel_shape", 2, k3);
        tn_ints(&t, "strides", 2, s2);
        tn_str(&t, "auto_pad", "SAME_UPPER");
        assert_int_equal(run_node(ctx, &t, in5, y, 2), GB_OK);
        assert_shape(&y[0], 4, d3);
        assert_close(y[0].data, is_max ? want_su_max : want_su_avg, 9, 1e-6f, 1e-6f);
        free(y[0].data);
    }

    /* *_precomputed_strides: 5x5, k 2, s 2 -> 2x2 */
    static const int64_t k2[2] = {2, 2}, d2[4] = {1, 1, 2, 2};
    static const float want_st_max[4] = {7, 9, 17, 19}, want_st_avg[4] = {4, 6, 14, 16};
    for (int is_max = 0; is_max < 2; is_max++) {
        tn_init(&t, is_max ? "MaxPool" : "AveragePool", 11, 1, 1);
        tn_ints(&t, "kernel_shape", 2, k2);
        tn_ints(&t, "strides", 2, s2);
        assert_int_equal(run_node(ctx, &t, in5, y, 1), GB_OK);
        assert_shape(&y[0], 4, d2);
        assert_close(y[0].data, is_max ? want_st_max : want_st_avg, 4, 1e-6f, 1e-6f);
        free(y[0].data);
    }

    /* *_2d_ceil: 4x4, k 3, s 2, ceil_mode -> 2x2 */
    static const float want_c_max[4] = {11, 12, 15, 16}, want_c_avg[4] = {6, 7.5f, 12, 13.5f};
    for (int is_max = 0; is_max < 2; is_max++) {
        tn_init(&t, is_max ? "MaxPool" : "AveragePool", 11, 1, 1);
        tn_ints(&t, "kernel_shape", 2, k3);
        tn_ints(&t, "strides", 2, s2);
        tn_int(&t, "ceil_mode", 1);
        assert_int_equal(run_node(ctx, &t, in4, y, 2), GB_OK);
        assert_shape(&y[0], 4, d2);
        assert_close(y[0].data, is_max ? want_c_max : want_c_avg, 4, 1e-6f, 1e-6f);
        free(y[0].data);
    }

    /* maxpool_2d_dilations: 4x4, k 2, d 2 -> 2x2 */
    static const int64_t one2[2] = {1, 1};
    static const float want_dil[4] = {11, 12, 15, 16};
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k2);
    tn_ints(&t, "strides", 2, one2);
    tn_ints(&t, "dilations", 2, s2);
    assert_int_equal(run_node(ctx, &t, in4, y, 2), GB_OK);
    assert_shape(&y[0], 4, d2);
    assert_close(y[0].data, want_dil, 4, 0, 0);
    free(y[0].data);
}

/* PyTorch fixtures: ceil_mode, count_include_pad, dilations, 1-D and 3-D. */
static void test_torch_fixtures(void **state) {
    gb_ctx *ctx = *state;
    for (size_t i = 0; i < sizeof pool_fixtures / sizeof pool_fixtures[0]; i++) {
        const pool_fixture *f = &pool_fixtures[i];
        for (int threads = 1; threads <= 2; threads++) {
            tnode t;
            tn_init(&t, f->op, 12, 1, 1);
            tn_ints(&t, "kernel_shape", f->nk, f->kernel);
            tn_ints(&t, "strides", f->nk, f->strides);
            tn_ints(&t, "pads", 2 * f->nk, f->pads);
            if (strcmp(f->op, "MaxPool") == 0) tn_ints(&t, "dilations", f->nk, f->dilations);
            else tn_int(&t, "count_include_pad", f->count_include_pad);
            tn_int(&t, "ceil_mode", f->ceil_mode);
            gb_tensor x = tens(GB_DTYPE_F32, f->x_ndim, f->x_dims, f->x);
            gb_tensor *in[1] = {&x};
            gb_tensor y[1];
            gb_status st = run_node(ctx, &t, in, y, threads);
            if (st) fail_msg("%s: %s", f->name, gb_ctx_errmsg(ctx));
            assert_shape(&y[0], f->y_ndim, f->y_dims);
            for (int64_t j = 0; j < y[0].numel; j++) {
                float g = GB_F32(&y[0])[j], w = f->y[j];
                if (g != w && !(fabsf(g - w) <= 1e-5f + 1e-5f * fabsf(w)))
                    fail_msg("%s: element %lld got %.8g want %.8g", f->name, (long long)j, g, w);
            }
            free(y[0].data);
        }
    }
}

/* Random 2-D configurations against the NaN-padding reference. */
static void test_random_vs_reference(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 42;
    int ran = 0;
    for (int trial = 0; trial < 400; trial++) {
        ref_cfg c;
        memset(&c, 0, sizeof c);
        c.is_max = (int)(lcg(&seed) % 2);
        c.ceil_mode = (int)(lcg(&seed) % 2);
        c.cip = (int)(lcg(&seed) % 2);
        for (int a = 0; a < 2; a++) {
            c.k[a] = 1 + lcg(&seed) % 4;
            c.s[a] = 1 + lcg(&seed) % 3;
            c.d[a] = c.is_max ? 1 + lcg(&seed) % 2 : 1;
        }
        for (int a = 0; a < 4; a++) {
            int64_t ext = (c.k[a % 2] - 1) * c.d[a % 2] + 1;
            /* keep pads smaller than the window, as every framework requires */
            c.pads[a] = (int64_t)(lcg(&seed) % 3) % ext;
        }
        int64_t N = 1 + lcg(&seed) % 2, C = 1 + lcg(&seed) % 3;
        int64_t H = 1 + lcg(&seed) % 9, W = 1 + lcg(&seed) % 9;
        int64_t dims[4] = {N, C, H, W};
        int64_t ext_h = (c.k[0] - 1) * c.d[0] + 1, ext_w = (c.k[1] - 1) * c.d[1] + 1;
        bool fits = H + c.pads[0] + c.pads[2] >= ext_h && W + c.pads[1] + c.pads[3] >= ext_w;
        float *xd = malloc((size_t)(N * C * H * W) * sizeof(float));
        for (int64_t i = 0; i < N * C * H * W; i++) xd[i] = frand(&seed);
        gb_tensor x = tens(GB_DTYPE_F32, 4, dims, xd);
        gb_tensor y[1];
        gb_status st = run_pool2d(ctx, &c, &x, y, 1 + trial % 2);
        if (!fits) {
            assert_int_equal(st, GB_ERR_SHAPE);
            free(xd);
            continue;
        }
        if (st) fail_msg("trial %d: %s", trial, gb_ctx_errmsg(ctx));
        float *want = malloc((size_t)(N * C * 16 * 16) * sizeof(float));
        int64_t OH, OW;
        ref_pool2d(&c, xd, N, C, H, W, want, &OH, &OW);
        int64_t od[4] = {N, C, OH, OW};
        assert_shape(&y[0], 4, od);
        for (int64_t i = 0; i < y[0].numel; i++) {
            float g = GB_F32(&y[0])[i], w = want[i];
            if (g != w && !(fabsf(g - w) <= 1e-5f + 1e-5f * fabsf(w)))
                fail_msg("trial %d (%s k %lldx%lld s %lldx%lld d %lldx%lld pads %lld,%lld,%lld,%lld "
                         "ceil %d cip %d, in %lldx%lld): element %lld got %g want %g",
                         trial, c.is_max ? "max" : "avg", (long long)c.k[0], (long long)c.k[1],
                         (long long)c.s[0], (long long)c.s[1], (long long)c.d[0],
                         (long long)c.d[1], (long long)c.pads[0], (long long)c.pads[1],
                         (long long)c.pads[2], (long long)c.pads[3], c.ceil_mode, c.cip,
                         (long long)H, (long long)W, (long long)i, g, w);
        }
        ran++;
        free(want);
        free(y[0].data);
        free(xd);
    }
    assert_true(ran > 200);
}

/* A large input takes the parallel path; results must not depend on threads. */
static void test_parallel_large(void **state) {
    gb_ctx *ctx = *state;
    int64_t N = 2, C = 8, H = 64, W = 64;
    int64_t dims[4] = {N, C, H, W};
    uint32_t seed = 7;
    float *xd = malloc((size_t)(N * C * H * W) * sizeof(float));
    for (int64_t i = 0; i < N * C * H * W; i++) xd[i] = frand(&seed);
    gb_tensor x = tens(GB_DTYPE_F32, 4, dims, xd);
    for (int is_max = 0; is_max < 2; is_max++) {
        ref_cfg c = {.k = {3, 3}, .s = {2, 2}, .d = {1, 1}, .pads = {1, 1, 1, 1},
                     .ceil_mode = 1, .cip = 1, .is_max = is_max};
        gb_tensor y1[1], y2[1];
        assert_int_equal(run_pool2d(ctx, &c, &x, y1, 1), GB_OK);
        assert_int_equal(run_pool2d(ctx, &c, &x, y2, 2), GB_OK);
        assert_memory_equal(y1[0].data, y2[0].data, (size_t)y1[0].numel * sizeof(float));
        float *want = malloc((size_t)y1[0].numel * sizeof(float));
        int64_t OH, OW;
        ref_pool2d(&c, xd, N, C, H, W, want, &OH, &OW);
        assert_int_equal(OH * OW * N * C, y1[0].numel);
        assert_close(y1[0].data, want, y1[0].numel, 1e-5f, 1e-6f);
        free(want);
        free(y1[0].data);
        free(y2[0].data);
    }
    free(xd);
}

/* SAME_LOWER puts the odd padding first; VALID drops it; 1-D and 3-D SAME. */
static void test_auto_pad(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 99;
    int64_t dims[4] = {1, 2, 6, 7};
    float xd[84];
    for (int i = 0; i < 84; i++) xd[i] = frand(&seed);
    gb_tensor x = tens(GB_DTYPE_F32, 4, dims, xd);
    gb_tensor *in[1] = {&x};
    static const int64_t k[2] = {2, 3}, s[2] = {2, 2};
    for (int is_max = 0; is_max < 2; is_max++)
        for (int mode = 0; mode < 3; mode++) {
            static const char *const modes[3] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
            tnode t;
            tn_init(&t, is_max ? "MaxPool" : "AveragePool", 11, 1, 1);
            tn_ints(&t, "kernel_shape", 2, k);
            tn_ints(&t, "strides", 2, s);
            tn_str(&t, "auto_pad", modes[mode]);
            gb_tensor y[1];
            assert_int_equal(run_node(ctx, &t, in, y, 2), GB_OK);
            /* H: out 3, total pad (3-1)*2+2-6 = 0. W: out 4, total (4-1)*2+3-7 = 2. */
            ref_cfg c = {.k = {2, 3}, .s = {2, 2}, .d = {1, 1}, .is_max = is_max};
            if (mode == 0) { c.pads[1] = 1; c.pads[3] = 1; }
            if (mode == 1) { c.pads[1] = 1; c.pads[3] = 1; }
            float want[2 * 16];
            int64_t OH, OW;
            ref_pool2d(&c, xd, 1, 2, 6, 7, want, &OH, &OW);
            int64_t od[4] = {1, 2, OH, OW};
            assert_shape(&y[0], 4, od);
            assert_int_equal(OW, mode == 2 ? 3 : 4);
            assert_close(y[0].data, want, y[0].numel, 1e-6f, 1e-6f);
            free(y[0].data);
        }
    /* odd total padding: 1-D, in 5, k 2, s 1 -> out 5, total 1 */
    int64_t d1[3] = {1, 1, 5};
    static const float x1[5] = {1, 5, 2, 4, 3};
    static const float want_upper[5] = {5, 5, 4, 4, 3}, want_lower[5] = {1, 5, 5, 4, 4};
    static const int64_t k2[1] = {2};
    gb_tensor xx = tens(GB_DTYPE_F32, 3, d1, x1);
    gb_tensor *in1[1] = {&xx};
    for (int mode = 0; mode < 2; mode++) {
        tnode t;
        tn_init(&t, "MaxPool", 11, 1, 1);
        tn_ints(&t, "kernel_shape", 1, k2);
        tn_str(&t, "auto_pad", mode ? "SAME_LOWER" : "SAME_UPPER");
        gb_tensor y[1];
        assert_int_equal(run_node(ctx, &t, in1, y, 1), GB_OK);
        assert_shape(&y[0], 3, d1);
        assert_close(y[0].data, mode ? want_lower : want_upper, 5, 0, 0);
        free(y[0].data);
    }
    /* AveragePool SAME_LOWER 1-D: the padded tap is not counted */
    static const float want_avg_lower[5] = {1, 3, 3.5f, 3, 3.5f};
    tnode t;
    tn_init(&t, "AveragePool", 11, 1, 1);
    tn_ints(&t, "kernel_shape", 1, k2);
    tn_str(&t, "auto_pad", "SAME_LOWER");
    gb_tensor y[1];
    assert_int_equal(run_node(ctx, &t, in1, y, 1), GB_OK);
    assert_close(y[0].data, want_avg_lower, 5, 1e-6f, 0);
    free(y[0].data);
    /* ...and with count_include_pad it is */
    static const float want_avg_lower_cip[5] = {0.5f, 3, 3.5f, 3, 3.5f};
    tn_init(&t, "AveragePool", 11, 1, 1);
    tn_ints(&t, "kernel_shape", 1, k2);
    tn_str(&t, "auto_pad", "SAME_LOWER");
    tn_int(&t, "count_include_pad", 1);
    assert_int_equal(run_node(ctx, &t, in1, y, 1), GB_OK);
    assert_close(y[0].data, want_avg_lower_cip, 5, 1e-6f, 0);
    free(y[0].data);
}

/* NaN in a window propagates through MaxPool (as in PyTorch). */
static void test_max_nan(void **state) {
    gb_ctx *ctx = *state;
    int64_t d[3] = {1, 1, 4};
    const float xd[4] = {1, NAN, 3, 2};
    static const int64_t k[1] = {2};
    gb_tensor x = tens(GB_DTYPE_F32, 3, d, xd);
    gb_tensor *in[1] = {&x};
    tnode t;
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 1, k);
    gb_tensor y[1];
    assert_int_equal(run_node(ctx, &t, in, y, 1), GB_OK);
    assert_true(isnan(GB_F32(&y[0])[0]));
    assert_true(isnan(GB_F32(&y[0])[1]));
    assert_true(GB_F32(&y[0])[2] == 3.0f);
    free(y[0].data);
}

static void test_global(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 3;
    int64_t shapes[3][5] = {{2, 3, 7, 0, 0}, {2, 3, 5, 6, 0}, {1, 4, 3, 4, 5}};
    for (int si = 0; si < 3; si++) {
        int ndim = si + 3;
        int64_t *dims = shapes[si];
        int64_t numel = gb__numel(ndim, dims), planes = dims[0] * dims[1], S = numel / planes;
        float *xd = malloc((size_t)numel * sizeof(float));
        for (int64_t i = 0; i < numel; i++) xd[i] = frand(&seed) * 10.0f;
        gb_tensor x = tens(GB_DTYPE_F32, ndim, dims, xd);
        gb_tensor *in[1] = {&x};
        for (int is_max = 0; is_max < 2; is_max++) {
            tnode t;
            tn_init(&t, is_max ? "GlobalMaxPool" : "GlobalAveragePool", 13, 1, 1);
            gb_tensor y[1];
            assert_int_equal(run_node(ctx, &t, in, y, 2), GB_OK);
            int64_t od[5] = {dims[0], dims[1], 1, 1, 1};
            assert_shape(&y[0], ndim, od);
            for (int64_t p = 0; p < planes; p++) {
                double acc = is_max ? -INFINITY : 0.0;
                for (int64_t i = 0; i < S; i++) {
                    double v = xd[p * S + i];
                    acc = is_max ? (v > acc ? v : acc) : acc + v;
                }
                float want = (float)(is_max ? acc : acc / (double)S);
                assert_true(fabsf(GB_F32(&y[0])[p] - want) <= 1e-5f + 1e-5f * fabsf(want));
            }
            free(y[0].data);
        }
        free(xd);
    }
}

static void test_errors(void **state) {
    gb_ctx *ctx = *state;
    int64_t d4[4] = {1, 1, 5, 5}, d3[3] = {1, 1, 5};
    gb_tensor x4 = tens(GB_DTYPE_F32, 4, d4, X5), x3 = tens(GB_DTYPE_F32, 3, d3, X5);
    gb_tensor *in4[1] = {&x4}, *in3[1] = {&x3};
    static const int64_t k2[2] = {2, 2}, k9[2] = {9, 2}, k4d[4] = {1, 1, 1, 1};
    gb_tensor y[2];
    tnode t;

    /* Indices requested -> unsupported, naming the node */
    tn_init(&t, "MaxPool", 12, 1, 2);
    tn_ints(&t, "kernel_shape", 2, k2);
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_ERR_UNSUPPORTED);
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "node0"));
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "Indices"));
    /* an omitted second output (empty name -> id -1) is fine */
    tn_init(&t, "MaxPool", 12, 1, 2);
    t.out_ids[1] = -1;
    tn_ints(&t, "kernel_shape", 2, k2);
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_OK);
    free(y[0].data);
    /* AveragePool has a single output */
    tn_init(&t, "AveragePool", 12, 1, 2);
    tn_ints(&t, "kernel_shape", 2, k2);
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_ERR_FORMAT);
    /* missing kernel_shape */
    tn_init(&t, "MaxPool", 12, 1, 1);
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_ERR_FORMAT);
    /* 4-D kernel */
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 4, k4d);
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_ERR_UNSUPPORTED);
    /* unknown auto_pad */
    tn_init(&t, "AveragePool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k2);
    tn_str(&t, "auto_pad", "SAME_MIDDLE");
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_ERR_UNSUPPORTED);
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "SAME_MIDDLE"));
    /* wrong pads length */
    tn_init(&t, "AveragePool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k2);
    tn_ints(&t, "pads", 2, k2);
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_ERR_FORMAT);
    /* kernel rank does not match the input */
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k2);
    assert_int_equal(run_node(ctx, &t, in3, y, 1), GB_ERR_SHAPE);
    /* window larger than the input */
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k9);
    assert_int_equal(run_node(ctx, &t, in4, y, 1), GB_ERR_SHAPE);
    /* int64 input */
    static const int64_t xi[25] = {0};
    gb_tensor xl = tens(GB_DTYPE_I64, 4, d4, xi);
    gb_tensor *inl[1] = {&xl};
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 2, k2);
    assert_int_equal(run_node(ctx, &t, inl, y, 1), GB_ERR_UNSUPPORTED);
    tn_init(&t, "GlobalAveragePool", 12, 1, 1);
    assert_int_equal(run_node(ctx, &t, inl, y, 1), GB_ERR_UNSUPPORTED);
    /* global pool of a rank-2 tensor */
    int64_t d2[2] = {5, 5};
    gb_tensor x2 = tens(GB_DTYPE_F32, 2, d2, X5);
    gb_tensor *in2[1] = {&x2};
    tn_init(&t, "GlobalMaxPool", 12, 1, 1);
    assert_int_equal(run_node(ctx, &t, in2, y, 1), GB_ERR_SHAPE);
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

static void pool_attrs(tnode *t, const char *op, int nk, const int64_t *k, const int64_t *s,
                       const int64_t *pads, const int64_t *d, int ceil_mode, int cip) {
    tn_init(t, op, 12, 1, 1);
    tn_ints(t, "kernel_shape", nk, k);
    tn_ints(t, "strides", nk, s);
    tn_ints(t, "pads", 2 * nk, pads);
    if (strcmp(op, "MaxPool") == 0) tn_ints(t, "dilations", nk, d);
    else tn_int(t, "count_include_pad", cip);
    tn_int(t, "ceil_mode", ceil_mode);
}

/* PyTorch autograd (float64) for 1-D/2-D/3-D, ceil_mode, count_include_pad,
 * dilations and MaxPool ties (first maximum in scan order, as in PyTorch). */
static void test_backward_torch(void **state) {
    gb_ctx *ctx = *state;
    for (size_t i = 0; i < sizeof pool_grad_fixtures / sizeof pool_grad_fixtures[0]; i++) {
        const pool_grad_fixture *f = &pool_grad_fixtures[i];
        for (int threads = 1; threads <= 2; threads++) {
            tnode t;
            pool_attrs(&t, f->op, f->nk, f->kernel, f->strides, f->pads, f->dilations, f->ceil_mode,
                       f->count_include_pad);
            gb_tensor x = tens(GB_DTYPE_F32, f->x_ndim, f->x_dims, f->x);
            float *dxd = calloc((size_t)x.numel, sizeof(float));
            gb_tensor dx = tens(GB_DTYPE_F32, f->x_ndim, f->x_dims, dxd);
            gb_tensor *in[1] = {&x}, *din[1] = {&dx};
            const float *dy[1] = {f->dy};
            gb_status st = run_node_bwd(ctx, &t, in, dy, din, threads);
            if (st) fail_msg("%s: %s", f->name, gb_ctx_errmsg(ctx));
            for (int64_t j = 0; j < x.numel; j++)
                if (!(fabsf(dxd[j] - f->dx[j]) <= 1e-6f + 1e-5f * fabsf(f->dx[j])))
                    fail_msg("%s: dx[%lld] got %.8g want %.8g", f->name, (long long)j, dxd[j], f->dx[j]);
            free(dxd);
        }
    }
}

/* Naive 2-D backward in the NaN-padding style of ref_pool2d: MaxPool sends dy
 * to the first maximum (scan order) among the non-NaN taps, AveragePool
 * spreads dy / count over the in-range taps. */
static void ref_pool2d_backward(const ref_cfg *c, const float *x, const float *dy, int64_t N,
                                int64_t C, int64_t H, int64_t W, float *dx) {
    int64_t oh = ref_out_size(H, c->k[0], c->s[0], c->d[0], c->pads[0], c->pads[2], c->ceil_mode);
    int64_t ow = ref_out_size(W, c->k[1], c->s[1], c->d[1], c->pads[1], c->pads[3], c->ceil_mode);
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t a = 0; a < oh; a++)
            for (int64_t b = 0; b < ow; b++) {
                float g = dy[nc * oh * ow + a * ow + b];
                int64_t best = -1, cnt = 0;
                float bv = 0.0f;
                for (int pass = 0; pass < 2; pass++)
                    for (int64_t u = 0; u < c->k[0]; u++)
                        for (int64_t v = 0; v < c->k[1]; v++) {
                            int64_t i = a * c->s[0] + u * c->d[0] - c->pads[0];
                            int64_t j = b * c->s[1] + v * c->d[1] - c->pads[1];
                            bool inside = i >= 0 && i < H && j >= 0 && j < W;
                            bool in_pads = i < H + c->pads[2] && j < W + c->pads[3];
                            if (pass == 0) {  /* count and argmax */
                                if (inside) {
                                    float val = x[nc * H * W + i * W + j];
                                    if (best < 0 || val > bv) {
                                        best = i * W + j;
                                        bv = val;
                                    }
                                }
                                if (inside || (c->cip && in_pads)) cnt++;
                            } else if (!c->is_max && inside) {
                                dx[nc * H * W + i * W + j] += g / (float)cnt;
                            }
                        }
                if (c->is_max && best >= 0) dx[nc * H * W + best] += g;
            }
}

/* Random 2-D configurations (with ties: values on a coarse grid) against the
 * naive backward; dx starts non-zero to check that backward accumulates. */
static void test_backward_random(void **state) {
    gb_ctx *ctx = *state;
    uint32_t seed = 4242;
    int ran = 0;
    for (int trial = 0; trial < 300; trial++) {
        ref_cfg c;
        memset(&c, 0, sizeof c);
        c.is_max = (int)(lcg(&seed) % 2);
        c.ceil_mode = (int)(lcg(&seed) % 2);
        c.cip = (int)(lcg(&seed) % 2);
        for (int a = 0; a < 2; a++) {
            c.k[a] = 1 + lcg(&seed) % 4;
            c.s[a] = 1 + lcg(&seed) % 3;
            c.d[a] = c.is_max ? 1 + lcg(&seed) % 2 : 1;
        }
        for (int a = 0; a < 4; a++) c.pads[a] = (int64_t)(lcg(&seed) % 3) % ((c.k[a % 2] - 1) * c.d[a % 2] + 1);
        int64_t N = 1 + lcg(&seed) % 2, C = 1 + lcg(&seed) % 3;
        int64_t H = 1 + lcg(&seed) % 9, W = 1 + lcg(&seed) % 9;
        if (H + c.pads[0] + c.pads[2] < (c.k[0] - 1) * c.d[0] + 1 ||
            W + c.pads[1] + c.pads[3] < (c.k[1] - 1) * c.d[1] + 1)
            continue;
        int64_t n = N * C * H * W, dims[4] = {N, C, H, W};
        float *xd = malloc((size_t)n * sizeof(float)), *dxd = malloc((size_t)n * sizeof(float));
        float *want = malloc((size_t)n * sizeof(float));
        bool ties = trial % 3 == 0;
        for (int64_t i = 0; i < n; i++) {
            xd[i] = ties ? (float)(lcg(&seed) % 3) : frand(&seed);
            dxd[i] = want[i] = 0.5f;
        }
        int64_t OH = ref_out_size(H, c.k[0], c.s[0], c.d[0], c.pads[0], c.pads[2], c.ceil_mode);
        int64_t OW = ref_out_size(W, c.k[1], c.s[1], c.d[1], c.pads[1], c.pads[3], c.ceil_mode);
        float *dy = malloc((size_t)(N * C * OH * OW) * sizeof(float));
        for (int64_t i = 0; i < N * C * OH * OW; i++) dy[i] = frand(&seed);
        tnode t;
        pool_attrs(&t, c.is_max ? "MaxPool" : "AveragePool", 2, c.k, c.s, c.pads, c.d, c.ceil_mode, c.cip);
        gb_tensor x = tens(GB_DTYPE_F32, 4, dims, xd), dx = tens(GB_DTYPE_F32, 4, dims, dxd);
        gb_tensor *in[1] = {&x}, *din[1] = {&dx};
        const float *dyp[1] = {dy};
        gb_status st = run_node_bwd(ctx, &t, in, dyp, din, 1 + trial % 2);
        if (st) fail_msg("trial %d: %s", trial, gb_ctx_errmsg(ctx));
        ref_pool2d_backward(&c, xd, dy, N, C, H, W, want);
        for (int64_t i = 0; i < n; i++)
            if (!(fabsf(dxd[i] - want[i]) <= 1e-5f))
                fail_msg("trial %d (%s k %lldx%lld s %lldx%lld d %lldx%lld pads %lld,%lld,%lld,%lld "
                         "ceil %d cip %d, in %lldx%lld): dx[%lld] got %g want %g",
                         trial, c.is_max ? "max" : "avg", (long long)c.k[0], (long long)c.k[1],
                         (long long)c.s[0], (long long)c.s[1], (long long)c.d[0], (long long)c.d[1],
                         (long long)c.pads[0], (long long)c.pads[1], (long long)c.pads[2],
                         (long long)c.pads[3], c.ceil_mode, c.cip, (long long)H, (long long)W,
                         (long long)i, dxd[i], want[i]);
        ran++;
        free(xd);
        free(dxd);
        free(want);
        free(dy);
    }
    assert_true(ran > 150);
}

/* Hand values: ties, padding that never wins, SAME padding, NaN. */
static void test_backward_hand(void **state) {
    gb_ctx *ctx = *state;
    /* 1-D MaxPool k 3, s 1, pads 1: x = [1 3 3 2 3]; windows (with pad):
     * [p 1 3] [1 3 3] [3 3 2] [3 2 3] [2 3 p] -> argmax 1, 1, 1, 2, 4 */
    const float x1[5] = {1, 3, 3, 2, 3}, dy1[5] = {1, 10, 100, 1000, 10000};
    const float want1[5] = {0, 111, 1000, 0, 10000};
    int64_t d1[3] = {1, 1, 5}, k1[1] = {3}, s1[1] = {1}, p1[2] = {1, 1}, dl1[1] = {1};
    float dxd[16] = {0};
    tnode t;
    pool_attrs(&t, "MaxPool", 1, k1, s1, p1, dl1, 0, 0);
    gb_tensor x = tens(GB_DTYPE_F32, 3, d1, x1), dx = tens(GB_DTYPE_F32, 3, d1, dxd);
    gb_tensor *in[1] = {&x}, *din[1] = {&dx};
    const float *dy[1] = {dy1};
    assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1), GB_OK);
    assert_close(dxd, want1, 5, 0, 0);

    /* all-negative constant input with padding: padding (-inf) never wins, the
     * first in-range tap does */
    const float xn[3] = {-5, -5, -5}, dyn[4] = {1, 2, 4, 8};
    const float wantn[3] = {3, 4, 8};
    int64_t dn[3] = {1, 1, 3}, kn[1] = {2}, pn[2] = {1, 1};
    memset(dxd, 0, sizeof dxd);
    pool_attrs(&t, "MaxPool", 1, kn, s1, pn, dl1, 0, 0);
    x = tens(GB_DTYPE_F32, 3, dn, xn);
    dx = tens(GB_DTYPE_F32, 3, dn, dxd);
    dy[0] = dyn;
    assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1), GB_OK);
    assert_close(dxd, wantn, 3, 0, 0);

    /* NaN in a window: the gradient goes to the (first) NaN */
    const float xq[4] = {1, NAN, 5, NAN}, dyq[2] = {1, 2};
    const float wantq[4] = {0, 1, 0, 2};
    int64_t dq[3] = {1, 1, 4}, kq[1] = {2}, sq[1] = {2}, pq[2] = {0, 0};
    memset(dxd, 0, sizeof dxd);
    pool_attrs(&t, "MaxPool", 1, kq, sq, pq, dl1, 0, 0);
    x = tens(GB_DTYPE_F32, 3, dq, xq);
    dx = tens(GB_DTYPE_F32, 3, dq, dxd);
    dy[0] = dyq;
    assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1), GB_OK);
    assert_close(dxd, wantq, 4, 0, 0);

    /* AveragePool SAME_UPPER k 2 s 1 on 3 elements: windows [0 1] [1 2] [2 pad]
     * (pad excluded: count_include_pad 0), dy = 1 2 4 -> 1/2, 3/2, 1 + 4 */
    const float xa[3] = {7, 8, 9}, dya[3] = {1, 2, 4}, wanta[3] = {0.5f, 1.5f, 5.0f};
    int64_t ka[1] = {2};
    memset(dxd, 0, sizeof dxd);
    tn_init(&t, "AveragePool", 11, 1, 1);
    tn_ints(&t, "kernel_shape", 1, ka);
    tn_str(&t, "auto_pad", "SAME_UPPER");
    x = tens(GB_DTYPE_F32, 3, dn, xa);
    dx = tens(GB_DTYPE_F32, 3, dn, dxd);
    dy[0] = dya;
    assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1), GB_OK);
    assert_close(dxd, wanta, 3, 0, 0);

    /* no input gradient asked / no upstream gradient: nothing happens */
    din[0] = NULL;
    assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1), GB_OK);
    din[0] = &dx;
    dy[0] = NULL;
    tn_init(&t, "AveragePool", 11, 1, 1);
    tn_ints(&t, "kernel_shape", 1, ka);
    assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 1), GB_OK);
    assert_close(dxd, wanta, 3, 0, 0);
}

static void test_backward_global(void **state) {
    gb_ctx *ctx = *state;
    /* (2, 2, 2, 2): plane 0 has a tie (first max wins), plane 3 a NaN */
    const float xd[16] = {1, 4, 4, 2, -1, -3, -2, -1, 0, 0, 0, 0, 2, NAN, 9, NAN};
    const float dyd[4] = {1, 2, 3, 4};
    const float want_max[16] = {0, 1, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 4, 0, 0};
    int64_t dims[4] = {2, 2, 2, 2};
    for (int is_max = 0; is_max < 2; is_max++) {
        float dxd[16];
        for (int i = 0; i < 16; i++) dxd[i] = 1.0f;
        tnode t;
        tn_init(&t, is_max ? "GlobalMaxPool" : "GlobalAveragePool", 12, 1, 1);
        gb_tensor x = tens(GB_DTYPE_F32, 4, dims, xd), dx = tens(GB_DTYPE_F32, 4, dims, dxd);
        gb_tensor *in[1] = {&x}, *din[1] = {&dx};
        const float *dy[1] = {dyd};
        assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, 2), GB_OK);
        for (int i = 0; i < 16; i++) {
            float want = 1.0f + (is_max ? want_max[i] : dyd[i / 4] / 4.0f);
            if (dxd[i] != want) fail_msg("%s: dx[%d] got %g want %g", t.n.op_type, i, dxd[i], want);
        }
    }
}

/* A large input takes the parallel path: 1 and 2 threads agree bit for bit
 * (each plane is scattered by one thread in a fixed order). */
static void test_backward_parallel(void **state) {
    gb_ctx *ctx = *state;
    int64_t dims[4] = {2, 8, 64, 64}, n = 2 * 8 * 64 * 64;
    uint32_t seed = 99;
    float *xd = malloc((size_t)n * sizeof(float)), *dyd = malloc((size_t)n * sizeof(float));
    float *g1 = malloc((size_t)n * sizeof(float)), *g2 = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        xd[i] = (float)(lcg(&seed) % 5);  /* ties */
        dyd[i] = frand(&seed);
    }
    static const char *const ops[4] = {"MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool"};
    int64_t k[2] = {3, 3}, s[2] = {2, 2}, p[4] = {1, 1, 1, 1}, d[2] = {1, 1};
    for (int o = 0; o < 4; o++) {
        float *g[2] = {g1, g2};
        for (int th = 0; th < 2; th++) {
            tnode t;
            if (o < 2) pool_attrs(&t, ops[o], 2, k, s, p, d, 1, 1);
            else tn_init(&t, ops[o], 12, 1, 1);
            memset(g[th], 0, (size_t)n * sizeof(float));
            gb_tensor x = tens(GB_DTYPE_F32, 4, dims, xd), dx = tens(GB_DTYPE_F32, 4, dims, g[th]);
            gb_tensor *in[1] = {&x}, *din[1] = {&dx};
            const float *dy[1] = {dyd};
            assert_int_equal(run_node_bwd(ctx, &t, in, dy, din, th + 1), GB_OK);
        }
        assert_memory_equal(g1, g2, (size_t)n * sizeof(float));
    }
    free(xd);
    free(dyd);
    free(g1);
    free(g2);
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
        cmocka_unit_test(test_onnx_examples),  cmocka_unit_test(test_torch_fixtures),
        cmocka_unit_test(test_random_vs_reference), cmocka_unit_test(test_parallel_large),
        cmocka_unit_test(test_auto_pad),       cmocka_unit_test(test_max_nan),
        cmocka_unit_test(test_global),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_backward_torch), cmocka_unit_test(test_backward_random),
        cmocka_unit_test(test_backward_hand),  cmocka_unit_test(test_backward_global),
        cmocka_unit_test(test_backward_parallel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
