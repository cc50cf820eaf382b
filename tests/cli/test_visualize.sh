#!/usr/bin/env bash
# test_visualize.sh — `glassbox features`, `maximize` and `invert` on good and bad input.
#
#   bash tests/cli/test_visualize.sh BUILD/glassbox SOURCE_DIR
#
# Good cases run on the default model models/default/fashion_cnn.onnx (skipped
# when it is missing) and on tests/fixtures/visualize/linear_unit.onnx (a
# single linear unit; tests/scripts/make_visualize_fixtures.py): outputs exist
# with the right sizes, a class maximization is classified as its class, a
# seed reproduces a result byte for byte, the linear unit's maximizer is
# w / (2 lambda), early-layer inversions have lower pixel error than late ones.
#
# Bad cases: every one must
#   - exit with status 1 (runtime failure) or 2 (usage), never by a signal;
#   - print exactly one line on stderr, starting with "glassbox: ";
#   - leave nothing in its output directory (a fresh empty directory per
#     case) — in particular not the PNG when the .npy after it fails.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 GLASSBOX_BINARY SOURCE_DIR" >&2
    exit 2
fi
GB=$1
SRC=$2
MODEL=$SRC/models/default/fashion_cnn.onnx
SAMPLES=$SRC/models/default/samples
LIN=$SRC/tests/fixtures/visualize/linear_unit.onnx
PY=/usr/bin/python3
[ -x "$GB" ] || { echo "not executable: $GB" >&2; exit 2; }
[ -f "$MODEL" ] || { echo "missing $MODEL: skipping" >&2; exit 0; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gb_visualize_cli_XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 2
unset GLASSBOX_MODEL
export OMP_WAIT_POLICY=passive
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

L1=/features/features.5/Relu_output_0
L3=/features/features.12/Relu_output_0
L6=/features/features.19/Relu_output_0

# ---- good cases --------------------------------------------------------------------------

for c in features maximize invert; do
    expect_ok "$c --help" "$GB" $c --help
done

out=$(newdir)
expect_ok "features mosaic + npy" "$GB" features --image "$SAMPLES/7_sneaker.png" --layer $L3 \
    --out-png "$out/f.png" --out-npy "$out/f.npy"
only_files "$out" f.png f.npy
is_png "$out/f.png" || fail "features: not a PNG"
grep -q "^layer $L3: 1x32x14x14" "$WORK/stdout" || fail "features: no shape line: $(cat "$WORK/stdout")"
grep -q "receptive field: 14x14 input pixels, stride 2x2" "$WORK/stdout" || fail "features: receptive field"
if have_numpy; then
    "$PY" -c "import numpy as np; a = np.load('$out/f.npy'); assert a.shape == (1, 32, 14, 14) and a.min() >= 0" ||
        fail "features: the .npy is not the (1, 32, 14, 14) ReLU activation"
fi

out=$(newdir)
expect_ok "features chosen channels" "$GB" features --image "$SAMPLES/0_tshirt.png" --layer $L1 --channels 3,1 \
    --shared-scale --cell 2 --stats --out-png "$out/f.png"
[ "$(grep -cE '^[0-9]+ +[-0-9.e]+ +[-0-9.e]+ ' "$WORK/stdout")" -eq 16 ] || fail "features --stats: expected 16 channel rows"
if have_numpy; then
    "$PY" -c "from PIL import Image; im = Image.open('$out/f.png'); assert im.size == (2 * 56 + 6, 56 + 4), im.size" ||
        fail "features --channels 3,1 --cell 2: wrong mosaic size"
fi

out=$(newdir)
expect_ok "features top-k over a directory" "$GB" features --unit $L3:3 --dataset "$SAMPLES" --top 4 \
    --out-top "$out/top.png"
only_files "$out" top.png
[ "$(grep -c 'score' "$WORK/stdout")" -eq 4 ] || fail "features --top 4: $(cat "$WORK/stdout")"
# the scores are sorted
grep -o 'score *[-0-9.e]*' "$WORK/stdout" | awk '{print $2}' | sort -g -r -c || fail "features: top-k not sorted"

out=$(newdir)
expect_ok "maximize a class" "$GB" maximize --target Sneaker --steps 96 --seed 3 --out-png "$out/m.png" \
    --out-npy "$out/m.npy"
only_files "$out" m.png m.npy
grep -q "top class 7 'Sneaker'" "$WORK/stdout" || fail "maximize Sneaker: $(cat "$WORK/stdout")"
if have_numpy; then
    "$PY" -c "from PIL import Image; assert Image.open('$out/m.png').size == (28, 28)" || fail "maximize: PNG not 28x28"
fi
expect_ok "predict on the maximized input" "$GB" predict --input "$out/m.npy" --top 1
grep -q "Sneaker" "$WORK/stdout" || fail "predict --input m.npy: $(cat "$WORK/stdout")"

out2=$(newdir)
expect_ok "maximize is deterministic" "$GB" maximize --target 7 --steps 96 --seed 3 --out-png "$out2/m.png" \
    --out-npy "$out2/m.npy"
cmp -s "$out/m.npy" "$out2/m.npy" || fail "maximize: same seed, different result"
expect_ok "maximize another seed" "$GB" maximize --target 7 --steps 96 --seed 4 --out-png "$out2/m4.png"
cmp -s "$out/m.png" "$out2/m4.png" && fail "maximize: different seeds, same image"

out=$(newdir)
expect_ok "maximize combined objectives, 2 diverse images, pixel" "$GB" maximize --channel $L3:3 \
    --neuron $L6:5,3,3 --weight 0.5 --images 2 --diversity 1 --param pixel --l2 0.01 --tv 0.01 --blur 0.5 \
    --clip-percentile 10 --clip-range --jitter 1 --steps 32 --out-png "$out/m.png"
[ "$(grep -c '^image [01]: objective' "$WORK/stdout")" -eq 2 ] || fail "maximize --images 2: $(cat "$WORK/stdout")"

out=$(newdir)
if have_numpy; then
    "$PY" -c "import numpy as np; d = np.zeros(32, np.float32); d[[2, 9]] = 1; np.save('$out/d.npy', d)"
    expect_ok "maximize a direction" "$GB" maximize --direction "$L3:$out/d.npy" --steps 16 --out-png "$out/m.png"
fi

out=$(newdir)
expect_ok "maximize a linear unit without a sidecar" "$GB" maximize --model "$LIN" --target 0 --param pixel \
    --optimizer sgd --lr 0.5 --l2 0.5 --steps 400 --out-npy "$out/x.npy" --out-png "$out/x.png"
if have_numpy; then
    "$PY" - "$out/x.npy" "$LIN" <<'PYEOF' || fail "maximize: the linear unit's maximizer is not w / (2 lambda)"
import sys
import numpy as np, onnx
from onnx import numpy_helper
x = np.load(sys.argv[1]).ravel()
w = [numpy_helper.to_array(t) for t in onnx.load(sys.argv[2]).graph.initializer if t.name == "w"][0].ravel()
assert np.abs(x - w).max() < 1e-3 * np.abs(w).max(), (x, w)
PYEOF
fi

out=$(newdir)
expect_ok "invert the input layer" "$GB" invert --image "$SAMPLES/3_dress.png" --layer image --seed 1 \
    --out-png "$out/r.png" --out-npy "$out/r.npy"
only_files "$out" r.png r.npy
RNPY=$out/r.npy
rmse0=$(sed -n 's/.*pixel RMSE \([0-9.]*\).*/\1/p' "$WORK/stdout")
expect_ok "invert an early layer" "$GB" invert --image "$SAMPLES/3_dress.png" --layer $L1 --seed 1 --out-png "$out/r1.png"
rmse1=$(sed -n 's/.*pixel RMSE \([0-9.]*\).*/\1/p' "$WORK/stdout")
expect_ok "invert a late layer" "$GB" invert --image "$SAMPLES/3_dress.png" --layer $L6 --seed 1 --out-png "$out/r6.png"
rmse6=$(sed -n 's/.*pixel RMSE \([0-9.]*\).*/\1/p' "$WORK/stdout")
awk -v a="$rmse0" -v b="$rmse1" -v c="$rmse6" 'BEGIN { exit !(a < 15 && b < 20 && b < c) }' ||
    fail "invert: pixel RMSE image $rmse0, early $rmse1, late $rmse6"
expect_ok "invert binarized features" "$GB" invert --input "$out/r.npy" --layer logits --perturb binarize \
    --steps 50 --out-png "$out/b.png"
grep -q "perturb binarize" "$WORK/stdout" || fail "invert --perturb: $(cat "$WORK/stdout")"
expect_ok "invert dropout features" "$GB" invert --input "$out/r.npy" --layer logits --perturb dropout \
    --dropout 0.3 --steps 50 --out-png "$out/d.png"

DEC0=$SRC/models/default/decoder_logits_init.onnx
DEC=$SRC/models/default/decoder_logits.onnx
if [ -f "$DEC0" ]; then
    expect_ok "train-decoder a few steps" "$GB" train-decoder --layer logits --init "$DEC0" --dataset "$out/r.npy" \
        --steps 3 --batch 1 --log-every 1 --out "$out/dec.onnx"
    [ "$(grep -c 'mean loss' "$WORK/stdout")" -eq 3 ] || fail "train-decoder: $(cat "$WORK/stdout")"
    expect_ok "invert with the freshly trained decoder" "$GB" invert --input "$out/r.npy" --layer logits \
        --decoder "$out/dec.onnx" --out-png "$out/dec.png"
fi
if [ -f "$DEC" ]; then
    expect_ok "invert with the committed decoder" "$GB" invert --image "$SAMPLES/3_dress.png" --layer logits \
        --decoder "$DEC" --out-png "$out/dd.png" --out-npy "$out/dd.npy"
    rmse=$(sed -n 's/.*pixel RMSE \([0-9.]*\).*/\1/p' "$WORK/stdout")
    awk -v a="$rmse" 'BEGIN { exit !(a < 80) }' || fail "invert --decoder: pixel RMSE $rmse"
fi

# ---- bad cases ----------------------------------------------------------------------------

out=$(newdir)
expect_fail "maximize without objective" 2 "$out" "give an objective" "$GB" maximize --out-png "$out/m.png"
expect_fail "maximize without --out-png" 2 "$out" "--out-png" "$GB" maximize --target 1
expect_fail "maximize bad neuron" 2 "$out" "TENSOR:c" "$GB" maximize --neuron foo --out-png "$out/m.png"
expect_fail "maximize channel with hw" 2 "$out" "--channel" "$GB" maximize --channel $L3:1,2,3 --out-png "$out/m.png"
expect_fail "maximize unknown label" 1 "$out" "neither a class index" "$GB" maximize --target Zebra --out-png "$out/m.png"
expect_fail "maximize class out of range" 1 "$out" "outside" "$GB" maximize --target 10 --steps 2 --out-png "$out/m.png"
expect_fail "maximize unknown tensor" 1 "$out" "no tensor named" "$GB" maximize --channel nope:1 --steps 2 \
    --out-png "$out/m.png"
expect_fail "maximize channel out of range" 1 "$out" "outside" "$GB" maximize --channel $L3:32 --steps 2 \
    --out-png "$out/m.png"
expect_fail "maximize bad --param" 2 "$out" "fourier or pixel" "$GB" maximize --target 1 --param x --out-png "$out/m.png"
expect_fail "maximize bad --steps" 2 "$out" "--steps" "$GB" maximize --target 1 --steps -3 --out-png "$out/m.png"
expect_fail "maximize --weight first" 2 "$out" "--weight" "$GB" maximize --weight 2 --target 1 --out-png "$out/m.png"
expect_fail "maximize direction missing file" 1 "$out" "--direction" "$GB" maximize --direction "$L3:$out/none.npy" \
    --out-png "$out/m.png"
expect_fail "maximize unwritable png" 1 "$out" "" "$GB" maximize --target 1 --steps 2 --out-png "$out/no/dir/m.png" \
    --out-npy "$out/m.npy"
expect_fail "maximize png ok, npy fails" 1 "$out" "" "$GB" maximize --target 1 --steps 2 --out-png "$out/m.png" \
    --out-npy "$out/no/dir/m.npy"
expect_fail "maximize unknown option" 2 "$out" "unknown option" "$GB" maximize --target 1 --frobnicate 2

expect_fail "features without input" 2 "$out" "give --image" "$GB" features --layer $L1 --out-png "$out/f.png"
expect_fail "features without layer" 2 "$out" "--layer" "$GB" features --image "$SAMPLES/0_tshirt.png" \
    --out-png "$out/f.png"
expect_fail "features unknown layer" 1 "$out" "no tensor named" "$GB" features --image "$SAMPLES/0_tshirt.png" \
    --layer nope --out-png "$out/f.png" --out-npy "$out/f.npy"
expect_fail "features bad channels" 1 "$out" "--channels" "$GB" features --image "$SAMPLES/0_tshirt.png" \
    --layer $L1 --channels 1,99 --out-png "$out/f.png"
expect_fail "features missing image" 1 "$out" "" "$GB" features --image "$out/none.png" --layer $L1 \
    --out-png "$out/f.png"
expect_fail "features unit without dataset" 2 "$out" "--dataset" "$GB" features --unit $L1:1 --out-top "$out/t.png"
expect_fail "features unit off the map" 1 "$out" "outside" "$GB" features --unit $L3:1,20,0 --dataset "$SAMPLES" \
    --out-top "$out/t.png"
expect_fail "features empty dataset dir" 1 "$out" "" "$GB" features --unit $L3:1 --dataset "$out" --out-top "$out/t.png"

expect_fail "invert without layer" 2 "$out" "--layer" "$GB" invert --image "$SAMPLES/0_tshirt.png" --out-png "$out/r.png"
expect_fail "invert both inputs" 2 "$out" "exactly one" "$GB" invert --image "$SAMPLES/0_tshirt.png" --input x.npy \
    --layer $L1 --out-png "$out/r.png"
expect_fail "invert bad perturb" 2 "$out" "binarize or dropout" "$GB" invert --image "$SAMPLES/0_tshirt.png" \
    --layer $L1 --perturb shuffle --out-png "$out/r.png"
expect_fail "invert unknown layer" 1 "$out" "no tensor named" "$GB" invert --image "$SAMPLES/0_tshirt.png" \
    --layer nope --out-png "$out/r.png" --out-npy "$out/r.npy"
expect_fail "invert bad dropout" 2 "$out" "--dropout" "$GB" invert --image "$SAMPLES/0_tshirt.png" --layer $L1 \
    --perturb dropout --dropout 1 --out-png "$out/r.png"

expect_fail "invert missing decoder" 1 "$out" "--decoder" "$GB" invert --image "$SAMPLES/0_tshirt.png" --layer logits \
    --decoder "$out/none.onnx" --out-png "$out/r.png"
if [ -f "$DEC" ]; then
    expect_fail "invert decoder for another layer" 1 "$out" "--decoder" "$GB" invert --image "$SAMPLES/0_tshirt.png" \
        --layer $L1 --decoder "$DEC" --out-png "$out/r.png"
    expect_fail "train-decoder on the wrong layer" 1 "$out" "train-decoder" "$GB" train-decoder --layer $L1 \
        --init "$DEC0" --dataset "$RNPY" --steps 2 --out "$out/d.onnx"
    expect_fail "train-decoder on a non-image dataset" 1 "$out" "(N, C, H, W)" "$GB" train-decoder --layer logits \
        --init "$DEC0" --dataset "$SRC/tests/fixtures/visualize/fft_img_5x6.npy" --steps 2 --out "$out/d.onnx"
fi
expect_fail "train-decoder without --init" 2 "$out" "--init" "$GB" train-decoder --layer logits --dataset x.npy \
    --out "$out/d.onnx"

echo "$cases cases, $failures failures"
[ "$failures" -eq 0 ]
