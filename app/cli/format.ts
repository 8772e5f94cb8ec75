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

/** A choice option: the value (or the default when absent), a UsageError listing the choices otherwise. */
export function parseChoiceOpt<T extends string>(v: string | undefined, name: string, choices: readonly T[], def: T): T {
  if (v === undefined) return def;
  if (!(choices as readonly string[]).includes(v)) throw new UsageError(`--${name} '${v}' must be one of ${choices.join(', ')}`);
  return v as T;
}
