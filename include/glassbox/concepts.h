/*
 * concepts.h — which human concepts a network uses: a concept dataset in the
 * Broden format, Network Dissection, Net2Vec, CAV/TCAV and linear probes.
 *
 * A worked example (error checks shortened):
 *
 *     gb_scenes_opts so = {.count = 500, .size = 64, .seed = 1};
 *     gb_scenes_generate(ctx, "scenes", &so);            // a Broden-format dataset
 *     gb_broden *b;   gb_broden_open(ctx, "scenes", &b);
 *     const char *layers[] = {"relu3"};
 *     gb_dissect_opts o = {0};                           // paper defaults
 *     gb_dissect_result *r;
 *     gb_dissect(ctx, model, &pp, b, layers, 1, &o, &r);
 *     for (int u = 0; u < r->n_units; u++)
 *         printf("%d %s %.3f\n", r->units[u].unit,
 *                gb_broden_label_name(b, r->units[u].label), r->units[u].iou);
 *     gb_dissect_result_free(r); gb_broden_free(b);
 *
 * ---- The Broden format (Bau et al. 2017; NetDissect-Lite's loader) ----
 * A directory holding
 *   index.csv      header "image,split,ih,iw,sh,sw,<category>..." — one row
 *                  per image: its file under images/, its split ("train",
 *                  "val"), image size ih x iw, segmentation size sh x sw, and
 *                  per category a ';'-separated list of label PNGs (paths
 *                  under images/) or integers (a label for the whole image,
 *                  e.g. the scene). Empty = no label of that category.
 *   category.csv   name,first,last,count,frequency — the categories used.
 *   label.csv      number,name,category,frequency,coverage,syns — every label
 *                  number (1..L; 0 means "no label").
 *   c_<cat>.csv    code,number,name,frequency,coverage — the labels of one
 *                  category; NetDissect-Lite takes a label's primary category
 *                  as the one of largest coverage (ties: the later category).
 *   images/...     the images and the label PNGs. A label PNG (sh x sw)
 *                  encodes label number R + 256 * G at each pixel.
 * Category columns of index.csv that category.csv does not list are ignored,
 * as in NetDissect-Lite.
 */
#ifndef GLASSBOX_CONCEPTS_H
#define GLASSBOX_CONCEPTS_H

#include "glassbox/glassbox.h"
#include "glassbox/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Broden reader -------------------------------------------------------- */

typedef struct gb_broden gb_broden;

/* Read index.csv, category.csv, label.csv and the c_*.csv files of `dir`
 * (images are read later, one at a time). GB_ERR_IO for a missing file,
 * GB_ERR_FORMAT naming the file and line for a malformed one. The handle
 * keeps ctx for its messages. */
gb_status gb_broden_open(gb_ctx *ctx, const char *dir, gb_broden **out);
void gb_broden_free(gb_broden *b);

int gb_broden_size(const gb_broden *b);                  /* images */
int gb_broden_num_labels(const gb_broden *b);            /* max label number + 1 */
const char *gb_broden_label_name(const gb_broden *b, int label);   /* "" if unused */
int gb_broden_num_categories(const gb_broden *b);
const char *gb_broden_category_name(const gb_broden *b, int c);
/* The primary category of a label, -1 for 0 or an unknown number. */
int gb_broden_label_category(const gb_broden *b, int label);
/* The category index of `name`, -1 if absent. */
int gb_broden_category_find(const gb_broden *b, const char *name);

typedef struct {
    const char *image;       /* path under images/ (owned by the handle) */
    const char *split;       /* "train", "val", ... */
    int ih, iw, sh, sw;
} gb_broden_item;
gb_status gb_broden_item_info(const gb_broden *b, int i, gb_broden_item *out);
/* Decode image i (dir/images/<image>). */
gb_status gb_broden_image_load(const gb_broden *b, int i, gb_image **out);

/* The labels of one image: planes of per-pixel label numbers (one per label
 * PNG, in category order), and whole-image labels. Free with
 * gb_broden_seg_clear. */
