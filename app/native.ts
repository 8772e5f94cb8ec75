// Loads the engine's N-API addon (build/Release/starkv.node) once, with a clear error when it is missing.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let cached: any | undefined;

/** The raw addon object. Typed wrappers live next to their users (app/model/engine.ts, app/kv/). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadAddon(): any {
  if (cached) return cached;
  const candidates = [
    process.env.STARKV_ADDON,
    path.join(repoRoot, 'build', 'Release', 'starkv.node'),
    path.join(repoRoot, 'build', 'Debug', 'starkv.node'),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `the native engine is not built (looked for ${candidates.join(', ')}); run "npm install" or "npm run build:native"`,
    );
  }
  cached = require(found);
  return cached;
}
