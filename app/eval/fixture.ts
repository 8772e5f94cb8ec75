// A tiny ScreenSpot-v2-format dataset made on the spot: synthetic screenshots with one coloured
// "button" each at a known box, for running the whole eval path without real data.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { rng } from '../model/checkpoint-writer.ts';

const COLOURS: Array<[string, [number, number, number]]> = [
  ['red', [220, 40, 40]],
  ['green', [40, 180, 60]],
  ['blue', [40, 80, 220]],
  ['yellow', [230, 210, 40]],
];

/** Writes `n` samples into `dir` (screenspotv2_image/ + screenspot_<platform>_v2.json); returns the count. */
export async function writeGroundingFixture(dir: string, n = 6, seed = 1, size: [number, number] = [336, 224]): Promise<number> {
  const r = rng(seed);
  const [W, H] = size;
  mkdirSync(path.join(dir, 'screenspotv2_image'), { recursive: true });
  const byPlatform: Record<string, unknown[]> = { desktop: [], web: [] };
  for (let i = 0; i < n; i++) {
    const [name, rgb] = COLOURS[i % COLOURS.length]!;
    const bw = 40 + Math.floor(r.uniform() * 40), bh = 24 + Math.floor(r.uniform() * 16);
    const x = Math.floor(r.uniform() * (W - bw)), y = Math.floor(r.uniform() * (H - bh));
    const data = Buffer.alloc(W * H * 3, 245);
    for (let yy = y; yy < y + bh; yy++) for (let xx = x; xx < x + bw; xx++) data.set(rgb, (yy * W + xx) * 3);
    const file = `fixture_${i}.png`;
    await sharp(data, { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(dir, 'screenspotv2_image', file));
    const platform = i % 2 ? 'web' : 'desktop';
    byPlatform[platform]!.push({ img_filename: file, bbox: [x, y, bw, bh], instruction: `click the ${name} button`, data_type: i % 3 ? 'icon' : 'text', data_source: 'synthetic' });
  }
  for (const [p, items] of Object.entries(byPlatform)) writeFileSync(path.join(dir, `screenspot_${p}_v2.json`), JSON.stringify(items, null, 1));
  return n;
}

/**
 * Writes `episodes` recorded trajectories of `steps` steps (screens with one coloured button each) in
 * the trajectory layout: <dir>/episodes.jsonl + <dir>/shots/*.png. Actions: click the button, type,
 * scroll, ..., finished.
 */
export async function writeTrajectoryFixture(dir: string, episodes = 2, steps = 3, seed = 3): Promise<number> {
  const r = rng(seed);
  const [W, H] = [336, 224];
  mkdirSync(path.join(dir, 'shots'), { recursive: true });
  const lines: string[] = [];
  for (let e = 0; e < episodes; e++) {
    const st: unknown[] = [];
    for (let k = 0; k < steps; k++) {
      const [name, rgb] = COLOURS[(e + k) % COLOURS.length]!;
      const bw = 48, bh = 28;
      const x = Math.floor(r.uniform() * (W - bw)), y = Math.floor(r.uniform() * (H - bh));
      const data = Buffer.alloc(W * H * 3, 240);
      for (let yy = y; yy < y + bh; yy++) for (let xx = x; xx < x + bw; xx++) data.set(rgb, (yy * W + xx) * 3);
      const file = `shots/e${e}_s${k}.png`;
      await sharp(data, { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(dir, file));
      const kind = k === steps - 1 ? 'finished' : k % 3 === 0 ? 'click' : k % 3 === 1 ? 'type' : 'scroll';
      const action =
        kind === 'click'
          ? { type: 'click', x: x + bw / 2, y: y + bh / 2, box: [x, y, x + bw, y + bh] }
          : kind === 'type'
            ? { type: 'type', text: `${name} ${k}` }
            : kind === 'scroll'
              ? { type: 'scroll', direction: 'down' }
              : { type: 'finished' };
      st.push({ screenshot: file, action });
    }
    lines.push(JSON.stringify({ id: `ep${e}`, task: `Press the coloured buttons in episode ${e}.`, platform: e % 2 ? 'web' : 'desktop', steps: st }));
  }
  writeFileSync(path.join(dir, 'episodes.jsonl'), lines.join('\n') + '\n');
  return episodes;
}
