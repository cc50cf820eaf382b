/* cmd_maximize.c — `glassbox maximize`: activation maximization, the input
 * that a class logit, unit, channel or layer direction responds to most
 * (include/glassbox/visualize.h). */
#include "cli/vis_common.h"
#include "glassbox/visualize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OBJ 16

static void help(FILE *f) {
    fprintf(f,
            "usage: glassbox maximize [--model M] (--target K | --neuron TENSOR:c,h,w | --channel TENSOR:c |\n"
            "                          --direction TENSOR:FILE.npy) [--weight W]... [--steps N] [--seed S]\n"
            "                         [--lr LR] [--param fourier|pixel] [--optimizer adam|sgd] [--images N]\n"
            "                         [--diversity W] [--diversity-layer TENSOR] [--l2 W] [--tv W]\n"
            "                         [--blur SIGMA] [--blur-every K] [--clip-percentile P] [--clip-range]\n"
            "                         [--jitter PX] [--scale-jitter S] [--rotate DEG] [--no-decorrelate]\n"
            "                         [--decay-power P] [--init-sd SD] [--threads N] [--preproc KEY=VALUE]...\n"
            "                         --out-png FILE [--out-npy FILE]\n"
            "\n"
            "Synthesizes the input that maximizes an objective by gradient ascent from noise (Erhan et al.\n"
            "2009; Simonyan et al. 2014; Yosinski et al. 2015; Olah et al. 2017). Objectives can be repeated\n"
            "and are summed; --weight scales the objective given just before it.\n"
            "  --target K          logit K of the first output (a class label from MODEL.json works too)\n"
            "  --neuron T:c,h,w    one unit of tensor T (T:c: channel c's map, as --channel)\n"
            "  --channel T:c       the mean of channel c's map\n"
            "  --direction T:F     the mean over positions of <d, T[:, :, h, w]>, d from F.npy (C values)\n"
            "Parameterization: fourier (default; lucid's decorrelated Fourier image through a sigmoid, with\n"
            "random jitter/scale/rotation each step) or pixel (the model input itself: use --l2, --tv,\n"
            "--blur, --clip-percentile, --clip-range as in Yosinski et al. 2015). Defaults: 256 steps, Adam\n"
            "lr 0.05, jitter H/16 px, scale +-5%%, rotation +-5 degrees (fourier); none (pixel).\n"
            "--images N optimizes N images together; --diversity W pushes them apart (Gram-matrix cosine).\n"
            "Writes the image(s) at the model's input size to --out-png (side by side) and the model\n"
            "input(s) to --out-npy (ready for `glassbox predict --input`). Prints each image's objective\n"
            "and, for a classifier, its top class.\n");
}

typedef struct {
    const char *model, *out_png, *out_npy, *div_layer;
    gb_vis_objective obj[MAX_OBJ];
    const char *obj_spec[MAX_OBJ];   /* --target / --direction text, resolved after loading */
    gb_vis_unit units[MAX_OBJ];
    int n_obj;
    gb_maximize_opts o;
    bool jitter_set, scale_set, rotate_set;
    int threads;
    gb_cli_list over;
} args_t;

