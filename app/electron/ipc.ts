// The protocol over Electron's IPC, written against the few members of ipcMain / WebContents it uses so
// that it runs (and is tested) without the Electron binary. Only frames loaded from our own origin may
// connect or send; each window is one host client, closed when the window goes away. Commands are passed
// to the host raw: it validates them (app/protocol.ts) and answers a malformed one with a reason.
import type { Host, HostClient } from '../host/host.ts';
import type { HostEvent } from '../protocol.ts';

export interface SenderLike {
  send(channel: string, payload: unknown): void;
  isDestroyed(): boolean;
  once(event: 'destroyed', listener: () => void): unknown;
}
export interface IpcEventLike {
  sender: SenderLike;
  senderFrame?: { url: string } | null;
}
export interface IpcMainLike {
  on(channel: string, listener: (ev: IpcEventLike, ...args: unknown[]) => void): unknown;
}

export const IPC = { ready: 'starkv:ready', command: 'starkv:command', event: 'starkv:event' } as const;

/** Wires the host to ipcMain for pages of `origin` (e.g. 'starkv://app'); returns the live client count. */
export function wireIpc(ipc: IpcMainLike, host: Pick<Host, 'connect'>, origin: string): { clients: () => number } {
  const clients = new Map<SenderLike, HostClient>();
  const ours = (ev: IpcEventLike) => (ev.senderFrame?.url ?? '').startsWith(`${origin}/`);
  ipc.on(IPC.ready, (ev) => {
    if (!ours(ev)) return;
    const wc = ev.sender;
    clients.get(wc)?.close(); // a reload: the old page's client goes
    clients.set(wc, host.connect((event: HostEvent) => void (!wc.isDestroyed() && wc.send(IPC.event, event))));
    wc.once('destroyed', () => {
      clients.get(wc)?.close();
      clients.delete(wc);
    });
  });
  ipc.on(IPC.command, (ev, cmd) => {
    if (!ours(ev)) return;
    clients.get(ev.sender)?.receive(cmd);
  });
  return { clients: () => clients.size };
}
