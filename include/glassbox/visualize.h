/*
 * visualize.h — open the box and look: what hidden layers hold, as images.
 *
 *   features   the activations of any tensor for an input, per-channel
 *              statistics, a mosaic of channel maps, each unit's receptive
 *              field, and the dataset items that most activate a unit;
 *   maximize   activation maximization (Erhan et al. 2009; Simonyan et al.
 *              2014; Yosinski et al. 2015; Olah et al. 2017): the input that
 *              maximizes a unit, a channel, a layer direction or a class logit;
 *   invert     network inversion (Mahendran & Vedaldi 2015): an input whose
 *              representation at a layer matches a given one, optionally
 *              after perturbing the features (Dosovitskiy & Brox 2016);
 *   decoder    a learned up-convolutional decoder from a layer's features
 *              back to images (Dosovitskiy & Brox 2016), trained with
 *              glassbox's own trainer (train.h) and saved as ONNX.
 *
 * A worked example (error checks shortened):
 *
 *     gb_session *s;  gb_session_create(model, &s);
 *     gb_vis_objective obj = { .kind = GB_VIS_OBJ_CLASS, .index = 7 };  // logit 7
 *     gb_maximize_opts o = GB_MAXIMIZE_OPTS_INIT;     // Fourier image, jitter, 256 steps
 *     o.seed = 1;
 *     gb_tensor *x;   gb_maximize(s, &pp, &obj, 1, &o, &x, NULL);   // (1, C, H, W) model input
 *     gb_image *img;  gb_preproc_inverse(ctx, &pp, x, 0, &img);     // what it looks like
 *
 * Spaces. Every function here works on the MODEL INPUT x (what gb_preproc
 * produces: x = (pixel / scale - mean) / std). The Fourier image
 * parameterization lives in the pixel range v = pixel / 255 in [0, 1] and is
 * mapped to x through the preprocessing `pp` (NULL: x = v). Results are
 * model inputs, ready for gb_session_run or `glassbox predict --input`.
 *
 * Determinism: every random choice (initial noise, jitter, dropout masks)
 * comes from a generator seeded by opts.seed; kernels split work
 * deterministically, so a seed reproduces a result bit for bit with the same
 * thread count.
 */
#ifndef GLASSBOX_VISUALIZE_H
#define GLASSBOX_VISUALIZE_H

#include "glassbox/glassbox.h"
#include "glassbox/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- units -------------------------------------------------------------------- */

#define GB_VIS_NAME_MAX 512

/* A unit of a tensor: channel c of T (c, and h, w when has_hw). */
typedef struct {
    char tensor[GB_VIS_NAME_MAX];
    int64_t channel;
    int has_hw;
    int64_t h, w;
} gb_vis_unit;

/* Parse "TENSOR:c" or "TENSOR:c,h,w" (the last ':' splits; tensor names may
 * contain ':' and '/'). GB_ERR_ARG with a message on a malformed spec. */
gb_status gb_vis_unit_parse(gb_ctx *ctx, const char *spec, gb_vis_unit *out);

/* ---- features ------------------------------------------------------------------- */

/* Run the session on x and return a copy of tensor `layer` (an ONNX value
 * name or node name, as `glassbox info` shows; the graph input's name gives
 * x itself). *out is a new float32 tensor the caller frees. */
gb_status gb_features_compute(gb_session *s, const gb_tensor *x, const char *layer, gb_tensor **out);

/* Statistics of each channel of batch item `item` of an activation of shape
 * (N, C, ...) (a (N, C) tensor has one value per channel). */
typedef struct {
    double mean, std, min, max;
    double frac_positive;   /* share of the map's values > 0 (a ReLU's "alive" rate) */
    int64_t argmax;         /* flat position of the maximum within the channel's map */
} gb_feature_stats;

/* stats: C entries (C = act->dims[1]). */
gb_status gb_features_stats(gb_ctx *ctx, const gb_tensor *act, int64_t item, gb_feature_stats *stats);

/* The channels of item `item` ordered by decreasing mean activation (ties:
 * lower index first). order: C entries. */
gb_status gb_features_order(gb_ctx *ctx, const gb_tensor *act, int64_t item, int64_t *order);

