// Image preprocessing exactly as Qwen2VLImageProcessor (slow/PIL path): smart_resize, Pillow's
// antialiased bicubic on uint8, CLIP normalisation, and the flattened patch order of the ViT.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export interface PreprocessorConfig {
  minPixels: number;
  maxPixels: number;
  patchSize: number;
  mergeSize: number;
  temporalPatchSize: number;
  rescaleFactor: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

export const DEFAULT_PREPROCESSOR: PreprocessorConfig = {
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 1280,
  patchSize: 14,
  mergeSize: 2,
  temporalPatchSize: 2,
  rescaleFactor: 1 / 255,
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
};

export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

export function readPreprocessorConfig(dir: string): PreprocessorConfig {
  const file = path.join(dir, 'preprocessor_config.json');
  if (!existsSync(file)) return { ...DEFAULT_PREPROCESSOR };
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ImageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const size = (j.size ?? {}) as Record<string, number>;
  const num = (v: unknown, d: number, name: string) => {
    if (v === undefined || v === null) return d;
    if (typeof v !== 'number' || !(v > 0)) throw new ImageError(`${file}: field '${name}' must be a positive number`);
    return v;
  };
  const triple = (v: unknown, d: [number, number, number], name: string): [number, number, number] => {
    if (v === undefined) return d;
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number')) throw new ImageError(`${file}: field '${name}' must be 3 numbers`);
    return [v[0], v[1], v[2]];
  };
  const D = DEFAULT_PREPROCESSOR;
  return {
    minPixels: num(j.min_pixels ?? size.shortest_edge, D.minPixels, 'min_pixels'),
    maxPixels: num(j.max_pixels ?? size.longest_edge, D.maxPixels, 'max_pixels'),
    patchSize: num(j.patch_size, D.patchSize, 'patch_size'),
    mergeSize: num(j.merge_size, D.mergeSize, 'merge_size'),
    temporalPatchSize: num(j.temporal_patch_size, D.temporalPatchSize, 'temporal_patch_size'),
    rescaleFactor: num(j.rescale_factor, D.rescaleFactor, 'rescale_factor'),
    imageMean: triple(j.image_mean, D.imageMean, 'image_mean'),
    imageStd: triple(j.image_std, D.imageStd, 'image_std'),
  };
}

/** Python's round(): ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** smart_resize of the Qwen2-VL processor; returns [height, width], multiples of `factor`. */
export function smartResize(h: number, w: number, minPixels: number, maxPixels: number, factor = 28): [number, number] {
  if (h < factor || w < factor) throw new ImageError(`image ${w}x${h} is smaller than ${factor} pixels on a side`);
  if (Math.max(h, w) / Math.min(h, w) > 200) throw new ImageError(`image ${w}x${h}: aspect ratio above 200`);
  let hb = factor * roundHalfEven(h / factor);
  let wb = factor * roundHalfEven(w / factor);
  if (hb * wb > maxPixels) {
    const beta = Math.sqrt((h * w) / maxPixels);
    hb = factor * Math.floor(h / beta / factor);
    wb = factor * Math.floor(w / beta / factor);
  } else if (hb * wb < minPixels) {
    const beta = Math.sqrt(minPixels / (h * w));
    hb = factor * Math.ceil((h * beta) / factor);
    wb = factor * Math.ceil((w * beta) / factor);
  }
  return [hb, wb];
}

export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // RGB, row-major
}

