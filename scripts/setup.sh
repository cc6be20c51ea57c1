#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages), then configures and builds
# longctx in build/. Idempotent: a second run installs nothing and rebuilds
# only what changed. Sourced by demo.sh and test.sh; runnable on its own.
set -euo pipefail

LONGCTX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LONGCTX_BUILD="${LONGCTX_BUILD:-$LONGCTX_ROOT/build}"

packages=(
  cmake ninja-build g++ lld ccache
  llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools
  libonnx-dev libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libgtest-dev libopenblas-openmp-dev
  python3 python3-numpy python3-onnx
)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "longctx setup: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "longctx setup: run as root or install sudo" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The CUDA toolkit is optional: found at /usr/local/cuda, CUDA code is built
# (and binaries still start without a GPU); absent, it is left out.
export CCACHE_BASEDIR="$LONGCTX_ROOT"
if [[ ! -f "$LONGCTX_BUILD/build.ninja" ]]; then
  cmake -S "$LONGCTX_ROOT" -B "$LONGCTX_BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-19/build/utils/lit/lit.py \
    -DPython3_EXECUTABLE=/usr/bin/python3
fi
cmake --build "$LONGCTX_BUILD"
export PATH="$LONGCTX_BUILD/bin:$PATH"