static int parse(int argc, char **argv, args_t *a) {
    a->o = (gb_maximize_opts)GB_MAXIMIZE_OPTS_INIT;
    gb_ctx *ctx = NULL;
    if (gb_ctx_create(&ctx)) return GB_EXIT_FAIL;
    int rc = GB_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            help(stdout);
            rc = -1;
            goto out;
        }
        if (!strcmp(arg, "--no-decorrelate")) {
            a->o.decorrelate = 0;
            continue;
        }
        if (!strcmp(arg, "--clip-range")) {
            a->o.clip_range = 1;
            continue;
        }
        if (arg[0] != '-') {
            gb_cli_error("maximize: unexpected argument '%s'", arg);
            goto out;
        }
        if (!(v = gb_cli_value(argc, argv, &i))) goto out;
        long n;
        double d;
        if (!strcmp(arg, "--target") || !strcmp(arg, "--neuron") || !strcmp(arg, "--channel") ||
            !strcmp(arg, "--direction")) {
            if (a->n_obj == MAX_OBJ) {
                gb_cli_error("maximize: at most %d objectives", MAX_OBJ);
                goto out;
            }
            gb_vis_objective *ob = &a->obj[a->n_obj];
            a->obj_spec[a->n_obj] = v;
            if (!strcmp(arg, "--target")) {
                ob->kind = GB_VIS_OBJ_CLASS;
            } else if (!strcmp(arg, "--direction")) {
                ob->kind = GB_VIS_OBJ_DIRECTION;
                const char *c = strrchr(v, ':');
                if (!c || c == v || !c[1]) {
                    gb_cli_error("--direction: expected TENSOR:FILE.npy, got '%s'", v);
                    goto out;
                }
            } else {
                gb_vis_unit *u = &a->units[a->n_obj];
                if (gb_vis_unit_parse(ctx, v, u)) {
                    gb_cli_error("%s: %s", arg, gb_ctx_errmsg(ctx));
                    goto out;
                }
                if (!strcmp(arg, "--channel") && u->has_hw) {
                    gb_cli_error("--channel: expected TENSOR:c, got '%s' (use --neuron for one unit)", v);
                    goto out;
                }
                ob->kind = u->has_hw ? GB_VIS_OBJ_NEURON : GB_VIS_OBJ_CHANNEL;
                ob->tensor = u->tensor;
                ob->index = u->channel;
                ob->h = u->h, ob->w = u->w;
            }
            a->n_obj++;
        } else if (!strcmp(arg, "--weight")) {
            if (!a->n_obj) {
                gb_cli_error("--weight: give it after the objective it scales");
                goto out;
            }
            if (!gb_cli_vis_double(arg, v, -1e6, 1e6, &d)) goto out;
            if (d == 0) {
                gb_cli_error("--weight: 0 would remove the objective");
                goto out;
            }
            a->obj[a->n_obj - 1].weight = d;
        } else if (!strcmp(arg, "--model")) a->model = v;
        else if (!strcmp(arg, "--out-png")) a->out_png = v;
        else if (!strcmp(arg, "--out-npy")) a->out_npy = v;
        else if (!strcmp(arg, "--steps")) {
            if (!gb_cli_vis_int(arg, v, 0, 1000000, &n)) goto out;
            a->o.steps = (int)n;
        } else if (!strcmp(arg, "--seed")) {
            if (!gb_cli_vis_u64(arg, v, &a->o.seed)) goto out;
        } else if (!strcmp(arg, "--lr")) {
            if (!gb_cli_vis_double(arg, v, 1e-12, 1e6, &a->o.lr)) goto out;
        } else if (!strcmp(arg, "--param")) {
            if (!strcmp(v, "fourier")) a->o.param = GB_VIS_PARAM_FOURIER;
            else if (!strcmp(v, "pixel")) a->o.param = GB_VIS_PARAM_PIXEL;
            else {
                gb_cli_error("--param: '%s' is not fourier or pixel", v);
                goto out;
            }
        } else if (!strcmp(arg, "--optimizer")) {
            if (!strcmp(v, "adam")) a->o.optimizer = GB_VIS_OPTIM_ADAM;
            else if (!strcmp(v, "sgd")) a->o.optimizer = GB_VIS_OPTIM_SGD;
            else {
                gb_cli_error("--optimizer: '%s' is not adam or sgd", v);
                goto out;
            }
        } else if (!strcmp(arg, "--images")) {
            if (!gb_cli_vis_int(arg, v, 1, 256, &n)) goto out;
            a->o.n_images = (int)n;
        } else if (!strcmp(arg, "--diversity")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e9, &a->o.diversity)) goto out;
        } else if (!strcmp(arg, "--diversity-layer")) a->div_layer = v;
        else if (!strcmp(arg, "--l2")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e9, &a->o.l2)) goto out;
        } else if (!strcmp(arg, "--tv")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e9, &a->o.tv)) goto out;
        } else if (!strcmp(arg, "--blur")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e3, &a->o.blur_sigma)) goto out;
        } else if (!strcmp(arg, "--blur-every")) {
            if (!gb_cli_vis_int(arg, v, 1, 1000000, &n)) goto out;
            a->o.blur_every = (int)n;
        } else if (!strcmp(arg, "--clip-percentile")) {
            if (!gb_cli_vis_double(arg, v, 0, 99.999, &a->o.clip_percentile)) goto out;
        } else if (!strcmp(arg, "--jitter")) {
            if (!gb_cli_vis_double(arg, v, 0, 1e4, &a->o.jitter)) goto out;
            a->jitter_set = true;
        } else if (!strcmp(arg, "--scale-jitter")) {
            if (!gb_cli_vis_double(arg, v, 0, 0.9, &a->o.scale_jitter)) goto out;
            a->scale_set = true;
        } else if (!strcmp(arg, "--rotate")) {
            if (!gb_cli_vis_double(arg, v, 0, 180, &a->o.rotate_deg)) goto out;
            a->rotate_set = true;
        } else if (!strcmp(arg, "--decay-power")) {
            if (!gb_cli_vis_double(arg, v, 0, 10, &a->o.decay_power)) goto out;
        } else if (!strcmp(arg, "--init-sd")) {
            if (!gb_cli_vis_double(arg, v, 0, 100, &a->o.init_sd)) goto out;
        } else if (!strcmp(arg, "--threads")) {
            if (!gb_cli_vis_int(arg, v, 1, 256, &n)) goto out;
            a->threads = (int)n;
        } else if (!strcmp(arg, "--preproc")) {
            if (!gb_cli_list_add(&a->over, v)) goto out;
        } else {
            gb_cli_error("maximize: unknown option '%s' (glassbox maximize --help)", arg);
            goto out;
        }
        (void)d;
    }
    if (!a->n_obj) {
        gb_cli_error("maximize: give an objective: --target, --neuron, --channel or --direction");
        goto out;
    }
    if (!a->out_png) {
        gb_cli_error("maximize: --out-png is required");
        goto out;
    }
    a->o.diversity_layer = a->div_layer;
    rc = GB_EXIT_OK;
