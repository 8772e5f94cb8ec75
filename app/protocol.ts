// The one message table between the UI and the agent host, used by both transports (WebSocket in web
// mode, IPC in Electron): commands go down, events come up. Every message is validated here, at the
// boundary; a malformed one is rejected with a reason. Screenshots travel by reference (a URL the host
// serves), never inline. Pure zod: imported by app/host, app/server, app/electron and renderer/.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

// ---------------------------------------------------------------- settings

export const KV_METHOD_NAMES = ['full', 'snapkv', 'pyramidkv', 'h2o', 'adakv', 'vlcache', 'guikv', 'starkv'] as const;
export type KvMethod = (typeof KV_METHOD_NAMES)[number];
const KvMethodSchema = z.enum(KV_METHOD_NAMES);

const ParamValue = z.union([z.number().finite(), z.boolean(), z.string().max(64)]);
export type ParamValue = z.infer<typeof ParamValue>;

const regexSource = z
  .string()
  .min(1)
  .max(500)
  .refine((s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  }, 'not a valid regular expression');

/** auto | cpu | cuda (= cuda:0) | cuda:N, as the engine and the CLI take it. */
export const DEVICE_RE = /^(auto|cpu|cuda(:\d{1,3})?)$/;

export const SettingsSchema = z.strictObject({
  model: z.strictObject({
    source: z.enum(['checkpoint', 'endpoint']),
    checkpointDir: z.string().max(4096),
    device: z.string().regex(DEVICE_RE, 'auto, cpu, cuda or cuda:N'),
    /** The CPU's prefill arithmetic for BF16 weights (Engine.load's cpuMatmul); older settings files lack it. */
    cpuMatmul: z.enum(['fp32', 'bf16', 'auto']).default('auto'),
    /** How the CPU holds the checkpoint (Engine.load's weights): mapped, resident (anonymous huge pages:
     * faster decode of large checkpoints, slower load, not evictable) or auto; older files lack it. */
    weights: z.enum(['auto', 'mapped', 'resident']).default('auto'),
    endpoint: z.strictObject({
      baseURL: z.string().max(2048),
      model: z.string().max(256),
      /** Never sent to the UI: the host replaces it with '' and sets apiKeySet. */
      apiKey: z.string().max(4096),
      apiKeySet: z.boolean(),
      timeoutS: z.number().int().min(1).max(3600),
      retries: z.number().int().min(0).max(10),
    }),
    coordSpace: z.enum(['absolute', 'relative1000']),
  }),
  kv: z.strictObject({
    method: KvMethodSchema,
    budgetPercent: z.number().min(1).max(100),
    /** Overrides of each method's hyperparameters (absent: the method's default). */
    params: z.partialRecord(KvMethodSchema, z.record(z.string().max(64), ParamValue)),
  }),
  agent: z.strictObject({
    maxSteps: z.number().int().min(1).max(10_000),
    historyImages: z.number().int().min(1).max(50),
    maxPixels: z.number().int().min(56 * 56).max(16384 * 28 * 28),
    minPixels: z.number().int().min(28 * 28).max(16384 * 28 * 28),
    maxTokens: z.number().int().min(16).max(8192),
    temperature: z.number().min(0).max(2),
    language: z.string().min(1).max(40),
    displayId: z.number().int().min(0).max(64),
  }),
  safety: z.strictObject({
    dryRun: z.boolean(),
    confirmRisky: z.boolean(),
    riskyHotkeys: z.array(z.string().min(1).max(64)).max(200),
    riskyPatterns: z.array(regexSource).max(200),
    cornerAbort: z.boolean(),
  }),
  storage: z.strictObject({
    saveEpisodes: z.boolean(),
    episodesDir: z.string().max(4096),
  }),
}).refine((s) => s.agent.minPixels <= s.agent.maxPixels, { message: 'min pixels must not exceed max pixels', path: ['agent', 'minPixels'] });
export type Settings = z.infer<typeof SettingsSchema>;

