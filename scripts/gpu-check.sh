#!/usr/bin/env bash
# The CUDA checks in one run, for a machine with an NVIDIA GPU, nvcc, cmake and ninja but no Node.js
# (what a GPU session gets): builds the engine and its C++ tests with plain CMake (no addon) for one
# architecture, then runs the tests that compare the CUDA backend with the CPU one:
#   backend_ops_test   every backend op, incl. the KV hooks (CUDA vs CPU, cuBLAS and our own GEMM)
#   kv_ops_test        the KV-compression kernels of kernels/kv (CUDA vs CPU)
#   qwen2vl_golden_test, episode_test, episode_kv_test
#                      the tiny models on device "auto" (the GPU) against HF's goldens, and compressed
#                      episodes of every method against the CPU (same kept slots, same tokens)
# Logs go to $OUT (or ./gpu-check-out); the last lines say what passed. Usage, from the repository root:
#   STARKV_CUDA_ARCHS=90 scripts/gpu-check.sh        (sm_90 = H100/H200; 80, 86, 89 for A100, RTX 30, RTX 40)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check-out}
mkdir -p "$out"
archs=${STARKV_CUDA_ARCHS:-90}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
start=$(date +%s)
if ! STARKV_CUDA_ARCHS=$archs cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSTARKV_WITH_DNNL=OFF \
  >"$out/configure.log" 2>&1; then
  tail -30 "$out/configure.log"
  echo "gpu-check: cmake configure failed"
  exit 1
fi
grep "starkv: CUDA" "$out/configure.log"
if ! cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1; then
  grep -m 20 -E "error|Error" "$out/build.log"
  echo "gpu-check: build failed"
  exit 1
fi
echo "gpu-check: built in $(($(date +%s) - start)) s"
passed=0
failed=0
for t in backend_ops_test kv_ops_test qwen2vl_golden_test episode_test episode_kv_test; do
  t0=$(date +%s)
  if timeout 300 "build-gpu/$t" >"$out/$t.log" 2>&1; then
    passed=$((passed + 1))
    status=ok
  else
    failed=$((failed + 1))
    status=FAILED
    grep -E "FAIL|threw|error" "$out/$t.log" | head -20
  fi
  echo "== $t: $status in $(($(date +%s) - t0)) s; $(grep -E "CUDA:|device \"auto\"|checks," "$out/$t.log" | tr '\n' ' ')"
done
if ! grep -q "cases run on" "$out/backend_ops_test.log"; then  # the tests fall back to the CPU without a GPU
  echo "gpu-check: no CUDA device was used ($(grep -o "no CUDA device[^)]*" "$out/backend_ops_test.log" | head -1))"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
