/* sketch.c — a KLL quantile sketch (Karnin, Lang & Liberty, "Optimal
 * Quantile Approximation in Streams", FOCS 2016), for Network Dissection's
 * per-unit threshold T_k (the top-0.5% quantile of all activations) without
 * holding the activations in memory. NetDissect-Lite uses a similar
 * randomized compactor stack (util/vecquantile.py).
 *
 * Level h holds values of weight 2^h. Its capacity is k (2/3)^(H-1-h) (at
 * least 2) for H levels, so the sketch holds at most about 3k values. When
 * the total is over capacity, the lowest full level is sorted and every
 * other value (odd or even positions by a seeded coin) moves up with twice
 * the weight; the rank of any value changes by at most 2^h per compaction,
 * which gives the ~1.7/k normalized rank error of the paper's analysis. */
#include "concepts/concepts_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GB__KLL_MAX_LEVELS 56

typedef struct { float *v; int64_t n, cap; } level;

struct gb_qsketch {
    gb_ctx *ctx;
    int k;
    int H;
    level lv[GB__KLL_MAX_LEVELS];
    int64_t count, size;
    int64_t zeros;           /* exact zeros, counted apart (most of a ReLU's output) */
    uint32_t *scratch;       /* radix sort buffer */
    int64_t scratch_cap;
    gb__crng rng;
};

gb_status gb_qsketch_create(gb_ctx *ctx, int k, uint64_t seed, gb_qsketch **out) {
    *out = NULL;
    if (k < 8 || k > (1 << 24)) return gb__err(ctx, GB_ERR_ARG, "quantile sketch: k must be 8..2^24 (got %d)", k);
    gb_qsketch *q = calloc(1, sizeof *q);
    if (!q) return gb__err(ctx, GB_ERR_NOMEM, "quantile sketch: out of memory");
    q->ctx = ctx;
    q->k = k;
    q->H = 1;
    q->rng.s = seed ^ 0x51ED270B27E4C3A5ull;
    *out = q;
    return GB_OK;
}

void gb_qsketch_free(gb_qsketch *q) {
    if (!q) return;
    for (int h = 0; h < GB__KLL_MAX_LEVELS; h++) free(q->lv[h].v);
    free(q->scratch);
    free(q);
}

static int64_t capacity(const gb_qsketch *q, int h) {
    double c = q->k * pow(2.0 / 3.0, q->H - 1 - h);
    return c < 2 ? 2 : (int64_t)ceil(c);
}

static int reserve(level *l, int64_t n) {
    if (n <= l->cap) return 1;
    int64_t nc = l->cap ? l->cap * 2 : 64;
    while (nc < n) nc *= 2;
    float *nv = realloc(l->v, sizeof *nv * (size_t)nc);
    if (!nv) return 0;
    l->v = nv;
    l->cap = nc;
    return 1;
}

/* Floats as unsigned keys with the same order (IEEE 754: flip all bits
 * of negatives, the sign bit of the rest). */
