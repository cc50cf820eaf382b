/*
 * npy.c — read and write NumPy .npy files.
 *
 * The format (numpy/lib/format.py, NEP 1):
 *
 *     "\x93NUMPY" major minor            8 bytes
 *     HEADER_LEN                         u16 LE (1.0) or u32 LE (2.0, 3.0)
 *     header                             HEADER_LEN bytes: a Python dict literal
 *         {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *         padded with spaces and a final '\n' (NumPy aligns the data to 64
 *         bytes; NumPy < 1.14 aligned to 16; we accept any alignment)
 *     data                               numel * itemsize bytes, C order
 *
 * 3.0 only differs from 2.0 in that the header is UTF-8 instead of latin1;
 * the supported dtypes are ASCII either way.
 *
 * What we accept (a strict subset of what ast.literal_eval + NumPy accept):
 *   - versions 1.0, 2.0, 3.0 (anything else: GB_ERR_UNSUPPORTED);
 *   - descr '<f4', '<f8', '<i8', '|u1' or '<u1' (anything else, including
 *     big-endian and structured dtypes: GB_ERR_UNSUPPORTED naming the descr);
 *   - fortran_order False (True: GB_ERR_UNSUPPORTED "Fortran order not
 *     supported", even for 1-D arrays where the layouts coincide);
 *   - the three keys exactly once each, in any order, quoted with ' or ",
 *     any whitespace (space, tab, CR, LF, FF) between tokens, optional
 *     trailing commas in the dict and in the shape tuple;
 *   - shape a tuple of non-negative decimal ints: (), (3,), (2, 3), (2, 3,);
 *     an 'L' suffix (Python 2 longs, as NumPy's _filter_header allows) is
 *     accepted; (3) is an int in Python, not a tuple, and is refused;
 *   - at most GB_MAX_DIMS dimensions, and the product of the non-zero
 *     dimensions at most INT64_MAX / 16 (the limit of gb_tensor_create).
 * Everything else in the header is GB_ERR_FORMAT: unknown or duplicate keys,
 * escapes in strings, text after the closing '}' other than whitespace.
 *
 * Data length: the bytes after the header must be exactly numel * itemsize.
 * Shorter is GB_ERR_FORMAT; longer is also GB_ERR_FORMAT (a deliberate
 * choice: NumPy ignores trailing bytes, but a file with extra bytes usually
 * means the header's shape or dtype does not describe the data, and silently
 * dropping them would hide that). Every length is checked against the buffer
 * before it is used: the parser never reads outside [buf, buf + len).
 *
 * Messages are one line: "npy: <path or 'buffer'>: <what>".
 *
 * Writing produces exactly the bytes NumPy 1.24's np.save produces for the
 * same array (format 1.0, keys sorted, the 21-character growth padding after
 * the dict, data aligned to 64 bytes), so NumPy reads what we write; the unit
 * test compares against files written by NumPy byte for byte.
 */
#include "engine/ir.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Element data is copied as raw little-endian bytes. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64            /* numpy's ARRAY_ALIGN */
#define NPY_GROWTH_DIGITS 21    /* numpy's GROWTH_AXIS_MAX_DIGITS */
#define NPY_MAX_ELEMS (INT64_MAX / 16)

/* ---- errors ---------------------------------------------------------------- */

