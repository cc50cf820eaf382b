/* dissect.c — Network Dissection (Bau, Zhou, Khosla, Oliva & Torralba,
 * "Network Dissection: Quantifying Interpretability of Deep Visual
 * Representations", CVPR 2017), following NetDissect-Lite's
 * feature_operation.py for every choice the paper leaves open:
 *
 *   T_k        the (1 - quantile) quantile of all values a_k(x, i, j) over
 *              images and positions (paper: P(a_k > T_k) = 0.005), from a
 *              KLL sketch (sketch.c) instead of NetDissect-Lite's in-memory
 *              feature dump;
 *   M_k(x)     a_k(x) upsampled bilinearly to the label resolution (sh, sw),
 *              > T_k (strict, as `mask > threshold`). Only images with
 *              max a_k(x) > T_k are tallied (NetDissect-Lite's shortcut;
 *              bilinear interpolation never exceeds the max, so it changes
 *              nothing);
 *   IoU_k,c    sum_x |M_k(x) & L_c(x)| / sum_x |M_k(x) | L_c(x)|, with
 *              NetDissect-Lite's accounting of the union: |M_k| is summed
 *              over the images in which the fired region touches some label
 *              of c's category (so an image where c is absent but a sibling
 *              concept is present counts in the union), and |L_c| over all
 *              images: IoU = I / (A_cat + L - I). A whole-image label (the
 *              scene) covers all sh * sw pixels.
 * Each unit's best concept per category is the argmax IoU over the labels
 * whose primary category it is; its overall best is the best category. */
#include "concepts/concepts_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void gb_dissect_result_free(gb_dissect_result *r) {
    if (!r) return;
    for (int l = 0; l < r->n_layers; l++) free(r->layers[l]);
    free(r->layers);
    free(r->layer_units);
    free(r->layer_h);
    free(r->layer_w);
    for (int u = 0; u < r->n_units; u++) {
        free(r->units[u].cat_iou);
        free(r->units[u].cat_label);
        free(r->units[u].top_images);
        free(r->units[u].top_values);
    }
    free(r->units);
    free(r);
}

/* A layer's tensor from the last run, checked to be (N, K, h, w) float32. */
static gb_status layer_tensor(gb_ctx *ctx, gb_session *s, const char *name, int64_t n, const gb_tensor **out) {
    const gb_tensor *t = gb_session_tensor(s, name);
    if (!t) return gb__err(ctx, GB_ERR_NOT_FOUND, "dissect: the model has no tensor '%s' (glassbox info lists them)", name);
    if (t->dtype != GB_DTYPE_F32 || t->ndim != 4 || t->dims[0] != n) {
        char shp[128];
        gb_shape_str(t->ndim, t->dims, shp, sizeof shp);
        return gb__err(ctx, GB_ERR_SHAPE, "dissect: tensor '%s' is %s, not a (N, K, h, w) float32 feature map", name,
                       shp);
    }
    *out = t;
    return GB_OK;
}

static void top_insert(gb_dissect_unit *u, int cap, int img, float v) {
    if (u->n_top == cap && v <= u->top_values[cap - 1]) return;
    int i = u->n_top < cap ? u->n_top++ : cap - 1;
    while (i > 0 && u->top_values[i - 1] < v) {
        u->top_values[i] = u->top_values[i - 1];
        u->top_images[i] = u->top_images[i - 1];
        i--;
    }
    u->top_values[i] = v;
    u->top_images[i] = img;
}

typedef struct {
    int h, w, sh, sw;
    gb__lerp ly, lx;
} lerp_cache;

