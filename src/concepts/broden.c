/* broden.c — read a concept dataset in the Broden format (Bau et al. 2017),
 * the way NetDissect-Lite's loader/data_loader.py reads it: index.csv,
 * category.csv, label.csv and c_<category>.csv; label PNGs whose pixel
 * holds label number R + 256 * G. Also the helpers shared by the concept
 * methods (CSV, batches of images, bilinear upsampling, pooled features). */
#include "concepts/concepts_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GB__CSV_MAX ((size_t)1 << 30)

/* ---- CSV ------------------------------------------------------------------ */

static int csv_push(char ***v, int *n, int *cap, char *s) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, sizeof *nv * (size_t)nc);
        if (!nv) return 0;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = s;
    return 1;
}

gb_status gb__csv_read(gb_ctx *ctx, const char *path, gb__csv *out) {
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len;
    gb_status st = gb__io_read_file(ctx, "csv", path, GB__CSV_MAX, &buf, &len, NULL);
    if (st) return st;
    int rcap = 0;
    size_t p = 0;
    char *field = malloc(len + 1);
    if (!field) goto oom;
    while (p < len) {
        char **row = NULL;
        int nf = 0, fcap = 0;
        for (;;) {   /* one field */
            size_t fl = 0;
            if (p < len && buf[p] == '"') {
                p++;
                for (;;) {
                    if (p >= len) {
                        free(field);
                        for (int i = 0; i < nf; i++) free(row[i]);
                        free(row);
                        gb__csv_free(out);
                        free(buf);
                        return gb__err(ctx, GB_ERR_FORMAT, "csv: %s: line %d: unterminated quote", path,
                                       out->n_rows + 1);
                    }
                    if (buf[p] == '"') {
                        if (p + 1 < len && buf[p + 1] == '"') {
                            field[fl++] = '"';
                            p += 2;
                            continue;
                        }
                        p++;
                        break;
                    }
                    field[fl++] = (char)buf[p++];
                }
            }
            while (p < len && buf[p] != ',' && buf[p] != '\n' && buf[p] != '\r') field[fl++] = (char)buf[p++];
            char *s = malloc(fl + 1);
            if (!s) goto oom_row;
            memcpy(s, field, fl);
            s[fl] = 0;
            if (!csv_push(&row, &nf, &fcap, s)) {
                free(s);
                goto oom_row;
            }
            if (p < len && buf[p] == ',') {
                p++;
                continue;
            }
            if (p < len && buf[p] == '\r') p++;
            if (p < len && buf[p] == '\n') p++;
            break;
        }
        if (nf == 1 && !row[0][0]) {   /* blank line */
            free(row[0]);
            free(row);
            continue;
        }
        if (out->n_rows == rcap) {
            int nc = rcap ? rcap * 2 : 64;
            char ***nr = realloc(out->fields, sizeof *nr * (size_t)nc);
            int *nn = realloc(out->n_fields, sizeof *nn * (size_t)nc);
            if (nr) out->fields = nr;
            if (nn) out->n_fields = nn;
            if (!nr || !nn) goto oom_row;
            rcap = nc;
        }
        out->fields[out->n_rows] = row;
        out->n_fields[out->n_rows++] = nf;
        continue;
    oom_row:
        for (int i = 0; i < nf; i++) free(row[i]);
        free(row);
        goto oom;
    }
    free(field);
    free(buf);
    if (!out->n_rows) return gb__err(ctx, GB_ERR_FORMAT, "csv: %s: empty file", path);
    return GB_OK;
oom:
    free(field);
    free(buf);
    gb__csv_free(out);
    return gb__err(ctx, GB_ERR_NOMEM, "csv: %s: out of memory", path);
}

void gb__csv_free(gb__csv *c) {
    for (int r = 0; r < c->n_rows; r++) {
        for (int f = 0; f < c->n_fields[r]; f++) free(c->fields[r][f]);
        free(c->fields[r]);
    }
    free(c->fields);
    free(c->n_fields);
    memset(c, 0, sizeof *c);
}

