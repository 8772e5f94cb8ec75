// `starkv eval grounding|report|fixture`: accuracy against KV budget, the way the papers measure it.
import { parseArgs } from 'node:util';
import { Engine } from '../../model/engine.ts';
import { writeReport } from '../../eval/report.ts';
import { runGrounding } from '../../eval/run-grounding.ts';
import { writeGroundingFixture } from '../../eval/fixture.ts';
import { parseNumberOpt } from '../format.ts';

const USAGE = `usage:
  starkv eval grounding --model <dir> --data <folder> [--methods starkv,guikv,snapkv,full] [--budgets 5,10,20,40]
                        [--limit N] [--max-new-tokens N] [--threads N] --out <dir>
  starkv eval report <out>          rebuild report.html, report.md, summary.json and the PNG plots from results.jsonl
  starkv eval fixture <dir> [--n N] write a tiny synthetic ScreenSpot-v2-format dataset
The data folder is in the ScreenSpot / ScreenSpot-v2 / ScreenSpot-Pro layout. Runs are resumable:
rerun the same command and it continues where it stopped (results.jsonl in --out).`;

export default async function evalCmd(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      methods: { type: 'string' },
      budgets: { type: 'string' },
      limit: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string' },
      n: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (!sub || values.help || sub === '--help') {
    process.stdout.write(USAGE + '\n');
    return sub ? 0 : 2;
  }
  if (sub === 'report') {
    const out = positionals[0] ?? values.out;
    if (!out) throw new Error('starkv eval report needs the output folder of a run');
    const f = await writeReport(out);
    process.stdout.write(`wrote ${f.html}, ${f.markdown}, ${f.summary}, ${f.plots.join(', ')}\n`);
    return 0;
  }
  if (sub === 'fixture') {
    const dir = positionals[0];
    if (!dir) throw new Error('starkv eval fixture needs a folder');
    const n = await writeGroundingFixture(dir, parseNumberOpt(values.n, 'n', { int: true, min: 1 }) ?? 6);
    process.stdout.write(`wrote ${n} samples to ${dir}\n`);
    return 0;
  }
  if (sub === 'trajectory') {
    process.stderr.write('starkv eval trajectory: not implemented yet (step-level action accuracy on recorded trajectories)\n');
    return 2;
  }
  if (sub !== 'grounding') {
    process.stderr.write(`starkv eval: unknown subcommand '${sub}'\n${USAGE}\n`);
    return 2;
  }
  if (!values.model || !values.data || !values.out) {
    process.stderr.write(`starkv eval grounding needs --model, --data and --out\n${USAGE}\n`);
    return 2;
  }
  const methods = (values.methods ?? 'starkv,guikv,snapkv,full').split(',').map((s) => s.trim()).filter(Boolean);
  const budgets = (values.budgets ?? '5,10,20,40').split(',').map((b) => parseNumberOpt(b.trim(), 'budgets', { min: 0.01 })!);
  const engine = await Engine.load(values.model, { threads: parseNumberOpt(values.threads, 'threads', { int: true, min: 1 }) });
  if (!engine.text) throw new Error(`${values.model}: the grounding prompt needs the checkpoint's tokenizer.json`);
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nstopping after the current sample; rerun the same command to continue\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const r = await runGrounding(engine, {
      data: values.data,
      out: values.out,
      methods,
      budgets,
      limit: parseNumberOpt(values.limit, 'limit', { int: true, min: 1 }),
      maxNewTokens: parseNumberOpt(values['max-new-tokens'], 'max-new-tokens', { int: true, min: 1 }),
      signal: ac.signal,
    });
    if (r.stopped) return 130;
    const f = await writeReport(values.out);
    process.stdout.write(`${r.done} new results (${r.skipped} from an earlier run); report: ${f.html}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    engine.dispose();
  }
}
