/* cli_common.c — model + sidecar loading, the default model, image lists and
 * output bookkeeping for the commands that take images (predict, explain). */
#include "cli/cli_common.h"
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef GB_SOURCE_DIR
#define GB_SOURCE_DIR ""
#endif

#define DEFAULT_MODEL_REL "models/default/fashion_cnn.onnx"

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

bool gb_cli_default_model(char *buf, size_t cap) {
    const char *env = getenv("GLASSBOX_MODEL");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return true;
    }
    char exe[GB_CLI_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, cap, "%s/../%s", exe, DEFAULT_MODEL_REL);
            if (is_file(buf)) return true;
            snprintf(buf, cap, "%s/../share/glassbox/%s", exe, DEFAULT_MODEL_REL);
            if (is_file(buf)) return true;
        }
    }
    if (GB_SOURCE_DIR[0]) {
        snprintf(buf, cap, "%s/%s", GB_SOURCE_DIR, DEFAULT_MODEL_REL);
        if (is_file(buf)) return true;
    }
    return false;
}

/* Is graph output 0 produced by a Softmax node? Then its values are already
 * probabilities (predict must not apply softmax twice). */
static bool output_is_softmax(const gb_model *m) {
    gb_value_info ov;
    if (gb_model_output(m, 0, &ov)) return false;
    for (int i = gb_model_num_nodes(m) - 1; i >= 0; i--) {
        gb_node_info ni;
        if (gb_model_node(m, i, &ni)) continue;
        for (int k = 0; k < ni.n_outputs; k++)
            if (!strcmp(ni.outputs[k], ov.name)) return !strcmp(ni.op_type, "Softmax");
    }
    return false;
}

bool gb_cli_model_open(gb_ctx *ctx, const char *path, const char *const *overrides, int n_overrides,
                       bool need_image, gb_cli_model *cm) {
    memset(cm, 0, sizeof *cm);
    if (!path) {
        if (!gb_cli_default_model(cm->path, sizeof cm->path)) {
            gb_cli_error("no --model given and the default model is missing (looked for %s; set GLASSBOX_MODEL "
                         "or train it with models/train_default.py)", cm->path);
            return false;
        }
        cm->is_default = true;
    } else {
        snprintf(cm->path, sizeof cm->path, "%s", path);
    }
    if (gb_model_load(ctx, cm->path, &cm->m)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        return false;
    }
    gb_value_info in;
    if (gb_model_num_inputs(cm->m) >= 1 && !gb_model_input(cm->m, 0, &in) && in.ndim >= 1 && in.dims[0] > 0)
        cm->static_batch = in.dims[0];
    cm->ends_in_softmax = output_is_softmax(cm->m);
    gb_status st = gb_sidecar_for_model(ctx, cm->m, cm->path, &cm->sc);
    if (st) {
        /* A model whose input is not an image has no preprocessing; that is
         * only an error when images are needed or a sidecar exists. */
        char scp[GB_CLI_PATH_MAX];
        bool has_file = !gb_sidecar_path(ctx, cm->path, scp, sizeof scp) && is_file(scp);
        if (need_image || has_file || st != GB_ERR_UNSUPPORTED) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            gb_cli_model_close(cm);
            return false;
        }
        cm->sc = NULL;
        return true;
    }
    cm->pp = cm->sc->input;
    for (int i = 0; i < n_overrides; i++) {
        char key[64];
        const char *eq = strchr(overrides[i], '=');
        if (!eq || eq == overrides[i] || (size_t)(eq - overrides[i]) >= sizeof key) {
            gb_cli_error("--preproc '%s': expected KEY=VALUE", overrides[i]);
            gb_cli_model_close(cm);
            return false;
        }
        memcpy(key, overrides[i], (size_t)(eq - overrides[i]));
        key[eq - overrides[i]] = 0;
        if (gb_preproc_set(ctx, &cm->pp, key, eq + 1)) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            gb_cli_model_close(cm);
            return false;
        }
    }
    if (gb_preproc_check(ctx, &cm->pp) || gb_preproc_match_model(ctx, &cm->pp, cm->m, NULL)) {
        if (need_image) {
            gb_cli_error("%s", gb_ctx_errmsg(ctx));
            gb_cli_model_close(cm);
            return false;
        }
        return true;
    }
    cm->has_pp = true;
    return true;
}

void gb_cli_model_close(gb_cli_model *cm) {
    gb_sidecar_free(cm->sc);
    gb_model_free(cm->m);
    cm->sc = NULL;
    cm->m = NULL;
}

