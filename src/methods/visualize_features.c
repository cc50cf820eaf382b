/* visualize_features.c — what a layer holds for an input: activations,
 * per-channel statistics, a mosaic of channel maps, receptive fields, and
 * the per-item scores used to find the dataset items (and patches) that most
 * activate a unit (Zeiler & Fergus 2014, sec. 4: "top 9 activations ... and
 * the corresponding image patches"). */
#include "methods/visualize_internal.h"
#include "engine/session.h"
#include "glassbox/heatmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gb_status gb_vis_unit_parse(gb_ctx *ctx, const char *spec, gb_vis_unit *out) {
    memset(out, 0, sizeof *out);
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon || colon == spec)
        return gb__err(ctx, GB_ERR_ARG, "unit '%s': expected TENSOR:c or TENSOR:c,h,w", spec ? spec : "");
    size_t n = (size_t)(colon - spec);
    if (n >= sizeof out->tensor) return gb__err(ctx, GB_ERR_ARG, "unit '%s': tensor name too long", spec);
    memcpy(out->tensor, spec, n);
    long long v[3];
    int k = 0;
    const char *p = colon + 1;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9' || k == 3) break;
        v[k++] = strtoll(p, &end, 10);
        p = end;
        if (*p == ',' && p[1] >= '0' && p[1] <= '9') {
            p++;
            continue;
        }
        break;
    }
    if (*p || (k != 1 && k != 3))
        return gb__err(ctx, GB_ERR_ARG, "unit '%s': expected TENSOR:c or TENSOR:c,h,w with indices >= 0", spec);
    out->channel = v[0];
    out->has_hw = k == 3;
    if (k == 3) out->h = v[1], out->w = v[2];
    return GB_OK;
}

gb_status gb_features_compute(gb_session *s, const gb_tensor *x, const char *layer, gb_tensor **out) {
    *out = NULL;
    const gb_tensor *t;
    gb_status st = gb__vis_forward(s, x, layer, &t);
    if (st) return st;
    return gb_tensor_clone(s->ctx, t, out);
}

/* (N, C, rest...) as the number of channels and the size of each map. */
static gb_status channel_view(gb_ctx *ctx, const gb_tensor *act, int64_t item, int64_t *C, int64_t *S) {
    if (!act || act->dtype != GB_DTYPE_F32 || act->ndim < 2)
        return gb__err(ctx, GB_ERR_SHAPE, "features: need a float32 (N, C, ...) activation");
    if (item < 0 || item >= act->dims[0])
        return gb__err(ctx, GB_ERR_ARG, "features: item %lld outside the batch of %lld", (long long)item,
                       (long long)act->dims[0]);
    *C = act->dims[1];
    *S = act->dims[0] != 0 && act->dims[1] != 0 ? act->numel / (act->dims[0] * act->dims[1]) : 0;
    return GB_OK;
}

gb_status gb_features_stats(gb_ctx *ctx, const gb_tensor *act, int64_t item, gb_feature_stats *stats) {
    int64_t C, S;
    gb_status st = channel_view(ctx, act, item, &C, &S);
    if (st) return st;
    const float *a = (const float *)act->data + item * C * S;
    for (int64_t c = 0; c < C; c++) {
        const float *p = a + c * S;
        double sum = 0, sq = 0, mn = INFINITY, mx = -INFINITY;
        int64_t pos = 0, am = 0;
        for (int64_t i = 0; i < S; i++) {
            sum += p[i], sq += (double)p[i] * p[i], pos += p[i] > 0;
            if (p[i] > mx) mx = p[i], am = i;
            if (p[i] < mn) mn = p[i];
        }
        double mean = S ? sum / S : 0;
        double var = S ? sq / S - mean * mean : 0;
        stats[c] = (gb_feature_stats){.mean = mean, .std = sqrt(var > 0 ? var : 0), .min = mn, .max = mx,
                                      .frac_positive = S ? (double)pos / S : 0, .argmax = am};
    }
    return GB_OK;
}

gb_status gb_features_order(gb_ctx *ctx, const gb_tensor *act, int64_t item, int64_t *order) {
    int64_t C, S;
    gb_status st = channel_view(ctx, act, item, &C, &S);
    if (st) return st;
    gb_feature_stats *fs = malloc(sizeof *fs * (size_t)(C ? C : 1));
    if (!fs) return gb__err(ctx, GB_ERR_NOMEM, "features: out of memory");
    gb_features_stats(ctx, act, item, fs);
    /* insertion sort, stable: decreasing mean, lower index first on ties */
    for (int64_t i = 0; i < C; i++) {
        int64_t j = i;
        while (j > 0 && fs[order[j - 1]].mean < fs[i].mean) order[j] = order[j - 1], j--;
        order[j] = i;
    }
    free(fs);
    return GB_OK;
}

