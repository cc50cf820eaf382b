/*
 * bench_explain.c — time one attribution method of glassbox on one model.
 *
 *     bench_explain MODEL.onnx --input x.npy --method NAME [--target K]
 *                   [--steps 50] [--integration gausslegendre] [--batch B]
 *                   [--threads 2] [--warmup 1] [--runs 3]
 *
 * Loads the model and the input (a float32 .npy, e.g. 1x3x224x224), creates
 * one explainer (its plans are cached per input shape, as an application
 * reusing it would), runs `warmup` untimed calls of gb_explain and then times
 * `runs` calls with CLOCK_MONOTONIC. A call is everything gb_explain does:
 * the forward pass that resolves the target, then the method (for
 * integrated_gradients also the baseline's forward pass for the completeness
 * delta). --batch is gb_explain_opts.batch, the rows per forward/backward
 * pass (Captum's internal_batch_size); 0 = glassbox's default.
 *
 * The last line is machine-readable:
 *
 *     RESULT explain model=NAME method=M batch=B threads=T runs=R rows=N
 *            median_ms=... min_ms=...
 *
 * bench/bench_explain.py runs it against Captum (bench/README_explain.md).
 */
#include <glassbox/explain.h>
#include <glassbox/glassbox.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int usage(void) {
    fprintf(stderr, "usage: bench_explain MODEL.onnx --input x.npy --method NAME [--target K] [--steps N]\n"
                    "                     [--integration NAME] [--batch B] [--threads T] [--warmup W] [--runs R]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *model = NULL, *input = NULL, *method = NULL, *target = NULL, *integration = NULL;
    int steps = 0, batch = 0, threads = 2, warmup = 1, runs = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            model = a;
            continue;
        }
        if (!v) return usage();
        if (!strcmp(a, "--input")) input = v;
        else if (!strcmp(a, "--method")) method = v;
        else if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--integration")) integration = v;
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--runs")) runs = atoi(v);
        else return usage();
        i++;
    }
    if (!model || !input || !method || runs < 1 || warmup < 0 || threads < 1) return usage();

    gb_ctx *ctx;
    gb_model *m = NULL;
    gb_explainer *e = NULL;
    gb_tensor *x = NULL;
    if (gb_ctx_create(&ctx)) return 1;
    int rc = 1;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.n_steps = steps;
    o.batch = batch;
    if (gb_ctx_set_threads(ctx, threads) || gb_model_load(ctx, model, &m) || gb_explainer_create(ctx, m, &e) ||
        gb_npy_read(ctx, input, &x) || (target && gb_target_parse(ctx, target, GB_TARGET_OUTPUT, &o.target))) {
        fprintf(stderr, "bench_explain: %s\n", gb_ctx_errmsg(ctx));
        goto out;
    }
    if (integration && (o.integration = gb_integration_parse(integration)) == GB_INTEGRATION_COUNT) {
        fprintf(stderr, "bench_explain: unknown integration '%s'\n", integration);
        goto out;
    }
    double *t = malloc(sizeof *t * (size_t)runs);
    if (!t) goto out;
    int64_t rows = 0;
    for (int r = 0; r < warmup + runs; r++) {
        gb_explanation *ex = NULL;
        double t0 = now_ms();
        gb_status st = gb_explain(e, method, x, &o, &ex);
        double dt = now_ms() - t0;
        if (st) {
            fprintf(stderr, "bench_explain: %s\n", gb_ctx_errmsg(ctx));
            free(t);
            goto out;
        }
        rows = ex->rows;
        if (r >= warmup) t[r - warmup] = dt;
        printf("%s %d: %.1f ms (%lld rows)\n", r < warmup ? "warmup" : "run", r < warmup ? r : r - warmup, dt,
               (long long)ex->rows);
        gb_explanation_free(ex);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    const char *base = strrchr(model, '/');
    printf("RESULT explain model=%s method=%s batch=%d threads=%d runs=%d rows=%lld median_ms=%.3f min_ms=%.3f\n",
           base ? base + 1 : model, method, batch, threads, runs, (long long)rows, med, t[0]);
    free(t);
    rc = 0;
out:
    gb_tensor_free(x);
    gb_explainer_free(e);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
}
