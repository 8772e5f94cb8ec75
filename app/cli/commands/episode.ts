// `starkv episode`: N agent-like turns (a screenshot each) on one persistent compressed KV cache (or the
// papers' reference protocol), printing per-step telemetry and timings.
import { parseArgs } from 'node:util';
import { Engine } from '../../model/engine.ts';
import { Episode, type Protocol, type TurnResult } from '../../model/episode.ts';
import { processImage, type ProcessedImage, type RgbImage } from '../../model/preprocess.ts';
import { KV_METHOD_NAMES } from '../../protocol.ts';
import { formatBytes, parseChoiceOpt, parseNumberOpt, parseThreadsOpt, UsageError } from '../format.ts';

const USAGE = `usage: starkv episode --model <dir> [--method starkv] [--budget 20 | --cap-tokens N] [--steps 5]
       [--image a.png ... | --width 640 --height 400] [--task TEXT] [--history 5] [--protocol persistent|reference] [--max-new-tokens 32]
       [--param name=value ...] [--threads N] [--device auto|cpu|cuda[:N]] [--cpu-matmul fp32|bf16|auto] [--weights auto|mapped|resident] [--json] [--compare]
  Each step appends one screenshot (the --image files in turn, or synthetic screens of --width x --height,
  640x400 unless given: 1920x1080 is a full-HD screen's ~2.7k visual tokens) and decodes
  a reply against the compressed cache. --json prints one JSON object per step (JSON lines).
  --compare runs the same screenshots through both protocols (persistent, then reference) and prints
  a table: tokens prefilled, kept per layer, time per step, and how far the greedy replies agree.`;

function syntheticScreen(step: number, w = 640, h = 400): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const inBox = Math.abs(x - ((step * 97) % w)) < 60 && Math.abs(y - ((step * 53) % h)) < 30;
      data.set(inBox ? [220, 40, 40] : [(x * 255) / w, (y * 255) / h, 200], (y * w + x) * 3);
    }
  return { width: w, height: h, data };
}

function summary(r: TurnResult): string {
  const l0 = r.layers[0]!;
  const frames = l0.keep.frames.map((f) => `${f.keptCount}/${f.rows * f.cols}`).join(' ');
  const t = r.timings;
  return [
    `step ${r.step}: +${r.prefillTokens} tokens (reference prompt ${r.refLen}), reply ${r.tokens.length} tokens [${r.stopReason}]`,
    `  KV ${formatBytes(r.kvBytes)} held vs ${formatBytes(r.fullKvBytes)} uncompressed; layer 0 keeps ${l0.kept} (cap ${l0.cap}): frames ${frames || '-'}, text ${l0.keep.text.length}`,
    l0.temperature !== null ? `  STaR-KV layer 0: T ${l0.temperature.toFixed(3)}, H_norm ${l0.normalizedEntropy?.toFixed(3)}, lambda ${l0.lambda?.toFixed(3)}, MI ${l0.miGroups.map((x) => x.toFixed(3)).join(',')}` : '',
    `  vision ${t.visionMs.toFixed(0)} ms, prefill ${t.prefillMs.toFixed(0)} ms, compress ${t.compressMs.toFixed(1)} ms, decode ${t.decodeMs.toFixed(0)} ms`,
  ].filter(Boolean).join('\n');
}

