/* segment.c — feature masks (label maps): grids, files, SLIC superpixels.
 * See include/glassbox/segment.h. */
#include "glassbox/segment.h"
#include "engine/ir.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gb_status new_map(gb_ctx *ctx, int64_t H, int64_t W, gb_tensor **out) {
    int64_t dims[2] = {H, W};
    return gb_tensor_create(ctx, GB_DTYPE_I64, 2, dims, out);
}

gb_status gb_segment_grid(gb_ctx *ctx, int64_t H, int64_t W, int64_t cell_h, int64_t cell_w, gb_tensor **out) {
    *out = NULL;
    if (H < 1 || W < 1 || cell_h < 1 || cell_w < 1)
        return gb__err(ctx, GB_ERR_ARG, "segment: grid of %lldx%lld cells over %lldx%lld pixels", (long long)cell_h,
                       (long long)cell_w, (long long)H, (long long)W);
    gb_status st = new_map(ctx, H, W, out);
    if (st) return st;
    int64_t *l = (*out)->data, nx = (W + cell_w - 1) / cell_w;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) l[y * W + x] = (y / cell_h) * nx + x / cell_w;
    return GB_OK;
}

/* ---- compact labels --------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t gb_segment_compact(gb_tensor *labels) {
    int64_t n = labels->numel, *l = labels->data;
    if (n == 0) return 0;
    int64_t *s = malloc((size_t)n * sizeof *s);
    if (!s) return -1;
    memcpy(s, l, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_i64);
    int64_t M = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || s[i] != s[i - 1]) s[M++] = s[i];
    for (int64_t i = 0; i < n; i++) {   /* binary search of each label among the M distinct */
        int64_t lo = 0, hi = M - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (s[mid] < l[i]) lo = mid + 1;
            else hi = mid;
        }
        l[i] = lo;
    }
    free(s);
    return M;
}

int64_t gb_segment_count(const gb_tensor *labels) {
    const int64_t *l = labels->data;
    int64_t mx = -1;
    for (int64_t i = 0; i < labels->numel; i++)
        if (l[i] > mx) mx = l[i];
    return mx + 1;
}

/* ---- files ------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return false;
    for (size_t i = 0; i < b; i++) {
        char c = s[a - b + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suf[i]) return false;
    }
    return true;
}

gb_status gb_segment_load(gb_ctx *ctx, const char *path, gb_tensor **out) {
    *out = NULL;
    gb_status st;
    if (ends_with(path, ".npy")) {
        gb_tensor *t = NULL;
        if ((st = gb_npy_read(ctx, path, &t))) return st;
        int64_t H = 1, W = 1;
        int big = 0;
        for (int i = 0; i < t->ndim; i++)
            if (t->dims[i] != 1) big++;
        if (t->ndim >= 2) {
            H = t->dims[t->ndim - 2];
            W = t->dims[t->ndim - 1];
        }
        if (t->ndim < 2 || big > 2 || t->numel != H * W || t->numel == 0) {
            char shp[128];
            gb_shape_str(t->ndim, t->dims, shp, sizeof shp);
            gb_tensor_free(t);
            return gb__err(ctx, GB_ERR_FORMAT, "segment: %s: a label map must be (H, W), (1, H, W) or (1, 1, H, W), not %s",
                           path, shp);
        }
        if (t->dtype == GB_DTYPE_F32 || t->dtype == GB_DTYPE_F64) {
            for (int64_t i = 0; i < t->numel; i++) {
                double v = t->dtype == GB_DTYPE_F32 ? ((const float *)t->data)[i] : ((const double *)t->data)[i];
                if (!(v >= 0 && v < 2147483648.0) || v != floor(v)) {
                    gb_tensor_free(t);
                    return gb__err(ctx, GB_ERR_FORMAT, "segment: %s: label %g at element %lld is not a non-negative integer",
                                   path, v, (long long)i);
                }
            }
        }
        if (t->dtype != GB_DTYPE_I64 && (st = gb_tensor_cast(ctx, t, GB_DTYPE_I64))) {
            gb_tensor_free(t);
            return st;
        }
        const int64_t *l = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            if (l[i] < 0 || l[i] >= ((int64_t)1 << 31)) {
                long long v = (long long)l[i];
                gb_tensor_free(t);
                return gb__err(ctx, GB_ERR_FORMAT, "segment: %s: label %lld at element %lld is out of 0..2^31-1", path, v,
                               (long long)i);
            }
        t->ndim = 2;
        t->dims[0] = H;
        t->dims[1] = W;
        if (gb_segment_compact(t) < 0) {
            gb_tensor_free(t);
            return gb__err(ctx, GB_ERR_NOMEM, "segment: out of memory");
        }
        *out = t;
        return GB_OK;
    }
    gb_image *img = NULL;
    if ((st = gb_image_load(ctx, path, &img))) return st;
    if ((st = new_map(ctx, img->height, img->width, out))) {
        gb_image_free(img);
        return st;
    }
    /* each distinct colour (alpha ignored) is one label: pack it into an int */
    int64_t *l = (*out)->data;
    int ch = img->channels >= 3 ? 3 : 1;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            const uint8_t *p = img->data + (size_t)y * img->stride + (size_t)x * (size_t)img->channels;
            l[(int64_t)y * img->width + x] = ch == 3 ? ((int64_t)p[0] << 16 | (int64_t)p[1] << 8 | p[2]) : p[0];
        }
    gb_image_free(img);
    if (gb_segment_compact(*out) < 0) {
        gb_tensor_free(*out);
        *out = NULL;
        return gb__err(ctx, GB_ERR_NOMEM, "segment: out of memory");
    }
    return GB_OK;
}

