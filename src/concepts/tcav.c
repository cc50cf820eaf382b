/* tcav.c — Concept Activation Vectors and TCAV (Kim, Wattenberg, Gilmer,
 * Cai, Wexler, Viegas & Sayres, "Interpretability Beyond Feature
 * Attribution: Quantitative Testing with Concept Activation Vectors",
 * ICML 2018).
 *
 *   CAV v_C^l   the unit normal of a linear classifier separating the layer-l
 *               activations f_l(x) of concept examples (label 1) from those of
 *               counterexamples (label 0), pointing to the concept (Sec. 3.2);
 *   S_C,k,l(x)  = grad h_l,k(f_l(x)) . v_C^l, the directional derivative of
 *               class k's logit along the CAV (eq. 1). The TCAV reference
 *               implementation differentiates the class's cross-entropy LOSS
 *               and counts negative products; we differentiate the logit, as
 *               the paper's equation does;
 *   TCAV_Q      = |{x in X_k : S_C,k,l(x) > 0}| / |X_k| (eq. 2);
 *   testing     one CAV per random counterexample set, and as the null, CAVs
 *               of a random set against another random set; a two-sided
 *               two-sample t-test (equal variances, as scipy.stats.ttest_ind in
 *               the reference code) of the concept's TCAV scores against the
 *               null's (Sec. 3.3). Testing many concepts and classes calls for
 *               a multiple-testing correction (the paper uses Bonferroni:
 *               alpha / number of tests); the caller chooses alpha.
 * Relative CAVs (Sec. 3.3): pass another concept's examples as the
 * "random" sets. */
#include "concepts/concepts_internal.h"
#include "engine/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gb_status gb_layer_activations(gb_session *s, const gb_tensor *x, const char *layer, gb_tensor **out) {
    *out = NULL;
    gb_ctx *ctx = s->ctx;
    gb_session_keep_activations(s, 1);
    const gb_tensor *in[1] = {x};
    gb_status st = gb_session_run(s, in, 1);
    if (st) return st;
    const gb_tensor *t = gb_session_tensor(s, layer);
    if (!t) return gb__err(ctx, GB_ERR_NOT_FOUND, "the model has no tensor '%s' (glassbox info lists them)", layer);
    if (t->dtype != GB_DTYPE_F32 || t->ndim < 1 || t->dims[0] != x->dims[0])
        return gb__err(ctx, GB_ERR_SHAPE, "tensor '%s' is not a float32 (N, ...) activation", layer);
    int64_t dims[2] = {t->dims[0], t->numel / t->dims[0]};
    gb_tensor *a;
    if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, 2, dims, &a))) return st;
    memcpy(a->data, t->data, sizeof(float) * (size_t)t->numel);
    *out = a;
    return GB_OK;
}

