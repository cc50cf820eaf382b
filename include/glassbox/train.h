/*
 * train.h — losses, parameter access and optimizers, on the same sessions
 * that run and explain a model (linear probes, decoders, randomized-label
 * baselines...).
 *
 * A worked example (error checks shortened):
 *
 *     gb_model *m;    gb_model_load(ctx, "net.onnx", &m);
 *     gb_session *s;  gb_session_create(m, &s);
 *     gb_optim *opt;  gb_optim_create_sgd(m, 0.05, 0.9, 0.0, 0.0, 0, &opt);
 *     for (int step = 0; step < 100; step++) {
 *         const gb_tensor *in[1] = { batch_x[step] };   // (16, 1, 12, 12) float32
 *         double loss;
 *         if (gb_train_step(s, opt, in, 1, batch_y[step], GB_LOSS_CROSS_ENTROPY, &loss) != GB_OK)
 *             fprintf(stderr, "%s\n", gb_ctx_errmsg(ctx));
 *     }
 *     gb_optim_free(opt); gb_session_free(s); gb_model_free(m);
 *
 * or the same by hand, which is what gb_train_step does:
 *
 *     gb_session_keep_activations(s, 1);     // backward needs them
 *     gb_session_param_grads(s, 1);          // and gradients of the weights
 *     gb_session_run(s, in, 1);
 *     const gb_tensor *logits = gb_session_output(s, 0);
 *     gb_loss_cross_entropy(ctx, logits, labels, &loss, dlogits);   // dlogits: caller's tensor
 *     gb_seed seed = { .seed = dlogits };
 *     gb_session_backward(s, &seed, NULL, 0);
 *     gb_optim_step(opt, s);
 *
 * Parameters are the model's float32 initializers. They are updated in
 * place, in the model, so every session of the model sees the new values at
 * its next run (with parameter gradients on, nothing that reads them is
 * folded at plan time).
 *
 * The update rules reproduce torch.optim.SGD, Adam and AdamW (PyTorch 1.13+,
 * the default single-tensor path) operation for operation in float32, with
 * hyperparameters taken as double like Python floats and rounded to float
 * where PyTorch rounds them (scalar arguments of tensor ops), so a
 * model trained here follows the loss curve of the same model trained in
 * PyTorch from the same weights on the same batches (checked in
 * tests/unit/test_train.c against tests/scripts/make_train_fixture.py).
 */
#ifndef GLASSBOX_TRAIN_H
#define GLASSBOX_TRAIN_H

#include "glassbox/glassbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- losses --------------------------------------------------------------- */

/* Each loss returns its value in *loss (accumulated in double, a mean as
 * PyTorch's default reduction='mean') and, when `grad` is non-NULL, OVERWRITES
 * grad with d loss / d input — ready to pass as gb_seed.seed to
 * gb_session_backward. `grad` is a float32 tensor the caller allocated with
 * the input's shape (gb_tensor_create). Errors: GB_ERR_ARG for a wrong dtype
 * or an out-of-range label, GB_ERR_SHAPE for mismatched shapes; the message
 * is left on ctx (which may be NULL). Nothing is written on error. */

/* Softmax cross-entropy with integer class labels, as
 * torch.nn.functional.cross_entropy(logits, labels):
 *   logits (N, C) float32, labels (N) int64 in 0..C-1, or
 *   logits (N, C, d1, ..., dk) with labels (N, d1, ..., dk) (per-pixel);
 *   loss = mean over the M = N*d1*...*dk items of
 *          log sum_c exp(logits[c]) - logits[label]
 * computed with the log-sum-exp shifted by the row maximum, so large logits
 * do not overflow. grad = (softmax(logits) - onehot(label)) / M. */
gb_status gb_loss_cross_entropy(gb_ctx *ctx, const gb_tensor *logits, const gb_tensor *labels, double *loss,
                                gb_tensor *grad);

/* Mean squared error, as torch.nn.functional.mse_loss(pred, target):
 *   pred and target float32 of the same shape (M elements);
 *   loss = sum (pred - target)^2 / M,   grad = 2 (pred - target) / M. */
gb_status gb_loss_mse(gb_ctx *ctx, const gb_tensor *pred, const gb_tensor *target, double *loss, gb_tensor *grad);

typedef enum {
    GB_LOSS_CROSS_ENTROPY,   /* target: int64 labels */
    GB_LOSS_MSE,             /* target: float32, the output's shape */
    GB_LOSS_COUNT
} gb_loss_kind;

/* ---- parameters ------------------------------------------------------------ */

/* Number of parameters of the model: its float32 initializers, in the order
 * of the file (gb_model_param_count counts their elements instead). */
int gb_model_num_params(const gb_model *m);

/* Parameter i (0 <= i < gb_model_num_params): its ONNX name and its tensor.
 * Both are owned by the model and live as long as it. The tensor's values
 * may be written (optimizers do, and so may a caller re-initializing
 * weights); sessions with parameter gradients on read them at every run,
 * while a session with them off may have folded nodes that read only
 * initializers at plan time and must be re-created to see the change.
 * Its gradient after a backward pass with gb_session_param_grads(s, 1) is
 * gb_session_grad(s, name). GB_ERR_NOT_FOUND if i is out of range. */
