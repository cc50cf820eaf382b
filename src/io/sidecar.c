/*
 * sidecar.c — MODEL.json beside MODEL.onnx: how the model wants its images
 * (a gb_preproc), its class labels and its task. The schema and the
 * validation rules are in include/glassbox/image.h (gb_sidecar).
 *
 * JSON is parsed by cJSON (Debian's libcjson). cJSON writes the position of
 * a parse error into a process-wide variable as well (cJSON_GetErrorPtr).
 * We never read it: the position comes from return_parse_end, on our
 * stack. Two threads that fail to parse at the same moment race on that
 * variable, which is harmless to us.
 *
 * Strictness: unknown or duplicated keys inside "input" are errors. A typo
 * like "means" would otherwise leave the default mean in place and shift
 * every input value without any sign. Unknown top-level keys are ignored so
 * the file can carry notes (models/train_default.py writes "dataset",
 * "test_accuracy", "trained_by").
 */
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SIDECAR_MAX_BYTES ((size_t)16 << 20)

/* Record "sidecar: <name>: <what>" and return st. */
static gb_status fail(gb_ctx *ctx, gb_status st, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static gb_status fail(gb_ctx *ctx, gb_status st, const char *name, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gb__err(ctx, st, "sidecar: %s: %s", name, what);
}

static const char *kind(const cJSON *j) {
    return cJSON_IsString(j)   ? "a string"
           : cJSON_IsNumber(j) ? "a number"
           : cJSON_IsBool(j)   ? "a boolean"
           : cJSON_IsNull(j)   ? "null"
           : cJSON_IsArray(j)  ? "an array"
           : cJSON_IsObject(j) ? "an object"
                               : "invalid";
}

gb_status gb_sidecar_path(gb_ctx *ctx, const char *model_path, char *buf, size_t cap) {
    if (!model_path || !buf || !cap)
        return gb__err(ctx, GB_ERR_ARG, "sidecar: path: NULL argument");
    size_t n = strlen(model_path);
    if (n >= 5 && (!strcmp(model_path + n - 5, ".onnx") || !strcmp(model_path + n - 5, ".ONNX")))
        n -= 5;
    if (n + 6 > cap) {
        buf[0] = 0;
        return gb__err(ctx, GB_ERR_ARG, "sidecar: %s: path too long", model_path);
    }
    memcpy(buf, model_path, n);
    memcpy(buf + n, ".json", 6);
    return GB_OK;
}

void gb_sidecar_free(gb_sidecar *s) {
    if (!s) return;
    for (int i = 0; i < s->n_labels; i++) free(s->labels[i]);
    free(s->labels);
    free(s);
}

/* ---- typed fields ------------------------------------------------------------------ */

/* A key of the top-level object that appears twice among those we read. */
static const char *duplicate_key(const cJSON *obj) {
    static const char *const keys[] = {"input", "labels", "task"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int n = 0;
        for (const cJSON *a = obj->child; a; a = a->next) n += a->string && !strcmp(a->string, keys[k]);
        if (n > 1) return keys[k];
    }
    return NULL;
}

static gb_status get_int(gb_ctx *ctx, const char *name, const cJSON *v, const char *key, int lo,
                         int hi, int *out) {
    if (!cJSON_IsNumber(v))
        return fail(ctx, GB_ERR_FORMAT, name, "%s must be an integer, not %s", key, kind(v));
    double d = v->valuedouble;
    if (d != floor(d) || d < lo || d > hi)
        return fail(ctx, GB_ERR_FORMAT, name, "%s = %g must be an integer in %d..%d", key, d, lo, hi);
    *out = (int)d;
    return GB_OK;
}

static gb_status get_enum(gb_ctx *ctx, const char *name, const cJSON *v, const char *key,
                          int (*parse)(const char *), const char *allowed, int *out) {
    if (!cJSON_IsString(v))
        return fail(ctx, GB_ERR_FORMAT, name, "%s must be a string (%s), not %s", key, allowed, kind(v));
    int i = parse(v->valuestring);
    if (i < 0)
        return fail(ctx, GB_ERR_FORMAT, name, "%s '%.40s' is not one of %s", key, v->valuestring,
                    allowed);
    *out = i;
    return GB_OK;
}

static gb_status get_positive(gb_ctx *ctx, const char *name, const cJSON *v, const char *key,
                              double *out) {
    if (!cJSON_IsNumber(v))
        return fail(ctx, GB_ERR_FORMAT, name, "%s must be a number, not %s", key, kind(v));
    if (!(isfinite(v->valuedouble) && v->valuedouble > 0))
        return fail(ctx, GB_ERR_FORMAT, name, "%s = %g must be a finite number > 0", key, v->valuedouble);
    *out = v->valuedouble;
    return GB_OK;
}

/* An array of exactly `channels` finite numbers (> 0 when positive). */
static gb_status get_list(gb_ctx *ctx, const char *name, const cJSON *v, const char *key,
                          int channels, bool positive, double *dst) {
    if (!cJSON_IsArray(v))
        return fail(ctx, GB_ERR_FORMAT, name, "%s must be an array of %d number%s, not %s", key,
                    channels, channels == 1 ? "" : "s", kind(v));
    int n = cJSON_GetArraySize(v);
    if (n != channels)
        return fail(ctx, GB_ERR_FORMAT, name, "%s has %d value%s, input.channels is %d", key, n,
                    n == 1 ? "" : "s", channels);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return fail(ctx, GB_ERR_FORMAT, name, "%s[%d] must be a finite number, not %s", key, i,
                        kind(e));
        if (positive && e->valuedouble <= 0)
            return fail(ctx, GB_ERR_FORMAT, name, "%s[%d] = %g must be > 0", key, i, e->valuedouble);
        dst[i] = e->valuedouble;
    }
    for (; i < GB_PREPROC_MAX_CHANNELS; i++) dst[i] = dst[0];
    return GB_OK;
}

