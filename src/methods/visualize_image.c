/* visualize_image.c — the pieces of an image under optimization: the input
 * space, the Fourier parameterization with colour decorrelation (lucid's
 * fft_image and to_valid_rgb; Olah et al. 2017, "Feature Visualization",
 * section "Preconditioning and Parameterization"), the random affine warp
 * (transformation robustness: jitter, scale, rotation), total variation and
 * Gaussian blur. Each differentiable piece has its adjoint beside it. */
#include "methods/visualize_internal.h"
#include "engine/session.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GB_PI 3.14159265358979323846

/* ---- the input space ------------------------------------------------------------ */

gb_status gb__vis_space_init(gb_session *s, const gb_preproc *pp, gb__vis_space *sp) {
    const gb_model *m = s->m;
    gb_ctx *ctx = s->ctx;
    memset(sp, 0, sizeof *sp);
    if (gb_model_num_inputs(m) < 1) return gb__err(ctx, GB_ERR_ARG, "visualize: the model has no input");
    gb_value_info in;
    gb_model_input(m, 0, &in);
    if (in.ndim != 4 || in.dtype != GB_DTYPE_F32)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "visualize: input '%s' is not a 4-D float32 image tensor", in.name);
    sp->static_batch = in.dims[0] > 0 ? in.dims[0] : 0;
    if (pp) {
        if (pp->layout != GB_LAYOUT_NCHW)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "visualize: only NCHW inputs are supported");
        gb_status st = gb_preproc_check(ctx, pp);
        if (st) return st;
        sp->C = pp->channels;
        sp->H = pp->height;
        sp->W = pp->width;
        for (int c = 0; c < sp->C; c++) {
            /* x = (255 v / scale - mean) / std */
            sp->a[c] = 255.0 / (pp->scale * pp->std[c]);
            sp->b[c] = -pp->mean[c] / pp->std[c];
        }
    } else {
        if (in.dims[1] < 1 || in.dims[1] > GB_PREPROC_MAX_CHANNELS || in.dims[2] < 1 || in.dims[3] < 1)
            return gb__err(ctx, GB_ERR_ARG,
                           "visualize: input '%s' needs static channels (1..3), height and width without a "
                           "preprocessing description",
                           in.name);
        sp->C = (int)in.dims[1];
        sp->H = (int)in.dims[2];
        sp->W = (int)in.dims[3];
        for (int c = 0; c < sp->C; c++) sp->a[c] = 1.0, sp->b[c] = 0.0;
    }
    if ((in.dims[1] > 0 && in.dims[1] != sp->C) || (in.dims[2] > 0 && in.dims[2] != sp->H) ||
        (in.dims[3] > 0 && in.dims[3] != sp->W))
        return gb__err(ctx, GB_ERR_SHAPE, "visualize: input '%s' does not take %dx%dx%d images", in.name, sp->C,
                       sp->H, sp->W);
    sp->HW = (int64_t)sp->H * sp->W;
    sp->CHW = sp->C * sp->HW;
    return GB_OK;
}

gb_status gb__vis_forward(gb_session *s, const gb_tensor *x, const char *name, const gb_tensor **out) {
    gb_session_keep_activations(s, 1);
    const gb_tensor *in[1] = {x};
    gb_status st = gb_session_run(s, in, 1);
    if (st) return st;
    const gb_tensor *t = gb_session_tensor(s, name);
    if (!t) return gb__err(s->ctx, GB_ERR_NOT_FOUND, "no tensor named '%s' in the model", name);
    if (t->dtype != GB_DTYPE_F32) return gb__err(s->ctx, GB_ERR_ARG, "tensor '%s' is not float32", name);
    *out = t;
    return GB_OK;
}