gb_status gb_dissect(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b,
                     const char *const *layers, int n_layers, const gb_dissect_opts *o, gb_dissect_result **out) {
    *out = NULL;
    double quant = o && o->quantile > 0 ? o->quantile : 0.005;
    double iou_thr = o && o->iou_threshold > 0 ? o->iou_threshold : 0.04;
    int batch = o && o->batch > 0 ? o->batch : 16;
    int top_n = o && o->top_n > 0 ? o->top_n : 6;
    int sk = o && o->sketch_k > 0 ? o->sketch_k : 4096;
    int N = gb_broden_size(b);
    if (o && o->max_images > 0 && o->max_images < N) N = o->max_images;
    if (quant >= 1) return gb__err(ctx, GB_ERR_ARG, "dissect: quantile must be in (0, 1) (got %g)", quant);
    if (n_layers < 1) return gb__err(ctx, GB_ERR_ARG, "dissect: no layer given");
    if (N < 1) return gb__err(ctx, GB_ERR_ARG, "dissect: the dataset has no images");
    int L = gb_broden_num_labels(b), C = gb_broden_num_categories(b);

    gb_status st = GB_OK;
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    gb_qsketch **sketch = NULL;
    int n_sketch = 0;
    int64_t *I = NULL, *A = NULL, *Lc = NULL;
    int *idx = NULL, *lcat = NULL;
    lerp_cache lc = {0};
    gb_broden_seg seg = {0};
    float *bufs = NULL;
    gb_dissect_result *r = calloc(1, sizeof *r);
    idx = malloc(sizeof *idx * (size_t)batch);
    lcat = malloc(sizeof *lcat * (size_t)L);
    if (!r || !idx || !lcat) goto oom;
    r->n_layers = n_layers;
    r->n_categories = C;
    r->n_images = N;
    r->iou_threshold = iou_thr;
    r->layers = calloc((size_t)n_layers, sizeof *r->layers);
    r->layer_units = calloc((size_t)n_layers, sizeof *r->layer_units);
    r->layer_h = calloc((size_t)n_layers, sizeof *r->layer_h);
    r->layer_w = calloc((size_t)n_layers, sizeof *r->layer_w);
    if (!r->layers || !r->layer_units || !r->layer_h || !r->layer_w) goto oom;
    for (int l = 0; l < n_layers; l++)
        if (!(r->layers[l] = strdup(layers[l]))) goto oom;
    for (int l = 0; l < L; l++) lcat[l] = gb_broden_label_category(b, l);
    if ((st = gb_session_create(m, &s))) goto fail;
    gb_session_keep_activations(s, 1);
    int threads = gb_ctx_threads(ctx);

    /* ---- pass 1: quantile sketches and top images ---- */
    double t0 = now_s();
    int *base = calloc((size_t)n_layers, sizeof *base);   /* first unit of each layer */
    if (!base) goto oom;
    for (int i0 = 0; i0 < N && !st; i0 += batch) {
        int nb = N - i0 < batch ? N - i0 : batch;
        for (int k = 0; k < nb; k++) idx[k] = i0 + k;
        gb_tensor_free(x);
        x = NULL;
        const gb_tensor *in[1];
        if ((st = gb__broden_batch(ctx, b, pp, idx, nb, &x))) break;
        in[0] = x;
        if ((st = gb_session_run(s, in, 1))) break;
        for (int l = 0; l < n_layers && !st; l++) {
            const gb_tensor *t;
            if ((st = layer_tensor(ctx, s, layers[l], nb, &t))) break;
            int K = (int)t->dims[1], h = (int)t->dims[2], w = (int)t->dims[3];
            if (!sketch) {   /* first batch: learn every layer's size */
                int total = 0;
                for (int ll = 0; ll < n_layers; ll++) {
                    const gb_tensor *tt;
                    if ((st = layer_tensor(ctx, s, layers[ll], nb, &tt))) break;
                    base[ll] = total;
                    r->layer_units[ll] = (int)tt->dims[1];
                    r->layer_h[ll] = (int)tt->dims[2];
                    r->layer_w[ll] = (int)tt->dims[3];
                    total += (int)tt->dims[1];
                }
                if (st) break;
                r->n_units = total;
                r->units = calloc((size_t)total, sizeof *r->units);
                sketch = calloc((size_t)total, sizeof *sketch);
                n_sketch = total;
                if (!r->units || !sketch) {
                    free(base);
                    goto oom;
                }
                for (int ll = 0, u = 0; ll < n_layers && !st; ll++)
                    for (int k = 0; k < r->layer_units[ll] && !st; k++, u++) {
                        gb_dissect_unit *du = &r->units[u];
                        du->layer = ll;
                        du->unit = k;
                        du->category = -1;
                        du->cat_iou = calloc((size_t)(C + 1), sizeof *du->cat_iou);
                        du->cat_label = calloc((size_t)(C + 1), sizeof *du->cat_label);
                        du->top_images = malloc(sizeof *du->top_images * (size_t)top_n);
                        du->top_values = malloc(sizeof *du->top_values * (size_t)top_n);
                        if (!du->cat_iou || !du->cat_label || !du->top_images || !du->top_values) {
                            free(base);
                            goto oom;
                        }
                        if ((st = gb_qsketch_create(ctx, sk, 1 + (uint64_t)u, &sketch[u]))) break;
                    }
                if (st) break;
            }
            if (K != r->layer_units[l] || h != r->layer_h[l] || w != r->layer_w[l]) {
                st = gb__err(ctx, GB_ERR_SHAPE, "dissect: layer '%s' changed shape between batches", layers[l]);
                break;
            }
            const float *a = (const float *)t->data;
            int oom_flag = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
            for (int k = 0; k < K; k++) {
                int u = base[l] + k;
                for (int n = 0; n < nb; n++) {
                    const float *map = a + ((size_t)n * (size_t)K + (size_t)k) * (size_t)h * (size_t)w;
                    if (gb_qsketch_add(sketch[u], map, (int64_t)h * w, 1)) oom_flag = 1;
                    float mx = map[0];
                    for (int p = 1; p < h * w; p++)
                        if (map[p] > mx) mx = map[p];
                    top_insert(&r->units[u], top_n, i0 + n, mx);
                }
            }
            if (oom_flag) {
                free(base);
                goto oom;
            }
        }
    }
    free(base);
    if (st) goto fail;
    for (int u = 0; u < r->n_units; u++) r->units[u].threshold = (float)gb_qsketch_quantile(sketch[u], 1.0 - quant);
    double t1 = now_s();
    r->seconds_quantile = t1 - t0;

    /* ---- pass 2: tally intersections, activations and label areas ---- */
    size_t U = (size_t)r->n_units;
    I = calloc(U * (size_t)L, sizeof *I);
    A = calloc(U * (size_t)(C + 1), sizeof *A);
    Lc = calloc((size_t)L, sizeof *Lc);
    if (!I || !A || !Lc) goto oom;
    size_t bufcap = 0;
    for (int i0 = 0; i0 < N && !st; i0 += batch) {
        int nb = N - i0 < batch ? N - i0 : batch;
        for (int k = 0; k < nb; k++) idx[k] = i0 + k;
        gb_tensor_free(x);
        x = NULL;
        const gb_tensor *in[1];
        if ((st = gb__broden_batch(ctx, b, pp, idx, nb, &x))) break;
        in[0] = x;
        if ((st = gb_session_run(s, in, 1))) break;
        for (int n = 0; n < nb && !st; n++) {
            gb_broden_seg_clear(&seg);
            if ((st = gb_broden_seg_load(b, i0 + n, &seg))) break;
            size_t P = (size_t)seg.sh * (size_t)seg.sw;
            for (int pl = 0; pl < seg.n_planes; pl++)
                for (size_t p = 0; p < P; p++) Lc[seg.planes[(size_t)pl * P + p]]++;
            Lc[0] = 0;
            for (int q = 0; q < seg.n_scalars; q++) Lc[seg.scalars[q]] += (int64_t)P;
            if (P * (size_t)threads > bufcap) {
                free(bufs);
                bufcap = P * (size_t)threads;
                if (!(bufs = malloc(sizeof *bufs * bufcap))) goto oom;
            }
            for (int l = 0, u0 = 0; l < n_layers; u0 += r->layer_units[l], l++) {
                const gb_tensor *t;
                if ((st = layer_tensor(ctx, s, layers[l], nb, &t))) break;
                int K = r->layer_units[l], h = r->layer_h[l], w = r->layer_w[l];
                if (lc.h != h || lc.w != w || lc.sh != seg.sh || lc.sw != seg.sw) {
                    gb__lerp_free(&lc.ly);
                    gb__lerp_free(&lc.lx);
                    lc = (lerp_cache){h, w, seg.sh, seg.sw, {0}, {0}};
                    if ((st = gb__lerp_make(ctx, h, seg.sh, &lc.ly)) || (st = gb__lerp_make(ctx, w, seg.sw, &lc.lx))) {
                        lc.h = 0;
                        break;
                    }
                }
                const float *a = (const float *)t->data;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4)
                for (int k = 0; k < K; k++) {
                    int u = u0 + k;
                    float T = r->units[u].threshold;
                    const float *map = a + ((size_t)n * (size_t)K + (size_t)k) * (size_t)h * (size_t)w;
                    float mx = map[0];
                    for (int p = 1; p < h * w; p++)
                        if (map[p] > mx) mx = map[p];
                    if (!(mx > T)) continue;
                    float *up = bufs + P * (size_t)gb__omp_thread();
                    gb__upsample(map, w, &lc.ly, &lc.lx, up);
                    int64_t *Iu = I + (size_t)u * (size_t)L;
                    unsigned char catseen[256] = {0};
                    int64_t cnt = 0;
                    for (size_t p = 0; p < P; p++) {
                        if (!(up[p] > T)) continue;
                        cnt++;
                        for (int pl = 0; pl < seg.n_planes; pl++) {
                            int32_t lab = seg.planes[(size_t)pl * P + p];
                            if (lab) {
                                Iu[lab]++;
                                if (lcat[lab] >= 0 && lcat[lab] < 256) catseen[lcat[lab]] = 1;
                            }
                        }
                    }
                    for (int q = 0; q < seg.n_scalars; q++) {
                        Iu[seg.scalars[q]] += cnt;
                        int c = lcat[seg.scalars[q]];
                        if (c >= 0 && c < 256) catseen[c] = 1;
                    }
                    for (int c = 0; c < C && c < 256; c++)
                        if (catseen[c]) A[(size_t)u * (size_t)(C + 1) + (size_t)c] += cnt;
                }
            }
        }
    }
    if (st) goto fail;
    r->seconds_tally = now_s() - t1;

    /* ---- IoU and each unit's best concept ---- */
    for (int u = 0; u < r->n_units; u++) {
        gb_dissect_unit *du = &r->units[u];
        du->label = 0;
        du->iou = 0;
        for (int l = 1; l < L; l++) {
            int c = lcat[l];
            if (c < 0) continue;
            double inter = (double)I[(size_t)u * (size_t)L + (size_t)l];
            double uni = (double)A[(size_t)u * (size_t)(C + 1) + (size_t)c] + (double)Lc[l] - inter;
            double iou = inter / (uni + 1e-10);
            if (iou > du->cat_iou[c]) {
                du->cat_iou[c] = iou;
                du->cat_label[c] = l;
            }
        }
        for (int c = 0; c < C; c++)
            if (du->cat_label[c] && du->cat_iou[c] > du->iou) {
                du->iou = du->cat_iou[c];
                du->label = du->cat_label[c];
                du->category = c;
            }
    }
    goto done;
