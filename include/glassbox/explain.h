/*
 * explain.h — attribution methods: which input features (or which units of a
 * hidden tensor) drove one output of a model.
 *
 * A worked example (error checks shortened; every function returns a
 * gb_status and leaves a one-line message on the context):
 *
 *     gb_model *m;      gb_model_load(ctx, "net.onnx", &m);
 *     gb_explainer *e;  gb_explainer_create(ctx, m, &e);
 *     gb_tensor *x = ...;                     // (N, C, H, W) float32, the model's input
 *     gb_explain_opts o = GB_EXPLAIN_OPTS_INIT;   // target: each item's top-1 class
 *     gb_target_parse(ctx, "3", GB_TARGET_OUTPUT, &o.target);   // or: logit 3
 *     o.n_steps = 64;
 *     gb_explanation *r;
 *     if (gb_explain(e, "integrated_gradients", x, &o, &r) == GB_OK)
 *         printf("f(x) = %g, delta = %g\n", r->value[0], r->delta[0]);
 *     ...r->attr is (N, C, H, W): draw it with gb_heatmap_panel, mode r->mode...
 *     gb_explanation_free(r); gb_explainer_free(e); gb_model_free(m);
 *
 * ---- The quantity explained: a target ----
 * Every method explains a scalar per batch item n:
 *     f_n(x) = sum of tensor T[n, i0, ..., ik, *]
 * the sum of one block of T's item n: the indices after the batch dimension
 * form a prefix (i0..ik), and the dimensions after it are summed over (none
 * when all are given: one element). T is any tensor of the graph — a graph
 * output (a logit, a regression head, a detection score) or a hidden
 * activation (a neuron) — named as `glassbox info` shows it (value name or
 * node name). Spelled on the command line:
 *   (nothing)          each item's top-1 class: the largest element of item n
 *                      of the first graph output (ties: the first)
 *   --target K         element K of the first graph output, (N, K...) -> T[n, K]
 *   --target OUT:i,j   element (i, j) of graph output OUT after the batch dim
 *   --target OUT       all of item n of OUT summed (a (N,) or (N, 1)
 *                      regression output: its value)
 *   --neuron T:c       channel c of tensor T, summed over its map: T[n, c, *, *]
 *   --neuron T:c,h,w   one unit T[n, c, h, w]
 * Indices must be in range for T's shape (checked after the first forward
 * pass: GB_ERR_ARG naming the tensor, the index and the shape); at most
 * ndim(T) - 1 of them. The gradient seed is 1 on the selected elements of
 * item n and 0 elsewhere, so every item of a batch has its own target.
 *
 * ---- Methods (gb_explain's `method`; gb_method_find lists them) ----
 * Gradient family (src/methods/gradient.c, integrated.c). x is the input,
 * f the target, grad = df/dx; "rows" are the points where grad is evaluated,
 * run o.batch at a time (rows of several items may share one pass).
 *   saliency              grad (Simonyan et al. 2014), signed. The usual
 *                         view — max over channels of |grad| — is the
 *                         heatmap's magnitude mode (mode = MAGNITUDE).
 *   input_x_gradient      x * grad (Shrikumar et al. 2016), signed.
 *   smoothgrad            mean over s = 1..S of grad(x + eps_s)
 *   smoothgrad_sq         mean of grad(x + eps_s)^2
 *   vargrad               variance of grad(x + eps_s): mean(g^2) - mean(g)^2
 *                         (Smilkov et al. 2017; Adebayo et al. 2018 for
 *                         VarGrad), eps_s ~ N(0, sigma^2) per element,
 *                         sigma = o.noise * (max(x_n) - min(x_n)) per item,
 *                         S = o.n_samples. As Captum's NoiseTunnel with
 *                         nt_type smoothgrad / smoothgrad_sq / vargrad over
 *                         Saliency(abs=False).
 *   integrated_gradients  (Sundararajan et al. 2017, eq. 3)
 *                         (x - x') * sum_k w_k grad(x' + a_k (x - x'))
 *                         with the step sizes w_k and alphas a_k of
 *                         o.integration, exactly Captum's
 *                         approximation_methods.py (n = o.n_steps):
 *                           riemann_left    w = 1/n, a = linspace(0, 1 - 1/n, n)
 *                           riemann_right   w = 1/n, a = linspace(1/n, 1, n)
 *                           riemann_middle  w = 1/n, a = linspace(1/2n, 1 - 1/2n, n)
 *                           riemann_trapezoid w = 1/n with w_1 and w_n halved,
 *                                           a = linspace(0, 1, n) (Captum's
 *                                           weights: they sum to 1 - 1/n)
 *                           gausslegendre   w = leggauss(n) weights / 2,
 *                                           a = (leggauss(n) nodes + 1) / 2
 *                         Riemann methods need n >= 2. Reports per item the
 *                         completeness delta
 *                           delta = sum(attr) - (f(x) - f(x'))
 *                         and f(x') (baseline_value).
 *   gradient_shap         expected gradients (Lundberg & Lee 2017; Erion et
 *                         al. 2019) as Captum's GradientShap: S = o.n_samples
 *                         draws per item of a baseline b from the baseline
 *                         set, alpha ~ U(0, 1) and noise eps ~ N(0, sigma^2)
 *                         (sigma = o.noise * range, default 0);
 *                           x~ = x + eps,  attr = mean_s (x~ - b) grad(b + alpha (x~ - b)).
 *                         delta as IG, against the mean of f(b) (Captum's).
 *   guided_backprop       grad with gb_rule_guided_relu (Springenberg et al. 2015)
 *   deconvnet             grad with gb_rule_deconvnet_relu (Zeiler & Fergus
 *                         2014): through each ReLU the backward signal is
 *                         rectified; max-pooling routes it through the
 *                         forward pass's switches and convolutions are
 *                         transposed with the same filters — which is what
 *                         the ops' own backward passes do.
 * CAM family (src/methods/cam.c): cam, gradcam, gradcam_pp, score_cam,
 *   guided_gradcam — see that file. The attr of cam, gradcam, gradcam_pp and
 *   score_cam is (N, 1, H, W): the map upsampled bilinearly to the input's
 *   spatial size (o.upsample), or the layer's (N, 1, h, w) without it;
 *   guided_gradcam's has the input's shape (guided backprop x Grad-CAM).
 *
 * Perturbation family (src/methods/perturb.c, perturb_surrogate.c,
 *   perturb_rise.c; docs/perturb.md): forward passes only, on copies of x
 *   with parts replaced by the baseline (GB_BASELINE_ZERO or _TENSOR):
 *   occlusion (Zeiler & Fergus 2014, as Captum's Occlusion: o.window,
 *   o.stride), feature_ablation, shapley_sampling (Strumbelj & Kononenko
 *   2010), lime (Ribeiro et al. 2016, as Captum's Lime), kernel_shap (Lundberg
 *   & Lee 2017, efficiency exact) over a feature mask (o.feature_mask, o.grid
 *   or SLIC superpixels: segment.h), and rise (Petsiuk et al. 2018). attr has
 *   the input's shape (a feature's value on each of its elements).
 *   kernel_shap and shapley_sampling report delta = sum of the feature values
 *   - (f(x) - f(x')) and baseline_value. o.n_samples: masks (rise),
 *   coalitions (lime, kernel_shap), default 1000; permutations
 *   (shapley_sampling), default 25.
 *
 * Relevance family (src/methods/lrp.c, deeplift.c; docs/relevance.md): backward
 *   passes under replaced rules (gb_rule), attr has the input's (or o.layer's)
 *   shape, delta is reported.
 *   lrp            Layer-wise Relevance Propagation (Bach et al. 2015; Montavon
 *                  et al. 2019): R = f(x) enters at the target and is mapped
 *                  layer by layer with Zennit's rules and composites
 *                  (o.lrp_composite / lrp_rule / lrp_first_rule); BatchNorm is
 *                  folded into the layer before it; residual Adds and average
 *                  pools split R in proportion to the contributions; max-pools
 *                  pass it to the winner; a product with a sigmoid gate (SiLU,
 *                  squeeze-excitation) gives it all to the signal (Arras et al.
 *                  2017). With o.layer: the relevance at that
 *                  tensor. delta = sum(attr) - f(x) (0 for LRP-0 on a bias-free
 *                  ReLU network). baseline_value = 0.
 *   deeplift       DeepLIFT (Shrikumar et al. 2017), Rescale rule (or RevealCancel,
 *                  o.deeplift_rule, for nonlinearities fed by a layer), against the
 *                  reference o.baseline (zero, blur, uniform, tensor (1, ...) or
 *                  (N, ...)): attr = (x - x') * multipliers, summing to
 *                  f(x) - f(x') (delta); Captum's maxpool rule; Mul of two
 *                  activations split exactly. With o.layer: (y - y') * m_y.
 *   deeplift_shap  DeepLIFT averaged over every reference of a set (K, ...)
 *                  (Captum's DeepLiftShap); baseline_value = mean f(x').
 *
 * Baselines x' (IG; the set gradient_shap draws from), by o.baseline:
 *   GB_BASELINE_ZERO     all zeros (in the model's input space, i.e. after
 *                        normalisation).
 *   GB_BASELINE_BLUR     x blurred over its two spatial dimensions by a
 *                        Gaussian of o.blur_sigma pixels (<= 0: max(H, W) / 8),
 *                        kernel radius ceil(3 sigma), edges replicated
 *                        (o.layout says which dimensions are spatial).
 *   GB_BASELINE_UNIFORM  uniform noise in [min(x_n), max(x_n)] per item
 *                        (one draw for IG; gradient_shap draws one per
 *                        sample).
 *   GB_BASELINE_TENSOR   o.baseline_tensor: one item's shape (1, ...) or the
 *                        input's (N, ...); for gradient_shap, a set (K, ...)
 *                        that the draws pick from uniformly.
 *
 * Layer attribution (o.layer = a tensor name): the attribution is to that
 * hidden tensor instead of the input; attr has the tensor's shape (N, ...).
 *   saliency, guided_backprop, deconvnet   d f / d layer
 *   input_x_gradient      layer * d f / d layer (Captum's LayerGradientXActivation)
 *   smoothgrad, _sq, vargrad  noise on the input, gradients at the layer
 *   integrated_gradients  layer conductance (Dhamdhere et al. 2018), as
 *                         Captum's LayerConductance: with alphas a_0..a_n of
 *                         o.integration for n + 1 points,
 *                         sum_k grad_y(x_k) (y(x_{k+1}) - y(x_k)), x_k =
 *                         x' + a_k (x - x'). (Captum's LayerIntegratedGradients
 *                         needs to overwrite the layer's activation during the
 *                         forward pass, which the engine does not offer.)
 *   gradient_shap         Captum's LayerGradientShap: (y(x~) - y(b)) times
 *                         the layer gradient at the interpolated input.
 *
 * Randomness: every draw comes from a generator seeded by o.seed (SplitMix64
 * into xoshiro256**, Gaussians by Box-Muller), owned by the call — no global
 * state; the same seed, input and options give the same draws whatever the
 * batch size (o.batch) and thread count, and so the same result up to float
 * rounding (BLAS may sum in another order for another batch size); the same
 * batch size gives the same bytes. For tests, o.fixed_* replace the draws.
 *
 * Models: the explained input is the model's first graph input; models with
 * more than one input are refused (GB_ERR_UNSUPPORTED). The input tensor x
 * must be float32 with the input's declared rank and static dims. A model
 * whose batch dimension is static (e.g. 1) is run that many rows at a time
 * (padded with copies when needed).
 */
