// Makes sure dist/renderer holds a build of renderer/ that is not older than its sources; builds it with
// Vite in a child process (its output goes to our stderr, so the URL stays the first line of stdout).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** 'missing' | 'stale' | 'fresh' (fresh also when there are no sources to compare, e.g. a packaged app). */
export function rendererBuildState(repoRoot: string, outDir: string): 'missing' | 'stale' | 'fresh' {
  const index = path.join(outDir, 'index.html');
  if (!existsSync(index)) return 'missing';
  const src = path.join(repoRoot, 'renderer');
  if (!existsSync(src)) return 'fresh';
  return newestMtime(src) > statSync(index).mtimeMs ? 'stale' : 'fresh';
}

export const BUILD_HINT = 'npx vite build --config renderer/vite.config.ts';

export function buildRenderer(repoRoot: string, log: NodeJS.WritableStream = process.stderr): Promise<void> {
  const vite = path.join(repoRoot, 'node_modules', 'vite', 'bin', 'vite.js');
  if (!existsSync(vite)) return Promise.reject(new Error(`Vite is not installed (${vite}); run npm install, then ${BUILD_HINT}`));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [vite, 'build', '--config', path.join('renderer', 'vite.config.ts'), '--logLevel', 'warn'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`building the renderer failed (exit ${code}); try ${BUILD_HINT}`))));
  });
}
