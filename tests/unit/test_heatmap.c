/*
 * test_heatmap.c — attribution maps as pictures (src/io/heatmap.c, colormap.c).
 *
 * Independent references:
 *   - tests/fixtures/heatmap/heatmap_ref.h (tests/scripts/make_colormap_tables.py):
 *     matplotlib's colours at a few positions of each map, computed from the
 *     registered colormaps / control points rather than from the tables, and
 *     numpy.percentile on arrays with ties, zeros and heavy tails;
 *   - published end colours of each map, typed in here;
 *   - the header's formulas (index, blend, bilinear, layout) re-derived in
 *     the tests, and a qsort-based percentile over many random arrays.
 * Example pictures for eyeballing are written only when GB_HEATMAP_DEMO_DIR
 * is set (see test_demo_pictures).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassbox/glassbox.h"
#include "glassbox/heatmap.h"
#include "glassbox/image.h"

#include "../fixtures/heatmap/heatmap_ref.h"

/* ---- helpers --------------------------------------------------------------- */

static gb_ctx *new_ctx(void) {
    gb_ctx *ctx = NULL;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    return ctx;
}

/* A float32 tensor of the given shape filled from vals (NULL: zeros). */
static gb_tensor *tensor(gb_ctx *ctx, int ndim, const int64_t *dims, const float *vals) {
    gb_tensor *t = NULL;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, ndim, dims, &t), GB_OK);
    if (vals) memcpy(t->data, vals, (size_t)t->numel * sizeof(float));
    return t;
}

static const uint8_t *px(const gb_image *img, int x, int y) {
    assert_true(x >= 0 && x < img->width && y >= 0 && y < img->height);
    return img->data + (size_t)y * img->stride + (size_t)x * img->channels;
}

static void assert_rgb(const uint8_t *got, const uint8_t *want, const char *what) {
    if (memcmp(got, want, 3) != 0)
        fail_msg("%s: got (%d, %d, %d), expected (%d, %d, %d)", what, got[0], got[1], got[2],
                 want[0], want[1], want[2]);
}

static void assert_msg_has(const gb_ctx *ctx, const char *needle) {
    const char *m = gb_ctx_errmsg(ctx);
    if (!strstr(m, needle)) fail_msg("message \"%s\" lacks \"%s\"", m, needle);
}

static gb_colormap cmap_by_name(const char *name) {
    for (int c = 0; c < GB_CMAP_COUNT; c++)
        if (!strcmp(gb_colormap_name((gb_colormap)c), name)) return (gb_colormap)c;
    fail_msg("no colormap named %s", name);
    return GB_CMAP_AUTO;
}

/* Render a 1 x n map at scale 1 and return the image. */
static gb_image *render_row(gb_ctx *ctx, const float *v, int n, const gb_heatmap_opts *o) {
    int64_t dims[2] = {1, n};
    gb_tensor *t = tensor(ctx, 2, dims, v);
    gb_image *img = NULL;
    gb_status st = gb_heatmap_render(ctx, t, o, &img);
    if (st) fail_msg("render: %s", gb_ctx_errmsg(ctx));
    gb_tensor_free(t);
    assert_int_equal(img->width, n);
    assert_int_equal(img->height, 1);
    assert_int_equal(img->channels, 3);
    return img;
}

/* ---- colormaps ----------------------------------------------------------------- */

static void test_lut_tables(void **state) {
    (void)state;
    int n;
    assert_non_null(gb_colormap_lut(GB_CMAP_VIRIDIS, &n));
    assert_int_equal(n, 256);
    assert_non_null(gb_colormap_lut(GB_CMAP_INFERNO, &n));
    assert_int_equal(n, 256);
    assert_non_null(gb_colormap_lut(GB_CMAP_RDBU, &n));
    assert_int_equal(n, 257);
    assert_non_null(gb_colormap_lut(GB_CMAP_BWR, &n));
    assert_int_equal(n, 257);
    n = 7;
    assert_null(gb_colormap_lut(GB_CMAP_AUTO, &n));
    assert_int_equal(n, 0);
    assert_null(gb_colormap_lut((gb_colormap)99, &n));
    assert_null(gb_colormap_lut((gb_colormap)-1, NULL));
    assert_string_equal(gb_colormap_name(GB_CMAP_VIRIDIS), "viridis");
    assert_string_equal(gb_colormap_name((gb_colormap)99), "?");

    /* Published end colours: viridis #440154 .. #fde725, inferno #000004 ..
     * #fcffa4, ColorBrewer RdBu #053061 (blue end) .. #67001f (red end),
     * bwr #0000ff .. #ff0000; the diverging centres are white. */
    static const struct { gb_colormap c; int i; uint8_t rgb[3]; } pub[] = {
        {GB_CMAP_VIRIDIS, 0, {0x44, 0x01, 0x54}},   {GB_CMAP_VIRIDIS, 255, {0xfd, 0xe7, 0x25}},
        {GB_CMAP_INFERNO, 0, {0x00, 0x00, 0x04}},   {GB_CMAP_INFERNO, 255, {0xfc, 0xff, 0xa4}},
        {GB_CMAP_RDBU, 0, {0x05, 0x30, 0x61}},      {GB_CMAP_RDBU, 256, {0x67, 0x00, 0x1f}},
        {GB_CMAP_RDBU, 128, {255, 255, 255}},       {GB_CMAP_BWR, 0, {0, 0, 255}},
        {GB_CMAP_BWR, 256, {255, 0, 0}},            {GB_CMAP_BWR, 128, {255, 255, 255}},
        /* viridis at 0.5 (entry 128) is the well-known #21918c */
        {GB_CMAP_VIRIDIS, 128, {0x21, 0x91, 0x8c}},
    };
    for (size_t k = 0; k < sizeof pub / sizeof pub[0]; k++) {
        const uint8_t *lut = gb_colormap_lut(pub[k].c, NULL);
        char what[64];
        snprintf(what, sizeof what, "%s[%d]", gb_colormap_name(pub[k].c), pub[k].i);
        assert_rgb(lut + 3 * pub[k].i, pub[k].rgb, what);
    }
    /* Diverging tables are mirror images in lightness: entry 128 +- k are
     * equally far from white (checked loosely: the sum of channels). */
    const uint8_t *bwr = gb_colormap_lut(GB_CMAP_BWR, NULL);
    for (int k = 0; k <= 128; k++) {
        const uint8_t *lo = bwr + 3 * (128 - k), *hi = bwr + 3 * (128 + k);
        assert_int_equal(lo[2], hi[0]);
        assert_int_equal(lo[0], hi[2]);
        assert_int_equal(lo[1], hi[1]);
    }
}

