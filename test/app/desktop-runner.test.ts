// The app's runner on a real X server (Xvfb): the corner-abort setting taking effect during a run, and a
// task run by the host with the in-process engine (tiny checkpoint, real tokenizer) whose stored episode
// replays with the same KV telemetry and memory figures the live session showed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesktopOperator } from '../../app/agent/operator.ts';
import { Desktop } from '../../app/desktop/desktop.ts';
import { XConnection } from '../../app/desktop/x11/connection.ts';
import { MOTION, XTest } from '../../app/desktop/x11/xtest.ts';
import { LiveOperator } from '../../app/host/desktop-runner.ts';
import { episodeEvents } from '../../app/host/episodes.ts';
import { Host } from '../../app/host/host.ts';
import { defaultSettings, SettingsStore } from '../../app/host/settings.ts';
import { DesktopRunner } from '../../app/host/desktop-runner.ts';
import { EngineCache } from '../../app/host/backends.ts';
import type { HostEvent, KvTelemetry, Memory, SessionEvent } from '../../app/protocol.ts';
import { readEpisode } from '../../app/store/trajectory.ts';
import { foldEvents } from '../../renderer/src/session.ts';
import { requireBinary, startXvfb, type Xvfb } from '../agent/helpers/xvfb.ts';
import { TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

const W = 640, H = 400;
const DATA = path.join(TMP, 'app-desktop-runner');
let xvfb: Xvfb, desktop: Desktop, user: XConnection, xt: XTest, win: ChildProcess;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Another client (the user's hand) moves the pointer. */
const movePointer = async (x: number, y: number) => {
  xt.fake(MOTION, 0, x, y);
  await user.sync();
};

beforeAll(async () => {
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true });
  xvfb = await startXvfb(W, H);
  // Something on the screen (a blank capture is refused by the agent): a small X window with text.
  win = spawn(requireBinary('xmessage', 'x11-utils'), ['-geometry', '360x160+120+100', 'starkv test window: Settings  Open  Cancel'], {
    env: { ...process.env, DISPLAY: xvfb.display }, stdio: 'ignore',
  });
  await sleep(700);
  desktop = await Desktop.open({ xDisplay: xvfb.display });
  user = await XConnection.open(xvfb.display);
  xt = await XTest.open(user);
}, 60_000);

afterAll(async () => {
  win?.kill();
  user?.close();
  desktop?.close();
  await xvfb?.stop();
});

describe('corner abort follows the setting during a run', () => {
  const operator = (cornerAbort: boolean) => new LiveOperator(new DesktopOperator(desktop, { dryRun: true }), true, cornerAbort);

  it('turned on mid-run: the watch starts, and a pointer in a corner fires the stop', async () => {
    await movePointer(W / 2, H / 2);
    const op = operator(false);
    let fired = 0;
    const off = op.watchCorners(() => fired++);
    await movePointer(W - 1, 0);
    await sleep(400);
    expect(fired).toBe(0); // off: the user may park the pointer in a corner
    op.cornerAbort = true;
    await expect.poll(() => fired, { timeout: 3000 }).toBe(1);
    off();
  });

  it('turned off mid-run: the watch ends', async () => {
    await movePointer(W / 2, H / 2);
    const op = operator(true);
    let fired = 0;
    const off = op.watchCorners(() => fired++);
    await sleep(250);
    op.cornerAbort = false;
    await movePointer(0, H - 1);
    await sleep(500);
    expect(fired).toBe(0);
    off();
    await movePointer(W / 2, H / 2);
  });
});

/** Settings for a three-step in-process task on a tiny checkpoint whose weights answer a click every step. */
function clickingCheckpointSettings(name: string) {
  const s = defaultSettings(DATA);
  s.model.source = 'checkpoint';
  s.model.checkpointDir = writeTinyRealVocab(path.join(DATA, name), 22, "Action: click(start_box='(15,26)')");
  s.model.device = 'cpu';
  s.agent.maxSteps = 3;
  s.agent.maxPixels = 200704;
  s.safety.cornerAbort = false;
  return s;
}

