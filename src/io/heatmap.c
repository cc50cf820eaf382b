/*
 * heatmap.c — attribution maps as pictures: colour, overlay, panel.
 *
 * The contract (shapes, channel reduction, limits, colormaps, geometry,
 * errors) is in include/glassbox/heatmap.h. The pipeline, in order:
 *
 *   1. reduce_map: the (C, H, W) tensor -> one float per pixel (H, W), non-
 *      finite inputs as 0; magnitude maps keep |value|.
 *   2. limits: L = the p-th percentile of |value| (numpy's 'linear'
 *      definition) by Wirth/Hoare selection on a copy — O(n) expected, no
 *      sort — or opts.vmax.
 *   3. paint: resample the values bilinearly to the image (if the sizes
 *      differ), look each one up in the colormap table (src/io/colormap.c,
 *      generated from matplotlib's data), blend over the image for overlays.
 *   4. magnify by an integer factor with nearest-neighbour and, for the
 *      panel, lay out tiles, captions, a colour bar and text. Text comes from
 *      stb_easy_font, which emits axis-aligned quads on an integer grid; each
 *      quad is filled as a ts x ts-scaled rectangle, so text stays crisp.
 *
 * Values are resampled before colouring (not colours after), so an upsampled
 * Grad-CAM map passes through the colormap's real colours instead of mixing
 * two far-apart colours into one that is not on the map.
 */
#include "io/io_internal.h"
#include "glassbox/heatmap.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* stb_easy_font is all static functions, some of which we never call. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

/* ---- options ------------------------------------------------------------------ */

void gb_heatmap_opts_default(gb_heatmap_opts *o) {
    if (o) *o = (gb_heatmap_opts)GB_HEATMAP_OPTS_INIT;
}

/* opts (or the defaults) with AUTO choices resolved, after validation. */
static gb_status resolve_opts(gb_ctx *ctx, const char *who, const gb_heatmap_opts *in,
                              gb_heatmap_opts *o) {
    if (in) *o = *in;
    else gb_heatmap_opts_default(o);
    if ((int)o->mode < 0 || o->mode >= GB_HEATMAP_MODE_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.mode %d is not a gb_heatmap_mode", who,
                       (int)o->mode);
    if ((int)o->reduce < 0 || o->reduce >= GB_REDUCE_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.reduce %d is not a gb_heatmap_reduce", who,
                       (int)o->reduce);
    if ((int)o->colormap < 0 || o->colormap >= GB_CMAP_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.colormap %d is not a gb_colormap", who,
                       (int)o->colormap);
    if (!(o->percentile > 0.0 && o->percentile <= 100.0))   /* also refuses NaN */
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.percentile %g outside (0, 100]", who,
                       o->percentile);
    if (!(o->vmax >= 0.0 && o->vmax <= DBL_MAX))
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.vmax %g is not a finite value >= 0", who,
                       o->vmax);
    if (!(o->opacity >= 0.0 && o->opacity <= 1.0))
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.opacity %g outside [0, 1]", who, o->opacity);
    if ((int)o->base < 0 || o->base >= GB_BASE_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.base %d is not a gb_heatmap_base", who,
                       (int)o->base);
    if (o->scale < 0 || o->scale > GB_HEATMAP_MAX_SCALE)
        return gb__err(ctx, GB_ERR_ARG, "%s: opts.scale %d outside 0..%d (0 = auto)", who,
                       o->scale, GB_HEATMAP_MAX_SCALE);
    int sgn = o->mode == GB_HEATMAP_SIGNED;
    if (o->reduce == GB_REDUCE_AUTO) o->reduce = sgn ? GB_REDUCE_SUM : GB_REDUCE_MAX_ABS;
    if (o->colormap == GB_CMAP_AUTO) o->colormap = sgn ? GB_CMAP_RDBU : GB_CMAP_VIRIDIS;
    if (o->base == GB_BASE_AUTO) o->base = sgn ? GB_BASE_LIGHT : GB_BASE_DARK;
    return GB_OK;
}

/* The magnification: opts.scale, or the smallest factor bringing the longer
 * side to GB_HEATMAP_MIN_SIDE; GB_ERR_ARG if the result is too large. */
