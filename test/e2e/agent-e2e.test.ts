// End to end, as a user runs it: `starkv run` (the real CLI, in its own process) on an Xvfb screen whose
// size is not a multiple of 28 (1366x768 -> model sees 1372x756) with a 1.25 desktop scale (Xft.dpi 120,
// Chromium at device scale 1.25), driven by a scripted UI-TARS-1.5 model behind a local OpenAI-compatible
// server. The page's own events prove every click, type, scroll, drag and hotkey landed. Also: Ctrl+C and
// kill -9 in the middle of an episode.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planImage, toModel, type ImageGeometry } from '../../app/agent/coords.ts';
import { readEpisode } from '../../app/store/trajectory.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';
import type { ChatRequest, ScriptedReply } from '../agent/helpers/page-server.ts';
import { openScene, type Scene } from '../agent/helpers/scene.ts';

const W = 1366, H = 768, SCALE = 1.25;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const root = mkdtempSync(path.join(os.tmpdir(), 'starkv-e2e-'));
let s: Scene;
beforeAll(async () => {
  s = await openScene({ width: W, height: H, scale: SCALE });
}, 90_000);
afterAll(async () => {
  await s?.close();
  rmSync(root, { recursive: true, force: true });
});

const geometry = (): ImageGeometry => ({ origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: W, height: H }, ...planImage({ width: W, height: H }), coordSpace: 'absolute' });
const mp = (id: string, fx = 0.5, fy = 0.5) => {
  const p = toModel(s.at(id, fx, fy), geometry());
  return `<|box_start|>(${p.x},${p.y})<|box_end|>`;
};

/** Width and height of the PNG in a request's last image. */
function lastImageSize(r: ChatRequest): [number, number] {
  const parts = r.body.messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content));
  const url = parts.filter((p) => p.type === 'image_url').at(-1)!.image_url!.url;
  const png = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

