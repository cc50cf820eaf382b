/*
 * test_image.c — decoding and writing images (src/io/image.c).
 *
 * Independent references (tests/scripts/make_image_fixtures.py):
 *   - decode_cases.txt: each fixture written by PIL (or by the script's own
 *     minimal PNG writer for 16-bit RGB) with the pixels PIL decodes, or the
 *     documented rule where glassbox differs on purpose (16-bit -> v >> 8);
 *     JPEGs within a tolerance (stb's IDCT/upsampling is not libjpeg's);
 *   - bad_cases.txt: files that must fail with a given status;
 *   - colors.png.L: PIL's convert('L') of 4096 random colors (luma).
 * Robustness: every truncation of every fixture must fail (never crash, no
 * output), and single-byte mutations must fail or give a consistent image —
 * run with -DGB_SANITIZE=ON, which compiles stb from source so that ASan
 * also checks inside the decoders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
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
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/gb_image_XXXXXX", base && *base ? base : "/tmp");
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

static void fixture_path(char *buf, size_t cap, const char *name) {
    const char *src = getenv("GB_SOURCE_DIR");
    if (!src) fail_msg("GB_SOURCE_DIR is not set (ctest sets it to the source tree)");
    int n = snprintf(buf, cap, "%s/tests/fixtures/images/%s", src, name);
    if (n < 0 || (size_t)n >= cap) fail_msg("fixture path too long: %s/.../%s", src, name);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n >= 0);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void assert_msg_has(const gb_ctx *ctx, const char *needle) {
    const char *m = gb_ctx_errmsg(ctx);
    if (!strstr(m, needle)) fail_msg("message \"%s\" lacks \"%s\"", m, needle);
}

static void assert_one_line(const gb_ctx *ctx, const char *prefix) {
    const char *m = gb_ctx_errmsg(ctx);
    if (strchr(m, '\n') || strncmp(m, prefix, strlen(prefix)) != 0 || strlen(m) <= strlen(prefix))
        fail_msg("message \"%s\" is not one line starting \"%s\"", m, prefix);
}

static gb_status status_from_name(const char *s) {
    for (int i = 0; i < GB_STATUS_COUNT; i++) {
        static const char *const names[] = {"GB_OK", "GB_ERR_IO", "GB_ERR_FORMAT",
                                            "GB_ERR_UNSUPPORTED", "GB_ERR_SHAPE", "GB_ERR_ARG",
                                            "GB_ERR_NOMEM", "GB_ERR_NOT_FOUND", "GB_ERR_INTERNAL"};
        _Static_assert(sizeof names / sizeof names[0] == GB_STATUS_COUNT, "one name per status");
        if (!strcmp(s, names[i])) return (gb_status)i;
    }
    fail_msg("unknown status name %s", s);
    return GB_ERR_INTERNAL;
}

/* The (H, W, C) uint8 pixels of FILE.pixels.npy. */
static gb_tensor *load_pixels(gb_ctx *ctx, const char *file) {
    char name[256], path[512];
    snprintf(name, sizeof name, "%s.pixels.npy", file);
    fixture_path(path, sizeof path, name);
    gb_tensor *t = NULL;
    if (gb_npy_read(ctx, path, &t)) fail_msg("%s", gb_ctx_errmsg(ctx));
    assert_int_equal(t->dtype, GB_DTYPE_U8);
    assert_int_equal(t->ndim, 3);
    return t;
}

/* Compare an image with (H, W, C) pixels: exactly, or within tol levels at
 * most and 0.5 on average. */
static void assert_pixels(const char *what, const gb_image *img, const gb_tensor *want, int tol) {
    if (img->height != want->dims[0] || img->width != want->dims[1] || img->channels != want->dims[2])
        fail_msg("%s: %dx%dx%d, expected %lldx%lldx%lld", what, img->height, img->width,
                 img->channels, (long long)want->dims[0], (long long)want->dims[1],
                 (long long)want->dims[2]);
    const uint8_t *w = want->data;
    int worst = 0;
    double sum = 0;
    size_t n = 0;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width * img->channels; x++, n++) {
            int d = abs((int)img->data[(size_t)y * img->stride + x] - (int)w[n]);
            if (d > worst) worst = d;
            sum += d;
        }
    if (worst > tol || (tol > 0 && sum / (double)n > 0.5))
        fail_msg("%s: max difference %d (allowed %d), mean %.3f", what, worst, tol, sum / (double)n);
}

