import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseModelConfig } from '../../app/model/config.ts';
import { openCheckpoint } from '../../app/model/checkpoint.ts';
import { readSafetensorsHeader } from '../../app/model/safetensors.ts';
import { tinyConfig, writeCheckpoint } from '../../app/model/checkpoint-writer.ts';
import { GOLDEN_HF, TMP } from '../helpers/paths.ts';

const dir = path.join(TMP, 'checkpoint-test');
const golden = (n: string) => path.join(GOLDEN_HF, n);
const readCfg = (n: string) => JSON.parse(readFileSync(path.join(golden(n), 'config.json'), 'utf8'));

beforeAll(() => mkdirSync(dir, { recursive: true }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config.json in its three forms', () => {
  it('reads the flat + text_config form written by transformers 4.57', () => {
    const c = parseModelConfig(readCfg('qwen2_5vl-tiny'));
    expect(c).toMatchObject({ arch: 'qwen2_5_vl', hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 512, mropeSection: [2, 3, 3], ropeTheta: 1e6, tieWordEmbeddings: false, imageTokenId: 500 });
    expect(c.vision).toMatchObject({ width: 32, depth: 4, mlpWidth: 64, windowSize: 56, fullattBlockIndexes: [1, 3], norm: 'rmsnorm', act: 'silu' });
    const q2 = parseModelConfig(readCfg('qwen2vl-tiny'));
    expect(q2.vision).toMatchObject({ width: 32, mlpWidth: 64, outHidden: 64, norm: 'layernorm', act: 'quick_gelu', fullattBlockIndexes: [0, 1] });
  });
  it('reads the flat form of Qwen uploads (no text_config)', () => {
    const c = parseModelConfig(tinyConfig('qwen2_vl'));
    expect(c.mropeSection).toEqual([2, 3, 3]);
  });
  it('reads the transformers 5 form (rope_parameters inside text_config)', () => {
    const flat = tinyConfig('qwen2_5_vl');
    const { hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, rms_norm_eps, rope_scaling: _r, rope_theta: _t, ...rest } = flat as Record<string, unknown>;
    const cfg = { ...rest, text_config: { hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, rms_norm_eps, rope_parameters: { rope_type: 'default', rope_theta: 5e5, mrope_section: [2, 3, 3] } } };
    const c = parseModelConfig(cfg);
    expect(c.ropeTheta).toBe(5e5);
    expect(c.hiddenSize).toBe(64);
  });
  it('treats tie_word_embeddings inside text_config only, or absent, as the default true', () => {
    expect(parseModelConfig(readCfg('qwen2vl-tiny-tied')).tieWordEmbeddings).toBe(true);
    const { tie_word_embeddings: _x, ...noTie } = tinyConfig('qwen2_vl');
    expect(parseModelConfig(noTie).tieWordEmbeddings).toBe(true);
  });
  it('names the missing or wrong field', () => {
    const { hidden_size: _h, ...noHidden } = tinyConfig('qwen2_vl');
    expect(() => parseModelConfig(noHidden, 'x/config.json')).toThrow(/x\/config.json: missing field 'hidden_size'/);
    expect(() => parseModelConfig({ ...tinyConfig('qwen2_vl'), num_attention_heads: 'four' })).toThrow(/field 'num_attention_heads'/);
    expect(() => parseModelConfig({ ...tinyConfig('qwen2_vl'), rope_scaling: { type: 'yarn', mrope_section: [2, 3, 3] } })).toThrow(/unsupported rope type 'yarn'/);
    expect(() => parseModelConfig({ ...tinyConfig('qwen2_vl'), rope_scaling: { type: 'mrope', mrope_section: [2, 3, 4] } })).toThrow(/must sum to head_dim\/2/);
    expect(() => parseModelConfig({ ...tinyConfig('qwen2_vl'), model_type: 'llama', architectures: ['LlamaForCausalLM'] })).toThrow(/unsupported model/);
    const { vision_config: _v, ...noVision } = tinyConfig('qwen2_vl');
    expect(() => parseModelConfig(noVision)).toThrow(/field 'vision_config'/);
  });
});

