// The golden-directory reader (zod validation with errors naming file and field) and the
// `starkv kv-replay` command on directories other than the shipped one.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import kvReplay from '../../app/cli/commands/kv-replay.ts';
import { GoldenError, readGoldenDir } from '../../app/kv/golden-reader.ts';
import { replayGolden } from '../../app/kv/replay.ts';
import { TMP } from '../helpers/paths.ts';
import { GOLDEN_KV } from './helpers.ts';

const root = path.join(TMP, `kv-replay-${process.pid}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Json = Record<string, unknown>;
const load = (name: string): Json => JSON.parse(readFileSync(path.join(GOLDEN_KV, name), 'utf8')) as Json;

/** A scratch golden directory with input set A and the given method files. */
function makeDir(name: string, files: Record<string, unknown>): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(GOLDEN_KV, 'inputs_A_L96_1frame_d16.json'), path.join(dir, 'inputs_A_L96_1frame_d16.json'));
  for (const [f, v] of Object.entries(files)) writeFileSync(path.join(dir, f), typeof v === 'string' ? v : JSON.stringify(v));
  return dir;
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await kvReplay(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('golden reader validation', () => {
  it('a missing directory or one without method files is a clear error', () => {
    expect(() => readGoldenDir(path.join(root, 'nope'))).toThrow(GoldenError);
    expect(() => readGoldenDir(makeDir('empty', {}))).toThrow(/no golden method files/);
  });
  it('names the file and the field of a schema violation', () => {
    const snap = load('snapkv.json');
    (snap.cases as Json[])[0]!.kv_cache_budget_percent = 'ten';
    expect(() => readGoldenDir(makeDir('bad-budget', { 'snapkv.json': snap }))).toThrow(/snapkv\.json: field 'cases\.0\.kv_cache_budget_percent'/);
    expect(() => readGoldenDir(makeDir('bad-json', { 'snapkv.json': '{ nope' }))).toThrow(/snapkv\.json: cannot read JSON/);
    const inp = load('inputs_A_L96_1frame_d16.json');
    (inp.layout as Json).vision_end_idx = [200];
    const d = makeDir('bad-span', { 'snapkv.json': load('snapkv.json') });
    writeFileSync(path.join(d, 'inputs_A_L96_1frame_d16.json'), JSON.stringify(inp));
    expect(() => readGoldenDir(d)).toThrow(/inputs_A_L96_1frame_d16\.json: field 'layout\.0': span \[11, 200\)/);
  });
  it('tensor shape errors name the field and index', () => {
    const inp = load('inputs_A_L96_1frame_d16.json');
    ((inp.key_states_kv_heads as number[][][])[1]![5] as number[]).pop();
    const d = makeDir('bad-shape', { 'snapkv.json': load('snapkv.json') });
    writeFileSync(path.join(d, 'inputs_A_L96_1frame_d16.json'), JSON.stringify(inp));
    const r = replayGolden(readGoldenDir(d));
    expect(r.errors[0]!.message).toMatch(/inputs_A_L96_1frame_d16\.json: field 'key_states_kv_heads\.1\.5' must have length 16/);
  });
  it('a case naming an unknown input set fails alone, with the field named', () => {
    const snap = load('snapkv.json');
    snap.cases = (snap.cases as Json[]).filter((c) => c.input_set === 'A_L96_1frame_d16');
    (snap.cases as Json[])[1]!.input_set = 'Z_missing';
    const r = replayGolden(readGoldenDir(makeDir('unknown-set', { 'snapkv.json': snap })));
    expect(r.errors.length).toBe(1);
    expect(r.errors[0]!.message).toMatch(/snapkv\.json: field 'cases\.1\.input_set': input set 'Z_missing'/);
  });
});

describe('starkv kv-replay', () => {
  it('--json on a directory with new cases (new budgets, only set A) computes them from the inputs', async () => {
    const snap = load('snapkv.json');
    const cases = (snap.cases as Json[]).filter((c) => c.input_set === 'A_L96_1frame_d16');
    cases.push({ ...cases[1]!, case_id: 'snapkv_A_b30', kv_cache_budget_percent: 30, kept_indices_per_head: undefined });
    const single = load('starkv_single_step.json');
    const sc = (single.cases as Json[]).filter((c) => c.input_set === 'A_L96_1frame_d16');
    sc.push({ case_id: 'starkv_A_b55', input_set: 'A_L96_1frame_d16', kv_cache_budget_percent: 55 });
    const dir = makeDir('new-cases', { 'snapkv.json': { ...snap, cases }, 'starkv_single_step.json': { ...single, cases: sc } });
    const { code, out } = await run([dir, '--json']);
    expect(code).toBe(0);
    const got = JSON.parse(out) as Record<string, number[] | number[][]>;
    expect(Object.keys(got).sort()).toEqual([...cases.map((c) => c.case_id as string), ...sc.map((c) => c.case_id as string)].sort());
    for (const c of cases.slice(0, -1)) expect(got[c.case_id as string]).toEqual(c.kept_indices_per_head);
    for (const c of sc.slice(0, -1)) expect(got[c.case_id as string]).toEqual(c.kept_indices);
    const b30 = got.snapkv_A_b30 as number[][];
    expect(b30.length).toBe(8);
    expect(b30.every((l) => l.length === Math.floor(96 * 0.3) - 8)).toBe(true); // cap 28 - window 8
    expect((got.starkv_A_b55 as number[]).length).toBe(Math.floor(96 * 0.55) - 8);
  });
  it('prints a readable summary comparing with the recorded sets', async () => {
    const { code, out } = await run([makeDir('summary', { 'snapkv.json': load('snapkv.json') }), '--only', 'snapkv']);
    expect(code).toBe(1); // B, C, D input sets are absent in this directory
    expect(out).toMatch(/snapkv\s+3 kept sets, 3\/3 identical to the recorded sets/);
  });
  it('usage errors exit 2', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run([GOLDEN_KV, '--only', 'nope'])).code).toBe(2);
    expect((await run([GOLDEN_KV, '--bogus'])).code).toBe(2);
    expect((await run(['--help'])).code).toBe(0);
  });
  it('a broken directory exits 1 with the reason', async () => {
    const r = await run([path.join(root, 'does-not-exist'), '--json']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not a directory/);
  });
});
