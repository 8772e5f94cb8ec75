// A checkpoint folder, resolved: validated config, the tensor table in the normalised layout with every
// tensor's shape checked against the config, and the plain spec the native engine loads.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { readModelConfig, type ModelConfig } from './config.ts';
import { CheckpointError, normaliseName, readTensorTable, type TensorEntry } from './safetensors.ts';

export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  files: string[];
  tensors: TensorEntry[]; // normalised names
  layout: 'old' | 'new';
  dtype: string; // the dtype of most weight bytes
  weightBytes: number;
  parameters: number;
}

/** Every tensor the model needs, with its expected shape (normalised names). */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const D = c.hiddenSize, I = c.intermediateSize, hd = c.headDim;
  const T = 'model.language_model.';
  m.set(T + 'embed_tokens.weight', [c.vocabSize, D]);
  m.set(T + 'norm.weight', [D]);
  if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, D]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `${T}layers.${i}.`;
    m.set(p + 'input_layernorm.weight', [D]);
    m.set(p + 'post_attention_layernorm.weight', [D]);
    m.set(p + 'self_attn.q_proj.weight', [c.numHeads * hd, D]);
    m.set(p + 'self_attn.q_proj.bias', [c.numHeads * hd]);
    m.set(p + 'self_attn.k_proj.weight', [c.numKvHeads * hd, D]);
    m.set(p + 'self_attn.k_proj.bias', [c.numKvHeads * hd]);
    m.set(p + 'self_attn.v_proj.weight', [c.numKvHeads * hd, D]);
    m.set(p + 'self_attn.v_proj.bias', [c.numKvHeads * hd]);
    m.set(p + 'self_attn.o_proj.weight', [D, c.numHeads * hd]);
    m.set(p + 'mlp.gate_proj.weight', [I, D]);
    m.set(p + 'mlp.up_proj.weight', [I, D]);
    m.set(p + 'mlp.down_proj.weight', [D, I]);
  }
  const v = c.vision, Cv = v.width, Iv = v.mlpWidth, V = 'model.visual.';
  const ps = v.patchSize;
  m.set(V + 'patch_embed.proj.weight', [Cv, v.inChannels, v.temporalPatchSize, ps, ps]);
  const ln = v.norm === 'layernorm';
  for (let j = 0; j < v.depth; j++) {
    const p = `${V}blocks.${j}.`;
    for (const n of ['norm1', 'norm2']) {
      m.set(`${p}${n}.weight`, [Cv]);
      if (ln) m.set(`${p}${n}.bias`, [Cv]);
    }
    m.set(p + 'attn.qkv.weight', [3 * Cv, Cv]);
    m.set(p + 'attn.qkv.bias', [3 * Cv]);
    m.set(p + 'attn.proj.weight', [Cv, Cv]);
    m.set(p + 'attn.proj.bias', [Cv]);
    if (c.arch === 'qwen2_5_vl') {
      for (const n of ['gate_proj', 'up_proj']) {
        m.set(`${p}mlp.${n}.weight`, [Iv, Cv]);
        m.set(`${p}mlp.${n}.bias`, [Iv]);
      }
      m.set(p + 'mlp.down_proj.weight', [Cv, Iv]);
      m.set(p + 'mlp.down_proj.bias', [Cv]);
    } else {
      m.set(p + 'mlp.fc1.weight', [Iv, Cv]);
      m.set(p + 'mlp.fc1.bias', [Iv]);
      m.set(p + 'mlp.fc2.weight', [Cv, Iv]);
      m.set(p + 'mlp.fc2.bias', [Cv]);
    }
  }
  const mw = Cv * v.spatialMergeSize * v.spatialMergeSize;
  m.set(V + 'merger.ln_q.weight', [Cv]);
  if (ln) m.set(V + 'merger.ln_q.bias', [Cv]);
  m.set(V + 'merger.mlp.0.weight', [mw, mw]);
  m.set(V + 'merger.mlp.0.bias', [mw]);
  m.set(V + 'merger.mlp.2.weight', [v.outHidden, mw]);
  m.set(V + 'merger.mlp.2.bias', [v.outHidden]);
  return m;
}

