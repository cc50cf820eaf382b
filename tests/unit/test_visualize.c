/*
 * test_visualize.c — features, activation maximization and inversion
 * (src/methods/visualize_*.c).
 *
 * Pieces against independent references:
 *   - the Fourier parameterization against numpy.fft.irfft2 (lucid's
 *     fft_image, tests/scripts/make_visualize_fixtures.py) on odd and even
 *     sides, and its backward as the exact adjoint (<F s, g> = <s, F^T g>);
 *   - the warp's backward as the adjoint of its forward; TV's gradient
 *     against central finite differences;
 *   - the receptive fields of the default model against hand computation
 *     (Araujo et al. 2019's recurrence for its conv/pool stack).
 * Optimizers on problems with known answers:
 *   - a single linear unit y = w.x + b under an L2 penalty lambda |x|^2:
 *     the maximizer is w / (2 lambda) (direction and length);
 *   - inverting the input layer itself reproduces the image.
 * On the default Fashion-MNIST model (skipped when absent): class-logit
 * maximization gives images the model puts in their class with p > 0.9;
 * early-layer reconstructions have lower pixel error than late ones;
 * results are bit-identical for a seed and differ across seeds; a decoder
 * trained by glassbox's trainer learns, and survives an ONNX save/load.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/image.h"
#include "glassbox/train.h"
#include "glassbox/visualize.h"
#include "methods/visualize_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void src_path(char *p, size_t cap, const char *rel) {
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, cap, "%s/%s", src ? src : ".", rel);
}

static gb_tensor *load_npy(gb_ctx *ctx, const char *rel) {
    char p[1024];
    src_path(p, sizeof p, rel);
    gb_tensor *t = NULL;
    assert_int_equal(gb_npy_read(ctx, p, &t), GB_OK);
    return t;
}

/* ---- the pieces ------------------------------------------------------------------- */

static void test_unit_parse(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb_vis_unit u;
    assert_int_equal(gb_vis_unit_parse(ctx, "/a/b:c:3", &u), GB_OK);
    assert_string_equal(u.tensor, "/a/b:c");
    assert_int_equal(u.channel, 3);
    assert_false(u.has_hw);
    assert_int_equal(gb_vis_unit_parse(ctx, "t:1,2,3", &u), GB_OK);
    assert_true(u.has_hw);
    assert_int_equal(u.h, 2);
    assert_int_equal(u.w, 3);
    const char *bad[] = {"t", ":3", "t:", "t:1,2", "t:-1", "t:1,2,3,4", "t:x", "t:1,"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(gb_vis_unit_parse(ctx, bad[i], &u), GB_ERR_ARG);
        assert_true(strlen(gb_ctx_errmsg(ctx)) > 0);
    }
    gb_ctx_free(ctx);
}

static void check_fft(gb_ctx *ctx, int H, int W) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/visualize/fft_spec_%dx%d.npy", H, W);
    gb_tensor *spec = load_npy(ctx, rel);
    snprintf(rel, sizeof rel, "tests/fixtures/visualize/fft_img_%dx%d.npy", H, W);
    gb_tensor *ref = load_npy(ctx, rel);
    gb__fft_param f;
    assert_int_equal(gb__fft_init(ctx, H, W, 1.0, &f), GB_OK);
    assert_int_equal(spec->numel, 2 * H * f.K);
    float img[64], g[64], gs[128];
    gb__fft_forward(&f, spec->data, img);
    const float *r = ref->data;
    for (int i = 0; i < H * W; i++) assert_true(fabsf(img[i] - r[i]) < 1e-5f);
    /* adjoint: <F s, g> == <s, F^T g> for a random g */
    for (int i = 0; i < H * W; i++) g[i] = (float)sin(1.7 * i + 0.3);
    gb__fft_backward(&f, g, gs);
    double lhs = 0, rhs = 0;
    for (int i = 0; i < H * W; i++) lhs += (double)img[i] * g[i];
    const float *s = spec->data;
    for (int i = 0; i < 2 * H * f.K; i++) rhs += (double)s[i] * gs[i];
    assert_true(fabs(lhs - rhs) < 1e-5 * (fabs(lhs) + 1));
    gb__fft_free(&f);
    gb_tensor_free(spec);
    gb_tensor_free(ref);
}

