/* lrp.c — Layer-wise Relevance Propagation (Bach et al. 2015; Montavon et al.
 * 2019, "Layer-wise relevance propagation: an overview") as backward rules.
 *
 * The relevance that enters the network is the target's value, R = f(x)
 * (Bach et al. 2015, eq. 2), on the target's elements. Every node then maps
 * the relevance of its output to its inputs; the engine's backward sweep
 * sums the messages a tensor receives from its consumers (a tensor feeding
 * two nodes — a residual branch — gets both). What each node does:
 *
 *   Conv, ConvTranspose, Gemm, MatMul with a constant weight ("layers"):
 *       the rule the composite gives them (below), written exactly as
 *       Zennit's rules.py states them, with Zennit's stabiliser
 *       stab(z) = z + e * sign(z), sign(0) = +1.
 *   BatchNormalization right after such a layer (its only consumer): folded
 *       into the layer's weights and bias (Zennit's SequentialMergeBatchNorm
 *       canonizer): the layer's rule sees W' = W * g / sqrt(v + eps),
 *       b' = (b - m) * g / sqrt(v + eps) + beta and its output is the BN
 *       output; the BN node itself passes relevance through. A model
 *       exported with BatchNorm kept therefore gets the same relevance as
 *       one whose exporter folded it.
 *   AveragePool, GlobalAveragePool, Add: Zennit's Norm rule, the z-rule of
 *       the op itself: R_i = x_i * [J^T (R / stab(z))]_i. For an Add of two
 *       branches (a residual connection, Zennit's ResNetCanonizer "Sum")
 *       this splits R in proportion to each branch's contribution a / (a + b).
 *   Elementwise activations (Relu, Sigmoid, Tanh, Clip...) and BatchNorm:
 *       pass relevance unchanged (Zennit's Pass).
 *   Mul of two activations (SiLU, squeeze-excitation): the signal takes
 *       all the relevance, the gate (the sigmoid's output) none (Arras et
 *       al. 2017); Zennit leaves such products to the gradient, which
 *       feeds relevance-sized numbers into the gate's layers and blows up.
 *   MaxPool and everything else (Flatten, Concat, Reshape...): the
 *       gradient — for max-pooling, winner-take-all: the relevance of an
 *       output goes to the input that was the maximum (Zennit's default for
 *       unhooked modules, Montavon et al. 2019, sec. 10.2.2).
 *
 * Rules for a layer z = W x + b (x its input, R the relevance of z; x+ and
 * x- the positive and negative parts of x, W+ / W- likewise):
 *   epsilon      R_x = x * W^T (R / stab_eps(z))                 (LRP-eps)
 *   zplus        R_x = x+ W+^T s + x- W-^T s, s = R / stab(W+ x+ + W- x- + b+)
 *   alpha-beta   alpha * (the zplus term) - beta * (the same with the
 *                negative parts: W- x+ + W+ x- + b-)   (Bach et al. 2015)
 *   gamma        Zennit's generalised gamma (Montavon et al. 2019, eq. 4;
 *                Andeol et al. 2021): W+g = W + gamma W+, W-g = W + gamma W-;
 *                where z > 0: R_x = x+ W+g^T s + x- W-g^T s,
 *                s = R / stab(W+g x+ + W-g x- + b + gamma b+); where z < 0
 *                the same with W+g and W-g exchanged (b + gamma b-).
 *   zbox (z^B)   for an input bounded by l <= x <= h (Montavon et al. 2017):
 *                R_x = x W^T s - l W+^T s - h W-^T s,
 *                s = R / stab(z - W+ l - W- h - b+ - b-).
 *   wsquare      R_x = (W^2)^T (R / stab(W^2 1 + b^2))
 *   flat         R_x = 1^T (R / stab(1 1))  (all weights and inputs one)
 *
 * Composites (Zennit's names; "first" = the first layer in execution order):
 *   epsilon_plus              conv zplus,        dense epsilon
 *   epsilon_gamma_box         conv gamma,        dense epsilon, first conv zbox
 *   epsilon_alpha2_beta1      conv alpha2beta1,  dense epsilon
 *   epsilon_plus_flat         as epsilon_plus, first layer (conv or dense) flat
 *   epsilon_alpha2_beta1_flat as epsilon_alpha2_beta1, first layer flat
 *   epsilon                   every layer epsilon (not a Zennit composite)
 * "dense" is Gemm and MatMul (torch.nn.Linear); "conv" Conv and ConvTranspose.
 */
#include "methods/relevance.h"
#include "engine/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    RULE_NONE,          /* not set: take the composite's */
    RULE_EPSILON,
    RULE_ZPLUS,
    RULE_ALPHABETA,
    RULE_GAMMA,
    RULE_ZBOX,
    RULE_WSQUARE,
    RULE_FLAT,
    RULE_COUNT
} rule_kind;

typedef struct {
    const char *name;
    rule_kind kind;
    double alpha;       /* alpha-beta: alpha (beta = alpha - 1); 0 = o->lrp_alpha */
} rule_name;