/** Decodes PNG/JPEG/WebP/... to RGB uint8 (alpha dropped, as PIL's convert('RGB') does). */
export async function decodeImage(src: string | Buffer, maxInputPixels = 256 * 1024 * 1024): Promise<RgbImage> {
  const name = typeof src === 'string' ? src : '(image buffer)';
  if (typeof src === 'string' && !existsSync(src)) throw new ImageError(`${src}: file not found`);
  try {
    const { data, info } = await sharp(src, { limitInputPixels: maxInputPixels })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ImageError(`${name}: decoded to ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg)) throw new ImageError(`${name}: image exceeds the input limit of ${maxInputPixels} pixels`);
    throw new ImageError(`${name}: not a readable image (${msg})`);
  }
}

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow's precompute_coeffs + 8-bit normalisation (22 fractional bits), per output index. */
function coeffs(inSize: number, outSize: number) {
  const scale = inSize / outSize;
  const fs = Math.max(scale, 1);
  const support = 2 * fs;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const ss = 1 / fs;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5)) - lo;
    let ww = 0;
    for (let x = 0; x < hi; x++) {
      k[x] = bicubic((x + lo - center + 0.5) * ss);
      ww += k[x]!;
    }
    for (let x = 0; x < hi; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      kk[o * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * 4194304) : Math.trunc(0.5 + v * 4194304);
    }
    bounds[2 * o] = lo;
    bounds[2 * o + 1] = hi;
  }
  return { ksize, bounds, kk };
}

function clip8(ss: number): number {
  const v = Math.floor(ss / 4194304);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Pillow Image.resize(BICUBIC) on an RGB uint8 image: horizontal pass, then vertical, uint8 between. */
export function resizeBicubic(img: RgbImage, outW: number, outH: number): RgbImage {
  let cur = img;
  if (outW !== cur.width) {
    const { ksize, bounds, kk } = coeffs(cur.width, outW);
    const out = new Uint8Array(outW * cur.height * 3);
    for (let y = 0; y < cur.height; y++) {
      const row = y * cur.width * 3;
      for (let o = 0; o < outW; o++) {
        const lo = bounds[2 * o]!, n = bounds[2 * o + 1]!;
        let s0 = 2097152, s1 = 2097152, s2 = 2097152;
        for (let x = 0; x < n; x++) {
          const c = kk[o * ksize + x]!, p = row + (lo + x) * 3;
          s0 += cur.data[p]! * c;
          s1 += cur.data[p + 1]! * c;
          s2 += cur.data[p + 2]! * c;
        }
        const q = (y * outW + o) * 3;
        out[q] = clip8(s0);
        out[q + 1] = clip8(s1);
        out[q + 2] = clip8(s2);
      }
    }
    cur = { width: outW, height: cur.height, data: out };
  }
  if (outH !== cur.height) {
    const { ksize, bounds, kk } = coeffs(cur.height, outH);
    const W = cur.width;
    const out = new Uint8Array(W * outH * 3);
    for (let o = 0; o < outH; o++) {
      const lo = bounds[2 * o]!, n = bounds[2 * o + 1]!;
      for (let x = 0; x < W * 3; x++) {
        let s = 2097152;
        for (let y = 0; y < n; y++) s += cur.data[(lo + y) * W * 3 + x]! * kk[o * ksize + y]!;
        out[o * W * 3 + x] = clip8(s);
      }
    }
    cur = { width: W, height: outH, data: out };
  }
  return cur;
}

export interface ProcessedImage {
  pixels: Float32Array; // [gridT*gh*gw, 3*T*ps*ps]
  grid: [number, number, number]; // t, h, w in patches
  resizedWidth: number;
  resizedHeight: number;
  originalWidth: number;
  originalHeight: number;
  tokens: number; // merged visual tokens = t*gh*gw/merge^2
}

/** Normalises and patchifies one still image (grid_t = 1, the frame repeated temporal_patch_size times). */
export function processImage(img: RgbImage, cfg: PreprocessorConfig = DEFAULT_PREPROCESSOR): ProcessedImage {
  const ps = cfg.patchSize, m = cfg.mergeSize, T = cfg.temporalPatchSize;
  const [H, W] = smartResize(img.height, img.width, cfg.minPixels, cfg.maxPixels, ps * m);
  const r = H === img.height && W === img.width ? img : resizeBicubic(img, W, H);
  const mean = cfg.imageMean.map(Math.fround), std = cfg.imageStd.map(Math.fround);
  // Normalised CHW image in fp32 (the slow processor's exact rounding).
  const norm = new Float32Array(3 * H * W);
  for (let i = 0; i < H * W; i++)
    for (let c = 0; c < 3; c++) {
      const x = Math.fround(r.data[i * 3 + c]! * cfg.rescaleFactor);
      norm[c * H * W + i] = Math.fround(Math.fround(x - mean[c]!) / std[c]!);
    }
  const gh = H / ps, gw = W / ps, rowLen = 3 * T * ps * ps;
  const pixels = new Float32Array(gh * gw * rowLen);
  let p = 0;
  for (let bh = 0; bh < gh / m; bh++)
    for (let bw = 0; bw < gw / m; bw++)
      for (let mh = 0; mh < m; mh++)
        for (let mw = 0; mw < m; mw++, p++) {
          const r0 = (bh * m + mh) * ps, c0 = (bw * m + mw) * ps;
          let o = p * rowLen;
          for (let c = 0; c < 3; c++)
            for (let t = 0; t < T; t++)
              for (let y = 0; y < ps; y++) {
                const src = c * H * W + (r0 + y) * W + c0;
                for (let x = 0; x < ps; x++) pixels[o++] = norm[src + x]!;
              }
        }
  return {
    pixels,
    grid: [1, gh, gw],
    resizedWidth: W,
    resizedHeight: H,
    originalWidth: img.width,
    originalHeight: img.height,
    tokens: (gh * gw) / (m * m),
  };
}

/** Concatenates several processed images into the engine's inputs (pixels and an n*3 grid array). */
export function batchImages(images: ProcessedImage[]): { pixels: Float32Array; grids: Int32Array } {
  const total = images.reduce((a, im) => a + im.pixels.length, 0);
  const pixels = new Float32Array(total);
  const grids = new Int32Array(images.length * 3);
  let off = 0;
  images.forEach((im, i) => {
    pixels.set(im.pixels, off);
    off += im.pixels.length;
    grids.set(im.grid, i * 3);
  });
  return { pixels, grids };
}