gb_status gb__vis_backward_into(gb_session *s, const char *tensor, const gb_tensor *seed, float *gx) {
    gb_value_info in;
    gb_model_input(s->m, 0, &in);
    const float *g;
    int64_t n = seed->numel;
    if (gb__session_lookup(s, tensor) == gb__session_lookup(s, in.name)) {
        g = seed->data; /* the representation is the input itself */
    } else {
        gb_seed sd = {.tensor = tensor, .seed = seed};
        gb_status st = gb_session_backward(s, &sd, NULL, 0);
        if (st) return st;
        const gb_tensor *gt = gb_session_grad(s, in.name);
        if (!gt) return gb__err(s->ctx, GB_ERR_ARG, "no gradient reaches the input from '%s'", tensor);
        g = gt->data;
        n = gt->numel;
    }
    for (int64_t i = 0; i < n; i++) gx[i] += g[i];
    return GB_OK;
}

/* ---- Fourier parameterization -------------------------------------------------------- */

/* lucid/optvis/param/color.py: color_correlation_svd_sqrt divided by its
 * largest column norm (max_norm_svd_sqrt). */
void gb__color_decorrelation(float M[3][3]) {
    static const double svd_sqrt[3][3] = {{0.26, 0.09, 0.02}, {0.27, 0.00, -0.05}, {0.27, -0.09, 0.03}};
    double mx = 0;
    for (int j = 0; j < 3; j++) {
        double n = 0;
        for (int i = 0; i < 3; i++) n += svd_sqrt[i][j] * svd_sqrt[i][j];
        if (sqrt(n) > mx) mx = sqrt(n);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) M[i][j] = (float)(svd_sqrt[i][j] / mx);
}

/* numpy.fft.fftfreq(n)[k] */
static double fftfreq(int k, int n) { return (k <= (n - 1) / 2 ? k : k - n) / (double)n; }

gb_status gb__fft_init(gb_ctx *ctx, int H, int W, double decay_power, gb__fft_param *f) {
    memset(f, 0, sizeof *f);
    int K = W / 2 + 1;
    f->H = H, f->W = W, f->K = K;
    f->cy = malloc(sizeof(float) * (size_t)H * H);
    f->sy = malloc(sizeof(float) * (size_t)H * H);
    f->cx = malloc(sizeof(float) * (size_t)W * K);
    f->sx = malloc(sizeof(float) * (size_t)W * K);
    f->scale = malloc(sizeof(float) * (size_t)H * K);
    f->tmp = malloc(sizeof(float) * 4 * (size_t)H * K);
    if (!f->cy || !f->sy || !f->cx || !f->sx || !f->scale || !f->tmp) {
        gb__fft_free(f);
        return gb__err(ctx, GB_ERR_NOMEM, "visualize: out of memory");
    }
    for (int y = 0; y < H; y++)
        for (int k = 0; k < H; k++) {
            double th = 2.0 * GB_PI * (double)((int64_t)k * y % H) / H;
            f->cy[y * H + k] = (float)cos(th);
            f->sy[y * H + k] = (float)sin(th);
        }
    /* irfft2(norm='ortho') divides by sqrt(HW); lucid then divides the image
     * by its "magic" 4. The half spectrum counts twice except the DC and
     * (even W) Nyquist columns, whose imaginary parts c2r ignores (sin = 0). */
    double norm = 1.0 / (4.0 * sqrt((double)H * W));
    for (int w = 0; w < W; w++)
        for (int k = 0; k < K; k++) {
            bool edge = k == 0 || (W % 2 == 0 && k == W / 2);
            double th = 2.0 * GB_PI * (double)((int64_t)k * w % W) / W;
            double c = edge ? 1.0 : 2.0;
            f->cx[w * K + k] = (float)(c * norm * cos(th));
            f->sx[w * K + k] = edge ? 0.0f : (float)(c * norm * sin(th));
        }
    double fmin = 1.0 / (H > W ? H : W);
    for (int y = 0; y < H; y++)
        for (int k = 0; k < K; k++) {
            double fy = fftfreq(y, H), fx = fftfreq(k, W);
            double fr = sqrt(fx * fx + fy * fy);
            f->scale[y * K + k] = (float)(1.0 / pow(fr > fmin ? fr : fmin, decay_power));
        }
    return GB_OK;
}

void gb__fft_free(gb__fft_param *f) {
    free(f->cy), free(f->sy), free(f->cx), free(f->sx), free(f->scale), free(f->tmp);
    memset(f, 0, sizeof *f);
}

