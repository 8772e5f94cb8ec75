// Past episodes (app/store trajectory folders): list them, and turn one into the same session events the
// live views render, so a replay uses the run view, the timeline and the KV inspector unchanged.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { readEpisode, RECORDS_FILE, type EpisodeRecord } from '../store/trajectory.ts';
import { ActionSchema, GeometrySchema, KvTelemetrySchema, MemorySchema, type EpisodeSummary, type KvTelemetry, type SessionEvent } from '../protocol.ts';

const ID_RE = /^[\w.+-]{1,200}$/;

export function episodeDir(root: string, id: string): string {
  if (!ID_RE.test(id) || id === '.' || id === '..') throw new Error(`'${id}' is not an episode id`);
  const dir = path.join(root, id);
  if (!existsSync(path.join(dir, RECORDS_FILE))) throw new Error(`no episode '${id}' in ${root}`);
  return dir;
}

export function listEpisodes(root: string, limit = 200): EpisodeSummary[] {
  if (!existsSync(root)) return [];
  const out: EpisodeSummary[] = [];
  const names = readdirSync(root).filter((n) => ID_RE.test(n)).sort().reverse();
  for (const id of names) {
    if (out.length >= limit) break;
    const dir = path.join(root, id);
    try {
      if (!statSync(dir).isDirectory() || !existsSync(path.join(dir, RECORDS_FILE))) continue;
      const { records } = readEpisode(dir);
      const head = records.find((r) => r.kind === 'episode');
      const end = [...records].reverse().find((r) => r.kind === 'end');
      out.push({
        id,
        task: typeof head?.task === 'string' ? head.task : '(unknown task)',
        started: head?.t ?? statSync(dir).mtimeMs,
        steps: records.filter((r) => r.kind === 'observation').length,
        status: typeof end?.status === 'string' ? end.status : null,
        dryRun: head?.dryRun === true,
      });
    } catch {
      // a folder we cannot read is not listed
    }
  }
  return out;
}

/** URL under which the server serves an episode's files. */
export const episodeFileUrl = (id: string, file: string) => `/episodes/${encodeURIComponent(id)}/${encodeURIComponent(file)}`;

/**
 * An episode's events as a window is sent them: the KV telemetry of the last `keep` steps and an index of
 * every step that has some (the window fetches the others with telemetry.get), so a long episode does not
 * flood it. Every other event is kept.
 */
export function boundedEpisodeEvents(events: SessionEvent[], keep: number): SessionEvent[] {
  const latest = new Map<number, Extract<SessionEvent, { type: 'telemetry.kv' }>>();
  for (const e of events) if (e.type === 'telemetry.kv') latest.set(e.data.step, e);
  const steps = [...latest.keys()];
  const sent = new Set(steps.slice(-keep));
  const out: SessionEvent[] = events.filter((e) => e.type !== 'telemetry.kv');
  if (steps.length) out.push({ type: 'telemetry.index', sessionId: events[0]!.sessionId ?? '', steps });
  for (const k of sent) out.push(latest.get(k)!);
  return out;
}

/** The KV telemetry the episode recorded for `step` (the latest record of it), or null. */
export function episodeTelemetry(root: string, id: string, step: number): KvTelemetry | null {
  const { records } = readEpisode(episodeDir(root, id));
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.kind !== 'telemetry' || r.step !== step) continue;
    const p = KvTelemetrySchema.safeParse(r.data);
    if (p.success) return p.data;
  }
  return null;
}

/** Replays an episode folder as session events (records that do not validate are skipped). */
export function episodeEvents(root: string, id: string): SessionEvent[] {
  const dir = episodeDir(root, id);
  const { records, tornTail } = readEpisode(dir);
  const sessionId = `episode:${id}`;
  const out: SessionEvent[] = [];
  let thought = '';
  let lastStep: number | null = null;
  let ended = false;
  const num = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  const finishStep = (r: EpisodeRecord) => {
    if (lastStep !== null) out.push({ type: 'step.finished', sessionId, step: lastStep, t: r.t });
  };
  for (const r of records) {
    switch (r.kind) {
      case 'episode': {
        const d = r.display as { width?: number; height?: number; scaleFactor?: number } | undefined;
        out.push({
          type: 'session.started', sessionId, task: String(r.task ?? ''), dryRun: r.dryRun === true, backend: String(r.backend ?? ''),
          destination: String(r.destination ?? ''), display: d && d.width && d.height ? { width: d.width, height: d.height, scale: d.scaleFactor ?? 1 } : null,
          episode: id, t: r.t,
        });
        break;
      }
      case 'observation': {
        const g = GeometrySchema.safeParse(r.geometry);
        if (!g.success || typeof r.file !== 'string') break;
        finishStep(r);
        lastStep = num(r.step);
        out.push({
          type: 'step.started', sessionId, step: lastStep, t: r.t, geometry: g.data,
          screenshot: { id: `${id}/${r.file}`, url: episodeFileUrl(id, r.file), width: g.data.capture.width, height: g.data.capture.height },
        });
        break;
      }
      case 'reply':
        if (typeof r.text === 'string') out.push({ type: 'reply', sessionId, step: num(r.step), text: r.text, attempt: num(r.attempt), ms: num(r.ms) });
        break;
      case 'parse_error':
        out.push({ type: 'parse.error', sessionId, step: num(r.step), attempt: num(r.attempt), message: String(r.message ?? ''), raw: String(r.raw ?? '') });
        break;
      case 'actions': {
        thought = typeof r.thought === 'string' ? r.thought : '';
        const list = Array.isArray(r.actions) ? (r.actions as Array<{ screen?: unknown }>) : [];
        list.forEach((a, index) => {
          const p = ActionSchema.safeParse(a.screen);
          if (p.success) out.push({ type: 'action', sessionId, step: num(r.step), index, phase: 'planned', action: p.data, thought });
        });
        break;
      }
      case 'executed': {
        const p = ActionSchema.safeParse(r.action);
        if (p.success) out.push({ type: 'action', sessionId, step: num(r.step), index: num(r.index), phase: r.dryRun ? 'skipped' : 'executed', action: p.data, thought });
        break;
      }
      case 'warning':
        out.push({ type: 'warning', sessionId, step: typeof r.step === 'number' ? r.step : null, message: String(r.message ?? '') });
        break;
      case 'telemetry': {
        const p = KvTelemetrySchema.safeParse(r.data);
        if (p.success) out.push({ type: 'telemetry.kv', sessionId, data: p.data });
        break;
      }
      case 'memory': {
        const p = MemorySchema.safeParse(r.data);
        if (p.success) out.push({ type: 'memory', sessionId, step: typeof r.step === 'number' ? r.step : null, data: p.data });
        break;
      }
      case 'end':
        finishStep(r);
        lastStep = null;
        ended = true;
        out.push({
          type: 'session.ended', sessionId, t: r.t,
          result: {
            status: String(r.status ?? 'unknown'), steps: num(r.steps),
            ...(typeof r.answer === 'string' ? { answer: r.answer } : {}),
            ...(typeof r.error === 'string' ? { error: r.error } : {}),
            ...(typeof r.raw === 'string' ? { raw: r.raw } : {}),
          },
        });
        break;
      default:
        break;
    }
  }
  if (!ended) {
    const t = records.at(-1)?.t ?? 0;
    out.push({
      type: 'session.ended', sessionId, t,
      result: { status: 'interrupted', steps: lastStep ?? 0, error: `the episode has no end record${tornTail ? ' (its last line was torn)' : ''}: the process stopped mid-episode` },
    });
  }
  return out;
}