static gb_status pick_scale(gb_ctx *ctx, const char *who, int scale, int w, int h, int *s) {
    int longer = w > h ? w : h;
    if (scale == 0) {
        scale = (GB_HEATMAP_MIN_SIDE + longer - 1) / longer;
        if (scale < 1) scale = 1;
        if (scale > GB_HEATMAP_MAX_SCALE) scale = GB_HEATMAP_MAX_SCALE;
    }
    if ((int64_t)longer * scale > GB_IMAGE_MAX_SIDE)
        return gb__err(ctx, GB_ERR_ARG, "%s: %dx%d magnified %d times exceeds %d pixels", who, w,
                       h, scale, GB_IMAGE_MAX_SIDE);
    *s = scale;
    return GB_OK;
}

/* ---- 1. the map as one value per pixel -------------------------------------------- */

typedef struct {
    int h, w;
    float *v;                  /* (H, W): reduced values; |.| for magnitude maps */
    gb_heatmap_opts o;         /* resolved options */
    gb_heatmap_stats st;
    double lim;                /* L (0 only for an all-zero map) */
    const uint8_t *lut;        /* n_lut entries of RGB */
    int n_lut;
    int diverging;             /* the table has a white centre entry (n_lut odd) */
} field;

static void field_free(field *f) {
    free(f->v);
    f->v = NULL;
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* The k-th smallest of a[0..n-1] (k < n), partially reordering a: Wirth's
 * selection ("Algorithms + Data Structures = Programs", 1976, sec. 2.3.4)
 * with a median-of-three pivot. Afterwards a[k] holds it and every a[i > k]
 * is >= it. Values must not be NaN. */
static float select_kth(float *a, int64_t n, int64_t k) {
    int64_t l = 0, r = n - 1;
    while (l < r) {
        float x0 = a[l], x1 = a[l + (r - l) / 2], x2 = a[r];
        float x = x0 < x1 ? (x1 < x2 ? x1 : (x0 < x2 ? x2 : x0))
                           : (x0 < x2 ? x0 : (x1 < x2 ? x2 : x1));
        int64_t i = l, j = r;
        do {
            while (a[i] < x) i++;
            while (x < a[j]) j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j], a[j] = t;
                i++, j--;
            }
        } while (i <= j);
        if (j < k) l = i;
        if (k < i) r = j;
    }
    return a[k];
}

/* numpy.percentile(a, p) with the default method 'linear': rank
 * pos = p/100 * (n-1), value a_(floor) + frac * (a_(floor+1) - a_(floor)) of
 * the sorted values. Reorders a. */
static double percentile(float *a, int64_t n, double p) {
    double pos = p / 100.0 * (double)(n - 1);
    int64_t k = (int64_t)floor(pos);
    if (k > n - 1) k = n - 1;
    double frac = pos - (double)k;
    double lo = select_kth(a, n, k);
    if (frac <= 0.0 || k + 1 >= n) return lo;
    float hi = a[k + 1];             /* the next rank: the smallest of a[k+1..] */
    for (int64_t i = k + 2; i < n; i++)
        if (a[i] < hi) hi = a[i];
    /* numpy's _lerp: a + (b-a)*t, or b - (b-a)*(1-t) for t >= 0.5 */
    double d = (double)hi - lo;
    return frac >= 0.5 ? (double)hi - d * (1.0 - frac) : lo + d * frac;
}

static gb_status check_map(gb_ctx *ctx, const char *who, const gb_tensor *map, int *c, int *h,
                           int *w) {
    if (!map) return gb__err(ctx, GB_ERR_ARG, "%s: map is NULL", who);
    char shape[128];
    gb_shape_str(map->ndim, map->dims, shape, sizeof shape);
    if (map->dtype != GB_DTYPE_F32 && map->dtype != GB_DTYPE_F64)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s: map has dtype %s; expected float32 or float64",
                       who, gb_dtype_name(map->dtype));
    if (map->ndim < 2 || map->ndim > 4)
        return gb__err(ctx, GB_ERR_SHAPE,
                       "%s: map of shape (%s) has rank %d; expected (H, W), (C, H, W) or "
                       "(1, C, H, W)", who, shape, map->ndim);
    if (map->ndim == 4 && map->dims[0] != 1)
        return gb__err(ctx, GB_ERR_SHAPE,
                       "%s: map of shape (%s) is a batch of %lld maps; pass one, as (C, H, W) "
                       "or (1, C, H, W)", who, shape, (long long)map->dims[0]);
    for (int i = 0; i < map->ndim; i++)
        if (map->dims[i] <= 0)
            return gb__err(ctx, GB_ERR_SHAPE, "%s: map of shape (%s) is empty", who, shape);
    int64_t hh = map->dims[map->ndim - 2], ww = map->dims[map->ndim - 1];
    int64_t cc = map->ndim >= 3 ? map->dims[map->ndim - 3] : 1;
    if (hh > GB_IMAGE_MAX_SIDE || ww > GB_IMAGE_MAX_SIDE || cc > INT32_MAX / 2)
        return gb__err(ctx, GB_ERR_ARG, "%s: map of shape (%s) is larger than %d pixels a side",
                       who, shape, GB_IMAGE_MAX_SIDE);
    if (!map->data) return gb__err(ctx, GB_ERR_ARG, "%s: map of shape (%s) has no data", who, shape);
    *c = (int)cc, *h = (int)hh, *w = (int)ww;
    return GB_OK;
}

