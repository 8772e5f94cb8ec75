// Turns CUDA sources into host C++ for the emulator (kernels/kv/emu/cuda_runtime.h): dynamic shared
// memory becomes the launch's buffer, __shared__ variables plain statics (the blocks of a launch run one
// at a time), and kernel<<<grid, block, smem, stream>>>(args) an emu::Launcher call.
// Usage: node kernels/emu/convert.mjs OUT_DIR [--prefix 'LINE'] SRC.cu|SRC.cuh ...
// (each SRC.cu becomes OUT_DIR/SRC.cpp, a header keeps its name; --prefix puts LINE first in each .cpp).
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { basename, join } from "node:path";

const args = process.argv.slice(2);
const out = args.shift();
let prefix = "";
if (args[0] === "--prefix") {
  args.shift();
  prefix = args.shift() + "\n";
}
if (!out || args.length === 0) {
  console.error("usage: node kernels/emu/convert.mjs OUT_DIR [--prefix LINE] SRC ...");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const src of args) {
  let s = readFileSync(src, "utf8");
  s = s.replace(/extern __shared__ (?:__align__\(\d+\) )?([\w ]+?) (\w+)\[\];/g,
                (_, type, name) => `${type}* ${name} = reinterpret_cast<${type}*>(emu::dyn_smem);`);
  s = s.replaceAll("__shared__", "static");
  s = s.replace(/([\w:]+(?:<[^<>]*>)?)<<<([\s\S]*?)>>>\(/g, (_, kernel, cfg) => `emu::Launcher(${cfg}).run(${kernel}, `);
  const name = basename(src);
  const isCu = name.endsWith(".cu");
  writeFileSync(join(out, isCu ? name.slice(0, -3) + ".cpp" : name), (isCu ? prefix : "") + s);
}
