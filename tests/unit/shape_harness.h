/*
 * shape_harness.h — a tiny harness for the shape, index, reduce and resize
 * op tests: build a node by hand, run init / infer / forward like the engine
 * does, and compare results. Included by one test file each (static
 * functions; not every test uses every helper).
 */
#ifndef GB_TESTS_SHAPE_HARNESS_H
#define GB_TESTS_SHAPE_HARNESS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/util.h"

typedef struct {
    gb__node n;
    gb__attr attrs[12];
    int in_ids[16], out_ids[16];
} tnode;

static inline void tn_init(tnode *t, const char *op, int opset, int n_in, int n_out) {
    memset(t, 0, sizeof *t);
    t->n.name = (char *)"node0";
    t->n.op_type = (char *)op;
    t->n.opset = opset;
    t->n.n_in = n_in;
    t->n.n_out = n_out;
    t->n.in = t->in_ids;
    t->n.out = t->out_ids;
    t->n.attrs = t->attrs;
    for (int i = 0; i < 16; i++) t->in_ids[i] = i;
    for (int k = 0; k < 16; k++) t->out_ids[k] = 100 + k;
}

static inline gb__attr *tn_attr(tnode *t, const char *name, gb__attr_type type) {
    gb__attr *a = &t->attrs[t->n.n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = type;
    return a;
}
static inline void tn_ints(tnode *t, const char *name, int n, const int64_t *v) {
    gb__attr *a = tn_attr(t, name, GB_ATTR_INTS);
    a->n = n;
    a->ints = (int64_t *)v;
}
static inline void tn_floats(tnode *t, const char *name, int n, const float *v) {
    gb__attr *a = tn_attr(t, name, GB_ATTR_FLOATS);
    a->n = n;
    a->floats = (float *)v;
}
static inline void tn_int(tnode *t, const char *name, int64_t v) { tn_attr(t, name, GB_ATTR_INT)->i = v; }
static inline void tn_float(tnode *t, const char *name, float v) { tn_attr(t, name, GB_ATTR_FLOAT)->f = v; }
static inline void tn_str(tnode *t, const char *name, const char *s) { tn_attr(t, name, GB_ATTR_STRING)->s = (char *)s; }
static inline void tn_tensor(tnode *t, const char *name, gb_tensor *v) { tn_attr(t, name, GB_ATTR_TENSOR)->t = v; }

static inline gb_tensor tens(gb_dtype dt, int ndim, const int64_t *dims, const void *data) {
    gb_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.dims[i] = dims[i];
    t.numel = gb__numel(ndim, dims);
    t.data = (void *)data;
    return t;
}

/* A 1-D int64 tensor over a static array. */
#define I64V(arr) tens(GB_DTYPE_I64, 1, (int64_t[]){(int64_t)(sizeof(arr) / sizeof((arr)[0]))}, (arr))
#define F32V(arr) tens(GB_DTYPE_F32, 1, (int64_t[]){(int64_t)(sizeof(arr) / sizeof((arr)[0]))}, (arr))

/*
 * Run init, infer (on `plan`: inputs as known at plan time, data NULL for
 * run-time tensors) and forward (on `run`, or `plan` if NULL), with `threads`
 * threads. Alias ops are not run: their output shares the input's data, as in
 * the engine. On success each out[k].data is malloc'ed (free with out_free).
 */
static inline gb_status run_node2(gb_ctx *ctx, tnode *t, gb_tensor **plan, gb_tensor **run, gb_tensor *out,
                           int threads) {
    const gb__op *op = gb__op_lookup(t->n.op_type);
    assert_non_null(op);
    t->n.op = op;
    gb_tensor *outp[16] = {0};
    void *ws = NULL;
    size_t ws_bytes = 0;
    double flops = 0;
    for (int k = 0; k < t->n.n_out; k++) {
        memset(&out[k], 0, sizeof out[k]);
        outp[k] = &out[k];
    }
    gb_status st = op->init(ctx, &t->n);
    if (st) goto done;
    st = op->infer(ctx, &t->n, plan, outp, &ws_bytes, &flops);
    if (st) goto done;
    if (!run) run = plan;
    if (op->alias) {
        out[0].data = malloc((size_t)out[0].numel * 8 + 8);
        if (out[0].numel) memcpy(out[0].data, run[0]->data, (size_t)out[0].numel * gb_dtype_size(out[0].dtype));
        goto done;
    }
    for (int k = 0; k < t->n.n_out; k++) {
        out[k].data = malloc((size_t)out[k].numel * 8 + 8);
        assert_non_null(out[k].data);
    }
    if (ws_bytes) ws = malloc(ws_bytes);
    gb__exec ex = {.n_threads = threads, .ws = ws, .ws_size = ws_bytes};
    st = op->forward(&t->n, (const gb_tensor *const *)run, outp, &ex);
done:
    free(ws);
    free(t->n.params);
    t->n.params = NULL;
    return st;
}

static inline gb_status run_node(gb_ctx *ctx, tnode *t, gb_tensor **in, gb_tensor *out) {
    return run_node2(ctx, t, in, NULL, out, 1);
}

static inline void out_free(gb_tensor *out, int n) {
    for (int k = 0; k < n; k++) {
        free(out[k].data);
        out[k].data = NULL;
    }
}

static inline void assert_shape(const gb_tensor *t, int ndim, const int64_t *dims) {
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (t->dims[i] != dims[i])
            fail_msg("dim %d: got %lld, want %lld", i, (long long)t->dims[i], (long long)dims[i]);
}

static inline void assert_close(const float *got, const float *want, int64_t n, float rtol, float atol) {
    for (int64_t i = 0; i < n; i++) {
        float tol = atol + rtol * fabsf(want[i]);
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("element %lld: got %.8g, want %.8g", (long long)i, got[i], want[i]);
    }
}

static inline void assert_i64(const int64_t *got, const int64_t *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("element %lld: got %lld, want %lld", (long long)i, (long long)got[i], (long long)want[i]);
}

/* The error message names the node and contains `needle`. */
static inline void assert_msg(gb_ctx *ctx, const char *needle) {
    const char *m = gb_ctx_errmsg(ctx);
    if (!strstr(m, "node0") || !strstr(m, needle)) fail_msg("message '%s' lacks node0 or '%s'", m, needle);
}

/* ---- backward ------------------------------------------------------------------- */

/* Copy a configured node (attributes, ids), fixing its internal pointers, so
 * one template can be run many times. */
static inline void tn_copy(tnode *dst, const tnode *src) {
    *dst = *src;
    dst->n.in = dst->in_ids;
    dst->n.out = dst->out_ids;
    dst->n.attrs = dst->attrs;
}

/*
 * init, infer, forward and backward as the engine runs them (inputs as known
 * at plan time: the data of every given input). dout[k] is the gradient of
 * output k (NULL: none flows in); the backward accumulates into din[k]
 * (NULL: not asked). out[k].data is malloc'ed (free with out_free).
 * GB_ERR_UNSUPPORTED if the op has no backward.
 */
static inline gb_status run_backward(gb_ctx *ctx, const tnode *tmpl, gb_tensor **in, gb_tensor *out,
                                     gb_tensor **dout, gb_tensor **din, int threads) {
    tnode t;
    tn_copy(&t, tmpl);
    const gb__op *op = gb__op_lookup(t.n.op_type);
    assert_non_null(op);
    t.n.op = op;
    gb_tensor *outp[16] = {0};
    void *ws = NULL;
    size_t ws_bytes = 0;
    double flops = 0;
    for (int k = 0; k < t.n.n_out; k++) {
        memset(&out[k], 0, sizeof out[k]);
        outp[k] = &out[k];
    }
    gb_status st = op->init(ctx, &t.n);
    if (!st) st = op->infer(ctx, &t.n, in, outp, &ws_bytes, &flops);
    if (!st) {
        for (int k = 0; k < t.n.n_out; k++) out[k].data = calloc((size_t)out[k].numel + 1, 8);
        if (ws_bytes) ws = malloc(ws_bytes);
        gb__exec ex = {.n_threads = threads, .ws = ws, .ws_size = ws_bytes};
        st = op->forward(&t.n, (const gb_tensor *const *)in, outp, &ex);
        if (!st && !op->backward) st = GB_ERR_UNSUPPORTED;
        if (!st) {
            const gb_tensor *douts[16] = {0};
            gb_tensor *dins[16] = {0};
            for (int k = 0; k < t.n.n_out; k++) douts[k] = dout ? dout[k] : NULL;
            for (int k = 0; k < t.n.n_in; k++) dins[k] = din ? din[k] : NULL;
            st = op->backward(&t.n, (const gb_tensor *const *)in, (const gb_tensor *const *)outp, douts, dins, &ex);
        }
    }
    free(ws);
    free(t.n.params);
    return st;
}

/* A zero-filled float32 tensor shaped like t (free with grad_free). */
static inline gb_tensor grad_like(const gb_tensor *t) {
    gb_tensor g = tens(GB_DTYPE_F32, t->ndim, t->dims, NULL);
    g.data = calloc((size_t)g.numel + 1, sizeof(float));
    return g;
}
static inline void grad_free(gb_tensor *g) {
    free(g->data);
    g->data = NULL;
}

/* Deterministic uniform values in [-1, 1) (xorshift64*). */
static inline float urand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (float)((double)((*s * 2685821657736338717ull) >> 11) / 4503599627370496.0 - 1.0);
}

