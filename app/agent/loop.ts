// The agent loop: observe -> prompt -> model -> parse -> safety gate -> act -> record, with stop at any
// moment, pause/resume between actions, bounded retries of unparsable replies, and repeat detection.
import { BlankFrameError, thumbnailChange } from '../desktop/capture.ts';
import { StoppedError } from '../desktop/input.ts';
import { GenerationCancelled, type GenerateResult, type ModelBackend } from '../model/backends/types.ts';
import type { EpisodeWriter } from '../store/trajectory.ts';
import { actionKey, describeAction, isInput, type ModelAction, type ScreenAction } from './actions.ts';
import { annotatePng } from './annotate.ts';
import { mapAction } from './coords.ts';
import type { Observation, Operator } from './operator.ts';
import { parseReply, ReplyParseError, type ParsedReply } from './parse.ts';
import { buildMessages, renderPrompt, type HistoryTurn } from './prompt.ts';
import { assessRisk, DEFAULT_RISK_POLICY, type ConfirmFn, type RiskPolicy } from './safety.ts';

export interface AgentConfig {
  task: string;
  maxSteps?: number;
  historyImages?: number;
  language?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  /** Unparsable replies are asked again this many times (at retryTemperature), then the episode stops. */
  parseRetries?: number;
  retryTemperature?: number;
  /** wait() sleeps this long (ms). */
  waitMs?: number;
  /** After acting: wait at least minMs, then until two screens in a row match, at most maxMs. */
  settle?: { minMs: number; maxMs: number; intervalMs: number };
  /** The same action on an unchanged screen this many times in a row: warn / stop. */
  repeatWarn?: number;
  repeatStop?: number;
  risk?: RiskPolicy;
  systemMessage?: boolean;
  /** Frames that come back blank are captured again this many times before the episode stops. */
  blankRetries?: number;
}

export type EpisodeStatus = 'finished' | 'stopped' | 'max_steps' | 'call_user' | 'parse_error' | 'repeat' | 'declined' | 'error';

export interface EpisodeResult {
  status: EpisodeStatus;
  steps: number;
  answer?: string;
  error?: string;
  /** The model's raw reply when it could not be parsed. */
  raw?: string;
}

export type AgentEvent =
  | { type: 'step'; step: number; obs: Observation }
  | { type: 'text'; step: number; delta: string }
  | { type: 'reply'; step: number; text: string; attempt: number; ms: number }
  | { type: 'parse_error'; step: number; attempt: number; message: string; raw: string }
  | { type: 'action'; step: number; index: number; action: ScreenAction; model: ModelAction; thought: string; dryRun: boolean }
  | { type: 'warning'; step: number; message: string }
  | { type: 'paused' }
  | { type: 'resumed' }
  | { type: 'end'; result: EpisodeResult };

/** Where the loop records its trajectory (app/store/trajectory.ts EpisodeWriter, or a wrapper of one). */
export type TrajectoryStore = Pick<EpisodeWriter, 'dir' | 'append' | 'writeFile'>;

export interface AgentHooks {
  onEvent?: (e: AgentEvent) => void;
  /** Risky actions wait for this; without it they are declined. */
  confirm?: ConfirmFn;
  /** call_user: the question (the model's thought); resolve with the answer, or null to end the episode. */
  askUser?: (q: { step: number; question: string }) => Promise<string | null>;
}

class StopRequested extends Error {}

class EndEpisode extends Error {
  constructor(readonly result: Omit<EpisodeResult, 'steps'>) {
    super(result.status);
  }
}

const DEFAULTS = {
  maxSteps: 100, historyImages: 5, language: 'English', maxTokens: 500, temperature: 0, parseRetries: 3,
  retryTemperature: 1, waitMs: 5000, repeatWarn: 3, repeatStop: 5, blankRetries: 2,
  settle: { minMs: 250, maxMs: 2000, intervalMs: 150 },
};

export class Agent {
  readonly cfg: AgentConfig & typeof DEFAULTS;
  private readonly abort = new AbortController();
  private stopReason: string | null = null;
  private halted: Promise<void> | null = null;
  private paused: { promise: Promise<void>; resolve: () => void } | null = null;
  private readonly turns: HistoryTurn[] = [];
  private step = 0;
  private repeat = { key: '', thumb: null as Uint8Array | null, count: 0 };

