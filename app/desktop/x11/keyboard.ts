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
  /**
   * ms to wait before spare keycodes are unbound while a text is still being typed (only when it needs
   * more distinct missing characters than there are spare keycodes; default 150).
   */
  restoreDelayMs?: number;
  /** ms between characters (default 0; a round trip to the server follows every character anyway). */
  charDelayMs?: number;
}

export interface KeyboardOptions {
  /**
   * ms that spare keycodes stay bound after the call that bound them (default 2000). A client re-reads
   * the keymap when it handles the MappingNotify of a binding, which can be well after our keys were
   * sent when the machine is busy: unbinding sooner can make it read the key back as unbound and lose
   * the character. The next call reuses bindings still in place; close() restores at once.
   */
  lingerMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOCK_MASK = 0x2;

export class XKeyboard {
  private map!: KeyboardMapping;
  private shiftKeycode = 0;
  private spare: number[] = [];
  /** Keys this keyboard currently holds down (released on stop). */
  private readonly held = new Set<number>();
  /** Spare keycodes we bound (keysym -> keycode) and have not unbound yet. */
  private readonly bound = new Map<number, number>();
  private unbindTimer: NodeJS.Timeout | null = null;
  /** Calls run one at a time (the deferred unbinding included). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly xtest: XTest,
    private readonly opts: KeyboardOptions,
  ) {}

  static async open(conn: XConnection, opts: KeyboardOptions = {}): Promise<XKeyboard> {
    const kb = new XKeyboard(await XTest.open(conn), opts);
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

  /** The spare keycodes bound now, keysym -> keycode (for tests and diagnostics). */
  get boundKeycodes(): ReadonlyMap<number, number> {
    return this.bound;
  }

  private isLetter(keysym: number): boolean {
    return (keysym >= 0x41 && keysym <= 0x5a) || (keysym >= 0x61 && keysym <= 0x7a);
  }

  /** Runs `fn` after every earlier call (and deferred unbinding) has finished. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Binds each keysym (not bound by us already) to a free spare keycode, then lets clients re-read. */
  private async bindSpare(keysyms: Iterable<number>, settleMs: number): Promise<void> {
    let changed = false;
    for (const s of keysyms) {
      if (this.bound.has(s)) continue;
      const kc = this.spare.shift();
      if (kc === undefined) throw new Error('the keymap has no spare keycode to bind a character to');
      this.xtest.changeMapping(kc, this.map.perKeycode, [Array(this.map.perKeycode).fill(s)]);
      this.bound.set(s, kc);
      changed = true;
    }
    if (changed) {
      await this.xtest.conn.sync();
      await sleep(settleMs);
    }
  }

  /** Unbinds our spare keycodes (those a client rebound since are left alone) and re-reads the keymap. */
  private async unbindNow(): Promise<void> {
    this.cancelUnbind();
    if (this.bound.size === 0) return;
    const map = await this.xtest.keyboardMapping().catch(() => null);
    for (const [s, kc] of this.bound) {
      if (!map || map.keysyms[kc - map.minKeycode]?.[0] === s) this.xtest.changeMapping(kc, this.map.perKeycode, [[]]);
    }
    this.bound.clear();
    await this.xtest.conn.sync().catch(() => undefined);
    await this.refresh().catch(() => undefined);
  }

  private cancelUnbind(): void {
    if (this.unbindTimer) clearTimeout(this.unbindTimer);
    this.unbindTimer = null;
  }

  /** Unbinds our spare keycodes lingerMs after the last call that used them. */
  private scheduleUnbind(): void {
    this.cancelUnbind();
    if (this.bound.size === 0) return;
    this.unbindTimer = setTimeout(() => {
      this.unbindTimer = null;
      void this.exclusive(() => this.unbindNow()).catch(() => undefined);
    }, this.opts.lingerMs ?? 2000);
    this.unbindTimer.unref(); // close() restores what is still bound
  }

  /** Types `text` exactly. Newlines are Return, tabs Tab. */
  type(text: string, opts: TypeOptions = {}): Promise<void> {
    return this.exclusive(() => this.typeNow(text, opts));
  }