/* ---- the "input" object --------------------------------------------------------------- */

static const char *const input_keys[] = {"name",   "layout", "channels",       "color",
                                         "height", "width",  "resize",         "resize_shorter",
                                         "scale",  "mean",   "std"};
#define N_INPUT_KEYS (int)(sizeof input_keys / sizeof input_keys[0])

/* Overlay the keys present in `in` on pp (which holds the defaults). */
static gb_status parse_input(gb_ctx *ctx, const char *name, const cJSON *in, gb_preproc *pp) {
    const cJSON *v[N_INPUT_KEYS] = {0};
    for (const cJSON *e = in->child; e; e = e->next) {
        int k = 0;
        while (k < N_INPUT_KEYS && strcmp(e->string, input_keys[k])) k++;
        if (k == N_INPUT_KEYS)
            return fail(ctx, GB_ERR_FORMAT, name,
                        "unknown key input.%.40s (name, layout, channels, color, height, width, "
                        "resize, resize_shorter, scale, mean, std)",
                        e->string);
        if (v[k]) return fail(ctx, GB_ERR_FORMAT, name, "duplicate key input.%s", input_keys[k]);
        v[k] = e;
    }
    enum { NAME, LAYOUT, CHANNELS, COLOR, HEIGHT, WIDTH, RESIZE, SHORTER, SCALE, MEAN, STD };
    gb_status st = GB_OK;
    int i;
    if (v[NAME]) {   /* already used to pick the model input; copied by the caller */
        if (!cJSON_IsString(v[NAME]))
            return fail(ctx, GB_ERR_FORMAT, name, "input.name must be a string, not %s", kind(v[NAME]));
    }
    if (v[LAYOUT]) {
        if ((st = get_enum(ctx, name, v[LAYOUT], "input.layout", gb__layout_parse, "NCHW, NHWC", &i)))
            return st;
        pp->layout = (gb_layout)i;
    }
    int channels = pp->channels;
    if (v[CHANNELS]) {
        if ((st = get_int(ctx, name, v[CHANNELS], "input.channels", 1, 3, &channels))) return st;
        if (channels == 2)
            return fail(ctx, GB_ERR_FORMAT, name, "input.channels = 2 must be 1 (gray) or 3 (rgb, bgr)");
    }
    if (v[COLOR]) {
        if ((st = get_enum(ctx, name, v[COLOR], "input.color", gb__color_parse, "gray, rgb, bgr", &i)))
            return st;
        int need = i == GB_COLOR_GRAY ? 1 : 3;
        if (v[CHANNELS] && channels != need)
            return fail(ctx, GB_ERR_FORMAT, name, "input.color '%s' needs %d channel%s, input.channels is %d",
                        v[COLOR]->valuestring, need, need == 1 ? "" : "s", channels);
        pp->color = (gb_color)i;
        channels = need;
    } else if (v[CHANNELS]) {
        if (channels == 1) pp->color = GB_COLOR_GRAY;
        else if (pp->color == GB_COLOR_GRAY) pp->color = GB_COLOR_RGB;
    }
    if (channels != pp->channels) {   /* defaults are uniform: keep the channel-0 values */
        for (int c = 1; c < GB_PREPROC_MAX_CHANNELS; c++) pp->mean[c] = pp->mean[0], pp->std[c] = pp->std[0];
        pp->channels = channels;
    }
    if (v[HEIGHT] && (st = get_int(ctx, name, v[HEIGHT], "input.height", 1, GB_IMAGE_MAX_SIDE, &pp->height)))
        return st;
    if (v[WIDTH] && (st = get_int(ctx, name, v[WIDTH], "input.width", 1, GB_IMAGE_MAX_SIDE, &pp->width)))
        return st;
    if (v[RESIZE]) {
        if ((st = get_enum(ctx, name, v[RESIZE], "input.resize", gb__resize_parse, "stretch, shorter", &i)))
            return st;
        pp->resize = (gb_resize_mode)i;
    }
    if (v[SHORTER] && (st = get_int(ctx, name, v[SHORTER], "input.resize_shorter", 1,
                                    GB_IMAGE_MAX_SIDE, &pp->resize_shorter)))
        return st;
    if (v[SCALE] && (st = get_positive(ctx, name, v[SCALE], "input.scale", &pp->scale))) return st;
    if (v[MEAN] && (st = get_list(ctx, name, v[MEAN], "input.mean", pp->channels, false, pp->mean)))
        return st;
    if (v[STD] && (st = get_list(ctx, name, v[STD], "input.std", pp->channels, true, pp->std)))
        return st;
    return GB_OK;
}

