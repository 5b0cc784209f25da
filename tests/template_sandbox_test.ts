/** The chat-template sandbox, its limits, and its error messages. */
import { ChatTemplate } from "../src/template/chat_template.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";

const render = (src: string, context: Record<string, unknown> = {}, limits = {}) =>
  ChatTemplate.fromString(src).renderContext(context, { limits });

function fails(src: string, code: string, includes: string, context: Record<string, unknown> = {}, limits = {}) {
  const e = assertThrows(() => render(src, context, limits), EdgeMoeError, includes);
  assertEquals(e.code, code, e.message);
  return e;
}

Deno.test("sandbox: JavaScript internals are never reachable through attributes or items", () => {
  const context = { x: { k: 1 }, l: [1], s: "str", messages: [{ role: "user", content: "hi" }] };
  const probes = [
    "x.constructor",
    "x.__proto__",
    "x['constructor']",
    "x['__proto__']",
    "x.toString",
    "x.hasOwnProperty",
    "x.valueOf",
    "s.constructor",
    "s.length",
    "s.__class__",
    "s['constructor']",
    "l.constructor",
    "l.length",
    "l.map",
    "l.__class__",
    "messages[0].constructor",
    "range.constructor",
    "range.__globals__",
    "namespace.prototype",
    "raise_exception.call",
    "globalThis",
    "Deno",
    "self",
    "__proto__",
    "constructor",
    "Object",
    "process",
    "cycler",
    "lipsum",
  ];
  for (const p of probes) {
    assertEquals(render(`{{ ${p} }}`, context), "", p);
    assertEquals(render(`{{ ${p} is defined }}`, context), "False", p);
  }
  assertEquals(render("{% for i in range(2) %}{{ loop.constructor }}{{ loop.__class__ }}{% endfor %}"), "");
});

Deno.test("sandbox: calling what is not there fails with an EdgeMoeError, never a JS call", () => {
  fails("{{ x.constructor('return 1')() }}", "invalid_argument", "no attribute 'constructor'", { x: {} });
  fails("{{ ''.constructor.constructor('return Deno')() }}", "invalid_argument", "has no attribute 'constructor'");
  fails("{{ range.constructor('x') }}", "invalid_argument", "line 1, column");
  fails("{{ x.toString() }}", "invalid_argument", "cannot be called", { x: {} });
});

Deno.test("sandbox: mutating methods are refused (as in jinja2's immutable sandbox)", () => {
  fails("{% set l = [1] %}{{ l.append(2) }}", "unsupported", "list.append");
  fails("{{ d.update({'a': 1}) }}", "unsupported", "dict.update", { d: {} });
  fails("{{ d.pop('a') }}", "unsupported", "dict.pop", { d: { a: 1 } });
  fails("{{ '{}'.format(1) }}", "unsupported", "str.format");
  fails("{% set d = {} %}{% set d.x = 1 %}", "invalid_argument", "only namespace() objects take attributes");
});

Deno.test("sandbox: context data must be plain JSON; a __proto__ key is just data", () => {
  const t = ChatTemplate.fromString("{{ x }}");
  assertThrows(() => t.renderContext({ x: () => 1 }), EdgeMoeError, "x: expected JSON data, found a function");
  assertThrows(() => t.renderContext({ x: new Date(0) }), EdgeMoeError, "instance of Date");
  assertThrows(() => t.renderContext({ x: { y: [1n] } }), EdgeMoeError, "x.y[0]: expected JSON data, found a bigint");
  const polluting = JSON.parse('{"__proto__": {"polluted": "yes"}}');
  assertEquals(render("{{ x.__proto__.polluted }}|{{ x['__proto__'] }}", { x: polluting }), "yes|{'polluted': 'yes'}");
  assertEquals(({} as Record<string, unknown>).polluted, undefined);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assertThrows(() => t.renderContext({ x: cyclic }), EdgeMoeError, "nested deeper than");
});

Deno.test("limits: runaway loops, recursion and output stop with an error", () => {
  fails(
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "invalid_argument",
    "steps of work",
  );
  fails(
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "invalid_argument",
    "macro calls nested deeper than 100",
  );
  fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "invalid_argument", "deeper than 5", {}, {
    maxCallDepth: 5,
  });
  fails("{{ 'x' * 100000000 }}", "invalid_argument", "exceeds the limit");
  fails("{{ range(1000000000) | length }}", "invalid_argument", "exceeds the limit of 100000");
  fails(
    "{% for i in range(100000) %}{{ 'abcdefghij' }}{% endfor %}",
    "invalid_argument",
    "limit of 1000 characters",
    {},
    { maxOutputChars: 1000 },
  );
  fails(
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "invalid_argument",
    "exceeds the limit",
  );
  fails("{% for i in range(10) %}{{ i }}{% endfor %}", "invalid_argument", "more than 20 steps", {}, { maxSteps: 20 });
  assertEquals(render("{% for i in range(10) %}{{ i }}{% endfor %}", {}, { maxSteps: 1000 }), "0123456789");
});

Deno.test("limits: a very long flat expression renders, or fails cleanly, never with a JS stack overflow", () => {
  assertEquals(render("{{ 1" + " + 1".repeat(1000) + " }}"), "1001");
  fails("{{ 1" + " + 1".repeat(200_000) + " }}", "invalid_argument", "template too deeply nested at line 1, column 4");
});

Deno.test("limits: deep nesting in the source is a syntax error, not a stack overflow", () => {
  for (
    const src of [
      "{{ " + "(".repeat(5000) + "1" + ")".repeat(5000) + " }}",
      "{{ " + "not ".repeat(5000) + "x }}",
      "{{ " + "-".repeat(5000) + "1 }}",
      "{{ " + "[".repeat(5000) + "]".repeat(5000) + " }}",
      "{% if x %}".repeat(5000),
    ]
  ) {
    const e = assertThrows(() => ChatTemplate.fromString(src), EdgeMoeError, "nesting deeper than 200");
    assertEquals(e.code, "invalid_argument");
  }
});

