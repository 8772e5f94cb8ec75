#!/usr/bin/env bash
# Runs kernels/emu/emu_check.cpp: our attention, pointwise, GEMV and fp32 GEMM kernels compiled as host
# C++ against the host emulation of CUDA blocks/threads of kernels/kv/emu (plus the shims here), each
# compared with the CPU backend. A logic check for machines without a GPU, not a GPU run.
# Usage, from the repository root after `npm run build:native` (needs build/libstarkv_core.a): kernels/emu/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$root" "$work" <<'PY'
import re, sys
root, work = sys.argv[1], sys.argv[2]
for name in ["attention", "pointwise", "gemm"]:
    s = open(f"{root}/kernels/{name}.cu").read()
    s = re.sub(r"extern __shared__ ([\w ]+?) (\w+)\[\];", r"\1* \2 = reinterpret_cast<\1*>(emu::dyn_smem);", s)
    s = s.replace("__shared__", "static")  # blocks run one at a time
    s = re.sub(r"([\w:]+(?:<[^<>]*>)?)<<<(.*?)>>>\(", r"emu::Launcher(\2).run(\1, ", s, flags=re.S)
    open(f"{work}/{name}.cpp", "w").write('#include "emu_extra.h"\n' + s)
PY
flags=(-std=c++20 -O1 -D__CUDACC__ -I "$root/kernels/emu/shim" -I "$root/kernels/kv/emu" -I "$root/native" -I "$root/kernels")
for f in attention pointwise gemm; do g++ "${flags[@]}" -c "$work/$f.cpp" -o "$work/$f.o" & done
g++ -std=c++20 -O1 -I "$root/native" -c "$root/kernels/emu/emu_check.cpp" -o "$work/check.o"
wait
libs=()
if grep -q "STARKV_HAVE_DNNL" "$root/build/build.ninja" 2>/dev/null; then libs+=(-ldnnl); fi
g++ -o "$work/emu_check" "$work/check.o" "$work"/attention.o "$work"/pointwise.o "$work"/gemm.o \
  "$root/build/libstarkv_core.a" "${libs[@]}" -lpthread -ldl
"$work/emu_check"
