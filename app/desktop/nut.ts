// Loads nut.js only after an X server answered: libnut segfaults (no JS error) when it cannot open the display.
import { XConnection } from './x11/connection.ts';

export type Nut = typeof import('@nut-tree-fork/nut-js');

export class DesktopUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DesktopUnavailableError';
  }
}

/** Opens a protocol connection to the X server or throws a DesktopUnavailableError that says what to do. */
export async function connectDesktop(display = process.env.DISPLAY): Promise<XConnection> {
  if (process.platform !== 'linux') {
    throw new DesktopUnavailableError(`starkv's desktop layer supports Linux/X11 only for now (this is ${process.platform})`);
  }
  if (!display) {
    const wl = process.env.WAYLAND_DISPLAY ? ' (a Wayland session was found: run under XWayland with DISPLAY set)' : '';
    throw new DesktopUnavailableError(
      `no X display: DISPLAY is not set${wl}. The agent needs a desktop to see and control: run it inside your X session, or on a virtual X server with something on screen (a bare Xvfb screen is black, and the agent stops on a black screen), e.g. xvfb-run -a -s "-screen 0 1920x1080x24" sh -c 'chromium --no-sandbox https://example.org & sleep 3; starkv run ...'`,
    );
  }
  try {
    return await XConnection.open(display);
  } catch (e) {
    throw new DesktopUnavailableError(`cannot use X display ${display}: ${(e as Error).message}`);
  }
}

let loaded: { nut: Nut; display: string } | null = null;

/**
 * Imports nut.js for `display` (which must have answered connectDesktop). libnut opens the display named by
 * $DISPLAY once per process, so all desktop work of a process uses one X server.
 */
export async function loadNut(display: string): Promise<Nut> {
  if (loaded) {
    if (loaded.display !== display) throw new DesktopUnavailableError(`nut.js is already bound to X display ${loaded.display} in this process; cannot switch to ${display}`);
    return loaded.nut;
  }
  process.env.DISPLAY = display;
  const nut = (await import('@nut-tree-fork/nut-js')) as Nut;
  nut.mouse.config.autoDelayMs = 0;
  nut.mouse.config.mouseSpeed = 100000;
  nut.keyboard.config.autoDelayMs = 0;
  loaded = { nut, display };
  return nut;
}
