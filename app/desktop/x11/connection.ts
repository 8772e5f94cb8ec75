// A minimal X11 protocol client in TypeScript (no native code): connection setup with cookie auth,
// request/reply matching, errors, extensions. Safe to call where libnut would segfault (no server).
import net from 'node:net';
import { existsSync } from 'node:fs';
import { findCookie } from './xauth.ts';

export interface XScreen {
  root: number;
  width: number;
  height: number;
  widthMm: number;
  heightMm: number;
  rootDepth: number;
}

export interface XSetup {
  vendor: string;
  release: number;
  minKeycode: number;
  maxKeycode: number;
  screens: XScreen[];
}

export interface DisplayName {
  host: string;
  display: number;
  screen: number;
}

export class XError extends Error {
  constructor(
    readonly code: number,
    readonly majorOpcode: number,
    readonly minorOpcode: number,
    readonly badValue: number,
  ) {
    super(`X protocol error ${code} (request ${majorOpcode}.${minorOpcode}, value ${badValue})`);
    this.name = 'XError';
  }
}

/** Parses a DISPLAY value such as ":0", ":1.0", "localhost:10.0", "unix:3". */
export function parseDisplayName(name: string | undefined): DisplayName | null {
  if (!name) return null;
  const m = /^([^:]*):(\d+)(?:\.(\d+))?$/.exec(name.trim());
  if (!m) return null;
  return { host: m[1] ?? '', display: Number(m[2]), screen: m[3] ? Number(m[3]) : 0 };
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

interface Pending {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

export class XConnection {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private voidError: XError | null = null;
  private inbox: Buffer = Buffer.alloc(0);
  private closed: Error | null = null;
  private readonly extensions = new Map<string, { present: boolean; majorOpcode: number; firstEvent: number; firstError: number }>();

  private constructor(
    private readonly sock: net.Socket,
    readonly setup: XSetup,
    readonly screen: XScreen,
    readonly name: DisplayName,
  ) {
    sock.on('data', (d) => this.onData(d));
    sock.on('close', () => this.fail(new Error('the X server closed the connection')));
    sock.on('error', (e) => this.fail(e));
    sock.unref();
  }

  /** Connects to the X server named by `display` (default $DISPLAY). Throws a clear Error, never crashes. */
  static async open(display = process.env.DISPLAY, timeoutMs = 3000): Promise<XConnection> {
    const name = parseDisplayName(display);
    if (!name) throw new Error(display ? `DISPLAY=${display} is not a valid X display name` : 'DISPLAY is not set');
    const sock = await connectSocket(name, timeoutMs);
    try {
      const setup = await handshake(sock, name, timeoutMs);
      const screen = setup.screens[name.screen];
      if (!screen) throw new Error(`X display ${display} has no screen ${name.screen} (it has ${setup.screens.length})`);
      return new XConnection(sock, setup, screen, name);
    } catch (e) {
      sock.destroy();
      throw e;
    }
  }

  close(): void {
    this.fail(new Error('X connection closed'));
    if (this.sock.destroyed || this.sock.writableEnded) return;
    // Requests already queued (a keymap restore, say) must reach the server: only our sending side is
    // shut; the server reads them, then closes its end, and the socket goes. Closing both sides at once
    // lets the server see a hang-up before it has read them, and it then drops them unprocessed (seen
    // with Xvfb: a keymap restore lost in about half the runs).
    this.sock.end();
    const t = setTimeout(() => this.sock.destroy(), 3000);
    t.unref();
    this.sock.once('close', () => clearTimeout(t));
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.closed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Sends one request; `body` is everything after the 4-byte header. Resolves with the reply when `reply`. */
  send(opcode: number, data1: number, body: Buffer, reply: true): Promise<Buffer>;
  send(opcode: number, data1: number, body: Buffer, reply?: false): void;
  send(opcode: number, data1: number, body: Buffer, reply = false): Promise<Buffer> | void {
    if (this.closed) {
      if (reply) return Promise.reject(this.closed);
      throw this.closed;
    }
    const padded = body.length % 4 ? Buffer.concat([body, Buffer.alloc(pad4(body.length))]) : body;
    const head = Buffer.alloc(4);
    head[0] = opcode;
    head[1] = data1;
    head.writeUInt16LE((4 + padded.length) / 4, 2);
    this.seq = (this.seq + 1) & 0xffff;
    const seq = this.seq;
    this.sock.write(Buffer.concat([head, padded]));
    if (!reply) return;
    this.sock.ref();
    return new Promise<Buffer>((resolve, reject) => this.pending.set(seq, { resolve, reject }));
  }

  /** Round trip: every earlier request has been processed; throws the first error of an earlier void request. */
  async sync(): Promise<void> {
    await this.send(43, 0, Buffer.alloc(0), true); // GetInputFocus
    const e = this.voidError;
    this.voidError = null;
    if (e) throw e;
  }

  async queryExtension(ext: string): Promise<{ present: boolean; majorOpcode: number; firstEvent: number; firstError: number }> {
    const known = this.extensions.get(ext);
    if (known) return known;
    const n = Buffer.from(ext, 'latin1');
    const body = Buffer.alloc(4);
    body.writeUInt16LE(n.length, 0);
    const r = await this.send(98, 0, Buffer.concat([body, n]), true);
    const info = { present: r[8] === 1, majorOpcode: r[9]!, firstEvent: r[10]!, firstError: r[11]! };
    this.extensions.set(ext, info);
    return info;
  }

  async internAtom(atomName: string, onlyIfExists = false): Promise<number> {
    const n = Buffer.from(atomName, 'latin1');
    const body = Buffer.alloc(4);
    body.writeUInt16LE(n.length, 0);
    const r = await this.send(16, onlyIfExists ? 1 : 0, Buffer.concat([body, n]), true);
    return r.readUInt32LE(8);
  }

  async atomName(atom: number): Promise<string> {
    const body = Buffer.alloc(4);
    body.writeUInt32LE(atom, 0);
    const r = await this.send(17, 0, body, true);
    return r.subarray(32, 32 + r.readUInt16LE(8)).toString('latin1');
  }

  /** GetProperty (8-bit formats returned as raw bytes). Returns null when the property does not exist. */
  async getProperty(window: number, atom: number, maxBytes = 1 << 20): Promise<{ type: number; format: number; value: Buffer } | null> {
    const body = Buffer.alloc(20);
    body.writeUInt32LE(window, 0);
    body.writeUInt32LE(atom, 4);
    body.writeUInt32LE(0, 8); // AnyPropertyType
    body.writeUInt32LE(0, 12);
    body.writeUInt32LE(Math.ceil(maxBytes / 4), 16);
    const r = await this.send(20, 0, body, true);
    const type = r.readUInt32LE(8);
    if (type === 0) return null;
    const format = r[1]!;
    const count = r.readUInt32LE(16);
    return { type, format, value: Buffer.from(r.subarray(32, 32 + count * (format / 8))) };
  }

  /** ChangeProperty, mode Replace, 8-bit data. */
  changeProperty8(window: number, atom: number, type: number, value: Buffer): void {
    const body = Buffer.alloc(20);
    body.writeUInt32LE(window, 0);
    body.writeUInt32LE(atom, 4);
    body.writeUInt32LE(type, 8);
    body[12] = 8;
    body.writeUInt32LE(value.length, 16);
    this.send(18, 0, Buffer.concat([body, value]));
  }

  private onData(d: Buffer): void {
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, d]) : d;
    while (this.inbox.length >= 32) {
      const kind = this.inbox[0]!;
      const len = kind === 1 || (kind & 0x7f) === 35 ? 32 + 4 * this.inbox.readUInt32LE(4) : 32;
      if (this.inbox.length < len) break;
      const msg = this.inbox.subarray(0, len);
      this.inbox = this.inbox.subarray(len);
      const seq = msg.readUInt16LE(2);
      if (kind === 1) {
        const p = this.pending.get(seq);
        this.pending.delete(seq);
        p?.resolve(Buffer.from(msg));
      } else if (kind === 0) {
        const err = new XError(msg[1]!, msg[10]!, msg.readUInt16LE(8), msg.readUInt32LE(4));
        const p = this.pending.get(seq);
        if (p) {
          this.pending.delete(seq);
          p.reject(err);
        } else if (!this.voidError) this.voidError = err;
      }
      // Events (MappingNotify is sent to every client) are ignored.
    }
    if (this.pending.size === 0) this.sock.unref();
  }
}

function connectSocket(name: DisplayName, timeoutMs: number): Promise<net.Socket> {
  const local = name.host === '' || name.host === 'unix';
  const file = `/tmp/.X11-unix/X${name.display}`;
  const target: net.NetConnectOpts = local
    ? { path: existsSync(file) ? file : `\0${file}` }
    : { host: name.host, port: 6000 + name.display };
  const where = local ? file : `${name.host}:${6000 + name.display}`;
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(target);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`cannot connect to the X server of display :${name.display} at ${where}: timed out`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot connect to the X server of display :${name.display} at ${where}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
  });
}