static const rule_name rule_names[] = {
    {"epsilon", RULE_EPSILON, 0},     {"zplus", RULE_ZPLUS, 0},       {"z-plus", RULE_ZPLUS, 0},
    {"alpha1beta0", RULE_ALPHABETA, 1}, {"alpha1-beta0", RULE_ALPHABETA, 1},
    {"alpha2beta1", RULE_ALPHABETA, 2}, {"alpha2-beta1", RULE_ALPHABETA, 2},
    {"alphabeta", RULE_ALPHABETA, 0}, {"gamma", RULE_GAMMA, 0},       {"zbox", RULE_ZBOX, 0},
    {"z-beta", RULE_ZBOX, 0},         {"zbeta", RULE_ZBOX, 0},        {"wsquare", RULE_WSQUARE, 0},
    {"w-square", RULE_WSQUARE, 0},    {"flat", RULE_FLAT, 0},
};

typedef struct {
    const char *name;
    rule_kind conv, dense, first;
    double alpha;
    bool first_any;     /* first = first conv or dense layer (else first conv) */
} composite;

static const composite composites[] = {
    {"epsilon_plus", RULE_ZPLUS, RULE_EPSILON, RULE_NONE, 0, false},
    {"epsilon_gamma_box", RULE_GAMMA, RULE_EPSILON, RULE_ZBOX, 0, false},
    {"epsilon_alpha2_beta1", RULE_ALPHABETA, RULE_EPSILON, RULE_NONE, 2, false},
    {"epsilon_plus_flat", RULE_ZPLUS, RULE_EPSILON, RULE_FLAT, 0, true},
    {"epsilon_alpha2_beta1_flat", RULE_ALPHABETA, RULE_EPSILON, RULE_FLAT, 2, true},
    {"epsilon", RULE_EPSILON, RULE_EPSILON, RULE_NONE, 0, false},
};
#define N_COMPOSITES (int)(sizeof composites / sizeof *composites)

#define ZENNIT_EPSILON 1e-6     /* Zennit's default epsilon and stabiliser */
#define ZENNIT_GAMMA 0.25

/* Parameters every rule of one explanation shares. */
typedef struct {
    gb_ctx *ctx;
    gb_session *s;
    double eps;         /* the epsilon rule's */
    double stab;        /* every other rule's stabiliser */
    double gamma;
    const float *low, *high;   /* zbox bounds, n_box values (1: scalar; C: per channel, axis 1) */
    int n_box;
} lrp_env;

typedef enum { NODE_LAYER, NODE_NORM, NODE_PASS } node_kind;

/* One node's rule. */
typedef struct {
    node_kind kind;
    rule_kind rule;
    double alpha, beta;
    int w_slot, b_slot;   /* input index of the weight and the bias (-1: none) */
    int axis;             /* the output's channel axis (the bias's) */
    gb_tensor *wf;        /* BN-folded weight (owned), or NULL: the node's own */
    float *bias;          /* (C) effective bias, or NULL (none) */
    int64_t C;
    gb_tensor *zero_b;    /* zeros shaped like the bias input (substituted in forward) */
    int z_id;             /* tensor holding z (the BN output when folded), or -1: the node's output */
    const lrp_env *env;
} node_rule;

/* ---- small tensor helpers ----------------------------------------------------------------- */

static gb_status like(const lrp_env *env, const gb_tensor *t, gb_tensor **out) {
    return gb_tensor_create(env->ctx, GB_DTYPE_F32, t->ndim, t->dims, out);
}

/* z + e * sign(z), sign(0) = +1 (Zennit's core.stabilize). */
static inline float stab(float z, double e) { return z + (float)(z >= 0 ? e : -e); }

static void clamp_pos(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}
static void clamp_neg(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? x[i] : 0;
}

/* Add bias b[c] along `axis` of t (b may be NULL: nothing). */
static void add_bias(gb_tensor *t, int axis, const float *b) {
    if (!b) return;
    int64_t outer = 1, inner = 1, C = t->dims[axis];
    for (int i = 0; i < axis; i++) outer *= t->dims[i];
    for (int i = axis + 1; i < t->ndim; i++) inner *= t->dims[i];
    float *d = t->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < C; c++, d += inner)
            for (int64_t i = 0; i < inner; i++) d[i] += b[c];
}

/* ---- a layer's forward and transposed map with substituted weights ----------------------- */

/* out = layer(xin; W) + b (b: a C-vector or NULL). */
static gb_status layer_fwd(const gb_rule_call *c, const node_rule *nr, const gb_tensor *xin, const gb_tensor *W,
                           const float *b, gb_tensor *out) {
    const gb_tensor *in[8] = {0};
    gb_tensor *outs[8] = {0};
    in[0] = xin;
    in[nr->w_slot] = W;
    if (nr->b_slot >= 0) in[nr->b_slot] = nr->zero_b;
    outs[0] = out;
    gb_status st = gb_rule_forward(c, in, outs);
    if (!st) add_bias(out, nr->axis, b);
    return st;
}

