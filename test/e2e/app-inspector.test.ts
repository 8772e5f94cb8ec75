// The KV inspector in a browser, fed through the real server and host by a runner test double whose
// telemetry comes from the engine's real compression (native STaR-KV via app/kv) run on seeded synthetic
// layers laid out like three screenshots: heatmaps match the kept cells, the layer slider and step picker
// work, and a budget changed in Settings shows in the next step's telemetry. (The agent's real engine
// path does not report telemetry yet; this checks the window, not the model.)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvCompress, KvLayerState } from '../../app/kv/addon.ts';
import { Host } from '../../app/host/host.ts';
import type { AgentRun, AgentRunner, RunHooks, RunRequest, RunResult } from '../../app/host/runner.ts';
import { defaultSettings, SettingsStore } from '../../app/host/settings.ts';
import { buildKvTelemetry, keptPositionsFromSelection, type FrameSpan } from '../../app/host/telemetry.ts';
import { decodeBits } from '../../app/protocol.ts';
import { buildRenderer, rendererBuildState } from '../../app/server/renderer-build.ts';
import { startServer, type RunningServer } from '../../app/server/server.ts';
import { ROOT, TMP } from '../helpers/paths.ts';
import { readmeShot } from './app-helpers.ts';
import { synthLayer } from '../kv/synthetic.ts';

const OUT = path.join(TMP, 'app-e2e');
const ROWS = 10, COLS = 16, CELLS = ROWS * COLS; // a 448x280 screenshot = 10x16 cells of 28x28 px
const LAYERS = 6;

async function desktopPng(step: number): Promise<Buffer> {
  const hue = ['#3b6fd6', '#2e9e6a', '#b5652a'][step - 1]!;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="448" height="280"><rect width="448" height="280" fill="#e9edf3"/>
    <rect width="448" height="28" fill="#2b3240"/><rect x="28" y="56" width="196" height="140" fill="${hue}"/>
    <rect x="252" y="56" width="168" height="28" fill="#fff" stroke="#99a"/><rect x="252" y="112" width="84" height="28" fill="#4f8cff"/>
    <text x="36" y="20" font-size="14" fill="#fff" font-family="sans-serif">window ${step}</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Test double of the agent: three steps whose telemetry is computed by the real STaR-KV on synthetic layers. */
class TelemetryRunner implements AgentRunner {
  budget = 20;
  release!: () => void;
  readonly gate = new Promise<void>((r) => (this.release = r));

  async start(req: RunRequest, hooks: RunHooks): Promise<AgentRun> {
    this.budget = req.settings.kv.budgetPercent;
    const states = Array.from({ length: LAYERS }, () => new KvLayerState());
    const geometry = { origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: 448, height: 280 }, sent: { width: 448, height: 280 }, resized: { width: 448, height: 280 }, coordSpace: 'absolute' as const };
    const step = async (t: number) => {
      hooks.onEvent({ type: 'step', step: t, png: await desktopPng(t), file: null, geometry });
      // context: 20 text tokens, then per step a screenshot and 12 text tokens
      const frames: FrameSpan[] = [];
      let pos = 20;
      for (let s = 1; s <= t; s++) frames.push({ step: s, start: pos, end: (pos += CELLS), rows: ROWS, cols: COLS }), (pos += 12);
      const L = pos;
      const layers = states.map((state, l) => {
        const layer = synthLayer({ L, H: 8, Hkv: 2, d: 16, seed: 100 * t + l, spans: frames.map((f) => [f.start, f.end] as [number, number]) });
        const sel = kvCompress('starkv', {}, this.budget, layer, state);
        return { layer: l, cap: sel.cap, keptPositions: keptPositionsFromSelection(sel, L), stats: sel.telemetry };
      });
      hooks.onEvent({ type: 'telemetry', data: buildKvTelemetry({ step: t, method: 'starkv', budgetPercent: this.budget, logicalLength: L, frames, layers }) });
      hooks.onEvent({ type: 'action', step: t, index: 0, action: { type: 'click', point: { x: 140, y: 126 } }, thought: 'the coloured panel' });
    };
    let finish!: () => void;
    const done = new Promise<RunResult>((r) => (finish = () => r({ status: 'finished', steps: 3, answer: 'done' })));
    void (async () => {
      await step(1);
      await step(2);
      await this.gate;
      await step(3);
      finish();
    })();
    hooks.onEvent({ type: 'started', backend: 'test-double', destination: 'synthetic layers', dryRun: true, display: { width: 448, height: 280, scale: 1 }, episodeDir: null });
    return { pause() {}, resume() {}, stop: async () => finish(), applySettings: (s) => (this.budget = s.kv.budgetPercent), done };
  }
}

