/*
 * image.h — images in and out, model input tensors from images, and the
 * MODEL.json sidecar that says how a model wants its images prepared.
 *
 * A worked example (error checks shortened; every function returns a
 * gb_status and leaves a one-line message on the context):
 *
 *     gb_model *m;    gb_model_load(ctx, "net.onnx", &m);
 *     gb_sidecar *sc; gb_sidecar_for_model(ctx, m, "net.onnx", &sc);  // net.json, or defaults
 *     gb_preproc pp = sc->input;                  // a copy the CLI may override:
 *     gb_preproc_set(ctx, &pp, "resize", "shorter");
 *     gb_preproc_match_model(ctx, &pp, m, NULL);  // re-check against the model
 *     gb_image *img;  if (gb_image_load(ctx, "cat.jpg", &img)) puts(gb_ctx_errmsg(ctx));
 *     gb_tensor *x;   gb_preproc_image(ctx, &pp, img, &x);   // (1, C, H, W) float32
 *     ...run the model on x...
 *     gb_image *seen; gb_preproc_inverse(ctx, &pp, x, 0, &seen); // what the model saw
 *     gb_image_write_png(ctx, "seen.png", seen);
 *     gb_image_free(seen); gb_tensor_free(x); gb_image_free(img);
 *     gb_sidecar_free(sc); gb_model_free(m);
 *
 * ---- Images ----
 * A gb_image is 8-bit, interleaved, row 0 at the top, with an explicit row
 * stride (stb's convention). Images made by this library are packed
 * (stride == width * channels); functions that take a `const gb_image *`
 * honour any stride >= width * channels, so a caller can describe pixels it
 * owns (a sub-rectangle, a padded buffer) with a gb_image on the stack:
 *     gb_image view = { .width = 64, .height = 64, .channels = 3,
 *                       .stride = full_width * 3, .data = pixels + ... };
 * Only images returned by this library go to gb_image_free.
 *
 * Formats read, always to 8 bits per sample, channels as in the file:
 *   PNG   gray, gray+alpha, RGB, RGBA, palette (-> RGB, or RGBA with tRNS),
 *         1/2/4/8/16 bits, interlaced. 16-bit samples keep their HIGH byte
 *         (v >> 8, stb_image's rule; up to 1 level below round(v / 257)).
 *         A tRNS chunk on a gray or RGB image is ignored (as PIL's
 *         convert('RGB') ignores it); on a palette image it gives RGBA.
 *   JPEG  baseline and progressive, gray (1 channel) or color (3; CMYK and
 *         YCCK are converted to RGB). Decoded by stb_image, whose IDCT and
 *         chroma upsampling differ from libjpeg's: pixels may differ from
 *         PIL's by a few levels (tests allow 4, mean < 0.5). EXIF orientation
 *         is ignored, as by PIL's Image.open.
 *   BMP   1/4/8-bit palette (-> RGB), 16/24-bit RGB, uncompressed or
 *         bitfields (RLE and embedded JPEG/PNG are refused). 32-bit: stb's
 *         rule — RGBA when uncompressed (the 4th byte is alpha; all-zero
 *         alpha becomes 255; PIL reads these as RGB, same RGB values) or when
 *         a V4/V5 header has an alpha mask, else RGB.
 *   PGM/PPM  binary P5 (gray) / P6 (RGB) with maxval 255. Read directly,
 *         not through stb_image: stb 2.27's reader returns uninitialized
 *         memory for a truncated file and the LOW byte of 16-bit samples.
 *         Other maxvals, ASCII (P2/P3) and bitmaps (P1/P4) are refused.
 * Anything else — GIF, TIFF, WebP, PSD, TGA, HDR, text — is refused by its
 * leading bytes before any decoder runs (stb_image would otherwise try to
 * read an unknown file as TGA, a format without a signature).
 *
 * Errors (one-line messages "image: <path or 'buffer'>: <what>"):
 *   GB_ERR_IO           the file cannot be opened or read (with strerror);
 *   GB_ERR_FORMAT       not an image; a truncated or structurally broken
 *                       file (checked before stb runs: the PNG chunks up
 *                       to IEND, the JPEG markers up to EOI with their
 *                       Huffman/quantization tables defined before use,
 *                       the BMP pixel array, the PGM/PPM data length —
 *                       stb_image 2.27 decodes some truncated files and
 *                       misbehaves on undefined JPEG tables); or
 *                       stb_image's failure reason for the pixel data;
 *   GB_ERR_UNSUPPORTED  a known but unsupported format or variant, or an
 *                       image over the size limits below;
 *   GB_ERR_NOMEM        out of memory.
 * The limits are checked from the header, before decoding.
 *
 * stb's global state: stb_image keeps process-wide flags (vertical flip,
 * iPhone PNG conversion, un-premultiply). glassbox never sets a global
 * flag — another library in the same process might, and a flipped image
 * is a silent error — so before each decode it sets the THREAD-LOCAL
 * variants on the calling thread (flip off; iPhone CgBI PNGs converted to
 * RGB with straight alpha), which take precedence over the globals.
 * stb_image_write's flip-on-write flag has no thread-local variant; glassbox
 * never sets it. Its failure reason is thread-local (libstb is built with
 * STBI_THREAD_LOCAL), so decoding from several threads is safe.
 */
