/*
 * test_segment.c — feature masks (src/io/segment.c): grids, compacting,
 * label maps from .npy and PNG files, CIELAB, and SLIC on synthetic images
 * with known regions: every region boundary is found (boundary recall with
 * the paper's tolerance of 2 pixels), superpixels do not straddle regions
 * (each superpixel lies >= 90% in one region), and their number is near the
 * one asked for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/segment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gb_ctx *ctx;

static void test_grid(void **state) {
    (void)state;
    gb_tensor *g = NULL;
    assert_int_equal(gb_segment_grid(ctx, 5, 7, 2, 3, &g), GB_OK);
    const int64_t *l = g->data;
    /* 3 rows x 3 columns of cells, the last ones cut */
    assert_int_equal(gb_segment_count(g), 9);
    assert_int_equal(l[0], 0);
    assert_int_equal(l[6], 2);          /* (0, 6): column cell 2 */
    assert_int_equal(l[4 * 7 + 6], 8);  /* (4, 6) */
    assert_int_equal(l[2 * 7 + 3], 4);  /* (2, 3) */
    gb_tensor_free(g);
    assert_int_equal(gb_segment_grid(ctx, 5, 7, 0, 3, &g), GB_ERR_ARG);
    assert_null(g);
}

static void test_compact(void **state) {
    (void)state;
    int64_t d[1] = {6};
    gb_tensor *t = NULL;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_I64, 1, d, &t), GB_OK);
    int64_t v[6] = {50, 7, 9, 7, 1000, 50};
    memcpy(t->data, v, sizeof v);
    assert_int_equal(gb_segment_compact(t), 4);
    int64_t want[6] = {2, 0, 1, 0, 3, 2};
    assert_memory_equal(t->data, want, sizeof want);
    gb_tensor_free(t);
}

static void test_load(void **state) {
    (void)state;
    char dir[] = "/tmp/gb_segment_XXXXXX", p[256];
    assert_non_null(mkdtemp(dir));
    /* .npy: float labels with gaps and a leading unit dim */
    int64_t d[3] = {1, 3, 4};
    gb_tensor *t = NULL, *l = NULL;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 3, d, &t), GB_OK);
    for (int i = 0; i < 12; i++) ((float *)t->data)[i] = (float)(10 * (i % 3));
    snprintf(p, sizeof p, "%s/m.npy", dir);
    assert_int_equal(gb_npy_write(ctx, p, t), GB_OK);
    assert_int_equal(gb_segment_load(ctx, p, &l), GB_OK);
    assert_int_equal(l->ndim, 2);
    assert_int_equal(l->dims[0], 3);
    assert_int_equal(l->dims[1], 4);
    assert_int_equal(gb_segment_count(l), 3);
    assert_int_equal(((int64_t *)l->data)[4], 1);
    gb_tensor_free(l);
    l = NULL;
    ((float *)t->data)[5] = 2.5f;   /* not an integer */
    assert_int_equal(gb_npy_write(ctx, p, t), GB_OK);
    assert_int_equal(gb_segment_load(ctx, p, &l), GB_ERR_FORMAT);
    assert_null(l);
    ((float *)t->data)[5] = -1.0f;
    assert_int_equal(gb_npy_write(ctx, p, t), GB_OK);
    assert_int_equal(gb_segment_load(ctx, p, &l), GB_ERR_FORMAT);
    gb_tensor_free(t);
    int64_t d3[3] = {2, 3, 4};   /* two maps: not one label map */
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_I64, 3, d3, &t), GB_OK);
    assert_int_equal(gb_npy_write(ctx, p, t), GB_OK);
    assert_int_equal(gb_segment_load(ctx, p, &l), GB_ERR_FORMAT);
    gb_tensor_free(t);
    unlink(p);
    /* PNG: one feature per colour */
    gb_image *img = NULL;
    assert_int_equal(gb_image_create(ctx, 6, 4, 3, &img), GB_OK);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++) {
            uint8_t *px = img->data + (size_t)y * img->stride + (size_t)x * 3;
            px[0] = x < 3 ? 200 : 10;
            px[1] = y < 2 ? 0 : 90;
            px[2] = 5;
        }
    snprintf(p, sizeof p, "%s/m.png", dir);
    assert_int_equal(gb_image_write_png(ctx, p, img), GB_OK);
    assert_int_equal(gb_segment_load(ctx, p, &l), GB_OK);
    assert_int_equal(gb_segment_count(l), 4);
    const int64_t *lv = l->data;
    assert_int_equal(lv[0], lv[2]);
    assert_true(lv[0] != lv[3] && lv[0] != lv[2 * 6] && lv[3] != lv[2 * 6 + 3]);
    gb_tensor_free(l);
    gb_image_free(img);
    unlink(p);
    rmdir(dir);
}

