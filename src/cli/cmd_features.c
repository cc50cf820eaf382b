/* cmd_features.c — `glassbox features`: what a layer holds for an input
 * (activations as a mosaic of channel maps, .npy, per-channel statistics),
 * and the dataset items and image patches that most activate a unit
 * (Zeiler & Fergus 2014, sec. 4). */
#include "cli/vis_common.h"
#include "glassbox/visualize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 32

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox features [--model M] (--image F | --input x.npy) --layer TENSOR --out-png FILE\n"
            "                         [--out-npy FILE] [--channels i,j,... | --max-channels N]\n"
            "                         [--sort mean|index] [--shared-scale] [--cell PX] [--item N] [--stats]\n"
            "       glassbox features [--model M] --unit TENSOR:c[,h,w] --dataset DIR|x.npy [--top K]\n"
            "                         --out-top FILE.png\n"
            "\n"
            "The activations of TENSOR for one input: a mosaic PNG of its channel maps (viridis; each map\n"
            "stretched over its own range unless --shared-scale), sorted by mean activation (default) or\n"
            "by index, at most --max-channels (default 64) or the --channels listed; the raw activation\n"
            "as .npy; the receptive field of its units; and per-channel statistics (mean, std, min, max,\n"
            "share of positive values) for the top channels (--stats: all).\n"
            "With --unit: scores every image of a directory (or item of a .npy batch) by the unit\n"
            "(T:c,h,w) or by the maximum of channel c's map (T:c), prints the top K (default 9) and draws\n"
            "them to --out-top: the images with the unit's receptive field outlined, and below each the\n"
            "patch inside that field, magnified.\n");
}

typedef struct {
    const char *model, *image, *npy, *layer, *out_png, *out_npy, *channels, *unit, *dataset, *out_top;
    int max_channels, top, cell, item;
    bool by_index, shared, all_stats;
    int threads;
    gb_cli_list over;
} args_t;

static int parse(int argc, char **argv, args_t *a) {
    a->max_channels = 64, a->top = 9;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        long n;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            help(stdout);
            return -1;
        }
        if (!strcmp(arg, "--shared-scale")) {
            a->shared = true;
            continue;
        }
        if (!strcmp(arg, "--stats")) {
            a->all_stats = true;
            continue;
        }
        if (arg[0] != '-') {
            gb_cli_error("features: unexpected argument '%s'", arg);
            return GB_EXIT_USAGE;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        if (!strcmp(arg, "--model")) a->model = v;
        else if (!strcmp(arg, "--image")) a->image = v;
        else if (!strcmp(arg, "--input")) a->npy = v;
        else if (!strcmp(arg, "--layer")) a->layer = v;
        else if (!strcmp(arg, "--out-png")) a->out_png = v;
        else if (!strcmp(arg, "--out-npy")) a->out_npy = v;
        else if (!strcmp(arg, "--channels")) a->channels = v;
        else if (!strcmp(arg, "--unit")) a->unit = v;
        else if (!strcmp(arg, "--dataset")) a->dataset = v;
        else if (!strcmp(arg, "--out-top")) a->out_top = v;
        else if (!strcmp(arg, "--sort")) {
            if (!strcmp(v, "index")) a->by_index = true;
            else if (strcmp(v, "mean")) {
                gb_cli_error("--sort: '%s' is not mean or index", v);
                return GB_EXIT_USAGE;
            }
        } else if (!strcmp(arg, "--max-channels")) {
            if (!gb_cli_vis_int(arg, v, 1, 4096, &n)) return GB_EXIT_USAGE;
            a->max_channels = (int)n;
        } else if (!strcmp(arg, "--top")) {
            if (!gb_cli_vis_int(arg, v, 1, 1000, &n)) return GB_EXIT_USAGE;
            a->top = (int)n;
        } else if (!strcmp(arg, "--cell")) {
            if (!gb_cli_vis_int(arg, v, 1, 64, &n)) return GB_EXIT_USAGE;
            a->cell = (int)n;
        } else if (!strcmp(arg, "--item")) {
            if (!gb_cli_vis_int(arg, v, 0, 1 << 30, &n)) return GB_EXIT_USAGE;
            a->item = (int)n;
        } else if (!strcmp(arg, "--threads")) {
            if (!gb_cli_vis_int(arg, v, 1, 256, &n)) return GB_EXIT_USAGE;
            a->threads = (int)n;
        } else if (!strcmp(arg, "--preproc")) {
            if (!gb_cli_list_add(&a->over, v)) return GB_EXIT_FAIL;
        } else {
            gb_cli_error("features: unknown option '%s' (glassbox features --help)", arg);
            return GB_EXIT_USAGE;
        }
    }
    bool one = a->image || a->npy;
    if (a->image && a->npy) {
        gb_cli_error("features: give --image or --input, not both");
        return GB_EXIT_USAGE;
    }
    if (!one && !a->unit) {
        gb_cli_error("features: give --image or --input (with --layer and --out-png), or --unit with --dataset");
        return GB_EXIT_USAGE;
    }
    if (one && (!a->layer || !a->out_png)) {
        gb_cli_error("features: --layer and --out-png are required with --image/--input");
        return GB_EXIT_USAGE;
    }
    if (a->unit && (!a->dataset || !a->out_top)) {
        gb_cli_error("features: --unit needs --dataset and --out-top");
        return GB_EXIT_USAGE;
    }
    if (!a->unit && (a->dataset || a->out_top)) {
        gb_cli_error("features: --dataset and --out-top go with --unit");
        return GB_EXIT_USAGE;
    }
    return GB_EXIT_OK;
}