#ifndef GLASSBOX_EXPLAIN_H
#define GLASSBOX_EXPLAIN_H

#include "glassbox/glassbox.h"
#include "glassbox/heatmap.h"
#include "glassbox/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- targets ---------------------------------------------------------------- */

#define GB_TARGET_NAME_MAX 256

typedef enum {
    GB_TARGET_TOP1,      /* each item's top-1 element of the first graph output */
    GB_TARGET_OUTPUT,    /* --target: an element (or block) of a tensor, default the first output */
    GB_TARGET_NEURON,    /* --neuron: a unit or channel of any tensor */
    GB_TARGET_COUNT
} gb_target_kind;

typedef struct gb_target {
    gb_target_kind kind;
    char tensor[GB_TARGET_NAME_MAX];   /* "" = the first graph output */
    int n_index;                       /* indices after the batch dimension (0..GB_MAX_DIMS-1) */
    int64_t index[GB_MAX_DIMS];
} gb_target;

/* A default target: each item's top-1 class. */
void gb_target_default(gb_target *t);

/* Parse a command-line target spec (see the grammar above) into *out.
 *   kind GB_TARGET_OUTPUT ("--target"): "K", "NAME", "NAME:i,j,..."
 *   kind GB_TARGET_NEURON ("--neuron"): "NAME:c" or "NAME:c,h,w" (a name and
 *        at least one index are required)
 * The name is everything before the LAST ':' (ONNX names may contain ':').
 * Indices are non-negative decimal integers. GB_ERR_ARG with a message
 * quoting the spec on anything else (empty name, empty or negative index,
 * trailing comma, too many indices, a name over GB_TARGET_NAME_MAX - 1). */
