// One agent session as the UI sees it: turns the runner's events into protocol events (screenshots into
// blob references, steps closed when the next begins), holds the confirmations and questions waiting for
// the user, and keeps what a window that connects mid-run needs: the steps and the latest state, bounded
// however long the episode runs (streamed text folded into one event, the KV telemetry of the last few
// steps plus an index of the others, which a window fetches on demand).
import { randomBytes } from 'node:crypto';
import { parseTelemetry, type SessionEvent } from '../protocol.ts';
import type { BlobStore } from './blobs.ts';
import { episodeFileUrl } from './episodes.ts';
import type { AgentRun, ConfirmQuestion, RunHooks, RunnerEvent, RunResult } from './runner.ts';

type Pending = { kind: 'confirm'; resolve: (v: boolean) => void } | { kind: 'ask'; resolve: (v: string | null) => void };

/** Telemetry of this many latest steps goes to a window that connects; it fetches older steps on demand. */
export const REPLAY_TELEMETRY_STEPS = 8;
/** KV telemetry held in memory for on-demand fetches (older steps come from the stored episode). */
export const HELD_TELEMETRY_BYTES = 64 << 20;
const MAX_MEMORY = 500;
const MAX_WARNINGS = 200;

type TelemetryEvent = Extract<SessionEvent, { type: 'telemetry.kv' }>;

