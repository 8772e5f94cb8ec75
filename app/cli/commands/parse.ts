// `starkv parse`: parses a UI-TARS reply from standard input into our actions (for debugging prompts).
import { runParse } from '../../agent/parse-cli.ts';

export default async function parse(argv: string[]): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const { code, out } = runParse(argv, Buffer.concat(chunks).toString('utf8'));
  process.stdout.write(out);
  return code;
}
