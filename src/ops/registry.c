/* registry.c — ONNX op_type -> operator, from the tables of each op family.
 * Adding an op touches only its family file (see TEMPLATE.md); adding a family
 * adds one line here. */
#include "ops/util.h"

#include <string.h>

static const gb__op *const *const families[] = {
    gb__ops_conv,       gb__ops_pool,    gb__ops_norm,  gb__ops_gemm,
    gb__ops_elementwise, gb__ops_activation, gb__ops_softmax, gb__ops_shape,
    gb__ops_reduce,     gb__ops_resize, gb__ops_index,
};

/* About 70 ops: a linear scan at load time costs nothing measurable, and it
 * keeps every op's registration inside its own file. */
const gb__op *gb__op_lookup(const char *op_type) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const gb__op *const *p = families[f]; *p; p++)
            if (strcmp((*p)->name, op_type) == 0) return *p;
    return NULL;
}
