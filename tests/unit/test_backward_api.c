/*
 * test_backward_api.c — the backward pass as users drive it: seeds, reading
 * gradients and activations by tensor or node name, backward rules (Guided
 * Backprop, DeconvNet, per-node overrides, rule helpers), reference runs for
 * DeepLIFT-style rules, and parameter gradients only on request.
 *
 * References: tests/fixtures/rules/ (made by tests/scripts/make_rule_fixtures.py
 * with PyTorch autograd and custom ReLU Functions).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassbox/glassbox.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    gb_ctx *ctx;
    gb_model *m;
    gb_session *s;
    gb_tensor *x;
    int64_t top[2];
} fixture;

static gb_tensor *load(gb_ctx *ctx, const char *file) {
    char p[1024];
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/tests/fixtures/rules/%s", src ? src : ".", file);
    gb_tensor *t = NULL;
    if (strstr(file, ".npy")) {
        if (gb_npy_read(ctx, p, &t)) fail_msg("%s", gb_ctx_errmsg(ctx));
    }
    return t;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    char p[1024];
    const char *src = getenv("GB_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/tests/fixtures/rules/relu_net.onnx", src ? src : ".");
    assert_int_equal(gb_ctx_create(&f->ctx), GB_OK);
    if (gb_model_load(f->ctx, p, &f->m)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    assert_int_equal(gb_session_create(f->m, &f->s), GB_OK);
    gb_session_keep_activations(f->s, 1);
    f->x = load(f->ctx, "input.npy");
    const gb_tensor *in[1] = {f->x};
    if (gb_session_run(f->s, in, 1)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
    const gb_tensor *y = gb_session_output(f->s, 0);
    for (int b = 0; b < 2; b++) {
        const float *row = (const float *)y->data + b * y->dims[1];
        f->top[b] = 0;
        for (int64_t k = 1; k < y->dims[1]; k++)
            if (row[k] > row[f->top[b]]) f->top[b] = k;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    gb_tensor_free(f->x);
    gb_session_free(f->s);
    gb_model_free(f->m);
    gb_ctx_free(f->ctx);
    free(f);
    return 0;
}

static void expect_close(const gb_tensor *got, const gb_tensor *want, double tol, const char *what) {
    assert_non_null(got);
    assert_int_equal(got->numel, want->numel);
    double num = 0, den = 0;
    for (int64_t i = 0; i < got->numel; i++) {
        double d = (double)((float *)got->data)[i] - ((float *)want->data)[i];
        num += d * d;
        den += (double)((float *)want->data)[i] * ((float *)want->data)[i];
    }
    double rel = sqrt(num / (den > 0 ? den : 1));
    if (!(rel <= tol)) fail_msg("%s: relative L2 error %.3g > %.3g", what, rel, tol);
}

static void backward_classes(fixture *f, const gb_rule *rules, int n_rules) {
    gb_seed seed = {.classes = f->top};
    if (gb_session_backward(f->s, &seed, rules, n_rules)) fail_msg("%s", gb_ctx_errmsg(f->ctx));
}

static void test_plain_gradient(void **state) {
    fixture *f = *state;
    backward_classes(f, NULL, 0);
    gb_tensor *want = load(f->ctx, "grad.npy");
    expect_close(gb_session_grad(f->s, "input"), want, 1e-5, "plain gradient");
    gb_tensor_free(want);
}

static void test_guided_and_deconvnet(void **state) {
    fixture *f = *state;
    gb_rule guided = gb_rule_guided_relu(), deconv = gb_rule_deconvnet_relu();
    backward_classes(f, &guided, 1);
    gb_tensor *want = load(f->ctx, "guided.npy");
    expect_close(gb_session_grad(f->s, "input"), want, 1e-5, "guided backprop");
    gb_tensor_free(want);
    backward_classes(f, &deconv, 1);
    want = load(f->ctx, "deconv.npy");
    expect_close(gb_session_grad(f->s, "input"), want, 1e-5, "deconvnet");
    /* Rules last for one pass only: the next plain pass is the gradient again. */
    backward_classes(f, NULL, 0);
    gb_tensor *plain = load(f->ctx, "grad.npy");
    expect_close(gb_session_grad(f->s, "input"), plain, 1e-5, "plain after rules");
    gb_tensor_free(plain);
    gb_tensor_free(want);
}