/** A method's hyperparameter, as the settings panel shows it. */
export const MethodParamSchema = z.object({
  name: z.string(),
  label: z.string(),
  kind: z.enum(['int', 'float', 'bool', 'choice']),
  default: ParamValue,
  min: z.number().optional(),
  max: z.number().optional(),
  step: z.number().optional(),
  choices: z.array(z.string()).optional(),
  help: z.string(),
});
export type MethodParam = z.infer<typeof MethodParamSchema>;
export const MethodInfoSchema = z.object({ name: KvMethodSchema, label: z.string(), summary: z.string(), params: z.array(MethodParamSchema) });
export type MethodInfo = z.infer<typeof MethodInfoSchema>;

// ---------------------------------------------------------------- actions and geometry

const Point = z.object({ x: z.number().finite(), y: z.number().finite() });
export const ActionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.enum(['click', 'left_double', 'right_single', 'hover']), point: Point }),
  z.object({ type: z.literal('drag'), from: Point, to: Point }),
  z.object({ type: z.literal('scroll'), point: Point.nullable(), direction: z.enum(['up', 'down', 'left', 'right']) }),
  z.object({ type: z.literal('hotkey'), keys: z.string() }),
  z.object({ type: z.literal('type'), text: z.string() }),
  z.object({ type: z.literal('wait') }),
  z.object({ type: z.literal('finished'), content: z.string() }),
  z.object({ type: z.literal('call_user'), content: z.string() }),
]);
export type WireAction = z.infer<typeof ActionSchema>;

const Size = z.object({ width: z.number().int().positive(), height: z.number().int().positive() });
/** How screen points map onto the screenshot: pixel = (point - origin) * injectorScale (app/agent/coords.ts). */
export const GeometrySchema = z.object({
  origin: Point,
  injectorScale: z.number().positive(),
  capture: Size,
  sent: Size,
  resized: Size,
  coordSpace: z.enum(['absolute', 'relative1000']),
});
export type Geometry = z.infer<typeof GeometrySchema>;

/** A screenshot, by reference: `url` is served by the host (same origin; token cookie). */
export const ShotRefSchema = z.object({ id: z.string().max(200), url: z.string().max(1000), width: z.number().int().positive(), height: z.number().int().positive() });
export type ShotRef = z.infer<typeof ShotRefSchema>;

// ---------------------------------------------------------------- telemetry (issue 4)

/** A frame (screenshot) in the cache: which agent step it came from and its grid of 28x28-pixel cells. */
export const KvFrameSchema = z.object({
  frame: z.number().int().min(0),
  step: z.number().int().min(0),
  rows: z.number().int().positive(),
  cols: z.number().int().positive(),
});
export const StarkvLayerStatsSchema = z.object({
  temperature: z.number().nullable(),
  normalizedEntropy: z.number().nullable(),
  lambdaEff: z.number().nullable(),
  miCur: z.array(z.number()),
  miEma: z.array(z.number()),
  groupWeights: z.array(z.number()),
  stability: z.array(z.number()),
});
export const KvLayerSchema = z.object({
  layer: z.number().int().min(0),
  /** Tokens this layer may hold after compression (window included). */
  cap: z.number().int().min(0),
  kept: z.number().int().min(0),
  keptPerFrame: z.array(z.number().int().min(0)),
  keptText: z.number().int().min(0),
  /** Per frame: a bitset (base64, LSB first) over its rows*cols cells, row-major; bit = kept. */
  cells: z.array(z.string().max(1 << 20)),
  /** Bitset over the text tokens in position order. */
  text: z.string().max(1 << 20),
  starkv: StarkvLayerStatsSchema.nullable(),
});
export const KvTelemetrySchema = z
  .object({
    step: z.number().int().min(0),
    method: KvMethodSchema,
    budgetPercent: z.number().nullable(),
    capTokens: z.number().int().nullable(),
    logicalLength: z.number().int().min(0),
    textTokens: z.number().int().min(0),
    frames: z.array(KvFrameSchema).max(1000),
    layers: z.array(KvLayerSchema).max(1000),
    kvBytes: z.number().nullable(),
    kvFullBytes: z.number().nullable(),
  })
  .superRefine((t, ctx) => {
    t.layers.forEach((l, i) => {
      if (l.keptPerFrame.length !== t.frames.length || l.cells.length !== t.frames.length)
        ctx.addIssue({ code: 'custom', path: ['layers', i], message: `layer ${l.layer}: keptPerFrame/cells need one entry per frame (${t.frames.length})` });
      l.cells.forEach((c, f) => {
        const fr = t.frames[f];
        if (fr && bitsetBytes(c) !== Math.ceil((fr.rows * fr.cols) / 8))
          ctx.addIssue({ code: 'custom', path: ['layers', i, 'cells', f], message: `bitset of frame ${f} does not hold ${fr.rows}x${fr.cols} cells` });
      });
    });
  });
