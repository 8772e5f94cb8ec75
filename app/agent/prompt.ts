// The UI-TARS-1.5 computer-use prompt and the conversation sent each step: all text history, the last N
// screenshots (older screenshots are dropped whole; their replies stay).
import type { ChatMessage, ContentPart, ModelImage } from '../model/backends/types.ts';

/** Action space of the desktop app's 1.5 prompt (COMPUTER_USE with call_user), verbatim. */
export const ACTION_SPACE_V1_5 = `click(start_box='<|box_start|>(x1,y1)<|box_end|>')
left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')
right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')
drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')
hotkey(key='ctrl c') # Split keys with a space and use lowercase. Also, do not use more than 3 keys in one hotkey action.
type(content='xxx') # Use escape characters \\', \\", and \\n in content part to ensure we can parse the content in normal python string format. If you want to submit your input, use \\n at the end of content.
scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left') # Show more information on the \`direction\` side.
wait() # Sleep for 5s and take a screenshot to check for any changes.
finished()
call_user() # Submit the task and call the user when the task is unsolvable, or when you need the user's help.`;

/** The computer-use template (UI-TARS codes/prompts.py layout) with {language} and {instruction}. */
export const COMPUTER_USE_TEMPLATE = `You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task.

## Output Format
\`\`\`
Thought: ...
Action: ...
\`\`\`

## Action Space

${ACTION_SPACE_V1_5}


## Note
- Use {language} in \`Thought\` part.
- Write a small plan and finally summarize your next action (with its target element) in one sentence in \`Thought\` part.

## User Instruction
{instruction}
`;

/** The system message of the OSWorld 1.5 runner and README_deploy. */
export const SYSTEM_MESSAGE = 'You are a helpful assistant.';

export function renderPrompt(instruction: string, language = 'English'): string {
  return COMPUTER_USE_TEMPLATE.replace('{language}', () => language).replace('{instruction}', () => instruction);
}

/** One step of history as the prompt needs it. */
export interface HistoryTurn {
  screenshot: ModelImage;
  /** The model's reply for this step (box tokens re-added), absent for the current step. */
  reply?: string;
  /** Text the user gave after this step (answer to call_user, or a note from the agent host). */
  userNote?: string;
}

/** Re-wraps bare `(x,y)` boxes of a reply in box tokens, as README_deploy's add_box_token does. */
export function addBoxTokens(reply: string): string {
  return reply.replace(/((?:start|end)_box\s*=\s*['"])\s*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)\s*(['"])/g, "$1<|box_start|>($2,$3)<|box_end|>$4");
}

export interface BuildOptions {
  instruction: string;
  language?: string;
  /** Screenshots kept (the last N, the current one included). */
  historyImages: number;
  /** Send the "You are a helpful assistant." system message first (default true). */
  systemMessage?: boolean;
}

/** [system], user(prompt), then per step: user(screenshot, if within the window), assistant(reply), [user(note)]. */
export function buildMessages(turns: HistoryTurn[], opts: BuildOptions): ChatMessage[] {
  const msgs: ChatMessage[] = [];
  if (opts.systemMessage !== false) msgs.push({ role: 'system', content: SYSTEM_MESSAGE });
  msgs.push({ role: 'user', content: renderPrompt(opts.instruction, opts.language) });
  const firstImage = Math.max(0, turns.length - Math.max(1, opts.historyImages));
  turns.forEach((t, i) => {
    if (i >= firstImage) {
      const parts: ContentPart[] = [{ type: 'image', image: t.screenshot }];
      msgs.push({ role: 'user', content: parts });
    }
    if (t.reply !== undefined) msgs.push({ role: 'assistant', content: addBoxTokens(t.reply) });
    if (t.userNote) msgs.push({ role: 'user', content: t.userNote });
  });
  return msgs;
}
