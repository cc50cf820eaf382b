/* cmd_tcav.c — `glassbox tcav`: Testing with Concept Activation Vectors
 * (Kim et al. 2018): is class K sensitive to a concept at a layer? */
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "glassbox/concepts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox tcav [--model MODEL] --layer TENSOR --concept DIR --random DIR --random DIR [...]\n"
            "                     --class-images DIR --target K --out FILE.json [--relative DIR]...\n"
            "                     [--classifier logistic|svm] [--l2 X] [--epochs N] [--alpha A] [--seed S]\n"
            "                     [--threads N]\n"
            "                     [--preproc KEY=VALUE]...\n"
            "TCAV (Kim et al. 2018). For each random counterexample set R_i, a linear classifier\n"
            "(default logistic regression; svm = hinge loss; L2 penalty X, default 1e-3; N full-batch\n"
            "Adam steps, default 200) separates the layer's activations of the\n"
            "concept images from R_i's; its unit normal is the CAV (accuracy on a held-out third is\n"
            "reported). The TCAV score is the share of the class images whose logit K increases along\n"
            "the CAV (positive directional derivative). The null: CAVs of R_i against R_(i+1). A\n"
            "two-sided t-test of the concept's scores against the null's gives the p-value; significant\n"
            "when p < alpha (default 0.05). Testing several concepts or classes, divide alpha by the\n"
            "number of tests (Bonferroni, as the paper does). --relative DIR adds the relative CAV of\n"
            "the concept against another concept's images and its TCAV score. At least 2 --random\n"
            "sets (the paper uses many, e.g. 10-50).\n");
}

typedef struct { char *p; size_t len, cap; } sbuf;
static bool sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
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

/* The images of a directory as one preprocessed batch. */
static bool load_dir(gb_ctx *ctx, const gb_cli_model *cm, const char *dir, gb_tensor **out) {
    gb_cli_list files = {0};
    const char *args[1] = {dir};
    if (!gb_cli_collect_images(args, 1, &files)) return false;
    gb_image **imgs = calloc((size_t)files.n, sizeof *imgs);
    bool ok = imgs != NULL;
    for (int i = 0; ok && i < files.n; i++)
        if (gb_image_load(ctx, files.v[i], &imgs[i])) ok = false;
    if (ok && gb_preproc_batch(ctx, &cm->pp, (const gb_image *const *)imgs, files.n, out)) ok = false;
    if (!ok) gb_cli_error("%s", imgs ? gb_ctx_errmsg(ctx) : "out of memory");
    for (int i = 0; imgs && i < files.n; i++) gb_image_free(imgs[i]);
    free(imgs);
    gb_cli_list_free(&files);
    return ok;
}

static void json_str(sbuf *b, const char *s, bool *ok) {
    *ok = *ok && sb_printf(b, "\"");
    for (; *s && *ok; s++) {
        if (*s == '"' || *s == '\\') *ok = sb_printf(b, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) *ok = sb_printf(b, "\\u%04x", *s);
        else *ok = sb_printf(b, "%c", *s);
    }
    *ok = *ok && sb_printf(b, "\"");
}

static void json_nums(sbuf *b, const double *v, int n, bool *ok) {
    *ok = *ok && sb_printf(b, "[");
    for (int i = 0; i < n && *ok; i++) *ok = sb_printf(b, "%s%.6g", i ? ", " : "", v[i]);
    *ok = *ok && sb_printf(b, "]");
}

