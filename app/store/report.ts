// Offline HTML report of an episode folder: every step's screenshot with the executed (or planned) actions
// drawn where they landed, the model's reply, timings, warnings and the outcome. No network: inline CSS,
// screenshots referenced by relative path, markers positioned in percent of the capture.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { readEpisode, type EpisodeRecord } from './trajectory.ts';

interface Geometry {
  origin: { x: number; y: number };
  injectorScale: number;
  capture: { width: number; height: number };
}

interface P {
  x: number;
  y: number;
}

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function marker(p: P, g: Geometry, label: string, cls: string): string {
  const x = ((p.x - g.origin.x) * g.injectorScale * 100) / g.capture.width;
  const y = ((p.y - g.origin.y) * g.injectorScale * 100) / g.capture.height;
  return `<div class="m ${cls}" style="left:${x.toFixed(3)}%;top:${y.toFixed(3)}%"><span>${esc(label)}</span></div>`;
}

function actionText(a: Record<string, unknown>): string {
  const pt = (p: unknown) => (p ? `(${(p as P).x},${(p as P).y})` : '');
  switch (a.type) {
    case 'drag':
      return `drag ${pt(a.from)} → ${pt(a.to)}`;
    case 'scroll':
      return `scroll ${String(a.direction)} ${pt(a.point)}`;
    case 'hotkey':
      return `hotkey ${String(a.keys)}`;
    case 'type':
      return `type ${JSON.stringify(a.text)}`;
    case 'finished':
    case 'call_user':
      return `${String(a.type)} ${JSON.stringify(a.content ?? '')}`;
    default:
      return `${String(a.type)} ${pt(a.point)}`;
  }
}

export function renderReport(dir: string): string {
  const { records, tornTail } = readEpisode(dir);
  const ep = records.find((r) => r.kind === 'episode') ?? ({} as EpisodeRecord);
  const end = records.find((r) => r.kind === 'end');
  const steps = [...new Set(records.filter((r) => typeof r.step === 'number').map((r) => r.step as number))].sort((a, b) => a - b);
  const body = steps.map((step) => {
    const of = (k: string) => records.filter((r) => r.kind === k && r.step === step);
    const obs = of('observation')[0];
    const g = obs?.geometry as Geometry | undefined;
    const acts = (of('actions')[0]?.actions as Array<{ screen: Record<string, unknown> }> | undefined) ?? [];
    const executed = new Set(of('executed').map((r) => r.index as number));
    const markers = g
      ? acts.flatMap((a, i) => {
          const s = a.screen;
          const cls = executed.has(i) ? 'done' : ep.dryRun ? 'plan' : 'skip';
          const label = `${i + 1}. ${actionText(s)}`;
          if (s.type === 'drag') return [marker(s.from as P, g, label, cls), marker(s.to as P, g, '→', cls)];
          return s.point ? [marker(s.point as P, g, label, cls)] : [];
        })
      : [];
    const replies = of('reply').map((r) => `<pre class="reply${r.cancelled ? ' cancelled' : ''}">${esc(r.text)}</pre>`).join('');
    const notes = [...of('warning'), ...of('parse_error'), ...of('confirm'), ...of('call_user'), ...of('user')]
      .map((r) => `<li>${esc(r.kind)}: ${esc(r.message ?? r.question ?? r.answer ?? (r.approved === undefined ? '' : r.approved ? 'approved' : 'declined'))}</li>`)
      .join('');
    const t = obs?.timings as Record<string, number> | undefined;
    return `<section><h2>Step ${step}</h2>
<div class="shot">${obs?.file ? `<img src="${esc(obs.file)}" alt="step ${step}">` : '<p>(no screenshot)</p>'}${markers.join('')}</div>
<div class="side">${replies}<ol>${acts.map((a, i) => `<li class="${executed.has(i) ? 'done' : ''}">${esc(actionText(a.screen))}</li>`).join('')}</ol>
${notes ? `<ul class="notes">${notes}</ul>` : ''}${t ? `<p class="t">capture ${Math.round((t.grabMs ?? 0) + (t.convertMs ?? 0))} ms · encode ${Math.round(t.encodeMs ?? 0)} ms</p>` : ''}</div></section>`;
  });
  const outcome = end ? `${esc(end.status)}${end.answer ? `: ${esc(end.answer)}` : ''}${end.error ? ` — ${esc(end.error)}` : ''}` : 'not finished (the process ended before the episode did)';
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(ep.task ?? 'episode')}</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;background:#fafafa;color:#222}
section{display:flex;gap:16px;margin:24px 0;border-top:1px solid #ddd;padding-top:12px;flex-wrap:wrap}
h2{width:100%;margin:0;font-size:16px}.shot{position:relative;flex:0 1 960px;max-width:960px}.shot img{width:100%;display:block;border:1px solid #ccc}
.side{flex:1 1 320px}pre{white-space:pre-wrap;background:#fff;border:1px solid #ddd;padding:8px}pre.cancelled{opacity:.6}
.m{position:absolute;width:18px;height:18px;margin:-11px 0 0 -11px;border:3px solid #ff2d55;border-radius:50%}
.m.plan{border-color:#ff9500}.m.skip{border-color:#999}.m span{position:absolute;left:22px;top:-4px;white-space:nowrap;background:#000c;color:#fff;padding:1px 4px;font-size:12px}
li.done{color:#0a7}.notes{color:#b60}.t{color:#777}
</style></head><body><h1>${esc(ep.task ?? '')}</h1>
<p>${ep.dryRun ? '<b>dry run</b> · ' : ''}model ${esc(ep.backend)} at ${esc(ep.destination)} · outcome: <b>${outcome}</b>${tornTail ? ' · the last record was cut off' : ''}</p>
${body.join('\n')}</body></html>`;
}

/** Writes report.html into the episode folder and returns its path. */
export function writeReport(dir: string): string {
  const file = path.join(dir, 'report.html');
  writeFileSync(file, renderReport(dir));
  return file;
}
