/* concepts_internal.h — helpers shared by src/concepts/: a seeded generator,
 * a small CSV reader, batches of Broden images, layer features. */
#ifndef GB_CONCEPTS_INTERNAL_H
#define GB_CONCEPTS_INTERNAL_H

#include "engine/ir.h"
#include "glassbox/concepts.h"

#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
static inline int gb__omp_thread(void) { return omp_get_thread_num(); }
#else
static inline int gb__omp_thread(void) { return 0; }
#endif

/* splitmix64: one 64-bit state, reproducible across platforms. */
typedef struct { uint64_t s; } gb__crng;
static inline uint64_t gb__crng_u64(gb__crng *g) {
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double gb__crng_unif(gb__crng *g) { return (double)(gb__crng_u64(g) >> 11) * 0x1.0p-53; }
static inline int gb__crng_below(gb__crng *g, int n) { return (int)(gb__crng_unif(g) * n); }

/* A parsed CSV file (RFC 4180 quoting): rows of fields, row 0 the header. */
typedef struct {
    int n_rows;
    int *n_fields;
    char ***fields;
} gb__csv;
gb_status gb__csv_read(gb_ctx *ctx, const char *path, gb__csv *out);
void gb__csv_free(gb__csv *c);
/* Column index of `name` in the header, -1 if absent. */
int gb__csv_col(const gb__csv *c, const char *name);

/* Images idx[0..n) of b prepared with pp into one (n, C, H, W) tensor. */
gb_status gb__broden_batch(gb_ctx *ctx, const gb_broden *b, const gb_preproc *pp, const int *idx, int n,
                           gb_tensor **out);

/* Bilinear upsampling weights, align_corners=False (torch's F.interpolate
 * and PIL's bilinear when enlarging): for output index o of n_out from
 * n_in, src = max(0, (o + 0.5) * n_in / n_out - 0.5), i0 = floor(src),
 * i1 = min(i0 + 1, n_in - 1), w1 = src - i0. */
typedef struct { int *i0, *i1; float *w1; int n; } gb__lerp;
gb_status gb__lerp_make(gb_ctx *ctx, int n_in, int n_out, gb__lerp *out);
void gb__lerp_free(gb__lerp *l);
/* out (H, W) = bilinear upsampling of in (h, w). */
void gb__upsample(const float *in, int w, const gb__lerp *ly, const gb__lerp *lx, float *out);

/* Item n of a (N, K, h, w) or (N, D) activation averaged over a grid so
 * that at most max_features values remain (each channel keeps gh x gw
 * cells, the largest grid that fits); writes *d features to out (may be
 * NULL to only get *d). */
void gb__pooled_features(const gb_tensor *a, int64_t n, int max_features, float *out, int64_t *d);

/* gb_linear_fit with per-row loss weights sw (n values, >= 0). */
gb_status gb__linear_fit_weighted(gb_ctx *ctx, const float *X, const int *y, const float *sw, int64_t n, int64_t d,
                                  const gb_linear_opts *o, float *w, float *b);

#endif
