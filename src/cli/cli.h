/* cli.h — shared pieces of the glassbox command-line tool. Only the CLI
 * prints and chooses exit codes; the library never does. */
#ifndef GB_CLI_H
#define GB_CLI_H

#include "glassbox/glassbox.h"
#include <stdbool.h>

/* Exit codes: 0 success, 1 runtime failure (bad file, bad model), 2 usage. */
enum { GB_EXIT_OK = 0, GB_EXIT_FAIL = 1, GB_EXIT_USAGE = 2 };

int gb_cmd_info(int argc, char **argv);
int gb_cmd_run(int argc, char **argv);
int gb_cmd_grad(int argc, char **argv);
int gb_cmd_predict(int argc, char **argv);
int gb_cmd_explain(int argc, char **argv);
int gb_cmd_concepts_gen(int argc, char **argv);
int gb_cmd_dissect(int argc, char **argv);
int gb_cmd_tcav(int argc, char **argv);
int gb_cmd_probe(int argc, char **argv);
int gb_cmd_segment(int argc, char **argv);
int gb_cmd_features(int argc, char **argv);
int gb_cmd_maximize(int argc, char **argv);
int gb_cmd_invert(int argc, char **argv);
int gb_cmd_train_decoder(int argc, char **argv);

/* Print "glassbox: <msg>" to stderr as one line. */
void gb_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Option parsing shared by the subcommands: returns the value following
 * argv[*i] for a flag that takes one, or NULL (after printing) if missing. */
const char *gb_cli_value(int argc, char **argv, int *i);

/* Plan input shapes for a model whose inputs may have free dimensions: free
 * dims become `batch` for dim 0 and fail otherwise unless `shape` (from
 * --shape "1x3x224x224") is given. Fills dummy zero tensors. */
int gb_cli_dummy_inputs(gb_ctx *ctx, const gb_model *m, const char *shape, int batch, gb_tensor **inputs);

#endif
