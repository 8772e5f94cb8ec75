// The model backend a task uses, made from the settings: an OpenAI-compatible endpoint (checked before
// the desktop is touched) or the in-process engine on a checkpoint folder (loaded once and kept while the
// folder stays the same). A switchable wrapper lets settings change between steps, and reports what the
// engine really measured after each call: memory by category, and KV telemetry when a backend returns it.
import os from 'node:os';
import { NativeBackend } from '../model/backends/native.ts';
import { OpenAIBackend } from '../model/backends/openai.ts';
import type { GenerateRequest, GenerateResult, ModelBackend } from '../model/backends/types.ts';
import type { Engine } from '../model/engine.ts';
import type { KvTelemetry, Memory, Settings } from '../protocol.ts';
import { effectiveParams } from './kv-methods.ts';
import { telemetryFromTurn, type EngineTurn } from './turn-telemetry.ts';

export interface MadeBackend {
  backend: ModelBackend;
  warnings: string[];
}

/** One loaded engine, reused across tasks while the checkpoint folder and the device stay the same. */
export class EngineCache {
  private loaded: { dir: string; device: string; cpuMatmul: string; weights: string; engine: Engine; warnings: string[] } | null = null;
  /** The load in flight: loads run one at a time (a start stopped mid-load leaves its load running; the
   *  next start waits for it, and reuses it when it is the same checkpoint, instead of loading twice). */
  private loading: Promise<unknown> | null = null;
  /** Bumped by dispose(): a load that lands after it is freed, not kept. */
  private generation = 0;

  /**
   * The engine for `dir` on `device` ('auto' | 'cpu' | 'cuda' | 'cuda:N'). When the settings ask for CUDA and the
   * engine cannot use it (no driver, no GPU, a build without CUDA), the engine runs on the CPU and the
   * warnings say why; a checkpoint that does not fit on the GPU is an error (it names what did not fit).
   */
  async get(dir: string, device = 'auto', cpuMatmul = 'auto', weights = 'auto'): Promise<{ engine: Engine; warnings: string[] }> {
    while (this.loading) await this.loading.catch(() => {});
    const l = this.loaded;
    if (l?.dir === dir && l.device === device && l.cpuMatmul === cpuMatmul && l.weights === weights) return l;
    const p = this.load(dir, device, cpuMatmul, weights);
    this.loading = p;
    try {
      return await p;
    } finally {
      if (this.loading === p) this.loading = null;
    }
  }

  /** Whether a load is in flight (tests). */
  get busy(): boolean {
    return this.loading !== null;
  }

  private async load(dir: string, device: string, cpuMatmul: string, weights: string): Promise<{ engine: Engine; warnings: string[] }> {
    this.dispose();
    const gen = this.generation;
    const { Engine } = await import('../model/engine.ts');
    const threads = Math.max(1, os.availableParallelism());
    const warnings: string[] = [];
    let engine: Engine;
    try {
      engine = await Engine.load(dir, { threads, device, cpuMatmul, weights });
    } catch (e) {
      if (device === 'cpu' || !/no CUDA device|built without CUDA/i.test((e as Error).message)) throw e;
      warnings.push(`the settings ask for CUDA, but ${(e as Error).message}: the engine runs on the CPU`);
      engine = await Engine.load(dir, { threads, device: 'cpu', cpuMatmul, weights });
    }
    if (gen !== this.generation) {
      engine.dispose();
      throw new Error('the engine was freed while it loaded (the app is shutting down)');
    }
    const info = engine.info();
    if (device === 'auto' && info.deviceNote) warnings.push(`engine on the CPU (${info.deviceNote})`);
    this.loaded = { dir, device, cpuMatmul, weights, engine, warnings };
    return this.loaded;
  }

  dispose(): void {
    this.generation++;
    this.loaded?.engine.dispose();
    this.loaded = null;
  }
}

export function nativeOptions(s: Settings) {
  const m = s.kv.method;
  // Always a persistent episode ("full" keeps every token): each step prefills only its new tokens and
  // reports what every layer holds.
  return { kv: { method: m, budget: s.kv.budgetPercent, params: m === 'full' ? {} : effectiveParams(m, s.kv.params[m]) } };
}

