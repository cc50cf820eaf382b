/* visualize_maximize.c — activation maximization: gradient ascent on an
 * input from noise toward what a unit, channel, layer direction or class
 * logit responds to most (Erhan et al. 2009; Simonyan et al. 2014, eq. 1;
 * Yosinski et al. 2015, sec. 2.2; Olah et al. 2017).
 *
 * One step, for a batch of B images:
 *   params --(Fourier or pixel)--> x (B, C, H, W) --random warp--> x'
 *   --model--> activations --objectives (+ diversity)--> seeds
 *   --backward per seeded tensor--> dJ/dx' --warp adjoint--> dJ/dx
 *   - regularizer gradients --parameterization adjoint--> dJ/dparams
 *   --Adam / gradient ascent--> params
 * followed, for the pixel parameterization, by Yosinski et al.'s in-place
 * regularizers (clamp to the image range, blur every k steps, clipping of
 * low-contribution pixels). */
#include "methods/visualize_internal.h"
#include "engine/session.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    gb_session *s;
    gb_ctx *ctx;
    const gb_maximize_opts *o;
    gb__vis_space sp;
    int B;
    int64_t n_par;               /* parameters */
    float *p, *m1, *m2, *gp;     /* parameters, Adam moments, gradient */
    float *x;                    /* (B, C, H, W) current image in model-input space */
    float *v;                    /* Fourier: the sigmoid outputs (B, C, H, W) */
    float *gx;                   /* d J / d x */
    float *gxw;                  /* d J / d warped x */
    float *tmp;                  /* (C, H, W) scratch */
    gb_tensor *xin;              /* the warped batch fed to the model */
    gb__fft_param fft;
    float M[3][3];
    bool decorrelate;
    /* distinct tensors read by the objectives and the diversity term */
    int n_t;
    const char *tname[GB_MAX_DIMS * 4 + 1];
    gb_tensor *seed[GB_MAX_DIMS * 4 + 1];
} mx_state;

#define MAX_TENSORS (GB_MAX_DIMS * 4 + 1)

static float sigmoidf_(float u) { return 1.0f / (1.0f + expf(-u)); }

/* ---- the parameterization ------------------------------------------------------ */

static int64_t spec_size(const mx_state *st) { return 2 * (int64_t)st->fft.H * st->fft.K; }

static void param_forward(mx_state *st) {
    const gb__vis_space *sp = &st->sp;
    if (st->o->param == GB_VIS_PARAM_PIXEL) {
        memcpy(st->x, st->p, sizeof(float) * (size_t)(st->B * sp->CHW));
        return;
    }
    for (int b = 0; b < st->B; b++) {
        float *t = st->tmp, *v = st->v + b * sp->CHW, *x = st->x + b * sp->CHW;
        for (int c = 0; c < sp->C; c++)
            gb__fft_forward(&st->fft, st->p + ((int64_t)b * sp->C + c) * spec_size(st), t + c * sp->HW);
        for (int64_t i = 0; i < sp->HW; i++) {
            float u[3];
            for (int c = 0; c < sp->C; c++) u[c] = t[c * sp->HW + i];
            if (st->decorrelate) {
                /* lucid's _linear_decorrelate_color: rgb = M t per pixel */
                float r[3];
                for (int c = 0; c < 3; c++) r[c] = st->M[c][0] * u[0] + st->M[c][1] * u[1] + st->M[c][2] * u[2];
                memcpy(u, r, sizeof r);
            }
            for (int c = 0; c < sp->C; c++) {
                float vv = sigmoidf_(u[c]);
                v[c * sp->HW + i] = vv;
                x[c * sp->HW + i] = (float)(sp->a[c] * vv + sp->b[c]);
            }
        }
    }
}

