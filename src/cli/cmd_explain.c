/* cmd_explain.c — `glassbox explain`: attribution maps for images or a .npy
 * batch, written as heatmap panels (input | map | overlay), a comparison grid
 * when several methods run, and optionally the raw attributions as .npy.
 *
 * With no input, explains the default model's first sample image with
 * several methods (the README's first command). Failures print one line
 * "glassbox: ..." and leave no output file behind (every file written so far
 * is removed). */
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "glassbox/explain.h"
#include "glassbox/heatmap.h"
#include "cli/cli_perturb.h"
#include "cli/cli_relevance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The main job's methods when --method is not given (CAM methods join when
 * the registry has them). */
static const char *const default_methods[] = {"saliency", "integrated_gradients", "smoothgrad", "guided_backprop",
                                              "gradcam"};

#define MAX_METHODS 32
#define DEFAULT_OUT_DIR "glassbox_out"

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox explain [--model MODEL] [--image FILE|DIR... | --input x.npy]\n"
            "                        [--method NAME[,NAME...]] [--target K | --target OUTPUT[:i,j,...]]\n"
            "                        [--neuron TENSOR:c[,h,w]] [--layer TENSOR] [--steps N]\n"
            "                        [--integration riemann_left|riemann_right|riemann_middle|\n"
            "                                       riemann_trapezoid|gausslegendre]\n"
            "                        [--samples N] [--noise SIGMA] [--baseline zero|black|blur|uniform|FILE.npy]\n"
            "                        [--blur-sigma PIXELS] [--seed S] [--batch N] [--threads N]\n"
            "                        [--out-dir DIR | --out-png FILE] [--out-npy FILE]\n"
            "                        [--percentile P] [--preproc KEY=VALUE]...\n"
            "\n"
            "Explains the model's prediction (default: each item's top-1 class of the first output)\n"
            "with one or more attribution methods. Writes DIR/<image>_<method>.png per method (input |\n"
            "map | overlay, titled with the method, class and probability), DIR/<image>_comparison.png\n"
            "when several methods run, and with --out-npy the raw attribution (shape of the input, or\n"
            "of --layer; several methods: FILE_<method>.npy). Prints one summary line per method.\n"
            "With no --image/--input: the default model's first sample image, methods\n"
            "saliency,integrated_gradients,smoothgrad,guided_backprop(,gradcam), into ./" DEFAULT_OUT_DIR "/.\n"
            "\n"
            "  --target K          logit K of the first output; OUT:i,j an element of output OUT;\n"
            "                      a class label from MODEL.json also works (--target Sneaker)\n"
            "  --neuron T:c[,h,w]  a unit of any tensor (T:c = channel c's whole map)\n"
            "  --layer T           attribute to hidden tensor T (CAM methods: the feature map)\n"
            "  --steps N           integrated_gradients steps (default 50)\n"
            "  --samples N         smoothgrad family (default 50) / gradient_shap (default 5) draws\n"
            "  --noise SIGMA       noise std as a fraction of the input's range (smoothgrad: 0.15)\n"
            "  --baseline B        zero (default: zeros in the model's input space, as Captum), black\n"
            "                      (the black image, preprocessed), blur (Gaussian, --blur-sigma, default\n"
            "                      max(H,W)/8), uniform (noise in the input's range), or a .npy\n"
            "                      (gradient_shap: a set of baselines)\n"
            "\n");
    gb_cli_perturb_help(f);
    gb_cli_relevance_help(f);
    fprintf(f, "\nmethods:\n");
    for (int i = 0; i < gb_method_count(); i++) {
        const gb_method *m = gb_method_at(i);
        fprintf(f, "  %-21s %s (%s)\n", m->name, m->summary, m->paper);
    }
}

typedef struct {
    const char *model, *npy, *target, *neuron, *layer, *baseline, *out_dir, *out_png, *out_npy;
    const char *methods[MAX_METHODS];
    int n_methods;
    gb_cli_list images, over;
    gb_cli_perturb pt;           /* perturbation methods (cli_perturb.c) */
    gb_cli_relevance rel;        /* relevance methods (cli_relevance.c) */
    gb_explain_opts o;
    double percentile;
    int threads;
} args_t;

