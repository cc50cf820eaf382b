/* cmd_dissect.c — `glassbox dissect`: Network Dissection of chosen layers on
 * a Broden-format dataset (gb_dissect), with a per-unit table (CSV, JSON),
 * detector counts per layer and category, and an HTML report showing each
 * unit's top images with its thresholded region. */
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "glassbox/concepts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox dissect [--model MODEL] --data BRODEN_DIR --layer TENSOR[,TENSOR...] --out-dir DIR\n"
            "                        [--quantile Q] [--iou T] [--top N] [--batch N] [--max-images N]\n"
            "                        [--sketch-k K] [--no-images] [--net2vec] [--threads N] [--preproc KEY=VALUE]...\n"
            "Network Dissection (Bau et al. 2017): for every unit k of each layer (a (N, K, h, w) tensor;\n"
            "glassbox info lists the names), the threshold T_k with P(a_k > T_k) = Q (default 0.005,\n"
            "streamed through a quantile sketch), the map upsampled bilinearly to the label resolution\n"
            "and thresholded, and its IoU with every concept of the dataset (NetDissect-Lite's\n"
            "accounting). A unit is a detector of its best concept when IoU > T (default 0.04).\n"
            "Writes DIR/units.csv (layer, unit, category, concept, iou, threshold, detector, and the best\n"
            "concept and IoU per category), DIR/units.json, DIR/summary.csv (detector units and unique\n"
            "detectors per layer and category), DIR/report.html and DIR/units/*.png (each unit's top N\n"
            "images, default 6, with the region a_k > T_k outlined; --no-images skips them).\n"
            "--net2vec also fits Net2Vec (Fong & Vedaldi 2018) per layer and concept: a weighted\n"
            "combination of the layer's units for segmentation and for presence classification,\n"
            "trained on half of (at most 400) images and tested on the other half, next to the best\n"
            "single unit: DIR/net2vec.csv (layer, category, concept, seg_iou, best_unit,\n"
            "best_unit_iou, cls_acc, best_unit_cls_acc).\n");
}

typedef struct { char *p; size_t len, cap; } sbuf;
static bool sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return false;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return true;
        }
        size_t nc = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
        char *np = realloc(b->p, nc);
        if (!np) return false;
        b->p = np;
        b->cap = nc;
    }
}