/* matplotlib's colours at fixture positions, through the table and through a
 * real render (value -> index -> colour). */
static void test_lut_matplotlib(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    size_t npts = sizeof colormap_points / sizeof colormap_points[0];
    assert_true(npts >= 40);
    for (size_t k = 0; k < npts; k++) {
        gb_colormap c = cmap_by_name(colormap_points[k].cmap);
        int n;
        const uint8_t *lut = gb_colormap_lut(c, &n);
        char what[96];
        snprintf(what, sizeof what, "%s entry %d", colormap_points[k].cmap, colormap_points[k].index);
        assert_rgb(lut + 3 * colormap_points[k].index, colormap_points[k].rgb, what);

        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        o.colormap = c;
        o.scale = 1;
        o.vmax = 1.0;
        float v;
        if (n == 257) {   /* diverging: signed value 2t - 1 in [-1, 1] */
            o.mode = GB_HEATMAP_SIGNED;
            v = (float)(2.0 * colormap_points[k].t - 1.0);
        } else {          /* sequential: magnitude t in [0, 1] */
            v = (float)colormap_points[k].t;
        }
        gb_image *img = render_row(ctx, &v, 1, &o);
        snprintf(what, sizeof what, "%s rendered at t=%.6f", colormap_points[k].cmap,
                 colormap_points[k].t);
        assert_rgb(px(img, 0, 0), colormap_points[k].rgb, what);
        gb_image_free(img);
    }
    gb_ctx_free(ctx);
}

/* 0 is exactly white in a signed map; -v and +v take mirrored entries; the
 * limits are symmetric. */
static void test_diverging_white_at_zero(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    const uint8_t white[3] = {255, 255, 255};
    float v[9] = {0.0f, -3.0f, 3.0f, -0.0f, 1.0f, -1.0f, 0.01f, -0.01f, 10.0f};
    for (int c = GB_CMAP_RDBU; c <= GB_CMAP_BWR; c++) {
        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        o.mode = GB_HEATMAP_SIGNED;
        o.colormap = (gb_colormap)c;
        o.scale = 1;
        o.vmax = 3.0;
        gb_image *img = render_row(ctx, v, 9, &o);
        const uint8_t *lut = gb_colormap_lut((gb_colormap)c, NULL);
        assert_rgb(px(img, 0, 0), white, "0");
        assert_rgb(px(img, 3, 0), white, "-0");
        assert_rgb(px(img, 1, 0), lut, "-L: first entry");
        assert_rgb(px(img, 2, 0), lut + 3 * 256, "+L: last entry");
        assert_rgb(px(img, 8, 0), lut + 3 * 256, "beyond +L saturates");
        /* 1/3 of L: entry 128 +- round(128/3) = 128 +- 43 */
        assert_rgb(px(img, 4, 0), lut + 3 * (128 + 43), "+L/3");
        assert_rgb(px(img, 5, 0), lut + 3 * (128 - 43), "-L/3");
        /* 0.01/3 * 128 = 0.43 rounds to 0: white too */
        assert_rgb(px(img, 6, 0), white, "tiny +");
        assert_rgb(px(img, 7, 0), white, "tiny -");
        gb_image_free(img);
    }
    /* Percentile limits are symmetric: +-p99(|a|) even for a lopsided map. */
    float w[4] = {-1.0f, 8.0f, 2.0f, 0.5f};
    int64_t dims[2] = {2, 2};
    gb_tensor *t = tensor(ctx, 2, dims, w);
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    o.mode = GB_HEATMAP_SIGNED;
    o.percentile = 100;
    gb_heatmap_stats st;
    assert_int_equal(gb_heatmap_limits(ctx, t, &o, &st), GB_OK);
    assert_true(st.lo == -8.0 && st.hi == 8.0);
    assert_int_equal(st.colormap, GB_CMAP_RDBU);
    assert_int_equal(st.reduce, GB_REDUCE_SUM);
    gb_tensor_free(t);
    gb_ctx_free(ctx);
}

/* Sequential maps: magnitudes over [0, L]; signed values spread over the
 * whole table; magnitudes on a diverging table use its upper half. */
static void test_sequential_and_mixed(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    const uint8_t *vir = gb_colormap_lut(GB_CMAP_VIRIDIS, NULL);
    const uint8_t *rdbu = gb_colormap_lut(GB_CMAP_RDBU, NULL);
    float v[5] = {0.0f, -2.0f, 1.0f, 2.0f, -1.0f};
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    o.scale = 1;
    o.vmax = 2.0;
    gb_image *img = render_row(ctx, v, 5, &o);   /* magnitude, viridis */
    assert_rgb(px(img, 0, 0), vir, "0 -> first");
    assert_rgb(px(img, 1, 0), vir + 3 * 255, "|-2| -> last");
    assert_rgb(px(img, 2, 0), vir + 3 * 128, "1/2 -> round(127.5) = 128");
    assert_rgb(px(img, 4, 0), vir + 3 * 128, "|-1| like 1");
    gb_image_free(img);
    o.mode = GB_HEATMAP_SIGNED;
    o.colormap = GB_CMAP_VIRIDIS;
    img = render_row(ctx, v, 5, &o);
    assert_rgb(px(img, 1, 0), vir, "-L -> first");
    assert_rgb(px(img, 3, 0), vir + 3 * 255, "+L -> last");
    assert_rgb(px(img, 0, 0), vir + 3 * 128, "0 -> middle");
    assert_rgb(px(img, 4, 0), vir + 3 * 64, "-L/2 -> round(63.75)");
    gb_image_free(img);
    o.mode = GB_HEATMAP_MAGNITUDE;
    o.colormap = GB_CMAP_RDBU;
    img = render_row(ctx, v, 5, &o);
    assert_rgb(px(img, 0, 0), rdbu + 3 * 128, "0 -> white centre");
    assert_rgb(px(img, 1, 0), rdbu + 3 * 256, "|-2| -> red end");
    assert_rgb(px(img, 4, 0), rdbu + 3 * 192, "|-1| -> 128 + 64");
    gb_image_free(img);
    /* An all-zero map is drawn in the zero colour, without dividing by 0. */
    float z[3] = {0, 0, 0};
    o = (gb_heatmap_opts)GB_HEATMAP_OPTS_INIT;
    o.scale = 1;
    img = render_row(ctx, z, 3, &o);
    for (int x = 0; x < 3; x++) assert_rgb(px(img, x, 0), vir, "all-zero magnitude");
    gb_image_free(img);
    o.mode = GB_HEATMAP_SIGNED;
    img = render_row(ctx, z, 3, &o);
    for (int x = 0; x < 3; x++) assert_rgb(px(img, x, 0), rdbu + 3 * 128, "all-zero signed");
    gb_image_free(img);
    gb_ctx_free(ctx);
}

