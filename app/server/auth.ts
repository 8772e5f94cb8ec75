// Who may talk to the web-mode server: requests for our own Host (no DNS rebinding), from our own Origin
// (or none, as for top-level navigations and non-browser clients), carrying the token in the query or in
// the cookie the page got on its first load. Constant-time token comparison.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type AuthResult = { ok: true; viaQuery: boolean } | { ok: false; status: 401 | 403; reason: string };

export class Auth {
  readonly cookieName: string;
  private readonly tokenBuf: Buffer;

  constructor(
    readonly token: string,
    private readonly port: number,
  ) {
    // Cookies are shared across ports of one host: the name carries the port so servers do not collide.
    this.cookieName = `starkv_token_${port}`;
    this.tokenBuf = Buffer.from(token);
  }

  private allowedHosts(): string[] {
    return [`127.0.0.1:${this.port}`, `localhost:${this.port}`, `[::1]:${this.port}`];
  }

  allowedOrigins(): string[] {
    return this.allowedHosts().map((h) => `http://${h}`);
  }

  private tokenOk(candidate: string | null | undefined): boolean {
    if (!candidate) return false;
    const b = Buffer.from(candidate);
    return b.length === this.tokenBuf.length && timingSafeEqual(b, this.tokenBuf);
  }

  check(req: IncomingMessage): AuthResult {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!this.allowedHosts().includes(host)) return { ok: false, status: 403, reason: `Host '${host.slice(0, 100)}' is not this server` };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedOrigins().includes(origin.toLowerCase())) {
      return { ok: false, status: 403, reason: `Origin '${origin.slice(0, 100)}' may not use this server` };
    }
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site') return { ok: false, status: 403, reason: 'cross-site requests are refused' };
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = url.searchParams.get('token');
    if (this.tokenOk(q)) return { ok: true, viaQuery: true };
    if (this.tokenOk(readCookie(req.headers.cookie, this.cookieName))) return { ok: true, viaQuery: false };
    return { ok: false, status: 401, reason: q || req.headers.cookie ? 'wrong token' : 'a token is required: open the URL starkv serve printed' };
  }

  setCookieHeader(): string {
    return `${this.cookieName}=${this.token}; Path=/; HttpOnly; SameSite=Strict`;
  }
}

export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return null;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Web mode binds to loopback only; anything else is refused with the reason. */
export function checkBindHost(host: string): string | null {
  return LOOPBACK.has(host.toLowerCase())
    ? null
    : `refusing to listen on '${host}': the web UI drives your mouse and keyboard, so it only listens on 127.0.0.1 (use SSH port forwarding to reach it from elsewhere)`;
}
