// AgentRunner over app/agent's loop on the real desktop: an X display (app/desktop), the model backend the
// settings choose (app/host/backends.ts), and the trajectory store. Settings changed mid-episode apply
// from the next step: the backend is swapped, the operator reads its limits and dry-run flag live, and the
// loop's config fields that it reads per step are updated in place.
import { Agent, type AgentEvent } from '../agent/loop.ts';
import { DesktopOperator, type Observation, type Operator } from '../agent/operator.ts';
import type { ScreenAction } from '../agent/actions.ts';
import type { ResizeLimits } from '../agent/coords.ts';
import { DEFAULT_RISK_POLICY, type RiskPolicy } from '../agent/safety.ts';
import { writeReport } from '../store/report.ts';
import { EpisodeWriter, type EpisodeRecord } from '../store/trajectory.ts';
import type { KvTelemetry, Memory, Settings } from '../protocol.ts';
import { backendKey, EngineCache, makeBackend, nativeOptions, osMemory, SwitchableBackend } from './backends.ts';
import { NativeBackend } from '../model/backends/native.ts';
import { StartStopped, unlessStopped, type AgentRun, type AgentRunner, type RunHooks, type RunnerEvent, type RunRequest, type RunResult } from './runner.ts';

export function riskPolicy(s: Settings): RiskPolicy {
  return {
    enabled: s.safety.confirmRisky,
    hotkeys: [...s.safety.riskyHotkeys],
    typePatterns: s.safety.riskyPatterns.map((p) => new RegExp(p)),
    passwordHints: DEFAULT_RISK_POLICY.passwordHints,
  };
}

/** The loop's operator: reports what reaches the input layer, and keeps dry-run and corner-abort live. */
export class LiveOperator implements Operator {
  onExecuted: (a: ScreenAction, dryRun: boolean) => void = () => {};
  /** The loop's corner callback while it watches, and the running watcher (only while corner abort is on). */
  private onCorner: (() => void) | null = null;
  private unwatch: (() => void) | null = null;

  constructor(
    private readonly inner: DesktopOperator,
    public dryRunNow: boolean,
    private cornerAbortOn: boolean,
  ) {}
  get cornerAbort(): boolean {
    return this.cornerAbortOn;
  }
  /** A settings change mid-run: starts or stops the corner watcher at once. */
  set cornerAbort(on: boolean) {
    this.cornerAbortOn = on;
    this.syncCorners();
  }
  private syncCorners(): void {
    if (this.cornerAbortOn && this.onCorner && !this.unwatch) this.unwatch = this.inner.watchCorners(this.onCorner);
    else if (!(this.cornerAbortOn && this.onCorner) && this.unwatch) {
      this.unwatch();
      this.unwatch = null;
    }
  }
  get display() {
    return this.inner.display;
  }
  get dryRun(): boolean {
    return this.dryRunNow;
  }
  get events() {
    return this.inner.events;
  }
  observe(step: number): Promise<Observation> {
    return this.inner.observe(step);
  }
  peek(): Promise<Uint8Array> {
    return this.inner.peek();
  }
  async execute(a: ScreenAction): Promise<void> {
    const dry = this.dryRunNow;
    if (!dry) await this.inner.execute(a);
    this.onExecuted(a, dry);
  }
  halt(reason: string): Promise<void> {
    return this.inner.halt(reason);
  }
  /** Watches while corner abort is on; the setting can change during the watch (see `cornerAbort`). */
  watchCorners(onCorner: () => void): () => void {
    this.onCorner = onCorner;
    this.syncCorners();
    return () => {
      if (this.onCorner !== onCorner) return;
      this.onCorner = null;
      this.syncCorners();
    };
  }
}

/** Screenshot limits: the checkpoint's own processor limits for the in-process engine (coordinates depend on them). */
function limitsFor(s: Settings, declared: ResizeLimits | undefined, limits: ResizeLimits): string | null {
  const want = declared ?? { minPixels: s.agent.minPixels, maxPixels: s.agent.maxPixels };
  limits.minPixels = want.minPixels;
  limits.maxPixels = want.maxPixels;
  return declared && declared.maxPixels !== s.agent.maxPixels ? `max pixels follow the checkpoint's preprocessor_config.json (${declared.maxPixels}), not the setting` : null;
}

