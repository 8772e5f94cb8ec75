// Device selection as a user meets it on a machine without a GPU (this one, and CI): the engine says why
// it runs on the CPU, an explicit CUDA request is a clear error in the CLI and a CPU fallback with a
// warning in the app, and a malformed device string names what was wrong.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineCache, engineMemory } from '../../app/host/backends.ts';
import { Engine, parseDevice } from '../../app/model/engine.ts';
import { openCheckpoint } from '../../app/model/checkpoint.ts';
import { loadAddon } from '../../app/native.ts';
import { GOLDEN_HF, ROOT } from '../helpers/paths.ts';

const MODEL = path.join(GOLDEN_HF, 'qwen2_5vl-tiny');

describe('device selection', () => {
  it('parses auto, cpu, cuda and cuda:N, and names a bad value', () => {
    expect(['auto', 'CPU', ' cuda ', 'cuda:1'].map(parseDevice)).toEqual(['auto', 'cpu', 'cuda', 'cuda:1']);
    expect(parseDevice(undefined)).toBe('auto');
    for (const bad of ['gpu', 'cuda:', 'cuda:x', 'cpu:0', ''])
      expect(() => parseDevice(bad), bad).toThrow(`device '${bad}' is not auto, cpu, cuda or cuda:N`);
  });

  it('the addon reports what CUDA it was built with and which devices it sees', () => {
    const info = loadAddon().cudaInfo();
    expect(typeof info.compiled).toBe('boolean');
    expect(Array.isArray(info.devices)).toBe(true);
    if (info.devices.length === 0) expect(info.error).toMatch(/no CUDA device|built without CUDA/);
    // Without any NVIDIA driver the runtime says "driver version is insufficient", as for an old one: the
    // addon tells the two apart (whether libcuda.so.1 is installed, as the dynamic loader sees it).
    const libcuda = /libcuda\.so\.1\b/.test(spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '');
    if (info.compiled && info.devices.length === 0 && !libcuda) expect(info.error).toBe('no CUDA device: no NVIDIA driver found (libcuda.so.1 is not installed)');
    if (info.compiled && info.devices.length === 0 && libcuda && /insufficient/.test(info.error ?? '')) expect(info.error).toMatch(/update the NVIDIA driver/);
    if (info.compiled) expect(info.archs).toEqual(expect.arrayContaining(['80', '86', '89', '90']));
    // free memory only when asked: the query makes the runtime create a context on every GPU
    for (const d of info.devices) expect(d.freeBytes, `cuda:${d.index}`).toBeNull();
    for (const d of loadAddon().cudaInfo({ freeMemory: true }).devices) expect(d.freeBytes).toBeGreaterThan(0);
  });

  it('`starkv devices` lists the CPU and what CUDA sees', () => {
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'devices', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.cpu.threads).toBeGreaterThan(0);
    // the same as the addon's, but for free memory (which it gives, and which varies between two asks)
    const sansFree = (c: { devices: Array<Record<string, unknown>> }) => ({ ...c, devices: c.devices.map(({ freeBytes, ...d }) => d) });
    expect(sansFree(j.cuda)).toEqual(sansFree(loadAddon().cudaInfo()));
    for (const d of j.cuda.devices) expect(d.freeBytes).toBeGreaterThan(0);
    // the CPU's vector units and whether --cpu-matmul bf16 runs here, as the addon reports them
    const ci = loadAddon().cpuInfo();
    expect([j.cpu.simd, j.cpu.bf16Matmul, j.cpu.bf16Impl]).toEqual([ci.simd, ci.bf16Matmul, ci.bf16Impl]);
    const text = spawnSync(process.execPath, ['bin/starkv.js', 'devices'], { cwd: ROOT, encoding: 'utf8' }).stdout;
    expect(text).toMatch(/^cpu /m);
    expect(text).toContain(ci.bf16Matmul ? `bf16 prefill available (oneDNN ${ci.bf16Impl})` : `no bf16 prefill (${ci.bf16Impl})`);
    expect(text).toMatch(j.cuda.devices.length ? /^cuda:0 /m : /no CUDA device|built without CUDA/);
  });

  it('CPU weights mapped or resident (anonymous huge pages) give the same answer; auto maps a small checkpoint', async () => {
    const ids = [1, 2, 3, 4, 5, 6, 7, 8];
    const out: Record<string, { tokens: number[]; logits: number[]; weightBytes: number }> = {};
    for (const weights of ['auto', 'mapped', 'resident'] as const) {
      const e = await Engine.load(MODEL, { threads: 1, device: 'cpu', weights });
      try {
        expect(e.info().weights).toBe(weights === 'resident' ? 'resident' : 'mapped');
        const r = await e.generate({ ids, maxNewTokens: 4 });
        // the account counts the checkpoint's bytes as weights either way
        out[weights] = { tokens: r.tokens, logits: Array.from(r.promptLogitsLast), weightBytes: e.memory().weights.current };
      } finally {
        e.dispose();
      }
    }
    expect(out.resident).toEqual(out.mapped);
    expect(out.auto).toEqual(out.mapped);
    await expect(Engine.load(MODEL, { weights: 'ram' })).rejects.toThrow("weights 'ram' is not auto, mapped or resident");
  });

  it('the addon itself names a bad cpuMatmul or weights in the spec (callers other than Engine.load)', async () => {
    const ck = openCheckpoint(MODEL);
    const { eosTokenIds: _eos, ...config } = ck.config;
    const spec = { config, files: ck.files, tensors: ck.tensors.map((t) => ({ name: t.name, file: t.file, dtype: t.dtype, shape: t.shape, offset: t.offset, nbytes: t.nbytes })) };
    const load = (extra: object) => loadAddon().loadModel({ ...spec, ...extra });
    await expect(load({ cpuMatmul: 'bf17' })).rejects.toThrow("spec.cpuMatmul 'bf17' is not auto, fp32 or bf16");
    await expect(load({ cpuMatmul: 3 })).rejects.toThrow('spec.cpuMatmul must be a string (auto, fp32 or bf16)');
    await expect(load({ weights: 'ram' })).rejects.toThrow("spec.weights 'ram' is not auto, mapped or resident");
    const m = await load({ weights: 'resident' });
    expect(m.info().weights).toBe('resident');
    m.dispose();
  });

  it('auto runs on the CPU here and says why; cpu is plain cpu', async () => {
    const gpus = loadAddon().cudaInfo().devices.length;
    const auto = await Engine.load(MODEL, { threads: 1 });
    try {
      if (gpus === 0) {
        expect(auto.device).toBe('cpu');
        expect(auto.info().deviceNote).toMatch(/no CUDA device|built without CUDA/);
        expect(auto.memory().device).toBeUndefined();
        expect(engineMemory(auto).system.label).toContain('RSS');
      } else expect(auto.device).toBe('cuda:0');
    } finally {
      auto.dispose();
    }
    const cpu = await Engine.load(MODEL, { threads: 1, device: 'cpu' });
    expect(cpu.device).toBe('cpu');
    expect(cpu.info().deviceNote ?? '').toBe('');
    cpu.dispose();
  });

  it('without a GPU: an explicit cuda is an error in the CLI and a CPU fallback with a warning in the app', async () => {
    if (loadAddon().cudaInfo().devices.length > 0) {
      // A GPU machine: the explicit request is honoured instead.
      const e = await Engine.load(MODEL, { device: 'cuda:0' });
      expect(e.device).toBe('cuda:0');
      expect(e.memory().device?.totalBytes).toBeGreaterThan(0);
      return e.dispose();
    }
    await expect(Engine.load(MODEL, { device: 'cuda:0' })).rejects.toThrow(/no CUDA device|built without CUDA/);
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'generate', '--model', MODEL, '--input-ids', '1,2,3', '--max-new-tokens', '1', '--device', 'cuda'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no CUDA device|built without CUDA/);
    const benchGpu = spawnSync(process.execPath, ['bin/starkv.js', 'bench', '--model', MODEL, '--device', 'cuda', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(benchGpu.status).not.toBe(0);
    expect(benchGpu.stderr).toMatch(/no CUDA device|built without CUDA/);
    const bad = spawnSync(process.execPath, ['bin/starkv.js', 'generate', '--model', MODEL, '--input-ids', '1,2,3', '--device', 'gpu'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.stderr).toContain("device 'gpu' is not auto, cpu, cuda or cuda:N");
    const cache = new EngineCache();
    try {
      const { engine, warnings } = await cache.get(MODEL, 'cuda');
      expect(engine.device).toBe('cpu');
      expect(warnings.join('\n')).toMatch(/the settings ask for CUDA, but .*(no CUDA device|built without CUDA).*: the engine runs on the CPU/);
    } finally {
      cache.dispose();
    }
  });

  it("the settings' CPU matmul reaches the engine, and changing it loads the engine anew", async () => {
    const cache = new EngineCache();
    const bf16Model = path.join(GOLDEN_HF, 'qwen2_5vl-tiny-bf16');
    try {
      const a = await cache.get(bf16Model, 'cpu', 'fp32');
      expect(a.engine.info().gemm).not.toMatch(/bf16/);
      expect((await cache.get(bf16Model, 'cpu', 'fp32')).engine).toBe(a.engine);
      const b = await cache.get(bf16Model, 'cpu', 'auto');
      expect(b.engine).not.toBe(a.engine);
      // auto: bf16 where oneDNN has a native bf16 kernel on this CPU (this machine and CI have AVX512-BF16).
      const fast = /avx512bf16|amx/.test(b.engine.info().simd ?? '');
      if (fast) expect(b.engine.info().gemm).toMatch(/bf16/);
      else expect(b.engine.info().gemm).not.toMatch(/bf16/);
    } finally {
      cache.dispose();
    }
  });

  it("the settings' CPU weights reach the engine (auto maps a tiny checkpoint), and changing them loads anew", async () => {
    const cache = new EngineCache();
    try {
      const a = await cache.get(MODEL, 'cpu', 'fp32', 'auto');
      expect(a.engine.info().weights).toBe('mapped');
      expect((await cache.get(MODEL, 'cpu', 'fp32', 'auto')).engine).toBe(a.engine);
      const b = await cache.get(MODEL, 'cpu', 'fp32', 'resident');
      expect(b.engine).not.toBe(a.engine);
      expect(b.engine.info().weights).toBe('resident');
    } finally {
      cache.dispose();
    }
  });

  it('more threads than the hardware runs at once are clamped to it, with a note from the CLI', async () => {
    const hw = os.availableParallelism();
    const e = await Engine.load(MODEL, { threads: hw + 997 });
    try {
      expect(e.info().threads).toBe(hw);
    } finally {
      await e.dispose();
    }
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'generate', '--model', MODEL, '--input-ids', '1,2,3', '--max-new-tokens', '1', '--threads', String(hw + 997)], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`note: --threads ${hw + 997} is more than the ${hw} hardware threads here; using ${hw}`);
    const zero = spawnSync(process.execPath, ['bin/starkv.js', 'generate', '--model', MODEL, '--input-ids', '1,2,3', '--threads', '0'], { cwd: ROOT, encoding: 'utf8' });
    expect(zero.status).toBe(2);
    expect(zero.stderr).toContain("--threads '0' must be an integer >= 1");
  });
});