/* acc += layer^T(g; W) (the transposed map, i.e. the input gradient). */
static gb_status layer_bwd(const gb_rule_call *c, const node_rule *nr, const gb_tensor *W, const gb_tensor *g,
                           gb_tensor *acc) {
    const gb_tensor *in[8] = {0}, *go[8] = {0};
    gb_tensor *gi[8] = {0};
    in[nr->w_slot] = W;
    go[0] = g;
    gi[0] = acc;
    return gb_rule_default(c, in, go, gi);
}

/* ---- the layer rules -------------------------------------------------------------------- */

typedef struct {
    gb_tensor *xp, *xn, *o1, *o2, *s, *c1, *c2, *wp, *wn;
    float *bp, *bn;
} scratch;

static void scratch_free(scratch *k) {
    gb_tensor_free(k->xp);
    gb_tensor_free(k->xn);
    gb_tensor_free(k->o1);
    gb_tensor_free(k->o2);
    gb_tensor_free(k->s);
    gb_tensor_free(k->c1);
    gb_tensor_free(k->c2);
    gb_tensor_free(k->wp);
    gb_tensor_free(k->wn);
    free(k->bp);
    free(k->bn);
}

/* wp = W + a * max(W, 0) * ..., the weight modifiers of the rules:
 * mode 0: max(W,0)  1: min(W,0)  2: W + g max(W,0)  3: W + g min(W,0)  4: W^2  5: 1 */
static void wmod(const float *w, float *o, int64_t n, int mode, double g) {
    float gf = (float)g;
    for (int64_t i = 0; i < n; i++) {
        float v = w ? w[i] : 0;
        switch (mode) {
        case 0: o[i] = v > 0 ? v : 0; break;
        case 1: o[i] = v < 0 ? v : 0; break;
        case 2: o[i] = v + gf * (v > 0 ? v : 0); break;
        case 3: o[i] = v + gf * (v < 0 ? v : 0); break;
        case 4: o[i] = v * v; break;
        default: o[i] = 1; break;
        }
    }
}