/* gp = (d x / d params)^T gx */
static void param_backward(mx_state *st) {
    const gb__vis_space *sp = &st->sp;
    if (st->o->param == GB_VIS_PARAM_PIXEL) {
        memcpy(st->gp, st->gx, sizeof(float) * (size_t)(st->B * sp->CHW));
        return;
    }
    for (int b = 0; b < st->B; b++) {
        float *t = st->tmp;
        const float *v = st->v + b * sp->CHW, *g = st->gx + b * sp->CHW;
        for (int64_t i = 0; i < sp->HW; i++) {
            float gu[3];
            for (int c = 0; c < sp->C; c++) {
                float vv = v[c * sp->HW + i];
                gu[c] = (float)(g[c * sp->HW + i] * sp->a[c]) * vv * (1 - vv);
            }
            if (st->decorrelate) {
                float r[3];
                for (int c = 0; c < 3; c++) r[c] = st->M[0][c] * gu[0] + st->M[1][c] * gu[1] + st->M[2][c] * gu[2];
                memcpy(gu, r, sizeof r);
            }
            for (int c = 0; c < sp->C; c++) t[c * sp->HW + i] = gu[c];
        }
        for (int c = 0; c < sp->C; c++)
            gb__fft_backward(&st->fft, t + c * sp->HW, st->gp + ((int64_t)b * sp->C + c) * spec_size(st));
    }
}

/* ---- objectives -------------------------------------------------------------------- */

static const char *obj_tensor(gb_session *s, const gb_vis_objective *ob) {
    if (ob->tensor) return ob->tensor;
    return s->m->tensors[s->m->outputs[0]].name;
}

static int tensor_slot(mx_state *st, const char *name) {
    for (int i = 0; i < st->n_t; i++)
        if (!strcmp(st->tname[i], name)) return i;
    return -1;
}

static gb_status check_objective(mx_state *st, const gb_vis_objective *ob, const gb_tensor *T) {
    gb_ctx *ctx = st->ctx;
    const char *name = obj_tensor(st->s, ob);
    if (T->ndim < 2 || T->dims[0] != st->B)
        return gb__err(ctx, GB_ERR_SHAPE, "maximize: '%s' is not a (batch, channels, ...) tensor", name);
    if (ob->kind != GB_VIS_OBJ_DIRECTION && (ob->index < 0 || ob->index >= T->dims[1]))
        return gb__err(ctx, GB_ERR_ARG, "maximize: index %lld outside 0..%lld of '%s'", (long long)ob->index,
                       (long long)T->dims[1] - 1, name);
    if (ob->kind == GB_VIS_OBJ_NEURON &&
        (T->ndim != 4 || ob->h < 0 || ob->w < 0 || ob->h >= T->dims[2] || ob->w >= T->dims[3]))
        return gb__err(ctx, GB_ERR_ARG, "maximize: unit (%lld, %lld) is outside the map of '%s'", (long long)ob->h,
                       (long long)ob->w, name);
    if (ob->kind == GB_VIS_OBJ_DIRECTION && (!ob->direction || ob->n_direction != T->dims[1]))
        return gb__err(ctx, GB_ERR_ARG, "maximize: a direction for '%s' needs %lld weights", name,
                       (long long)T->dims[1]);
    return GB_OK;
}

/* Add weight * d obj / d T into seed and the objective of each item into val. */
static void objective_seed(const gb_vis_objective *ob, const gb_tensor *T, float *seed, double *val) {
    int64_t B = T->dims[0], C = T->dims[1], S = T->numel / (B * C);
    double wt = ob->weight != 0 ? ob->weight : 1.0;
    const float *a = T->data;
    for (int64_t b = 0; b < B; b++) {
        const float *ab = a + b * C * S;
        float *sb = seed + b * C * S;
        double v = 0;
        switch (ob->kind) {
        case GB_VIS_OBJ_CLASS:
            for (int64_t i = 0; i < S; i++) v += ab[ob->index * S + i], sb[ob->index * S + i] += (float)wt;
            break;
        case GB_VIS_OBJ_NEURON: {
            int64_t k = ob->index * S + ob->h * T->dims[3] + ob->w;
            v = ab[k], sb[k] += (float)wt;
            break;
        }
        case GB_VIS_OBJ_CHANNEL:
            for (int64_t i = 0; i < S; i++) v += ab[ob->index * S + i], sb[ob->index * S + i] += (float)(wt / S);
            v /= (double)S;
            break;
        default: /* direction */
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < S; i++)
                    v += ob->direction[c] * ab[c * S + i], sb[c * S + i] += (float)(wt * ob->direction[c] / S);
            v /= (double)S;
            break;
        }
        if (val) val[b] += wt * v;
    }
}