/* ---- limits -------------------------------------------------------------------- */

static double limits_hi(gb_ctx *ctx, const float *x, int n, double p) {
    int64_t dims[2] = {1, n};
    gb_tensor *t = tensor(ctx, 2, dims, x);
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    o.percentile = p;
    gb_heatmap_stats st;
    if (gb_heatmap_limits(ctx, t, &o, &st)) fail_msg("limits: %s", gb_ctx_errmsg(ctx));
    gb_tensor_free(t);
    assert_true(st.lo == 0.0);
    return st.hi;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_percentile(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    /* 1..100 shuffled (and half negated: |a| counts): numpy gives
     * p99 = 99.01, p50 = 50.5, p1 = 1.99, p100 = 100. */
    float a[100];
    for (int i = 0; i < 100; i++) a[i] = (float)((i * 37) % 100 + 1) * (i % 2 ? -1.0f : 1.0f);
    assert_true(fabs(limits_hi(ctx, a, 100, 99) - 99.01) < 1e-9);
    assert_true(fabs(limits_hi(ctx, a, 100, 50) - 50.5) < 1e-9);
    assert_true(fabs(limits_hi(ctx, a, 100, 1) - 1.99) < 1e-9);
    assert_true(limits_hi(ctx, a, 100, 100) == 100.0);

    /* The clipping shows in the colours: 99.5 and 100 saturate, like 99.01. */
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    o.scale = 1;
    gb_image *img = render_row(ctx, a, 100, &o);
    const uint8_t *top = gb_colormap_lut(GB_CMAP_VIRIDIS, NULL) + 3 * 255;
    int n_top = 0;
    for (int x = 0; x < 100; x++) n_top += !memcmp(px(img, x, 0), top, 3);
    /* |a| >= 99.01 * 254.5/255 = 98.82: values 99 and 100 */
    assert_int_equal(n_top, 2);
    gb_image_free(img);

    /* numpy.percentile fixtures (ties, mostly zeros, heavy tails, one value).
     * Where the percentile is 0 the limit falls back to the largest |a|. */
    for (size_t k = 0; k < sizeof percentile_cases / sizeof percentile_cases[0]; k++) {
        double want = percentile_cases[k].expect, mx = 0;
        for (int i = 0; i < percentile_cases[k].n; i++)
            mx = fmax(mx, fabs(percentile_cases[k].x[i]));
        if (want == 0.0) want = mx;
        double got = limits_hi(ctx, percentile_cases[k].x, percentile_cases[k].n,
                               percentile_cases[k].p);
        if (fabs(got - want) > 1e-12 * fmax(1.0, fabs(want)))
            fail_msg("case %zu (n=%d, p=%g): got %.17g, numpy %.17g", k, percentile_cases[k].n,
                     percentile_cases[k].p, got, want);
    }

    /* Selection vs. sorting on many random arrays with many ties. */
    unsigned r = 12345;
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + trial % 97 + (trial % 7 == 0 ? 1000 : 0);
        float *x = malloc((size_t)n * sizeof *x), *s = malloc((size_t)n * sizeof *s);
        int levels = 1 + trial % 13;
        for (int i = 0; i < n; i++) {
            r = r * 1103515245u + 12345u;
            x[i] = (float)((r >> 16) % (unsigned)levels) + 0.25f;   /* > 0: no fallback */
            s[i] = x[i];
        }
        qsort(s, (size_t)n, sizeof *s, cmp_float);
        r = r * 1103515245u + 12345u;
        double p = 0.5 + (r >> 16) % 9950 / 100.0;   /* (0, 100] */
        double pos = p / 100.0 * (n - 1), frac = pos - floor(pos);
        int k = (int)floor(pos);
        double want = k + 1 < n ? s[k] + frac * ((double)s[k + 1] - s[k]) : s[k];
        double got = limits_hi(ctx, x, n, p);
        if (fabs(got - want) > 1e-9) fail_msg("n=%d p=%g: got %g, sorted %g", n, p, got, want);
        free(x);
        free(s);
    }

    /* Sparse map: p99 of 1000 zeros and one 5 is 0 -> the limit is 5. */
    float *sp = calloc(1001, sizeof *sp);
    sp[500] = -5.0f;
    assert_true(limits_hi(ctx, sp, 1001, 99) == 5.0);
    free(sp);
    /* vmax replaces the percentile. */
    int64_t dims[2] = {10, 10};
    gb_tensor *t = tensor(ctx, 2, dims, a);
    o = (gb_heatmap_opts)GB_HEATMAP_OPTS_INIT;
    o.vmax = 2.0;
    o.mode = GB_HEATMAP_SIGNED;
    gb_heatmap_stats st;
    assert_int_equal(gb_heatmap_limits(ctx, t, &o, &st), GB_OK);
    assert_true(st.lo == -2.0 && st.hi == 2.0 && st.max_abs == 100.0);
    assert_int_equal(st.height, 10);
    assert_int_equal(st.width, 10);
    assert_int_equal(st.channels, 1);
    gb_tensor_free(t);
    gb_ctx_free(ctx);
}

