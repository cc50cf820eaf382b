/*
 * preprocess.c — an 8-bit image to a model's float32 input tensor and back.
 *
 * The exact definition is in include/glassbox/image.h (gb_preproc). In short,
 * per output element: color conversion on the 8-bit pixels (PIL's rules);
 * bilinear sampling as torch.nn.functional.interpolate(mode='bilinear',
 * align_corners=False, antialias=False) on the uint8 values as floats;
 * torchvision's Resize(S) + CenterCrop rounding for "shorter"; then
 * (v / scale - mean) / std, in double, rounded once to float.
 *
 * Only the pixels inside the crop are computed. Sampling pixel r of the
 * resized (rh, rw) image needs nothing but r and the two sizes, so a crop of
 * an implicit resized image costs (H * W), whatever the source size.
 *
 * References: PyTorch aten/src/ATen/native/UpSample.h
 * (area_pixel_compute_scale, area_pixel_compute_source_index) and
 * cpu/UpSampleKernel.cpp (compute_indices_weights_linear); torchvision 0.14
 * transforms/functional.py (_compute_resized_output_size, center_crop).
 */
#include "io/io_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- names --------------------------------------------------------------------- */

static const char *const layout_names[GB_LAYOUT_COUNT] = {"NCHW", "NHWC"};
static const char *const color_names[GB_COLOR_COUNT] = {"gray", "rgb", "bgr"};
static const char *const resize_names[GB_RESIZE_COUNT] = {"stretch", "shorter"};

static int lookup(const char *s, const char *const *names, int n) {
    for (int i = 0; s && i < n; i++)
        if (!strcasecmp(s, names[i])) return i;
    return -1;
}
int gb__layout_parse(const char *s) { return lookup(s, layout_names, GB_LAYOUT_COUNT); }
int gb__color_parse(const char *s) { return lookup(s, color_names, GB_COLOR_COUNT); }
int gb__resize_parse(const char *s) { return lookup(s, resize_names, GB_RESIZE_COUNT); }

/* ---- settings ------------------------------------------------------------------ */

void gb_preproc_default(gb_preproc *pp) {
    memset(pp, 0, sizeof *pp);
    pp->layout = GB_LAYOUT_NCHW;
    pp->channels = 3;
    pp->color = GB_COLOR_RGB;
    pp->resize = GB_RESIZE_STRETCH;
    pp->scale = 255.0;
    for (int c = 0; c < GB_PREPROC_MAX_CHANNELS; c++) pp->mean[c] = 0.0, pp->std[c] = 1.0;
}

