// A terminal progress bar with rate and ETA (stderr; plain lines when stderr is not a TTY).
export class Progress {
  private start = performance.now();
  private lastPlain = 0;
  constructor(
    private total: number,
    private done = 0,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}
  tick(label = ''): void {
    this.done++;
    const el = (performance.now() - this.start) / 1000;
    const rate = el > 0 ? this.done / el : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    const frac = this.total ? this.done / this.total : 1;
    const w = 28;
    const bar = '#'.repeat(Math.round(frac * w)).padEnd(w, '.');
    const line = `[${bar}] ${this.done}/${this.total} ${(100 * frac).toFixed(0)}%  ${rate.toFixed(2)}/s  ETA ${fmt(eta)}  ${label}`;
    if (this.out.isTTY) this.out.write(`\r${line.slice(0, (this.out.columns ?? 120) - 1).padEnd(Math.min(120, (this.out.columns ?? 120) - 1))}`);
    else if (this.done === this.total || performance.now() - this.lastPlain > 2000) {
      this.lastPlain = performance.now();
      this.out.write(line + '\n');
    }
  }
  end(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}

function fmt(s: number): string {
  if (!isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}
