/*
 * backward.c — reverse-mode differentiation over a planned session, with
 * swappable per-op / per-node backward rules.
 *
 * After a forward run that kept its activations, gb_session_backward:
 *   1. marks the tensors that need a gradient: float tensors that are not
 *      plan-time constants (graph inputs, activations, and initializers when
 *      parameter gradients are on) AND from which the seed tensor is
 *      reachable — nothing else is computed (no weight gradients unless
 *      asked, nothing off the path to the seed);
 *   2. gives each one a zeroed buffer in one gradient arena and writes the
 *      seed;
 *   3. walks the nodes in reverse topological order; for each node with an
 *      incoming gradient it calls the matching rule, else the op's backward
 *      (vector-Jacobian product, accumulating into the inputs' buffers).
 */
#include "engine/session.h"

#include <stdlib.h>
#include <string.h>

#define MAX_IO 64

void gb__backward_reset(gb_session *s) {
    free(s->g);
    s->g = NULL;
    s->has_grad = false;
}

/* Engine-private part of a rule call, behind gb_rule_call.impl_. */
typedef struct {
    gb_session *s;
    const gb__node *n;
    gb__exec ex;
} rule_impl;

static gb_status call_backward(const gb__node *n, const gb_tensor *const *in, const gb_tensor *const *out,
                               const gb_tensor *const *dout, gb_tensor *const *din, const gb__exec *ex) {
    if (n->op->alias) {
        /* Views: the gradient of a reshape is the same numbers. */
        if (din[0] && dout[0]) {
            float *dx = din[0]->data;
            const float *dy = dout[0]->data;
            for (int64_t i = 0; i < din[0]->numel; i++) dx[i] += dy[i];
        }
        return GB_OK;
    }
    if (!n->op->backward) return GB_ERR_UNSUPPORTED;
    return n->op->backward(n, in, out, dout, din, ex);
}

gb_status gb_rule_forward(const gb_rule_call *call, const gb_tensor *const *in, gb_tensor *const *out) {
    const rule_impl *ri = call->impl_;
    const gb_tensor *ins[MAX_IO];
    for (int k = 0; k < call->n_in; k++) ins[k] = in && in[k] ? in[k] : call->in[k];
    if (ri->n->op->alias) {
        size_t bytes = (size_t)out[0]->numel * gb_dtype_size(out[0]->dtype);
        memcpy(out[0]->data, ins[0]->data, bytes);
        return GB_OK;
    }
    for (int k = 0; k < call->n_out; k++)
        if (out[k] && call->out[k] && out[k]->numel != call->out[k]->numel)
            return gb__err(ri->s->ctx, GB_ERR_SHAPE, "%s: gb_rule_forward output %d has the wrong size",
                           call->node_name, k);
    return ri->n->op->forward(ri->n, ins, out, &ri->ex);
}

gb_status gb_rule_default(const gb_rule_call *call, const gb_tensor *const *in, const gb_tensor *const *grad_out,
                          gb_tensor *const *grad_in) {
    const rule_impl *ri = call->impl_;
    const gb_tensor *ins[MAX_IO], *gos[MAX_IO];
    for (int k = 0; k < call->n_in; k++) ins[k] = in && in[k] ? in[k] : call->in[k];
    for (int k = 0; k < call->n_out; k++) gos[k] = grad_out && grad_out[k] ? grad_out[k] : call->grad_out[k];
    gb_status st = call_backward(ri->n, ins, call->out, gos, grad_in ? grad_in : call->grad_in, &ri->ex);
    if (st == GB_ERR_UNSUPPORTED)
        return gb__err(ri->s->ctx, st, "%s (%s): this op has no backward", call->node_name, call->op_type);
    return st;
}

/* The reference run's value of tensor `id` (same shape as the current run):
 * activations live at the same arena offsets in the copied arena; views
 * resolve to the tensor they view; constants are shared. */
static void ref_view(const gb_session *s, int id, gb_tensor *out) {
    *out = s->t[id];
    int r = id;
    while (s->root[r] != r) r = s->root[r];
    if (s->offset[r] != (size_t)-1) {
        out->data = s->ref_arena + s->offset[r];
        return;
    }
    for (int i = 0; i < s->m->n_inputs; i++)
        if (s->m->inputs[i] == r && !s->is_const[r]) out->data = s->ref_inputs[i]->data;
}

