/* cam.c — the CAM family: class activation maps over a convolutional feature
 * map (cam, gradcam, gradcam_pp, score_cam, guided_gradcam).
 *
 * A is a feature map of the model, (N, K, h, w): o->layer, or by default the
 * last 4-D float tensor with h > 1 and w > 1 that the target depends on (found
 * by walking the graph back from the target tensor; the target itself and
 * the graph input are not candidates). A_k is channel k of one item, f the
 * item's target (explain.h: a logit, any output element or block, a neuron).
 * Every method makes one weight w_k per channel and the map
 *     M = sum_k w_k A_k                                             (h, w)
 * then, when o->relu (the default), M = ReLU(M) (Selvaraju et al., eq. 2:
 * only features with a positive influence), then, when o->upsample (the
 * default), M is resampled to the input's H x W bilinearly with
 * align_corners=False, exactly torch's F.interpolate(mode="bilinear") — the
 * ReLU comes first, as pytorch-grad-cam and Captum do. r->attr is
 * (N, 1, H, W) (or (N, 1, h, w) without upsampling) and r->attributed_to
 * names A. Maps are raw, never min-max normalised: the heatmap scales them
 * for display (heatmap.h), and the values keep their meaning (cam's map
 * averages to the logit minus the bias). o->relu = 0 gives the signed map
 * (r->mode becomes SIGNED).
 *
 *   cam         Zhou et al. 2016, eq. 2: w_k = the weights of the linear head
 *               of a global-average-pool network for the target, no bias:
 *               target = Gemm/MatMul (+ optional bias Add) of
 *               Flatten/Reshape/Squeeze of GlobalAveragePool(A), or of
 *               ReduceMean(A) over axes (2, 3). For a block target the
 *               weights of its elements are summed. Any other head is
 *               GB_ERR_UNSUPPORTED naming what was found. On such a head
 *               df/dA_k(i, j) = w_k / (h w), so cam = h w * gradcam exactly.
 *   gradcam     Selvaraju et al. 2017, eq. 1: w_k = 1/(h w) sum_ij df/dA_k(i, j).
 *   gradcam_pp  Chattopadhyay et al. 2018, eq. 19 with the exponential trick
 *               (for Y = exp(f) the 2nd and 3rd derivatives are powers of the
 *               1st, and the factor exp(f) cancels in alpha and scales every
 *               w_k alike), as pytorch-grad-cam's grad_cam_plusplus.py
 *               computes it, with g = df/dA_k(i, j), s_k = sum_ij A_k(i, j):
 *                   alpha_ij = g^2 / (2 g^2 + s_k g^3 + 1e-6), 0 where g == 0
 *                   w_k = sum_ij alpha_ij ReLU(g).
 *   score_cam   Wang et al. 2020 (CVPRW version, Algorithm 1): per channel,
 *               H_k = up(A_k) min-max normalised to [0, 1] (divided by
 *               max - min + 1e-8 as pytorch-grad-cam, so a constant channel
 *               masks everything), the input masked x o H_k (H_k broadcast
 *               over the input's channels), score_k its score, and
 *               w = softmax over k of the scores. The score is the target's
 *               softmax probability — softmax over the item's K values of an
 *               (N, K >= 2) tensor at the target element — when the target is
 *               one element of such a tensor ("we represent weight as
 *               post-softmax value", sec. 3.2; the baseline term f(X_b) of
 *               Algorithm 1 is the same for every k and cancels in the
 *               softmax), unless that tensor already is a Softmax output (its
 *               value is used) or a LogSoftmax output (exp of it); for every
 *               other target (regression heads, neurons, blocks) the target
 *               value f itself. Variants elsewhere: the authors' code uses the
 *               probabilities as weights without the softmax over channels;
 *               pytorch-grad-cam's ScoreCAM takes the softmax over channels of
 *               its target's output — with ClassifierOutputSoftmaxTarget this
 *               is exactly our computation, except that it upsamples the
 *               masks with align_corners=True. The N K masked inputs run
 *               o->batch at a time.
 *   guided_gradcam  Selvaraju et al. 2017, sec. 3.2: guided backprop
 *               (gradient.c's rule, Springenberg et al. 2015) times the Grad-CAM
 *               map upsampled to the input, broadcast over the input's
 *               channels; as Captum's GuidedGradCam with
 *               interpolate_mode="bilinear" (no normalisation). attr has the
 *               input's shape; always upsampled.
 *
 * Layouts: feature maps are NCHW (ONNX convolutions); o->layout says which
 * dims of the input are H and W (for upsampling and Score-CAM's masks). The
 * input must be 4-D when a map is upsampled or masks are made. */
