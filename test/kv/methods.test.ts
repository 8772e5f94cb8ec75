// Unit tests of the native KV methods beyond the golden cases: budgets at the edges, missing spans,
// malformed input (clear errors, never a crash), state handling, the options beyond the reference,
// and the defining properties of full, H2O and AdaKV (which have no golden vectors).
import { describe, expect, it } from 'vitest';
import { KV_METHODS, kvCompress, kvDefaults, KvLayerState, kvLayerBudgets, kvMethods, kvPrepass, type KvLayer, type KvParams } from '../../app/kv/addon.ts';
import { synthLayer } from './synthetic.ts';

const ALL = [...KV_METHODS];
const needsLayerBudget = (m: string): KvParams => (m === 'vlcache' ? { layer_budget: 40 } : {});

describe('registry', () => {
  it('registers every method by name with its defaults', () => {
    expect(kvMethods()).toEqual(ALL);
    expect(kvDefaults('starkv')).toMatchObject({ window: 8, kernel: 5, pooling: 'avgpool', granularity: 'shared', alpha: 2, lambda: 0.5, profile_steps: 5, aeb_min: 0.75, aeb_max: 1.25 });
    expect(kvDefaults('snapkv')).toMatchObject({ window: 8, kernel: 5, pooling: 'avgpool', granularity: 'query_head' });
    expect(kvDefaults('adakv')).toMatchObject({ window: 32, kernel: 7, pooling: 'maxpool', floor_alpha: 0.5, granularity: 'kv_head' });
    expect(kvDefaults('pyramidkv')).toMatchObject({ pyramid_beta: 20 });
    expect(kvDefaults('guikv')).toMatchObject({ qr_rank: 32, saliency_temperature: 3.5 });
  });
});

describe('budgets at the edges', () => {
  const layer = synthLayer();
  it('budget above 100 % (cap > L) compresses nothing', () => {
    for (const m of ALL) {
      const sel = kvCompress(m, needsLayerBudget(m), { percent: 150 }, layer);
      if (m === 'vlcache') continue; // its budget comes from layer_budget
      expect(sel.compressed, m).toBe(false);
    }
  });
  it('100 % keeps every past slot', () => {
    for (const m of ['snapkv', 'guikv', 'starkv', 'pyramidkv'] as const) {
      const sel = kvCompress(m, {}, 100, layer);
      expect(sel.compressed, m).toBe(true);
      for (const k of sel.kept) expect(k.length + sel.window, m).toBe(120);
    }
  });
  it('tiny budgets never crash and stay within cap (STaR-KV keeps its 1 + window minimum)', () => {
    for (const cap of [0, 1, 2, 3, 4]) {
      for (const m of ['snapkv', 'pyramidkv', 'guikv', 'adakv', 'h2o', 'starkv'] as const) {
        const sel = kvCompress(m, {}, { capTokens: cap }, layer);
        expect(sel.compressed, `${m} cap ${cap}`).toBe(true);
        expect(sel.window, `${m} cap ${cap}`).toBeGreaterThanOrEqual(1);
        const most = Math.max(...sel.kept.map((k) => k.length));
        if (m === 'starkv') {
          expect(sel.window).toBe(Math.max(1, Math.min(8, cap - 2)));
          expect(most).toBe(Math.max(1, cap - sel.window)); // k = max(1, cap - w)
        }
        else if (m === 'adakv') {
          // heads trade budget: the layer total stays rows * (cap - w) up to rounding
          const total = sel.kept.reduce((a, k) => a + k.length, 0);
          expect(total, `${m} cap ${cap}`).toBeLessThanOrEqual(sel.kept.length * (Math.max(cap - sel.window, 0) + 1));
        } else if (m === 'pyramidkv') expect(most, `${m} cap ${cap}`).toBeLessThanOrEqual(2 * Math.max(cap - sel.window, 0)); // layer 0 gets up to 2x the mean
        else expect(most + sel.window, `${m} cap ${cap}`).toBeLessThanOrEqual(Math.max(cap, 1));
      }
    }
    expect(kvCompress('starkv', {}, 1, layer).cap).toBe(1); // int(120 * 0.01)
  });
  it('the percent applies to refLen when given (persistent mode)', () => {
    const sel = kvCompress('starkv', {}, { percent: 20, refLen: 300 }, layer);
    expect(sel.cap).toBe(60);
    expect(sel.kept[0]!.length + sel.window).toBe(60);
  });
});

