/*
 * train.c — losses, parameter access, optimizers (SGD, Adam, AdamW) and a
 * one-call training step, on top of the session's forward and backward.
 *
 * Parameters are the model's float32 initializers (gb_model.tensors[i].init).
 * A session planned with parameter gradients on points its plan tensors at
 * that storage and folds nothing that reads it, so updating the values in
 * place is all an optimizer has to do: no re-planning, shapes never change.
 *
 * The update rules follow PyTorch's single-tensor implementations
 * (torch/optim/sgd.py _single_tensor_sgd, adam.py _single_tensor_adam,
 * adamw.py _single_tensor_adamw) operation for operation: each tensor op
 * there is one float32 expression here, with its Python-float scalar rounded
 * to float32 as ATen does for a scalar argument, and the bias corrections
 * computed in double as Python does.
 */
#include "glassbox/train.h"
#include "engine/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Elementwise loops smaller than this stay on one thread. */
#define PAR_MIN 32768

/* ---- losses ----------------------------------------------------------------- */

static bool same_shape(const gb_tensor *a, const gb_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int k = 0; k < a->ndim; k++)
        if (a->dims[k] != b->dims[k]) return false;
    return true;
}

static gb_status check_grad(gb_ctx *ctx, const char *what, const gb_tensor *x, const gb_tensor *grad) {
    if (!grad) return GB_OK;
    if (grad->dtype != GB_DTYPE_F32 || !same_shape(grad, x) || !grad->data) {
        char a[128], b[128];
        gb_shape_str(x->ndim, x->dims, a, sizeof a);
        gb_shape_str(grad->ndim, grad->dims, b, sizeof b);
        return gb__err(ctx, GB_ERR_SHAPE, "%s: the gradient tensor must be float32 %s like the input, got %s %s", what,
                       a, gb_dtype_name(grad->dtype), b);
    }
    return GB_OK;
}

/* Cross-entropy over classes on dim 1. Item (n, j) of the M = N * inner
 * items reads logits[n, c, j] for c in 0..C-1 (stride `inner`):
 *   loss_nj = lse_nj - x[n, y_nj, j],  lse = max + log sum_c exp(x_c - max)
 *   d loss / d x[n, c, j] = (exp(x_c - lse) - [c == y_nj]) / M.            */
gb_status gb_loss_cross_entropy(gb_ctx *ctx, const gb_tensor *logits, const gb_tensor *labels, double *loss,
                                gb_tensor *grad) {
    static const char what[] = "cross-entropy loss";
    if (!logits || !labels || !loss) return gb__err(ctx, GB_ERR_ARG, "%s: NULL argument", what);
    if (logits->dtype != GB_DTYPE_F32 || labels->dtype != GB_DTYPE_I64)
        return gb__err(ctx, GB_ERR_ARG, "%s: logits must be float32 and labels int64, got %s and %s", what,
                       gb_dtype_name(logits->dtype), gb_dtype_name(labels->dtype));
    char a[128], b[128];
    gb_shape_str(logits->ndim, logits->dims, a, sizeof a);
    gb_shape_str(labels->ndim, labels->dims, b, sizeof b);
    /* labels have logits' shape without the class dim: (N, d1, ..., dk). */
    bool ok = logits->ndim >= 2 && labels->ndim == logits->ndim - 1 && labels->dims[0] == logits->dims[0];
    for (int k = 1; ok && k < labels->ndim; k++) ok = labels->dims[k] == logits->dims[k + 1];
    if (!ok)
        return gb__err(ctx, GB_ERR_SHAPE, "%s: logits (N, C, ...) %s need labels (N, ...) without C, got %s", what, a,
                       b);
    gb_status st = check_grad(ctx, what, logits, grad);
    if (st) return st;
    int64_t n_batch = logits->dims[0], n_class = logits->dims[1];
    int64_t inner = n_batch && n_class ? logits->numel / (n_batch * n_class) : 0;
    int64_t items = n_batch * inner;
    if (items == 0 || n_class == 0) return gb__err(ctx, GB_ERR_SHAPE, "%s: empty logits %s", what, a);
    const float *x = logits->data;   /* (N, C, inner) */
    const int64_t *y = labels->data; /* (N, inner) */
    for (int64_t i = 0; i < items; i++)
        if (y[i] < 0 || y[i] >= n_class)
            return gb__err(ctx, GB_ERR_ARG, "%s: label %lld at item %lld is outside 0..%lld", what, (long long)y[i],
                           (long long)i, (long long)n_class - 1);

    float *dx = grad ? grad->data : NULL;
    double total = 0;
    for (int64_t n = 0; n < n_batch; n++)
        for (int64_t j = 0; j < inner; j++) {
            const float *row = x + n * n_class * inner + j; /* row[c * inner] */
            int64_t label = y[n * inner + j];
            double mx = row[0];
            for (int64_t c = 1; c < n_class; c++)
                if (row[c * inner] > mx) mx = row[c * inner];
            double sum = 0;
            for (int64_t c = 0; c < n_class; c++) sum += exp(row[c * inner] - mx);
            double lse = mx + log(sum);
            total += lse - row[label * inner];
            if (!dx) continue;
            float *drow = dx + n * n_class * inner + j;
            for (int64_t c = 0; c < n_class; c++)
                drow[c * inner] = (float)((exp(row[c * inner] - lse) - (c == label ? 1.0 : 0.0)) / (double)items);
        }
    *loss = total / (double)items;
    return GB_OK;
}

