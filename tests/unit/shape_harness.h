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

#endif
