import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hitTest, loadGroundingDataset } from '../../app/eval/dataset.ts';
import { groundingMessage, groundingPrompt, parseClickPoint, PAPERS_GROUNDING_PROMPT } from '../../app/eval/ground.ts';
import sharp from 'sharp';
import { readResults, ResultWriter, summarise } from '../../app/eval/results.ts';
import { writeReport } from '../../app/eval/report.ts';
import { writeGroundingFixture } from '../../app/eval/fixture.ts';
import { ROOT, TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

const dir = path.join(TMP, 'eval');
beforeAll(() => mkdirSync(dir, { recursive: true }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hit test and reply parsing', () => {
  const box: [number, number, number, number] = [10, 20, 30, 40];
  it('counts clicks on the edges and corners as hits, and just outside as misses', () => {
    for (const [x, y] of [[10, 20], [30, 40], [10, 40], [30, 20], [20, 30]]) expect(hitTest(x!, y!, box)).toBe(true);
    for (const [x, y] of [[9.999, 30], [30.001, 30], [20, 19.999], [20, 40.001]]) expect(hitTest(x!, y!, box)).toBe(false);
  });
  it('reads the click formats UI-TARS and servers produce', () => {
    expect(parseClickPoint("Action: click(start_box='<|box_start|>(123,45)<|box_end|>')")).toEqual([123, 45]);
    expect(parseClickPoint("Action: click(start_box='(12, 34)')")).toEqual([12, 34]);
    expect(parseClickPoint("Action: click(point='<point>7 8</point>')")).toEqual([7, 8]);
    expect(parseClickPoint("Action: click(start_box='[10, 20, 30, 40]')")).toEqual([20, 30]);
    expect(parseClickPoint('Thought: (1,1) is wrong\nAction：click(start_box=\'(5,6)\')')).toEqual([5, 6]);
    expect(parseClickPoint('I cannot find it')).toBeNull();
  });
});

describe('dataset layouts', () => {
  it('reads ScreenSpot-v2 (x,y,w,h) and ScreenSpot-Pro (x1,y1,x2,y2) folders', async () => {
    const v2 = path.join(dir, 'v2');
    await writeGroundingFixture(v2, 4);
    const s = loadGroundingDataset(v2);
    expect(s.length).toBe(4);
    const ann = JSON.parse(readFileSync(path.join(v2, 'screenspot_desktop_v2.json'), 'utf8'))[0];
    const first = s.find((x) => x.id === 'screenspot_desktop_v2#0')!;
    expect(first.box).toEqual([ann.bbox[0], ann.bbox[1], ann.bbox[0] + ann.bbox[2], ann.bbox[1] + ann.bbox[3]]);
    expect(first.groups).toMatchObject({ platform: 'desktop_v2', source: 'synthetic' });
    const pro = path.join(dir, 'pro');
    mkdirSync(path.join(pro, 'annotations'), { recursive: true });
    mkdirSync(path.join(pro, 'images'), { recursive: true });
    writeFileSync(path.join(pro, 'images', 'a.png'), readFileSync(first.image));
    writeFileSync(path.join(pro, 'annotations', 'vscode_macos.json'), JSON.stringify([{ img_filename: 'a.png', bbox: [1, 2, 3, 4], instruction: 'x', ui_type: 'icon', platform: 'macos', application: 'vscode', group: 'Dev' }]));
    const p = loadGroundingDataset(pro);
    expect(p[0]!.box).toEqual([1, 2, 3, 4]);
    expect(p[0]!.groups).toEqual({ platform: 'macos', ui_type: 'icon', application: 'vscode', group: 'Dev' });
  });
  it('names the file and annotation that is wrong', () => {
    const bad = path.join(dir, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(path.join(bad, 'screenspot_web.json'), JSON.stringify([{ img_filename: 'nope.png', bbox: [1, 2, 3, 4], instruction: 'x' }]));
    expect(() => loadGroundingDataset(bad)).toThrow(/screenspot_web\.json: annotation 0: image 'nope\.png' not found/);
    writeFileSync(path.join(bad, 'screenspot_web.json'), JSON.stringify([{ img_filename: 'nope.png', bbox: [1, 2], instruction: 'x' }]));
    expect(() => loadGroundingDataset(bad)).toThrow(/annotation 0: field 'bbox'/);
  });
});

describe('results and report', () => {
  const rows = [
    { id: 'a', method: 'starkv', budget: 20, hit: true, ms: 10, kvBytes: 100, fullKvBytes: 500, groups: { platform: 'web' } },
    { id: 'b', method: 'starkv', budget: 20, hit: false, ms: 30, kvBytes: 100, fullKvBytes: 500, groups: { platform: 'desktop' } },
    { id: 'a', method: 'full', budget: 100, hit: true, ms: 20, kvBytes: 500, fullKvBytes: 500, groups: { platform: 'web' } },
  ];
  it('summarises per method x budget and per group', () => {
    const cells = summarise(rows);
    const s = cells.find((c) => c.method === 'starkv')!;
    expect(s.accuracy).toBe(0.5);
    expect(s.msPerSample).toBe(20);
    expect(s.groups.platform).toEqual({ web: { n: 1, accuracy: 1 }, desktop: { n: 1, accuracy: 0 } });
  });
  it('survives a torn last line and rebuilds the same report from the JSONL', async () => {
    const out = path.join(dir, 'report');
    mkdirSync(out, { recursive: true });
    const w = new ResultWriter(path.join(out, 'results.jsonl'));
    for (const r of rows) w.append(r);
    w.close();
    writeFileSync(path.join(out, 'results.jsonl'), readFileSync(path.join(out, 'results.jsonl'), 'utf8') + '{"id":"c","meth');
    expect(readResults(path.join(out, 'results.jsonl')).length).toBe(3);
    const f1 = await writeReport(out);
    const first = [f1.html, f1.markdown, f1.summary, ...f1.plots].map((f) => readFileSync(f));
    const f2 = await writeReport(out);
    const second = [f2.html, f2.markdown, f2.summary, ...f2.plots].map((f) => readFileSync(f));
    expect(second).toEqual(first);
    expect(readFileSync(f1.markdown, 'utf8')).toContain('| starkv | 20 | 2 | 50.0% |');
    // A writer opened on the torn file starts on a fresh line.
    const w2 = new ResultWriter(path.join(out, 'results.jsonl'));
    w2.append({ ...rows[0]!, id: 'd' });
    w2.close();
    expect(readResults(path.join(out, 'results.jsonl')).map((r) => r.id)).toEqual(['a', 'b', 'a', 'd']);
  });
});

describe('starkv eval grounding end to end on a tiny checkpoint', () => {
  it('runs the fixture, resumes after a kill, and the report equals a rebuild from JSONL', async () => {
    const model = writeTinyRealVocab(path.join(dir, 'model'));
    const data = path.join(dir, 'fixture');
    await writeGroundingFixture(data, 4);
    const out = path.join(dir, 'run');
    const args = ['bin/starkv.js', 'eval', 'grounding', '--model', model, '--data', data, '--methods', 'starkv,full', '--budgets', '20', '--max-new-tokens', '6', '--out', out, '--threads', '1'];
    // Kill the first run as soon as it has written one result.
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'ignore' });
      const t = setInterval(() => {
        try {
          if (readResults(path.join(out, 'results.jsonl')).length >= 1) child.kill('SIGKILL');
        } catch {
          /* not yet */
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(t);
        resolve();
      });
    });
    const partial = readResults(path.join(out, 'results.jsonl')).length;
    expect(partial).toBeGreaterThanOrEqual(1);
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rows = readResults(path.join(out, 'results.jsonl'));
    expect(rows.length).toBe(8); // 4 samples x (starkv at 20 %, full)
    expect(new Set(rows.map((x) => `${x.method}|${x.budget}|${x.id}`)).size).toBe(8);
    const compressed = rows.filter((x) => x.method === 'starkv');
    for (const x of compressed) expect(x.kvBytes).toBeLessThan(x.fullKvBytes);
    const html = readFileSync(path.join(out, 'report.html'));
    const rb = spawnSync(process.execPath, ['bin/starkv.js', 'eval', 'report', out], { cwd: ROOT, encoding: 'utf8' });
    expect(rb.status, rb.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'report.html'))).toEqual(html);
    // Resuming the folder with other settings would mix results made two ways: refused before the model
    // loads, naming what differs; nothing is written.
    const other = spawnSync(process.execPath, args.map((a) => (a === '6' ? '7' : a)), { cwd: ROOT, encoding: 'utf8' });
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/holds results made another way \(maxNewTokens: 6 there, 7 now\)/);
    expect(readResults(path.join(out, 'results.jsonl')).length).toBe(8);
    // more budgets into the same folder is a resume that adds cells
    const more = spawnSync(process.execPath, args.map((a) => (a === '20' ? '20,40' : a)), { cwd: ROOT, encoding: 'utf8' });
    expect(more.status, more.stderr).toBe(0);
    expect(readResults(path.join(out, 'results.jsonl')).length).toBe(12);
  });
});

