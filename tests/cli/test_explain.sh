#!/usr/bin/env bash
# test_explain.sh — `glassbox predict` and `glassbox explain` on good and bad input.
#
#   bash tests/cli/test_explain.sh BUILD/glassbox SOURCE_DIR
#
# Good cases run on tests/fixtures/explain/explain_net.onnx (a small two-headed
# ReLU network; tests/scripts/make_explain_fixtures.py) and, when it exists,
# on the default model models/default/fashion_cnn.onnx. Raw attributions are
# compared with Captum's (the fixtures) through /usr/bin/python3 + NumPy when
# available.
#
# Bad cases: every one must
#   - exit with status 1 (runtime failure) or 2 (usage), never by a signal;
#   - print exactly one line on stderr, starting with "glassbox: ";
#   - leave nothing in its output directory (a fresh empty directory per
#     case) — in particular nothing from methods that ran before the failure.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 GLASSBOX_BINARY SOURCE_DIR" >&2
    exit 2
fi
GB=$1
SRC=$2
FIX=$SRC/tests/fixtures/explain
IMG=$SRC/tests/fixtures/images
NET=$FIX/explain_net.onnx
X=$FIX/input.npy
PY=/usr/bin/python3
[ -x "$GB" ] || { echo "not executable: $GB" >&2; exit 2; }
[ -f "$NET" ] || { echo "missing $NET (run tests/scripts/make_explain_fixtures.py)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gb_explain_cli_XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 2
unset GLASSBOX_MODEL
failures=0
cases=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

newdir() { mktemp -d "$WORK/out.XXXXXX"; }

expect_fail() {
    local name=$1 want=$2 out=$3 needle=$4
    shift 4
    cases=$((cases + 1))
    "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "$name: exited 0"
    elif [ "$rc" -ge 128 ]; then
        fail "$name: killed by signal $((rc - 128))"
    elif [ "$rc" -ne "$want" ]; then
        fail "$name: exit status $rc, expected $want ($(cat "$WORK/stderr"))"
    fi
    local lines
    lines=$(wc -l <"$WORK/stderr")
    if [ "$lines" -ne 1 ] || [ -n "$(tail -c 1 "$WORK/stderr")" ]; then
        fail "$name: stderr has $lines lines (want exactly one):"
        sed 's/^/    | /' "$WORK/stderr" >&2
    elif ! head -n 1 "$WORK/stderr" | grep -q '^glassbox: .'; then
        fail "$name: stderr does not start with 'glassbox: ': $(cat "$WORK/stderr")"
    elif [ -n "$needle" ] && ! grep -qF -- "$needle" "$WORK/stderr"; then
        fail "$name: message lacks '$needle': $(cat "$WORK/stderr")"
    fi
    if [ -d "$out" ] && [ -n "$(find "$out" -mindepth 1 -print -quit)" ]; then
        fail "$name: left files in the output directory:"
        find "$out" -mindepth 1 | sed 's/^/    | /' >&2
    fi
    [ "${VERBOSE:-0}" = 1 ] && echo "ok: $name: $(cat "$WORK/stderr")"
    return 0
}

expect_ok() {
    local name=$1
    shift
    cases=$((cases + 1))
    "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    local rc=$?
    [ "$rc" -eq 0 ] || fail "$name: exit status $rc: $(cat "$WORK/stderr")"
    [ -s "$WORK/stderr" ] && fail "$name: wrote to stderr: $(cat "$WORK/stderr")"
    [ "${VERBOSE:-0}" = 1 ] && sed "s/^/ok: $name | /" "$WORK/stdout"
    return 0
}

only_files() {
    local dir=$1
    shift
    local want got
    want=$(printf '%s\n' "$@" | sort)
    got=$(cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | sort)
    [ "$want" = "$got" ] || fail "$dir holds [$(echo $got)], expected [$(echo $want)]"
}

is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

have_numpy() { [ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null; }

# same_npy GOT REF : same shape, relative L2 error <= 1e-3
same_npy() {
    have_numpy || return 0
    "$PY" - "$1" "$2" <<'EOF' || fail "$1 differs from $2"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
e = np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b), 1e-30)
assert e <= 1e-3, e
EOF
}

# ---- good cases: predict --------------------------------------------------------------

expect_ok "predict --help" "$GB" predict --help
expect_ok "explain --help" "$GB" explain --help
grep -q integrated_gradients "$WORK/stdout" || fail "explain --help does not list the methods"