#include "methods/methods.h"
#include "engine/ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The feature map a method works on. */
typedef struct {
    char name[GB_TARGET_NAME_MAX];   /* A's value name */
    int id;                          /* its tensor id in the model */
    int64_t K, h, w;                 /* A is (N, K, h, w) */
    int64_t H, W, C;                 /* the input's spatial size and channels (0 if not 4-D) */
} fmap;

/* ---- the graph -------------------------------------------------------------------- */

/* A tensor by value name or node name (that node's first output), as
 * gb_session_tensor resolves them; -1 if none. */
static int tensor_id(const gb_model *m, const char *name) {
    int id = gb__model_tensor_id(m, name);
    if (id >= 0) return id;
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name) && m->nodes[i].n_out > 0) return m->nodes[i].out[0];
    return -1;
}

/* Per tensor: does it depend on the explained input (graph input 0)? */
static bool *input_dependent(const gb_model *m) {
    bool *dep = calloc((size_t)m->n_tensors, sizeof *dep);
    if (!dep) return NULL;
    dep[m->inputs[0]] = true;
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *nd = &m->nodes[i];
        bool d = false;
        for (int j = 0; j < nd->n_in; j++) d |= nd->in[j] >= 0 && dep[nd->in[j]];
        for (int j = 0; j < nd->n_out; j++)
            if (nd->out[j] >= 0) dep[nd->out[j]] = d;
    }
    return dep;
}

static bool is_spatial_map(const gb_tensor *t, int64_t P) {
    return t && t->dtype == GB_DTYPE_F32 && t->ndim == 4 && t->dims[0] == P && t->dims[2] > 1 && t->dims[3] > 1;
}

/* The default layer: walking the nodes back from the target's producer in
 * reverse topological order, the first needed output (one the target
 * depends on, that depends on the input) that is a 4-D map with h, w > 1 at
 * the last pass (P rows). */
