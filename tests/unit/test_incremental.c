/*
 * test_incremental.c — incremental inference (src/engine/incremental.c)
 * against full forward passes on small graphs built in memory.
 *
 * The main graph strings together every region kernel and its corner cases:
 * strided and padded Conv, grouped and dilated Conv, depthwise Conv, 1x1
 * Conv, MaxPool with ceil_mode and padding, AveragePool with
 * count_include_pad 1 and with ceil_mode (overhang excluded from the
 * divisor), BatchNormalization, Clip with constant inputs, Mul by a
 * per-channel constant, a residual Add of two different regions, Concat of
 * a changed and an unchanged-region input, a zero Pad, then the dense tail
 * (GlobalAveragePool, Flatten, Gemm). Rows replace random boxes — corners,
 * edges, boxes hanging off the image, a 1x1 box, an empty box, the whole
 * image — and the incremental values of the output and of hidden tensors
 * must equal a full forward pass of the same rows (1e-5 relative: only the
 * summation order may differ). The occlusion method is also run end to end
 * with incremental inference forced on and off.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/explain.h"
#include "engine/incremental.h"
#include "engine/session.h"
#include "methods/methods.h"
#include "onnx.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a tiny graph builder ------------------------------------------------------ */

#define MAXN 32
#define MAXA 8

typedef struct {
    const char *op, *out;
    const char *in[6];
    int n_in;
    Onnx__AttributeProto attr[MAXA];
    Onnx__AttributeProto *attrp[MAXA];
    int n_attr;
} tnode;

typedef struct {
    tnode nodes[MAXN];
    int n_nodes;
    Onnx__TensorProto init[MAXN];
    Onnx__TensorProto *initp[MAXN];
    gb_tensor *init_t[MAXN];
    char init_name[MAXN][32];
    int n_init;
    int64_t xdims[4];
    const char *output;
} tgraph;

static uint32_t rng_state = 12345u;
static float frnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}
static int64_t irnd(int64_t n) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (int64_t)((rng_state >> 8) % (uint32_t)n);
}

static tnode *add_node(tgraph *g, const char *op, const char *out, int n_in, ...) {
    tnode *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->n_in = n_in;
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++) n->in[i] = va_arg(ap, const char *);
    va_end(ap);
    return n;
}

static void attr_int(tnode *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = &n->attr[n->n_attr];
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    n->attrp[n->n_attr] = a;
    n->n_attr++;
}

static void attr_ints(tnode *n, const char *name, int cnt, const int64_t *v) {
    Onnx__AttributeProto *a = &n->attr[n->n_attr];
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)cnt;
    a->ints = (int64_t *)v;
    n->attrp[n->n_attr] = a;
    n->n_attr++;
}

/* A random float32 (or given int64) initializer. */
static const char *add_init(tgraph *g, const char *name, int ndim, const int64_t *dims, float lo, float hi,
                            const int64_t *i64) {
    int k = g->n_init++;
    gb_tensor *t;
    assert_int_equal(gb_tensor_create(NULL, i64 ? GB_DTYPE_I64 : GB_DTYPE_F32, ndim, dims, &t), GB_OK);
    for (int64_t i = 0; i < t->numel; i++) {
        if (i64) ((int64_t *)t->data)[i] = i64[i];
        else ((float *)t->data)[i] = lo + (hi - lo) * 0.5f * (frnd() + 1.0f);
    }
    g->init_t[k] = t;
    snprintf(g->init_name[k], sizeof g->init_name[k], "%s", name);
    Onnx__TensorProto *tp = &g->init[k];
    onnx__tensor_proto__init(tp);
    tp->name = g->init_name[k];
    tp->n_dims = (size_t)ndim;
    tp->dims = t->dims;
    tp->has_data_type = 1;
    tp->data_type = i64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tp->has_raw_data = 1;
    tp->raw_data.len = (size_t)t->numel * gb_dtype_size(t->dtype);
    tp->raw_data.data = t->data;
    g->initp[k] = tp;
    return g->init_name[k];
}