/* A mosaic of channel maps of item `item`: the listed channels (in that
 * order) as a grid of ceil(sqrt(n)) columns, each map magnified
 * nearest-neighbour by `cell_scale` (0: the smallest factor giving a cell of
 * at least 48 pixels), separated by 2 white pixels, coloured with viridis.
 * shared_scale != 0: one colour range [min, max] over all shown channels
 * (their maps compare); 0: each map stretched over its own range. A (N, C)
 * activation shows one 1x1 cell per channel. Output: packed RGB. */
gb_status gb_features_mosaic(gb_ctx *ctx, const gb_tensor *act, int64_t item, const int64_t *channels, int n,
                             int cell_scale, int shared_scale, gb_image **out);

/* The receptive field of a tensor's units in the graph input, per spatial
 * axis (0 = H, 1 = W), in the notation of Araujo et al. 2019 ("Computing
 * receptive fields of convolutional neural networks", eq. 2-3): unit i's
 * field is centred at start + i * jump and spans `size` input pixels.
 * Computed by walking the graph from the input: Conv, MaxPool, AveragePool
 * (kernel, stride, pads, dilations) compose; elementwise ops take the
 * largest field of their inputs; any other op that keeps the map (BN,
 * activations, Concat) passes it on; an op that mixes all positions
 * (GlobalAveragePool, Gemm, Resize, Flatten...) makes it the whole input
 * (whole = 1). */
typedef struct {
    int whole;              /* every unit sees the whole input */
    double start[2];        /* centre of unit 0's field, input pixels */
    double jump[2];         /* distance between neighbouring units' centres */
    double size[2];         /* field size */
} gb_receptive_field;

gb_status gb_receptive_field_of(const gb_model *m, const char *tensor, gb_receptive_field *out);

/* Unit (h, w)'s field, clipped to an in_h x in_w input, as a half-open box
 * {y0, y1, x0, x1}. */
void gb_receptive_field_box(const gb_receptive_field *rf, int64_t h, int64_t w, int64_t in_h, int64_t in_w,
                            int64_t box[4]);

/* Score every item of a batch x (N, ...) for a unit: its value when the unit
 * has (h, w), else the maximum over channel c's map; *pos receives the flat
 * spatial position of the scored value (h * W + w). scores, pos: N entries. */
gb_status gb_features_unit_scores(gb_session *s, const gb_tensor *x, const gb_vis_unit *unit, double *scores,
                                  int64_t *pos);

/* ---- objectives -------------------------------------------------------------- */

typedef enum {
    GB_VIS_OBJ_CLASS,       /* logit `index` of tensor (NULL: graph output 0), item n: T[n, index] */
    GB_VIS_OBJ_NEURON,      /* one unit T[n, index, h, w] */
    GB_VIS_OBJ_CHANNEL,     /* channel mean: mean_hw T[n, index, h, w] (Olah et al. 2017) */
    GB_VIS_OBJ_DIRECTION,   /* layer direction: mean_hw sum_c d_c T[n, c, h, w] */
    GB_VIS_OBJ_COUNT
} gb_vis_obj_kind;

typedef struct {
    gb_vis_obj_kind kind;
    const char *tensor;          /* NULL: graph output 0 */
    int64_t index;               /* class or channel */
    int64_t h, w;                /* NEURON */
    const float *direction;      /* DIRECTION: C weights */
    int64_t n_direction;
    double weight;               /* this term's weight; 0 means 1 */
} gb_vis_objective;

/* ---- activation maximization ------------------------------------------------- */

typedef enum {
    GB_VIS_PARAM_FOURIER,   /* lucid's fft_image + decorrelated colour + sigmoid (Olah et al. 2017) */
    GB_VIS_PARAM_PIXEL,     /* the model input x itself (Simonyan et al. 2014; Yosinski et al. 2015) */
    GB_VIS_PARAM_COUNT
} gb_vis_param;

typedef enum { GB_VIS_OPTIM_ADAM, GB_VIS_OPTIM_SGD, GB_VIS_OPTIM_COUNT } gb_vis_optim;

