/*
 * test_incremental_tv.c — incremental inference (src/engine/incremental.h)
 * against full forward passes on the torchvision architectures of
 * $GB_TV_CACHE (tests/scripts/export_torchvision.py).
 *
 * For every model (and its .keepbn variant, where BatchNormalization nodes
 * survive): the base is item 0 of <name>.input.npy; rows are copies of it
 * with one box replaced (by zeros, or by item 1's pixels), boxes of several
 * sizes (1x1 up to 64x48, one covering the whole image) at random positions
 * and clamped against every border and corner. The incremental evaluation
 * (forced, whatever the cost model would decide) must give the logits of a
 * full forward pass of the same rows within 1e-5 relative L2 error per row,
 * and so must a hidden 4-D tensor from the middle of the graph (a patch
 * materialised, not only the dense tail). Each model also reports the FLOPs
 * the incremental pass computed against full passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/glassbox.h"
#include "engine/incremental.h"
#include "engine/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5
#define ROWS 10

static const char *const models[] = {
    "alexnet",      "vgg16",           "resnet18",           "resnet50",    "squeezenet1_1", "mobilenet_v2",
    "mobilenet_v3_small", "densenet121", "googlenet", "shufflenet_v2_x1_0", "efficientnet_b0",
};

typedef struct {
    const char *name;
    const char *variant;
    char label[64];
} tv_case;

static uint64_t rng = 88172645463325252ull;
static int64_t rnd(int64_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int64_t)(rng % (uint64_t)n);
}

static double rel_l2(const float *got, const float *want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return sqrt(num / (den > 0 ? den : 1e-30));
}

/* The middle node's first output if it is a non-constant 4-D float tensor
 * with batch 1 (searching outwards from the middle). */
static int middle_tensor(const gb_model *m, const gb__incr *inc) {
    for (int d = 0; d < m->n_nodes / 2; d++)
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            int i = m->n_nodes / 2 + sgn * d;
            if (i < 0 || i >= m->n_nodes || m->nodes[i].n_out < 1) continue;
            int id = m->nodes[i].out[0];
            const gb_tensor *t = id >= 0 ? gb__incr_base_tensor(inc, id) : NULL;
            if (t && t->ndim == 4 && t->dims[0] == 1 && t->dtype == GB_DTYPE_F32 && t->dims[2] > 1) return id;
        }
    return -1;
}

