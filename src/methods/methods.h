/* methods.h — what attribution methods share (private to src/methods/).
 *
 * Adding a method family: write src/methods/<family>.c with functions of type
 * gb_method_fn (include/glassbox/explain.h) and a NULL-terminated table
 *     const gb_method gb__methods_<family>[] = { {"name", fn, mode, flags, paper, summary}, ..., {0} };
 * and list the table in src/methods/registry.c. A method receives the
 * explanation with the target resolved at x (value, target_*), builds its
 * evaluation points ("rows") and drives the model through gb__explain_pass,
 * which runs forward (+ backward) on any number of rows, o->batch at a time.
 */
#ifndef GB_METHODS_H
#define GB_METHODS_H

#include "glassbox/explain.h"

#include <stdbool.h>

struct gb_explainer {
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;
    gb_value_info in;          /* the explained input (graph input 0) */
    int64_t static_batch;      /* > 0: the model's batch dimension is fixed to this */
    int64_t item_numel;        /* elements of one item of the input (after x is checked) */
    int64_t xdims[GB_MAX_DIMS];/* the shape of the x being explained */
    int batch;                 /* rows per pass (o->batch or the default) */
    /* scratch, grown as needed */
    gb_tensor *rows;           /* a padded pass's input (fixed-batch models) */
    int64_t rows_cap;          /* its elements */
    gb_tensor *seed;           /* one pass's gradient seed */
    /* incremental inference for perturbed rows (perturb_pass.c) */
    struct gb__incr *incr;     /* cached base activations, or NULL */
    int incremental;           /* 0 auto (FLOP cost model), 1 always where possible, -1 never */
    /* The rows whose forward pass the session holds (a copy), so that a
     * method's pass at x right after the target-resolving pass on x runs
     * backward only. Valid within one gb_explain call; code that runs e->s
     * directly (gb_session_run*) must clear held_valid first. */
    float *held;
    int64_t held_cap, held_P;
    bool held_valid;
};

/* Family tables (NULL-terminated), joined by registry.c. */
extern const gb_method gb__methods_gradient[];
extern const gb_method gb__methods_integrated[];
extern const gb_method gb__methods_cam[];
extern const gb_method gb__methods_perturb[];
extern const gb_method gb__methods_relevance_lrp[], gb__methods_relevance_deeplift[];   /* lrp.c, deeplift.c */

/* ---- driving the model ---------------------------------------------------------- */

/* Evaluate n_rows points. Row k is x_rows[k * item_numel ...] (the input's item
 * shape) and is a point for item item_of_row[k] (its target: r->target_*).
 * Rows run at most e->batch at a time (exactly e->static_batch, padded, for a
 * fixed-batch model). For each row k, when the pointer is not NULL:
 *   values[k]                      f_item(row)
 *   grad[k * wn .. (k + 1) * wn)   d f_item / d wrt at the row (with `rules`)
 *   act[k * wn .. (k + 1) * wn)    the activation of wrt at the row
 * where wrt is a tensor name (NULL = the input) and wn its elements per item.
 * grad == NULL skips the backward pass. Adds n_rows to r->rows.
 * GB_ERR_NOT_FOUND: no tensor wrt; GB_ERR_ARG: no gradient reaches it. */
gb_status gb__explain_pass(gb_explainer *e, gb_explanation *r, const float *x_rows, int64_t n_rows,
                           const int64_t *item_of_row, const char *wrt, const gb_rule *rules,
                           int n_rules, double *values, float *grad, float *act);

/* Forward-only evaluation of perturbed copies of x, for the perturbation
 * methods (occlusion, feature_ablation, rise, lime, kernel_shap,
 * shapley_sampling). Row k is x_rows[k * item_numel ...]; it equals item
 * item_of_row[k] of x except inside the spatial box
 *     boxes[4k .. 4k + 3] = h0, h1, w0, w1   (half-open, input pixels)
 * (boxes == NULL: rows may differ anywhere). Fills values[k] = f_item(row).
 * perturb_pass.c decides per batch whether incremental inference (only the
 * activations the changed box can reach are recomputed from the cached pass
 * on x; Nakandala et al. 2019) pays, and otherwise runs gb__explain_pass.
 * Either way the values are those of a full forward pass (up to summation
 * order). Adds n_rows to r->rows. */
