// Episode folders: `episode.jsonl` (one JSON record per line, appended and fsync'd as each thing happens)
// plus one PNG per screenshot (written to a temp name, fsync'd, renamed, directory fsync'd). A kill -9 at
// any moment loses at most the record being written; readers skip a torn last line.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

export const RECORDS_FILE = 'episode.jsonl';

export interface EpisodeRecord {
  kind: string;
  /** Epoch ms. */
  t: number;
  [k: string]: unknown;
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some filesystems refuse directory fsync; the file data itself is synced
  }
}

function slug(s: string): string {
  return (
    s
      .normalize('NFKD')
      .replace(/[^\w\s-]/g, '')
      .trim()
      .replace(/[\s_]+/g, '-')
      .slice(0, 40)
      .replace(/-+$/, '')
      .toLowerCase() || 'task'
  );
}

export class EpisodeWriter {
  private fd: number | null;

  private constructor(readonly dir: string) {
    this.fd = openSync(path.join(dir, RECORDS_FILE), 'a');
  }

  /** Creates `<root>/<YYYYMMDD-HHMMSS>-<task slug>/` (unique) and opens its record file. */
  static create(root: string, task: string, now = new Date()): EpisodeWriter {
    mkdirSync(root, { recursive: true });
    const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    let dir = path.join(root, `${stamp}-${slug(task)}`);
    for (let i = 2; existsSync(dir); i++) dir = path.join(root, `${stamp}-${slug(task)}-${i}`);
    mkdirSync(dir);
    fsyncDir(root);
    const w = new EpisodeWriter(dir);
    fsyncDir(dir);
    return w;
  }

  /** Appends one record as a single write of one line, then fsyncs. */
  append(kind: string, data: Record<string, unknown> = {}): EpisodeRecord {
    if (this.fd === null) throw new Error(`episode ${this.dir} is closed`);
    const rec: EpisodeRecord = { kind, t: Date.now(), ...data };
    writeSync(this.fd, JSON.stringify(rec) + '\n');
    fsyncSync(this.fd);
    return rec;
  }

  /** Writes a file of the episode durably; returns its name relative to the episode folder. */
  writeFile(name: string, data: Buffer): string {
    const full = path.join(this.dir, name);
    const tmp = `${full}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, full);
    fsyncDir(this.dir);
    return name;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export interface EpisodeData {
  dir: string;
  records: EpisodeRecord[];
  /** True when the last line was torn (the process died while writing it). */
  tornTail: boolean;
}

export function readEpisode(dir: string): EpisodeData {
  const file = path.join(dir, RECORDS_FILE);
  if (!existsSync(file)) throw new Error(`${dir}: not an episode folder (no ${RECORDS_FILE})`);
  const lines = readFileSync(file, 'utf8').split('\n');
  const records: EpisodeRecord[] = [];
  let tornTail = false;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      records.push(JSON.parse(line) as EpisodeRecord);
    } catch {
      if (i >= lines.length - 2) tornTail = true;
      else throw new Error(`${file}:${i + 1}: corrupt record`);
    }
  });
  return { dir, records, tornTail };
}
