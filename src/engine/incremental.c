/*
 * incremental.c — incremental inference: recompute only the receptive-field
 * cone of a changed box (see incremental.h; Nakandala et al., SIGMOD 2019).
 *
 * Three steps per batch of rows:
 *   1. classify (once per base plan): which nodes have a region kernel, and
 *      their window geometry, re-derived from the ONNX attributes exactly as
 *      src/ops/conv.c and pool.c derive it (and checked against the planned
 *      output shape, so a disagreement only costs speed: the node becomes
 *      generic);
 *   2. plan: propagate each row's box node by node — a Conv / pool output
 *      position is in the region when its window meets the input's region
 *      (a superset when dilated taps skip it: recomputing an unchanged value
 *      is harmless), per-position ops take the bounding box of their
 *      inputs' regions — and sum the FLOPs (the node's planned FLOPs scaled
 *      by the region's share of its output plane);
 *   3. run: the region kernels below read their inputs over the receptive
 *      field of the output region (base values overlaid with the input's
 *      patch, zero outside the image = Conv's padding) and write the output
 *      patch; all rows of the batch go through one im2col buffer and one
 *      GEMM per column tile (the batching of rows into a GEMM that makes
 *      small regions efficient).
 */
#include "engine/incremental.h"
#include "engine/session.h"
#include "ops/util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern void openblas_set_num_threads(int);

#define MAX_IO 64
/* im2col column-buffer budget (floats): K x tile columns stays ~16 MB. */
#define COL_BUDGET ((int64_t)4 << 20)
/* A region op whose output regions cover this share of the planes of all
 * rows runs as a dense op (the op's own kernel on whole rows: oneDNN or
 * im2col over the batch). Measured on resnet18 (16x16 windows, 32 rows):
 * switching at 0.4-0.7 of the plane cost more (the extra positions) than
 * the faster kernel saved, so only fully covered planes switch. */
#define GB_INCR_DENSE 1.0

enum { K_SKIP, K_GENERIC, K_CONV, K_MAXPOOL, K_AVGPOOL, K_POINTWISE, K_CONCAT, K_IDENTITY };
enum { S_UNCHANGED, S_PATCH, S_DENSE };

typedef struct { int64_t y0, y1, x0, x1; } box;

typedef struct {
    int kind;
    bool batch_safe;               /* GENERIC: forward treats dim 0 as the batch */
    int64_t k[2], s[2], d[2], pb[2], pe[2];
    int64_t group;
    bool count_include_pad;
} node_info;

typedef struct {
    int mode;
    box *bx;                       /* per row (PATCH) */
    int64_t *off;                  /* per row column offset (PATCH) */
    int64_t cols;
    void *data;                    /* PATCH (C, cols) floats; DENSE (B, item) */
    int owner;                     /* tensor id whose buffer data is (frees it) */
} tstate;

struct gb__incr {
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;                 /* batch-1 session holding the base activations */
    float *key;                    /* the base item's input values */
    int64_t key_n;
    bool has_base, usable;
    node_info *ni;
    int *last_use;                 /* per tensor id: last node reading it */
    tstate *st;                    /* per tensor id */
    box *bxs;                      /* n_tensors * B boxes */
    int64_t *offs;                 /* n_tensors * B offsets */
    int64_t B, B_cap;
    double full1;                  /* FLOPs of one full pass */
    void *ws;
    size_t ws_size;
    float *col, *win;
    size_t col_cap, win_cap;
    gb__incr_stats stats;
    gb_tensor tview;               /* gb__incr_run's (B, ...) view of the target */
};

/* ---- small helpers -------------------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static bool box_empty(box b) { return b.y1 <= b.y0 || b.x1 <= b.x0; }
static int64_t box_area(box b) { return box_empty(b) ? 0 : (b.y1 - b.y0) * (b.x1 - b.x0); }
static box box_union(box a, box b) {
    if (box_empty(a)) return b;
    if (box_empty(b)) return a;
    return (box){imin(a.y0, b.y0), imax(a.y1, b.y1), imin(a.x0, b.x0), imax(a.x1, b.x1)};
}

static gb_status ensure(gb_ctx *ctx, float **p, size_t *cap, size_t n) {
    if (n <= *cap) return GB_OK;
    free(*p);
    *p = malloc(n * sizeof **p);
    *cap = *p ? n : 0;
    return *p ? GB_OK : gb__err(ctx, GB_ERR_NOMEM, "incremental: out of memory (%zu floats)", n);
}

static gb_status ensure_ws(gb__incr *inc, size_t bytes) {
    if (bytes <= inc->ws_size) return GB_OK;
    void *w = realloc(inc->ws, bytes);
    if (!w) return gb__err(inc->ctx, GB_ERR_NOMEM, "incremental: out of memory for a %zu-byte workspace", bytes);
    inc->ws = w;
    inc->ws_size = bytes;
    return GB_OK;
}

static bool is_const(const gb__incr *inc, int id) { return id < 0 || inc->s->is_const[id]; }
static const gb_tensor *base_t(const gb__incr *inc, int id) { return &inc->s->t[id]; }
static bool is_patchable(const gb_tensor *t) {
    return t->ndim == 4 && t->dims[0] == 1 && t->dtype == GB_DTYPE_F32;
}

/* ---- create / free -------------------------------------------------------- */

gb_status gb__incr_create(gb_ctx *ctx, gb_model *m, gb__incr **out) {
    *out = NULL;
    gb__incr *inc = calloc(1, sizeof *inc);
    if (!inc) return gb__err(ctx, GB_ERR_NOMEM, "incremental: out of memory");
    inc->ctx = ctx;
    inc->m = m;
    gb_status st = gb_session_create(m, &inc->s);
    if (st) {
        free(inc);
        return st;
    }
    gb_session_keep_activations(inc->s, 1);
    inc->ni = calloc((size_t)m->n_nodes + 1, sizeof *inc->ni);
    inc->last_use = calloc((size_t)m->n_tensors + 1, sizeof *inc->last_use);
    inc->st = calloc((size_t)m->n_tensors + 1, sizeof *inc->st);
    if (!inc->ni || !inc->last_use || !inc->st) {
        gb__incr_free(inc);
        return gb__err(ctx, GB_ERR_NOMEM, "incremental: out of memory");
    }
    *out = inc;
    return GB_OK;
}

static void release_buffers(gb__incr *inc) {
    for (int i = 0; i < inc->m->n_tensors; i++) {
        tstate *t = &inc->st[i];
        if (t->data && t->owner == i) free(t->data);
        t->data = NULL;
    }
}

void gb__incr_free(gb__incr *inc) {
    if (!inc) return;
    if (inc->st) release_buffers(inc);
    gb_session_free(inc->s);
    free(inc->key);
    free(inc->ni);
    free(inc->last_use);
    free(inc->st);
    free(inc->bxs);
    free(inc->offs);
    free(inc->ws);
    free(inc->col);
    free(inc->win);
    free(inc);
}