int gb__csv_col(const gb__csv *c, const char *name) {
    for (int f = 0; c->n_rows && f < c->n_fields[0]; f++)
        if (!strcmp(c->fields[0][f], name)) return f;
    return -1;
}

static const char *csv_get(const gb__csv *c, int r, int col) {
    return col >= 0 && col < c->n_fields[r] ? c->fields[r][col] : "";
}

/* ---- the dataset ------------------------------------------------------------- */

/* One entry of a category column: a label PNG or a whole-image label. */
typedef struct {
    char *png;               /* NULL for a whole-image label */
    int32_t label;
} gb__entry;

typedef struct {
    char *image, *split;
    int ih, iw, sh, sw;
    int n_entries;
    gb__entry *entries;
    int *entry_cat;
} gb__item;

struct gb_broden {
    gb_ctx *ctx;
    char *dir;
    int n_items;
    gb__item *items;
    int n_cats;
    char **cats;
    int n_labels;
    char **label_names;
    int *label_cat;
};

static int parse_int(const char *s, long *v) {
    char *end;
    if (!*s) return 0;
    errno = 0;
    *v = strtol(s, &end, 10);
    return !*end && !errno;
}

static gb_status read_categories(gb_broden *b) {
    char path[4096];
    gb__csv c;
    snprintf(path, sizeof path, "%s/category.csv", b->dir);
    gb_status st = gb__csv_read(b->ctx, path, &c);
    if (st) return st;
    int col = gb__csv_col(&c, "name");
    if (col < 0) {
        gb__csv_free(&c);
        return gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: no 'name' column", path);
    }
    b->cats = calloc((size_t)c.n_rows, sizeof *b->cats);
    if (!b->cats) {
        gb__csv_free(&c);
        return gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
    }
    for (int r = 1; r < c.n_rows; r++) {
        b->cats[b->n_cats] = strdup(csv_get(&c, r, col));
        if (!b->cats[b->n_cats++]) {
            gb__csv_free(&c);
            return gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
        }
    }
    gb__csv_free(&c);
    return GB_OK;
}

static gb_status read_labels(gb_broden *b) {
    char path[4096];
    gb__csv c;
    snprintf(path, sizeof path, "%s/label.csv", b->dir);
    gb_status st = gb__csv_read(b->ctx, path, &c);
    if (st) return st;
    int cn = gb__csv_col(&c, "number"), cname = gb__csv_col(&c, "name");
    if (cn < 0 || cname < 0) {
        gb__csv_free(&c);
        return gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: needs 'number' and 'name' columns", path);
    }
    long maxn = 0;
    for (int r = 1; r < c.n_rows; r++) {
        long v;
        if (!parse_int(csv_get(&c, r, cn), &v) || v < 0 || v > 65535) {
            gb__csv_free(&c);
            return gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: line %d: bad label number '%s'", path, r + 1,
                           csv_get(&c, r, cn));
        }
        if (v > maxn) maxn = v;
    }
    b->n_labels = (int)maxn + 1;
    b->label_names = calloc((size_t)b->n_labels, sizeof *b->label_names);
    b->label_cat = malloc(sizeof *b->label_cat * (size_t)b->n_labels);
    if (!b->label_names || !b->label_cat) {
        gb__csv_free(&c);
        return gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
    }
    for (int l = 0; l < b->n_labels; l++) b->label_cat[l] = -1;
    for (int r = 1; r < c.n_rows; r++) {
        long v = 0;
        parse_int(csv_get(&c, r, cn), &v);
        free(b->label_names[v]);
        if (!(b->label_names[v] = strdup(csv_get(&c, r, cname)))) {
            gb__csv_free(&c);
            return gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
        }
    }
    gb__csv_free(&c);
    /* Primary category: largest coverage in the c_*.csv files; ties go to
     * the later category (NetDissect-Lite's max over (coverage, index)). */
    double *best = malloc(sizeof *best * (size_t)b->n_labels);
    if (!best) return gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
    for (int l = 0; l < b->n_labels; l++) best[l] = -1;
    for (int k = 0; k < b->n_cats; k++) {
        snprintf(path, sizeof path, "%s/c_%s.csv", b->dir, b->cats[k]);
        if ((st = gb__csv_read(b->ctx, path, &c))) {
            free(best);
            return st;
        }
        int num = gb__csv_col(&c, "number"), cov = gb__csv_col(&c, "coverage");
        if (num < 0) {
            gb__csv_free(&c);
            free(best);
            return gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: no 'number' column", path);
        }
        for (int r = 1; r < c.n_rows; r++) {
            long v;
            if (!parse_int(csv_get(&c, r, num), &v) || v < 0 || v >= b->n_labels) {
                gb__csv_free(&c);
                free(best);
                return gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: line %d: label '%s' not in label.csv",
                               path, r + 1, csv_get(&c, r, num));
            }
            double cv = cov >= 0 ? atof(csv_get(&c, r, cov)) : 0;
            if (v > 0 && cv >= best[v]) {
                best[v] = cv;
                b->label_cat[v] = k;
            }
        }
        gb__csv_free(&c);
    }
    free(best);
    return GB_OK;
}