void gb__fft_forward(gb__fft_param *f, const float *spec, float *img) {
    int H = f->H, W = f->W, K = f->K;
    int64_t HK = (int64_t)H * K;
    float *Re = f->tmp, *Im = f->tmp + HK, *Yr = f->tmp + 2 * HK, *Yi = f->tmp + 3 * HK;
    for (int64_t i = 0; i < HK; i++) Re[i] = f->scale[i] * spec[i], Im[i] = f->scale[i] * spec[HK + i];
    /* Inverse DFT along H: Yr = Cy Re - Sy Im, Yi = Sy Re + Cy Im   (H, K) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, K, H, 1.0f, f->cy, H, Re, K, 0.0f, Yr, K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, K, H, -1.0f, f->sy, H, Im, K, 1.0f, Yr, K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, K, H, 1.0f, f->sy, H, Re, K, 0.0f, Yi, K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, K, H, 1.0f, f->cy, H, Im, K, 1.0f, Yi, K);
    /* Complex-to-real along W: img = Yr Cx^T - Yi Sx^T   (H, W) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, H, W, K, 1.0f, Yr, K, f->cx, K, 0.0f, img, W);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, H, W, K, -1.0f, Yi, K, f->sx, K, 1.0f, img, W);
}

void gb__fft_backward(gb__fft_param *f, const float *gimg, float *gspec) {
    int H = f->H, W = f->W, K = f->K;
    int64_t HK = (int64_t)H * K;
    float *gYr = f->tmp + 2 * HK, *gYi = f->tmp + 3 * HK, *gRe = gspec, *gIm = gspec + HK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, K, W, 1.0f, gimg, W, f->cx, K, 0.0f, gYr, K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, K, W, -1.0f, gimg, W, f->sx, K, 0.0f, gYi, K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, K, H, 1.0f, f->cy, H, gYr, K, 0.0f, gRe, K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, K, H, 1.0f, f->sy, H, gYi, K, 1.0f, gRe, K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, K, H, -1.0f, f->sy, H, gYr, K, 0.0f, gIm, K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, K, H, 1.0f, f->cy, H, gYi, K, 1.0f, gIm, K);
    for (int64_t i = 0; i < HK; i++) gRe[i] *= f->scale[i], gIm[i] *= f->scale[i];
}

/* ---- the random affine warp ------------------------------------------------------------ */

void gb__warp_random(gb__rng *g, int H, int W, double jitter, double scale_jitter, double rotate_deg,
                     gb__warp *w) {
    /* Draw all three every time so the stream does not depend on which are on. */
    double ty = (2 * gb__rng_uniform(g) - 1) * jitter, tx = (2 * gb__rng_uniform(g) - 1) * jitter;
    double sc = 1.0 + (2 * gb__rng_uniform(g) - 1) * scale_jitter;
    double th = (2 * gb__rng_uniform(g) - 1) * rotate_deg * GB_PI / 180.0;
    /* Output pixel p samples the input at c + Re(-th) (p - c) / sc - t, i.e. the
     * image is rotated by th, scaled by sc about the centre c and shifted by t. */
    double cy = (H - 1) / 2.0, cx = (W - 1) / 2.0, co = cos(th) / sc, si = sin(th) / sc;
    w->a[0][0] = co, w->a[0][1] = si;
    w->a[1][0] = -si, w->a[1][1] = co;
    w->t[0] = cy - (co * cy + si * cx) - ty;
    w->t[1] = cx - (-si * cy + co * cx) - tx;
}

bool gb__warp_is_identity(const gb__warp *w) {
    return w->a[0][0] == 1 && w->a[0][1] == 0 && w->a[1][0] == 0 && w->a[1][1] == 1 && w->t[0] == 0 &&
           w->t[1] == 0;
}

/* Bilinear taps of the source point of output (y, x): corners (y0, x0) ..
 * (y0 + 1, x0 + 1) with weights; taps outside the image read `fill`. */
static inline void taps(const gb__warp *w, int y, int x, int64_t *y0, int64_t *x0, float *fy, float *fx) {
    double sy = w->a[0][0] * y + w->a[0][1] * x + w->t[0];
    double sx = w->a[1][0] * y + w->a[1][1] * x + w->t[1];
    double fl_y = floor(sy), fl_x = floor(sx);
    *y0 = (int64_t)fl_y, *x0 = (int64_t)fl_x;
    *fy = (float)(sy - fl_y), *fx = (float)(sx - fl_x);
}

void gb__warp_forward(const gb__warp *w, int H, int W, const float *in, float fill, float *out) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int64_t y0, x0;
            float fy, fx;
            taps(w, y, x, &y0, &x0, &fy, &fx);
            float v = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    float wt = (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx);
                    int64_t yy = y0 + dy, xx = x0 + dx;
                    v += wt * (yy >= 0 && yy < H && xx >= 0 && xx < W ? in[yy * W + xx] : fill);
                }
            out[(int64_t)y * W + x] = v;
        }
}

