/*
 * test_ops_index.c — Transpose, Expand, Slice, Gather, Concat, Split, Pad
 * (src/ops/index.c).
 *
 * References: NumPy (tests/fixtures/shape_ops_ref.h, written by
 * tests/scripts/gen_shape_fixtures.py: Python slicing, np.pad, np.transpose,
 * broadcasting, np.take) and hand-derived values from the ONNX spec.
 * Large cases are also run with 1 and 2 threads and must agree exactly.
 *
 * Backward: PyTorch autograd (tests/fixtures/shape_grad_torch.h, written by
 * tests/scripts/gen_shape_grad_fixtures.py: F.pad reflect/replicate/
 * constant, indexing with repeated indices, expand), hand values, and an
 * element-by-element central-difference check (check_grad) of every op in
 * the forms PyTorch lacks (negative slice steps, ONNX's periodic reflect
 * with pads wider than the input, attribute opsets).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "shape_harness.h"

#include "../fixtures/shape_ops_ref.h"
#include "../fixtures/shape_grad_torch.h"

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

/* ---- backward ------------------------------------------------------------------ */

static void test_transpose_backward(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    /* hand: a 2x3 transposed is 3x2, dx = dy^T */
    float x[6] = {0}, dy[6] = {1, 2, 3, 4, 5, 6}, dx[6];
    gb_tensor tx = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 3}, x);
    gb_tensor *in[] = {&tx};
    tn_init(&t, "Transpose", 13, 1, 1);
    grad_of(ctx, &t, in, 0, dy, dx, 1);
    assert_close(dx, (float[]){1, 3, 5, 2, 4, 6}, 6, 0, 0);
    /* finite differences: a 4-D permutation and the default reversal */
    float *x4 = frand(120, 1);
    gb_tensor t4 = tens(GB_DTYPE_F32, 4, (int64_t[]){2, 3, 4, 5}, x4);
    gb_tensor *in4[] = {&t4};
    int64_t perm[] = {2, 0, 3, 1};
    tn_init(&t, "Transpose", 13, 1, 1);
    tn_ints(&t, "perm", 4, perm);
    check_grad(ctx, &t, in4, 1, 0, 1, 1e-2f, 1e-4);
    tn_init(&t, "Transpose", 13, 1, 1);
    check_grad(ctx, &t, in4, 1, 0, 2, 1e-2f, 1e-4);
    free(x4);
    /* big: 1 and 2 threads agree */
    float *xb = frand(64 * 48 * 40, 2);
    gb_tensor tb = tens(GB_DTYPE_F32, 3, (int64_t[]){64, 48, 40}, xb);
    gb_tensor *inb[] = {&tb};
    int64_t pb[] = {1, 2, 0};
    tn_init(&t, "Transpose", 13, 1, 1);
    tn_ints(&t, "perm", 3, pb);
    check_grad_threads(ctx, &t, inb, 0);
    free(xb);
}

static void test_expand_backward(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    /* PyTorch: (3, 1, 4) -> (2, 3, 5, 4) sums over the new axis 0 and axis 2 */
    gb_tensor x = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 1, 4}, fx_gexpand_x);
    int64_t sh[] = {2, 3, 5, 4};
    gb_tensor s = I64V(sh);
    gb_tensor *in[] = {&x, &s};
    float dx[12];
    tn_init(&t, "Expand", 13, 2, 1);
    grad_of(ctx, &t, in, 0, fx_gexpand_g, dx, 1);
    assert_close(dx, fx_gexpand_dx, 12, 1e-5f, 1e-6f);
    /* bidirectional: shape (2, 1, 1) with x (3, 4): output (2, 3, 4) */
    float *x34 = frand(12, 3);
    gb_tensor t34 = tens(GB_DTYPE_F32, 2, (int64_t[]){3, 4}, x34);
    int64_t sh2[] = {2, 1, 1};
    gb_tensor s2 = I64V(sh2);
    gb_tensor *in2[] = {&t34, &s2};
    tn_init(&t, "Expand", 13, 2, 1);
    check_grad(ctx, &t, in2, 1, 0, 1, 1e-2f, 1e-4);
    free(x34);
    /* big: (16, 1, 64) -> (4, 16, 64, 64), 1 and 2 threads agree */
    float *xb = frand(16 * 64, 4);
    gb_tensor tb = tens(GB_DTYPE_F32, 3, (int64_t[]){16, 1, 64}, xb);
    int64_t shb[] = {4, 16, 64, 64};
    gb_tensor sb = I64V(shb);
    gb_tensor *inb[] = {&tb, &sb};
    tn_init(&t, "Expand", 13, 2, 1);
    check_grad_threads(ctx, &t, inb, 0);
    free(xb);
}

