// Parsing model replies: our layer against ground truth and, differentially, against the model authors'
// @ui-tars/action-parser on a generated corpus (>= 200 replies), plus the cases where the reference is wrong.
import { actionParser } from '@ui-tars/action-parser';
import { describe, expect, it } from 'vitest';
import type { ModelAction, Point } from '../../app/agent/actions.ts';
import { planImage, toScreen, type ImageGeometry } from '../../app/agent/coords.ts';
import { parseReply, ReplyParseError, unescapePy } from '../../app/agent/parse.ts';
import { buildCorpus } from './helpers/corpus.ts';

const corpus = buildCorpus();

function geometryFor(screen: { width: number; height: number }): ImageGeometry {
  const { sent, resized } = planImage(screen);
  return { origin: { x: 0, y: 0 }, injectorScale: 1, capture: screen, sent, resized, coordSpace: 'absolute' };
}

function quietRef(text: string, screen: { width: number; height: number }) {
  const orig = console.error;
  console.error = () => undefined;
  try {
    return actionParser({ prediction: text, factor: [1000, 1000], screenContext: screen, modelVer: '1.5' as never }).parsed;
  } finally {
    console.error = orig;
  }
}

function points(a: ModelAction): Point[] {
  if (a.type === 'drag') return [a.from, a.to];
  if ('point' in a && a.point) return [a.point];
  return [];
}

describe('differential corpus', () => {
  it('has at least 200 replies covering every action and garbage', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    const kinds = new Set(corpus.flatMap((c) => (c.actions ?? [{ type: 'garbage' }]).map((a) => a.type)));
    for (const k of ['click', 'left_double', 'right_single', 'drag', 'scroll', 'hotkey', 'type', 'wait', 'finished', 'call_user', 'garbage']) expect(kinds).toContain(k);
  });

  it('our parser returns the intended actions for every reply, and rejects the garbage', () => {
    const wrong: string[] = [];
    for (const c of corpus) {
      if (c.actions === null) {
        try {
          parseReply(c.text);
          wrong.push(`${c.name}: accepted garbage`);
        } catch (e) {
          if (!(e instanceof ReplyParseError)) wrong.push(`${c.name}: ${(e as Error).message}`);
          else expect(e.raw).toBe(c.text);
        }
        continue;
      }
      try {
        const got = parseReply(c.text).actions;
        if (JSON.stringify(got) !== JSON.stringify(c.actions)) wrong.push(`${c.name}: got ${JSON.stringify(got)}`);
      } catch (e) {
        wrong.push(`${c.name}: ${(e as Error).message}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('matches @ui-tars/action-parser: same actions, same screen coordinates (where the reference is right)', () => {
    let compared = 0;
    const diffs: string[] = [];
    for (const c of corpus) {
      if (!c.refOk || c.actions === null) continue;
      compared++;
      const g = geometryFor(c.screen);
      const ours = parseReply(c.text).actions;
      const ref = quietRef(c.text, c.screen).filter((p) => p.action_type);
      if (ref.length !== ours.length) {
        diffs.push(`${c.name}: ${ref.length} vs ${ours.length} actions`);
        continue;
      }
      ours.forEach((a, i) => {
        const r = ref[i]!;
        const inp = r.action_inputs as Record<string, unknown>;
        if (r.action_type !== a.type) diffs.push(`${c.name}: type ${r.action_type} vs ${a.type}`);
        const pts = points(a).map((p) => toScreen(p, g).point);
        const refPts = [inp.start_coords, inp.end_coords].filter((v) => Array.isArray(v) && v.length) as number[][];
        if (pts.length !== refPts.length) diffs.push(`${c.name}: ${refPts.length} vs ${pts.length} points`);
        pts.forEach((p, j) => {
          const q = refPts[j]!;
          if (Math.abs(p.x - q[0]!) > 0.501 || Math.abs(p.y - q[1]!) > 0.501) diffs.push(`${c.name}: point ${JSON.stringify(p)} vs ${JSON.stringify(q)}`);
        });
        if (a.type === 'type' && unescapePy(String(inp.content)) !== a.text) diffs.push(`${c.name}: content ${JSON.stringify(inp.content)} vs ${JSON.stringify(a.text)}`);
        if (a.type === 'hotkey' && inp.key !== a.keys) diffs.push(`${c.name}: key ${String(inp.key)}`);
        if (a.type === 'scroll' && inp.direction !== a.direction) diffs.push(`${c.name}: direction ${String(inp.direction)}`);
      });
    }
    expect(compared).toBeGreaterThanOrEqual(150);
    expect(diffs).toEqual([]);
  });

  it('the replies flagged as reference failures really fail there (so our fixes are needed)', () => {
    const flagged = corpus.filter((c) => !c.refOk);
    expect(flagged.length).toBeGreaterThan(0);
    for (const c of flagged) {
      const ref = quietRef(c.text, c.screen).filter((p) => p.action_type);
      const a = c.actions![0]!;
      const inp = (ref[0]?.action_inputs ?? {}) as Record<string, unknown>;
      const refOk =
        a.type === 'type'
          ? unescapePy(String(inp.content)) === a.text
          : Array.isArray(inp.start_coords) && inp.start_coords.length === 2 && String(inp.start_box).split(',').length === 4;
      expect(refOk, c.name).toBe(false);
    }
  });
});

describe('parser details', () => {
  it('reads thought, reflection and several actions in order', () => {
    const r = parseReply("Reflection: the page loaded.\nAction_Summary: Click OK then type.\nAction: click(start_box='(10,20)')\n\ntype(content='ok\\n')");
    expect(r.reflection).toBe('the page loaded.');
    expect(r.thought).toBe('Click OK then type.');
    expect(r.actions.map((a) => a.type)).toEqual(['click', 'type']);
  });

  it('turns literal backslash escapes into characters, keeps unescaped quotes and commas', () => {
    expect(parseReply("Action: type(content='a\\nb\\tc \\'q\\' \\\"d\\\" e\\\\f')").actions[0]).toEqual({ type: 'type', text: 'a\nb\tc \'q\' "d" e\\f' });
    expect(parseReply("Action: type(content='It's 5, not 6')").actions[0]).toEqual({ type: 'type', text: "It's 5, not 6" });
    expect(parseReply("Action: finished(content='Total: 3, done')").actions[0]).toEqual({ type: 'finished', content: 'Total: 3, done' });
  });

  it('takes box centres and accepts double-quoted boxes and code fences', () => {
    expect(parseReply("```\nThought: x\nAction: click(start_box=\"(100, 200)\")\n```").actions[0]).toEqual({ type: 'click', point: { x: 100, y: 200 } });
    expect(parseReply("Action: click(start_box='[100, 200, 300, 400]')").actions[0]).toEqual({ type: 'click', point: { x: 200, y: 300 } });
  });

  it('ignores a trailing remark that is not a call, but rejects a malformed call', () => {
    const r = parseReply("Thought: t\nAction: click(start_box='(1,2)')\n\nThis should open the menu.");
    expect(r.actions).toHaveLength(1);
    expect(r.ignored).toEqual(['This should open the menu.']);
    expect(() => parseReply("Thought: t\nAction: click(start_box='(1,2)')\n\nclick(start_box='')")).toThrow(ReplyParseError);
  });

  it('says why a reply is rejected', () => {
    expect(() => parseReply('')).toThrow(/empty reply/);
    expect(() => parseReply("Action: scroll(direction='down or up')")).toThrow(/direction must be up, down, left or right/);
    expect(() => parseReply('Action: press_back()')).toThrow(/unsupported action 'press_back'/);
  });
});