gb_status gb_target_parse(gb_ctx *ctx, const char *spec, gb_target_kind kind, gb_target *out);

/* "top-1 of logits", "logits[3]", "conv2[5,*,*]"... into buf (NUL-terminated). */
void gb_target_str(const gb_target *t, char *buf, size_t cap);

/* ---- options ------------------------------------------------------------------ */

typedef enum {
    GB_INTEGRATION_RIEMANN_LEFT,
    GB_INTEGRATION_RIEMANN_RIGHT,
    GB_INTEGRATION_RIEMANN_MIDDLE,
    GB_INTEGRATION_RIEMANN_TRAPEZOID,
    GB_INTEGRATION_GAUSS_LEGENDRE,
    GB_INTEGRATION_COUNT
} gb_integration;

/* "riemann_left", ..., "gausslegendre" (Captum's names) <-> enum. Parse
 * returns GB_INTEGRATION_COUNT for an unknown name. */
const char *gb_integration_name(gb_integration m);
gb_integration gb_integration_parse(const char *name);

/* The n step sizes w and alphas a of a method, in double (Captum's
 * approximation_parameters(method)(n)). GB_ERR_ARG for n < 1, or n < 2 with
 * a Riemann method. w and a hold n values each. */
gb_status gb_integration_params(gb_ctx *ctx, gb_integration m, int n, double *w, double *a);

