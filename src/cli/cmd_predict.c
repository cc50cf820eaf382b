/* cmd_predict.c — `glassbox predict`: top-K classes of images (or of a .npy
 * batch), with labels from the model's sidecar and probabilities. */
#include "cli/cli.h"
#include "cli/cli_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox predict [--model MODEL] (--image FILE|DIR [FILE|DIR...] | --input x.npy)\n"
            "                        [--top K] [--batch N] [--threads N] [--preproc KEY=VALUE]...\n"
            "Prints the top-K classes (default 5) of each image with their labels (from MODEL.json)\n"
            "and probabilities: the softmax of the model's first output, or the output itself when\n"
            "the model ends in a Softmax node. A directory contributes its image files (.png .jpg\n"
            ".jpeg .bmp .pgm .ppm), sorted; images run --batch at a time (default 32). Without\n"
            "--model, the default model (models/default/fashion_cnn.onnx, or $GLASSBOX_MODEL).\n"
            "--preproc overrides the sidecar's preprocessing (keys: layout channels color height\n"
            "width resize resize_shorter scale mean std), e.g. --preproc resize=shorter.\n");
}

/* Print the top-k rows of one item. */
static void print_top(const gb_cli_model *cm, const char *name, const float *row, int64_t K, int top, double *p,
                      int64_t *order) {
    gb_cli_probs(cm, row, K, p);
    for (int64_t i = 0; i < K; i++) order[i] = i;
    int kk = top < K ? top : (int)K;
    for (int i = 0; i < kk; i++) {   /* partial selection sort: K is small */
        int64_t best = i;
        for (int64_t j = i + 1; j < K; j++)
            if (p[order[j]] > p[order[best]]) best = j;
        int64_t t = order[i];
        order[i] = order[best];
        order[best] = t;
    }
    printf("%s\n", name);
    for (int i = 0; i < kk; i++) {
        const char *lab = gb_cli_label(cm, order[i]);
        printf("  %d. %-20s %8.4f   (class %lld, %s %.4g)\n", i + 1, lab ? lab : "-", p[order[i]],
               (long long)order[i], cm->ends_in_softmax ? "output" : "logit", row[order[i]]);
    }
}

