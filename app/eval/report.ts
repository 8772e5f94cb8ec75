// The evaluation report: summary.json, a Markdown table, PNG plots (accuracy, time and KV bytes against
// budget, one line per method) and one offline HTML page; all rebuilt from results.jsonl alone.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readResults, summarise, type Cell } from './results.ts';
import { lineChartSvg, svgToPng, type Series } from './plot.ts';

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;

function seriesOf(cells: Cell[], f: (c: Cell) => number): Series[] {
  const by = new Map<string, Series>();
  for (const c of cells) {
    if (!by.has(c.method)) by.set(c.method, { name: c.method, points: [] });
    by.get(c.method)!.points.push([c.budget, f(c)]);
  }
  return [...by.values()];
}

export function markdownTable(cells: Cell[]): string {
  const groupNames = [...new Set(cells.flatMap((c) => Object.entries(c.groups).flatMap(([g, vs]) => Object.keys(vs).map((v) => `${g}=${v}`))))].sort();
  // AgentNetBench: its scores beside the accuracy (OpenCUA's evaluator, and the papers' driver)
  const scored = cells.some((c) => c.score !== undefined);
  const optional = (v: number | undefined) => (v !== undefined ? pct(v) : '');
  const shares = cells.some((c) => c.keptShares); // trajectory runs: where each method's cache went
  const head = ['method', 'budget %', 'n', 'accuracy', ...(scored ? ['AgentNetBench score', 'papers\' driver score'] : []), ...groupNames, 'ms/sample', 'KV bytes', 'KV vs full', ...(shares ? ['kept: current / history / text'] : [])];
  const rows = cells.map((c) => [
    c.method,
    String(c.budget),
    String(c.n),
    pct(c.accuracy),
    ...(scored ? [optional(c.score), optional(c.driverScore)] : []),
    ...groupNames.map((gv) => {
      const [g, v] = gv.split('=') as [string, string];
      const e = c.groups[g]?.[v];
      return e ? `${pct(e.score ?? e.accuracy)} (${e.n})` : ''; // AgentNetBench groups: their score
    }),
    c.msPerSample.toFixed(0),
    mib(c.kvBytes),
    pct(c.kvBytes / Math.max(1, c.fullKvBytes)),
    ...(shares ? [c.keptShares ? `${pct(c.keptShares.current)} / ${pct(c.keptShares.history)} / ${pct(c.keptShares.text)}` : ''] : []),
  ]);
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n') + '\n';
}

export interface ReportFiles {
  summary: string;
  markdown: string;
  html: string;
  plots: string[];
}

/**
 * Writes the report for `outDir/results.jsonl` into `outDir`. Deterministic for the same JSONL.
 * `model` describes the checkpoint the run used (kept in model.txt, as the title in title.txt, so that
 * `starkv eval report` rebuilds the same page).
 */
export async function writeReport(outDir: string, title?: string, model?: string): Promise<ReportFiles> {
  const titleFile = path.join(outDir, 'title.txt');
  if (title) writeFileSync(titleFile, title);
  else title = existsSync(titleFile) ? readFileSync(titleFile, 'utf8') : 'starkv eval: accuracy against KV budget';
  const modelFile = path.join(outDir, 'model.txt');
  if (model) writeFileSync(modelFile, model);
  else model = existsSync(modelFile) ? readFileSync(modelFile, 'utf8') : undefined;
  const rows = readResults(path.join(outDir, 'results.jsonl'));
  if (rows.length === 0) throw new Error(`${outDir}/results.jsonl: no results to report`);
  const cells = summarise(rows);
  mkdirSync(outDir, { recursive: true });
  const charts: Array<[string, string]> = [
    ['accuracy.png', lineChartSvg('Accuracy against budget', 'KV budget (%)', 'accuracy', seriesOf(cells, (c) => c.accuracy), { yMin: 0, yMax: 1, yFormat: pct })],
    ['time.png', lineChartSvg('Time per sample against budget', 'KV budget (%)', 'ms per sample', seriesOf(cells, (c) => c.msPerSample), { yMin: 0, yFormat: (v) => v.toFixed(0) })],
    ['kv-bytes.png', lineChartSvg('KV cache bytes against budget', 'KV budget (%)', 'KV bytes', seriesOf(cells, (c) => c.kvBytes), { yMin: 0, yFormat: mib })],
  ];
  const scored = cells.some((c) => c.score !== undefined);
  if (scored)
    charts.splice(1, 0, ['score.png', lineChartSvg('AgentNetBench score against budget', 'KV budget (%)', 'score', seriesOf(cells.filter((c) => c.score !== undefined), (c) => c.score!), { yMin: 0, yMax: 1, yFormat: pct })]);
  const plots: string[] = [];
  for (const [name, svg] of charts) {
    await svgToPng(svg, path.join(outDir, name));
    plots.push(path.join(outDir, name));
  }
  const about = [
    `${rows.length} results${model ? ` of ${model}` : ''}.`,
    ...(scored ? ["AgentNetBench score: the benchmark's own (OpenCUA's evaluator); papers' driver score: the GUI-KV / STaR-KV driver's, which the papers report; per-group columns: the AgentNetBench score; accuracy: steps with a full score."] : []),
    ...(cells.some((c) => c.keptShares) ? ["kept: the shares of each layer's cache that hold the step's screenshot, the earlier screenshots and the text, averaged over layers and steps."] : []),
  ].join(' ');
  const md = `# ${title}\n\n${about}\n\n${markdownTable(cells)}`;
  const esc = (s: string) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
  const tableHtml = md
    .split('\n')
    .filter((l) => l.startsWith('|') && !l.includes('---'))
    .map((l, i) => `<tr>${l.slice(1, -1).split('|').map((c) => (i === 0 ? `<th>${esc(c.trim())}</th>` : `<td>${esc(c.trim())}</td>`)).join('')}</tr>`)
    .join('\n');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}.charts{display:flex;flex-wrap:wrap;gap:12px}</style>
</head><body><h1>${esc(title)}</h1><p>${esc(about)}</p>
<table>${tableHtml}</table><div class="charts">${charts.map(([, svg]) => svg).join('\n')}</div></body></html>\n`;
  const files = { summary: path.join(outDir, 'summary.json'), markdown: path.join(outDir, 'report.md'), html: path.join(outDir, 'report.html'), plots };
  writeFileSync(files.summary, JSON.stringify(cells, null, 2) + '\n');
  writeFileSync(files.markdown, md);
  writeFileSync(files.html, html);
  return files;
}
