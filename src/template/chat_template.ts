/**
 * `ChatTemplate`: a model's chat template (the Jinja subset Hugging Face chat
 * templates use), parsed once and rendered with a conversation the way
 * `transformers`' `apply_chat_template` renders it.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { Stmt } from "./ast.ts";
import { FILTERS, TESTS } from "./builtins.ts";
import { Evaluator, type RenderLimits } from "./evaluator.ts";
import { tokenize } from "./lexer.ts";
import { parse } from "./parser.ts";
import { fromJs, type Value } from "./values.ts";

export type { RenderLimits } from "./evaluator.ts";

/** One message of a conversation. Extra fields (`tool_calls`, `name`, …) are passed to the template as they are. */
export interface ChatMessage {
  /** `system`, `user`, `assistant` or `tool` (templates decide what they accept). */
  role: string;
  /** The text, or structured content parts as the template expects them. */
  content?: unknown;
  /** Anything else the template reads. */
  [key: string]: unknown;
}

/** Options of {@linkcode ChatTemplate.render}. */
export interface ChatRenderOptions {
  /** End with the header that starts the assistant's reply (`add_generation_prompt`). Default false. */
  addGenerationPrompt?: boolean;
  /** Tool (function) definitions as JSON schemas; passed as `tools` (None when absent, as transformers does). */
  tools?: unknown[];
  /** Retrieved documents; passed as `documents` (None when absent). */
  documents?: unknown[];
  /** `bos_token`; undefined in the template when not given. */
  bosToken?: string;
  /** `eos_token`; undefined in the template when not given. */
  eosToken?: string;
  /** More variables for the template (e.g. `enable_thinking`). They cannot replace the ones above. */
  extra?: Record<string, unknown>;
  /** The clock for `strftime_now` (default: now), read in local time as Python's `datetime.now()` is. */
  now?: () => Date;
  /** Bounds on output size, work and recursion. */
  limits?: RenderLimits;
}

const RESERVED = ["messages", "tools", "documents", "add_generation_prompt", "bos_token", "eos_token"];

/**
 * A parsed chat template.
 *
 * Sandboxed: the template sees only the data it is given, converted to plain
 * values (no JavaScript objects, prototypes or functions reach it), and a
 * render stops with an error past its output, work and recursion limits.
 *
 * @example
 * ```ts
 * import { ChatTemplate } from "@edgemoe/edgemoe";
 * const t = ChatTemplate.fromString(
 *   "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
 * );
 * console.log(t.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true }));
 * ```
 */
export class ChatTemplate {
  readonly #body: Stmt[];
  /** The template source. */
  readonly source: string;

  private constructor(source: string, body: Stmt[]) {
    this.source = source;
    this.#body = body;
  }

  /**
   * Parses a template.
   *
   * @param source the Jinja text (e.g. `tokenizer.chat_template` from GGUF metadata)
   * @throws EdgeMoeError `invalid_argument` for a syntax error, `unsupported` for a construct outside the
   *   supported subset; both name the line and column
   */
  static fromString(source: string): ChatTemplate {
    if (typeof source !== "string") {
      throw new EdgeMoeError("invalid_argument", "parse chat template", `expected a string, found ${typeof source}`);
    }
    const body = parse(
      tokenize(source),
      (n) => Object.hasOwn(FILTERS, n),
      (n) => Object.hasOwn(TESTS, n),
    );
    return new ChatTemplate(source, body);
  }

  /**
   * Renders a conversation.
   *
   * @param messages the conversation so far
   * @param options generation prompt, tools, special tokens, extra variables, limits
   * @throws EdgeMoeError `invalid_argument` when the template raises (`raise_exception`), reads what is not
   *   there, or exceeds a limit; `unsupported` for a method or directive outside the subset
   */
  render(messages: ChatMessage[], options: ChatRenderOptions = {}): string {
    if (!Array.isArray(messages)) {
      throw new EdgeMoeError("invalid_argument", "render chat template", "messages must be an array of messages");
    }
    const context: Record<string, unknown> = {
      messages,
      tools: options.tools ?? null,
      documents: options.documents ?? null,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    };
    if (options.bosToken !== undefined) context.bos_token = options.bosToken;
    if (options.eosToken !== undefined) context.eos_token = options.eosToken;
    for (const [k, v] of Object.entries(options.extra ?? {})) {
      if (RESERVED.includes(k)) {
        throw new EdgeMoeError(
          "invalid_argument",
          "render chat template",
          `extra variable '${k}' would replace a reserved one`,
        );
      }
      context[k] = v;
    }
    return this.renderContext(context, options);
  }

  /**
   * Renders with an arbitrary context (every key becomes a template variable).
   *
   * @param context JSON-like data
   * @param options the clock and limits
   */
  renderContext(context: Record<string, unknown>, options: Pick<ChatRenderOptions, "now" | "limits"> = {}): string {
    const vars = new Map<string, Value>();
    for (const key of Object.keys(context)) vars.set(key, fromJs(context[key], key));
    return new Evaluator(options.limits ?? {}, options.now ?? (() => new Date())).render(this.#body, vars);
  }
}
