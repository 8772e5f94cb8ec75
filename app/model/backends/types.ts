// One interface for every model backend the agent can drive: `openai` (any OpenAI-compatible endpoint)
// today, `native` (the in-process engine, app/model/engine.ts) next.
//
// A native backend can implement it without re-encoding anything: each image carries its raw RGB pixels
// as well as the PNG, and the exact size the model must see (`resized`, from smart_resize; the agent maps
// coordinates back from that size, so a backend must not resize differently). `episode` + image `id`s let
// a backend with a persistent KV cache see that a call extends the previous one: the messages of call t+1
// start with those of call t, except that images older than the history window are dropped (evict them).

export interface ModelImage {
  /** Stable id within an episode, e.g. "step-3": the same screenshot keeps its id across calls. */
  id: string;
  /** Lossless PNG of the image to send, `width` x `height` pixels. */
  png: Buffer;
  width: number;
  height: number;
  /** Packed RGB of the same pixels, when the caller has it (saves a native backend a PNG decode). */
  rgb?: Uint8Array;
  /** The size the model sees after smart_resize (multiples of 28); coordinates in replies count these pixels. */
  resized: { width: number; height: number };
}

export type ContentPart = { type: 'text'; text: string } | { type: 'image'; image: ModelImage };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

export interface GenerateRequest {
  messages: ChatMessage[];
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP?: number;
  /** Aborting cancels generation (the HTTP request, or the engine between tokens). */
  signal?: AbortSignal;
  /** Streamed text deltas, as they arrive. */
  onText?: (delta: string) => void;
  /** Episode id, constant over one agent run (for backends that keep state between calls). */
  episode?: string;
}

export interface GenerateResult {
  text: string;
  finishReason: 'stop' | 'length' | 'cancelled' | 'other';
  usage?: { promptTokens?: number; completionTokens?: number };
  /** Wall time of the call, ms (first byte / total). */
  timings: { totalMs: number; firstTokenMs?: number };
}

export interface ModelBackend {
  /** 'openai' | 'native' | 'scripted' ... */
  readonly kind: string;
  /** Where screenshots go, for the user to see (URL for remote endpoints, 'in-process' for native). */
  readonly destination: string;
  /**
   * smart_resize limits of the model's image processor, when the backend knows them (native: the checkpoint's
   * preprocessor_config.json). The agent resizes and maps coordinates with exactly these.
   */
  readonly imageLimits?: { minPixels: number; maxPixels: number };
  generate(req: GenerateRequest): Promise<GenerateResult>;
  close?(): Promise<void>;
}

export class BackendError extends Error {
  constructor(
    message: string,
    /** HTTP status when the endpoint answered, else undefined. */
    readonly status?: number,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

export class GenerationCancelled extends Error {
  constructor(readonly partial: string) {
    super('generation cancelled');
    this.name = 'GenerationCancelled';
  }
}
