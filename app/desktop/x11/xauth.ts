// Reads the MIT-MAGIC-COOKIE-1 entry for a display from the Xauthority file (the format xauth writes).
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface XAuthEntry {
  family: number;
  address: string;
  display: string;
  name: string;
  data: Buffer;
}

const FAMILY_LOCAL = 256;
const FAMILY_WILD = 65535;

export function parseXAuthority(buf: Buffer): XAuthEntry[] {
  const out: XAuthEntry[] = [];
  let o = 0;
  const field = (): Buffer => {
    if (o + 2 > buf.length) throw new Error('truncated');
    const n = buf.readUInt16BE(o);
    o += 2;
    if (o + n > buf.length) throw new Error('truncated');
    const b = buf.subarray(o, o + n);
    o += n;
    return b;
  };
  try {
    while (o < buf.length) {
      const family = buf.readUInt16BE(o);
      o += 2;
      const address = field().toString('latin1');
      const display = field().toString('latin1');
      const name = field().toString('latin1');
      const data = Buffer.from(field());
      out.push({ family, address, display, name, data });
    }
  } catch {
    // A truncated tail is ignored, as Xlib does.
  }
  return out;
}

/** The cookie to present for display number `display` on this host, or null to connect without one. */
export function findCookie(display: number, host: string | null): { name: string; data: Buffer } | null {
  const file = process.env.XAUTHORITY || path.join(os.homedir(), '.Xauthority');
  if (!existsSync(file)) return null;
  let entries: XAuthEntry[];
  try {
    entries = parseXAuthority(readFileSync(file));
  } catch {
    return null;
  }
  const hostname = os.hostname();
  const local = !host || host === 'unix' || host === 'localhost' || host === hostname;
  const hit = entries.find(
    (e) =>
      e.name === 'MIT-MAGIC-COOKIE-1' &&
      (e.display === '' || e.display === String(display)) &&
      (e.family === FAMILY_WILD || (local && e.family === FAMILY_LOCAL && (e.address === hostname || e.address === host))),
  );
  return hit ? { name: hit.name, data: hit.data } : null;
}
