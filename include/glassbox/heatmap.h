/*
 * heatmap.h — draw an attribution map as a picture: a coloured map, an
 * overlay on the input image, and a labelled side-by-side panel.
 *
 * A worked example (error checks shortened; every function returns a
 * gb_status and leaves a one-line message on the context):
 *
 *     gb_tensor *attr = ...;           // (H, W), (C, H, W) or (1, C, H, W)
 *     gb_image *seen;  gb_preproc_inverse(ctx, &pp, x, 0, &seen);  // what the model saw
 *     gb_heatmap_opts o = GB_HEATMAP_OPTS_INIT;   // magnitude, viridis, 99th pct
 *     o.title = "saliency - class 'Sneaker' (p=0.97)";
 *     gb_image *panel; gb_heatmap_panel(ctx, seen, attr, &o, &panel);
 *     gb_image_write_png(ctx, "saliency.png", panel);
 *     gb_image_free(panel); gb_image_free(seen);
 *
 * ---- From a tensor to one value per pixel ----
 * The map is a float32 (or float64) tensor of shape (H, W), (C, H, W) or
 * (1, C, H, W), channels first; (1, H, W) and (1, 1, H, W) are C = 1. A
 * batch of more than one map or a rank outside 2..4 is GB_ERR_SHAPE (slice
 * it first). An NHWC map cannot be told apart from NCHW: transpose it
 * first. Channels are reduced to one value per pixel by opts.reduce:
 *   GB_REDUCE_AUTO     SUM for signed maps, MAX_ABS for magnitude maps;
 *   GB_REDUCE_SUM      sum over channels: the pixel's net contribution (what
 *                      Integrated Gradients' completeness adds up);
 *   GB_REDUCE_MAX_ABS  the channel value with the largest |.|, sign kept: in
 *                      a magnitude map this is max_c |a_c|, the usual
 *                      saliency view (Simonyan et al. 2014, sec. 3.1);
 *   GB_REDUCE_L2       sqrt(sum_c a_c^2) (never negative).
 * Then a magnitude map (GB_HEATMAP_MAGNITUDE) shows |value|, a signed map
 * (GB_HEATMAP_SIGNED) shows the value with its sign.
 * Non-finite values (NaN, +-Inf: a bug upstream, but the picture is still
 * useful) are treated as 0 before reducing; gb_heatmap_stats counts them
 * and the panel's legend says how many there were.
 *
 * ---- Colour limits ----
 * The limit L is the opts.percentile-th percentile of |value| over all
 * pixels (default 99: the top 1% saturate, so one extreme pixel does not
 * wash out the rest), computed exactly as numpy.percentile's default
 * ('linear': sorted value at rank p/100 * (n-1), interpolated between the two
 * neighbouring ranks) by selection, without sorting. opts.vmax > 0 replaces
 * it (to draw several maps on one scale). If L is 0 while some value is not
 * (a map with fewer than 1% non-zero pixels), L is the largest |value|.
 * A magnitude map is coloured over [0, L] with a sequential map (0 at the
 * dark end); a signed map over [-L, +L] with a diverging map, 0 exactly
 * white. Values beyond the limits take the end colours. An all-zero map is
 * drawn in the zero colour.
 *
 * ---- Colormaps ----
 * Lookup tables generated from matplotlib's published data by
 * tests/scripts/make_colormap_tables.py (src/io/colormap.c):
 *   GB_CMAP_VIRIDIS, GB_CMAP_INFERNO  perceptually uniform sequential maps,
 *       256 entries; value v in [0, L] takes entry round(255 * v / L).
 *   GB_CMAP_RDBU  matplotlib's 'RdBu_r' (ColorBrewer: blue negative, red
 *       positive) with its centre #f7f7f7 made pure white; 257 entries.
 *   GB_CMAP_BWR   matplotlib's 'bwr' (pure blue - white - pure red); 257.
 *   Value v in [-L, L] takes entry 128 + round(128 * v / L) of a diverging
 *   map, so 0 is entry 128: white.
 * GB_CMAP_AUTO picks viridis for magnitude maps and rdbu for signed ones. A
 * sequential map on a signed map (or the reverse) is allowed: signed values
 * on a sequential map span it from -L (dark) to +L; magnitudes on a
 * diverging map use its upper (white to red) half.
 *
 * ---- Geometry ----
 * A map of another size than the image is resampled to the image's size
 * bilinearly on its values (before colouring; align_corners = False, as
 * torch's F.interpolate and gb_preproc). The image should be the one the
 * model saw (gb_preproc_inverse), so the map lines up; a different aspect
 * ratio is stretched. Then the whole picture is magnified by opts.scale with
 * nearest-neighbour (no blur: a 28x28 saliency map keeps its pixel grid);
 * opts.scale = 0 picks the smallest factor that makes the longer side at
 * least GB_HEATMAP_MIN_SIDE (224) pixels, at most GB_HEATMAP_MAX_SCALE
 * (a 28x28 Fashion-MNIST map becomes 224x224; a photo stays 1:1).
 *
 * ---- Text ----
 * Labels use stb_easy_font (ASCII). In a title, UTF-8 dashes, minus signs
 * and curly quotes become '-', '\'' and '"' (also x for U+00D7, +- for
 * U+00B1, ... for U+2026, u for mu), other non-ASCII characters and invalid
 * UTF-8 bytes '?', control characters ' '; '\n' starts a new line. The panel widens to fit a long title; a title over
 * GB_HEATMAP_MAX_TITLE bytes is GB_ERR_ARG.
 *
 * Output images are packed RGB (3 channels), created by this library: free
 * them with gb_image_free. On failure *out is NULL. Errors, with one-line
 * messages "heatmap <function>: <what>":
 *   GB_ERR_ARG    NULL map or out, a map without data, a bad option (named),
 *                 a bad base image, a result over the image size limits;
 *   GB_ERR_SHAPE  a map with no elements, a batch, or a rank outside 2..4;
 *   GB_ERR_UNSUPPORTED  a map whose dtype is not float32 or float64;
 *   GB_ERR_NOMEM  out of memory.
 */