void gb__incr_get_stats(const gb__incr *inc, gb__incr_stats *out) { *out = inc->stats; }
void gb__incr_reset_stats(gb__incr *inc) { memset(&inc->stats, 0, sizeof inc->stats); }
const gb_tensor *gb__incr_base_tensor(const gb__incr *inc, int id) {
    return inc->has_base ? gb__session_tensor(inc->s, id) : NULL;
}
double gb__incr_full_flops(const gb__incr *inc) { return inc->has_base ? inc->full1 : 0; }

void gb__incr_note_full(gb__incr *inc, int64_t rows) {
    inc->stats.rows_full += rows;
    inc->stats.batches_full++;
    inc->stats.flops_full += (double)rows * inc->full1;
    inc->stats.flops_incr += (double)rows * inc->full1;
}

/* ---- step 1: classify ----------------------------------------------------- */

static bool op_is(const gb__node *n, const char *const *names) {
    for (int i = 0; names[i]; i++)
        if (strcmp(n->op_type, names[i]) == 0) return true;
    return false;
}

/* Ops whose output at a position depends only on the inputs at that position
 * (per channel, or across channels at that position only for none of them). */
static const char *const pointwise_ops[] = {
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "Tanh", "Clip", "HardSigmoid",
    "HardSwish", "Softplus", "Softsign", "ThresholdedRelu", "Shrink", "Abs", "Neg", "Exp", "Log",
    "Sqrt", "Erf", "Add", "Sub", "Mul", "Div", "Pow", "BatchNormalization", NULL,
};
/* Generic ops that may run on a (B, ...) batch of rows at once: they treat
 * dim 0 as independent items (checked further by the inferred shape). */
static const char *const batch_safe_ops[] = {
    "Gemm", "MatMul", "GlobalAveragePool", "GlobalMaxPool", "Conv", "MaxPool", "AveragePool",
    "Flatten", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "Tanh", "Clip",
    "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf",
    "Add", "Sub", "Mul", "Div", "Pow", "BatchNormalization", NULL,
};

/* Window geometry of a 2-D Conv / MaxPool / AveragePool from its attributes
 * (conv.c conv_geometry, pool.c pool_geometry), checked against the planned
 * output shape. */
static bool window_geometry(const gb__node *n, const gb_tensor *x, const gb_tensor *w, const gb_tensor *y,
                            bool pool, node_info *ni) {
    int64_t ks[4], v[8];
    int nk;
    if (pool) {
        nk = gb__attr_ints(n, "kernel_shape", ks, 4);
        if (nk != 2) return false;
    } else {
        if (!w || w->ndim != 4) return false;
        ks[0] = w->dims[2];
        ks[1] = w->dims[3];
        nk = gb__attr_ints(n, "kernel_shape", v, 4);
        if (nk >= 0 && (nk != 2 || v[0] != ks[0] || v[1] != ks[1])) return false;
    }
    for (int i = 0; i < 2; i++) {
        ni->k[i] = ks[i];
        ni->s[i] = ni->d[i] = 1;
        ni->pb[i] = ni->pe[i] = 0;
    }
    int ns = gb__attr_ints(n, "strides", v, 4);
    if (ns >= 0 && ns != 2) return false;
    for (int i = 0; ns == 2 && i < 2; i++) ni->s[i] = v[i];
    int nd = gb__attr_ints(n, "dilations", v, 4);
    if (nd >= 0 && nd != 2) return false;
    for (int i = 0; nd == 2 && i < 2; i++) ni->d[i] = v[i];
    int np = gb__attr_ints(n, "pads", v, 8);
    if (np >= 0 && np != 4) return false;
    const char *ap = gb__attr_str(n, "auto_pad", "NOTSET");
    bool same = strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0;
    bool valid = strcmp(ap, "VALID") == 0;
    if (!same && !valid && strcmp(ap, "NOTSET") != 0 && ap[0]) return false;
    bool ceil_mode = pool && gb__attr_int(n, "ceil_mode", 0) != 0;
    for (int i = 0; i < 2; i++) {
        int64_t in = x->dims[2 + i], k = ni->k[i], s = ni->s[i], d = ni->d[i], ext = (k - 1) * d + 1, out;
        if (k < 1 || s < 1 || d < 1) return false;
        if (same) {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + ext - in;
            if (total < 0) total = 0;
            bool upper = strcmp(ap, "SAME_UPPER") == 0;
            ni->pb[i] = upper ? total / 2 : total - total / 2;
            ni->pe[i] = total - ni->pb[i];
        } else {
            if (!valid && np == 4) {
                ni->pb[i] = v[i];
                ni->pe[i] = v[2 + i];
            }
            int64_t span = in + ni->pb[i] + ni->pe[i] - ext;
            if (span < 0) return false;
            out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
            if (ceil_mode && (out - 1) * s >= in + ni->pb[i]) out--;
        }
        if (out != y->dims[2 + i]) return false;
    }
    ni->group = pool ? 1 : gb__attr_int(n, "group", 1);
    ni->count_include_pad = gb__attr_int(n, "count_include_pad", 0) != 0;
    return true;
}

/* A constant operand of a per-position op is position-independent when it
 * broadcasts as (1, C or 1, 1, 1) against the 4-D output. */
static bool const_per_channel(const gb_tensor *c) {
    if (c->ndim > 4) return false;
    for (int k = 0; k < c->ndim; k++) {
        int pos = 4 - c->ndim + k; /* right-aligned position */
        if (pos != 1 && c->dims[k] != 1) return false;
    }
    return true;
}

static bool pads_zero(const gb__incr *inc, const gb__node *n) {
    int64_t v[16];
    int np = gb__attr_ints(n, "pads", v, 16);
    if (np < 0) np = gb__attr_ints(n, "paddings", v, 16);
    if (np > 16) return false;
    for (int i = 0; i < np; i++)
        if (v[i]) return false;
    if (n->n_in > 1 && n->in[1] >= 0) {
        const gb_tensor *p = base_t(inc, n->in[1]);
        if (!is_const(inc, n->in[1]) || p->dtype != GB_DTYPE_I64 || !p->data) return false;
        for (int64_t i = 0; i < p->numel; i++)
            if (((const int64_t *)p->data)[i]) return false;
    }
    return true;
}

