// Reads a KV golden directory (schema of ../shared/golden/kv/): validates every file it uses with zod
// and turns the nested JSON tensors into the flat float32 layer views the native methods take.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { KvLayer } from './addon.ts';
import {
  episodeSchema,
  inputsSchema,
  perHeadFileSchema,
  starkvSingleSchema,
  vlcacheSchema,
  type EpisodeFile,
  type GoldenInputs,
  type PerHeadFile,
  type StarkvSingleFile,
  type VlcacheFile,
} from './golden-schema.ts';

/** A golden file that is missing, unreadable or does not match the schema; names file and field. */
export class GoldenError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'GoldenError';
  }
}

export interface GoldenDir {
  dir: string;
  /** input sets by set id (file inputs_<id>.json) */
  inputs: Map<string, GoldenInputs>;
  starkvSingle?: StarkvSingleFile;
  episode?: EpisodeFile;
  snapkv?: PerHeadFile;
  pyramidkv?: PerHeadFile;
  guikv?: PerHeadFile;
  vlcache?: VlcacheFile;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new GoldenError(path.basename(file), `cannot read JSON: ${(e as Error).message}`);
  }
}

export function parseWith<S extends z.ZodType>(schema: S, json: unknown, file: string): z.infer<S> {
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new GoldenError(file, `field '${issue.path.join('.') || '(root)'}': ${issue.message}`);
  }
  return r.data;
}

function optional<S extends z.ZodType>(dir: string, name: string, schema: S): z.infer<S> | undefined {
  const file = path.join(dir, name);
  return existsSync(file) ? parseWith(schema, readJson(file), name) : undefined;
}

/** Loads and validates every file of the directory that replay understands. */
export function readGoldenDir(dir: string): GoldenDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new GoldenError(dir, 'not a directory');
  const inputs = new Map<string, GoldenInputs>();
  for (const name of readdirSync(dir).sort()) {
    const m = /^inputs_(.+)\.json$/.exec(name);
    if (!m) continue;
    const parsed = parseWith(inputsSchema, readJson(path.join(dir, name)), name);
    checkInputs(parsed, name);
    inputs.set(parsed.set_id ?? m[1]!, parsed);
  }
  const g: GoldenDir = {
    dir,
    inputs,
    starkvSingle: optional(dir, 'starkv_single_step.json', starkvSingleSchema),
    episode: optional(dir, 'starkv_episode.json', episodeSchema),
    snapkv: optional(dir, 'snapkv.json', perHeadFileSchema),
    pyramidkv: optional(dir, 'pyramidkv.json', perHeadFileSchema),
    guikv: optional(dir, 'guikv.json', perHeadFileSchema),
    vlcache: optional(dir, 'vlcache.json', vlcacheSchema),
  };
  if (!g.starkvSingle && !g.episode && !g.snapkv && !g.pyramidkv && !g.guikv && !g.vlcache)
    throw new GoldenError(dir, 'no golden method files (starkv_single_step.json, snapkv.json, ...) found');
  return g;
}

