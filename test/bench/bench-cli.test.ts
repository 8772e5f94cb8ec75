// `starkv bench` runs end to end and reports every figure beside the limits measured in the same run
// (no speed is asserted here: speed is measured by the benchmark, not by timed tests).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { GOLDEN_HF, ROOT } from '../helpers/paths.ts';
import { startXvfb } from '../agent/helpers/xvfb.ts';

describe('starkv bench', () => {
  it('reports prefill, decode and the machine limits as JSON', () => {
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'bench', '--model', path.join(GOLDEN_HF, 'qwen2_5vl-tiny'), '--width', '224', '--height', '168', '--decode-tokens', '4', '--profile', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j.limits.sgemmGflops).toBeGreaterThan(0);
    expect(j.limits.bandwidthGBs).toBeGreaterThan(0);
    expect(j.limits.engineBf16Gflops).toBeGreaterThan(0);
    // The engine's attention on a vision block, fp32 always, bf16 exactly where the bf16 matmul is fast.
    expect(j.limits.engineAttnGflops).toBeGreaterThan(0);
    expect(j.limits.engineAttnBf16Gflops > 0).toBe(j.limits.bf16GemmGflops > 0);
    // The bf16 peak is the better of oneDNN's own threads and the engine's cut of the product.
    expect(j.limits.bf16GemmGflops).toBe(Math.max(j.limits.bf16TeamGflops, j.limits.bf16SplitGflops));
    expect(j.limits.bf16SplitGflops > 0).toBe(j.limits.bf16GemmGflops > 0);
    expect(j.prefill.attentionRatioToPeak).toBeCloseTo(j.limits.engineAttnGflops / j.limits.sgemmGflops, 9);
    // The GEMM peak is the best of our GEMM library and OpenBLAS (installed by .ci/run), told its core type.
    expect(j.limits.openblasGflops, j.limits.openblasNote).toBeGreaterThan(0);
    expect(j.limits.openblasCore).not.toMatch(/prescott/i);
    expect(j.limits.sgemmGflops).toBe(Math.max(j.limits.ownSgemmGflops, j.limits.openblasGflops));
    expect(j.prefill.patches).toBe(192);
    expect(j.prefill.promptTokens).toBe(64 + 2 + 48);
    expect(j.prefill.ratioToGemmBound).toBeGreaterThan(0);
    expect(j.decode.tokens).toBe(4);
    expect(j.decode.ratioToBandwidthBound).toBeGreaterThan(0);
    expect(j.memory.weights.current).toBeGreaterThan(0);
    // --profile: every backend op of the generate counted once under its kind. The tiny Qwen2.5-VL has 4
    // vision blocks and 2 text layers: 6 prefill attentions; 4 tokens = the prefill's and 3 decode steps
    // (3 x 2 decode attentions); one sample per token.
    const calls = Object.fromEntries(j.profile.ops.map((o: { op: string; calls: number }) => [o.op, o.calls]));
    expect(calls['attention prefill']).toBe(4 + 2);
    expect(calls['attention decode (< 16 rows)']).toBe(3 * 2);
    expect(calls.sample).toBe(4);
    expect(calls['matmul']).toBeGreaterThan(0);
    expect(calls['matmul decode (M <= 4)']).toBeGreaterThan(0);
    expect(calls['rms_norm']).toBeGreaterThan(0);
    for (const o of j.profile.ops) expect(o.ms, o.op).toBeGreaterThanOrEqual(0);
    expect(j.profile.opsMs).toBeCloseTo(j.profile.ops.reduce((a: number, o: { ms: number }) => a + o.ms, 0), 6);
  });


  it('measures screen capture on a real X server, and says clearly when there is none', async () => {
    const x = await startXvfb(1280, 800);
    try {
      const r = spawnSync(process.execPath, ['bin/starkv.js', 'bench', '--capture', '--display', x.display, '--runs', '5', '--json'], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect([j.width, j.height, j.runs]).toEqual([1280, 800, 5]);
      expect(j.p50).toBeGreaterThan(0);
      expect(j.blank).toMatch(/black/); // an empty X root window is black, and the bench says so
    } finally {
      await x.stop();
    }
    const bad = spawnSync(process.execPath, ['bin/starkv.js', 'bench', '--capture', '--display', ':987'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/cannot connect to the X server of display :987/);
  });
});
