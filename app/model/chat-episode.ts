// A chat on one persistent compressed KV cache. Each call gets the whole conversation as the agent
// would send it (older screenshots may have been dropped from it); only the messages after the last
// assistant reply are new: they are rendered as a continuation of what the cache holds, prefilled, the
// cache is compressed to the budget (b % of the tokens this call's own prompt has: the papers' protocol
// prompt), and the reply is decoded. The `reference` protocol re-prefills the whole prompt every call
// (the method state, such as STaR-KV's EMAs, carries over the episode's calls, as in the papers' runs).
import type { Engine, EngineMemory, NativeEpisodeHandle } from './engine.ts';
import type { ProcessedImage } from './preprocess.ts';
import { kvBytesPerToken } from './checkpoint.ts';
import { TextProcessor, type ChatMessage } from './text.ts';
import { mapKept, TokenLayout, type LayerKeep } from '../kv/layout.ts';

export type Protocol = 'persistent' | 'reference';

export interface KvSettings {
  method: string; // full | snapkv | pyramidkv | h2o | adakv | vlcache | guikv | starkv
  budget?: number; // percent of this call's prompt length (default 20)
  capTokens?: number; // or an absolute cap per layer (window included)
  params?: Record<string, number | boolean | string>;
  protocol?: Protocol;
}

export interface LayerTelemetry {
  layer: number;
  /** The layer's own budget (window included): the uniform cap(L, b), or the layer's share where the method
   *  splits the budget over layers (PyramidKV's pyramid, VL-Cache's sparsity rule). */
  cap: number;
  kept: number; // slots the layer holds after compression
  keep: LayerKeep; // kept cells per frame + kept text tokens
  temperature: number | null;
  normalizedEntropy: number | null;
  lambda: number | null;
  /** MI per KV group: of this turn (miCur) and its EMA over turns (miGroups), as the engine computed them. */
  miCur: number[];
  miGroups: number[];
  groupWeights: number[];
  stability: number[];
  branch: string;
}

export interface ChatTurnResult {
  tokens: number[];
  text: string;
  stopReason: 'stop' | 'length' | 'cancelled';
  prefillTokens: number; // tokens prefilled by this call
  refLen: number; // tokens of the full prompt of this call (the budget's base)
  timings: { visionMs: number; prefillMs: number; compressMs: number; decodeMs: number };
  kvBytes: number;
  fullKvBytes: number; // an uncompressed cache of everything this episode has seen
  layers: LayerTelemetry[];
  layout: { length: number; frames: Array<{ frame: number; start: number; rows: number; cols: number }> };
  memory: EngineMemory;
}

export interface ChatTurnOptions {
  maxNewTokens: number;
  temperature?: number;
  seed?: number;
  signal?: AbortSignal;
  onToken?: (id: number) => void;
}

const countAssistant = (m: ChatMessage[]) => m.filter((x) => x.role === 'assistant').length;
const imagesIn = (m: ChatMessage[]) => m.reduce((a, x) => a + (typeof x.content === 'string' ? 0 : x.content.filter((c) => c.type === 'image').length), 0);

export class ChatEpisode {
  private native: NativeEpisodeHandle;
  private layout = new TokenLayout();
  private assistants = -1; // assistant messages in the cache (-1: empty cache)
  private seen = 0; // tokens of the whole episode, as if nothing were evicted
  private unfed: number | null = null; // the last reply's final token when it was not a stop token (never fed)
  readonly text: TextProcessor;

  constructor(
    readonly engine: Engine,
    public settings: KvSettings,
  ) {
    if (!engine.text) throw new Error(`${engine.checkpoint.dir}: episodes need the checkpoint's tokenizer.json`);
    this.text = engine.text;
    this.native = engine.createNativeEpisode();
  }

  get protocol(): Protocol {
    return this.settings.protocol ?? 'persistent';
  }

  /** Back to a new episode; `keepState`: the method state (STaR-KV's EMAs) stays, only the cache goes. */
  async reset(keepState = false): Promise<void> {
    await (keepState ? this.native.clearCache() : this.native.reset());
    this.layout = new TokenLayout();
    this.assistants = -1;
    this.seen = 0;
    this.unfed = null;
  }