static const gb_rule *find_rule(const gb__node *n, const gb_rule *rules, int n_rules) {
    for (int r = 0; r < n_rules; r++)
        if (rules[r].node && strcmp(rules[r].node, n->name) == 0) return &rules[r];
    for (int r = 0; r < n_rules; r++)
        if (!rules[r].node && rules[r].op_type && strcmp(rules[r].op_type, n->op_type) == 0) return &rules[r];
    return NULL;
}

static gb_status seed_gradient(gb_session *s, const gb_seed *seed, int id) {
    gb_tensor *g = &s->g[id];
    float *d = g->data;
    gb_ctx *ctx = s->ctx;
    const char *name = s->m->tensors[id].name;
    if (seed && seed->seed) {
        const gb_tensor *t = seed->seed;
        if (t->dtype != GB_DTYPE_F32 || t->numel != g->numel)
            return gb__err(ctx, GB_ERR_SHAPE, "seed for '%s' must be float32 with %lld elements", name,
                           (long long)g->numel);
        memcpy(d, t->data, sizeof(float) * (size_t)g->numel);
    } else if (seed && seed->classes) {
        if (g->ndim < 2)
            return gb__err(ctx, GB_ERR_SHAPE, "a class seed needs a (N, C, ...) tensor; '%s' has %d dims", name, g->ndim);
        int64_t n = g->dims[0], per = g->numel / (n ? n : 1), inner = per / g->dims[1];
        for (int64_t b = 0; b < n; b++) {
            int64_t c = seed->classes[b];
            if (c < 0 || c >= g->dims[1])
                return gb__err(ctx, GB_ERR_ARG, "class %lld out of range 0..%lld for '%s'", (long long)c,
                               (long long)g->dims[1] - 1, name);
            /* For (N, C, H, W) tensors the seed covers the whole channel. */
            for (int64_t i = 0; i < inner; i++) d[b * per + c * inner + i] = 1.0f;
        }
    } else {
        int64_t e = seed ? seed->element : 0;
        if (e < 0 || e >= g->numel)
            return gb__err(ctx, GB_ERR_ARG, "seed element %lld out of range for '%s' (%lld elements)", (long long)e,
                           name, (long long)g->numel);
        d[e] = 1.0f;
    }
    return GB_OK;
}

static gb_status sweep(gb_session *s, const gb_rule *rules, int n_rules, int *zero_at);

