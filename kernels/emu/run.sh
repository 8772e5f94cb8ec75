#!/usr/bin/env bash
# Logic checks of the CUDA backend on a machine without a GPU: kernels/*.cu (kernels and CudaBackend)
# compiled as host C++ against the host emulation of CUDA blocks/threads of kernels/kv/emu plus the
# shims here (shim/: runtime calls, bf16/f16 types, a per-thread wmma), then
#   1. emu_check: each launcher against the CPU backend;
# (kernels/kv/*.cu are compiled in too: the backend's KV hooks, KvWindowSums and KvCompact, call them)
#   2. test/native/backend_ops_test with the emulated CudaBackend as its "CUDA" column (cuBLAS does not
#      load here, so MatMul runs our wmma kernel, emulated);
#   3. (--models) test/native/qwen2vl_golden_test, episode_test, episode_kv_test (compressed episodes,
#      every method, against the CPU) and errors_test (bad inputs, and a full device: the emulated one
#      gets 64 MiB, STARKV_EMU_DEVICE_BYTES): the tiny models loaded with
#      device "auto", i.e. on the emulated CudaBackend, against their goldens (slow: minutes).
# Not a GPU run: device memory is host memory here, so it cannot catch host reads of device buffers,
# and it says nothing about the memory model, occupancy, shared-memory limits, device math or speed.
# Usage, from the repository root after `npm run build:native` (needs build/libstarkv_core.a):
#   kernels/emu/run.sh [--models [TEST ...]]   (named tests run alone, e.g.
#   STARKV_KV_TEST_METHODS=starkv,guikv STARKV_KV_TEST_MODELS=qwen2_5vl-tiny kernels/emu/run.sh --models episode_kv_test)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${STARKV_EMU_WORK:-}" ]; then  # keep the emulated binaries there (to rerun them)
  work=$STARKV_EMU_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
python3 - "$root" "$work" <<'PY'
import re, sys
root, work = sys.argv[1], sys.argv[2]
import glob, os
def convert(src):
    s = open(src).read()
    s = re.sub(r"extern __shared__ (?:__align__\(\d+\) )?([\w ]+?) (\w+)\[\];", r"\1* \2 = reinterpret_cast<\1*>(emu::dyn_smem);", s)
    s = s.replace("__shared__", "static")  # blocks run one at a time
    return re.sub(r"([\w:]+(?:<[^<>]*>)?)<<<(.*?)>>>\(", r"emu::Launcher(\2).run(\1, ", s, flags=re.S)
for name in ["attention", "pointwise", "gemm", "cuda_backend", "cuda_backend_kv"]:
    open(f"{work}/{name}.cpp", "w").write('#include "emu_extra.h"\n' + convert(f"{root}/kernels/{name}.cu"))
os.makedirs(f"{work}/kv", exist_ok=True)  # the KV-compression kernels the backend's KV hooks call
for f in glob.glob(f"{root}/kernels/kv/*.cu") + [f"{root}/kernels/kv/kv_common.cuh"]:
    name = os.path.basename(f)
    open(f"{work}/kv/" + (name[:-3] + ".cpp" if name.endswith(".cu") else name), "w").write(convert(f))
PY
inc=(-I "$root/kernels/emu/shim" -I "$root/kernels/kv/emu" -I "$root/native" -I "$root/kernels")
kflags=(-std=c++20 -O1 -D__CUDACC__ -DSTARKV_HAVE_CUDA=1 '-DSTARKV_CUDA_ARCHS="emu"' "${inc[@]}")
cflags=(-std=c++20 -O1 -DSTARKV_HAVE_CUDA=1 -I "$root/native" -I "$root/kernels")
for f in attention pointwise gemm cuda_backend cuda_backend_kv; do g++ "${kflags[@]}" -c "$work/$f.cpp" -o "$work/k_$f.o" & done
for f in "$work"/kv/*.cpp; do
  g++ -std=c++20 -O1 -I "$root/kernels/kv/emu" -I "$root/native" -I "$root/kernels/kv" -c "$f" -o "$work/k_kv_$(basename "${f%.cpp}").o" &
done
g++ "${cflags[@]}" -c "$root/native/models/qwen2vl_model.cpp" -o "$work/model.o" &
g++ "${cflags[@]}" -c "$root/kernels/emu/emu_check.cpp" -o "$work/emu_check.o" &
g++ "${cflags[@]}" -c "$root/test/native/backend_ops_test.cpp" -o "$work/backend_ops_test.o" &
wait
tests=(emu_check backend_ops_test)
if [[ "${1:-}" == "--models" ]]; then
  models=("${@:2}")  # named model tests run alone; none named: the op checks and all three
  if [ ${#models[@]} -gt 0 ]; then tests=(); else models=(qwen2vl_golden_test episode_test episode_kv_test errors_test); fi
  for t in "${models[@]}"; do g++ "${cflags[@]}" -c "$root/test/native/$t.cpp" -o "$work/$t.o" & done
  wait
  tests+=("${models[@]}")
fi
libs=()
if grep -q "STARKV_HAVE_DNNL" "$root/build/build.ninja" 2>/dev/null; then libs+=(-ldnnl); fi
status=0
for t in "${tests[@]}"; do
  g++ -o "$work/$t" "$work/$t.o" "$work"/k_*.o "$work/model.o" "$root/build/libstarkv_core.a" "${libs[@]}" -lpthread -ldl
  echo "== $t (emulated CUDA)"
  emu_env=()  # errors_test fills the device: give the emulated one a size (64 MiB)
  [ "$t" = errors_test ] && emu_env=(STARKV_EMU_DEVICE_BYTES=$((64 << 20)))
  (cd "$root" && env "${emu_env[@]}" "$work/$t") || status=1
done
exit $status
