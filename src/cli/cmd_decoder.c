/* cmd_decoder.c — `glassbox train-decoder`: train an up-convolutional
 * decoder from a layer's features back to images (Dosovitskiy & Brox 2016)
 * with glassbox's own trainer, and save it as ONNX for `invert --decoder`. */
#include "cli/vis_common.h"
#include "glassbox/visualize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox train-decoder [--model M] --layer TENSOR --init D0.onnx --dataset x.npy\n"
            "                              [--steps N] [--batch B] [--lr LR] [--seed S] [--log-every K]\n"
            "                              [--threads N] --out D.onnx\n"
            "\n"
            "Trains the decoder D0.onnx (input: the features at TENSOR, output: an image in the model's\n"
            "input space; models/make_decoder.py makes one) to minimize the mean squared error between\n"
            "D(phi(x)) and x over the (N, C, H, W) model inputs of x.npy (tests/scripts/fashion_mnist_npy.py\n"
            "writes Fashion-MNIST ones), by Adam (default 2000 steps of 64, lr 1e-3), and writes the trained\n"
            "network to D.onnx. Prints the mean loss every K steps (default 200).\n");
}

int gb_cmd_train_decoder(int argc, char **argv) {
    const char *model = NULL, *layer = NULL, *init = NULL, *dataset = NULL, *out_path = NULL;
    gb_decoder_train_opts o = {.steps = 2000, .batch = 64, .lr = 1e-3, .seed = 0};
    long log_every = 200, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        long n;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            help(stdout);
            return GB_EXIT_OK;
        }
        if (arg[0] != '-') {
            gb_cli_error("train-decoder: unexpected argument '%s'", arg);
            return GB_EXIT_USAGE;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        if (!strcmp(arg, "--model")) model = v;
        else if (!strcmp(arg, "--layer")) layer = v;
        else if (!strcmp(arg, "--init")) init = v;
        else if (!strcmp(arg, "--dataset")) dataset = v;
        else if (!strcmp(arg, "--out")) out_path = v;
        else if (!strcmp(arg, "--steps")) {
            if (!gb_cli_vis_int(arg, v, 1, 10000000, &n)) return GB_EXIT_USAGE;
            o.steps = (int)n;
        } else if (!strcmp(arg, "--batch")) {
            if (!gb_cli_vis_int(arg, v, 1, 65536, &n)) return GB_EXIT_USAGE;
            o.batch = (int)n;
        } else if (!strcmp(arg, "--lr")) {
            if (!gb_cli_vis_double(arg, v, 1e-12, 10, &o.lr)) return GB_EXIT_USAGE;
        } else if (!strcmp(arg, "--seed")) {
            if (!gb_cli_vis_u64(arg, v, &o.seed)) return GB_EXIT_USAGE;
        } else if (!strcmp(arg, "--log-every")) {
            if (!gb_cli_vis_int(arg, v, 1, 10000000, &log_every)) return GB_EXIT_USAGE;
        } else if (!strcmp(arg, "--threads")) {
            if (!gb_cli_vis_int(arg, v, 1, 256, &threads)) return GB_EXIT_USAGE;
        } else {
            gb_cli_error("train-decoder: unknown option '%s' (glassbox train-decoder --help)", arg);
            return GB_EXIT_USAGE;
        }
    }
    if (!layer || !init || !dataset || !out_path) {
        gb_cli_error("train-decoder: --layer, --init, --dataset and --out are required");
        return GB_EXIT_USAGE;
    }
    int rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm;
    memset(&cm, 0, sizeof cm);
    gb_model *dec = NULL;
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    double *losses = NULL;
    if (gb_ctx_create(&ctx)) return GB_EXIT_FAIL;
    if (threads) gb_ctx_set_threads(ctx, (int)threads);
    if (!gb_cli_model_open(ctx, model, NULL, 0, false, &cm)) goto out;
    if (!gb_cli_vis_load_input(ctx, &cm, NULL, dataset, &x)) goto out;
    losses = malloc(sizeof *losses * (size_t)o.steps);
    if (!losses) goto out;
    if (gb_model_load(ctx, init, &dec) || gb_session_create(cm.m, &s) ||
        gb_decoder_train(s, layer, dec, x, &o, losses)) {
        gb_cli_error("train-decoder: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    for (int k = 0; k < o.steps; k += (int)log_every) {
        double m = 0;
        int n = 0;
        for (int j = k; j < o.steps && j < k + log_every; j++) m += losses[j], n++;
        printf("steps %6d..%-6d  mean loss %.5f\n", k + 1, k + n, m / n);
    }
    if (gb_model_save_params(dec, init, out_path)) {
        gb_cli_error("train-decoder: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    printf("wrote %s\n", out_path);
    rc = GB_EXIT_OK;
out:
    free(losses);
    gb_tensor_free(x);
    gb_session_free(s);
    gb_model_free(dec);
    gb_cli_model_close(&cm);
    gb_ctx_free(ctx);
    return rc;
}