/* ---- CIELAB ------------------------------------------------------------------------ */

static double srgb_linear(double c) { return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4); }
static double lab_f(double t) { return t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0; }

gb_status gb_segment_image_lab(gb_ctx *ctx, const gb_image *img, gb_tensor **out) {
    *out = NULL;
    if (!img || img->width < 1 || img->height < 1 || img->channels < 1 || img->channels > 4)
        return gb__err(ctx, GB_ERR_ARG, "segment: bad image");
    int64_t H = img->height, W = img->width, dims[3] = {3, H, W};
    gb_status st = gb_tensor_create(ctx, GB_DTYPE_F32, 3, dims, out);
    if (st) return st;
    float *L = (*out)->data, *A = L + H * W, *B = A + H * W;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            const uint8_t *p = img->data + (size_t)y * img->stride + (size_t)x * (size_t)img->channels;
            bool rgb = img->channels >= 3;
            double r = srgb_linear(p[0] / 255.0), g = srgb_linear(p[rgb ? 1 : 0] / 255.0),
                   b = srgb_linear(p[rgb ? 2 : 0] / 255.0);
            /* sRGB -> XYZ (D65), normalised by the white point (skimage's constants) */
            double X = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.95047;
            double Y = (0.212671 * r + 0.715160 * g + 0.072169 * b);
            double Z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.08883;
            double fx = lab_f(X), fy = lab_f(Y), fz = lab_f(Z);
            int64_t i = y * W + x;
            L[i] = (float)(Y > 0.008856 ? 116.0 * fy - 16.0 : 903.3 * Y);
            A[i] = (float)(500.0 * (fx - fy));
            B[i] = (float)(200.0 * (fy - fz));
        }
    return GB_OK;
}

/* ---- SLIC -------------------------------------------------------------------------- */

typedef struct {
    double y, x;
    double *c;    /* C colour means */
} center;

/* Squared colour gradient at (y, x) (eq. 2 of the paper: |I(x+1,y) - I(x-1,y)|^2
 * + |I(x,y+1) - I(x,y-1)|^2), with edges clamped. */
static double gradient(const float *im, int64_t C, int64_t H, int64_t W, int64_t y, int64_t x) {
    int64_t xl = x > 0 ? x - 1 : x, xr = x < W - 1 ? x + 1 : x, yu = y > 0 ? y - 1 : y, yd = y < H - 1 ? y + 1 : y;
    double g = 0;
    for (int64_t c = 0; c < C; c++) {
        const float *p = im + c * H * W;
        double dx = (double)p[y * W + xr] - p[y * W + xl], dy = (double)p[yd * W + x] - p[yu * W + x];
        g += dx * dx + dy * dy;
    }
    return g;
}

/* Connectivity (the paper's post-processing): label each 4-connected piece;
 * pieces under min_size pixels take the label of the piece adjacent to their
 * first pixel (scanned in raster order), as in the reference implementation. */
