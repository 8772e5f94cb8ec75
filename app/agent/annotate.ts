// Draws what the agent would do (dry run) or did onto a screenshot: click markers, drag arrows, scroll
// arrows, typed text and hotkeys as labels. Screen points are converted to capture pixels here.
import sharp from 'sharp';
import { describeAction, type Point, type ScreenAction } from './actions.ts';
import type { ImageGeometry } from './coords.ts';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function toPixel(p: Point, g: ImageGeometry): Point {
  return { x: (p.x - g.origin.x) * g.injectorScale, y: (p.y - g.origin.y) * g.injectorScale };
}

/** SVG overlay (capture-pixel coordinates) for a list of screen actions. */
export function actionsSvg(actions: ScreenAction[], g: ImageGeometry): string {
  const { width: W, height: H } = g.capture;
  const parts: string[] = [];
  const r = Math.max(10, Math.round(W / 120));
  const label = (x: number, y: number, text: string) => {
    const t = esc(text.length > 80 ? text.slice(0, 77) + '...' : text);
    const lx = Math.min(Math.max(4, x + r + 4), W - 8 * t.length - 4);
    const ly = Math.min(Math.max(18, y - r), H - 4);
    parts.push(`<text x="${lx}" y="${ly}" font-family="sans-serif" font-size="16" fill="#fff" stroke="#000" stroke-width="3" paint-order="stroke">${t}</text>`);
  };
  actions.forEach((a, i) => {
    const n = `${i + 1}. ${describeAction(a)}`;
    if ('point' in a && a.point) {
      const p = toPixel(a.point, g);
      parts.push(`<circle cx="${p.x}" cy="${p.y}" r="${r}" fill="none" stroke="#ff2d55" stroke-width="3"/>`);
      parts.push(`<line x1="${p.x - r}" y1="${p.y}" x2="${p.x + r}" y2="${p.y}" stroke="#ff2d55" stroke-width="2"/>`);
      parts.push(`<line x1="${p.x}" y1="${p.y - r}" x2="${p.x}" y2="${p.y + r}" stroke="#ff2d55" stroke-width="2"/>`);
      label(p.x, p.y, n);
    } else if (a.type === 'drag') {
      const p = toPixel(a.from, g), q = toPixel(a.to, g);
      parts.push(`<line x1="${p.x}" y1="${p.y}" x2="${q.x}" y2="${q.y}" stroke="#ff9500" stroke-width="4" marker-end="url(#arrow)"/>`);
      parts.push(`<circle cx="${p.x}" cy="${p.y}" r="${r / 2}" fill="#ff9500"/>`);
      label(p.x, p.y, n);
    } else {
      label(12, 24 + 22 * i, n);
    }
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">` +
    `<defs><marker id="arrow" markerWidth="10" markerHeight="10" refX="8" refY="5" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#ff9500"/></marker></defs>` +
    parts.join('') +
    '</svg>'
  );
}

/** The capture PNG with the actions drawn on it. */
export async function annotatePng(png: Buffer, actions: ScreenAction[], g: ImageGeometry): Promise<Buffer> {
  return sharp(png)
    .composite([{ input: Buffer.from(actionsSvg(actions, g)), top: 0, left: 0 }])
    .png({ compressionLevel: 1 })
    .toBuffer();
}
