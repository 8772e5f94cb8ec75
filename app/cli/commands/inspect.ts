// `starkv inspect <dir>`: what a checkpoint folder holds, or exactly what is wrong with it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { estimateMemory, kvBytesPerToken, openCheckpoint } from '../../model/checkpoint.ts';
import { readPreprocessorConfig, smartResize } from '../../model/preprocess.ts';
import { TextProcessor } from '../../model/text.ts';
import { formatBytes } from '../format.ts';

export default async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help || positionals.length !== 1) {
    process.stdout.write('usage: starkv inspect <checkpoint-dir> [--json]\n');
    return values.help ? 0 : 2;
  }
  const ck = openCheckpoint(positionals[0]!);
  const c = ck.config;
  const pre = readPreprocessorConfig(ck.dir);
  const hasPreprocessor = existsSync(path.join(ck.dir, 'preprocessor_config.json'));
  const hasTokenizer = TextProcessor.fromDir(ck.dir) !== null;
  // One 1920x1080 screenshot per ViT call, resized within this checkpoint's own pixel limits.
  const unit = pre.patchSize * pre.mergeSize;
  const [rh, rw] = smartResize(1080, 1920, pre.minPixels, pre.maxPixels, unit);
  const patches = (rh / pre.patchSize) * (rw / pre.patchSize);
  const mem = estimateMemory(ck, 4096, patches);
  const info = {
    dir: ck.dir,
    architecture: c.arch === 'qwen2_vl' ? 'Qwen2-VL' : 'Qwen2.5-VL',
    layout: ck.layout === 'old' ? 'model.layers.* / visual.*' : 'model.language_model.* / model.visual.*',
    dtype: ck.dtype,
    files: ck.files.length,
    parameters: ck.parameters,
    weightBytes: ck.weightBytes,
    text: { hidden: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, intermediate: c.intermediateSize, vocab: c.vocabSize, tiedHead: c.tieWordEmbeddings, mropeSection: c.mropeSection, ropeTheta: c.ropeTheta },
    vision: c.vision,
    preprocessor: pre,
    preprocessorConfigFound: hasPreprocessor,
    tokenizer: hasTokenizer,
    kvBytesPerToken: kvBytesPerToken(c),
    estimatedMemory: { ...mem, assumption: `4096 prompt tokens, fp32 KV, one 1920x1080 screenshot per ViT call (${rw}x${rh} after resizing: ${patches} patches, ${patches / (pre.mergeSize * pre.mergeSize)} visual tokens)` },
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `${info.architecture} checkpoint at ${ck.dir}`,
    `  tensors   ${ck.tensors.length} in ${ck.files.length} file(s), ${ck.dtype}, names ${info.layout}`,
    `  size      ${ck.parameters >= 1e9 ? (ck.parameters / 1e9).toFixed(2) + ' B' : (ck.parameters / 1e6).toFixed(3) + ' M'} parameters, ${formatBytes(ck.weightBytes)} of weights`,
    `  text      hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads / ${c.numKvHeads} KV heads (hd ${c.headDim}), MLP ${c.intermediateSize}, vocab ${c.vocabSize}, ${c.tieWordEmbeddings ? 'tied' : 'separate'} head`,
    `  vision    width ${c.vision.width}, depth ${c.vision.depth}, ${c.vision.numHeads} heads, MLP ${c.vision.mlpWidth}, ${c.vision.norm}, ${c.vision.act}` +
      (c.arch === 'qwen2_5_vl' ? `, windows ${c.vision.windowSize}px, full attention in blocks [${c.vision.fullattBlockIndexes.join(',')}]` : ''),
    `  images    ${pre.minPixels}..${pre.maxPixels} pixels, patch ${pre.patchSize}, merge ${pre.mergeSize}` +
      (hasPreprocessor ? '' : ' (no preprocessor_config.json: the Qwen2-VL processor defaults; UI-TARS-1.5 ships max_pixels 12845056)'),
    `  tokenizer ${hasTokenizer ? 'tokenizer.json found' : 'none (use --input-ids)'}`,
    `  KV cache  ${formatBytes(kvBytesPerToken(c))} per token (fp32)`,
    `  memory    ~${formatBytes(mem.total)} (weights ${formatBytes(mem.weights)}, KV ${formatBytes(mem.kv)}, activations ${formatBytes(mem.activations)}) for ${info.estimatedMemory.assumption}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
