/* cli_relevance.c — flags of lrp / deeplift / deeplift_shap (cli_relevance.h). */
#include "cli/cli_relevance.h"
#include "cli/cli.h"
#include "cli/cli_common.h"

#include <stdlib.h>
#include <string.h>

void gb_cli_relevance_help(FILE *f) {
    fprintf(f,
            "relevance methods (lrp, deeplift, deeplift_shap):\n"
            "  --composite NAME    lrp rule set (Zennit's): epsilon_plus (default), epsilon_gamma_box,\n"
            "                      epsilon_alpha2_beta1, epsilon_plus_flat, epsilon_alpha2_beta1_flat, epsilon\n"
            "  --rule NAME         one lrp rule for every conv and dense layer: epsilon, zplus, alpha1beta0,\n"
            "                      alpha2beta1, alphabeta, gamma, zbox, wsquare, flat\n"
            "  --first-rule NAME   the rule of the first layer (e.g. zbox, flat, wsquare)\n"
            "  --epsilon E         epsilon rule's epsilon (default 1e-6; 0 = LRP-0)\n"
            "  --gamma G           gamma rule's gamma (default 0.25)\n"
            "  --lrp-alpha A       alphabeta rule's alpha, beta = A - 1 (default 2)\n"
            "  --box LOW,HIGH      zbox input bounds (one pair, or LOW1,..,LOWC,HIGH1,..,HIGHC per channel;\n"
            "                      default for images: pixel values 0 and 255 after preprocessing)\n"
            "  --deeplift-rule R   rescale (default) or reveal_cancel; the reference is --baseline\n"
            "                      (deeplift_shap: a .npy set of references)\n"
            "  --deeplift-maxpool M  rule (default: Captum's maxpool(), summation-exact) or gradient\n"
            "                      (what Captum's DeepLift computes on torch 1.13)\n"
            "  --layer T           lrp: the relevance at tensor T; deeplift: (T - T') x multipliers\n");
}

static bool number(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi)) {
        gb_cli_error("%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

static int parse_box(const char *v, gb_cli_relevance *p) {
    float vals[2 * GB_CLI_BOX_MAX];
    int n = 0;
    const char *s = v;
    while (*s) {
        char *end;
        double d = strtod(s, &end);
        if (end == s || n == 2 * GB_CLI_BOX_MAX || (*end && *end != ',') || d != d) {
            gb_cli_error("--box: '%s' is not LOW,HIGH or LOW1,..,LOWC,HIGH1,..,HIGHC", v);
            return -1;
        }
        vals[n++] = (float)d;
        s = *end ? end + 1 : end;
        if (*end && !*s) n = -1;   /* trailing comma */
        if (n < 0) break;
    }
    if (n < 2 || n % 2) {
        gb_cli_error("--box: '%s' is not LOW,HIGH or LOW1,..,LOWC,HIGH1,..,HIGHC", v);
        return -1;
    }
    p->n_box = n / 2;
    for (int c = 0; c < p->n_box; c++) {
        p->low[c] = vals[c];
        p->high[c] = vals[p->n_box + c];
        if (!(p->low[c] <= p->high[c])) {
            gb_cli_error("--box: low %g > high %g", vals[c], vals[p->n_box + c]);
            return -1;
        }
    }
    p->has_box = true;
    return 1;
}

int gb_cli_relevance_flag(const char *arg, const char *v, gb_explain_opts *o, gb_cli_relevance *p) {
    double d;
    if (!strcmp(arg, "--composite")) o->lrp_composite = v;
    else if (!strcmp(arg, "--rule")) o->lrp_rule = v;
    else if (!strcmp(arg, "--first-rule")) o->lrp_first_rule = v;
    else if (!strcmp(arg, "--epsilon")) {
        if (!number(arg, v, 0, 1e6, &d)) return -1;
        o->lrp_epsilon = d > 0 ? d : -1;   /* the option's 0 means default; < 0 means exactly 0 */
    } else if (!strcmp(arg, "--gamma")) {
        if (!number(arg, v, 1e-9, 1e6, &d)) return -1;
        o->lrp_gamma = d;
    } else if (!strcmp(arg, "--lrp-alpha")) {
        if (!number(arg, v, 1, 1e6, &d)) return -1;
        o->lrp_alpha = d;
    } else if (!strcmp(arg, "--box")) return parse_box(v, p);
    else if (!strcmp(arg, "--deeplift-rule")) {
        if (!strcmp(v, "rescale")) o->deeplift_rule = GB_DEEPLIFT_RESCALE;
        else if (!strcmp(v, "reveal_cancel") || !strcmp(v, "revealcancel")) o->deeplift_rule = GB_DEEPLIFT_REVEAL_CANCEL;
        else {
            gb_cli_error("--deeplift-rule: unknown rule '%s' (rescale, reveal_cancel)", v);
            return -1;
        }
    } else if (!strcmp(arg, "--deeplift-maxpool")) {
        if (!strcmp(v, "rule")) o->deeplift_maxpool_grad = 0;
        else if (!strcmp(v, "gradient")) o->deeplift_maxpool_grad = 1;
        else {
            gb_cli_error("--deeplift-maxpool: '%s' is not rule or gradient", v);
            return -1;
        }
    } else return 0;
    return 1;
}

void gb_cli_relevance_prepare(gb_cli_relevance *p, const gb_preproc *pp, gb_explain_opts *o) {
    if (!p->has_box && pp && pp->channels > 0 && pp->channels <= GB_CLI_BOX_MAX && pp->scale > 0) {
        p->n_box = pp->channels;
        for (int c = 0; c < pp->channels; c++) {
            double sd = pp->std[c] > 0 ? pp->std[c] : 1;
            p->low[c] = (float)((0.0 / pp->scale - pp->mean[c]) / sd);
            p->high[c] = (float)((255.0 / pp->scale - pp->mean[c]) / sd);
        }
        if (pp->layout != GB_LAYOUT_NCHW && p->n_box > 1) {   /* lrp's per-channel bounds are on axis 1 */
            for (int c = 1; c < p->n_box; c++) {
                if (p->low[c] < p->low[0]) p->low[0] = p->low[c];
                if (p->high[c] > p->high[0]) p->high[0] = p->high[c];
            }
            p->n_box = 1;
        }
        p->has_box = true;
    }
    if (p->has_box) {
        o->lrp_low = p->low;
        o->lrp_high = p->high;
        o->lrp_box_n = p->n_box;
    }
}
