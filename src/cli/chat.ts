/**
 * `edgemoe chat -m MODEL`: an interactive conversation through the model's
 * chat template (or `--chat-template-file`). One line in, a streamed reply out;
 * an empty line or end of input ends it.
 *
 * @module
 */
import { createEngine } from "../engine.ts";
import { EdgeMoeError } from "../errors.ts";
import { Sampler } from "../sampler/sampler.ts";
import { parseArgs } from "../std/cli.ts";
import type { ChatMessage } from "../template/chat_template.ts";
import {
  ENGINE_ALIASES,
  ENGINE_FLAGS,
  ENGINE_HELP,
  engineOptions,
  intFlag,
  SAMPLER_FLAGS,
  SAMPLER_HELP,
  samplerParams,
  stringFlag,
} from "./flags.ts";

const USAGE = `usage: edgemoe chat -m MODEL [-sys TEXT] [--chat-template-file FILE] [flags]

Reads a user message per line from stdin and streams the assistant's reply.
  -s, --system TEXT            system message
  --chat-template-file FILE    Jinja chat template to use instead of the model's
  -n, --n-predict N            most tokens per reply (default 256)

${ENGINE_HELP}

${SAMPLER_HELP}`;

async function* lines(): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

/** Runs `edgemoe chat`. */
export async function chat(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    string: [...ENGINE_FLAGS, ...SAMPLER_FLAGS, "system", "chat-template-file", "n-predict"],
    boolean: ["help"],
    alias: { ...ENGINE_ALIASES, s: "system", n: "n-predict", h: "help" },
  });
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  const model = stringFlag(a, "model", USAGE);
  let chatTemplate: string | undefined;
  if (typeof a["chat-template-file"] === "string") {
    try {
      chatTemplate = Deno.readTextFileSync(a["chat-template-file"]);
    } catch (e) {
      throw new EdgeMoeError("io", "chat", `cannot read ${a["chat-template-file"]}`, { cause: e });
    }
  }
  const n = intFlag(a, "n-predict", 256, 1);
  using engine = createEngine(model, { ...engineOptions(a), chatTemplate });
  const sampler = new Sampler(engine.model.hp.nVocab, samplerParams(a), { contextSize: engine.model.nCtx });
  const messages: ChatMessage[] = typeof a.system === "string" ? [{ role: "system", content: a.system }] : [];
  const out = new TextEncoder();
  const interactive = Deno.stdin.isTerminal();
  if (interactive) Deno.stdout.writeSync(out.encode("> "));
  for await (const line of lines()) {
    if (line.trim() === "") break;
    messages.push({ role: "user", content: line });
    // Re-render the whole conversation: templates may change earlier turns' text.
    engine.reset();
    sampler.reset();
    let reply = "";
    for (
      const t of engine.generateSync(engine.applyChatTemplate(messages, true), {
        maxTokens: n,
        sample: (l) => sampler.sample(l),
      })
    ) {
      reply += t.text;
      Deno.stdout.writeSync(out.encode(t.text));
    }
    messages.push({ role: "assistant", content: reply });
    Deno.stdout.writeSync(out.encode(interactive ? "\n> " : "\n"));
  }
  return 0;
}
