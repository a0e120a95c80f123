/** A one-line progress display on a terminal: step, samples/s, ETA and the latest loss. */
export class ProgressLine {
  private readonly t0 = performance.now();
  private lastDraw = 0;
  constructor(
    private readonly total: number,
    private readonly first: number,
    private readonly stream: NodeJS.WriteStream | null,
  ) {}

  update(step: number, samples: number, loss: number, epoch: number): void {
    if (!this.stream) return;
    const now = performance.now();
    if (now - this.lastDraw < 200 && step < this.total) return;
    this.lastDraw = now;
    const secs = (now - this.t0) / 1000;
    const done = step - this.first;
    const rate = secs > 0 ? samples / secs : 0;
    const eta = done > 0 ? ((this.total - step) * secs) / done : NaN;
    const width = 24;
    const filled = Math.round((width * step) / this.total);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    this.stream.write(
      `\r[${bar}] step ${step}/${this.total} epoch ${epoch + 1} | ${rate.toFixed(2)} samples/s | ETA ${fmt(eta)} | loss ${loss.toFixed(4)}  `,
    );
  }

  end(): void {
    this.stream?.write('\n');
  }
}

function fmt(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return `${h ? `${h}:` : ''}${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}
