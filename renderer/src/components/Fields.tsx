// Form fields for the settings panel. Each commits on its own (text and numbers on blur or Enter, the
// rest at once) and re-reads its value when the host's settings change (key = value).
import { useEffect, useRef, useState, type ReactNode } from 'react';

export function Row({ label, hint, children }: { label: string; hint?: ReactNode; children: ReactNode }) {
  return (
    <div className="field">
      <div className="field-label">
        {label}
        {hint && <div className="field-hint">{hint}</div>}
      </div>
      <div className="field-input">{children}</div>
    </div>
  );
}

export function NumberInput({ value, min, max, step, onCommit, testId }: { value: number; min?: number; max?: number; step?: number; onCommit: (v: number) => void; testId?: string }) {
  const [err, setErr] = useState<string | null>(null);
  const commit = (raw: string) => {
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) return setErr('a number, please');
    if ((min !== undefined && v < min) || (max !== undefined && v > max)) return setErr(`between ${min} and ${max}`);
    if (step === 1 && !Number.isInteger(v)) return setErr('a whole number');
    setErr(null);
    if (v !== value) onCommit(v);
  };
  return (
    <span className="numwrap">
      <input
        key={value}
        type="number"
        defaultValue={value}
        min={min}
        max={max}
        step={step ?? 'any'}
        data-testid={testId}
        className={err ? 'invalid' : ''}
        onBlur={(e) => commit(e.target.value)}
        onKeyDown={(e) => e.key === 'Enter' && commit((e.target as HTMLInputElement).value)}
      />
      {err && <span className="field-error">{err}</span>}
    </span>
  );
}

export function TextInput({ value, onCommit, placeholder, type, testId, wide }: { value: string; onCommit: (v: string) => void; placeholder?: string; type?: string; testId?: string; wide?: boolean }) {
  const commit = (v: string) => v !== value && onCommit(v);
  return (
    <input
      key={value}
      type={type ?? 'text'}
      className={wide ? 'wide' : ''}
      defaultValue={value}
      placeholder={placeholder}
      data-testid={testId}
      spellCheck={false}
      onBlur={(e) => commit(e.target.value)}
      onKeyDown={(e) => e.key === 'Enter' && commit((e.target as HTMLInputElement).value)}
    />
  );
}

export function Toggle({ value, onChange, label, testId }: { value: boolean; onChange: (v: boolean) => void; label?: string; testId?: string }) {
  return (
    <label className="toggle">
      <input type="checkbox" checked={value} onChange={(e) => onChange(e.target.checked)} data-testid={testId} />
      <span className="switch" />
      {label && <span>{label}</span>}
    </label>
  );
}

export function Select<T extends string>({ value, options, onChange, testId }: { value: T; options: Array<[T, string]>; onChange: (v: T) => void; testId?: string }) {
  return (
    <select value={value} onChange={(e) => onChange(e.target.value as T)} data-testid={testId}>
      {options.map(([v, l]) => (
        <option key={v} value={v}>
          {l}
        </option>
      ))}
    </select>
  );
}

/** A slider that shows its value live and commits once it rests (the host's echo never fights the hand). */
export function Slider({ value, min, max, step, onCommit, format, testId }: { value: number; min: number; max: number; step: number; onCommit: (v: number) => void; format: (v: number) => string; testId?: string }) {
  const [v, setV] = useState(value);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    if (!pending.current) setV(value);
  }, [value]);
  useEffect(() => () => void (pending.current && clearTimeout(pending.current)), []);
  const change = (next: number) => {
    setV(next);
    if (pending.current) clearTimeout(pending.current);
    pending.current = setTimeout(() => {
      pending.current = null;
      if (next !== value) onCommit(next);
    }, 300);
  };
  return (
    <span className="slider">
      <input type="range" min={min} max={max} step={step} value={v} data-testid={testId} onChange={(e) => change(Number(e.target.value))} />
      <b>{format(v)}</b>
    </span>
  );
}

export function LinesInput({ value, onCommit, rows, testId }: { value: string[]; onCommit: (v: string[]) => void; rows?: number; testId?: string }) {
  const text = value.join('\n');
  return (
    <textarea
      key={text}
      className="wide mono"
      rows={rows ?? 4}
      defaultValue={text}
      data-testid={testId}
      spellCheck={false}
      onBlur={(e) => {
        const next = e.target.value.split('\n').map((l) => l.trim()).filter(Boolean);
        if (next.join('\n') !== text) onCommit(next);
      }}
    />
  );
}
