import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { agentNetScore, agentNetStepScore, editDistance, toAgentNetPredictions, toRelativeAction, type AnbAction, type AnbPrediction } from '../../app/eval/agentnet.ts';
import { driverMessages, driverStepScore, toDriverPrediction, DRIVER_PROMPT_UI_TARS } from '../../app/eval/agentnet-driver.ts';
import type { Action, Point } from '../../app/agent/actions.ts';
import type { ModelImage } from '../../app/model/backends/types.ts';
import { loadScreenshot, loadTrajectories, recordedAction, stepMessages } from '../../app/eval/trajectory.ts';
import { writeAgentNetFixture } from '../../app/eval/fixture.ts';
import { PAPERS_GROUNDING_PROMPT } from '../../app/eval/ground.ts';
import { readResults } from '../../app/eval/results.ts';
import { ROOT, TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

const dir = path.join(TMP, 'eval-agentnet');
beforeAll(() => mkdirSync(dir, { recursive: true }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  gt: AnbAction[];
  pred: AnbPrediction[];
  total: number;
  actions: Record<string, number>;
}
const cases: Case[] = JSON.parse(readFileSync(path.join(ROOT, 'test/golden-data/agentnet/evaluator-cases.json'), 'utf8')).cases;

describe("AgentNetBench score against the authors' evaluator", () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const r = agentNetScore(structuredClone(c.gt), c.pred);
    expect(r.total).toBeCloseTo(c.total, 12);
    expect(Object.keys(r.actions).sort()).toEqual(Object.keys(c.actions).sort());
    for (const [t, v] of Object.entries(c.actions)) expect(r.actions[t]).toBeCloseTo(v, 12);
  });
  it('covers every rule: the table holds partial scores, zeros and full marks', () => {
    expect(cases.length).toBe(30);
    expect(cases.some((c) => c.total > 0 && c.total < 1)).toBe(true);
    expect(cases.filter((c) => c.total === 0).length).toBeGreaterThan(4);
  });
  it('edit distance over code points', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('😀a', 'a')).toBe(1);
  });
  it('a step recorded without actions scores 0 for both scorers (and shows as a wait in the history)', () => {
    const step = { actions: [], alternatives: [] };
    expect(agentNetStepScore(step, [{ type: 'click', value: [0.5, 0.5] }]).score).toBe(0);
    expect(driverStepScore(step, { type: 'click', value: [0.5, 0.5] }).score).toBe(0);
    expect(toRelativeAction([])).toEqual({ type: 'wait' });
  });
  it('an alternative option scores the step when it beats the recorded actions', () => {
    const click = (x: number, y: number): AnbAction => ({ type: 'click', params: { position: { x, y } } });
    const step = { actions: [click(0.2, 0.2)], alternatives: [[click(0.8, 0.8)], [click(0.5, 0.5)]] };
    expect(agentNetStepScore(step, [{ type: 'click', value: [0.5, 0.5] }])).toEqual({ score: 1, alternative: true });
    expect(agentNetStepScore(step, [{ type: 'click', value: [0.2, 0.2] }])).toEqual({ score: 1, alternative: false });
    expect(agentNetStepScore(step, [{ type: 'write', value: 'x' }])).toEqual({ score: 0, alternative: false });
  });
});

interface DriverData {
  prompt_sha256: { agentnetbench_ui_tars: string; screenspot_ui_tars: string };
  cases: Array<{ name: string; gt: AnbAction[]; alternatives: AnbAction[][]; pred: AnbPrediction[]; score: number; alternative: boolean }>;
  conversions: Array<{ action: Action<Point>; predictions: AnbPrediction[] }>;
}
const driver: DriverData = JSON.parse(readFileSync(path.join(ROOT, 'test/golden-data/agentnet/driver-cases.json'), 'utf8'));