static int classify(const gb__incr *inc, const gb__node *n, node_info *ni) {
    const gb_tensor *y = n->out[0] >= 0 ? base_t(inc, n->out[0]) : NULL;
    for (int k = 1; k < n->n_out; k++)
        if (n->out[k] >= 0) return K_GENERIC;
    if (!y || !is_patchable(y) || n->n_in < 1 || n->in[0] < 0) return K_GENERIC;
    const gb_tensor *x = base_t(inc, n->in[0]);
    if (strcmp(n->op_type, "Conv") == 0) {
        if (!is_patchable(x) || is_const(inc, n->in[0]) || !is_const(inc, n->in[1]) ||
            (n->n_in > 2 && n->in[2] >= 0 && !is_const(inc, n->in[2])))
            return K_GENERIC;
        const gb_tensor *w = base_t(inc, n->in[1]);
        if (!window_geometry(n, x, w, y, false, ni)) return K_GENERIC;
        if (ni->group < 1 || x->dims[1] % ni->group || y->dims[1] % ni->group || w->dims[1] != x->dims[1] / ni->group)
            return K_GENERIC;
        return K_CONV;
    }
    if (strcmp(n->op_type, "MaxPool") == 0 || strcmp(n->op_type, "AveragePool") == 0) {
        if (!is_patchable(x) || n->n_in != 1) return K_GENERIC;
        if (!window_geometry(n, x, NULL, y, true, ni)) return K_GENERIC;
        return n->op_type[0] == 'M' ? K_MAXPOOL : K_AVGPOOL;
    }
    if (op_is(n, pointwise_ops)) {
        bool bn = strcmp(n->op_type, "BatchNormalization") == 0, any = false;
        if (bn && n->n_in != 5) return K_GENERIC;
        for (int k = 0; k < n->n_in; k++) {
            int id = n->in[k];
            if (id < 0) continue;
            const gb_tensor *t = base_t(inc, id);
            if (is_const(inc, id)) {
                if (k == 0 && bn) return K_GENERIC;
                if (!bn && !const_per_channel(t)) return K_GENERIC;
                continue;
            }
            if (bn && k > 0) return K_GENERIC;
            if (t->ndim != 4 || t->dtype != GB_DTYPE_F32) return K_GENERIC;
            for (int a = 0; a < 4; a++)
                if (t->dims[a] != y->dims[a]) return K_GENERIC;
            any = true;
        }
        return any ? K_POINTWISE : K_GENERIC;
    }
    if (strcmp(n->op_type, "Concat") == 0) {
        if (gb__axis(gb__attr_int(n, "axis", 1), 4) != 1) return K_GENERIC;
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0) return K_GENERIC;
            const gb_tensor *t = base_t(inc, n->in[k]);
            if (!is_patchable(t) || t->dims[2] != y->dims[2] || t->dims[3] != y->dims[3]) return K_GENERIC;
        }
        return K_CONCAT;
    }
    /* Views and no-ops that keep the shape: the output is the input. */
    bool same = x->ndim == 4 && !is_const(inc, n->in[0]);
    for (int a = 0; same && a < 4; a++) same = x->dims[a] == y->dims[a];
    if (same && (n->op->alias || strcmp(n->op_type, "Identity") == 0 ||
                 (strcmp(n->op_type, "Pad") == 0 && pads_zero(inc, n))))
        return K_IDENTITY;
    return K_GENERIC;
}

static void classify_all(gb__incr *inc) {
    gb_model *m = inc->m;
    inc->full1 = 0;
    for (int i = 0; i < m->n_tensors; i++) inc->last_use[i] = -1;
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        node_info *ni = &inc->ni[i];
        memset(ni, 0, sizeof *ni);
        if (inc->s->folded[i]) {
            ni->kind = K_SKIP;
            continue;
        }
        inc->full1 += inc->s->flops[i];
        ni->kind = classify(inc, n, ni);
        if (ni->kind == K_GENERIC) {
            ni->batch_safe = op_is(n, batch_safe_ops);
            if (strcmp(n->op_type, "Gemm") == 0 && gb__attr_int(n, "transA", 0)) ni->batch_safe = false;
            if (strcmp(n->op_type, "Flatten") == 0 && gb__attr_int(n, "axis", 1) == 0) ni->batch_safe = false;
        }
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) inc->last_use[n->in[k]] = i;
    }
}

/* ---- base ------------------------------------------------------------------ */

gb_status gb__incr_set_base(gb__incr *inc, const gb_tensor *x_item, bool *usable) {
    *usable = false;
    if (x_item->dtype != GB_DTYPE_F32 || x_item->ndim != 4 || x_item->dims[0] != 1) return GB_ERR_UNSUPPORTED;
    if (inc->has_base && inc->key_n == x_item->numel &&
        memcmp(inc->key, x_item->data, (size_t)x_item->numel * sizeof(float)) == 0) {
        *usable = inc->usable;
        return GB_OK;
    }
    inc->has_base = false;
    release_buffers(inc);
    if (inc->key_n != x_item->numel) {
        free(inc->key);
        inc->key = malloc((size_t)x_item->numel * sizeof(float));
        inc->key_n = inc->key ? x_item->numel : 0;
        if (!inc->key) return gb__err(inc->ctx, GB_ERR_NOMEM, "incremental: out of memory");
    }
    const gb_tensor *in[1] = {x_item};
    gb_status st = gb_session_run(inc->s, in, 1);
    if (st) return st;
    memcpy(inc->key, x_item->data, (size_t)x_item->numel * sizeof(float));
    classify_all(inc);
    int id0 = inc->m->inputs[0];
    inc->usable = inc->m->n_inputs == 1 && is_patchable(base_t(inc, id0));
    inc->has_base = true;
    *usable = inc->usable;
    return GB_OK;
}

/* ---- step 2: plan ---------------------------------------------------------- */

/* Output range [o0, o1) of a window op whose input changed in [a0, a1):
 * outputs o with o*s - pb + j*d in [a0, a1) for some tap j. */
static void out_range(int64_t a0, int64_t a1, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t out,
                      int64_t *o0, int64_t *o1) {
    int64_t lo = floordiv(a0 + pb - (k - 1) * d + s - 1, s), hi = floordiv(a1 - 1 + pb, s) + 1;
    *o0 = imax(lo, 0);
    *o1 = imin(hi, out);
    if (*o1 < *o0) *o1 = *o0;
}

static void set_offsets(tstate *t, int64_t B) {
    int64_t c = 0;
    bool any = false;
    for (int64_t r = 0; r < B; r++) {
        t->off[r] = c;
        c += box_area(t->bx[r]);
        any |= !box_empty(t->bx[r]);
    }
    t->cols = c;
    t->mode = any ? S_PATCH : S_UNCHANGED;
}

