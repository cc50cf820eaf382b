/* explainer.c — the explainer (a session that keeps activations), gb_explain,
 * and the one routine every method uses to evaluate points: gb__explain_pass. */
#include "methods/methods.h"
#include "engine/ir.h"
#include "engine/incremental.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GB_EXPLAIN_DEFAULT_BATCH 16

gb_status gb_explainer_create(gb_ctx *ctx, gb_model *m, gb_explainer **out) {
    *out = NULL;
    if (!m) return gb__err(ctx, GB_ERR_ARG, "explain: no model");
    int n_in = gb_model_num_inputs(m);
    if (n_in != 1)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "explain: the model has %d inputs; only single-input models can be explained",
                       n_in);
    gb_explainer *e = calloc(1, sizeof *e);
    if (!e) return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    e->ctx = ctx;
    e->m = m;
    gb_status st = gb_model_input(m, 0, &e->in);
    if (!st) st = gb_session_create(m, &e->s);
    if (st) {
        free(e);
        return st;
    }
    gb_session_keep_activations(e->s, 1);
    e->static_batch = e->in.ndim >= 1 && e->in.dims[0] > 0 ? e->in.dims[0] : 0;
    e->batch = GB_EXPLAIN_DEFAULT_BATCH;
    *out = e;
    return GB_OK;
}

void gb_explainer_free(gb_explainer *e) {
    if (!e) return;
    gb_session_free(e->s);
    gb_tensor_free(e->rows);
    gb_tensor_free(e->seed);
    gb__incr_free(e->incr);
    free(e->held);
    free(e);
}

gb_session *gb_explainer_session(gb_explainer *e) {
    if (!e) return NULL;
    e->held_valid = false;   /* the caller may run it */
    return e->s;
}

void gb_explanation_free(gb_explanation *r) {
    if (!r) return;
    gb_tensor_free(r->attr);
    free(r->target_offset);
    free(r->value);
    free(r->baseline_value);
    free(r->delta);
    gb_tensor_free(r->features);
    free(r->fit_r2);
    free(r);
}

void gb_explain_opts_default(gb_explain_opts *o) {
    *o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
}

/* ---- passes --------------------------------------------------------------------- */

/* Forward on rows [k0, k0 + b) of x_rows as a (P, ...) batch, P = b, or the
 * static batch (rows padded with copies of the last one). */
static gb_status run_chunk(gb_explainer *e, const float *x_rows, int64_t b, int64_t *P_out) {
    int64_t P = e->static_batch ? e->static_batch : b;
    gb_tensor view = {0};
    view.dtype = GB_DTYPE_F32;
    view.ndim = e->in.ndim;
    memcpy(view.dims, e->xdims, sizeof view.dims);
    view.dims[0] = P;
    view.numel = P * e->item_numel;
    if (P == b) {
        view.data = (void *)x_rows;
    } else {
        int64_t cap = e->rows_cap;
        if (cap < view.numel) {
            gb_tensor_free(e->rows);
            e->rows = NULL;
            int64_t d1 = view.numel;
            gb_status st = gb_tensor_create(e->ctx, GB_DTYPE_F32, 1, &d1, &e->rows);
            if (st) return st;
            e->rows_cap = d1;
        }
        float *d = e->rows->data;
        memcpy(d, x_rows, (size_t)(b * e->item_numel) * sizeof *d);
        for (int64_t k = b; k < P; k++)
            memcpy(d + k * e->item_numel, x_rows + (b - 1) * e->item_numel, (size_t)e->item_numel * sizeof *d);
        view.data = d;
    }
    const gb_tensor *in[1] = {&view};
    *P_out = P;
    /* The same rows as the pass the session holds (a method's pass at x
     * after the target-resolving one): its activations are still there. */
    size_t bytes = (size_t)view.numel * sizeof(float);
    if (e->held_valid && e->held_P == P && !memcmp(e->held, view.data, bytes)) return GB_OK;
    e->held_valid = false;
    gb_status st = gb_session_run(e->s, in, 1);
    if (st) return st;
    if (e->held_cap < view.numel) {
        float *h = realloc(e->held, bytes);
        if (!h) return GB_OK;   /* only an optimisation: stay invalid */
        e->held = h;
        e->held_cap = view.numel;
    }
    memcpy(e->held, view.data, bytes);
    e->held_P = P;
    e->held_valid = true;
    return GB_OK;
}

static const gb_tensor *target_tensor(gb_explainer *e, const gb_explanation *r) {
    return gb_session_tensor(e->s, r->target_tensor);
}