export type KvTelemetry = z.infer<typeof KvTelemetrySchema>;
export type KvLayerTelemetry = z.infer<typeof KvLayerSchema>;

const MemCat = z.object({ current: z.number().min(0), peak: z.number().min(0) });
export const MemorySchema = z.object({
  /** 'cpu' | 'cuda:0' ... ; null when no engine is loaded. */
  device: z.string().nullable(),
  engine: z.object({ weights: MemCat, kv: MemCat, activations: MemCat, workspace: MemCat }).nullable(),
  /** The driver's (GPU) or the OS's (process RSS) own figure. */
  system: z.object({ label: z.string(), used: z.number().min(0), total: z.number().min(0).nullable() }),
  /** Bytes an uncompressed cache would hold at this step (every token the episode has seen). */
  kvFullBytes: z.number().min(0).nullable(),
  /** Bytes of keys and values the compressed cache holds after this step (like-for-like with kvFullBytes;
   *  engine.kv is the allocator's figure, which counts capacity). Absent in episodes recorded before it. */
  kvHeldBytes: z.number().min(0).nullable().optional(),
});
export type Memory = z.infer<typeof MemorySchema>;

/** The GPUs the engine reports here (cuda:0 .. cuda:N-1), or why there is none; and whether the CPU
 * runs the bf16 prefill path (model.cpuMatmul 'bf16'), with the kernel or why not. */
export const DevicesSchema = z.object({
  gpus: z.array(z.object({ id: z.string().regex(/^cuda:\d{1,3}$/), name: z.string().max(200), cc: z.string().max(20), totalBytes: z.number().min(0) })).max(64),
  note: z.string().max(1000).nullable(),
  cpuBf16: z.object({ available: z.boolean(), impl: z.string().max(300) }).optional(),
});
export type Devices = z.infer<typeof DevicesSchema>;

// ---------------------------------------------------------------- commands (UI -> host)

const Id = z.string().min(1).max(100);
const withRef = { ref: Id.optional() };
export const CommandSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('task.start'), task: z.string().trim().min(1, 'the task is empty').max(8000), ...withRef }),
  z.strictObject({ type: z.literal('task.pause'), ...withRef }),
  z.strictObject({ type: z.literal('task.resume'), ...withRef }),
  z.strictObject({ type: z.literal('task.stop'), ...withRef }),
  z.strictObject({ type: z.literal('confirm.reply'), requestId: Id, approve: z.boolean(), ...withRef }),
  z.strictObject({ type: z.literal('ask.reply'), requestId: Id, answer: z.string().max(8000).nullable(), ...withRef }),
  /** A deep partial of Settings; merged and then validated as a whole. `apiKey: null` clears the key. */
  z.strictObject({ type: z.literal('settings.update'), patch: z.record(z.string(), z.unknown()), ...withRef }),
  z.strictObject({ type: z.literal('settings.reset'), scope: z.union([z.literal('all'), KvMethodSchema]), ...withRef }),
  z.strictObject({ type: z.literal('checkpoint.check'), dir: z.string().min(1).max(4096), ...withRef }),
  z.strictObject({ type: z.literal('episodes.list'), ...withRef }),
  z.strictObject({ type: z.literal('episode.open'), id: z.string().regex(/^[\w.+-]{1,200}$/, 'not an episode id'), ...withRef }),
  /** The KV telemetry of one step of the live session or of an opened episode (sessionId 'episode:<id>'):
   *  a window is sent the last few steps' telemetry and an index of the others (telemetry.index). */
  z.strictObject({ type: z.literal('telemetry.get'), sessionId: z.string().min(1).max(300), step: z.number().int().min(0), ...withRef }),
  /** Writes the episode's offline HTML report (app/store/report.ts) and answers with its URL. */
  z.strictObject({ type: z.literal('episode.report'), id: z.string().regex(/^[\w.+-]{1,200}$/, 'not an episode id'), ...withRef }),
]);
export type Command = z.infer<typeof CommandSchema>;