/* Channel reduction and the accepted shapes. */
static void test_reduce_and_shapes(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    /* (C=3, H=1, W=2): pixel 0 = (1, -4, 2), pixel 1 = (0.5, 0.5, 0.5) */
    float v[6] = {1.0f, 0.5f, -4.0f, 0.5f, 2.0f, 0.5f};
    static const struct {
        gb_heatmap_mode mode;
        gb_heatmap_reduce red, used;
        double max_abs;
    } cases[] = {
        {GB_HEATMAP_SIGNED, GB_REDUCE_AUTO, GB_REDUCE_SUM, 1.5},          /* -1, 1.5 */
        {GB_HEATMAP_MAGNITUDE, GB_REDUCE_AUTO, GB_REDUCE_MAX_ABS, 4.0},   /* 4, 0.5 */
        {GB_HEATMAP_MAGNITUDE, GB_REDUCE_SUM, GB_REDUCE_SUM, 1.5},        /* 1, 1.5 */
        {GB_HEATMAP_SIGNED, GB_REDUCE_MAX_ABS, GB_REDUCE_MAX_ABS, 4.0},   /* -4, 0.5 */
        {GB_HEATMAP_SIGNED, GB_REDUCE_L2, GB_REDUCE_L2, 4.58257569495584}, /* sqrt 21 */
    };
    int64_t shapes[4][4] = {{3, 1, 2}, {1, 3, 1, 2}};
    int ranks[2] = {3, 4};
    for (int s = 0; s < 2; s++) {
        gb_tensor *t = tensor(ctx, ranks[s], shapes[s], v);
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
            o.mode = cases[k].mode;
            o.reduce = cases[k].red;
            o.percentile = 100;
            gb_heatmap_stats st;
            assert_int_equal(gb_heatmap_limits(ctx, t, &o, &st), GB_OK);
            assert_int_equal(st.reduce, cases[k].used);
            assert_int_equal(st.channels, 3);
            assert_int_equal(st.height, 1);
            assert_int_equal(st.width, 2);
            if (fabs(st.max_abs - cases[k].max_abs) > 1e-6)
                fail_msg("case %zu: max_abs %g, expected %g", k, st.max_abs, cases[k].max_abs);
        }
        /* MAX_ABS keeps the sign in a signed map: pixel 0 is -4 = -L -> blue end */
        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        o.mode = GB_HEATMAP_SIGNED;
        o.reduce = GB_REDUCE_MAX_ABS;
        o.percentile = 100;
        o.scale = 1;
        gb_image *img = NULL;
        assert_int_equal(gb_heatmap_render(ctx, t, &o, &img), GB_OK);
        assert_rgb(px(img, 0, 0), gb_colormap_lut(GB_CMAP_RDBU, NULL), "max-abs -4");
        gb_image_free(img);
        gb_tensor_free(t);
    }
    /* (H, W), (1, H, W), (1, 1, H, W) and float64 give the same picture. */
    float m[6] = {0.1f, -0.7f, 0.3f, 0.0f, 0.9f, -0.2f};
    int64_t d2[2] = {2, 3}, d3[3] = {1, 2, 3}, d4[4] = {1, 1, 2, 3};
    gb_tensor *ts[4] = {tensor(ctx, 2, d2, m), tensor(ctx, 3, d3, m), tensor(ctx, 4, d4, m), NULL};
    assert_int_equal(gb_tensor_clone(ctx, ts[0], &ts[3]), GB_OK);
    assert_int_equal(gb_tensor_cast(ctx, ts[3], GB_DTYPE_F64), GB_OK);
    gb_image *ref = NULL;
    for (int i = 0; i < 4; i++) {
        gb_image *img = NULL;
        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        o.mode = GB_HEATMAP_SIGNED;
        assert_int_equal(gb_heatmap_render(ctx, ts[i], &o, &img), GB_OK);
        assert_int_equal(img->width, 3 * 64);   /* auto: ceil(224 / 3) = 75, capped at 64 */
        assert_int_equal(img->height, 2 * 64);
        if (!ref) ref = img;
        else {
            if (memcmp(img->data, ref->data, (size_t)img->height * img->stride))
                fail_msg("shape %d differs from (H, W)", i);
            assert_memory_equal(img->data, ref->data, (size_t)img->height * img->stride);
            gb_image_free(img);
        }
        gb_tensor_free(ts[i]);
    }
    gb_image_free(ref);
    gb_ctx_free(ctx);
}

/* ---- geometry -------------------------------------------------------------------- */

static void test_render_scale(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    static const struct { int h, w, scale, out_h, out_w; } cases[] = {
        {28, 28, 0, 224, 224}, {28, 28, 1, 28, 28}, {28, 28, 3, 84, 84},
        {5, 7, 0, 160, 224},   {10, 300, 0, 10, 300}, {1, 1, 0, 64, 64},   /* capped at 64 */
        {224, 100, 0, 224, 100},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t dims[2] = {cases[k].h, cases[k].w};
        gb_tensor *t = tensor(ctx, 2, dims, NULL);
        float *d = t->data;
        for (int64_t i = 0; i < t->numel; i++) d[i] = (float)(i % 17);
        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        o.scale = cases[k].scale;
        o.percentile = 100;
        gb_image *img = NULL;
        assert_int_equal(gb_heatmap_render(ctx, t, &o, &img), GB_OK);
        assert_int_equal(img->height, cases[k].out_h);
        assert_int_equal(img->width, cases[k].out_w);
        assert_int_equal(img->channels, 3);
        assert_int_equal(img->stride, (size_t)img->width * 3);
        /* nearest neighbour: output pixel (y, x) = map pixel (y / s, x / s) */
        int s = img->width / cases[k].w;
        const uint8_t *lut = gb_colormap_lut(GB_CMAP_VIRIDIS, NULL);
        for (int y = 0; y < img->height; y += 3)
            for (int x = 0; x < img->width; x += 5) {
                int i = (y / s) * cases[k].w + x / s;
                assert_rgb(px(img, x, y), lut + 3 * lround(d[i] / 16.0 * 255), "nearest");
            }
        gb_image_free(img);
        gb_tensor_free(t);
    }
    gb_ctx_free(ctx);
}

/* out = round((1 - w) b + w c), with w = opacity or opacity * |v| / L, on a
 * base with a padded stride; the base modes; gray bases. */
