/*
 * op_harness.h — a small harness shared by the operator unit tests.
 *
 * Two ways to run one operator:
 *
 * 1. Directly, as the engine calls it (run_op, run_op_backward): build one
 *    gb__node from an op type, opset, attributes and input tensors; call
 *    init, infer, forward, and backward with a chosen output gradient and
 *    chosen input-gradient buffers (NULL = not asked for, to check that an
 *    op skips that work). Fast, and errors keep their exact status.
 *
 * 2. As a single-node gb_model (oh_model_*): the node is written as an ONNX
 *    ModelProto in memory (protobuf-c, the loader's own schema), loaded with
 *    gb_model_load_buffer and run through the public session API, including
 *    gb_session_backward — the path an explanation takes. Chosen inputs can
 *    be initializers (weights) to check parameter gradients on and off.
 *
 * Plus check_grad_fd, a central-difference check of every element of the
 * asked-for input gradients, tensor constructors, attribute builders, a
 * seeded generator and comparators. Include it from exactly one test file
 * per executable, after <cmocka.h>; every helper is static and may go unused.
 */
#ifndef GB_TESTS_OP_HARNESS_H
#define GB_TESTS_OP_HARNESS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/util.h"
#include "onnx.pb-c.h"

#define OH_FN static __attribute__((unused))
#define OH_MAX_IO 16

/* ---- attributes ---------------------------------------------------------- */

OH_FN gb__attr attr_i(const char *name, int64_t v) {
    gb__attr a = {.name = (char *)name, .type = GB_ATTR_INT, .i = v};
    return a;
}
OH_FN gb__attr attr_f(const char *name, float v) {
    gb__attr a = {.name = (char *)name, .type = GB_ATTR_FLOAT, .f = v};
    return a;
}
OH_FN gb__attr attr_s(const char *name, const char *v) {
    gb__attr a = {.name = (char *)name, .type = GB_ATTR_STRING, .s = (char *)v};
    return a;
}
OH_FN gb__attr attr_ints(const char *name, int n, const int64_t *v) {
    gb__attr a = {.name = (char *)name, .type = GB_ATTR_INTS, .n = n, .ints = (int64_t *)v};
    return a;
}
OH_FN gb__attr attr_floats(const char *name, int n, const float *v) {
    gb__attr a = {.name = (char *)name, .type = GB_ATTR_FLOATS, .n = n, .floats = (float *)v};
    return a;
}

/* ---- tensors -------------------------------------------------------------- */

/* Zero-filled if v is NULL. Free with gb_tensor_free. */
OH_FN gb_tensor *tensor_f32(int ndim, const int64_t *dims, const float *v) {
    gb_tensor *t;
    assert_int_equal(gb_tensor_create(NULL, GB_DTYPE_F32, ndim, dims, &t), GB_OK);
    if (v) memcpy(t->data, v, (size_t)t->numel * sizeof(float));
    return t;
}
OH_FN gb_tensor *tensor_i64(int ndim, const int64_t *dims, const int64_t *v) {
    gb_tensor *t;
    assert_int_equal(gb_tensor_create(NULL, GB_DTYPE_I64, ndim, dims, &t), GB_OK);
    if (v) memcpy(t->data, v, (size_t)t->numel * sizeof(int64_t));
    return t;
}
/* A zero float tensor shaped like t (a gradient buffer). */
OH_FN gb_tensor *zeros_like(const gb_tensor *t) { return tensor_f32(t->ndim, t->dims, NULL); }

/* A float tensor shaped like t, every element v. */
OH_FN gb_tensor *filled_like(const gb_tensor *t, float v) {
    gb_tensor *r = zeros_like(t);
    for (int64_t i = 0; i < r->numel; i++) ((float *)r->data)[i] = v;
    return r;
}
/* The incoming gradient of the PyTorch fixtures: g[i] = 1 + i/8. */
OH_FN gb_tensor *ramp_like(const gb_tensor *t) {
    gb_tensor *r = zeros_like(t);
    for (int64_t i = 0; i < r->numel; i++) ((float *)r->data)[i] = 1.0f + (float)i / 8.0f;
    return r;
}

