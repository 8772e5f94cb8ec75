// Maps the hyperparameters recorded in golden files (named as the authors' scripts name them) to the
// native parameter names, reproducing how the reference code reads them (Python `x or default`
// getters: a 0 there means "use the default"). Absent fields keep the native method's defaults,
// which are the reference scripts' values.
import type { KvParams } from './addon.ts';
import type { GuiHyper, StarkvHyper } from './golden-schema.ts';

/** Python's `x or d` for a number that is present. */
const orDefault = (x: number, d: number): number => (x ? x : d);

export function starkvParams(h: StarkvHyper | undefined): KvParams {
  const p: KvParams = {};
  if (!h) return p;
  if (h.window_size !== undefined) p.window = Math.trunc(h.window_size);
  if (h.kernel_size !== undefined) p.kernel = Math.trunc(h.kernel_size);
  if (h.pooling !== undefined) p.pooling = h.pooling;
  if (h.alpha !== undefined) p.alpha = Math.max(0, h.alpha); // alpha <= 0 disables the boost
  if (h.temperature !== undefined) p.saliency_temperature = orDefault(h.temperature, 1.0);
  if (h.kv_group_soft_prior_lambda !== undefined) p.lambda = Math.min(1, Math.max(0, orDefault(h.kv_group_soft_prior_lambda, 0.5)));
  if (h.kv_group_online_profile_steps !== undefined) p.profile_steps = Math.trunc(h.kv_group_online_profile_steps);
  if (h.kv_group_online_profile_decay !== undefined)
    p.mi_decay = Math.min(0.9999, Math.max(0, orDefault(h.kv_group_online_profile_decay, 0.9)));
  if (h.kv_group_online_profile_tau !== undefined) p.mi_tau = Math.max(1e-6, orDefault(h.kv_group_online_profile_tau, 1.0));
  if (h.kv_group_online_profile_lambda_ramp_steps !== undefined)
    p.lambda_ramp_steps = Math.max(0, Math.trunc(h.kv_group_online_profile_lambda_ramp_steps)); // 0 -> profile steps (native)
  if (h.kv_group_temporal_enable !== undefined) p.temporal = h.kv_group_temporal_enable;
  if (h.kv_group_temporal_delta !== undefined) p.temporal_delta = h.kv_group_temporal_delta;
  if (h.kv_group_temporal_rho !== undefined) p.temporal_rho = Math.min(0.9999, Math.max(0, h.kv_group_temporal_rho));
  if (h.kv_group_temporal_eps !== undefined) p.temporal_eps = Math.min(1, Math.max(0, h.kv_group_temporal_eps));
  if (h.kv_group_temporal_discount_min !== undefined)
    p.temporal_discount_min = Math.min(1, Math.max(0, h.kv_group_temporal_discount_min));
  if (h.kv_group_temporal_warmup_steps !== undefined) p.temporal_warmup = Math.trunc(orDefault(h.kv_group_temporal_warmup_steps, 0));
  if (h.kv_entropy_budget_enable !== undefined) p.aeb = h.kv_entropy_budget_enable;
  if (h.kv_entropy_budget_min_scale !== undefined) p.aeb_min = h.kv_entropy_budget_min_scale;
  if (h.kv_entropy_budget_max_scale !== undefined) p.aeb_max = h.kv_entropy_budget_max_scale;
  if (h.kv_entropy_budget_smooth !== undefined) p.aeb_smooth = Math.min(1, Math.max(0, h.kv_entropy_budget_smooth));
  return p;
}

/** GUI-KV repo classes (SnapKV, PyramidKV, GUI-KV): file-level hyperparameters, then the case's. */
export function guiParams(...hs: Array<GuiHyper | undefined>): KvParams {
  const p: KvParams = {};
  for (const h of hs) {
    if (!h) continue;
    if (h.window_size_cfg !== undefined) p.window = Math.trunc(h.window_size_cfg);
    if (h.kernel_size !== undefined) p.kernel = Math.trunc(h.kernel_size);
    if (h.pooling !== undefined) p.pooling = h.pooling;
    if (h.beta !== undefined) p.pyramid_beta = h.beta;
    if (h.num_hidden_layers !== undefined) p.num_layers = h.num_hidden_layers;
    if (h.layer_idx !== undefined) p.layer_idx = h.layer_idx;
    if (h.alpha !== undefined) p.alpha = h.alpha;
    if (h.temperature !== undefined) p.saliency_temperature = h.temperature;
  }
  return p;
}