/* ---- the whole file -------------------------------------------------------------------- */

/* Line and column (1-based) of byte offset `off` in text. */
static void line_col(const char *text, size_t off, int *line, int *col) {
    *line = 1, *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') ++*line, *col = 1;
        else ++*col;
    }
}

/* The model input named `want` ("" or NULL: the first). */
static gb_status find_input(gb_ctx *ctx, const char *name, const gb_model *m, const char *want,
                            gb_value_info *out) {
    int n = gb_model_num_inputs(m);
    for (int i = 0; i < n; i++)
        if (gb_model_input(m, i, out) == GB_OK && (!want || !*want || !strcmp(out->name, want)))
            return GB_OK;
    if (!want || !*want) return fail(ctx, GB_ERR_NOT_FOUND, name, "the model has no inputs");
    return fail(ctx, GB_ERR_NOT_FOUND, name, "input.name '%.80s' is not an input of the model", want);
}

static gb_status parse_root(gb_ctx *ctx, const char *name, const cJSON *root, const gb_model *m,
                            gb_sidecar *sc) {
    if (!cJSON_IsObject(root))
        return fail(ctx, GB_ERR_FORMAT, name, "the top level must be an object, not %s", kind(root));
    const char *dup = duplicate_key(root);
    if (dup) return fail(ctx, GB_ERR_FORMAT, name, "duplicate key %s", dup);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(root, "labels");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(root, "task");
    if (in && !cJSON_IsObject(in))
        return fail(ctx, GB_ERR_FORMAT, name, "input must be an object, not %s", kind(in));
    const cJSON *jname = in ? cJSON_GetObjectItemCaseSensitive(in, "name") : NULL;
    const char *want = cJSON_IsString(jname) ? jname->valuestring : NULL;
    if (want && strlen(want) >= sizeof sc->input.input_name)
        return fail(ctx, GB_ERR_FORMAT, name, "input.name is longer than %zu bytes",
                    sizeof sc->input.input_name - 1);

    /* Defaults: the model's input, or the library's. */
    gb_status st;
    if (m) {
        gb_value_info vi;
        if ((st = find_input(ctx, name, m, want, &vi))) return st;
        if ((st = gb_preproc_from_input(ctx, &vi, &sc->input))) return st;
    } else {
        gb_preproc_default(&sc->input);
        if (want) strcpy(sc->input.input_name, want);
    }
    if (in && (st = parse_input(ctx, name, in, &sc->input))) return st;

    if (labels) {
        if (!cJSON_IsArray(labels))
            return fail(ctx, GB_ERR_FORMAT, name, "labels must be an array of strings, not %s", kind(labels));
        int n = cJSON_GetArraySize(labels);
        sc->labels = calloc(n ? (size_t)n : 1, sizeof *sc->labels);
        if (!sc->labels) return fail(ctx, GB_ERR_NOMEM, name, "out of memory");
        for (const cJSON *e = labels->child; e; e = e->next) {
            if (!cJSON_IsString(e))
                return fail(ctx, GB_ERR_FORMAT, name, "labels[%d] must be a string, not %s",
                            sc->n_labels, kind(e));
            if (!(sc->labels[sc->n_labels] = strdup(e->valuestring)))
                return fail(ctx, GB_ERR_NOMEM, name, "out of memory");
            sc->n_labels++;
        }
    }
    if (task) {
        if (!cJSON_IsString(task))
            return fail(ctx, GB_ERR_FORMAT, name, "task must be a string, not %s", kind(task));
        if (strlen(task->valuestring) >= sizeof sc->task)
            return fail(ctx, GB_ERR_FORMAT, name, "task is longer than %zu bytes", sizeof sc->task - 1);
        strcpy(sc->task, task->valuestring);
    }

    if (m) {
        char who[300];
        snprintf(who, sizeof who, "sidecar: %s", name);
        if ((st = gb__preproc_match(ctx, &sc->input, m, who, NULL))) return st;
        gb_value_info out;
        if (!strcmp(sc->task, "classification") && sc->n_labels > 0 && gb_model_num_outputs(m) > 0 &&
            gb_model_output(m, 0, &out) == GB_OK && out.ndim == 2 && out.dims[1] > 0 &&
            out.dims[1] != sc->n_labels)
            return fail(ctx, GB_ERR_FORMAT, name,
                        "labels has %d entries, model output '%s' has %lld classes", sc->n_labels,
                        out.name, (long long)out.dims[1]);
    }
    return GB_OK;
}

