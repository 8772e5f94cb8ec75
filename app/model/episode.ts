// An episode of agent-like turns (a screenshot each, optional text) on a ChatEpisode: keeps the turns
// and builds the conversation the way the UI-TARS agent does (all text, the last N screenshots).
import type { Engine } from './engine.ts';
import type { ProcessedImage } from './preprocess.ts';
import type { ChatMessage } from './text.ts';
import { ChatEpisode, type ChatTurnResult, type KvSettings } from './chat-episode.ts';

export type { Protocol, LayerTelemetry } from './chat-episode.ts';

export interface EpisodeOptions extends KvSettings {
  historyImages?: number; // N screenshots in the prompt (default 5)
  system?: string;
}

export interface TurnInput {
  text?: string;
  image?: ProcessedImage;
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
  signal?: AbortSignal;
  onToken?: (id: number) => void;
}

export interface TurnResult extends ChatTurnResult {
  step: number;
}

interface Turn {
  text?: string;
  image?: ProcessedImage;
  reply?: string;
}

export class Episode {
  private turns: Turn[] = [];
  private chat: ChatEpisode;

  constructor(
    readonly engine: Engine,
    readonly opts: EpisodeOptions,
  ) {
    this.chat = new ChatEpisode(engine, opts);
  }

  /** The conversation at this step: all text, the last N screenshots. */
  private conversation(): { messages: ChatMessage[]; images: ProcessedImage[] } {
    const n = this.opts.historyImages ?? 5;
    const withImage = this.turns.map((t, i) => (t.image ? i : -1)).filter((i) => i >= 0);
    const keep = new Set(withImage.slice(-n));
    const messages: ChatMessage[] = this.opts.system ? [{ role: 'system', content: this.opts.system }] : [];
    const images: ProcessedImage[] = [];
    this.turns.forEach((t, i) => {
      const content: Array<{ type: 'text'; text: string } | { type: 'image' }> = [];
      if (t.text) content.push({ type: 'text', text: t.text });
      if (t.image && keep.has(i)) {
        content.push({ type: 'image' });
        images.push(t.image);
      }
      if (content.length) messages.push({ role: 'user', content });
      if (t.reply !== undefined) messages.push({ role: 'assistant', content: t.reply });
    });
    return { messages, images };
  }

  async step(input: TurnInput): Promise<TurnResult> {
    const turn: Turn = { text: input.text, image: input.image };
    this.turns.push(turn);
    const { messages, images } = this.conversation();
    const r = await this.chat.turn(messages, images, { maxNewTokens: input.maxNewTokens ?? 256, temperature: input.temperature, seed: input.seed, signal: input.signal, onToken: input.onToken });
    turn.reply = r.text;
    return { ...r, step: this.turns.length - 1 };
  }

  async dispose(): Promise<void> {
    await this.chat.dispose();
  }
}
