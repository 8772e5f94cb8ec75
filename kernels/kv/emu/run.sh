#!/usr/bin/env bash
# Runs test/native/kv_ops_test's CUDA cases with the kernels/kv/*.cu sources compiled as host C++ against
# the emulation header here (see cuda_runtime.h). A logic check for machines without a GPU, not a GPU run.
# Usage, from the repository root after `npm run build:native` (needs build/libstarkv_core.a):
#   kernels/kv/emu/run.sh            (about 4 minutes on 2 cores; prints the op table)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
if [ -n "${STARKV_EMU_WORK:-}" ]; then  # keep the emulated binary there (to rerun it, e.g. under STARKV_EMU_ORDER)
  work=$STARKV_EMU_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
python3 - "$root" "$work" <<'PY'
import glob, os, re, sys
root, work = sys.argv[1], sys.argv[2]
for f in glob.glob(os.path.join(root, "kernels/kv/*.cu")) + [os.path.join(root, "kernels/kv/kv_common.cuh")]:
    s = open(f).read()
    s = re.sub(r"extern __shared__ ([\w ]+?) (\w+)\[\];", r"\1* \2 = reinterpret_cast<\1*>(emu::dyn_smem);", s)
    s = s.replace("__shared__", "static")  # blocks run one at a time
    s = re.sub(r"(\w+)<<<(.*?)>>>\(", r"emu::Launcher(\2).run(\1, ", s, flags=re.S)
    name = os.path.basename(f)
    open(os.path.join(work, name[:-3] + ".cpp" if name.endswith(".cu") else name), "w").write(s)
PY
libs=()
if grep -q "STARKV_HAVE_DNNL" "$root/build/build.ninja" 2>/dev/null; then libs+=(-ldnnl); fi
for f in "$work"/*.cpp; do
  g++ -std=c++20 -O1 -I "$root/kernels/kv/emu" -I "$root/native" -I "$root/kernels/kv" -c "$f" -o "${f%.cpp}.o" &
done
g++ -std=c++20 -O1 -DSTARKV_HAVE_CUDA=1 -I "$root/native" -c "$root/test/native/kv_ops_test.cpp" -o "$work/test.o.keep"
wait
g++ -o "$work/kv_ops_test_emu" "$work/test.o.keep" "$work"/*.o "$root/build/libstarkv_core.a" "${libs[@]}" -lpthread
cd "$root" && "$work/kv_ops_test_emu"