/* Steps 1 and 2: check, reduce and measure the map into *f. */
static gb_status reduce_map(gb_ctx *ctx, const char *who, const gb_tensor *map,
                            const gb_heatmap_opts *opts, field *f) {
    memset(f, 0, sizeof *f);
    gb_status st = resolve_opts(ctx, who, opts, &f->o);
    if (st) return st;
    int c = 0, h = 0, w = 0;
    st = check_map(ctx, who, map, &c, &h, &w);
    if (st) return st;
    int64_t n = (int64_t)h * w;
    f->v = malloc((size_t)n * sizeof(float));
    float *tmp = f->o.vmax > 0 ? NULL : malloc((size_t)n * sizeof(float));
    if (!f->v || (f->o.vmax <= 0 && !tmp)) {
        free(tmp);
        field_free(f);
        return gb__err(ctx, GB_ERR_NOMEM, "%s: out of memory for a %dx%d map", who, h, w);
    }
    f->h = h, f->w = w;
    int sgn = f->o.mode == GB_HEATMAP_SIGNED;
    const float *d32 = map->dtype == GB_DTYPE_F32 ? map->data : NULL;
    const double *d64 = map->dtype == GB_DTYPE_F64 ? map->data : NULL;
    int64_t nonfinite = 0;
    double max_abs = 0.0;
    for (int64_t p = 0; p < n; p++) {
        double acc = 0.0;   /* SUM: sum; MAX_ABS: the value of largest |.|; L2: sum of squares */
        for (int ch = 0; ch < c; ch++) {
            int64_t i = (int64_t)ch * n + p;    /* (C, H, W) */
            double x = d32 ? (double)d32[i] : d64[i];
            if (!isfinite(x)) x = 0.0, nonfinite++;
            switch (f->o.reduce) {
            case GB_REDUCE_MAX_ABS: if (fabs(x) > fabs(acc)) acc = x; break;
            case GB_REDUCE_L2: acc += x * x; break;
            default: acc += x; break;           /* SUM */
            }
        }
        if (f->o.reduce == GB_REDUCE_L2) acc = sqrt(acc);
        if (!sgn) acc = fabs(acc);
        acc = clampd(acc, -FLT_MAX, FLT_MAX);   /* a sum of huge floats stays finite */
        f->v[p] = (float)acc;
        if (fabs(acc) > max_abs) max_abs = fabs(acc);
        if (tmp) tmp[p] = (float)fabs(acc);
    }
    f->lim = tmp ? percentile(tmp, n, f->o.percentile) : f->o.vmax;
    free(tmp);
    if (f->lim <= 0.0) f->lim = max_abs;     /* p-th percentile 0 in a sparse map */

    f->lut = gb_colormap_lut(f->o.colormap, &f->n_lut);
    f->diverging = f->n_lut % 2 == 1;
    f->st = (gb_heatmap_stats){
        .height = h, .width = w, .channels = c, .mode = f->o.mode, .reduce = f->o.reduce,
        .colormap = f->o.colormap, .lo = sgn ? -f->lim : 0.0, .hi = f->lim, .max_abs = max_abs,
        .n_nonfinite = nonfinite};
    return GB_OK;
}