gb_status gb__explain_pass(gb_explainer *e, gb_explanation *r, const float *x_rows, int64_t n_rows,
                           const int64_t *item_of_row, const char *wrt, const gb_rule *rules,
                           int n_rules, double *values, float *grad, float *act) {
    gb_ctx *ctx = e->ctx;
    const char *wname = wrt ? wrt : e->in.name;
    int64_t chunk = e->static_batch ? e->static_batch : e->batch;
    for (int64_t k0 = 0; k0 < n_rows; k0 += chunk) {
        int64_t b = n_rows - k0 < chunk ? n_rows - k0 : chunk, P;
        gb_status st = run_chunk(e, x_rows + k0 * e->item_numel, b, &P);
        if (st) return st;
        const gb_tensor *T = target_tensor(e, r);
        if (!T) return gb__err(ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s'", r->target_tensor);
        if ((st = gb__target_check_tensor(ctx, r, T, P, false))) return st;
        if (values) gb__target_values(r, T, item_of_row + k0, b, values + k0);
        int64_t wn = 0;
        if (act || grad) {
            const gb_tensor *W = gb_session_tensor(e->s, wname);
            if (!W) return gb__err(ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s' in the model", wname);
            if (W->dtype != GB_DTYPE_F32 || W->ndim < 1 || W->dims[0] != P) {
                char shp[128];
                gb_shape_str(W->ndim, W->dims, shp, sizeof shp);
                return gb__err(ctx, GB_ERR_UNSUPPORTED,
                               "explain: tensor '%s' (%s %s) is not a float32 tensor with the batch as first dimension",
                               wname, gb_dtype_name(W->dtype), shp);
            }
            wn = W->numel / P;
            if (act) memcpy(act + k0 * wn, W->data, (size_t)(b * wn) * sizeof *act);
        }
        if (grad) {
            if (!e->seed || e->seed->numel < T->numel) {
                gb_tensor_free(e->seed);
                e->seed = NULL;
                if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, T->ndim, T->dims, &e->seed))) return st;
            }
            gb_tensor sv = *e->seed;   /* a view with this pass's shape */
            sv.ndim = T->ndim;
            memcpy(sv.dims, T->dims, sizeof sv.dims);
            sv.numel = T->numel;
            gb__target_fill_seed(r, item_of_row + k0, b, &sv);   /* padded rows: zero seed */
            /* attributing to a hidden tensor: the backward pass stops there */
            gb_seed seed = {.tensor = r->target_tensor, .seed = &sv, .wrt = wrt};
            if ((st = gb_session_backward(e->s, &seed, rules, n_rules))) return st;
            const gb_tensor *g = gb_session_grad(e->s, wname);
            if (!g) {
                /* No gradient reached it: zero if it is an input that the target
                 * does not depend on would be a silent lie; say so instead. */
                return gb__err(ctx, GB_ERR_ARG, "explain: no gradient reaches '%s' from target '%s' (constant, or not on its path)",
                               wname, r->target_tensor);
            }
            memcpy(grad + k0 * wn, g->data, (size_t)(b * wn) * sizeof *grad);
        }
    }
    r->rows += n_rows;
    return GB_OK;
}

