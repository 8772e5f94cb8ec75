import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadTrajectories, stepMatches } from '../../app/eval/trajectory.ts';
import { keptShares } from '../../app/eval/run-trajectory.ts';
import { writeTrajectoryFixture } from '../../app/eval/fixture.ts';
import { readResults } from '../../app/eval/results.ts';
import { ROOT, TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

const dir = path.join(TMP, 'eval-trajectory');
beforeAll(() => mkdirSync(dir, { recursive: true }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const screen = { width: 1000, height: 500 };

describe('step matching', () => {
  it('points: inside the recorded box (edges included), else within 14 % of the longer side', () => {
    const gt = { type: 'click' as const, x: 50, y: 50, box: [40, 40, 60, 60] };
    expect(stepMatches({ type: 'click', point: { x: 60, y: 40 } }, gt, screen)).toBe(true);
    expect(stepMatches({ type: 'click', point: { x: 61, y: 50 } }, gt, screen)).toBe(false);
    expect(stepMatches({ type: 'left_double', point: { x: 50, y: 50 } }, gt, screen)).toBe(false);
    const nobox = { type: 'click' as const, x: 500, y: 250 };
    expect(stepMatches({ type: 'click', point: { x: 640, y: 250 } }, nobox, screen)).toBe(true);
    expect(stepMatches({ type: 'click', point: { x: 641, y: 250 } }, nobox, screen)).toBe(false);
  });
  it('text, keys, direction and terminal actions', () => {
    expect(stepMatches({ type: 'type', text: 'hello \n' }, { type: 'type', text: 'hello' }, screen)).toBe(true);
    expect(stepMatches({ type: 'type', text: 'hell' }, { type: 'type', text: 'hello' }, screen)).toBe(false);
    expect(stepMatches({ type: 'hotkey', keys: 'C ctrl' }, { type: 'hotkey', keys: 'ctrl c' }, screen)).toBe(true);
    expect(stepMatches({ type: 'scroll', direction: 'up', point: null }, { type: 'scroll', direction: 'down' }, screen)).toBe(false);
    expect(stepMatches({ type: 'finished', content: 'x' }, { type: 'finished' }, screen)).toBe(true);
    expect(stepMatches(null, { type: 'wait' }, screen)).toBe(false);
  });
  it('names the file, episode and field that is wrong', () => {
    const bad = path.join(dir, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(path.join(bad, 'a.jsonl'), JSON.stringify({ id: 'x', task: 't', steps: [{ screenshot: 'nope.png', action: { type: 'click', x: 1 } }] }) + '\n');
    expect(() => loadTrajectories(bad)).toThrow(/a\.jsonl: episode 0 \(id 'x'\): field 'steps\.0\.action\.y'/);
    writeFileSync(path.join(bad, 'a.jsonl'), JSON.stringify({ id: 'x', task: 't', steps: [{ screenshot: 'nope.png', action: { type: 'wait' } }] }) + '\n');
    expect(() => loadTrajectories(bad)).toThrow(/a\.jsonl: episode 0 \(id 'x'\): screenshot 'nope\.png' not found/);
    writeFileSync(path.join(bad, 'shot.png'), '');
    const ep = JSON.stringify({ id: 'x', task: 't', steps: [{ screenshot: 'shot.png', action: { type: 'wait' } }] });
    writeFileSync(path.join(bad, 'a.jsonl'), `${ep}\n${ep}\n`);
    expect(() => loadTrajectories(bad)).toThrow(/two episodes have the id 'x'/);
  });
});

describe('where the cache went', () => {
  it('shares of current screenshot, earlier ones and text, averaged over layers', () => {
    const f = (frame: number, keptCount: number) => ({ frame, rows: 1, cols: 1, kept: new Uint8Array(1), keptCount });
    const layer = (frames: ReturnType<typeof f>[], text: number) => ({ keep: { frames, text: Array(text).fill(0) } });
    // layer 0: 6 of frame 2 (current), 2 of frames 0-1, 2 text; layer 1: 5 current, 0 earlier, 5 text
    const s = keptShares({ layers: [layer([f(0, 1), f(1, 1), f(2, 6)], 2), layer([f(0, 0), f(1, 0), f(2, 5)], 5)] } as never);
    expect(s).toEqual({ current: 0.55, history: 0.1, text: 0.35 });
    expect(keptShares({ layers: [] } as never)).toEqual({ current: 0, history: 0, text: 0 });
  });
});

describe('starkv eval trajectory end to end on a tiny checkpoint', () => {
  it('scores every step for each method, resumes without redoing steps, and reports', async () => {
    const model = writeTinyRealVocab(path.join(dir, 'model'));
    const data = path.join(dir, 'data');
    await writeTrajectoryFixture(data, 2, 3);
    expect(loadTrajectories(data).map((e) => e.steps.length)).toEqual([3, 3]);
    const out = path.join(dir, 'run');
    const args = ['bin/starkv.js', 'eval', 'trajectory', '--model', model, '--data', data, '--methods', 'starkv,full', '--budgets', '20', '--max-new-tokens', '8', '--history', '2', '--out', out, '--threads', '1'];
    const r1 = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    expect(r1.status, r1.stderr).toBe(0);
    const rows = readResults(path.join(out, 'results.jsonl'));
    expect(rows.length).toBe(12); // 2 methods x 2 episodes x 3 steps
    expect(new Set(rows.map((x) => `${x.method}|${x.id}`)).size).toBe(12);
    for (const x of rows) expect(x.kvBytes).toBeGreaterThan(0);
    const starkv = rows.filter((x) => x.method === 'starkv' && x.id.endsWith('#2'));
    for (const x of starkv) expect(x.kvBytes).toBeLessThan(x.fullKvBytes);
    // where the cache went: shares of the slots (current screenshot, earlier ones, text) that add up to 1
    for (const x of rows) {
      const s = x.keptShares as { current: number; history: number; text: number };
      expect(s.current + s.history + s.text).toBeCloseTo(1, 3);
      expect(s.current).toBeGreaterThan(0);
      if (x.id.endsWith('#0')) expect(s.history).toBe(0); // no earlier screenshot yet
      else if (x.method === 'full') expect(s.history).toBeGreaterThan(0); // the full cache keeps them all
    }
    const r2 = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    expect(r2.status, r2.stderr).toBe(0);
    expect(r2.stdout).toMatch(/^0 new results \(12 from an earlier run\)/m);
    expect(r2.stdout).toMatch(/^\| method \| budget % \| n \| accuracy \|/m); // the summary table in the terminal
    expect(r2.stdout).toMatch(/^\| starkv \| 20 \| 6 \| /m);
    const md = readFileSync(path.join(out, 'report.md'), 'utf8');
    expect(md).toContain('step accuracy against KV budget');
    expect(md).toMatch(/\| kept: current \/ history \/ text \|/);
    expect(md).toMatch(/\| starkv \| 20 \|[^\n]*\| \d+\.\d% \/ \d+\.\d% \/ \d+\.\d% \|$/m);
  });
});
