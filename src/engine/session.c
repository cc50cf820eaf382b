/*
 * session.c — plan a model for one set of input shapes, then run it.
 *
 * Planning (once per input shape):
 *   1. infer every tensor's shape node by node (op->infer);
 *   2. evaluate at plan time every node whose inputs are all known then
 *      (initializers, Constant, and whatever hangs off Shape): this folds the
 *      shape-computing subgraphs PyTorch exports (Shape -> Gather ->
 *      Unsqueeze -> Concat -> Reshape) so they never run per inference;
 *   3. give every remaining activation an offset in one arena, reusing the
 *      memory of tensors whose last reader has run (first-fit over the live
 *      blocks), and size one scratch buffer for the largest op workspace.
 * Running walks the non-folded nodes in order; kernels never allocate.
 */
#include "engine/session.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS (pthread build) keeps its thread count in a library global; we set
 * it from the context before each run rather than keeping state of our own. */
extern void openblas_set_num_threads(int);

#define GB_ALIGN 64
#define NO_OFFSET ((size_t)-1)

static void drop_reference(gb_session *s);

static size_t align_up(size_t x) { return (x + GB_ALIGN - 1) & ~(size_t)(GB_ALIGN - 1); }

gb_status gb_session_create(gb_model *m, gb_session **out) {
    *out = NULL;
    gb_session *s = calloc(1, sizeof *s);
    if (!s) return gb__err(m->ctx, GB_ERR_NOMEM, "out of memory");
    s->m = m;
    s->ctx = m->ctx;
    *out = s;
    return GB_OK;
}

static void release_plan(gb_session *s) {
    if (s->owned)
        for (int i = 0; i < s->m->n_tensors; i++) free(s->owned[i]);
    free(s->owned);
    free(s->t);
    free(s->is_const);
    free(s->offset);
    free(s->root);
    free(s->folded);
    free(s->flops);
    free(s->params);
    s->owned = NULL;
    s->t = NULL;
    s->is_const = NULL;
    s->offset = NULL;
    s->root = NULL;
    s->folded = NULL;
    s->flops = NULL;
    s->params = NULL;
    s->planned = false;
    gb__backward_reset(s);
    drop_reference(s);
}

void gb_session_free(gb_session *s) {
    if (!s) return;
    release_plan(s);
    free(s->arena);
    free(s->ws);
    free(s->garena);
    free(s->by_value);
    free(s);
}

void gb_session_keep_activations(gb_session *s, int keep) {
    if (s->keep_all != (keep != 0)) s->planned = false;
    s->keep_all = keep != 0;
}

void gb_session_param_grads(gb_session *s, int enable) {
    if (s->param_grads != (enable != 0)) s->planned = false;
    s->param_grads = enable != 0;
}

const gb_tensor *gb_session_tensor(const gb_session *s, const char *name) {
    if (!s->planned || !s->has_run || !name) return NULL;
    int id = gb__session_lookup(s, name);
    if (id < 0) return NULL;
    bool is_output = false;
    for (int i = 0; i < s->m->n_outputs; i++) is_output |= s->m->outputs[i] == id;
    /* Without keep_all an intermediate's buffer may have been reused. */
    if (!s->keep_all && !s->is_const[id] && !is_output && s->m->tensors[id].producer >= 0) return NULL;
    return s->t[id].data ? &s->t[id] : NULL;
}

/* ---- input validation ---------------------------------------------------- */

static gb_status check_inputs(gb_session *s, const gb_tensor *const *inputs, int n_inputs) {
    const gb_model *m = s->m;
    if (n_inputs != m->n_inputs)
        return gb__err(s->ctx, GB_ERR_ARG, "model has %d input%s, %d given", m->n_inputs,
                       m->n_inputs == 1 ? "" : "s", n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        const gb_value_info *d = &m->tensors[m->inputs[i]].decl;
        const gb_tensor *x = inputs[i];
        char want[128], got[128];
        if (!x || !x->data) return gb__err(s->ctx, GB_ERR_ARG, "input '%s' is missing", d->name);
        bool ok = x->dtype == d->dtype && (d->ndim < 0 || d->ndim == x->ndim);
        for (int k = 0; ok && d->ndim >= 0 && k < d->ndim; k++) ok = d->dims[k] < 0 || d->dims[k] == x->dims[k];
        for (int k = 0; ok && k < x->ndim; k++) ok = x->dims[k] >= 0;
        if (!ok) {
            if (d->ndim < 0) snprintf(want, sizeof want, "any shape");
            else gb_shape_str(d->ndim, d->dims, want, sizeof want);
            gb_shape_str(x->ndim, x->dims, got, sizeof got);
            return gb__err(s->ctx, GB_ERR_SHAPE, "input '%s': model expects %s %s ('?' = any), got %s %s", d->name,
                           gb_dtype_name(d->dtype), want, gb_dtype_name(x->dtype), got);
        }
    }
    return GB_OK;
}

