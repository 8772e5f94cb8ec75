// The `starkv` command line as a user meets it: bad options are refused by name before anything slow
// happens (exit 2), failures exit 1, piping into `head` ends quietly, `parse --help` does not wait for
// stdin, and `generate --json` keeps its documented fields. Runs the real bin/starkv.js.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTrajectories } from '../../app/eval/trajectory.ts';
import { GOLDEN_HF, ROOT, TMP } from '../helpers/paths.ts';
import { writeTinyRealVocab } from '../helpers/tiny-real-vocab.ts';

const BIN = path.join(ROOT, 'bin', 'starkv.js');
const TINY = path.join(GOLDEN_HF, 'qwen2_5vl-tiny'); // no tokenizer.json
const NOWHERE = path.join(TMP, 'no-such-checkpoint');

function starkv(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const noDisplay = () => {
  const { DISPLAY: _d, WAYLAND_DISPLAY: _w, ...env } = process.env;
  return env;
};

describe('starkv command line', () => {
  it('--version prints the package version', () => {
    const r = starkv(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`starkv ${JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}`);
  });

  it('a bad option exits 2 and names it, in every command', () => {
    for (const cmd of ['run', 'generate', 'episode', 'eval', 'devices', 'inspect', 'kv-replay', 'serve', 'bench', 'report']) {
      const r = starkv(cmd === 'eval' ? [cmd, 'grounding', '--frobnicate'] : [cmd, '--frobnicate']);
      expect(r.code, `${cmd}: ${r.stderr}`).toBe(2);
      expect(r.stderr, cmd).toMatch(/frobnicate/);
    }
  });

  it('run checks every option before it loads a checkpoint or opens the desktop', () => {
    const base = ['run', '--task', 'open the settings', '--checkpoint', NOWHERE];
    const cases: Array<[string[], RegExp]> = [
      [['--kv-budget', '0'], /--kv-budget '0' must be a number > 0 and <= 100/],
      [['--kv-budget', '500'], /--kv-budget '500' must be a number > 0 and <= 100/],
      [['--kv-method', 'snapkv2'], /--kv-method 'snapkv2' must be one of full, snapkv, pyramidkv, h2o, adakv, vlcache, guikv, starkv/],
      [['--history', '0'], /--history '0' must be an integer >= 1/],
      [['--max-steps', '0'], /--max-steps '0' must be an integer >= 1/],
      [['--top-p', '0'], /--top-p '0' must be a number > 0 and <= 1/],
      [['--coords', 'pixels'], /--coords 'pixels' must be one of absolute, relative1000/],
    ];
    for (const [extra, msg] of cases) {
      const r = starkv([...base, ...extra], noDisplay());
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.split('\n')[0]).not.toMatch(/no such folder|DISPLAY/); // neither the checkpoint nor the desktop was reached
    }
    // engine options with an endpoint are refused rather than silently ignored
    const ep = starkv(['run', '--task', 'x', '--endpoint', 'http://127.0.0.1:9/v1', '--model', 'm', '--kv-method', 'starkv'], noDisplay());
    expect(ep.code).toBe(2);
    expect(ep.stderr).toMatch(/--kv-method is for the in-process engine/);
  });

  it('run without a display says so before loading the model, and what to put on a virtual screen', () => {
    const r = starkv(['run', '--task', 'x', '--checkpoint', NOWHERE], noDisplay());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DISPLAY is not set/);
    expect(r.stderr).toMatch(/bare Xvfb screen is black/);
    expect(r.stderr).not.toMatch(/no such folder/);
  });

  it('episode --width/--height: synthetic screens of that size; refused beside --image or out of range', () => {
    const dir = writeTinyRealVocab(path.join(TMP, 'cli-episode-tiny'));
    const prefill = (w: number, h: number) => {
      const r = starkv(['episode', '--model', dir, '--steps', '1', '--max-new-tokens', '1', '--json', '--device', 'cpu', '--width', String(w), '--height', String(h)]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n')[0]!).prefillTokens as number;
    };
    // 224x112 is 8x4 merged 28-pixel cells, 448x224 16x8: 96 more visual tokens, the same text
    expect(prefill(448, 224) - prefill(224, 112)).toBe(96);
    const both = starkv(['episode', '--model', NOWHERE, '--image', 'a.png', '--width', '640']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--width and --height size the synthetic screens: not with --image/);
    const tiny = starkv(['episode', '--model', NOWHERE, '--height', '20']);
    expect(tiny.code).toBe(2);
    expect(tiny.stderr).toMatch(/--height '20' must be an integer >= 28 and <= 4320/);
  });

  it('episode and eval refuse bad budgets and methods before loading', () => {
    const both = starkv(['episode', '--model', NOWHERE, '--budget', '10', '--cap-tokens', '64']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give --budget or --cap-tokens, not both/);
    const m = starkv(['episode', '--model', NOWHERE, '--method', 'bogus']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--method 'bogus' must be one of/);
    const b = starkv(['eval', 'grounding', '--model', NOWHERE, '--data', NOWHERE, '--out', NOWHERE, '--budgets', '20,0']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--budgets '0' must be a number > 0 and <= 100/);
    const ms = starkv(['eval', 'grounding', '--model', NOWHERE, '--data', NOWHERE, '--out', NOWHERE, '--methods', 'starkv,fullkv']);
    expect(ms.code).toBe(2);
    expect(ms.stderr).toMatch(/--methods 'fullkv' must be one of/);
  });

  it('generate: sampling limits by their option names; --json keeps text (null without a tokenizer) and loadMs', () => {
    const bad = starkv(['generate', '--model', TINY, '--input-ids', '1,2', '--top-p', '1.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--top-p '1.5' must be a number > 0 and <= 1/);
    expect(bad.stderr).not.toMatch(/req\./);
    // a negative value after its option is checked by range, not refused as "ambiguous"
    const neg = starkv(['generate', '--model', TINY, '--input-ids', '1,2', '--temperature', '-1']);
    expect(neg.code).toBe(2);
    expect(neg.stderr).toMatch(/--temperature '-1' must be a number >= 0/);
    const r = starkv(['generate', '--model', TINY, '--input-ids', '1,2,3', '--max-new-tokens', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toHaveProperty('text', null);
    expect(j.tokens).toHaveLength(2);
    expect(j.timings.loadMs).toBeGreaterThan(0);
    expect(Object.keys(j.timings).every((k) => !k.includes('_'))).toBe(true);
  });

  it('generate piped into a reader that closes early ends quietly', async () => {
    const child = spawn(process.execPath, [BIN, 'generate', '--model', TINY, '--input-ids', '1,2,3', '--max-new-tokens', '64'], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // the reader goes away before the first write (as `| head -c 3` does after its bytes): every write fails with EPIPE
    child.stdout.destroy();
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at .*\.ts:/);
    expect(code).toBe(0);
  });

  it('parse --help answers without reading stdin; --json is accepted', async () => {
    const child = spawn(process.execPath, [BIN, 'parse', '--help'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }); // stdin stays open
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect(code).toBe(0);
    expect(out).toMatch(/usage: starkv parse --screen WxH/);
    const r = spawnSync(process.execPath, [BIN, 'parse', '--screen', '1920x1080', '--json'], { cwd: ROOT, input: "Action: click(start_box='(960,540)')", encoding: 'utf8' });
    expect(r.status, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout).actions[0]).toMatchObject({ type: 'click' });
  }, 20_000);

  it('inspect: a file instead of the folder, and a folder without preprocessor_config.json, are named', () => {
    const file = starkv(['inspect', path.join(TINY, 'config.json')]);
    expect(file.code).toBe(1);
    expect(file.stderr).toMatch(/config\.json: not a folder \(give the checkpoint folder/);
    const nopre = path.join(TMP, 'cli-usage-nopre');
    rmSync(nopre, { recursive: true, force: true });
    cpSync(TINY, nopre, { recursive: true });
    rmSync(path.join(nopre, 'preprocessor_config.json'));
    const r = starkv(['inspect', nopre]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/images +3136\.\.1003520 pixels.*\(no preprocessor_config\.json: the Qwen2-VL processor defaults/);
    expect(JSON.parse(starkv(['inspect', nopre, '--json']).stdout).preprocessorConfigFound).toBe(false);
  });

  it('serve: --port takes plain digits only, and a port in use is said so', async () => {
    for (const p of ['', '1e3', '0x50', ' 80 ', '70000']) {
      const r = starkv(['serve', '--port', p]);
      expect(r.code, p).toBe(2);
      expect(r.stderr).toMatch(/--port must be a whole number from 0 to 65535/);
    }
    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
    const port = (busy.address() as { port: number }).port;
    const rdir = path.join(TMP, 'cli-usage-renderer');
    mkdirSync(rdir, { recursive: true });
    writeFileSync(path.join(rdir, 'index.html'), '<!doctype html><title>t</title>');
    try {
      const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
        const c = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--renderer', rdir, '--config', path.join(TMP, 'cli-usage-s.json'), '--data', path.join(TMP, 'cli-usage-data')], { cwd: ROOT });
        let stderr = '';
        c.stderr.on('data', (d) => (stderr += d));
        c.on('close', (code) => res({ code, stderr }));
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      busy.close();
    }
  }, 30_000);

  it('eval fixture: --trajectories and --agentnet exclude each other; a bad JSONL line is named by number', () => {
    const r = starkv(['eval', 'fixture', path.join(TMP, 'cli-usage-fx'), '--trajectories', '--agentnet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/give --trajectories or --agentnet, not both/);
    const d = path.join(TMP, 'cli-usage-traj');
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'episodes.jsonl'), '{"id": "a", "task": "t", "steps": []}\n\n{"id": "b", oops}\n');
    expect(() => loadTrajectories(d)).toThrow(/episodes\.jsonl: not valid JSON \(line 3: /);
  });

  it('report tells an option, a missing folder and a folder that is no recording apart', () => {
    const opt = starkv(['report', '--frobnicate']);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toMatch(/unknown option '--frobnicate'/);
    const missing = starkv(['report', NOWHERE]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no such folder/);
    const empty = path.join(TMP, 'cli-usage-empty');
    mkdirSync(empty, { recursive: true });
    const notEpisode = starkv(['report', empty]);
    expect(notEpisode.code).toBe(1);
    expect(notEpisode.stderr).toMatch(/not an episode folder/);
  });
});
