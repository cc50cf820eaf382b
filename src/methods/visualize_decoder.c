/* visualize_decoder.c — a learned decoder for inversion (Dosovitskiy & Brox
 * 2016, "Inverting Visual Representations with Convolutional Networks"):
 * an up-convolutional network trained to map a layer's features back to the
 * image, by glassbox's own trainer (include/glassbox/train.h). */
#include "methods/visualize_internal.h"
#include "engine/session.h"
#include "glassbox/train.h"

#include <stdlib.h>
#include <string.h>

gb_status gb_decoder_train(gb_session *s, const char *layer, gb_model *decoder, const gb_tensor *images,
                           const gb_decoder_train_opts *o, double *losses) {
    gb_ctx *ctx = s->ctx;
    gb_decoder_train_opts d = {.steps = 2000, .batch = 64, .lr = 1e-3, .seed = 0};
    if (o) {
        d = *o;
        if (!d.steps) d.steps = 2000;
        if (!d.batch) d.batch = 64;
        if (d.lr == 0) d.lr = 1e-3;
    }
    if (!images || images->dtype != GB_DTYPE_F32 || images->ndim != 4 || images->dims[0] < 1)
        return gb__err(ctx, GB_ERR_ARG, "decoder: need a float32 (N, C, H, W) batch of images");
    if (d.steps < 0 || d.batch < 1 || !(d.lr > 0))
        return gb__err(ctx, GB_ERR_ARG, "decoder: need steps >= 0, batch >= 1, lr > 0");
    int64_t N = images->dims[0], per = images->numel / N, B = d.batch < N ? d.batch : N;
    gb_status st = GB_OK;
    gb_session *ds = NULL;
    gb_optim *opt = NULL;
    gb_tensor *xb = NULL, *fb = NULL;
    int64_t *perm = malloc(sizeof *perm * (size_t)N);
    if (!perm) return gb__err(ctx, GB_ERR_NOMEM, "decoder: out of memory");
    int64_t dims[4] = {B, images->dims[1], images->dims[2], images->dims[3]};
    if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, &xb))) goto out;
    if ((st = gb_session_create(decoder, &ds))) goto out;
    if ((st = gb_optim_create_adam(decoder, d.lr, 0.9, 0.999, 1e-8, 0.0, &opt))) goto out;
    gb__rng rng;
    gb__rng_seed(&rng, d.seed);
    int64_t cursor = N;   /* start with a shuffle */
    for (int step = 0; step < d.steps; step++) {
        for (int64_t k = 0; k < B; k++) {
            if (cursor == N) {
                /* Fisher-Yates */
                for (int64_t i = 0; i < N; i++) perm[i] = i;
                for (int64_t i = N - 1; i > 0; i--) {
                    int64_t j = (int64_t)gb__rng_below(&rng, (uint64_t)i + 1), t = perm[i];
                    perm[i] = perm[j], perm[j] = t;
                }
                cursor = 0;
            }
            memcpy((float *)xb->data + k * per, (const float *)images->data + perm[cursor++] * per,
                   sizeof(float) * (size_t)per);
        }
        const gb_tensor *f;
        if ((st = gb__vis_forward(s, xb, layer, &f))) goto out;
        gb_tensor_free(fb);
        fb = NULL;
        if ((st = gb_tensor_clone(ctx, f, &fb))) goto out;
        const gb_tensor *in[1] = {fb};
        double loss;
        if ((st = gb_train_step(ds, opt, in, 1, xb, GB_LOSS_MSE, &loss))) {
            /* the decoder's message is on its model's context: bring it here */
            if (decoder->ctx != ctx) gb__err(ctx, st, "decoder: %s", gb_ctx_errmsg(decoder->ctx));
            goto out;
        }
        if (losses) losses[step] = loss;
    }
out:
    free(perm);
    gb_tensor_free(xb);
    gb_tensor_free(fb);
    gb_optim_free(opt);
    gb_session_free(ds);
    return st;
}

gb_status gb_decoder_invert(gb_model *decoder, const gb_tensor *features, gb_tensor **x_out) {
    *x_out = NULL;
    gb_session *ds;
    gb_status st = gb_session_create(decoder, &ds);
    if (st) return st;
    const gb_tensor *in[1] = {features};
    if (!(st = gb_session_run(ds, in, 1))) st = gb_tensor_clone(decoder->ctx, gb_session_output(ds, 0), x_out);
    gb_session_free(ds);
    return st;
}