static bool same_shapes(const gb_session *s, const gb_tensor *const *inputs, int n_inputs) {
    if (!s->planned || n_inputs != s->m->n_inputs) return false;
    for (int i = 0; i < n_inputs; i++) {
        const gb_tensor *p = &s->t[s->m->inputs[i]];
        if (p->dtype != inputs[i]->dtype || p->ndim != inputs[i]->ndim) return false;
        for (int k = 0; k < p->ndim; k++)
            if (p->dims[k] != inputs[i]->dims[k]) return false;
        /* Some inputs are planned by value (see gb_session_plan). */
        if (s->by_value[i] &&
            memcmp(p->data, inputs[i]->data, (size_t)p->numel * gb_dtype_size(p->dtype)) != 0)
            return false;
    }
    return true;
}

static gb_status ensure_ws(gb_session *s, size_t bytes) {
    if (bytes <= s->ws_size) return GB_OK;
    void *w = realloc(s->ws, bytes);
    if (!w) return gb__err(s->ctx, GB_ERR_NOMEM, "out of memory for a %zu-byte workspace", bytes);
    s->ws = w;
    s->ws_size = bytes;
    return GB_OK;
}

/* ---- step 1+2: shapes and folding ----------------------------------------- */

#define MAX_IO 64

static gb_status infer_and_fold(gb_session *s) {
    gb_model *m = s->m;
    gb_ctx *ctx = s->ctx;
    gb_tensor *in[MAX_IO], *out[MAX_IO];
    for (int i = 0; i < m->n_nodes; i++) {
        gb__node *n = &m->nodes[i];
        if (n->n_in > MAX_IO || n->n_out > MAX_IO)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): more than %d inputs or outputs", n->name, n->op_type, MAX_IO);
        bool all_const = true;
        for (int k = 0; k < n->n_in; k++) {
            int id = n->in[k];
            in[k] = id >= 0 ? &s->t[id] : NULL;
            if (id >= 0 && !s->is_const[id]) all_const = false;
            if (id >= 0 && s->t[id].dtype == GB_DTYPE_UNDEFINED)
                return gb__err(ctx, GB_ERR_INTERNAL, "%s (%s): input '%s' has no shape", n->name, n->op_type,
                               m->tensors[id].name);
        }
        for (int k = 0; k < n->n_out; k++) out[k] = n->out[k] >= 0 ? &s->t[n->out[k]] : NULL;
        /* An omitted optional output (empty name) reaches the op as NULL. */
        size_t ws = 0;
        double flops = 0;
        gb_status st = n->op->infer(ctx, n, in, out, &ws, &flops);
        if (st) return st;
        s->flops[i] = flops;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && m->tensors[n->in[k]].init && m->tensors[n->in[k]].init->dtype == GB_DTYPE_F32)
                s->params[i] += m->tensors[n->in[k]].init->numel;
        for (int k = 0; k < n->n_out; k++)
            if (out[k] && out[k]->dtype != GB_DTYPE_F32 && out[k]->dtype != GB_DTYPE_I64)
                return gb__err(ctx, GB_ERR_INTERNAL, "%s (%s): output %d has no type after inference", n->name,
                               n->op_type, k);
        if (!(n->op->shape_only || all_const)) continue;

        /* Fold: evaluate now, keep the result for every run of this plan. */
        s->folded[i] = true;
        for (int k = 0; k < n->n_out; k++) {
            int id = n->out[k];
            if (id < 0) continue;
            s->is_const[id] = 1;
            if (n->op->alias) {
                out[k]->data = in[0]->data;
                continue;
            }
            size_t bytes = (size_t)out[k]->numel * gb_dtype_size(out[k]->dtype);
            if (ctx->mem_limit && bytes > ctx->mem_limit)
                return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): constant of %.1f MiB is over the context's memory limit",
                               n->name, n->op_type, bytes / 1048576.0);
            s->owned[id] = malloc(bytes ? bytes : 1);
            if (!s->owned[id]) return gb__err(ctx, GB_ERR_NOMEM, "out of memory folding %s", n->name);
            out[k]->data = s->owned[id];
        }
        if (n->op->alias) continue;
        if ((st = ensure_ws(s, ws))) return st;
        gb__exec ex = GB__EXEC_INIT(ctx, s->ws, s->ws_size);
        st = n->op->forward(n, (const gb_tensor *const *)in, out, &ex);
        if (st) return gb__err(ctx, st, "%s (%s): evaluation at plan time failed (invalid index or value)", n->name,
                               n->op_type);
    }
    return GB_OK;
}

