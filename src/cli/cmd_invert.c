/* cmd_invert.c — `glassbox invert`: reconstruct an input from its
 * representation at a layer (Mahendran & Vedaldi 2015), optionally after
 * perturbing the features (Dosovitskiy & Brox 2016). */
#include "cli/vis_common.h"
#include "glassbox/visualize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox invert [--model M] (--image F | --input x.npy) --layer TENSOR\n"
            "                       [--perturb binarize|dropout] [--dropout P] [--decoder D.onnx]\n"
            "                       [--steps N] [--seed S] [--lr LR] [--alpha A] [--alpha-weight W]\n"
            "                       [--tv W] [--tv-beta B] [--jitter PX] [--init-sd SD] [--threads N]\n"
            "                       [--preproc KEY=VALUE]... --out-png FILE [--out-npy FILE]\n"
            "\n"
            "Reconstructs an input whose representation at TENSOR matches the given input's, by\n"
            "minimizing ||phi(x) - phi0||^2 / ||phi0||^2 + alpha-weight R_alpha(x) + tv R_TV^beta(x)\n"
            "from noise (Mahendran & Vedaldi 2015; defaults: 300 Adam steps, lr 0.05 of the image\n"
            "range, alpha 6, alpha-weight 0.01, tv 0.01, beta 2). --perturb changes phi0 first (Dosovitskiy &\n"
            "Brox 2016): binarize keeps the signs with equal magnitudes and the same L2 norm; dropout\n"
            "zeroes a share P (default 0.5) and rescales the rest. The graph input's own name as TENSOR\n"
            "reconstructs the image itself. --decoder D.onnx decodes phi0 with a learned decoder\n"
            "(`glassbox train-decoder`) instead of optimizing. Writes the reconstruction (model input size) to --out-png\n"
            "and the model input to --out-npy; prints the final feature distance and the RMS pixel\n"
            "error (0..255) against the original.\n");
}

