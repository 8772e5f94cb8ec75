// `starkv kv-replay <dir> [--json]`: runs the KV compression methods on a golden directory (schema of
// ../shared/golden/kv/) and prints what each kept: with --json one object key -> kept list(s),
// otherwise a readable summary (compared with the sets the directory records, when it has them).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { recordedKeptSets, sameKept } from '../../kv/golden-expected.ts';
import { readGoldenDir } from '../../kv/golden-reader.ts';
import { REPLAY_CATEGORIES, replayGolden, replayMap, type ReplayCategory } from '../../kv/replay.ts';

const USAGE = `usage: starkv kv-replay <golden-dir> [--json] [--only <category>[,...]]
  Computes, from the inputs and hyperparameters of a KV golden directory, the kept token indices of
  STaR-KV (single step and episode), SnapKV, PyramidKV, GUI-KV and VL-Cache.
  --json   print one JSON object: key -> [kept] (STaR-KV) or [[kept] per query head]
  --only   categories: ${REPLAY_CATEGORIES.join(', ')}
`;

export default async function kvReplay(argv: string[]): Promise<number> {
  let values: { json?: boolean; only?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    process.stderr.write(`starkv kv-replay: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  let only: ReplayCategory[] | undefined;
  if (values.only) {
    only = values.only.split(',').map((s) => s.trim()) as ReplayCategory[];
    const bad = only.find((c) => !REPLAY_CATEGORIES.includes(c));
    if (bad) {
      process.stderr.write(`starkv kv-replay: unknown category '${bad}'\n${USAGE}`);
      return 2;
    }
  }
  const dir = path.resolve(positionals[0]!);
  let golden;
  try {
    golden = readGoldenDir(dir);
  } catch (e) {
    process.stderr.write(`starkv kv-replay: ${(e as Error).message}\n`);
    return 1;
  }
  const t0 = performance.now();
  const report = replayGolden(golden, { only });
  const ms = performance.now() - t0;
  for (const e of report.errors) process.stderr.write(`starkv kv-replay: ${e.key}: ${e.message}\n`);
  if (values.json) {
    process.stdout.write(JSON.stringify(replayMap(report)) + '\n');
    return report.errors.length ? 1 : 0;
  }
  const recorded = recordedKeptSets(golden);
  const lines = [`KV replay of ${dir} (${ms.toFixed(0)} ms)`];
  for (const cat of REPLAY_CATEGORIES) {
    const rs = report.results.filter((r) => r.category === cat);
    if (!rs.length) continue;
    const withRef = rs.filter((r) => recorded.has(r.key));
    const same = withRef.filter((r) => sameKept(r.kept, recorded.get(r.key)!.kept)).length;
    const ref = withRef.length ? `, ${same}/${withRef.length} identical to the recorded sets` : '';
    lines.push(`  ${cat.padEnd(15)} ${String(rs.length).padStart(3)} kept sets${ref}`);
    for (const r of rs) {
      const s = r.selection;
      const counts = Array.isArray(r.kept[0]) ? (r.kept as number[][]).map((k) => k.length).join('/') : String(r.kept.length);
      const rec = recorded.get(r.key);
      const mark = rec ? (sameKept(r.kept, rec.kept) ? ' ok' : ' DIFFERS') : '';
      const t = s.telemetry;
      const extra = cat.startsWith('starkv') && t.temperature !== null ? `  T=${t.temperature.toFixed(4)} lambda=${t.lambdaEff}` : '';
      lines.push(`    ${r.key.padEnd(44)} cap ${s.cap} window ${s.window} kept ${counts}${extra}${mark}`);
    }
  }
  if (report.errors.length) lines.push(`  ${report.errors.length} error(s), listed above`);
  process.stdout.write(lines.join('\n') + '\n');
  return report.errors.length ? 1 : 0;
}