#ifndef GLASSBOX_IMAGE_H
#define GLASSBOX_IMAGE_H

#include "glassbox/glassbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- images --------------------------------------------------------------- */

#define GB_IMAGE_MAX_SIDE 32768                 /* width and height */
#define GB_IMAGE_MAX_BYTES ((size_t)1 << 30)     /* decoded samples x bytes/sample */

typedef struct gb_image {
    int width, height;
    int channels;        /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    size_t stride;       /* bytes from one row to the next, >= width * channels */
    uint8_t *data;       /* (height, stride) bytes; pixel (y, x) channel c at
                            data[y * stride + x * channels + c] */
} gb_image;

/* What a file holds, read from its header without decoding. */
typedef struct {
    const char *format;  /* "PNG", "JPEG", "BMP", "PGM" or "PPM" (static) */
    int width, height;
    int channels;        /* channels gb_image_load will return */
    int bits;            /* bits per sample in the file (8 or 16) */
} gb_image_info;

/* A zero-filled packed image. channels 1..4, sides 1..GB_IMAGE_MAX_SIDE. */
gb_status gb_image_create(gb_ctx *ctx, int width, int height, int channels, gb_image **out);
/* Decode a file / an in-memory file. *out is NULL on failure. */
gb_status gb_image_load(gb_ctx *ctx, const char *path, gb_image **out);
gb_status gb_image_load_memory(gb_ctx *ctx, const void *buf, size_t len, gb_image **out);
/* Header facts of an in-memory file (same checks as loading, except that the
 * pixel data is not decoded: a corrupt PNG/JPEG stream is not detected). */
gb_status gb_image_probe_memory(gb_ctx *ctx, const void *buf, size_t len, gb_image_info *out);
/* Write a PNG (1..4 channels, 8-bit) atomically: to a temporary name beside
 * `path`, then rename, so a failure never leaves a partial file at `path`. */
gb_status gb_image_write_png(gb_ctx *ctx, const char *path, const gb_image *img);
/* A packed copy with `channels` channels (1, 3 or 4):
 *   to 1: gray kept; RGB -> ITU-R 601-2 luma exactly as PIL's convert('L'):
 *         L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 (checked against
 *         PIL on all 2^24 colors; a 16-bit fixed-point form of
 *         R*299/1000 + G*587/1000 + B*114/1000);
 *   to 3: gray replicated; RGB kept;
 *   to 4: as to 3, alpha kept or 255.
 * Alpha is dropped without compositing (as PIL's convert). */
gb_status gb_image_convert(gb_ctx *ctx, const gb_image *src, int channels, gb_image **out);
void gb_image_free(gb_image *img);

/* ---- preprocessing: image -> model input tensor ---------------------------- */

typedef enum { GB_LAYOUT_NCHW, GB_LAYOUT_NHWC, GB_LAYOUT_COUNT } gb_layout;
typedef enum { GB_COLOR_GRAY, GB_COLOR_RGB, GB_COLOR_BGR, GB_COLOR_COUNT } gb_color;
typedef enum { GB_RESIZE_STRETCH, GB_RESIZE_SHORTER, GB_RESIZE_COUNT } gb_resize_mode;

#define GB_PREPROC_MAX_CHANNELS 3
#define GB_PREPROC_NAME_MAX 256

