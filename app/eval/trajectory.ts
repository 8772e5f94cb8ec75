// Step-level action accuracy on recorded trajectories (our layout, or AgentNetBench task files): at every
// step the model sees the task, the ground-truth history (earlier screenshots and actions, as the agent's
// prompt shows them) and the current screenshot, and its action is compared with the recorded one.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import type { Action, Point } from '../agent/actions.ts';
import { formatAction } from '../agent/actions.ts';
import { mapAction, toModel, type ImageGeometry } from '../agent/coords.ts';
import { buildMessages, type HistoryTurn } from '../agent/prompt.ts';
import { parseReply, ReplyParseError } from '../agent/parse.ts';
import type { ModelImage } from '../model/backends/types.ts';
import { smartResize } from '../model/preprocess.ts';
import { agentNetStepScore, fromAgentNetTask, isAgentNetTask, toAgentNetPredictions, type AnbStep } from './agentnet.ts';
import { driverStepScore, toDriverPrediction } from './agentnet-driver.ts';

const point = z.object({ x: z.number(), y: z.number() });
const actionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.enum(['click', 'left_double', 'right_single', 'hover']), x: z.number(), y: z.number(), box: z.array(z.number()).length(4).optional() }),
  z.object({ type: z.literal('drag'), from: point, to: point }),
  z.object({ type: z.literal('scroll'), direction: z.enum(['up', 'down', 'left', 'right']), x: z.number().optional(), y: z.number().optional() }),
  z.object({ type: z.literal('hotkey'), keys: z.string().min(1) }),
  z.object({ type: z.literal('type'), text: z.string() }),
  z.object({ type: z.literal('wait') }),
  z.object({ type: z.literal('finished'), content: z.string().optional() }),
  z.object({ type: z.literal('call_user'), content: z.string().optional() }),
]);
export type GtAction = z.infer<typeof actionSchema>;

const episodeSchema = z.object({
  id: z.union([z.string(), z.number()]).transform(String),
  task: z.string().min(1),
  platform: z.string().optional(),
  steps: z.array(z.object({ screenshot: z.string(), action: actionSchema })).min(1),
});
/**
 * An episode: ours (points in screenshot pixels), or an AgentNetBench task (`relative`: points are
 * fractions of the screenshot; each step keeps its recorded actions for the benchmark's score).
 */
export type TrajectoryEpisode = Omit<z.infer<typeof episodeSchema>, 'steps'> & {
  dir: string;
  relative?: boolean;
  steps: Array<{ screenshot: string; action: GtAction; agentnet?: AnbStep }>;
};

/**
 * Reads every *.json (one episode, an array of episodes, or an AgentNetBench task file with its
 * screenshots in images/) and *.jsonl (one episode per line) in `dir`.
 */
export function loadTrajectories(dir: string): TrajectoryEpisode[] {
  const root = path.resolve(dir);
  if (!existsSync(root)) throw new Error(`${root}: no such trajectory folder`);
  const out: TrajectoryEpisode[] = [];
  for (const f of readdirSync(root).sort()) {
    const file = path.join(root, f);
    let items: unknown[];
    try {
      if (f.endsWith('.jsonl'))
        items = readFileSync(file, 'utf8').split('\n').flatMap((l, i) => {
          if (!l.trim()) return [];
          try {
            return [JSON.parse(l)];
          } catch (e) {
            throw new Error(`line ${i + 1}: ${(e as Error).message}`);
          }
        });
      else if (f.endsWith('.json')) {
        const v = JSON.parse(readFileSync(file, 'utf8'));
        items = Array.isArray(v) ? v : [v];
      } else continue;
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
    }
    items.forEach((it, i) => {
      if (isAgentNetTask(it)) return void out.push({ ...fromAgentNetTask(it, file, root), dir: root, relative: true });
      const p = episodeSchema.safeParse(it);
      if (!p.success) {
        const is = p.error.issues[0]!;
        const id = typeof (it as { id?: unknown })?.id === 'string' ? ` (id '${(it as { id: string }).id}')` : '';
        throw new Error(`${file}: episode ${i}${id}: field '${is.path.join('.')}': ${is.message}`);
      }
      for (const s of p.data.steps) if (!existsSync(path.resolve(root, s.screenshot))) throw new Error(`${file}: episode ${i} (id '${p.data.id}'): screenshot '${s.screenshot}' not found`);
      out.push({ ...p.data, dir: root });
    });
  }
  if (!out.length) throw new Error(`${root}: no episodes (*.json or *.jsonl)`);
  // Results are keyed by episode id: two episodes with one id would overwrite each other's.
  const seen = new Set<string>();
  for (const e of out) {
    if (seen.has(e.id)) throw new Error(`${root}: two episodes have the id '${e.id}' (results are keyed by it)`);
    seen.add(e.id);
  }
  return out;
}

/** A recorded action in screen pixels; `scale` multiplies its coordinates (relative ones: the screenshot's size). */
const toAction = (a: GtAction, scale = { width: 1, height: 1 }): Action<Point> => {
  const at = (x: number, y: number): Point => ({ x: x * scale.width, y: y * scale.height });
  switch (a.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      return { type: a.type, point: at(a.x, a.y) };
    case 'drag':
      return { type: 'drag', from: at(a.from.x, a.from.y), to: at(a.to.x, a.to.y) };
    case 'scroll':
      return { type: 'scroll', direction: a.direction, point: a.x !== undefined && a.y !== undefined ? at(a.x, a.y) : null };
    case 'hotkey':
      return { type: 'hotkey', keys: a.keys };
    case 'type':
      return { type: 'type', text: a.text };
    case 'finished':
      return { type: 'finished', content: a.content ?? '' };
    case 'call_user':
      return { type: 'call_user', content: a.content ?? '' };
    default:
      return { type: 'wait' };
  }
};

