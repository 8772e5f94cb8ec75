// `starkv bench` runs end to end and reports every figure beside the limits measured in the same run
// (no speed is asserted here: speed is measured by the benchmark, not by timed tests).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { GOLDEN_HF, ROOT } from '../helpers/paths.ts';

describe('starkv bench', () => {
  it('reports prefill, decode and the machine limits as JSON', () => {
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'bench', '--model', path.join(GOLDEN_HF, 'qwen2_5vl-tiny'), '--width', '224', '--height', '168', '--decode-tokens', '4', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j.limits.sgemmGflops).toBeGreaterThan(0);
    expect(j.limits.bandwidthGBs).toBeGreaterThan(0);
    expect(j.limits.engineBf16Gflops).toBeGreaterThan(0);
    expect(j.prefill.patches).toBe(192);
    expect(j.prefill.promptTokens).toBe(64 + 2 + 48);
    expect(j.prefill.ratioToGemmBound).toBeGreaterThan(0);
    expect(j.decode.tokens).toBe(4);
    expect(j.decode.ratioToBandwidthBound).toBeGreaterThan(0);
    expect(j.memory.weights.current).toBeGreaterThan(0);
  });
});