gb_status gb_heatmap_limits(gb_ctx *ctx, const gb_tensor *map, const gb_heatmap_opts *opts,
                            gb_heatmap_stats *out) {
    const char *who = "heatmap limits";
    if (!out) return gb__err(ctx, GB_ERR_ARG, "%s: out is NULL", who);
    memset(out, 0, sizeof *out);
    field f;
    gb_status st = reduce_map(ctx, who, map, opts, &f);
    if (st) return st;
    *out = f.st;
    field_free(&f);
    return GB_OK;
}

/* ---- 3. colours ------------------------------------------------------------------ */

/* The table entry for value v. Diverging tables (2c+1 entries): entry
 * c + round(c * v / L), so 0 is the white centre and -v mirrors v. Sequential
 * tables (n entries): round((n-1) * v / L) for magnitudes, and the whole
 * table over [-L, L] for signed values. */
static const uint8_t *colour_of(const field *f, double v) {
    double t = f->lim > 0.0 ? clampd(v / f->lim, -1.0, 1.0) : 0.0;
    long idx;
    if (f->diverging) {
        long c = (f->n_lut - 1) / 2;
        idx = c + lround(t * (double)c);
    } else {
        if (f->o.mode == GB_HEATMAP_SIGNED) t = (t + 1.0) / 2.0;
        idx = lround(clampd(t, 0.0, 1.0) * (double)(f->n_lut - 1));
    }
    return f->lut + 3 * idx;
}

/* The values resampled to (H, W): bilinear, align_corners = False, the same
 * arithmetic as torch.nn.functional.interpolate(mode='bilinear'):
 *   s = max(0, (dst + 0.5) * in / out - 0.5); i0 = floor(s);
 *   i1 = min(i0 + 1, in - 1); weights 1 - (s - i0) and s - i0.
 * A copy when the sizes agree. */
static float *resample(const field *f, int H, int W) {
    float *out = malloc((size_t)H * (size_t)W * sizeof(float));
    if (!out) return NULL;
    if (H == f->h && W == f->w) {
        memcpy(out, f->v, (size_t)H * (size_t)W * sizeof(float));
        return out;
    }
    double sy = (double)f->h / H, sx = (double)f->w / W;
    for (int y = 0; y < H; y++) {
        double fy = (y + 0.5) * sy - 0.5;
        if (fy < 0) fy = 0;
        int y0 = (int)fy, y1 = y0 + 1 < f->h ? y0 + 1 : f->h - 1;
        double wy = fy - y0;
        for (int x = 0; x < W; x++) {
            double fx = (x + 0.5) * sx - 0.5;
            if (fx < 0) fx = 0;
            int x0 = (int)fx, x1 = x0 + 1 < f->w ? x0 + 1 : f->w - 1;
            double wx = fx - x0;
            const float *r0 = f->v + (size_t)y0 * f->w, *r1 = f->v + (size_t)y1 * f->w;
            double top = (1 - wx) * r0[x0] + wx * r0[x1];
            double bot = (1 - wx) * r1[x0] + wx * r1[x1];
            out[(size_t)y * W + x] = (float)((1 - wy) * top + wy * bot);
        }
    }
    return out;
}

/* RGB of pixel (y, x) of any 1..4-channel image (gray replicated, alpha
 * ignored). */
static void pixel_rgb(const gb_image *img, int y, int x, uint8_t rgb[3]) {
    const uint8_t *p = img->data + (size_t)y * img->stride + (size_t)x * img->channels;
    if (img->channels >= 3) rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
    else rgb[0] = rgb[1] = rgb[2] = p[0];
}

/* The base pixel as an overlay shows it (gb_heatmap_base). */
static void base_pixel(gb_heatmap_base how, uint8_t b[3]) {
    if (how == GB_BASE_COLOR) return;
    int g = gb__luma(b[0], b[1], b[2]);
    if (how == GB_BASE_LIGHT) g = (g + 255) / 2;      /* halfway to white */
    if (how == GB_BASE_DARK) g = (g * 3 + 2) / 5;     /* round(0.6 g) */
    b[0] = b[1] = b[2] = (uint8_t)g;
}

/* Step 3: the colour map at the base image's size (or the map's, base NULL),
 * blended over base when `blend`. A packed RGB image, not yet magnified. */