int gb_cmd_tcav(int argc, char **argv) {
    const char *model_path = NULL, *layer = NULL, *concept = NULL, *class_dir = NULL, *out = NULL;
    long long target = -1;
    gb_cli_list randoms = {0}, relatives = {0}, over = {0};
    gb_tcav_opts o = {0};
    int threads = 0;
    int rc = GB_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            rc = GB_EXIT_OK;
            goto out;
        }
        static const char *const with_value[] = {"--model", "--layer", "--concept", "--random", "--class-images",
                                                 "--target", "--out", "--relative", "--classifier", "--alpha",
                                                 "--seed", "--threads", "--preproc", "--l2", "--epochs"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
        if (!known) {
            gb_cli_error("tcav: unknown argument '%s' (glassbox tcav --help)", a);
            goto out;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) goto out;
        char *end;
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--layer")) layer = v;
        else if (!strcmp(a, "--concept")) concept = v;
        else if (!strcmp(a, "--class-images")) class_dir = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--random")) {
            if (!gb_cli_list_add(&randoms, v)) goto oom;
        } else if (!strcmp(a, "--relative")) {
            if (!gb_cli_list_add(&relatives, v)) goto oom;
        } else if (!strcmp(a, "--preproc")) {
            if (!gb_cli_list_add(&over, v)) goto oom;
        } else if (!strcmp(a, "--classifier")) {
            if (!strcmp(v, "logistic")) o.linear.kind = GB_LINEAR_LOGISTIC;
            else if (!strcmp(v, "svm")) o.linear.kind = GB_LINEAR_SVM;
            else {
                gb_cli_error("--classifier: '%s' is not logistic or svm", v);
                goto out;
            }
        } else if (!strcmp(a, "--l2")) {
            double d = strtod(v, &end);
            if (*end || !*v || !(d > 0)) {
                gb_cli_error("--l2: '%s' is not a positive number", v);
                goto out;
            }
            o.linear.l2 = d;
        } else if (!strcmp(a, "--alpha")) {
            double d = strtod(v, &end);
            if (*end || !*v || !(d > 0 && d < 1)) {
                gb_cli_error("--alpha: '%s' is not a number in (0, 1)", v);
                goto out;
            }
            o.alpha = d;
        } else {
            long long n = strtoll(v, &end, 10);
            if (*end || !*v || n < 0 || (!strcmp(a, "--threads") && (n < 1 || n > 1024))) {
                gb_cli_error("%s: '%s' is not a valid non-negative integer", a, v);
                goto out;
            }
            if (!strcmp(a, "--target")) target = n;
            else if (!strcmp(a, "--epochs")) {
                if (n < 1 || n > 1000000) {
                    gb_cli_error("--epochs: '%s' is not a positive integer", v);
                    goto out;
                }
                o.linear.epochs = (int)n;
            }
            else if (!strcmp(a, "--seed")) o.linear.seed = (uint64_t)n;
            else threads = (int)n;
        }
    }
    if (!layer || !concept || !class_dir || target < 0 || !out) {
        gb_cli_error("tcav: give --layer, --concept, --random (twice or more), --class-images, --target and --out "
                     "(glassbox tcav --help)");
        goto out;
    }
    if (randoms.n < 2) {
        gb_cli_error("tcav: give at least 2 --random sets (the significance test needs random CAVs)");
        goto out;
    }

    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm = {0};
    gb_tensor *cx = NULL, *kx = NULL, **rx = calloc((size_t)randoms.n, sizeof *rx);
    gb_tcav_result res = {0};
    sbuf js = {0};
    bool ok = true;
    if (!rx || gb_ctx_create(&ctx)) {
        gb_cli_error("out of memory");
        goto done;
    }
    if (threads) gb_ctx_set_threads(ctx, threads);
    if (!gb_cli_model_open(ctx, model_path, (const char *const *)over.v, over.n, true, &cm)) goto done;
    if (!load_dir(ctx, &cm, concept, &cx) || !load_dir(ctx, &cm, class_dir, &kx)) goto done;
    for (int i = 0; i < randoms.n; i++)
        if (!load_dir(ctx, &cm, randoms.v[i], &rx[i])) goto done;
    if (gb_tcav(ctx, cm.m, layer, target, cx, (const gb_tensor *const *)rx, randoms.n, kx, &o, &res)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto done;
    }
    double alpha = o.alpha > 0 ? o.alpha : 0.05;
    const char *lab = gb_cli_label(&cm, target);
    ok = sb_printf(&js, "{\n  \"model\": ");
    json_str(&js, cm.path, &ok);
    ok = ok && sb_printf(&js, ",\n  \"layer\": ");
    json_str(&js, layer, &ok);
    ok = ok && sb_printf(&js, ",\n  \"concept\": ");
    json_str(&js, concept, &ok);
    ok = ok && sb_printf(&js, ",\n  \"target\": %lld,\n  \"target_label\": ", target);
    json_str(&js, lab ? lab : "", &ok);
    ok = ok && sb_printf(&js, ",\n  \"classifier\": \"%s\",\n  \"activation_dim\": %lld,\n  \"class_images\": %lld,\n",
                         o.linear.kind == GB_LINEAR_SVM ? "svm" : "logistic", (long long)res.dim,
                         (long long)kx->dims[0]);
    ok = ok && sb_printf(&js, "  \"tcav_scores\": ");
    json_nums(&js, res.scores, res.n_runs, &ok);
    ok = ok && sb_printf(&js, ",\n  \"cav_accuracies\": ");
    json_nums(&js, res.accuracies, res.n_runs, &ok);
    ok = ok && sb_printf(&js, ",\n  \"random_tcav_scores\": ");
    json_nums(&js, res.random_scores, res.n_runs, &ok);
    double mean_acc = 0;
    for (int i = 0; i < res.n_runs; i++) mean_acc += res.accuracies[i] / res.n_runs;
    ok = ok && sb_printf(&js,
                         ",\n  \"tcav_mean\": %.6g,\n  \"tcav_std\": %.6g,\n  \"random_mean\": %.6g,\n"
                         "  \"random_std\": %.6g,\n  \"cav_accuracy_mean\": %.6g,\n  \"t\": %.6g,\n"
                         "  \"p_value\": %.6g,\n  \"alpha\": %g,\n  \"significant\": %s,\n"
                         "  \"note\": \"two-sided two-sample t-test of the concept's TCAV scores against random "
                         "CAVs' (Kim et al. 2018, Sec. 3.3); when testing m concepts or classes, compare p with "
                         "alpha / m (Bonferroni)\"",
                         res.mean, res.std, res.random_mean, res.random_std, mean_acc, isfinite(res.t) ? res.t : 1e308 * (res.t > 0 ? 1 : -1),
                         res.p_value, alpha, res.significant ? "true" : "false");
    printf("TCAV(%s, class %lld%s%s%s, %s) = %.3f +- %.3f over %d random sets (random CAVs: %.3f +- %.3f); "
           "CAV accuracy %.3f; p = %.3g: %s\n",
           concept, target, lab ? " '" : "", lab ? lab : "", lab ? "'" : "", layer, res.mean, res.std, res.n_runs,
           res.random_mean, res.random_std, mean_acc, res.p_value, res.significant ? "significant" : "not significant");
    if (relatives.n) ok = ok && sb_printf(&js, ",\n  \"relative\": [");
    for (int r = 0; r < relatives.n && ok; r++) {
        gb_tensor *ox = NULL, *ca = NULL, *oa = NULL;
        gb_session *s = NULL;
        float *cav = NULL;
        double acc = 0, score = 0;
        bool good = load_dir(ctx, &cm, relatives.v[r], &ox);
        if (good && (gb_session_create(cm.m, &s) || gb_layer_activations(s, cx, layer, &ca) ||
                     gb_layer_activations(s, ox, layer, &oa) || !(cav = malloc(sizeof *cav * (size_t)ca->dims[1])) ||
                     gb_cav_train(ctx, ca, oa, &o, cav, &acc) || gb_tcav_score(s, kx, layer, target, cav, NULL, &score))) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            good = false;
        }
        if (good) {
            ok = sb_printf(&js, "%s\n    {\"other\": ", r ? "," : "");
            json_str(&js, relatives.v[r], &ok);
            ok = ok && sb_printf(&js, ", \"cav_accuracy\": %.6g, \"tcav_score\": %.6g}", acc, score);
            printf("relative TCAV(%s vs %s) = %.3f (CAV accuracy %.3f)\n", concept, relatives.v[r], score, acc);
        }
        free(cav);
        gb_tensor_free(ox), gb_tensor_free(ca), gb_tensor_free(oa);
        gb_session_free(s);
        if (!good) goto done;
    }
    if (relatives.n) ok = ok && sb_printf(&js, "\n  ]");
    ok = ok && sb_printf(&js, "\n}\n");
    if (!ok) {
        gb_cli_error("out of memory");
        goto done;
    }
    char tmp[GB_CLI_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool wok = f && fwrite(js.p, 1, js.len, f) == js.len;
    if (f && fclose(f) != 0) wok = false;
    if (wok && rename(tmp, out) != 0) wok = false;
    if (!wok) {
        gb_cli_error("cannot write %s: %s", out, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = GB_EXIT_OK;
done:
    free(js.p);
    gb_tcav_result_clear(&res);
    gb_tensor_free(cx);
    gb_tensor_free(kx);
    for (int i = 0; rx && i < randoms.n; i++) gb_tensor_free(rx[i]);
    free(rx);
    gb_cli_model_close(&cm);
    gb_ctx_free(ctx);
    goto out;
oom:
    gb_cli_error("out of memory");
    rc = GB_EXIT_FAIL;
out:
    gb_cli_list_free(&randoms);
    gb_cli_list_free(&relatives);
    gb_cli_list_free(&over);
    return rc;
}
