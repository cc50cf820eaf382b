/*
 * gemm.c — matrix products (float32) through OpenBLAS cblas_sgemm:
 *   Gemm:   Y (M, N) = alpha * A' (M, K) * B' (K, N) + beta * C
 *   MatMul: numpy.matmul
 *
 * Gemm (ONNX Gemm-6/7/9/11/13):
 * - A' = transpose(A) if transA, B' = transpose(B) if transB; A and B are 2-D.
 * - C broadcasts unidirectionally to (M, N) (opset >= 7; opset 6 used a
 *   `broadcast` flag, ignored here since unidirectional broadcasting is a
 *   superset of both of its settings). C is optional from opset 11; earlier
 *   models always pass it, and we accept its absence at any opset.
 * - beta == 0 skips C entirely (as BLAS does), so a C of NaN/inf is not read.
 *
 * MatMul (ONNX MatMul-1/9/13, numpy.matmul semantics):
 * - a 1-D A of shape (K) is treated as (1, K) and the 1 removed from the
 *   result; a 1-D B of shape (K) as (K, 1), likewise removed;
 * - leading "batch" dims (all but the last two) broadcast NumPy-style;
 *   each output matrix is one sgemm. When B has no batch and A is not
 *   broadcast, the batch folds into M: one (batch*M, K) x (K, N) product,
 *   the common case of a Linear layer on a (B, T, C) input.
 *
 * OpenBLAS threads itself (pthread build; the engine sets its thread count),
 * so no sgemm call is made inside an OpenMP region; the batch loop is serial.
 *
 * Backward: two sgemm calls per product, accumulating (BLAS beta = 1) into
 * the input gradients — dA = G B^T, dB = A^T G with the transpositions
 * folded into the BLAS flags — plus Gemm's bias gradient beta * G summed
 * over C's broadcast dims. Weight and bias gradients only when asked for.
 */
#include "ops/util.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* ---- Gemm ------------------------------------------------------------------- */

typedef struct {
    float alpha, beta;
    int trans_a, trans_b;
} gemm_params;

static gb_status Gemm_init(gb_ctx *ctx, gb__node *n) {
    gb_status st = gb__check_arity(ctx, n, 2, 3, 1, 1);
    if (st) return st;
    gemm_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->alpha = gb__attr_float(n, "alpha", 1.0f);
    p->beta = gb__attr_float(n, "beta", 1.0f);
    p->trans_a = gb__attr_int(n, "transA", 0) != 0;
    p->trans_b = gb__attr_int(n, "transB", 0) != 0;
    n->params = p;
    return GB_OK;
}

/* The optional C input, or NULL. */
static const gb_tensor *gemm_c(const gb__node *n, const gb_tensor *const *in) {
    return n->n_in > 2 && n->in[2] >= 0 ? in[2] : NULL;
}

static gb_status Gemm_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                            gb_tensor **out, size_t *ws_bytes, double *flops) {
    const gemm_params *p = n->params;
    const gb_tensor *a = in[0], *b = in[1];
    const gb_tensor *c = gemm_c(n, (const gb_tensor *const *)in);
    char sa[128], sb[128], sc[128];
    gb_shape_str(a->ndim, a->dims, sa, sizeof sa);
    gb_shape_str(b->ndim, b->dims, sb, sizeof sb);
    if (a->dtype != GB_DTYPE_F32 || b->dtype != GB_DTYPE_F32 || (c && c->dtype != GB_DTYPE_F32))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): inputs must be float32 (A %s, B %s%s%s)",
                       n->name, n->op_type, gb_dtype_name(a->dtype), gb_dtype_name(b->dtype),
                       c ? ", C " : "", c ? gb_dtype_name(c->dtype) : "");
    if (a->ndim != 2 || b->ndim != 2)
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): A %s and B %s must be 2-D", n->name,
                       n->op_type, sa, sb);
    int64_t M = p->trans_a ? a->dims[1] : a->dims[0];
    int64_t K = p->trans_a ? a->dims[0] : a->dims[1];
    int64_t Kb = p->trans_b ? b->dims[1] : b->dims[0];
    int64_t N = p->trans_b ? b->dims[0] : b->dims[1];
    if (K != Kb)
        return gb__err(ctx, GB_ERR_SHAPE,
                       "%s (%s): inner dimensions differ: A %s (transA=%d), B %s (transB=%d)",
                       n->name, n->op_type, sa, p->trans_a, sb, p->trans_b);
    if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(a->dims[1]) ||
        !fits_int(b->dims[1]))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): dimensions exceed BLAS int range",
                       n->name, n->op_type);
    if (c) {
        /* unidirectional: C's dims, right-aligned, are 1 or equal to (M, N) */
        bool ok = c->ndim <= 2;
        for (int i = 0; ok && i < c->ndim; i++) {
            int64_t want = i == c->ndim - 1 ? N : M;
            ok = c->dims[i] == 1 || c->dims[i] == want;
        }
        if (!ok) {
            gb_shape_str(c->ndim, c->dims, sc, sizeof sc);
            return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): C %s does not broadcast to (%lld, %lld)",
                           n->name, n->op_type, sc, (long long)M, (long long)N);
        }
    }
    int64_t od[2] = {M, N};
    gb__set_shape(out[0], GB_DTYPE_F32, 2, od);
    *flops = 2.0 * (double)M * (double)N * (double)K + (c ? (double)M * (double)N : 0.0);
    return GB_OK;
}