static void test_overlay_alpha(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    /* a 2x1 RGB base inside a padded buffer (stride 10 > 2 * 3) */
    uint8_t buf[10] = {200, 100, 50, 10, 20, 30, 0xEE, 0xEE, 0xEE, 0xEE};
    gb_image base = {.width = 2, .height = 1, .channels = 3, .stride = 10, .data = buf};
    float v[2] = {4.0f, 1.0f};   /* with vmax 4: t = 1 and 0.25 */
    int64_t dims[2] = {1, 2};
    gb_tensor *t = tensor(ctx, 2, dims, v);
    const uint8_t *vir = gb_colormap_lut(GB_CMAP_VIRIDIS, NULL);
    const uint8_t *c[2] = {vir + 3 * 255, vir + 3 * 64};   /* round(0.25 * 255) = 64 */

    for (int abm = 0; abm < 2; abm++) {
        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        o.vmax = 4.0;
        o.scale = 1;
        o.opacity = 0.5;
        o.alpha_by_magnitude = abm;
        o.base = GB_BASE_COLOR;
        gb_image *img = NULL;
        assert_int_equal(gb_heatmap_overlay(ctx, &base, t, &o, &img), GB_OK);
        assert_int_equal(img->width, 2);
        assert_int_equal(img->height, 1);
        for (int x = 0; x < 2; x++) {
            double w = abm ? 0.5 * (x == 0 ? 1.0 : 0.25) : 0.5;
            uint8_t want[3];
            for (int k = 0; k < 3; k++)
                want[k] = (uint8_t)lround((1 - w) * buf[3 * x + k] + w * c[x][k]);
            assert_rgb(px(img, x, 0), want, abm ? "alpha by magnitude" : "constant alpha");
        }
        gb_image_free(img);
    }
    /* Base modes on pixel 0 (luma of (200, 100, 50) per PIL: 124), opacity 0. */
    static const struct { gb_heatmap_base b; uint8_t g[3]; } modes[] = {
        {GB_BASE_COLOR, {200, 100, 50}}, {GB_BASE_GRAY, {124, 124, 124}},
        {GB_BASE_LIGHT, {189, 189, 189}},   /* (124 + 255) / 2 = 189.5, rounded down */
        {GB_BASE_DARK, {74, 74, 74}},       /* 0.6 * 124 = 74.4 */
    };
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        o.scale = 1;
        o.opacity = 0.0;
        o.base = modes[k].b;
        gb_image *img = NULL;
        assert_int_equal(gb_heatmap_overlay(ctx, &base, t, &o, &img), GB_OK);
        assert_rgb(px(img, 0, 0), modes[k].g, "base mode");
        gb_image_free(img);
    }
    /* AUTO: light for signed, dark for magnitude. */
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    o.scale = 1;
    o.opacity = 0.0;
    gb_image *img = NULL;
    assert_int_equal(gb_heatmap_overlay(ctx, &base, t, &o, &img), GB_OK);
    assert_rgb(px(img, 0, 0), modes[3].g, "auto magnitude: dark");
    gb_image_free(img);
    o.mode = GB_HEATMAP_SIGNED;
    assert_int_equal(gb_heatmap_overlay(ctx, &base, t, &o, &img), GB_OK);
    assert_rgb(px(img, 0, 0), modes[2].g, "auto signed: light");
    gb_image_free(img);
    /* Opacity 1 without magnitude alpha: pure colours. Gray base, 1 channel. */
    uint8_t g1[2] = {7, 250};
    gb_image gray = {.width = 2, .height = 1, .channels = 1, .stride = 2, .data = g1};
    o = (gb_heatmap_opts)GB_HEATMAP_OPTS_INIT;
    o.scale = 2;
    o.vmax = 4.0;
    o.opacity = 1.0;
    o.alpha_by_magnitude = 0;
    assert_int_equal(gb_heatmap_overlay(ctx, &gray, t, &o, &img), GB_OK);
    assert_int_equal(img->width, 4);
    assert_int_equal(img->height, 2);
    assert_rgb(px(img, 1, 1), c[0], "opacity 1");
    assert_rgb(px(img, 2, 0), c[1], "opacity 1");
    gb_image_free(img);
    gb_tensor_free(t);

    /* A 1x2 map on a 1x4 image is resampled bilinearly before colouring:
     * x = 0..3 -> s = max(0, (x + 0.5) / 2 - 0.5) = 0, 0.25, 0.75, 1.25 ->
     * values 0, 0.25, 0.75, 1 for the map (0, 1). */
    float ramp[2] = {0.0f, 1.0f};
    t = tensor(ctx, 2, dims, ramp);
    uint8_t b4[4] = {0, 0, 0, 0};
    gb_image base4 = {.width = 4, .height = 1, .channels = 1, .stride = 4, .data = b4};
    o.vmax = 1.0;
    assert_int_equal(gb_heatmap_overlay(ctx, &base4, t, &o, &img), GB_OK);
    const double want_v[4] = {0, 0.25, 0.75, 1};
    for (int x = 0; x < 4; x++)
        assert_rgb(px(img, 2 * x, 0), vir + 3 * lround(want_v[x] * 255), "bilinear");
    gb_image_free(img);
    gb_tensor_free(t);
    gb_ctx_free(ctx);
}

/* ---- the panel ------------------------------------------------------------------- */

static int count_rgb(const gb_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) n += !memcmp(px(img, x, y), rgb, 3);
    return n;
}

static int count_not_rgb(const gb_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    return (x1 - x0) * (y1 - y0) - count_rgb(img, x0, y0, x1, y1, rgb);
}

