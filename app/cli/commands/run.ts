// `starkv run`: runs one desktop task with the agent against an OpenAI-compatible endpoint, printing each
// step. Ctrl+C (SIGINT) stops at once (a second Ctrl+C exits); SIGUSR1 pauses/resumes between actions.
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { describeAction } from '../../agent/actions.ts';
import { UITARS_LIMITS, type CoordSpace } from '../../agent/coords.ts';
import { Agent, type AgentEvent, type EpisodeResult } from '../../agent/loop.ts';
import { DesktopOperator } from '../../agent/operator.ts';
import { DEFAULT_RISK_POLICY } from '../../agent/safety.ts';
import { Desktop } from '../../desktop/desktop.ts';
import { OpenAIBackend } from '../../model/backends/openai.ts';
import type { ModelBackend } from '../../model/backends/types.ts';
import { NativeBackend, type KvTurn } from '../../model/backends/native.ts';
import { Engine } from '../../model/engine.ts';
import { KV_METHOD_NAMES } from '../../protocol.ts';
import { writeReport } from '../../store/report.ts';
import { EpisodeWriter } from '../../store/trajectory.ts';
import { parseChoiceOpt, parseNumberOpt, parseThreadsOpt, UsageError } from '../format.ts';

const USAGE = `usage: starkv run --task "..." (--endpoint URL --model NAME | --checkpoint DIR) [options]

  --task TEXT          what to do (or give it as the first positional argument)
  --endpoint URL       OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1
  --model NAME         model name the server serves
  --checkpoint DIR     run the model in-process from a checkpoint folder instead (screenshots stay here)
  --kv-method M        in-process KV compression: full|snapkv|pyramidkv|h2o|adakv|vlcache|guikv|starkv (default starkv);
                       one persistent cache per run: each step prefills only its new tokens
  --kv-budget B        KV budget in percent, in (0, 100] (default 20)
  --threads N          engine threads (default: all cores)
  --device D           auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N
  --cpu-matmul M       auto (default: bf16 where the CPU has the kernels, else fp32), bf16 (bf16 weights: bf16 x bf16 prefill matmuls and attention, prefill ~1.6-1.9x faster on AVX512-BF16 CPUs, ~2.4x with AMX) or fp32 (exact)
  --weights W          auto (default), mapped (page cache) or resident (anonymous huge pages: faster decode of large checkpoints)
  --api-key KEY        bearer key (default: $STARKV_API_KEY)
  --max-steps N        stop after N steps (default 100)
  --history N          screenshots kept in the prompt (default 5)
  --display N|:N       monitor index N of the X screen, or X display :N (default $DISPLAY, monitor 0)
  --dry-run            capture and ask the model, draw planned actions, send no input
  --out DIR            write the trajectory under DIR (nothing is stored otherwise)
  --yes-risky          run risky actions without asking
  --language NAME      language of the model's Thought (default English)
  --max-tokens N       per reply (default 500)
  --temperature T      >= 0 (default 0)     --top-p P      in (0, 1] (default: the server's; in-process 1)
  --timeout S          per model call (default 120)       --retries N   (default 2)
  --max-pixels N       the server's max_pixels for smart_resize (default ${UITARS_LIMITS.maxPixels})
  --min-pixels N       the server's min_pixels (default ${UITARS_LIMITS.minPixels})
  --send-max-pixels N  downscale screenshots above N pixels before sending
  --coords absolute|relative1000   model coordinate space (1.5: absolute; 1.0/Doubao: relative1000)
  --wait-ms N          how long wait() waits (default 5000)
`;

/** A numeric option (parseNumberOpt with an inclusive lower bound). */
function num(v: string | boolean | undefined, name: string, min = 0, int = false): number | undefined {
  return parseNumberOpt(v as string | undefined, name, { min, int });
}

