// Reads a checkpoint's config.json (flat, with text_config, or with rope_parameters), validates it with
// zod and resolves it into the plain struct the native engine takes. The single source of truth for shapes.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export type Arch = 'qwen2_vl' | 'qwen2_5_vl';

export interface VisionConfig {
  depth: number;
  width: number;
  numHeads: number;
  mlpWidth: number;
  outHidden: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  inChannels: number;
  windowSize: number; // pixels; 0 for qwen2_vl (all blocks full attention)
  fullattBlockIndexes: number[];
  act: 'quick_gelu' | 'silu';
  norm: 'layernorm' | 'rmsnorm';
  eps: number;
}

export interface ModelConfig {
  arch: Arch;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  mropeSection: [number, number, number];
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  eosTokenIds: number[];
  vision: VisionConfig;
}

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const ropeSchema = z
  .object({
    type: z.string().optional(),
    rope_type: z.string().optional(),
    mrope_section: z.array(posInt).length(3).optional(),
    rope_theta: z.number().positive().optional(),
  })
  .passthrough();
const textSchema = z
  .object({
    hidden_size: posInt.optional(),
    num_hidden_layers: posInt.optional(),
    num_attention_heads: posInt.optional(),
    num_key_value_heads: posInt.optional(),
    intermediate_size: posInt.optional(),
    vocab_size: posInt.optional(),
    rms_norm_eps: z.number().positive().optional(),
    rope_theta: z.number().positive().optional(),
    rope_scaling: ropeSchema.nullable().optional(),
    rope_parameters: ropeSchema.nullable().optional(),
    tie_word_embeddings: z.boolean().optional(),
    max_position_embeddings: posInt.optional(),
    hidden_act: z.string().optional(),
    eos_token_id: z.union([nonNegInt, z.array(nonNegInt)]).optional(),
  })
  .passthrough();
const visionSchema = z
  .object({
    depth: posInt,
    embed_dim: posInt.optional(),
    hidden_size: posInt.optional(),
    num_heads: posInt,
    mlp_ratio: z.number().positive().optional(),
    intermediate_size: posInt.optional(),
    out_hidden_size: posInt.optional(),
    hidden_act: z.string().optional(),
    in_chans: posInt.optional(),
    in_channels: posInt.optional(),
    patch_size: posInt.optional(),
    spatial_patch_size: posInt.optional(),
    temporal_patch_size: posInt.optional(),
    spatial_merge_size: posInt.optional(),
    window_size: posInt.optional(),
    fullatt_block_indexes: z.array(nonNegInt).optional(),
  })
  .passthrough();
const topSchema = textSchema.extend({
  model_type: z.string().optional(),
  architectures: z.array(z.string()).optional(),
  text_config: textSchema.optional(),
  vision_config: visionSchema,
  image_token_id: nonNegInt.optional(),
  video_token_id: nonNegInt.optional(),
  vision_start_token_id: nonNegInt.optional(),
  vision_end_token_id: nonNegInt.optional(),
});

export class ConfigError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ConfigError';
  }
}

function detectArch(raw: z.infer<typeof topSchema>, file: string): Arch {
  const mt = raw.model_type;
  if (mt === 'qwen2_vl' || mt === 'qwen2_5_vl') return mt;
  const a = raw.architectures?.[0] ?? raw.text_config?.['architectures']?.[0 as never];
  if (a === 'Qwen2VLForConditionalGeneration') return 'qwen2_vl';
  if (a === 'Qwen2_5_VLForConditionalGeneration') return 'qwen2_5_vl';
  throw new ConfigError(
    file,
    `unsupported model: model_type '${mt ?? '(missing)'}', architectures '${raw.architectures?.join(',') ?? '(missing)'}' ` +
      `(expected qwen2_vl / qwen2_5_vl, i.e. Qwen2-VL, Qwen2.5-VL or UI-TARS-1.5)`,
  );
}