  /** `images` are the images of `messages`, in order. */
  async turn(messages: ChatMessage[], images: ProcessedImage[], o: ChatTurnOptions): Promise<ChatTurnResult> {
    if (imagesIn(messages) !== images.length) throw new Error(`the messages hold ${imagesIn(messages)} image(s) but ${images.length} were given`);
    const refIds = this.text.encodeChat(messages, images.map((im) => im.tokens));
    let ids: number[];
    let newImages: ProcessedImage[];
    const lastAssistant = messages.map((m) => m.role).lastIndexOf('assistant');
    const extends_ = this.protocol === 'persistent' && this.assistants >= 0 && countAssistant(messages) === this.assistants + 1 && lastAssistant >= 0;
    if (!extends_) {
      // The reference protocol re-prefills each step but, as the papers' drivers do, keeps the method
      // state across the steps of an episode (reset per episode, not per step).
      if (this.protocol === 'reference') await this.reset(true);
      else if (this.assistants >= 0) await this.reset();
      ids = refIds;
      newImages = images;
      if (this.protocol === 'reference') this.seen = 0;
    } else {
      const fresh = messages.slice(lastAssistant + 1);
      if (fresh.length === 0) throw new Error('nothing new to append after the last assistant reply');
      newImages = images.slice(images.length - imagesIn(fresh));
      // Render [system, ...fresh] and keep what follows the system turn (templates add a default one).
      const marker: ChatMessage = { role: 'system', content: '\u0000' };
      const full = TextProcessor.expandImagePads(this.text.render([marker, ...fresh]), newImages.map((im) => im.tokens));
      const cut = full.indexOf('<|im_end|>\n', full.indexOf('\u0000')) + '<|im_end|>\n'.length;
      // The engine never feeds a reply's last sampled token: a stop token is replaced by the template's
      // <|im_end|>; a reply cut by length gets its last token first.
      ids = [...(this.unfed !== null ? [this.unfed] : []), ...this.text.encode('<|im_end|>\n' + full.slice(cut))];
    }
    const grids = newImages.map((im) => [im.grid[1] / 2, im.grid[2] / 2] as [number, number]);
    this.layout.append(ids, this.engine.config.imageTokenId, grids);
    const s = this.settings;
    let r;
    try {
      r = await this.engine.runEpisodeTurn(this.native, {
        ids,
        images: newImages,
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        seed: o.seed,
        signal: o.signal,
        onToken: o.onToken,
        kv: { method: s.method, params: s.params ?? {}, percent: s.budget ?? 20, refLen: refIds.length, capTokens: s.capTokens ?? -1 },
      });
    } catch (e) {
      await this.reset(); // the cache may hold part of this turn: start over next time
      throw e;
    }
    this.unfed = r.stopReason === 'length' && r.tokens.length ? r.tokens[r.tokens.length - 1]! : null;
    const fed = Math.max(0, r.tokens.length - 1); // the last sampled token is never fed
    this.layout.appendText(fed);
    this.assistants = countAssistant(messages);
    this.seen += ids.length + fed;
    const perToken = kvBytesPerToken(this.engine.config);
    const result: ChatTurnResult = {
      tokens: r.tokens,
      text: this.text.decode(r.tokens),
      stopReason: r.stopReason,
      prefillTokens: ids.length,
      refLen: refIds.length,
      timings: r.timings,
      kvBytes: r.kv.bytes,
      fullKvBytes: perToken * this.seen,
      layers: r.kv.layers.map((l, i) => ({
        layer: i,
        cap: l.cap,
        kept: l.slotTokens.length,
        keep: mapKept(this.layout, l.slotTokens),
        temperature: l.telemetry?.temperature ?? null,
        normalizedEntropy: l.telemetry?.normalizedEntropy ?? null,
        lambda: l.telemetry?.lambdaEff ?? null,
        miCur: l.telemetry?.miCur ?? [],
        miGroups: l.telemetry?.miEma ?? [],
        groupWeights: l.telemetry?.groupWeights ?? [],
        stability: l.telemetry?.stability ?? [],
        branch: l.telemetry?.branch ?? '',
      })),
      layout: { length: this.layout.length, frames: this.layout.frames.map((f) => ({ ...f })) },
      memory: this.engine.memory(),
    };
    if (r.stopReason === 'cancelled') await this.reset(); // a stopped turn leaves a partial reply: start over next time
    return result;
  }

  async dispose(): Promise<void> {
    await this.native.dispose();
  }
}
