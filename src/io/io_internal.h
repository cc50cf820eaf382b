/* io_internal.h — helpers shared by src/io/image.c, preprocess.c and sidecar.c. */
#ifndef GB_IO_INTERNAL_H
#define GB_IO_INTERNAL_H

#include "engine/ir.h"
#include "glassbox/image.h"

/* GB_ERR_ARG naming `who` unless img is a usable image (sizes, channels
 * 1..4, stride, data). */
gb_status gb__image_check(gb_ctx *ctx, const char *who, const gb_image *img);

/* Text <-> enum for the sidecar and gb_preproc_set (case-insensitive);
 * -1 for an unknown word. */
int gb__layout_parse(const char *s);
int gb__color_parse(const char *s);
int gb__resize_parse(const char *s);

/* gb_preproc_match_model with `who` ("preproc", "sidecar: <path>") opening
 * the messages. */
gb_status gb__preproc_match(gb_ctx *ctx, const gb_preproc *pp, const gb_model *m,
                            const char *who, int *input_index);

/* ITU-R 601-2 luma exactly as PIL's convert('L') (libImaging/Convert.c,
 * L24): a 16-bit fixed-point R*0.299 + G*0.587 + B*0.114, rounded. */
static inline uint8_t gb__luma(uint8_t r, uint8_t g, uint8_t b) {
    return (uint8_t)(((uint32_t)r * 19595u + (uint32_t)g * 38470u + (uint32_t)b * 7471u +
                      0x8000u) >> 16);
}

#endif /* GB_IO_INTERNAL_H */
