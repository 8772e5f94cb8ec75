// The UI-TARS-1.5 computer-use prompt and the message history sent each step.
import { describe, expect, it } from 'vitest';
import { addBoxTokens, buildMessages, renderPrompt, SYSTEM_MESSAGE, type HistoryTurn } from '../../app/agent/prompt.ts';
import type { ModelImage } from '../../app/model/backends/types.ts';

const EXPECTED = `You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task.

## Output Format
\`\`\`
Thought: ...
Action: ...
\`\`\`

## Action Space

click(start_box='<|box_start|>(x1,y1)<|box_end|>')
left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')
right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')
drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')
hotkey(key='ctrl c') # Split keys with a space and use lowercase. Also, do not use more than 3 keys in one hotkey action.
type(content='xxx') # Use escape characters \\', \\", and \\n in content part to ensure we can parse the content in normal python string format. If you want to submit your input, use \\n at the end of content.
scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left') # Show more information on the \`direction\` side.
wait() # Sleep for 5s and take a screenshot to check for any changes.
finished()
call_user() # Submit the task and call the user when the task is unsolvable, or when you need the user's help.


## Note
- Use English in \`Thought\` part.
- Write a small plan and finally summarize your next action (with its target element) in one sentence in \`Thought\` part.

## User Instruction
Open the settings and turn on dark mode
`;

const img = (i: number): ModelImage => ({ id: `step-${i}`, png: Buffer.from([i]), width: 1280, height: 800, resized: { width: 1288, height: 812 } });

describe('prompt', () => {
  it('renders the computer-use template exactly', () => {
    expect(renderPrompt('Open the settings and turn on dark mode')).toBe(EXPECTED);
  });

  it('fills language and an instruction containing $ patterns literally', () => {
    const p = renderPrompt('Type $& and $1', 'Chinese');
    expect(p).toContain('- Use Chinese in `Thought` part.');
    expect(p.endsWith('## User Instruction\nType $& and $1\n')).toBe(true);
  });

  it('re-adds box tokens to replayed replies', () => {
    expect(addBoxTokens("Action: click(start_box='(10, 20)')\n\ndrag(start_box='(1,2)', end_box='(3,4)')")).toBe(
      "Action: click(start_box='<|box_start|>(10,20)<|box_end|>')\n\ndrag(start_box='<|box_start|>(1,2)<|box_end|>', end_box='<|box_start|>(3,4)<|box_end|>')",
    );
    const already = "click(start_box='<|box_start|>(10,20)<|box_end|>')";
    expect(addBoxTokens(already)).toBe(already);
  });
});

describe('history', () => {
  const turns: HistoryTurn[] = Array.from({ length: 8 }, (_, i) => ({ screenshot: img(i + 1), reply: i < 7 ? `Thought: step ${i + 1}\nAction: click(start_box='(${i},${i})')` : undefined }));

  it('keeps the last N screenshots and every reply', () => {
    const m = buildMessages(turns, { instruction: 'task', historyImages: 5 });
    expect(m[0]).toEqual({ role: 'system', content: SYSTEM_MESSAGE });
    expect(m[1]!.role).toBe('user');
    expect(m[1]!.content).toBe(renderPrompt('task'));
    const images = m.flatMap((x) => (typeof x.content === 'string' ? [] : x.content.map((p) => (p.type === 'image' ? p.image.id : 'text'))));
    expect(images).toEqual(['step-4', 'step-5', 'step-6', 'step-7', 'step-8']);
    const replies = m.filter((x) => x.role === 'assistant').map((x) => x.content as string);
    expect(replies).toHaveLength(7);
    expect(replies[0]).toBe("Thought: step 1\nAction: click(start_box='<|box_start|>(0,0)<|box_end|>')");
    // Order: replies of evicted steps first, then image/reply pairs, ending with the current screenshot.
    expect(m.slice(2).map((x) => x.role)).toEqual(['assistant', 'assistant', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user']);
  });

  it('history 1 sends only the current screenshot; notes from the user follow their step', () => {
    const t = turns.slice(0, 3).map((x) => ({ ...x }));
    t[1]!.userNote = 'Use the blue button.';
    const m = buildMessages(t, { instruction: 'task', historyImages: 1, systemMessage: false });
    expect(m[0]!.role).toBe('user');
    const imgs = m.filter((x) => typeof x.content !== 'string');
    expect(imgs).toHaveLength(1);
    expect(m.map((x) => (typeof x.content === 'string' ? x.content.slice(0, 15) : 'IMG'))).toEqual([
      renderPrompt('task').slice(0, 15), 'Thought: step 1', 'Thought: step 2', 'Use the blue bu', 'IMG', 'Thought: step 3',
    ]);
  });
});