/* Deterministic LCG; each test executable has its own stream. */
static uint32_t oh_rng_state = 987654321u;
OH_FN float frand(void) { /* uniform in [-1, 1) */
    oh_rng_state = oh_rng_state * 1664525u + 1013904223u;
    return (float)((oh_rng_state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}
OH_FN gb_tensor *rand_f32(int ndim, const int64_t *dims, float lo, float hi) {
    gb_tensor *t = tensor_f32(ndim, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++)
        ((float *)t->data)[i] = lo + (hi - lo) * 0.5f * (frand() + 1.0f);
    return t;
}

OH_FN void free_tensors(gb_tensor **t, int n) {
    for (int i = 0; i < n; i++) {
        gb_tensor_free(t[i]);
        t[i] = NULL;
    }
}

/* ---- comparisons ---------------------------------------------------------- */

/* |got - want| <= tol * (1 + |want|), element by element. */
OH_FN void expect_close(const float *got, const double *want, int64_t n, double tol) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i]))))
            fail_msg("element %lld: got %.8g want %.8g", (long long)i, got[i], want[i]);
}

/* |got - want| <= atol + rtol |want|; NaN must match NaN, inf the same inf. */
OH_FN void assert_close_f32(const float *got, const float *want, int64_t n, float rtol, float atol) {
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isinf(want[i])) {
            bool same = isnan(want[i]) ? isnan(got[i]) : got[i] == want[i];
            if (!same) fail_msg("element %lld: got %.8g, want %.8g", (long long)i, got[i], want[i]);
            continue;
        }
        if (!(fabsf(got[i] - want[i]) <= atol + rtol * fabsf(want[i])))
            fail_msg("element %lld: got %.8g, want %.8g", (long long)i, got[i], want[i]);
    }
}

/* ---- 1. the op called directly -------------------------------------------- */

/* One node over caller-owned inputs. in[k] NULL = omitted optional input. */
typedef struct {
    gb__node n;
    int in_ids[OH_MAX_IO], out_ids[OH_MAX_IO];
    gb_ctx *ctx;
    size_t ws_bytes;
    void *ws;
} oh_node;

static gb_status oh_node_prepare(oh_node *t, const char *op_type, int opset, gb__attr *attrs,
                                 int n_attrs, gb_tensor **in, int n_in, int n_out,
                                 gb_tensor **outs) {
    memset(t, 0, sizeof *t);
    const gb__op *op = gb__op_lookup(op_type);
    if (!op) fail_msg("no op '%s' in the registry", op_type);
    assert_int_equal(gb_ctx_create(&t->ctx), GB_OK);
    for (int i = 0; i < n_in; i++) t->in_ids[i] = in[i] ? i : -1;
    for (int k = 0; k < n_out; k++) t->out_ids[k] = 100 + k;
    t->n = (gb__node){.name = (char *)"node0", .op_type = (char *)op_type, .op = op,
                      .opset = opset, .n_in = n_in, .n_out = n_out, .in = t->in_ids,
                      .out = t->out_ids, .n_attrs = n_attrs, .attrs = attrs};
    gb_status st = op->init(t->ctx, &t->n);
    if (st) return st;
    gb_tensor shapes[OH_MAX_IO];
    gb_tensor *sp[OH_MAX_IO];
    memset(shapes, 0, sizeof shapes);
    for (int k = 0; k < n_out; k++) sp[k] = &shapes[k];
    double flops = 0;
    st = op->infer(t->ctx, &t->n, in, sp, &t->ws_bytes, &flops);
    if (st) return st;
    for (int k = 0; k < n_out; k++)
        assert_int_equal(gb_tensor_create(NULL, shapes[k].dtype, shapes[k].ndim, shapes[k].dims, &outs[k]),
                         GB_OK);
    t->ws = t->ws_bytes ? malloc(t->ws_bytes) : NULL;
    return GB_OK;
}

