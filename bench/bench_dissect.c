/* bench_dissect.c — time Network Dissection (gb_dissect) of one or more
 * layers on a Broden-format dataset, and report the peak resident memory
 * (for the streaming claim: 1k vs 10k images). bench/bench_dissect.py runs
 * it beside a PyTorch reference loop (bench/README_concepts.md).
 *
 *   bench_dissect MODEL DATA_DIR LAYER[,LAYER] [--max-images N] [--batch N]
 *                 [--threads N] [--csv units.csv]
 * Prints one JSON line: images, seconds (both passes, model forward
 * included), per pass, images per second, max RSS in KiB. */
#include "glassbox/concepts.h"
#include "glassbox/glassbox.h"
#include "glassbox/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL DATA_DIR LAYER[,LAYER] [--max-images N] [--batch N] [--threads N] [--csv F]\n",
                argv[0]);
        return 2;
    }
    gb_dissect_opts o = {0};
    int threads = 2;
    const char *csv = NULL;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--max-images")) o.max_images = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) o.batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--csv")) csv = argv[i + 1];
    }
    char *layers_buf = strdup(argv[3]);
    const char *layers[16];
    int n_layers = 0;
    for (char *t = strtok(layers_buf, ","); t && n_layers < 16; t = strtok(NULL, ",")) layers[n_layers++] = t;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb_ctx_set_threads(ctx, threads);
    gb_model *m;
    gb_sidecar *sc;
    gb_broden *b;
    if (gb_model_load(ctx, argv[1], &m) || gb_sidecar_for_model(ctx, m, argv[1], &sc) ||
        gb_broden_open(ctx, argv[2], &b)) {
        fprintf(stderr, "%s\n", gb_ctx_errmsg(ctx));
        return 1;
    }
    gb_dissect_result *r;
    double t0 = now_s();
    if (gb_dissect(ctx, m, &sc->input, b, layers, n_layers, &o, &r)) {
        fprintf(stderr, "%s\n", gb_ctx_errmsg(ctx));
        return 1;
    }
    double dt = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (csv) {
        FILE *f = fopen(csv, "w");
        if (!f) return 1;
        fprintf(f, "layer,unit,concept,iou,threshold\n");
        for (int u = 0; u < r->n_units; u++)
            fprintf(f, "%s,%d,%s,%.9g,%.9g\n", r->layers[r->units[u].layer], r->units[u].unit,
                    gb_broden_label_name(b, r->units[u].label), r->units[u].iou, r->units[u].threshold);
        fclose(f);
    }
    printf("{\"images\": %d, \"seconds\": %.4f, \"seconds_quantile\": %.4f, \"seconds_tally\": %.4f, "
           "\"images_per_s\": %.2f, \"maxrss_kb\": %ld, \"units\": %d}\n",
           r->n_images, dt, r->seconds_quantile, r->seconds_tally, r->n_images / dt, ru.ru_maxrss, r->n_units);
    gb_dissect_result_free(r);
    gb_broden_free(b);
    gb_sidecar_free(sc);
    gb_model_free(m);
    gb_ctx_free(ctx);
    free(layers_buf);
    return 0;
}
