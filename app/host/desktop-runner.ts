// AgentRunner over app/agent's loop on the real desktop: an X display (app/desktop), the model backend the
// settings choose, and the trajectory store. Settings changed mid-episode apply from the next step: the
// backend is swapped, the operator reads its limits and dry-run flag live, and the loop's config fields
// that it reads per step are updated in place.
import os from 'node:os';
import { Agent, type AgentEvent } from '../agent/loop.ts';
import { DesktopOperator, type Observation, type Operator } from '../agent/operator.ts';
import type { ScreenAction } from '../agent/actions.ts';
import type { ResizeLimits } from '../agent/coords.ts';
import { DEFAULT_RISK_POLICY, type RiskPolicy } from '../agent/safety.ts';
import { OpenAIBackend } from '../model/backends/openai.ts';
import type { GenerateRequest, GenerateResult, ModelBackend } from '../model/backends/types.ts';
import { EpisodeWriter } from '../store/trajectory.ts';
import type { Memory, Settings } from '../protocol.ts';
import type { AgentRun, AgentRunner, RunHooks, RunRequest, RunResult } from './runner.ts';

export function riskPolicy(s: Settings): RiskPolicy {
  return {
    enabled: s.safety.confirmRisky,
    hotkeys: [...s.safety.riskyHotkeys],
    typePatterns: s.safety.riskyPatterns.map((p) => new RegExp(p)),
    passwordHints: DEFAULT_RISK_POLICY.passwordHints,
  };
}

/** The model backend the settings ask for; throws a clear error when it cannot be made. */
export function makeBackend(s: Settings): { backend: ModelBackend; warnings: string[] } {
  if (s.model.source === 'checkpoint') {
    throw new Error(
      'the in-process engine is not yet wired to the agent (app/model/backends has no native backend); ' +
        'choose "OpenAI-compatible endpoint" as the model source in Settings for now',
    );
  }
  const e = s.model.endpoint;
  const b = new OpenAIBackend({ baseURL: e.baseURL, model: e.model, apiKey: e.apiKey || undefined, timeoutMs: e.timeoutS * 1000, retries: e.retries });
  return { backend: b, warnings: b.warnings };
}

/** The loop's backend; the endpoint can change between steps. */
class SwitchableBackend implements ModelBackend {
  constructor(public inner: ModelBackend) {}
  get kind(): string {
    return this.inner.kind;
  }
  get destination(): string {
    return this.inner.destination;
  }
  generate(req: GenerateRequest): Promise<GenerateResult> {
    return this.inner.generate(req);
  }
  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

/** The loop's operator: reports what reaches the input layer, and keeps dry-run and corner-abort live. */
class LiveOperator implements Operator {
  dryRunNow: boolean;
  cornerAbort: boolean;
  onExecuted: (a: ScreenAction, dryRun: boolean) => void = () => {};

  constructor(private readonly inner: DesktopOperator, dryRun: boolean, cornerAbort: boolean) {
    this.dryRunNow = dryRun;
    this.cornerAbort = cornerAbort;
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
  watchCorners(onCorner: () => void): () => void {
    if (!this.cornerAbort) return () => {};
    return this.inner.watchCorners(onCorner);
  }
}

function osMemory(): Memory {
  return { device: null, engine: null, system: { label: 'starkv host process (RSS)', used: process.memoryUsage().rss, total: os.totalmem() }, kvFullBytes: null };
}

export class DesktopRunner implements AgentRunner {
  async start(req: RunRequest, hooks: RunHooks): Promise<AgentRun> {
    const s = req.settings;
    const { backend: first, warnings } = makeBackend(s);
    const backend = new SwitchableBackend(first);
    // Loaded on demand: the desktop layer needs an X display and native input libraries.
    const { Desktop } = await import('../desktop/desktop.ts');
    const desktop = await Desktop.open({ xDisplay: process.env.DISPLAY });
    let store: EpisodeWriter | null = null;
    let agent: Agent;
    const limits: ResizeLimits = { minPixels: s.agent.minPixels, maxPixels: s.agent.maxPixels };
    try {
      const inner = new DesktopOperator(desktop, { displayId: s.agent.displayId, dryRun: false, limits, coordSpace: s.model.coordSpace });
      const operator = new LiveOperator(inner, s.safety.dryRun, s.safety.cornerAbort);
      if (s.storage.saveEpisodes) store = EpisodeWriter.create(s.storage.episodesDir, req.task);
      let current = { step: 0, index: 0 };
      operator.onExecuted = (a, dry) => hooks.onEvent({ type: 'executed', step: current.step, index: current.index, action: a, dryRun: dry });
      const onEvent = (e: AgentEvent) => {
        const ev = translate(e, store);
        if (e.type === 'action') current = { step: e.step, index: e.index };
        if (ev) hooks.onEvent(ev);
        if (e.type === 'step') hooks.onEvent({ type: 'memory', step: e.step, data: osMemory() });
      };
      agent = new Agent(
        {
          task: req.task, maxSteps: s.agent.maxSteps, historyImages: s.agent.historyImages, language: s.agent.language,
          maxTokens: s.agent.maxTokens, temperature: s.agent.temperature, risk: riskPolicy(s),
        },
        backend, operator, store,
        { onEvent, confirm: (q) => hooks.confirm({ step: q.step, action: q.action, thought: q.thought, reasons: q.reasons }), askUser: (q) => hooks.askUser(q) },
      );
      const d = operator.display;
      hooks.onEvent({
        type: 'started', backend: backend.kind, destination: backend.destination, dryRun: operator.dryRun,
        display: { width: d.width, height: d.height, scale: d.scaleFactor }, episodeDir: store?.dir ?? null,
      });
      for (const w of warnings) hooks.onEvent({ type: 'warning', step: null, message: w });
      const done: Promise<RunResult> = agent.run().finally(() => {
        store?.close();
        desktop.close();
        void backend.close();
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
          limits.minPixels = n.agent.minPixels;
          limits.maxPixels = n.agent.maxPixels;
          operator.cornerAbort = n.safety.cornerAbort;
          if (n.safety.dryRun) operator.dryRunNow = true;
          else if (operator.dryRunNow) hooks.onEvent({ type: 'warning', step: null, message: 'dry run stays on for this task; it turns off from the next task' });
          try {
            const nb = makeBackend(n);
            if (nb.backend.destination !== backend.destination || nb.backend.kind !== backend.kind) {
              for (const w of nb.warnings) hooks.onEvent({ type: 'warning', step: null, message: w });
            }
            backend.inner = nb.backend;
          } catch (e) {
            hooks.onEvent({ type: 'warning', step: null, message: `model settings not applied to this task: ${(e as Error).message}` });
          }
        },
      };
    } catch (e) {
      store?.close();
      desktop.close();
      throw e;
    }
  }
}

function translate(e: AgentEvent, store: EpisodeWriter | null): import('./runner.ts').RunnerEvent | null {
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
      return { type: 'end', result: e.result };
  }
}