typedef struct {
    int sh, sw;
    int n_planes;
    int32_t *planes;         /* (n_planes, sh, sw) label numbers, 0 = none */
    int n_scalars;
    int32_t *scalars;        /* whole-image label numbers */
} gb_broden_seg;
/* GB_ERR_FORMAT when a label PNG's size is not sh x sw. */
gb_status gb_broden_seg_load(const gb_broden *b, int i, gb_broden_seg *out);
void gb_broden_seg_clear(gb_broden_seg *s);
/* The first whole-image label of category `cat` (e.g. the scene), or 0. */
int32_t gb_broden_scalar_label(const gb_broden *b, int i, int cat);

/* ---- synthetic Broden-format scenes (glassbox concepts-gen) ---------------- */

typedef struct {
    int count;               /* images, >= 1 */
    int size;                /* side of the square images and masks; 0 = 64 */
    uint64_t seed;
    double val_fraction;     /* share of images in split "val"; 0 = 0.2 */
} gb_scenes_opts;

/* Write `count` scenes into `dir` (created if missing; files in it with the
 * same names are replaced) in the Broden format: images/NNNNNN.png with
 * label PNGs for the categories color, object, part and texture, and the
 * scene as an integer label. Each scene is a textured background and
 * objects with parts (house: wall, roof; tree: trunk, crown; snowman: head,
 * body; flag: pole, cloth; plus ball, box, kite without parts) painted in
 * named colors and textures (plain, stripes, dots, checkers, zigzag,
 * noise). A textured region alternates between two named colors, so every
 * pixel has exactly one color label; the texture label covers the region.
 * Image i depends only on (seed, i): a larger count extends a smaller one. */
gb_status gb_scenes_generate(gb_ctx *ctx, const char *dir, const gb_scenes_opts *o);

/* Scene names (the order of their labels), for the scene model's sidecar. */
int gb_scenes_num_scenes(void);
const char *gb_scenes_scene_name(int k);

/* ---- quantile sketch ------------------------------------------------------- */

/* A KLL sketch (Karnin, Lang & Liberty 2016): a stack of compactors whose
 * total size is at most about 3k values whatever the stream length, with
 * rank error about 1.7/k (k = 4096: < 0.05% of the count). Compaction keeps
 * the odd or even elements by a seeded coin, so results are reproducible. */
typedef struct gb_qsketch gb_qsketch;
gb_status gb_qsketch_create(gb_ctx *ctx, int k, uint64_t seed, gb_qsketch **out);
void gb_qsketch_free(gb_qsketch *q);
/* Add n values v[0], v[stride], ... (NaN are skipped). */
gb_status gb_qsketch_add(gb_qsketch *q, const float *v, int64_t n, int64_t stride);
/* The value of rank q * count (0 <= q <= 1); NaN when empty. */
double gb_qsketch_quantile(gb_qsketch *q, double q_rank);
int64_t gb_qsketch_count(const gb_qsketch *q);
/* Values held now (the memory bound). */
int64_t gb_qsketch_retained(const gb_qsketch *q);

/* ---- Network Dissection (Bau et al. 2017) ----------------------------------- */

typedef struct {
    double quantile;         /* top fraction defining T_k; 0 = 0.005 */
    double iou_threshold;    /* a unit is a detector above this; 0 = 0.04 */
    int batch;               /* images per forward pass; 0 = 16 */
    int top_n;               /* top images kept per unit; 0 = 6 */
    int sketch_k;            /* quantile sketch size; 0 = 4096 */
    int max_images;          /* 0 = all */
} gb_dissect_opts;

typedef struct {
    int layer;               /* index into the result's layers */
    int unit;                /* channel k */
    float threshold;         /* T_k */
    int label;               /* best label (0: none matched) */
    int category;            /* its category, -1 if none */
    double iou;              /* its IoU */
    double *cat_iou;         /* per category: best IoU ... */
    int *cat_label;          /* ... and its label */
    int n_top;
    int *top_images;         /* dataset indices, highest max activation first */
    float *top_values;
} gb_dissect_unit;

typedef struct {
    int n_layers;
    char **layers;
    int *layer_units;        /* units per layer */
    int *layer_h, *layer_w;  /* spatial size of each layer */
    int n_units;
    gb_dissect_unit *units;  /* layer by layer, unit by unit */
    int n_categories;        /* the dataset's */
    int n_images;
    double iou_threshold;
    double seconds_quantile, seconds_tally;
} gb_dissect_result;

