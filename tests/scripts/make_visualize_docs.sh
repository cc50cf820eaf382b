#!/usr/bin/env bash
# make_visualize_docs.sh — the pictures of docs/visualize.md, made by the glassbox commands
# themselves on the default model (seeds fixed, so reruns give the same files).
#
#   bash tests/scripts/make_visualize_docs.sh BUILD/glassbox [OUT_DIR=docs]
#
# Needs /usr/bin/python3 with numpy and PIL only to read Fashion-MNIST (Debian's
# dataset-fashion-mnist) and to lay the command outputs out side by side, magnified.
set -eu
GB=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${2:-$SRC/docs}
S=$SRC/models/default/samples
D=$SRC/models/default
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMP_WAIT_POLICY=passive
L1=/features/features.5/Relu_output_0
L3=/features/features.12/Relu_output_0
L6=/features/features.19/Relu_output_0

# features: the 16 channel maps of the second conv block for the sneaker, and the
# Fashion-MNIST test images (first 2000) that most activate channel 3 of the 4th conv
"$GB" features --image "$S/7_sneaker.png" --layer $L1 --out-png "$OUT/visualize_features.png" >"$W/features.txt"
/usr/bin/python3 "$SRC/tests/scripts/fashion_mnist_npy.py" --split t10k --count 2000 --out "$W/test.npy"
"$GB" features --unit $L3:3 --dataset "$W/test.npy" --top 8 --out-top "$OUT/visualize_top.png" >"$W/top.txt"

# maximize: every class logit (Fourier parameterization, jitter/scale/rotation), and
# 3 diverse images for one channel
for k in 0 1 2 3 4 5 6 7 8 9; do
    "$GB" maximize --target $k --seed 1 --out-png "$W/class_$k.png" >>"$W/maximize.txt"
done
"$GB" maximize --channel $L3:3 --images 3 --diversity 2 --seed 1 --out-png "$W/channel.png" >>"$W/maximize.txt"

# invert: the dress from each layer, and from perturbed logits / pooled features
for L in image $L1 $L3 $L6 /Flatten_output_0 logits; do
    n=$(echo "$L" | tr '/.' '__')
    "$GB" invert --image "$S/3_dress.png" --layer "$L" --seed 1 --out-png "$W/inv_$n.png" >>"$W/invert.txt"
done
for dec in logits:logits pool:/Flatten_output_0; do
    f=$D/decoder_${dec%%:*}.onnx
    [ -f "$f" ] || continue
    for p in none binarize dropout; do
        extra=""
        [ "$p" = none ] || extra="--perturb $p"
        "$GB" invert --image "$S/3_dress.png" --layer "${dec#*:}" --decoder "$f" $extra --seed 1 \
            --out-png "$W/dec_${dec%%:*}_$p.png" >>"$W/invert.txt"
    done
done

/usr/bin/python3 - "$W" "$OUT" <<'PY'
import glob, os, sys
from PIL import Image, ImageDraw
w, out = sys.argv[1], sys.argv[2]

def row(files, labels, path, scale=4):
    ims = [Image.open(f).convert("RGB") for f in files]
    ims = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in ims]
    cw = max(im.width for im in ims)
    sheet = Image.new("RGB", (len(ims) * (cw + 6) + 6, max(im.height for im in ims) + 22), "white")
    d = ImageDraw.Draw(sheet)
    for i, (im, lab) in enumerate(zip(ims, labels)):
        x = 6 + i * (cw + 6)
        sheet.paste(im, (x, 4))
        d.text((x, im.height + 8), lab, fill="black")
    sheet.save(path)

labels = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
row([f"{w}/class_{k}.png" for k in range(10)], labels, f"{out}/visualize_maximize.png")
row([f"{w}/channel.png"], ["conv4 ch 3, 3 diverse"], f"{out}/visualize_diversity.png")
names = ["image", "_features_features_5_Relu_output_0", "_features_features_12_Relu_output_0",
         "_features_features_19_Relu_output_0", "_Flatten_output_0", "logits"]
row([f"{w}/inv_{n}.png" for n in names], ["input", "conv2", "conv4", "conv6", "pool", "logits"],
    f"{out}/visualize_invert.png")
dec = sorted(glob.glob(f"{w}/dec_*.png"))
if dec:
    order = [f"{w}/dec_{d}_{p}.png" for d in ("logits", "pool") for p in ("none", "binarize", "dropout")]
    order = [f for f in order if os.path.exists(f)]
    row(order, [os.path.basename(f)[4:-4] for f in order], f"{out}/visualize_decoder.png")
PY
cat "$W/features.txt" "$W/top.txt" "$W/maximize.txt" "$W/invert.txt"