const char *gb_cli_label(const gb_cli_model *cm, int64_t k) {
    if (!cm->sc || k < 0 || k >= cm->sc->n_labels) return NULL;
    return cm->sc->labels[k];
}

void gb_cli_probs(const gb_cli_model *cm, const float *logits, int64_t n, double *p) {
    if (cm->ends_in_softmax) {
        for (int64_t i = 0; i < n; i++) p[i] = logits[i];
        return;
    }
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    for (int64_t i = 0; i < n; i++) s += p[i] = exp((double)logits[i] - mx);
    for (int64_t i = 0; i < n; i++) p[i] /= s;
}

/* ---- lists ------------------------------------------------------------------------ */

bool gb_cli_list_add(gb_cli_list *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    size_t len = strlen(s);
    char *c = malloc(len + 1);
    if (!c) return false;
    memcpy(c, s, len + 1);
    l->v[l->n++] = c;
    return true;
}

void gb_cli_list_free(gb_cli_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool has_image_ext(const char *name) {
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm"};
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i])) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The image files of a directory, sorted by name, appended to out. */
static bool list_dir(const char *dir, gb_cli_list *out, int *added) {
    DIR *d = opendir(dir);
    if (!d) {
        gb_cli_error("cannot open directory %s: %s", dir, strerror(errno));
        return false;
    }
    gb_cli_list names = {0};
    struct dirent *ent;
    bool ok = true;
    while (ok && (ent = readdir(d)))
        if (ent->d_name[0] != '.' && has_image_ext(ent->d_name)) ok = gb_cli_list_add(&names, ent->d_name);
    closedir(d);
    if (names.n) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    char p[GB_CLI_PATH_MAX];
    for (int i = 0; ok && i < names.n; i++) {
        size_t len = strlen(dir);
        snprintf(p, sizeof p, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", names.v[i]);
        if (is_file(p)) {
            ok = gb_cli_list_add(out, p);
            ++*added;
        }
    }
    gb_cli_list_free(&names);
    if (!ok) gb_cli_error("out of memory");
    return ok;
}

bool gb_cli_collect_images(const char *const *args, int n, gb_cli_list *out) {
    for (int i = 0; i < n; i++) {
        if (is_dir(args[i])) {
            int added = 0;
            if (!list_dir(args[i], out, &added)) return false;
            if (!added) {
                gb_cli_error("no image files (.png .jpg .jpeg .bmp .pgm .ppm) in directory %s", args[i]);
                return false;
            }
        } else {
            struct stat st;
            if (stat(args[i], &st) != 0) {
                gb_cli_error("image: %s: %s", args[i], strerror(errno));
                return false;
            }
            if (!gb_cli_list_add(out, args[i])) {
                gb_cli_error("out of memory");
                return false;
            }
        }
    }
    return true;
}

bool gb_cli_default_sample(const gb_cli_model *cm, char *buf, size_t cap) {
    char dir[GB_CLI_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cm->path);
    char *slash = strrchr(dir, '/');
    if (slash) snprintf(slash + 1, sizeof dir - (size_t)(slash + 1 - dir), "samples");
    else snprintf(dir, sizeof dir, "samples");
    gb_cli_list l = {0};
    int added = 0;
    bool ok = is_dir(dir) && list_dir(dir, &l, &added) && added > 0;
    if (ok) snprintf(buf, cap, "%s", l.v[0]);
    gb_cli_list_free(&l);
    return ok;
}

void gb_cli_stem(const char *path, char *buf, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, cap, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
}

/* ---- outputs ------------------------------------------------------------------------ */

bool gb_cli_outputs_mkdir(gb_cli_outputs *o, const char *dir) {
    if (is_dir(dir)) return true;
    if (mkdir(dir, 0777) != 0) {
        gb_cli_error("cannot create directory %s: %s", dir, strerror(errno));
        return false;
    }
    snprintf(o->made_dir, sizeof o->made_dir, "%s", dir);
    return true;
}

bool gb_cli_outputs_add(gb_cli_outputs *o, const char *path) { return gb_cli_list_add(&o->files, path); }

void gb_cli_outputs_rollback(gb_cli_outputs *o) {
    for (int i = 0; i < o->files.n; i++) unlink(o->files.v[i]);
    if (o->made_dir[0]) rmdir(o->made_dir);
    gb_cli_outputs_free(o);
}

void gb_cli_outputs_free(gb_cli_outputs *o) {
    gb_cli_list_free(&o->files);
    o->made_dir[0] = 0;
}
