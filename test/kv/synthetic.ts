// Small seeded synthetic layers for the KV unit tests.
import type { KvLayer } from '../../app/kv/addon.ts';

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

export interface SynthOptions {
  L?: number;
  H?: number;
  Hkv?: number;
  d?: number;
  D?: number;
  spans?: Array<[number, number]>;
  seed?: number;
  qRows?: number;
}

/** Random keys / queries / hidden states; defaults: L 120, H 8, Hkv 2, d 16, two 30-token frames. */
export function synthLayer(o: SynthOptions = {}): KvLayer {
  const L = o.L ?? 120, H = o.H ?? 8, Hkv = o.Hkv ?? 2, d = o.d ?? 16, D = o.D ?? 32;
  const qRows = o.qRows ?? L;
  const r = rng(o.seed ?? 7);
  const fill = (n: number, scale = 2) => Float32Array.from({ length: n }, () => r() * scale);
  return {
    numHeads: H,
    numKvHeads: Hkv,
    headDim: d,
    seqLen: L,
    keys: fill(Hkv * L * d),
    queries: fill(H * qRows * d),
    qRows,
    hidden: fill(L * D),
    hiddenSize: D,
    hiddenRow0: 0,
    hiddenRows: L,
    spans: o.spans ?? [
      [10, 40],
      [50, 80],
    ],
  };
}