static gb_status paint(gb_ctx *ctx, const char *who, const field *f, const gb_image *base,
                       int blend, gb_image **out) {
    int W = base ? base->width : f->w, H = base ? base->height : f->h;
    gb_status st = gb_image_create(ctx, W, H, 3, out);
    if (st) return st;
    float *v = resample(f, H, W);
    if (!v) {
        gb_image_free(*out);
        *out = NULL;
        return gb__err(ctx, GB_ERR_NOMEM, "%s: out of memory resampling to %dx%d", who, W, H);
    }
    for (int y = 0; y < H; y++) {
        uint8_t *o = (*out)->data + (size_t)y * (*out)->stride;
        for (int x = 0; x < W; x++, o += 3) {
            double val = v[(size_t)y * W + x];
            const uint8_t *c = colour_of(f, val);
            if (!blend) {
                o[0] = c[0], o[1] = c[1], o[2] = c[2];
                continue;
            }
            double a = f->o.opacity;
            if (f->o.alpha_by_magnitude)
                a *= f->lim > 0.0 ? clampd(fabs(val) / f->lim, 0.0, 1.0) : 0.0;
            uint8_t b[3];
            pixel_rgb(base, y, x, b);
            base_pixel(f->o.base, b);
            for (int k = 0; k < 3; k++)
                o[k] = (uint8_t)lround((1.0 - a) * b[k] + a * c[k]);
        }
    }
    free(v);
    return GB_OK;
}

/* Copy src (1..4 channels) into RGB dst at (x0, y0), each pixel an s x s
 * block; parts outside dst are clipped. */
static void blit(gb_image *dst, int x0, int y0, const gb_image *src, int s) {
    for (int y = 0; y < src->height * s; y++) {
        int dy = y0 + y;
        if (dy < 0 || dy >= dst->height) continue;
        uint8_t *o = dst->data + (size_t)dy * dst->stride;
        for (int x = 0; x < src->width * s; x++) {
            int dx = x0 + x;
            if (dx < 0 || dx >= dst->width) continue;
            pixel_rgb(src, y / s, x / s, o + 3 * (size_t)dx);
        }
    }
}

/* Step 4 for render and overlay: src magnified s times into a new image. */
static gb_status magnify(gb_ctx *ctx, const gb_image *src, int s, gb_image **out) {
    gb_status st = gb_image_create(ctx, src->width * s, src->height * s, 3, out);
    if (st) return st;
    blit(*out, 0, 0, src, s);
    return GB_OK;
}

gb_status gb_heatmap_render(gb_ctx *ctx, const gb_tensor *map, const gb_heatmap_opts *opts,
                            gb_image **out) {
    const char *who = "heatmap render";
    if (!out) return gb__err(ctx, GB_ERR_ARG, "%s: out is NULL", who);
    *out = NULL;
    field f;
    gb_status st = reduce_map(ctx, who, map, opts, &f);
    if (st) return st;
    int s = 1;
    gb_image *small = NULL;
    st = pick_scale(ctx, who, f.o.scale, f.w, f.h, &s);
    if (!st) st = paint(ctx, who, &f, NULL, 0, &small);
    if (!st) st = magnify(ctx, small, s, out);
    gb_image_free(small);
    field_free(&f);
    return st;
}

gb_status gb_heatmap_overlay(gb_ctx *ctx, const gb_image *base, const gb_tensor *map,
                             const gb_heatmap_opts *opts, gb_image **out) {
    const char *who = "heatmap overlay";
    if (!out) return gb__err(ctx, GB_ERR_ARG, "%s: out is NULL", who);
    *out = NULL;
    gb_status st = gb__image_check(ctx, "heatmap overlay: base", base);
    if (st) return st;
    field f;
    st = reduce_map(ctx, who, map, opts, &f);
    if (st) return st;
    int s = 1;
    gb_image *small = NULL;
    st = pick_scale(ctx, who, f.o.scale, base->width, base->height, &s);
    if (!st) st = paint(ctx, who, &f, base, 1, &small);
    if (!st) st = magnify(ctx, small, s, out);
    gb_image_free(small);
    field_free(&f);
    return st;
}

/* ---- text ------------------------------------------------------------------------- */

/* stb_easy_font draws ASCII 32..126 only (it indexes its tables with c - 32,
 * and reads one entry past c for the segment count). Decode UTF-8 and map a
 * few typographic characters to ASCII look-alikes, anything else to '?'.
 * '\n' is kept; other control characters become ' '. out needs
 * strlen(s) + 1 bytes (no replacement is longer than its UTF-8 form). */
