// One grounding sample through the engine: UI-TARS-1.5 grounding prompt, the screenshot, one click,
// mapped from the resized image the model saw back to the original pixels, and the hit test.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../native.ts';
import type { Engine } from '../model/engine.ts';
import { decodeImage, processImage } from '../model/preprocess.ts';
import { kvBytesPerToken } from '../model/checkpoint.ts';
import { hitTest, type GroundingSample } from './dataset.ts';
import { parseReply, ReplyParseError } from '../agent/parse.ts';

const PROMPT = readFileSync(path.join(repoRoot, 'assets', 'prompts', 'grounding.txt'), 'utf8');

export function groundingPrompt(instruction: string): string {
  return PROMPT.replace('{instruction}', () => instruction).trimEnd();
}

/**
 * The papers' ScreenSpot prompt: the grounding prompt of the GUI-KV and STaR-KV authors' ScreenSpot-v2 /
 * -Pro drivers for UI-TARS-1.5 (eval/screenspot*_eval.py, GROUNDING_DOUBAO, the same text in both),
 * verbatim, its stray quote included. Their message puts the screenshot before this text.
 */
export const PAPERS_GROUNDING_PROMPT =
  "You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task. \n\n## Output Format\n\nAction: ...\n\n\n## Action Space\nclick(point='<point>x1 y1</point>'')\n\n## User Instruction\n{instruction}";

export type GroundingPromptStyle = 'standard' | 'papers';

/** The one user message of a grounding sample: ours (prompt, then screenshot) or the papers' (screenshot, then prompt). */
export function groundingMessage(instruction: string, style: GroundingPromptStyle = 'standard') {
  return style === 'papers'
    ? { role: 'user' as const, content: [{ type: 'image' as const }, { type: 'text' as const, text: PAPERS_GROUNDING_PROMPT.replace('{instruction}', () => instruction) }] }
    : { role: 'user' as const, content: [{ type: 'text' as const, text: groundingPrompt(instruction) }, { type: 'image' as const }] };
}

/** The click point of a grounding reply in model-image pixels (the agent's UI-TARS parser), or null. */
export function parseClickPoint(reply: string): [number, number] | null {
  try {
    const a = parseReply(reply).actions.find((x) => 'point' in x && x.point);
    return a && 'point' in a && a.point ? [a.point.x, a.point.y] : null;
  } catch (e) {
    if (e instanceof ReplyParseError) return null;
    throw e;
  }
}

export interface GroundingResult {
  id: string;
  method: string;
  budget: number;
  hit: boolean;
  click: [number, number] | null; // original image pixels
  reply: string;
  ms: number;
  kvBytes: number;
  fullKvBytes: number;
  promptTokens: number;
  groups: Record<string, string>;
}

export async function groundOne(engine: Engine, s: GroundingSample, method: string, budget: number, maxNewTokens = 64, style: GroundingPromptStyle = 'standard'): Promise<GroundingResult> {
  const t0 = performance.now();
  const img = processImage(await decodeImage(s.image), engine.preprocessor);
  const r = await engine.generate({
    messages: [groundingMessage(s.instruction, style)],
    images: [img],
    maxNewTokens,
    kv: method === 'full' ? undefined : { method, budget },
  });
  const reply = r.text ?? '';
  const p = parseClickPoint(reply);
  // Absolute coordinates in the smart-resized image -> original pixels (the one mapping, as in the agent).
  const click: [number, number] | null = p ? [(p[0] / img.resizedWidth) * img.originalWidth, (p[1] / img.resizedHeight) * img.originalHeight] : null;
  const perToken = kvBytesPerToken(engine.config);
  return {
    id: s.id,
    method,
    budget,
    hit: click ? hitTest(click[0], click[1], s.box) : false,
    click,
    reply,
    ms: performance.now() - t0,
    kvBytes: r.kv?.bytes ?? perToken * (r.promptTokens + Math.max(0, r.tokens.length - 1)),
    fullKvBytes: perToken * (r.promptTokens + Math.max(0, r.tokens.length - 1)),
    promptTokens: r.promptTokens,
    groups: s.groups,
  };
}
