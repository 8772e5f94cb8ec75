// The checkpoint's tokenizer (tokenizer.json via @huggingface/tokenizers) and chat template (via
// @huggingface/jinja), and the expansion of each image placeholder into its run of pad tokens.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { repoRoot } from '../native.ts';

export type ChatContent = string | Array<{ type: 'text'; text: string } | { type: 'image' }>;
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: ChatContent;
}

const IMAGE_PAD = '<|image_pad|>';
export const DEFAULT_TEMPLATE_FILE = path.join(repoRoot, 'assets', 'chat-template-qwen2vl.jinja');

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

export class TextProcessor {
  readonly template: Template;
  constructor(
    readonly tokenizer: Tokenizer,
    templateSource: string,
  ) {
    this.template = new Template(templateSource);
  }

  /** Loads tokenizer.json (+ tokenizer_config.json) and the chat template from a folder; null without tokenizer.json. */
  static fromDir(dir: string): TextProcessor | null {
    const tj = path.join(dir, 'tokenizer.json');
    if (!existsSync(tj)) return null;
    const tcFile = path.join(dir, 'tokenizer_config.json');
    const tc = existsSync(tcFile) ? readJson(tcFile) : {};
    let template = typeof tc.chat_template === 'string' ? tc.chat_template : undefined;
    const ctJson = path.join(dir, 'chat_template.json');
    const ctJinja = path.join(dir, 'chat_template.jinja');
    if (!template && existsSync(ctJinja)) template = readFileSync(ctJinja, 'utf8');
    if (!template && existsSync(ctJson)) template = readJson(ctJson).chat_template as string | undefined;
    template ??= readFileSync(DEFAULT_TEMPLATE_FILE, 'utf8');
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(readJson(tj), tc);
    } catch (e) {
      throw new Error(`${tj}: cannot build the tokenizer (${(e as Error).message})`);
    }
    return new TextProcessor(tokenizer, template);
  }

  /** Renders messages with the chat template (one <|image_pad|> per image, not yet expanded). */
  render(messages: ChatMessage[], addGenerationPrompt = true): string {
    return this.template.render({ messages, add_generation_prompt: addGenerationPrompt, add_vision_id: false });
  }

  /** Replaces the k-th <|image_pad|> by imageTokens[k] copies. */
  static expandImagePads(text: string, imageTokens: number[]): string {
    const parts = text.split(IMAGE_PAD);
    if (parts.length - 1 !== imageTokens.length)
      throw new Error(`the prompt has ${parts.length - 1} image placeholder(s) but ${imageTokens.length} image(s) were given`);
    return parts.reduce((acc, p, i) => acc + IMAGE_PAD.repeat(imageTokens[i - 1]!) + p);
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>, skipSpecial = true): string {
    return this.tokenizer.decode(Array.from(ids), { skip_special_tokens: skipSpecial });
  }

  /** Full prompt ids for a chat with images: render, expand pads, tokenise. */
  encodeChat(messages: ChatMessage[], imageTokens: number[], addGenerationPrompt = true): number[] {
    return this.encode(TextProcessor.expandImagePads(this.render(messages, addGenerationPrompt), imageTokens));
  }
}
