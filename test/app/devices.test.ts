// The device setting: the host offers the GPUs the engine reports (the addon's cudaInfo(), as `starkv
// devices` shows them) as cuda:0 .. cuda:N-1 beside auto and cpu, validates the setting's form with the
// protocol's schema, refuses a GPU it does not have, keeps "cuda" meaning cuda:0, and the settings panel
// lists exactly those choices.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createElement, type ComponentType } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuMatmulProblem, deviceProblem, gpuIndex, probeDevices } from '../../app/host/devices.ts';
import { Host } from '../../app/host/host.ts';
import type { AgentRunner } from '../../app/host/runner.ts';
import { defaultSettings, publicSettings, SettingsStore } from '../../app/host/settings.ts';
import { loadAddon } from '../../app/native.ts';
import { parseEvent, parseSettings, type Devices, type HostEvent } from '../../app/protocol.ts';
import { useApp } from '../../renderer/src/store.ts';

const VIEW = '../../renderer/src/views/SettingsView.tsx';
const { SettingsView, deviceOptions } = (await import(VIEW)) as { SettingsView: ComponentType; deviceOptions: (cur: string, d: Devices) => Array<[string, string]> };

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const noRunner: AgentRunner = { start: () => Promise.reject(new Error('no agent in this test')) };
const TWO: Devices = {
  gpus: [
    { id: 'cuda:0', name: 'NVIDIA H200', cc: '9.0', totalBytes: 141 * 2 ** 30 },
    { id: 'cuda:1', name: 'NVIDIA L4', cc: '8.9', totalBytes: 24 * 2 ** 30 },
  ],
  note: null,
};
const NONE: Devices = { gpus: [], note: 'no CUDA device: the driver reports 0 devices' };

function host(devices: Devices) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-devices-'));
  dirs.push(dir);
  const h = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner: noRunner, mode: 'web', log: () => {}, devices: () => devices });
  const events: HostEvent[] = [];
  const c = h.connect((e) => events.push(e));
  return { h, events, c, dir };
}
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('devices the engine reports', () => {
  it('are what the addon’s cudaInfo() lists (the source of `starkv devices`), or say why there is none', () => {
    const info = loadAddon().cudaInfo() as { devices: Array<{ index: number; name: string }>; error: string | null };
    const d = probeDevices();
    expect(d.gpus.map((g) => g.id)).toEqual(info.devices.map((x) => `cuda:${x.index}`));
    expect(d.gpus.map((g) => g.name)).toEqual(info.devices.map((x) => x.name));
    if (!d.gpus.length) expect(d.note).toBe(info.error ?? 'built without CUDA');
    // a fake engine with two GPUs, and one that cannot be asked
    const bf16 = () => ({ bf16Matmul: true, bf16Impl: 'brg:avx512_core_bf16' });
    const two = probeDevices(() => ({ compiled: true, error: null, devices: [{ index: 0, name: 'A', cc: '9.0', totalBytes: 1 }, { index: 1, name: 'B', cc: '8.9', totalBytes: 2 }] }), bf16);
    expect(two).toEqual({ gpus: [{ id: 'cuda:0', name: 'A', cc: '9.0', totalBytes: 1 }, { id: 'cuda:1', name: 'B', cc: '8.9', totalBytes: 2 }], note: null, cpuBf16: { available: true, impl: 'brg:avx512_core_bf16' } });
    const missing = () => { throw new Error('addon missing'); };
    expect(probeDevices(missing, missing)).toEqual({ gpus: [], note: 'the engine could not be asked: addon missing', cpuBf16: { available: false, impl: 'the engine could not be asked: addon missing' } });
  });

  it('say whether the CPU runs the bf16 prefill path, as the addon’s cpuInfo() does', () => {
    const ci = loadAddon().cpuInfo() as { bf16Matmul: boolean; bf16Impl: string; simd: string };
    expect(probeDevices().cpuBf16).toEqual({ available: ci.bf16Matmul, impl: ci.bf16Impl });
    // a fast bf16 kernel exactly where the CPU has the instructions (this engine's oneDNN build)
    expect(ci.bf16Matmul).toBe(/avx512bf16|amx/.test(ci.simd));
    const slow: Devices = { ...NONE, cpuBf16: { available: false, impl: 'ref:any' } };
    expect(cpuMatmulProblem('bf16', slow)).toBe('model.cpuMatmul: bf16 is not available on this CPU (ref:any); choose auto (fp32 here) or fp32');
    expect([cpuMatmulProblem('auto', slow), cpuMatmulProblem('fp32', slow), cpuMatmulProblem('bf16', { ...slow, cpuBf16: { available: true, impl: 'x' } }), cpuMatmulProblem('bf16', NONE)]).toEqual([null, null, null, null]);
  });

  it('"cuda" is cuda:0; auto and cpu are no GPU', () => {
    expect([gpuIndex('cuda'), gpuIndex('cuda:0'), gpuIndex('cuda:7'), gpuIndex('auto'), gpuIndex('cpu')]).toEqual([0, 0, 7, null, null]);
    expect(deviceProblem('cuda', TWO)).toBeNull();
    expect(deviceProblem('cuda:1', TWO)).toBeNull();
    expect(deviceProblem('cuda:2', TWO)).toMatch(/cuda:2 is not a GPU here; the engine reports cuda:0, cuda:1/);
    expect(deviceProblem('cuda', NONE)).toMatch(/not available here \(no CUDA device: the driver reports 0 devices\)/);
    expect(deviceProblem('auto', NONE)).toBeNull();
  });
});

