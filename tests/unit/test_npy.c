/*
 * test_npy.c — .npy reading and writing (src/io/npy.c).
 *
 * Independent references:
 *   - tests/fixtures/npy/np_*.npy, v2_*, v3_* were written by NumPy 1.24
 *     (tests/scripts/make_npy_fixtures.py); their values are recomputed here
 *     from the same formulas, and gb_npy_write must reproduce each file byte
 *     for byte — so NumPy reads what we write.
 *   - hand_*.npy are header variants NumPy loads (checked by the script).
 *   - bad_*.npy are valid NumPy files we must refuse as unsupported.
 * Robustness: a table of malformed headers, every truncation of every valid
 * file, and single-byte mutations of a header (run under ASan with
 * -DGB_SANITIZE=ON to catch any out-of-bounds read).
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
#include <sys/stat.h>
#include <unistd.h>

#include "glassbox/glassbox.h"

/* ---- helpers --------------------------------------------------------------- */

static char g_tmpdir[256];

static int setup_all(void **state) {
    const char *base = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/gb_npy_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_tmpdir, strerror(errno));
        return -1;
    }
    return 0;
}

static int teardown_all(void **state) {
    if (rmdir(g_tmpdir) != 0) {
        fprintf(stderr, "temporary directory %s not empty: a test leaked a file\n", g_tmpdir);
        return -1;
    }
    return 0;
}

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", g_tmpdir, name);
}

static void fixture_path(char *buf, size_t cap, const char *name) {
    const char *src = getenv("GB_SOURCE_DIR");
    if (!src) fail_msg("GB_SOURCE_DIR is not set (ctest sets it to the source tree)");
    snprintf(buf, cap, "%s/tests/fixtures/npy/%s", src, name);
}

/* Whole file into a malloc'd buffer of exactly its size (+1 so size 0 works). */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n >= 0);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void assert_msg_has(const gb_ctx *ctx, const char *needle) {
    const char *m = gb_ctx_errmsg(ctx);
    if (!strstr(m, needle)) fail_msg("message \"%s\" lacks \"%s\"", m, needle);
}

static bool same_f64(double a, double b) {
    return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

static void assert_shape(const gb_tensor *t, gb_dtype dt, int ndim, const int64_t *dims) {
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        assert_int_equal(t->dims[i], dims[i]);
        n *= dims[i];
    }
    assert_int_equal(t->numel, n);
    assert_non_null(t->data);
}

/* Element-wise equality; NaN equals NaN and -0 differs from +0. */
static void assert_values(const gb_tensor *t, const void *want) {
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case GB_DTYPE_F32: {
            float a = ((const float *)t->data)[i], b = ((const float *)want)[i];
            if (!same_f64(a, b)) fail_msg("element %lld: %g != %g", (long long)i, a, b);
            break;
        }
        case GB_DTYPE_F64: {
            double a = ((const double *)t->data)[i], b = ((const double *)want)[i];
            if (!same_f64(a, b)) fail_msg("element %lld: %g != %g", (long long)i, a, b);
            break;
        }
        case GB_DTYPE_I64:
            assert_int_equal(((const int64_t *)t->data)[i], ((const int64_t *)want)[i]);
            break;
        case GB_DTYPE_U8:
            assert_int_equal(((const uint8_t *)t->data)[i], ((const uint8_t *)want)[i]);
            break;
        default: fail_msg("unexpected dtype %d", t->dtype);
        }
    }
}

/* ---- the NumPy-written fixtures ------------------------------------------------ */

/* The formulas of make_npy_fixtures.py, recomputed. */
static float f32_2x3[6];
static double f64_5[5];
static const int64_t i64_scalar[1] = {INT64_MIN};
static const int64_t i64_4[4] = {0, -1, ((int64_t)1 << 40) + 7, INT64_MAX};
static const uint8_t u8_2x1x3[6] = {0, 1, 127, 128, 254, 255};
static const uint8_t u8_scalar[1] = {200};
static float f32_8d[8];

static void init_expected(void) {
    for (int i = 0; i < 6; i++) f32_2x3[i] = (float)i * 0.25f - 0.5f;
    f64_5[0] = 1.0 / 3.0;
    f64_5[1] = -2.5;
    f64_5[2] = INFINITY;
    f64_5[3] = NAN;
    f64_5[4] = -0.0;
    for (int i = 0; i < 8; i++) f32_8d[i] = (float)i;
}

