/*
 * test_bad_input.c — what the library does with models and inputs it must
 * refuse, at the level of the public API (gb_model_load*, gb_session_*).
 *
 * Fixtures (tests/fixtures/models/, written by tests/scripts/make_fixtures.py):
 *   tiny_cnn.onnx        seeded PyTorch CNN, input 'input' (batch, 3, 16, 16),
 *                        with tiny_cnn.input.npy (batch 2) and PyTorch's
 *                        tiny_cnn.logits.npy — the independent reference;
 *   unknown_op.onnx      Relu + FooBar + NonMaxSuppression;
 *   int32_input.onnx     a graph input of element type INT32.
 *
 * What is checked:
 *   - the good path first (tiny_cnn matches PyTorch to 1e-4 relative), so a
 *     refusal below is never explained by a model that does not work at all;
 *   - every prefix of tiny_cnn.onnx shorter than 256 bytes and a stride of
 *     longer ones: an error with a one-line message, or (only for a prefix
 *     that is itself a valid protobuf) a model that plans and runs;
 *   - 2,000 seeded bit flips and byte overwrites: load fails cleanly or the
 *     model plans and runs (or fails with a message) without crashing —
 *     meaningful under -DGB_SANITIZE=ON, where any out-of-bounds access aborts;
 *   - graphs the fuzzer found crashes with (a node writing a graph input, a
 *     graph input listed twice, a required input spelled ''): refused;
 *   - unsupported ops, an INT32 input, wrong input shape / rank / dtype /
 *     count, a missing file and a directory given as the model path.
 * A "clean" failure is: status != GB_OK, *out left NULL, and a message that is
 * non-empty, one line, and not absurdly long.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassbox/glassbox.h"

/* ---- helpers --------------------------------------------------------------- */

static void fixture_path(char *buf, size_t cap, const char *name) {
    const char *src = getenv("GB_SOURCE_DIR");
    if (!src) fail_msg("GB_SOURCE_DIR is not set (ctest sets it to the source tree)");
    snprintf(buf, cap, "%s/tests/fixtures/models/%s", src, name);
}

