#!/usr/bin/env bash
# test_concepts.sh — `glassbox concepts-gen`, `dissect`, `tcav` and `probe`
# on good and bad input.
#
#   bash tests/cli/test_concepts.sh BUILD/glassbox SOURCE_DIR
#
# Good cases: a small synthetic dataset (60 scenes of 48x48, made here), the
# hand-made color detector of tests/fixtures/concepts (each unit must be
# matched to its color with IoU 1), the scene model models/scenes/ when it
# exists (detector counts per layer), TCAV and probes end to end.
# Bad cases must exit 1 or 2 (never by a signal), print one line starting
# "glassbox: ", and leave their (fresh, empty) output directory empty.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 GLASSBOX_BINARY SOURCE_DIR" >&2
    exit 2
fi
GB=$1
SRC=$2
FIX=$SRC/tests/fixtures/concepts
COLOR=$FIX/color_detector.onnx
SCENES=$SRC/models/scenes/scenes_cnn.onnx
[ -x "$GB" ] || { echo "not executable: $GB" >&2; exit 2; }
[ -f "$COLOR" ] || { echo "missing $COLOR (run tests/scripts/make_concepts_fixtures.py)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gb_concepts_cli_XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 2
unset GLASSBOX_MODEL
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
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
    if [ "$lines" -ne 1 ]; then
        fail "$name: stderr has $lines lines (want exactly one):"
        sed 's/^/    | /' "$WORK/stderr" >&2
    elif ! grep -q '^glassbox: .' "$WORK/stderr"; then
        fail "$name: stderr does not start with 'glassbox: ': $(cat "$WORK/stderr")"
    elif [ -n "$needle" ] && ! grep -qF -- "$needle" "$WORK/stderr"; then
        fail "$name: message lacks '$needle': $(cat "$WORK/stderr")"
    fi
    if [ -n "$out" ] && [ -d "$out" ] && [ -n "$(find "$out" -mindepth 1 -print -quit)" ]; then
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

# ---- concepts-gen ----
DATA=$WORK/scenes
expect_ok "concepts-gen" "$GB" concepts-gen --out "$DATA" --count 60 --size 48 --seed 2
for f in index.csv category.csv label.csv c_color.csv c_object.csv c_part.csv c_texture.csv c_scene.csv \
    images/000000.png images/000059_color.png images/000059_texture.png; do
    [ -f "$DATA/$f" ] || fail "concepts-gen: missing $f"
done
[ "$(wc -l <"$DATA/index.csv")" -eq 61 ] || fail "concepts-gen: index.csv has $(wc -l <"$DATA/index.csv") lines"
head -n 1 "$DATA/index.csv" | grep -q '^image,split,ih,iw,sh,sw,color,object,part,material,scene,texture$' ||
    fail "concepts-gen: index.csv header: $(head -n 1 "$DATA/index.csv")"
expect_ok "concepts-gen again (same seed)" "$GB" concepts-gen --out "$WORK/scenes2" --count 60 --size 48 --seed 2
cmp -s "$DATA/index.csv" "$WORK/scenes2/index.csv" || fail "concepts-gen: not deterministic (index.csv)"
cmp -s "$DATA/images/000042_part.png" "$WORK/scenes2/images/000042_part.png" ||
    fail "concepts-gen: not deterministic (000042_part.png)"

# ---- dissect: exact color detectors ----
OUT=$WORK/dissect_color
expect_ok "dissect color detector" "$GB" dissect --model "$COLOR" --preproc height=48 --preproc width=48 \
    --data "$DATA" --layer colors --out-dir "$OUT" --quantile 0.6
for f in units.csv units.json summary.csv report.html units/colors_0000.png units/colors_0011.png; do
    [ -f "$OUT/$f" ] || fail "dissect: missing $f"
done
if [ -f "$OUT/units.csv" ]; then
    n=0
    colors="black white red green blue yellow orange purple pink brown gray cyan"
    for c in $colors; do
        line=$(awk -F, -v u=$n '$1 == "colors" && $2 == u' "$OUT/units.csv")
        concept=$(echo "$line" | cut -d, -f4)
        iou=$(echo "$line" | cut -d, -f5)
        [ "$concept" = "$c" ] || fail "dissect: unit $n is '$concept', expected $c"
        awk -v x="$iou" 'BEGIN { exit !(x > 0.99) }' || fail "dissect: unit $n IoU $iou"
        n=$((n + 1))
    done
    grep -q '^colors,color,12,12$' "$OUT/summary.csv" || fail "dissect: summary: $(cat "$OUT/summary.csv")"
fi

# ---- Net2Vec through dissect --net2vec ----
OUT=$WORK/dissect_n2v
expect_ok "dissect --net2vec" "$GB" dissect --model "$COLOR" --preproc height=48 --preproc width=48 \
    --data "$DATA" --layer colors --out-dir "$OUT" --quantile 0.6 --no-images --net2vec
iou=$(awk -F, '$1 == "colors" && $3 == "red" { print $4 }' "$OUT/net2vec.csv" 2>/dev/null)
awk -v x="${iou:-0}" 'BEGIN { exit !(x > 0.9) }' || fail "net2vec: red segmentation IoU '$iou'"
[ -d "$OUT/units" ] && fail "dissect --no-images: made units/"

# ---- dissect: the scene model, two layers ----
if [ -f "$SCENES" ]; then
    OUT=$WORK/dissect_scenes
    expect_ok "dissect scene model" "$GB" dissect --model "$SCENES" --data "$DATA" --layer relu2,relu4 \
        --out-dir "$OUT" --top 3
    [ "$(grep -c '^relu2,' "$OUT/units.csv")" -eq 32 ] || fail "dissect scenes: relu2 rows"
    [ "$(grep -c '^relu4,' "$OUT/units.csv")" -eq 64 ] || fail "dissect scenes: relu4 rows"
    grep -q 'detectors' "$WORK/stdout" || fail "dissect scenes: no detector counts printed"
fi

# ---- probes on the scene model: accuracy rises with depth ----
if [ -f "$SCENES" ]; then
    expect_ok "concepts-gen 64" "$GB" concepts-gen --out "$WORK/scenes64" --count 200 --size 64 --seed 5
    expect_ok "probe scene model" "$GB" probe --model "$SCENES" --data "$WORK/scenes64" \
        --layer image,relu2,relu4 --csv "$WORK/probe_scenes.csv"
    acc() { awk -F, -v l="$1" '$1 == l { print $4 }' "$WORK/probe_scenes.csv"; }
    a0=$(acc image)
    a2=$(acc relu2)
    a4=$(acc relu4)
    awk -v a="$a0" -v b="$a2" -v c="$a4" 'BEGIN { exit !(c > b && b > a && a > 0.2) }' ||
        fail "probe: test accuracy does not rise with depth: image $a0, relu2 $a2, relu4 $a4"
fi

# ---- probe ----
expect_ok "probe" "$GB" probe --model "$COLOR" --preproc height=48 --preproc width=48 --data "$DATA" \
    --layer image,colors --max-features 512 --csv "$WORK/probe.csv" --svg "$WORK/probe.svg"
[ "$(wc -l <"$WORK/probe.csv" 2>/dev/null)" = 3 ] || fail "probe: csv"
grep -q '<svg' "$WORK/probe.svg" 2>/dev/null || fail "probe: svg"

# ---- tcav: plumbing on scene images (concept = scenes with a red region) ----
mkdir -p "$WORK/tc/concept" "$WORK/tc/class" "$WORK/tc/r1" "$WORK/tc/r2" "$WORK/tc/r3"
i=0
for f in "$DATA"/images/0000[0-5][0-9].png; do
    case $(basename "$f") in *_*) continue ;; esac
    d=$((i % 5))
    case $d in 0) dst=concept ;; 1) dst=class ;; 2) dst=r1 ;; 3) dst=r2 ;; *) dst=r3 ;; esac
    cp "$f" "$WORK/tc/$dst/"
    i=$((i + 1))
