// The host behind both transports: malformed messages are answered with reasons and never take it down;
// a session's runner events become protocol events (screenshots by reference, steps closed); risky
// actions wait for a reply from any window; stop closes open dialogs; settings reach the running task.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Host } from '../../app/host/host.ts';
import { StartStopped, unlessStopped, type AgentRun, type AgentRunner, type RunHooks, type RunResult } from '../../app/host/runner.ts';
import { defaultSettings, SettingsStore } from '../../app/host/settings.ts';
import { encodeBits, parseEvent, type HostEvent, type KvTelemetry, type SessionEvent, type Settings } from '../../app/protocol.ts';
import { EpisodeWriter } from '../../app/store/trajectory.ts';
import { foldEvents } from '../../renderer/src/session.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const GEOMETRY = { origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: 640, height: 400 }, sent: { width: 640, height: 400 }, resized: { width: 644, height: 392 }, coordSpace: 'absolute' as const };

/** A test double of the agent: the test drives its events by hand through `hooks`. */
class HandRunner implements AgentRunner {
  hooks!: RunHooks;
  episodeDir: string | null = null;
  applied: Settings[] = [];
  stops: string[] = [];
  private finish!: (r: RunResult) => void;
  async start(_req: unknown, hooks: RunHooks): Promise<AgentRun> {
    this.hooks = hooks;
    hooks.onEvent({ type: 'started', backend: 'openai', destination: 'http://127.0.0.1:1/v1', dryRun: true, display: { width: 640, height: 400, scale: 1 }, episodeDir: this.episodeDir });
    const done = new Promise<RunResult>((r) => (this.finish = r));
    return {
      pause: () => hooks.onEvent({ type: 'paused' }),
      resume: () => hooks.onEvent({ type: 'resumed' }),
      stop: async (reason) => {
        this.stops.push(reason);
        this.finish({ status: 'stopped', steps: 1, error: reason });
      },
      applySettings: (s) => this.applied.push(s),
      done,
    };
  }
  end(r: RunResult) {
    this.finish(r);
  }
}

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-host-'));
  dirs.push(dir);
  const runner = new HandRunner();
  const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner, mode: 'web', log: () => {} });
  const a: HostEvent[] = [];
  const b: HostEvent[] = [];
  const ca = host.connect((e) => a.push(e));
  const cb = host.connect((e) => b.push(e));
  return { host, runner, a, b, ca, cb };
}

const tick = () => new Promise((r) => setTimeout(r, 5));
const types = (es: HostEvent[]) => es.map((e) => e.type);