static gb_status layer_rule(void *user, const gb_rule_call *c) {
    const node_rule *nr = user;
    const lrp_env *env = nr->env;
    if (!c->grad_in[0] || !c->grad_out[0]) return GB_OK;
    const gb_tensor *x = c->in[0], *R = c->grad_out[0];
    const gb_tensor *W = nr->wf ? nr->wf : c->in[nr->w_slot];
    const gb_tensor *z = nr->z_id >= 0 ? gb__session_tensor(env->s, nr->z_id) : c->out[0];
    const float *b = nr->bias;
    int64_t nx = x->numel, no = R->numel, nw = W->numel, C = nr->C;
    float *dx = c->grad_in[0]->data;
    const float *xd = x->data, *rd = R->data, *zd = z->data;
    scratch k = {0};
    gb_status st = GB_OK;
#define TRY(e)                                                                                                   \
    do {                                                                                                         \
        if ((st = (e))) goto out;                                                                                \
    } while (0)
    bool has_pos = false, has_neg = false;
    for (int64_t i = 0; i < nx; i++) {
        has_pos |= xd[i] > 0;
        has_neg |= xd[i] < 0;
    }
    TRY(like(env, R, &k.s));
    TRY(like(env, x, &k.c1));
    float *sd = k.s->data, *c1 = k.c1->data;
    switch (nr->rule) {
    case RULE_EPSILON: {
        for (int64_t i = 0; i < no; i++) sd[i] = rd[i] / stab(zd[i], env->eps);
        TRY(layer_bwd(c, nr, W, k.s, k.c1));
        for (int64_t i = 0; i < nx; i++) dx[i] += xd[i] * c1[i];
        break;
    }
    case RULE_ZPLUS:
    case RULE_ALPHABETA:
    case RULE_GAMMA: {
        /* Two weight variants: "up" (W+ or W + gamma W+) pairs with x+ for the
         * positive part, "down" (W- or W + gamma W-) with x-; the negative
         * part (alpha-beta's beta, gamma where z < 0) swaps the pairing. */
        bool gamma = nr->rule == RULE_GAMMA;
        double beta = nr->rule == RULE_ALPHABETA ? nr->beta : 0;
        TRY(like(env, W, &k.wp));
        TRY(like(env, W, &k.wn));
        wmod(W->data, k.wp->data, nw, gamma ? 2 : 0, env->gamma);
        wmod(W->data, k.wn->data, nw, gamma ? 3 : 1, env->gamma);
        if (b) {
            k.bp = malloc(sizeof *k.bp * (size_t)C);
            k.bn = malloc(sizeof *k.bn * (size_t)C);
            if (!k.bp || !k.bn) {
                st = gb__err(env->ctx, GB_ERR_NOMEM, "lrp: out of memory");
                goto out;
            }
            wmod(b, k.bp, C, gamma ? 2 : 0, env->gamma);
            wmod(b, k.bn, C, gamma ? 3 : 1, env->gamma);
        }
        TRY(like(env, x, &k.xp));
        TRY(like(env, x, &k.xn));
        clamp_pos(xd, k.xp->data, nx);
        clamp_neg(xd, k.xn->data, nx);
        TRY(like(env, R, &k.o1));
        TRY(like(env, R, &k.o2));
        TRY(like(env, x, &k.c2));
        float *o1 = k.o1->data, *o2 = k.o2->data, *c2 = k.c2->data;
        /* the positive part: z+ = up x+ + down x- + b(up) */
        for (int part = 0; part < 2; part++) {
            if (part == 1 && !gamma && beta == 0) break;
            const gb_tensor *wa = part ? k.wn : k.wp, *wb = part ? k.wp : k.wn;
            const float *ba = part ? k.bn : k.bp;
            memset(o1, 0, sizeof *o1 * (size_t)no);
            memset(o2, 0, sizeof *o2 * (size_t)no);
            if (has_pos) TRY(layer_fwd(c, nr, k.xp, wa, ba, k.o1));
            else add_bias(k.o1, nr->axis, ba);
            if (has_neg) TRY(layer_fwd(c, nr, k.xn, wb, NULL, k.o2));
            for (int64_t i = 0; i < no; i++) {
                float r = rd[i];
                if (gamma) r = (part == 0 ? zd[i] > 0 : zd[i] < 0) ? r : 0;
                sd[i] = r / stab(o1[i] + o2[i], env->stab);
            }
            memset(c1, 0, sizeof *c1 * (size_t)nx);
            memset(c2, 0, sizeof *c2 * (size_t)nx);
            if (has_pos) TRY(layer_bwd(c, nr, wa, k.s, k.c1));
            if (has_neg) TRY(layer_bwd(c, nr, wb, k.s, k.c2));
            const float *xp = k.xp->data, *xn = k.xn->data;
            float f = (float)(gamma ? 1.0 : part == 0 ? (nr->rule == RULE_ZPLUS ? 1.0 : nr->alpha) : -beta);
            for (int64_t i = 0; i < nx; i++) dx[i] += f * (xp[i] * c1[i] + xn[i] * c2[i]);
        }
        break;
    }
    case RULE_ZBOX: {
        /* bounds as tensors shaped like x */
        TRY(like(env, x, &k.xp));
        TRY(like(env, x, &k.xn));
        float *lo = k.xp->data, *hi = k.xn->data;
        int64_t per_c = 1, Cx = x->ndim > 1 ? x->dims[1] : 1;
        for (int i = 2; i < x->ndim; i++) per_c *= x->dims[i];
        for (int64_t i = 0; i < nx; i++) {
            int64_t ch = env->n_box > 1 ? (i / per_c) % Cx : 0;
            lo[i] = env->low[ch];
            hi[i] = env->high[ch];
        }
        TRY(like(env, W, &k.wp));
        TRY(like(env, W, &k.wn));
        wmod(W->data, k.wp->data, nw, 0, 0);
        wmod(W->data, k.wn->data, nw, 1, 0);
        if (b) {
            k.bp = malloc(sizeof *k.bp * (size_t)C);
            k.bn = malloc(sizeof *k.bn * (size_t)C);
            if (!k.bp || !k.bn) {
                st = gb__err(env->ctx, GB_ERR_NOMEM, "lrp: out of memory");
                goto out;
            }
            wmod(b, k.bp, C, 0, 0);
            wmod(b, k.bn, C, 1, 0);
        }
        TRY(like(env, R, &k.o1));
        TRY(like(env, R, &k.o2));
        TRY(layer_fwd(c, nr, k.xp, k.wp, k.bp, k.o1));
        TRY(layer_fwd(c, nr, k.xn, k.wn, k.bn, k.o2));
        const float *o1 = k.o1->data, *o2 = k.o2->data;
        for (int64_t i = 0; i < no; i++) sd[i] = rd[i] / stab(zd[i] - o1[i] - o2[i], env->stab);
        TRY(like(env, x, &k.c2));
        float *c2 = k.c2->data;
        TRY(layer_bwd(c, nr, W, k.s, k.c1));
        for (int64_t i = 0; i < nx; i++) dx[i] += xd[i] * c1[i];
        TRY(layer_bwd(c, nr, k.wp, k.s, k.c2));
        for (int64_t i = 0; i < nx; i++) dx[i] -= lo[i] * c2[i];
        memset(c2, 0, sizeof *c2 * (size_t)nx);
        TRY(layer_bwd(c, nr, k.wn, k.s, k.c2));
        for (int64_t i = 0; i < nx; i++) dx[i] -= hi[i] * c2[i];
        break;
    }
    case RULE_WSQUARE:
    case RULE_FLAT: {
        bool flat = nr->rule == RULE_FLAT;
        TRY(like(env, W, &k.wp));
        wmod(W->data, k.wp->data, nw, flat ? 5 : 4, 0);
        if (b && !flat) {   /* Zennit squares every parameter, the bias too; Flat zeroes it */
            k.bp = malloc(sizeof *k.bp * (size_t)C);
            if (!k.bp) {
                st = gb__err(env->ctx, GB_ERR_NOMEM, "lrp: out of memory");
                goto out;
            }
            wmod(b, k.bp, C, 4, 0);
        }
        TRY(like(env, x, &k.xp));
        wmod(NULL, k.xp->data, nx, 5, 0);
        TRY(like(env, R, &k.o1));
        TRY(layer_fwd(c, nr, k.xp, k.wp, k.bp, k.o1));
        const float *o1 = k.o1->data;
        for (int64_t i = 0; i < no; i++) sd[i] = rd[i] / stab(o1[i], env->stab);
        TRY(layer_bwd(c, nr, k.wp, k.s, k.c1));
        for (int64_t i = 0; i < nx; i++) dx[i] += c1[i];
        break;
    }
    default:
        st = gb__err(env->ctx, GB_ERR_INTERNAL, "lrp: %s: no rule", c->node_name);
    }
#undef TRY
out:
    scratch_free(&k);
    return st;
}

