/*
 * segment.h — feature masks for the perturbation methods: which pixels move
 * together when a method switches a "feature" on or off.
 *
 * A feature mask is a label map: an int64 (H, W) tensor whose values are the
 * feature of each pixel, 0..M-1 (every label used at least once). Three ways
 * to make one:
 *   a grid          gb_segment_grid: cells of cell_h x cell_w pixels, numbered
 *                   row by row (the last row / column of cells may be smaller);
 *   a file          gb_segment_load: a .npy of integers (any integer or
 *                   integral float dtype, shape (H, W) or (1, H, W) or
 *                   (1, 1, H, W)) or an image (PNG...) where each distinct
 *                   gray level or color is one feature;
 *   superpixels     gb_segment_slic: SLIC (Achanta et al. 2012, "SLIC
 *                   Superpixels Compared to State-of-the-art Superpixel
 *                   Methods", TPAMI 34(11), Algorithm 1).
 * Every map returned is compact: labels renumbered 0..M-1 in increasing order
 * of the original labels (gb_segment_compact).
 *
 *     gb_image *img;   gb_image_load(ctx, "cat.jpg", &img);
 *     gb_tensor *lab;  gb_segment_image_lab(ctx, img, &lab);     // (3, H, W) CIELAB
 *     gb_tensor *seg;  gb_segment_slic(ctx, lab, 100, 10.0, &seg);  // (H, W) int64
 *     int64_t M = gb_segment_count(seg);
 */
#ifndef GLASSBOX_SEGMENT_H
#define GLASSBOX_SEGMENT_H

#include "glassbox/glassbox.h"
#include "glassbox/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A grid of cells over an H x W image. GB_ERR_ARG for sides or cells < 1. */
gb_status gb_segment_grid(gb_ctx *ctx, int64_t H, int64_t W, int64_t cell_h, int64_t cell_w, gb_tensor **out);

/* SLIC superpixels of a (C, H, W) or (1, C, H, W) float32 image (C >= 1, any
 * units: CIELAB for photos, see gb_segment_image_lab). n_segments is the
 * approximate number wanted (the grid interval is S = sqrt(H W / n)),
 * compactness the paper's m (the colour distance that weighs as much as a
 * spatial distance of S: D^2 = d_c^2 + (d_s / S)^2 m^2, eq. 3); 10 suits
 * CIELAB. 10 iterations of local k-means in 2S x 2S windows from centres
 * moved to the lowest gradient of their 3x3 neighbourhood, then connectivity
 * enforced: pieces smaller than a quarter of the mean superpixel are merged
 * into a neighbour. The result has about n_segments labels (fewer on images
 * smaller than the grid). Deterministic. */
gb_status gb_segment_slic(gb_ctx *ctx, const gb_tensor *img, int n_segments, double compactness, gb_tensor **out);

/* An 8-bit image (1..4 channels; alpha ignored; gray as R = G = B) to a
 * (3, H, W) float32 CIELAB tensor (sRGB, D65 white), as skimage's rgb2lab. */
gb_status gb_segment_image_lab(gb_ctx *ctx, const gb_image *img, gb_tensor **out);

/* A label map from a file (see above). GB_ERR_FORMAT for a .npy of
 * non-integral or negative values or of more than 2 non-unit dims;
 * image/npy errors as they come. */
gb_status gb_segment_load(gb_ctx *ctx, const char *path, gb_tensor **out);

/* Renumber an int64 tensor's labels in place to 0..M-1, keeping their
 * order; returns M (0 for an empty tensor). Labels must be >= 0 and < 2^31. */
int64_t gb_segment_compact(gb_tensor *labels);

/* 1 + the largest label (M for a compact map). */
int64_t gb_segment_count(const gb_tensor *labels);

/* Boundary recall of a segmentation against a reference (two (H, W) int64
 * maps): the fraction of the reference's boundary pixels (a pixel whose
 * right or lower neighbour has another label) that lie within `tol` pixels
 * (Chebyshev) of a boundary pixel of `seg` — the measure of Achanta et al.
 * (sec. 4.1) with their tolerance of 2. 1 when the reference has no
 * boundary. */
double gb_segment_boundary_recall(const gb_tensor *seg, const gb_tensor *ref, int tol);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_SEGMENT_H */
