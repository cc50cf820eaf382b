/*
 * test_preprocess.c — images to model input tensors (src/io/preprocess.c)
 * and the MODEL.json sidecar (src/io/sidecar.c).
 *
 * Independent reference: tests/fixtures/images/preproc_cases.txt, written by
 * tests/scripts/make_image_fixtures.py. Each CASE.json holds the settings in
 * the sidecar's schema and is read here with gb_sidecar_load. CASE.npy is
 * what PIL (color) and torchvision's resize/center_crop/normalize on float64
 * tensors (torch.nn.functional.interpolate, bilinear, align_corners=False,
 * antialias=False) give. They must agree within 1e-5 (relative above 1).
 * The rest is hand-derived: inverse round trips, the crop rectangle,
 * setting parsing, sidecar validation messages, and checks against
 * tests/fixtures/models/tiny_cnn.onnx (input 'input' [batch, 3, 16, 16],
 * output 'logits' [batch, 5]).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glassbox/glassbox.h"
#include "glassbox/image.h"

/* ---- helpers --------------------------------------------------------------- */

static char g_tmpdir[256];

static int setup_all(void **state) {
    const char *base = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/gb_preproc_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_tmpdir, strerror(errno));
        return -1;
    }
    return 0;
}

static int teardown_all(void **state) {
    if (rmdir(g_tmpdir) != 0) {
        fprintf(stderr, "temporary directory %s not empty: a test leaked a file\n", g_tmpdir);
        return -1;
    }
    return 0;
}

static void source_path(char *buf, size_t cap, const char *rel) {
    const char *src = getenv("GB_SOURCE_DIR");
    if (!src) fail_msg("GB_SOURCE_DIR is not set (ctest sets it to the source tree)");
    int n = snprintf(buf, cap, "%s/%s", src, rel);
    if (n < 0 || (size_t)n >= cap) fail_msg("path too long: %s/%s", src, rel);
}

static void fixture_path(char *buf, size_t cap, const char *name) {
    char rel[300];
    int n = snprintf(rel, sizeof rel, "tests/fixtures/images/%s", name);
    if (n < 0 || (size_t)n >= sizeof rel) fail_msg("name too long: %s", name);
    source_path(buf, cap, rel);
}

static void tmp_path(char *buf, size_t cap, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", g_tmpdir, name);
    if (n < 0 || (size_t)n >= cap) fail_msg("path too long");
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

static void assert_msg_has(const gb_ctx *ctx, const char *needle) {
    const char *m = gb_ctx_errmsg(ctx);
    if (!strstr(m, needle)) fail_msg("message \"%s\" lacks \"%s\"", m, needle);
    if (strchr(m, '\n')) fail_msg("message \"%s\" is not one line", m);
}

/* A gb_image for FILE: decoded, or wrapped around (H, W, C) uint8 pixels
 * from a .npy (kept alive in *keep). */
static gb_image *open_image(gb_ctx *ctx, const char *file, gb_tensor **keep, gb_image *view) {
    char path[512];
    fixture_path(path, sizeof path, file);
    *keep = NULL;
    size_t n = strlen(file);
    if (n > 4 && !strcmp(file + n - 4, ".npy")) {
        if (gb_npy_read(ctx, path, keep)) fail_msg("%s", gb_ctx_errmsg(ctx));
        gb_tensor *t = *keep;
        assert_int_equal(t->dtype, GB_DTYPE_U8);
        assert_int_equal(t->ndim, 3);
        *view = (gb_image){.width = (int)t->dims[1], .height = (int)t->dims[0],
                           .channels = (int)t->dims[2], .stride = (size_t)(t->dims[1] * t->dims[2]),
                           .data = t->data};
        return view;
    }
    gb_image *img = NULL;
    if (gb_image_load(ctx, path, &img)) fail_msg("%s", gb_ctx_errmsg(ctx));
    return img;
}

/* |a - b| <= 1e-5 * max(1, |b|) for every element. */
static void assert_close(const char *what, const gb_tensor *got, const gb_tensor *want) {
    assert_int_equal(got->dtype, GB_DTYPE_F32);
    assert_int_equal(want->dtype, GB_DTYPE_F32);
    if (got->ndim != want->ndim || memcmp(got->dims, want->dims, sizeof got->dims[0] * got->ndim)) {
        char a[100], b[100];
        gb_shape_str(got->ndim, got->dims, a, sizeof a);
        gb_shape_str(want->ndim, want->dims, b, sizeof b);
        fail_msg("%s: shape %s, expected %s", what, a, b);
    }
    const float *g = got->data, *w = want->data;
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < got->numel; i++) {
        double d = fabs((double)g[i] - (double)w[i]) / fmax(1.0, fabs((double)w[i]));
        if (!(d <= worst)) worst = d, at = i;
    }
    if (!(worst <= 1e-5))
        fail_msg("%s: element %lld is %.9g, expected %.9g (scaled error %.3g)", what, (long long)at,
                 g[at], w[at], worst);
}