static bool parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        gb_cli_error("%s: '%s' is not an integer in %ld..%ld", flag, v, lo, hi);
        return false;
    }
    *out = n;
    return true;
}

static bool parse_double(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi)) {
        gb_cli_error("%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

/* "a,b,c" into a->methods (the strings point into argv, split in place). */
static bool add_methods(args_t *a, char *list) {
    for (char *p = list;;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (!*p) {
            gb_cli_error("--method: empty method name in the list");
            return false;
        }
        if (!gb_method_find(p)) {
            char known[1024];
            size_t o = 0;
            for (int i = 0; i < gb_method_count() && o < sizeof known; i++)
                o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", gb_method_at(i)->name);
            gb_cli_error("--method: unknown method '%s' (known: %s)", p, known);
            return false;
        }
        if (a->n_methods == MAX_METHODS) {
            gb_cli_error("--method: at most %d methods", MAX_METHODS);
            return false;
        }
        a->methods[a->n_methods++] = p;
        if (!c) return true;
        p = c + 1;
    }
}

/* Returns GB_EXIT_OK to go on, else the exit code (help printed: -1). */
static int parse_args(int argc, char **argv, args_t *a) {
    a->o = (gb_explain_opts)GB_EXPLAIN_OPTS_INIT;
    a->percentile = 99.0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        const char *v;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            help(stdout);
            return -1;
        }
        if (arg[0] != '-') {
            gb_cli_error("explain: unexpected argument '%s' (images go after --image)", arg);
            return GB_EXIT_USAGE;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        long n;
        double d;
        if (!strcmp(arg, "--model")) a->model = v;
        else if (!strcmp(arg, "--image")) {
            if (!gb_cli_list_add(&a->images, v)) return GB_EXIT_FAIL;
            while (i + 1 < argc && argv[i + 1][0] != '-')   /* --image a.png b.png dir/ */
                if (!gb_cli_list_add(&a->images, argv[++i])) return GB_EXIT_FAIL;
        } else if (!strcmp(arg, "--input")) a->npy = v;
        else if (!strcmp(arg, "--method")) {
            if (!add_methods(a, argv[i])) return GB_EXIT_USAGE;
        } else if (!strcmp(arg, "--target")) a->target = v;
        else if (!strcmp(arg, "--neuron")) a->neuron = v;
        else if (!strcmp(arg, "--layer")) a->layer = a->o.layer = v;
        else if (!strcmp(arg, "--steps")) {
            if (!parse_int(arg, v, 1, 100000, &n)) return GB_EXIT_USAGE;
            a->o.n_steps = (int)n;
        } else if (!strcmp(arg, "--integration")) {
            a->o.integration = gb_integration_parse(v);
            if (a->o.integration == GB_INTEGRATION_COUNT) {
                gb_cli_error("--integration: unknown method '%s' (riemann_left, riemann_right, riemann_middle, "
                             "riemann_trapezoid, gausslegendre)", v);
                return GB_EXIT_USAGE;
            }
        } else if (!strcmp(arg, "--samples")) {
            if (!parse_int(arg, v, 1, 100000, &n)) return GB_EXIT_USAGE;
            a->o.n_samples = (int)n;
        } else if (!strcmp(arg, "--noise")) {
            if (!parse_double(arg, v, 0, 100, &a->o.noise)) return GB_EXIT_USAGE;
        } else if (!strcmp(arg, "--baseline")) a->baseline = v;
        else if (!strcmp(arg, "--blur-sigma")) {
            if (!parse_double(arg, v, 1e-3, 1e4, &a->o.blur_sigma)) return GB_EXIT_USAGE;
        } else if (!strcmp(arg, "--seed")) {
            char *end;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || v[0] == '-') {
                gb_cli_error("--seed: '%s' is not a non-negative integer", v);
                return GB_EXIT_USAGE;
            }
            a->o.seed = s;
        } else if (!strcmp(arg, "--batch")) {
            if (!parse_int(arg, v, 1, 65536, &n)) return GB_EXIT_USAGE;
            a->o.batch = (int)n;
        } else if (!strcmp(arg, "--threads")) {
            if (!parse_int(arg, v, 1, 256, &n)) return GB_EXIT_USAGE;
            a->threads = (int)n;
        } else if (!strcmp(arg, "--percentile")) {
            if (!parse_double(arg, v, 1e-6, 100, &d)) return GB_EXIT_USAGE;
            a->percentile = d;
        } else if (!strcmp(arg, "--out-dir")) a->out_dir = v;
        else if (!strcmp(arg, "--out-png")) a->out_png = v;
        else if (!strcmp(arg, "--out-npy")) a->out_npy = v;
        else if (!strcmp(arg, "--preproc")) {
            if (!gb_cli_list_add(&a->over, v)) return GB_EXIT_FAIL;
        } else if ((n = gb_cli_perturb_flag(arg, v, &a->o, &a->pt)) != 0) {
            if (n < 0) return GB_EXIT_USAGE;
        } else if ((n = gb_cli_relevance_flag(arg, v, &a->o, &a->rel)) != 0) {
            if (n < 0) return GB_EXIT_USAGE;
        } else {
            gb_cli_error("explain: unknown option '%s' (glassbox explain --help)", arg);
            return GB_EXIT_USAGE;
        }
    }
    if (a->images.n && a->npy) {
        gb_cli_error("explain: give --image or --input, not both");
        return GB_EXIT_USAGE;
    }
    if (a->target && a->neuron) {
        gb_cli_error("explain: give --target or --neuron, not both");
        return GB_EXIT_USAGE;
    }
    if (a->out_png && a->out_dir) {
        gb_cli_error("explain: give --out-dir or --out-png, not both");
        return GB_EXIT_USAGE;
    }
    if (a->out_png && a->n_methods > 1) {
        gb_cli_error("explain: --out-png takes one method; use --out-dir for several");
        return GB_EXIT_USAGE;
    }
    if (a->model && !a->images.n && !a->npy) {
        gb_cli_error("explain: --model needs --image or --input (only the default model has sample images)");
        return GB_EXIT_USAGE;
    }
    if (a->baseline) {
        static const struct { const char *name; gb_baseline_kind k; } kinds[] = {
            {"zero", GB_BASELINE_ZERO}, {"blur", GB_BASELINE_BLUR}, {"uniform", GB_BASELINE_UNIFORM},
            {"noise", GB_BASELINE_UNIFORM}};
        a->o.baseline = GB_BASELINE_TENSOR;
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
            if (!strcmp(a->baseline, kinds[k].name)) a->o.baseline = kinds[k].k;
        if (a->o.baseline == GB_BASELINE_TENSOR && strcmp(a->baseline, "black") &&
            !gb_cli_perturb_baseline_value(a->baseline, &a->pt)) {
            size_t len = strlen(a->baseline);
            if (len < 5 || strcmp(a->baseline + len - 4, ".npy")) {
                gb_cli_error("--baseline: '%s' is not zero, black, blur, uniform, a number or a .npy file", a->baseline);
                return GB_EXIT_USAGE;
            }
        }
    }
    if (!a->n_methods)
        for (size_t k = 0; k < sizeof default_methods / sizeof *default_methods; k++)
            if (gb_method_find(default_methods[k])) a->methods[a->n_methods++] = default_methods[k];
    return GB_EXIT_OK;
}

