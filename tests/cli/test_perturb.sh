#!/usr/bin/env bash
# test_perturb.sh — `glassbox explain` with the perturbation methods and
# `glassbox segment`, on good and bad input.
#
#   bash tests/cli/test_perturb.sh BUILD/glassbox SOURCE_DIR
#
# Good cases run on tests/fixtures/perturb/pt_net.onnx (a small ReLU network;
# tests/scripts/make_perturb_fixtures.py) and compare the raw attributions
# with Captum's (the fixtures) through /usr/bin/python3 + NumPy when
# available; `segment` runs on a fixture image and on the default model's
# first sample. Bad cases must exit 1 or 2 (never by a signal), print one
# line "glassbox: ..." and leave nothing in their (fresh) output directory.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 GLASSBOX_BINARY SOURCE_DIR" >&2
    exit 2
fi
GB=$1
SRC=$2
FIX=$SRC/tests/fixtures/perturb
NET=$FIX/pt_net.onnx
X=$FIX/input.npy
PY=/usr/bin/python3
[ -x "$GB" ] || { echo "not executable: $GB" >&2; exit 2; }
[ -f "$NET" ] || { echo "missing $NET (run tests/scripts/make_perturb_fixtures.py)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gb_perturb_cli_XXXXXX")
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

is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

have_numpy() { [ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null; }

# same_npy GOT REF : same shape, relative L2 error <= 1e-5
same_npy() {
    have_numpy || return 0
    "$PY" - "$1" "$2" <<'PYEOF' || fail "$1 differs from $2"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
e = np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b), 1e-30)
assert e <= 1e-5, e
PYEOF
}

# ---- good cases ---------------------------------------------------------------------------

expect_ok "explain --help" "$GB" explain --help
grep -q -- "--window H,W" "$WORK/stdout" || fail "explain --help does not show --window"
grep -q "kernel_shap" "$WORK/stdout" || fail "explain --help does not list kernel_shap"

expect_ok "occlusion vs Captum" "$GB" explain --model "$NET" --input "$X" --method occlusion --target 2 \
    --window 4,3 --stride 2,2 --baseline 0.5 --out-npy occ.npy
same_npy occ.npy "$FIX/occlusion.npy"

expect_ok "feature_ablation --mask .npy vs Captum" "$GB" explain --model "$NET" --input "$X" \
    --method feature_ablation --target 2 --mask "$FIX/mask.npy" --baseline "$FIX/baseline.npy" --out-npy fa.npy
same_npy fa.npy "$FIX/feature_ablation.npy"

expect_ok "lime reports its surrogate" "$GB" explain --model "$NET" --input "$X" --method lime --target 2 \
    --mask "$FIX/mask.npy" --samples 80 --seed 3 --out-npy lime.npy
grep -q "lime surrogate: weighted R^2 [0-9.-]* over 8 features; top: #" "$WORK/stdout" ||
    fail "lime: no surrogate line: $(cat "$WORK/stdout")"
[ "$(grep -c 'surrogate' "$WORK/stdout")" -eq 2 ] || fail "lime: want one surrogate line per item"

expect_ok "kernel_shap ridge flags, several methods" "$GB" explain --model "$NET" --input "$X" \
    --method kernel_shap,shapley_sampling,rise --grid 4,5 --samples 30 --out-npy m.npy
for m in kernel_shap shapley_sampling rise; do [ -f "m_$m.npy" ] || fail "no m_$m.npy"; done
grep -q "delta" "$WORK/stdout" || fail "kernel_shap: no delta printed"

expect_ok "lime --surrogate ridge --segments" "$GB" explain --model "$NET" --input "$X" --method lime \
    --surrogate ridge --alpha 0.5 --kernel-width 0.25 --segments 6 --samples 40 --out-npy l2.npy

# segment: a label map and an overlay; then used as a --mask (PNG and .npy)
IMG=$SRC/tests/fixtures/images/colors.png
expect_ok "segment" "$GB" segment --image "$IMG" --segments 20 --out-npy seg.npy --out-png seg.png
is_png seg.png || fail "segment: seg.png is not a PNG"
grep -q "segments over" "$WORK/stdout" || fail "segment: no summary line"
expect_ok "segment --grid" "$GB" segment --image "$IMG" --grid 8,8 --out-png grid.png
if have_numpy; then
    "$PY" - <<'PYEOF' || fail "a 12x10 PNG label map"
import numpy as np, zlib, struct
lab = np.load("seg.npy")
assert lab.dtype == np.int64 and lab.ndim == 2 and lab.min() == 0, (lab.dtype, lab.shape)
assert len(np.unique(lab)) == lab.max() + 1
# a 12 x 10 gray PNG with 4 levels: the mask for pt_net
img = np.repeat(np.repeat(np.array([[0, 60], [120, 250]], np.uint8), 6, 0), 5, 1)
raw = b"".join(b"\0" + r.tobytes() for r in img)
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 12, 8, 0, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open("mask4.png", "wb").write(png)
PYEOF
    expect_ok "feature_ablation --mask PNG" "$GB" explain --model "$NET" --input "$X" --method feature_ablation \
        --mask mask4.png --out-npy fa4.npy
    "$PY" - <<'PYEOF' || fail "fa4.npy is not constant on the 4 blocks of the PNG mask"