gb_status gb__explain_forward_perturbed(gb_explainer *e, gb_explanation *r, const gb_tensor *x,
                                        const float *x_rows, int64_t n_rows, const int64_t *item_of_row,
                                        const int64_t *boxes, double *values);

/* Incremental inference controls (perturb_pass.c), for tests and benchmarks:
 * mode 0 = decide per batch by FLOPs (the default), 1 = incremental whenever
 * the rows have boxes, -1 = always full passes. Stats: FLOPs that full passes
 * of the perturbed rows would cost / that were computed, and rows evaluated
 * incrementally / by full passes, since the explainer was created or reset. */
void gb__explain_set_incremental(gb_explainer *e, int mode);
void gb__explain_incremental_stats(gb_explainer *e, bool reset, double *flops_full, double *flops_done,
                                   int64_t *rows_incr, int64_t *rows_full);

/* Shape of one item of tensor `name` (NULL = the input) at the current input
 * shape: *ndim and dims with dims[0] = 1 (from the last pass). *item_numel is
 * the product. GB_ERR_NOT_FOUND naming it if there is no such tensor. */
gb_status gb__explain_item_shape(gb_explainer *e, const char *name, int *ndim, int64_t *dims,
                                 int64_t *item_numel);

/* A new zero (N, item shape of `name`) float32 tensor for r->attr, with
 * r->attributed_to set (name, or the input's name for NULL). */
gb_status gb__explain_alloc_attr(gb_explainer *e, gb_explanation *r, const char *name);

/* Target resolution pieces (target.c). check_tensor validates the target
 * tensor T of a pass of `rows` rows (first: records its shape in r); block
 * turns t's index prefix into the (offset, r->target_count) block of an item;
 * values sums each row's block. */
gb_status gb__target_check_tensor(gb_ctx *ctx, gb_explanation *r, const gb_tensor *T, int64_t rows, bool first);
gb_status gb__target_block(gb_ctx *ctx, const gb_target *t, gb_explanation *r, int64_t *offset);
void gb__target_values(const gb_explanation *r, const gb_tensor *T, const int64_t *item_of_row, int64_t n_rows,
                       double *values);

/* Fill the per-item target seed for rows 0..n_rows-1 into seed (shape of the
 * target tensor for this pass; zeroed here). */
void gb__target_fill_seed(const gb_explanation *r, const int64_t *item_of_row, int64_t n_rows,
                          gb_tensor *seed);

/* ---- randomness: one generator per call, no global state --------------------------- */

typedef struct {
    uint64_t s[4];
    bool has_spare;
    double spare;
} gb__rng;

/* SplitMix64 expands the seed into xoshiro256**'s state (Blackman & Vigna). */
void gb__rng_seed(gb__rng *g, uint64_t seed);
uint64_t gb__rng_u64(gb__rng *g);
/* Uniform in [0, 1) with 53 random bits. */
double gb__rng_uniform(gb__rng *g);
/* Standard normal (Box-Muller, the second value kept for the next call). */
double gb__rng_normal(gb__rng *g);
/* Uniform integer in [0, n) (Lemire's rejection, unbiased). */
uint64_t gb__rng_below(gb__rng *g, uint64_t n);

/* ---- small shared helpers ------------------------------------------------------------- */

/* min and max of n floats. */
void gb__minmax(const float *x, int64_t n, float *lo, float *hi);
/* The method's effective defaults (0 / negative in o -> the documented default). */
int gb__opt_samples(const gb_explain_opts *o, int dflt);
double gb__opt_noise(const gb_explain_opts *o, double dflt);

#endif