static void check_image_consistent(const gb_image *img) {
    assert_non_null(img);
    assert_true(img->width >= 1 && img->height >= 1);
    assert_true(img->channels >= 1 && img->channels <= 4);
    assert_int_equal(img->stride, (size_t)img->width * (size_t)img->channels);
    /* Touch every byte (ASan checks the allocation's size). */
    volatile unsigned sink = 0;
    for (size_t i = 0; i < img->stride * (size_t)img->height; i++) sink += img->data[i];
    (void)sink;
}

typedef struct {
    char file[64];
    int channels, tol;
} decode_case;

static int read_decode_cases(decode_case *cases, int cap) {
    char path[512];
    fixture_path(path, sizeof path, "decode_cases.txt");
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    int n = 0;
    while (n < cap && fscanf(f, "%63s %d %d", cases[n].file, &cases[n].channels, &cases[n].tol) == 3) n++;
    fclose(f);
    assert_true(n >= 15);
    return n;
}

/* ---- decoding ---------------------------------------------------------------- */

static void test_decode_fixtures(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    decode_case cases[64];
    int n = read_decode_cases(cases, 64);
    for (int k = 0; k < n; k++) {
        char path[512];
        fixture_path(path, sizeof path, cases[k].file);
        gb_image *img = (gb_image *)&ctx;   /* must be overwritten */
        if (gb_image_load(ctx, path, &img)) fail_msg("%s: %s", cases[k].file, gb_ctx_errmsg(ctx));
        check_image_consistent(img);
        assert_int_equal(img->channels, cases[k].channels);
        gb_tensor *want = load_pixels(ctx, cases[k].file);
        assert_pixels(cases[k].file, img, want, cases[k].tol);

        /* The same bytes from memory; and the header facts. */
        size_t len;
        unsigned char *b = slurp(path, &len);
        gb_image *m = NULL;
        assert_int_equal(gb_image_load_memory(ctx, b, len, &m), GB_OK);
        assert_int_equal(m->stride, img->stride);
        assert_memory_equal(m->data, img->data, img->stride * (size_t)img->height);
        gb_image_info info;
        assert_int_equal(gb_image_probe_memory(ctx, b, len, &info), GB_OK);
        assert_int_equal(info.width, img->width);
        assert_int_equal(info.height, img->height);
        assert_int_equal(info.channels, img->channels);
        assert_int_equal(info.bits, strstr(cases[k].file, "16") ? 16 : 8);
        const char *ext = strrchr(cases[k].file, '.') + 1;
        const char *fmt = !strcmp(ext, "png") ? "PNG" : !strcmp(ext, "jpg") ? "JPEG"
                          : !strcmp(ext, "bmp") ? "BMP" : !strcmp(ext, "pgm") ? "PGM" : "PPM";
        assert_string_equal(info.format, fmt);
        free(b);
        gb_image_free(m);
        gb_tensor_free(want);
        gb_image_free(img);
    }
    gb_ctx_free(ctx);
}

static void test_bad_fixtures(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[512];
    fixture_path(path, sizeof path, "bad_cases.txt");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char file[64], stname[64];
    int n = 0;
    while (fscanf(f, "%63s %63s", file, stname) == 2) {
        char fp[512], prefix[600];
        fixture_path(fp, sizeof fp, file);
        gb_image *img = (gb_image *)&ctx;
        gb_status st = gb_image_load(ctx, fp, &img);
        if (st != status_from_name(stname))
            fail_msg("%s: got %s (%s), want %s", file, gb_status_str(st), gb_ctx_errmsg(ctx), stname);
        assert_null(img);
        snprintf(prefix, sizeof prefix, "image: %s: ", fp);
        assert_one_line(ctx, prefix);
        n++;
    }
    fclose(f);
    assert_true(n >= 10);

    /* A few messages in full. */
    gb_image *img;
    fixture_path(path, sizeof path, "text.png");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "not an image: expected PNG, JPEG, BMP or PGM/PPM (file starts with \"this is not \")");
    fixture_path(path, sizeof path, "tiny.gif");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "GIF images are not supported");
    fixture_path(path, sizeof path, "gray16.pgm");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "PGM with maxval 65535 is not supported");
    fixture_path(path, sizeof path, "huge.png");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "40000x40000 PNG exceeds the image size limit");
    fixture_path(path, sizeof path, "wide.png");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "30000x20000 PNG exceeds");
    fixture_path(path, sizeof path, "short_idat.png");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "corrupt PNG data (stb_image: ");
    fixture_path(path, sizeof path, "jpeg_undef_huff.jpg");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "a scan uses a Huffman table that is not defined");
    fixture_path(path, sizeof path, "jpeg_big_huff.jpg");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "Huffman table with 4080 codes (at most 256)");
    fixture_path(path, sizeof path, "jpeg_undef_dqt.jpg");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "a scan uses quantization table 2, which is not defined");
    fixture_path(path, sizeof path, "rle.bmp");
    gb_image_load(ctx, path, &img);
    assert_msg_has(ctx, "compressed BMP (compression 1) is not supported");

    /* The limits are checked from the header: probing says so too. */
    size_t len;
    fixture_path(path, sizeof path, "huge.png");
    unsigned char *b = slurp(path, &len);
    gb_image_info info;
    assert_int_equal(gb_image_probe_memory(ctx, b, len, &info), GB_ERR_UNSUPPORTED);
    free(b);
    gb_ctx_free(ctx);
}