// ---------------------------------------------------------------- events (host -> UI)

const Sid = z.string().max(100);
export const EpisodeSummarySchema = z.object({
  id: z.string(),
  task: z.string(),
  started: z.number(),
  steps: z.number().int(),
  status: z.string().nullable(),
  dryRun: z.boolean(),
});
export type EpisodeSummary = z.infer<typeof EpisodeSummarySchema>;

const SessionEnd = z.object({
  status: z.string(),
  steps: z.number().int(),
  answer: z.string().optional(),
  error: z.string().optional(),
  raw: z.string().optional(),
});

export const SessionEventSchema = z.discriminatedUnion('type', [
  /** Start was accepted: the runner is loading the model and opening the display. Stop works from here on. */
  z.object({ type: z.literal('session.starting'), sessionId: Sid, task: z.string(), t: z.number() }),
  z.object({
    type: z.literal('session.started'), sessionId: Sid, task: z.string(), dryRun: z.boolean(), backend: z.string(), destination: z.string(),
    display: z.object({ width: z.number(), height: z.number(), scale: z.number() }).nullable(), episode: z.string().nullable(), t: z.number(),
  }),
  z.object({ type: z.literal('step.started'), sessionId: Sid, step: z.number().int(), screenshot: ShotRefSchema, geometry: GeometrySchema, t: z.number() }),
  z.object({ type: z.literal('tokens'), sessionId: Sid, step: z.number().int(), delta: z.string() }),
  z.object({ type: z.literal('reply'), sessionId: Sid, step: z.number().int(), text: z.string(), attempt: z.number().int(), ms: z.number() }),
  z.object({ type: z.literal('parse.error'), sessionId: Sid, step: z.number().int(), attempt: z.number().int(), message: z.string(), raw: z.string() }),
  z.object({
    type: z.literal('action'), sessionId: Sid, step: z.number().int(), index: z.number().int(),
    /** planned: parsed and mapped; executed: sent to the input layer at exactly these points; skipped: dry run. */
    phase: z.enum(['planned', 'executed', 'skipped']), action: ActionSchema, thought: z.string(),
  }),
  z.object({ type: z.literal('step.finished'), sessionId: Sid, step: z.number().int(), t: z.number() }),
  z.object({ type: z.literal('confirm.request'), sessionId: Sid, requestId: Id, step: z.number().int(), action: ActionSchema, thought: z.string(), reasons: z.array(z.string()) }),
  z.object({ type: z.literal('ask.request'), sessionId: Sid, requestId: Id, step: z.number().int(), question: z.string() }),
  z.object({ type: z.literal('request.closed'), sessionId: Sid, requestId: Id, outcome: z.string() }),
  z.object({ type: z.literal('warning'), sessionId: Sid, step: z.number().int().nullable(), message: z.string() }),
  z.object({ type: z.literal('session.paused'), sessionId: Sid }),
  z.object({ type: z.literal('session.resumed'), sessionId: Sid }),
  z.object({ type: z.literal('session.ended'), sessionId: Sid, result: SessionEnd, t: z.number() }),
  z.object({ type: z.literal('telemetry.kv'), sessionId: Sid, data: KvTelemetrySchema }),
  /** Every step of the session that has KV telemetry; those not sent along are fetched with telemetry.get. */
  z.object({ type: z.literal('telemetry.index'), sessionId: Sid, steps: z.array(z.number().int().min(0)).max(1_000_000) }),
  z.object({ type: z.literal('memory'), sessionId: Sid.nullable(), step: z.number().int().nullable(), data: MemorySchema }),
]);
export type SessionEvent = z.infer<typeof SessionEventSchema>;