Deno.test("errors: syntax errors name line and column", () => {
  const cases: [string, string][] = [
    [
      "line one\n{% if x %}never closed",
      "the 'if' block at line 2, column 4 is not closed: expected 'elif' or 'else' or 'endif', found the end of the template at line 2, column 23",
    ],
    ["{{ x | }}", "expected a name, found '}}' at line 1, column 8"],
    ["a\n  {{ 'open }}", "unexpected character ''' at line 2, column 6"],
    ["{% frobnicate %}", "unknown statement 'frobnicate' at line 1, column 4"],
    ["{% endfor %}", "unknown statement 'endfor' at line 1, column 4"],
    ["{{ x ) }}", "unexpected ')' at line 1, column 6"],
    ["{{ [1, 2 }}", "unexpected '}', expected ']' at line 1, column 10"],
    ["{# no end", "missing end of comment tag '#}' at line 1, column 1"],
    ["\n\n{% raw %}abc", "missing {% endraw %} for this {% raw %} at line 3, column 1"],
    ["{{ a b }}", "expected '}}', found 'b' at line 1, column 6"],
    ["{% set 1 = 2 %}", "expected a name, found '1' at line 1, column 8"],
    [
      "{% macro m(a=1, b) %}{% endmacro %}",
      "parameter 'b' without a default follows one with a default at line 1, column 17",
    ],
  ];
  for (const [src, message] of cases) {
    const e = assertThrows(() => ChatTemplate.fromString(src), EdgeMoeError);
    assertEquals(e.code, "invalid_argument", src);
    assertEquals(e.message, `parse chat template: ${message}`, src);
  }
});

Deno.test("errors: unsupported constructs are named with line and column", () => {
  const cases: [string, string][] = [
    ["{% include 'other.jinja' %}", "the '{% include %}' statement is not supported, at line 1, column 4"],
    ["x\n{% extends 'base' %}", "the '{% extends %}' statement is not supported, at line 2, column 4"],
    ["{% call m() %}{% endcall %}", "the '{% call %}' statement is not supported, at line 1, column 4"],
    ["{{ x | frobnicate }}", "the filter 'frobnicate' is not supported, at line 1, column 8"],
    ["{{ x is frobnicated }}", "the test 'frobnicated' is not supported, at line 1, column 9"],
    ["{% for x in y recursive %}{% endfor %}", "a recursive for loop is not supported, at line 1, column 15"],
    ["{{ f(*args) }}", "'*' or '**' argument unpacking is not supported, at line 1, column 6"],
    ["{% macro m(*a) %}{% endmacro %}", "a '*' or '**' macro parameter is not supported, at line 1, column 12"],
  ];
  for (const [src, message] of cases) {
    const e = assertThrows(() => ChatTemplate.fromString(src), EdgeMoeError);
    assertEquals(e.code, "unsupported", src);
    assertEquals(e.message, `parse chat template: ${message}`, src);
  }
  fails("a\n  {{ '%s' % x }}", "unsupported", "'%' string formatting is not supported at line 2, column 6", { x: 1 });
  fails("{{ strftime_now('%U') }}", "unsupported", "strftime directive '%U' is not supported at line 1, column 4");
});

Deno.test("errors: run-time errors name what went wrong and where", () => {
  fails("\n{{ foo.bar }}", "invalid_argument", "'foo' is undefined; cannot read '.bar' of it at line 2, column 7");
  fails("{{ 1 / 0 }}", "invalid_argument", "division by zero at line 1, column 4");
  fails("{{ 'a' + 1 }}", "invalid_argument", "unsupported operand type(s) for +: 'str' and 'int' at line 1, column 4");
  fails("{% for x in 3 %}{% endfor %}", "invalid_argument", "'int' object is not iterable at line 1, column 4");
  fails("{% for a, b in [[1, 2, 3]] %}{% endfor %}", "invalid_argument", "cannot unpack 3 values into 2 names");
  fails(
    "{{ x | tojson }}",
    "invalid_argument",
    "Object of type Undefined is not JSON serializable at line 1, column 6",
  );
  fails("{{ [1] | join(', ', 'a', 'b') }}", "invalid_argument", "join() takes at most 2 arguments (3 given)");
  const e = fails(
    "{{ raise_exception('Conversation roles must alternate') }}",
    "invalid_argument",
    "raise_exception: Conversation roles must alternate at line 1, column 4",
  );
  assertEquals(e.op, "render chat template");
});

Deno.test("ChatTemplate.render: the context transformers passes, and guards", () => {
  const t = ChatTemplate.fromString(
    "{{ bos_token }}{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}{{ eos_token is defined }}{{ flag }}",
  );
  assertEquals(t.render([]), "TrueTrueFalseFalse");
  assertEquals(
    t.render([], { bosToken: "<s>", addGenerationPrompt: true, extra: { flag: 7 } }),
    "<s>TrueTrueTrueFalse7",
  );
  assertEquals(t.render([], { tools: [] }), "FalseTrueFalseFalse");
  assertThrows(() => t.render([], { extra: { messages: [] } }), EdgeMoeError, "would replace a reserved one");
  assertThrows(() => t.render("hi" as never), EdgeMoeError, "messages must be an array");
  assertThrows(() => ChatTemplate.fromString(42 as never), EdgeMoeError, "expected a string");
  assert(t.source.startsWith("{{ bos_token }}"));
});
