/* target.c — what an explanation explains: parsing target specs, resolving
 * them against a forward pass, and building the per-item gradient seed.
 *
 * A target selects, per batch item n, a contiguous block of one tensor T:
 * T[n, i0, ..., ik, *] — in C order the elements with a fixed index prefix
 * are contiguous, so a resolved target is just (offset within the item,
 * count) and f_n = sum of those `count` elements. The seed of the backward
 * pass is 1 on that block of every row's item and 0 elsewhere (the gradient
 * of a sum is the sum of gradients). */
#include "methods/methods.h"
#include "engine/ir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gb_target_default(gb_target *t) {
    memset(t, 0, sizeof *t);
    t->kind = GB_TARGET_TOP1;
}

/* One non-negative decimal integer filling [s, e). */
static bool parse_index(const char *s, const char *e, int64_t *out) {
    if (s == e) return false;
    int64_t v = 0;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9') return false;
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

/* "i,j,k" in [s, e) into idx; returns the count or -1. */
static int parse_index_list(const char *s, const char *e, int64_t *idx, int max) {
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *c = p;
        while (c < e && *c != ',') c++;
        if (n == max) return -1;
        if (!parse_index(p, c, &idx[n])) return -1;
        n++;
        if (c == e) return n;
        p = c + 1;   /* a trailing comma leaves p == e: an empty index, refused above */
    }
}

gb_status gb_target_parse(gb_ctx *ctx, const char *spec, gb_target_kind kind, gb_target *out) {
    gb_target_default(out);
    const char *flag = kind == GB_TARGET_NEURON ? "--neuron" : "--target";
    if (!spec || !*spec) return gb__err(ctx, GB_ERR_ARG, "%s: empty target", flag);
    if (kind != GB_TARGET_OUTPUT && kind != GB_TARGET_NEURON)
        return gb__err(ctx, GB_ERR_ARG, "target: bad kind %d", (int)kind);
    out->kind = kind;
    size_t len = strlen(spec);
    const char *colon = strrchr(spec, ':');
    const int max_idx = GB_MAX_DIMS - 1;
    if (!colon) {
        if (kind == GB_TARGET_NEURON)
            return gb__err(ctx, GB_ERR_ARG, "--neuron '%s': expected TENSOR:c or TENSOR:c,h,w", spec);
        int64_t k;
        if (parse_index(spec, spec + len, &k)) {   /* "K": logit K of the first output */
            out->n_index = 1;
            out->index[0] = k;
            return GB_OK;
        }
        if (spec[0] == '-' || (spec[0] >= '0' && spec[0] <= '9'))
            return gb__err(ctx, GB_ERR_ARG,
                           "--target '%s': expected a class index K, OUTPUT:i,j,... or an output name", spec);
        if (len >= GB_TARGET_NAME_MAX)
            return gb__err(ctx, GB_ERR_ARG, "--target: tensor name longer than %d bytes", GB_TARGET_NAME_MAX - 1);
        memcpy(out->tensor, spec, len + 1);   /* "NAME": the whole item summed */
        return GB_OK;
    }
    size_t nlen = (size_t)(colon - spec);
    if (nlen == 0) return gb__err(ctx, GB_ERR_ARG, "%s '%s': missing tensor name before ':'", flag, spec);
    if (nlen >= GB_TARGET_NAME_MAX)
        return gb__err(ctx, GB_ERR_ARG, "%s: tensor name longer than %d bytes", flag, GB_TARGET_NAME_MAX - 1);
    memcpy(out->tensor, spec, nlen);
    out->tensor[nlen] = 0;
    int n = parse_index_list(colon + 1, spec + len, out->index, max_idx);
    if (n < 1)
        return gb__err(ctx, GB_ERR_ARG,
                       "%s '%s': indices after ':' must be 1 to %d non-negative integers separated by commas",
                       flag, spec, max_idx);
    out->n_index = n;
    return GB_OK;
}