function cli(args: string[]): { proc: ChildProcess; out: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const proc = spawn(process.execPath, [path.join(repo, 'bin', 'starkv.js'), 'run', ...args], {
    cwd: repo,
    env: { ...process.env, DISPLAY: s.xvfb.display },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  const out = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { proc, out };
}

function script(replies: Array<ScriptedReply | (() => ScriptedReply)>): void {
  const start = s.server.requests.length;
  s.server.script = (r) => {
    const x = replies[r.index - start] ?? { status: 500, body: '{"error":"script exhausted"}' };
    return typeof x === 'function' ? x() : x;
  };
}

const HARD = 'Grüße, 世界! $HOME & "quotes" <tag> {x|y} ~100% (ok)?';

describe('starkv run end to end', () => {
  it('clicks, types, scrolls, drags and presses keys where the model points, on a scaled screen of odd size', async () => {
    expect(s.layout.dpr).toBe(SCALE);
    expect(geometry().resized).toEqual({ width: 1372, height: 756 });
    const n0 = s.server.events.length;
    script([
      `Thought: Press Alpha.\nAction: click(start_box='${mp('alpha')}')`,
      `Thought: Double-click the orange box.\nAction: left_double(start_box='${mp('dbl')}')`,
      `Thought: Open the menu.\nAction: right_single(start_box='${mp('ctx')}')`,
      `Thought: Write in the text area.\nAction: click(start_box='${mp('text')}')\n\ntype(content='${HARD.replace(/"/g, '\\"')}\\nsecond line')`,
      `Thought: Scroll the list down.\nAction: scroll(start_box='${mp('list')}', direction='down')`,
      `Thought: And right.\nAction: scroll(start_box='${mp('list')}', direction='right')`,
      `Thought: Slide the handle.\nAction: drag(start_box='${mp('handle')}', end_box='${mp('track', 0.8)}')`,
      `Thought: Fill the field and submit.\nAction: click(start_box='${mp('field')}')\n\ntype(content='query\\n')`,
      `Thought: Save.\nAction: hotkey(key='ctrl s')`,
      `Thought: All done.\nAction: finished(content='everything landed')`,
    ]);
    const start = s.server.requests.length;
    const { out } = cli(['--task', 'Exercise the test page', '--endpoint', s.server.endpoint, '--model', 'ui-tars-1.5-7b', '--out', root, '--history', '3']);
    const r = await out;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('finished: everything landed');
    expect(r.stderr).toMatch(/display 0 \(\w+\) 1366x768\+0\+0 scale 1\.25/);
    const reqs = s.server.requests.slice(start);
    expect(reqs).toHaveLength(10);
    for (const q of reqs) expect(lastImageSize(q)).toEqual([W, H]);
    const ev = s.server.events.slice(n0);
    const first = (type: string, target?: string) => ev.find((e) => e.type === type && (target === undefined || e.target === target));
    expect(first('click', 'alpha')).toBeDefined();
    expect(first('dblclick', 'dbl')).toBeDefined();
    expect(first('contextmenu', 'ctx')).toBeDefined();
    expect(s.server.last('text')?.value).toBe(`${HARD}\nsecond line`);
    expect(ev.some((e) => e.type === 'scroll' && (e.top as number) > 0)).toBe(true);
    expect(ev.some((e) => e.type === 'scroll' && (e.left as number) > 0)).toBe(true);
    expect(Math.abs((first('dragged')!.left as number) - 300)).toBeLessThanOrEqual(3);
    expect(first('submit')?.value).toBe('query');
    expect(first('saved')).toBeDefined();
    // The model's points, mapped, landed within a CSS pixel of the element centres the page reported.
    const down = ev.find((e) => e.type === 'mousedown' && e.target === 'alpha')!;
    const c = s.layout.rects.alpha!;
    expect(Math.abs((down.x as number) - (c.x + c.w / 2))).toBeLessThanOrEqual(1);
    expect(Math.abs((down.y as number) - (c.y + c.h / 2))).toBeLessThanOrEqual(1);
    // The trajectory has every step, its screenshot, and the screen coordinates that were executed.
    const dir = path.join(root, readdirSync(root).find((d) => d.includes('exercise-the-test-page'))!);
    const ep = readEpisode(dir);
    expect(ep.records.at(-1)).toMatchObject({ kind: 'end', status: 'finished', steps: 10 });
    expect(ep.records.filter((x) => x.kind === 'executed')).toHaveLength(11);
    expect(readdirSync(dir).filter((f) => /^step-\d{4}\.png$/.test(f))).toHaveLength(10);
    expect(readdirSync(dir)).toContain('report.html');
  }, 120_000);

  it('runs the model in-process from a checkpoint folder, STaR-KV at 20 % unless told otherwise', async () => {
    // The tiny real-vocabulary checkpoint whose weights reply this whatever the screenshot (see the helper).
    const model = writeTinyRealVocab(path.join(root, 'scripted-model'), 23, "Action: finished(content='done')");
    const out = path.join(root, 'in-process');
    const r = await cli(['--task', 'Say done', '--checkpoint', model, '--out', out, '--threads', '1']).out;
    expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
    expect(r.stderr).toMatch(/model .*scripted-model \(in-process on cpu, starkv 20%\)/);
    expect(r.stdout).toMatch(/finished: done/);
    // with each reply, what the compressed cache holds: layer 0 within its cap, fewer bytes than a full cache
    const kv = /kv \(starkv 20 %\): \+(\d+) tokens prefilled in \d+ ms, compressed in \d+ ms; layer 0 keeps (\d+) of (\d+) tokens \(cap (\d+) for the (\d+)-token prompt\); ([\d.]+) MiB held vs ([\d.]+) MiB uncompressed/.exec(r.stdout);
    expect(kv, r.stdout).not.toBeNull();
    const [, , kept, len, cap, prompt, held, fullMiB] = kv!.map(Number);
    expect(kept).toBeLessThanOrEqual(cap! + 8); // the reply's tokens are appended after compression
    expect(kept).toBeLessThan(len!);
    expect(cap).toBe(Math.floor((prompt! * 20) / 100));
    expect(held).toBeLessThan(fullMiB!);
    const dir = path.join(out, readdirSync(out)[0]!);
    const kinds = readEpisode(dir).records.map((x) => x.kind);
    expect(kinds).toEqual(expect.arrayContaining(['episode', 'observation', 'reply', 'end']));
    const full = await cli(['--task', 'Say done', '--checkpoint', model, '--kv-method', 'full', '--threads', '1']).out;
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).toMatch(/\(in-process on cpu, full KV cache\)/);
    const f = /kv \(full cache\): \+(\d+) tokens prefilled .*; layer 0 keeps (\d+) of \d+ tokens;/.exec(full.stdout);
    expect(f, full.stdout).not.toBeNull();
    expect(Number(f![2])).toBeGreaterThanOrEqual(Number(f![1])); // nothing evicted
  }, 60_000);

  it('Ctrl+C (SIGINT) stops the run cleanly and records it', async () => {
    script(Array.from({ length: 50 }, () => 'Thought: Wait for it.\nAction: wait()'));
    const sub = path.join(root, 'sigint');
    const { proc, out } = cli(['--task', 'wait forever', '--endpoint', s.server.endpoint, '--model', 'm', '--out', sub, '--wait-ms', '60000']);
    const start = s.server.requests.length;
    while (s.server.requests.length === start) await new Promise((ok) => setTimeout(ok, 50));
    await new Promise((ok) => setTimeout(ok, 300));
    proc.kill('SIGINT');
    const r = await out;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stdout).toContain('stopped: interrupted (SIGINT)');
    const ep = readEpisode(path.join(sub, readdirSync(sub)[0]!));
    expect(ep.records.at(-1)).toMatchObject({ kind: 'end', status: 'stopped' });
  }, 60_000);

  it('kill -9 in the middle of an episode loses no finished step', async () => {
    let release!: () => void;
    const hold = new Promise<void>((ok) => (release = ok));
    const click = `Thought: Beta.\nAction: click(start_box='${mp('beta')}')`;
    const start = s.server.requests.length;
    s.server.script = async (r) => {
      if (r.index - start < 3) return click;
      await hold; // step 4: the model is "thinking" when the process dies
      return 'Action: finished()';
    };
    const sub = path.join(root, 'kill9');
    const { proc, out } = cli(['--task', 'die midway', '--endpoint', s.server.endpoint, '--model', 'm', '--out', sub]);
    while (s.server.requests.length - start < 4) await new Promise((ok) => setTimeout(ok, 50));
    proc.kill('SIGKILL');
    const r = await out;
    release();
    expect(r.signal).toBe('SIGKILL');
    const dir = path.join(sub, readdirSync(sub)[0]!);
    const ep = readEpisode(dir);
    const kinds = (k: string) => ep.records.filter((x) => x.kind === k);
    expect(kinds('executed').map((x) => x.step)).toEqual([1, 2, 3]);
    expect(kinds('observation').map((x) => x.step)).toEqual([1, 2, 3, 4]);
    for (const o of kinds('observation')) expect(statSync(path.join(dir, o.file as string)).size).toBeGreaterThan(1000);
    expect(kinds('end')).toEqual([]);
  }, 60_000);
});