gb_status gb_cav_train(gb_ctx *ctx, const gb_tensor *pos, const gb_tensor *neg, const gb_tcav_opts *o, float *cav,
                       double *accuracy) {
    double tf = o && o->test_fraction > 0 ? o->test_fraction : 0.33;
    if (pos->ndim != 2 || neg->ndim != 2 || pos->dims[1] != neg->dims[1])
        return gb__err(ctx, GB_ERR_SHAPE, "cav: concept and counterexample activations differ in size");
    int64_t np = pos->dims[0], nn = neg->dims[0], n = np + nn, d = pos->dims[1];
    if (np < 2 || nn < 2) return gb__err(ctx, GB_ERR_ARG, "cav: needs at least 2 examples on each side");
    /* A seeded shuffle, then the first test_fraction of each side is held out. */
    int64_t *perm = malloc(sizeof *perm * (size_t)n);
    float *X = malloc(sizeof *X * (size_t)n * (size_t)d), *w = malloc(sizeof *w * (size_t)d);
    int *y = malloc(sizeof *y * (size_t)n);
    if (!perm || !X || !w || !y) {
        free(perm), free(X), free(w), free(y);
        return gb__err(ctx, GB_ERR_NOMEM, "cav: out of memory");
    }
    gb__crng g = {(o ? o->linear.seed : 0) + 0x7C4Au};
    int64_t ntr = 0, nte = 0;
    int64_t tp = (int64_t)(tf * (double)np + 0.5), tn = (int64_t)(tf * (double)nn + 0.5);
    if (tp >= np) tp = np - 1;
    if (tn >= nn) tn = nn - 1;
    for (int side = 0; side < 2; side++) {
        int64_t m = side ? nn : np, hold = side ? tn : tp;
        for (int64_t i = 0; i < m; i++) perm[i] = i;
        for (int64_t i = m - 1; i > 0; i--) {
            int64_t j = (int64_t)(gb__crng_unif(&g) * (double)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        const float *src = (const float *)(side ? neg : pos)->data;
        for (int64_t i = 0; i < m; i++) {
            /* train rows fill from the front, test rows from the back */
            int64_t row = i < hold ? n - 1 - nte++ : ntr++;
            memcpy(X + row * d, src + perm[i] * d, sizeof *X * (size_t)d);
            y[row] = !side;
        }
    }
    float b;
    gb_status st = gb_linear_fit(ctx, X, y, ntr, d, o ? &o->linear : NULL, w, &b);
    if (!st) {
        if (accuracy) *accuracy = gb_linear_accuracy(X + ntr * d, y + ntr, nte, d, 1, w, &b);
        double norm = 0;
        for (int64_t j = 0; j < d; j++) norm += (double)w[j] * w[j];
        norm = sqrt(norm);
        for (int64_t j = 0; j < d; j++) cav[j] = norm > 0 ? (float)(w[j] / norm) : 0.0f;
    }
    free(perm), free(X), free(w), free(y);
    return st;
}

/* Gradients of logit `target` w.r.t. `layer` for every item: (N, D). */
static gb_status class_grads(gb_ctx *ctx, gb_session *s, const gb_tensor *x, const char *layer, int64_t target,
                             gb_tensor **out) {
    *out = NULL;
    gb_session_keep_activations(s, 1);
    const gb_tensor *in[1] = {x};
    gb_status st = gb_session_run(s, in, 1);
    if (st) return st;
    const gb_tensor *y = gb_session_output(s, 0);
    if (y->ndim != 2 || target < 0 || target >= y->dims[1])
        return gb__err(ctx, GB_ERR_ARG, "tcav: target %lld is not a class of the (N, K) output", (long long)target);
    const gb_tensor *a = gb_session_tensor(s, layer);
    if (!a) return gb__err(ctx, GB_ERR_NOT_FOUND, "tcav: the model has no tensor '%s'", layer);
    int64_t N = x->dims[0];
    int64_t *cls = malloc(sizeof *cls * (size_t)N);
    if (!cls) return gb__err(ctx, GB_ERR_NOMEM, "tcav: out of memory");
    for (int64_t i = 0; i < N; i++) cls[i] = target;
    gb_seed seed = {.classes = cls};
    st = gb_session_backward(s, &seed, NULL, 0);
    free(cls);
    if (st) return st;
    const gb_tensor *g = gb_session_grad(s, layer);
    int64_t dims[2] = {N, a->numel / N};
    if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, 2, dims, out))) return st;
    if (g) memcpy((*out)->data, g->data, sizeof(float) * (size_t)a->numel);   /* no path: zero */
    return GB_OK;
}

static double score_of(const gb_tensor *grads, const float *cav, double *sens) {
    int64_t N = grads->dims[0], D = grads->dims[1], pos = 0;
    for (int64_t i = 0; i < N; i++) {
        double s = 0;
        const float *g = (const float *)grads->data + i * D;
        for (int64_t j = 0; j < D; j++) s += (double)g[j] * cav[j];
        if (sens) sens[i] = s;
        pos += s > 0;
    }
    return N ? (double)pos / (double)N : 0;
}

gb_status gb_tcav_score(gb_session *s, const gb_tensor *x, const char *layer, int64_t target, const float *cav,
                        double *sens, double *score) {
    gb_tensor *g;
    gb_status st = class_grads(s->ctx, s, x, layer, target, &g);
    if (st) return st;
    *score = score_of(g, cav, sens);
    gb_tensor_free(g);
    return GB_OK;
}

/* ---- Student's t ----------------------------------------------------------------- */

/* Continued fraction of the incomplete beta function (Numerical Recipes,
 * betacf, modified Lentz). */
static double betacf(double a, double b, double x) {
    const double tiny = 1e-300;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 300; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15) break;
    }
    return h;
}

/* Regularized incomplete beta I_x(a, b). */
static double betai(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double bt = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x));
    if (x < (a + 1) / (a + b + 2)) return bt * betacf(a, b, x) / a;
    return 1 - bt * betacf(b, a, 1 - x) / b;
}

