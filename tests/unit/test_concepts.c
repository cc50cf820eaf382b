/*
 * test_concepts.c — the concept dataset, the quantile sketch, Network
 * Dissection, TCAV, linear probes and Net2Vec (include/glassbox/concepts.h).
 *
 * 1. The KLL sketch: on 10^6 values (half zeros, as after a ReLU, half
 *    log-normal) the top-0.5% threshold is within 0.1 percentile of the exact
 *    sorted quantile, and the values held stay bounded (10^5 vs 10^6 values).
 * 2. concepts-gen + the Broden reader: files, label numbers (R + 256 G),
 *    categories, an exact color label on every pixel, determinism per seed
 *    and prefix-stability (a larger count extends a smaller one).
 * 3. Bilinear upsampling = torch's F.interpolate(align_corners=False).
 * 4. Dissection of a hand-made network of exact color detectors
 *    (tests/fixtures/concepts/color_detector.onnx): unit k's best concept is
 *    color k with IoU > 0.99; and with the default quantile 0.005 every T_k
 *    of a layer without ties (graded_units.onnx) is within 0.1 percentile
 *    of the exact quantile of all its activations (sorted here).
 * 5. TCAV on tcav_toy.onnx (logit 0 depends on redness, logit 1 on
 *    greenness only): TCAV(red, 0) high and significant, TCAV(red, 1) not
 *    significant, CAV accuracy high. Student's t p-values against scipy.
 * 6. Probes: on the color detector, a probe of the color layer beats the
 *    pixel baseline or matches it; both above chance. Net2Vec runs and its
 *    learned combination is at least as good as the best single unit for a
 *    color concept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "concepts/concepts_internal.h"
#include "glassbox/concepts.h"

static char g_dir[256];   /* a temporary dataset, made once */

static void fixture(char *buf, size_t cap, const char *file) {
    const char *src = getenv("GB_SOURCE_DIR");
    if (!src) fail_msg("GB_SOURCE_DIR is not set (ctest sets it to the source tree)");
    snprintf(buf, cap, "%s/tests/fixtures/concepts/%s", src, file);
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Fraction of sorted values below v and at most v. */
static void rank_of(const float *sorted, int64_t n, float v, double *lo, double *hi) {
    int64_t a = 0, b = n;
    while (a < b) {
        int64_t mid = (a + b) / 2;
        if (sorted[mid] < v) a = mid + 1;
        else b = mid;
    }
    int64_t c = a, d = n;
    while (c < d) {
        int64_t mid = (c + d) / 2;
        if (sorted[mid] <= v) c = mid + 1;
        else d = mid;
    }
    *lo = (double)a / (double)n;
    *hi = (double)c / (double)n;
}

/* ---- 1. sketch ---- */

static void test_sketch_accuracy(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    const int64_t n = 1000000;
    float *v = malloc(sizeof *v * (size_t)n);
    gb__crng g = {42};
    for (int64_t i = 0; i < n; i++) {
        double u1 = gb__crng_unif(&g) + 1e-12, u2 = gb__crng_unif(&g);
        double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
        v[i] = gb__crng_unif(&g) < 0.5 ? 0.0f : (float)exp(z);
    }
    gb_qsketch *q;
    assert_int_equal(gb_qsketch_create(ctx, 4096, 7, &q), GB_OK);
    int64_t retained_1e5 = 0;
    for (int64_t i = 0; i < n; i += 1000) {
        assert_int_equal(gb_qsketch_add(q, v + i, 1000, 1), GB_OK);
        if (i + 1000 == 100000) retained_1e5 = gb_qsketch_retained(q);
    }
    int64_t retained_1e6 = gb_qsketch_retained(q);
    assert_int_equal(gb_qsketch_count(q), n);
    double T = gb_qsketch_quantile(q, 0.995);
    qsort(v, (size_t)n, sizeof *v, cmp_f);
    double lo, hi;
    rank_of(v, n, (float)T, &lo, &hi);
    printf("sketch: T = %.5f, rank %.5f..%.5f (target 0.995), retained %lld at 1e5, %lld at 1e6 values\n", T, lo, hi,
           (long long)retained_1e5, (long long)retained_1e6);
    assert_true(hi >= 0.994 && lo <= 0.996);
    /* memory bound: about 3k whatever the count */
    assert_true(retained_1e6 <= 3 * 4096 + 64);
    assert_true(retained_1e6 <= retained_1e5 + 4096);
    gb_qsketch_free(q);
    /* a small stream is exact */
    assert_int_equal(gb_qsketch_create(ctx, 64, 1, &q), GB_OK);
    float w[10] = {5, 3, 9, 1, 7, 2, 8, 4, 6, 0};
    gb_qsketch_add(q, w, 10, 1);
    assert_true(gb_qsketch_quantile(q, 0.5) == 4.0);
    assert_true(gb_qsketch_quantile(q, 1.0) == 9.0);
    gb_qsketch_free(q);
    assert_int_equal(gb_qsketch_create(ctx, 2, 1, &q), GB_ERR_ARG);
    free(v);
    gb_ctx_free(ctx);
}

/* ---- 2. generator and reader ---- */

static int read_all(const char *path, char **buf, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)*len + 1);
    size_t got = fread(*buf, 1, (size_t)*len, f);
    fclose(f);
    return got == (size_t)*len;
}

