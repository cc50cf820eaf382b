/*
 * glassbox.h — load a trained network (ONNX), run it, and explain it.
 *
 * A worked example (error checks shortened; every function returns a gb_status
 * and leaves a one-line message in the context, readable with gb_ctx_errmsg):
 *
 *     gb_ctx *ctx;      gb_ctx_create(&ctx);
 *     gb_model *model;  if (gb_model_load(ctx, "net.onnx", &model) != GB_OK)
 *                           fprintf(stderr, "%s\n", gb_ctx_errmsg(ctx));
 *     gb_session *s;    gb_session_create(model, &s);
 *     gb_tensor *x;     gb_npy_read(ctx, "x.npy", &x);
 *     const gb_tensor *in[1] = { x };
 *     gb_session_run(s, in, 1);                 // plans once per input shape
 *     const gb_tensor *logits = gb_session_output(s, 0);
 *     ...
 *     gb_tensor_free(x); gb_session_free(s); gb_model_free(model); gb_ctx_free(ctx);
 *
 * Ownership: every *_create / *_load / *_read has a matching *_free, and every
 * *_free accepts NULL. Tensors returned by a session are owned by the session
 * and stay valid until its next run or its free.
 *
 * Threading: a context carries the thread count (default 2); the library keeps
 * no global mutable state of its own. One session must not be run from two
 * threads at once; two sessions of one model may.
 */
#ifndef GLASSBOX_H
#define GLASSBOX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------- */

/* One X-macro list generates the enum and gb_status_str(). */
#define GB_STATUS_LIST(X)                                                   \
    X(GB_OK, "ok")                                                          \
    X(GB_ERR_IO, "cannot read or write a file")                             \
    X(GB_ERR_FORMAT, "malformed input file")                                \
    X(GB_ERR_UNSUPPORTED, "unsupported operator, type or attribute")        \
    X(GB_ERR_SHAPE, "shape mismatch")                                       \
    X(GB_ERR_ARG, "invalid argument")                                       \
    X(GB_ERR_NOMEM, "out of memory")                                        \
    X(GB_ERR_NOT_FOUND, "no such tensor, node or input")                    \
    X(GB_ERR_INTERNAL, "internal error")

typedef enum {
#define GB__STATUS_ENUM(name, text) name,
    GB_STATUS_LIST(GB__STATUS_ENUM)
#undef GB__STATUS_ENUM
    GB_STATUS_COUNT
} gb_status;

/* Static description of a status code (never NULL). */
const char *gb_status_str(gb_status s);

/* ---- context ------------------------------------------------------------ */

typedef struct gb_ctx gb_ctx;

/* Create a context with 2 threads. Returns GB_ERR_NOMEM on failure. */
gb_status gb_ctx_create(gb_ctx **out);
void gb_ctx_free(gb_ctx *ctx);
/* The message of the most recent failure on this context ("" if none).
 * Owned by the context; valid until the next failing call. */
const char *gb_ctx_errmsg(const gb_ctx *ctx);
/* Threads used by kernels and by BLAS (>= 1). */
gb_status gb_ctx_set_threads(gb_ctx *ctx, int n_threads);
int gb_ctx_threads(const gb_ctx *ctx);
/* Cap the activation, workspace and gradient memory one plan may reserve
 * (bytes; 0 = no cap, the default). A plan over the cap fails with
 * GB_ERR_NOMEM and a message giving the size — useful against hostile
 * models whose attributes ask for gigabytes. */
void gb_ctx_set_mem_limit(gb_ctx *ctx, size_t bytes);

/* ---- tensors ------------------------------------------------------------ */

#define GB_MAX_DIMS 8

/* Element types. Values follow ONNX TensorProto.DataType so they can be
 * printed and compared against ONNX files directly. */
typedef enum {
    GB_DTYPE_UNDEFINED = 0,
    GB_DTYPE_F32 = 1,
    GB_DTYPE_U8 = 2,
    GB_DTYPE_I64 = 7,
    GB_DTYPE_F64 = 11,
} gb_dtype;

/* Size in bytes of one element, 0 for an unknown type. */
size_t gb_dtype_size(gb_dtype t);
const char *gb_dtype_name(gb_dtype t);

/* A dense, C-ordered tensor. Transparent so kernels and callers can read it;
 * create and free it with the functions below. */
typedef struct gb_tensor {
    gb_dtype dtype;
    int ndim;                   /* 0 for a scalar */
    int64_t dims[GB_MAX_DIMS];
    int64_t numel;              /* product of dims (1 for a scalar) */
    void *data;                 /* numel * gb_dtype_size(dtype) bytes */
} gb_tensor;

/* Allocate a zero-filled tensor. dims may be NULL when ndim == 0. */
gb_status gb_tensor_create(gb_ctx *ctx, gb_dtype dtype, int ndim, const int64_t *dims,
                           gb_tensor **out);