/* ---- step 3: activation memory ------------------------------------------- */

typedef struct {
    size_t off, size;
    int root;
} block;

static int root_of(const gb_session *s, int id) {
    while (s->root[id] != id) id = s->root[id];
    return id;
}

static gb_status plan_memory(gb_session *s) {
    gb_model *m = s->m;
    int nt = m->n_tensors;
    int *last_use = malloc(sizeof(int) * (size_t)nt);
    block *live = malloc(sizeof(block) * ((size_t)nt + 1));
    size_t ws_max = 0;
    if (!last_use || !live) {
        free(last_use);
        free(live);
        return gb__err(s->ctx, GB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nt; i++) {
        s->root[i] = i;
        s->offset[i] = NO_OFFSET;
        last_use[i] = -1;
    }
    /* Views share their input's storage: follow them to the root tensor. */
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        if (!s->folded[i] && n->op->alias) s->root[n->out[0]] = root_of(s, n->in[0]);
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        if (s->folded[i]) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) last_use[root_of(s, n->in[k])] = i;
    }
    for (int i = 0; i < m->n_outputs; i++) last_use[root_of(s, m->outputs[i])] = m->n_nodes;

    int n_live = 0;
    size_t high = 0, total = 0;
    gb_tensor *in[MAX_IO], *out[MAX_IO];
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        if (s->folded[i]) continue;
        /* Re-run infer only for its workspace request (shapes are set). */
        for (int k = 0; k < n->n_in; k++) in[k] = n->in[k] >= 0 ? &s->t[n->in[k]] : NULL;
        for (int k = 0; k < n->n_out; k++) out[k] = n->out[k] >= 0 ? &s->t[n->out[k]] : NULL;
        size_t ws = 0;
        double fl = 0;
        gb_status st = n->op->infer(s->ctx, n, in, out, &ws, &fl);
        if (st) {
            free(last_use);
            free(live);
            return st;
        }
        if (ws > ws_max) ws_max = ws;
        if (!n->op->alias) {
            for (int k = 0; k < n->n_out; k++) {
                int id = n->out[k];
                if (id < 0) continue;
                size_t size = align_up((size_t)s->t[id].numel * gb_dtype_size(s->t[id].dtype));
                if (!size) size = GB_ALIGN;
                total += size;
                /* First fit between live blocks (kept sorted by offset). */
                size_t off = 0;
                int pos = 0;
                for (; pos < n_live; pos++) {
                    if (live[pos].off >= off + size) break;
                    if (live[pos].off + live[pos].size > off) off = live[pos].off + live[pos].size;
                }
                memmove(&live[pos + 1], &live[pos], sizeof(block) * (size_t)(n_live - pos));
                live[pos] = (block){off, size, id};
                n_live++;
                s->offset[id] = off;
                if (off + size > high) high = off + size;
            }
        }
        if (s->keep_all) continue;
        /* Free what this node read for the last time, and outputs nobody reads. */
        for (int b = 0; b < n_live;) {
            int r = live[b].root;
            if (last_use[r] <= i) {
                memmove(&live[b], &live[b + 1], sizeof(block) * (size_t)(n_live - b - 1));
                n_live--;
            } else {
                b++;
            }
        }
    }
    free(last_use);
    free(live);
    if (s->ctx->mem_limit && (high > s->ctx->mem_limit || ws_max > s->ctx->mem_limit - high))
        return gb__err(s->ctx, GB_ERR_NOMEM, "plan needs %.1f MiB of activations and %.1f MiB of workspace, over the "
                       "context's limit of %.1f MiB", high / 1048576.0, ws_max / 1048576.0,
                       s->ctx->mem_limit / 1048576.0);
    if (high > s->arena_size) {
        free(s->arena);
        s->arena = NULL;
        s->arena_size = 0;
        if (posix_memalign((void **)&s->arena, GB_ALIGN, high)) {
            s->arena = NULL;
            return gb__err(s->ctx, GB_ERR_NOMEM, "out of memory for %zu bytes of activations", high);
        }
        s->arena_size = high;
    }
    s->arena_used = high;
    s->arena_total = total;
    for (int i = 0; i < nt; i++)
        if (s->offset[i] != NO_OFFSET) s->t[i].data = s->arena + s->offset[i];
    return ensure_ws(s, ws_max);
}