gb_status gb_session_backward(gb_session *s, const gb_seed *seed, const gb_rule *rules, int n_rules) {
    gb_model *m = s->m;
    gb_ctx *ctx = s->ctx;
    if (!s->planned || !s->has_run) return gb__err(ctx, GB_ERR_ARG, "backward needs a forward run first");
    if (!s->keep_all)
        return gb__err(ctx, GB_ERR_ARG, "backward needs the activations: call gb_session_keep_activations before running");
    int seed_id = m->outputs[0];
    if (seed && seed->tensor) {
        seed_id = gb__session_lookup(s, seed->tensor);
        if (seed_id < 0) return gb__err(ctx, GB_ERR_NOT_FOUND, "no tensor named '%s'", seed->tensor);
    }
    if (s->t[seed_id].dtype != GB_DTYPE_F32 || s->is_const[seed_id])
        return gb__err(ctx, GB_ERR_ARG, "tensor '%s' is %s: it has no gradient", m->tensors[seed_id].name,
                       s->is_const[seed_id] ? "a constant" : "not float32");

    int nt = m->n_tensors;
    gb__backward_reset(s);
    s->g = calloc((size_t)nt + 1, sizeof *s->g);
    unsigned char *need = calloc((size_t)nt + 1, 1);
    if (!s->g || !need) {
        free(need);
        return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
    }
    /* Step 1: ancestors of the seed among differentiable tensors. */
    need[seed_id] = 1;
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        const gb__node *n = &m->nodes[i];
        if (s->folded[i]) continue;
        bool feeds = false;
        for (int k = 0; k < n->n_out; k++) feeds |= n->out[k] >= 0 && need[n->out[k]];
        if (!feeds) continue;
        for (int k = 0; k < n->n_in; k++) {
            int id = n->in[k];
            if (id >= 0 && !s->is_const[id] && s->t[id].dtype == GB_DTYPE_F32) need[id] = 1;
        }
    }
    /* Step 1b: with seed->wrt, only the tensors on a path from it to the
     * seed (descendants of wrt, in node order). */
    if (seed && seed->wrt) {
        int wid = gb__session_lookup(s, seed->wrt);
        if (wid < 0) {
            free(need);
            return gb__err(ctx, GB_ERR_NOT_FOUND, "no tensor named '%s'", seed->wrt);
        }
        unsigned char *down = calloc((size_t)nt + 1, 1);
        if (!down) {
            free(need);
            return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
        }
        down[wid] = 1;
        for (int i = 0; i < m->n_nodes; i++) {
            const gb__node *n = &m->nodes[i];
            if (s->folded[i]) continue;
            bool from = false;
            for (int k = 0; k < n->n_in; k++) from |= n->in[k] >= 0 && down[n->in[k]];
            if (from)
                for (int k = 0; k < n->n_out; k++)
                    if (n->out[k] >= 0) down[n->out[k]] = 1;
        }
        for (int id = 0; id < nt; id++) need[id] &= down[id];
        free(down);
        if (!need[seed_id]) {   /* the seed does not depend on wrt: no path, nothing to compute */
            free(need);
            return gb__err(ctx, GB_ERR_ARG, "tensor '%s' does not depend on '%s': no gradient path", m->tensors[seed_id].name,
                           seed->wrt);
        }
    }
    /* Step 2: one arena for all needed gradients. */
    size_t total = 0;
    for (int id = 0; id < nt; id++)
        if (need[id]) total += (size_t)s->t[id].numel;
    if (ctx->mem_limit && total * sizeof(float) > ctx->mem_limit) {
        free(need);
        return gb__err(ctx, GB_ERR_NOMEM, "backward needs %.1f MiB of gradients, over the context's limit",
                       total * 4 / 1048576.0);
    }
    if (total > s->garena_size) {
        free(s->garena);
        s->garena = malloc(sizeof(float) * (total ? total : 1));
        s->garena_size = s->garena ? total : 0;
        if (!s->garena) {
            free(need);
            return gb__err(ctx, GB_ERR_NOMEM, "out of memory for %zu gradient values", total);
        }
    }
    size_t off = 0;
    for (int id = 0; id < nt; id++)
        if (need[id]) {
            s->g[id] = s->t[id];
            s->g[id].data = s->garena + off;
            off += (size_t)s->t[id].numel;
        }
    /* Each gradient buffer is zeroed just before the sweep first accumulates
     * into it — at its last consumer (`zero_at`) — rather than the whole
     * arena up front: the memory is then still in cache when the first
     * backward kernel adds to it. */
    int *zero_at = malloc(sizeof(int) * ((size_t)nt + 1));
    if (!zero_at) {
        free(need);
        return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
    }
    for (int id = 0; id < nt; id++) zero_at[id] = -1;
    for (int i = 0; i < m->n_nodes; i++) {
        if (s->folded[i]) continue;
        const gb__node *n = &m->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && need[n->in[k]]) zero_at[n->in[k]] = i;
    }
    free(need);
    memset(s->g[seed_id].data, 0, sizeof(float) * (size_t)s->g[seed_id].numel);
    zero_at[seed_id] = -1;
    gb_status st = seed_gradient(s, seed, seed_id);
    if (!st) st = sweep(s, rules, n_rules, zero_at);
    free(zero_at);
    if (!st) s->has_grad = true;
    return st;
}