static gb_status enforce_connectivity(gb_ctx *ctx, const int64_t *lab, int64_t H, int64_t W, int64_t min_size,
                                      int64_t *out) {
    int64_t n = H * W;
    int64_t *queue = malloc((size_t)n * sizeof *queue);
    if (!queue) return gb__err(ctx, GB_ERR_NOMEM, "segment: out of memory");
    for (int64_t i = 0; i < n; i++) out[i] = -1;
    int64_t next = 0;
    static const int dy[4] = {-1, 0, 1, 0}, dx[4] = {0, -1, 0, 1};
    for (int64_t s = 0; s < n; s++) {
        if (out[s] >= 0) continue;
        /* an adjacent, already labelled piece (for merging a small one) */
        int64_t adj = -1, sy = s / W, sx = s % W;
        for (int k = 0; k < 4; k++) {
            int64_t yy = sy + dy[k], xx = sx + dx[k];
            if (yy >= 0 && yy < H && xx >= 0 && xx < W && out[yy * W + xx] >= 0) adj = out[yy * W + xx];
        }
        int64_t head = 0, tail = 0;
        queue[tail++] = s;
        out[s] = next;
        while (head < tail) {
            int64_t p = queue[head++], py = p / W, px = p % W;
            for (int k = 0; k < 4; k++) {
                int64_t yy = py + dy[k], xx = px + dx[k];
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                int64_t q = yy * W + xx;
                if (out[q] < 0 && lab[q] == lab[s]) {
                    out[q] = next;
                    queue[tail++] = q;
                }
            }
        }
        if (tail < min_size && adj >= 0) {
            for (int64_t i = 0; i < tail; i++) out[queue[i]] = adj;
        } else {
            next++;
        }
    }
    free(queue);
    return GB_OK;
}