static void test_panel_layout(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    const uint8_t white[3] = {255, 255, 255};
    /* A 28x28 green base and a map whose right half is hot. */
    gb_image *base = NULL;
    assert_int_equal(gb_image_create(ctx, 28, 28, 3, &base), GB_OK);
    for (int i = 0; i < 28 * 28; i++) base->data[3 * i + 0] = 10, base->data[3 * i + 1] = 200,
                                                 base->data[3 * i + 2] = 30;
    int64_t dims[2] = {28, 28};
    gb_tensor *t = tensor(ctx, 2, dims, NULL);
    float *d = t->data;
    for (int y = 0; y < 28; y++)
        for (int x = 14; x < 28; x++) d[y * 28 + x] = 1.0f;
    const uint8_t *vir = gb_colormap_lut(GB_CMAP_VIRIDIS, NULL);

    /* Layout from the header: s = 8 -> tiles 224; ts = 3 * 224 / 450 -> 2;
     * m = 12, g = 8, line 24. Width 3 * 224 + 2 * 8 + 2 * 12 = 712. */
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    gb_image *p = NULL;
    assert_int_equal(gb_heatmap_panel(ctx, base, t, &o, &p), GB_OK);
    assert_int_equal(p->channels, 3);
    assert_int_equal(p->width, 712);
    /* 12 + 24 (captions) + 224 + 16 + 12 (bar) + 6 (ticks) + 24 + 20 + 12 */
    assert_int_equal(p->height, 350);
    const int y_tiles = 36, x_tile[3] = {12, 244, 476};
    const uint8_t green[3] = {10, 200, 30};
    assert_int_equal(count_rgb(p, x_tile[0], y_tiles, x_tile[0] + 224, y_tiles + 224, green),
                     224 * 224);
    assert_rgb(px(p, x_tile[0] - 1, y_tiles), white, "left of the input tile");
    assert_rgb(px(p, x_tile[0], y_tiles - 1), white, "above the input tile");
    assert_rgb(px(p, x_tile[0] + 224, y_tiles + 10), white, "gap");
    /* map tile: left half the first entry, right half the last */
    assert_int_equal(count_rgb(p, x_tile[1], y_tiles, x_tile[1] + 112, y_tiles + 224, vir),
                     112 * 224);
    assert_int_equal(count_rgb(p, x_tile[1] + 112, y_tiles, x_tile[1] + 224, y_tiles + 224,
                               vir + 3 * 255), 112 * 224);
    /* overlay: left half shows the base (alpha 0 where |a| = 0, darkened:
     * 0.6 * luma(10, 200, 30) = 0.6 * 124 = 74), right half blended at 0.7 */
    const uint8_t dark[3] = {74, 74, 74};
    assert_rgb(px(p, x_tile[2] + 5, y_tiles + 5), dark, "overlay, no attribution");
    uint8_t hot[3];
    for (int k = 0; k < 3; k++) hot[k] = (uint8_t)lround(0.3 * 74 + 0.7 * vir[3 * 255 + k]);
    assert_rgb(px(p, x_tile[2] + 200, y_tiles + 200), hot, "overlay, full attribution");
    /* the colour bar below: first and last entries at its ends */
    int y_bar = y_tiles + 224 + 16;
    assert_rgb(px(p, 12, y_bar + 3), vir, "bar left end");
    assert_rgb(px(p, 12 + 687, y_bar + 3), vir + 3 * 255, "bar right end");
    /* captions above the tiles, labels below the bar: text pixels */
    const uint8_t text[3] = {70, 70, 70};
    for (int i = 0; i < 3; i++)
        assert_true(count_rgb(p, x_tile[i], 12, x_tile[i] + 224, 12 + 24, text) > 30);
    int y_lab = y_bar + 12 + 6;
    assert_true(count_rgb(p, 12, y_lab, 60, y_lab + 24, text) > 10);        /* "0" */
    assert_true(count_rgb(p, 650, y_lab, 700, y_lab + 24, text) > 10);      /* "1" */
    assert_true(count_rgb(p, 12, y_lab + 24, 700, y_lab + 44, text) > 200); /* legend line */
    gb_image_free(p);

    /* A title adds its lines plus a gap: one line 24 + 8, two lines 48 + 8. */
    o.title = "saliency \xe2\x80\x94 class 'Sneaker' (p=0.97)";
    assert_int_equal(gb_heatmap_panel(ctx, base, t, &o, &p), GB_OK);
    assert_int_equal(p->height, 350 + 32);
    assert_int_equal(p->width, 712);
    const uint8_t title_rgb[3] = {20, 20, 20};
    int n1 = count_rgb(p, 0, 12, 712, 12 + 24, title_rgb);
    assert_true(n1 > 200);
    assert_int_equal(count_rgb(p, 12, 12 + 32 + 24, 700, 12 + 32 + 24 + 224, title_rgb), 0);
    gb_image_free(p);
    o.title = "line one\nline two";
    assert_int_equal(gb_heatmap_panel(ctx, base, t, &o, &p), GB_OK);
    assert_int_equal(p->height, 350 + 56);
    assert_true(count_rgb(p, 0, 12 + 24, 712, 12 + 48, title_rgb) > 100);   /* line two */
    gb_image_free(p);

    /* A long title widens the panel (120 'W', at least 5 units = 10 px each),
     * the tiles stay centred. */
    char longt[121];
    memset(longt, 'W', 120);
    longt[120] = 0;
    o.title = longt;
    assert_int_equal(gb_heatmap_panel(ctx, base, t, &o, &p), GB_OK);
    assert_true(p->width >= 1200 + 24);
    int x0 = (p->width - 688) / 2;
    assert_int_equal(count_rgb(p, x0, y_tiles + 32, x0 + 224, y_tiles + 32 + 224, green),
                     224 * 224);
    gb_image_free(p);

    /* No legend, no title: just captions and tiles. */
    o.title = NULL;
    o.legend = 0;
    assert_int_equal(gb_heatmap_panel(ctx, base, t, &o, &p), GB_OK);
    assert_int_equal(p->height, 12 + 24 + 224 + 12);
    gb_image_free(p);
    /* No base: the map tile alone, ts = 224 / 450 -> 2 still. */
    assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &o, &p), GB_OK);
    assert_int_equal(p->width, 224 + 24);
    assert_int_equal(p->height, 12 + 24 + 224 + 12);
    assert_int_equal(count_rgb(p, 12, 36, 12 + 112, 36 + 224, vir), 112 * 224);
    gb_image_free(p);
    /* Explicit scale 1: 28 px tiles in slots as wide as the widest caption
     * ("abs(attribution)"), so captions never overlap. */
    o.scale = 1;
    assert_int_equal(gb_heatmap_panel(ctx, base, t, &o, &p), GB_OK);
    assert_true(p->width > 3 * 28 + 2 * 8 + 24);
    int slot = (p->width - 24 - 16) / 3;
    assert_true(slot > 28);
    int xi = 12 + (slot - 28) / 2;
    assert_int_equal(count_rgb(p, xi, 36, xi + 28, 36 + 28, green), 28 * 28);
    gb_image_free(p);
    /* A map of another size than the base is resampled to it. */
    int64_t d7[2] = {7, 7};
    gb_tensor *t7 = tensor(ctx, 2, d7, NULL);
    o.scale = 0;
    assert_int_equal(gb_heatmap_panel(ctx, base, t7, &o, &p), GB_OK);
    assert_int_equal(p->width, 712);
    gb_image_free(p);
    gb_tensor_free(t7);

    (void)count_not_rgb;
    gb_tensor_free(t);
    gb_image_free(base);
    gb_ctx_free(ctx);
}

/* Text: UTF-8 punctuation is drawn as its ASCII look-alike, anything else as
 * '?', and nothing reads outside stb_easy_font's tables. */