/* Record "npy: <name>: <what>" and return st. */
static gb_status fail(gb_ctx *ctx, gb_status st, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static gb_status fail(gb_ctx *ctx, gb_status st, const char *name, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gb__err(ctx, st, "npy: %s: %s", name, what);
}

/* Copy at most cap-1 bytes of s[0..n) into buf for a message, replacing
 * anything non-printable with '?' and marking a cut with "...". */
static const char *printable(const char *s, size_t n, char *buf, size_t cap) {
    size_t keep = n < cap - 4 ? n : cap - 4, i;
    for (i = 0; i < keep; i++) buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (keep < n) buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
    buf[i] = 0;
    return buf;
}

/* ---- header dict parser -------------------------------------------------- */

/* A cursor over the header text [p, end). Every read checks p < end. */
typedef struct {
    gb_ctx *ctx;
    const char *name;           /* path or "buffer", for messages */
    const char *p, *end;
} scan;

typedef struct {
    const char *descr;          /* points into the header; not NUL-terminated */
    size_t descr_len;
    bool descr_is_list;         /* a structured dtype: [('a', '<f4'), ...] */
    bool fortran;
    int ndim;
    int64_t dims[GB_MAX_DIMS];
} npy_header;

static void skip_ws(scan *s) {
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r' || *s->p == '\f'))
        s->p++;
}

static gb_status unterminated(scan *s) {
    return fail(s->ctx, GB_ERR_FORMAT, s->name, "header dict is not terminated by '}'");
}

/* A quoted string without escapes: 'abc' or "abc". */
static gb_status parse_string(scan *s, const char **str, size_t *len, const char *what) {
    if (s->p >= s->end) return unterminated(s);
    char q = *s->p;
    if (q != '\'' && q != '"')
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "expected a quoted string for %s", what);
    const char *start = ++s->p;
    while (s->p < s->end && *s->p != q) {
        if (*s->p == '\\' || *s->p == '\n' || *s->p == '\r')
            return fail(s->ctx, GB_ERR_FORMAT, s->name, "escape or line break in a string (%s)", what);
        s->p++;
    }
    if (s->p >= s->end)
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "unterminated string (%s)", what);
    *str = start;
    *len = (size_t)(s->p - start);
    s->p++;
    return GB_OK;
}

static bool is_ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* True when the text at the cursor is the identifier `word`. */
static bool match_word(scan *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return false;
    if ((size_t)(s->end - s->p) > n && is_ident_char(s->p[n])) return false;
    s->p += n;
    return true;
}

/* A non-negative decimal dimension, optionally with a Python 2 'L' suffix. */
static gb_status parse_dim(scan *s, int64_t *out) {
    if (s->p >= s->end) return unterminated(s);
    if (*s->p == '-')
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "negative dimension in shape");
    if (*s->p < '0' || *s->p > '9')
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "expected a dimension (a decimal integer) in shape");
    int64_t v = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        int d = *s->p - '0';
        if (v > (INT64_MAX - d) / 10)
            return fail(s->ctx, GB_ERR_FORMAT, s->name, "dimension overflows 64 bits in shape");
        v = v * 10 + d;
        s->p++;
    }
    if (s->p < s->end && (*s->p == 'L' || *s->p == 'l')) s->p++;
    if (s->p < s->end && is_ident_char(*s->p))
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "bad character '%c' in a dimension", *s->p);
    *out = v;
    return GB_OK;
}

/* shape: (), (3,), (2, 3), (2, 3,) */
static gb_status parse_shape(scan *s, npy_header *h) {
    if (s->p >= s->end) return unterminated(s);
    if (*s->p != '(')
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "shape is not a tuple");
    s->p++;
    skip_ws(s);
    h->ndim = 0;
    if (s->p < s->end && *s->p == ')') {
        s->p++;
        return GB_OK;
    }
    for (;;) {
        int64_t d = 0;
        gb_status st = parse_dim(s, &d);
        if (st) return st;
        if (h->ndim == GB_MAX_DIMS)
            return fail(s->ctx, GB_ERR_FORMAT, s->name, "shape has more than %d dimensions",
                        GB_MAX_DIMS);
        h->dims[h->ndim++] = d;
        skip_ws(s);
        if (s->p >= s->end) return unterminated(s);
        if (*s->p == ',') {
            s->p++;
            skip_ws(s);
            if (s->p < s->end && *s->p == ')') {
                s->p++;
                return GB_OK;
            }
            continue;
        }
        if (*s->p == ')') {
            /* (3) is the int 3 in Python: NumPy rejects it as a shape too. */
            if (h->ndim == 1)
                return fail(s->ctx, GB_ERR_FORMAT, s->name,
                            "shape (%lld) is not a tuple (a 1-D shape is written (%lld,))",
                            (long long)h->dims[0], (long long)h->dims[0]);
            s->p++;
            return GB_OK;
        }
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "expected ',' or ')' in shape");
    }
}

/* descr: a string, or a structured dtype list which we only delimit (to name
 * it in the GB_ERR_UNSUPPORTED message) by balancing brackets. */
