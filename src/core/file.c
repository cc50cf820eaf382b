/* file.c — read a whole file (the one reader behind models, .npy files,
 * images and sidecars) and write one atomically. */
#include "engine/ir.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

gb_status gb__io_read_file(gb_ctx *ctx, const char *what, const char *path, size_t max,
                        unsigned char **bufp, size_t *lenp, int *open_errno) {
    *bufp = NULL;
    *lenp = 0;
    if (open_errno) *open_errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (open_errno) *open_errno = e;
        return gb__err(ctx, GB_ERR_IO, "%s: %s: cannot open: %s", what, path, strerror(e));
    }
    /* Read to EOF into a growing buffer; the size from fstat is only a hint
     * (the file may be a pipe or change under us). */
    struct stat sb;
    size_t cap = 1 << 16;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (uintmax_t)sb.st_size < max)
        cap = (size_t)sb.st_size + 1;
    unsigned char *buf = malloc(cap);
    size_t n = 0;
    gb_status st = GB_OK;
    if (!buf) st = gb__err(ctx, GB_ERR_NOMEM, "%s: %s: out of memory for %zu bytes", what, path, cap);
    while (!st) {
        if (n == cap) {
            if (cap > max) {
                st = gb__err(ctx, GB_ERR_UNSUPPORTED, "%s: %s: file is larger than %zu bytes",
                             what, path, max);
                break;
            }
            size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                st = gb__err(ctx, GB_ERR_NOMEM, "%s: %s: out of memory for %zu bytes", what, path,
                             ncap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        errno = 0;
        size_t want = cap - n, got = fread(buf + n, 1, want, f);
        n += got;
        if (got < want) {   /* EOF or an error */
            if (ferror(f))
                st = gb__err(ctx, GB_ERR_IO, "%s: %s: read error: %s", what, path,
                             strerror(errno ? errno : EIO));
            break;
        }
    }
    fclose(f);
    if (!st && n > max)
        st = gb__err(ctx, GB_ERR_UNSUPPORTED, "%s: %s: file is larger than %zu bytes", what, path, max);
    if (st) {
        free(buf);
        return st;
    }
    /* n < cap here (the loop stops on a short read), so the spare byte exists. */
    buf[n] = 0;
    *bufp = buf;
    *lenp = n;
    return GB_OK;
}

/* Write len bytes to path atomically: into "<path>.tmp.<pid>" first, fsync,
 * then rename over path, so a failure never leaves a partial file under the
 * final name (a reader sees the old file or the whole new one). */
gb_status gb__io_write_file(gb_ctx *ctx, const char *what, const char *path, const void *data, size_t len) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return gb__err(ctx, GB_ERR_NOMEM, "%s: %s: out of memory", what, path);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        gb_status st = gb__err(ctx, GB_ERR_IO, "%s: %s: cannot create %s: %s", what, path, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    gb_status st = GB_OK;
    errno = 0;
    if ((len && fwrite(data, 1, len, f) != len) || fflush(f) != 0)
        st = gb__err(ctx, GB_ERR_IO, "%s: %s: write error: %s", what, path, strerror(errno ? errno : EIO));
    /* EINVAL: the file type (a pipe, /dev/null) cannot be synced — fine. */
    if (!st && fsync(fileno(f)) != 0 && errno != EINVAL)
        st = gb__err(ctx, GB_ERR_IO, "%s: %s: fsync: %s", what, path, strerror(errno));
    if (fclose(f) != 0 && !st) st = gb__err(ctx, GB_ERR_IO, "%s: %s: close: %s", what, path, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = gb__err(ctx, GB_ERR_IO, "%s: %s: cannot rename %s into place: %s", what, path, tmp, strerror(errno));
    if (st) remove(tmp);
    free(tmp);
    return st;
}