import numpy as np
a = np.load("fa4.npy")
assert a.shape == (2, 3, 12, 10)
for blk in (a[:, :, :6, :5], a[:, :, :6, 5:], a[:, :, 6:, :5], a[:, :, 6:, 5:]):
    assert np.ptp(blk.reshape(2, -1), axis=1).max() == 0
PYEOF
fi
if [ -f "$SRC/models/default/fashion_cnn.onnx" ]; then
    SAMPLE=$(ls "$SRC/models/default/samples/"* | head -n 1)
    expect_ok "segment --model (default model)" "$GB" segment --image "$SAMPLE" \
        --model "$SRC/models/default/fashion_cnn.onnx" --segments 30 --out-npy fseg.npy --out-png fseg.png
    expect_ok "explain --mask from segment" "$GB" explain --image "$SAMPLE" --method lime --mask fseg.npy \
        --samples 100 --out-dir pngs --out-npy f.npy
    ls pngs/*_lime.png >/dev/null 2>&1 || fail "no lime panel"
fi

# ---- bad cases ------------------------------------------------------------------------------

D=$(newdir); expect_fail "--window 0" 2 "$D" "--window" "$GB" explain --model "$NET" --input "$X" --method occlusion --window 0 --out-dir "$D"
D=$(newdir); expect_fail "--window abc" 2 "$D" "--window" "$GB" explain --model "$NET" --input "$X" --method occlusion --window abc --out-dir "$D"
D=$(newdir); expect_fail "--stride 3,x" 2 "$D" "--stride" "$GB" explain --model "$NET" --input "$X" --method occlusion --stride 3,x --out-dir "$D"
D=$(newdir); expect_fail "stride over window" 1 "$D" "longer than the window" "$GB" explain --model "$NET" --input "$X" --method occlusion --window 2,2 --stride 3,3 --out-dir "$D"
D=$(newdir); expect_fail "window over image" 1 "$D" "larger than" "$GB" explain --model "$NET" --input "$X" --method occlusion --window 20,3 --out-dir "$D"
D=$(newdir); expect_fail "--segments 0" 2 "$D" "--segments" "$GB" explain --model "$NET" --input "$X" --method lime --segments 0 --out-dir "$D"
D=$(newdir); expect_fail "--segments 2.5" 2 "$D" "--segments" "$GB" explain --model "$NET" --input "$X" --method lime --segments 2.5 --out-dir "$D"
D=$(newdir); expect_fail "--surrogate bogus" 2 "$D" "--surrogate" "$GB" explain --model "$NET" --input "$X" --method lime --surrogate bogus --out-dir "$D"
D=$(newdir); expect_fail "--rise-p 2" 2 "$D" "--rise-p" "$GB" explain --model "$NET" --input "$X" --method rise --rise-p 2 --out-dir "$D"
D=$(newdir); expect_fail "--baseline 1e400" 2 "$D" "--baseline" "$GB" explain --model "$NET" --input "$X" --method occlusion --baseline 1e400 --out-dir "$D"
D=$(newdir); expect_fail "--mask missing" 1 "$D" "nope.npy" "$GB" explain --model "$NET" --input "$X" --method lime --mask "$WORK/nope.npy" --out-dir "$D"
D=$(newdir); expect_fail "--mask of the wrong shape" 1 "$D" "fits neither" "$GB" explain --model "$NET" --input "$X" --method feature_ablation --mask "$WORK/seg.npy" --out-dir "$D"
D=$(newdir); expect_fail "--mask of fractions" 1 "$D" "not an integer" "$GB" explain --model "$NET" --input "$X" --method feature_ablation --mask "$FIX/baseline.npy" --out-dir "$D"
D=$(newdir); expect_fail "--mask not an image" 1 "$D" "--mask" "$GB" explain --model "$NET" --input "$X" --method lime --mask "$FIX/pt_net.onnx" --out-dir "$D"
D=$(newdir); expect_fail "second method fails: nothing left" 1 "$D" "larger than" "$GB" explain --model "$NET" --input "$X" --method feature_ablation,occlusion --window 30,30 --out-dir "$D" --out-npy "$D/a.npy"
D=$(newdir); expect_fail "segment without --image" 2 "$D" "--image" "$GB" segment --out-npy "$D/s.npy"
D=$(newdir); expect_fail "segment of a non-image" 1 "$D" "" "$GB" segment --image "$NET" --out-npy "$D/s.npy" --out-png "$D/s.png"
D=$(newdir); expect_fail "segment --segments x" 2 "$D" "--segments" "$GB" segment --image "$IMG" --segments x --out-png "$D/s.png"
D=$(newdir); expect_fail "segment --grid 0" 2 "$D" "--grid" "$GB" segment --image "$IMG" --grid 0 --out-png "$D/s.png"
D=$(newdir); expect_fail "segment: unwritable png" 1 "$D" "" "$GB" segment --image "$IMG" --out-npy "$D/s.npy" --out-png "$WORK/no/such/dir/s.png"

echo "$cases cases, $failures failures"
[ "$failures" -eq 0 ]