/* Dissect the named 4-D tensors (N, K, h, w) of `m` on the images of `b`
 * prepared with `pp`. Two streamed passes over the data:
 *   1. per unit k, a quantile sketch of all activation values a_k(x, i, j)
 *      gives T_k with P(a_k > T_k) = quantile; the top_n images by max
 *      activation are kept;
 *   2. per image and unit, a_k is upsampled bilinearly to sh x sw
 *      (half-pixel centres, align_corners=False — what NetDissect-Lite's
 *      scipy imresize(mode='F') does: PIL's bilinear filter, which for
 *      enlargement is the same interpolation with clamped edges), M_k =
 *      a_up > T_k, and counts are accumulated exactly as NetDissect-Lite's
 *      tally: I[k][c] = pixels of M_k labelled c; L[c] = pixels labelled c
 *      (a whole-image label counts all sh*sw pixels); A[k][cat] = pixels of
 *      M_k in images where the fired region holds some label of category
 *      cat. IoU[k][c] = I / (A[k][cat(c)] + L[c] - I).
 * Memory is bounded by the sketches (units x ~3 sketch_k floats) and the
 * count tables, not by the dataset size. */
gb_status gb_dissect(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b,
                     const char *const *layers, int n_layers, const gb_dissect_opts *o,
                     gb_dissect_result **out);
void gb_dissect_result_free(gb_dissect_result *r);

/* Unique detectors of layer l and category cat: distinct labels among the
 * units whose best concept is in cat with IoU > r->iou_threshold. Also the
 * number of such units in *units when not NULL. */
int gb_dissect_unique_detectors(const gb_dissect_result *r, const gb_broden *b, int layer, int cat, int *units);

/* One strip of unit u's top images, each with the region M_k (a_up > T_k
 * at image resolution) outlined and the rest dimmed, side by side
 * (height = pp's height, width = n_top * (pp's width + 2)). Re-runs the
 * model on those images. */
gb_status gb_dissect_render_unit(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b,
                                 const gb_dissect_result *r, int u, gb_image **out);

/* ---- linear models (shared by Net2Vec, TCAV and probes) --------------------- */

typedef enum { GB_LINEAR_LOGISTIC, GB_LINEAR_SVM, GB_LINEAR_COUNT } gb_linear_kind;

typedef struct {
    gb_linear_kind kind;
    double l2;               /* weight decay; 0 = 1e-3 */
    int epochs;              /* 0 = 200 */
    double lr;               /* Adam step; 0 = 0.01 */
    uint64_t seed;
} gb_linear_opts;

/* Binary classifier on X (n, d) row-major with labels y in {0, 1}:
 * logistic regression (mean log-loss) or linear SVM (mean hinge loss), plus
 * l2/2 |w|^2, by full-batch Adam on standardized features; w (d) and *b are
 * returned in the original feature space: score = w . x + b, > 0 for 1. */
gb_status gb_linear_fit(gb_ctx *ctx, const float *X, const int *y, int64_t n, int64_t d,
                        const gb_linear_opts *o, float *w, float *b);
/* Softmax regression with K classes: W (K, d), bias (K); y in 0..K-1. */
gb_status gb_softmax_fit(gb_ctx *ctx, const float *X, const int *y, int64_t n, int64_t d, int K,
                         const gb_linear_opts *o, float *W, float *bias);
/* Accuracy of argmax(W x + b) (K >= 2), or of (w . x + b > 0) == y (K = 1). */
double gb_linear_accuracy(const float *X, const int *y, int64_t n, int64_t d, int K, const float *W,
                          const float *bias);

/* ---- CAV / TCAV (Kim et al. 2018) -------------------------------------------- */

typedef struct {
    gb_linear_opts linear;   /* the CAV classifier (default: logistic) */
    double test_fraction;    /* held out to report CAV accuracy; 0 = 0.33 */
    double alpha;            /* significance level; 0 = 0.05 */
} gb_tcav_opts;