typedef enum {
    GB_BASELINE_ZERO,
    GB_BASELINE_BLUR,
    GB_BASELINE_UNIFORM,
    GB_BASELINE_TENSOR,
    GB_BASELINE_COUNT
} gb_baseline_kind;

/* LIME's surrogate (perturbation family): Lasso(alpha) and Ridge(alpha) as
 * scikit-learn's, weighted, with an intercept; LINEAR plain weighted least
 * squares (the minimum-norm solution when rank-deficient). */
typedef enum {
    GB_SURROGATE_LASSO,
    GB_SURROGATE_RIDGE,
    GB_SURROGATE_LINEAR,
    GB_SURROGATE_COUNT
} gb_surrogate;

/* DeepLIFT's rule for nonlinearities (Shrikumar et al. 2017, sec. 3.5). */
typedef enum { GB_DEEPLIFT_RESCALE, GB_DEEPLIFT_REVEAL_CANCEL, GB_DEEPLIFT_RULE_COUNT } gb_deeplift_rule;

typedef struct gb_explain_opts {
    gb_target target;            /* default: top-1 */
    const char *layer;           /* attribute to this tensor; NULL = the input */
    int n_steps;                 /* IG / conductance steps; 0 = 50 (Captum's default) */
    gb_integration integration;  /* default GB_INTEGRATION_GAUSS_LEGENDRE (Captum's) */
    int n_samples;               /* noise / baseline draws per item; 0 = method default:
                                    smoothgrad family 50 (Smilkov et al.), gradient_shap 5
                                    (Captum's), score_cam: unused */
    double noise;                /* sigma as a fraction of each item's range; < 0 = method
                                    default: smoothgrad family 0.15, gradient_shap 0 */
    gb_baseline_kind baseline;   /* default GB_BASELINE_ZERO */
    const gb_tensor *baseline_tensor;  /* GB_BASELINE_TENSOR (float32) */
    double blur_sigma;           /* GB_BASELINE_BLUR, pixels; <= 0 = max(H, W) / 8 */
    gb_layout layout;            /* which dims of x are spatial (blur, CAM upsampling);
                                    default NCHW */
    uint64_t seed;               /* default 0 */
    int batch;                   /* rows per forward/backward pass; 0 = up to 16, fewer for
                                    big models (about 512 MB of activations and gradients) */
    /* CAM family */
    int relu;                    /* ReLU on the combined map (Grad-CAM's eq. 2); default 1 */
    int upsample;                /* bilinear upsampling to x's H, W; default 1 */
    /* Perturbation family (src/methods/perturb*.c; zero = the default) */
    int window[2];               /* occlusion window (H, W) in pixels, over all channels;
                                    0 = ceil(H / 8), ceil(W / 8) */
    int stride[2];               /* occlusion strides; 0 = half the window (at least 1) */
    const gb_tensor *feature_mask;   /* label map (segment.h): (H, W) for every item or
                                    (N, H, W) one per item (unit dims allowed), or one
                                    label per element of an item ((1, ...) or (N, ...));
                                    integer values >= 0, renumbered 0..M-1 in order */
    int grid[2];                 /* no feature_mask: a grid of cells (H, W) pixels */
    int segments;                /* neither: SLIC superpixels of each item; 0 = 50 */
    double compactness;          /* SLIC m (segment.h) on the item scaled to [0, 100]; 0 = 10 */
    gb_surrogate surrogate;      /* lime's linear model; default GB_SURROGATE_LASSO */
    double alpha;                /* its regularisation; 0 = 0.01 lasso (Captum's Lime), 1 ridge */
    double kernel_width;         /* lime's kernel width on cosine distance; 0 = 1 (Captum's) */
    int rise_cells;              /* RISE's low-resolution mask side s; 0 = 7 */
    double rise_p;               /* RISE's keep probability; 0 = 0.5 */
    /* called after each pass with the rows done and the total (both methods' own
       rows over all items); NULL = none. The CLI shows progress with it. */
    void (*progress)(void *user, int64_t done, int64_t total);
    void *progress_user;
    /* test hooks: with S = o.n_samples and M features, instead of draws,
     * fixed_coalitions: (N * S, M) 0/1 samples (lime, kernel_shap; one mask for
     * all items), fixed_perms: (N * S, M) permutations (shapley_sampling). */
    const float *fixed_coalitions;
    const int64_t *fixed_perms;
    /* Relevance family (src/methods/lrp.c, deeplift.c; docs/relevance.md; zero = default) */
    const char *lrp_composite;   /* "epsilon_plus" (default), "epsilon_gamma_box",
                                    "epsilon_alpha2_beta1", "epsilon_plus_flat",
                                    "epsilon_alpha2_beta1_flat", "epsilon"; NULL = default,
                                    or none when lrp_rule is set */
    const char *lrp_rule;        /* one rule for every conv and dense layer: "epsilon",
                                    "zplus", "alpha1beta0", "alpha2beta1", "alphabeta",
                                    "gamma", "zbox", "wsquare", "flat"; NULL = the composite's */
    const char *lrp_first_rule;  /* the first layer's rule (overrides); NULL = the composite's */
    double lrp_epsilon;          /* the epsilon rule's; 0 = 1e-6 (Zennit's), < 0 = exactly 0 */
    double lrp_gamma;            /* the gamma rule's; 0 = 0.25 (Zennit's) */
    double lrp_alpha;            /* alpha of "alphabeta" (beta = alpha - 1); 0 = 2 */
    const float *lrp_low, *lrp_high;  /* zbox input bounds, lrp_box_n values each: one for
                                    all, or one per channel (axis 1) */
    int lrp_box_n;               /* 0 = each channel's min and max over x */
    int deeplift_rule;           /* GB_DEEPLIFT_RESCALE (default) or GB_DEEPLIFT_REVEAL_CANCEL */
    int deeplift_maxpool_grad;   /* 1: max-pooling by its gradient (what Captum's DeepLift
                                    computes on torch 1.13, whose maxpool hook does not fire;
                                    not summation-exact); 0 = Captum's maxpool() rule */
    /* Test hooks: fixed draws instead of the generator (NULL = draw). With
     * S samples per item and N items, draw (n, s) is number n * S + s.
     * fixed_noise: float32, N * S * (elements of one item) values, the
     *   absolute noise eps (sigma is not applied), for the smoothgrad family
     *   and gradient_shap;
     * fixed_alpha: N * S alphas (gradient_shap);
     * fixed_baseline: N * S indices into the baseline set (gradient_shap). */
    const gb_tensor *fixed_noise;
    const float *fixed_alpha;
    const int64_t *fixed_baseline;
} gb_explain_opts;