export function openCheckpoint(dir: string): Checkpoint {
  const abs = path.resolve(dir);
  if (!existsSync(abs)) throw new CheckpointError(`${abs}: no such folder`);
  if (!statSync(abs).isDirectory()) throw new CheckpointError(`${abs}: not a folder (give the checkpoint folder, the one with config.json and the .safetensors files)`);
  const config = readModelConfig(abs);
  // generation_config.json may add stop tokens.
  const gen = path.join(abs, 'generation_config.json');
  if (existsSync(gen)) {
    try {
      const g = JSON.parse(readFileSync(gen, 'utf8'));
      const e = g.eos_token_id;
      for (const id of Array.isArray(e) ? e : e === undefined ? [] : [e])
        if (Number.isInteger(id) && !config.eosTokenIds.includes(id)) config.eosTokenIds.push(id);
    } catch (e) {
      throw new CheckpointError(`${gen}: not valid JSON (${(e as Error).message})`);
    }
  }
  const table = readTensorTable(abs);
  const byNorm = new Map<string, TensorEntry>();
  let newNames = 0;
  for (const t of table.tensors.values()) {
    const n = normaliseName(t.name);
    if (n !== t.name) newNames--;
    else if (n.startsWith('model.language_model.') || n.startsWith('model.visual.')) newNames++;
    if (byNorm.has(n)) throw new CheckpointError(`${table.files[t.file]}: tensor '${t.name}' duplicates '${byNorm.get(n)!.name}' after name normalisation`);
    byNorm.set(n, { ...t, name: n, stored: t.name });
  }
  const expected = expectedTensors(config);
  const tensors: TensorEntry[] = [];
  const dtypeBytes = new Map<string, number>();
  let weightBytes = 0, parameters = 0;
  for (const [name, shape] of expected) {
    const t = byNorm.get(name);
    if (!t) {
      // Named as this folder names its tensors (the old layout: model.layers.*, visual.*).
      const shown = newNames > 0 ? name : name.replace(/^model\.visual\./, 'visual.').replace(/^model\.language_model\./, 'model.');
      throw new CheckpointError(
        `${abs}: missing tensor '${shown}'` + (name === 'lm_head.weight' ? ' (config says tie_word_embeddings is false)' : ''),
      );
    }
    const where = `${table.files[t.file]}: tensor '${t.stored ?? t.name}'`;
    if (t.dtype !== 'BF16' && t.dtype !== 'F16' && t.dtype !== 'F32')
      throw new CheckpointError(`${where}: dtype ${t.dtype} is not supported (BF16, F16 or F32)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new CheckpointError(`${where}: shape ${JSON.stringify(t.shape)} but config.json implies ${JSON.stringify(shape)}`);
    tensors.push(t);
    weightBytes += t.nbytes;
    parameters += t.nbytes / (t.dtype === 'F32' ? 4 : 2);
    dtypeBytes.set(t.dtype, (dtypeBytes.get(t.dtype) ?? 0) + t.nbytes);
  }
  const dtype = [...dtypeBytes.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  return { dir: abs, config, files: table.files, tensors, layout: newNames > 0 ? 'new' : 'old', dtype, weightBytes, parameters };
}

/** Bytes of KV cache one token takes (all layers, keys + values, fp32 as the CPU engine stores them). */
export function kvBytesPerToken(c: ModelConfig, bytesPerValue = 4): number {
  return 2 * c.numLayers * c.numKvHeads * c.headDim * bytesPerValue;
}

/** A rough memory estimate for one step with `promptTokens` tokens and `visionPatches` ViT patches. */
export function estimateMemory(ck: Checkpoint, promptTokens = 4096, visionPatches = 4 * 2691) {
  const c = ck.config, v = c.vision;
  const kv = kvBytesPerToken(c) * promptTokens;
  const textAct = promptTokens * (3 * c.hiddenSize + 2 * c.intermediateSize + c.numHeads * c.headDim * 2) * 4;
  const visionAct = visionPatches * (4 * v.width + 2 * v.mlpWidth) * 4;
  const logits = c.vocabSize * 4;
  return { weights: ck.weightBytes, kv, activations: Math.max(textAct, visionAct) + logits, total: ck.weightBytes + kv + Math.max(textAct, visionAct) + logits };
}