static unsigned char *slurp_fixture(const char *name, size_t *len) {
    char path[1024];
    fixture_path(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s (run tests/scripts/make_fixtures.py)", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n > 0);
    unsigned char *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static gb_tensor *read_npy_fixture(gb_ctx *ctx, const char *name) {
    char path[1024];
    fixture_path(path, sizeof path, name);
    gb_tensor *t = NULL;
    if (gb_npy_read(ctx, path, &t) != GB_OK) fail_msg("%s: %s", path, gb_ctx_errmsg(ctx));
    return t;
}

/* A failure message must be usable as one line of CLI output. */
static void assert_clean_message(const gb_ctx *ctx, const char *what) {
    const char *msg = gb_ctx_errmsg(ctx);
    if (!msg || !msg[0]) fail_msg("%s: empty error message", what);
    if (strchr(msg, '\n') || strchr(msg, '\r')) fail_msg("%s: message is not one line: %s", what, msg);
    if (strlen(msg) > 3000) fail_msg("%s: message of %zu characters", what, strlen(msg));
}

static void assert_msg_has(const gb_ctx *ctx, const char *needle) {
    const char *msg = gb_ctx_errmsg(ctx);
    if (!strstr(msg, needle)) fail_msg("message lacks '%s': %s", needle, msg);
}

/* splitmix64: a fixed-seed generator so every run mutates the same bytes. */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Load a (possibly corrupt) image. On failure: clean message, no model. On
 * success: plan and run with `x` (the fixture input) and with zeros of the
 * declared shape (free dims = 1); each must succeed or fail cleanly.
 * Returns 0 = load failed, 1 = loaded but every run failed, 2 = something ran. */
static int load_and_exercise(gb_ctx *ctx, const void *buf, size_t len, const gb_tensor *x, const char *what) {
    gb_model *m = (gb_model *)0x1;
    gb_status st = gb_model_load_buffer(ctx, buf, len, &m);
    if (st != GB_OK) {
        if (m != NULL) fail_msg("%s: failed load left *out non-NULL", what);
        assert_clean_message(ctx, what);
        return 0;
    }
    assert_non_null(m);
    int result = 1;
    gb_session *s = NULL;
    assert_int_equal(gb_session_create(m, &s), GB_OK);

    /* 1: the input the original model takes, (2, 3, 16, 16). */
    const gb_tensor *in1[1] = {x};
    if (gb_model_num_inputs(m) == 1) {
        if (gb_session_run(s, in1, 1) == GB_OK) {
            result = 2;
            for (int i = 0; i < gb_model_num_outputs(m); i++) assert_non_null(gb_session_output(s, i));
        } else {
            assert_clean_message(ctx, what);
        }
    } else {
        assert_int_not_equal(gb_session_run(s, in1, 1), GB_OK);
        assert_clean_message(ctx, what);
    }

    /* 2: zeros of whatever shape the (mutated) model declares. */
    int ni = gb_model_num_inputs(m);
    if (ni >= 0 && ni <= 8) {
        gb_tensor *ins[8] = {0};
        bool ok = true;
        for (int i = 0; i < ni && ok; i++) {
            gb_value_info v;
            assert_int_equal(gb_model_input(m, i, &v), GB_OK);
            if (v.ndim < 0) { ok = false; break; }
            int64_t dims[GB_MAX_DIMS], n = 1;
            for (int k = 0; k < v.ndim; k++) {
                dims[k] = v.dims[k] < 0 ? 1 : v.dims[k];
                if (dims[k] > 1000000 || (n *= dims[k]) > 1000000) ok = false;
            }
            if (ok && gb_tensor_create(ctx, v.dtype, v.ndim, dims, &ins[i]) != GB_OK) ok = false;
        }
        if (ok) {
            if (gb_session_run(s, (const gb_tensor *const *)ins, ni) == GB_OK) result = 2;
            else assert_clean_message(ctx, what);
        }
        for (int i = 0; i < ni; i++) gb_tensor_free(ins[i]);
    }
    gb_session_free(s);
    gb_model_free(m);
    return result;
}

/* ---- the good path ------------------------------------------------------------ */

static void test_tiny_cnn_matches_torch(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[1024];
    fixture_path(path, sizeof path, "tiny_cnn.onnx");
    gb_model *m = NULL;
    if (gb_model_load(ctx, path, &m) != GB_OK) fail_msg("%s", gb_ctx_errmsg(ctx));
    assert_int_equal(gb_model_num_inputs(m), 1);
    assert_int_equal(gb_model_num_outputs(m), 1);
    gb_value_info v;
    assert_int_equal(gb_model_input(m, 0, &v), GB_OK);
    assert_string_equal(v.name, "input");
    assert_int_equal(v.ndim, 4);
    assert_true(v.dims[0] < 0); /* dynamic batch */
    assert_int_equal(v.dims[1], 3);
    assert_int_equal(v.dims[2], 16);
    assert_int_equal(v.dims[3], 16);

    gb_tensor *x = read_npy_fixture(ctx, "tiny_cnn.input.npy");
    gb_tensor *ref = read_npy_fixture(ctx, "tiny_cnn.logits.npy");
    assert_int_equal(x->ndim, 4);
    assert_int_equal(x->dims[0], 2);
    assert_int_equal(ref->ndim, 2);
    assert_int_equal(ref->dims[1], 5);

    gb_session *s;
    assert_int_equal(gb_session_create(m, &s), GB_OK);
    const gb_tensor *in[1] = {x};
    if (gb_session_run(s, in, 1) != GB_OK) fail_msg("%s", gb_ctx_errmsg(ctx));
    const gb_tensor *y = gb_session_output(s, 0);
    assert_non_null(y);
    assert_int_equal(y->dtype, GB_DTYPE_F32);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->dims[0], 2);
    assert_int_equal(y->dims[1], 5);
    const float *a = y->data, *b = ref->data;
    for (int64_t i = 0; i < ref->numel; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-4f * fabsf(b[i]) + 1e-6f))
            fail_msg("logit %lld: glassbox %.8g, PyTorch %.8g", (long long)i, a[i], b[i]);

    /* Batch 1 (a replan of the dynamic batch) gives the first row again. */
    int64_t d1[4] = {1, 3, 16, 16};
    gb_tensor *x1;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 4, d1, &x1), GB_OK);
    memcpy(x1->data, x->data, sizeof(float) * (size_t)x1->numel);
    const gb_tensor *in1[1] = {x1};
    if (gb_session_run(s, in1, 1) != GB_OK) fail_msg("%s", gb_ctx_errmsg(ctx));
    y = gb_session_output(s, 0);
    assert_int_equal(y->dims[0], 1);
    for (int i = 0; i < 5; i++)
        if (!(fabsf(((float *)y->data)[i] - b[i]) <= 1e-4f * fabsf(b[i]) + 1e-6f))
            fail_msg("batch-1 logit %d: glassbox %.8g, PyTorch %.8g", i, ((float *)y->data)[i], b[i]);

    gb_tensor_free(x1);
    gb_tensor_free(x);
    gb_tensor_free(ref);
    gb_session_free(s);
    gb_model_free(m);
    gb_ctx_free(ctx);
}