export default async function episode(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, method: { type: 'string' }, budget: { type: 'string' }, 'cap-tokens': { type: 'string' },
      steps: { type: 'string' }, image: { type: 'string', multiple: true }, width: { type: 'string' }, height: { type: 'string' }, task: { type: 'string' }, history: { type: 'string' },
      protocol: { type: 'string' }, 'max-new-tokens': { type: 'string' }, param: { type: 'string', multiple: true },
      threads: { type: 'string' }, device: { type: 'string' }, 'cpu-matmul': { type: 'string' }, weights: { type: 'string' }, json: { type: 'boolean' }, compare: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!values.model) {
    process.stderr.write('starkv episode: --model is required\n' + USAGE + '\n');
    return 2;
  }
  // Every option is checked before the checkpoint loads (a 7B load takes a while).
  const protocol: Protocol = parseChoiceOpt(values.protocol, 'protocol', ['persistent', 'reference'] as const, 'persistent');
  const method = parseChoiceOpt(values.method, 'method', KV_METHOD_NAMES, 'starkv');
  if (values.budget !== undefined && values['cap-tokens'] !== undefined) throw new UsageError('give --budget or --cap-tokens, not both');
  const budget = parseNumberOpt(values.budget, 'budget', { above: 0, max: 100 });
  const capTokens = parseNumberOpt(values['cap-tokens'], 'cap-tokens', { int: true, min: 1 });
  const historyImages = parseNumberOpt(values.history, 'history', { int: true, min: 1 });
  const maxNew = parseNumberOpt(values['max-new-tokens'], 'max-new-tokens', { int: true, min: 1 }) ?? 32;
  const params: Record<string, number | boolean | string> = {};
  for (const p of values.param ?? []) {
    const m = /^([\w.]+)=(.*)$/.exec(p);
    if (!m) throw new UsageError(`--param '${p}' must be name=value`);
    const v = m[2]!;
    params[m[1]!] = v === 'true' ? true : v === 'false' ? false : Number.isFinite(Number(v)) && v !== '' ? Number(v) : v;
  }
  const steps = parseNumberOpt(values.steps, 'steps', { int: true, min: 1 }) ?? 5;
  if ((values.width !== undefined || values.height !== undefined) && values.image?.length)
    throw new UsageError('--width and --height size the synthetic screens: not with --image');
  const screenW = parseNumberOpt(values.width, 'width', { int: true, min: 28, max: 7680 }) ?? 640;
  const screenH = parseNumberOpt(values.height, 'height', { int: true, min: 28, max: 4320 }) ?? 400;
  const engine = await Engine.load(values.model, { threads: parseThreadsOpt(values.threads), device: values.device, cpuMatmul: values['cpu-matmul'] as string | undefined, weights: values.weights as string | undefined });
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  const run = async (proto: Protocol, print: (r: TurnResult) => void): Promise<TurnResult[]> => {
    const ep = new Episode(engine, {
      method,
      budget,
      capTokens,
      historyImages,
      params,
      protocol: proto,
    });
    const out: TurnResult[] = [];
    try {
      const given: ProcessedImage[] = await engine.processImages(values.image ?? []);
      for (let s = 0; s < steps && !ac.signal.aborted; s++) {
        const image = given.length ? given[s % given.length]! : processImage(syntheticScreen(s, screenW, screenH), engine.preprocessor);
        const r = await ep.step({ text: s === 0 ? (values.task ?? 'Open the settings and turn on dark mode.') : undefined, image, maxNewTokens: maxNew, temperature: 0, signal: ac.signal });
        out.push(r);
        print(r);
        if (r.stopReason === 'cancelled') break;
      }
    } finally {
      await ep.dispose();
    }
    return out;
  };
  const printer = (r: TurnResult) => {
    if (values.json) {
      const { layers, ...rest } = r;
      const o = { ...rest, rssBytes: process.memoryUsage().rss, layers: layers.map(({ keep, ...l }) => ({ ...l, keptPerFrame: keep.frames.map((f) => ({ frame: f.frame, kept: f.keptCount, cells: f.rows * f.cols })), keptText: keep.text.length })) };
      process.stdout.write(JSON.stringify(o) + '\n');
    } else process.stdout.write(summary(r) + '\n');
  };
  try {
    if (!values.compare) {
      await run(protocol, printer);
      return ac.signal.aborted ? 130 : 0;
    }
    const quiet = () => {};
    const a = await run('persistent', quiet);
    const b = await run('reference', quiet);
    process.stdout.write(compareTable(a, b) + '\n');
    return ac.signal.aborted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    engine.dispose();
  }
}

/** Markdown table: the two protocols on the same screenshots, step by step. */
export function compareTable(a: TurnResult[], b: TurnResult[]): string {
  const ms = (r: TurnResult) => r.timings.visionMs + r.timings.prefillMs + r.timings.compressMs + r.timings.decodeMs;
  const mib = (n: number) => (n / 1048576).toFixed(2);
  const rows = [
    '| step | prefilled tokens (p / r) | prefill ms (p / r) | compress ms (p / r) | layer-0 slots (p / r) | KV held MiB (p / r) | uncompressed MiB (p) | step ms (p / r) | same reply | agreeing tokens |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  let same = 0, agree = 0, total = 0, tp = 0, tr = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!, y = b[i]!;
    const len = Math.max(x.tokens.length, y.tokens.length);
    let k = 0;
    while (k < Math.min(x.tokens.length, y.tokens.length) && x.tokens[k] === y.tokens[k]) k++;
    const eq = x.tokens.length === y.tokens.length && k === len;
    same += eq ? 1 : 0;
    agree += k;
    total += len;
    tp += ms(x);
    tr += ms(y);
    rows.push(
      `| ${i} | ${x.prefillTokens} / ${y.prefillTokens} | ${x.timings.prefillMs.toFixed(0)} / ${y.timings.prefillMs.toFixed(0)} | ${x.timings.compressMs.toFixed(1)} / ${y.timings.compressMs.toFixed(1)} | ` +
        `${x.layers[0]!.kept} / ${y.layers[0]!.kept} | ${mib(x.kvBytes)} / ${mib(y.kvBytes)} | ${mib(x.fullKvBytes)} | ${ms(x).toFixed(0)} / ${ms(y).toFixed(0)} | ${eq ? 'yes' : 'no'} | ${k}/${len} |`,
    );
  }
  const ratio = (r: TurnResult[]) => (r.length > 4 && r[0]!.timings.prefillMs > 0 ? (r[4]!.timings.prefillMs / r[0]!.timings.prefillMs).toFixed(2) : 'n/a');
  rows.push(
    `\nsteps with the same greedy reply: ${same}/${n}; agreeing tokens (common prefixes): ${agree}/${total}; ` +
      `step-5 / step-1 prefill time: persistent ${ratio(a)}, reference ${ratio(b)}; ` +
      `total time persistent ${tp.toFixed(0)} ms vs reference ${tr.toFixed(0)} ms (${(tr / Math.max(1, tp)).toFixed(2)}x)`,
  );
  return rows.join('\n');
}