static void test_io_errors(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/no_such_image.png", g_tmpdir);
    gb_image *img = (gb_image *)&ctx;
    assert_int_equal(gb_image_load(ctx, path, &img), GB_ERR_IO);
    assert_null(img);
    char want[700];
    snprintf(want, sizeof want, "image: %s: cannot open: %s", path, strerror(ENOENT));
    assert_string_equal(gb_ctx_errmsg(ctx), want);
    /* A directory opens but cannot be read. */
    assert_int_equal(gb_image_load(ctx, g_tmpdir, &img), GB_ERR_IO);
    assert_one_line(ctx, "image: ");
    /* Arguments. */
    assert_int_equal(gb_image_load(ctx, NULL, &img), GB_ERR_ARG);
    assert_int_equal(gb_image_load(ctx, path, NULL), GB_ERR_ARG);
    assert_int_equal(gb_image_load_memory(ctx, NULL, 4, &img), GB_ERR_ARG);
    assert_int_equal(gb_image_load_memory(ctx, NULL, 0, &img), GB_ERR_FORMAT);
    assert_msg_has(ctx, "image: buffer: empty file");
    gb_image_free(NULL);
    gb_ctx_free(ctx);
}

/* Every prefix of every fixture is an error with no output. */
static void test_truncations(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    decode_case cases[64];
    int n = read_decode_cases(cases, 64);
    for (int k = 0; k < n; k++) {
        char path[512];
        fixture_path(path, sizeof path, cases[k].file);
        size_t len;
        unsigned char *full = slurp(path, &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* An exact-size copy, so ASan sees any read past the cut. */
            unsigned char *b = malloc(cut ? cut : 1);
            memcpy(b, full, cut);
            gb_image *img = (gb_image *)&ctx;
            gb_status st = gb_image_load_memory(ctx, b, cut, &img);
            if (st != GB_ERR_FORMAT)
                fail_msg("%s cut at %zu of %zu: %s (%s)", cases[k].file, cut, len,
                         gb_status_str(st), st ? gb_ctx_errmsg(ctx) : "decoded");
            assert_null(img);
            assert_one_line(ctx, "image: buffer: ");
            free(b);
        }
        free(full);
    }
    gb_ctx_free(ctx);
}

/* Single-byte changes: any status, but a success must be a consistent image
 * and a failure one line with no output. */
static void test_mutations(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    static const char *const files[] = {"rgb.png", "pal_trns.png", "rgb16.png", "rgb.jpg",
                                        "progressive.jpg", "rgb.bmp", "pal8.bmp", "comments.pgm"};
    static const uint8_t values[] = {0x00, 0xff, 0x80, 0x7f, 0x01};
    int ok = 0, failed = 0;
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char path[512];
        fixture_path(path, sizeof path, files[k]);
        size_t len;
        unsigned char *b = slurp(path, &len);
        /* Every byte of the first 128 (headers), then every 7th. */
        for (size_t i = 0; i < len; i += i < 128 ? 1 : 7)
            for (size_t v = 0; v < sizeof values; v++) {
                uint8_t old = b[i];
                if (old == values[v]) continue;
                b[i] = values[v];
                gb_image *img = NULL;
                gb_status st = gb_image_load_memory(ctx, b, len, &img);
                if (st == GB_OK) {
                    check_image_consistent(img);
                    gb_image_free(img);
                    ok++;
                } else {
                    assert_null(img);
                    assert_one_line(ctx, "image: buffer: ");
                    failed++;
                }
                b[i] = old;
            }
        free(b);
    }
    assert_true(ok > 0 && failed > 0);
    gb_ctx_free(ctx);
}

