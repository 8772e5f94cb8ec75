// The agent host: one per process, shared by every window (web clients and the Electron window alike).
// Validates each command at the boundary, runs at most one agent session, owns the settings, fans
// events out to all connected clients, and serves screenshots by reference. Knows nothing of electron,
// HTTP or WebSockets: a transport calls connect() and feeds it raw messages.
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { parseCommand, PROTOCOL_VERSION, type Command, type Devices, type HostEvent, type SessionEvent, type Settings } from '../protocol.ts';
import { BlobStore, type Blob } from './blobs.ts';
import { checkCheckpoint } from './checkpoint-check.ts';
import { cpuMatmulProblem, deviceProblem, probeDevices } from './devices.ts';
import { writeReport } from '../store/report.ts';
import { boundedEpisodeEvents, episodeDir, episodeEvents, episodeFileUrl, episodeTelemetry, listEpisodes } from './episodes.ts';
import { METHODS } from './kv-methods.ts';
import type { AgentRunner } from './runner.ts';
import { REPLAY_TELEMETRY_STEPS, Session } from './session.ts';
import { publicSettings, type SettingsStore } from './settings.ts';

export interface HostOptions {
  settings: SettingsStore;
  runner: AgentRunner;
  mode: 'web' | 'electron';
  blobs?: BlobStore;
  /** KV telemetry a session holds in memory for windows to fetch (default 64 MiB; older steps: the stored episode). */
  heldTelemetryBytes?: number;
  /** The GPUs the engine can run on (default: the addon's cudaInfo(), asked once). */
  devices?: () => Devices;
  /** Where host-level problems go (default: stderr). */
  log?: (msg: string) => void;
}

export interface HostClient {
  /** One raw message from this client: a JSON string (WebSocket) or a decoded value (IPC). Never throws. */
  receive(raw: unknown): void;
  close(): void;
}

type Send = (e: HostEvent) => void;

export class Host {
  readonly blobs: BlobStore;
  private readonly clients = new Set<Send>();
  private session: Session | null = null;
  /** Episode ids of this process's sessions -> their folder (served even if the episodes root changes). */
  private readonly liveEpisodes = new Map<string, string>();
  private readonly log: (msg: string) => void;
  private deviceList: Devices | null = null;

  constructor(private readonly opts: HostOptions) {
    this.blobs = opts.blobs ?? new BlobStore();
    this.log = opts.log ?? ((m) => process.stderr.write(`starkv host: ${m}\n`));
    if (opts.settings.loadWarning) this.log(opts.settings.loadWarning);
  }

  get settings(): Settings {
    return this.opts.settings.get();
  }

  /** The engine's devices, asked once. */
  get devices(): Devices {
    return (this.deviceList ??= (this.opts.devices ?? probeDevices)());
  }

  get configFile(): string {
    return this.opts.settings.file;
  }

  get running(): boolean {
    return !!this.session && !this.session.isEnded;
  }

  connect(send: Send): HostClient {
    const safeSend: Send = (e) => {
      try {
        send(e);
      } catch (err) {
        this.log(`a client could not be sent ${e.type}: ${(err as Error).message}`);
      }
    };
    this.clients.add(safeSend);
    safeSend({
      type: 'hello', protocol: PROTOCOL_VERSION, mode: this.opts.mode, settings: publicSettings(this.settings), methods: METHODS,
      configFile: this.configFile, live: this.running, devices: this.devices,
    });
    if (this.opts.settings.loadWarning) safeSend({ type: 'error', message: `settings: ${this.opts.settings.loadWarning}` });
    for (const e of this.session?.replay() ?? []) safeSend(e);
    return {
      receive: (raw) => {
        const r = parseCommand(raw);
        if (!r.ok) return safeSend({ type: 'rejected', reason: r.reason, ref: refOf(raw) });
        this.handle(r.value, safeSend).catch((err: Error) => safeSend({ type: 'error', message: err.message, ref: r.value.ref }));
      },
      close: () => void this.clients.delete(safeSend),
    };
  }

  private broadcast(e: HostEvent): void {
    for (const c of this.clients) c(e);
  }