/* loss = sum (p - t)^2 / M;  d loss / d p = 2 (p - t) / M. */
gb_status gb_loss_mse(gb_ctx *ctx, const gb_tensor *pred, const gb_tensor *target, double *loss, gb_tensor *grad) {
    static const char what[] = "MSE loss";
    if (!pred || !target || !loss) return gb__err(ctx, GB_ERR_ARG, "%s: NULL argument", what);
    if (pred->dtype != GB_DTYPE_F32 || target->dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_ARG, "%s: prediction and target must be float32, got %s and %s", what,
                       gb_dtype_name(pred->dtype), gb_dtype_name(target->dtype));
    if (!same_shape(pred, target)) {
        char a[128], b[128];
        gb_shape_str(pred->ndim, pred->dims, a, sizeof a);
        gb_shape_str(target->ndim, target->dims, b, sizeof b);
        return gb__err(ctx, GB_ERR_SHAPE, "%s: prediction %s and target %s differ in shape", what, a, b);
    }
    gb_status st = check_grad(ctx, what, pred, grad);
    if (st) return st;
    int64_t m = pred->numel;
    if (m == 0) return gb__err(ctx, GB_ERR_SHAPE, "%s: empty tensors", what);
    const float *p = pred->data, *t = target->data;
    float *dp = grad ? grad->data : NULL;
    double total = 0;
    for (int64_t i = 0; i < m; i++) {
        double d = (double)p[i] - (double)t[i];
        total += d * d;
        if (dp) dp[i] = (float)(2.0 * d / (double)m);
    }
    *loss = total / (double)m;
    return GB_OK;
}

/* ---- parameters ------------------------------------------------------------------ */

static bool is_param(const gb_model *m, int id) {
    return m->tensors[id].init && m->tensors[id].init->dtype == GB_DTYPE_F32;
}

int gb_model_num_params(const gb_model *m) {
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) n += is_param(m, i);
    return n;
}

gb_status gb_model_param(gb_model *m, int i, const char **name, gb_tensor **value) {
    for (int id = 0, k = 0; id < m->n_tensors; id++) {
        if (!is_param(m, id)) continue;
        if (k++ != i) continue;
        if (name) *name = m->tensors[id].name;
        if (value) *value = m->tensors[id].init;
        return GB_OK;
    }
    return gb__err(m->ctx, GB_ERR_NOT_FOUND, "no parameter %d (the model has %d)", i, gb_model_num_params(m));
}

/* ---- optimizers -------------------------------------------------------------------- */

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } opt_kind;