static void ascii_text(const char *s, char *out) {
    const unsigned char *p = (const unsigned char *)s;
    char *o = out;
    while (*p) {
        unsigned c = *p;
        if (c < 0x80) {
            *o++ = c == '\n' ? '\n' : (c < 32 || c == 127) ? ' ' : (char)c;
            p++;
            continue;
        }
        int len = c >= 0xF8 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        unsigned cp = len == 4 ? c & 7 : len == 3 ? c & 15 : c & 31;
        int ok = len > 1;
        for (int i = 1; i < len && ok; i++) {
            if ((p[i] & 0xC0) != 0x80) ok = 0;
            else cp = cp << 6 | (p[i] & 0x3F);
        }
        if (!ok) {      /* a stray or truncated byte */
            *o++ = '?';
            p++;
            continue;
        }
        p += len;
        const char *r = "?";
        if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212) r = "-";
        else if (cp == 0x2018 || cp == 0x2019 || cp == 0x201A || cp == 0x2032) r = "'";
        else if (cp == 0x201C || cp == 0x201D || cp == 0x201E || cp == 0x2033) r = "\"";
        else if (cp == 0x00A0 || cp == 0x2009 || cp == 0x202F) r = " ";
        else if (cp == 0x00D7) r = "x";
        else if (cp == 0x00B1) r = "+-";
        else if (cp == 0x2026) r = "...";
        else if (cp == 0x00B5 || cp == 0x03BC) r = "u";
        while (*r) *o++ = *r++;
    }
    *o = '\0';
}

/* Width (font units) of the widest line, and the number of lines. */
static int text_width(const char *s, int *lines) {
    int w = 0, line = 0, n = 1;
    for (; *s; s++) {
        if (*s == '\n') {
            n++, line = 0;
            continue;
        }
        line += stb_easy_font_charinfo[*s - 32].advance & 15;
        if (line > w) w = line;
    }
    if (lines) *lines = n;
    return w;
}

#define FONT_LINE 12    /* stb_easy_font's line pitch; glyphs span rows 0..9 */
#define FONT_BOX 10

/* Draw ASCII text (from ascii_text) with its top-left at (x, y), each font
 * unit ts x ts pixels, clipped to the image. */
static void draw_text(gb_image *img, int x, int y, const char *s, int ts, const uint8_t rgb[3]) {
    float vb[64 * 16];    /* 4 floats per vertex (x, y, z, colour); <= 11 quads a glyph */
    int cx = 0, cy = 0;
    for (; *s; s++) {
        if (*s == '\n') {
            cx = 0, cy += FONT_LINE;
            continue;
        }
        char one[2] = {*s, 0};
        int nq = stb_easy_font_print((float)cx, (float)cy, one, NULL, vb, (int)sizeof vb);
        for (int q = 0; q < nq; q++) {
            const float *v0 = vb + 16 * q, *v2 = vb + 16 * q + 8;  /* opposite corners */
            int qx0 = x + (int)lroundf(v0[0]) * ts, qy0 = y + (int)lroundf(v0[1]) * ts;
            int qx1 = x + (int)lroundf(v2[0]) * ts, qy1 = y + (int)lroundf(v2[1]) * ts;
            for (int py = qy0 < 0 ? 0 : qy0; py < qy1 && py < img->height; py++) {
                uint8_t *o = img->data + (size_t)py * img->stride;
                for (int px = qx0 < 0 ? 0 : qx0; px < qx1 && px < img->width; px++)
                    memcpy(o + 3 * (size_t)px, rgb, 3);
            }
        }
        cx += stb_easy_font_charinfo[*s - 32].advance & 15;
    }
}

/* ---- the panel ---------------------------------------------------------------------- */

static const uint8_t C_BG[3] = {255, 255, 255};
static const uint8_t C_TITLE[3] = {20, 20, 20};
static const uint8_t C_TEXT[3] = {70, 70, 70};
static const uint8_t C_FRAME[3] = {150, 150, 150};

static void fill(gb_image *img, int x0, int y0, int w, int h, const uint8_t rgb[3]) {
    for (int y = y0 < 0 ? 0 : y0; y < y0 + h && y < img->height; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x0 + w && x < img->width; x++)
            memcpy(img->data + (size_t)y * img->stride + 3 * (size_t)x, rgb, 3);
}

