// The renderer's end of the protocol: Electron IPC through the preload bridge when present, else a
// WebSocket to the server that served this page (authenticated by its cookie, or the URL's token).
// Every incoming event is validated; a bad one is dropped with a console note, never rendered.
import { parseEvent, type Command, type HostEvent } from '../../app/protocol.ts';

export type ConnState = 'connecting' | 'open' | 'closed';

interface Bridge {
  send(cmd: Command): void;
  onEvent(cb: (e: unknown) => void): () => void;
}

declare global {
  interface Window {
    starkv?: Bridge;
  }
}

export interface Transport {
  send(cmd: Command): boolean;
  readonly kind: 'ipc' | 'websocket';
}

export function connect(onEvent: (e: HostEvent) => void, onState: (s: ConnState) => void): Transport {
  const deliver = (raw: unknown) => {
    const r = parseEvent(raw);
    if (r.ok) onEvent(r.value);
    else console.warn('starkv: dropped an invalid event:', r.reason);
  };
  if (window.starkv) {
    const bridge = window.starkv;
    bridge.onEvent(deliver);
    onState('open');
    return { kind: 'ipc', send: (cmd) => (bridge.send(cmd), true) };
  }
  let ws: WebSocket | null = null;
  let delay = 500;
  const token = new URLSearchParams(location.search).get('token');
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  const open = () => {
    onState('connecting');
    ws = new WebSocket(url);
    ws.onopen = () => {
      delay = 500;
      onState('open');
    };
    ws.onmessage = (m) => {
      try {
        deliver(JSON.parse(String(m.data)));
      } catch (e) {
        console.warn('starkv: dropped a message that is not JSON', e);
      }
    };
    ws.onclose = () => {
      onState('closed');
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 8000);
    };
  };
  open();
  return {
    kind: 'websocket',
    send: (cmd) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(cmd));
      return true;
    },
  };
}