static void test_slice_backward(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    /* hand: x[8:1:-3] of 10 elements reads 8, 5, 2 */
    float x[10] = {0}, dy[3] = {1, 2, 3}, dx[10];
    gb_tensor tx = I64V(x);
    tx.dtype = GB_DTYPE_F32;
    int64_t st[] = {8}, en[] = {1}, ax[] = {0}, sp[] = {-3};
    gb_tensor ts = I64V(st), te = I64V(en), ta = I64V(ax), tp = I64V(sp);
    gb_tensor *in[] = {&tx, &ts, &te, &ta, &tp};
    tn_init(&t, "Slice", 13, 5, 1);
    grad_of(ctx, &t, in, 0, dy, dx, 1);
    assert_close(dx, (float[]){0, 0, 3, 0, 0, 2, 0, 0, 1, 0}, 10, 0, 0);
    /* finite differences on the NumPy fixture cases (negative steps, clamping, empty) */
    float *x3 = fdup(fx_slice_x, 60);
    gb_tensor t3 = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 4, 5}, x3);
    const int64_t *cases[][4] = {
        {fx_slice_neg_starts, fx_slice_neg_ends, fx_slice_neg_axes, fx_slice_neg_steps},
        {fx_slice_clip_starts, fx_slice_clip_ends, fx_slice_clip_axes, fx_slice_clip_steps},
        {fx_slice_empty_starts, fx_slice_empty_ends, fx_slice_empty_axes, fx_slice_empty_steps},
        {fx_slice_far_starts, fx_slice_far_ends, fx_slice_far_axes, fx_slice_far_steps},
    };
    const int ns[] = {3, 2, 1, 1};
    for (int c = 0; c < 4; c++) {
        gb_tensor a = tens(GB_DTYPE_I64, 1, (int64_t[]){ns[c]}, cases[c][0]);
        gb_tensor b = tens(GB_DTYPE_I64, 1, (int64_t[]){ns[c]}, cases[c][1]);
        gb_tensor d = tens(GB_DTYPE_I64, 1, (int64_t[]){ns[c]}, cases[c][2]);
        gb_tensor e = tens(GB_DTYPE_I64, 1, (int64_t[]){ns[c]}, cases[c][3]);
        gb_tensor *inc[] = {&t3, &a, &b, &d, &e};
        tn_init(&t, "Slice", 13, 5, 1);
        if (c == 2) { /* empty output: the gradient is all zero */
            float z[60];
            grad_of(ctx, &t, inc, 0, NULL, z, 1);
            for (int i = 0; i < 60; i++) assert_true(z[i] == 0);
            continue;
        }
        check_grad(ctx, &t, inc, 1, 0, 1, 1e-2f, 1e-4);
    }
    /* opset 9 attribute form: x[1:3, -1:] */
    int64_t s9[] = {1, -1}, e9[] = {3, 100};
    gb_tensor *in9[] = {&t3};
    tn_init(&t, "Slice", 9, 1, 1);
    tn_ints(&t, "starts", 2, s9);
    tn_ints(&t, "ends", 2, e9);
    check_grad(ctx, &t, in9, 1, 0, 1, 1e-2f, 1e-4);
    free(x3);
    /* big, every other row reversed: 1 and 2 threads agree */
    float *xb = frand(200 * 400, 5);
    gb_tensor tb = tens(GB_DTYPE_F32, 2, (int64_t[]){200, 400}, xb);
    int64_t sb[] = {-1, 3}, eb[] = {INT64_MIN, 390}, ab[] = {0, 1}, pb[] = {-2, 1};
    gb_tensor tsb = I64V(sb), teb = I64V(eb), tab = I64V(ab), tpb = I64V(pb);
    gb_tensor *inb[] = {&tb, &tsb, &teb, &tab, &tpb};
    tn_init(&t, "Slice", 13, 5, 1);
    check_grad_threads(ctx, &t, inb, 0);
    free(xb);
}