static gb_status parse_descr(scan *s, npy_header *h) {
    if (s->p >= s->end) return unterminated(s);
    if (*s->p != '[') {
        h->descr_is_list = false;
        return parse_string(s, &h->descr, &h->descr_len, "descr");
    }
    const char *start = s->p;
    int depth = 0;
    do {
        if (s->p >= s->end) return unterminated(s);
        char c = *s->p;
        if (c == '\'' || c == '"') {
            const char *str;
            size_t n;
            gb_status st = parse_string(s, &str, &n, "descr");
            if (st) return st;
            continue;
        }
        if (c == '[' || c == '(' || c == '{') depth++;
        if (c == ']' || c == ')' || c == '}') depth--;
        s->p++;
    } while (depth > 0);
    h->descr_is_list = true;
    h->descr = start;
    h->descr_len = (size_t)(s->p - start);
    return GB_OK;
}

static gb_status parse_bool(scan *s, bool *out) {
    if (match_word(s, "True")) *out = true;
    else if (match_word(s, "False")) *out = false;
    else if (s->p >= s->end) return unterminated(s);
    else return fail(s->ctx, GB_ERR_FORMAT, s->name, "fortran_order is not True or False");
    return GB_OK;
}

/* The whole header text: optional whitespace, the dict, optional whitespace. */
static gb_status parse_dict(scan *s, npy_header *h) {
    enum { K_DESCR = 1, K_FORTRAN = 2, K_SHAPE = 4 };
    int seen = 0;
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "header is not a dict (no '{')");
    s->p++;
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end) return unterminated(s);
        if (*s->p == '}') {
            s->p++;
            break;
        }
        const char *key;
        size_t klen;
        gb_status st = parse_string(s, &key, &klen, "a key");
        if (st) return st;
        skip_ws(s);
        if (s->p >= s->end) return unterminated(s);
        if (*s->p != ':') return fail(s->ctx, GB_ERR_FORMAT, s->name, "expected ':' after a key");
        s->p++;
        skip_ws(s);
        int k = klen == 5 && !memcmp(key, "descr", 5)            ? K_DESCR
                : klen == 13 && !memcmp(key, "fortran_order", 13) ? K_FORTRAN
                : klen == 5 && !memcmp(key, "shape", 5)           ? K_SHAPE
                                                                  : 0;
        char kbuf[40];
        if (!k)
            return fail(s->ctx, GB_ERR_FORMAT, s->name, "unknown key '%s' in header",
                        printable(key, klen, kbuf, sizeof kbuf));
        if (seen & k)
            return fail(s->ctx, GB_ERR_FORMAT, s->name, "duplicate key '%s' in header",
                        printable(key, klen, kbuf, sizeof kbuf));
        seen |= k;
        st = k == K_DESCR ? parse_descr(s, h) : k == K_FORTRAN ? parse_bool(s, &h->fortran)
                                                               : parse_shape(s, h);
        if (st) return st;
        skip_ws(s);
        if (s->p >= s->end) return unterminated(s);
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p != '}')
            return fail(s->ctx, GB_ERR_FORMAT, s->name, "expected ',' or '}' after a value");
    }
    skip_ws(s);
    if (s->p != s->end)
        return fail(s->ctx, GB_ERR_FORMAT, s->name, "unexpected text after the header dict");
    const char *missing = !(seen & K_DESCR) ? "descr" : !(seen & K_FORTRAN) ? "fortran_order"
                        : !(seen & K_SHAPE) ? "shape" : NULL;
    if (missing) return fail(s->ctx, GB_ERR_FORMAT, s->name, "header has no '%s' key", missing);
    return GB_OK;
}

static gb_dtype descr_dtype(const char *d, size_t n) {
    if (n != 3) return GB_DTYPE_UNDEFINED;
    if (!memcmp(d, "<f4", 3)) return GB_DTYPE_F32;
    if (!memcmp(d, "<f8", 3)) return GB_DTYPE_F64;
    if (!memcmp(d, "<i8", 3)) return GB_DTYPE_I64;
    if (!memcmp(d, "|u1", 3) || !memcmp(d, "<u1", 3)) return GB_DTYPE_U8;
    return GB_DTYPE_UNDEFINED;
}

/* ---- parse an in-memory image ------------------------------------------------ */

