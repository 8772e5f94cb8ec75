// Writes checkpoints in exactly the Hugging Face layout (config.json, safetensors, optional shard index)
// with seeded random weights: the tiny models of the tests and the full-shape models of the bench.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parseModelConfig } from './config.ts';
import { expectedTensors } from './checkpoint.ts';

export interface WriteOptions {
  dtype?: 'F32' | 'BF16' | 'F16';
  layout?: 'old' | 'new';
  shards?: number;
  seed?: number;
  /** Draw only this many values per tensor and repeat them (a fast fill for the large bench models,
   * whose speed does not depend on the values; each tensor keeps its own distribution). */
  repeatBlock?: number;
  /** Hand-set values for some tensors (by normalised name): element i of the flattened tensor. */
  values?: (name: string) => ((i: number) => number) | undefined;
}

/** A small deterministic PRNG (mulberry32) with a Box-Muller normal. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toBf16(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}
function toF16(x: number): number {
  // via Math.fround-free path: handles normal range of the small test weights
  f32[0] = x;
  const u = u32[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | ((u >>> 13) & 0x3ff);
}

/** Old layout name of a normalised tensor name. */
function oldName(n: string): string {
  if (n.startsWith('model.visual.')) return n.slice('model.'.length);
  if (n.startsWith('model.language_model.')) return 'model.' + n.slice('model.language_model.'.length);
  return n;
}

function writeSafetensors(file: string, tensors: Array<{ name: string; dtype: string; shape: number[]; fill: (out: Uint8Array) => void; nbytes: number }>) {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.nbytes] };
    off += t.nbytes;
  }
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - ((8 + Buffer.byteLength(h)) % 8)) % 8);
  const hb = Buffer.from(h, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, hb);
    for (const t of tensors) {
      const buf = new Uint8Array(t.nbytes);
      t.fill(buf);
      writeSync(fd, buf);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a checkpoint for `config` (a config.json object) into `dir`. Weights: N(0, 1/fan_in) for
 * matrices, N(0,1) for the embedding, U(-0.1, 0.1) for biases, 1 + U(-0.1, 0.1) for norm weights
 * (so that bias and norm bugs show).
 */
export function writeCheckpoint(dir: string, configJson: Record<string, unknown>, opts: WriteOptions = {}): void {
  const cfg = parseModelConfig(configJson, 'generated config');
  const dtype = opts.dtype ?? 'F32';
  const shards = Math.max(1, opts.shards ?? 1);
  const r = rng(opts.seed ?? 1);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...configJson, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16' }, null, 2));
  const bytes = dtype === 'F32' ? 4 : 2;
  const list = [...expectedTensors(cfg)].map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const isBias = name.endsWith('.bias');
    const isNorm = shape.length === 1 && !isBias;
    const std = name.endsWith('embed_tokens.weight') ? 1 : 1 / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
    const set = opts.values?.(name);
    const fill = (out: Uint8Array) => {
      const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
      const drawn = opts.repeatBlock && !set ? Math.min(n, opts.repeatBlock) : n;
      for (let i = 0; i < drawn; i++) {
        const x = set ? set(i) : isBias ? (r.uniform() * 2 - 1) * 0.1 : isNorm ? 1 + (r.uniform() * 2 - 1) * 0.1 : r.normal() * std;
        if (dtype === 'F32') dv.setFloat32(i * 4, x, true);
        else dv.setUint16(i * 2, dtype === 'BF16' ? toBf16(x) : toF16(x), true);
      }
      for (let done = drawn * bytes; done < out.byteLength; done *= 2) out.copyWithin(done, 0, Math.min(done, out.byteLength - done));
    };
    return { name: opts.layout === 'new' ? name : oldName(name), dtype, shape, fill, nbytes: n * bytes };
  });
  if (shards === 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), list);
    return;
  }
  const per = Math.ceil(list.length / shards);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < shards; s++) {
    const part = list.slice(s * per, (s + 1) * per);
    const fname = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    writeSafetensors(path.join(dir, fname), part);
    for (const t of part) {
      weightMap[t.name] = fname;
      total += t.nbytes;
    }
  }
  writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
}

/** config.json of a tiny model (the golden set's dimensions), in the flat form of Qwen's uploads. */
export function tinyConfig(arch: 'qwen2_vl' | 'qwen2_5_vl', over: Record<string, unknown> = {}): Record<string, unknown> {
  const vision =
    arch === 'qwen2_5_vl'
      ? { depth: 4, hidden_size: 32, num_heads: 2, intermediate_size: 64, out_hidden_size: 64, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2, window_size: 56, fullatt_block_indexes: [1, 3], hidden_act: 'silu', in_channels: 3 }
      : { depth: 2, embed_dim: 32, num_heads: 2, mlp_ratio: 2, hidden_size: 64, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2, hidden_act: 'quick_gelu', in_channels: 3 };
  return {
    architectures: [arch === 'qwen2_vl' ? 'Qwen2VLForConditionalGeneration' : 'Qwen2_5_VLForConditionalGeneration'],
    model_type: arch,
    hidden_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 128,
    vocab_size: 512,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
    rope_scaling: { type: 'mrope', mrope_section: [2, 3, 3] },
    tie_word_embeddings: false,
    max_position_embeddings: 4096,
    hidden_act: 'silu',
    image_token_id: 500,
    vision_start_token_id: 501,
    vision_end_token_id: 502,
    video_token_id: 503,
    vision_token_id: 504,
    bos_token_id: 510,
    eos_token_id: 511,
    vision_config: vision,
    ...over,
  };
}
