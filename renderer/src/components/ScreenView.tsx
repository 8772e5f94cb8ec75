// A step's screenshot with its actions drawn where the input went: screen points mapped to screenshot
// pixels by the same formula the agent uses (session.ts toPixel), in an SVG whose viewBox is the capture.
import type { Geometry } from '../../../app/protocol.ts';
import { describe, toPixel, type StepAction, type StepView } from '../session.ts';

const COLOR = { planned: '#4f8cff', executed: '#2ecc71', skipped: '#ff9f43' } as const;

function Marker({ a, g, n }: { a: StepAction; g: Geometry; n: number }) {
  const W = g.capture.width;
  const r = Math.max(16, Math.round(W / 45));
  const c = COLOR[a.phase];
  const dash = a.phase === 'executed' ? undefined : `${r / 2} ${r / 3}`;
  const sw = Math.max(3, W / 320);
  const label = (x: number, y: number) => (
    <text x={Math.min(x + r + 6, W - 10)} y={Math.max(y - r, 20)} className="marker-label" fontSize={Math.max(16, W / 64)} fill="#fff" stroke="#000" strokeWidth={3} paintOrder="stroke" textAnchor={x + r + 6 > W * 0.8 ? 'end' : 'start'}>
      {n}. {describe(a.action)}
    </text>
  );
  const act = a.action;
  if ('point' in act && act.point) {
    const p = toPixel(act.point, g);
    return (
      <g data-testid={`marker-${a.phase}`} data-x={p.x} data-y={p.y}>
        <circle cx={p.x} cy={p.y} r={r} fill={a.phase === 'executed' ? `${c}33` : 'none'} stroke={c} strokeWidth={sw} strokeDasharray={dash} />
        <line x1={p.x - r * 1.6} y1={p.y} x2={p.x + r * 1.6} y2={p.y} stroke={c} strokeWidth={sw / 1.5} />
        <line x1={p.x} y1={p.y - r * 1.6} x2={p.x} y2={p.y + r * 1.6} stroke={c} strokeWidth={sw / 1.5} />
        {act.type === 'scroll' && (
          <path d={scrollArrow(p, act.direction, r * 3)} stroke={c} strokeWidth={sw} fill="none" markerEnd={`url(#arrow-${a.phase})`} />
        )}
        {label(p.x, p.y)}
      </g>
    );
  }
  if (act.type === 'drag') {
    const p = toPixel(act.from, g);
    const q = toPixel(act.to, g);
    return (
      <g data-testid={`marker-${a.phase}`} data-x={p.x} data-y={p.y}>
        <circle cx={p.x} cy={p.y} r={r / 2} fill={c} />
        <line x1={p.x} y1={p.y} x2={q.x} y2={q.y} stroke={c} strokeWidth={sw * 1.5} strokeDasharray={dash} markerEnd={`url(#arrow-${a.phase})`} />
        {label(p.x, p.y)}
      </g>
    );
  }
  return null;
}

function scrollArrow(p: { x: number; y: number }, dir: string, len: number): string {
  const d = { up: [0, -1], down: [0, 1], left: [-1, 0], right: [1, 0] }[dir] ?? [0, 1];
  return `M${p.x},${p.y} L${p.x + d[0]! * len},${p.y + d[1]! * len}`;
}

export function ScreenView({ step, children }: { step: StepView; children?: React.ReactNode }) {
  const g = step.geometry;
  const shot = step.screenshot;
  if (!shot || !g) return <div className="screen empty">Waiting for the screenshot…</div>;
  const W = g.capture.width;
  const H = g.capture.height;
  const textual = step.actions.filter((a) => !(('point' in a.action && a.action.point) || a.action.type === 'drag'));
  return (
    <div className="screen" data-testid="screen">
      <div className="screen-frame" style={{ aspectRatio: `${W} / ${H}`, '--ar': W / H } as React.CSSProperties}>
        <img src={shot.url} alt={`screenshot of step ${step.step}`} draggable={false} />
        {children}
        <svg className="overlay" viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none">
          <defs>
            {(Object.keys(COLOR) as Array<keyof typeof COLOR>).map((k) => (
              <marker key={k} id={`arrow-${k}`} markerWidth="8" markerHeight="8" refX="6" refY="4" orient="auto">
                <path d="M0,0 L8,4 L0,8 z" fill={COLOR[k]} />
              </marker>
            ))}
          </defs>
          {step.actions.map((a) => (
            <Marker key={a.index} a={a} g={g} n={a.index + 1} />
          ))}
        </svg>
        {textual.length > 0 && (
          <div className="screen-chips">
            {textual.map((a) => (
              <span key={a.index} className={`chip chip-${a.phase}`}>
                {a.index + 1}. {describe(a.action)}
              </span>
            ))}
          </div>
        )}
      </div>
    </div>
  );
}
