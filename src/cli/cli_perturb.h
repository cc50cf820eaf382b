/* cli_perturb.h — the perturbation methods' part of `glassbox explain`
 * (flags, a constant baseline, the feature mask file, progress on stderr, the
 * surrogate's report), kept out of cmd_explain.c. */
#ifndef GB_CLI_PERTURB_H
#define GB_CLI_PERTURB_H

#include "glassbox/explain.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    const char *mask_path;    /* --mask FILE (.npy label map(s) or an image) */
    bool has_value;           /* --baseline VALUE (a number) */
    double value;
    gb_tensor *baseline;      /* the constant baseline, (1, item) */
    gb_tensor *mask;          /* the loaded mask */
    /* progress */
    double t0, last;
    int64_t prev;
    bool shown;
} gb_cli_perturb;

/* Help lines for the flags. */
void gb_cli_perturb_help(FILE *f);

/* If arg is one of the perturbation flags, parse its value v into o / p and
 * return 1; return 0 if it is not one of them; -1 on a bad value (printed). */
int gb_cli_perturb_flag(const char *arg, const char *v, gb_explain_opts *o, gb_cli_perturb *p);

/* --baseline B: true (and p->value set) if B is a number. */
bool gb_cli_perturb_baseline_value(const char *b, gb_cli_perturb *p);

/* After the input x is known: the constant baseline, the mask, the progress
 * callback into o. Prints and returns false on failure. */
bool gb_cli_perturb_prepare(gb_ctx *ctx, gb_cli_perturb *p, const gb_tensor *x, gb_explain_opts *o);

/* For lime / kernel_shap: a line with the surrogate's R^2 and top features of item n. */
void gb_cli_perturb_report(const gb_explanation *r, int64_t n);

void gb_cli_perturb_free(gb_cli_perturb *p);

#endif