static gb_status default_layer(gb_explainer *e, const gb_explanation *r, const char *method, int64_t P, int *out) {
    const gb_model *m = e->m;
    int t = tensor_id(m, r->target_tensor);
    if (t < 0) return gb__err(e->ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s'", r->target_tensor);
    bool *dep = input_dependent(m), *need = calloc((size_t)m->n_tensors, sizeof *need);
    if (!dep || !need) {
        free(dep);
        free(need);
        return gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    need[t] = true;
    int found = -1;
    for (int i = m->n_nodes - 1; i >= 0 && found < 0; i--) {
        const gb__node *nd = &m->nodes[i];
        bool needed = false;
        for (int j = 0; j < nd->n_out; j++) needed |= nd->out[j] >= 0 && need[nd->out[j]];
        if (!needed) continue;
        for (int j = 0; j < nd->n_out && found < 0; j++) {
            int o = nd->out[j];
            if (o < 0 || o == t || !need[o] || !dep[o]) continue;
            if (is_spatial_map(gb_session_tensor(e->s, m->tensors[o].name), P)) found = o;
        }
        for (int j = 0; j < nd->n_in; j++)
            if (nd->in[j] >= 0) need[nd->in[j]] = true;
    }
    free(dep);
    free(need);
    if (found < 0)
        return gb__err(e->ctx, GB_ERR_UNSUPPORTED,
                       "explain: %s: target '%s' depends on no 4-D (N, C, H, W) feature map with H, W > 1; "
                       "name one with --layer",
                       method, r->target_tensor);
    *out = found;
    return GB_OK;
}

/* Resolve the feature map (o->layer or the default) and the input's geometry. */
static gb_status get_fmap(gb_explainer *e, const gb_explain_opts *o, const gb_explanation *r, const char *method,
                          bool need_input_hw, fmap *f) {
    gb_ctx *ctx = e->ctx;
    const gb_model *m = e->m;
    memset(f, 0, sizeof *f);
    const gb_tensor *X = gb_session_tensor(e->s, e->in.name);
    if (!X) return gb__err(ctx, GB_ERR_INTERNAL, "explain: %s: no forward pass yet", method);
    int64_t P = X->dims[0];
    gb_status st;
    if (o->layer) {
        f->id = tensor_id(m, o->layer);
        if (f->id < 0) return gb__err(ctx, GB_ERR_NOT_FOUND, "explain: %s: no tensor named '%s' in the model", method, o->layer);
    } else if ((st = default_layer(e, r, method, P, &f->id))) {
        return st;
    }
    snprintf(f->name, sizeof f->name, "%s", m->tensors[f->id].name);
    const gb_tensor *A = gb_session_tensor(e->s, f->name);
    if (!A) return gb__err(ctx, GB_ERR_NOT_FOUND, "explain: %s: tensor '%s' has no value at this input", method, f->name);
    if (A->dtype != GB_DTYPE_F32 || A->ndim != 4 || A->dims[0] != P) {
        char shp[128];
        gb_shape_str(A->ndim, A->dims, shp, sizeof shp);
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "explain: %s: layer '%s' is %s %s; CAM methods need a 4-D (N, C, H, W) float32 feature map "
                       "with the batch first",
                       method, f->name, gb_dtype_name(A->dtype), shp);
    }
    f->K = A->dims[1];
    f->h = A->dims[2];
    f->w = A->dims[3];
    if (e->in.ndim == 4) {
        bool nhwc = o->layout == GB_LAYOUT_NHWC;
        f->C = e->xdims[nhwc ? 3 : 1];
        f->H = e->xdims[nhwc ? 1 : 2];
        f->W = e->xdims[nhwc ? 2 : 3];
    } else if (need_input_hw) {
        return gb__err(ctx, GB_ERR_UNSUPPORTED,
                       "explain: %s: the input is %d-D; upsampling a map to it (and Score-CAM's masks) needs a 4-D "
                       "image input (set upsample = 0 for the map at the layer's resolution)",
                       method, e->in.ndim);
    }
    return GB_OK;
}

/* ---- maps ------------------------------------------------------------------------- */

/* Resample one (h, w) map to (H, W) bilinearly with align_corners=False, as
 * torch's F.interpolate (upsample_bilinear2d, no antialiasing): output pixel
 * y samples the input at sy = (y + 1/2) h / H - 1/2, clamped below at 0; the
 * neighbour past the last row is the last row itself. In float, like torch. */
static void resize_bilinear(const float *src, int64_t h, int64_t w, float *dst, int64_t H, int64_t W) {
    float sh = (float)h / (float)H, sw = (float)w / (float)W;
    for (int64_t y = 0; y < H; y++) {
        float sy = sh * ((float)y + 0.5f) - 0.5f;
        if (sy < 0) sy = 0;
        int64_t y0 = (int64_t)sy, y1 = y0 + (y0 < h - 1);
        float ly = sy - (float)y0, hy = 1.0f - ly;
        for (int64_t x = 0; x < W; x++) {
            float sx = sw * ((float)x + 0.5f) - 0.5f;
            if (sx < 0) sx = 0;
            int64_t x0 = (int64_t)sx, x1 = x0 + (x0 < w - 1);
            float lx = sx - (float)x0, hx = 1.0f - lx;
            dst[y * W + x] = hy * (hx * src[y0 * w + x0] + lx * src[y0 * w + x1]) +
                             ly * (hx * src[y1 * w + x0] + lx * src[y1 * w + x1]);
        }
    }
}

/* M = sum_k wts[k] A_k for one item: A (K, h, w), M (h, w). */
static void combine(const float *A, const double *wts, int64_t K, int64_t hw, float *M) {
    for (int64_t p = 0; p < hw; p++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++) s += wts[k] * A[k * hw + p];
        M[p] = (float)s;
    }
}

/* r->attr from the maps M (N, h, w): ReLU when o->relu, then (N, 1, H, W)
 * upsampled when o->upsample, else (N, 1, h, w). */
