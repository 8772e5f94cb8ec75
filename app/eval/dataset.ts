// Grounding datasets in the ScreenSpot, ScreenSpot-v2 and ScreenSpot-Pro layouts: images plus JSON
// annotations (instruction, target box). Boxes are normalised to [x1, y1, x2, y2] in image pixels.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export interface GroundingSample {
  id: string; // stable across runs: annotation file + index
  image: string; // absolute path
  instruction: string;
  box: [number, number, number, number]; // x1, y1, x2, y2 (pixels of the original image)
  groups: Record<string, string>; // e.g. platform, ui_type, source, application
}

const entry = z
  .object({
    img_filename: z.string(),
    instruction: z.string().min(1),
    bbox: z.array(z.number()).length(4),
    data_type: z.string().optional(),
    data_source: z.string().optional(),
    ui_type: z.string().optional(),
    platform: z.string().optional(),
    application: z.string().optional(),
    group: z.string().optional(),
    id: z.union([z.string(), z.number()]).optional(),
  })
  .passthrough();

function jsonFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(dir, f));
}

/**
 * Reads a dataset folder. Layouts:
 *  - ScreenSpot / v2: `screenspot_*.json` (or any *.json) beside an image folder (`screenspot_imgs/`, `images/`
 *    or the same folder); bbox is [x, y, w, h].
 *  - ScreenSpot-Pro: `annotations/*.json` and `images/`; bbox is [x1, y1, x2, y2].
 */
export function loadGroundingDataset(dir: string): GroundingSample[] {
  const root = path.resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`${root}: no such dataset folder`);
  const pro = existsSync(path.join(root, 'annotations'));
  const annFiles = pro ? jsonFiles(path.join(root, 'annotations')) : jsonFiles(root);
  if (annFiles.length === 0) throw new Error(`${root}: no annotation files (*.json, or annotations/*.json for ScreenSpot-Pro)`);
  const imageDirs = ['images', 'screenspot_imgs', 'screenspotv2_image', '.'].map((d) => path.join(root, d)).filter((d) => existsSync(d));
  const samples: GroundingSample[] = [];
  for (const file of annFiles) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(raw)) throw new Error(`${file}: expected a JSON array of annotations`);
    const base = path.basename(file, '.json');
    raw.forEach((item, i) => {
      const p = entry.safeParse(item);
      if (!p.success) {
        const is = p.error.issues[0]!;
        throw new Error(`${file}: annotation ${i}: field '${is.path.join('.')}': ${is.message}`);
      }
      const a = p.data;
      const image = imageDirs.map((d) => path.join(d, a.img_filename)).find((f) => existsSync(f));
      if (!image) throw new Error(`${file}: annotation ${i}: image '${a.img_filename}' not found under ${imageDirs.join(', ')}`);
      const [x, y, u, v] = a.bbox as [number, number, number, number];
      const box: GroundingSample['box'] = pro ? [x, y, u, v] : [x, y, x + u, y + v];
      if (!(box[2] >= box[0] && box[3] >= box[1])) throw new Error(`${file}: annotation ${i}: empty or inverted bbox ${JSON.stringify(a.bbox)}`);
      const groups: Record<string, string> = {};
      const platform = a.platform ?? (pro ? undefined : base.replace(/^screenspot_?/, '') || undefined);
      if (platform) groups.platform = platform;
      const uiType = a.ui_type ?? a.data_type;
      if (uiType) groups.ui_type = uiType;
      if (a.data_source) groups.source = a.data_source;
      if (a.application) groups.application = a.application;
      if (a.group) groups.group = a.group;
      samples.push({ id: `${base}#${a.id ?? i}`, image, instruction: a.instruction, box, groups });
    });
  }
  return samples;
}

/** A click hits when it lies inside the box, edges included. */
export function hitTest(x: number, y: number, box: GroundingSample['box']): boolean {
  return x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3];
}
