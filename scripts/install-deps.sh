#!/bin/sh
# Install the Debian 12 packages glassbox needs, if any is missing.
# Build: cmake, C compiler, protobuf-c (with the onnx.proto of libonnx-dev),
# OpenBLAS, stb, zlib, cmocka. Tests and reference fixtures: ONNX's backend
# test data, Debian's PyTorch/torchvision/onnx/numpy, Fashion-MNIST, clang.
set -eu
PKGS="build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata
libopenblas-openmp-dev libstb-dev libcjson-dev libdnnl-dev zlib1g-dev libcmocka-dev python3-pil python3 python3-numpy python3-torch python3-torchvision
python3-onnx dataset-fashion-mnist clang libclang-rt-14-dev libomp-14-dev valgrind"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "glassbox: installing missing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