gb_status gb_model_param(gb_model *m, int i, const char **name, gb_tensor **value);

/* ---- optimizers -------------------------------------------------------------- */

typedef struct gb_optim gb_optim;

/* SGD, as torch.optim.SGD(params, lr, momentum, dampening, weight_decay,
 * nesterov). Per parameter p with gradient g, each step:
 *     g = g + weight_decay * p                       (if weight_decay != 0)
 *     if momentum != 0:
 *         buf = g                                    (first step)
 *         buf = momentum * buf + (1 - dampening) * g (later steps)
 *         g = nesterov ? g + momentum * buf : buf
 *     p = p - lr * g
 * Requires lr >= 0, momentum >= 0, weight_decay >= 0, and nesterov only with
 * momentum > 0 and dampening == 0 (PyTorch's rule); GB_ERR_ARG otherwise.
 * All float32 initializers are trained except BatchNormalization's running
 * mean and variance (buffers in PyTorch); see gb_optim_set_trainable.
 * The optimizer refers to the model, which must outlive it. State (momentum
 * buffers) is allocated at a parameter's first update. */
gb_status gb_optim_create_sgd(gb_model *m, double lr, double momentum, double dampening, double weight_decay,
                              int nesterov, gb_optim **out);

/* Adam (Kingma & Ba 2015, Algorithm 1), as torch.optim.Adam(params, lr,
 * betas=(beta1, beta2), eps, weight_decay). Per parameter, at its t-th step:
 *     g = g + weight_decay * p                       (L2 penalty, if != 0)
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g * g
 *     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * (eps is added after the square root of the bias-corrected second moment,
 * exactly as PyTorch does; the bias corrections are computed in double).
 * Requires lr >= 0, 0 <= beta1, beta2 < 1, eps >= 0, weight_decay >= 0.
 * PyTorch's defaults are lr 1e-3, betas (0.9, 0.999), eps 1e-8. */
gb_status gb_optim_create_adam(gb_model *m, double lr, double beta1, double beta2, double eps, double weight_decay,
                               gb_optim **out);

/* AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW: Adam without the
 * L2 term, and the weights decayed directly before each update:
 *     p = p * (1 - lr * weight_decay)
 * PyTorch's default weight_decay for AdamW is 1e-2. */
gb_status gb_optim_create_adamw(gb_model *m, double lr, double beta1, double beta2, double eps, double weight_decay,
                                gb_optim **out);

/* Free the optimizer and its state. NULL is a no-op. */
void gb_optim_free(gb_optim *opt);

/* Include (trainable = 1) or exclude (0) the parameter named `name` from
 * the updates, e.g. to train only a linear probe on a frozen network.
 * Excluding a parameter keeps its state. GB_ERR_NOT_FOUND (message on the
 * model's context) if the model has no float32 initializer of that name. */
gb_status gb_optim_set_trainable(gb_optim *opt, const char *name, int trainable);

/* Set the learning rate used by the next steps (for schedules). GB_ERR_ARG
 * if lr < 0. */
gb_status gb_optim_set_lr(gb_optim *opt, double lr);
double gb_optim_lr(const gb_optim *opt);

/* One update of every trainable parameter from the gradients of the
 * session's last gb_session_backward. The session must belong to the
 * optimizer's model and have parameter gradients on
 * (gb_session_param_grads(s, 1) before its run), else GB_ERR_ARG.
 * Parameters that received no gradient (not on the path to the seed) are
 * skipped and their state does not advance, as in PyTorch for a grad of None.
 * Gradients are not accumulated across backward passes: each backward starts
 * from zero. */
gb_status gb_optim_step(gb_optim *opt, gb_session *s);

/* Steps taken so far (calls of gb_optim_step that updated something). */
int64_t gb_optim_steps(const gb_optim *opt);

/* ---- one training step --------------------------------------------------------- */

/* Forward, loss on graph output 0, backward and one optimizer step:
 * turns on gb_session_keep_activations and gb_session_param_grads (the first
 * call re-plans the session), runs `inputs`, computes the loss of output 0
 * against `target` (int64 labels for GB_LOSS_CROSS_ENTROPY, a float32 tensor
 * of the output's shape for GB_LOSS_MSE), back-propagates it and updates the
 * parameters. *loss (may be NULL) receives the loss before the update.
 * Afterwards gb_session_output and gb_session_grad show this step's forward
 * pass and gradients. The seed buffer is kept in the optimizer and reused. */
gb_status gb_train_step(gb_session *s, gb_optim *opt, const gb_tensor *const *inputs, int n_inputs,
                        const gb_tensor *target, gb_loss_kind kind, double *loss);

#ifdef __cplusplus
}
#endif
#endif /* GLASSBOX_TRAIN_H */