describe("the papers' AgentNetBench driver (GUI-KV / STaR-KV evaluation) against its own outputs", () => {
  it.each(driver.cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const r = driverStepScore({ actions: c.gt, alternatives: c.alternatives }, c.pred[0] ?? null);
    expect(r.score).toBeCloseTo(c.score, 12);
    expect(r.alternative).toBe(c.alternative);
  });
  it.each(driver.conversions.map((c, i) => [`${i}: ${c.action.type}`, c] as const))('converts %s as the driver does (its first prediction)', (_, c) => {
    expect(toDriverPrediction([c.action], { width: 1000, height: 500 })).toEqual(c.predictions[0] ?? null);
  });
  it("our copies of the drivers' prompts are their text byte for byte", () => {
    const sha = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
    expect(sha(DRIVER_PROMPT_UI_TARS)).toBe(driver.prompt_sha256.agentnetbench_ui_tars);
    expect(sha(PAPERS_GROUNDING_PROMPT)).toBe(driver.prompt_sha256.screenspot_ui_tars);
  });
  it('builds the conversation as the driver: last 4 screenshots, last 10 replies, the prompt with the task last', () => {
    const img = (i: number): ModelImage => ({ id: `s${i}`, png: Buffer.alloc(0), width: 8, height: 8, rgb: new Uint8Array(0), resized: { width: 28, height: 28 } });
    const shots = Array.from({ length: 13 }, (_, i) => img(i));
    const replies = shots.map((_, i) => `Action: click(point='<point>${i} ${i}</point>')`);
    const m = driverMessages('Book a flight', shots, 12, 5, replies);
    const roles = m.map((x) => (x.role === 'user' ? `u${(x.content as Array<{ image?: ModelImage }>)[0]!.image!.id}` : 'a'));
    // steps 1-12 before step 13: replies of steps 3-12 (the last 10), screenshots of steps 9-12 (5 slots - 1)
    expect(roles).toEqual(['a', 'a', 'a', 'a', 'a', 'a', 'us8', 'a', 'us9', 'a', 'us10', 'a', 'us11', 'a', 'us12']);
    expect(m[0]!.content).toBe("# Step 3:\nStep 3:\nAction: click(point='<point>2 2</point>')");
    const last = m.at(-1)!.content as Array<{ type: string; text?: string }>;
    expect(last.map((p) => p.type)).toEqual(['image', 'text']);
    expect(last[1]!.text).toBe(DRIVER_PROMPT_UI_TARS.replace('{instruction}', 'Book a flight'));
    expect(last[1]!.text).toContain('## User Instruction\nBook a flight\n\nPlease generate the next move');
    expect(m.some((x) => x.role === 'system')).toBe(false);
    expect(driverMessages('t', shots, 0, 5, [])).toHaveLength(1);
    // A persistent cache: every earlier reply, so that each step extends the previous conversation.
    expect(driverMessages('t', shots, 12, 5, replies, Infinity).filter((x) => x.role === 'assistant')).toHaveLength(12);
    expect(() => driverMessages('t', shots, 2, 5, ['only one'])).toThrow(/step 3 needs the reply of step 2/);
  });
});

