// Capture latency of a display, measured the way the agent captures (grab + BGRA->RGB), plus PNG encoding.
import { encodePng } from './capture.ts';
import type { Desktop } from './desktop.ts';

export interface CaptureBench {
  width: number;
  height: number;
  runs: number;
  /** grab + convert, ms */
  p50: number;
  p90: number;
  grabP50: number;
  convertP50: number;
  pngP50: number;
  /** Blank-frame verdict of the first capture. */
  blank: string | null;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 10) / 10;
};

export async function benchCapture(desktop: Desktop, displayId = 0, runs = 30): Promise<CaptureBench> {
  const first = await desktop.capture(displayId); // also warms up
  const total: number[] = [], grab: number[] = [], conv: number[] = [], png: number[] = [];
  let w = 0, h = 0;
  for (let i = 0; i < runs; i++) {
    const f = await desktop.capture(displayId);
    w = f.width;
    h = f.height;
    total.push(f.grabMs + f.convertMs);
    grab.push(f.grabMs);
    conv.push(f.convertMs);
    if (i < 10) {
      const t = performance.now();
      await encodePng(f.rgb, f.width, f.height);
      png.push(performance.now() - t);
    }
  }
  return { width: w, height: h, runs, p50: pct(total, 0.5), p90: pct(total, 0.9), grabP50: pct(grab, 0.5), convertP50: pct(conv, 0.5), pngP50: pct(png, 0.5), blank: first.blank };
}
