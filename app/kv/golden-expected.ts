// The kept sets a golden directory records (what the reference code kept), keyed as replay keys
// them; used only to compare against what replay computes (summary, tests), never as output.
import type { GoldenDir } from './golden-reader.ts';
import type { ReplayCategory } from './replay.ts';

export interface RecordedSet {
  category: ReplayCategory;
  kept: number[] | number[][];
}

const asRecord = (x: unknown): Record<string, unknown> => (x && typeof x === 'object' ? (x as Record<string, unknown>) : {});

export function recordedKeptSets(g: GoldenDir): Map<string, RecordedSet> {
  const out = new Map<string, RecordedSet>();
  for (const c of g.starkvSingle?.cases ?? []) {
    const k = asRecord(c).kept_indices;
    if (Array.isArray(k)) out.set(c.case_id, { category: 'starkv', kept: k as number[] });
  }
  for (const st of g.episode?.steps ?? [])
    for (const [b, rec] of Object.entries(st.per_budget)) {
      const k = asRecord(rec).kept_indices;
      if (Array.isArray(k)) out.set(`starkv_episode_s${st.step}_b${b}`, { category: 'starkv-episode', kept: k as number[] });
    }
  const perHead: Array<[ReplayCategory, GoldenDir['snapkv']]> = [
    ['snapkv', g.snapkv],
    ['pyramidkv', g.pyramidkv],
    ['guikv', g.guikv],
  ];
  for (const [cat, f] of perHead)
    for (const c of f?.cases ?? []) {
      const k = asRecord(c).kept_indices_per_head;
      if (Array.isArray(k)) out.set(c.case_id, { category: cat, kept: k as number[][] });
    }
  for (const c of g.vlcache?.cases ?? [])
    for (const lr of c.layers) {
      const k = asRecord(lr).kept_indices_per_head;
      if (Array.isArray(k)) out.set(`${c.case_id}_layer${lr.layer_idx}`, { category: 'vlcache', kept: k as number[][] });
    }
  return out;
}

export function sameKept(a: number[] | number[][], b: number[] | number[][]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