/* ---- output names ------------------------------------------------------------------ */

/* FILE.npy -> FILE_<method>.npy when several methods run. */
static void npy_name(const char *base, const char *method, bool several, char *buf, size_t cap) {
    if (!several) {
        snprintf(buf, cap, "%s", base);
        return;
    }
    size_t len = strlen(base);
    if (len >= 4 && !strcmp(base + len - 4, ".npy")) snprintf(buf, cap, "%.*s_%s.npy", (int)(len - 4), base, method);
    else snprintf(buf, cap, "%s_%s", base, method);
}

/* ---- the run ---------------------------------------------------------------------- */

typedef struct {
    gb_ctx *ctx;
    args_t *a;
    gb_cli_model cm;
    gb_explainer *e;
    gb_tensor *x;            /* (N, ...) */
    gb_cli_list stems;       /* per item: name stem for files */
    gb_image **seen;         /* per item: what the model saw (NULL if not an image model) */
    double *prob;            /* (N, K) probabilities of output 0, or NULL */
    int64_t K;
    char out0[GB_TARGET_NAME_MAX];
    gb_cli_outputs outs;
    gb_image ***panels;      /* [item][method] for the comparison grid */
} run_t;

/* Stack panels vertically on white, centred: the comparison grid. */
static gb_image *stack_panels(gb_ctx *ctx, gb_image *const *p, int n) {
    int w = 0, h = 0;
    for (int i = 0; i < n; i++) {
        if (p[i]->width > w) w = p[i]->width;
        h += p[i]->height;
    }
    gb_image *g;
    if (gb_image_create(ctx, w, h, 3, &g)) return NULL;
    memset(g->data, 255, g->stride * (size_t)h);
    int y0 = 0;
    for (int i = 0; i < n; i++) {
        int x0 = (w - p[i]->width) / 2;
        for (int y = 0; y < p[i]->height; y++)
            memcpy(g->data + (size_t)(y0 + y) * g->stride + (size_t)x0 * 3, p[i]->data + (size_t)y * p[i]->stride,
                   (size_t)p[i]->width * 3);
        y0 += p[i]->height;
        if (i + 1 < n)   /* a thin gray rule between panels */
            memset(g->data + (size_t)(y0 - 1) * g->stride, 200, (size_t)w * 3);
    }
    return g;
}

