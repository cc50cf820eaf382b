/*
 * fuzz_image.c — libFuzzer target for image decoding (src/io/image.c) and
 * preprocessing (src/io/preprocess.c).
 *
 * Build with clang, the sanitizers and libFuzzer's coverage instrumentation.
 * GB_FUZZ and GB_SANITIZE both compile stb_image from Debian's header into
 * the library (GB_STB_FROM_SOURCE), so coverage and ASan reach inside the
 * decoders. Against the uninstrumented libstb.so the fuzzer would be blind
 * there.
 *   CC=clang cmake -S . -B build-fuzz -DGB_FUZZ=ON -DGB_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_image
 * Run, with a scratch corpus directory first (libFuzzer writes new inputs
 * into the first directory, so the committed seeds stay a few small files):
 *   mkdir -p /tmp/image_corpus
 *   build-fuzz/fuzz_image -max_total_time=60 -max_len=16384 -rss_limit_mb=2048 \
 *     /tmp/image_corpus tests/fuzz/corpus/image
 * The seeds (tests/scripts/make_image_fixtures.py) are small PNG (gray,
 * gray+alpha, RGB, palette+tRNS, 16-bit), JPEG (baseline, progressive, gray),
 * BMP (24-bit both row orders, 8-bit palette), PGM and PPM files.
 *
 * Each input is probed first. Images over FUZZ_MAX_SAMPLES samples are not
 * decoded: a 60-byte PNG can declare 32768 x 32768 pixels (within the
 * library's limits), and decoding it would only measure the machine.
 * Contract checks, which trap on failure:
 *   - probe and load agree: the same status, and on success the same size
 *     and channels;
 *   - a decoded image is consistent (sizes, packed stride, every byte
 *     readable);
 *   - a failure leaves *out NULL and a one-line "image: buffer: " message
 *     with GB_ERR_FORMAT, GB_ERR_UNSUPPORTED or GB_ERR_NOMEM;
 *   - preprocessing with two fixed settings succeeds. A plain scale (mean 0,
 *     std 1) gives values in [0, 1], because bilinear weights are convex.
 *     One setting pads (crop larger than the resized image) and the other
 *     stretches. The inverse and gb_image_convert succeed too.
 */
#include "glassbox/glassbox.h"
#include "glassbox/image.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_SAMPLES ((size_t)1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_preproc(gb_ctx *ctx, const gb_image *img, const gb_preproc *pp) {
    gb_tensor *t = NULL;
    if (gb_preproc_image(ctx, pp, img, &t) != GB_OK) __builtin_trap();
    const float *x = t->data;
    for (int64_t i = 0; i < t->numel; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f + 1e-6f)) __builtin_trap();
    gb_image *back = NULL;
    if (gb_preproc_inverse(ctx, pp, t, 0, &back) != GB_OK) __builtin_trap();
    if (back->width != pp->width || back->height != pp->height || back->channels != pp->channels)
        __builtin_trap();
    gb_image_free(back);
    gb_tensor_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gb_ctx *ctx;
    if (gb_ctx_create(&ctx) != GB_OK) return 0;
    gb_image_info info;
    gb_status pst = gb_image_probe_memory(ctx, data, size, &info);
    if (pst == GB_OK &&
        (size_t)info.width * (size_t)info.height * (size_t)info.channels > FUZZ_MAX_SAMPLES) {
        gb_ctx_free(ctx);
        return 0;
    }
    char probe_msg[512];
    strncpy(probe_msg, gb_ctx_errmsg(ctx), sizeof probe_msg - 1);
    probe_msg[sizeof probe_msg - 1] = 0;

    gb_image *img = (gb_image *)&ctx;   /* must be overwritten */
    gb_status st = gb_image_load_memory(ctx, data, size, &img);
    if (st != GB_OK) {
        const char *m = gb_ctx_errmsg(ctx);
        if (img != NULL || (st != GB_ERR_FORMAT && st != GB_ERR_UNSUPPORTED && st != GB_ERR_NOMEM) ||
            strncmp(m, "image: buffer: ", 15) != 0 || strchr(m, '\n'))
            __builtin_trap();
        /* A header the probe refused fails loading the same way. */
        if (pst != GB_OK && (st != pst || strncmp(m, probe_msg, sizeof probe_msg - 1) != 0))
            __builtin_trap();
        gb_ctx_free(ctx);
        return 0;
    }
    if (pst != GB_OK || info.width != img->width || info.height != img->height ||
        info.channels != img->channels)
        __builtin_trap();
    if (img->width < 1 || img->height < 1 || img->channels < 1 || img->channels > 4 ||
        img->stride != (size_t)img->width * (size_t)img->channels)
        __builtin_trap();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < img->stride * (size_t)img->height; i++) sink ^= img->data[i];
    (void)sink;

    gb_preproc pp;
    gb_preproc_default(&pp);   /* stretch, NCHW, scale 255, mean 0, std 1 */
    pp.color = GB_COLOR_GRAY;
    pp.channels = 1;
    pp.height = 7, pp.width = 5;
    check_preproc(ctx, img, &pp);
    gb_preproc_default(&pp);   /* shorter side 5, crop 6 x 8: pads */
    pp.layout = GB_LAYOUT_NHWC;
    pp.color = GB_COLOR_BGR;
    pp.resize = GB_RESIZE_SHORTER;
    pp.resize_shorter = 5;
    pp.height = 6, pp.width = 8;
    check_preproc(ctx, img, &pp);

    gb_image *conv = NULL;
    if (gb_image_convert(ctx, img, 1, &conv) != GB_OK) __builtin_trap();
    gb_image_free(conv);
    gb_image_free(img);
    gb_ctx_free(ctx);
    return 0;
}
