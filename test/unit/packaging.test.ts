// What electron-builder needs from package.json and electron-builder.yml to build the Linux packages: a
// .deb needs a maintainer with an email (taken from linux.maintainer, else from the author), or it refuses.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/** The value of `key` inside the top-level `block:` of a YAML file (plain scalars only). */
function yamlValue(text: string, block: string, key: string): string | null {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l === `${block}:`);
  if (start < 0) return null;
  for (const l of lines.slice(start + 1)) {
    if (/^\S/.test(l)) break; // the next top-level key
    const m = new RegExp(`^  ${key}:\\s*(.+?)\\s*$`).exec(l);
    if (m) return m[1]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return null;
}

describe('packaging metadata', () => {
  it('package.json names an author with an email', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { author?: { name?: string; email?: string } | string };
    const a = typeof pkg.author === 'string' ? /^(.+?)\s*<([^>]+)>/.exec(pkg.author) : null;
    const name = typeof pkg.author === 'object' ? pkg.author.name : a?.[1];
    const email = typeof pkg.author === 'object' ? pkg.author.email : a?.[2];
    expect(name?.trim()).toBeTruthy();
    expect(email).toMatch(EMAIL);
  });

  it('electron-builder.yml gives the .deb a maintainer "Name <email>"', () => {
    const m = yamlValue(readFileSync(path.join(root, 'electron-builder.yml'), 'utf8'), 'linux', 'maintainer');
    const parts = /^(.+?)\s*<([^>]+)>$/.exec(m ?? '');
    expect(parts?.[1]?.trim(), `linux.maintainer is ${m}`).toBeTruthy();
    expect(parts?.[2]).toMatch(EMAIL);
  });
});
