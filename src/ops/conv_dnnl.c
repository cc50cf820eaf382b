/* conv_dnnl.c — 2-D Conv forward and input gradient through oneDNN (see
 * conv_dnnl.h for why).
 *
 * One call:
 *   1. memory descriptors: X, W, Y in their NCHW / OIHW (GOIHW for groups)
 *      layouts as glassbox stores them, and the same shapes with format
 *      `any` for the primitive to choose (a channel-blocked layout on AVX2);
 *   2. the primitive descriptor (oneDNN's primitive cache makes re-creating
 *      the primitive for a shape it has seen cheap);
 *   3. reorders of X and W into the chosen layouts and the computation into
 *      a buffer of the chosen Y layout, all inside the op's workspace;
 *   4. a reorder of that Y back to NCHW — with oneDNN's `sum` post-op when
 *      accumulating (dX += ..., as every backward accumulates).
 * The workspace each call needs is computed the same way at plan time
 * (gb__dnnl_conv_ws), so kernels never allocate. oneDNN runs on OpenMP (its
 * Debian build's runtime), the same runtime as glassbox's own kernels; the
 * thread count is set for the calling thread before each call.
 *
 * Only input gradients are computed here: weight gradients (training) keep
 * conv.c's im2col + SGEMM path.
 */
#include "ops/conv_dnnl.h"

#include <stdlib.h>
#include <string.h>

#ifdef GB_HAVE_DNNL
#include <dnnl.h>
#include <omp.h>

void gb__dnnl_ctx_init(gb_ctx *ctx) {
    const char *env = getenv("GLASSBOX_DNNL");
    if (env && !strcmp(env, "0")) return;
    dnnl_engine_t eng = NULL;
    dnnl_stream_t str = NULL;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&str, eng, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(eng);
        return;
    }
    ctx->dnnl_engine = eng;
    ctx->dnnl_stream = str;
}

void gb__dnnl_ctx_free(gb_ctx *ctx) {
    if (ctx->dnnl_stream) dnnl_stream_destroy(ctx->dnnl_stream);
    if (ctx->dnnl_engine) dnnl_engine_destroy(ctx->dnnl_engine);
    ctx->dnnl_stream = ctx->dnnl_engine = NULL;
}

bool gb__dnnl_enabled(const gb_ctx *ctx) { return ctx && ctx->dnnl_engine; }

/* The plain descriptors (as glassbox stores the tensors) and the `any` ones. */
typedef struct {
    dnnl_memory_desc_t x, w, b, y;          /* plain */
    dnnl_memory_desc_t xa, wa, ya;          /* format any */
    dnnl_dims_t strides, dil, pad_l, pad_r;
} descs;

static bool make_descs(const gb__dnnl_conv *c, descs *d) {
    dnnl_dims_t xd = {c->n, c->c_in, c->ih, c->iw}, yd = {c->n, c->c_out, c->oh, c->ow};
    dnnl_dims_t bd = {c->c_out};
    bool ok = dnnl_memory_desc_init_by_tag(&d->x, 4, xd, dnnl_f32, dnnl_nchw) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&d->y, 4, yd, dnnl_f32, dnnl_nchw) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&d->b, 1, bd, dnnl_f32, dnnl_a) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&d->xa, 4, xd, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&d->ya, 4, yd, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
    if (c->group == 1) {
        dnnl_dims_t wd = {c->c_out, c->c_in, c->kh, c->kw};
        ok = ok && dnnl_memory_desc_init_by_tag(&d->w, 4, wd, dnnl_f32, dnnl_oihw) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&d->wa, 4, wd, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
    } else {
        dnnl_dims_t wd = {c->group, c->c_out / c->group, c->c_in / c->group, c->kh, c->kw};
        ok = ok && dnnl_memory_desc_init_by_tag(&d->w, 5, wd, dnnl_f32, dnnl_goihw) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&d->wa, 5, wd, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
    }
    d->strides[0] = c->sh;
    d->strides[1] = c->sw;
    d->dil[0] = c->dh - 1; /* oneDNN counts dilation from 0 */
    d->dil[1] = c->dw - 1;
    d->pad_l[0] = c->pt;
    d->pad_l[1] = c->pl;
    d->pad_r[0] = c->pb;
    d->pad_r[1] = c->pr;
    return ok;
}