static gb_status Gemm_forward(const gb__node *n, const gb_tensor *const *in,
                              gb_tensor *const *out, const gb__exec *ex) {
    const gemm_params *p = n->params;
    const gb_tensor *a = in[0], *b = in[1], *c = gemm_c(n, in);
    float *y = GB_F32(out[0]); /* (M, N) */
    const int M = (int)out[0]->dims[0], N = (int)out[0]->dims[1];
    const int K = (int)(p->trans_a ? a->dims[0] : a->dims[1]);
    if (M == 0 || N == 0) return GB_OK;

    /* Y = beta * C (broadcast), then Y += alpha * A'B' with BLAS beta = 1. */
    float blas_beta = 0.0f;
    if (c && p->beta != 0.0f) {
        int64_t cd[2] = {M, N}, cs[2];
        gb__broadcast_strides(c->ndim, c->dims, 2, cd, cs);
        const float *cp = GB_CF32(c);
        const float beta = p->beta;
        int nt = (int64_t)M * N > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int m = 0; m < M; m++)
            for (int j = 0; j < N; j++) y[(int64_t)m * N + j] = beta * cp[m * cs[0] + j * cs[1]];
        blas_beta = 1.0f;
    }
    if (K == 0) { /* empty sum: A'B' is zero */
        if (blas_beta == 0.0f) memset(y, 0, (size_t)M * (size_t)N * sizeof *y);
        return GB_OK;
    }
    cblas_sgemm(CblasRowMajor, p->trans_a ? CblasTrans : CblasNoTrans,
                p->trans_b ? CblasTrans : CblasNoTrans, M, N, K, p->alpha, GB_CF32(a),
                (int)a->dims[1], GB_CF32(b), (int)b->dims[1], blas_beta, y, N);
    return GB_OK;
}

/*
 * Gemm backward. With A' = op(A) (M, K), B' = op(B) (K, N), G = dY (M, N):
 *   dA' = alpha G B'^T (M, K)    ->  transA=0: dA += alpha G op(B)^T
 *                                    transA=1: dA += alpha op(B) G^T   (K, M)
 *   dB' = alpha A'^T G (K, N)    ->  transB=0: dB += alpha op(A)^T G
 *                                    transB=1: dB += alpha G^T op(A)   (N, K)
 *   dC  = beta G, summed over the dims C broadcasts along (a (N) or (1, N)
 *         bias sums over rows, (M, 1) over columns, a scalar over all).
 * Each product is one sgemm with BLAS beta = 1 (accumulate). Weight and bias
 * gradients are computed only when asked for (din[1], din[2] non-NULL).
 */