static void test_generator_reader(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb_broden *b;
    assert_int_equal(gb_broden_open(ctx, g_dir, &b), GB_OK);
    assert_int_equal(gb_broden_size(b), 120);
    assert_int_equal(gb_broden_num_categories(b), 5);
    int ccolor = gb_broden_category_find(b, "color"), cscene = gb_broden_category_find(b, "scene");
    assert_true(ccolor >= 0 && cscene >= 0);
    assert_string_equal(gb_broden_label_name(b, 1), "black");
    assert_int_equal(gb_broden_label_category(b, 1), ccolor);
    assert_int_equal(gb_broden_label_category(b, 0), -1);
    int n_val = 0;
    for (int i = 0; i < gb_broden_size(b); i++) {
        gb_broden_item it;
        assert_int_equal(gb_broden_item_info(b, i, &it), GB_OK);
        assert_int_equal(it.sh, 48);
        n_val += !strcmp(it.split, "val");
        gb_broden_seg seg;
        assert_int_equal(gb_broden_seg_load(b, i, &seg), GB_OK);
        assert_int_equal(seg.n_planes, 4);
        assert_int_equal(seg.n_scalars, 1);
        assert_int_equal(gb_broden_label_category(b, seg.scalars[0]), cscene);
        assert_int_equal(gb_broden_scalar_label(b, i, cscene), seg.scalars[0]);
        /* plane 0 is color: every pixel has exactly one color, matching the image */
        gb_image *img;
        assert_int_equal(gb_broden_image_load(b, i, &img), GB_OK);
        for (int p = 0; p < 48 * 48; p++) {
            int lab = seg.planes[p];
            assert_int_equal(gb_broden_label_category(b, lab), ccolor);
            if (lab == 1) assert_true(img->data[3 * p] == 0 && img->data[3 * p + 1] == 0);   /* black */
            if (lab == 2) assert_true(img->data[3 * p] == 255 && img->data[3 * p + 2] == 255); /* white */
        }
        gb_image_free(img);
        gb_broden_seg_clear(&seg);
    }
    assert_true(n_val > 5 && n_val < 45);
    gb_broden_free(b);

    /* determinism and prefix stability: 60 scenes with the same seed give
     * the same first 60 images and labels */
    char d2[300], p1[400], p2[400];
    snprintf(d2, sizeof d2, "%s_b", g_dir);
    gb_scenes_opts so = {.count = 60, .size = 48, .seed = 3};
    assert_int_equal(gb_scenes_generate(ctx, d2, &so), GB_OK);
    const char *files[] = {"000007.png", "000007_object.png", "000059_part.png", "000031_texture.png"};
    for (int k = 0; k < 4; k++) {
        snprintf(p1, sizeof p1, "%s/images/%s", g_dir, files[k]);
        snprintf(p2, sizeof p2, "%s/images/%s", d2, files[k]);
        char *a, *c;
        long la, lc;
        assert_true(read_all(p1, &a, &la) && read_all(p2, &c, &lc));
        assert_true(la == lc && !memcmp(a, c, (size_t)la));
        free(a);
        free(c);
    }
    /* bad input: one-line errors, no crash */
    assert_int_equal(gb_broden_open(ctx, "/nonexistent/broden", &b), GB_ERR_IO);
    assert_null(b);
    so.count = 0;
    assert_int_equal(gb_scenes_generate(ctx, d2, &so), GB_ERR_ARG);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d2);
    assert_int_equal(system(cmd), 0);
    gb_ctx_free(ctx);
}

