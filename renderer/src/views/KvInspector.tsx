// KV inspector: what the compressed cache keeps, from the engine's telemetry events only. Per step and
// layer, a heatmap over every screenshot in the context (28x28-pixel cells), the text tokens as a strip,
// kept fraction per frame for all layers, and STaR-KV's statistics over layers and over steps, one small
// chart per quantity (temperature, entropy, λ, stability, group weights, MI of the step and its EMA).
import { useEffect } from 'react';
import type { KvTelemetry } from '../../../app/protocol.ts';
import { color, LineChart, type Series } from '../components/Charts.tsx';
import { BitStrip, KeptOverlay } from '../components/KeptOverlay.tsx';
import type { SessionView } from '../session.ts';
import { useApp, useShown } from '../store.ts';

const pct = (x: number) => `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;

function NoTelemetry({ s }: { s: SessionView | null }) {
  return (
    <div className="empty" data-testid="no-telemetry">
      <h2>No KV telemetry yet</h2>
      {!s ? (
        <p>Run a task with the in-process engine as the model source: after every step it reports, per layer, which screenshot cells and text tokens the compressed cache kept.</p>
      ) : s.backend === 'native' ? (
        <p>
          This {s.source === 'replay' ? 'episode runs' : 'session runs'} on the in-process engine; its per-layer report arrives after the
          first step's prefill. Nothing is shown rather than a guess.
        </p>
      ) : (
        <p>
          This {s.source === 'replay' ? 'episode' : 'session'} uses <b>{s.backend || 'a model'}</b>
          {s.destination && <> at <b>{s.destination}</b></>}. Only the in-process engine reports what its cache keeps; a remote
          endpoint manages its own cache, so there is nothing true to show here.
        </p>
      )}
    </div>
  );
}

function StepPicker({ steps, step, onStep, bare }: { steps: number[]; step: number; onStep: (k: number) => void; bare?: boolean }) {
  const picker = (
    <label>
      Step
      <select value={step} onChange={(e) => onStep(Number(e.target.value))} data-testid="kv-step">
        {steps.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
    </label>
  );
  return bare ? picker : <div className="kv-controls card">{picker}</div>;
}

function FrameTable({ t, layer, onLayer }: { t: KvTelemetry; layer: number; onLayer: (l: number) => void }) {
  return (
    <div className="card">
      <div className="label">Kept fraction per frame (rows: layers; click to select)</div>
      <table className="frametable" data-testid="frame-table">
        <thead>
          <tr>
            <th>layer</th>
            {t.frames.map((f) => (
              <th key={f.frame}>step {f.step}</th>
            ))}
            <th>text</th>
            <th>total</th>
          </tr>
        </thead>
        <tbody>
          {t.layers.map((l) => (
            <tr key={l.layer} className={l.layer === layer ? 'sel' : ''} onClick={() => onLayer(l.layer)}>
              <td>{l.layer}</td>
              {t.frames.map((f, i) => {
                const fr = l.keptPerFrame[i]! / (f.rows * f.cols);
                return (
                  <td key={f.frame} style={{ background: `rgba(79,140,255,${0.12 + 0.8 * fr})` }} title={`${l.keptPerFrame[i]} of ${f.rows * f.cols} cells`}>
                    {pct(fr)}
                  </td>
                );
              })}
              <td style={{ background: `rgba(46,204,113,${0.12 + 0.8 * (t.textTokens ? l.keptText / t.textTokens : 0)})` }}>{t.textTokens ? pct(l.keptText / t.textTokens) : '—'}</td>
              <td>
                {l.kept}/{l.cap}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type Stats = NonNullable<KvTelemetry['layers'][number]['starkv']>;

/** One small chart per quantity (each its own y axis): scalars as one line, per-group arrays as a line per group. */
function starkvCharts(list: Array<Stats | null>): Array<{ key: string; title: string; series: Series[] }> {
  const get = (f: (x: Stats) => number | null) => list.map((x) => (x ? f(x) : null));
  const groups = (f: (x: Stats) => number[]) => {
    const n = Math.max(0, ...list.map((x) => (x ? f(x).length : 0)));
    return Array.from({ length: n }, (_, g) => ({ name: `g${g}`, color: color(g), values: get((x) => f(x)[g] ?? null) }));
  };
  return [
    { key: 'temperature', title: 'Temperature', series: [{ name: 'temperature', color: color(0), values: get((x) => x.temperature) }] },
    { key: 'entropy', title: 'Normalised entropy', series: [{ name: 'norm. entropy', color: color(1), values: get((x) => x.normalizedEntropy) }] },
    { key: 'lambda', title: 'λ eff', series: [{ name: 'λ eff', color: color(2), values: get((x) => x.lambdaEff) }] },
    { key: 'stability', title: 'Stability per group', series: groups((x) => x.stability) },
    { key: 'weights', title: 'Group weights', series: groups((x) => x.groupWeights) },
    { key: 'mi', title: 'MI per group (this step)', series: groups((x) => x.miCur) },
    { key: 'mi-ema', title: 'MI per group (EMA)', series: groups((x) => x.miEma) },
  ];
}

function ChartGrid({ title, testId, charts, xs, xLabel, highlight, onPick }: {
  title: string;
  testId: string;
  charts: ReturnType<typeof starkvCharts>;
  xs: number[];
  xLabel: string;
  highlight: number;
  onPick: (x: number) => void;
}) {
  return (
    <div className="card" data-testid={testId}>
      <div className="label">{title}</div>
      <div className="charts small">
        {charts.map((c) => (
          <LineChart key={c.key} compact testId={`${testId}-${c.key}`} title={c.title} series={c.series} xs={xs} xLabel={xLabel} highlight={highlight} onPick={onPick} />
        ))}
      </div>
    </div>
  );
}

export function KvInspector() {
  const s = useShown();
  const selected = useApp((x) => x.selectedStep);
  const selectStep = useApp((x) => x.selectStep);
  const layerSel = useApp((x) => x.layer);
  const setLayer = useApp((x) => x.setLayer);
  const fetchTelemetry = useApp((x) => x.fetchTelemetry);
  const fetchState = useApp((x) => x.telemetryFetch);
  // Every step with telemetry; a long episode's older steps are fetched from the host when looked at.
  const steps = s?.telemetrySteps ?? [];
  const step = selected !== null && steps.includes(selected) ? selected : steps.at(-1);
  const missing = !!s && step !== undefined && !s.telemetry[step];
  useEffect(() => {
    if (s && missing) fetchTelemetry(s.id, step!);
  }, [s?.id, step, missing, fetchTelemetry]);
  if (!s || step === undefined) return <NoTelemetry s={s} />;
  const t = s.telemetry[step];
  if (!t) {
    const why = fetchState[`${s.id}/${step}`];
    return (
      <div className="kv" data-testid="kv-inspector">
        <StepPicker steps={steps} step={step} onStep={selectStep} />
        <div className="card muted" data-testid="kv-fetching">
          {why && why !== 'pending' ? `The KV telemetry of step ${step} could not be fetched: ${why}` : `Fetching the KV telemetry of step ${step}…`}
        </div>
      </div>
    );
  }
  const layerIdx = Math.max(0, Math.min(t.layers.length - 1, t.layers.findIndex((l) => l.layer === layerSel)));
  const L = t.layers[layerIdx]!;
  const overLayers = starkvCharts(t.layers.map((l) => l.starkv));
  // Over steps: the steps this window holds (all of them, unless the episode is long).
  const heldSteps = steps.filter((k) => s.telemetry[k]);
  const overSteps = starkvCharts(heldSteps.map((k) => s.telemetry[k]!.layers.find((l) => l.layer === L.layer)?.starkv ?? null));
  const stepsNote = heldSteps.length < steps.length ? `, ${heldSteps.length} of ${steps.length} steps` : '';
  const hasStarkv = t.layers.some((l) => l.starkv);
  const shotOf = (frameStep: number) => s.steps.find((v) => v.step === frameStep)?.screenshot ?? null;
  return (
    <div className="kv" data-testid="kv-inspector">
      <div className="kv-controls card">
        <StepPicker steps={steps} step={step} onStep={selectStep} bare />
        <label className="grow">
          Layer {L.layer}
          <input type="range" min={0} max={t.layers.length - 1} value={layerIdx} onChange={(e) => setLayer(t.layers[Number(e.target.value)]!.layer)} data-testid="kv-layer" />
        </label>
        <div className="kv-facts muted small">
          {t.method} · budget {t.budgetPercent ?? '—'}%{t.capTokens !== null && ` · cap ${t.capTokens}`} · {t.logicalLength} tokens in context · layer keeps {L.kept}/{L.cap}
          {t.kvBytes !== null && t.kvFullBytes ? ` · KV ${(t.kvBytes / 2 ** 20).toFixed(1)} MiB of ${(t.kvFullBytes / 2 ** 20).toFixed(1)} MiB full` : ''}
        </div>
      </div>
      <div className="frames">
        {t.frames.map((f, i) => {
          const shot = shotOf(f.step);
          const kept = L.keptPerFrame[i]!;
          return (
            <figure key={f.frame} className="frame card">
              <figcaption>
                screenshot of step {f.step} · {f.rows}×{f.cols} cells · kept {kept} ({pct(kept / (f.rows * f.cols))})
              </figcaption>
              <div className="frame-img" style={{ aspectRatio: shot ? `${shot.width} / ${shot.height}` : `${f.cols} / ${f.rows}` }}>
                {shot ? <img src={shot.url} alt="" /> : <div className="frame-missing" />}
                <KeptOverlay bits={L.cells[i]!} rows={f.rows} cols={f.cols} />
              </div>
            </figure>
          );
        })}
      </div>
      <div className="card">
        <BitStrip bits={L.text} n={t.textTokens} label={`Text tokens, layer ${L.layer}`} />
      </div>
      <FrameTable t={t} layer={L.layer} onLayer={setLayer} />
      {hasStarkv ? (
        <>
          <ChartGrid title={`STaR-KV over layers, step ${step} (click to pick a layer)`} testId="over-layers" charts={overLayers} xs={t.layers.map((l) => l.layer)} xLabel="layer" highlight={L.layer} onPick={setLayer} />
          <ChartGrid title={`STaR-KV over steps, layer ${L.layer}${stepsNote} (click to pick a step)`} testId="over-steps" charts={overSteps} xs={heldSteps} xLabel="step" highlight={step} onPick={selectStep} />
        </>
      ) : (
        <div className="card muted small">{t.method} reports no STaR-KV statistics (temperature, entropy, MI, stability).</div>
      )}
    </div>
  );
}
