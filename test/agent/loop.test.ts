// The agent loop on a real X server (Xvfb + the test page in Chromium), driven by a scripted model behind
// a real local OpenAI-compatible HTTP server: finished, call_user, wait, parse retries, repeat detection,
// risky-action confirmation, stop (during generation, during typing, by the corner failsafe), pause/resume,
// dry run, max steps, and the trajectory written along the way.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planImage, toModel, type ImageGeometry } from '../../app/agent/coords.ts';
import { Agent, type AgentConfig, type AgentEvent, type AgentHooks } from '../../app/agent/loop.ts';
import { DesktopOperator } from '../../app/agent/operator.ts';
import { XConnection } from '../../app/desktop/x11/connection.ts';
import { MOTION, XTest } from '../../app/desktop/x11/xtest.ts';
import { OpenAIBackend } from '../../app/model/backends/openai.ts';
import { renderReport } from '../../app/store/report.ts';
import { EpisodeWriter, readEpisode } from '../../app/store/trajectory.ts';
import type { ChatRequest, ScriptedReply } from './helpers/page-server.ts';
import { openScene, type Scene } from './helpers/scene.ts';

const W = 1280, H = 800;
let s: Scene;
const root = mkdtempSync(path.join(os.tmpdir(), 'starkv-loop-'));
beforeAll(async () => {
  s = await openScene({ width: W, height: H });
}, 90_000);
afterAll(async () => {
  await s?.close();
  rmSync(root, { recursive: true, force: true });
});

const geometry: ImageGeometry = { origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: W, height: H }, ...planImage({ width: W, height: H }), coordSpace: 'absolute' };
/** Model-space point of an element, as a model looking at the resized screenshot would answer. */
const mp = (id: string, fx = 0.5, fy = 0.5) => {
  const p = toModel(s.at(id, fx, fy), geometry);
  return `(${p.x},${p.y})`;
};
const click = (id: string) => `Thought: Click ${id}.\nAction: click(start_box='<|box_start|>${mp(id)}<|box_end|>')`;

interface Run {
  result: Awaited<ReturnType<Agent['run']>>;
  agent: Agent;
  operator: DesktopOperator;
  events: AgentEvent[];
  requests: ChatRequest[];
  dir: string;
}

async function runAgent(
  script: (i: number, r: ChatRequest) => ScriptedReply,
  cfg: Partial<AgentConfig> = {},
  hooks: AgentHooks = {},
  opts: { dryRun?: boolean; during?: (agent: Agent, op: DesktopOperator) => void } = {},
): Promise<Run> {
  const start = s.server.requests.length;
  s.server.script = (r) => script(r.index - start, r);
  const store = EpisodeWriter.create(root, cfg.task ?? 'test task');
  const operator = new DesktopOperator(s.desktop, { dryRun: opts.dryRun });
  const events: AgentEvent[] = [];
  const agent = new Agent(
    { task: 'test task', waitMs: 100, settle: { minMs: 50, maxMs: 600, intervalMs: 60 }, ...cfg },
    new OpenAIBackend({ baseURL: s.server.endpoint, model: 'scripted', retries: 0 }),
    operator,
    store,
    { ...hooks, onEvent: (e) => (events.push(e), hooks.onEvent?.(e)) },
  );
  opts.during?.(agent, operator);
  const result = await agent.run();
  store.close();
  return { result, agent, operator, events, requests: s.server.requests.slice(start), dir: store.dir };
}

const pageValue = (type: string) => s.server.last(type)?.value as string | undefined;