describe('our actions as the evaluator reads them', () => {
  const screen = { width: 1000, height: 500 };
  it('points become relative; drags, scrolls, keys, text and the end map to pyautogui', () => {
    expect(
      toAgentNetPredictions(
        [
          { type: 'left_double', point: { x: 100, y: 50 } },
          { type: 'drag', from: { x: 0, y: 0 }, to: { x: 500, y: 250 } },
          { type: 'scroll', direction: 'down', point: null },
          { type: 'scroll', direction: 'left', point: { x: 250, y: 100 } },
          { type: 'hotkey', keys: 'cmd c' },
          { type: 'hotkey', keys: 'enter' },
          { type: 'type', text: 'hi\n' },
          { type: 'finished', content: 'done' },
          { type: 'call_user', content: '?' },
        ],
        screen,
      ),
    ).toEqual([
      { type: 'doubleClick', value: [0.1, 0.1] },
      { type: 'moveTo', value: [0, 0] },
      { type: 'dragTo', value: [0.5, 0.5] },
      { type: 'moveTo', value: [0.5, 0.5] },
      { type: 'scroll', value: -5 },
      { type: 'moveTo', value: [0.25, 0.2] },
      { type: 'hscroll', value: -5 },
      { type: 'hotkey', value: ['ctrl', 'c'] },
      { type: 'press', value: ['enter'] },
      { type: 'write', value: 'hi\n' },
      { type: 'terminate', value: 'success' },
      { type: 'terminate', value: 'failure' },
    ]);
  });
  it('a typed line with enter scores against a recorded write + press enter', () => {
    const gt: AnbAction[] = [
      { type: 'write', params: { text: 'SPOTIFY' } },
      { type: 'press', params: { keys: ['enter'] } },
    ];
    expect(agentNetScore(gt, toAgentNetPredictions([{ type: 'type', text: 'spotify\n' }], screen)).total).toBe(1);
  });
});

