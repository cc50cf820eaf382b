/*
 * test_ops_conv.c — Conv and ConvTranspose against a naive reference.
 *
 * The reference kernels below are the plain loop nests of the ONNX
 * definitions (one multiply-add per (n, oc, output position, ic, kernel tap)
 * for Conv; one scatter per (n, ic, input position, oc, tap) for
 * ConvTranspose) and derive output sizes and paddings from the spec text on
 * their own. The fast kernels (im2col + SGEMM, tiles, batching, pointwise,
 * depthwise, col2im) are compared against them over many attribute
 * combinations; a few cases are pinned to hand values from the ONNX docs.
 *
 * Backward: every case also runs the op's backward with a random dY and
 * compares dX, dW and dB with the naive adjoint of the same loop nests
 * (ref_backward: each multiply-add y += x * w gives gx += gy * w and
 * gw += gy * x). The gradient buffers start random, so the += semantics is
 * checked, and four modes run: all gradients, dX only (din[1], din[2] NULL,
 * as when explaining), dW and dB only (din[0] NULL), and dout NULL (no
 * change). Backward gets exactly the workspace infer asked for. The
 * finite-difference check on ONNX's backend cases (gb_gradcheck) is the
 * independent check of the reference itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/util.h"

extern const gb__op gb__op_Conv;
extern const gb__op gb__op_ConvTranspose;

/* ---- a test case --------------------------------------------------------- */

typedef struct {
    bool transpose;
    int r;                       /* spatial rank 1..3 */
    int64_t n, cin, cout, group; /* cout: C_out of the result (both ops) */
    int64_t x[3], k[3];          /* spatial sizes of X and of the kernel */
    int64_t s[3], d[3];          /* strides, dilations; all 0 = attribute absent */
    bool pads_set;
    int64_t pads[6];
    const char *auto_pad;        /* NULL = attribute absent */
    bool kernel_attr;            /* also pass kernel_shape */
    int64_t outpad[3];           /* ConvTranspose; all 0 = absent */
    int n_outshape;              /* ConvTranspose output_shape: 0, r or r + 2 values */
    int64_t outshape[5];
    bool bias;
} conv_case;

static uint32_t rng_state = 12345u;
static float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static bool any_nonzero(const int64_t *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i]) return true;
    return false;
}

static int64_t geti(const int64_t *v, int i, int64_t dflt) { return v[i] ? v[i] : dflt; }

/* ---- reference geometry from the spec text --------------------------------- */

typedef struct {
    int64_t out[3], pb[3];
} ref_geom;

static ref_geom ref_geometry(const conv_case *c) {
    ref_geom g;
    const bool upper = c->auto_pad && strcmp(c->auto_pad, "SAME_UPPER") == 0;
    const bool lower = c->auto_pad && strcmp(c->auto_pad, "SAME_LOWER") == 0;
    const bool valid = c->auto_pad && strcmp(c->auto_pad, "VALID") == 0;
    for (int i = 0; i < c->r; i++) {
        const int64_t s = geti(c->s, i, 1), d = geti(c->d, i, 1), in = c->x[i];
        const int64_t dk = (c->k[i] - 1) * d + 1;
        int64_t pb = c->pads_set && !valid ? c->pads[i] : 0;
        int64_t pe = c->pads_set && !valid ? c->pads[c->r + i] : 0;
        if (!c->transpose) {
            if (upper || lower) {
                g.out[i] = (in + s - 1) / s; /* ceil(in / stride) */
                int64_t total = (g.out[i] - 1) * s + dk - in;
                if (total < 0) total = 0;
                g.pb[i] = upper ? total / 2 : total - total / 2;
            } else {
                g.out[i] = (in + pb + pe - dk) / s + 1;
                g.pb[i] = pb;
            }
        } else {
            const int64_t full = s * (in - 1) + c->outpad[i] + dk;
            if (c->n_outshape || upper || lower) {
                g.out[i] = c->n_outshape ? c->outshape[c->n_outshape == c->r ? i : 2 + i] : in * s;
                int64_t total = full - g.out[i];
                if (total < 0) total = 0;
                g.pb[i] = lower ? total - total / 2 : total / 2;
            } else {
                g.out[i] = full - pb - pe;
                g.pb[i] = pb;
            }
        }
    }
    return g;
}

/* Flat index helper over up to 3 spatial dims with sizes sz[0..r). Returns -1
 * if any coordinate is out of range. */
static int64_t sp_index(int r, const int64_t *sz, const int64_t *pos) {
    int64_t idx = 0;
    for (int i = 0; i < r; i++) {
        if (pos[i] < 0 || pos[i] >= sz[i]) return -1;
        idx = idx * sz[i] + pos[i];
    }
    return idx;
}

static int64_t sp_count(int r, const int64_t *sz) {
    int64_t n = 1;
    for (int i = 0; i < r; i++) n *= sz[i];
    return n;
}

/* Unflatten q into coordinates over sizes sz[0..r). */
static void sp_coords(int r, const int64_t *sz, int64_t q, int64_t *pos) {
    for (int i = r - 1; i >= 0; i--) {
        pos[i] = q % sz[i];
        q /= sz[i];
    }
}

/* Naive Conv: Y[n, oc, o] = B[oc] + sum_{icl, t} X[n, g*cg + icl, o*s + t*d - pb] * W[oc, icl, t]. */
static void ref_conv(float *y, const float *x, const float *w, const float *b, const conv_case *c,
                     const ref_geom *g) {
    const int r = c->r;
    const int64_t cg = c->cin / c->group, mg = c->cout / c->group;
    const int64_t xs = sp_count(r, c->x), ys = sp_count(r, g->out), ks = sp_count(r, c->k);
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oc = 0; oc < c->cout; oc++)
            for (int64_t q = 0; q < ys; q++) {
                int64_t o[3], t[3], pos[3];
                sp_coords(r, g->out, q, o);
                double acc = b ? b[oc] : 0.0;
                const int64_t grp = oc / mg;
                for (int64_t icl = 0; icl < cg; icl++)
                    for (int64_t kq = 0; kq < ks; kq++) {
                        sp_coords(r, c->k, kq, t);
                        for (int i = 0; i < r; i++)
                            pos[i] = o[i] * geti(c->s, i, 1) + t[i] * geti(c->d, i, 1) - g->pb[i];
                        const int64_t xi = sp_index(r, c->x, pos);
                        if (xi < 0) continue;
                        acc += (double)x[(n * c->cin + grp * cg + icl) * xs + xi] *
                               w[(oc * cg + icl) * ks + kq];
                    }
                y[(n * c->cout + oc) * ys + q] = (float)acc;
            }
}

