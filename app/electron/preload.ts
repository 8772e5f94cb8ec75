// The window's only door to the host: `window.starkv.send(command)` and `window.starkv.onEvent(cb)`,
// carrying the same protocol as the WebSocket (validated by the host on arrival and by the page on
// receipt). Runs sandboxed with contextIsolation; written as CommonJS so that main.ts can strip its
// types and load it as a sandboxed preload without a build step.
import type { IpcRendererEvent } from 'electron';

const { contextBridge, ipcRenderer } = require('electron') as typeof import('electron');

contextBridge.exposeInMainWorld('starkv', {
  send(command: unknown): void {
    ipcRenderer.send('starkv:command', command);
  },
  onEvent(cb: (event: unknown) => void): () => void {
    const listener = (_e: IpcRendererEvent, event: unknown) => cb(event);
    ipcRenderer.on('starkv:event', listener);
    ipcRenderer.send('starkv:ready');
    return () => void ipcRenderer.removeListener('starkv:event', listener);
  },
});
