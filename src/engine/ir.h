/*
 * ir.h — glassbox's internal graph IR and the operator interface.
 *
 * A gb_model holds a graph imported from ONNX: tensor definitions (names,
 * initializer data) and nodes in topological order. A gb_session holds a plan
 * for one set of input shapes: a gb_tensor per tensor id with its shape and a
 * data pointer (into the initializer, the folded-constant store, or the
 * activation arena).
 *
 * Adding an operator: see src/ops/TEMPLATE.md. In short, write one
 * `const gb__op gb__op_<Name>` in the file of its family with the callbacks
 * below, and add one line to src/ops/registry.c.
 */
#ifndef GB_ENGINE_IR_H
#define GB_ENGINE_IR_H

#include "glassbox/glassbox.h"
#include <stdbool.h>
#include <stdio.h>

/* ---- context ------------------------------------------------------------ */

struct gb_ctx {
    char errmsg[4096];
    int n_threads;
    size_t mem_limit;      /* 0 = unlimited */
    void *dnnl_engine;     /* oneDNN engine and stream (src/ops/conv_dnnl.c), */
    void *dnnl_stream;     /* NULL when oneDNN is not built in or turned off */
};

/* Record a formatted message on ctx and return `st`. Never prints. */
gb_status gb__err(gb_ctx *ctx, gb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Read a whole file into a malloc'd buffer (*buf, *len; one spare byte, set
 * to 0, so text can be parsed as a C string). Reads to EOF, so pipes work
 * and a directory fails with EISDIR. Files over `max` bytes are refused
 * with GB_ERR_UNSUPPORTED. Errors are "<what>: <path>: ..." messages:
 * GB_ERR_IO with strerror (the errno of a failed open is left in
 * *open_errno when not NULL, so callers can tell a missing file apart),
 * GB_ERR_NOMEM. */
gb_status gb__io_read_file(gb_ctx *ctx, const char *what, const char *path, size_t max,
                           unsigned char **buf, size_t *len, int *open_errno);
/* Write len bytes to path atomically (temporary name, fsync, rename): no
 * partial file is ever left under path. what names the file kind in errors. */
gb_status gb__io_write_file(gb_ctx *ctx, const char *what, const char *path, const void *data, size_t len);

/* ---- attributes ---------------------------------------------------------- */

typedef enum {
    GB_ATTR_FLOAT = 1, GB_ATTR_INT = 2, GB_ATTR_STRING = 3, GB_ATTR_TENSOR = 4,
    GB_ATTR_FLOATS = 6, GB_ATTR_INTS = 7, GB_ATTR_STRINGS = 8,
} gb__attr_type;  /* values follow onnx AttributeProto.AttributeType */

typedef struct {
    char *name;
    gb__attr_type type;
    float f;
    int64_t i;
    char *s;               /* NUL-terminated copy of a STRING attribute */
    int n;                 /* element count of FLOATS / INTS */
    float *floats;
    int64_t *ints;
    gb_tensor *t;          /* TENSOR attribute (Constant's value) */
} gb__attr;

/* ---- nodes --------------------------------------------------------------- */

typedef struct gb__op gb__op;

typedef struct gb__node {
    char *name;            /* ONNX node name, or "<op_type>_<index>" if empty */
    char *op_type;
    const gb__op *op;
    int opset;             /* opset version of the default domain */
    int n_in, n_out;
    int *in;               /* tensor ids; -1 for an omitted optional input */
    int *out;
    int n_attrs;
    gb__attr *attrs;
    void *params;          /* op-specific struct filled by op->init */
    uint32_t const_inputs; /* op->const_inputs; init may change it per node */
} gb__node;

/* Attribute lookup for op->init. An attribute that is absent, or present
 * with another type, yields the default (or -1 for the array forms). */
const gb__attr *gb__attr_find(const gb__node *n, const char *name);
int64_t gb__attr_int(const gb__node *n, const char *name, int64_t dflt);
float gb__attr_float(const gb__node *n, const char *name, float dflt);
const char *gb__attr_str(const gb__node *n, const char *name, const char *dflt);
/* INTS attribute: returns its length (or -1 if absent), copies up to cap. */
int gb__attr_ints(const gb__node *n, const char *name, int64_t *out, int cap);
int gb__attr_floats(const gb__node *n, const char *name, float *out, int cap);

/* ---- execution environment passed to kernels ----------------------------- */

typedef struct {
    int n_threads;
    void *ws;              /* scratch of at least the bytes op->infer asked for */
    size_t ws_size;
    void *dnnl_engine;     /* the context's oneDNN engine and stream, or NULL */
    void *dnnl_stream;     /* (kernels then use their own code paths) */
} gb__exec;

