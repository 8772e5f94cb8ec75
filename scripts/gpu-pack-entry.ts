// Entry of the self-contained `starkv` bundle that scripts/gpu-pack.sh builds for a GPU machine without
// Node.js or npm: the engine's commands that run there (bench, devices, generate, kv-replay, episode,
// inspect), bundled by esbuild into one file; the addon comes from STARKV_ADDON.
import bench from '../app/cli/commands/bench.ts';
import devices from '../app/cli/commands/devices.ts';
import episode from '../app/cli/commands/episode.ts';
import generate from '../app/cli/commands/generate.ts';
import inspect from '../app/cli/commands/inspect.ts';
import kvReplay from '../app/cli/commands/kv-replay.ts';

const commands: Record<string, (argv: string[]) => Promise<number>> = { bench, devices, episode, generate, inspect, 'kv-replay': kvReplay };

const [cmd, ...rest] = process.argv.slice(2);
const run = cmd ? commands[cmd] : undefined;
if (!run) {
  process.stderr.write(`usage: starkv-gpu <${Object.keys(commands).join('|')}> [options]\n`);
  process.exitCode = 2;
} else {
  try {
    process.exitCode = await run(rest);
  } catch (err) {
    process.stderr.write(`starkv: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
