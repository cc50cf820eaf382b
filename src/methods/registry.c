/* registry.c — every attribution method, by name: the family tables joined.
 * Adding a family: one line in `families` (and its table in methods.h). */
#include "methods/methods.h"

#include <string.h>

static const gb_method *const families[] = {
    gb__methods_gradient,     /* gradient.c: saliency, input_x_gradient, smoothgrad..., guided, deconvnet */
    gb__methods_integrated,   /* integrated.c: integrated_gradients, gradient_shap */
    gb__methods_cam,          /* cam.c: cam, gradcam, gradcam_pp, score_cam, guided_gradcam */
    gb__methods_perturb,      /* perturb*.c: occlusion, feature_ablation, shapley_sampling, rise, lime, kernel_shap */
    gb__methods_relevance_lrp, gb__methods_relevance_deeplift,   /* lrp.c: lrp; deeplift.c: deeplift, deeplift_shap */
};
#define N_FAMILIES (int)(sizeof families / sizeof families[0])

int gb_method_count(void) {
    int n = 0;
    for (int f = 0; f < N_FAMILIES; f++)
        for (const gb_method *m = families[f]; m->name; m++) n++;
    return n;
}

const gb_method *gb_method_at(int i) {
    if (i < 0) return NULL;
    for (int f = 0; f < N_FAMILIES; f++)
        for (const gb_method *m = families[f]; m->name; m++)
            if (i-- == 0) return m;
    return NULL;
}

const gb_method *gb_method_find(const char *name) {
    if (!name) return NULL;
    for (int f = 0; f < N_FAMILIES; f++)
        for (const gb_method *m = families[f]; m->name; m++)
            if (!strcmp(m->name, name)) return m;
    return NULL;
}