/* Zennit's Norm: R_i = x_i [J^T (R / stab(z))]_i for every input that
 * receives relevance (average pooling, the sum of a residual block). */
static gb_status norm_rule(void *user, const gb_rule_call *c) {
    const node_rule *nr = user;
    const lrp_env *env = nr->env;
    if (!c->grad_out[0]) return GB_OK;
    const gb_tensor *R = c->grad_out[0], *z = c->out[0];
    gb_tensor *s = NULL, *tmp[8] = {0};
    const gb_tensor *go[8] = {0};
    gb_status st = like(env, R, &s);
    if (st) return st;
    const float *rd = R->data, *zd = z->data;
    float *sd = s->data;
    for (int64_t i = 0; i < R->numel; i++) sd[i] = rd[i] / stab(zd[i], env->stab);
    go[0] = s;
    for (int k = 0; k < c->n_in && k < 8 && !st; k++)
        if (c->grad_in[k]) st = like(env, c->in[k], &tmp[k]);
    if (!st) st = gb_rule_default(c, NULL, go, tmp);
    for (int k = 0; k < c->n_in && k < 8 && !st; k++) {
        if (!tmp[k]) continue;
        const float *x = c->in[k]->data, *t = tmp[k]->data;
        float *dx = c->grad_in[k]->data;
        for (int64_t i = 0; i < c->in[k]->numel; i++) dx[i] += x[i] * t[i];
    }
    for (int k = 0; k < 8; k++) gb_tensor_free(tmp[k]);
    gb_tensor_free(s);
    return st;
}

/* Zennit's Pass: the relevance of the output is the relevance of the input. */
static gb_status pass_rule(void *user, const gb_rule_call *c) {
    (void)user;
    if (!c->grad_out[0]) return GB_OK;
    if (!c->grad_in[0] || c->grad_in[0]->numel != c->grad_out[0]->numel) return gb_rule_default(c, NULL, NULL, NULL);
    float *dx = c->grad_in[0]->data;
    const float *r = c->grad_out[0]->data;
    for (int64_t i = 0; i < c->grad_in[0]->numel; i++) dx[i] += r[i];
    return GB_OK;
}

/* A product of two activations y = x * g where g is a gate (a sigmoid of
 * something: SiLU's x * sigmoid(x), squeeze-excitation's channel weights):
 * the signal takes all the relevance and the gate none (Arras et al. 2017,
 * "Explaining recurrent neural network predictions in sentiment analysis",
 * sec. 3: the signal-take-all rule for multiplicative gates). nr->w_slot is
 * the signal's input index. Where the signal is broadcast (smaller than y),
 * the relevance is summed back onto it. */
static gb_status gate_rule(void *user, const gb_rule_call *c) {
    const node_rule *nr = user;
    int k = nr->w_slot;
    if (!c->grad_out[0] || !c->grad_in[k]) return GB_OK;
    if (c->in[k]->numel == c->grad_out[0]->numel) {
        float *dx = c->grad_in[k]->data;
        const float *r = c->grad_out[0]->data;
        for (int64_t i = 0; i < c->in[k]->numel; i++) dx[i] += r[i];
        return GB_OK;
    }
    /* broadcast signal: Mul's own backward with the gate set to one */
    gb_tensor *one = NULL;
    const gb_tensor *in[2] = {0};
    gb_tensor *gi[2] = {0};
    gb_status st = like(nr->env, c->in[1 - k], &one);
    if (st) return st;
    wmod(NULL, one->data, one->numel, 5, 0);
    in[1 - k] = one;
    gi[k] = c->grad_in[k];
    st = gb_rule_default(c, in, NULL, gi);
    gb_tensor_free(one);
    return st;
}

static bool is_gate_op(const char *op) {
    return !strcmp(op, "Sigmoid") || !strcmp(op, "HardSigmoid") || !strcmp(op, "Softmax");
}

/* ---- assigning rules to the graph -------------------------------------------------------- */

static const char *const pass_ops[] = {"Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "Tanh",
                                       "Clip", "HardSigmoid", "HardSwish", "Softplus", "Softsign",
                                       "ThresholdedRelu", "BatchNormalization"};
#define N_PASS (int)(sizeof pass_ops / sizeof *pass_ops)

typedef struct {
    lrp_env env;
    node_rule *nodes;     /* per model node */
    gb_rule *rules;
    int n_rules;
} lrp_plan;

