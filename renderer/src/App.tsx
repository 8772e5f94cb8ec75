// The window: a header with the views, the current view, the dialogs the agent may open, and notices.
import { ConfirmDialog } from './components/ConfirmDialog.tsx';
import { useApp, type Tab } from './store.ts';
import { EpisodesView } from './views/EpisodesView.tsx';
import { KvInspector } from './views/KvInspector.tsx';
import { MemoryView } from './views/MemoryView.tsx';
import { RunView } from './views/RunView.tsx';
import { SettingsView } from './views/SettingsView.tsx';

const TABS: Array<[Tab, string]> = [
  ['run', 'Run'],
  ['kv', 'KV inspector'],
  ['memory', 'Memory'],
  ['episodes', 'Episodes'],
  ['settings', 'Settings'],
];

function StatusPill() {
  const conn = useApp((s) => s.conn);
  const live = useApp((s) => s.live);
  const label = conn !== 'open' ? (conn === 'connecting' ? 'connecting…' : 'disconnected') : !live || live.status === 'ended' ? 'idle' : live.status;
  return (
    <span className={`pill pill-${conn !== 'open' ? 'off' : label}`} data-testid="status">
      <span className="dot" /> {label}
    </span>
  );
}

export function App() {
  const tab = useApp((s) => s.tab);
  const setTab = useApp((s) => s.setTab);
  const notices = useApp((s) => s.notices);
  const dismiss = useApp((s) => s.dismiss);
  // A confirmation or question waits on the live task whatever is on screen (an opened episode included).
  const live = useApp((s) => s.live);
  const settings = useApp((s) => s.settings);
  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <img src="./icon.png" alt="" width={22} height={22} />
          <span>starkv</span>
        </div>
        <nav className="tabs" role="tablist">
          {TABS.map(([id, label]) => (
            <button key={id} role="tab" aria-selected={tab === id} className={tab === id ? 'tab active' : 'tab'} onClick={() => setTab(id)} data-testid={`tab-${id}`}>
              {label}
            </button>
          ))}
        </nav>
        <div className="topbar-right">
          {settings && (
            <span className="muted small" title="compression method and budget for the in-process engine">
              {settings.kv.method} · {settings.kv.budgetPercent}%
            </span>
          )}
          <StatusPill />
        </div>
      </header>
      <main className="content">
        {!settings ? (
          <div className="empty">Connecting to the starkv host…</div>
        ) : tab === 'run' ? (
          <RunView />
        ) : tab === 'kv' ? (
          <KvInspector />
        ) : tab === 'memory' ? (
          <MemoryView />
        ) : tab === 'episodes' ? (
          <EpisodesView />
        ) : (
          <SettingsView />
        )}
      </main>
      {live && (live.confirm || live.ask) && <ConfirmDialog session={live} />}
      <div className="notices">
        {notices.map((n) => (
          <div key={n.id} className={`notice notice-${n.kind}`} role="alert" onClick={() => dismiss(n.id)}>
            {n.text}
          </div>
        ))}
      </div>
    </div>
  );
}