expect_ok "predict one image" "$GB" predict --model "$NET" --image "$IMG/rgb.png" --top 3
[ "$(grep -c '^  [0-9]\.' "$WORK/stdout")" -eq 3 ] || fail "predict --top 3 printed $(grep -c '^  [0-9]\.' "$WORK/stdout") rows"

imgdir=$WORK/imgs
mkdir "$imgdir"
cp "$IMG/rgb.png" "$imgdir/a.png"
cp "$IMG/gray.png" "$imgdir/b.png"
cp "$IMG/rgb.jpg" "$imgdir/c.jpg"
echo "not an image, ignored by extension" >"$imgdir/notes.txt"
expect_ok "predict a directory in batches" "$GB" predict --model "$NET" --image "$imgdir" --batch 2 --top 1
[ "$(grep -c '^  1\.' "$WORK/stdout")" -eq 3 ] || fail "predict on a directory of 3 images: $(cat "$WORK/stdout")"
grep -q "imgs/c.jpg" "$WORK/stdout" || fail "predict on a directory: no line for c.jpg"
expect_ok "predict several files" "$GB" predict --model "$NET" --image "$IMG/rgb.png" "$IMG/rgb.bmp" --top 2
[ "$(grep -c '^  [0-9]\.' "$WORK/stdout")" -eq 4 ] || fail "predict two files --top 2"
expect_ok "predict a .npy batch" "$GB" predict --model "$NET" --input "$X" --top 6
if have_numpy; then
    # probabilities = softmax of the fixture's PyTorch logits
    "$PY" - "$WORK/stdout" "$FIX/logits.npy" <<'EOF' || fail "predict probabilities differ from softmax(PyTorch logits)"