typedef struct {
    const char *file;
    gb_dtype dtype;
    int ndim;
    int64_t dims[GB_MAX_DIMS];
    const void *want;
    bool numpy_saved;           /* np.save output: we must write identical bytes */
} fixture;

static const fixture fixtures[] = {
    {"np_f32_2x3.npy", GB_DTYPE_F32, 2, {2, 3}, f32_2x3, true},
    {"np_f64_5.npy", GB_DTYPE_F64, 1, {5}, f64_5, true},
    {"np_i64_scalar.npy", GB_DTYPE_I64, 0, {0}, i64_scalar, true},
    {"np_i64_4.npy", GB_DTYPE_I64, 1, {4}, i64_4, true},
    {"np_u8_2x1x3.npy", GB_DTYPE_U8, 3, {2, 1, 3}, u8_2x1x3, true},
    {"np_u8_scalar.npy", GB_DTYPE_U8, 0, {0}, u8_scalar, true},
    {"np_f32_0x3.npy", GB_DTYPE_F32, 2, {0, 3}, NULL, true},
    {"np_f32_8d.npy", GB_DTYPE_F32, 8, {1, 2, 1, 2, 1, 1, 2, 1}, f32_8d, true},
    {"v2_f32_2x3.npy", GB_DTYPE_F32, 2, {2, 3}, f32_2x3, false},
    {"v3_f32_2x3.npy", GB_DTYPE_F32, 2, {2, 3}, f32_2x3, false},
    {"hand_order.npy", GB_DTYPE_F32, 2, {2, 3}, f32_2x3, false},
    {"hand_spaces.npy", GB_DTYPE_F32, 2, {2, 3}, f32_2x3, false},
    {"hand_py2.npy", GB_DTYPE_F32, 2, {2, 3}, f32_2x3, false},
    {"hand_u1.npy", GB_DTYPE_U8, 3, {2, 1, 3}, u8_2x1x3, false},
    {"hand_lead.npy", GB_DTYPE_F32, 2, {2, 3}, f32_2x3, false},
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

static void test_read_fixtures(void **state) {
    init_expected();
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    for (size_t k = 0; k < N_FIXTURES; k++) {
        const fixture *fx = &fixtures[k];
        char path[512];
        fixture_path(path, sizeof path, fx->file);
        gb_tensor *t = NULL;
        gb_status st = gb_npy_read(ctx, path, &t);
        if (st) fail_msg("%s: %s", fx->file, gb_ctx_errmsg(ctx));
        assert_shape(t, fx->dtype, fx->ndim, fx->dims);
        if (fx->want) assert_values(t, fx->want);

        /* The same bytes through gb_npy_parse give the same tensor. */
        size_t len;
        unsigned char *b = slurp(path, &len);
        gb_tensor *u = NULL;
        assert_int_equal(gb_npy_parse(ctx, b, len, &u), GB_OK);
        assert_shape(u, fx->dtype, fx->ndim, fx->dims);
        assert_memory_equal(u->data, t->data, (size_t)t->numel * gb_dtype_size(t->dtype));
        gb_tensor_free(u);

        /* Writing it back reproduces NumPy's file exactly. */
        if (fx->numpy_saved) {
            char out[512];
            tmp_path(out, sizeof out, "rewrite.npy");
            assert_int_equal(gb_npy_write(ctx, out, t), GB_OK);
            size_t olen;
            unsigned char *ob = slurp(out, &olen);
            if (olen != len || memcmp(ob, b, len) != 0)
                fail_msg("%s: gb_npy_write output (%zu bytes) differs from NumPy's (%zu bytes)",
                         fx->file, olen, len);
            free(ob);
            remove(out);
        }
        free(b);
        gb_tensor_free(t);
    }
    gb_ctx_free(ctx);
}

/* Valid NumPy files with features we do not support. */
static void test_unsupported_fixtures(void **state) {
    static const struct { const char *file, *msg1, *msg2; } cases[] = {
        {"bad_f32_be.npy", "'>f4'", "big-endian"},
        {"bad_i32.npy", "'<i4'", "not supported"},
        {"bad_fortran.npy", "Fortran order not supported", "bad_fortran.npy"},
        {"bad_struct.npy", "[('a', '<f4'), ('b', '<i8')]", "not supported"},
    };
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[512];
        fixture_path(path, sizeof path, cases[k].file);
        gb_tensor *t = (gb_tensor *)&t;  /* must be reset to NULL */
        assert_int_equal(gb_npy_read(ctx, path, &t), GB_ERR_UNSUPPORTED);
        assert_null(t);
        assert_msg_has(ctx, cases[k].msg1);
        assert_msg_has(ctx, cases[k].msg2);
        assert_msg_has(ctx, "npy: ");
        assert_msg_has(ctx, path);
    }
    gb_ctx_free(ctx);
}

