// A real desktop for a test: private Xvfb (+ Xft.dpi for a scale factor), the test page in Chromium, and
// our Desktop session on it. Element centres are computed from the page's own layout report.
import { Desktop } from '../../../app/desktop/desktop.ts';
import { setXftDpi } from '../../../app/desktop/displays.ts';
import { XConnection } from '../../../app/desktop/x11/connection.ts';
import { launchChromium, type Browser } from './chromium.ts';
import { PageServer, type PageEvent } from './page-server.ts';
import { startXvfb, type Xvfb } from './xvfb.ts';

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Scene {
  xvfb: Xvfb;
  server: PageServer;
  browser: Browser;
  desktop: Desktop;
  layout: PageEvent & { dpr: number; sx: number; sy: number; rects: Record<string, Rect> };
  /** Screen pixel at fractions (fx, fy) of an element's box (default: its centre). */
  at(id: string, fx?: number, fy?: number): { x: number; y: number };
  close(): Promise<void>;
}

export async function openScene(opts: { width: number; height: number; scale?: number }): Promise<Scene> {
  const xvfb = await startXvfb(opts.width, opts.height);
  const cleanup: Array<() => Promise<void> | void> = [() => xvfb.stop()];
  try {
    if (opts.scale && opts.scale !== 1) {
      const c = await XConnection.open(xvfb.display);
      await setXftDpi(c, Math.round(96 * opts.scale));
      c.close();
    }
    const server = await PageServer.start();
    cleanup.unshift(() => server.close());
    const browser = launchChromium(xvfb.display, `${server.origin}/page`, { width: opts.width, height: opts.height, scale: opts.scale });
    cleanup.unshift(() => browser.stop());
    const layout = (await server.waitFor((e) => e.type === 'layout', 60_000)) as Scene['layout'];
    // Let the first paint reach the screen.
    await new Promise((r) => setTimeout(r, 500));
    const desktop = await Desktop.open({ xDisplay: xvfb.display });
    cleanup.unshift(() => desktop.close());
    const at = (id: string, fx = 0.5, fy = 0.5) => {
      const r = layout.rects[id];
      if (!r) throw new Error(`no element '${id}' in the page layout`);
      return { x: Math.round((layout.sx + r.x + r.w * fx) * layout.dpr), y: Math.round((layout.sy + r.y + r.h * fy) * layout.dpr) };
    };
    return {
      xvfb, server, browser, desktop, layout, at,
      close: async () => {
        for (const c of cleanup) await c();
      },
    };
  } catch (e) {
    for (const c of cleanup) await c();
    throw e;
  }
}