gb_status gb__incr_plan(gb__incr *inc, int64_t B, const int64_t *boxes, double *flops_incr,
                        double *flops_full) {
    gb_model *m = inc->m;
    int nt = m->n_tensors;
    *flops_incr = *flops_full = 0;
    if (!inc->has_base || !inc->usable) return gb__err(inc->ctx, GB_ERR_INTERNAL, "incremental: no base");
    release_buffers(inc);
    if (B > inc->B_cap) {
        free(inc->bxs);
        free(inc->offs);
        inc->bxs = malloc(sizeof(box) * (size_t)(nt * B));
        inc->offs = malloc(sizeof(int64_t) * (size_t)(nt * B));
        if (!inc->bxs || !inc->offs) {
            inc->B_cap = 0;
            return gb__err(inc->ctx, GB_ERR_NOMEM, "incremental: out of memory");
        }
        inc->B_cap = B;
    }
    inc->B = B;
    for (int i = 0; i < nt; i++) {
        tstate *t = &inc->st[i];
        memset(t, 0, sizeof *t);
        t->bx = inc->bxs + (size_t)i * (size_t)B;
        t->off = inc->offs + (size_t)i * (size_t)B;
        t->owner = i;
    }
    int id0 = m->inputs[0];
    const gb_tensor *x = base_t(inc, id0);
    tstate *xs = &inc->st[id0];
    for (int64_t r = 0; r < B; r++) {
        const int64_t *b = boxes + 4 * r;
        xs->bx[r] = (box){imax(b[0], 0), imin(b[1], x->dims[2]), imax(b[2], 0), imin(b[3], x->dims[3])};
        if (box_empty(xs->bx[r])) xs->bx[r] = (box){0, 0, 0, 0};
    }
    set_offsets(xs, B);
    double fi = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        node_info *ni = &inc->ni[i];
        if (ni->kind == K_SKIP) continue;
        bool changed = false, dense = false;
        for (int k = 0; k < n->n_in; k++) {
            if (is_const(inc, n->in[k])) continue;
            int md = inc->st[n->in[k]].mode;
            changed |= md != S_UNCHANGED;
            dense |= md == S_DENSE;
        }
        if (!changed) continue;   /* outputs stay UNCHANGED */
        int kind = dense && ni->kind != K_IDENTITY ? K_GENERIC : ni->kind;
        if (kind == K_GENERIC) {
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0) inc->st[n->out[k]].mode = S_DENSE;
            fi += (double)B * inc->s->flops[i];
            continue;
        }
        tstate *yt = &inc->st[n->out[0]];
        const gb_tensor *y = base_t(inc, n->out[0]);
        if (kind == K_IDENTITY) {
            const tstate *xt = &inc->st[n->in[0]];
            yt->mode = xt->mode;
            memcpy(yt->bx, xt->bx, sizeof(box) * (size_t)B);
            memcpy(yt->off, xt->off, sizeof(int64_t) * (size_t)B);
            yt->cols = xt->cols;
            continue;
        }
        int64_t area = 0;
        for (int64_t r = 0; r < B; r++) {
            box u = {0, 0, 0, 0};
            if (kind == K_CONV || kind == K_MAXPOOL || kind == K_AVGPOOL) {
                box a = inc->st[n->in[0]].bx[r];
                if (inc->st[n->in[0]].mode == S_PATCH && !box_empty(a)) {
                    out_range(a.y0, a.y1, ni->k[0], ni->s[0], ni->d[0], ni->pb[0], y->dims[2], &u.y0, &u.y1);
                    out_range(a.x0, a.x1, ni->k[1], ni->s[1], ni->d[1], ni->pb[1], y->dims[3], &u.x0, &u.x1);
                }
            } else {
                for (int k = 0; k < n->n_in; k++)
                    if (!is_const(inc, n->in[k]) && inc->st[n->in[k]].mode == S_PATCH)
                        u = box_union(u, inc->st[n->in[k]].bx[r]);
            }
            if (box_empty(u)) u = (box){0, 0, 0, 0};
            yt->bx[r] = u;
            area += box_area(u);
        }
        const double plane = (double)(y->dims[2] * y->dims[3]);
        if ((double)area >= GB_INCR_DENSE * (double)B * plane) {
            /* The regions cover (nearly) the whole plane: run the op's own
             * batched kernel on whole rows (oneDNN or im2col over the
             * batch), as a full pass would, from here on. */
            yt->mode = S_DENSE;
            fi += (double)B * inc->s->flops[i];
            continue;
        }
        fi += inc->s->flops[i] * (double)area / plane;
        set_offsets(yt, B);
    }
    *flops_incr = fi;
    *flops_full = (double)B * inc->full1;
    return GB_OK;
}

/* ---- step 3: kernels -------------------------------------------------------- */

/* dst[c * dcs + (y - w.y0) * ww + (x - w.x0)] = tensor t at (c, y, x) for row r:
 * the base (1, C, H, W), overlaid with row r's patch; `fill` outside the image. */
static void gather(const tstate *t, const gb_tensor *bt, int64_t r, box w, float fill, float *dst, int64_t dcs,
                   int nt) {
    const int64_t C = bt->dims[1], H = bt->dims[2], W = bt->dims[3];
    const int64_t wh = w.y1 - w.y0, ww = w.x1 - w.x0;
    const int64_t cx0 = imax(w.x0, 0), cx1 = imin(w.x1, W);
    const float *base = bt->data;
    const bool patch = t->mode == S_PATCH && !box_empty(t->bx[r]);
    const box p = patch ? t->bx[r] : (box){0, 0, 0, 0};
    const int64_t pw = p.x1 - p.x0, px0 = imax(p.x0, w.x0), px1 = imin(p.x1, w.x1);
    const float *pd = patch ? (const float *)t->data + t->off[r] : NULL;
#pragma omp parallel for num_threads(nt) schedule(static) if (C * wh * ww > GB_PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        for (int64_t yy = 0; yy < wh; yy++) {
            const int64_t y = w.y0 + yy;
            float *d = dst + c * dcs + yy * ww;
            if (y < 0 || y >= H || cx1 <= cx0) {
                for (int64_t i = 0; i < ww; i++) d[i] = fill;
                continue;
            }
            for (int64_t i = 0; i < cx0 - w.x0; i++) d[i] = fill;
            memcpy(d + (cx0 - w.x0), base + (c * H + y) * W + cx0, (size_t)(cx1 - cx0) * sizeof *d);
            for (int64_t i = cx1 - w.x0; i < ww; i++) d[i] = fill;
            if (patch && y >= p.y0 && y < p.y1 && px1 > px0)
                memcpy(d + (px0 - w.x0), pd + c * t->cols + (y - p.y0) * pw + (px0 - p.x0),
                       (size_t)(px1 - px0) * sizeof *d);
        }
    }
}

/* Row r of tensor id, whole, into dst (its base item numel elements). */
static void materialize_row(const gb__incr *inc, int id, int64_t r, void *dst) {
    const tstate *t = &inc->st[id];
    const gb_tensor *bt = base_t(inc, id);
    size_t bytes = (size_t)bt->numel * gb_dtype_size(bt->dtype);
    if (t->mode == S_DENSE) {
        memcpy(dst, (const char *)t->data + (size_t)r * bytes, bytes);
        return;
    }
    memcpy(dst, bt->data, bytes);
    if (t->mode != S_PATCH || box_empty(t->bx[r])) return;
    box p = t->bx[r];
    const int64_t C = bt->dims[1], H = bt->dims[2], W = bt->dims[3], pw = p.x1 - p.x0;
    const float *pd = (const float *)t->data + t->off[r];
    float *d = dst;
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = p.y0; y < p.y1; y++)
            memcpy(d + (c * H + y) * W + p.x0, pd + c * t->cols + (y - p.y0) * pw, (size_t)pw * sizeof *d);
}

