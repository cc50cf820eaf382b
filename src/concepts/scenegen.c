/* scenegen.c — a synthetic concept dataset in the Broden format
 * (glassbox concepts-gen). Broden itself (Bau et al. 2017) cannot be
 * downloaded here; these scenes have the same files and the same label
 * encoding, with exact masks for every concept, so dissection, Net2Vec and
 * probes can be run and checked end to end.
 *
 * A scene: a background region painted with a texture, then 1-4 objects in
 * a scene-specific mix (plus sometimes a distractor), later objects
 * occluding earlier ones. Every painted region has a color, a texture and
 * (for objects) an object and possibly a part label; masks are taken from
 * the final painted buffers, so occlusion is exact. */
#include "concepts/concepts_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the vocabulary --------------------------------------------------------- */

static const struct { const char *name; uint8_t r, g, b; } COLORS[] = {
    {"black", 0, 0, 0},        {"white", 255, 255, 255}, {"red", 220, 30, 30},     {"green", 40, 170, 50},
    {"blue", 40, 70, 220},     {"yellow", 240, 220, 40}, {"orange", 245, 140, 20}, {"purple", 140, 50, 170},
    {"pink", 250, 150, 190},   {"brown", 130, 80, 30},   {"gray", 128, 128, 128},  {"cyan", 40, 200, 210},
};
enum { C_BLACK, C_WHITE, C_RED, C_GREEN, C_BLUE, C_YELLOW, C_ORANGE, C_PURPLE, C_PINK, C_BROWN, C_GRAY, C_CYAN,
       N_COLORS };
_Static_assert(sizeof COLORS / sizeof COLORS[0] == N_COLORS, "one row per color");

static const char *const TEXTURES[] = {"plain", "stripes", "dots", "checkers", "zigzag", "noise"};
enum { T_PLAIN, T_STRIPES, T_DOTS, T_CHECKERS, T_ZIGZAG, T_NOISE, N_TEXTURES };

static const char *const OBJECTS[] = {"house", "tree", "snowman", "flag", "ball", "box", "kite"};
enum { O_HOUSE, O_TREE, O_SNOWMAN, O_FLAG, O_BALL, O_BOX, O_KITE, N_OBJECTS };

static const char *const PARTS[] = {"wall", "roof", "trunk", "crown", "head", "torso", "pole", "cloth"};
enum { P_WALL, P_ROOF, P_TRUNK, P_CROWN, P_HEAD, P_TORSO, P_POLE, P_CLOTH, N_PARTS };

static const char *const SCENES[] = {"village", "forest", "winter", "harbor", "playground"};
enum { N_SCENES = 5 };

/* Per scene: objects drawn from (repeats weight them), background textures
 * and colors. */
typedef struct {
    int objects[6], n_objects;
    int textures[3], n_textures;
    int colors[3], n_colors;
} scene_def;
static const scene_def SCENE_DEF[N_SCENES] = {
    {{O_HOUSE, O_HOUSE, O_TREE}, 3, {T_PLAIN, T_NOISE}, 2, {C_GREEN, C_YELLOW}, 2},
    {{O_TREE}, 1, {T_NOISE, T_DOTS}, 2, {C_GREEN, C_BROWN}, 2},
    {{O_SNOWMAN, O_SNOWMAN, O_TREE}, 3, {T_DOTS, T_PLAIN}, 2, {C_WHITE, C_CYAN, C_GRAY}, 3},
    {{O_FLAG, O_BOX}, 2, {T_STRIPES, T_ZIGZAG}, 2, {C_BLUE, C_CYAN}, 2},
    {{O_BALL, O_KITE, O_BOX}, 3, {T_CHECKERS, T_PLAIN}, 2, {C_GRAY, C_YELLOW, C_PINK}, 3},
};

int gb_scenes_num_scenes(void) { return N_SCENES; }
const char *gb_scenes_scene_name(int k) { return k >= 0 && k < N_SCENES ? SCENES[k] : ""; }

/* Label numbers: 1.. colors, objects, parts, textures, scenes (in the
 * order of CATS below). */
