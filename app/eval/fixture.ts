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

/** Writes a `W`x`H` PNG of one `rgb` button at (x, y, bw, bh) on a grey background of `bg`. */
async function writeButtonScreen(file: string, W: number, H: number, box: [number, number, number, number], rgb: [number, number, number], bg: number): Promise<void> {
  const [x, y, bw, bh] = box;
  const data = Buffer.alloc(W * H * 3, bg);
  for (let yy = y; yy < y + bh; yy++) for (let xx = x; xx < x + bw; xx++) data.set(rgb, (yy * W + xx) * 3);
  await sharp(data, { raw: { width: W, height: H, channels: 3 } }).png().toFile(file);
}

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
    const file = `fixture_${i}.png`;
    await writeButtonScreen(path.join(dir, 'screenspotv2_image', file), W, H, [x, y, bw, bh], rgb, 245);
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
      const file = `shots/e${e}_s${k}.png`;
      await writeButtonScreen(path.join(dir, file), W, H, [x, y, bw, bh], rgb, 240);
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

/**
 * Writes `tasks` AgentNetBench task files of `steps` steps (<dir>/<task_id>.json, screenshots in
 * <dir>/images/), in the layout of OpenCUA's AgentNetBench: relative coordinates, a box per click, and
 * the benchmark's action types (click with an alternative option, write + press enter, hotkey,
 * moveTo + scroll, moveTo + dragTo, ..., terminate).
 */
export async function writeAgentNetFixture(dir: string, tasks = 2, steps = 4, seed = 5): Promise<number> {
  const r = rng(seed);
  const [W, H] = [448, 280];
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  for (let t = 0; t < tasks; t++) {
    const id = `fixture_${t}`;
    const st: unknown[] = [];
    for (let k = 0; k < steps; k++) {
      const [name, rgb] = COLOURS[(t + k) % COLOURS.length]!;
      const bw = 56, bh = 28;
      const x = Math.floor(r.uniform() * (W - bw)), y = Math.floor(r.uniform() * (H - bh));
      const image = `${id}_${k}.png`;
      await writeButtonScreen(path.join(dir, 'images', image), W, H, [x, y, bw, bh], rgb, 236);
      const cx = +((x + bw / 2) / W).toFixed(4), cy = +((y + bh / 2) / H).toFixed(4);
      const at = (type: string) => ({ type, params: { position: { x: cx, y: cy } }, metadata: { bboxes: [{ category_id: 1, rel_bbox: [x / W, y / H, bw / W, bh / H] }] } });
      const kind = k === steps - 1 ? 'terminate' : ['click', 'write', 'hotkey', 'scroll', 'drag'][k % 5]!;
      const actions =
        kind === 'click'
          ? [at('click')]
          : kind === 'write'
            ? [{ type: 'write', params: { text: `${name} ${k}` } }, { type: 'press', params: { keys: ['enter'] } }]
            : kind === 'hotkey'
              ? [{ type: 'hotkey', params: { keys: ['ctrl', 'c'] } }]
              : kind === 'scroll'
                ? [at('moveTo'), { type: 'scroll', params: { position: { x: cx, y: cy }, amount: -5 } }]
                : kind === 'drag'
                  ? [at('moveTo'), { type: 'dragTo', params: { position: { x: 0.5, y: 0.5 } } }]
                  : [{ type: 'terminate', params: { status: 'success' } }];
      st.push({ step_num: k, image, ground_truth_actions: actions, alternative_options: kind === 'click' ? [[at('doubleClick')]] : [] });
    }
    const task = { task_id: id, high_level_task_description: `Work through the coloured buttons of fixture task ${t}.`, meta_info: { system: t % 2 ? 'Darwin' : 'Windows' }, steps: st };
    writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(task, null, 1));
  }
  return tasks;
}
