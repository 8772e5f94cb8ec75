// Persistent episodes: exactness against one full prefill, bounded memory under compression, every
// method in persistent mode, the reference protocol, and telemetry mapped to screenshot cells.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Engine } from '../../app/model/engine.ts';
import { Episode } from '../../app/model/episode.ts';
import type { ProcessedImage } from '../../app/model/preprocess.ts';
import { GOLDEN_HF, ROOT, TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

const A = path.join(GOLDEN_HF, 'images', 'img_A_112x84.png');
const B = path.join(GOLDEN_HF, 'images', 'img_B_196x140.png');
const C = path.join(GOLDEN_HF, 'images', 'img_C_250x150.png');
const p1 = [10, 20, 30, 40, 501, ...Array(12).fill(500), 502, 50, 60, 70];
const full = { method: 'full', params: {}, percent: 100, refLen: -1, capTokens: -1 };

describe('native episode turns (golden tiny Qwen2-VL)', () => {
  let e: Engine;
  let ia: ProcessedImage, ib: ProcessedImage;
  beforeAll(async () => {
    e = await Engine.load(path.join(GOLDEN_HF, 'qwen2vl-tiny'), { threads: 2 });
    [ia, ib] = (await e.processImages([A, B])) as [ProcessedImage, ProcessedImage];
  });
  afterAll(() => e?.dispose());

  it('a second turn with an image on the persistent cache equals one full prefill', async () => {
    const ep = e.createNativeEpisode();
    const r1 = await e.runEpisodeTurn(ep, { ids: p1, images: [ia], maxNewTokens: 3, kv: full });
    const [t1, t2, t3] = r1.tokens as [number, number, number];
    const ids2 = [t3, 21, 22, 501, ...Array(35).fill(500), 502, 31];
    const r2 = await e.runEpisodeTurn(ep, { ids: ids2, images: [ib], maxNewTokens: 4, kv: full });
    const g = await e.generate({ ids: [...p1, t1, t2, ...ids2], images: [ia, ib], maxNewTokens: 4, stopTokens: [] });
    let d = 0;
    for (let i = 0; i < g.promptLogitsLast.length; i++) d = Math.max(d, Math.abs(g.promptLogitsLast[i]! - r2.promptLogitsLast[i]!));
    expect(d).toBeLessThan(1e-4);
    expect(r2.tokens).toEqual(g.tokens);
    // nothing evicted: every layer holds every fed token
    expect(r2.kv.layers.map((l) => l.slotTokens.length)).toEqual([64, 64]);
    await ep.dispose();
  });

  it('three turns with method full give the logits of one prefill of the whole conversation (1e-5)', async () => {
    const ep = e.createNativeEpisode();
    const turn2 = (t: number) => [t, 21, 22, 501, ...Array(35).fill(500), 502, 31];
    const turn3 = (t: number) => [t, 41, 501, ...Array(12).fill(500), 502, 42, 43];
    const r1 = await e.runEpisodeTurn(ep, { ids: p1, images: [ia], maxNewTokens: 2, kv: full });
    const ids2 = turn2(r1.tokens[1]!);
    const r2 = await e.runEpisodeTurn(ep, { ids: ids2, images: [ib], maxNewTokens: 3, kv: full });
    const ids3 = turn3(r2.tokens[2]!);
    const r3 = await e.runEpisodeTurn(ep, { ids: ids3, images: [ia], maxNewTokens: 3, kv: full });
    const whole = [...p1, r1.tokens[0]!, ...ids2, r2.tokens[0]!, r2.tokens[1]!, ...ids3];
    const g = await e.generate({ ids: whole, images: [ia, ib, ia], maxNewTokens: 3, stopTokens: [] });
    let d = 0, scale = 1;
    for (let i = 0; i < g.promptLogitsLast.length; i++) {
      d = Math.max(d, Math.abs(g.promptLogitsLast[i]! - r3.promptLogitsLast[i]!));
      scale = Math.max(scale, Math.abs(g.promptLogitsLast[i]!));
    }
    expect(d / scale).toBeLessThan(1e-5);
    expect(r3.tokens).toEqual(g.tokens);
    await ep.dispose();
  });

  it('budget 100 % equals the full cache bit for bit', async () => {
    const run = async (kv: typeof full) => {
      const ep = e.createNativeEpisode();
      const r1 = await e.runEpisodeTurn(ep, { ids: p1, images: [ia], maxNewTokens: 2, kv });
      const r2 = await e.runEpisodeTurn(ep, { ids: [r1.tokens[1]!, 21, 501, ...Array(35).fill(500), 502, 31], images: [ib], maxNewTokens: 4, kv });
      await ep.dispose();
      return r2;
    };
    const a = await run(full);
    for (const method of ['starkv', 'snapkv', 'guikv']) {
      const b = await run({ ...full, method, percent: 100 });
      expect(Array.from(b.promptLogitsLast), method).toEqual(Array.from(a.promptLogitsLast));
      expect(b.tokens, method).toEqual(a.tokens);
    }
  });

  it('stays within its cap over many turns while the episode grows', async () => {
    const ep = e.createNativeEpisode();
    const caps: number[] = [];
    for (let s = 0; s < 6; s++) {
      const ids = s === 0 ? p1 : [7, 21, 501, ...Array(35).fill(500), 502, 31];
      const r = await e.runEpisodeTurn(ep, { ids, images: [s === 0 ? ia : ib], maxNewTokens: 3, kv: { method: 'starkv', params: {}, percent: 30, refLen: 60, capTokens: -1 } });
      for (const l of r.kv.layers) {
        expect(l.slotTokens.length).toBe(l.cap); // exactly cap(L, b) after each compression
        expect(l.telemetry!.temperature).toBeGreaterThan(0);
        caps.push(l.slotTokens.length);
        // kept slots stay in sequence order
        expect(Array.from(l.slotTokens)).toEqual(Array.from(l.slotTokens).sort((a, b) => a - b));
      }
    }
    expect(Math.max(...caps)).toBe(18); // int(60 * 0.30)
    await ep.dispose();
  });

  it('a 100-turn episode keeps KV bytes flat at the budget and process memory flat', async () => {
    const ep = e.createNativeEpisode();
    const kvBytes: number[] = [], rss: number[] = [];
    for (let s = 0; s < 100; s++) {
      const ids = s === 0 ? p1 : [7, 21, 501, ...Array(35).fill(500), 502, 31];
      const r = await e.runEpisodeTurn(ep, { ids, images: [s === 0 ? ia : ib], maxNewTokens: 3, kv: { method: 'starkv', params: {}, percent: 20, refLen: 120, capTokens: -1 } });
      kvBytes.push(r.kv.bytes);
      rss.push(process.memoryUsage().rss);
    }
    expect(new Set(kvBytes.slice(5)).size).toBe(1); // int(120 * 0.2) = 24 slots + 2 decoded, every turn
    expect(kvBytes[99]).toBe((24 + 2) * 2 * 2 * 16 * 2 * 4);
    expect(rss[99]! - rss[20]!).toBeLessThan(32 * 1048576);
    expect(e.memory().kv.current).toBeLessThan(4 * 1048576);
    await ep.dispose();
  });

  it('runs every method in persistent mode', async () => {
    for (const method of ['full', 'snapkv', 'pyramidkv', 'h2o', 'adakv', 'vlcache', 'guikv', 'starkv']) {
      const ep = e.createNativeEpisode();
      for (let s = 0; s < 3; s++) {
        const ids = s === 0 ? p1 : [7, 21, 501, ...Array(35).fill(500), 502, 31];
        const r = await e.runEpisodeTurn(ep, { ids, images: [s === 0 ? ia : ib], maxNewTokens: 2, kv: { method, params: {}, percent: 40, refLen: 60, capTokens: -1 } });
        expect(r.tokens.length, method).toBe(2);
      }
      await ep.dispose();
    }
  });

  it('names a bad method or parameter', async () => {
    const ep = e.createNativeEpisode();
    await expect(e.runEpisodeTurn(ep, { ids: p1, images: [ia], maxNewTokens: 1, kv: { ...full, method: 'nope' } })).rejects.toThrow(/kv: .*nope/);
    await expect(e.runEpisodeTurn(ep, { ids: p1, images: [ia], maxNewTokens: 1, kv: { ...full, method: 'starkv', params: { not_a_param: 1 } } })).rejects.toThrow(/not_a_param/);
    await ep.dispose();
  });
});

describe('Episode (chat turns, real tokenizer)', () => {
  const dir = path.join(TMP, 'episode');
  let e: Engine;
  let imgs: ProcessedImage[];
  beforeAll(async () => {
    e = await Engine.load(writeTinyRealVocab(path.join(dir, 'model')), { threads: 2 });
    imgs = await e.processImages([A, B, C]);
  });
  afterAll(() => {
    e?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('persistent turns keep old frames competing by score within the budget', async () => {
    const ep = new Episode(e, { method: 'starkv', budget: 20, historyImages: 2 });
    let maxKv = 0;
    let last;
    for (let s = 0; s < 5; s++) {
      last = await ep.step({ text: s === 0 ? 'Open the settings.' : undefined, image: imgs[s % 3], maxNewTokens: 6, temperature: 0 });
      maxKv = Math.max(maxKv, last.kvBytes);
      for (const l of last.layers) expect(l.kept).toBeLessThanOrEqual(Math.max(l.cap, 0) + 6);
    }
    expect(last!.fullKvBytes).toBeGreaterThan(2 * maxKv);
    // telemetry maps kept tokens to every frame seen so far
    expect(last!.layers[0]!.keep.frames.length).toBe(5);
    expect(last!.layers[0]!.temperature).not.toBeNull();
    const kept = last!.layers[0]!.keep.frames.reduce((a, f) => a + f.keptCount, 0) + last!.layers[0]!.keep.text.length;
    expect(kept).toBe(last!.layers[0]!.kept);
    await ep.dispose();
  });

  it('the reference protocol re-prefills the last N screenshots each step', async () => {
    const ep = new Episode(e, { method: 'starkv', budget: 20, historyImages: 2, protocol: 'reference' });
    const r1 = await ep.step({ text: 'Open the settings.', image: imgs[0], maxNewTokens: 4, temperature: 0 });
    const r2 = await ep.step({ image: imgs[1], maxNewTokens: 4, temperature: 0 });
    const r3 = await ep.step({ image: imgs[2], maxNewTokens: 4, temperature: 0 });
    expect(r2.prefillTokens).toBe(r2.refLen);
    expect(r3.prefillTokens).toBe(r3.refLen);
    // the oldest screenshot left the prompt at step 3 (N = 2)
    expect(r3.layers[0]!.keep.frames.length).toBe(2);
    expect(r1.layers[0]!.cap).toBe(Math.floor((r1.refLen * 20) / 100));
    // STaR-KV's state carries over the steps, as in the papers' runs (reset per episode, not per step):
    // its MI EMA starts at the first step's MI and then mixes in each step's, and its temporal stability
    // compares the current frame with the pattern EMA of the earlier steps.
    const mi = (r: typeof r1) => r.layers.map((l) => [l.miCur, l.miGroups]);
    for (const [cur, ema] of mi(r1)) expect(ema).toEqual(cur);
    expect(mi(r3).some(([cur, ema]) => ema!.some((v, g) => Math.abs(v - cur![g]!) > 1e-6))).toBe(true);
    const fresh = new Episode(e, { method: 'starkv', budget: 20, historyImages: 2, protocol: 'reference' });
    const f1 = await fresh.step({ text: 'Open the settings.', image: imgs[0], maxNewTokens: 4, temperature: 0 });
    expect(mi(f1)).toEqual(mi(r1)); // a new episode starts from a new state
    await fresh.dispose();
    await ep.dispose();
  });

  it('reports each layer\'s own budget where the method splits it over layers (PyramidKV)', async () => {
    const ep = new Episode(e, { method: 'pyramidkv', budget: 20, historyImages: 2 });
    const r = await ep.step({ text: 'Open the settings.', image: imgs[0], maxNewTokens: 2, temperature: 0 });
    const uniform = Math.floor((r.refLen * 20) / 100);
    const caps = r.layers.map((l) => l.cap);
    // the pyramid: the first layer gets more than the uniform cap, the last less, and each holds its own cap
    expect(caps[0]!).toBeGreaterThan(uniform);
    expect(caps[caps.length - 1]!).toBeLessThan(uniform);
    for (const l of r.layers) expect(l.kept).toBe(l.cap);
    await ep.dispose();
  });

  it('with no eviction, persistent turns give the same replies as re-prefilling everything', async () => {
    const a = new Episode(e, { method: 'full', historyImages: 10 });
    const b = new Episode(e, { method: 'full', historyImages: 10, protocol: 'reference' });
    for (let s = 0; s < 3; s++) {
      const inp = { text: s === 0 ? 'Open the settings.' : undefined, image: imgs[s], maxNewTokens: 5, temperature: 0 };
      const ra = await a.step(inp);
      const rb = await b.step(inp);
      expect(ra.tokens).toEqual(rb.tokens);
    }
    await a.dispose();
    await b.dispose();
  });

  it('starkv episode prints per-step telemetry as JSON lines', () => {
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'episode', '--model', path.join(dir, 'model'), '--steps', '3', '--budget', '25', '--max-new-tokens', '4', '--image', A, '--image', B, '--json', '--threads', '1'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([0, 1, 2]);
    expect(lines[2].layers[0].keptPerFrame.length).toBe(3);
    expect(lines[2].layers[0].temperature).toBeGreaterThan(0);
    expect(lines[2].timings.prefillMs).toBeGreaterThan(0);
    const bad = spawnSync(process.execPath, ['bin/starkv.js', 'episode', '--model', path.join(dir, 'model'), '--protocol', 'sideways'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(2); // a bad command line, refused before the checkpoint loads
    expect(bad.stderr).toMatch(/--protocol '.*' must be one of persistent, reference/);
  });

  it('starkv episode --compare: with no eviction both protocols give the same replies', () => {
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'episode', '--model', path.join(dir, 'model'), '--compare', '--method', 'full', '--steps', '3', '--history', '5', '--max-new-tokens', '4', '--image', A, '--image', B, '--threads', '1'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('steps with the same greedy reply: 3/3');
    expect(r.stdout.split('\n').filter((l) => /^\| \d+ \|/.test(l)).length).toBe(3);
  });
});
