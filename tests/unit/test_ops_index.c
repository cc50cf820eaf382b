/*
 * test_ops_index.c — Transpose, Expand, Slice, Gather, Concat, Split, Pad
 * (src/ops/index.c).
 *
 * References: NumPy (tests/fixtures/shape_ops_ref.h, written by
 * tests/scripts/gen_shape_fixtures.py: Python slicing, np.pad, np.transpose,
 * broadcasting, np.take) and hand-derived values from the ONNX spec.
 * Large cases are also run with 1 and 2 threads and must agree exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "shape_harness.h"

#include "../fixtures/shape_ops_ref.h"

static int setup(void **state) {
    gb_ctx *ctx;
    if (gb_ctx_create(&ctx)) return -1;
    *state = ctx;
    return 0;
}
static int teardown(void **state) {
    gb_ctx_free(*state);
    return 0;
}

/* ---- Transpose ------------------------------------------------------------------- */

static void test_transpose(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    gb_tensor x = tens(GB_DTYPE_F32, 4, (int64_t[]){2, 3, 4, 5}, fx_tr_x);
    gb_tensor *in[] = {&x};
    int64_t perm[] = {2, 0, 3, 1};
    tn_init(&t, "Transpose", 13, 1, 1);
    tn_ints(&t, "perm", 4, perm);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 4, (int64_t[]){4, 2, 5, 3});
    assert_close(out[0].data, fx_tr_perm_y, 120, 0, 0);
    out_free(out, 1);
    /* default: reverse */
    tn_init(&t, "Transpose", 13, 1, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 4, (int64_t[]){5, 4, 3, 2});
    assert_close(out[0].data, fx_tr_rev_y, 120, 0, 0);
    out_free(out, 1);
    /* int64 data, 2-D: hand values */
    int64_t xi[] = {1, 2, 3, 4, 5, 6};
    gb_tensor xt = tens(GB_DTYPE_I64, 2, (int64_t[]){2, 3}, xi);
    gb_tensor *ini[] = {&xt};
    tn_init(&t, "Transpose", 13, 1, 1);
    assert_int_equal(run_node(ctx, &t, ini, out), GB_OK);
    assert_i64(out[0].data, (int64_t[]){1, 4, 2, 5, 3, 6}, 6);
    out_free(out, 1);
    /* not a permutation */
    int64_t bad[] = {0, 0, 1, 2};
    tn_init(&t, "Transpose", 13, 1, 1);
    tn_ints(&t, "perm", 4, bad);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_SHAPE);
    assert_msg(ctx, "permutation");
}

/* A big transpose (above the parallel threshold): 1 and 2 threads agree
 * with the index formula. */
static void test_transpose_threads(void **state) {
    gb_ctx *ctx = *state;
    const int64_t A = 64, B = 48, C = 40;
    float *x = malloc(sizeof(float) * A * B * C);
    for (int64_t i = 0; i < A * B * C; i++) x[i] = (float)i;
    gb_tensor xt = tens(GB_DTYPE_F32, 3, (int64_t[]){A, B, C}, x);
    gb_tensor *in[] = {&xt};
    int64_t perm[] = {1, 2, 0};
    for (int th = 1; th <= 2; th++) {
        tnode t;
        tn_init(&t, "Transpose", 13, 1, 1);
        tn_ints(&t, "perm", 3, perm);
        gb_tensor out[1];
        assert_int_equal(run_node2(ctx, &t, in, NULL, out, th), GB_OK);
        const float *y = out[0].data;
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t a = 0; a < A; a++)
                    if (y[(b * C + c) * A + a] != x[(a * B + b) * C + c]) fail_msg("mismatch at %lld,%lld,%lld", (long long)a, (long long)b, (long long)c);
        out_free(out, 1);
    }
    free(x);
}

/* ---- Expand --------------------------------------------------------------------- */

