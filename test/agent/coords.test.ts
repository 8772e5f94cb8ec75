// smart_resize sizes and the one model -> screen mapping, with scale factors and display offsets.
import { actionParser } from '@ui-tars/action-parser';
import { describe, expect, it } from 'vitest';
import { mapAction, planImage, toModel, toScreen, UITARS_LIMITS, type ImageGeometry } from '../../app/agent/coords.ts';

const geo = (capture: { width: number; height: number }, extra: Partial<ImageGeometry> = {}): ImageGeometry => {
  const { sent, resized } = planImage(capture);
  return { origin: { x: 0, y: 0 }, injectorScale: 1, capture, sent, resized, coordSpace: 'absolute', ...extra };
};

describe('smart_resize sizes (spec 3.1 and the 1.5 coordinate table)', () => {
  it.each([
    [1920, 1080, 1932, 1092],
    [3840, 2160, 3836, 2156],
    [1440, 900, 1428, 896],
    [2560, 1440, 2548, 1428],
    [1280, 800, 1288, 812],
    [1366, 768, 1372, 756],
  ])('%ix%i -> %ix%i', (w, h, rw, rh) => {
    expect(planImage({ width: w, height: h }).resized).toEqual({ width: rw, height: rh });
  });

  it('rounds ties to even like Python (70 -> 56, 98 -> 112), unlike the reference JS parser', () => {
    expect(planImage({ width: 1036, height: 742 }).resized).toEqual({ width: 1036, height: 728 }); // 742/28 = 26.5 -> 26
    expect(planImage({ width: 1036, height: 770 }).resized).toEqual({ width: 1036, height: 784 }); // 27.5 -> 28
    // The reference parser rounds 26.5 up (756): a model that saw 728 rows would be mapped 4% off there.
    const orig = console.error;
    console.error = () => undefined;
    const ref = actionParser({ prediction: "Action: click(start_box='(518,728)')", factor: [1000, 1000], screenContext: { width: 1036, height: 742 }, modelVer: '1.5' as never });
    console.error = orig;
    expect((ref.parsed[0]!.action_inputs as { start_coords: number[] }).start_coords[1]).toBeCloseTo((728 / 756) * 742, 3);
    expect(toScreen({ x: 518, y: 727 }, geo({ width: 1036, height: 742 })).point.y).toBe(741);
  });

  it('rejects images that cannot be resized', () => {
    expect(() => planImage({ width: 20, height: 600 })).toThrow(/smaller than 28/);
    expect(() => planImage({ width: 30000, height: 100 })).toThrow(/aspect ratio/);
  });

  it('downscales before sending when asked, keeping the aspect ratio', () => {
    const p = planImage({ width: 3840, height: 2160 }, UITARS_LIMITS, 1920 * 1080);
    expect(p.sent).toEqual({ width: 1920, height: 1080 });
    expect(p.resized).toEqual({ width: 1932, height: 1092 });
  });
});

describe('model -> screen mapping', () => {
  it('maps 1932x1092 model pixels back to 1920x1080 screen pixels', () => {
    const g = geo({ width: 1920, height: 1080 });
    expect(toScreen({ x: 966, y: 546 }, g).point).toEqual({ x: 960, y: 540 });
    expect(toScreen({ x: 0, y: 0 }, g).point).toEqual({ x: 0, y: 0 });
    expect(toScreen({ x: 1931, y: 1091 }, g).point).toEqual({ x: 1919, y: 1079 });
    expect(toScreen({ x: 1932, y: 1092 }, g)).toEqual({ point: { x: 1919, y: 1079 }, clamped: true });
  });

  it('is the inverse of toModel to within a pixel', () => {
    const g = geo({ width: 1366, height: 768 });
    for (let x = 0; x < 1366; x += 37)
      for (let y = 0; y < 768; y += 29) {
        const back = toScreen(toModel({ x, y }, g), g).point;
        expect(Math.abs(back.x - x)).toBeLessThanOrEqual(1);
        expect(Math.abs(back.y - y)).toBeLessThanOrEqual(1);
      }
  });

  it('divides by the injector scale (capture in physical pixels, input in points) exactly once', () => {
    const g = geo({ width: 2880, height: 1800 }, { injectorScale: 2 });
    expect(g.resized).toEqual({ width: 2884, height: 1792 });
    expect(toScreen({ x: 1442, y: 896 }, g).point).toEqual({ x: 720, y: 450 });
    const g15 = geo({ width: 1920, height: 1080 }, { injectorScale: 1.5 });
    expect(toScreen({ x: 966, y: 546 }, g15).point).toEqual({ x: 640, y: 360 });
  });

  it('adds the display origin (second monitor)', () => {
    const g = geo({ width: 1280, height: 800 }, { origin: { x: 1920, y: 100 } });
    expect(toScreen({ x: 644, y: 406 }, g).point).toEqual({ x: 1920 + 640, y: 100 + 400 });
  });

  it('maps relative 0..1000 coordinates (UI-TARS-1.0, Doubao)', () => {
    const g = geo({ width: 1920, height: 1080 }, { coordSpace: 'relative1000' });
    expect(toScreen({ x: 500, y: 500 }, g).point).toEqual({ x: 960, y: 540 });
  });

  it('maps every point of an action and flags clamping', () => {
    const g = geo({ width: 1920, height: 1080 });
    expect(mapAction({ type: 'drag', from: { x: 966, y: 546 }, to: { x: 5000, y: 10 } }, g)).toEqual({
      action: { type: 'drag', from: { x: 960, y: 540 }, to: { x: 1919, y: 10 } },
      clamped: true,
    });
    expect(mapAction({ type: 'type', text: 'x' }, g)).toEqual({ action: { type: 'type', text: 'x' }, clamped: false });
    expect(mapAction({ type: 'scroll', direction: 'up', point: null }, g).action).toEqual({ type: 'scroll', direction: 'up', point: null });
  });
});