  private async typeNow(text: string, opts: TypeOptions): Promise<void> {
    this.cancelUnbind(); // bindings still in place are reused
    const syms = [...text.replace(/\r\n/g, '\n')].map((c) => charToKeysym(c.codePointAt(0)!));
    await this.refresh(); // the user may have switched layouts since the last call
    const state = (await this.xtest.pointer()).mask;
    const capsLock = (state & LOCK_MASK) !== 0;
    // With a second layout group active, the core map's first columns are not what keys produce: bind
    // every character to a spare keycode instead (all its columns carry the character).
    const group0 = ((state >> 13) & 3) === 0;
    const inMap = (s: number) => (this.bound.has(s) ? null : group0 || s >= 0xff00 ? this.lookup(s) : null);
    try {
      let i = 0;
      while (i < syms.length) {
        // Bind the missing keysyms of the next stretch of text to spare keycodes.
        const missing = new Set<number>();
        let j = i;
        for (; j < syms.length; j++) {
          const s = syms[j]!;
          if (inMap(s) || this.bound.has(s) || missing.has(s)) continue;
          if (missing.size >= this.spare.length) break;
          missing.add(s);
        }
        if (j === i) {
          if (this.bound.size === 0) throw new Error('the keymap has no spare keycode to bind a character to');
          // Every spare keycode is bound to earlier characters: let clients read them, then free them.
          await sleep(opts.restoreDelayMs ?? 150);
          await this.unbindNow();
          continue;
        }
        await this.bindSpare(missing, opts.remapSettleMs ?? 40);
        for (; i < j; i++) {
          const s = syms[i]!;
          const hit = inMap(s);
          const stroke: KeyStroke = hit ?? { keycode: this.bound.get(s)!, shift: false };
          if (hit && capsLock && this.isLetter(s)) stroke.shift = !stroke.shift;
          opts.before?.();
          this.stroke(stroke);
          await this.xtest.conn.sync();
          if (opts.charDelayMs) await sleep(opts.charDelayMs);
        }
      }
    } finally {
      this.scheduleUnbind();
    }
  }

  private stroke(k: KeyStroke): void {
    if (k.shift && this.shiftKeycode) this.xtest.fake(KEY_PRESS, this.shiftKeycode);
    this.xtest.fake(KEY_PRESS, k.keycode);
    this.xtest.fake(KEY_RELEASE, k.keycode);
    if (k.shift && this.shiftKeycode) this.xtest.fake(KEY_RELEASE, this.shiftKeycode);
  }

  /** Presses the keys of a chord in order and releases them in reverse (hotkey(key='ctrl shift t')). */
  chord(keysyms: number[], before?: BeforeEvent): Promise<void> {
    return this.exclusive(() => this.chordNow(keysyms, before));
  }

  private async chordNow(keysyms: number[], before?: BeforeEvent): Promise<void> {
    this.cancelUnbind();
    try {
      await this.refresh();
      const missing = keysyms.filter((s) => !this.lookup(s) && !this.bound.has(s) && !isModifierKeysym(s));
      if (missing.length > this.spare.length) await this.unbindNow();
      await this.bindSpare(missing.slice(0, this.spare.length), 40);
      const codes = keysyms.map((s) => {
        const kc = this.bound.get(s) ?? this.lookup(s)?.keycode;
        if (kc === undefined) throw new Error(`no key produces keysym 0x${s.toString(16)} in the current keymap`);
        return kc;
      });
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
      this.scheduleUnbind();
    }
  }

  /**
   * Releases whatever this keyboard holds (used when the agent is stopped). Spare keycodes stay bound
   * until their linger time is over (the text typed just before may not have been read yet).
   */
  async releaseAll(): Promise<void> {
    for (const c of this.held) this.xtest.fake(KEY_RELEASE, c);
    this.held.clear();
    await this.xtest.conn.sync().catch(() => undefined);
  }

  /**
   * Before the connection closes: unbinds our spare keycodes now (the requests are queued ahead of the
   * close, which writes them out first).
   */
  close(): void {
    this.cancelUnbind();
    for (const kc of this.bound.values()) this.xtest.changeMapping(kc, this.map.perKeycode, [[]]);
    this.bound.clear();
  }
}
