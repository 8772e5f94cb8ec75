// The operator: what the loop sees (observe) and does (execute) on one display. The loop knows nothing of
// X11; the desktop knows nothing of models. Dry-run observes for real and executes nothing.
import type { ModelImage } from '../model/backends/types.ts';
import { BlankFrameError, encodePng, resizeRgb, thumbnail } from '../desktop/capture.ts';
import type { Desktop } from '../desktop/desktop.ts';
import type { DisplayInfo } from '../desktop/displays.ts';
import type { DesktopInput, InputEvent, InputOptions } from '../desktop/input.ts';
import type { ScreenAction } from './actions.ts';
import { planImage, UITARS_LIMITS, type CoordSpace, type ImageGeometry, type ResizeLimits } from './coords.ts';

export interface Observation {
  step: number;
  geometry: ImageGeometry;
  /** The image for the model (PNG of the sent size, RGB alongside). */
  image: ModelImage;
  /** PNG at capture size, for the trajectory (the same buffer as image.png when not downscaled). */
  capturePng: Buffer;
  /** Grey thumbnail for change detection. */
  thumb: Uint8Array;
  timings: { grabMs: number; convertMs: number; encodeMs: number };
}

export interface Operator {
  readonly display: DisplayInfo;
  readonly dryRun: boolean;
  observe(step: number): Promise<Observation>;
  /** Quick grey thumbnail of the screen now (settling checks). */
  peek(): Promise<Uint8Array>;
  execute(action: ScreenAction): Promise<void>;
  /** After this resolves no input event is sent (held buttons/keys are released). */
  halt(reason: string): Promise<void>;
  /** Starts the corner failsafe; returns a function that ends it. */
  watchCorners?(onCorner: () => void): () => void;
  /** Input events sent so far (empty in dry-run). */
  readonly events: readonly InputEvent[];
}

export interface DesktopOperatorOptions {
  displayId?: number;
  limits?: ResizeLimits;
  /** Downscale captures above this many pixels before sending (default: send the capture as is). */
  maxSendPixels?: number;
  coordSpace?: CoordSpace;
  dryRun?: boolean;
  input?: InputOptions;
}

export class DesktopOperator implements Operator {
  readonly display: DisplayInfo;
  readonly dryRun: boolean;
  /** This operator's own input gate: halting it never affects another run on the same desktop. */
  readonly input: DesktopInput;

  constructor(
    readonly desktop: Desktop,
    private readonly opts: DesktopOperatorOptions = {},
  ) {
    this.display = desktop.display(opts.displayId ?? 0);
    this.dryRun = !!opts.dryRun;
    this.input = desktop.createInput(opts.input);
  }

  get events(): readonly InputEvent[] {
    return this.input.events;
  }

  async observe(step: number): Promise<Observation> {
    const f = await this.desktop.capture(this.display.id);
    if (f.blank) throw new BlankFrameError(f.blank, f.width, f.height);
    const t0 = performance.now();
    const capture = { width: f.width, height: f.height };
    const { sent, resized } = planImage(capture, this.opts.limits ?? UITARS_LIMITS, this.opts.maxSendPixels);
    const capturePng = await encodePng(f.rgb, f.width, f.height);
    let png = capturePng;
    let rgb: Buffer = f.rgb;
    if (sent.width !== capture.width || sent.height !== capture.height) {
      rgb = await resizeRgb(f.rgb, f.width, f.height, sent.width, sent.height);
      png = await encodePng(rgb, sent.width, sent.height);
    }
    return {
      step,
      geometry: {
        origin: { x: this.display.x, y: this.display.y },
        injectorScale: this.display.injectorScale,
        capture,
        sent,
        resized,
        coordSpace: this.opts.coordSpace ?? 'absolute',
      },
      image: { id: `step-${step}`, png, width: sent.width, height: sent.height, rgb, resized },
      capturePng,
      thumb: thumbnail(f.rgb, f.width, f.height),
      timings: { grabMs: f.grabMs, convertMs: f.convertMs, encodeMs: performance.now() - t0 },
    };
  }

  async peek(): Promise<Uint8Array> {
    const f = await this.desktop.capture(this.display.id);
    return thumbnail(f.rgb, f.width, f.height);
  }

  async execute(a: ScreenAction): Promise<void> {
    if (this.dryRun) return;
    const inp = this.input;
    switch (a.type) {
      case 'click':
        return inp.click(a.point.x, a.point.y, 'left', 1);
      case 'left_double':
        return inp.click(a.point.x, a.point.y, 'left', 2);
      case 'right_single':
        return inp.click(a.point.x, a.point.y, 'right', 1);
      case 'hover':
        return inp.move(a.point.x, a.point.y);
      case 'drag':
        return inp.drag(a.from.x, a.from.y, a.to.x, a.to.y);
      case 'scroll':
        return inp.scroll(a.direction, a.point);
      case 'hotkey':
        return inp.hotkey(a.keys);
      case 'type':
        return inp.type(a.text);
      default:
        return;
    }
  }

  halt(reason: string): Promise<void> {
    return this.input.stop(reason);
  }

  watchCorners(onCorner: () => void): () => void {
    return this.desktop.watchCorners(() => onCorner(), 100, 2, this.input);
  }
}