typedef struct {
    int id;            /* tensor id of the initializer */
    bool trainable;
    int64_t steps;     /* updates of this parameter so far (Adam's t) */
    float *buf;        /* SGD momentum buffer, or Adam's first moment m */
    float *sq;         /* Adam's second moment v */
} param_state;

struct gb_optim {
    gb_model *m;
    opt_kind kind;
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
    bool nesterov;
    int n;
    param_state *p;
    int64_t steps;
    gb_tensor *seed;   /* gb_train_step's d loss / d output, reused */
};

static gb_status optim_new(gb_model *m, opt_kind kind, gb_optim **out) {
    *out = NULL;
    gb_optim *o = calloc(1, sizeof *o);
    int n = gb_model_num_params(m);
    if (o) o->p = calloc((size_t)n + 1, sizeof *o->p);
    if (!o || !o->p) {
        free(o);
        return gb__err(m->ctx, GB_ERR_NOMEM, "out of memory");
    }
    o->m = m;
    o->kind = kind;
    o->n = n;
    for (int id = 0, k = 0; id < m->n_tensors; id++)
        if (is_param(m, id)) o->p[k++] = (param_state){.id = id, .trainable = true};
    /* BatchNormalization's mean and var (inputs 3, 4) are running statistics,
     * buffers rather than parameters in PyTorch: not trained by default. */
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *nd = &m->nodes[i];
        if (strcmp(nd->op_type, "BatchNormalization") != 0) continue;
        for (int k = 3; k < 5 && k < nd->n_in; k++)
            for (int j = 0; j < n; j++)
                if (o->p[j].id == nd->in[k]) o->p[j].trainable = false;
    }
    *out = o;
    return GB_OK;
}

static bool finite_nonneg(double x) { return isfinite(x) && x >= 0; }

gb_status gb_optim_create_sgd(gb_model *m, double lr, double momentum, double dampening, double weight_decay,
                              int nesterov, gb_optim **out) {
    *out = NULL;
    if (!finite_nonneg(lr) || !finite_nonneg(momentum) || !finite_nonneg(weight_decay) || !isfinite(dampening))
        return gb__err(m->ctx, GB_ERR_ARG, "SGD: lr %g, momentum %g and weight_decay %g must be >= 0", lr, momentum,
                       weight_decay);
    if (nesterov && (momentum <= 0 || dampening != 0))
        return gb__err(m->ctx, GB_ERR_ARG, "SGD: Nesterov momentum requires a momentum > 0 and zero dampening");
    gb_status st = optim_new(m, OPT_SGD, out);
    if (st) return st;
    gb_optim *o = *out;
    o->lr = lr;
    o->momentum = momentum;
    o->dampening = dampening;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov != 0;
    return GB_OK;
}

static gb_status create_adam(gb_model *m, opt_kind kind, double lr, double beta1, double beta2, double eps,
                             double weight_decay, gb_optim **out) {
    *out = NULL;
    const char *name = kind == OPT_ADAM ? "Adam" : "AdamW";
    if (!finite_nonneg(lr) || !finite_nonneg(eps) || !finite_nonneg(weight_decay))
        return gb__err(m->ctx, GB_ERR_ARG, "%s: lr %g, eps %g and weight_decay %g must be >= 0", name, lr, eps,
                       weight_decay);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
        return gb__err(m->ctx, GB_ERR_ARG, "%s: betas (%g, %g) must be in [0, 1)", name, beta1, beta2);
    gb_status st = optim_new(m, kind, out);
    if (st) return st;
    gb_optim *o = *out;
    o->lr = lr;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    return GB_OK;
}

gb_status gb_optim_create_adam(gb_model *m, double lr, double beta1, double beta2, double eps, double weight_decay,
                               gb_optim **out) {
    return create_adam(m, OPT_ADAM, lr, beta1, beta2, eps, weight_decay, out);
}

gb_status gb_optim_create_adamw(gb_model *m, double lr, double beta1, double beta2, double eps, double weight_decay,
                                gb_optim **out) {
    return create_adam(m, OPT_ADAMW, lr, beta1, beta2, eps, weight_decay, out);
}

