// Our Action type: what one UI-TARS action means, independent of how the model spelled it. Generic in
// the coordinate space: ModelAction points are in the image the model saw, ScreenAction points are in
// screen pixels (after app/agent/coords.ts, the one place that maps between them).

export interface Point {
  x: number;
  y: number;
}

export type Direction = 'up' | 'down' | 'left' | 'right';

export type Action<P = Point> =
  | { type: 'click' | 'left_double' | 'right_single' | 'hover'; point: P }
  | { type: 'drag'; from: P; to: P }
  | { type: 'scroll'; point: P | null; direction: Direction }
  | { type: 'hotkey'; keys: string }
  | { type: 'type'; text: string }
  | { type: 'wait' }
  | { type: 'finished'; content: string }
  | { type: 'call_user'; content: string };

export type ModelAction = Action<Point>;
export type ScreenAction = Action<Point>;

/** Actions that end the step loop rather than touch the desktop. */
export function isTerminal(a: Action<unknown>): boolean {
  return a.type === 'finished' || a.type === 'call_user';
}

/** Actions that send input events. */
export function isInput(a: Action<unknown>): boolean {
  return !['wait', 'finished', 'call_user'].includes(a.type);
}

const pt = (p: Point) => `(${p.x},${p.y})`;

/** A short human description, e.g. `click (640,400)`, `type "hello\n"`. */
export function describeAction(a: Action<Point>): string {
  switch (a.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      return `${a.type} ${pt(a.point)}`;
    case 'drag':
      return `drag ${pt(a.from)} -> ${pt(a.to)}`;
    case 'scroll':
      return `scroll ${a.direction}${a.point ? ' at ' + pt(a.point) : ''}`;
    case 'hotkey':
      return `hotkey ${a.keys}`;
    case 'type':
      return `type ${JSON.stringify(a.text)}`;
    case 'wait':
      return 'wait';
    case 'finished':
      return `finished ${JSON.stringify(a.content)}`;
    case 'call_user':
      return `call_user ${JSON.stringify(a.content)}`;
  }
}

/** Canonical UI-TARS-1.5 text of an action (used to replay history with box tokens, add_box_token). */
export function formatAction(a: Action<Point>): string {
  const box = (p: Point) => `'<|box_start|>(${Math.round(p.x)},${Math.round(p.y)})<|box_end|>'`;
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/"/g, '\\"').replace(/\n/g, '\\n');
  switch (a.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      return `${a.type}(start_box=${box(a.point)})`;
    case 'drag':
      return `drag(start_box=${box(a.from)}, end_box=${box(a.to)})`;
    case 'scroll':
      return a.point ? `scroll(start_box=${box(a.point)}, direction='${a.direction}')` : `scroll(direction='${a.direction}')`;
    case 'hotkey':
      return `hotkey(key='${a.keys}')`;
    case 'type':
      return `type(content='${esc(a.text)}')`;
    case 'wait':
      return 'wait()';
    case 'finished':
      return a.content ? `finished(content='${esc(a.content)}')` : 'finished()';
    case 'call_user':
      return 'call_user()';
  }
}

/** Identity of an executed action for repeat detection (screen points bucketed to `tol` px). */
export function actionKey(a: ScreenAction, tol = 8): string {
  const b = (p: Point | null) => (p ? `${Math.round(p.x / tol)},${Math.round(p.y / tol)}` : '-');
  switch (a.type) {
    case 'click':
    case 'left_double':
    case 'right_single':
    case 'hover':
      return `${a.type}:${b(a.point)}`;
    case 'drag':
      return `drag:${b(a.from)}:${b(a.to)}`;
    case 'scroll':
      return `scroll:${a.direction}:${b(a.point)}`;
    case 'hotkey':
      return `hotkey:${a.keys.toLowerCase()}`;
    case 'type':
      return `type:${a.text}`;
    default:
      return a.type;
  }
}
