/* perturb_pass.c — forward passes on perturbed copies of an input, for the
 * perturbation methods (see gb__explain_forward_perturbed in methods.h).
 *
 * This first version always runs full forward passes; incremental inference
 * (recomputing only the receptive-field cone of the changed box from the
 * cached activations of x) plugs in here without changing any method. */
#include "methods/methods.h"

gb_status gb__explain_forward_perturbed(gb_explainer *e, gb_explanation *r, const gb_tensor *x,
                                        const float *x_rows, int64_t n_rows, const int64_t *item_of_row,
                                        const int64_t *boxes, double *values) {
    (void)x;
    (void)boxes;
    return gb__explain_pass(e, r, x_rows, n_rows, item_of_row, NULL, NULL, 0, values, NULL, NULL);
}