void gb_optim_free(gb_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        free(o->p[i].buf);
        free(o->p[i].sq);
    }
    free(o->p);
    gb_tensor_free(o->seed);
    free(o);
}

gb_status gb_optim_set_trainable(gb_optim *o, const char *name, int trainable) {
    int id = name ? gb__model_tensor_id(o->m, name) : -1;
    for (int i = 0; i < o->n; i++)
        if (o->p[i].id == id) {
            o->p[i].trainable = trainable != 0;
            return GB_OK;
        }
    return gb__err(o->m->ctx, GB_ERR_NOT_FOUND, "no float32 parameter named '%s'", name ? name : "(null)");
}

gb_status gb_optim_set_lr(gb_optim *o, double lr) {
    if (!finite_nonneg(lr)) return gb__err(o->m->ctx, GB_ERR_ARG, "learning rate %g must be >= 0", lr);
    o->lr = lr;
    return GB_OK;
}

double gb_optim_lr(const gb_optim *o) { return o->lr; }
int64_t gb_optim_steps(const gb_optim *o) { return o->steps; }

/* torch.optim.SGD, one parameter (n elements). `first`: buf is not yet
 * initialised (PyTorch's momentum_buffer is None). */
static void sgd_update(const gb_optim *o, int n_threads, int64_t n, float *p, const float *g, float *buf,
                       bool first) {
    const float wd = (float)o->weight_decay, mom = (float)o->momentum;
    const float keep = (float)(1.0 - o->dampening), neg_lr = (float)(-o->lr);
    const bool use_wd = o->weight_decay != 0, use_mom = o->momentum != 0, nesterov = o->nesterov;
#pragma omp parallel for num_threads(n_threads) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (use_wd) d = d + wd * p[i];                   /* d_p = d_p.add(param, alpha=wd) */
        if (use_mom) {
            if (first) buf[i] = d;                       /* buf = clone(d_p) */
            else buf[i] = buf[i] * mom + keep * d;       /* buf.mul_(mom).add_(d_p, alpha=1-damp) */
            d = nesterov ? d + mom * buf[i] : buf[i];    /* d_p = d_p.add(buf, alpha=mom) or buf */
        }
        p[i] = p[i] + neg_lr * d;                        /* param.add_(d_p, alpha=-lr) */
    }
}

/* torch.optim.Adam / AdamW, one parameter at its step t (1-based). */
static void adam_update(const gb_optim *o, int n_threads, int64_t n, float *p, const float *g, float *m, float *v,
                        int64_t t) {
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    const float neg_step = (float)(-(o->lr / bc1));      /* value=-step_size */
    const float bc2_sqrt = (float)sqrt(bc2), eps = (float)o->eps;
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float a1 = (float)(1.0 - o->beta1), a2 = (float)(1.0 - o->beta2);
    const bool l2 = o->kind == OPT_ADAM && o->weight_decay != 0;
    const bool decoupled = o->kind == OPT_ADAMW && o->weight_decay != 0;
    const float wd = (float)o->weight_decay, shrink = (float)(1.0 - o->lr * o->weight_decay);
#pragma omp parallel for num_threads(n_threads) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        if (decoupled) p[i] = p[i] * shrink;             /* param.mul_(1 - lr*wd) */
        float gi = g[i];
        if (l2) gi = gi + wd * p[i];                     /* grad = grad.add(param, alpha=wd) */
        m[i] = m[i] * b1 + a1 * gi;                      /* exp_avg.mul_(b1).add_(grad, alpha=1-b1) */
        v[i] = v[i] * b2 + a2 * gi * gi;                 /* exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) */
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;      /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
        p[i] = p[i] + neg_step * (m[i] / denom);         /* param.addcdiv_(exp_avg, denom, value=-step) */
    }
}

