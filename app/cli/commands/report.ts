// `starkv report <trajectory-dir>`: rebuilds the offline HTML report of a recorded agent run.
import { existsSync, statSync } from 'node:fs';
import { writeReport } from '../../store/report.ts';
import { UsageError } from '../format.ts';

const USAGE = 'usage: starkv report <trajectory-dir>   (a folder written by starkv run --out)\n';

export default async function report(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (argv.length !== 1) throw new UsageError(argv.length ? `one folder, not ${argv.length} arguments` : 'no folder given');
  const dir = argv[0]!;
  if (dir.startsWith('-')) throw new UsageError(`unknown option '${dir}'`);
  if (!existsSync(dir)) throw new Error(`${dir}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder (give the folder starkv run --out wrote)`);
  process.stdout.write(writeReport(dir) + '\n');
  return 0;
}
