// A persistent episode: one compressed KV cache kept across agent turns. Each turn prefills only its new
// tokens against the compressed cache, compresses every layer to its budget with the chosen method (the
// new turn's observation window), decodes the reply against the compressed cache and keeps it.
// The `reference` protocol instead rebuilds the papers' prompt (last N screenshots + all text) and
// re-prefills it every step, for comparison.
import type { Engine, EngineMemory, NativeEpisodeHandle } from './engine.ts';
import type { ProcessedImage } from './preprocess.ts';
import { TextProcessor, type ChatMessage } from './text.ts';
import { mapKept, TokenLayout, type LayerKeep } from '../kv/layout.ts';

export type Protocol = 'persistent' | 'reference';

export interface EpisodeOptions {
  method: string; // full | snapkv | pyramidkv | h2o | adakv | vlcache | guikv | starkv
  budget?: number; // percent of the reference prompt's length (default 20)
  capTokens?: number; // or an absolute cap per layer (window included)
  params?: Record<string, number | boolean | string>;
  historyImages?: number; // N screenshots in the reference prompt (default 5)
  protocol?: Protocol;
  system?: string; // system prompt (default: the template's)
}

export interface TurnInput {
  text?: string; // user text of this turn (e.g. the task, on the first turn)
  image?: ProcessedImage; // this turn's screenshot
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
  signal?: AbortSignal;
  onToken?: (id: number) => void;
}

export interface LayerTelemetry {
  layer: number;
  cap: number;
  kept: number; // slots in the layer after compression
  keep: LayerKeep; // kept cells per frame + kept text tokens
  temperature: number | null;
  normalizedEntropy: number | null;
  lambda: number | null;
  miGroups: number[];
  groupWeights: number[];
  stability: number[];
  branch: string;
}

export interface TurnResult {
  step: number;
  tokens: number[];
  text: string;
  stopReason: 'stop' | 'length' | 'cancelled';
  prefillTokens: number; // tokens prefilled this turn
  refLen: number; // the reference protocol's prompt length at this step (budget base)
  timings: { visionMs: number; prefillMs: number; compressMs: number; decodeMs: number };
  kvBytes: number;
  fullKvBytes: number; // what an uncompressed cache of the whole episode would hold
  layers: LayerTelemetry[];
  memory: EngineMemory;
}

interface Turn {
  text?: string;
  image?: ProcessedImage;
  reply?: string;
}

export class Episode {
  private turns: Turn[] = [];
  private layout = new TokenLayout();
  private native: NativeEpisodeHandle;
  private totalTokens = 0; // every token of the episode, as if nothing were evicted
  readonly text: TextProcessor;

  constructor(
    readonly engine: Engine,
    readonly opts: EpisodeOptions,
  ) {
    if (!engine.text) throw new Error(`${engine.checkpoint.dir}: episodes need the checkpoint's tokenizer.json`);
    this.text = engine.text;
    this.native = engine.createNativeEpisode();
  }

  get protocol(): Protocol {
    return this.opts.protocol ?? 'persistent';
  }

  private systemMessages(): ChatMessage[] {
    return this.opts.system ? [{ role: 'system', content: this.opts.system }] : [];
  }

  private userMessage(t: Turn): ChatMessage {
    const content: Array<{ type: 'text'; text: string } | { type: 'image' }> = [];
    if (t.text) content.push({ type: 'text', text: t.text });
    if (t.image) content.push({ type: 'image' });
    return { role: 'user', content };
  }

  /** The papers' prompt at this step: all text, the last N screenshots. */
  private referencePrompt(): { ids: number[]; images: ProcessedImage[] } {
    const n = this.opts.historyImages ?? 5;
    const withImage = this.turns.map((t, i) => (t.image ? i : -1)).filter((i) => i >= 0);
    const keep = new Set(withImage.slice(-n));
    const messages: ChatMessage[] = [...this.systemMessages()];
    const images: ProcessedImage[] = [];
    this.turns.forEach((t, i) => {
      const shown = { ...t, image: keep.has(i) ? t.image : undefined };
      if (shown.image) images.push(shown.image);
      if (shown.text || shown.image) messages.push(this.userMessage(shown));
      if (t.reply !== undefined) messages.push({ role: 'assistant', content: t.reply });
    });
    return { ids: this.text.encodeChat(messages, images.map((im) => im.tokens)), images };
  }