static gb_status alloc_state(gb__incr *inc, int id, size_t bytes) {
    tstate *t = &inc->st[id];
    t->data = malloc(bytes ? bytes : 1);
    t->owner = id;
    if (!t->data) return gb__err(inc->ctx, GB_ERR_NOMEM, "incremental: out of memory (%zu bytes)", bytes);
    return GB_OK;
}

static bool same_layout(const tstate *a, const tstate *b, int64_t B) {
    if (a->mode != S_PATCH || a->cols != b->cols) return false;
    for (int64_t r = 0; r < B; r++) {
        box p = a->bx[r], q = b->bx[r];
        if (box_area(q) && (p.y0 != q.y0 || p.y1 != q.y1 || p.x0 != q.x0 || p.x1 != q.x1)) return false;
        if (box_area(p) != box_area(q)) return false;
    }
    return true;
}

/* Conv over the output regions: per tile of output columns (rows of the
 * batch and strips of output rows, consecutive in the patch layout), gather
 * the receptive field, im2col, and one GEMM per group writing straight into
 * the output patch (Y[oc, j] = B[oc] + sum W[oc, (c, ky, kx)] col[(c, ky, kx), j]). */
static gb_status conv_run(gb__incr *inc, const gb__node *n, const node_info *ni) {
    const int nt = inc->ctx->n_threads;
    const int64_t B = inc->B;
    const tstate *xt = &inc->st[n->in[0]];
    tstate *yt = &inc->st[n->out[0]];
    const gb_tensor *xb = base_t(inc, n->in[0]), *wb = base_t(inc, n->in[1]);
    const float *w = wb->data;
    const float *bias = n->n_in > 2 && n->in[2] >= 0 ? base_t(inc, n->in[2])->data : NULL;
    const int64_t Cin = xb->dims[1], Cout = base_t(inc, n->out[0])->dims[1], G = ni->group;
    const int64_t cg = Cin / G, Mg = Cout / G, kh = ni->k[0], kw = ni->k[1], kvol = kh * kw, Kg = cg * kvol;
    const int64_t sy = ni->s[0], sx = ni->s[1], dy = ni->d[0], dx = ni->d[1];
    const int64_t exth = (kh - 1) * dy + 1, extw = (kw - 1) * dx + 1;
    gb_status st = alloc_state(inc, n->out[0], (size_t)(Cout * yt->cols) * sizeof(float));
    if (st) return st;
    float *y = yt->data;
    const int64_t ldy = yt->cols;

    /* 1x1, stride 1, unpadded, input region == output region: the input
     * patch is the column matrix. */
    if (kvol == 1 && sy == 1 && sx == 1 && !ni->pb[0] && !ni->pb[1] && same_layout(xt, yt, B)) {
        for (int64_t g = 0; g < G; g++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Mg, (int)ldy, (int)cg, 1.0f, w + g * Mg * Kg,
                        (int)Kg, (const float *)xt->data + g * cg * xt->cols, (int)xt->cols, 0.0f,
                        y + g * Mg * ldy, (int)ldy);
        if (bias)
            for (int64_t oc = 0; oc < Cout; oc++)
                for (int64_t j = 0; j < ldy; j++) y[oc * ldy + j] += bias[oc];
        return GB_OK;
    }

    /* Depthwise-like (one input channel per group): a direct loop. */
    if (cg == 1) {
        const int64_t mult = Mg;
        for (int64_t r = 0; r < B; r++) {
            box o = yt->bx[r];
            if (box_empty(o)) continue;
            box wnd = {o.y0 * sy - ni->pb[0], (o.y1 - 1) * sy - ni->pb[0] + exth, o.x0 * sx - ni->pb[1],
                       (o.x1 - 1) * sx - ni->pb[1] + extw};
            const int64_t wh = wnd.y1 - wnd.y0, ww = wnd.x1 - wnd.x0, bw = o.x1 - o.x0, bh = o.y1 - o.y0;
            if ((st = ensure(inc->ctx, &inc->win, &inc->win_cap, (size_t)(Cin * wh * ww)))) return st;
            gather(xt, xb, r, wnd, 0.0f, inc->win, wh * ww, nt);
            const float *win = inc->win;
            float *yr = y + yt->off[r];
#pragma omp parallel for num_threads(nt) schedule(static) if (Cout * bh * bw * kvol > GB_PAR_MIN)
            for (int64_t oc = 0; oc < Cout; oc++) {
                const float *wc = w + oc * kvol, *xc = win + (oc / mult) * wh * ww;
                float *yc = yr + oc * ldy;
                for (int64_t oy = 0; oy < bh; oy++)
                    for (int64_t ox = 0; ox < bw; ox++) {
                        float s = bias ? bias[oc] : 0.0f;
                        for (int64_t ky = 0; ky < kh; ky++) {
                            const float *xrow = xc + (oy * sy + ky * dy) * ww + ox * sx;
                            for (int64_t kx = 0; kx < kw; kx++) s += wc[ky * kw + kx] * xrow[kx * dx];
                        }
                        yc[oy * bw + ox] = s;
                    }
            }
        }
        return GB_OK;
    }

    /* General: tiles of output columns. */
    const int64_t K = Cin * kvol;
    int64_t maxbw = 1;
    for (int64_t r = 0; r < B; r++) maxbw = imax(maxbw, yt->bx[r].x1 - yt->bx[r].x0);
    int64_t cap = imax(COL_BUDGET / K, 256);
    cap = imax(cap, maxbw);
    if ((st = ensure(inc->ctx, &inc->col, &inc->col_cap, (size_t)(K * cap)))) return st;
    float *col = inc->col;
    int64_t used = 0, c0 = 0;
#define FLUSH()                                                                                                   \
    do {                                                                                                          \
        if (used) {                                                                                               \
            for (int64_t g = 0; g < G; g++)                                                                       \
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Mg, (int)used, (int)Kg, 1.0f,         \
                            w + g * Mg * Kg, (int)Kg, col + g * Kg * cap, (int)cap, 0.0f,                          \
                            y + g * Mg * ldy + c0, (int)ldy);                                                     \
            if (bias)                                                                                             \
                for (int64_t oc = 0; oc < Cout; oc++) {                                                           \
                    float *yp = y + oc * ldy + c0;                                                                \
                    const float bv = bias[oc];                                                                    \
                    for (int64_t j = 0; j < used; j++) yp[j] += bv;                                               \
                }                                                                                                 \
            c0 += used;                                                                                           \
            used = 0;                                                                                             \
        }                                                                                                         \
    } while (0)
    for (int64_t r = 0; r < B; r++) {
        box o = yt->bx[r];
        if (box_empty(o)) continue;
        const int64_t bw = o.x1 - o.x0, strip = imax(1, cap / bw);
        for (int64_t oy0 = o.y0; oy0 < o.y1; oy0 += strip) {
            const int64_t oy1 = imin(oy0 + strip, o.y1), ucols = (oy1 - oy0) * bw;
            if (used + ucols > cap) FLUSH();
            box wnd = {oy0 * sy - ni->pb[0], (oy1 - 1) * sy - ni->pb[0] + exth, o.x0 * sx - ni->pb[1],
                       (o.x1 - 1) * sx - ni->pb[1] + extw};
            const int64_t wh = wnd.y1 - wnd.y0, ww = wnd.x1 - wnd.x0;
            if ((st = ensure(inc->ctx, &inc->win, &inc->win_cap, (size_t)(Cin * wh * ww)))) return st;
            gather(xt, xb, r, wnd, 0.0f, inc->win, wh * ww, nt);
            const float *win = inc->win;
            const int64_t rows = oy1 - oy0;
#pragma omp parallel for num_threads(nt) schedule(static) if (K * ucols > GB_PAR_MIN)
            for (int64_t q = 0; q < K; q++) {
                const int64_t c = q / kvol, t = q % kvol, ky = t / kw, kx = t % kw;
                const float *src = win + c * wh * ww + ky * dy * ww + kx * dx;
                float *dst = col + q * cap + used;
                for (int64_t oy = 0; oy < rows; oy++, dst += bw) {
                    const float *srow = src + oy * sy * ww;
                    if (sx == 1) memcpy(dst, srow, (size_t)bw * sizeof *dst);
                    else
                        for (int64_t ox = 0; ox < bw; ox++) dst[ox] = srow[ox * sx];
                }
            }
            used += ucols;
        }
    }
    FLUSH();
