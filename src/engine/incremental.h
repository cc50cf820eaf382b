/*
 * incremental.h — incremental inference for perturbed inputs (Nakandala,
 * Kumar & Papakonstantinou, "Incremental and Approximate Inference for
 * Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019).
 *
 * A row that equals a cached input x except inside one spatial box changes,
 * in every later tensor, only the positions the box can reach (its
 * receptive-field cone). gb__incr keeps the activations of one item of x
 * (the "base", from its own batch-1 session) and evaluates a batch of such
 * rows by recomputing, node by node, only those regions ("patches"); every
 * other value is read from the base. Reading an input of an op over a region
 * means: the base values there, overlaid with the input's patch.
 *
 * Per tensor and batch the state is one of
 *   UNCHANGED  every row equals the base;
 *   PATCH      4-D (1, C, H, W) tensors: per row a box [y0, y1) x [x0, x1) and
 *              its values, laid out (C, cols): row r's box is the columns
 *              off[r] .. off[r] + area_r of every channel, row-major inside;
 *   DENSE      the whole tensor, per row (B, item) — after ops that mix
 *              every position (global pooling, Flatten, Gemm, Reshape...).
 * Ops with a region kernel (PATCH in, PATCH out): Conv (any kernel, stride,
 * padding, dilation, groups), MaxPool / AveragePool (incl. ceil_mode and
 * count_include_pad), per-position ops (activations, BatchNormalization,
 * binary elementwise with per-channel constants or same-shape operands),
 * Concat along channels, identity views. Every other op runs its own forward
 * on the materialised DENSE rows (batched when the op is known to treat dim 0
 * as the batch, else one row at a time with the batch-1 shapes), so any
 * graph is correct, just less incremental past such an op.
 *
 * Exactness: each recomputed value is the same sum of the same products as
 * in a full forward pass (only the summation order can differ: im2col+GEMM
 * tiles); positions outside the regions are bit-identical base values.
 */
#ifndef GB_ENGINE_INCREMENTAL_H
#define GB_ENGINE_INCREMENTAL_H

#include "engine/ir.h"

typedef struct gb__incr gb__incr;

/* Counters since creation (or the last gb__incr_reset_stats). FLOPs are the
 * engine's counts (multiply-add = 2): full = what full forward passes of the
 * same rows cost, incr = what the incremental evaluation computed (also for
 * rows where it did not pay: those count full in both). */
typedef struct {
    double flops_full, flops_incr;
    int64_t rows_incr, rows_full;   /* rows evaluated incrementally / by fallback */
    int64_t batches_incr, batches_full;
} gb__incr_stats;

gb_status gb__incr_create(gb_ctx *ctx, gb_model *m, gb__incr **out);
void gb__incr_free(gb__incr *inc);

/* Make x_item (one item, shape (1, ...) of the model's single input) the
 * base: runs a forward pass unless x_item's values equal the current base's.
 * GB_ERR_UNSUPPORTED (no message needed by callers: *usable false) when the
 * model cannot be evaluated incrementally at all (input not 4-D float32...). */
gb_status gb__incr_set_base(gb__incr *inc, const gb_tensor *x_item, bool *usable);

/* Plan B rows (row k = x_rows[k * item ...], equal to the base outside the
 * box boxes[4k..4k+3] = h0, h1, w0, w1, half-open input pixels, clipped to
 * the image): propagate the regions and estimate the FLOPs. *flops_incr and
 * *flops_full (B full passes) let the caller decide whether to run it. */
gb_status gb__incr_plan(gb__incr *inc, int64_t B, const int64_t *boxes, double *flops_incr,
                        double *flops_full);

/* Run the planned batch and return a (B, item shape) float32 view of tensor
 * `target` (tensor id in the model) for the rows, valid until the next call.
 * Adds to the stats. */
gb_status gb__incr_run(gb__incr *inc, const float *x_rows, int target, const gb_tensor **T);

/* Record rows evaluated by full passes instead (for the stats). */
void gb__incr_note_full(gb__incr *inc, int64_t rows);

void gb__incr_get_stats(const gb__incr *inc, gb__incr_stats *out);
void gb__incr_reset_stats(gb__incr *inc);

/* Tensor id's plan tensor in the base (batch-1) session; NULL before a base. */
const gb_tensor *gb__incr_base_tensor(const gb__incr *inc, int id);

/* FLOPs of one full batch-1 forward pass of the base plan (0 before a base). */
double gb__incr_full_flops(const gb__incr *inc);

#endif
