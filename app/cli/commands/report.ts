// `starkv report <trajectory-dir>`: rebuilds the offline HTML report of a recorded agent run.
import { writeReport } from '../../store/report.ts';

export default async function report(argv: string[]): Promise<number> {
  if (!argv[0] || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write('usage: starkv report <trajectory-dir>   (a folder written by starkv run --out)\n');
    return argv[0] ? 0 : 2;
  }
  process.stdout.write(writeReport(argv[0]) + '\n');
  return 0;
}