static void test_expand(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    gb_tensor x = tens(GB_DTYPE_F32, 2, (int64_t[]){3, 1}, fx_expand_x);
    int64_t sh[] = {2, 1, 4};
    gb_tensor s = I64V(sh);
    gb_tensor *in[] = {&x, &s};
    tn_init(&t, "Expand", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 3, (int64_t[]){2, 3, 4});
    assert_close(out[0].data, fx_expand_y, 24, 0, 0);
    out_free(out, 1);
    /* a shorter shape of ones keeps the input shape */
    int64_t one[] = {1};
    gb_tensor s1 = I64V(one);
    gb_tensor *in1[] = {&x, &s1};
    tn_init(&t, "Expand", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){3, 1});
    assert_close(out[0].data, fx_expand_x, 3, 0, 0);
    out_free(out, 1);
    /* incompatible */
    int64_t bad[] = {2, 4};
    gb_tensor sb = I64V(bad);
    gb_tensor *inb[] = {&x, &sb};
    tn_init(&t, "Expand", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, inb, out), GB_ERR_SHAPE);
    assert_msg(ctx, "3x1");
}

/* ---- Slice ------------------------------------------------------------------------ */

static void slice_case(gb_ctx *ctx, const int64_t *st, const int64_t *en, const int64_t *ax, const int64_t *sp,
                       int n, const float *want, const int64_t *want_shape) {
    tnode t;
    tn_init(&t, "Slice", 13, 5, 1);
    gb_tensor x = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 4, 5}, fx_slice_x);
    gb_tensor ts = tens(GB_DTYPE_I64, 1, (int64_t[]){n}, st), te = tens(GB_DTYPE_I64, 1, (int64_t[]){n}, en);
    gb_tensor ta = tens(GB_DTYPE_I64, 1, (int64_t[]){n}, ax), tp = tens(GB_DTYPE_I64, 1, (int64_t[]){n}, sp);
    gb_tensor *in[] = {&x, &ts, &te, &ta, &tp};
    gb_tensor out[1];
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 3, want_shape);
    assert_close(out[0].data, want, out[0].numel, 0, 0);
    out_free(out, 1);
}

static void test_slice(void **state) {
    gb_ctx *ctx = *state;
    slice_case(ctx, fx_slice_neg_starts, fx_slice_neg_ends, fx_slice_neg_axes, fx_slice_neg_steps, 3, fx_slice_neg_y,
               fx_slice_neg_shape);
    slice_case(ctx, fx_slice_clip_starts, fx_slice_clip_ends, fx_slice_clip_axes, fx_slice_clip_steps, 2,
               fx_slice_clip_y, fx_slice_clip_shape);
    slice_case(ctx, fx_slice_empty_starts, fx_slice_empty_ends, fx_slice_empty_axes, fx_slice_empty_steps, 1,
               fx_slice_empty_y, fx_slice_empty_shape);
    slice_case(ctx, fx_slice_far_starts, fx_slice_far_ends, fx_slice_far_axes, fx_slice_far_steps, 1, fx_slice_far_y,
               fx_slice_far_shape);

    gb_tensor out[1];
    tnode t;
    gb_tensor x = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 4, 5}, fx_slice_x);
    /* opset 9: attributes, default axes = 0..n-1: x[1:3, -1:] */
    int64_t s9[] = {1, -1}, e9[] = {3, 100};
    tn_init(&t, "Slice", 9, 1, 1);
    tn_ints(&t, "starts", 2, s9);
    tn_ints(&t, "ends", 2, e9);
    gb_tensor *in1[] = {&x};
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    assert_shape(&out[0], 3, (int64_t[]){2, 1, 5});
    assert_close(out[0].data, (float[]){35, 36, 37, 38, 39, 55, 56, 57, 58, 59}, 10, 0, 0);
    out_free(out, 1);
    /* opset 10 without axes/steps, int64 data: [10..19][2:] */
    int64_t xi[10];
    for (int i = 0; i < 10; i++) xi[i] = 10 + i;
    gb_tensor xv = I64V(xi);
    int64_t s10[] = {-3}, e10[] = {INT64_MAX};
    gb_tensor ts = I64V(s10), te = I64V(e10);
    gb_tensor *in3[] = {&xv, &ts, &te};
    tn_init(&t, "Slice", 10, 3, 1);
    assert_int_equal(run_node(ctx, &t, in3, out), GB_OK);
    assert_i64(out[0].data, (int64_t[]){17, 18, 19}, 3);
    out_free(out, 1);
    /* step 0 is an error; starts only known at run time cannot be planned */
    int64_t z[] = {0}, ax0[] = {0};
    gb_tensor tz = I64V(z), ta = I64V(ax0);
    gb_tensor *in5[] = {&xv, &ts, &te, &ta, &tz};
    tn_init(&t, "Slice", 13, 5, 1);
    assert_int_equal(run_node(ctx, &t, in5, out), GB_ERR_SHAPE);
    assert_msg(ctx, "step 0");
    gb_tensor tsn = tens(GB_DTYPE_I64, 1, (int64_t[]){1}, NULL);
    gb_tensor *inn[] = {&xv, &tsn, &te};
    tn_init(&t, "Slice", 13, 3, 1);
    assert_int_equal(run_node(ctx, &t, inn, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "starts");
}

