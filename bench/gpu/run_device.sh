#!/bin/bash
# The CUDA smoke test (docs/RESULTS.md, "CUDA path"). On the dev machine: bench/gpu/prepare.sh; then on
# a machine with an NVIDIA GPU and a CUDA libtorch (here the one of a Python venv, VENV below), from the
# repository root with build-gpu/ beside it: bash bench/gpu/run_device.sh 2>&1 | tee log.txt
# Device-side driver: configure (find_package(Torch), else libtorch linked by hand), build (C++17,
# else C++20), run the smoke test. Everything goes to $OUT/log.txt.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# (the caller tees the output to $OUT/log.txt)
VENV=${VENV:-/opt/torch/.venv}
TORCH=$VENV/lib/python3.12/site-packages/torch
export PATH=$VENV/bin:/usr/local/cuda/bin:$PATH CUDA_HOME=/usr/local/cuda
SRC=$(pwd)/bench/gpu
B=/tmp/smoke-build
echo "== env"; nvidia-smi -L; c++ --version | head -1; cmake --version | head -1; nvcc --version | tail -1
ls $TORCH/share/cmake; ls $TORCH/lib | head -40
COMMON="-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_MAKE_PROGRAM=$VENV/bin/ninja"
configure() {  # $1 = C++ standard, $2 = manual (ON/OFF)
  rm -rf $B
  if [ "$2" = OFF ]; then
    cmake -S $SRC -B $B $COMMON -DSMOKE_CXX_STD=$1 -DCMAKE_PREFIX_PATH=$TORCH/share/cmake \
      -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCUDAToolkit_ROOT=/usr/local/cuda \
      -DTORCH_CUDA_ARCH_LIST=9.0 -DCMAKE_CUDA_ARCHITECTURES=90
  else
    cmake -S $SRC -B $B $COMMON -DSMOKE_CXX_STD=$1 -DSMOKE_MANUAL_TORCH=ON -DTORCH_DIR=$TORCH
  fi
}
build() { ninja -C $B -j16 -k 0 > $B/ninja.log 2>&1; grep -v '^\[' $B/ninja.log | head -150; [ -x $B/cuda_smoke ]; }
MODE=OFF
echo "== configure (find_package(Torch), C++17)"
if ! configure 17 OFF; then
  echo "== find_package(Torch) FAILED: configure with libtorch linked by hand"; MODE=ON
  configure 17 ON || { echo "CONFIGURE FAILED"; exit 2; }
fi
T0=$(date +%s)
echo "== build C++17 (manual torch: $MODE)"
if ! build; then
  echo "== C++17 BUILD FAILED: retry with C++20"
  configure 20 $MODE && build || { echo "BUILD FAILED"; exit 3; }
fi
echo "== built in $(( $(date +%s) - T0 )) s"
echo "== link order (NEEDED) and std::filesystem symbols exported by libtorch_cpu.so"
readelf -d $B/cuda_smoke | grep NEEDED
nm -D --defined-only $TORCH/lib/libtorch_cpu.so | grep -c '_ZNSt10filesystem' 
nm -D --defined-only $TORCH/lib/libtorch_cpu.so | grep 'remove_all' | head -4
echo "== run"
timeout 300 $B/cuda_smoke; rc=$?
echo "== cuda_smoke exit $rc"
nvidia-smi --query-gpu=name,memory.used --format=csv
exit $rc
