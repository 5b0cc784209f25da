/**
 * `edgemoe serve`: an OpenAI-compatible HTTP server on `Deno.serve`.
 *
 * Each of `parallel` slots is one engine (its own KV cache and expert store);
 * requests wait in a FIFO queue for a free slot. Tokens are computed one at a
 * time with a yield to the event loop between them, so a client that
 * disconnects (or a shutdown) stops its generation at the next token.
 *
 * @module
 */
import { createEngine, type Engine, type EngineOptions } from "../engine.ts";
import { EdgeMoeError } from "../errors.ts";
import { Sampler } from "../sampler/sampler.ts";
import { ApiError, type CompletionRequest, parseCompletionRequest } from "./openai.ts";
import { CHAT_PAGE } from "./page.ts";

/** Options of {@linkcode startServer}. */
export interface ServeOptions {
  /** The model file. */
  model: string;
  /** The name clients use in `model` (default: the file name without `.gguf`). */
  modelName?: string;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Require `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Concurrent generations (one engine each; default 1). */
  parallel?: number;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Most requests waiting for a slot before new ones get 503 (default 64). */
  maxQueue?: number;
  /** Engine options for every slot. */
  engine?: EngineOptions;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Called when a generation ends (an access log). */
  onRequestDone?: (info: RequestLog) => void;
}

/** One finished generation. */
export interface RequestLog {
  id: string;
  path: string;
  /** `"stop"`, `"length"`, or `"cancelled"` when the client left or the server shut down. */
  finishReason: "stop" | "length" | "cancelled";
  promptTokens: number;
  completionTokens: number;
  ms: number;
}

/** A running server. */
export interface EdgeMoeServer extends AsyncDisposable {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting, cancels generations in flight at their next token, closes the engines. */
  shutdown(): Promise<void>;
  /** Settles when the server has stopped. */
  readonly finished: Promise<void>;
}

/** A FIFO of engines: `take` waits for a free one, in arrival order. */
class SlotQueue {
  readonly #free: Engine[];
  readonly #waiting: { resolve: (e: Engine) => void; reject: (e: unknown) => void; signal: AbortSignal }[] = [];
  readonly #max: number;

  constructor(engines: Engine[], maxQueue: number) {
    this.#free = [...engines];
    this.#max = maxQueue;
  }

  take(signal: AbortSignal): Promise<Engine> {
    const e = this.#free.shift();
    if (e) return Promise.resolve(e);
    if (this.#waiting.length >= this.#max) {
      return Promise.reject(new ApiError(503, "the server is busy; try again later"));
    }
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, signal };
      this.#waiting.push(entry);
      signal.addEventListener("abort", () => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new ApiError(499, "the client went away"));
      }, { once: true });
    });
  }

  give(e: Engine): void {
    const next = this.#waiting.shift();
    if (next) next.resolve(e);
    else this.#free.push(e);
  }
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

async function readBody(req: Request, max: number): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max) throw new ApiError(413, `the request body is ${declared} bytes; the limit is ${max}`);
  const chunks: Uint8Array[] = [];
  let n = 0;
  if (req.body) {
    for await (const c of req.body) {
      n += c.length;
      if (n > max) throw new ApiError(413, `the request body exceeds the limit of ${max} bytes`);
      chunks.push(c);
    }
  }
  const bytes = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    bytes.set(c, o);
    o += c.length;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ApiError(400, "the request body is not valid JSON");
  }
}

interface GenerationResult {
  finishReason: "stop" | "length" | "cancelled";
  promptTokens: number;
  completionTokens: number;
}

/** Generates for `r` on `engine`, calling `emit` with text pieces; stops on abort. */
async function generate(
  engine: Engine,
  r: CompletionRequest,
  signal: AbortSignal,
  emit: (text: string) => void | Promise<void>,
): Promise<GenerationResult> {
  const sampler = new Sampler(engine.model.hp.nVocab, r.sampler, { contextSize: engine.model.nCtx });
  engine.reset();
  const input = r.messages ?? r.prompt!;
  try {
    for await (
      const c of engine.generate(input, {
        maxTokens: r.maxTokens,
        sample: (l) => sampler.sample(l),
        signal,
        stop: r.stop,
      })
    ) {
      if (c.type === "text") await emit(c.text);
      else {return {
          finishReason: c.finishReason,
          promptTokens: c.usage.promptTokens,
          completionTokens: c.usage.completionTokens,
        };}
    }
  } catch (e) {
    if (e instanceof EdgeMoeError && e.op === "generate") {
      throw new ApiError(400, e.message, {
        code: "context_length_exceeded",
        param: r.messages ? "messages" : "prompt",
      });
    }
    throw e;
  }
  throw new ApiError(500, "generation ended without a result");
}

/**
 * Starts the server (engines are opened first; a model that cannot load fails here).
 *
 * @throws {EdgeMoeError} from opening the engines, `invalid_argument` for bad options.
 */
export function startServer(opts: ServeOptions): EdgeMoeServer {
  const parallel = opts.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) {
    throw new EdgeMoeError("invalid_argument", "serve", `--parallel must be in 1..64, got ${parallel}`);
  }
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const name = opts.modelName ?? opts.model.split("/").pop()!.replace(/\.gguf$/, "");
  const engines: Engine[] = [];
  try {
    for (let i = 0; i < parallel; i++) engines.push(createEngine(opts.model, opts.engine));
  } catch (e) {
    for (const e2 of engines) e2.close();
    throw e;
  }
  const slots = new SlotQueue(engines, opts.maxQueue ?? 64);
  const stopAll = new AbortController();
  const created = () => Math.floor(Date.now() / 1000);
  const maxTokensCap = engines[0].model.nCtx;

  const complete = async (req: Request, kind: "chat" | "completion"): Promise<Response> => {
    const r = parseCompletionRequest(await readBody(req, maxBody), kind, maxTokensCap);
    if (r.model !== name) {
      throw new ApiError(404, `the model '${r.model}' does not exist; this server has '${name}'`, {
        code: "model_not_found",
        param: "model",
      });
    }
    // Cancelled by a client that leaves (request signal while waiting or computing a
    // non-streamed reply; stream cancel while streaming) or by shutdown.
    const ctrl = new AbortController();
    const signal = ctrl.signal;
    const cancel = () => ctrl.abort();
    const follow = () => {
      req.signal.addEventListener("abort", cancel);
      stopAll.signal.addEventListener("abort", cancel);
    };
    const unfollow = () => {
      req.signal.removeEventListener("abort", cancel);
      stopAll.signal.removeEventListener("abort", cancel);
    };
    follow();
    let engine: Engine;
    try {
      engine = await slots.take(signal);
    } catch (e) {
      unfollow();
      throw e;
    }
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID()}`;
    const object = kind === "chat" ? "chat.completion" : "text_completion";
    const t0 = performance.now();
    const release = () => slots.give(engine);
    const done = (g: GenerationResult) =>
      opts.onRequestDone?.({
        id,
        path: new URL(req.url).pathname,
        finishReason: g.finishReason,
        promptTokens: g.promptTokens,
        completionTokens: g.completionTokens,
        ms: performance.now() - t0,
      });
    if (!r.stream) {
      try {
        let text = "";
        const g = await generate(engine, r, signal, (t) => void (text += t));
        done(g);
        const usage = {
          prompt_tokens: g.promptTokens,
          completion_tokens: g.completionTokens,
          total_tokens: g.promptTokens + g.completionTokens,
        };
        const choice = kind === "chat"
          ? { index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: g.finishReason }
          : { index: 0, text, logprobs: null, finish_reason: g.finishReason };
        return Response.json({ id, object, created: created(), model: name, choices: [choice], usage });
      } finally {
        unfollow();
        release();
      }
    }
    req.signal.removeEventListener("abort", cancel);
    const enc = new TextEncoder();
    const chunkObject = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      enc.encode(
        `data: ${JSON.stringify({ id, object: chunkObject, created: created(), model: name, choices, ...extra })}\n\n`,
      );
    const piece = (text: string, finish: string | null) =>
      kind === "chat"
        ? { index: 0, delta: finish ? {} : { content: text }, logprobs: null, finish_reason: finish }
        : { index: 0, text, logprobs: null, finish_reason: finish };
    const body = new ReadableStream<Uint8Array>({
      async start(ctrl) {
        try {
          if (kind === "chat") {
            ctrl.enqueue(
              chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]),
            );
          }
          // After a cancel the engine may still flush held-back text; the stream is closed by then.
          const g = await generate(engine, r, signal, (t) => {
            if (!signal.aborted) ctrl.enqueue(chunk([piece(t, null)]));
          });
          done(g);
          if (!signal.aborted) {
            ctrl.enqueue(chunk([piece("", g.finishReason)]));
            if (r.includeUsage) {
              const usage = {
                prompt_tokens: g.promptTokens,
                completion_tokens: g.completionTokens,
                total_tokens: g.promptTokens + g.completionTokens,
              };
              ctrl.enqueue(chunk([], { usage }));
            }
            ctrl.enqueue(enc.encode("data: [DONE]\n\n"));
          }
          ctrl.close();
        } catch (e) {
          const err = e instanceof ApiError ? e : new ApiError(500, (e as Error).message);
          try {
            ctrl.enqueue(
              enc.encode(
                `data: ${JSON.stringify({ error: { message: err.message, type: err.type, code: err.code } })}\n\n`,
              ),
            );
            ctrl.close();
          } catch { /* the client is gone */ }
        } finally {
          stopAll.signal.removeEventListener("abort", cancel);
          release();
        }
      },
      cancel,
    });
    return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  };

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/health" && req.method === "GET") return Response.json({ status: "ok" });
      if (url.pathname === "/" && req.method === "GET") {
        return new Response(CHAT_PAGE.replace("__MODEL__", name), {
          headers: { "content-type": "text/html; charset=utf-8" },
        });
      }
      if (url.pathname.startsWith("/v1/")) {
        if (opts.apiKey !== undefined) {
          const auth = req.headers.get("authorization") ?? "";
          const given = auth.startsWith("Bearer ") ? auth.slice(7) : "";
          if (!timingSafeEqual(given, opts.apiKey)) {
            throw new ApiError(401, "invalid or missing API key", { code: "invalid_api_key" });
          }
        }
        if (url.pathname === "/v1/models" && req.method === "GET") {
          return Response.json({
            object: "list",
            data: [{ id: name, object: "model", created: 0, owned_by: "edgemoe" }],
          });
        }
        if (req.method === "POST" && url.pathname === "/v1/chat/completions") return await complete(req, "chat");
        if (req.method === "POST" && url.pathname === "/v1/completions") return await complete(req, "completion");
      }
      throw new ApiError(404, `no route for ${req.method} ${url.pathname}`);
    } catch (e) {
      if (e instanceof ApiError) return e.response();
      if (e instanceof EdgeMoeError) {
        const status = e.code === "invalid_argument" ? 400 : e.code === "unsupported" ? 400 : 500;
        return new ApiError(status, e.message, { code: e.code }).response();
      }
      return new ApiError(500, (e as Error).message ?? String(e)).response();
    }
  };

  const server = Deno.serve({
    hostname: opts.host ?? "127.0.0.1",
    port: opts.port ?? 8080,
    onListen: (addr) => opts.onListen?.(addr as Deno.NetAddr),
  }, handle);
  let closed = false;
  const shutdown = async () => {
    if (closed) return server.finished;
    closed = true;
    stopAll.abort();
    await server.shutdown();
    for (const e of engines) e.close();
  };
  const addr = server.addr as Deno.NetAddr;
  return { addr, shutdown, finished: server.finished, [Symbol.asyncDispose]: shutdown };
}