static gb_model *build(gb_ctx *ctx, tgraph *g) {
    Onnx__NodeProto np[MAXN], *npp[MAXN];
    for (int i = 0; i < g->n_nodes; i++) {
        tnode *n = &g->nodes[i];
        onnx__node_proto__init(&np[i]);
        np[i].op_type = (char *)n->op;
        np[i].n_input = (size_t)n->n_in;
        np[i].input = (char **)n->in;
        np[i].n_output = 1;
        np[i].output = (char **)&n->out;
        np[i].n_attribute = (size_t)n->n_attr;
        np[i].attribute = n->attrp;
        npp[i] = &np[i];
    }
    /* input "x" (N, C, H, W) with a symbolic batch; output untyped shape */
    Onnx__ValueInfoProto vin, vout, *vinp = &vin, *voutp = &vout;
    Onnx__TypeProto tin, tout;
    Onnx__TypeProto__Tensor ttin, ttout;
    Onnx__TensorShapeProto shp;
    Onnx__TensorShapeProto__Dimension dim[4], *dimp[4];
    onnx__value_info_proto__init(&vin);
    onnx__type_proto__init(&tin);
    onnx__type_proto__tensor__init(&ttin);
    onnx__tensor_shape_proto__init(&shp);
    vin.name = (char *)"x";
    vin.type = &tin;
    tin.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tin.tensor_type = &ttin;
    ttin.has_elem_type = 1;
    ttin.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    ttin.shape = &shp;
    shp.n_dim = 4;
    shp.dim = dimp;
    for (int i = 0; i < 4; i++) {
        onnx__tensor_shape_proto__dimension__init(&dim[i]);
        if (i == 0) {
            dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[i].dim_param = (char *)"N";
        } else {
            dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[i].dim_value = g->xdims[i];
        }
        dimp[i] = &dim[i];
    }
    onnx__value_info_proto__init(&vout);
    onnx__type_proto__init(&tout);
    onnx__type_proto__tensor__init(&ttout);
    vout.name = (char *)g->output;
    vout.type = &tout;
    tout.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tout.tensor_type = &ttout;
    ttout.has_elem_type = 1;
    ttout.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    Onnx__GraphProto graph;
    onnx__graph_proto__init(&graph);
    graph.name = (char *)"incremental_test";
    graph.n_node = (size_t)g->n_nodes;
    graph.node = npp;
    graph.n_initializer = (size_t)g->n_init;
    graph.initializer = g->initp;
    graph.n_input = 1;
    graph.input = &vinp;
    graph.n_output = 1;
    graph.output = &voutp;
    Onnx__OperatorSetIdProto ops, *opsp = &ops;
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = (char *)"";
    ops.has_version = 1;
    ops.version = 13;
    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    mp.has_ir_version = 1;
    mp.ir_version = 8;
    mp.n_opset_import = 1;
    mp.opset_import = &opsp;
    mp.graph = &graph;
    size_t len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    onnx__model_proto__pack(&mp, buf);
    gb_model *m = NULL;
    if (gb_model_load_buffer(ctx, buf, len, &m)) fail_msg("%s", gb_ctx_errmsg(ctx));
    free(buf);
    return m;
}

static void free_graph(tgraph *g) {
    for (int i = 0; i < g->n_init; i++) gb_tensor_free(g->init_t[i]);
}

