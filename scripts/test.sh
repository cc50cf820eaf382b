#!/bin/sh
# Second command of the README: build (if needed) and run the whole test suite.
# Usage: scripts/test.sh [BUILD_DIR [extra cmake args...]]
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
BUILD=${1:-build}
[ $# -gt 0 ] && shift
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
cd "$BUILD"
ctest --output-on-failure -j2 --timeout 3000