/* ---- Gather ----------------------------------------------------------------------- */

static void test_gather(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    gb_tensor x = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 4, 2}, fx_gather_x);
    gb_tensor idx = tens(GB_DTYPE_I64, 2, (int64_t[]){3, 2}, fx_gather_idx);
    gb_tensor *in[] = {&x, &idx};
    tn_init(&t, "Gather", 13, 2, 1);
    tn_int(&t, "axis", -2);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 4, (int64_t[]){3, 3, 2, 2});
    assert_close(out[0].data, fx_gather_y, 36, 0, 0);
    out_free(out, 1);
    /* scalar index removes the axis; int64 data (a shape vector, as in Shape->Gather) */
    int64_t shp[] = {1, 3, 224, 224}, one[] = {-1};
    gb_tensor xs = I64V(shp), is = tens(GB_DTYPE_I64, 0, NULL, one);
    gb_tensor *ins[] = {&xs, &is};
    tn_init(&t, "Gather", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, ins, out), GB_OK);
    assert_int_equal(out[0].ndim, 0);
    assert_i64(out[0].data, (int64_t[]){224}, 1);
    out_free(out, 1);
    /* out of range: at plan time if the indices are constant ... */
    int64_t four[] = {4};
    is.data = four;
    tn_init(&t, "Gather", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, ins, out), GB_ERR_ARG);
    assert_msg(ctx, "out of range");
    /* ... else in forward */
    gb_tensor isn = tens(GB_DTYPE_I64, 0, NULL, NULL);
    gb_tensor *plan[] = {&xs, &isn};
    tn_init(&t, "Gather", 13, 2, 1);
    assert_int_equal(run_node2(ctx, &t, plan, ins, out, 1), GB_ERR_ARG);
    out_free(out, 1);
}

/* ---- Concat / Split ------------------------------------------------------------------ */

static void test_concat(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[1];
    tnode t;
    float a[] = {1, 2, 3, 4}, b[] = {5, 6}, c[] = {7, 8, 9, 10, 11, 12};
    gb_tensor ta = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 2}, a), tb = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 1}, b);
    gb_tensor tc = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 3}, c);
    gb_tensor *in[] = {&ta, &tb, &tc};
    tn_init(&t, "Concat", 13, 3, 1);
    tn_int(&t, "axis", -1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){2, 6});
    assert_close(out[0].data, (float[]){1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12}, 12, 0, 0);
    out_free(out, 1);
    /* axis 0 with an empty input */
    gb_tensor te = tens(GB_DTYPE_F32, 2, (int64_t[]){0, 2}, a);
    gb_tensor *in0[] = {&ta, &te, &ta};
    tn_init(&t, "Concat", 13, 3, 1);
    tn_int(&t, "axis", 0);
    assert_int_equal(run_node(ctx, &t, in0, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){4, 2});
    assert_close(out[0].data, (float[]){1, 2, 3, 4, 1, 2, 3, 4}, 8, 0, 0);
    out_free(out, 1);
    /* mismatch */
    tn_init(&t, "Concat", 13, 3, 1);
    tn_int(&t, "axis", 0);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_SHAPE);
    assert_msg(ctx, "2x1");
    /* opset 4+ requires axis */
    tn_init(&t, "Concat", 13, 3, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_ERR_FORMAT);
}

