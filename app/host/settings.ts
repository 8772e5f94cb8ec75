// Settings: defaults, the config file the host owns (JSON, written atomically, mode 0600 since it may
// hold an API key), and patches from the UI (deep-merged, then validated as a whole, method parameters
// checked against the method table). The API key never leaves the host: the UI sees apiKeySet only.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KV_METHOD_NAMES, parseSettings, type KvMethod, type Settings } from '../protocol.ts';
import { checkMethodParams } from './kv-methods.ts';

/** UI-TARS-1.5 limits (app/agent/coords.ts UITARS_LIMITS). */
const MIN_PIXELS = 100 * 28 * 28;
const MAX_PIXELS = 16384 * 28 * 28;

export function defaultDataDir(): string {
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'starkv');
}

export function defaultConfigFile(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'starkv', 'settings.json');
}

export function defaultSettings(dataDir = defaultDataDir()): Settings {
  return {
    model: {
      source: 'checkpoint', // the in-process engine: the folder is picked in Settings (a task without one says so)
      checkpointDir: '',
      device: 'auto',
      cpuMatmul: 'auto', // bf16 prefill where the CPU has the kernels: what an agent step waits on
      weights: 'auto',
      endpoint: { baseURL: 'http://127.0.0.1:8000/v1', model: 'ui-tars-1.5-7b', apiKey: '', apiKeySet: false, timeoutS: 120, retries: 2 },
      coordSpace: 'absolute',
    },
    kv: { method: 'starkv', budgetPercent: 20, params: {} },
    agent: { maxSteps: 100, historyImages: 5, maxPixels: MAX_PIXELS, minPixels: MIN_PIXELS, maxTokens: 500, temperature: 0, language: 'English', displayId: 0 },
    safety: {
      dryRun: true,
      confirmRisky: true,
      riskyHotkeys: [
        'alt f4', 'ctrl w', 'ctrl q', 'ctrl shift w', 'ctrl shift q', 'super q', 'super w', 'delete', 'shift delete',
        'ctrl delete', 'ctrl shift delete', 'super backspace', 'ctrl alt delete', 'ctrl alt backspace',
      ],
      riskyPatterns: [
        '(^|[\\s;&|(`$])rm\\s', '(^|[\\s;&|(`$])sudo\\b', '(^|[\\s;&|(`$])(su|doas|pkexec)\\s', '(^|[\\s;&|(`$])(mkfs(\\.\\w+)?|fdisk|parted|wipefs|shred)\\b',
        '(^|[\\s;&|(`$])dd\\s+.*\\bof=', '(^|[\\s;&|(`$])(shutdown|reboot|poweroff|halt)\\b', '\\b(curl|wget)\\b[^|\\n]*\\|\\s*(sudo\\s+)?(ba|z)?sh\\b',
        '\\bgit\\s+(push\\s+(-f|--force)|reset\\s+--hard|clean\\s+-[a-z]*f)', '\\bDROP\\s+(TABLE|DATABASE)\\b',
      ],
      cornerAbort: true,
    },
    storage: { saveEpisodes: true, episodesDir: path.join(dataDir, 'episodes') },
  };
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge for plain objects; arrays and scalars replace. */
export function deepMerge<T>(base: T, patch: unknown): T {
  if (!isPlain(base) || !isPlain(patch)) return (patch === undefined ? base : patch) as T;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k], v) : v;
  }
  return out as T;
}

export type SettingsResult = { ok: true; settings: Settings } | { ok: false; reason: string };

/** Validates settings as a whole, including each method's parameter overrides. */
export function validateSettings(candidate: unknown): SettingsResult {
  const r = parseSettings(candidate);
  if (!r.ok) return { ok: false, reason: r.reason };
  const problems: string[] = [];
  for (const [m, params] of Object.entries(r.value.kv.params)) problems.push(...checkMethodParams(m as KvMethod, params ?? {}));
  if (problems.length) return { ok: false, reason: problems.join('; ') };
  return { ok: true, settings: r.value };
}

/** What the UI may see: the API key replaced by whether one is set. */
export function publicSettings(s: Settings): Settings {
  return { ...s, model: { ...s.model, endpoint: { ...s.model.endpoint, apiKey: '', apiKeySet: s.model.endpoint.apiKey.length > 0 } } };
}

export class SettingsStore {
  private current: Settings;
  /** Set when the file could not be read and defaults were used instead. */
  readonly loadWarning: string | null = null;

  constructor(
    readonly file: string,
    private readonly defaults: Settings = defaultSettings(),
  ) {
    this.current = structuredClone(defaults);
    if (existsSync(file)) {
      let warning: string | null = null;
      try {
        const raw = JSON.parse(readFileSync(file, 'utf8'));
        // Merge over defaults so that settings added in later versions get their defaults.
        const r = validateSettings(deepMerge(structuredClone(defaults), raw));
        if (r.ok) this.current = r.settings;
        else warning = `${file}: ${r.reason}`;
      } catch (e) {
        warning = `${file}: ${(e as Error).message}`;
      }
      if (warning) {
        const backup = `${file}.bad-${Date.now()}`;
        try {
          renameSync(file, backup);
          warning += `; kept it as ${backup} and started from the defaults`;
        } catch {
          warning += '; using the defaults';
        }
        this.loadWarning = warning;
      }
    }
  }

  get(): Settings {
    return structuredClone(this.current);
  }

  /** Applies a patch from the UI; on success saves and returns the new settings. Never throws on bad input. */
  update(patch: Record<string, unknown>): SettingsResult {
    const p = structuredClone(patch) as Plain;
    const ep = isPlain(p.model) && isPlain(p.model.endpoint) ? (p.model.endpoint as Plain) : null;
    if (ep) {
      delete ep.apiKeySet;
      if (ep.apiKey === null) ep.apiKey = '';
      else if (ep.apiKey === '' || ep.apiKey === undefined) delete ep.apiKey; // '' from the UI means "unchanged"
    }
    const merged = deepMerge(this.get(), p);
    if (isPlain(merged) && isPlain((merged as Settings).kv) && isPlain((merged as Settings).kv.params)) {
      // `params.<method> = null` from the UI removes that method's overrides
      const params = (merged as Settings).kv.params as Plain;
      for (const k of Object.keys(params)) if (params[k] === null) delete params[k];
      for (const m of Object.keys(params)) {
        const one = params[m];
        if (isPlain(one)) for (const k of Object.keys(one)) if (one[k] === null) delete one[k];
      }
    }
    const r = validateSettings(merged);
    if (!r.ok) return r;
    r.settings.model.endpoint.apiKeySet = r.settings.model.endpoint.apiKey.length > 0;
    this.current = r.settings;
    this.save();
    return { ok: true, settings: this.get() };
  }

  /** Resets everything, or one method's hyperparameters, to the defaults. */
  reset(scope: 'all' | KvMethod): Settings {
    if (scope === 'all') {
      const key = this.current.model.endpoint.apiKey;
      this.current = structuredClone(this.defaults);
      this.current.model.endpoint.apiKey = key; // a reset does not silently drop the user's key
      this.current.model.endpoint.apiKeySet = key.length > 0;
    } else if ((KV_METHOD_NAMES as readonly string[]).includes(scope)) {
      delete this.current.kv.params[scope];
    }
    this.save();
    return this.get();
  }

  private save(): void {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.current, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
