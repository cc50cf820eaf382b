/* cmd_segment.c — `glassbox segment`: SLIC superpixels (or a grid) of an
 * image, as a label map (.npy, for `explain --mask`) and an overlay PNG with
 * the boundaries drawn. With --model, the image is first prepared as that
 * model sees it (resize, crop), so the map fits the model's input. */
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "glassbox/segment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox segment --image FILE [--model MODEL] [--segments N] [--compactness M]\n"
            "                        [--grid H,W] [--out-npy labels.npy] [--out-png overlay.png]\n"
            "                        [--preproc KEY=VALUE]...\n"
            "\n"
            "SLIC superpixels (Achanta et al. 2012) of an image in CIELAB: about N segments\n"
            "(default 50), compactness M (default 10: higher = more square). --grid makes cells of\n"
            "H x W pixels instead. With --model, the image is first resized / cropped as the model's\n"
            "preprocessing does, so the label map can be given to `glassbox explain --mask`.\n"
            "Writes the (H, W) int64 label map with --out-npy and the image with the segment\n"
            "boundaries in yellow with --out-png (default: <image stem>_segments.png).\n");
}

static bool parse_pair(const char *v, int64_t *a, int64_t *b) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || x < 1) return false;
    if (!*end) {
        *a = *b = x;
        return true;
    }
    if (*end != ',' && *end != 'x') return false;
    const char *p = end + 1;
    long y = strtol(p, &end, 10);
    if (end == p || *end || y < 1) return false;
    *a = x;
    *b = y;
    return true;
}

int gb_cmd_segment(int argc, char **argv) {
    const char *image = NULL, *model = NULL, *out_npy = NULL, *out_png = NULL;
    long segments = 50;
    double compactness = 10;
    int64_t gh = 0, gw = 0;
    gb_cli_list over = {0};
    int rc = GB_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            help(stdout);
            gb_cli_list_free(&over);
            return GB_EXIT_OK;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) goto out;
        char *end;
        if (!strcmp(arg, "--image")) image = v;
        else if (!strcmp(arg, "--model")) model = v;
        else if (!strcmp(arg, "--out-npy")) out_npy = v;
        else if (!strcmp(arg, "--out-png")) out_png = v;
        else if (!strcmp(arg, "--segments")) {
            segments = strtol(v, &end, 10);
            if (!*v || *end || segments < 1 || segments > 1000000) {
                gb_cli_error("--segments: '%s' is not an integer in 1..1000000", v);
                goto out;
            }
        } else if (!strcmp(arg, "--compactness")) {
            compactness = strtod(v, &end);
            if (!*v || *end || !(compactness > 0 && compactness < 1e6)) {
                gb_cli_error("--compactness: '%s' is not a positive number", v);
                goto out;
            }
        } else if (!strcmp(arg, "--grid")) {
            if (!parse_pair(v, &gh, &gw)) {
                gb_cli_error("--grid: '%s' is not H,W (positive integers)", v);
                goto out;
            }
        } else if (!strcmp(arg, "--preproc")) {
            if (!gb_cli_list_add(&over, v)) {
                rc = GB_EXIT_FAIL;
                goto out;
            }
        } else {
            gb_cli_error("segment: unknown option '%s' (glassbox segment --help)", arg);
            goto out;
        }
    }
    if (!image) {
        gb_cli_error("segment: --image FILE is required");
        goto out;
    }
    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_image *img = NULL, *seen = NULL, *ov = NULL;
    gb_tensor *x = NULL, *lab = NULL, *seg = NULL;
    gb_cli_model cm;
    bool have_model = false;
    gb_cli_outputs outs = {0};
    if (gb_ctx_create(&ctx)) {
        gb_cli_error("out of memory");
        goto out;
    }
    if (gb_image_load(ctx, image, &img)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto fail;
    }
    if (model) {
        if (!gb_cli_model_open(ctx, model, (const char *const *)over.v, over.n, true, &cm)) goto fail;
        have_model = true;
        if (gb_preproc_image(ctx, &cm.pp, img, &x) || gb_preproc_inverse(ctx, &cm.pp, x, 0, &seen)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            goto fail;
        }
    }
    const gb_image *use = seen ? seen : img;
    gb_status st = gh > 0 ? gb_segment_grid(ctx, use->height, use->width, gh, gw, &seg)
                          : gb_segment_image_lab(ctx, use, &lab);
    if (!st && !seg) st = gb_segment_slic(ctx, lab, (int)segments, compactness, &seg);
    if (st) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto fail;
    }
    int64_t M = gb_segment_count(seg);
    char png[GB_CLI_PATH_MAX];
    if (out_png) snprintf(png, sizeof png, "%s", out_png);
    else {
        char stem[GB_CLI_PATH_MAX];
        gb_cli_stem(image, stem, sizeof stem);
        snprintf(png, sizeof png, "%.4000s_segments.png", stem);
    }
    if (out_npy) {
        if (gb_npy_write(ctx, out_npy, seg)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            goto fail;
        }
        if (!gb_cli_outputs_add(&outs, out_npy)) goto fail;
    }
    /* the overlay: the image in RGB with boundary pixels in yellow */
    if (gb_image_convert(ctx, use, 3, &ov)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto fail;
    }
    const int64_t *l = seg->data;
    int64_t H = seg->dims[0], W = seg->dims[1];
    for (int64_t y = 0; y < H; y++)
        for (int64_t xx = 0; xx < W; xx++) {
            int64_t v = l[y * W + xx];
            if ((xx + 1 < W && l[y * W + xx + 1] != v) || (y + 1 < H && l[(y + 1) * W + xx] != v)) {
                uint8_t *p = ov->data + (size_t)y * ov->stride + (size_t)xx * 3;
                p[0] = 255, p[1] = 220, p[2] = 0;
            }
        }
    if (gb_image_write_png(ctx, png, ov)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto fail;
    }
    printf("%s: %lld segments over %lldx%lld%s%s%s -> %s\n", image, (long long)M, (long long)H, (long long)W,
           gh > 0 ? " (grid)" : " (SLIC)", out_npy ? " -> " : "", out_npy ? out_npy : "", png);
    rc = GB_EXIT_OK;
fail:
    if (rc != GB_EXIT_OK) gb_cli_outputs_rollback(&outs);
    gb_cli_outputs_free(&outs);
    gb_image_free(img);
    gb_image_free(seen);
    gb_image_free(ov);
    gb_tensor_free(x);
    gb_tensor_free(lab);
    gb_tensor_free(seg);
    if (have_model) gb_cli_model_close(&cm);
    gb_ctx_free(ctx);
out:
    gb_cli_list_free(&over);
    return rc;
}