static gb_status read_index(gb_broden *b) {
    char path[4096];
    gb__csv c;
    snprintf(path, sizeof path, "%s/index.csv", b->dir);
    gb_status st = gb__csv_read(b->ctx, path, &c);
    if (st) return st;
    const char *meta[6] = {"image", "split", "ih", "iw", "sh", "sw"};
    int mc[6];
    for (int i = 0; i < 6; i++)
        if ((mc[i] = gb__csv_col(&c, meta[i])) < 0) {
            gb__csv_free(&c);
            return gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: no '%s' column", path, meta[i]);
        }
    int *catcol = malloc(sizeof *catcol * (size_t)(b->n_cats + 1));
    b->items = calloc((size_t)c.n_rows, sizeof *b->items);
    if (!catcol || !b->items) {
        free(catcol);
        gb__csv_free(&c);
        return gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
    }
    for (int k = 0; k < b->n_cats; k++) catcol[k] = gb__csv_col(&c, b->cats[k]);
    st = GB_OK;
    for (int r = 1; r < c.n_rows && !st; r++) {
        gb__item *it = &b->items[b->n_items++];
        long v[4];
        for (int i = 0; i < 4; i++)
            if (!parse_int(csv_get(&c, r, mc[2 + i]), &v[i]) || v[i] < 1 || v[i] > GB_IMAGE_MAX_SIDE) {
                st = gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: line %d: bad %s '%s'", path, r + 1, meta[2 + i],
                             csv_get(&c, r, mc[2 + i]));
                break;
            }
        if (st) break;
        it->ih = (int)v[0], it->iw = (int)v[1], it->sh = (int)v[2], it->sw = (int)v[3];
        it->image = strdup(csv_get(&c, r, mc[0]));
        it->split = strdup(csv_get(&c, r, mc[1]));
        if (!it->image || !it->split) {
            st = gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
            break;
        }
        int cap = 0;
        for (int k = 0; k < b->n_cats && !st; k++) {
            const char *s = csv_get(&c, r, catcol[k]);
            while (*s && !st) {
                const char *e = strchr(s, ';');
                size_t n = e ? (size_t)(e - s) : strlen(s);
                if (n) {
                    if (it->n_entries == cap) {
                        cap = cap ? cap * 2 : 4;
                        gb__entry *ne = realloc(it->entries, sizeof *ne * (size_t)cap);
                        int *nc = realloc(it->entry_cat, sizeof *nc * (size_t)cap);
                        if (ne) it->entries = ne;
                        if (nc) it->entry_cat = nc;
                        if (!ne || !nc) {
                            st = gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
                            break;
                        }
                    }
                    gb__entry *en = &it->entries[it->n_entries];
                    char tmp[1024];
                    snprintf(tmp, sizeof tmp, "%.*s", (int)(n < 1023 ? n : 1023), s);
                    long lv;
                    en->png = NULL;
                    en->label = 0;
                    if (parse_int(tmp, &lv)) {
                        if (lv < 0 || lv >= b->n_labels) {
                            st = gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: line %d: label %ld not in label.csv",
                                         path, r + 1, lv);
                            break;
                        }
                        en->label = (int32_t)lv;
                    } else if (!(en->png = strdup(tmp))) {
                        st = gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
                        break;
                    }
                    it->entry_cat[it->n_entries++] = k;
                }
                s += n + (e != NULL);
            }
        }
    }
    free(catcol);
    gb__csv_free(&c);
    return st;
}

