// The window's views rendered by React itself (server-side, no DOM): what the user sees for a given
// state of the store (the same zustand store the window uses, fed with protocol events).
import { createElement, type ComponentType } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import { assessRisk } from '../../app/agent/safety.ts';
import { riskPolicy } from '../../app/host/desktop-runner.ts';
import { defaultSettings, publicSettings } from '../../app/host/settings.ts';
import type { HostEvent, SessionEvent } from '../../app/protocol.ts';
import { useApp } from '../../renderer/src/store.ts';
import { withoutToken } from '../../renderer/src/transport.ts';

// The window's root component. Imported by a computed name: the app's tsconfig (which type-checks this
// file) has no JSX; the renderer's tsconfig checks App.tsx itself.
const APP = '../../renderer/src/App.tsx';
const { App } = (await import(APP)) as { App: ComponentType };

const initial = { ...useApp.getState() };
/** What the window shows for the store's current state. Server rendering reads zustand's initial-state
 *  snapshot, so the current state is copied into it first. */
const render = () => {
  Object.assign(useApp.getInitialState(), useApp.getState());
  return renderToStaticMarkup(createElement(App));
};
const feed = (events: HostEvent[]) => events.forEach((e) => useApp.getState().onEvent(e));

const geometry = { origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: 640, height: 400 }, sent: { width: 640, height: 400 }, resized: { width: 644, height: 392 }, coordSpace: 'absolute' as const };
const started = (sessionId: string, task: string): SessionEvent => ({
  type: 'session.started', sessionId, task, dryRun: false, backend: 'native', destination: 'in-process', display: { width: 640, height: 400, scale: 1 }, episode: null, t: 1,
});
const step = (sessionId: string, n: number): SessionEvent => ({
  type: 'step.started', sessionId, step: n, t: 2, geometry, screenshot: { id: `${sessionId}/${n}`, url: `/blob/${n}`, width: 640, height: 400 },
});

beforeEach(() => {
  useApp.setState(initial, true);
  const s = publicSettings(defaultSettings('/tmp/starkv-renderer-test'));
  feed([{ type: 'hello', protocol: 1, mode: 'web', settings: s, methods: [], configFile: '/tmp/x.json', live: true, devices: { gpus: [], note: 'built without CUDA' } } as HostEvent]);
});

describe('the risky-action confirmation', () => {
  const confirm: SessionEvent = {
    type: 'confirm.request', sessionId: 'live-1', requestId: 'r-1', step: 1, action: { type: 'hotkey', keys: 'ctrl alt delete' },
    thought: 'reboot the machine', reasons: ['hotkey ctrl alt delete is on the risky list'],
  };

  it('shows while a past episode is open, on every tab', () => {
    feed([started('live-1', 'live task'), step('live-1', 1)]);
    // The user opens a past episode, then the live agent asks.
    feed([{ type: 'episode', id: 'old', events: [started('episode:old', 'old task'), step('episode:old', 1), { type: 'session.ended', sessionId: 'episode:old', result: { status: 'finished', steps: 1 }, t: 3 }] }]);
    expect(useApp.getState().viewing).toBe('replay');
    expect(render()).not.toContain('data-testid="confirm-dialog"');
    feed([confirm]);
    for (const tab of ['run', 'kv', 'memory', 'episodes', 'settings'] as const) {
      useApp.getState().setTab(tab);
      const html = render();
      expect(html, tab).toContain('data-testid="confirm-dialog"');
      expect(html, tab).toContain('hotkey ctrl alt delete');
    }
    // Answered (in this or another window): the dialog goes, the episode stays open.
    feed([{ type: 'request.closed', sessionId: 'live-1', requestId: 'r-1', outcome: 'approved' }]);
    expect(render()).not.toContain('data-testid="confirm-dialog"');
    expect(useApp.getState().viewing).toBe('replay');
  });

  it('says in words which rule matched, not the rule’s regular expression', () => {
    // The reasons as the app makes them: the settings' rules (strings) through the loop's risk check.
    const action = { type: 'type' as const, text: 'sudo rm -rf /tmp/cache' };
    const policy = riskPolicy(defaultSettings('/tmp/starkv-renderer-test'));
    const reasons = assessRisk({ type: 'type', text: 'cd /tmp && rm -rf cache' }, 'clean up', policy);
    expect(reasons).toEqual(['typed text looks like a dangerous command: deletes files (rm)']);
    feed([started('live-1', 'live task'), step('live-1', 1)]);
    feed([{ type: 'confirm.request', sessionId: 'live-1', requestId: 'r-2', step: 1, action, thought: 'clean up', reasons: assessRisk(action, 'clean up', policy) }]);
    const html = render();
    expect(html).toContain('<li>typed text looks like a dangerous command: deletes files (rm)</li>');
    expect(html).not.toContain('rm\\s');
    // A rule the user added has no name: the dialog says it is theirs.
    const own = assessRisk({ type: 'type', text: 'format c:' }, '', { ...policy, typePatterns: [...policy.typePatterns, /format\s+c:/] });
    expect(own).toEqual(['typed text looks like a dangerous command: it matches your risky pattern /format\\s+c:/']);
  });

  it('a question from the live agent shows too while an episode is open', () => {
    feed([started('live-1', 'live task'), step('live-1', 1)]);
    feed([{ type: 'episode', id: 'old', events: [started('episode:old', 'old task'), step('episode:old', 1)] }]);
    feed([{ type: 'ask.request', sessionId: 'live-1', requestId: 'q-1', step: 1, question: 'Which account should I use?' }]);
    expect(render()).toContain('Which account should I use?');
  });
});

