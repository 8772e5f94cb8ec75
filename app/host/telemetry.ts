// Turns what the engine's compression reports per layer (kept slots, their source positions, STaR-KV's
// statistics) into the protocol's KV telemetry: kept positions mapped to (frame, grid row, grid column)
// of each screenshot in the context, or to the text strip. Pure; a native backend calls it per step.
import { encodeBits, parseTelemetry, type KvMethod, type KvTelemetry } from '../protocol.ts';

/** One screenshot's token span in logical positions [start, end), laid out rows x cols (row-major). */
export interface FrameSpan {
  /** Agent step whose screenshot this is. */
  step: number;
  start: number;
  end: number;
  rows: number;
  cols: number;
}

/** The subset of app/kv/addon.ts KvTelemetry this needs (kept structural to avoid loading the addon). */
export interface EngineLayerStats {
  temperature: number | null;
  normalizedEntropy: number | null;
  lambdaEff: number | null;
  miCur: number[];
  miEma: number[];
  groupWeights: number[];
  stability: number[];
}

export interface LayerInput {
  layer: number;
  cap: number;
  /** Logical positions of every token this layer holds after compression (window included), any order. */
  keptPositions: ArrayLike<number>;
  stats?: EngineLayerStats | null;
}

export interface StepInput {
  step: number;
  method: KvMethod;
  budgetPercent: number | null;
  capTokens?: number | null;
  logicalLength: number;
  frames: FrameSpan[];
  layers: LayerInput[];
  kvBytes?: number | null;
  kvFullBytes?: number | null;
}

/**
 * Kept source positions of one layer from an engine selection (app/kv KvSelection): the kept past slots
 * (the union over heads for per-head methods) plus the protected window, mapped through slotPositions.
 */
export function keptPositionsFromSelection(
  sel: { compressed: boolean; pastLen: number; kept: ArrayLike<number>[] },
  seqLen: number,
  slotPositions?: ArrayLike<number>,
): number[] {
  const slots = new Set<number>();
  if (!sel.compressed) for (let i = 0; i < seqLen; i++) slots.add(i);
  else {
    for (const list of sel.kept) for (let i = 0; i < list.length; i++) slots.add(list[i]!);
    for (let i = sel.pastLen; i < seqLen; i++) slots.add(i);
  }
  const pos = (s: number) => (slotPositions ? slotPositions[s]! : s);
  return [...slots].map(pos).sort((a, b) => a - b);
}

/** Builds and validates one step's telemetry; throws on inconsistent input (a span that is not rows x cols...). */
export function buildKvTelemetry(input: StepInput): KvTelemetry {
  const L = input.logicalLength;
  const frames = [...input.frames].sort((a, b) => a.start - b.start);
  for (const f of frames) {
    if (f.end - f.start !== f.rows * f.cols) throw new Error(`frame of step ${f.step}: span ${f.start}..${f.end} holds ${f.end - f.start} tokens, not ${f.rows}x${f.cols}`);
    if (f.start < 0 || f.end > L) throw new Error(`frame of step ${f.step}: span ${f.start}..${f.end} lies outside 0..${L}`);
  }
  // frameOf[p] = frame index or -1 (text); textIndex[p] = index among text tokens
  const frameOf = new Int32Array(L).fill(-1);
  frames.forEach((f, i) => frameOf.fill(i, f.start, f.end));
  const textIndex = new Int32Array(L);
  let textTokens = 0;
  for (let p = 0; p < L; p++) textIndex[p] = frameOf[p] === -1 ? textTokens++ : -1;

  const layers = input.layers.map((l) => {
    const cells = frames.map((f) => new Uint8Array(f.rows * f.cols));
    const text = new Uint8Array(textTokens);
    const keptPerFrame = frames.map(() => 0);
    let keptText = 0;
    let kept = 0;
    const seen = new Set<number>();
    for (let i = 0; i < l.keptPositions.length; i++) {
      const p = l.keptPositions[i]!;
      if (!Number.isInteger(p) || p < 0 || p >= L) throw new Error(`layer ${l.layer}: kept position ${p} outside 0..${L}`);
      if (seen.has(p)) continue;
      seen.add(p);
      kept++;
      const fi = frameOf[p]!;
      if (fi >= 0) {
        cells[fi]![p - frames[fi]!.start] = 1;
        keptPerFrame[fi]!++;
      } else {
        text[textIndex[p]!] = 1;
        keptText++;
      }
    }
    const st = l.stats;
    return {
      layer: l.layer,
      cap: l.cap,
      kept,
      keptPerFrame,
      keptText,
      cells: cells.map((c) => encodeBits(c)),
      text: encodeBits(text),
      starkv: st
        ? { temperature: st.temperature, normalizedEntropy: st.normalizedEntropy, lambdaEff: st.lambdaEff, miCur: [...st.miCur], miEma: [...st.miEma], groupWeights: [...st.groupWeights], stability: [...st.stability] }
        : null,
    };
  });
  const out = {
    step: input.step,
    method: input.method,
    budgetPercent: input.budgetPercent,
    capTokens: input.capTokens ?? null,
    logicalLength: L,
    textTokens,
    frames: frames.map((f, i) => ({ frame: i, step: f.step, rows: f.rows, cols: f.cols })),
    layers,
    kvBytes: input.kvBytes ?? null,
    kvFullBytes: input.kvFullBytes ?? null,
  };
  const r = parseTelemetry(out);
  if (!r.ok) throw new Error(`telemetry does not fit the protocol: ${r.reason}`);
  return r.value;
}
