// The agent waits on the user: a risky action to allow or decline, or a question (call_user) to answer.
import { useState } from 'react';
import type { SessionView } from '../session.ts';
import { describe } from '../session.ts';
import { useApp } from '../store.ts';

export function ConfirmDialog({ session }: { session: SessionView }) {
  const send = useApp((s) => s.send);
  const [answer, setAnswer] = useState('');
  const c = session.confirm;
  const q = session.ask;
  return (
    <div className="modal-backdrop">
      <div className="modal" role="dialog" aria-modal="true" data-testid="confirm-dialog">
        {c ? (
          <>
            <h2>Allow this action?</h2>
            <p className="big-action">{describe(c.action)}</p>
            <ul className="reasons">
              {c.reasons.map((r, i) => (
                <li key={i}>{r}</li>
              ))}
            </ul>
            {c.thought && <p className="muted quote">“{c.thought}”</p>}
            <div className="row end">
              <button className="btn" onClick={() => send({ type: 'confirm.reply', requestId: c.requestId, approve: false })} autoFocus>
                Decline and stop
              </button>
              <button className="btn danger" onClick={() => send({ type: 'confirm.reply', requestId: c.requestId, approve: true })}>
                Allow once
              </button>
            </div>
          </>
        ) : q ? (
          <>
            <h2>The agent asks for your help</h2>
            <p>{q.question}</p>
            <textarea value={answer} onChange={(e) => setAnswer(e.target.value)} rows={3} placeholder="Your answer" autoFocus />
            <div className="row end">
              <button className="btn" onClick={() => send({ type: 'ask.reply', requestId: q.requestId, answer: null })}>
                End the task
              </button>
              <button className="btn primary" disabled={!answer.trim()} onClick={() => send({ type: 'ask.reply', requestId: q.requestId, answer })}>
                Answer and continue
              </button>
            </div>
          </>
        ) : null}
      </div>
    </div>
  );
}