/* The graph described at the top of the file. x (N, 4, 23, 19). */
static void main_graph(tgraph *g) {
    memset(g, 0, sizeof *g);
    g->xdims[1] = 4, g->xdims[2] = 23, g->xdims[3] = 19;
    static const int64_t w1[] = {8, 4, 3, 3}, b8[] = {8}, w2[] = {8, 4, 3, 3}, w3[] = {8, 1, 3, 3},
                         k8[] = {1, 8, 1, 1}, w4[] = {6, 16, 1, 1}, wf[] = {5, 6}, b5[] = {5}, one[] = {1},
                         w5[] = {8, 8, 2, 3};
    static const int64_t s2[] = {2, 2}, p1[] = {1, 1, 1, 1}, p2[] = {2, 2, 2, 2}, d2[] = {2, 2}, k3[] = {3, 3},
                         k2[] = {2, 2}, s1[] = {1, 1}, pads0[] = {0, 0, 0, 0, 0, 0, 0, 0}, pa[] = {1, 2, 1, 1};
    tnode *n;
    n = add_node(g, "Conv", "c1", 3, "x", add_init(g, "W1", 4, w1, -0.5f, 0.5f, NULL),
                 add_init(g, "B1", 1, b8, -0.2f, 0.2f, NULL));
    attr_ints(n, "strides", 2, s2);
    attr_ints(n, "pads", 4, p1);
    add_node(g, "Relu", "r1", 1, "c1");
    n = add_node(g, "MaxPool", "p1", 1, "r1");
    attr_ints(n, "kernel_shape", 2, k3);
    attr_ints(n, "strides", 2, s2);
    attr_ints(n, "pads", 4, p1);
    attr_int(n, "ceil_mode", 1);
    n = add_node(g, "Conv", "c2", 2, "r1", add_init(g, "W2", 4, w2, -0.5f, 0.5f, NULL));
    attr_int(n, "group", 2);
    attr_ints(n, "dilations", 2, d2);
    attr_ints(n, "pads", 4, p2);
    add_node(g, "BatchNormalization", "bn", 5, "c2", add_init(g, "bs", 1, b8, 0.5f, 1.5f, NULL),
             add_init(g, "bb", 1, b8, -0.3f, 0.3f, NULL), add_init(g, "bm", 1, b8, -0.3f, 0.3f, NULL),
             add_init(g, "bv", 1, b8, 0.5f, 2.0f, NULL));
    n = add_node(g, "Conv", "c3", 3, "r1", add_init(g, "W3", 4, w3, -0.5f, 0.5f, NULL),
                 add_init(g, "B3", 1, b8, -0.2f, 0.2f, NULL));
    attr_int(n, "group", 8);
    attr_ints(n, "pads", 4, p1);
    add_node(g, "Add", "a", 2, "bn", "c3");
    add_node(g, "Clip", "cl", 3, "a", add_init(g, "lo", 0, one, -0.6f, -0.6f, NULL),
             add_init(g, "hi", 0, one, 0.8f, 0.8f, NULL));
    add_node(g, "Mul", "mu", 2, "cl", add_init(g, "k8", 4, k8, -2.0f, 2.0f, NULL));
    /* back to p1's resolution: a strided asymmetric conv */
    n = add_node(g, "Conv", "c5", 2, "mu", add_init(g, "W5", 4, w5, -0.5f, 0.5f, NULL));
    attr_ints(n, "strides", 2, s2);
    attr_ints(n, "pads", 4, pa);
    add_node(g, "Concat", "cat", 2, "c5", "p1");
    attr_int(&g->nodes[g->n_nodes - 1], "axis", 1);
    add_node(g, "Pad", "pad", 2, "cat", add_init(g, "pads0", 1, (int64_t[]){8}, 0, 0, pads0));
    n = add_node(g, "AveragePool", "ap", 1, "pad");
    attr_ints(n, "kernel_shape", 2, k3);
    attr_ints(n, "strides", 2, s1);
    attr_ints(n, "pads", 4, p1);
    attr_int(n, "count_include_pad", 1);
    n = add_node(g, "AveragePool", "ap2", 1, "ap");
    attr_ints(n, "kernel_shape", 2, k2);
    attr_ints(n, "strides", 2, s2);
    attr_int(n, "ceil_mode", 1);
    add_node(g, "Conv", "c4", 2, "ap2", add_init(g, "W4", 4, w4, -0.5f, 0.5f, NULL));
    add_node(g, "GlobalAveragePool", "g", 1, "c4");
    add_node(g, "Flatten", "f", 1, "g");
    n = add_node(g, "Gemm", "y", 3, "f", add_init(g, "Wf", 2, wf, -1.0f, 1.0f, NULL),
                 add_init(g, "bf", 1, b5, -0.5f, 0.5f, NULL));
    attr_int(n, "transB", 1);
    g->output = "y";
}

