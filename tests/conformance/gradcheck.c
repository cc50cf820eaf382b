/*
 * gradcheck.c — finite-difference check of every op's backward, on ONNX's
 * own backend test cases (the same ~420 single-op models the forward
 * conformance runs: strided/padded/grouped/dilated convolutions, pooling
 * with pads and ceil_mode, broadcasting binary ops, reductions, softmax...).
 *
 * For each case and each float output y, draw a random w and take the scalar
 * L = <w, y>; backward seeded with w gives dL/dx for every float input x.
 * For three random directions v per input, compare the directional
 * derivative <dL/dx, v> with the central difference
 *     (L(x + h v) - L(x - h v)) / 2h,   h = 1e-2 * rms(x) (at least 1e-3).
 * A check passes when |fd - an| <= 1e-2 * (|fd| + |an|) + 1e-4 * ||dL/dx|| ||v||:
 * loose enough for float32 rounding, tight enough that a wrong index, sign
 * or scale fails by orders of magnitude.
 *
 * Cases in gradcheck_skip.txt are skipped with their stated reason (inputs
 * sitting on kinks, non-differentiable ops).
 *
 * usage: gb_gradcheck [FILTER...]
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine/ir.h"
#include "onnx/onnx_load.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_CASES 4096
#define MAX_IO 16

typedef struct {
    char dir[2048];
    char name[256];
} gcase;

/* xorshift64*: deterministic per case, no global state. */
static double rnd(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static float gauss(uint64_t *s) {
    double u = rnd(s) + 1e-12, v = rnd(s);
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int read_pb(gb_ctx *ctx, const char *path, gb_tensor **out) {
    void *buf;
    size_t len;
    if (gb__read_file(ctx, path, &buf, &len)) return 1;
    gb_status st = gb__tensor_parse_pb(ctx, buf, len, path, out, NULL, 0);
    free(buf);
    return st != GB_OK;
}

/* L = sum over float outputs of <w_k, y_k>, in double. */
static double loss(gb_session *s, int n_out, gb_tensor **w, const gb_tensor *const *in, int n_in, bool *ok) {
    *ok = gb_session_run(s, in, n_in) == GB_OK;
    double L = 0;
    for (int k = 0; ok && k < n_out; k++) {
        if (!w[k]) continue;
        const gb_tensor *y = gb_session_output(s, k);
        for (int64_t i = 0; i < y->numel; i++) L += (double)((float *)w[k]->data)[i] * ((float *)y->data)[i];
    }
    return L;
}

static void check_case(void **state) {
    const gcase *gc = *state;
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;
    char path[4096];
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    snprintf(path, sizeof path, "%s/model.onnx", gc->dir);
    if (gb_model_load(ctx, path, &m)) fail_msg("%s: %s", gc->name, gb_ctx_errmsg(ctx));
    assert_int_equal(gb_session_create(m, &s), GB_OK);
    gb_session_keep_activations(s, 1);
    gb_tensor *in[MAX_IO] = {0};
    int n_in = 0;
    for (; n_in < MAX_IO; n_in++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", gc->dir, n_in);
        if (!exists(path)) break;
        if (read_pb(ctx, path, &in[n_in])) fail_msg("%s: %s", gc->name, gb_ctx_errmsg(ctx));
    }
    const gb_tensor *const *cin = (const gb_tensor *const *)in;
    if (gb_session_run(s, cin, n_in)) fail_msg("%s: %s", gc->name, gb_ctx_errmsg(ctx));

    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (const char *p = gc->name; *p; p++) seed = (seed ^ (unsigned char)*p) * 1099511628211ull;
    int n_out = gb_model_num_outputs(m);
    gb_tensor *w[MAX_IO] = {0};
    gb_tensor *seedt = NULL;
    int checked = 0;
    for (int k = 0; k < n_out && k < MAX_IO; k++) {
        const gb_tensor *y = gb_session_output(s, k);
        if (y->dtype != GB_DTYPE_F32 || y->numel == 0) continue;
        gb_tensor_create(ctx, GB_DTYPE_F32, y->ndim, y->dims, &w[k]);
        for (int64_t i = 0; i < y->numel; i++) ((float *)w[k]->data)[i] = gauss(&seed);
    }
    /* One backward per output would need a sum of seeds; instead differentiate
     * each float output separately and add the input gradients. */
    gb_tensor *grad[MAX_IO] = {0};
    for (int i = 0; i < n_in; i++)
        if (in[i]->dtype == GB_DTYPE_F32) gb_tensor_create(ctx, GB_DTYPE_F32, in[i]->ndim, in[i]->dims, &grad[i]);
    bool any_path = false, has_g[MAX_IO] = {0};
    for (int k = 0; k < n_out && k < MAX_IO; k++) {
        if (!w[k]) continue;
        gb_value_info ov;
        gb_model_output(m, k, &ov);
        gb_seed sd = {.tensor = ov.name, .seed = w[k]};
        gb_status st = gb_session_backward(s, &sd, NULL, 0);
        if (st == GB_ERR_ARG && strstr(gb_ctx_errmsg(ctx), "constant")) continue; /* output is a constant */
        if (st) fail_msg("%s: backward: %s", gc->name, gb_ctx_errmsg(ctx));
        for (int i = 0; i < n_in; i++) {
            gb_value_info iv;
            gb_model_input(m, i, &iv);
            const gb_tensor *g = gb_session_grad(s, iv.name);
            if (!g || !grad[i]) continue;
            any_path = has_g[i] = true;
            for (int64_t e = 0; e < g->numel; e++) ((float *)grad[i]->data)[e] += ((float *)g->data)[e];
        }
    }
    for (int i = 0; any_path && i < n_in; i++) {
        /* Inputs without a gradient (constants such as Resize's scales,
         * which are planned by value) are not perturbed. */
        if (!has_g[i] || in[i]->numel == 0) continue;
        double rms = 0, gn = 0;
        for (int64_t e = 0; e < in[i]->numel; e++) {
            rms += (double)((float *)in[i]->data)[e] * ((float *)in[i]->data)[e];
            gn += (double)((float *)grad[i]->data)[e] * ((float *)grad[i]->data)[e];
        }
        rms = sqrt(rms / (double)in[i]->numel);
        gn = sqrt(gn);
        double h = 1e-2 * (rms > 0.1 ? rms : 0.1);
        gb_tensor *x0, *v;
        gb_tensor_clone(ctx, in[i], &x0);
        gb_tensor_create(ctx, GB_DTYPE_F32, in[i]->ndim, in[i]->dims, &v);
        for (int trial = 0; trial < 3; trial++) {
            double vn = 0, an = 0;
            for (int64_t e = 0; e < v->numel; e++) {
                float r = gauss(&seed);
                ((float *)v->data)[e] = r;
                vn += (double)r * r;
                an += (double)r * ((float *)grad[i]->data)[e];
            }
            vn = sqrt(vn);
            /* Escape hatch at kinks: when the step crosses a kink (two
             * nearly equal maxima in a pooling window, a variance near
             * zero), retry with steps 10x and 100x smaller. A wrong
             * gradient fails at every step. */
            bool ok1, ok2, pass = false;
            double fd = 0, tol = 0;
            for (int sc = 0; sc < 3 && !pass; sc++) {
                double hh = h * (sc == 0 ? 1.0 : sc == 1 ? 0.1 : 0.01);
                for (int64_t e = 0; e < v->numel; e++)
                    ((float *)in[i]->data)[e] = ((float *)x0->data)[e] + (float)hh * ((float *)v->data)[e];
                double Lp = loss(s, n_out, w, cin, n_in, &ok1);
                for (int64_t e = 0; e < v->numel; e++)
                    ((float *)in[i]->data)[e] = ((float *)x0->data)[e] - (float)hh * ((float *)v->data)[e];
                double Lm = loss(s, n_out, w, cin, n_in, &ok2);
                memcpy(in[i]->data, x0->data, sizeof(float) * (size_t)v->numel);
                if (!ok1 || !ok2) fail_msg("%s: perturbed run failed: %s", gc->name, gb_ctx_errmsg(ctx));
                fd = (Lp - Lm) / (2 * hh);
                tol = 1e-2 * (fabs(fd) + fabs(an)) + 1e-4 * gn * vn + 1e-6;
                pass = fabs(fd - an) <= tol;
            }
            if (!pass)
                fail_msg("%s: input %d direction %d: backward gives %.6g, finite difference %.6g (tol %.2g)", gc->name,
                         i, trial, an, fd, tol);
            checked++;
        }
        gb_tensor_free(x0);
        gb_tensor_free(v);
    }
    print_message("%s: %d directional checks\n", gc->name, checked);
    for (int i = 0; i < MAX_IO; i++) {
        gb_tensor_free(in[i]);
        gb_tensor_free(w[i]);
        gb_tensor_free(grad[i]);
    }
    gb_tensor_free(seedt);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool listed(char **list, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], name)) return true;
    return false;
}

