/* perturb_surrogate.c — lime and kernel_shap: a linear model fitted to the
 * target's values on random coalitions of features (perturb.h for the
 * shared machinery).
 *
 * A coalition z in {0, 1}^M switches feature m to x (z_m = 1) or to the
 * baseline x' (z_m = 0): the row is z x + (1 - z) x' feature by feature.
 *
 *   lime         Ribeiro et al. 2016, eq. 1-2, as Captum's Lime with its
 *                defaults: S = o->n_samples (default 1000, LIME's) coalitions
 *                drawn with each z_m ~ Bernoulli(1/2); each weighted by the
 *                exponential kernel pi = exp(-d^2 / (2 w^2)) on the cosine
 *                distance d = 1 - cos(x, row) between the flattened item and
 *                row in input space (Captum's get_exp_kernel_similarity_function,
 *                w = o->kernel_width, default 1); the surrogate
 *                g(z) = b + sum_m phi_m z_m is fitted by o->surrogate:
 *                  LASSO   min 1/(2 sum pi) sum_i pi_i (y_i - g(z_i))^2 + alpha |phi|_1
 *                          (scikit-learn's Lasso with sample_weight, which
 *                          Captum's default SkLearnLasso(alpha=0.01) calls;
 *                          cyclic coordinate descent to convergence),
 *                  RIDGE   min sum_i pi_i (y_i - g(z_i))^2 + alpha |phi|^2
 *                          (scikit-learn's Ridge; closed form),
 *                  LINEAR  alpha = 0 (minimum-norm least squares).
 *                attr = phi on each feature's elements; r->fit_r2 the
 *                weighted R^2 of g on the samples.
 *   kernel_shap  Lundberg & Lee 2017, Theorem 2, sampled as Captum's
 *                KernelShap: coalition 0 is all ones, 1 all zeros, then the
 *                size k in 1..M-1 is drawn with probability proportional to
 *                the Shapley kernel's total weight of that size,
 *                (M - 1) / (k (M - k)), and the k members uniformly, so the
 *                regression is unweighted. Captum approximates the constraints
 *                g(0) = f(x'), g(1) = f(x) with weights 1e6 on the first two
 *                samples; here they hold exactly (efficiency: sum phi =
 *                f(x) - f(x')): phi_M = f(x) - f(x') - sum_{m<M} phi_m is
 *                substituted and the rest solved by least squares (minimum
 *                norm when rank-deficient). With as many distinct coalitions
 *                as features the solution is exact on additive models.
 *
 * o->fixed_coalitions replaces the draws (S x M 0/1 values per item), which
 * is how the tests feed both methods Captum's own sample matrix. */
#include "methods/perturb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small dense linear algebra (M x M, M = number of features) --------------------------- */

/* Eigen-decomposition of a symmetric n x n matrix A (destroyed) by cyclic
 * Jacobi rotations: eigenvalues in ev, eigenvectors as the columns of V. */
