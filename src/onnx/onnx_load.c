/*
 * onnx_load.c — ONNX ModelProto -> glassbox graph IR.
 *
 * The protobuf decoder is generated at build time by protoc-c from the
 * onnx.proto that Debian's libonnx-dev installs. This file only walks the
 * decoded message: it copies initializers into gb_tensors, converts node
 * attributes, resolves tensor names to ids, orders nodes topologically, and
 * binds each node to its operator. Every unsupported operator is collected
 * and reported in one message.
 */
#include "onnx/onnx_load.h"
#include "onnx.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- name -> id hash (open addressing) ---------------------------------- */

typedef struct {
    int cap;        /* power of two */
    int *slots;     /* tensor id or -1 */
    gb__tensor_def *defs;
} name_table;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int table_find(const name_table *t, const char *name) {
    for (uint64_t h = hash_str(name);; h++) {
        int id = t->slots[h & (uint64_t)(t->cap - 1)];
        if (id < 0) return -1;
        if (strcmp(t->defs[id].name, name) == 0) return id;
    }
}

static void table_put(name_table *t, const char *name, int id) {
    for (uint64_t h = hash_str(name);; h++) {
        int *slot = &t->slots[h & (uint64_t)(t->cap - 1)];
        if (*slot < 0) {
            *slot = id;
            return;
        }
    }
}

/* ---- TensorProto -> gb_tensor ------------------------------------------- */

static const char *onnx_type_name(int t) {
    static const char *const names[] = {"UNDEFINED", "FLOAT",  "UINT8",  "INT8",      "UINT16",
                                        "INT16",     "INT32",  "INT64",  "STRING",    "BOOL",
                                        "FLOAT16",   "DOUBLE", "UINT32", "UINT64",    "COMPLEX64",
                                        "COMPLEX128", "BFLOAT16"};
    return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

gb_status gb__tensor_from_onnx(gb_ctx *ctx, const void *proto, const char *what, gb_tensor **out) {
    const Onnx__TensorProto *tp = proto;
    *out = NULL;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s: tensor data stored in an external file is not supported", what);
    if (tp->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
        tp->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s: element type %s is not supported (float32 and int64 only)",
                       what, onnx_type_name(tp->data_type));
    if (tp->n_dims > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s: %zu dimensions (at most %d)", what, tp->n_dims, GB_MAX_DIMS);
    int64_t dims[GB_MAX_DIMS];
    int64_t n = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        dims[i] = tp->dims[i];
        if (dims[i] < 0 || (dims[i] && n > ((int64_t)1 << 40) / dims[i]))
            return gb__err(ctx, GB_ERR_FORMAT, "%s: invalid dimension %lld", what, (long long)dims[i]);
        n *= dims[i];
    }
    gb_dtype dt = tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? GB_DTYPE_F32 : GB_DTYPE_I64;
    size_t es = gb_dtype_size(dt);
    size_t have;
    const void *src;
    if (tp->has_raw_data) {
        have = tp->raw_data.len / es;
        src = tp->raw_data.data;
        if (tp->raw_data.len % es)
            return gb__err(ctx, GB_ERR_FORMAT, "%s: raw_data of %zu bytes is not a whole number of %s elements",
                           what, tp->raw_data.len, gb_dtype_name(dt));
    } else if (dt == GB_DTYPE_F32) {
        have = tp->n_float_data;
        src = tp->float_data;
    } else {
        have = tp->n_int64_data;
        src = tp->int64_data;
    }
    if ((int64_t)have != n)
        return gb__err(ctx, GB_ERR_FORMAT, "%s: %zu elements stored, shape needs %lld", what, have, (long long)n);
    gb_status st = gb_tensor_create(ctx, dt, (int)tp->n_dims, dims, out);
    if (st) return st;
    /* raw_data is little-endian, as is every machine glassbox targets. */
    if (n) memcpy((*out)->data, src, (size_t)n * es);
    return GB_OK;
}

/* ---- model construction --------------------------------------------------- */

static char *dupstr(const char *s) {
    size_t n = strlen(s ? s : "") + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s ? s : "", n);
    return d;
}

static bool is_default_domain(const char *d) { return !d || !d[0] || strcmp(d, "ai.onnx") == 0; }