static void oh_node_release(oh_node *t) {
    free(t->ws);
    free(t->n.params);
    gb_ctx_free(t->ctx);
}

static gb_status oh_node_forward(oh_node *t, gb_tensor **in, gb_tensor **outs, int n_threads) {
    gb__exec ex = {.n_threads = n_threads, .ws = t->ws, .ws_size = t->ws_bytes};
    if (t->n.op->alias) {
        size_t bytes = (size_t)outs[0]->numel * gb_dtype_size(outs[0]->dtype);
        if (bytes) memcpy(outs[0]->data, in[0]->data, bytes);
        return GB_OK;
    }
    return t->n.op->forward(&t->n, (const gb_tensor *const *)in, (gb_tensor *const *)outs, &ex);
}

/*
 * Run op_type with n_out outputs on inputs `in`. On GB_OK out[k] hold the
 * results (free with gb_tensor_free); otherwise they are NULL. The status is
 * that of the first failing step (init, infer or forward).
 */
OH_FN gb_status run_op_n(const char *op_type, int opset, gb__attr *attrs, int n_attrs, gb_tensor **in,
                         int n_in, int n_out, int n_threads, gb_tensor **out) {
    oh_node t;
    for (int k = 0; k < n_out; k++) out[k] = NULL;
    gb_status st = oh_node_prepare(&t, op_type, opset, attrs, n_attrs, in, n_in, n_out, out);
    if (!st) st = oh_node_forward(&t, in, out, n_threads);
    if (st) free_tensors(out, n_out);
    oh_node_release(&t);
    return st;
}

/* The common single-output form. */
OH_FN gb_status run_op(const char *op_type, int opset, gb__attr *attrs, int n_attrs, gb_tensor **in,
                       int n_in, int n_threads, gb_tensor **out) {
    return run_op_n(op_type, opset, attrs, n_attrs, in, n_in, 1, n_threads, out);
}

/*
 * Forward, then backward with output gradient dy (shaped like output 0;
 * NULL = no gradient flows in), accumulating into din[k] for every non-NULL
 * din[k] (din may be NULL: nothing asked). *out receives the forward result
 * when out is non-NULL. GB_ERR_UNSUPPORTED if the op has no backward.
 */
OH_FN gb_status run_op_backward(const char *op_type, int opset, gb__attr *attrs, int n_attrs,
                                gb_tensor **in, int n_in, int n_threads, const gb_tensor *dy,
                                gb_tensor **din, gb_tensor **out) {
    oh_node t;
    gb_tensor *y[1] = {NULL};
    gb_status st = oh_node_prepare(&t, op_type, opset, attrs, n_attrs, in, n_in, 1, y);
    if (!st) st = oh_node_forward(&t, in, y, n_threads);
    if (!st) {
        if (!t.n.op->backward) {
            st = GB_ERR_UNSUPPORTED;
        } else {
            gb__exec ex = {.n_threads = n_threads, .ws = t.ws, .ws_size = t.ws_bytes};
            gb_tensor *dins[OH_MAX_IO] = {0};
            for (int k = 0; din && k < n_in; k++) dins[k] = din[k];
            const gb_tensor *douts[1] = {dy};
            if (dy) assert_int_equal(dy->numel, y[0]->numel);
            st = t.n.op->backward(&t.n, (const gb_tensor *const *)in, (const gb_tensor *const *)y,
                                  douts, dins, &ex);
        }
    }
    if (out && !st) *out = y[0];
    else gb_tensor_free(y[0]);
    oh_node_release(&t);
    return st;
}

