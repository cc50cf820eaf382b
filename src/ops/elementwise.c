/*
 * elementwise.c — element-by-element arithmetic:
 *   binary, NumPy-broadcasting: Add, Sub, Mul, Div, Pow
 *   unary:                      Sqrt, Exp, Log, Neg, Abs, Erf
 *
 * Types: float32 everywhere; int64 for Add/Sub/Mul/Div/Neg/Abs because
 * PyTorch exports shape arithmetic (`x.size(0) // 2`...) as int64 subgraphs.
 * Pow (opset 15 split its type into base T and exponent T1) takes a float32
 * or int64 base and a float32 or int64 exponent; the result has the base's
 * type, as numpy.power(x, y).astype(x.dtype) in ONNX's reference.
 *
 * Broadcasting (opset >= 7): multidirectional, NumPy rules (shapes aligned
 * from the right; a dim of 1 stretches). Opsets 1-6 had a `broadcast` flag
 * and an `axis` that aligned B with A starting at dimension `axis`
 * (unidirectional, B onto A). Without `axis` that is NumPy's right alignment;
 * with it we pad B's shape with trailing 1s so the same NumPy loop applies
 * (PyTorch's opset-6 exports use it: test_operator_add_size1_broadcast).
 *
 * The broadcast loop: adjacent dimensions that are contiguous in all three
 * tensors are merged, so the innermost "row" is as long as possible and has
 * a stride of 0 or 1 in each input; a row kernel specialised for those
 * strides runs over it (the compiler vectorises it), and an odometer walks
 * the remaining outer dimensions. Same-shape and scalar operands are taken
 * directly (one row). Threads split rows, or the single row.
 *
 * Backward (float32 inputs; int64 tensors never carry gradients): each op's
 * partial derivatives are written next to its forward (bin_partial, the
 * GB_UNARY_BWD lines). A broadcast input's gradient is summed over the dims
 * it was stretched along, by a gather over that input's own elements
 * (bin_backward_into): race-free and independent of the thread count.
 * Values at kinks and poles follow PyTorch's autograd (Abs'(0) = 0, the two
 * torch.pow masks at base 0); tests/fixtures/elem_grad_torch.h checks them.
 */
#include "ops/util.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---- threading helpers ---------------------------------------------------- */

/* [lo, hi) of n items for thread t of nt: contiguous, deterministic. */
static void split_range(int64_t n, int t, int nt, int64_t *lo, int64_t *hi) {
    *lo = n * t / nt;
    *hi = n * (t + 1) / nt;
}

/* ---- binary broadcast engine ---------------------------------------------- */

/* One row: o[i] = f(a[i*sa], b[i*sb]) for i < n. Strides in elements. */
typedef void (*row_fn)(void *o, const void *a, int64_t sa, const void *b, int64_t sb,
                       int64_t n);

/* Defines a row kernel with the three common stride patterns split out so
 * each loop is a plain vectorisable one. `expr` reads x (from a), y (from b). */
#define GB_ROW_FN(name, TA, TB, TO, expr)                                              \
    static void name(void *o_, const void *a_, int64_t sa, const void *b_, int64_t sb, \
                     int64_t n) {                                                      \
        TO *o = o_;                                                                    \
        const TA *a = a_;                                                              \
        const TB *b = b_;                                                              \
        if (sa == 1 && sb == 1) {                                                      \
            for (int64_t i = 0; i < n; i++) {                                          \
                TA x = a[i];                                                           \
                TB y = b[i];                                                           \
                o[i] = (expr);                                                         \
            }                                                                          \
        } else if (sa == 1 && sb == 0) {                                               \
            const TB y = b[0];                                                         \
            for (int64_t i = 0; i < n; i++) {                                          \
                TA x = a[i];                                                           \
                o[i] = (expr);                                                         \
            }                                                                          \
        } else if (sa == 0 && sb == 1) {                                               \
            const TA x = a[0];                                                         \
            for (int64_t i = 0; i < n; i++) {                                          \
                TB y = b[i];                                                           \
                o[i] = (expr);                                                         \
            }                                                                          \
        } else {                                                                       \
            for (int64_t i = 0; i < n; i++) {                                          \
                TA x = a[i * sa];                                                      \
                TB y = b[i * sb];                                                      \
                o[i] = (expr);                                                         \
            }                                                                          \
        }                                                                              \
    }

/* int64 arithmetic wraps (two's complement) instead of overflowing into
 * undefined behaviour; shapes never get near the limits anyway. */
