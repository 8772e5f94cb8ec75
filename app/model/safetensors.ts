// Reads safetensors headers (single file or sharded with model.safetensors.index.json) and validates
// every entry against the file it lives in. The data itself is mmapped by the native engine.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';

export type DType = 'BF16' | 'F16' | 'F32';
const DTYPE_BYTES: Record<string, number> = { BF16: 2, F16: 2, F32: 4, I64: 8, I32: 4, U8: 1, F64: 8, BOOL: 1 };

export interface TensorEntry {
  name: string; // as stored in the file
  file: number; // index into TensorTable.files
  dtype: string;
  shape: number[];
  offset: number; // absolute byte offset of the data in the file
  nbytes: number;
  stored?: string; // the name in the file, when `name` was normalised
}

export interface TensorTable {
  files: string[];
  tensors: Map<string, TensorEntry>;
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

const MAX_HEADER = 100 * 1024 * 1024;

/** Parses one safetensors file's header and checks that every tensor lies inside the file. */
export function readSafetensorsHeader(file: string, fileIndex = 0): TensorEntry[] {
  if (!existsSync(file)) throw new CheckpointError(`${file}: file not found`);
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new CheckpointError(`${file}: truncated (${size} bytes; a safetensors file starts with an 8-byte header length)`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = lenBuf.readBigUInt64LE(0);
    if (headerLen > BigInt(Math.min(MAX_HEADER, size - 8)))
      throw new CheckpointError(`${file}: header length ${headerLen} exceeds the file (${size} bytes): truncated or not a safetensors file`);
    const n = Number(headerLen);
    const hb = Buffer.alloc(n);
    readSync(fd, hb, 0, n, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(hb.toString('utf8'));
    } catch (e) {
      throw new CheckpointError(`${file}: header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      throw new CheckpointError(`${file}: header is not a JSON object`);
    const dataStart = 8 + n;
    const dataLen = size - dataStart;
    const out: TensorEntry[] = [];
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e?.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2)
        throw new CheckpointError(`${file}: tensor '${name}': malformed header entry`);
      const bytes = DTYPE_BYTES[e.dtype];
      if (bytes === undefined) throw new CheckpointError(`${file}: tensor '${name}': unknown dtype '${e.dtype}'`);
      const shape = e.shape as number[];
      if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new CheckpointError(`${file}: tensor '${name}': bad shape ${JSON.stringify(shape)}`);
      const [b, en] = e.data_offsets as number[];
      if (!Number.isInteger(b) || !Number.isInteger(en) || b! < 0 || en! < b!)
        throw new CheckpointError(`${file}: tensor '${name}': bad data_offsets ${JSON.stringify(e.data_offsets)}`);
      const want = shape.reduce((a, d) => a * d, 1) * bytes;
      if (en! - b! !== want)
        throw new CheckpointError(`${file}: tensor '${name}': data_offsets span ${en! - b!} bytes but ${e.dtype}${JSON.stringify(shape)} needs ${want}`);
      if (en! > dataLen)
        throw new CheckpointError(`${file}: tensor '${name}': data ends at byte ${dataStart + en!} but the file has ${size} bytes (truncated, or the header lies about offsets)`);
      out.push({ name, file: fileIndex, dtype: e.dtype, shape, offset: dataStart + b!, nbytes: want });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Finds the weight files of a checkpoint folder and reads all their headers. */
export function readTensorTable(dir: string): TensorTable {
  const index = path.join(dir, 'model.safetensors.index.json');
  let files: string[];
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
    } catch (e) {
      throw new CheckpointError(`${index}: not valid JSON (${(e as Error).message})`);
    }
    if (!map || typeof map !== 'object') throw new CheckpointError(`${index}: missing 'weight_map'`);
    files = [...new Set(Object.values(map))].sort().map((f) => path.join(dir, f));
  } else if (existsSync(path.join(dir, 'model.safetensors'))) {
    files = [path.join(dir, 'model.safetensors')];
  } else {
    throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }
  const tensors = new Map<string, TensorEntry>();
  files.forEach((f, i) => {
    for (const t of readSafetensorsHeader(f, i)) {
      if (tensors.has(t.name)) throw new CheckpointError(`${f}: tensor '${t.name}' also appears in ${files[tensors.get(t.name)!.file]}`);
      tensors.set(t.name, t);
    }
  });
  return { files, tensors };
}

/** Normalises a tensor name to the new layout (model.language_model.*, model.visual.*), as transformers does. */
export function normaliseName(name: string): string {
  if (name.startsWith('visual.')) return 'model.' + name;
  if (name.startsWith('model.') && !name.startsWith('model.language_model.') && !name.startsWith('model.visual.'))
    return 'model.language_model.' + name.slice('model.'.length);
  return name;
}
