/* linear.c — the linear models that CAVs, Net2Vec and probes are made of:
 * binary logistic regression, linear SVM (hinge loss) and softmax
 * regression, trained by full-batch Adam on standardized features.
 *
 * Full batch and zero initialization make the result a deterministic
 * function of the data (no seed needed, no order effects); the L2 penalty
 * makes the problem strictly convex, so a few hundred Adam steps reach the
 * optimum closely enough for a direction (CAV) or an accuracy (probe).
 * Features are standardized (mean 0, std 1 over the training rows; constant
 * features are left centred) so one learning rate suits every layer, and the
 * weights are mapped back to the original space at the end:
 *     w_j = v_j / sd_j,   b = c - sum_j v_j mu_j / sd_j. */
#include "concepts/concepts_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { FIT_SOFTMAX, FIT_LOGISTIC, FIT_SVM } fit_kind;

/* sw: per-row loss weights (NULL = 1), e.g. Net2Vec's class balancing. */
static gb_status fit(gb_ctx *ctx, const float *X, const int *y, const float *sw, int64_t n, int64_t d, int K,
                     fit_kind kind, const gb_linear_opts *o, float *W, float *bias) {
    double l2 = o && o->l2 > 0 ? o->l2 : 1e-3;
    int epochs = o && o->epochs > 0 ? o->epochs : 200;
    double lr = o && o->lr > 0 ? o->lr : 0.01;
    if (n < 1 || d < 1) return gb__err(ctx, GB_ERR_ARG, "linear: no data (%lld rows, %lld features)", (long long)n,
                                       (long long)d);
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= (kind == FIT_SOFTMAX ? K : 2))
            return gb__err(ctx, GB_ERR_ARG, "linear: label %d of row %lld out of range", y[i], (long long)i);
    size_t nd = (size_t)n * (size_t)d, Kd = (size_t)K * (size_t)d;
    float *Z = malloc(sizeof *Z * nd), *S = malloc(sizeof *S * (size_t)n * (size_t)K);
    float *G = malloc(sizeof *G * Kd), *V = calloc(Kd, sizeof *V);
    double *mu = calloc((size_t)d, sizeof *mu), *sd = calloc((size_t)d, sizeof *sd);
    double *m1 = calloc(Kd + (size_t)K, sizeof *m1), *m2 = calloc(Kd + (size_t)K, sizeof *m2);
    double *c = calloc((size_t)K, sizeof *c), *gc = calloc((size_t)K, sizeof *gc);
    if (!Z || !S || !G || !V || !mu || !sd || !m1 || !m2 || !c || !gc) {
        free(Z), free(S), free(G), free(V), free(mu), free(sd), free(m1), free(m2), free(c), free(gc);
        return gb__err(ctx, GB_ERR_NOMEM, "linear: out of memory (%lld x %lld features)", (long long)n, (long long)d);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) mu[j] += X[i * d + j];
    for (int64_t j = 0; j < d; j++) mu[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double t = X[i * d + j] - mu[j];
            sd[j] += t * t;
        }
    for (int64_t j = 0; j < d; j++) {
        sd[j] = sqrt(sd[j] / (double)n);
        if (!(sd[j] > 1e-12)) sd[j] = 1;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) Z[i * d + j] = (float)((X[i * d + j] - mu[j]) / sd[j]);

    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int ep = 1; ep <= epochs; ep++) {
        /* scores S (n, K) = Z V^T + c */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, K, (int)d, 1.0f, Z, (int)d, V, (int)d, 0.0f, S, K);
        memset(gc, 0, sizeof *gc * (size_t)K);
        for (int64_t i = 0; i < n; i++) {
            float *s = S + i * K;
            for (int k = 0; k < K; k++) s[k] += (float)c[k];
            /* S becomes dLoss/dscore (mean over rows) */
            if (kind == FIT_SOFTMAX) {
                double mx = s[0], sum = 0;
                for (int k = 1; k < K; k++) mx = s[k] > mx ? s[k] : mx;
                for (int k = 0; k < K; k++) sum += exp(s[k] - mx);
                for (int k = 0; k < K; k++) s[k] = (float)((exp(s[k] - mx) / sum - (y[i] == k)) / (double)n);
            } else if (kind == FIT_LOGISTIC) {
                double p = 1 / (1 + exp(-(double)s[0]));
                s[0] = (float)((p - y[i]) / (double)n);
            } else {
                double t = y[i] ? 1 : -1;
                s[0] = (float)(t * s[0] < 1 ? -t / (double)n : 0);
            }
            if (sw)
                for (int k = 0; k < K; k++) s[k] *= sw[i];
            for (int k = 0; k < K; k++) gc[k] += s[k];
        }
        /* G (K, d) = S^T Z + l2 V */
        memcpy(G, V, sizeof *G * Kd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)d, (int)n, 1.0f, S, K, Z, (int)d, (float)l2, G,
                    (int)d);
        double bc1 = 1 - pow(b1, ep), bc2 = 1 - pow(b2, ep);
        for (size_t q = 0; q < Kd + (size_t)K; q++) {
            double g = q < Kd ? G[q] : gc[q - Kd];
            m1[q] = b1 * m1[q] + (1 - b1) * g;
            m2[q] = b2 * m2[q] + (1 - b2) * g * g;
            double step = lr * (m1[q] / bc1) / (sqrt(m2[q] / bc2) + eps);
            if (q < Kd) V[q] -= (float)step;
            else c[q - Kd] -= step;
        }
    }
    for (int k = 0; k < K; k++) {
        double b = c[k];
        for (int64_t j = 0; j < d; j++) {
            double w = V[(size_t)k * (size_t)d + (size_t)j] / sd[j];
            W[(size_t)k * (size_t)d + (size_t)j] = (float)w;
            b -= w * mu[j];
        }
        bias[k] = (float)b;
    }
    free(Z), free(S), free(G), free(V), free(mu), free(sd), free(m1), free(m2), free(c), free(gc);
    return GB_OK;
}