describe('the memory view', () => {
  const cat = (current: number) => ({ current, peak: current });
  // The figures of the README's screenshot: the allocator holds 326 KiB for KV, an uncompressed cache would
  // hold 316 KiB, the compressed cache holds 65 KiB of keys and values.
  const memory = (extra: Record<string, unknown>): HostEvent => ({
    type: 'memory', sessionId: 'live-1', step: 1,
    data: { device: 'cpu', engine: { weights: cat(40 << 20), kv: cat(326 * 1024), activations: cat(1 << 20), workspace: cat(1 << 16) }, system: { label: 'starkv process (RSS)', used: 300 << 20, total: 16 << 30 }, kvFullBytes: 316 * 1024, ...extra },
  } as HostEvent);
  const plain = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

  it('shows the bytes the compressed cache holds against a full cache, and the allocated KV apart', () => {
    feed([started('live-1', 'live task'), step('live-1', 1), memory({ kvHeldBytes: 65 * 1024 })]);
    useApp.getState().setTab('memory');
    const html = plain(render());
    expect(html).toContain('65 KiB of 316 KiB (20.6%)');
    expect(html).not.toContain('(103.');
    expect(html).toContain('allocated capacity for KV: 326 KiB');
    expect(html).toContain('KV cache (allocated) 326 KiB');
  });

  it('a one-step memory chart is a labelled bar, not a lone dot on an axis from 1 to 1', () => {
    feed([started('live-1', 'live task'), step('live-1', 1), memory({ kvHeldBytes: 65 * 1024 })]);
    useApp.getState().setTab('memory');
    const html = render();
    const chart = /<figure class="chart"[^>]*>([\s\S]*?)<\/figure>/.exec(html)?.[1] ?? '';
    expect(chart).toContain('data-testid="bar"');
    expect(chart).toMatch(/class="tick value"[^>]*>300</); // 300 MiB, written on the bar
    expect(chart).toContain('>step 1<');
    expect(chart).not.toMatch(/<circle/);
    // the axis starts at zero and goes above the value
    const ticks = [...chart.matchAll(/class="tick" [^>]*text-anchor="end">([^<]*)</g)].map((m) => Number(m[1]));
    expect(Math.min(...ticks)).toBe(0);
    expect(Math.max(...ticks)).toBeGreaterThan(300);
    // two steps: a line again
    feed([step('live-1', 2), { ...memory({}), step: 2 } as HostEvent]);
    const two = /<figure class="chart"[^>]*>([\s\S]*?)<\/figure>/.exec(render())?.[1] ?? '';
    expect(two).not.toContain('data-testid="bar"');
    expect((two.match(/<circle/g) ?? []).length).toBe(2);
  });

  it('an episode recorded without held bytes takes them from that step’s KV telemetry', () => {
    feed([started('live-1', 'live task'), step('live-1', 1), step('live-1', 2)]);
    const tele = (s: number, kvBytes: number): HostEvent => ({
      type: 'telemetry.kv', sessionId: 'live-1',
      data: { step: s, method: 'starkv', budgetPercent: 20, capTokens: null, logicalLength: 10, textTokens: 10, frames: [], layers: [], kvBytes, kvFullBytes: 316 * 1024 },
    });
    feed([tele(1, 64 * 1024), tele(2, 99 * 1024), memory({})]);
    useApp.getState().setTab('memory');
    expect(plain(render())).toContain('64 KiB of 316 KiB (20.3%)');
  });
});

