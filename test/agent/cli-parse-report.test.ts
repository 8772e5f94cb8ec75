// `starkv parse` logic (reply on stdin -> JSON actions in screenshot pixels) and the offline HTML report.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runParse } from '../../app/agent/parse-cli.ts';
import { renderReport } from '../../app/store/report.ts';
import { EpisodeWriter } from '../../app/store/trajectory.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'starkv-report-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('parse command', () => {
  it('prints actions in pixels of the screenshot the model saw', () => {
    const r = runParse(['--screen', '1920x1080'], "Thought: go\nAction: click(start_box='<|box_start|>(966,546)<|box_end|>')\n\ndrag(start_box='(0,0)', end_box='(1932,1092)')\n\ntype(content='hi\\n')\n\nscroll(direction='left')\n\nhotkey(key='ctrl c')\n\nfinished(content='ok')");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      actions: [
        { type: 'click', x: 960, y: 540, thought: 'go' },
        { type: 'drag', x: 0, y: 0, x2: 1919, y2: 1079, thought: 'go' },
        { type: 'type', text: 'hi\n', thought: 'go' },
        { type: 'scroll', direction: 'left', thought: 'go' },
        { type: 'hotkey', keys: 'ctrl c', thought: 'go' },
        { type: 'finished', text: 'ok', thought: 'go' },
      ],
    });
  });

  it('uses the server limits it is given', () => {
    const r = runParse(['--screen', '1920x1080', '--max-pixels', String(1280 * 28 * 28)], "Action: click(start_box='(672,378)')");
    // 1920x1080 with max_pixels 1003520 -> 1316x728 (the qwen-vl-utils default): 672/1316*1920 = 980.4
    expect(JSON.parse(r.out).actions[0]).toMatchObject({ x: 980, y: 561 });
  });

  it('exits 2 with {"error"} for a reply that does not parse or bad arguments', () => {
    expect(runParse(['--screen', '1920x1080'], 'no idea')).toEqual({ code: 2, out: '{"error":"no action found in the reply"}\n' });
    expect(runParse([], "Action: wait()").code).toBe(2);
    expect(JSON.parse(runParse(['--screen', '10x10'], "Action: wait()").out).error).toMatch(/smaller than 28/);
  });
});

describe('report', () => {
  it('draws each step with its action markers, offline', () => {
    const w = EpisodeWriter.create(root, 'report test');
    w.append('episode', { task: 'Click <OK>', backend: 'openai', destination: 'http://127.0.0.1:8000/v1', dryRun: false });
    const g = { origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: 1000, height: 500 }, sent: { width: 1000, height: 500 }, resized: { width: 1008, height: 504 }, coordSpace: 'absolute' };
    w.writeFile('step-0001.png', Buffer.from('png'));
    w.append('observation', { step: 1, file: 'step-0001.png', geometry: g, timings: { grabMs: 5, convertMs: 2, encodeMs: 4 } });
    w.append('reply', { step: 1, text: "Thought: ok\nAction: click(start_box='(252,126)')" });
    w.append('actions', { step: 1, thought: 'ok', actions: [{ model: {}, screen: { type: 'click', point: { x: 250, y: 125 } } }] });
    w.append('executed', { step: 1, index: 0, action: {} });
    w.append('end', { status: 'finished', answer: 'done', steps: 1 });
    w.close();
    const html = renderReport(w.dir);
    expect(html).toContain('<img src="step-0001.png"');
    expect(html).toContain('left:25.000%;top:25.000%');
    expect(html).toContain('Click &#60;OK&#62;');
    expect(html).toContain('<b>finished: done</b>');
    expect(html).not.toMatch(/(src|href)="https?:/);
  });
});
