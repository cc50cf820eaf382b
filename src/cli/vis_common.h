/* vis_common.h — pieces shared by `glassbox features`, `maximize` and
 * `invert`: number parsing, loading the input (an image or a .npy), and
 * writing model inputs as pictures. */
#ifndef GB_CLI_VIS_COMMON_H
#define GB_CLI_VIS_COMMON_H

#include "cli/cli.h"
#include "cli/cli_common.h"

/* Parse helpers: print "glassbox: FLAG: ..." and return false on a bad value. */
bool gb_cli_vis_int(const char *flag, const char *v, long lo, long hi, long *out);
bool gb_cli_vis_double(const char *flag, const char *v, double lo, double hi, double *out);
bool gb_cli_vis_u64(const char *flag, const char *v, uint64_t *out);

/* The input of a command: --image FILE (prepared with cm->pp) or --input
 * x.npy (float32 after a cast). Prints and returns false on failure. */
bool gb_cli_vis_load_input(gb_ctx *ctx, const gb_cli_model *cm, const char *image, const char *npy, gb_tensor **x);

/* Items 0..N-1 of a (N, C, H, W) model input as one picture at the model's
 * input size (items side by side, 2 white pixels apart), through the
 * inverse preprocessing; magnified nearest-neighbour by `scale` (>= 1). */
bool gb_cli_vis_input_png(gb_ctx *ctx, const gb_cli_model *cm, const gb_tensor *x, int scale, gb_image **out);

/* Write img to path and register it for rollback. */
bool gb_cli_vis_write_png(gb_ctx *ctx, gb_cli_outputs *outs, const char *path, const gb_image *img);
bool gb_cli_vis_write_npy(gb_ctx *ctx, gb_cli_outputs *outs, const char *path, const gb_tensor *t);

/* Paste src into dst at (x0, y0) (both RGB; gray src replicated), clipped. */
void gb_cli_vis_paste(gb_image *dst, const gb_image *src, int x0, int y0, int scale);

#endif