static void test_text(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    int64_t dims[2] = {4, 4};
    gb_tensor *t = tensor(ctx, 2, dims, NULL);
    static const char *const pairs[][2] = {
        {"a \xe2\x80\x94 b \xe2\x80\x9cq\xe2\x80\x9d \xe2\x80\x98s\xe2\x80\x99", "a - b \"q\" 's'"},
        {"x\xc3\x97y \xc2\xb1 1\xe2\x80\xa6", "xxy +- 1..."},
        {"\xff\xfe \xe6\x97\xa5 \xf0\x9f\x98\x80", "?? ? ?"},          /* bad bytes, CJK, emoji */
        {"tab\there\x01\x7f", "tab here  "},
        {"trunc \xe2\x80", "trunc ??"},                                  /* cut sequence */
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
        gb_image *a = NULL, *b = NULL;
        o.title = pairs[k][0];
        assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &o, &a), GB_OK);
        o.title = pairs[k][1];
        assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &o, &b), GB_OK);
        assert_int_equal(a->width, b->width);
        assert_int_equal(a->height, b->height);
        if (memcmp(a->data, b->data, (size_t)a->height * a->stride))
            fail_msg("title %zu differs from its ASCII form \"%s\"", k, pairs[k][1]);
        gb_image_free(a);
        gb_image_free(b);
    }
    /* A title over the limit is refused. */
    char *huge = malloc(GB_HEATMAP_MAX_TITLE + 2);
    memset(huge, 'x', GB_HEATMAP_MAX_TITLE + 1);
    huge[GB_HEATMAP_MAX_TITLE + 1] = 0;
    gb_heatmap_opts ho = GB_HEATMAP_OPTS_INIT;
    ho.title = huge;
    gb_image *hi = (gb_image *)&hi;
    assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &ho, &hi), GB_ERR_ARG);
    assert_null(hi);
    assert_msg_has(ctx, "opts.title has 1025 bytes");
    huge[GB_HEATMAP_MAX_TITLE] = 0;
    assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &ho, &hi), GB_OK);
    gb_image_free(hi);
    free(huge);
    /* An empty title is no title. */
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    gb_image *a = NULL, *b = NULL;
    o.title = "";
    assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &o, &a), GB_OK);
    o.title = NULL;
    assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &o, &b), GB_OK);
    assert_int_equal(a->height, b->height);
    gb_image_free(a);
    gb_image_free(b);
    gb_tensor_free(t);
    gb_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------- */

static void test_nonfinite(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    float v[4] = {NAN, 2.0f, -INFINITY, INFINITY};
    int64_t dims[2] = {2, 2};
    gb_tensor *t = tensor(ctx, 2, dims, v);
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    o.mode = GB_HEATMAP_SIGNED;
    o.scale = 1;
    gb_heatmap_stats st;
    assert_int_equal(gb_heatmap_limits(ctx, t, &o, &st), GB_OK);
    assert_int_equal(st.n_nonfinite, 3);
    assert_true(st.max_abs == 2.0);
    gb_image *img = NULL;
    assert_int_equal(gb_heatmap_render(ctx, t, &o, &img), GB_OK);
    const uint8_t white[3] = {255, 255, 255};
    assert_rgb(px(img, 0, 0), white, "NaN as 0");
    assert_rgb(px(img, 0, 1), white, "-Inf as 0");
    assert_rgb(px(img, 1, 1), white, "Inf as 0");
    gb_image_free(img);
    /* In a channel sum, a NaN channel drops out and the others count. */
    float c2[2] = {NAN, -1.0f};
    int64_t d3[3] = {2, 1, 1};
    gb_tensor *t2 = tensor(ctx, 3, d3, c2);
    o.percentile = 100;
    assert_int_equal(gb_heatmap_limits(ctx, t2, &o, &st), GB_OK);
    assert_true(st.hi == 1.0 && st.n_nonfinite == 1);
    /* The legend says so. */
    o.legend = 1;
    assert_int_equal(gb_heatmap_panel(ctx, NULL, t, &o, &img), GB_OK);
    gb_image_free(img);
    /* All NaN: all zero. */
    float nn[4] = {NAN, NAN, NAN, NAN};
    memcpy(t->data, nn, sizeof nn);
    assert_int_equal(gb_heatmap_render(ctx, t, &o, &img), GB_OK);
    assert_rgb(px(img, 1, 1), white, "all NaN");
    gb_image_free(img);
    gb_tensor_free(t2);
    gb_tensor_free(t);
    gb_ctx_free(ctx);
}