static const struct { const char *name; int count; } CATS[] = {
    {"color", N_COLORS}, {"object", N_OBJECTS}, {"part", N_PARTS}, {"texture", N_TEXTURES}, {"scene", N_SCENES},
};
enum { K_COLOR, K_OBJECT, K_PART, K_TEXTURE, K_SCENE, N_CATS };
static int label_base(int cat) {
    int base = 1;
    for (int k = 0; k < cat; k++) base += CATS[k].count;
    return base;
}
static const char *label_name(int cat, int i) {
    switch (cat) {
    case K_COLOR: return COLORS[i].name;
    case K_OBJECT: return OBJECTS[i];
    case K_PART: return PARTS[i];
    case K_TEXTURE: return TEXTURES[i];
    default: return SCENES[i];
    }
}
#define N_LABELS (1 + N_COLORS + N_OBJECTS + N_PARTS + N_TEXTURES + N_SCENES)

/* ---- painting --------------------------------------------------------------- */

/* One scene's buffers, (S, S) each; -1 = none. */
typedef struct {
    int S;
    int8_t *color, *texture, *object, *part;
} canvas;

/* A paint: region color c1, second color c2, texture, pattern phase. */
typedef struct { int c1, c2, tex; uint64_t hash; } paint;

/* Whether pixel (x, y) of a textured region takes the first color. The
 * period p scales with the image so textures look alike at any size. */
static int pattern_on(const paint *pt, int x, int y, int p) {
    int h = p / 2 > 0 ? p / 2 : 1;
    switch (pt->tex) {
    case T_STRIPES: return (y / h) % 2 == 0;
    case T_CHECKERS: return ((x / h) + (y / h)) % 2 == 0;
    case T_DOTS: {
        int dx = x % p - p / 2, dy = y % p - p / 2;
        int r = p / 3 > 0 ? p / 3 : 1;
        return !(dx * dx + dy * dy <= r * r);
    }
    case T_ZIGZAG: {
        int t = x % p;
        int tri = t < p / 2 ? t : p - t;   /* 0..p/2..0 */
        int yy = (y + tri) % p;
        return yy >= h;
    }
    case T_NOISE: {
        int cell = p / 4 > 0 ? p / 4 : 1;
        gb__crng g = {pt->hash ^ ((uint64_t)(x / cell) * 0x9E3779B1u + (uint64_t)(y / cell) * 0x85EBCA77u)};
        return gb__crng_u64(&g) & 1;
    }
    default: return 1;
    }
}

static void put(canvas *cv, int x, int y, const paint *pt, int obj, int part, int p) {
    if (x < 0 || y < 0 || x >= cv->S || y >= cv->S) return;
    size_t i = (size_t)y * (size_t)cv->S + (size_t)x;
    cv->color[i] = (int8_t)(pattern_on(pt, x, y, p) ? pt->c1 : pt->c2);
    cv->texture[i] = (int8_t)pt->tex;
    cv->object[i] = (int8_t)obj;
    cv->part[i] = (int8_t)part;
}

typedef enum { SH_RECT, SH_CIRCLE, SH_TRIANGLE, SH_DIAMOND } shape;

/* Fill a shape given in fractions of the object box (x0, y0, s):
 * rect/diamond (a, b, c, d) = x range, y range; circle (cx, cy, r);
 * triangle: apex (a, b), base at y = d from x = a - c to a + c. */
static void fill(canvas *cv, shape sh, double x0, double y0, double s, double a, double b, double c, double d,
                 const paint *pt, int obj, int part, int p) {
    int S = cv->S;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double u = (x + 0.5 - x0) / s, v = (y + 0.5 - y0) / s;   /* pixel centre in box units */
            int in = 0;
            switch (sh) {
            case SH_RECT: in = u >= a && u < b && v >= c && v < d; break;
            case SH_CIRCLE: in = (u - a) * (u - a) + (v - b) * (v - b) <= c * c; break;
            case SH_TRIANGLE: in = v >= b && v < d && fabs(u - a) <= c * (v - b) / (d - b); break;
            case SH_DIAMOND: in = fabs(u - (a + b) / 2) / ((b - a) / 2) + fabs(v - (c + d) / 2) / ((d - c) / 2) <= 1;
                break;
            }
            if (in) put(cv, x, y, pt, obj, part, p);
        }
}

static int pick(gb__crng *g, const int *v, int n) { return v[gb__crng_below(g, n)]; }

