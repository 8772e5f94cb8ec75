// Debian's Chromium, headful under the test's Xvfb, showing the test page as an app window at (0,0).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireBinary } from './xvfb.ts';

export interface Browser {
  proc: ChildProcess;
  stop(): Promise<void>;
}

export function launchChromium(display: string, url: string, opts: { width: number; height: number; scale?: number }): Browser {
  const bin = requireBinary('chromium', 'chromium');
  const profile = mkdtempSync(path.join(os.tmpdir(), 'starkv-chromium-'));
  const args = [
    '--no-sandbox', '--test-type', `--user-data-dir=${profile}`, '--no-first-run', '--no-default-browser-check',
    '--disable-gpu', '--password-store=basic', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-features=Translate,MediaRouter',
    '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
    `--window-position=0,0`, `--window-size=${opts.width},${opts.height}`,
    ...(opts.scale ? [`--force-device-scale-factor=${opts.scale}`] : []),
    `--app=${url}`,
  ];
  const proc = spawn(bin, args, { env: { ...process.env, DISPLAY: display }, stdio: 'ignore', detached: true });
  return {
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(profile, { recursive: true, force: true });
          resolve();
        };
        if (proc.exitCode !== null || proc.pid === undefined) return done();
        proc.once('exit', done);
        try {
          process.kill(-proc.pid, 'SIGTERM');
        } catch {
          return done();
        }
        setTimeout(() => {
          try {
            process.kill(-proc.pid!, 'SIGKILL');
          } catch {
            // gone
          }
        }, 3000).unref();
      }),
  };
}