gb_status gb__explain_item_shape(gb_explainer *e, const char *name, int *ndim, int64_t *dims, int64_t *item_numel) {
    if (!name) {
        *ndim = e->in.ndim;
        memcpy(dims, e->xdims, sizeof(int64_t) * GB_MAX_DIMS);
    } else {
        const gb_tensor *W = gb_session_tensor(e->s, name);
        if (!W) return gb__err(e->ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s' in the model", name);
        if (W->ndim < 1)
            return gb__err(e->ctx, GB_ERR_UNSUPPORTED, "explain: tensor '%s' is a scalar (no batch dimension)", name);
        *ndim = W->ndim;
        memcpy(dims, W->dims, sizeof(int64_t) * GB_MAX_DIMS);
    }
    dims[0] = 1;
    int64_t n = 1;
    for (int i = 0; i < *ndim; i++) n *= dims[i];
    if (item_numel) *item_numel = n;
    return GB_OK;
}

gb_status gb__explain_alloc_attr(gb_explainer *e, gb_explanation *r, const char *name) {
    int nd;
    int64_t dims[GB_MAX_DIMS];
    gb_status st = gb__explain_item_shape(e, name, &nd, dims, NULL);
    if (st) return st;
    dims[0] = r->n_items;
    gb_tensor_free(r->attr);
    r->attr = NULL;
    if ((st = gb_tensor_create(e->ctx, GB_DTYPE_F32, nd, dims, &r->attr))) return st;
    snprintf(r->attributed_to, sizeof r->attributed_to, "%s", name ? name : e->in.name);
    return GB_OK;
}

/* ---- gb_explain ---------------------------------------------------------------------- */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static gb_status check_input(gb_explainer *e, const gb_tensor *x) {
    char got[128], want[128];
    gb_shape_str(x->ndim, x->dims, got, sizeof got);
    gb_shape_str(e->in.ndim, e->in.dims, want, sizeof want);
    if (x->dtype != GB_DTYPE_F32)
        return gb__err(e->ctx, GB_ERR_ARG, "explain: the input is %s; float32 is needed", gb_dtype_name(x->dtype));
    if (x->ndim != e->in.ndim || x->ndim < 1)
        return gb__err(e->ctx, GB_ERR_SHAPE, "explain: input of shape %s for model input '%s' of shape %s", got,
                       e->in.name, want);
    for (int i = 1; i < x->ndim; i++)
        if ((e->in.dims[i] > 0 && x->dims[i] != e->in.dims[i]) || x->dims[i] < 1)
            return gb__err(e->ctx, GB_ERR_SHAPE, "explain: input of shape %s for model input '%s' of shape %s", got,
                           e->in.name, want);
    if (x->dims[0] < 1) return gb__err(e->ctx, GB_ERR_SHAPE, "explain: empty input batch (%s)", got);
    if (!x->data) return gb__err(e->ctx, GB_ERR_ARG, "explain: input without data");
    return GB_OK;
}

/* Forward on x in chunks: fixes the target's tensor, block and values. */
static gb_status resolve_target(gb_explainer *e, const gb_tensor *x, const gb_target *t, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    if (t->kind == GB_TARGET_NEURON && !t->tensor[0])
        return gb__err(ctx, GB_ERR_ARG, "explain: a neuron target needs a tensor name");
    if (t->tensor[0] && t->kind != GB_TARGET_TOP1) {
        snprintf(r->target_tensor, sizeof r->target_tensor, "%s", t->tensor);
    } else {
        gb_value_info ov;
        gb_status st = gb_model_output(e->m, 0, &ov);
        if (st) return st;
        snprintf(r->target_tensor, sizeof r->target_tensor, "%s", ov.name);
    }
    int64_t N = r->n_items, chunk = e->static_batch ? e->static_batch : e->batch, block_off = 0;
    const float *xd = x->data;
    for (int64_t k0 = 0; k0 < N; k0 += chunk) {
        int64_t b = N - k0 < chunk ? N - k0 : chunk, P;
        gb_status st = run_chunk(e, xd + k0 * e->item_numel, b, &P);
        if (st) return st;
        const gb_tensor *T = target_tensor(e, r);
        if (!T) return gb__err(ctx, GB_ERR_NOT_FOUND, "explain: target: no tensor named '%s' in the model", r->target_tensor);
        if ((st = gb__target_check_tensor(ctx, r, T, P, k0 == 0))) return st;
        if (k0 == 0 && t->kind != GB_TARGET_TOP1 && (st = gb__target_block(ctx, t, r, &block_off))) return st;
        int64_t in = T->numel / P;
        for (int64_t k = 0; k < b; k++) {
            if (t->kind == GB_TARGET_TOP1) {
                const float *row = (const float *)T->data + k * in;
                int64_t best = 0;
                for (int64_t j = 1; j < in; j++)
                    if (row[j] > row[best]) best = j;
                r->target_offset[k0 + k] = best;
                r->target_count = 1;
            } else {
                r->target_offset[k0 + k] = block_off;
            }
        }
        int64_t items[64];
        for (int64_t j0 = 0; j0 < b; j0 += 64) {
            int64_t nb = b - j0 < 64 ? b - j0 : 64;
            for (int64_t j = 0; j < nb; j++) items[j] = k0 + j0 + j;
            /* rows j0.. of this chunk are items k0 + j0..: shift T's view */
            gb_tensor Tv = *T;
            Tv.data = (float *)T->data + j0 * in;
            Tv.dims[0] = nb;
            Tv.numel = nb * in;
            gb__target_values(r, &Tv, items, nb, r->value + k0 + j0);
        }
    }
    return GB_OK;
}

/* The default rows per pass: up to GB_EXPLAIN_DEFAULT_BATCH, fewer for big
 * models so that the kept activations and their gradients stay within
 * about GB_EXPLAIN_PASS_BYTES (resnet18 at 224 x 224 keeps ~25 MB of
 * activations per row, and as much again for gradients). Measured from the
 * plan of the resolving pass, whose chunk had min(N, batch) rows. */
#define GB_EXPLAIN_PASS_BYTES ((size_t)512 << 20)
static int auto_batch(gb_explainer *e, int64_t N) {
    if (e->static_batch) return (int)e->static_batch;
    size_t reserved = 0, total = 0;
    gb_session_memory(e->s, &reserved, &total);
    int64_t rows = N < GB_EXPLAIN_DEFAULT_BATCH ? N : GB_EXPLAIN_DEFAULT_BATCH;
    size_t per_row = 2 * (total > reserved ? total : reserved) / (size_t)(rows > 0 ? rows : 1);
    if (!per_row) return GB_EXPLAIN_DEFAULT_BATCH;
    size_t b = GB_EXPLAIN_PASS_BYTES / per_row;
    return b < 1 ? 1 : b > GB_EXPLAIN_DEFAULT_BATCH ? GB_EXPLAIN_DEFAULT_BATCH : (int)b;
}

static gb_status unknown_method(gb_ctx *ctx, const char *name) {
    char list[1024];
    size_t o = 0;
    list[0] = 0;
    for (int i = 0; i < gb_method_count() && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", gb_method_at(i)->name);
    return gb__err(ctx, GB_ERR_NOT_FOUND, "explain: unknown method '%s' (known: %s)", name ? name : "(null)", list);
}

gb_status gb_explain(gb_explainer *e, const char *method, const gb_tensor *x, const gb_explain_opts *opts,
                     gb_explanation **out) {
    *out = NULL;
    if (!e) return GB_ERR_ARG;
    gb_ctx *ctx = e->ctx;
    gb_explain_opts dflt = GB_EXPLAIN_OPTS_INIT;
    const gb_explain_opts *o = opts ? opts : &dflt;
    const gb_method *md = gb_method_find(method);
    if (!md) return unknown_method(ctx, method);
    if (!x) return gb__err(ctx, GB_ERR_ARG, "explain: no input");
    if (o->layer && !(md->flags & (GB_METHOD_LAYER | GB_METHOD_CAM)))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "explain: %s has no layer form (--layer)", md->name);
    if (o->layer && !*o->layer) return gb__err(ctx, GB_ERR_ARG, "explain: empty layer name");
    if (o->batch < 0) return gb__err(ctx, GB_ERR_ARG, "explain: batch %d must be positive", o->batch);
    if ((unsigned)o->target.kind >= GB_TARGET_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "explain: bad target kind %d", (int)o->target.kind);
    gb_status st = check_input(e, x);
    if (st) return st;
    int64_t N = x->dims[0];
    e->item_numel = x->numel / N;
    memcpy(e->xdims, x->dims, sizeof e->xdims);
    e->batch = o->batch > 0 ? o->batch : GB_EXPLAIN_DEFAULT_BATCH;

    gb_explanation *r = calloc(1, sizeof *r);
    if (!r) return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    snprintf(r->method, sizeof r->method, "%s", md->name);
    r->mode = md->mode;
    r->n_items = N;
    r->target_offset = calloc((size_t)N, sizeof *r->target_offset);
    r->value = calloc((size_t)N, sizeof *r->value);
    if (!r->target_offset || !r->value) {
        gb_explanation_free(r);
        return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    double t0 = now_seconds();
    e->held_valid = false;
    st = resolve_target(e, x, &o->target, r);
    if (!st && o->batch <= 0) e->batch = auto_batch(e, N);
    if (!st) st = md->fn(e, x, o, r);
    if (!st && !r->attr) st = gb__err(ctx, GB_ERR_INTERNAL, "explain: %s produced no attribution", md->name);
    e->held_valid = false;
    if (st) {
        gb_explanation_free(r);
        return st;
    }
    r->seconds = now_seconds() - t0;
    *out = r;
    return GB_OK;
}

/* ---- randomness ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gb__rng_seed(gb__rng *g, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&x);
    g->has_spare = false;
    g->spare = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gb__rng_u64(gb__rng *g) {   /* xoshiro256** 1.0 */
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double gb__rng_uniform(gb__rng *g) { return (double)(gb__rng_u64(g) >> 11) * 0x1.0p-53; }

double gb__rng_normal(gb__rng *g) {
    if (g->has_spare) {
        g->has_spare = false;
        return g->spare;
    }
    double u1, u2;
    do u1 = gb__rng_uniform(g);
    while (u1 <= 0.0);
    u2 = gb__rng_uniform(g);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586476925 * u2;
    g->spare = rad * sin(th);
    g->has_spare = true;
    return rad * cos(th);
}

uint64_t gb__rng_below(gb__rng *g, uint64_t n) {
    if (n <= 1) return 0;
    /* Rejection of the top partial block of 2^64 mod n values: unbiased. */
    uint64_t t = (0 - n) % n, v;
    do v = gb__rng_u64(g);
    while (v < t);
    return v % n;
}

/* ---- helpers ---------------------------------------------------------------------------- */

void gb__minmax(const float *x, int64_t n, float *lo, float *hi) {
    float a = n ? x[0] : 0, b = a;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] < a) a = x[i];
        if (x[i] > b) b = x[i];
    }
    *lo = a;
    *hi = b;
}

int gb__opt_samples(const gb_explain_opts *o, int dflt) { return o->n_samples > 0 ? o->n_samples : dflt; }
double gb__opt_noise(const gb_explain_opts *o, double dflt) { return o->noise >= 0 ? o->noise : dflt; }