import re, sys
import numpy as np
lg = np.load(sys.argv[2]).astype(np.float64)
p = np.exp(lg - lg.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
item = -1
for line in open(sys.argv[1]):
    if line.strip().endswith("]") and "[" in line:
        item += 1
    m = re.match(r"\s+\d\.\s+\S+\s+([0-9.]+)\s+\(class (\d+)", line)
    if m:
        assert abs(float(m.group(1)) - p[item, int(m.group(2))]) < 1e-4, line
EOF
fi

# a model ending in Softmax: its output is already the probabilities
expect_ok "predict a Softmax model" "$GB" predict --model "$FIX/explain_net_softmax.onnx" --input "$X" --top 6
cp "$WORK/stdout" "$WORK/softmax_stdout"
expect_ok "predict the same logits model" "$GB" predict --model "$NET" --input "$X" --top 6
diff <(grep -o '^  [0-9]\. *[^ ]* *[0-9.]*' "$WORK/softmax_stdout") <(grep -o '^  [0-9]\. *[^ ]* *[0-9.]*' "$WORK/stdout") \
    >/dev/null || fail "predict: a Softmax model's probabilities differ from softmax of the logits model"

# ---- good cases: explain ---------------------------------------------------------------

out=$(newdir)
expect_ok "explain one method --out-png" "$GB" explain --model "$NET" --image "$IMG/rgb.png" \
    --method saliency --out-png "$out/s.png"
only_files "$out" s.png
is_png "$out/s.png" || fail "--out-png did not write a PNG"
grep -q "^saliency .*target class" "$WORK/stdout" || fail "explain summary line: $(cat "$WORK/stdout")"

out=$(newdir)
expect_ok "explain several methods --out-dir" "$GB" explain --model "$NET" --input "$X" \
    --method saliency,input_x_gradient,integrated_gradients,smoothgrad,guided_backprop --steps 8 \
    --samples 4 --out-dir "$out"
files=()
for n in 0 1; do
    for m in saliency input_x_gradient integrated_gradients smoothgrad guided_backprop comparison; do
        files+=("input_${n}_$m.png")
    done
done
only_files "$out" "${files[@]}"
grep -q "integrated_gradients.*delta" "$WORK/stdout" || fail "no completeness delta printed for IG"

out=$(newdir)
expect_ok "explain --out-npy matches Captum (saliency)" "$GB" explain --model "$NET" --input "$X" \
    --method saliency --out-npy "$out/a.npy"
only_files "$out" a.npy
same_npy "$out/a.npy" "$FIX/saliency.npy"

out=$(newdir)
expect_ok "explain IG riemann_trapezoid --out-npy" "$GB" explain --model "$NET" --input "$X" \
    --method integrated_gradients --steps 7 --integration riemann_trapezoid --out-npy "$out/ig.npy"
same_npy "$out/ig.npy" "$FIX/ig_riemann_trapezoid.npy"

out=$(newdir)
expect_ok "explain several methods --out-npy" "$GB" explain --model "$NET" --input "$X" \
    --method saliency,guided_backprop,deconvnet --out-npy "$out/a.npy"
only_files "$out" a_saliency.npy a_guided_backprop.npy a_deconvnet.npy
same_npy "$out/a_guided_backprop.npy" "$FIX/guided_backprop.npy"
same_npy "$out/a_deconvnet.npy" "$FIX/deconvnet.npy"

for spec in "4:saliency_t4" "logits:4:saliency_t4" "score:saliency_score" "score:0:saliency_score"; do
    t=${spec%:*}
    ref=${spec##*:}
    out=$(newdir)
    expect_ok "explain --target $t" "$GB" explain --model "$NET" --input "$X" --method saliency \
        --target "$t" --out-npy "$out/a.npy"
    same_npy "$out/a.npy" "$FIX/$ref.npy"
done
for spec in "feat:3:saliency_neuron_c" "feat:3,1,2:saliency_neuron_chw"; do
    t=${spec%:*}
    ref=${spec##*:}
    out=$(newdir)
    expect_ok "explain --neuron $t" "$GB" explain --model "$NET" --input "$X" --method saliency \
        --neuron "$t" --out-npy "$out/a.npy"
    same_npy "$out/a.npy" "$FIX/$ref.npy"
done
out=$(newdir)
expect_ok "explain --layer feat" "$GB" explain --model "$NET" --input "$X" --method input_x_gradient \
    --layer feat --out-npy "$out/a.npy" --out-dir "$out"
only_files "$out" a.npy input_0_input_x_gradient.png input_1_input_x_gradient.png
same_npy "$out/a.npy" "$FIX/layer_gxa.npy"
out=$(newdir)
expect_ok "explain --baseline FILE.npy" "$GB" explain --model "$NET" --input "$X" \
    --method integrated_gradients --steps 16 --baseline "$FIX/baseline.npy" --out-npy "$out/a.npy"
same_npy "$out/a.npy" "$FIX/ig_tensor.npy"
out=$(newdir)
expect_ok "explain --baseline blur" "$GB" explain --model "$NET" --input "$X" \
    --method integrated_gradients --steps 9 --integration riemann_middle --baseline blur --blur-sigma 1.5 \
    --out-npy "$out/a.npy"
same_npy "$out/a.npy" "$FIX/ig_blur.npy"

out=$(newdir)
expect_ok "explain --baseline black" "$GB" explain --model "$NET" --image "$IMG/rgb.png" \
    --method integrated_gradients --baseline black --out-dir "$out"
only_files "$out" rgb_integrated_gradients.png
grep -q "delta" "$WORK/stdout" || fail "--baseline black: no delta printed"

# seeded methods: same seed, same bytes; another batch size, the same draws
# (equal up to float rounding: BLAS sums in another order); another seed differs
out=$(newdir)
for f in a b; do
    expect_ok "smoothgrad seed 1 ($f)" "$GB" explain --model "$NET" --input "$X" --method smoothgrad,gradient_shap \
        --samples 5 --seed 1 --baseline uniform --out-npy "$out/$f.npy"
done
cmp -s "$out/a_smoothgrad.npy" "$out/b_smoothgrad.npy" || fail "smoothgrad: same seed, different result"
cmp -s "$out/a_gradient_shap.npy" "$out/b_gradient_shap.npy" || fail "gradient_shap: same seed, different result"
expect_ok "smoothgrad seed 1 --batch 3" "$GB" explain --model "$NET" --input "$X" --method smoothgrad,gradient_shap \
    --samples 5 --seed 1 --baseline uniform --batch 3 --out-npy "$out/c.npy"
same_npy "$out/c_smoothgrad.npy" "$out/a_smoothgrad.npy"
same_npy "$out/c_gradient_shap.npy" "$out/a_gradient_shap.npy"
expect_ok "smoothgrad seed 2" "$GB" explain --model "$NET" --input "$X" --method smoothgrad \
    --samples 5 --seed 2 --out-npy "$out/d.npy"
cmp -s "$out/a_smoothgrad.npy" "$out/d.npy" && fail "smoothgrad: seeds 1 and 2 gave the same result"

# GLASSBOX_MODEL selects the default model
out=$(newdir)
expect_ok "GLASSBOX_MODEL" env GLASSBOX_MODEL="$NET" "$GB" explain --image "$IMG/rgb.png" --method saliency \
    --out-dir "$out"
only_files "$out" rgb_saliency.png

# ---- the default model ------------------------------------------------------------------

DEF=$SRC/models/default/fashion_cnn.onnx
if [ -f "$DEF" ]; then
    out=$(newdir)
    (cd "$out" && "$GB" explain >"$WORK/stdout" 2>"$WORK/stderr")
    rc=$?
    cases=$((cases + 1))
    [ "$rc" -eq 0 ] || fail "explain with no arguments: exit $rc: $(cat "$WORK/stderr")"
    n_png=$(find "$out/glassbox_out" -name '*.png' 2>/dev/null | wc -l)
    [ "$n_png" -ge 3 ] || fail "explain with no arguments wrote $n_png PNG files"
    ls "$out/glassbox_out" 2>/dev/null | grep -q "_comparison.png" || fail "explain with no arguments: no comparison grid"
    # every sample image is classified as the class its file name says
    expect_ok "predict the default samples" "$GB" predict --image "$SRC/models/default/samples" --top 1
    for f in "$SRC"/models/default/samples/*.png; do
        k=$(basename "$f" | cut -d_ -f1)
        grep -A1 -F "$(basename "$f")" "$WORK/stdout" | grep -q "(class $k," ||
            fail "default model: $(basename "$f") not predicted as class $k"
    done
else
    echo "note: $DEF not found: default-model cases skipped"
fi

# ---- bad input ---------------------------------------------------------------------------

out=$(newdir)
expect_fail "unknown method" 2 "$out" "unknown method 'salency'" \
    "$GB" explain --model "$NET" --input "$X" --method saliency,salency --out-dir "$out"
expect_fail "empty method in list" 2 "$out" "empty method" \
    "$GB" explain --model "$NET" --input "$X" --method saliency, --out-dir "$out"
expect_fail "bad target spec" 2 "$out" "--target '3x'" \
    "$GB" explain --model "$NET" --input "$X" --method saliency --target 3x --out-dir "$out"
expect_fail "bad target index list" 2 "$out" "--target" \
    "$GB" explain --model "$NET" --input "$X" --method saliency --target logits:1, --out-dir "$out"
expect_fail "neuron without index" 2 "$out" "--neuron" \
    "$GB" explain --model "$NET" --input "$X" --method saliency --neuron feat --out-dir "$out"
expect_fail "target and neuron" 2 "$out" "not both" \
    "$GB" explain --model "$NET" --input "$X" --target 1 --neuron feat:1 --out-dir "$out"
expect_fail "target out of range" 1 "$out" "out of range" \
    "$GB" explain --model "$NET" --input "$X" --method saliency --target 6 --out-dir "$out"
expect_fail "unknown target tensor" 1 "$out" "nosuch" \
    "$GB" explain --model "$NET" --input "$X" --method saliency --target nosuch:1 --out-dir "$out"
expect_fail "unknown layer" 1 "$out" "nosuch" \
    "$GB" explain --model "$NET" --input "$X" --method saliency --layer nosuch --out-dir "$out"
expect_fail "missing image" 1 "$out" "$WORK/nope.png" \
    "$GB" explain --model "$NET" --image "$WORK/nope.png" --method saliency --out-dir "$out"
expect_fail "non-image file" 1 "$out" "" \
    "$GB" explain --model "$NET" --image "$NET" --method saliency --out-dir "$out"
expect_fail "truncated PNG" 1 "$out" "short_idat.png" \
    "$GB" explain --model "$NET" --image "$IMG/short_idat.png" --method saliency --out-dir "$out"
head -c 400 "$IMG/progressive.jpg" > "$WORK/truncated.jpg"
expect_fail "truncated JPEG" 1 "$out" "truncated.jpg" \
    "$GB" explain --model "$NET" --image "$WORK/truncated.jpg" --method saliency --out-dir "$out"
expect_fail "unknown preprocessing option" 1 "$out" "colour" \
    "$GB" explain --model "$NET" --image "$IMG/rgb.png" --preproc colour=rgb --method saliency --out-dir "$out"
expect_fail "channel count the model cannot take" 1 "$out" "channels" \
    "$GB" explain --model "$NET" --image "$IMG/rgb.png" --preproc channels=1 --method saliency --out-dir "$out"
expect_fail "missing .npy input" 1 "$out" "nope.npy" \
    "$GB" explain --model "$NET" --input "$WORK/nope.npy" --method saliency --out-dir "$out"
expect_fail "missing model" 1 "$out" "nope.onnx" \
    "$GB" explain --model "$WORK/nope.onnx" --input "$X" --method saliency --out-dir "$out"
expect_fail "bad --steps" 2 "$out" "--steps" \
    "$GB" explain --model "$NET" --input "$X" --method integrated_gradients --steps 0 --out-dir "$out"
expect_fail "bad --integration" 2 "$out" "simpson" \
    "$GB" explain --model "$NET" --input "$X" --integration simpson --out-dir "$out"
expect_fail "bad --baseline" 2 "$out" "--baseline" \
    "$GB" explain --model "$NET" --input "$X" --baseline gray --out-dir "$out"
expect_fail "missing --baseline file" 1 "$out" "nope.npy" \
    "$GB" explain --model "$NET" --input "$X" --method integrated_gradients --baseline "$WORK/nope.npy" \
    --out-dir "$out"
expect_fail "--out-png with two methods" 2 "$out" "--out-png" \
    "$GB" explain --model "$NET" --input "$X" --method saliency,deconvnet --out-png "$out/a.png"
expect_fail "--out-png with two items" 2 "$out" "--out-png" \
    "$GB" explain --model "$NET" --input "$X" --method saliency --out-png "$out/a.png"
expect_fail "unknown option" 2 "$out" "--colour" \
    "$GB" explain --model "$NET" --input "$X" --colour red --out-dir "$out"
expect_fail "--model without input" 2 "$out" "--image" \
    "$GB" explain --model "$NET" --method saliency --out-dir "$out"
expect_fail "GLASSBOX_MODEL without samples" 1 "$out" "sample" \
    env GLASSBOX_MODEL="$NET" "$GB" explain --method saliency --out-dir "$out"
expect_fail "missing default model" 1 "$out" "nope.onnx" \
    env GLASSBOX_MODEL="$WORK/nope.onnx" "$GB" explain --method saliency --out-dir "$out"
# A failure after earlier methods wrote their files: everything is removed.
expect_fail "second method fails" 1 "$out" "integrated_gradients" \
    "$GB" explain --model "$NET" --input "$X" --method saliency,integrated_gradients --steps 1 \
    --integration riemann_left --out-dir "$out" --out-npy "$out/a.npy"
# ... and a directory explain created is removed again.
expect_fail "failure in a new directory" 1 "$out" "" \
    "$GB" explain --model "$NET" --input "$X" --method saliency,integrated_gradients --steps 1 \
    --integration riemann_left --out-dir "$WORK/made_by_explain"
[ -e "$WORK/made_by_explain" ] && fail "a failed explain left the directory it created"
expect_fail "--out-png into a missing directory" 1 "$out" "" \
    "$GB" explain --model "$NET" --image "$IMG/rgb.png" --method saliency --out-png "$WORK/no/dir/a.png" \
    --out-npy "$out/a.npy"

expect_fail "predict missing image" 1 "$out" "$WORK/nope.png" \
    "$GB" predict --model "$NET" --image "$WORK/nope.png"
expect_fail "predict non-image file" 1 "$out" "" \
    "$GB" predict --model "$NET" --image "$imgdir/notes.txt"
mkdir "$WORK/empty_dir"
expect_fail "predict empty directory" 1 "$out" "no image files" \
    "$GB" predict --model "$NET" --image "$WORK/empty_dir"
expect_fail "predict --top 0" 2 "$out" "--top" "$GB" predict --model "$NET" --image "$IMG/rgb.png" --top 0
expect_fail "predict no images" 2 "$out" "--image" "$GB" predict --model "$NET"
expect_fail "predict unknown option" 2 "$out" "--colour" "$GB" predict --model "$NET" --colour x
expect_fail "predict bad --preproc" 1 "$out" "colour" \
    "$GB" predict --model "$NET" --image "$IMG/rgb.png" --preproc colour=rgb

echo "$cases cases, $failures failures"
[ "$failures" -eq 0 ]