static void test_gather_backward(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    /* hand, repeated and negative indices: x[[1, 1, 3, -1]] of 4 -> dx[1] = 1+2, dx[3] = 3+4 */
    float x[4] = {0}, dy[4] = {1, 2, 3, 4}, dx[4];
    gb_tensor tx = tens(GB_DTYPE_F32, 1, (int64_t[]){4}, x);
    int64_t idx[] = {1, 1, 3, -1};
    gb_tensor ti = I64V(idx);
    gb_tensor *in[] = {&tx, &ti};
    tn_init(&t, "Gather", 13, 2, 1);
    grad_of(ctx, &t, in, 0, dy, dx, 1);
    assert_close(dx, (float[]){0, 3, 0, 7}, 4, 0, 0);
    /* accumulates into what is already there */
    gb_tensor out[1], dyt = tens(GB_DTYPE_F32, 1, (int64_t[]){4}, dy);
    float acc[4] = {1, 1, 1, 1};
    gb_tensor dxt = tens(GB_DTYPE_F32, 1, (int64_t[]){4}, acc);
    gb_tensor *dout[] = {&dyt}, *din[] = {&dxt, NULL};
    assert_int_equal(run_backward(ctx, &t, in, out, dout, din, 1), GB_OK);
    out_free(out, 1);
    assert_close(acc, (float[]){1, 4, 1, 8}, 4, 0, 0);
    /* PyTorch: axis 1 of (3, 5, 4), indices (2, 3) with repeats */
    gb_tensor xg = tens(GB_DTYPE_F32, 3, (int64_t[]){3, 5, 4}, fx_ggather_x);
    int64_t gi[] = {1, 4, 1, -1, 0, 1};
    gb_tensor tgi = tens(GB_DTYPE_I64, 2, (int64_t[]){2, 3}, gi);
    gb_tensor *ing[] = {&xg, &tgi};
    float dxg[60];
    tn_init(&t, "Gather", 13, 2, 1);
    tn_int(&t, "axis", 1);
    grad_of(ctx, &t, ing, 0, fx_ggather_g, dxg, 1);
    assert_close(dxg, fx_ggather_dx, 60, 1e-6f, 1e-6f);
    /* scalar index (the axis disappears), finite differences */
    float *xs = frand(24, 6);
    gb_tensor txs = tens(GB_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, xs);
    int64_t one[] = {-2};
    gb_tensor t1 = tens(GB_DTYPE_I64, 0, NULL, one);
    gb_tensor *ins[] = {&txs, &t1};
    tn_init(&t, "Gather", 13, 2, 1);
    tn_int(&t, "axis", 2);
    check_grad(ctx, &t, ins, 1, 0, 1, 1e-2f, 1e-4);
    free(xs);
    /* an embedding lookup with many repeats: 1 and 2 threads agree */
    float *xe = frand(100 * 300, 7);
    gb_tensor te = tens(GB_DTYPE_F32, 2, (int64_t[]){100, 300}, xe);
    int64_t *ie = malloc(sizeof(int64_t) * 500);
    for (int i = 0; i < 500; i++) ie[i] = (i * 37) % 100 - (i % 3 == 0 ? 100 : 0);
    gb_tensor tie = tens(GB_DTYPE_I64, 1, (int64_t[]){500}, ie);
    gb_tensor *ine[] = {&te, &tie};
    tn_init(&t, "Gather", 13, 2, 1);
    check_grad_threads(ctx, &t, ine, 0);
    free(ie);
    free(xe);
}

