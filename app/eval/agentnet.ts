// AgentNetBench (the OpenCUA authors' offline desktop benchmark): its task files read as trajectories,
// and its step score, so that `starkv eval trajectory --data <AgentNetBench folder>` reports the
// benchmark's own figure beside our step accuracy.
//
// A task file is one JSON object: {task_id, high_level_task_description, steps: [{image,
// ground_truth_actions: [{type, params, metadata?: {bboxes: [{rel_bbox: [x, y, w, h]}]}}],
// alternative_options?: [[action, ...], ...]}]}, screenshots under images/ beside it. Coordinates are
// relative to the screenshot (0-1). Action types are pyautogui's: click, doubleClick, rightClick,
// tripleClick, moveTo, dragTo (after a moveTo), scroll / hscroll (after a moveTo), write, press, hotkey,
// and terminate {status}.
//
// The score of a step follows the authors' evaluator (evaluation/agentnetbench/eval.py in OpenCUA),
// checked against its outputs in test/eval/agentnet.test.ts: a write followed by pressing only
// enter/return is one write ending in a newline (on both sides); a terminate step scores 1 when the
// first predicted action is a terminate with the same status; otherwise the first predicted type must
// be among the recorded types, or the step scores 0. Then the i-th recorded action is compared with the
// i-th predicted one: points score 1 inside any of the recorded boxes, else 1 within 0.01·√2 of the
// recorded point and exp(-120·(d - 0.01·√2)) beyond; text scores by edit distance (lower-cased, trimmed:
// similarity ≥ 0.8 counts 1, else similarity / 0.8); keys by the set of lower-cased names; scroll by type
// alone. The step's score is the mean over the recorded action types of each type's mean score (types
// the evaluator has no rule for, such as hscroll, do not enter that mean when their type matched), and
// the best of the recorded actions and the alternative options.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Action, Point } from '../agent/actions.ts';
import type { GtAction } from './trajectory.ts';

const position = z.object({ x: z.number(), y: z.number() });
const anbAction = z
  .object({
    type: z.string().min(1),
    params: z.record(z.string(), z.unknown()).default({}),
    metadata: z.object({ bboxes: z.array(z.object({ rel_bbox: z.array(z.number()).length(4) }).passthrough()).optional() }).passthrough().optional(),
  })
  .passthrough()
  .superRefine((a, ctx) => {
    const t = a.type.toLowerCase();
    const need = (key: string, schema: z.ZodTypeAny, what: string) => {
      if (!schema.safeParse(a.params[key]).success) ctx.addIssue({ code: 'custom', path: ['params', key], message: `${a.type} needs ${what}` });
    };
    if (POINTED.has(t)) need('position', position, 'a position {x, y}');
    else if (t === 'write') {
      if (typeof a.params.text !== 'string' && typeof a.params.content !== 'string') need('text', z.string(), 'a text');
    } else if (t === 'press' || t === 'hotkey') need('keys', z.array(z.string()).min(1), 'a list of keys');
    else if (t === 'terminate') need('status', z.string(), 'a status');
  });
export type AnbAction = z.infer<typeof anbAction>;

const anbStep = z
  .object({
    image: z.string().min(1),
    ground_truth_actions: z.array(anbAction), // empty: the step scores 0, as in the authors' evaluator
    alternative_options: z.array(z.array(anbAction).min(1)).optional(),
  })
  .passthrough();

const anbTask = z
  .object({
    task_id: z.union([z.string(), z.number()]).transform(String),
    high_level_task_description: z.string().optional(),
    user_task_description: z.string().optional(),
    instruction: z.string().optional(),
    meta_info: z.object({ system: z.string().optional() }).passthrough().nullish(),
    steps: z.array(anbStep).min(1),
  })
  .passthrough();

/** What an AgentNetBench step keeps for scoring. */
export interface AnbStep {
  actions: AnbAction[];
  alternatives: AnbAction[][];
}

/** Whether a parsed JSON value looks like an AgentNetBench task file (rather than our own episode). */
export function isAgentNetTask(v: unknown): boolean {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return 'task_id' in o && Array.isArray(o.steps) && o.steps.some((s) => s && typeof s === 'object' && 'ground_truth_actions' in s);
}

