#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU execution tests and the GPU latency benchmark, in one go.
# The artifacts embed CUDA C that TVM compiles when they are loaded: with nvcc on the machine,
# TVM_CUDA_COMPILE_MODE=nvcc uses it; otherwise TVM needs NVRTC (pip install cuda-bindings).
# Usage: scripts/gpu_check.sh [sm_90]      (the GPU's compute capability; H100/H200: sm_90, A100: sm_80)
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-sm_90}"
if command -v nvcc >/dev/null; then export TVM_CUDA_COMPILE_MODE="${TVM_CUDA_COMPILE_MODE:-nvcc}"; fi
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader || true
pytest -q -p no:logging -m gpu tests/targets/test_cuda.py
python benchmarks/gpu_latency.py --arch "$arch" --batches 1 32 --densities 1 0.5 0.1 0.05