static gb_status finish(gb_explainer *e, const gb_explain_opts *o, gb_explanation *r, const fmap *f, float *M) {
    int64_t N = r->n_items, hw = f->h * f->w;
    if (o->relu)
        for (int64_t i = 0; i < N * hw; i++) M[i] = M[i] > 0 ? M[i] : 0;
    int64_t dims[4] = {N, 1, o->upsample ? f->H : f->h, o->upsample ? f->W : f->w};
    gb_tensor_free(r->attr);
    r->attr = NULL;
    gb_status st = gb_tensor_create(e->ctx, GB_DTYPE_F32, 4, dims, &r->attr);
    if (st) return st;
    float *a = r->attr->data;
    for (int64_t n = 0; n < N; n++) {
        if (o->upsample) resize_bilinear(M + n * hw, f->h, f->w, a + n * f->H * f->W, f->H, f->W);
        else memcpy(a + n * hw, M + n * hw, (size_t)hw * sizeof *a);
    }
    snprintf(r->attributed_to, sizeof r->attributed_to, "%s", f->name);
    r->mode = o->relu ? GB_HEATMAP_MAGNITUDE : GB_HEATMAP_SIGNED;
    return GB_OK;
}

/* The activation A (and df/dA when grad != NULL) at x, (N, K, h, w) each. */
static gb_status layer_pass(gb_explainer *e, const gb_tensor *x, gb_explanation *r, const fmap *f, float **act,
                            float **grad) {
    int64_t N = r->n_items, n = N * f->K * f->h * f->w;
    int64_t *items = malloc(sizeof *items * (size_t)N);
    *act = malloc(sizeof **act * (size_t)n);
    if (grad) *grad = malloc(sizeof **grad * (size_t)n);
    if (!items || !*act || (grad && !*grad)) {
        free(items);
        return gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    }
    for (int64_t i = 0; i < N; i++) items[i] = i;
    gb_status st = gb__explain_pass(e, r, x->data, N, items, f->name, NULL, 0, NULL, grad ? *grad : NULL, *act);
    free(items);
    return st;
}

/* ---- Grad-CAM and Grad-CAM++ -------------------------------------------------------- */

/* Grad-CAM's channel weights for one item: w_k = mean_ij g_k(i, j). */
static void gradcam_weights(const float *G, int64_t K, int64_t hw, double *wts) {
    for (int64_t k = 0; k < K; k++) {
        double s = 0;
        for (int64_t p = 0; p < hw; p++) s += G[k * hw + p];
        wts[k] = s / (double)hw;
    }
}

/* Grad-CAM++'s (Chattopadhyay et al., eq. 19, exponential trick; see the top). */
static void gradcam_pp_weights(const float *A, const float *G, int64_t K, int64_t hw, double *wts) {
    for (int64_t k = 0; k < K; k++) {
        const float *a = A + k * hw, *g = G + k * hw;
        double s = 0, w = 0;
        for (int64_t p = 0; p < hw; p++) s += a[p];
        for (int64_t p = 0; p < hw; p++) {
            if (g[p] == 0) continue;
            double g1 = g[p], g2 = g1 * g1, g3 = g2 * g1;
            double alpha = g2 / (2 * g2 + s * g3 + 1e-6);
            if (g1 > 0) w += alpha * g1;
        }
        wts[k] = w;
    }
}

typedef enum { W_GRADCAM, W_GRADCAM_PP } grad_weighting;

/* The rectified-or-not map M (N, h, w) of Grad-CAM / Grad-CAM++ at x, before
 * upsampling (the caller owns *M). */
static gb_status grad_map(gb_explainer *e, const gb_tensor *x, gb_explanation *r, const fmap *f,
                          grad_weighting how, float **M) {
    int64_t N = r->n_items, K = f->K, hw = f->h * f->w;
    float *A = NULL, *G = NULL;
    double *wts = malloc(sizeof *wts * (size_t)K);
    *M = malloc(sizeof **M * (size_t)(N * hw));
    gb_status st = !wts || !*M ? gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory") : layer_pass(e, x, r, f, &A, &G);
    for (int64_t n = 0; !st && n < N; n++) {
        const float *An = A + n * K * hw, *Gn = G + n * K * hw;
        if (how == W_GRADCAM) gradcam_weights(Gn, K, hw, wts);
        else gradcam_pp_weights(An, Gn, K, hw, wts);
        combine(An, wts, K, hw, *M + n * hw);
    }
    free(A);
    free(G);
    free(wts);
    return st;
}