/* ---- the torchvision fixtures -------------------------------------------------- */

static void test_fixture_cases(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[512];
    fixture_path(path, sizeof path, "preproc_cases.txt");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char name[64], images[512];
    int cases = 0;
    while (fscanf(f, "%63s %511s", name, images) == 2) {
        char file[128];
        snprintf(file, sizeof file, "%s.json", name);
        fixture_path(path, sizeof path, file);
        gb_sidecar *sc = NULL;
        if (gb_sidecar_load(ctx, path, NULL, &sc)) fail_msg("%s: %s", name, gb_ctx_errmsg(ctx));
        assert_int_equal(sc->found, 1);
        assert_string_equal(sc->task, "classification");
        assert_string_equal(sc->input.input_name, "input");

        gb_image *imgs[8], views[8];
        gb_tensor *keep[8];
        int n = 0;
        for (char *tok = strtok(images, ","); tok; tok = strtok(NULL, ",")) {
            assert_true(n < 8);
            imgs[n] = open_image(ctx, tok, &keep[n], &views[n]);
            n++;
        }
        gb_tensor *got = NULL, *want = NULL;
        if (gb_preproc_batch(ctx, &sc->input, (const gb_image *const *)imgs, n, &got))
            fail_msg("%s: %s", name, gb_ctx_errmsg(ctx));
        snprintf(file, sizeof file, "%s.npy", name);
        fixture_path(path, sizeof path, file);
        assert_int_equal(gb_npy_read(ctx, path, &want), GB_OK);
        assert_close(name, got, want);

        /* One image at a time gives the same items (bit for bit). */
        for (int i = 0; i < n; i++) {
            gb_tensor *one;
            assert_int_equal(gb_preproc_image(ctx, &sc->input, imgs[i], &one), GB_OK);
            assert_int_equal(one->dims[0], 1);
            assert_memory_equal(one->data, (float *)got->data + i * one->numel, one->numel * sizeof(float));
            gb_tensor_free(one);
        }
        for (int i = 0; i < n; i++) {
            if (keep[i]) gb_tensor_free(keep[i]);
            else gb_image_free(imgs[i]);
        }
        gb_tensor_free(got);
        gb_tensor_free(want);
        gb_sidecar_free(sc);
        cases++;
    }
    fclose(f);
    assert_true(cases >= 12);
    gb_ctx_free(ctx);
}

/* ---- the inverse ------------------------------------------------------------------ */

static void test_inverse(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[512];
    fixture_path(path, sizeof path, "rgb.png");
    gb_image *img;
    assert_int_equal(gb_image_load(ctx, path, &img), GB_OK);   /* 19 x 13 RGB */

    /* At the image's own size the resize is the identity, so the inverse
     * gives the pixels back exactly, in RGB order for bgr too, NCHW or NHWC. */
    for (int layout = 0; layout < 2; layout++)
        for (int color = GB_COLOR_RGB; color <= GB_COLOR_BGR; color++) {
            gb_preproc pp;
            gb_preproc_default(&pp);
            pp.layout = (gb_layout)layout;
            pp.color = (gb_color)color;
            pp.height = 13, pp.width = 19;
            assert_int_equal(gb_preproc_set(ctx, &pp, "mean", "0.485,0.456,0.406"), GB_OK);
            assert_int_equal(gb_preproc_set(ctx, &pp, "std", "0.229,0.224,0.225"), GB_OK);
            gb_tensor *t;
            assert_int_equal(gb_preproc_image(ctx, &pp, img, &t), GB_OK);
            if (color == GB_COLOR_BGR && layout == GB_LAYOUT_NCHW) {
                /* channel 0 is blue: (B / 255 - 0.485) / 0.229 */
                float x = ((float *)t->data)[0];
                assert_true(fabs(x - (img->data[2] / 255.0 - 0.485) / 0.229) < 1e-6);
            }
            gb_image *back;
            assert_int_equal(gb_preproc_inverse(ctx, &pp, t, 0, &back), GB_OK);
            assert_int_equal(back->channels, 3);
            assert_memory_equal(back->data, img->data, 13 * 19 * 3);
            gb_image_free(back);
            gb_tensor_free(t);
        }

    /* Gray: one channel back, the luma. Clamping, rounding and NaN. */
    gb_preproc pp;
    gb_preproc_default(&pp);
    assert_int_equal(gb_preproc_set(ctx, &pp, "color", "gray"), GB_OK);
    pp.height = 1, pp.width = 6;
    int64_t dims[4] = {2, 1, 1, 6};
    gb_tensor *t;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, &t), GB_OK);
    const float v[6] = {-0.5f, 2.0f, 0.5f, 1.5f / 255, 2.5f / 255, NAN};
    memcpy((float *)t->data + 6, v, sizeof v);   /* batch item 1 */
    gb_image *back;
    assert_int_equal(gb_preproc_inverse(ctx, &pp, t, 1, &back), GB_OK);
    const uint8_t want[6] = {0, 255, 128, 2, 3, 0};   /* 127.5 -> 128; 1.5 -> 2; 2.5 -> 3 */
    assert_int_equal(back->channels, 1);
    assert_memory_equal(back->data, want, 6);
    gb_image_free(back);
    assert_int_equal(gb_preproc_inverse(ctx, &pp, t, 2, &back), GB_ERR_ARG);
    assert_null(back);
    pp.width = 5;
    assert_int_equal(gb_preproc_inverse(ctx, &pp, t, 0, &back), GB_ERR_SHAPE);
    assert_msg_has(ctx, "2x1x1x6");
    gb_tensor_free(t);
    gb_image_free(img);
    gb_ctx_free(ctx);
}

