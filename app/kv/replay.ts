// Replays a KV golden directory through the native methods: computes every kept set from the
// recorded inputs and hyperparameters (never from the recorded outputs).
import { kvCompress, kvLayerBudgets, kvPrepass, KvLayerState, type KvLayer, type KvMethodName, type KvParams, type KvSelection } from './addon.ts';
import {
  episodeBank,
  GoldenError,
  layerFromEpisodeStep,
  layerFromInputs,
  withSpans,
  type GoldenDir,
} from './golden-reader.ts';
import type { GoldenInputs, PerHeadFile } from './golden-schema.ts';
import { guiParams, starkvParams } from './reference-params.ts';

export const REPLAY_CATEGORIES = ['starkv', 'starkv-episode', 'snapkv', 'pyramidkv', 'guikv', 'vlcache'] as const;
export type ReplayCategory = (typeof REPLAY_CATEGORIES)[number];

export interface ReplayResult {
  key: string;
  category: ReplayCategory;
  /** shared list (STaR-KV) or one list per query head; ascending, window slots not listed */
  kept: number[] | number[][];
  selection: KvSelection;
  /** VL-Cache: this layer's gamma, beta and budget */
  vlcache?: { gamma: number; beta: number; layerBudget: number };
}

export interface ReplayReport {
  results: ReplayResult[];
  errors: Array<{ key: string; message: string }>;
}

export interface ReplayOptions {
  /** record float intermediates (telemetry.arrays) */
  debug?: boolean;
  only?: ReplayCategory[];
}

function sharedList(sel: KvSelection, L: number): number[] {
  if (!sel.compressed) return Array.from({ length: L }, (_, i) => i); // nothing evicted
  return Array.from(sel.kept[0]!);
}

function perHeadLists(sel: KvSelection, layer: KvLayer): number[][] {
  if (!sel.compressed) return Array.from({ length: layer.numHeads }, () => Array.from({ length: layer.seqLen }, (_, i) => i));
  if (sel.granularity !== 'query_head') throw new Error(`expected per-query-head lists, got ${sel.granularity}`);
  return sel.kept.map((k) => Array.from(k));
}

function budgetOf(percent: number | string, file: string, field: string): number {
  const b = typeof percent === 'number' ? percent : Number(percent);
  if (!Number.isFinite(b) || b < 0) throw new GoldenError(file, `field '${field}': budget '${percent}' is not a percent`);
  return b;
}

export function replayGolden(g: GoldenDir, opts: ReplayOptions = {}): ReplayReport {
  const report: ReplayReport = { results: [], errors: [] };
  const want = (c: ReplayCategory) => !opts.only || opts.only.includes(c);
  const dbg: KvParams = opts.debug ? { debug: true } : {};
  const layers = new Map<string, KvLayer>();
  const inputSet = (id: string, file: string, field: string): { set: GoldenInputs; layer: KvLayer } => {
    const set = g.inputs.get(id);
    if (!set) throw new GoldenError(file, `field '${field}': input set '${id}' has no inputs_${id}.json`);
    let layer = layers.get(id);
    if (!layer) layers.set(id, (layer = layerFromInputs(set, `inputs_${id}.json`)));
    return { set, layer };
  };
  const attempt = (key: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      report.errors.push({ key, message: (e as Error).message });
    }
  };

  if (g.starkvSingle && want('starkv')) {
    const f = g.starkvSingle;
    f.cases.forEach((c, i) =>
      attempt(c.case_id, () => {
        const { layer } = inputSet(c.input_set, 'starkv_single_step.json', `cases.${i}.input_set`);
        const params = { ...starkvParams(f.hyperparameters), ...starkvParams(c.hyperparameters), ...dbg };
        const sel = kvCompress('starkv', params, { percent: c.kv_cache_budget_percent }, layer, new KvLayerState());
        report.results.push({ key: c.case_id, category: 'starkv', kept: sharedList(sel, layer.seqLen), selection: sel });
      }),
    );
  }

  if (g.episode && want('starkv-episode')) replayEpisode(g, dbg, report);

  const perHead: Array<[ReplayCategory, KvMethodName, PerHeadFile | undefined, string]> = [
    ['snapkv', 'snapkv', g.snapkv, 'snapkv.json'],
    ['pyramidkv', 'pyramidkv', g.pyramidkv, 'pyramidkv.json'],
    ['guikv', 'guikv', g.guikv, 'guikv.json'],
  ];
  for (const [cat, method, f, file] of perHead) {
    if (!f || !want(cat)) continue;
    f.cases.forEach((c, i) =>
      attempt(c.case_id, () => {
        let { layer } = inputSet(c.input_set, file, `cases.${i}.input_set`);
        if (method === 'guikv') layer = withSpans(layer, c.hyperparameters?.vision_start_idx, c.hyperparameters?.vision_end_idx, file);
        const params = { ...guiParams(f.hyperparameters, c.hyperparameters), ...dbg };
        const sel = kvCompress(method, params, { percent: c.kv_cache_budget_percent }, layer);
        report.results.push({ key: c.case_id, category: cat, kept: perHeadLists(sel, layer), selection: sel });
      }),
    );
  }

  if (g.vlcache && want('vlcache')) replayVlcache(g, dbg, report, attempt, inputSet);
  return report;
}