void gb__warp_backward(const gb__warp *w, int H, int W, const float *gout, float *gin) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int64_t y0, x0;
            float fy, fx;
            taps(w, y, x, &y0, &x0, &fy, &fx);
            float g = gout[(int64_t)y * W + x];
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int64_t yy = y0 + dy, xx = x0 + dx;
                    if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                        gin[yy * W + xx] += g * (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx);
                }
        }
}

/* ---- regularizers -------------------------------------------------------------------- */

/* Total variation (Mahendran & Vedaldi 2015, eq. 5): per pixel
 * (dw^2 + dh^2)^(beta/2), dw = x[i, j+1] - x[i, j], dh = x[i+1, j] - x[i, j]
 * (0 past the last row / column). eps keeps beta < 2 differentiable at 0. */
double gb__tv(const float *x, int C, int H, int W, double beta, double weight, float *grad) {
    double total = 0, eps = beta < 2 ? 1e-8 : 0;
    for (int c = 0; c < C; c++) {
        const float *p = x + (int64_t)c * H * W;
        float *g = grad ? grad + (int64_t)c * H * W : NULL;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int64_t k = (int64_t)i * W + j;
                double dw = j + 1 < W ? p[k + 1] - p[k] : 0, dh = i + 1 < H ? p[k + W] - p[k] : 0;
                double q = dw * dw + dh * dh + eps;
                total += beta == 2 ? q : pow(q, beta / 2);
                if (!g) continue;
                double coef = weight * (beta == 2 ? 1.0 : beta / 2 * pow(q, beta / 2 - 1)) * 2;
                g[k] -= (float)(coef * (dw + dh));
                if (j + 1 < W) g[k + 1] += (float)(coef * dw);
                if (i + 1 < H) g[k + W] += (float)(coef * dh);
            }
    }
    return total;
}

static int reflect(int i, int n) {
    while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - i - 1;
    return i;
}

gb_status gb__gaussian_blur(gb_ctx *ctx, float *x, int C, int H, int W, double sigma) {
    if (sigma <= 0) return GB_OK;
    int r = (int)ceil(3 * sigma);
    float *k = malloc(sizeof(float) * (size_t)(2 * r + 1));
    float *tmp = malloc(sizeof(float) * (size_t)H * W);
    if (!k || !tmp) {
        free(k), free(tmp);
        return gb__err(ctx, GB_ERR_NOMEM, "visualize: out of memory");
    }
    double sum = 0;
    for (int i = -r; i <= r; i++) sum += k[i + r] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] = (float)(k[i] / sum);
    for (int c = 0; c < C; c++) {
        float *p = x + (int64_t)c * H * W;
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float v = 0;
                for (int i = -r; i <= r; i++) v += k[i + r] * p[(int64_t)y * W + reflect(xx + i, W)];
                tmp[(int64_t)y * W + xx] = v;
            }
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float v = 0;
                for (int i = -r; i <= r; i++) v += k[i + r] * tmp[(int64_t)reflect(y + i, H) * W + xx];
                p[(int64_t)y * W + xx] = v;
            }
    }
    free(k), free(tmp);
    return GB_OK;
}
