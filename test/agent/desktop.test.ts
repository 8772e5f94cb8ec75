// The desktop layer on a real X server: Xvfb 1280x800, the test page in Chromium, real capture and input.
// What the page reports (its own DOM events and values) proves what arrived.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlankFrameError, detectBlank } from '../../app/desktop/capture.ts';
import { StoppedError } from '../../app/desktop/input.ts';
import { XConnection } from '../../app/desktop/x11/connection.ts';
import { XKeyboard } from '../../app/desktop/x11/keyboard.ts';
import { MOTION, XTest } from '../../app/desktop/x11/xtest.ts';
import { openScene, type Scene } from './helpers/scene.ts';
import { startXvfb } from './helpers/xvfb.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = (name: string, args: string[], env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'helpers', name), ...args], { encoding: 'utf8', env, timeout: 60_000 });

const HARD = 'Hello, World! !@#$%^&*()_+{}|:"<>?~ `-=[]\\;\',./\nline 2: 中文输入测试 üñ é€ 😀 end';

let s: Scene;
beforeAll(async () => {
  s = await openScene({ width: 1280, height: 800 });
}, 90_000);
afterAll(async () => {
  await s?.close();
});

describe('without a usable X display', () => {
  it('says DISPLAY is not set instead of crashing', () => {
    const env = { ...process.env };
    delete env.DISPLAY;
    const r = child('no-display-child.ts', [], env);
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/DesktopUnavailableError: no X display: DISPLAY is not set/);
  });

  it('says the server cannot be reached for a display nobody serves', () => {
    const r = child('no-display-child.ts', [], { ...process.env, DISPLAY: ':4711' });
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/cannot use X display :4711: cannot connect to the X server/);
  });
});

describe('displays and capture', () => {
  it('lists the display with its geometry', () => {
    expect(s.desktop.displays.length).toBeGreaterThanOrEqual(1);
    const d = s.desktop.display(0);
    expect([d.x, d.y, d.width, d.height]).toEqual([0, 0, 1280, 800]);
    expect(d.scaleFactor).toBe(1);
    expect(d.injectorScale).toBe(1);
  });

  it('captures real pixels in RGB order: the page marker is red where the page says it is', async () => {
    const f = await s.desktop.capture(0);
    expect([f.width, f.height]).toEqual([1280, 800]);
    expect(f.blank).toBeNull();
    const p = s.at('marker');
    const i = (p.y * f.width + p.x) * 3;
    expect([f.rgb[i], f.rgb[i + 1], f.rgb[i + 2]]).toEqual([255, 0, 0]);
  });

  it('detects black, white and one-colour frames', () => {
    const w = 64, h = 48;
    expect(detectBlank(Buffer.alloc(w * h * 3), w, h)).toBe('black');
    expect(detectBlank(Buffer.alloc(w * h * 3, 255), w, h)).toBe('white');
    expect(detectBlank(Buffer.alloc(w * h * 3, 90), w, h)).toBe('uniform');
    const img = Buffer.alloc(w * h * 3);
    for (let y = 20; y < 30; y++) for (let x = 30; x < 40; x++) img[(y * w + x) * 3] = 200;
    expect(detectBlank(img, w, h)).toBeNull();
  });

  it('a blank frame in a Wayland session says that X11 capture sees only XWayland windows', () => {
    const saved = process.env.WAYLAND_DISPLAY, session = process.env.XDG_SESSION_TYPE;
    try {
      delete process.env.WAYLAND_DISPLAY;
      delete process.env.XDG_SESSION_TYPE;
      expect(new BlankFrameError('black', 8, 8).message).not.toMatch(/Wayland/);
      process.env.WAYLAND_DISPLAY = 'wayland-0';
      expect(new BlankFrameError('black', 8, 8).message).toMatch(/completely black: .*Wayland session, where an X11 capture through XWayland sees only X11 windows/);
    } finally {
      if (saved === undefined) delete process.env.WAYLAND_DISPLAY;
      else process.env.WAYLAND_DISPLAY = saved;
      if (session !== undefined) process.env.XDG_SESSION_TYPE = session;
    }
  });

  it('a bare X screen is reported as a black frame, not returned silently', async () => {
    const x = await startXvfb(640, 480);
    try {
      const r = child('no-display-child.ts', [], { ...process.env, DISPLAY: x.display });
      expect(r.stdout).toContain('opened');
      const b = child('capture-bench-child.ts', [x.display, '3'], process.env);
      expect(b.status, b.stderr).toBe(0);
      expect(JSON.parse(b.stdout).blank).toBe('black');
    } finally {
      await x.stop();
    }
  }, 60_000);

  it('measures capture latency at 1280x800 and 1920x1080', async () => {
    const here1 = child('capture-bench-child.ts', [s.xvfb.display, '30'], process.env);
    expect(here1.status, here1.stderr).toBe(0);
    const small = JSON.parse(here1.stdout);
    const x = await startXvfb(1920, 1080);
    let big;
    try {
      const r = child('capture-bench-child.ts', [x.display, '30'], process.env);
      expect(r.status, r.stderr).toBe(0);
      big = JSON.parse(r.stdout);
    } finally {
      await x.stop();
    }
    console.log(`capture p50 (grab+BGRA->RGB): 1280x800 ${small.p50} ms (grab ${small.grabP50}, convert ${small.convertP50}, png ${small.pngP50}); 1920x1080 ${big.p50} ms (grab ${big.grabP50}, convert ${big.convertP50}, png ${big.pngP50})`);
    expect([big.width, big.height]).toEqual([1920, 1080]);
    // Speed is measured by `starkv bench --capture` (BENCHMARKS.md), not here: this shared 2-core machine
    // gave 221 ms once while other jobs ran. The bound only catches a capture path gone pathologically slow.
    expect(big.p50).toBeLessThan(1000);
  }, 90_000);
});