/* ---- corrupt files ---------------------------------------------------------- */

static void test_truncated_model(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    size_t len;
    unsigned char *full = slurp_fixture("tiny_cnn.onnx", &len);
    gb_tensor *x = read_npy_fixture(ctx, "tiny_cnn.input.npy");
    int n_tried = 0, n_loaded = 0;
    /* Every length below 256, a stride of 13 after, and the last 16 (the
     * end of the graph and the opset_import that follows it). */
    for (size_t cut = 0; cut < len; cut += cut < 256 || cut + 16 >= len ? 1 : 13) {
        /* An exact-size heap copy, so ASan sees any read past the cut. */
        unsigned char *b = malloc(cut ? cut : 1);
        assert_non_null(b);
        memcpy(b, full, cut);
        char what[64];
        snprintf(what, sizeof what, "prefix of %zu bytes", cut);
        int r = load_and_exercise(ctx, b, cut, x, what);
        /* A prefix can only load if it ends on a top-level field boundary
         * after the graph: a torch export ends with the graph and then
         * opset_import, so the prefix without opset_import is a valid
         * ModelProto. The loader then assumes opset 1 (meant for IR v1
         * files), which is why at most one prefix may load. */
        if (r > 0) {
            n_loaded++;
            print_message("note: %s of %zu loaded (a valid protobuf prefix)\n", what, len);
        }
        n_tried++;
        free(b);
    }
    print_message("%d truncations tried, %d loaded\n", n_tried, n_loaded);
    assert_true(n_loaded <= 1);
    gb_tensor_free(x);
    free(full);
    gb_ctx_free(ctx);
}

static void test_mutated_model(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_ctx_set_threads(ctx, 1);
    size_t len;
    unsigned char *orig = slurp_fixture("tiny_cnn.onnx", &len);
    unsigned char *b = malloc(len);
    assert_non_null(b);
    gb_tensor *x = read_npy_fixture(ctx, "tiny_cnn.input.npy");
    uint64_t seed = 20240611;
    int counts[3] = {0, 0, 0};
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(b, orig, len);
        uint64_t r = next_rand(&seed);
        int n_mut = 1 + (int)(r % 3); /* 1..3 mutations */
        for (int k = 0; k < n_mut; k++) {
            uint64_t q = next_rand(&seed);
            size_t pos = (size_t)(q % len);
            switch ((q >> 32) % 4) {
            case 0: case 1: b[pos] ^= (unsigned char)(1u << ((q >> 40) % 8)); break; /* bit flip */
            case 2: b[pos] = (unsigned char)(q >> 48); break;                       /* random byte */
            default: b[pos] = (q >> 56) & 1 ? 0xff : 0x00; break;                    /* extremes */
            }
        }
        char what[64];
        snprintf(what, sizeof what, "mutation %d", iter);
        counts[load_and_exercise(ctx, b, len, x, what)]++;
    }
    print_message("2000 mutations: %d refused at load, %d loaded but refused to run, %d ran\n", counts[0],
                  counts[1], counts[2]);
    gb_tensor_free(x);
    free(b);
    free(orig);
    gb_ctx_free(ctx);
}

