#!/usr/bin/env node
// Entry point of the `starkv` CLI: registers the TypeScript loader and runs app/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../app/cli/main.ts');
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`starkv: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.STARKV_DEBUG) console.error(err);
  process.exitCode = 1;
}
