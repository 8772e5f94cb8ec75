#!/usr/bin/env bash
# The KV-compression kernels' op table (test/native/kv_ops_test) with kernels/kv/*.cu compiled as host C++
# against the emulation header here (cuda_runtime.h): a logic check for machines without a GPU, not a GPU
# run. Now one of the checks of kernels/emu/run.sh, which this runs (options pass through, e.g. --race).
# Usage, from the repository root after `npm run build:native`:  kernels/kv/emu/run.sh [--race]
exec "$(cd "$(dirname "$0")/../../.." && pwd)/kernels/emu/run.sh" "$@" kv_ops_test