/* L = <w, op(in)> in double (the scalar check_grad_fd differentiates). */
static double oh_loss(const char *op_type, int opset, gb__attr *attrs, int n_attrs, gb_tensor **in,
                      int n_in, const gb_tensor *w) {
    gb_tensor *y;
    assert_int_equal(run_op(op_type, opset, attrs, n_attrs, in, n_in, 1, &y), GB_OK);
    double L = 0;
    for (int64_t i = 0; i < y->numel; i++) L += (double)((float *)w->data)[i] * ((float *)y->data)[i];
    gb_tensor_free(y);
    return L;
}

/*
 * Finite-difference check of the backward for every float input k with bit
 * k set in `mask`: L = <w, y> with a random w, analytic dL/dx from backward
 * (run with n_threads), numeric from a central difference with step h on
 * each element. Passes when |an - fd| <= atol + rtol |fd| per element. Keep
 * inputs away from kinks by more than h.
 */
OH_FN void check_grad_fd(const char *op_type, int opset, gb__attr *attrs, int n_attrs, gb_tensor **in,
                         int n_in, unsigned mask, int n_threads, float h, double rtol, double atol) {
    gb_tensor *y;
    assert_int_equal(run_op(op_type, opset, attrs, n_attrs, in, n_in, 1, &y), GB_OK);
    gb_tensor *w = rand_f32(y->ndim, y->dims, -1.0f, 1.0f);
    gb_tensor *din[OH_MAX_IO] = {0};
    for (int k = 0; k < n_in; k++)
        if ((mask >> k & 1u) && in[k] && in[k]->dtype == GB_DTYPE_F32) din[k] = zeros_like(in[k]);
    assert_int_equal(run_op_backward(op_type, opset, attrs, n_attrs, in, n_in, n_threads, w, din, NULL),
                     GB_OK);
    for (int k = 0; k < n_in; k++) {
        if (!din[k]) continue;
        float *x = in[k]->data;
        for (int64_t e = 0; e < in[k]->numel; e++) {
            float x0 = x[e];
            x[e] = x0 + h;
            double lp = oh_loss(op_type, opset, attrs, n_attrs, in, n_in, w);
            x[e] = x0 - h;
            double lm = oh_loss(op_type, opset, attrs, n_attrs, in, n_in, w);
            x[e] = x0;
            /* the step actually taken, after float rounding of x0 +- h */
            double fd = (lp - lm) / ((double)(x0 + h) - (double)(x0 - h));
            double an = ((float *)din[k]->data)[e];
            if (!(fabs(an - fd) <= atol + rtol * fabs(fd)))
                fail_msg("%s opset %d: d/d input %d [%lld] (x = %g): backward %.7g, finite difference %.7g",
                         op_type, opset, k, (long long)e, x0, an, fd);
        }
    }
    free_tensors(din, OH_MAX_IO);
    gb_tensor_free(w);
    gb_tensor_free(y);
}

/* ---- 2. the op as a single-node gb_model ---------------------------------- */

typedef struct {
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;
    int n_in;
    int graph_index[OH_MAX_IO]; /* input k -> index among graph inputs, or -1 */
    const gb_tensor *graph_in[OH_MAX_IO];
    int n_graph_in;
} oh_model;

/* Names of input k and output k in the built model. */
static const char *oh_in_name(int k) {
    static const char *const names[OH_MAX_IO] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7",
                                                 "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15"};
    return names[k];
}
static const char *oh_out_name(int k) {
    static const char *const names[OH_MAX_IO] = {"y0", "y1", "y2", "y3", "y4", "y5", "y6", "y7",
                                                 "y8", "y9", "y10", "y11", "y12", "y13", "y14", "y15"};
    return names[k];
}

static int oh_onnx_type(gb_dtype dt) {
    return dt == GB_DTYPE_I64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
}

/* TensorProto viewing t's data (raw_data, little-endian as in memory). */
static void oh_tensor_proto(Onnx__TensorProto *tp, const gb_tensor *t, const char *name) {
    onnx__tensor_proto__init(tp);
    tp->name = (char *)name;
    tp->n_dims = (size_t)t->ndim;
    tp->dims = (int64_t *)t->dims;
    tp->has_data_type = 1;
    tp->data_type = oh_onnx_type(t->dtype);
    tp->has_raw_data = 1;
    tp->raw_data.len = (size_t)t->numel * gb_dtype_size(t->dtype);
    tp->raw_data.data = t->data;
}

