/* util.h — helpers shared by operator kernels: broadcasting and axis math. */
#ifndef GB_OPS_UTIL_H
#define GB_OPS_UTIL_H

#include "engine/ir.h"

/* NumPy broadcasting of shapes a and b into out (returns false if they do not
 * broadcast). */
bool gb__broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b,
                         int *nout, int64_t *out);

/* Strides (in elements) of `in` viewed with the `nout`-dim broadcast shape
 * `out`: leading missing dims and size-1 dims get stride 0. */
void gb__broadcast_strides(int nin, const int64_t *in, int nout, const int64_t *out,
                           int64_t *strides);

/* Normalise an axis in [-ndim, ndim) to [0, ndim); returns -1 if out of range. */
static inline int gb__axis(int64_t axis, int ndim) {
    if (axis < -ndim || axis >= ndim) return -1;
    return (int)(axis < 0 ? axis + ndim : axis);
}

/* Convenience for kernels: typed data pointers. */
#define GB_F32(t) ((float *)(t)->data)
#define GB_CF32(t) ((const float *)(t)->data)
#define GB_I64(t) ((int64_t *)(t)->data)
#define GB_CI64(t) ((const int64_t *)(t)->data)

/* Enough work to be worth a parallel region (elements). */
#define GB_PAR_MIN 32768

/* Reject a node whose input count is outside [lo, hi] or output count outside
 * [olo, ohi]; names the node. */
gb_status gb__check_arity(gb_ctx *ctx, const gb__node *n, int lo, int hi, int olo, int ohi);

/* Every op family file exports a NULL-terminated table of its ops. */
extern const gb__op *const gb__ops_conv[];
extern const gb__op *const gb__ops_pool[];
extern const gb__op *const gb__ops_norm[];
extern const gb__op *const gb__ops_gemm[];
extern const gb__op *const gb__ops_elementwise[];
extern const gb__op *const gb__ops_activation[];
extern const gb__op *const gb__ops_softmax[];
extern const gb__op *const gb__ops_shape[];
extern const gb__op *const gb__ops_reduce[];
extern const gb__op *const gb__ops_resize[];
extern const gb__op *const gb__ops_index[];

#endif
