// The window's state (zustand): connection, settings, the live session and an opened episode, the
// selected tab/step/layer, and notices. Events from the host are folded in by onEvent.
import { create } from 'zustand';
import type { Command, Devices, EpisodeSummary, HostEvent, MethodInfo, Settings } from '../../app/protocol.ts';
import { foldEvents, reduceSession, type SessionView } from './session.ts';
import type { ConnState, Transport } from './transport.ts';

export type Tab = 'run' | 'kv' | 'memory' | 'episodes' | 'settings';

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  text: string;
}

export interface AppState {
  conn: ConnState;
  mode: 'web' | 'electron' | null;
  configFile: string;
  settings: Settings | null;
  methods: MethodInfo[];
  /** The GPUs the engine reports on the host's machine. */
  devices: Devices;
  live: SessionView | null;
  replay: SessionView | null;
  viewing: 'live' | 'replay';
  tab: Tab;
  /** null: follow the newest step. */
  selectedStep: number | null;
  layer: number;
  episodes: { root: string; items: EpisodeSummary[] } | null;
  checkpoint: { dir: string; ok: boolean; summary?: string; error?: string } | null;
  checkpointPending: boolean;
  settingsError: string | null;
  savedAt: number | null;
  /** Start was pressed and the host has not answered yet (it may be loading a model). */
  starting: boolean;
  notices: Notice[];
  transport: Transport | null;
  /** KV telemetry asked of the host, by `${sessionId}/${step}`: 'pending' or why it could not be had. */
  telemetryFetch: Record<string, string>;

  send(cmd: Command): void;
  setTab(t: Tab): void;
  selectStep(step: number | null): void;
  setLayer(l: number): void;
  closeReplay(): void;
  /** Asks the host for a step's KV telemetry that this window does not hold (once; see telemetryFetch). */
  fetchTelemetry(sessionId: string, step: number): void;
  dismiss(id: number): void;
  onEvent(e: HostEvent): void;
}

let nextId = 1;
/** telemetry.get refs in flight -> `${sessionId}/${step}` */
const telemetryRefs = new Map<string, string>();
let nextRef = 1;
export const newRef = (prefix: string) => `${prefix}-${nextRef++}`;

export const useApp = create<AppState>((set, get) => ({
  conn: 'connecting',
  mode: null,
  configFile: '',
  settings: null,
  methods: [],
  devices: { gpus: [], note: null },
  live: null,
  replay: null,
  viewing: 'live',
  tab: 'run',
  selectedStep: null,
  layer: 0,
  episodes: null,
  checkpoint: null,
  checkpointPending: false,
  settingsError: null,
  savedAt: null,
  starting: false,
  notices: [],
  transport: null,
  telemetryFetch: {},

  send(cmd) {
    const ok = get().transport?.send(cmd);
    if (!ok) {
      set({ starting: false });
      notice(set, 'error', 'Not connected to the starkv host; retrying the connection…');
    }
  },
  setTab: (tab) => set({ tab }),
  selectStep: (selectedStep) => set({ selectedStep }),
  setLayer: (layer) => set({ layer }),
  closeReplay: () => set({ viewing: 'live', replay: null, selectedStep: null }),
  fetchTelemetry(sessionId, step) {
    const key = `${sessionId}/${step}`;
    if (get().telemetryFetch[key]) return;
    const ref = newRef('telemetry');
    telemetryRefs.set(ref, key);
    set((s) => ({ telemetryFetch: { ...s.telemetryFetch, [key]: 'pending' } }));
    get().send({ type: 'telemetry.get', sessionId, step, ref });
  },
  dismiss: (id) => set((s) => ({ notices: s.notices.filter((n) => n.id !== id) })),

  onEvent(e) {
    switch (e.type) {
      case 'hello':
        // A reconnect replays the live session from scratch.
        return set({ mode: e.mode, settings: e.settings, methods: e.methods, devices: e.devices, configFile: e.configFile, live: null, telemetryFetch: {} });
      case 'settings':
        return set({ settings: e.settings, settingsError: null, savedAt: Date.now() });
      case 'checkpoint.result':
        return set({ checkpoint: { dir: e.dir, ok: e.ok, summary: e.summary, error: e.error }, checkpointPending: false });
      case 'episodes':
        return set({ episodes: { root: e.root, items: e.items } });
      case 'episode': {
        const replay = foldEvents(e.events, 'replay');
        if (!replay) return notice(set, 'error', `Episode ${e.id} holds no events`);
        return set({ replay, viewing: 'replay', tab: 'run', selectedStep: replay.steps[0]?.step ?? null });
      }
      case 'episode.report': {
        const w = window.open(e.url, '_blank');
        if (w) w.opener = null;
        else notice(set, 'info', `Report written: ${e.url} (allow pop-ups to open it here)`);
        return;
      }
      case 'ack':
        return;
      case 'rejected':
        return notice(set, 'error', `The host rejected a message: ${e.reason}`);
      case 'error':
        if (e.ref === 'start') set({ starting: false });
        if (e.ref?.startsWith('settings')) return set({ settingsError: e.message });
        if (e.ref && telemetryRefs.has(e.ref)) {
          const key = telemetryRefs.get(e.ref)!;
          telemetryRefs.delete(e.ref);
          return set((s) => ({ telemetryFetch: { ...s.telemetryFetch, [key]: e.message } }));
        }
        if (e.ref?.startsWith('ckpt')) return set({ checkpointPending: false, checkpoint: { dir: '', ok: false, error: e.message } });
        return notice(set, 'error', e.message);
      default: {
        if (e.type === 'telemetry.kv') {
          const key = `${e.sessionId}/${e.data.step}`;
          if (get().telemetryFetch[key]) {
            const { [key]: _done, ...rest } = get().telemetryFetch;
            set({ telemetryFetch: rest });
          }
          // the telemetry of an opened episode, fetched on demand
          const r = get().replay;
          if (r && r.id === e.sessionId) return set({ replay: reduceSession(r, e, 'replay') });
        }
        const live = reduceSession(get().live, e, 'live');
        const patch: Partial<AppState> = { live };
        if (e.type === 'session.starting' || e.type === 'session.started') {
          patch.selectedStep = null;
          patch.starting = false;
          if (get().viewing === 'replay') patch.viewing = 'live';
        }
        return set(patch);
      }
    }
  },
}));

function notice(set: (p: Partial<AppState> | ((s: AppState) => Partial<AppState>)) => void, kind: Notice['kind'], text: string): void {
  const id = nextId++;
  set((s) => ({ notices: [...s.notices.slice(-4), { id, kind, text }] }));
  setTimeout(() => set((s) => ({ notices: s.notices.filter((n) => n.id !== id) })), kind === 'error' ? 12_000 : 5000);
}

/** The session the views show: an opened episode, or the live one. */
export function useShown(): SessionView | null {
  return useApp((s) => (s.viewing === 'replay' ? s.replay : s.live));
}