typedef struct gb_maximize_opts {
    gb_vis_param param;
    gb_vis_optim optimizer;      /* Adam (lucid) or plain gradient ascent */
    int steps;
    double lr;
    uint64_t seed;
    int n_images;                /* images optimized together (diversity needs >= 2) */
    /* Fourier parameterization (lucid's fft_image and to_valid_rgb): */
    double init_sd;              /* std of the initial spectrum (FOURIER) or of x (PIXEL, around 0) */
    double decay_power;          /* spectrum scale 1 / max(f, 1/max(H,W))^decay_power */
    int decorrelate;             /* 3-channel images: lucid's colour correlation matrix */
    /* regularizers, all on the model input x: */
    double l2;                   /* - l2 * sum x^2 (Simonyan et al. 2014, eq. 1) */
    double tv;                   /* - tv * sum ((dx_h^2 + dx_w^2) ^ (tv_beta / 2)) (Mahendran & Vedaldi 2015) */
    double tv_beta;
    double blur_sigma;           /* PIXEL: Gaussian blur of x every blur_every steps (Yosinski et al. 2015) */
    int blur_every;
    double clip_percentile;      /* PIXEL: after each step, pixels whose contribution sum_c |x * grad|
                                    is below this percentile are set to 0 (Yosinski et al. 2015); 0 = off */
    double clip_range;           /* PIXEL: clamp x to the preprocessed image of [0, 255] when != 0 */
    /* random transformations before each forward pass (Mordvintsev et al.
     * 2015; Olah et al. 2017): one affine warp, bilinear, the outside
     * filled with mid-gray: */
    double jitter;               /* translation, uniform in +-jitter pixels */
    double scale_jitter;         /* scale uniform in [1 - s, 1 + s] */
    double rotate_deg;           /* rotation uniform in +-rotate_deg degrees */
    /* diversity (Olah et al. 2017, "Diversity"): - diversity * the mean
     * pairwise cosine similarity of the images' Gram matrices at
     * diversity_layer (NULL: the first objective's tensor) */
    double diversity;
    const char *diversity_layer;
} gb_maximize_opts;

#define GB_MAXIMIZE_OPTS_INIT                                                                           \
    { .param = GB_VIS_PARAM_FOURIER, .optimizer = GB_VIS_OPTIM_ADAM, .steps = 256, .lr = 0.05, .seed = 0, \
      .n_images = 1, .init_sd = 0.01, .decay_power = 1.0, .decorrelate = 1, .l2 = 0, .tv = 0,            \
      .tv_beta = 2.0, .blur_sigma = 0, .blur_every = 4, .clip_percentile = 0, .clip_range = 0,           \
      .jitter = 0, .scale_jitter = 0, .rotate_deg = 0, .diversity = 0, .diversity_layer = NULL }

/* Synthesize the input maximizing sum_i weight_i * objective_i minus the
 * regularizers, by gradient ascent from noise. The input's shape is pp's
 * (C, H, W) (pp NULL: the model's first input, whose C, H, W must be
 * static; x = v then); pp must be NCHW. *x_out: a new (n_images, C, H, W)
 * float32 tensor of model inputs (with no transformation applied).
 * final (may be NULL): n_images values of the weighted objective at x_out.
 * The session is switched to keeping activations. Errors: GB_ERR_ARG for
 * bad options or objectives (named), GB_ERR_NOT_FOUND for an unknown
 * tensor. */
gb_status gb_maximize(gb_session *s, const gb_preproc *pp, const gb_vis_objective *obj, int n_obj,
                      const gb_maximize_opts *o, gb_tensor **x_out, double *final);

/* ---- inversion ------------------------------------------------------------------ */

typedef enum {
    GB_PERTURB_NONE,
    GB_PERTURB_BINARIZE,    /* signs kept, equal magnitudes, same L2 norm (Dosovitskiy & Brox 2016, sec. 5.2) */
    GB_PERTURB_DROPOUT,     /* drop a share p of the values, rescale the rest by 1 / (1 - p) */
    GB_PERTURB_COUNT
} gb_feature_perturb;

/* Perturb features in place, per batch item. Binarize: each non-zero value
 * becomes sign(v) * a with a = ||f|| / sqrt(count of non-zeros) (for
 * non-negative ReLU features this keeps the pattern of active units and
 * nothing of their magnitudes). Dropout: each value is zeroed with
 * probability p (0 = 0.5) from a generator seeded with seed. */
