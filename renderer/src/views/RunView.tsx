// The run view: task box and controls, the current step's screenshot with its actions, the model's
// thought as it streams, the step timeline, and the outcome. Also shows a replayed episode.
import { useEffect, useState } from 'react';
import { ScreenView } from '../components/ScreenView.tsx';
import { TaskBar } from '../components/TaskBar.tsx';
import { Timeline } from '../components/Timeline.tsx';
import { describe, type SessionView, type StepView } from '../session.ts';
import { useApp, useShown } from '../store.ts';

export function currentStep(s: SessionView | null, selected: number | null): StepView | null {
  if (!s || !s.steps.length) return null;
  if (selected !== null) return s.steps.find((v) => v.step === selected) ?? s.steps.at(-1)!;
  return s.steps.at(-1)!;
}

const STATUS_TEXT: Record<string, string> = {
  finished: 'Finished',
  stopped: 'Stopped',
  max_steps: 'Reached the step limit',
  call_user: 'Ended: the agent needed help',
  parse_error: 'Stopped: the model’s reply could not be read',
  repeat: 'Stopped: the same action kept repeating',
  declined: 'Stopped: a risky action was declined',
  error: 'Stopped by an error',
  interrupted: 'Interrupted',
};

function Outcome({ s }: { s: SessionView }) {
  const r = s.result;
  if (!r) return null;
  const ok = r.status === 'finished';
  return (
    <div className={`card outcome ${ok ? 'ok' : 'bad'}`} data-testid="outcome">
      <div className="outcome-title">{STATUS_TEXT[r.status] ?? r.status} · {r.steps} step{r.steps === 1 ? '' : 's'}</div>
      {r.answer && <div className="answer" data-testid="answer">{r.answer}</div>}
      {r.error && <div className="muted">{r.error}</div>}
      {r.raw?.trim() && <pre className="raw">{r.raw.trim()}</pre>}
    </div>
  );
}

function StepDetail({ s, v }: { s: SessionView; v: StepView }) {
  const running = !v.finished && s.status !== 'ended';
  const warnings = s.warnings.filter((w) => w.step === v.step);
  return (
    <div className="detail">
      <div className="section-title">
        Step {v.step}
        {v.replyMs !== null && <span className="muted small"> · model {(v.replyMs / 1000).toFixed(1)} s</span>}
      </div>
      <div className="card thought" data-testid="thought">
        <div className="label">Thought</div>
        {v.thought ? <p>{v.thought}{running && <span className="caret" />}</p> : <p className="muted">{running ? 'The model is thinking…' : 'No thought.'}</p>}
      </div>
      {v.actions.length > 0 && (
        <div className="card">
          <div className="label">Actions</div>
          <ol className="actions">
            {v.actions.map((a) => (
              <li key={a.index}>
                <span className={`phase phase-${a.phase}`}>{a.phase === 'skipped' ? 'dry run' : a.phase}</span> {describe(a.action)}
              </li>
            ))}
          </ol>
        </div>
      )}
      {v.parseErrors.map((m, i) => (
        <div key={i} className="card warn-card">Reply not understood: {m}</div>
      ))}
      {warnings.map((w, i) => (
        <div key={i} className="card warn-card">{w.message}</div>
      ))}
    </div>
  );
}

function ReplayBar({ s }: { s: SessionView }) {
  const close = useApp((x) => x.closeReplay);
  const select = useApp((x) => x.selectStep);
  const selected = useApp((x) => x.selectedStep);
  const [playing, setPlaying] = useState(false);
  useEffect(() => {
    if (!playing) return;
    const t = setInterval(() => {
      const i = s.steps.findIndex((v) => v.step === selected);
      if (i < 0 || i >= s.steps.length - 1) return setPlaying(false);
      select(s.steps[i + 1]!.step);
    }, 1200);
    return () => clearInterval(t);
  }, [playing, selected, s, select]);
  return (
    <div className="replaybar" data-testid="replaybar">
      <span className="badge">REPLAY</span>
      <span className="replay-task">{s.task}</span>
      {s.dryRun && <span className="badge warn">dry run</span>}
      <button className="btn small" onClick={() => (selected === s.steps.at(-1)?.step && select(s.steps[0]?.step ?? null), setPlaying(!playing))}>
        {playing ? '❚❚ Pause' : '▶ Play'}
      </button>
      <button className="btn small" onClick={close}>
        Back to live
      </button>
    </div>
  );
}

export function RunView() {
  const s = useShown();
  const selected = useApp((x) => x.selectedStep);
  const v = currentStep(s, selected);
  return (
    <div className="run">
      {s?.source === 'replay' ? <ReplayBar s={s} /> : <TaskBar />}
      {!s ? (
        <div className="empty hero">
          <h1>Tell the agent what to do</h1>
          <p>
            It looks at your screen, asks the model for the next action, and acts. Every action is drawn on the screenshot where the
            input goes; risky ones wait for you. Stop it any time with <b>Stop</b> or by moving the mouse into a screen corner.
          </p>
        </div>
      ) : (
        <>
          <div className="run-head">
            <div className="muted small">
              {s.backend && `${s.backend} · ${s.destination}`}
              {s.display && ` · screen ${s.display.width}×${s.display.height}${s.display.scale !== 1 ? ` @${s.display.scale}x` : ''}`}
              {s.dryRun && ' · dry run (no input is sent)'}
            </div>
          </div>
          <div className="run-main">
            <div className="run-screen">{v ? <ScreenView step={v} /> : <div className="screen empty" data-testid="starting">{s.status === 'starting' ? 'Starting… loading the model and opening the display (Stop works now)' : s.status === 'ended' ? 'No step was taken.' : 'Starting… capturing the first screenshot'}</div>}</div>
            <div className="run-side">
              <Outcome s={s} />
              {v && <StepDetail s={s} v={v} />}
              {s.warnings.filter((w) => w.step === null).slice(-3).map((w, i) => (
                <div key={i} className="card warn-card">{w.message}</div>
              ))}
            </div>
          </div>
          <Timeline session={s} current={v?.step ?? null} />
        </>
      )}
    </div>
  );
}
