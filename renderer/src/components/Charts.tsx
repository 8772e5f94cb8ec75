// Small SVG charts for the inspector: lines over an index (layers or steps), with a highlighted x. Each
// chart has its own y axis: quantities of different ranges go in charts of their own (small multiples).
export interface Series {
  name: string;
  color: string;
  values: Array<number | null>;
}

const PALETTE = ['#4f8cff', '#2ecc71', '#ff9f43', '#e056fd', '#ff5c5c', '#00cec9', '#fdcb6e', '#a29bfe'];
export const color = (i: number) => PALETTE[i % PALETTE.length]!;

export function LineChart({ title, series, xLabel, xs, highlight, yMin, yMax, onPick, compact, height, testId }: {
  title: string;
  series: Series[];
  xLabel: string;
  xs: number[];
  highlight?: number;
  yMin?: number;
  yMax?: number;
  onPick?: (x: number) => void;
  /** A small multiple: shorter, for a grid of charts. */
  compact?: boolean;
  /** Height in the chart's own units (width 320, or 280 when compact): lower for a wide, flat chart. */
  height?: number;
  testId?: string;
}) {
  const W = compact ? 280 : 320, H = height ?? (compact ? 120 : 130), R = 8, T = 10, B = 22;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  if (!all.length || !xs.length) {
    return (
      <figure className={compact ? 'chart compact' : 'chart'} data-testid={testId}>
        <figcaption>{title}</figcaption>
        <div className="chart-empty muted small">not reported</div>
      </figure>
    );
  }
  // One x (the first step): a labelled bar per series from zero, not a lone dot on an axis of one value.
  const single = xs.length === 1;
  let lo = yMin ?? (single ? Math.min(0, ...all) : Math.min(...all));
  let hi = yMax ?? (single ? Math.max(0, ...all) * 1.18 : Math.max(...all));
  if (hi - lo < 1e-9) (lo -= 0.5), (hi += 0.5);
  // Enough decimals that the ticks of a narrow range differ (1.248 / 1.250 / 1.252, not 1.25 three times).
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(hi - lo)) + 1));
  const fmt = (v: number) => v.toFixed(decimals);
  const mid = (lo + hi) / 2;
  // Room on the left for the longest tick label (about 0.6 em per character).
  const L = Math.max(30, 8 + 6 * Math.max(fmt(hi).length, fmt(lo).length, fmt(mid).length));
  const x = (i: number) => L + (xs.length === 1 ? (W - L - R) / 2 : (i / (xs.length - 1)) * (W - L - R));
  const y = (v: number) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const hi_i = highlight === undefined ? -1 : xs.indexOf(highlight);
  return (
    <figure className={compact ? 'chart compact' : 'chart'} data-testid={testId}>
      <figcaption>
        {title}
        {series.length > 1 && (
          <span className="legend">
            {series.map((s) => (
              <span key={s.name}>
                <i style={{ background: s.color }} /> {s.name}
              </span>
            ))}
          </span>
        )}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" onClick={(e) => {
        if (!onPick) return;
        const r = (e.currentTarget as SVGSVGElement).getBoundingClientRect();
        const fx = ((e.clientX - r.left) / r.width) * W;
        const i = Math.round(((fx - L) / (W - L - R)) * (xs.length - 1));
        if (i >= 0 && i < xs.length) onPick(xs[i]!);
      }}>
        <line x1={L} y1={H - B} x2={W - R} y2={H - B} className="axis" />
        <line x1={L} y1={T} x2={L} y2={H - B} className="axis" />
        <text x={L - 4} y={T + 8} className="tick" textAnchor="end">{fmt(hi)}</text>
        <text x={L - 4} y={H - B} className="tick" textAnchor="end">{fmt(lo)}</text>
        <text x={L - 4} y={y(mid) + 3} className="tick" textAnchor="end">{fmt(mid)}</text>
        <line x1={L} y1={y(mid)} x2={W - R} y2={y(mid)} className="grid" />
        {xs.length > 1 ? (
          <>
            <text x={L} y={H - 6} className="tick">{xs[0]}</text>
            <text x={W - R} y={H - 6} className="tick" textAnchor="end">{xs.at(-1)}</text>
          </>
        ) : null}
        <text x={(W + L) / 2} y={H - 6} className="tick" textAnchor="middle">{xs.length > 1 ? xLabel : `${xLabel} ${xs[0]}`}</text>
        {hi_i >= 0 && <line x1={x(hi_i)} x2={x(hi_i)} y1={T} y2={H - B} className="hl" />}
        {single && series.map((s, k) => {
          const v = s.values[0];
          if (v === null || v === undefined || !Number.isFinite(v)) return null;
          const bw = Math.min(46, (W - L - R) / (series.length + 1) / 1.3);
          const cx = L + ((k + 1) * (W - L - R)) / (series.length + 1);
          const top = Math.min(y(v), y(Math.max(lo, 0)));
          return (
            <g key={s.name} data-testid="bar">
              <rect x={cx - bw / 2} y={top} width={bw} height={Math.max(1, Math.abs(y(Math.max(lo, 0)) - y(v)))} fill={s.color} opacity={0.85} />
              <text x={cx} y={top - 4} className="tick value" textAnchor="middle">{fmt(v)}</text>
            </g>
          );
        })}
        {!single && series.map((s) => {
          const pts = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : `${x(i)},${y(v)}`));
          const d = pts.reduce<string>((acc, p, i) => (p === null ? acc : acc + `${acc && pts[i - 1] !== null ? 'L' : 'M'}${p}`), '');
          return (
            <g key={s.name}>
              <path d={d} fill="none" stroke={s.color} strokeWidth={1.6} />
              {xs.length <= 40 && pts.map((p, i) => (p === null ? null : <circle key={i} cx={x(i)} cy={y(s.values[i]!)} r={2} fill={s.color} />))}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