/* Naive ConvTranspose: every X[n, ic, i] adds X * W[ic, ocl, t] to
 * Y[n, grp*mg + ocl, i*s + t*d - pb] when that position exists. */
static void ref_convt(float *y, const float *x, const float *w, const float *b,
                      const conv_case *c, const ref_geom *g) {
    const int r = c->r;
    const int64_t cg = c->cin / c->group, mg = c->cout / c->group;
    const int64_t xs = sp_count(r, c->x), ys = sp_count(r, g->out), ks = sp_count(r, c->k);
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oc = 0; oc < c->cout; oc++)
            for (int64_t q = 0; q < ys; q++) y[(n * c->cout + oc) * ys + q] = b ? b[oc] : 0.0f;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t ic = 0; ic < c->cin; ic++)
            for (int64_t q = 0; q < xs; q++) {
                int64_t ip[3], t[3], pos[3];
                sp_coords(r, c->x, q, ip);
                const float xv = x[(n * c->cin + ic) * xs + q];
                const int64_t grp = ic / cg;
                for (int64_t ocl = 0; ocl < mg; ocl++)
                    for (int64_t kq = 0; kq < ks; kq++) {
                        sp_coords(r, c->k, kq, t);
                        for (int i = 0; i < r; i++)
                            pos[i] = ip[i] * geti(c->s, i, 1) + t[i] * geti(c->d, i, 1) - g->pb[i];
                        const int64_t yi = sp_index(r, g->out, pos);
                        if (yi < 0) continue;
                        y[(n * c->cout + grp * mg + ocl) * ys + yi] +=
                            xv * w[(ic * mg + ocl) * ks + kq];
                    }
            }
}

/* Naive backward of both ops, the adjoint of the loop nests above, in double:
 * every multiply-add y += x * w of the forward gives gx += gy * w and
 * gw += gy * x, and gb[oc] sums gy over batch items and positions. a* receive
 * the sums of absolute terms (the scale of float rounding in the kernels). */
typedef struct {
    double *gx, *ax, *gw, *aw, *gb, *ab;
} ref_grads;

static void ref_backward(const ref_grads *r, const float *x, const float *w, const float *gy,
                         const conv_case *c, const ref_geom *g) {
    const int rk = c->r;
    const int64_t cg = c->cin / c->group, mg = c->cout / c->group;
    const int64_t xs = sp_count(rk, c->x), ys = sp_count(rk, g->out), ks = sp_count(rk, c->k);
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oc = 0; oc < c->cout; oc++)
            for (int64_t q = 0; q < ys; q++) {
                const double gv = gy[(n * c->cout + oc) * ys + q];
                r->gb[oc] += gv;
                r->ab[oc] += fabs(gv);
            }
    /* one (X element, W element, Y element) triple per multiply-add */
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oc = 0; oc < c->cout; oc++) {
            const int64_t grp = oc / mg, ocl = oc % mg;
            for (int64_t icl = 0; icl < cg; icl++) {
                const int64_t ic = grp * cg + icl;
                for (int64_t kq = 0; kq < ks; kq++) {
                    int64_t t[3], a[3], pos[3];
                    sp_coords(rk, c->k, kq, t);
                    /* Conv: a walks Y, pos = a*s + t*d - pb in X; ConvTranspose:
                     * a walks X, pos = a*s + t*d - pb in Y */
                    const int64_t na = c->transpose ? xs : ys;
                    const int64_t wi = c->transpose ? (ic * mg + ocl) * ks + kq
                                                    : (oc * cg + icl) * ks + kq;
                    for (int64_t qa = 0; qa < na; qa++) {
                        sp_coords(rk, c->transpose ? c->x : g->out, qa, a);
                        for (int i = 0; i < rk; i++)
                            pos[i] = a[i] * geti(c->s, i, 1) + t[i] * geti(c->d, i, 1) - g->pb[i];
                        const int64_t qp = sp_index(rk, c->transpose ? g->out : c->x, pos);
                        if (qp < 0) continue;
                        const int64_t xi = (n * c->cin + ic) * xs + (c->transpose ? qa : qp);
                        const int64_t yi = (n * c->cout + oc) * ys + (c->transpose ? qp : qa);
                        const double gv = gy[yi];
                        r->gx[xi] += gv * w[wi];
                        r->ax[xi] += fabs(gv * w[wi]);
                        r->gw[wi] += gv * x[xi];
                        r->aw[wi] += fabs(gv * x[xi]);
                    }
                }
            }
        }
}

/* ---- driving the op through its interface ------------------------------------ */

typedef struct {
    gb__node node;
    gb__attr attrs[8];
    int ins[3], outs[1];
} node_box;

static void add_ints(node_box *nb, const char *name, const int64_t *v, int n) {
    gb__attr *a = &nb->attrs[nb->node.n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = GB_ATTR_INTS;
    a->n = n;
    a->ints = (int64_t *)v;
}

static void build_node(node_box *nb, const conv_case *c) {
    memset(nb, 0, sizeof *nb);
    gb__node *n = &nb->node;
    n->name = (char *)"conv_under_test";
    n->op_type = (char *)(c->transpose ? "ConvTranspose" : "Conv");
    n->op = c->transpose ? &gb__op_ConvTranspose : &gb__op_Conv;
    n->opset = 17;
    n->n_in = c->bias ? 3 : 2;
    nb->ins[0] = 0;
    nb->ins[1] = 1;
    nb->ins[2] = 2;
    nb->outs[0] = 3;
    n->in = nb->ins;
    n->n_out = 1;
    n->out = nb->outs;
    n->attrs = nb->attrs;
    if (c->group != 1) {
        gb__attr *a = &nb->attrs[n->n_attrs++];
        a->name = (char *)"group";
        a->type = GB_ATTR_INT;
        a->i = c->group;
    }
    if (c->auto_pad) {
        gb__attr *a = &nb->attrs[n->n_attrs++];
        a->name = (char *)"auto_pad";
        a->type = GB_ATTR_STRING;
        a->s = (char *)c->auto_pad;
    }
    if (any_nonzero(c->s, 3)) add_ints(nb, "strides", c->s, c->r);
    if (any_nonzero(c->d, 3)) add_ints(nb, "dilations", c->d, c->r);
    if (c->pads_set) add_ints(nb, "pads", c->pads, 2 * c->r);
    if (c->kernel_attr) add_ints(nb, "kernel_shape", c->k, c->r);
    if (any_nonzero(c->outpad, 3)) add_ints(nb, "output_padding", c->outpad, c->r);
    if (c->n_outshape) add_ints(nb, "output_shape", c->outshape, c->n_outshape);
}

static float *rand_tensor(gb_tensor *t, int ndim, const int64_t *dims) {
    memset(t, 0, sizeof *t);
    gb__set_shape(t, GB_DTYPE_F32, ndim, dims);
    float *p = malloc((size_t)t->numel * sizeof *p);
    assert_non_null(p);
    for (int64_t i = 0; i < t->numel; i++) p[i] = frand();
    t->data = p;
    return p;
}

/* got == start + want within float rounding of the terms' scale. */
static void expect_grad(const char *what, const conv_case *c, const float *got,
                        const float *start, const double *want, const double *scale, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const double e = (double)start[i] + want[i];
        const double tol = 1e-5 + 2e-5 * scale[i] + 1e-6 * fabs(e);
        if (!(fabs((double)got[i] - e) <= tol))
            fail_msg("%s %s element %lld: got %.7g, want %.7g (tol %.2g)",
                     c->transpose ? "ConvTranspose" : "Conv", what, (long long)i, (double)got[i],
                     e, tol);
    }
}

