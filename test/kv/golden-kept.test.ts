// Every kept-index set recorded in the golden directory is reproduced exactly (153 sets).
import { describe, expect, it } from 'vitest';
import { recordedKeptSets } from '../../app/kv/golden-expected.ts';
import { REPLAY_CATEGORIES } from '../../app/kv/replay.ts';
import { goldenReplay } from './helpers.ts';

const EXPECTED_COUNTS = { starkv: 12, 'starkv-episode': 24, snapkv: 12, pyramidkv: 48, guikv: 9, vlcache: 48 };

describe('KV golden kept sets', () => {
  const { golden, report, byKey } = goldenReplay();
  const recorded = recordedKeptSets(golden);

  it('replays without errors and records 153 sets', () => {
    expect(report.errors).toEqual([]);
    expect(recorded.size).toBe(153);
    for (const cat of REPLAY_CATEGORIES)
      expect([...recorded.values()].filter((r) => r.category === cat).length, cat).toBe(EXPECTED_COUNTS[cat]);
  });

  for (const cat of REPLAY_CATEGORIES) {
    it(`${cat}: every kept set is identical`, () => {
      let n = 0;
      for (const [key, rec] of recorded) {
        if (rec.category !== cat) continue;
        const got = byKey.get(key);
        expect(got, `${key} computed`).toBeDefined();
        expect(got!.kept, key).toEqual(rec.kept);
        n++;
      }
      expect(n).toBe(EXPECTED_COUNTS[cat]);
    });
  }

  it('lists are ascending and never contain window slots', () => {
    for (const r of report.results) {
      const lists = Array.isArray(r.kept[0]) ? (r.kept as number[][]) : [r.kept as number[]];
      for (const l of lists) {
        for (let i = 1; i < l.length; i++) expect(l[i]!).toBeGreaterThan(l[i - 1]!);
        if (l.length) expect(l.at(-1)!).toBeLessThan(r.selection.pastLen);
      }
    }
  });

  it('the STaR-KV episode keeps exactly cap tokens (past + window) per step', () => {
    for (const r of report.results.filter((x) => x.category === 'starkv-episode')) {
      expect(r.selection.compressed).toBe(true);
      expect((r.kept as number[]).length + r.selection.window).toBe(r.selection.cap);
    }
  });
});
