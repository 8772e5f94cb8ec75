// Lists the displays (monitors) of the X screen with geometry and scale factor (RandR 1.5 GetMonitors,
// falling back to the whole screen), and reads/sets Xft.dpi, the X11 desktop scale setting.
import type { XConnection } from './x11/connection.ts';

export interface DisplayInfo {
  /** Index in listDisplays() order: the value of `--display N`. */
  id: number;
  name: string;
  primary: boolean;
  /** Geometry in X screen pixels (the space of both capture and input on X11). */
  x: number;
  y: number;
  width: number;
  height: number;
  widthMm: number;
  heightMm: number;
  /** Desktop UI scale (Xft.dpi / 96 on X11; 1 when unset). Informational on X11: capture and input share pixels. */
  scaleFactor: number;
  /**
   * Captured pixels per input-injector unit. 1 on X11 (both are physical pixels); on macOS it would be the
   * backing scale factor (input in points). The coordinate mapper divides by it.
   */
  injectorScale: number;
}

/** Xft.dpi / 96 from the root window's RESOURCE_MANAGER property, or 1. */
export async function readScaleFactor(conn: XConnection): Promise<number> {
  const atom = await conn.internAtom('RESOURCE_MANAGER', true);
  if (!atom) return 1;
  const prop = await conn.getProperty(conn.screen.root, atom);
  if (!prop) return 1;
  const m = /^Xft\.dpi:\s*([\d.]+)\s*$/m.exec(prop.value.toString('latin1'));
  const dpi = m ? Number(m[1]) : NaN;
  return Number.isFinite(dpi) && dpi > 0 ? Math.round((dpi / 96) * 1000) / 1000 : 1;
}

/** Sets Xft.dpi in RESOURCE_MANAGER (what `xrdb -merge` does for that one line); toolkits started later scale. */
export async function setXftDpi(conn: XConnection, dpi: number): Promise<void> {
  const atom = await conn.internAtom('RESOURCE_MANAGER');
  const prop = await conn.getProperty(conn.screen.root, atom);
  const lines = (prop ? prop.value.toString('latin1') : '').split('\n').filter((l) => l && !/^Xft\.dpi:/.test(l));
  lines.push(`Xft.dpi:\t${dpi}`);
  conn.changeProperty8(conn.screen.root, atom, 31 /* STRING */, Buffer.from(lines.join('\n') + '\n', 'latin1'));
  await conn.sync();
}

export async function listDisplays(conn: XConnection): Promise<DisplayInfo[]> {
  const scaleFactor = await readScaleFactor(conn);
  const s = conn.screen;
  const whole: DisplayInfo = {
    id: 0, name: 'screen', primary: true, x: 0, y: 0, width: s.width, height: s.height,
    widthMm: s.widthMm, heightMm: s.heightMm, scaleFactor, injectorScale: 1,
  };
  const randr = await conn.queryExtension('RANDR');
  if (!randr.present) return [whole];
  const ver = Buffer.alloc(8);
  ver.writeUInt32LE(1, 0);
  ver.writeUInt32LE(5, 4);
  const v = await conn.send(randr.majorOpcode, 0, ver, true); // RRQueryVersion
  const major = v.readUInt32LE(8), minor = v.readUInt32LE(12);
  if (major < 1 || (major === 1 && minor < 5)) return [whole];
  const body = Buffer.alloc(8);
  body.writeUInt32LE(s.root, 0);
  body[4] = 1; // get-active
  const r = await conn.send(randr.majorOpcode, 42, body, true); // RRGetMonitors
  const n = r.readUInt32LE(12);
  const out: DisplayInfo[] = [];
  let o = 32;
  for (let i = 0; i < n; i++) {
    const nameAtom = r.readUInt32LE(o);
    const nOutputs = r.readUInt16LE(o + 6);
    out.push({
      id: 0,
      name: nameAtom ? await conn.atomName(nameAtom) : `monitor-${i}`,
      primary: r[o + 4] === 1,
      x: r.readInt16LE(o + 8),
      y: r.readInt16LE(o + 10),
      width: r.readUInt16LE(o + 12),
      height: r.readUInt16LE(o + 14),
      widthMm: r.readUInt32LE(o + 16),
      heightMm: r.readUInt32LE(o + 20),
      scaleFactor,
      injectorScale: 1,
    });
    o += 24 + 4 * nOutputs;
  }
  if (out.length === 0) return [whole];
  // Primary first, then left to right, top to bottom.
  out.sort((a, b) => Number(b.primary) - Number(a.primary) || a.x - b.x || a.y - b.y);
  out.forEach((d, i) => (d.id = i));
  return out;
}
