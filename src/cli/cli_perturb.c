/* cli_perturb.c — see cli_perturb.h. */
#include "cli/cli_perturb.h"
#include "cli/cli.h"
#include "glassbox/segment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void gb_cli_perturb_help(FILE *f) {
    fprintf(f,
            "perturbation methods (occlusion, feature_ablation, shapley_sampling, rise, lime, kernel_shap):\n"
            "  --baseline VALUE    also a number: occluded / switched-off pixels take it (default 0)\n"
            "  --window H,W        occlusion window in pixels, over all channels (default H/8,W/8)\n"
            "  --stride SH,SW      occlusion strides (default half the window)\n"
            "  --mask FILE         feature mask: a label map .npy ((H,W), or (N,H,W) per item, or one\n"
            "                      label per element) or an image (one feature per colour)\n"
            "  --grid H,W          feature mask: a grid of H x W pixel cells\n"
            "  --segments N        feature mask: N SLIC superpixels (the default, N = 50)\n"
            "  --compactness M     SLIC compactness (default 10)\n"
            "  --samples N         rise masks, lime / kernel_shap coalitions (default 1000),\n"
            "                      shapley_sampling permutations (default 25)\n"
            "  --surrogate K       lime's model: lasso (default, alpha 0.01), ridge (alpha 1), linear\n"
            "  --alpha A           its regularisation\n"
            "  --kernel-width W    lime's kernel width on cosine distance (default 1)\n"
            "  --rise-cells S      RISE's mask grid (default 7)   --rise-p P  keep probability (0.5)\n");
}

static bool parse_pair(const char *flag, const char *v, int lo, int hi, int out[2]) {
    char *end;
    long a = strtol(v, &end, 10);
    if (end == v || (*end != ',' && *end != 'x')) {
        if (end != v && !*end && a >= lo && a <= hi) {   /* one number: both dims */
            out[0] = out[1] = (int)a;
            return true;
        }
        gb_cli_error("%s: '%s' is not H,W (integers in %d..%d)", flag, v, lo, hi);
        return false;
    }
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (end == p || *end || a < lo || a > hi || b < lo || b > hi) {
        gb_cli_error("%s: '%s' is not H,W (integers in %d..%d)", flag, v, lo, hi);
        return false;
    }
    out[0] = (int)a;
    out[1] = (int)b;
    return true;
}

