/*
 * bench_incremental.c — occlusion with and without incremental inference.
 *
 *     bench_incremental MODEL.onnx --input x.npy [--target K] [--window 16] [--stride 8]
 *                       [--batch B] [--threads 2] [--warmup 1] [--runs 3] [--modes auto,full]
 *                       [--check 1]
 *
 * Times gb_explain(e, "occlusion", x) (window x window over all channels,
 * stride, zero baseline: Captum's Occlusion with sliding_window_shapes
 * (C, w, w), strides (C, s, s), baselines 0) on one explainer, in each mode:
 *   auto  incremental inference where the FLOP cost model says it pays
 *         (the default of the library);
 *   full  full forward passes (gb__explain_set_incremental(e, -1)).
 * For each mode it prints the median time and the FLOPs: what full passes of
 * the perturbed rows cost, and what was computed (from the engine's per-node
 * counts, multiply-add = 2), and the achieved rate against the GEMM peak.
 * --check 1 also compares the attributions of the two modes (max abs
 * difference relative to the max abs attribution).
 *
 * The last lines are machine-readable:
 *   RESULT incremental model=NAME mode=M rows=N median_ms=... min_ms=...
 *          flops_full=... flops_done=... rows_incr=... rows_full=...
 *   CHECK max_rel_diff=...
 * bench/bench_incremental.py runs it against Captum (bench/README_incremental.md).
 */
#include <glassbox/explain.h>
#include <glassbox/glassbox.h>

#include "methods/methods.h"

#include <math.h>
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
    fprintf(stderr, "usage: bench_incremental MODEL.onnx --input x.npy [--target K] [--window 16] [--stride 8]\n"
                    "                         [--batch B] [--threads 2] [--warmup 1] [--runs 3] [--modes auto,full]\n"
                    "                         [--check 1]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *model = NULL, *input = NULL, *target = NULL, *modes = "auto,full";
    int window = 16, stride = 8, batch = 0, threads = 2, warmup = 1, runs = 3, check = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            model = a;
            continue;
        }
        if (!v) return usage();
        if (!strcmp(a, "--input")) input = v;
        else if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--window")) window = atoi(v);
        else if (!strcmp(a, "--stride")) stride = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--runs")) runs = atoi(v);
        else if (!strcmp(a, "--modes")) modes = v;
        else if (!strcmp(a, "--check")) check = atoi(v);
        else return usage();
        i++;
    }
    if (!model || !input || runs < 1 || warmup < 0 || threads < 1 || window < 1 || stride < 1) return usage();

    gb_ctx *ctx;
    gb_model *m = NULL;
    gb_explainer *e = NULL;
    gb_tensor *x = NULL, *attr[2] = {NULL, NULL};
    if (gb_ctx_create(&ctx)) return 1;
    int rc = 1;
    gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;
    o.batch = batch;
    o.window[0] = o.window[1] = window;
    o.stride[0] = o.stride[1] = stride;
    if (gb_ctx_set_threads(ctx, threads) || gb_model_load(ctx, model, &m) || gb_explainer_create(ctx, m, &e) ||
        gb_npy_read(ctx, input, &x) || (target && gb_target_parse(ctx, target, GB_TARGET_OUTPUT, &o.target))) {
        fprintf(stderr, "bench_incremental: %s\n", gb_ctx_errmsg(ctx));
        goto out;
    }
    const char *base = strrchr(model, '/');
    double *t = malloc(sizeof *t * (size_t)runs);
    if (!t) goto out;
    int nmode = 0;
    double ff_auto = 0;
    for (const char *p = modes; *p;) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        int mode = !strncmp(p, "full", len) ? -1 : !strncmp(p, "always", len) ? 1 : 0;
        gb__explain_set_incremental(e, mode);
        int64_t rows = 0;
        double ff = 0, fd = 0;
        int64_t ri = 0, rf = 0;
        for (int r = 0; r < warmup + runs; r++) {
            gb_explanation *ex = NULL;
            gb__explain_incremental_stats(e, true, NULL, NULL, NULL, NULL);
            double t0 = now_ms();
            gb_status st = gb_explain(e, "occlusion", x, &o, &ex);
            double dt = now_ms() - t0;
            if (st) {
                fprintf(stderr, "bench_incremental: %s\n", gb_ctx_errmsg(ctx));
                free(t);
                goto out;
            }
            gb__explain_incremental_stats(e, false, &ff, &fd, &ri, &rf);
            if (mode < 0) ff = fd = ff_auto; /* full passes of the same rows (measured in auto mode) */
            else ff_auto = ff;
            rows = ex->rows;
            if (r >= warmup) t[r - warmup] = dt;
            printf("%.*s %s %d: %.1f ms (%lld rows)\n", (int)len, p, r < warmup ? "warmup" : "run",
                   r < warmup ? r : r - warmup, dt, (long long)ex->rows);
            if (r == warmup + runs - 1 && nmode < 2) {
                gb_tensor_free(attr[nmode]);
                attr[nmode] = ex->attr;
                ex->attr = NULL;
            }
            gb_explanation_free(ex);
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
        printf("RESULT incremental model=%s mode=%.*s window=%d stride=%d threads=%d runs=%d rows=%lld "
               "median_ms=%.3f min_ms=%.3f flops_full=%.6g flops_done=%.6g rows_incr=%lld rows_full=%lld\n",
               base ? base + 1 : model, (int)len, p, window, stride, threads, runs, (long long)rows, med, t[0], ff,
               fd, (long long)ri, (long long)rf);
        nmode++;
        p += len;
        if (*p == ',') p++;
    }
    free(t);
    if (check && attr[0] && attr[1]) {
        const float *a = attr[0]->data, *b = attr[1]->data;
        double md = 0, mx = 0;
        for (int64_t i = 0; i < attr[0]->numel; i++) {
            md = fmax(md, fabs((double)a[i] - b[i]));
            mx = fmax(mx, fabs((double)b[i]));
        }
        printf("CHECK max_abs_diff=%.3g max_abs_attr=%.3g max_rel_diff=%.3g\n", md, mx, md / (mx > 0 ? mx : 1));
    }
    rc = 0;
out:
    gb_tensor_free(attr[0]);
    gb_tensor_free(attr[1]);
    gb_tensor_free(x);
    gb_explainer_free(e);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
}