static gb_status convert_value_info(gb_ctx *ctx, const Onnx__ValueInfoProto *vi, gb_value_info *out,
                                    const char *role) {
    memset(out, 0, sizeof *out);
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s '%s' is not a tensor (sequences, maps and sparse tensors are not supported)",
                       role, vi->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int et = tt->has_elem_type ? tt->elem_type : 0;
    if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && et != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s '%s' has element type %s (float32 and int64 only)", role,
                       vi->name, onnx_type_name(et));
    out->dtype = et == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? GB_DTYPE_F32 : GB_DTYPE_I64;
    if (!tt->shape) {
        out->ndim = -1; /* rank unknown */
        return GB_OK;
    }
    if (tt->shape->n_dim > GB_MAX_DIMS)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s '%s' has %zu dimensions (at most %d)", role, vi->name,
                       tt->shape->n_dim, GB_MAX_DIMS);
    out->ndim = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        out->dims[i] = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value > 0
                           ? d->dim_value
                           : -1;
    }
    return GB_OK;
}

static gb_status convert_attr(gb_ctx *ctx, const gb__node *n, const Onnx__AttributeProto *ap, gb__attr *a) {
    a->name = dupstr(ap->name);
    if (!a->name) return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
    int type = ap->has_type ? (int)ap->type : 0;
    if (!type) { /* very old files omit the type: infer it from the set field */
        if (ap->t) type = GB_ATTR_TENSOR;
        else if (ap->n_ints) type = GB_ATTR_INTS;
        else if (ap->n_floats) type = GB_ATTR_FLOATS;
        else if (ap->n_strings) type = GB_ATTR_STRINGS;
        else if (ap->has_s) type = GB_ATTR_STRING;
        else if (ap->has_f) type = GB_ATTR_FLOAT;
        else type = GB_ATTR_INT;
    }
    a->type = (gb__attr_type)type;
    switch (type) {
    case GB_ATTR_FLOAT: a->f = ap->f; break;
    case GB_ATTR_INT: a->i = ap->i; break;
    case GB_ATTR_STRING:
        a->s = malloc(ap->s.len + 1);
        if (!a->s) return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = 0;
        break;
    case GB_ATTR_FLOATS:
        a->n = (int)ap->n_floats;
        a->floats = malloc(sizeof(float) * (ap->n_floats + 1));
        if (!a->floats) return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
        if (ap->n_floats) memcpy(a->floats, ap->floats, sizeof(float) * ap->n_floats);
        break;
    case GB_ATTR_INTS:
        a->n = (int)ap->n_ints;
        a->ints = malloc(sizeof(int64_t) * (ap->n_ints + 1));
        if (!a->ints) return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
        if (ap->n_ints) memcpy(a->ints, ap->ints, sizeof(int64_t) * ap->n_ints);
        break;
    case GB_ATTR_TENSOR: {
        if (!ap->t) return gb__err(ctx, GB_ERR_FORMAT, "%s (%s): attribute '%s' has no tensor", n->name, n->op_type, ap->name);
        char what[512];
        snprintf(what, sizeof what, "%s (%s) attribute '%s'", n->name, n->op_type, ap->name);
        gb_status st = gb__tensor_from_onnx(ctx, ap->t, what, &a->t);
        if (st) return st;
        break;
    }
    case GB_ATTR_STRINGS:
        a->n = (int)ap->n_strings; /* kept only as a count: no supported op reads them */
        break;
    default:
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "%s (%s): attribute '%s' of kind %d (graph or sparse) is not supported",
                       n->name, n->op_type, ap->name, type);
    }
    return GB_OK;
}

static void free_node(gb__node *n) {
    free(n->name);
    free(n->op_type);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->n_attrs; i++) {
        gb__attr *a = &n->attrs[i];
        free(a->name);
        free(a->s);
        free(a->floats);
        free(a->ints);
        gb_tensor_free(a->t);
    }
    free(n->attrs);
    free(n->params);
}

void gb_model_free(gb_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        gb_tensor_free(m->tensors[i].init);
    }
    free(m->tensors);
    for (int i = 0; i < m->n_nodes; i++) free_node(&m->nodes[i]);
    free(m->nodes);
    free(m->inputs);
    free(m->outputs);
    free(m->node_in_names);
    free(m->node_out_names);
    free(m->node_name_off);
    free(m);
}

