// The compression methods the settings panel offers, with each method's hyperparameters by their native
// names (native/kv/params.cpp), defaults of the reference code (shared/spec/kv-compression.md §2.4, §3.3,
// §4.4, §5) and ranges. Pure data, sent to the UI in the hello event. test/app checks the defaults against
// the engine's own kvDefaults().
import type { KvMethod, MethodInfo, MethodParam, ParamValue } from '../protocol.ts';

const int = (name: string, label: string, def: number, min: number, max: number, help: string): MethodParam => ({ name, label, kind: 'int', default: def, min, max, step: 1, help });
const num = (name: string, label: string, def: number, min: number, max: number, step: number, help: string): MethodParam => ({ name, label, kind: 'float', default: def, min, max, step, help });
const bool = (name: string, label: string, def: boolean, help: string): MethodParam => ({ name, label, kind: 'bool', default: def, help });
const choice = (name: string, label: string, def: string, choices: string[], help: string): MethodParam => ({ name, label, kind: 'choice', default: def, choices, help });

const window = (def = 8) => int('window', 'Observation window', def, 1, 512, 'Last tokens whose queries score the past; always kept.');
const kernel = (def = 5) => int('kernel', 'Pooling kernel', def, 1, 65, 'Width of the 1-D pooling over scores.');
const pooling = (def = 'avgpool') => choice('pooling', 'Pooling', def, ['avgpool', 'maxpool'], 'How neighbouring scores are pooled.');
const alpha = () => num('alpha', 'Saliency boost α', 2, 0, 20, 0.1, 'Weight of the current screenshot\'s hidden-state saliency (0 turns it off).');
const tSal = () => num('saliency_temperature', 'Saliency temperature', 3.5, 0.1, 20, 0.1, 'Softmax temperature of the saliency z-scores.');

