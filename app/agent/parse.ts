// Model reply -> our actions. The structure and boxes come from the model authors' @ui-tars/action-parser
// (kept as the reference); we normalise what it leaves loose: boxes arrive as JSON strings, newlines and
// quotes as literal backslash escapes, string arguments with commas or unescaped quotes get cut (we re-read
// `content` ourselves), and unknown or malformed actions come back with an empty type.
import { actionParser } from '@ui-tars/action-parser';
import type { Direction, ModelAction, Point } from './actions.ts';

export interface ParsedReply {
  thought: string;
  reflection: string | null;
  actions: ModelAction[];
  /** Parts of the action text that were not calls and were ignored (e.g. a trailing remark). */
  ignored: string[];
  raw: string;
}

export class ReplyParseError extends Error {
  constructor(
    message: string,
    readonly raw: string,
  ) {
    super(message);
    this.name = 'ReplyParseError';
  }
}

const ALIASES: Record<string, ModelAction['type'] | 'select'> = {
  click: 'click', left_single: 'click', left_click: 'click',
  left_double: 'left_double', double_click: 'left_double',
  right_single: 'right_single', right_click: 'right_single',
  hover: 'hover', mouse_move: 'hover', move_to: 'hover',
  drag: 'drag', select: 'drag',
  scroll: 'scroll', hotkey: 'hotkey', type: 'type', wait: 'wait',
  finished: 'finished', call_user: 'call_user',
};

/** Python string escapes as the prompt asks the model to write them: \n \t \' \" \\ . */
export function unescapePy(s: string): string {
  return s.replace(/\\(n|t|r|'|"|\\)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c));
}

/** The action part of a reply split the way the reference parser splits it. */
function actionParts(text: string): string[] {
  const t = text.trim();
  const parts = t.split(/Action[:：]/);
  const actionStr = parts.length > 1 ? parts[parts.length - 1]! : t;
  return actionStr.split('\n\n');
}

/** `name(content='...')` read to the last quote before the closing parenthesis (tolerates unescaped quotes). */
function contentArg(part: string): string | null {
  const m = /^\s*\w+\s*\(\s*content\s*=\s*(['"])([\s\S]*)\1\s*\)\s*$/.exec(part.replace(/<\|box_(start|end)\|>/g, ''));
  return m ? m[2]! : null;
}

/** Code fences off; double-quoted boxes to single quotes (the reference parser splits "(x,y)" at the comma). */
function normalise(text: string): string {
  return text
    .replace(/^\s*```[a-zA-Z]*\s*$/gm, '')
    .replace(/\b(start_box|end_box|point|start_point|end_point)\s*=\s*"([^"']*)"/g, "$1='$2'")
    .trim();
}

function quietly<T>(fn: () => T): T {
  const orig = console.error;
  console.error = () => undefined; // the reference parser logs every non-call part
  try {
    return fn();
  } finally {
    console.error = orig;
  }
}

function box(v: unknown, what: string, raw: string): Point {
  let nums: number[] = [];
  try {
    nums = JSON.parse(String(v)) as number[];
  } catch {
    // fall through
  }
  if (!Array.isArray(nums) || (nums.length !== 2 && nums.length !== 4) || !nums.every((n) => Number.isFinite(n))) {
    throw new ReplyParseError(`${what}: no usable coordinates in ${JSON.stringify(v)}`, raw);
  }
  const [x1, y1, x2 = x1, y2 = y1] = nums as [number, number, number?, number?];
  return { x: (x1 + x2!) / 2, y: (y1 + y2!) / 2 };
}

/** Parses one UI-TARS reply. Throws ReplyParseError (with the raw text) when no valid action is found. */
export function parseReply(text: string): ParsedReply {
  const raw = text;
  if (!text || !text.trim()) throw new ReplyParseError('the model returned an empty reply', raw);
  const cleaned = normalise(text);
  const parsed = quietly(() => actionParser({ prediction: cleaned, factor: [1, 1] }).parsed);
  const parts = actionParts(cleaned);
  const actions: ModelAction[] = [];
  const ignored: string[] = [];
  let thought = parsed[0]?.thought ?? '';
  const reflection = parsed[0]?.reflection ?? null;
  if (!thought) {
    const m = /(?:Thought|Action_Summary)\s*[:：]\s*([\s\S]*?)(?=\n\s*Action\s*[:：]|$)/.exec(cleaned);
    thought = m ? m[1]!.trim() : '';
  }
  parsed.forEach((p, i) => {
    const part = (parts[i] ?? '').trim();
    const fn = p.action_type;
    if (!fn) {
      if (!part) return;
      if (/^\w+\s*\(/.test(part)) throw new ReplyParseError(`malformed action: ${part.slice(0, 200)}`, raw);
      ignored.push(part);
      return;
    }
    const type = ALIASES[fn];
    if (!type) throw new ReplyParseError(`unsupported action '${fn}' (UI-TARS-1.5 computer-use actions only)`, raw);
    const inp = p.action_inputs as Record<string, unknown>;
    const where = `${fn}()`;
    switch (type) {
      case 'click':
      case 'left_double':
      case 'right_single':
      case 'hover':
        if (!inp.start_box) throw new ReplyParseError(`${where} has no start_box/point`, raw);
        actions.push({ type, point: box(inp.start_box, where, raw) });
        break;
      case 'drag':
      case 'select':
        if (!inp.start_box || !inp.end_box) throw new ReplyParseError(`${where} needs start_box and end_box`, raw);
        actions.push({ type: 'drag', from: box(inp.start_box, where, raw), to: box(inp.end_box, where, raw) });
        break;
      case 'scroll': {
        const d = String(inp.direction ?? '').trim().toLowerCase();
        if (!['up', 'down', 'left', 'right'].includes(d)) throw new ReplyParseError(`${where}: direction must be up, down, left or right (got ${JSON.stringify(inp.direction ?? '')})`, raw);
        actions.push({ type: 'scroll', direction: d as Direction, point: inp.start_box ? box(inp.start_box, where, raw) : null });
        break;
      }
      case 'hotkey': {
        const keys = unescapePy(String(inp.key ?? inp.hotkey ?? '')).trim();
        if (!keys) throw new ReplyParseError(`${where} names no key`, raw);
        actions.push({ type: 'hotkey', keys });
        break;
      }
      case 'type': {
        const c = contentArg(part) ?? (typeof inp.content === 'string' ? inp.content : null);
        if (c === null) throw new ReplyParseError(`${where} has no content`, raw);
        actions.push({ type: 'type', text: unescapePy(c) });
        break;
      }
      case 'wait':
        actions.push({ type: 'wait' });
        break;
      case 'finished':
      case 'call_user': {
        const c = contentArg(part) ?? (typeof inp.content === 'string' ? inp.content : '');
        actions.push({ type, content: unescapePy(c) });
        break;
      }
    }
  });
  if (actions.length === 0) throw new ReplyParseError('no action found in the reply', raw);
  return { thought, reflection, actions, ignored, raw };
}