static void test_fft_param(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    check_fft(ctx, 5, 6);
    check_fft(ctx, 4, 7);
    gb_ctx_free(ctx);
}

static void test_warp_adjoint(void **state) {
    (void)state;
    enum { H = 9, W = 11 };
    float a[H * W], b[H * W], wa[H * W], wtb[H * W];
    for (int i = 0; i < H * W; i++) a[i] = (float)cos(0.37 * i), b[i] = (float)sin(0.91 * i + 1);
    gb__rng g;
    gb__rng_seed(&g, 7);
    for (int trial = 0; trial < 5; trial++) {
        gb__warp w;
        gb__warp_random(&g, H, W, 2.5, 0.2, 20, &w);
        gb__warp_forward(&w, H, W, a, 0.0f, wa);
        memset(wtb, 0, sizeof wtb);
        gb__warp_backward(&w, H, W, b, wtb);
        double lhs = 0, rhs = 0;
        for (int i = 0; i < H * W; i++) lhs += (double)wa[i] * b[i], rhs += (double)a[i] * wtb[i];
        assert_true(fabs(lhs - rhs) < 1e-4);
    }
    gb__warp id;
    gb__warp_random(&g, H, W, 0, 0, 0, &id);
    assert_true(gb__warp_is_identity(&id));
    gb__warp_forward(&id, H, W, a, 0.5f, wa);
    assert_memory_equal(wa, a, sizeof a);
}

static void test_tv_gradient(void **state) {
    (void)state;
    enum { C = 2, H = 4, W = 5, N = C * H * W };
    for (int bi = 0; bi < 2; bi++) {
        double beta = bi ? 1.5 : 2.0;
        float x[N], g[N] = {0};
        for (int i = 0; i < N; i++) x[i] = (float)sin(1.3 * i) * 2;
        gb__tv(x, C, H, W, beta, 1.0, g);
        for (int i = 0; i < N; i++) {
            float xp[N], xm[N];
            memcpy(xp, x, sizeof x), memcpy(xm, x, sizeof x);
            double h = 1e-2;
            xp[i] += (float)h, xm[i] -= (float)h;
            double fd = (gb__tv(xp, C, H, W, beta, 1, NULL) - gb__tv(xm, C, H, W, beta, 1, NULL)) / (2 * h);
            assert_true(fabs(fd - g[i]) < 2e-2 * (fabs(fd) + 1));
        }
    }
}

