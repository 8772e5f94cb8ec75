// The one place where model coordinates become screen coordinates (and the image sizes that decide it).
//   capture W x H (screen pixels)  --optional downscale-->  sent W' x H'  --smart_resize-->  resized Wb x Hb
//   model point (x, y) in resized space  ->  X = origin.x + (x / Wb) * W / injectorScale   (same for Y)
import { smartResize } from '../model/preprocess.ts';
import type { Action, ModelAction, Point, ScreenAction } from './actions.ts';

export interface ResizeLimits {
  minPixels: number;
  maxPixels: number;
}

/** UI-TARS-1.5 / Qwen2.5-VL limits (the processor defaults the 1.5 coordinate recipe uses). */
export const UITARS_LIMITS: ResizeLimits = { minPixels: 100 * 28 * 28, maxPixels: 16384 * 28 * 28 };

/** 'absolute': pixels of the resized image (UI-TARS-1.5). 'relative1000': 0..1000 (UI-TARS-1.0, Doubao). */
export type CoordSpace = 'absolute' | 'relative1000';

export interface Size {
  width: number;
  height: number;
}

export interface ImageGeometry {
  /** Top-left of the captured display, in input-injector units. */
  origin: Point;
  /** Captured pixels per injector unit (DisplayInfo.injectorScale; 1 on X11). */
  injectorScale: number;
  capture: Size;
  /** The image given to the model (equal to capture unless downscaled before sending). */
  sent: Size;
  /** smart_resize(sent): the image the model saw, whose pixels its coordinates count. */
  resized: Size;
  coordSpace: CoordSpace;
}

/** Chooses the image to send for a capture: downscaled (aspect kept) to at most `maxSendPixels`, then smart-resized. */
export function planImage(capture: Size, limits: ResizeLimits = UITARS_LIMITS, maxSendPixels?: number): { sent: Size; resized: Size } {
  let sent = { ...capture };
  if (maxSendPixels && capture.width * capture.height > maxSendPixels) {
    const s = Math.sqrt(maxSendPixels / (capture.width * capture.height));
    sent = { width: Math.max(28, Math.floor(capture.width * s)), height: Math.max(28, Math.floor(capture.height * s)) };
  }
  const [h, w] = smartResize(sent.height, sent.width, limits.minPixels, limits.maxPixels, 28);
  return { sent, resized: { width: w, height: h } };
}

export interface Mapped {
  point: Point;
  /** True when the model's point lay outside its image and was clamped to the display's edge. */
  clamped: boolean;
}

/** Model point -> screen point (integer injector units, clamped into the display). */
export function toScreen(p: Point, g: ImageGeometry): Mapped {
  const fx = g.coordSpace === 'relative1000' ? p.x / 1000 : p.x / g.resized.width;
  const fy = g.coordSpace === 'relative1000' ? p.y / 1000 : p.y / g.resized.height;
  const wUnits = g.capture.width / g.injectorScale;
  const hUnits = g.capture.height / g.injectorScale;
  const rx = Math.round(fx * wUnits);
  const ry = Math.round(fy * hUnits);
  const maxX = Math.max(0, Math.ceil(wUnits) - 1);
  const maxY = Math.max(0, Math.ceil(hUnits) - 1);
  const cx = Math.min(Math.max(rx, 0), maxX);
  const cy = Math.min(Math.max(ry, 0), maxY);
  return { point: { x: g.origin.x + cx, y: g.origin.y + cy }, clamped: cx !== rx || cy !== ry || !Number.isFinite(fx + fy) };
}

/** Screen point -> model point (the inverse, for tests, overlays and the scripted model). */
export function toModel(p: Point, g: ImageGeometry): Point {
  const fx = ((p.x - g.origin.x) * g.injectorScale) / g.capture.width;
  const fy = ((p.y - g.origin.y) * g.injectorScale) / g.capture.height;
  const W = g.coordSpace === 'relative1000' ? 1000 : g.resized.width;
  const H = g.coordSpace === 'relative1000' ? 1000 : g.resized.height;
  return { x: Math.round(fx * W), y: Math.round(fy * H) };
}

/** Maps every point of an action; lists the points that had to be clamped. */
export function mapAction(a: ModelAction, g: ImageGeometry): { action: ScreenAction; clamped: boolean } {
  let clamped = false;
  const m = (p: Point): Point => {
    const r = toScreen(p, g);
    clamped ||= r.clamped;
    return r.point;
  };
  let out: Action<Point>;
  switch (a.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      out = { type: a.type, point: m(a.point) };
      break;
    case 'drag':
      out = { type: 'drag', from: m(a.from), to: m(a.to) };
      break;
    case 'scroll':
      out = { type: 'scroll', direction: a.direction, point: a.point ? m(a.point) : null };
      break;
    default:
      out = a;
  }
  return { action: out, clamped };
}
