#!/usr/bin/env bash
# test_cli.sh — the glassbox command-line tool on good and bad input.
#
#   bash tests/cli/test_cli.sh BUILD/glassbox SOURCE_DIR
#
# Good cases: `info` and `run` on the fixtures in tests/fixtures/models/
# (written by tests/scripts/make_fixtures.py). The logits of tiny_cnn are
# compared with PyTorch's (tiny_cnn.logits.npy) through /usr/bin/python3 and
# NumPy when available; a second run must give identical bytes either way.
#
# Bad cases: every one must
#   - exit with status 1 (runtime failure) or 2 (usage), never by a signal;
#   - print exactly one line on stderr, starting with "glassbox: ";
#   - leave nothing in its --out-dir (a fresh empty directory per case):
#     no output, no temporary file.
# The .npy files for the bad cases are built here with printf, so they need
# no Python.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 GLASSBOX_BINARY SOURCE_DIR" >&2
    exit 2
fi
GB=$1
SRC=$2
FIX=$SRC/tests/fixtures/models
PY=/usr/bin/python3
[ -x "$GB" ] || { echo "not executable: $GB" >&2; exit 2; }
[ -f "$FIX/tiny_cnn.onnx" ] || { echo "missing fixtures in $FIX (run tests/scripts/make_fixtures.py)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gb_cli_XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=0
cases=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# A fresh, empty output directory for one case (called as $(newdir), so it
# keeps no state of its own).
newdir() { mktemp -d "$WORK/out.XXXXXX"; }

# npy_f32 FILE DIM... : a float32 .npy of zeros with that shape (format 1.0,
# header padded so the data starts at a multiple of 64, as NumPy does).
npy_f32() {
    local file=$1
    shift
    local shape="" n=1 d
    for d in "$@"; do
        shape="$shape$d, "
        n=$((n * d))
    done
    [ $# -eq 1 ] && shape="$1,"
    [ $# -gt 1 ] && shape=${shape%, }
    local dict="{'descr': '<f4', 'fortran_order': False, 'shape': ($shape), }"
    local hlen=$(((10 + ${#dict} + 1 + 63) / 64 * 64 - 10))
    local pad=$((hlen - ${#dict} - 1))
    {
        printf '\x93NUMPY\x01\x00'
        printf "\\x$(printf %02x $((hlen % 256)))\\x$(printf %02x $((hlen / 256)))"
        printf '%s%*s\n' "$dict" "$pad" ""
        head -c $((n * 4)) /dev/zero
    } >"$file"
}

# expect_fail NAME WANT_RC OUTDIR NEEDLE CMD... : CMD must fail as described
# at the top. NEEDLE (may be empty) must appear in the message.
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
        fail "$name: exit status $rc, expected $want"
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

# expect_ok NAME CMD... : exit 0, nothing on stderr.
expect_ok() {
    local name=$1
    shift
    cases=$((cases + 1))
    "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    local rc=$?
    [ "$rc" -eq 0 ] || fail "$name: exit status $rc: $(cat "$WORK/stderr")"
    [ -s "$WORK/stderr" ] && fail "$name: wrote to stderr: $(cat "$WORK/stderr")"
    return 0
}

# only_files DIR NAME... : DIR holds exactly these files.
only_files() {
    local dir=$1
    shift
    local want got
    want=$(printf '%s\n' "$@" | sort)
    got=$(cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | sort)
    [ "$want" = "$got" ] || fail "$dir holds [$(echo $got)], expected [$(echo $want)]"
}

have_numpy() { [ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null; }

# ---- good cases ---------------------------------------------------------------

expect_ok "info tiny_cnn" "$GB" info "$FIX/tiny_cnn.onnx"
for word in Conv BatchNormalization MaxPool GlobalAveragePool Gemm logits; do
    grep -q "$word" "$WORK/stdout" || fail "info tiny_cnn: output lacks '$word'"
done
expect_ok "info --help" "$GB" info --help
expect_ok "run --help" "$GB" run --help

out=$(newdir)
expect_ok "run tiny_cnn" "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$FIX/tiny_cnn.input.npy" --out-dir "$out"
only_files "$out" logits.npy
# A second run, into a directory run must create, gives identical bytes.
out3=$WORK/created_by_run
expect_ok "run tiny_cnn into a new directory" "$GB" run --model "$FIX/tiny_cnn.onnx" \
    --input "$FIX/tiny_cnn.input.npy" --out-dir "$out3"
only_files "$out3" logits.npy
if [ -f "$out/logits.npy" ] && [ -f "$out3/logits.npy" ]; then
    cmp -s "$out/logits.npy" "$out3/logits.npy" || fail "two runs of tiny_cnn gave different bytes"
fi
if have_numpy && [ -f "$out/logits.npy" ]; then
    "$PY" - "$out/logits.npy" "$FIX/tiny_cnn.logits.npy" <<'EOF' || fail "tiny_cnn logits differ from PyTorch's"
import sys
import numpy as np
got, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
assert got.dtype == np.float32 and got.shape == ref.shape, (got.dtype, got.shape, ref.shape)
err = np.abs(got - ref) / (np.abs(ref) + 1e-6)
if not np.all(np.abs(got - ref) <= 1e-4 * np.abs(ref) + 1e-6):
    sys.exit(f"max relative error {err.max():.3g}")
EOF
else
    echo "note: /usr/bin/python3 with NumPy not found: logits checked for determinism only"
fi

# Output names that need sanitising: '/' and ':' become '_', a collision gets
# _2, and '../escape' must not leave the directory.
out=$(newdir)
mkdir "$out/inner"
expect_ok "run multi_output" "$GB" run --model "$FIX/multi_output.onnx" --input "$FIX/multi_output.input.npy" \
    --out-dir "$out/inner"
only_files "$out" inner inner/head_out_0.npy inner/head_out_0_2.npy inner/_._escape.npy
[ -e "$WORK/escape.npy" ] && fail "multi_output: '../escape' escaped the output directory"
if have_numpy && [ -f "$out/inner/head_out_0.npy" ]; then
    "$PY" - "$out/inner" "$FIX/multi_output.input.npy" <<'EOF' || fail "multi_output values wrong"
import sys
import numpy as np
d, x = sys.argv[1], np.load(sys.argv[2])
assert np.array_equal(np.load(d + "/head_out_0.npy"), np.maximum(x, 0))    # 'head/out:0' = Relu
assert np.array_equal(np.load(d + "/head_out_0_2.npy"), -x)                 # 'head:out/0' = Neg
assert np.array_equal(np.load(d + "/_._escape.npy"), x)                     # '../escape' = Identity
EOF
fi

# ---- bad models ---------------------------------------------------------------

X=$FIX/tiny_cnn.input.npy

out=$(newdir)
expect_fail "missing model" 1 "$out" "$WORK/nope.onnx" \
    "$GB" run --model "$WORK/nope.onnx" --input "$X" --out-dir "$out"
out=$(newdir)
expect_fail "info missing model" 1 "$out" "$WORK/nope.onnx" "$GB" info "$WORK/nope.onnx"
out=$(newdir)
expect_fail "directory as model" 1 "$out" "$FIX" "$GB" run --model "$FIX" --input "$X" --out-dir "$out"

size=$(wc -c <"$FIX/tiny_cnn.onnx")
for cut in 0 1 7 64 1000 $((size / 2)) $((size - 100)) $((size - 1)); do
    head -c "$cut" "$FIX/tiny_cnn.onnx" >"$WORK/trunc.onnx"
    out=$(newdir)
    expect_fail "model truncated to $cut bytes" 1 "$out" "trunc.onnx" \
        "$GB" run --model "$WORK/trunc.onnx" --input "$X" --out-dir "$out"
done

# A corrupt first tag (wire type 7 does not exist): must fail.
cp "$FIX/tiny_cnn.onnx" "$WORK/flip.onnx"
printf '\xff' | dd of="$WORK/flip.onnx" bs=1 seek=0 conv=notrunc status=none
out=$(newdir)
expect_fail "corrupt first byte" 1 "$out" "" "$GB" run --model "$WORK/flip.onnx" --input "$X" --out-dir "$out"
# Seeded single-bit flips anywhere: a flip may land in a weight and still
# load, so each must either succeed (and write logits.npy) or fail cleanly.
RANDOM=4242
for i in $(seq 1 25); do
    cp "$FIX/tiny_cnn.onnx" "$WORK/flip.onnx"
    off=$(((RANDOM * 32768 + RANDOM) % size))
    byte=$(od -An -tu1 -j "$off" -N1 "$FIX/tiny_cnn.onnx" | tr -d ' ')
    new=$((byte ^ (1 << (RANDOM % 8))))
    printf "\\x$(printf %02x "$new")" | dd of="$WORK/flip.onnx" bs=1 seek="$off" conv=notrunc status=none
    out=$(newdir)
    "$GB" run --model "$WORK/flip.onnx" --input "$X" --out-dir "$out" >/dev/null 2>"$WORK/stderr"
    rc=$?
    cases=$((cases + 1))
    if [ "$rc" -eq 0 ]; then
        only_files "$out" logits.npy
    else
        out=$(newdir)
        expect_fail "bit flip at byte $off" 1 "$out" "" "$GB" run --model "$WORK/flip.onnx" --input "$X" --out-dir "$out"
    fi
done

out=$(newdir)
expect_fail "unknown ops" 1 "$out" "FooBar" "$GB" run --model "$FIX/unknown_op.onnx" --input "$X" --out-dir "$out"
grep -q "NonMaxSuppression" "$WORK/stderr" || fail "unknown ops: message lacks NonMaxSuppression"
grep -q "mystery_node" "$WORK/stderr" || fail "unknown ops: message lacks the node name mystery_node"
grep -q "nms_node" "$WORK/stderr" || fail "unknown ops: message lacks the node name nms_node"
expect_fail "info unknown ops" 1 "$out" "NonMaxSuppression" "$GB" info "$FIX/unknown_op.onnx"
out=$(newdir)
expect_fail "int32 input" 1 "$out" "INT32" "$GB" run --model "$FIX/int32_input.onnx" --input "$X" --out-dir "$out"

# ---- bad inputs ----------------------------------------------------------------

npy_f32 "$WORK/h17.npy" 1 3 17 16
out=$(newdir)
expect_fail "wrong input shape" 1 "$out" "1x3x17x16" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK/h17.npy" --out-dir "$out"
grep -q "x3x16x16" "$WORK/stderr" || fail "wrong input shape: message lacks the declared shape"
npy_f32 "$WORK/rank3.npy" 3 16 16
out=$(newdir)
expect_fail "wrong input rank" 1 "$out" "3x16x16" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK/rank3.npy" --out-dir "$out"
npy_f32 "$WORK/ok1.npy" 1 3 16 16
out=$(newdir)
expect_ok "hand-made npy accepted (sanity check of npy_f32)" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK/ok1.npy" --out-dir "$out"
out=$(newdir)
expect_fail "two inputs for a one-input model" 1 "$out" "" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$X" --input "$X" --out-dir "$out"

cp "$X" "$WORK/badmagic.npy"
printf 'X' | dd of="$WORK/badmagic.npy" bs=1 seek=0 conv=notrunc status=none
out=$(newdir)
expect_fail "npy bad magic" 1 "$out" "badmagic.npy" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK/badmagic.npy" --out-dir "$out"
for cut in 0 5 9 40; do
    head -c "$cut" "$X" >"$WORK/trunchdr.npy"
    out=$(newdir)
    expect_fail "npy truncated to $cut bytes (header)" 1 "$out" "trunchdr.npy" \
        "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK/trunchdr.npy" --out-dir "$out"
done
xsize=$(wc -c <"$X")
head -c $((xsize - 100)) "$X" >"$WORK/truncdata.npy"
out=$(newdir)
expect_fail "npy truncated data" 1 "$out" "truncdata.npy" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK/truncdata.npy" --out-dir "$out"
out=$(newdir)
expect_fail "missing input file" 1 "$out" "$WORK/nope.npy" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK/nope.npy" --out-dir "$out"
out=$(newdir)
expect_fail "directory as input" 1 "$out" "" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$WORK" --out-dir "$out"

# The output directory is an existing regular file: nothing can be written.
echo keep >"$WORK/plainfile"
expect_fail "out-dir is a file" 1 "$WORK/none" "" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$X" --out-dir "$WORK/plainfile"
[ "$(cat "$WORK/plainfile")" = keep ] || fail "out-dir is a file: the file was changed"

# ---- usage errors -----------------------------------------------------------------

out=$(newdir)
expect_fail "unknown option (run)" 2 "$out" "--bogus" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$X" --out-dir "$out" --bogus
expect_fail "unknown option (info)" 2 "$out" "--bogus" "$GB" info --bogus "$FIX/tiny_cnn.onnx"
expect_fail "unknown command" 2 "$out" "frobnicate" "$GB" frobnicate
expect_fail "missing --out-dir" 2 "$out" "--out-dir" "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$X"
expect_fail "missing --input" 2 "$out" "--input" "$GB" run --model "$FIX/tiny_cnn.onnx" --out-dir "$out"
# Without --model the default model is used: here one whose input shape does not fit X,
# and (through GLASSBOX_MODEL) one that does not exist.
expect_fail "no --model: default model, wrong input" 1 "$out" "28x28" "$GB" run --input "$X" --out-dir "$out"
expect_fail "no --model: missing default model" 1 "$out" "nope.onnx" \
    env GLASSBOX_MODEL="$WORK/nope.onnx" "$GB" run --input "$X" --out-dir "$out"
expect_fail "option without its value" 2 "$out" "--out-dir" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$X" --out-dir
expect_fail "bad --threads" 2 "$out" "--threads" \
    "$GB" run --model "$FIX/tiny_cnn.onnx" --input "$X" --out-dir "$out" --threads zero
expect_fail "info with a missing default model" 1 "$out" "nope.onnx" env GLASSBOX_MODEL="$WORK/nope.onnx" "$GB" info

if [ "$failures" -ne 0 ]; then
    echo "$failures of $cases CLI checks failed" >&2
    exit 1
fi
echo "all $cases CLI checks passed"