/* ---- round trips ------------------------------------------------------------------- */

static void fill_pattern(gb_tensor *t) {
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case GB_DTYPE_F32: ((float *)t->data)[i] = (float)i * 1.5f - 7.25f; break;
        case GB_DTYPE_F64: ((double *)t->data)[i] = (double)i / 7.0 - 1e300 * (i % 2); break;
        case GB_DTYPE_I64: ((int64_t *)t->data)[i] = (i % 2 ? -1 : 1) * (i << 33); break;
        case GB_DTYPE_U8: ((uint8_t *)t->data)[i] = (uint8_t)(i * 37); break;
        default: break;
        }
    }
}

static void test_round_trip(void **state) {
    static const gb_dtype dtypes[] = {GB_DTYPE_F32, GB_DTYPE_F64, GB_DTYPE_I64, GB_DTYPE_U8};
    static const struct { int ndim; int64_t dims[GB_MAX_DIMS]; } shapes[] = {
        {0, {0}},                        /* scalar */
        {1, {0}},                        /* empty */
        {1, {1}},
        {1, {17}},
        {2, {2, 3}},
        {2, {0, 3}},
        {3, {2, 0, 4}},
        {3, {3, 1, 5}},
        {4, {1, 3, 4, 5}},
        {2, {1234567890123LL, 0}},       /* long dims, no data */
        {8, {1, 2, 1, 2, 1, 1, 2, 1}},
        {8, {2, 2, 2, 2, 2, 2, 2, 2}},
    };
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    char path[512], tmp[600];
    tmp_path(path, sizeof path, "rt.npy");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            gb_tensor *t, *u = NULL;
            assert_int_equal(gb_tensor_create(ctx, dtypes[d], shapes[s].ndim, shapes[s].dims, &t),
                             GB_OK);
            fill_pattern(t);
            assert_int_equal(gb_npy_write(ctx, path, t), GB_OK);
            assert_false(file_exists(tmp));
            if (gb_npy_read(ctx, path, &u) != GB_OK) fail_msg("%s", gb_ctx_errmsg(ctx));
            assert_shape(u, t->dtype, t->ndim, t->dims);
            assert_memory_equal(u->data, t->data, (size_t)t->numel * gb_dtype_size(t->dtype));

            /* NumPy's layout: version 1.0, data 64-byte aligned, header ends in '\n'. */
            size_t len;
            unsigned char *b = slurp(path, &len);
            assert_true(len >= 10);
            assert_int_equal(b[6], 1);
            assert_int_equal(b[7], 0);
            size_t off = 10 + (size_t)(b[8] | b[9] << 8);
            assert_int_equal(off % 64, 0);
            assert_int_equal(b[off - 1], '\n');
            assert_int_equal(len - off, (size_t)t->numel * gb_dtype_size(t->dtype));
            free(b);
            gb_tensor_free(t);
            gb_tensor_free(u);
        }
    }
    remove(path);
    gb_ctx_free(ctx);
}

/* ---- malformed headers -------------------------------------------------------------- */

#define V1(h) 1, h, 0, NULL, 0
#define RAW(r) 0, NULL, 0, r, sizeof(r) - 1

typedef struct {
    const char *what;
    int major;                  /* version of the image built from `header` */
    const char *header;         /* dict text (used as is: no padding added) */
    size_t header_len;          /* 0: strlen(header) */
    const char *raw;            /* or a whole image given byte for byte */
    size_t raw_len;
    size_t data_bytes;          /* zero bytes appended after the header */
    gb_status want;
    const char *msg;            /* substring of the message */
} bad_case;

#define GOOD "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
#define HDR(shape) "{'descr': '<f4', 'fortran_order': False, 'shape': " shape "}"
#define DESCR(d) "{'descr': " d ", 'fortran_order': False, 'shape': (2, 3)}"