/* The paint of one part: its usual colors, a texture 1 time in 3. */
static paint part_paint(gb__crng *g, const int *colors, int n) {
    paint pt = {pick(g, colors, n), 0, T_PLAIN, gb__crng_u64(g)};
    if (gb__crng_unif(g) < 0.35) {
        pt.tex = 1 + gb__crng_below(g, N_TEXTURES - 1);
        do pt.c2 = gb__crng_below(g, N_COLORS);
        while (pt.c2 == pt.c1);
    }
    return pt;
}

static void draw_object(canvas *cv, gb__crng *g, int obj, int p) {
    int S = cv->S;
    double s = S * (0.3 + 0.25 * gb__crng_unif(g));
    double x0 = -0.15 * s + gb__crng_unif(g) * (S - 0.7 * s), y0 = -0.1 * s + gb__crng_unif(g) * (S - 0.8 * s);
    static const int wallc[] = {C_WHITE, C_YELLOW, C_GRAY, C_PINK}, roofc[] = {C_RED, C_BROWN, C_ORANGE},
                     trunkc[] = {C_BROWN}, crownc[] = {C_GREEN, C_GREEN, C_ORANGE}, snowc[] = {C_WHITE},
                     polec[] = {C_GRAY, C_BLACK}, anyc[] = {C_RED, C_BLUE, C_YELLOW, C_ORANGE, C_PURPLE, C_PINK},
                     boxc[] = {C_BROWN, C_ORANGE, C_BLUE};
    paint a, b;
    switch (obj) {
    case O_HOUSE:
        a = part_paint(g, wallc, 4), b = part_paint(g, roofc, 3);
        fill(cv, SH_RECT, x0, y0, s, 0.1, 0.9, 0.45, 1.0, &a, obj, P_WALL, p);
        fill(cv, SH_TRIANGLE, x0, y0, s, 0.5, 0.05, 0.5, 0.45, &b, obj, P_ROOF, p);
        break;
    case O_TREE:
        a = part_paint(g, trunkc, 1), b = part_paint(g, crownc, 3);
        fill(cv, SH_RECT, x0, y0, s, 0.42, 0.58, 0.55, 1.0, &a, obj, P_TRUNK, p);
        fill(cv, SH_CIRCLE, x0, y0, s, 0.5, 0.35, 0.32, 0, &b, obj, P_CROWN, p);
        break;
    case O_SNOWMAN:
        a = part_paint(g, snowc, 1), b = part_paint(g, snowc, 1);
        fill(cv, SH_CIRCLE, x0, y0, s, 0.5, 0.7, 0.28, 0, &a, obj, P_TORSO, p);
        fill(cv, SH_CIRCLE, x0, y0, s, 0.5, 0.28, 0.18, 0, &b, obj, P_HEAD, p);
        break;
    case O_FLAG:
        a = part_paint(g, polec, 2), b = part_paint(g, anyc, 6);
        fill(cv, SH_RECT, x0, y0, s, 0.1, 0.18, 0.0, 1.0, &a, obj, P_POLE, p);
        fill(cv, SH_RECT, x0, y0, s, 0.18, 0.85, 0.05, 0.45, &b, obj, P_CLOTH, p);
        break;
    case O_BALL:
        a = part_paint(g, anyc, 6);
        fill(cv, SH_CIRCLE, x0, y0, s, 0.5, 0.5, 0.4, 0, &a, obj, -1, p);
        break;
    case O_BOX:
        a = part_paint(g, boxc, 3);
        fill(cv, SH_RECT, x0, y0, s, 0.1, 0.9, 0.2, 0.9, &a, obj, -1, p);
        break;
    default:
        a = part_paint(g, anyc, 6);
        fill(cv, SH_DIAMOND, x0, y0, s, 0.15, 0.85, 0.05, 0.95, &a, obj, -1, p);
        break;
    }
}

