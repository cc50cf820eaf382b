/*
 * bench_maximize.c — time glassbox's activation maximization on one model.
 *
 *     bench_maximize MODEL.onnx [--target K] [--steps 256] [--size 224] [--threads 2]
 *                    [--warmup-steps 4] [--runs 1] [--seed 0]
 *
 * The lucent-style loop (Olah et al. 2017): a decorrelated Fourier image
 * (sigmoid, ImageNet normalization) at size x size, one random affine
 * transformation per step (jitter 16 px, scale +-5%, rotation +-5 degrees),
 * the objective logit K of output 0, Adam lr 0.05; gb_maximize with
 * GB_VIS_PARAM_FOURIER. `warmup-steps` untimed steps first (plans, caches),
 * then `runs` timed calls of `steps` steps (CLOCK_MONOTONIC), best and median.
 * The last line is machine-readable:
 *
 *     RESULT maximize model=NAME steps=N threads=T median_ms=... min_ms=...
 *            fwd_gflop=... objective=...
 *
 * bench/bench_maximize.py runs it against the same loop in PyTorch
 * (bench/README_visualize.md).
 */
#include <glassbox/glassbox.h>
#include <glassbox/image.h>
#include <glassbox/visualize.h>

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

int main(int argc, char **argv) {
    const char *model = NULL;
    int target = 1, steps = 256, size = 224, threads = 2, warmup = 4, runs = 1;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            model = a;
            continue;
        }
        if (!v) goto usage;
        if (!strcmp(a, "--target")) target = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--size")) size = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--warmup-steps")) warmup = atoi(v);
        else if (!strcmp(a, "--runs")) runs = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else goto usage;
        i++;
    }
    if (!model || steps < 1 || runs < 1 || threads < 1 || size < 8) goto usage;

    gb_ctx *ctx;
    if (gb_ctx_create(&ctx)) return 1;
    gb_ctx_set_threads(ctx, threads);
    gb_model *m = NULL;
    gb_session *s = NULL;
    int rc = 1;
    if (gb_model_load(ctx, model, &m) || gb_session_create(m, &s)) goto fail;
    gb_preproc pp;
    gb_preproc_default(&pp);
    pp.height = pp.width = size;
    static const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    for (int c = 0; c < 3; c++) pp.mean[c] = mean[c], pp.std[c] = std[c];
    gb_vis_objective ob = {.kind = GB_VIS_OBJ_CLASS, .index = target};
    gb_maximize_opts o = GB_MAXIMIZE_OPTS_INIT;
    o.seed = seed, o.jitter = 16, o.scale_jitter = 0.05, o.rotate_deg = 5;
    gb_tensor *x = NULL;
    double fin = 0;
    o.steps = warmup;
    if (warmup > 0) {
        if (gb_maximize(s, &pp, &ob, 1, &o, &x, &fin)) goto fail;
        gb_tensor_free(x);
        x = NULL;
    }
    double *t = calloc((size_t)runs, sizeof *t);
    o.steps = steps;
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        if (gb_maximize(s, &pp, &ob, 1, &o, &x, &fin)) {
            free(t);
            goto fail;
        }
        t[r] = now_ms() - t0;
        gb_tensor_free(x);
        x = NULL;
    }
    double flops = 0;
    for (int i = 0; i < gb_model_num_nodes(m); i++) {
        gb_node_plan np;
        if (!gb_session_node_plan(s, i, &np)) flops += np.flops;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    const char *name = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    printf("RESULT maximize model=%s steps=%d threads=%d median_ms=%.1f min_ms=%.1f fwd_gflop=%.3f objective=%.4g\n",
           name, steps, threads, t[runs / 2], t[0], flops / 1e9, fin);
    free(t);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "bench_maximize: %s\n", gb_ctx_errmsg(ctx));
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
usage:
    fprintf(stderr, "usage: bench_maximize MODEL.onnx [--target K] [--steps N] [--size S] [--threads T]\n"
                    "                      [--warmup-steps W] [--runs R] [--seed S]\n");
    return 2;
}