/** The backend the settings ask for; throws a clear error when it cannot be made or reached. */
export async function makeBackend(s: Settings, engines: EngineCache): Promise<MadeBackend> {
  if (s.model.source === 'checkpoint') {
    const dir = s.model.checkpointDir.trim();
    if (!dir) throw new Error('no checkpoint folder chosen: pick one in Settings (or use an OpenAI-compatible endpoint)');
    const { engine, warnings } = await engines.get(dir, s.model.device, s.model.cpuMatmul, s.model.weights);
    return { backend: new NativeBackend(engine, nativeOptions(s)), warnings: [...warnings] };
  }
  const e = s.model.endpoint;
  const b = new OpenAIBackend({ baseURL: e.baseURL, model: e.model, apiKey: e.apiKey || undefined, timeoutMs: e.timeoutS * 1000, retries: e.retries });
  const warnings = [...b.warnings, ...(await b.check())];
  return { backend: b, warnings };
}

/** Whether two settings need a different backend object (a remote one is cheap to remake; an engine is cached). */
export function backendKey(s: Settings): string {
  const m = s.model;
  return m.source === 'checkpoint'
    ? JSON.stringify(['checkpoint', m.checkpointDir.trim(), m.device, s.kv.method, s.kv.budgetPercent, s.kv.params[s.kv.method] ?? {}])
    : JSON.stringify(['endpoint', m.endpoint.baseURL, m.endpoint.model, m.endpoint.apiKey, m.endpoint.timeoutS, m.endpoint.retries]);
}

export function osMemory(): Memory['system'] {
  return { label: 'starkv process (RSS)', used: process.memoryUsage().rss, total: os.totalmem() };
}

/** The engine's device and the driver's (GPU) or the OS's (host) own figure beside our accounting. */
export function engineMemory(engine: Engine, mem = engine.memory()): Pick<Memory, 'device' | 'system'> {
  const d = mem.device;
  if (engine.device.startsWith('cuda') && d)
    return { device: engine.device, system: { label: 'GPU memory in use (driver, all processes)', used: d.totalBytes - d.freeBytes, total: d.totalBytes } };
  return { device: engine.device, system: osMemory() };
}

export interface Reports {
  memory(m: Memory): void;
  telemetry(t: KvTelemetry): void;
  warning(message: string): void;
}

/** The loop's backend. The inner backend can be replaced between steps; the engine is never closed here. */
export class SwitchableBackend implements ModelBackend {
  /** Agent step of the call in flight (set by the runner from the loop's events). */
  step = 0;
  /** Every image id in the order the backend first saw it (persistent caches number frames this way). */
  private seen: string[] = [];

  constructor(
    public inner: ModelBackend,
    private readonly reports: Reports,
  ) {}

  get kind(): string {
    return this.inner.kind;
  }
  get destination(): string {
    return this.inner.destination;
  }
  get imageLimits() {
    return this.inner.imageLimits;
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const ids = req.messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content.flatMap((p) => (p.type === 'image' ? [p.image.id] : []))));
    for (const id of ids) if (!this.seen.includes(id)) this.seen.push(id);
    const res = await this.inner.generate(req);
    this.report(res, ids);
    return res;
  }

  private report(res: GenerateResult, promptImages: string[]): void {
    const inner = this.inner;
    // A backend with a persistent compressed cache returns the engine's per-turn report (app/model/episode.ts TurnResult).
    const turn = (res as GenerateResult & { kvTurn?: EngineTurn }).kvTurn;
    if (!turn) {
      if (inner instanceof NativeBackend) {
        const mem = inner.engine.memory();
        this.reports.memory({ ...engineMemory(inner.engine, mem), engine: mem, kvFullBytes: null, kvHeldBytes: null });
      }
      return;
    }
    const stepOf = (id: string) => Number(/(\d+)$/.exec(id)?.[1] ?? -1);
    const frames = turn.layers[0]?.keep.frames.length ?? 0;
    const frameSteps = (frames === promptImages.length ? promptImages : this.seen.slice(0, frames)).map(stepOf);
    try {
      this.reports.telemetry(telemetryFromTurn(turn, this.step, frameSteps));
    } catch (e) {
      this.reports.warning(`KV telemetry of step ${this.step} could not be shown: ${(e as Error).message}`);
    }
    // One memory figure per call: the engine's accounting at the end of the turn, with what the compressed
    // cache holds beside what an uncompressed one would.
    const where = inner instanceof NativeBackend ? engineMemory(inner.engine, turn.memory) : { device: null, system: osMemory() };
    this.reports.memory({ ...where, engine: turn.memory, kvFullBytes: turn.fullKvBytes, kvHeldBytes: turn.kvBytes });
  }

  async close(): Promise<void> {
    if (!(this.inner instanceof NativeBackend)) await this.inner.close?.();
    else this.inner.setKv(undefined); // the engine stays loaded for the next task; this task's cache goes
  }
}
