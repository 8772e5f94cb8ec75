// The protocol boundary: valid commands pass, malformed ones are rejected with a reason (never a throw),
// events validate, telemetry bitsets round-trip and inconsistent telemetry is refused.
import { describe, expect, it } from 'vitest';
import { decodeBits, encodeBits, parseCommand, parseEvent, parseTelemetry, type KvTelemetry } from '../../app/protocol.ts';

const reject = (raw: unknown) => {
  const r = parseCommand(raw);
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.reason;
};

describe('commands', () => {
  it('accepts every command type, from a JSON string or a decoded value', () => {
    const good = [
      { type: 'task.start', task: 'open the settings' },
      { type: 'task.pause' },
      { type: 'task.resume', ref: 'r1' },
      { type: 'task.stop' },
      { type: 'confirm.reply', requestId: 'r-1', approve: true },
      { type: 'ask.reply', requestId: 'r-2', answer: null },
      { type: 'settings.update', patch: { kv: { budgetPercent: 10 } } },
      { type: 'settings.reset', scope: 'starkv' },
      { type: 'settings.reset', scope: 'all' },
      { type: 'checkpoint.check', dir: '/models/ui-tars' },
      { type: 'episodes.list' },
      { type: 'episode.open', id: '20261123-101010-open-the-settings' },
    ];
    for (const c of good) {
      expect(parseCommand(c)).toMatchObject({ ok: true });
      expect(parseCommand(JSON.stringify(c))).toMatchObject({ ok: true, value: c });
    }
  });

  it('rejects malformed messages with a reason that says what is wrong', () => {
    expect(reject('{not json')).toMatch(/^not JSON/);
    expect(reject('[1,2]')).toMatch(/JSON object/);
    expect(reject(null)).toMatch(/JSON object/);
    expect(reject(42)).toMatch(/JSON object/);
    expect(reject({})).toMatch(/string "type"/);
    expect(reject({ type: 7 })).toMatch(/string "type"/);
    expect(reject({ type: 'format.disk' })).toBe("unknown command type 'format.disk'");
    expect(reject({ type: 'task.start' })).toMatch(/^task\.start: task: /);
    expect(reject({ type: 'task.start', task: '   ' })).toMatch(/task is empty/);
    expect(reject({ type: 'task.start', task: 'x', extra: 1 })).toMatch(/extra/);
    expect(reject({ type: 'confirm.reply', requestId: 'r', approve: 'yes' })).toMatch(/approve/);
    expect(reject({ type: 'settings.reset', scope: 'everything' })).toMatch(/scope/);
    expect(reject({ type: 'settings.update', patch: [1] })).toMatch(/patch/);
    expect(reject({ type: 'episode.open', id: '../../etc' })).toMatch(/not an episode id/);
    expect(reject('x'.repeat(2 << 20))).toMatch(/too large/);
  });

  it('never throws, whatever arrives', () => {
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pieces = ['{', '}', '"type"', ':', '"task.start"', ',', '"task"', '[', ']', 'null', '1e999', '"\\u0000"', 'true', '"ref"', '"__proto__"'];
    for (let i = 0; i < 3000; i++) {
      const s = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => pieces[Math.floor(rnd() * pieces.length)]).join('');
      expect(() => parseCommand(s)).not.toThrow();
    }
    const circular: Record<string, unknown> = { type: 'task.start' };
    circular.task = circular;
    expect(parseCommand(circular).ok).toBe(false);
    expect(reject('{"type":"task.start","task":"a","__proto__":{"polluted":true}}')).toMatch(/__proto__/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

function telemetry(): KvTelemetry {
  return {
    step: 3, method: 'starkv', budgetPercent: 20, capTokens: null, logicalLength: 40, textTokens: 16,
    frames: [{ frame: 0, step: 2, rows: 3, cols: 4 }, { frame: 1, step: 3, rows: 3, cols: 4 }],
    layers: [{
      layer: 0, cap: 8, kept: 8, keptPerFrame: [2, 3], keptText: 3,
      cells: [encodeBits([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), encodeBits([0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])],
      text: encodeBits(Array.from({ length: 16 }, (_, i) => i < 3)),
      starkv: { temperature: 1.1, normalizedEntropy: 0.7, lambdaEff: 0, miCur: [0.1, 0.2], miEma: [0.1, 0.2], groupWeights: [0.4, 0.6], stability: [1, 0.9] },
    }],
    kvBytes: 1024, kvFullBytes: 5120,
  };
}

describe('events and telemetry', () => {
  it('bitsets round-trip', () => {
    const bits = Array.from({ length: 2691 }, (_, i) => (i * 7919) % 5 === 0);
    const back = decodeBits(encodeBits(bits), bits.length);
    expect(Array.from(back, Boolean)).toEqual(bits);
  });

  it('validates a telemetry event and refuses inconsistent ones with a reason', () => {
    const t = telemetry();
    expect(parseEvent({ type: 'telemetry.kv', sessionId: 's', data: t }).ok).toBe(true);
    const wrongFrames = { ...t, layers: [{ ...t.layers[0]!, keptPerFrame: [2] }] };
    expect(parseTelemetry(wrongFrames)).toMatchObject({ ok: false, reason: expect.stringMatching(/one entry per frame/) });
    const shortBits = { ...t, layers: [{ ...t.layers[0]!, cells: [encodeBits([1]), t.layers[0]!.cells[1]!] }] };
    expect(parseTelemetry(shortBits)).toMatchObject({ ok: false, reason: expect.stringMatching(/does not hold 3x4 cells/) });
    expect(parseTelemetry({ ...t, method: 'magic' }).ok).toBe(false);
  });

  it('screenshots travel by reference only', () => {
    const step = {
      type: 'step.started', sessionId: 's', step: 1, t: 0,
      screenshot: { id: 's/1', url: '/blob/step1-abc', width: 1280, height: 800 },
      geometry: { origin: { x: 0, y: 0 }, injectorScale: 1, capture: { width: 1280, height: 800 }, sent: { width: 1280, height: 800 }, resized: { width: 1288, height: 812 }, coordSpace: 'absolute' },
    };
    expect(parseEvent(step).ok).toBe(true);
    expect(parseEvent({ ...step, screenshot: { ...step.screenshot, url: 'data:image/png;base64,' + 'A'.repeat(5000) } }).ok).toBe(false);
  });
});