static double max_rel(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / (den > 0 ? den : 1);
}

/* ---- tests ------------------------------------------------------------------------- */

#define ROWS 12

static void incremental_equals_full(void **state) {
    (void)state;
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    tgraph g;
    main_graph(&g);
    gb_model *m = build(ctx, &g);
    const int64_t C = g.xdims[1], H = g.xdims[2], W = g.xdims[3], D = C * H * W;
    float *x = malloc(sizeof(float) * (size_t)D), *rows = malloc(sizeof(float) * (size_t)(ROWS * D));
    assert_non_null(x);
    assert_non_null(rows);
    for (int64_t i = 0; i < D; i++) x[i] = frnd();
    gb_tensor xi = {.dtype = GB_DTYPE_F32, .ndim = 4, .dims = {1, C, H, W}, .numel = D, .data = x};
    gb__incr *inc;
    assert_int_equal(gb__incr_create(ctx, m, &inc), GB_OK);
    bool usable = false;
    assert_int_equal(gb__incr_set_base(inc, &xi, &usable), GB_OK);
    assert_true(usable);
    gb_session *s;
    assert_int_equal(gb_session_create(m, &s), GB_OK);
    gb_session_keep_activations(s, 1);

    for (int trial = 0; trial < 6; trial++) {
        int64_t boxes[4 * ROWS];
        for (int r = 0; r < ROWS; r++) {
            int64_t *b = boxes + 4 * r;
            int64_t bh = 1 + irnd(H / 2), bw = 1 + irnd(W / 2), h0 = irnd(H - bh + 1), w0 = irnd(W - bw + 1);
            switch ((r + trial) % ROWS) {
            case 0: h0 = 0, w0 = 0; break;                       /* corner */
            case 1: h0 = H - bh, w0 = W - bw; break;             /* opposite corner */
            case 2: h0 = -3, w0 = W - 2, bh = 7, bw = 6; break;  /* hanging off two edges */
            case 3: bh = bw = 1; break;                          /* one pixel */
            case 4: bh = 0; break;                               /* empty: the row is x */
            case 5: h0 = -1, w0 = -1, bh = H + 2, bw = W + 2; break; /* the whole image */
            case 6: h0 = 0, bh = H; break;                       /* a full-height band */
            default: break;
            }
            b[0] = h0, b[1] = h0 + bh, b[2] = w0, b[3] = w0 + bw;
            float *d = rows + r * D;
            memcpy(d, x, sizeof(float) * (size_t)D);
            for (int64_t c = 0; c < C; c++)
                for (int64_t y = h0 < 0 ? 0 : h0; y < b[1] && y < H; y++)
                    for (int64_t xx = w0 < 0 ? 0 : w0; xx < b[3] && xx < W; xx++)
                        d[(c * H + y) * W + xx] = trial % 2 ? 0.0f : 3 * frnd();
        }
        int64_t B = 1 + irnd(ROWS); /* batches of several sizes */
        gb_tensor batch = {.dtype = GB_DTYPE_F32, .ndim = 4, .dims = {B, C, H, W}, .numel = B * D, .data = rows};
        const gb_tensor *bin[1] = {&batch};
        if (gb_session_run(s, bin, 1)) fail_msg("%s", gb_ctx_errmsg(ctx));
        static const char *const names[] = {"y", "c4", "ap", "cat", "a", "p1", "x"};
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            int id = gb__session_lookup(s, names[k]);
            assert_true(id >= 0);
            const gb_tensor *full = gb__session_tensor(s, id);
            double fi, ff;
            const gb_tensor *T;
            if (gb__incr_plan(inc, B, boxes, &fi, &ff)) fail_msg("%s", gb_ctx_errmsg(ctx));
            assert_true(fi <= ff * 1.0001);
            if (gb__incr_run(inc, rows, id, &T)) fail_msg("%s", gb_ctx_errmsg(ctx));
            assert_int_equal(T->numel, full->numel);
            double e = max_rel(T->data, full->data, full->numel);
            if (!(e <= 1e-5)) fail_msg("trial %d, tensor %s, %lld rows: max rel diff %.3g", trial, names[k], (long long)B, e);
        }
    }
    /* every row changed everywhere: region ops switch to their own dense
     * kernels from the first layer on */
    {
        int64_t all[8] = {0, H, 0, W, -2, H + 5, -1, W};
        for (int64_t i = 0; i < 2 * D; i++) rows[i] = frnd();
        gb_tensor batch = {.dtype = GB_DTYPE_F32, .ndim = 4, .dims = {2, C, H, W}, .numel = 2 * D, .data = rows};
        const gb_tensor *bin[1] = {&batch};
        assert_int_equal(gb_session_run(s, bin, 1), GB_OK);
        static const char *const names2[] = {"y", "ap", "a"};
        for (size_t k = 0; k < 3; k++) {
            int id = gb__session_lookup(s, names2[k]);
            const gb_tensor *full = gb__session_tensor(s, id), *T;
            double fi, ff;
            assert_int_equal(gb__incr_plan(inc, 2, all, &fi, &ff), GB_OK);
            assert_true(fabs(fi - ff) <= 1e-9 * ff); /* nothing saved */
            assert_int_equal(gb__incr_run(inc, rows, id, &T), GB_OK);
            double e = max_rel(T->data, full->data, full->numel);
            if (!(e <= 1e-5)) fail_msg("whole-image rows, tensor %s: max rel diff %.3g", names2[k], e);
        }
    }
    /* an all-empty batch: every tensor stays the base, no FLOPs */
    int64_t none[4] = {5, 5, 0, 0};
    double fi, ff;
    const gb_tensor *T;
    assert_int_equal(gb__incr_plan(inc, 1, none, &fi, &ff), GB_OK);
    assert_true(fi == 0 && ff > 0);
    assert_int_equal(gb__incr_run(inc, x, gb__session_lookup(s, "y"), &T), GB_OK);
    gb_tensor one = {.dtype = GB_DTYPE_F32, .ndim = 4, .dims = {1, C, H, W}, .numel = D, .data = x};
    const gb_tensor *oin[1] = {&one};
    assert_int_equal(gb_session_run(s, oin, 1), GB_OK);
    assert_memory_equal(T->data, gb_session_output(s, 0)->data, sizeof(float) * 5);

    gb__incr_stats stt;
    gb__incr_get_stats(inc, &stt);
    assert_true(stt.rows_incr > 0 && stt.flops_incr < stt.flops_full);
    gb_session_free(s);
    gb__incr_free(inc);
    gb_model_free(m);
    free_graph(&g);
    free(x);
    free(rows);
    gb_ctx_free(ctx);
}