/* Backward of the case whose forward just ran: dY random; dX, dW, dB start
 * random (backward must ADD to them) and are compared with the naive
 * adjoint. Runs all three gradients, then dX alone (weight gradients off:
 * din[1], din[2] NULL), then dW and dB alone; dout NULL must change nothing. */
static void check_backward(node_box *nb, const conv_case *c, gb_tensor *const *in,
                           const gb_tensor *y, const gb__exec *ex, const ref_geom *g) {
    const gb_tensor *x = in[0], *w = in[1];
    gb_tensor dy, gx, gw, gb;
    float *dyp = rand_tensor(&dy, y->ndim, y->dims);
    int64_t bd[1] = {c->cout};
    const int64_t nx = x->numel, nw = w->numel, nb_ = c->cout;
    float *x0 = malloc(sizeof(float) * (size_t)nx), *w0 = malloc(sizeof(float) * (size_t)nw);
    float *b0 = malloc(sizeof(float) * (size_t)nb_);
    rand_tensor(&gx, x->ndim, x->dims);
    rand_tensor(&gw, w->ndim, w->dims);
    rand_tensor(&gb, 1, bd);
    assert_non_null(x0);
    assert_non_null(w0);
    assert_non_null(b0);
    double *buf = calloc((size_t)(2 * (nx + nw + nb_)), sizeof(double));
    assert_non_null(buf);
    ref_grads r = {.gx = buf, .ax = buf + nx, .gw = buf + 2 * nx, .aw = buf + 2 * nx + nw,
                   .gb = buf + 2 * (nx + nw), .ab = buf + 2 * (nx + nw) + nb_};
    ref_backward(&r, GB_CF32(x), GB_CF32(w), dyp, c, g);
    double *zero = calloc((size_t)(nx + nw + nb_), sizeof(double));
    assert_non_null(zero);
    const gb_tensor *outs[1] = {y}, *douts[1] = {&dy};
    for (int mode = 0; mode < 4; mode++) {
        /* 0: dX, dW, dB; 1: dX only; 2: dW, dB only; 3: dout NULL */
        for (int64_t i = 0; i < nx; i++) x0[i] = GB_F32(&gx)[i] = frand();
        for (int64_t i = 0; i < nw; i++) w0[i] = GB_F32(&gw)[i] = frand();
        for (int64_t i = 0; i < nb_; i++) b0[i] = GB_F32(&gb)[i] = frand();
        const bool want_x = mode <= 1, want_w = mode == 0 || mode == 2;
        gb_tensor *din[3] = {want_x ? &gx : NULL, want_w ? &gw : NULL,
                             want_w && c->bias ? &gb : NULL};
        const gb_tensor *dout[1] = {mode == 3 ? NULL : douts[0]};
        gb_status st = nb->node.op->backward(&nb->node, (const gb_tensor *const *)in, outs, dout,
                                             din, ex);
        assert_int_equal(st, GB_OK);
        const bool got_x = want_x && mode != 3, got_w = want_w && mode != 3;
        expect_grad("dX", c, GB_F32(&gx), x0, got_x ? r.gx : zero, r.ax, nx);
        expect_grad("dW", c, GB_F32(&gw), w0, got_w ? r.gw : zero, r.aw, nw);
        expect_grad("dB", c, GB_F32(&gb), b0, got_w && c->bias ? r.gb : zero, r.ab, nb_);
    }
    free(zero);
    free(buf);
    free(x0);
    free(w0);
    free(b0);
    free(dyp);
    free(gx.data);
    free(gw.data);
    free(gb.data);
}