export const METHODS: MethodInfo[] = [
  { name: 'starkv', label: 'STaR-KV', summary: 'SnapKV scores with spatial saliency, an online MI prior per KV group, a temporal stability discount and entropy sharpening; one token set per layer.', params: [
    window(), kernel(), pooling(), alpha(), tSal(),
    num('lambda', 'MI prior λ', 0.5, 0, 1, 0.05, 'Strength of the MI group prior once ramped in.'),
    int('profile_steps', 'Profiling steps', 5, -1, 1000, 'Steps before the MI prior ramps in (≤ 0 disables the prior).'),
    num('mi_decay', 'MI EMA decay', 0.9, 0, 0.9999, 0.01, 'EMA decay of the per-group mutual information.'),
    num('mi_tau', 'MI softmax τ', 1, 0.01, 100, 0.1, 'Temperature of the group-weight softmax.'),
    int('lambda_ramp_steps', 'λ ramp steps', 10, 0, 1000, 'Steps over which λ ramps from 0 to its value.'),
    bool('temporal', 'Temporal discount', true, 'Discount older screenshots by their age and the group\'s stability.'),
    num('temporal_delta', 'Temporal δ', 0.1, 0, 10, 0.01, 'Decay rate per frame of age.'),
    num('temporal_rho', 'Pattern EMA ρ', 0.9, 0, 0.9999, 0.01, 'EMA of each group\'s attention pattern.'),
    num('temporal_eps', 'Stability floor ε', 0, 0, 1, 0.01, 'Lower bound of the stability factor.'),
    num('temporal_discount_min', 'Discount floor D_min', 0, 0, 1, 0.01, 'Smallest discount an old frame can get.'),
    int('temporal_warmup', 'Temporal warm-up', 0, 0, 1000, 'Calls before the temporal discount applies.'),
    bool('aeb', 'Entropy sharpening (AEB)', true, 'Per-layer temperature from the normalised entropy of the scores.'),
    num('aeb_min', 'AEB T_min', 0.75, 0.05, 10, 0.05, 'Temperature at zero entropy.'),
    num('aeb_max', 'AEB T_max', 1.25, 0.05, 10, 0.05, 'Temperature at maximal entropy.'),
    num('aeb_smooth', 'AEB smoothing', 0, 0, 1, 0.05, 'EMA smoothing of the temperature across steps.'),
    bool('mi_true_grid', 'MI on the true image grid', false, 'Beyond the reference: use each screenshot\'s real rows x columns for MI.'),
    bool('per_query_head', 'Per-query-head selection', false, 'Beyond the reference: one token set per query head.'),
    bool('vlcache_layer_budgets', 'VL-Cache layer budgets', false, 'Beyond the reference: split the budget over layers by sparsity.'),
  ] },
  { name: 'guikv', label: 'GUI-KV', summary: 'SnapKV with spatial saliency and a QR-subspace temporal redundancy mask, per query head.', params: [
    window(), kernel(), pooling(), alpha(), tSal(),
    int('qr_rank', 'QR rank', 32, 1, 512, 'Rank of the current frame\'s key subspace.'),
  ] },
  { name: 'snapkv', label: 'SnapKV', summary: 'Attention of the last window of queries, pooled; top tokens per head.', params: [window(), kernel(), pooling()] },
  { name: 'pyramidkv', label: 'PyramidKV', summary: 'SnapKV scores with budgets that shrink linearly with depth.', params: [
    window(), kernel(), pooling(),
    num('pyramid_beta', 'Pyramid β', 20, 1, 1000, 1, 'Ratio between the largest and smallest layer budget.'),
  ] },
  { name: 'adakv', label: 'AdaKV', summary: 'SnapKV scores with budgets adapted across KV heads.', params: [
    window(32), kernel(7), pooling('maxpool'),
    num('floor_alpha', 'Floor α', 0.5, 0, 1, 0.05, 'Share of the budget every head is guaranteed.'),
  ] },
  { name: 'h2o', label: 'H2O', summary: 'Heavy hitters by accumulated attention plus the most recent tokens.', params: [
    num('h2o_recent_fraction', 'Recent fraction', 0.5, 0, 1, 0.05, 'Share of the cap given to the most recent tokens.'),
  ] },
  { name: 'vlcache', label: 'VL-Cache', summary: 'Post-vision attention scores with layer budgets from attention sparsity.', params: [
    kernel(), pooling(),
    num('sparsity_threshold', 'Sparsity threshold', 0.01, 0, 1, 0.001, 'Relative threshold below which attention counts as sparse.'),
    num('beta_min', 'Layer share min', 0.001, 0, 1, 0.001, 'Smallest share of the budget a layer gets.'),
    num('beta_max', 'Layer share max', 1, 0, 10, 0.01, 'Largest share of the budget a layer gets.'),
  ] },
  { name: 'full', label: 'Full cache', summary: 'No compression: every token stays.', params: [] },
];

export function methodInfo(m: KvMethod): MethodInfo {
  const info = METHODS.find((x) => x.name === m);
  if (!info) throw new Error(`unknown KV method '${m}'`);
  return info;
}

/** Checks a method's parameter overrides against the table; returns the problems (empty: fine). */
export function checkMethodParams(m: KvMethod, params: Record<string, ParamValue>): string[] {
  const info = methodInfo(m);
  const problems: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    const p = info.params.find((x) => x.name === k);
    if (!p) {
      problems.push(`${info.label} has no parameter '${k}'`);
      continue;
    }
    if (p.kind === 'bool' && typeof v !== 'boolean') problems.push(`${p.label} (${k}) must be true or false`);
    if (p.kind === 'choice' && !p.choices!.includes(String(v))) problems.push(`${p.label} (${k}) must be one of ${p.choices!.join(', ')}`);
    if (p.kind === 'int' || p.kind === 'float') {
      if (typeof v !== 'number' || !Number.isFinite(v)) problems.push(`${p.label} (${k}) must be a number`);
      else if (p.kind === 'int' && !Number.isInteger(v)) problems.push(`${p.label} (${k}) must be a whole number`);
      else if (v < p.min! || v > p.max!) problems.push(`${p.label} (${k}) must be within [${p.min}, ${p.max}] (got ${v})`);
    }
  }
  return problems;
}

/** The effective parameters of a method: its defaults with the user's overrides. */
export function effectiveParams(m: KvMethod, overrides: Record<string, ParamValue> = {}): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const p of methodInfo(m).params) out[p.name] = overrides[p.name] ?? p.default;
  return out;
}
