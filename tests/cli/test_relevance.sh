#!/usr/bin/env bash
# test_relevance.sh — `glassbox explain` with lrp, deeplift, deeplift_shap.
#
#   bash tests/cli/test_relevance.sh BUILD/glassbox SOURCE_DIR
#
# Good cases on tests/fixtures/relevance/relnet.onnx (tests/scripts/
# make_relevance_fixtures.py) and the default model: maps written, the
# composites match Zennit's fixtures, DeepLIFT's reported delta is tiny.
# Bad cases: exit 1 or 2 (never a signal), one line on stderr starting with
# "glassbox: ", and nothing left in the output directory.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 GLASSBOX_BINARY SOURCE_DIR" >&2
    exit 2
fi
GB=$1
SRC=$2
FIX=$SRC/tests/fixtures/relevance
NET=$FIX/relnet.onnx
X=$FIX/input.npy
PY=/usr/bin/python3
[ -x "$GB" ] || { echo "not executable: $GB" >&2; exit 2; }
[ -f "$NET" ] || { echo "missing $NET (run tests/scripts/make_relevance_fixtures.py)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gb_relevance_cli_XXXXXX")
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

same_npy() {
    have_numpy || return 0
    "$PY" - "$1" "$2" <<'PYEOF' || fail "$1 differs from $2"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
e = np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b), 1e-30)
assert e <= 1e-3, e
PYEOF
}

# ---- good cases ------------------------------------------------------------------------

expect_ok "explain --help" "$GB" explain --help
grep -q -- "--composite" "$WORK/stdout" || fail "explain --help does not list --composite"
grep -q "deeplift_shap" "$WORK/stdout" || fail "explain --help does not list deeplift_shap"

for c in epsilon_plus epsilon_alpha2_beta1 epsilon_plus_flat; do
    d=$(newdir)
    expect_ok "lrp $c" "$GB" explain --model "$NET" --input "$X" --method lrp --composite "$c" --out-npy "$d/a.npy"
    only_files "$d" a.npy
    same_npy "$d/a.npy" "$FIX/zennit_$c.npy"
done
d=$(newdir)
expect_ok "lrp gamma box" "$GB" explain --model "$NET" --input "$X" --method lrp --composite epsilon_gamma_box \
    --box -2,2 --out-npy "$d/a.npy"
same_npy "$d/a.npy" "$FIX/zennit_epsilon_gamma_box.npy"
d=$(newdir)
expect_ok "lrp rule + first rule" "$GB" explain --model "$NET" --input "$X" --method lrp --rule epsilon \
    --first-rule wsquare --out-npy "$d/a.npy"
same_npy "$d/a.npy" "$FIX/zennit_first_wsquare.npy"
d=$(newdir)
expect_ok "lrp --layer" "$GB" explain --model "$NET" --input "$X" --method lrp --layer /Flatten_output_0 --out-npy "$d/a.npy"
same_npy "$d/a.npy" "$FIX/zennit_epsilon_plus_feat.npy"

d=$(newdir)
expect_ok "deeplift ref" "$GB" explain --model "$NET" --input "$X" --method deeplift --baseline "$FIX/dl_ref.npy" \
    --out-npy "$d/a.npy"
same_npy "$d/a.npy" "$FIX/dl_deeplift_ref.npy"
d=$(newdir)
expect_ok "deeplift maxpool gradient" "$GB" explain --model "$NET" --input "$X" --method deeplift \
    --baseline "$FIX/dl_ref.npy" --deeplift-maxpool gradient --out-npy "$d/a.npy"
same_npy "$d/a.npy" "$FIX/captum_deeplift_ref.npy"    # Captum itself, as run on torch 1.13
d=$(newdir)
expect_ok "deeplift_shap set" "$GB" explain --model "$NET" --input "$X" --method deeplift_shap \
    --baseline "$FIX/dl_bset.npy" --out-npy "$d/a.npy"
same_npy "$d/a.npy" "$FIX/dl_deepliftshap.npy"
# summation-to-delta on the printed line: |delta| < 1e-4
awk '/^deeplift_shap/ { for (i = 1; i <= NF; i++) if ($i == "delta") { v = $(i + 1); if (v < 0) v = -v; if (v > 1e-4) exit 1 } }' \
    "$WORK/stdout" || fail "deeplift_shap delta too large: $(cat "$WORK/stdout")"

d=$(newdir)
expect_ok "deeplift reveal_cancel" "$GB" explain --model "$FIX/rc_mlp.onnx" --input "$FIX/rc_x.npy" --method deeplift \
    --deeplift-rule reveal_cancel --baseline "$FIX/rc_ref.npy" --target 0 --out-npy "$d/a.npy"