  constructor(
    cfg: AgentConfig,
    private readonly backend: ModelBackend,
    private readonly operator: Operator,
    private readonly store: TrajectoryStore | null = null,
    private readonly hooks: AgentHooks = {},
  ) {
    // A key given as undefined (an option the user left out) keeps its default.
    const given = Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined)) as AgentConfig;
    this.cfg = { ...DEFAULTS, ...given, settle: cfg.settle ?? DEFAULTS.settle };
    if (!cfg.task.trim()) throw new Error('the task is empty');
  }

  get stopped(): boolean {
    return this.stopReason !== null;
  }

  /** Stops now: cancels generation and waits; after it resolves no input event is sent. Safe to call twice. */
  stop(reason = 'stopped by the user'): Promise<void> {
    if (this.stopReason === null) {
      this.stopReason = reason;
      this.abort.abort();
      this.paused?.resolve();
    }
    this.halted ??= this.operator.halt(reason);
    return this.halted;
  }

  /** Pauses before the next action (or step). */
  pause(): void {
    if (this.paused || this.stopped) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.paused = { promise, resolve };
    this.emit({ type: 'paused' });
  }

  resume(): void {
    const p = this.paused;
    if (!p) return;
    this.paused = null;
    p.resolve();
    this.emit({ type: 'resumed' });
  }

  get isPaused(): boolean {
    return this.paused !== null;
  }

  private emit(e: AgentEvent): void {
    try {
      this.hooks.onEvent?.(e);
    } catch {
      // a broken listener must not break the episode
    }
  }

  private record(kind: string, data: Record<string, unknown> = {}): void {
    this.store?.append(kind, data);
  }

  private async checkpoint(): Promise<void> {
    while (this.paused && !this.stopped) await this.paused.promise;
    if (this.stopped) throw new StopRequested();
  }

  /** A promise that rejects with StopRequested as soon as the agent is stopped (a pending question to the user). */
  private untilStopped<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.abort.signal.aborted) return reject(new StopRequested());
      const onAbort = () => reject(new StopRequested());
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      p.then(resolve, reject).finally(() => this.abort.signal.removeEventListener('abort', onAbort));
    });
  }

  /** Abort signal of this run (cancels generation; a UI can pass it to its own prompts). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.abort.signal.aborted) return reject(new StopRequested());
      const t = setTimeout(() => (this.abort.signal.removeEventListener('abort', onAbort), resolve()), ms);
      const onAbort = () => (clearTimeout(t), reject(new StopRequested()));
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async run(): Promise<EpisodeResult> {
    const c = this.cfg;
    this.record('episode', {
      task: c.task, backend: this.backend.kind, destination: this.backend.destination, dryRun: this.operator.dryRun,
      display: this.operator.display, prompt: renderPrompt(c.task, c.language),
      config: { maxSteps: c.maxSteps, historyImages: c.historyImages, maxTokens: c.maxTokens, temperature: c.temperature, topP: c.topP, parseRetries: c.parseRetries },
    });
    const unwatch = this.operator.watchCorners?.(() => void this.stop('the mouse was moved to a screen corner'));
    let result: EpisodeResult;
    try {
      for (;;) {
        if (this.step >= c.maxSteps) {
          result = { status: 'max_steps', steps: this.step, error: `reached the limit of ${c.maxSteps} steps` };
          break;
        }
        await this.checkpoint();
        this.step++;
        await this.runStep();
      }
    } catch (e) {
      if (this.stopped || e instanceof StopRequested || e instanceof StoppedError || e instanceof GenerationCancelled) {
        result = { status: 'stopped', steps: this.step, error: this.stopReason ?? (e as Error).message };
      } else if (e instanceof EndEpisode) {
        result = { ...e.result, steps: this.step };
      } else {
        result = { status: 'error', steps: this.step, error: (e as Error).message };
      }
    } finally {
      unwatch?.();
    }
    if (result.status === 'stopped') await this.stop(this.stopReason ?? 'stopped');
    try {
      this.record('end', { ...result });
    } catch (e) {
      result.error = `${result.error ?? ''} (and the trajectory could not be written: ${(e as Error).message})`.trim();
    }
    this.emit({ type: 'end', result });
    return result;
  }

  private async observe(): Promise<Observation> {
    for (let i = 0; ; i++) {
      try {
        return await this.operator.observe(this.step);
      } catch (e) {
        if (!(e instanceof BlankFrameError) || i >= this.cfg.blankRetries) throw e;
        this.warn(`${e.message}; capturing again`);
        await this.sleep(300);
      }
    }
  }

  private warn(message: string): void {
    this.record('warning', { step: this.step, message });
    this.emit({ type: 'warning', step: this.step, message });
  }

  private async runStep(): Promise<void> {
    const step = this.step;
    const obs = await this.observe();
    const file = this.store?.writeFile(`step-${String(step).padStart(4, '0')}.png`, obs.capturePng);
    this.record('observation', { step, file, geometry: obs.geometry, timings: obs.timings });
    this.emit({ type: 'step', step, obs });
    this.turns.push({ screenshot: obs.image });
    const parsed = await this.ask(step);
    this.turns[this.turns.length - 1]!.reply = parsed.raw;
    const mapped = parsed.actions.map((a) => ({ model: a, ...mapAction(a, obs.geometry) }));
    this.record('actions', { step, thought: parsed.thought, actions: mapped.map((m) => ({ model: m.model, screen: m.action, clamped: m.clamped })) });
    if (this.operator.dryRun && this.store) {
      const png = await annotatePng(obs.capturePng, mapped.map((m) => m.action), obs.geometry);
      this.store.writeFile(`step-${String(step).padStart(4, '0')}-plan.png`, png);
    }
    let acted = false;
    for (const [index, m] of mapped.entries()) {
      await this.checkpoint();
      const a = m.action;
      if (m.clamped) this.warn(`the model pointed outside the screen; clamped to ${describeAction(a)}`);
      this.emit({ type: 'action', step, index, action: a, model: m.model, thought: parsed.thought, dryRun: this.operator.dryRun });
      if (a.type === 'finished') throw new EndEpisode({ status: 'finished', answer: a.content || parsed.thought });
      if (a.type === 'call_user') {
        const question = a.content || parsed.thought || 'The agent needs your help.';
        this.record('call_user', { step, question });
        const answer = this.hooks.askUser ? await this.untilStopped(this.hooks.askUser({ step, question })) : null;
        await this.checkpoint();
        this.record('user', { step, answer });
        if (answer === null || !answer.trim()) throw new EndEpisode({ status: 'call_user', answer: question });
        this.turns[this.turns.length - 1]!.userNote = answer;
        return;
      }
      if (a.type === 'wait') {
        await this.sleep(this.cfg.waitMs);
        continue;
      }
      this.checkRepeat(a, obs);
      const reasons = assessRisk(a, parsed.thought, this.cfg.risk ?? DEFAULT_RISK_POLICY);
      if (reasons.length) {
        const ok = this.hooks.confirm ? await this.untilStopped(this.hooks.confirm({ step, action: a, thought: parsed.thought, reasons })) : false;
        await this.checkpoint();
        this.record('confirm', { step, index, action: a, reasons, approved: ok });
        if (!ok) throw new EndEpisode({ status: 'declined', error: `risky action declined: ${describeAction(a)} (${reasons.join('; ')})` });
      }
      const t0 = performance.now();
      await this.operator.execute(a);
      acted ||= isInput(a);
      this.record('executed', { step, index, action: a, ms: Math.round(performance.now() - t0), dryRun: this.operator.dryRun });
    }
    if (acted && !this.operator.dryRun) await this.settle();
  }

  /** Asks the model, retrying unparsable replies; throws EndEpisode('parse_error') with the raw text. */
  private async ask(step: number): Promise<ParsedReply> {
    const c = this.cfg;
    for (let attempt = 0; ; attempt++) {
      const messages = buildMessages(this.turns, { instruction: c.task, language: c.language, historyImages: c.historyImages, systemMessage: c.systemMessage });
      const images = messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content.flatMap((p) => (p.type === 'image' ? [p.image.id] : []))));
      this.record('request', { step, attempt, messages: messages.length, images });
      let res: GenerateResult;
      try {
        res = await this.backend.generate({
          messages, maxTokens: c.maxTokens, temperature: attempt === 0 ? c.temperature : c.retryTemperature, topP: c.topP,
          signal: this.abort.signal, episode: this.store?.dir, onText: (delta) => this.emit({ type: 'text', step, delta }),
        });
      } catch (e) {
        if (e instanceof GenerationCancelled) this.record('reply', { step, attempt, text: e.partial, cancelled: true });
        throw e;
      }
      if (this.stopped) throw new StopRequested();
      this.record('reply', { step, attempt, text: res.text, finishReason: res.finishReason, usage: res.usage, ms: Math.round(res.timings.totalMs) });
      this.emit({ type: 'reply', step, text: res.text, attempt, ms: res.timings.totalMs });
      try {
        return parseReply(res.text);
      } catch (e) {
        if (!(e instanceof ReplyParseError)) throw e;
        this.record('parse_error', { step, attempt, message: e.message, raw: res.text });
        this.emit({ type: 'parse_error', step, attempt, message: e.message, raw: res.text });
        if (attempt >= c.parseRetries) {
          throw new EndEpisode({ status: 'parse_error', error: `the model's reply could not be parsed after ${attempt + 1} attempts: ${e.message}`, raw: res.text });
        }
      }
    }
  }

  /** Same action, same screen as last time: count; warn, then stop the episode. */
  private checkRepeat(a: ScreenAction, obs: Observation): void {
    const key = actionKey(a);
    const r = this.repeat;
    const same = key === r.key && r.thumb !== null && thumbnailChange(r.thumb, obs.thumb) < 0.002;
    r.count = same ? r.count + 1 : 1;
    r.key = key;
    r.thumb = obs.thumb;
    if (r.count >= this.cfg.repeatStop) {
      throw new EndEpisode({ status: 'repeat', error: `the model repeated ${describeAction(a)} ${r.count} times on an unchanged screen` });
    }
    if (r.count >= this.cfg.repeatWarn) this.warn(`repeated action: ${describeAction(a)} (${r.count} times in a row, screen unchanged)`);
  }

  /** Waits for the screen to stop changing after an action (#318: screenshots taken before the UI settled). */
  private async settle(): Promise<void> {
    const s = this.cfg.settle;
    await this.sleep(s.minMs);
    const end = performance.now() + Math.max(0, s.maxMs - s.minMs);
    let prev = await this.operator.peek();
    while (performance.now() < end) {
      await this.sleep(s.intervalMs);
      const cur = await this.operator.peek();
      if (thumbnailChange(prev, cur) < 0.002) return;
      prev = cur;
    }
  }
}
