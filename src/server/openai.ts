/**
 * The OpenAI wire format: request validation and the response/error shapes
 * of `/v1/chat/completions`, `/v1/completions` and `/v1/models`, with
 * llama.cpp's sampling extensions (top_k, min_p, repeat_penalty, seed).
 *
 * @module
 */
import type { SamplerParams } from "../sampler/sampler.ts";
import type { ChatMessage } from "../template/chat_template.ts";

/** An HTTP error with OpenAI's error body. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;

  constructor(status: number, message: string, opts: { type?: string; param?: string; code?: string } = {}) {
    super(message);
    this.status = status;
    this.type = opts.type ??
      (status === 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error");
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
  }

  /** The JSON response. */
  response(): Response {
    return Response.json(
      { error: { message: this.message, type: this.type, param: this.param, code: this.code } },
      { status: this.status },
    );
  }
}

/** What a completion request asks for, validated. */
export interface CompletionRequest {
  model: string;
  /** Chat messages (chat endpoint) or a prompt (completions endpoint). */
  messages?: ChatMessage[];
  prompt?: string;
  maxTokens: number;
  stream: boolean;
  includeUsage: boolean;
  stop: string[];
  sampler: SamplerParams;
}

type Json = Record<string, unknown>;

function num(body: Json, key: string, check: (n: number) => boolean, range: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || !check(v)) {
    throw new ApiError(400, `'${key}' must be ${range}, got ${JSON.stringify(v)}`, { param: key });
  }
  return v;
}

/**
 * Validates a request body for `kind`.
 *
 * @throws {ApiError} 400 naming the field.
 */
export function parseCompletionRequest(
  body: unknown,
  kind: "chat" | "completion",
  maxTokensCap: number,
): CompletionRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError(400, "the request body must be a JSON object");
  }
  const b = body as Json;
  if (typeof b.model !== "string" || b.model === "") throw new ApiError(400, "'model' is required", { param: "model" });
  let messages: ChatMessage[] | undefined, prompt: string | undefined;
  if (kind === "chat") {
    if (!Array.isArray(b.messages) || b.messages.length === 0) {
      throw new ApiError(400, "'messages' must be a non-empty array", { param: "messages" });
    }
    messages = b.messages.map((m, i) => {
      if (typeof m !== "object" || m === null || typeof (m as Json).role !== "string") {
        throw new ApiError(400, `'messages[${i}]' must be an object with a string 'role'`, { param: `messages[${i}]` });
      }
      const content = (m as Json).content;
      if (content !== undefined && content !== null && typeof content !== "string" && !Array.isArray(content)) {
        throw new ApiError(400, `'messages[${i}].content' must be a string or an array of parts`, {
          param: `messages[${i}].content`,
        });
      }
      return m as ChatMessage;
    });
  } else {
    if (typeof b.prompt !== "string") throw new ApiError(400, "'prompt' must be a string", { param: "prompt" });
    prompt = b.prompt;
  }
  const maxTokens = num(b, "max_completion_tokens", (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1") ??
    num(b, "max_tokens", (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1") ?? Math.min(256, maxTokensCap);
  if (maxTokens > maxTokensCap) {
    throw new ApiError(400, `'max_tokens' must be at most ${maxTokensCap}`, { param: "max_tokens" });
  }
  if (b.stream !== undefined && typeof b.stream !== "boolean") {
    throw new ApiError(400, "'stream' must be a boolean", { param: "stream" });
  }
  const so = b.stream_options as Json | undefined;
  let stop: string[] = [];
  if (typeof b.stop === "string") stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.every((s) => typeof s === "string") && b.stop.length <= 4) {
    stop = b.stop as string[];
  } else if (b.stop !== undefined && b.stop !== null) {
    throw new ApiError(400, "'stop' must be a string or up to 4 strings", { param: "stop" });
  }
  if (b.n !== undefined && b.n !== 1) throw new ApiError(400, "only 'n' = 1 is supported", { param: "n" });
  const sampler: SamplerParams = {
    temp: num(b, "temperature", (n) => n >= 0 && n <= 2, "in [0, 2]"),
    topP: num(b, "top_p", (n) => n > 0 && n <= 1, "in (0, 1]"),
    topK: num(b, "top_k", (n) => Number.isInteger(n) && n >= 0, "an integer ≥ 0"),
    minP: num(b, "min_p", (n) => n >= 0 && n <= 1, "in [0, 1]"),
    repeatPenalty: num(b, "repeat_penalty", (n) => n > 0, "> 0"),
    presencePenalty: num(b, "presence_penalty", (n) => n >= -2 && n <= 2, "in [-2, 2]"),
    frequencyPenalty: num(b, "frequency_penalty", (n) => n >= -2 && n <= 2, "in [-2, 2]"),
    seed: num(b, "seed", (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, "an integer in [0, 2^32)"),
  };
  return {
    model: b.model,
    messages,
    prompt,
    maxTokens,
    stream: b.stream === true,
    includeUsage: so?.include_usage === true,
    stop,
    sampler,
  };
}
