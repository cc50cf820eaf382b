/*
 * shape.c — views and shape-level ops: Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity, Dropout (inference), Shape, Constant, ConstantOfShape, Cast.
 *
 * The views (alias = true) never run a kernel: the engine makes output 0
 * share input 0's buffer, so all their work is shape inference. Their forward
 * only copies when given distinct buffers, so they can also be run directly
 * (unit tests, or an engine that evaluates a view on constants).
 *
 * Data-movement kernels (Transpose, Expand, Slice, Gather, Concat, Split,
 * Pad) live in index.c.
 *
 * Opset differences handled here (ONNX operator changelog):
 *   Reshape   opset 1-4 'shape' attribute; 5+ 'shape' input; 14 adds allowzero.
 *   Squeeze   opset 1-12 'axes' attribute; 13+ optional 'axes' input;
 *             negative axes from 11.
 *   Unsqueeze opset 1-12 'axes' attribute; 13+ 'axes' input.
 *   Dropout   opset 1-6 is_test (ignored: always inference); 7-11 'ratio'
 *             attribute; 12+ 'ratio' and 'training_mode' inputs.
 *   Shape     opset 15 adds start/end.
 *   Constant  opset 1-11 'value' tensor; 12+ also value_float(s)/value_int(s).
 *   Cast      opset 1-5 'to' is a string ("FLOAT"); 6+ an int (TensorProto
 *             data type).
 *
 * Backward: the views need none (the engine adds dy to dx for alias ops);
 * Cast float -> float is the identity; Shape, Constant and ConstantOfShape
 * produce values that do not depend on any float input's values, so they
 * have no backward (NULL: non-differentiable).
 */
#include "ops/const_input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ONNX TensorProto.DataType names, for messages. */
static const char *onnx_type_name(int64_t t) {
    static const char *const names[] = {
        "UNDEFINED", "FLOAT",  "UINT8",   "INT8",   "UINT16",    "INT16",      "INT32",  "INT64",
        "STRING",    "BOOL",   "FLOAT16", "DOUBLE", "UINT32",    "UINT64",     "COMPLEX64",
        "COMPLEX128", "BFLOAT16"};
    return t >= 0 && t < (int64_t)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

/* Copy input 0 to output 0 when they are distinct buffers (views). */
static gb_status view_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                              const gb__exec *ex) {
    size_t bytes = (size_t)in[0]->numel * gb_dtype_size(in[0]->dtype);
    if (out[0]->data != in[0]->data && bytes) memmove(out[0]->data, in[0]->data, bytes);
    return GB_OK;
}

static gb_status alloc_params(gb_ctx *ctx, gb__node *n, size_t size) {
    n->params = calloc(1, size);
    if (!n->params) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    return GB_OK;
}

/* ---- Reshape -------------------------------------------------------------- */
/*
 * Output shape from the 'shape' input (attribute before opset 5). An entry 0
 * copies the input dimension at the same index (unless allowzero=1, opset 14,
 * where 0 is a real zero-size dimension); one entry may be -1 and is inferred
 * so the element count is preserved.
 */
typedef struct {
    int allowzero;
    int n_shape;                 /* -1 unless the opset<5 attribute is used */
    int64_t shape[GB_MAX_DIMS];
} reshape_params;

static gb_status reshape_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, n->opset < 5 ? 1 : 2, 2, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(reshape_params)))) return st;
    reshape_params *p = n->params;
    p->allowzero = (int)gb__attr_int(n, "allowzero", 0);
    p->n_shape = -1;
    if (n->opset < 5) {
        p->n_shape = gb__attr_ints(n, "shape", p->shape, GB_MAX_DIMS);
        if (p->n_shape < 0)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'shape' attribute", n->name, n->op_type);
        if (p->n_shape > GB_MAX_DIMS)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): %d dimensions (at most %d)", n->name,
                           n->op_type, p->n_shape, GB_MAX_DIMS);
    }
    return GB_OK;
}

