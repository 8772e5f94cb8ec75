// `starkv parse --screen WxH [--max-pixels N] [--min-pixels N] [--coords absolute|relative1000]`: one model
// reply on stdin -> JSON actions in pixels of the WxH screenshot (exit 2 with {"error"} when it does not parse).
// The command file only has to call runParse (the dispatcher lists its commands in app/cli/main.ts).
import { parseArgs } from 'node:util';
import type { ScreenAction } from './actions.ts';
import { mapAction, planImage, UITARS_LIMITS, type ImageGeometry } from './coords.ts';
import { parseNumberOpt } from '../cli/format.ts';
import { parseReply, ReplyParseError } from './parse.ts';

export interface ParsedActionJson {
  type: string;
  x?: number;
  y?: number;
  x2?: number;
  y2?: number;
  text?: string;
  keys?: string;
  direction?: string;
  thought: string;
}

function toJson(a: ScreenAction, thought: string): ParsedActionJson {
  switch (a.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      return { type: a.type, x: a.point.x, y: a.point.y, thought };
    case 'drag':
      return { type: a.type, x: a.from.x, y: a.from.y, x2: a.to.x, y2: a.to.y, thought };
    case 'scroll':
      return { type: a.type, ...(a.point ? { x: a.point.x, y: a.point.y } : {}), direction: a.direction, thought };
    case 'hotkey':
      return { type: a.type, keys: a.keys, thought };
    case 'type':
      return { type: a.type, text: a.text, thought };
    case 'finished':
    case 'call_user':
      return { type: a.type, text: a.content, thought };
    default:
      return { type: a.type, thought };
  }
}

export const PARSE_USAGE = `usage: starkv parse --screen WxH [--max-pixels N] [--min-pixels N] [--coords absolute|relative1000] [--json] < reply.txt
  Reads one UI-TARS reply ("Thought: ...\\nAction: ...") on standard input and prints its actions as JSON,
  in pixels of the WxH screenshot the model saw (before smart_resize). Exit 2 with {"error": ...} when it
  does not parse.
`;

/** Returns the exit code and the text for stdout. */
export function runParse(argv: string[], input: string): { code: number; out: string } {
  const err = (m: string, code = 2) => ({ code, out: JSON.stringify({ error: m }) + '\n' });
  let values: Record<string, string | undefined>;
  try {
    // --json is accepted for symmetry with the other commands: JSON is the only output.
    ({ values } = parseArgs({ args: argv, options: { screen: { type: 'string' }, 'max-pixels': { type: 'string' }, 'min-pixels': { type: 'string' }, coords: { type: 'string' }, json: { type: 'boolean' } } }) as unknown as { values: Record<string, string | undefined> });
  } catch (e) {
    return err((e as Error).message);
  }
  const m = /^(\d+)x(\d+)$/.exec(values.screen ?? '');
  if (!m) return err('--screen WxH is required (the size of the screenshot the model saw, before resizing)');
  const screen = { width: Number(m[1]), height: Number(m[2]) };
  const coords = values.coords ?? 'absolute';
  if (coords !== 'absolute' && coords !== 'relative1000') return err('--coords must be absolute or relative1000');
  let g: ImageGeometry;
  try {
    const px = (k: 'min-pixels' | 'max-pixels') => parseNumberOpt(values[k], k, { int: true, min: 1 });
    const limits = { minPixels: px('min-pixels') ?? UITARS_LIMITS.minPixels, maxPixels: px('max-pixels') ?? UITARS_LIMITS.maxPixels };
    g = { origin: { x: 0, y: 0 }, injectorScale: 1, capture: screen, ...planImage(screen, limits), coordSpace: coords };
  } catch (e) {
    return err((e as Error).message);
  }
  try {
    const r = parseReply(input);
    return { code: 0, out: JSON.stringify({ actions: r.actions.map((a) => toJson(mapAction(a, g).action, r.thought)) }) + '\n' };
  } catch (e) {
    if (e instanceof ReplyParseError) return err(e.message);
    throw e;
  }
}