/* ---- stb's global flip flag ------------------------------------------------------- */

/* Present only when the test links Debian's libstb (the default build). */
extern void stbi_set_flip_vertically_on_load(int flag) __attribute__((weak));

static void test_global_flip_ignored(void **state) {
    if (!stbi_set_flip_vertically_on_load) skip();   /* stb compiled privately */
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[512];
    fixture_path(path, sizeof path, "rgb.png");
    stbi_set_flip_vertically_on_load(1);   /* as another library in the process might */
    gb_image *img;
    gb_status st = gb_image_load(ctx, path, &img);
    stbi_set_flip_vertically_on_load(0);
    assert_int_equal(st, GB_OK);
    gb_tensor *want = load_pixels(ctx, "rgb.png");
    assert_pixels("rgb.png with the global flip set", img, want, 0);
    gb_tensor_free(want);
    gb_image_free(img);
    gb_ctx_free(ctx);
}

/* ---- create, convert --------------------------------------------------------------- */

static void test_create(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_image *img = NULL;
    assert_int_equal(gb_image_create(ctx, 3, 2, 4, &img), GB_OK);
    assert_int_equal(img->stride, 12);
    for (size_t i = 0; i < 24; i++) assert_int_equal(img->data[i], 0);
    gb_image_free(img);
    assert_int_equal(gb_image_create(ctx, 0, 2, 3, &img), GB_ERR_ARG);
    assert_null(img);
    assert_int_equal(gb_image_create(ctx, 2, 2, 5, &img), GB_ERR_ARG);
    assert_int_equal(gb_image_create(ctx, GB_IMAGE_MAX_SIDE + 1, 1, 1, &img), GB_ERR_ARG);
    assert_int_equal(gb_image_create(ctx, GB_IMAGE_MAX_SIDE, GB_IMAGE_MAX_SIDE, 4, &img), GB_ERR_ARG);
    assert_msg_has(ctx, "exceeds");
    gb_ctx_free(ctx);
}

static gb_image *load_fixture(gb_ctx *ctx, const char *file) {
    char path[512];
    fixture_path(path, sizeof path, file);
    gb_image *img = NULL;
    if (gb_image_load(ctx, path, &img)) fail_msg("%s", gb_ctx_errmsg(ctx));
    return img;
}

static void test_convert(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);

    /* Luma against PIL's convert('L') on 4096 random colors. */
    gb_image *colors = load_fixture(ctx, "colors.png"), *gray;
    assert_int_equal(gb_image_convert(ctx, colors, 1, &gray), GB_OK);
    gb_tensor *want = load_pixels(ctx, "colors.png.L");
    assert_pixels("colors.png -> L", gray, want, 0);
    gb_tensor_free(want);

    /* gray -> RGB replicates; RGB -> RGBA adds 255; RGBA -> RGB drops alpha. */
    gb_image *rgb, *rgba, *back;
    assert_int_equal(gb_image_convert(ctx, gray, 3, &rgb), GB_OK);
    for (int i = 0; i < 64 * 64; i++)
        for (int c = 0; c < 3; c++) assert_int_equal(rgb->data[3 * i + c], gray->data[i]);
    assert_int_equal(gb_image_convert(ctx, colors, 4, &rgba), GB_OK);
    for (int i = 0; i < 64 * 64; i++) {
        assert_memory_equal(rgba->data + 4 * i, colors->data + 3 * i, 3);
        assert_int_equal(rgba->data[4 * i + 3], 255);
    }
    assert_int_equal(gb_image_convert(ctx, rgba, 3, &back), GB_OK);
    assert_memory_equal(back->data, colors->data, 64 * 64 * 3);
    gb_image_free(back);

    /* gray+alpha -> RGBA keeps alpha; -> gray drops it. */
    gb_image *la = load_fixture(ctx, "la.png"), *la4, *la1;
    assert_int_equal(gb_image_convert(ctx, la, 4, &la4), GB_OK);
    assert_int_equal(gb_image_convert(ctx, la, 1, &la1), GB_OK);
    for (int i = 0; i < la->width * la->height; i++) {
        uint8_t l = la->data[2 * i], a = la->data[2 * i + 1];
        assert_true(la4->data[4 * i] == l && la4->data[4 * i + 1] == l && la4->data[4 * i + 2] == l);
        assert_int_equal(la4->data[4 * i + 3], a);
        assert_int_equal(la1->data[i], l);
    }

    /* A view with a stride (the right half of colors.png). */
    gb_image view = {.width = 32, .height = 64, .channels = 3, .stride = colors->stride,
                     .data = colors->data + 32 * 3};
    assert_int_equal(gb_image_convert(ctx, &view, 1, &back), GB_OK);
    for (int y = 0; y < 64; y++)
        assert_memory_equal(back->data + y * 32, gray->data + y * 64 + 32, 32);
    gb_image_free(back);

    assert_int_equal(gb_image_convert(ctx, colors, 2, &back), GB_ERR_ARG);
    assert_null(back);
    view.stride = 10;
    assert_int_equal(gb_image_convert(ctx, &view, 1, &back), GB_ERR_ARG);
    assert_msg_has(ctx, "stride");
    gb_image_free(la);
    gb_image_free(la1);
    gb_image_free(la4);
    gb_image_free(rgba);
    gb_image_free(rgb);
    gb_image_free(gray);
    gb_image_free(colors);
    gb_ctx_free(ctx);
}