static inline int64_t i64_wrap_add(int64_t x, int64_t y) {
    return (int64_t)((uint64_t)x + (uint64_t)y);
}
static inline int64_t i64_wrap_sub(int64_t x, int64_t y) {
    return (int64_t)((uint64_t)x - (uint64_t)y);
}
static inline int64_t i64_wrap_mul(int64_t x, int64_t y) {
    return (int64_t)((uint64_t)x * (uint64_t)y);
}
/* ONNX Div on integers truncates toward zero (C's `/`, not Python's `//`).
 * y == 0 is rejected before the loop; INT64_MIN / -1 wraps. */
static inline int64_t i64_div(int64_t x, int64_t y) {
    if (y == -1) return (int64_t)(0 - (uint64_t)x);
    return y ? x / y : 0;
}
/* Integer power by squaring, numpy semantics for e < 0 (1/x^|e| truncated). */
static inline int64_t i64_pow(int64_t x, int64_t e) {
    if (e < 0) {
        if (x == 1) return 1;
        if (x == -1) return (e & 1) ? -1 : 1;
        return 0;
    }
    uint64_t r = 1, b = (uint64_t)x;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return (int64_t)r;
}
/* double -> int64 without undefined behaviour for NaN or out-of-range. */
static inline int64_t f64_to_i64(double v) {
    if (isnan(v)) return 0;
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}

GB_ROW_FN(add_f32, float, float, float, x + y)
GB_ROW_FN(sub_f32, float, float, float, x - y)
GB_ROW_FN(mul_f32, float, float, float, x * y)
GB_ROW_FN(div_f32, float, float, float, x / y)
GB_ROW_FN(add_i64, int64_t, int64_t, int64_t, i64_wrap_add(x, y))
GB_ROW_FN(sub_i64, int64_t, int64_t, int64_t, i64_wrap_sub(x, y))
GB_ROW_FN(mul_i64, int64_t, int64_t, int64_t, i64_wrap_mul(x, y))
GB_ROW_FN(div_i64, int64_t, int64_t, int64_t, i64_div(x, y))
GB_ROW_FN(pow_f32_f32, float, float, float, powf(x, y))
GB_ROW_FN(pow_f32_i64, float, int64_t, float, (float)pow((double)x, (double)y))
GB_ROW_FN(pow_i64_i64, int64_t, int64_t, int64_t, i64_pow(x, y))
GB_ROW_FN(pow_i64_f32, int64_t, float, int64_t, f64_to_i64(pow((double)x, (double)y)))

/* Run fn over one row of n elements, split across threads. */
static void run_single_row(row_fn fn, size_t ea, size_t eb, size_t eo, const char *A, int64_t sa,
                           const char *B, int64_t sb, char *O, int64_t n, int n_threads) {
    int nt = n > GB_PAR_MIN ? n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        split_range(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo)
            fn(O + lo * eo, A + lo * sa * ea, sa, B + lo * sb * eb, sb, hi - lo);
    }
}

/*
 * out[i...] = fn(a[i...], b[i...]) over the broadcast shape (nd, dims), with
 * per-input element strides sa, sb (0 on broadcast dims). ea/eb/eo are
 * element sizes in bytes.
 */