/** Asks on the terminal; null without one. Ctrl+C while asking interrupts like anywhere else. */
async function askLine(question: string, signal: AbortSignal | undefined, onInterrupt: () => void): Promise<string | null> {
  if (!process.stdin.isTTY) return null;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  rl.on('SIGINT', onInterrupt);
  try {
    return await rl.question(question, { signal });
  } catch {
    return null;
  } finally {
    rl.close();
  }
}

function printer(out: NodeJS.WritableStream): (e: AgentEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'step': {
        const g = e.obs.geometry;
        out.write(`\nstep ${e.step}  screen ${g.capture.width}x${g.capture.height} -> model ${g.resized.width}x${g.resized.height}  capture ${(e.obs.timings.grabMs + e.obs.timings.convertMs).toFixed(0)} ms\n`);
        break;
      }
      case 'reply':
        out.write(`  model (${(e.ms / 1000).toFixed(1)} s${e.attempt ? `, retry ${e.attempt}` : ''}):\n${e.text.trim().replace(/^/gm, '    ')}\n`);
        break;
      case 'parse_error':
        out.write(`  ! unparsable reply (attempt ${e.attempt + 1}): ${e.message}\n`);
        break;
      case 'action':
        out.write(`  ${e.dryRun ? '[dry-run] would ' : '-> '}${describeAction(e.action)}\n`);
        break;
      case 'warning':
        out.write(`  ! ${e.message}\n`);
        break;
      case 'paused':
        out.write('  || paused (send SIGUSR1 again to resume)\n');
        break;
      case 'resumed':
        out.write('  |> resumed\n');
        break;
      default:
        break;
    }
  };
}

const mib = (b: number) => (b / 1048576).toFixed(1);

/** "kv (starkv 20 %): +335 tokens prefilled in 1234 ms, compressed in 12 ms; layer 0 keeps 550 of 2731 tokens
 *  (cap 544 for the 2721-token prompt); 12.3 MiB held vs 61.5 MiB uncompressed" */
export function kvLine(t: KvTurn): string {
  const l0 = t.layers[0];
  const what = t.method === 'full' ? 'full cache' : `${t.method} ${t.capTokens ? `cap ${t.capTokens}` : `${t.budgetPercent} %`}`;
  const keep = l0 ? `; layer 0 keeps ${l0.kept} of ${t.layout.length} tokens${t.method === 'full' ? '' : ` (cap ${l0.cap} for the ${t.refLen}-token prompt)`}` : '';
  return `  kv (${what}): +${t.prefillTokens} tokens prefilled in ${t.timings.prefillMs.toFixed(0)} ms, compressed in ${t.timings.compressMs.toFixed(0)} ms${keep}; ` +
    `${mib(t.kvBytes)} MiB held vs ${mib(t.fullKvBytes)} MiB uncompressed`;
}