gb_status gb_features_mosaic(gb_ctx *ctx, const gb_tensor *act, int64_t item, const int64_t *channels, int n,
                             int cell_scale, int shared_scale, gb_image **out) {
    *out = NULL;
    int64_t C, S;
    gb_status st = channel_view(ctx, act, item, &C, &S);
    if (st) return st;
    if (n < 1) return gb__err(ctx, GB_ERR_ARG, "features: no channel to show");
    for (int i = 0; i < n; i++)
        if (channels[i] < 0 || channels[i] >= C)
            return gb__err(ctx, GB_ERR_ARG, "features: channel %lld outside 0..%lld", (long long)channels[i],
                           (long long)C - 1);
    /* (N, C): 1x1 cells; (N, C, L): 1xL; (N, C, H, W): HxW */
    if (act->ndim > 4) return gb__err(ctx, GB_ERR_SHAPE, "features: maps must be 1-D or 2-D");
    int64_t mh = act->ndim == 4 ? act->dims[2] : 1, mw = act->ndim == 4 ? act->dims[3] : S;
    int64_t side = mh > mw ? mh : mw;
    int s = cell_scale > 0 ? cell_scale : (int)((48 + side - 1) / side);
    if (s < 1) s = 1;
    int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols, gap = 2;
    int64_t W = cols * mw * s + (cols + 1) * gap, H = rows * mh * s + (rows + 1) * gap;
    if (W > GB_IMAGE_MAX_SIDE || H > GB_IMAGE_MAX_SIDE)
        return gb__err(ctx, GB_ERR_ARG, "features: a %lldx%lld mosaic is too large", (long long)W, (long long)H);
    gb_image *img;
    if ((st = gb_image_create(ctx, (int)W, (int)H, 3, &img))) return st;
    memset(img->data, 255, img->stride * (size_t)H);
    int nl;
    const uint8_t *lut = gb_colormap_lut(GB_CMAP_VIRIDIS, &nl);
    const float *a = (const float *)act->data + item * C * S;
    float glo = INFINITY, ghi = -INFINITY;
    for (int i = 0; i < n; i++) {
        float lo, hi;
        gb__minmax(a + channels[i] * S, S, &lo, &hi);
        glo = lo < glo ? lo : glo, ghi = hi > ghi ? hi : ghi;
    }
    for (int i = 0; i < n; i++) {
        const float *p = a + channels[i] * S;
        float lo = glo, hi = ghi;
        if (!shared_scale) gb__minmax(p, S, &lo, &hi);
        int64_t oy = gap + (i / cols) * (mh * s + gap), ox = gap + (i % cols) * (mw * s + gap);
        for (int64_t y = 0; y < mh * s; y++)
            for (int64_t x = 0; x < mw * s; x++) {
                float v = p[(y / s) * mw + x / s];
                int k = hi > lo && isfinite(v) ? (int)lround((nl - 1) * (double)(v - lo) / (hi - lo)) : 0;
                k = k < 0 ? 0 : k >= nl ? nl - 1 : k;
                uint8_t *d = img->data + (size_t)(oy + y) * img->stride + (size_t)(ox + x) * 3;
                memcpy(d, lut + 3 * k, 3);
            }
    }
    *out = img;
    return GB_OK;
}

/* ---- receptive fields ------------------------------------------------------------- */

static bool in_list(const char *op, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(op, *list)) return true;
    return false;
}

/* Ops whose output position (h, w) reads only input position (h, w) of each
 * input (channel mixing and elementwise math). */
static const char *const pointwise_ops[] = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "BatchNormalization", "InstanceNormalization",
    "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean", "Concat", "Dropout", "Identity", "Elu", "Selu",
    "Celu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "Gelu", "Erf", "Pow", "Sqrt", "Neg",
    "Abs", "Exp", "Log", "Cast", "LRN", "ThresholdedRelu", "Reciprocal", "Where", NULL};

