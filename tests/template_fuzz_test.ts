/**
 * Fuzzing the chat-template engine: mutated templates either render or fail
 * with an EdgeMoeError, never another exception, a hang or a crash.
 */
import { ChatTemplate } from "../src/template/chat_template.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert } from "../src/std/assert.ts";

const DIR = new URL("./fixtures/chat_templates/", import.meta.url);
const SOURCES = ["im_tools.jinja", "inst.jinja", "kitchen_sink.jinja", "tulu.jinja", "whitespace.jinja"].map((f) =>
  Deno.readTextFileSync(new URL(f, DIR))
);
const conversations = Object.values(
  JSON.parse(Deno.readTextFileSync(new URL("conversations.json", DIR))) as Record<
    string,
    { messages: { role: string; content: unknown }[]; tools?: unknown[] }
  >,
);
const PIECES = [
  "{",
  "}",
  "%",
  "#",
  "-",
  "+",
  "(",
  ")",
  "[",
  "]",
  "'",
  '"',
  "|",
  ".",
  ",",
  ":",
  "=",
  " ",
  "\n",
  "not ",
  " in ",
  " is ",
  "loop",
  "{{",
  "}}",
  "{%",
  "%}",
  "endfor",
  "endif",
  "else",
  "0",
  "-1",
  "::",
  "~",
  "*",
  "**",
  "/",
];

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

Deno.test("fuzz: mutated templates render or fail with EdgeMoeError only", () => {
  const rnd = lcg(12345);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  let rendered = 0, failed = 0;
  for (let iter = 0; iter < 1500; iter++) {
    let src = pick(SOURCES);
    const edits = 1 + Math.floor(rnd() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * src.length);
      const len = Math.floor(rnd() * 6);
      src = rnd() < 0.5 ? src.slice(0, at) + pick(PIECES) + src.slice(at) : src.slice(0, at) + src.slice(at + len);
    }
    const conv = pick(conversations);
    try {
      ChatTemplate.fromString(src).render(conv.messages, {
        tools: conv.tools,
        addGenerationPrompt: rnd() < 0.5,
        bosToken: "<s>",
        eosToken: "</s>",
        limits: { maxSteps: 200_000, maxOutputChars: 200_000 },
      });
      rendered++;
    } catch (e) {
      assert(e instanceof EdgeMoeError, `iteration ${iter}: ${String(e)}\n--- template ---\n${src}`);
      failed++;
    }
  }
  assert(rendered > 100 && failed > 100, `${rendered} rendered, ${failed} failed`);
});