/* dx of input k (float32, x's shape) for the single output gradient dy:
 * the backward of node tmpl on inputs in. */
static inline void grad_of(gb_ctx *ctx, const tnode *tmpl, gb_tensor **in, int k, const float *dy, float *dx,
                           int threads) {
    gb_tensor out[16];
    gb_tensor dyt = {0}, dxt = tens(GB_DTYPE_F32, in[k]->ndim, in[k]->dims, dx);
    memset(dx, 0, sizeof(float) * (size_t)dxt.numel);
    gb_tensor *din[16] = {0};
    din[k] = &dxt;
    /* shapes first: a forward-only run */
    tnode t;
    tn_copy(&t, tmpl);
    assert_int_equal(run_node2(ctx, &t, in, NULL, out, 1), GB_OK);
    dyt = tens(GB_DTYPE_F32, out[0].ndim, out[0].dims, dy);
    out_free(out, t.n.n_out);
    gb_tensor *dout[16] = {&dyt};
    gb_status st = run_backward(ctx, tmpl, in, out, dout, din, threads);
    if (st) fail_msg("backward failed: %s", gb_ctx_errmsg(ctx));
    out_free(out, tmpl->n.n_out);
}

/* L = sum_k <w_k, y_k> over the float outputs (w_k NULL: output k ignored). */
static inline double tn_loss(gb_ctx *ctx, const tnode *tmpl, gb_tensor **in, float *const *w) {
    tnode t;
    tn_copy(&t, tmpl);
    gb_tensor out[16];
    assert_int_equal(run_node2(ctx, &t, in, NULL, out, 1), GB_OK);
    double L = 0;
    for (int k = 0; k < t.n.n_out; k++) {
        if (w[k] && out[k].data)
            for (int64_t i = 0; i < out[k].numel; i++) L += (double)w[k][i] * ((const float *)out[k].data)[i];
    }
    out_free(out, t.n.n_out);
    return L;
}