  private async handle(c: Command, reply: Send): Promise<void> {
    const ack = () => c.ref && reply({ type: 'ack', ref: c.ref, command: c.type });
    switch (c.type) {
      case 'task.start':
        await this.start(c.task);
        return void ack();
      case 'task.pause':
        this.requireSession().run?.pause();
        return void ack();
      case 'task.resume':
        this.requireSession().run?.resume();
        return void ack();
      case 'task.stop':
        await this.stop('stopped from the window');
        return void ack();
      case 'confirm.reply':
        if (!this.session?.answerConfirm(c.requestId, c.approve)) throw new Error(`no confirmation ${c.requestId} is waiting (it may have been answered in another window)`);
        return void ack();
      case 'ask.reply':
        if (!this.session?.answerAsk(c.requestId, c.answer)) throw new Error(`no question ${c.requestId} is waiting`);
        return void ack();
      case 'settings.update': {
        // A GPU the engine does not report here, or the bf16 CPU path on a CPU without it, is refused (a
        // settings file from another machine still loads).
        const { device, cpuMatmul } = (c.patch.model ?? {}) as { device?: unknown; cpuMatmul?: unknown };
        const bad =
          (typeof device === 'string' ? deviceProblem(device, this.devices) : null) ??
          (typeof cpuMatmul === 'string' ? cpuMatmulProblem(cpuMatmul, this.devices) : null);
        if (bad) throw new Error(`settings not changed: ${bad}`);
        const r = this.opts.settings.update(c.patch);
        if (!r.ok) throw new Error(`settings not changed: ${r.reason}`);
        this.applyToRun(r.settings);
        this.broadcast({ type: 'settings', settings: publicSettings(r.settings), ref: c.ref });
        return;
      }
      case 'settings.reset': {
        const s = this.opts.settings.reset(c.scope);
        this.applyToRun(s);
        this.broadcast({ type: 'settings', settings: publicSettings(s), ref: c.ref });
        return;
      }
      case 'checkpoint.check':
        return reply({ type: 'checkpoint.result', ref: c.ref, ...(await checkCheckpoint(c.dir)) });
      case 'episodes.list':
        return reply({ type: 'episodes', root: this.settings.storage.episodesDir, items: listEpisodes(this.settings.storage.episodesDir), ref: c.ref });
      case 'episode.open':
        return reply({ type: 'episode', id: c.id, events: boundedEpisodeEvents(episodeEvents(this.episodeRoot(c.id), c.id), REPLAY_TELEMETRY_STEPS), ref: c.ref });
      case 'telemetry.get':
        return reply({ type: 'telemetry.kv', sessionId: c.sessionId, data: this.telemetryOf(c.sessionId, c.step) });
      case 'episode.report': {
        const file = writeReport(episodeDir(this.episodeRoot(c.id), c.id));
        return reply({ type: 'episode.report', id: c.id, url: episodeFileUrl(c.id, path.basename(file)), ref: c.ref });
      }
    }
  }

  private requireSession(): Session {
    if (!this.session || this.session.isEnded) throw new Error('no task is running');
    return this.session;
  }

  private applyToRun(s: Settings): void {
    if (this.running) this.session!.run?.applySettings(s);
  }

  private async start(task: string): Promise<void> {
    if (this.running) throw new Error('a task is already running: stop it first');
    const session = new Session(task, this.blobs, (e: SessionEvent) => {
      if (e.type === 'session.started' && e.episode) this.liveEpisodes.set(e.episode, path.join(this.settings.storage.episodesDir, e.episode));
      this.broadcast(e);
    }, this.opts.heldTelemetryBytes);
    // The session is the host's from the first moment: Stop works while the runner loads a model.
    this.session = session;
    const settings = this.opts.settings.get();
    await session.launch((signal) => this.opts.runner.start({ task, settings, signal }, session.hooks()));
  }

  /** Stops the running task (stop button, tray, global hotkey, shutdown). Resolves when no input can follow. */
  async stop(reason: string): Promise<void> {
    const s = this.session;
    if (!s || s.isEnded) return;
    await s.stop(reason);
  }

  /** Stops the task and frees the runner's resources (the process is exiting). */
  async shutdown(reason: string): Promise<void> {
    await this.stop(reason);
    this.opts.runner.dispose?.();
  }

  /** Injects KV telemetry from an engine that lives outside the runner (validated; a bad one is reported). */
  publishTelemetry(raw: unknown): { ok: boolean; reason?: string } {
    const s = this.session;
    if (!s || s.isEnded) return { ok: false, reason: 'no task is running' };
    s.hooks().onEvent({ type: 'telemetry', data: raw as never });
    return { ok: true };
  }

  getBlob(id: string): Blob | undefined {
    return this.blobs.get(id);
  }

  /** A step's KV telemetry: of the live session (held in memory, else its stored episode), or of an episode. */
  private telemetryOf(sessionId: string, step: number) {
    const s = this.session;
    let episode: string | null;
    if (s && s.id === sessionId) {
      const held = s.telemetryOf(step);
      if (held) return held.data;
      episode = s.episode;
      if (!episode) throw new Error(`the KV telemetry of step ${step} is no longer held (this task's episode is not being saved)`);
    } else if (sessionId.startsWith('episode:')) episode = sessionId.slice('episode:'.length);
    else throw new Error(`no session ${sessionId}`);
    const t = episodeTelemetry(this.episodeRoot(episode), episode, step);
    if (!t) throw new Error(`episode ${episode} has no KV telemetry for step ${step}`);
    return t;
  }

  private episodeRoot(id: string): string {
    const live = this.liveEpisodes.get(id);
    return live ? path.dirname(live) : this.settings.storage.episodesDir;
  }

  /** Absolute path of a file inside an episode folder, or null (no traversal, no symlinks out). */
  episodeFile(id: string, name: string): string | null {
    if (!/^[\w.+-]{1,200}$/.test(name) || name.startsWith('.')) return null;
    try {
      const dir = episodeDir(this.episodeRoot(id), id);
      const file = path.join(dir, name);
      if (!existsSync(file)) return null;
      const real = realpathSync(file);
      return real.startsWith(realpathSync(dir) + path.sep) ? real : null;
    } catch {
      return null;
    }
  }
}

function refOf(raw: unknown): string | undefined {
  let v = raw;
  if (typeof raw === 'string' && raw.length < 1 << 20) {
    try {
      v = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  const ref = (v as { ref?: unknown } | null)?.ref;
  return typeof ref === 'string' && ref.length <= 100 ? ref : undefined;
}