describe('spans', () => {
  it('no image: STaR-KV runs without boost or MI, GUI-KV without boost', () => {
    const layer = synthLayer({ spans: [] });
    const st = kvCompress('starkv', { debug: true }, 20, layer, new KvLayerState());
    expect(st.telemetry.miCur).toEqual([]);
    expect(st.telemetry.arrays.spatial_boost_last_span).toBeUndefined();
    expect(st.kept[0]!.length).toBe(24 - 8);
    const g = kvCompress('guikv', { debug: true }, 20, layer);
    expect(g.telemetry.branch).toBe('snapkv_only');
    expect(() => kvPrepass('vlcache', {}, layer)).toThrow(/spans|last_vision_index/);
    expect(kvPrepass('vlcache', {}, { ...layer, lastVisionIndex: 100 })).toBeGreaterThan(0);
  });
  it('empty spans are dropped; a span reaching into the window is clipped (STaR-KV)', () => {
    const a = kvCompress('starkv', {}, 20, synthLayer({ spans: [[10, 40], [60, 60]] }), new KvLayerState());
    const b = kvCompress('starkv', {}, 20, synthLayer({ spans: [[10, 40]] }), new KvLayerState());
    expect(Array.from(a.kept[0]!)).toEqual(Array.from(b.kept[0]!));
    const c = kvCompress('starkv', { debug: true }, 20, synthLayer({ spans: [[100, 120]] }), new KvLayerState());
    expect(c.telemetry.arrays.spatial_boost_last_span!.shape).toEqual([12]); // [100, 112) of past 112
  });
  it('a one-token frame does not produce NaN', () => {
    const sel = kvCompress('starkv', { debug: true }, 20, synthLayer({ spans: [[30, 31]] }), new KvLayerState());
    expect(Array.from(sel.telemetry.arrays.final_scores!.data).every(Number.isFinite)).toBe(true);
  });
});

describe('malformed input gives clear errors', () => {
  const good = synthLayer();
  const bad: Array<[string, () => unknown, RegExp]> = [
    ['unknown method', () => kvCompress('nope' as never, {}, 20, good), /unknown KV compression method 'nope'/],
    ['unknown param', () => kvCompress('snapkv', { windw: 4 }, 20, good), /unknown KV method parameter 'windw'/],
    ['param out of range', () => kvCompress('snapkv', { window: 0 }, 20, good), /'window'.*out of range/],
    ['param type', () => kvCompress('snapkv', { pooling: 3 }, 20, good), /'pooling' takes a string/],
    ['bad pooling', () => kvCompress('snapkv', { pooling: 'median' }, 20, good), /avgpool/],
    ['keys length', () => kvCompress('snapkv', {}, 20, { ...good, keys: new Float32Array(10) }), /layer\.keys has 10 elements/],
    ['keys type', () => kvCompress('snapkv', {}, 20, { ...good, keys: [1, 2] as unknown as Float32Array }), /layer\.keys must be a Float32Array/],
    ['heads', () => kvCompress('snapkv', {}, 20, { ...good, numKvHeads: 3 }), /multiple/],
    ['missing seqLen', () => kvCompress('snapkv', {}, 20, { ...good, seqLen: undefined } as unknown as KvLayer), /layer\.seqLen is required/],
    ['span outside', () => kvCompress('starkv', {}, 20, { ...good, spans: [[100, 130]] }), /span 0 \[100, 130\)/],
    ['span shape', () => kvCompress('starkv', {}, 20, { ...good, spans: [[1, 2, 3]] as unknown as Array<[number, number]> }), /pair/],
    ['too few queries', () => kvCompress('snapkv', {}, 20, { ...good, queries: new Float32Array(8 * 2 * 16), qRows: 2 }), /queries of the last 8 slots/],
    ['no queries', () => kvCompress('snapkv', {}, 20, { ...good, queries: undefined }), /queries are missing/],
    ['hidden not covering the frame', () => kvCompress('starkv', {}, 20, { ...good, hidden: new Float32Array(10 * 32), hiddenRows: 10 }), /hidden states do not cover/],
    ['negative budget', () => kvCompress('snapkv', {}, -5, good), /budget\.percent/],
    ['NaN budget', () => kvCompress('snapkv', {}, { percent: NaN }, good), /budget\.percent must be finite/],
    ['state type', () => kvCompress('starkv', {}, 20, good, { native: {} } as unknown as KvLayerState), /state must be a KvLayerState/],
    ['vlcache without layer budget', () => kvCompress('vlcache', {}, 20, good), /layer_budget/],
    ['vlcache budget 1 (reference raises)', () => kvCompress('vlcache', { layer_budget: 1 }, 20, good), /leaves no window/],
    ['prepass of a method without one', () => kvPrepass('snapkv', {}, good), /no per-layer pre-pass/],
    ['layer budgets without gammas', () => kvLayerBudgets([], 100, 20), /at least one/],
  ];
  for (const [what, fn, re] of bad) it(what, () => expect(fn).toThrow(re));
  it('errors are JS Errors prefixed kv:', () => {
    try {
      kvCompress('snapkv', {}, 20, { ...good, keys: new Float32Array(3) });
    } catch (e) {
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).message).toMatch(/keys/);
    }
  });
});