describe('a task run in-process replays with its KV telemetry and memory', () => {
  it('records one telemetry and one memory record per step, and the replay shows them', async () => {
    // A checkpoint whose weights make the engine answer a click at every step (see writeTinyRealVocab).
    const s = clickingCheckpointSettings('scripted');
    s.agent.maxTokens = 24;
    s.safety.dryRun = true;
    const settings = new SettingsStore(path.join(DATA, 'settings.json'), s);
    const runner = new DesktopRunner();
    const host = new Host({ settings, runner, mode: 'web', log: () => {} });
    const live: HostEvent[] = [];
    const client = host.connect((e) => live.push(e));
    const prevDisplay = process.env.DISPLAY;
    process.env.DISPLAY = xvfb.display;
    try {
      client.receive({ type: 'task.start', task: 'Open the settings', ref: 'start' });
      await expect.poll(() => live.find((e) => e.type === 'session.ended') ?? live.find((e) => e.type === 'error'), { timeout: 180_000, interval: 200 }).toBeTruthy();
    } finally {
      process.env.DISPLAY = prevDisplay;
      await host.shutdown('test over');
      client.close();
    }
    const ended = live.find((e) => e.type === 'session.ended') as Extract<SessionEvent, { type: 'session.ended' }> | undefined;
    expect(ended?.result.status, JSON.stringify(live.filter((e) => e.type === 'error' || e.type === 'warning'))).toBe('max_steps');
    const liveTele = live.filter((e): e is Extract<SessionEvent, { type: 'telemetry.kv' }> => e.type === 'telemetry.kv').map((e) => e.data);
    expect(liveTele.map((t) => t.step)).toEqual([1, 2, 3]);

    // The trajectory: one telemetry and one memory record per step; screenshots stay files.
    const started = live.find((e) => e.type === 'session.started') as Extract<SessionEvent, { type: 'session.started' }>;
    const id = started.episode!;
    const root = s.storage.episodesDir;
    const { records } = readEpisode(path.join(root, id));
    expect(records.filter((r) => r.kind === 'telemetry').map((r) => r.step)).toEqual([1, 2, 3]);
    expect(records.filter((r) => r.kind === 'memory').map((r) => r.step)).toEqual([1, 2, 3]);
    const jsonl = readFileSync(path.join(root, id, 'episode.jsonl'), 'utf8');
    expect(jsonl).not.toMatch(/data:image|iVBORw0KGgo/); // no PNG inline (base64 of the PNG signature)

    // The replay: the same telemetry for every step, and memory with held bytes against the full cache.
    const replay = foldEvents(episodeEvents(root, id), 'replay')!;
    expect(Object.keys(replay.telemetry).map(Number)).toEqual([1, 2, 3]);
    for (const t of liveTele) expect(replay.telemetry[t.step]).toEqual(t);
    const t3 = replay.telemetry[3] as KvTelemetry;
    expect(t3.layers.length).toBeGreaterThan(0);
    expect(t3.frames.map((f) => f.step)).toEqual([1, 2, 3]);
    expect(replay.memory.map((m) => m.step)).toEqual([1, 2, 3]);
    const m3 = replay.memory.at(-1)!.data as Memory;
    expect(m3.kvHeldBytes).toBe(t3.kvBytes);
    expect(m3.kvFullBytes).toBe(t3.kvFullBytes);
    expect(m3.kvHeldBytes!).toBeGreaterThan(0);
    expect(m3.kvHeldBytes!).toBeLessThan(m3.kvFullBytes!); // 20 % budget: the compressed cache holds less
    expect(m3.engine?.weights.current).toBeGreaterThan(0);
  }, 240_000);
});

describe('Stop during the model load', () => {
  /** The engine cache with a load that takes as long as the test says (a 7B checkpoint takes minutes). */
  class SlowLoads extends EngineCache {
    release!: () => void;
    readonly gate = new Promise<void>((r) => (this.release = r));
    loads = 0;
    async get(dir: string, device?: string) {
      await this.gate;
      this.loads++;
      return super.get(dir, device);
    }
  }

  it('stops the task while the model loads; when the load lands no step runs and no input is sent', async () => {
    const s = clickingCheckpointSettings('scripted-stop');
    s.safety.dryRun = false; // real input, if anything ran
    s.storage.saveEpisodes = false;
    const engines = new SlowLoads();
    const host = new Host({ settings: new SettingsStore(path.join(DATA, 'settings-stop.json'), s), runner: new DesktopRunner(engines), mode: 'web', log: () => {} });
    const live: HostEvent[] = [];
    const client = host.connect((e) => live.push(e));
    await movePointer(W / 2, H / 2);
    const prevDisplay = process.env.DISPLAY;
    process.env.DISPLAY = xvfb.display;
    try {
      client.receive({ type: 'task.start', task: 'Open the settings', ref: 'start' });
      await expect.poll(() => live.some((e) => e.type === 'session.starting')).toBe(true);
      await sleep(300);
      const t0 = Date.now();
      await host.stop('stopped from the window');
      expect(Date.now() - t0).toBeLessThan(2000); // it did not wait for the load
      const ended = live.find((e) => e.type === 'session.ended') as Extract<SessionEvent, { type: 'session.ended' }> | undefined;
      expect(ended?.result).toMatchObject({ status: 'stopped', steps: 0 });
      expect(host.running).toBe(false);
      // The load finishes after the stop: the engine stays cached, the stopped task does nothing with it.
      engines.release();
      await expect.poll(() => engines.loads === 1 && !engines.busy, { timeout: 60_000 }).toBe(true);
      await sleep(1500);
      expect(live.filter((e) => ['session.started', 'step.started', 'action', 'tokens'].includes(e.type))).toEqual([]);
      expect(await xt.pointer()).toMatchObject({ x: W / 2, y: H / 2 });
    } finally {
      process.env.DISPLAY = prevDisplay;
      await host.shutdown('test over');
      client.close();
    }
  }, 120_000);
});