static const bad_case bad_cases[] = {
    /* baselines that must parse */
    {"valid v1", V1(GOOD), 24, GB_OK, ""},
    {"valid v2", 2, GOOD, 0, NULL, 0, 24, GB_OK, ""},
    {"valid v3", 3, GOOD, 0, NULL, 0, 24, GB_OK, ""},
    {"no spaces", V1("{'descr':'<f4','fortran_order':False,'shape':(2,3)}"), 24, GB_OK, ""},
    {"trailing comma in shape", V1(HDR("(2, 3,)")), 24, GB_OK, ""},
    {"spaces in shape", V1(HDR("( 2 ,\t3 )")), 24, GB_OK, ""},
    {"CRLF padding", V1(GOOD "   \r\n"), 24, GB_OK, ""},
    {"scalar", V1(HDR("()")), 4, GB_OK, ""},
    {"1-D", V1(HDR("(6,)")), 24, GB_OK, ""},
    {"python 2 longs", V1(HDR("(2L, 3L)")), 24, GB_OK, ""},
    {"empty with a huge dim", V1(HDR("(0, 1000000000000)")), 0, GB_OK, ""},
    {"8 dims", V1(HDR("(1, 1, 1, 1, 1, 1, 2, 3)")), 24, GB_OK, ""},
    {"<u1", V1(DESCR("'<u1'")), 6, GB_OK, ""},
    {"|u1", V1(DESCR("\"|u1\"")), 6, GB_OK, ""},
    {"<f8", V1(DESCR("'<f8'")), 48, GB_OK, ""},
    {"<i8", V1(DESCR("'<i8'")), 48, GB_OK, ""},

    /* prefix */
    {"empty file", RAW(""), 0, GB_ERR_FORMAT, "bad magic"},
    {"magic only", RAW("\x93NUMPY"), 0, GB_ERR_FORMAT, "bad magic"},
    {"wrong magic", RAW("\x93NUMPZ\x01\x00\x00\x00"), 0, GB_ERR_FORMAT, "bad magic"},
    {"text file", RAW("hello, world\n"), 0, GB_ERR_FORMAT, "bad magic"},
    {"v1 length cut", RAW("\x93NUMPY\x01\x00\x05"), 0, GB_ERR_FORMAT, "header length"},
    {"v2 length cut", RAW("\x93NUMPY\x02\x00\x05\x00\x00"), 0, GB_ERR_FORMAT, "header length"},
    {"v1 length past end", RAW("\x93NUMPY\x01\x00\xff\x00{}"), 0, GB_ERR_FORMAT, "past the end"},
    {"v2 length 4 GiB", RAW("\x93NUMPY\x02\x00\xff\xff\xff\xff{}"), 0, GB_ERR_FORMAT, "past the end"},
    {"v1 length off by one", RAW("\x93NUMPY\x01\x00\x03\x00{}"), 0, GB_ERR_FORMAT, "past the end"},
    {"version 1.1", RAW("\x93NUMPY\x01\x01\x02\x00{}"), 0, GB_ERR_UNSUPPORTED, "version 1.1"},
    {"version 4.0", RAW("\x93NUMPY\x04\x00\x02\x00{}"), 0, GB_ERR_UNSUPPORTED, "version 4.0"},
    {"version 0.0", RAW("\x93NUMPY\x00\x00\x02\x00{}"), 0, GB_ERR_UNSUPPORTED, "version 0.0"},

    /* dict syntax */
    {"empty header", V1(""), 0, GB_ERR_FORMAT, "not a dict"},
    {"blank header", V1("      \n"), 0, GB_ERR_FORMAT, "not a dict"},
    {"list header", V1("[1, 2]"), 0, GB_ERR_FORMAT, "not a dict"},
    {"no closing brace", V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"), 24,
     GB_ERR_FORMAT, "not terminated"},
    {"no closing brace after comma", V1("{'descr': '<f4', "), 0, GB_ERR_FORMAT, "not terminated"},
    {"cut after colon", V1("{'descr':   "), 0, GB_ERR_FORMAT, "not terminated"},
    {"cut in shape", V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3"), 0,
     GB_ERR_FORMAT, "not terminated"},
    {"cut after shape comma", V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"), 0,
     GB_ERR_FORMAT, "not terminated"},
    {"cut in bool", V1("{'fortran_order': Fal"), 0, GB_ERR_FORMAT, "True or False"},
    {"cut after bool", V1("{'fortran_order': False"), 0, GB_ERR_FORMAT, "not terminated"},
    {"unterminated string", V1("{'descr': '<f4"), 0, GB_ERR_FORMAT, "unterminated string"},
    {"unterminated key", V1("{'descr"), 0, GB_ERR_FORMAT, "unterminated string"},
    {"escape in string", V1(DESCR("'<f\\x34'")), 24, GB_ERR_FORMAT, "escape"},
    {"newline in string", V1(DESCR("'<f\n4'")), 24, GB_ERR_FORMAT, "line break"},
    {"unquoted key", V1("{descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "quoted string for a key"},
    {"missing colon", V1("{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "expected ':'"},
    {"missing comma", V1("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "expected ',' or '}'"},
    {"double comma", V1("{'descr': '<f4',, 'fortran_order': False, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "quoted string for a key"},
    {"lone comma", V1("{,}"), 0, GB_ERR_FORMAT, "quoted string for a key"},
    {"text after dict", V1(GOOD " x"), 24, GB_ERR_FORMAT, "after the header dict"},
    {"two dicts", V1(GOOD GOOD), 24, GB_ERR_FORMAT, "after the header dict"},
    {"NUL in header", 1, GOOD "\0 ", sizeof(GOOD) + 1, NULL, 0, 24, GB_ERR_FORMAT,
     "after the header dict"},
    {"NUL before key", 1, "{'descr': '<f4',\0'shape': (2, 3)}", 33, NULL, 0, 24, GB_ERR_FORMAT,
     "quoted string for a key"},

    /* keys */
    {"empty dict", V1("{}"), 0, GB_ERR_FORMAT, "no 'descr' key"},
    {"missing descr", V1("{'fortran_order': False, 'shape': (2, 3)}"), 24, GB_ERR_FORMAT,
     "no 'descr' key"},
    {"missing fortran_order", V1("{'descr': '<f4', 'shape': (2, 3)}"), 24, GB_ERR_FORMAT,
     "no 'fortran_order' key"},
    {"missing shape", V1("{'descr': '<f4', 'fortran_order': False}"), 24, GB_ERR_FORMAT,
     "no 'shape' key"},
    {"unknown key", V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}"), 24,
     GB_ERR_FORMAT, "unknown key 'x'"},
    {"duplicate key", V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (6,)}"),
     24, GB_ERR_FORMAT, "duplicate key 'shape'"},
    {"key case", V1("{'Descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "unknown key 'Descr'"},

    /* values */
    {"fortran_order 0", V1("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "True or False"},
    {"fortran_order true", V1("{'descr': '<f4', 'fortran_order': true, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "True or False"},
    {"fortran_order Falsey", V1("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2, 3)}"), 24,
     GB_ERR_FORMAT, "True or False"},
    {"descr not a string", V1(DESCR("5")), 24, GB_ERR_FORMAT, "quoted string for descr"},
    {"descr list unterminated", V1("{'descr': [('a', '<f4'), "), 0, GB_ERR_FORMAT,
     "not terminated"},
    {"descr list bad string", V1("{'descr': [('a"), 0, GB_ERR_FORMAT, "unterminated string"},

    /* shapes */
    {"negative dim", V1(HDR("(-1, 3)")), 24, GB_ERR_FORMAT, "negative"},
    {"negative later dim", V1(HDR("(2, -3)")), 24, GB_ERR_FORMAT, "negative"},
    {"dim overflows int64", V1(HDR("(99999999999999999999,)")), 24, GB_ERR_FORMAT, "overflows"},
    {"dim is INT64_MAX + 1", V1(HDR("(9223372036854775808,)")), 24, GB_ERR_FORMAT, "overflows"},
    {"product overflows", V1(HDR("(4294967296, 4294967296)")), 24, GB_ERR_FORMAT,
     "too many elements"},
    {"product overflows past a zero", V1(HDR("(0, 4294967296, 4294967296)")), 0, GB_ERR_FORMAT,
     "too many elements"},
    {"9 dims", V1(HDR("(1, 1, 1, 1, 1, 1, 1, 1, 1)")), 4, GB_ERR_FORMAT, "more than 8"},
    {"shape (6)", V1(HDR("(6)")), 24, GB_ERR_FORMAT, "not a tuple"},
    {"shape 6", V1(HDR("6")), 24, GB_ERR_FORMAT, "not a tuple"},
    {"shape list", V1(HDR("[2, 3]")), 24, GB_ERR_FORMAT, "not a tuple"},
    {"shape None", V1(HDR("None")), 24, GB_ERR_FORMAT, "not a tuple"},
    {"shape (,)", V1(HDR("(,)")), 0, GB_ERR_FORMAT, "expected a dimension"},
    {"shape (2,,3)", V1(HDR("(2,,3)")), 24, GB_ERR_FORMAT, "expected a dimension"},
    {"shape (2 3)", V1(HDR("(2 3)")), 24, GB_ERR_FORMAT, "expected ',' or ')'"},
    {"shape (2.0, 3)", V1(HDR("(2.0, 3)")), 24, GB_ERR_FORMAT, "expected ',' or ')'"},
    {"shape (2x, 3)", V1(HDR("(2x, 3)")), 24, GB_ERR_FORMAT, "bad character 'x'"},
    {"shape hex", V1(HDR("(0x6,)")), 24, GB_ERR_FORMAT, "bad character 'x'"},
    {"shape nested", V1(HDR("((2, 3),)")), 24, GB_ERR_FORMAT, "expected a dimension"},
    {"shape unclosed", V1(HDR("(2, 3")), 24, GB_ERR_FORMAT, "expected ',' or ')'"},

    /* data length (trailing bytes are an error: see npy.c) */
    {"data one byte short", V1(GOOD), 23, GB_ERR_FORMAT, "truncated"},
    {"no data", V1(GOOD), 0, GB_ERR_FORMAT, "needs 24 data bytes, file has 0"},
    {"data one byte long", V1(GOOD), 25, GB_ERR_FORMAT, "trailing bytes"},
    {"scalar without data", V1(HDR("()")), 0, GB_ERR_FORMAT, "truncated"},
    {"empty array with data", V1(HDR("(0, 3)")), 4, GB_ERR_FORMAT, "trailing bytes"},
    {"huge shape, little data", V1(HDR("(1000000, 1000000)")), 24, GB_ERR_FORMAT, "truncated"},

    /* well-formed but unsupported */
    {"big-endian", V1(DESCR("'>f4'")), 24, GB_ERR_UNSUPPORTED, "'>f4' not supported"},
    {"big-endian f8", V1(DESCR("'>f8'")), 48, GB_ERR_UNSUPPORTED, "big-endian"},
    {"int32", V1(DESCR("'<i4'")), 24, GB_ERR_UNSUPPORTED, "'<i4'"},
    {"float16", V1(DESCR("'<f2'")), 12, GB_ERR_UNSUPPORTED, "'<f2'"},
    {"bool", V1(DESCR("'|b1'")), 6, GB_ERR_UNSUPPORTED, "'|b1'"},
    {"native order", V1(DESCR("'=f4'")), 24, GB_ERR_UNSUPPORTED, "'=f4'"},
    {"no byte order", V1(DESCR("'f4'")), 24, GB_ERR_UNSUPPORTED, "'f4'"},
    {"unicode", V1(DESCR("'<U3'")), 72, GB_ERR_UNSUPPORTED, "'<U3'"},
    {"object", V1(DESCR("'|O'")), 48, GB_ERR_UNSUPPORTED, "'|O'"},
    {"empty descr", V1(DESCR("''")), 24, GB_ERR_UNSUPPORTED, "'' not supported"},
    {"structured", V1(DESCR("[('a', '<f4')]")), 24, GB_ERR_UNSUPPORTED, "[('a', '<f4')]"},
    {"fortran order", V1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}"), 24,
     GB_ERR_UNSUPPORTED, "Fortran order not supported"},
    {"fortran order 1-D", V1("{'descr': '<f4', 'fortran_order': True, 'shape': (6,)}"), 24,
     GB_ERR_UNSUPPORTED, "Fortran order not supported"},
};

/* A .npy image: magic, version major.0, length field, header as given, zeros. */
static unsigned char *build_image(const bad_case *c, size_t *len) {
    if (c->raw) {
        unsigned char *b = malloc(c->raw_len ? c->raw_len : 1);
        memcpy(b, c->raw, c->raw_len);
        *len = c->raw_len;
        return b;
    }
    size_t hl = c->header_len ? c->header_len : strlen(c->header);
    size_t pre = c->major == 1 ? 10 : 12;
    *len = pre + hl + c->data_bytes;
    unsigned char *b = calloc(*len, 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)c->major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + pre, c->header, hl);
    return b;
}

static void test_malformed_table(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    int checked = 0;
    for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const bad_case *c = &bad_cases[k];
        size_t len;
        unsigned char *b = build_image(c, &len);
        gb_tensor *t = (gb_tensor *)&t;
        gb_status st = gb_npy_parse(ctx, b, len, &t);
        if (st != c->want)
            fail_msg("%s: status %s, want %s (%s)", c->what, gb_status_str(st),
                     gb_status_str(c->want), gb_ctx_errmsg(ctx));
        if (st == GB_OK) {
            assert_non_null(t);
            gb_tensor_free(t);
        } else {
            assert_null(t);
            const char *m = gb_ctx_errmsg(ctx);
            if (strncmp(m, "npy: buffer: ", 13) != 0 || !strstr(m, c->msg) || strchr(m, '\n'))
                fail_msg("%s: message \"%s\" should start \"npy: buffer: \" and contain \"%s\"",
                         c->what, m, c->msg);
        }
        free(b);
        checked++;
    }
    assert_true(checked > 90);
    gb_ctx_free(ctx);
}

/* ---- truncation and mutation ------------------------------------------------------- */

/* Every proper prefix of a valid image is GB_ERR_FORMAT. Each prefix is copied
 * to a buffer of exactly its length so ASan flags any read past it. */
static void check_all_truncations(gb_ctx *ctx, const unsigned char *b, size_t len,
                                  const char *what) {
    for (size_t n = 0; n < len; n++) {
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, b, n);
        gb_tensor *t = (gb_tensor *)&t;
        gb_status st = gb_npy_parse(ctx, p, n, &t);
        if (st != GB_ERR_FORMAT)
            fail_msg("%s cut to %zu of %zu bytes: %s (%s)", what, n, len, gb_status_str(st),
                     gb_ctx_errmsg(ctx));
        assert_null(t);
        free(p);
    }
    /* and the whole image parses */
    unsigned char *p = malloc(len);
    memcpy(p, b, len);
    gb_tensor *t = NULL;
    assert_int_equal(gb_npy_parse(ctx, p, len, &t), GB_OK);
    gb_tensor_free(t);
    free(p);
}

static void test_truncation_every_length(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    for (size_t k = 0; k < N_FIXTURES; k++) {
        char path[512];
        fixture_path(path, sizeof path, fixtures[k].file);
        size_t len;
        unsigned char *b = slurp(path, &len);
        check_all_truncations(ctx, b, len, fixtures[k].file);
        free(b);
    }
    /* files we wrote, too */
    int64_t dims[3] = {3, 1, 2};
    gb_tensor *t;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F64, 3, dims, &t), GB_OK);
    fill_pattern(t);
    char path[512];
    tmp_path(path, sizeof path, "trunc.npy");
    assert_int_equal(gb_npy_write(ctx, path, t), GB_OK);
    size_t len;
    unsigned char *b = slurp(path, &len);
    check_all_truncations(ctx, b, len, "written f64 3x1x2");
    free(b);
    remove(path);
    gb_tensor_free(t);
    gb_ctx_free(ctx);
}

/* Replace each byte of valid images with characters that matter to the
 * grammar: the parser must return (anything) without crashing or reading
 * out of bounds, and an error always carries a well-formed message. */
static void test_byte_mutations(void **state) {
    static const unsigned char subst[] = {0x00, ' ', '\n', '(', ')', ',', ':', '\'', '"', '{',
                                          '}', '[', ']', '0', '9', '-', 'L', 'T', 0x80, 0xff};
    static const char *files[] = {"np_f32_2x3.npy", "v2_f32_2x3.npy", "hand_order.npy",
                                  "np_i64_scalar.npy"};
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        fixture_path(path, sizeof path, files[f]);
        size_t len;
        unsigned char *orig = slurp(path, &len);
        int n_ok = 0, n_err = 0;
        for (size_t i = 0; i < len; i++) {
            for (size_t s = 0; s < sizeof subst; s++) {
                unsigned char *b = malloc(len);
                memcpy(b, orig, len);
                b[i] = subst[s];
                gb_tensor *t = NULL;
                gb_status st = gb_npy_parse(ctx, b, len, &t);
                if (st == GB_OK) {
                    assert_non_null(t);
                    assert_true((size_t)t->numel * gb_dtype_size(t->dtype) < len);
                    gb_tensor_free(t);
                    n_ok++;
                } else {
                    assert_null(t);
                    assert_true(st == GB_ERR_FORMAT || st == GB_ERR_UNSUPPORTED);
                    assert_int_equal(strncmp(gb_ctx_errmsg(ctx), "npy: buffer: ", 13), 0);
                    n_err++;
                }
                free(b);
            }
        }
        assert_true(n_ok > 0 && n_err > 0);
        free(orig);
    }
    gb_ctx_free(ctx);
}

/* ---- files and arguments --------------------------------------------------------- */

static void test_io_errors(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_tensor *t = (gb_tensor *)&t;
    char path[512];

    tmp_path(path, sizeof path, "does_not_exist.npy");
    assert_int_equal(gb_npy_read(ctx, path, &t), GB_ERR_IO);
    assert_null(t);
    assert_msg_has(ctx, path);
    assert_msg_has(ctx, strerror(ENOENT));

    /* A directory opens but cannot be read. */
    assert_int_equal(gb_npy_read(ctx, g_tmpdir, &t), GB_ERR_IO);
    assert_msg_has(ctx, strerror(EISDIR));

    /* An empty file is a format error naming the path. */
    tmp_path(path, sizeof path, "empty.npy");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(gb_npy_read(ctx, path, &t), GB_ERR_FORMAT);
    assert_msg_has(ctx, "npy: ");
    assert_msg_has(ctx, path);
    assert_msg_has(ctx, "bad magic");

    /* Writing over an existing file replaces it. */
    int64_t dims[1] = {3};
    gb_tensor *x;
    assert_int_equal(gb_tensor_create(ctx, GB_DTYPE_F32, 1, dims, &x), GB_OK);
    fill_pattern(x);
    assert_int_equal(gb_npy_write(ctx, path, x), GB_OK);
    assert_int_equal(gb_npy_read(ctx, path, &t), GB_OK);
    assert_memory_equal(t->data, x->data, 12);
    gb_tensor_free(t);
    remove(path);

    /* A missing directory: nothing is created. */
    tmp_path(path, sizeof path, "no_such_dir/x.npy");
    assert_int_equal(gb_npy_write(ctx, path, x), GB_ERR_IO);
    assert_msg_has(ctx, strerror(ENOENT));

    /* rename() fails (the target is a non-empty directory): the temporary
     * file is removed and the target is untouched. */
    char dir[512], inner[600], tmp[600];
    tmp_path(dir, sizeof dir, "target.npy");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", dir);
    f = fopen(inner, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(gb_npy_write(ctx, dir, x), GB_ERR_IO);
    assert_msg_has(ctx, "rename");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    assert_false(file_exists(tmp));
    assert_true(file_exists(inner));
    remove(inner);
    rmdir(dir);

    gb_tensor_free(x);
    gb_ctx_free(ctx);
}

static void test_bad_arguments(void **state) {
    gb_ctx *ctx;
    assert_int_equal(gb_ctx_create(&ctx), GB_OK);
    gb_tensor *t = (gb_tensor *)&t;
    assert_int_equal(gb_npy_parse(ctx, NULL, 10, &t), GB_ERR_ARG);
    assert_null(t);
    assert_int_equal(gb_npy_parse(ctx, NULL, 0, &t), GB_ERR_FORMAT);
    assert_int_equal(gb_npy_parse(ctx, "x", 1, NULL), GB_ERR_ARG);
    assert_int_equal(gb_npy_read(ctx, NULL, &t), GB_ERR_ARG);
    assert_int_equal(gb_npy_read(ctx, "x.npy", NULL), GB_ERR_ARG);
    /* A NULL context still gets the status. */
    assert_int_equal(gb_npy_parse(NULL, "x", 1, &t), GB_ERR_FORMAT);

    char path[512];
    tmp_path(path, sizeof path, "never.npy");
    gb_tensor bad = {.dtype = GB_DTYPE_UNDEFINED, .ndim = 0, .numel = 1, .data = &bad};
    assert_int_equal(gb_npy_write(ctx, NULL, &bad), GB_ERR_ARG);
    assert_int_equal(gb_npy_write(ctx, path, NULL), GB_ERR_ARG);
    assert_int_equal(gb_npy_write(ctx, path, &bad), GB_ERR_ARG);
    bad.dtype = GB_DTYPE_F32;
    bad.ndim = 9;
    assert_int_equal(gb_npy_write(ctx, path, &bad), GB_ERR_ARG);
    bad.ndim = 1;
    bad.dims[0] = -1;
    assert_int_equal(gb_npy_write(ctx, path, &bad), GB_ERR_ARG);
    bad.dims[0] = 2;  /* numel 1 does not match */
    assert_int_equal(gb_npy_write(ctx, path, &bad), GB_ERR_ARG);
    assert_msg_has(ctx, "does not match");
    bad.numel = 2;
    bad.data = NULL;
    assert_int_equal(gb_npy_write(ctx, path, &bad), GB_ERR_ARG);
    assert_false(file_exists(path));
    gb_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_fixtures),
        cmocka_unit_test(test_unsupported_fixtures),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_truncation_every_length),
        cmocka_unit_test(test_byte_mutations),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