#define GB_EXPLAIN_OPTS_INIT                                                              \
    { .target = { .kind = GB_TARGET_TOP1 }, .layer = NULL, .n_steps = 0,                  \
      .integration = GB_INTEGRATION_GAUSS_LEGENDRE, .n_samples = 0, .noise = -1.0,        \
      .baseline = GB_BASELINE_ZERO, .baseline_tensor = NULL, .blur_sigma = 0.0,           \
      .layout = GB_LAYOUT_NCHW, .seed = 0, .batch = 0, .relu = 1, .upsample = 1,           \
      .fixed_noise = NULL, .fixed_alpha = NULL, .fixed_baseline = NULL }

void gb_explain_opts_default(gb_explain_opts *o);

/* ---- explainer and results ------------------------------------------------------ */

/* Holds a session that keeps activations, and scratch reused across calls
 * (plans are cached per input shape). ctx must be the context the model was
 * loaded with. The model must outlive the explainer. */
typedef struct gb_explainer gb_explainer;
gb_status gb_explainer_create(gb_ctx *ctx, gb_model *m, gb_explainer **out);
void gb_explainer_free(gb_explainer *e);
/* The explainer's session (e.g. to read other outputs of the last pass). */
gb_session *gb_explainer_session(gb_explainer *e);

typedef struct gb_explanation {
    char method[32];
    gb_tensor *attr;              /* the attribution, (N, ...) (see Methods, Layer) */
    char attributed_to[GB_TARGET_NAME_MAX];  /* tensor attr belongs to: input or layer name */
    gb_heatmap_mode mode;         /* how to draw it: SIGNED or MAGNITUDE */
    /* the target, resolved at x */
    int64_t n_items;              /* N */
    char target_tensor[GB_TARGET_NAME_MAX];  /* resolved name of T */
    int target_ndim;              /* T's rank and shape at x */
    int64_t target_dims[GB_MAX_DIMS];
    int64_t target_count;         /* elements summed per item (1 for one logit) */
    int64_t *target_offset;       /* (N,) first selected element within item n of T
                                     (for a (N, K) output: the class index) */
    double *value;                /* (N,) f_n(x) */
    double *baseline_value;       /* (N,) f_n(x') (IG; mean over draws: gradient_shap), or NULL */
    double *delta;                /* (N,) completeness delta, or NULL */
    int64_t rows;                 /* points evaluated (forward+backward rows) */
    double seconds;               /* wall time of the method */
    /* perturbation methods over features (feature_ablation, shapley_sampling, lime,
       kernel_shap): the label map used, (N, H, W) int64 0..M_n-1 (or (N, item) for
       per-element masks), else NULL; lime / kernel_shap: the surrogate's weighted
       R^2 on its samples per item (N,), else NULL */
    gb_tensor *features;
    double *fit_r2;
} gb_explanation;

