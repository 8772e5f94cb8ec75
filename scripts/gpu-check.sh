#!/usr/bin/env bash
# The CUDA checks in one run, for a machine with an NVIDIA GPU, nvcc, cmake and ninja but no Node.js
# (what a GPU session gets): builds the engine and its C++ tests with plain CMake (no addon) for one
# architecture, then runs the tests that compare the CUDA backend with the CPU one:
#   backend_ops_test   every backend op, incl. the KV hooks (CUDA vs CPU, cuBLAS and our own GEMM)
#   kv_ops_test        the KV-compression kernels of kernels/kv (CUDA vs CPU)
#   qwen2vl_golden_test, episode_test, episode_kv_test, errors_test
#                      the tiny models on device "auto" (the GPU) against HF's goldens, compressed
#                      episodes of every method against the CPU (same kept slots, same tokens), and bad
#                      inputs plus a full GPU (the test fills it: load and prefill must fail with "out of
#                      memory" naming what did not fit, and the model must answer as before afterwards)
# then, when .gpu-pack/starkv-gpu.tar.xz travelled with the tree (scripts/gpu-pack.sh, run where npm is),
#   starkv devices, and starkv bench --device cuda on the Qwen2-VL-2B shape (a quarter, as BENCHMARKS.md's
#   CPU runs) and on UI-TARS-1.5-7B's full shape (16 GB of bf16 weights), the 7B once more with --profile
#   (device time per op kind), JSON reports in $OUT.
# cuBLAS is loaded at run time: the script puts the first libcublas it finds (the CUDA toolkit's, or the
# nvidia-cublas wheel beside PyTorch) on LD_LIBRARY_PATH and says which; without one our own GEMM runs.
# Logs go to $OUT (or ./gpu-check-out); the last lines say what passed. Usage, from the repository root:
#   STARKV_CUDA_ARCHS=90 scripts/gpu-check.sh        (sm_90 = H100/H200; 80, 86, 89 for A100, RTX 30, RTX 40)
#   STARKV_GPU_CHECK_SKIP_TESTS=1 ...                  (only the build check and the pack's bench)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check-out}
mkdir -p "$out"
archs=${STARKV_CUDA_ARCHS:-90}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
# (CUDA 12 wheels: nvidia/cublas/lib; CUDA 13 wheels: nvidia/cu13/lib; a toolkit: lib64 or targets/.../lib)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  $(ls -d /usr/local/cuda-*/lib64 /usr/local/cuda-*/targets/x86_64-linux/lib 2>/dev/null) \
  $(python3 -c 'import nvidia, glob, os; [print(os.path.dirname(f)) for p in nvidia.__path__ for f in sorted(glob.glob(os.path.join(p, "**", "libcublas.so*"), recursive=True))]' 2>/dev/null | uniq); do
  if ls "$d"/libcublas.so* >/dev/null 2>&1; then
    export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "cuBLAS: $(ls "$d"/libcublas.so* | head -1)"
    break
  fi
done
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
tests=(backend_ops_test kv_ops_test qwen2vl_golden_test episode_test episode_kv_test errors_test)
[ -n "${STARKV_GPU_CHECK_SKIP_TESTS:-}" ] && tests=(backend_ops_test)
for t in "${tests[@]}"; do
  t0=$(date +%s)
  if timeout 300 "build-gpu/$t" >"$out/$t.log" 2>&1; then
    passed=$((passed + 1))
    status=ok
  else
    failed=$((failed + 1))
    status=FAILED
    grep -E "FAIL|threw|error" "$out/$t.log" | head -20
  fi
  echo "== $t: $status in $(($(date +%s) - t0)) s; $(grep -E "CUDA:|device \"auto\"|checks,|full device" "$out/$t.log" | tr '\n' ' ')"
done
if ! grep -q "cases run on" "$out/backend_ops_test.log"; then  # the tests fall back to the CPU without a GPU
  echo "gpu-check: no CUDA device was used ($(grep -o "no CUDA device[^)]*" "$out/backend_ops_test.log" | head -1))"
  failed=$((failed + 1))
fi
if [ -f .gpu-pack/starkv-gpu.tar.xz ] && grep -q "cases run on" "$out/backend_ops_test.log"; then
  pk=/tmp/starkv-gpu-pack
  rm -rf "$pk" && mkdir -p "$pk"
  tar -xJf .gpu-pack/starkv-gpu.tar.xz -C "$pk" 2>/dev/null ||
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpu-pack/starkv-gpu.tar.xz "$pk"
  echo "== pack: $(cat $pk/starkv-gpu/VERSION)"
  $pk/starkv-gpu/run devices 2>&1 | tee "$out/devices.txt"
  # UI-TARS-1.5-7B first (the model GPU users run), then the same with the op profile (device time per
  # op kind: where the prefill goes; the checkpoint is written once), then the 2B shape.
  for run in 7b 7b-profile 2b; do
    shape=${run%-profile}
    extra=(--decode-tokens 32)
    [ "$run" != "$shape" ] && extra=(--decode-tokens 8 --profile)
    t0=$(date +%s)
    if timeout 300 $pk/starkv-gpu/run bench --device cuda --shape $shape "${extra[@]}" --out "$out/bench-$run.json" >"$out/bench-$run.txt" 2>&1; then
      passed=$((passed + 1))
      echo "== bench $run: ok in $(($(date +%s) - t0)) s"
    else
      failed=$((failed + 1))
      echo "== bench $run: FAILED in $(($(date +%s) - t0)) s"
    fi
    cat "$out/bench-$run.txt"
  done
else
  echo "== bench not run: $([ -f .gpu-pack/starkv-gpu.tar.xz ] && echo 'no CUDA device was used' || echo 'no .gpu-pack/starkv-gpu.tar.xz travelled (scripts/gpu-pack.sh makes it; carry .gpu-pack)')"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
