// Turns CUDA sources into host C++ for the emulator (kernels/kv/emu/cuda_runtime.h): dynamic shared
// memory becomes the launch's buffer, __shared__ variables plain statics (the blocks of a launch run one
// at a time) registered with the emulator, and kernel<<<grid, block, smem, stream>>>(args) an
// emu::Launcher call.
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
  // Static shared declarations: plain statics, each registered with the emulator (on its first run), which
  // fills them with 0xFF bytes at the start of every block as it does the dynamic shared memory: on a GPU
  // shared memory holds garbage when a block starts, so a read before the block's own write fails here too.
  s = s.replace(/(?<!extern )__shared__ ((?:__align__\(\d+\) )?)([^;]+);/g, (all, align, body) => {
    const m = body.match(/^((?:[\w:]+\s+)+?)(\w+\s*(?:\[[^\]]*\])*(?:\s*,\s*\w+\s*(?:\[[^\]]*\])*)*)$/);
    if (!m) throw new Error(`${src}: cannot parse the shared declaration '${all}'`);
    const names = m[2].split(",").map((d) => d.trim().match(/^\w+/)[0]);
    return `static ${align}${m[1]}${m[2]};` +
      names.map((n) => ` static const bool emu_shared_${n} [[maybe_unused]] = emu::Shared(&${n}, sizeof(${n}));`).join("");
  });
  s = s.replaceAll("__shared__", "static");
  s = s.replace(/([\w:]+(?:<[^<>]*>)?)<<<([\s\S]*?)>>>\(/g, (_, kernel, cfg) => `emu::Launcher(${cfg}).run(${kernel}, `);
  // Run-time loading goes through the emulator (shim/cublas_emu.h: an emulated libcublas.so.12).
  s = s.replace(/\bdl(open|sym|close|error)\(/g, (_, f) => `emu::Dl${f}(`);
  const name = basename(src);
  const isCu = name.endsWith(".cu");
  writeFileSync(join(out, isCu ? name.slice(0, -3) + ".cpp" : name), (isCu ? prefix : "") + s);
}