static gb_status reshape_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                               size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const reshape_params *p = n->params;
    const gb_tensor *x = in[0];
    int64_t shape[GB_MAX_DIMS];
    int ns = p->n_shape;
    if (ns >= 0) {
        memcpy(shape, p->shape, sizeof shape);
    } else {
        gb_status st = gb__const_ints(ctx, n, in, 1, "shape", shape, GB_MAX_DIMS, &ns);
        if (st) return st;
        if (ns < 0)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'shape' input", n->name, n->op_type);
    }
    char xs[128], ss[128];
    gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
    int infer_at = -1;
    int64_t known = 1; /* product of the dims other than -1 */
    int64_t dims[GB_MAX_DIMS];
    for (int i = 0; i < ns; i++) {
        int64_t d = shape[i];
        if (d == 0 && !p->allowzero) {
            if (i >= x->ndim)
                return gb__err(ctx, GB_ERR_SHAPE,
                               "%s (%s): shape entry %d is 0 (copy the input dimension) but the input %s "
                               "has only %d dimensions",
                               n->name, n->op_type, i, xs, x->ndim);
            d = x->dims[i];
        } else if (d == -1) {
            if (infer_at >= 0)
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): more than one -1 in the target shape", n->name,
                               n->op_type);
            infer_at = i;
            dims[i] = 1;
            continue;
        } else if (d < 0) {
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): invalid target dimension %lld", n->name, n->op_type,
                           (long long)d);
        }
        dims[i] = d;
    }
    gb_status st = gb__check_size(ctx, n, ns, dims);
    if (st) return st;
    for (int i = 0; i < ns; i++) known *= dims[i];
    if (infer_at >= 0) {
        if (known == 0 || x->numel % known)
            return gb__err(ctx, GB_ERR_SHAPE,
                           "%s (%s): cannot infer the -1 dimension: %lld elements of input %s do not "
                           "divide into the other dimensions (product %lld)",
                           n->name, n->op_type, (long long)x->numel, xs, (long long)known);
        dims[infer_at] = x->numel / known;
        known *= dims[infer_at];
    }
    if (known != x->numel) {
        gb_shape_str(ns, dims, ss, sizeof ss);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): cannot reshape %s (%lld elements) to %s (%lld elements)",
                       n->name, n->op_type, xs, (long long)x->numel, ss, (long long)known);
    }
    gb__set_shape(out[0], x->dtype, ns, dims);
    return GB_OK;
}

const gb__op gb__op_Reshape = {.name = "Reshape", .init = reshape_init, .infer = reshape_infer,
                               .forward = view_forward, .alias = true, .const_inputs = 1u << 1};

/* ---- Flatten -------------------------------------------------------------- */
/*
 * (d0..d{r-1}) -> (d0*..*d{axis-1}, d{axis}*..*d{r-1}); axis in [-r, r]
 * (negative from opset 11), default 1. axis 0 gives (1, numel).
 */
typedef struct {
    int64_t axis;
} flatten_params;

static gb_status flatten_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(flatten_params)))) return st;
    ((flatten_params *)n->params)->axis = gb__attr_int(n, "axis", 1);
    return GB_OK;
}

static gb_status flatten_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                               size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const gb_tensor *x = in[0];
    int64_t axis = ((const flatten_params *)n->params)->axis;
    if (axis < -x->ndim || axis > x->ndim) {
        char xs[128];
        gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for input %s", n->name, n->op_type,
                       (long long)axis, xs);
    }
    if (axis < 0) axis += x->ndim;
    int64_t dims[2] = {gb__numel((int)axis, x->dims), gb__numel(x->ndim - (int)axis, x->dims + axis)};
    gb__set_shape(out[0], x->dtype, 2, dims);
    return GB_OK;
}

const gb__op gb__op_Flatten = {.name = "Flatten", .init = flatten_init, .infer = flatten_infer,
                               .forward = view_forward, .alias = true};

/* ---- Squeeze / Unsqueeze ---------------------------------------------------- */
/*
 * Squeeze removes the listed size-1 axes (all size-1 axes if none are given;
 * a listed axis that is not 1 is an error). Unsqueeze inserts size-1 axes at
 * the listed positions of the OUTPUT (rank r + len(axes)), in any order;
 * negative axes count from the end of the output. axes: attribute before
 * opset 13, input 1 from 13 (optional for Squeeze).
 */
typedef struct {
    int n_axes;                  /* attribute form; -1 if absent */
    int64_t axes[GB_MAX_DIMS];
} axes_params;

static gb_status axes_init(gb_ctx *ctx, gb__node *n, int need) {
    bool from_input = n->opset >= 13;
    gb_status st = gb__check_arity(ctx, n, 1 + (from_input && need), from_input ? 2 : 1, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(axes_params)))) return st;
    axes_params *p = n->params;
    p->n_axes = -1;
    if (!from_input) {
        p->n_axes = gb__attr_ints(n, "axes", p->axes, GB_MAX_DIMS);
        if (p->n_axes > GB_MAX_DIMS)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): %d axes (at most %d)", n->name, n->op_type,
                           p->n_axes, GB_MAX_DIMS);
        if (p->n_axes < 0 && need)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'axes' attribute", n->name, n->op_type);
    }
    return GB_OK;
}

