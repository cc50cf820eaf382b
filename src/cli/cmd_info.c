/* cmd_info.c — `glassbox info MODEL`: what a model takes, gives and does. */
#include "cli/cli.h"
#include "cli/cli_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox info [MODEL] [--shape DIMS] [--batch N]   (default: the embedded default model)\n"
            "Prints the inputs, outputs and every node (op type, ONNX name, output tensor names and\n"
            "shapes, parameters, FLOPs) of an ONNX model. Free input dimensions are planned as\n"
            "--batch (default 1) for the first dimension; --shape 1x3x224x224 sets the whole input shape.\n"
            "Nodes marked [folded] are shape arithmetic evaluated once at plan time.\n");
}

static void print_vi(const char *role, const gb_value_info *v) {
    char shp[160];
    if (v->ndim < 0) snprintf(shp, sizeof shp, "unknown rank");
    else gb_shape_str(v->ndim, v->dims, shp, sizeof shp);
    printf("%-7s %-24s %-8s %s\n", role, v->name, gb_dtype_name(v->dtype), shp);
}

static void human(double x, char *buf, size_t cap) {
    const char *u[] = {"", "K", "M", "G", "T"};
    int k = 0;
    while (x >= 1000 && k < 4) {
        x /= 1000;
        k++;
    }
    snprintf(buf, cap, k ? "%.2f%s" : "%.0f%s", x, u[k]);
}

int gb_cmd_info(int argc, char **argv) {
    const char *path = NULL, *shape = NULL;
    int batch = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(stdout);
            return GB_EXIT_OK;
        } else if (!strcmp(argv[i], "--shape")) {
            if (!(shape = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--batch")) {
            const char *v = gb_cli_value(argc, argv, &i);
            if (!v) return GB_EXIT_USAGE;
            char *end;
            long b = strtol(v, &end, 10);
            if (*end || b < 1 || b > 1 << 20) {
                gb_cli_error("--batch: '%s' is not a positive integer", v);
                return GB_EXIT_USAGE;
            }
            batch = (int)b;
        } else if (argv[i][0] == '-') {
            gb_cli_error("info: unknown option '%s'", argv[i]);
            return GB_EXIT_USAGE;
        } else if (!path) {
            path = argv[i];
        } else {
            gb_cli_error("info: one model at a time ('%s' is extra)", argv[i]);
            return GB_EXIT_USAGE;
        }
    }
    char default_model[4096];
    if (!path && gb_cli_default_model(default_model, sizeof default_model)) path = default_model;
    if (!path) {
        gb_cli_error("info: a MODEL is required (no default model found; glassbox info --help)");
        return GB_EXIT_USAGE;
    }
    gb_ctx *ctx = NULL;
    gb_model *m = NULL;
    gb_session *s = NULL;
    gb_tensor *inputs[16] = {0};
    int rc = GB_EXIT_FAIL;
    if (gb_ctx_create(&ctx)) return GB_EXIT_FAIL;
    if (gb_model_load(ctx, path, &m)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto out;
    }
    int ni = gb_model_num_inputs(m), no = gb_model_num_outputs(m);
    if (ni > 16) {
        gb_cli_error("%s: %d inputs (at most 16 supported by the CLI)", path, ni);
        goto out;
    }
    printf("model   %s (opset %d, %d nodes, %lld parameters)\n", path, gb_model_opset(m), gb_model_num_nodes(m),
           (long long)gb_model_param_count(m));
    gb_value_info v;
    for (int i = 0; i < ni; i++)
        if (!gb_model_input(m, i, &v)) print_vi("input", &v);
    for (int i = 0; i < no; i++)
        if (!gb_model_output(m, i, &v)) print_vi("output", &v);
    if ((rc = gb_cli_dummy_inputs(ctx, m, shape, batch, inputs)) != GB_EXIT_OK) goto out;
    rc = GB_EXIT_FAIL;
    if (gb_session_create(m, &s) || gb_session_plan(s, (const gb_tensor *const *)inputs, ni)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto out;
    }
    printf("\n%-5s %-22s %-32s %-40s %10s %10s\n", "#", "op", "node", "outputs", "params", "FLOPs");
    double total_flops = 0;
    int n_folded = 0;
    for (int i = 0; i < gb_model_num_nodes(m); i++) {
        gb_node_info ni_;
        gb_node_plan np;
        gb_model_node(m, i, &ni_);
        gb_session_node_plan(s, i, &np);
        char outs[512] = "";
        size_t len = 0;
        for (int k = 0; k < ni_.n_outputs && len < sizeof outs; k++) {
            char shp[128] = "";
            if (k < 4) gb_shape_str(np.ndim[k], np.dims[k], shp, sizeof shp);
            int w = snprintf(outs + len, sizeof outs - len, "%s%s:%s", k ? " " : "", ni_.outputs[k], shp);
            if (w < 0) break;
            len += (size_t)w;
        }
        char p[32], fl[32];
        human((double)np.params, p, sizeof p);
        human(np.flops, fl, sizeof fl);
        printf("%-5d %-22s %-32s %-40s %10s %10s%s\n", i, ni_.op_type, ni_.name, outs, np.params ? p : "-",
               np.flops > 0 ? fl : "-", np.folded ? " [folded]" : "");
        total_flops += np.folded ? 0 : np.flops;
        n_folded += np.folded;
    }
    size_t reserved, total;
    gb_session_memory(s, &reserved, &total);
    char fl[32], r[32], t[32];
    human(total_flops, fl, sizeof fl);
    human((double)reserved, r, sizeof r);
    human((double)total, t, sizeof t);
    printf("\ntotal   %s FLOPs per run, %d of %d nodes folded at plan time, activations %sB "
           "(%sB before buffer reuse)\n",
           fl, n_folded, gb_model_num_nodes(m), r, t);
    rc = GB_EXIT_OK;
out:
    for (int i = 0; i < 16; i++) gb_tensor_free(inputs[i]);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
}

int gb_cli_dummy_inputs(gb_ctx *ctx, const gb_model *m, const char *shape, int batch, gb_tensor **inputs) {
    for (int i = 0; i < gb_model_num_inputs(m); i++) {
        gb_value_info v;
        gb_model_input(m, i, &v);
        int64_t dims[GB_MAX_DIMS];
        int nd = v.ndim;
        if (shape && i == 0) {
            nd = 0;
            const char *p = shape;
            while (*p && nd < GB_MAX_DIMS) {
                char *end;
                long long d = strtoll(p, &end, 10);
                if (end == p || d < 1) break;
                dims[nd++] = d;
                p = end;
                if (*p == 'x' || *p == ',') p++;
                else break;
            }
            if (*p || nd == 0) {
                gb_cli_error("--shape '%s': expected dimensions like 1x3x224x224", shape);
                return GB_EXIT_USAGE;
            }
        } else {
            if (nd < 0) {
                gb_cli_error("input '%s' has unknown rank: give --shape", v.name);
                return GB_EXIT_USAGE;
            }
            for (int k = 0; k < nd; k++) {
                dims[k] = v.dims[k];
                if (dims[k] < 0 && k == 0) dims[k] = batch;
                if (dims[k] < 0) {
                    gb_cli_error("input '%s' has a free dimension %d: give --shape", v.name, k);
                    return GB_EXIT_USAGE;
                }
            }
        }
        if (gb_tensor_create(ctx, v.dtype, nd, dims, &inputs[i])) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            return GB_EXIT_FAIL;
        }
    }
    return GB_EXIT_OK;
}