same_npy "$d/a.npy" "$FIX/rc_expected.npy"

if [ -f "$SRC/models/default/fashion_cnn.onnx" ]; then
    d=$(newdir)
    expect_ok "default model, panels" "$GB" explain --method lrp,deeplift --composite epsilon_gamma_box --baseline blur \
        --out-dir "$d"
    [ -n "$(find "$d" -name '*_lrp.png')" ] || fail "no lrp panel written"
    [ -n "$(find "$d" -name '*_deeplift.png')" ] || fail "no deeplift panel written"
fi

# The input-layer maps of the default model's samples concentrate on the
# object: the share of positive relevance inside the object (pixels > 5% of
# white, dilated by 2 px) beats the region's share of the image by 0.05 for
# every sample (LRP, EpsilonPlus), and DeepLIFT against the black image puts
# >= 95% there (black background is its own reference).
if [ -f "$SRC/models/default/fashion_cnn.onnx" ] && have_numpy && "$PY" -c 'import PIL' 2>/dev/null; then
    d=$(newdir)
    expect_ok "default samples" "$GB" explain --image "$SRC/models/default/samples/" --method lrp,deeplift \
        --baseline black --out-npy "$d/s.npy"
    "$PY" - "$SRC/models/default/samples" "$d" <<'PYEOF' || fail "maps do not concentrate on the object"
import glob, sys
import numpy as np
from PIL import Image
fs = sorted(glob.glob(sys.argv[1] + "/*.png"))
obj = np.stack([np.asarray(Image.open(f).convert("L"), np.float32) / 255 for f in fs]) > 0.05
for _ in range(2):
    p = np.pad(obj, ((0, 0), (1, 1), (1, 1)))
    obj = p[:, 1:-1, 1:-1] | p[:, :-2, 1:-1] | p[:, 2:, 1:-1] | p[:, 1:-1, :-2] | p[:, 1:-1, 2:]
area = obj.mean((1, 2))
for m, rule in (("lrp", lambda s: s > area + 0.05), ("deeplift", lambda s: s >= 0.95)):
    pos = np.clip(np.load(f"{sys.argv[2]}/s_{m}.npy")[:, 0], 0, None)
    share = (pos * obj).sum((1, 2)) / pos.sum((1, 2))
    assert rule(share).all(), (m, share.round(2), area.round(2))
PYEOF
fi

# ---- bad cases ---------------------------------------------------------------------------

d=$(newdir)
expect_fail "unknown rule" 1 "$d" "unknown LRP rule" "$GB" explain --model "$NET" --input "$X" --method lrp \
    --rule zminus --out-dir "$d"
d=$(newdir)
expect_fail "unknown composite" 1 "$d" "epsilon_plus" "$GB" explain --model "$NET" --input "$X" --method lrp \
    --composite nope --out-dir "$d"
d=$(newdir)
expect_fail "bad box" 2 "$d" "--box" "$GB" explain --model "$NET" --input "$X" --method lrp --box 1,0 --out-dir "$d"
d=$(newdir)
expect_fail "box channels" 1 "$d" "zbox" "$GB" explain --model "$NET" --input "$X" --method lrp \
    --composite epsilon_gamma_box --box 0,0,1,1 --out-dir "$d"
d=$(newdir)
expect_fail "bad epsilon" 2 "$d" "--epsilon" "$GB" explain --model "$NET" --input "$X" --method lrp --epsilon x --out-dir "$d"
d=$(newdir)
expect_fail "bad deeplift rule" 2 "$d" "--deeplift-rule" "$GB" explain --model "$NET" --input "$X" --method deeplift \
    --deeplift-rule linear --out-dir "$d"
d=$(newdir)
expect_fail "bad deeplift maxpool" 2 "$d" "--deeplift-maxpool" "$GB" explain --model "$NET" --input "$X" \
    --method deeplift --deeplift-maxpool max --out-dir "$d"
d=$(newdir)
expect_fail "deeplift with a set" 1 "$d" "references" "$GB" explain --model "$NET" --input "$X" --method deeplift \
    --baseline "$FIX/dl_bset.npy" --out-dir "$d"
d=$(newdir)
expect_fail "failure after a good method" 1 "$d" "unknown LRP rule" "$GB" explain --model "$NET" --input "$X" \
    --method deeplift,lrp --rule zminus --out-dir "$d" --out-npy "$d/a.npy"

echo "$cases cases, $failures failures"
[ "$failures" -eq 0 ]
