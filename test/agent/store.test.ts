// Trajectories: append-only, fsync'd, readable after a kill -9 in the middle of writing.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EpisodeWriter, readEpisode, RECORDS_FILE } from '../../app/store/trajectory.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = mkdtempSync(path.join(os.tmpdir(), 'starkv-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('episode store', () => {
  it('creates one folder per episode and reads back what was appended', () => {
    const now = new Date('2026-01-02T03:04:05Z');
    const a = EpisodeWriter.create(root, 'Open the Settings, please!', now);
    const b = EpisodeWriter.create(root, 'Open the Settings, please!', now);
    expect(path.basename(a.dir)).toBe('20260102-030405-open-the-settings-please');
    expect(b.dir).not.toBe(a.dir);
    a.append('episode', { task: 'x' });
    const f = a.writeFile('step-0001.png', Buffer.from('png'));
    a.append('observation', { step: 1, file: f });
    a.close();
    const ep = readEpisode(a.dir);
    expect(ep.records.map((r) => r.kind)).toEqual(['episode', 'observation']);
    expect(ep.tornTail).toBe(false);
    expect(existsSync(path.join(a.dir, 'step-0001.png'))).toBe(true);
    expect(() => a.append('late')).toThrow(/closed/);
  });

  it('skips a torn last line but refuses corruption in the middle', () => {
    const w = EpisodeWriter.create(root, 'torn');
    w.append('a');
    w.close();
    const file = path.join(w.dir, RECORDS_FILE);
    appendFileSync(file, '{"kind":"b","t":1,"text":"half');
    expect(readEpisode(w.dir)).toMatchObject({ tornTail: true, records: [{ kind: 'a' }] });
    writeFileSync(file, '{"kind":"a","t":1}\n{broken\n{"kind":"c","t":2}\n');
    expect(() => readEpisode(w.dir)).toThrow(/corrupt record/);
  });

  it('loses no finished record or screenshot when the writer is killed with SIGKILL', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'helpers', 'store-writer-child.ts'), root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const dir = await new Promise<string>((resolve) => proc.stdout!.once('data', (d) => resolve(d.toString().trim())));
    const file = path.join(dir, RECORDS_FILE);
    for (let i = 0; i < 400; i++) {
      if (existsSync(file) && statSync(file).size > 60_000) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
    const ep = readEpisode(dir);
    const obs = ep.records.filter((r) => r.kind === 'observation');
    expect(obs.length).toBeGreaterThanOrEqual(5);
    obs.forEach((r, i) => {
      expect(r.step).toBe(i + 1);
      expect(statSync(path.join(dir, r.file as string)).size).toBe(200_000);
    });
    const replies = ep.records.filter((r) => r.kind === 'reply');
    expect(replies.length === obs.length || replies.length === obs.length - 1).toBe(true);
    // Only whole files carry their final names.
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.png'))) expect(statSync(path.join(dir, name)).size).toBe(200_000);
  }, 60_000);
});