static void broadcast_run(row_fn fn, size_t ea, size_t eb, size_t eo, const void *A_,
                          const void *B_, void *O_, int nd, const int64_t *dims,
                          const int64_t *sa, const int64_t *sb, int64_t numel_a,
                          int64_t numel_b, int n_threads) {
    const char *A = A_, *B = B_;
    char *O = O_;
    int64_t total = gb__numel(nd, dims);
    if (total == 0) return;

    /* Fast paths: same shape, or one scalar operand — a single row. */
    if (numel_a == total && numel_b == total) {
        run_single_row(fn, ea, eb, eo, A, 1, B, 1, O, total, n_threads);
        return;
    }
    if (numel_b == 1 && numel_a == total) {
        run_single_row(fn, ea, eb, eo, A, 1, B, 0, O, total, n_threads);
        return;
    }
    if (numel_a == 1 && numel_b == total) {
        run_single_row(fn, ea, eb, eo, A, 0, B, 1, O, total, n_threads);
        return;
    }

    /* Merge dims, innermost first. Group g has size cd[g] and strides
     * (ca[g], cb[g]) of its innermost element; dim i joins the current group
     * when its strides continue it in both inputs (0 continues 0). */
    int64_t cd[GB_MAX_DIMS], ca[GB_MAX_DIMS], cb[GB_MAX_DIMS];
    int ng = 0;
    for (int i = nd - 1; i >= 0; i--) {
        if (dims[i] == 1) continue;
        if (ng > 0 && sa[i] == ca[ng - 1] * cd[ng - 1] && sb[i] == cb[ng - 1] * cd[ng - 1]) {
            cd[ng - 1] *= dims[i];
            continue;
        }
        cd[ng] = dims[i];
        ca[ng] = sa[i];
        cb[ng] = sb[i];
        ng++;
    }
    /* total > 1 here (a scalar total is a fast path), so ng >= 1.
     * Reverse to outer-to-inner order. */
    for (int i = 0; i < ng / 2; i++) {
        int j = ng - 1 - i;
        int64_t t;
        t = cd[i], cd[i] = cd[j], cd[j] = t;
        t = ca[i], ca[i] = ca[j], ca[j] = t;
        t = cb[i], cb[i] = cb[j], cb[j] = t;
    }
    const int64_t n = cd[ng - 1], isa = ca[ng - 1], isb = cb[ng - 1];
    const int no = ng - 1; /* outer dims walked by the odometer */
    const int64_t rows = total / n;
    if (rows == 1) {
        run_single_row(fn, ea, eb, eo, A, isa, B, isb, O, n, n_threads);
        return;
    }

    int nt = total > GB_PAR_MIN ? n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t r0, r1;
        split_range(rows, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        if (r1 > r0) {
            /* Position the odometer at row r0. */
            int64_t idx[GB_MAX_DIMS], oa = 0, ob = 0, r = r0;
            for (int j = no - 1; j >= 0; j--) {
                idx[j] = r % cd[j];
                r /= cd[j];
                oa += idx[j] * ca[j];
                ob += idx[j] * cb[j];
            }
            for (r = r0; r < r1; r++) {
                fn(O + r * n * eo, A + oa * ea, isa, B + ob * eb, isb, n);
                for (int j = no - 1; j >= 0; j--) {
                    oa += ca[j];
                    ob += cb[j];
                    if (++idx[j] < cd[j]) break;
                    oa -= ca[j] * cd[j];
                    ob -= cb[j] * cd[j];
                    idx[j] = 0;
                }
            }
        }
    }
}

/* ---- binary ops ----------------------------------------------------------- */

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_POW } bin_kind;

typedef struct {
    bin_kind kind;
    bool legacy;     /* opset < 7 with broadcast=1 and `axis` given */
    int64_t axis;    /* then: B's first dim aligns with A's dim `axis` */
} bin_params;

static gb_status bin_init(gb_ctx *ctx, gb__node *n, bin_kind kind) {
    gb_status st = gb__check_arity(ctx, n, 2, 2, 1, 1);
    if (st) return st;
    bin_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->kind = kind;
    if (n->opset < 7 && gb__attr_int(n, "broadcast", 0) != 0 && gb__attr_find(n, "axis")) {
        p->legacy = true;
        p->axis = gb__attr_int(n, "axis", 0); /* negative counts from rank(A) */
    }
    n->params = p;
    return GB_OK;
}

/* B's shape as broadcast sees it: for the legacy axis form, B's dims padded
 * with trailing 1s up to rank(A) - axis. Returns false if it does not fit. */
static bool bin_b_shape(const bin_params *p, const gb_tensor *a, const gb_tensor *b, int *nb,
                        int64_t *bd) {
    *nb = b->ndim;
    for (int i = 0; i < b->ndim; i++) bd[i] = b->dims[i];
    if (!p->legacy) return true;
    int64_t axis = p->axis < 0 ? p->axis + a->ndim : p->axis;
    if (axis < 0 || axis + b->ndim > a->ndim) return false;
    int want = a->ndim - (int)axis;
    for (int i = b->ndim; i < want; i++) bd[i] = 1;
    *nb = want;
    return true;
}

/* Output shape and per-input broadcast strides. */
static bool bin_shapes(const bin_params *p, const gb_tensor *a, const gb_tensor *b, int *nd,
                       int64_t *od, int64_t *sa, int64_t *sb) {
    int nb;
    int64_t bd[GB_MAX_DIMS];
    if (!bin_b_shape(p, a, b, &nb, bd)) return false;
    if (!gb__broadcast_shape(a->ndim, a->dims, nb, bd, nd, od)) return false;
    if (sa) gb__broadcast_strides(a->ndim, a->dims, *nd, od, sa);
    if (sb) gb__broadcast_strides(nb, bd, *nd, od, sb);
    return true;
}