static gb_status grad_cam_method(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r,
                                 grad_weighting how) {
    fmap f;
    float *M = NULL;
    gb_status st = get_fmap(e, o, r, r->method, o->upsample, &f);
    if (!st) st = grad_map(e, x, r, &f, how, &M);
    if (!st) st = finish(e, o, r, &f, M);
    free(M);
    return st;
}

static gb_status gradcam(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return grad_cam_method(e, x, o, r, W_GRADCAM);
}

static gb_status gradcam_pp(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    return grad_cam_method(e, x, o, r, W_GRADCAM_PP);
}

/* ---- CAM: the linear head's weights ---------------------------------------------------- */

static const gb__node *producer(const gb_model *m, int id) {
    int p = id >= 0 ? m->tensors[id].producer : -1;
    return p >= 0 ? &m->nodes[p] : NULL;
}

/* A constant tensor's value: folded by the plan, or an initializer. */
static const gb_tensor *const_value(gb_explainer *e, int id) {
    const gb_tensor *t = gb_session_tensor(e->s, e->m->tensors[id].name);
    return t ? t : e->m->tensors[id].init;
}

/* Does a ReduceMean average over exactly axes 2 and 3 of its 4-D input? The
 * axes are an attribute up to opset 17 and an input from opset 18. */
static bool reduces_hw(gb_explainer *e, const gb__node *nd) {
    int64_t ax[8];
    int n = gb__attr_ints(nd, "axes", ax, 8);
    if (n < 0 && nd->n_in > 1 && nd->in[1] >= 0) {
        const gb_tensor *t = const_value(e, nd->in[1]);
        if (!t || t->dtype != GB_DTYPE_I64 || t->numel > 8) return false;
        n = (int)t->numel;
        memcpy(ax, t->data, (size_t)n * sizeof *ax);
    }
    if (n != 2) return false;
    bool seen[4] = {false, false, false, false};
    for (int i = 0; i < 2; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + 4 : ax[i];
        if (a < 0 || a > 3) return false;
        seen[a] = true;
    }
    return seen[2] && seen[3];
}

/* Zhou et al.'s head, walked back from the target tensor:
 *   target = [Add(., bias)] of Gemm(X, B) (transA = 0) or MatMul(X, B), B constant,
 *   X = (Flatten | Reshape | Squeeze | Identity | Dropout)* of
 *       GlobalAveragePool(A) or ReduceMean(A, axes = (2, 3)).
 * Fills wts (N, K): item n's weight for channel k, alpha * sum over the
 * target block's elements j of B[j, k] (B[k, j] without transB). */
