// The in-process engine behind the agent's ModelBackend interface. Each call renders the chat with the
// checkpoint's template and prefills it (the papers' reference protocol); screenshots never leave the process.
import type { Engine } from '../engine.ts';
import { processImage, type ProcessedImage } from '../preprocess.ts';
import type { ChatMessage as TextMessage } from '../text.ts';
import { BackendError, GenerationCancelled, type GenerateRequest, type GenerateResult, type ModelBackend, type ModelImage } from './types.ts';

export interface NativeBackendOptions {
  kv?: { method: string; budget: number; params?: Record<string, number | boolean | string> };
  seed?: number;
}

export class NativeBackend implements ModelBackend {
  readonly kind = 'native';
  readonly destination = 'in-process';
  readonly imageLimits: { minPixels: number; maxPixels: number };
  private cache = new Map<string, ProcessedImage>(); // by image id: a screenshot is preprocessed once

  constructor(
    readonly engine: Engine,
    private readonly opts: NativeBackendOptions = {},
  ) {
    if (!engine.text) throw new BackendError(`${engine.checkpoint.dir}: the native backend needs the checkpoint's tokenizer.json`);
    this.imageLimits = { minPixels: engine.preprocessor.minPixels, maxPixels: engine.preprocessor.maxPixels };
  }

  private image(im: ModelImage): ProcessedImage {
    const hit = this.cache.get(im.id);
    if (hit) return hit;
    if (!im.rgb || im.rgb.length !== im.width * im.height * 3) throw new BackendError(`image ${im.id}: the native backend needs packed RGB pixels (${im.width}x${im.height}x3)`);
    const p = processImage({ width: im.width, height: im.height, data: im.rgb }, this.engine.preprocessor);
    if (p.resizedWidth !== im.resized.width || p.resizedHeight !== im.resized.height)
      throw new BackendError(`image ${im.id}: the agent planned ${im.resized.width}x${im.resized.height} but the checkpoint's processor resizes to ${p.resizedWidth}x${p.resizedHeight}; coordinates would be off`);
    this.cache.set(im.id, p);
    return p;
  }

  async close(): Promise<void> {
    this.engine.dispose();
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const t0 = performance.now();
    const images: ProcessedImage[] = [];
    const live = new Set<string>();
    const messages: TextMessage[] = req.messages.map((m) => ({
      role: m.role,
      content:
        typeof m.content === 'string'
          ? m.content
          : m.content.map((c) => {
              if (c.type === 'text') return { type: 'text' as const, text: c.text };
              images.push(this.image(c.image));
              live.add(c.image.id);
              return { type: 'image' as const };
            }),
    }));
    for (const id of this.cache.keys()) if (!live.has(id)) this.cache.delete(id); // left the history window
    let text = '';
    let firstTokenMs: number | undefined;
    const tokens: number[] = [];
    const r = await this.engine.generate({
      messages,
      images,
      maxNewTokens: req.maxTokens,
      temperature: req.temperature,
      topP: req.topP,
      seed: this.opts.seed,
      signal: req.signal,
      kv: this.opts.kv,
      onToken: (id) => {
        firstTokenMs ??= performance.now() - t0;
        tokens.push(id);
        const s = this.engine.text!.decode(tokens);
        if (s.length > text.length && !s.endsWith('\uFFFD')) {
          req.onText?.(s.slice(text.length));
          text = s;
        }
      },
    });
    const full = r.text ?? '';
    if (full.length > text.length) req.onText?.(full.slice(text.length));
    if (r.stopReason === 'cancelled') throw new GenerationCancelled(full);
    return {
      text: full,
      finishReason: r.stopReason === 'length' ? 'length' : 'stop',
      usage: { promptTokens: r.promptTokens, completionTokens: r.tokens.length },
      timings: { totalMs: performance.now() - t0, firstTokenMs },
    };
  }
}
