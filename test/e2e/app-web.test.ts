// The window in web mode, as a user uses it: the real `starkv serve` (child process, port 0, URL from its
// first line) with the real host and agent loop on a private Xvfb screen, in dry run, driven by a scripted
// OpenAI-compatible model; Debian's Chromium (headed on that screen, so it is the desktop the agent sees).
// Screenshots of each view are saved under test/.tmp/app-e2e/ for people to look at.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planImage, toModel, UITARS_LIMITS } from '../../app/agent/coords.ts';
import { startXvfb, type Xvfb } from '../agent/helpers/xvfb.ts';
import { TMP } from '../helpers/paths.ts';
import { launchBrowser, readmeShot, ScriptedModel, startServe, taskAndStep, type Serve } from './app-helpers.ts';

const W = 1280, H = 800;
const OUT = path.join(TMP, 'app-e2e');
const DATA = path.join(TMP, 'app-e2e-data');
const CONFIG = path.join(DATA, 'settings.json');

let xvfb: Xvfb, model: ScriptedModel, serve: Serve, browser: Browser, page: Page;

// The model points at screen pixel (640, 400), in the coordinates of the image it was sent.
const geometry = { origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: W, height: H }, coordSpace: 'absolute' as const, ...planImage({ width: W, height: H }, UITARS_LIMITS) };
const target = toModel({ x: 640, y: 400 }, geometry);
const box = (x: number, y: number) => `'<|box_start|>(${x},${y})<|box_end|>'`;

function script(body: Parameters<ScriptedModel['script']>[0]) {
  const { task, step } = taskAndStep(body);
  if (task.includes('risky')) return { text: `Thought: I will clean up the temporary folder.\nAction: type(content='sudo rm -rf /tmp/cache')` };
  if (task.includes('slow')) return { text: 'Thought: ' + 'let me think about this very carefully. '.repeat(40) + `\nAction: click(start_box=${box(target.x, target.y)})`, chunkMs: 250 };
  if (step === 1) return { text: `Thought: The Start button is in the middle of the screen; I will click it.\nAction: click(start_box=${box(target.x, target.y)})` };
  if (step === 2) return { text: `Thought: Now I type the greeting into the field.\nAction: type(content='hello world')` };
  return { text: `Thought: The greeting is on the screen, so the task is complete.\nAction: finished(content='All done: the greeting was typed.')` };
}

/** Text of the first element matching `sel`, or '' while there is none. */
const text = async (sel: string) => ((await page.locator(sel).count()) ? ((await page.locator(sel).first().textContent()) ?? '') : '');
const shot = (name: string) => page.screenshot({ path: path.join(OUT, `${name}.png`) });
const tab = async (name: string) => {
  await page.click(`[data-testid=tab-${name}]`);
  await page.waitForTimeout(150);
};

async function runTask(task: string): Promise<void> {
  await tab('run');
  await page.fill('[data-testid=task-input]', task);
  await page.click('[data-testid=start]');
}

beforeAll(async () => {
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  xvfb = await startXvfb(W, H);
  model = await ScriptedModel.start();
  model.script = script;
  serve = await startServe(['--config', CONFIG, '--data', DATA], { ...process.env, DISPLAY: xvfb.display });
  browser = await launchBrowser(xvfb.display, W, H);
  const ctx = await browser.newContext({ viewport: null });
  page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
}, 90_000);

afterAll(async () => {
  await browser?.close();
  const code = await serve?.stop();
  await model?.close();
  await xvfb?.stop();
  if (code !== 0 && code !== undefined) console.error(`starkv serve exited with ${code}:\n${serve.stderr()}`);
});