/* Rules addressed to single nodes must equal the op-type rule when they
 * cover every node of that type, and a node rule must win over a type rule. */
static void test_node_rules(void **state) {
    fixture *f = *state;
    gb_rule d = gb_rule_deconvnet_relu(), g = gb_rule_guided_relu();
    gb_rule per_node[2] = {d, d};
    per_node[0].op_type = per_node[1].op_type = NULL;
    per_node[0].node = "/Relu";
    per_node[1].node = "/Relu_1";
    backward_classes(f, per_node, 2);
    gb_tensor *want = load(f->ctx, "deconv.npy");
    expect_close(gb_session_grad(f->s, "input"), want, 1e-5, "deconvnet by node name");
    gb_rule mixed[3] = {g, per_node[0], per_node[1]}; /* node rules beat the type rule */
    backward_classes(f, mixed, 3);
    expect_close(gb_session_grad(f->s, "input"), want, 1e-5, "node rules over a type rule");
    gb_tensor_free(want);
}

/* A rule built from the helpers: gb_rule_default with the call's own tensors
 * must reproduce the plain gradient; with a doubled incoming gradient on one
 * ReLU, the input gradient doubles (the net is linear in that signal). */
typedef struct {
    int calls;
    float scale;
} default_state;

static gb_status default_rule(void *user, const gb_rule_call *c) {
    default_state *st = user;
    st->calls++;
    if (st->scale == 1.0f) return gb_rule_default(c, NULL, NULL, NULL);
    gb_tensor g = *c->grad_out[0];
    float *d = malloc(sizeof(float) * (size_t)g.numel);
    for (int64_t i = 0; i < g.numel; i++) d[i] = st->scale * ((const float *)c->grad_out[0]->data)[i];
    g.data = d;
    const gb_tensor *go[1] = {&g};
    gb_status s = gb_rule_default(c, NULL, go, NULL);
    free(d);
    return s;
}

static void test_rule_default(void **state) {
    fixture *f = *state;
    default_state st = {0, 1.0f};
    gb_rule r = {.op_type = "Conv", .fn = default_rule, .user = &st};
    backward_classes(f, &r, 1);
    gb_tensor *want = load(f->ctx, "grad.npy");
    expect_close(gb_session_grad(f->s, "input"), want, 1e-6, "gb_rule_default");
    assert_int_equal(st.calls, 2);
    st.scale = 2.0f;
    r.op_type = NULL;
    r.node = "/Relu_1";
    backward_classes(f, &r, 1);
    for (int64_t i = 0; i < want->numel; i++) ((float *)want->data)[i] *= 2.0f;
    expect_close(gb_session_grad(f->s, "input"), want, 1e-6, "doubled relevance");
    gb_tensor_free(want);
}

/* gb_rule_forward recomputes the node's output from substituted inputs. */
static gb_status forward_rule(void *user, const gb_rule_call *c) {
    int *ok = user;
    gb_tensor *y;
    gb_tensor_create(NULL, c->out[0]->dtype, c->out[0]->ndim, c->out[0]->dims, &y);
    gb_tensor *const outs[1] = {y};
    if (gb_rule_forward(c, NULL, outs) == GB_OK &&
        memcmp(y->data, c->out[0]->data, sizeof(float) * (size_t)y->numel) == 0)
        (*ok)++;
    gb_tensor_free(y);
    return gb_rule_default(c, NULL, NULL, NULL);
}

static void test_rule_forward(void **state) {
    fixture *f = *state;
    int ok = 0;
    gb_rule r = {.op_type = "Conv", .fn = forward_rule, .user = &ok};
    backward_classes(f, &r, 1);
    assert_int_equal(ok, 2);
}