/*
 * How an image becomes the float32 tensor a model takes. For output element
 * (channel c, row y, column x):
 *
 *   1. Color, on the 8-bit image (as PIL's convert before the transforms):
 *      gray: 1 channel, luma of RGB as gb_image_convert; rgb: gray is
 *      replicated; bgr: rgb reversed. Alpha is dropped.
 *   2. Geometry, bilinear, on the uint8 values as floats (no rounding back
 *      to uint8), exactly torch.nn.functional.interpolate(mode='bilinear',
 *      align_corners=False, antialias=False):
 *        scale = in / out;  s = max(0, (dst + 0.5) * scale - 0.5);
 *        i0 = floor(s);  i1 = min(i0 + 1, in - 1);  w1 = s - i0;  w0 = 1 - w1
 *      NOT PIL's resize, which low-pass filters when shrinking (PIL-based
 *      torchvision pipelines therefore see smoother images when shrinking).
 *      "stretch": resize to (height, width), aspect ratio not kept.
 *      "shorter": torchvision Resize(S) then CenterCrop((height, width)) on
 *        a tensor: the shorter side becomes S and the longer
 *        int(S * long / short) (truncated); the crop starts at
 *        round((size - crop) / 2) with Python's round-half-to-even; where
 *        the crop is larger than the resized image it is padded with pixel
 *        value 0 (pad before = (crop - size) / 2, rounded down).
 *        S = resize_shorter, or max(height, width) when 0 (no padding).
 *   3. Values: x = (v / scale - mean[c]) / std[c], computed in double and
 *      rounded once to float (torchvision's ToTensor + Normalize when
 *      scale = 255).
 *   4. Layout: (N, C, H, W) or (N, H, W, C).
 *
 * Checked in tests/unit/test_preprocess.c against torchvision's own resize
 * and center_crop on float64 tensors (tests/scripts/make_image_fixtures.py)
 * within 1e-5.
 *
 * The struct is plain data: copy it, edit it, or use gb_preproc_set.
 */
typedef struct gb_preproc {
    char input_name[GB_PREPROC_NAME_MAX];  /* graph input fed; "" = the first */
    gb_layout layout;
    int channels;              /* C: 1 (color gray) or 3 (rgb, bgr) */
    gb_color color;
    int height, width;         /* H, W of the tensor; 0 = not known yet */
    gb_resize_mode resize;
    int resize_shorter;        /* S for GB_RESIZE_SHORTER; 0 = max(height, width) */
    double scale;              /* pixel divisor, > 0; default 255 */
    double mean[GB_PREPROC_MAX_CHANNELS];  /* per channel, after scaling; default 0 */
    double std[GB_PREPROC_MAX_CHANNELS];   /* per channel, > 0; default 1 */
} gb_preproc;

/* Defaults: NCHW, 3 channels rgb, height = width = 0, stretch, S = 0,
 * scale 255, mean 0, std 1, input_name "". */
void gb_preproc_default(gb_preproc *pp);
/* Defaults for a declared model input (gb_model_input): it must be a 4-D
 * float32 tensor. Layout NCHW when dims[1] is 1 or 3, else NHWC when dims[3]
 * is 1 or 3, else NCHW; C, H, W from the dims (symbolic H or W: 0, to be
 * given by the sidecar or an override; symbolic C: 3); color gray for 1
 * channel, rgb for 3. GB_ERR_UNSUPPORTED for another rank or type, or a
 * channel count other than 1 or 3. */
gb_status gb_preproc_from_input(gb_ctx *ctx, const gb_value_info *in, gb_preproc *pp);
/* Override one field from text, for command-line flags. Keys are the
 * sidecar's: "name", "layout" (NCHW|NHWC), "channels" (1|3), "color"
 * (gray|rgb|bgr), "height", "width", "resize" (stretch|shorter),
 * "resize_shorter" (0 = default), "scale", "mean", "std" (comma-separated:
 * one value per channel, or one value for all). "color" sets channels to
 * match, "channels" sets color (1: gray; 3: rgb unless it was bgr); when
 * the channel count changes, mean and std reset to 0 and 1 unless they were
 * the same for every channel — set color before mean and std.
 * GB_ERR_ARG naming the key on an unknown key or a bad value. */
gb_status gb_preproc_set(gb_ctx *ctx, gb_preproc *pp, const char *key, const char *value);
/* Every field in range and consistent (GB_ERR_ARG naming the field; an
 * unknown height or width says how to give it). */
gb_status gb_preproc_check(gb_ctx *ctx, const gb_preproc *pp);
/* Check pp against the model: the named input (or the first) exists, is
 * 4-D float32, and its static dims agree with layout, channels, height and
 * width (GB_ERR_SHAPE naming both; symbolic dims match anything). Stores
 * the input's index in *input_index when not NULL. */
gb_status gb_preproc_match_model(gb_ctx *ctx, const gb_preproc *pp, const gb_model *m,
                                 int *input_index);