/* Everything a ValueInfoProto with a full tensor type points to. */
typedef struct {
    Onnx__ValueInfoProto vi;
    Onnx__TypeProto tp;
    Onnx__TypeProto__Tensor tt;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dim[GB_MAX_DIMS];
    Onnx__TensorShapeProto__Dimension *dimp[GB_MAX_DIMS];
} oh_vinfo;

/* ndim < 0: shape unknown (graph outputs). */
static void oh_value_info(oh_vinfo *v, const char *name, gb_dtype dt, int ndim, const int64_t *dims) {
    onnx__value_info_proto__init(&v->vi);
    onnx__type_proto__init(&v->tp);
    onnx__type_proto__tensor__init(&v->tt);
    onnx__tensor_shape_proto__init(&v->shape);
    v->vi.name = (char *)name;
    v->vi.type = &v->tp;
    v->tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->tp.tensor_type = &v->tt;
    v->tt.has_elem_type = 1;
    v->tt.elem_type = oh_onnx_type(dt);
    if (ndim < 0) return;
    v->tt.shape = &v->shape;
    v->shape.n_dim = (size_t)ndim;
    v->shape.dim = v->dimp;
    for (int i = 0; i < ndim; i++) {
        onnx__tensor_shape_proto__dimension__init(&v->dim[i]);
        v->dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        v->dim[i].dim_value = dims[i];
        v->dimp[i] = &v->dim[i];
    }
}

/*
 * Build, load and plan a model with one node op_type (default-domain opset
 * `opset`): input k is in[k] (NULL: omitted, name ""), a graph input named
 * "x<k>" — or an initializer when bit k of init_mask is set. n_out outputs
 * "y<k>" of element type out_dtype. Returns the status of loading (init
 * errors) with the message on om->ctx; free with oh_model_free either way.
 */