/** Parses and validates a config.json object. `file` names the source in error messages. */
export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  const parsed = topSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(file, `field '${issue.path.join('.') || '(root)'}': ${issue.message}`);
  }
  const raw = parsed.data;
  const arch = detectArch(raw, file);
  const tc = raw.text_config ?? {};
  // Text field X = text_config.X if present, else top-level X (spec 1.1).
  const pick = <K extends keyof z.infer<typeof textSchema>>(k: K) => (tc[k] !== undefined ? tc[k] : raw[k]);
  const need = <T>(v: T | undefined, name: string): T => {
    if (v === undefined || v === null) throw new ConfigError(file, `missing field '${name}' (top level or text_config)`);
    return v;
  };
  const hiddenSize = need(pick('hidden_size'), 'hidden_size');
  const numLayers = need(pick('num_hidden_layers'), 'num_hidden_layers');
  const numHeads = need(pick('num_attention_heads'), 'num_attention_heads');
  const numKvHeads = pick('num_key_value_heads') ?? numHeads;
  const intermediateSize = need(pick('intermediate_size'), 'intermediate_size');
  const vocabSize = need(pick('vocab_size'), 'vocab_size');
  if (hiddenSize % numHeads !== 0) throw new ConfigError(file, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  if (numHeads % numKvHeads !== 0) throw new ConfigError(file, `num_attention_heads ${numHeads} is not divisible by num_key_value_heads ${numKvHeads}`);
  const headDim = hiddenSize / numHeads;
  if (headDim % 2 !== 0) throw new ConfigError(file, `head_dim ${headDim} must be even`);

  const ropes = [tc.rope_parameters, tc.rope_scaling, raw.rope_parameters, raw.rope_scaling].filter((r) => r);
  for (const r of ropes) {
    const t = r!.rope_type ?? r!.type ?? 'default';
    if (t !== 'default' && t !== 'mrope') throw new ConfigError(file, `unsupported rope type '${t}' (only default/mrope)`);
  }
  const section = ropes.find((r) => r!.mrope_section)?.mrope_section;
  if (!section) throw new ConfigError(file, `missing field 'rope_scaling.mrope_section' (or rope_parameters.mrope_section)`);
  if (section[0]! + section[1]! + section[2]! !== headDim / 2)
    throw new ConfigError(file, `mrope_section ${JSON.stringify(section)} must sum to head_dim/2 = ${headDim / 2}`);
  const ropeTheta = tc.rope_parameters?.rope_theta ?? raw.rope_parameters?.rope_theta ?? tc.rope_theta ?? raw.rope_theta ?? 1e6;
  const act = pick('hidden_act');
  if (act !== undefined && act !== 'silu') throw new ConfigError(file, `unsupported hidden_act '${act}' (expected silu)`);
  const eos = pick('eos_token_id');
  const eosTokenIds = eos === undefined ? [151645, 151643] : Array.isArray(eos) ? eos : [eos];

  const v = raw.vision_config;
  const vq = arch === 'qwen2_5_vl';
  const width = vq ? need(v.hidden_size, 'vision_config.hidden_size') : need(v.embed_dim, 'vision_config.embed_dim');
  const mlpWidth = vq
    ? need(v.intermediate_size, 'vision_config.intermediate_size')
    : Math.round(width * need(v.mlp_ratio ?? 4, 'vision_config.mlp_ratio'));
  const outHidden = vq ? (v.out_hidden_size ?? hiddenSize) : (v.hidden_size ?? hiddenSize);
  if (outHidden !== hiddenSize)
    throw new ConfigError(file, `vision merger output ${outHidden} differs from the text hidden_size ${hiddenSize}`);
  if (width % v.num_heads !== 0 || (width / v.num_heads) % 4 !== 0)
    throw new ConfigError(file, `vision width ${width} / num_heads ${v.num_heads} must be a multiple of 4`);
  const vact = v.hidden_act ?? (vq ? 'silu' : 'quick_gelu');
  if (vact !== (vq ? 'silu' : 'quick_gelu'))
    throw new ConfigError(file, `unsupported vision_config.hidden_act '${vact}' for ${arch}`);
  const depth = v.depth;
  const fullatt = vq ? (v.fullatt_block_indexes ?? []) : [...Array(depth).keys()];
  if (fullatt.some((i) => i >= depth)) throw new ConfigError(file, `vision_config.fullatt_block_indexes has an index >= depth ${depth}`);
  const vision: VisionConfig = {
    depth,
    width,
    numHeads: v.num_heads,
    mlpWidth,
    outHidden,
    patchSize: v.patch_size ?? v.spatial_patch_size ?? 14,
    temporalPatchSize: v.temporal_patch_size ?? 2,
    spatialMergeSize: v.spatial_merge_size ?? 2,
    inChannels: v.in_channels ?? v.in_chans ?? 3,
    windowSize: vq ? need(v.window_size, 'vision_config.window_size') : 0,
    fullattBlockIndexes: fullatt,
    act: vact as VisionConfig['act'],
    norm: vq ? 'rmsnorm' : 'layernorm',
    eps: 1e-6,
  };
  if (vision.inChannels !== 3) throw new ConfigError(file, `vision in_channels ${vision.inChannels} (only 3 is supported)`);
  if (vq && vision.windowSize % (vision.patchSize * vision.spatialMergeSize) !== 0)
    throw new ConfigError(file, `vision_config.window_size ${vision.windowSize} is not a multiple of patch*merge`);

  return {
    arch,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize,
    vocabSize,
    rmsNormEps: pick('rms_norm_eps') ?? 1e-5,
    ropeTheta,
    mropeSection: [section[0]!, section[1]!, section[2]!],
    // Lookup rule: text_config first, then top level; absent in both -> true (PretrainedConfig default).
    tieWordEmbeddings: pick('tie_word_embeddings') ?? true,
    maxPositionEmbeddings: pick('max_position_embeddings') ?? 32768,
    imageTokenId: raw.image_token_id ?? 151655,
    videoTokenId: raw.video_token_id ?? 151656,
    visionStartTokenId: raw.vision_start_token_id ?? 151652,
    visionEndTokenId: raw.vision_end_token_id ?? 151653,
    eosTokenIds,
    vision,
  };
}

export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) throw new ConfigError(file, 'not found: a checkpoint folder needs config.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(json, file);
}