/* Diversity (lucid objectives.diversity): D = (1/B) sum_i sum_{j != i} <u_i, u_j>
 * with u_i the L2-normalized Gram matrix A_i A_i^T of image i's (C, S)
 * activation. Adds -weight * dD/dA into seed; returns D. */
static gb_status diversity_seed(gb_ctx *ctx, const gb_tensor *T, double weight, float *seed, double *D) {
    int64_t B = T->dims[0], C = T->dims[1], S = T->numel / (B * C), CC = C * C;
    float *G = malloc(sizeof(float) * (size_t)(B * CC)), *q = malloc(sizeof(float) * (size_t)CC);
    double *nrm = malloc(sizeof(double) * (size_t)B);
    if (!G || !q || !nrm) {
        free(G), free(q), free(nrm);
        return gb__err(ctx, GB_ERR_NOMEM, "maximize: out of memory");
    }
    const float *A = T->data;
    for (int64_t b = 0; b < B; b++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)C, (int)C, (int)S, 1.0f, A + b * C * S, (int)S,
                    A + b * C * S, (int)S, 0.0f, G + b * CC, (int)C);
        double n2 = 0;
        for (int64_t i = 0; i < CC; i++) n2 += (double)G[b * CC + i] * G[b * CC + i];
        nrm[b] = sqrt(n2) + 1e-10;
        for (int64_t i = 0; i < CC; i++) G[b * CC + i] = (float)(G[b * CC + i] / nrm[b]);
    }
    double total = 0;
    for (int64_t b = 0; b < B; b++) {
        /* q = dD/du_b = (2 / B) sum_{j != b} u_j ; dD/dg_b = (q - <q, u_b> u_b) / |g_b| */
        memset(q, 0, sizeof(float) * (size_t)CC);
        for (int64_t j = 0; j < B; j++)
            if (j != b)
                for (int64_t i = 0; i < CC; i++) q[i] += G[j * CC + i];
        double dot = 0;
        for (int64_t i = 0; i < CC; i++) dot += (double)q[i] * G[b * CC + i];
        total += dot;
        for (int64_t i = 0; i < CC; i++) q[i] = (float)((2.0 / B) * (q[i] - dot * G[b * CC + i]) / nrm[b]);
        /* dD/dA_b = (dG + dG^T) A_b = 2 dG A_b (dG symmetric); seed -= weight * that */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)C, (int)S, (int)C, (float)(-2.0 * weight), q,
                    (int)C, A + b * C * S, (int)S, 1.0f, seed + b * C * S, (int)S);
    }
    *D = total / (double)B;
    free(G), free(q), free(nrm);
    return GB_OK;
}

/* Forward on xin, seeds for every objective, and (grad != NULL) the
 * backward passes accumulating d J / d xin into grad. val: B values. */
static gb_status evaluate(mx_state *st, const gb_vis_objective *obj, int n_obj, double *val, float *grad) {
    gb_session *s = st->s;
    const gb_tensor *in[1] = {st->xin};
    gb_status rc = gb_session_run(s, in, 1);
    if (rc) return rc;
    for (int b = 0; b < st->B; b++) val[b] = 0;
    for (int i = 0; i < st->n_t; i++) {
        const gb_tensor *T = gb_session_tensor(s, st->tname[i]);
        if (!T) return gb__err(st->ctx, GB_ERR_NOT_FOUND, "no tensor named '%s' in the model", st->tname[i]);
        if (!st->seed[i]) {
            if ((rc = gb_tensor_create(st->ctx, GB_DTYPE_F32, T->ndim, T->dims, &st->seed[i]))) return rc;
        } else if (st->seed[i]->numel != T->numel) {
            return gb__err(st->ctx, GB_ERR_SHAPE, "maximize: '%s' changed shape", st->tname[i]);
        }
        memset(st->seed[i]->data, 0, sizeof(float) * (size_t)T->numel);
    }
    for (int k = 0; k < n_obj; k++) {
        int i = tensor_slot(st, obj_tensor(s, &obj[k]));
        const gb_tensor *T = gb_session_tensor(s, st->tname[i]);
        if ((rc = check_objective(st, &obj[k], T))) return rc;
        objective_seed(&obj[k], T, st->seed[i]->data, val);
    }
    if (st->o->diversity != 0 && st->B > 1) {
        const char *dl = st->o->diversity_layer ? st->o->diversity_layer : obj_tensor(s, &obj[0]);
        int i = tensor_slot(st, dl);
        double D = 0;
        if ((rc = diversity_seed(st->ctx, gb_session_tensor(s, dl), st->o->diversity, st->seed[i]->data, &D)))
            return rc;
        for (int b = 0; b < st->B; b++) val[b] -= st->o->diversity * D / st->B;
    }
    if (!grad) return GB_OK;
    memset(grad, 0, sizeof(float) * (size_t)(st->B * st->sp.CHW));
    for (int i = 0; i < st->n_t; i++)
        if ((rc = gb__vis_backward_into(s, st->tname[i], st->seed[i], grad))) return rc;
    return GB_OK;
}

