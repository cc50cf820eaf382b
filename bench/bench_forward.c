/*
 * bench_forward.c — time glassbox's forward pass on one ONNX model.
 *
 *     bench_forward MODEL.onnx [--shape 1x3x224x224] [--warmup 3] [--runs 10]
 *                   [--threads 2] [--seed 1] [--profile]
 *
 * Loads the model, fills its (single) float32 input with seeded N(0, 1)
 * values of the given shape (default: the shape the model declares, which
 * must then be fully known), plans once, runs `warmup` untimed forwards and
 * then times `runs` forwards of gb_session_run with CLOCK_MONOTONIC.
 *
 * Reported: median and minimum wall time per forward, the model's FLOPs (the
 * sum of gb_session_node_plan().flops over the nodes that run, i.e. not
 * folded at plan time; a multiply-add counts 2) and the achieved GFLOP/s
 * (FLOPs / median time). The last line is machine-readable:
 *
 *     RESULT forward model=NAME shape=1x3x224x224 threads=2 runs=10
 *            median_ms=... min_ms=... gflop=... gflops=...
 *
 * --profile additionally times every node separately (see profile_nodes.c;
 * that file reaches into the engine's private session struct) and prints
 * the nodes and op types that take the most time.
 */
#include <glassbox/glassbox.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profile_nodes.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* splitmix64: a tiny, seedable generator (no global state). */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, never exactly 0 (log below). */
static double uniform01(uint64_t *s) { return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0; }

/* N(0, 1) by Box-Muller, like the inputs the PyTorch side gets (torch.randn). */
static void fill_normal(float *x, int64_t n, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform01(&s))), th = 6.283185307179586 * uniform01(&s);
        x[i] = (float)(r * cos(th));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(th));
    }
}

/* "1x3x224x224" -> dims; returns ndim or -1. */
static int parse_shape(const char *str, int64_t *dims) {
    int nd = 0;
    const char *p = str;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || nd == GB_MAX_DIMS) return -1;
        dims[nd++] = v;
        p = end;
        if (*p == 'x' || *p == 'X' || *p == ',') p++;
        else if (*p) return -1;
    }
    return nd;
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_forward MODEL.onnx [--shape 1x3x224x224] [--warmup 3] [--runs 10]\n"
               "                     [--threads 2] [--seed 1] [--profile] [--backward]\n"
               "--backward times forward + backward to the input (top-1 logit of each item).\n");
}

