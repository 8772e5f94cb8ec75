// The in-process engine behind the agent's ModelBackend interface; screenshots never leave the process.
// Without KV settings each call renders the chat and prefills it whole with a full cache. With them, the
// calls of one episode share a ChatEpisode: a persistent cache compressed by the chosen method (or the
// papers' reference protocol), and each result carries the engine's per-turn report as `kvTurn`.
import type { Engine } from '../engine.ts';
import { processImage, type ProcessedImage } from '../preprocess.ts';
import type { ChatMessage as TextMessage } from '../text.ts';
import { ChatEpisode, type ChatTurnResult, type KvSettings } from '../chat-episode.ts';
import { BackendError, GenerationCancelled, type GenerateRequest, type GenerateResult, type ModelBackend, type ModelImage } from './types.ts';

export interface NativeBackendOptions {
  kv?: KvSettings;
  seed?: number;
  /** Called with each persistent-episode turn's report (what the cache holds, timings), after the reply. */
  onKvTurn?: (t: KvTurn) => void;
}

/** The engine's report of a persistent-episode turn, as the host turns it into KV telemetry. */
export type KvTurn = Omit<ChatTurnResult, 'tokens' | 'text' | 'stopReason'> & { method: string; budgetPercent: number | null; capTokens: number | null };

export class NativeBackend implements ModelBackend {
  readonly kind = 'native';
  readonly destination = 'in-process';
  readonly imageLimits: { minPixels: number; maxPixels: number };
  // By image id: a screenshot is preprocessed once while it stays in the history window. An entry serves
  // only the same pixels (ids such as "step-3" repeat across episodes and tasks).
  private cache = new Map<string, { rgb: Uint8Array; p: ProcessedImage }>();
  private chat: ChatEpisode | null = null;
  private chatEpisodeId: string | undefined;

  constructor(
    readonly engine: Engine,
    private readonly opts: NativeBackendOptions = {},
  ) {
    if (!engine.text) throw new BackendError(`${engine.checkpoint.dir}: the native backend needs the checkpoint's tokenizer.json`);
    this.imageLimits = { minPixels: engine.preprocessor.minPixels, maxPixels: engine.preprocessor.maxPixels };
  }

  /** The image as this backend feeds it to the engine (preprocessed once per id and pixels). */
  processed(im: ModelImage): ProcessedImage {
    const hit = this.cache.get(im.id);
    if (hit && hit.rgb === im.rgb) return hit.p;
    if (!im.rgb || im.rgb.length !== im.width * im.height * 3) throw new BackendError(`image ${im.id}: the native backend needs packed RGB pixels (${im.width}x${im.height}x3)`);
    const p = processImage({ width: im.width, height: im.height, data: im.rgb }, this.engine.preprocessor);
    if (p.resizedWidth !== im.resized.width || p.resizedHeight !== im.resized.height)
      throw new BackendError(`image ${im.id}: the agent planned ${im.resized.width}x${im.resized.height} but the checkpoint's processor resizes to ${p.resizedWidth}x${p.resizedHeight}; coordinates would be off`);
    this.cache.set(im.id, { rgb: im.rgb, p });
    return p;
  }

  /** New KV settings apply from the next call (a new method or protocol starts a new cache). */
  setKv(kv: KvSettings | undefined): void {
    const cur = this.opts.kv;
    this.opts.kv = kv;
    if (this.chat && kv && cur && kv.method === cur.method && (kv.protocol ?? 'persistent') === (cur.protocol ?? 'persistent')) this.chat.settings = kv;
    else this.dropChat();
  }

  private dropChat(): void {
    void this.chat?.dispose();
    this.chat = null;
  }

  async close(): Promise<void> {
    if (this.chat) await this.chat.dispose();
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
              images.push(this.processed(c.image));
              live.add(c.image.id);
              return { type: 'image' as const };
            }),
    }));
    for (const id of this.cache.keys()) if (!live.has(id)) this.cache.delete(id); // left the history window
    let text = '';
    let firstTokenMs: number | undefined;
    const tokens: number[] = [];
    const onToken = (id: number) => {
      firstTokenMs ??= performance.now() - t0;
      tokens.push(id);
      const s = this.engine.text!.decode(tokens);
      if (s.length > text.length && !s.endsWith('\uFFFD')) {
        req.onText?.(s.slice(text.length));
        text = s;
      }
    };
    const kv = this.opts.kv;
    let full: string, stopReason: 'stop' | 'length' | 'cancelled', promptTokens: number, kvTurn: KvTurn | undefined;
    if (kv) {
      if (!this.chat || this.chatEpisodeId !== req.episode) {
        this.dropChat();
        this.chat = new ChatEpisode(this.engine, kv);
        this.chatEpisodeId = req.episode;
      }
      const r = await this.chat.turn(messages, images, { maxNewTokens: req.maxTokens, temperature: req.temperature, seed: this.opts.seed, signal: req.signal, onToken });
      ({ text: full, stopReason } = r);
      promptTokens = r.refLen;
      const { tokens: _t, text: _x, stopReason: _s, ...report } = r;
      kvTurn = { ...report, method: kv.method, budgetPercent: kv.capTokens ? null : (kv.budget ?? 20), capTokens: kv.capTokens ?? null };
    } else {
      const r = await this.engine.generate({ messages, images, maxNewTokens: req.maxTokens, temperature: req.temperature, topP: req.topP, seed: this.opts.seed, signal: req.signal, onToken });
      full = r.text ?? '';
      stopReason = r.stopReason;
      promptTokens = r.promptTokens;
    }
    if (full.length > text.length) req.onText?.(full.slice(text.length));
    if (stopReason === 'cancelled') throw new GenerationCancelled(full);
    const result: GenerateResult & { kvTurn?: KvTurn } = {
      text: full,
      finishReason: stopReason === 'length' ? 'length' : 'stop',
      usage: { promptTokens, completionTokens: tokens.length },
      timings: { totalMs: performance.now() - t0, firstTokenMs },
    };
    if (kvTurn) {
      result.kvTurn = kvTurn;
      this.opts.onKvTurn?.(kvTurn);
    }
    return result;
  }
}
