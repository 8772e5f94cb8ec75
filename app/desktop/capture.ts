// Screen capture of one display through nut.js (libnut's XGetImage grab), BGRA -> RGB, blank-frame
// detection, PNG encoding, and a small thumbnail used to tell whether the screen changed.
import sharp from 'sharp';
import type { DisplayInfo } from './displays.ts';
import type { Nut } from './nut.ts';

export type BlankKind = 'black' | 'white' | 'uniform';

export interface Frame {
  /** Packed RGB, row-major, width*height*3 bytes. */
  rgb: Buffer;
  width: number;
  height: number;
  display: DisplayInfo;
  /** Epoch ms when the grab finished. */
  capturedAt: number;
  grabMs: number;
  convertMs: number;
  /** Set when every sampled pixel had the same colour: the frame shows nothing usable. */
  blank: BlankKind | null;
}

export class BlankFrameError extends Error {
  constructor(
    readonly kind: BlankKind,
    readonly width: number,
    readonly height: number,
  ) {
    super(
      `the screen capture (${width}x${height}) is completely ${kind === 'uniform' ? 'one colour' : kind}: ` +
        'the screen may be locked or blanked, the display may be wrong (see --display), or a remote-desktop/' +
        'content-protection layer may hide it' +
        (process.env.WAYLAND_DISPLAY || process.env.XDG_SESSION_TYPE === 'wayland'
          ? '; this is a Wayland session, where an X11 capture through XWayland sees only X11 windows (log in to an Xorg session, or run the agent on a virtual X display with xvfb-run)'
          : ''),
    );
    this.name = 'BlankFrameError';
  }
}

/** BGRA (or BGRX) rows of `stride` bytes -> packed RGB. */
export function bgraToRgb(src: Buffer, width: number, height: number, stride = width * 4): Buffer {
  const n = width * height;
  if (stride === width * 4 && n % 4 === 0 && src.byteOffset % 4 === 0 && src.length >= n * 4) {
    // Fast path: 4 pixels (16 bytes in) -> 12 bytes out as three 32-bit words (little-endian hosts).
    const u = new Uint32Array(src.buffer, src.byteOffset, n);
    const out = Buffer.allocUnsafe(n * 3);
    if (out.byteOffset % 4 === 0) {
      const o32 = new Uint32Array(out.buffer, out.byteOffset, (n * 3) >> 2);
      for (let i = 0, j = 0; i < n; i += 4) {
        const p0 = u[i]!, p1 = u[i + 1]!, p2 = u[i + 2]!, p3 = u[i + 3]!;
        o32[j++] = ((p0 >>> 16) & 255) | (p0 & 0xff00) | ((p0 & 255) << 16) | (((p1 >>> 16) & 255) << 24);
        o32[j++] = ((p1 >>> 8) & 255) | ((p1 & 255) << 8) | (p2 & 0xff0000) | (((p2 >>> 8) & 255) << 24);
        o32[j++] = (p2 & 255) | (((p3 >>> 16) & 255) << 8) | (((p3 >>> 8) & 255) << 16) | ((p3 & 255) << 24);
      }
      return out;
    }
  }
  const out = Buffer.allocUnsafe(n * 3);
  let o = 0;
  for (let y = 0; y < height; y++) {
    let i = y * stride;
    const end = i + width * 4;
    for (; i < end; i += 4) {
      out[o++] = src[i + 2]!;
      out[o++] = src[i + 1]!;
      out[o++] = src[i]!;
    }
  }
  return out;
}

/** Samples a grid of pixels; returns the blank kind when all of them (nearly) share one colour. */
export function detectBlank(rgb: Buffer, width: number, height: number, step = 7): BlankKind | null {
  if (width === 0 || height === 0 || rgb.length < width * height * 3) return 'black';
  let minR = 255, minG = 255, minB = 255, maxR = 0, maxG = 0, maxB = 0;
  for (let y = 0; y < height; y += step) {
    for (let x = (y / step) % step; x < width; x += step) {
      const i = (y * width + x) * 3;
      const r = rgb[i]!, g = rgb[i + 1]!, b = rgb[i + 2]!;
      if (r < minR) minR = r;
      if (r > maxR) maxR = r;
      if (g < minG) minG = g;
      if (g > maxG) maxG = g;
      if (b < minB) minB = b;
      if (b > maxB) maxB = b;
    }
    if (maxR - minR > 2 || maxG - minG > 2 || maxB - minB > 2) return null;
  }
  if (maxR <= 2 && maxG <= 2 && maxB <= 2) return 'black';
  if (minR >= 253 && minG >= 253 && minB >= 253) return 'white';
  return 'uniform';
}

/** Grabs one display. Never throws for a blank frame: `frame.blank` says so (callers decide; see BlankFrameError). */
export async function captureDisplay(nut: Nut, display: DisplayInfo): Promise<Frame> {
  const t0 = performance.now();
  const img = await nut.screen.grabRegion(new nut.Region(display.x, display.y, display.width, display.height));
  const t1 = performance.now();
  if (!img.data || img.width <= 0 || img.height <= 0) {
    throw new Error(`screen capture of display ${display.id} (${display.width}x${display.height}) returned no pixels`);
  }
  const channels = img.channels || 4;
  let rgb: Buffer;
  if (channels === 4) rgb = bgraToRgb(img.data, img.width, img.height, img.byteWidth || img.width * 4);
  else if (channels === 3) rgb = Buffer.from(img.data);
  else throw new Error(`screen capture returned ${channels} channels per pixel`);
  const t2 = performance.now();
  return {
    rgb,
    width: img.width,
    height: img.height,
    display,
    capturedAt: Date.now(),
    grabMs: t1 - t0,
    convertMs: t2 - t1,
    blank: detectBlank(rgb, img.width, img.height),
  };
}

/** Lossless PNG of an RGB frame (fast zlib level: captures are big and go to a model or to disk). */
export async function encodePng(rgb: Buffer, width: number, height: number, compressionLevel = 1): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel, adaptiveFiltering: false }).toBuffer();
}

/** Resizes an RGB frame (used when the model gets a smaller image than the capture). */
export async function resizeRgb(rgb: Buffer, width: number, height: number, outW: number, outH: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).resize(outW, outH, { kernel: 'cubic', fit: 'fill' }).raw().toBuffer();
}

/** A 64x36-cell grey thumbnail (cell means) to compare screens cheaply. */
export function thumbnail(rgb: Buffer, width: number, height: number, cols = 64, rows = 36): Uint8Array {
  const out = new Uint8Array(cols * rows);
  for (let cy = 0; cy < rows; cy++) {
    const y0 = Math.floor((cy * height) / rows), y1 = Math.max(y0 + 1, Math.floor(((cy + 1) * height) / rows));
    for (let cx = 0; cx < cols; cx++) {
      const x0 = Math.floor((cx * width) / cols), x1 = Math.max(x0 + 1, Math.floor(((cx + 1) * width) / cols));
      let sum = 0, n = 0;
      for (let y = y0; y < y1; y += 2)
        for (let x = x0; x < x1; x += 2) {
          const i = (y * width + x) * 3;
          sum += rgb[i]! * 77 + rgb[i + 1]! * 150 + rgb[i + 2]! * 29;
          n++;
        }
      out[cy * cols + cx] = n ? Math.round(sum / n / 256) : 0;
    }
  }
  return out;
}

/** Fraction of thumbnail cells that differ by more than `tol` grey levels. */
export function thumbnailChange(a: Uint8Array, b: Uint8Array, tol = 6): number {
  if (a.length !== b.length) return 1;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > tol) n++;
  return n / a.length;
}