describe('agent loop', () => {
  it('runs click -> type -> finished, with the history window and a full trajectory', async () => {
    const n = s.server.events.length;
    const replies = [click('alpha'), click('text'), "Thought: Type.\nAction: type(content='Hello from the agent!\\n')", "Thought: Done.\nAction: finished(content='typed it')"];
    const r = await runAgent((i) => replies[i]!, { historyImages: 2 });
    expect(r.result).toMatchObject({ status: 'finished', answer: 'typed it', steps: 4 });
    await s.server.waitFor((e) => e.type === 'click' && e.target === 'alpha', 3000, n);
    await s.server.waitFor((e) => e.type === 'text' && e.value === 'Hello from the agent!\n', 3000, n);
    const last = r.requests.at(-1)!.body.messages;
    const imgs = last.flatMap((m) => (typeof m.content === 'string' ? [] : m.content.filter((p) => p.type === 'image_url')));
    expect(imgs).toHaveLength(2);
    expect(last.filter((m) => m.role === 'assistant')).toHaveLength(3);
    expect(last[0]).toEqual({ role: 'system', content: 'You are a helpful assistant.' });
    const ep = readEpisode(r.dir);
    expect(ep.records.map((x) => x.kind).filter((k) => k !== 'request')).toEqual([
      'episode', 'observation', 'reply', 'actions', 'executed', 'observation', 'reply', 'actions', 'executed',
      'observation', 'reply', 'actions', 'executed', 'observation', 'reply', 'actions', 'end',
    ]);
    const acts = ep.records.filter((x) => x.kind === 'actions');
    expect((acts[0]!.actions as Array<{ screen: unknown }>)[0]!.screen).toEqual({ type: 'click', point: s.at('alpha') });
    expect(readdirSync(r.dir).filter((f) => f.endsWith('.png'))).toHaveLength(4);
    const html = renderReport(r.dir);
    expect(html.match(/<section>/g)).toHaveLength(4);
    expect(html).toContain('<b>finished: typed it</b>');
  });

  it('options left out (undefined, as the CLI passes them) keep their defaults', async () => {
    const r = await runAgent(() => "Thought: done.\nAction: finished(content='ok')", { maxTokens: undefined, maxSteps: undefined, historyImages: undefined, temperature: undefined });
    expect(r.result.status).toBe('finished');
    expect([r.agent.cfg.maxTokens, r.agent.cfg.maxSteps, r.agent.cfg.historyImages, r.agent.cfg.temperature]).toEqual([500, 100, 5, 0]);
    expect(r.requests[0]!.body.max_tokens).toBe(500);
  });

  it('call_user pauses and asks; the answer goes to the model; no answer ends the episode', async () => {
    const asked: string[] = [];
    const r = await runAgent((i) => (i === 0 ? 'Thought: Which account should I use?\nAction: call_user()' : "Action: finished(content='ok')"), {}, {
      askUser: async (q) => (asked.push(q.question), 'Use the work account.'),
    });
    expect(r.result.status).toBe('finished');
    expect(asked).toEqual(['Which account should I use?']);
    expect(r.requests[1]!.body.messages.some((m) => m.role === 'user' && m.content === 'Use the work account.')).toBe(true);
    const r2 = await runAgent(() => 'Thought: I need a password.\nAction: call_user()');
    expect(r2.result).toMatchObject({ status: 'call_user', answer: 'I need a password.', steps: 1 });
  });

  it('wait() waits, then looks again', async () => {
    const t0 = Date.now();
    const r = await runAgent((i) => (i === 0 ? 'Action: wait()' : 'Action: finished()'), { waitMs: 400 });
    expect(r.result.status).toBe('finished');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(r.requests).toHaveLength(2);
  });

  it('asks again after an unparsable reply (at the retry temperature), and stops with the raw text after the limit', async () => {
    const r = await runAgent((i) => (i < 2 ? 'I am not sure.' : 'Action: finished()'), { parseRetries: 3 });
    expect(r.result.status).toBe('finished');
    expect(r.requests.map((q) => q.body.temperature)).toEqual([0, 1, 1]);
    const r2 = await runAgent(() => "Thought: hmm\nAction: click(start_box='nowhere')", { parseRetries: 2 });
    expect(r2.result.status).toBe('parse_error');
    expect(r2.result.raw).toBe("Thought: hmm\nAction: click(start_box='nowhere')");
    expect(r2.requests).toHaveLength(3);
    expect(readEpisode(r2.dir).records.filter((x) => x.kind === 'parse_error')).toHaveLength(3);
  });

  it('detects the same action repeated on an unchanged screen', async () => {
    const bg = toModel({ x: 1200, y: 760 }, geometry);
    const r = await runAgent(() => `Thought: Click the empty corner.\nAction: click(start_box='(${bg.x},${bg.y})')`, { repeatWarn: 2, repeatStop: 3 });
    expect(r.result.status).toBe('repeat');
    // 3 steps, or 4 when the first click changed the screen (it blurs a field focused by an earlier test).
    expect([3, 4]).toContain(r.result.steps);
    expect(r.events.filter((e) => e.type === 'warning' && /repeated action/.test(e.message))).toHaveLength(1);
    expect(r.operator.events.filter((e) => e.kind === 'click')).toHaveLength(r.result.steps - 1);
  });

  it('risky actions wait for confirmation: declined ones never run, approved ones do', async () => {
    await runAgent((i) => [click('field'), 'Action: hotkey(key=\'ctrl a\')', 'Action: hotkey(key=\'backspace\')', 'Action: finished()'][i]!);
    const asked: string[][] = [];
    const cmd = "Thought: Clean up.\nAction: type(content='sudo rm -rf /tmp/junk')";
    const n = s.server.events.length;
    const r = await runAgent(() => cmd, {}, { confirm: async (q) => (asked.push(q.reasons), false) });
    expect(r.result.status).toBe('declined');
    expect(asked[0]!.join()).toMatch(/dangerous command/);
    expect(r.operator.events).toEqual([]);
    await new Promise((ok) => setTimeout(ok, 300));
    expect(s.server.events.slice(n).filter((e) => e.type === 'keydown')).toEqual([]);
    const r2 = await runAgent((i) => (i === 0 ? cmd : 'Action: finished()'), {}, { confirm: async () => true });
    expect(r2.result.status).toBe('finished');
    await s.server.waitFor((e) => e.type === 'field' && e.value === 'sudo rm -rf /tmp/junk', 3000, n);
    // Without a confirm hook, risky actions are declined.
    expect((await runAgent(() => "Action: hotkey(key='alt f4')")).result.status).toBe('declined');
  });

  it('dry run: records and draws the plan, sends no input', async () => {
    const n = s.server.events.length;
    const r = await runAgent((i) => (i === 0 ? `${click('beta')}\n\ntype(content='never typed')` : 'Action: finished()'), {}, {}, { dryRun: true });
    expect(r.result.status).toBe('finished');
    expect(r.operator.events).toEqual([]);
    expect(r.events.filter((e) => e.type === 'action' && e.dryRun)).toHaveLength(3);
    expect(readdirSync(r.dir)).toContain('step-0001-plan.png');
    await new Promise((ok) => setTimeout(ok, 300));
    expect(s.server.events.slice(n).filter((e) => ['mousedown', 'keydown'].includes(e.type))).toEqual([]);
  });

  it('stops at the step limit', async () => {
    const r = await runAgent(() => 'Action: wait()', { maxSteps: 2, waitMs: 10 });
    expect(r.result).toMatchObject({ status: 'max_steps', steps: 2 });
  });

  it('pause holds the next action until resume', async () => {
    let resumedAt = 0;
    const r = await runAgent((i) => (i === 0 ? click('beta') : 'Action: finished()'), {}, {}, {
      during: (agent) => {
        agent.pause();
        setTimeout(() => ((resumedAt = Date.now()), agent.resume()), 400);
      },
    });
    expect(r.result.status).toBe('finished');
    expect(r.operator.events.length).toBeGreaterThan(0);
    expect(r.operator.events[0]!.t).toBeGreaterThanOrEqual(resumedAt);
    expect(r.events.map((e) => e.type)).toContain('resumed');
  });

  it('stop during generation cancels the request and sends no input', async () => {
    let stopAt = 0;
    let genLatency = -1;
    const r = await runAgent(() => ({ text: `${click('alpha')}\n\n`.repeat(30), chunkDelayMs: 15 }), {}, {
      onEvent: (e) => {
        if (e.type === 'text' && !stopAt) {
          stopAt = Date.now();
          const t0 = performance.now();
          void r0.agent?.stop('test: stop during generation').then(() => (genLatency = performance.now() - t0));
        }
      },
    }, { during: (agent) => (r0.agent = agent) });
    expect(r.result.status).toBe('stopped');
    expect(r.result.error).toBe('test: stop during generation');
    expect(r.operator.events).toEqual([]);
    await new Promise((ok) => setTimeout(ok, 100));
    expect(r.requests.at(-1)!.aborted).toBe(true);
    const reply = readEpisode(r.dir).records.find((x) => x.kind === 'reply');
    expect(reply).toMatchObject({ cancelled: true });
    console.log(`stop latency during generation: ${genLatency.toFixed(1)} ms`);
    expect(genLatency).toBeGreaterThanOrEqual(0);
  });

  it('stop during typing: no input event after stop() resolves', async () => {
    await runAgent((i) => [click('text'), "Action: hotkey(key='ctrl a')", "Action: hotkey(key='backspace')", 'Action: finished()'][i]!);
    let stopped = 0;
    let sentAtStop = -1;
    let latency = -1;
    const n0 = s.server.events.length;
    const r = await runAgent(() => `Action: type(content='${'y'.repeat(3000)}')`, {}, {}, {
      during: (agent, op) => {
        const poll = setInterval(() => {
          if (op.events.length > 30) {
            clearInterval(poll);
            const t0 = performance.now();
            void agent.stop('test: stop during typing').then(() => ((stopped = Date.now()), (sentAtStop = op.events.length), (latency = performance.now() - t0)));
          }
        }, 1);
      },
    });
    expect(r.result.status).toBe('stopped');
    expect(stopped).toBeGreaterThan(0);
    expect(r.operator.events.length).toBe(sentAtStop);
    console.log(`stop latency while typing: ${latency.toFixed(1)} ms from stop() to "no more input"`);
    expect(latency).toBeLessThan(500);
    // What reaches the page: every keystroke passed the injector's gate before stop() resolved, so once
    // the page has caught up (the X server and Chromium lag behind under load), it has seen at most the
    // keystrokes sent, and none after (no stuck key auto-repeating). Counted, not timed.
    const keydowns = () => s.server.events.slice(n0).filter((e) => e.type === 'keydown' && e.key === 'y').length;
    for (let last = -1, t = Date.now(); keydowns() !== last && Date.now() - t < 10000; ) {
      last = keydowns();
      await new Promise((ok) => setTimeout(ok, 700));
    }
    const sentKeys = r.operator.events.filter((e) => e.kind === 'key').length;
    console.log(`keystrokes sent before stop: ${sentKeys}; keydowns the page saw: ${keydowns()}`);
    expect(sentKeys).toBeGreaterThan(0);
    expect(keydowns()).toBeLessThanOrEqual(sentKeys);
    expect((pageValue('text') ?? '').length).toBeLessThan(3000);
  });

  it('moving the mouse into a screen corner stops the agent', async () => {
    const r = await runAgent(() => 'Action: wait()', { waitMs: 300, maxSteps: 50 }, {}, {
      during: () =>
        setTimeout(async () => {
          const c = await XConnection.open(s.xvfb.display);
          const xt = await XTest.open(c);
          xt.fake(MOTION, 0, 0, H - 1);
          await c.sync();
          c.close();
        }, 500),
    });
    expect(r.result).toMatchObject({ status: 'stopped', error: 'the mouse was moved to a screen corner' });
    expect(r.result.steps).toBeLessThan(50);
  });
});

const r0: { agent?: Agent } = {};