static void jacobi_eigen(double *A, int64_t n, double *ev, double *V) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) V[i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int64_t i = 0; i < n; i++) {
            diag += A[i * n + i] * A[i * n + i];
            for (int64_t j = i + 1; j < n; j++) off += A[i * n + j] * A[i * n + j];
        }
        if (off <= 1e-30 * diag || off == 0) break;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++) {
                double apq = A[p * n + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int64_t k = 0; k < n; k++) {   /* A <- A J (columns p, q) */
                    double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (int64_t k = 0; k < n; k++) {   /* A <- J^T A (rows p, q) */
                    double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                for (int64_t k = 0; k < n; k++) {
                    double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int64_t i = 0; i < n; i++) ev[i] = A[i * n + i];
}

/* beta = pinv(G + ridge I) c for a symmetric positive semi-definite G (n x n,
 * destroyed): eigenvalues below 1e-10 of the largest count as zero, which
 * gives the minimum-norm least-squares solution when G = A^T W A. */
static gb_status sym_solve(gb_ctx *ctx, double *G, int64_t n, double ridge, const double *c, double *beta) {
    double *ev = malloc((size_t)n * sizeof *ev), *V = malloc((size_t)(n * n) * sizeof *V);
    if (!ev || !V) {
        free(ev);
        free(V);
        return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    for (int64_t i = 0; i < n; i++) G[i * n + i] += ridge;
    jacobi_eigen(G, n, ev, V);
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        if (ev[i] > mx) mx = ev[i];
    for (int64_t i = 0; i < n; i++) beta[i] = 0;
    for (int64_t k = 0; k < n; k++) {
        if (!(ev[k] > 1e-10 * mx)) continue;
        double proj = 0;
        for (int64_t i = 0; i < n; i++) proj += V[i * n + k] * c[i];
        proj /= ev[k];
        for (int64_t i = 0; i < n; i++) beta[i] += proj * V[i * n + k];
    }
    free(ev);
    free(V);
    return GB_OK;
}

/* Weighted linear fit y ~ b + Z phi over S samples of M features (Z is S x M,
 * float 0/1), weights w (NULL = 1), by kind. Fills phi (M), *b and the
 * weighted R^2. */
static gb_status fit_linear(gb_ctx *ctx, const float *Z, const double *y, const double *w, int64_t S, int64_t M,
                            gb_surrogate kind, double alpha, double *phi, double *b, double *r2) {
    if (S < 1 || M < 1 || S > ((int64_t)1 << 40) / M) return gb__err(ctx, GB_ERR_ARG, "explain: %lld samples of %lld features", (long long)S, (long long)M);
    double sw = 0, ym = 0;
    double *zm = calloc((size_t)M, sizeof *zm), *Zc = malloc((size_t)(S * M) * sizeof *Zc),
           *yc = malloc((size_t)S * sizeof *yc);
    double *G = NULL, *c = NULL, *res = NULL;
    gb_status st = GB_OK;
    if (!zm || !Zc || !yc) goto oom;
    /* weighted centring (scikit-learn's _preprocess_data with sample_weight):
     * the intercept is then ym - zm . phi */
    for (int64_t i = 0; i < S; i++) {
        double wi = w ? w[i] : 1;
        sw += wi;
        ym += wi * y[i];
        for (int64_t m = 0; m < M; m++) zm[m] += wi * Z[i * M + m];
    }
    if (!(sw > 0)) {
        st = gb__err(ctx, GB_ERR_ARG, "explain: the surrogate's sample weights sum to %g", sw);
        goto done;
    }
    ym /= sw;
    for (int64_t m = 0; m < M; m++) zm[m] /= sw;
    for (int64_t i = 0; i < S; i++) {
        yc[i] = y[i] - ym;
        for (int64_t m = 0; m < M; m++) Zc[i * M + m] = Z[i * M + m] - zm[m];
    }
    if (kind == GB_SURROGATE_LASSO) {
        /* cyclic coordinate descent on 1/(2 sw) sum w r^2 + alpha |phi|_1 */
        double *a = calloc((size_t)M, sizeof *a);
        if (!(res = malloc((size_t)S * sizeof *res)) || !a) {
            free(a);
            goto oom;
        }
        for (int64_t m = 0; m < M; m++) {
            phi[m] = 0;
            for (int64_t i = 0; i < S; i++) a[m] += (w ? w[i] : 1) * Zc[i * M + m] * Zc[i * M + m];
            a[m] /= sw;
        }
        memcpy(res, yc, (size_t)S * sizeof *res);
        for (int it = 0; it < 100000; it++) {
            double dmax = 0, pmax = 0;
            for (int64_t m = 0; m < M; m++) {
                if (a[m] <= 0) continue;
                double rho = 0;
                for (int64_t i = 0; i < S; i++) rho += (w ? w[i] : 1) * Zc[i * M + m] * res[i];
                rho = rho / sw + a[m] * phi[m];
                double nv = rho > alpha ? (rho - alpha) / a[m] : rho < -alpha ? (rho + alpha) / a[m] : 0;
                double d = nv - phi[m];
                if (d != 0) {
                    for (int64_t i = 0; i < S; i++) res[i] -= d * Zc[i * M + m];
                    phi[m] = nv;
                }
                if (fabs(d) > dmax) dmax = fabs(d);
                if (fabs(nv) > pmax) pmax = fabs(nv);
            }
            if (dmax <= 1e-13 * (pmax > 0 ? pmax : 1)) break;
        }
        free(a);
    } else {
        G = calloc((size_t)(M * M), sizeof *G);
        c = calloc((size_t)M, sizeof *c);
        if (!G || !c) goto oom;
        for (int64_t i = 0; i < S; i++) {
            double wi = w ? w[i] : 1;
            const double *zi = Zc + i * M;
            for (int64_t p = 0; p < M; p++) {
                if (zi[p] == 0) continue;
                double wz = wi * zi[p];
                c[p] += wz * yc[i];
                for (int64_t q = 0; q < M; q++) G[p * M + q] += wz * zi[q];
            }
        }
        if ((st = sym_solve(ctx, G, M, kind == GB_SURROGATE_RIDGE ? alpha : 0, c, phi))) goto done;
    }
    *b = ym;
    for (int64_t m = 0; m < M; m++) *b -= zm[m] * phi[m];
    /* weighted R^2 = 1 - sum w (y - g)^2 / sum w (y - ym)^2 (scikit-learn's score) */
    double ss_res = 0, ss_tot = 0;
    for (int64_t i = 0; i < S; i++) {
        double g = *b, wi = w ? w[i] : 1;
        for (int64_t m = 0; m < M; m++) g += phi[m] * Z[i * M + m];
        ss_res += wi * (y[i] - g) * (y[i] - g);
        ss_tot += wi * yc[i] * yc[i];
    }
    *r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : (ss_res > 0 ? 0 : 1);
    goto done;
oom:
    st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
done:
    free(zm);
    free(Zc);
    free(yc);
    free(G);
    free(c);
    free(res);
    return st;
}

/* ---- the sampling loop shared by both methods ----------------------------------------------- */

typedef enum { DRAW_BERNOULLI, DRAW_SHAPLEY_KERNEL } draw_kind;

/* Coalition s of item n into z (M floats): fixed, or drawn. */
static gb_status coalition(pt_run *pt, gb__rng *g, draw_kind kind, const double *size_cdf, int64_t n, int64_t s,
                           int64_t S, int64_t M, int64_t *scratch, float *z) {
    const gb_explain_opts *o = pt->o;
    if (o->fixed_coalitions) {
        const float *fz = o->fixed_coalitions + (n * S + s) * M;
        for (int64_t m = 0; m < M; m++) {
            if (fz[m] != 0 && fz[m] != 1)
                return gb__err(pt->e->ctx, GB_ERR_ARG, "explain: fixed coalition %lld holds %g (0 or 1 expected)",
                               (long long)(n * S + s), fz[m]);
            z[m] = fz[m];
        }
        return GB_OK;
    }
    if (kind == DRAW_BERNOULLI) {
        for (int64_t m = 0; m < M; m++) z[m] = gb__rng_uniform(g) < 0.5 ? 1.0f : 0.0f;
        return GB_OK;
    }
    if (s < 2 || M < 2) {   /* Captum's first two: all ones, all zeros */
        for (int64_t m = 0; m < M; m++) z[m] = s == 1 ? 0.0f : 1.0f;
        return GB_OK;
    }
    double u = gb__rng_uniform(g);
    int64_t k = 1;
    while (k < M - 1 && size_cdf[k] <= u) k++;
    for (int64_t m = 0; m < M; m++) {
        scratch[m] = m;
        z[m] = 0;
    }
    for (int64_t j = 0; j < k; j++) {   /* partial Fisher-Yates: k distinct members */
        int64_t t = j + (int64_t)gb__rng_below(g, (uint64_t)(M - j)), v = scratch[j];
        scratch[j] = scratch[t];
        scratch[t] = v;
        z[scratch[j]] = 1;
    }
    return GB_OK;
}

/* Evaluate S coalitions of every item: Z (S x M per item) and y. For lime
 * also the kernel weights w (the cosine distance needs each feature's
 * sums of x.x, x.x' and x'.x'). Then fit and write attr. */
static gb_status surrogate_method(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r,
                                  bool shap) {
    gb_ctx *ctx = e->ctx;
    pt_run pt;
    pt_features *fs = NULL;
    float *Z = NULL;
    double *y = NULL, *w = NULL, *phi = NULL, *fb = NULL, *xx = NULL, *xb = NULL, *bb = NULL, *cdf = NULL;
    int64_t *scratch = NULL;
    gb_status st = pt_begin(&pt, e, x, o, r);
    if (!st) st = pt_features_all(&pt, &fs);
    if (!st) st = gb__explain_alloc_attr(e, r, NULL);
    if (st) goto done;
    int64_t S = gb__opt_samples(o, 1000), Mmax = 0;
    for (int64_t n = 0; n < pt.N; n++)
        if (fs[n].M > Mmax) Mmax = fs[n].M;
    if (o->fixed_coalitions)
        for (int64_t n = 1; n < pt.N; n++)
            if (fs[n].M != fs[0].M) {
                st = gb__err(ctx, GB_ERR_ARG, "explain: fixed coalitions need the same number of features in every item");
                goto done;
            }
    /* the closed-form solves are O(M^3) (Jacobi eigen-decomposition) and the
     * sample matrix S x M floats: bound both */
    bool solve = shap || o->surrogate != GB_SURROGATE_LASSO;
    if ((solve && Mmax > 1024) || S * Mmax > ((int64_t)1 << 26)) {
        st = gb__err(ctx, GB_ERR_UNSUPPORTED,
                     "explain: %s over %lld features and %lld samples is too large (at most 1024 features%s, and "
                     "samples x features <= 2^26); group the input into fewer features with a mask, a grid or "
                     "superpixels",
                     r->method, (long long)Mmax, (long long)S, solve ? "" : " for ridge, linear and kernel_shap");
        goto done;
    }
    if ((unsigned)o->surrogate >= GB_SURROGATE_COUNT) {
        st = gb__err(ctx, GB_ERR_ARG, "explain: unknown surrogate %d", (int)o->surrogate);
        goto done;
    }
    if (o->alpha < 0 || o->kernel_width < 0) {
        st = gb__err(ctx, GB_ERR_ARG, "explain: alpha and kernel width must not be negative");
        goto done;
    }
    pt.total = pt.N * S + (shap ? pt.N : 0);
    Z = malloc((size_t)(S * Mmax) * sizeof *Z);
    y = malloc((size_t)S * sizeof *y);
    w = malloc((size_t)S * sizeof *w);
    phi = calloc((size_t)Mmax, sizeof *phi);
    fb = calloc((size_t)pt.N, sizeof *fb);
    xx = calloc((size_t)Mmax, sizeof *xx);
    xb = calloc((size_t)Mmax, sizeof *xb);
    bb = calloc((size_t)Mmax, sizeof *bb);
    cdf = calloc((size_t)Mmax + 1, sizeof *cdf);
    scratch = calloc((size_t)Mmax + 1, sizeof *scratch);
    r->fit_r2 = calloc((size_t)pt.N, sizeof *r->fit_r2);
    if (shap) {
        r->delta = calloc((size_t)pt.N, sizeof *r->delta);
        r->baseline_value = calloc((size_t)pt.N, sizeof *r->baseline_value);
    }
    if (!Z || !y || !w || !phi || !fb || !xx || !xb || !bb || !cdf || !scratch || !r->fit_r2 ||
        (shap && (!r->delta || !r->baseline_value))) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory for %lld samples of %lld features", (long long)S,
                     (long long)Mmax);
        goto done;
    }
    if (shap && (st = pt_baseline_values(&pt, fb))) goto done;
    double kw = o->kernel_width > 0 ? o->kernel_width : 1.0;
    gb_surrogate kind = o->surrogate;
    double alpha = o->alpha > 0 ? o->alpha : kind == GB_SURROGATE_RIDGE ? 1.0 : 0.01;
    gb__rng g;
    gb__rng_seed(&g, o->seed);
    for (int64_t n = 0; n < pt.N; n++) {
        const pt_features *f = &fs[n];
        int64_t M = f->M;
        const float *xv = (const float *)x->data + n * pt.D, *bv = pt.base + n * pt.D;
        if (!shap) {
            for (int64_t m = 0; m < M; m++) {
                xx[m] = xb[m] = bb[m] = 0;
                for (int64_t i = f->start[m]; i < f->start[m + 1]; i++) {
                    int64_t el = f->elem[i];
                    xx[m] += (double)xv[el] * xv[el];
                    xb[m] += (double)xv[el] * bv[el];
                    bb[m] += (double)bv[el] * bv[el];
                }
            }
        } else if (M >= 2) {   /* the size distribution (M - 1) / (k (M - k)), k = 1..M-1 */
            double tot = 0;
            for (int64_t k = 1; k < M; k++) tot += (double)(M - 1) / ((double)k * (double)(M - k));
            double run = 0;
            for (int64_t k = 1; k < M; k++) {
                run += (double)(M - 1) / ((double)k * (double)(M - k)) / tot;
                cdf[k] = run;
            }
        }
        for (int64_t s0 = 0; s0 < S; s0 += pt.B) {
            int64_t b = S - s0 < pt.B ? S - s0 : pt.B;
            for (int64_t k = 0; k < b; k++) {
                float *z = Z + (s0 + k) * M;
                if ((st = coalition(&pt, &g, shap ? DRAW_SHAPLEY_KERNEL : DRAW_BERNOULLI, cdf, n, s0 + k, S, M, scratch, z)))
                    goto done;
                pt_row_x(&pt, k, n);
                for (int64_t m = 0; m < M; m++)
                    if (z[m] == 0) pt_feature_base(&pt, f, k, n, m);
                if (!shap) {   /* Captum's kernel: exp(-d^2 / (2 w^2)), d = 1 - cos(x, row) */
                    double dot = 0, nr = 0, nx = 0;
                    for (int64_t m = 0; m < M; m++) {
                        nx += xx[m];
                        dot += z[m] ? xx[m] : xb[m];
                        nr += z[m] ? xx[m] : bb[m];
                    }
                    double den = sqrt(nx * nr), cs = dot / (den > 1e-8 ? den : 1e-8), d = 1 - cs;
                    w[s0 + k] = exp(-d * d / (2 * kw * kw));
                }
            }
            if ((st = pt_pass(&pt, b, false))) goto done;
            memcpy(y + s0, pt.vals, (size_t)b * sizeof *y);
        }
        double intercept = 0, r2 = 0;
        if (!shap) {
            if ((st = fit_linear(ctx, Z, y, w, S, M, kind, alpha, phi, &intercept, &r2))) goto done;
        } else {
            double delta = r->value[n] - fb[n];
            if (M == 1) {
                phi[0] = delta;
            } else {
                /* efficiency substituted: y - f(x') - z_M delta = sum_{m<M} (z_m - z_M) phi_m */
                float *A = malloc((size_t)(S * (M - 1)) * sizeof *A);
                double *t = malloc((size_t)S * sizeof *t);
                double *G = calloc((size_t)((M - 1) * (M - 1)), sizeof *G), *c = calloc((size_t)(M - 1), sizeof *c);
                if (!A || !t || !G || !c) {
                    free(A), free(t), free(G), free(c);
                    st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
                    goto done;
                }
                for (int64_t i = 0; i < S; i++) {
                    const float *z = Z + i * M;
                    t[i] = y[i] - fb[n] - z[M - 1] * delta;
                    for (int64_t m = 0; m < M - 1; m++) A[i * (M - 1) + m] = z[m] - z[M - 1];
                }
                for (int64_t i = 0; i < S; i++) {
                    const float *a = A + i * (M - 1);
                    for (int64_t p = 0; p < M - 1; p++) {
                        if (a[p] == 0) continue;
                        c[p] += a[p] * t[i];
                        for (int64_t q = 0; q < M - 1; q++) G[p * (M - 1) + q] += (double)a[p] * a[q];
                    }
                }
                st = sym_solve(ctx, G, M - 1, 0, c, phi);
                free(A), free(t), free(G), free(c);
                if (st) goto done;
                phi[M - 1] = delta;
                for (int64_t m = 0; m < M - 1; m++) phi[M - 1] -= phi[m];
            }
            /* unweighted R^2 of g(z) = f(x') + z . phi on the samples */
            double ym = 0, ss_res = 0, ss_tot = 0;
            for (int64_t i = 0; i < S; i++) ym += y[i] / (double)S;
            for (int64_t i = 0; i < S; i++) {
                double gz = fb[n];
                for (int64_t m = 0; m < M; m++) gz += Z[i * M + m] * phi[m];
                ss_res += (y[i] - gz) * (y[i] - gz);
                ss_tot += (y[i] - ym) * (y[i] - ym);
            }
            r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : (ss_res > 0 ? 0 : 1);
            double sum = 0;
            for (int64_t m = 0; m < M; m++) sum += phi[m];
            r->baseline_value[n] = fb[n];
            r->delta[n] = sum - delta;
        }
        r->fit_r2[n] = r2;
        pt_attr_features(&pt, n, f, phi);
    }
done:
    free(Z);
    free(y);
    free(w);
    free(phi);
    free(fb);
    free(xx);
    free(xb);
    free(bb);
    free(cdf);
    free(scratch);
    pt_features_all_free(&pt, fs);
    pt_end(&pt);
    return st;
}

gb_status gb__perturb_lime(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return surrogate_method(e, x, o, r, false);
}

gb_status gb__perturb_kernel_shap(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return surrogate_method(e, x, o, r, true);
}