static void test_split(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[3];
    tnode t;
    float x[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    gb_tensor tx = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 6}, x);
    /* equal parts along axis 1 */
    gb_tensor *in1[] = {&tx};
    tn_init(&t, "Split", 13, 1, 3);
    tn_int(&t, "axis", 1);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    for (int k = 0; k < 3; k++) assert_shape(&out[k], 2, (int64_t[]){2, 2});
    assert_close(out[0].data, (float[]){0, 1, 6, 7}, 4, 0, 0);
    assert_close(out[1].data, (float[]){2, 3, 8, 9}, 4, 0, 0);
    assert_close(out[2].data, (float[]){4, 5, 10, 11}, 4, 0, 0);
    out_free(out, 3);
    /* opset 13 'split' input with a zero-size part */
    int64_t sp[] = {1, 0, 5};
    gb_tensor ts = I64V(sp);
    gb_tensor *in2[] = {&tx, &ts};
    tn_init(&t, "Split", 13, 2, 3);
    tn_int(&t, "axis", -1);
    assert_int_equal(run_node(ctx, &t, in2, out), GB_OK);
    assert_shape(&out[1], 2, (int64_t[]){2, 0});
    assert_close(out[0].data, (float[]){0, 6}, 2, 0, 0);
    assert_close(out[2].data, (float[]){1, 2, 3, 4, 5, 7, 8, 9, 10, 11}, 10, 0, 0);
    out_free(out, 3);
    /* opset 11 attribute */
    int64_t sp2[] = {4, 2};
    tn_init(&t, "Split", 11, 1, 2);
    tn_int(&t, "axis", 1);
    tn_ints(&t, "split", 2, sp2);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_OK);
    assert_close(out[1].data, (float[]){4, 5, 10, 11}, 4, 0, 0);
    out_free(out, 2);
    /* errors: uneven equal split, wrong sum */
    tn_init(&t, "Split", 13, 1, 3);
    assert_int_equal(run_node(ctx, &t, in1, out), GB_ERR_SHAPE);
    assert_msg(ctx, "equal parts");
    int64_t sp3[] = {1, 1, 1};
    gb_tensor ts3 = I64V(sp3);
    gb_tensor *in3[] = {&tx, &ts3};
    tn_init(&t, "Split", 13, 2, 3);
    tn_int(&t, "axis", 1);
    assert_int_equal(run_node(ctx, &t, in3, out), GB_ERR_SHAPE);
    assert_msg(ctx, "sum to 3");
}

/* ---- Pad ---------------------------------------------------------------------------- */

static void pad_case(gb_ctx *ctx, int opset, const char *mode, const float *x, const int64_t *xd, int64_t *pads,
                     float value, const float *want, const int64_t *want_shape) {
    tnode t;
    gb_tensor tx = tens(GB_DTYPE_F32, 2, xd, x);
    gb_tensor tp = tens(GB_DTYPE_I64, 1, (int64_t[]){4}, pads);
    float v[] = {value};
    gb_tensor tv = tens(GB_DTYPE_F32, 0, NULL, v);
    gb_tensor *in[] = {&tx, &tp, &tv};
    gb_tensor out[1];
    if (opset < 11) {
        tn_init(&t, "Pad", opset, 1, 1);
        tn_ints(&t, "pads", 4, pads);
        tn_float(&t, "value", value);
    } else {
        tn_init(&t, "Pad", opset, 3, 1);
    }
    tn_str(&t, "mode", mode);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 2, want_shape);
    assert_close(out[0].data, want, out[0].numel, 0, 0);
    out_free(out, 1);
}