#ifndef GLASSBOX_HEATMAP_H
#define GLASSBOX_HEATMAP_H

#include "glassbox/glassbox.h"
#include "glassbox/image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GB_HEATMAP_MIN_SIDE 224   /* opts.scale = 0 magnifies up to this */
#define GB_HEATMAP_MAX_SCALE 64
#define GB_HEATMAP_MAX_TITLE 1024  /* bytes */

typedef enum {
    GB_HEATMAP_MAGNITUDE,    /* |value|, sequential colormap over [0, L] */
    GB_HEATMAP_SIGNED,       /* value, diverging colormap over [-L, L] */
    GB_HEATMAP_MODE_COUNT
} gb_heatmap_mode;

typedef enum {
    GB_REDUCE_AUTO,          /* SUM when signed, MAX_ABS for magnitude */
    GB_REDUCE_SUM,
    GB_REDUCE_MAX_ABS,
    GB_REDUCE_L2,
    GB_REDUCE_COUNT
} gb_heatmap_reduce;

typedef enum {
    GB_CMAP_AUTO,            /* viridis for magnitude, rdbu for signed */
    GB_CMAP_VIRIDIS,
    GB_CMAP_INFERNO,
    GB_CMAP_RDBU,            /* RdBu_r, white centre */
    GB_CMAP_BWR,
    GB_CMAP_COUNT
} gb_colormap;

/* How an overlay shows the image under the map. Gray, because a blue sky
 * must not read as negative attribution (Captum's blended_heat_map also
 * shows the image's gray mean); lightened or darkened, because each kind of
 * colormap has an end that vanishes on one kind of pixel. */
typedef enum {
    GB_BASE_AUTO,    /* LIGHT for signed maps, DARK for magnitude maps */
    GB_BASE_COLOR,   /* the image as it is */
    GB_BASE_GRAY,    /* its luma g (as gb_image_convert) */
    GB_BASE_LIGHT,   /* (g + 255) / 2 rounded down: the dark ends of a diverging map
                        stay visible on black */
    GB_BASE_DARK,    /* round(0.6 g): the bright end of viridis / inferno stays
                        visible on white */
    GB_BASE_COUNT
} gb_heatmap_base;

typedef struct gb_heatmap_opts {
    gb_heatmap_mode mode;        /* default GB_HEATMAP_MAGNITUDE */
    gb_heatmap_reduce reduce;    /* default GB_REDUCE_AUTO */
    gb_colormap colormap;        /* default GB_CMAP_AUTO */
    double percentile;           /* limit L = this percentile of |value|, in (0, 100]; 99 */
    double vmax;                 /* > 0: L = vmax instead (no percentile); default 0 */
    double opacity;              /* overlay: heatmap weight in [0, 1]; default 0.7 */
    int alpha_by_magnitude;      /* overlay: weight = opacity * min(1, |value| / L), so
                                    pixels without attribution show the image; default 1 */
    gb_heatmap_base base;        /* overlay: how the image is shown under the map;
                                    default GB_BASE_AUTO */
    int scale;                   /* nearest-neighbour magnification 1..GB_HEATMAP_MAX_SCALE;
                                    0 = auto (see Geometry); default 0 */
    const char *title;           /* panel: title text (UTF-8, see Text); NULL or "" = none */
    int legend;                  /* panel: draw the colour bar with its tick labels; default 1 */
} gb_heatmap_opts;