/* A number for a tick label: 3 significant digits, "0" for zero. */
static void fmt_value(char *buf, size_t cap, double v, int plus) {
    if (v == 0.0) snprintf(buf, cap, "0");
    else snprintf(buf, cap, plus ? "%+.3g" : "%.3g", v);
}

/* The legend's last line: how the map was reduced and clipped. */
static void legend_note(const field *f, char *buf, size_t cap) {
    static const char *const red[GB_REDUCE_COUNT] = {
        [GB_REDUCE_SUM] = "sum", [GB_REDUCE_MAX_ABS] = "max abs", [GB_REDUCE_L2] = "L2 norm"};
    int sgn = f->o.mode == GB_HEATMAP_SIGNED;
    size_t n = 0;
#define PUT(...) do { int k_ = snprintf(buf + n, cap - n, __VA_ARGS__); \
                      if (k_ > 0) n = n + (size_t)k_ < cap ? n + (size_t)k_ : cap - 1; } while (0)
    PUT("%s", sgn ? "signed" : "magnitude");
    if (f->st.channels > 1) PUT(", %s over %d channels", red[f->o.reduce], f->st.channels);
    if (f->o.vmax > 0) PUT("; fixed colour limit");
    else PUT("; colour limit: %gth percentile of abs(a)", f->o.percentile);
    if (f->st.max_abs > f->lim) PUT(", max %.3g", f->st.max_abs);
    if (f->st.n_nonfinite > 0) PUT("; %lld NaN/Inf shown as 0", (long long)f->st.n_nonfinite);
#undef PUT
}

