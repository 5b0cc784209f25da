/**
 * Chat templates rendered byte for byte as PyPI jinja2 renders them in Hugging
 * Face's configuration (expected outputs written by tools/gen_template_fixtures.py).
 */
import { ChatTemplate } from "../src/template/chat_template.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assertEquals, assertThrows } from "../src/std/assert.ts";

const DIR = new URL("./fixtures/chat_templates/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, DIR));

interface Expected {
  output?: string;
  raised?: string;
  error?: string;
}
const expected = JSON.parse(read("expected.json")) as {
  now: string;
  chats: (Expected & { template: string; conversation: string; add_generation_prompt: boolean })[];
  snippets: (Expected & { index: number })[];
};
const conversations = JSON.parse(read("conversations.json")) as Record<string, {
  messages: { role: string; content: unknown }[];
  tools?: unknown[];
  bos_token: string;
  eos_token: string;
  extra?: Record<string, unknown>;
}>;
const snippets = JSON.parse(read("snippets.json")) as { template: string; context: Record<string, unknown> }[];
/** The generator's fixed naive datetime, as local time (ECMAScript parses a date-time without an offset as local). */
const now = () => new Date(expected.now);

/** Shows where two renders first differ. */
function firstDifference(actual: string, want: string): string {
  let i = 0;
  while (i < actual.length && actual[i] === want[i]) i++;
  return `first difference at char ${i}: got ${JSON.stringify(actual.slice(i, i + 40))}, want ${
    JSON.stringify(want.slice(i, i + 40))
  }`;
}

function check(name: string, render: () => string, want: Expected): void {
  if (want.output !== undefined) {
    const got = render();
    if (got !== want.output) throw new Error(`${name}: NOT OK, ${firstDifference(got, want.output)}`);
  } else if (want.raised !== undefined) {
    const e = assertThrows(render, EdgeMoeError, `raise_exception: ${want.raised}`);
    assertEquals(e.code, "invalid_argument");
  } else {
    assertThrows(render, EdgeMoeError);
  }
}

const templates = new Map<string, ChatTemplate>();
for (const c of expected.chats) {
  if (!templates.has(c.template)) templates.set(c.template, ChatTemplate.fromString(read(c.template)));
}

for (const file of templates.keys()) {
  Deno.test(`chat template ${file}: every conversation renders as jinja2 renders it`, () => {
    const t = templates.get(file)!;
    let n = 0;
    for (const c of expected.chats.filter((x) => x.template === file)) {
      const conv = conversations[c.conversation];
      check(
        `${file} × ${c.conversation} (add_generation_prompt=${c.add_generation_prompt})`,
        () =>
          t.render(conv.messages, {
            addGenerationPrompt: c.add_generation_prompt,
            tools: conv.tools,
            bosToken: conv.bos_token,
            eosToken: conv.eos_token,
            extra: conv.extra,
            now,
          }),
        c,
      );
      n++;
    }
    assertEquals(n, Object.keys(conversations).length * 2);
  });
}

Deno.test("chat template snippets: expressions, filters, tests and methods render as jinja2 renders them", () => {
  assertEquals(expected.snippets.length, snippets.length);
  for (const s of expected.snippets) {
    const { template, context } = snippets[s.index];
    check(`snippet ${s.index} ${JSON.stringify(template.slice(0, 60))}`, () => {
      return ChatTemplate.fromString(template).renderContext(context, { now });
    }, s);
  }
});