/* ---- geometry -------------------------------------------------------------------- */

static void test_region(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_preproc pp;
    gb_preproc_default(&pp);
    pp.height = 9, pp.width = 9;
    double box[4];
    assert_int_equal(gb_preproc_region(ctx, &pp, 19, 13, box), GB_OK);
    assert_true(box[0] == 0 && box[1] == 0 && box[2] == 19 && box[3] == 13);
    /* shorter, S = 10 on 19 x 13: resized 14 x 10 (int(10 * 19 / 13) = 14),
     * crop 9 x 9 at left round(2.5) = 2, top 0. */
    pp.resize = GB_RESIZE_SHORTER;
    pp.resize_shorter = 10;
    assert_int_equal(gb_preproc_region(ctx, &pp, 19, 13, box), GB_OK);
    assert_true(fabs(box[0] - 2 * 19 / 14.0) < 1e-12 && box[1] == 0);
    assert_true(fabs(box[2] - 11 * 19 / 14.0) < 1e-12 && fabs(box[3] - 9 * 13 / 10.0) < 1e-12);
    /* Padding: S = 6 on 7 x 11 (portrait): resized 6 x 9, crop 8 x 12 starts
     * at (-1, -1). */
    pp.resize_shorter = 6;
    pp.height = 12, pp.width = 8;
    assert_int_equal(gb_preproc_region(ctx, &pp, 7, 11, box), GB_OK);
    assert_true(fabs(box[0] + 7 / 6.0) < 1e-12 && fabs(box[1] + 11 / 9.0) < 1e-12);
    assert_true(fabs(box[2] - 7 * 7 / 6.0) < 1e-12 && fabs(box[3] - 11 * 11 / 9.0) < 1e-12);
    assert_int_equal(gb_preproc_region(ctx, &pp, 0, 11, box), GB_ERR_ARG);
    gb_ctx_free(ctx);
}

/* ---- settings ----------------------------------------------------------------------- */