describe('input', () => {
  const inp = () => s.desktop.input;

  it('clicks, double-clicks and right-clicks where it is told', async () => {
    const n = s.server.events.length;
    await inp().click(s.at('alpha').x, s.at('alpha').y);
    await s.server.waitFor((e) => e.type === 'click' && e.target === 'alpha', 5000, n);
    await inp().click(s.at('dbl').x, s.at('dbl').y, 'left', 2);
    await s.server.waitFor((e) => e.type === 'dblclick' && e.target === 'dbl', 5000, n);
    await inp().click(s.at('ctx').x, s.at('ctx').y, 'right');
    const c = await s.server.waitFor((e) => e.type === 'contextmenu', 5000, n);
    expect(c.target).toBe('ctx');
  });

  it('types shifted symbols, newlines, Chinese, accents and emoji exactly', async () => {
    await inp().click(s.at('text').x, s.at('text').y);
    const n = s.server.events.length;
    await inp().type(HARD);
    const e = await s.server.waitFor((x) => x.type === 'text' && x.value === HARD, 10_000, n).catch(() => null);
    expect(s.server.last('text')?.value).toBe(HARD);
    expect(e).not.toBeNull();
  });

  it('keeps spare keycodes bound while a busy client may still read them, reuses them, then restores the keymap', async () => {
    // Characters the US map lacks (and the other tests do not type): sharp s, o slash, a ring.
    const SS = 0xdf, OSLASH = 0xf8, ARING = 0xe5;
    const c = await XConnection.open(s.xvfb.display);
    const kb = await XKeyboard.open(c, { lingerMs: 700 });
    const rowOf = async (kc: number) => {
      const m = await kb.xtest.keyboardMapping();
      return m.keysyms[kc - m.minKeycode]!;
    };
    try {
      await inp().click(s.at('field').x, s.at('field').y);
      await inp().hotkey('ctrl a');
      const n = s.server.events.length;
      await kb.type('ßø');
      const first = new Map(kb.boundKeycodes);
      expect([...first.keys()].sort()).toEqual([SS, OSLASH].sort());
      // 300 ms later (a client slow to handle the MappingNotify) the keys still carry the characters
      await new Promise((r) => setTimeout(r, 300));
      expect((await rowOf(first.get(SS)!))[0]).toBe(SS);
      await kb.type('øß\n'); // bound keycodes are reused, not bound again
      expect(new Map(kb.boundKeycodes)).toEqual(first);
      const sub = await s.server.waitFor((e) => e.type === 'submit', 5000, n);
      expect(sub.value).toBe('ßøøß');
      // after the linger time the keymap rows are empty again
      await new Promise((r) => setTimeout(r, 1500));
      expect(kb.boundKeycodes.size).toBe(0);
      for (const kc of first.values()) expect((await rowOf(kc)).every((x) => x === 0)).toBe(true);
      // close() restores at once what is still bound
      await kb.type('å');
      const kc = kb.boundKeycodes.get(ARING)!;
      expect((await rowOf(kc))[0]).toBe(ARING);
      kb.close();
      c.close();
      const c2 = await XConnection.open(s.xvfb.display);
      try {
        const xt2 = await XTest.open(c2);
        let row: number[] = [ARING];
        for (let t = 0; t < 20 && row.some((x) => x !== 0); t++) {  // the server reads the closed connection's last requests
          const m = await xt2.keyboardMapping();
          row = m.keysyms[kc - m.minKeycode]!;
          if (row.some((x) => x !== 0)) await new Promise((r) => setTimeout(r, 100));
        }
        expect(row.every((x) => x === 0)).toBe(true);
      } finally {
        c2.close();
      }
    } finally {
      c.close();
    }
  });

  it('follows a keymap change made after it started (QWERTZ: y and z swapped)', async () => {
    const c = await XConnection.open(s.xvfb.display);
    const xt = await XTest.open(c);
    const map = await xt.keyboardMapping();
    const kcOf = (ks: number) => map.minKeycode + map.keysyms.findIndex((r) => r[0] === ks);
    const ky = kcOf(0x79), kz = kcOf(0x7a);
    const rowY = map.keysyms[ky - map.minKeycode]!, rowZ = map.keysyms[kz - map.minKeycode]!;
    try {
      xt.changeMapping(ky, map.perKeycode, [rowZ]);
      xt.changeMapping(kz, map.perKeycode, [rowY]);
      await c.sync();
      await inp().click(s.at('field').x, s.at('field').y);
      await inp().hotkey('ctrl a');
      const n = s.server.events.length;
      await inp().type('Yz yZ\n');
      const sub = await s.server.waitFor((e) => e.type === 'submit', 5000, n);
      expect(sub.value).toBe('Yz yZ');
    } finally {
      xt.changeMapping(ky, map.perKeycode, [rowY]);
      xt.changeMapping(kz, map.perKeycode, [rowZ]);
      await c.sync();
      c.close();
    }
  });

  it('presses hotkeys: ctrl a selects all, Return submits, ctrl s reaches the page', async () => {
    await inp().click(s.at('field').x, s.at('field').y);
    const n = s.server.events.length;
    await inp().type('abc');
    await inp().hotkey('ctrl a');
    await inp().type('Zz');
    await inp().hotkey('enter');
    const sub = await s.server.waitFor((e) => e.type === 'submit', 5000, n);
    expect(sub.value).toBe('Zz');
    await inp().hotkey('ctrl s');
    await s.server.waitFor((e) => e.type === 'saved', 5000, n);
  });

  it('scrolls in all four directions', async () => {
    const at = s.at('list');
    const n0 = s.server.events.length;
    await inp().scroll('down', at, 3);
    const down = await s.server.waitFor((e) => e.type === 'scroll' && (e.top as number) > 0, 5000, n0);
    await inp().scroll('right', at, 3);
    const right = await s.server.waitFor((e) => e.type === 'scroll' && (e.left as number) > 0, 5000, n0);
    const n1 = s.server.events.length;
    await inp().scroll('up', at, 10);
    await s.server.waitFor((e) => e.type === 'scroll' && e.top === 0, 5000, n1);
    await inp().scroll('left', at, 10);
    await s.server.waitFor((e) => e.type === 'scroll' && e.left === 0, 5000, n1);
    expect(down.top).toBeGreaterThan(0);
    expect(right.left).toBeGreaterThan(0);
  });

  it('drags', async () => {
    const from = s.at('handle');
    const to = s.at('track', 0.8, 0.5);
    const n = s.server.events.length;
    await inp().drag(from.x, from.y, to.x, to.y);
    const d = await s.server.waitFor((e) => e.type === 'dragged', 5000, n);
    // handle centre moved from 20 to 80% of 400 px = 320 -> left = 300 (CSS px)
    expect(Math.abs((d.left as number) - 300)).toBeLessThanOrEqual(3);
    expect(inp().holding).toBe(false);
  });

  it('fires the corner failsafe when someone else moves the pointer into a corner', async () => {
    const fired = new Promise<{ x: number; y: number }>((resolve) => {
      const off = s.desktop.watchCorners((p) => {
        off();
        resolve(p);
      }, 50);
    });
    const user = await XConnection.open(s.xvfb.display);
    const xt = await XTest.open(user);
    xt.fake(MOTION, 0, 1279, 0);
    await user.sync();
    const p = await fired;
    user.close();
    expect(p).toEqual({ x: 1279, y: 0 });
  });

  it('sends no event once stop() has resolved, even mid-typing', async () => {
    await inp().click(s.at('text').x, s.at('text').y);
    await inp().hotkey('ctrl a');
    await inp().hotkey('backspace');
    const before = inp().events.length;
    const typing = inp().type('x'.repeat(5000));
    while (inp().events.length < before + 40) await new Promise((r) => setImmediate(r));
    await inp().stop('test stop');
    const tStop = Date.now();
    const sentBefore = inp().events.length;
    await expect(typing).rejects.toBeInstanceOf(StoppedError);
    await expect(inp().click(s.at('beta').x, s.at('beta').y)).rejects.toBeInstanceOf(StoppedError);
    const sentAfter = inp().events.slice(sentBefore);
    await new Promise((r) => setTimeout(r, 700));
    const pageAfter = s.server.events.filter((e) => e.t > tStop + 200 && ['keydown', 'mousedown', 'click', 'wheel'].includes(e.type));
    expect(sentAfter).toEqual([]);
    expect(pageAfter).toEqual([]);
    const typed = (s.server.last('text')?.value as string) ?? '';
    expect(typed.length).toBeGreaterThan(0);
    expect(typed.length).toBeLessThan(5000);
  });
});