static void test_concat_split_backward(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    float *a = frand(6, 8), *b = frand(2, 9), *c = frand(4, 10);
    gb_tensor ta = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 3}, a), tb = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 1}, b);
    gb_tensor tc = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 2}, c);
    gb_tensor *in[] = {&ta, &tb, &tc};
    tn_init(&t, "Concat", 13, 3, 1);
    tn_int(&t, "axis", -1);
    check_grad(ctx, &t, in, 7, 0, 1, 1e-2f, 1e-4);
    /* hand, only input 1 asked for: its column of dy */
    float dy[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, db[2] = {0, 0};
    gb_tensor dyt = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 6}, dy), dbt = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 1}, db);
    gb_tensor out[3], *dout[] = {&dyt}, *din[] = {NULL, &dbt, NULL};
    assert_int_equal(run_backward(ctx, &t, in, out, dout, din, 1), GB_OK);
    out_free(out, 1);
    assert_close(db, (float[]){4, 10}, 2, 0, 0);
    tn_init(&t, "Concat", 13, 3, 1);
    tn_int(&t, "axis", 0);
    gb_tensor ta2 = tens(GB_DTYPE_F32, 2, (int64_t[]){3, 2}, a);
    gb_tensor *in0[] = {&ta2, &tc};
    t.n.n_in = 2;
    check_grad(ctx, &t, in0, 3, 0, 2, 1e-2f, 1e-4);

    /* Split into 3 along axis 1 (input form, opset 13); output 1 has no gradient */
    float *x = frand(20, 11);
    gb_tensor tx = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 10}, x);
    int64_t sz[] = {3, 5, 2};
    gb_tensor ts = I64V(sz);
    gb_tensor *ins[] = {&tx, &ts};
    tn_init(&t, "Split", 13, 2, 3);
    tn_int(&t, "axis", 1);
    check_grad(ctx, &t, ins, 1, 0, 1, 1e-2f, 1e-4);
    check_grad(ctx, &t, ins, 1, 2, 1, 1e-2f, 1e-4);
    /* attribute form (opset 11), an omitted output */
    gb_tensor *in11[] = {&tx};
    tn_init(&t, "Split", 11, 1, 3);
    tn_int(&t, "axis", -1);
    tn_ints(&t, "split", 3, sz);
    t.out_ids[2] = -1;
    check_grad(ctx, &t, in11, 1, 0, 1, 1e-2f, 1e-4);
    /* hand: equal halves of 4, only part 1 has a gradient */
    float x4[4] = {0}, g1[2] = {5, 6}, dx4[4] = {0};
    gb_tensor t4 = tens(GB_DTYPE_F32, 1, (int64_t[]){4}, x4), tg1 = tens(GB_DTYPE_F32, 1, (int64_t[]){2}, g1);
    gb_tensor tdx = tens(GB_DTYPE_F32, 1, (int64_t[]){4}, dx4);
    gb_tensor *in4[] = {&t4}, *dout2[] = {NULL, &tg1}, *din2[] = {&tdx};
    tn_init(&t, "Split", 13, 1, 2);
    assert_int_equal(run_backward(ctx, &t, in4, out, dout2, din2, 1), GB_OK);
    out_free(out, 2);
    assert_close(dx4, (float[]){0, 0, 5, 6}, 4, 0, 0);
    free(x);
    free(a);
    free(b);
    free(c);
}

/* Pad-13 on x with ONNX pads; the backward of input 0 for dy = g. */
static void pad_grad(gb_ctx *ctx, const char *mode, gb_tensor *x, const int64_t *pads, int np, const float *g,
                     float *dx) {
    tnode t;
    gb_tensor tp = tens(GB_DTYPE_I64, 1, (int64_t[]){np}, pads);
    gb_tensor *in[] = {x, &tp};
    tn_init(&t, "Pad", 13, 2, 1);
    tn_str(&t, "mode", mode);
    grad_of(ctx, &t, in, 0, g, dx, 1);
}