out:
    gb_ctx_free(ctx);
    return rc;
}

/* --target K or a label; --direction T:F.npy (loads F into *dir). */
static bool resolve(gb_ctx *ctx, const gb_cli_model *cm, args_t *a, gb_tensor **dirs) {
    for (int k = 0; k < a->n_obj; k++) {
        gb_vis_objective *ob = &a->obj[k];
        const char *v = a->obj_spec[k];
        if (ob->kind == GB_VIS_OBJ_CLASS) {
            char *end;
            long long t = strtoll(v, &end, 10);
            if (*v && !*end && t >= 0) {
                ob->index = t;
            } else {
                ob->index = -1;
                for (int i = 0; cm->sc && i < cm->sc->n_labels; i++)
                    if (!strcmp(cm->sc->labels[i], v)) ob->index = i;
                if (ob->index < 0) {
                    gb_cli_error("--target: '%s' is neither a class index nor a label of %s", v, cm->path);
                    return false;
                }
            }
        } else if (ob->kind == GB_VIS_OBJ_DIRECTION) {
            const char *c = strrchr(v, ':');
            snprintf(a->units[k].tensor, sizeof a->units[k].tensor, "%.*s", (int)(c - v), v);
            if (gb_npy_read(ctx, c + 1, &dirs[k]) ||
                (dirs[k]->dtype != GB_DTYPE_F32 && gb_tensor_cast(ctx, dirs[k], GB_DTYPE_F32))) {
                gb_cli_error("--direction: %s", gb_ctx_errmsg(ctx));
                return false;
            }
            ob->tensor = a->units[k].tensor;
            ob->direction = dirs[k]->data;
            ob->n_direction = dirs[k]->numel;
        }
    }
    return true;
}