void gb_target_str(const gb_target *t, char *buf, size_t cap) {
    if (!cap) return;
    if (t->kind == GB_TARGET_TOP1) {
        snprintf(buf, cap, "top-1 of %s", t->tensor[0] ? t->tensor : "output 0");
        return;
    }
    size_t o = (size_t)snprintf(buf, cap, "%s", t->tensor[0] ? t->tensor : "output 0");
    if (t->n_index == 0) return;
    for (int i = 0; i < t->n_index && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%c%lld", i ? ',' : '[', (long long)t->index[i]);
    if (o < cap) snprintf(buf + o, cap - o, "%s]", t->kind == GB_TARGET_NEURON ? ",*" : "");
}

/* ---- resolution ------------------------------------------------------------------ */

/* Check a target tensor T from a pass of `rows` rows and (on the first chunk)
 * record its per-item shape in r. */
gb_status gb__target_check_tensor(gb_ctx *ctx, gb_explanation *r, const gb_tensor *T, int64_t rows,
                                  bool first) {
    char shp[128];
    gb_shape_str(T->ndim, T->dims, shp, sizeof shp);
    if (T->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "target '%s' is %s, not float32", r->target_tensor,
                       gb_dtype_name(T->dtype));
    if (T->ndim < 1 || T->dims[0] != rows)
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "target '%s' has shape %s: its first dimension is not the batch (%lld rows)",
                       r->target_tensor, shp, (long long)rows);
    if (first) {
        r->target_ndim = T->ndim;
        memcpy(r->target_dims, T->dims, sizeof r->target_dims);
        r->target_dims[0] = r->n_items;
        return GB_OK;
    }
    for (int i = 1; i < T->ndim; i++)
        if (T->ndim != r->target_ndim || T->dims[i] != r->target_dims[i])
            return gb__err(ctx, GB_ERR_SHAPE, "target '%s' changed shape between passes (%s)",
                           r->target_tensor, shp);
    return GB_OK;
}

/* After the first chunk: the block (offset, count) a non-top-1 target selects
 * within one item, from the index prefix; GB_ERR_ARG when out of range. */
gb_status gb__target_block(gb_ctx *ctx, const gb_target *t, gb_explanation *r, int64_t *offset) {
    char shp[128];
    gb_shape_str(r->target_ndim, r->target_dims, shp, sizeof shp);
    int nd = r->target_ndim - 1;   /* dims after the batch */
    if (t->n_index > nd)
        return gb__err(ctx, GB_ERR_ARG, "target '%s' (shape %s) takes at most %d ind%s after the batch, not %d",
                       r->target_tensor, shp, nd, nd == 1 ? "ex" : "ices", t->n_index);
    int64_t off = 0, stride = 1;
    for (int i = nd - 1; i >= 0; i--) {
        if (i < t->n_index) {
            if (t->index[i] >= r->target_dims[i + 1])
                return gb__err(ctx, GB_ERR_ARG, "target index %lld out of range for dimension %d of '%s' (shape %s)",
                               (long long)t->index[i], i + 1, r->target_tensor, shp);
            off += t->index[i] * stride;
        }
        stride *= r->target_dims[i + 1];
    }
    int64_t count = 1;
    for (int i = t->n_index; i < nd; i++) count *= r->target_dims[i + 1];
    if (count == 0) return gb__err(ctx, GB_ERR_ARG, "target '%s' (shape %s) selects no element", r->target_tensor, shp);
    r->target_count = count;
    *offset = off;
    return GB_OK;
}

void gb__target_fill_seed(const gb_explanation *r, const int64_t *item_of_row, int64_t n_rows, gb_tensor *seed) {
    int64_t in = seed->numel / (seed->dims[0] ? seed->dims[0] : 1);
    float *s = seed->data;
    memset(s, 0, (size_t)seed->numel * sizeof *s);
    for (int64_t k = 0; k < n_rows; k++) {
        float *row = s + k * in + r->target_offset[item_of_row[k]];
        for (int64_t j = 0; j < r->target_count; j++) row[j] = 1.0f;
    }
}

/* f for rows 0..n_rows-1 of T: the sum of each row's block. */
void gb__target_values(const gb_explanation *r, const gb_tensor *T, const int64_t *item_of_row, int64_t n_rows,
                       double *values) {
    int64_t in = T->numel / (T->dims[0] ? T->dims[0] : 1);
    const float *d = T->data;
    for (int64_t k = 0; k < n_rows; k++) {
        const float *row = d + k * in + r->target_offset[item_of_row[k]];
        double v = 0;
        for (int64_t j = 0; j < r->target_count; j++) v += row[j];
        values[k] = v;
    }
}