/* ---- 3. upsampling ---- */

static void test_upsample(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb__lerp ly, lx;
    /* (1, 2) -> (1, 4): torch gives [a, .75a + .25b, .25a + .75b, b] */
    assert_int_equal(gb__lerp_make(ctx, 1, 1, &ly), GB_OK);
    assert_int_equal(gb__lerp_make(ctx, 2, 4, &lx), GB_OK);
    float in[2] = {1, 5}, out[4];
    gb__upsample(in, 2, &ly, &lx, out);
    assert_float_equal(out[0], 1, 1e-6);
    assert_float_equal(out[1], 2, 1e-6);
    assert_float_equal(out[2], 4, 1e-6);
    assert_float_equal(out[3], 5, 1e-6);
    gb__lerp_free(&ly);
    gb__lerp_free(&lx);
    /* 3 -> 7 (non-integer ratio), against torch.nn.functional.interpolate:
     * F.interpolate(torch.tensor([[[[0., 10., 4.]]]]), size=(1, 7), mode='bilinear', align_corners=False) */
    static const float ref[7] = {0.0f, 1.4285715f, 5.7142859f, 10.0f, 7.4285712f, 4.8571429f, 4.0f};
    assert_int_equal(gb__lerp_make(ctx, 1, 1, &ly), GB_OK);
    assert_int_equal(gb__lerp_make(ctx, 3, 7, &lx), GB_OK);
    float in3[3] = {0, 10, 4}, out7[7];
    gb__upsample(in3, 3, &ly, &lx, out7);
    for (int i = 0; i < 7; i++) assert_float_equal(out7[i], ref[i], 1e-5);
    gb__lerp_free(&ly);
    gb__lerp_free(&lx);
    gb_ctx_free(ctx);
}

/* ---- 4. dissection ---- */

static gb_model *load_model(gb_ctx *ctx, const char *file, gb_preproc *pp) {
    char path[1024];
    fixture(path, sizeof path, file);
    gb_model *m;
    if (gb_model_load(ctx, path, &m)) fail_msg("%s", gb_ctx_errmsg(ctx));
    gb_sidecar *sc;
    if (gb_sidecar_for_model(ctx, m, path, &sc)) fail_msg("%s", gb_ctx_errmsg(ctx));
    *pp = sc->input;
    gb_sidecar_free(sc);
    return m;
}

static const char *COLOR_NAMES[12] = {"black", "white", "red",   "green", "blue", "yellow",
                                      "orange", "purple", "pink", "brown", "gray", "cyan"};

