// Web mode: an HTTP server on loopback that serves the renderer build, screenshots by reference and
// episode files, and a WebSocket (/ws) that carries the protocol between a page and the host. Every
// request and upgrade passes Auth first (token, Origin, Host).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Host } from '../host/host.ts';
import { Auth, checkBindHost } from './auth.ts';
import { resolveInside, sendFile } from './static.ts';

export interface ServerOptions {
  host: Host;
  /** dist/renderer */
  rendererDir: string;
  port?: number;
  bindHost?: string;
  token?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const MAX_WS_MESSAGE = 1 << 20;

function securityHeaders(port: number): Record<string, string> {
  const ws = [`ws://127.0.0.1:${port}`, `ws://localhost:${port}`].join(' ');
  return {
    'content-security-policy': `default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self' ${ws}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
  };
}

function refuse(res: http.ServerResponse, status: number, reason: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Error'}: ${reason}\n`);
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const bindHost = opts.bindHost ?? '127.0.0.1';
  const bad = checkBindHost(bindHost);
  if (bad) throw new Error(bad);
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const { host } = opts;
  let auth: Auth | null = null;
  const sockets = new Set<WebSocket>();

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) refuse(res, 500, (e as Error).message);
      else res.destroy();
    }
  });
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const a = auth!.check(req);
    if (!a.ok) return refuse(res, a.status, a.reason);
    for (const [k, v] of Object.entries(securityHeaders(port))) res.setHeader(k, v);
    if (a.viaQuery) res.setHeader('set-cookie', auth!.setCookieHeader());
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'only GET and HEAD');
    const head = req.method === 'HEAD';
    const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (pathname === '/' || pathname === '/index.html') {
      const f = resolveInside(opts.rendererDir, '/index.html');
      if (!f) return refuse(res, 500, `the renderer is not built (${opts.rendererDir}/index.html is missing): run npx vite build --config renderer/vite.config.ts`);
      return sendFile(res, f, head, 'no-store');
    }
    let m = /^\/blob\/([\w-]{1,100})$/.exec(pathname);
    if (m) {
      const b = host.getBlob(m[1]!);
      if (!b) return refuse(res, 404, 'no such screenshot (it may have been evicted)');
      res.writeHead(200, { 'content-type': b.type, 'content-length': b.data.length, 'cache-control': 'private, max-age=31536000, immutable' });
      return void res.end(head ? undefined : b.data);
    }
    m = /^\/episodes\/([^/]{1,200})\/([^/]{1,200})$/.exec(pathname);
    if (m) {
      let id: string, name: string;
      try {
        id = decodeURIComponent(m[1]!);
        name = decodeURIComponent(m[2]!);
      } catch {
        return refuse(res, 400, 'bad path');
      }
      const f = host.episodeFile(id, name);
      if (!f) return refuse(res, 404, 'no such episode file');
      return sendFile(res, f, head, 'private, max-age=3600');
    }
    const f = pathname.startsWith('/assets/') || /^\/[\w.-]+\.(png|svg|ico)$/.test(pathname) ? resolveInside(opts.rendererDir, pathname) : null;
    if (!f) return refuse(res, 404, 'not found');
    return sendFile(res, f, head, pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, headBuf: Buffer) => {
    const a = auth!.check(req);
    const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (!a.ok || pathname !== '/ws') {
      const status = a.ok ? 404 : a.status;
      const text = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found';
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-type: text/plain\r\n\r\n${a.ok ? 'not found' : a.reason}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, headBuf, (ws) => {
      sockets.add(ws);
      (ws as WebSocket & { alive?: boolean }).alive = true;
      ws.on('pong', () => ((ws as WebSocket & { alive?: boolean }).alive = true));
      const client = host.connect((e) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(e));
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return client.receive({ type: '(binary frame)' });
        client.receive(data.toString());
      });
      ws.on('close', () => {
        sockets.delete(ws);
        client.close();
      });
      ws.on('error', () => ws.terminate());
    });
  });
  const ping = setInterval(() => {
    for (const ws of sockets) {
      const w = ws as WebSocket & { alive?: boolean };
      if (!w.alive) {
        ws.terminate();
        continue;
      }
      w.alive = false;
      ws.ping();
    }
  }, 30_000);
  ping.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, bindHost, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  auth = new Auth(token, port);
  const urlHost = bindHost === '::1' ? '[::1]' : bindHost === 'localhost' ? '127.0.0.1' : bindHost;
  return {
    url: `http://${urlHost}:${port}/?token=${token}`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(ping);
        for (const ws of sockets) ws.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const defaultRendererDir = (repoRoot: string) => path.join(repoRoot, 'dist', 'renderer');