static gb_status parse_image(gb_ctx *ctx, const char *name, const unsigned char *b, size_t len,
                             gb_tensor **out) {
    /* Magic, version, header length: each checked against len before use. */
    if (len < NPY_MAGIC_LEN + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return fail(ctx, GB_ERR_FORMAT, name, "not a .npy file (bad magic, %zu bytes)", len);
    int major = b[6], minor = b[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return fail(ctx, GB_ERR_UNSUPPORTED, name, "format version %d.%d not supported (1.0, 2.0, 3.0)",
                    major, minor);
    size_t hoff = major == 1 ? 10 : 12;
    if (len < hoff) return fail(ctx, GB_ERR_FORMAT, name, "truncated before the header length");
    size_t hlen = major == 1 ? (size_t)b[8] | (size_t)b[9] << 8
                             : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                                   (size_t)b[11] << 24;
    if (hlen > len - hoff)
        return fail(ctx, GB_ERR_FORMAT, name, "header length %zu runs past the end (%zu bytes left)",
                    hlen, len - hoff);

    npy_header h = {0};
    scan s = {ctx, name, (const char *)b + hoff, (const char *)b + hoff + hlen};
    gb_status st = parse_dict(&s, &h);
    if (st) return st;

    char dbuf[72];
    gb_dtype dt = h.descr_is_list ? GB_DTYPE_UNDEFINED : descr_dtype(h.descr, h.descr_len);
    if (dt == GB_DTYPE_UNDEFINED)
        return fail(ctx, GB_ERR_UNSUPPORTED, name,
                    "dtype %s%s%s not supported (need '<f4', '<f8', '<i8' or '|u1'%s)",
                    h.descr_is_list ? "" : "'", printable(h.descr, h.descr_len, dbuf, sizeof dbuf),
                    h.descr_is_list ? "" : "'",
                    h.descr_len && h.descr[0] == '>' ? "; this one is big-endian" : "");
    if (h.fortran)
        return fail(ctx, GB_ERR_UNSUPPORTED, name,
                    "Fortran order not supported (save with np.ascontiguousarray)");

    /* Bound the element count like gb_tensor_create does; zeros are skipped
     * so (0, huge, huge) cannot overflow either. */
    int64_t nz = 1;
    bool empty = false;
    for (int i = 0; i < h.ndim; i++) {
        if (h.dims[i] == 0) {
            empty = true;
            continue;
        }
        if (nz > NPY_MAX_ELEMS / h.dims[i])
            return fail(ctx, GB_ERR_FORMAT, name, "shape has too many elements");
        nz *= h.dims[i];
    }
    size_t es = gb_dtype_size(dt);
    size_t need = empty ? 0 : (size_t)nz * es;   /* <= INT64_MAX / 2: no overflow */
    size_t have = len - hoff - hlen;
    if (have != need) {
        char shp[160];
        gb_shape_str(h.ndim, h.dims, shp, sizeof shp);
        return fail(ctx, GB_ERR_FORMAT, name, "%s %s needs %zu data bytes, file has %zu (%s)",
                    shp, gb_dtype_name(dt), need, have, have < need ? "truncated" : "trailing bytes");
    }

    gb_tensor *t;
    st = gb_tensor_create(ctx, dt, h.ndim, h.dims, &t);
    if (st) return st;
    if (need) memcpy(t->data, b + hoff + hlen, need);
    *out = t;
    return GB_OK;
}

gb_status gb_npy_parse(gb_ctx *ctx, const void *buf, size_t len, gb_tensor **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "npy: buffer: out is NULL");
    *out = NULL;
    if (!buf && len) return gb__err(ctx, GB_ERR_ARG, "npy: buffer: NULL with length %zu", len);
    return parse_image(ctx, "buffer", buf ? buf : "", len, out);
}

/* ---- files ------------------------------------------------------------------- */

gb_status gb_npy_read(gb_ctx *ctx, const char *path, gb_tensor **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "npy: out is NULL");
    *out = NULL;
    if (!path) return gb__err(ctx, GB_ERR_ARG, "npy: path is NULL");
    unsigned char *buf;
    size_t n;
    gb_status st = gb__io_read_file(ctx, "npy", path, SIZE_MAX / 2, &buf, &n, NULL);
    if (!st) st = parse_image(ctx, path, buf, n, out);
    free(buf);
    return st;
}

/* The header NumPy 1.24 writes (format 1.0), padding and '\n' included,
 * without the 10-byte magic/version/length prefix. Returns its length. The
 * longest one (8 dims of 19 digits) is about 230 bytes + 20 growth spaces +
 * at most 64 padding, so a 512-byte buf always suffices. */