static void test_pad_backward(void **state) {
    gb_ctx *ctx = *state;
    tnode t;
    const int64_t d4[] = {2, 3, 4, 5};
    float dx[120];
    /* PyTorch's reflection_pad2d / replication_pad2d / constant pad backward */
    gb_tensor xr = tens(GB_DTYPE_F32, 4, d4, fx_gpad_reflect_x);
    pad_grad(ctx, "reflect", &xr, (int64_t[]){0, 0, 1, 3, 0, 0, 2, 2}, 8, fx_gpad_reflect_g, dx);
    assert_close(dx, fx_gpad_reflect_dx, 120, 1e-5f, 1e-6f);
    gb_tensor xe = tens(GB_DTYPE_F32, 4, d4, fx_gpad_edge_x);
    pad_grad(ctx, "edge", &xe, (int64_t[]){0, 0, 1, 6, 0, 0, 5, 2}, 8, fx_gpad_edge_g, dx);
    assert_close(dx, fx_gpad_edge_dx, 120, 1e-5f, 1e-6f);
    /* constant with negative pads (crop), and the gradient of constant_value */
    gb_tensor xc = tens(GB_DTYPE_F32, 4, d4, fx_gpad_const_x);
    int64_t pc[] = {0, 0, 1, -1, 0, 0, -2, 2};
    float val[] = {0.5f}, dval[] = {0};
    gb_tensor tpc = I64V(pc), tv = tens(GB_DTYPE_F32, 0, NULL, val), tdv = tens(GB_DTYPE_F32, 0, NULL, dval);
    gb_tensor gdx = grad_like(&xc);
    gb_tensor *in[] = {&xc, &tpc, &tv}, out[1];
    gb_tensor dyt = tens(GB_DTYPE_F32, 4, (int64_t[]){2, 3, 3, 6}, fx_gpad_const_g);
    gb_tensor *dout[] = {&dyt}, *din[] = {&gdx, NULL, &tdv};
    tn_init(&t, "Pad", 13, 3, 1);
    assert_int_equal(run_backward(ctx, &t, in, out, dout, din, 1), GB_OK);
    assert_shape(&out[0], 4, (int64_t[]){2, 3, 3, 6});
    out_free(out, 1);
    assert_close(gdx.data, fx_gpad_const_dx, 120, 1e-6f, 1e-6f);
    assert_close(dval, fx_gpad_const_dvalue, 1, 1e-5f, 1e-5f);
    grad_free(&gdx);
    /* finite differences where PyTorch has no equivalent: ONNX reflect with
     * pads wider than the input (periodic), edge, reflect-and-crop, opset 2 */
    float *x23 = fdup(fx_pad_x, 6);
    gb_tensor t23 = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 3}, x23);
    int64_t wide[] = {3, 4, 2, 5};
    gb_tensor tw = I64V(wide);
    gb_tensor *inw[] = {&t23, &tw};
    const char *modes[] = {"reflect", "edge", "constant"};
    for (int m = 0; m < 3; m++) {
        tn_init(&t, "Pad", 13, 2, 1);
        tn_str(&t, "mode", modes[m]);
        check_grad(ctx, &t, inw, 1, 0, 1, 1e-2f, 1e-4);
    }
    float *x24 = fdup(fx_reflcrop_x, 8);
    gb_tensor t24 = tens(GB_DTYPE_F32, 2, (int64_t[]){2, 4}, x24);
    int64_t rc[] = {0, 3, 0, -2};
    gb_tensor trc = I64V(rc);
    gb_tensor *inrc[] = {&t24, &trc};
    tn_init(&t, "Pad", 13, 2, 1);
    tn_str(&t, "mode", "reflect");
    check_grad(ctx, &t, inrc, 1, 0, 1, 1e-2f, 1e-4);
    gb_tensor *in2[] = {&t23};
    tn_init(&t, "Pad", 2, 1, 1);
    tn_str(&t, "mode", "reflect");
    tn_ints(&t, "pads", 4, wide);
    check_grad(ctx, &t, in2, 1, 0, 1, 1e-2f, 1e-4);
    /* constant_value is a float input: its finite difference too */
    float v2[] = {1.5f};
    gb_tensor tv2 = tens(GB_DTYPE_F32, 0, NULL, v2);
    gb_tensor *inv[] = {&t23, &tw, &tv2};
    tn_init(&t, "Pad", 11, 3, 1);
    check_grad(ctx, &t, inv, 5, 0, 1, 1e-2f, 1e-4);
    free(x23);
    free(x24);
    /* big reflect and edge: 1 and 2 threads agree */
    float *xb = frand(2 * 8 * 60 * 70, 12);
    gb_tensor tb = tens(GB_DTYPE_F32, 4, (int64_t[]){2, 8, 60, 70}, xb);
    int64_t pb[] = {0, 0, 3, 2, 0, 0, 4, 5};
    gb_tensor tpb = I64V(pb);
    gb_tensor *inb[] = {&tb, &tpb};
    for (int m = 0; m < 2; m++) {
        tn_init(&t, "Pad", 13, 2, 1);
        tn_str(&t, "mode", modes[m]);
        check_grad_threads(ctx, &t, inb, 0);
    }
    free(xb);
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
        cmocka_unit_test_setup_teardown(test_transpose_backward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expand_backward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slice_backward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gather_backward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concat_split_backward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pad_backward, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