/* What was explained for item n, for titles and the summary. */
static void describe_target(const run_t *R, const gb_explanation *r, int64_t n, char *buf, size_t cap) {
    int64_t off = r->target_offset[n];
    if (!strcmp(r->target_tensor, R->out0) && r->target_count == 1 && r->target_ndim == 2 && R->prob) {
        const char *lab = gb_cli_label(&R->cm, off);
        double p = R->prob[n * R->K + off];
        if (lab) snprintf(buf, cap, "'%s' (class %lld, p=%.3f)", lab, (long long)off, p);
        else snprintf(buf, cap, "class %lld (p=%.3f)", (long long)off, p);
        return;
    }
    /* the block's first element as indices after the batch dim */
    char idx[128] = "";
    size_t o = 0;
    int64_t rem = off;
    int64_t strides[GB_MAX_DIMS];
    int64_t s = 1;
    for (int i = r->target_ndim - 1; i >= 1; i--) {
        strides[i] = s;
        s *= r->target_dims[i];
    }
    int64_t cnt = r->target_count;
    for (int i = 1; i < r->target_ndim && o < sizeof idx; i++) {
        bool summed = cnt > 1 && strides[i] < cnt;   /* a dim inside the summed block */
        o += (size_t)snprintf(idx + o, sizeof idx - o, "%s", i > 1 ? "," : "");
        if (summed) o += (size_t)snprintf(idx + o, sizeof idx - o, "*");
        else o += (size_t)snprintf(idx + o, sizeof idx - o, "%lld", (long long)(rem / strides[i]));
        rem %= strides[i];
    }
    snprintf(buf, cap, "%.200s[%.100s]", r->target_tensor, idx);
}

static bool write_png(run_t *R, const char *path, const gb_image *img) {
    if (gb_image_write_png(R->ctx, path, img)) {
        gb_cli_error("%s", gb_ctx_errmsg(R->ctx));
        return false;
    }
    if (!gb_cli_outputs_add(&R->outs, path)) {
        gb_cli_error("out of memory");
        return false;
    }
    return true;
}

