// The engine's per-turn report of a persistent episode (app/model/episode.ts TurnResult, plus the token
// layout the kept positions refer to) turned into the protocol's KV telemetry. Structural types only, so
// the host does not load the engine to know its shapes.
import { encodeBits, parseTelemetry, type KvMethod, type KvTelemetry } from '../protocol.ts';
import type { EngineMemory } from '../model/engine.ts';

export interface EngineTurnLayer {
  layer: number;
  cap: number;
  kept: number;
  keep: { frames: Array<{ frame: number; rows: number; cols: number; kept: Uint8Array; keptCount: number }>; text: number[] };
  temperature: number | null;
  normalizedEntropy: number | null;
  lambda: number | null;
  /** MI per KV group of this turn; absent from reports made before the engine's MI reached the app. */
  miCur?: number[];
  miGroups: number[];
  groupWeights: number[];
  stability: number[];
}

export interface EngineTurn {
  method: KvMethod;
  budgetPercent: number | null;
  capTokens?: number | null;
  /** Where the episode's tokens came from (app/kv/layout.ts TokenLayout): needed to place kept text tokens. */
  layout: { length: number; frames: Array<{ frame: number; start: number; rows: number; cols: number }> };
  layers: EngineTurnLayer[];
  kvBytes: number;
  fullKvBytes: number;
  memory: EngineMemory;
}

/** `frameSteps[f]` = the agent step whose screenshot frame f is. */
export function telemetryFromTurn(turn: EngineTurn, step: number, frameSteps: number[]): KvTelemetry {
  const L = turn.layout.length;
  const frames = turn.layout.frames;
  // rank of every text position among text positions
  const isFrame = new Uint8Array(L);
  for (const f of frames) isFrame.fill(1, f.start, Math.min(L, f.start + f.rows * f.cols));
  const rank = new Int32Array(L).fill(-1);
  let textTokens = 0;
  for (let p = 0; p < L; p++) if (!isFrame[p]) rank[p] = textTokens++;
  const stats = (l: EngineTurnLayer) =>
    l.temperature === null && l.normalizedEntropy === null && !l.groupWeights.length
      ? null
      : { temperature: l.temperature, normalizedEntropy: l.normalizedEntropy, lambdaEff: l.lambda, miCur: [...(l.miCur ?? [])], miEma: [...l.miGroups], groupWeights: [...l.groupWeights], stability: [...l.stability] };
  const layers = turn.layers.map((l) => {
    if (l.keep.frames.length !== frames.length) throw new Error(`layer ${l.layer} reports ${l.keep.frames.length} frames, the layout ${frames.length}`);
    const text = new Uint8Array(textTokens);
    let keptText = 0;
    for (const p of l.keep.text) {
      const r = p >= 0 && p < L ? rank[p]! : -1;
      if (r < 0) throw new Error(`layer ${l.layer}: kept text token ${p} is not a text position`);
      if (!text[r]) (text[r] = 1), keptText++;
    }
    return {
      layer: l.layer,
      cap: l.cap,
      kept: l.kept,
      keptPerFrame: l.keep.frames.map((f) => f.keptCount),
      keptText,
      cells: l.keep.frames.map((f) => encodeBits(f.kept)),
      text: encodeBits(text),
      starkv: stats(l),
    };
  });
  const out = {
    step,
    method: turn.method,
    budgetPercent: turn.budgetPercent,
    capTokens: turn.capTokens ?? null,
    logicalLength: L,
    textTokens,
    frames: frames.map((f, i) => ({ frame: i, step: frameSteps[i] ?? -1, rows: f.rows, cols: f.cols })),
    layers,
    kvBytes: turn.kvBytes,
    kvFullBytes: turn.fullKvBytes,
  };
  if (out.frames.some((f) => f.step < 0)) throw new Error('a frame of the cache does not belong to a known step');
  const r = parseTelemetry(out);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}
