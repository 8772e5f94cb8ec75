// `starkv generate`: one prompt (text or ids) with images through the in-process engine.
import { parseArgs } from 'node:util';
import { Engine } from '../../model/engine.ts';
import { opProfileReport, parseIdList, parseNumberOpt, parseThreadsOpt, profileText, UsageError } from '../format.ts';

const USAGE = `usage: starkv generate --model <dir> (--prompt TEXT | --input-ids 1,2,3) [--image a.png ...]
       [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--threads N] [--device auto|cpu|cuda[:N]] [--cpu-matmul fp32|bf16|auto] [--weights auto|mapped|resident] [--profile] [--json]
  --input-ids is the full id sequence, with vision_start, the image pad tokens and vision_end;
  the images fill the pad runs in order. --prompt is wrapped in the checkpoint's chat template.
  --profile: the time of each kind of backend op (device time on a GPU) beside the generate's wall time.`;

export default async function generate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'input-ids': { type: 'string' },
      image: { type: 'string', multiple: true },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      device: { type: 'string' },
      'cpu-matmul': { type: 'string' },
      weights: { type: 'string' },
      json: { type: 'boolean' },
      profile: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!values.model || (!values.prompt && !values['input-ids']) || (values.prompt && values['input-ids'])) throw new UsageError('give --model and exactly one of --prompt or --input-ids');
  // Every option is checked before the checkpoint loads.
  const maxNewTokens = parseNumberOpt(values['max-new-tokens'], 'max-new-tokens', { int: true, min: 1 }) ?? 64;
  const threads = parseThreadsOpt(values.threads);
  const ids = values['input-ids'] ? parseIdList(values['input-ids'], '--input-ids') : undefined;
  const sampling = {
    temperature: parseNumberOpt(values.temperature, 'temperature', { min: 0 }),
    topP: parseNumberOpt(values['top-p'], 'top-p', { above: 0, max: 1 }),
    topK: parseNumberOpt(values['top-k'], 'top-k', { int: true, min: 0 }),
    seed: parseNumberOpt(values.seed, 'seed', { int: true, min: 0 }),
  };
  const tLoad = performance.now();
  const engine = await Engine.load(values.model, { threads, device: values.device, cpuMatmul: values['cpu-matmul'], weights: values.weights });
  const loadMs = performance.now() - tLoad;
  const images = values.image ?? [];
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    const stream = !values.json && engine.text;
    let printed = 0;
    const streamed: number[] = [];
    if (values.profile) await engine.opProfile(true);
    const r = await engine.generate({
      ids,
      messages: values.prompt ? [{ role: 'user', content: [...images.map(() => ({ type: 'image' as const })), { type: 'text' as const, text: values.prompt }] }] : undefined,
      images,
      maxNewTokens,
      ...sampling,
      signal: ac.signal,
      onToken: stream
        ? (id) => {
            streamed.push(id);
            const s = engine.text!.decode(streamed);
            process.stdout.write(s.slice(printed));
            printed = s.length;
          }
        : undefined,
    });
    const profile = values.profile ? opProfileReport(await engine.opProfile(false), r.timings) : null;
    if (values.json) {
      const out = {
        tokens: r.tokens,
        text: r.text ?? null, // null: the checkpoint has no tokenizer.json
        prompt_tokens: r.promptTokens,
        stop_reason: r.stopReason,
        prompt_logits_last: Array.from(r.promptLogitsLast),
        images: r.images,
        timings: { loadMs, ...r.timings },
        memory: engine.memory(),
        engine: engine.info(),
        ...(profile ? { profile } : {}),
      };
      process.stdout.write(JSON.stringify(out) + '\n');
    } else {
      if (!stream) process.stdout.write(r.text ?? r.tokens.join(' '));
      const t = r.timings;
      process.stdout.write(
        `\n[${r.stopReason}] ${r.promptTokens} prompt tokens, ${r.tokens.length} generated; vision ${t.visionMs.toFixed(0)} ms, ` +
          `prefill ${t.prefillMs.toFixed(0)} ms, decode ${t.decodeMs.toFixed(0)} ms` +
          (t.generatedTokens > 1 && t.decodeMs > 0 ? ` (${((1000 * (t.generatedTokens - 1)) / t.decodeMs).toFixed(1)} tok/s)` : '') + '\n',
      );
      if (profile) process.stdout.write(profileText(profile) + '\n');
    }
    return r.stopReason === 'cancelled' ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    engine.dispose();
  }
}
