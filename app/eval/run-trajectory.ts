// Runs step-level evaluation over methods x budgets x recorded episodes on the in-process engine,
// with a persistent compressed cache per episode (or the papers' reference protocol), appending each
// step's result as it comes; an interrupted run resumes with the episodes it had not finished.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../model/engine.ts';
import { NativeBackend, type KvTurn } from '../model/backends/native.ts';
import type { Protocol } from '../model/chat-episode.ts';
import { Progress } from './progress.ts';
import { readResults, resultKey, ResultWriter } from './results.ts';
import { loadScreenshot, loadTrajectories, scoreStep, stepMessages } from './trajectory.ts';
import { driverMessages } from './agentnet-driver.ts';

export interface TrajectoryRunOptions {
  data: string;
  out: string;
  methods: string[];
  budgets: number[];
  protocol?: Protocol;
  historyImages?: number; // the papers' window (UI-TARS: 5)
  /** standard: our UI-TARS prompt with the recorded history; papers: the papers' AgentNetBench driver's prompt and closed-loop history. */
  prompt?: 'standard' | 'papers';
  limit?: number; // episodes
  maxNewTokens?: number; // default 128; 1000 (the driver's) with the papers' prompt, whose replies think first
  signal?: AbortSignal;
  quiet?: boolean;
}

export async function runTrajectories(engine: Engine, o: TrajectoryRunOptions): Promise<{ done: number; skipped: number; stopped: boolean }> {
  const episodes = loadTrajectories(o.data).slice(0, o.limit ?? Infinity);
  const papers = o.prompt === 'papers';
  const notAnb = papers && episodes.find((e) => !e.steps[0]!.agentnet);
  if (notAnb) throw new Error(`--prompt papers is the AgentNetBench driver's prompt; episode ${notAnb.id} is not an AgentNetBench task`);
  mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, 'results.jsonl');
  const have = new Set(readResults(file).map(resultKey));
  const cells = o.methods.flatMap((method) => (method === 'full' ? [100] : o.budgets).map((budget) => ({ method, budget })));
  const total = cells.length * episodes.reduce((a, e) => a + e.steps.length, 0);
  const key = (method: string, budget: number, id: string, k: number) => resultKey({ method, budget, id: `${id}#${k}` });
  const done0 = cells.reduce((a, c) => a + episodes.reduce((b, e) => b + e.steps.filter((_, k) => have.has(key(c.method, c.budget, e.id, k))).length, 0), 0);
  const progress = new Progress(total, done0, o.quiet ? ({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream) : process.stderr);
  const backend = new NativeBackend(engine);
  const limits = backend.imageLimits;
  const w = new ResultWriter(file);
  let done = 0;
  try {
    for (const { method, budget } of cells) {
      backend.setKv({ method, budget, protocol: o.protocol ?? 'persistent' });
      for (const ep of episodes) {
        if (ep.steps.every((_, k) => have.has(key(method, budget, ep.id, k)))) continue;
        const shots = await Promise.all(ep.steps.map((s, k) => loadScreenshot(path.resolve(ep.dir, s.screenshot), `${ep.id}/step-${k}`, limits)));
        const episodeId = `${method}|${budget}|${ep.id}|${Date.now()}`;
        // The persistent cache (and the papers' closed-loop history) needs every earlier step, so a resumed
        // episode is replayed from its start.
        const replies: string[] = [];
        for (let k = 0; k < ep.steps.length; k++) {
          if (o.signal?.aborted) return { done, skipped: done0, stopped: true };
          const t0 = performance.now();
          const messages = papers
            ? driverMessages(ep.task, shots, k, o.historyImages ?? 5, replies, o.protocol === 'reference' ? 10 : Infinity)
            : stepMessages(ep, shots, k, o.historyImages ?? 5);
          let r: Awaited<ReturnType<NativeBackend['generate']>> & { kvTurn?: KvTurn };
          try {
            r = await backend.generate({ messages, maxTokens: o.maxNewTokens ?? (papers ? 1000 : 128), temperature: 0, episode: episodeId });
          } catch (e) {
            // name the run that failed; what is written so far stays (a rerun resumes after it)
            throw new Error(`${method} at ${budget}% on episode ${ep.id} step ${k}: ${(e as Error).message}`);
          }
          replies.push(r.text);
          if (have.has(key(method, budget, ep.id, k))) continue;
          const gt = ep.steps[k]!.action;
          w.append({
            id: `${ep.id}#${k}`,
            method,
            budget,
            ...scoreStep(ep, k, r.text, shots[k]!),
            reply: r.text,
            ms: performance.now() - t0,
            ...(r.kvTurn ? { keptShares: keptShares(r.kvTurn) } : {}),
            kvBytes: r.kvTurn?.kvBytes ?? 0,
            fullKvBytes: r.kvTurn?.fullKvBytes ?? 0,
            groups: { action: gt.type, ...(ep.platform ? { platform: ep.platform } : {}) },
          });
          done++;
          progress.tick(`${method}@${budget}% ${ep.id}#${k}`);
        }
      }
    }
  } finally {
    w.close();
    progress.end();
  }
  return { done, skipped: done0, stopped: false };
}

/**
 * Where a step's cache went, as shares of the slots every layer holds (averaged over the layers): the
 * current screenshot's tokens, the earlier screenshots' and the text's (the window and the reply's
 * tokens included).
 */
export function keptShares(t: Pick<KvTurn, 'layers'>): { current: number; history: number; text: number } {
  const sum = { current: 0, history: 0, text: 0 };
  let n = 0;
  for (const l of t.layers) {
    const frames = l.keep.frames;
    const last = frames.length ? Math.max(...frames.map((f) => f.frame)) : -1;
    const current = frames.filter((f) => f.frame === last).reduce((a, f) => a + f.keptCount, 0);
    const history = frames.filter((f) => f.frame !== last).reduce((a, f) => a + f.keptCount, 0);
    const total = current + history + l.keep.text.length;
    if (!total) continue;
    sum.current += current / total;
    sum.history += history / total;
    sum.text += l.keep.text.length / total;
    n++;
  }
  const r = (v: number) => Math.round((v / Math.max(1, n)) * 1e4) / 1e4;
  return { current: r(sum.current), history: r(sum.history), text: r(sum.text) };
}