static dnnl_primitive_attr_t user_scratchpad_attr(void) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(a);
        return NULL;
    }
    return a;
}

/* Forward (inference or training-hint) primitive descriptor. */
static dnnl_primitive_desc_t fwd_pd(dnnl_engine_t eng, const descs *d, bool bias, dnnl_prop_kind_t prop) {
    dnnl_convolution_desc_t cd;
    if (dnnl_dilated_convolution_forward_desc_init(&cd, prop, dnnl_convolution_direct, &d->xa, &d->wa,
                                                   bias ? &d->b : NULL, &d->ya, d->strides, d->dil, d->pad_l,
                                                   d->pad_r) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_t a = user_scratchpad_attr();
    if (!a) return NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, &cd, a, eng, NULL) != dnnl_success) pd = NULL;
    dnnl_primitive_attr_destroy(a);
    return pd;
}

/* Input-gradient primitive descriptor (needs a forward-training hint). */
static dnnl_primitive_desc_t bwd_pd(dnnl_engine_t eng, const descs *d) {
    dnnl_primitive_desc_t hint = fwd_pd(eng, d, false, dnnl_forward_training);
    if (!hint) return NULL;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t a = user_scratchpad_attr();
    if (a && dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &d->xa, &d->wa, &d->ya,
                                                             d->strides, d->dil, d->pad_l,
                                                             d->pad_r) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &cd, a, eng, hint) != dnnl_success)
        pd = NULL;
    if (a) dnnl_primitive_attr_destroy(a);
    dnnl_primitive_desc_destroy(hint);
    return pd;
}

static size_t round_up(size_t b) { return (b + 63) & ~(size_t)63; }

/* Bytes for: a reordered copy of `src` / `wei` / the output when the
 * primitive's layout differs from the plain one (the output always gets a
 * buffer: it is reordered, with accumulation, into the destination), plus
 * the scratchpad. `in` and `out` are the queries of the primitive's input
 * and output (src/dst forward, diff_dst/diff_src backward). */
static size_t pd_ws(dnnl_primitive_desc_t pd, dnnl_query_t in, const dnnl_memory_desc_t *in_plain, dnnl_query_t out) {
    const dnnl_memory_desc_t *mi = dnnl_primitive_desc_query_md(pd, in, 0);
    const dnnl_memory_desc_t *mw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *mo = dnnl_primitive_desc_query_md(pd, out, 0);
    const dnnl_memory_desc_t *ms = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t b = 0;
    if (!dnnl_memory_desc_equal(mi, in_plain)) b += round_up(dnnl_memory_desc_get_size(mi));
    b += round_up(dnnl_memory_desc_get_size(mw));   /* weights: always reordered (any -> blocked) */
    b += round_up(dnnl_memory_desc_get_size(mo));
    if (ms) b += round_up(dnnl_memory_desc_get_size(ms));
    return b;
}

size_t gb__dnnl_conv_ws(gb_ctx *ctx, const gb__dnnl_conv *c, bool bias, bool *ok) {
    *ok = false;
    if (!gb__dnnl_enabled(ctx) || c->n <= 0) return 0;
    descs d;
    if (!make_descs(c, &d)) return 0;
    dnnl_primitive_desc_t f = fwd_pd(ctx->dnnl_engine, &d, bias, dnnl_forward_inference);
    dnnl_primitive_desc_t g = bwd_pd(ctx->dnnl_engine, &d);
    size_t b = 0;
    if (f && g) {
        size_t bf = pd_ws(f, dnnl_query_src_md, &d.x, dnnl_query_dst_md);
        size_t bg = pd_ws(g, dnnl_query_diff_dst_md, &d.y, dnnl_query_diff_src_md);
        b = bf > bg ? bf : bg;
        *ok = true;
    }
    if (f) dnnl_primitive_desc_destroy(f);
    if (g) dnnl_primitive_desc_destroy(g);
    return b;
}