static inline uint32_t fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u ^ ((u >> 31) ? 0xFFFFFFFFu : 0x80000000u);
}
static inline float funkey(uint32_t u) {
    u ^= (u >> 31) ? 0x80000000u : 0xFFFFFFFFu;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Sort n floats: insertion sort when short, else an LSD radix sort on the
 * keys (4 passes of 8 bits) — compaction is the sketch's hot loop and
 * qsort's indirect comparisons dominated the dissection's first pass. */
static int sort_floats(gb_qsketch *q, float *v, int64_t n) {
    if (n < 48) {
        for (int64_t i = 1; i < n; i++) {
            float x = v[i];
            int64_t j = i;
            while (j > 0 && v[j - 1] > x) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        return 1;
    }
    if (q->scratch_cap < 2 * n) {
        uint32_t *ns = realloc(q->scratch, sizeof *ns * (size_t)(2 * n));
        if (!ns) return 0;
        q->scratch = ns;
        q->scratch_cap = 2 * n;
    }
    uint32_t *a = q->scratch, *b = q->scratch + n;
    for (int64_t i = 0; i < n; i++) a[i] = fkey(v[i]);
    for (int shift = 0; shift < 32; shift += 8) {
        int64_t cnt[257] = {0};
        for (int64_t i = 0; i < n; i++) cnt[((a[i] >> shift) & 255) + 1]++;
        if (cnt[((a[0] >> shift) & 255) + 1] == n) continue;   /* all equal in this digit */
        for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
        for (int64_t i = 0; i < n; i++) b[cnt[(a[i] >> shift) & 255]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    for (int64_t i = 0; i < n; i++) v[i] = funkey(a[i]);
    return 1;
}

/* Compact the lowest level at or over its capacity. */
static int compress(gb_qsketch *q) {
    for (int h = 0; h < q->H; h++) {
        level *l = &q->lv[h];
        if (l->n < capacity(q, h)) continue;
        if (h + 1 == q->H) {
            if (q->H == GB__KLL_MAX_LEVELS) return 1;   /* 2^56 values: never */
            q->H++;
        }
        level *up = &q->lv[h + 1];
        int64_t n = l->n & ~(int64_t)1;   /* an odd value out stays here */
        if (!reserve(up, up->n + n / 2) || !sort_floats(q, l->v, n)) return 0;
        int64_t off = (int64_t)(gb__crng_u64(&q->rng) & 1);
        for (int64_t i = off; i < n; i += 2) up->v[up->n++] = l->v[i];
        if (l->n & 1) l->v[0] = l->v[l->n - 1];
        l->n -= n;
        q->size -= n / 2;
        /* Lower levels' capacities shrink as levels are added: give the
         * memory back, so the allocation stays O(k), not O(k log n). */
        int64_t want = 2 * capacity(q, h) + 64;
        if (l->cap > 2 * want) {
            float *nv = realloc(l->v, sizeof *nv * (size_t)want);
            if (nv) {
                l->v = nv;
                l->cap = want;
            }
        }
        if (q->scratch_cap > 4 * (int64_t)q->k + 256) {
            free(q->scratch);
            q->scratch = NULL;
            q->scratch_cap = 0;
        }
        return 1;
    }
    return 1;
}

static int64_t total_capacity(const gb_qsketch *q) {
    int64_t t = 0;
    for (int h = 0; h < q->H; h++) t += capacity(q, h);
    return t;
}

gb_status gb_qsketch_add(gb_qsketch *q, const float *v, int64_t n, int64_t stride) {
    level *l0 = &q->lv[0];
    int64_t tc = total_capacity(q);
    for (int64_t i = 0; i < n; i++) {
        float x = v[i * stride];
        if (x != x) continue;
        q->count++;
        if (x == 0.0f) {   /* exact, and no compaction */
            q->zeros++;
            continue;
        }
        if (l0->n == l0->cap && !reserve(l0, l0->n + 1)) goto oom;
        l0->v[l0->n++] = x;
        if (++q->size > tc) {
            int H = q->H;
            if (!compress(q)) goto oom;
            if (q->H != H) tc = total_capacity(q);
        }
    }
    return GB_OK;
oom:
    return gb__err(q->ctx, GB_ERR_NOMEM, "quantile sketch: out of memory");
}

typedef struct { float v; int64_t w; } weighted;
static int cmp_weighted(const void *a, const void *b) {
    float x = ((const weighted *)a)->v, y = ((const weighted *)b)->v;
    return (x > y) - (x < y);
}

double gb_qsketch_quantile(gb_qsketch *q, double r) {
    if (!q->count) return NAN;
    weighted *all = malloc(sizeof *all * (size_t)(q->size + 2));
    if (!all) return NAN;
    int64_t n = 0, W = 0;
    if (q->zeros) {
        all[n++] = (weighted){0.0f, q->zeros};
        W += q->zeros;
    }
    for (int h = 0; h < q->H; h++)
        for (int64_t i = 0; i < q->lv[h].n; i++) {
            all[n++] = (weighted){q->lv[h].v[i], (int64_t)1 << h};
            W += (int64_t)1 << h;
        }
    qsort(all, (size_t)n, sizeof *all, cmp_weighted);
    /* The smallest value whose cumulative weight reaches r * W (the
     * "lower" empirical quantile; r = 1 gives the maximum). */
    double target = r * (double)W;
    int64_t cum = 0;
    double res = all[n - 1].v;
    for (int64_t i = 0; i < n; i++) {
        cum += all[i].w;
        if ((double)cum >= target) {
            res = all[i].v;
            break;
        }
    }
    free(all);
    return res;
}

int64_t gb_qsketch_count(const gb_qsketch *q) { return q->count; }
int64_t gb_qsketch_retained(const gb_qsketch *q) { return q->size; }
