// The app's runner on a real X server (Xvfb): the corner-abort setting taking effect during a run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesktopOperator } from '../../app/agent/operator.ts';
import { Desktop } from '../../app/desktop/desktop.ts';
import { XConnection } from '../../app/desktop/x11/connection.ts';
import { MOTION, XTest } from '../../app/desktop/x11/xtest.ts';
import { LiveOperator } from '../../app/host/desktop-runner.ts';
import { requireBinary, startXvfb, type Xvfb } from '../agent/helpers/xvfb.ts';
import { TMP } from '../helpers/paths.ts';

const W = 640, H = 400;
const DATA = path.join(TMP, 'app-desktop-runner');
let xvfb: Xvfb, desktop: Desktop, user: XConnection, xt: XTest, win: ChildProcess;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Another client (the user's hand) moves the pointer. */
const movePointer = async (x: number, y: number) => {
  xt.fake(MOTION, 0, x, y);
  await user.sync();
};

beforeAll(async () => {
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true });
  xvfb = await startXvfb(W, H);
  // Something on the screen (a blank capture is refused by the agent): a small X window with text.
  win = spawn(requireBinary('xmessage', 'x11-utils'), ['-geometry', '360x160+120+100', 'starkv test window: Settings  Open  Cancel'], {
    env: { ...process.env, DISPLAY: xvfb.display }, stdio: 'ignore',
  });
  await sleep(700);
  desktop = await Desktop.open({ xDisplay: xvfb.display });
  user = await XConnection.open(xvfb.display);
  xt = await XTest.open(user);
}, 60_000);

afterAll(async () => {
  win?.kill();
  user?.close();
  desktop?.close();
  await xvfb?.stop();
});

describe('corner abort follows the setting during a run', () => {
  const operator = (cornerAbort: boolean) => new LiveOperator(new DesktopOperator(desktop, { dryRun: true }), true, cornerAbort);

  it('turned on mid-run: the watch starts, and a pointer in a corner fires the stop', async () => {
    await movePointer(W / 2, H / 2);
    const op = operator(false);
    let fired = 0;
    const off = op.watchCorners(() => fired++);
    await movePointer(W - 1, 0);
    await sleep(400);
    expect(fired).toBe(0); // off: the user may park the pointer in a corner
    op.cornerAbort = true;
    await expect.poll(() => fired, { timeout: 3000 }).toBe(1);
    off();
  });

  it('turned off mid-run: the watch ends', async () => {
    await movePointer(W / 2, H / 2);
    const op = operator(true);
    let fired = 0;
    const off = op.watchCorners(() => fired++);
    await sleep(250);
    op.cornerAbort = false;
    await movePointer(0, H - 1);
    await sleep(500);
    expect(fired).toBe(0);
    off();
    await movePointer(W / 2, H / 2);
  });
});