static size_t build_header(char *buf, size_t cap, const char *descr, int ndim,
                           const int64_t *dims) {
    char shape[GB_MAX_DIMS * 22 + 4];
    size_t k = 0;
    shape[k++] = '(';
    for (int i = 0; i < ndim; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", i ? ", " : "",
                              (long long)dims[i]);
    if (ndim == 1) shape[k++] = ',';
    shape[k++] = ')';
    shape[k] = 0;
    int n = snprintf(buf, cap, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
                     shape);
    size_t len = (size_t)n;
    /* Spare room to grow the first axis in place (numpy's GROWTH_AXIS_MAX_DIGITS).
     * Mirrored for fidelity; within 8 dims and INT64_MAX/16 elements it never
     * moves the data offset, since the 64-byte padding absorbs it. */
    if (ndim > 0) {
        char d0[24];
        int w = snprintf(d0, sizeof d0, "%lld", (long long)dims[0]);
        for (int i = w; i < NPY_GROWTH_DIGITS; i++) buf[len++] = ' ';
    }
    /* Pad with spaces so magic + length + header (with its '\n') is a multiple
     * of 64. Like numpy, a header already on the boundary gets 64 more. */
    size_t pad = NPY_ALIGN - (10 + len + 1) % NPY_ALIGN;
    memset(buf + len, ' ', pad);
    len += pad;
    buf[len++] = '\n';
    return len;
}

gb_status gb_npy_write(gb_ctx *ctx, const char *path, const gb_tensor *t) {
    if (!path || !t) return gb__err(ctx, GB_ERR_ARG, "npy: write: NULL %s", path ? "tensor" : "path");
    const char *descr = t->dtype == GB_DTYPE_F32   ? "<f4"
                        : t->dtype == GB_DTYPE_F64 ? "<f8"
                        : t->dtype == GB_DTYPE_I64 ? "<i8"
                        : t->dtype == GB_DTYPE_U8  ? "|u1"
                                                   : NULL;
    if (!descr) return fail(ctx, GB_ERR_ARG, path, "cannot write element type %d", (int)t->dtype);
    if (t->ndim < 0 || t->ndim > GB_MAX_DIMS)
        return fail(ctx, GB_ERR_ARG, path, "tensor has %d dimensions", t->ndim);
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->dims[i] < 0) return fail(ctx, GB_ERR_ARG, path, "negative dimension");
        if (t->dims[i] && numel > NPY_MAX_ELEMS / t->dims[i])
            return fail(ctx, GB_ERR_ARG, path, "too many elements");
        numel *= t->dims[i];
    }
    if (numel != t->numel)
        return fail(ctx, GB_ERR_ARG, path, "tensor numel %lld does not match its shape",
                    (long long)t->numel);
    if (numel && !t->data) return fail(ctx, GB_ERR_ARG, path, "tensor has no data");

    char hdr[512];
    size_t hlen = build_header(hdr, sizeof hdr, descr, t->ndim, t->dims);
    /* magic, version 1.0, header length (u16 little-endian) */
    unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return fail(ctx, GB_ERR_NOMEM, path, "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());

    gb_status st = GB_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = fail(ctx, GB_ERR_IO, path, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    size_t nbytes = (size_t)numel * gb_dtype_size(t->dtype);
    errno = 0;
    if (fwrite(prefix, 1, sizeof prefix, f) != sizeof prefix || fwrite(hdr, 1, hlen, f) != hlen ||
        (nbytes && fwrite(t->data, 1, nbytes, f) != nbytes) || fflush(f) != 0)
        st = fail(ctx, GB_ERR_IO, path, "write error: %s", strerror(errno ? errno : EIO));
    /* fsync so that after rename the new contents, not an empty file, are
     * what a crash leaves behind. EINVAL: the file type cannot be synced. */
    if (!st && fsync(fileno(f)) != 0 && errno != EINVAL)
        st = fail(ctx, GB_ERR_IO, path, "fsync: %s", strerror(errno));
    if (fclose(f) != 0 && !st) st = fail(ctx, GB_ERR_IO, path, "close: %s", strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = fail(ctx, GB_ERR_IO, path, "cannot rename %s into place: %s", tmp, strerror(errno));
    if (st) remove(tmp);
    free(tmp);
    return st;
}
