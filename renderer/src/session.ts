// What the views show of one session (live or replayed), folded from protocol events. Pure: no DOM.
import type { Geometry, KvTelemetry, Memory, SessionEvent, ShotRef, WireAction } from '../../app/protocol.ts';

export type Phase = 'planned' | 'executed' | 'skipped';

export interface StepAction {
  index: number;
  action: WireAction;
  phase: Phase;
}

export interface StepView {
  step: number;
  screenshot: ShotRef | null;
  geometry: Geometry | null;
  /** The model's reply as it streams (replaced by the final text when it arrives). */
  text: string;
  thought: string;
  actions: StepAction[];
  parseErrors: string[];
  finished: boolean;
  started: number;
  ended: number | null;
  replyMs: number | null;
}

export interface SessionView {
  id: string;
  source: 'live' | 'replay';
  task: string;
  dryRun: boolean;
  backend: string;
  destination: string;
  display: { width: number; height: number; scale: number } | null;
  episode: string | null;
  /** starting: the host is loading the model / opening the display (Stop already works). */
  status: 'starting' | 'running' | 'paused' | 'ended';
  steps: StepView[];
  warnings: Array<{ step: number | null; message: string }>;
  confirm: { requestId: string; step: number; action: WireAction; thought: string; reasons: string[] } | null;
  ask: { requestId: string; step: number; question: string } | null;
  result: { status: string; steps: number; answer?: string; error?: string; raw?: string } | null;
  /** Telemetry by step (the latest per step wins): the steps this window holds, at most HELD_TELEMETRY. */
  telemetry: Record<number, KvTelemetry>;
  /** Every step with KV telemetry, ascending (those not held are fetched with telemetry.get). */
  telemetrySteps: number[];
  memory: Array<{ step: number | null; data: Memory; t: number }>;
  started: number;
}

export function emptySession(id: string, source: 'live' | 'replay'): SessionView {
  return {
    id, source, task: '', dryRun: false, backend: '', destination: '', display: null, episode: null, status: 'running', steps: [],
    warnings: [], confirm: null, ask: null, result: null, telemetry: {}, telemetrySteps: [], memory: [], started: Date.now(),
  };
}

/** Telemetry steps a window holds at once (a long episode's older steps are fetched again when looked at). */
export const HELD_TELEMETRY = 64;

function withSteps(have: number[], add: number[]): number[] {
  const out = new Set(have);
  let changed = false;
  for (const k of add) if (!out.has(k)) (out.add(k), (changed = true));
  return changed ? [...out].sort((a, b) => a - b) : have;
}

function holdTelemetry(held: Record<number, KvTelemetry>, t: KvTelemetry): Record<number, KvTelemetry> {
  const next = { ...held, [t.step]: t };
  // the oldest steps go first; never the one that just came
  const drop = Object.keys(next).map(Number).filter((k) => k !== t.step).sort((a, b) => a - b);
  for (let i = 0, n = drop.length + 1; n > HELD_TELEMETRY; i++, n--) delete next[drop[i]!];
  return next;
}

/** Splits a UI-TARS reply into its thought and the rest. */
export function splitThought(text: string): { thought: string; action: string } {
  const a = text.search(/\n?\s*Action\s*:/);
  const body = a >= 0 ? text.slice(0, a) : text;
  const thought = body.replace(/^\s*(Thought|Reflection)\s*:\s*/i, '').trim();
  return { thought, action: a >= 0 ? text.slice(a).replace(/^\s*Action\s*:\s*/, '').trim() : '' };
}

function withStep(s: SessionView, step: number, f: (v: StepView) => StepView): SessionView {
  const i = s.steps.findIndex((x) => x.step === step);
  const base: StepView =
    i >= 0 ? s.steps[i]! : { step, screenshot: null, geometry: null, text: '', thought: '', actions: [], parseErrors: [], finished: false, started: Date.now(), ended: null, replyMs: null };
  const next = f(base);
  const steps = [...s.steps];
  if (i >= 0) steps[i] = next;
  else {
    steps.push(next);
    steps.sort((a, b) => a.step - b.step);
  }
  return { ...s, steps };
}