describe('the task bar', () => {
  const stopTag = (html: string) => /<button[^>]*data-testid="stop"[^>]*>/.exec(html)?.[0] ?? '';

  it('offers Stop from the moment Start is pressed, through the model load, until the task ends', () => {
    expect(stopTag(render())).toContain('disabled'); // nothing to stop
    // Start pressed; the host has not answered yet.
    useApp.setState({ starting: true });
    expect(stopTag(render())).not.toContain('disabled');
    // The host loads the model (minutes for a 7B checkpoint): Stop stays available, Pause waits.
    feed([{ type: 'session.starting', sessionId: 'live-1', task: 'open a big model', t: 1 }]);
    expect(useApp.getState().starting).toBe(false);
    const html = render();
    expect(stopTag(html)).toContain('data-testid="stop"');
    expect(stopTag(html)).not.toContain('disabled');
    expect(/<button[^>]*data-testid="pause"[^>]*>/.exec(html)?.[0]).toContain('disabled');
    expect(html).toContain('loading the model');
    expect(html).toMatch(/data-testid="status"[^>]*>.*starting/);
    feed([started('live-1', 'open a big model')]);
    expect(stopTag(render())).not.toContain('disabled');
    feed([{ type: 'session.ended', sessionId: 'live-1', result: { status: 'stopped', steps: 0 }, t: 2 }]);
    expect(stopTag(render())).toContain('disabled');
  });
});

describe('KV telemetry of a long episode in the window', () => {
  const tele = (step: number): HostEvent => ({
    type: 'telemetry.kv', sessionId: 'live-1',
    data: { step, method: 'starkv', budgetPercent: 20, capTokens: null, logicalLength: 10, textTokens: 10, frames: [], layers: [{ layer: 0, cap: 4, kept: 4, keptPerFrame: [], keptText: 4, cells: [], text: 'Dw==', starkv: null }], kvBytes: 1, kvFullBytes: 2 },
  });

  it('holds the latest steps, lists them all, and fetches a past one once when it is looked at', () => {
    const sent: unknown[] = [];
    useApp.setState({ transport: { send: (c: unknown) => (sent.push(c), true) } as never });
    feed([started('live-1', 'long task'), { type: 'telemetry.index', sessionId: 'live-1', steps: [1, 2, 3] }]);
    for (let k = 4; k <= 100; k++) feed([tele(k)]);
    const live = useApp.getState().live!;
    expect(live.telemetrySteps).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(Object.keys(live.telemetry).map(Number)).toEqual(Array.from({ length: 64 }, (_, i) => i + 37)); // the latest 64
    // Step 3 is listed but not held: the inspector says it is fetching it, and asks the host once.
    useApp.getState().setTab('kv');
    useApp.getState().selectStep(3);
    const html = render();
    expect(html).toContain('Fetching the KV telemetry of step 3');
    expect(html).toContain('<option value="3" selected="">3</option>');
    useApp.getState().fetchTelemetry('live-1', 3);
    useApp.getState().fetchTelemetry('live-1', 3);
    expect(sent).toEqual([{ type: 'telemetry.get', sessionId: 'live-1', step: 3, ref: expect.stringMatching(/^telemetry-/) }]);
    feed([tele(3)]);
    expect(useApp.getState().telemetryFetch).toEqual({});
    expect(render()).toContain('layer keeps 4/4');
    // A step the host no longer has: the reason shows instead of a spinner.
    useApp.getState().selectStep(1);
    useApp.getState().fetchTelemetry('live-1', 1);
    feed([{ type: 'error', ref: (sent[1] as { ref: string }).ref, message: 'the KV telemetry of step 1 is no longer held' }]);
    expect(render()).toContain('could not be fetched: the KV telemetry of step 1 is no longer held');
  });
});