gb_status gb_features_perturb(gb_ctx *ctx, gb_tensor *feat, gb_feature_perturb kind, double p, uint64_t seed);

typedef struct gb_invert_opts {
    int steps;
    double lr;                   /* Adam's step, as a fraction of B (below) */
    uint64_t seed;
    double init_sd;              /* std of the initial noise around mid-gray, as a fraction of B */
    double alpha;                /* alpha-norm exponent (paper: 6) */
    double alpha_weight;         /* lambda_alpha on R_alpha(x) / (HW B^alpha) */
    double tv_weight;            /* lambda_V on R_V^beta(x) / (HW V^beta) */
    double tv_beta;              /* paper: 2 */
    double jitter;               /* pixels of random translation per step (0 = none) */
    double clip_range;           /* != 0: clamp x to the preprocessed [0, 255] after each step */
} gb_invert_opts;

#define GB_INVERT_OPTS_INIT                                                                                 \
    { .steps = 300, .lr = 0.05, .seed = 0, .init_sd = 0.1, .alpha = 6.0, .alpha_weight = 0.01, .tv_weight = 0.01, \
      .tv_beta = 2.0, .jitter = 0, .clip_range = 1 }

/* Network inversion (Mahendran & Vedaldi 2015, eq. 1 and 3):
 *   x* = argmin_x ||phi(x) - phi0||^2 / ||phi0||^2 + lambda_alpha R_alpha(x) + lambda_V R_V^beta(x)
 * with R_alpha(x) = sum |x|^alpha / (H W B^alpha) and
 * R_V^beta(x) = sum ((x_{i,j+1} - x_ij)^2 + (x_{i+1,j} - x_ij)^2)^(beta/2) / (H W V^beta),
 * B the largest |x| of the preprocessed [0, 255] image range and V = B / 6.5
 * (the paper's normalization, sec. 3.3), from noise, by Adam.
 * phi0: the target representation at `layer`, shape (1, ...) as
 * gb_features_compute returns it. pp gives the input's shape and range as
 * for gb_maximize. *x_out: a new (1, C, H, W) tensor; loss (may be NULL):
 * the final normalized feature distance ||phi(x) - phi0||^2 / ||phi0||^2. */
gb_status gb_invert(gb_session *s, const gb_preproc *pp, const char *layer, const gb_tensor *phi0,
                    const gb_invert_opts *o, gb_tensor **x_out, double *loss);

/* ---- a learned decoder for inversion (Dosovitskiy & Brox 2016, "UpconvNet") ---- */

/* Train `decoder` (an ONNX network from features to images: input 0 takes
 * the representation at `layer` of the model run by `s`, output 0 has the
 * model input's shape) to reconstruct images from their features:
 *   min_theta mean ||D_theta(phi(x)) - x||^2    (D&B 2016, eq. 1, in x space)
 * with glassbox's own trainer (gb_train_step, Adam). `images` is an
 * (N, C, H, W) batch of model inputs; each step draws `batch` of them
 * without replacement (reshuffled each epoch) from a generator seeded with
 * `seed`. losses (may be NULL): `steps` values, the loss of each step. The
 * decoder's parameters are updated in place: save them with
 * gb_model_save_params. */
typedef struct {
    int steps;          /* default 2000 */
    int batch;          /* default 64 */
    double lr;          /* Adam; default 1e-3 */
    uint64_t seed;
} gb_decoder_train_opts;

gb_status gb_decoder_train(gb_session *s, const char *layer, gb_model *decoder, const gb_tensor *images,
                           const gb_decoder_train_opts *o, double *losses);

/* Decode features (1, ...) with a trained decoder: *x_out is a new tensor,
 * the decoder's output 0. */
gb_status gb_decoder_invert(gb_model *decoder, const gb_tensor *features, gb_tensor **x_out);

/* Write `m` to out_path as the ONNX file src_path (the file m was loaded
 * from) with every float32 initializer replaced by m's current values, so
 * a model trained in place (train.h) can be saved. Atomic (no partial file).
 * GB_ERR_SHAPE if an initializer's size differs from the model's. */
gb_status gb_model_save_params(gb_model *m, const char *src_path, const char *out_path);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_VISUALIZE_H */
