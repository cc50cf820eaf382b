/*
 * bench_perturb.c — time one perturbation method of glassbox on one model.
 *
 *     bench_perturb MODEL.onnx --input x.npy --method NAME [--target K]
 *                   [--window W] [--stride S] [--mask labels.npy] [--segments N]
 *                   [--samples N] [--batch B] [--threads 2] [--warmup 1] [--runs 3]
 *                   [--incremental auto|full] [--out attr.npy]
 *
 * Loads the model and the input (a float32 .npy, 1x3x224x224), creates one
 * explainer, runs `warmup` untimed calls of gb_explain and times `runs`
 * calls (everything gb_explain does: the target's forward pass, the method's
 * passes, the surrogate fit). --incremental full turns incremental inference
 * off (every row a full forward pass); auto (default) is the library's
 * choice. It reads the explainer's incremental-inference counters
 * (src/methods/methods.h), hence the private include directory: FLOPs of
 * full passes of the perturbed rows, FLOPs actually computed.
 *
 * The last line is machine-readable:
 *
 *     RESULT perturb model=NAME method=M mode=auto rows=N threads=T runs=R
 *            median_ms=... min_ms=... flops_full=... flops_done=... rows_incr=... rows_full=...
 *
 * bench/bench_perturb.py runs it against Captum (bench/README_perturb.md).
 */
#include "methods/methods.h"

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
    fprintf(stderr, "usage: bench_perturb MODEL.onnx --input x.npy --method NAME [--target K] [--window W]\n"
                    "                     [--stride S] [--mask labels.npy] [--segments N] [--samples N] [--batch B]\n"
                    "                     [--threads T] [--warmup W] [--runs R] [--incremental auto|full]\n"
                    "                     [--out attr.npy]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *model = NULL, *input = NULL, *method = NULL, *target = NULL, *mask = NULL, *mode = "auto",
               *out = NULL;
    int window = 0, stride = 0, segments = 0, samples = 0, batch = 0, threads = 2, warmup = 1, runs = 3;
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
        else if (!strcmp(a, "--mask")) mask = v;
        else if (!strcmp(a, "--incremental")) mode = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--window")) window = atoi(v);
        else if (!strcmp(a, "--stride")) stride = atoi(v);
        else if (!strcmp(a, "--segments")) segments = atoi(v);
        else if (!strcmp(a, "--samples")) samples = atoi(v);
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
    gb_tensor *x = NULL, *mk = NULL;
    if (gb_ctx_create(&ctx)) return 1;
    int rc = 1;
    double *t = malloc(sizeof *t * (size_t)runs);
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.batch = batch;
    o.window[0] = o.window[1] = window;
    o.stride[0] = o.stride[1] = stride;
    o.segments = segments;
    o.n_samples = samples;
    if (!t || gb_ctx_set_threads(ctx, threads) || gb_model_load(ctx, model, &m) || gb_explainer_create(ctx, m, &e) ||
        gb_npy_read(ctx, input, &x) || (mask && gb_npy_read(ctx, mask, &mk)) ||
        (target && gb_target_parse(ctx, target, GB_TARGET_OUTPUT, &o.target))) {
        fprintf(stderr, "bench_perturb: %s\n", gb_ctx_errmsg(ctx));
        goto done;
    }
    o.feature_mask = mk;
    gb__explain_set_incremental(e, !strcmp(mode, "full") ? -1 : 0);
    int64_t rows = 0, ri = 0, rf = 0;
    double ff = 0, fd = 0;
    for (int r = 0; r < warmup + runs; r++) {
        gb_explanation *ex = NULL;
        gb__explain_incremental_stats(e, true, NULL, NULL, NULL, NULL);
        double t0 = now_ms();
        if (gb_explain(e, method, x, &o, &ex)) {
            fprintf(stderr, "bench_perturb: %s\n", gb_ctx_errmsg(ctx));
            goto done;
        }
        double dt = now_ms() - t0;
        gb__explain_incremental_stats(e, false, &ff, &fd, &ri, &rf);
        rows = ex->rows;
        if (r >= warmup) t[r - warmup] = dt;
        printf("%s %s %d: %.1f ms (%lld rows)", method, r < warmup ? "warmup" : "run", r < warmup ? r : r - warmup, dt,
               (long long)ex->rows);
        if (ex->fit_r2) printf(", surrogate R^2 %.4f", ex->fit_r2[0]);
        printf("\n");
        if (out && r == warmup + runs - 1 && gb_npy_write(ctx, out, ex->attr)) {
            fprintf(stderr, "bench_perturb: %s\n", gb_ctx_errmsg(ctx));
            gb_explanation_free(ex);
            goto done;
        }
        gb_explanation_free(ex);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    const char *base = strrchr(model, '/');
    printf("RESULT perturb model=%s method=%s mode=%s rows=%lld threads=%d runs=%d median_ms=%.3f min_ms=%.3f "
           "flops_full=%.6g flops_done=%.6g rows_incr=%lld rows_full=%lld\n",
           base ? base + 1 : model, method, mode, (long long)rows, threads, runs, med, t[0], ff, fd, (long long)ri,
           (long long)rf);
    rc = 0;
done:
    free(t);
    gb_tensor_free(mk);
    gb_tensor_free(x);
    gb_explainer_free(e);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
}
