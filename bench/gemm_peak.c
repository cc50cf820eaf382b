/*
 * gemm_peak.c — measure this machine's OpenBLAS SGEMM throughput, so that the
 * forward benchmark can report a *measured* fraction of peak rather than a
 * number derived from clock speed and FMA width.
 *
 *     bench_gemm_peak [--size N] [--threads T] [--reps R]
 *
 * Runs C = A B with square N x N float32 matrices (default 2048, 2 threads),
 * one untimed warm-up call, then R timed calls (default 7), and prints the
 * best and median GFLOP/s (2 N^3 flops per call). The last line is
 * machine-readable:
 *
 *     RESULT gemm_peak size=2048 threads=2 best_gflops=... median_gflops=...
 */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS (pthread build) thread count; the same call the engine makes. */
extern void openblas_set_num_threads(int);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_pos(const char *flag, const char *v, int *out) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < 1 || x > 1 << 20) {
        fprintf(stderr, "bench_gemm_peak: %s needs a positive integer\n", flag);
        return 1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv) {
    int n = 2048, threads = 2, reps = 7;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--size")) {
            if (parse_pos(a, v, &n)) return 2;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (parse_pos(a, v, &threads)) return 2;
            i++;
        } else if (!strcmp(a, "--reps")) {
            if (parse_pos(a, v, &reps)) return 2;
            i++;
        } else {
            fprintf(stderr, "usage: bench_gemm_peak [--size N] [--threads T] [--reps R]\n");
            return 2;
        }
    }
    openblas_set_num_threads(threads);

    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    double *gf = malloc((size_t)reps * sizeof *gf);
    if (!a || !b || !c || !gf) {
        fprintf(stderr, "bench_gemm_peak: out of memory for n=%d\n", n);
        return 1;
    }
    /* Values in [-0.5, 0.5): no denormals, no overflow. */
    uint32_t state = 12345u;
    for (size_t i = 0; i < nn; i++) {
        state = state * 1664525u + 1013904223u;
        a[i] = (float)(state >> 8) / 16777216.0f - 0.5f;
        state = state * 1664525u + 1013904223u;
        b[i] = (float)(state >> 8) / 16777216.0f - 0.5f;
    }
    memset(c, 0, nn * sizeof *c);

    double flops = 2.0 * (double)n * (double)n * (double)n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now_s() - t0;
        gf[r] = flops / dt * 1e-9;
        printf("  rep %d: %8.2f ms  %7.1f GFLOP/s\n", r, dt * 1e3, gf[r]);
    }
    qsort(gf, (size_t)reps, sizeof *gf, cmp_double);
    double best = gf[reps - 1], median = gf[reps / 2];
    printf("SGEMM %dx%dx%d, %d threads: best %.1f GFLOP/s, median %.1f GFLOP/s (checksum %g)\n", n, n, n, threads,
           best, median, (double)c[nn / 2]);
    printf("RESULT gemm_peak size=%d threads=%d best_gflops=%.2f median_gflops=%.2f\n", n, threads, best, median);
    free(a);
    free(b);
    free(c);
    free(gf);
    return 0;
}
