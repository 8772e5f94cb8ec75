// Results of an evaluation run: appended to a JSONL file as they come (fsync'd), read back for resume
// and for the report. Each line is one (sample, method, budget) result.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';

export interface ResultRow {
  id: string;
  method: string;
  budget: number;
  hit: boolean;
  ms: number;
  kvBytes: number;
  fullKvBytes: number;
  groups: Record<string, string>;
  [k: string]: unknown;
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
  msPerSample: number;
  kvBytes: number;
  fullKvBytes: number;
  groups: Record<string, Record<string, { n: number; accuracy: number }>>;
}

/** Accuracy (overall and per annotation group), time and KV bytes per method x budget. */
export function summarise(rows: ResultRow[]): Cell[] {
  const byCell = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const k = `${r.method}|${r.budget}`;
    if (!byCell.has(k)) byCell.set(k, []);
    byCell.get(k)!.push(r);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const cells: Cell[] = [];
  for (const rs of byCell.values()) {
    const groups: Cell['groups'] = {};
    for (const r of rs)
      for (const [g, v] of Object.entries(r.groups ?? {})) {
        groups[g] ??= {};
        const e = (groups[g][v] ??= { n: 0, accuracy: 0 });
        e.accuracy = (e.accuracy * e.n + (r.hit ? 1 : 0)) / (e.n + 1);
        e.n++;
      }
    cells.push({
      method: rs[0]!.method,
      budget: rs[0]!.budget,
      n: rs.length,
      accuracy: mean(rs.map((r) => (r.hit ? 1 : 0))),
      msPerSample: mean(rs.map((r) => r.ms)),
      kvBytes: mean(rs.map((r) => r.kvBytes)),
      fullKvBytes: mean(rs.map((r) => r.fullKvBytes)),
      groups,
    });
  }
  return cells.sort((a, b) => a.method.localeCompare(b.method) || a.budget - b.budget);
}
