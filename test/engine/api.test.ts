// The engine's TypeScript API as callers use it: streaming, cancelling, memory accounting, errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../../app/model/engine.ts';
import { tinyConfig, writeCheckpoint } from '../../app/model/checkpoint-writer.ts';
import { GOLDEN_HF, TMP } from '../helpers/paths.ts';

const dir = path.join(TMP, 'engine-api');
let engine: Engine;
const img = path.join(GOLDEN_HF, 'images', 'img_A_112x84.png');
const prompt = [10, 20, 30, 40, 501, ...Array(12).fill(500), 502, 50, 60, 70];

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  engine = await Engine.load(path.join(GOLDEN_HF, 'qwen2_5vl-tiny'), { threads: 2 });
});
afterAll(() => {
  engine?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('generate', () => {
  it('streams every token in order, the same as the result', async () => {
    const seen: number[] = [];
    const r = await engine.generate({ ids: prompt, images: [img], maxNewTokens: 12, stopTokens: [], onToken: (id) => seen.push(id) });
    expect(r.tokens.length).toBe(12);
    expect(seen).toEqual(r.tokens);
    expect(r.stopReason).toBe('length');
    expect(r.timings.generatedTokens).toBe(12);
  });
  it('profiles the backend ops of whole generations, only while the profile is on', async () => {
    await engine.opProfile(false); // whatever an earlier test left
    await engine.generate({ ids: prompt, images: [img], maxNewTokens: 3, stopTokens: [] });
    expect(await engine.opProfile(true)).toEqual([]); // off: nothing counted
    let started!: () => void;
    const firstToken = new Promise<void>((res) => (started = res));
    const running = engine.generate({ ids: prompt, images: [img], maxNewTokens: 5, stopTokens: [], onToken: () => started() });
    await firstToken; // the generate runs in the engine (images are read before it is queued)
    const prof = await engine.opProfile(false); // queued behind the running generate: covers all of it
    await running;
    const calls = Object.fromEntries(prof.map((o) => [o.op, o.calls]));
    // qwen2_5vl-tiny: 4 vision blocks and 2 text layers; 5 tokens = the prefill's and 4 decode steps.
    expect(calls['attention prefill']).toBe(4 + 2);
    expect(calls['attention decode (< 16 rows)']).toBe(4 * 2);
    expect(calls.sample).toBe(5);
    expect(prof.map((o) => o.ms)).toEqual([...prof.map((o) => o.ms)].sort((a, b) => b - a)); // most time first
    expect(await engine.opProfile(false)).toEqual([]); // taking it resets it
  });
  it('stops at a stop token', async () => {
    const first = (await engine.generate({ ids: prompt, images: [img], maxNewTokens: 4, stopTokens: [] })).tokens;
    const r = await engine.generate({ ids: prompt, images: [img], maxNewTokens: 4, stopTokens: [first[1]!] });
    expect(r.tokens).toEqual(first.slice(0, 2));
    expect(r.stopReason).toBe('stop');
  });
  it('is deterministic when sampling with a seed, and differs across seeds', async () => {
    const opts = { ids: prompt, images: [img], maxNewTokens: 16, stopTokens: [], temperature: 1.5, topP: 0.95, topK: 50 };
    const a = await engine.generate({ ...opts, seed: 1 });
    const b = await engine.generate({ ...opts, seed: 1 });
    const c = await engine.generate({ ...opts, seed: 2 });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).not.toEqual(c.tokens);
  });
  it('top-k 1 sampling equals greedy', async () => {
    const g = await engine.generate({ ids: prompt, images: [img], maxNewTokens: 8, stopTokens: [] });
    const s = await engine.generate({ ids: prompt, images: [img], maxNewTokens: 8, stopTokens: [], temperature: 1, topK: 1, seed: 5 });
    expect(s.tokens).toEqual(g.tokens);
  });
  it('cancels between two tokens and keeps the JS thread free meanwhile', async () => {
    const ac = new AbortController();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const seen: number[] = [];
    const r = await engine.generate({
      ids: [1, 2, 3],
      maxNewTokens: 4000,
      stopTokens: [],
      signal: ac.signal,
      onToken: (id) => {
        seen.push(id);
        if (seen.length === 5) ac.abort();
      },
    });
    clearInterval(timer);
    expect(r.stopReason).toBe('cancelled');
    expect(r.tokens.length).toBeGreaterThanOrEqual(5);
    expect(r.tokens.length).toBeLessThan(4000);
    expect(ticks).toBeGreaterThan(0);
  });
  it('compresses the prompt cache before decoding when asked', async () => {
    const r = await engine.generate({ ids: prompt, images: [img], maxNewTokens: 4, stopTokens: [], kv: { method: 'snapkv', budget: 50 } });
    // int(21 * 0.5) = 10 slots kept per layer right after the prefill (decoded tokens are appended later)
    expect(r.kv!.keptPerLayer).toEqual([10, 10]);
    expect(r.kv!.bytes).toBeLessThan(r.kv!.fullBytes);
    await expect(engine.generate({ ids: prompt, images: [img], maxNewTokens: 1, kv: { method: 'snapkv', budget: 0 } })).rejects.toThrow(/percent must be > 0/);
  });
  it('accounts memory by category', async () => {
    const m = engine.memory();
    expect(m.weights.current).toBeGreaterThanOrEqual(engine.checkpoint.weightBytes);
    for (const k of ['weights', 'kv', 'activations', 'workspace'] as const) {
      expect(m[k].peak).toBeGreaterThanOrEqual(m[k].current);
    }
    expect(m.activations.peak).toBeGreaterThan(0);
    expect(m.kv.peak).toBeGreaterThan(0);
  });
});

describe('bad input is a clear error, never a crash', () => {
  it('ids outside the vocabulary', async () => {
    await expect(engine.generate({ ids: [1, 99999], maxNewTokens: 1 })).rejects.toThrow(/id 99999, outside the vocabulary \[0, 512\)/);
  });
  it('image pads that do not match the images', async () => {
    await expect(engine.generate({ ids: prompt, maxNewTokens: 1 })).rejects.toThrow(/12 image pad token\(s\).*0 image\(s\) need 0/);
    await expect(engine.generate({ ids: [1, 501, 500, 500, 502], images: [img], maxNewTokens: 1 })).rejects.toThrow(/2 image pad token\(s\).*need 12/);
  });
  it('a prompt longer than the context', async () => {
    await expect(engine.generate({ ids: Array(4090).fill(7), maxNewTokens: 10 })).rejects.toThrow(/exceeds the model's context of 4096/);
  });
  it('an image that is not an image', async () => {
    await expect(engine.generate({ ids: prompt, images: [path.join(GOLDEN_HF, 'cases.json')], maxNewTokens: 1 })).rejects.toThrow(/not a readable image/);
  });
  it('the native layer rejects inconsistent inputs itself (bypassing the TS checks)', async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const native = (engine as any).native;
    const h = native.generate({ ids: Int32Array.from([1, 500, 2]), maxNewTokens: 1 });
    await expect(h.promise).rejects.toThrow(/image/i);
    const h2 = native.generate({ ids: Int32Array.from([1, 2]), pixels: new Float32Array(10), grids: Int32Array.from([1, 2, 2]), maxNewTokens: 1 });
    await expect(h2.promise).rejects.toThrow();
  });
  it('a disposed model', async () => {
    const e = await Engine.load(path.join(GOLDEN_HF, 'qwen2vl-tiny'));
    e.dispose();
    await expect(e.generate({ ids: [1, 2], maxNewTokens: 1 })).rejects.toThrow(/disposed/);
  });
});

describe('checkpoint variants give the same model', () => {
  const logitsOf = async (d: string) => {
    const e = await Engine.load(d);
    try {
      return await e.generate({ ids: prompt, images: [img], maxNewTokens: 4, stopTokens: [] });
    } finally {
      e.dispose();
    }
  };
  it('sharded or not, old or new names: identical; bf16 and f16: same tokens, close logits', async () => {
    const cfg = tinyConfig('qwen2_5_vl');
    writeCheckpoint(path.join(dir, 'one'), cfg, { seed: 9 });
    writeCheckpoint(path.join(dir, 'sharded'), cfg, { seed: 9, shards: 3, layout: 'new' });
    writeCheckpoint(path.join(dir, 'bf16'), cfg, { seed: 9, dtype: 'BF16' });
    writeCheckpoint(path.join(dir, 'f16'), cfg, { seed: 9, dtype: 'F16', shards: 2 });
    const a = await logitsOf(path.join(dir, 'one'));
    const b = await logitsOf(path.join(dir, 'sharded'));
    expect(Array.from(b.promptLogitsLast)).toEqual(Array.from(a.promptLogitsLast));
    expect(b.tokens).toEqual(a.tokens);
    for (const v of ['bf16', 'f16']) {
      const c = await logitsOf(path.join(dir, v));
      let dot = 0, na = 0, nc = 0;
      for (let i = 0; i < a.promptLogitsLast.length; i++) {
        dot += a.promptLogitsLast[i]! * c.promptLogitsLast[i]!;
        na += a.promptLogitsLast[i]! ** 2;
        nc += c.promptLogitsLast[i]! ** 2;
      }
      expect(dot / Math.sqrt(na * nc), v).toBeGreaterThan(0.99);
      expect(c.tokens[0], v).toBe(a.tokens[0]);
    }
  });
});
