/*
 * image.c — decode PNG, JPEG, BMP and PGM/PPM into a gb_image; write PNG.
 *
 * The contract (formats, channel rules, errors, limits) is in
 * include/glassbox/image.h. Decoding an in-memory file goes:
 *
 *   1. Sniff. The leading bytes pick PNG, JPEG, BMP, PGM or PPM. Known other
 *      formats are GB_ERR_UNSUPPORTED and anything else GB_ERR_FORMAT. stb is
 *      never asked to guess: stbi_load tries every decoder it has, and the
 *      last one, TGA, has no signature.
 *   2. Container check, before any stb code runs. PNG: the chunk walk must
 *      reach a complete IEND. JPEG: the marker walk must reach EOI, and the
 *      tables must be sane and defined before use (see jpeg_check). BMP: the
 *      pixel array must fit in the file. PGM/PPM: the header is parsed and
 *      the data must fit. The reason is what stb_image 2.27 does otherwise
 *      (measured on every truncation of small files, and by fuzzing). It
 *      decodes a PNG without IEND's CRC. It zero-fills a BMP's missing rows.
 *      For PGM/PPM it returns uninitialized memory, since stbi__pnm_load
 *      ignores stbi__getn's result. On a JPEG with an oversized or undefined
 *      Huffman table it overruns an array or aborts on an assert.
 *   3. Header facts, read here: PNG's IHDR (+ tRNS), JPEG's frame header,
 *      the BMP and PNM headers; then the size limits, before anything large
 *      is allocated. Not stbi_info: it tries every format in turn, so its
 *      failure reason is always the last one's ("unknown image type"), and
 *      it refuses large PNGs with that reason too. Only a BMP's channel count
 *      (alpha or not, by stb's mask rules) is asked of stbi_info.
 *   4. Decode, with req_comp set to the channel count from step 3. With
 *      req_comp 0, stb's PNG loader returns img_n + 1 channels for a gray or
 *      RGB image with tRNS but reports img_n. So the count is always passed
 *      explicitly, and that also drops tRNS as documented.
 *   PGM/PPM (P5/P6, maxval 255) skip stb. After the header the pixels are
 *   raw bytes, and stb's reader has the problems above, plus it returns the
 *   low byte of 16-bit samples.
 *
 * Which stb: libstb.so from Debian's libstb-dev, by default. Sanitizer and
 * fuzz builds define GB_STB_FROM_SOURCE (CMake). They compile the same Debian
 * header here as a private static copy, so ASan and libFuzzer can see inside
 * the decoders; an uninstrumented .so is invisible to both.
 *
 * Thread-local flip: see image.h. Before each decode we call
 * stbi_set_flip_vertically_on_load_thread(0), never the global setter. With
 * the shared libstb, that pins "no flip" on the calling thread. The
 * side effect: an application that sets the GLOBAL flag of the same libstb
 * and then loads images itself on that thread gets no flip there. It should
 * call the thread-local setter instead.
 */
#include "io/io_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef GB_STB_FROM_SOURCE
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
/* Unused static stb functions; GCC reports some at the end of the file, so
 * this one stays off for the whole file in this mode (the default build,
 * which links libstb, still checks our own functions). */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#ifdef GB_STB_FROM_SOURCE
#pragma GCC diagnostic pop
#endif

/* ---- errors ---------------------------------------------------------------- */