/* Deep copy. */
gb_status gb_tensor_clone(gb_ctx *ctx, const gb_tensor *src, gb_tensor **out);
void gb_tensor_free(gb_tensor *t);
/* "1x3x224x224" into buf (always NUL-terminated). */
void gb_shape_str(int ndim, const int64_t *dims, char *buf, size_t cap);

/* ---- .npy files ---------------------------------------------------------- */

/* Read a NumPy .npy file (format 1.0/2.0/3.0, little-endian float32, float64,
 * int64 or uint8, C order). Every header field is validated against the file
 * size before any data is read. */
gb_status gb_npy_read(gb_ctx *ctx, const char *path, gb_tensor **out);
/* Parse an in-memory .npy image (same rules). */
gb_status gb_npy_parse(gb_ctx *ctx, const void *buf, size_t len, gb_tensor **out);
/* Write a .npy (format 1.0) atomically: to a temporary name, then rename, so
 * a failure never leaves a partial file at `path`. */
gb_status gb_npy_write(gb_ctx *ctx, const char *path, const gb_tensor *t);
/* Convert in place to another element type (f32<->f64<->i64<->u8). */
gb_status gb_tensor_cast(gb_ctx *ctx, gb_tensor *t, gb_dtype to);

/* ---- models -------------------------------------------------------------- */

typedef struct gb_model gb_model;

/* Load an ONNX model. Fails with GB_ERR_UNSUPPORTED naming every unsupported
 * op type and node in one message, GB_ERR_FORMAT on a malformed file. */
gb_status gb_model_load(gb_ctx *ctx, const char *path, gb_model **out);
gb_status gb_model_load_buffer(gb_ctx *ctx, const void *buf, size_t len, gb_model **out);
void gb_model_free(gb_model *m);

/* A graph input or output as declared in the file; symbolic or unknown
 * dimensions are reported as -1. */
typedef struct {
    const char *name;
    gb_dtype dtype;
    int ndim;
    int64_t dims[GB_MAX_DIMS];
} gb_value_info;

int gb_model_num_inputs(const gb_model *m);   /* excludes initializers */
int gb_model_num_outputs(const gb_model *m);
gb_status gb_model_input(const gb_model *m, int i, gb_value_info *out);
gb_status gb_model_output(const gb_model *m, int i, gb_value_info *out);
int gb_model_num_nodes(const gb_model *m);
/* Node i in execution (topological) order. Strings are owned by the model. */
typedef struct {
    const char *name;
    const char *op_type;
    int n_inputs, n_outputs;
    const char *const *inputs;   /* "" for an omitted optional input */
    const char *const *outputs;
} gb_node_info;
gb_status gb_model_node(const gb_model *m, int i, gb_node_info *out);
/* Total number of float parameters (initializer elements). */
int64_t gb_model_param_count(const gb_model *m);
int gb_model_opset(const gb_model *m);

/* ---- sessions: plan once per input shape, run many times ---------------- */

typedef struct gb_session gb_session;

gb_status gb_session_create(gb_model *m, gb_session **out);
void gb_session_free(gb_session *s);

/* Plan for these input shapes without running: infers every shape, evaluates
 * shape-computing subgraphs, and reserves activation memory once. Called
 * implicitly by gb_session_run when the shapes change. */
gb_status gb_session_plan(gb_session *s, const gb_tensor *const *inputs, int n_inputs);
/* Run forward. inputs[i] corresponds to gb_model_input(i); float64 inputs are
 * not converted implicitly — pass the dtype the model declares. */
gb_status gb_session_run(gb_session *s, const gb_tensor *const *inputs, int n_inputs);
/* Output i of the last run (owned by the session). NULL before a run. */
const gb_tensor *gb_session_output(const gb_session *s, int i);

/* Per-node facts of the current plan (after gb_session_plan or _run). */
typedef struct {
    int n_outputs;
    int ndim[4];                 /* shapes of the first up-to-4 outputs */
    int64_t dims[4][GB_MAX_DIMS];
    int64_t params;              /* initializer elements this node reads */
    double flops;                /* multiply-adds count as 2 */
    int folded;                  /* evaluated once at plan time (shape math) */
} gb_node_plan;
gb_status gb_session_node_plan(const gb_session *s, int i, gb_node_plan *out);
/* Bytes of activation memory the plan reserved (after buffer reuse), and the
 * sum of all activation sizes (without reuse). */
void gb_session_memory(const gb_session *s, size_t *reserved, size_t *total);

/* ---- tensors by name, and the backward pass ------------------------------ */