#undef FLUSH
    return GB_OK;
}

/* Taps j in [*lo, *hi) of a window starting at `start` with k taps d apart
 * that land in [0, in) (pool.c tap_range). */
static void tap_range(int64_t start, int64_t k, int64_t d, int64_t in, int64_t *lo, int64_t *hi) {
    *lo = start < 0 ? (-start + d - 1) / d : 0;
    *hi = start > in - 1 ? 0 : (in - 1 - start) / d + 1;
    if (*hi > k) *hi = k;
    if (*lo > *hi) *lo = *hi;
}

/* Taps inside [-pb, in + pe): count_include_pad's divisor (pool.c). */
static int64_t tap_count_padded(int64_t start, int64_t k, int64_t d, int64_t in, int64_t pe) {
    int64_t lim = in + pe - start;
    if (lim <= 0) return 0;
    int64_t c = (lim + d - 1) / d;
    return c < k ? c : k;
}

/* MaxPool / AveragePool over the output regions, exactly pool.c's pool_row
 * (in-range taps only; padding never wins; same divisors). */
static gb_status pool_run(gb__incr *inc, const gb__node *n, const node_info *ni, bool is_max) {
    const int nt = inc->ctx->n_threads;
    const tstate *xt = &inc->st[n->in[0]];
    tstate *yt = &inc->st[n->out[0]];
    const gb_tensor *xb = base_t(inc, n->in[0]);
    const int64_t C = xb->dims[1], H = xb->dims[2], W = xb->dims[3];
    gb_status st = alloc_state(inc, n->out[0], (size_t)(C * yt->cols) * sizeof(float));
    if (st) return st;
    for (int64_t r = 0; r < inc->B; r++) {
        box o = yt->bx[r];
        if (box_empty(o)) continue;
        box wnd = {o.y0 * ni->s[0] - ni->pb[0], (o.y1 - 1) * ni->s[0] - ni->pb[0] + (ni->k[0] - 1) * ni->d[0] + 1,
                   o.x0 * ni->s[1] - ni->pb[1], (o.x1 - 1) * ni->s[1] - ni->pb[1] + (ni->k[1] - 1) * ni->d[1] + 1};
        const int64_t wh = wnd.y1 - wnd.y0, ww = wnd.x1 - wnd.x0, bh = o.y1 - o.y0, bw = o.x1 - o.x0;
        if ((st = ensure(inc->ctx, &inc->win, &inc->win_cap, (size_t)(C * wh * ww)))) return st;
        gather(xt, xb, r, wnd, 0.0f, inc->win, wh * ww, nt);
        const float *win = inc->win;
        float *yr = (float *)yt->data + yt->off[r];
#pragma omp parallel for num_threads(nt) schedule(static) if (C * bh * bw * ni->k[0] * ni->k[1] > GB_PAR_MIN)
        for (int64_t c = 0; c < C; c++) {
            const float *xc = win + c * wh * ww;
            float *yc = yr + c * yt->cols;
            for (int64_t oy = o.y0; oy < o.y1; oy++) {
                const int64_t sh = oy * ni->s[0] - ni->pb[0];
                int64_t h_lo, h_hi;
                tap_range(sh, ni->k[0], ni->d[0], H, &h_lo, &h_hi);
                const int64_t cnt_h = ni->count_include_pad ? tap_count_padded(sh, ni->k[0], ni->d[0], H, ni->pe[0]) : 0;
                for (int64_t ox = o.x0; ox < o.x1; ox++) {
                    const int64_t sw = ox * ni->s[1] - ni->pb[1];
                    int64_t w_lo, w_hi;
                    tap_range(sw, ni->k[1], ni->d[1], W, &w_lo, &w_hi);
                    float v;
                    if (is_max) {
                        float mx = -INFINITY;
                        for (int64_t jh = h_lo; jh < h_hi; jh++) {
                            const float *row = xc + (sh + jh * ni->d[0] - wnd.y0) * ww - wnd.x0;
                            for (int64_t jw = w_lo; jw < w_hi; jw++) {
                                float a = row[sw + jw * ni->d[1]];
                                if (a > mx || a != a) mx = a;
                            }
                        }
                        v = mx;
                    } else {
                        float sum = 0.0f;
                        for (int64_t jh = h_lo; jh < h_hi; jh++) {
                            const float *row = xc + (sh + jh * ni->d[0] - wnd.y0) * ww - wnd.x0;
                            for (int64_t jw = w_lo; jw < w_hi; jw++) sum += row[sw + jw * ni->d[1]];
                        }
                        int64_t cnt = ni->count_include_pad
                                          ? cnt_h * tap_count_padded(sw, ni->k[1], ni->d[1], W, ni->pe[1])
                                          : (h_hi - h_lo) * (w_hi - w_lo);
                        v = cnt > 0 ? sum / (float)cnt : 0.0f;
                    }
                    yc[(oy - o.y0) * bw + (ox - o.x0)] = v;
                }
            }
        }
    }
    return GB_OK;
}