static gb_status bin_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                           gb_tensor **out, size_t *ws_bytes, double *flops) {
    const bin_params *p = n->params;
    const gb_tensor *a = in[0], *b = in[1];
    bool ok_types;
    if (p->kind == BIN_POW)
        ok_types = (a->dtype == GB_DTYPE_F32 || a->dtype == GB_DTYPE_I64) &&
                   (b->dtype == GB_DTYPE_F32 || b->dtype == GB_DTYPE_I64);
    else
        ok_types = a->dtype == b->dtype && (a->dtype == GB_DTYPE_F32 || a->dtype == GB_DTYPE_I64);
    if (!ok_types)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): unsupported input types %s and %s",
                       n->name, n->op_type, gb_dtype_name(a->dtype), gb_dtype_name(b->dtype));
    int nd;
    int64_t od[GB_MAX_DIMS];
    if (!bin_shapes(p, a, b, &nd, od, NULL, NULL)) {
        char sa[128], sb[128];
        gb_shape_str(a->ndim, a->dims, sa, sizeof sa);
        gb_shape_str(b->ndim, b->dims, sb, sizeof sb);
        return gb__err(ctx, GB_ERR_SHAPE, "%s (%s): shapes %s and %s do not broadcast", n->name,
                       n->op_type, sa, sb);
    }
    gb__set_shape(out[0], a->dtype, nd, od);
    *flops = (double)out[0]->numel;
    return GB_OK;
}

static gb_status bin_forward(const gb__node *n, const gb_tensor *const *in,
                             gb_tensor *const *out, const gb__exec *ex) {
    const bin_params *p = n->params;
    const gb_tensor *a = in[0], *b = in[1];
    gb_tensor *y = out[0];
    int nd;
    int64_t od[GB_MAX_DIMS], sa[GB_MAX_DIMS], sb[GB_MAX_DIMS];
    if (!bin_shapes(p, a, b, &nd, od, sa, sb)) return GB_ERR_SHAPE;

    const bool fa = a->dtype == GB_DTYPE_F32, fb = b->dtype == GB_DTYPE_F32;
    row_fn fn = NULL;
    switch (p->kind) {
    case BIN_ADD: fn = fa ? add_f32 : add_i64; break;
    case BIN_SUB: fn = fa ? sub_f32 : sub_i64; break;
    case BIN_MUL: fn = fa ? mul_f32 : mul_i64; break;
    case BIN_DIV:
        if (!fa) {
            /* integer division by zero has no value: a data error */
            const int64_t *d = GB_CI64(b);
            for (int64_t i = 0; i < b->numel; i++)
                if (d[i] == 0) return GB_ERR_ARG;
        }
        fn = fa ? div_f32 : div_i64;
        break;
    case BIN_POW:
        fn = fa ? (fb ? pow_f32_f32 : pow_f32_i64) : (fb ? pow_i64_f32 : pow_i64_i64);
        break;
    }
    broadcast_run(fn, gb_dtype_size(a->dtype), gb_dtype_size(b->dtype), gb_dtype_size(y->dtype),
                  a->data, b->data, y->data, nd, od, sa, sb, a->numel, b->numel, ex->n_threads);
    return GB_OK;
}

/* ---- binary backward ------------------------------------------------------ */

/*
 * Partial derivatives of y = f(a, b), times the incoming gradient g, per
 * output element (float inputs only; an int64 input never gets a gradient):
 *   Add: dy/da = 1,  dy/db = 1        Sub: 1, -1
 *   Mul: dy/da = b,  dy/db = a        Div: 1/b, -a/b^2
 *   Pow: dy/da = b * a^(b-1), set to 0 where b == 0;
 *        dy/db = a^b * ln(a) = y ln(a), set to 0 where a == 0 and b >= 0.
 * The two Pow masks are torch.pow's autograd formula (pow_backward_self /
 * pow_backward_exponent): they turn 0 * inf into 0 at a = 0. Elsewhere the
 * formulas run unmasked, so a negative base gives a NaN exponent gradient
 * (ln of a negative number) and a = 0 with b < 1 gives an infinite base
 * gradient — exactly what PyTorch returns (checked with torch 1.13).
 */
static inline float bin_partial(bin_kind kind, int which, float g, float a, float b, float y) {
    switch (kind) {
    case BIN_ADD: return g;
    case BIN_SUB: return which == 0 ? g : -g;
    case BIN_MUL: return which == 0 ? g * b : g * a;
    case BIN_DIV: return which == 0 ? g / b : -g * a / (b * b);
    case BIN_POW:
        if (which == 0) return b == 0.0f ? 0.0f : g * (b * powf(a, b - 1.0f));
        return a == 0.0f && b >= 0.0f ? 0.0f : g * (y * logf(a));
    }
    return 0.0f;
}