describe('starkv serve in a browser', () => {
  it('prints the URL with its token first, and the page loads with it', async () => {
    expect(serve.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
    const bare = serve.url.split('?')[0]!;
    const denied = await page.goto(bare);
    expect(denied!.status()).toBe(401);
    await page.goto(serve.url);
    await expect.poll(() => page.textContent('[data-testid=status]')).toContain('idle');
    // Once the cookie works the token leaves the address bar (the agent's screenshots show it); reloads
    // (the next test) authenticate with the cookie.
    await expect.poll(() => page.url()).toBe(bare);
    expect(await page.evaluate(() => location.search)).toBe('');
    await shot('01-run-empty');
  });

  it('changes settings, which persist in the server-owned file and across a reload', async () => {
    // A fresh install runs the model in-process; a task before any folder is chosen says what is missing.
    await runTask('anything');
    await expect.poll(() => text('.notice-error')).toContain('no checkpoint folder chosen: pick one in Settings');
    await expect.poll(() => page.textContent('[data-testid=status]')).toContain('idle');
    await page.click('.notice-error');
    await tab('settings');
    expect(await page.inputValue('[data-testid=model-source]')).toBe('checkpoint');
    await page.selectOption('[data-testid=model-source]', 'endpoint');
    await page.fill('[data-testid=endpoint-url]', model.endpoint);
    await page.press('[data-testid=endpoint-url]', 'Enter');
    await page.fill('[data-testid=endpoint-model]', 'scripted-ui-tars');
    await page.press('[data-testid=endpoint-model]', 'Enter');
    await page.fill('[data-testid=max-steps]', '7');
    await page.press('[data-testid=max-steps]', 'Enter');
    const budget = page.locator('[data-testid=kv-budget]');
    await budget.focus();
    for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowLeft');
    await expect.poll(() => JSON.parse(readFileSync(CONFIG, 'utf8')).kv.budgetPercent, { timeout: 5000 }).toBe(10);
    const saved = JSON.parse(readFileSync(CONFIG, 'utf8'));
    expect(saved.agent.maxSteps).toBe(7);
    expect(saved.model.endpoint).toMatchObject({ baseURL: model.endpoint, model: 'scripted-ui-tars' });
    // a bad value is refused on the spot and not saved
    await page.fill('[data-testid=max-steps]', '0');
    await page.press('[data-testid=max-steps]', 'Enter');
    await expect.poll(() => page.locator('.field-error').count()).toBe(1);
    await page.reload();
    await tab('settings');
    await expect.poll(() => page.inputValue('[data-testid=max-steps]')).toBe('7');
    expect(await page.inputValue('[data-testid=endpoint-url]')).toBe(model.endpoint);
    expect(await page.textContent('.slider b')).toBe('10%');
    await shot('02-settings');
    await readmeShot(page, 'settings');
  });

  it('runs a task in dry run: steps appear with the planned action drawn where the input would go', async () => {
    await runTask('Click Start, then type hello world');
    await expect.poll(() => page.locator('[data-testid=timeline-step]').count(), { timeout: 30_000 }).toBe(3);
    await expect.poll(() => text('[data-testid=answer]'), { timeout: 30_000 }).toBe('All done: the greeting was typed.');
    await page.locator('[data-testid=timeline-step]').first().click();
    const marker = page.locator('[data-testid=marker-skipped]');
    await expect.poll(() => marker.count()).toBe(1);
    expect([Number(await marker.getAttribute('data-x')), Number(await marker.getAttribute('data-y'))]).toEqual([640, 400]);
    await expect.poll(() => text('[data-testid=thought]')).toContain('I will click it');
    // The run view fits the 1280x800 window: nothing scrolls, the timeline's thumbnails are whole.
    const fit = await page.evaluate(() => {
      const content = document.querySelector('.content')!;
      const thumbs = Array.from(document.querySelectorAll('[data-testid=timeline-step]')).map((t) => t.getBoundingClientRect().bottom);
      const screen = document.querySelector('[data-testid=screen] .screen-frame')!.getBoundingClientRect();
      return { scroll: content.scrollHeight - content.clientHeight, bottom: Math.max(...thumbs), viewport: innerHeight, screenH: screen.height, screenW: screen.width };
    });
    expect(fit.scroll).toBeLessThanOrEqual(0);
    expect(fit.bottom).toBeLessThanOrEqual(fit.viewport);
    expect(fit.screenH).toBeGreaterThan(300); // the screenshot still gets most of the height
    expect(fit.screenW / fit.screenH).toBeCloseTo(W / H, 1);
    await shot('03-run-step1');
    await readmeShot(page, 'run');
    expect(model.requests.length).toBe(3);
  });

  it('shows no KV telemetry for a remote endpoint, and the process memory it does know', async () => {
    await tab('kv');
    await expect.poll(() => text('[data-testid=no-telemetry]')).toContain('openai');
    await shot('04-kv-none');
    await tab('memory');
    await expect.poll(() => text('[data-testid=memory-view]')).toContain('starkv process (RSS)');
    await shot('05-memory');
  });

  it('asks before a risky action and stops when declined', async () => {
    await runTask('A risky cleanup');
    const dialog = page.locator('[data-testid=confirm-dialog]');
    await expect.poll(() => text('[data-testid=confirm-dialog]'), { timeout: 30_000 }).toContain('sudo rm -rf /tmp/cache');
    await shot('06-confirm');
    await dialog.getByText('Decline and stop').click();
    await expect.poll(() => text('[data-testid=outcome]'), { timeout: 15_000 }).toContain('risky action was declined');
  });

  it('stops a task mid-reply at once', async () => {
    await runTask('A slow task');
    await expect.poll(() => text('[data-testid=thought]'), { timeout: 30_000 }).toContain('let me think');
    const t0 = Date.now();
    await page.click('[data-testid=stop]');
    await expect.poll(() => text('[data-testid=outcome]'), { timeout: 10_000 }).toContain('Stopped');
    expect(Date.now() - t0).toBeLessThan(5000);
    await shot('07-stopped');
  });

  it('stops a task that is still starting (the model check / load), and nothing of it runs later', async () => {
    model.modelsDelayMs = 4000;
    const before = model.requests.length;
    try {
      await runTask('A task whose model takes long to come up');
      await expect.poll(() => text('[data-testid=starting]'), { timeout: 5000 }).toContain('loading the model');
      expect(await page.locator('[data-testid=stop]').isEnabled()).toBe(true);
      const t0 = Date.now();
      await page.click('[data-testid=stop]');
      await expect.poll(() => text('[data-testid=outcome]'), { timeout: 3000 }).toContain('Stopped');
      expect(Date.now() - t0).toBeLessThan(3000);
      await expect.poll(() => text('[data-testid=status]')).toContain('idle');
      // The endpoint answers after the stop: no step, no request to the model.
      await page.waitForTimeout(4500);
      expect(model.requests.length).toBe(before);
      expect(await page.locator('[data-testid=timeline-step]').count()).toBe(0);
    } finally {
      model.modelsDelayMs = 0;
    }
  });

  it('lists the episodes and replays one in the same views', async () => {
    await tab('episodes');
    await expect.poll(() => page.locator('[data-testid=episode-row]').count(), { timeout: 10_000 }).toBe(3);
    await shot('08-episodes');
    const row = page.locator('[data-testid=episode-row]', { hasText: 'Click Start' });
    const [report] = await Promise.all([page.waitForEvent('popup'), row.getByText('Report').click()]);
    await report.waitForLoadState();
    expect(await report.textContent('h1')).toBe('Click Start, then type hello world');
    const imgs = await report.evaluate(() => Array.from(document.images).map((i) => i.complete && i.naturalWidth > 0));
    expect(imgs.length).toBe(3);
    expect(imgs.every(Boolean)).toBe(true);
    await report.close();
    await page.locator('[data-testid=episode-row]', { hasText: 'Click Start' }).locator('[data-testid=episode-open]').click();
    await expect.poll(() => text('[data-testid=replaybar]')).toContain('Click Start, then type hello world');
    await expect.poll(() => page.locator('[data-testid=timeline-step]').count()).toBe(3);
    await expect.poll(() => page.locator('[data-testid=marker-skipped]').count()).toBe(1);
    await shot('09-replay');
  });
});