static void test_set_and_check(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_preproc pp;
    gb_preproc_default(&pp);
    assert_int_equal(gb_preproc_check(ctx, &pp), GB_ERR_ARG);
    assert_msg_has(ctx, "input height is unknown");
    assert_msg_has(ctx, "input.height");
    assert_int_equal(gb_preproc_set(ctx, &pp, "height", "224"), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "width", "200"), GB_OK);
    assert_int_equal(gb_preproc_check(ctx, &pp), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "layout", "nhwc"), GB_OK);
    assert_int_equal(pp.layout, GB_LAYOUT_NHWC);
    assert_int_equal(gb_preproc_set(ctx, &pp, "resize", "shorter"), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "resize_shorter", "256"), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "scale", "1"), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "name", "pixel_values"), GB_OK);
    assert_string_equal(pp.input_name, "pixel_values");
    assert_int_equal(gb_preproc_set(ctx, &pp, "mean", "0.485, 0.456,0.406"), GB_OK);
    assert_true(pp.mean[1] == 0.456);
    assert_int_equal(gb_preproc_set(ctx, &pp, "std", "0.5"), GB_OK);   /* one for all */
    assert_true(pp.std[0] == 0.5 && pp.std[2] == 0.5);
    assert_int_equal(gb_preproc_check(ctx, &pp), GB_OK);

    /* Channel changes: per-channel mean resets, a uniform std carries over. */
    assert_int_equal(gb_preproc_set(ctx, &pp, "color", "gray"), GB_OK);
    assert_int_equal(pp.channels, 1);
    assert_true(pp.mean[0] == 0 && pp.std[0] == 1);
    assert_int_equal(gb_preproc_set(ctx, &pp, "mean", "0.25"), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "std", "0.5"), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "channels", "3"), GB_OK);
    assert_int_equal(pp.color, GB_COLOR_RGB);
    assert_true(pp.mean[2] == 0.25 && pp.std[2] == 0.5);
    assert_int_equal(gb_preproc_set(ctx, &pp, "color", "bgr"), GB_OK);
    assert_int_equal(gb_preproc_set(ctx, &pp, "channels", "3"), GB_OK);
    assert_int_equal(pp.color, GB_COLOR_BGR);

    /* Bad keys and values: GB_ERR_ARG naming the key; pp unchanged. */
    static const char *const bad[][2] = {
        {"heigth", "3"},    {"height", "0"},       {"height", "32769"}, {"height", "12px"},
        {"width", ""},      {"channels", "2"},     {"channels", "4"},   {"color", "cmyk"},
        {"layout", "CHW"},  {"resize", "crop"},    {"resize_shorter", "-1"},
        {"scale", "0"},     {"scale", "inf"},      {"scale", "nan"},    {"mean", "1,2"},
        {"mean", "a,b,c"},  {"std", "1,0,1"},      {"std", "-1"},       {"mean", "1,2,3,4"},
        {"mean", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gb_preproc before = pp;
        if (gb_preproc_set(ctx, &pp, bad[i][0], bad[i][1]) != GB_ERR_ARG)
            fail_msg("%s=%s accepted", bad[i][0], bad[i][1]);
        assert_msg_has(ctx, "preproc: ");
        assert_memory_equal(&before, &pp, sizeof pp);
    }
    assert_int_equal(gb_preproc_set(ctx, &pp, "heigth", "3"), GB_ERR_ARG);
    assert_msg_has(ctx, "unknown setting 'heigth'");
    assert_int_equal(gb_preproc_set(ctx, &pp, "mean", "1,2"), GB_ERR_ARG);
    assert_msg_has(ctx, "mean has 2 values, channels is 3");

    /* check() catches direct edits. */
    gb_preproc q = pp;
    q.std[1] = 0;
    assert_int_equal(gb_preproc_check(ctx, &q), GB_ERR_ARG);
    assert_msg_has(ctx, "std[1]");
    q = pp;
    q.channels = 1;   /* color still bgr */
    assert_int_equal(gb_preproc_check(ctx, &q), GB_ERR_ARG);
    q = pp;
    q.layout = (gb_layout)7;
    assert_int_equal(gb_preproc_check(ctx, &q), GB_ERR_ARG);
    gb_ctx_free(ctx);
}