describe('STaR-KV statistics in the KV inspector', () => {
  // Quantities of very different ranges: temperature ~1.2-1.5, entropy ~0.9, λ ~0.01, stability ~0.99.
  const layer = (l: number) => ({
    layer: l, cap: 4, kept: 4, keptPerFrame: [], keptText: 4, cells: [], text: 'Dw==',
    starkv: { temperature: 1.2 + 0.1 * l, normalizedEntropy: 0.9 - 0.01 * l, lambdaEff: 0.01 * l, miCur: [0.5 + l, 2 - l * 0.1], miEma: [0.4, 0.6], groupWeights: [0.3, 0.7], stability: [0.99, 0.98] },
  });
  const charts = (html: string, grid: string) =>
    [...html.matchAll(new RegExp(`<figure[^>]*data-testid="${grid}-([\\w-]+)"[^>]*>([\\s\\S]*?)</figure>`, 'g'))].map((m) => ({
      key: m[1]!,
      lines: (m[2]!.match(/<path /g) ?? []).length,
      ticks: [...m[2]!.matchAll(/class="tick"[^>]*text-anchor="end">([^<]*)</g)].map((x) => x[1]),
    }));

  it('labels a narrow range with enough decimals that its ticks differ', () => {
    feed([started('live-1', 'stats'), {
      type: 'telemetry.kv', sessionId: 'live-1',
      data: { step: 1, method: 'starkv', budgetPercent: 20, capTokens: null, logicalLength: 10, textTokens: 10, frames: [], layers: [0, 1, 2].map((l) => ({ ...layer(l), starkv: { ...layer(l).starkv, temperature: 1.248 + 0.002 * l } })), kvBytes: 1, kvFullBytes: 2 },
    }]);
    useApp.getState().setTab('kv');
    const temp = charts(render(), 'over-layers').find((c) => c.key === 'temperature')!;
    expect(temp.ticks.slice(0, 3)).toEqual(['1.2520', '1.2480', '1.2500']); // max, min, middle
  });

  it('gives each quantity its own chart and y axis, and shows MI per group over layers and steps', () => {
    feed([started('live-1', 'stats'), {
      type: 'telemetry.kv', sessionId: 'live-1',
      data: { step: 1, method: 'starkv', budgetPercent: 20, capTokens: null, logicalLength: 10, textTokens: 10, frames: [], layers: [0, 1, 2, 3].map(layer), kvBytes: 1, kvFullBytes: 2 },
    }]);
    useApp.getState().setTab('kv');
    const html = render();
    const over = charts(html, 'over-layers');
    expect(over.map((c) => c.key)).toEqual(['temperature', 'entropy', 'lambda', 'stability', 'weights', 'mi', 'mi-ema']);
    const by = Object.fromEntries(over.map((c) => [c.key, c]));
    // one line per scalar, one per KV group for per-group quantities
    expect([by.temperature!.lines, by.entropy!.lines, by.lambda!.lines, by.mi!.lines]).toEqual([1, 1, 1, 2]);
    // each axis spans its own quantity (max, then min; the middle tick is in between)
    expect(by.temperature!.ticks[0]).toBe('1.50');
    expect(by.temperature!.ticks[1]).toBe('1.20');
    expect(by.entropy!.ticks.slice(0, 2)).toEqual(['0.900', '0.870']);
    expect(by.lambda!.ticks.slice(0, 2)).toEqual(['0.030', '0.000']);
    expect(by.mi!.ticks.slice(0, 2)).toEqual(['3.5', '0.5']); // this step's MI, not its EMA
    expect(charts(html, 'over-steps').map((c) => c.key)).toContain('mi');
    expect(html).toContain('MI per group (this step)');
  });
});

describe('web mode address bar', () => {
  it('drops the token and keeps the rest of the URL', () => {
    expect(withoutToken('http://127.0.0.1:5173/?token=abc_DEF-123')).toBe('/');
    expect(withoutToken('http://127.0.0.1:5173/?a=1&token=abc&b=2#kv')).toBe('/?a=1&b=2#kv');
    expect(withoutToken('http://127.0.0.1:5173/?a=1')).toBeNull();
  });
});
