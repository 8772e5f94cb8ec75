// The window with the in-process engine: a checkpoint folder is checked on the spot with the engine's own
// errors, then a dry-run task runs on a tiny Qwen2.5-VL checkpoint (real tokenizer, random weights, so its
// replies are gibberish the agent cannot parse) through the real `starkv serve`, and the memory panel shows
// the engine's own byte accounting.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startXvfb, type Xvfb } from '../agent/helpers/xvfb.ts';
import { TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';
import { launchBrowser, readmeShot, startServe, type Serve } from './app-helpers.ts';

const W = 1024, H = 640;
const OUT = path.join(TMP, 'app-e2e');
const DATA = path.join(TMP, 'app-e2e-engine');
let xvfb: Xvfb, serve: Serve, browser: Browser, page: Page, model: string, scripted: string;
const text = async (sel: string) => ((await page.locator(sel).count()) ? ((await page.locator(sel).first().textContent()) ?? '') : '');

async function setField(testId: string, value: string) {
  await page.fill(`[data-testid=${testId}]`, value);
  await page.press(`[data-testid=${testId}]`, 'Enter');
}

beforeAll(async () => {
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  model = writeTinyRealVocab(path.join(DATA, 'model'));
  scripted = writeTinyRealVocab(path.join(DATA, 'scripted'), 22, "Action: click(start_box='(15,26)')");
  const broken = path.join(DATA, 'broken');
  mkdirSync(broken, { recursive: true });
  writeFileSync(path.join(broken, 'config.json'), '{"model_type": "qwen2_5_vl"');
  xvfb = await startXvfb(W, H);
  serve = await startServe(['--config', path.join(DATA, 'settings.json'), '--data', DATA], { ...process.env, DISPLAY: xvfb.display });
  browser = await launchBrowser(xvfb.display, W, H);
  page = await (await browser.newContext({ viewport: null })).newPage();
  await page.goto(serve.url);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await serve?.stop();
  await xvfb?.stop();
});

describe('in-process engine from the window', () => {
  it('checks a checkpoint folder on the spot with the engine’s own errors', async () => {
    await page.click('[data-testid=tab-settings]');
    await page.selectOption('[data-testid=model-source]', 'checkpoint');
    await setField('checkpoint-dir', path.join(DATA, 'nowhere'));
    await expect.poll(() => text('[data-testid=checkpoint-result]'), { timeout: 10_000 }).toContain('no such folder');
    await setField('checkpoint-dir', path.join(DATA, 'broken'));
    await expect.poll(() => text('[data-testid=checkpoint-result]'), { timeout: 10_000 }).toMatch(/config\.json/);
    await setField('checkpoint-dir', model);
    await expect.poll(() => text('[data-testid=checkpoint-result]'), { timeout: 10_000 }).toMatch(/^✓ qwen2_5_vl, .* parameters/);
    await setField('max-steps', '2');
    await setField('max-pixels', '200704');
    await setField('max-tokens', '48');
    await page.screenshot({ path: path.join(OUT, '11-settings-checkpoint.png') });
  });

  it('runs a dry-run task in-process: steps, streamed text, the engine’s memory by category', async () => {
    await page.click('[data-testid=tab-run]');
    await page.fill('[data-testid=task-input]', 'Open the menu');
    await page.click('[data-testid=start]');
    await expect.poll(() => page.locator('[data-testid=timeline-step]').count(), { timeout: 60_000 }).toBeGreaterThan(0);
    await expect.poll(() => text('[data-testid=outcome]'), { timeout: 90_000 }).toMatch(/Stopped|Reached|Finished/);
    expect(await text('.run-head')).toContain('native · in-process');
    await page.screenshot({ path: path.join(OUT, '12-run-engine.png') });
    await page.click('[data-testid=tab-memory]');
    const mem = await text('[data-testid=memory-view]');
    expect(mem).toContain('Engine memory on cpu');
    expect(mem).toMatch(/weights\s*[\d.]+ (MiB|KiB|GiB)/);
    await page.screenshot({ path: path.join(OUT, '13-memory-engine.png') });
    // The engine's own per-layer report of every step (persistent compressed cache): one row per layer.
    await page.click('[data-testid=tab-kv]');
    await expect.poll(() => page.locator('[data-testid=frame-table] tbody tr').count(), { timeout: 20_000 }).toBe(2);
    await page.screenshot({ path: path.join(OUT, '14-kv-engine.png') });
  }, 150_000);

  it('follows a budget change made mid-run: the next step is compressed to the new budget; stop; the episode reopens', async () => {
    // A checkpoint whose weights make the real engine answer a click at every step (see writeTinyRealVocab).
    await page.click('[data-testid=tab-settings]');
    await setField('checkpoint-dir', scripted);
    await expect.poll(() => text('[data-testid=checkpoint-result]'), { timeout: 10_000 }).toMatch(/^✓ qwen2_5_vl/);
    await setField('max-steps', '6');
    await page.click('[data-testid=tab-run]');
    await page.fill('[data-testid=task-input]', 'Open the settings');
    await page.click('[data-testid=start]');
    await page.locator('[data-testid=pause]').waitFor({ timeout: 30_000 });
    await page.click('[data-testid=pause]');
    await page.locator('[data-testid=resume]').waitFor({ timeout: 60_000 });
    const pausedAt = await page.locator('[data-testid=timeline-step]').count();
    // Budget 20% -> 50% while paused (the engine episode is the same one; only its settings change).
    await page.click('[data-testid=tab-settings]');
    await page.locator('[data-testid=kv-budget]').focus();
    for (let i = 0; i < 30; i++) await page.keyboard.press('ArrowRight');
    // The host's copy of the settings (the top bar shows it) has the new budget before the run resumes.
    await expect.poll(() => text('.topbar-right'), { timeout: 10_000 }).toContain('starkv · 50%');
    await page.click('[data-testid=tab-run]');
    await page.click('[data-testid=resume]');
    await expect.poll(() => text('[data-testid=outcome]'), { timeout: 90_000 }).toContain('Reached the step limit');
    expect(await page.locator('[data-testid=timeline-step]').count()).toBe(6);

    // The engine's own telemetry of every step: 20 % up to the pause, 50 % from the very next step on.
    await page.click('[data-testid=tab-kv]');
    expect(await page.locator('[data-testid=kv-step] option').allTextContents()).toEqual(['1', '2', '3', '4', '5', '6']);
    for (let k = 1; k <= 6; k++) {
      await page.selectOption('[data-testid=kv-step]', String(k));
      await expect.poll(() => text('.kv-facts')).toContain(k <= pausedAt ? 'budget 20%' : 'budget 50%');
    }
    await page.screenshot({ path: path.join(OUT, '15-kv-engine-budget.png') });

    // Stop in the middle of a long task.
    await page.click('[data-testid=tab-settings]');
    await setField('max-steps', '40');
    await page.click('[data-testid=tab-run]');
    await page.fill('[data-testid=task-input]', 'Keep clicking');
    await page.click('[data-testid=start]');
    await expect.poll(() => page.locator('[data-testid=timeline-step]').count(), { timeout: 60_000 }).toBeGreaterThan(1);
    await page.click('[data-testid=stop]');
    await expect.poll(() => text('[data-testid=outcome]'), { timeout: 60_000 }).toContain('Stopped');
    const stoppedAfter = await page.locator('[data-testid=timeline-step]').count();
    expect(stoppedAfter).toBeLessThan(40);

    // Reopen the episode from the list: the same steps, replayed in the same views.
    await page.click('[data-testid=tab-episodes]');
    await expect.poll(() => page.locator('[data-testid=episode-row]').count(), { timeout: 10_000 }).toBeGreaterThan(2);
    const row = page.locator('[data-testid=episode-row]', { hasText: 'Open the settings' }).first();
    await row.locator('[data-testid=episode-open]').click();
    await page.locator('[data-testid=replaybar]').waitFor({ timeout: 10_000 });
    await expect.poll(() => page.locator('[data-testid=timeline-step]').count(), { timeout: 10_000 }).toBe(6);
    await page.screenshot({ path: path.join(OUT, '16-episode-reopened.png') });
    // The replay has the telemetry the run showed (stored in the trajectory): the same budgets per step.
    await page.click('[data-testid=tab-kv]');
    expect(await page.locator('[data-testid=kv-step] option').allTextContents()).toEqual(['1', '2', '3', '4', '5', '6']);
    for (const k of [1, 6]) {
      await page.selectOption('[data-testid=kv-step]', String(k));
      await expect.poll(() => text('.kv-facts')).toContain(k <= pausedAt ? 'budget 20%' : 'budget 50%');
    }
    await page.click('[data-testid=tab-memory]');
    await expect.poll(() => text('[data-testid=kv-vs-full]')).toMatch(/^KV cache held against a full \(uncompressed\) cache at this step[\d.]+ (KiB|MiB) of [\d.]+ (KiB|MiB) \(\d+\.\d%\)/);
    // After six steps the compressed cache holds a fraction of what a full cache would (the README's shot).
    const held = /\((\d+\.\d)%\)/.exec(await text('[data-testid=kv-vs-full]'));
    expect(Number(held?.[1])).toBeGreaterThan(0);
    expect(Number(held?.[1])).toBeLessThan(100);
    await readmeShot(page, 'memory');
  }, 240_000);
});