export const POINTED = new Set(['click', 'doubleclick', 'rightclick', 'tripleclick', 'moveto', 'dragto']);
const pos = (a: AnbAction) => a.params.position as Point;
const textOf = (a: AnbAction) => (typeof a.params.content === 'string' && a.params.content) || (typeof a.params.text === 'string' ? a.params.text : '');

/**
 * One recorded step (its ground-truth actions) as our recorded-action form, in relative coordinates
 * (scaled to the screenshot when used): what the model's prompt shows as the history, and the step's
 * action group (wait for a type we have no action for).
 */
export function toRelativeAction(actions: AnbAction[]): GtAction {
  const merged = mergeGtWriteEnter(actions);
  const t = (i: number) => merged[i]?.type.toLowerCase();
  const first = merged[0];
  if (!first) return { type: 'wait' };
  if (t(0) === 'moveto' && t(1) === 'dragto') return { type: 'drag', from: pos(first), to: pos(merged[1]!) };
  const scrollAt = t(0) === 'moveto' && (t(1) === 'scroll' || t(1) === 'hscroll') ? 1 : t(0) === 'scroll' || t(0) === 'hscroll' ? 0 : -1;
  if (scrollAt >= 0) {
    const s = merged[scrollAt]!;
    const amount = typeof s.params.amount === 'number' ? s.params.amount : -1;
    const horizontal = s.type.toLowerCase() === 'hscroll';
    const direction = horizontal ? (amount > 0 ? 'right' : 'left') : amount > 0 ? 'up' : 'down';
    const own = position.safeParse(s.params.position);
    const at = scrollAt === 1 ? pos(first) : own.success ? own.data : undefined;
    return at ? { type: 'scroll', direction, x: at.x, y: at.y } : { type: 'scroll', direction };
  }
  switch (t(0)) {
    case 'click':
    case 'tripleclick': // UI-TARS has no triple click; the history shows a click there
      return { type: 'click', ...pos(first) };
    case 'doubleclick':
      return { type: 'left_double', ...pos(first) };
    case 'rightclick':
      return { type: 'right_single', ...pos(first) };
    case 'moveto':
      return { type: 'hover', ...pos(first) };
    case 'write':
      return { type: 'type', text: textOf(first) };
    case 'press':
    case 'hotkey':
      return { type: 'hotkey', keys: (first.params.keys as string[]).map((k) => k.toLowerCase()).join(' ') };
    case 'terminate':
      return first.params.status === 'success' ? { type: 'finished' } : { type: 'call_user', content: String(first.params.status) };
    default:
      return { type: 'wait' };
  }
}

export interface AnbTaskEpisode {
  id: string;
  task: string;
  platform?: string;
  steps: Array<{ screenshot: string; action: GtAction; agentnet: AnbStep }>;
}

/** An AgentNetBench task file as an episode; `dir` is the folder it lies in (screenshots in dir/images). */
export function fromAgentNetTask(v: unknown, file: string, dir: string): AnbTaskEpisode {
  const p = anbTask.safeParse(v);
  if (!p.success) {
    const is = p.error.issues[0]!;
    throw new Error(`${file}: AgentNetBench task: field '${is.path.join('.')}': ${is.message}`);
  }
  const t = p.data;
  const task = t.high_level_task_description || t.user_task_description || t.instruction;
  if (!task) throw new Error(`${file}: AgentNetBench task ${t.task_id}: no high_level_task_description (nor user_task_description)`);
  const steps = t.steps.map((s) => {
    const candidates = [path.join('images', s.image), s.image];
    const screenshot = candidates.find((c) => existsSync(path.resolve(dir, c)));
    if (!screenshot) throw new Error(`${file}: AgentNetBench task ${t.task_id}: screenshot '${s.image}' not found in ${path.join(dir, 'images')} or ${dir}`);
    return { screenshot, action: toRelativeAction(s.ground_truth_actions), agentnet: { actions: s.ground_truth_actions, alternatives: s.alternative_options ?? [] } };
  });
  return { id: t.task_id, task, ...(t.meta_info?.system ? { platform: t.meta_info.system } : {}), steps };
}