static void test_garbage_buffers(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_model *m = NULL;
    unsigned char one = 0;
    /* An empty buffer is a valid (empty) ModelProto: it has no graph. */
    assert_int_equal(gb_model_load_buffer(ctx, &one, 0, &m), GB_ERR_FORMAT);
    assert_null(m);
    assert_clean_message(ctx, "empty buffer");
    /* Text, not protobuf. */
    const char *txt = "this is not an onnx model\n";
    assert_int_not_equal(gb_model_load_buffer(ctx, txt, strlen(txt), &m), GB_OK);
    assert_null(m);
    assert_clean_message(ctx, "text buffer");
    /* All 0xff. */
    unsigned char ff[64];
    memset(ff, 0xff, sizeof ff);
    assert_int_equal(gb_model_load_buffer(ctx, ff, sizeof ff, &m), GB_ERR_FORMAT);
    assert_null(m);
    assert_clean_message(ctx, "0xff buffer");
    gb_ctx_free(ctx);
}

/* ---- malformed graphs the fuzzer found ------------------------------------------ */

/* Load `name`; if it loads, planning on zeros of the declared shapes must
 * fail. Either way the failure is clean and its message contains `needle`. */
static void expect_refused(const char *name, const char *needle) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[1024];
    fixture_path(path, sizeof path, name);
    gb_model *m = NULL;
    gb_status st = gb_model_load(ctx, path, &m);
    if (st == GB_OK) {
        int ni = gb_model_num_inputs(m);
        assert_true(ni <= 4);
        gb_tensor *ins[4] = {0};
        for (int i = 0; i < ni; i++) {
            gb_value_info v;
            assert_int_equal(gb_model_input(m, i, &v), GB_OK);
            assert_int_equal(gb_tensor_create(ctx, v.dtype, v.ndim, v.dims, &ins[i]), GB_OK);
        }
        gb_session *s;
        assert_int_equal(gb_session_create(m, &s), GB_OK);
        st = gb_session_plan(s, (const gb_tensor *const *)ins, ni);
        gb_session_free(s);
        for (int i = 0; i < ni; i++) gb_tensor_free(ins[i]);
        gb_model_free(m);
        if (st == GB_OK) fail_msg("%s: loaded and planned", name);
    } else {
        assert_null(m);
    }
    assert_clean_message(ctx, name);
    assert_msg_has(ctx, needle);
    gb_ctx_free(ctx);
}

/* A node whose output is a graph input would write into the caller's buffer
 * (a heap overflow when the shapes differ). */
static void test_node_writes_graph_input(void **state) { expect_refused("writes_input.onnx", "'y'"); }

/* The same graph input twice would be bound (and for int64, copied) twice. */
static void test_duplicate_graph_input(void **state) { expect_refused("dup_input.onnx", "'x'"); }

/* A required input spelled '' (omitted) reaches the kernel as NULL. */
static void test_empty_required_input(void **state) { expect_refused("empty_required_input.onnx", "conv_no_w"); }

/* ---- unsupported models ------------------------------------------------------- */

static void test_unknown_ops_named_together(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[1024];
    fixture_path(path, sizeof path, "unknown_op.onnx");
    gb_model *m = NULL;
    assert_int_equal(gb_model_load(ctx, path, &m), GB_ERR_UNSUPPORTED);
    assert_null(m);
    assert_clean_message(ctx, "unknown_op.onnx");
    assert_msg_has(ctx, "FooBar");
    assert_msg_has(ctx, "mystery_node");
    assert_msg_has(ctx, "NonMaxSuppression");
    assert_msg_has(ctx, "nms_node");
    assert_msg_has(ctx, "unknown_op.onnx"); /* gb_model_load prefixes the path */
    /* The supported Relu is not blamed. */
    if (strstr(gb_ctx_errmsg(ctx), "relu_ok")) fail_msg("supported node listed: %s", gb_ctx_errmsg(ctx));
    gb_ctx_free(ctx);
}