// An AgentNetBench folder as its README lays it out: task files, screenshots in images/.
async function writeAgentNetFolder(root: string): Promise<void> {
  mkdirSync(path.join(root, 'images'), { recursive: true });
  const [W, H] = [336, 224];
  for (let k = 0; k < 4; k++) {
    const data = Buffer.alloc(W * H * 3, 230 - 20 * k);
    await sharp(data, { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(root, 'images', `t1_${k}.png`));
  }
  // The scripted model answers click(15,26) on the 336x224 image: (15/336, 26/224) relative.
  const [cx, cy] = [15 / 336, 26 / 224];
  const pt = (type: string, x: number, y: number, bbox?: number[]) => ({ type, params: { position: { x, y } }, ...(bbox ? { metadata: { bboxes: [{ category_id: 1, rel_bbox: bbox }] } } : {}) });
  const task = {
    task_id: 't1',
    user_task_description: 'search for the weather',
    high_level_task_description: 'Open the browser and search for the weather in Paris.',
    meta_info: { system: 'Windows', screen_resolution: { width: W, height: H } },
    steps: [
      // 1: inside the recorded box -> 1
      { step_num: 0, image: 't1_0.png', action: 'pyautogui.click(...)', ground_truth_actions: [pt('click', 0.06, 0.12, [0.02, 0.08, 0.1, 0.08])], alternative_options: [] },
      // 2: 0.02 right of the recorded point, no box -> exp(-120 (0.02 - 0.01 sqrt 2))
      { step_num: 1, image: 't1_1.png', ground_truth_actions: [pt('click', cx + 0.02, cy)] },
      // 3: a write + enter was recorded -> 0, but an alternative click at the point -> 1
      {
        step_num: 2,
        image: 't1_2.png',
        ground_truth_actions: [
          { type: 'write', params: { text: 'weather paris' } },
          { type: 'press', params: { keys: ['enter'] } },
        ],
        alternative_options: [[pt('click', cx, cy)]],
      },
      // 4: terminate -> 0 for a click
      { step_num: 3, image: 't1_3.png', ground_truth_actions: [{ type: 'terminate', params: { status: 'success' } }] },
    ],
  };
  writeFileSync(path.join(root, 't1.json'), JSON.stringify(task, null, 2));
}

describe('AgentNetBench task files as trajectories', () => {
  it('reads the task, screenshots in images/, the history in screenshot pixels', async () => {
    const data = path.join(dir, 'read');
    await writeAgentNetFolder(data);
    const [ep] = loadTrajectories(data);
    expect(ep!.id).toBe('t1');
    expect(ep!.task).toBe('Open the browser and search for the weather in Paris.');
    expect(ep!.platform).toBe('Windows');
    expect(ep!.steps.map((s) => s.screenshot)).toEqual([0, 1, 2, 3].map((k) => path.join('images', `t1_${k}.png`)));
    expect(ep!.steps.map((s) => s.action.type)).toEqual(['click', 'click', 'type', 'finished']);
    expect(ep!.steps[2]!.action).toEqual({ type: 'type', text: 'weather paris\n' });
    // The recorded first step appears in step 2's prompt at 0.06 x 336, 0.12 x 224 of the image.
    const img = { id: 's', png: Buffer.alloc(0), width: 336, height: 224, rgb: new Uint8Array(0), resized: { width: 336, height: 224 } };
    const msgs = JSON.stringify(stepMessages(ep!, [img, img], 1, 5));
    expect(msgs).toContain("Action: click(start_box='<|box_start|>(20,27)<|box_end|>')");
  });
  it("the fixture's recorded actions, read back as ours, score full marks against themselves", async () => {
    const data = path.join(dir, 'fixture');
    expect(await writeAgentNetFixture(data, 2, 6)).toBe(2);
    const eps = loadTrajectories(data);
    expect(eps.map((e) => e.steps.map((s) => s.action.type))).toEqual(Array(2).fill(['click', 'type', 'hotkey', 'scroll', 'drag', 'finished']));
    const screen = { width: 448, height: 280 };
    for (const ep of eps)
      ep.steps.forEach((s, k) => {
        const ours = recordedAction(ep, k, screen);
        expect(agentNetStepScore(s.agentnet!, toAgentNetPredictions([ours], screen)).score, `${ep.id} step ${k} (${ours.type})`).toBeCloseTo(1, 12);
      });
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'eval', 'fixture', path.join(dir, 'fixture-cli'), '--agentnet', '--n', '1'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote 1 AgentNetBench tasks/);
    expect(loadTrajectories(path.join(dir, 'fixture-cli'))).toHaveLength(1);
  });
  it('names the task file, the field and the missing screenshot', async () => {
    const bad = path.join(dir, 'bad');
    mkdirSync(path.join(bad, 'images'), { recursive: true });
    const base = { task_id: 'x', high_level_task_description: 'do it', steps: [{ image: 'x_0.png', ground_truth_actions: [{ type: 'click', params: { position: { x: 0.5 } } }] }] };
    writeFileSync(path.join(bad, 'x.json'), JSON.stringify(base));
    expect(() => loadTrajectories(bad)).toThrow(/x\.json: AgentNetBench task: field 'steps\.0\.ground_truth_actions\.0\.params\.position': click needs a position/);
    base.steps[0]!.ground_truth_actions[0]!.params.position = { x: 0.5, y: 0.5 } as { x: number };
    writeFileSync(path.join(bad, 'x.json'), JSON.stringify(base));
    expect(() => loadTrajectories(bad)).toThrow(/task x: screenshot 'x_0\.png' not found in .*images/);
    writeFileSync(path.join(bad, 'x.json'), JSON.stringify({ ...base, high_level_task_description: undefined }));
    writeFileSync(path.join(bad, 'images', 'x_0.png'), await sharp({ create: { width: 28, height: 28, channels: 3, background: '#fff' } }).png().toBuffer());
    expect(() => loadTrajectories(bad)).toThrow(/task x: no high_level_task_description/);
    writeFileSync(path.join(bad, 'images', 'x_1.png'), 'not a png');
    await expect(loadScreenshot(path.join(bad, 'images', 'x_1.png'), 's', { minPixels: 3136, maxPixels: 200704 })).rejects.toThrow(/x_1\.png: not a readable image/);
  });

  it('starkv eval trajectory scores each step as the benchmark does and reports the score', async () => {
    const model = writeTinyRealVocab(path.join(dir, 'scripted'), 22, "Action: click(start_box='(15,26)')");
    const data = path.join(dir, 'data');
    await writeAgentNetFolder(data);
    const out = path.join(dir, 'run');
    const args = ['bin/starkv.js', 'eval', 'trajectory', '--model', model, '--data', data, '--methods', 'starkv', '--budgets', '20', '--max-new-tokens', '24', '--out', out, '--threads', '1'];
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rows = readResults(path.join(out, 'results.jsonl')).sort((a, b) => a.id.localeCompare(b.id));
    expect(rows.map((x) => x.id)).toEqual(['t1#0', 't1#1', 't1#2', 't1#3']);
    for (const x of rows) expect(x.reply).toMatch(/click\(start_box='\(15,26\)'\)/);
    const near = Math.exp(-120 * (0.02 - 0.01 * Math.SQRT2));
    expect(rows.map((x) => x.score)).toEqual([1, expect.closeTo(near, 9), 1, 0]);
    expect(rows.map((x) => x.hit)).toEqual([true, false, true, false]);
    expect(rows.map((x) => x.alternative)).toEqual([false, false, true, false]);
    expect(rows.map((x) => x.groups)).toEqual(['click', 'click', 'type', 'finished'].map((action) => ({ action, platform: 'Windows' })));
    const md = readFileSync(path.join(out, 'report.md'), 'utf8');
    const score = (100 * (2 + near)) / 4;
    expect(md).toContain('| AgentNetBench score |');
    expect(md).toMatch(/^4 results of scripted \(qwen2_5_vl, \d+ layers, [\d.]+B parameters, BF16; device cpu\)\./m);
    // per-group columns hold the group's AgentNetBench score: click steps 1 and e^-0.70
    expect(md).toContain(`| ${(50 * (1 + near)).toFixed(1)}% (2) |`);
    expect(md).toMatch(new RegExp(`\\| starkv \\| 20 \\| 4 \\| 50\\.0% \\| ${score.toFixed(1).replace('.', '\\.')}% \\|`));
    expect(existsSync(path.join(out, 'score.png'))).toBe(true);
    // The papers' driver: a write step takes the first alternative of the predicted type, without
    // counting it as an alternative match; a terminate step gets 0 for a click.
    expect(rows.map((x) => x.driverScore)).toEqual([1, expect.closeTo(near, 9), 1, 0]);
    expect(rows.map((x) => x.driverAlternative)).toEqual([false, false, false, false]);
    expect(md).toContain("| papers' driver score |");

    // The papers' protocol: the driver's prompt and closed-loop history, re-prefilled every step.
    const out2 = path.join(dir, 'run-papers');
    const args2 = [...args.slice(0, args.indexOf('--out')), '--prompt', 'papers', '--protocol', 'reference', '--out', out2, '--threads', '1'];
    const r2 = spawnSync(process.execPath, args2, { cwd: ROOT, encoding: 'utf8' });
    expect(r2.status, r2.stderr).toBe(0);
    const rows2 = readResults(path.join(out2, 'results.jsonl'));
    expect(rows2).toHaveLength(4);
    for (const x of rows2) expect(typeof x.driverScore).toBe('number');
    const bad = spawnSync(process.execPath, [...args.slice(0, args.indexOf('--out')), '--prompt', 'paper', '--out', out2], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(2); // a bad command line
    expect(bad.stderr).toMatch(/--prompt 'paper' must be one of standard, papers/);
  });
  it("refuses the papers' prompt for data that is not AgentNetBench", async () => {
    const model = writeTinyRealVocab(path.join(dir, 'scripted'), 22, "Action: click(start_box='(15,26)')");
    const data = path.join(dir, 'ours');
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(data, 'a.png'), await sharp({ create: { width: 56, height: 56, channels: 3, background: '#fff' } }).png().toBuffer());
    writeFileSync(path.join(data, 'e.jsonl'), JSON.stringify({ id: 'e1', task: 'x', steps: [{ screenshot: 'a.png', action: { type: 'wait' } }] }) + '\n');
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'eval', 'trajectory', '--model', model, '--data', data, '--methods', 'full', '--prompt', 'papers', '--out', path.join(dir, 'run-ours')], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--prompt papers is the AgentNetBench driver's prompt; episode e1 is not an AgentNetBench task/);
  });
});
