// The agent's ModelBackend over the in-process engine, on a tiny checkpoint with Qwen's real tokenizer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../../app/model/engine.ts';
import { NativeBackend } from '../../app/model/backends/native.ts';
import { GenerationCancelled, type ModelImage } from '../../app/model/backends/types.ts';
import { processImage, smartResize } from '../../app/model/preprocess.ts';
import { telemetryFromTurn } from '../../app/host/turn-telemetry.ts';
import { TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

const dir = path.join(TMP, 'native-backend');
let backend: NativeBackend;

function screenshot(id: string, w: number, h: number): ModelImage {
  const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 37) & 255);
  const [rh, rw] = smartResize(h, w, 3136, 200704);
  return { id, png: Buffer.alloc(0), width: w, height: h, rgb, resized: { width: rw, height: rh } };
}

beforeAll(async () => {
  backend = new NativeBackend(await Engine.load(writeTinyRealVocab(path.join(dir, 'model')), { threads: 2 }));
});
afterAll(async () => {
  await backend?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('NativeBackend', () => {
  const messages = (img: ModelImage) => [
    { role: 'user' as const, content: [{ type: 'text' as const, text: 'Click the OK button.' }, { type: 'image' as const, image: img }] },
  ];
  it('declares the checkpoint image limits and runs in-process', () => {
    expect(backend.destination).toBe('in-process');
    expect(backend.imageLimits).toEqual({ minPixels: 3136, maxPixels: 200704 });
  });
  it('streams text that adds up to the reply', async () => {
    let streamed = '';
    const r = await backend.generate({ messages: messages(screenshot('s1', 200, 120)), maxTokens: 12, temperature: 0, onText: (d) => (streamed += d) });
    expect(r.text.length).toBeGreaterThan(0);
    expect(streamed).toBe(r.text);
    expect(r.usage?.completionTokens).toBeGreaterThan(0);
  });
  it('refuses an image whose planned size differs from the processor', async () => {
    const img = { ...screenshot('s2', 200, 120), resized: { width: 224, height: 112 } };
    await expect(backend.generate({ messages: messages(img), maxTokens: 4, temperature: 0 })).rejects.toThrow(/planned 224x112 but the checkpoint's processor resizes to 196x112/);
  });
  it('preprocesses a screenshot once, and never serves one id with another screenshot\'s pixels', async () => {
    const a = screenshot('step-0', 200, 120);
    const b = { ...screenshot('step-0', 200, 120), rgb: a.rgb!.map((v) => 255 - v) }; // same id and size, other pixels
    const pa = backend.processed(a);
    expect(backend.processed(a)).toBe(pa); // the same screenshot again: the cached result
    const pb = backend.processed(b);
    expect(pb).not.toBe(pa);
    expect(pb.pixels).toEqual(processImage({ width: 200, height: 120, data: b.rgb! }, backend.engine.preprocessor).pixels);
    expect(pb.pixels).not.toEqual(pa.pixels);
  });
  it('throws GenerationCancelled with the partial text when aborted', async () => {
    const ac = new AbortController();
    const p = backend.generate({ messages: messages(screenshot('s3', 200, 120)), maxTokens: 2000, temperature: 1, signal: ac.signal, onText: () => ac.abort() });
    await expect(p).rejects.toBeInstanceOf(GenerationCancelled);
  });

  it('with KV settings, keeps one compressed cache per episode and reports each turn', async () => {
    const b = new NativeBackend(backend.engine, { kv: { method: 'starkv', budget: 30 } });
    const task = { role: 'user' as const, content: 'Open the settings.' };
    const s1 = screenshot('step-1', 200, 120), s2 = screenshot('step-2', 180, 140);
    const r1 = (await b.generate({ messages: [task, { role: 'user', content: [{ type: 'image', image: s1 }] }], maxTokens: 5, temperature: 0, episode: 'e1' })) as any;
    expect(r1.kvTurn.layers.length).toBe(2);
    expect(r1.kvTurn.prefillTokens).toBe(r1.kvTurn.refLen);
    const msgs2 = [task, { role: 'user' as const, content: [{ type: 'image' as const, image: s1 }] }, { role: 'assistant' as const, content: r1.text }, { role: 'user' as const, content: [{ type: 'image' as const, image: s2 }] }];
    const r2 = (await b.generate({ messages: msgs2, maxTokens: 5, temperature: 0, episode: 'e1' })) as any;
    // only the new screenshot turn was prefilled, against the compressed cache
    expect(r2.kvTurn.prefillTokens).toBeLessThan(r2.kvTurn.refLen);
    expect(r2.kvTurn.layout.frames.length).toBe(2);
    for (const l of r2.kvTurn.layers) expect(l.kept).toBeLessThanOrEqual(l.cap + 5);
    expect(r2.kvTurn.method).toBe('starkv');
    // The telemetry the window gets: STaR-KV's MI per KV group of this turn beside its EMA, from the engine.
    const t = telemetryFromTurn(r2.kvTurn, 2, [1, 2]);
    for (const l of t.layers) {
      const st = l.starkv!;
      expect(st.miEma.length).toBe(backend.engine.config.numKvHeads);
      expect(st.miCur.length).toBe(st.miEma.length);
      expect(st.miCur.every((x) => Number.isFinite(x) && x >= 0)).toBe(true);
    }
    // the EMA of turn 2 mixes turn 1's MI in: it is not this turn's MI
    expect(t.layers.some((l) => l.starkv!.miCur.some((x, g) => Math.abs(x - l.starkv!.miEma[g]!) > 1e-9))).toBe(true);
    expect(r2.kvTurn.budgetPercent).toBe(30);
    // a new episode id starts a new cache
    const r3 = (await b.generate({ messages: [task, { role: 'user', content: [{ type: 'image', image: s2 }] }], maxTokens: 3, temperature: 0, episode: 'e2' })) as any;
    expect(r3.kvTurn.layout.frames.length).toBe(1);
  });
});
