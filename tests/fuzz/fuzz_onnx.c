/*
 * fuzz_onnx.c — libFuzzer target for the ONNX loader and the planner.
 *
 * Each input is treated as a serialized ModelProto. If gb_model_load_buffer
 * accepts it, the model is planned and run once on zero-filled inputs of the
 * declared shapes (free dimensions = 1), so op init/infer/forward and the
 * memory planner see whatever the loader let through. Inputs of unknown rank,
 * or with more than FUZZ_MAX_ELEMS elements in all, are not run, nor are plans
 * that reserve more than FUZZ_MAX_ARENA bytes of activations (a 100-byte
 * model can legitimately ask for gigabytes, e.g. MaxPool with pads of 2^31;
 * running it would only measure the machine). The library has no memory
 * limit of its own, so the arena is still reserved: run with
 * ASAN_OPTIONS=allocator_may_return_null=1 and a -malloc_limit_mb above
 * -rss_limit_mb, so an untouched multi-gigabyte reservation is not reported
 * as an out-of-memory crash (a failed allocation must give GB_ERR_NOMEM).
 * Every status is acceptable; a crash, a sanitizer report, a leak, a hang or
 * a failure without a one-line message is a bug.
 *
 * Build (clang; the library with ASan/UBSan and libFuzzer's coverage
 * instrumentation — without -fsanitize=fuzzer-no-link the fuzzer sees only
 * this file's edges and is blind):
 *   CC=clang cmake -S . -B build-fuzz -DGB_SANITIZE=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
 *   cmake --build build-fuzz --target glassbox
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I include tests/fuzz/fuzz_onnx.c \
 *     build-fuzz/libglassbox.a -lprotobuf-c -lopenblas -fopenmp -lm -o build-fuzz/fuzz_onnx
 * Run (a scratch corpus directory first: libFuzzer adds new inputs to it):
 *   mkdir -p /tmp/onnx_corpus
 *   ASAN_OPTIONS=allocator_may_return_null=1 build-fuzz/fuzz_onnx -max_total_time=30 \
 *     -rss_limit_mb=2048 -malloc_limit_mb=1048576 -max_len=65536 /tmp/onnx_corpus tests/fuzz/corpus/onnx
 *
 * The seed corpus (tests/fuzz/corpus/onnx/) holds tests/fixtures/models/tiny_cnn.onnx
 * and four small models from ONNX's backend node tests
 * (/usr/share/libonnx-testdata/data/node/test_<name>/model.onnx).
 */
#include "glassbox/glassbox.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUTS 16
#define FUZZ_MAX_ELEMS 1000000
#define FUZZ_MAX_ARENA ((size_t)256 << 20)

/* Check a failure left a message, as every library error must. */
static void check_message(const gb_ctx *ctx) {
    const char *msg = gb_ctx_errmsg(ctx);
    if (!msg[0] || strchr(msg, '\n')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gb_ctx *ctx = NULL;
    if (gb_ctx_create(&ctx) != GB_OK) return 0;
    gb_ctx_set_threads(ctx, 1);
    /* A 160-byte model can ask for gigabytes (a pad of 2^31): cap the plan. */
    gb_ctx_set_mem_limit(ctx, FUZZ_MAX_ARENA);
    gb_model *m = NULL;
    if (gb_model_load_buffer(ctx, data, size, &m) != GB_OK) {
        check_message(ctx);
        if (m) abort();
        gb_ctx_free(ctx);
        return 0;
    }
    int ni = gb_model_num_inputs(m);
    gb_tensor *inputs[FUZZ_MAX_INPUTS] = {0};
    int64_t total = 0;
    int ok = ni <= FUZZ_MAX_INPUTS;
    for (int i = 0; ok && i < ni; i++) {
        gb_value_info v;
        if (gb_model_input(m, i, &v) != GB_OK || v.ndim < 0) {
            ok = 0;
            break;
        }
        int64_t dims[GB_MAX_DIMS], n = 1;
        for (int k = 0; k < v.ndim; k++) {
            dims[k] = v.dims[k] < 0 ? 1 : v.dims[k];
            if (dims[k] > FUZZ_MAX_ELEMS || (n *= dims[k]) > FUZZ_MAX_ELEMS) ok = 0;
        }
        total += n;
        if (!ok || total > FUZZ_MAX_ELEMS) {
            ok = 0;
            break;
        }
        if (gb_tensor_create(ctx, v.dtype, v.ndim, dims, &inputs[i]) != GB_OK) ok = 0;
    }
    if (ok) {
        gb_session *s = NULL;
        size_t reserved = 0;
        if (gb_session_create(m, &s) == GB_OK) {
            const gb_tensor *const *in = (const gb_tensor *const *)inputs;
            if (gb_session_plan(s, in, ni) != GB_OK) {
                check_message(ctx);
            } else if (gb_session_memory(s, &reserved, NULL), reserved > FUZZ_MAX_ARENA) {
                /* planned (the arena is reserved but untouched); running
                 * would only fill gigabytes */
            } else if (gb_session_run(s, in, ni) != GB_OK) {
                check_message(ctx);
            } else {
                for (int i = 0; i < gb_model_num_outputs(m); i++)
                    if (!gb_session_output(s, i)) abort();
            }
            gb_session_free(s);
        }
    }
    for (int i = 0; i < FUZZ_MAX_INPUTS; i++) gb_tensor_free(inputs[i]);
    gb_model_free(m);
    gb_ctx_free(ctx);
    return 0;
}
