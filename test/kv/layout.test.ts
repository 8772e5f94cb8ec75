import { describe, expect, it } from 'vitest';
import { mapKept, TokenLayout } from '../../app/kv/layout.ts';

describe('token layout of an episode', () => {
  it('maps kept tokens to frame cells and text across appended turns', () => {
    const L = new TokenLayout();
    const P = 500;
    L.append([1, 2, 501, ...Array(6).fill(P), 502, 3], P, [[2, 3]]); // frame 0 at tokens 3..8
    L.appendText(4); // reply 11..14
    L.append([7, 501, ...Array(4).fill(P), 502], P, [[2, 2]]); // frame 1 at tokens 17..20
    expect(L.length).toBe(22);
    expect(L.frames).toEqual([
      { frame: 0, start: 3, rows: 2, cols: 3 },
      { frame: 1, start: 17, rows: 2, cols: 2 },
    ]);
    expect(L.locate(3)).toEqual({ frame: 0, row: 0, col: 0 });
    expect(L.locate(8)).toEqual({ frame: 0, row: 1, col: 2 });
    expect(L.locate(9)).toBeNull();
    expect(L.locate(20)).toEqual({ frame: 1, row: 1, col: 1 });
    const m = mapKept(L, [0, 4, 8, 12, 17, 18, 21]);
    expect(m.text).toEqual([0, 12, 21]);
    expect(Array.from(m.frames[0]!.kept)).toEqual([0, 1, 0, 0, 0, 1]);
    expect(m.frames[0]!.keptCount).toBe(2);
    expect(Array.from(m.frames[1]!.kept)).toEqual([1, 1, 0, 0]);
  });
  it('rejects pads that do not match the grids', () => {
    expect(() => new TokenLayout().append([500, 500], 500, [[2, 2]])).toThrow(/shorter than its grid/);
    expect(() => new TokenLayout().append([500, 500], 500, [])).toThrow(/has no grid/);
    expect(() => new TokenLayout().append([1], 500, [[1, 1]])).toThrow(/1 grids for 0 image pad runs/);
  });
});