/* ---- pixel-space regularizers of Yosinski et al. 2015 ------------------------------ */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Zero (x = 0: the dataset mean) the pixels whose contribution
 * sum_c |x_c * g_c| lies below the given percentile. */
static gb_status clip_contribution(mx_state *st, float *x, const float *g, double pct) {
    const gb__vis_space *sp = &st->sp;
    float *c = malloc(sizeof(float) * (size_t)sp->HW), *sorted = malloc(sizeof(float) * (size_t)sp->HW);
    if (!c || !sorted) {
        free(c), free(sorted);
        return gb__err(st->ctx, GB_ERR_NOMEM, "maximize: out of memory");
    }
    for (int64_t i = 0; i < sp->HW; i++) {
        c[i] = 0;
        for (int k = 0; k < sp->C; k++) c[i] += fabsf(x[k * sp->HW + i] * g[k * sp->HW + i]);
    }
    memcpy(sorted, c, sizeof(float) * (size_t)sp->HW);
    qsort(sorted, (size_t)sp->HW, sizeof(float), cmp_float);
    int64_t r = (int64_t)floor(pct / 100.0 * (double)(sp->HW - 1));
    float thr = sorted[r < 0 ? 0 : r];
    for (int64_t i = 0; i < sp->HW; i++)
        if (c[i] < thr)
            for (int k = 0; k < sp->C; k++) x[k * sp->HW + i] = 0;
    free(c), free(sorted);
    return GB_OK;
}

static void clamp_range(const gb__vis_space *sp, float *x) {
    for (int c = 0; c < sp->C; c++) {
        float lo = (float)(sp->a[c] >= 0 ? sp->b[c] : sp->a[c] + sp->b[c]);
        float hi = (float)(sp->a[c] >= 0 ? sp->a[c] + sp->b[c] : sp->b[c]);
        for (int64_t i = 0; i < sp->HW; i++) {
            float *p = &x[c * sp->HW + i];
            *p = *p < lo ? lo : *p > hi ? hi : *p;
        }
    }
}

/* ---- the loop ------------------------------------------------------------------------ */

static gb_status check_opts(gb_ctx *ctx, const gb_maximize_opts *o) {
    if (o->param < 0 || o->param >= GB_VIS_PARAM_COUNT || o->optimizer < 0 || o->optimizer >= GB_VIS_OPTIM_COUNT)
        return gb__err(ctx, GB_ERR_ARG, "maximize: unknown parameterization or optimizer");
    if (o->steps < 0 || o->steps > 1000000 || !(o->lr > 0) || o->n_images < 1 || o->n_images > 256)
        return gb__err(ctx, GB_ERR_ARG, "maximize: need steps in 0..1000000, lr > 0 and 1..256 images");
    if (!(o->init_sd >= 0) || !(o->l2 >= 0) || !(o->tv >= 0) || !(o->tv_beta >= 1) || !(o->blur_sigma >= 0) ||
        !(o->clip_percentile >= 0 && o->clip_percentile < 100) || !(o->jitter >= 0) ||
        !(o->scale_jitter >= 0 && o->scale_jitter < 1) || !(o->rotate_deg >= 0) || !(o->diversity >= 0) ||
        !(o->decay_power >= 0))
        return gb__err(ctx, GB_ERR_ARG,
                       "maximize: regularizer weights, jitter and init_sd must be >= 0, tv_beta >= 1, "
                       "clip_percentile < 100, scale_jitter < 1");
    if (o->blur_sigma > 0 && o->blur_every < 1)
        return gb__err(ctx, GB_ERR_ARG, "maximize: blur_every must be >= 1");
    return GB_OK;
}