oom:
    st = gb__err(ctx, GB_ERR_NOMEM, "dissect: out of memory");
fail:
    gb_dissect_result_free(r);
    r = NULL;
done:
    if (sketch)
        for (int u = 0; u < n_sketch; u++) gb_qsketch_free(sketch[u]);
    free(sketch);
    gb__lerp_free(&lc.ly);
    gb__lerp_free(&lc.lx);
    gb_broden_seg_clear(&seg);
    free(bufs);
    free(I);
    free(A);
    free(Lc);
    free(idx);
    free(lcat);
    gb_tensor_free(x);
    gb_session_free(s);
    *out = r;
    return st;
}

int gb_dissect_unique_detectors(const gb_dissect_result *r, const gb_broden *b, int layer, int cat, int *units) {
    int n_units = 0, n_unique = 0, L = gb_broden_num_labels(b);
    unsigned char *seen = calloc((size_t)L + 1, 1);
    for (int u = 0; u < r->n_units; u++) {
        const gb_dissect_unit *du = &r->units[u];
        if (du->layer != layer || du->category != cat || !(du->iou > r->iou_threshold)) continue;
        n_units++;
        if (seen && du->label < L && !seen[du->label]) {
            seen[du->label] = 1;
            n_unique++;
        }
    }
    free(seen);
    if (units) *units = n_units;
    return n_unique;
}

