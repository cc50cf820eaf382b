/* perturb.h — what the perturbation methods share (private to
 * src/methods/perturb*.c): the baseline, feature masks, building perturbed
 * rows a batch at a time and running them through
 * gb__explain_forward_perturbed (methods.h), progress, writing attributions.
 *
 * Every method evaluates "rows": copies of one item of x in which some
 * elements take the baseline's value (or, for RISE, a blend). Rows are built
 * pt->B at a time into pt->rows and run by pt_pass, so memory stays at
 * B rows whatever the number of samples. */
#ifndef GB_PERTURB_H
#define GB_PERTURB_H

#include "methods/methods.h"
#include "engine/ir.h"

typedef struct {
    gb_explainer *e;
    const gb_tensor *x;
    const gb_explain_opts *o;
    gb_explanation *r;
    int64_t N, D;         /* items, elements per item */
    bool image;           /* 4-D input: C, H, W below are known */
    bool nhwc;            /* o->layout: element (c, h, w) of an item at h W C + w C + c */
    int64_t C, H, W;
    float *base;          /* (N, D) the baseline x' per item */
    int64_t B;            /* rows per pass */
    float *rows;          /* (B, D) */
    int64_t *items;       /* (B,) the item of each row */
    int64_t *boxes;       /* (B, 4) h0, h1, w0, w1 of each row's changed pixels */
    double *vals;         /* (B,) f_item(row) after pt_pass */
    int64_t done, total;  /* rows for progress */
} pt_run;

/* The features of one item: M groups of elements. */
typedef struct {
    int64_t M;
    int64_t *start;       /* (M + 1,) feature m's elements are elem[start[m] .. start[m + 1]) */
    int64_t *elem;        /* (D,) element indices grouped by feature, increasing within each */
    int64_t *box;         /* (M, 4) bounding box h0, h1, w0, w1 (image inputs; else NULL) */
    int64_t *label;       /* (L,) the compact label map as used (L = H W or D) */
    bool spatial;         /* label is (H, W), broadcast over channels */
} pt_features;

/* Set up pt for x (checks the baseline kind, builds it, allocates B rows). */
gb_status pt_begin(pt_run *pt, gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r);
void pt_end(pt_run *pt);

/* Run rows [0, b) of pt->rows (items pt->items, boxes pt->boxes if with_boxes
 * else none): fills pt->vals, advances progress. */
gb_status pt_pass(pt_run *pt, int64_t b, bool with_boxes);

/* Row k of pt->rows set to item n of x / of the baseline. */
void pt_row_x(pt_run *pt, int64_t k, int64_t n);
void pt_row_base(pt_run *pt, int64_t k, int64_t n);
/* Feature m of row k set to the baseline / to x (item n). */
void pt_feature_base(pt_run *pt, const pt_features *f, int64_t k, int64_t n, int64_t m);
void pt_feature_x(pt_run *pt, const pt_features *f, int64_t k, int64_t n, int64_t m);

/* f_n(x') for every item, in one pass of N rows; vals (N,). */
gb_status pt_baseline_values(pt_run *pt, double *vals);

/* The feature mask of item n (o->feature_mask, o->grid, or SLIC). */
gb_status pt_features_make(pt_run *pt, int64_t n, pt_features *f);
void pt_features_free(pt_features *f);
/* All items' features (array of N), with r->features recorded. */
gb_status pt_features_all(pt_run *pt, pt_features **out);
void pt_features_all_free(pt_run *pt, pt_features *fs);

/* Item n of r->attr: phi[m] on every element of feature m. */
void pt_attr_features(pt_run *pt, int64_t n, const pt_features *f, const double *phi);

/* Methods in the other files of the family. */
gb_status gb__perturb_lime(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r);
gb_status gb__perturb_kernel_shap(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r);
gb_status gb__perturb_rise(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r);

#endif