gb_status gb_heatmap_panel(gb_ctx *ctx, const gb_image *base, const gb_tensor *map,
                           const gb_heatmap_opts *opts, gb_image **out) {
    const char *who = "heatmap panel";
    if (!out) return gb__err(ctx, GB_ERR_ARG, "%s: out is NULL", who);
    *out = NULL;
    gb_status st = base ? gb__image_check(ctx, "heatmap panel: base", base) : GB_OK;
    if (st) return st;
    field f;
    st = reduce_map(ctx, who, map, opts, &f);
    if (st) return st;

    const gb_image *tiles[3];      /* input | map | overlay, or the map alone */
    gb_image *map_img = NULL, *over_img = NULL;
    const char *caps[3];
    int nt = 0, s = 1;
    int sgn = f.o.mode == GB_HEATMAP_SIGNED;
    char *title = NULL;
    gb_image *img = NULL;
    int bw = base ? base->width : f.w, bh = base ? base->height : f.h;
    st = pick_scale(ctx, who, f.o.scale, bw, bh, &s);
    if (st) goto done;
    if (base) {
        caps[nt] = "input";
        tiles[nt++] = base;
    }
    st = paint(ctx, who, &f, base, 0, &map_img);
    if (st) goto done;
    caps[nt] = sgn ? "attribution" : "abs(attribution)";
    tiles[nt++] = map_img;
    if (base) {
        st = paint(ctx, who, &f, base, 1, &over_img);
        if (st) goto done;
        caps[nt] = "overlay";
        tiles[nt++] = over_img;
    }

    /* Layout, in pixels. ts = pixels per font unit: 2 for a usual panel,
     * more for large images so the text keeps its size relative to them. */
    int tw = bw * s, th = bh * s;
    int ts = (nt * tw) / 450;
    ts = ts < 2 ? 2 : ts > 6 ? 6 : ts;
    int margin = 6 * ts, gap = 4 * ts, line = FONT_LINE * ts;
    int slot = tw;      /* a tile's column: as wide as the tile or its caption */
    for (int i = 0; i < nt; i++) {
        int cw = text_width(caps[i], NULL) * ts;
        if (cw > slot) slot = cw;
    }
    int row_w = nt * slot + (nt - 1) * gap;
    int title_lines = 0, title_w = 0;
    if (f.o.title && *f.o.title) {
        size_t tlen = strlen(f.o.title);
        if (tlen > GB_HEATMAP_MAX_TITLE) {
            st = gb__err(ctx, GB_ERR_ARG, "%s: opts.title has %zu bytes (at most %d)", who, tlen,
                         GB_HEATMAP_MAX_TITLE);
            goto done;
        }
        title = malloc(tlen + 1);
        if (!title) {
            st = gb__err(ctx, GB_ERR_NOMEM, "%s: out of memory", who);
            goto done;
        }
        ascii_text(f.o.title, title);
        title_w = text_width(title, &title_lines) * ts;
    }
    char note[256], lab[3][32];
    legend_note(&f, note, sizeof note);
    int note_w = f.o.legend ? text_width(note, NULL) * ts : 0;
    int W = row_w, H;
    if (title_w > W) W = title_w;
    if (note_w > W) W = note_w;
    W += 2 * margin;
    int y_title = margin;
    int y_caps = y_title + (title_lines ? title_lines * line + gap : 0);
    int y_tiles = y_caps + line;
    int y_bar = y_tiles + th + 2 * gap, bar_h = 6 * ts, tick = 2 * ts;
    int y_labels = y_bar + bar_h + tick + ts;
    H = f.o.legend ? y_labels + line + FONT_BOX * ts + margin : y_tiles + th + margin;
    if ((int64_t)W > GB_IMAGE_MAX_SIDE || (int64_t)H > GB_IMAGE_MAX_SIDE) {
        st = gb__err(ctx, GB_ERR_ARG, "%s: the panel would be %dx%d pixels (limit %d a side)",
                     who, W, H, GB_IMAGE_MAX_SIDE);
        goto done;
    }
    st = gb_image_create(ctx, W, H, 3, &img);
    if (st) goto done;
    fill(img, 0, 0, W, H, C_BG);

    int x_row = (W - row_w) / 2;
    if (title) {   /* each line centred */
        const char *p = title;
        for (int l = 0; l < title_lines; l++) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char *one = strndup(p, len);
            if (one) {
                int lw = text_width(one, NULL) * ts;
                draw_text(img, (W - lw) / 2, y_title + l * line, one, ts, C_TITLE);
                free(one);
            }
            p = e ? e + 1 : p + len;
        }
    }
    for (int i = 0; i < nt; i++) {
        int x = x_row + i * (slot + gap);
        int cw = text_width(caps[i], NULL) * ts;
        draw_text(img, x + (slot - cw) / 2, y_caps, caps[i], ts, C_TEXT);
        blit(img, x + (slot - tw) / 2, y_tiles, tiles[i], s);
    }
    if (f.o.legend) {
        /* The bar runs over the row's width, from lo (left) to hi (right),
         * each column coloured like the value at its centre; a 1-px frame. */
        double lo = f.st.lo, hi = f.st.hi > 0 ? f.st.hi : 1.0;
        if (sgn && f.st.hi <= 0) lo = -1.0;
        for (int x = 0; x < row_w; x++) {
            double v = lo + (hi - lo) * (x + 0.5) / row_w;
            fill(img, x_row + x, y_bar, 1, bar_h, colour_of(&f, f.lim > 0 ? v : 0.0));
        }
        fill(img, x_row - 1, y_bar - 1, row_w + 2, 1, C_FRAME);
        fill(img, x_row - 1, y_bar + bar_h, row_w + 2, 1, C_FRAME);
        fill(img, x_row - 1, y_bar - 1, 1, bar_h + 2, C_FRAME);
        fill(img, x_row + row_w, y_bar - 1, 1, bar_h + 2, C_FRAME);
        /* Ticks at both ends and the middle: -L / 0 / +L or 0 / L/2 / L. */
        fmt_value(lab[0], sizeof lab[0], f.st.lo, 0);
        fmt_value(lab[1], sizeof lab[1], (f.st.lo + f.st.hi) / 2, 0);
        fmt_value(lab[2], sizeof lab[2], f.st.hi, sgn);
        for (int i = 0; i < 3; i++) {
            int tx = x_row + (i == 0 ? 0 : i == 1 ? row_w / 2 : row_w - 1);
            fill(img, tx - ts / 2, y_bar + bar_h, ts, tick + 1, C_FRAME);
            int lw = text_width(lab[i], NULL) * ts;
            int lx = i == 0 ? tx : i == 1 ? tx - lw / 2 : tx - lw + 1;
            draw_text(img, lx, y_labels, lab[i], ts, C_TEXT);
        }
        draw_text(img, (W - note_w) / 2, y_labels + line, note, ts, C_TEXT);
    }
    *out = img;
    img = NULL;

done:
    gb_image_free(map_img);
    gb_image_free(over_img);
    gb_image_free(img);
    free(title);
    field_free(&f);
    return st;
}