gb_status gb_dissect_render_unit(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b,
                                 const gb_dissect_result *r, int u, gb_image **out) {
    *out = NULL;
    if (u < 0 || u >= r->n_units) return gb__err(ctx, GB_ERR_ARG, "dissect: no unit %d", u);
    const gb_dissect_unit *du = &r->units[u];
    int H = pp->height, W = pp->width, gap = 2, n = du->n_top ? du->n_top : 1;
    gb_image *strip;
    gb_status st = gb_image_create(ctx, n * (W + gap) - gap, H, 3, &strip);
    if (st || !du->n_top) {
        *out = st ? NULL : strip;
        return st;
    }
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    float *up = malloc(sizeof *up * (size_t)H * (size_t)W);
    gb__lerp ly = {0}, lx = {0};
    if (!up) {
        gb_image_free(strip);
        return gb__err(ctx, GB_ERR_NOMEM, "dissect: out of memory");
    }
    const char *layer = r->layers[du->layer];
    int h = r->layer_h[du->layer], w = r->layer_w[du->layer], K = r->layer_units[du->layer];
    if ((st = gb_session_create(m, &s))) goto done;
    gb_session_keep_activations(s, 1);
    if ((st = gb__broden_batch(ctx, b, pp, du->top_images, du->n_top, &x))) goto done;
    const gb_tensor *in[1] = {x};
    if ((st = gb_session_run(s, in, 1))) goto done;
    const gb_tensor *t;
    if ((st = layer_tensor(ctx, s, layer, du->n_top, &t))) goto done;
    if ((st = gb__lerp_make(ctx, h, H, &ly)) || (st = gb__lerp_make(ctx, w, W, &lx))) goto done;
    for (int i = 0; i < du->n_top; i++) {
        gb_image *seen;
        if ((st = gb_preproc_inverse(ctx, pp, x, i, &seen))) goto done;
        gb_image *rgb = seen;
        if (seen->channels != 3) {
            st = gb_image_convert(ctx, seen, 3, &rgb);
            gb_image_free(seen);
            if (st) goto done;
        }
        const float *map = (const float *)t->data + ((size_t)i * (size_t)K + (size_t)du->unit) * (size_t)h * (size_t)w;
        gb__upsample(map, w, &ly, &lx, up);
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                int in_m = up[y * W + xx] > du->threshold;
                int edge = 0;
                if (in_m)
                    for (int d = 0; d < 4 && !edge; d++) {
                        int yy = y + (d == 0) - (d == 1), x2 = xx + (d == 2) - (d == 3);
                        edge = yy < 0 || yy >= H || x2 < 0 || x2 >= W || !(up[yy * W + x2] > du->threshold);
                    }
                const uint8_t *src = rgb->data + (size_t)y * rgb->stride + (size_t)xx * 3;
                uint8_t *dst = strip->data + (size_t)y * strip->stride + (size_t)(i * (W + gap) + xx) * 3;
                for (int c = 0; c < 3; c++)
                    dst[c] = edge ? (uint8_t)(c < 2 ? 255 : 0) : in_m ? src[c] : (uint8_t)(src[c] * 3 / 10);
            }
        gb_image_free(rgb);
    }
done:
    gb__lerp_free(&ly);
    gb__lerp_free(&lx);
    free(up);
    gb_tensor_free(x);
    gb_session_free(s);
    if (st) gb_image_free(strip);
    else *out = strip;
    return st;
}