static void state_free(mx_state *st) {
    free(st->p), free(st->m1), free(st->m2), free(st->gp), free(st->x), free(st->v), free(st->gx);
    free(st->gxw), free(st->tmp);
    gb_tensor_free(st->xin);
    gb__fft_free(&st->fft);
    for (int i = 0; i < st->n_t; i++) gb_tensor_free(st->seed[i]);
}

static gb_status add_tensor(mx_state *st, const char *name) {
    if (tensor_slot(st, name) >= 0) return GB_OK;
    if (st->n_t == MAX_TENSORS) return gb__err(st->ctx, GB_ERR_ARG, "maximize: too many distinct tensors");
    st->tname[st->n_t++] = name;
    return GB_OK;
}

gb_status gb_maximize(gb_session *s, const gb_preproc *pp, const gb_vis_objective *obj, int n_obj,
                      const gb_maximize_opts *o, gb_tensor **x_out, double *final) {
    gb_ctx *ctx = s->ctx;
    *x_out = NULL;
    gb_maximize_opts dflt = GB_MAXIMIZE_OPTS_INIT;
    if (!o) o = &dflt;
    gb_status rc = check_opts(ctx, o);
    if (rc) return rc;
    if (!obj || n_obj < 1) return gb__err(ctx, GB_ERR_ARG, "maximize: no objective");
    mx_state st = {.s = s, .ctx = ctx, .o = o, .B = o->n_images};
    if ((rc = gb__vis_space_init(s, pp, &st.sp))) return rc;
    gb__vis_space *sp = &st.sp;
    if (sp->static_batch && sp->static_batch != st.B)
        return gb__err(ctx, GB_ERR_ARG, "maximize: the model's batch is fixed to %lld; ask for that many images",
                       (long long)sp->static_batch);
    for (int k = 0; k < n_obj; k++) {
        if (obj[k].kind < 0 || obj[k].kind >= GB_VIS_OBJ_COUNT)
            return gb__err(ctx, GB_ERR_ARG, "maximize: objective %d has an unknown kind", k);
        if ((rc = add_tensor(&st, obj_tensor(s, &obj[k])))) return rc;
    }
    if (o->diversity != 0 && st.B > 1 &&
        (rc = add_tensor(&st, o->diversity_layer ? o->diversity_layer : obj_tensor(s, &obj[0]))))
        return rc;

    bool fourier = o->param == GB_VIS_PARAM_FOURIER;
    st.decorrelate = fourier && o->decorrelate && sp->C == 3;
    if (st.decorrelate) gb__color_decorrelation(st.M);
    if (fourier && (rc = gb__fft_init(ctx, sp->H, sp->W, o->decay_power, &st.fft))) return rc;
    int64_t BN = st.B * sp->CHW;
    st.n_par = fourier ? st.B * sp->C * spec_size(&st) : BN;
    size_t np = (size_t)st.n_par * sizeof(float), nx = (size_t)BN * sizeof(float);
    st.p = malloc(np), st.m1 = calloc(1, np), st.m2 = calloc(1, np), st.gp = malloc(np);
    st.x = malloc(nx), st.v = malloc(nx), st.gx = malloc(nx), st.gxw = malloc(nx);
    st.tmp = malloc((size_t)sp->CHW * sizeof(float));
    int64_t dims[4] = {st.B, sp->C, sp->H, sp->W};
    if (!st.p || !st.m1 || !st.m2 || !st.gp || !st.x || !st.v || !st.gx || !st.gxw || !st.tmp) {
        state_free(&st);
        return gb__err(ctx, GB_ERR_NOMEM, "maximize: out of memory");
    }
    if ((rc = gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, &st.xin))) {
        state_free(&st);
        return rc;
    }
    gb_session_keep_activations(s, 1);

    gb__rng rng;
    gb__rng_seed(&rng, o->seed);
    for (int64_t i = 0; i < st.n_par; i++) st.p[i] = (float)(o->init_sd * gb__rng_normal(&rng));
    double *val = malloc(sizeof(double) * (size_t)st.B);
    if (!val) rc = gb__err(ctx, GB_ERR_NOMEM, "maximize: out of memory");
    float fill[GB_PREPROC_MAX_CHANNELS];
    for (int c = 0; c < sp->C; c++) fill[c] = (float)(sp->a[c] * 0.5 + sp->b[c]);  /* mid-gray */
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

    for (int step = 0; !rc && step < o->steps; step++) {
        param_forward(&st);
        /* One random transformation per step, shared by the batch (lucent). */
        gb__warp w;
        gb__warp_random(&rng, sp->H, sp->W, o->jitter, o->scale_jitter, o->rotate_deg, &w);
        bool warp = !gb__warp_is_identity(&w);
        float *xin = st.xin->data;
        for (int64_t bc = 0; bc < st.B * sp->C; bc++) {
            if (warp) gb__warp_forward(&w, sp->H, sp->W, st.x + bc * sp->HW, fill[bc % sp->C], xin + bc * sp->HW);
            else memcpy(xin + bc * sp->HW, st.x + bc * sp->HW, sizeof(float) * (size_t)sp->HW);
        }
        if ((rc = evaluate(&st, obj, n_obj, val, st.gxw))) break;
        if (warp) {
            memset(st.gx, 0, nx);
            for (int64_t bc = 0; bc < st.B * sp->C; bc++)
                gb__warp_backward(&w, sp->H, sp->W, st.gxw + bc * sp->HW, st.gx + bc * sp->HW);
        } else {
            memcpy(st.gx, st.gxw, nx);
        }
        /* dJ/dx of - l2 sum x^2 - tv TV(x) */
        for (int64_t i = 0; i < BN; i++) st.gx[i] -= (float)(2 * o->l2 * st.x[i]);
        if (o->tv > 0)
            for (int b = 0; b < st.B; b++) {
                /* gb__tv adds +tv dTV/dx; the ascent needs its negative */
                memset(st.tmp, 0, (size_t)sp->CHW * sizeof(float));
                gb__tv(st.x + b * sp->CHW, sp->C, sp->H, sp->W, o->tv_beta, o->tv, st.tmp);
                for (int64_t i = 0; i < sp->CHW; i++) st.gx[b * sp->CHW + i] -= st.tmp[i];
            }
        param_backward(&st);
        if (o->optimizer == GB_VIS_OPTIM_SGD) {
            for (int64_t i = 0; i < st.n_par; i++) st.p[i] += (float)(o->lr * st.gp[i]);
        } else {
            /* Adam (Kingma & Ba 2015) on -J, i.e. ascent on J */
            double bc1 = 1 - pow(beta1, step + 1), bc2 = 1 - pow(beta2, step + 1);
            for (int64_t i = 0; i < st.n_par; i++) {
                float g = st.gp[i];
                st.m1[i] = (float)(beta1 * st.m1[i] + (1 - beta1) * g);
                st.m2[i] = (float)(beta2 * st.m2[i] + (1 - beta2) * g * g);
                st.p[i] += (float)(o->lr / bc1 * st.m1[i] / (sqrt(st.m2[i]) / sqrt(bc2) + eps));
            }
        }
        if (!fourier) {
            for (int b = 0; b < st.B && !rc; b++) {
                float *x = st.p + b * sp->CHW;
                if (o->clip_range != 0) clamp_range(sp, x);
                if (o->blur_sigma > 0 && (step + 1) % o->blur_every == 0)
                    rc = gb__gaussian_blur(ctx, x, sp->C, sp->H, sp->W, o->blur_sigma);
                if (!rc && o->clip_percentile > 0)
                    rc = clip_contribution(&st, x, st.gx + b * sp->CHW, o->clip_percentile);
            }
        }
    }
    if (!rc) {
        param_forward(&st);
        memcpy(st.xin->data, st.x, nx);
        rc = evaluate(&st, obj, n_obj, val, NULL);
    }
    if (!rc && final)
        for (int b = 0; b < st.B; b++) final[b] = val[b];
    if (!rc) {
        *x_out = st.xin;
        st.xin = NULL;
    }
    free(val);
    state_free(&st);
    return rc;
}