/* A changed base is picked up (the cache is keyed by the input's values). */
static void base_follows_x(void **state) {
    (void)state;
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    tgraph g;
    main_graph(&g);
    gb_model *m = build(ctx, &g);
    const int64_t C = g.xdims[1], H = g.xdims[2], W = g.xdims[3], D = C * H * W;
    float *x = malloc(sizeof(float) * (size_t)D), *row = malloc(sizeof(float) * (size_t)D);
    gb__incr *inc;
    gb_session *s;
    assert_int_equal(gb__incr_create(ctx, m, &inc), GB_OK);
    assert_int_equal(gb_session_create(m, &s), GB_OK);
    int id = gb__session_lookup(s, "y");
    for (int it = 0; it < 3; it++) {
        for (int64_t i = 0; i < D; i++) x[i] = frnd();
        gb_tensor xi = {.dtype = GB_DTYPE_F32, .ndim = 4, .dims = {1, C, H, W}, .numel = D, .data = x};
        bool usable;
        assert_int_equal(gb__incr_set_base(inc, &xi, &usable), GB_OK);
        memcpy(row, x, sizeof(float) * (size_t)D);
        int64_t box[4] = {3, 9, 4, 8};
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 3; y < 9; y++)
                for (int64_t xx = 4; xx < 8; xx++) row[(c * H + y) * W + xx] = 0;
        double fi, ff;
        const gb_tensor *T;
        assert_int_equal(gb__incr_plan(inc, 1, box, &fi, &ff), GB_OK);
        assert_int_equal(gb__incr_run(inc, row, id, &T), GB_OK);
        float got[5];
        memcpy(got, T->data, sizeof got);
        gb_tensor rt = {.dtype = GB_DTYPE_F32, .ndim = 4, .dims = {1, C, H, W}, .numel = D, .data = row};
        const gb_tensor *in[1] = {&rt};
        assert_int_equal(gb_session_run(s, in, 1), GB_OK);
        assert_true(max_rel(got, gb_session_output(s, 0)->data, 5) <= 1e-5);
    }
    gb_session_free(s);
    gb__incr_free(inc);
    gb_model_free(m);
    free_graph(&g);
    free(x);
    free(row);
    gb_ctx_free(ctx);
}