/* One method: run, print, draw. */
static bool one_method(run_t *R, int mi, const char *png_dir) {
    args_t *a = R->a;
    const char *method = a->methods[mi];
    gb_explanation *r = NULL;
    if (gb_explain(R->e, method, R->x, &a->o, &r)) {
        gb_cli_error("%s: %s", method, gb_ctx_errmsg(R->ctx));
        return false;
    }
    bool ok = true;
    const gb_method *md = gb_method_find(method);
    if (a->out_npy) {
        char p[GB_CLI_PATH_MAX];
        npy_name(a->out_npy, method, a->n_methods > 1, p, sizeof p);
        if (gb_npy_write(R->ctx, p, r->attr)) {
            gb_cli_error("%s", gb_ctx_errmsg(R->ctx));
            ok = false;
        } else if (!gb_cli_outputs_add(&R->outs, p)) ok = false;
    }
    int64_t N = r->n_items, per = r->attr->numel / N;
    int rank = r->attr->ndim - 1;   /* per item */
    bool drawable = rank >= 2 && rank <= 3;
    for (int64_t n = 0; ok && n < N; n++) {
        char tdesc[512], extra[160] = "", where[GB_CLI_PATH_MAX + 8] = "";
        describe_target(R, r, n, tdesc, sizeof tdesc);
        if (r->delta) {
            size_t o = (size_t)snprintf(extra, sizeof extra, "  delta %+.2e of f(x)-f(x')=%.4g", r->delta[n],
                                        r->value[n] - r->baseline_value[n]);
            if (!strcmp(method, "integrated_gradients") && o < sizeof extra)
                snprintf(extra + o, sizeof extra - o, " [%d steps %s]", a->o.n_steps > 0 ? a->o.n_steps : 50,
                         gb_integration_name(a->o.integration));
        }
        if ((png_dir || a->out_png) && drawable) {
            /* this item's map as a (1, ...) view */
            gb_tensor map = *r->attr;
            map.dims[0] = 1;
            map.numel = per;
            map.data = (float *)r->attr->data + n * per;
            char title[1024];
            snprintf(title, sizeof title, "%.40s - %.400s%s%.200s\n%.200s", method, tdesc, a->layer ? " at " : "",
                     a->layer ? a->layer : "", md->paper);
            gb_heatmap_opts ho = GB_HEATMAP_OPTS_INIT;
            ho.mode = r->mode;
            ho.percentile = a->percentile;
            ho.title = title;
            gb_image *panel = NULL;
            if (gb_heatmap_panel(R->ctx, R->seen ? R->seen[n] : NULL, &map, &ho, &panel)) {
                gb_cli_error("%s: %s", method, gb_ctx_errmsg(R->ctx));
                ok = false;
                break;
            }
            char p[GB_CLI_PATH_MAX];
            if (a->out_png) snprintf(p, sizeof p, "%s", a->out_png);
            else snprintf(p, sizeof p, "%s/%s_%s.png", png_dir, R->stems.v[n], method);
            ok = write_png(R, p, panel);
            if (ok) snprintf(where, sizeof where, "  -> %s", p);
            if (R->panels) R->panels[n][mi] = panel;
            else gb_image_free(panel);
        } else if (png_dir || a->out_png) {
            snprintf(where, sizeof where, "  (no heatmap for a rank-%d attribution)", rank);
        }
        if (ok)
            printf("%-21s %s%starget %s  value %.4g%s  %.2f s%s\n", method, N > 1 ? R->stems.v[n] : "",
                   N > 1 ? "  " : "", tdesc, r->value[n], extra, r->seconds, where);
        if (ok) gb_cli_perturb_report(r, n);
    }
    gb_explanation_free(r);
    return ok;
}

