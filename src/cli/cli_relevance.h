/* cli_relevance.h — the relevance methods' part of `glassbox explain` (lrp,
 * deeplift, deeplift_shap): flags, and the z-box input bounds derived from
 * the model's preprocessing; kept out of cmd_explain.c. */
#ifndef GB_CLI_RELEVANCE_H
#define GB_CLI_RELEVANCE_H

#include "glassbox/explain.h"

#include <stdbool.h>
#include <stdio.h>

#define GB_CLI_BOX_MAX 64

typedef struct {
    bool has_box;                 /* --box given */
    int n_box;
    float low[GB_CLI_BOX_MAX], high[GB_CLI_BOX_MAX];
} gb_cli_relevance;

/* Help lines for the flags. */
void gb_cli_relevance_help(FILE *f);

/* If arg is one of the relevance flags, parse its value v into o / p and
 * return 1; 0 if it is not one of them; -1 on a bad value (printed). */
int gb_cli_relevance_flag(const char *arg, const char *v, gb_explain_opts *o, gb_cli_relevance *p);

/* Before explaining: the z-box bounds into o — those of --box, else, for
 * image input with known preprocessing, the normalised images of pixel
 * values 0 and 255 per channel: (0 / scale - mean) / std and
 * (255 / scale - mean) / std. pp may be NULL. */
void gb_cli_relevance_prepare(gb_cli_relevance *p, const gb_preproc *pp, gb_explain_opts *o);

#endif
