/* net2vec.c — Net2Vec (Fong & Vedaldi, "Net2Vec: Quantifying and
 * Explaining how Concepts are Encoded by Filters in Deep Neural Networks",
 * CVPR 2018): per concept c, a weighted combination of a layer's K units,
 *   segmentation:   M_c(x) = sigma(sum_k w_k A_k(x) + b) upsampled, > 0.5;
 *   classification: p_c(x) = sigma(sum_k w_k mean_ij A_k(x) + b), > 0.5;
 * trained with the paper's class-balanced binary cross-entropy (positives
 * weighted alpha = 1 - share of positives, negatives 1 - alpha; Sec. 3.1)
 * on one half of the images and evaluated on the other, next to the best
 * single unit: its map upsampled and thresholded at its top-0.5% quantile
 * T_k (Network Dissection's rule, as the paper compares), and for
 * classification its mean activation thresholded at the value that is best
 * on the training half.
 *
 * Choices of ours, for speed: the segmentation weights are fitted at the
 * layer's resolution against the share of concept pixels in each cell
 * (> 0.5 -> positive), not on upsampled maps; the evaluation is at the
 * label resolution, which is exact since bilinear upsampling is linear
 * (up(sum_k w_k A_k) = sum_k w_k up(A_k)). Activations of the used images
 * are held in memory: max_images bounds it. */
#include "concepts/concepts_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void gb_net2vec_result_free(gb_net2vec_result *r) {
    if (!r) return;
    free(r->concepts);
    free(r);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