/* ---- writing PNG ---------------------------------------------------------------------- */

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_write_png(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    static const char *const files[] = {"gray.png", "la.png", "rgb.png", "rgba.png"};
    char out[600];
    snprintf(out, sizeof out, "%s/out.png", g_tmpdir);
    for (int k = 0; k < 4; k++) {
        gb_image *src = load_fixture(ctx, files[k]), *back;
        assert_int_equal(src->channels, k + 1);
        /* Whole image, written twice (the second replaces the first). */
        for (int rep = 0; rep < 2; rep++) {
            if (gb_image_write_png(ctx, out, src)) fail_msg("%s", gb_ctx_errmsg(ctx));
            assert_int_equal(gb_image_load(ctx, out, &back), GB_OK);
            assert_int_equal(back->channels, src->channels);
            assert_int_equal(back->width, src->width);
            assert_int_equal(back->height, src->height);
            assert_memory_equal(back->data, src->data, src->stride * (size_t)src->height);
            gb_image_free(back);
        }
        /* A strided view: rows 1.. and columns 2.. */
        int c = src->channels;
        gb_image view = {.width = src->width - 2, .height = src->height - 1, .channels = c,
                         .stride = src->stride, .data = src->data + src->stride + 2 * c};
        assert_int_equal(gb_image_write_png(ctx, out, &view), GB_OK);
        assert_int_equal(gb_image_load(ctx, out, &back), GB_OK);
        for (int y = 0; y < view.height; y++)
            assert_memory_equal(back->data + (size_t)y * back->stride,
                                view.data + (size_t)y * view.stride, (size_t)view.width * c);
        gb_image_free(back);
        gb_image_free(src);
        assert_int_equal(count_dir_entries(g_tmpdir), 1);   /* no temporary left */
    }
    assert_int_equal(unlink(out), 0);

    /* Failures leave nothing behind. */
    gb_image *img;
    assert_int_equal(gb_image_create(ctx, 4, 4, 3, &img), GB_OK);
    char bad[700];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.png", g_tmpdir);
    assert_int_equal(gb_image_write_png(ctx, bad, img), GB_ERR_IO);
    assert_one_line(ctx, "image: ");
    assert_msg_has(ctx, bad);
    assert_int_equal(count_dir_entries(g_tmpdir), 0);
    img->stride = 2;
    assert_int_equal(gb_image_write_png(ctx, out, img), GB_ERR_ARG);
    assert_int_equal(count_dir_entries(g_tmpdir), 0);
    assert_int_equal(gb_image_write_png(ctx, NULL, img), GB_ERR_ARG);
    assert_int_equal(gb_image_write_png(ctx, out, NULL), GB_ERR_ARG);
    gb_image_free(img);
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_fixtures),
        cmocka_unit_test(test_bad_fixtures),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_global_flip_ignored),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_convert),
        cmocka_unit_test(test_write_png),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