/*
 * Central-difference check of the backward, element by element, for every
 * float input k with bit k of `mask` set: L = sum_k <w_k, y_k> with random
 * w_k (outputs whose bit is set in `skip_out` get no gradient: dout NULL and
 * w 0), backward run with `threads` threads, numeric derivative with step h.
 * Passes when |an - fd| <= tol (1 + |fd|). The op must be smooth within h
 * of the inputs (all ops checked this way are piecewise linear or smooth).
 */
static inline void check_grad(gb_ctx *ctx, const tnode *tmpl, gb_tensor **in, unsigned mask, unsigned skip_out,
                              int threads, float h, double tol) {
    uint64_t seed = 0x243F6A8885A308D3ull;
    gb_tensor out[16];
    tnode t;
    tn_copy(&t, tmpl);
    assert_int_equal(run_node2(ctx, &t, in, NULL, out, 1), GB_OK);
    int n_out = tmpl->n.n_out, n_in = tmpl->n.n_in;
    float *w[16] = {0};
    gb_tensor wt[16], *dout[16] = {0};
    for (int k = 0; k < n_out; k++) {
        if ((skip_out >> k & 1u) || out[k].dtype != GB_DTYPE_F32 || tmpl->out_ids[k] < 0) continue;
        w[k] = malloc(sizeof(float) * (size_t)(out[k].numel + 1));
        for (int64_t i = 0; i < out[k].numel; i++) w[k][i] = urand(&seed);
        wt[k] = tens(GB_DTYPE_F32, out[k].ndim, out[k].dims, w[k]);
        dout[k] = &wt[k];
    }
    out_free(out, n_out);
    gb_tensor g[16], *din[16] = {0};
    for (int k = 0; k < n_in; k++)
        if ((mask >> k & 1u) && in[k] && in[k]->dtype == GB_DTYPE_F32) {
            g[k] = grad_like(in[k]);
            din[k] = &g[k];
        }
    gb_status st = run_backward(ctx, tmpl, in, out, dout, din, threads);
    if (st) fail_msg("backward failed (%d): %s", st, gb_ctx_errmsg(ctx));
    out_free(out, n_out);
    for (int k = 0; k < n_in; k++) {
        if (!din[k]) continue;
        float *x = in[k]->data;
        for (int64_t e = 0; e < in[k]->numel; e++) {
            float x0 = x[e];
            x[e] = x0 + h;
            double lp = tn_loss(ctx, tmpl, in, w);
            x[e] = x0 - h;
            double lm = tn_loss(ctx, tmpl, in, w);
            x[e] = x0;
            double fd = (lp - lm) / ((double)(x0 + h) - (double)(x0 - h));
            double an = ((const float *)g[k].data)[e];
            if (!(fabs(an - fd) <= tol * (1 + fabs(fd))))
                fail_msg("%s: d/d input %d [%lld] (x = %g): backward %.7g, finite difference %.7g",
                         tmpl->n.op_type, k, (long long)e, x0, an, fd);
        }
        grad_free(&g[k]);
    }
    for (int k = 0; k < n_out; k++) free(w[k]);
}