#define GB_HEATMAP_OPTS_INIT                                                        \
    { .mode = GB_HEATMAP_MAGNITUDE, .reduce = GB_REDUCE_AUTO, .colormap = GB_CMAP_AUTO, \
      .percentile = 99.0, .vmax = 0.0, .opacity = 0.7, .alpha_by_magnitude = 1,       \
      .base = GB_BASE_AUTO, .scale = 0, .title = NULL, .legend = 1 }

/* Set *o to GB_HEATMAP_OPTS_INIT. Functions below take opts == NULL as these. */
void gb_heatmap_opts_default(gb_heatmap_opts *o);

/* What a map reduces to under opts (the numbers a legend shows). */
typedef struct {
    int height, width;           /* H, W of the map */
    int channels;                /* C reduced over */
    gb_heatmap_mode mode;
    gb_heatmap_reduce reduce;    /* the reduction used (never AUTO) */
    gb_colormap colormap;        /* the colormap used (never AUTO) */
    double lo, hi;               /* colour limits: [0, L] or [-L, L] */
    double max_abs;              /* largest |value| after reduction */
    int64_t n_nonfinite;         /* NaN/Inf inputs counted as 0 */
} gb_heatmap_stats;

/* Reduce the map and compute its colour limits, without drawing. */
gb_status gb_heatmap_limits(gb_ctx *ctx, const gb_tensor *map, const gb_heatmap_opts *opts,
                            gb_heatmap_stats *out);

/* The map alone in colour: (H * s) x (W * s) RGB, s = the scale (auto:
 * from the map's size). */
gb_status gb_heatmap_render(gb_ctx *ctx, const gb_tensor *map, const gb_heatmap_opts *opts,
                            gb_image **out);

/* The map blended over `base` (1..4 channels, any stride; gray is replicated
 * and alpha ignored): at each pixel, with the map resampled to the image,
 * b = the base pixel as opts.base shows it, and
 * w = opacity (times min(1, |value| / L) with alpha_by_magnitude),
 *     out = round((1 - w) * b + w * colour(value))   per R, G, B;
 * then magnified: (height * s) x (width * s) RGB. */
gb_status gb_heatmap_overlay(gb_ctx *ctx, const gb_image *base, const gb_tensor *map,
                             const gb_heatmap_opts *opts, gb_image **out);

/* A figure on a white background: an optional title (lines centred); then
 * input | map | overlay side by side, each tile the base image's size times
 * s, with a caption above it; then (with opts.legend) a colour bar as wide
 * as the row of tiles, ticks at -L / 0 / +L (signed) or 0 / L/2 / L
 * (magnitude) labelled with their values, and a line saying how the map was
 * reduced and clipped. base may be NULL: then the map tile alone, at the
 * map's size times s.
 * Layout in pixels, for n tiles of tw x th: text scale
 * ts = clamp(n * tw / 450, 2, 6) (integer division; stb_easy_font units are
 * ts x ts pixels, a text line 12 ts), margin m = 6 ts, gap g = 4 ts.
 * Width: max(row, title, legend line) + 2 m, the row centred in it; row =
 * n slots + (n - 1) g, a slot as wide as its tile or as its caption if that
 * is wider (tiny tiles at scale 1), the tile centred in it. Rows from the
 * top: m; title lines (12 ts each) + g if a title; captions (12 ts); tiles
 * (th); with the legend: 2 g, bar (6 ts), ticks (3 ts), labels (12 ts),
 * the legend line (10 ts); m. E.g. a 28x28 image at s = 8: 712 x 350. */
gb_status gb_heatmap_panel(gb_ctx *ctx, const gb_image *base, const gb_tensor *map,
                           const gb_heatmap_opts *opts, gb_image **out);

/* The lookup table of a colormap: *n entries of {R, G, B} (256 for the
 * sequential maps, 257 for the diverging ones), static. NULL and *n = 0 for
 * GB_CMAP_AUTO or an invalid value. */
const uint8_t *gb_colormap_lut(gb_colormap cmap, int *n);
/* "viridis", "inferno", "rdbu", "bwr", "auto"; "?" for an invalid value. */
const char *gb_colormap_name(gb_colormap cmap);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_HEATMAP_H */
