/* visualize_internal.h — what the visualization files share (private to
 * src/methods/visualize_*.c): the input space, the image parameterizations,
 * the random affine warp and the image regularizers, each as a forward
 * function and its adjoint (the vector-Jacobian product) side by side. */
#ifndef GB_VISUALIZE_INTERNAL_H
#define GB_VISUALIZE_INTERNAL_H

#include "glassbox/visualize.h"
#include "methods/methods.h"

#include <stdbool.h>

/* The model input's item shape and its affine relation to pixel values
 * v = pixel / 255 in [0, 1]: x_c = a[c] * v + b[c]. */
typedef struct {
    int C, H, W;
    int64_t HW, CHW;
    double a[GB_PREPROC_MAX_CHANNELS], b[GB_PREPROC_MAX_CHANNELS];
    int64_t static_batch;   /* > 0: the model's batch dimension is fixed */
} gb__vis_space;

/* From pp (NCHW) or, pp NULL, the model's first input (static C, H, W;
 * x = v). */
gb_status gb__vis_space_init(gb_session *s, const gb_preproc *pp, gb__vis_space *sp);

/* Run forward on x (kept activations) and return the named tensor, or an
 * error naming it. */
gb_status gb__vis_forward(gb_session *s, const gb_tensor *x, const char *name, const gb_tensor **out);

/* d (sum seed * tensor) / d input, after gb__vis_forward: ACCUMULATED into
 * gx (x's numel floats). The graph input itself as `tensor` is handled (the
 * gradient is the seed). */
gb_status gb__vis_backward_into(gb_session *s, const char *tensor, const gb_tensor *seed, float *gx);

/* ---- Fourier image parameterization (lucid's fft_image, Olah et al. 2017) -------- */

/* Per (H, W): the real inverse 2-D DFT of a half spectrum, orthonormal
 * (numpy.fft.irfft2(s, norm='ortho')), as separable matrix products, and
 * the per-frequency scale 1 / max(f, 1 / max(H, W))^decay. */
typedef struct {
    int H, W, K;            /* K = W / 2 + 1 frequencies along W */
    float *cy, *sy;         /* (H, H): cos / sin(2 pi ky y / H) */
    float *cx, *sx;         /* (W, K): c_k cos / sin(2 pi k w / W) / sqrt(HW), c_k = 1 or 2 */
    float *scale;           /* (H, K) */
    float *tmp;             /* scratch (4, H, K) */
} gb__fft_param;

gb_status gb__fft_init(gb_ctx *ctx, int H, int W, double decay_power, gb__fft_param *f);
void gb__fft_free(gb__fft_param *f);
/* img (H, W) = irfft2(scale * (re + i im)); spec = re (H, K) then im (H, K). */
void gb__fft_forward(gb__fft_param *f, const float *spec, float *img);
/* gspec (2, H, K) = the adjoint applied to gimg (H, W) (overwritten). */
void gb__fft_backward(gb__fft_param *f, const float *gimg, float *gspec);

/* lucid's colour decorrelation matrix (color_correlation_svd_sqrt divided
 * by its largest column norm): rgb = M * t per pixel. */
void gb__color_decorrelation(float M[3][3]);

/* ---- the random affine warp (jitter, scale, rotation) ------------------------------- */

/* out(y, x) = in at the source point p = A (y, x) + t (bilinear, centre
 * convention), `fill` outside. */
typedef struct {
    double a[2][2], t[2];
} gb__warp;

void gb__warp_random(gb__rng *g, int H, int W, double jitter, double scale_jitter, double rotate_deg,
                     gb__warp *w);
bool gb__warp_is_identity(const gb__warp *w);
void gb__warp_forward(const gb__warp *w, int H, int W, const float *in, float fill, float *out);
/* gin += the adjoint of the warp applied to gout. */
void gb__warp_backward(const gb__warp *w, int H, int W, const float *gout, float *gin);

/* ---- regularizers on one (C, H, W) image ----------------------------------------- */

/* sum over pixels and channels of ((dh^2 + dw^2 + eps)^(beta/2)); grad += d/dx * weight. */
double gb__tv(const float *x, int C, int H, int W, double beta, double weight, float *grad);
/* In-place Gaussian blur of each channel (separable, reflect edges). */
gb_status gb__gaussian_blur(gb_ctx *ctx, float *x, int C, int H, int W, double sigma);

#endif