static void check_model(void **state) {
    const tv_case *tc = *state;
    const char *dir = getenv("GB_TV_CACHE");
    if (!dir) fail_msg("GB_TV_CACHE is not set (run through ctest)");
    char p_model[1024], p_in[1024];
    snprintf(p_model, sizeof p_model, "%s/%s%s.onnx", dir, tc->name, tc->variant);
    snprintf(p_in, sizeof p_in, "%s/%s.input.npy", dir, tc->name);
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;
    gb__incr *inc;
    gb_tensor *x;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    if (gb_model_load(ctx, p_model, &m)) fail_msg("%s", gb_ctx_errmsg(ctx));
    if (gb_npy_read(ctx, p_in, &x)) fail_msg("%s", gb_ctx_errmsg(ctx));
    assert_int_equal(gb_session_create(m, &s), GB_OK);
    gb_session_keep_activations(s, 1);
    assert_int_equal(gb__incr_create(ctx, m, &inc), GB_OK);

    const int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3], in = C * H * W;
    const float *x0 = x->data, *x1 = (const float *)x->data + in;
    gb_tensor xi = *x;
    xi.dims[0] = 1;
    xi.numel = in;
    bool usable;
    if (gb__incr_set_base(inc, &xi, &usable)) fail_msg("%s", gb_ctx_errmsg(ctx));
    assert_true(usable);

    /* boxes: h0, h1, w0, w1 (clamped by the engine; some deliberately off the image) */
    static const int64_t sizes[][2] = {{16, 16}, {1, 1}, {7, 3}, {16, 16}, {33, 20}, {64, 48},
                                       {16, 16}, {5, 9},  {16, 16}, {224, 224}};
    int64_t boxes[4 * ROWS];
    float *rows = malloc(sizeof(float) * (size_t)(ROWS * in));
    assert_non_null(rows);
    for (int r = 0; r < ROWS; r++) {
        int64_t bh = sizes[r][0], bw = sizes[r][1], h0, w0;
        switch (r) {
        case 1: h0 = 0, w0 = 0; break;                   /* top-left corner */
        case 3: h0 = H - bh, w0 = W - bw; break;         /* bottom-right corner */
        case 6: h0 = -5, w0 = W - 10; break;             /* off the top and the right edge */
        case 8: h0 = H - 8, w0 = -3; break;              /* off the bottom and the left edge */
        default: h0 = rnd(H - bh + 1), w0 = rnd(W - bw + 1);
        }
        int64_t *b = boxes + 4 * r;
        b[0] = h0, b[1] = h0 + bh, b[2] = w0, b[3] = w0 + bw;
        float *d = rows + r * in;
        memcpy(d, x0, sizeof(float) * (size_t)in);
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = h0 < 0 ? 0 : h0; y < b[1] && y < H; y++)
                for (int64_t xx = w0 < 0 ? 0 : w0; xx < b[3] && xx < W; xx++)
                    d[(c * H + y) * W + xx] = r % 2 ? 0.0f : x1[(c * H + y) * W + xx];
    }

    /* full passes */
    int64_t dims[4] = {ROWS, C, H, W};
    gb_tensor batch = {.dtype = GB_DTYPE_F32, .ndim = 4, .numel = ROWS * in, .data = rows};
    memcpy(batch.dims, dims, sizeof dims);
    const gb_tensor *bin[1] = {&batch};
    if (gb_session_run(s, bin, 1)) fail_msg("%s", gb_ctx_errmsg(ctx));
    int out_id = m->outputs[0], mid = middle_tensor(m, inc);
    const gb_tensor *lf = gb__session_tensor(s, out_id);
    float *logits_full = malloc(sizeof(float) * (size_t)lf->numel);
    memcpy(logits_full, lf->data, sizeof(float) * (size_t)lf->numel);
    const int64_t nl = lf->numel / ROWS;
    float *mid_full = NULL;
    int64_t nm = 0;
    if (mid >= 0) {
        const gb_tensor *mf = gb__session_tensor(s, mid);
        nm = mf->numel / ROWS;
        mid_full = malloc(sizeof(float) * (size_t)mf->numel);
        memcpy(mid_full, mf->data, sizeof(float) * (size_t)mf->numel);
    }

    /* incremental, logits then the middle tensor */
    double fi, ff;
    const gb_tensor *T;
    for (int pass = 0; pass < (mid >= 0 ? 2 : 1); pass++) {
        int target = pass ? mid : out_id;
        const float *want = pass ? mid_full : logits_full;
        int64_t n = pass ? nm : nl;
        if (gb__incr_plan(inc, ROWS, boxes, &fi, &ff)) fail_msg("%s", gb_ctx_errmsg(ctx));
        if (gb__incr_run(inc, rows, target, &T)) fail_msg("%s", gb_ctx_errmsg(ctx));
        assert_int_equal(T->numel, n * ROWS);
        double worst = 0;
        for (int r = 0; r < ROWS; r++) {
            double e = rel_l2((const float *)T->data + r * n, want + r * n, n);
            if (e > worst) worst = e;
            if (!(e <= TOL))
                fail_msg("%s: row %d (box %lld..%lld x %lld..%lld): %s rel L2 %.3g > %g", tc->label, r,
                         (long long)boxes[4 * r], (long long)boxes[4 * r + 1], (long long)boxes[4 * r + 2],
                         (long long)boxes[4 * r + 3], pass ? "hidden tensor" : "logits", e, TOL);
        }
        if (!pass) {
            /* rows 0..8 alone (without the whole-image box) for the FLOP report */
            double fi9, ff9;
            if (gb__incr_plan(inc, ROWS - 1, boxes, &fi9, &ff9)) fail_msg("%s", gb_ctx_errmsg(ctx));
            printf("[ %-28s ] logits worst rel L2 %.2e; FLOPs incremental/full %.3f (%.3f without the "
                   "whole-image row)\n", tc->label, worst, fi / ff, fi9 / ff9);
        } else {
            printf("[ %-28s ] hidden %s worst rel L2 %.2e\n", tc->label, m->tensors[mid].name, worst);
        }
    }
    free(mid_full);
    free(logits_full);
    free(rows);
    gb_tensor_free(x);
    gb__incr_free(inc);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

int main(int argc, char **argv) {
    enum { N = sizeof models / sizeof *models };
    static tv_case cases[2 * N];
    struct CMUnitTest tests[2 * N];
    const char *dir = getenv("GB_TV_CACHE");
    const char *only = argc > 1 ? argv[1] : NULL;
    int nt = 0;
    for (int i = 0; i < N; i++)
        for (int v = 0; v < 2; v++) {
            if (only && !strstr(only, models[i])) continue;
            tv_case *c = &cases[nt];
            c->name = models[i];
            c->variant = v ? ".keepbn" : "";
            if (v) {
                char p[1024];
                snprintf(p, sizeof p, "%s/%s.keepbn.onnx", dir ? dir : ".", models[i]);
                FILE *f = fopen(p, "rb");
                if (!f) continue; /* no BatchNormalization in this model */
                fclose(f);
            }
            snprintf(c->label, sizeof c->label, "%s%s", c->name, c->variant);
            tests[nt] = (struct CMUnitTest){c->label, check_model, NULL, NULL, c};
            nt++;
        }
    return _cmocka_run_group_tests("incremental_tv", tests, (size_t)nt, NULL, NULL);
}
