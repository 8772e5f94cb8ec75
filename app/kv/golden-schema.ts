// zod schemas of the KV golden directory (schema of ../shared/golden/kv/): only the fields replay
// reads are checked; everything else passes through untouched (tests read the recorded intermediates).
import { z } from 'zod';

const int = z.number().int();
const nonNeg = int.nonnegative();
const pos = int.positive();
const num = z.number();
const vec = z.array(num);
const mat = z.array(vec);
const cube = z.array(mat);

export const dimsSchema = z.looseObject({
  num_heads: pos,
  num_kv_heads: pos,
  head_dim: pos,
  hidden_size: pos,
  seq_len: pos.optional(),
});

export const inputsSchema = z.looseObject({
  set_id: z.string().optional(),
  dims: dimsSchema.extend({ seq_len: pos }),
  layout: z.looseObject({
    seq_len: pos.optional(),
    vision_start_idx: z.array(nonNeg),
    vision_end_idx: z.array(nonNeg),
    span_grids: z.array(z.tuple([nonNeg, nonNeg])).optional(),
  }),
  key_states_kv_heads: cube,
  query_states: cube,
  hidden_states: mat,
});
export type GoldenInputs = z.infer<typeof inputsSchema>;

const pooling = z.enum(['avgpool', 'maxpool']);
const budgetPercent = num.nonnegative();

/** Hyperparameters as the STaR-KV scripts name them (all optional; the reference's defaults apply). */
export const starkvHyperSchema = z.looseObject({
  window_size: num.optional(),
  kernel_size: num.optional(),
  pooling: pooling.optional(),
  alpha: num.optional(),
  temperature: num.optional(),
  kv_group_soft_prior_lambda: num.optional(),
  kv_group_online_profile_steps: num.optional(),
  kv_group_online_profile_decay: num.optional(),
  kv_group_online_profile_tau: num.optional(),
  kv_group_online_profile_lambda_ramp_steps: num.optional(),
  kv_group_temporal_enable: z.boolean().optional(),
  kv_group_temporal_delta: num.optional(),
  kv_group_temporal_rho: num.optional(),
  kv_group_temporal_eps: num.optional(),
  kv_group_temporal_discount_min: num.optional(),
  kv_group_temporal_warmup_steps: num.optional(),
  kv_entropy_budget_enable: z.boolean().optional(),
  kv_entropy_budget_min_scale: num.optional(),
  kv_entropy_budget_max_scale: num.optional(),
  kv_entropy_budget_smooth: num.optional(),
});
export type StarkvHyper = z.infer<typeof starkvHyperSchema>;

export const starkvSingleSchema = z.looseObject({
  hyperparameters: starkvHyperSchema.optional(),
  cases: z.array(
    z.looseObject({
      case_id: z.string().min(1),
      input_set: z.string().min(1),
      kv_cache_budget_percent: budgetPercent,
      hyperparameters: starkvHyperSchema.optional(),
    }),
  ),
});
export type StarkvSingleFile = z.infer<typeof starkvSingleSchema>;

export const episodeSchema = z.looseObject({
  dims: dimsSchema,
  hyperparameters: starkvHyperSchema.optional(),
  bank: z.looseObject({ key_states_kv_heads: cube, hidden_states: mat }),
  steps: z.array(
    z.looseObject({
      step: int,
      seq_len: pos,
      rows: z.array(nonNeg),
      query_tail: cube,
      query_tail_len: pos.optional(),
      vision_start_idx: z.array(nonNeg),
      vision_end_idx: z.array(nonNeg),
      span_grids: z.array(z.tuple([nonNeg, nonNeg])).optional(),
      per_budget: z.record(z.string(), z.looseObject({})),
    }),
  ),
});
export type EpisodeFile = z.infer<typeof episodeSchema>;

/** GUI-KV repo hyperparameters (SnapKV, PyramidKV, GUI-KV). */
export const guiHyperSchema = z.looseObject({
  window_size_cfg: num.optional(),
  kernel_size: num.optional(),
  pooling: pooling.optional(),
  merge: z.null().optional(),
  beta: num.optional(),
  num_hidden_layers: pos.optional(),
  layer_idx: nonNeg.optional(),
  alpha: num.optional(),
  temperature: num.optional(),
  vision_start_idx: z.array(nonNeg).optional(),
  vision_end_idx: z.array(nonNeg).optional(),
});
export type GuiHyper = z.infer<typeof guiHyperSchema>;

export const perHeadFileSchema = z.looseObject({
  hyperparameters: guiHyperSchema.optional(),
  cases: z.array(
    z.looseObject({
      case_id: z.string().min(1),
      input_set: z.string().min(1),
      kv_cache_budget_percent: budgetPercent,
      hyperparameters: guiHyperSchema.optional(),
    }),
  ),
});
export type PerHeadFile = z.infer<typeof perHeadFileSchema>;

export const vlcacheSchema = z.looseObject({
  hyperparameters: z
    .looseObject({
      kernel_size: num.optional(),
      pooling: pooling.optional(),
      merge: z.null().optional(),
      num_hidden_layers: pos.optional(),
      query_scales_per_layer: vec.optional(),
      sparsity_threshold: num.optional(),
      beta_clamp: z.tuple([num, num]).optional(),
    })
    .optional(),
  cases: z.array(
    z.looseObject({
      case_id: z.string().min(1),
      input_set: z.string().min(1),
      kv_cache_budget_percent: budgetPercent,
      query_scales: vec.optional(),
      last_vision_index: nonNeg.optional(),
      layers: z.array(
        z.looseObject({
          layer_idx: nonNeg,
          query_scale: num.optional(),
          error: z.unknown().optional(),
        }),
      ),
    }),
  ),
});
export type VlcacheFile = z.infer<typeof vlcacheSchema>;