static void test_from_input(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_preproc pp;
    gb_value_info in = {.name = "x", .dtype = GB_DTYPE_F32, .ndim = 4, .dims = {1, 3, 224, 200}};
    assert_int_equal(gb_preproc_from_input(ctx, &in, &pp), GB_OK);
    assert_true(pp.layout == GB_LAYOUT_NCHW && pp.channels == 3 && pp.color == GB_COLOR_RGB);
    assert_true(pp.height == 224 && pp.width == 200 && pp.scale == 255 && pp.std[2] == 1);
    assert_string_equal(pp.input_name, "x");
    in = (gb_value_info){.name = "y", .dtype = GB_DTYPE_F32, .ndim = 4, .dims = {-1, 28, 28, 1}};
    assert_int_equal(gb_preproc_from_input(ctx, &in, &pp), GB_OK);
    assert_true(pp.layout == GB_LAYOUT_NHWC && pp.channels == 1 && pp.color == GB_COLOR_GRAY);
    assert_true(pp.height == 28 && pp.width == 28);
    in = (gb_value_info){.name = "z", .dtype = GB_DTYPE_F32, .ndim = 4, .dims = {-1, 3, -1, -1}};
    assert_int_equal(gb_preproc_from_input(ctx, &in, &pp), GB_OK);
    assert_true(pp.height == 0 && pp.width == 0);
    assert_int_equal(gb_preproc_check(ctx, &pp), GB_ERR_ARG);
    in.dims[1] = -1;   /* all symbolic: NCHW, 3 channels */
    assert_int_equal(gb_preproc_from_input(ctx, &in, &pp), GB_OK);
    assert_true(pp.layout == GB_LAYOUT_NCHW && pp.channels == 3);
    /* No conversion gives 4 channels; not an image input at all. */
    in = (gb_value_info){.name = "w", .dtype = GB_DTYPE_F32, .ndim = 4, .dims = {1, 4, 32, 32}};
    assert_int_equal(gb_preproc_from_input(ctx, &in, &pp), GB_ERR_UNSUPPORTED);
    assert_msg_has(ctx, "has 4 channels: images convert to 1 (gray) or 3 (rgb, bgr)");
    in = (gb_value_info){.name = "v", .dtype = GB_DTYPE_F32, .ndim = 2, .dims = {1, 784}};
    assert_int_equal(gb_preproc_from_input(ctx, &in, &pp), GB_ERR_UNSUPPORTED);
    assert_msg_has(ctx, "must be a 4-D float32 tensor");
    in = (gb_value_info){.name = "u", .dtype = GB_DTYPE_I64, .ndim = 4, .dims = {1, 3, 8, 8}};
    assert_int_equal(gb_preproc_from_input(ctx, &in, &pp), GB_ERR_UNSUPPORTED);
    gb_ctx_free(ctx);
}

/* Bad images and tensors given to preprocessing. */
static void test_bad_arguments(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_preproc pp;
    gb_preproc_default(&pp);
    pp.height = pp.width = 4;
    uint8_t px[5 * 4 * 4] = {0};
    gb_image five = {.width = 4, .height = 4, .channels = 5, .stride = 20, .data = px};
    gb_tensor *t = (gb_tensor *)&ctx;
    assert_int_equal(gb_preproc_image(ctx, &pp, &five, &t), GB_ERR_ARG);
    assert_null(t);
    assert_msg_has(ctx, "5 channels");
    gb_image ok = {.width = 4, .height = 4, .channels = 4, .stride = 16, .data = px};
    const gb_image *two[2] = {&ok, &five};
    assert_int_equal(gb_preproc_batch(ctx, &pp, two, 2, &t), GB_ERR_ARG);
    assert_msg_has(ctx, "(batch image 1)");
    assert_int_equal(gb_preproc_batch(ctx, &pp, two, 0, &t), GB_ERR_ARG);
    assert_int_equal(gb_preproc_image(ctx, &pp, NULL, &t), GB_ERR_ARG);
    /* image_into: wrong tensor shape or index. */
    int64_t dims[4] = {2, 3, 4, 5};
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, &t), GB_OK);
    assert_int_equal(gb_preproc_image_into(ctx, &pp, &ok, t, 0), GB_ERR_SHAPE);
    pp.width = 5;
    assert_int_equal(gb_preproc_image_into(ctx, &pp, &ok, t, 1), GB_OK);
    assert_int_equal(gb_preproc_image_into(ctx, &pp, &ok, t, 2), GB_ERR_ARG);
    gb_tensor_free(t);
    gb_ctx_free(ctx);
}

/* ---- the sidecar ------------------------------------------------------------------------ */