/* Reorder `from` (desc fd, at pf) into `to` (desc td, at pt); beta = 1
 * accumulates (oneDNN's sum post-op: to = from + to). */
static bool reorder(dnnl_engine_t eng, dnnl_stream_t str, const dnnl_memory_desc_t *fd, const void *pf,
                    const dnnl_memory_desc_t *td, void *pt, bool accumulate) {
    dnnl_primitive_attr_t a = NULL;
    dnnl_post_ops_t po = NULL;
    if (accumulate) {
        if (dnnl_primitive_attr_create(&a) != dnnl_success) return false;
        if (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(a, po) != dnnl_success) {
            if (po) dnnl_post_ops_destroy(po);
            dnnl_primitive_attr_destroy(a);
            return false;
        }
    }
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t mf = NULL, mt = NULL;
    bool ok = dnnl_reorder_primitive_desc_create(&rpd, fd, eng, td, eng, a) == dnnl_success &&
              dnnl_primitive_create(&r, rpd) == dnnl_success &&
              dnnl_memory_create(&mf, fd, eng, (void *)pf) == dnnl_success &&
              dnnl_memory_create(&mt, td, eng, pt) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, mf}, {DNNL_ARG_TO, mt}};
        ok = dnnl_primitive_execute(r, str, 2, args) == dnnl_success && dnnl_stream_wait(str) == dnnl_success;
    }
    if (mf) dnnl_memory_destroy(mf);
    if (mt) dnnl_memory_destroy(mt);
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (po) dnnl_post_ops_destroy(po);
    if (a) dnnl_primitive_attr_destroy(a);
    return ok;
}

/* Run one convolution primitive: in_arg/out_arg are the data argument kinds
 * (SRC/DST forward, DIFF_DST/DIFF_SRC backward); `in` and `out` plain. */
static bool run(const gb__exec *ex, dnnl_primitive_desc_t pd, dnnl_query_t qin, int in_arg, const dnnl_memory_desc_t *in_plain,
                const float *in, const descs *d, const float *w, const float *b, dnnl_query_t qout, int out_arg,
                const dnnl_memory_desc_t *out_plain, float *out, bool acc) {
    dnnl_engine_t eng = ex->dnnl_engine;
    dnnl_stream_t str = ex->dnnl_stream;
    const dnnl_memory_desc_t *mi = dnnl_primitive_desc_query_md(pd, qin, 0);
    const dnnl_memory_desc_t *mw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *mo = dnnl_primitive_desc_query_md(pd, qout, 0);
    const dnnl_memory_desc_t *ms = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    /* carve the workspace as pd_ws sized it */
    char *p = ex->ws, *end = p + ex->ws_size;
    const void *in_use = in;
    void *wbuf, *obuf, *sbuf = NULL;
    if (!dnnl_memory_desc_equal(mi, in_plain)) {
        in_use = p;
        p += round_up(dnnl_memory_desc_get_size(mi));
    }
    wbuf = p;
    p += round_up(dnnl_memory_desc_get_size(mw));
    obuf = p;
    p += round_up(dnnl_memory_desc_get_size(mo));
    if (ms && dnnl_memory_desc_get_size(ms)) {
        sbuf = p;
        p += round_up(dnnl_memory_desc_get_size(ms));
    }
    if (p > end) return false;
    if (in_use != in && !reorder(eng, str, in_plain, in, mi, (void *)in_use, false)) return false;
    if (!reorder(eng, str, &d->w, w, mw, wbuf, false)) return false;

    dnnl_primitive_t prim = NULL;
    dnnl_memory_t m_in = NULL, m_w = NULL, m_b = NULL, m_o = NULL, m_s = NULL;
    bool ok = dnnl_primitive_create(&prim, pd) == dnnl_success &&
              dnnl_memory_create(&m_in, mi, eng, (void *)in_use) == dnnl_success &&
              dnnl_memory_create(&m_w, mw, eng, wbuf) == dnnl_success &&
              dnnl_memory_create(&m_o, mo, eng, obuf) == dnnl_success &&
              (!b || dnnl_memory_create(&m_b, &d->b, eng, (void *)b) == dnnl_success) &&
              (!sbuf || dnnl_memory_create(&m_s, ms, eng, sbuf) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[5];
        int na = 0;
        args[na++] = (dnnl_exec_arg_t){in_arg, m_in};
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, m_w};
        args[na++] = (dnnl_exec_arg_t){out_arg, m_o};
        if (m_b) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m_b};
        if (m_s) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m_s};
        ok = dnnl_primitive_execute(prim, str, na, args) == dnnl_success && dnnl_stream_wait(str) == dnnl_success;
    }
    if (m_in) dnnl_memory_destroy(m_in);
    if (m_w) dnnl_memory_destroy(m_w);
    if (m_b) dnnl_memory_destroy(m_b);
    if (m_o) dnnl_memory_destroy(m_o);
    if (m_s) dnnl_memory_destroy(m_s);
    if (prim) dnnl_primitive_destroy(prim);
    return ok && reorder(eng, str, mo, obuf, out_plain, out, acc);
}