describe("the papers' ScreenSpot prompt (--prompt papers)", () => {
  it('puts the screenshot first and asks for click(point=...), as their drivers do', () => {
    expect(groundingMessage('the OK button', 'papers')).toEqual({
      role: 'user',
      content: [{ type: 'image' }, { type: 'text', text: PAPERS_GROUNDING_PROMPT.replace('{instruction}', 'the OK button') }],
    });
    expect(PAPERS_GROUNDING_PROMPT).toContain("click(point='<point>x1 y1</point>'')\n\n## User Instruction\n{instruction}");
    expect(groundingMessage('the OK button')).toEqual({ role: 'user', content: [{ type: 'text', text: groundingPrompt('the OK button') }, { type: 'image' }] });
  });
  it('runs end to end and scores the clicks (point replies are read as in the parsing test above)', async () => {
    // A checkpoint that always clicks (15, 26) of the 336x224 screenshot (a bigram chain cannot say the
    // <point> form, whose tag repeats a token).
    const model = writeTinyRealVocab(path.join(dir, 'point-model'), 22, "Action: click(start_box='(15,26)')");
    const data = path.join(dir, 'point-data');
    mkdirSync(path.join(data, 'screenspotv2_image'), { recursive: true });
    const png = await sharp({ create: { width: 336, height: 224, channels: 3, background: '#eee' } }).png().toBuffer();
    for (const f of ['a.png', 'b.png']) writeFileSync(path.join(data, 'screenspotv2_image', f), png);
    const items = [
      { img_filename: 'a.png', bbox: [10, 20, 10, 10], instruction: 'the icon at the top left', data_type: 'icon', data_source: 'test' },
      { img_filename: 'b.png', bbox: [200, 100, 20, 20], instruction: 'the button in the middle', data_type: 'text', data_source: 'test' },
    ];
    writeFileSync(path.join(data, 'screenspot_desktop_v2.json'), JSON.stringify(items));
    const out = path.join(dir, 'point-run');
    const r = spawnSync(process.execPath, ['bin/starkv.js', 'eval', 'grounding', '--model', model, '--data', data, '--methods', 'full', '--prompt', 'papers', '--max-new-tokens', '24', '--out', out, '--threads', '1'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rows = readResults(path.join(out, 'results.jsonl')).sort((a, b) => a.id.localeCompare(b.id));
    expect(rows.map((x) => x.reply)).toEqual(Array(2).fill("Action: click(start_box='(15,26)')"));
    expect(rows.map((x) => x.click)).toEqual([[15, 26], [15, 26]]);
    expect(rows.map((x) => x.hit)).toEqual([true, false]);
  });
});
