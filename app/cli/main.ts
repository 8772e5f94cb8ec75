// `starkv` command dispatcher: each subcommand lives in app/cli/commands/<name>.ts and exports
// `default async function (argv: string[]): Promise<number>` returning the exit code.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError } from './format.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

const COMMANDS: Record<string, string> = {
  inspect: 'inspect information about a checkpoint folder (architecture, sizes, dtype, memory)',
  generate: 'generate text from a checkpoint (--prompt or --input-ids, --image, --json)',
  bench: 'measure prefill/decode speed beside this machine\'s GEMM peak and memory bandwidth',
  'kv-replay': 'replay KV-compression golden inputs and print the kept tokens (--json)',
  episode: 'run a persistent compressed-KV episode on a checkpoint and print telemetry',
  run: 'run a desktop task with the agent',
  parse: 'parse a UI-TARS reply from stdin into actions (--json)',
  report: 'rebuild the HTML report of a recorded agent run',
  serve: 'serve the web UI on 127.0.0.1',
  eval: 'evaluate accuracy against KV budget',
  devices: 'the CPU and the CUDA devices the engine can run on',
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(10)} ${v}`);
  return `usage: starkv <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nstarkv <command> --help shows a command's options; starkv --version the version.`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(here, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return `starkv ${pkg.version}`;
}

/** `--temperature -1` as `--temperature=-1`: node's parseArgs takes a value starting with '-' for an option
 *  and refuses it as "ambiguous"; joined, the command's own range check names the option and its range. */
export function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!, next = args[i + 1];
    if (a.startsWith('--') && a.length > 2 && !a.includes('=') && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** A bad command line (our UsageError, or node's parseArgs refusing an option) rather than a failure. */
function isUsageError(e: unknown): e is Error {
  return e instanceof UsageError || (e instanceof Error && String((e as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS'));
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(usage() + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const file = path.join(here, 'commands', `${cmd}.ts`);
  if (!(cmd in COMMANDS) || !existsSync(file)) {
    process.stderr.write(`starkv: unknown or not yet available command '${cmd}'\n\n${usage()}\n`);
    return 2;
  }
  // Output piped into `head` and closed early: stop quietly, as other command-line tools do.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const mod = (await import(pathToFileURL(file).href)) as { default: (a: string[]) => Promise<number> };
  try {
    return await mod.default(joinNegativeValues(rest));
  } catch (e) {
    if (!isUsageError(e)) throw e;
    process.stderr.write(`starkv ${cmd}: ${e.message}\n(starkv ${cmd} --help shows the options)\n`);
    return 2;
  }
}