static void test_bad_input(void **state) {
    (void)state;
    gb_ctx *ctx = new_ctx();
    gb_image *img = (gb_image *)&img;   /* must be reset to NULL on failure */
    gb_heatmap_stats st;
    int64_t d2[2] = {2, 2};
    gb_tensor *good = tensor(ctx, 2, d2, NULL);

    assert_int_equal(gb_heatmap_render(ctx, NULL, NULL, &img), GB_ERR_ARG);
    assert_null(img);
    assert_msg_has(ctx, "heatmap render: map is NULL");
    assert_int_equal(gb_heatmap_render(ctx, good, NULL, NULL), GB_ERR_ARG);
    assert_int_equal(gb_heatmap_limits(ctx, good, NULL, NULL), GB_ERR_ARG);

    /* shapes */
    static const struct { int ndim; int64_t dims[5]; const char *msg; } shapes[] = {
        {0, {0}, "rank 0"},
        {1, {5}, "has rank 1"},
        {5, {1, 1, 1, 2, 2}, "has rank 5"},
        {4, {2, 3, 4, 4}, "batch of 2 maps"},
        {2, {0, 28}, "(0x28) is empty"},
        {3, {3, 4, 0}, "is empty"},
        {4, {1, 0, 4, 4}, "is empty"},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        gb_tensor *t = NULL;
        assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, shapes[k].ndim, shapes[k].dims, &t),
                         GB_OK);
        img = (gb_image *)&img;
        assert_int_equal(gb_heatmap_render(ctx, t, NULL, &img), GB_ERR_SHAPE);
        assert_null(img);
        assert_msg_has(ctx, shapes[k].msg);
        assert_int_equal(gb_heatmap_limits(ctx, t, NULL, &st), GB_ERR_SHAPE);
        gb_tensor_free(t);
    }
    /* dtype, missing data */
    gb_tensor *ti = NULL;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_I64, 2, d2, &ti), GB_OK);
    assert_int_equal(gb_heatmap_render(ctx, ti, NULL, &img), GB_ERR_UNSUPPORTED);
    assert_msg_has(ctx, "int64");
    gb_tensor_free(ti);
    gb_tensor nodata = {.dtype = GB_DTYPE_F32, .ndim = 2, .dims = {2, 2}, .numel = 4, .data = NULL};
    assert_int_equal(gb_heatmap_render(ctx, &nodata, NULL, &img), GB_ERR_ARG);
    assert_msg_has(ctx, "no data");

    /* options */
    static const struct { const char *field; gb_heatmap_opts o; } bad[] = {
        {"opts.percentile", {.percentile = 0.0, .opacity = 0.5}},
        {"opts.percentile", {.percentile = 100.5, .opacity = 0.5}},
        {"opts.percentile", {.percentile = NAN, .opacity = 0.5}},
        {"opts.vmax", {.percentile = 99, .vmax = -1, .opacity = 0.5}},
        {"opts.vmax", {.percentile = 99, .vmax = INFINITY, .opacity = 0.5}},
        {"opts.opacity", {.percentile = 99, .opacity = 1.5}},
        {"opts.opacity", {.percentile = 99, .opacity = -0.1}},
        {"opts.scale", {.percentile = 99, .opacity = 0.5, .scale = -1}},
        {"opts.scale", {.percentile = 99, .opacity = 0.5, .scale = GB_HEATMAP_MAX_SCALE + 1}},
        {"opts.mode", {.percentile = 99, .opacity = 0.5, .mode = (gb_heatmap_mode)5}},
        {"opts.reduce", {.percentile = 99, .opacity = 0.5, .reduce = (gb_heatmap_reduce)-1}},
        {"opts.colormap", {.percentile = 99, .opacity = 0.5, .colormap = GB_CMAP_COUNT}},
        {"opts.base", {.percentile = 99, .opacity = 0.5, .base = GB_BASE_COUNT}},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        img = (gb_image *)&img;
        assert_int_equal(gb_heatmap_render(ctx, good, &bad[k].o, &img), GB_ERR_ARG);
        assert_null(img);
        assert_msg_has(ctx, bad[k].field);
        assert_int_equal(gb_heatmap_panel(ctx, NULL, good, &bad[k].o, &img), GB_ERR_ARG);
        assert_msg_has(ctx, "heatmap panel");
    }
    /* bad base images */
    uint8_t pix[16] = {0};
    gb_image bases[] = {
        {.width = 2, .height = 2, .channels = 5, .stride = 10, .data = pix},
        {.width = 2, .height = 2, .channels = 3, .stride = 5, .data = pix},
        {.width = 0, .height = 2, .channels = 3, .stride = 6, .data = pix},
        {.width = 2, .height = 2, .channels = 3, .stride = 6, .data = NULL},
    };
    for (size_t k = 0; k < sizeof bases / sizeof bases[0]; k++) {
        img = (gb_image *)&img;
        assert_int_equal(gb_heatmap_overlay(ctx, &bases[k], good, NULL, &img), GB_ERR_ARG);
        assert_null(img);
        assert_msg_has(ctx, "heatmap overlay: base");
        assert_int_equal(gb_heatmap_panel(ctx, &bases[k], good, NULL, &img), GB_ERR_ARG);
        assert_msg_has(ctx, "heatmap panel: base");
    }
    assert_int_equal(gb_heatmap_overlay(ctx, NULL, good, NULL, &img), GB_ERR_ARG);
    assert_msg_has(ctx, "image is NULL");
    /* too large after magnification */
    gb_image big = {.width = 1000, .height = 10, .channels = 1, .stride = 1000, .data = NULL};
    big.data = calloc(10000, 1);
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    o.scale = 40;
    assert_int_equal(gb_heatmap_overlay(ctx, &big, good, &o, &img), GB_ERR_ARG);
    assert_msg_has(ctx, "magnified 40 times");
    assert_int_equal(gb_heatmap_panel(ctx, &big, good, &o, &img), GB_ERR_ARG);
    free(big.data);

    /* defaults: the function equals the macro, NULL opts work */
    gb_heatmap_opts a, b = GB_HEATMAP_OPTS_INIT;
    memset(&a, 0x5A, sizeof a);
    gb_heatmap_opts_default(&a);
    assert_true(a.mode == b.mode && a.reduce == b.reduce && a.colormap == b.colormap &&
                a.percentile == b.percentile && a.vmax == b.vmax && a.opacity == b.opacity &&
                a.alpha_by_magnitude == b.alpha_by_magnitude && a.base == b.base &&
                a.scale == b.scale && a.title == b.title && a.legend == b.legend);
    gb_heatmap_opts_default(NULL);
    assert_int_equal(gb_heatmap_limits(ctx, good, NULL, &st), GB_OK);
    assert_int_equal(st.colormap, GB_CMAP_VIRIDIS);
    assert_int_equal(st.reduce, GB_REDUCE_MAX_ABS);
    gb_tensor_free(good);
    gb_ctx_free(ctx);
}

/* ---- pictures for a human ---------------------------------------------------------- */

/* With GB_HEATMAP_DEMO_DIR set, write panels of a synthetic 28x28 garment and
 * a synthetic 160x120 scene there, to look at. */
static void test_demo_pictures(void **state) {
    (void)state;
    const char *dir = getenv("GB_HEATMAP_DEMO_DIR");
    if (!dir || !*dir) skip();
    gb_ctx *ctx = new_ctx();
    gb_image *shirt = NULL;
    assert_int_equal(gb_image_create(ctx, 28, 28, 1, &shirt), GB_OK);
    int64_t d28[3] = {1, 28, 28};
    gb_tensor *a = tensor(ctx, 3, d28, NULL);
    float *av = a->data;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int body = y >= 4 && y < 26 && x >= 7 && x < 21, sleeve = y >= 4 && y < 14 &&
                       (x >= 2 && x < 26) && (x < 7 || x >= 21) && (y - 4) > abs(x - 14) - 12;
            shirt->data[y * 28 + x] = (uint8_t)(body || sleeve ? 150 + (x * 7 + y * 3) % 60 : 0);
            av[y * 28 + x] = (float)(exp(-((x - 14) * (x - 14) + (y - 6) * (y - 6)) / 12.0) -
                                     0.6 * exp(-((x - 4) * (x - 4) + (y - 10) * (y - 10)) / 6.0) +
                                     0.05 * sin(x * 1.7 + y * 2.3));
        }
    char path[1024];
    gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;
    gb_image *p = NULL;
    o.title = "saliency \xe2\x80\x94 class 'Shirt' (p=0.91)";
    assert_int_equal(gb_heatmap_panel(ctx, shirt, a, &o, &p), GB_OK);
    snprintf(path, sizeof path, "%s/heatmap_shirt_magnitude.png", dir);
    assert_int_equal(gb_image_write_png(ctx, path, p), GB_OK);
    gb_image_free(p);
    o.mode = GB_HEATMAP_SIGNED;
    o.title = "integrated gradients \xe2\x80\x94 class 'Shirt' (p=0.91)";
    assert_int_equal(gb_heatmap_panel(ctx, shirt, a, &o, &p), GB_OK);
    snprintf(path, sizeof path, "%s/heatmap_shirt_signed.png", dir);
    assert_int_equal(gb_image_write_png(ctx, path, p), GB_OK);
    gb_image_free(p);
    gb_tensor_free(a);
    gb_image_free(shirt);
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lut_tables),
        cmocka_unit_test(test_lut_matplotlib),
        cmocka_unit_test(test_diverging_white_at_zero),
        cmocka_unit_test(test_sequential_and_mixed),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_reduce_and_shapes),
        cmocka_unit_test(test_render_scale),
        cmocka_unit_test(test_overlay_alpha),
        cmocka_unit_test(test_panel_layout),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_demo_pictures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
