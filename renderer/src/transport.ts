// The renderer's end of the protocol: Electron IPC through the preload bridge when present, else a
// WebSocket to the server that served this page (authenticated by its cookie, or the URL's token). Once
// the cookie is shown to work, the token leaves the address bar (it would be in the agent's screenshots);
// a reload then authenticates with the cookie.
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
  const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  // The cookie first (the response that served this page set it); the token only if the cookie is refused.
  let viaToken = false;
  const open = () => {
    onState('connecting');
    const sock = new WebSocket(viaToken && token ? `${base}?token=${encodeURIComponent(token)}` : base);
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      opened = true;
      delay = 500;
      onState('open');
      if (!viaToken) {
        const bare = withoutToken(location.href);
        if (bare !== null) history.replaceState(history.state, '', bare);
      }
    };
    sock.onmessage = (m) => {
      try {
        deliver(JSON.parse(String(m.data)));
      } catch (e) {
        console.warn('starkv: dropped a message that is not JSON', e);
      }
    };
    sock.onclose = () => {
      onState('closed');
      if (!opened && !viaToken && token) {
        viaToken = true; // no usable cookie (blocked?): the token stays in the address bar for reloads
        return open();
      }
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

/** `href` without its `token` query parameter (the rest of the URL kept), or null when it has none. */
export function withoutToken(href: string): string | null {
  const u = new URL(href);
  if (!u.searchParams.has('token')) return null;
  u.searchParams.delete('token');
  return `${u.pathname}${u.search}${u.hash}`;
}