gb_status gb_session_plan(gb_session *s, const gb_tensor *const *inputs, int n_inputs) {
    gb_status st = check_inputs(s, inputs, n_inputs);
    if (st) return st;
    release_plan(s);
    gb_model *m = s->m;
    int nt = m->n_tensors, nn = m->n_nodes;
    if (!s->by_value) {
        s->by_value = calloc((size_t)m->n_inputs + 1, 1);
        if (!s->by_value) return gb__err(s->ctx, GB_ERR_NOMEM, "out of memory");
        for (int i = 0; i < m->n_inputs; i++) {
            int id = m->inputs[i];
            s->by_value[i] = m->tensors[id].decl.dtype == GB_DTYPE_I64;
            for (int j = 0; j < m->n_nodes; j++)
                for (int k = 0; k < m->nodes[j].n_in && k < 32; k++)
                    if (m->nodes[j].in[k] == id && (m->nodes[j].const_inputs >> k & 1u)) s->by_value[i] = 1;
        }
    }
    s->t = calloc((size_t)nt + 1, sizeof *s->t);
    s->is_const = calloc((size_t)nt + 1, 1);
    s->owned = calloc((size_t)nt + 1, sizeof *s->owned);
    s->offset = calloc((size_t)nt + 1, sizeof *s->offset);
    s->root = calloc((size_t)nt + 1, sizeof *s->root);
    s->folded = calloc((size_t)nn + 1, sizeof *s->folded);
    s->flops = calloc((size_t)nn + 1, sizeof *s->flops);
    s->params = calloc((size_t)nn + 1, sizeof *s->params);
    if (!s->t || !s->is_const || !s->owned || !s->offset || !s->root || !s->folded || !s->flops || !s->params) {
        release_plan(s);
        return gb__err(s->ctx, GB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nt; i++)
        if (m->tensors[i].init) {
            s->t[i] = *m->tensors[i].init;
            /* Trainable parameters must not be folded away, or no gradient
             * could reach them. */
            s->is_const[i] = !(s->param_grads && s->t[i].dtype == GB_DTYPE_F32);
        }
    /* ...except those read as values at plan time (Resize's scales). */
    for (int j = 0; s->param_grads && j < nn; j++)
        for (int k = 0; k < m->nodes[j].n_in && k < 32; k++)
            if (m->nodes[j].in[k] >= 0 && (m->nodes[j].const_inputs >> k & 1u) && m->tensors[m->nodes[j].in[k]].init)
                s->is_const[m->nodes[j].in[k]] = 1;
    for (int i = 0; i < n_inputs; i++) {
        int id = m->inputs[i];
        gb_tensor *t = &s->t[id];
        gb__set_shape(t, inputs[i]->dtype, inputs[i]->ndim, inputs[i]->dims);
        t->data = NULL;
        /* int64 graph inputs (shapes, axes, indices) and inputs that feed a
         * value-reading position (Resize's scales...) are taken by value:
         * the plan treats them as constants, so a Reshape fed by an input
         * can be planned, and is redone when the values change. */
        if (s->by_value[i]) {
            size_t bytes = (size_t)t->numel * gb_dtype_size(t->dtype);
            if (!(s->owned[id] = malloc(bytes ? bytes : 1))) {
                release_plan(s);
                return gb__err(s->ctx, GB_ERR_NOMEM, "out of memory");
            }
            memcpy(s->owned[id], inputs[i]->data, bytes);
            t->data = s->owned[id];
            s->is_const[id] = 1;
        }
    }
    if ((st = infer_and_fold(s)) || (st = plan_memory(s))) {
        release_plan(s);
        return st;
    }
    s->planned = true;
    return GB_OK;
}

gb_status gb_session_run(gb_session *s, const gb_tensor *const *inputs, int n_inputs) {
    gb_status st;
    if (!same_shapes(s, inputs, n_inputs) && (st = gb_session_plan(s, inputs, n_inputs))) return st;
    gb_model *m = s->m;
    for (int i = 0; i < n_inputs; i++)
        if (!s->is_const[m->inputs[i]]) s->t[m->inputs[i]].data = inputs[i]->data;
    openblas_set_num_threads(s->ctx->n_threads);
    gb__exec ex = GB__EXEC_INIT(s->ctx, s->ws, s->ws_size);
    gb_tensor *in[MAX_IO], *out[MAX_IO];
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        if (s->folded[i]) continue;
        if (n->op->alias) {
            s->t[n->out[0]].data = s->t[n->in[0]].data;
            continue;
        }
        for (int k = 0; k < n->n_in; k++) in[k] = n->in[k] >= 0 ? &s->t[n->in[k]] : NULL;
        for (int k = 0; k < n->n_out; k++) out[k] = n->out[k] >= 0 ? &s->t[n->out[k]] : NULL;
        st = n->op->forward(n, (const gb_tensor *const *)in, out, &ex);
        if (st) return gb__err(s->ctx, st, "%s (%s): invalid value at run time (e.g. an index out of range)", n->name,
                               n->op_type);
    }
    s->has_run = true;
    return GB_OK;
}