gb_status gb_preproc_check(gb_ctx *ctx, const gb_preproc *pp) {
    if (!pp) return gb__err(ctx, GB_ERR_ARG, "preproc: settings are NULL");
    if ((unsigned)pp->layout >= GB_LAYOUT_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "preproc: layout %d is not NCHW or NHWC", (int)pp->layout);
    if ((unsigned)pp->color >= GB_COLOR_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "preproc: color %d is not gray, rgb or bgr", (int)pp->color);
    if ((unsigned)pp->resize >= GB_RESIZE_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "preproc: resize %d is not stretch or shorter", (int)pp->resize);
    if (pp->channels != 1 && pp->channels != 3)
        return gb__err(ctx, GB_ERR_ARG, "preproc: channels is %d (1 or 3)", pp->channels);
    if ((pp->channels == 1) != (pp->color == GB_COLOR_GRAY))
        return gb__err(ctx, GB_ERR_ARG, "preproc: color %s does not give %d channel%s",
                       color_names[pp->color], pp->channels, pp->channels == 1 ? "" : "s");
    const char *dim = pp->height == 0 ? "height" : pp->width == 0 ? "width" : NULL;
    if (dim)
        return gb__err(ctx, GB_ERR_ARG,
                       "preproc: input %s is unknown (not fixed in the model): give it in the "
                       "sidecar JSON (input.%s) or override it",
                       dim, dim);
    if (pp->height < 1 || pp->height > GB_IMAGE_MAX_SIDE || pp->width < 1 ||
        pp->width > GB_IMAGE_MAX_SIDE)
        return gb__err(ctx, GB_ERR_ARG, "preproc: size %dx%d (height x width) outside 1..%d",
                       pp->height, pp->width, GB_IMAGE_MAX_SIDE);
    if (pp->resize_shorter < 0 || pp->resize_shorter > GB_IMAGE_MAX_SIDE)
        return gb__err(ctx, GB_ERR_ARG, "preproc: resize_shorter %d outside 0..%d",
                       pp->resize_shorter, GB_IMAGE_MAX_SIDE);
    if (!(isfinite(pp->scale) && pp->scale > 0))
        return gb__err(ctx, GB_ERR_ARG, "preproc: scale %g must be a finite number > 0", pp->scale);
    for (int c = 0; c < pp->channels; c++) {
        if (!isfinite(pp->mean[c]))
            return gb__err(ctx, GB_ERR_ARG, "preproc: mean[%d] is not finite", c);
        if (!(isfinite(pp->std[c]) && pp->std[c] > 0))
            return gb__err(ctx, GB_ERR_ARG, "preproc: std[%d] = %g must be a finite number > 0", c,
                           pp->std[c]);
    }
    if (memchr(pp->input_name, 0, sizeof pp->input_name) == NULL)
        return gb__err(ctx, GB_ERR_ARG, "preproc: input name is not NUL-terminated");
    return GB_OK;
}

/* Change the channel count; per-channel mean/std cannot carry over. */
static void set_channels(gb_preproc *pp, int channels) {
    if (channels == pp->channels) return;
    bool uniform = true;
    for (int c = 1; c < pp->channels && c < GB_PREPROC_MAX_CHANNELS; c++)
        uniform = uniform && pp->mean[c] == pp->mean[0] && pp->std[c] == pp->std[0];
    double m = uniform ? pp->mean[0] : 0.0, s = uniform ? pp->std[0] : 1.0;
    for (int c = 0; c < GB_PREPROC_MAX_CHANNELS; c++) pp->mean[c] = m, pp->std[c] = s;
    pp->channels = channels;
}