bool gb__dnnl_conv_forward(const gb__exec *ex, const gb__dnnl_conv *c, float *y, const float *x, const float *w,
                           const float *b, bool acc) {
    if (!ex->dnnl_engine || c->n <= 0) return false;
    descs d;
    if (!make_descs(c, &d)) return false;
    omp_set_num_threads(ex->n_threads);
    dnnl_primitive_desc_t pd = fwd_pd(ex->dnnl_engine, &d, b != NULL, dnnl_forward_inference);
    if (!pd) return false;
    bool ok = run(ex, pd, dnnl_query_src_md, DNNL_ARG_SRC, &d.x, x, &d, w, b, dnnl_query_dst_md, DNNL_ARG_DST, &d.y,
                  y, acc);
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

bool gb__dnnl_conv_dx(const gb__exec *ex, const gb__dnnl_conv *c, float *dx, const float *dy, const float *w) {
    if (!ex->dnnl_engine || c->n <= 0) return false;
    descs d;
    if (!make_descs(c, &d)) return false;
    omp_set_num_threads(ex->n_threads);
    dnnl_primitive_desc_t pd = bwd_pd(ex->dnnl_engine, &d);
    if (!pd) return false;
    bool ok = run(ex, pd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, &d.y, dy, &d, w, NULL, dnnl_query_diff_src_md,
                  DNNL_ARG_DIFF_SRC, &d.x, dx, true);
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

#else /* !GB_HAVE_DNNL */

void gb__dnnl_ctx_init(gb_ctx *ctx) { (void)ctx; }
void gb__dnnl_ctx_free(gb_ctx *ctx) { (void)ctx; }
bool gb__dnnl_enabled(const gb_ctx *ctx) { (void)ctx; return false; }
size_t gb__dnnl_conv_ws(gb_ctx *ctx, const gb__dnnl_conv *c, bool bias, bool *ok) {
    (void)ctx; (void)c; (void)bias;
    *ok = false;
    return 0;
}
bool gb__dnnl_conv_forward(const gb__exec *ex, const gb__dnnl_conv *c, float *y, const float *x, const float *w,
                           const float *b, bool acc) {
    (void)ex; (void)c; (void)y; (void)x; (void)w; (void)b; (void)acc;
    return false;
}
bool gb__dnnl_conv_dx(const gb__exec *ex, const gb__dnnl_conv *c, float *dx, const float *dy, const float *w) {
    (void)ex; (void)c; (void)dx; (void)dy; (void)w;
    return false;
}

#endif
