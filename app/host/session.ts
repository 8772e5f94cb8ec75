// One agent session as the UI sees it: turns the runner's events into protocol events (screenshots into
// blob references, steps closed when the next begins), holds the confirmations and questions waiting for
// the user, and keeps the event log a window that connects mid-run replays.
import { randomBytes } from 'node:crypto';
import { parseTelemetry, type SessionEvent } from '../protocol.ts';
import type { BlobStore } from './blobs.ts';
import { episodeFileUrl } from './episodes.ts';
import type { AgentRun, ConfirmQuestion, RunHooks, RunnerEvent, RunResult } from './runner.ts';

type Pending = { kind: 'confirm'; resolve: (v: boolean) => void } | { kind: 'ask'; resolve: (v: string | null) => void };

const MAX_LOG = 50_000;

export class Session {
  readonly id = `s-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  readonly log: SessionEvent[] = [];
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
  ) {}

  emit(e: SessionEvent): void {
    if (this.log.length < MAX_LOG || e.type !== 'tokens') this.log.push(e);
    this.broadcast(e);
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