static void run_case_threads(const conv_case *c, int n_threads) {
    node_box nb;
    build_node(&nb, c);
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_status st = nb.node.op->init(ctx, &nb.node);
    if (st != GB_OK) fail_msg("init: %s", gb_ctx_errmsg(ctx));

    const int r = c->r;
    int64_t xd[5] = {c->n, c->cin}, wd[5], bd[1] = {c->cout};
    for (int i = 0; i < r; i++) xd[2 + i] = wd[2 + i] = c->k[i];
    for (int i = 0; i < r; i++) xd[2 + i] = c->x[i];
    if (!c->transpose) {
        wd[0] = c->cout;
        wd[1] = c->cin / c->group;
    } else {
        wd[0] = c->cin;
        wd[1] = c->cout / c->group;
    }
    gb_tensor x, w, b, y;
    float *xp = rand_tensor(&x, 2 + r, xd);
    float *wp = rand_tensor(&w, 2 + r, wd);
    float *bp = c->bias ? rand_tensor(&b, 1, bd) : NULL;
    gb_tensor *in[3] = {&x, &w, c->bias ? &b : NULL};
    memset(&y, 0, sizeof y);
    gb_tensor *out[1] = {&y};
    size_t ws_bytes = 0;
    double flops = 0;
    st = nb.node.op->infer(ctx, &nb.node, in, out, &ws_bytes, &flops);
    if (st != GB_OK) fail_msg("infer: %s", gb_ctx_errmsg(ctx));

    const ref_geom g = ref_geometry(c);
    assert_int_equal(y.ndim, 2 + r);
    assert_int_equal(y.dims[0], c->n);
    assert_int_equal(y.dims[1], c->cout);
    for (int i = 0; i < r; i++) assert_int_equal(y.dims[2 + i], g.out[i]);
    const double kv = (double)sp_count(r, c->k);
    const double want_flops =
        !c->transpose
            ? 2.0 * c->n * c->cout * (double)sp_count(r, g.out) * (c->cin / c->group) * kv
            : 2.0 * c->n * c->cin * (double)sp_count(r, c->x) * (c->cout / c->group) * kv;
    assert_true(fabs(flops - want_flops) < 0.5);

    float *yp = malloc((size_t)y.numel * sizeof *yp);
    float *yr = malloc((size_t)y.numel * sizeof *yr);
    assert_non_null(yp);
    assert_non_null(yr);
    for (int64_t i = 0; i < y.numel; i++) yp[i] = NAN; /* every element must be written */
    y.data = yp;
    void *ws = ws_bytes ? malloc(ws_bytes) : NULL; /* exact size: ASan catches overruns */
    gb__exec ex = {.n_threads = n_threads, .ws = ws, .ws_size = ws_bytes};
    st = nb.node.op->forward(&nb.node, (const gb_tensor *const *)in, out, &ex);
    assert_int_equal(st, GB_OK);

    if (!c->transpose) ref_conv(yr, xp, wp, bp, c, &g);
    else ref_convt(yr, xp, wp, bp, c, &g);
    for (int64_t i = 0; i < y.numel; i++) {
        const float tol = 1e-4f + 1e-4f * fabsf(yr[i]);
        if (!(fabsf(yp[i] - yr[i]) <= tol))
            fail_msg("%s element %lld: got %g, want %g", nb.node.op_type, (long long)i,
                     (double)yp[i], (double)yr[i]);
    }
    /* backward shares the workspace forward asked for */
    check_backward(&nb, c, in, &y, &ex, &g);
    free(ws);
    free(yp);
    free(yr);
    free(xp);
    free(wp);
    free(bp);
    free(nb.node.params);
    gb_ctx_free(ctx);
}

static void run_case(const conv_case *c) {
    run_case_threads(c, 2);
    run_case_threads(c, 1);
}

static void run_cases(const conv_case *cs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        print_message("case %zu\n", i);
        run_case(&cs[i]);
    }
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof cases[0])

/* ---- Conv ------------------------------------------------------------------ */

static void test_conv_2d_attributes(void **state) {
    (void)state;
    static const conv_case cs[] = {
        /* plain 3x3, pad 1, bias */
        {.r = 2, .n = 1, .cin = 3, .cout = 4, .group = 1, .x = {7, 7}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* no pads attribute, no bias, kernel_shape given */
        {.r = 2, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {6, 5}, .k = {3, 2},
         .kernel_attr = true},
        /* strided with pads */
        {.r = 2, .n = 1, .cin = 3, .cout = 5, .group = 1, .x = {8, 9}, .k = {3, 3},
         .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* different strides per axis, asymmetric pads [h_b, w_b, h_e, w_e] */
        {.r = 2, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {9, 10}, .k = {3, 4},
         .s = {3, 2}, .pads_set = true, .pads = {1, 0, 2, 3}, .bias = true},
        /* dilated */
        {.r = 2, .n = 1, .cin = 3, .cout = 2, .group = 1, .x = {10, 11}, .k = {3, 3},
         .d = {2, 3}, .pads_set = true, .pads = {2, 2, 1, 3}},
        /* dilated + strided */
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {13, 12}, .k = {3, 2},
         .s = {2, 3}, .d = {2, 2}, .pads_set = true, .pads = {1, 2, 0, 1}, .bias = true},
        /* 1 x 5 and 5 x 1 kernels */
        {.r = 2, .n = 1, .cin = 4, .cout = 4, .group = 1, .x = {6, 9}, .k = {1, 5},
         .pads_set = true, .pads = {0, 2, 0, 2}, .bias = true},
        {.r = 2, .n = 1, .cin = 4, .cout = 4, .group = 1, .x = {9, 6}, .k = {5, 1},
         .pads_set = true, .pads = {2, 0, 2, 0}},
        /* kernel larger than input, rescued by padding */
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {2, 2}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* stride larger than kernel (skipped pixels) */
        {.r = 2, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {11, 11}, .k = {2, 2},
         .s = {4, 3}},
        /* ResNet stem shape, scaled down: 7x7 s2 p3 */
        {.r = 2, .n = 1, .cin = 3, .cout = 8, .group = 1, .x = {32, 32}, .k = {7, 7},
         .s = {2, 2}, .pads_set = true, .pads = {3, 3, 3, 3}, .bias = true},
        /* tiled im2col: output plane 70x70 > one tile of 1024 columns */
        {.r = 2, .n = 1, .cin = 3, .cout = 4, .group = 1, .x = {70, 70}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* output rows wider than a tile (W_out > 1024) */
        {.r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3, 4200}, .k = {2, 3},
         .bias = true},
    };
    RUN(cs);
}

static void test_conv_auto_pad(void **state) {
    (void)state;
    static const conv_case cs[] = {
        {.r = 2, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {7, 8}, .k = {3, 3},
         .auto_pad = "SAME_UPPER", .bias = true},
        {.r = 2, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {7, 8}, .k = {3, 3},
         .s = {2, 2}, .auto_pad = "SAME_UPPER"},
        {.r = 2, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {7, 8}, .k = {3, 3},
         .s = {2, 2}, .auto_pad = "SAME_LOWER", .bias = true},
        /* even kernel: odd total pad, the two modes differ */
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {6, 7}, .k = {4, 2},
         .auto_pad = "SAME_UPPER"},
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {6, 7}, .k = {4, 2},
         .auto_pad = "SAME_LOWER"},
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {9, 10}, .k = {3, 3},
         .s = {2, 3}, .d = {2, 1}, .auto_pad = "SAME_LOWER"},
        /* VALID, with a pads attribute that must be ignored */
        {.r = 2, .n = 1, .cin = 3, .cout = 2, .group = 1, .x = {7, 9}, .k = {3, 2},
         .s = {2, 1}, .auto_pad = "VALID", .bias = true},
        {.r = 2, .n = 1, .cin = 1, .cout = 1, .group = 1, .x = {5, 5}, .k = {3, 3},
         .auto_pad = "NOTSET", .pads_set = true, .pads = {1, 1, 1, 1}},
        /* SAME with a stride bigger than the kernel: no padding needed */
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {9, 9}, .k = {1, 1},
         .s = {3, 3}, .auto_pad = "SAME_UPPER"},
    };
    RUN(cs);
}

