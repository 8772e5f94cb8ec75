// `starkv parse`: parses a UI-TARS reply from standard input into our actions (for debugging prompts).
import { PARSE_USAGE, runParse } from '../../agent/parse-cli.ts';

export default async function parse(argv: string[]): Promise<number> {
  // --help before reading stdin: on a terminal, reading first would wait for Ctrl+D.
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(PARSE_USAGE);
    return 0;
  }
  if (process.stdin.isTTY) process.stderr.write('reading the reply from standard input (end it with Ctrl+D)...\n');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const { code, out } = runParse(argv, Buffer.concat(chunks).toString('utf8'));
  process.stdout.write(out);
  return code;
}
