// The papers' AgentNetBench protocol: the driver of the GUI-KV authors (eval/agentnetbench_eval.py), whose
// figures the KV-compression papers report; the STaR-KV authors' driver of the same name has the same
// UI-TARS-1.5 prompt, scorer, action conversion and conversation layout (compared line for line), and
// resets STaR-KV's state once per trajectory. `--prompt papers` in
// `starkv eval trajectory` builds each step's conversation as it does, and every AgentNetBench step also
// gets its score (beside the OpenCUA evaluator's, app/eval/agentnet.ts).
//
// Conversation of step k (no system message: the chat template's default one): for each earlier step h,
// its screenshot as a user message when h is among the last (image slots - 1) steps, and, when h is
// among the last 10, an assistant message "# Step h+1:\nStep h+1:\n" + the model's own reply at step h
// (closed loop over the recorded screenshots); then one user message with screenshot k and the prompt
// below (the driver's UI-TARS-1.5 prompt, verbatim, with the task's high_level_task_description).
import type { Action, Point } from '../agent/actions.ts';
import type { ChatMessage, ModelImage } from '../model/backends/types.ts';
import { keysScore, pointScore, POINTED, textSimilarity, type AnbAction, type AnbPrediction, type AnbStep } from './agentnet.ts';

/** The driver's UI-TARS-1.5 AgentNetBench prompt ({instruction}: the task). */
export const DRIVER_PROMPT_UI_TARS = `You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task.

## Output Format
You should first think about the reasoning process in the mind and then provide the user with the answer. 
The reasoning process is enclosed within <think> </think> tags
After the <think> tags, you should place final answer, which concludes your summarized thought and your action.

For example,
\`\`\`
<think>detailed reasoning content here</think>
Thought: a small plan and finally summarize your next action (with its target element) in one sentence
Action: ...
\`\`\`

## Action Space

click(point='<point>x1 y1</point>')
left_double(point='<point>x1 y1</point>')
right_single(point='<point>x1 y1</point>')
drag(start_point='<point>x1 y1</point>', end_point='<point>x2 y2</point>')
hotkey(key='ctrl c') # Split keys with a space and use lowercase. Also, do not use more than 3 keys in one hotkey action.
type(content='xxx') # Use escape characters \\', \\", and \\n in content part to ensure we can parse the content in normal python string format. If you want to submit your input, use \\n at the end of content. 
scroll(point='<point>x1 y1</point>', direction='down or up or right or left') # Show more information on the \`direction\` side.
wait() #Sleep for 5s and take a screenshot to check for any changes.
finished(content='successful|failure') # Use escape characters \\', \\", and \\n in content part to ensure we can parse the content in normal python string format.

## Output Example
Thought: Let's click ...
Action: click(point='<point>100 200</point>')

## Note
- Use English in \`Thought\` part.
- Write a small plan and finally summarize your next action (with its target element) in one sentence in \`Thought\` part.
- If you have executed several same actions (like repeatedly clicking the same point) but the screen keeps no change, please try to execute a modified action when necessary.
- finished content should be either\`successful\` or \`failure\`.

## User Instruction
{instruction}

Please generate the next move according to the screenshot and task instruction.
`;

/**
 * The conversation of step `k` as the driver builds it; `replies[h]` is the model's reply at step h.
 * `maxReplies` is the driver's 10; a persistent cache passes Infinity, so that each step's conversation
 * extends the previous one (the cache holds every earlier reply anyway).
 */
export function driverMessages(task: string, shots: ModelImage[], k: number, imageSlots: number, replies: string[], maxReplies = 10): ChatMessage[] {
  const msgs: ChatMessage[] = [];
  const withImages = Math.min(imageSlots - 1, k);
  for (let h = 0; h < k; h++) {
    if (h >= k - withImages) msgs.push({ role: 'user', content: [{ type: 'image', image: shots[h]! }] });
    if (h >= k - maxReplies) {
      if (replies[h] === undefined) throw new Error(`the papers' AgentNetBench prompt at step ${k + 1} needs the reply of step ${h + 1}`);
      msgs.push({ role: 'assistant', content: `# Step ${h + 1}:\nStep ${h + 1}:\n${replies[h]}` });
    }
  }
  msgs.push({ role: 'user', content: [{ type: 'image', image: shots[k]! }, { type: 'text', text: DRIVER_PROMPT_UI_TARS.replace('{instruction}', () => task) }] });
  return msgs;
}