int gb_cmd_invert(int argc, char **argv) {
    const char *model = NULL, *image = NULL, *npy = NULL, *layer = NULL, *perturb = NULL, *decoder = NULL;
    const char *out_png = NULL, *out_npy = NULL;
    gb_invert_opts o = GB_INVERT_OPTS_INIT;
    double dropout = 0.5;
    int threads = 0;
    gb_cli_list over = {0};
    int rc = GB_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        long n;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            help(stdout);
            gb_cli_list_free(&over);
            return GB_EXIT_OK;
        }
        if (arg[0] != '-') {
            gb_cli_error("invert: unexpected argument '%s'", arg);
            goto usage;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) goto usage;
        if (!strcmp(arg, "--model")) model = v;
        else if (!strcmp(arg, "--image")) image = v;
        else if (!strcmp(arg, "--input")) npy = v;
        else if (!strcmp(arg, "--layer")) layer = v;
        else if (!strcmp(arg, "--perturb")) perturb = v;
        else if (!strcmp(arg, "--decoder")) decoder = v;
        else if (!strcmp(arg, "--out-png")) out_png = v;
        else if (!strcmp(arg, "--out-npy")) out_npy = v;
        else if (!strcmp(arg, "--dropout")) {
            if (!gb_cli_vis_double(arg, v, 0.01, 0.99, &dropout)) goto usage;
        } else if (!strcmp(arg, "--steps")) {
            if (!gb_cli_vis_int(arg, v, 0, 1000000, &n)) goto usage;
            o.steps = (int)n;
        } else if (!strcmp(arg, "--seed")) {
            if (!gb_cli_vis_u64(arg, v, &o.seed)) goto usage;
        } else if (!strcmp(arg, "--lr")) {
            if (!gb_cli_vis_double(arg, v, 1e-12, 1e3, &o.lr)) goto usage;
        } else if (!strcmp(arg, "--alpha")) {
            if (!gb_cli_vis_double(arg, v, 1, 64, &o.alpha)) goto usage;
        } else if (!strcmp(arg, "--alpha-weight")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e12, &o.alpha_weight)) goto usage;
        } else if (!strcmp(arg, "--tv")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e12, &o.tv_weight)) goto usage;
        } else if (!strcmp(arg, "--tv-beta")) {
            if (!gb_cli_vis_double(arg, v, 1, 16, &o.tv_beta)) goto usage;
        } else if (!strcmp(arg, "--jitter")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e4, &o.jitter)) goto usage;
        } else if (!strcmp(arg, "--init-sd")) {
            if (!gb_cli_vis_double(arg, v, 0, 100, &o.init_sd)) goto usage;
        } else if (!strcmp(arg, "--threads")) {
            if (!gb_cli_vis_int(arg, v, 1, 256, &n)) goto usage;
            threads = (int)n;
        } else if (!strcmp(arg, "--preproc")) {
            if (!gb_cli_list_add(&over, v)) goto usage;
        } else {
            gb_cli_error("invert: unknown option '%s' (glassbox invert --help)", arg);
            goto usage;
        }
    }
    if (!image == !npy) {
        gb_cli_error("invert: give exactly one of --image or --input");
        goto usage;
    }
    if (!layer || !out_png) {
        gb_cli_error("invert: --layer and --out-png are required");
        goto usage;
    }
    gb_feature_perturb pk = GB_PERTURB_NONE;
    if (perturb) {
        if (!strcmp(perturb, "binarize")) pk = GB_PERTURB_BINARIZE;
        else if (!strcmp(perturb, "dropout")) pk = GB_PERTURB_DROPOUT;
        else {
            gb_cli_error("--perturb: '%s' is not binarize or dropout", perturb);
            goto usage;
        }
    }

    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm;
    memset(&cm, 0, sizeof cm);
    gb_session *s = NULL;
    gb_tensor *x = NULL, *phi0 = NULL, *rec = NULL;
    gb_image *img = NULL;
    gb_cli_outputs outs = {0};
    if (gb_ctx_create(&ctx)) goto out;
    if (threads) gb_ctx_set_threads(ctx, threads);
    if (!gb_cli_model_open(ctx, model, (const char *const *)over.v, over.n, image != NULL, &cm)) goto out;
    if (!gb_cli_vis_load_input(ctx, &cm, image, npy, &x)) goto out;
    if (x->ndim != 4 || x->dims[0] != 1) {
        gb_cli_error("invert: the input must be one (1, C, H, W) image");
        goto out;
    }
    if (gb_session_create(cm.m, &s) || gb_features_compute(s, x, layer, &phi0) ||
        (pk && gb_features_perturb(ctx, phi0, pk, dropout, o.seed))) {
        gb_cli_error("invert: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    if (decoder) {
        /* a learned decoder (Dosovitskiy & Brox 2016): one forward pass */
        gb_model *dec = NULL;
        bool ok = !gb_model_load(ctx, decoder, &dec) && !gb_decoder_invert(dec, phi0, &rec);
        gb_model_free(dec);
        if (ok && (rec->ndim != x->ndim || rec->numel != x->numel)) {
            gb_cli_error("invert: the decoder %s does not output the model's input shape", decoder);
            goto out;
        }
        if (!ok) {
            gb_cli_error("invert: --decoder: %s", gb_ctx_errmsg(ctx));
            goto out;
        }
    } else if (gb_invert(s, cm.has_pp ? &cm.pp : NULL, layer, phi0, &o, &rec, NULL)) {
        gb_cli_error("invert: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    /* distance to the (perturbed) target, and pixel error to the original */
    gb_tensor *phi = NULL;
    double dist = 0, n0 = 0;
    if (gb_features_compute(s, rec, layer, &phi)) {
        gb_cli_error("invert: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    const float *f = phi->data, *f0 = phi0->data;
    for (int64_t i = 0; i < phi->numel && i < phi0->numel; i++)
        dist += ((double)f[i] - f0[i]) * ((double)f[i] - f0[i]), n0 += (double)f0[i] * f0[i];
    gb_tensor_free(phi);
    gb_image *orig = NULL;
    double rmse = NAN;
    if (!gb_cli_vis_input_png(ctx, &cm, rec, 1, &img)) goto out;
    if (gb_cli_vis_input_png(ctx, &cm, x, 1, &orig)) {
        double se = 0;
        for (int y = 0; y < img->height; y++)
            for (int k = 0; k < img->width * 3; k++) {
                double d = (double)img->data[(size_t)y * img->stride + k] - orig->data[(size_t)y * orig->stride + k];
                se += d * d;
            }
        rmse = sqrt(se / ((double)img->height * img->width * 3));
        gb_image_free(orig);
    }
    if (!gb_cli_vis_write_png(ctx, &outs, out_png, img)) goto out;
    if (out_npy && !gb_cli_vis_write_npy(ctx, &outs, out_npy, rec)) goto out;
    printf("layer %s%s%s: feature distance %.4g, pixel RMSE %.2f (of 255)\n", layer, pk ? ", perturb " : "",
           pk ? perturb : "", n0 > 0 ? dist / n0 : 0.0, rmse);
    printf("wrote %s%s%s\n", out_png, out_npy ? " and " : "", out_npy ? out_npy : "");
    rc = GB_EXIT_OK;
out:
    if (rc) gb_cli_outputs_rollback(&outs);
    gb_cli_outputs_free(&outs);
    gb_image_free(img);
    gb_tensor_free(x);
    gb_tensor_free(phi0);
    gb_tensor_free(rec);
    gb_session_free(s);
    gb_cli_model_close(&cm);
    gb_ctx_free(ctx);
usage:
    gb_cli_list_free(&over);
    return rc;
}
