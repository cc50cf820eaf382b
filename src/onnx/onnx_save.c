/* onnx_save.c — write a model back to ONNX with its current parameter
 * values: the original file's ModelProto (graph, attributes, metadata) is
 * decoded again, every float32 initializer that the model holds under the
 * same name gets the model's current values as raw_data (little-endian,
 * like the loader reads), and the message is packed and written atomically.
 * This is how a network trained with glassbox's trainer (train.h) — e.g. a
 * learned inversion decoder — is saved. */
#include "engine/ir.h"
#include "glassbox/visualize.h"
#include "onnx.pb-c.h"
#include "onnx/onnx_load.h"

#include <stdlib.h>
#include <string.h>

gb_status gb_model_save_params(gb_model *m, const char *src_path, const char *out_path) {
    gb_ctx *ctx = m->ctx;
    void *buf = NULL;
    size_t len = 0;
    gb_status st = gb__read_file(ctx, src_path, &buf, &len);
    if (st) return st;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (!mp || !mp->graph)
        return gb__err(ctx, GB_ERR_FORMAT, "%s: not a valid ONNX model", src_path);
    Onnx__GraphProto *g = mp->graph;
    /* Point raw_data at the model's values for packing; the originals are
     * put back before the message is freed (protobuf-c owns them). */
    typedef struct {
        protobuf_c_boolean has_raw;
        ProtobufCBinaryData raw;
        size_t n_float;
    } saved;
    saved *sv = calloc(g->n_initializer + 1, sizeof *sv);
    if (!sv) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
    }
    size_t replaced = 0, n_saved = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *tp = g->initializer[i];
        sv[i] = (saved){tp->has_raw_data, tp->raw_data, tp->n_float_data};
        n_saved = i + 1;
        if (!tp->name || tp->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) continue;
        int id = gb__model_tensor_id(m, tp->name);
        const gb_tensor *t = id >= 0 ? m->tensors[id].init : NULL;
        if (!t || t->dtype != GB_DTYPE_F32) continue;
        int64_t n = 1;
        for (size_t k = 0; k < tp->n_dims; k++) n *= tp->dims[k];
        if (n != t->numel) {
            st = gb__err(ctx, GB_ERR_SHAPE, "%s: initializer '%s' has %lld elements, the model %lld", src_path,
                         tp->name, (long long)n, (long long)t->numel);
            break;
        }
        tp->has_raw_data = 1;
        tp->raw_data.len = sizeof(float) * (size_t)t->numel;
        tp->raw_data.data = t->data;
        tp->n_float_data = 0;
        replaced++;
    }
    uint8_t *out = NULL;
    size_t n_out = 0;
    if (!st) {
        n_out = onnx__model_proto__get_packed_size(mp);
        out = malloc(n_out ? n_out : 1);
        if (!out) st = gb__err(ctx, GB_ERR_NOMEM, "out of memory");
        else onnx__model_proto__pack(mp, out);
    }
    for (size_t i = 0; i < n_saved; i++) {
        g->initializer[i]->has_raw_data = sv[i].has_raw;
        g->initializer[i]->raw_data = sv[i].raw;
        g->initializer[i]->n_float_data = sv[i].n_float;
    }
    free(sv);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (!st && replaced == 0)
        st = gb__err(ctx, GB_ERR_ARG, "%s: no float32 initializer of the model found in the file", src_path);
    if (!st) st = gb__io_write_file(ctx, "model", out_path, out, n_out);
    free(out);
    return st;
}