static void plan_free(lrp_plan *p, int n_nodes) {
    if (p->nodes)
        for (int i = 0; i < n_nodes; i++) {
            gb_tensor_free(p->nodes[i].wf);
            gb_tensor_free(p->nodes[i].zero_b);
            free(p->nodes[i].bias);
        }
    free(p->nodes);
    free(p->rules);
}

static int consumers(const gb_model *m, int id, int *only) {
    int n = 0;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++)
            if (m->nodes[i].in[k] == id) {
                n++;
                *only = i;
            }
    for (int i = 0; i < m->n_outputs; i++) n += m->outputs[i] == id;
    return n;
}

static bool is_layer(const gb_session *s, const gb__node *n) {
    bool conv = !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose");
    bool dense = !strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul");
    if (!(conv || dense) || n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0) return false;
    if (s->is_const[n->in[0]] || !s->is_const[n->in[1]]) return false;
    if (!strcmp(n->op_type, "Gemm") && gb__attr_int(n, "transA", 0)) return false;
    if (n->n_in > 2 && n->in[2] >= 0 && !s->is_const[n->in[2]]) return false;
    return true;
}

static bool is_conv(const gb__node *n) { return !strncmp(n->op_type, "Conv", 4); }

/* The layer's effective bias (C values, or NULL) and channel axis; folds a
 * following BatchNormalization. */
static gb_status setup_layer(lrp_plan *p, int i, rule_kind rk, double alpha) {
    gb_session *s = p->env.s;
    const gb_model *m = s->m;
    const gb__node *n = &m->nodes[i];
    node_rule *nr = &p->nodes[i];
    gb_ctx *ctx = p->env.ctx;
    const gb_tensor *out = &s->t[n->out[0]], *W = &s->t[n->in[1]];
    nr->kind = NODE_LAYER;
    nr->rule = rk;
    nr->alpha = alpha;
    nr->beta = alpha - 1;
    nr->w_slot = 1;
    nr->b_slot = n->n_in > 2 && n->in[2] >= 0 ? 2 : -1;
    nr->z_id = -1;
    nr->env = &p->env;
    bool matmul = !strcmp(n->op_type, "MatMul"), gemm = !strcmp(n->op_type, "Gemm");
    nr->axis = matmul ? out->ndim - 1 : 1;
    if (out->ndim <= nr->axis) return gb__err(ctx, GB_ERR_UNSUPPORTED, "lrp: %s: output has no channel axis", n->name);
    int64_t C = nr->C = out->dims[nr->axis];
    if (nr->b_slot >= 0) {
        const gb_tensor *B = &s->t[n->in[2]];
        if (B->numel != C)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "lrp: %s (%s): a bias of %lld values for %lld channels", n->name,
                           n->op_type, (long long)B->numel, (long long)C);
        gb_status st = like(&p->env, B, &nr->zero_b);
        if (st) return st;
        if (!(nr->bias = malloc(sizeof *nr->bias * (size_t)C))) return gb__err(ctx, GB_ERR_NOMEM, "lrp: out of memory");
        float beta = gemm ? gb__attr_float(n, "beta", 1.0f) : 1.0f;
        for (int64_t c = 0; c < C; c++) nr->bias[c] = beta * ((const float *)B->data)[c];
    }
    /* BatchNormalization as the only consumer: fold it (Zennit's
     * SequentialMergeBatchNorm). Conv's output channels are the weight's
     * axis 0; Gemm's B is (K, M), or (M, K) with transB. */
    int bn = -1;
    if (matmul || !strcmp(n->op_type, "ConvTranspose") || consumers(m, n->out[0], &bn) != 1 || bn < 0) return GB_OK;
    const gb__node *b = &m->nodes[bn];
    if (strcmp(b->op_type, "BatchNormalization") || b->n_in < 5 || b->in[0] != n->out[0]) return GB_OK;
    for (int k = 1; k < 5; k++)
        if (b->in[k] < 0 || !s->is_const[b->in[k]] || s->t[b->in[k]].numel != C) return GB_OK;
    const float *g = s->t[b->in[1]].data, *beta = s->t[b->in[2]].data, *mean = s->t[b->in[3]].data,
                *var = s->t[b->in[4]].data;
    float eps = gb__attr_float(b, "epsilon", 1e-5f);
    gb_status st = like(&p->env, W, &nr->wf);
    if (st) return st;
    if (!nr->bias && !(nr->bias = calloc((size_t)C, sizeof *nr->bias)))
        return gb__err(ctx, GB_ERR_NOMEM, "lrp: out of memory");
    const float *w = W->data;
    float *wf = nr->wf->data;
    bool col = gemm && !gb__attr_int(n, "transB", 0);   /* channel = column of B */
    int64_t per = W->numel / C;
    for (int64_t c = 0; c < C; c++) {
        float sc = (float)((double)g[c] / sqrt((double)var[c] + eps));
        nr->bias[c] = (nr->bias[c] - mean[c]) * sc + beta[c];
        for (int64_t j = 0; j < per; j++) {
            int64_t idx = col ? j * C + c : c * per + j;
            wf[idx] = w[idx] * sc;
        }
    }
    nr->z_id = b->out[0];
    return GB_OK;
}

