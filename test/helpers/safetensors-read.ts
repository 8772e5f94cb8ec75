// Test helper: reads whole tensors from a safetensors file into typed arrays (F32, BF16 -> F32, I64, U8).
import { readFileSync } from 'node:fs';

export interface LoadedTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | BigInt64Array | Uint8Array;
}

export function readSafetensors(file: string): Map<string, LoadedTensor> {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = new Map<string, LoadedTensor>();
  for (const [name, e] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue;
    const [b, en] = e.data_offsets as [number, number];
    const raw = buf.subarray(8 + n + b, 8 + n + en);
    const copy = new Uint8Array(raw); // aligned copy
    let data: LoadedTensor['data'];
    if (e.dtype === 'F32') data = new Float32Array(copy.buffer);
    else if (e.dtype === 'BF16') {
      const u16 = new Uint16Array(copy.buffer);
      const u32 = new Uint32Array(u16.length);
      for (let i = 0; i < u16.length; i++) u32[i] = u16[i]! << 16;
      data = new Float32Array(u32.buffer);
    } else if (e.dtype === 'I64') data = new BigInt64Array(copy.buffer);
    else data = copy;
    out.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

export function toNumbers(t: LoadedTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** max |a - b| / max(1, max |b|) */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / Math.max(1, s);
}