gb_status gb_broden_open(gb_ctx *ctx, const char *dir, gb_broden **out) {
    *out = NULL;
    gb_broden *b = calloc(1, sizeof *b);
    if (!b || !(b->dir = strdup(dir))) {
        free(b);
        return gb__err(ctx, GB_ERR_NOMEM, "broden: out of memory");
    }
    b->ctx = ctx;
    gb_status st = read_categories(b);
    if (!st) st = read_labels(b);
    if (!st) st = read_index(b);
    if (st) {
        gb_broden_free(b);
        return st;
    }
    *out = b;
    return GB_OK;
}

void gb_broden_free(gb_broden *b) {
    if (!b) return;
    for (int i = 0; i < b->n_items; i++) {
        gb__item *it = &b->items[i];
        free(it->image);
        free(it->split);
        for (int e = 0; e < it->n_entries; e++) free(it->entries[e].png);
        free(it->entries);
        free(it->entry_cat);
    }
    free(b->items);
    for (int k = 0; k < b->n_cats; k++) free(b->cats[k]);
    free(b->cats);
    for (int l = 0; l < b->n_labels; l++) free(b->label_names[l]);
    free(b->label_names);
    free(b->label_cat);
    free(b->dir);
    free(b);
}

int gb_broden_size(const gb_broden *b) { return b->n_items; }
int gb_broden_num_labels(const gb_broden *b) { return b->n_labels; }
const char *gb_broden_label_name(const gb_broden *b, int l) {
    return l >= 0 && l < b->n_labels && b->label_names[l] ? b->label_names[l] : "";
}
int gb_broden_num_categories(const gb_broden *b) { return b->n_cats; }
const char *gb_broden_category_name(const gb_broden *b, int c) {
    return c >= 0 && c < b->n_cats ? b->cats[c] : "";
}
int gb_broden_label_category(const gb_broden *b, int l) {
    return l > 0 && l < b->n_labels ? b->label_cat[l] : -1;
}
int gb_broden_category_find(const gb_broden *b, const char *name) {
    for (int k = 0; k < b->n_cats; k++)
        if (!strcmp(b->cats[k], name)) return k;
    return -1;
}

gb_status gb_broden_item_info(const gb_broden *b, int i, gb_broden_item *out) {
    if (i < 0 || i >= b->n_items) return gb__err(b->ctx, GB_ERR_ARG, "broden: no image %d", i);
    const gb__item *it = &b->items[i];
    *out = (gb_broden_item){it->image, it->split, it->ih, it->iw, it->sh, it->sw};
    return GB_OK;
}

gb_status gb_broden_image_load(const gb_broden *b, int i, gb_image **out) {
    *out = NULL;
    if (i < 0 || i >= b->n_items) return gb__err(b->ctx, GB_ERR_ARG, "broden: no image %d", i);
    char path[4096];
    snprintf(path, sizeof path, "%s/images/%s", b->dir, b->items[i].image);
    return gb_image_load(b->ctx, path, out);
}