static void test_perturb(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    int64_t dims[2] = {2, 1000};
    gb_tensor *t, *u;
    gb_tensor_create(ctx, GB_DTYPE_F32, 2, dims, &t);
    float *v = t->data;
    for (int i = 0; i < 2000; i++) v[i] = i % 3 == 0 ? 0 : (float)sin(0.7 * i) * (1 + i % 5);
    gb_tensor_clone(ctx, t, &u);
    assert_int_equal(gb_features_perturb(ctx, u, GB_PERTURB_BINARIZE, 0, 0), GB_OK);
    for (int n = 0; n < 2; n++) {
        double n0 = 0, n1 = 0;
        float mag = 0;
        for (int i = n * 1000; i < (n + 1) * 1000; i++) {
            const float *w = u->data;
            n0 += (double)v[i] * v[i], n1 += (double)w[i] * w[i];
            assert_true((v[i] > 0) == (w[i] > 0) && (v[i] < 0) == (w[i] < 0));
            if (w[i] != 0) {
                if (mag == 0) mag = fabsf(w[i]);
                assert_true(fabsf(fabsf(w[i]) - mag) < 1e-6f * mag);
            }
        }
        assert_true(fabs(n0 - n1) < 1e-4 * n0);
    }
    gb_tensor_free(u);
    gb_tensor_clone(ctx, t, &u);
    gb_tensor *u2;
    gb_tensor_clone(ctx, t, &u2);
    assert_int_equal(gb_features_perturb(ctx, u, GB_PERTURB_DROPOUT, 0.5, 3), GB_OK);
    assert_int_equal(gb_features_perturb(ctx, u2, GB_PERTURB_DROPOUT, 0.5, 3), GB_OK);
    assert_memory_equal(u->data, u2->data, sizeof(float) * 2000);
    int dropped = 0;
    const float *w = u->data;
    for (int i = 0; i < 2000; i++) {
        if (v[i] != 0 && w[i] == 0) dropped++;
        if (w[i] != 0) assert_true(fabsf(w[i] - 2 * v[i]) < 1e-6f * fabsf(w[i]));
    }
    assert_true(dropped > 1333 * 0.4 && dropped < 1333 * 0.6);
    assert_int_equal(gb_features_perturb(ctx, u, GB_PERTURB_DROPOUT, 1.0, 3), GB_ERR_ARG);
    gb_tensor_free(t), gb_tensor_free(u), gb_tensor_free(u2);
    gb_ctx_free(ctx);
}

/* ---- a single linear unit --------------------------------------------------------- */