typedef struct {
    int n_runs;              /* one per random set */
    double *scores;          /* TCAV_{C,k,l} per run (concept vs random_i) */
    double *accuracies;      /* held-out CAV accuracy per run */
    double *random_scores;   /* random_i vs random_{i+1}: the null */
    double mean, std, random_mean, random_std;
    double t, p_value;       /* two-sided two-sample t-test (equal variances) */
    int significant;         /* p < alpha */
    int64_t dim;             /* activation dimension */
} gb_tcav_result;

/* Layer activations of a batch x, flattened: (N, D) into *out. */
gb_status gb_layer_activations(gb_session *s, const gb_tensor *x, const char *layer, gb_tensor **out);
/* The CAV of pos vs neg activations (N, D): the normal of a linear
 * classifier, pointing to pos, unit length; accuracy on a held-out share. */
gb_status gb_cav_train(gb_ctx *ctx, const gb_tensor *pos, const gb_tensor *neg, const gb_tcav_opts *o,
                       float *cav, double *accuracy);
/* Directional derivatives S_{C,k,l}(x) = grad_{f_l(x)} h_k(f_l(x)) . v for
 * every item of x, and the TCAV score: the share with S > 0. */
gb_status gb_tcav_score(gb_session *s, const gb_tensor *x, const char *layer, int64_t target, const float *cav,
                        double *sens, double *score);
/* The whole test: concept vs each random set, random_i vs random_{i+1 mod
 * n} for the null (n_random >= 2), the t-test. */
gb_status gb_tcav(gb_ctx *ctx, gb_model *m, const char *layer, int64_t target, const gb_tensor *concept,
                  const gb_tensor *const *random, int n_random, const gb_tensor *class_x,
                  const gb_tcav_opts *o, gb_tcav_result *out);
void gb_tcav_result_clear(gb_tcav_result *r);
/* Two-sided p-value of Student's t with df degrees of freedom. */
double gb_student_t_p(double t, double df);

/* ---- linear probes (Alain & Bengio 2016) -------------------------------------- */

typedef struct {
    gb_linear_opts linear;   /* softmax training */
    int max_features;        /* layers are average-pooled to at most this; 0 = 4096 */
    int batch;               /* 0 = 32 */
    const char *label_category;  /* Broden category of the label; NULL = "scene" */
    int max_images;          /* 0 = all */
} gb_probe_opts;

typedef struct {
    int n_layers;
    char **layers;
    int64_t *dims;           /* features the probe saw */
    double *train_acc, *test_acc;
    int n_train, n_test, n_classes;
} gb_probe_result;

/* Train a softmax probe per layer (the graph input's name probes the
 * pixels: the logistic-regression baseline) on the split "train" images of
 * b and test on the rest. */
gb_status gb_probe(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b,
                   const char *const *layers, int n_layers, const gb_probe_opts *o, gb_probe_result **out);
void gb_probe_result_free(gb_probe_result *r);

/* ---- Net2Vec (Fong & Vedaldi 2018) --------------------------------------------- */

typedef struct {
    gb_linear_opts linear;
    int max_images;          /* images used (half train, half test); 0 = 400 */
    int min_pixels;          /* concepts with fewer labelled pixels are skipped; 0 = 100 */
} gb_net2vec_opts;

typedef struct {
    int label;
    double seg_iou;          /* learned combination, set IoU on the test half */
    double best_unit_iou;    /* best single unit (its own top-quantile threshold) */
    int best_unit;
    double cls_acc;          /* presence classification accuracy, test half */
    double best_unit_cls_acc;
} gb_net2vec_concept;

typedef struct {
    int n_concepts;
    gb_net2vec_concept *concepts;
    int units;
} gb_net2vec_result;

/* Fit and evaluate Net2Vec for every concept with at least min_pixels
 * labelled pixels in the training half (even-numbered images; odd ones
 * test) on `layer` (N, K, h, w). Segmentation weights are fitted at the
 * layer's resolution against the share of concept pixels per cell
 * (> 0.5), with the paper's class-balanced loss, on at most 16k cells;
 * the defaults are 300 Adam steps of 0.05. The activations of the used
 * images are held in memory (max_images bounds them). */
gb_status gb_net2vec(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b, const char *layer,
                     const gb_net2vec_opts *o, gb_net2vec_result **out);
void gb_net2vec_result_free(gb_net2vec_result *r);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_CONCEPTS_H */
