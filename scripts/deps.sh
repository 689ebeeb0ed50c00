#!/usr/bin/env bash
# Installs everything twistar needs to build, test and benchmark, from Debian 12 packages only.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas-dev          # without OpenBLAS libtorch falls back to reference BLAS (~12x slower)
  libsentencepiece-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcpp-httplib-dev zlib1g-dev libeigen3-dev
  libxgboost-dev                        # the gradient-boosted ranker (LambdaMART)
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev python3-dev python3-pytest python3-numpy   # the Python package and its tests
  gnuplot wrk jq curl                    # bench/serve.sh: wrk drives, curl waits for /healthz, jq writes results
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