static bool parse_rule(const char *name, rule_kind *k, double *alpha) {
    for (size_t i = 0; i < sizeof rule_names / sizeof *rule_names; i++)
        if (!strcmp(rule_names[i].name, name)) {
            *k = rule_names[i].kind;
            if (rule_names[i].alpha) *alpha = rule_names[i].alpha;
            return true;
        }
    return false;
}

/* Per-channel input bounds for zbox when none are given: the batch's min
 * and max per channel (axis 1). */
static gb_status default_box(gb_explainer *e, const gb_tensor *x, float **lo, float **hi, int *n) {
    int64_t C = x->ndim > 1 ? x->dims[1] : 1, per = 1;
    for (int i = 2; i < x->ndim; i++) per *= x->dims[i];
    *lo = malloc(sizeof **lo * (size_t)C);
    *hi = malloc(sizeof **hi * (size_t)C);
    if (!*lo || !*hi) return gb__err(e->ctx, GB_ERR_NOMEM, "lrp: out of memory");
    const float *d = x->data;
    for (int64_t c = 0; c < C; c++) {
        (*lo)[c] = INFINITY;
        (*hi)[c] = -INFINITY;
    }
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = (i / per) % C;
        if (d[i] < (*lo)[c]) (*lo)[c] = d[i];
        if (d[i] > (*hi)[c]) (*hi)[c] = d[i];
    }
    *n = (int)C;
    return GB_OK;
}

static gb_status build_plan(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, lrp_plan *p,
                            float **own_lo, float **own_hi) {
    gb_ctx *ctx = e->ctx;
    gb_session *s = e->s;
    const gb_model *m = s->m;
    memset(p, 0, sizeof *p);
    p->env.ctx = ctx;
    p->env.s = s;
    p->env.eps = o->lrp_epsilon > 0 ? o->lrp_epsilon : o->lrp_epsilon < 0 ? 0 : ZENNIT_EPSILON;
    p->env.stab = ZENNIT_EPSILON;
    p->env.gamma = o->lrp_gamma > 0 ? o->lrp_gamma : ZENNIT_GAMMA;
    /* the rule set */
    const composite *cp = &composites[0];
    if (o->lrp_composite) {
        cp = NULL;
        for (int i = 0; i < N_COMPOSITES; i++)
            if (!strcmp(composites[i].name, o->lrp_composite)) cp = &composites[i];
        if (!cp) {
            char list[512];
            size_t k = 0;
            for (int i = 0; i < N_COMPOSITES && k < sizeof list; i++)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", composites[i].name);
            return gb__err(ctx, GB_ERR_ARG, "explain: unknown composite '%s' (known: %s)", o->lrp_composite, list);
        }
    }
    rule_kind conv = cp->conv, dense = cp->dense, first = cp->first;
    double alpha = cp->alpha ? cp->alpha : 2, first_alpha = alpha;
    bool first_any = cp->first_any;
    if (o->lrp_alpha != 0) {
        if (o->lrp_alpha < 1) return gb__err(ctx, GB_ERR_ARG, "explain: alpha %g must be >= 1 (beta = alpha - 1 >= 0)", o->lrp_alpha);
        alpha = first_alpha = o->lrp_alpha;
    }
    if (o->lrp_rule) {
        rule_kind k;
        if (!parse_rule(o->lrp_rule, &k, &alpha))
            return gb__err(ctx, GB_ERR_ARG, "explain: unknown LRP rule '%s' (epsilon, zplus, alpha1beta0, alpha2beta1, "
                           "alphabeta, gamma, zbox, wsquare, flat)", o->lrp_rule);
        conv = dense = k;
        if (!o->lrp_composite) first = RULE_NONE;
        first_alpha = alpha;
    }
    if (o->lrp_first_rule) {
        if (!parse_rule(o->lrp_first_rule, &first, &first_alpha))
            return gb__err(ctx, GB_ERR_ARG, "explain: unknown first-layer rule '%s'", o->lrp_first_rule);
        first_any = true;
    }
    bool need_box = conv == RULE_ZBOX || dense == RULE_ZBOX || first == RULE_ZBOX;
    if (need_box) {
        if (o->lrp_box_n > 0) {
            if (!o->lrp_low || !o->lrp_high) return gb__err(ctx, GB_ERR_ARG, "explain: zbox bounds without values");
            int64_t C = x->ndim > 1 ? x->dims[1] : 1;
            if (o->lrp_box_n != 1 && o->lrp_box_n != C)
                return gb__err(ctx, GB_ERR_ARG, "explain: %d zbox bounds for an input of %lld channels (give 1 or %lld)",
                               o->lrp_box_n, (long long)C, (long long)C);
            for (int c = 0; c < o->lrp_box_n; c++)
                if (!(o->lrp_low[c] <= o->lrp_high[c]))
                    return gb__err(ctx, GB_ERR_ARG, "explain: zbox bound low %g > high %g", o->lrp_low[c], o->lrp_high[c]);
            p->env.low = o->lrp_low;
            p->env.high = o->lrp_high;
            p->env.n_box = o->lrp_box_n;
        } else {
            gb_status st = default_box(e, x, own_lo, own_hi, &p->env.n_box);
            if (st) return st;
            p->env.low = *own_lo;
            p->env.high = *own_hi;
        }
    }
    p->nodes = calloc((size_t)m->n_nodes + 1, sizeof *p->nodes);
    p->rules = calloc((size_t)m->n_nodes + N_PASS + 1, sizeof *p->rules);
    if (!p->nodes || !p->rules) return gb__err(ctx, GB_ERR_NOMEM, "lrp: out of memory");
    bool first_done = first == RULE_NONE;
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        if (s->folded[i]) continue;
        node_rule *nr = &p->nodes[i];
        nr->env = &p->env;
        if (is_layer(s, n)) {
            rule_kind rk = is_conv(n) ? conv : dense;
            double a = alpha;
            if (!first_done && (first_any || is_conv(n))) {
                rk = first;
                a = first_alpha;
                first_done = true;
            }
            if (rk == RULE_ZBOX && !p->env.n_box) {
                gb_status st = default_box(e, x, own_lo, own_hi, &p->env.n_box);
                if (st) return st;
                p->env.low = *own_lo;
                p->env.high = *own_hi;
            }
            gb_status st = setup_layer(p, i, rk, a);
            if (st) return st;
            p->rules[p->n_rules++] = (gb_rule){.node = n->name, .fn = layer_rule, .user = nr};
        } else if (!strcmp(n->op_type, "AveragePool") || !strcmp(n->op_type, "GlobalAveragePool") ||
                   !strcmp(n->op_type, "Add")) {
            nr->kind = NODE_NORM;
            p->rules[p->n_rules++] = (gb_rule){.node = n->name, .fn = norm_rule, .user = nr};
        } else if (!strcmp(n->op_type, "Mul") && n->n_in == 2 && n->in[0] >= 0 && n->in[1] >= 0 &&
                   !s->is_const[n->in[0]] && !s->is_const[n->in[1]]) {
            /* which operand is the gate: the one a sigmoid-like op made, else
             * the smaller (broadcast) one, else the second */
            int p0 = m->tensors[n->in[0]].producer, p1 = m->tensors[n->in[1]].producer;
            bool g0 = p0 >= 0 && is_gate_op(m->nodes[p0].op_type), g1 = p1 >= 0 && is_gate_op(m->nodes[p1].op_type);
            int gate = g1 && !g0 ? 1 : g0 && !g1 ? 0 : s->t[n->in[0]].numel < s->t[n->in[1]].numel ? 0 : 1;
            nr->w_slot = 1 - gate;
            p->rules[p->n_rules++] = (gb_rule){.node = n->name, .fn = gate_rule, .user = nr};
        }
    }
    for (int k = 0; k < N_PASS; k++) p->rules[p->n_rules++] = (gb_rule){.op_type = pass_ops[k], .fn = pass_rule};
    return GB_OK;
}

