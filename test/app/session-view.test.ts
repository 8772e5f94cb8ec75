// The renderer's fold of protocol events into what the views show (pure, no DOM), and the one formula that
// puts a screen point onto the screenshot (the inverse of app/agent/coords.ts).
import { describe, expect, it } from 'vitest';
import { toModel, toScreen, type ImageGeometry } from '../../app/agent/coords.ts';
import type { SessionEvent } from '../../app/protocol.ts';
import { foldEvents, splitThought, toPixel } from '../../renderer/src/session.ts';

const g: ImageGeometry = { origin: { x: 1920, y: 0 }, injectorScale: 2, capture: { width: 2880, height: 1800 }, sent: { width: 2880, height: 1800 }, resized: { width: 2884, height: 1792 }, coordSpace: 'absolute' };

describe('session view', () => {
  it('folds a run: streaming thought, planned then executed actions, steps closed, the outcome', () => {
    const sid = 's1';
    const shot = { id: 'a', url: '/blob/a', width: 2880, height: 1800 };
    const events: SessionEvent[] = [
      { type: 'session.started', sessionId: sid, task: 't', dryRun: false, backend: 'openai', destination: 'http://x/v1', display: { width: 1440, height: 900, scale: 2 }, episode: null, t: 1 },
      { type: 'step.started', sessionId: sid, step: 1, screenshot: shot, geometry: g, t: 2 },
      { type: 'tokens', sessionId: sid, step: 1, delta: 'Thought: click the ' },
      { type: 'tokens', sessionId: sid, step: 1, delta: 'OK button\nAction: cli' },
      { type: 'reply', sessionId: sid, step: 1, text: 'Thought: click the OK button\nAction: click(start_box=(1,2))', attempt: 0, ms: 900 },
      { type: 'action', sessionId: sid, step: 1, index: 0, phase: 'planned', action: { type: 'click', point: { x: 2000, y: 40 } }, thought: 'click the OK button' },
      { type: 'action', sessionId: sid, step: 1, index: 0, phase: 'executed', action: { type: 'click', point: { x: 2000, y: 40 } }, thought: '' },
      { type: 'step.started', sessionId: sid, step: 2, screenshot: { ...shot, id: 'b', url: '/blob/b' }, geometry: g, t: 3 },
      { type: 'step.finished', sessionId: sid, step: 1, t: 3 },
      { type: 'session.ended', sessionId: sid, result: { status: 'finished', steps: 2, answer: 'ok' }, t: 4 },
    ];
    const s = foldEvents(events, 'live')!;
    expect(s.steps.map((v) => [v.step, v.finished])).toEqual([[1, true], [2, true]]);
    expect(s.steps[0]!.thought).toBe('click the OK button');
    expect(s.steps[0]!.actions).toEqual([{ index: 0, phase: 'executed', action: { type: 'click', point: { x: 2000, y: 40 } } }]);
    expect(s.result).toEqual({ status: 'finished', steps: 2, answer: 'ok' });
    expect(s.status).toBe('ended');
  });

  it('streams a thought before the Action line arrives', () => {
    expect(splitThought('Thought: I see the dialog')).toEqual({ thought: 'I see the dialog', action: '' });
    expect(splitThought('Thought: a\nb\nAction: click()')).toEqual({ thought: 'a\nb', action: 'click()' });
  });

  it('draws a screen point at the screenshot pixel the model pointed at (scaled, offset display)', () => {
    for (const m of [{ x: 0, y: 0 }, { x: 1442, y: 896 }, { x: 2883, y: 1791 }, { x: 700, y: 1200 }]) {
      const screen = toScreen(m, g).point;
      const px = toPixel(screen, g);
      // the pixel lies within one injector unit of where the model pointed in the capture
      expect(Math.abs(px.x - (m.x / g.resized.width) * g.capture.width)).toBeLessThanOrEqual(g.injectorScale);
      expect(Math.abs(px.y - (m.y / g.resized.height) * g.capture.height)).toBeLessThanOrEqual(g.injectorScale);
      expect(toModel(screen, g)).toEqual(toModel({ x: g.origin.x + px.x / g.injectorScale, y: g.origin.y + px.y / g.injectorScale }, g));
    }
  });
});