function replayEpisode(g: GoldenDir, dbg: KvParams, report: ReplayReport): void {
  const e = g.episode!;
  const file = 'starkv_episode.json';
  const params = { ...starkvParams(e.hyperparameters), ...dbg };
  const window = typeof params.window === 'number' ? params.window : 8;
  let bank: ReturnType<typeof episodeBank>;
  try {
    bank = episodeBank(e, file);
  } catch (err) {
    report.errors.push({ key: 'starkv_episode', message: (err as Error).message });
    return;
  }
  const stepLayers = new Map<number, KvLayer>();
  const budgets: string[] = [];
  for (const st of e.steps) for (const b of Object.keys(st.per_budget)) if (!budgets.includes(b)) budgets.push(b);
  for (const b of budgets) {
    // one attention-layer object per budget, never reset across the steps (as in the reference run)
    const state = new KvLayerState();
    let broken: string | undefined;
    e.steps.forEach((st, i) => {
      const key = `starkv_episode_s${st.step}_b${b}`;
      if (broken) {
        if (b in st.per_budget) report.errors.push({ key, message: `not run: ${broken}` });
        return;
      }
      try {
        const percent = budgetOf(b, file, `steps.${i}.per_budget`);
        let layer = stepLayers.get(i);
        if (!layer) stepLayers.set(i, (layer = layerFromEpisodeStep(e, bank, i, window, file)));
        const sel = kvCompress('starkv', params, { percent }, layer, state);
        if (b in st.per_budget)
          report.results.push({ key, category: 'starkv-episode', kept: sharedList(sel, layer.seqLen), selection: sel });
      } catch (err) {
        broken = `an earlier step failed (${(err as Error).message})`; // later steps depend on the state
        report.errors.push({ key, message: (err as Error).message });
      }
    });
  }
}

function replayVlcache(
  g: GoldenDir,
  dbg: KvParams,
  report: ReplayReport,
  attempt: (k: string, fn: () => void) => void,
  inputSet: (id: string, file: string, field: string) => { set: GoldenInputs; layer: KvLayer },
): void {
  const f = g.vlcache!;
  const file = 'vlcache.json';
  const h = f.hyperparameters ?? {};
  const params: KvParams = { ...dbg };
  if (h.kernel_size !== undefined) params.kernel = Math.trunc(h.kernel_size);
  if (h.pooling !== undefined) params.pooling = h.pooling;
  if (h.sparsity_threshold !== undefined) params.sparsity_threshold = h.sparsity_threshold;
  if (h.beta_clamp) [params.beta_min, params.beta_max] = h.beta_clamp;
  f.cases.forEach((c, i) =>
    attempt(`${c.case_id} (all layers)`, () => {
      const { set } = inputSet(c.input_set, file, `cases.${i}.input_set`);
      const nl = h.num_hidden_layers ?? c.query_scales?.length ?? h.query_scales_per_layer?.length ?? c.layers.length;
      const scaleOf = (l: number): number => {
        const s = c.layers.find((x) => x.layer_idx === l)?.query_scale ?? c.query_scales?.[l] ?? h.query_scales_per_layer?.[l];
        if (s === undefined) throw new GoldenError(file, `field 'cases.${i}': no query scale for layer ${l}`);
        return s;
      };
      const lvi = c.last_vision_index ?? set.layout.vision_end_idx.at(-1);
      if (lvi === undefined) throw new GoldenError(file, `field 'cases.${i}': input set has no image (no last_vision_index)`);
      const model: KvLayer[] = [];
      for (let l = 0; l < nl; l++)
        model.push({ ...layerFromInputs(set, `inputs_${c.input_set}.json`, scaleOf(l)), lastVisionIndex: lvi });
      const gammas = model.map((layer) => kvPrepass('vlcache', params, layer));
      const { budgets, betas } = kvLayerBudgets(gammas, set.dims.seq_len, { percent: c.kv_cache_budget_percent }, params);
      c.layers.forEach((lr) => {
        if (lr.error !== undefined) return; // the reference raised on this layer: no kept set
        const key = `${c.case_id}_layer${lr.layer_idx}`;
        attempt(key, () => {
          const layer = model[lr.layer_idx];
          if (!layer) throw new GoldenError(file, `field 'cases.${i}.layers': layer_idx ${lr.layer_idx} >= ${nl} layers`);
          const sel = kvCompress('vlcache', { ...params, layer_budget: budgets[lr.layer_idx]! }, { percent: c.kv_cache_budget_percent }, layer);
          report.results.push({
            key,
            category: 'vlcache',
            kept: perHeadLists(sel, layer),
            selection: sel,
            vlcache: { gamma: gammas[lr.layer_idx]!, beta: betas[lr.layer_idx]!, layerBudget: budgets[lr.layer_idx]! },
          });
        });
      });
    }),
  );
}

/** The `--json` object: key -> kept list(s). */
export function replayMap(r: ReplayReport): Record<string, number[] | number[][]> {
  const out: Record<string, number[] | number[][]> = {};
  for (const x of r.results) out[x.key] = x.kept;
  return out;
}
