/*
 * const_input.h — reading inputs whose values an op needs at plan time.
 *
 * Several ONNX ops moved shape-defining attributes into inputs across opsets
 * (Reshape's shape, Slice's starts/ends, Pad's pads, Squeeze's axes,
 * Resize's scales/sizes...). Those inputs must be known when the plan is
 * built: an initializer or a constant folded by the engine, i.e. in[i]->data
 * is non-NULL in op->infer. These helpers read them and name the node, the
 * input and the reason when they cannot.
 *
 * Shared by shape.c, index.c, reduce.c and resize.c (static inline so the
 * header needs no .c of its own).
 */
#ifndef GB_OPS_CONST_INPUT_H
#define GB_OPS_CONST_INPUT_H

#include "ops/util.h"

/* True if optional input i is present (listed in the node and not omitted). */
static inline bool gb__has_input(const gb__node *n, gb_tensor *const *in, int i) {
    return i < n->n_in && n->in[i] >= 0 && in[i];
}

/* Fail unless inputs 0..count-1 are all present (a required input may still
 * be given an empty name in a malformed model). */
static inline gb_status gb__require_inputs(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, int count) {
    for (int i = 0; i < count; i++)
        if (!gb__has_input(n, in, i))
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): required input %d is missing", n->name, n->op_type, i);
    return GB_OK;
}

/* Read the int64 input i into vals[0..cap). *count is the element count, or
 * -1 if the optional input is absent (then nothing is read). Fails if the
 * input is present but not known at plan time, not int64, has more than one
 * dimension, or more than cap elements. */
static inline gb_status gb__const_ints(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, int i,
                                       const char *what, int64_t *vals, int cap, int *count) {
    *count = -1;
    if (!gb__has_input(n, in, i)) return GB_OK;
    const gb_tensor *t = in[i];
    if (!t->data)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): input %d '%s' must be known at plan time (an initializer or computed "
                       "from shapes only), but it depends on the run-time data",
                       n->name, n->op_type, i, what);
    if (t->dtype != GB_DTYPE_I64)
        return gb__err(ctx, GB_ERR_ARG, "%s (%s): input %d '%s' must be int64, got %s", n->name,
                       n->op_type, i, what, gb_dtype_name(t->dtype));
    if (t->ndim > 1)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %d '%s' must be 1-D, got %d dimensions",
                       n->name, n->op_type, i, what, t->ndim);
    if (t->numel > cap)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %d '%s' has %lld elements, at most %d allowed",
                       n->name, n->op_type, i, what, (long long)t->numel, cap);
    for (int64_t k = 0; k < t->numel; k++) vals[k] = ((const int64_t *)t->data)[k];
    *count = (int)t->numel;
    return GB_OK;
}

/* Same for a float32 input (Resize/Upsample scales, Pad's constant_value...). */
static inline gb_status gb__const_floats(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in, int i,
                                         const char *what, float *vals, int cap, int *count) {
    *count = -1;
    if (!gb__has_input(n, in, i)) return GB_OK;
    const gb_tensor *t = in[i];
    if (!t->data)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s (%s): input %d '%s' must be known at plan time (an initializer or computed "
                       "from shapes only), but it depends on the run-time data",
                       n->name, n->op_type, i, what);
    if (t->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_ARG, "%s (%s): input %d '%s' must be float32, got %s", n->name,
                       n->op_type, i, what, gb_dtype_name(t->dtype));
    if (t->ndim > 1)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %d '%s' must be 1-D, got %d dimensions",
                       n->name, n->op_type, i, what, t->ndim);
    if (t->numel > cap)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): input %d '%s' has %lld elements, at most %d allowed",
                       n->name, n->op_type, i, what, (long long)t->numel, cap);
    for (int64_t k = 0; k < t->numel; k++) vals[k] = ((const float *)t->data)[k];
    *count = (int)t->numel;
    return GB_OK;
}

/* A float32 or int64 tensor's element k as a double. */
static inline double gb__value_at(const gb_tensor *t, int64_t k) {
    return t->dtype == GB_DTYPE_F32 ? (double)((const float *)t->data)[k]
                                    : (double)((const int64_t *)t->data)[k];
}

/* Dtype check shared by data-movement ops: float32 or int64. */
static inline gb_status gb__check_f32_i64(gb_ctx *ctx, const gb__node *n, const gb_tensor *t,
                                          const char *what) {
    if (t->dtype == GB_DTYPE_F32 || t->dtype == GB_DTYPE_I64) return GB_OK;
    return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): %s has element type %s (float32 or int64 only)",
                   n->name, n->op_type, what, gb_dtype_name(t->dtype));
}

/* Largest tensor an op may infer (elements): far beyond any real model, and
 * small enough that sizes, offsets and byte counts cannot overflow int64. */
#define GB_MAX_NUMEL ((int64_t)1 << 40)

/* Fail if a computed output shape has a negative dimension or more than
 * GB_MAX_NUMEL elements (shapes read from a malformed or hostile model). */
static inline gb_status gb__check_size(gb_ctx *ctx, const gb__node *n, int ndim, const int64_t *dims) {
    int64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || dims[i] > GB_MAX_NUMEL || (dims[i] && total > GB_MAX_NUMEL / dims[i]))
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): output dimension %d (%lld) is negative or too large",
                           n->name, n->op_type, i, (long long)dims[i]);
        total *= dims[i];
    }
    return GB_OK;
}

/* Row-major strides (in elements) of a shape. */
static inline void gb__strides(int ndim, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

#endif /* GB_OPS_CONST_INPUT_H */