int32_t gb_broden_scalar_label(const gb_broden *b, int i, int cat) {
    if (i < 0 || i >= b->n_items) return 0;
    const gb__item *it = &b->items[i];
    for (int e = 0; e < it->n_entries; e++)
        if (it->entry_cat[e] == cat && !it->entries[e].png) return it->entries[e].label;
    return 0;
}

gb_status gb_broden_seg_load(const gb_broden *b, int i, gb_broden_seg *out) {
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= b->n_items) return gb__err(b->ctx, GB_ERR_ARG, "broden: no image %d", i);
    const gb__item *it = &b->items[i];
    int np = 0, ns = 0;
    for (int e = 0; e < it->n_entries; e++) {
        if (it->entries[e].png) np++;
        else if (it->entries[e].label) ns++;
    }
    size_t plane = (size_t)it->sh * (size_t)it->sw;
    out->sh = it->sh;
    out->sw = it->sw;
    out->planes = malloc(sizeof *out->planes * (plane * (size_t)np + 1));
    out->scalars = malloc(sizeof *out->scalars * (size_t)(ns + 1));
    if (!out->planes || !out->scalars) {
        gb_broden_seg_clear(out);
        return gb__err(b->ctx, GB_ERR_NOMEM, "broden: out of memory");
    }
    for (int e = 0; e < it->n_entries; e++) {
        const gb__entry *en = &it->entries[e];
        if (!en->png) {
            if (en->label) out->scalars[out->n_scalars++] = en->label;
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/images/%s", b->dir, en->png);
        gb_image *img;
        gb_status st = gb_image_load(b->ctx, path, &img);
        if (st) {
            gb_broden_seg_clear(out);
            return st;
        }
        if (img->width != it->sw || img->height != it->sh) {
            gb__err(b->ctx, GB_ERR_FORMAT, "broden: %s: label image is %dx%d, index.csv says %dx%d (sw x sh)",
                    path, img->width, img->height, it->sw, it->sh);
            gb_image_free(img);
            gb_broden_seg_clear(out);
            return GB_ERR_FORMAT;
        }
        int32_t *dst = out->planes + plane * (size_t)out->n_planes++;
        for (int y = 0; y < it->sh; y++) {
            const uint8_t *row = img->data + (size_t)y * img->stride;
            for (int x = 0; x < it->sw; x++) {
                const uint8_t *px = row + (size_t)x * (size_t)img->channels;
                /* Gray (+alpha) PNGs hold the red channel only. */
                int32_t v = img->channels >= 3 ? px[0] + 256 * px[1] : px[0];
                dst[(size_t)y * (size_t)it->sw + (size_t)x] = v < b->n_labels ? v : 0;
            }
        }
        gb_image_free(img);
    }
    return GB_OK;
}

void gb_broden_seg_clear(gb_broden_seg *s) {
    free(s->planes);
    free(s->scalars);
    memset(s, 0, sizeof *s);
}

/* ---- shared helpers --------------------------------------------------------- */

gb_status gb__broden_batch(gb_ctx *ctx, const gb_broden *b, const gb_preproc *pp, const int *idx, int n,
                           gb_tensor **out) {
    *out = NULL;
    int64_t dims[4] = {n, pp->layout == GB_LAYOUT_NCHW ? pp->channels : pp->height,
                       pp->layout == GB_LAYOUT_NCHW ? pp->height : pp->width,
                       pp->layout == GB_LAYOUT_NCHW ? pp->width : pp->channels};
    gb_tensor *x;
    gb_status st = gb_tensor_create(ctx, GB_DTYPE_F32, 4, dims, &x);
    if (st) return st;
    for (int k = 0; k < n; k++) {
        gb_image *img;
        if ((st = gb_broden_image_load(b, idx[k], &img))) break;
        st = gb_preproc_image_into(ctx, pp, img, x, k);
        gb_image_free(img);
        if (st) break;
    }
    if (st) {
        gb_tensor_free(x);
        return st;
    }
    *out = x;
    return GB_OK;
}