describe('host', () => {
  it('greets each client with the settings (no API key) and the method table', () => {
    const { a } = setup();
    expect(a[0]).toMatchObject({ type: 'hello', protocol: 1, mode: 'web', live: false });
    expect(parseEvent(a[0]).ok).toBe(true);
  });

  it('answers garbage with reasons and stays up (fuzz)', async () => {
    const { host, a, ca } = setup();
    let seed = 9;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const garbage: unknown[] = [undefined, null, 0, '', '{', '[]', 'null', {}, { type: null }, { type: 'task.start', task: 5 }, { type: 'confirm.reply', requestId: 'nope', approve: true }];
    for (let i = 0; i < 500; i++) {
      const bytes = Array.from({ length: Math.floor(rnd() * 60) }, () => String.fromCharCode(Math.floor(rnd() * 128))).join('');
      garbage.push(bytes, `{"type":"${bytes.replace(/["\\]/g, '')}"}`, { type: 'settings.update', patch: { kv: { budgetPercent: rnd() * 300 - 100 } } });
    }
    for (const g of garbage) expect(() => ca.receive(g)).not.toThrow();
    await tick();
    const rejected = a.filter((e) => e.type === 'rejected' || e.type === 'error');
    expect(rejected.length).toBeGreaterThan(500);
    for (const e of rejected) expect((e as { reason?: string; message?: string }).reason ?? (e as { message: string }).message).toMatch(/\w/);
    // still serving
    ca.receive({ type: 'settings.update', patch: { agent: { maxSteps: 3 } }, ref: 'after' });
    await tick();
    expect(host.settings.agent.maxSteps).toBe(3);
  });

  it('runs a session: events for every window, screenshots by reference, steps closed, end', async () => {
    const { host, runner, a, b, ca } = setup();
    ca.receive({ type: 'task.start', task: 'do it', ref: 'go' });
    await tick();
    runner.hooks.onEvent({ type: 'step', step: 1, png: Buffer.from('png-1'), file: null, geometry: GEOMETRY });
    runner.hooks.onEvent({ type: 'text', step: 1, delta: 'Thought: hi' });
    runner.hooks.onEvent({ type: 'action', step: 1, index: 0, action: { type: 'click', point: { x: 10, y: 20 } }, thought: 'hi' });
    runner.hooks.onEvent({ type: 'executed', step: 1, index: 0, action: { type: 'click', point: { x: 10, y: 20 } }, dryRun: true });
    runner.hooks.onEvent({ type: 'step', step: 2, png: Buffer.from('png-2'), file: null, geometry: GEOMETRY });
    runner.end({ status: 'finished', steps: 2, answer: 'done' });
    await tick();
    for (const es of [a, b]) {
      expect(types(es).filter((t) => !['hello', 'ack'].includes(t))).toEqual([
        'session.starting', 'session.started', 'step.started', 'tokens', 'action', 'action', 'step.finished', 'step.started', 'step.finished', 'session.ended',
      ]);
      for (const e of es) expect(parseEvent(e).ok, JSON.stringify(e).slice(0, 200)).toBe(true);
    }
    const step = a.find((e) => e.type === 'step.started')!;
    const url = (step as Extract<HostEvent, { type: 'step.started' }>).screenshot.url;
    expect(url).toMatch(/^\/blob\/step1-[0-9a-f]{12}$/);
    expect(host.getBlob(url.slice(6))!.data.toString()).toBe('png-1');
    expect(JSON.stringify(a)).not.toContain(Buffer.from('png-1').toString('base64'));
    expect(a.filter((e) => e.type === 'action').map((e) => (e as { phase: string }).phase)).toEqual(['planned', 'skipped']);
    // a window that connects now sees the whole session
    const late: HostEvent[] = [];
    host.connect((e) => late.push(e));
    expect(types(late).filter((t) => t === 'step.started').length).toBe(2);
  });

  it('risky actions wait for a reply from any window; a stop declines open dialogs', async () => {
    const { host, runner, a, cb } = setup();
    host.connect(() => {}).receive({ type: 'task.start', task: 'x' });
    await tick();
    const answer = runner.hooks.confirm({ step: 1, action: { type: 'hotkey', keys: 'alt f4' }, thought: 'close', reasons: ['closes windows'] });
    const req = a.find((e) => e.type === 'confirm.request') as Extract<HostEvent, { type: 'confirm.request' }>;
    expect(req.reasons).toEqual(['closes windows']);
    cb.receive({ type: 'confirm.reply', requestId: req.requestId, approve: true });
    expect(await answer).toBe(true);
    cb.receive({ type: 'confirm.reply', requestId: req.requestId, approve: true, ref: 'again' });
    await tick();
    expect(a.some((e) => e.type === 'request.closed' && e.outcome === 'approved')).toBe(true);

    const pending = runner.hooks.confirm({ step: 2, action: { type: 'type', text: 'sudo rm -rf /' }, thought: '', reasons: ['rm'] });
    const asked = runner.hooks.askUser({ step: 2, question: 'which file?' });
    cb.receive({ type: 'task.stop' });
    expect(await pending).toBe(false);
    expect(await asked).toBeNull();
    await tick();
    expect(runner.stops).toEqual(['stopped from the window']);
    expect(a.at(-1)).toMatchObject({ type: 'session.ended', result: { status: 'stopped' } });
  });

  it('applies settings changes to the running task and tells every window', async () => {
    const { runner, a, b, ca } = setup();
    ca.receive({ type: 'task.start', task: 'x' });
    await tick();
    ca.receive({ type: 'settings.update', patch: { kv: { budgetPercent: 10 } }, ref: 'settings-1' });
    await tick();
    expect(runner.applied.at(-1)!.kv.budgetPercent).toBe(10);
    for (const es of [a, b]) expect(es.find((e) => e.type === 'settings')).toMatchObject({ settings: { kv: { budgetPercent: 10 } } });
    ca.receive({ type: 'task.start', task: 'second' });
    await tick();
    expect(a.at(-1)).toMatchObject({ type: 'error', message: /already running/ });
  });

  it('reports telemetry that does not fit the protocol as a warning, not a crash', async () => {
    const { runner, a, ca } = setup();
    ca.receive({ type: 'task.start', task: 'x' });
    await tick();
    runner.hooks.onEvent({ type: 'telemetry', data: { step: 1 } as never });
    expect(a.at(-1)).toMatchObject({ type: 'warning', message: /KV telemetry rejected/ });
  });

  it('Stop works while the task is still starting (a model load): the start is aborted, nothing runs after', async () => {
    // A runner whose start is a long model load: it rejects as soon as the host aborts it, as DesktopRunner does.
    let signal: AbortSignal | undefined;
    let loaded!: () => void;
    const load = new Promise<void>((r) => (loaded = r));
    let ranAfterLoad = false;
    const runner: AgentRunner = {
      start: (req, hooks) =>
        unlessStopped(load, req.signal).then(() => {
          ranAfterLoad = true;
          hooks.onEvent({ type: 'started', backend: 'native', destination: 'in-process', dryRun: false, display: null, episodeDir: null });
          return { pause() {}, resume() {}, stop: async () => {}, applySettings() {}, done: new Promise<RunResult>(() => {}) };
        }).finally(() => void (signal = req.signal)),
    };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-host-'));
    dirs.push(dir);
    const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner, mode: 'web', log: () => {} });
    const a: HostEvent[] = [];
    const ca = host.connect((e) => a.push(e));
    ca.receive({ type: 'task.start', task: 'open a 7B model', ref: 'go' });
    await tick();
    // Every window knows at once that a task is starting (a window that connects now too).
    expect(types(a)).toEqual(['hello', 'session.starting']);
    expect(host.running).toBe(true);
    const late: HostEvent[] = [];
    host.connect((e) => late.push(e));
    expect(late[0]).toMatchObject({ type: 'hello', live: true });
    expect(types(late)).toContain('session.starting');
    // Stop during the load: it resolves without waiting for the load; the session ends as stopped.
    const stopped = host.stop('stopped from the window');
    await stopped;
    expect(signal?.aborted).toBe(true);
    await tick();
    expect(types(a).slice(1)).toEqual(['session.starting', 'session.ended', 'ack']); // the start is answered, not failed
    expect(a.find((e) => e.type === 'session.ended')).toMatchObject({ result: { status: 'stopped', steps: 0, error: 'stopped from the window' } });
    expect(host.running).toBe(false);
    // The load lands later: nothing of that task runs.
    loaded();
    await tick();
    expect(ranAfterLoad).toBe(false);
    expect(types(a)).not.toContain('session.started');
    for (const e of a) expect(parseEvent(e).ok).toBe(true);
  });

  it('a run that comes up although the start was stopped is stopped at once', async () => {
    // A runner that ignores the abort signal: its run is stopped as soon as the host gets it.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stops: string[] = [];
    const runner: AgentRunner = {
      start: async () => {
        await gate;
        let finish!: (r: RunResult) => void;
        const done = new Promise<RunResult>((r) => (finish = r));
        return { pause() {}, resume() {}, applySettings() {}, done, stop: async (reason) => (stops.push(reason), finish({ status: 'stopped', steps: 0, error: reason })) };
      },
    };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-host-'));
    dirs.push(dir);
    const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner, mode: 'web', log: () => {} });
    const a: HostEvent[] = [];
    host.connect((e) => a.push(e)).receive({ type: 'task.start', task: 'x' });
    await tick();
    let stopDone = false;
    const stopping = host.stop('hotkey').then(() => (stopDone = true));
    await tick();
    expect(stopDone).toBe(false); // the run may still come: the stop waits for it
    release();
    await stopping;
    expect(stops).toEqual(['hotkey']);
    expect(a.at(-1)).toMatchObject({ type: 'session.ended', result: { status: 'stopped' } });
  });

  it('a start that fails ends the session it announced and says why', async () => {
    const runner: AgentRunner = { start: () => Promise.reject(new Error('no checkpoint folder chosen')) };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-host-'));
    dirs.push(dir);
    const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner, mode: 'web', log: () => {} });
    const a: HostEvent[] = [];
    host.connect((e) => a.push(e)).receive({ type: 'task.start', task: 'x', ref: 'start' });
    await tick();
    expect(types(a)).toEqual(['hello', 'session.starting', 'session.ended', 'error']);
    expect(a.at(-1)).toMatchObject({ type: 'error', ref: 'start', message: 'no checkpoint folder chosen' });
    expect(host.running).toBe(false);
  });
});