gb_status gb_optim_step(gb_optim *o, gb_session *s) {
    gb_ctx *ctx = o->m->ctx;
    if (s->m != o->m) return gb__err(ctx, GB_ERR_ARG, "optimizer step: the session belongs to another model");
    if (!s->param_grads)
        return gb__err(ctx, GB_ERR_ARG,
                       "optimizer step: the session computes no parameter gradients (call gb_session_param_grads(s, 1) "
                       "before its run)");
    if (!s->has_grad || !s->g) return gb__err(ctx, GB_ERR_ARG, "optimizer step: no backward pass since the last run");
    /* Allocate missing state first, so a failure leaves every parameter as it was. */
    bool need_buf = o->kind != OPT_SGD || o->momentum != 0, need_sq = o->kind != OPT_SGD;
    for (int i = 0; i < o->n; i++) {
        param_state *ps = &o->p[i];
        if (!ps->trainable || !s->g[ps->id].data) continue;
        size_t n = (size_t)o->m->tensors[ps->id].init->numel;
        if (need_buf && !ps->buf && !(ps->buf = calloc(n ? n : 1, sizeof(float))))
            return gb__err(ctx, GB_ERR_NOMEM, "optimizer step: out of memory for the state of '%s'",
                           o->m->tensors[ps->id].name);
        if (need_sq && !ps->sq && !(ps->sq = calloc(n ? n : 1, sizeof(float))))
            return gb__err(ctx, GB_ERR_NOMEM, "optimizer step: out of memory for the state of '%s'",
                           o->m->tensors[ps->id].name);
    }
    bool any = false;
    for (int i = 0; i < o->n; i++) {
        param_state *ps = &o->p[i];
        const gb_tensor *g = &s->g[ps->id];
        if (!ps->trainable || !g->data) continue;   /* PyTorch skips a grad of None */
        gb_tensor *w = o->m->tensors[ps->id].init;
        if (g->numel != w->numel)
            return gb__err(ctx, GB_ERR_INTERNAL, "optimizer step: gradient of '%s' has %lld elements, not %lld",
                           o->m->tensors[ps->id].name, (long long)g->numel, (long long)w->numel);
        ps->steps++;
        if (o->kind == OPT_SGD) sgd_update(o, ctx->n_threads, w->numel, w->data, g->data, ps->buf, ps->steps == 1);
        else adam_update(o, ctx->n_threads, w->numel, w->data, g->data, ps->buf, ps->sq, ps->steps);
        any = true;
    }
    if (any) o->steps++;
    return GB_OK;
}

/* ---- one training step ---------------------------------------------------------------- */

gb_status gb_train_step(gb_session *s, gb_optim *o, const gb_tensor *const *inputs, int n_inputs,
                        const gb_tensor *target, gb_loss_kind kind, double *loss) {
    gb_ctx *ctx = o->m->ctx;
    if (s->m != o->m) return gb__err(ctx, GB_ERR_ARG, "train step: the session belongs to another model");
    if ((int)kind < 0 || kind >= GB_LOSS_COUNT) return gb__err(ctx, GB_ERR_ARG, "train step: unknown loss %d", kind);
    if (!target) return gb__err(ctx, GB_ERR_ARG, "train step: no target");
    gb_session_keep_activations(s, 1);
    gb_session_param_grads(s, 1);
    gb_status st = gb_session_run(s, inputs, n_inputs);
    if (st) return st;
    const gb_tensor *y = gb_session_output(s, 0);
    if (!y) return gb__err(ctx, GB_ERR_INTERNAL, "train step: no output after the run");
    if (!o->seed || o->seed->dtype != GB_DTYPE_F32 || !same_shape(o->seed, y)) {
        gb_tensor_free(o->seed);
        o->seed = NULL;
        if ((st = gb_tensor_create(ctx, GB_DTYPE_F32, y->ndim, y->dims, &o->seed))) return st;
    }
    double value = 0;
    st = kind == GB_LOSS_CROSS_ENTROPY ? gb_loss_cross_entropy(ctx, y, target, &value, o->seed)
                                       : gb_loss_mse(ctx, y, target, &value, o->seed);
    if (st) return st;
    gb_seed seed = {.tensor = NULL, .seed = o->seed};
    if ((st = gb_session_backward(s, &seed, NULL, 0))) return st;
    if ((st = gb_optim_step(o, s))) return st;
    if (loss) *loss = value;
    return GB_OK;
}