/*
 * A strided run of n output positions: dy and y at stride sg, a at sa, b at
 * sb (0 on a broadcast dim). a is always float32 here (an int64 base makes
 * an int64 output, which has no gradient); b may be an int64 exponent (Pow).
 */
typedef struct {
    const float *g, *y, *a;
    const void *b;
    bool b_i64;
    int64_t sg, sa, sb, n;
} grad_run;

static inline float run_b(const grad_run *r, int64_t j) {
    return r->b_i64 ? (float)((const int64_t *)r->b)[j * r->sb] : ((const float *)r->b)[j * r->sb];
}

/* Expand BODY once per op kind with K a compile-time constant, so
 * bin_partial folds to one expression and each loop is a plain one. */
#define BIN_FOR_KIND(kind, BODY)                                           \
    switch (kind) {                                                        \
    case BIN_ADD: { const bin_kind K = BIN_ADD; BODY; break; }             \
    case BIN_SUB: { const bin_kind K = BIN_SUB; BODY; break; }             \
    case BIN_MUL: { const bin_kind K = BIN_MUL; BODY; break; }             \
    case BIN_DIV: { const bin_kind K = BIN_DIV; BODY; break; }             \
    case BIN_POW: { const bin_kind K = BIN_POW; BODY; break; }             \
    }

/* dx[j] += partial at position j of the run (dx contiguous). */
static void grad_run_add(bin_kind kind, int which, const grad_run *r, float *dx) {
    const float *g = r->g, *y = r->y, *a = r->a, *b = r->b;
    const int64_t sg = r->sg, sa = r->sa, sb = r->sb, n = r->n;
    if (r->b_i64) { /* Pow with an int64 exponent: the base's gradient */
        for (int64_t j = 0; j < n; j++)
            dx[j] += bin_partial(BIN_POW, which, g[j * sg], a[j * sa], run_b(r, j), y[j * sg]);
        return;
    }
    BIN_FOR_KIND(kind, for (int64_t j = 0; j < n; j++) dx[j] +=
                       bin_partial(K, which, g[j * sg], a[j * sa], b[j * sb], y[j * sg]))
}

/* The sum of the partials over the run, in double. */
static double grad_run_sum(bin_kind kind, int which, const grad_run *r) {
    const float *g = r->g, *y = r->y, *a = r->a, *b = r->b;
    const int64_t sg = r->sg, sa = r->sa, sb = r->sb, n = r->n;
    double acc = 0.0;
    if (r->b_i64) {
        for (int64_t j = 0; j < n; j++)
            acc += bin_partial(BIN_POW, which, g[j * sg], a[j * sa], run_b(r, j), y[j * sg]);
        return acc;
    }
    BIN_FOR_KIND(kind, for (int64_t j = 0; j < n; j++) acc +=
                       bin_partial(K, which, g[j * sg], a[j * sa], b[j * sb], y[j * sg]))
    return acc;
}

/*
 * dx += the sum, over every output element that reads element i of input
 * `which` (x = a for 0, b for 1), of bin_partial(...).
 *
 * x may be broadcast. The output dims where x's stride is 0 are summed over
 * ("reduced"); the others ("kept") enumerate x's elements in C order. So
 * threads take contiguous ranges of x's elements and each writes only its
 * own dx[i]: no races, and the same sums in the same order for any thread
 * count. Sums over reduced dims run in double. Adjacent dims are merged when
 * every stride continues the inner one (a same-shape operand is one long
 * kept row; a per-channel bias of (N, C, H, W) keeps C and reduces N and
 * H*W). The innermost kept dim (no reduction) or the innermost reduced dim
 * (reduction) is walked as one strided run; odometers walk the rest.
 */