/* Paint scene i of the dataset with `seed`; returns the scene index. */
static int render(canvas *cv, uint64_t seed, int i) {
    gb__crng g = {seed * 0x2545F4914F6CDD1Dull + (uint64_t)i * 0x9E3779B97F4A7C15ull + 1};
    gb__crng_u64(&g);
    int S = cv->S, p = S / 10 > 4 ? S / 10 : 4;
    int scene = gb__crng_below(&g, N_SCENES);
    const scene_def *sd = &SCENE_DEF[scene];
    paint bg = {pick(&g, sd->colors, sd->n_colors), 0, pick(&g, sd->textures, sd->n_textures), gb__crng_u64(&g)};
    do bg.c2 = gb__crng_below(&g, N_COLORS);
    while (bg.c2 == bg.c1);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) put(cv, x, y, &bg, -1, -1, p);
    int n = 1 + gb__crng_below(&g, 3);
    for (int k = 0; k < n; k++) draw_object(cv, &g, pick(&g, sd->objects, sd->n_objects), p);
    if (gb__crng_unif(&g) < 0.3) draw_object(cv, &g, gb__crng_below(&g, N_OBJECTS), p);
    return scene;
}

/* ---- writing --------------------------------------------------------------------- */

static gb_status write_label_png(gb_ctx *ctx, const char *path, const int8_t *v, int S, int base) {
    gb_image *img;
    gb_status st = gb_image_create(ctx, S, S, 3, &img);
    if (st) return st;
    for (int k = 0; k < S * S; k++) {
        int l = v[k] >= 0 ? base + v[k] : 0;
        img->data[3 * k] = (uint8_t)(l & 255);
        img->data[3 * k + 1] = (uint8_t)(l >> 8);
    }
    st = gb_image_write_png(ctx, path, img);
    gb_image_free(img);
    return st;
}

typedef struct { char *p; size_t len, cap; } sbuf;
static int sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return 0;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return 1;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(b->p, nc);
        if (!np) return 0;
        b->p = np;
        b->cap = nc;
    }
}

static gb_status mkdir_p(gb_ctx *ctx, const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat stt;
        if (stat(dir, &stt) == 0 && S_ISDIR(stt.st_mode)) return GB_OK;
        return gb__err(ctx, GB_ERR_IO, "concepts-gen: %s: not a directory", dir);
    }
    return gb__err(ctx, GB_ERR_IO, "concepts-gen: %s: %s", dir, strerror(errno));
}

