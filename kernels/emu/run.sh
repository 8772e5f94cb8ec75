#!/usr/bin/env bash
# Logic checks of the CUDA backend on a machine without a GPU: kernels/*.cu and kernels/kv/*.cu (the
# kernels and CudaBackend) turned into host C++ (convert.mjs) and compiled against the host emulation of
# CUDA blocks/threads of kernels/kv/emu/cuda_runtime.h plus the shims here (shim/: runtime calls,
# bf16/f16 types, a per-thread wmma), then run:
#   emu_check         each launcher against the CPU backend;
#   backend_ops_test  the op table with the emulated CudaBackend as its "CUDA" columns: "cuda" with the
#                     emulated cuBLAS (shim/cublas_emu.h: libcublas.so.12 as documented, behind the
#                     backend's dlopen), "cuda-own-gemm" with our wmma GEMM, emulated;
#   kv_ops_test       the KV-compression kernels' table against the CPU path;
#   (--models) qwen2vl_golden_test, episode_test, episode_kv_test (compressed episodes, every method,
#      against the CPU) and errors_test (bad inputs, and a full device: the emulated one gets 64 MiB,
#      STARKV_EMU_DEVICE_BYTES): the tiny models loaded with device "auto", i.e. on the emulated
#      CudaBackend, against their goldens.
# STARKV_EMU_ORDER (parallel | forward | reverse | random[:SEED], see cuda_runtime.h) passes through;
# --race runs each test in forward and then in reverse order, each launch traced (STARKV_EMU_TRACE), and
# fails where any launch changed different bytes in the two orders (a missing barrier), naming the kernel.
# Not a GPU run: device memory is host memory here, so it cannot catch every host read of a device
# buffer, and it says nothing about the memory model, occupancy, register limits, device math or speed.
# Usage, from the repository root after `npm run build:native` (needs build/libstarkv_core.a, g++, node):
#   kernels/emu/run.sh [--race] [TEST ...]        (default: emu_check backend_ops_test kv_ops_test)
#   kernels/emu/run.sh [--race] --models [TEST ...]  (named model tests run alone; none named: the op
#                                                    checks and all four model tests, slow)
#   kernels/emu/run.sh --ci   what ctest runs: --race over the op checks and the compressed episodes of
#                             qwen2_5vl-tiny (every method), then qwen2vl_golden_test, episode_test and
#                             errors_test once in forward order; about 5 minutes on 2 cores. The model
#                             tests' matmuls go through the emulated cuBLAS (as on a GPU where it loads),
#                             episode_test's through our wmma GEMM (STARKV_EMU_CUBLAS=0)
# e.g. STARKV_KV_TEST_METHODS=starkv,guikv STARKV_KV_TEST_MODELS=qwen2_5vl-tiny kernels/emu/run.sh --models episode_kv_test
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
op_tests=(emu_check backend_ops_test kv_ops_test)
model_tests=(qwen2vl_golden_test episode_test episode_kv_test errors_test)
race=0
race_only=()  # with --race: the tests to race-check (empty: all)
tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --race) race=1 ;;
    --ci)  # race-checked: the op tables and one model's compressed episodes; the other model tests once
      race=1
      race_only=("${op_tests[@]}" episode_kv_test)
      tests=("${op_tests[@]}" "${model_tests[@]}")
      export STARKV_KV_TEST_MODELS=${STARKV_KV_TEST_MODELS:-qwen2_5vl-tiny}
      # One host thread: with several, which cached device block a layer's scratch lands in, and what an
      # earlier identical computation left there, depend on timing, and the trace (changed words only)
      # would differ between runs without any race in a kernel (seen once in CI).
      export STARKV_KV_TEST_THREADS=${STARKV_KV_TEST_THREADS:-1}
      export STARKV_EMU_ORDER=${STARKV_EMU_ORDER:-forward}  # fibers: ~10x faster than OS threads
      ;;
    --models)
      shift
      if [ $# -gt 0 ]; then tests+=("$@"); else tests+=("${op_tests[@]}" "${model_tests[@]}"); fi
      break
      ;;
    -*) echo "kernels/emu/run.sh: unknown option $1" >&2; exit 2 ;;
    *) tests+=("$1") ;;
  esac
  shift