static void bin_backward_into(const bin_params *p, int which, const gb_tensor *a,
                              const gb_tensor *b, const gb_tensor *y, const gb_tensor *dy,
                              gb_tensor *dx, int n_threads) {
    int nd;
    int64_t od[GB_MAX_DIMS], sa[GB_MAX_DIMS], sb[GB_MAX_DIMS];
    if (!bin_shapes(p, a, b, &nd, od, sa, sb)) return;
    if (dy->numel == 0 || dx->numel == 0) return;
    const int64_t *sx = which == 0 ? sa : sb;

    /* Non-1 output dims, outer to inner, with strides into dy (contiguous),
     * a and b; a dim merges into the group outside it when it continues it. */
    int64_t d[GB_MAX_DIMS], sg[GB_MAX_DIMS], s0[GB_MAX_DIMS], s1[GB_MAX_DIMS];
    bool kept[GB_MAX_DIMS];
    int nm = 0;
    int64_t stride = dy->numel;
    for (int i = 0; i < nd; i++) {
        stride /= od[i];
        if (od[i] == 1) continue;
        if (nm > 0) {
            int j = nm - 1;
            if (sg[j] == stride * od[i] && s0[j] == sa[i] * od[i] && s1[j] == sb[i] * od[i]) {
                d[j] *= od[i];
                sg[j] = stride, s0[j] = sa[i], s1[j] = sb[i];
                continue;
            }
        }
        d[nm] = od[i], sg[nm] = stride, s0[nm] = sa[i], s1[nm] = sb[i];
        kept[nm] = sx[i] != 0;
        nm++;
    }
    /* Split into kept (K) and reduced (R) lists, keeping their order. */
    int64_t kd[GB_MAX_DIMS + 1], kg[GB_MAX_DIMS + 1], k0[GB_MAX_DIMS + 1], k1[GB_MAX_DIMS + 1];
    int64_t rd[GB_MAX_DIMS], rg[GB_MAX_DIMS], r0[GB_MAX_DIMS], r1[GB_MAX_DIMS];
    int nk = 0, nr = 0;
    for (int j = 0; j < nm; j++) {
        if (kept[j]) kd[nk] = d[j], kg[nk] = sg[j], k0[nk] = s0[j], k1[nk] = s1[j], nk++;
        else rd[nr] = d[j], rg[nr] = sg[j], r0[nr] = s0[j], r1[nr] = s1[j], nr++;
    }
    if (nk == 0) kd[0] = 1, kg[0] = k0[0] = k1[0] = 0, nk = 1; /* x is one element */
    int64_t nred_outer = 1; /* reduced positions outside the innermost reduced dim */
    for (int j = 0; j < nr - 1; j++) nred_outer *= rd[j];

    const bin_kind kind = p->kind;
    const float *gp = GB_CF32(dy), *yp = GB_CF32(y), *ap = GB_CF32(a);
    const char *bp = b->data;
    const bool bi = b->dtype == GB_DTYPE_I64;
    const size_t bsz = gb_dtype_size(b->dtype);
    float *dxp = GB_F32(dx);
    const int64_t total = dx->numel, inner = kd[nk - 1];
    const int64_t ig = kg[nk - 1], i0 = k0[nk - 1], i1 = k1[nk - 1];
    int nt = dy->numel > GB_PAR_MIN ? n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        split_range(total, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        /* Odometer over the outer kept dims, positioned at element lo. */
        int64_t idx[GB_MAX_DIMS + 1], og = 0, oa = 0, ob = 0, q = lo / inner;
        int64_t j0 = lo % inner;
        for (int k = nk - 2; k >= 0; k--) {
            idx[k] = q % kd[k];
            q /= kd[k];
            og += idx[k] * kg[k], oa += idx[k] * k0[k], ob += idx[k] * k1[k];
        }
        for (int64_t i = lo; i < hi;) {
            int64_t n = inner - j0 < hi - i ? inner - j0 : hi - i;
            if (nr == 0) { /* elementwise: one run along the kept row */
                int64_t eg = og + j0 * ig, ea = oa + j0 * i0, eb = ob + j0 * i1;
                grad_run r = {gp + eg, yp + eg, ap + ea, bp + eb * (int64_t)bsz, bi, ig, i0, i1, n};
                grad_run_add(kind, which, &r, dxp + i);
            } else {
                for (int64_t j = j0; j < j0 + n; j++) {
                    int64_t eg = og + j * ig, ea = oa + j * i0, eb = ob + j * i1;
                    /* outer reduced dims by odometer, the innermost as a run */
                    int64_t ridx[GB_MAX_DIMS] = {0}, pg = 0, pa = 0, pb = 0;
                    double acc = 0.0;
                    for (int64_t rr = 0; rr < nred_outer; rr++) {
                        grad_run r = {gp + eg + pg, yp + eg + pg, ap + ea + pa,
                                      bp + (eb + pb) * (int64_t)bsz, bi,
                                      rg[nr - 1], r0[nr - 1], r1[nr - 1], rd[nr - 1]};
                        acc += grad_run_sum(kind, which, &r);
                        for (int k = nr - 2; k >= 0; k--) {
                            pg += rg[k], pa += r0[k], pb += r1[k];
                            if (++ridx[k] < rd[k]) break;
                            pg -= rg[k] * rd[k], pa -= r0[k] * rd[k], pb -= r1[k] * rd[k];
                            ridx[k] = 0;
                        }
                    }
                    dxp[i + j - j0] += (float)acc;
                }
            }
            i += n;
            j0 = 0;
            for (int k = nk - 2; k >= 0; k--) { /* next row of the kept dims */
                og += kg[k], oa += k0[k], ob += k1[k];
                if (++idx[k] < kd[k]) break;
                og -= kg[k] * kd[k], oa -= k0[k] * kd[k], ob -= k1[k] * kd[k];
                idx[k] = 0;
            }
        }
    }
}

