#!/bin/sh
# First command of the README: install what is missing, build, and run the
# main job: explain a sample image on the embedded default model (a
# Fashion-MNIST CNN), writing heatmap panels as PNG files and printing a
# summary.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
IMG=models/default/samples/0_tshirt.png
echo "== glassbox predict --image $IMG"
./build/glassbox predict --image "$IMG" --top 3
echo
echo "== glassbox explain --image $IMG --method saliency,integrated_gradients,guided_backprop,gradcam --out-dir out"
./build/glassbox explain --image "$IMG" --method saliency,integrated_gradients,guided_backprop,gradcam --out-dir out
echo
echo "Open out/0_tshirt_comparison.png (all methods) or out/0_tshirt_<method>.png."
