// The Electron shell, kept thin: one window over the same renderer build and the same host as web mode,
// the protocol over IPC (through preload.ts), a tray with Stop, and a global stop hotkey. Everything else
// lives in app/host, which knows nothing of electron. Settings and episodes live in the user-data folder.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, BrowserWindow, globalShortcut, ipcMain, Menu, nativeImage, net, protocol, Tray } from 'electron';
import { DesktopRunner } from '../host/desktop-runner.ts';
import { Host } from '../host/host.ts';
import { defaultSettings, SettingsStore } from '../host/settings.ts';
import { resolveInside } from '../server/static.ts';
import { wireIpc } from './ipc.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const rendererDir = path.join(repoRoot, 'dist', 'renderer');
const SCHEME = 'starkv';
const ORIGIN = `${SCHEME}://app`;
/** Hard to press by accident and unlikely to be a hotkey the model sends. Override with STARKV_STOP_HOTKEY. */
const STOP_HOTKEY = process.env.STARKV_STOP_HOTKEY || 'CommandOrControl+Alt+Shift+X';

protocol.registerSchemesAsPrivileged([{ scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

/** preload.ts with its types stripped (Node's own stripper), written once per content hash. */
async function preloadPath(): Promise<string> {
  const src = readFileSync(path.join(here, 'preload.ts'), 'utf8');
  const mod = (await import('node:module')) as unknown as { stripTypeScriptTypes?: (code: string) => string };
  if (!mod.stripTypeScriptTypes) throw new Error(`this Electron's Node (${process.versions.node}) cannot strip TypeScript types (needs 22.13+)`);
  const out = path.join(app.getPath('userData'), `preload-${createHash('sha256').update(src).digest('hex').slice(0, 12)}.cjs`);
  writeFileSync(out, mod.stripTypeScriptTypes(src));
  return out;
}

function serveFile(file: string | null): Promise<Response> | Response {
  return file ? net.fetch(pathToFileURL(file).href) : new Response('not found', { status: 404 });
}

async function main(): Promise<void> {
  if (!app.requestSingleInstanceLock()) return app.quit();
  await app.whenReady();
  const userData = app.getPath('userData');
  const settings = new SettingsStore(path.join(userData, 'settings.json'), defaultSettings(userData));
  const host = new Host({ settings, runner: new DesktopRunner(), mode: 'electron' });

  // starkv://app/... : the renderer build, screenshots by reference, episode files (the same paths as web mode).
  protocol.handle(SCHEME, (req) => {
    const u = new URL(req.url);
    if (u.host !== 'app') return new Response('not found', { status: 404 });
    const m = /^\/blob\/([\w-]{1,100})$/.exec(u.pathname);
    if (m) {
      const b = host.getBlob(m[1]!);
      return b ? new Response(new Uint8Array(b.data), { headers: { 'content-type': b.type } }) : new Response('gone', { status: 404 });
    }
    const e = /^\/episodes\/([^/]+)\/([^/]+)$/.exec(u.pathname);
    if (e) return serveFile(host.episodeFile(decodeURIComponent(e[1]!), decodeURIComponent(e[2]!)));
    return serveFile(resolveInside(rendererDir, u.pathname === '/' ? '/index.html' : u.pathname));
  });

  wireIpc(ipcMain, host, ORIGIN);

  const preload = await preloadPath();
  let win: BrowserWindow | null = null;
  const show = () => {
    if (win && !win.isDestroyed()) return void (win.show(), win.focus());
    win = new BrowserWindow({
      width: 1400, height: 900, minWidth: 900, minHeight: 600, title: 'starkv', backgroundColor: '#0e1116',
      icon: path.join(repoRoot, 'assets', 'icons', 'png', '256x256.png'),
      webPreferences: { preload, contextIsolation: true, nodeIntegration: false, sandbox: true, webSecurity: true },
    });
    win.webContents.setWindowOpenHandler(({ url }) => (url.startsWith(`${ORIGIN}/`) ? { action: 'allow' } : { action: 'deny' }));
    win.webContents.on('will-navigate', (e, url) => !url.startsWith(`${ORIGIN}/`) && e.preventDefault());
    void win.loadURL(`${ORIGIN}/index.html`);
  };

  const stop = () => void host.stop('stopped from the tray or the stop hotkey');
  const tray = new Tray(nativeImage.createFromPath(path.join(repoRoot, 'assets', 'icons', 'tray.png')));
  tray.setToolTip(`starkv — stop the agent: ${STOP_HOTKEY}`);
  tray.setContextMenu(
    Menu.buildFromTemplate([
      { label: 'Stop the agent', accelerator: STOP_HOTKEY, click: stop },
      { label: 'Show window', click: show },
      { type: 'separator' },
      { label: 'Quit', click: () => app.quit() },
    ]),
  );
  tray.on('click', show);
  if (!globalShortcut.register(STOP_HOTKEY, stop)) console.error(`starkv: the stop hotkey ${STOP_HOTKEY} is taken by another program; use the tray's Stop`);

  show();
  app.on('second-instance', show);
  app.on('activate', show);
  app.on('window-all-closed', () => {
    // The agent may still be running: it stays reachable from the tray (Stop, Show window).
    if (!host.running) app.quit();
  });
  let quitting = false;
  app.on('before-quit', (e) => {
    if (quitting) return;
    quitting = true;
    e.preventDefault();
    globalShortcut.unregisterAll();
    void host.shutdown('the app is quitting').finally(() => app.quit());
  });
}

main().catch((e: Error) => {
  console.error(`starkv: ${e.message}`);
  app.exit(1);
});