static void test_pad(void **state) {
    gb_ctx *ctx = *state;
    const int64_t d23[] = {2, 3};
    int64_t pads[] = {3, 4, 2, 5}; /* wider than the input: reflect repeats */
    pad_case(ctx, 13, "reflect", fx_pad_x, d23, pads, 0, fx_pad_reflect_y, fx_pad_reflect_shape);
    pad_case(ctx, 2, "reflect", fx_pad_x, d23, pads, 0, fx_pad_reflect_y, fx_pad_reflect_shape);
    pad_case(ctx, 13, "edge", fx_pad_x, d23, pads, 0, fx_pad_edge_y, fx_pad_edge_shape);
    pad_case(ctx, 13, "constant", fx_pad_x, d23, pads, 1.5f, fx_pad_constant_y, fx_pad_constant_shape);
    pad_case(ctx, 7, "constant", fx_pad_x, d23, pads, 1.5f, fx_pad_constant_y, fx_pad_constant_shape);
    int64_t crop[] = {-1, 2, 0, -3};
    pad_case(ctx, 13, "constant", fx_crop_x, (int64_t[]){3, 6}, crop, 0, fx_crop_y, fx_crop_shape);
    int64_t rc[] = {0, 3, 0, -2};
    pad_case(ctx, 13, "reflect", fx_reflcrop_x, (int64_t[]){2, 4}, rc, 0, fx_reflcrop_y, fx_reflcrop_shape);

    gb_tensor out[1];
    tnode t;
    /* int64 data, no constant_value (zero); constant_value known only at run time */
    int64_t xi[] = {1, 2, 3};
    gb_tensor tx = I64V(xi);
    int64_t p1[] = {1, 2};
    gb_tensor tp = I64V(p1);
    gb_tensor *in2[] = {&tx, &tp};
    tn_init(&t, "Pad", 11, 2, 1);
    assert_int_equal(run_node(ctx, &t, in2, out), GB_OK);
    assert_i64(out[0].data, (int64_t[]){0, 1, 2, 3, 0, 0}, 6);
    out_free(out, 1);
    int64_t nine[] = {9};
    gb_tensor tv = tens(GB_DTYPE_I64, 0, NULL, nine), tvn = tens(GB_DTYPE_I64, 0, NULL, NULL);
    gb_tensor *plan[] = {&tx, &tp, &tvn}, *run[] = {&tx, &tp, &tv};
    tn_init(&t, "Pad", 11, 3, 1);
    assert_int_equal(run_node2(ctx, &t, plan, run, out, 1), GB_OK);
    assert_i64(out[0].data, (int64_t[]){9, 1, 2, 3, 9, 9}, 6);
    out_free(out, 1);
    /* opset 18 axes input: pad only axis -1 of a 2x3 */
    float x23[] = {1, 2, 3, 4, 5, 6};
    gb_tensor t23 = tens(GB_DTYPE_F32, 2, d23, x23);
    int64_t pa[] = {0, 1}, ax[] = {-1};
    float zero[] = {0};
    gb_tensor tpa = I64V(pa), tax = I64V(ax), tz = tens(GB_DTYPE_F32, 0, NULL, zero);
    gb_tensor *in4[] = {&t23, &tpa, &tz, &tax};
    tn_init(&t, "Pad", 18, 4, 1);
    tn_str(&t, "mode", "edge");
    assert_int_equal(run_node(ctx, &t, in4, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){2, 4});
    assert_close(out[0].data, (float[]){1, 2, 3, 3, 4, 5, 6, 6}, 8, 0, 0);
    out_free(out, 1);
    /* errors */
    tn_init(&t, "Pad", 13, 2, 1);
    tn_str(&t, "mode", "wrap");
    assert_int_equal(run_node(ctx, &t, in2, out), GB_ERR_UNSUPPORTED);
    assert_msg(ctx, "wrap");
    int64_t over[] = {-2, -2};
    gb_tensor tov = I64V(over);
    gb_tensor *in5[] = {&tx, &tov};
    tn_init(&t, "Pad", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, in5, out), GB_ERR_SHAPE);
}