int gb_cmd_predict(int argc, char **argv) {
    const char *model_path = NULL, *npy = NULL;
    int top = 5, batch = 32, threads = 0;
    gb_cli_list images = {0}, over = {0};
    int rc = GB_EXIT_USAGE;
    bool in_images = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            rc = GB_EXIT_OK;
            goto out;
        }
        if (a[0] != '-' || !a[1]) {   /* positional: more images */
            if (!gb_cli_list_add(&images, a)) goto oom;
            in_images = true;
            continue;
        }
        (void)in_images;
        if (!strcmp(a, "--image")) {
            if (!(v = gb_cli_value(argc, argv, &i))) goto out;
            if (!gb_cli_list_add(&images, v)) goto oom;
            continue;
        }
        if (!strcmp(a, "--model") || !strcmp(a, "--input") || !strcmp(a, "--top") || !strcmp(a, "--batch") ||
            !strcmp(a, "--threads") || !strcmp(a, "--preproc")) {
            if (!(v = gb_cli_value(argc, argv, &i))) goto out;
        } else {
            gb_cli_error("predict: unknown argument '%s' (glassbox predict --help)", a);
            goto out;
        }
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--input")) npy = v;
        else if (!strcmp(a, "--preproc")) {
            if (!gb_cli_list_add(&over, v)) goto oom;
        } else {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 1000000) {
                gb_cli_error("%s: '%s' is not a positive integer", a, v);
                goto out;
            }
            if (!strcmp(a, "--top")) top = (int)n;
            else if (!strcmp(a, "--batch")) batch = (int)n;
            else threads = (int)n;
        }
    }
    if (!images.n && !npy) {
        gb_cli_error("predict: give --image FILE|DIR (or --input x.npy) (glassbox predict --help)");
        goto out;
    }
    if (images.n && npy) {
        gb_cli_error("predict: give images or --input, not both");
        goto out;
    }

    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm = {0};
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    gb_cli_list files = {0};
    double *p = NULL;
    int64_t *order = NULL;
    gb_image **imgs = NULL;
    if (gb_ctx_create(&ctx)) {
        gb_cli_error("out of memory");
        goto out;
    }
    if (threads) gb_ctx_set_threads(ctx, threads);
    if (!gb_cli_model_open(ctx, model_path, (const char *const *)over.v, over.n, npy == NULL, &cm)) goto done;
    if (images.n && !gb_cli_collect_images((const char *const *)images.v, images.n, &files)) goto done;
    if (gb_session_create(cm.m, &s)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto done;
    }
    gb_value_info ov;
    gb_model_output(cm.m, 0, &ov);
    if (npy) {
        if (gb_npy_read(ctx, npy, &x) || (x->dtype != GB_DTYPE_F32 && gb_tensor_cast(ctx, x, GB_DTYPE_F32))) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            goto done;
        }
        const gb_tensor *in[1] = {x};
        if (gb_session_run(s, in, 1)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            goto done;
        }
        const gb_tensor *y = gb_session_output(s, 0);
        if (y->ndim != 2 || y->dtype != GB_DTYPE_F32) {
            char shp[128];
            gb_shape_str(y->ndim, y->dims, shp, sizeof shp);
            gb_cli_error("predict: output '%s' has shape %s, not (batch, classes)", ov.name, shp);
            goto done;
        }
        int64_t K = y->dims[1];
        p = malloc(sizeof *p * (size_t)K);
        order = malloc(sizeof *order * (size_t)K);
        if (!p || !order) goto oom2;
        for (int64_t n = 0; n < y->dims[0]; n++) {
            char name[GB_CLI_PATH_MAX + 32];
            snprintf(name, sizeof name, "%s[%lld]", npy, (long long)n);
            print_top(&cm, name, (const float *)y->data + n * K, K, top, p, order);
        }
        rc = GB_EXIT_OK;
        goto done;
    }
    int64_t chunk = cm.static_batch ? cm.static_batch : batch;
    imgs = calloc((size_t)chunk, sizeof *imgs);
    if (!imgs) goto oom2;
    for (int f0 = 0; f0 < files.n; f0 += (int)chunk) {
        int b = files.n - f0 < chunk ? files.n - f0 : (int)chunk;
        for (int k = 0; k < b; k++)
            if (gb_image_load(ctx, files.v[f0 + k], &imgs[k])) {
                gb_cli_error("%s", gb_ctx_errmsg(ctx));
                goto done;
            }
        for (int k = b; k < chunk; k++) imgs[k] = imgs[b - 1];   /* pad a fixed-batch model */
        gb_tensor_free(x);
        x = NULL;
        gb_status st = gb_preproc_batch(ctx, &cm.pp, (const gb_image *const *)imgs, (int)(cm.static_batch ? chunk : b), &x);
        for (int k = b; k < chunk; k++) imgs[k] = NULL;
        for (int k = 0; k < b; k++) {
            gb_image_free(imgs[k]);
            imgs[k] = NULL;
        }
        const gb_tensor *in[1] = {x};
        if (st || gb_session_run(s, in, 1)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            goto done;
        }
        const gb_tensor *y = gb_session_output(s, 0);
        if (y->ndim != 2 || y->dtype != GB_DTYPE_F32) {
            char shp[128];
            gb_shape_str(y->ndim, y->dims, shp, sizeof shp);
            gb_cli_error("predict: output '%s' has shape %s, not (batch, classes)", ov.name, shp);
            goto done;
        }
        int64_t K = y->dims[1];
        if (!p) {
            p = malloc(sizeof *p * (size_t)K);
            order = malloc(sizeof *order * (size_t)K);
            if (!p || !order) goto oom2;
        }
        for (int k = 0; k < b; k++) print_top(&cm, files.v[f0 + k], (const float *)y->data + k * K, K, top, p, order);
    }
    rc = GB_EXIT_OK;
    goto done;
oom2:
    gb_cli_error("out of memory");
done:
    if (imgs)
        for (int k = 0; k < chunk; k++) gb_image_free(imgs[k]);
    free(imgs);
    free(p);
    free(order);
    gb_tensor_free(x);
    gb_session_free(s);
    gb_cli_model_close(&cm);
    gb_cli_list_free(&files);
    gb_ctx_free(ctx);
    goto out;
oom:
    gb_cli_error("out of memory");
    rc = GB_EXIT_FAIL;
out:
    gb_cli_list_free(&images);
    gb_cli_list_free(&over);
    return rc;
}