static void test_sidecar_parse(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    static const struct {
        const char *json;
        gb_status st;
        const char *msg;
    } cases[] = {
        {"", GB_ERR_FORMAT, "empty file"},
        {"{", GB_ERR_FORMAT, "invalid JSON at line 1"},
        {"{\n  \"input\": {\n    \"height\": 28,,\n", GB_ERR_FORMAT, "invalid JSON at line 3, column "},
        {"{} x", GB_ERR_FORMAT, "unexpected text after the JSON value at line 1, column 4"},
        {"[]", GB_ERR_FORMAT, "the top level must be an object, not an array"},
        {"{\"input\": 3}", GB_ERR_FORMAT, "input must be an object, not a number"},
        {"{\"input\": {\"height\": \"224\"}}", GB_ERR_FORMAT, "input.height must be an integer, not a string"},
        {"{\"input\": {\"height\": 22.5}}", GB_ERR_FORMAT, "input.height = 22.5 must be an integer in 1..32768"},
        {"{\"input\": {\"width\": 0}}", GB_ERR_FORMAT, "input.width = 0 must be an integer in 1..32768"},
        {"{\"input\": {\"width\": 1e999}}", GB_ERR_FORMAT, "input.width = inf"},
        {"{\"input\": {\"channels\": 2}}", GB_ERR_FORMAT, "input.channels = 2 must be 1 (gray) or 3"},
        {"{\"input\": {\"channels\": 3, \"mean\": [0.5]}}", GB_ERR_FORMAT, "input.mean has 1 value, input.channels is 3"},
        {"{\"input\": {\"color\": \"gray\", \"std\": [1, 1, 1]}}", GB_ERR_FORMAT, "input.std has 3 values, input.channels is 1"},
        {"{\"input\": {\"std\": [0, 1, 1]}}", GB_ERR_FORMAT, "input.std[0] = 0 must be > 0"},
        {"{\"input\": {\"std\": [1, -2, 1]}}", GB_ERR_FORMAT, "input.std[1] = -2 must be > 0"},
        {"{\"input\": {\"mean\": [1, null, 2]}}", GB_ERR_FORMAT, "input.mean[1] must be a finite number, not null"},
        {"{\"input\": {\"mean\": 0.5}}", GB_ERR_FORMAT, "input.mean must be an array of 3 numbers, not a number"},
        {"{\"input\": {\"means\": [1, 2, 3]}}", GB_ERR_FORMAT, "unknown key input.means"},
        {"{\"input\": {\"mean\": [1, 2, 3], \"mean\": [1, 2, 3]}}", GB_ERR_FORMAT, "duplicate key input.mean"},
        {"{\"input\": {}, \"input\": {}}", GB_ERR_FORMAT, "duplicate key input"},
        {"{\"input\": {\"color\": \"gray\", \"channels\": 3}}", GB_ERR_FORMAT, "input.color 'gray' needs 1 channel, input.channels is 3"},
        {"{\"input\": {\"color\": \"cmyk\"}}", GB_ERR_FORMAT, "input.color 'cmyk' is not one of gray, rgb, bgr"},
        {"{\"input\": {\"color\": 3}}", GB_ERR_FORMAT, "input.color must be a string"},
        {"{\"input\": {\"layout\": \"CHW\"}}", GB_ERR_FORMAT, "input.layout 'CHW' is not one of NCHW, NHWC"},
        {"{\"input\": {\"resize\": \"crop\"}}", GB_ERR_FORMAT, "input.resize 'crop'"},
        {"{\"input\": {\"resize_shorter\": -1}}", GB_ERR_FORMAT, "input.resize_shorter = -1"},
        {"{\"input\": {\"scale\": 0}}", GB_ERR_FORMAT, "input.scale = 0 must be a finite number > 0"},
        {"{\"input\": {\"scale\": \"255\"}}", GB_ERR_FORMAT, "input.scale must be a number, not a string"},
        {"{\"input\": {\"name\": 5}}", GB_ERR_FORMAT, "input.name must be a string, not a number"},
        {"{\"labels\": \"cat\"}", GB_ERR_FORMAT, "labels must be an array of strings, not a string"},
        {"{\"labels\": [\"cat\", 3]}", GB_ERR_FORMAT, "labels[1] must be a string, not a number"},
        {"{\"task\": true}", GB_ERR_FORMAT, "task must be a string, not a boolean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gb_sidecar *sc = (gb_sidecar *)&ctx;
        gb_status st = gb_sidecar_parse(ctx, cases[i].json, strlen(cases[i].json), "m.json", NULL, &sc);
        if (st != cases[i].st)
            fail_msg("%s: got %s (%s)", cases[i].json, gb_status_str(st), gb_ctx_errmsg(ctx));
        assert_null(sc);
        assert_msg_has(ctx, "sidecar: m.json: ");
        assert_msg_has(ctx, cases[i].msg);
    }

    /* Valid files. Missing keys keep the defaults; unknown top-level keys
     * are ignored; color and channels follow each other. */
    gb_sidecar *sc;
    assert_int_equal(gb_sidecar_parse(ctx, "{}", 2, NULL, NULL, &sc), GB_OK);
    assert_true(sc->found == 1 && sc->n_labels == 0 && sc->task[0] == 0);
    assert_true(sc->input.channels == 3 && sc->input.scale == 255 && sc->input.height == 0);
    gb_sidecar_free(sc);
    const char *fashion =
        "{\"input\": {\"name\": \"image\", \"layout\": \"NCHW\", \"channels\": 1, \"color\": \"gray\",\n"
        " \"height\": 28, \"width\": 28, \"resize\": \"stretch\", \"scale\": 255,\n"
        " \"mean\": [0.286], \"std\": [0.353]},\n"
        " \"labels\": [\"T-shirt/top\", \"Trouser\", \"Pullover\"], \"task\": \"classification\",\n"
        " \"dataset\": \"Fashion-MNIST\", \"test_accuracy\": 0.93, \"trained_by\": \"x.py\"}\n";
    assert_int_equal(gb_sidecar_parse(ctx, fashion, strlen(fashion), NULL, NULL, &sc), GB_OK);
    assert_string_equal(sc->input.input_name, "image");
    assert_true(sc->input.channels == 1 && sc->input.color == GB_COLOR_GRAY);
    assert_true(sc->input.height == 28 && sc->input.mean[0] == 0.286 && sc->input.std[0] == 0.353);
    assert_int_equal(sc->n_labels, 3);
    assert_string_equal(sc->labels[2], "Pullover");
    assert_string_equal(sc->task, "classification");
    assert_int_equal(gb_preproc_check(ctx, &sc->input), GB_OK);
    gb_sidecar_free(sc);
    assert_int_equal(gb_sidecar_parse(ctx, "{\"input\": {\"channels\": 1}}", 26, NULL, NULL, &sc), GB_OK);
    assert_int_equal(sc->input.color, GB_COLOR_GRAY);
    gb_sidecar_free(sc);
    const char *bgr = "{\"input\": {\"color\": \"bgr\", \"resize\": \"shorter\", \"resize_shorter\": 256}}";
    assert_int_equal(gb_sidecar_parse(ctx, bgr, strlen(bgr), NULL, NULL, &sc), GB_OK);
    assert_true(sc->input.channels == 3 && sc->input.color == GB_COLOR_BGR);
    assert_true(sc->input.resize == GB_RESIZE_SHORTER && sc->input.resize_shorter == 256);
    gb_sidecar_free(sc);
    gb_sidecar_free(NULL);

    /* From a file: messages name the file. */
    char path[600];
    tmp_path(path, sizeof path, "bad.json");
    write_text(path, "{\"input\": {\"std\": [1, 0, 1]}}\n");
    assert_int_equal(gb_sidecar_load(ctx, path, NULL, &sc), GB_ERR_FORMAT);
    char want[700];
    snprintf(want, sizeof want, "sidecar: %s: input.std[1] = 0 must be > 0", path);
    assert_string_equal(gb_ctx_errmsg(ctx), want);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(gb_sidecar_load(ctx, path, NULL, &sc), GB_ERR_IO);
    assert_msg_has(ctx, "cannot open");

    /* The path beside a model. */
    char buf[64];
    assert_int_equal(gb_sidecar_path(ctx, "models/net.onnx", buf, sizeof buf), GB_OK);
    assert_string_equal(buf, "models/net.json");
    assert_int_equal(gb_sidecar_path(ctx, "NET.ONNX", buf, sizeof buf), GB_OK);
    assert_string_equal(buf, "NET.json");
    assert_int_equal(gb_sidecar_path(ctx, "net.pb", buf, sizeof buf), GB_OK);
    assert_string_equal(buf, "net.pb.json");
    assert_int_equal(gb_sidecar_path(ctx, "net.onnx", buf, 8), GB_ERR_ARG);
    assert_int_equal(gb_sidecar_path(ctx, "net.onnx", buf, 9), GB_OK);
    gb_ctx_free(ctx);
}

/* With tiny_cnn.onnx: input 'input' [batch, 3, 16, 16], output 'logits' [batch, 5]. */
static void test_sidecar_model(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char src[512], model_path[600], json[600];
    source_path(src, sizeof src, "tests/fixtures/models/tiny_cnn.onnx");
    tmp_path(model_path, sizeof model_path, "tiny.onnx");
    tmp_path(json, sizeof json, "tiny.json");
    copy_file(src, model_path);
    gb_model *m;
    if (gb_model_load(ctx, model_path, &m)) fail_msg("%s", gb_ctx_errmsg(ctx));

    /* No sidecar: the model's defaults. */
    gb_sidecar *sc;
    assert_int_equal(gb_sidecar_for_model(ctx, m, model_path, &sc), GB_OK);
    assert_int_equal(sc->found, 0);
    assert_string_equal(sc->input.input_name, "input");
    assert_true(sc->input.layout == GB_LAYOUT_NCHW && sc->input.channels == 3);
    assert_true(sc->input.height == 16 && sc->input.width == 16);
    int idx = -1;
    assert_int_equal(gb_preproc_match_model(ctx, &sc->input, m, &idx), GB_OK);
    assert_int_equal(idx, 0);

    /* End to end: an image through the model. */
    char img_path[512];
    fixture_path(img_path, sizeof img_path, "rgb.jpg");
    gb_image *img;
    assert_int_equal(gb_image_load(ctx, img_path, &img), GB_OK);
    gb_tensor *x;
    assert_int_equal(gb_preproc_image(ctx, &sc->input, img, &x), GB_OK);
    gb_session *s;
    assert_int_equal(gb_session_create(m, &s), GB_OK);
    const gb_tensor *in[1] = {x};
    if (gb_session_run(s, in, 1)) fail_msg("%s", gb_ctx_errmsg(ctx));
    const gb_tensor *y = gb_session_output(s, 0);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->dims[1], 5);
    gb_session_free(s);
    gb_tensor_free(x);
    gb_image_free(img);
    gb_sidecar_free(sc);

    /* A valid sidecar. */
    write_text(json, "{\"input\": {\"resize\": \"shorter\", \"mean\": [0.5, 0.5, 0.5]},\n"
                     " \"labels\": [\"a\", \"b\", \"c\", \"d\", \"e\"], \"task\": \"classification\"}\n");
    assert_int_equal(gb_sidecar_for_model(ctx, m, model_path, &sc), GB_OK);
    assert_true(sc->found == 1 && sc->n_labels == 5 && sc->input.height == 16);
    assert_true(sc->input.resize == GB_RESIZE_SHORTER && sc->input.mean[1] == 0.5);
    /* A CLI override that contradicts the model. */
    gb_preproc pp = sc->input;
    assert_int_equal(gb_preproc_set(ctx, &pp, "height", "20"), GB_OK);
    assert_int_equal(gb_preproc_match_model(ctx, &pp, m, NULL), GB_ERR_SHAPE);
    assert_msg_has(ctx, "preproc: height is 20 but model input 'input' is ");
    pp = sc->input;
    assert_int_equal(gb_preproc_set(ctx, &pp, "name", "nope"), GB_OK);
    assert_int_equal(gb_preproc_match_model(ctx, &pp, m, NULL), GB_ERR_NOT_FOUND);
    assert_msg_has(ctx, "no input 'nope' (inputs: 'input')");
    gb_sidecar_free(sc);

    /* Sidecars that contradict the model. */
    static const struct {
        const char *json;
        gb_status st;
        const char *msg;
    } bad[] = {
        {"{\"labels\": [\"a\", \"b\", \"c\", \"d\"], \"task\": \"classification\"}", GB_ERR_FORMAT,
         "labels has 4 entries, model output 'logits' has 5 classes"},
        {"{\"input\": {\"name\": \"image\"}}", GB_ERR_NOT_FOUND, "input.name 'image' is not an input of the model"},
        {"{\"input\": {\"height\": 28}}", GB_ERR_SHAPE, "height is 28 but model input 'input' is "},
        {"{\"input\": {\"color\": \"gray\", \"mean\": [0.5]}}", GB_ERR_SHAPE, "channels is 1 but model input"},
        {"{\"input\": {\"layout\": \"NHWC\"}}", GB_ERR_SHAPE, "(NHWC: channels = 16)"},
        {"{\"input\": {\"heigth\": 16}}", GB_ERR_FORMAT, "unknown key input.heigth"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(json, bad[i].json);
        sc = (gb_sidecar *)&ctx;
        gb_status st = gb_sidecar_for_model(ctx, m, model_path, &sc);
        if (st != bad[i].st) fail_msg("%s: got %s (%s)", bad[i].json, gb_status_str(st), gb_ctx_errmsg(ctx));
        assert_null(sc);
        char prefix[700];
        snprintf(prefix, sizeof prefix, "sidecar: %s: ", json);
        assert_msg_has(ctx, prefix);
        assert_msg_has(ctx, bad[i].msg);
    }
    assert_int_equal(unlink(json), 0);

    /* A sidecar that exists but cannot be read is an error, not "none". */
    assert_int_equal(mkdir(json, 0700), 0);
    assert_int_equal(gb_sidecar_for_model(ctx, m, model_path, &sc), GB_ERR_IO);
    assert_msg_has(ctx, json);
    assert_int_equal(rmdir(json), 0);

    gb_model_free(m);
    assert_int_equal(unlink(model_path), 0);
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases),
        cmocka_unit_test(test_inverse),
        cmocka_unit_test(test_region),
        cmocka_unit_test(test_set_and_check),
        cmocka_unit_test(test_from_input),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sidecar_parse),
        cmocka_unit_test(test_sidecar_model),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