static gb_status Gemm_backward(const gb__node *n, const gb_tensor *const *in,
                               const gb_tensor *const *out, const gb_tensor *const *dout,
                               gb_tensor *const *din, const gb__exec *ex) {
    const gemm_params *p = n->params;
    const gb_tensor *a = in[0], *b = in[1], *c = gemm_c(n, in);
    if (!dout[0]) return GB_OK;
    const float *g = GB_CF32(dout[0]); /* (M, N) */
    const int M = (int)out[0]->dims[0], N = (int)out[0]->dims[1];
    const int K = (int)(p->trans_a ? a->dims[0] : a->dims[1]);
    const int lda = (int)a->dims[1], ldb = (int)b->dims[1];
    if (M == 0 || N == 0) return GB_OK;
    const CBLAS_TRANSPOSE opA = p->trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE opB = p->trans_b ? CblasTrans : CblasNoTrans;
    if (din[0] && K > 0) {
        float *da = GB_F32(din[0]);
        if (!p->trans_a) /* (M, K) += G (M, N) * op(B)^T (N, K) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, p->trans_b ? CblasNoTrans : CblasTrans, M, K,
                        N, p->alpha, g, N, GB_CF32(b), ldb, 1.0f, da, K);
        else /* (K, M) += op(B) (K, N) * G^T (N, M) */
            cblas_sgemm(CblasRowMajor, opB, CblasTrans, K, M, N, p->alpha, GB_CF32(b), ldb, g, N,
                        1.0f, da, M);
    }
    if (din[1] && K > 0) {
        float *db = GB_F32(din[1]);
        if (!p->trans_b) /* (K, N) += op(A)^T (K, M) * G (M, N) */
            cblas_sgemm(CblasRowMajor, p->trans_a ? CblasNoTrans : CblasTrans, CblasNoTrans, K, N,
                        M, p->alpha, GB_CF32(a), lda, g, N, 1.0f, db, N);
        else /* (N, K) += G^T (N, M) * op(A) (M, K) */
            cblas_sgemm(CblasRowMajor, CblasTrans, opA, N, K, M, p->alpha, g, N, GB_CF32(a), lda,
                        1.0f, db, K);
    }
    if (c && din[2] && p->beta != 0.0f) {
        /* dC[m * cs0 + j * cs1] += beta * G[m, j]; a 0 stride is a sum.
         * Sums run in double; threads own disjoint parts of dC. */
        int64_t cd[2] = {M, N}, cs[2];
        gb__broadcast_strides(c->ndim, c->dims, 2, cd, cs);
        float *dc = GB_F32(din[2]);
        const double beta = p->beta;
        int nt = (int64_t)M * N > GB_PAR_MIN ? ex->n_threads : 1;
        if (cs[0] != 0 && cs[1] != 0) { /* (M, N) */
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
            for (int m = 0; m < M; m++)
                for (int j = 0; j < N; j++) dc[(int64_t)m * N + j] += (float)(beta * g[(int64_t)m * N + j]);
        } else if (cs[0] != 0) { /* (M, 1): row sums */
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
            for (int m = 0; m < M; m++) {
                double acc = 0.0;
                for (int j = 0; j < N; j++) acc += g[(int64_t)m * N + j];
                dc[m] += (float)(beta * acc);
            }
        } else if (cs[1] != 0) { /* (N) or (1, N): column sums, 64 columns per block */
            const int nblk = (N + 63) / 64;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
            for (int blk = 0; blk < nblk; blk++) {
                const int j0 = blk * 64, j1 = j0 + 64 < N ? j0 + 64 : N;
                double acc[64] = {0};
                for (int m = 0; m < M; m++)
                    for (int j = j0; j < j1; j++) acc[j - j0] += g[(int64_t)m * N + j];
                for (int j = j0; j < j1; j++) dc[j] += (float)(beta * acc[j - j0]);
            }
        } else { /* one value */
            double acc = 0.0;
            for (int64_t i = 0; i < (int64_t)M * N; i++) acc += g[i];
            dc[0] += (float)(beta * acc);
        }
    }
    return GB_OK;
}

const gb__op gb__op_Gemm = {
    .name = "Gemm", .init = Gemm_init, .infer = Gemm_infer, .forward = Gemm_forward,
    .backward = Gemm_backward};

/* ---- MatMul ----------------------------------------------------------------- */

/* The shapes of a MatMul: batch dims of A and B (their own, not broadcast),
 * the broadcast batch, and M, K, N. */
typedef struct {
    int nba, nbb, nbo;
    int64_t ba[GB_MAX_DIMS], bb[GB_MAX_DIMS], bo[GB_MAX_DIMS];
    int64_t M, K, N;
} matmul_shape;

