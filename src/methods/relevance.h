/* relevance.h — what the relevance family (lrp.c, deeplift.c) shares; private
 * to src/methods/.
 *
 * Both methods run backward passes whose rules swap the vector-Jacobian
 * product of chosen nodes (the engine's gb_rule interface). They need two
 * things gb__explain_pass does not offer: a reference forward pass before
 * each pass (DeepLIFT: gb_session_run_reference) and a seed equal to the
 * target's own value (LRP: the relevance that enters the network is f(x)). */
#ifndef GB_METHODS_RELEVANCE_H
#define GB_METHODS_RELEVANCE_H

#include "methods/methods.h"

/* Evaluate n_rows rows like gb__explain_pass (same row layout, batching and
 * padding), and:
 *   ref_rows       NULL, or one reference row per row (same layout): a
 *                  reference pass is run on them before each chunk's pass
 *                  on x, so rules see ref_in / ref_out;
 *   pre_rules      when not NULL, a first backward pass under these rules
 *                  runs before the one under `rules` (DeepLIFT's RevealCancel
 *                  collects its positive / negative input parts with it);
 *   seed_by_value  the seed on the target's elements is the target
 *                  tensor's value there (LRP) instead of 1;
 *   values[k], ref_values[k]   f at the row and at its reference (or NULL);
 *   grad, act, ref_act          the backward result, the activation and the
 *                  reference activation of `wrt` (NULL = the input), wn
 *                  elements per row (any of them NULL: not wanted).
 * Adds n_rows to r->rows. */
gb_status gb__relevance_pass(gb_explainer *e, gb_explanation *r, const float *x_rows, const float *ref_rows,
                             int64_t n_rows, const int64_t *item_of_row, const char *wrt, bool seed_by_value,
                             const gb_rule *pre_rules, int n_pre, const gb_rule *rules, int n_rules, double *values,
                             double *ref_values, float *grad, float *act, float *ref_act);

#endif