/* Record "image: <name>: <what>" and return st. */
static gb_status fail(gb_ctx *ctx, gb_status st, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static gb_status fail(gb_ctx *ctx, gb_status st, const char *name, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gb__err(ctx, st, "image: %s: %s", name, what);
}

/* Up to n bytes of s as printable text for a message. */
static const char *printable(const uint8_t *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) buf[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '.';
    buf[k] = 0;
    return buf;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* ---- 1. sniffing --------------------------------------------------------------- */

typedef enum { FMT_PNG, FMT_JPEG, FMT_BMP, FMT_PGM, FMT_PPM } img_format;
static const char *const format_name[] = {"PNG", "JPEG", "BMP", "PGM", "PPM"};

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t jpeg_sig[3] = {0xff, 0xd8, 0xff};

static bool starts(const uint8_t *b, size_t len, const void *sig, size_t n) {
    return len >= n && memcmp(b, sig, n) == 0;
}

static bool pnm_space(uint8_t c) {   /* stbi__pnm_isspace */
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static gb_status sniff(gb_ctx *ctx, const char *name, const uint8_t *b, size_t len,
                       img_format *fmt) {
    if (len == 0) return fail(ctx, GB_ERR_FORMAT, name, "empty file, not an image");
    if (starts(b, len, png_sig, 8)) return *fmt = FMT_PNG, GB_OK;
    if (starts(b, len, jpeg_sig, 3)) return *fmt = FMT_JPEG, GB_OK;
    if (starts(b, len, "BM", 2)) return *fmt = FMT_BMP, GB_OK;
    if (len >= 3 && b[0] == 'P' && (b[1] == '5' || b[1] == '6') && pnm_space(b[2]))
        return *fmt = b[1] == '5' ? FMT_PGM : FMT_PPM, GB_OK;
    /* A cut inside a signature is a truncated file, not a stranger. */
    if (len < 8 && (!memcmp(b, png_sig, len) || (len < 3 && !memcmp(b, jpeg_sig, len))))
        return fail(ctx, GB_ERR_FORMAT, name, "truncated %s file (%zu bytes)",
                    b[0] == 0x89 ? "PNG" : "JPEG", len);

    static const struct { const char *sig; size_t n; const char *what; } known[] = {
        {"GIF87a", 6, "GIF"}, {"GIF89a", 6, "GIF"}, {"II*\0", 4, "TIFF"}, {"MM\0*", 4, "TIFF"},
        {"8BPS", 4, "PSD"}, {"#?RADIANCE", 10, "Radiance HDR"}, {"#?RGBE", 6, "Radiance HDR"},
        {"\0\0\0\x0cjP  ", 8, "JPEG 2000"}, {"qoif", 4, "QOI"}, {"\x76\x2f\x31\x01", 4, "OpenEXR"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (starts(b, len, known[i].sig, known[i].n))
            return fail(ctx, GB_ERR_UNSUPPORTED, name,
                        "%s images are not supported (PNG, JPEG, BMP, PGM/PPM)", known[i].what);
    if (len >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
        return fail(ctx, GB_ERR_UNSUPPORTED, name,
                    "WebP images are not supported (PNG, JPEG, BMP, PGM/PPM)");
    if (len >= 12 && !memcmp(b + 4, "ftyp", 4))
        return fail(ctx, GB_ERR_UNSUPPORTED, name,
                    "HEIF/AVIF images are not supported (PNG, JPEG, BMP, PGM/PPM)");
    if (len >= 2 && b[0] == 'P' && b[1] && strchr("1234PFf7", b[1]))
        return fail(ctx, GB_ERR_UNSUPPORTED, name,
                    "netpbm P%c files are not supported (only binary P5 PGM and P6 PPM)", b[1]);
    char shown[24];
    return fail(ctx, GB_ERR_FORMAT, name,
                "not an image: expected PNG, JPEG, BMP or PGM/PPM (file starts with \"%s\")",
                printable(b, len < 12 ? len : 12, shown, sizeof shown));
}

/* ---- 2. container checks ------------------------------------------------------- */

static gb_status too_large(gb_ctx *ctx, const char *name, const char *fmt, int64_t w, int64_t h) {
    return fail(ctx, GB_ERR_UNSUPPORTED, name,
                "%lldx%lld %s exceeds the image size limit (%d pixels a side, %zu MiB decoded)",
                (long long)w, (long long)h, fmt, GB_IMAGE_MAX_SIDE, GB_IMAGE_MAX_BYTES >> 20);
}

/* Walk the chunks (length, type, data, CRC) until a complete IEND, reading
 * the size and channel count from IHDR (and tRNS for a palette image, as
 * stb: RGBA when tRNS comes before IDAT). CRCs are not verified (stb does
 * not either). */
static gb_status png_check(gb_ctx *ctx, const char *name, const uint8_t *b, size_t len,
                           gb_image_info *info) {
    size_t p = 8;
    char t[8];
    int color = -1;
    bool idat = false;
    for (;;) {
        if (len - p < 8)
            return fail(ctx, GB_ERR_FORMAT, name,
                        "truncated PNG: no IEND chunk (the file ends at byte %zu)", len);
        uint32_t n = be32(b + p);
        const uint8_t *type = b + p + 4, *data = b + p + 8;
        printable(type, 4, t, sizeof t);
        if (n > 0x7fffffffu)
            return fail(ctx, GB_ERR_FORMAT, name, "corrupt PNG: chunk '%s' at byte %zu has length %u",
                        t, p, n);
        if (len - p - 8 < (size_t)n + 4)
            return fail(ctx, GB_ERR_FORMAT, name,
                        "truncated PNG: chunk '%s' at byte %zu needs %zu bytes, %zu left", t, p,
                        (size_t)n + 12, len - p);
        if (p == 8) {
            if (memcmp(type, "IHDR", 4) || n != 13)
                return fail(ctx, GB_ERR_FORMAT, name, "corrupt PNG: the first chunk is '%s', not IHDR", t);
            info->width = (int)(be32(data) > INT32_MAX ? INT32_MAX : be32(data));
            info->height = (int)(be32(data + 4) > INT32_MAX ? INT32_MAX : be32(data + 4));
            info->bits = data[8] == 16 ? 16 : 8;
            color = data[9];
            static const int channels[7] = {1, 0, 3, 3, 2, 0, 4};
            if (color > 6 || !channels[color])
                return fail(ctx, GB_ERR_FORMAT, name, "corrupt PNG: color type %d", color);
            info->channels = channels[color];
        }
        if (!memcmp(type, "CgBI", 4))
            return fail(ctx, GB_ERR_UNSUPPORTED, name,
                        "Apple CgBI PNG (Xcode-optimized) is not supported");
        if (!memcmp(type, "IDAT", 4)) idat = true;
        if (!memcmp(type, "tRNS", 4) && color == 3 && !idat) info->channels = 4;
        if (!memcmp(type, "IEND", 4)) return GB_OK;
        p += (size_t)n + 12;
    }
}

/* Walk the JPEG markers from SOI to EOI, checking what stb_image 2.27 takes
 * on trust. The size and components come from the frame header (SOFn, only
 * one). Each scan (SOS) may only use Huffman and quantization tables that
 * were defined before it. stb would otherwise read its never-initialized
 * tables, whose contents are whatever malloc returned. That made it fail
 * the assert in stbi__jpeg_huff_decode (found by tests/fuzz/fuzz_image.c;
 * Debian's libstb keeps its asserts, so the process aborts), or write
 * stale heap bytes into the pixels. A Huffman table may have at most 256
 * codes: stbi__build_huffman adds up the 16 counts (up to 4080) and writes
 * that many entries into 257-entry arrays (found by test_image's mutations
 * under UBSan). The entropy-coded data after each SOS is skipped: in it,
 * 0xFF is followed by 0x00 stuffing or an RSTn marker. */
static gb_status jpeg_check(gb_ctx *ctx, const char *name, const uint8_t *b, size_t len,
                            gb_image_info *info) {
    size_t p = 2;
    bool sof = false, progressive = false;
    unsigned dc = 0, ac = 0, dq = 0;   /* bit t: table t (0..3) defined */
    int ncomp = 0, comp_id[4] = {0}, comp_tq[4] = {0};
    for (;;) {
        if (p >= len) return fail(ctx, GB_ERR_FORMAT, name, "truncated JPEG: no end-of-image marker");
        if (b[p] != 0xff) return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: no marker at byte %zu", p);
        while (p < len && b[p] == 0xff) p++;   /* fill bytes */
        if (p >= len) return fail(ctx, GB_ERR_FORMAT, name, "truncated JPEG: no end-of-image marker");
        uint8_t m = b[p++];
        if (m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) continue;   /* no length */
        if (m == 0xd9) {   /* EOI */
            if (!sof) return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: no frame header");
            return GB_OK;
        }
        if (len - p < 2) return fail(ctx, GB_ERR_FORMAT, name, "truncated JPEG: no end-of-image marker");
        size_t seg = (size_t)b[p] << 8 | b[p + 1];
        if (seg < 2) return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: segment length %zu", seg);
        if (len - p < seg)
            return fail(ctx, GB_ERR_FORMAT, name, "truncated JPEG: marker 0x%02X segment at byte %zu", m, p);
        const uint8_t *d = b + p + 2, *end = b + p + seg;
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {   /* SOFn */
            if (sof) return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: a second frame header");
            if (seg < 8) return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: short frame header");
            info->height = d[1] << 8 | d[2];
            info->width = d[3] << 8 | d[4];
            ncomp = d[5];
            if (ncomp != 1 && ncomp != 3 && ncomp != 4)
                return fail(ctx, GB_ERR_FORMAT, name, "JPEG with %d components (1, 3 or 4)", ncomp);
            if (seg < 8 + 3 * (size_t)ncomp)
                return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: short frame header");
            for (int i = 0; i < ncomp; i++) comp_id[i] = d[6 + 3 * i], comp_tq[i] = d[8 + 3 * i];
            info->channels = ncomp == 1 ? 1 : 3;   /* stb converts YCbCr, CMYK, YCCK to RGB */
            progressive = m == 0xc2;
            sof = true;
        } else if (m == 0xdb) {   /* DQT: tables of 1 + 64 or 1 + 128 bytes */
            while (d < end) {
                size_t n = (d[0] >> 4) ? 128 : 64;
                if ((size_t)(end - d) < 1 + n)
                    return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: quantization table overruns its segment");
                if ((d[0] & 15) < 4) dq |= 1u << (d[0] & 15);
                d += 1 + n;
            }
        } else if (m == 0xc4) {   /* DHT: tables of 1 + 16 + n bytes */
            while (d < end) {
                if (end - d < 17) return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: short Huffman table");
                int n = 0;
                for (int i = 1; i <= 16; i++) n += d[i];
                if (n > 256)
                    return fail(ctx, GB_ERR_FORMAT, name,
                                "corrupt JPEG: Huffman table with %d codes (at most 256)", n);
                if (end - d - 17 < n)
                    return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: Huffman table overruns its segment");
                int th = d[0] & 15;
                if (th < 4) *((d[0] >> 4) ? &ac : &dc) |= 1u << th;
                d += 17 + n;
            }
        } else if (m == 0xda) {   /* SOS, then entropy-coded data up to the next marker */
            if (!sof) return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: scan before the frame header");
            int ns = seg >= 3 ? d[0] : 0;
            if (ns < 1 || ns > 4 || seg < 6 + 2 * (size_t)ns)
                return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: bad scan header");
            int ss = d[1 + 2 * ns], ah = d[3 + 2 * ns] >> 4;
            /* The tables stb's decoder reads: baseline both; progressive DC
             * first scans the DC table, AC scans the AC table. */
            bool use_dc = !progressive || (ss == 0 && ah == 0), use_ac = !progressive || ss != 0;
            for (int i = 0; i < ns; i++) {
                int id = d[1 + 2 * i], td = d[2 + 2 * i] >> 4, ta = d[2 + 2 * i] & 15, k = 0;
                while (k < ncomp && comp_id[k] != id) k++;
                if (k == ncomp)
                    return fail(ctx, GB_ERR_FORMAT, name, "corrupt JPEG: scan of unknown component %d", id);
                if ((use_dc && (td > 3 || !(dc >> td & 1))) || (use_ac && (ta > 3 || !(ac >> ta & 1))))
                    return fail(ctx, GB_ERR_FORMAT, name,
                                "corrupt JPEG: a scan uses a Huffman table that is not defined");
                if (comp_tq[k] > 3 || !(dq >> comp_tq[k] & 1))
                    return fail(ctx, GB_ERR_FORMAT, name,
                                "corrupt JPEG: a scan uses quantization table %d, which is not defined",
                                comp_tq[k]);
            }
            p += seg;
            while (p < len && !(b[p] == 0xff && p + 1 < len && b[p + 1] != 0x00 &&
                                !(b[p + 1] >= 0xd0 && b[p + 1] <= 0xd7) && b[p + 1] != 0xff))
                p++;
            if (p + 1 >= len) return fail(ctx, GB_ERR_FORMAT, name, "truncated JPEG: no end-of-image marker");
            continue;
        }
        p += seg;
    }
}

/* BMP: headers readable, uncompressed (BI_RGB) or BI_BITFIELDS, and the pixel
 * array (rows padded to 4 bytes) inside the file. */
static gb_status bmp_check(gb_ctx *ctx, const char *name, const uint8_t *b, size_t len,
                           gb_image_info *info) {
    if (len < 26) return fail(ctx, GB_ERR_FORMAT, name, "truncated BMP header (%zu bytes)", len);
    uint32_t off = le32(b + 10), hsz = le32(b + 14), bpp, comp;
    int64_t w, h;
    if (hsz == 12) {   /* OS/2 BITMAPCOREHEADER */
        w = le16(b + 18);
        h = le16(b + 20);
        bpp = le16(b + 24);
        comp = 0;
    } else {
        if (len < 34) return fail(ctx, GB_ERR_FORMAT, name, "truncated BMP header (%zu bytes)", len);
        w = (int32_t)le32(b + 18);
        h = (int32_t)le32(b + 22);    /* negative: rows stored top-down */
        bpp = le16(b + 28);
        comp = le32(b + 30);
    }
    if (h < 0) h = -h;
    if (w <= 0 || h == 0)
        return fail(ctx, GB_ERR_FORMAT, name, "BMP has an empty size %lldx%lld", (long long)w,
                    (long long)h);
    if (comp != 0 && comp != 3)
        return fail(ctx, GB_ERR_UNSUPPORTED, name,
                    "compressed BMP (compression %u) is not supported (only uncompressed or bitfields)",
                    comp);
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return fail(ctx, GB_ERR_FORMAT, name, "BMP with %u bits per pixel", bpp);
    if (w > GB_IMAGE_MAX_SIDE || h > GB_IMAGE_MAX_SIDE) return too_large(ctx, name, "BMP", w, h);
    uint64_t row = ((uint64_t)w * bpp + 31) / 32 * 4;
    uint64_t need = (uint64_t)off + row * (uint64_t)h;   /* < 2^32 + 2^35: no overflow */
    if (need > len)
        return fail(ctx, GB_ERR_FORMAT, name,
                    "truncated BMP: %lldx%lld at %u bits needs %llu bytes, file has %zu",
                    (long long)w, (long long)h, bpp, (unsigned long long)need, len);
    info->width = (int)w;
    info->height = (int)h;
    return GB_OK;
}

typedef struct {
    int width, height, channels;
    size_t data;               /* offset of the first pixel byte */
} pnm_header;

/* P5/P6 header, tokenized like stbi__pnm_info: whitespace and '#' comments
 * (to the end of the line) between the numbers, then exactly one whitespace
 * byte after maxval. */
static gb_status pnm_parse(gb_ctx *ctx, const char *name, const uint8_t *b, size_t len,
                           pnm_header *ph) {
    static const char *const what[3] = {"width", "height", "maxval"};
    const char *fmt = b[1] == '5' ? "PGM" : "PPM";
    int64_t v[3];
    size_t p = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) {
            while (p < len && pnm_space(b[p])) p++;
            if (p < len && b[p] == '#') {
                while (p < len && b[p] != '\n' && b[p] != '\r') p++;
                continue;
            }
            break;
        }
        if (p >= len) return fail(ctx, GB_ERR_FORMAT, name, "truncated %s header (no %s)", fmt, what[k]);
        if (b[p] < '0' || b[p] > '9')
            return fail(ctx, GB_ERR_FORMAT, name, "%s header: %s is not a number", fmt, what[k]);
        int64_t x = 0;
        for (; p < len && b[p] >= '0' && b[p] <= '9'; p++)
            if (x <= INT32_MAX) x = x * 10 + (b[p] - '0');   /* saturates above 2^31 */
        v[k] = x;
    }
    if (p >= len) return fail(ctx, GB_ERR_FORMAT, name, "truncated %s header (no data)", fmt);
    if (!pnm_space(b[p]))
        return fail(ctx, GB_ERR_FORMAT, name, "%s header: maxval is not followed by whitespace", fmt);
    if (v[0] == 0 || v[1] == 0)
        return fail(ctx, GB_ERR_FORMAT, name, "%s has an empty size %lldx%lld", fmt,
                    (long long)v[0], (long long)v[1]);
    if (v[2] == 0 || v[2] > 65535)
        return fail(ctx, GB_ERR_FORMAT, name, "%s maxval %lld is outside 1..65535", fmt, (long long)v[2]);
    if (v[2] != 255)
        return fail(ctx, GB_ERR_UNSUPPORTED, name,
                    "%s with maxval %lld is not supported (only 255, 8 bits per sample)", fmt,
                    (long long)v[2]);
    if (v[0] > GB_IMAGE_MAX_SIDE || v[1] > GB_IMAGE_MAX_SIDE) return too_large(ctx, name, fmt, v[0], v[1]);
    ph->width = (int)v[0];
    ph->height = (int)v[1];
    ph->channels = b[1] == '5' ? 1 : 3;
    ph->data = p + 1;
    size_t need = (size_t)ph->width * (size_t)ph->height * (size_t)ph->channels;
    if (len - ph->data < need)
        return fail(ctx, GB_ERR_FORMAT, name, "truncated %s: %dx%d needs %zu data bytes, file has %zu",
                    fmt, ph->width, ph->height, need, len - ph->data);
    /* Bytes after the data are allowed: a PNM file may hold several images. */
    return GB_OK;
}

/* ---- 3. probing ------------------------------------------------------------------ */

/* Steps 1-3: everything short of decoding. ph is filled for PGM/PPM. */
static gb_status probe(gb_ctx *ctx, const char *name, const uint8_t *b, size_t len,
                       gb_image_info *info, img_format *fmt, pnm_header *ph) {
    gb_status st = sniff(ctx, name, b, len, fmt);
    if (st) return st;
    if (len > INT_MAX)   /* stb takes an int length */
        return fail(ctx, GB_ERR_UNSUPPORTED, name, "file of %zu bytes is too large (2 GiB at most)", len);
    memset(info, 0, sizeof *info);
    info->format = format_name[*fmt];
    info->bits = 8;
    if (*fmt == FMT_PGM || *fmt == FMT_PPM) {
        st = pnm_parse(ctx, name, b, len, ph);
        if (st) return st;
        info->width = ph->width;
        info->height = ph->height;
        info->channels = ph->channels;
        return GB_OK;
    }
    if (*fmt == FMT_PNG) st = png_check(ctx, name, b, len, info);
    else if (*fmt == FMT_JPEG) st = jpeg_check(ctx, name, b, len, info);
    else st = bmp_check(ctx, name, b, len, info);
    if (st) return st;
    if (info->width <= 0 || info->height <= 0)
        return fail(ctx, GB_ERR_FORMAT, name, "%s has an empty size %dx%d", info->format, info->width,
                    info->height);
    if (info->width > GB_IMAGE_MAX_SIDE || info->height > GB_IMAGE_MAX_SIDE ||
        (size_t)info->width * (size_t)info->height * (size_t)(info->channels ? info->channels : 4) *
                (size_t)(info->bits / 8) > GB_IMAGE_MAX_BYTES)
        return too_large(ctx, name, info->format, info->width, info->height);
    if (*fmt == FMT_BMP) {
        /* Whether a 16/32-bit BMP has alpha follows stb's own mask rules:
         * ask stb (its BMP header reader; the size is ours, stb reports a
         * top-down BMP's height as negative). */
        int w = 0, h = 0, c = 0;
        if (!stbi_info_from_memory(b, (int)len, &w, &h, &c) || (c != 3 && c != 4))
            return fail(ctx, GB_ERR_FORMAT, name, "corrupt BMP header (stb_image: %s)",
                        stbi_failure_reason() ? stbi_failure_reason() : "unknown reason");
        info->channels = c;
    }
    return GB_OK;
}

gb_status gb_image_probe_memory(gb_ctx *ctx, const void *buf, size_t len, gb_image_info *out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "image: buffer: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len) return gb__err(ctx, GB_ERR_ARG, "image: buffer: NULL with length %zu", len);
    img_format fmt;
    pnm_header ph;
    gb_image_info info;
    gb_status st = probe(ctx, "buffer", buf ? buf : "", len, &info, &fmt, &ph);
    if (!st) *out = info;
    return st;
}

/* ---- 4. decoding ------------------------------------------------------------------ */

static gb_status wrap(gb_ctx *ctx, const char *name, uint8_t *px, int w, int h, int c,
                      gb_image **out) {
    gb_image *img = calloc(1, sizeof *img);
    if (!img) {
        free(px);
        return fail(ctx, GB_ERR_NOMEM, name, "out of memory");
    }
    img->width = w;
    img->height = h;
    img->channels = c;
    img->stride = (size_t)w * (size_t)c;
    img->data = px;
    *out = img;
    return GB_OK;
}

static gb_status decode(gb_ctx *ctx, const char *name, const uint8_t *b, size_t len,
                        gb_image **out) {
    gb_image_info info;
    img_format fmt;
    pnm_header ph;
    gb_status st = probe(ctx, name, b, len, &info, &fmt, &ph);
    if (st) return st;

    size_t bytes = (size_t)info.width * (size_t)info.height * (size_t)info.channels;
    if (fmt == FMT_PGM || fmt == FMT_PPM) {
        uint8_t *px = malloc(bytes);
        if (!px) return fail(ctx, GB_ERR_NOMEM, name, "out of memory for %zu bytes", bytes);
        memcpy(px, b + ph.data, bytes);
        return wrap(ctx, name, px, info.width, info.height, info.channels, out);
    }

    /* Thread-local, never the global flag: see the top of this file. */
    stbi_set_flip_vertically_on_load_thread(0);
    int w = 0, h = 0, c = 0;
    stbi_uc *px = stbi_load_from_memory(b, (int)len, &w, &h, &c, info.channels);
    if (!px) {
        const char *why = stbi_failure_reason();
        if (why && !strcmp(why, "outofmem"))
            return fail(ctx, GB_ERR_NOMEM, name, "out of memory decoding a %dx%d %s", info.width,
                        info.height, info.format);
        return fail(ctx, GB_ERR_FORMAT, name, "corrupt %s data (stb_image: %s)", info.format,
                    why ? why : "unknown reason");
    }
    if (w != info.width || h != info.height) {
        stbi_image_free(px);
        return fail(ctx, GB_ERR_FORMAT, name, "corrupt %s: decoded as %dx%d, the header says %dx%d",
                    info.format, w, h, info.width, info.height);
    }
    /* stb allocates with STBI_MALLOC, which is malloc (Debian's libstb and
     * our own copy leave it at the default): free() releases it. */
    return wrap(ctx, name, px, w, h, info.channels, out);
}

gb_status gb_image_load_memory(gb_ctx *ctx, const void *buf, size_t len, gb_image **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "image: buffer: out is NULL");
    *out = NULL;
    if (!buf && len) return gb__err(ctx, GB_ERR_ARG, "image: buffer: NULL with length %zu", len);
    return decode(ctx, "buffer", buf ? buf : "", len, out);
}

/* ---- files -------------------------------------------------------------------------- */

gb_status gb_image_load(gb_ctx *ctx, const char *path, gb_image **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "image: out is NULL");
    *out = NULL;
    if (!path) return gb__err(ctx, GB_ERR_ARG, "image: path is NULL");
    unsigned char *buf;
    size_t len;
    gb_status st = gb__io_read_file(ctx, "image", path, (size_t)INT_MAX, &buf, &len, NULL);
    if (st) return st;
    st = decode(ctx, path, buf, len, out);
    free(buf);
    return st;
}

/* ---- create, convert, free ------------------------------------------------------ */

static gb_status check_image(gb_ctx *ctx, const char *who, const gb_image *img) {
    if (!img) return gb__err(ctx, GB_ERR_ARG, "%s: image is NULL", who);
    if (img->width < 1 || img->height < 1 || img->width > GB_IMAGE_MAX_SIDE ||
        img->height > GB_IMAGE_MAX_SIDE)
        return gb__err(ctx, GB_ERR_ARG, "%s: image size %dx%d outside 1..%d", who, img->width,
                       img->height, GB_IMAGE_MAX_SIDE);
    if (img->channels < 1 || img->channels > 4)
        return gb__err(ctx, GB_ERR_ARG, "%s: image has %d channels (1..4)", who, img->channels);
    if (img->stride < (size_t)img->width * (size_t)img->channels)
        return gb__err(ctx, GB_ERR_ARG, "%s: row stride %zu < width %d x %d channels", who,
                       img->stride, img->width, img->channels);
    if (!img->data) return gb__err(ctx, GB_ERR_ARG, "%s: image has no data", who);
    return GB_OK;
}

gb_status gb__image_check(gb_ctx *ctx, const char *who, const gb_image *img) {
    return check_image(ctx, who, img);
}

gb_status gb_image_create(gb_ctx *ctx, int width, int height, int channels, gb_image **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "image: out is NULL");
    *out = NULL;
    if (width < 1 || height < 1 || width > GB_IMAGE_MAX_SIDE || height > GB_IMAGE_MAX_SIDE)
        return gb__err(ctx, GB_ERR_ARG, "image: size %dx%d outside 1..%d", width, height,
                       GB_IMAGE_MAX_SIDE);
    if (channels < 1 || channels > 4)
        return gb__err(ctx, GB_ERR_ARG, "image: %d channels (1..4)", channels);
    size_t bytes = (size_t)width * (size_t)height * (size_t)channels;
    if (bytes > GB_IMAGE_MAX_BYTES)
        return gb__err(ctx, GB_ERR_ARG, "image: %dx%dx%d exceeds %zu MiB", width, height, channels,
                       GB_IMAGE_MAX_BYTES >> 20);
    uint8_t *px = calloc(bytes, 1);
    if (!px) return gb__err(ctx, GB_ERR_NOMEM, "image: out of memory for %zu bytes", bytes);
    return wrap(ctx, "create", px, width, height, channels, out);
}

void gb_image_free(gb_image *img) {
    if (!img) return;
    free(img->data);
    free(img);
}

gb_status gb_image_convert(gb_ctx *ctx, const gb_image *src, int channels, gb_image **out) {
    if (!out) return gb__err(ctx, GB_ERR_ARG, "image convert: out is NULL");
    *out = NULL;
    gb_status st = check_image(ctx, "image convert", src);
    if (st) return st;
    if (channels != 1 && channels != 3 && channels != 4)
        return gb__err(ctx, GB_ERR_ARG, "image convert: to %d channels (1, 3 or 4)", channels);
    gb_image *d;
    st = gb_image_create(ctx, src->width, src->height, channels, &d);
    if (st) return st;
    int sc = src->channels;
    for (int y = 0; y < src->height; y++) {
        const uint8_t *s = src->data + (size_t)y * src->stride;
        uint8_t *o = d->data + (size_t)y * d->stride;
        for (int x = 0; x < src->width; x++, s += sc, o += channels) {
            /* gray (1, 2 channels) or RGB (3, 4); alpha is s[sc - 1] when sc is 2 or 4 */
            uint8_t r = s[0], g = sc >= 3 ? s[1] : s[0], b = sc >= 3 ? s[2] : s[0];
            uint8_t a = (sc == 2 || sc == 4) ? s[sc - 1] : 255;
            if (channels == 1) {
                o[0] = sc >= 3 ? gb__luma(r, g, b) : r;
            } else {
                o[0] = r, o[1] = g, o[2] = b;
                if (channels == 4) o[3] = a;
            }
        }
    }
    *out = d;
    return GB_OK;
}

/* ---- writing PNG -------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    int failed;
    int err;
} png_sink;

static void png_write_cb(void *user, void *data, int size) {
    png_sink *s = user;
    if (s->failed || size <= 0) return;
    errno = 0;
    if (fwrite(data, 1, (size_t)size, s->f) != (size_t)size) {
        s->failed = 1;
        s->err = errno ? errno : EIO;
    }
}

gb_status gb_image_write_png(gb_ctx *ctx, const char *path, const gb_image *img) {
    if (!path) return gb__err(ctx, GB_ERR_ARG, "image: write: path is NULL");
    gb_status st = check_image(ctx, "image: write", img);
    if (st) return st;
    if (img->stride > INT_MAX)
        return fail(ctx, GB_ERR_ARG, path, "row stride %zu too large for the PNG writer", img->stride);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return fail(ctx, GB_ERR_NOMEM, path, "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    png_sink sink = {fopen(tmp, "wb"), 0, 0};
    if (!sink.f) {
        st = fail(ctx, GB_ERR_IO, path, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    /* stb_image_write encodes into memory, then calls us once or a few times. */
    if (!stbi_write_png_to_func(png_write_cb, &sink, img->width, img->height, img->channels,
                                img->data, (int)img->stride))
        st = fail(ctx, sink.failed ? GB_ERR_IO : GB_ERR_NOMEM, path, "PNG encoding failed%s%s",
                  sink.failed ? ": " : " (out of memory)", sink.failed ? strerror(sink.err) : "");
    else if (sink.failed)
        st = fail(ctx, GB_ERR_IO, path, "write error: %s", strerror(sink.err));
    else if (fflush(sink.f) != 0)
        st = fail(ctx, GB_ERR_IO, path, "write error: %s", strerror(errno));
    /* fsync so a crash after the rename leaves the new contents, not an empty
     * file. EINVAL: this file type cannot be synced. */
    if (!st && fsync(fileno(sink.f)) != 0 && errno != EINVAL)
        st = fail(ctx, GB_ERR_IO, path, "fsync: %s", strerror(errno));
    if (fclose(sink.f) != 0 && !st) st = fail(ctx, GB_ERR_IO, path, "close: %s", strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = fail(ctx, GB_ERR_IO, path, "cannot rename %s into place: %s", tmp, strerror(errno));
    if (st) remove(tmp);
    free(tmp);
    return st;
}
