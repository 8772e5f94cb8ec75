// Settings: model source (checkpoint checked on the spot by the engine, or an OpenAI-compatible endpoint),
// device, compression method, budget and hyperparameters, agent limits, safety and storage. Every change
// is sent to the host, which validates, saves and applies it from the next step.
import type { Devices, KvMethod, MethodParam, ParamValue, Settings } from '../../../app/protocol.ts';
import { LinesInput, NumberInput, Row, Select, Slider, TextInput, Toggle } from '../components/Fields.tsx';
import { newRef, useApp } from '../store.ts';

type Patch = Record<string, unknown>;

function useCommit() {
  const send = useApp((s) => s.send);
  return (patch: Patch) => send({ type: 'settings.update', patch, ref: newRef('settings') });
}

function ParamField({ method, p, value, overridden }: { method: KvMethod; p: MethodParam; value: ParamValue; overridden: boolean }) {
  const commit = useCommit();
  const set = (v: ParamValue | null) => commit({ kv: { params: { [method]: { [p.name]: v } } } });
  return (
    <Row label={p.label} hint={<>{p.help} <span className="muted">Default {String(p.default)}.</span></>}>
      {p.kind === 'bool' ? (
        <Toggle value={value as boolean} onChange={set} testId={`param-${p.name}`} />
      ) : p.kind === 'choice' ? (
        <Select value={String(value)} options={p.choices!.map((c) => [c, c] as [string, string])} onChange={set} testId={`param-${p.name}`} />
      ) : (
        <NumberInput value={value as number} min={p.min} max={p.max} step={p.kind === 'int' ? 1 : p.step} onCommit={set} testId={`param-${p.name}`} />
      )}
      {overridden && (
        <button className="btn tiny" title="back to the default" onClick={() => set(null)}>
          ↺
        </button>
      )}
    </Row>
  );
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(0)} GiB`;

/** auto, cpu and every GPU the engine reports (cuda:0 .. cuda:N-1); a saved GPU not found here stays listed, marked. */
export function deviceOptions(current: string, d: Devices): Array<[string, string]> {
  const opts: Array<[string, string]> = [['auto', d.gpus.length ? `Automatic (${d.gpus[0]!.id})` : 'Automatic (CPU here)'], ['cpu', 'CPU']];
  for (const g of d.gpus) opts.push([g.id, `${g.id} · ${g.name} · ${gib(g.totalBytes)}`]);
  const cur = current === 'cuda' ? 'cuda:0' : current;
  if (!opts.some(([v]) => v === cur)) opts.push([cur, `${cur} (not found here: runs on the CPU)`]);
  return opts;
}

function deviceHint(d: Devices): string {
  return d.gpus.length
    ? `Automatic uses ${d.gpus[0]!.id}; or pick the GPU. A GPU that cannot be used falls back to the CPU with a warning.`
    : `No GPU here (${d.note ?? 'none reported'}): the engine runs on the CPU.`;
}

function cpuMatmulHint(d: Devices): string {
  const what =
    'On the CPU, BF16 weights: fp32 (the exact arithmetic), bf16 (prefill matmuls and attention bf16 x bf16 with fp32 accumulation: prefill about 1.6-1.9x faster on CPUs with AVX512-BF16, about 2.4x with AMX) or auto (bf16 where the CPU has it). Reloads the engine from the next step.';
  if (!d.cpuBf16) return what;
  return d.cpuBf16.available ? `${what} This CPU has it (${d.cpuBf16.impl}).` : `${what} This CPU has not (${d.cpuBf16.impl}): bf16 is refused, auto runs fp32.`;
}

function ModelSection({ s }: { s: Settings }) {
  const commit = useCommit();
  const send = useApp((x) => x.send);
  const ck = useApp((x) => x.checkpoint);
  const pending = useApp((x) => x.checkpointPending);
  const check = (dir: string) => {
    if (!dir.trim()) return;
    useApp.setState({ checkpointPending: true });
    send({ type: 'checkpoint.check', dir, ref: newRef('ckpt') });
  };
  const m = s.model;
  const devices = useApp((x) => x.devices);
  return (
    <section className="card settings-section">
      <h3>Model</h3>
      <Row label="Source">
        <Select value={m.source} options={[['endpoint', 'OpenAI-compatible endpoint'], ['checkpoint', 'Checkpoint folder (in-process engine)']]} onChange={(v) => commit({ model: { source: v } })} testId="model-source" />
      </Row>
      {m.source === 'checkpoint' ? (
        <>
          <Row label="Checkpoint folder" hint="A Hugging Face folder: config.json, *.safetensors, tokenizer files.">
            <TextInput value={m.checkpointDir} wide placeholder="/path/to/UI-TARS-1.5-7B" testId="checkpoint-dir" onCommit={(v) => (commit({ model: { checkpointDir: v } }), check(v))} />
            <button className="btn small" onClick={() => check(m.checkpointDir)} disabled={!m.checkpointDir || pending}>
              {pending ? 'Checking…' : 'Check'}
            </button>
          </Row>
          {ck && (
            <div className={`check ${ck.ok ? 'ok' : 'bad'}`} data-testid="checkpoint-result">
              {ck.ok ? `✓ ${ck.summary}` : `✗ ${ck.error}`}
            </div>
          )}
          <Row label="Device" hint={deviceHint(devices)}>
            <Select value={m.device === 'cuda' ? 'cuda:0' : m.device} options={deviceOptions(m.device, devices)} onChange={(v) => commit({ model: { device: v } })} testId="model-device" />
          </Row>
          <Row label="CPU matmul" hint={cpuMatmulHint(devices)}>
            <Select value={m.cpuMatmul} options={[['fp32', 'fp32 (exact)'], ['bf16', 'bf16 (faster prefill)'], ['auto', 'auto']]} onChange={(v) => commit({ model: { cpuMatmul: v as 'fp32' | 'bf16' | 'auto' } })} testId="model-cpu-matmul" />
          </Row>
          <Row label="Weights (CPU)" hint="mapped (the page cache: shared, evictable, fast to load), resident (read into huge pages at load: about 2x faster decode of a 7B model, a slower load, memory not given back until the engine is freed) or auto (resident when twice the checkpoint fits in free memory with 4 GiB to spare). Reloads the engine from the next step.">
            <Select value={m.weights} options={[['auto', 'auto'], ['mapped', 'mapped'], ['resident', 'resident (faster decode)']]} onChange={(v) => commit({ model: { weights: v as 'auto' | 'mapped' | 'resident' } })} testId="model-weights" />
          </Row>
        </>
      ) : (
        <>
          <Row label="Base URL" hint="The API root; requests go to <root>/chat/completions. Screenshots are sent there.">
            <TextInput value={m.endpoint.baseURL} wide testId="endpoint-url" onCommit={(v) => commit({ model: { endpoint: { baseURL: v } } })} />
          </Row>
          <Row label="Model name">
            <TextInput value={m.endpoint.model} testId="endpoint-model" onCommit={(v) => commit({ model: { endpoint: { model: v } } })} />
          </Row>
          <Row label="API key" hint="Stored in the settings file on this machine (readable by you only); never shown again.">
            <TextInput value="" type="password" placeholder={m.endpoint.apiKeySet ? '•••••••• (set)' : 'none'} onCommit={(v) => v && commit({ model: { endpoint: { apiKey: v } } })} />
            {m.endpoint.apiKeySet && (
              <button className="btn tiny" onClick={() => commit({ model: { endpoint: { apiKey: null } } })}>
                Clear
              </button>
            )}
          </Row>
          <Row label="Timeout (s) / retries">
            <NumberInput value={m.endpoint.timeoutS} min={1} max={3600} step={1} onCommit={(v) => commit({ model: { endpoint: { timeoutS: v } } })} />
            <NumberInput value={m.endpoint.retries} min={0} max={10} step={1} onCommit={(v) => commit({ model: { endpoint: { retries: v } } })} />
          </Row>
        </>
      )}
      <Row label="Coordinates" hint="UI-TARS-1.5 answers in pixels of the image it saw; 1.0 and Doubao in 0–1000.">
        <Select value={m.coordSpace} options={[['absolute', 'Absolute (UI-TARS-1.5)'], ['relative1000', 'Relative 0–1000']]} onChange={(v) => commit({ model: { coordSpace: v } })} />
      </Row>
    </section>
  );
}

function CompressionSection({ s }: { s: Settings }) {
  const commit = useCommit();
  const send = useApp((x) => x.send);
  const methods = useApp((x) => x.methods);
  const info = methods.find((m) => m.name === s.kv.method);
  const overrides = s.kv.params[s.kv.method] ?? {};
  return (
    <section className="card settings-section">
      <h3>KV cache compression</h3>
      <p className="muted small">Used by the in-process engine; a remote endpoint manages its own cache.</p>
      <Row label="Method" hint={info?.summary}>
        <Select value={s.kv.method} options={methods.map((m) => [m.name, m.label] as [KvMethod, string])} onChange={(v) => commit({ kv: { method: v } })} testId="kv-method" />
      </Row>
      <Row label="Budget" hint="Tokens kept per layer, as a share of what the prompt holds at this step (window included).">
        <Slider value={s.kv.budgetPercent} min={1} max={100} step={1} format={(v) => `${v}%`} onCommit={(v) => commit({ kv: { budgetPercent: v } })} testId="kv-budget" />
      </Row>
      {info && info.params.length > 0 && (
        <details className="params" open={Object.keys(overrides).length > 0}>
          <summary>
            {info.label} hyperparameters {Object.keys(overrides).length > 0 && <span className="badge">{Object.keys(overrides).length} changed</span>}
          </summary>
          {info.params.map((p) => (
            <ParamField key={p.name} method={info.name} p={p} value={overrides[p.name] ?? p.default} overridden={p.name in overrides} />
          ))}
          <div className="row end">
            <button className="btn small" data-testid="reset-method" onClick={() => send({ type: 'settings.reset', scope: info.name, ref: newRef('settings') })} disabled={!Object.keys(overrides).length}>
              Reset {info.label} to defaults
            </button>
          </div>
        </details>
      )}
    </section>
  );
}

function AgentSection({ s }: { s: Settings }) {
  const commit = useCommit();
  const a = s.agent;
  const set = (k: keyof Settings['agent']) => (v: number | string) => commit({ agent: { [k]: v } });
  return (
    <section className="card settings-section">
      <h3>Agent</h3>
      <Row label="Screenshot history" hint="Screenshots kept in each prompt (the text history is always kept).">
        <NumberInput value={a.historyImages} min={1} max={50} step={1} onCommit={set('historyImages')} testId="history-images" />
      </Row>
      <Row label="Max steps">
        <NumberInput value={a.maxSteps} min={1} max={10000} step={1} onCommit={set('maxSteps')} testId="max-steps" />
      </Row>
      <Row label="Max pixels" hint={`Screenshots are resized to at most this many pixels (${Math.round(a.maxPixels / 784)} visual tokens).`}>
        <NumberInput value={a.maxPixels} min={3136} max={16384 * 784} step={1} onCommit={set('maxPixels')} testId="max-pixels" />
      </Row>
      <Row label="Min pixels">
        <NumberInput value={a.minPixels} min={784} max={16384 * 784} step={1} onCommit={set('minPixels')} />
      </Row>
      <Row label="Max tokens per reply / temperature">
        <NumberInput value={a.maxTokens} min={16} max={8192} step={1} onCommit={set('maxTokens')} testId="max-tokens" />
        <NumberInput value={a.temperature} min={0} max={2} step={0.05} onCommit={set('temperature')} />
      </Row>
      <Row label="Thought language">
        <TextInput value={a.language} onCommit={set('language')} />
      </Row>
      <Row label="Display" hint="Monitor index on this X screen.">
        <NumberInput value={a.displayId} min={0} max={64} step={1} onCommit={set('displayId')} />
      </Row>
    </section>
  );
}

function SafetySection({ s }: { s: Settings }) {
  const commit = useCommit();
  const f = s.safety;
  const set = (k: keyof Settings['safety']) => (v: unknown) => commit({ safety: { [k]: v } });
  return (
    <section className="card settings-section">
      <h3>Safety</h3>
      <Row label="Dry run" hint="Plan and draw actions without sending any input. Turning it on applies at once; off, from the next task.">
        <Toggle value={f.dryRun} onChange={set('dryRun')} testId="dry-run" />
      </Row>
      <Row label="Stop when the mouse hits a screen corner">
        <Toggle value={f.cornerAbort} onChange={set('cornerAbort')} />
      </Row>
      <Row label="Ask before risky actions">
        <Toggle value={f.confirmRisky} onChange={set('confirmRisky')} testId="confirm-risky" />
      </Row>
      <Row label="Risky hotkeys" hint="One per line, e.g. “ctrl w”.">
        <LinesInput value={f.riskyHotkeys} onCommit={set('riskyHotkeys')} />
      </Row>
      <Row label="Risky typed text" hint="Regular expressions, one per line; typed text that matches needs your confirmation.">
        <LinesInput value={f.riskyPatterns} onCommit={set('riskyPatterns')} rows={5} />
      </Row>
    </section>
  );
}

function StorageSection({ s }: { s: Settings }) {
  const commit = useCommit();
  return (
    <section className="card settings-section">
      <h3>Episodes</h3>
      <Row label="Save episodes" hint="Screenshots, model replies and actions of every step, written as they happen.">
        <Toggle value={s.storage.saveEpisodes} onChange={(v) => commit({ storage: { saveEpisodes: v } })} />
      </Row>
      <Row label="Folder">
        <TextInput value={s.storage.episodesDir} wide onCommit={(v) => commit({ storage: { episodesDir: v } })} />
      </Row>
    </section>
  );
}

export function SettingsView() {
  const s = useApp((x) => x.settings)!;
  const error = useApp((x) => x.settingsError);
  const savedAt = useApp((x) => x.savedAt);
  const configFile = useApp((x) => x.configFile);
  const live = useApp((x) => x.live);
  return (
    <div className="settings" data-testid="settings-view">
      <div className="settings-status">
        {error ? (
          <div className="check bad" data-testid="settings-error">{error}</div>
        ) : (
          <div className="muted small" data-testid="settings-saved">
            {savedAt ? `Saved ${new Date(savedAt).toLocaleTimeString()} to ${configFile}` : `Settings file: ${configFile}`}
            {live && live.status !== 'ended' && ' · changes apply from the next step'}
          </div>
        )}
      </div>
      <div className="settings-grid">
        <ModelSection s={s} />
        <CompressionSection s={s} />
        <AgentSection s={s} />
        <SafetySection s={s} />
        <StorageSection s={s} />
      </div>
    </div>
  );
}
