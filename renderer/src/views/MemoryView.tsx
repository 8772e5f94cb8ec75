// Memory: the engine's bytes by category (current and peak) on its device, beside the driver's or the
// OS's own figure, and the bytes the compressed KV cache holds against what an uncompressed cache would
// hold at this step (the allocator's KV figure counts capacity, so it is shown apart, as allocated).
import { LineChart } from '../components/Charts.tsx';
import type { SessionView } from '../session.ts';
import { useShown } from '../store.ts';

export const fmtBytes = (b: number) =>
  b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(0)} KiB` : `${b} B`;

const CATS = ['weights', 'kv', 'activations', 'workspace'] as const;

/**
 * Like-for-like KV figures of the latest step: bytes the compressed cache holds and bytes an uncompressed
 * cache would hold (both from the engine's turn report; episodes recorded before memory carried the held
 * bytes take them from that step's telemetry), plus the allocator's KV figure (capacity), or null.
 */
export function kvFigures(s: SessionView): { held: number; full: number; allocated: number | null } | null {
  const last = s.memory.at(-1);
  if (!last) return null;
  const tele = last.step !== null ? s.telemetry[last.step] : Object.values(s.telemetry).at(-1);
  const held = last.data.kvHeldBytes ?? tele?.kvBytes ?? null;
  const full = last.data.kvFullBytes ?? tele?.kvFullBytes ?? null;
  if (held === null || full === null || full <= 0) return null;
  return { held, full, allocated: last.data.engine?.kv.current ?? null };
}

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
  const kv = kvFigures(s);
  return (
    <div className="memory" data-testid="memory-view">
      <div className="memory-col">
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
                    <td>{c === 'kv' ? 'KV cache (allocated)' : c}</td>
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
      </div>
      <div className="memory-col">
        <div className="card">
          <div className="label">{last.system.label}</div>
          <div className="big">
            {fmtBytes(last.system.used)}
            {last.system.total !== null && <span className="muted small"> of {fmtBytes(last.system.total)}</span>}
          </div>
        </div>
        {kv && (
          <div className="card" data-testid="kv-vs-full">
            <div className="label">KV cache held against a full (uncompressed) cache at this step</div>
            <div className="big">
              {fmtBytes(kv.held)} <span className="muted small">of {fmtBytes(kv.full)} ({((100 * kv.held) / kv.full).toFixed(1)}%)</span>
            </div>
            <div className="bar-track">
              <div className="bar cur" style={{ width: `${Math.min(100, (100 * kv.held) / kv.full)}%` }} />
            </div>
            {kv.allocated !== null && kv.allocated !== kv.held && (
              <div className="muted small" data-testid="kv-allocated">
                allocated capacity for KV: {fmtBytes(kv.allocated)}
              </div>
            )}
          </div>
        )}
        <LineChart
          title={`${last.system.label} over steps (MiB)`}
          xs={s.memory.map((m, i) => m.step ?? i)}
          xLabel="step"
          series={[{ name: 'used', color: '#4f8cff', values: s.memory.map((m) => m.data.system.used / 2 ** 20) }]}
          height={100}
        />
      </div>
    </div>
  );
}
