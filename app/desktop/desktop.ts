// One desktop session: the X connection, its displays, capture and input, and the corner failsafe.
import { captureDisplay, type Frame } from './capture.ts';
import { listDisplays, type DisplayInfo } from './displays.ts';
import { DesktopInput, type InputOptions } from './input.ts';
import { connectDesktop, DesktopUnavailableError, loadNut, type Nut } from './nut.ts';
import type { XConnection } from './x11/connection.ts';
import { XKeyboard } from './x11/keyboard.ts';

export interface DesktopOptions extends InputOptions {
  /** X display name (default $DISPLAY). */
  xDisplay?: string;
}

export class Desktop {
  private constructor(
    readonly conn: XConnection,
    readonly nut: Nut,
    readonly displays: DisplayInfo[],
    readonly keyboard: XKeyboard,
    readonly input: DesktopInput,
    readonly xDisplay: string,
  ) {}

  /**
   * A fresh input gate on this desktop (one per agent run: stopping it ends that run's input for good,
   * while the desktop stays usable for the next run).
   */
  createInput(opts: InputOptions = {}): DesktopInput {
    return new DesktopInput(this.nut, this.keyboard, opts);
  }

  static async open(opts: DesktopOptions = {}): Promise<Desktop> {
    const xDisplay = opts.xDisplay ?? process.env.DISPLAY ?? '';
    const conn = await connectDesktop(xDisplay);
    try {
      const displays = await listDisplays(conn);
      const keyboard = await XKeyboard.open(conn);
      const nut = await loadNut(xDisplay);
      return new Desktop(conn, nut, displays, keyboard, new DesktopInput(nut, keyboard, opts), xDisplay);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  display(id = 0): DisplayInfo {
    const d = this.displays[id];
    if (!d) {
      const list = this.displays.map((x) => `${x.id}: ${x.name} ${x.width}x${x.height}+${x.x}+${x.y}`).join('; ');
      throw new DesktopUnavailableError(`no display ${id} on X display ${this.xDisplay} (displays: ${list})`);
    }
    return d;
  }

  capture(id = 0): Promise<Frame> {
    return captureDisplay(this.nut, this.display(id));
  }

  /**
   * Failsafe: calls `onCorner` once when the pointer sits in a corner of the X screen (within `margin` px)
   * at a position this process did not put it at. Returns a function that ends the watch.
   */
  watchCorners(onCorner: (p: { x: number; y: number }) => void, intervalMs = 100, margin = 2, input = this.input): () => void {
    const { width: W, height: H } = this.conn.screen;
    let done = false;
    let busy = false;
    const timer = setInterval(async () => {
      if (done || busy) return;
      busy = true;
      try {
        const p = await input.pointer();
        const inX = p.x <= margin || p.x >= W - 1 - margin;
        const inY = p.y <= margin || p.y >= H - 1 - margin;
        const own = input.lastPointer && input.lastPointer.x === p.x && input.lastPointer.y === p.y;
        if (inX && inY && !own && !done) {
          done = true;
          clearInterval(timer);
          onCorner(p);
        }
      } catch {
        // connection gone: the session is closing
      } finally {
        busy = false;
      }
    }, intervalMs);
    timer.unref();
    return () => {
      done = true;
      clearInterval(timer);
    };
  }

  close(): void {
    this.keyboard.close(); // restores spare keycodes still bound; written out before the connection ends
    this.conn.close();
  }
}
