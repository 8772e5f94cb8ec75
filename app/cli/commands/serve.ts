// `starkv serve [--port N]`: web mode. Serves the renderer and the protocol WebSocket on 127.0.0.1 and
// prints `http://127.0.0.1:<port>/?token=<token>` as the first line of stdout (everything else goes to
// stderr). Ctrl+C stops the running task first (no input after it), then the server.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../native.ts';
import { DesktopRunner } from '../../host/desktop-runner.ts';
import { Host } from '../../host/host.ts';
import { defaultConfigFile, defaultDataDir, defaultSettings, SettingsStore } from '../../host/settings.ts';
import { checkBindHost } from '../../server/auth.ts';
import { BUILD_HINT, buildRenderer, rendererBuildState } from '../../server/renderer-build.ts';
import { defaultRendererDir, startServer } from '../../server/server.ts';

const USAGE = `usage: starkv serve [--port N] [options]

Serves the starkv window in your browser (web mode), on 127.0.0.1 only. The first line printed is the
URL to open, with its access token.

  --port N         port (default 0: a free port)
  --host H         127.0.0.1 (default), localhost or ::1; other addresses are refused
  --config FILE    settings file (default ${defaultConfigFile()})
  --data DIR       where episodes are stored by default (default ${defaultDataDir()})
  --renderer DIR   a renderer build to serve (default dist/renderer, built from renderer/ when missing or stale)
  --no-build       never build the renderer; fail if it is missing
`;

export default async function serve(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' }, host: { type: 'string' }, config: { type: 'string' }, data: { type: 'string' },
        renderer: { type: 'string' }, 'no-build': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`starkv serve: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const port = values.port === undefined ? 0 : /^\d{1,5}$/.test(values.port as string) ? Number(values.port) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`starkv serve: --port must be a whole number from 0 to 65535 (got '${values.port}')\n`);
    return 2;
  }
  const bindHost = (values.host as string | undefined) ?? '127.0.0.1';
  const bad = checkBindHost(bindHost);
  if (bad) {
    process.stderr.write(`starkv serve: ${bad}\n`);
    return 2;
  }

  const rendererDir = values.renderer ? path.resolve(values.renderer as string) : defaultRendererDir(repoRoot);
  const state = rendererBuildState(repoRoot, rendererDir);
  if (state !== 'fresh') {
    if (values['no-build'] || values.renderer) {
      if (state === 'missing') {
        process.stderr.write(`starkv serve: no renderer build in ${rendererDir}; build it with: ${BUILD_HINT}\n`);
        return 1;
      }
    } else {
      process.stderr.write(`starkv serve: the renderer build is ${state}; building it (${BUILD_HINT})...\n`);
      try {
        await buildRenderer(repoRoot);
      } catch (e) {
        process.stderr.write(`starkv serve: ${(e as Error).message}\n`);
        return 1;
      }
    }
  }

  const dataDir = path.resolve((values.data as string | undefined) ?? defaultDataDir());
  const configFile = path.resolve((values.config as string | undefined) ?? defaultConfigFile());
  const settings = new SettingsStore(configFile, defaultSettings(dataDir));
  const host = new Host({ settings, runner: new DesktopRunner(), mode: 'web' });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ host, rendererDir, port, bindHost });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    process.stderr.write(`starkv serve: port ${port} on ${bindHost} is already in use (another starkv serve?); choose another --port, or leave it out for a free one\n`);
    return 1;
  }
  process.stdout.write(`${server.url}\n`);
  process.stderr.write(`starkv: web UI on ${server.url.split('?')[0]} (open the line above); settings in ${configFile}; Ctrl+C stops\n`);
  if (!process.env.DISPLAY) process.stderr.write('starkv: note: DISPLAY is not set, so tasks cannot capture or control a screen from this process\n');

  return new Promise<number>((resolve) => {
    let closing = false;
    const shutdown = (sig: string) => {
      if (closing) {
        process.stderr.write('starkv: exiting now\n');
        process.exit(130);
      }
      closing = true;
      process.stderr.write(`\nstarkv: ${sig}: stopping the task and the server...\n`);
      void host
        .shutdown(`the server is shutting down (${sig})`)
        .catch(() => {})
        .then(() => server.close())
        .then(() => resolve(0));
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });
}
