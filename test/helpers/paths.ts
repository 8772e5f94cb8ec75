// Where the tests find their data (all inside the repository: a fresh clone has no ../shared).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GOLDEN_HF = path.join(ROOT, 'test', 'golden-data', 'hf-qwen2vl');
export const TMP = path.join(ROOT, 'test', '.tmp');