done
expect_ok "tcav" "$GB" tcav --model "$COLOR" --preproc height=48 --preproc width=48 --layer colors \
    --concept "$WORK/tc/concept" --random "$WORK/tc/r1" --random "$WORK/tc/r2" --random "$WORK/tc/r3" \
    --class-images "$WORK/tc/class" --target 1 --out "$WORK/tcav.json" --relative "$WORK/tc/r1"
for key in '"tcav_scores"' '"cav_accuracies"' '"random_tcav_scores"' '"p_value"' '"significant"' '"relative"'; do
    grep -q "$key" "$WORK/tcav.json" 2>/dev/null || fail "tcav: $key missing from the JSON"
done
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/tcav.json" ||
        fail "tcav: invalid JSON"
    /usr/bin/python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$OUT/units.json" ||
        fail "dissect: invalid JSON"
fi

# ---- bad input ----
D=$(newdir)
expect_fail "concepts-gen count 0" 2 "$D" "--count" "$GB" concepts-gen --out "$D/x" --count 0
expect_fail "concepts-gen size" 2 "$D" "--size" "$GB" concepts-gen --out "$D/x" --count 3 --size 8
expect_fail "concepts-gen no out" 2 "" "--out" "$GB" concepts-gen --count 3
expect_fail "concepts-gen unwritable" 1 "" "concepts-gen" "$GB" concepts-gen --out /proc/nope/x --count 3
D=$(newdir)
expect_fail "dissect no data" 2 "$D" "--data" "$GB" dissect --model "$COLOR" --layer colors --out-dir "$D"
expect_fail "dissect missing data" 1 "$D" "$WORK/nope" "$GB" dissect --model "$COLOR" --data "$WORK/nope" \
    --layer colors --out-dir "$D"
