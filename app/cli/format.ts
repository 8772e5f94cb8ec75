// Small formatting helpers shared by the CLI commands.
import os from 'node:os';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}

/** Parses "1,2,3" into integers; throws naming the bad item. */
export function parseIdList(s: string, what: string): number[] {
  return s.split(',').map((x, i) => {
    const t = x.trim();
    if (!/^\d+$/.test(t)) throw new UsageError(`${what}: item ${i} ('${t}') is not a non-negative integer`);
    return Number(t);
  });
}

/** A bad command line: the dispatcher prints it with a pointer to --help and exits 2 (failures exit 1). */
export class UsageError extends Error {}

/** A numeric option: undefined when absent; a UsageError naming the option and its range otherwise.
 *  `above` is an exclusive lower bound (e.g. top-p in (0, 1]). */
export function parseNumberOpt(v: string | undefined, name: string, opts: { int?: boolean; min?: number; above?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = v.trim() === '' ? NaN : Number(v);
  const { int, min, above, max } = opts;
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || (min !== undefined && n < min) || (above !== undefined && n <= above) || (max !== undefined && n > max)) {
    const range = [min !== undefined ? `>= ${min}` : '', above !== undefined ? `> ${above}` : '', max !== undefined ? `<= ${max}` : ''].filter(Boolean).join(' and ');
    throw new UsageError(`--${name} '${v}' must be ${int ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}`);
  }
  return n;
}

/** `--threads N`: undefined when absent; above the threads this machine runs at once, that count with
 *  a note on stderr (more threads than cores only contend for them: asked for 999 on 2 cores, the
 *  tiny model's prefill took 23x as long and it decoded 1.2 tokens/s instead of thousands). */
export function parseThreadsOpt(v: string | undefined, hardware = os.availableParallelism()): number | undefined {
  const n = parseNumberOpt(v, 'threads', { int: true, min: 1 });
  if (n === undefined || n <= hardware) return n;
  process.stderr.write(`note: --threads ${n} is more than the ${hardware} hardware threads here; using ${hardware}\n`);
  return hardware;
}

/** A choice option: the value (or the default when absent), a UsageError listing the choices otherwise. */
export function parseChoiceOpt<T extends string>(v: string | undefined, name: string, choices: readonly T[], def: T): T {
  if (v === undefined) return def;
  if (!(choices as readonly string[]).includes(v)) throw new UsageError(`--${name} '${v}' must be one of ${choices.join(', ')}`);
  return v as T;
}

/** An op profile (Engine.opProfile) beside the wall time of the generate it covers. */
export interface OpProfileReport {
  /** vision + prefill + decode of the generate */
  wallMs: number;
  /** the ops' sum (on a GPU device time: wallMs - opsMs is where the device waited for the host) */
  opsMs: number;
  ops: Array<{ op: string; calls: number; ms: number }>;
}

export function opProfileReport(ops: OpProfileReport['ops'], t: { visionMs: number; prefillMs: number; decodeMs: number }): OpProfileReport {
  return { wallMs: t.visionMs + t.prefillMs + t.decodeMs, opsMs: ops.reduce((a, o) => a + o.ms, 0), ops };
}

/** The op profile as text: each op's time and share of the wall time, and what no op accounts for. */
export function profileText(p: OpProfileReport): string {
  const pct = (ms: number) => `${((100 * ms) / p.wallMs).toFixed(1)}%`;
  const rows = p.ops.map((o) => `           ${o.op.padEnd(30)} ${o.ms.toFixed(1).padStart(10)} ms ${pct(o.ms).padStart(6)}  ${o.calls} calls`);
  return [`profile: ${p.opsMs.toFixed(0)} ms in backend ops of ${p.wallMs.toFixed(0)} ms (vision + prefill + decode); not in any op: ${(p.wallMs - p.opsMs).toFixed(0)} ms (${pct(p.wallMs - p.opsMs)})`, ...rows].join('\n');
}
