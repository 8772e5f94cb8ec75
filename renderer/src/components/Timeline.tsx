// The step timeline: one thumbnail per step with its first action; click to look at that step.
import { describe, type SessionView } from '../session.ts';
import { useApp } from '../store.ts';

export function Timeline({ session, current }: { session: SessionView; current: number | null }) {
  const select = useApp((s) => s.selectStep);
  const following = useApp((s) => s.selectedStep === null);
  if (!session.steps.length) return null;
  return (
    <div className="timeline" data-testid="timeline">
      {session.steps.map((v) => {
        const a = v.actions[0];
        return (
          <button key={v.step} className={`thumb ${v.step === current ? 'selected' : ''} ${v.finished ? '' : 'running'}`} onClick={() => select(v.step)} data-testid="timeline-step" title={v.thought}>
            {v.screenshot ? <img src={v.screenshot.url} alt="" loading="lazy" /> : <div className="thumb-empty" />}
            <span className="thumb-label">
              <b>{v.step}</b> {a ? describe(a.action) : v.finished ? '—' : '…'}
            </span>
          </button>
        );
      })}
      {session.source === 'live' && !following && (
        <button className="btn small follow" onClick={() => select(null)}>
          Follow latest ⟶
        </button>
      )}
    </div>
  );
}