/* The tensor named `name` (an ONNX value name, as `glassbox info` shows, or a
 * node name, meaning that node's first output) from the last run: any graph
 * input, initializer or intermediate activation.
 * Intermediate activations are only guaranteed to hold their values when
 * the session keeps activations (gb_session_keep_activations); without it,
 * buffers are reused and NULL is returned for tensors that were overwritten.
 * The pointer is owned by the session and valid until its next run. */
const gb_tensor *gb_session_tensor(const gb_session *s, const char *name);

/* Keep every activation of the next runs alive (no buffer reuse): needed for
 * gb_session_tensor on intermediates and for gb_session_backward. */
void gb_session_keep_activations(gb_session *s, int keep);

/* Compute gradients with respect to parameters (initializers) too. Off by
 * default: explanations need only input gradients. When on, the plan does
 * not fold nodes that read float initializers, so gradients reach them. */
void gb_session_param_grads(gb_session *s, int enable);

/* Where the backward pass starts. Exactly one of seed / classes / element
 * is used, in that order of precedence. */
typedef struct {
    const char *tensor;      /* tensor to differentiate; NULL = graph output 0 */
    const gb_tensor *seed;   /* full upstream gradient, same shape as tensor */
    const int64_t *classes;  /* one index per batch item: d tensor[n, classes[n]] */
    int64_t element;         /* flat element index (when seed and classes are NULL) */
    /* Optional: the one tensor whose gradient is wanted (NULL = every graph
     * input and, with gb_session_param_grads, parameter). The pass then
     * stops there: only tensors between it and the seed get gradients (a
     * Grad-CAM layer near the head costs a few nodes, not the network), and
     * gb_session_grad returns NULL for the others. */
    const char *wrt;
} gb_seed;

/* A replacement backward for one op type or one node, for one backward pass
 * (Guided Backprop, DeconvNet, LRP and DeepLIFT are built on this).
 *
 * The call describes the node: its forward inputs (including weights) and
 * outputs, the same at the reference input when one was run (DeepLIFT;
 * NULL otherwise), the incoming gradient (relevance) per output (NULL where
 * none flows) and the buffers to ACCUMULATE (+=) into per input (NULL where
 * no gradient is needed). gb_rule_forward and gb_rule_default let a rule
 * reuse the op's own forward and backward with substituted tensors (e.g.
 * LRP's positive weights). */
typedef struct gb_rule_call {
    const char *op_type;
    const char *node_name;
    int n_in, n_out;
    const gb_tensor *const *in;
    const gb_tensor *const *out;
    const gb_tensor *const *ref_in;   /* NULL unless a reference run exists */
    const gb_tensor *const *ref_out;
    const gb_tensor *const *grad_out;
    gb_tensor *const *grad_in;
    void *impl_;                      /* engine-private */
} gb_rule_call;

typedef gb_status (*gb_rule_fn)(void *user, const gb_rule_call *call);

typedef struct {
    const char *op_type;     /* match every node of this type, or NULL */
    const char *node;        /* match this node name (wins over op_type), or NULL */
    gb_rule_fn fn;
    void *user;
} gb_rule;

/* Run the op's forward on `in` (NULL entries: the node's own inputs) into
 * `out` (tensors the caller allocated with the node's output shapes). */
gb_status gb_rule_forward(const gb_rule_call *call, const gb_tensor *const *in, gb_tensor *const *out);
/* Run the op's standard backward with substituted forward inputs and/or
 * incoming gradients (NULL arrays or entries: the call's own), accumulating
 * into `grad_in` (NULL: the call's own buffers). */
gb_status gb_rule_default(const gb_rule_call *call, const gb_tensor *const *in,
                          const gb_tensor *const *grad_out, gb_tensor *const *grad_in);

/* Reverse-mode pass after gb_session_run (with activations kept). Gradients
 * of every tensor between the graph inputs (and parameters, if enabled) and
 * the seed tensor become readable with gb_session_grad. `rules` may be NULL. */
gb_status gb_session_backward(gb_session *s, const gb_seed *seed, const gb_rule *rules, int n_rules);

/* Run forward on a reference input (DeepLIFT's baseline) and keep a copy of
 * every activation, so that backward rules see them as ref_in / ref_out.
 * The inputs must have the shapes of the next gb_session_run; the copy is
 * dropped when the plan changes. Requires kept activations. */
gb_status gb_session_run_reference(gb_session *s, const gb_tensor *const *inputs, int n_inputs);

/* Gradient of the seed w.r.t. the named tensor from the last backward pass;
 * NULL if no gradient reached it (not on a path to the seed, or constant). */
const gb_tensor *gb_session_grad(const gb_session *s, const char *name);

/* The Guided Backprop (Springenberg et al. 2015) and DeconvNet (Zeiler &
 * Fergus 2014) rules for Relu, ready to pass to gb_session_backward. */
gb_rule gb_rule_guided_relu(void);
gb_rule gb_rule_deconvnet_relu(void);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_H */