/** A predicted action in the evaluator's terms: a type and its value (a relative point, text, keys, ...). */
export interface AnbPrediction {
  type: string;
  value: unknown;
}

/**
 * Our parsed actions (screen pixels of a `screen`-sized screenshot) as the evaluator's predicted
 * actions: click / doubleClick / rightClick / moveTo at relative points, a drag as moveTo + dragTo, a
 * scroll as moveTo (its point, else the centre) + scroll (+5 up, -5 down; hscroll for left/right), keys
 * as press (one) or hotkey (several; cmd is ctrl, as the authors' agents normalise it), typed text as
 * write (a trailing newline is the enter), finished as terminate success, call_user as terminate failure.
 */
export function toAgentNetPredictions(actions: Array<Action<Point>>, screen: { width: number; height: number }): AnbPrediction[] {
  const rel = (p: Point): [number, number] => [p.x / screen.width, p.y / screen.height];
  const out: AnbPrediction[] = [];
  for (const a of actions)
    switch (a.type) {
      case 'click':
        out.push({ type: 'click', value: rel(a.point) });
        break;
      case 'left_double':
        out.push({ type: 'doubleClick', value: rel(a.point) });
        break;
      case 'right_single':
        out.push({ type: 'rightClick', value: rel(a.point) });
        break;
      case 'hover':
        out.push({ type: 'moveTo', value: rel(a.point) });
        break;
      case 'drag':
        out.push({ type: 'moveTo', value: rel(a.from) }, { type: 'dragTo', value: rel(a.to) });
        break;
      case 'scroll': {
        const horizontal = a.direction === 'left' || a.direction === 'right';
        const amount = a.direction === 'up' || a.direction === 'right' ? 5 : -5;
        out.push({ type: 'moveTo', value: a.point ? rel(a.point) : [0.5, 0.5] }, { type: horizontal ? 'hscroll' : 'scroll', value: amount });
        break;
      }
      case 'hotkey': {
        const keys = a.keys.split(/[\s+]+/).filter(Boolean).map((k) => (/^(cmd|command)$/i.test(k) ? 'ctrl' : k));
        out.push({ type: keys.length > 1 ? 'hotkey' : 'press', value: keys });
        break;
      }
      case 'type':
        out.push({ type: 'write', value: a.text });
        break;
      case 'finished':
        out.push({ type: 'terminate', value: 'success' });
        break;
      case 'call_user':
        out.push({ type: 'terminate', value: 'failure' });
        break;
      case 'wait':
        out.push({ type: 'wait', value: null });
        break;
    }
  return out;
}

const isEnter = (keys: unknown) => Array.isArray(keys) && keys.length === 1 && typeof keys[0] === 'string' && /^(enter|return)$/i.test(keys[0]);

function mergeGtWriteEnter(gt: AnbAction[]): AnbAction[] {
  const out: AnbAction[] = [];
  for (let i = 0; i < gt.length; i++) {
    const a = gt[i]!, b = gt[i + 1];
    if (a.type.toLowerCase() === 'write' && b && /^(press|hotkey)$/i.test(b.type) && isEnter(b.params.keys)) {
      const key = 'text' in a.params ? 'text' : 'content';
      out.push({ ...a, params: { ...a.params, [key]: `${String(a.params[key] ?? '')}\n` } });
      i++;
    } else out.push(a);
  }
  return out;
}

function mergePredWriteEnter(pred: AnbPrediction[]): AnbPrediction[] {
  const out: AnbPrediction[] = [];
  for (let i = 0; i < pred.length; i++) {
    const a = pred[i]!, b = pred[i + 1];
    if (a.type.toLowerCase() === 'write' && b && b.type.toLowerCase() === 'press' && isEnter(b.value)) {
      out.push({ type: 'write', value: `${String(a.value)}\n` });
      i++;
    } else out.push(a);
  }
  return out;
}

/** Levenshtein distance over code points. */
export function editDistance(a: string, b: string): number {
  const x = Array.from(a), y = Array.from(b);
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[y.length]!;
}