gb_status gb_sidecar_parse(gb_ctx *ctx, const char *json, size_t len, const char *name,
                           const gb_model *m, gb_sidecar **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "sidecar: out is NULL");
    *out = NULL;
    if (!name) name = "buffer";
    if (!json && len) return fail(ctx, GB_ERR_ARG, name, "NULL text with length %zu", len);
    if (len == 0) return fail(ctx, GB_ERR_FORMAT, name, "empty file, not JSON");

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        int line, col;
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        line_col(json, off, &line, &col);
        return fail(ctx, GB_ERR_FORMAT, name, "invalid JSON at line %d, column %d", line, col);
    }
    /* Only whitespace may follow the value. */
    size_t p = (size_t)(end - json);
    while (p < len && (json[p] == ' ' || json[p] == '\t' || json[p] == '\n' || json[p] == '\r')) p++;
    if (p < len && json[p]) {
        int line, col;
        line_col(json, p, &line, &col);
        cJSON_Delete(root);
        return fail(ctx, GB_ERR_FORMAT, name, "unexpected text after the JSON value at line %d, column %d",
                    line, col);
    }

    gb_sidecar *sc = calloc(1, sizeof *sc);
    if (!sc) {
        cJSON_Delete(root);
        return fail(ctx, GB_ERR_NOMEM, name, "out of memory");
    }
    gb_status st = parse_root(ctx, name, root, m, sc);
    cJSON_Delete(root);
    if (st) {
        gb_sidecar_free(sc);
        return st;
    }
    sc->found = 1;
    *out = sc;
    return GB_OK;
}

gb_status gb_sidecar_load(gb_ctx *ctx, const char *path, const gb_model *m, gb_sidecar **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "sidecar: out is NULL");
    *out = NULL;
    if (!path) return gb__err(ctx, GB_ERR_ARG, "sidecar: path is NULL");
    unsigned char *buf;
    size_t len;
    gb_status st = gb__io_read_file(ctx, "sidecar", path, SIDECAR_MAX_BYTES, &buf, &len, NULL);
    if (st) return st;
    st = gb_sidecar_parse(ctx, (const char *)buf, len, path, m, out);
    free(buf);
    return st;
}

gb_status gb_sidecar_for_model(gb_ctx *ctx, const gb_model *m, const char *model_path,
                               gb_sidecar **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "sidecar: out is NULL");
    *out = NULL;
    if (!m || !model_path)
        return gb__err(ctx, GB_ERR_ARG, "sidecar: NULL %s", m ? "model path" : "model");
    char path[4096];
    gb_status st = gb_sidecar_path(ctx, model_path, path, sizeof path);
    if (st) return st;
    unsigned char *buf;
    size_t len;
    int open_errno = 0;
    st = gb__io_read_file(ctx, "sidecar", path, SIDECAR_MAX_BYTES, &buf, &len, &open_errno);
    if (!st) {
        st = gb_sidecar_parse(ctx, (const char *)buf, len, path, m, out);
        free(buf);
        return st;
    }
    if (open_errno != ENOENT) return st;

    /* No sidecar: the model's first input, library defaults. */
    gb_sidecar *sc = calloc(1, sizeof *sc);
    if (!sc) return gb__err(ctx, GB_ERR_NOMEM, "sidecar: out of memory");
    gb_value_info vi;
    if ((st = find_input(ctx, model_path, m, NULL, &vi)) ||
        (st = gb_preproc_from_input(ctx, &vi, &sc->input))) {
        gb_sidecar_free(sc);
        return st;
    }
    *out = sc;
    return GB_OK;
}