gb_status gb__lerp_make(gb_ctx *ctx, int n_in, int n_out, gb__lerp *l) {
    l->n = n_out;
    l->i0 = malloc(sizeof *l->i0 * (size_t)n_out);
    l->i1 = malloc(sizeof *l->i1 * (size_t)n_out);
    l->w1 = malloc(sizeof *l->w1 * (size_t)n_out);
    if (!l->i0 || !l->i1 || !l->w1) {
        gb__lerp_free(l);
        return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
    }
    double scale = (double)n_in / n_out;
    for (int o = 0; o < n_out; o++) {
        double s = (o + 0.5) * scale - 0.5;
        if (s < 0) s = 0;
        int i0 = (int)s;
        if (i0 > n_in - 1) i0 = n_in - 1;
        l->i0[o] = i0;
        l->i1[o] = i0 + 1 < n_in ? i0 + 1 : n_in - 1;
        l->w1[o] = (float)(s - i0);
    }
    return GB_OK;
}

void gb__lerp_free(gb__lerp *l) {
    free(l->i0);
    free(l->i1);
    free(l->w1);
    memset(l, 0, sizeof *l);
}

void gb__upsample(const float *in, int w, const gb__lerp *ly, const gb__lerp *lx, float *out) {
    for (int y = 0; y < ly->n; y++) {
        const float *r0 = in + (size_t)ly->i0[y] * (size_t)w, *r1 = in + (size_t)ly->i1[y] * (size_t)w;
        float wy = ly->w1[y];
        float *o = out + (size_t)y * (size_t)lx->n;
        for (int x = 0; x < lx->n; x++) {
            int a = lx->i0[x], c = lx->i1[x];
            float wx = lx->w1[x];
            float top = r0[a] + (r0[c] - r0[a]) * wx, bot = r1[a] + (r1[c] - r1[a]) * wx;
            o[x] = top + (bot - top) * wy;
        }
    }
}

void gb__pooled_features(const gb_tensor *a, int64_t n, int max_features, float *out, int64_t *d) {
    int64_t per = a->numel / a->dims[0];
    const float *src = (const float *)a->data + n * per;
    if (a->ndim != 4 || per <= max_features) {
        if (out) memcpy(out, src, sizeof *out * (size_t)per);
        *d = per;
        return;
    }
    int64_t K = a->dims[1], h = a->dims[2], w = a->dims[3];
    /* The largest gh x gw grid (gh <= h, gw <= w, aspect kept roughly)
     * with K * gh * gw <= max_features; at least 1 x 1 (then K values). */
    int64_t gh = h, gw = w;
    while (K * gh * gw > max_features && (gh > 1 || gw > 1)) {
        if (gh >= gw && gh > 1) gh = (gh + 1) / 2;
        else gw = (gw + 1) / 2;
    }
    *d = K * gh * gw;
    if (!out) return;
    for (int64_t k = 0; k < K; k++)
        for (int64_t gy = 0; gy < gh; gy++)
            for (int64_t gx = 0; gx < gw; gx++) {
                /* adaptive average pooling cells, as torch's adaptive_avg_pool2d */
                int64_t y0 = gy * h / gh, y1 = ((gy + 1) * h + gh - 1) / gh;
                int64_t x0 = gx * w / gw, x1 = ((gx + 1) * w + gw - 1) / gw;
                double s = 0;
                for (int64_t y = y0; y < y1; y++)
                    for (int64_t x = x0; x < x1; x++) s += src[(k * h + y) * w + x];
                out[(k * gh + gy) * gw + gx] = (float)(s / (double)((y1 - y0) * (x1 - x0)));
            }
}