/* Adds a tensor definition, or returns the existing id for that name. */
static int add_tensor(gb_model *m, name_table *t, const char *name) {
    int id = table_find(t, name);
    if (id >= 0) return id;
    id = m->n_tensors++;
    m->tensors[id].name = dupstr(name);
    m->tensors[id].producer = -1;
    if (!m->tensors[id].name) return -2;
    table_put(t, m->tensors[id].name, id);
    return id;
}

int gb__model_tensor_id(const gb_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

/* Kahn's algorithm: ONNX requires topological order, but not every exporter
 * honours it, and a cycle must be an error rather than a hang. */
static gb_status topo_sort(gb_ctx *ctx, gb_model *m) {
    int nn = m->n_nodes;
    int *indeg = calloc((size_t)nn + 1, sizeof *indeg);
    int *order = malloc(sizeof *order * ((size_t)nn + 1));
    gb__node *sorted = malloc(sizeof *sorted * ((size_t)nn + 1));
    bool *done = calloc((size_t)nn + 1, 1);
    gb_status st = GB_OK;
    if (!indeg || !order || !sorted || !done) {
        st = gb__err(ctx, GB_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++) {
            int t = m->nodes[i].in[k];
            if (t >= 0 && m->tensors[t].producer >= 0) indeg[i]++;
        }
    int head = 0, tail = 0;
    for (int i = 0; i < nn; i++)
        if (!indeg[i]) order[tail++] = i;
    /* Repeated scans keep file order among ready nodes (stable, readable
     * `glassbox info` output); O(n^2) worst case is fine for real models. */
    while (head < tail) {
        int i = order[head++];
        done[i] = true;
        for (int k = 0; k < m->nodes[i].n_out; k++) {
            int t = m->nodes[i].out[k];
            if (t < 0) continue;
            for (int j = 0; j < nn; j++) {
                if (done[j]) continue;
                for (int q = 0; q < m->nodes[j].n_in; q++)
                    if (m->nodes[j].in[q] == t && --indeg[j] == 0) order[tail++] = j;
            }
        }
    }
    if (tail != nn) {
        st = gb__err(ctx, GB_ERR_FORMAT, "graph has a cycle (%d of %d nodes cannot be ordered)", nn - tail, nn);
        goto out;
    }
    for (int i = 0; i < nn; i++) sorted[i] = m->nodes[order[i]];
    free(m->nodes);
    m->nodes = sorted;
    sorted = NULL;
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < m->nodes[i].n_out; k++)
            if (m->nodes[i].out[k] >= 0) m->tensors[m->nodes[i].out[k]].producer = i;
out:
    free(indeg);
    free(order);
    free(sorted);
    free(done);
    return st;
}

static gb_status build_model(gb_ctx *ctx, const Onnx__ModelProto *mp, gb_model *m) {
    const Onnx__GraphProto *g = mp->graph;
    if (!g) return gb__err(ctx, GB_ERR_FORMAT, "model has no graph");

    m->opset = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++)
        if (is_default_domain(mp->opset_import[i]->domain) && mp->opset_import[i]->has_version)
            m->opset = (int)mp->opset_import[i]->version;
    /* Only IR versions 1 and 2 predate opset_import; later files need one. */
    if (!m->opset && !mp->n_opset_import && (!mp->has_ir_version || mp->ir_version < 3)) m->opset = 1;
    if (!m->opset && !mp->n_opset_import)
        return gb__err(ctx, GB_ERR_FORMAT, "model (IR version %lld) has no opset_import", (long long)mp->ir_version);
    if (m->opset < 1 || m->opset > 17)
        return gb__err(ctx, GB_ERR_UNSUPPORTED, "default-domain opset %d is not supported (1 to 17)", m->opset);

    /* Unsupported operators first: one message naming all of them is the
     * most useful thing to tell a user whose model will not load. */
    {
        char list[2048] = "";
        size_t len = 0;
        int count = 0;
        for (size_t i = 0; i < g->n_node; i++) {
            const Onnx__NodeProto *np = g->node[i];
            const char *op = np->op_type ? np->op_type : "";
            if (is_default_domain(np->domain) && gb__op_lookup(op)) continue;
            count++;
            if (len >= sizeof list - 1) continue;
            char fallback[64];
            snprintf(fallback, sizeof fallback, "#%zu", i);
            int w = snprintf(list + len, sizeof list - len, "%s%s%s%s (node '%s')", len ? ", " : "",
                             is_default_domain(np->domain) ? "" : np->domain,
                             is_default_domain(np->domain) ? "" : ".", op,
                             np->name && np->name[0] ? np->name : fallback);
            if (w > 0) len += (size_t)w;
            if (len > sizeof list - 1) len = sizeof list - 1;
        }
        if (count)
            return gb__err(ctx, GB_ERR_UNSUPPORTED, "%d unsupported operator%s: %s", count, count > 1 ? "s" : "", list);
    }

    size_t max_t = g->n_input + g->n_initializer + g->n_output;
    for (size_t i = 0; i < g->n_node; i++) max_t += g->node[i]->n_output + g->node[i]->n_input;
    name_table tab = {.cap = 16, .defs = NULL};
    while ((size_t)tab.cap < 2 * max_t + 16) tab.cap *= 2;
    tab.slots = malloc(sizeof(int) * (size_t)tab.cap);
    m->tensors = calloc(max_t + 1, sizeof *m->tensors);
    m->nodes = calloc(g->n_node + 1, sizeof *m->nodes);
    gb_status st = GB_OK;
    if (!tab.slots || !m->tensors || !m->nodes) {
        st = gb__err(ctx, GB_ERR_NOMEM, "out of memory");
        goto out;
    }
    memset(tab.slots, 0xff, sizeof(int) * (size_t)tab.cap);
    tab.defs = m->tensors;

    /* Initializers first: graph inputs that are also initializers are
     * parameters with a default, not inputs the caller must supply. */
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        if (!tp->name || !tp->name[0]) {
            st = gb__err(ctx, GB_ERR_FORMAT, "initializer %zu has no name", i);
            goto out;
        }
        int id = add_tensor(m, &tab, tp->name);
        if (id < 0) { st = gb__err(ctx, GB_ERR_NOMEM, "out of memory"); goto out; }
        if (m->tensors[id].init) {
            st = gb__err(ctx, GB_ERR_FORMAT, "initializer '%s' is defined twice", tp->name);
            goto out;
        }
        char what[300];
        snprintf(what, sizeof what, "initializer '%.256s'", tp->name);
        if ((st = gb__tensor_from_onnx(ctx, tp, what, &m->tensors[id].init))) goto out;
    }
    m->inputs = malloc(sizeof(int) * (g->n_input + 1));
    m->outputs = malloc(sizeof(int) * (g->n_output + 1));
    if (!m->inputs || !m->outputs) { st = gb__err(ctx, GB_ERR_NOMEM, "out of memory"); goto out; }
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        if (!vi->name || !vi->name[0]) {
            st = gb__err(ctx, GB_ERR_FORMAT, "graph input %zu has no name", i);
            goto out;
        }
        int id = add_tensor(m, &tab, vi->name);
        if (id < 0) { st = gb__err(ctx, GB_ERR_NOMEM, "out of memory"); goto out; }
        if (m->tensors[id].init) continue;
        if (m->tensors[id].decl.name) { /* the session would bind it twice */
            st = gb__err(ctx, GB_ERR_FORMAT, "graph input '%s' is listed twice", vi->name);
            goto out;
        }
        if ((st = convert_value_info(ctx, vi, &m->tensors[id].decl, "graph input"))) goto out;
        m->tensors[id].decl.name = m->tensors[id].name;
        m->inputs[m->n_inputs++] = id;
    }

    /* Nodes. */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *np = g->node[i];
        gb__node *n = &m->nodes[m->n_nodes++];
        n->op_type = dupstr(np->op_type ? np->op_type : "");
        if (np->name && np->name[0]) n->name = dupstr(np->name);
        else {
            char buf[300];
            snprintf(buf, sizeof buf, "%.200s_%zu", n->op_type ? n->op_type : "node", i);
            n->name = dupstr(buf);
        }
        n->opset = m->opset;
        n->n_in = (int)np->n_input;
        n->n_out = (int)np->n_output;
        n->in = malloc(sizeof(int) * (np->n_input + 1));
        n->out = malloc(sizeof(int) * (np->n_output + 1));
        n->attrs = calloc(np->n_attribute + 1, sizeof *n->attrs);
        if (!n->op_type || !n->name || !n->in || !n->out || !n->attrs) {
            st = gb__err(ctx, GB_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (!is_default_domain(np->domain)) {
            n->op = NULL;
        } else {
            n->op = gb__op_lookup(n->op_type);
        }
        if (!n->op) { /* cannot happen: checked above */
            st = gb__err(ctx, GB_ERR_INTERNAL, "node '%s': operator lookup failed", n->name);
            goto out;
        }
        for (size_t k = 0; k < np->n_input; k++) {
            const char *nm = np->input[k];
            if (!nm || !nm[0]) {
                n->in[k] = -1;
                continue;
            }
            int id = table_find(&tab, nm);
            n->in[k] = id >= 0 ? id : add_tensor(m, &tab, nm); /* may be produced later */
            if (n->in[k] < -1) { st = gb__err(ctx, GB_ERR_NOMEM, "out of memory"); goto out; }
        }
        for (size_t k = 0; k < np->n_output; k++) {
            const char *nm = np->output[k];
            if (!nm || !nm[0]) {
                n->out[k] = -1;
                continue;
            }
            int id = add_tensor(m, &tab, nm);
            if (id < 0) { st = gb__err(ctx, GB_ERR_NOMEM, "out of memory"); goto out; }
            /* decl.name is set only for graph inputs at this point: a node
             * writing one would write into the caller's input buffer. */
            if (m->tensors[id].producer >= 0 || m->tensors[id].init || m->tensors[id].decl.name) {
                st = gb__err(ctx, GB_ERR_FORMAT, "node '%s' writes tensor '%s', which is already defined%s", n->name,
                             nm, m->tensors[id].decl.name ? " as a graph input" : "");
                goto out;
            }
            m->tensors[id].producer = m->n_nodes - 1;
            n->out[k] = id;
        }
        /* Every supported op has a required first output. */
        if (np->n_output == 0 || n->out[0] < 0) {
            st = gb__err(ctx, GB_ERR_FORMAT, "node '%s' (%s) has no (named) first output", n->name, n->op_type);
            goto out;
        }
        for (size_t k = 0; k < np->n_attribute; k++) {
            n->n_attrs++;
            if ((st = convert_attr(ctx, n, np->attribute[k], &n->attrs[k]))) goto out;
        }
    }
    /* Every consumed tensor must come from somewhere. */
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++) {
            int t = m->nodes[i].in[k];
            if (t < 0) continue;
            const gb__tensor_def *d = &m->tensors[t];
            bool is_input = false;
            for (int q = 0; q < m->n_inputs; q++) is_input |= m->inputs[q] == t;
            if (!d->init && d->producer < 0 && !is_input) {
                st = gb__err(ctx, GB_ERR_FORMAT, "node '%s' reads tensor '%s', which nothing defines",
                             m->nodes[i].name, d->name);
                goto out;
            }
        }
    for (size_t i = 0; i < g->n_output; i++) {
        const Onnx__ValueInfoProto *vi = g->output[i];
        int id = table_find(&tab, vi->name ? vi->name : "");
        if (id < 0) {
            st = gb__err(ctx, GB_ERR_FORMAT, "graph output '%s' is not produced by any node", vi->name ? vi->name : "");
            goto out;
        }
        /* A graph input passed straight through keeps its input declaration. */
        bool is_input = false;
        for (int q = 0; q < m->n_inputs; q++) is_input |= m->inputs[q] == id;
        if (!is_input) {
            if ((st = convert_value_info(ctx, vi, &m->tensors[id].decl, "graph output"))) goto out;
            m->tensors[id].decl.name = m->tensors[id].name;
        }
        m->outputs[m->n_outputs++] = id;
    }
    if ((st = topo_sort(ctx, m))) goto out;
    for (int i = 0; i < m->n_nodes; i++) {
        gb__node *n = &m->nodes[i];
        n->const_inputs = n->op->const_inputs;
        if (n->op->init && (st = n->op->init(ctx, n))) goto out;
    }
