/* cmd_probe.c — `glassbox probe`: linear classifier probes (Alain & Bengio
 * 2016) on chosen layers of a model, for a labeled Broden-format dataset. */
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "glassbox/concepts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox probe [--model MODEL] --data BRODEN_DIR --layer TENSOR[,TENSOR...]\n"
            "                      [--label CATEGORY] [--max-features N] [--epochs N] [--l2 X]\n"
            "                      [--max-images N] [--csv FILE] [--svg FILE] [--threads N] [--preproc KEY=VALUE]...\n"
            "Linear classifier probes (Alain & Bengio 2016): a softmax regression per layer, trained\n"
            "on the activations of the split 'train' images to predict their whole-image label of\n"
            "CATEGORY (default scene), tested on the other images. The model's input name probes the\n"
            "pixels (the logistic-regression baseline). Layers wider than N values (default 4096) are\n"
            "average-pooled over a spatial grid first. Prints a table; --csv writes it, --svg plots\n"
            "test and train accuracy against depth.\n");
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

static bool write_file(const char *path, const sbuf *b) {
    char tmp[GB_CLI_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(b->p, 1, b->len, f) == b->len;
    if (f && fclose(f) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        gb_cli_error("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

/* A line plot of train and test accuracy per layer, as SVG text. */
static bool plot_svg(sbuf *s, const gb_probe_result *r) {
    int W = 120 + 90 * r->n_layers, H = 300, x0 = 60, y0 = 20, ph = 200;
    bool ok = sb_printf(s,
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
                        "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                        W, H);
    for (int t = 0; t <= 4 && ok; t++) {
        int y = y0 + ph - ph * t / 4;
        ok = sb_printf(s, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%d\" "
                          "text-anchor=\"end\">%.2f</text>\n",
                       x0, y, W - 20, y, x0 - 4, y + 4, t / 4.0);
    }
    const double *series[2] = {r->test_acc, r->train_acc};
    const char *color[2] = {"#c00", "#06c"}, *name[2] = {"test", "train"};
    for (int k = 0; k < 2 && ok; k++) {
        ok = sb_printf(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color[k]);
        for (int l = 0; l < r->n_layers && ok; l++)
            ok = sb_printf(s, "%d,%.1f ", x0 + 40 + 90 * l, y0 + ph - ph * series[k][l]);
        ok = ok && sb_printf(s, "\"/>\n<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", W - 60, y0 + 12 + 14 * k,
                             color[k], name[k]);
    }
    for (int l = 0; l < r->n_layers && ok; l++)
        ok = sb_printf(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.14s</text>\n", x0 + 40 + 90 * l,
                       y0 + ph + 18, r->layers[l]);
    ok = ok && sb_printf(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">linear probe accuracy by layer "
                            "(chance %.2f)</text>\n</svg>\n",
                         W / 2, H - 20, 1.0 / r->n_classes);
    return ok;
}

int gb_cmd_probe(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *csv = NULL, *svg = NULL;
    gb_cli_list layers = {0}, over = {0};
    gb_probe_opts o = {0};
    int threads = 0;
    int rc = GB_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            rc = GB_EXIT_OK;
            goto out;
        }
        static const char *const with_value[] = {"--model", "--data", "--layer", "--label", "--max-features",
                                                 "--epochs", "--l2", "--max-images", "--csv", "--svg", "--threads",
                                                 "--preproc"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
        if (!known) {
            gb_cli_error("probe: unknown argument '%s' (glassbox probe --help)", a);
            goto out;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) goto out;
        char *end;
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--label")) o.label_category = v;
        else if (!strcmp(a, "--csv")) csv = v;
        else if (!strcmp(a, "--svg")) svg = v;
        else if (!strcmp(a, "--preproc")) {
            if (!gb_cli_list_add(&over, v)) goto oom;
        } else if (!strcmp(a, "--layer")) {
            char buf[GB_CLI_PATH_MAX];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
                if (!gb_cli_list_add(&layers, tok)) goto oom;
        } else if (!strcmp(a, "--l2")) {
            double d = strtod(v, &end);
            if (*end || !*v || !(d > 0)) {
                gb_cli_error("--l2: '%s' is not a positive number", v);
                goto out;
            }
            o.linear.l2 = d;
        } else {
            long n = strtol(v, &end, 10);
            if (*end || !*v || n < 1 || n > 100000000L) {
                gb_cli_error("%s: '%s' is not a positive integer", a, v);
                goto out;
            }
            if (!strcmp(a, "--max-features")) o.max_features = (int)n;
            else if (!strcmp(a, "--epochs")) o.linear.epochs = (int)n;
            else if (!strcmp(a, "--max-images")) o.max_images = (int)n;
            else threads = (int)n;
        }
    }
    if (!data || !layers.n) {
        gb_cli_error("probe: give --data BRODEN_DIR and --layer TENSOR[,...] (glassbox probe --help)");
        goto out;
    }
    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm = {0};
    gb_broden *b = NULL;
    gb_probe_result *r = NULL;
    sbuf cs = {0}, sv = {0};
    if (gb_ctx_create(&ctx)) {
        gb_cli_error("out of memory");
        goto done;
    }
    if (threads) gb_ctx_set_threads(ctx, threads);
    if (!gb_cli_model_open(ctx, model_path, (const char *const *)over.v, over.n, true, &cm)) goto done;
    if (gb_broden_open(ctx, data, &b) ||
        gb_probe(ctx, cm.m, &cm.pp, b, (const char *const *)layers.v, layers.n, &o, &r)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto done;
    }
    printf("linear probes: %d train / %d test images, %d classes (chance %.3f)\n", r->n_train, r->n_test,
           r->n_classes, 1.0 / r->n_classes);
    printf("%-24s %10s %10s %10s\n", "layer", "features", "train_acc", "test_acc");
    bool ok = sb_printf(&cs, "layer,features,train_acc,test_acc\n");
    for (int l = 0; l < r->n_layers; l++) {
        printf("%-24s %10lld %10.4f %10.4f\n", r->layers[l], (long long)r->dims[l], r->train_acc[l], r->test_acc[l]);
        ok = ok && sb_printf(&cs, "%s,%lld,%.6f,%.6f\n", r->layers[l], (long long)r->dims[l], r->train_acc[l],
                             r->test_acc[l]);
    }
    if (svg) ok = ok && plot_svg(&sv, r);
    if (!ok) {
        gb_cli_error("out of memory");
        goto done;
    }
    if (csv && !write_file(csv, &cs)) goto done;
    if (svg && !write_file(svg, &sv)) {
        if (csv) unlink(csv);
        goto done;
    }
    rc = GB_EXIT_OK;
done:
    free(cs.p);
    free(sv.p);
    gb_probe_result_free(r);
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