describe('unlessStopped', () => {
  it('rejects at the abort and hands what comes later to discard', async () => {
    const ctl = new AbortController();
    let resolve!: (v: string) => void;
    const discarded: string[] = [];
    const p = unlessStopped(new Promise<string>((r) => (resolve = r)), ctl.signal, (v) => discarded.push(v));
    ctl.abort('user stop');
    await expect(p).rejects.toBeInstanceOf(StartStopped);
    await expect(p).rejects.toThrow('user stop');
    resolve('desktop');
    await tick();
    expect(discarded).toEqual(['desktop']);
    // not aborted: passes the value through
    await expect(unlessStopped(Promise.resolve(3), new AbortController().signal)).resolves.toBe(3);
  });
});

describe('a long episode and a window that connects late', () => {
  // Per-layer telemetry of a 28-layer model over the last 5 screenshots (36x64 cells each), as the engine reports it.
  const LAYERS = 28, ROWS = 36, COLS = 64;
  const memo = new Map<string, string>();
  const bitsMemo = (seed: number, n: number) => {
    const k = `${seed}/${n}`;
    if (!memo.has(k)) memo.set(k, encodeBits(Array.from({ length: n }, (_, i) => ((i * 2654435761 + seed * 977) >>> 7) % 5 === 0)));
    return memo.get(k)!;
  };
  function telemetry(step: number): KvTelemetry {
    const frames = Array.from({ length: Math.min(5, step) }, (_, f) => ({ frame: f, step: step - Math.min(5, step) + 1 + f, rows: ROWS, cols: COLS }));
    const bits = (seed: number, n: number) => bitsMemo(seed % 13, n);
    return {
      step, method: 'starkv', budgetPercent: 20, capTokens: null, logicalLength: 5000 + step, textTokens: 300 + step, kvBytes: 1 << 20, kvFullBytes: 5 << 20,
      frames,
      layers: Array.from({ length: LAYERS }, (_, l) => ({
        layer: l, cap: 1000, kept: 1000, keptPerFrame: frames.map(() => 400), keptText: 200,
        cells: frames.map((f) => bits(step * 100 + l * 7 + f.frame, ROWS * COLS)), text: bits(step + l, 300 + step),
        starkv: { temperature: 1 + l / 100, normalizedEntropy: 0.5, lambdaEff: 0.3, miCur: [0.1, 0.2], miEma: [0.1, 0.2], groupWeights: [0.4, 0.6], stability: [0.9, 0.8] },
      })),
    };
  }
  const mem = { device: 'cpu', engine: null, system: { label: 'RSS', used: 1 << 30, total: 16 << 30 }, kvFullBytes: null };

  /** Plays `steps` agent steps: streamed reply, reply, action, KV telemetry and memory per step. */
  function play(runner: HandRunner, from: number, to: number): number {
    let sent = 0;
    for (let k = from; k <= to; k++) {
      runner.hooks.onEvent({ type: 'step', step: k, png: Buffer.from(`png-${k}`), file: null, geometry: GEOMETRY });
      const reply = `Thought: step ${k}: I look for the next button to press.\nAction: click(start_box='(1,2)')`;
      for (const piece of reply.match(/[\s\S]{1,3}/g)!) runner.hooks.onEvent({ type: 'text', step: k, delta: piece });
      runner.hooks.onEvent({ type: 'reply', step: k, text: reply, attempt: 0, ms: 900 });
      runner.hooks.onEvent({ type: 'action', step: k, index: 0, action: { type: 'click', point: { x: k, y: 2 } }, thought: `step ${k}` });
      const t = telemetry(k);
      sent += JSON.stringify(t).length;
      runner.hooks.onEvent({ type: 'telemetry', data: t });
      runner.hooks.onEvent({ type: 'memory', step: k, data: mem });
    }
    return sent;
  }
  const late = (host: Host) => {
    const events: HostEvent[] = [];
    const client = host.connect((e) => events.push(e));
    return { events, client, bytes: () => JSON.stringify(events).length };
  };

  it('is sent the steps and the latest state, not every step’s telemetry again; older steps come on demand', async () => {
    const { host, runner, ca } = setup();
    ca.receive({ type: 'task.start', task: 'a long one' });
    await tick();
    const sent200 = play(runner, 1, 200);
    const at200 = late(host);
    const sent400 = play(runner, 201, 400) + sent200;
    runner.hooks.onEvent({ type: 'step', step: 401, png: Buffer.from('png-401'), file: null, geometry: GEOMETRY });
    runner.hooks.onEvent({ type: 'text', step: 401, delta: 'Thought: half a tho' });
    runner.hooks.onEvent({ type: 'text', step: 401, delta: 'ught' });
    const w = late(host);
    const perStep = JSON.stringify(telemetry(400)).length;
    expect(sent400).toBeGreaterThan(400 * 20_000); // the telemetry the first window was sent: over 8 MB
    // The late window: telemetry of the last 8 steps and an index of all of them, one event per streamed reply.
    const tele = w.events.filter((e) => e.type === 'telemetry.kv') as Array<Extract<HostEvent, { type: 'telemetry.kv' }>>;
    expect(tele.map((e) => e.data.step)).toEqual([393, 394, 395, 396, 397, 398, 399, 400]);
    expect(w.events.find((e) => e.type === 'telemetry.index')).toMatchObject({ steps: Array.from({ length: 400 }, (_, i) => i + 1) });
    expect(w.events.filter((e) => e.type === 'tokens')).toEqual([expect.objectContaining({ step: 401, delta: 'Thought: half a tho' + 'ught' })]);
    expect(w.bytes()).toBeLessThan(10 * perStep + 401 * 1500);
    // Bounded: 200 more steps add their small step records, not their telemetry.
    expect(w.bytes() - at200.bytes()).toBeLessThan(200 * 1500);
    for (const e of w.events) expect(parseEvent(e).ok, JSON.stringify(e).slice(0, 200)).toBe(true);

    // What the late window shows: every step with its thought and action, the streaming one too.
    const view = foldEvents(w.events.filter((e): e is SessionEvent => parseEvent(e).ok && 'sessionId' in e), 'live')!;
    expect(view.steps.length).toBe(401);
    expect(view.steps[2]).toMatchObject({ step: 3, thought: 'step 3: I look for the next button to press.', actions: [expect.objectContaining({ phase: 'planned' })] });
    expect(view.steps.at(-1)!.text).toBe('Thought: half a thought');
    expect(view.telemetrySteps.length).toBe(400);
    expect(Object.keys(view.telemetry).map(Number)).toEqual([393, 394, 395, 396, 397, 398, 399, 400]);
    // A past step stays inspectable: the window asks for it and gets exactly what the engine reported.
    const sid = view.id;
    w.client.receive({ type: 'telemetry.get', sessionId: sid, step: 3, ref: 'telemetry-1' });
    await tick();
    const got = w.events.at(-1) as Extract<HostEvent, { type: 'telemetry.kv' }>;
    expect(got).toMatchObject({ type: 'telemetry.kv', sessionId: sid });
    expect(got.data).toEqual(telemetry(3));
    w.client.receive({ type: 'telemetry.get', sessionId: sid, step: 999, ref: 'telemetry-2' });
    await tick();
    expect(w.events.at(-1)).toMatchObject({ type: 'error', ref: 'telemetry-2' });
  });

  it('holds a bounded amount of telemetry; older steps are read back from the stored episode', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-host-'));
    dirs.push(dir);
    const settings = defaultSettings(dir);
    const store = EpisodeWriter.create(settings.storage.episodesDir, 'stored');
    const runner = new HandRunner();
    runner.episodeDir = store.dir;
    const perStep = JSON.stringify(telemetry(10)).length;
    const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), settings), runner, mode: 'web', log: () => {}, heldTelemetryBytes: 3 * perStep });
    const events: HostEvent[] = [];
    const c = host.connect((e) => events.push(e));
    c.receive({ type: 'task.start', task: 'stored' });
    await tick();
    for (let k = 1; k <= 12; k++) store.append('telemetry', { step: k, data: telemetry(k) }); // as StepReports writes them
    play(runner, 1, 12);
    const sid = (events.find((e) => e.type === 'session.started') as Extract<HostEvent, { type: 'session.started' }>).sessionId;
    // step 2 is no longer held: it comes from the episode file
    c.receive({ type: 'telemetry.get', sessionId: sid, step: 2, ref: 'telemetry-a' });
    await tick();
    expect((events.at(-1) as Extract<HostEvent, { type: 'telemetry.kv' }>).data).toEqual(telemetry(2));
    // a replayed episode is bounded the same way and fetches the same way
    const w = late(host);
    expect(w.events.filter((e) => e.type === 'telemetry.kv').length).toBeLessThanOrEqual(3);
    store.append('end', { status: 'finished', steps: 12 });
    store.close();
    const id = path.basename(store.dir);
    c.receive({ type: 'episode.open', id, ref: 'ep' });
    await tick();
    const ep = events.at(-1) as Extract<HostEvent, { type: 'episode' }>;
    expect(ep.events.filter((e) => e.type === 'telemetry.kv').map((e) => (e as { data: KvTelemetry }).data.step)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(ep.events.find((e) => e.type === 'telemetry.index')).toMatchObject({ steps: Array.from({ length: 12 }, (_, i) => i + 1) });
    c.receive({ type: 'telemetry.get', sessionId: `episode:${id}`, step: 1, ref: 'telemetry-b' });
    await tick();
    expect(events.at(-1)).toMatchObject({ type: 'telemetry.kv', sessionId: `episode:${id}`, data: telemetry(1) });
  });

  it('says so when an old step is gone because the episode is not saved', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-host-'));
    dirs.push(dir);
    const runner = new HandRunner();
    const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner, mode: 'web', log: () => {}, heldTelemetryBytes: 1 });
    const events: HostEvent[] = [];
    const c = host.connect((e) => events.push(e));
    c.receive({ type: 'task.start', task: 'unsaved' });
    await tick();
    play(runner, 1, 3);
    const sid = (events.find((e) => e.type === 'session.started') as Extract<HostEvent, { type: 'session.started' }>).sessionId;
    c.receive({ type: 'telemetry.get', sessionId: sid, step: 3, ref: 'telemetry-c' });
    c.receive({ type: 'telemetry.get', sessionId: sid, step: 1, ref: 'telemetry-d' });
    await tick();
    expect(events.at(-2)).toMatchObject({ type: 'telemetry.kv', data: { step: 3 } }); // the newest is always held
    expect(events.at(-1)).toMatchObject({ type: 'error', ref: 'telemetry-d', message: /no longer held.*not being saved/ });
  });
});