let dir: string, server: RunningServer, browser: Browser, page: Page;
const runner = new TelemetryRunner();
const text = async (sel: string) => ((await page.locator(sel).count()) ? ((await page.locator(sel).first().textContent()) ?? '') : '');

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-inspector-'));
  const rendererDir = path.join(ROOT, 'dist', 'renderer');
  if (rendererBuildState(ROOT, rendererDir) !== 'fresh') await buildRenderer(ROOT);
  const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner, mode: 'web', log: () => {} });
  server = await startServer({ host, rendererDir, port: 0 });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(server.url);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Kept (1) / evicted (0) per cell, read back from the overlay canvas of frame `f`. */
async function canvasCells(f: number): Promise<number[]> {
  return page.evaluate((i) => {
    const c = document.querySelectorAll('canvas.kept-overlay')[i] as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return Array.from({ length: c.width * c.height }, (_, k) => (d[k * 4 + 3]! < 100 ? 1 : 0));
  }, f);
}

describe('KV inspector', () => {
  it('says there is no telemetry before any arrives', async () => {
    await page.click('[data-testid=tab-kv]');
    expect(await text('[data-testid=no-telemetry]')).toContain('No KV telemetry yet');
  });

  it('draws what each layer kept over each screenshot, per step, and follows a budget change', async () => {
    await page.click('[data-testid=tab-run]');
    await page.fill('[data-testid=task-input]', 'inspect the cache');
    await page.click('[data-testid=start]');
    await expect.poll(() => page.locator('[data-testid=timeline-step]').count(), { timeout: 20_000 }).toBe(2);
    // Settings: budget 20% -> 50% while the task runs; the next step uses it.
    await page.click('[data-testid=tab-settings]');
    await page.locator('[data-testid=kv-budget]').focus();
    for (let i = 0; i < 30; i++) await page.keyboard.press('ArrowRight');
    await expect.poll(() => runner.budget, { timeout: 5000 }).toBe(50);
    runner.release();
    await page.click('[data-testid=tab-run]');
    await expect.poll(() => text('[data-testid=outcome]'), { timeout: 20_000 }).toContain('Finished');

    await page.click('[data-testid=tab-kv]');
    await expect.poll(() => page.locator('canvas.kept-overlay').count()).toBe(3);
    expect(await text('.kv-facts')).toContain('budget 50%');
    await page.selectOption('[data-testid=kv-step]', '2');
    expect(await text('.kv-facts')).toContain('budget 20%');
    await page.selectOption('[data-testid=kv-step]', '3');

    // the caption's count is the number of cells the heatmap shows as kept
    const bitsFromUi = await canvasCells(0);
    expect(bitsFromUi.length).toBe(CELLS);
    const kept0 = bitsFromUi.reduce((a, b) => a + b, 0);
    const caption = await text('.frame figcaption');
    expect(caption).toContain(`kept ${kept0} (`);

    // another layer keeps another set
    const all = async () => JSON.stringify([await canvasCells(0), await canvasCells(1), await canvasCells(2)]);
    const before = await all();
    await page.locator('[data-testid=kv-layer]').fill('3');
    await expect.poll(() => text('.kv-controls label.grow')).toContain('Layer 3');
    expect(await all()).not.toBe(before);
    expect(await page.locator('.chart svg path').count()).toBeGreaterThan(4);
    expect(await page.locator('[data-testid=frame-table] tbody tr').count()).toBe(LAYERS);
    await page.screenshot({ path: path.join(OUT, '10-kv-inspector.png'), fullPage: true });
    await readmeShot(page, 'kv-inspector', { width: 1280, height: 800, fullContent: true });
  });

  it('the cells drawn are the ones the telemetry says were kept', async () => {
    // Decode the telemetry the page received (it arrives over the WebSocket like any event) and compare.
    const events: Array<{ type: string; data?: { step: number; layers: Array<{ layer: number; cells: string[] }> } }> = [];
    const page2 = await browser.newPage();
    page2.on('websocket', (ws) => ws.on('framereceived', (f) => typeof f.payload === 'string' && events.push(JSON.parse(f.payload))));
    await page2.goto(server.url);
    await expect.poll(() => events.filter((e) => e.type === 'telemetry.kv').length, { timeout: 10_000 }).toBe(3);
    await page2.close();
    const t3 = events.find((e) => e.type === 'telemetry.kv' && e.data!.step === 3)!.data!;
    const layer3 = t3.layers.find((l) => l.layer === 3)!;
    for (let f = 0; f < 3; f++) expect(await canvasCells(f)).toEqual(Array.from(decodeBits(layer3.cells[f]!, CELLS)));
  });
});
