/* main.c — the glassbox command-line tool: dispatch to subcommands. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gb_cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("glassbox: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *gb_cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        gb_cli_error("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"info", gb_cmd_info, "MODEL                      inputs, outputs, nodes with shapes, params and FLOPs"},
    {"run", gb_cmd_run, "--model M --input x.npy... --out-dir D   run forward, write every output as .npy"},
    {"predict", gb_cmd_predict, "[--model M] --image FILE|DIR... [--top K]   top-K classes with labels and probabilities"},
    {"explain", gb_cmd_explain, "[--model M] [--image F | --input x.npy] --method NAME,...   attribution heatmaps"},
    {"segment", gb_cmd_segment, "--image F [--model M] [--segments N] [--out-npy labels.npy]   SLIC superpixels"},
    {"grad", gb_cmd_grad, "--model M --input x.npy [--target K] [--at T] --out g.npy   gradient of a logit"},
    {"concepts-gen", gb_cmd_concepts_gen, "--out DIR --count N [--size S] [--seed S]   synthetic Broden-format concept dataset"},
    {"dissect", gb_cmd_dissect, "[--model M] --data BRODEN_DIR --layer T[,T...] --out-dir D   Network Dissection"},
    {"tcav", gb_cmd_tcav, "[--model M] --layer T --concept D --random D... --class-images D --target K --out F.json   TCAV"},
    {"probe", gb_cmd_probe, "[--model M] --data BRODEN_DIR --layer T[,T...]   linear classifier probes per layer"},
    {"features", gb_cmd_features, "[--model M] (--image F | --input x.npy) --layer T --out-png FILE   what a layer holds"},
    {"maximize", gb_cmd_maximize, "[--model M] (--target K | --neuron T:c[,h,w] | --channel T:c) --out-png FILE   activation maximization"},
    {"invert", gb_cmd_invert, "[--model M] (--image F | --input x.npy) --layer T --out-png FILE   network inversion"},
    {"train-decoder", gb_cmd_train_decoder, "--layer T --init D0.onnx --dataset x.npy --out D.onnx   learned inversion decoder"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: glassbox COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglassbox COMMAND --help shows the options of one command.\n");
}

/* OpenMP's default (GNU libgomp) keeps idle worker threads spinning. When the
 * machine is busy (another job on one of two cores), each parallel region
 * then waits for a descheduled spinner: measured on the default model,
 * Integrated Gradients took 4-10 s instead of 1.4 s with passive waiting,
 * for 0.09 s of actual compute. libgomp reads OMP_WAIT_POLICY only when it
 * loads, so the CLI sets it and re-executes itself once; a user's own
 * setting is respected. Library users choose for their own process. */
static void prefer_passive_openmp(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GB_NO_REEXEC")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0 || setenv("GB_NO_REEXEC", "1", 1) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: carry on as we are */
}

int main(int argc, char **argv) {
    prefer_passive_openmp(argv);
    if (argc < 2) {
        usage(stderr);
        return GB_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return GB_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    gb_cli_error("unknown command '%s' (glassbox --help lists them)", argv[1]);
    return GB_EXIT_USAGE;
}
