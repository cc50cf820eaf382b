/* context.c — status strings, the error-carrying context, attribute lookup. */
#include "engine/ir.h"
#include "ops/conv_dnnl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_text[] = {
#define GB__STATUS_TEXT(name, text) text,
    GB_STATUS_LIST(GB__STATUS_TEXT)
#undef GB__STATUS_TEXT
};
_Static_assert(sizeof status_text / sizeof status_text[0] == GB_STATUS_COUNT,
               "one text per status");

const char *gb_status_str(gb_status s) {
    if ((int)s < 0 || s >= GB_STATUS_COUNT) return "unknown status";
    return status_text[s];
}

gb_status gb_ctx_create(gb_ctx **out) {
    gb_ctx *c = calloc(1, sizeof *c);
    if (!c) return GB_ERR_NOMEM;
    c->n_threads = 2;
    gb__dnnl_ctx_init(c);   /* optional: without it convolutions use im2col + SGEMM */
    *out = c;
    return GB_OK;
}

void gb_ctx_free(gb_ctx *ctx) {
    if (!ctx) return;
    gb__dnnl_ctx_free(ctx);
    free(ctx);
}

const char *gb_ctx_errmsg(const gb_ctx *ctx) { return ctx ? ctx->errmsg : "no context"; }

gb_status gb_ctx_set_threads(gb_ctx *ctx, int n_threads) {
    if (n_threads < 1 || n_threads > 256)
        return gb__err(ctx, GB_ERR_ARG, "thread count %d out of range 1..256", n_threads);
    ctx->n_threads = n_threads;
    return GB_OK;
}

int gb_ctx_threads(const gb_ctx *ctx) { return ctx->n_threads; }

void gb_ctx_set_mem_limit(gb_ctx *ctx, size_t bytes) { ctx->mem_limit = bytes; }

gb_status gb__err(gb_ctx *ctx, gb_status st, const char *fmt, ...) {
    if (!ctx) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
    /* Messages are one line: callers print them as such. */
    for (char *p = ctx->errmsg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return st;
}

/* ---- attribute lookup ----------------------------------------------------- */

const gb__attr *gb__attr_find(const gb__node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t gb__attr_int(const gb__node *n, const char *name, int64_t dflt) {
    const gb__attr *a = gb__attr_find(n, name);
    return a && a->type == GB_ATTR_INT ? a->i : dflt;
}

float gb__attr_float(const gb__node *n, const char *name, float dflt) {
    const gb__attr *a = gb__attr_find(n, name);
    return a && a->type == GB_ATTR_FLOAT ? a->f : dflt;
}

const char *gb__attr_str(const gb__node *n, const char *name, const char *dflt) {
    const gb__attr *a = gb__attr_find(n, name);
    return a && a->type == GB_ATTR_STRING ? a->s : dflt;
}

int gb__attr_ints(const gb__node *n, const char *name, int64_t *out, int cap) {
    const gb__attr *a = gb__attr_find(n, name);
    if (!a || a->type != GB_ATTR_INTS) return -1;
    for (int i = 0; i < a->n && i < cap; i++) out[i] = a->ints[i];
    return a->n;
}

int gb__attr_floats(const gb__node *n, const char *name, float *out, int cap) {
    const gb__attr *a = gb__attr_find(n, name);
    if (!a || a->type != GB_ATTR_FLOATS) return -1;
    for (int i = 0; i < a->n && i < cap; i++) out[i] = a->floats[i];
    return a->n;
}
