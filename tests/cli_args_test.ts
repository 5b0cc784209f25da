import { EdgeMoeError } from "../src/errors.ts";
import { assertEquals, assertThrows } from "../src/std/assert.ts";
import { parseArgs } from "../src/std/cli.ts";
import { ENGINE_ALIASES, ENGINE_FLAGS, engineOptions } from "../src/cli/flags.ts";

const opts = { string: ["model", "threads"], boolean: ["json"], alias: { m: "model", t: "threads" } };

Deno.test("parseArgs: long, short and positional", () => {
  const a = parseArgs(["-m", "x.gguf", "--json", "--threads=2", "hello"], opts);
  assertEquals(a.model, "x.gguf");
  assertEquals(a.threads, "2");
  assertEquals(a.json, true);
  assertEquals(a._, ["hello"]);
});

Deno.test("parseArgs: defaults apply only when a flag is absent", () => {
  assertEquals(parseArgs([], { ...opts, default: { threads: "4" } }).threads, "4");
  assertEquals(parseArgs(["-t", "1"], { ...opts, default: { threads: "4" } }).threads, "1");
});

Deno.test("parseArgs: an unknown flag is an invalid_argument error naming it", () => {
  const e = assertThrows(() => parseArgs(["--modle", "x"], opts), EdgeMoeError, "--modle");
  assertEquals(e.code, "invalid_argument");
});

Deno.test("parseArgs: a flag missing its value is an error", () => {
  assertThrows(() => parseArgs(["--model"], opts), EdgeMoeError, "model");
});

Deno.test("engine flags: --kv-type f32 | f16 becomes EngineOptions.kvType; other values are refused", () => {
  const parse = (argv: string[]) => engineOptions(parseArgs(argv, { string: ENGINE_FLAGS, alias: ENGINE_ALIASES }));
  assertEquals(parse(["--kv-type", "f16"]).kvType, "f16");
  assertEquals(parse([]).kvType, undefined);
  assertThrows(() => parse(["--kv-type", "q8_0"]), EdgeMoeError, '--kv-type must be one of f32, f16, got "q8_0"');
});
