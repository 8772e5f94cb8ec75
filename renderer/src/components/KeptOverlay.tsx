// Which 28x28-pixel cells of a screenshot one layer kept: a canvas of rows x cols cells stretched over
// the image (kept cells clear, evicted ones dimmed).
import { useEffect, useRef } from 'react';
import { decodeBits } from '../../../app/protocol.ts';

export function KeptOverlay({ bits, rows, cols }: { bits: string; rows: number; cols: number }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    c.width = cols;
    c.height = rows;
    const ctx = c.getContext('2d');
    if (!ctx) return;
    const kept = decodeBits(bits, rows * cols);
    const img = ctx.createImageData(cols, rows);
    for (let i = 0; i < rows * cols; i++) {
      const o = i * 4;
      if (kept[i]) {
        img.data[o] = 79, img.data[o + 1] = 140, img.data[o + 2] = 255, img.data[o + 3] = 40;
      } else {
        img.data[o] = 8, img.data[o + 1] = 10, img.data[o + 2] = 16, img.data[o + 3] = 190;
      }
    }
    ctx.putImageData(img, 0, 0);
  }, [bits, rows, cols]);
  return <canvas ref={ref} className="kept-overlay" data-testid="kept-overlay" />;
}

export function BitStrip({ bits, n, label }: { bits: string; n: number; label: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const kept = decodeBits(bits, n);
  let count = 0;
  for (const b of kept) count += b;
  const per = 96;
  const rows = Math.max(1, Math.ceil(n / per));
  useEffect(() => {
    const c = ref.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    c.width = per * 6;
    c.height = rows * 8;
    ctx.clearRect(0, 0, c.width, c.height);
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = kept[i] ? '#4f8cff' : '#2a3040';
      ctx.fillRect((i % per) * 6, Math.floor(i / per) * 8, 5, 6);
    }
  }, [bits, n]);
  return (
    <div className="bitstrip-wrap" data-testid="text-strip">
      <div className="label">
        {label}: {count} of {n} kept
      </div>
      <canvas ref={ref} className="bitstrip" style={{ aspectRatio: `${per * 6} / ${rows * 8}` }} />
    </div>
  );
}