describe('state', () => {
  it('counters advance per call, also without compression, and reset() clears them', () => {
    const s = new KvLayerState();
    const layer = synthLayer();
    kvCompress('starkv', {}, 150, layer, s); // no compression: temporal counter still advances
    expect(s.snapshot()).toMatchObject({ temporalStep: 1, profileStep: 0 });
    kvCompress('starkv', {}, 20, layer, s);
    kvCompress('starkv', {}, 20, layer, s);
    const snap = s.snapshot();
    expect(snap).toMatchObject({ temporalStep: 3, profileStep: 2 });
    expect(snap.miEma.length).toBe(2);
    expect(snap.patternShape).toEqual([2, 30]);
    s.reset();
    expect(s.snapshot()).toMatchObject({ temporalStep: 0, profileStep: 0, miEma: [], temperature: null });
  });
  it('the MI prior ramps in after profile_steps calls', () => {
    const s = new KvLayerState();
    const lam = [];
    for (let i = 0; i < 8; i++) lam.push(kvCompress('starkv', {}, 20, synthLayer(), s).telemetry.lambdaEff);
    expect(lam.map((x) => Math.round(x! * 100) / 100)).toEqual([0, 0, 0, 0, 0, 0.05, 0.1, 0.15]);
  });
  it('same inputs, same result (deterministic); equal scores keep the lowest positions', () => {
    const a = kvCompress('starkv', {}, 20, synthLayer(), new KvLayerState());
    const b = kvCompress('starkv', {}, 20, synthLayer(), new KvLayerState());
    expect(Array.from(a.kept[0]!)).toEqual(Array.from(b.kept[0]!));
    const flatL = { ...synthLayer({ spans: [] }), keys: new Float32Array(2 * 120 * 16) };
    const sel = kvCompress('snapkv', { kernel: 1 }, 20, flatL);
    for (const k of sel.kept) expect(Array.from(k)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });
});

describe('options beyond the reference (off by default)', () => {
  const layer = synthLayer();
  it('per_query_head selection gives one list per query head', () => {
    const sel = kvCompress('starkv', { per_query_head: true }, 20, layer, new KvLayerState());
    expect(sel.granularity).toBe('query_head');
    expect(sel.kept.length).toBe(8);
  });
  it('granularity kv_head gives one list per KV head (native GQA storage)', () => {
    const sel = kvCompress('snapkv', { granularity: 'kv_head' }, 20, layer);
    expect(sel.kept.length).toBe(2);
    expect(sel.kept.every((k) => k.length === 16)).toBe(true);
  });
  it('mi_true_grid uses the given image grid', () => {
    const l2 = { ...synthLayer({ L: 300, spans: [[10, 250]] }), spanGrids: [[4, 60]] as Array<[number, number]> };
    const a = kvCompress('starkv', {}, 20, l2, new KvLayerState()).telemetry.miCur;
    const b = kvCompress('starkv', { mi_true_grid: true }, 20, l2, new KvLayerState()).telemetry.miCur;
    expect(a).not.toEqual(b);
  });
  it('vlcache_layer_budgets: STaR-KV takes VL-Cache sparsity budgets', () => {
    expect(() => kvPrepass('starkv', {}, layer)).toThrow(/no per-layer pre-pass/);
    const layers = [0.5, 1, 2].map((s) => ({ ...layer, queries: layer.queries!.map((x) => x * s) }));
    const gammas = layers.map((l) => kvPrepass('starkv', { vlcache_layer_budgets: true }, l));
    const { budgets } = kvLayerBudgets(gammas, 120, 20);
    expect(budgets.length).toBe(3);
    const sel = kvCompress('starkv', {}, { capTokens: budgets[0] }, layers[0]!, new KvLayerState());
    expect(sel.cap).toBe(budgets[0]);
  });
  it('AEB never changes the kept set', () => {
    const on = kvCompress('starkv', { aeb: true }, 20, layer, new KvLayerState());
    const off = kvCompress('starkv', { aeb: false }, 20, layer, new KvLayerState());
    expect(Array.from(on.kept[0]!)).toEqual(Array.from(off.kept[0]!));
    expect(off.telemetry.temperature).toBeNull();
  });
});

describe('methods without golden vectors', () => {
  it('full keeps everything', () => {
    const sel = kvCompress('full', {}, 10, synthLayer());
    expect(sel.compressed).toBe(false);
    expect(sel.telemetry.branch).toBe('full');
  });
  it('H2O keeps the recent window and the most-attended past slots, per KV head', () => {
    const layer = synthLayer({ spans: [] });
    // make slot 5 a heavy hitter for every query of KV head 0: keys aligned with the queries' mean
    const q = layer.queries!, k = layer.keys;
    for (let j = 0; j < 16; j++) {
      let s = 0;
      for (let h = 0; h < 4; h++) for (let r = 0; r < 120; r++) s += q[(h * 120 + r) * 16 + j]!;
      k[5 * 16 + j] = s / 40;
    }
    const sel = kvCompress('h2o', { debug: true }, 20, layer);
    expect(sel.granularity).toBe('kv_head');
    expect(sel.window).toBe(12); // half of cap 24
    expect(sel.kept.map((x) => x.length)).toEqual([12, 12]);
    expect(Array.from(sel.kept[0]!)).toContain(5);
    // the kept slots are the top accumulated scores among the past
    const acc = sel.telemetry.arrays.accumulated_attention!.data.subarray(0, 120);
    const past = Array.from(acc.subarray(0, 108));
    const thr = [...past].sort((a, b) => b - a)[11]!;
    for (const s of sel.kept[0]!) expect(past[s]!).toBeGreaterThanOrEqual(thr);
  });
  it('H2O carries accumulated attention across calls by source position', () => {
    const st = new KvLayerState();
    const layer = { ...synthLayer({ spans: [] }), slotPositions: Array.from({ length: 120 }, (_, i) => i) };
    const a = kvCompress('h2o', { debug: true }, 50, layer, st);
    const b = kvCompress('h2o', { debug: true }, 50, layer, st);
    const accA = a.telemetry.arrays.accumulated_attention!.data, accB = b.telemetry.arrays.accumulated_attention!.data;
    const kept = new Set([...a.kept[0]!, ...a.kept[1]!, ...Array.from({ length: a.window }, (_, i) => 120 - a.window + i)]);
    for (let s = 0; s < 120; s++) expect(accB[s]!).toBeCloseTo(kept.has(s) ? 2 * accA[s]! : accA[s]!, 4);
  });
  it('AdaKV: per-head budgets sum to about Hkv * B, each head keeps at least the floor', () => {
    const layer = synthLayer({ H: 8, Hkv: 4, L: 200, spans: [] });
    const sel = kvCompress('adakv', { window: 8, debug: true }, 20, layer);
    const B = 40 - 8;
    const counts = sel.kept.map((k) => k.length);
    expect(counts.length).toBe(4);
    expect(Math.abs(counts.reduce((a, b) => a + b, 0) - 4 * B)).toBeLessThanOrEqual(2);
    for (const c of counts) expect(c).toBeGreaterThanOrEqual(Math.floor(B * 0.5));
    const zero = kvCompress('adakv', { window: 8, floor_alpha: 1 }, 20, layer);
    expect(zero.kept.map((k) => k.length)).toEqual([B, B, B, B]); // alpha 1 = uniform SnapKV budgets
  });
});

describe('robustness', () => {
  it('random small layers, budgets and spans: every method returns or throws a JS Error, never crashes', () => {
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const ri = (n: number) => Math.floor(rnd() * n);
    let ok = 0;
    for (let it = 0; it < 300; it++) {
      const L = 1 + ri(40);
      const a = ri(L + 1), b = a + ri(L + 1 - a);
      const spans: Array<[number, number]> = rnd() < 0.3 ? [] : rnd() < 0.5 ? [[a, b]] : [[0, a], [a, b]];
      const layer = synthLayer({ L, spans, seed: it, qRows: Math.max(1, ri(L + 1)) });
      const budget = rnd() < 0.5 ? { percent: rnd() * 120 } : { capTokens: ri(L + 3) };
      for (const m of ALL) {
        const params: KvParams = m === 'vlcache' ? { layer_budget: ri(L + 4) } : {};
        try {
          const s = kvCompress(m, params, budget, layer, new KvLayerState());
          for (const k of s.kept) for (const x of k) expect(x >= 0 && x < s.pastLen).toBe(true);
          ok++;
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect((e as Error).message).toMatch(/^kv: /);
        }
      }
    }
    expect(ok).toBeGreaterThan(1000);
  });
});
