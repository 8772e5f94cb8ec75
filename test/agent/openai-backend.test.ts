// The OpenAI-compatible backend against a real local HTTP server with a scripted model.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBaseUrl, OpenAIBackend } from '../../app/model/backends/openai.ts';
import { BackendError, GenerationCancelled, type ChatMessage } from '../../app/model/backends/types.ts';
import { PageServer } from './helpers/page-server.ts';

let srv: PageServer;
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
beforeAll(async () => {
  srv = await PageServer.start();
});
afterAll(async () => {
  await srv.close();
});

const image = { id: 'step-1', png: Buffer.from('\x89PNG fake'), width: 1280, height: 800, resized: { width: 1288, height: 812 } };
const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'prompt' },
  { role: 'user', content: [{ type: 'image', image }] },
];
const backend = (extra: Partial<ConstructorParameters<typeof OpenAIBackend>[0]> = {}) =>
  new OpenAIBackend({ baseURL: srv.endpoint, model: 'ui-tars-1.5-7b', backoffMs: 10, ...extra });

describe('base URL checks', () => {
  it('refuses a URL that already names the chat/completions endpoint, and says what to use', () => {
    expect(() => checkBaseUrl('http://127.0.0.1:8000/v1/chat/completions')).toThrow(/ends in \/chat\/completions.*--endpoint http:\/\/127\.0\.0\.1:8000\/v1$/);
    expect(() => checkBaseUrl('localhost:8000/v1')).toThrow(/http:\/\/ or https:\/\//);
    expect(() => checkBaseUrl('not a url')).toThrow(/not a URL/);
  });

  it('warns about a missing /v1 and about screenshots leaving the machine', () => {
    expect(checkBaseUrl('http://127.0.0.1:8000/v1/')).toEqual({ url: 'http://127.0.0.1:8000/v1', warnings: [] });
    expect(checkBaseUrl('http://127.0.0.1:8000').warnings.join()).toMatch(/does not end in \/v1/);
    const remote = checkBaseUrl('http://gpu-box:8000/v1').warnings.join('\n');
    expect(remote).toMatch(/screenshots of your screen will be sent to gpu-box:8000/);
    expect(remote).toMatch(/plain http/);
    expect(checkBaseUrl('https://ark.example.com/api/v3').warnings).toEqual(['screenshots of your screen will be sent to ark.example.com']);
  });
});

describe('generate', () => {
  it('streams the answer and sends the request the server expects', async () => {
    srv.script = () => 'Thought: ok\nAction: wait()';
    const deltas: string[] = [];
    const r = await backend({ apiKey: 'sk-test' }).generate({ messages, maxTokens: 400, temperature: 0, topP: 0.7, onText: (d) => deltas.push(d) });
    expect(r.text).toBe('Thought: ok\nAction: wait()');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(r.text);
    expect(r.finishReason).toBe('stop');
    const req = srv.requests.at(-1)!;
    expect(req.headers.authorization).toBe('Bearer sk-test');
    expect(req.body).toMatchObject({ model: 'ui-tars-1.5-7b', max_tokens: 400, temperature: 0, top_p: 0.7, stream: true });
    const img = (req.body.messages[2]!.content as Array<{ type: string; image_url?: { url: string } }>)[0]!;
    expect(img.type).toBe('image_url');
    expect(img.image_url!.url).toBe(`data:image/png;base64,${image.png.toString('base64')}`);
  });

  it('reads a non-streamed answer (server or option without streaming)', async () => {
    srv.script = () => ({ text: 'Action: finished()', stream: false });
    expect((await backend().generate({ messages, maxTokens: 10, temperature: 0 })).text).toBe('Action: finished()');
    srv.script = () => 'Action: wait()';
    expect((await backend({ stream: false }).generate({ messages, maxTokens: 10, temperature: 0 })).text).toBe('Action: wait()');
    expect(srv.requests.at(-1)!.body.stream).toBe(false);
  });

  it('retries transient failures a bounded number of times', async () => {
    const start = srv.requests.length;
    srv.script = (r) => (r.index - start < 2 ? { status: 503, body: '{"error":{"message":"busy"}}' } : 'Action: wait()');
    expect((await backend({ retries: 2 }).generate({ messages, maxTokens: 10, temperature: 0 })).text).toBe('Action: wait()');
    expect(srv.requests.length - start).toBe(3);
    const s2 = srv.requests.length;
    srv.script = () => ({ status: 503, body: '{"error":{"message":"busy"}}' });
    await expect(backend({ retries: 1 }).generate({ messages, maxTokens: 10, temperature: 0 })).rejects.toThrow(/503 from POST .*: busy \(gave up after 2 attempts\)/);
    expect(srv.requests.length - s2).toBe(2);
  });

  it('does not retry client errors and explains the usual ones', async () => {
    const s = srv.requests.length;
    srv.script = () => ({ status: 400, body: '{"error":{"message":"At most 1 image(s) may be provided in one request."}}' });
    await expect(backend().generate({ messages, maxTokens: 10, temperature: 0 })).rejects.toThrow(/At most 1 image.*--limit-mm-per-prompt/);
    expect(srv.requests.length - s).toBe(1);
    srv.script = () => ({ status: 404, body: '' });
    await expect(backend().generate({ messages, maxTokens: 10, temperature: 0 })).rejects.toThrow(/404 .*\(no body\): the endpoint must be the API root that ends in \/v1/);
    srv.script = () => ({ status: 401, body: '{"error":"bad key"}' });
    await expect(backend().generate({ messages, maxTokens: 10, temperature: 0 })).rejects.toThrow(/bad key: the endpoint rejected the credentials/);
  });

  it('cancels generation mid-stream: the server sees the client hang up', async () => {
    srv.script = () => ({ text: 'Thought: a long answer that keeps going '.repeat(20), chunkDelayMs: 20 });
    const ac = new AbortController();
    let got = '';
    const p = backend().generate({ messages, maxTokens: 10, temperature: 0, signal: ac.signal, onText: (d) => ((got += d), got.length > 20 && ac.abort()) });
    const err = await p.catch((e) => e);
    expect(err).toBeInstanceOf(GenerationCancelled);
    expect((err as GenerationCancelled).partial.length).toBeGreaterThan(20);
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.requests.at(-1)!.aborted).toBe(true);
  });

  it('times out and says so; reports an unreachable server', async () => {
    srv.script = () => ({ text: 'late', delayMs: 1500 });
    await expect(backend({ timeoutMs: 200, retries: 0 }).generate({ messages, maxTokens: 10, temperature: 0 })).rejects.toThrow(/no complete answer .* within 0.2 s/);
    const port = await freePort();
    const dead = new OpenAIBackend({ baseURL: `http://127.0.0.1:${port}/v1`, model: 'm', retries: 0 });
    const e = await dead.generate({ messages, maxTokens: 10, temperature: 0 }).catch((x) => x);
    expect(e).toBeInstanceOf(BackendError);
    expect((e as Error).message).toBe(`cannot reach http://127.0.0.1:${port}/v1/chat/completions: ECONNREFUSED (is the server running?)`);
  });

  it('preflight: unreachable server fails, an unlisted model warns, no /models is fine', async () => {
    srv.models = null;
    expect(await backend().check()).toEqual([]);
    srv.models = ['ui-tars-1.5-7b'];
    expect(await backend().check()).toEqual([]);
    srv.models = ['qwen2.5-vl-7b'];
    expect(await backend().check()).toEqual(["the server does not list model 'ui-tars-1.5-7b' (it serves: qwen2.5-vl-7b)"]);
    srv.models = null;
    const port = await freePort();
    await expect(new OpenAIBackend({ baseURL: `http://127.0.0.1:${port}/v1`, model: 'm' }).check()).rejects.toThrow(/ECONNREFUSED \(is the server running\?\)/);
  });

  it('needs a model name', () => {
    expect(() => new OpenAIBackend({ baseURL: srv.endpoint, model: '' })).toThrow(/no model name/);
  });
});
