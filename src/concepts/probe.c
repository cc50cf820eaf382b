/* probe.c — linear classifier probes (Alain & Bengio, "Understanding
 * intermediate layers using linear classifier probes", 2016): a softmax
 * regression trained on a frozen layer's activations to predict the label,
 * one probe per layer. Its test accuracy measures how linearly separable
 * the classes are at that depth; on the input it is the plain
 * logistic-regression baseline.
 *
 * Wide layers are average-pooled over a spatial grid (the largest that
 * keeps at most max_features values, adaptive pooling cells as torch's
 * adaptive_avg_pool2d) so that every probe has a comparable, bounded size;
 * the paper probes full layers of small networks, which max_features large
 * enough reproduces. */
#include "concepts/concepts_internal.h"

#include <stdlib.h>
#include <string.h>

void gb_probe_result_free(gb_probe_result *r) {
    if (!r) return;
    for (int l = 0; l < r->n_layers; l++) free(r->layers[l]);
    free(r->layers);
    free(r->dims);
    free(r->train_acc);
    free(r->test_acc);
    free(r);
}

gb_status gb_probe(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b, const char *const *layers,
                   int n_layers, const gb_probe_opts *o, gb_probe_result **out) {
    *out = NULL;
    int maxf = o && o->max_features > 0 ? o->max_features : 4096;
    int batch = o && o->batch > 0 ? o->batch : 32;
    const char *catname = o && o->label_category ? o->label_category : "scene";
    int cat = gb_broden_category_find(b, catname);
    if (cat < 0) return gb__err(ctx, GB_ERR_ARG, "probe: the dataset has no category '%s'", catname);
    if (n_layers < 1) return gb__err(ctx, GB_ERR_ARG, "probe: no layer given");
    int N = gb_broden_size(b);
    if (o && o->max_images > 0 && o->max_images < N) N = o->max_images;

    gb_status st = GB_OK;
    gb_probe_result *r = calloc(1, sizeof *r);
    int L = gb_broden_num_labels(b);
    int *dense = malloc(sizeof *dense * (size_t)(L + 1));
    int *y = malloc(sizeof *y * (size_t)(N + 1)), *is_train = malloc(sizeof *is_train * (size_t)(N + 1));
    int *idx = malloc(sizeof *idx * (size_t)batch);
    float **feat = calloc((size_t)n_layers, sizeof *feat);
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    float *W = NULL, *Xtr = NULL, *Xte = NULL;
    int *ytr = NULL, *yte = NULL;
    if (!r || !dense || !y || !is_train || !idx || !feat) goto oom;
    r->n_layers = n_layers;
    r->layers = calloc((size_t)n_layers, sizeof *r->layers);
    r->dims = calloc((size_t)n_layers, sizeof *r->dims);
    r->train_acc = calloc((size_t)n_layers, sizeof *r->train_acc);
    r->test_acc = calloc((size_t)n_layers, sizeof *r->test_acc);
    if (!r->layers || !r->dims || !r->train_acc || !r->test_acc) goto oom;
    for (int l = 0; l < n_layers; l++)
        if (!(r->layers[l] = strdup(layers[l]))) goto oom;

    /* Labels: the category's whole-image label, numbered densely. */
    for (int l = 0; l <= L; l++) dense[l] = -1;
    int K = 0;
    for (int i = 0; i < N; i++) {
        int32_t lab = gb_broden_scalar_label(b, i, cat);
        if (!lab) {
            st = gb__err(ctx, GB_ERR_FORMAT, "probe: image %d has no whole-image '%s' label", i, catname);
            goto fail;
        }
        gb_broden_item it;
        gb_broden_item_info(b, i, &it);
        is_train[i] = !strcmp(it.split, "train");
        r->n_train += is_train[i];
        y[i] = lab;
    }
    for (int l = 0; l < L; l++) {   /* dense codes in label-number order */
        for (int i = 0; i < N; i++)
            if (y[i] == l) {
                dense[l] = K++;
                break;
            }
    }
    for (int i = 0; i < N; i++) y[i] = dense[y[i]];
    r->n_classes = K;
    r->n_test = N - r->n_train;
    if (K < 2) {
        st = gb__err(ctx, GB_ERR_ARG, "probe: the labels have a single class");
        goto fail;
    }
    if (r->n_train < 2 || r->n_test < 1) {
        st = gb__err(ctx, GB_ERR_ARG, "probe: needs images in split 'train' and in another split (%d train, %d other)",
                     r->n_train, r->n_test);
        goto fail;
    }

    if ((st = gb_session_create(m, &s))) goto fail;
    gb_session_keep_activations(s, 1);
    for (int i0 = 0; i0 < N; i0 += batch) {
        int nb = N - i0 < batch ? N - i0 : batch;
        for (int k = 0; k < nb; k++) idx[k] = i0 + k;
        gb_tensor_free(x);
        x = NULL;
        if ((st = gb__broden_batch(ctx, b, pp, idx, nb, &x))) goto fail;
        const gb_tensor *in[1] = {x};
        if ((st = gb_session_run(s, in, 1))) goto fail;
        for (int l = 0; l < n_layers; l++) {
            const gb_tensor *t = gb_session_tensor(s, layers[l]);
            if (!t) {
                st = gb__err(ctx, GB_ERR_NOT_FOUND, "probe: the model has no tensor '%s' (glassbox info lists them)",
                             layers[l]);
                goto fail;
            }
            if (t->dtype != GB_DTYPE_F32 || t->ndim < 2 || t->dims[0] != nb) {
                st = gb__err(ctx, GB_ERR_SHAPE, "probe: tensor '%s' is not a float32 (N, ...) activation", layers[l]);
                goto fail;
            }
            int64_t d;
            gb__pooled_features(t, 0, maxf, NULL, &d);
            if (!feat[l]) {
                r->dims[l] = d;
                if (!(feat[l] = malloc(sizeof(float) * (size_t)N * (size_t)d))) goto oom;
            }
            for (int k = 0; k < nb; k++) gb__pooled_features(t, k, maxf, feat[l] + (size_t)(i0 + k) * (size_t)d, &d);
        }
    }
    gb_tensor_free(x);
    x = NULL;
    gb_session_free(s);
    s = NULL;

    ytr = malloc(sizeof *ytr * (size_t)r->n_train);
    yte = malloc(sizeof *yte * (size_t)r->n_test);
    if (!ytr || !yte) goto oom;
    for (int l = 0; l < n_layers; l++) {
        int64_t d = r->dims[l];
        Xtr = malloc(sizeof *Xtr * (size_t)r->n_train * (size_t)d);
        Xte = malloc(sizeof *Xte * (size_t)r->n_test * (size_t)d);
        W = malloc(sizeof *W * ((size_t)K * (size_t)d + (size_t)K));
        if (!Xtr || !Xte || !W) goto oom;
        for (int i = 0, a = 0, c = 0; i < N; i++) {
            float *dst = is_train[i] ? Xtr + (size_t)a * (size_t)d : Xte + (size_t)c * (size_t)d;
            memcpy(dst, feat[l] + (size_t)i * (size_t)d, sizeof *dst * (size_t)d);
            if (is_train[i]) ytr[a++] = y[i];
            else yte[c++] = y[i];
        }
        float *bias = W + (size_t)K * (size_t)d;
        if ((st = gb_softmax_fit(ctx, Xtr, ytr, r->n_train, d, K, o ? &o->linear : NULL, W, bias))) goto fail;
        r->train_acc[l] = gb_linear_accuracy(Xtr, ytr, r->n_train, d, K, W, bias);
        r->test_acc[l] = gb_linear_accuracy(Xte, yte, r->n_test, d, K, W, bias);
        free(Xtr), free(Xte), free(W);
        Xtr = Xte = W = NULL;
        free(feat[l]);
        feat[l] = NULL;
    }
    goto done;
oom:
    st = gb__err(ctx, GB_ERR_NOMEM, "probe: out of memory");
fail:
    gb_probe_result_free(r);
    r = NULL;
done:
    if (feat)
        for (int l = 0; l < n_layers; l++) free(feat[l]);
    free(feat);
    free(dense), free(y), free(is_train), free(idx), free(ytr), free(yte), free(Xtr), free(Xte), free(W);
    gb_tensor_free(x);
    gb_session_free(s);
    *out = r;
    return st;
}