/* Write a whole file: to "<path>.tmp.<pid>", then rename. */
static bool write_file(gb_cli_outputs *outs, const char *path, const sbuf *b) {
    char tmp[GB_CLI_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(b->p, 1, b->len, f) == b->len;
    if (f && fclose(f) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        gb_cli_error("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return gb_cli_outputs_add(outs, path);
}

/* A layer name safe in a file name. */
static void safe_name(const char *s, char *buf, size_t cap) {
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) {
        char c = s[i];
        buf[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ? c : '_';
    }
    buf[i] = 0;
}

/* CSV and HTML: concept names come from the dataset, escape them. */
static const char *html_esc(const char *s, char *buf, size_t cap) {
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        const char *r = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : NULL;
        if (r) {
            size_t n = strlen(r);
            memcpy(buf + o, r, n);
            o += n;
        } else buf[o++] = *s;
    }
    buf[o] = 0;
    return buf;
}
static const char *csv_esc(const char *s, char *buf, size_t cap) {
    if (!strpbrk(s, ",\"\n")) return s;
    size_t o = 0;
    buf[o++] = '"';
    for (; *s && o + 3 < cap; s++) {
        if (*s == '"') buf[o++] = '"';
        buf[o++] = *s;
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}


int gb_cmd_dissect(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *out_dir = NULL;
    gb_cli_list layers = {0}, over = {0};
    gb_dissect_opts o = {0};
    int threads = 0;
    bool images = true, net2vec = false;
    int rc = GB_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            rc = GB_EXIT_OK;
            goto out;
        }
        if (!strcmp(a, "--no-images")) {
            images = false;
            continue;
        }
        if (!strcmp(a, "--net2vec")) {
            net2vec = true;
            continue;
        }
        static const char *const with_value[] = {"--model", "--data", "--layer", "--out-dir", "--quantile", "--iou",
                                                 "--top", "--batch", "--max-images", "--sketch-k", "--threads",
                                                 "--preproc"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
        if (!known) {
            gb_cli_error("dissect: unknown argument '%s' (glassbox dissect --help)", a);
            goto out;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) goto out;
        char *end;
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out-dir")) out_dir = v;
        else if (!strcmp(a, "--preproc")) {
            if (!gb_cli_list_add(&over, v)) goto oom;
        } else if (!strcmp(a, "--layer")) {
            char buf[GB_CLI_PATH_MAX];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
                if (!gb_cli_list_add(&layers, tok)) goto oom;
        } else if (!strcmp(a, "--quantile") || !strcmp(a, "--iou")) {
            double d = strtod(v, &end);
            if (*end || !*v || !(d > 0 && d < 1)) {
                gb_cli_error("%s: '%s' is not a number in (0, 1)", a, v);
                goto out;
            }
            if (!strcmp(a, "--quantile")) o.quantile = d;
            else o.iou_threshold = d;
        } else {
            long n = strtol(v, &end, 10);
            if (*end || !*v || n < 1 || n > 100000000L) {
                gb_cli_error("%s: '%s' is not a positive integer", a, v);
                goto out;
            }
            if (!strcmp(a, "--top")) {
                if (n > 50) {
                    gb_cli_error("--top: at most 50");
                    goto out;
                }
                o.top_n = (int)n;
            } else if (!strcmp(a, "--batch")) o.batch = (int)n;
            else if (!strcmp(a, "--max-images")) o.max_images = (int)n;
            else if (!strcmp(a, "--sketch-k")) {
                if (n < 8) {
                    gb_cli_error("--sketch-k: at least 8");
                    goto out;
                }
                o.sketch_k = (int)n;
            } else threads = (int)n;
        }
    }
    if (!data || !layers.n || !out_dir) {
        gb_cli_error("dissect: give --data BRODEN_DIR, --layer TENSOR and --out-dir DIR (glassbox dissect --help)");
        goto out;
    }

    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm = {0};
    gb_broden *b = NULL;
    gb_dissect_result *r = NULL;
    gb_cli_outputs outs = {0};
    sbuf csv = {0}, json = {0}, sum = {0}, html = {0}, n2v = {0};
    bool made_units = false;
    char path[GB_CLI_PATH_MAX];
    if (gb_ctx_create(&ctx)) {
        gb_cli_error("out of memory");
        goto out;
    }
    if (threads) gb_ctx_set_threads(ctx, threads);
    if (!gb_cli_model_open(ctx, model_path, (const char *const *)over.v, over.n, true, &cm)) goto done;
    if (gb_broden_open(ctx, data, &b)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto done;
    }
    if (gb_dissect(ctx, cm.m, &cm.pp, b, (const char *const *)layers.v, layers.n, &o, &r)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto done;
    }
    if (!gb_cli_outputs_mkdir(&outs, out_dir)) goto done;
    int C = r->n_categories;
    char e1[512], e2[512];
    bool ok = sb_printf(&csv, "layer,unit,category,concept,iou,threshold,detector");
    for (int c = 0; c < C; c++)
        ok = ok && sb_printf(&csv, ",%s-concept,%s-iou", gb_broden_category_name(b, c), gb_broden_category_name(b, c));
    ok = ok && sb_printf(&csv, "\n") &&
         sb_printf(&json, "{\n  \"images\": %d,\n  \"iou_threshold\": %g,\n  \"quantile\": %g,\n  \"units\": [\n",
                   r->n_images, r->iou_threshold, o.quantile > 0 ? o.quantile : 0.005);
    for (int u = 0; u < r->n_units && ok; u++) {
        const gb_dissect_unit *du = &r->units[u];
        const char *cat = du->category >= 0 ? gb_broden_category_name(b, du->category) : "";
        const char *con = gb_broden_label_name(b, du->label);
        int det = du->iou > r->iou_threshold;
        ok = sb_printf(&csv, "%s,%d,%s,%s,%.6f,%.6g,%d", csv_esc(r->layers[du->layer], e1, sizeof e1), du->unit,
                       cat, csv_esc(con, e2, sizeof e2), du->iou, du->threshold, det);
        for (int c = 0; c < C && ok; c++)
            ok = sb_printf(&csv, ",%s,%.6f", csv_esc(gb_broden_label_name(b, du->cat_label[c]), e1, sizeof e1),
                           du->cat_iou[c]);
        ok = ok && sb_printf(&csv, "\n") &&
             sb_printf(&json,
                       "    {\"layer\": \"%s\", \"unit\": %d, \"category\": \"%s\", \"concept\": \"%s\", "
                       "\"iou\": %.6f, \"threshold\": %.6g, \"detector\": %s, \"top_images\": [",
                       r->layers[du->layer], du->unit, cat, con, du->iou, du->threshold, det ? "true" : "false");
        for (int t = 0; t < du->n_top && ok; t++) ok = sb_printf(&json, "%s%d", t ? ", " : "", du->top_images[t]);
        ok = ok && sb_printf(&json, "]}%s\n", u + 1 < r->n_units ? "," : "");
    }
    ok = ok && sb_printf(&json, "  ],\n  \"summary\": [\n") &&
         sb_printf(&sum, "layer,category,detector_units,unique_detectors\n");
    printf("dissected %d images in %.2f s (thresholds %.2f s, IoU %.2f s)\n", r->n_images,
           r->seconds_quantile + r->seconds_tally, r->seconds_quantile, r->seconds_tally);
    for (int l = 0; l < r->n_layers && ok; l++) {
        int total = 0;
        printf("layer %s (%d units, %dx%d):", r->layers[l], r->layer_units[l], r->layer_h[l], r->layer_w[l]);
        for (int c = 0; c < C && ok; c++) {
            int units, uniq = gb_dissect_unique_detectors(r, b, l, c, &units);
            total += units;
            printf(" %s %d/%d", gb_broden_category_name(b, c), uniq, units);
            ok = sb_printf(&sum, "%s,%s,%d,%d\n", csv_esc(r->layers[l], e1, sizeof e1), gb_broden_category_name(b, c),
                           units, uniq) &&
                 sb_printf(&json,
                           "    {\"layer\": \"%s\", \"category\": \"%s\", \"detector_units\": %d, "
                           "\"unique_detectors\": %d}%s\n",
                           r->layers[l], gb_broden_category_name(b, c), units, uniq,
                           l + 1 < r->n_layers || c + 1 < C ? "," : "");
        }
        printf("  (unique/units per category; %d detectors)\n", total);
    }
    ok = ok && sb_printf(&json, "  ]\n}\n");
    /* The HTML report: summary table, then units by decreasing IoU per layer. */
    ok = ok && sb_printf(&html,
                         "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>glassbox dissect</title>\n"
                         "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
                         "td,th{border:1px solid #ccc;padding:2px 6px}.u{margin:8px 0}"
                         ".d{color:#060;font-weight:bold}</style></head><body>\n"
                         "<h1>Network Dissection</h1>\n<p>%d images; T<sub>k</sub> = top %g quantile; "
                         "detector: IoU &gt; %g. Each strip shows the unit's top images with the region "
                         "a<sub>k</sub> &gt; T<sub>k</sub> outlined (yellow); the rest is dimmed.</p>\n"
                         "<table><tr><th>layer</th><th>category</th><th>detector units</th><th>unique "
                         "detectors</th></tr>\n",
                         r->n_images, o.quantile > 0 ? o.quantile : 0.005, r->iou_threshold);
    for (int l = 0; l < r->n_layers && ok; l++)
        for (int c = 0; c < C && ok; c++) {
            int units, uniq = gb_dissect_unique_detectors(r, b, l, c, &units);
            ok = sb_printf(&html, "<tr><td>%s</td><td>%s</td><td>%d</td><td>%d</td></tr>\n",
                           html_esc(r->layers[l], e1, sizeof e1), gb_broden_category_name(b, c), units, uniq);
        }
    ok = ok && sb_printf(&html, "</table>\n");
    if (images && ok) {
        snprintf(path, sizeof path, "%s/units", out_dir);
        if (mkdir(path, 0777) == 0) made_units = true;
        else if (errno != EEXIST) {
            gb_cli_error("cannot create directory %s: %s", path, strerror(errno));
            goto done;
        }
    }
    for (int l = 0, u0 = 0; l < r->n_layers && ok; u0 += r->layer_units[l], l++) {
        ok = sb_printf(&html, "<h2>%s</h2>\n", html_esc(r->layers[l], e1, sizeof e1));
        int K = r->layer_units[l];
        int *order = malloc(sizeof *order * (size_t)K);
        if (!order) goto oom2;
        for (int k = 0; k < K; k++) order[k] = u0 + k;
        for (int i = 1; i < K; i++)   /* insertion sort by IoU, descending */
            for (int j = i; j > 0 && r->units[order[j]].iou > r->units[order[j - 1]].iou; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int i = 0; i < K && ok; i++) {
            const gb_dissect_unit *du = &r->units[order[i]];
            char sn[256];
            safe_name(r->layers[l], sn, sizeof sn);
            ok = sb_printf(&html, "<div class=\"u\"><span%s>unit %d: %s (%s) IoU %.3f</span>, T = %.4g<br>\n",
                           du->iou > r->iou_threshold ? " class=\"d\"" : "", du->unit,
                           html_esc(gb_broden_label_name(b, du->label), e1, sizeof e1),
                           du->category >= 0 ? gb_broden_category_name(b, du->category) : "-", du->iou, du->threshold);
            if (images && ok) {
                snprintf(path, sizeof path, "%s/units/%s_%04d.png", out_dir, sn, du->unit);
                gb_image *strip;
                if (gb_dissect_render_unit(ctx, cm.m, &cm.pp, b, r, order[i], &strip)) {
                    gb_cli_error("%s", gb_ctx_errmsg(ctx));
                    free(order);
                    goto done;
                }
                gb_status st = gb_image_write_png(ctx, path, strip);
                gb_image_free(strip);
                if (st || !gb_cli_outputs_add(&outs, path)) {
                    gb_cli_error("%s", st ? gb_ctx_errmsg(ctx) : "out of memory");
                    free(order);
                    goto done;
                }
                ok = sb_printf(&html, "<img src=\"units/%s_%04d.png\" style=\"image-rendering:pixelated;height:%dpx\">",
                               sn, du->unit, cm.pp.height < 96 ? 96 : cm.pp.height);
            }
            ok = ok && sb_printf(&html, "</div>\n");
        }
        free(order);
    }
    ok = ok && sb_printf(&html, "</body></html>\n");
    if (net2vec && ok) {
        ok = sb_printf(&n2v, "layer,category,concept,seg_iou,best_unit,best_unit_iou,cls_acc,best_unit_cls_acc\n");
        for (int l = 0; l < r->n_layers && ok; l++) {
            gb_net2vec_opts no = {0};
            gb_net2vec_result *nr;
            if (gb_net2vec(ctx, cm.m, &cm.pp, b, r->layers[l], &no, &nr)) {
                gb_cli_error("%s", gb_ctx_errmsg(ctx));
                goto done;
            }
            double s1 = 0, s2 = 0;
            for (int c = 0; c < nr->n_concepts && ok; c++) {
                const gb_net2vec_concept *nc = &nr->concepts[c];
                int cat = gb_broden_label_category(b, nc->label);
                s1 += nc->seg_iou / nr->n_concepts;
                s2 += nc->best_unit_iou / nr->n_concepts;
                ok = sb_printf(&n2v, "%s,%s,%s,%.6f,%d,%.6f,%.6f,%.6f\n", csv_esc(r->layers[l], e1, sizeof e1),
                               gb_broden_category_name(b, cat), csv_esc(gb_broden_label_name(b, nc->label), e2, sizeof e2),
                               nc->seg_iou, nc->best_unit, nc->best_unit_iou, nc->cls_acc, nc->best_unit_cls_acc);
            }
            printf("net2vec %s: %d concepts, mean segmentation IoU %.3f (best single unit %.3f)\n", r->layers[l],
                   nr->n_concepts, s1, s2);
            gb_net2vec_result_free(nr);
        }
    }
    if (!ok) goto oom2;
    const char *names[5] = {"units.csv", "units.json", "summary.csv", "report.html", "net2vec.csv"};
    sbuf *bufs[5] = {&csv, &json, &sum, &html, &n2v};
    for (int k = 0; k < (net2vec ? 5 : 4); k++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, names[k]);
        if (!write_file(&outs, path, bufs[k])) goto done;
    }
    printf("wrote %s/units.csv, units.json, summary.csv, report.html%s%s\n", out_dir, net2vec ? ", net2vec.csv" : "",
           images ? ", units/*.png" : "");
    rc = GB_EXIT_OK;
    goto done;
oom2:
    gb_cli_error("out of memory");
done:
    if (rc != GB_EXIT_OK) {
        /* files first, then units/, then the output directory if we made it */
        char made[GB_CLI_PATH_MAX];
        snprintf(made, sizeof made, "%s", outs.made_dir);
        outs.made_dir[0] = 0;
        gb_cli_outputs_rollback(&outs);
        if (made_units) {
            snprintf(path, sizeof path, "%s/units", out_dir);
            rmdir(path);
        }
        if (made[0]) rmdir(made);
    }
    gb_cli_outputs_free(&outs);
    free(csv.p);
    free(json.p);
    free(sum.p);
    free(html.p);
    free(n2v.p);
    gb_dissect_result_free(r);
    gb_broden_free(b);
    gb_cli_model_close(&cm);
    gb_ctx_free(ctx);
    goto out;
oom:
    gb_cli_error("out of memory");
    rc = GB_EXIT_FAIL;
out:
    gb_cli_list_free(&layers);
    gb_cli_list_free(&over);
    return rc;
}
