// Exact keyboard input through XTEST: every character becomes the keycode (and Shift level) that the
// server's current keymap gives it; characters the keymap lacks (Chinese, "ü" on a US map, emoji) are
// bound for the moment to spare keycodes, as xdotool does, and unbound afterwards. No clipboard involved,
// so it also works in terminals and leaves the user's clipboard alone.
import { charToKeysym, isModifierKeysym } from '../keysyms.ts';
import type { XConnection } from './connection.ts';
import { KEY_PRESS, KEY_RELEASE, XTest, type KeyboardMapping } from './xtest.ts';

export interface KeyStroke {
  keycode: number;
  shift: boolean;
}

/** Called before each press/release pair; throws to stop (the stop gate of app/desktop/input.ts). */
export type BeforeEvent = () => void;

export interface TypeOptions {
  before?: BeforeEvent;
  /** ms to let clients re-read the keymap after spare keycodes were bound (default 40). */
  remapSettleMs?: number;
  /** ms to wait after the last key of a remapped run before the spare keycodes are unbound (default 150). */
  restoreDelayMs?: number;
  /** ms between characters (default 0; a round trip to the server follows every character anyway). */
  charDelayMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOCK_MASK = 0x2;

export class XKeyboard {
  private map!: KeyboardMapping;
  private shiftKeycode = 0;
  private spare: number[] = [];
  /** Keys this keyboard currently holds down (released on stop). */
  private readonly held = new Set<number>();

  private constructor(readonly xtest: XTest) {}

  static async open(conn: XConnection): Promise<XKeyboard> {
    const kb = new XKeyboard(await XTest.open(conn));
    await kb.refresh();
    return kb;
  }

  /** Re-reads the keymap and modifier map (call after the user switched layouts). */
  async refresh(): Promise<void> {
    this.map = await this.xtest.keyboardMapping();
    const mods = await this.xtest.modifierMapping();
    this.shiftKeycode = mods[0]?.[0] ?? this.lookup(0xffe1)?.keycode ?? 0;
    this.spare = [];
    this.map.keysyms.forEach((row, i) => {
      if (row.every((s) => s === 0)) this.spare.push(this.map.minKeycode + i);
    });
    // Keep the highest spare keycodes: the low ones may be claimed by hot-plugged keyboards.
    this.spare.reverse();
  }

  /** The keycode + Shift level producing `keysym` in the current keymap, or null. */
  lookup(keysym: number): KeyStroke | null {
    let shifted: KeyStroke | null = null;
    for (let i = 0; i < this.map.keysyms.length; i++) {
      const row = this.map.keysyms[i]!;
      if (row[0] === keysym) return { keycode: this.map.minKeycode + i, shift: false };
      if (!shifted && row[1] === keysym) shifted = { keycode: this.map.minKeycode + i, shift: true };
    }
    return shifted;
  }

  private isLetter(keysym: number): boolean {
    return (keysym >= 0x41 && keysym <= 0x5a) || (keysym >= 0x61 && keysym <= 0x7a);
  }

  /** Types `text` exactly. Newlines are Return, tabs Tab. */
  async type(text: string, opts: TypeOptions = {}): Promise<void> {
    const syms = [...text.replace(/\r\n/g, '\n')].map((c) => charToKeysym(c.codePointAt(0)!));
    await this.refresh(); // the user may have switched layouts since the last call
    const state = (await this.xtest.pointer()).mask;
    const capsLock = (state & LOCK_MASK) !== 0;
    // With a second layout group active, the core map's first columns are not what keys produce: bind
    // every character to a spare keycode instead (all its columns carry the character).
    const lookup = ((state >> 13) & 3) === 0 ? (s: number) => this.lookup(s) : (s: number) => (s >= 0xff00 ? this.lookup(s) : null);
    let i = 0;
    while (i < syms.length) {
      // Bind the missing keysyms of the next stretch of text to spare keycodes.
      const bound = new Map<number, number>();
      let j = i;
      for (; j < syms.length; j++) {
        const s = syms[j]!;
        if (lookup(s) || bound.has(s)) continue;
        if (bound.size >= this.spare.length) break;
        bound.set(s, this.spare[bound.size]!);
      }
      if (j === i && bound.size === 0 && !lookup(syms[i]!)) {
        throw new Error('the keymap has no spare keycode to bind a character to');
      }
      if (bound.size) {
        for (const [s, kc] of bound) this.xtest.changeMapping(kc, this.map.perKeycode, [Array(this.map.perKeycode).fill(s)]);
        await this.xtest.conn.sync();
        await sleep(opts.remapSettleMs ?? 40);
      }
      try {
        for (; i < j; i++) {
          const s = syms[i]!;
          const hit = lookup(s);
          const stroke: KeyStroke = hit ?? { keycode: bound.get(s)!, shift: false };
          if (hit && capsLock && this.isLetter(s)) stroke.shift = !stroke.shift;
          opts.before?.();
          this.stroke(stroke);
          await this.xtest.conn.sync();
          if (opts.charDelayMs) await sleep(opts.charDelayMs);
        }
      } finally {
        if (bound.size) {
          await sleep(opts.restoreDelayMs ?? 150);
          for (const kc of bound.values()) this.xtest.changeMapping(kc, this.map.perKeycode, [[]]);
          await this.xtest.conn.sync().catch(() => undefined);
        }
      }
    }
  }

  private stroke(k: KeyStroke): void {
    if (k.shift && this.shiftKeycode) this.xtest.fake(KEY_PRESS, this.shiftKeycode);
    this.xtest.fake(KEY_PRESS, k.keycode);
    this.xtest.fake(KEY_RELEASE, k.keycode);
    if (k.shift && this.shiftKeycode) this.xtest.fake(KEY_RELEASE, this.shiftKeycode);
  }

  /** Presses the keys of a chord in order and releases them in reverse (hotkey(key='ctrl shift t')). */
  async chord(keysyms: number[], before?: BeforeEvent): Promise<void> {
    await this.refresh();
    const codes: number[] = [];
    const bound: number[] = [];
    for (const s of keysyms) {
      let hit = this.lookup(s);
      if (!hit && !isModifierKeysym(s) && this.spare.length > bound.length) {
        const kc = this.spare[bound.length]!;
        this.xtest.changeMapping(kc, this.map.perKeycode, [Array(this.map.perKeycode).fill(s)]);
        bound.push(kc);
        hit = { keycode: kc, shift: false };
      }
      if (!hit) throw new Error(`no key produces keysym 0x${s.toString(16)} in the current keymap`);
      codes.push(hit.keycode);
    }
    if (bound.length) {
      await this.xtest.conn.sync();
      await sleep(40);
    }
    try {
      before?.();
      for (const c of codes) {
        this.xtest.fake(KEY_PRESS, c);
        this.held.add(c);
      }
      for (const c of [...codes].reverse()) {
        this.xtest.fake(KEY_RELEASE, c);
        this.held.delete(c);
      }
      await this.xtest.conn.sync();
    } finally {
      if (bound.length) {
        await sleep(150);
        for (const kc of bound) this.xtest.changeMapping(kc, this.map.perKeycode, [[]]);
        await this.xtest.conn.sync().catch(() => undefined);
      }
    }
  }

  /** Releases whatever this keyboard holds (used when the agent is stopped). */
  async releaseAll(): Promise<void> {
    for (const c of this.held) this.xtest.fake(KEY_RELEASE, c);
    this.held.clear();
    await this.xtest.conn.sync().catch(() => undefined);
  }
}
