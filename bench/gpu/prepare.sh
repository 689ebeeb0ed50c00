#!/usr/bin/env bash
# Copies the header-only dependencies of the CUDA smoke test (nlohmann-json, fmt, spdlog, Eigen) from
# this Debian machine into build-gpu/include, for a GPU machine that lacks them (it needs only a CUDA
# libtorch, cmake, ninja and a C++17 compiler). Then carry build-gpu/ there and run bench/gpu/run_device.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build-gpu/include
cp -r /usr/include/nlohmann /usr/include/fmt /usr/include/spdlog build-gpu/include/
cp -r /usr/include/eigen3/Eigen build-gpu/include/
echo "build-gpu/include ready ($(du -sh build-gpu/include | cut -f1))"