int gb_cmd_maximize(int argc, char **argv) {
    args_t a;
    memset(&a, 0, sizeof a);
    int rc = parse(argc, argv, &a);
    if (rc) {
        gb_cli_list_free(&a.over);
        return rc < 0 ? GB_EXIT_OK : rc;
    }
    rc = GB_EXIT_FAIL;
    gb_ctx *ctx = NULL;
    gb_cli_model cm;
    memset(&cm, 0, sizeof cm);
    gb_session *s = NULL;
    gb_tensor *x = NULL, *dirs[MAX_OBJ] = {0};
    gb_image *img = NULL;
    double *final = NULL;
    gb_cli_outputs outs = {0};
    if (gb_ctx_create(&ctx)) goto out;
    if (a.threads) gb_ctx_set_threads(ctx, a.threads);
    if (!gb_cli_model_open(ctx, a.model, (const char *const *)a.over.v, a.over.n, false, &cm)) goto out;
    if (!resolve(ctx, &cm, &a, dirs)) goto out;
    if (a.o.param == GB_VIS_PARAM_FOURIER) {
        /* Transformation robustness by default (Olah et al. 2017), scaled to
         * the image: lucent's jitter of 8 + 4 pixels at 224 is ~1/16 of the side. */
        gb_value_info in;
        gb_model_input(cm.m, 0, &in);
        int side = cm.has_pp ? cm.pp.height : (in.ndim == 4 ? (int)in.dims[2] : 0);
        if (!a.jitter_set) a.o.jitter = side > 0 ? ceil(side / 16.0) : 0;
        if (!a.scale_set) a.o.scale_jitter = 0.05;
        if (!a.rotate_set) a.o.rotate_deg = 5;
    }
    if (gb_session_create(cm.m, &s)) {
        gb_cli_error("%s", gb_ctx_errmsg(ctx));
        goto out;
    }
    final = calloc((size_t)a.o.n_images, sizeof *final);
    if (!final) goto out;
    if (gb_maximize(s, cm.has_pp ? &cm.pp : NULL, a.obj, a.n_obj, &a.o, &x, final)) {
        gb_cli_error("maximize: %s", gb_ctx_errmsg(ctx));
        goto out;
    }
    if (!gb_cli_vis_input_png(ctx, &cm, x, 1, &img)) goto out;
    if (!gb_cli_vis_write_png(ctx, &outs, a.out_png, img)) goto out;
    if (a.out_npy && !gb_cli_vis_write_npy(ctx, &outs, a.out_npy, x)) goto out;
    /* how the model sees the result */
    const gb_tensor *in[1] = {x};
    const gb_tensor *logits = NULL;
    if (!gb_session_run(s, in, 1)) logits = gb_session_output(s, 0);
    for (int b = 0; b < a.o.n_images; b++) {
        printf("image %d: objective %.6g", b, final[b]);
        if (logits && logits->ndim == 2 && logits->dims[0] == a.o.n_images && logits->dims[1] > 1) {
            int64_t K = logits->dims[1], best = 0;
            const float *row = (const float *)logits->data + b * K;
            double *p = malloc(sizeof *p * (size_t)K);
            if (p) {
                gb_cli_probs(&cm, row, K, p);
                for (int64_t k = 1; k < K; k++)
                    if (p[k] > p[best]) best = k;
                const char *lab = gb_cli_label(&cm, best);
                printf("  top class %lld%s%s%s (p=%.3f)", (long long)best, lab ? " '" : "", lab ? lab : "",
                       lab ? "'" : "", p[best]);
                for (int k = 0; k < a.n_obj; k++)
                    if (a.obj[k].kind == GB_VIS_OBJ_CLASS && !a.obj[k].tensor && a.obj[k].index < K)
                        printf("  p(class %lld)=%.3f", (long long)a.obj[k].index, p[a.obj[k].index]);
                free(p);
            }
        }
        printf("\n");
    }
    printf("wrote %s%s%s\n", a.out_png, a.out_npy ? " and " : "", a.out_npy ? a.out_npy : "");
    rc = GB_EXIT_OK;
out:
    if (rc) gb_cli_outputs_rollback(&outs);
    gb_cli_outputs_free(&outs);
    for (int k = 0; k < MAX_OBJ; k++) gb_tensor_free(dirs[k]);
    free(final);
    gb_image_free(img);
    gb_tensor_free(x);
    gb_session_free(s);
    gb_cli_model_close(&cm);
    gb_ctx_free(ctx);
    gb_cli_list_free(&a.over);
    return rc;
}