export class Session {
  readonly id = `s-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  /** The session's course (steps, replies, actions, dialogs, state changes), in order, without what follows. */
  private readonly course: SessionEvent[] = [];
  /** The current step's streamed text since its last reply or parse error (one event on replay). */
  private streaming: { step: number; text: string } | null = null;
  private readonly memoryLog: SessionEvent[] = [];
  private readonly warningLog: SessionEvent[] = [];
  /** Every step that reported KV telemetry, in order; the latest reports are held, up to heldTelemetryBytes. */
  private readonly telemetrySteps: number[] = [];
  private readonly telemetry = new Map<number, { e: TelemetryEvent; bytes: number }>();
  private heldBytes = 0;
  state: 'starting' | 'running' | 'paused' | 'ended' = 'starting';
  run: AgentRun | null = null;
  private readonly pending = new Map<string, Pending>();
  private step: number | null = null;
  private episodeId: string | null = null;
  private ended = false;
  /** Aborted by a stop that comes while the runner is still starting (loading a model, opening the display). */
  private readonly startAbort = new AbortController();
  private launched: Promise<void> | null = null;

  constructor(
    readonly task: string,
    private readonly blobs: BlobStore,
    private readonly broadcast: (e: SessionEvent) => void,
    private readonly heldTelemetryBytes = HELD_TELEMETRY_BYTES,
  ) {}

  emit(e: SessionEvent): void {
    this.keep(e);
    this.broadcast(e);
  }

  private keep(e: SessionEvent): void {
    switch (e.type) {
      case 'tokens':
        if (this.streaming?.step !== e.step) this.streaming = { step: e.step, text: '' };
        this.streaming.text += e.delta;
        return;
      case 'telemetry.kv':
        return this.holdTelemetry(e);
      case 'memory':
        this.memoryLog.push(e);
        if (this.memoryLog.length > MAX_MEMORY) this.memoryLog.splice(0, this.memoryLog.length - MAX_MEMORY);
        return;
      case 'warning':
        this.warningLog.push(e);
        if (this.warningLog.length > MAX_WARNINGS) this.warningLog.splice(0, this.warningLog.length - MAX_WARNINGS);
        return;
      case 'reply':
      case 'parse.error':
      case 'step.started':
        this.streaming = null;
        break;
    }
    this.course.push(e);
  }

  private holdTelemetry(e: TelemetryEvent): void {
    const step = e.data.step;
    const prev = this.telemetry.get(step);
    if (prev) {
      this.heldBytes -= prev.bytes;
      this.telemetry.delete(step); // re-inserted as the newest
    } else this.telemetrySteps.push(step);
    const bytes = JSON.stringify(e.data).length;
    this.telemetry.set(step, { e, bytes });
    this.heldBytes += bytes;
    // Oldest first out, never the newest.
    for (const [k, v] of this.telemetry) {
      if (this.heldBytes <= this.heldTelemetryBytes || this.telemetry.size <= 1) break;
      this.telemetry.delete(k);
      this.heldBytes -= v.bytes;
    }
  }

  /**
   * What a window that connects now is sent: the course of the session, the streamed text of the current
   * step as one event, the latest memory figures and warnings, the index of the steps with KV telemetry
   * and the telemetry of the last few of them. Its size does not grow with the telemetry of past steps.
   */
  replay(): SessionEvent[] {
    const out: SessionEvent[] = [...this.course];
    if (this.streaming?.text) out.push({ type: 'tokens', sessionId: this.id, step: this.streaming.step, delta: this.streaming.text });
    out.push(...this.warningLog, ...this.memoryLog);
    if (this.telemetrySteps.length) out.push({ type: 'telemetry.index', sessionId: this.id, steps: [...this.telemetrySteps] });
    for (const step of this.telemetrySteps.slice(-REPLAY_TELEMETRY_STEPS)) {
      const held = this.telemetry.get(step);
      if (held) out.push(held.e);
    }
    return out;
  }

  /** The KV telemetry of a step while it is held in memory (older steps: the stored episode). */
  telemetryOf(step: number): TelemetryEvent | null {
    return this.telemetry.get(step)?.e ?? null;
  }

  /** The stored episode of this session (null when episodes are not saved). */
  get episode(): string | null {
    return this.episodeId;
  }

  hooks(): RunHooks {
    return {
      onEvent: (e) => {
        try {
          this.onRunnerEvent(e);
        } catch (err) {
          this.emit({ type: 'warning', sessionId: this.id, step: this.step, message: `event ${e.type} dropped: ${(err as Error).message}` });
        }
      },
      confirm: (q) => this.ask('confirm', q),
      askUser: (q) => this.ask('ask', q),
    };
  }

  private ask(kind: 'confirm', q: ConfirmQuestion): Promise<boolean>;
  private ask(kind: 'ask', q: { step: number; question: string }): Promise<string | null>;
  private ask(kind: 'confirm' | 'ask', q: ConfirmQuestion | { step: number; question: string }): Promise<boolean | string | null> {
    if (this.ended) return Promise.resolve(kind === 'confirm' ? false : null);
    const requestId = `r-${randomBytes(6).toString('hex')}`;
    return new Promise((resolve) => {
      if (kind === 'confirm') {
        const c = q as ConfirmQuestion;
        this.pending.set(requestId, { kind, resolve: resolve as (v: boolean) => void });
        this.emit({ type: 'confirm.request', sessionId: this.id, requestId, step: c.step, action: c.action, thought: c.thought, reasons: c.reasons });
      } else {
        const a = q as { step: number; question: string };
        this.pending.set(requestId, { kind, resolve: resolve as (v: string | null) => void });
        this.emit({ type: 'ask.request', sessionId: this.id, requestId, step: a.step, question: a.question });
      }
    });
  }

  /** Answers a waiting confirmation; false when there is no such request. */
  answerConfirm(requestId: string, approve: boolean): boolean {
    const p = this.pending.get(requestId);
    if (!p || p.kind !== 'confirm') return false;
    this.pending.delete(requestId);
    this.emit({ type: 'request.closed', sessionId: this.id, requestId, outcome: approve ? 'approved' : 'declined' });
    p.resolve(approve);
    return true;
  }

  answerAsk(requestId: string, answer: string | null): boolean {
    const p = this.pending.get(requestId);
    if (!p || p.kind !== 'ask') return false;
    this.pending.delete(requestId);
    this.emit({ type: 'request.closed', sessionId: this.id, requestId, outcome: answer === null ? 'dismissed' : 'answered' });
    p.resolve(answer);
    return true;
  }

  /** Declines every waiting confirmation and question (a stop must not hang on an open dialog). */
  closePending(outcome: string): void {
    for (const [requestId, p] of this.pending) {
      this.pending.delete(requestId);
      this.emit({ type: 'request.closed', sessionId: this.id, requestId, outcome });
      if (p.kind === 'confirm') p.resolve(false);
      else p.resolve(null);
    }
  }

  /**
   * Starts the run: the windows hear of the task at once (session.starting), and a stop from then on is
   * effective: before the runner is up it aborts the start (the run that may still come is stopped at once).
   * Rejects with the runner's error when the start fails for another reason.
   */
  launch(start: (signal: AbortSignal) => Promise<AgentRun>): Promise<void> {
    this.emit({ type: 'session.starting', sessionId: this.id, task: this.task, t: Date.now() });
    const signal = this.startAbort.signal;
    const p = (async () => {
      let run: AgentRun;
      try {
        run = await start(signal);
      } catch (err) {
        if (signal.aborted) return this.end({ status: 'stopped', steps: 0, error: String(signal.reason) });
        this.end({ status: 'error', steps: 0, error: (err as Error).message });
        throw err;
      }
      this.run = run;
      run.done.then(
        (result) => this.end(result),
        (err: Error) => this.end({ status: 'error', steps: 0, error: err.message }),
      );
      if (signal.aborted) await run.stop(String(signal.reason));
    })();
    this.launched = p.catch(() => {});
    return p;
  }

  /** Stops the task, whether it is running or still starting; after it resolves no input event is sent. */
  async stop(reason: string): Promise<void> {
    this.closePending('stopped');
    if (this.run) return this.run.stop(reason);
    this.startAbort.abort(reason);
    await this.launched;
  }

  end(result: RunResult): void {
    if (this.ended) return;
    this.closePending('ended');
    if (this.step !== null) this.emit({ type: 'step.finished', sessionId: this.id, step: this.step, t: Date.now() });
    this.ended = true;
    this.state = 'ended';
    this.emit({ type: 'session.ended', sessionId: this.id, result, t: Date.now() });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private onRunnerEvent(e: RunnerEvent): void {
    const sessionId = this.id;
    switch (e.type) {
      case 'started':
        this.state = 'running';
        this.episodeId = e.episodeDir ? e.episodeDir.split(/[\\/]/).pop()! : null;
        this.emit({ type: 'session.started', sessionId, task: this.task, dryRun: e.dryRun, backend: e.backend, destination: e.destination, display: e.display, episode: this.episodeId, t: Date.now() });
        return;
      case 'step': {
        if (this.step !== null) this.emit({ type: 'step.finished', sessionId, step: this.step, t: Date.now() });
        this.step = e.step;
        const g = e.geometry;
        // Served from the episode folder when stored there, else held once in memory.
        const url = e.file && this.episodeId ? episodeFileUrl(this.episodeId, e.file) : `/blob/${this.blobs.put(e.png, 'image/png', `step${e.step}`)}`;
        this.emit({ type: 'step.started', sessionId, step: e.step, t: Date.now(), geometry: g, screenshot: { id: `${sessionId}/${e.step}`, url, width: g.capture.width, height: g.capture.height } });
        return;
      }
      case 'text':
        this.emit({ type: 'tokens', sessionId, step: e.step, delta: e.delta });
        return;
      case 'reply':
        this.emit({ type: 'reply', sessionId, step: e.step, text: e.text, attempt: e.attempt, ms: e.ms });
        return;
      case 'parse_error':
        this.emit({ type: 'parse.error', sessionId, step: e.step, attempt: e.attempt, message: e.message, raw: e.raw });
        return;
      case 'action':
        this.emit({ type: 'action', sessionId, step: e.step, index: e.index, phase: 'planned', action: e.action, thought: e.thought });
        return;
      case 'executed':
        this.emit({ type: 'action', sessionId, step: e.step, index: e.index, phase: e.dryRun ? 'skipped' : 'executed', action: e.action, thought: '' });
        return;
      case 'warning':
        this.emit({ type: 'warning', sessionId, step: e.step, message: e.message });
        return;
      case 'paused':
        this.state = 'paused';
        this.emit({ type: 'session.paused', sessionId });
        return;
      case 'resumed':
        this.state = 'running';
        this.emit({ type: 'session.resumed', sessionId });
        return;
      case 'telemetry': {
        const r = parseTelemetry(e.data);
        if (r.ok) this.emit({ type: 'telemetry.kv', sessionId, data: r.value });
        else this.emit({ type: 'warning', sessionId, step: this.step, message: `KV telemetry rejected: ${r.reason}` });
        return;
      }
      case 'memory':
        this.emit({ type: 'memory', sessionId, step: e.step, data: e.data });
        return;
      case 'end':
        this.end(e.result);
        return;
    }
  }
}