/* "i,j,k" -> channel list checked against C. */
static int parse_channels(const char *spec, int64_t C, int64_t *out, int cap) {
    int n = 0;
    for (const char *p = spec; *p;) {
        char *end;
        long long c = strtoll(p, &end, 10);
        if (end == p || c < 0 || c >= C || n == cap || (*end && *end != ',')) {
            gb_cli_error("--channels: '%s' is not a list of channels in 0..%lld", spec, (long long)C - 1);
            return -1;
        }
        out[n++] = c;
        p = *end ? end + 1 : end;
    }
    if (!n) gb_cli_error("--channels: empty list");
    return n ? n : -1;
}

static bool one_input(gb_ctx *ctx, args_t *a, gb_cli_model *cm, gb_session *s, gb_cli_outputs *outs) {
    gb_tensor *x = NULL, *act = NULL;
    int64_t *order = NULL;
    gb_feature_stats *fs = NULL;
    gb_image *mosaic = NULL;
    bool ok = false;
    if (!gb_cli_vis_load_input(ctx, cm, a->image, a->npy, &x)) goto out;
    if (gb_features_compute(s, x, a->layer, &act)) {
        gb_cli_error("features: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    if (act->ndim < 2 || a->item >= act->dims[0]) {
        gb_cli_error("features: '%s' is not a (N, C, ...) tensor with an item %d", a->layer, a->item);
        goto out;
    }
    int64_t C = act->dims[1];
    order = malloc(sizeof *order * (size_t)C);
    fs = malloc(sizeof *fs * (size_t)C);
    if (!order || !fs) goto out;
    if (gb_features_stats(ctx, act, a->item, fs) || gb_features_order(ctx, act, a->item, order)) {
        gb_cli_error("features: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    int n;
    if (a->channels) {
        if ((n = parse_channels(a->channels, C, order, (int)C)) < 0) goto out;
    } else {
        if (a->by_index)
            for (int64_t c = 0; c < C; c++) order[c] = c;
        n = (int)(C < a->max_channels ? C : a->max_channels);
    }
    if (gb_features_mosaic(ctx, act, a->item, order, n, a->cell, a->shared, &mosaic)) {
        gb_cli_error("features: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    if (!gb_cli_vis_write_png(ctx, outs, a->out_png, mosaic)) goto out;
    if (a->out_npy && !gb_cli_vis_write_npy(ctx, outs, a->out_npy, act)) goto out;
    char shp[128];
    gb_shape_str(act->ndim, act->dims, shp, sizeof shp);
    printf("layer %s: %s\n", a->layer, shp);
    gb_receptive_field rf;
    if (!gb_receptive_field_of(cm->m, a->layer, &rf)) {
        if (rf.whole) printf("receptive field: the whole input\n");
        else
            printf("receptive field: %gx%g input pixels, stride %gx%g, unit (0,0) centred at (%g,%g)\n", rf.size[0],
                   rf.size[1], rf.jump[0], rf.jump[1], rf.start[0], rf.start[1]);
    }
    int64_t alive = 0;
    for (int64_t c = 0; c < C; c++) alive += fs[c].max > 0;
    printf("%lld of %lld channels have a positive value; shown: %d (%s)\n", (long long)alive, (long long)C, n,
           a->channels ? "as listed" : a->by_index ? "by index" : "by mean activation");
    printf("%-8s %10s %10s %10s %10s %8s\n", "channel", "mean", "std", "min", "max", "pos");
    int64_t show = a->all_stats ? C : (C < 8 ? C : 8);
    int64_t *ord = order;
    if (a->channels || a->by_index) gb_features_order(ctx, act, a->item, ord);
    for (int64_t k = 0; k < show; k++) {
        const gb_feature_stats *q = &fs[a->all_stats ? k : ord[k]];
        printf("%-8lld %10.4g %10.4g %10.4g %10.4g %7.1f%%\n", (long long)(a->all_stats ? k : ord[k]), q->mean,
               q->std, q->min, q->max, 100 * q->frac_positive);
    }
    printf("wrote %s%s%s\n", a->out_png, a->out_npy ? " and " : "", a->out_npy ? a->out_npy : "");
    ok = true;
out:
    gb_image_free(mosaic);
    free(order);
    free(fs);
    gb_tensor_free(x);
    gb_tensor_free(act);
    return ok;
}

/* ---- top-k dataset items for a unit ------------------------------------------------- */

static void draw_box(gb_image *img, int x0, int y0, int x1, int y1) {
    for (int x = x0; x < x1; x++)
        for (int e = 0; e < 2; e++) {
            int y = e ? y1 - 1 : y0;
            if (y < 0 || y >= img->height || x < 0 || x >= img->width) continue;
            uint8_t *d = img->data + (size_t)y * img->stride + (size_t)x * 3;
            d[0] = 255, d[1] = 0, d[2] = 0;
        }
    for (int y = y0; y < y1; y++)
        for (int e = 0; e < 2; e++) {
            int x = e ? x1 - 1 : x0;
            if (y < 0 || y >= img->height || x < 0 || x >= img->width) continue;
            uint8_t *d = img->data + (size_t)y * img->stride + (size_t)x * 3;
            d[0] = 255, d[1] = 0, d[2] = 0;
        }
}

static bool top_units(gb_ctx *ctx, args_t *a, gb_cli_model *cm, gb_session *s, gb_cli_outputs *outs) {
    gb_vis_unit u;
    if (gb_vis_unit_parse(ctx, a->unit, &u)) {
        gb_cli_error("--unit: %s", gb_ctx_errmsg(ctx));
        return false;
    }
    bool ok = false, is_npy = false;
    size_t len = strlen(a->dataset);
    is_npy = len >= 4 && !strcmp(a->dataset + len - 4, ".npy");
    gb_cli_list files = {0};
    gb_tensor *all = NULL, *chunk = NULL;
    gb_image **imgs = NULL, *sheet = NULL;
    double *score = NULL;
    int64_t *pos = NULL, *rank = NULL, N = 0;
    if (is_npy) {
        if (!gb_cli_vis_load_input(ctx, cm, NULL, a->dataset, &all)) goto out;
        if (all->ndim != 4) {
            gb_cli_error("--dataset: %s is not a (N, C, H, W) batch", a->dataset);
            goto out;
        }
        N = all->dims[0];
    } else {
        const char *args[1] = {a->dataset};
        if (!cm->has_pp) {
            gb_cli_error("%s: no image preprocessing for this model (give --dataset x.npy)", cm->path);
            goto out;
        }
        if (!gb_cli_collect_images(args, 1, &files)) goto out;
        N = files.n;
    }
    score = malloc(sizeof *score * (size_t)N);
    pos = malloc(sizeof *pos * (size_t)N);
    rank = malloc(sizeof *rank * (size_t)N);
    if (!score || !pos || !rank) goto out;
    int64_t step = cm->static_batch > 0 ? cm->static_batch : CHUNK;
    for (int64_t i0 = 0; i0 < N; i0 += step) {
        int64_t n = N - i0 < step ? N - i0 : step;
        if (cm->static_batch > 0 && n != step) {
            gb_cli_error("features: the model's batch is fixed to %lld; %lld items do not divide into it",
                         (long long)step, (long long)N);
            goto out;
        }
        gb_tensor view;
        const gb_tensor *x;
        if (is_npy) {
            view = *all;
            int64_t per = all->numel / N;
            view.dims[0] = n, view.numel = n * per, view.data = (float *)all->data + i0 * per;
            x = &view;
        } else {
            gb_image **batch = calloc((size_t)n, sizeof *batch);
            bool lok = batch != NULL;
            for (int64_t k = 0; k < n && lok; k++)
                if (gb_image_load(ctx, files.v[i0 + k], &batch[k])) lok = false;
            gb_tensor_free(chunk);
            chunk = NULL;
            if (lok && gb_preproc_batch(ctx, &cm->pp, (const gb_image *const *)batch, (int)n, &chunk)) lok = false;
            for (int64_t k = 0; batch && k < n; k++) gb_image_free(batch[k]);
            free(batch);
            if (!lok) {
                gb_cli_error("%s", gb_ctx_errmsg(ctx));
                goto out;
            }
            x = chunk;
        }
        if (gb_features_unit_scores(s, x, &u, score + i0, pos + i0)) {
            gb_cli_error("features: %s", gb_ctx_errmsg(ctx));
            goto out;
        }
    }
    /* rank by score, stable */
    for (int64_t i = 0; i < N; i++) {
        int64_t j = i;
        while (j > 0 && score[rank[j - 1]] < score[i]) rank[j] = rank[j - 1], j--;
        rank[j] = i;
    }
    int K = (int)(N < a->top ? N : a->top);
    /* the map's width, for pos -> (h, w) */
    const gb_tensor *T = gb_session_tensor(s, u.tensor);
    int64_t mw = T && T->ndim == 4 ? T->dims[3] : 1;
    gb_receptive_field rf;
    if (gb_receptive_field_of(cm->m, u.tensor, &rf)) {
        gb_cli_error("features: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    imgs = calloc((size_t)K, sizeof *imgs);
    if (!imgs) goto out;
    int H = 0, W = 0;
    for (int k = 0; k < K; k++) {
        int64_t i = rank[k];
        gb_tensor one;
        gb_tensor *xi = NULL;
        if (is_npy) {
            one = *all;
            int64_t per = all->numel / N;
            one.dims[0] = 1, one.numel = per, one.data = (float *)all->data + i * per;
        } else {
            gb_image *im = NULL;
            if (gb_image_load(ctx, files.v[i], &im) || gb_preproc_image(ctx, &cm->pp, im, &xi)) {
                gb_image_free(im);
                gb_cli_error("%s", gb_ctx_errmsg(ctx));
                goto out;
            }
            gb_image_free(im);
            one = *xi;
        }
        bool drew = gb_cli_vis_input_png(ctx, cm, &one, 1, &imgs[k]);
        gb_tensor_free(xi);
        if (!drew) goto out;
        H = imgs[k]->height, W = imgs[k]->width;
        int64_t box[4];
        gb_receptive_field_box(&rf, pos[i] / mw, pos[i] % mw, H, W, box);
        char what[GB_CLI_PATH_MAX];
        if (is_npy) snprintf(what, sizeof what, "item %lld", (long long)i);
        else snprintf(what, sizeof what, "%s", files.v[i]);
        printf("%2d  %-12s score %10.5g  at (%lld, %lld)  patch rows %lld..%lld cols %lld..%lld\n", k + 1, what,
               score[i], (long long)(pos[i] / mw), (long long)(pos[i] % mw), (long long)box[0],
               (long long)box[1] - 1, (long long)box[2], (long long)box[3] - 1);
    }
    /* sheet: row 1 images with the field outlined, row 2 the patches */
    int side = H > W ? H : W, sc = side >= 64 ? 1 : (64 + side - 1) / side, gap = 4;
    int cw = W * sc, chh = H * sc;
    if (gb_image_create(ctx, K * (cw + gap) + gap, 2 * (chh + gap) + gap, 3, &sheet)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto out;
    }
    memset(sheet->data, 255, sheet->stride * (size_t)sheet->height);
    for (int k = 0; k < K; k++) {
        int64_t i = rank[k], box[4];
        gb_receptive_field_box(&rf, pos[i] / mw, pos[i] % mw, H, W, box);
        int x0 = gap + k * (cw + gap);
        gb_cli_vis_paste(sheet, imgs[k], x0, gap, sc);
        draw_box(sheet, x0 + (int)box[2] * sc, gap + (int)box[0] * sc, x0 + (int)box[3] * sc, gap + (int)box[1] * sc);
        /* the patch, magnified to fit the cell */
        int ph = (int)(box[1] - box[0]), pw = (int)(box[3] - box[2]);
        if (ph < 1 || pw < 1) continue;
        int ps = chh / ph < cw / pw ? chh / ph : cw / pw;
        if (ps < 1) ps = 1;
        gb_image view = {.width = pw, .height = ph, .channels = imgs[k]->channels, .stride = imgs[k]->stride,
                         .data = imgs[k]->data + (size_t)box[0] * imgs[k]->stride +
                                 (size_t)box[2] * (size_t)imgs[k]->channels};
        gb_cli_vis_paste(sheet, &view, x0, 2 * gap + chh, ps);
    }
    if (!gb_cli_vis_write_png(ctx, outs, a->out_top, sheet)) goto out;
    printf("wrote %s (top %d of %lld for %s)\n", a->out_top, K, (long long)N, a->unit);
    ok = true;
out:
    for (int k = 0; imgs && k < a->top && k < N; k++) gb_image_free(imgs[k]);
    free(imgs);
    gb_image_free(sheet);
    free(score), free(pos), free(rank);
    gb_tensor_free(all);
    gb_tensor_free(chunk);
    gb_cli_list_free(&files);
    return ok;
}

int gb_cmd_features(int argc, char **argv) {
    args_t a;
    memset(&a, 0, sizeof a);
    int rc = parse(argc, argv, &a);
    if (rc) {
        gb_cli_list_free(&a.over);
        return rc < 0 ? GB_EXIT_OK : rc;
    }
    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm;
    memset(&cm, 0, sizeof cm);
    gb_session *s = NULL;
    gb_cli_outputs outs = {0};
    if (gb_ctx_create(&ctx)) goto out;
    if (a.threads) gb_ctx_set_threads(ctx, a.threads);
    if (!gb_cli_model_open(ctx, a.model, (const char *const *)a.over.v, a.over.n, a.image != NULL, &cm)) goto out;
    if (gb_session_create(cm.m, &s)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto out;
    }
    if ((a.image || a.npy) && !one_input(ctx, &a, &cm, s, &outs)) goto out;
    if (a.unit && !top_units(ctx, &a, &cm, s, &outs)) goto out;
    rc = GB_EXIT_OK;
out:
    if (rc) gb_cli_outputs_rollback(&outs);
    gb_cli_outputs_free(&outs);
    gb_session_free(s);
    gb_cli_model_close(&cm);
    gb_ctx_free(ctx);
    gb_cli_list_free(&a.over);
    return rc;
}