static gb_status bin_backward(const gb__node *n, const gb_tensor *const *in,
                              const gb_tensor *const *out, const gb_tensor *const *dout,
                              gb_tensor *const *din, const gb__exec *ex) {
    const bin_params *p = n->params;
    if (!dout[0] || out[0]->dtype != GB_DTYPE_F32) return GB_OK;
    for (int k = 0; k < 2; k++)
        if (din[k] && in[k]->dtype == GB_DTYPE_F32)
            bin_backward_into(p, k, in[0], in[1], out[0], dout[0], din[k], ex->n_threads);
    return GB_OK;
}

#define GB_BINARY_OP(Name, kind)                                                        \
    static gb_status Name##_init(gb_ctx *ctx, gb__node *n) { return bin_init(ctx, n, kind); } \
    const gb__op gb__op_##Name = {                                                      \
        .name = #Name, .init = Name##_init, .infer = bin_infer, .forward = bin_forward, \
        .backward = bin_backward};

GB_BINARY_OP(Add, BIN_ADD)
GB_BINARY_OP(Sub, BIN_SUB)
GB_BINARY_OP(Mul, BIN_MUL)
GB_BINARY_OP(Div, BIN_DIV)
GB_BINARY_OP(Pow, BIN_POW)

/* ---- unary ops ------------------------------------------------------------ */

/* o[i] = f(x[i]) for i < n; same element type in and out. */
typedef void (*unary_fn)(void *o, const void *x, int64_t n);

#define GB_UNARY_FN(name, T, expr)                                 \
    static void name(void *o_, const void *x_, int64_t n) {        \
        T *o = o_;                                                 \
        const T *xs = x_;                                          \
        for (int64_t i = 0; i < n; i++) {                          \
            T x = xs[i];                                           \
            o[i] = (expr);                                         \
        }                                                          \
    }

GB_UNARY_FN(sqrt_f32, float, sqrtf(x))
GB_UNARY_FN(exp_f32, float, expf(x))
GB_UNARY_FN(log_f32, float, logf(x))
GB_UNARY_FN(neg_f32, float, -x)
GB_UNARY_FN(abs_f32, float, fabsf(x))
GB_UNARY_FN(erf_f32, float, erff(x))
GB_UNARY_FN(neg_i64, int64_t, (int64_t)(0 - (uint64_t)x)) /* wraps at INT64_MIN */
GB_UNARY_FN(abs_i64, int64_t, x < 0 ? (int64_t)(0 - (uint64_t)x) : x)

/* Backward of a float unary op: dx[i] += g[i] * f'(x[i]), where f' may be
 * written with the forward output y[i] when that is cheaper. */
typedef void (*unary_bwd_fn)(float *dx, const float *x, const float *y, const float *g, int64_t n);

#define GB_UNARY_BWD(name, expr)                                                              \
    static void name(float *dx, const float *xs, const float *ys, const float *gs, int64_t n) { \
        for (int64_t i = 0; i < n; i++) {                                                     \
            const float x = xs[i], y = ys[i], g = gs[i];                                      \
            (void)x, (void)y;                                                                 \
            dx[i] += (expr);                                                                  \
        }                                                                                     \
    }

/* d sqrt(x) = 1 / (2 sqrt(x)) = 1 / (2y): inf at 0 and NaN below, as torch */
GB_UNARY_BWD(sqrt_bwd, g / (2.0f * y))
GB_UNARY_BWD(exp_bwd, g * y)      /* d e^x = e^x = y */
GB_UNARY_BWD(log_bwd, g / x)      /* d ln x = 1 / x */
GB_UNARY_BWD(neg_bwd, -g)
/* d |x| = sign(x), with sign(0) = 0 (the kink convention in ir.h) */
GB_UNARY_BWD(abs_bwd, x > 0.0f ? g : x < 0.0f ? -g : 0.0f)
/* d erf(x) = 2/sqrt(pi) e^(-x^2) */
GB_UNARY_BWD(erf_bwd, g * (1.12837916709551257390f * expf(-x * x)))