out:
    free(tab.slots);
    return st;
}

/* Flat name arrays behind gb_node_info, so the accessor returns stable
 * pointers without allocating. */
static gb_status build_name_index(gb_ctx *ctx, gb_model *m) {
    size_t nin = 0, nout = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        nin += (size_t)m->nodes[i].n_in;
        nout += (size_t)m->nodes[i].n_out;
    }
    m->node_in_names = malloc(sizeof(char *) * (nin + 1));
    m->node_out_names = malloc(sizeof(char *) * (nout + 1));
    m->node_name_off = malloc(sizeof(int) * 2 * ((size_t)m->n_nodes + 1));
    if (!m->node_in_names || !m->node_out_names || !m->node_name_off)
        return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
    size_t a = 0, b = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const gb__node *n = &m->nodes[i];
        m->node_name_off[2 * i] = (int)a;
        m->node_name_off[2 * i + 1] = (int)b;
        for (int k = 0; k < n->n_in; k++) m->node_in_names[a++] = n->in[k] >= 0 ? m->tensors[n->in[k]].name : "";
        for (int k = 0; k < n->n_out; k++) m->node_out_names[b++] = n->out[k] >= 0 ? m->tensors[n->out[k]].name : "";
    }
    return GB_OK;
}

gb_status gb_model_load_buffer(gb_ctx *ctx, const void *buf, size_t len, gb_model **out) {
    *out = NULL;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp) return gb__err(ctx, GB_ERR_FORMAT, "not a valid ONNX model (protobuf decoding failed: truncated or corrupt)");
    gb_model *m = calloc(1, sizeof *m);
    if (!m) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return gb__err(ctx, GB_ERR_NOMEM, "out of memory");
    }
    m->ctx = ctx;
    gb_status st = build_model(ctx, mp, m);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (!st) st = build_name_index(ctx, m);
    if (st) {
        gb_model_free(m);
        return st;
    }
    *out = m;
    return GB_OK;
}

