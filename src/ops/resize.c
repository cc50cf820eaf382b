/* resize.c — (op family; to be filled) */
#include "ops/util.h"

const gb__op *const gb__ops_resize[] = {NULL};