void gb_explanation_free(gb_explanation *r);

/* Run one method on x. Resolves the target with a forward pass on x (fills
 * value, target_*), then runs the method. *out is NULL on failure.
 * Errors: GB_ERR_NOT_FOUND unknown method (the message lists them) or tensor
 * (target, layer); GB_ERR_ARG bad option or target index; GB_ERR_SHAPE x not
 * matching the model's input; GB_ERR_UNSUPPORTED a method that cannot apply
 * (CAM on a tensor without spatial dims, a layer with a method that has no
 * layer form); engine errors as they come. */
gb_status gb_explain(gb_explainer *e, const char *method, const gb_tensor *x,
                     const gb_explain_opts *o, gb_explanation **out);

/* ---- the method registry ------------------------------------------------------- */

/* A method fills r->attr (and delta / baseline_value where it has them);
 * r arrives with method, n_items, value and target_* filled in, and x already
 * checked. Implementations drive the explainer through src/methods/methods.h. */
typedef gb_status (*gb_method_fn)(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o,
                                  gb_explanation *r);

enum {
    GB_METHOD_LAYER = 1 << 0,     /* has a layer form (o.layer) */
    GB_METHOD_DELTA = 1 << 1,     /* reports a completeness delta */
    GB_METHOD_RANDOM = 1 << 2,    /* uses o.seed */
    GB_METHOD_CAM = 1 << 3,       /* o.layer is the feature map; attr is (N, 1, H, W) */
};

typedef struct gb_method {
    const char *name;             /* "integrated_gradients" */
    gb_method_fn fn;
    gb_heatmap_mode mode;         /* natural view of its maps */
    unsigned flags;               /* GB_METHOD_* */
    const char *paper;            /* "Sundararajan et al. 2017" */
    const char *summary;          /* one line for --help */
} gb_method;

/* By name (NULL if unknown); by position 0..gb_method_count()-1 (registry order). */
const gb_method *gb_method_find(const char *name);
int gb_method_count(void);
const gb_method *gb_method_at(int i);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_EXPLAIN_H */