static gb_status cam_weights(gb_explainer *e, const gb_explanation *r, const fmap *f, double *wts) {
    gb_ctx *ctx = e->ctx;
    const gb_model *m = e->m;
    int t = tensor_id(m, r->target_tensor);
    const gb__node *nd = producer(m, t);
    bool *dep = input_dependent(m);
    if (!dep) return gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
    gb_status st = GB_OK;
    char why[512] = "";
    if (nd && !strcmp(nd->op_type, "Add") && nd->n_in == 2 && nd->in[0] >= 0 && nd->in[1] >= 0 &&
        dep[nd->in[0]] != dep[nd->in[1]])   /* the bias: dropped (CAM has none) */
        nd = producer(m, dep[nd->in[0]] ? nd->in[0] : nd->in[1]);
    const gb__node *lin = nd;
    bool gemm = lin && !strcmp(lin->op_type, "Gemm"), matmul = lin && !strcmp(lin->op_type, "MatMul");
    if (!gemm && !matmul) {
        snprintf(why, sizeof why, "target '%s' is not the output of a Gemm or MatMul (+ bias) but of %s%s%s%s",
                 r->target_tensor, lin ? lin->op_type : "no node", lin ? " '" : "", lin ? lin->name : "",
                 lin ? "'" : "");
        goto refuse;
    }
    if (lin->n_in < 2 || lin->in[0] < 0 || lin->in[1] < 0 || !dep[lin->in[0]] || dep[lin->in[1]] ||
        (gemm && gb__attr_int(lin, "transA", 0))) {
        snprintf(why, sizeof why, "%s '%s' is not (features) x (constant weights)", lin->op_type, lin->name);
        goto refuse;
    }
    /* back through views to the pooling */
    int xin = lin->in[0];
    const gb__node *pn = producer(m, xin);
    while (pn && (!strcmp(pn->op_type, "Flatten") || !strcmp(pn->op_type, "Reshape") ||
                  !strcmp(pn->op_type, "Squeeze") || !strcmp(pn->op_type, "Identity") ||
                  !strcmp(pn->op_type, "Dropout")))
        pn = producer(m, pn->in[0]);
    bool gap = pn && !strcmp(pn->op_type, "GlobalAveragePool");
    bool rmean = pn && !strcmp(pn->op_type, "ReduceMean") && reduces_hw(e, pn);
    if (!gap && !rmean) {
        snprintf(why, sizeof why, "the input of %s '%s' does not come from a GlobalAveragePool or a ReduceMean over "
                 "(H, W) (through Flatten/Reshape/Squeeze) but from %s%s%s%s",
                 lin->op_type, lin->name, pn ? pn->op_type : "a graph input", pn ? " '" : "", pn ? pn->name : "",
                 pn ? "'" : "");
        goto refuse;
    }
    if (pn->in[0] != f->id) {
        snprintf(why, sizeof why, "the head pools '%s', not the layer '%s'", m->tensors[pn->in[0]].name, f->name);
        goto refuse;
    }
    /* shapes: X is (P, K), B (M, K) with transB else (K, M), T (N, M) */
    const gb_tensor *X = gb_session_tensor(e->s, m->tensors[xin].name);
    const gb_tensor *B = const_value(e, lin->in[1]);
    bool transB = gemm && gb__attr_int(lin, "transB", 0);
    float alpha = gemm ? gb__attr_float(lin, "alpha", 1.0f) : 1.0f;
    if (!X || X->ndim != 2 || X->dims[1] != f->K || !B || B->dtype != GB_DTYPE_F32 || B->ndim != 2 ||
        B->dims[transB ? 1 : 0] != f->K || r->target_ndim != 2 || B->dims[transB ? 0 : 1] != r->target_dims[1]) {
        snprintf(why, sizeof why, "%s '%s' is not a (N, %lld) x (%lld, M) product giving the (N, M) target",
                 lin->op_type, lin->name, (long long)f->K, (long long)f->K);
        goto refuse;
    }
    int64_t M = r->target_dims[1];
    const float *b = B->data;
    for (int64_t n = 0; n < r->n_items; n++)
        for (int64_t k = 0; k < f->K; k++) {
            double s = 0;
            for (int64_t j = r->target_offset[n]; j < r->target_offset[n] + r->target_count; j++)
                s += transB ? b[j * f->K + k] : b[k * M + j];
            wts[n * f->K + k] = alpha * s;
        }
    free(dep);
    return st;
refuse:
    free(dep);
    return gb__err(ctx, GB_ERR_UNSUPPORTED,
                   "explain: cam needs a global-average-pool + linear head on the layer (Zhou et al. 2016): %s; "
                   "gradcam works with any head",
                   why);
}

static gb_status cam(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    fmap f;
    gb_status st = get_fmap(e, o, r, "cam", o->upsample, &f);
    if (st) return st;
    int64_t N = r->n_items, hw = f.h * f.w;
    double *wts = malloc(sizeof *wts * (size_t)(N * f.K));
    float *A = NULL, *M = malloc(sizeof *M * (size_t)(N * hw));
    if (!wts || !M) st = gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    if (!st) st = cam_weights(e, r, &f, wts);
    if (!st) st = layer_pass(e, x, r, &f, &A, NULL);
    for (int64_t n = 0; !st && n < N; n++) combine(A + n * f.K * hw, wts + n * f.K, f.K, hw, M + n * hw);
    if (!st) st = finish(e, o, r, &f, M);
    free(wts);
    free(A);
    free(M);
    return st;
}