static void test_linear_unit(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    char p[1024];
    src_path(p, sizeof p, "tests/fixtures/visualize/linear_unit.onnx");
    gb_model *m;
    assert_int_equal(gb_model_load(ctx, p, &m), GB_OK);
    gb_tensor *wt = NULL;
    for (int i = 0; i < gb_model_num_params(m); i++) {
        const char *name;
        gb_tensor *v;
        gb_model_param(m, i, &name, &v);
        if (!strcmp(name, "w")) wt = v;
    }
    assert_non_null(wt);
    const float *w = wt->data;
    gb_session *s;
    gb_session_create(m, &s);
    for (int optim = 0; optim < 2; optim++) {
        gb_vis_objective ob = {.kind = GB_VIS_OBJ_CLASS, .index = 0};
        gb_maximize_opts o = GB_MAXIMIZE_OPTS_INIT;
        o.param = GB_VIS_PARAM_PIXEL;
        o.optimizer = optim ? GB_VIS_OPTIM_SGD : GB_VIS_OPTIM_ADAM;
        o.lr = optim ? 0.5 : 0.02;
        o.steps = 800;
        o.l2 = 0.5;   /* maximizer w / (2 * 0.5) = w */
        o.init_sd = 1;
        o.seed = 5;
        gb_tensor *x;
        double fin;
        assert_int_equal(gb_maximize(s, NULL, &ob, 1, &o, &x, &fin), GB_OK);
        assert_int_equal(x->numel, 16);
        const float *xv = x->data;
        double dot = 0, nx = 0, nw = 0;
        for (int i = 0; i < 16; i++) dot += (double)xv[i] * w[i], nx += (double)xv[i] * xv[i], nw += (double)w[i] * w[i];
        double cosine = dot / sqrt(nx * nw);
        assert_true(cosine > 0.9999);
        assert_true(fabs(sqrt(nx) - sqrt(nw)) < 1e-2 * sqrt(nw));
        assert_true(fabs(fin - (nw + 0.25)) < 1e-2 * nw);   /* w.w + b at x = w */
        gb_tensor_free(x);
    }
    /* bad objectives and options */
    gb_vis_objective bad = {.kind = GB_VIS_OBJ_CLASS, .index = 3};
    gb_maximize_opts o = GB_MAXIMIZE_OPTS_INIT;
    o.steps = 2;
    gb_tensor *x = NULL;
    assert_int_equal(gb_maximize(s, NULL, &bad, 1, &o, &x, NULL), GB_ERR_ARG);
    assert_null(x);
    bad.index = 0;
    bad.tensor = "nope";
    assert_int_equal(gb_maximize(s, NULL, &bad, 1, &o, &x, NULL), GB_ERR_NOT_FOUND);
    bad.tensor = NULL;
    o.n_images = 2;   /* the model's batch is fixed to 1 */
    assert_int_equal(gb_maximize(s, NULL, &bad, 1, &o, &x, NULL), GB_ERR_ARG);
    o.n_images = 1;
    o.lr = -1;
    assert_int_equal(gb_maximize(s, NULL, &bad, 1, &o, &x, NULL), GB_ERR_ARG);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

/* ---- the default model ------------------------------------------------------------ */

typedef struct {
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;
    gb_sidecar *sc;
    gb_tensor *x;    /* the sneaker sample */
} dm;

static bool open_default(dm *d) {
    char p[1024], img[1024];
    src_path(p, sizeof p, "models/default/fashion_cnn.onnx");
    src_path(img, sizeof img, "models/default/samples/7_sneaker.png");
    if (access(p, R_OK) || access(img, R_OK)) return false;
    gb_ctx_create(&d->ctx);
    /* a 28x28 model gains nothing from threads, and idle OpenMP workers spin
     * on a busy machine (the CLI sets OMP_WAIT_POLICY=passive; ctest does not) */
    gb_ctx_set_threads(d->ctx, 1);
    assert_int_equal(gb_model_load(d->ctx, p, &d->m), GB_OK);
    assert_int_equal(gb_sidecar_for_model(d->ctx, d->m, p, &d->sc), GB_OK);
    assert_int_equal(gb_session_create(d->m, &d->s), GB_OK);
    gb_image *im;
    assert_int_equal(gb_image_load(d->ctx, img, &im), GB_OK);
    assert_int_equal(gb_preproc_image(d->ctx, &d->sc->input, im, &d->x), GB_OK);
    gb_image_free(im);
    return true;
}

static void close_default(dm *d) {
    gb_tensor_free(d->x);
    gb_sidecar_free(d->sc);
    gb_session_free(d->s);
    gb_model_free(d->m);
    gb_ctx_free(d->ctx);
}

static void softmax(const float *z, int n, double *p) {
    double mx = z[0], s = 0;
    for (int i = 1; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    for (int i = 0; i < n; i++) s += p[i] = exp(z[i] - mx);
    for (int i = 0; i < n; i++) p[i] /= s;
}

static void test_class_maximization(void **state) {
    (void)state;
    dm d;
    if (!open_default(&d)) skip();
    gb_tensor *first = NULL;
    for (int k = 0; k < 10; k++) {
        gb_vis_objective ob = {.kind = GB_VIS_OBJ_CLASS, .index = k};
        gb_maximize_opts o = GB_MAXIMIZE_OPTS_INIT;
        o.steps = 128;
        o.seed = 11;
        o.jitter = 2, o.scale_jitter = 0.05, o.rotate_deg = 5;
        gb_tensor *x;
        assert_int_equal(gb_maximize(d.s, &d.sc->input, &ob, 1, &o, &x, NULL), GB_OK);
        const gb_tensor *in[1] = {x};
        assert_int_equal(gb_session_run(d.s, in, 1), GB_OK);
        double p[10];
        softmax(gb_session_output(d.s, 0)->data, 10, p);
        int best = 0;
        for (int c = 1; c < 10; c++) best = p[c] > p[best] ? c : best;
        assert_int_equal(best, k);
        assert_true(p[k] > 0.9);
        /* pixels stay in the image range (the sigmoid) */
        gb_image *im;
        assert_int_equal(gb_preproc_inverse(d.ctx, &d.sc->input, x, 0, &im), GB_OK);
        gb_image_free(im);
        if (k == 0) first = x;
        else gb_tensor_free(x);
    }
    /* determinism: same seed -> identical; another seed -> different */
    gb_vis_objective ob = {.kind = GB_VIS_OBJ_CLASS, .index = 0};
    gb_maximize_opts o = GB_MAXIMIZE_OPTS_INIT;
    o.steps = 128, o.seed = 11, o.jitter = 2, o.scale_jitter = 0.05, o.rotate_deg = 5;
    gb_tensor *again, *other;
    assert_int_equal(gb_maximize(d.s, &d.sc->input, &ob, 1, &o, &again, NULL), GB_OK);
    assert_memory_equal(first->data, again->data, sizeof(float) * (size_t)first->numel);
    o.seed = 12;
    assert_int_equal(gb_maximize(d.s, &d.sc->input, &ob, 1, &o, &other, NULL), GB_OK);
    assert_memory_not_equal(first->data, other->data, sizeof(float) * (size_t)first->numel);
    gb_tensor_free(first), gb_tensor_free(again), gb_tensor_free(other);
    close_default(&d);
}

static void test_units_and_diversity(void **state) {
    (void)state;
    dm d;
    if (!open_default(&d)) skip();
    const char *layer = "/features/features.12/Relu_output_0";
    /* a channel, a unit and a direction, combined, on 3 diverse images */
    float dir[32];
    for (int c = 0; c < 32; c++) dir[c] = c == 5 ? 1.0f : 0.0f;
    gb_vis_objective ob[3] = {{.kind = GB_VIS_OBJ_CHANNEL, .tensor = layer, .index = 3},
                              {.kind = GB_VIS_OBJ_NEURON, .tensor = layer, .index = 4, .h = 7, .w = 7, .weight = 0.5},
                              {.kind = GB_VIS_OBJ_DIRECTION, .tensor = layer, .direction = dir, .n_direction = 32}};
    gb_maximize_opts o = GB_MAXIMIZE_OPTS_INIT;
    o.steps = 64, o.n_images = 3, o.diversity = 1.0, o.seed = 2;
    gb_tensor *x;
    double fin[3];
    assert_int_equal(gb_maximize(d.s, &d.sc->input, ob, 3, &o, &x, fin), GB_OK);
    assert_int_equal(x->dims[0], 3);
    /* the objective at the result beats that at the sample image */
    gb_vis_unit u = {.channel = 3};
    snprintf(u.tensor, sizeof u.tensor, "%s", layer);
    gb_tensor *act;
    assert_int_equal(gb_features_compute(d.s, d.x, layer, &act), GB_OK);
    gb_feature_stats st0[32];
    gb_features_stats(d.ctx, act, 0, st0);
    gb_tensor_free(act);
    assert_int_equal(gb_features_compute(d.s, x, layer, &act), GB_OK);
    for (int b = 0; b < 3; b++) {
        gb_feature_stats st[32];
        gb_features_stats(d.ctx, act, b, st);
        assert_true(st[3].mean > st0[3].mean);
        assert_true(st[5].mean > st0[5].mean);
        assert_true(isfinite(fin[b]));
    }
    gb_tensor_free(act);
    gb_tensor_free(x);
    /* a direction of the wrong length, a unit off the map */
    ob[2].n_direction = 31;
    assert_int_equal(gb_maximize(d.s, &d.sc->input, ob, 3, &o, &x, NULL), GB_ERR_ARG);
    ob[1].h = 14;
    assert_int_equal(gb_maximize(d.s, &d.sc->input, ob, 2, &o, &x, NULL), GB_ERR_ARG);
    close_default(&d);
}

static void test_features(void **state) {
    (void)state;
    dm d;
    if (!open_default(&d)) skip();
    gb_receptive_field rf;
    /* conv3 conv3: 5 px; + pool2: 6, stride 2; + conv3 conv3: 14; + pool2: 16, stride 4; + conv3 conv3: 32 */
    assert_int_equal(gb_receptive_field_of(d.m, "/features/features.5/Relu_output_0", &rf), GB_OK);
    assert_true(rf.size[0] == 5 && rf.jump[0] == 1 && rf.start[0] == 0 && !rf.whole);
    assert_int_equal(gb_receptive_field_of(d.m, "/features/features.12/Relu_output_0", &rf), GB_OK);
    assert_true(rf.size[1] == 14 && rf.jump[1] == 2 && rf.start[1] == 0.5);
    int64_t box[4];
    gb_receptive_field_box(&rf, 0, 13, 28, 28, box);
    assert_true(box[0] == 0 && box[1] == 8 && box[2] == 20 && box[3] == 28);
    /* the unit's input gradient is zero outside its field */
    gb_session_keep_activations(d.s, 1);
    const gb_tensor *in1[1] = {d.x};
    assert_int_equal(gb_session_run(d.s, in1, 1), GB_OK);
    gb_seed sd = {.tensor = "/features/features.12/Relu_output_0", .element = 3 * 196 + 0 * 14 + 13};
    assert_int_equal(gb_session_backward(d.s, &sd, NULL, 0), GB_OK);
    const float *gi = gb_session_grad(d.s, "image")->data;
    int inside = 0;
    for (int y = 0; y < 28; y++)
        for (int xx = 0; xx < 28; xx++) {
            bool in_box = y >= box[0] && y < box[1] && xx >= box[2] && xx < box[3];
            if (!in_box) assert_true(gi[y * 28 + xx] == 0);
            inside += in_box && gi[y * 28 + xx] != 0;
        }
    assert_true(inside > 0);
    assert_int_equal(gb_receptive_field_of(d.m, "/features/features.19/Relu_output_0", &rf), GB_OK);
    assert_true(rf.size[0] == 32 && rf.jump[0] == 4);
    assert_int_equal(gb_receptive_field_of(d.m, "logits", &rf), GB_OK);
    assert_true(rf.whole);
    assert_int_equal(gb_receptive_field_of(d.m, "nope", &rf), GB_ERR_NOT_FOUND);

    gb_tensor *act;
    assert_int_equal(gb_features_compute(d.s, d.x, "/features/features.5/Relu_output_0", &act), GB_OK);
    assert_int_equal(act->ndim, 4);
    gb_feature_stats st[16];
    int64_t order[16];
    assert_int_equal(gb_features_stats(d.ctx, act, 0, st), GB_OK);
    assert_int_equal(gb_features_order(d.ctx, act, 0, order), GB_OK);
    for (int k = 1; k < 16; k++) assert_true(st[order[k - 1]].mean >= st[order[k]].mean);
    const float *a = act->data;
    double sum = 0;
    for (int i = 0; i < 784; i++) sum += a[2 * 784 + i];
    assert_true(fabs(st[2].mean - sum / 784) < 1e-6);
    assert_true(st[2].min >= 0);   /* after a ReLU */
    gb_image *mos;
    assert_int_equal(gb_features_mosaic(d.ctx, act, 0, order, 16, 0, 0, &mos), GB_OK);
    assert_int_equal(mos->width, 4 * 28 * 2 + 5 * 2);
    gb_image_free(mos);
    int64_t badch = 16;
    assert_int_equal(gb_features_mosaic(d.ctx, act, 0, &badch, 1, 0, 0, &mos), GB_ERR_ARG);
    gb_tensor_free(act);
    /* unit scores: the best position's value, found again by features_compute */
    gb_vis_unit u;
    assert_int_equal(gb_vis_unit_parse(d.ctx, "/features/features.12/Relu_output_0:3", &u), GB_OK);
    double score;
    int64_t pos;
    assert_int_equal(gb_features_unit_scores(d.s, d.x, &u, &score, &pos), GB_OK);
    assert_int_equal(gb_features_compute(d.s, d.x, u.tensor, &act), GB_OK);
    assert_true(((const float *)act->data)[3 * 196 + pos] == (float)score);
    gb_tensor_free(act);
    close_default(&d);
}

static double rms_x(const gb_tensor *a, const gb_tensor *b) {
    const float *p = a->data, *q = b->data;
    double s = 0;
    for (int64_t i = 0; i < a->numel; i++) s += ((double)p[i] - q[i]) * ((double)p[i] - q[i]);
    return sqrt(s / (double)a->numel);
}

static void test_inversion(void **state) {
    (void)state;
    dm d;
    if (!open_default(&d)) skip();
    const char *layers[] = {"image", "/features/features.5/Relu_output_0", "/features/features.19/Relu_output_0"};
    double err[3];
    for (int l = 0; l < 3; l++) {
        gb_tensor *phi0, *rec;
        assert_int_equal(gb_features_compute(d.s, d.x, layers[l], &phi0), GB_OK);
        gb_invert_opts o = GB_INVERT_OPTS_INIT;
        o.seed = 1;
        double dist;
        assert_int_equal(gb_invert(d.s, &d.sc->input, layers[l], phi0, &o, &rec, &dist), GB_OK);
        err[l] = rms_x(rec, d.x);
        if (l == 0) assert_true(dist < 0.01);
        gb_tensor_free(phi0), gb_tensor_free(rec);
    }
    /* x spans about 2.8 units (0..255 / 255 / 0.353): the input layer comes back
     * to within 4% of that, and early layers beat late ones */
    assert_true(err[0] < 0.1);
    assert_true(err[1] < 0.15);
    assert_true(err[1] < err[2] / 3);
    /* shape mismatch and an all-zero target are refused */
    gb_tensor *z;
    int64_t dims[2] = {1, 10};
    gb_tensor_create(d.ctx, GB_DTYPE_F32, 2, dims, &z);
    gb_tensor *rec = NULL;
    assert_int_equal(gb_invert(d.s, &d.sc->input, "logits", z, NULL, &rec, NULL), GB_ERR_ARG);
    ((float *)z->data)[0] = 1;
    assert_int_equal(gb_invert(d.s, &d.sc->input, "/Flatten_output_0", z, NULL, &rec, NULL), GB_ERR_SHAPE);
    assert_null(rec);
    gb_tensor_free(z);
    close_default(&d);
}

/* gb_model_save_params round trip, and a decoder that learns: trained by
 * gb_decoder_train on the ten sample images for 60 steps, its loss falls
 * and its reconstructions beat the untrained decoder's. */
static void test_decoder(void **state) {
    (void)state;
    dm d;
    if (!open_default(&d)) skip();
    char init[1024], tmp[] = "/tmp/gb_test_decoder_XXXXXX";
    src_path(init, sizeof init, "models/default/decoder_logits_init.onnx");
    if (access(init, R_OK)) {
        close_default(&d);
        skip();
    }
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    gb_model *dec;
    assert_int_equal(gb_model_load(d.ctx, init, &dec), GB_OK);
    /* ten samples as one batch */
    static const char *names[] = {"0_tshirt", "1_trouser", "2_pullover", "3_dress", "4_coat",
                                  "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"};
    gb_image *imgs[10];
    for (int i = 0; i < 10; i++) {
        char p[1024], rel[128];
        snprintf(rel, sizeof rel, "models/default/samples/%s.png", names[i]);
        src_path(p, sizeof p, rel);
        assert_int_equal(gb_image_load(d.ctx, p, &imgs[i]), GB_OK);
    }
    gb_tensor *x;
    assert_int_equal(gb_preproc_batch(d.ctx, &d.sc->input, (const gb_image *const *)imgs, 10, &x), GB_OK);
    for (int i = 0; i < 10; i++) gb_image_free(imgs[i]);
    gb_tensor *phi, *rec0, *rec1;
    assert_int_equal(gb_features_compute(d.s, x, "logits", &phi), GB_OK);
    assert_int_equal(gb_decoder_invert(dec, phi, &rec0), GB_OK);
    gb_decoder_train_opts o = {.steps = 60, .batch = 10, .lr = 3e-3, .seed = 1};
    double losses[60];
    assert_int_equal(gb_decoder_train(d.s, "logits", dec, x, &o, losses), GB_OK);
    assert_true(losses[59] < 0.5 * losses[0]);
    assert_int_equal(gb_decoder_invert(dec, phi, &rec1), GB_OK);
    assert_true(rms_x(rec1, x) < 0.8 * rms_x(rec0, x));
    /* save, reload: the same parameters and the same reconstruction */
    assert_int_equal(gb_model_save_params(dec, init, tmp), GB_OK);
    gb_model *back;
    assert_int_equal(gb_model_load(d.ctx, tmp, &back), GB_OK);
    assert_int_equal(gb_model_num_params(back), gb_model_num_params(dec));
    for (int i = 0; i < gb_model_num_params(dec); i++) {
        gb_tensor *a, *b;
        gb_model_param(dec, i, NULL, &a);
        gb_model_param(back, i, NULL, &b);
        assert_int_equal(a->numel, b->numel);
        assert_memory_equal(a->data, b->data, sizeof(float) * (size_t)a->numel);
    }
    gb_tensor *rec2;
    assert_int_equal(gb_decoder_invert(back, phi, &rec2), GB_OK);
    assert_memory_equal(rec1->data, rec2->data, sizeof(float) * (size_t)rec1->numel);
    /* saving against another model's file fails without leaving a file */
    unlink(tmp);
    char other[1024];
    src_path(other, sizeof other, "tests/fixtures/visualize/linear_unit.onnx");
    assert_int_equal(gb_model_save_params(dec, other, tmp), GB_ERR_ARG);
    assert_int_equal(access(tmp, F_OK), -1);
    /* the classifier's fc.weight (10, 64) against the decoder's (784, 10) */
    assert_int_equal(gb_model_save_params(d.m, init, tmp), GB_ERR_SHAPE);
    assert_int_equal(access(tmp, F_OK), -1);
    gb_model_free(back);
    gb_model_free(dec);
    /* The committed decoder (glassbox train-decoder on 20000 Fashion-MNIST
     * training images, docs/visualize.md): at the last FC layer, reconstructions
     * from binarized features stay closer to the images than from 50% dropout
     * (Dosovitskiy & Brox 2016, sec. 5.2), and both are worse than from the
     * features themselves. */
    char trained[1024];
    src_path(trained, sizeof trained, "models/default/decoder_logits.onnx");
    if (!access(trained, R_OK)) {
        assert_int_equal(gb_model_load(d.ctx, trained, &dec), GB_OK);
        double err[3];
        for (int k = 0; k < 3; k++) {
            gb_tensor *f, *r;
            gb_tensor_clone(d.ctx, phi, &f);
            if (k) assert_int_equal(gb_features_perturb(d.ctx, f, k == 1 ? GB_PERTURB_BINARIZE : GB_PERTURB_DROPOUT,
                                                        0.5, 1), GB_OK);
            assert_int_equal(gb_decoder_invert(dec, f, &r), GB_OK);
            err[k] = rms_x(r, x);
            gb_tensor_free(f), gb_tensor_free(r);
        }
        assert_true(err[0] < err[1]);
        assert_true(err[1] < err[2]);
        gb_model_free(dec);
    }
    gb_tensor_free(rec0), gb_tensor_free(rec1), gb_tensor_free(rec2), gb_tensor_free(phi), gb_tensor_free(x);
    close_default(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unit_parse),
        cmocka_unit_test(test_fft_param),
        cmocka_unit_test(test_warp_adjoint),
        cmocka_unit_test(test_tv_gradient),
        cmocka_unit_test(test_perturb),
        cmocka_unit_test(test_linear_unit),
        cmocka_unit_test(test_class_maximization),
        cmocka_unit_test(test_units_and_diversity),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_inversion),
        cmocka_unit_test(test_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
