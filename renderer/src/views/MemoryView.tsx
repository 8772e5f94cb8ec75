// Memory: the engine's bytes by category (current and peak) on its device, beside the driver's or the
// OS's own figure, and KV bytes against what a full cache would hold at this step.
import { LineChart } from '../components/Charts.tsx';
import { useShown } from '../store.ts';

export const fmtBytes = (b: number) =>
  b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(0)} KiB` : `${b} B`;

const CATS = ['weights', 'kv', 'activations', 'workspace'] as const;

export function MemoryView() {
  const s = useShown();
  const last = s?.memory.at(-1)?.data ?? null;
  if (!s || !last) {
    return (
      <div className="empty" data-testid="no-memory">
        <h2>No memory figures yet</h2>
        <p>They arrive with each step of a running task.</p>
      </div>
    );
  }
  const e = last.engine;
  const max = e ? Math.max(1, ...CATS.map((c) => e[c].peak)) : 1;
  const kvTele = Object.values(s.telemetry).at(-1);
  const kvFull = last.kvFullBytes ?? kvTele?.kvFullBytes ?? null;
  const kvNow = e?.kv.current ?? kvTele?.kvBytes ?? null;
  return (
    <div className="memory" data-testid="memory-view">
      <div className="card">
        <div className="label">{e ? `Engine memory on ${last.device ?? 'its device'}` : 'Engine memory'}</div>
        {e ? (
          <table className="memtable">
            <thead>
              <tr>
                <th />
                <th>current</th>
                <th>peak</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {CATS.map((c) => (
                <tr key={c}>
                  <td>{c === 'kv' ? 'KV cache' : c}</td>
                  <td>{fmtBytes(e[c].current)}</td>
                  <td>{fmtBytes(e[c].peak)}</td>
                  <td className="barcell">
                    <div className="bar peak" style={{ width: `${(100 * e[c].peak) / max}%` }} />
                    <div className="bar cur" style={{ width: `${(100 * e[c].current) / max}%` }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">
            No engine is loaded in this process: the model runs at <b>{s.destination || 'a remote endpoint'}</b>, which does not report its memory.
          </p>
        )}
      </div>
      <div className="card">
        <div className="label">{last.system.label}</div>
        <div className="big">
          {fmtBytes(last.system.used)}
          {last.system.total !== null && <span className="muted small"> of {fmtBytes(last.system.total)}</span>}
        </div>
      </div>
      {kvNow !== null && kvFull !== null && kvFull > 0 && (
        <div className="card">
          <div className="label">KV cache against a full cache at this step</div>
          <div className="big">
            {fmtBytes(kvNow)} <span className="muted small">of {fmtBytes(kvFull)} ({((100 * kvNow) / kvFull).toFixed(1)}%)</span>
          </div>
          <div className="bar-track">
            <div className="bar cur" style={{ width: `${Math.min(100, (100 * kvNow) / kvFull)}%` }} />
          </div>
        </div>
      )}
      <LineChart
        title={`${last.system.label} over steps (MiB)`}
        xs={s.memory.map((m, i) => m.step ?? i)}
        xLabel="step"
        series={[{ name: 'used', color: '#4f8cff', values: s.memory.map((m) => m.data.system.used / 2 ** 20) }]}
      />
    </div>
  );
}
