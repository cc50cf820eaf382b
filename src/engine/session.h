/* session.h — the session (a plan for one input shape plus its buffers). */
#ifndef GB_ENGINE_SESSION_H
#define GB_ENGINE_SESSION_H

#include "engine/ir.h"

struct gb_session {
    gb_model *m;
    gb_ctx *ctx;
    bool planned, has_run;
    bool keep_all;          /* keep every activation alive (backward needs them) */
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

/* Keep all activations (no buffer reuse) so backward can read them. */
void gb_session_keep_activations(gb_session *s, bool keep);
/* Plan tensor by id (NULL before planning). */
const gb_tensor *gb__session_tensor(const gb_session *s, int id);

#endif