double gb_student_t_p(double t, double df) {
    if (t != t || df <= 0) return NAN;
    if (isinf(t)) return 0;
    return betai(df / 2, 0.5, df / (df + t * t));
}

static void mean_std(const double *v, int n, double *mean, double *std) {
    double m = 0, s = 0;
    for (int i = 0; i < n; i++) m += v[i];
    m /= n;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(s / (n - 1)) : 0;   /* sample std (ddof = 1) */
}

void gb_tcav_result_clear(gb_tcav_result *r) {
    free(r->scores);
    free(r->accuracies);
    free(r->random_scores);
    memset(r, 0, sizeof *r);
}

gb_status gb_tcav(gb_ctx *ctx, gb_model *m, const char *layer, int64_t target, const gb_tensor *concept,
                  const gb_tensor *const *random, int n_random, const gb_tensor *class_x, const gb_tcav_opts *o,
                  gb_tcav_result *out) {
    memset(out, 0, sizeof *out);
    double alpha = o && o->alpha > 0 ? o->alpha : 0.05;
    if (n_random < 2) return gb__err(ctx, GB_ERR_ARG, "tcav: needs at least 2 random sets (got %d)", n_random);
    gb_session *s = NULL;
    gb_tensor *ca = NULL, *grads = NULL, **ra = calloc((size_t)n_random, sizeof *ra);
    float *cav = NULL;
    gb_status st;
    if (!ra) return gb__err(ctx, GB_ERR_NOMEM, "tcav: out of memory");
    if ((st = gb_session_create(m, &s))) goto done;
    if ((st = gb_layer_activations(s, concept, layer, &ca))) goto done;
    for (int i = 0; i < n_random; i++)
        if ((st = gb_layer_activations(s, random[i], layer, &ra[i]))) goto done;
    if ((st = class_grads(ctx, s, class_x, layer, target, &grads))) goto done;
    int64_t D = ca->dims[1];
    out->dim = D;
    out->n_runs = n_random;
    out->scores = calloc((size_t)n_random, sizeof *out->scores);
    out->accuracies = calloc((size_t)n_random, sizeof *out->accuracies);
    out->random_scores = calloc((size_t)n_random, sizeof *out->random_scores);
    cav = malloc(sizeof *cav * (size_t)D);
    if (!out->scores || !out->accuracies || !out->random_scores || !cav) {
        st = gb__err(ctx, GB_ERR_NOMEM, "tcav: out of memory");
        goto done;
    }
    for (int i = 0; i < n_random; i++) {
        gb_tcav_opts oi = o ? *o : (gb_tcav_opts){0};
        oi.linear.seed += (uint64_t)i;
        if ((st = gb_cav_train(ctx, ca, ra[i], &oi, cav, &out->accuracies[i]))) goto done;
        out->scores[i] = score_of(grads, cav, NULL);
        double acc_unused;
        if ((st = gb_cav_train(ctx, ra[i], ra[(i + 1) % n_random], &oi, cav, &acc_unused))) goto done;
        out->random_scores[i] = score_of(grads, cav, NULL);
    }
    mean_std(out->scores, n_random, &out->mean, &out->std);
    mean_std(out->random_scores, n_random, &out->random_mean, &out->random_std);
    /* pooled-variance two-sample t statistic, df = 2n - 2 */
    double sp2 = ((n_random - 1) * out->std * out->std + (n_random - 1) * out->random_std * out->random_std) /
                 (2.0 * n_random - 2);
    double se = sqrt(sp2 * 2.0 / n_random);
    if (se > 0) {
        out->t = (out->mean - out->random_mean) / se;
        out->p_value = gb_student_t_p(out->t, 2.0 * n_random - 2);
    } else {   /* both sets constant: equal means are not significant, unequal are */
        out->t = out->mean == out->random_mean ? 0 : copysign(INFINITY, out->mean - out->random_mean);
        out->p_value = out->mean == out->random_mean ? 1 : 0;
    }
    out->significant = out->p_value < alpha;
done:
    if (st) gb_tcav_result_clear(out);
    free(cav);
    gb_tensor_free(ca);
    gb_tensor_free(grads);
    for (int i = 0; i < n_random; i++) gb_tensor_free(ra[i]);
    free(ra);
    gb_session_free(s);
    return st;
}