/* Seeds: a full seed tensor and single elements agree with the class seed. */
static void test_seeds(void **state) {
    fixture *f = *state;
    backward_classes(f, NULL, 0);
    gb_tensor *ref;
    assert_int_equal(gb_tensor_clone(f->ctx, gb_session_grad(f->s, "input"), &ref), GB_OK);
    const gb_tensor *y = gb_session_output(f->s, 0);
    gb_tensor *seed;
    assert_int_equal(gb_tensor_create(f->ctx, GB_DTYPE_F32, y->ndim, y->dims, &seed), GB_OK);
    for (int b = 0; b < 2; b++) ((float *)seed->data)[b * y->dims[1] + f->top[b]] = 1;
    gb_seed full = {.tensor = "logits", .seed = seed};
    assert_int_equal(gb_session_backward(f->s, &full, NULL, 0), GB_OK);
    expect_close(gb_session_grad(f->s, "input"), ref, 0, "full seed");
    /* element seed on item 1 only: item 0's gradient is zero, item 1's equals ref's */
    gb_seed one = {.element = 1 * y->dims[1] + f->top[1]};
    assert_int_equal(gb_session_backward(f->s, &one, NULL, 0), GB_OK);
    const gb_tensor *g = gb_session_grad(f->s, "input");
    int64_t per = g->numel / 2;
    for (int64_t i = 0; i < per; i++) assert_true(((float *)g->data)[i] == 0.0f);
    for (int64_t i = per; i < g->numel; i++) assert_true(((float *)g->data)[i] == ((float *)ref->data)[i]);
    /* seeding an intermediate tensor, addressed by node name */
    gb_seed mid = {.tensor = "/conv2/Conv", .element = 5};
    assert_int_equal(gb_session_backward(f->s, &mid, NULL, 0), GB_OK);
    assert_non_null(gb_session_grad(f->s, "input"));
    assert_null(gb_session_grad(f->s, "logits")); /* downstream of the seed: no gradient */
    /* wrt: the pass stops at that tensor — its gradient is the same as a
     * full pass's, and nothing below it gets one */
    gb_seed top = {.tensor = "logits", .seed = seed};
    assert_int_equal(gb_session_backward(f->s, &top, NULL, 0), GB_OK);
    gb_tensor *gmid;
    assert_int_equal(gb_tensor_clone(f->ctx, gb_session_grad(f->s, "/Relu_1_output_0"), &gmid), GB_OK);
    gb_seed stop = {.tensor = "logits", .seed = seed, .wrt = "/Relu_1_output_0"};
    assert_int_equal(gb_session_backward(f->s, &stop, NULL, 0), GB_OK);
    expect_close(gb_session_grad(f->s, "/Relu_1_output_0"), gmid, 0, "gradient with wrt");
    assert_null(gb_session_grad(f->s, "input"));
    gb_tensor_free(gmid);
    gb_seed nowrt = {.tensor = "logits", .seed = seed, .wrt = "no_such_tensor"};
    assert_int_equal(gb_session_backward(f->s, &nowrt, NULL, 0), GB_ERR_NOT_FOUND);
    gb_seed nopath = {.tensor = "/conv2/Conv", .element = 5, .wrt = "logits"};   /* logits are downstream */
    assert_int_equal(gb_session_backward(f->s, &nopath, NULL, 0), GB_ERR_ARG);
    /* errors */
    gb_seed bad = {.tensor = "no_such_tensor"};
    assert_int_equal(gb_session_backward(f->s, &bad, NULL, 0), GB_ERR_NOT_FOUND);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "no_such_tensor"));
    gb_seed far = {.element = 1000};
    assert_int_equal(gb_session_backward(f->s, &far, NULL, 0), GB_ERR_ARG);
    int64_t badcls[2] = {0, 99};
    gb_seed cls = {.classes = badcls};
    assert_int_equal(gb_session_backward(f->s, &cls, NULL, 0), GB_ERR_ARG);
    gb_tensor_free(seed);
    gb_tensor_free(ref);
}

/* Activations by tensor and node name; gradient at an intermediate tensor
 * equals the chain rule through the rest of the net (checked by FD on it). */
static void test_capture(void **state) {
    fixture *f = *state;
    const gb_tensor *a = gb_session_tensor(f->s, "/Relu_1_output_0");
    const gb_tensor *b = gb_session_tensor(f->s, "/Relu_1"); /* node name: its output */
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_int_equal(a->ndim, 4);
    assert_null(gb_session_tensor(f->s, "nope"));
    for (int64_t i = 0; i < a->numel; i++) assert_true(((float *)a->data)[i] >= 0);
}

/* A rule sees the reference run's activations (DeepLIFT's x0). */
typedef struct {
    const gb_tensor *expect_ref_out;
    int checked;
} ref_state;

