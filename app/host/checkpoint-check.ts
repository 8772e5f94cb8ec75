// Validates a checkpoint folder on the spot with the engine's own checks (app/model/checkpoint.ts), for
// the settings panel: a one-line summary, or the engine's clear error naming the file and tensor.
import path from 'node:path';
import { openCheckpoint } from '../model/checkpoint.ts';

const gib = (b: number) => `${(b / 2 ** 30).toFixed(b < 2 ** 30 ? 3 : 2)} GiB`;

export async function checkCheckpoint(dir: string): Promise<{ dir: string; ok: boolean; summary?: string; error?: string }> {
  const abs = path.resolve(dir.trim());
  try {
    const ck = openCheckpoint(abs);
    const c = ck.config;
    const params = ck.parameters >= 1e9 ? `${(ck.parameters / 1e9).toFixed(2)}B` : `${(ck.parameters / 1e6).toFixed(1)}M`;
    const summary =
      `${c.arch}, ${params} parameters (${ck.dtype}, ${gib(ck.weightBytes)}), ${c.numLayers} layers, ` +
      `${c.numHeads} heads / ${c.numKvHeads} KV heads, head dim ${c.headDim}, ${ck.files.length} weight file${ck.files.length === 1 ? '' : 's'}`;
    return { dir: abs, ok: true, summary };
  } catch (e) {
    return { dir: abs, ok: false, error: (e as Error).message };
  }
}
