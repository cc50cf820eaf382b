#!/bin/sh
# First command of the README: install what is missing, build, and run the
# main job on the bundled small model (the trained default model comes with
# the first-hour issue).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
MODEL=tests/fixtures/models/tiny_cnn.onnx
mkdir -p out
echo "== glassbox info $MODEL"
./build/glassbox info "$MODEL"
echo
echo "== glassbox run --model $MODEL --input tests/fixtures/models/tiny_cnn.input.npy --out-dir out"
./build/glassbox run --model "$MODEL" --input tests/fixtures/models/tiny_cnn.input.npy --out-dir out
