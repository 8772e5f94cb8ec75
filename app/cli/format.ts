// Small formatting helpers shared by the CLI commands.
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
    if (!/^\d+$/.test(t)) throw new Error(`${what}: item ${i} ('${t}') is not a non-negative integer`);
    return Number(t);
  });
}

export function parseNumberOpt(v: string | undefined, name: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : ''].filter(Boolean).join(' and ');
    throw new Error(`--${name} '${v}' must be ${opts.int ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}`);
  }
  return n;
}