static void test_dissect_color_detectors(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb_preproc pp;
    gb_model *m = load_model(ctx, "color_detector.onnx", &pp);
    pp.height = pp.width = 48;   /* the dataset's size; the detector is 1x1 */
    gb_broden *b;
    assert_int_equal(gb_broden_open(ctx, g_dir, &b), GB_OK);
    const char *layers[1] = {"colors"};
    /* A unit that is exactly 1 on its color and 0 elsewhere fires on its whole
     * color region only when T_k falls on the zeros: a top quantile larger
     * than every color's share of the pixels. */
    gb_dissect_opts o = {.quantile = 0.6};
    gb_dissect_result *r;
    gb_status st = gb_dissect(ctx, m, &pp, b, layers, 1, &o, &r);
    if (st) fail_msg("%s", gb_ctx_errmsg(ctx));
    assert_int_equal(r->n_units, 12);
    for (int u = 0; u < 12; u++) {
        printf("unit %2d: %-7s IoU %.4f (T %.3g)\n", u, gb_broden_label_name(b, r->units[u].label), r->units[u].iou,
               r->units[u].threshold);
        assert_string_equal(gb_broden_label_name(b, r->units[u].label), COLOR_NAMES[u]);
        assert_true(r->units[u].iou > 0.99);
    }
    int units;
    assert_int_equal(gb_dissect_unique_detectors(r, b, 0, gb_broden_category_find(b, "color"), &units), 12);
    assert_int_equal(units, 12);
    gb_image *strip;
    assert_int_equal(gb_dissect_render_unit(ctx, m, &pp, b, r, 2, &strip), GB_OK);
    assert_int_equal(strip->height, 48);
    gb_image_free(strip);
    gb_dissect_result_free(r);

    /* bad layer names and shapes */
    const char *bad[1] = {"nope"};
    assert_int_equal(gb_dissect(ctx, m, &pp, b, bad, 1, &o, &r), GB_ERR_NOT_FOUND);
    assert_null(r);
    const char *flat[1] = {"logits"};
    assert_int_equal(gb_dissect(ctx, m, &pp, b, flat, 1, &o, &r), GB_ERR_SHAPE);
    gb_model_free(m);

    /* Default quantile: T_k against the exact (1 - 0.005) quantile of all of
     * unit k's activations over the dataset, on a layer without ties
     * (graded_units.onnx): 120 x 48 x 48 = 276k values per unit, so the
     * sketch has compacted many times. */
    m = load_model(ctx, "graded_units.onnx", &pp);
    pp.height = pp.width = 48;
    const char *units_layer[1] = {"units"};
    gb_dissect_opts o2 = {0};
    assert_int_equal(gb_dissect(ctx, m, &pp, b, units_layer, 1, &o2, &r), GB_OK);
    int N = gb_broden_size(b);
    int64_t per = (int64_t)N * 48 * 48;
    float *all = malloc(sizeof *all * (size_t)per * 8);
    gb_session *s;
    gb_session_create(m, &s);
    gb_session_keep_activations(s, 1);
    int idx[20];
    for (int i0 = 0; i0 < N; i0 += 20) {
        for (int k = 0; k < 20; k++) idx[k] = i0 + k;
        gb_tensor *x;
        assert_int_equal(gb__broden_batch(ctx, b, &pp, idx, 20, &x), GB_OK);
        const gb_tensor *in[1] = {x};
        assert_int_equal(gb_session_run(s, in, 1), GB_OK);
        const gb_tensor *t = gb_session_tensor(s, "units");
        for (int n = 0; n < 20; n++)
            for (int k = 0; k < 8; k++)
                memcpy(all + (size_t)k * (size_t)per + (size_t)(i0 + n) * 48 * 48,
                       (const float *)t->data + ((size_t)n * 8 + (size_t)k) * 48 * 48, sizeof(float) * 48 * 48);
        gb_tensor_free(x);
    }
    for (int k = 0; k < 8; k++) {
        float *v = all + (size_t)k * (size_t)per;
        qsort(v, (size_t)per, sizeof *v, cmp_f);
        double lo, hi;
        rank_of(v, per, r->units[k].threshold, &lo, &hi);
        printf("unit %d: T = %.5f exact q = %.5f rank %.5f..%.5f\n", k, r->units[k].threshold,
               v[(int64_t)(0.995 * (double)per)], lo, hi);
        assert_true(hi >= 0.994 && lo <= 0.996);
    }
    free(all);
    gb_session_free(s);
    gb_dissect_result_free(r);
    gb_broden_free(b);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

/* ---- 5. TCAV ---- */

/* (n, 3, 32, 32) images in [0, 1]: a gray background with noise in R and
 * B only (so its greenness G - (R + B) / 2 is <= 0: the toy's channel 1 is
 * exactly 0 there, and a red square does not change it), 0-2 green squares
 * in the right half; with `red`, a red square in the left half (1: always,
 * 2: half of the images). */
static gb_tensor *toy_images(int n, int red, uint64_t seed) {
    int64_t dims[4] = {n, 3, 32, 32};
    gb_tensor *t;
    gb_tensor_create(NULL, GB_DTYPE_F32, 4, dims, &t);
    float *x = t->data;
    gb__crng g = {seed};
    for (int i = 0; i < n; i++) {
        float *im = x + (size_t)i * 3 * 1024;
        double bg = 0.3 + 0.4 * gb__crng_unif(&g);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++) im[c * 1024 + p] = (float)(bg + (c != 1) * 0.1 * gb__crng_unif(&g));
        int ng = gb__crng_below(&g, 3);
        for (int k = 0; k < ng; k++) {
            int x0 = 16 + gb__crng_below(&g, 10), y0 = gb__crng_below(&g, 26);
            for (int y = y0; y < y0 + 6; y++)
                for (int xx = x0; xx < x0 + 6; xx++) {
                    im[0 * 1024 + y * 32 + xx] = 0.15f;
                    im[1 * 1024 + y * 32 + xx] = 0.8f;
                    im[2 * 1024 + y * 32 + xx] = 0.15f;
                }
        }
        if (red == 1 || (red == 2 && gb__crng_unif(&g) < 0.5)) {
            int x0 = gb__crng_below(&g, 6), y0 = gb__crng_below(&g, 22);
            for (int y = y0; y < y0 + 10; y++)
                for (int xx = x0; xx < x0 + 10; xx++) {
                    im[0 * 1024 + y * 32 + xx] = 0.9f;
                    im[1 * 1024 + y * 32 + xx] = 0.1f;
                    im[2 * 1024 + y * 32 + xx] = 0.1f;
                }
        }
    }
    return t;
}