static void test_lab(void **state) {
    (void)state;
    gb_image *img = NULL;
    gb_tensor *lab = NULL;
    assert_int_equal(gb_image_create(ctx, 3, 1, 3, &img), GB_OK);
    uint8_t px[9] = {255, 255, 255, 0, 0, 0, 255, 0, 0};
    memcpy(img->data, px, 9);
    assert_int_equal(gb_segment_image_lab(ctx, img, &lab), GB_OK);
    const float *L = lab->data, *A = L + 3, *B = A + 3;
    /* white (100, 0, 0), black (0, 0, 0), red (53.24, 80.09, 67.20) (skimage's rgb2lab) */
    assert_true(fabs(L[0] - 100) < 0.01 && fabs(A[0]) < 0.01 && fabs(B[0]) < 0.01);
    assert_true(fabs(L[1]) < 0.01);
    assert_true(fabs(L[2] - 53.24) < 0.05 && fabs(A[2] - 80.09) < 0.05 && fabs(B[2] - 67.20) < 0.05);
    gb_tensor_free(lab);
    gb_image_free(img);
}

/* A 96 x 80 image: a background, two rectangles, a disc and a diagonal band,
 * in distinct colours, plus deterministic noise of +-6 levels. */
static void synthetic(gb_image **img, gb_tensor **truth) {
    const int H = 96, W = 80;
    assert_int_equal(gb_image_create(ctx, W, H, 3, img), GB_OK);
    int64_t d[2] = {H, W};
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_I64, 2, d, truth), GB_OK);
    static const uint8_t colour[5][3] = {{40, 60, 90}, {200, 40, 40}, {40, 180, 60}, {230, 220, 60}, {150, 90, 200}};
    uint32_t s = 12345;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int r = 0;
            if (y >= 8 && y < 40 && x >= 6 && x < 36) r = 1;
            if (y >= 50 && y < 88 && x >= 44 && x < 74) r = 2;
            if ((y - 24) * (y - 24) + (x - 58) * (x - 58) < 14 * 14) r = 3;
            if (abs((y - 60) - (x - 10)) < 6 && x < 40) r = 4;
            ((int64_t *)(*truth)->data)[y * W + x] = r;
            uint8_t *px = (*img)->data + (size_t)y * (*img)->stride + (size_t)x * 3;
            for (int c = 0; c < 3; c++) {
                s = s * 1664525u + 1013904223u;
                int v = colour[r][c] + (int)(s >> 28) - 8;
                px[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

static void test_slic_regions(void **state) {
    (void)state;
    gb_image *img;
    gb_tensor *truth, *lab = NULL, *seg = NULL;
    synthetic(&img, &truth);
    assert_int_equal(gb_segment_image_lab(ctx, img, &lab), GB_OK);
    const int want = 60;
    assert_int_equal(gb_segment_slic(ctx, lab, want, 10.0, &seg), GB_OK);
    assert_int_equal(seg->ndim, 2);
    int64_t M = gb_segment_count(seg);
    double recall = gb_segment_boundary_recall(seg, truth, 2);
    /* each superpixel's share in its majority region (undersegmentation) */
    int64_t *count = calloc((size_t)M * 5, sizeof *count);
    const int64_t *s = seg->data, *t = truth->data;
    for (int64_t i = 0; i < seg->numel; i++) count[s[i] * 5 + t[i]]++;
    int64_t leak = 0;
    for (int64_t m = 0; m < M; m++) {
        int64_t tot = 0, best = 0;
        for (int r = 0; r < 5; r++) {
            tot += count[m * 5 + r];
            if (count[m * 5 + r] > best) best = count[m * 5 + r];
        }
        leak += tot - best;
    }
    free(count);
    double leak_frac = (double)leak / (double)seg->numel;
    print_message("SLIC: %lld superpixels (asked %d), boundary recall %.4f, pixels outside their "
                  "superpixel's region %.4f\n", (long long)M, want, recall, leak_frac);
    assert_true(M >= want / 2 && M <= 2 * want);
    assert_true(recall >= 0.95);
    assert_true(leak_frac < 0.02);
    /* every superpixel is one 4-connected piece: a flood from its first pixel reaches all of it */
    int64_t n = seg->numel, W = seg->dims[1];
    int64_t *size = calloc((size_t)M, sizeof *size), *queue = malloc((size_t)n * sizeof *queue);
    char *done = calloc((size_t)n, 1), *started = calloc((size_t)M, 1);
    for (int64_t i = 0; i < n; i++) size[s[i]]++;
    for (int64_t i = 0; i < n; i++) {
        if (started[s[i]]) continue;
        started[s[i]] = 1;
        int64_t head = 0, tail = 0, reached = 0;
        queue[tail++] = i;
        done[i] = 1;
        while (head < tail) {
            int64_t q = queue[head++], y = q / W, x = q % W;
            reached++;
            int64_t nb[4] = {x > 0 ? q - 1 : -1, x + 1 < W ? q + 1 : -1, y > 0 ? q - W : -1, q + W < n ? q + W : -1};
            for (int k = 0; k < 4; k++)
                if (nb[k] >= 0 && !done[nb[k]] && s[nb[k]] == s[i]) {
                    done[nb[k]] = 1;
                    queue[tail++] = nb[k];
                }
        }
        assert_int_equal(reached, size[s[i]]);
    }
    free(size);
    free(queue);
    free(done);
    free(started);
    /* deterministic */
    gb_tensor *seg2 = NULL;
    assert_int_equal(gb_segment_slic(ctx, lab, want, 10.0, &seg2), GB_OK);
    assert_memory_equal(seg->data, seg2->data, (size_t)seg->numel * sizeof(int64_t));
    /* a grid of 12 x 12 cells misses boundaries SLIC finds */
    gb_tensor *grid = NULL;
    assert_int_equal(gb_segment_grid(ctx, 96, 80, 12, 12, &grid), GB_OK);
    double grid_recall = gb_segment_boundary_recall(grid, truth, 2);
    print_message("grid of 12x12 cells: boundary recall %.4f\n", grid_recall);
    assert_true(grid_recall < recall - 0.2);
    gb_tensor_free(grid);
    gb_tensor_free(seg2);
    gb_tensor_free(seg);
    gb_tensor_free(lab);
    gb_tensor_free(truth);
    gb_image_free(img);
}

static void test_slic_args(void **state) {
    (void)state;
    int64_t d[3] = {1, 4, 4};
    gb_tensor *im = NULL, *seg = NULL;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 3, d, &im), GB_OK);
    assert_int_equal(gb_segment_slic(ctx, im, 0, 10, &seg), GB_ERR_ARG);
    assert_int_equal(gb_segment_slic(ctx, im, 4, 0, &seg), GB_ERR_ARG);
    /* more segments than pixels: every pixel at most its own */
    assert_int_equal(gb_segment_slic(ctx, im, 100, 10, &seg), GB_OK);
    assert_true(gb_segment_count(seg) >= 1 && gb_segment_count(seg) <= 16);
    gb_tensor_free(seg);
    gb_tensor_free(im);
}

int main(void) {
    if (gb_ctx_create(&ctx)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid),      cmocka_unit_test(test_compact),      cmocka_unit_test(test_load),
        cmocka_unit_test(test_lab),       cmocka_unit_test(test_slic_regions), cmocka_unit_test(test_slic_args),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gb_ctx_free(ctx);
    return rc;
}