function translate(e: AgentEvent, store: EpisodeWriter | null): RunnerEvent | null {
  switch (e.type) {
    case 'step':
      return { type: 'step', step: e.step, png: e.obs.capturePng, file: store ? `step-${String(e.step).padStart(4, '0')}.png` : null, geometry: e.obs.geometry };
    case 'text':
      return { type: 'text', step: e.step, delta: e.delta };
    case 'reply':
      return { type: 'reply', step: e.step, text: e.text, attempt: e.attempt, ms: e.ms };
    case 'parse_error':
      return { type: 'parse_error', step: e.step, attempt: e.attempt, message: e.message, raw: e.raw };
    case 'action':
      return { type: 'action', step: e.step, index: e.index, action: e.action, thought: e.thought };
    case 'warning':
      return { type: 'warning', step: e.step, message: e.message };
    case 'paused':
    case 'resumed':
      return { type: e.type };
    case 'end':
      return null; // the host ends the session from `done`
  }
}

/**
 * The trajectory as the loop writes it, plus the KV telemetry and memory figure of each step, so a replay
 * shows the KV inspector and the memory view too. The latest report of a step wins (a reply that is asked
 * again reports twice) and is written once: when the loop records the step's parsed actions, the next
 * step's observation, or the end.
 */
export class StepReports {
  private pending: { step: number; telemetry: KvTelemetry | null; memory: Memory | null } | null = null;

  constructor(private readonly store: EpisodeWriter) {}

  get dir(): string {
    return this.store.dir;
  }

  writeFile(name: string, data: Buffer): string {
    return this.store.writeFile(name, data);
  }

  append(kind: string, data: Record<string, unknown> = {}): EpisodeRecord {
    if (kind === 'actions' || kind === 'observation' || kind === 'end') this.flush();
    return this.store.append(kind, data);
  }

  telemetry(data: KvTelemetry): void {
    this.at(data.step).telemetry = data;
  }

  memory(step: number, data: Memory): void {
    this.at(step).memory = data;
  }

  private at(step: number) {
    if (this.pending && this.pending.step !== step) this.flush();
    return (this.pending ??= { step, telemetry: null, memory: null });
  }

  /** Writes what the current step reported (screenshots stay files; these records hold none). */
  flush(): void {
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    if (p.telemetry) this.store.append('telemetry', { step: p.step, data: p.telemetry });
    if (p.memory) this.store.append('memory', { step: p.step, data: p.memory });
  }
}

export class DesktopRunner implements AgentRunner {
  /** `engines`: where loaded engines are kept between tasks (a test may pass its own). */
  constructor(private readonly engines = new EngineCache()) {}

