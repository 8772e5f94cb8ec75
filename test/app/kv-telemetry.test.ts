// KV telemetry from the real compression methods (native/kv through app/kv) mapped to the protocol:
// kept positions land in the right frame cells or in the text strip, counts add up to the cap, STaR-KV's
// statistics come through; and the settings panel's defaults are the engine's own.
import { describe, expect, it } from 'vitest';
import { kvCompress, kvDefaults, KvLayerState } from '../../app/kv/addon.ts';
import { METHODS } from '../../app/host/kv-methods.ts';
import { buildKvTelemetry, keptPositionsFromSelection } from '../../app/host/telemetry.ts';
import { decodeBits } from '../../app/protocol.ts';
import { synthLayer } from '../kv/synthetic.ts';

describe('telemetry from real selections', () => {
  it('maps STaR-KV kept slots to frame cells and text tokens', () => {
    // 120 tokens: text 0-9, frame A (5x6) 10-39, text 40-49, frame B (5x6) 50-79, text 80-119
    const layer = synthLayer({ L: 120, spans: [[10, 40], [50, 80]] });
    const state = new KvLayerState();
    const sel = kvCompress('starkv', {}, 25, layer, state);
    expect(sel.compressed).toBe(true);
    const kept = keptPositionsFromSelection(sel, layer.seqLen);
    expect(kept.length).toBe(sel.cap);
    const t = buildKvTelemetry({
      step: 2, method: 'starkv', budgetPercent: 25, logicalLength: 120,
      frames: [{ step: 1, start: 10, end: 40, rows: 5, cols: 6 }, { step: 2, start: 50, end: 80, rows: 5, cols: 6 }],
      layers: [{ layer: 0, cap: sel.cap, keptPositions: kept, stats: sel.telemetry }],
    });
    const L0 = t.layers[0]!;
    expect(t.textTokens).toBe(60);
    expect(L0.kept).toBe(sel.cap);
    expect(L0.keptPerFrame.reduce((a, b) => a + b, 0) + L0.keptText).toBe(sel.cap);
    // every kept position is marked exactly where it lies
    const cellsA = decodeBits(L0.cells[0]!, 30), cellsB = decodeBits(L0.cells[1]!, 30), text = decodeBits(L0.text, 60);
    const textPos = [...Array(120).keys()].filter((p) => p < 10 || (p >= 40 && p < 50) || p >= 80);
    for (let p = 0; p < 120; p++) {
      const isKept = kept.includes(p) ? 1 : 0;
      if (p >= 10 && p < 40) expect(cellsA[p - 10]).toBe(isKept);
      else if (p >= 50 && p < 80) expect(cellsB[p - 50]).toBe(isKept);
      else expect(text[textPos.indexOf(p)]).toBe(isKept);
    }
    // the window (last 8 tokens) is always kept
    for (let p = 112; p < 120; p++) expect(text[textPos.indexOf(p)]).toBe(1);
    expect(L0.starkv).not.toBeNull();
    expect(L0.starkv!.normalizedEntropy).toBeGreaterThan(0);
    expect(L0.starkv!.groupWeights.length).toBe(2);
  });

  it('per-head methods: a token counts as kept when any head keeps it', () => {
    const layer = synthLayer({ L: 120 });
    const sel = kvCompress('snapkv', {}, 25, layer);
    expect(sel.kept.length).toBe(8);
    const kept = keptPositionsFromSelection(sel, layer.seqLen);
    const union = new Set<number>();
    sel.kept.forEach((k) => k.forEach((p) => union.add(p)));
    expect(kept.length).toBe(union.size + (120 - sel.pastLen));
  });

  it('refuses spans that are not rows x cols, and positions outside the context', () => {
    const base = { step: 1, method: 'full' as const, budgetPercent: 100, logicalLength: 50, layers: [] };
    expect(() => buildKvTelemetry({ ...base, frames: [{ step: 1, start: 0, end: 10, rows: 3, cols: 3 }] })).toThrow(/not 3x3/);
    expect(() =>
      buildKvTelemetry({ ...base, frames: [], layers: [{ layer: 0, cap: 1, keptPositions: [77] }] }),
    ).toThrow(/outside 0..50/);
  });
});

describe('settings defaults match the engine', () => {
  it('every parameter the engine reports for a method has the same default in the settings table', () => {
    for (const m of METHODS) {
      const engine = kvDefaults(m.name);
      for (const p of m.params) {
        if (p.name in engine) expect({ method: m.name, param: p.name, value: p.default }).toEqual({ method: m.name, param: p.name, value: engine[p.name] });
      }
    }
  });
});

describe('telemetry from an engine turn report (app/model/episode.ts TurnResult + app/kv/layout.ts)', () => {
  it('places kept cells and kept text tokens using the episode token layout', async () => {
    const { TokenLayout, mapKept } = await import('../../app/kv/layout.ts');
    const { telemetryFromTurn } = await import('../../app/host/turn-telemetry.ts');
    const PAD = 151655;
    const layout = new TokenLayout();
    // turn 1: 3 text, a 2x3 screenshot, 2 text; turn 2: 1 text, a 2x2 screenshot, 4 text
    layout.append([1, 2, 3, ...Array(6).fill(PAD), 4, 5], PAD, [[2, 3]]);
    layout.append([6, ...Array(4).fill(PAD), 7, 8, 9, 10], PAD, [[2, 2]]);
    const keptTokens = [0, 3, 4, 8, 9, 11, 13, 15, 16, 17, 18];
    const keep = mapKept(layout, keptTokens);
    const layerBase = { cap: 11, kept: 11, keep, temperature: 1.1, normalizedEntropy: 0.8, lambda: 0, miGroups: [0.2, 0.3], groupWeights: [0.5, 0.5], stability: [1, 1] };
    const zero = { current: 0, peak: 0 };
    const t = telemetryFromTurn(
      {
        method: 'starkv', budgetPercent: 50, layout: { length: layout.length, frames: layout.frames },
        layers: [{ layer: 0, ...layerBase }, { layer: 1, ...layerBase, temperature: null, normalizedEntropy: null, groupWeights: [] }],
        kvBytes: 100, fullKvBytes: 300, memory: { weights: zero, kv: zero, activations: zero, workspace: zero },
      },
      2,
      [1, 2],
    );
    expect(t.frames).toEqual([{ frame: 0, step: 1, rows: 2, cols: 3 }, { frame: 1, step: 2, rows: 2, cols: 2 }]);
    expect(t.textTokens).toBe(20 - 10);
    const L0 = t.layers[0]!;
    expect(Array.from(decodeBits(L0.cells[0]!, 6))).toEqual([1, 1, 0, 0, 0, 1]); // tokens 3, 4, 8
    expect(Array.from(decodeBits(L0.cells[1]!, 4))).toEqual([0, 1, 0, 1]); // tokens 13, 15
    // text positions: 0 1 2 9 10 11 16 17 18 19 -> kept 0, 9, 11, 16, 17, 18
    expect(Array.from(decodeBits(L0.text, 10))).toEqual([1, 0, 0, 1, 0, 1, 1, 1, 1, 0]);
    expect(L0.keptPerFrame).toEqual([3, 2]);
    expect(L0.starkv).toMatchObject({ temperature: 1.1, groupWeights: [0.5, 0.5] });
    expect(t.layers[1]!.starkv).toBeNull();
  });
});