/* The backward of input k with 1 and with 2 threads gives identical bits
 * (deterministic splits), for a deterministic output gradient. */
static inline void check_grad_threads(gb_ctx *ctx, const tnode *tmpl, gb_tensor **in, int k) {
    gb_tensor out[16];
    tnode t;
    tn_copy(&t, tmpl);
    assert_int_equal(run_node2(ctx, &t, in, NULL, out, 1), GB_OK);
    int64_t ny = out[0].numel, nx = in[k]->numel;
    out_free(out, t.n.n_out);
    float *dy = malloc(sizeof(float) * (size_t)(ny + 1));
    float *d1 = malloc(sizeof(float) * (size_t)(nx + 1)), *d2 = malloc(sizeof(float) * (size_t)(nx + 1));
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < ny; i++) dy[i] = urand(&seed);
    grad_of(ctx, tmpl, in, k, dy, d1, 1);
    grad_of(ctx, tmpl, in, k, dy, d2, 2);
    assert_memory_equal(d1, d2, sizeof(float) * (size_t)nx);
    free(dy);
    free(d1);
    free(d2);
}

/* A malloc'ed copy of n floats (check_grad perturbs its inputs in place). */
static inline float *fdup(const float *src, int64_t n) {
    float *d = malloc(sizeof(float) * (size_t)(n + 1));
    memcpy(d, src, sizeof(float) * (size_t)n);
    return d;
}

/* n deterministic values in [-1, 1). */
static inline float *frand(int64_t n, uint64_t seed) {
    float *d = malloc(sizeof(float) * (size_t)(n + 1));
    seed = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) d[i] = urand(&seed);
    return d;
}

#endif