gb_status gb_scenes_generate(gb_ctx *ctx, const char *dir, const gb_scenes_opts *o) {
    int S = o->size ? o->size : 64;
    double valf = o->val_fraction > 0 ? o->val_fraction : 0.2;
    if (o->count < 1) return gb__err(ctx, GB_ERR_ARG, "concepts-gen: count must be >= 1 (got %d)", o->count);
    if (S < 16 || S > 4096) return gb__err(ctx, GB_ERR_ARG, "concepts-gen: size must be 16..4096 (got %d)", S);
    if (valf >= 1) return gb__err(ctx, GB_ERR_ARG, "concepts-gen: val fraction must be < 1");
    char path[4096];
    gb_status st = mkdir_p(ctx, dir);
    if (st) return st;
    snprintf(path, sizeof path, "%s/images", dir);
    if ((st = mkdir_p(ctx, path))) return st;
    /* A stale index.csv would describe a mix of old and new files if this
     * run fails half-way: it goes first and is written again last. */
    snprintf(path, sizeof path, "%s/index.csv", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return gb__err(ctx, GB_ERR_IO, "concepts-gen: %s: %s", path, strerror(errno));

    size_t np = (size_t)S * (size_t)S;
    canvas cv = {S, malloc(np), malloc(np), malloc(np), malloc(np)};
    double *freq = calloc(N_LABELS, sizeof *freq), *cover = calloc(N_LABELS, sizeof *cover);
    double catfreq[N_CATS] = {0};
    int *seen = calloc(N_LABELS, sizeof *seen);
    gb_image *img = NULL;
    sbuf index = {0};
    if (!cv.color || !cv.texture || !cv.object || !cv.part || !freq || !cover || !seen ||
        gb_image_create(ctx, S, S, 3, &img) ||
        !sb_printf(&index, "image,split,ih,iw,sh,sw,color,object,part,material,scene,texture\n")) {
        st = gb__err(ctx, GB_ERR_NOMEM, "concepts-gen: out of memory");
        goto done;
    }
    for (int i = 0; i < o->count; i++) {
        int scene = render(&cv, o->seed, i);
        for (size_t k = 0; k < np; k++) {
            img->data[3 * k] = COLORS[cv.color[k]].r;
            img->data[3 * k + 1] = COLORS[cv.color[k]].g;
            img->data[3 * k + 2] = COLORS[cv.color[k]].b;
        }
        char name[64];
        snprintf(name, sizeof name, "%06d", i);
        snprintf(path, sizeof path, "%s/images/%s.png", dir, name);
        if ((st = gb_image_write_png(ctx, path, img))) goto done;
        static const char *const suffix[4] = {"color", "object", "part", "texture"};
        int8_t *bufs[4] = {cv.color, cv.object, cv.part, cv.texture};
        int cats[4] = {K_COLOR, K_OBJECT, K_PART, K_TEXTURE};
        for (int c = 0; c < 4; c++) {
            snprintf(path, sizeof path, "%s/images/%s_%s.png", dir, name, suffix[c]);
            int base = label_base(cats[c]);
            if ((st = write_label_png(ctx, path, bufs[c], S, base))) goto done;
            memset(seen, 0, sizeof *seen * N_LABELS);
            int any = 0;
            for (size_t k = 0; k < np; k++)
                if (bufs[c][k] >= 0) {
                    cover[base + bufs[c][k]] += 1.0 / (double)np;
                    seen[base + bufs[c][k]] = 1;
                    any = 1;
                }
            for (int l = 0; l < N_LABELS; l++) freq[l] += seen[l];
            catfreq[cats[c]] += any;
        }
        int sl = label_base(K_SCENE) + scene;
        freq[sl] += 1;
        cover[sl] += 1;
        catfreq[K_SCENE] += 1;
        gb__crng gs = {o->seed ^ ((uint64_t)i * 0xD1B54A32D192ED03ull)};
        const char *split = gb__crng_unif(&gs) < valf ? "val" : "train";
        if (!sb_printf(&index, "%s.png,%s,%d,%d,%d,%d,%s_color.png,%s_object.png,%s_part.png,,%d,%s_texture.png\n",
                       name, split, S, S, S, S, name, name, name, sl, name)) {
            st = gb__err(ctx, GB_ERR_NOMEM, "concepts-gen: out of memory");
            goto done;
        }
    }
    /* label.csv, category.csv, c_<cat>.csv: NetDissect-Lite's columns. */
    sbuf lab = {0}, cat = {0};
    int ok = sb_printf(&lab, "number,name,category,frequency,coverage,syns\n") &&
             sb_printf(&cat, "name,first,last,count,frequency\n");
    for (int c = 0; c < N_CATS && ok; c++) {
        int base = label_base(c);
        sbuf cc = {0};
        ok = sb_printf(&cat, "%s,%d,%d,%d,%.0f\n", CATS[c].name, base, base + CATS[c].count - 1, CATS[c].count,
                       catfreq[c]) &&
             sb_printf(&cc, "code,number,name,frequency,coverage\n");
        for (int j = 0; j < CATS[c].count && ok; j++) {
            int l = base + j;
            ok = sb_printf(&lab, "%d,%s,%s(%.0f),%.0f,%.6f,\n", l, label_name(c, j), CATS[c].name, freq[l], freq[l],
                           cover[l]) &&
                 sb_printf(&cc, "%d,%d,%s,%.0f,%.6f\n", j + 1, l, label_name(c, j), freq[l], cover[l]);
        }
        if (ok) {
            snprintf(path, sizeof path, "%s/c_%s.csv", dir, CATS[c].name);
            st = gb__io_write_file(ctx, "csv", path, cc.p, cc.len);
        }
        free(cc.p);
        if (st) break;
    }
    if (!ok && !st) st = gb__err(ctx, GB_ERR_NOMEM, "concepts-gen: out of memory");
    if (!st) {
        snprintf(path, sizeof path, "%s/label.csv", dir);
        st = gb__io_write_file(ctx, "csv", path, lab.p, lab.len);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/category.csv", dir);
        st = gb__io_write_file(ctx, "csv", path, cat.p, cat.len);
    }
    free(lab.p);
    free(cat.p);
    if (!st) {   /* last: a dataset without index.csv is visibly incomplete */
        snprintf(path, sizeof path, "%s/index.csv", dir);
        st = gb__io_write_file(ctx, "csv", path, index.p, index.len);
    }
done:
    free(index.p);
    gb_image_free(img);
    free(cv.color);
    free(cv.texture);
    free(cv.object);
    free(cv.part);
    free(freq);
    free(cover);
    free(seen);
    return st;
}