/* false with *why set if the shapes do not multiply */
static bool matmul_plan(const gb_tensor *a, const gb_tensor *b, matmul_shape *s,
                        const char **why) {
    if (a->ndim < 1 || b->ndim < 1) {
        *why = "operands must have at least 1 dimension";
        return false;
    }
    /* (K) -> (1, K) for A; (K) -> (K, 1) for B */
    s->M = a->ndim == 1 ? 1 : a->dims[a->ndim - 2];
    s->K = a->dims[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->dims[0] : b->dims[b->ndim - 2];
    s->N = b->ndim == 1 ? 1 : b->dims[b->ndim - 1];
    if (s->K != kb) {
        *why = "inner dimensions differ";
        return false;
    }
    s->nba = a->ndim > 2 ? a->ndim - 2 : 0;
    s->nbb = b->ndim > 2 ? b->ndim - 2 : 0;
    for (int i = 0; i < s->nba; i++) s->ba[i] = a->dims[i];
    for (int i = 0; i < s->nbb; i++) s->bb[i] = b->dims[i];
    if (!gb__broadcast_shape(s->nba, s->ba, s->nbb, s->bb, &s->nbo, s->bo)) {
        *why = "batch dimensions do not broadcast";
        return false;
    }
    if (!fits_int(s->M) || !fits_int(s->N) || !fits_int(s->K)) {
        *why = "dimensions exceed BLAS int range";
        return false;
    }
    return true;
}

static gb_status MatMul_init(gb_ctx *ctx, gb__node *n) {
    return gb__check_arity(ctx, n, 2, 2, 1, 1);
}

static gb_status MatMul_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                              gb_tensor **out, size_t *ws_bytes, double *flops) {
    const gb_tensor *a = in[0], *b = in[1];
    if (a->dtype != GB_DTYPE_F32 || b->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): inputs must be float32 (got %s, %s)",
                       n->name, n->op_type, gb_dtype_name(a->dtype), gb_dtype_name(b->dtype));
    matmul_shape s;
    const char *why = NULL;
    bool ok = matmul_plan(a, b, &s, &why);
    int nd = 0;
    int64_t od[GB_MAX_DIMS + 2];
    if (ok) {
        for (int i = 0; i < s.nbo; i++) od[nd++] = s.bo[i];
        if (a->ndim >= 2) od[nd++] = s.M;
        if (b->ndim >= 2) od[nd++] = s.N;
        if (nd > GB_MAX_DIMS) ok = false, why = "result has too many dimensions";
    }
    if (!ok) {
        char sa[128], sb[128];
        gb_shape_str(a->ndim, a->dims, sa, sizeof sa);
        gb_shape_str(b->ndim, b->dims, sb, sizeof sb);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): cannot multiply %s by %s: %s", n->name,
                       n->op_type, sa, sb, why);
    }
    gb__set_shape(out[0], GB_DTYPE_F32, nd, od);
    *flops = 2.0 * (double)gb__numel(s.nbo, s.bo) * (double)s.M * (double)s.N * (double)s.K;
    return GB_OK;
}

/* C (M, N) = A (M, K) * B (K, N), all row-major and dense. */
static void sgemm_nn(int M, int N, int K, const float *A, const float *B, float *C) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        memset(C, 0, (size_t)M * (size_t)N * sizeof *C);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
}

static gb_status MatMul_forward(const gb__node *n, const gb_tensor *const *in,
                                gb_tensor *const *out, const gb__exec *ex) {
    const gb_tensor *a = in[0], *b = in[1];
    matmul_shape s;
    const char *why;
    if (!matmul_plan(a, b, &s, &why)) return GB_ERR_SHAPE;
    const float *ap = GB_CF32(a), *bp = GB_CF32(b);
    float *yp = GB_F32(out[0]);
    const int64_t M = s.M, K = s.K, N = s.N;
    const int64_t nbatch = gb__numel(s.nbo, s.bo);
    const int64_t na = gb__numel(s.nba, s.ba), nb = gb__numel(s.nbb, s.bb);

    /* B shared by every batch and A dense over the batch: fold batch into M. */
    if (nb == 1 && na == nbatch && fits_int(nbatch * M)) {
        sgemm_nn((int)(nbatch * M), (int)N, (int)K, ap, bp, yp);
        return GB_OK;
    }
    /* General: one product per output batch index, offsets by broadcasting. */
    int64_t sa[GB_MAX_DIMS], sb[GB_MAX_DIMS];
    gb__broadcast_strides(s.nba, s.ba, s.nbo, s.bo, sa);
    gb__broadcast_strides(s.nbb, s.bb, s.nbo, s.bo, sb);
    for (int64_t t = 0; t < nbatch; t++) {
        int64_t ia = 0, ib = 0, q = t; /* matrix indices into A and B */
        for (int j = s.nbo - 1; j >= 0; j--) {
            int64_t idx = q % s.bo[j];
            q /= s.bo[j];
            ia += idx * sa[j];
            ib += idx * sb[j];
        }
        sgemm_nn((int)M, (int)N, (int)K, ap + ia * M * K, bp + ib * K * N, yp + t * M * N);
    }
    return GB_OK;
}