const gb_tensor *gb_session_output(const gb_session *s, int i) {
    if (!s->planned || !s->has_run || i < 0 || i >= s->m->n_outputs) return NULL;
    return &s->t[s->m->outputs[i]];
}

gb_status gb_session_node_plan(const gb_session *s, int i, gb_node_plan *out) {
    if (!s->planned) return gb__err(s->ctx, GB_ERR_ARG, "session has no plan yet");
    if (i < 0 || i >= s->m->n_nodes) return gb__err(s->ctx, GB_ERR_NOT_FOUND, "no node %d", i);
    const gb__node *n = &s->m->nodes[i];
    memset(out, 0, sizeof *out);
    out->n_outputs = n->n_out;
    for (int k = 0; k < n->n_out && k < 4; k++) {
        if (n->out[k] < 0) continue;
        const gb_tensor *t = &s->t[n->out[k]];
        out->ndim[k] = t->ndim;
        memcpy(out->dims[k], t->dims, sizeof t->dims);
    }
    out->params = s->params[i];
    out->flops = s->flops[i];
    out->folded = s->folded[i];
    return GB_OK;
}

void gb_session_memory(const gb_session *s, size_t *reserved, size_t *total) {
    if (reserved) *reserved = s->planned ? s->arena_used : 0;
    if (total) *total = s->planned ? s->arena_total : 0;
}

int gb__session_lookup(const gb_session *s, const char *name) {
    int id = gb__model_tensor_id(s->m, name);
    if (id >= 0) return id;
    for (int i = 0; i < s->m->n_nodes; i++)
        if (strcmp(s->m->nodes[i].name, name) == 0 && s->m->nodes[i].n_out > 0) return s->m->nodes[i].out[0];
    return -1;
}

static void drop_reference(gb_session *s) {
    free(s->ref_arena);
    s->ref_arena = NULL;
    if (s->ref_inputs)
        for (int i = 0; i < s->m->n_inputs; i++) gb_tensor_free(s->ref_inputs[i]);
    free(s->ref_inputs);
    s->ref_inputs = NULL;
    s->has_ref = false;
}

gb_status gb_session_run_reference(gb_session *s, const gb_tensor *const *inputs, int n_inputs) {
    if (!s->keep_all)
        return gb__err(s->ctx, GB_ERR_ARG, "a reference run needs kept activations (gb_session_keep_activations)");
    gb_status st = gb_session_run(s, inputs, n_inputs);
    if (st) return st;
    drop_reference(s);
    s->ref_arena = malloc(s->arena_used ? s->arena_used : 1);
    s->ref_inputs = calloc((size_t)n_inputs + 1, sizeof *s->ref_inputs);
    if (!s->ref_arena || !s->ref_inputs) {
        drop_reference(s);
        return gb__err(s->ctx, GB_ERR_NOMEM, "out of memory for the reference activations");
    }
    memcpy(s->ref_arena, s->arena, s->arena_used);
    for (int i = 0; i < n_inputs; i++)
        if ((st = gb_tensor_clone(s->ctx, inputs[i], &s->ref_inputs[i]))) {
            drop_reference(s);
            return st;
        }
    s->has_ref = true;
    return GB_OK;
}

const gb_tensor *gb__session_tensor(const gb_session *s, int id) {
    if (!s->planned || id < 0 || id >= s->m->n_tensors) return NULL;
    return &s->t[id];
}
