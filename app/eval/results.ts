// Results of an evaluation run: appended to a JSONL file as they come (fsync'd), read back for resume
// and for the report. Each line is one (sample, method, budget) result.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface ResultRow {
  id: string;
  method: string;
  budget: number;
  hit: boolean;
  score?: number; // AgentNetBench steps: the benchmark's score by OpenCUA's evaluator (0-1)
  driverScore?: number; // and by the papers' driver
  keptShares?: { current: number; history: number; text: number }; // trajectory steps: where the cache went
  ms: number;
  kvBytes: number;
  fullKvBytes: number;
  groups: Record<string, string>;
  [k: string]: unknown;
}

/** What a results folder's rows depend on besides (method, budget, sample): a resumed run must match. */
export type RunConfig = Record<string, string | number | null>;

/**
 * Resuming into `outDir` is only right when its results were made the same way (same model, data, prompt,
 * protocol, ...); methods, budgets and --limit may change (that adds cells or samples). Throws, naming
 * what differs, when the folder holds results of another configuration (run.json, written by
 * recordRunConfig once a run has started). A folder without results, or from before run.json, passes.
 */
export function checkRunConfig(outDir: string, config: RunConfig): void {
  const file = path.join(outDir, 'run.json');
  if (!existsSync(file) || readResults(path.join(outDir, 'results.jsonl')).length === 0) return;
  let prev: RunConfig;
  try {
    prev = JSON.parse(readFileSync(file, 'utf8')) as RunConfig;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); delete it if the folder's results are what you want to resume`);
  }
  const diff = Object.keys({ ...prev, ...config })
    .filter((k) => (prev[k] ?? null) !== (config[k] ?? null))
    .map((k) => `${k}: ${JSON.stringify(prev[k] ?? null)} there, ${JSON.stringify(config[k] ?? null)} now`);
  if (diff.length)
    throw new Error(`${outDir} holds results made another way (${diff.join('; ')}): resuming would mix them; use another --out, or delete the folder to start over`);
}

/** Records how the results in `outDir` are made (see checkRunConfig). */
export function recordRunConfig(outDir: string, config: RunConfig): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'run.json'), JSON.stringify(config, null, 2) + '\n');
}

export const resultKey = (r: { id: string; method: string; budget: number }) => `${r.method}|${r.budget}|${r.id}`;

/** Reads a results file; a torn last line (a kill mid-write) is ignored, any other bad line is an error. */
export function readResults(file: string): ResultRow[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const rows: ResultRow[] = [];
  lines.forEach((ln, i) => {
    if (!ln.trim()) return;
    try {
      rows.push(JSON.parse(ln));
    } catch {
      if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l.trim())) throw new Error(`${file}: line ${i + 1} is not JSON`);
    }
  });
  return rows;
}

export class ResultWriter {
  private fd: number;
  constructor(readonly file: string) {
    // Drop a torn tail (a kill in the middle of a write) so that appended lines start on a fresh line.
    if (existsSync(file)) {
      const buf = readFileSync(file);
      if (buf.length && buf[buf.length - 1] !== 0x0a) truncateSync(file, buf.lastIndexOf(0x0a) + 1);
    }
    this.fd = openSync(file, 'a');
  }
  append(row: ResultRow): void {
    writeSync(this.fd, JSON.stringify(row) + '\n');
    fsyncSync(this.fd);
  }
  close(): void {
    closeSync(this.fd);
  }
}

export interface Cell {
  method: string;
  budget: number;
  n: number;
  accuracy: number;
  score?: number; // the mean AgentNetBench score (OpenCUA's evaluator), where the rows have one
  driverScore?: number; // the mean AgentNetBench score by the papers' driver
  keptShares?: { current: number; history: number; text: number }; // mean over the steps that report them
  msPerSample: number;
  kvBytes: number;
  fullKvBytes: number;
  groups: Record<string, Record<string, { n: number; accuracy: number; score?: number; driverScore?: number }>>;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const scoreOf = (rs: ResultRow[]) => {
  const out: { score?: number; driverScore?: number } = {};
  for (const f of ['score', 'driverScore'] as const) {
    const s = rs.filter((r) => typeof r[f] === 'number').map((r) => r[f]!);
    if (s.length) out[f] = mean(s);
  }
  return out;
};

const sharesOf = (rs: ResultRow[]) => {
  const xs = rs.map((r) => r.keptShares).filter((x): x is NonNullable<ResultRow['keptShares']> => !!x);
  return xs.length ? { keptShares: { current: mean(xs.map((x) => x.current)), history: mean(xs.map((x) => x.history)), text: mean(xs.map((x) => x.text)) } } : {};
};

/** Accuracy (overall and per annotation group), AgentNetBench score, time and KV bytes per method x budget. */
export function summarise(rows: ResultRow[]): Cell[] {
  const byCell = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const k = `${r.method}|${r.budget}`;
    if (!byCell.has(k)) byCell.set(k, []);
    byCell.get(k)!.push(r);
  }
  const cells: Cell[] = [];
  for (const rs of byCell.values()) {
    const byGroup = new Map<string, Map<string, ResultRow[]>>();
    for (const r of rs)
      for (const [g, v] of Object.entries(r.groups ?? {})) {
        if (!byGroup.has(g)) byGroup.set(g, new Map());
        const m = byGroup.get(g)!;
        if (!m.has(v)) m.set(v, []);
        m.get(v)!.push(r);
      }
    const groups: Cell['groups'] = {};
    for (const [g, m] of byGroup) groups[g] = Object.fromEntries([...m].map(([v, xs]) => [v, { n: xs.length, accuracy: mean(xs.map((r) => (r.hit ? 1 : 0))), ...scoreOf(xs) }]));
    cells.push({
      method: rs[0]!.method,
      budget: rs[0]!.budget,
      n: rs.length,
      accuracy: mean(rs.map((r) => (r.hit ? 1 : 0))),
      ...scoreOf(rs),
      ...sharesOf(rs),
      msPerSample: mean(rs.map((r) => r.ms)),
      kvBytes: mean(rs.map((r) => r.kvBytes)),
      fullKvBytes: mean(rs.map((r) => r.fullKvBytes)),
      groups,
    });
  }
  return cells.sort((a, b) => a.method.localeCompare(b.method) || a.budget - b.budget);
}