static int read_list(const char *path, char **out, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < cap) {
        char name[512];
        if (line[0] == '#' || sscanf(line, "%511s", name) != 1) continue;
        out[n++] = strdup(name);
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    const char *data = "/usr/share/libonnx-testdata/data";
    const char *src = getenv("GB_SOURCE_DIR");
    char p[1024];
    static char *unsup[MAX_CASES], *skip[MAX_CASES];
    snprintf(p, sizeof p, "%s/tests/conformance/expected_unsupported.txt", src ? src : ".");
    int n_unsup = read_list(p, unsup, MAX_CASES);
    snprintf(p, sizeof p, "%s/tests/conformance/gradcheck_skip.txt", src ? src : ".");
    int n_skip = read_list(p, skip, MAX_CASES);
    if (n_unsup < 0 || n_skip < 0) {
        fprintf(stderr, "gb_gradcheck: cannot read the case lists under %s/tests/conformance\n", src ? src : ".");
        return 2;
    }
    static const char *const suites[] = {"node", "pytorch-converted", "pytorch-operator"};
    gcase *cases = calloc(MAX_CASES, sizeof *cases);
    struct CMUnitTest *tests = calloc(MAX_CASES, sizeof *tests);
    int n = 0, skipped = 0;
    for (int si = 0; si < 3; si++) {
        char sdir[1024];
        snprintf(sdir, sizeof sdir, "%s/%s", data, suites[si]);
        DIR *d = opendir(sdir);
        if (!d) return 2;
        char *names[MAX_CASES];
        int nn = 0;
        struct dirent *e;
        while ((e = readdir(d)) && nn < MAX_CASES)
            if (e->d_name[0] != '.') names[nn++] = strdup(e->d_name);
        closedir(d);
        qsort(names, (size_t)nn, sizeof names[0], cmp_str);
        for (int k = 0; k < nn; k++) {
            char full[512];
            snprintf(full, sizeof full, "%s/%.200s", suites[si], names[k]);
            bool keep = argc < 2;
            for (int f = 1; f < argc && !keep; f++) keep = strstr(names[k], argv[f]) != NULL;
            if (keep && !listed(unsup, n_unsup, full)) {
                if (listed(skip, n_skip, full)) {
                    skipped++;
                } else if (n < MAX_CASES) {
                    snprintf(cases[n].dir, sizeof cases[n].dir, "%s/%.255s", sdir, names[k]);
                    snprintf(cases[n].name, sizeof cases[n].name, "%.255s", full);
                    tests[n] = (struct CMUnitTest){.name = cases[n].name, .test_func = check_case,
                                                   .initial_state = &cases[n]};
                    n++;
                }
            }
            free(names[k]);
        }
    }
    printf("gb_gradcheck: %d cases, %d skipped (gradcheck_skip.txt)\n", n, skipped);
    int failed = _cmocka_run_group_tests("gradcheck", tests, (size_t)n, NULL, NULL);
    for (int i = 0; i < n_unsup; i++) free(unsup[i]);
    for (int i = 0; i < n_skip; i++) free(skip[i]);
    free(cases);
    free(tests);
    return failed ? 1 : 0;
}