gb_status gb__read_file(gb_ctx *ctx, const char *path, void **buf, size_t *len) {
    /* protobuf-c takes at most what fits a size_t; 16 GiB is far beyond any
     * model glassbox can hold in memory anyway. */
    return gb__io_read_file(ctx, "model", path, (size_t)1 << 34, (unsigned char **)buf, len, NULL);
}

gb_status gb_model_load(gb_ctx *ctx, const char *path, gb_model **out) {
    void *buf;
    size_t len;
    *out = NULL;
    gb_status st = gb__read_file(ctx, path, &buf, &len);
    if (st) return st;
    st = gb_model_load_buffer(ctx, buf, len, out);
    free(buf);
    if (st) {
        /* Prefix the file name so CLI messages say which model failed. */
        char msg[sizeof ctx->errmsg];
        snprintf(msg, sizeof msg, "%s", ctx->errmsg);
        gb__err(ctx, st, "%s: %s", path, msg);
    }
    return st;
}

/* ---- accessors ----------------------------------------------------------- */

int gb_model_num_inputs(const gb_model *m) { return m->n_inputs; }
int gb_model_num_outputs(const gb_model *m) { return m->n_outputs; }
int gb_model_num_nodes(const gb_model *m) { return m->n_nodes; }
int gb_model_opset(const gb_model *m) { return m->opset; }

