/* vis_common.c — see vis_common.h. */
#include "cli/vis_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gb_cli_vis_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        gb_cli_error("%s: '%s' is not an integer in %ld..%ld", flag, v, lo, hi);
        return false;
    }
    *out = n;
    return true;
}

bool gb_cli_vis_double(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi)) {
        gb_cli_error("%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

bool gb_cli_vis_u64(const char *flag, const char *v, uint64_t *out) {
    char *end;
    unsigned long long s = strtoull(v, &end, 10);
    if (!*v || *end || v[0] == '-') {
        gb_cli_error("%s: '%s' is not a non-negative integer", flag, v);
        return false;
    }
    *out = s;
    return true;
}

bool gb_cli_vis_load_input(gb_ctx *ctx, const gb_cli_model *cm, const char *image, const char *npy, gb_tensor **x) {
    *x = NULL;
    if (npy) {
        if (gb_npy_read(ctx, npy, x) || ((*x)->dtype != GB_DTYPE_F32 && gb_tensor_cast(ctx, *x, GB_DTYPE_F32))) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            gb_tensor_free(*x);
            *x = NULL;
            return false;
        }
        return true;
    }
    if (!cm->has_pp) {
        gb_cli_error("%s: no image preprocessing for this model (give --input x.npy)", cm->path);
        return false;
    }
    gb_image *img = NULL;
    if (gb_image_load(ctx, image, &img) || gb_preproc_image(ctx, &cm->pp, img, x)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        gb_image_free(img);
        return false;
    }
    gb_image_free(img);
    return true;
}

void gb_cli_vis_paste(gb_image *dst, const gb_image *src, int x0, int y0, int scale) {
    for (int y = 0; y < src->height * scale; y++)
        for (int x = 0; x < src->width * scale; x++) {
            int dy = y0 + y, dx = x0 + x;
            if (dy < 0 || dx < 0 || dy >= dst->height || dx >= dst->width) continue;
            const uint8_t *s = src->data + (size_t)(y / scale) * src->stride + (size_t)(x / scale) * src->channels;
            uint8_t *d = dst->data + (size_t)dy * dst->stride + (size_t)dx * 3;
            for (int c = 0; c < 3; c++) d[c] = s[src->channels >= 3 ? c : 0];
        }
}

bool gb_cli_vis_input_png(gb_ctx *ctx, const gb_cli_model *cm, const gb_tensor *x, int scale, gb_image **out) {
    *out = NULL;
    gb_preproc pp = cm->pp;
    if (!cm->has_pp) {
        /* no sidecar: show the tensor's values as pixels in [0, 1] */
        gb_preproc_default(&pp);
        pp.channels = x->ndim == 4 ? (int)x->dims[1] : 0;
        pp.color = pp.channels == 1 ? GB_COLOR_GRAY : GB_COLOR_RGB;
        pp.height = x->ndim == 4 ? (int)x->dims[2] : 0;
        pp.width = x->ndim == 4 ? (int)x->dims[3] : 0;
    }
    int64_t N = x->ndim == 4 ? x->dims[0] : 0;
    if (N < 1 || x->dims[1] != pp.channels || x->dims[2] != pp.height || x->dims[3] != pp.width) {
        gb_cli_error("cannot draw the input: it is not a (N, %d, %d, %d) image batch", pp.channels, pp.height,
                     pp.width);
        return false;
    }
    int gap = 2, W = (int)N * (pp.width * scale + gap) - gap, H = pp.height * scale;
    gb_image *all = NULL;
    if (gb_image_create(ctx, W, H, 3, &all)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        return false;
    }
    memset(all->data, 255, all->stride * (size_t)H);
    for (int64_t n = 0; n < N; n++) {
        gb_image *one = NULL;
        if (gb_preproc_inverse(ctx, &pp, x, n, &one)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            gb_image_free(all);
            return false;
        }
        gb_cli_vis_paste(all, one, (int)n * (pp.width * scale + gap), 0, scale);
        gb_image_free(one);
    }
    *out = all;
    return true;
}

bool gb_cli_vis_write_png(gb_ctx *ctx, gb_cli_outputs *outs, const char *path, const gb_image *img) {
    if (gb_image_write_png(ctx, path, img)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        return false;
    }
    if (!gb_cli_outputs_add(outs, path)) {
        gb_cli_error("out of memory");
        return false;
    }
    return true;
}

bool gb_cli_vis_write_npy(gb_ctx *ctx, gb_cli_outputs *outs, const char *path, const gb_tensor *t) {
    if (gb_npy_write(ctx, path, t)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        return false;
    }
    if (!gb_cli_outputs_add(outs, path)) {
        gb_cli_error("out of memory");
        return false;
    }
    return true;
}