static bool parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* strtod: decimal points follow the C locale, which is what a program has
 * unless it calls setlocale (glassbox's CLI does not). */
static bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ') end++;
    if (end == s || *end || errno == ERANGE || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* "a,b,c" or "a" (one value for every channel). */
static gb_status set_list(gb_ctx *ctx, gb_preproc *pp, const char *key, const char *value,
                          double *dst, bool positive) {
    double v[GB_PREPROC_MAX_CHANNELS + 1];
    int n = 0;
    const char *p = value;
    for (;;) {
        char item[64];
        size_t k = strcspn(p, ",");
        if (k >= sizeof item || n > GB_PREPROC_MAX_CHANNELS)
            return gb__err(ctx, GB_ERR_ARG, "preproc: %s: '%s' is not a list of up to %d numbers",
                           key, value, GB_PREPROC_MAX_CHANNELS);
        memcpy(item, p, k);
        item[k] = 0;
        if (!parse_double(item, &v[n]))
            return gb__err(ctx, GB_ERR_ARG, "preproc: %s: '%s' is not a number", key, item);
        if (positive && v[n] <= 0)
            return gb__err(ctx, GB_ERR_ARG, "preproc: %s: %g must be > 0", key, v[n]);
        n++;
        if (!p[k]) break;
        p += k + 1;
    }
    if (n != 1 && n != pp->channels)
        return gb__err(ctx, GB_ERR_ARG, "preproc: %s has %d values, channels is %d (give %d or 1)",
                       key, n, pp->channels, pp->channels);
    for (int c = 0; c < GB_PREPROC_MAX_CHANNELS; c++) dst[c] = v[n == 1 ? 0 : c < n ? c : 0];
    return GB_OK;
}

gb_status gb_preproc_set(gb_ctx *ctx, gb_preproc *pp, const char *key, const char *value) {
    if (!pp || !key || !value)
        return gb__err(ctx, GB_ERR_ARG, "preproc: set: NULL %s", !pp ? "settings" : !key ? "key" : "value");
    int i;
    if (!strcmp(key, "name")) {
        if (strlen(value) >= sizeof pp->input_name)
            return gb__err(ctx, GB_ERR_ARG, "preproc: name is longer than %zu bytes",
                           sizeof pp->input_name - 1);
        strcpy(pp->input_name, value);
    } else if (!strcmp(key, "layout")) {
        if ((i = gb__layout_parse(value)) < 0)
            return gb__err(ctx, GB_ERR_ARG, "preproc: layout '%s' is not NCHW or NHWC", value);
        pp->layout = (gb_layout)i;
    } else if (!strcmp(key, "color")) {
        if ((i = gb__color_parse(value)) < 0)
            return gb__err(ctx, GB_ERR_ARG, "preproc: color '%s' is not gray, rgb or bgr", value);
        pp->color = (gb_color)i;
        set_channels(pp, i == GB_COLOR_GRAY ? 1 : 3);
    } else if (!strcmp(key, "channels")) {
        if (!parse_int(value, 1, 3, &i) || i == 2)
            return gb__err(ctx, GB_ERR_ARG, "preproc: channels '%s' is not 1 or 3", value);
        set_channels(pp, i);
        if (i == 1) pp->color = GB_COLOR_GRAY;
        else if (pp->color == GB_COLOR_GRAY) pp->color = GB_COLOR_RGB;
    } else if (!strcmp(key, "height") || !strcmp(key, "width")) {
        if (!parse_int(value, 1, GB_IMAGE_MAX_SIDE, &i))
            return gb__err(ctx, GB_ERR_ARG, "preproc: %s '%s' is not an integer in 1..%d", key,
                           value, GB_IMAGE_MAX_SIDE);
        *(key[0] == 'h' ? &pp->height : &pp->width) = i;
    } else if (!strcmp(key, "resize")) {
        if ((i = gb__resize_parse(value)) < 0)
            return gb__err(ctx, GB_ERR_ARG, "preproc: resize '%s' is not stretch or shorter", value);
        pp->resize = (gb_resize_mode)i;
    } else if (!strcmp(key, "resize_shorter")) {
        if (!parse_int(value, 0, GB_IMAGE_MAX_SIDE, &i))
            return gb__err(ctx, GB_ERR_ARG, "preproc: resize_shorter '%s' is not an integer in 0..%d",
                           value, GB_IMAGE_MAX_SIDE);
        pp->resize_shorter = i;
    } else if (!strcmp(key, "scale")) {
        double v;
        if (!parse_double(value, &v) || v <= 0)
            return gb__err(ctx, GB_ERR_ARG, "preproc: scale '%s' is not a number > 0", value);
        pp->scale = v;
    } else if (!strcmp(key, "mean")) {
        return set_list(ctx, pp, key, value, pp->mean, false);
    } else if (!strcmp(key, "std")) {
        return set_list(ctx, pp, key, value, pp->std, true);
    } else {
        return gb__err(ctx, GB_ERR_ARG,
                       "preproc: unknown setting '%s' (name, layout, channels, color, height, "
                       "width, resize, resize_shorter, scale, mean, std)",
                       key);
    }
    return GB_OK;
}

/* ---- settings from the model --------------------------------------------------------- */

/* dims of a declared input as C, H, W for a layout (-1: symbolic). */
static void input_chw(const gb_value_info *in, gb_layout layout, int64_t chw[3]) {
    bool nchw = layout == GB_LAYOUT_NCHW;
    chw[0] = in->dims[nchw ? 1 : 3];
    chw[1] = in->dims[nchw ? 2 : 1];
    chw[2] = in->dims[nchw ? 3 : 2];
}

static gb_status require_image_input(gb_ctx *ctx, const char *who, const gb_value_info *in) {
    if (in->dtype != GB_DTYPE_F32 || in->ndim != 4) {
        char shp[160];
        gb_shape_str(in->ndim, in->dims, shp, sizeof shp);
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "%s: model input '%s' is %s %s: an image input must be a 4-D float32 "
                       "tensor (N, C, H, W) or (N, H, W, C)",
                       who, in->name, shp, gb_dtype_name(in->dtype));
    }
    return GB_OK;
}

gb_status gb_preproc_from_input(gb_ctx *ctx, const gb_value_info *in, gb_preproc *pp) {
    if (!in || !pp) return gb__err(ctx, GB_ERR_ARG, "preproc: NULL %s", in ? "settings" : "input");
    gb_preproc_default(pp);
    gb_status st = require_image_input(ctx, "preproc", in);
    if (st) return st;
    const char *name = in->name ? in->name : "";
    if (strlen(name) >= sizeof pp->input_name)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "preproc: input name is longer than %zu bytes",
                       sizeof pp->input_name - 1);
    strcpy(pp->input_name, name);
    int64_t d1 = in->dims[1], d3 = in->dims[3];
    pp->layout = (d1 == 1 || d1 == 3) ? GB_LAYOUT_NCHW
                 : (d3 == 1 || d3 == 3) ? GB_LAYOUT_NHWC : GB_LAYOUT_NCHW;
    int64_t chw[3];
    input_chw(in, pp->layout, chw);
    if (chw[0] > 0 && chw[0] != 1 && chw[0] != 3) {
        char shp[160];
        gb_shape_str(in->ndim, in->dims, shp, sizeof shp);
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "preproc: model input '%s' (%s) has %lld channels: images convert to 1 "
                       "(gray) or 3 (rgb, bgr)",
                       name, shp, (long long)chw[0]);
    }
    pp->channels = chw[0] == 1 ? 1 : 3;
    pp->color = chw[0] == 1 ? GB_COLOR_GRAY : GB_COLOR_RGB;
    for (int k = 1; k < 3; k++) {
        if (chw[k] > GB_IMAGE_MAX_SIDE)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "preproc: model input '%s' has a side of %lld (at most %d)",
                           name, (long long)chw[k], GB_IMAGE_MAX_SIDE);
        *(k == 1 ? &pp->height : &pp->width) = chw[k] > 0 ? (int)chw[k] : 0;
    }
    return GB_OK;
}