/** Folds one event into the session (events of other sessions start a new one). */
export function reduceSession(prev: SessionView | null, e: SessionEvent, source: 'live' | 'replay' = 'live'): SessionView {
  let s = prev && prev.id === e.sessionId ? prev : emptySession(e.sessionId ?? 'unknown', source);
  switch (e.type) {
    case 'session.starting':
      return s.status === 'ended' ? s : { ...s, task: e.task, status: 'starting', started: e.t };
    case 'session.started':
      return { ...s, task: e.task, dryRun: e.dryRun, backend: e.backend, destination: e.destination, display: e.display, episode: e.episode, status: 'running', started: e.t };
    case 'step.started':
      return withStep(s, e.step, (v) => ({ ...v, screenshot: e.screenshot, geometry: e.geometry, started: e.t }));
    case 'tokens':
      return withStep(s, e.step, (v) => {
        const text = v.text + e.delta;
        return { ...v, text, thought: splitThought(text).thought };
      });
    case 'reply':
      return withStep(s, e.step, (v) => ({ ...v, text: e.text, thought: splitThought(e.text).thought, replyMs: e.ms }));
    case 'parse.error':
      return withStep(s, e.step, (v) => ({ ...v, parseErrors: [...v.parseErrors, e.message], text: '' }));
    case 'action':
      return withStep(s, e.step, (v) => {
        const actions = v.actions.filter((a) => a.index !== e.index);
        actions.push({ index: e.index, action: e.action, phase: e.phase });
        actions.sort((a, b) => a.index - b.index);
        return { ...v, actions, thought: v.thought || e.thought };
      });
    case 'step.finished':
      return withStep(s, e.step, (v) => ({ ...v, finished: true, ended: e.t }));
    case 'confirm.request':
      return { ...s, confirm: { requestId: e.requestId, step: e.step, action: e.action, thought: e.thought, reasons: e.reasons } };
    case 'ask.request':
      return { ...s, ask: { requestId: e.requestId, step: e.step, question: e.question } };
    case 'request.closed':
      return {
        ...s,
        confirm: s.confirm?.requestId === e.requestId ? null : s.confirm,
        ask: s.ask?.requestId === e.requestId ? null : s.ask,
      };
    case 'warning':
      return { ...s, warnings: [...s.warnings, { step: e.step, message: e.message }].slice(-200) };
    case 'session.paused':
      return s.status === 'ended' ? s : { ...s, status: 'paused' };
    case 'session.resumed':
      return s.status === 'ended' ? s : { ...s, status: 'running' };
    case 'session.ended':
      s = { ...s, status: 'ended', result: e.result, confirm: null, ask: null };
      return { ...s, steps: s.steps.map((v) => (v.finished ? v : { ...v, finished: true, ended: e.t })) };
    case 'telemetry.kv':
      return { ...s, telemetry: holdTelemetry(s.telemetry, e.data), telemetrySteps: withSteps(s.telemetrySteps, [e.data.step]) };
    case 'telemetry.index':
      return { ...s, telemetrySteps: withSteps(s.telemetrySteps, e.steps) };
    case 'memory': {
      // one figure per step: the latest report of a step replaces the earlier ones
      const rest = e.step === null ? s.memory : s.memory.filter((m) => m.step !== e.step);
      return { ...s, memory: [...rest, { step: e.step, data: e.data, t: Date.now() }].slice(-500) };
    }
  }
}

export function foldEvents(events: SessionEvent[], source: 'live' | 'replay'): SessionView | null {
  let s: SessionView | null = null;
  for (const e of events) s = reduceSession(s, e, source);
  return s;
}

/** Screen point -> screenshot pixel: the inverse of app/agent/coords.ts's mapping (one formula). */
export function toPixel(p: { x: number; y: number }, g: Geometry): { x: number; y: number } {
  return { x: (p.x - g.origin.x) * g.injectorScale, y: (p.y - g.origin.y) * g.injectorScale };
}

export function describe(a: WireAction): string {
  const pt = (p: { x: number; y: number }) => `(${Math.round(p.x)}, ${Math.round(p.y)})`;
  switch (a.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      return `${{ click: 'click', left_double: 'double-click', right_single: 'right-click', hover: 'hover' }[a.type]} ${pt(a.point)}`;
    case 'drag':
      return `drag ${pt(a.from)} → ${pt(a.to)}`;
    case 'scroll':
      return `scroll ${a.direction}${a.point ? ` at ${pt(a.point)}` : ''}`;
    case 'hotkey':
      return `hotkey ${a.keys}`;
    case 'type':
      return `type "${a.text.length > 60 ? a.text.slice(0, 57) + '…' : a.text}"`;
    case 'wait':
      return 'wait';
    case 'finished':
      return 'finished';
    case 'call_user':
      return 'ask the user';
  }
}