/* Occlusion end to end: forced incremental, cost-model default and full
 * passes give the same attribution. */
static void occlusion_modes_agree(void **state) {
    (void)state;
    if (!gb_method_find("occlusion")) skip();
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    tgraph g;
    main_graph(&g);
    gb_model *m = build(ctx, &g);
    const int64_t C = g.xdims[1], H = g.xdims[2], W = g.xdims[3], D = C * H * W;
    gb_tensor *x;
    int64_t dims[4] = {2, C, H, W};
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, &x), GB_OK);
    for (int64_t i = 0; i < 2 * D; i++) ((float *)x->data)[i] = frnd();
    gb_explainer *e;
    assert_int_equal(gb_explainer_create(ctx, m, &e), GB_OK);
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.window[0] = 5, o.window[1] = 4;
    o.stride[0] = 3, o.stride[1] = 2;
    gb_tensor *attr[3] = {0};
    int64_t rows_incr[3] = {0}, rows_full[3] = {0};
    for (int mode = 1; mode >= -1; mode--) {
        gb__explain_set_incremental(e, mode);
        gb__explain_incremental_stats(e, true, NULL, NULL, NULL, NULL);
        gb_explanation *r;
        if (gb_explain(e, "occlusion", x, &o, &r)) fail_msg("%s", gb_ctx_errmsg(ctx));
        gb__explain_incremental_stats(e, false, NULL, NULL, &rows_incr[1 - mode], &rows_full[1 - mode]);
        attr[1 - mode] = r->attr;
        r->attr = NULL;
        gb_explanation_free(r);
    }
    assert_true(rows_incr[0] > 0);                      /* forced: incremental */
    assert_true(rows_incr[2] == 0);                     /* off: none */
    for (int k = 1; k < 3; k++) {
        double e2 = max_rel(attr[k]->data, attr[0]->data, attr[0]->numel);
        if (!(e2 <= 1e-5)) fail_msg("mode %d vs forced incremental: max rel diff %.3g", 1 - k, e2);
    }
    for (int k = 0; k < 3; k++) gb_tensor_free(attr[k]);
    gb_explainer_free(e);
    gb_tensor_free(x);
    gb_model_free(m);
    free_graph(&g);
    gb_ctx_free(ctx);
}

/* Inputs that are not (N, C, H, W) float images are not incremental. */
static void non_image_input_refused(void **state) {
    (void)state;
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    tgraph g;
    main_graph(&g);
    gb_model *m = build(ctx, &g);
    gb__incr *inc;
    assert_int_equal(gb__incr_create(ctx, m, &inc), GB_OK);
    float v[6] = {0};
    gb_tensor t = {.dtype = GB_DTYPE_F32, .ndim = 2, .dims = {1, 6}, .numel = 6, .data = v};
    bool usable = true;
    assert_int_equal(gb__incr_set_base(inc, &t, &usable), GB_ERR_UNSUPPORTED);
    assert_false(usable);
    gb__incr_free(inc);
    gb_model_free(m);
    free_graph(&g);
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(incremental_equals_full),
        cmocka_unit_test(base_follows_x),
        cmocka_unit_test(occlusion_modes_agree),
        cmocka_unit_test(non_image_input_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
