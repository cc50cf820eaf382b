/* cam.c — the CAM family (cam, gradcam, gradcam_pp, score_cam, guided_gradcam).
 * Placeholder with an empty table: owned by the helper implementing the CAM
 * family against include/glassbox/explain.h and src/methods/methods.h. */
#include "methods/methods.h"

const gb_method gb__methods_cam[] = {
    {0},
};