/* One image -> a new (1, C, H, W) or (1, H, W, C) float32 tensor. */
gb_status gb_preproc_image(gb_ctx *ctx, const gb_preproc *pp, const gb_image *img,
                           gb_tensor **out);
/* n images (any sizes) -> one (n, C, H, W) or (n, H, W, C) tensor. */
gb_status gb_preproc_batch(gb_ctx *ctx, const gb_preproc *pp, const gb_image *const *imgs,
                           int n, gb_tensor **out);
/* Write image `img` into batch item `index` of an existing float32 tensor
 * of pp's shape (any N > index). */
gb_status gb_preproc_image_into(gb_ctx *ctx, const gb_preproc *pp, const gb_image *img,
                                gb_tensor *t, int64_t index);
/* The inverse of step 3 and 4 for batch item `index`: a packed H x W image
 * with 1 channel (gray) or 3 in RGB order (bgr is reversed back), each
 * sample round(clamp((x * std + mean) * scale, 0, 255)) (NaN -> 0). The
 * resize and crop are not undone: this is the image the model saw. */
gb_status gb_preproc_inverse(gb_ctx *ctx, const gb_preproc *pp, const gb_tensor *t,
                             int64_t index, gb_image **out);
/* The rectangle of a width x height source image that the tensor covers,
 * in source pixel-edge coordinates {x0, y0, x1, y1} (may extend outside the
 * image where "shorter" pads): to draw a tensor-sized heatmap back over the
 * original image. GB_ERR_ARG on a bad size or an invalid pp. */
gb_status gb_preproc_region(gb_ctx *ctx, const gb_preproc *pp, int width, int height,
                            double box[4]);

/* ---- the sidecar: MODEL.json beside MODEL.onnx ---------------------------- */

/*
 * Schema (every key optional; missing ones keep the model's defaults):
 *
 *   { "input": { "name": "image", "layout": "NCHW" | "NHWC",
 *                "channels": 1 | 3, "color": "gray" | "rgb" | "bgr",
 *                "height": 28, "width": 28,
 *                "resize": "stretch" | "shorter", "resize_shorter": 32,
 *                "scale": 255, "mean": [0.286], "std": [0.353] },
 *     "labels": ["T-shirt/top", ...],
 *     "task": "classification" }
 *
 * Validation, GB_ERR_FORMAT naming the file and the key: malformed JSON
 * (with line and column), a wrong type, an unknown or duplicate key inside
 * "input" (a typo there would silently change every number), channels and
 * color disagreeing, mean/std not exactly one number per channel, std <= 0,
 * scale <= 0, sizes outside 1..GB_IMAGE_MAX_SIDE. Other top-level keys
 * ("dataset", "test_accuracy", notes...) are ignored. With a model: the
 * named input must exist (GB_ERR_NOT_FOUND), its static dims must agree
 * (GB_ERR_SHAPE), and for "classification" with a (N, K) first output of
 * static K, labels must have K entries (GB_ERR_FORMAT).
 */
typedef struct gb_sidecar {
    gb_preproc input;
    int n_labels;
    char **labels;             /* n_labels strings, owned */
    char task[64];             /* "" when absent */
    int found;                 /* 1 if read from a file or buffer, 0 for defaults */
} gb_sidecar;

/* MODEL.onnx -> MODEL.json ("x.onnx" or "x.ONNX" replaced, otherwise ".json"
 * appended). GB_ERR_ARG if it does not fit in cap bytes. */
gb_status gb_sidecar_path(gb_ctx *ctx, const char *model_path, char *buf, size_t cap);
/* Parse sidecar JSON text. `name` names it in messages (NULL: "buffer").
 * With a model, defaults come from its input (the one input.name names, or
 * the first) and the result is checked against it; with m NULL, from
 * gb_preproc_default. */
gb_status gb_sidecar_parse(gb_ctx *ctx, const char *json, size_t len, const char *name,
                           const gb_model *m, gb_sidecar **out);
gb_status gb_sidecar_load(gb_ctx *ctx, const char *path, const gb_model *m, gb_sidecar **out);
/* The sidecar beside model_path if that file exists, else the model's
 * defaults (found = 0). Only a missing file means "no sidecar": an
 * unreadable one is GB_ERR_IO. */
gb_status gb_sidecar_for_model(gb_ctx *ctx, const gb_model *m, const char *model_path,
                               gb_sidecar **out);
void gb_sidecar_free(gb_sidecar *s);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_IMAGE_H */