static void test_conv_groups_depthwise(void **state) {
    (void)state;
    static const conv_case cs[] = {
        {.r = 2, .n = 1, .cin = 6, .cout = 4, .group = 2, .x = {7, 6}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        {.r = 2, .n = 2, .cin = 8, .cout = 12, .group = 4, .x = {5, 5}, .k = {3, 3},
         .s = {2, 2}},
        /* depthwise: group == C_in == C_out */
        {.r = 2, .n = 1, .cin = 5, .cout = 5, .group = 5, .x = {9, 8}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* depthwise with channel multiplier 2, strided, asymmetric pads */
        {.r = 2, .n = 2, .cin = 3, .cout = 6, .group = 3, .x = {10, 9}, .k = {3, 3},
         .s = {2, 2}, .pads_set = true, .pads = {0, 1, 1, 2}},
        /* depthwise dilated with SAME_UPPER */
        {.r = 2, .n = 1, .cin = 4, .cout = 4, .group = 4, .x = {11, 12}, .k = {3, 3},
         .d = {2, 2}, .auto_pad = "SAME_UPPER", .bias = true},
        /* depthwise, large enough to run in parallel, MobileNet-like 3x3 s1 */
        {.r = 2, .n = 1, .cin = 32, .cout = 32, .group = 32, .x = {40, 40}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* depthwise 5x5 stride 2 with multiplier 3 */
        {.r = 2, .n = 1, .cin = 2, .cout = 6, .group = 2, .x = {12, 13}, .k = {5, 5},
         .s = {2, 2}, .pads_set = true, .pads = {2, 2, 2, 2}},
        /* depthwise stride 3 (generic strided loop), 3x3 stride 2 on a wider plane */
        {.r = 2, .n = 1, .cin = 3, .cout = 3, .group = 3, .x = {10, 11}, .k = {3, 3},
         .s = {3, 3}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        {.r = 2, .n = 1, .cin = 4, .cout = 4, .group = 4, .x = {21, 30}, .k = {3, 3},
         .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* depthwise on a plane narrower than the kernel: no interior columns */
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 2, .x = {3, 2}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        {.r = 2, .n = 1, .cin = 2, .cout = 2, .group = 2, .x = {4, 1}, .k = {2, 5},
         .pads_set = true, .pads = {0, 2, 1, 2}},
        /* depthwise with a kernel wider than the direct loop takes (im2col path) */
        {.r = 2, .n = 1, .cin = 2, .cout = 4, .group = 2, .x = {3, 30}, .k = {1, 17},
         .pads_set = true, .pads = {0, 8, 0, 8}, .bias = true},
        /* group == C_in but C_in == 1: an ordinary conv with one input channel */
        {.r = 2, .n = 1, .cin = 1, .cout = 4, .group = 1, .x = {6, 6}, .k = {3, 3}},
    };
    RUN(cs);
}

static void test_conv_pointwise_and_batch(void **state) {
    (void)state;
    static const conv_case cs[] = {
        /* 1x1 stride 1: GEMM straight on X */
        {.r = 2, .n = 1, .cin = 16, .cout = 8, .group = 1, .x = {33, 35}, .k = {1, 1},
         .bias = true},
        {.r = 2, .n = 2, .cin = 8, .cout = 8, .group = 2, .x = {40, 40}, .k = {1, 1}},
        /* 1x1 stride 2 (ResNet downsample), 1x1 with padding */
        {.r = 2, .n = 1, .cin = 8, .cout = 16, .group = 1, .x = {14, 14}, .k = {1, 1},
         .s = {2, 2}, .bias = true},
        {.r = 2, .n = 1, .cin = 3, .cout = 2, .group = 1, .x = {4, 5}, .k = {1, 1},
         .pads_set = true, .pads = {1, 0, 0, 2}},
        /* batch > 1 with a small plane: items batched into one GEMM */
        {.r = 2, .n = 3, .cin = 8, .cout = 6, .group = 1, .x = {5, 5}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        {.r = 2, .n = 5, .cin = 6, .cout = 4, .group = 2, .x = {7, 7}, .k = {3, 3},
         .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* batched 1x1 (items copied side by side) */
        {.r = 2, .n = 4, .cin = 16, .cout = 8, .group = 1, .x = {4, 4}, .k = {1, 1},
         .bias = true},
        /* more items than one batch holds (7x7 plane: 21 items per GEMM) */
        {.r = 2, .n = 25, .cin = 4, .cout = 3, .group = 1, .x = {7, 7}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* batch > 1 with a big plane: per-item GEMMs (and a 10x10 plane, just
         * under the batching threshold of 128 output positions) */
        {.r = 2, .n = 3, .cin = 4, .cout = 5, .group = 1, .x = {10, 10}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        {.r = 2, .n = 3, .cin = 4, .cout = 5, .group = 1, .x = {12, 12}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        {.r = 2, .n = 2, .cin = 3, .cout = 4, .group = 1, .x = {36, 36}, .k = {3, 3},
         .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
    };
    RUN(cs);
}

static void test_conv_1d_3d(void **state) {
    (void)state;
    static const conv_case cs[] = {
        {.r = 1, .n = 1, .cin = 3, .cout = 2, .group = 1, .x = {11}, .k = {3},
         .pads_set = true, .pads = {1, 1}, .bias = true},
        {.r = 1, .n = 2, .cin = 4, .cout = 6, .group = 2, .x = {15}, .k = {3}, .s = {2},
         .d = {2}, .pads_set = true, .pads = {2, 1}},
        {.r = 1, .n = 1, .cin = 4, .cout = 4, .group = 4, .x = {10}, .k = {5},
         .auto_pad = "SAME_LOWER", .bias = true},
        {.r = 1, .n = 3, .cin = 2, .cout = 3, .group = 1, .x = {6}, .k = {1}},
        {.r = 3, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {5, 6, 7}, .k = {3, 2, 3},
         .pads_set = true, .pads = {1, 0, 1, 1, 1, 0}, .bias = true},
        {.r = 3, .n = 2, .cin = 4, .cout = 2, .group = 2, .x = {6, 5, 7}, .k = {2, 3, 3},
         .s = {2, 1, 2}, .d = {1, 2, 1}, .pads_set = true, .pads = {0, 1, 1, 1, 1, 0}},
        {.r = 3, .n = 1, .cin = 3, .cout = 3, .group = 3, .x = {5, 5, 5}, .k = {3, 3, 3},
         .auto_pad = "SAME_UPPER", .s = {2, 2, 2}, .bias = true},
        {.r = 3, .n = 1, .cin = 4, .cout = 5, .group = 1, .x = {3, 4, 5}, .k = {1, 1, 1}},
    };
    RUN(cs);
}

/* ONNX docs, test_basic_conv_with_padding / _without_padding: X = 0..24
 * (1,1,5,5), W = ones (1,1,3,3). */
static void test_conv_onnx_example(void **state) {
    (void)state;
    static const float want_pad[25] = {12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108,
                                       117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    static const float want_nopad[9] = {54, 63, 72, 99, 108, 117, 144, 153, 162};
    for (int padded = 0; padded < 2; padded++) {
        conv_case c = {.r = 2, .n = 1, .cin = 1, .cout = 1, .group = 1, .x = {5, 5},
                       .k = {3, 3}, .pads_set = padded, .pads = {1, 1, 1, 1}};
        node_box nb;
        build_node(&nb, &c);
        gb_ctx *ctx;
        assert_int_equal(gb_ctx_create(&ctx), GB_OK);
        assert_int_equal(gb__op_Conv.init(ctx, &nb.node), GB_OK);
        float xv[25], wv[9], yv[25];
        for (int i = 0; i < 25; i++) xv[i] = (float)i;
        for (int i = 0; i < 9; i++) wv[i] = 1.0f;
        gb_tensor x = {0}, w = {0}, y = {0};
        gb__set_shape(&x, GB_DTYPE_F32, 4, (int64_t[]){1, 1, 5, 5});
        gb__set_shape(&w, GB_DTYPE_F32, 4, (int64_t[]){1, 1, 3, 3});
        x.data = xv;
        w.data = wv;
        gb_tensor *in[2] = {&x, &w}, *out[1] = {&y};
        size_t ws_bytes = 0;
        double flops = 0;
        assert_int_equal(gb__op_Conv.infer(ctx, &nb.node, in, out, &ws_bytes, &flops), GB_OK);
        const int side = padded ? 5 : 3;
        assert_int_equal(y.dims[2], side);
        assert_int_equal(y.dims[3], side);
        y.data = yv;
        void *ws = malloc(ws_bytes ? ws_bytes : 1);
        gb__exec ex = {.n_threads = 2, .ws = ws, .ws_size = ws_bytes};
        assert_int_equal(gb__op_Conv.forward(&nb.node, (const gb_tensor *const *)in, out, &ex),
                         GB_OK);
        const float *want = padded ? want_pad : want_nopad;
        for (int i = 0; i < side * side; i++) assert_float_equal(yv[i], want[i], 1e-5);
        free(ws);
        free(nb.node.params);
        gb_ctx_free(ctx);
    }
}

/* ---- ConvTranspose ----------------------------------------------------------- */

static void test_convt_attributes(void **state) {
    (void)state;
    static const conv_case cs[] = {
        {.transpose = true, .r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3, 3},
         .k = {3, 3}},
        {.transpose = true, .r = 2, .n = 2, .cin = 3, .cout = 4, .group = 1, .x = {5, 4},
         .k = {3, 3}, .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1},
         .outpad = {1, 1}, .bias = true},
        /* DCGAN-like 4x4 s2 p1 */
        {.transpose = true, .r = 2, .n = 1, .cin = 8, .cout = 4, .group = 1, .x = {6, 6},
         .k = {4, 4}, .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 3, .group = 1, .x = {4, 5},
         .k = {2, 3}, .d = {2, 3}, .bias = true},
        /* asymmetric pads, mixed strides */
        {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {4, 4},
         .k = {3, 3}, .s = {3, 2}, .pads_set = true, .pads = {1, 2, 0, 1}, .outpad = {2, 0}},
        /* groups, and group == C_in */
        {.transpose = true, .r = 2, .n = 1, .cin = 4, .cout = 6, .group = 2, .x = {5, 5},
         .k = {3, 3}, .s = {2, 2}, .bias = true},
        {.transpose = true, .r = 2, .n = 2, .cin = 3, .cout = 3, .group = 3, .x = {4, 6},
         .k = {3, 2}, .pads_set = true, .pads = {1, 0, 1, 1}},
        /* 1x1 kernel */
        {.transpose = true, .r = 2, .n = 1, .cin = 5, .cout = 3, .group = 1, .x = {4, 4},
         .k = {1, 1}, .bias = true},
        {.transpose = true, .r = 2, .n = 1, .cin = 5, .cout = 3, .group = 1, .x = {4, 4},
         .k = {1, 1}, .s = {2, 2}},
        {.transpose = true, .r = 2, .n = 2, .cin = 6, .cout = 4, .group = 2, .x = {3, 5},
         .k = {1, 1}, .bias = true},
        {.transpose = true, .r = 2, .n = 1, .cin = 3, .cout = 2, .group = 1, .x = {4, 5},
         .k = {1, 1}, .pads_set = true, .pads = {0, 1, 1, 0}, .bias = true},
        /* kernel_shape given */
        {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {3, 3},
         .k = {3, 3}, .s = {3, 2}, .kernel_attr = true, .outpad = {1, 1}},
        /* large enough to run col2im in parallel */
        {.transpose = true, .r = 2, .n = 1, .cin = 16, .cout = 8, .group = 1, .x = {20, 20},
         .k = {4, 4}, .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* group == C_out with C_in = 2 * C_out: the swapped Conv is depthwise
         * with multiplier 2 (direct loops), batched, output_padding */
        {.transpose = true, .r = 2, .n = 2, .cin = 6, .cout = 3, .group = 3, .x = {5, 6},
         .k = {3, 3}, .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1}, .outpad = {1, 1},
         .bias = true},
        /* depthwise ConvTranspose large enough to run in parallel */
        {.transpose = true, .r = 2, .n = 1, .cin = 16, .cout = 16, .group = 16, .x = {20, 20},
         .k = {4, 4}, .s = {2, 2}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* input plane 40x40 > one tile of 1024 columns: col2im in two tiles */
        {.transpose = true, .r = 2, .n = 1, .cin = 4, .cout = 3, .group = 1, .x = {40, 40},
         .k = {3, 3}, .pads_set = true, .pads = {1, 1, 1, 1}, .bias = true},
        /* 1x1 stride 1 on a big plane: one GEMM, no col2im */
        {.transpose = true, .r = 2, .n = 2, .cin = 8, .cout = 6, .group = 2, .x = {16, 16},
         .k = {1, 1}, .bias = true},
    };
    RUN(cs);
}

static void test_convt_auto_pad_output_shape(void **state) {
    (void)state;
    static const conv_case cs[] = {
        {.transpose = true, .r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3, 3},
         .k = {3, 3}, .s = {2, 2}, .auto_pad = "SAME_UPPER"},
        {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {3, 4},
         .k = {3, 3}, .s = {2, 2}, .auto_pad = "SAME_LOWER", .bias = true},
        {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {3, 4},
         .k = {4, 2}, .s = {1, 3}, .auto_pad = "SAME_UPPER"},
        {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1, .x = {3, 4},
         .k = {3, 3}, .s = {2, 2}, .auto_pad = "VALID"},
        /* output_shape: spatial only, and with N and C */
        {.transpose = true, .r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3, 3},
         .k = {3, 3}, .s = {3, 2}, .n_outshape = 2, .outshape = {10, 8}},
        {.transpose = true, .r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3, 3},
         .k = {3, 3}, .s = {3, 2}, .n_outshape = 4, .outshape = {1, 2, 9, 6}, .bias = true},
        {.transpose = true, .r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3, 3},
         .k = {3, 3}, .s = {3, 2}, .n_outshape = 2, .outshape = {10, 8}, .outpad = {1, 1}},
        /* output_shape with SAME_LOWER: odd total, extra pad at the start */
        {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 1, .group = 1, .x = {4, 4},
         .k = {3, 3}, .s = {2, 2}, .n_outshape = 2, .outshape = {8, 6},
         .auto_pad = "SAME_LOWER"},
    };
    RUN(cs);
}

static void test_convt_1d_3d(void **state) {
    (void)state;
    static const conv_case cs[] = {
        {.transpose = true, .r = 1, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3},
         .k = {3}},
        {.transpose = true, .r = 1, .n = 2, .cin = 4, .cout = 2, .group = 2, .x = {7},
         .k = {3}, .s = {2}, .d = {2}, .pads_set = true, .pads = {1, 2}, .outpad = {1},
         .bias = true},
        {.transpose = true, .r = 3, .n = 1, .cin = 1, .cout = 2, .group = 1, .x = {3, 4, 5},
         .k = {3, 3, 3}},
        {.transpose = true, .r = 3, .n = 1, .cin = 2, .cout = 4, .group = 2, .x = {3, 3, 4},
         .k = {2, 3, 2}, .s = {2, 1, 2}, .pads_set = true, .pads = {0, 1, 1, 1, 0, 0},
         .bias = true},
    };
    RUN(cs);
}

/* Run a 2-D ConvTranspose on the 3x3 ramp X = 0..8 with W = ones (1, 2, 3, 3)
 * and compare channel 0 with hand values from the ONNX docs. */
static void convt_ramp_check(const conv_case *c, const float *want, int64_t oh, int64_t ow) {
    node_box nb;
    build_node(&nb, c);
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    assert_int_equal(gb__op_ConvTranspose.init(ctx, &nb.node), GB_OK);
    float xv[9], wv[18], yv[2 * 10 * 8];
    for (int i = 0; i < 9; i++) xv[i] = (float)i;
    for (int i = 0; i < 18; i++) wv[i] = 1.0f;
    gb_tensor x = {0}, w = {0}, y = {0};
    gb__set_shape(&x, GB_DTYPE_F32, 4, (int64_t[]){1, 1, 3, 3});
    gb__set_shape(&w, GB_DTYPE_F32, 4, (int64_t[]){1, 2, 3, 3});
    x.data = xv;
    w.data = wv;
    gb_tensor *in[2] = {&x, &w}, *out[1] = {&y};
    size_t ws_bytes = 0;
    double flops = 0;
    assert_int_equal(gb__op_ConvTranspose.infer(ctx, &nb.node, in, out, &ws_bytes, &flops),
                     GB_OK);
    assert_int_equal(y.dims[1], 2);
    assert_int_equal(y.dims[2], oh);
    assert_int_equal(y.dims[3], ow);
    assert_true(y.numel <= 2 * 10 * 8);
    y.data = yv;
    void *ws = malloc(ws_bytes ? ws_bytes : 1);
    gb__exec ex = {.n_threads = 2, .ws = ws, .ws_size = ws_bytes};
    assert_int_equal(
        gb__op_ConvTranspose.forward(&nb.node, (const gb_tensor *const *)in, out, &ex), GB_OK);
    for (int64_t i = 0; i < oh * ow; i++) {
        assert_float_equal(yv[i], want[i], 1e-5);          /* channel 0 */
        assert_float_equal(yv[oh * ow + i], want[i], 1e-5); /* channel 1 */
    }
    free(ws);
    free(nb.node.params);
    gb_ctx_free(ctx);
}

static void test_convt_onnx_examples(void **state) {
    (void)state;
    /* test_convtranspose */
    static const float plain[25] = {0, 1, 3,  3,  2,  3, 8,  15, 12, 7,  9, 21, 36,
                                    27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    conv_case c = {.transpose = true, .r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1,
                   .x = {3, 3}, .k = {3, 3}};
    convt_ramp_check(&c, plain, 5, 5);
    /* test_convtranspose_autopad_same (opset 11): SAME_UPPER puts the odd
     * padding pixel at the end */
    static const float same[36] = {0, 0, 1, 1, 3,  2,  0, 0, 1,  1,  3,  2,
                                   3, 3, 8, 5, 12, 7,  3, 3, 7,  4,  9,  5,
                                   9, 9, 20, 11, 24, 13, 6, 6, 13, 7, 15, 8};
    c.s[0] = c.s[1] = 2;
    c.auto_pad = "SAME_UPPER";
    convt_ramp_check(&c, same, 6, 6);
    /* test_convtranspose_output_shape / _pad: output larger than the full
     * result by one row and column of zeros at the end */
    static const float big[80] = {
        0, 0, 1,  1, 3,  2, 2, 0, 0, 0, 1,  1, 3,  2, 2, 0, 0, 0, 1,  1, 3,  2, 2, 0,
        3, 3, 7,  4, 9,  5, 5, 0, 3, 3, 7,  4, 9,  5, 5, 0, 3, 3, 7,  4, 9,  5, 5, 0,
        6, 6, 13, 7, 15, 8, 8, 0, 6, 6, 13, 7, 15, 8, 8, 0, 6, 6, 13, 7, 15, 8, 8, 0,
        0, 0, 0,  0, 0,  0, 0, 0};
    c.s[0] = 3;
    c.auto_pad = NULL;
    c.n_outshape = 2;
    c.outshape[0] = 10;
    c.outshape[1] = 8;
    convt_ramp_check(&c, big, 10, 8);
    c.n_outshape = 0;
    c.outpad[0] = c.outpad[1] = 1;
    convt_ramp_check(&c, big, 10, 8);
    /* test_convtranspose_pads: strides (3, 2), pads (1, 2, 1, 2) */
    static const float pads[21] = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9,
                                   13, 7, 15, 13, 7, 15};
    conv_case p = {.transpose = true, .r = 2, .n = 1, .cin = 1, .cout = 2, .group = 1,
                   .x = {3, 3}, .k = {3, 3}, .s = {3, 2}, .pads_set = true,
                   .pads = {1, 2, 1, 2}};
    convt_ramp_check(&p, pads, 7, 3);
}

/* ---- errors ------------------------------------------------------------------ */

static gb_status try_infer(const conv_case *c, int64_t w1_delta, int64_t b_len, gb_dtype xdt,
                           gb_ctx *ctx) {
    node_box nb;
    build_node(&nb, c);
    gb_status st = nb.node.op->init(ctx, &nb.node);
    if (st != GB_OK) {
        free(nb.node.params);
        return st;
    }
    int64_t xd[5] = {c->n, c->cin}, wd[5];
    for (int i = 0; i < c->r; i++) {
        xd[2 + i] = c->x[i];
        wd[2 + i] = c->k[i];
    }
    wd[0] = c->transpose ? c->cin : c->cout;
    wd[1] = (c->transpose ? c->cout : c->cin) / c->group + w1_delta;
    gb_tensor x = {0}, w = {0}, b = {0}, y = {0};
    gb__set_shape(&x, xdt, 2 + c->r, xd);
    gb__set_shape(&w, GB_DTYPE_F32, 2 + c->r, wd);
    gb__set_shape(&b, GB_DTYPE_F32, 1, &b_len);
    gb_tensor *in[3] = {&x, &w, &b}, *out[1] = {&y};
    size_t ws = 0;
    double flops = 0;
    st = nb.node.op->infer(ctx, &nb.node, in, out, &ws, &flops);
    free(nb.node.params);
    return st;
}

static void test_conv_errors(void **state) {
    (void)state;
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    conv_case c = {.r = 2, .n = 1, .cin = 4, .cout = 4, .group = 2, .x = {5, 5}, .k = {3, 3},
                   .bias = true};
    assert_int_equal(try_infer(&c, 0, 4, GB_DTYPE_F32, ctx), GB_OK);
    /* W's channel count does not match C_in / group */
    assert_int_equal(try_infer(&c, 1, 4, GB_DTYPE_F32, ctx), GB_ERR_SHAPE);
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "conv_under_test"));
    /* bias of the wrong length */
    assert_int_equal(try_infer(&c, 0, 3, GB_DTYPE_F32, ctx), GB_ERR_SHAPE);
    /* int64 input */
    assert_int_equal(try_infer(&c, 0, 4, GB_DTYPE_I64, ctx), GB_ERR_UNSUPPORTED);
    /* unknown auto_pad */
    conv_case bad = c;
    bad.auto_pad = "SAME_MIDDLE";
    assert_int_equal(try_infer(&bad, 0, 4, GB_DTYPE_F32, ctx), GB_ERR_UNSUPPORTED);
    assert_non_null(strstr(gb_ctx_errmsg(ctx), "SAME_MIDDLE"));
    /* kernel bigger than the unpadded input */
    bad = c;
    bad.x[0] = 2;
    assert_int_equal(try_infer(&bad, 0, 4, GB_DTYPE_F32, ctx), GB_ERR_SHAPE);
    /* C_in not divisible by group */
    bad = c;
    bad.group = 3;
    bad.cin = 4;
    assert_int_equal(try_infer(&bad, 0, 4, GB_DTYPE_F32, ctx), GB_ERR_SHAPE);
    /* strides of the wrong length */
    bad = c;
    bad.r = 2;
    node_box nb;
    build_node(&nb, &bad);
    static const int64_t three[3] = {1, 1, 1};
    add_ints(&nb, "dilations", three, 3);
    assert_int_equal(nb.node.op->init(ctx, &nb.node), GB_OK);
    int64_t xd[4] = {1, 4, 5, 5}, wd[4] = {4, 2, 3, 3};
    gb_tensor x = {0}, w = {0}, y = {0};
    gb__set_shape(&x, GB_DTYPE_F32, 4, xd);
    gb__set_shape(&w, GB_DTYPE_F32, 4, wd);
    gb_tensor *in[2] = {&x, &w}, *out[1] = {&y};
    size_t ws = 0;
    double flops = 0;
    nb.node.n_in = 2;
    assert_int_equal(nb.node.op->infer(ctx, &nb.node, in, out, &ws, &flops), GB_ERR_SHAPE);
    free(nb.node.params);
    /* kernel_shape that disagrees with W */
    build_node(&nb, &c);
    static const int64_t k55[2] = {5, 5};
    add_ints(&nb, "kernel_shape", k55, 2);
    nb.node.n_in = 2;
    assert_int_equal(nb.node.op->init(ctx, &nb.node), GB_OK);
    assert_int_equal(nb.node.op->infer(ctx, &nb.node, in, out, &ws, &flops), GB_ERR_SHAPE);
    free(nb.node.params);
    /* ConvTranspose: W's first dim must be C_in */
    conv_case t = {.transpose = true, .r = 2, .n = 1, .cin = 2, .cout = 2, .group = 1,
                   .x = {3, 3}, .k = {3, 3}, .bias = true};
    assert_int_equal(try_infer(&t, 0, 2, GB_DTYPE_F32, ctx), GB_OK);
    assert_int_equal(try_infer(&t, 0, 3, GB_DTYPE_F32, ctx), GB_ERR_SHAPE);
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_2d_attributes),
        cmocka_unit_test(test_conv_auto_pad),
        cmocka_unit_test(test_conv_groups_depthwise),
        cmocka_unit_test(test_conv_pointwise_and_batch),
        cmocka_unit_test(test_conv_1d_3d),
        cmocka_unit_test(test_conv_onnx_example),
        cmocka_unit_test(test_convt_attributes),
        cmocka_unit_test(test_convt_auto_pad_output_shape),
        cmocka_unit_test(test_convt_1d_3d),
        cmocka_unit_test(test_convt_onnx_examples),
        cmocka_unit_test(test_conv_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