static gb_status squeeze_init(gb_ctx *ctx, gb__node *n) { return axes_init(ctx, n, 0); }
static gb_status unsqueeze_init(gb_ctx *ctx, gb__node *n) { return axes_init(ctx, n, 1); }

/* The axes from the attribute or from constant input 1; *na = -1 if none. */
static gb_status get_axes(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, int64_t *axes, int *na) {
    const axes_params *p = n->params;
    if (n->opset < 13) {
        *na = p->n_axes;
        memcpy(axes, p->axes, sizeof p->axes);
        return GB_OK;
    }
    return gb__const_ints(ctx, n, in, 1, "axes", axes, GB_MAX_DIMS, na);
}

static gb_status squeeze_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                               size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const gb_tensor *x = in[0];
    int64_t axes[GB_MAX_DIMS];
    int na;
    gb_status st = get_axes(ctx, n, in, axes, &na);
    if (st) return st;
    char xs[128];
    gb_shape_str(x->ndim, x->dims, xs, sizeof xs);
    bool drop[GB_MAX_DIMS] = {false};
    if (na <= 0) { /* absent or empty: every size-1 axis (as ONNX Runtime does) */
        for (int i = 0; i < x->ndim; i++) drop[i] = x->dims[i] == 1;
    } else {
        for (int k = 0; k < na; k++) {
            int a = gb__axis(axes[k], x->ndim);
            if (a < 0)
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for input %s", n->name,
                               n->op_type, (long long)axes[k], xs);
            if (x->dims[a] != 1)
                return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): cannot squeeze axis %d of input %s (size %lld, not 1)",
                               n->name, n->op_type, a, xs, (long long)x->dims[a]);
            drop[a] = true;
        }
    }
    int64_t dims[GB_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!drop[i]) dims[nd++] = x->dims[i];
    gb__set_shape(out[0], x->dtype, nd, dims);
    return GB_OK;
}

static gb_status unsqueeze_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                                 size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const gb_tensor *x = in[0];
    int64_t axes[GB_MAX_DIMS];
    int na;
    gb_status st = get_axes(ctx, n, in, axes, &na);
    if (st) return st;
    if (na < 0) return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'axes' input", n->name, n->op_type);
    int r = x->ndim + na;
    if (r > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): output would have %d dimensions (at most %d)",
                       n->name, n->op_type, r, GB_MAX_DIMS);
    bool ins[GB_MAX_DIMS] = {false};
    for (int k = 0; k < na; k++) {
        int a = gb__axis(axes[k], r);
        if (a < 0)
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %lld out of range for an output of rank %d",
                           n->name, n->op_type, (long long)axes[k], r);
        if (ins[a])
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): axis %d listed twice", n->name, n->op_type, a);
        ins[a] = true;
    }
    int64_t dims[GB_MAX_DIMS];
    for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    gb__set_shape(out[0], x->dtype, r, dims);
    return GB_OK;
}

const gb__op gb__op_Squeeze = {.name = "Squeeze", .init = squeeze_init, .infer = squeeze_infer,
                               .forward = view_forward, .alias = true, .const_inputs = 1u << 1};
const gb__op gb__op_Unsqueeze = {.name = "Unsqueeze", .init = unsqueeze_init, .infer = unsqueeze_infer,
                                 .forward = view_forward, .alias = true, .const_inputs = 1u << 1};

/* ---- Identity / Dropout ------------------------------------------------------ */

static gb_status identity_init(gb_ctx *ctx, gb__node *n) { return gb__check_arity(ctx, n, 1, 1, 1, 1); }

static gb_status same_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                            size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    gb__set_shape(out[0], in[0]->dtype, in[0]->ndim, in[0]->dims);
    return GB_OK;
}

const gb__op gb__op_Identity = {.name = "Identity", .init = identity_init, .infer = same_infer,
                                .forward = view_forward, .alias = true};

/*
 * Dropout at inference is the identity; 'ratio' (attribute or input 1) is
 * ignored. The optional mask output is not supported (it would be all true in
 * inference, but nothing here produces bool tensors). From opset 12 a
 * 'training_mode' input may switch on random dropping: refused unless it is a
 * constant false. Before opset 7, is_test=0 nominally meant training; models
 * exported for inference rarely set it, so it is ignored.
 */