static void test_tcav_toy(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb_preproc pp;
    gb_model *m = load_model(ctx, "tcav_toy.onnx", &pp);
    gb_tensor *concept = toy_images(40, 1, 1), *cls = toy_images(60, 2, 2), *rnd[10];
    for (int i = 0; i < 10; i++) rnd[i] = toy_images(40, 0, 100 + (uint64_t)i);
    gb_tcav_opts o = {0};
    gb_tcav_result r0, r1;
    assert_int_equal(gb_tcav(ctx, m, "feat", 0, concept, (const gb_tensor *const *)rnd, 10, cls, &o, &r0), GB_OK);
    assert_int_equal(gb_tcav(ctx, m, "feat", 1, concept, (const gb_tensor *const *)rnd, 10, cls, &o, &r1), GB_OK);
    double acc = 0;
    for (int i = 0; i < 10; i++) acc += r0.accuracies[i] / 10;
    printf("TCAV(red, A) = %.3f +- %.3f vs random %.3f +- %.3f, p = %.3g; TCAV(red, B) = %.3f +- %.3f vs random "
           "%.3f +- %.3f, p = %.3g; CAV accuracy %.3f\n",
           r0.mean, r0.std, r0.random_mean, r0.random_std, r0.p_value, r1.mean, r1.std, r1.random_mean, r1.random_std,
           r1.p_value, acc);
    assert_true(acc > 0.9);
    assert_true(r0.mean > 0.8);
    assert_true(r0.significant);
    assert_false(r1.significant);
    gb_tcav_result_clear(&r0);
    gb_tcav_result_clear(&r1);
    /* fewer than 2 random sets, a bad target */
    assert_int_equal(gb_tcav(ctx, m, "feat", 0, concept, (const gb_tensor *const *)rnd, 1, cls, &o, &r0), GB_ERR_ARG);
    assert_int_equal(gb_tcav(ctx, m, "feat", 7, concept, (const gb_tensor *const *)rnd, 3, cls, &o, &r0), GB_ERR_ARG);
    assert_int_equal(gb_tcav(ctx, m, "nope", 0, concept, (const gb_tensor *const *)rnd, 3, cls, &o, &r0),
                     GB_ERR_NOT_FOUND);
    gb_tensor_free(concept);
    gb_tensor_free(cls);
    for (int i = 0; i < 10; i++) gb_tensor_free(rnd[i]);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

static void test_student_t(void **state) {
    (void)state;
    /* scipy: 2 * stats.t.sf(|t|, df) */
    assert_float_equal(gb_student_t_p(2.0, 10), 0.07338803, 1e-7);
    assert_float_equal(gb_student_t_p(-3.5, 18), 0.00255673, 1e-7);
    assert_float_equal(gb_student_t_p(0.0, 5), 1.0, 1e-12);
    assert_float_equal(gb_student_t_p(1.0, 1), 0.5, 1e-9);
}

/* ---- 6. probes, Net2Vec, linear models ---- */

static void test_linear(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    /* two Gaussian blobs in 5-D, separable along feature 2 */
    enum { N = 200, D = 5 };
    float X[N * D];
    int y[N];
    gb__crng g = {9};
    for (int i = 0; i < N; i++) {
        y[i] = i % 2;
        for (int j = 0; j < D; j++) X[i * D + j] = (float)(gb__crng_unif(&g) - 0.5);
        X[i * D + 2] += y[i] ? 1.0f : -1.0f;
        X[i * D + 4] *= 100;   /* a wide irrelevant feature: standardization copes */
    }
    float w[D], b;
    for (int kind = 0; kind < GB_LINEAR_COUNT; kind++) {
        gb_linear_opts o = {.kind = (gb_linear_kind)kind};
        assert_int_equal(gb_linear_fit(ctx, X, y, N, D, &o, w, &b), GB_OK);
        assert_true(gb_linear_accuracy(X, y, N, D, 1, w, &b) == 1.0);
        assert_true(w[2] > 5 * fabsf(w[0]) && w[2] > 0);
    }
    float W[2 * D], bias[2];
    assert_int_equal(gb_softmax_fit(ctx, X, y, N, D, 2, NULL, W, bias), GB_OK);
    assert_true(gb_linear_accuracy(X, y, N, D, 2, W, bias) == 1.0);
    y[3] = 5;
    assert_int_equal(gb_softmax_fit(ctx, X, y, N, D, 2, NULL, W, bias), GB_ERR_ARG);
    gb_ctx_free(ctx);
}

static void test_probe_and_net2vec(void **state) {
    (void)state;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb_preproc pp;
    gb_model *m = load_model(ctx, "color_detector.onnx", &pp);
    pp.height = pp.width = 48;
    gb_broden *b;
    assert_int_equal(gb_broden_open(ctx, g_dir, &b), GB_OK);
    const char *layers[2] = {"image", "colors"};
    gb_probe_opts po = {.max_features = 1024};
    gb_probe_result *pr;
    gb_status st = gb_probe(ctx, m, &pp, b, layers, 2, &po, &pr);
    if (st) fail_msg("%s", gb_ctx_errmsg(ctx));
    printf("probe: %d train / %d test, %d classes; pixels %.3f (train %.3f), colors %.3f (train %.3f)\n", pr->n_train,
           pr->n_test, pr->n_classes, pr->test_acc[0], pr->train_acc[0], pr->test_acc[1], pr->train_acc[1]);
    assert_int_equal(pr->n_classes, 5);
    assert_true(pr->test_acc[0] > 1.0 / 5 && pr->test_acc[1] > 1.0 / 5);
    assert_true(pr->train_acc[1] >= pr->test_acc[1] - 0.2);
    gb_probe_result_free(pr);
    gb_probe_opts bad = {.label_category = "material"};
    assert_int_equal(gb_probe(ctx, m, &pp, b, layers, 2, &bad, &pr), GB_ERR_ARG);

    gb_net2vec_opts no = {.max_images = 40};
    gb_net2vec_result *nr;
    st = gb_net2vec(ctx, m, &pp, b, "colors", &no, &nr);
    if (st) fail_msg("%s", gb_ctx_errmsg(ctx));
    int checked = 0;
    for (int c = 0; c < nr->n_concepts; c++) {
        const gb_net2vec_concept *nc = &nr->concepts[c];
        int cat = gb_broden_label_category(b, nc->label);
        if (strcmp(gb_broden_category_name(b, cat), "color")) continue;
        printf("net2vec %-8s seg IoU %.3f (best unit %d: %.3f), presence acc %.3f (best unit %.3f)\n",
               gb_broden_label_name(b, nc->label), nc->seg_iou, nc->best_unit, nc->best_unit_iou, nc->cls_acc,
               nc->best_unit_cls_acc);
        /* the detector network: one unit is the concept, so the learned
         * combination reaches the same segmentation */
        assert_true(nc->seg_iou > 0.9);
        assert_true(nc->seg_iou >= nc->best_unit_iou - 0.05);
        checked++;
    }
    assert_true(checked >= 8);
    gb_net2vec_result_free(nr);
    gb_broden_free(b);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/gb_test_concepts_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    gb_ctx *ctx;
    gb_ctx_create(&ctx);
    gb_scenes_opts so = {.count = 120, .size = 48, .seed = 3};
    gb_status st = gb_scenes_generate(ctx, g_dir, &so);
    if (st) fprintf(stderr, "%s\n", gb_ctx_errmsg(ctx));
    gb_ctx_free(ctx);
    return st ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sketch_accuracy),   cmocka_unit_test(test_generator_reader),
        cmocka_unit_test(test_upsample),          cmocka_unit_test(test_dissect_color_detectors),
        cmocka_unit_test(test_tcav_toy),          cmocka_unit_test(test_student_t),
        cmocka_unit_test(test_linear),            cmocka_unit_test(test_probe_and_net2vec),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
