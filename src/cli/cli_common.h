/* cli_common.h — pieces shared by the commands that take a model and images:
 * finding the default model, loading a model with its sidecar, collecting
 * image files from arguments and directories, output-file bookkeeping. */
#ifndef GB_CLI_COMMON_H
#define GB_CLI_COMMON_H

#include "glassbox/glassbox.h"
#include "glassbox/image.h"

#include <stdbool.h>
#include <stddef.h>

#define GB_CLI_PATH_MAX 4096

/* The default model, first found of:
 *   $GLASSBOX_MODEL (a .onnx file; used as given, even if missing)
 *   <dir of the executable>/../models/default/fashion_cnn.onnx
 *   <dir of the executable>/../share/glassbox/models/default/fashion_cnn.onnx
 *   GB_SOURCE_DIR/models/default/fashion_cnn.onnx (the source tree the
 *   binary was built from, for running from a build directory).
 * Returns false (buf = the last candidate tried) when none exists. */
bool gb_cli_default_model(char *buf, size_t cap);

/* A model ready for images: the model, its sidecar (NULL for a model whose
 * input is not an image and no sidecar: then pp is unusable), and the
 * preprocessing after --preproc overrides. */
typedef struct {
    char path[GB_CLI_PATH_MAX];
    bool is_default;
    gb_model *m;
    gb_sidecar *sc;          /* may be NULL (see above) */
    gb_preproc pp;
    bool has_pp;             /* pp is valid for this model */
    int64_t static_batch;    /* > 0: the input's batch dimension is fixed */
    bool ends_in_softmax;    /* output 0 is produced by a Softmax node */
} gb_cli_model;

/* Load `path` (NULL: the default model, with a message saying how to get
 * one if it is missing), its sidecar and preprocessing; apply each
 * "KEY=VALUE" of overrides (n of them) with gb_preproc_set. need_image:
 * fail unless images can be prepared for it. Prints "glassbox: ..." and
 * returns false on failure (cm is then freed). */
bool gb_cli_model_open(gb_ctx *ctx, const char *path, const char *const *overrides, int n_overrides,
                       bool need_image, gb_cli_model *cm);
void gb_cli_model_close(gb_cli_model *cm);

/* The label of class k of output 0, or NULL. */
const char *gb_cli_label(const gb_cli_model *cm, int64_t k);

/* Softmax (or identity when the model ends in Softmax) of n values. */
void gb_cli_probs(const gb_cli_model *cm, const float *logits, int64_t n, double *p);

/* A growing list of strings (owned). */
typedef struct {
    char **v;
    int n, cap;
} gb_cli_list;
bool gb_cli_list_add(gb_cli_list *l, const char *s);
void gb_cli_list_free(gb_cli_list *l);

/* Expand image arguments: a file is taken as is (checked to exist), a
 * directory contributes its files with an image extension (.png .jpg .jpeg
 * .bmp .pgm .ppm, any case), sorted by name. Prints and returns false on a
 * missing path or an empty directory. */
bool gb_cli_collect_images(const char *const *args, int n, gb_cli_list *out);

/* The first sample image of the default model (models/default/samples/, by
 * name), for `glassbox explain` with no input. */
bool gb_cli_default_sample(const gb_cli_model *cm, char *buf, size_t cap);

/* "dir/cat.v2.png" -> "cat.v2" */
void gb_cli_stem(const char *path, char *buf, size_t cap);

/* Files written so far by a command, removed by gb_cli_outputs_rollback
 * when a later step fails, so a failed command leaves nothing behind. A
 * directory created by gb_cli_outputs_mkdir is removed too (if empty). */
typedef struct {
    gb_cli_list files;
    char made_dir[GB_CLI_PATH_MAX];
} gb_cli_outputs;
bool gb_cli_outputs_mkdir(gb_cli_outputs *o, const char *dir);
bool gb_cli_outputs_add(gb_cli_outputs *o, const char *path);
void gb_cli_outputs_rollback(gb_cli_outputs *o);
void gb_cli_outputs_free(gb_cli_outputs *o);

#endif