gb_status gb_segment_slic(gb_ctx *ctx, const gb_tensor *img, int n_segments, double compactness, gb_tensor **out) {
    *out = NULL;
    if (!img || img->dtype != GB_DTYPE_F32 || !(img->ndim == 3 || (img->ndim == 4 && img->dims[0] == 1)) || img->numel < 1)
        return gb__err(ctx, GB_ERR_ARG, "segment: SLIC needs a (C, H, W) or (1, C, H, W) float32 image");
    if (n_segments < 1) return gb__err(ctx, GB_ERR_ARG, "segment: SLIC needs at least 1 segment (got %d)", n_segments);
    if (!(compactness > 0)) return gb__err(ctx, GB_ERR_ARG, "segment: SLIC compactness must be positive (got %g)", compactness);
    int o = img->ndim - 3;
    int64_t C = img->dims[o], H = img->dims[o + 1], W = img->dims[o + 2], n = H * W;
    const float *im = img->data;
    double S = sqrt((double)n / n_segments);
    if (S < 1) S = 1;
    int64_t ny = (int64_t)fmax(1.0, round((double)H / S)), nx = (int64_t)fmax(1.0, round((double)W / S)), K = ny * nx;
    center *cs = calloc((size_t)K, sizeof *cs);
    double *cmem = calloc((size_t)(K * C), sizeof *cmem), *acc = calloc((size_t)(K * (C + 3)), sizeof *acc);
    double *dist = malloc((size_t)n * sizeof *dist);
    int64_t *lab = malloc((size_t)n * sizeof *lab);
    gb_status st = GB_OK;
    if (!cs || !cmem || !acc || !dist || !lab) {
        st = gb__err(ctx, GB_ERR_NOMEM, "segment: out of memory");
        goto done;
    }
    /* seeds on a regular grid, each moved to the lowest gradient of its 3x3 neighbourhood */
    for (int64_t i = 0; i < ny; i++)
        for (int64_t j = 0; j < nx; j++) {
            center *c = &cs[i * nx + j];
            c->c = cmem + (i * nx + j) * C;
            int64_t y0 = (int64_t)(((double)i + 0.5) * (double)H / (double)ny),
                    x0 = (int64_t)(((double)j + 0.5) * (double)W / (double)nx), by = y0, bx = x0;
            double best = DBL_MAX;
            for (int64_t yy = y0 - 1; yy <= y0 + 1; yy++)
                for (int64_t xx = x0 - 1; xx <= x0 + 1; xx++) {
                    if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                    double g = gradient(im, C, H, W, yy, xx);
                    if (g < best) {
                        best = g;
                        by = yy;
                        bx = xx;
                    }
                }
            c->y = (double)by;
            c->x = (double)bx;
            for (int64_t ch = 0; ch < C; ch++) c->c[ch] = im[ch * n + by * W + bx];
        }
    double wsp = (compactness / S) * (compactness / S);   /* (m / S)^2 of eq. 3 */
    for (int it = 0; it < 10; it++) {
        for (int64_t i = 0; i < n; i++) {
            dist[i] = DBL_MAX;
            lab[i] = -1;
        }
        for (int64_t k = 0; k < K; k++) {
            const center *c = &cs[k];
            int64_t ya = (int64_t)fmax(0, floor(c->y - S)), yb = (int64_t)fmin((double)H - 1, ceil(c->y + S));
            int64_t xa = (int64_t)fmax(0, floor(c->x - S)), xb = (int64_t)fmin((double)W - 1, ceil(c->x + S));
            for (int64_t y = ya; y <= yb; y++)
                for (int64_t x = xa; x <= xb; x++) {
                    double dc = 0;
                    for (int64_t ch = 0; ch < C; ch++) {
                        double d = (double)im[ch * n + y * W + x] - c->c[ch];
                        dc += d * d;
                    }
                    double dyv = (double)y - c->y, dxv = (double)x - c->x;
                    double D = dc + wsp * (dyv * dyv + dxv * dxv);
                    if (D < dist[y * W + x]) {
                        dist[y * W + x] = D;
                        lab[y * W + x] = k;
                    }
                }
        }
        memset(acc, 0, (size_t)(K * (C + 3)) * sizeof *acc);
        for (int64_t i = 0; i < n; i++) {
            if (lab[i] < 0) continue;
            double *a = acc + lab[i] * (C + 3);
            a[0] += 1;
            a[1] += (double)(i / W);
            a[2] += (double)(i % W);
            for (int64_t ch = 0; ch < C; ch++) a[3 + ch] += im[ch * n + i];
        }
        for (int64_t k = 0; k < K; k++) {
            const double *a = acc + k * (C + 3);
            if (a[0] == 0) continue;
            cs[k].y = a[1] / a[0];
            cs[k].x = a[2] / a[0];
            for (int64_t ch = 0; ch < C; ch++) cs[k].c[ch] = a[3 + ch] / a[0];
        }
    }
    /* a pixel no window reached (possible only with tiny S rounding): nearest centre */
    for (int64_t i = 0; i < n; i++) {
        if (lab[i] >= 0) continue;
        double best = DBL_MAX;
        for (int64_t k = 0; k < K; k++) {
            double dyv = (double)(i / W) - cs[k].y, dxv = (double)(i % W) - cs[k].x, d = dyv * dyv + dxv * dxv;
            if (d < best) {
                best = d;
                lab[i] = k;
            }
        }
    }
    if ((st = new_map(ctx, H, W, out))) goto done;
    int64_t min_size = n / K / 4;
    if ((st = enforce_connectivity(ctx, lab, H, W, min_size, (*out)->data))) {
        gb_tensor_free(*out);
        *out = NULL;
        goto done;
    }
    gb_segment_compact(*out);
done:
    free(cs);
    free(cmem);
    free(acc);
    free(dist);
    free(lab);
    return st;
}

/* ---- boundary recall ------------------------------------------------------------------ */

static bool is_boundary(const int64_t *l, int64_t H, int64_t W, int64_t y, int64_t x) {
    int64_t v = l[y * W + x];
    return (x + 1 < W && l[y * W + x + 1] != v) || (y + 1 < H && l[(y + 1) * W + x] != v) ||
           (x > 0 && l[y * W + x - 1] != v) || (y > 0 && l[(y - 1) * W + x] != v);
}

double gb_segment_boundary_recall(const gb_tensor *seg, const gb_tensor *ref, int tol) {
    int64_t H = ref->dims[0], W = ref->dims[1];
    const int64_t *s = seg->data, *r = ref->data;
    int64_t total = 0, hit = 0;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            int64_t v = r[y * W + x];
            if (!((x + 1 < W && r[y * W + x + 1] != v) || (y + 1 < H && r[(y + 1) * W + x] != v))) continue;
            total++;
            bool found = false;
            for (int64_t yy = y - tol; yy <= y + tol && !found; yy++)
                for (int64_t xx = x - tol; xx <= x + tol && !found; xx++)
                    if (yy >= 0 && yy < H && xx >= 0 && xx < W && is_boundary(s, H, W, yy, xx)) found = true;
            hit += found;
        }
    return total ? (double)hit / (double)total : 1.0;
}