  /** Ids of this turn's new tokens for the persistent cache (a continuation of what it holds). */
  private continuation(t: Turn): number[] {
    if (this.turns.length === 1) {
      return this.text.encodeChat([...this.systemMessages(), this.userMessage(t)], t.image ? [t.image.tokens] : []);
    }
    // Render [system, user] and keep only the user part (the template adds a default system prompt first).
    const marker: ChatMessage = { role: 'system', content: '\u0000' };
    const full = TextProcessor.expandImagePads(this.text.render([marker, this.userMessage(t)]), t.image ? [t.image.tokens] : []);
    const cut = full.indexOf('<|im_end|>\n', full.indexOf('\u0000')) + '<|im_end|>\n'.length;
    // The previous reply's <|im_end|> is not in the cache (sampled but never fed, or cut by length): close it.
    return this.text.encode('<|im_end|>\n' + full.slice(cut));
  }

  async step(input: TurnInput): Promise<TurnResult> {
    const turn: Turn = { text: input.text, image: input.image };
    this.turns.push(turn);
    const ref = this.referencePrompt();
    let ids: number[], images: ProcessedImage[];
    if (this.protocol === 'reference') {
      await this.native.reset();
      this.layout = new TokenLayout();
      ({ ids, images } = ref);
    } else {
      ids = this.continuation(turn);
      images = input.image ? [input.image] : [];
    }
    const grids = images.map((im) => [im.grid[1] / 2, im.grid[2] / 2] as [number, number]);
    this.layout.append(ids, this.engine.config.imageTokenId, grids);
    const kv = { method: this.opts.method, params: this.opts.params ?? {}, percent: this.opts.budget ?? 20, refLen: ref.ids.length, capTokens: this.opts.capTokens ?? -1 };
    const r = await this.engine.runEpisodeTurn(this.native, {
      ids,
      images,
      maxNewTokens: input.maxNewTokens ?? 256,
      temperature: input.temperature,
      seed: input.seed,
      signal: input.signal,
      onToken: input.onToken,
      kv,
    });
    const tokens = r.tokens;
    const fed = r.stopReason === 'stop' ? tokens.length - 1 : tokens.length; // a sampled stop token is never fed
    this.layout.appendText(fed);
    turn.reply = this.text.decode(tokens);
    this.totalTokens = (this.protocol === 'reference' ? 0 : this.totalTokens) + ids.length + fed;
    const perToken = 2 * this.engine.config.numLayers * this.engine.config.numKvHeads * this.engine.config.headDim * 4;
    const layers: LayerTelemetry[] = r.kv.layers.map((l, i) => ({
      layer: i,
      cap: l.cap,
      kept: l.slotTokens.length,
      keep: mapKept(this.layout, l.slotTokens),
      temperature: l.telemetry?.temperature ?? null,
      normalizedEntropy: l.telemetry?.normalizedEntropy ?? null,
      lambda: l.telemetry?.lambdaEff ?? null,
      miGroups: l.telemetry?.miEma ?? [],
      groupWeights: l.telemetry?.groupWeights ?? [],
      stability: l.telemetry?.stability ?? [],
      branch: l.telemetry?.branch ?? '',
    }));
    return {
      step: this.turns.length - 1,
      tokens,
      text: turn.reply,
      stopReason: r.stopReason,
      prefillTokens: ids.length,
      refLen: ref.ids.length,
      timings: r.timings,
      kvBytes: r.kv.bytes,
      fullKvBytes: perToken * this.totalTokens,
      layers,
      memory: this.engine.memory(),
    };
  }

  async dispose(): Promise<void> {
    await this.native.dispose();
  }
}