/**
 * Whether a predicted action (screen pixels) matches the recorded one: same type; a point inside the
 * recorded box when there is one, else within 14 % of the screenshot's longer side (AndroidControl's
 * rule of thumb); typed text equal after trimming; same scroll direction; same keys (case, order-free).
 */
export function stepMatches(pred: Action<Point> | null, gt: GtAction, screen: { width: number; height: number }): boolean {
  if (!pred || pred.type !== gt.type) return false;
  const near = (p: Point, x: number, y: number, box?: number[]) =>
    box ? p.x >= box[0]! && p.x <= box[2]! && p.y >= box[1]! && p.y <= box[3]! : Math.hypot(p.x - x, p.y - y) <= 0.14 * Math.max(screen.width, screen.height);
  switch (gt.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      return 'point' in pred && pred.point !== null && near(pred.point, gt.x, gt.y, gt.box);
    case 'drag':
      return pred.type === 'drag' && near(pred.from, gt.from.x, gt.from.y) && near(pred.to, gt.to.x, gt.to.y);
    case 'scroll':
      return pred.type === 'scroll' && pred.direction === gt.direction;
    case 'hotkey': {
      const norm = (s: string) => s.toLowerCase().split(/[\s+]+/).filter(Boolean).sort().join(' ');
      return pred.type === 'hotkey' && norm(pred.keys) === norm(gt.keys);
    }
    case 'type':
      return pred.type === 'type' && pred.text.trim() === gt.text.trim();
    default:
      return true;
  }
}

/** A screenshot as the agent's backends receive it, sized for `limits`. */
export async function loadScreenshot(file: string, id: string, limits: { minPixels: number; maxPixels: number }): Promise<ModelImage> {
  const { data, info } = await sharp(file)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((e: Error) => {
      throw new Error(`${file}: not a readable image (${e.message})`);
    });
  const [h, w] = smartResize(info.height, info.width, limits.minPixels, limits.maxPixels, 28);
  return { id, png: readFileSync(file), width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), resized: { width: w, height: h } };
}

export function geometry(img: ModelImage): ImageGeometry {
  const size = { width: img.width, height: img.height };
  return { origin: { x: 0, y: 0 }, injectorScale: 1, capture: size, sent: size, resized: img.resized, coordSpace: 'absolute' };
}

/** The messages of step `k`: the task, steps < k with their recorded actions as replies, screenshot k. */
/** Step k's recorded action in screen pixels of its screenshot `shot`. */
export const recordedAction = (ep: TrajectoryEpisode, k: number, shot: { width: number; height: number }): Action<Point> =>
  toAction(ep.steps[k]!.action, ep.relative ? shot : undefined);

export function stepMessages(ep: TrajectoryEpisode, shots: ModelImage[], k: number, historyImages: number) {
  const turns: HistoryTurn[] = shots.slice(0, k + 1).map((s, i) => {
    if (i === k) return { screenshot: s };
    const a = recordedAction(ep, i, s); // screen pixels
    const m = (p: Point) => toModel(p, geometry(s)); // -> pixels of the image the model saw
    const model: Action<Point> =
      'point' in a && a.point ? { ...a, point: m(a.point) } : a.type === 'drag' ? { ...a, from: m(a.from), to: m(a.to) } : a;
    return { screenshot: s, reply: `Action: ${formatAction(model)}` };
  });
  return buildMessages(turns, { instruction: ep.task, historyImages });
}

/** The actions of a reply, in screen pixels of `img`; none when the reply does not parse. */
export function predictedActions(reply: string, img: ModelImage): Array<Action<Point>> {
  try {
    return parseReply(reply).actions.map((a) => mapAction(a, geometry(img)).action);
  } catch (e) {
    if (e instanceof ReplyParseError) return [];
    throw e;
  }
}

/**
 * One step's result for a reply: the first predicted action and whether it counts; for AgentNetBench
 * steps also the benchmark's score by OpenCUA's evaluator (`score`, 0-1; the step counts when it is
 * full) and by the papers' driver (`driverScore`), each with whether an alternative option gave it.
 */
export function scoreStep(
  ep: TrajectoryEpisode,
  k: number,
  reply: string,
  shot: ModelImage,
): { hit: boolean; predicted: Action<Point> | null; score?: number; alternative?: boolean; driverScore?: number; driverAlternative?: boolean } {
  const actions = predictedActions(reply, shot);
  const predicted = actions[0] ?? null;
  const step = ep.steps[k]!;
  if (!step.agentnet) return { hit: stepMatches(predicted, step.action, shot), predicted };
  const { score, alternative } = agentNetStepScore(step.agentnet, toAgentNetPredictions(actions, shot));
  const driver = driverStepScore(step.agentnet, toDriverPrediction(actions, shot));
  return { hit: score >= 1 - 1e-9, predicted, score, alternative, driverScore: driver.score, driverAlternative: driver.alternative };
}
