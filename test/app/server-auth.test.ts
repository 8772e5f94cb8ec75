// Web-mode security: every HTTP request and WebSocket upgrade needs the token (query or the cookie the
// first load sets) and our own Origin/Host; 401 without the token, 403 from another origin; loopback only.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import serve from '../../app/cli/commands/serve.ts';
import { Host } from '../../app/host/host.ts';
import type { AgentRunner } from '../../app/host/runner.ts';
import { defaultSettings, SettingsStore } from '../../app/host/settings.ts';
import { startServer, type RunningServer } from '../../app/server/server.ts';
import { EpisodeWriter } from '../../app/store/trajectory.ts';

const noRunner: AgentRunner = { start: () => Promise.reject(new Error('no agent in this test')) };
let dir: string;
let srv: RunningServer;
let host: Host;
let base: string;
let episodeId: string;

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    }).on('error', reject);
  });
}

function upgrade(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ status: number; ws?: WebSocket; messages: string[] }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, opts);
    const messages: string[] = [];
    ws.on('message', (m) => messages.push(String(m)));
    ws.on('open', () => resolve({ status: 101, ws, messages }));
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode!, messages }));
    ws.on('error', () => resolve({ status: -1, messages }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-server-'));
  const renderer = path.join(dir, 'renderer');
  mkdirSync(path.join(renderer, 'assets'), { recursive: true });
  writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>starkv</title>');
  writeFileSync(path.join(renderer, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(path.join(dir, 'secret.txt'), 'do not serve');
  const settings = defaultSettings(dir);
  const w = EpisodeWriter.create(settings.storage.episodesDir, 'demo task');
  w.append('episode', { task: 'demo task' });
  w.writeFile('step-0001.png', Buffer.from('png'));
  w.close();
  episodeId = path.basename(w.dir);
  host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), settings), runner: noRunner, mode: 'web', log: () => {} });
  srv = await startServer({ host, rendererDir: renderer, port: 0 });
  base = `http://127.0.0.1:${srv.port}`;
});

afterAll(async () => {
  await srv?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTP', () => {
  it('prints a loopback URL with a long random token', () => {
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
  });

  it('refuses requests without the token (401), with a wrong one (401), from another origin or host (403)', async () => {
    expect((await get(`${base}/`)).status).toBe(401);
    expect((await get(`${base}/assets/app.js`)).status).toBe(401);
    expect((await get(`${base}/?token=wrong`)).status).toBe(401);
    expect((await get(`${base}/`, { cookie: `starkv_token_${srv.port}=wrong` })).status).toBe(401);
    expect((await get(srv.url, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await get(srv.url, { origin: `http://127.0.0.1:${srv.port + 1}` })).status).toBe(403);
    expect((await get(srv.url, { host: 'evil.example' })).status).toBe(403);
    expect((await get(srv.url, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
  });

  it('serves the page with the token and sets an HttpOnly SameSite cookie that then suffices', async () => {
    const r = await get(srv.url);
    expect(r.status).toBe(200);
    expect(r.body).toContain('<title>starkv</title>');
    const cookie = String(r.headers['set-cookie']);
    expect(cookie).toMatch(new RegExp(`^starkv_token_${srv.port}=${srv.token}; Path=/; HttpOnly; SameSite=Strict`));
    expect(r.headers['content-security-policy']).toMatch(/default-src 'self'/);
    const c = cookie.split(';')[0]!;
    expect((await get(`${base}/assets/app.js`, { cookie: c })).status).toBe(200);
    expect((await get(`${base}/assets/app.js`, { cookie: c, origin: base })).status).toBe(200);
  });

  it('serves episode files and screenshots, nothing outside them', async () => {
    const c = `starkv_token_${srv.port}=${srv.token}`;
    expect((await get(`${base}/episodes/${episodeId}/step-0001.png`, { cookie: c })).body).toBe('png');
    for (const p of [`/episodes/${episodeId}/..%2F..%2Fsecret.txt`, '/episodes/..%2F/secret.txt', '/assets/..%2F..%2Fsecret.txt', '/blob/nope', '/secret.txt', `/episodes/${episodeId}/episode.jsonl.tmp`]) {
      const r = await get(`${base}${p}`, { cookie: c });
      expect([400, 404], p).toContain(r.status);
      expect(r.body).not.toContain('do not serve');
    }
  });
});

describe('WebSocket', () => {
  it('refuses upgrades without the token (401) or from another origin (403)', async () => {
    expect((await upgrade(`ws://127.0.0.1:${srv.port}/ws`)).status).toBe(401);
    expect((await upgrade(`ws://127.0.0.1:${srv.port}/ws?token=nope`)).status).toBe(401);
    expect((await upgrade(`ws://127.0.0.1:${srv.port}/ws?token=${srv.token}`, { origin: 'http://evil.example' })).status).toBe(403);
  });

  it('accepts the token (query or cookie) from our origin and speaks the protocol', async () => {
    const a = await upgrade(`ws://127.0.0.1:${srv.port}/ws?token=${srv.token}`, { origin: base });
    expect(a.status).toBe(101);
    const b = await upgrade(`ws://127.0.0.1:${srv.port}/ws`, { headers: { cookie: `starkv_token_${srv.port}=${srv.token}` }, origin: base });
    expect(b.status).toBe(101);
    b.ws!.close();
    const ws = a.ws!;
    type Ev = { type: string; reason?: string; settings?: { agent: { maxSteps: number } } };
    const events = { some: (f: (e: Ev) => boolean) => all().some(f), filter: (f: (e: Ev) => boolean) => all().filter(f), find: (f: (e: Ev) => boolean) => all().find(f) };
    const all = (): Ev[] => a.messages.map((m) => JSON.parse(m));
    const until = async (pred: () => boolean) => {
      for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(pred()).toBe(true);
    };
    await until(() => events.some((e) => e.type === 'hello'));
    ws.send('{"type":"nonsense"}');
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    ws.send(JSON.stringify({ type: 'settings.update', patch: { agent: { maxSteps: 12 } } }));
    await until(() => events.some((e) => e.type === 'settings'));
    expect(events.filter((e) => e.type === 'rejected').map((e) => e.reason)).toEqual(["unknown command type 'nonsense'", "unknown command type '(binary frame)'"]);
    expect(events.find((e) => e.type === 'settings')!.settings!.agent.maxSteps).toBe(12);
    ws.close();
  });
});

describe('starkv serve', () => {
  it('refuses to listen anywhere but loopback', async () => {
    const err: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await serve(['--host', '0.0.0.0'])).toBe(2);
      expect(await serve(['--host', '192.168.1.5', '--port', '0'])).toBe(2);
      expect(await serve(['--port', '70000'])).toBe(2);
    } finally {
      process.stderr.write = orig;
    }
    expect(err.join('')).toMatch(/refusing to listen on '0\.0\.0\.0'/);
    await expect(startServer({ host, rendererDir: dir, bindHost: '0.0.0.0' })).rejects.toThrow(/only listens on 127\.0\.0\.1/);
  });
});
