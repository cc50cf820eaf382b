/* cmd_grad.c — `glassbox grad`: gradient of a logit w.r.t. the input or any tensor. */
#include "cli/cli.h"
#include "cli/cli_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox grad [--model MODEL] --input x.npy [--target K] [--output NAME] [--at TENSOR]\n"
            "                     --out g.npy [--threads N]\n"
            "Writes d logit_K / d TENSOR for every batch item, with the shape of TENSOR (default: the\n"
            "model's first input). K defaults to each item's top-1 class. --output picks which graph\n"
            "output holds the logits (default: the first). Tensor names are those `glassbox info` shows.\n");
}

int gb_cmd_grad(int argc, char **argv) {
    const char *model_path = NULL, *in_path = NULL, *out_path = NULL, *at = NULL, *output = NULL;
    long long target = -1;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            return GB_EXIT_OK;
        }
        if (!strcmp(a, "--model") || !strcmp(a, "--input") || !strcmp(a, "--out") || !strcmp(a, "--at") ||
            !strcmp(a, "--target") || !strcmp(a, "--threads") || !strcmp(a, "--output")) {
            if (!(v = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        } else {
            gb_cli_error("grad: unknown argument '%s' (glassbox grad --help)", a);
            return GB_EXIT_USAGE;
        }
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--input")) in_path = v;
        else if (!strcmp(a, "--out")) out_path = v;
        else if (!strcmp(a, "--at")) at = v;
        else if (!strcmp(a, "--output")) output = v;
        else if (!strcmp(a, "--threads")) {
            threads = atoi(v);
            if (threads < 1) {
                gb_cli_error("--threads: '%s' is not a positive integer", v);
                return GB_EXIT_USAGE;
            }
        } else {
            char *end;
            target = strtoll(v, &end, 10);
            if (*end || target < 0) {
                gb_cli_error("--target: '%s' is not a class index", v);
                return GB_EXIT_USAGE;
            }
        }
    }
    char default_model[4096];
    if (!model_path && gb_cli_default_model(default_model, sizeof default_model)) model_path = default_model;
    if (!model_path || !in_path || !out_path) {
        gb_cli_error("grad: --input and --out are required, and --model when no default model is found "
                     "(glassbox grad --help)");
        return GB_EXIT_USAGE;
    }
    gb_ctx *ctx = NULL;
    gb_model *m = NULL;
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    int64_t *classes = NULL;
    int rc = GB_EXIT_FAIL;
    if (gb_ctx_create(&ctx)) return GB_EXIT_FAIL;
    if (threads) gb_ctx_set_threads(ctx, threads);
#define TRY(call)                                     \
    do {                                              \
        if (call) {                                   \
            gb_cli_error("%s", gb_ctx_errmsg(ctx));   \
            goto out;                                 \
        }                                             \
    } while (0)
    TRY(gb_model_load(ctx, model_path, &m));
    if (gb_model_num_inputs(m) != 1) {
        gb_cli_error("grad: %s has %d inputs; grad supports single-input models", model_path, gb_model_num_inputs(m));
        goto out;
    }
    TRY(gb_npy_read(ctx, in_path, &x));
    if (x->dtype != GB_DTYPE_F32) TRY(gb_tensor_cast(ctx, x, GB_DTYPE_F32));
    TRY(gb_session_create(m, &s));
    gb_session_keep_activations(s, 1);
    const gb_tensor *in[1] = {x};
    TRY(gb_session_run(s, in, 1));
    gb_value_info ov;
    gb_model_output(m, 0, &ov);
    const char *out_name = output ? output : ov.name;
    const gb_tensor *logits = gb_session_tensor(s, out_name);
    if (!logits) {
        gb_cli_error("grad: no tensor named '%s' in %s", out_name, model_path);
        goto out;
    }
    if (logits->ndim < 2 || logits->dtype != GB_DTYPE_F32) {
        gb_cli_error("grad: '%s' is not a (batch, classes) float tensor", out_name);
        goto out;
    }
    int64_t n = logits->dims[0], c = logits->numel / (logits->dims[0] ? logits->dims[0] : 1);
    classes = malloc(sizeof *classes * (size_t)(n ? n : 1));
    if (!classes) goto out;
    for (int64_t b = 0; b < n; b++) {
        const float *row = (const float *)logits->data + b * c;
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (row[k] > row[best]) best = k;
        classes[b] = target >= 0 ? target : best;
    }
    if (target >= c) {
        gb_cli_error("--target %lld: '%s' has %lld classes", target, out_name, (long long)c);
        goto out;
    }
    gb_seed seed = {.tensor = out_name, .classes = classes};
    TRY(gb_session_backward(s, &seed, NULL, 0));
    gb_value_info iv;
    gb_model_input(m, 0, &iv);
    const char *wrt = at ? at : iv.name;
    const gb_tensor *g = gb_session_grad(s, wrt);
    if (!g) {
        if (!gb_session_tensor(s, wrt)) gb_cli_error("grad: no tensor named '%s' in %s", wrt, model_path);
        else gb_cli_error("grad: no gradient reaches '%s' (constant, or not on the path to '%s')", wrt, out_name);
        goto out;
    }
    TRY(gb_npy_write(ctx, out_path, g));
    for (int64_t b = 0; b < n; b++)
        printf("item %lld: class %lld (logit %.6g)\n", (long long)b, (long long)classes[b],
               ((const float *)logits->data)[b * c + classes[b]]);
    char shp[128];
    gb_shape_str(g->ndim, g->dims, shp, sizeof shp);
    printf("wrote %s: d logit / d %s, %s\n", out_path, wrt, shp);
    rc = GB_EXIT_OK;
#undef TRY
out:
    free(classes);
    gb_tensor_free(x);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
}