gb_status gb_net2vec(gb_ctx *ctx, gb_model *m, const gb_preproc *pp, const gb_broden *b, const char *layer,
                     const gb_net2vec_opts *o, gb_net2vec_result **out) {
    *out = NULL;
    int N = o && o->max_images > 0 ? o->max_images : 400;
    int min_px = o && o->min_pixels > 0 ? o->min_pixels : 100;
    if (N > gb_broden_size(b)) N = gb_broden_size(b);
    if (N < 4) return gb__err(ctx, GB_ERR_ARG, "net2vec: needs at least 4 images (got %d)", N);
    /* K weights on few rows: more and larger steps than the shared default */
    gb_linear_opts lo = o ? o->linear : (gb_linear_opts){0};
    if (!lo.epochs) lo.epochs = 300;
    if (!(lo.lr > 0)) lo.lr = 0.05;
    int L = gb_broden_num_labels(b), batch = 16;
    gb_status st = GB_OK;
    gb_session *s = NULL;
    gb_tensor *x = NULL;
    float *act = NULL, *X = NULL, *sw = NULL, *w = NULL, *up = NULL, *pooled = NULL, *tmp = NULL, *thr = NULL;
    int32_t *seg = NULL;
    int *y = NULL, *idx = malloc(sizeof *idx * (size_t)batch);
    int64_t *px = calloc((size_t)L, sizeof *px);
    unsigned char *present = NULL;
    gb__lerp ly = {0}, lx = {0};
    gb_net2vec_result *r = calloc(1, sizeof *r);
    int K = 0, h = 0, wd = 0, sh = 0, swd = 0, P = 0;
    if (!r || !idx || !px) goto oom;

    /* activations (N, K, h, w) and label planes (N, sh, sw) merged: one label
     * per pixel per plane; we keep up to 4 planes */
    enum { MAXP = 4 };
    if ((st = gb_session_create(m, &s))) goto fail;
    gb_session_keep_activations(s, 1);
    for (int i0 = 0; i0 < N; i0 += batch) {
        int nb = N - i0 < batch ? N - i0 : batch;
        for (int k = 0; k < nb; k++) idx[k] = i0 + k;
        gb_tensor_free(x);
        x = NULL;
        if ((st = gb__broden_batch(ctx, b, pp, idx, nb, &x))) goto fail;
        const gb_tensor *in[1] = {x};
        if ((st = gb_session_run(s, in, 1))) goto fail;
        const gb_tensor *t = gb_session_tensor(s, layer);
        if (!t) {
            st = gb__err(ctx, GB_ERR_NOT_FOUND, "net2vec: the model has no tensor '%s' (glassbox info lists them)", layer);
            goto fail;
        }
        if (t->dtype != GB_DTYPE_F32 || t->ndim != 4) {
            st = gb__err(ctx, GB_ERR_SHAPE, "net2vec: tensor '%s' is not a (N, K, h, w) feature map", layer);
            goto fail;
        }
        if (!act) {
            K = (int)t->dims[1], h = (int)t->dims[2], wd = (int)t->dims[3];
            act = malloc(sizeof *act * (size_t)N * (size_t)K * (size_t)h * (size_t)wd);
            if (!act) goto oom;
        }
        memcpy(act + (size_t)i0 * (size_t)K * (size_t)h * (size_t)wd, t->data, sizeof(float) * (size_t)t->numel);
        for (int k = 0; k < nb; k++) {
            gb_broden_seg sg;
            if ((st = gb_broden_seg_load(b, i0 + k, &sg))) goto fail;
            if (!seg) {
                sh = sg.sh, swd = sg.sw, P = sh * swd;
                seg = calloc((size_t)N * MAXP * (size_t)P, sizeof *seg);
                present = calloc((size_t)N * (size_t)L, 1);
                if (!seg || !present) {
                    gb_broden_seg_clear(&sg);
                    goto oom;
                }
            }
            if (sg.sh != sh || sg.sw != swd) {
                gb_broden_seg_clear(&sg);
                st = gb__err(ctx, GB_ERR_FORMAT, "net2vec: label sizes differ between images");
                goto fail;
            }
            for (int pl = 0; pl < sg.n_planes && pl < MAXP; pl++)
                for (int p = 0; p < P; p++) {
                    int32_t l = sg.planes[(size_t)pl * (size_t)P + (size_t)p];
                    seg[((size_t)(i0 + k) * MAXP + (size_t)pl) * (size_t)P + (size_t)p] = l;
                    if (l) {
                        present[(size_t)(i0 + k) * (size_t)L + (size_t)l] = 1;
                        if ((i0 + k) % 2 == 0) px[l]++;
                    }
                }
            gb_broden_seg_clear(&sg);
        }
    }
    gb_tensor_free(x);
    x = NULL;
    r->units = K;

    int hw = h * wd, ntr = (N + 1) / 2;
    int64_t rows = (int64_t)ntr * hw;
    X = malloc(sizeof *X * (size_t)rows * (size_t)K);
    y = malloc(sizeof *y * (size_t)(rows > N ? rows : N));
    sw = malloc(sizeof *sw * (size_t)(rows > N ? rows : N));
    w = malloc(sizeof *w * (size_t)K);
    up = malloc(sizeof *up * (size_t)P * (size_t)(K + 1));
    pooled = malloc(sizeof *pooled * (size_t)N * (size_t)K);
    tmp = malloc(sizeof *tmp * (size_t)ntr * (size_t)hw);
    thr = malloc(sizeof *thr * (size_t)K);
    r->concepts = calloc((size_t)L, sizeof *r->concepts);
    if (!X || !y || !sw || !w || !up || !pooled || !tmp || !thr || !r->concepts) goto oom;
    if ((st = gb__lerp_make(ctx, h, sh, &ly)) || (st = gb__lerp_make(ctx, wd, swd, &lx))) goto fail;
    /* pixel features of the training half (even images), (rows, K) */
    for (int i = 0, row = 0; i < N; i += 2)
        for (int p = 0; p < hw; p++, row++)
            for (int k = 0; k < K; k++)
                X[(size_t)row * (size_t)K + (size_t)k] = act[((size_t)i * (size_t)K + (size_t)k) * (size_t)hw + (size_t)p];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            double sum = 0;
            const float *a = act + ((size_t)i * (size_t)K + (size_t)k) * (size_t)hw;
            for (int p = 0; p < hw; p++) sum += a[p];
            pooled[(size_t)i * (size_t)K + (size_t)k] = (float)(sum / hw);
        }
    /* single units: T_k = top-0.5% quantile over the training half */
    for (int k = 0; k < K; k++) {
        for (int i = 0, j = 0; i < N; i += 2, j++)
            memcpy(tmp + (size_t)j * (size_t)hw, act + ((size_t)i * (size_t)K + (size_t)k) * (size_t)hw,
                   sizeof *tmp * (size_t)hw);
        qsort(tmp, (size_t)ntr * (size_t)hw, sizeof *tmp, cmp_float);
        thr[k] = tmp[(size_t)((1 - 0.005) * (double)((size_t)ntr * (size_t)hw - 1))];
    }

    for (int l = 1; l < L; l++) {
        if (px[l] < min_px) continue;
        gb_net2vec_concept *nc = &r->concepts[r->n_concepts];
        nc->label = l;
        /* segmentation: targets = share of concept pixels in each cell > 0.5 */
        int64_t pos = 0;
        for (int i = 0, row = 0; i < N; i += 2)
            for (int cy = 0; cy < h; cy++)
                for (int cx = 0; cx < wd; cx++, row++) {
                    int y0 = cy * sh / h, y1 = (cy + 1) * sh / h, x0 = cx * swd / wd, x1 = (cx + 1) * swd / wd;
                    if (y1 <= y0) y1 = y0 + 1;
                    if (x1 <= x0) x1 = x0 + 1;
                    int in = 0, tot = 0;
                    for (int yy = y0; yy < y1; yy++)
                        for (int xx = x0; xx < x1; xx++, tot++)
                            for (int pl = 0; pl < MAXP; pl++)
                                if (seg[((size_t)i * MAXP + (size_t)pl) * (size_t)P + (size_t)(yy * swd + xx)] == l) {
                                    in++;
                                    break;
                                }
                    y[row] = 2 * in > tot;
                    pos += y[row];
                }
        if (pos == 0 || pos == rows) continue;
        double alpha = 1 - (double)pos / (double)rows;
        for (int64_t q = 0; q < rows; q++) sw[q] = (float)(y[q] ? 2 * alpha : 2 * (1 - alpha));
        float bias;
        /* at most ~16k training pixels: every stride-th cell (rows are
         * image-major, so all images stay represented) */
        int64_t stride = (rows + 16383) / 16384, nfit = 0;
        if (stride > 1)
            for (int64_t q = 0; q < rows; q += stride, nfit++) {
                memmove(X + nfit * K, X + q * K, sizeof *X * (size_t)K);
                y[nfit] = y[q];
                sw[nfit] = sw[q];
            }
        else nfit = rows;
        st = gb__linear_fit_weighted(ctx, X, y, sw, nfit, K, &lo, w, &bias);
        if (stride > 1)   /* restore the full pixel features for the next concept */
            for (int i = 0, row = 0; i < N; i += 2)
                for (int p = 0; p < hw; p++, row++)
                    for (int k = 0; k < K; k++)
                        X[(size_t)row * (size_t)K + (size_t)k] =
                            act[((size_t)i * (size_t)K + (size_t)k) * (size_t)hw + (size_t)p];
        if (st) goto fail;
        /* evaluation on the test half at label resolution: set IoU */
        double inter = 0, uni = 0;
        double *ui = calloc((size_t)K * 2, sizeof *ui);
        if (!ui) goto oom;
        for (int i = 1; i < N; i += 2) {
            const float *a = act + (size_t)i * (size_t)K * (size_t)hw;
            float *comb = up + (size_t)P * (size_t)K;
            for (int p = 0; p < hw; p++) {
                double sc = bias;
                for (int k = 0; k < K; k++) sc += (double)w[k] * a[(size_t)k * (size_t)hw + (size_t)p];
                tmp[p] = (float)sc;
            }
            gb__upsample(tmp, wd, &ly, &lx, comb);
            for (int k = 0; k < K; k++) gb__upsample(a + (size_t)k * (size_t)hw, wd, &ly, &lx, up + (size_t)k * (size_t)P);
            for (int p = 0; p < P; p++) {
                int lab = 0;
                for (int pl = 0; pl < MAXP && !lab; pl++)
                    lab = seg[((size_t)i * MAXP + (size_t)pl) * (size_t)P + (size_t)p] == l;
                int mk = comb[p] > 0;
                inter += mk && lab;
                uni += mk || lab;
                for (int k = 0; k < K; k++) {
                    int mu = up[(size_t)k * (size_t)P + (size_t)p] > thr[k];
                    ui[2 * k] += mu && lab;
                    ui[2 * k + 1] += mu || lab;
                }
            }
        }
        nc->seg_iou = uni > 0 ? inter / uni : 0;
        nc->best_unit = 0;
        for (int k = 0; k < K; k++) {
            double iou = ui[2 * k + 1] > 0 ? ui[2 * k] / ui[2 * k + 1] : 0;
            if (iou > nc->best_unit_iou) nc->best_unit_iou = iou, nc->best_unit = k;
        }
        free(ui);
        /* classification: presence from pooled activations */
        int64_t cpos = 0;
        for (int i = 0, j = 0; i < N; i += 2, j++) {
            y[j] = present[(size_t)i * (size_t)L + (size_t)l];
            cpos += y[j];
        }
        if (cpos > 0 && cpos < ntr) {
            float *Xc = malloc(sizeof *Xc * (size_t)ntr * (size_t)K);
            if (!Xc) goto oom;
            for (int i = 0, j = 0; i < N; i += 2, j++)
                memcpy(Xc + (size_t)j * (size_t)K, pooled + (size_t)i * (size_t)K, sizeof *Xc * (size_t)K);
            double a2 = 1 - (double)cpos / ntr;
            for (int j = 0; j < ntr; j++) sw[j] = (float)(y[j] ? 2 * a2 : 2 * (1 - a2));
            st = gb__linear_fit_weighted(ctx, Xc, y, sw, ntr, K, &lo, w, &bias);
            free(Xc);
            if (st) goto fail;
            int right = 0, nte = 0;
            for (int i = 1; i < N; i += 2, nte++) {
                double sc = bias;
                for (int k = 0; k < K; k++) sc += (double)w[k] * pooled[(size_t)i * (size_t)K + (size_t)k];
                right += (sc > 0) == present[(size_t)i * (size_t)L + (size_t)l];
            }
            nc->cls_acc = nte ? (double)right / nte : 0;
            /* best single unit: the threshold best on the training half */
            double best_train = -1, best_test = 0;
            for (int k = 0; k < K; k++)
                for (int j = 0; j < ntr; j++) {
                    float t = pooled[(size_t)(2 * j) * (size_t)K + (size_t)k];
                    int rt = 0;
                    for (int jj = 0; jj < ntr; jj++) rt += (pooled[(size_t)(2 * jj) * (size_t)K + (size_t)k] >= t) == y[jj];
                    if (rt > best_train) {
                        best_train = rt;
                        int rs = 0;
                        for (int i = 1; i < N; i += 2)
                            rs += (pooled[(size_t)i * (size_t)K + (size_t)k] >= t) == present[(size_t)i * (size_t)L + (size_t)l];
                        best_test = nte ? (double)rs / nte : 0;
                    }
                }
            nc->best_unit_cls_acc = best_test;
        }
        r->n_concepts++;
    }
    goto done;
oom:
    st = gb__err(ctx, GB_ERR_NOMEM, "net2vec: out of memory");
fail:
    gb_net2vec_result_free(r);
    r = NULL;
done:
    gb__lerp_free(&ly);
    gb__lerp_free(&lx);
    free(act), free(X), free(sw), free(w), free(up), free(pooled), free(tmp), free(thr), free(seg), free(y), free(idx);
    free(px), free(present);
    gb_tensor_free(x);
    gb_session_free(s);
    *out = r;
    return st;
}