OH_FN gb_status oh_model_build(oh_model *om, const char *op_type, int opset, const gb__attr *attrs,
                               int n_attrs, gb_tensor **in, int n_in, unsigned init_mask, int n_out,
                               gb_dtype out_dtype) {
    memset(om, 0, sizeof *om);
    assert_true(n_in <= OH_MAX_IO && n_out <= OH_MAX_IO && n_attrs <= 32);
    assert_int_equal(gb_ctx_create(&om->ctx), GB_OK);
    om->n_in = n_in;

    Onnx__AttributeProto ap[32], *app[32];
    Onnx__TensorProto atp[32];
    for (int i = 0; i < n_attrs; i++) {
        const gb__attr *a = &attrs[i];
        onnx__attribute_proto__init(&ap[i]);
        app[i] = &ap[i];
        ap[i].name = a->name;
        ap[i].has_type = 1;
        ap[i].type = (Onnx__AttributeProto__AttributeType)a->type;
        switch (a->type) {
        case GB_ATTR_FLOAT: ap[i].has_f = 1, ap[i].f = a->f; break;
        case GB_ATTR_INT: ap[i].has_i = 1, ap[i].i = a->i; break;
        case GB_ATTR_STRING:
            ap[i].has_s = 1;
            ap[i].s.data = (uint8_t *)a->s;
            ap[i].s.len = strlen(a->s);
            break;
        case GB_ATTR_FLOATS: ap[i].n_floats = (size_t)a->n, ap[i].floats = a->floats; break;
        case GB_ATTR_INTS: ap[i].n_ints = (size_t)a->n, ap[i].ints = a->ints; break;
        case GB_ATTR_TENSOR:
            oh_tensor_proto(&atp[i], a->t, "");
            ap[i].t = &atp[i];
            break;
        default: fail_msg("attribute %s: type %d not supported by the harness", a->name, a->type);
        }
    }
    char *in_names[OH_MAX_IO], *out_names[OH_MAX_IO];
    oh_vinfo gin[OH_MAX_IO], gout[OH_MAX_IO];
    Onnx__ValueInfoProto *ginp[OH_MAX_IO], *goutp[OH_MAX_IO];
    Onnx__TensorProto inits[OH_MAX_IO], *initp[OH_MAX_IO];
    size_t n_init = 0;
    for (int k = 0; k < n_in; k++) {
        om->graph_index[k] = -1;
        in_names[k] = (char *)(in[k] ? oh_in_name(k) : "");
        if (!in[k]) continue;
        if (init_mask >> k & 1u) {
            oh_tensor_proto(&inits[n_init], in[k], oh_in_name(k));
            initp[n_init] = &inits[n_init];
            n_init++;
        } else {
            oh_value_info(&gin[om->n_graph_in], oh_in_name(k), in[k]->dtype, in[k]->ndim, in[k]->dims);
            ginp[om->n_graph_in] = &gin[om->n_graph_in].vi;
            om->graph_index[k] = om->n_graph_in;
            om->graph_in[om->n_graph_in++] = in[k];
        }
    }
    for (int k = 0; k < n_out; k++) {
        out_names[k] = (char *)oh_out_name(k);
        oh_value_info(&gout[k], oh_out_name(k), out_dtype, -1, NULL);
        goutp[k] = &gout[k].vi;
    }
    Onnx__NodeProto node;
    Onnx__NodeProto *nodep = &node;
    onnx__node_proto__init(&node);
    node.name = (char *)"node0";
    node.op_type = (char *)op_type;
    node.n_input = (size_t)n_in;
    node.input = in_names;
    node.n_output = (size_t)n_out;
    node.output = out_names;
    node.n_attribute = (size_t)n_attrs;
    node.attribute = app;
    Onnx__GraphProto graph;
    onnx__graph_proto__init(&graph);
    graph.name = (char *)"single_node";
    graph.n_node = 1;
    graph.node = &nodep;
    graph.n_initializer = n_init;
    graph.initializer = initp;
    graph.n_input = (size_t)om->n_graph_in;
    graph.input = ginp;
    graph.n_output = (size_t)n_out;
    graph.output = goutp;
    Onnx__OperatorSetIdProto ops;
    Onnx__OperatorSetIdProto *opsp = &ops;
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = (char *)"";
    ops.has_version = 1;
    ops.version = opset;
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
    gb_status st = gb_model_load_buffer(om->ctx, buf, len, &om->m);
    free(buf);
    if (st) return st;
    assert_int_equal(gb_session_create(om->m, &om->s), GB_OK);
    gb_session_keep_activations(om->s, 1);
    return GB_OK;
}

/* Forward on the graph inputs (the in[k] given to oh_model_build, read at
 * call time: change their data between runs freely). */
OH_FN gb_status oh_model_run(oh_model *om) {
    return gb_session_run(om->s, om->graph_in, om->n_graph_in);
}

/* Backward from output 0 with the full upstream gradient `seed`. */
OH_FN gb_status oh_model_backward(oh_model *om, const gb_tensor *seed) {
    gb_seed sd = {.tensor = oh_out_name(0), .seed = seed};
    return gb_session_backward(om->s, &sd, NULL, 0);
}

/* Gradient w.r.t. input k of the last backward, or NULL (none reached it). */
OH_FN const gb_tensor *oh_model_grad(const oh_model *om, int k) {
    return gb_session_grad(om->s, oh_in_name(k));
}

OH_FN const gb_tensor *oh_model_output(const oh_model *om, int k) { return gb_session_output(om->s, k); }

OH_FN void oh_model_free(oh_model *om) {
    gb_session_free(om->s);
    gb_model_free(om->m);
    gb_ctx_free(om->ctx);
    memset(om, 0, sizeof *om);
}

#endif /* GB_TESTS_OP_HARNESS_H */
