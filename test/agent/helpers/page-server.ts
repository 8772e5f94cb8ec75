// One local HTTP server per test file, on 127.0.0.1: serves the test page, collects the events the page
// reports (its own proof of what input arrived), and answers /v1/chat/completions with a scripted model
// (the one test double these tests use). Streams SSE when asked; notices when a client hangs up.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PAGE_HTML = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'page.html'), 'utf8');

export interface PageEvent {
  seq: number;
  t: number;
  type: string;
  [k: string]: unknown;
}

export type ScriptedReply =
  | string
  | { text: string; chunkDelayMs?: number; delayMs?: number; stream?: boolean }
  | { status: number; body: string };

export interface ChatRequest {
  index: number;
  body: {
    model: string;
    messages: Array<{ role: string; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> }>;
    max_tokens?: number;
    temperature?: number;
    top_p?: number;
    stream?: boolean;
  };
  headers: http.IncomingHttpHeaders;
  /** Set when the client closed the connection before the answer was complete. */
  aborted: boolean;
  done: boolean;
}

export type ScriptFn = (req: ChatRequest) => ScriptedReply | Promise<ScriptedReply>;

export class PageServer {
  readonly events: PageEvent[] = [];
  readonly requests: ChatRequest[] = [];
  script: ScriptFn = () => ({ status: 500, body: 'no script' });
  /** Served at GET /v1/models when set (404 otherwise, as some servers do). */
  models: string[] | null = null;
  private listeners: Array<() => void> = [];
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<PageServer> {
    const server = http.createServer();
    const ps = new PageServer(server);
    server.on('request', (req, res) => void ps.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return ps;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get endpoint(): string {
    return `${this.origin}/v1`;
  }

  /** Resolves with the first event (from index `from`) that matches, or rejects after timeoutMs. */
  waitFor(pred: (e: PageEvent) => boolean, timeoutMs = 10_000, from = 0): Promise<PageEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.events.slice(from).find(pred);
        if (hit) {
          this.listeners = this.listeners.filter((l) => l !== check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        const tail = this.events.slice(-8).map((e) => JSON.stringify(e)).join('\n');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a page event; last events:\n${tail}`));
      }, timeoutMs);
      if (!check()) this.listeners.push(check);
    });
  }

  /** The last event of a type (e.g. the textarea's latest value). */
  last(type: string): PageEvent | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.type === type) return this.events[i];
    return undefined;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'GET' && (req.url === '/' || req.url?.startsWith('/page'))) {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(PAGE_HTML);
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models' && this.models) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ object: 'list', data: this.models.map((id) => ({ id, object: 'model' })) }));
      return;
    }
    if (req.method === 'POST' && req.url === '/event') {
      const batch = JSON.parse(body) as PageEvent[];
      this.events.push(...batch);
      res.end('ok');
      for (const l of [...this.listeners]) l();
      return;
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      const r: ChatRequest = { index: this.requests.length, body: JSON.parse(body), headers: req.headers, aborted: false, done: false };
      this.requests.push(r);
      res.on('close', () => {
        if (!r.done) r.aborted = true;
      });
      const reply = await this.script(r);
      return this.answer(r, reply, res);
    }
    res.statusCode = 404;
    res.end('not found');
  }

  private async answer(r: ChatRequest, reply: ScriptedReply, res: http.ServerResponse): Promise<void> {
    const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
    if (typeof reply === 'object' && 'status' in reply) {
      res.statusCode = reply.status;
      res.setHeader('content-type', 'application/json');
      r.done = true;
      res.end(reply.body);
      return;
    }
    const spec = typeof reply === 'string' ? { text: reply } : reply;
    if (spec.delayMs) await sleep(spec.delayMs);
    if (r.aborted) return;
    const stream = spec.stream ?? r.body.stream;
    if (!stream) {
      res.setHeader('content-type', 'application/json');
      r.done = true;
      res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: spec.text }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 5 } }));
      return;
    }
    res.setHeader('content-type', 'text/event-stream');
    const pieces = spec.text.match(/[\s\S]{1,6}/g) ?? [''];
    for (const p of pieces) {
      if (r.aborted) return;
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: p }, finish_reason: null }] })}\n\n`);
      if (spec.chunkDelayMs) await sleep(spec.chunkDelayMs);
    }
    if (r.aborted) return;
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    r.done = true;
    res.end('data: [DONE]\n\n');
  }
}