// The driver's score: the first predicted action against the first recorded one, with its own rules,
// checked against its outputs in test/eval/agentnet.test.ts:
// - a type that differs from the first recorded action's is scored against the first alternative
//   option whose first action has that type, else 0;
// - points, text, keys, scroll and terminate as OpenCUA's evaluator (app/eval/agentnet.ts), except
//   that the text is compared whole (equal after lower-casing and trimming: 1) before the edit
//   distance, and there is no write + enter merge;
// - a step that scores exactly 0 takes the best of the alternative options' first actions.
// Its conversion of UI-TARS actions keeps quirks that cost points and that its figures include: a drag
// is only its dragTo (a recorded drag starts with moveTo), a scroll is only the scroll (a recorded scroll
// starts with moveTo), keys are always a hotkey with ctrl written "control", and call_user, hover and a
// scroll without a point give no prediction.

/** Our first action as the driver's prediction (none for what it cannot convert). */
export function toDriverPrediction(actions: Array<Action<Point>>, screen: { width: number; height: number }): AnbPrediction | null {
  const a = actions[0];
  if (!a) return null;
  const rel = (p: Point): [number, number] => [p.x / screen.width, p.y / screen.height];
  switch (a.type) {
    case 'click':
      return { type: 'click', value: rel(a.point) };
    case 'left_double':
      return { type: 'doubleclick', value: rel(a.point) };
    case 'right_single':
      return { type: 'rightclick', value: rel(a.point) };
    case 'drag':
      return { type: 'dragto', value: rel(a.to) };
    case 'hotkey': {
      const keys = a.keys.toLowerCase().split(/\s+/).filter(Boolean).map((k) => k.replaceAll('ctrl', 'control'));
      return keys.length ? { type: 'hotkey', value: keys } : null;
    }
    case 'type':
      return a.text ? { type: 'write', value: a.text.endsWith('\n') ? a.text.slice(0, -1) : a.text } : null;
    case 'scroll':
      return a.point ? { type: 'scroll', value: a.direction === 'up' || a.direction === 'right' ? 5 : -5 } : null;
    case 'finished':
      return { type: 'terminate', value: a.content.toLowerCase().includes('success') ? 'success' : 'failure' };
    default:
      return null; // wait, call_user, hover
  }
}

function driverEvaluate(pred: AnbPrediction, gt: AnbAction, alternatives?: AnbAction[][]): number {
  const t = pred.type.toLowerCase() === 'triple_click' ? 'tripleclick' : pred.type.toLowerCase();
  if (t !== gt.type.toLowerCase()) {
    const alt = alternatives?.find((o) => o.length > 0 && o[0]!.type.toLowerCase() === t);
    return alt ? driverEvaluate(pred, alt[0]!) : 0;
  }
  if (POINTED.has(t)) return pointScore(pred.value, gt);
  if (t === 'write') {
    const q = String(pred.value).toLowerCase().trim();
    const raw = typeof gt.params.text === 'string' ? gt.params.text : typeof gt.params.content === 'string' ? gt.params.content : '';
    const g = raw.toLowerCase().trim();
    return q === g ? 1 : textSimilarity(q, g);
  }
  if (t === 'press' || t === 'hotkey') return Array.isArray(pred.value) && Array.isArray(gt.params.keys) ? keysScore(pred.value, gt) : 0;
  if (t === 'scroll') return 1;
  if (t === 'terminate') return pred.value === (gt.params.status ?? '') ? 1 : 0;
  return 0;
}

/** The driver's score of a step for its first predicted action. */
export function driverStepScore(step: AnbStep, pred: AnbPrediction | null): { score: number; alternative: boolean } {
  const gt = step.actions[0];
  if (!pred || !gt) return { score: 0, alternative: false };
  let score = driverEvaluate(pred, gt, step.alternatives);
  let alternative = false;
  if (score === 0)
    for (const alt of step.alternatives) {
      if (!alt.length) continue;
      const s = driverEvaluate(pred, alt[0]!);
      if (s > score) {
        score = s;
        alternative = true;
      }
    }
  return { score, alternative };
}
