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
#   starkv devices, and starkv bench --device cuda on UI-TARS-1.5-7B's full shape (16 GB of bf16 weights),
#   the 7B once more with --profile (device time per op kind), starkv episode on that checkpoint (three
#   STaR-KV compressed turns on 1080p screens), and the Qwen2-VL-2B shape (a quarter, as BENCHMARKS.md's
#   CPU runs);
# then, while time is left, compute-sanitizer over the two op tables: memcheck (out-of-bounds and
# misaligned device accesses), racecheck (shared-memory hazards) and initcheck (reads of device memory
# never written), each a finding = a failure.
# cuBLAS is loaded at run time: the script puts the first libcublas it finds (the CUDA toolkit's, or the
# nvidia-cublas wheel beside PyTorch) on LD_LIBRARY_PATH and says which; without one our own GEMM runs.
# Time: STARKV_GPU_CHECK_BUDGET seconds in all (default 540, the device tool's call being 600 at most):
# every stage's timeout is cut to what is left, and a stage that cannot start in time is skipped, named.
# Output: the device tool brings back at most 8 files from $OUT, so the logs are kept in a work folder
# and $OUT (or ./gpu-check-out) receives, refreshed after every stage, summary.txt (what this prints),
# logs.tgz (every log) and the bench JSON reports. Usage, from the repository root:
#   STARKV_CUDA_ARCHS=90 scripts/gpu-check.sh        (sm_90 = H100/H200; 80, 86, 89 for A100, RTX 30, RTX 40)
#   STARKV_GPU_CHECK_SKIP_TESTS=1 ...                  (only the build check and the pack's bench)
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
budget=${STARKV_GPU_CHECK_BUDGET:-540}
out=${OUT:-gpu-check-out}
mkdir -p "$out"
work=$(mktemp -d /tmp/gpu-check.XXXXXX)
exec > >(tee "$work/summary.txt") 2>&1
left() { echo $((budget - ($(date +%s) - start))); }
# seconds for a stage: at most $1, at most what is left less a margin for packing the logs
cap() {
  local l
  l=$(($(left) - 15))
  [ "$l" -lt "$1" ] && echo "$l" || echo "$1"
}
sync_out() {
  tar -czf "$out/logs.tgz.part" -C "$work" . 2>/dev/null && mv "$out/logs.tgz.part" "$out/logs.tgz"
  cp "$work/summary.txt" "$out/summary.txt" 2>/dev/null
  cp "$work"/bench-*.json "$work"/bench-*.jsonl "$out/" 2>/dev/null
  return 0
}
archs=${STARKV_CUDA_ARCHS:-90}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$work/gpu.txt" 2>&1
cat "$work/gpu.txt"
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
if ! STARKV_CUDA_ARCHS=$archs cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSTARKV_WITH_DNNL=OFF \
  >"$work/configure.log" 2>&1; then
  tail -30 "$work/configure.log"
  echo "gpu-check: cmake configure failed"
  sync_out
  exit 1
fi
grep "starkv: CUDA" "$work/configure.log"
if ! cmake --build build-gpu -j"$(nproc)" >"$work/build.log" 2>&1; then
  grep -m 20 -E "error|Error" "$work/build.log"
  echo "gpu-check: build failed"
  sync_out
  exit 1
fi
echo "gpu-check: built in $(($(date +%s) - start)) s"
sync_out
passed=0
failed=0
skipped=()
# stage NAME CAP LOG CMD...: runs CMD with a timeout of at most CAP seconds (less if less is left)
stage() {
  local name=$1 limit=$2 log=$3 t0 c
  shift 3
  c=$(cap "$limit")
  if [ "$c" -lt 20 ]; then
    skipped+=("$name")
    echo "== $name: skipped, $(left) s of the budget left"
    return 2
  fi
  t0=$(date +%s)
  if timeout "$c" "$@" >"$work/$log" 2>&1; then
    passed=$((passed + 1))
    echo "== $name: ok in $(($(date +%s) - t0)) s"
    sync_out
    return 0
  fi
  failed=$((failed + 1))
  echo "== $name: FAILED in $(($(date +%s) - t0)) s (timeout $c s)"
  sync_out
  return 1
}
tests=(backend_ops_test kv_ops_test qwen2vl_golden_test episode_test episode_kv_test errors_test)
[ -n "${STARKV_GPU_CHECK_SKIP_TESTS:-}" ] && tests=(backend_ops_test)
for t in "${tests[@]}"; do
  stage "$t" 300 "$t.log" "build-gpu/$t"
  [ $? = 1 ] && grep -E "FAIL|threw|error|first difference" "$work/$t.log" | head -20  # (first difference: episode_kv_test, see kernels/README on near-ties)
  grep -E "CUDA:|device \"auto\"|checks,|full device" "$work/$t.log" 2>/dev/null | sed 's/^/   /'