gb_status gb__preproc_match(gb_ctx *ctx, const gb_preproc *pp, const gb_model *m,
                            const char *who, int *input_index) {
    if (!m) return gb__err(ctx, GB_ERR_ARG, "%s: model is NULL", who);
    int n = gb_model_num_inputs(m), idx = -1;
    gb_value_info in;
    for (int i = 0; i < n && idx < 0; i++)
        if (gb_model_input(m, i, &in) == GB_OK &&
            (!pp->input_name[0] || (in.name && !strcmp(in.name, pp->input_name))))
            idx = i;
    if (idx < 0) {
        char names[512] = "";
        size_t k = 0;
        for (int i = 0; i < n && k < sizeof names; i++)
            if (gb_model_input(m, i, &in) == GB_OK)
                k += (size_t)snprintf(names + k, sizeof names - k, "%s'%s'", i ? ", " : "", in.name);
        if (!pp->input_name[0]) return gb__err(ctx, GB_ERR_NOT_FOUND, "%s: the model has no inputs", who);
        return gb__err(ctx, GB_ERR_NOT_FOUND, "%s: the model has no input '%s' (inputs: %s)", who,
                       pp->input_name, names);
    }
    gb_status st = require_image_input(ctx, who, &in);
    if (st) return st;
    int64_t chw[3];
    input_chw(&in, pp->layout, chw);
    const int want[3] = {pp->channels, pp->height, pp->width};
    static const char *const key[3] = {"channels", "height", "width"};
    for (int k = 0; k < 3; k++)
        if (chw[k] > 0 && want[k] > 0 && chw[k] != want[k]) {
            char shp[160];
            gb_shape_str(in.ndim, in.dims, shp, sizeof shp);
            return gb__err(ctx, GB_ERR_SHAPE,
                           "%s: %s is %d but model input '%s' is %s (%s: %s = %lld)", who, key[k],
                           want[k], in.name, shp, layout_names[pp->layout], key[k], (long long)chw[k]);
        }
    if (input_index) *input_index = idx;
    return GB_OK;
}