static gb_status dropout_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, n->opset >= 12 ? 3 : 1, 1, 2);
    if (st) return st;
    if (n->n_out > 1 && n->out[1] >= 0)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): the optional 'mask' output is not supported",
                       n->name, n->op_type);
    return GB_OK;
}

static gb_status dropout_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                               size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    if (n->opset >= 12 && gb__has_input(n, in, 2)) {
        const gb_tensor *t = in[2];
        if (!t->data)
            return gb__err(ctx, GB_ERR_UNSUPPORTED,
                           "%s (%s): training-mode Dropout: 'training_mode' input is not a plan-time constant",
                           n->name, n->op_type);
        if (t->numel != 1 || (t->dtype != GB_DTYPE_F32 && t->dtype != GB_DTYPE_I64))
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): 'training_mode' must be a scalar", n->name, n->op_type);
        if (gb__value_at(t, 0) != 0)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): training-mode Dropout is not supported",
                           n->name, n->op_type);
    }
    return same_infer(ctx, n, in, out, ws, flops);
}

const gb__op gb__op_Dropout = {.name = "Dropout", .init = dropout_init, .infer = dropout_infer,
                               .forward = view_forward, .alias = true, .const_inputs = 1u << 2};

/* ---- Shape ----------------------------------------------------------------- */
/*
 * 1-D int64 tensor of the input's dimensions. Opset 15: start/end select a
 * slice dims[start:end]; negative values count from the end and both are
 * clamped to [0, r] (an empty result is allowed).
 */
typedef struct {
    int64_t start, end;
    bool has_end;
} shape_params;

static gb_status shape_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(shape_params)))) return st;
    shape_params *p = n->params;
    p->start = gb__attr_int(n, "start", 0);
    p->has_end = gb__attr_find(n, "end") != NULL;
    p->end = gb__attr_int(n, "end", 0);
    return GB_OK;
}

static void shape_range(const gb__node *n, int r, int64_t *start, int64_t *end) {
    const shape_params *p = n->params;
    int64_t s = p->start, e = p->has_end ? p->end : r;
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    *start = s;
    *end = e < s ? s : e;
}

static gb_status shape_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                             size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    int64_t s, e;
    shape_range(n, in[0]->ndim, &s, &e);
    int64_t len = e - s;
    gb__set_shape(out[0], GB_DTYPE_I64, 1, &len);
    return GB_OK;
}

static gb_status shape_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                               const gb__exec *ex) {
    int64_t s, e;
    shape_range(n, in[0]->ndim, &s, &e);
    for (int64_t i = s; i < e; i++) GB_I64(out[0])[i - s] = in[0]->dims[i];
    return GB_OK;
}

const gb__op gb__op_Shape = {.name = "Shape", .init = shape_init, .infer = shape_infer,
                             .forward = shape_forward, .shape_only = true};

/* ---- Constant ----------------------------------------------------------------- */
/*
 * Exactly one of: value (tensor), value_float, value_floats, value_int,
 * value_ints (the last four from opset 12). value_string(s) and
 * sparse_value are not supported. The params point into the node's
 * attributes, which live as long as the node.
 */
typedef struct {
    gb_dtype dtype;
    int ndim;
    int64_t dims[GB_MAX_DIMS];
    const void *src;
} constant_params;