/** Flattens a nested numeric array of the expected shape into float32 (JSON double -> float32). */
export function flatten(x: unknown, shape: number[], file: string, field: string): Float32Array {
  const total = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(total);
  let k = 0;
  const walk = (v: unknown, depth: number, where: string): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new GoldenError(file, `field '${where}' must be a finite number`);
      out[k++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth])
      throw new GoldenError(file, `field '${where}' must have length ${shape[depth]} (got ${Array.isArray(v) ? v.length : typeof v})`);
    for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${where}.${i}`);
  };
  walk(x, 0, field);
  return out;
}

function checkSpans(starts: number[], ends: number[], L: number, file: string, field: string): void {
  if (starts.length !== ends.length)
    throw new GoldenError(file, `field '${field}': vision_start_idx has ${starts.length} entries, vision_end_idx ${ends.length}`);
  starts.forEach((s, i) => {
    if (ends[i]! < s || ends[i]! > L)
      throw new GoldenError(file, `field '${field}.${i}': span [${s}, ${ends[i]}) is not inside [0, ${L}]`);
  });
}

function checkInputs(g: GoldenInputs, file: string): void {
  const { num_heads: H, num_kv_heads: Hkv, seq_len: L } = g.dims;
  if (H % Hkv !== 0) throw new GoldenError(file, `field 'dims': num_heads ${H} is not a multiple of num_kv_heads ${Hkv}`);
  if (g.layout.seq_len !== undefined && g.layout.seq_len !== L)
    throw new GoldenError(file, `field 'layout.seq_len': ${g.layout.seq_len} differs from dims.seq_len ${L}`);
  checkSpans(g.layout.vision_start_idx, g.layout.vision_end_idx, L, file, 'layout');
}

const spansOf = (starts: number[], ends: number[]): Array<[number, number]> => starts.map((s, i) => [s, ends[i]!]);

/** The layer view of an input set: all L query rows, hidden rows for every slot. */
export function layerFromInputs(g: GoldenInputs, file: string, queryScale = 1): KvLayer {
  const { num_heads: H, num_kv_heads: Hkv, head_dim: d, hidden_size: D, seq_len: L } = g.dims;
  const queries = flatten(g.query_states, [H, L, d], file, 'query_states');
  if (queryScale !== 1) for (let i = 0; i < queries.length; i++) queries[i] = Math.fround(queries[i]! * queryScale);
  return {
    numHeads: H,
    numKvHeads: Hkv,
    headDim: d,
    seqLen: L,
    keys: flatten(g.key_states_kv_heads, [Hkv, L, d], file, 'key_states_kv_heads'),
    queries,
    qRows: L,
    hidden: flatten(g.hidden_states, [L, D], file, 'hidden_states'),
    hiddenSize: D,
    hiddenRow0: 0,
    hiddenRows: L,
    spans: spansOf(g.layout.vision_start_idx, g.layout.vision_end_idx),
    spanGrids: g.layout.span_grids,
  };
}

/** Replaces a layer's spans (GUI-KV cases may carry their own vision_start_idx / vision_end_idx). */
export function withSpans(layer: KvLayer, starts: number[] | undefined, ends: number[] | undefined, file: string): KvLayer {
  if (!starts || !ends) return layer;
  checkSpans(starts, ends, layer.seqLen, file, 'hyperparameters.vision_start_idx');
  return { ...layer, spans: spansOf(starts, ends), spanGrids: undefined };
}

/** Bank tensors of the episode, flattened once. */
export interface EpisodeBank {
  rows: number;
  keys: Float32Array; // [Hkv][rows][d]
  hidden: Float32Array; // [rows][D]
}

export function episodeBank(e: EpisodeFile, file: string): EpisodeBank {
  const { num_kv_heads: Hkv, head_dim: d, hidden_size: D } = e.dims;
  const rows = e.bank.hidden_states.length;
  return {
    rows,
    keys: flatten(e.bank.key_states_kv_heads, [Hkv, rows, d], file, 'bank.key_states_kv_heads'),
    hidden: flatten(e.bank.hidden_states, [rows, D], file, 'bank.hidden_states'),
  };
}

/** The layer view of one episode step: bank rows gathered; queries zero except the recorded tail. */
export function layerFromEpisodeStep(e: EpisodeFile, bank: EpisodeBank, stepIndex: number, minQRows: number, file: string): KvLayer {
  const st = e.steps[stepIndex]!;
  const where = `steps.${stepIndex}`;
  const { num_heads: H, num_kv_heads: Hkv, head_dim: d, hidden_size: D } = e.dims;
  const L = st.seq_len;
  if (st.rows.length !== L) throw new GoldenError(file, `field '${where}.rows' has ${st.rows.length} entries for seq_len ${L}`);
  const bad = st.rows.findIndex((r) => r >= bank.rows);
  if (bad >= 0) throw new GoldenError(file, `field '${where}.rows.${bad}' = ${st.rows[bad]} is outside the bank (${bank.rows} rows)`);
  checkSpans(st.vision_start_idx, st.vision_end_idx, L, file, where);
  const tail = st.query_tail[0]?.length ?? 0;
  if (st.query_tail_len !== undefined && st.query_tail_len !== tail)
    throw new GoldenError(file, `field '${where}.query_tail_len' = ${st.query_tail_len} but query_tail has ${tail} rows`);
  if (tail > L) throw new GoldenError(file, `field '${where}.query_tail' has more rows than seq_len`);
  const qTail = flatten(st.query_tail, [H, tail, d], file, `${where}.query_tail`);
  const qRows = Math.min(L, Math.max(tail, minQRows));
  const queries = new Float32Array(H * qRows * d); // zero rows before the tail
  for (let h = 0; h < H; h++) queries.set(qTail.subarray(h * tail * d, (h + 1) * tail * d), (h * qRows + qRows - tail) * d);
  const keys = new Float32Array(Hkv * L * d);
  for (let g = 0; g < Hkv; g++)
    for (let t = 0; t < L; t++) keys.set(bank.keys.subarray((g * bank.rows + st.rows[t]!) * d, (g * bank.rows + st.rows[t]! + 1) * d), (g * L + t) * d);
  const hidden = new Float32Array(L * D);
  for (let t = 0; t < L; t++) hidden.set(bank.hidden.subarray(st.rows[t]! * D, (st.rows[t]! + 1) * D), t * D);
  return {
    numHeads: H,
    numKvHeads: Hkv,
    headDim: d,
    seqLen: L,
    keys,
    queries,
    qRows,
    hidden,
    hiddenSize: D,
    hiddenRow0: 0,
    hiddenRows: L,
    spans: spansOf(st.vision_start_idx, st.vision_end_idx),
    spanGrids: st.span_grids,
  };
}