const RADIUS = 0.01 * Math.SQRT2;

export function pointScore(p: unknown, gt: AnbAction): number {
  if (!Array.isArray(p) || p.length !== 2) return 0;
  const [px, py] = p as [number, number];
  for (const b of gt.metadata?.bboxes ?? []) {
    const [bx, by, bw, bh] = b.rel_bbox as [number, number, number, number];
    if (bx <= px && px <= bx + bw && by <= py && py <= by + bh) return 1;
  }
  const g = pos(gt);
  const d = Math.sqrt((px - g.x) ** 2 + (py - g.y) ** 2);
  return d <= RADIUS ? 1 : Math.exp(-120 * (d - RADIUS));
}

/** Edit-distance similarity of two (lower-cased, trimmed) texts: 1 from 0.8 up, else similarity / 0.8. */
export function textSimilarity(q: string, g: string): number {
  const n = Math.max(Array.from(g).length, Array.from(q).length);
  if (n === 0) return 1;
  const sim = 1 - editDistance(q, g) / n;
  return sim >= 0.8 ? 1 : sim / 0.8;
}

// Trimming takes a trailing newline too, so the evaluator's newline penalty never applies.
const textScore = (p: unknown, gt: AnbAction) => textSimilarity(String(p).toLowerCase().trim(), textOf(gt).toLowerCase().trim());

export function keysScore(p: unknown, gt: AnbAction): number {
  const g = gt.params.keys;
  if (Array.isArray(p) && Array.isArray(g)) {
    const a = new Set(p.map((k) => String(k).toLowerCase())), b = new Set(g.map((k) => String(k).toLowerCase()));
    return a.size === b.size && [...a].every((k) => b.has(k)) ? 1 : 0;
  }
  return JSON.stringify(p) === JSON.stringify(g) ? 1 : 0;
}

/** The evaluator's score of predicted actions against one list of recorded actions, total and per type. */
export function agentNetScore(gtIn: AnbAction[], predIn: AnbPrediction[]): { total: number; actions: Record<string, number> } {
  if (!gtIn.length || !predIn.length) return { total: 0, actions: {} };
  const gt = mergeGtWriteEnter(gtIn);
  const pred = mergePredWriteEnter(predIn);
  if (gt[0]!.type === 'terminate') {
    const ok = pred[0]!.type === 'terminate' && pred[0]!.value === gt[0]!.params.status ? 1 : 0;
    return { total: ok, actions: { terminate: ok } };
  }
  const gtTypes = gt.map((a) => a.type.toLowerCase());
  if (!gtTypes.includes(pred[0]!.type.toLowerCase())) return { total: 0, actions: Object.fromEntries(gtTypes.map((t) => [t, 0])) };
  const sums = new Map<string, number>(); // only the types a rule scored (or a mismatch zeroed)
  const counts = new Map<string, number>();
  gt.forEach((g, i) => {
    const t = g.type.toLowerCase();
    counts.set(t, (counts.get(t) ?? 0) + 1);
    const p = pred[i];
    const add = (v: number) => sums.set(t, (sums.get(t) ?? 0) + v);
    if (!p || p.type.toLowerCase() !== t) return add(0);
    if (POINTED.has(t)) add(pointScore(p.value, g));
    else if (t === 'write') add(textScore(p.value, g));
    else if (t === 'press' || t === 'hotkey') add(keysScore(p.value, g));
    else if (t === 'scroll') add(1);
  });
  const actions: Record<string, number> = {};
  for (const [t, s] of sums) actions[t] = s / counts.get(t)!;
  const vals = Object.values(actions);
  return { total: vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : 0, actions };
}

/** A step's score: the recorded actions', or an alternative option's when that scores higher. */
export function agentNetStepScore(step: AnbStep, pred: AnbPrediction[]): { score: number; alternative: boolean } {
  let best = agentNetScore(step.actions, pred).total;
  let alternative = false;
  if (best < 1)
    for (const alt of step.alternatives) {
      const s = agentNetScore(alt, pred).total;
      if (s > best) {
        best = s;
        alternative = true;
      }
    }
  return { score: best, alternative };
}
