/* util.c — broadcasting and arity checks shared by operator kernels. */
#include "ops/util.h"

bool gb__broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b,
                         int *nout, int64_t *out) {
    int n = na > nb ? na : nb;
    if (n > GB_MAX_DIMS) return false;
    for (int i = 0; i < n; i++) {
        /* align from the right, as NumPy does */
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da == db || db == 1) out[i] = da;
        else if (da == 1) out[i] = db;
        else return false;
    }
    *nout = n;
    return true;
}

void gb__broadcast_strides(int nin, const int64_t *in, int nout, const int64_t *out,
                           int64_t *strides) {
    int64_t s = 1;
    for (int i = nout - 1; i >= 0; i--) {
        int j = i - (nout - nin);
        if (j < 0 || in[j] == 1) strides[i] = 0;
        else strides[i] = s;
        if (j >= 0) s *= in[j];
    }
    (void)out;
}

gb_status gb__check_arity(gb_ctx *ctx, const gb__node *n, int lo, int hi, int olo, int ohi) {
    /* Trailing omitted optional inputs count as absent. */
    int nin = n->n_in;
    while (nin > 0 && n->in[nin - 1] < 0) nin--;
    if (nin < lo || nin > hi)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): %d inputs, expected %d to %d", n->name,
                       n->op_type, nin, lo, hi);
    /* A required input spelled '' (id -1) would reach the kernel as NULL. */
    for (int k = 0; k < lo && k < n->n_in; k++)
        if (n->in[k] < 0)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): required input %d is missing (empty name)", n->name, n->op_type, k);
    for (int k = 0; k < olo && k < n->n_out; k++)
        if (n->out[k] < 0)
            return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): required output %d has an empty name", n->name, n->op_type, k);
    if (n->n_out < olo || n->n_out > ohi)
        return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): %d outputs, expected %d to %d", n->name,
                       n->op_type, n->n_out, olo, ohi);
    return GB_OK;
}
