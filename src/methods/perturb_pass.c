/* perturb_pass.c — forward passes on perturbed copies of an input, for the
 * perturbation methods (see gb__explain_forward_perturbed in methods.h).
 *
 * Rows that differ from x only inside a box are evaluated by incremental
 * inference (src/engine/incremental.h; Nakandala et al., SIGMOD 2019): the
 * activations of x's item are cached once, and only the box's
 * receptive-field cone is recomputed. Per batch of rows a FLOP estimate
 * decides: when the cone costs more than GB_INCR_PAYS of full passes (masks
 * that cover most of the image, as RISE's and LIME's usually do, or models
 * whose early layers mix every position), the batch runs full forward passes
 * instead (gb__explain_pass). Both give the same values up to float
 * summation order. */
#include "methods/methods.h"
#include "engine/incremental.h"
#include "engine/session.h"

#include <string.h>

/* Incremental kernels (gathers, smaller GEMMs) run at a lower FLOP rate than
 * full passes: require the cone to cost at most half of the full passes.
 * Measured on resnet18/vgg16 (bench/README_incremental.md): incremental
 * wins already at ~70% of the FLOPs, so 0.5 errs on the side of full passes. */
#define GB_INCR_PAYS 0.5
/* Rows per incremental batch: their patches share one im2col buffer and one
 * GEMM per tile; 32 rows keep the patch buffers of vgg16 around 100 MB. */
#define GB_INCR_BATCH 32

void gb__explain_set_incremental(gb_explainer *e, int mode) { e->incremental = mode < 0 ? -1 : mode > 0 ? 1 : 0; }

void gb__explain_incremental_stats(gb_explainer *e, bool reset, double *flops_full, double *flops_done,
                                   int64_t *rows_incr, int64_t *rows_full) {
    gb__incr_stats s = {0};
    if (e->incr) gb__incr_get_stats(e->incr, &s);
    if (flops_full) *flops_full = s.flops_full;
    if (flops_done) *flops_done = s.flops_incr;
    if (rows_incr) *rows_incr = s.rows_incr;
    if (rows_full) *rows_full = s.rows_full;
    if (reset && e->incr) gb__incr_reset_stats(e->incr);
}

/* Does row equal the item xi outside the box (NCHW, clipped to the image)?
 * Checked rather than trusted: it costs a compare of one image per row, and
 * a box given for another layout (NHWC) or a wrong box must not give wrong
 * values — such rows take full passes. */
static bool outside_box_equal(const float *row, const float *xi, const int64_t *dims, const int64_t *b) {
    const int64_t C = dims[1], H = dims[2], W = dims[3];
    int64_t h0 = b[0] < 0 ? 0 : b[0], h1 = b[1] > H ? H : b[1], w0 = b[2] < 0 ? 0 : b[2], w1 = b[3] > W ? W : b[3];
    if (h1 <= h0 || w1 <= w0) h0 = h1 = w0 = w1 = 0;
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++) {
            const size_t o = (size_t)((c * H + y) * W);
            if (y < h0 || y >= h1) {
                if (memcmp(row + o, xi + o, (size_t)W * sizeof *row)) return false;
            } else if (memcmp(row + o, xi + o, (size_t)w0 * sizeof *row) ||
                       memcmp(row + o + w1, xi + o + w1, (size_t)(W - w1) * sizeof *row)) {
                return false;
            }
        }
    return true;
}

static gb_status full_rows(gb_explainer *e, gb_explanation *r, const float *x_rows, int64_t n,
                           const int64_t *item_of_row, double *values) {
    if (e->incr) gb__incr_note_full(e->incr, n);
    return gb__explain_pass(e, r, x_rows, n, item_of_row, NULL, NULL, 0, values, NULL, NULL);
}

gb_status gb__explain_forward_perturbed(gb_explainer *e, gb_explanation *r, const gb_tensor *x,
                                        const float *x_rows, int64_t n_rows, const int64_t *item_of_row,
                                        const int64_t *boxes, double *values) {
    /* Incremental needs boxes, a (N, C, H, W) input, and batch-1 runs. */
    if (!boxes || e->incremental < 0 || e->static_batch > 1 || x->ndim != 4 || n_rows < 1)
        return gb__explain_pass(e, r, x_rows, n_rows, item_of_row, NULL, NULL, 0, values, NULL, NULL);
    gb_status st;
    if (!e->incr && (st = gb__incr_create(e->ctx, e->m, &e->incr))) return st;
    int target = gb__model_tensor_id(e->m, r->target_tensor);
    if (target < 0) target = gb__session_lookup(e->s, r->target_tensor);
    if (target < 0) return gb__explain_pass(e, r, x_rows, n_rows, item_of_row, NULL, NULL, 0, values, NULL, NULL);
    const int64_t in = e->item_numel;
    for (int64_t k0 = 0; k0 < n_rows;) {
        /* a batch: consecutive rows of one item */
        int64_t k1 = k0 + 1;
        while (k1 < n_rows && k1 - k0 < GB_INCR_BATCH && item_of_row[k1] == item_of_row[k0]) k1++;
        const int64_t b = k1 - k0;
        gb_tensor xi = *x;
        xi.dims[0] = 1;
        xi.numel = in;
        xi.data = (float *)x->data + item_of_row[k0] * in;
        bool usable = false;
        st = gb__incr_set_base(e->incr, &xi, &usable);
        if (st && st != GB_ERR_UNSUPPORTED) return st;
        const gb_tensor *tb = usable ? gb__incr_base_tensor(e->incr, target) : NULL;
        double fi = 0, ff = 0;
        for (int64_t k = k0; tb && k < k1; k++)
            if (!outside_box_equal(x_rows + k * in, xi.data, x->dims, boxes + 4 * k)) tb = NULL;
        if (tb && tb->ndim >= 1 && tb->dims[0] == 1 && tb->dtype == GB_DTYPE_F32) {
            if ((st = gb__incr_plan(e->incr, b, boxes + 4 * k0, &fi, &ff))) return st;
        }
        if (!tb || ff <= 0 || (e->incremental == 0 && fi > GB_INCR_PAYS * ff)) {
            if ((st = full_rows(e, r, x_rows + k0 * in, b, item_of_row + k0, values + k0))) return st;
        } else {
            const gb_tensor *T;
            if ((st = gb__incr_run(e->incr, x_rows + k0 * in, target, &T))) return st;
            if ((st = gb__target_check_tensor(e->ctx, r, T, b, false))) return st;
            gb__target_values(r, T, item_of_row + k0, b, values + k0);
            r->rows += b;
        }
        k0 = k1;
    }
    return GB_OK;
}
