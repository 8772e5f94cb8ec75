import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { decodeImage, processImage, readPreprocessorConfig, smartResize, roundHalfEven, ImageError } from '../../app/model/preprocess.ts';
import { readSafetensors, toNumbers } from '../helpers/safetensors-read.ts';
import { GOLDEN_HF } from '../helpers/paths.ts';

describe('smart_resize', () => {
  const MAX = 12845056;
  it('rounds half to even like Python', () => {
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(roundHalfEven(0.5)).toBe(0);
    expect(roundHalfEven(1.5)).toBe(2);
  });
  it('matches the hand-checked vectors', () => {
    expect(smartResize(70, 70, 3136, MAX)).toEqual([56, 56]);
    expect(smartResize(98, 98, 3136, MAX)).toEqual([112, 112]);
    expect(smartResize(42, 42, 3136, MAX)).toEqual([56, 56]);
    expect(smartResize(1080, 1920, 3136, MAX)).toEqual([1092, 1932]);
    expect(smartResize(2160, 3840, 3136, MAX)).toEqual([2156, 3836]);
    expect(smartResize(900, 1440, 3136, MAX)).toEqual([896, 1428]);
    expect(smartResize(150, 250, 3136, 1003520)).toEqual([140, 252]);
  });
  it('scales down above max_pixels and up below min_pixels', () => {
    const [h, w] = smartResize(2160, 3840, 3136, 1003520);
    expect(h * w).toBeLessThanOrEqual(1003520);
    expect(h % 28).toBe(0);
    const [h2, w2] = smartResize(30, 30, 78400, MAX);
    expect(h2 * w2).toBeGreaterThanOrEqual(78400);
  });
  it('rejects tiny and extreme images with a reason', () => {
    expect(() => smartResize(20, 100, 3136, MAX)).toThrow(/smaller than 28/);
    expect(() => smartResize(28, 6000, 3136, MAX)).toThrow(/aspect ratio/);
  });
});

describe('pixel values equal the Hugging Face processor', () => {
  const inputs = readSafetensors(path.join(GOLDEN_HF, 'inputs.safetensors'));
  const cfg = readPreprocessorConfig(path.join(GOLDEN_HF, 'qwen2vl-tiny'));
  for (const [key, file] of [['A', 'img_A_112x84.png'], ['B', 'img_B_196x140.png'], ['C', 'img_C_250x150.png']] as const) {
    it(`image ${key} (${file})`, async () => {
      const img = await decodeImage(path.join(GOLDEN_HF, 'images', file));
      const rgb = inputs.get(`image_${key}_rgb`)!;
      expect(Array.from(img.data)).toEqual(Array.from(rgb.data as Uint8Array));
      const p = processImage(img, cfg);
      expect(p.grid).toEqual(toNumbers(inputs.get(`image_grid_thw_${key}`)!));
      const want = inputs.get(`pixel_values_${key}`)!.data as Float32Array;
      expect(p.pixels.length).toBe(want.length);
      let maxd = 0;
      for (let i = 0; i < want.length; i++) maxd = Math.max(maxd, Math.abs(p.pixels[i]! - want[i]!));
      expect(maxd).toBe(0); // bit-exact, including the Pillow bicubic resize of image C
    });
  }
  it('says clearly when a file is not an image', async () => {
    await expect(decodeImage(path.join(GOLDEN_HF, 'cases.json'))).rejects.toThrow(ImageError);
    await expect(decodeImage(path.join(GOLDEN_HF, 'cases.json'))).rejects.toThrow(/not a readable image/);
    await expect(decodeImage('/nonexistent.png')).rejects.toThrow(/file not found/);
  });
  it('refuses an image beyond the input pixel limit', async () => {
    await expect(decodeImage(path.join(GOLDEN_HF, 'images', 'img_C_250x150.png'), 10000)).rejects.toThrow(/exceeds the input limit/);
  });
});