/* The execution environment of a context: its threads and oneDNN handles. */
#define GB__EXEC_INIT(ctx_, ws_, ws_size_)                                               \
    ((gb__exec){.n_threads = (ctx_)->n_threads, .ws = (ws_), .ws_size = (ws_size_),      \
                .dnnl_engine = (ctx_)->dnnl_engine, .dnnl_stream = (ctx_)->dnnl_stream})

/* ---- the operator interface --------------------------------------------- */

/*
 * init:    validate arity and attributes, allocate and fill node->params
 *          (freed with free()). Runs once at load. Must name the node in any
 *          error: gb__err(ctx, ..., "%s (%s): ...", n->name, n->op_type).
 * Omitted optional inputs and outputs (empty names; id -1) reach infer,
 * forward and backward as NULL pointers.
 * infer:   given input tensors with dtype and shape set (and ->data non-NULL
 *          when the input is known at plan time: an initializer or a folded
 *          constant), set each output's dtype, ndim and dims. May read the
 *          data of constant inputs (Reshape's shape, Slice's starts...) and
 *          must fail with a message if a needed input is not constant.
 *          *ws_bytes may be raised to request scratch memory for forward.
 *          *flops may be set (multiply-add = 2).
 * forward: compute outputs from inputs. out[i]->data is preallocated with
 *          the inferred size. Kernels may not allocate. Returns GB_OK, or an
 *          error for conditions that only data reveals (index out of range).
 * alias:   optional; if true the op is a pure view (Reshape, Flatten,
 *          Squeeze, Unsqueeze, Identity, Dropout): output 0 shares input 0's
 *          data and forward is not called.
 * const_inputs: bit k set when infer reads input k's VALUES (a shape,
 *          axes, scales...). A graph input feeding such a position is then
 *          planned by value: the plan is redone when its values change.
 * shape_only: optional; true when the outputs depend only on input shapes
 *          (Shape): the node is then always evaluated at plan time.
 * backward: vector-Jacobian product. Given the forward inputs and outputs
 *          (all kept alive) and dout[k], the gradient of the scalar being
 *          differentiated w.r.t. output k (NULL when nothing flows into that
 *          output), ACCUMULATE (+=) into din[k] for every input k whose
 *          din[k] is non-NULL; din[k] has in[k]'s shape. Entries are NULL
 *          for inputs nobody asked about (weights, unless parameter
 *          gradients were requested), so skip that work. Scratch memory for
 *          backward must be included in the ws_bytes that infer requests.
 *          NULL for ops that are not differentiable (integer shape math);
 *          views (alias ops) are handled by the engine (din += dout).
 *          Convention at kinks (written down because attribution methods
 *          depend on it): Relu'(0) = 0; MaxPool sends the gradient to the
 *          first maximum in scan order; ReduceMax/ReduceMin split it evenly
 *          among ties (torch.amax); Hardmax's gradient is zero; Abs'(0) = 0;
 *          Clip passes the
 *          gradient where min <= x <= max (inclusive, like PyTorch).
 */
struct gb__op {
    const char *name;
    gb_status (*init)(gb_ctx *ctx, gb__node *n);
    gb_status (*infer)(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                       gb_tensor **out, size_t *ws_bytes, double *flops);
    gb_status (*forward)(const gb__node *n, const gb_tensor *const *in,
                         gb_tensor *const *out, const gb__exec *ex);
    bool alias;
    bool shape_only;
    uint32_t const_inputs;
    gb_status (*backward)(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                          const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex);
};

/* Registry lookup by ONNX op_type (default domain); NULL if unsupported. */
const gb__op *gb__op_lookup(const char *op_type);

/* ---- model --------------------------------------------------------------- */

typedef struct {
    char *name;
    gb_tensor *init;       /* initializer / constant data, or NULL */
    gb_value_info decl;    /* declared dtype and shape (inputs, outputs) */
    int producer;          /* node index, -1 for inputs and initializers */
} gb__tensor_def;

struct gb_model {
    gb_ctx *ctx;
    int opset;
    int n_tensors;
    gb__tensor_def *tensors;
    int n_nodes;
    gb__node *nodes;       /* topological order */
    int n_inputs, n_outputs;
    int *inputs;           /* tensor ids of non-initializer graph inputs */
    int *outputs;
    const char **node_in_names;  /* flat storage behind gb_node_info */
    const char **node_out_names;
    int *node_name_off;
};

/* Tensor id by name, -1 if unknown. */
int gb__model_tensor_id(const gb_model *m, const char *name);

/* ---- small helpers shared by ops ---------------------------------------- */

static inline int64_t gb__numel(int ndim, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    return n;
}

/* Set dtype/shape and numel of a plan tensor. */
static inline void gb__set_shape(gb_tensor *t, gb_dtype dt, int ndim, const int64_t *dims) {
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
    t->numel = gb__numel(ndim, dims);
}

#endif /* GB_ENGINE_IR_H */