export default async function run(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        task: { type: 'string' }, endpoint: { type: 'string' }, model: { type: 'string' }, 'api-key': { type: 'string' },
        'max-steps': { type: 'string' }, history: { type: 'string' }, display: { type: 'string' }, 'dry-run': { type: 'boolean' },
        out: { type: 'string' }, 'yes-risky': { type: 'boolean' }, language: { type: 'string' }, 'max-tokens': { type: 'string' },
        temperature: { type: 'string' }, 'top-p': { type: 'string' }, timeout: { type: 'string' }, retries: { type: 'string' },
        'max-pixels': { type: 'string' }, 'min-pixels': { type: 'string' }, 'send-max-pixels': { type: 'string' },
        coords: { type: 'string' }, 'wait-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' },
        checkpoint: { type: 'string' }, 'kv-method': { type: 'string' }, 'kv-budget': { type: 'string' }, threads: { type: 'string' }, device: { type: 'string' }, 'cpu-matmul': { type: 'string' }, weights: { type: 'string' },
      },
    }));
  } catch (e) {
    process.stderr.write(`starkv run: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const err = process.stderr;
  let agent: Agent | null = null;
  let desktop: Desktop | null = null;
  let store: EpisodeWriter | null = null;
  let closeBackend: (() => Promise<void>) | undefined;
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints > 1 || !agent) {
      err.write('\nstarkv run: interrupted\n');
      process.exit(130);
    }
    err.write('\nstopping (Ctrl+C again to quit at once)...\n');
    void agent.stop('interrupted (SIGINT)');
  };
  const onUsr1 = () => (agent?.isPaused ? agent.resume() : agent?.pause());
  process.on('SIGINT', onSigint);
  process.on('SIGUSR1', onUsr1);
  try {
    // Every option is checked before anything slow (loading a checkpoint, the endpoint check) or visible
    // (opening the desktop) happens.
    const task = (values.task as string | undefined) ?? positionals.join(' ');
    if (!task.trim()) throw new UsageError('no task: give --task "..."');
    const coords = parseChoiceOpt(values.coords as string | undefined, 'coords', ['absolute', 'relative1000'] as const, 'absolute');
    const displayArg = values.display as string | undefined;
    const xDisplay = displayArg?.startsWith(':') ? displayArg : process.env.DISPLAY;
    const displayId = displayArg && !displayArg.startsWith(':') ? num(displayArg, 'display', 0, true)! : 0;
    const cfg = {
      maxSteps: num(values['max-steps'], 'max-steps', 1, true), historyImages: num(values.history, 'history', 1, true),
      maxTokens: num(values['max-tokens'], 'max-tokens', 1, true), temperature: num(values.temperature, 'temperature'),
      topP: parseNumberOpt(values['top-p'] as string | undefined, 'top-p', { above: 0, max: 1 }), waitMs: num(values['wait-ms'], 'wait-ms'),
      minPixels: num(values['min-pixels'], 'min-pixels', 1, true), maxPixels: num(values['max-pixels'], 'max-pixels', 1, true),
      sendMaxPixels: num(values['send-max-pixels'], 'send-max-pixels', 784, true),
    };
    if (values.checkpoint && values.endpoint) throw new UsageError('give either --endpoint or --checkpoint, not both');
    if (!values.checkpoint) {
      for (const o of ['kv-method', 'kv-budget', 'threads', 'device', 'cpu-matmul', 'weights'])
        if (values[o] !== undefined) throw new UsageError(`--${o} is for the in-process engine (--checkpoint DIR); an endpoint's server does its own`);
      if (!values.endpoint) throw new UsageError('no --endpoint: the URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (or --checkpoint DIR to run in-process)');
      if (!values.model) throw new UsageError('no --model: the model name the server serves');
    }
    const method = parseChoiceOpt(values['kv-method'] as string | undefined, 'kv-method', KV_METHOD_NAMES, 'starkv');
    const budget = parseNumberOpt(values['kv-budget'] as string | undefined, 'kv-budget', { above: 0, max: 100 }) ?? 20;
    const threads = parseThreadsOpt(values.threads as string | undefined);
    const timeoutS = num(values.timeout, 'timeout', 1) ?? 120;
    const retries = num(values.retries, 'retries', 0, true);
    // The desktop first: no X display is a quick error, not one after a long model load.
    desktop = await Desktop.open({ xDisplay });
    desktop.display(displayId);

    let backend: ModelBackend;
    let modelName: string;
    if (values.checkpoint) {
      const engine = await Engine.load(values.checkpoint as string, { threads, device: values.device as string | undefined, cpuMatmul: (values['cpu-matmul'] as string | undefined) ?? 'auto', weights: values.weights as string | undefined });
      // With each reply, one line on what the compressed cache holds (the app's KV inspector, in brief).
      const onKvTurn = (t: KvTurn) => process.stdout.write(kvLine(t) + '\n');
      const native = new NativeBackend(engine, { kv: { method, budget }, onKvTurn });
      closeBackend = () => native.close();
      backend = native;
      const info = engine.info();
      modelName = `${engine.checkpoint.dir} (in-process on ${info.device ?? 'cpu'}${method === 'full' ? ', full KV cache' : `, ${method} ${budget}%`})`;
      if (info.deviceNote && (values.device ?? 'auto') === 'auto') err.write(`note: the engine runs on the CPU (${info.deviceNote})\n`);
    } else {
      const remote = new OpenAIBackend({
        baseURL: values.endpoint as string, model: values.model as string,
        apiKey: (values['api-key'] as string | undefined) ?? process.env.STARKV_API_KEY,
        timeoutMs: timeoutS * 1000, retries,
      });
      for (const w of [...remote.warnings, ...(await remote.check())]) err.write(`note: ${w}\n`);
      backend = remote;
      modelName = values.model as string;
    }
    const operator = new DesktopOperator(desktop, {
      displayId, dryRun: !!values['dry-run'], coordSpace: coords as CoordSpace,
      limits: {
        minPixels: cfg.minPixels ?? backend.imageLimits?.minPixels ?? UITARS_LIMITS.minPixels,
        maxPixels: cfg.maxPixels ?? backend.imageLimits?.maxPixels ?? UITARS_LIMITS.maxPixels,
      },
      maxSendPixels: cfg.sendMaxPixels,
    });
    const d = operator.display;
    err.write(`display ${d.id} (${d.name}) ${d.width}x${d.height}+${d.x}+${d.y} scale ${d.scaleFactor} on ${desktop.xDisplay}; model ${modelName} at ${backend.destination}${values['dry-run'] ? '; DRY RUN: no input will be sent' : ''}\n`);
    err.write('stop: Ctrl+C, or move the mouse into a screen corner\n');
    if (values.out) {
      store = EpisodeWriter.create(values.out as string, task);
      err.write(`trajectory: ${store.dir}\n`);
    }
    const yes = !!values['yes-risky'];
    agent = new Agent(
      {
        task, maxSteps: cfg.maxSteps, historyImages: cfg.historyImages, language: values.language as string | undefined,
        maxTokens: cfg.maxTokens, temperature: cfg.temperature, topP: cfg.topP, waitMs: cfg.waitMs, risk: DEFAULT_RISK_POLICY,
      },
      backend, operator, store,
      {
        onEvent: printer(process.stdout),
        confirm: async (r) => {
          if (yes) return true;
          const a = await askLine(`\nRisky action: ${describeAction(r.action)}\n  why: ${r.reasons.join('; ')}\nAllow it? [y/N] `, agent?.signal, onSigint);
          if (a === null) err.write(`risky action ${describeAction(r.action)} declined (no terminal to ask; use --yes-risky to allow)\n`);
          return !!a && /^y(es)?$/i.test(a.trim());
        },
        askUser: async (q) => askLine(`\nThe agent asks for help: ${q.question}\nYour answer (empty to end): `, agent?.signal, onSigint),
      },
    );
    const result: EpisodeResult = await agent.run();
    if (store) {
      store.close();
      try {
        err.write(`report: ${writeReport(store.dir)}\n`);
      } catch (e) {
        err.write(`note: the HTML report could not be written: ${(e as Error).message}\n`);
      }
    }
    const line = result.status === 'finished' ? `finished: ${result.answer ?? ''}` : `${result.status}${result.error ? `: ${result.error}` : ''}`;
    process.stdout.write(`\n${line}\n`);
    if (result.raw !== undefined) process.stdout.write(`raw reply:\n${result.raw}\n`);
    return result.status === 'finished' ? 0 : result.status === 'stopped' ? 130 : 1;
  } catch (e) {
    if (e instanceof UsageError) {
      err.write(`starkv run: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    err.write(`starkv run: ${(e as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGUSR1', onUsr1);
    store?.close();
    desktop?.close();
    await closeBackend?.();
  }
}