/* ---- Score-CAM ------------------------------------------------------------------------ */

typedef enum { SCORE_VALUE, SCORE_SOFTMAX, SCORE_EXP } score_kind;

/* What Score-CAM's score of a masked input is (see the top). */
static score_kind score_kind_of(gb_explainer *e, const gb_explanation *r) {
    if (r->target_ndim != 2 || r->target_dims[1] < 2 || r->target_count != 1) return SCORE_VALUE;
    const gb__node *p = producer(e->m, tensor_id(e->m, r->target_tensor));
    if (p && !strcmp(p->op_type, "Softmax")) return SCORE_VALUE;
    if (p && !strcmp(p->op_type, "LogSoftmax")) return SCORE_EXP;
    return SCORE_SOFTMAX;
}

/* Row q = n K + k of the masked inputs: x_n o H_k, H_k = normalise(up(A_k)). */
static void masked_row(const float *xn, const float *Ak, const fmap *f, gb_layout layout, float *mask, float *row) {
    int64_t HW = f->H * f->W;
    resize_bilinear(Ak, f->h, f->w, mask, f->H, f->W);
    float lo, hi;
    gb__minmax(mask, HW, &lo, &hi);
    float den = hi - lo + 1e-8f;
    for (int64_t p = 0; p < HW; p++) mask[p] = (mask[p] - lo) / den;
    if (layout == GB_LAYOUT_NHWC) {
        for (int64_t p = 0; p < HW; p++)
            for (int64_t c = 0; c < f->C; c++) row[p * f->C + c] = xn[p * f->C + c] * mask[p];
    } else {
        for (int64_t c = 0; c < f->C; c++)
            for (int64_t p = 0; p < HW; p++) row[c * HW + p] = xn[c * HW + p] * mask[p];
    }
}

static gb_status score_cam(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    gb_ctx *ctx = e->ctx;
    fmap f;
    gb_status st = get_fmap(e, o, r, "score_cam", true, &f);
    if (st) return st;
    int64_t N = r->n_items, K = f.K, hw = f.h * f.w, D = e->item_numel, HW = f.H * f.W;
    int64_t B = e->static_batch ? e->static_batch : e->batch, total = N * K;
    score_kind kind = score_kind_of(e, r);
    float *A = NULL, *rows = malloc(sizeof *rows * (size_t)(B * D)), *mask = malloc(sizeof *mask * (size_t)HW);
    float *M = malloc(sizeof *M * (size_t)(N * hw));
    int64_t *items = malloc(sizeof *items * (size_t)B);
    double *vals = malloc(sizeof *vals * (size_t)B), *score = malloc(sizeof *score * (size_t)total);
    if (!rows || !mask || !M || !items || !vals || !score) {
        st = gb__err(ctx, GB_ERR_NOMEM, "explain: out of memory");
        goto out;
    }
    if ((st = layer_pass(e, x, r, &f, &A, NULL))) goto out;
    const float *xd = x->data;
    for (int64_t q0 = 0; q0 < total; q0 += B) {
        int64_t b = total - q0 < B ? total - q0 : B;
        for (int64_t j = 0; j < b; j++) {
            int64_t q = q0 + j, n = q / K, k = q % K;
            items[j] = n;
            masked_row(xd + n * D, A + (n * K + k) * hw, &f, o->layout, mask, rows + j * D);
        }
        /* b <= one pass's rows: the target tensor afterwards is this chunk's */
        if ((st = gb__explain_pass(e, r, rows, b, items, NULL, NULL, 0, vals, NULL, NULL))) goto out;
        const gb_tensor *T = gb_session_tensor(e->s, r->target_tensor);
        if (!T) {
            st = gb__err(ctx, GB_ERR_NOT_FOUND, "explain: no tensor named '%s'", r->target_tensor);
            goto out;
        }
        int64_t in = T->numel / T->dims[0];
        for (int64_t j = 0; j < b; j++) {
            double s = vals[j];
            if (kind == SCORE_EXP) {
                s = exp(s);
            } else if (kind == SCORE_SOFTMAX) {   /* softmax over the item's K values, at the target */
                const float *row = (const float *)T->data + j * in;
                double mx = row[0], z = 0;
                for (int64_t i = 1; i < in; i++) mx = row[i] > mx ? row[i] : mx;
                for (int64_t i = 0; i < in; i++) z += exp(row[i] - mx);
                s = exp(row[r->target_offset[items[j]]] - mx) / z;
            }
            score[q0 + j] = s;
        }
    }
    /* weights: softmax over the channels of each item's scores (Algorithm 1) */
    for (int64_t n = 0; n < N; n++) {
        double *s = score + n * K, mx = s[0], z = 0;
        for (int64_t k = 1; k < K; k++) mx = s[k] > mx ? s[k] : mx;
        for (int64_t k = 0; k < K; k++) z += (s[k] = exp(s[k] - mx));
        for (int64_t k = 0; k < K; k++) s[k] /= z;
        combine(A + n * K * hw, s, K, hw, M + n * hw);
    }
    st = finish(e, o, r, &f, M);
out:
    free(A);
    free(rows);
    free(mask);
    free(M);
    free(items);
    free(vals);
    free(score);
    return st;
}

