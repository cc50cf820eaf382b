/* tensor.c — dense C-ordered tensors: create, clone, cast, free. */
#include "engine/ir.h"

#include <stdlib.h>
#include <string.h>

size_t gb_dtype_size(gb_dtype t) {
    switch (t) {
    case GB_DTYPE_F32: return 4;
    case GB_DTYPE_U8: return 1;
    case GB_DTYPE_I64: return 8;
    case GB_DTYPE_F64: return 8;
    default: return 0;
    }
}

const char *gb_dtype_name(gb_dtype t) {
    switch (t) {
    case GB_DTYPE_F32: return "float32";
    case GB_DTYPE_U8: return "uint8";
    case GB_DTYPE_I64: return "int64";
    case GB_DTYPE_F64: return "float64";
    default: return "undefined";
    }
}

gb_status gb_tensor_create(gb_ctx *ctx, gb_dtype dtype, int ndim, const int64_t *dims,
                           gb_tensor **out) {
    *out = NULL;
    size_t es = gb_dtype_size(dtype);
    if (!es) return gb__err(ctx, GB_ERR_ARG, "tensor: unknown element type %d", (int)dtype);
    if (ndim < 0 || ndim > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_ARG, "tensor: %d dimensions (at most %d)", ndim, GB_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return gb__err(ctx, GB_ERR_ARG, "tensor: negative dimension");
        if (dims[i] && n > INT64_MAX / 16 / dims[i])
            return gb__err(ctx, GB_ERR_ARG, "tensor: too many elements");
        n *= dims[i];
    }
    gb_tensor *t = calloc(1, sizeof *t);
    if (!t) return gb__err(ctx, GB_ERR_NOMEM, "tensor: out of memory");
    gb__set_shape(t, dtype, ndim, dims);
    /* calloc(0) may return NULL; keep data non-NULL so callers can rely on it. */
    t->data = calloc(n ? (size_t)n : 1, es);
    if (!t->data) {
        free(t);
        return gb__err(ctx, GB_ERR_NOMEM, "tensor: out of memory for %lld elements", (long long)n);
    }
    *out = t;
    return GB_OK;
}

gb_status gb_tensor_clone(gb_ctx *ctx, const gb_tensor *src, gb_tensor **out) {
    gb_status st = gb_tensor_create(ctx, src->dtype, src->ndim, src->dims, out);
    if (st) return st;
    memcpy((*out)->data, src->data, (size_t)src->numel * gb_dtype_size(src->dtype));
    return GB_OK;
}

void gb_tensor_free(gb_tensor *t) {
    if (!t) return;
    free(t->data);
    free(t);
}

void gb_shape_str(int ndim, const int64_t *dims, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = 0;
    if (ndim == 0) {
        snprintf(buf, cap, "scalar");
        return;
    }
    size_t len = 0;
    for (int i = 0; i < ndim && len < cap; i++) {
        int w = dims[i] < 0 ? snprintf(buf + len, cap - len, "%s?", i ? "x" : "")
                            : snprintf(buf + len, cap - len, "%s%lld", i ? "x" : "", (long long)dims[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

static double load_as_double(const void *p, gb_dtype t, int64_t i) {
    switch (t) {
    case GB_DTYPE_F32: return ((const float *)p)[i];
    case GB_DTYPE_F64: return ((const double *)p)[i];
    case GB_DTYPE_I64: return (double)((const int64_t *)p)[i];
    case GB_DTYPE_U8: return ((const uint8_t *)p)[i];
    default: return 0;
    }
}

gb_status gb_tensor_cast(gb_ctx *ctx, gb_tensor *t, gb_dtype to) {
    if (t->dtype == to) return GB_OK;
    size_t es = gb_dtype_size(to);
    if (!es) return gb__err(ctx, GB_ERR_ARG, "cast: unknown element type %d", (int)to);
    void *d = malloc(t->numel ? (size_t)t->numel * es : 1);
    if (!d) return gb__err(ctx, GB_ERR_NOMEM, "cast: out of memory");
    for (int64_t i = 0; i < t->numel; i++) {
        double v = load_as_double(t->data, t->dtype, i);
        switch (to) {
        case GB_DTYPE_F32: ((float *)d)[i] = (float)v; break;
        case GB_DTYPE_F64: ((double *)d)[i] = v; break;
        case GB_DTYPE_I64: ((int64_t *)d)[i] = (int64_t)v; break;
        case GB_DTYPE_U8: ((uint8_t *)d)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
        default: break;
        }
    }
    free(t->data);
    t->data = d;
    t->dtype = to;
    return GB_OK;
}
