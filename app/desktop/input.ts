// The only code that sends input events. Mouse through nut.js (libnut: XWarpPointer + XTEST buttons, each
// call synchronous with the server), keyboard through our XTEST keyboard (exact text). Every event passes
// a stop gate first: once stop() has resolved, no further event is sent (only releases of held buttons/keys).
import { parseHotkey } from './keysyms.ts';
import type { Nut } from './nut.ts';
import type { XKeyboard } from './x11/keyboard.ts';
import { BUTTON_PRESS, BUTTON_RELEASE } from './x11/xtest.ts';

export type MouseButton = 'left' | 'right' | 'middle';
export type ScrollDirection = 'up' | 'down' | 'left' | 'right';

export interface InputEvent {
  /** Epoch ms (Date.now(), the clock of the trajectory and of other processes) just before the event was sent. */
  t: number;
  kind: 'move' | 'press' | 'release' | 'click' | 'scroll' | 'key' | 'chord';
  detail: string;
}

export class StoppedError extends Error {
  constructor(reason: string) {
    super(`stopped: ${reason}`);
    this.name = 'StoppedError';
  }
}

export interface InputOptions {
  /** Wheel clicks per scroll action (default 5). */
  scrollClicks?: number;
  /** Intermediate pointer moves during a drag (default 12). */
  dragSteps?: number;
  /** Receives every event as it is sent (trajectory, tests). */
  onEvent?: (e: InputEvent) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DesktopInput {
  private stopReason: string | null = null;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly heldButtons = new Set<MouseButton>();
  /** Last position this injector put the pointer at (the corner guard ignores it). */
  lastPointer: { x: number; y: number } | null = null;
  readonly events: InputEvent[] = [];

  constructor(
    private readonly nut: Nut,
    private readonly keyboard: XKeyboard,
    private readonly opts: InputOptions = {},
  ) {}

  get stopped(): boolean {
    return this.stopReason !== null;
  }

  /** Throws StoppedError once stop() was called; call before every event. */
  private gate(kind: InputEvent['kind'], detail: string): void {
    if (this.stopReason !== null) throw new StoppedError(this.stopReason);
    const e = { t: Date.now(), kind, detail };
    this.events.push(e);
    this.opts.onEvent?.(e);
  }

  /** Runs one input action; actions never interleave. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.busy.then(fn, fn);
    this.busy = p.catch(() => undefined);
    return p;
  }

  /**
   * Refuses every later event, waits for the event in flight to finish, then releases held buttons and
   * keys. After the returned promise resolves no input event is sent by this object.
   */
  async stop(reason = 'stop requested'): Promise<void> {
    if (this.stopReason === null) this.stopReason = reason;
    await this.busy;
    for (const b of this.heldButtons) await this.nut.mouse.releaseButton(this.button(b));
    this.heldButtons.clear();
    await this.keyboard.releaseAll();
  }

  private button(b: MouseButton) {
    return b === 'left' ? this.nut.Button.LEFT : b === 'right' ? this.nut.Button.RIGHT : this.nut.Button.MIDDLE;
  }

  private async moveNow(x: number, y: number): Promise<void> {
    this.gate('move', `${x},${y}`);
    await this.nut.mouse.setPosition(new this.nut.Point(x, y));
    this.lastPointer = { x, y };
  }

  move(x: number, y: number): Promise<void> {
    return this.run(() => this.moveNow(x, y));
  }

  click(x: number, y: number, button: MouseButton = 'left', count: 1 | 2 = 1): Promise<void> {
    return this.run(async () => {
      await this.moveNow(x, y);
      await sleep(30);
      for (let i = 0; i < count; i++) {
        this.gate('click', `${button}@${x},${y}`);
        await this.nut.mouse.pressButton(this.button(button));
        this.heldButtons.add(button);
        await this.nut.mouse.releaseButton(this.button(button));
        this.heldButtons.delete(button);
        if (i + 1 < count) await sleep(60);
      }
    });
  }

  drag(x1: number, y1: number, x2: number, y2: number): Promise<void> {
    return this.run(async () => {
      await this.moveNow(x1, y1);
      await sleep(30);
      this.gate('press', `left@${x1},${y1}`);
      await this.nut.mouse.pressButton(this.nut.Button.LEFT);
      this.heldButtons.add('left');
      try {
        const steps = this.opts.dragSteps ?? 12;
        for (let i = 1; i <= steps; i++) {
          await sleep(15);
          await this.moveNow(Math.round(x1 + ((x2 - x1) * i) / steps), Math.round(y1 + ((y2 - y1) * i) / steps));
        }
        await sleep(30);
        this.gate('release', `left@${x2},${y2}`);
      } finally {
        await this.nut.mouse.releaseButton(this.nut.Button.LEFT);
        this.heldButtons.delete('left');
      }
    });
  }

  /** Scrolls at (x, y) (or where the pointer is) by `clicks` wheel clicks. */
  scroll(direction: ScrollDirection, at: { x: number; y: number } | null, clicks = this.opts.scrollClicks ?? 5): Promise<void> {
    return this.run(async () => {
      if (at) {
        await this.moveNow(at.x, at.y);
        await sleep(30);
      }
      // X wheel buttons: 4 up, 5 down, 6 left, 7 right (libnut's scrollMouse swaps left and right).
      const button = { up: 4, down: 5, left: 6, right: 7 }[direction];
      const xt = this.keyboard.xtest;
      for (let i = 0; i < clicks; i++) {
        this.gate('scroll', direction);
        xt.fake(BUTTON_PRESS, button);
        xt.fake(BUTTON_RELEASE, button);
        await xt.conn.sync();
        await sleep(10);
      }
    });
  }

  /** hotkey(key='ctrl shift t'): presses in order, releases in reverse. */
  hotkey(spec: string): Promise<void> {
    const keys = parseHotkey(spec);
    return this.run(() => this.keyboard.chord(keys, () => this.gate('chord', spec)));
  }

  /** Types text exactly (symbols, newlines as Return, any Unicode). Stops between characters. */
  type(text: string): Promise<void> {
    return this.run(() => this.keyboard.type(text, { before: () => this.gate('key', '') }));
  }

  /** Where the pointer is now (the corner guard polls this). */
  async pointer(): Promise<{ x: number; y: number }> {
    const p = await this.keyboard.xtest.pointer();
    return { x: p.x, y: p.y };
  }

  /** Whether button presses are in progress (for tests). */
  get holding(): boolean {
    return this.heldButtons.size > 0;
  }
}
