// The task box and the controls of the live session: start, pause/resume, stop.
import { useState } from 'react';
import { useApp } from '../store.ts';

export function TaskBar() {
  const live = useApp((s) => s.live);
  const settings = useApp((s) => s.settings)!;
  const send = useApp((s) => s.send);
  const [task, setTask] = useState('');
  const starting = useApp((s) => s.starting);
  const active = !!live && live.status !== 'ended';
  // Stop works from the moment Start is pressed: a model load can take minutes.
  const stoppable = active || starting;
  const model = settings.model.source === 'endpoint' ? `${settings.model.endpoint.model} at ${settings.model.endpoint.baseURL}` : `checkpoint ${settings.model.checkpointDir || '(none chosen)'}`;
  const start = () => {
    if (!task.trim() || starting) return;
    useApp.setState({ starting: true });
    send({ type: 'task.start', task: task.trim(), ref: 'start' });
  };
  return (
    <div className="taskbar">
      <textarea
        className="task-input"
        data-testid="task-input"
        placeholder="What should the agent do? e.g. “Open the settings and turn on dark mode”"
        value={active ? live!.task : task}
        rows={active ? 1 : 2}
        onChange={(e) => setTask(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) start();
        }}
        disabled={active}
      />
      <div className="controls">
        {!active ? (
          <button className="btn primary" data-testid="start" disabled={!task.trim() || starting} onClick={start} title="Ctrl+Enter">
            {starting ? 'Starting…' : '▶ Start'}
          </button>
        ) : live!.status === 'paused' ? (
          <button className="btn" data-testid="resume" onClick={() => send({ type: 'task.resume' })}>
            ▶ Resume
          </button>
        ) : (
          <button className="btn" data-testid="pause" disabled={live!.status === 'starting'} onClick={() => send({ type: 'task.pause' })}>
            ❚❚ Pause
          </button>
        )}
        <button className="btn danger" data-testid="stop" disabled={!stoppable} onClick={() => send({ type: 'task.stop' })}>
          ■ Stop
        </button>
      </div>
      <div className="taskbar-meta">
        {settings.safety.dryRun && <span className="badge warn" title="The agent plans actions and draws them, but sends no input">DRY RUN</span>}
        <span className="muted small" title={model}>{model}</span>
      </div>
    </div>
  );
}
