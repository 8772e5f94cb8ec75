// Where each token of an episode came from: text, or a cell (row, col) of a screenshot's merged grid.
// Used to map the engine's kept slots (by source token index) back to frames for telemetry and heatmaps.

export interface FrameSpan {
  frame: number; // 0-based, in episode order
  start: number; // token index of the first image pad
  rows: number; // merged grid (28x28-pixel cells)
  cols: number;
}

export class TokenLayout {
  readonly frames: FrameSpan[] = [];
  length = 0;

  /** Records appended ids; image pad runs become frames with the given merged grids, in order. */
  append(ids: ArrayLike<number>, imageTokenId: number, grids: Array<[number, number]>): void {
    let g = 0;
    for (let i = 0; i < ids.length; ) {
      if (ids[i] !== imageTokenId) {
        i++;
        continue;
      }
      const grid = grids[g++];
      if (!grid) throw new Error(`token layout: image pad run at ${this.length + i} has no grid`);
      const n = grid[0] * grid[1];
      for (let j = 0; j < n; j++) if (ids[i + j] !== imageTokenId) throw new Error(`token layout: image pad run at ${this.length + i} is shorter than its grid ${grid[0]}x${grid[1]}`);
      this.frames.push({ frame: this.frames.length, start: this.length + i, rows: grid[0], cols: grid[1] });
      i += n;
    }
    if (g !== grids.length) throw new Error(`token layout: ${grids.length} grids for ${g} image pad runs`);
    this.length += ids.length;
  }

  /** Appends plain text tokens (e.g. the generated reply). */
  appendText(n: number): void {
    this.length += n;
  }

  /** The frame and cell of a token, or null for text. */
  locate(token: number): { frame: number; row: number; col: number } | null {
    let lo = 0, hi = this.frames.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = this.frames[mid]!;
      if (token < f.start) hi = mid - 1;
      else if (token >= f.start + f.rows * f.cols) lo = mid + 1;
      else {
        const k = token - f.start;
        return { frame: f.frame, row: Math.floor(k / f.cols), col: k % f.cols };
      }
    }
    return null;
  }
}

export interface LayerKeep {
  /** kept cells per frame as a bitmap [rows*cols] (1 = kept) */
  frames: Array<{ frame: number; rows: number; cols: number; kept: Uint8Array; keptCount: number }>;
  /** kept text token indices */
  text: number[];
}

/** Groups one layer's kept source tokens by frame (heatmap) and text (strip). */
export function mapKept(layout: TokenLayout, keptTokens: ArrayLike<number>): LayerKeep {
  const frames = layout.frames.map((f) => ({ frame: f.frame, rows: f.rows, cols: f.cols, kept: new Uint8Array(f.rows * f.cols), keptCount: 0 }));
  const text: number[] = [];
  for (let i = 0; i < keptTokens.length; i++) {
    const t = keptTokens[i]!;
    const loc = layout.locate(t);
    if (!loc) text.push(t);
    else {
      const fr = frames[loc.frame]!;
      if (!fr.kept[loc.row * fr.cols + loc.col]) {
        fr.kept[loc.row * fr.cols + loc.col] = 1;
        fr.keptCount++;
      }
    }
  }
  return { frames, text };
}
