/* relevance.c — the pass the relevance family shares (relevance.h): forward on
 * a reference, forward on x, a seeded backward under rules, read out. */
#include "methods/relevance.h"
#include "engine/ir.h"

#include <stdlib.h>
#include <string.h>

/* Rows [0, b) as a (P, ...) view; P = b, or the static batch with the last
 * row repeated (*pad is then a malloc'd copy the caller frees). */
static gb_status chunk_view(gb_explainer *e, const float *rows, int64_t b, gb_tensor *view, float **pad) {
    int64_t P = e->static_batch ? e->static_batch : b;
    memset(view, 0, sizeof *view);
    view->dtype = GB_DTYPE_F32;
    view->ndim = e->in.ndim;
    memcpy(view->dims, e->xdims, sizeof view->dims);
    view->dims[0] = P;
    view->numel = P * e->item_numel;
    *pad = NULL;
    if (P == b) {
        view->data = (void *)rows;
        return GB_OK;
    }
    float *d = malloc(sizeof *d * (size_t)view->numel);
    if (!d) return gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    memcpy(d, rows, sizeof *d * (size_t)(b * e->item_numel));
    for (int64_t k = b; k < P; k++)
        memcpy(d + k * e->item_numel, rows + (b - 1) * e->item_numel, sizeof *d * (size_t)e->item_numel);
    view->data = d;
    *pad = d;
    return GB_OK;
}

/* Elements per row of tensor `name` in a pass of P rows, checked. */
static gb_status per_row(gb_explainer *e, const char *name, int64_t P, const gb_tensor **W, int64_t *wn) {
    *W = gb_session_tensor(e->s, name);
    if (!*W) return gb__err(e->ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s' in the model", name);
    if ((*W)->dtype != GB_DTYPE_F32 || (*W)->ndim < 1 || (*W)->dims[0] != P)
        return gb__err(e->ctx, GB_ERR_UNSUPPORTED,
                       "explain: tensor '%s' is not a float32 tensor with the batch as first dimension", name);
    *wn = (*W)->numel / P;
    return GB_OK;
}

gb_status gb__relevance_pass(gb_explainer *e, gb_explanation *r, const float *x_rows, const float *ref_rows,
                             int64_t n_rows, const int64_t *item_of_row, const char *wrt, bool seed_by_value,
                             const gb_rule *pre_rules, int n_pre, const gb_rule *rules, int n_rules, double *values,
                             double *ref_values, float *grad, float *act, float *ref_act) {
    gb_ctx *ctx = e->ctx;
    const char *wname = wrt ? wrt : e->in.name;
    int64_t chunk = e->static_batch ? e->static_batch : e->batch;
    gb_status st = GB_OK;
    float *pad = NULL;
    for (int64_t k0 = 0; k0 < n_rows && !st; k0 += chunk) {
        int64_t b = n_rows - k0 < chunk ? n_rows - k0 : chunk, wn;
        gb_tensor view;
        const gb_tensor *T, *W, *in[1] = {&view};
        if (ref_rows) {
            if ((st = chunk_view(e, ref_rows + k0 * e->item_numel, b, &view, &pad))) break;
            e->held_valid = false;   /* this runs e->s itself (methods.h) */
            st = gb_session_run_reference(e->s, in, 1);
            free(pad);
            pad = NULL;
            if (st) break;
            if (!(T = gb_session_tensor(e->s, r->target_tensor)))
                return gb__err(ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s'", r->target_tensor);
            if (ref_values) gb__target_values(r, T, item_of_row + k0, b, ref_values + k0);
            if (ref_act) {
                if ((st = per_row(e, wname, view.dims[0], &W, &wn))) break;
                memcpy(ref_act + k0 * wn, W->data, sizeof *ref_act * (size_t)(b * wn));
            }
        }
        if ((st = chunk_view(e, x_rows + k0 * e->item_numel, b, &view, &pad))) break;
        e->held_valid = false;
        if ((st = gb_session_run(e->s, in, 1))) break;
        int64_t P = view.dims[0];
        if (!(T = gb_session_tensor(e->s, r->target_tensor))) {
            st = gb__err(ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s'", r->target_tensor);
            break;
        }
        if ((st = gb__target_check_tensor(ctx, r, T, P, false))) break;
        if (values) gb__target_values(r, T, item_of_row + k0, b, values + k0);
        if (act || grad) {
            if ((st = per_row(e, wname, P, &W, &wn))) break;
            if (act) memcpy(act + k0 * wn, W->data, sizeof *act * (size_t)(b * wn));
        }
        if (!grad) {
            free(pad);
            pad = NULL;
            continue;
        }
        if (!e->seed || e->seed->numel < T->numel) {
            gb_tensor_free(e->seed);
            e->seed = NULL;
            if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, T->ndim, T->dims, &e->seed))) break;
        }
        gb_tensor sv = *e->seed;
        sv.ndim = T->ndim;
        memcpy(sv.dims, T->dims, sizeof sv.dims);
        sv.numel = T->numel;
        gb__target_fill_seed(r, item_of_row + k0, b, &sv);
        if (seed_by_value) {
            /* LRP: the relevance entering the network is the target's value
             * (Bach et al. 2015, eq. 2: R^(L) = f(x)), element by element of
             * its block. */
            float *s = sv.data;
            const float *t = T->data;
            for (int64_t i = 0; i < sv.numel; i++) s[i] *= t[i];
        }
        gb_seed seed = {.tensor = r->target_tensor, .seed = &sv};
        if (pre_rules && (st = gb_session_backward(e->s, &seed, pre_rules, n_pre))) break;
        if ((st = gb_session_backward(e->s, &seed, rules, n_rules))) break;
        const gb_tensor *g = gb_session_grad(e->s, wname);
        if (!g) {
            st = gb__err(ctx, GB_ERR_ARG, "explain: no relevance reaches '%s' from target '%s' (constant, or not on its path)",
                         wname, r->target_tensor);
            break;
        }
        memcpy(grad + k0 * wn, g->data, sizeof *grad * (size_t)(b * wn));
        free(pad);
        pad = NULL;
    }
    free(pad);
    if (!st) r->rows += n_rows;
    return st;
}