/* A (1, C, 1, cols) view of a patch layout: per-position ops (and
 * BatchNormalization, per channel) compute the same values on it as on the
 * (1, C, H, W) tensor at those positions. */
static gb_tensor patch_view(int64_t C, int64_t cols, void *data) {
    gb_tensor v = {0};
    v.dtype = GB_DTYPE_F32;
    v.ndim = 4;
    v.dims[0] = 1;
    v.dims[1] = C;
    v.dims[2] = 1;
    v.dims[3] = cols;
    v.numel = C * cols;
    v.data = data;
    return v;
}

static gb_status call_forward(gb__incr *inc, const gb__node *n, gb_tensor **in, gb_tensor **out) {
    gb_tensor tmp[MAX_IO], *o2[MAX_IO];
    for (int k = 0; k < n->n_out; k++) {
        if (!out[k]) {
            o2[k] = NULL;
            continue;
        }
        tmp[k] = *out[k];
        o2[k] = &tmp[k];
    }
    size_t ws = 0;
    double fl = 0;
    gb_status st = n->op->infer(inc->ctx, n, in, o2, &ws, &fl);
    if (st) return st;
    for (int k = 0; k < n->n_out; k++)
        if (out[k] && (tmp[k].numel != out[k]->numel || tmp[k].dtype != out[k]->dtype))
            return gb__err(inc->ctx, GB_ERR_INTERNAL, "%s (%s): incremental shape mismatch", n->name, n->op_type);
    if ((st = ensure_ws(inc, ws))) return st;
    gb__exec ex = GB__EXEC_INIT(inc->ctx, inc->ws, inc->ws_size);
    st = n->op->forward(n, (const gb_tensor *const *)in, out, &ex);
    if (st) return gb__err(inc->ctx, st, "%s (%s): invalid value at run time", n->name, n->op_type);
    return GB_OK;
}

static gb_status pointwise_run(gb__incr *inc, const gb__node *n) {
    const int64_t B = inc->B;
    tstate *yt = &inc->st[n->out[0]];
    const gb_tensor *yb = base_t(inc, n->out[0]);
    const int64_t C = yb->dims[1];
    gb_tensor views[MAX_IO], yv, *in[MAX_IO], *out[1];
    float *tmp[MAX_IO] = {0};
    gb_status st = alloc_state(inc, n->out[0], (size_t)(C * yt->cols) * sizeof(float));
    for (int k = 0; !st && k < n->n_in; k++) {
        int id = n->in[k];
        if (id < 0) {
            in[k] = NULL;
            continue;
        }
        if (is_const(inc, id)) {
            in[k] = &inc->s->t[id];
            continue;
        }
        const tstate *xt = &inc->st[id];
        void *data = xt->data;
        if (!same_layout(xt, yt, B)) {
            if (!(tmp[k] = malloc((size_t)(C * yt->cols) * sizeof(float)))) {
                st = gb__err(inc->ctx, GB_ERR_NOMEM, "incremental: out of memory");
                break;
            }
            for (int64_t r = 0; r < B; r++)
                if (!box_empty(yt->bx[r])) gather(xt, base_t(inc, id), r, yt->bx[r], 0.0f, tmp[k] + yt->off[r], yt->cols,
                                                  inc->ctx->n_threads);
            data = tmp[k];
        }
        views[k] = patch_view(C, yt->cols, data);
        in[k] = &views[k];
    }
    if (!st) {
        yv = patch_view(C, yt->cols, yt->data);
        out[0] = &yv;
        st = call_forward(inc, n, in, out);
    }
    for (int k = 0; k < n->n_in; k++) free(tmp[k]);
    return st;
}

static gb_status concat_run(gb__incr *inc, const gb__node *n) {
    tstate *yt = &inc->st[n->out[0]];
    const int64_t C = base_t(inc, n->out[0])->dims[1];
    gb_status st = alloc_state(inc, n->out[0], (size_t)(C * yt->cols) * sizeof(float));
    if (st) return st;
    int64_t coff = 0;
    for (int k = 0; k < n->n_in; k++) {
        const gb_tensor *xb = base_t(inc, n->in[k]);
        const tstate *xt = &inc->st[n->in[k]];
        for (int64_t r = 0; r < inc->B; r++)
            if (!box_empty(yt->bx[r]))
                gather(xt, xb, r, yt->bx[r], 0.0f, (float *)yt->data + coff * yt->cols + yt->off[r], yt->cols,
                       inc->ctx->n_threads);
        coff += xb->dims[1];
    }
    return GB_OK;
}

/* Any op on whole rows: inputs materialised (B, item); one batched call when
 * the op treats dim 0 as the batch and the inferred shapes agree, else one
 * call per row with the batch-1 shapes of the plan. */
static gb_status generic_run(gb__incr *inc, int i, const gb__node *n, const node_info *ni) {
    const int64_t B = inc->B;
    gb_status st = GB_OK;
    void *tmp[MAX_IO] = {0};
    const void *src[MAX_IO] = {0};
    for (int k = 0; k < n->n_in; k++) {
        int id = n->in[k];
        if (is_const(inc, id)) continue;
        const gb_tensor *bt = base_t(inc, id);
        const tstate *xt = &inc->st[id];
        if (xt->mode == S_DENSE) {
            src[k] = xt->data;
            continue;
        }
        size_t bytes = (size_t)bt->numel * gb_dtype_size(bt->dtype);
        if (!(tmp[k] = malloc(bytes * (size_t)B + 1))) {
            st = gb__err(inc->ctx, GB_ERR_NOMEM, "incremental: out of memory");
            goto done;
        }
        for (int64_t r = 0; r < B; r++) materialize_row(inc, id, r, (char *)tmp[k] + (size_t)r * bytes);
        src[k] = tmp[k];
    }
    if (n->op->alias) {
        /* A view: the rows' data is the input's, reinterpreted. */
        tstate *yt = &inc->st[n->out[0]];
        yt->mode = S_DENSE;
        if (tmp[0]) {
            yt->data = tmp[0];
            yt->owner = n->out[0];
            tmp[0] = NULL;
        } else {
            yt->data = (void *)src[0];
            yt->owner = inc->st[n->in[0]].owner;
        }
        goto done;
    }
    for (int k = 0; k < n->n_out; k++) {
        int id = n->out[k];
        if (id < 0) continue;
        const gb_tensor *bt = base_t(inc, id);
        if ((st = alloc_state(inc, id, (size_t)bt->numel * gb_dtype_size(bt->dtype) * (size_t)B))) goto done;
        inc->st[id].mode = S_DENSE;
    }
    gb_tensor iv[MAX_IO], ov[MAX_IO], *in[MAX_IO], *out[MAX_IO];
    bool batched = ni->batch_safe;
    for (int k = 0; k < n->n_in && batched; k++)
        if (!is_const(inc, n->in[k]) && base_t(inc, n->in[k])->dims[0] != 1) batched = false;
    for (int k = 0; k < n->n_out && batched; k++)
        if (n->out[k] >= 0 && (base_t(inc, n->out[k])->ndim < 1 || base_t(inc, n->out[k])->dims[0] != 1)) batched = false;
    int64_t step = batched ? B : 1;
    for (int64_t r0 = 0; r0 < B; r0 += step) {
        for (int k = 0; k < n->n_in; k++) {
            int id = n->in[k];
            if (id < 0) {
                in[k] = NULL;
                continue;
            }
            if (is_const(inc, id)) {
                in[k] = &inc->s->t[id];
                continue;
            }
            const gb_tensor *bt = base_t(inc, id);
            iv[k] = *bt;
            size_t bytes = (size_t)bt->numel * gb_dtype_size(bt->dtype);
            iv[k].data = (char *)src[k] + (size_t)r0 * bytes;
            if (batched) {
                iv[k].dims[0] = B;
                iv[k].numel = bt->numel * B;
            }
            in[k] = &iv[k];
        }
        for (int k = 0; k < n->n_out; k++) {
            int id = n->out[k];
            if (id < 0) {
                out[k] = NULL;
                continue;
            }
            const gb_tensor *bt = base_t(inc, id);
            ov[k] = *bt;
            size_t bytes = (size_t)bt->numel * gb_dtype_size(bt->dtype);
            ov[k].data = (char *)inc->st[id].data + (size_t)r0 * bytes;
            if (batched) {
                ov[k].dims[0] = B;
                ov[k].numel = bt->numel * B;
            }
            out[k] = &ov[k];
        }
        if ((st = call_forward(inc, n, in, out))) {
            /* A batched call the op's infer refused (e.g. a folded shape
             * baked in for batch 1): redo this node row by row. */
            if (!batched) goto done;
            batched = false;
            step = 1;
            r0 = -1;
            st = GB_OK;
            continue;
        }
    }
    (void)i;
done:
    for (int k = 0; k < n->n_in; k++) free(tmp[k]);
    return st;
}

