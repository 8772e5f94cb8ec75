// Typed wrapper over the native KV compression methods (native/kv via native/binding/kv_binding.cpp).
import { loadAddon } from '../native.ts';

export const KV_METHODS = ['full', 'snapkv', 'pyramidkv', 'h2o', 'adakv', 'vlcache', 'guikv', 'starkv'] as const;
export type KvMethodName = (typeof KV_METHODS)[number];

/** Hyperparameters by their native names (see native/kv/params.cpp); unknown names are an error. */
export type KvParams = Record<string, number | boolean | string>;

/** Budget: cap = int(refLen * percent / 100) tokens per layer (window included), or an absolute cap. */
export interface KvBudget {
  percent?: number;
  capTokens?: number;
  refLen?: number;
}

/** One layer's inputs. Slots are rows of the layer's KV store in position order. */
export interface KvLayer {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  seqLen: number;
  /** post-RoPE keys [numKvHeads][kvCapacity][headDim] */
  keys: Float32Array;
  kvCapacity?: number;
  /** queries of the last qRows slots [numHeads][qRows][headDim] (qRows defaults to seqLen) */
  queries?: Float32Array;
  qRows?: number;
  /** attention-layer inputs of slots [hiddenRow0, hiddenRow0 + hiddenRows): [hiddenRows][hiddenSize] */
  hidden?: Float32Array;
  hiddenRow0?: number;
  hiddenRows?: number;
  hiddenSize?: number;
  /** vision spans [start, end) in slots, oldest first; the last one is the current frame */
  spans?: Array<[number, number]>;
  /** true image grid [rows, cols] of each span (option mi_true_grid) */
  spanGrids?: Array<[number, number]>;
  /** source token index of each slot (H2O carry-over) */
  slotPositions?: number[] | Int32Array | Float64Array;
  /** VL-Cache: first slot after the last image; default spans[last][1] */
  lastVisionIndex?: number;
}

export interface KvDebugArray {
  shape: number[];
  data: Float32Array;
}

export interface KvTelemetry {
  temperature: number | null;
  entropy: number | null;
  maxEntropy: number | null;
  normalizedEntropy: number | null;
  lambdaEff: number | null;
  miCur: number[];
  miEma: number[];
  groupWeights: number[];
  stability: number[];
  temporalStep: number;
  profileStep: number;
  layerBudget: number;
  branch: string;
  arrays: Record<string, KvDebugArray>;
}

export type KvGranularity = 'shared' | 'query_head' | 'kv_head';

export interface KvSelection {
  /** false: nothing evicted (every slot stays) */
  compressed: boolean;
  granularity: KvGranularity;
  cap: number;
  window: number;
  pastLen: number;
  kKeep: number;
  /** kept past slots, ascending: one list (shared), per query head, or per KV head */
  kept: Int32Array[];
  /** the same lists in descending-score order (the reference's gather order) */
  gatherOrder: Int32Array[];
  telemetry: KvTelemetry;
}

export interface KvStateSnapshot {
  calls: number;
  temporalStep: number;
  profileStep: number;
  miEma: number[];
  patternEma: number[];
  patternShape: number[];
  temperature: number | null;
}

interface NativeState {
  reset(): void;
  snapshot(): KvStateSnapshot;
}

/** Per-layer method state (EMAs, counters): one per layer per episode; reset() between episodes. */
export class KvLayerState {
  readonly native: NativeState;
  constructor() {
    const Ctor = loadAddon().KvLayerState as new () => NativeState;
    this.native = new Ctor();
  }
  reset(): void {
    this.native.reset();
  }
  snapshot(): KvStateSnapshot {
    return this.native.snapshot();
  }
}

export function kvMethods(): string[] {
  return loadAddon().kvMethods() as string[];
}

export function kvDefaults(method: KvMethodName): Record<string, number | boolean | string> {
  return loadAddon().kvDefaults(method);
}

/** Scores one layer and selects the slots to keep; updates `state` when given. Throws on bad input. */
export function kvCompress(
  method: KvMethodName,
  params: KvParams,
  budget: KvBudget | number,
  layer: KvLayer,
  state?: KvLayerState,
): KvSelection {
  return loadAddon().kvCompress(method, params, budget, layer, state?.native);
}

/** Per-layer statistic for budget allocation (VL-Cache post-vision sparsity gamma). */
export function kvPrepass(method: KvMethodName, params: KvParams, layer: KvLayer): number {
  return loadAddon().kvPrepass(method, params, layer);
}

/** VL-Cache layer budgets from every layer's gamma. */
export function kvLayerBudgets(
  gammas: number[],
  seqLen: number,
  budget: KvBudget | number,
  params: KvParams = {},
): { budgets: number[]; betas: number[] } {
  return loadAddon().kvLayerBudgets(gammas, seqLen, budget, params);
}
