// Past episodes from the trajectory folder: list, open one to replay it in the same views.
import { useEffect } from 'react';
import { useApp } from '../store.ts';

export function EpisodesView() {
  const episodes = useApp((s) => s.episodes);
  const send = useApp((s) => s.send);
  const conn = useApp((s) => s.conn);
  useEffect(() => {
    if (conn === 'open') send({ type: 'episodes.list' });
  }, [conn, send]);
  return (
    <div className="episodes" data-testid="episodes-view">
      <div className="row between">
        <div className="muted small">{episodes ? `Stored in ${episodes.root}` : 'Loading…'}</div>
        <button className="btn small" onClick={() => send({ type: 'episodes.list' })}>
          Refresh
        </button>
      </div>
      {episodes && !episodes.items.length && (
        <div className="empty">
          <h2>No episodes yet</h2>
          <p>Tasks are recorded here while “Save episodes” is on in Settings.</p>
        </div>
      )}
      {episodes && episodes.items.length > 0 && (
        <table className="eptable">
          <thead>
            <tr>
              <th>Started</th>
              <th>Task</th>
              <th>Steps</th>
              <th>Outcome</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {episodes.items.map((e) => (
              <tr key={e.id} data-testid="episode-row">
                <td className="nowrap">{new Date(e.started).toLocaleString()}</td>
                <td>
                  {e.task} {e.dryRun && <span className="badge warn">dry run</span>}
                </td>
                <td>{e.steps}</td>
                <td>
                  <span className={`status status-${e.status ?? 'none'}`}>{e.status ?? 'interrupted'}</span>
                </td>
                <td className="nowrap">
                  <button className="btn small" onClick={() => send({ type: 'episode.open', id: e.id })} data-testid="episode-open">
                    Open
                  </button>{' '}
                  <button className="btn small" onClick={() => send({ type: 'episode.report', id: e.id })} title="Offline HTML report with every step">
                    Report
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
