/*
 * fuzz_npy.c — libFuzzer target for the .npy parser (src/io/npy.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       tests/fuzz/fuzz_npy.c src/io/npy.c src/core/context.c src/core/tensor.c \
 *       -o fuzz_npy
 *   mkdir -p /tmp/npy_corpus
 *   ./fuzz_npy -max_len=4096 -dict=tests/fuzz/npy.dict /tmp/npy_corpus tests/fuzz/corpus/npy
 *
 * (libFuzzer writes new inputs into the FIRST directory: keep the committed
 * seeds second so they stay a few small valid files.)
 *
 * Besides memory errors (ASan), it traps when the parser's contract breaks:
 * on success the tensor is consistent with the input size; on failure *out
 * is NULL and the message is one line starting "npy: buffer: ".
 */
#include "glassbox/glassbox.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gb_ctx *ctx;
    if (gb_ctx_create(&ctx) != GB_OK) return 0;
    gb_tensor *t = (gb_tensor *)&ctx;   /* must be overwritten */
    gb_status st = gb_npy_parse(ctx, data, size, &t);
    if (st == GB_OK) {
        size_t es = gb_dtype_size(t->dtype);
        if (!t || !t->data || !es || t->ndim < 0 || t->ndim > GB_MAX_DIMS || t->numel < 0 ||
            (size_t)t->numel * es > size)
            __builtin_trap();
        int64_t n = 1;
        for (int i = 0; i < t->ndim; i++) n *= t->dims[i];
        if (n != t->numel) __builtin_trap();
        /* Touch every byte so ASan checks the allocation size. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < (size_t)t->numel * es; i++) sink ^= ((const uint8_t *)t->data)[i];
        (void)sink;
        gb_tensor_free(t);
    } else {
        const char *m = gb_ctx_errmsg(ctx);
        if (t != NULL || (st != GB_ERR_FORMAT && st != GB_ERR_UNSUPPORTED) ||
            strncmp(m, "npy: buffer: ", 13) != 0 || strchr(m, '\n'))
            __builtin_trap();
    }
    gb_ctx_free(ctx);
    return 0;
}
