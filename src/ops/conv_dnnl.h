/* conv_dnnl.h — 2-D convolution forward and input gradient through oneDNN
 * (Debian's libdnnl, the library PyTorch's CPU convolutions use), for
 * src/ops/conv.c. Built when GB_HAVE_DNNL is defined; otherwise every
 * function reports "not handled" and conv.c keeps its im2col + SGEMM path.
 *
 * Why: im2col + SGEMM spends a third of a ResNet's backward pass outside the
 * GEMM (im2col/col2im copies, the col2im scatter); oneDNN's direct JIT
 * kernels on a channel-blocked layout do not, and they are what the
 * PyTorch/Captum side of every benchmark runs. Tensors stay NCHW at the
 * op boundary: each call reorders its input, weights and output to and from
 * the layout the primitive picks (as PyTorch's eager mode does), inside the
 * op's workspace.
 */
#ifndef GB_OPS_CONV_DNNL_H
#define GB_OPS_CONV_DNNL_H

#include "engine/ir.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A 2-D convolution: X (n, c_in, ih, iw), W (c_out, c_in/group, kh, kw),
 * Y (n, c_out, oh, ow); s strides, d dilations (1 = dense), pads begin (pt,
 * pl) and end (pb, pr). */
typedef struct {
    int64_t n, c_in, c_out, group;
    int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
} gb__dnnl_conv;

/* Whether oneDNN is compiled in and enabled on this context (GLASSBOX_DNNL=0
 * in the environment at gb_ctx_create turns it off). */
bool gb__dnnl_enabled(const gb_ctx *ctx);

/* Workspace bytes the forward and input-gradient calls need for this
 * convolution (reorder buffers and oneDNN's scratchpad); 0 with
 * *ok = false when oneDNN cannot run it (the caller uses its own path). */
size_t gb__dnnl_conv_ws(gb_ctx *ctx, const gb__dnnl_conv *c, bool bias, bool *ok);

/* Y = conv(X, W) + B (acc: Y += conv(X, W), b NULL). false: not handled
 * (nothing written). */
bool gb__dnnl_conv_forward(const gb__exec *ex, const gb__dnnl_conv *c, float *y, const float *x,
                           const float *w, const float *b, bool acc);

/* dX += conv's input gradient (a transposed convolution of dY with W).
 * false: not handled (nothing written). */
bool gb__dnnl_conv_dx(const gb__exec *ex, const gb__dnnl_conv *c, float *dx, const float *dy,
                      const float *w);

/* Engine and stream of a context (created by gb_ctx_create, freed by
 * gb_ctx_free). */
void gb__dnnl_ctx_init(gb_ctx *ctx);
void gb__dnnl_ctx_free(gb_ctx *ctx);

#endif