static gb_status constant_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 0, 0, 1, 1);
    if (st) return st;
    static const char *const unsupported[] = {"value_string", "value_strings", "sparse_value"};
    for (size_t k = 0; k < sizeof unsupported / sizeof unsupported[0]; k++)
        if (gb__attr_find(n, unsupported[k]))
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): attribute '%s' is not supported", n->name,
                           n->op_type, unsupported[k]);
    if ((st = alloc_params(ctx, n, sizeof(constant_params)))) return st;
    constant_params *p = n->params;
    int found = 0;
    const gb__attr *a;
    if ((a = gb__attr_find(n, "value"))) {
        if (a->type != GB_ATTR_TENSOR || !a->t)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): 'value' is not a tensor", n->name, n->op_type);
        if (a->t->dtype != GB_DTYPE_F32 && a->t->dtype != GB_DTYPE_I64)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): value of element type %s (float32 or int64 only)",
                           n->name, n->op_type, gb_dtype_name(a->t->dtype));
        p->dtype = a->t->dtype;
        p->ndim = a->t->ndim;
        memcpy(p->dims, a->t->dims, sizeof p->dims);
        p->src = a->t->data;
        found++;
    }
    if ((a = gb__attr_find(n, "value_float")) && a->type == GB_ATTR_FLOAT) {
        p->dtype = GB_DTYPE_F32, p->ndim = 0, p->src = &a->f;
        found++;
    }
    if ((a = gb__attr_find(n, "value_int")) && a->type == GB_ATTR_INT) {
        p->dtype = GB_DTYPE_I64, p->ndim = 0, p->src = &a->i;
        found++;
    }
    if ((a = gb__attr_find(n, "value_floats")) && a->type == GB_ATTR_FLOATS) {
        p->dtype = GB_DTYPE_F32, p->ndim = 1, p->dims[0] = a->n, p->src = a->floats;
        found++;
    }
    if ((a = gb__attr_find(n, "value_ints")) && a->type == GB_ATTR_INTS) {
        p->dtype = GB_DTYPE_I64, p->ndim = 1, p->dims[0] = a->n, p->src = a->ints;
        found++;
    }
    if (found != 1)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): expected exactly one value attribute, found %d", n->name,
                       n->op_type, found);
    return GB_OK;
}

static gb_status constant_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                                size_t *ws, double *flops) {
    const constant_params *p = n->params;
    gb__set_shape(out[0], p->dtype, p->ndim, p->dims);
    return GB_OK;
}

static gb_status constant_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                                  const gb__exec *ex) {
    const constant_params *p = n->params;
    size_t bytes = (size_t)out[0]->numel * gb_dtype_size(p->dtype);
    if (bytes) memcpy(out[0]->data, p->src, bytes);
    return GB_OK;
}

const gb__op gb__op_Constant = {.name = "Constant", .init = constant_init, .infer = constant_infer,
                                .forward = constant_forward};

/* ---- ConstantOfShape ------------------------------------------------------------ */
/*
 * A tensor of the shape given by the 1-D int64 input (empty -> a scalar;
 * zero dimensions allowed), filled with the one-element 'value' tensor
 * attribute (default float32 0).
 */
typedef struct {
    gb_dtype dtype;
    float f;
    int64_t i;
} cos_params;

static gb_status cos_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(cos_params)))) return st;
    cos_params *p = n->params;
    p->dtype = GB_DTYPE_F32;
    const gb__attr *a = gb__attr_find(n, "value");
    if (a) {
        if (a->type != GB_ATTR_TENSOR || !a->t)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): 'value' is not a tensor", n->name, n->op_type);
        if (a->t->numel != 1)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): 'value' must have one element, has %lld", n->name,
                           n->op_type, (long long)a->t->numel);
        if (a->t->dtype != GB_DTYPE_F32 && a->t->dtype != GB_DTYPE_I64)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): value of element type %s (float32 or int64 only)",
                           n->name, n->op_type, gb_dtype_name(a->t->dtype));
        p->dtype = a->t->dtype;
        if (p->dtype == GB_DTYPE_F32) p->f = GB_CF32(a->t)[0];
        else p->i = GB_CI64(a->t)[0];
    }
    return GB_OK;
}

static gb_status cos_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                           size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    const cos_params *p = n->params;
    int64_t dims[GB_MAX_DIMS];
    int nd;
    gb_status st = gb__const_ints(ctx, n, in, 0, "input", dims, GB_MAX_DIMS, &nd);
    if (st) return st;
    if ((st = gb__check_size(ctx, n, nd, dims))) return st;
    gb__set_shape(out[0], p->dtype, nd, dims);
    return GB_OK;
}

static gb_status cos_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                             const gb__exec *ex) {
    const cos_params *p = n->params;
    int64_t len = out[0]->numel;
    if (p->dtype == GB_DTYPE_F32)
        for (int64_t k = 0; k < len; k++) GB_F32(out[0])[k] = p->f;
    else
        for (int64_t k = 0; k < len; k++) GB_I64(out[0])[k] = p->i;
    return GB_OK;
}

const gb__op gb__op_ConstantOfShape = {.name = "ConstantOfShape", .init = cos_init, .infer = cos_infer,
                                       .forward = cos_forward, .const_inputs = 1u << 0};

/* ---- Cast ------------------------------------------------------------------- */
/*
 * Between float32 and int64 only. float -> int64 truncates toward zero (as C
 * and NumPy's astype do); NaN and values outside the int64 range, undefined
 * in C, give INT64_MIN (what x86's cvttsd2si returns, and so what NumPy
 * prints on x86).
 */