static gb_status ref_rule(void *user, const gb_rule_call *c) {
    ref_state *st = user;
    if (c->ref_out && c->ref_in && c->ref_out[0]->numel == st->expect_ref_out->numel &&
        memcmp(c->ref_out[0]->data, st->expect_ref_out->data, sizeof(float) * (size_t)c->ref_out[0]->numel) == 0) {
        /* and ref_in is the ReLU input: ref_out == max(ref_in, 0) */
        bool ok = true;
        for (int64_t i = 0; i < c->ref_in[0]->numel; i++) {
            float x = ((const float *)c->ref_in[0]->data)[i];
            ok &= ((const float *)c->ref_out[0]->data)[i] == (x > 0 ? x : 0);
        }
        st->checked += ok;
    }
    return gb_rule_default(c, NULL, NULL, NULL);
}

static void test_reference_run(void **state) {
    fixture *f = *state;
    gb_tensor *x0;
    assert_int_equal(gb_tensor_clone(f->ctx, f->x, &x0), GB_OK);
    for (int64_t i = 0; i < x0->numel; i++) ((float *)x0->data)[i] *= 0.3f;
    const gb_tensor *in0[1] = {x0}, *in[1] = {f->x};
    assert_int_equal(gb_session_run(f->s, in0, 1), GB_OK);
    gb_tensor *relu_ref;
    assert_int_equal(gb_tensor_clone(f->ctx, gb_session_tensor(f->s, "/Relu_1"), &relu_ref), GB_OK);
    assert_int_equal(gb_session_run_reference(f->s, in0, 1), GB_OK);
    assert_int_equal(gb_session_run(f->s, in, 1), GB_OK);
    ref_state st = {relu_ref, 0};
    gb_rule r = {.node = "/Relu_1", .fn = ref_rule, .user = &st};
    backward_classes(f, &r, 1);
    assert_int_equal(st.checked, 1);
    gb_tensor_free(relu_ref);
    gb_tensor_free(x0);
}

/* Weight gradients only when asked; when asked, they match a finite difference. */
static void test_param_grads(void **state) {
    fixture *f = *state;
    backward_classes(f, NULL, 0);
    assert_null(gb_session_grad(f->s, "conv1.weight"));
    gb_session_param_grads(f->s, 1);
    const gb_tensor *in[1] = {f->x};
    assert_int_equal(gb_session_run(f->s, in, 1), GB_OK);
    backward_classes(f, NULL, 0);
    const gb_tensor *gw = gb_session_grad(f->s, "conv1.weight");
    assert_non_null(gw);
    float an = ((const float *)gw->data)[3];
    /* FD on that element: L = logits[0, top0] + logits[1, top1] */
    const gb_tensor *w = gb_session_tensor(f->s, "conv1.weight");
    float *wp = w->data, w0 = wp[3];
    double fd = 0;
    bool pass = false;
    /* Smaller steps when the first crosses a ReLU or max-pool kink. */
    for (float h = 1e-2f; h > 1e-5f && !pass; h *= 0.1f) {
        double L[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            wp[3] = w0 + (sgn ? -h : h);
            assert_int_equal(gb_session_run(f->s, in, 1), GB_OK);
            const gb_tensor *y = gb_session_output(f->s, 0);
            L[sgn] = (double)((float *)y->data)[f->top[0]] + ((float *)y->data)[y->dims[1] + f->top[1]];
        }
        wp[3] = w0;
        fd = (L[0] - L[1]) / (2 * h);
        pass = fabs(fd - an) <= 1e-2 * (fabs(fd) + fabs(an)) + 1e-4;
    }
    if (!pass)
        fail_msg("d L / d conv1.weight[3]: backward %.6g, finite difference %.6g", an, fd);
    gb_session_param_grads(f->s, 0);
    assert_int_equal(gb_session_run(f->s, in, 1), GB_OK);
}

static void test_needs_kept_activations(void **state) {
    fixture *f = *state;
    gb_session *s;
    assert_int_equal(gb_session_create(f->m, &s), GB_OK);
    const gb_tensor *in[1] = {f->x};
    gb_seed seed = {0};
    assert_int_equal(gb_session_backward(s, &seed, NULL, 0), GB_ERR_ARG); /* no run yet */
    assert_int_equal(gb_session_run(s, in, 1), GB_OK);
    assert_int_equal(gb_session_backward(s, &seed, NULL, 0), GB_ERR_ARG);
    assert_non_null(strstr(gb_ctx_errmsg(f->ctx), "keep_activations"));
    gb_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_gradient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guided_and_deconvnet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reference_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_param_grads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_needs_kept_activations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