export const EventSchema = z.union([
  SessionEventSchema,
  z.discriminatedUnion('type', [
    z.object({
      type: z.literal('hello'), protocol: z.literal(PROTOCOL_VERSION), mode: z.enum(['web', 'electron']), settings: SettingsSchema,
      methods: z.array(MethodInfoSchema), configFile: z.string(), live: z.boolean(), devices: DevicesSchema,
    }),
    z.object({ type: z.literal('settings'), settings: SettingsSchema, ref: Id.optional() }),
    z.object({ type: z.literal('checkpoint.result'), dir: z.string(), ok: z.boolean(), summary: z.string().optional(), error: z.string().optional(), ref: Id.optional() }),
    z.object({ type: z.literal('episodes'), root: z.string(), items: z.array(EpisodeSummarySchema), ref: Id.optional() }),
    z.object({ type: z.literal('episode'), id: z.string(), events: z.array(SessionEventSchema), ref: Id.optional() }),
    z.object({ type: z.literal('episode.report'), id: z.string(), url: z.string(), ref: Id.optional() }),
    z.object({ type: z.literal('ack'), ref: Id, command: z.string() }),
    z.object({ type: z.literal('rejected'), reason: z.string(), ref: Id.optional() }),
    z.object({ type: z.literal('error'), message: z.string(), ref: Id.optional() }),
  ]),
]);
export type HostEvent = z.infer<typeof EventSchema>;

// ---------------------------------------------------------------- boundary helpers

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function reasonOf(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message))
    .join('; ');
}

const MAX_MESSAGE_CHARS = 1 << 20;

/** Parses one command from the wire (a JSON string, or an already-decoded value over IPC). Never throws. */
export function parseCommand(raw: unknown): Parsed<Command> {
  let v = raw;
  if (typeof raw === 'string') {
    if (raw.length > MAX_MESSAGE_CHARS) return { ok: false, reason: `message too large (${raw.length} characters; limit ${MAX_MESSAGE_CHARS})` };
    try {
      v = JSON.parse(raw);
    } catch (e) {
      return { ok: false, reason: `not JSON: ${(e as Error).message}` };
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, reason: 'a command must be a JSON object with a "type"' };
  const type = (v as { type?: unknown }).type;
  if (typeof type !== 'string') return { ok: false, reason: 'a command needs a string "type"' };
  const r = CommandSchema.safeParse(v);
  if (!r.success) {
    const known = CommandSchema.options.some((o) => o.shape.type.value === type);
    return { ok: false, reason: known ? `${type}: ${reasonOf(r.error.issues)}` : `unknown command type '${type.slice(0, 60)}'` };
  }
  return { ok: true, value: r.data };
}

/** Validates an event (the UI checks what it receives; the host checks what it sends in tests). */
export function parseEvent(raw: unknown): Parsed<HostEvent> {
  const r = EventSchema.safeParse(raw);
  return r.success ? { ok: true, value: r.data } : { ok: false, reason: reasonOf(r.error.issues) };
}

export function parseSettings(raw: unknown): Parsed<Settings> {
  const r = SettingsSchema.safeParse(raw);
  return r.success ? { ok: true, value: r.data } : { ok: false, reason: reasonOf(r.error.issues) };
}

export function parseTelemetry(raw: unknown): Parsed<KvTelemetry> {
  const r = KvTelemetrySchema.safeParse(raw);
  return r.success ? { ok: true, value: r.data } : { ok: false, reason: reasonOf(r.error.issues) };
}

// ---------------------------------------------------------------- bitsets (kept cells / text tokens)

function bitsetBytes(b64: string): number {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

/** Packs booleans (LSB first) into base64. Works in Node and in the browser. */
export function encodeBits(bits: ArrayLike<boolean | number>): string {
  const bytes = new Uint8Array(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i]) bytes[i >> 3]! |= 1 << (i & 7);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

export function decodeBits(b64: string, n: number): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (s.charCodeAt(i >> 3) >> (i & 7)) & 1;
  return out;
}