/* ---- Guided Grad-CAM ------------------------------------------------------------------- */

static gb_status guided_gradcam(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    fmap f;
    gb_status st = get_fmap(e, o, r, "guided_gradcam", true, &f);
    if (st) return st;
    int64_t N = r->n_items, hw = f.h * f.w, HW = f.H * f.W, D = e->item_numel;
    float *M = NULL, *U = malloc(sizeof *U * (size_t)HW);
    int64_t *items = malloc(sizeof *items * (size_t)N);
    if (!U || !items) st = gb__err(e->ctx, GB_ERR_NOMEM, "explain: out of memory");
    if (!st) st = grad_map(e, x, r, &f, W_GRADCAM, &M);
    if (!st) st = gb__explain_alloc_attr(e, r, NULL);   /* the input's shape */
    if (!st) {
        for (int64_t n = 0; n < N; n++) items[n] = n;
        gb_rule rule = gb_rule_guided_relu();
        st = gb__explain_pass(e, r, x->data, N, items, NULL, &rule, 1, NULL, r->attr->data, NULL);
    }
    for (int64_t n = 0; !st && n < N; n++) {
        float *Mn = M + n * hw, *g = (float *)r->attr->data + n * D;
        if (o->relu)
            for (int64_t p = 0; p < hw; p++) Mn[p] = Mn[p] > 0 ? Mn[p] : 0;
        resize_bilinear(Mn, f.h, f.w, U, f.H, f.W);
        if (o->layout == GB_LAYOUT_NHWC) {
            for (int64_t p = 0; p < HW; p++)
                for (int64_t c = 0; c < f.C; c++) g[p * f.C + c] *= U[p];
        } else {
            for (int64_t c = 0; c < f.C; c++)
                for (int64_t p = 0; p < HW; p++) g[c * HW + p] *= U[p];
        }
    }
    free(M);
    free(U);
    free(items);
    return st;
}

const gb_method gb__methods_cam[] = {
    {"cam", cam, GB_HEATMAP_MAGNITUDE, GB_METHOD_CAM, "Zhou et al. 2016",
     "class activation map: the linear head's weights over the last feature map (GAP + linear heads)"},
    {"gradcam", gradcam, GB_HEATMAP_MAGNITUDE, GB_METHOD_CAM, "Selvaraju et al. 2017",
     "feature map channels weighted by their mean gradient, rectified"},
    {"gradcam_pp", gradcam_pp, GB_HEATMAP_MAGNITUDE, GB_METHOD_CAM, "Chattopadhyay et al. 2018",
     "Grad-CAM++: channels weighted by positive gradients with higher-order coefficients"},
    {"score_cam", score_cam, GB_HEATMAP_MAGNITUDE, GB_METHOD_CAM, "Wang et al. 2020",
     "channels weighted by the score of the input masked with each upsampled channel"},
    {"guided_gradcam", guided_gradcam, GB_HEATMAP_MAGNITUDE, GB_METHOD_CAM, "Selvaraju et al. 2017",
     "guided backprop times the upsampled Grad-CAM map"},
    {0},
};