/* Pad on a big 4-D tensor: 1 and 2 threads give identical results. */
static void test_pad_threads(void **state) {
    gb_ctx *ctx = *state;
    const int64_t d[] = {2, 8, 60, 70};
    int64_t nx = gb__numel(4, d);
    float *x = malloc(sizeof(float) * nx);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(i % 997) * 0.5f;
    gb_tensor tx = tens(GB_DTYPE_F32, 4, d, x);
    int64_t pads[] = {0, 0, 3, 2, 0, 0, 4, 5};
    gb_tensor tp = I64V(pads);
    gb_tensor *in[] = {&tx, &tp};
    gb_tensor o1[1], o2[1];
    tnode t;
    tn_init(&t, "Pad", 13, 2, 1);
    tn_str(&t, "mode", "reflect");
    assert_int_equal(run_node2(ctx, &t, in, NULL, o1, 1), GB_OK);
    tn_init(&t, "Pad", 13, 2, 1);
    tn_str(&t, "mode", "reflect");
    assert_int_equal(run_node2(ctx, &t, in, NULL, o2, 2), GB_OK);
    assert_shape(&o1[0], 4, (int64_t[]){2, 8, 67, 77});
    assert_memory_equal(o1[0].data, o2[0].data, (size_t)o1[0].numel * sizeof(float));
    /* spot check: output (0, 0, 0, 0) reads input (0, 0, 3, 2) (reflection) */
    assert_true(((float *)o1[0].data)[0] == x[3 * 70 + 2]);
    out_free(o1, 1);
    out_free(o2, 1);
    free(x);
}

/* Values a malformed or hostile model can carry: no overflow, no crash. */
static void test_hostile(void **state) {
    gb_ctx *ctx = *state;
    gb_tensor out[2];
    tnode t;
    float x[6] = {1, 2, 3, 4, 5, 6};
    gb_tensor tx = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 3}, x);
    /* Slice with INT64_MIN / INT64_MAX steps: one element each way */
    int64_t st[] = {0, -1}, en[] = {INT64_MAX, INT64_MIN}, ax[] = {0, 1}, sp[] = {INT64_MAX, INT64_MIN};
    gb_tensor ts = I64V(st), te = I64V(en), ta = I64V(ax), tp = I64V(sp);
    gb_tensor *in[] = {&tx, &ts, &te, &ta, &tp};
    tn_init(&t, "Slice", 13, 5, 1);
    assert_int_equal(run_node(ctx, &t, in, out), GB_OK);
    assert_shape(&out[0], 2, (int64_t[]){1, 1});
    assert_close(out[0].data, (float[]){3}, 1, 0, 0);
    out_free(out, 1);
    /* Pad by INT64_MAX */
    int64_t pads[] = {0, INT64_MAX, 0, 0};
    gb_tensor tpad = I64V(pads);
    gb_tensor *inp[] = {&tx, &tpad};
    tn_init(&t, "Pad", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, inp, out), GB_ERR_SHAPE);
    /* Expand to an absurd size */
    int64_t big[] = {INT64_MAX / 2, 3};
    gb_tensor tb = I64V(big);
    gb_tensor *ine[] = {&tx, &tb};
    tn_init(&t, "Expand", 13, 2, 1);
    assert_int_equal(run_node(ctx, &t, ine, out), GB_ERR_SHAPE);
    /* Split sizes that sum to 3 only by overflow */
    int64_t sp2[] = {INT64_MAX, INT64_MIN + 4};
    gb_tensor tsp = I64V(sp2);
    gb_tensor *ins[] = {&tx, &tsp};
    tn_init(&t, "Split", 13, 2, 2);
    tn_int(&t, "axis", 1);
    assert_int_equal(run_node(ctx, &t, ins, out), GB_ERR_SHAPE);
    /* a required input given an empty name */
    tn_init(&t, "Gather", 13, 2, 1);
    t.in_ids[0] = -1;
    gb_tensor *ing[] = {NULL, &ts};
    assert_int_equal(run_node(ctx, &t, ing, out), GB_ERR_FORMAT);
    assert_msg(ctx, "missing");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transpose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transpose_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gather, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pad_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