static void test_int32_input(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[1024];
    fixture_path(path, sizeof path, "int32_input.onnx");
    gb_model *m = NULL;
    assert_int_equal(gb_model_load(ctx, path, &m), GB_ERR_UNSUPPORTED);
    assert_null(m);
    assert_clean_message(ctx, "int32_input.onnx");
    assert_msg_has(ctx, "INT32");
    assert_msg_has(ctx, "ids");
    gb_ctx_free(ctx);
}

/* ---- wrong inputs --------------------------------------------------------------- */

typedef struct {
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;
    gb_tensor *x;        /* the good (2, 3, 16, 16) input */
    char declared[128];  /* the model's input shape as text, "?x3x16x16" */
} cnn_fixture;

static int cnn_setup(void **state) {
    cnn_fixture *f = calloc(1, sizeof *f);
    if (!f || gb_ctx_create(&f->ctx)) return -1;
    char path[1024];
    fixture_path(path, sizeof path, "tiny_cnn.onnx");
    if (gb_model_load(f->ctx, path, &f->m) || gb_session_create(f->m, &f->s)) {
        fprintf(stderr, "%s\n", gb_ctx_errmsg(f->ctx));
        return -1;
    }
    fixture_path(path, sizeof path, "tiny_cnn.input.npy");
    if (gb_npy_read(f->ctx, path, &f->x)) return -1;
    gb_value_info v;
    gb_model_input(f->m, 0, &v);
    gb_shape_str(v.ndim, v.dims, f->declared, sizeof f->declared);
    *state = f;
    return 0;
}

