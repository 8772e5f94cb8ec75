#!/usr/bin/env node
// `npm start`: opens the Electron window when the Electron binary is installed; otherwise says so and
// serves web mode (`starkv serve`), whose first line of output is the URL to open.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

/** The installed Electron binary, or null. Never require('electron') here: it would try to download it. */
function electronBinary() {
  try {
    const dir = path.dirname(createRequire(import.meta.url).resolve('electron/package.json'));
    const rel = existsSync(path.join(dir, 'path.txt')) ? readFileSync(path.join(dir, 'path.txt'), 'utf8').trim() : '';
    const bin = rel && path.join(process.env.ELECTRON_OVERRIDE_DIST_PATH || path.join(dir, 'dist'), rel);
    return bin && existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

const bin = process.env.STARKV_WEB ? null : electronBinary();
const args = bin ? [path.join(here, 'entry.mjs'), ...process.argv.slice(2)] : [path.join(root, 'bin', 'starkv.js'), 'serve', ...process.argv.slice(2)];
if (!bin) process.stderr.write('starkv: no Electron binary installed here; serving the window in your browser instead (web mode)\n');
const child = spawn(bin ?? process.execPath, args, { stdio: 'inherit', cwd: root });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
