// Helpers of the app's end-to-end tests: `starkv serve` as a child process (URL from its first stdout
// line), a scripted OpenAI-compatible endpoint (the one test double: it plays the model), and Debian's
// Chromium through playwright-core.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT as REPO } from '../helpers/paths.ts';

export interface Serve {
  url: string;
  proc: ChildProcess;
  stderr: () => string;
  stop(): Promise<number | null>;
}

export async function startServe(args: string[], env: NodeJS.ProcessEnv): Promise<Serve> {
  const proc = spawn(process.execPath, [path.join(REPO, 'bin', 'starkv.js'), 'serve', '--port', '0', ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`starkv serve printed no URL within 60 s; stderr:\n${err}`)), 60_000);
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`starkv serve exited with ${code} before printing its URL; stderr:\n${err}`));
    });
  });
  return {
    url,
    proc,
    stderr: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve(proc.exitCode);
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', (code) => (clearTimeout(t), resolve(code)));
        proc.kill('SIGINT');
      }),
  };
}

export interface ChatBody {
  model: string;
  stream?: boolean;
  messages: Array<{ role: string; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> }>;
}

export interface Reply {
  text: string;
  /** Delay between streamed chunks (ms). */
  chunkMs?: number;
}

/** A scripted model: `script(body)` decides each reply; streams it as SSE in small chunks. */
export class ScriptedModel {
  requests: ChatBody[] = [];
  /** How long GET /v1/models takes (the host checks the endpoint there before a task starts). */
  modelsDelayMs = 0;
  script: (body: ChatBody) => Reply = () => ({ text: 'Thought: nothing to do.\nAction: finished(content=\'no script\')' });
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<ScriptedModel> {
    const server = http.createServer();
    const m = new ScriptedModel(server);
    server.on('request', (req, res) => void m.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return m;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method === 'GET' && req.url === '/v1/models') {
      if (this.modelsDelayMs) await new Promise((r) => setTimeout(r, this.modelsDelayMs));
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify({ data: [{ id: 'scripted-ui-tars' }] }));
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.statusCode = 404;
      return void res.end();
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatBody;
    this.requests.push(body);
    const reply = this.script(body);
    let closed = false;
    res.on('close', () => (closed = true));
    res.setHeader('content-type', 'text/event-stream');
    for (const piece of reply.text.match(/[\s\S]{1,5}/g) ?? []) {
      if (closed) return;
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
      await new Promise((r) => setTimeout(r, reply.chunkMs ?? 15));
    }
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`);
    res.end();
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** The task text and the number of earlier replies in a request (its step = replies + 1). */
export function taskAndStep(body: ChatBody): { task: string; step: number } {
  const text = body.messages
    .filter((m) => m.role === 'user')
    .flatMap((m) => (typeof m.content === 'string' ? [m.content] : m.content.map((p) => p.text ?? '')))
    .join('\n');
  return { task: text, step: body.messages.filter((m) => m.role === 'assistant').length + 1 };
}

/** Debian's Chromium, headed on the given X display (it is the desktop the agent looks at). */
export function launchBrowser(display: string, width: number, height: number): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: false,
    env: { ...process.env, DISPLAY: display },
    args: [
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--window-position=0,0', `--window-size=${width},${height}`, '--disable-dev-shm-usage',
    ],
  });
}

/**
 * With STARKV_README_SHOTS=1, writes the README's screenshot `assets/screenshots/<name>.png` of the page as
 * it is now. `width` and `fullContent` (headless pages only): shoot at that width, tall enough that the
 * view's scrolling content shows whole; the viewport is put back after.
 */
export async function readmeShot(page: Page, name: string, opts: { width?: number; height?: number; fullContent?: boolean } = {}): Promise<void> {
  if (!process.env.STARKV_README_SHOTS) return;
  const file = path.join(REPO, 'assets', 'screenshots', `${name}.png`);
  const vp = page.viewportSize();
  if (!vp || (!opts.width && !opts.fullContent)) return void (await page.screenshot({ path: file }));
  await page.setViewportSize({ width: opts.width ?? vp.width, height: opts.height ?? vp.height });
  await page.waitForTimeout(250);
  if (opts.fullContent) {
    const extra = await page.evaluate(() => {
      const c = document.querySelector('.content')!;
      return c.scrollHeight - c.clientHeight;
    });
    if (extra > 0) await page.setViewportSize({ width: opts.width ?? vp.width, height: (opts.height ?? vp.height) + extra });
    await page.waitForTimeout(250);
  }
  await page.screenshot({ path: file });
  await page.setViewportSize(vp);
}