gb_status gb_model_input(const gb_model *m, int i, gb_value_info *out) {
    if (i < 0 || i >= m->n_inputs) return gb__err(m->ctx, GB_ERR_NOT_FOUND, "no input %d", i);
    *out = m->tensors[m->inputs[i]].decl;
    return GB_OK;
}

gb_status gb_model_output(const gb_model *m, int i, gb_value_info *out) {
    if (i < 0 || i >= m->n_outputs) return gb__err(m->ctx, GB_ERR_NOT_FOUND, "no output %d", i);
    *out = m->tensors[m->outputs[i]].decl;
    return GB_OK;
}

gb_status gb_model_node(const gb_model *m, int i, gb_node_info *out) {
    if (i < 0 || i >= m->n_nodes) return gb__err(m->ctx, GB_ERR_NOT_FOUND, "no node %d", i);
    const gb__node *n = &m->nodes[i];
    out->name = n->name;
    out->op_type = n->op_type;
    out->n_inputs = n->n_in;
    out->n_outputs = n->n_out;
    out->inputs = m->node_in_names + m->node_name_off[2 * i];
    out->outputs = m->node_out_names + m->node_name_off[2 * i + 1];
    return GB_OK;
}

int64_t gb_model_param_count(const gb_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].init && m->tensors[i].init->dtype == GB_DTYPE_F32) n += m->tensors[i].init->numel;
    return n;
}

gb_status gb__tensor_parse_pb(gb_ctx *ctx, const void *buf, size_t len, const char *what, gb_tensor **out,
                              char *name, size_t name_cap) {
    *out = NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp) return gb__err(ctx, GB_ERR_FORMAT, "%s: not a valid TensorProto", what);
    if (name && name_cap) snprintf(name, name_cap, "%s", tp->name ? tp->name : "");
    gb_status st = gb__tensor_from_onnx(ctx, tp, what, out);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}
