/* onnx_load.h — internal entry points of the ONNX importer. */
#ifndef GB_ONNX_LOAD_H
#define GB_ONNX_LOAD_H

#include "engine/ir.h"

/* Convert a decoded onnx TensorProto (passed as const void * so callers need
 * not include the generated header) into a new gb_tensor. Only FLOAT and
 * INT64 are accepted; `what` names the tensor in error messages. */
gb_status gb__tensor_from_onnx(gb_ctx *ctx, const void *tensor_proto, const char *what, gb_tensor **out);

/* Parse a serialized TensorProto (a test_data_set_*.pb file). */
gb_status gb__tensor_parse_pb(gb_ctx *ctx, const void *buf, size_t len, const char *what, gb_tensor **out,
                              char *name, size_t name_cap);

/* Whole file into a malloc'd buffer. */
gb_status gb__read_file(gb_ctx *ctx, const char *path, void **buf, size_t *len);

#endif
