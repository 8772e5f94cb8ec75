// Shared helpers of the KV tests: where the golden data is, one cached replay, float comparisons.
import path from 'node:path';
import { expect } from 'vitest';
import { readGoldenDir, type GoldenDir } from '../../app/kv/golden-reader.ts';
import { replayGolden, type ReplayReport, type ReplayResult } from '../../app/kv/replay.ts';
import { ROOT } from '../helpers/paths.ts';

export const GOLDEN_KV = path.join(ROOT, 'test', 'golden-data', 'kv');

let cached: { golden: GoldenDir; report: ReplayReport } | undefined;
/** The golden directory and its replay with float intermediates recorded (once per test file). */
export function goldenReplay(): { golden: GoldenDir; report: ReplayReport; byKey: Map<string, ReplayResult> } {
  if (!cached) {
    const golden = readGoldenDir(GOLDEN_KV);
    cached = { golden, report: replayGolden(golden, { debug: true }) };
  }
  return { ...cached, byKey: new Map(cached.report.results.map((r) => [r.key, r])) };
}

export type Nested = number | Nested[];
export const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

/** max relative error of got vs want over all elements, with an absolute floor for near-zero values. */
export function maxRelErr(got: ArrayLike<number>, want: Nested, atol = 1e-12): number {
  const w = flat(want);
  expect(got.length).toBe(w.length);
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    const e = Math.abs(got[i]! - w[i]!) / Math.max(Math.abs(w[i]!), atol);
    if (!(e <= worst)) worst = e; // NaN propagates as a failure
  }
  return worst;
}

export function expectClose(got: ArrayLike<number>, want: Nested, rtol: number, what: string, atol = 1e-12): void {
  const e = maxRelErr(got, want, atol);
  expect(e, `${what}: max relative error ${e}`).toBeLessThanOrEqual(rtol);
}

export function debugArray(r: ReplayResult, name: string): Float32Array {
  const a = r.selection.telemetry.arrays[name];
  if (!a) throw new Error(`${r.key}: no debug array '${name}' (have ${Object.keys(r.selection.telemetry.arrays).join(', ')})`);
  return a.data;
}
