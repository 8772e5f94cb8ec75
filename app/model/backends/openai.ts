// Backend for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, TGI, LM Studio, cloud APIs).
// Screenshots go to the configured base URL and nowhere else. Streams tokens, cancels on abort, retries
// transient failures a bounded number of times, and explains the usual misconfigurations.
import { BackendError, GenerationCancelled, type ChatMessage, type GenerateRequest, type GenerateResult, type ModelBackend } from './types.ts';

export interface OpenAIOptions {
  /** API root, e.g. http://127.0.0.1:8000/v1 (requests go to <baseURL>/chat/completions). */
  baseURL: string;
  model: string;
  apiKey?: string;
  /** Per-attempt limit in ms for a whole answer (default 120 s). */
  timeoutMs?: number;
  /** Further attempts after a transient failure (default 2). */
  retries?: number;
  /** Ask for a streamed answer (default true; a server that ignores it is handled). */
  stream?: boolean;
  /** Base delay of the exponential backoff, ms (default 500). */
  backoffMs?: number;
}

/** Validates and normalises a base URL. Throws for URLs that cannot work; returns warnings for odd ones. */
export function checkBaseUrl(input: string): { url: string; warnings: string[] } {
  let u: URL;
  try {
    u = new URL(input.trim());
  } catch {
    throw new BackendError(`endpoint '${input}' is not a URL (expected e.g. http://127.0.0.1:8000/v1)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BackendError(`endpoint '${input}' must start with http:// or https://`);
  const path = u.pathname.replace(/\/+$/, '');
  const bad = /\/(chat\/completions|completions|responses|models)$/.exec(path);
  if (bad) {
    const fixed = `${u.origin}${path.slice(0, bad.index)}`;
    throw new BackendError(
      `endpoint '${input}' ends in /${bad[1]}: give the API root instead (requests go to <root>/chat/completions), i.e. --endpoint ${fixed}`,
    );
  }
  const warnings: string[] = [];
  if (!/\/v\d+[a-z0-9]*$/i.test(path)) warnings.push(`endpoint '${input}' does not end in /v1 as most OpenAI-compatible servers expect; requests go to ${u.origin}${path}/chat/completions`);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  if (!loopback) warnings.push(`screenshots of your screen will be sent to ${u.host}`);
  if (u.protocol === 'http:' && !loopback) warnings.push(`endpoint ${u.host} is plain http: screenshots and the API key travel unencrypted`);
  return { url: `${u.origin}${path}`, warnings };
}

type WireContent = string | Array<{ type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } }>;

export function toWireMessages(messages: ChatMessage[]): Array<{ role: string; content: WireContent }> {
  return messages.map((m) => ({
    role: m.role,
    content:
      typeof m.content === 'string'
        ? m.content
        : m.content.map((p) =>
            p.type === 'text' ? p : { type: 'image_url' as const, image_url: { url: `data:image/png;base64,${p.image.png.toString('base64')}` } },
          ),
  }));
}

const RETRY_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new GenerationCancelled(''))), { once: true });
  });

export class OpenAIBackend implements ModelBackend {
  readonly kind = 'openai';
  readonly destination: string;
  readonly warnings: string[];
  private readonly url: string;

  constructor(private readonly opts: OpenAIOptions) {
    if (!opts.model) throw new BackendError('no model name given (--model): use the name the server serves, e.g. ui-tars-1.5-7b');
    const { url, warnings } = checkBaseUrl(opts.baseURL);
    this.destination = url;
    this.warnings = warnings;
    this.url = `${url}/chat/completions`;
  }