typedef struct {
    unary_fn f32, i64; /* i64 NULL: float only */
    unary_bwd_fn bwd;
} unary_params;

static gb_status unary_init(gb_ctx *ctx, gb__node *n, unary_fn f32, unary_fn i64,
                            unary_bwd_fn bwd) {
    gb_status st = gb__check_arity(ctx, n, 1, 1, 1, 1);
    if (st) return st;
    unary_params *p = calloc(1, sizeof *p);
    if (!p) return gb__err(ctx, GB_ERR_NOMEM, "%s (%s): out of memory", n->name, n->op_type);
    p->f32 = f32;
    p->i64 = i64;
    p->bwd = bwd;
    n->params = p;
    return GB_OK;
}

static gb_status unary_infer(gb_ctx *ctx, const gb__node *n, gb_tensor *const *in,
                             gb_tensor **out, size_t *ws_bytes, double *flops) {
    const unary_params *p = n->params;
    const gb_tensor *x = in[0];
    if (!(x->dtype == GB_DTYPE_F32 || (x->dtype == GB_DTYPE_I64 && p->i64)))
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): unsupported input type %s", n->name,
                       n->op_type, gb_dtype_name(x->dtype));
    gb__set_shape(out[0], x->dtype, x->ndim, x->dims);
    *flops = (double)x->numel;
    return GB_OK;
}

static gb_status unary_forward(const gb__node *n, const gb_tensor *const *in,
                               gb_tensor *const *out, const gb__exec *ex) {
    const unary_params *p = n->params;
    const gb_tensor *x = in[0];
    unary_fn fn = x->dtype == GB_DTYPE_F32 ? p->f32 : p->i64;
    size_t es = gb_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = out[0]->data;
    int64_t total = x->numel;
    int nt = total > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        split_range(total, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) fn(dst + lo * es, src + lo * es, hi - lo);
    }
    return GB_OK;
}

static gb_status unary_backward(const gb__node *n, const gb_tensor *const *in,
                                const gb_tensor *const *out, const gb_tensor *const *dout,
                                gb_tensor *const *din, const gb__exec *ex) {
    const unary_params *p = n->params;
    if (!dout[0] || !din[0] || in[0]->dtype != GB_DTYPE_F32) return GB_OK;
    const float *x = GB_CF32(in[0]), *y = GB_CF32(out[0]), *g = GB_CF32(dout[0]);
    float *dx = GB_F32(din[0]);
    int64_t total = in[0]->numel;
    int nt = total > GB_PAR_MIN ? ex->n_threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        split_range(total, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) p->bwd(dx + lo, x + lo, y + lo, g + lo, hi - lo);
    }
    return GB_OK;
}

#define GB_UNARY_OP(Name, f32, i64, bwd)                                                 \
    static gb_status Name##_init(gb_ctx *ctx, gb__node *n) {                             \
        return unary_init(ctx, n, f32, i64, bwd);                                        \
    }                                                                                    \
    const gb__op gb__op_##Name = {                                                       \
        .name = #Name, .init = Name##_init, .infer = unary_infer, .forward = unary_forward, \
        .backward = unary_backward};

GB_UNARY_OP(Sqrt, sqrt_f32, NULL, sqrt_bwd)  /* sqrt(x < 0) = NaN, as NumPy */
GB_UNARY_OP(Exp, exp_f32, NULL, exp_bwd)
GB_UNARY_OP(Log, log_f32, NULL, log_bwd)     /* log(0) = -inf, log(x < 0) = NaN */
GB_UNARY_OP(Neg, neg_f32, neg_i64, neg_bwd)  /* int64: no gradient (never asked) */
GB_UNARY_OP(Abs, abs_f32, abs_i64, abs_bwd)
GB_UNARY_OP(Erf, erf_f32, NULL, erf_bwd)

const gb__op *const gb__ops_elementwise[] = {
    &gb__op_Add,  &gb__op_Sub, &gb__op_Mul, &gb__op_Div, &gb__op_Pow, &gb__op_Sqrt,
    &gb__op_Exp,  &gb__op_Log, &gb__op_Neg, &gb__op_Abs, &gb__op_Erf, NULL,
};
