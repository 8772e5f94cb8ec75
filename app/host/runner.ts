// The narrow interface through which the host drives an agent. The host knows nothing of X11, models or
// the agent loop's internals; app/host/desktop-runner.ts adapts app/agent's Agent to it, and a native
// engine backend adds KV telemetry and memory through the same event stream.
import type { Geometry, KvTelemetry, Memory, Settings, WireAction } from '../protocol.ts';

export interface RunRequest {
  task: string;
  settings: Settings;
  /**
   * Aborted when the user stops the task before start() has resolved (a model load takes minutes): start()
   * then rejects promptly, with StartStopped, and nothing it was still preparing may send input later.
   */
  signal?: AbortSignal;
}

/** start() gave up because the task was stopped while it was starting. */
export class StartStopped extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'StartStopped';
  }
}

/**
 * `p`, or a StartStopped rejection as soon as `signal` aborts. What `p` yields after the abort is handed
 * to `discard` (close a desktop, drop a backend): the work itself cannot always be cancelled (a model load).
 */
export function unlessStopped<T>(p: Promise<T>, signal: AbortSignal | undefined, discard?: (v: T) => void): Promise<T> {
  if (!signal) return p;
  const reason = () => new StartStopped(String(signal.reason ?? 'stopped while starting'));
  if (signal.aborted) {
    p.then((v) => discard?.(v), () => {});
    return Promise.reject(reason());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.then((v) => discard?.(v), () => {});
      reject(reason());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return; // already rejected; onAbort hands v to discard
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export type RunnerEvent =
  | { type: 'started'; backend: string; destination: string; dryRun: boolean; display: { width: number; height: number; scale: number } | null; episodeDir: string | null }
  /** A new step: the screenshot as captured (PNG, capture size) and how screen points map onto it. */
  | { type: 'step'; step: number; png: Buffer; file: string | null; geometry: Geometry }
  | { type: 'text'; step: number; delta: string }
  | { type: 'reply'; step: number; text: string; attempt: number; ms: number }
  | { type: 'parse_error'; step: number; attempt: number; message: string; raw: string }
  /** Parsed and mapped to screen points; about to pass the safety gate. */
  | { type: 'action'; step: number; index: number; action: WireAction; thought: string }
  /** Handed to the input layer at exactly these points (or skipped in dry run). */
  | { type: 'executed'; step: number; index: number; action: WireAction; dryRun: boolean }
  | { type: 'warning'; step: number | null; message: string }
  | { type: 'paused' }
  | { type: 'resumed' }
  /** From an engine backend only: real per-layer KV telemetry of a step. */
  | { type: 'telemetry'; data: KvTelemetry }
  | { type: 'memory'; step: number | null; data: Memory }
  | { type: 'end'; result: RunResult };

export interface RunResult {
  status: string;
  steps: number;
  answer?: string;
  error?: string;
  raw?: string;
}

export interface ConfirmQuestion {
  step: number;
  action: WireAction;
  thought: string;
  reasons: string[];
}

export interface RunHooks {
  onEvent(e: RunnerEvent): void;
  /** A risky action waits for this. */
  confirm(q: ConfirmQuestion): Promise<boolean>;
  /** The model asks the user (call_user); null ends the episode. */
  askUser(q: { step: number; question: string }): Promise<string | null>;
}

export interface AgentRun {
  pause(): void;
  resume(): void;
  /** After it resolves, no further input event is sent. */
  stop(reason: string): Promise<void>;
  /** New settings, applied from the next step on (what cannot change mid-episode is said in a warning). */
  applySettings(s: Settings): void;
  readonly done: Promise<RunResult>;
}

export interface AgentRunner {
  /** Starts an episode; rejects with a clear message when it cannot (no display, bad endpoint...), and with
   *  StartStopped as soon as `req.signal` aborts. */
  start(req: RunRequest, hooks: RunHooks): Promise<AgentRun>;
  /** Frees what the runner keeps between tasks (a loaded engine). */
  dispose?(): void;
}