function handshake(sock: net.Socket, name: DisplayName, timeoutMs: number): Promise<XSetup> {
  const cookie = findCookie(name.display, name.host || null);
  const authName = Buffer.from(cookie?.name ?? '', 'latin1');
  const authData = cookie?.data ?? Buffer.alloc(0);
  const head = Buffer.alloc(12);
  head[0] = 0x6c; // 'l': little endian
  head.writeUInt16LE(11, 2);
  head.writeUInt16LE(0, 4);
  head.writeUInt16LE(authName.length, 6);
  head.writeUInt16LE(authData.length, 8);
  sock.write(Buffer.concat([head, authName, Buffer.alloc(pad4(authName.length)), authData, Buffer.alloc(pad4(authData.length))]));
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`X display :${name.display}: no answer to the connection setup`)), timeoutMs);
    const done = (e: Error | null, s?: XSetup) => {
      clearTimeout(timer);
      sock.off('data', onData);
      if (e) reject(e);
      else resolve(s!);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 8) return;
      const total = 8 + 4 * buf.readUInt16LE(6);
      if (buf.length < total) return;
      if (buf[0] !== 1) {
        const reason = buf.subarray(8, 8 + (buf[0] === 0 ? buf[1]! : total - 8)).toString('latin1').replace(/\0+$/, '').trim();
        return done(new Error(`X display :${name.display} refused the connection: ${reason || 'authorization required'} (check XAUTHORITY)`));
      }
      try {
        done(null, parseSetup(buf.subarray(0, total)));
      } catch (e) {
        done(e as Error);
      }
    };
    sock.on('data', onData);
  });
}

function parseSetup(b: Buffer): XSetup {
  const vendorLen = b.readUInt16LE(24);
  const nScreens = b[28]!;
  const nFormats = b[29]!;
  let o = 40 + vendorLen + pad4(vendorLen) + 8 * nFormats;
  const screens: XScreen[] = [];
  for (let i = 0; i < nScreens; i++) {
    screens.push({
      root: b.readUInt32LE(o),
      width: b.readUInt16LE(o + 20),
      height: b.readUInt16LE(o + 22),
      widthMm: b.readUInt16LE(o + 24),
      heightMm: b.readUInt16LE(o + 26),
      rootDepth: b[o + 38]!,
    });
    const nDepths = b[o + 39]!;
    o += 40;
    for (let d = 0; d < nDepths; d++) {
      const nVisuals = b.readUInt16LE(o + 2);
      o += 8 + 24 * nVisuals;
    }
  }
  return {
    vendor: b.subarray(40, 40 + vendorLen).toString('latin1'),
    release: b.readUInt32LE(8),
    minKeycode: b[34]!,
    maxKeycode: b[35]!,
    screens,
  };
}
