/* session.h — the session (a plan for one input shape plus its buffers). */
#ifndef GB_ENGINE_SESSION_H
#define GB_ENGINE_SESSION_H

#include "engine/ir.h"

struct gb_session {
    gb_model *m;
    gb_ctx *ctx;
    bool planned, has_run;
    bool keep_all;          /* keep every activation alive (backward needs them) */
    bool param_grads;       /* initializers are differentiable (not folded) */
    /* backward state */
    gb_tensor *g;           /* per tensor id: gradient view (data NULL if none) */
    float *garena;
    size_t garena_size;
    bool has_grad;
    unsigned char *by_value; /* per graph input: planned by value (see plan) */
    /* reference run (DeepLIFT): a copy of the arena and of the inputs */
    char *ref_arena;
    gb_tensor **ref_inputs;
    bool has_ref;
    /* per tensor id */
    gb_tensor *t;           /* shape, dtype and data pointer of every tensor */
    unsigned char *is_const;/* known at plan time */
    void **owned;           /* folded-constant storage */
    size_t *offset;         /* arena offset, or (size_t)-1 */
    int *root;              /* storage owner (views point to what they view) */
    /* per node */
    bool *folded;
    double *flops;
    int64_t *params;
    /* memory */
    char *arena;
    size_t arena_size, arena_used, arena_total;
    void *ws;
    size_t ws_size;
};

/* Tensor id by tensor name, or by node name (its first output); -1 if none. */
int gb__session_lookup(const gb_session *s, const char *name);
/* Plan tensor by id (NULL before planning). */
const gb_tensor *gb__session_tensor(const gb_session *s, int id);

/* Forget the gradient state (called when the plan changes). */
void gb__backward_reset(gb_session *s);

#endif