static int parse_int(const char *flag, const char *v, int lo, int *out) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > 1000000) {
        fprintf(stderr, "bench_forward: %s needs an integer >= %d\n", flag, lo);
        return 1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *shape_str = NULL;
    int warmup = 3, runs = 10, threads = 2, seed = 1, profile = 0, backward = 0;
    int64_t *classes = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--shape")) {
            if (!(shape_str = v)) bad = 1;
            i++;
        } else if (!strcmp(a, "--warmup")) {
            bad = parse_int(a, v, 0, &warmup);
            i++;
        } else if (!strcmp(a, "--runs")) {
            bad = parse_int(a, v, 1, &runs);
            i++;
        } else if (!strcmp(a, "--threads")) {
            bad = parse_int(a, v, 1, &threads);
            i++;
        } else if (!strcmp(a, "--seed")) {
            bad = parse_int(a, v, 0, &seed);
            i++;
        } else if (!strcmp(a, "--profile")) {
            profile = 1;
        } else if (!strcmp(a, "--backward")) {
            /* time forward + backward to the input (the top-1 logit of each
             * item), what every gradient explanation costs */
            backward = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (a[0] != '-' && !model_path) {
            model_path = a;
        } else {
            bad = 1;
        }
        if (bad) {
            usage(stderr);
            return 2;
        }
    }
    if (!model_path) {
        usage(stderr);
        return 2;
    }

    int rc = 1;
    gb_ctx *ctx = NULL;
    gb_model *m = NULL;
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    double *ms = NULL;
    if (gb_ctx_create(&ctx)) {
        fprintf(stderr, "bench_forward: out of memory\n");
        return 1;
    }
    if (gb_ctx_set_threads(ctx, threads)) goto fail;

    double t0 = now_ms();
    if (gb_model_load(ctx, model_path, &m)) goto fail;
    double t_load = now_ms() - t0;
    if (gb_model_num_inputs(m) != 1) {
        fprintf(stderr, "bench_forward: %s has %d inputs; only single-input models are supported\n", model_path,
                gb_model_num_inputs(m));
        goto done;
    }
    gb_value_info in;
    if (gb_model_input(m, 0, &in)) goto fail;
    if (in.dtype != GB_DTYPE_F32) {
        fprintf(stderr, "bench_forward: input '%s' is %s; only float32 inputs are supported\n", in.name,
                gb_dtype_name(in.dtype));
        goto done;
    }
    int64_t dims[GB_MAX_DIMS];
    int ndim;
    if (shape_str) {
        if ((ndim = parse_shape(shape_str, dims)) < 0) {
            fprintf(stderr, "bench_forward: bad --shape '%s' (expected e.g. 1x3x224x224)\n", shape_str);
            goto done;
        }
    } else {
        ndim = in.ndim;
        for (int d = 0; d < ndim; d++) {
            if ((dims[d] = in.dims[d]) < 1) {
                fprintf(stderr, "bench_forward: input '%s' has a symbolic dimension %d; give --shape\n", in.name,
                        d);
                goto done;
            }
        }
    }
    if (gb_tensor_create(ctx, GB_DTYPE_F32, ndim, dims, &x)) goto fail;
    fill_normal(x->data, x->numel, (uint64_t)seed);

    const gb_tensor *inputs[1] = {x};
    if (gb_session_create(m, &s)) goto fail;
    t0 = now_ms();
    if (backward) gb_session_keep_activations(s, 1);
    if (gb_session_plan(s, inputs, 1)) goto fail;
    double t_plan = now_ms() - t0;

    double flops = 0;
    int n_run = 0, n_nodes = gb_model_num_nodes(m);
    for (int i = 0; i < n_nodes; i++) {
        gb_node_plan p;
        if (gb_session_node_plan(s, i, &p)) goto fail;
        if (p.folded) continue;
        flops += p.flops;
        n_run++;
    }
    /* The input gradient of a Conv/Gemm costs what its forward costs (one
     * product with the transposed weights); elementwise backward is cheap.
     * So forward + backward to the input counts twice the forward FLOPs
     * (weight gradients, which explanations do not need, are not computed). */
    if (backward) flops *= 2;
    size_t reserved, total;
    gb_session_memory(s, &reserved, &total);

    char shape[128];
    gb_shape_str(ndim, dims, shape, sizeof shape);
    printf("model     %s (%d nodes, %d run per forward, %.2f M params, opset %d)\n", model_path, n_nodes, n_run,
           (double)gb_model_param_count(m) * 1e-6, gb_model_opset(m));
    printf("input     %s %s, seed %d, %d threads\n", in.name, shape, seed, threads);
    printf("load      %.1f ms, plan %.1f ms, activations %.1f MB reserved (%.1f MB without reuse)\n", t_load, t_plan,
           (double)reserved / 1048576.0, (double)total / 1048576.0);

    gb_seed seed_bw = {0};
    if (backward) { /* the top-1 class of each item, from one forward */
        if (gb_session_run(s, inputs, 1)) goto fail;
        const gb_tensor *y0 = gb_session_output(s, 0);
        int64_t nb = y0->dims[0], nc = y0->numel / nb;
        if (!(classes = calloc((size_t)nb, sizeof *classes))) goto done;
        for (int64_t b = 0; b < nb; b++)
            for (int64_t k = 1; k < nc; k++)
                if (((const float *)y0->data)[b * nc + k] > ((const float *)y0->data)[b * nc + classes[b]])
                    classes[b] = k;
        seed_bw.classes = classes;
    }
    for (int r = 0; r < warmup; r++)
        if (gb_session_run(s, inputs, 1) || (backward && gb_session_backward(s, &seed_bw, NULL, 0))) goto fail;
    if (!(ms = malloc((size_t)runs * sizeof *ms))) goto done;
    for (int r = 0; r < runs; r++) {
        t0 = now_ms();
        if (gb_session_run(s, inputs, 1)) goto fail;
        if (backward && gb_session_backward(s, &seed_bw, NULL, 0)) goto fail;
        ms[r] = now_ms() - t0;
    }
    /* A checksum of output 0, so a broken run is visible in the log. */
    const gb_tensor *y = gb_session_output(s, 0);
    double sum = 0;
    if (y && y->dtype == GB_DTYPE_F32)
        for (int64_t i = 0; i < y->numel; i++) sum += ((const float *)y->data)[i];

    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    double med = runs % 2 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);
    double mn = ms[0];
    printf("%s median %.2f ms, min %.2f ms, max %.2f ms over %d runs (%d warm-up)\n",
           backward ? "fwd+bwd  " : "forward  ", med, mn, ms[runs - 1], runs, warmup);
    printf("compute   %.3f GFLOP per run, %.1f GFLOP/s at the median (%.1f at the min); output sum %.6g\n",
           flops * 1e-9, flops / med * 1e-6, flops / mn * 1e-6, sum);

    gb_status pst;
    if (profile && (pst = gb_bench_profile(s, inputs, runs, med, stdout))) {
        fprintf(stderr, "bench_forward: --profile failed: %s (%s)\n", gb_status_str(pst), gb_ctx_errmsg(ctx));
        goto done;
    }

    printf("RESULT %s model=%s shape=%s threads=%d runs=%d median_ms=%.3f min_ms=%.3f gflop=%.4f gflops=%.2f\n",
           backward ? "backward" : "forward", base_name(model_path), shape, threads, runs, med, mn, flops * 1e-9,
           flops / med * 1e-6);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_forward: %s\n", gb_ctx_errmsg(ctx));
done:
    free(ms);
    free(classes);
    gb_tensor_free(x);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
}
