/**
 * The server through a real OpenAI client (the `openai` npm package), raw
 * HTTP for the error cases, and headless Chromium for the chat page.
 */
import OpenAI from "openai";
import { createEngine, greedy } from "../src/engine.ts";
import { type RequestLog, startServer } from "../src/server/server.ts";
import { assert, assertEquals, assertRejects } from "../src/std/assert.ts";
import { FIXTURE_DIR } from "./oracle/reference.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;
const TEMPLATE =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
const KEY = "test-key-123";

function withServer(
  fn: (base: string, logs: RequestLog[]) => Promise<void>,
  opts: { parallel?: number; maxBodyBytes?: number; nCtx?: number; slow?: boolean } = {},
): () => Promise<void> {
  return async () => {
    const logs: RequestLog[] = [];
    await using server = startServer({
      model: MODEL,
      modelName: "tiny",
      port: 0,
      apiKey: KEY,
      engine: { chatTemplate: TEMPLATE, nCtx: opts.nCtx ?? 64, store: "ram", onRoute: opts.slow ? pause : undefined },
      onRequestDone: (r) => logs.push(r),
      parallel: opts.parallel,
      maxBodyBytes: opts.maxBodyBytes,
    });
    await fn(`http://127.0.0.1:${server.addr.port}`, logs);
  };
}

/**
 * Blocks for 2 ms at every routing decision, so that a generation takes a known
 * least time (the tiny model would otherwise finish hundreds of tokens before a
 * disconnect reaches the server on a fast, idle machine).
 */
const pauseCell = new Int32Array(new SharedArrayBuffer(4));
function pause(): void {
  Atomics.wait(pauseCell, 0, 0, 2);
}

/** What greedy decoding of the chat prompt gives, computed by the engine directly. */
function expectedGreedy(user: string, n: number): string {
  using engine = createEngine(MODEL, { chatTemplate: TEMPLATE, nCtx: 64, store: "ram" });
  const prompt = engine.applyChatTemplate([{ role: "user", content: user }], true);
  return [...engine.generateSync(prompt, { maxTokens: n, sample: greedy })].map((t) => t.text).join("");
}

Deno.test(
  "server: the OpenAI client lists models, completes, and streams the same text with usage",
  withServer(async (base) => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY });
    const models = await client.models.list();
    assertEquals(models.data.map((m) => m.id), ["tiny"]);
    const expected = expectedGreedy("Hello there", 12);
    const full = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Hello there" }],
      max_tokens: 12,
      temperature: 0,
    });
    assertEquals(full.choices[0].message.content, expected);
    assertEquals(full.usage?.completion_tokens !== undefined, true);
    const stream = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Hello there" }],
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "", usage;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? "";
      if (c.usage) usage = c.usage;
    }
    assertEquals(text, expected);
    assertEquals(usage?.completion_tokens, full.usage?.completion_tokens);
    const comp = await client.completions.create({
      model: "tiny",
      prompt: "The quick",
      max_tokens: 5,
      temperature: 0,
      seed: 1,
    });
    assertEquals(typeof comp.choices[0].text, "string");
    assertEquals(comp.object, "text_completion");
  }),
);

Deno.test(
  "server: limits and errors have OpenAI's shape and status",
  withServer(async (base) => {
    const post = (path: string, body: unknown, key: string | null = KEY) =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const chat = (extra: Record<string, unknown>) => ({
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
      ...extra,
    });
    const cases: [Promise<Response>, number, string][] = [
      [post("/v1/chat/completions", chat({}), null), 401, "API key"],
      [post("/v1/chat/completions", chat({}), "wrong"), 401, "API key"],
      [post("/v1/chat/completions", chat({ model: "gpt-4" })), 404, "'gpt-4' does not exist"],
      [post("/v1/chat/completions", chat({ temperature: 5 })), 400, "'temperature' must be in [0, 2]"],
      [post("/v1/chat/completions", chat({ top_p: 0 })), 400, "'top_p'"],
      [post("/v1/chat/completions", chat({ messages: [] })), 400, "'messages'"],
      [post("/v1/chat/completions", "{not json"), 400, "not valid JSON"],
      [
        post("/v1/chat/completions", chat({ messages: [{ role: "user", content: "word ".repeat(200) }] })),
        400,
        "the context holds 64",
      ],
      [post("/v1/chat/completions", chat({ padding: "x".repeat(4096) })), 413, "limit"],
      [post("/v1/nothing", {}), 404, "no route"],
    ];
    for (const [p, status, msg] of cases) {
      const r = await p;
      const body = await r.json();
      assertEquals(r.status, status, JSON.stringify(body));
      assert(typeof body.error?.message === "string" && body.error.message.includes(msg), JSON.stringify(body));
      assert(typeof body.error.type === "string");
    }
    assertEquals(await (await fetch(`${base}/health`)).json(), { status: "ok" });
    // No wildcard CORS by default.
    assertEquals((await fetch(`${base}/health`)).headers.get("access-control-allow-origin"), null);
  }, { maxBodyBytes: 2048 }),
);

Deno.test(
  "server: a client that disconnects cancels its generation; queued requests run in arrival order",
  withServer(async (base, logs) => {
    const headers = { "content-type": "application/json", authorization: `Bearer ${KEY}` };
    const body = (content: string, n: number, stream: boolean) =>
      JSON.stringify({ model: "tiny", messages: [{ role: "user", content }], max_tokens: n, temperature: 0, stream });
    const ctrl = new AbortController();
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: body("long one", 400, true),
      signal: ctrl.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk arrived: generation is under way
    ctrl.abort();
    await reader.cancel().catch(() => {});
    const order = ["a", "b", "c"];
    await Promise.all(
      order.map((c) =>
        fetch(`${base}/v1/chat/completions`, { method: "POST", headers, body: body(c, 3, false) }).then((r) => r.json())
      ),
    );
    const cancelled = logs[0];
    assertEquals(cancelled.finishReason, "cancelled");
    assert(
      cancelled.completionTokens < 300,
      `generation went on after the disconnect: ${cancelled.completionTokens} tokens`,
    );
    assertEquals(logs.length, 4);
  }, { nCtx: 512, slow: true }),
);

Deno.test("server: shutdown ends streams in flight and resolves", async () => {
  const server = startServer({ model: MODEL, port: 0, engine: { chatTemplate: TEMPLATE, nCtx: 64, store: "ram" } });
  const res = await fetch(`http://127.0.0.1:${server.addr.port}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "qwen3moe", prompt: "Once", max_tokens: 60, stream: true }),
  });
  const reader = res.body!.getReader();
  await reader.read();
  const stopping = server.shutdown();
  for (;;) if ((await reader.read()).done) break;
  await stopping;
  await server.finished;
  await assertRejects(() => fetch(`http://127.0.0.1:${server.addr.port}/health`));
});
