/* cmd_concepts_gen.c — `glassbox concepts-gen`: write a synthetic concept
 * dataset in the Broden format (gb_scenes_generate). */
#include "cli/cli.h"
#include "glassbox/concepts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox concepts-gen --out DIR --count N [--size S] [--seed SEED] [--val-fraction F]\n"
            "Writes N synthetic scenes (S x S pixels, default 64) in the Broden format of Network\n"
            "Dissection: DIR/index.csv, category.csv, label.csv, c_<category>.csv and DIR/images/ with\n"
            "each image and its label PNGs (label number = R + 256 * G) for the categories color,\n"
            "object, part and texture; the scene is a whole-image label. Image i depends only on\n"
            "(SEED, i) (default seed 0). A share F of the images (default 0.2) is in split 'val'.\n"
            "index.csv is written last: a failed run leaves no index.csv.\n");
}

int gb_cmd_concepts_gen(int argc, char **argv) {
    const char *out = NULL;
    gb_scenes_opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            return GB_EXIT_OK;
        }
        if (strcmp(a, "--out") && strcmp(a, "--count") && strcmp(a, "--size") && strcmp(a, "--seed") &&
            strcmp(a, "--val-fraction")) {
            gb_cli_error("concepts-gen: unknown argument '%s' (glassbox concepts-gen --help)", a);
            return GB_EXIT_USAGE;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) return GB_EXIT_USAGE;
        char *end;
        if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--val-fraction")) {
            double f = strtod(v, &end);
            if (*end || !(f > 0 && f < 1)) {
                gb_cli_error("--val-fraction: '%s' is not a number in (0, 1)", v);
                return GB_EXIT_USAGE;
            }
            o.val_fraction = f;
        } else if (!strcmp(a, "--seed")) {
            unsigned long long s = strtoull(v, &end, 10);
            if (*end || !*v || v[0] == '-') {
                gb_cli_error("--seed: '%s' is not a non-negative integer", v);
                return GB_EXIT_USAGE;
            }
            o.seed = s;
        } else {
            long n = strtol(v, &end, 10);
            long hi = !strcmp(a, "--count") ? 100000000L : 4096;
            long lo = !strcmp(a, "--count") ? 1 : 16;
            if (*end || !*v || n < lo || n > hi) {
                gb_cli_error("%s: '%s' is not an integer in %ld..%ld", a, v, lo, hi);
                return GB_EXIT_USAGE;
            }
            if (!strcmp(a, "--count")) o.count = (int)n;
            else o.size = (int)n;
        }
    }
    if (!out || !o.count) {
        gb_cli_error("concepts-gen: give --out DIR and --count N (glassbox concepts-gen --help)");
        return GB_EXIT_USAGE;
    }
    gb_ctx *ctx;
    if (gb_ctx_create(&ctx)) {
        gb_cli_error("out of memory");
        return GB_EXIT_FAIL;
    }
    int rc = GB_EXIT_OK;
    if (gb_scenes_generate(ctx, out, &o)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        rc = GB_EXIT_FAIL;
    } else {
        printf("wrote %d scenes of %dx%d to %s (Broden format: index.csv, images/)\n", o.count,
               o.size ? o.size : 64, o.size ? o.size : 64, out);
    }
    gb_ctx_free(ctx);
    return rc;
}