static bool parse_num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi)) {
        gb_cli_error("%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

int gb_cli_perturb_flag(const char *arg, const char *v, gb_explain_opts *o, gb_cli_perturb *p) {
    double d = 0;
    if (!strcmp(arg, "--window")) return parse_pair(arg, v, 1, 1 << 20, o->window) ? 1 : -1;
    if (!strcmp(arg, "--stride")) return parse_pair(arg, v, 1, 1 << 20, o->stride) ? 1 : -1;
    if (!strcmp(arg, "--grid")) return parse_pair(arg, v, 1, 1 << 20, o->grid) ? 1 : -1;
    if (!strcmp(arg, "--mask")) {
        p->mask_path = v;
        return 1;
    }
    if (!strcmp(arg, "--segments")) {
        if (!parse_num(arg, v, 1, 1e6, &d)) return -1;
        if (d != floor(d)) {
            gb_cli_error("--segments: '%s' is not an integer", v);
            return -1;
        }
        o->segments = (int)d;
        return 1;
    }
    if (!strcmp(arg, "--compactness")) return parse_num(arg, v, 1e-6, 1e6, &o->compactness) ? 1 : -1;
    if (!strcmp(arg, "--alpha")) return parse_num(arg, v, 1e-12, 1e12, &o->alpha) ? 1 : -1;
    if (!strcmp(arg, "--kernel-width")) return parse_num(arg, v, 1e-9, 1e9, &o->kernel_width) ? 1 : -1;
    if (!strcmp(arg, "--rise-p")) return parse_num(arg, v, 1e-6, 1, &o->rise_p) ? 1 : -1;
    if (!strcmp(arg, "--rise-cells")) {
        if (!parse_num(arg, v, 1, 4096, &d)) return -1;
        if (d != floor(d)) {
            gb_cli_error("--rise-cells: '%s' is not an integer", v);
            return -1;
        }
        o->rise_cells = (int)d;
        return 1;
    }
    if (!strcmp(arg, "--surrogate")) {
        static const char *const names[GB_SURROGATE_COUNT] = {"lasso", "ridge", "linear"};
        for (int k = 0; k < GB_SURROGATE_COUNT; k++)
            if (!strcmp(v, names[k])) {
                o->surrogate = (gb_surrogate)k;
                return 1;
            }
        gb_cli_error("--surrogate: unknown model '%s' (lasso, ridge, linear)", v);
        return -1;
    }
    return 0;
}

bool gb_cli_perturb_baseline_value(const char *b, gb_cli_perturb *p) {
    char *end;
    double d = strtod(b, &end);
    if (!*b || *end || !isfinite(d)) return false;
    p->has_value = true;
    p->value = d;
    return true;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Shown once a run has taken 2 s (counted from its first pass), refreshed
 * every half second, ended with a newline when the rows are all done. */
static void progress(void *user, int64_t done, int64_t total) {
    gb_cli_perturb *p = user;
    double t = now();
    if (done <= p->prev || p->t0 == 0) {   /* a new run */
        p->t0 = t;
        p->shown = false;
    }
    p->prev = done;
    bool end = done >= total;
    if ((!p->shown && t - p->t0 < 2.0) || (!end && p->shown && t - p->last < 0.5)) {
        if (end) p->prev = 0, p->t0 = 0;
        return;
    }
    p->shown = true;
    p->last = t;
    double eta = done > 0 ? (t - p->t0) * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r  %lld/%lld forward rows, %.0f s, ~%.0f s left   ", (long long)done, (long long)total,
            t - p->t0, eta);
    if (end) {
        fputc('\n', stderr);
        p->shown = false;
        p->prev = 0;
        p->t0 = 0;
    }
    fflush(stderr);
}

bool gb_cli_perturb_prepare(gb_ctx *ctx, gb_cli_perturb *p, const gb_tensor *x, gb_explain_opts *o) {
    if (p->has_value) {
        int64_t dims[GB_MAX_DIMS];
        memcpy(dims, x->dims, sizeof dims);
        dims[0] = 1;
        if (gb_tensor_create(ctx, GB_DTYPE_F32, x->ndim, dims, &p->baseline)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            return false;
        }
        float *b = p->baseline->data;
        for (int64_t i = 0; i < p->baseline->numel; i++) b[i] = (float)p->value;
        o->baseline = GB_BASELINE_TENSOR;
        o->baseline_tensor = p->baseline;
    }
    if (p->mask_path) {
        size_t len = strlen(p->mask_path);
        bool npy = len >= 4 && !strcmp(p->mask_path + len - 4, ".npy");
        /* a .npy goes to the method as is (it may hold one map per item);
         * an image is read as one map, one label per colour */
        gb_status st = npy ? gb_npy_read(ctx, p->mask_path, &p->mask) : gb_segment_load(ctx, p->mask_path, &p->mask);
        if (st) {
            gb_cli_error("--mask: %s", gb_ctx_errmsg(ctx));
            return false;
        }
        o->feature_mask = p->mask;
    }
    o->progress = progress;
    o->progress_user = p;
    return true;
}

void gb_cli_perturb_report(const gb_explanation *r, int64_t n) {
    if (!r->fit_r2 || !r->features || !r->attr) return;
    const gb_tensor *F = r->features, *A = r->attr;
    int64_t L = F->numel / r->n_items;
    const int64_t *lab = (const int64_t *)F->data + n * L;
    const float *a = (const float *)A->data + n * (A->numel / r->n_items);
    int64_t M = 0;
    for (int64_t i = 0; i < L; i++)
        if (lab[i] + 1 > M) M = lab[i] + 1;
    double *val = calloc((size_t)M + 1, sizeof *val), *cy = calloc((size_t)M + 1, sizeof *cy),
           *cx = calloc((size_t)M + 1, sizeof *cx), *cnt = calloc((size_t)M + 1, sizeof *cnt);
    int64_t *order = calloc((size_t)M + 1, sizeof *order);
    if (!val || !cy || !cx || !cnt || !order) goto done;
    /* a spatial map (N, H, W): pixel (h, w) is element h W + w of channel 0
     * (NCHW) or element (h W + w) C (NHWC); otherwise one label per element */
    bool spatial = F->ndim == 3 && A->ndim == 4;
    int64_t H = spatial ? F->dims[1] : 1, W = spatial ? F->dims[2] : L;
    bool nhwc = spatial && !(A->dims[2] == H && A->dims[3] == W);
    int64_t C = nhwc ? A->dims[3] : 1;
    for (int64_t i = 0; i < L; i++) {
        int64_t m = lab[i], el = spatial ? (nhwc ? i * C : i) : i;
        val[m] = a[el];
        cy[m] += (double)(i / W);
        cx[m] += (double)(i % W);
        cnt[m] += 1;
    }
    for (int64_t m = 0; m < M; m++) order[m] = m;
    int top = M < 5 ? (int)M : 5;
    for (int i = 0; i < top; i++) {   /* top by |value|: partial selection */
        int64_t best = i;
        for (int64_t j = i + 1; j < M; j++)
            if (fabs(val[order[j]]) > fabs(val[order[best]])) best = j;
        int64_t t = order[i];
        order[i] = order[best];
        order[best] = t;
    }
    printf("  %s surrogate: weighted R^2 %.3f over %lld features; top:", r->method, r->fit_r2[n], (long long)M);
    for (int i = 0; i < top; i++) {
        int64_t m = order[i];
        if (spatial)
            printf(" #%lld@(%.0f,%.0f) %+.4g", (long long)m, cy[m] / cnt[m], cx[m] / cnt[m], val[m]);
        else
            printf(" #%lld %+.4g", (long long)m, val[m]);
    }
    printf("\n");
done:
    free(val);
    free(cy);
    free(cx);
    free(cnt);
    free(order);
}

void gb_cli_perturb_free(gb_cli_perturb *p) {
    gb_tensor_free(p->baseline);
    gb_tensor_free(p->mask);
    p->baseline = p->mask = NULL;
}
