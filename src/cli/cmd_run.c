/* cmd_run.c — `glassbox run`: forward a model on .npy inputs, write outputs. */
#include "cli/cli.h"
#include "cli/cli_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INPUTS 16

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox run [--model MODEL] --input x.npy [--input y.npy ...] --out-dir DIR [--threads N]\n"
            "Runs the model (default: the embedded default model) forward and writes every graph output\n"
            "as DIR/<output name>.npy.\n"
            "Inputs are given in the order of the model's inputs (see glassbox info); float64, int64\n"
            "and uint8 arrays are converted to float32 when the model expects float32.\n"
            "File names: every character of an output name other than A-Z a-z 0-9 . _ - becomes '_',\n"
            "a leading '.' becomes '_', and if two outputs map to one name the later ones get _2, _3...\n"
            "DIR is created if missing. Outputs are written to temporary names and renamed; on any\n"
            "failure nothing is left behind.\n");
}

static void safe_name(const char *in, char *out, size_t cap) {
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < cap; i++) {
        char c = in[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || (c == '.' && j > 0);
        out[j++] = ok ? c : '_';
    }
    if (!j && cap > 1) out[j++] = '_';
    out[j] = 0;
}

int gb_cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *out_dir = NULL;
    const char *in_paths[MAX_INPUTS];
    int n_in = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            return GB_EXIT_OK;
        } else if (!strcmp(a, "--model")) {
            if (!(model_path = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        } else if (!strcmp(a, "--input")) {
            const char *v = gb_cli_value(argc, argv, &i);
            if (!v) return GB_EXIT_USAGE;
            if (n_in == MAX_INPUTS) {
                gb_cli_error("run: at most %d inputs", MAX_INPUTS);
                return GB_EXIT_USAGE;
            }
            in_paths[n_in++] = v;
        } else if (!strcmp(a, "--out-dir")) {
            if (!(out_dir = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        } else if (!strcmp(a, "--threads")) {
            const char *v = gb_cli_value(argc, argv, &i);
            if (!v) return GB_EXIT_USAGE;
            threads = atoi(v);
            if (threads < 1) {
                gb_cli_error("--threads: '%s' is not a positive integer", v);
                return GB_EXIT_USAGE;
            }
        } else {
            gb_cli_error("run: unknown argument '%s' (glassbox run --help)", a);
            return GB_EXIT_USAGE;
        }
    }
    char default_model[4096];
    if (!model_path && gb_cli_default_model(default_model, sizeof default_model)) model_path = default_model;
    if (!model_path || !n_in || !out_dir) {
        gb_cli_error("run: --input and --out-dir are required, and --model when no default model is found "
                     "(glassbox run --help)");
        return GB_EXIT_USAGE;
    }

    gb_ctx *ctx = NULL;
    gb_model *m = NULL;
    gb_session *s = NULL;
    gb_tensor *inputs[MAX_INPUTS] = {0};
    char **written = NULL;
    int n_written = 0, rc = GB_EXIT_FAIL;
    if (gb_ctx_create(&ctx)) return GB_EXIT_FAIL;
    if (threads) gb_ctx_set_threads(ctx, threads);
    if (gb_model_load(ctx, model_path, &m)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto out;
    }
    if (n_in != gb_model_num_inputs(m)) {
        gb_cli_error("%s takes %d input%s, %d given", model_path, gb_model_num_inputs(m),
                     gb_model_num_inputs(m) == 1 ? "" : "s", n_in);
        goto out;
    }
    for (int i = 0; i < n_in; i++) {
        gb_value_info v;
        gb_model_input(m, i, &v);
        if (gb_npy_read(ctx, in_paths[i], &inputs[i])) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            goto out;
        }
        if (v.dtype == GB_DTYPE_F32 && inputs[i]->dtype != GB_DTYPE_F32 &&
            gb_tensor_cast(ctx, inputs[i], GB_DTYPE_F32)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            goto out;
        }
    }
    if (gb_session_create(m, &s) || gb_session_run(s, (const gb_tensor *const *)inputs, n_in)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto out;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        gb_cli_error("%s: cannot create directory: %s", out_dir, strerror(errno));
        goto out;
    }
    int no = gb_model_num_outputs(m);
    written = calloc((size_t)no + 1, sizeof *written);
    if (!written) goto out;
    for (int i = 0; i < no; i++) {
        gb_value_info v;
        gb_model_output(m, i, &v);
        char base[256];
        safe_name(v.name, base, sizeof base - 16);
        size_t plen = strlen(out_dir) + strlen(base) + 32;
        char *path = malloc(plen);
        if (!path) goto out;
        snprintf(path, plen, "%s/%s.npy", out_dir, base);
        for (int dup = 2;; dup++) { /* disambiguate names that collided */
            bool taken = false;
            for (int k = 0; k < n_written; k++) taken |= !strcmp(written[k], path);
            if (!taken) break;
            snprintf(path, plen, "%s/%s_%d.npy", out_dir, base, dup);
        }
        if (gb_npy_write(ctx, path, gb_session_output(s, i))) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            free(path);
            for (int k = 0; k < n_written; k++) unlink(written[k]);
            goto out;
        }
        written[n_written++] = path;
    }
    for (int k = 0; k < n_written; k++) {
        const gb_tensor *t = gb_session_output(s, k);
        char shp[128];
        gb_shape_str(t->ndim, t->dims, shp, sizeof shp);
        printf("%s  %s %s\n", written[k], gb_dtype_name(t->dtype), shp);
    }
    rc = GB_EXIT_OK;
out:
    for (int k = 0; k < n_written; k++) free(written[k]);
    free(written);
    for (int i = 0; i < MAX_INPUTS; i++) gb_tensor_free(inputs[i]);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return rc;
}
