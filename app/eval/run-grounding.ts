// Runs grounding over methods x budgets x samples, appending each result as it comes and skipping
// what an earlier (interrupted) run already wrote.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../model/engine.ts';
import { loadGroundingDataset } from './dataset.ts';
import { groundOne, type GroundingPromptStyle } from './ground.ts';
import { Progress } from './progress.ts';
import { readResults, resultKey, ResultWriter } from './results.ts';

export interface GroundingRunOptions {
  data: string;
  out: string;
  methods: string[];
  budgets: number[];
  limit?: number;
  maxNewTokens?: number;
  prompt?: GroundingPromptStyle; // standard: UI-TARS's grounding prompt; papers: the papers' ScreenSpot drivers'
  signal?: AbortSignal;
  quiet?: boolean;
}

export async function runGrounding(engine: Engine, o: GroundingRunOptions): Promise<{ done: number; skipped: number; stopped: boolean }> {
  const samples = loadGroundingDataset(o.data).slice(0, o.limit ?? Infinity);
  mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, 'results.jsonl');
  const have = new Set(readResults(file).map(resultKey));
  const jobs = o.methods.flatMap((method) => (method === 'full' ? [100] : o.budgets).map((budget) => samples.map((s) => ({ s, method, budget })))).flat();
  const todo = jobs.filter((j) => !have.has(resultKey({ id: j.s.id, method: j.method, budget: j.budget })));
  const progress = new Progress(jobs.length, jobs.length - todo.length, o.quiet ? ({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream) : process.stderr);
  const w = new ResultWriter(file);
  let done = 0;
  try {
    for (const j of todo) {
      if (o.signal?.aborted) return { done, skipped: jobs.length - todo.length, stopped: true };
      let r;
      try {
        r = await groundOne(engine, j.s, j.method, j.budget, o.maxNewTokens, o.prompt);
      } catch (e) {
        // name the run that failed; what is written so far stays (a rerun resumes after it)
        throw new Error(`${j.method} at ${j.budget}% on sample ${j.s.id}: ${(e as Error).message}`);
      }
      w.append({ ...r });
      done++;
      progress.tick(`${j.method}@${j.budget}%`);
    }
  } finally {
    w.close();
    progress.end();
  }
  return { done, skipped: jobs.length - todo.length, stopped: false };
}