done
gpu_used=0
if grep -q "cases run on" "$work/backend_ops_test.log"; then
  gpu_used=1
else  # the tests fall back to the CPU without a GPU
  echo "gpu-check: no CUDA device was used ($(grep -o "no CUDA device[^)]*" "$work/backend_ops_test.log" | head -1))"
  failed=$((failed + 1))
fi
if [ -f .gpu-pack/starkv-gpu.tar.xz ] && [ $gpu_used = 1 ]; then
  pk=/tmp/starkv-gpu-pack
  rm -rf "$pk" && mkdir -p "$pk"
  tar -xJf .gpu-pack/starkv-gpu.tar.xz -C "$pk" 2>/dev/null ||
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpu-pack/starkv-gpu.tar.xz "$pk"
  echo "== pack: $(cat $pk/starkv-gpu/VERSION)"
  if ! $pk/starkv-gpu/run devices >"$work/devices.txt" 2>&1; then
    # The addon built where the pack was made needs that image's glibc (2.34) and libstdc++ (GLIBCXX_3.4.30);
    # where it does not load, link one here from the engine built above (build-gpu's starkv_core, this image's
    # libraries) and the pack's Node-API headers.
    cat "$work/devices.txt"
    echo "== the pack's addon does not load here ($(ldd --version 2>&1 | head -1)); linking the addon on this image ..."
    nm=$pk/starkv-gpu/node_modules
    if PATH="$pk/starkv-gpu:$PATH" NODE_PATH="$nm" STARKV_CUDA_ARCHS=$archs cmake -S . -B build-gpu -DCMAKE_JS_VERSION=gpu-check \
      -DCMAKE_JS_INC="$nm/node-api-headers/include" >"$work/addon.log" 2>&1 &&
      cmake --build build-gpu --target starkv -j"$(nproc)" >>"$work/addon.log" 2>&1; then
      cp build-gpu/starkv.node $pk/starkv-gpu/starkv.node
    else
      grep -m 20 -E "error|Error" "$work/addon.log"
    fi
    $pk/starkv-gpu/run devices >"$work/devices.txt" 2>&1
  fi
  cat "$work/devices.txt"
  # UI-TARS-1.5-7B first (the model GPU users run), then the same with the op profile (device time per
  # op kind: where the prefill goes; the checkpoint is written once), then STaR-KV compressed agent turns
  # on that checkpoint (three 1080p screenshots, the bench's copy of Qwen's tokenizer), then the 2B shape.
  for run in 7b 7b-profile episode-7b 2b; do
    if [ $run = episode-7b ]; then
      stage "episode 7b (starkv, 3 x 1080p)" 200 bench-episode-7b.jsonl $pk/starkv-gpu/run episode \
        --model "${TMPDIR:-/tmp}/starkv-bench-7b-f1" --device cuda --method starkv --steps 3 --width 1920 --height 1080 \
        --max-new-tokens 16 --json
      cut -c1-400 "$work/bench-episode-7b.jsonl" 2>/dev/null  # (JSON lines, one per step; back with the benches)
      continue
    fi
    shape=${run%-profile}
    extra=(--decode-tokens 32)
    [ "$run" != "$shape" ] && extra=(--decode-tokens 8 --profile)
    stage "bench $run" 300 "bench-$run.txt" $pk/starkv-gpu/run bench --device cuda --shape $shape "${extra[@]}" \
      --out "$work/bench-$run.json"
    cat "$work/bench-$run.txt" 2>/dev/null
  done
else
  echo "== bench not run: $([ -f .gpu-pack/starkv-gpu.tar.xz ] && echo 'no CUDA device was used' || echo 'no .gpu-pack/starkv-gpu.tar.xz travelled (scripts/gpu-pack.sh makes it; carry .gpu-pack)')"
fi
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ $gpu_used = 1 ] && [ -n "$san" ]; then
  # The op tables under the sanitizer (the models' tests would take too long): a finding fails the stage.
  for tool in memcheck racecheck initcheck; do
    for t in kv_ops_test backend_ops_test; do
      stage "compute-sanitizer $tool $t" 150 "sanitizer-$tool-$t.log" "$san" --tool "$tool" --error-exitcode 9 \
        --print-limit 20 "build-gpu/$t"
      [ $? = 1 ] && grep -m 12 -E "=========|FAIL" "$work/sanitizer-$tool-$t.log"
    done
  done
elif [ $gpu_used = 1 ]; then
  echo "== compute-sanitizer not found: not run"
fi
echo "$passed passed, $failed failed${skipped:+, ${#skipped[@]} skipped for time (${skipped[*]})}; $(($(date +%s) - start)) s of $budget"
sync_out
[ "$failed" -eq 0 ]