describe('the host and the device setting', () => {
  it('tells each window the GPUs, and takes cuda:0..N-1 but not a GPU it lacks or a malformed device', async () => {
    const { h, events, c } = host(TWO);
    expect(events[0]).toMatchObject({ type: 'hello', devices: TWO });
    expect(parseEvent(events[0]).ok).toBe(true);
    c.receive({ type: 'settings.update', patch: { model: { device: 'cuda:1' } }, ref: 'settings-1' });
    await tick();
    expect(h.settings.model.device).toBe('cuda:1');
    c.receive({ type: 'settings.update', patch: { model: { device: 'cuda:2' } }, ref: 'settings-2' });
    c.receive({ type: 'settings.update', patch: { model: { device: 'gpu0' } }, ref: 'settings-3' });
    await tick();
    expect(events.filter((e) => e.type === 'error').map((e) => (e as { message: string }).message)).toEqual([
      'settings not changed: model.device: cuda:2 is not a GPU here; the engine reports cuda:0, cuda:1',
      'settings not changed: model.device: auto, cpu, cuda or cuda:N',
    ]);
    expect(h.settings.model.device).toBe('cuda:1');
    c.receive({ type: 'settings.update', patch: { model: { device: 'cuda' } }, ref: 'settings-4' });
    await tick();
    expect(h.settings.model.device).toBe('cuda');
  });

  it('without a GPU, offers none and refuses CUDA with the engine’s reason', async () => {
    const { h, events, c } = host(NONE);
    c.receive({ type: 'settings.update', patch: { model: { device: 'cuda:0' } }, ref: 'settings-1' });
    await tick();
    expect(events.at(-1)).toMatchObject({ type: 'error', message: /cuda:0 is not available here \(no CUDA device/ });
    expect(h.settings.model.device).toBe('auto');
  });

  it('refuses the bf16 CPU path on a CPU without it, and takes it where the CPU has it', async () => {
    const { h, events, c } = host({ ...NONE, cpuBf16: { available: false, impl: 'ref:any' } });
    c.receive({ type: 'settings.update', patch: { model: { cpuMatmul: 'bf16' } }, ref: 'settings-1' });
    await tick();
    expect(events.at(-1)).toMatchObject({ type: 'error', message: 'settings not changed: model.cpuMatmul: bf16 is not available on this CPU (ref:any); choose auto (fp32 here) or fp32' });
    expect(h.settings.model.cpuMatmul).toBe('auto');
    c.receive({ type: 'settings.update', patch: { model: { cpuMatmul: 'fp32' } }, ref: 'settings-2' });
    await tick();
    expect(h.settings.model.cpuMatmul).toBe('fp32');
    const ok = host({ ...NONE, cpuBf16: { available: true, impl: 'brg:avx512_core_bf16' } });
    ok.c.receive({ type: 'settings.update', patch: { model: { cpuMatmul: 'bf16' } }, ref: 'settings-3' });
    await tick();
    expect(ok.h.settings.model.cpuMatmul).toBe('bf16');
  });

  it('a settings file from a machine with more GPUs still loads (the run falls back with a warning)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-devices-'));
    dirs.push(dir);
    const file = path.join(dir, 's.json');
    const s = defaultSettings(dir);
    s.model.device = 'cuda:3';
    writeFileSync(file, JSON.stringify(s));
    const store = new SettingsStore(file, defaultSettings(dir));
    expect(store.loadWarning).toBeNull();
    expect(store.get().model.device).toBe('cuda:3');
    expect(parseSettings({ ...s, model: { ...s.model, device: 'cuda:x' } }).ok).toBe(false);
  });
});