  /**
   * Preflight before a run: is the server there, and does it serve the model? Throws when it cannot be
   * reached; returns warnings for a model it does not list (servers without GET /models are fine).
   */
  async check(timeoutMs = 10_000): Promise<string[]> {
    let res: Response;
    try {
      res = await fetch(`${this.destination}/models`, {
        headers: this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {},
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const code = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new BackendError(`cannot reach ${this.destination}: ${code}${code === 'ECONNREFUSED' ? ' (is the server running?)' : ''}`);
    }
    if (res.status === 401 || res.status === 403) throw this.httpError(res.status, await res.text().catch(() => ''));
    if (!res.ok) return [];
    const j = (await res.json().catch(() => null)) as { data?: Array<{ id?: string }> } | null;
    const ids = (j?.data ?? []).map((m) => m.id).filter((x): x is string => typeof x === 'string');
    if (ids.length && !ids.includes(this.opts.model)) return [`the server does not list model '${this.opts.model}' (it serves: ${ids.join(', ')})`];
    return [];
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const retries = this.opts.retries ?? 2;
    let last: BackendError | null = null;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (req.signal?.aborted) throw new GenerationCancelled('');
      try {
        return await this.once(req);
      } catch (e) {
        if (e instanceof GenerationCancelled || !(e instanceof BackendError) || !e.retryable) throw e;
        last = e;
        if (attempt < retries) await sleep((this.opts.backoffMs ?? 500) * 2 ** attempt, req.signal);
      }
    }
    if (retries === 0) throw last!;
    throw new BackendError(`${last!.message} (gave up after ${retries + 1} attempts)`, last!.status, false);
  }

  private async once(req: GenerateRequest): Promise<GenerateResult> {
    const stream = this.opts.stream ?? true;
    const body = {
      model: this.opts.model,
      messages: toWireMessages(req.messages),
      max_tokens: req.maxTokens,
      temperature: req.temperature,
      ...(req.topP !== undefined ? { top_p: req.topP } : {}),
      stream,
    };
    const timeoutMs = this.opts.timeoutMs ?? 120_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
    const t0 = performance.now();
    let partial = '';
    const fail = (e: unknown): never => {
      if (req.signal?.aborted) throw new GenerationCancelled(partial);
      if (timeout.aborted) throw new BackendError(`no complete answer from ${this.url} within ${timeoutMs / 1000} s`, undefined, true);
      if (e instanceof BackendError || e instanceof GenerationCancelled) throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const code = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new BackendError(`cannot reach ${this.url}: ${code}${code === 'ECONNREFUSED' ? ' (is the server running?)' : ''}`, undefined, true);
    };
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}) },
        body: JSON.stringify(body),
        signal,
      });
    } catch (e) {
      return fail(e);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw this.httpError(res.status, text);
    }
    try {
      const ctype = res.headers.get('content-type') ?? '';
      if (!stream || !ctype.includes('text/event-stream')) {
        const j = (await res.json()) as { choices?: Array<{ message?: { content?: string }; finish_reason?: string }>; usage?: Record<string, number> };
        const c = j.choices?.[0];
        if (!c || typeof c.message?.content !== 'string') throw new BackendError(`${this.url} answered without choices[0].message.content`, res.status);
        req.onText?.(c.message.content);
        return { text: c.message.content, finishReason: finish(c.finish_reason), usage: usage(j.usage), timings: { totalMs: performance.now() - t0 } };
      }
      let reason: string | undefined;
      let use: GenerateResult['usage'];
      let first: number | undefined;
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') continue;
          const j = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>; usage?: Record<string, number>; error?: { message?: string } };
          if (j.error) throw new BackendError(`${this.url}: ${j.error.message ?? JSON.stringify(j.error)}`);
          const c = j.choices?.[0];
          const d = c?.delta?.content;
          if (d) {
            first ??= performance.now() - t0;
            partial += d;
            req.onText?.(d);
          }
          if (c?.finish_reason) reason = c.finish_reason;
          if (j.usage) use = usage(j.usage);
        }
      }
      return { text: partial, finishReason: finish(reason), usage: use, timings: { totalMs: performance.now() - t0, firstTokenMs: first } };
    } catch (e) {
      return fail(e);
    }
  }

  private httpError(status: number, body: string): BackendError {
    let msg = body.slice(0, 500);
    try {
      const j = JSON.parse(body) as { error?: { message?: string } | string; message?: string; detail?: string };
      msg = (typeof j.error === 'string' ? j.error : j.error?.message) ?? j.message ?? j.detail ?? msg;
    } catch {
      // not JSON
    }
    const where = `${status} from POST ${this.url}`;
    let hint = '';
    if (status === 404) hint = `: the endpoint must be the API root that ends in /v1 (got ${this.destination}) and the model name one the server serves (got '${this.opts.model}')`;
    else if (status === 401 || status === 403) hint = ': the endpoint rejected the credentials (set --api-key)';
    else if (status === 413) hint = ': the screenshot is larger than the server accepts (raise its payload limit, or send smaller images with --max-pixels)';
    else if (status === 400 && /image/i.test(msg)) hint = ' (for "at most N images": start vLLM with --limit-mm-per-prompt image=5, or lower --history)';
    return new BackendError(`${where}${msg ? `: ${msg}` : ' (no body)'}${hint}`, status, RETRY_STATUS.has(status));
  }
}

function finish(r: string | null | undefined): GenerateResult['finishReason'] {
  return r === 'stop' ? 'stop' : r === 'length' ? 'length' : r ? 'other' : 'stop';
}

function usage(u: Record<string, number> | undefined): GenerateResult['usage'] {
  return u ? { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens } : undefined;
}