describe('checkpoint folders', () => {
  it('loads both tensor-name layouts to the same normalised table', () => {
    const a = openCheckpoint(golden('qwen2_5vl-tiny'));
    const b = openCheckpoint(golden('qwen2_5vl-tiny-newnames'));
    expect(a.layout).toBe('old');
    expect(b.layout).toBe('new');
    expect(a.tensors.map((t) => t.name)).toEqual(b.tensors.map((t) => t.name));
    expect(a.tensors.map((t) => t.shape)).toEqual(b.tensors.map((t) => t.shape));
  });
  it('loads a tied checkpoint without lm_head and a bf16 one', () => {
    const t = openCheckpoint(golden('qwen2vl-tiny-tied'));
    expect(t.tensors.some((x) => x.name === 'lm_head.weight')).toBe(false);
    expect(openCheckpoint(golden('qwen2vl-tiny-bf16')).dtype).toBe('BF16');
  });
  it('loads generated sharded checkpoints in every dtype and layout', () => {
    for (const [i, o] of [
      { dtype: 'F32', layout: 'old', shards: 3 },
      { dtype: 'BF16', layout: 'new', shards: 2 },
      { dtype: 'F16', layout: 'old', shards: 1 },
    ].entries()) {
      const d = path.join(dir, `gen${i}`);
      writeCheckpoint(d, tinyConfig(i === 1 ? 'qwen2_5_vl' : 'qwen2_vl'), { ...(o as object), seed: 7 + i });
      const ck = openCheckpoint(d);
      expect(ck.files.length).toBe(o.shards);
      expect(ck.dtype).toBe(o.dtype);
      expect(ck.layout).toBe(o.layout);
    }
  });

  const broken = (name: string, mutate: (d: string) => void) => {
    const d = path.join(dir, name);
    rmSync(d, { recursive: true, force: true });
    cpSync(golden('qwen2vl-tiny'), d, { recursive: true });
    mutate(d);
    return d;
  };
  const st = (d: string) => path.join(d, 'model.safetensors');
  const rewriteHeader = (file: string, edit: (h: Record<string, any>) => void) => {
    const buf = readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const h = JSON.parse(buf.subarray(8, 8 + n).toString());
    edit(h);
    let s = JSON.stringify(h);
    s += ' '.repeat(Math.max(0, n - Buffer.byteLength(s)));
    if (Buffer.byteLength(s) !== n) throw new Error('test header grew');
    const out = Buffer.from(buf);
    out.write(s, 8, 'utf8');
    writeFileSync(file, out);
  };

  it('truncated weights file: names the file and the tensor', () => {
    const d = broken('truncated', (d) => truncateSync(st(d), statSync(st(d)).size - 1000));
    expect(() => openCheckpoint(d)).toThrow(/model\.safetensors: tensor '.*': data ends at byte \d+ but the file has \d+ bytes/);
  });
  it('file shorter than its header', () => {
    const d = broken('short', (d) => truncateSync(st(d), 100));
    expect(() => openCheckpoint(d)).toThrow(/header length \d+ exceeds the file/);
  });
  it('a header that lies about offsets', () => {
    const d = broken('lying', (d) =>
      rewriteHeader(st(d), (h) => {
        h['model.norm.weight'].data_offsets = [0, 8];
      }),
    );
    expect(() => openCheckpoint(d)).toThrow(/tensor 'model\.norm\.weight': data_offsets span 8 bytes but F32\[64\] needs 256/);
  });
  it('a missing tensor', () => {
    const d = broken('missing', (d) =>
      rewriteHeader(st(d), (h) => {
        h['model.layers.1.mlp.up_proj.weightX'] = h['model.layers.1.mlp.up_proj.weight'];
        delete h['model.layers.1.mlp.up_proj.weight'];
      }),
    );
    // named as this (old-layout) folder names its tensors, not by our internal (new-layout) names
    expect(() => openCheckpoint(d)).toThrow(/missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'/);
  });
  it('a missing tensor in a new-layout folder is named the new way', () => {
    const d = path.join(dir, 'missing-new');
    writeCheckpoint(d, tinyConfig('qwen2_5_vl'), { dtype: 'F32', layout: 'new', shards: 1, seed: 3 });
    rewriteHeader(st(d), (h) => {
      h['model.visual.merger.mlp.0.biasX'] = h['model.visual.merger.mlp.0.bias'];
      delete h['model.visual.merger.mlp.0.bias'];
    });
    expect(() => openCheckpoint(d)).toThrow(/missing tensor 'model\.visual\.merger\.mlp\.0\.bias'/);
  });
  it('a tensor of the wrong shape', () => {
    const d = broken('shape', (d) =>
      rewriteHeader(st(d), (h) => {
        h['model.layers.0.self_attn.k_proj.weight'].shape = [64, 32];
      }),
    );
    expect(() => openCheckpoint(d)).toThrow(/tensor 'model\.layers\.0\.self_attn\.k_proj\.weight': shape \[64,32\] but config\.json implies \[32,64\]/);
  });
  it('a tensor of an unsupported dtype', () => {
    const d = broken('dtype', (d) =>
      rewriteHeader(st(d), (h) => {
        const e = h['model.norm.weight'];
        e.dtype = 'I32';
      }),
    );
    expect(() => openCheckpoint(d)).toThrow(/tensor 'model\.norm\.weight': dtype I32 is not supported/);
  });
  it('config.json missing a field or not JSON', () => {
    const d = broken('cfg', (d) => {
      const c = JSON.parse(readFileSync(path.join(d, 'config.json'), 'utf8'));
      delete c.vocab_size;
      delete c.text_config.vocab_size;
      writeFileSync(path.join(d, 'config.json'), JSON.stringify(c));
    });
    expect(() => openCheckpoint(d)).toThrow(/config\.json: missing field 'vocab_size'/);
    const d2 = broken('cfgjson', (d) => writeFileSync(path.join(d, 'config.json'), '{ nope'));
    expect(() => openCheckpoint(d2)).toThrow(/config\.json: not valid JSON/);
  });
  it('reads header entries with absolute offsets', () => {
    const e = readSafetensorsHeader(st(golden('qwen2vl-tiny')));
    const buf = readFileSync(st(golden('qwen2vl-tiny')));
    const n = Number(buf.readBigUInt64LE(0));
    expect(Math.min(...e.map((t) => t.offset))).toBe(8 + n);
  });
});
