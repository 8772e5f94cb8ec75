// The in-process engine from TypeScript: loads a checkpoint folder into the native engine and runs
// cancellable, streaming generation. Everything heavy runs on the engine's own worker thread.
import os from 'node:os';
import { loadAddon } from '../native.ts';
import { kvBytesPerToken, openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { batchImages, decodeImage, ImageError, processImage, readPreprocessorConfig, type PreprocessorConfig, type ProcessedImage } from './preprocess.ts';
import { TextProcessor, type ChatMessage } from './text.ts';

export interface MemoryCategory {
  current: number;
  peak: number;
}
export interface EngineMemory {
  weights: MemoryCategory;
  kv: MemoryCategory;
  activations: MemoryCategory;
  workspace: MemoryCategory;
  /** On a CUDA device: the driver's own figure (cudaMemGetInfo, every process on the GPU). */
  device?: { freeBytes: number; totalBytes: number };
}

/** Where the engine runs: 'auto' (a CUDA GPU when the build has CUDA and one is present, else the CPU), 'cpu', 'cuda', 'cuda:N'. */
export type DeviceChoice = string;

/** Checks a device string from the settings or the command line; returns it normalised. */
export function parseDevice(d: string | undefined): DeviceChoice {
  const v = (d ?? 'auto').trim().toLowerCase();
  if (!/^(auto|cpu|cuda(:\d{1,3})?)$/.test(v)) throw new Error(`device '${d}' is not auto, cpu, cuda or cuda:N`);
  return v;
}

/** One kind of backend op in an op profile: calls and total time (device time on a GPU). */
export interface OpTime {
  op: string;
  calls: number;
  ms: number;
}

export interface EngineInfo {
  threads: number;
  gemm: string;
  /** How the CPU reads the checkpoint: 'mapped' (the files' page cache) or 'resident' (read into
   * anonymous huge pages; see Engine.load's `weights`). A device model's host copy is 'mapped'. */
  weights?: 'mapped' | 'resident';
  simd: string;
  /** e.g. 'cpu' or 'cuda:0 NVIDIA H100 (sm_90)' (absent from an addon built before devices existed). */
  device?: string;
  /** Why 'auto' chose the CPU (e.g. 'no CUDA device: ...', 'built without CUDA'); empty otherwise. */
  deviceNote?: string;
}

export interface GenerateOptions {
  ids?: number[]; // full prompt ids (image pad runs included)
  messages?: ChatMessage[]; // or a chat, rendered with the checkpoint's template
  images?: Array<string | Buffer | ProcessedImage>;
  maxNewTokens?: number;
  temperature?: number; // 0 = greedy
  topP?: number;
  topK?: number;
  seed?: number;
  stopTokens?: number[]; // default: the checkpoint's eos ids
  signal?: AbortSignal;
  onToken?: (id: number) => void;
  trace?: boolean;
  kv?: { method: string; budget: number; params?: Record<string, number | boolean | string> }; // KV compression after prefill
}

export interface GenerateResult {
  tokens: number[];
  text?: string;
  promptTokens: number;
  promptLogitsLast: Float32Array;
  stopReason: 'stop' | 'length' | 'cancelled';
  timings: { visionMs: number; prefillMs: number; decodeMs: number; promptTokens: number; generatedTokens: number; preprocessMs: number };
  images: Array<{ grid: [number, number, number]; resizedWidth: number; resizedHeight: number; originalWidth: number; originalHeight: number; tokens: number }>;
  trace?: Record<string, Float32Array>;
  kv?: { bytes: number; fullBytes: number; keptPerLayer: number[] };
}

export interface NativeEpisodeHandle {
  id: number;
  reset(): Promise<void>;
  /** Empties the cache but keeps the method state (STaR-KV's EMAs): the reference protocol's re-prefill. */
  clearCache(): Promise<void>;
  dispose(): Promise<void>;
}

export interface EpisodeTurnNative {
  tokens: number[];
  promptLogitsLast: Float32Array;
  stopReason: 'stop' | 'length' | 'cancelled';
  timings: { visionMs: number; prefillMs: number; compressMs: number; decodeMs: number };
  kv: {
    bytes: number;
    layers: Array<{
      cap: number;
      slotTokens: Int32Array; // source token index of every slot the layer holds after compression
      telemetry?: { temperature: number | null; normalizedEntropy: number | null; lambdaEff: number | null; miCur: number[]; miEma: number[]; groupWeights: number[]; stability: number[]; branch: string };
    }>;
  };
}

export class Engine {
  private constructor(
    readonly checkpoint: Checkpoint,
    readonly preprocessor: PreprocessorConfig,
    readonly text: TextProcessor | null,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    private readonly native: any,
  ) {}

  /**
   * `cpuMatmul`: the CPU's prefill arithmetic for BF16 weights. 'fp32' (default: weights widened, the
   * fp32 arithmetic the golden checks hold to), 'bf16' (x rounded to bf16, fp32 accumulation, oneDNN's
   * AVX512-BF16 / AMX kernels: about 1.8x the fp32 GEMM rate with AVX512-BF16, about 5x with AMX, an error where
   * not) or 'auto' (bf16 where fast, else fp32).
   * `weights` (CPU): 'mapped' (the files' page cache: shared, evictable), 'resident' (read into
   * anonymous transparent huge pages: decode streams every weight per token, and over many GB 4 KiB
   * page-cache pages are page-walk bound: UI-TARS-1.5-7B decoded 2x faster here) or 'auto' (default:
   * resident when the checkpoint is 2 GiB or more and twice it fits in the available memory with 4 GiB
   * to spare: the copy and the page cache it is read from; with less, every load reads the disk).
   * `threads` (default: all): at most the threads the hardware runs at once; more would only contend.
   */
  static async load(dir: string, opts: { threads?: number; device?: string; cpuMatmul?: string; weights?: string } = {}): Promise<Engine> {
    const device = parseDevice(opts.device);
    const cpuMatmul = opts.cpuMatmul ?? 'fp32';
    if (!['auto', 'fp32', 'bf16'].includes(cpuMatmul)) throw new Error(`cpu matmul '${cpuMatmul}' is not auto, fp32 or bf16`);
    const weights = opts.weights ?? 'auto';
    if (!['auto', 'mapped', 'resident'].includes(weights)) throw new Error(`weights '${weights}' is not auto, mapped or resident`);
    const ck = openCheckpoint(dir);
    const pre = readPreprocessorConfig(ck.dir);
    const text = TextProcessor.fromDir(ck.dir);
    const addon = loadAddon();
    const { eosTokenIds: _eos, ...config } = ck.config;
    const native = await addon.loadModel({
      config,
      files: ck.files,
      tensors: ck.tensors.map((t) => ({ name: t.name, file: t.file, dtype: t.dtype, shape: t.shape, offset: t.offset, nbytes: t.nbytes })),
      threads: opts.threads === undefined ? undefined : Math.min(opts.threads, Math.max(1, os.availableParallelism())),
      device,
      cpuMatmul,
      weights,
    });
    return new Engine(ck, pre, text, native);
  }

  get config() {
    return this.checkpoint.config;
  }

  async processImages(images: Array<string | Buffer | ProcessedImage>): Promise<ProcessedImage[]> {
    return Promise.all(
      images.map(async (im, i) => {
        if (typeof im !== 'string' && !Buffer.isBuffer(im)) return im;
        const decoded = await decodeImage(im);
        try {
          return processImage(decoded, this.preprocessor);
        } catch (e) {
          // name the image: a prompt may carry several
          throw new ImageError(`${typeof im === 'string' ? im : `image ${i} (${im.length} bytes)`}: ${(e as Error).message}`);
        }
      }),
    );
  }

  /** Checks that the image pad runs of `ids` match the images, in order; throws with what is wrong. */
  checkImagePads(ids: number[], images: ProcessedImage[]): void {
    const pad = this.config.imageTokenId;
    const runs: number[] = [];
    for (let i = 0; i < ids.length; ) {
      if (ids[i] !== pad) {
        i++;
        continue;
      }
      let j = i;
      while (j < ids.length && ids[j] === pad) j++;
      runs.push(j - i);
      i = j;
    }
    const total = runs.reduce((a, b) => a + b, 0);
    const want = images.reduce((a, im) => a + im.tokens, 0);
    if (total !== want) {
      throw new Error(
        `the prompt has ${total} image pad token(s) (id ${pad}) in ${runs.length} run(s) [${runs.join(', ')}] but the ${images.length} image(s) need ${want} [${images.map((im) => im.tokens).join(', ')}]`,
      );
    }
  }

  async generate(opts: GenerateOptions): Promise<GenerateResult> {
    const t0 = performance.now();
    const images = await this.processImages(opts.images ?? []);
    let ids: number[];
    if (opts.ids) ids = opts.ids;
    else if (opts.messages) {
      if (!this.text) throw new Error(`${this.checkpoint.dir}: no tokenizer.json, so a chat prompt cannot be encoded (pass ids instead)`);
      ids = this.text.encodeChat(opts.messages, images.map((im) => im.tokens));
    } else throw new Error('generate needs ids or messages');
    if (ids.length === 0) throw new Error('the prompt is empty');
    const V = this.config.vocabSize;
    const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= V);
    if (bad >= 0) throw new Error(`prompt token ${bad} has id ${ids[bad]}, outside the vocabulary [0, ${V})`);
    this.checkImagePads(ids, images);
    const maxNew = opts.maxNewTokens ?? 256;
    if (ids.length + maxNew > this.config.maxPositionEmbeddings)
      throw new Error(`the prompt (${ids.length} tokens) plus ${maxNew} new tokens exceeds the model's context of ${this.config.maxPositionEmbeddings} positions`);
    const { pixels, grids } = batchImages(images);
    const preprocessMs = performance.now() - t0;
    if (opts.signal?.aborted) throw new Error('generation cancelled before it started');
    const handle = this.native.generate(
      {
        ids: Int32Array.from(ids),
        pixels: images.length ? pixels : undefined,
        grids: images.length ? grids : undefined,
        maxNewTokens: maxNew,
        temperature: opts.temperature ?? 0,
        topP: opts.topP ?? 1,
        topK: opts.topK ?? 0,
        seed: opts.seed ?? 0,
        stopTokens: Int32Array.from(opts.stopTokens ?? this.config.eosTokenIds),
        trace: !!opts.trace,
        kv: opts.kv ? { method: opts.kv.method, params: opts.kv.params ?? {}, percent: opts.kv.budget } : undefined,
      },
      opts.onToken,
    );
    const onAbort = () => handle.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await handle.promise;
      const tokens = Array.from(r.tokens as Int32Array);
      return {
        tokens,
        text: this.text ? this.text.decode(tokens) : undefined,
        promptTokens: ids.length,
        promptLogitsLast: r.promptLogitsLast,
        stopReason: r.stopReason,
        timings: { ...r.timings, preprocessMs },
        images: images.map(({ grid, resizedWidth, resizedHeight, originalWidth, originalHeight, tokens: n }) => ({ grid, resizedWidth, resizedHeight, originalWidth, originalHeight, tokens: n })),
        trace: r.trace,
        kv: opts.kv
          ? {
              bytes: r.kv.bytes,
              fullBytes: kvBytesPerToken(this.config) * (ids.length + Math.max(0, tokens.length - 1)),
              keptPerLayer: (r.kv.layers as Array<{ slotTokens: Int32Array }>).map((l) => l.slotTokens.length),
            }
          : undefined,
      };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A native episode: a persistent KV cache with per-layer compression state (app/model/episode.ts). */
  createNativeEpisode(): NativeEpisodeHandle {
    const id: number = this.native.createEpisode();
    return {
      id,
      reset: () => this.native.episodeReset(id),
      clearCache: () => this.native.episodeReset(id, true),
      dispose: () => this.native.episodeDispose(id),
    };
  }

  /** One turn on a native episode: prefill `ids` against its cache, compress, decode. */
  async runEpisodeTurn(
    episode: NativeEpisodeHandle,
    o: {
      ids: number[];
      images: ProcessedImage[];
      maxNewTokens: number;
      temperature?: number;
      seed?: number;
      signal?: AbortSignal;
      onToken?: (id: number) => void;
      kv: { method: string; params: Record<string, number | boolean | string>; percent: number; refLen: number; capTokens: number };
    },
  ): Promise<EpisodeTurnNative> {
    this.checkImagePads(o.ids, o.images);
    const { pixels, grids } = batchImages(o.images);
    const handle = this.native.episodeAppend(
      episode.id,
      {
        ids: Int32Array.from(o.ids),
        pixels: o.images.length ? pixels : undefined,
        grids: o.images.length ? grids : undefined,
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature ?? 0,
        seed: o.seed ?? 0,
        stopTokens: Int32Array.from(this.config.eosTokenIds),
        kv: o.kv,
      },
      o.onToken,
    );
    const onAbort = () => handle.cancel();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await handle.promise;
      return { ...r, tokens: Array.from(r.tokens as Int32Array) };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** M-RoPE position ids ([3, L] row-major: t, h, w) and the rope delta of a prompt (get_rope_index). */
  ropeIndex(ids: number[], images: ProcessedImage[]): { positions: Int32Array; ropeDelta: number } {
    return this.native.ropeIndex(Int32Array.from(ids), batchImages(images).grids);
  }

  memory(): EngineMemory {
    return this.native.memory();
  }

  info(): EngineInfo {
    return this.native.info();
  }

  /**
   * The backend's op profile: what it collected since the last call (most time first), then profiling
   * `on` or off. Queued in the engine behind the calls already there, so it covers whole generations
   * (a generate is queued once its images are read and preprocessed).
   */
  opProfile(on: boolean): Promise<OpTime[]> {
    return this.native.opProfile(on);
  }

  /** 'cpu' or 'cuda:N' (the first word of info().device). */
  get device(): string {
    return (this.info().device ?? 'cpu').split(' ')[0]!;
  }

  dispose(): void {
    this.native.dispose();
  }
}