gb_status gb_preproc_match_model(gb_ctx *ctx, const gb_preproc *pp, const gb_model *m,
                                 int *input_index) {
    if (!pp) return gb__err(ctx, GB_ERR_ARG, "preproc: settings are NULL");
    return gb__preproc_match(ctx, pp, m, "preproc", input_index);
}

/* ---- geometry ------------------------------------------------------------------------- */

/* Python's round(k / 2.0) for an integer k >= 0: half to even. */
static int half_round_even(int k) {
    int q = k / 2;
    return (k % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

/* The resized image size (rw, rh) and where the output window starts in it
 * (left, top; negative where CenterCrop pads). */
static void geometry(const gb_preproc *pp, int iw, int ih, int *rw, int *rh, int *left, int *top) {
    if (pp->resize == GB_RESIZE_STRETCH) {
        *rw = pp->width, *rh = pp->height, *left = 0, *top = 0;
        return;
    }
    /* torchvision _compute_resized_output_size with size=[S]: the shorter
     * side becomes S, the longer int(S * long / short). S * long is exact in
     * double, and so is one IEEE division, as Python's int / int. */
    int s = pp->resize_shorter ? pp->resize_shorter
                               : (pp->height > pp->width ? pp->height : pp->width);
    if (iw <= ih) *rw = s, *rh = (int)((double)((int64_t)s * ih) / (double)iw);
    else *rh = s, *rw = (int)((double)((int64_t)s * iw) / (double)ih);
    /* torchvision center_crop: pad (crop - size) // 2 before where the crop
     * is larger, else start at round((size - crop) / 2). */
    *left = pp->width > *rw ? -((pp->width - *rw) / 2) : half_round_even(*rw - pp->width);
    *top = pp->height > *rh ? -((pp->height - *rh) / 2) : half_round_even(*rh - pp->height);
}

gb_status gb_preproc_region(gb_ctx *ctx, const gb_preproc *pp, int width, int height,
                            double box[4]) {
    gb_status st = gb_preproc_check(ctx, pp);
    if (st) return st;
    if (width < 1 || height < 1 || width > GB_IMAGE_MAX_SIDE || height > GB_IMAGE_MAX_SIDE)
        return gb__err(ctx, GB_ERR_ARG, "preproc: region: image size %dx%d outside 1..%d", width,
                       height, GB_IMAGE_MAX_SIDE);
    int rw, rh, left, top;
    geometry(pp, width, height, &rw, &rh, &left, &top);
    double sx = (double)width / rw, sy = (double)height / rh;
    box[0] = left * sx;
    box[1] = top * sy;
    box[2] = (left + pp->width) * sx;
    box[3] = (top + pp->height) * sy;
    return GB_OK;
}

/* One output index's bilinear taps along one axis. */
typedef struct {
    int i0, i1;        /* source indices */
    double w0, w1;     /* their weights */
    bool pad;          /* outside the resized image: value 0 */
} tap;

/* Taps for n outputs starting at `first` in a resized axis of length
 * `resized`, sampling a source axis of length `in`:
 * torch's area_pixel_compute_source_index (align_corners=False) and
 * compute_indices_weights_linear. */
static void axis_taps(tap *t, int n, int first, int resized, int in) {
    double scale = (double)in / (double)resized;
    for (int o = 0; o < n; o++) {
        int r = first + o;
        if (r < 0 || r >= resized) {
            t[o] = (tap){0, 0, 0.0, 0.0, true};
            continue;
        }
        double src = scale * (r + 0.5) - 0.5;
        if (src < 0) src = 0;
        int i0 = (int)src;                 /* floor: src >= 0 */
        if (i0 > in - 1) i0 = in - 1;      /* src < in - 0.5 always; defensive */
        double l1 = src - i0;
        if (l1 > 1) l1 = 1;
        t[o] = (tap){i0, i0 + (i0 < in - 1 ? 1 : 0), 1.0 - l1, l1, false};
    }
}

/* Pixel (y, x) of img in the model's color space, as C values. */
static inline void fetch(const gb_image *img, int y, int x, gb_color color, double v[3]) {
    const uint8_t *p = img->data + (size_t)y * img->stride + (size_t)x * (size_t)img->channels;
    bool rgb = img->channels >= 3;         /* 2 and 4: the last channel is alpha, dropped */
    uint8_t r = p[0], g = rgb ? p[1] : p[0], b = rgb ? p[2] : p[0];
    switch (color) {
    case GB_COLOR_GRAY: v[0] = rgb ? gb__luma(r, g, b) : r; break;
    case GB_COLOR_RGB: v[0] = r, v[1] = g, v[2] = b; break;
    default: v[0] = b, v[1] = g, v[2] = r; break;
    }
}

static gb_status check_tensor(gb_ctx *ctx, const char *who, const gb_preproc *pp,
                              const gb_tensor *t, int64_t index) {
    if (!t) return gb__err(ctx, GB_ERR_ARG, "%s: tensor is NULL", who);
    bool nchw = pp->layout == GB_LAYOUT_NCHW;
    int64_t want[4] = {t->ndim == 4 ? t->dims[0] : 1, nchw ? pp->channels : pp->height,
                       nchw ? pp->height : pp->width, nchw ? pp->width : pp->channels};
    if (t->dtype != GB_DTYPE_F32 || t->ndim != 4 || memcmp(t->dims, want, sizeof want) != 0 ||
        !t->data) {
        char have[160];
        gb_shape_str(t->ndim, t->dims, have, sizeof have);
        return gb__err(ctx, GB_ERR_SHAPE,
                       "%s: tensor is %s %s, the settings give float32 Nx%lldx%lldx%lld (%s)", who,
                       have, gb_dtype_name(t->dtype), (long long)want[1], (long long)want[2],
                       (long long)want[3], layout_names[pp->layout]);
    }
    if (index < 0 || index >= t->dims[0])
        return gb__err(ctx, GB_ERR_ARG, "%s: batch index %lld outside 0..%lld", who,
                       (long long)index, (long long)t->dims[0] - 1);
    return GB_OK;
}

gb_status gb_preproc_image_into(gb_ctx *ctx, const gb_preproc *pp, const gb_image *img,
                                gb_tensor *t, int64_t index) {
    gb_status st = gb_preproc_check(ctx, pp);
    if (!st) st = gb__image_check(ctx, "preproc", img);
    if (!st) st = check_tensor(ctx, "preproc", pp, t, index);
    if (st) return st;

    const int C = pp->channels, H = pp->height, W = pp->width;
    int rw, rh, left, top;
    geometry(pp, img->width, img->height, &rw, &rh, &left, &top);
    tap *ty = malloc(sizeof *ty * (size_t)H), *tx = malloc(sizeof *tx * (size_t)W);
    if (!ty || !tx) {
        free(ty);
        free(tx);
        return gb__err(ctx, GB_ERR_NOMEM, "preproc: out of memory");
    }
    axis_taps(ty, H, top, rh, img->height);
    axis_taps(tx, W, left, rw, img->width);

    float *out = (float *)t->data + (size_t)index * (size_t)C * H * W;   /* item index */
    const bool nchw = pp->layout == GB_LAYOUT_NCHW;
    for (int y = 0; y < H; y++) {
        const tap a = ty[y];
        for (int x = 0; x < W; x++) {
            const tap b = tx[x];
            double v[3] = {0, 0, 0};
            if (!a.pad && !b.pad) {
                /* h0 * (w0 * p00 + w1 * p01) + h1 * (w0 * p10 + w1 * p11), as torch nests it */
                double p00[3], p01[3], p10[3], p11[3];
                fetch(img, a.i0, b.i0, pp->color, p00);
                fetch(img, a.i0, b.i1, pp->color, p01);
                fetch(img, a.i1, b.i0, pp->color, p10);
                fetch(img, a.i1, b.i1, pp->color, p11);
                for (int c = 0; c < C; c++)
                    v[c] = a.w0 * (b.w0 * p00[c] + b.w1 * p01[c]) +
                           a.w1 * (b.w0 * p10[c] + b.w1 * p11[c]);
            }
            for (int c = 0; c < C; c++) {
                double xn = (v[c] / pp->scale - pp->mean[c]) / pp->std[c];
                size_t k = nchw ? ((size_t)c * H + y) * W + x : ((size_t)y * W + x) * C + c;
                out[k] = (float)xn;
            }
        }
    }
    free(ty);
    free(tx);
    return GB_OK;
}

static gb_status make_tensor(gb_ctx *ctx, const gb_preproc *pp, int64_t n, gb_tensor **out) {
    int64_t dims[4] = {n, pp->channels, pp->height, pp->width};
    if (pp->layout == GB_LAYOUT_NHWC) dims[1] = pp->height, dims[2] = pp->width, dims[3] = pp->channels;
    return gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, out);
}

gb_status gb_preproc_batch(gb_ctx *ctx, const gb_preproc *pp, const gb_image *const *imgs, int n,
                           gb_tensor **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "preproc: out is NULL");
    *out = NULL;
    if (n < 1 || !imgs) return gb__err(ctx, GB_ERR_ARG, "preproc: batch of %d images", n);
    gb_status st = gb_preproc_check(ctx, pp);
    if (st) return st;
    gb_tensor *t;
    if ((st = make_tensor(ctx, pp, n, &t))) return st;
    for (int i = 0; i < n && !st; i++) {
        st = gb_preproc_image_into(ctx, pp, imgs[i], t, i);
        if (st && n > 1) {
            /* say which image, keeping the message one line */
            char msg[sizeof ctx->errmsg];
            snprintf(msg, sizeof msg, "%s", gb_ctx_errmsg(ctx));
            gb__err(ctx, st, "%s (batch image %d)", msg, i);
        }
    }
    if (st) {
        gb_tensor_free(t);
        return st;
    }
    *out = t;
    return GB_OK;
}