/*
 * MatMul backward. Per output matrix t (reading A matrix ia(t), B matrix
 * ib(t)), with G_t = dY_t (M, N):
 *   dA[ia] += G_t B[ib]^T   (M, K)        dB[ib] += A[ia]^T G_t   (K, N)
 * A batch dim that A broadcasts along maps many t to one ia: the products
 * then accumulate into the same dA matrix, which is the sum over the
 * broadcast dims. 1-D operands need nothing special: (K) is stored like
 * (1, K) or (K, 1), and dY like the unsqueezed result. The batch loop is
 * serial (each sgemm threads itself); the folded case (B shared, A dense)
 * is two sgemm calls over all batch rows at once.
 */
static gb_status MatMul_backward(const gb__node *n, const gb_tensor *const *in,
                                 const gb_tensor *const *out, const gb_tensor *const *dout,
                                 gb_tensor *const *din, const gb__exec *ex) {
    (void)n, (void)out, (void)ex;
    const gb_tensor *a = in[0], *b = in[1];
    if (!dout[0] || (!din[0] && !din[1])) return GB_OK;
    matmul_shape s;
    const char *why;
    if (!matmul_plan(a, b, &s, &why)) return GB_ERR_SHAPE;
    const int64_t M = s.M, K = s.K, N = s.N;
    if (M == 0 || N == 0 || K == 0) return GB_OK;
    const float *ap = GB_CF32(a), *bp = GB_CF32(b), *g = GB_CF32(dout[0]);
    float *da = din[0] ? GB_F32(din[0]) : NULL, *db = din[1] ? GB_F32(din[1]) : NULL;
    const int64_t nbatch = gb__numel(s.nbo, s.bo);
    const int64_t na = gb__numel(s.nba, s.ba), nb = gb__numel(s.nbb, s.bb);
    if (nbatch == 0) return GB_OK;

    if (nb == 1 && na == nbatch && fits_int(nbatch * M)) {
        const int MM = (int)(nbatch * M);
        if (da) /* (MM, K) += G (MM, N) B^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, MM, (int)K, (int)N, 1.0f, g,
                        (int)N, bp, (int)N, 1.0f, da, (int)K);
        if (db) /* (K, N) += A^T (K, MM) G (MM, N) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)N, MM, 1.0f, ap,
                        (int)K, g, (int)N, 1.0f, db, (int)N);
        return GB_OK;
    }
    int64_t sa[GB_MAX_DIMS], sb[GB_MAX_DIMS];
    gb__broadcast_strides(s.nba, s.ba, s.nbo, s.bo, sa);
    gb__broadcast_strides(s.nbb, s.bb, s.nbo, s.bo, sb);
    for (int64_t t = 0; t < nbatch; t++) {
        int64_t ia = 0, ib = 0, q = t;
        for (int j = s.nbo - 1; j >= 0; j--) {
            int64_t idx = q % s.bo[j];
            q /= s.bo[j];
            ia += idx * sa[j];
            ib += idx * sb[j];
        }
        const float *gt = g + t * M * N;
        if (da)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)K, (int)N, 1.0f, gt,
                        (int)N, bp + ib * K * N, (int)N, 1.0f, da + ia * M * K, (int)K);
        if (db)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)N, (int)M, 1.0f,
                        ap + ia * M * K, (int)K, gt, (int)N, 1.0f, db + ib * K * N, (int)N);
    }
    return GB_OK;
}

const gb__op gb__op_MatMul = {
    .name = "MatMul", .init = MatMul_init, .infer = MatMul_infer, .forward = MatMul_forward,
    .backward = MatMul_backward};

const gb__op *const gb__ops_gemm[] = {&gb__op_Gemm, &gb__op_MatMul, NULL};