static int cnn_teardown(void **state) {
    cnn_fixture *f = *state;
    gb_tensor_free(f->x);
    gb_session_free(f->s);
    gb_model_free(f->m);
    gb_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* Run with one bad input tensor; expect `want` and a message naming the
 * input, the declared shape and the given one. */
static void expect_bad_input(cnn_fixture *f, gb_dtype dt, int ndim, const int64_t *dims, gb_status want,
                             const char *got_text) {
    gb_tensor *bad;
    assert_int_equal(gb_tensor_create(f->ctx, dt, ndim, dims, &bad), GB_OK);
    const gb_tensor *in[1] = {bad};
    /* Through plan and through run: both validate. */
    for (int pass = 0; pass < 2; pass++) {
        gb_status st = pass ? gb_session_run(f->s, in, 1) : gb_session_plan(f->s, in, 1);
        if (st != want)
            fail_msg("%s: got status %d (%s), want %d: %s", got_text, st, gb_status_str(st), want,
                     gb_ctx_errmsg(f->ctx));
        assert_clean_message(f->ctx, got_text);
        assert_msg_has(f->ctx, "'input'");
        assert_msg_has(f->ctx, f->declared);
        assert_msg_has(f->ctx, got_text);
    }
    gb_tensor_free(bad);
}

static void run_good(cnn_fixture *f, float *logits10) {
    const gb_tensor *in[1] = {f->x};
    if (gb_session_run(f->s, in, 1) != GB_OK) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    const gb_tensor *y = gb_session_output(f->s, 0);
    assert_non_null(y);
    assert_int_equal(y->numel, 10);
    memcpy(logits10, y->data, sizeof(float) * 10);
}

static void test_wrong_input_shape(void **state) {
    cnn_fixture *f = *state;
    float before[10], after[10];
    run_good(f, before);
    int64_t h17[4] = {1, 3, 17, 16};
    expect_bad_input(f, GB_DTYPE_F32, 4, h17, GB_ERR_SHAPE, "1x3x17x16");
    int64_t c4[4] = {2, 4, 16, 16};
    expect_bad_input(f, GB_DTYPE_F32, 4, c4, GB_ERR_SHAPE, "2x4x16x16");
    int64_t rank3[3] = {3, 16, 16};
    expect_bad_input(f, GB_DTYPE_F32, 3, rank3, GB_ERR_SHAPE, "3x16x16");
    int64_t rank5[5] = {1, 1, 3, 16, 16};
    expect_bad_input(f, GB_DTYPE_F32, 5, rank5, GB_ERR_SHAPE, "1x1x3x16x16");
    expect_bad_input(f, GB_DTYPE_F32, 0, NULL, GB_ERR_SHAPE, "scalar");
    /* A failed plan leaves the session usable: the good input still runs
     * and gives the same logits. */
    run_good(f, after);
    assert_memory_equal(before, after, sizeof before);
}

static void test_wrong_input_dtype(void **state) {
    cnn_fixture *f = *state;
    int64_t d[4] = {2, 3, 16, 16};
    /* float64 is not converted implicitly by the library (the CLI does). */
    expect_bad_input(f, GB_DTYPE_F64, 4, d, GB_ERR_SHAPE, "float64");
    expect_bad_input(f, GB_DTYPE_I64, 4, d, GB_ERR_SHAPE, "int64");
    expect_bad_input(f, GB_DTYPE_U8, 4, d, GB_ERR_SHAPE, "uint8");
}

static void test_wrong_input_count(void **state) {
    cnn_fixture *f = *state;
    const gb_tensor *two[2] = {f->x, f->x};
    assert_int_equal(gb_session_run(f->s, two, 2), GB_ERR_ARG);
    assert_clean_message(f->ctx, "two inputs");
    assert_msg_has(f->ctx, "1 input");
    assert_msg_has(f->ctx, "2 given");
    assert_int_equal(gb_session_run(f->s, two, 0), GB_ERR_ARG);
    assert_clean_message(f->ctx, "no inputs");
    assert_msg_has(f->ctx, "0 given");
    const gb_tensor *null_in[1] = {NULL};
    assert_int_equal(gb_session_run(f->s, null_in, 1), GB_ERR_ARG);
    assert_clean_message(f->ctx, "NULL input");
    assert_msg_has(f->ctx, "'input'");
    float logits[10];
    run_good(f, logits);
}

/* ---- files ---------------------------------------------------------------------- */

static void test_missing_file(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[1024];
    fixture_path(path, sizeof path, "no_such_model.onnx");
    gb_model *m = (gb_model *)0x1;
    assert_int_equal(gb_model_load(ctx, path, &m), GB_ERR_IO);
    assert_null(m);
    assert_clean_message(ctx, "missing file");
    assert_msg_has(ctx, path);
    gb_ctx_free(ctx);
}

static void test_directory_as_model(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[1024];
    fixture_path(path, sizeof path, "");
    gb_model *m = (gb_model *)0x1;
    gb_status st = gb_model_load(ctx, path, &m);
    if (st != GB_ERR_IO) fail_msg("directory: status %d (%s): %s", st, gb_status_str(st), gb_ctx_errmsg(ctx));
    assert_null(m);
    assert_clean_message(ctx, "directory");
    assert_msg_has(ctx, path);
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_cnn_matches_torch),
        cmocka_unit_test(test_truncated_model),
        cmocka_unit_test(test_mutated_model),
        cmocka_unit_test(test_garbage_buffers),
        cmocka_unit_test(test_node_writes_graph_input),
        cmocka_unit_test(test_duplicate_graph_input),
        cmocka_unit_test(test_empty_required_input),
        cmocka_unit_test(test_unknown_ops_named_together),
        cmocka_unit_test(test_int32_input),
        cmocka_unit_test_setup_teardown(test_wrong_input_shape, cnn_setup, cnn_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_input_dtype, cnn_setup, cnn_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_input_count, cnn_setup, cnn_teardown),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_directory_as_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