static gb_status lrp(gb_explainer *e, const gb_tensor *x, const gb_explain_opts *o, gb_explanation *r) {
    int64_t N = r->n_items;
    lrp_plan p;
    float *lo = NULL, *hi = NULL;
    int64_t *items = malloc(sizeof *items * (size_t)N);
    gb_status st = items ? GB_OK : gb__err(e->ctx, GB_ERR_NOMEM, "lrp: out of memory");
    memset(&p, 0, sizeof p);
    if (!st) st = build_plan(e, x, o, &p, &lo, &hi);
    if (!st) st = gb__explain_alloc_attr(e, r, o->layer);
    if (!st) {
        for (int64_t n = 0; n < N; n++) items[n] = n;
        st = gb__relevance_pass(e, r, x->data, NULL, N, items, o->layer, true, NULL, 0, p.rules, p.n_rules, NULL, NULL,
                                r->attr->data, NULL, NULL);
    }
    if (!st) {
        /* Conservation (Bach et al. 2015, eq. 5): sum(R) = f(x) up to what
         * biases, stabilisers and the rule absorb. */
        r->delta = calloc((size_t)N, sizeof *r->delta);
        r->baseline_value = calloc((size_t)N, sizeof *r->baseline_value);
        if (!r->delta || !r->baseline_value) st = gb__err(e->ctx, GB_ERR_NOMEM, "lrp: out of memory");
        int64_t per = r->attr->numel / N;
        const float *a = r->attr->data;
        for (int64_t n = 0; !st && n < N; n++) {
            double sum = 0;
            for (int64_t i = 0; i < per; i++) sum += a[n * per + i];
            r->delta[n] = sum - r->value[n];
        }
    }
    plan_free(&p, e->m->n_nodes);
    free(lo);
    free(hi);
    free(items);
    return st;
}

const gb_method gb__methods_relevance_lrp[] = {
    {"lrp", lrp, GB_HEATMAP_SIGNED, GB_METHOD_LAYER | GB_METHOD_DELTA, "Bach et al. 2015; Montavon et al. 2019",
     "layer-wise relevance propagation (--composite, --rule; default epsilon_plus)"},
    {0},
};