gb_status gb_preproc_image(gb_ctx *ctx, const gb_preproc *pp, const gb_image *img, gb_tensor **out) {
    return gb_preproc_batch(ctx, pp, &img, 1, out);
}

/* ---- the inverse ---------------------------------------------------------------------- */

gb_status gb_preproc_inverse(gb_ctx *ctx, const gb_preproc *pp, const gb_tensor *t, int64_t index,
                             gb_image **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "preproc: inverse: out is NULL");
    *out = NULL;
    gb_status st = gb_preproc_check(ctx, pp);
    if (!st) st = check_tensor(ctx, "preproc: inverse", pp, t, index);
    if (st) return st;
    const int C = pp->channels, H = pp->height, W = pp->width;
    gb_image *img;
    if ((st = gb_image_create(ctx, W, H, C, &img))) return st;
    const float *in = (const float *)t->data + (size_t)index * (size_t)C * H * W;
    const bool nchw = pp->layout == GB_LAYOUT_NCHW;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                size_t k = nchw ? ((size_t)c * H + y) * W + x : ((size_t)y * W + x) * C + c;
                double v = ((double)in[k] * pp->std[c] + pp->mean[c]) * pp->scale;
                v = v >= 0 ? (v <= 255 ? floor(v + 0.5) : 255) : 0;   /* NaN fails v >= 0 */
                int oc = pp->color == GB_COLOR_BGR ? 2 - c : c;    /* back to RGB order */
                img->data[(size_t)y * img->stride + (size_t)x * C + oc] = (uint8_t)v;
            }
    *out = img;
    return GB_OK;
}