gb_status gb_receptive_field_of(const gb_model *m, const char *tensor, gb_receptive_field *out) {
    gb_ctx *ctx = m->ctx;
    int target = gb__model_tensor_id(m, tensor);
    for (int i = 0; target < 0 && i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, tensor) && m->nodes[i].n_out > 0) target = m->nodes[i].out[0];
    if (target < 0) return gb__err(ctx, GB_ERR_NOT_FOUND, "no tensor named '%s' in the model", tensor);
    if (m->n_inputs < 1) return gb__err(ctx, GB_ERR_ARG, "receptive field: the model has no input");
    gb_receptive_field *rf = calloc((size_t)m->n_tensors, sizeof *rf);
    bool *known = calloc((size_t)m->n_tensors, sizeof *known);
    if (!rf || !known) {
        free(rf), free(known);
        return gb__err(ctx, GB_ERR_NOMEM, "receptive field: out of memory");
    }
    int in0 = m->inputs[0];
    known[in0] = true;
    rf[in0] = (gb_receptive_field){.start = {0, 0}, .jump = {1, 1}, .size = {1, 1}};
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *nd = &m->nodes[i];
        gb_receptive_field r = {0};
        bool any = false;
        for (int k = 0; k < nd->n_in; k++) {
            int id = nd->in[k];
            if (id < 0 || !known[id]) continue;
            const gb_receptive_field *q = &rf[id];
            if (!any || q->whole || (!r.whole && q->size[0] * q->size[1] > r.size[0] * r.size[1])) r = *q;
            any = true;
        }
        if (!any) continue;
        const char *op = nd->op_type;
        if (r.whole || in_list(op, pointwise_ops)) {
            /* as is */
        } else if (!strcmp(op, "Conv") || !strcmp(op, "MaxPool") || !strcmp(op, "AveragePool") ||
                   !strcmp(op, "LpPool")) {
            int64_t k[2] = {1, 1}, st[2] = {1, 1}, dl[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
            if (gb__attr_ints(nd, "kernel_shape", k, 2) != 2 && !strcmp(op, "Conv") && nd->n_in > 1 &&
                nd->in[1] >= 0 && m->tensors[nd->in[1]].init && m->tensors[nd->in[1]].init->ndim == 4) {
                k[0] = m->tensors[nd->in[1]].init->dims[2];
                k[1] = m->tensors[nd->in[1]].init->dims[3];
            }
            gb__attr_ints(nd, "strides", st, 2);
            gb__attr_ints(nd, "dilations", dl, 2);
            gb__attr_ints(nd, "pads", pads, 4);
            const char *ap = gb__attr_str(nd, "auto_pad", "NOTSET");
            for (int a = 0; a < 2; a++) {
                double keff = (double)dl[a] * (k[a] - 1) + 1;
                /* SAME padding: the split of the total pad depends on the input
                 * size; (keff - 1) / 2 before is its value for stride 1. */
                double pb = strncmp(ap, "SAME", 4) == 0 ? floor((keff - 1) / 2) : (double)pads[a];
                /* Araujo et al. 2019, eq. 2-3 in the forward direction. */
                r.size[a] += (keff - 1) * r.jump[a];
                r.start[a] += ((keff - 1) / 2 - pb) * r.jump[a];
                r.jump[a] *= (double)st[a];
            }
        } else {
            r.whole = 1;
        }
        for (int k = 0; k < nd->n_out; k++)
            if (nd->out[k] >= 0) rf[nd->out[k]] = r, known[nd->out[k]] = true;
    }
    gb_status st = GB_OK;
    if (!known[target])
        st = gb__err(ctx, GB_ERR_ARG, "receptive field: '%s' does not depend on the input", tensor);
    else
        *out = rf[target];
    free(rf), free(known);
    return st;
}

void gb_receptive_field_box(const gb_receptive_field *rf, int64_t h, int64_t w, int64_t in_h, int64_t in_w,
                            int64_t box[4]) {
    if (rf->whole) {
        box[0] = 0, box[1] = in_h, box[2] = 0, box[3] = in_w;
        return;
    }
    int64_t pos[2] = {h, w}, lim[2] = {in_h, in_w};
    for (int a = 0; a < 2; a++) {
        double c = rf->start[a] + (double)pos[a] * rf->jump[a];
        int64_t lo = (int64_t)ceil(c - (rf->size[a] - 1) / 2 - 1e-9);
        int64_t hi = (int64_t)floor(c + (rf->size[a] - 1) / 2 + 1e-9) + 1;
        box[2 * a] = lo < 0 ? 0 : lo > lim[a] ? lim[a] : lo;
        box[2 * a + 1] = hi < 0 ? 0 : hi > lim[a] ? lim[a] : hi;
    }
}

gb_status gb_features_unit_scores(gb_session *s, const gb_tensor *x, const gb_vis_unit *unit, double *scores,
                                  int64_t *pos) {
    const gb_tensor *t;
    gb_status st = gb__vis_forward(s, x, unit->tensor, &t);
    if (st) return st;
    int64_t C, S;
    if ((st = channel_view(s->ctx, t, 0, &C, &S))) return st;
    if (unit->channel >= C)
        return gb__err(s->ctx, GB_ERR_ARG, "unit: channel %lld outside 0..%lld of '%s'", (long long)unit->channel,
                       (long long)C - 1, unit->tensor);
    int64_t mw = t->ndim >= 4 ? t->dims[t->ndim - 1] : S, mh = S / (mw ? mw : 1);
    if (unit->has_hw && (t->ndim != 4 || unit->h >= mh || unit->w >= mw))
        return gb__err(s->ctx, GB_ERR_ARG, "unit: position (%lld, %lld) is outside the %lldx%lld map of '%s'",
                       (long long)unit->h, (long long)unit->w, (long long)mh, (long long)mw, unit->tensor);
    const float *a = t->data;
    for (int64_t n = 0; n < t->dims[0]; n++) {
        const float *p = a + (n * C + unit->channel) * S;
        int64_t best = unit->has_hw ? unit->h * mw + unit->w : 0;
        if (!unit->has_hw)
            for (int64_t i = 1; i < S; i++)
                if (p[i] > p[best]) best = i;
        scores[n] = p[best];
        pos[n] = best;
    }
    return GB_OK;
}
