// A generated corpus of UI-TARS replies with their ground truth: every action, both box syntaxes and the
// tolerant forms of the spec, odd spacing, several actions, and garbage. `refOk` marks the replies the
// reference parser (@ui-tars/action-parser) is expected to get right on its own.
import type { ModelAction, Point } from '../../../app/agent/actions.ts';

export interface CorpusItem {
  name: string;
  text: string;
  screen: { width: number; height: number };
  /** Intended actions, points in model (resized-image) space; null = must be rejected. */
  actions: ModelAction[] | null;
  refOk: boolean;
}

// Screens whose smart_resize has no rounding tie (the reference rounds ties up, Python to even).
const SCREENS = [
  { width: 1920, height: 1080 }, { width: 1280, height: 800 }, { width: 1366, height: 768 },
  { width: 2560, height: 1440 }, { width: 1440, height: 900 }, { width: 3840, height: 2160 }, { width: 1000, height: 700 },
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type BoxForm = (p: Point, r: () => number) => { arg: string; center: Point; refOk: boolean };

const BOX_FORMS: Record<string, BoxForm> = {
  tokens: (p) => ({ arg: `start_box='<|box_start|>(${p.x},${p.y})<|box_end|>'`, center: p, refOk: true }),
  bare: (p) => ({ arg: `start_box='(${p.x},${p.y})'`, center: p, refOk: true }),
  spaced: (p) => ({ arg: `start_box='( ${p.x} , ${p.y} )'`, center: p, refOk: true }),
  list4: (p, r) => {
    const dx = 2 * Math.floor(r() * 20), dy = 2 * Math.floor(r() * 10);
    return { arg: `start_box='[${p.x - dx}, ${p.y - dy}, ${p.x + dx}, ${p.y + dy}]'`, center: p, refOk: true };
  },
  point: (p) => ({ arg: `point='<point>${p.x} ${p.y}</point>'`, center: p, refOk: true }),
  bbox: (p, r) => {
    const d = 2 * Math.floor(r() * 15);
    return { arg: `start_box='<bbox>${p.x - d} ${p.y - d} ${p.x + d} ${p.y + d}</bbox>'`, center: p, refOk: true };
  },
  dquote: (p) => ({ arg: `start_box="(${p.x},${p.y})"`, center: p, refOk: false }),
};

const HEADS: Array<{ name: string; head: (t: string) => string }> = [
  { name: 'thought', head: (t) => `Thought: ${t}\nAction: ` },
  { name: 'reflection', head: (t) => `Reflection: looked fine.\nAction_Summary: ${t}\nAction: ` },
  { name: 'bare', head: () => 'Action: ' },
  { name: 'fullwidth', head: (t) => `Thought: ${t}\nAction：` },
  { name: 'multiline', head: (t) => `Thought: ${t}\nSecond line of the plan.\n\nAction: ` },
];

export function buildCorpus(): CorpusItem[] {
  const r = rng(20250601);
  const out: CorpusItem[] = [];
  let k = 0;
  const screen = () => SCREENS[k++ % SCREENS.length]!;
  const pointIn = (sc: { width: number; height: number }): Point => {
    // well inside any resized image of these screens
    return { x: 40 + Math.floor(r() * (Math.min(sc.width, 1400) - 80)), y: 40 + Math.floor(r() * (Math.min(sc.height, 700) - 80)) };
  };
  for (const type of ['click', 'left_double', 'right_single'] as const) {
    for (const [form, f] of Object.entries(BOX_FORMS)) {
      for (const h of HEADS) {
        const sc = screen();
        const b = f(pointIn(sc), r);
        out.push({ name: `${type}/${form}/${h.name}`, text: `${h.head(`Press the ${type} target.`)}${type}(${b.arg})`, screen: sc, actions: [{ type, point: b.center }], refOk: b.refOk });
      }
    }
  }
  for (const [form, f] of Object.entries(BOX_FORMS)) {
    for (const h of HEADS.slice(0, 2)) {
      const sc = screen();
      const a = f(pointIn(sc), r), b = f(pointIn(sc), r);
      const endArg = b.arg.replace(/^start_box/, 'end_box').replace(/^point/, 'end_point');
      const startArg = a.arg.replace(/^point/, 'start_point');
      out.push({ name: `drag/${form}/${h.name}`, text: `${h.head('Drag it.')}drag(${startArg}, ${endArg})`, screen: sc, actions: [{ type: 'drag', from: a.center, to: b.center }], refOk: a.refOk });
    }
  }
  for (const dir of ['up', 'down', 'left', 'right'] as const) {
    for (const form of ['tokens', 'bare', 'point', 'none']) {
      for (const h of HEADS.slice(0, 2)) {
        const sc = screen();
        if (form === 'none') {
          out.push({ name: `scroll/${dir}/none/${h.name}`, text: `${h.head('Scroll.')}scroll(direction='${dir}')`, screen: sc, actions: [{ type: 'scroll', direction: dir, point: null }], refOk: true });
          continue;
        }
        const b = BOX_FORMS[form]!(pointIn(sc), r);
        out.push({ name: `scroll/${dir}/${form}/${h.name}`, text: `${h.head('Scroll.')}scroll(${b.arg}, direction='${dir}')`, screen: sc, actions: [{ type: 'scroll', direction: dir, point: b.center }], refOk: true });
      }
    }
  }
  for (const keys of ['ctrl c', 'enter', 'alt f4', 'ctrl shift t', 'pagedown']) {
    for (const h of HEADS.slice(0, 2)) out.push({ name: `hotkey/${keys}/${h.name}`, text: `${h.head('Keys.')}hotkey(key='${keys}')`, screen: screen(), actions: [{ type: 'hotkey', keys }], refOk: true });
  }
  const TYPES: Array<{ src: string; text: string; refOk: boolean }> = [
    { src: 'hello world', text: 'hello world', refOk: true },
    { src: 'search terms\\n', text: 'search terms\n', refOk: true },
    { src: "it\\'s here", text: "it's here", refOk: true },
    { src: '你好，世界', text: '你好，世界', refOk: true },
    { src: 'say \\"hi\\"', text: 'say "hi"', refOk: true },
    { src: 'a, b, c', text: 'a, b, c', refOk: true },
    { src: "it\\'s 5, not 6", text: "it's 5, not 6", refOk: false },
    { src: "don't stop", text: "don't stop", refOk: true },
    { src: "don't, stop", text: "don't, stop", refOk: false },
    { src: 'line1\\nline2\\n', text: 'line1\nline2\n', refOk: true },
    { src: 'x=1', text: 'x=1', refOk: true },
    { src: 'C:\\\\temp', text: 'C:\\temp', refOk: true },
  ];
  for (const t of TYPES) {
    for (const h of HEADS.slice(0, 2)) out.push({ name: `type/${t.src}/${h.name}`, text: `${h.head('Type.')}type(content='${t.src}')`, screen: screen(), actions: [{ type: 'type', text: t.text }], refOk: t.refOk });
  }
  for (const h of HEADS.slice(0, 2)) {
    out.push({ name: `wait/${h.name}`, text: `${h.head('Wait.')}wait()`, screen: screen(), actions: [{ type: 'wait' }], refOk: true });
    out.push({ name: `finished/${h.name}`, text: `${h.head('Done.')}finished(content='All done')`, screen: screen(), actions: [{ type: 'finished', content: 'All done' }], refOk: true });
    out.push({ name: `call_user/${h.name}`, text: `${h.head('Help.')}call_user()`, screen: screen(), actions: [{ type: 'call_user', content: '' }], refOk: true });
  }
  for (let i = 0; i < 8; i++) {
    const sc = screen();
    const p = pointIn(sc), q = pointIn(sc);
    out.push({
      name: `multi/${i}`,
      text: `Thought: Click then type.\nAction: click(start_box='<|box_start|>(${p.x},${p.y})<|box_end|>')\n\ntype(content='item ${i}\\n')\n\nscroll(start_box='(${q.x},${q.y})', direction='down')`,
      screen: sc,
      actions: [{ type: 'click', point: p }, { type: 'type', text: `item ${i}\n` }, { type: 'scroll', direction: 'down', point: q }],
      refOk: true,
    });
  }
  const GARBAGE = [
    '', '   ', 'I am not sure what to do here.', 'Thought: thinking only', "Thought: t\nAction: click(start_box='')",
    "Thought: t\nAction: click(start_box='(abc,def)')", 'Thought: t\nAction: open_app(app_name=\'x\')', 'Thought: t\nAction: press_home()',
    "Thought: t\nAction: scroll(start_box='(1,2)', direction='sideways')", "Thought: t\nAction: drag(start_box='(1,2)')",
    'Thought: t\nAction: hotkey()', '```\nThought: t\n```', "Thought: t\nAction: click(start_box='(5,6)') and then I will check",
  ];
  GARBAGE.forEach((g, i) => out.push({ name: `garbage/${i}`, text: g, screen: screen(), actions: null, refOk: true }));
  return out;
}
