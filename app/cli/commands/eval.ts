// `starkv eval grounding|report|fixture`: accuracy against KV budget, the way the papers measure it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../../model/engine.ts';
import { writeReport } from '../../eval/report.ts';
import { checkRunConfig, recordRunConfig } from '../../eval/results.ts';
import { runGrounding } from '../../eval/run-grounding.ts';
import { writeAgentNetFixture, writeGroundingFixture, writeTrajectoryFixture } from '../../eval/fixture.ts';
import { runTrajectories } from '../../eval/run-trajectory.ts';
import { KV_METHOD_NAMES } from '../../protocol.ts';
import { parseChoiceOpt, parseNumberOpt, parseThreadsOpt, UsageError } from '../format.ts';

const USAGE = `usage:
  starkv eval grounding --model <dir> --data <folder> [--methods starkv,guikv,snapkv,full] [--budgets 5,10,20,40]
                        [--prompt standard|papers] [--limit N] [--max-new-tokens N] [--threads N]
                        [--device auto|cpu|cuda[:N]] [--cpu-matmul fp32|bf16|auto] [--weights auto|mapped|resident] --out <dir>
  starkv eval trajectory --model <dir> --data <folder> [--methods ...] [--budgets ...] [--protocol persistent|reference]
                        [--history 5] [--prompt standard|papers] [--limit N episodes] --out <dir>
  starkv eval report <out>          rebuild report.html, report.md, summary.json and the PNG plots from results.jsonl
  starkv eval fixture <dir> [--n N] [--trajectories | --agentnet]
                                    write a tiny synthetic ScreenSpot-v2 dataset (or trajectories, or AgentNetBench tasks)
Grounding data is in the ScreenSpot / ScreenSpot-v2 / ScreenSpot-Pro layout; --prompt papers asks with the
papers' ScreenSpot prompt (the GUI-KV / STaR-KV drivers': screenshot first, click(point=...)) instead of
UI-TARS-1.5's grounding prompt. Trajectory data: *.jsonl / *.json
episodes {id, task, platform?, steps: [{screenshot, action: {type: click|left_double|right_single|drag|scroll|
hover|hotkey|type|wait|finished|call_user, ...}}]} with screenshots relative to the folder; a step counts when the
model's action has the recorded type and, for points, lands in the recorded box (or within 14 % of the
screenshot's longer side). AgentNetBench folders (OpenCUA's task files *.json with screenshots in images/)
are read as they are: the prompt gets high_level_task_description, and each step also gets the benchmark's
own score (0-1, its evaluator's rules, alternative options included), reported as "AgentNetBench score";
such a step counts in the accuracy when its score is full. The score of the papers' AgentNetBench driver (the
GUI-KV / STaR-KV evaluation, which the papers report) is reported beside it; --prompt papers also prompts
as that driver does (its UI-TARS-1.5 prompt, the model's own earlier replies as the history; with
--protocol reference that is the papers' protocol; --max-new-tokens defaults to the driver's 1000 there, 128
otherwise). Runs are resumable:
rerun the same command and it continues where it stopped (results.jsonl in --out); more methods, budgets or
a larger --limit add to it, while another model, data, prompt, protocol, history or --max-new-tokens is
refused (run.json records them: use another --out).`;

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
      device: { type: 'string' },
      'cpu-matmul': { type: 'string' },
      weights: { type: 'string' },
      out: { type: 'string' },
      n: { type: 'string' },
      protocol: { type: 'string' },
      history: { type: 'string' },
      prompt: { type: 'string' },
      trajectories: { type: 'boolean' },
      agentnet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (!sub || values.help || sub === '--help') {
    process.stdout.write(USAGE + '\n');
    return sub ? 0 : 2;
  }
  if (sub === 'report') {
    const out = positionals[0] ?? values.out;
    if (!out) throw new UsageError('starkv eval report needs the output folder of a run');
    const f = await writeReport(out);
    process.stdout.write(`wrote ${f.html}, ${f.markdown}, ${f.summary}, ${f.plots.join(', ')}\n`);
    return 0;
  }
  if (sub === 'fixture') {
    const dir = positionals[0];
    if (!dir) throw new UsageError('starkv eval fixture needs a folder');
    if (values.agentnet && values.trajectories) throw new UsageError('give --trajectories or --agentnet, not both');
    const count = parseNumberOpt(values.n, 'n', { int: true, min: 1 });
    const n = values.agentnet
      ? await writeAgentNetFixture(dir, count ?? 2)
      : values.trajectories
        ? await writeTrajectoryFixture(dir, count ?? 2)
        : await writeGroundingFixture(dir, count ?? 6);
    process.stdout.write(`wrote ${n} ${values.agentnet ? 'AgentNetBench tasks' : values.trajectories ? 'episodes' : 'samples'} to ${dir}\n`);
    return 0;
  }
  if (sub !== 'grounding' && sub !== 'trajectory') {
    process.stderr.write(`starkv eval: unknown subcommand '${sub}'\n${USAGE}\n`);
    return 2;
  }
  if (!values.model || !values.data || !values.out) {
    process.stderr.write(`starkv eval ${sub} needs --model, --data and --out\n${USAGE}\n`);
    return 2;
  }
  // Checked before the model loads (a 7B checkpoint takes a while).
  const methods = (values.methods ?? 'starkv,guikv,snapkv,full').split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of methods) parseChoiceOpt(m, 'methods', KV_METHOD_NAMES, 'starkv');
  if (!methods.length) throw new UsageError('--methods lists no method');
  const budgets = (values.budgets ?? '5,10,20,40').split(',').map((b) => parseNumberOpt(b.trim(), 'budgets', { above: 0, max: 100 })!);
  const protocol = parseChoiceOpt(values.protocol, 'protocol', ['persistent', 'reference'] as const, 'persistent');
  const prompt = parseChoiceOpt(values.prompt, 'prompt', ['standard', 'papers'] as const, 'standard');
  const threads = parseThreadsOpt(values.threads);
  const limit = parseNumberOpt(values.limit, 'limit', { int: true, min: 1 });
  const maxNewTokens = parseNumberOpt(values['max-new-tokens'], 'max-new-tokens', { int: true, min: 1 });
  const historyImages = parseNumberOpt(values.history, 'history', { int: true, min: 1 });
  // A resumed run must have been made the same way (methods, budgets and --limit may grow).
  const runConfig = {
    eval: sub, model: path.resolve(values.model), data: path.resolve(values.data), prompt,
    protocol: sub === 'trajectory' ? protocol : null, history: sub === 'trajectory' ? historyImages ?? null : null, maxNewTokens: maxNewTokens ?? null,
  };
  checkRunConfig(values.out, runConfig);
  const engine = await Engine.load(values.model, { threads, device: values.device, cpuMatmul: values['cpu-matmul'] as string | undefined, weights: values.weights as string | undefined });
  if (!engine.text) throw new Error(`${values.model}: the UI-TARS prompts need the checkpoint's tokenizer.json`);
  recordRunConfig(values.out, runConfig);
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nstopping after the current sample; rerun the same command to continue\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const common = {
      data: values.data,
      out: values.out,
      methods,
      budgets,
      limit,
      maxNewTokens,
      signal: ac.signal,
    };
    const r =
      sub === 'grounding'
        ? await runGrounding(engine, { ...common, prompt })
        : await runTrajectories(engine, { ...common, protocol, prompt, historyImages });
    if (r.stopped) return 130;
    const ck = engine.checkpoint;
    const model = `${path.basename(path.resolve(ck.dir))} (${ck.config.arch}, ${ck.config.numLayers} layers, ${(ck.parameters / 1e9).toFixed(ck.parameters < 1e8 ? 3 : 1)}B parameters, ${ck.dtype}; device ${engine.info().device})`;
    const f = await writeReport(values.out, sub === 'grounding' ? 'starkv eval: grounding accuracy against KV budget' : 'starkv eval: step accuracy against KV budget', model);
    // The summary table (the report's Markdown) here too, so that a terminal run shows its figures.
    const table = readFileSync(f.markdown, 'utf8').split('\n').filter((l) => l.startsWith('|')).join('\n');
    process.stdout.write(`${table}\n\n${r.done} new results (${r.skipped} from an earlier run); report: ${f.html}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    engine.dispose();
  }
}
