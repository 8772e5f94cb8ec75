// Serves files of the renderer build (dist/renderer) and of episode folders: GET/HEAD only, no directory
// listings, no path escapes, content types by extension.
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
  '.html.gz': 'text/html',
};

export function contentType(file: string): string {
  return TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** Resolves a URL path inside root, or null when it escapes root or does not name a file. */
export function resolveInside(root: string, urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  const full = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  if (!existsSync(full)) return null;
  const real = realpathSync(full);
  const rootReal = realpathSync(root);
  if (real !== rootReal && !real.startsWith(rootReal + path.sep)) return null;
  return statSync(real).isFile() ? real : null;
}

export function sendFile(res: ServerResponse, file: string, head: boolean, cache: string): void {
  const st = statSync(file);
  res.writeHead(200, { 'content-type': contentType(file), 'content-length': st.size, 'cache-control': cache });
  if (head) return void res.end();
  createReadStream(file).on('error', () => res.destroy()).pipe(res);
}