int gb_cmd_explain(int argc, char **argv) {
    args_t a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        gb_cli_list_free(&a.images);
        gb_cli_list_free(&a.over);
        return rc < 0 ? GB_EXIT_OK : rc;
    }
    run_t R;
    memset(&R, 0, sizeof R);
    R.a = &a;
    rc = GB_EXIT_FAIL;
    gb_cli_list files = {0};
    gb_tensor *baseline = NULL;
    gb_image **imgs = NULL;
    int64_t N = 0;
    if (gb_ctx_create(&R.ctx)) {
        gb_cli_error("out of memory");
        goto done;
    }
    if (a.threads) gb_ctx_set_threads(R.ctx, a.threads);
    bool from_images = !a.npy;
    if (!gb_cli_model_open(R.ctx, a.model, (const char *const *)a.over.v, a.over.n, from_images, &R.cm)) goto done;
    /* targets: parse now (usage errors before any work) */
    if (a.target) {
        /* a class label from the sidecar wins over an output name */
        bool is_label = false;
        for (int k = 0; R.cm.sc && k < R.cm.sc->n_labels; k++)
            if (!strcmp(R.cm.sc->labels[k], a.target)) {
                gb_target_default(&a.o.target);
                a.o.target.kind = GB_TARGET_OUTPUT;
                a.o.target.n_index = 1;
                a.o.target.index[0] = k;
                is_label = true;
            }
        if (!is_label && gb_target_parse(R.ctx, a.target, GB_TARGET_OUTPUT, &a.o.target)) {
            gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
            rc = GB_EXIT_USAGE;
            goto done;
        }
    } else if (a.neuron && gb_target_parse(R.ctx, a.neuron, GB_TARGET_NEURON, &a.o.target)) {
        gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
        rc = GB_EXIT_USAGE;
        goto done;
    }
    if (a.baseline && !strcmp(a.baseline, "black")) {
        /* the all-black image through the model's preprocessing */
        gb_image *black = NULL;
        if (!R.cm.has_pp) {
            gb_cli_error("--baseline black: %s takes no images (no preprocessing known)", R.cm.path);
            goto done;
        }
        if (gb_image_create(R.ctx, R.cm.pp.width, R.cm.pp.height, R.cm.pp.channels, &black) ||
            gb_preproc_image(R.ctx, &R.cm.pp, black, &baseline)) {
            gb_image_free(black);
            gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
            goto done;
        }
        gb_image_free(black);
        a.o.baseline_tensor = baseline;
    } else if (a.o.baseline == GB_BASELINE_TENSOR && !a.pt.has_value) {
        if (gb_npy_read(R.ctx, a.baseline, &baseline) ||
            (baseline->dtype != GB_DTYPE_F32 && gb_tensor_cast(R.ctx, baseline, GB_DTYPE_F32))) {
            gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
            goto done;
        }
        a.o.baseline_tensor = baseline;
    }
    a.o.layout = R.cm.has_pp ? R.cm.pp.layout : GB_LAYOUT_NCHW;

    /* the input */
    if (a.npy) {
        if (gb_npy_read(R.ctx, a.npy, &R.x) || (R.x->dtype != GB_DTYPE_F32 && gb_tensor_cast(R.ctx, R.x, GB_DTYPE_F32))) {
            gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
            goto done;
        }
        if (R.x->ndim < 1 || R.x->dims[0] < 1) {
            gb_cli_error("explain: %s holds no batch of inputs", a.npy);
            goto done;
        }
        N = R.x->dims[0];
        char stem[GB_CLI_PATH_MAX];
        gb_cli_stem(a.npy, stem, sizeof stem);
        for (int64_t n = 0; n < N; n++) {
            char s[GB_CLI_PATH_MAX + 24];
            if (N > 1) snprintf(s, sizeof s, "%s_%lld", stem, (long long)n);
            else snprintf(s, sizeof s, "%s", stem);
            if (!gb_cli_list_add(&R.stems, s)) goto oom;
        }
    } else {
        if (!a.images.n) {
            char sample[GB_CLI_PATH_MAX];
            if (!R.cm.is_default || !gb_cli_default_sample(&R.cm, sample, sizeof sample)) {
                gb_cli_error("explain: no --image or --input given and no sample image beside %s", R.cm.path);
                goto done;
            }
            if (!gb_cli_list_add(&a.images, sample)) goto oom;
        }
        if (!gb_cli_collect_images((const char *const *)a.images.v, a.images.n, &files)) goto done;
        N = files.n;
        imgs = calloc((size_t)N, sizeof *imgs);
        if (!imgs) goto oom;
        for (int64_t n = 0; n < N; n++) {
            if (gb_image_load(R.ctx, files.v[n], &imgs[n])) {
                gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
                goto done;
            }
            char stem[GB_CLI_PATH_MAX];
            gb_cli_stem(files.v[n], stem, sizeof stem);
            if (!gb_cli_list_add(&R.stems, stem)) goto oom;
        }
        if (gb_preproc_batch(R.ctx, &R.cm.pp, (const gb_image *const *)imgs, (int)N, &R.x)) {
            gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
            goto done;
        }
    }
    if (!gb_cli_perturb_prepare(R.ctx, &a.pt, R.x, &a.o)) goto done;
    gb_cli_relevance_prepare(&a.rel, R.cm.has_pp ? &R.cm.pp : NULL, &a.o);
    if (a.out_png && N > 1) {
        gb_cli_error("explain: --out-png takes one input item (%lld given); use --out-dir", (long long)N);
        rc = GB_EXIT_USAGE;
        goto done;
    }
    if (gb_explainer_create(R.ctx, R.cm.m, &R.e)) {
        gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
        goto done;
    }
    /* probabilities of output 0 at x, for titles */
    {
        gb_value_info ov;
        gb_model_output(R.cm.m, 0, &ov);
        snprintf(R.out0, sizeof R.out0, "%s", ov.name);
        gb_session *s = gb_explainer_session(R.e);
        const gb_tensor *in[1] = {R.x};
        if (gb_session_run(s, in, 1)) {
            gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
            goto done;
        }
        const gb_tensor *y = gb_session_output(s, 0);
        if (y && y->dtype == GB_DTYPE_F32 && y->ndim == 2 && y->dims[0] == N) {
            R.K = y->dims[1];
            R.prob = malloc(sizeof *R.prob * (size_t)(N * R.K));
            if (!R.prob) goto oom;
            for (int64_t n = 0; n < N; n++) gb_cli_probs(&R.cm, (const float *)y->data + n * R.K, R.K, R.prob + n * R.K);
        }
    }
    /* the images the model saw, for the panels */
    if (R.cm.has_pp && R.x->ndim == 4) {
        R.seen = calloc((size_t)N, sizeof *R.seen);
        if (!R.seen) goto oom;
        for (int64_t n = 0; n < N; n++)
            if (gb_preproc_inverse(R.ctx, &R.cm.pp, R.x, n, &R.seen[n])) {
                gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
                goto done;
            }
    }
    const char *png_dir = NULL;
    if (!a.out_png && (a.out_dir || !a.out_npy)) {
        png_dir = a.out_dir ? a.out_dir : DEFAULT_OUT_DIR;
        if (!gb_cli_outputs_mkdir(&R.outs, png_dir)) goto done;
    }
    if (png_dir && a.n_methods > 1) {
        R.panels = calloc((size_t)N, sizeof *R.panels);
        if (!R.panels) goto oom;
        for (int64_t n = 0; n < N; n++)
            if (!(R.panels[n] = calloc((size_t)a.n_methods, sizeof **R.panels))) goto oom;
    }
    printf("model %s; %lld item%s; methods:", R.cm.path, (long long)N, N > 1 ? "s" : "");
    for (int m = 0; m < a.n_methods; m++) printf(" %s", a.methods[m]);
    printf("\n");
    for (int m = 0; m < a.n_methods; m++)
        if (!one_method(&R, m, png_dir)) goto done;
    if (R.panels) {
        for (int64_t n = 0; n < N; n++) {
            int np = 0;
            gb_image *list[MAX_METHODS];
            for (int m = 0; m < a.n_methods; m++)
                if (R.panels[n][m]) list[np++] = R.panels[n][m];
            if (np < 2) continue;
            gb_image *grid = stack_panels(R.ctx, list, np);
            if (!grid) {
                gb_cli_error("%s", gb_ctx_errmsg(R.ctx));
                goto done;
            }
            char p[GB_CLI_PATH_MAX];
            snprintf(p, sizeof p, "%s/%s_comparison.png", png_dir, R.stems.v[n]);
            bool ok = write_png(&R, p, grid);
            gb_image_free(grid);
            if (!ok) goto done;
            printf("comparison grid -> %s\n", p);
        }
    }
    rc = GB_EXIT_OK;
    goto done;
oom:
    gb_cli_error("out of memory");
done:
    if (rc != GB_EXIT_OK) gb_cli_outputs_rollback(&R.outs);
    gb_cli_outputs_free(&R.outs);
    if (R.panels) {
        for (int64_t n = 0; n < N; n++) {
            for (int m = 0; R.panels[n] && m < a.n_methods; m++) gb_image_free(R.panels[n][m]);
            free(R.panels[n]);
        }
        free(R.panels);
    }
    if (R.seen)
        for (int64_t n = 0; n < N; n++) gb_image_free(R.seen[n]);
    free(R.seen);
    if (imgs)
        for (int64_t n = 0; n < N; n++) gb_image_free(imgs[n]);
    free(imgs);
    free(R.prob);
    gb_tensor_free(baseline);
    gb_cli_perturb_free(&a.pt);
    gb_tensor_free(R.x);
    gb_explainer_free(R.e);
    gb_cli_model_close(&R.cm);
    gb_cli_list_free(&R.stems);
    gb_cli_list_free(&files);
    gb_cli_list_free(&a.images);
    gb_cli_list_free(&a.over);
    gb_ctx_free(R.ctx);
    return rc;
}
