// Settings persistence: patches are validated as a whole, saved atomically to the host's config file
// (0600), survive a restart, method hyperparameters are checked and reset, the API key never reaches
// the UI, and a corrupt file is set aside rather than crashing the host.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { effectiveParams, METHODS } from '../../app/host/kv-methods.ts';
import { defaultSettings, publicSettings, SettingsStore } from '../../app/host/settings.ts';
import { KV_METHOD_NAMES } from '../../app/protocol.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'starkv-settings-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('SettingsStore', () => {
  it('starts from the defaults, saves a patch, and reads it back after a restart', () => {
    const dir = tmp();
    const file = path.join(dir, 'cfg', 'settings.json');
    const a = new SettingsStore(file, defaultSettings(dir));
    expect(a.get().kv).toEqual({ method: 'starkv', budgetPercent: 20, params: {} });
    expect(existsSync(file)).toBe(false);
    const r = a.update({ kv: { budgetPercent: 10, method: 'snapkv', params: { starkv: { lambda: 0.25 } } }, agent: { maxSteps: 7 } });
    expect(r.ok).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const b = new SettingsStore(file, defaultSettings(dir));
    expect(b.loadWarning).toBeNull();
    expect(b.get().kv).toEqual({ method: 'snapkv', budgetPercent: 10, params: { starkv: { lambda: 0.25 } } });
    expect(b.get().agent.maxSteps).toBe(7);
    expect(b.get().agent.historyImages).toBe(5); // untouched fields keep their values
  });

  it('rejects invalid patches with a reason and leaves the file unchanged', () => {
    const dir = tmp();
    const file = path.join(dir, 'settings.json');
    const s = new SettingsStore(file, defaultSettings(dir));
    s.update({ agent: { maxSteps: 9 } });
    const before = readFileSync(file, 'utf8');
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ kv: { budgetPercent: 0 } }, /kv\.budgetPercent/],
      [{ kv: { method: 'zip' } }, /kv\.method/],
      [{ agent: { maxSteps: 2.5 } }, /agent\.maxSteps/],
      [{ agent: { minPixels: 200000, maxPixels: 100000 } }, /min pixels must not exceed max pixels/],
      [{ safety: { riskyPatterns: ['(unclosed'] } }, /not a valid regular expression/],
      [{ kv: { params: { starkv: { lambda: 3 } } } }, /λ.*within \[0, 1\]/],
      [{ kv: { params: { snapkv: { lambda: 0.5 } } } }, /SnapKV has no parameter 'lambda'/],
      [{ kv: { params: { adakv: { window: 2.5 } } } }, /whole number/],
      [{ kv: { params: { guikv: { pooling: 'median' } } } }, /one of avgpool, maxpool/],
      [{ model: { source: 'cloud' } }, /model\.source/],
      [{ surprise: true }, /surprise/],
    ];
    for (const [patch, re] of cases) {
      const r = s.update(patch);
      expect(r.ok, JSON.stringify(patch)).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(re);
    }
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(s.get().agent.maxSteps).toBe(9);
  });

  it('removes one override with null and resets a method to its defaults', () => {
    const dir = tmp();
    const s = new SettingsStore(path.join(dir, 's.json'), defaultSettings(dir));
    s.update({ kv: { params: { starkv: { lambda: 0.3, temporal: false }, snapkv: { window: 16 } } } });
    s.update({ kv: { params: { starkv: { lambda: null } } } });
    expect(s.get().kv.params).toEqual({ starkv: { temporal: false }, snapkv: { window: 16 } });
    s.reset('starkv');
    expect(s.get().kv.params).toEqual({ snapkv: { window: 16 } });
    expect(effectiveParams('starkv', s.get().kv.params.starkv).temporal).toBe(true);
    s.reset('all');
    expect(s.get().kv.params).toEqual({});
  });

  it('keeps the API key on the host: never in what the UI sees; "" keeps it, null clears it', () => {
    const dir = tmp();
    const file = path.join(dir, 's.json');
    const s = new SettingsStore(file, defaultSettings(dir));
    s.update({ model: { endpoint: { apiKey: 'sk-secret', apiKeySet: false } } });
    expect(s.get().model.endpoint.apiKey).toBe('sk-secret');
    const pub = publicSettings(s.get());
    expect(JSON.stringify(pub)).not.toContain('sk-secret');
    expect(pub.model.endpoint.apiKeySet).toBe(true);
    s.update({ model: { endpoint: { apiKey: '', baseURL: 'http://127.0.0.1:9/v1' } } });
    expect(s.get().model.endpoint.apiKey).toBe('sk-secret');
    s.update({ model: { endpoint: { apiKey: null } } });
    expect(s.get().model.endpoint.apiKey).toBe('');
    expect(publicSettings(s.get()).model.endpoint.apiKeySet).toBe(false);
  });

  it('sets a corrupt or invalid file aside and starts from the defaults', () => {
    for (const content of ['{ not json', JSON.stringify({ kv: { budgetPercent: -5 } })]) {
      const dir = tmp();
      const file = path.join(dir, 's.json');
      writeFileSync(file, content);
      const s = new SettingsStore(file, defaultSettings(dir));
      expect(s.loadWarning).toMatch(/kept it as .*s\.json\.bad-\d+/);
      expect(s.get().kv.budgetPercent).toBe(20);
      expect(readdirSync(dir).some((n) => n.startsWith('s.json.bad-'))).toBe(true);
    }
  });

  it('fills settings added in later versions from the defaults', () => {
    const dir = tmp();
    const file = path.join(dir, 's.json');
    writeFileSync(file, JSON.stringify({ kv: { method: 'h2o', budgetPercent: 40, params: {} } }));
    const s = new SettingsStore(file, defaultSettings(dir));
    expect(s.loadWarning).toBeNull();
    expect(s.get().kv.method).toBe('h2o');
    expect(s.get().safety.dryRun).toBe(true);
    expect(s.get().model.cpuMatmul).toBe('auto');
    expect(s.get().model.weights).toBe('auto');
  });
});

describe('method table', () => {
  it('lists every engine method once with defaults inside their ranges', () => {
    expect(METHODS.map((m) => m.name).sort()).toEqual([...KV_METHOD_NAMES].sort());
    for (const m of METHODS) {
      for (const p of m.params) {
        if (p.kind === 'int' || p.kind === 'float') expect(p.default as number).toBeGreaterThanOrEqual(p.min!), expect(p.default as number).toBeLessThanOrEqual(p.max!);
        if (p.kind === 'choice') expect(p.choices).toContain(p.default);
      }
    }
  });

  it('has the STaR-KV defaults of spec §2.4 (SSP repro script)', () => {
    expect(effectiveParams('starkv')).toMatchObject({
      window: 8, kernel: 5, pooling: 'avgpool', alpha: 2, saliency_temperature: 3.5, lambda: 0.5, profile_steps: 5, mi_decay: 0.9, mi_tau: 1,
      lambda_ramp_steps: 10, temporal: true, temporal_delta: 0.1, temporal_rho: 0.9, temporal_eps: 0, temporal_discount_min: 0, temporal_warmup: 0,
      aeb: true, aeb_min: 0.75, aeb_max: 1.25, aeb_smooth: 0, mi_true_grid: false, per_query_head: false, vlcache_layer_budgets: false,
    });
  });
});