/* Step 3: the reverse sweep (see the top of the file). */
static gb_status sweep(gb_session *s, const gb_rule *rules, int n_rules, int *zero_at) {
    gb_ctx *ctx = s->ctx;
    const gb_model *m = s->m;
    gb_status st;
    rule_impl ri = {.s = s, .ex = GB__EXEC_INIT(ctx, s->ws, s->ws_size)};
    const gb_tensor *in[MAX_IO], *out[MAX_IO], *dout[MAX_IO], *rin[MAX_IO], *rout[MAX_IO];
    gb_tensor *din[MAX_IO], rin_t[MAX_IO], rout_t[MAX_IO];
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        const gb__node *n = &m->nodes[i];
        if (s->folded[i]) continue;
        for (int k = 0; k < n->n_in; k++) {
            int id = n->in[k];
            if (id >= 0 && zero_at[id] == i) {
                memset(s->g[id].data, 0, sizeof(float) * (size_t)s->g[id].numel);
                zero_at[id] = -1;   /* a node may list the same input twice */
            }
        }
        bool any_out = false, any_in = false;
        for (int k = 0; k < n->n_out; k++) {
            if (n->out[k] < 0) { /* omitted optional output */
                dout[k] = out[k] = NULL;
                continue;
            }
            gb_tensor *g = &s->g[n->out[k]];
            dout[k] = g->data ? g : NULL;
            out[k] = &s->t[n->out[k]];
            any_out |= dout[k] != NULL;
        }
        for (int k = 0; k < n->n_in; k++) {
            int id = n->in[k];
            in[k] = id >= 0 ? &s->t[id] : NULL;
            din[k] = id >= 0 && s->g[id].data ? &s->g[id] : NULL;
            any_in |= din[k] != NULL;
        }
        if (!any_out || !any_in) continue;
        const gb_rule *r = find_rule(n, rules, n_rules);
        if (r) {
            ri.n = n;
            if (s->has_ref) {
                for (int k = 0; k < n->n_in; k++) {
                    rin[k] = NULL;
                    if (n->in[k] >= 0) {
                        ref_view(s, n->in[k], &rin_t[k]);
                        rin[k] = &rin_t[k];
                    }
                }
                for (int k = 0; k < n->n_out; k++) {
                    rout[k] = NULL;
                    if (n->out[k] >= 0) {
                        ref_view(s, n->out[k], &rout_t[k]);
                        rout[k] = &rout_t[k];
                    }
                }
            }
            gb_rule_call call = {.op_type = n->op_type, .node_name = n->name, .n_in = n->n_in, .n_out = n->n_out,
                                 .in = in, .out = out, .ref_in = s->has_ref ? rin : NULL,
                                 .ref_out = s->has_ref ? rout : NULL, .grad_out = dout,
                                 .grad_in = din, .impl_ = &ri};
            ctx->errmsg[0] = 0;
            st = r->fn(r->user, &call);
            if (st) {
                if (!ctx->errmsg[0]) gb__err(ctx, st, "%s (%s): backward rule failed", n->name, n->op_type);
                return st;
            }
            continue;
        }
        st = call_backward(n, in, out, dout, din, &ri.ex);
        if (st == GB_ERR_UNSUPPORTED)
            return gb__err(ctx, st, "%s (%s): no gradient is implemented for this op", n->name, n->op_type);
        if (st) return gb__err(ctx, st, "%s (%s): backward failed", n->name, n->op_type);
    }
    return GB_OK;
}

const gb_tensor *gb_session_grad(const gb_session *s, const char *name) {
    if (!s->has_grad || !name) return NULL;
    int id = gb__session_lookup(s, name);
    if (id < 0 || !s->g[id].data) return NULL;
    return &s->g[id];
}

/* ---- shipped rules -------------------------------------------------------- */

/* Guided Backprop (Springenberg et al. 2015, eq. in Fig. 1): through a ReLU
 * pass only positive gradient where the forward input was positive:
 * R_in = (x > 0) * (R_out > 0) * R_out. */
static gb_status guided_relu(void *user, const gb_rule_call *c) {
    (void)user;
    if (!c->grad_in[0] || !c->grad_out[0]) return GB_OK;
    const float *x = c->in[0]->data, *g = c->grad_out[0]->data;
    float *dx = c->grad_in[0]->data;
    for (int64_t i = 0; i < c->in[0]->numel; i++)
        if (x[i] > 0 && g[i] > 0) dx[i] += g[i];
    return GB_OK;
}

/* DeconvNet (Zeiler & Fergus 2014, sec. 2.1 "Rectification"): the backward
 * signal is itself rectified, ignoring the forward input:
 * R_in = (R_out > 0) * R_out. */
static gb_status deconv_relu(void *user, const gb_rule_call *c) {
    (void)user;
    if (!c->grad_in[0] || !c->grad_out[0]) return GB_OK;
    const float *g = c->grad_out[0]->data;
    float *dx = c->grad_in[0]->data;
    for (int64_t i = 0; i < c->grad_out[0]->numel; i++)
        if (g[i] > 0) dx[i] += g[i];
    return GB_OK;
}

gb_rule gb_rule_guided_relu(void) { return (gb_rule){.op_type = "Relu", .fn = guided_relu}; }
gb_rule gb_rule_deconvnet_relu(void) { return (gb_rule){.op_type = "Relu", .fn = deconv_relu}; }