  async start(req: RunRequest, hooks: RunHooks): Promise<AgentRun> {
    const s = req.settings;
    const signal = req.signal;
    const warn = (message: string) => hooks.onEvent({ type: 'warning', step: null, message });
    // A stop during the load gives up at once; the engine, once loaded, stays cached for the next task.
    const made = await unlessStopped(makeBackend(s, this.engines), signal, (m) => {
      if (!(m.backend instanceof NativeBackend)) void m.backend.close?.();
    });
    let reports: StepReports | null = null;
    const memory = (step: number, data: Memory) => {
      reports?.memory(step, data);
      hooks.onEvent({ type: 'memory', step, data });
    };
    const backend = new SwitchableBackend(made.backend, {
      memory: (data) => memory(backend.step, data),
      telemetry: (data) => {
        reports?.telemetry(data);
        hooks.onEvent({ type: 'telemetry', data });
      },
      warning: warn,
    });
    // Loaded on demand: the desktop layer needs an X display.
    const { Desktop } = await import('../desktop/desktop.ts');
    const desktop = await unlessStopped(Desktop.open({ xDisplay: process.env.DISPLAY }), signal, (d) => d.close());
    let store: EpisodeWriter | null = null;
    try {
      const limits: ResizeLimits = { minPixels: 0, maxPixels: 0 };
      const limitNote = limitsFor(s, made.backend.imageLimits, limits);
      const inner = new DesktopOperator(desktop, { displayId: s.agent.displayId, dryRun: false, limits, coordSpace: s.model.coordSpace });
      const operator = new LiveOperator(inner, s.safety.dryRun, s.safety.cornerAbort);
      if (s.storage.saveEpisodes) {
        store = EpisodeWriter.create(s.storage.episodesDir, req.task);
        reports = new StepReports(store);
      }
      let current = { step: 0, index: 0 };
      operator.onExecuted = (a, dry) => hooks.onEvent({ type: 'executed', step: current.step, index: current.index, action: a, dryRun: dry });
      const onEvent = (e: AgentEvent) => {
        if (e.type === 'action') current = { step: e.step, index: e.index };
        if (e.type === 'step') backend.step = e.step;
        const ev = translate(e, store);
        if (ev) hooks.onEvent(ev);
        if (e.type === 'step' && backend.kind !== 'native') memory(e.step, { device: null, engine: null, system: osMemory(), kvFullBytes: null });
      };
      const agent = new Agent(
        {
          task: req.task, maxSteps: s.agent.maxSteps, historyImages: s.agent.historyImages, language: s.agent.language,
          maxTokens: s.agent.maxTokens, temperature: s.agent.temperature, risk: riskPolicy(s),
        },
        backend, operator, reports,
        { onEvent, confirm: (q) => hooks.confirm({ step: q.step, action: q.action, thought: q.thought, reasons: q.reasons }), askUser: (q) => hooks.askUser(q) },
      );
      // Stopped while the desktop opened: nothing has run, nothing will.
      if (signal?.aborted) throw new StartStopped(String(signal.reason));
      const d = operator.display;
      hooks.onEvent({
        type: 'started', backend: backend.kind, destination: backend.destination, dryRun: operator.dryRun,
        display: { width: d.width, height: d.height, scale: d.scaleFactor }, episodeDir: store?.dir ?? null,
      });
      for (const w of made.warnings) warn(w);
      if (limitNote) warn(limitNote);
      let key = backendKey(s);
      const done: Promise<RunResult> = agent.run().finally(() => {
        desktop.close();
        void backend.close();
        if (store) {
          reports?.flush();
          store.close();
          try {
            writeReport(store.dir);
          } catch (e) {
            warn(`the HTML report could not be written: ${(e as Error).message}`);
          }
        }
      });
      return {
        pause: () => agent.pause(),
        resume: () => agent.resume(),
        stop: (reason) => agent.stop(reason),
        done,
        applySettings: (n: Settings) => {
          const c = agent.cfg;
          c.maxSteps = n.agent.maxSteps;
          c.historyImages = n.agent.historyImages;
          c.language = n.agent.language;
          c.maxTokens = n.agent.maxTokens;
          c.temperature = n.agent.temperature;
          c.risk = riskPolicy(n);
          operator.cornerAbort = n.safety.cornerAbort;
          if (n.safety.dryRun) operator.dryRunNow = true;
          else if (operator.dryRunNow) warn('dry run stays on for this task; it turns off from the next task');
          const nextKey = backendKey(n);
          if (nextKey === key) {
            const note = limitsFor(n, backend.imageLimits, limits);
            if (note && n.agent.maxPixels !== s.agent.maxPixels) warn(note);
            return;
          }
          const [, prevDir, prevDevice] = JSON.parse(key) as [string, string, string];
          key = nextKey;
          if (backend.inner instanceof NativeBackend && n.model.source === 'checkpoint' && n.model.checkpointDir.trim() === prevDir && n.model.device === prevDevice) {
            // Same engine: the new method, budget or parameters apply from the next step on the episode's
            // cache (a new method starts a new cache); no second cache is left behind.
            backend.inner.setKv(nativeOptions(n).kv);
            return;
          }
          makeBackend(n, this.engines).then(
            (m) => {
              if (backend.inner instanceof NativeBackend) backend.inner.setKv(undefined); // frees its episode cache
              backend.inner = m.backend;
              limitsFor(n, m.backend.imageLimits, limits);
              m.warnings.forEach(warn);
            },
            (e: Error) => warn(`model settings not applied to this task: ${e.message}`),
          );
        },
      };
    } catch (e) {
      store?.close();
      desktop.close();
      throw e;
    }
  }

  /** Frees the loaded engine (the host is shutting down). */
  dispose(): void {
    this.engines.dispose();
  }
}