describe('the settings panel', () => {
  const render = (device: string, devices: Devices) => {
    const s = publicSettings(defaultSettings('/tmp/starkv-devices'));
    s.model.source = 'checkpoint';
    s.model.device = device;
    useApp.setState({ settings: s, devices });
    Object.assign(useApp.getInitialState(), useApp.getState());
    const html = renderToStaticMarkup(createElement(SettingsView));
    const select = /<select[^>]*data-testid="model-device"[^>]*>([\s\S]*?)<\/select>/.exec(html)?.[1] ?? '';
    return [...select.matchAll(/<option value="([^"]+)"( selected="")?>([^<]*)<\/option>/g)].map((m) => ({ value: m[1], selected: !!m[2], label: m[3] }));
  };

  it('lists auto, cpu and each GPU the engine reports; "cuda" shows as cuda:0', () => {
    const opts = render('cuda', TWO);
    expect(opts.map((o) => o.value)).toEqual(['auto', 'cpu', 'cuda:0', 'cuda:1']);
    expect(opts.find((o) => o.selected)?.value).toBe('cuda:0');
    expect(opts[2]!.label).toContain('NVIDIA H200');
    expect(opts[3]!.label).toContain('NVIDIA L4 · 24 GiB');
  });

  it('says beside the CPU matmul whether this CPU has the bf16 path', () => {
    const hint = (devices: Devices) => {
      render('auto', devices);
      const html = renderToStaticMarkup(createElement(SettingsView));
      // the hint is the text right after the row's label
      const row = html.slice(html.indexOf('CPU matmul'), html.indexOf('data-testid="model-cpu-matmul"'));
      return row.replace(/&#x27;/g, "'");
    };
    expect(hint({ ...NONE, cpuBf16: { available: true, impl: 'brg:avx512_core_bf16' } })).toContain('This CPU has it (brg:avx512_core_bf16).');
    expect(hint({ ...NONE, cpuBf16: { available: false, impl: 'ref:any' } })).toContain('This CPU has not (ref:any): bf16 is refused, auto runs fp32.');
  });

  it('offers no GPU where there is none; a saved one not found here stays visible, marked', () => {
    expect(render('auto', NONE).map((o) => o.value)).toEqual(['auto', 'cpu']);
    const opts = render('cuda:3', TWO);
    expect(opts.map((o) => o.value)).toEqual(['auto', 'cpu', 'cuda:0', 'cuda:1', 'cuda:3']);
    expect(opts.at(-1)).toMatchObject({ selected: true, label: expect.stringContaining('not found here') });
    expect(deviceOptions('cpu', TWO)[0]).toEqual(['auto', 'Automatic (cuda:0)']);
  });
});
