// The engine against Hugging Face transformers: the 15 end-to-end cases (tokens exact, last-prompt
// logits within the stated tolerance) and every intermediate of each per-prompt dump.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../../app/model/engine.ts';
import { readSafetensors, relErr, toNumbers, type LoadedTensor } from '../helpers/safetensors-read.ts';
import { GOLDEN_HF } from '../helpers/paths.ts';

interface Case {
  id: string;
  model: string;
  model_dtype: 'f32' | 'bf16';
  layout: string;
  input_ids: number[];
  images: string[];
  expected_tokens: number[];
  expected_prompt_logits_last: number[];
  tolerance: { logits_rel: number };
}
const cases: Case[] = JSON.parse(readFileSync(path.join(GOLDEN_HF, 'cases.json'), 'utf8')).cases;
const local = (p: string) => path.join(GOLDEN_HF, p.replace(/^shared\/golden\/hf-qwen2vl\//, ''));

const engines = new Map<string, Engine>();
async function engineFor(dir: string): Promise<Engine> {
  if (!engines.has(dir)) engines.set(dir, await Engine.load(dir, { threads: 2 }));
  return engines.get(dir)!;
}
afterAll(() => {
  for (const e of engines.values()) e.dispose();
});

describe('end-to-end cases (what check-generate runs)', () => {
  it('has all 15 cases and their files', () => {
    expect(cases.length).toBe(15);
    for (const c of cases) {
      expect(existsSync(local(c.model))).toBe(true);
      for (const im of c.images) expect(existsSync(local(im))).toBe(true);
    }
  });
  for (const c of cases) {
    it(c.id, async () => {
      const e = await engineFor(local(c.model));
      const r = await e.generate({ ids: c.input_ids, images: c.images.map(local), maxNewTokens: 8 });
      expect(r.tokens).toEqual(c.expected_tokens);
      const exp = c.expected_prompt_logits_last;
      expect(r.promptLogitsLast.length).toBe(exp.length);
      expect(relErr(r.promptLogitsLast, exp)).toBeLessThanOrEqual(c.tolerance.logits_rel);
    });
  }
});

// Per-prompt dumps: every stage, f32 models, within 1e-4 of the tensor's scale.
const DUMPS = [
  ['qwen2vl-tiny', 'p0_text'], ['qwen2vl-tiny', 'p1_one_image'], ['qwen2vl-tiny', 'p2_two_images'],
  ['qwen2_5vl-tiny', 'p0_text'], ['qwen2_5vl-tiny', 'p1_one_image'], ['qwen2_5vl-tiny', 'p2_two_images'],
  ['qwen2vl-tiny-tied', 'p1_one_image'],
] as const;
const IMAGES: Record<string, string[]> = { p0_text: [], p1_one_image: ['img_A_112x84.png'], p2_two_images: ['img_A_112x84.png', 'img_B_196x140.png'] };

function compare(name: string, got: Float32Array | undefined, want: LoadedTensor, tol = 1e-4) {
  expect(got, `trace lacks ${name}`).toBeDefined();
  const w = want.data as Float32Array;
  expect(got!.length, `${name} length`).toBe(w.length);
  const e = relErr(got!, w);
  expect(e, `${name}: max error ${e.toExponential(2)} relative to scale`).toBeLessThanOrEqual(tol);
}

describe('every intermediate against the Hugging Face dump', () => {
  for (const [model, prompt] of DUMPS) {
    it(`${model}.${prompt}`, async () => {
      const g = readSafetensors(path.join(GOLDEN_HF, `${model}.${prompt}.safetensors`));
      const e = await engineFor(path.join(GOLDEN_HF, model));
      const ids = toNumbers(g.get('input_ids')!);
      const imgs = await e.processImages(IMAGES[prompt]!.map((f) => path.join(GOLDEN_HF, 'images', f)));
      // M-RoPE position ids: exact.
      const rope = e.ropeIndex(ids, imgs);
      expect(Array.from(rope.positions)).toEqual(toNumbers(g.get('position_ids')!));
      expect(rope.ropeDelta).toBe(toNumbers(g.get('rope_deltas')!)[0]);
      const r = await e.generate({ ids, images: imgs, maxNewTokens: 8, trace: true });
      const t = r.trace!;
      const names = [...g.keys()].filter((k) => k.startsWith('vision.') || k.startsWith('text.') || k === 'logits');
      let compared = 0;
      for (const k of names) {
        if (['vision.rot_pos_emb', 'vision.cu_seqlens', 'vision.window_index', 'vision.cu_window_seqlens_raw', 'vision.cu_window_seqlens', 'text.rope_cos', 'text.rope_sin'].includes(k)) continue;
        const key = k === `text.hidden_states.${e.config.numLayers}` ? 'text.final_hidden' : k;
        if (/^text\.hidden_states\.[1-9]/.test(k) && key === k) continue; // = the previous layer's output, compared there
        compare(k, t[key], g.get(k)!);
        compared++;
      }
      expect(compared).toBeGreaterThan(prompt === 'p0_text' ? 10 : 15);
      expect(r.tokens).toEqual(toNumbers(g.get('generate.new_tokens')!));
    });
  }
});

// The CPU's bf16 prefill path (cpuMatmul 'bf16': x rounded to bf16, fp32 accumulation, oneDNN's
// AVX512-BF16 / AMX kernels) on the bf16 checkpoints: the same tokens and logits within the same
// tolerance as the fp32 arithmetic. Where the CPU lacks the kernels, asking for it is a named error.
describe("cpuMatmul 'bf16' on the bf16 cases", () => {
  const bf16Cases = cases.filter((c) => c.model_dtype === 'bf16');
  it('has bf16 cases', () => expect(bf16Cases.length).toBeGreaterThan(0));
  for (const c of bf16Cases) {
    it(c.id, async () => {
      let e: Engine;
      try {
        e = await Engine.load(local(c.model), { threads: 2, cpuMatmul: 'bf16' });
      } catch (err) {
        expect(String(err)).toMatch(/cpuMatmul 'bf16' needs oneDNN's bf16 matmul/);
        return;
      }
      try {
        expect(e.info().gemm).toMatch(/bf16/);
        const r = await e.generate({ ids: c.input_ids, images: c.images.map(local), maxNewTokens: 8 });
        expect(r.tokens).toEqual(c.expected_tokens);
        expect(relErr(r.promptLogitsLast, c.expected_prompt_logits_last)).toBeLessThanOrEqual(c.tolerance.logits_rel);
        // The path ran: the logits differ from the fp32 arithmetic's.
        const f = await engineFor(local(c.model));
        const r32 = await f.generate({ ids: c.input_ids, images: c.images.map(local), maxNewTokens: 1 });
        expect(relErr(r.promptLogitsLast, r32.promptLogitsLast)).toBeGreaterThan(0);
      } finally {
        e.dispose();
      }
    });
  }
  it('names a bad value', async () => {
    await expect(Engine.load(local(cases[0]!.model), { cpuMatmul: 'bf17' })).rejects.toThrow("cpu matmul 'bf17' is not auto, fp32 or bf16");
  });
});