expect_fail "dissect bad layer" 1 "$D" "nosuch" "$GB" dissect --model "$COLOR" --preproc height=48 \
    --preproc width=48 --data "$DATA" --layer nosuch --out-dir "$D"
expect_fail "dissect 2-D layer" 1 "$D" "logits" "$GB" dissect --model "$COLOR" --preproc height=48 \
    --preproc width=48 --data "$DATA" --layer logits --out-dir "$D"
expect_fail "dissect bad quantile" 2 "$D" "--quantile" "$GB" dissect --model "$COLOR" --data "$DATA" \
    --layer colors --out-dir "$D" --quantile 2
expect_fail "dissect unknown flag" 2 "$D" "--frobnicate" "$GB" dissect --frobnicate
mkdir -p "$WORK/broken"
cp "$DATA"/*.csv "$WORK/broken/"
echo "000000.png,train,48,48,zz,48,,,,,," >>"$WORK/broken/index.csv"
expect_fail "dissect malformed index" 1 "$D" "bad sh" "$GB" dissect --model "$COLOR" --data "$WORK/broken" \
    --layer colors --out-dir "$D"
expect_fail "tcav one random" 2 "" "at least 2" "$GB" tcav --model "$COLOR" --layer colors \
    --concept "$WORK/tc/concept" --random "$WORK/tc/r1" --class-images "$WORK/tc/class" --target 0 \
    --out "$D/t.json"
expect_fail "tcav bad target" 1 "$D" "target 9" "$GB" tcav --model "$COLOR" --preproc height=48 \
    --preproc width=48 --layer colors --concept "$WORK/tc/concept" --random "$WORK/tc/r1" \
    --random "$WORK/tc/r2" --class-images "$WORK/tc/class" --target 9 --out "$D/t.json"
expect_fail "tcav empty concept dir" 1 "$D" "no image files" "$GB" tcav --model "$COLOR" --layer colors \
    --concept "$D" --random "$WORK/tc/r1" --random "$WORK/tc/r2" --class-images "$WORK/tc/class" \
    --target 0 --out "$WORK/t.json"
expect_fail "probe bad category" 1 "" "material" "$GB" probe --model "$COLOR" --preproc height=48 \
    --preproc width=48 --data "$DATA" --layer colors --label material
expect_fail "probe no layer" 2 "" "--layer" "$GB" probe --model "$COLOR" --data "$DATA"

echo "$cases cases, $failures failures"
[ "$failures" -eq 0 ]
