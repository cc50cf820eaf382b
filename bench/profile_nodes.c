/*
 * profile_nodes.c — where a forward pass spends its time, node by node.
 *
 * The public API times whole forwards only, so this file (used by
 * bench_forward --profile, never by the library) includes the engine's
 * private headers and repeats the loop of gb_session_run (engine/session.c)
 * with a clock around each kernel call. Keep the two loops in step: folded
 * nodes are skipped, alias (view) nodes only forward their input pointer.
 * One gb_session_run first binds the inputs and sets OpenBLAS's threads.
 */
#include "profile_nodes.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/session.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

typedef struct {
    int node;
    double ms; /* mean over runs */
} node_time;

static int by_time_desc(const void *a, const void *b) {
    double x = ((const node_time *)a)->ms, y = ((const node_time *)b)->ms;
    return (x < y) - (x > y);
}

typedef struct {
    const char *op;
    int count;
    double ms, flops;
} op_time;

static int op_by_time_desc(const void *a, const void *b) {
    double x = ((const op_time *)a)->ms, y = ((const op_time *)b)->ms;
    return (x < y) - (x > y);
}

static void shape_of(const gb_tensor *t, char *buf, size_t cap) {
    if (t) gb_shape_str(t->ndim, t->dims, buf, cap);
    else snprintf(buf, cap, "-");
}

gb_status gb_bench_profile(gb_session *s, const gb_tensor *const *inputs, int runs, double forward_ms, FILE *out) {
    gb_status st = gb_session_run(s, inputs, 1);
    if (st) return st;
    const gb_model *m = s->m;
    int max_io = 1;
    for (int i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].n_in > max_io) max_io = m->nodes[i].n_in;
        if (m->nodes[i].n_out > max_io) max_io = m->nodes[i].n_out;
    }
    double *sum = calloc((size_t)m->n_nodes, sizeof *sum);
    gb_tensor **in = calloc((size_t)max_io, sizeof *in), **outs = calloc((size_t)max_io, sizeof *outs);
    node_time *nt = calloc((size_t)m->n_nodes, sizeof *nt);
    op_time *ot = calloc((size_t)m->n_nodes, sizeof *ot);
    if (!sum || !in || !outs || !nt || !ot) {
        st = GB_ERR_NOMEM;
        goto done;
    }
    gb__exec ex = {.n_threads = s->ctx->n_threads, .ws = s->ws, .ws_size = s->ws_size};
    double total = 0;
    for (int r = 0; r < runs; r++) {
        double t_run = now_ms();
        for (int i = 0; i < m->n_nodes; i++) {
            const gb__node *n = &m->nodes[i];
            if (s->folded[i]) continue;
            if (n->op->alias) {
                s->t[n->out[0]].data = s->t[n->in[0]].data;
                continue;
            }
            for (int k = 0; k < n->n_in; k++) in[k] = n->in[k] >= 0 ? &s->t[n->in[k]] : NULL;
            for (int k = 0; k < n->n_out; k++) outs[k] = n->out[k] >= 0 ? &s->t[n->out[k]] : NULL;
            double t0 = now_ms();
            st = n->op->forward(n, (const gb_tensor *const *)in, outs, &ex);
            sum[i] += now_ms() - t0;
            if (st) goto done;
        }
        total += now_ms() - t_run;
    }

    /* Per node and per op type. */
    int n_nt = 0, n_ot = 0;
    double node_sum = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        if (s->folded[i] || n->op->alias) continue;
        double ms = sum[i] / runs;
        nt[n_nt++] = (node_time){i, ms};
        node_sum += ms;
        int k = 0;
        while (k < n_ot && strcmp(ot[k].op, n->op_type)) k++;
        if (k == n_ot) ot[n_ot++] = (op_time){n->op_type, 0, 0, 0};
        ot[k].count++;
        ot[k].ms += ms;
        ot[k].flops += s->flops[i];
    }
    qsort(nt, (size_t)n_nt, sizeof *nt, by_time_desc);
    qsort(ot, (size_t)n_ot, sizeof *ot, op_by_time_desc);

    fprintf(out, "profile   %d runs timed node by node: %.2f ms per forward (sum of nodes %.2f ms; "
                 "whole-forward median was %.2f ms)\n",
            runs, total / runs, node_sum, forward_ms);
    fprintf(out, "  %-20s %5s %10s %6s %9s %8s\n", "op type", "nodes", "ms", "%", "GFLOP", "GFLOP/s");
    for (int k = 0; k < n_ot; k++)
        fprintf(out, "  %-20s %5d %10.3f %5.1f%% %9.4f %8.1f\n", ot[k].op, ot[k].count, ot[k].ms,
                100.0 * ot[k].ms / node_sum, ot[k].flops * 1e-9, ot[k].ms > 0 ? ot[k].flops / ot[k].ms * 1e-6 : 0.0);
    fprintf(out, "  top nodes by time:\n");
    fprintf(out, "  %-28s %-10s %-16s %-16s %-16s %9s %6s %8s %8s\n", "node", "op", "input 0", "input 1", "output 0",
            "ms", "%", "GFLOP", "GFLOP/s");
    for (int j = 0; j < n_nt && j < 10; j++) {
        const gb__node *n = &m->nodes[nt[j].node];
        char s0[48], s1[48], so[48];
        shape_of(n->n_in > 0 && n->in[0] >= 0 ? &s->t[n->in[0]] : NULL, s0, sizeof s0);
        shape_of(n->n_in > 1 && n->in[1] >= 0 ? &s->t[n->in[1]] : NULL, s1, sizeof s1);
        shape_of(n->n_out > 0 && n->out[0] >= 0 ? &s->t[n->out[0]] : NULL, so, sizeof so);
        double f = s->flops[nt[j].node];
        fprintf(out, "  %-28.28s %-10.10s %-16s %-16s %-16s %9.3f %5.1f%% %8.4f %8.1f\n", n->name, n->op_type, s0, s1,
                so, nt[j].ms, 100.0 * nt[j].ms / node_sum, f * 1e-9, nt[j].ms > 0 ? f / nt[j].ms * 1e-6 : 0.0);
    }
done:
    free(sum);
    free(in);
    free(outs);
    free(nt);
    free(ot);
    return st;
}