gb_status gb_linear_fit(gb_ctx *ctx, const float *X, const int *y, int64_t n, int64_t d, const gb_linear_opts *o,
                        float *w, float *b) {
    gb_linear_kind kind = o ? o->kind : GB_LINEAR_LOGISTIC;
    if (kind < 0 || kind >= GB_LINEAR_COUNT) return gb__err(ctx, GB_ERR_ARG, "linear: unknown classifier %d", kind);
    return fit(ctx, X, y, NULL, n, d, 1, kind == GB_LINEAR_SVM ? FIT_SVM : FIT_LOGISTIC, o, w, b);
}

gb_status gb_softmax_fit(gb_ctx *ctx, const float *X, const int *y, int64_t n, int64_t d, int K,
                         const gb_linear_opts *o, float *W, float *bias) {
    if (K < 2) return gb__err(ctx, GB_ERR_ARG, "softmax: needs at least 2 classes (got %d)", K);
    return fit(ctx, X, y, NULL, n, d, K, FIT_SOFTMAX, o, W, bias);
}

gb_status gb__linear_fit_weighted(gb_ctx *ctx, const float *X, const int *y, const float *sw, int64_t n, int64_t d,
                                  const gb_linear_opts *o, float *w, float *b) {
    gb_linear_kind kind = o ? o->kind : GB_LINEAR_LOGISTIC;
    return fit(ctx, X, y, sw, n, d, 1, kind == GB_LINEAR_SVM ? FIT_SVM : FIT_LOGISTIC, o, w, b);
}

double gb_linear_accuracy(const float *X, const int *y, int64_t n, int64_t d, int K, const float *W,
                          const float *bias) {
    if (n < 1) return 0;
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x = X + i * d;
        int best = 0;
        double bs = -INFINITY;
        for (int k = 0; k < K; k++) {
            double s = bias[k];
            for (int64_t j = 0; j < d; j++) s += (double)W[(size_t)k * (size_t)d + (size_t)j] * x[j];
            if (K == 1) best = s > 0;
            else if (s > bs) bs = s, best = k;
        }
        right += best == y[i];
    }
    return (double)right / (double)n;
}