typedef struct {
    gb_dtype to;
} cast_params;

static gb_status cast_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    if ((st = alloc_params(ctx, n, sizeof(cast_params)))) return st;
    cast_params *p = n->params;
    const gb__attr *a = gb__attr_find(n, "to");
    if (!a) return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): missing 'to' attribute", n->name, n->op_type);
    if (a->type == GB_ATTR_STRING) { /* opset 1-5 */
        if (strcmp(a->s, "FLOAT") == 0) p->to = GB_DTYPE_F32;
        else if (strcmp(a->s, "INT64") == 0) p->to = GB_DTYPE_I64;
        else
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): cast to %s is not supported (FLOAT or INT64 only)",
                           n->name, n->op_type, a->s);
        return GB_OK;
    }
    if (a->type != GB_ATTR_INT)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): 'to' must be an int", n->name, n->op_type);
    if (a->i == 1) p->to = GB_DTYPE_F32;
    else if (a->i == 7) p->to = GB_DTYPE_I64;
    else
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): cast to %s is not supported (FLOAT or INT64 only)",
                       n->name, n->op_type, onnx_type_name(a->i));
    return GB_OK;
}

static gb_status cast_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, gb_tensor **out,
                            size_t *ws, double *flops) {
    if (gb__require_inputs(ctx, n, in, 1)) return GB_ERR_FORMAT;
    gb_status st = gb__check_f32_i64(ctx, n, in[0], "input");
    if (st) return st;
    gb__set_shape(out[0], ((const cast_params *)n->params)->to, in[0]->ndim, in[0]->dims);
    *flops = (double)in[0]->numel;
    return GB_OK;
}

static int64_t f32_to_i64(float v) {
    /* 2^63 is exactly representable; the range test is false for NaN. */
    if (!(v >= -9223372036854775808.0f && v < 9223372036854775808.0f)) return INT64_MIN;
    return (int64_t)v;
}

static gb_status cast_forward(const gb__node *n, const gb_tensor *const *in, gb_tensor *const *out,
                              const gb__exec *ex) {
    const gb_tensor *x = in[0];
    gb_tensor *y = out[0];
    int64_t len = x->numel;
    if (x->dtype == y->dtype) {
        if (len) memcpy(y->data, x->data, (size_t)len * gb_dtype_size(x->dtype));
    } else if (x->dtype == GB_DTYPE_F32) {
        const float *s = GB_CF32(x);
        int64_t *d = GB_I64(y);
#pragma omp parallel for num_threads(ex->n_threads) if (len > GB_PAR_MIN)
        for (int64_t k = 0; k < len; k++) d[k] = f32_to_i64(s[k]);
    } else {
        const int64_t *s = GB_CI64(x);
        float *d = GB_F32(y);
#pragma omp parallel for num_threads(ex->n_threads) if (len > GB_PAR_MIN)
        for (int64_t k = 0; k < len; k++) d[k] = (float)s[k];
    }
    return GB_OK;
}

/*
 * float32 -> float32 is the identity (dx += dy). A cast to or from int64 has
 * no gradient: int64 tensors carry none (the engine never asks), so only the
 * float -> float case does any work.
 */
static gb_status cast_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                               const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    if (!din[0] || !dout[0] || in[0]->dtype != GB_DTYPE_F32 || out[0]->dtype != GB_DTYPE_F32) return GB_OK;
    float *dx = GB_F32(din[0]);
    const float *dy = GB_CF32(dout[0]);
    int64_t len = in[0]->numel;
#pragma omp parallel for num_threads(ex->n_threads) if (len > GB_PAR_MIN)
    for (int64_t k = 0; k < len; k++) dx[k] += dy[k];
    return GB_OK;
}

const gb__op gb__op_Cast = {.name = "Cast", .init = cast_init, .infer = cast_infer, .forward = cast_forward,
                            .backward = cast_backward};

/* ---- table ------------------------------------------------------------------------ */

const gb__op *const gb__ops_shape[] = {
    &gb__op_Reshape, &gb__op_Flatten,  &gb__op_Squeeze,         &gb__op_Unsqueeze, &gb__op_Identity,
    &gb__op_Dropout, &gb__op_Shape,    &gb__op_Constant,        &gb__op_ConstantOfShape,
    &gb__op_Cast,    NULL,
};