static void free_dead(gb__incr *inc, int i, int target) {
    const gb__node *n = &inc->m->nodes[i];
    for (int k = 0; k < n->n_in; k++) {
        int id = n->in[k];
        if (id < 0 || inc->last_use[id] != i || id == target) continue;
        tstate *t = &inc->st[id];
        if (!t->data || t->owner != id) continue;
        /* Still viewed by a live tensor (an identity or alias output)? */
        bool viewed = false;
        for (int j = 0; j < inc->m->n_tensors && !viewed; j++)
            if (j != id && inc->st[j].data == t->data && (inc->last_use[j] > i || j == target)) viewed = true;
        if (viewed) continue;
        free(t->data);
        t->data = NULL;
    }
}

gb_status gb__incr_run(gb__incr *inc, const float *x_rows, int target, const gb_tensor **T) {
    gb_model *m = inc->m;
    const int64_t B = inc->B;
    *T = NULL;
    openblas_set_num_threads(inc->ctx->n_threads);
    /* the input's patch: each row's box */
    int id0 = m->inputs[0];
    const gb_tensor *xb = base_t(inc, id0);
    tstate *xs = &inc->st[id0];
    const int64_t C = xb->dims[1], H = xb->dims[2], W = xb->dims[3];
    gb_status st = GB_OK;
    if (xs->mode == S_PATCH) {
        if ((st = alloc_state(inc, id0, (size_t)(C * xs->cols) * sizeof(float)))) return st;
        for (int64_t r = 0; r < B; r++) {
            box p = xs->bx[r];
            if (box_empty(p)) continue;
            const float *xr = x_rows + r * xb->numel;
            float *d = (float *)xs->data + xs->off[r];
            for (int64_t c = 0; c < C; c++)
                for (int64_t y = p.y0; y < p.y1; y++)
                    memcpy(d + c * xs->cols + (y - p.y0) * (p.x1 - p.x0), xr + (c * H + y) * W + p.x0,
                           (size_t)(p.x1 - p.x0) * sizeof(float));
        }
    }
    double fi = 0;
    for (int i = 0; i < m->n_nodes && !st; i++) {
        const gb__node *n = &m->nodes[i];
        const node_info *ni = &inc->ni[i];
        if (ni->kind == K_SKIP) continue;
        int mode = S_UNCHANGED;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0 && inc->st[n->out[k]].mode != S_UNCHANGED) mode = inc->st[n->out[k]].mode;
        if (mode == S_UNCHANGED) continue;
        if (mode == S_DENSE && ni->kind != K_IDENTITY) {
            st = generic_run(inc, i, n, ni);
            fi += (double)B * inc->s->flops[i];
        } else {
            switch (ni->kind) {
            case K_CONV: st = conv_run(inc, n, ni); break;
            case K_MAXPOOL: st = pool_run(inc, n, ni, true); break;
            case K_AVGPOOL: st = pool_run(inc, n, ni, false); break;
            case K_POINTWISE: st = pointwise_run(inc, n); break;
            case K_CONCAT: st = concat_run(inc, n); break;
            case K_IDENTITY: {
                tstate *yt = &inc->st[n->out[0]];
                yt->data = inc->st[n->in[0]].data;
                yt->owner = inc->st[n->in[0]].owner;
                break;
            }
            default: st = gb__err(inc->ctx, GB_ERR_INTERNAL, "incremental: %s has no region kernel", n->name);
            }
            if (ni->kind != K_IDENTITY) {
                const tstate *yt = &inc->st[n->out[0]];
                const gb_tensor *yb = base_t(inc, n->out[0]);
                fi += inc->s->flops[i] * (double)yt->cols / (double)(yb->dims[2] * yb->dims[3]);
            }
        }
        if (!st) free_dead(inc, i, target);
    }
    if (st) {
        release_buffers(inc);
        return st;
    }
    /* The target as (B, item) rows. */
    const gb_tensor *tb = base_t(inc, target);
    tstate *tt = &inc->st[target];
    if (tt->mode != S_DENSE) {
        size_t bytes = (size_t)tb->numel * gb_dtype_size(tb->dtype);
        void *d = malloc(bytes * (size_t)B + 1);
        if (!d) return gb__err(inc->ctx, GB_ERR_NOMEM, "incremental: out of memory");
        for (int64_t r = 0; r < B; r++) materialize_row(inc, target, r, (char *)d + (size_t)r * bytes);
        if (tt->data && tt->owner == target) free(tt->data);
        tt->data = d;
        tt->owner = target;
        tt->mode = S_DENSE;
    }
    inc->stats.rows_incr += B;
    inc->stats.batches_incr++;
    inc->stats.flops_full += (double)B * inc->full1;
    inc->stats.flops_incr += fi;
    inc->tview = *tb;
    inc->tview.dims[0] *= B;
    inc->tview.numel *= B;
    inc->tview.data = tt->data;
    *T = &inc->tview;
    return GB_OK;
}