done
[ ${#tests[@]} -eq 0 ] && tests=("${op_tests[@]}")
core=${STARKV_CORE_LIB:-$root/build/libstarkv_core.a}  # the engine's core library (ctest passes its own)
[ -f "$core" ] || { echo "kernels/emu/run.sh: $core is missing: run npm run build:native first" >&2; exit 2; }
if [ -n "${STARKV_EMU_WORK:-}" ]; then  # keep the emulated binaries there (to rerun them)
  work=$STARKV_EMU_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
node "$root/kernels/emu/convert.mjs" "$work" --prefix '#include "emu_extra.h"' \
  "$root"/kernels/{attention,pointwise,gemm,cuda_backend,cuda_backend_kv}.cu
node "$root/kernels/emu/convert.mjs" "$work/kv" "$root"/kernels/kv/*.cu "$root/kernels/kv/kv_common.cuh"
inc=(-I "$root/kernels/emu/shim" -I "$root/kernels/kv/emu" -I "$root/native" -I "$root/kernels")
kflags=(-std=c++20 -O1 -D__CUDACC__ -DSTARKV_HAVE_CUDA=1 '-DSTARKV_CUDA_ARCHS="emu"' "${inc[@]}")
cflags=(-std=c++20 -O1 -DSTARKV_HAVE_CUDA=1 -I "$root/native" -I "$root/kernels")
pids=()
for f in attention pointwise gemm cuda_backend cuda_backend_kv; do g++ "${kflags[@]}" -c "$work/$f.cpp" -o "$work/k_$f.o" & pids+=($!); done
for f in "$work"/kv/*.cpp; do
  g++ -std=c++20 -O1 -I "$root/kernels/kv/emu" -I "$root/native" -I "$root/kernels/kv" -I "$root/kernels" -c "$f" -o "$work/k_kv_$(basename "${f%.cpp}").o" &
  pids+=($!)
done
g++ "${cflags[@]}" -c "$root/native/models/qwen2vl_model.cpp" -o "$work/model.o" & pids+=($!)
for t in "${tests[@]}"; do
  if [ "$t" = emu_check ]; then src=$root/kernels/emu/emu_check.cpp; else src=$root/test/native/$t.cpp; fi
  [ -f "$src" ] || { echo "kernels/emu/run.sh: no test $t ($src)" >&2; exit 2; }
  g++ "${cflags[@]}" -c "$src" -o "$work/$t.o" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { echo "kernels/emu/run.sh: a compile failed" >&2; exit 1; }; done
libs=()
if nm "$core" 2>/dev/null | grep " U dnnl_" > /dev/null; then libs+=(-ldnnl); fi  # built with oneDNN (not grep -q: pipefail)
# The kernel of a trace line (its address relative to emu::Guard, see cuda_runtime.h), by name.
kernel_name() {
  local bin=$1 rel=$2 base
  base=$(nm -C "$bin" | awk '$3 == "emu::Guard()" { print $1; exit }')
  [ -n "$base" ] || { echo "?"; return; }
  nm -C "$bin" | awk -v a="$(printf '%016x' $((0x$base + rel)))" '$1 == a { $1 = ""; $2 = ""; print substr($0, 3); exit }' | cut -c1-110
}
status=0
for t in "${tests[@]}"; do
  g++ -o "$work/$t" "$work/$t.o" "$work"/k_*.o "$work/model.o" "$core" "${libs[@]}" -lpthread -ldl
  emu_env=()  # errors_test fills the device: give the emulated one a size (64 MiB)
  [ "$t" = errors_test ] && emu_env=(STARKV_EMU_DEVICE_BYTES=$((64 << 20)))
  # one model test end to end on our own GEMM (the others take the emulated cuBLAS, as a GPU with it would)
  [ "$t" = episode_test ] && emu_env=(STARKV_EMU_CUBLAS=${STARKV_EMU_CUBLAS:-0})
  if [ $race = 0 ] || { [ ${#race_only[@]} -gt 0 ] && [[ " ${race_only[*]} " != *" $t "* ]]; }; then
    echo "== $t (emulated CUDA${STARKV_EMU_ORDER:+, $STARKV_EMU_ORDER order})"
    (cd "$root" && env "${emu_env[@]}" "$work/$t") || status=1
    continue
  fi
  for order in forward reverse; do
    echo "== $t (emulated CUDA, $order order)"
    (cd "$root" && env "${emu_env[@]}" STARKV_EMU_ORDER=$order STARKV_EMU_TRACE="$work/$t.$order.trace" "$work/$t") || status=1
  done
  # Launch by launch, as sets (host threads may launch in another order): kernel, grid, changed bytes.
  diffs=$(diff <(cut -d' ' -f2- "$work/$t.forward.trace" | sort) <(cut -d' ' -f2- "$work/$t.reverse.trace" | sort) | grep '^[<>]' || true)
  n=$(wc -l < "$work/$t.forward.trace")
  nd=$(awk '$5 > 0' "$work/$t.forward.trace" | wc -l)  # the others wrote host buffers only (emu_check)
  if [ "$nd" = 0 ] && [ -z "$diffs" ]; then  # nothing traced to compare: only the test's own checks count
    echo "race check $t: none by trace ($n launches, all on host buffers); both orders checked by the test itself"
  elif [ -z "$diffs" ]; then
    echo "race check $t: $n launches ($nd wrote device memory), the same bytes written in forward and reverse order"
  else
    status=1
    nr=$(wc -l < "$work/$t.reverse.trace")
    [ "$nr" = "$n" ] || echo "race check $t: the reverse run made $nr launches, the forward run $n (one stopped early)"
    echo "race check $t: FAIL: launches that wrote different bytes in forward and reverse order:"
    echo "$diffs" | awk '{ print $2 }' | sort -u | while read -r rel; do
      echo "  $(kernel_name "$work/$t" "$rel") ($(echo "$diffs" | awk -v r="$rel" '$2 == r' | wc -l) trace lines)"
    done
  fi
done
exit $status
