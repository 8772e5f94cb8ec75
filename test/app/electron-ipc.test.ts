// The Electron shell's IPC wiring (app/electron/ipc.ts) with the real host, without the Electron binary
// (it cannot be downloaded here): ipcMain and the windows' WebContents are stood in for by plain event
// emitters with the members the wiring uses. What is checked is ours: only our origin connects and sends,
// one host client per window, a reload replaces it, a closed window is dropped, malformed commands are
// answered with a reason and never take the host down, and the protocol is the same as over WebSocket.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IPC, wireIpc, type IpcEventLike, type SenderLike } from '../../app/electron/ipc.ts';
import { Host } from '../../app/host/host.ts';
import type { AgentRunner } from '../../app/host/runner.ts';
import { defaultSettings, SettingsStore } from '../../app/host/settings.ts';
import { parseEvent, type HostEvent } from '../../app/protocol.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'starkv-ipc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class Window extends EventEmitter implements SenderLike {
  received: HostEvent[] = [];
  destroyed = false;
  constructor(public url: string) {
    super();
  }
  send(channel: string, payload: unknown) {
    expect(channel).toBe(IPC.event);
    const r = parseEvent(payload); // what the page does on receipt
    if (!r.ok) throw new Error(`the host sent an invalid event: ${r.reason}`);
    this.received.push(r.value);
  }
  isDestroyed() {
    return this.destroyed;
  }
  close() {
    this.destroyed = true;
    this.emit('destroyed');
  }
  ev(): IpcEventLike {
    return { sender: this, senderFrame: { url: this.url } };
  }
}

const noRunner: AgentRunner = { start: () => Promise.reject(new Error('no agent in this test')) };

describe('Electron IPC wiring', () => {
  const host = new Host({ settings: new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir)), runner: noRunner, mode: 'electron', log: () => {} });
  const ipc = new EventEmitter();
  const wired = wireIpc(ipc, host, 'starkv://app');
  const ours = new Window('starkv://app/index.html');
  const evil = new Window('https://example.com/');

  it('connects only pages of our origin, one client per window', () => {
    ipc.emit(IPC.ready, evil.ev());
    ipc.emit(IPC.ready, { sender: evil, senderFrame: null });
    expect(wired.clients()).toBe(0);
    ipc.emit(IPC.ready, ours.ev());
    expect(wired.clients()).toBe(1);
    expect(ours.received[0]).toMatchObject({ type: 'hello', mode: 'electron' });
    expect(evil.received).toEqual([]);
  });

  it('carries commands both ways with the same protocol, and answers malformed ones with a reason', async () => {
    ipc.emit(IPC.command, ours.ev(), { type: 'settings.update', patch: { agent: { maxSteps: 7 } }, ref: 'r1' });
    ipc.emit(IPC.command, ours.ev(), { type: 'task.pause', ref: 'r2' });
    ipc.emit(IPC.command, ours.ev(), { type: 'no.such.command' });
    ipc.emit(IPC.command, ours.ev(), 'not even an object');
    ipc.emit(IPC.command, ours.ev(), { type: 'task.start', task: '' });
    await new Promise((r) => setImmediate(r));
    const after = ours.received.slice(1);
    expect(after.filter((e) => e.type === 'rejected')).toHaveLength(3);
    expect(JSON.stringify(after.filter((e) => e.type === 'rejected'))).toContain('the task is empty');
    expect(after).toContainEqual(expect.objectContaining({ type: 'settings', ref: 'r1' }));
    expect(after).toContainEqual(expect.objectContaining({ type: 'error', ref: 'r2' })); // no task to pause
    expect(host.settings.agent.maxSteps).toBe(7);
    // Another origin's commands are dropped without an answer.
    ipc.emit(IPC.command, evil.ev(), { type: 'task.stop' });
    expect(evil.received).toEqual([]);
  });

  it('a reload replaces the window’s client; a closed window is dropped and never sent to', async () => {
    ipc.emit(IPC.ready, ours.ev());
    expect(wired.clients()).toBe(1);
    const second = new Window('starkv://app/index.html#episodes');
    ipc.emit(IPC.ready, second.ev());
    expect(wired.clients()).toBe(2);
    ours.close();
    expect(wired.clients()).toBe(1);
    const n = ours.received.length;
    ipc.emit(IPC.command, second.ev(), { type: 'task.pause' });
    await new Promise((r) => setImmediate(r));
    expect(ours.received.length).toBe(n);
    expect(second.received.at(-1)?.type).toBe('error');
  });
});
