/** The CLI as users run it: a subprocess with the permissions `deno task edgemoe` grants. */
import { assert, assertEquals } from "../src/std/assert.ts";
import { FIXTURE_DIR, readReference } from "./oracle/reference.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { PackFile } from "../src/pack/mod.ts";
import { tokenizerFromGguf } from "../src/tokenizer/mod.ts";
import { edgemoe } from "./cli_helpers.ts";
import { CLI_PERMISSIONS, CLI_RUNTIME_FLAGS } from "../src/cli/permissions.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;

Deno.test("edgemoe run: greedy output equals llama.cpp's greedy continuation, on every store", async () => {
  const ref = readReference("qwen3moe");
  const prompt = ref.prompts[0];
  assert(prompt.text !== undefined);
  assertEquals(ref.greedy.prompt, prompt.tokens);
  // What llama.cpp generated greedily after this prompt, as text.
  using file = GgufFile.open(MODEL);
  const tok = tokenizerFromGguf(new Map([...file.metadata].map(([k, v]) => [k, v.value])));
  const expected = tok.decode(ref.greedy.tokens.slice(0, 8)) + "\n";
  const outs: string[] = [];
  for (const store of ["ram", "uring", "pread"]) {
    const r = await edgemoe([
      "run",
      "-m",
      MODEL,
      "-p",
      prompt.text,
      "-n",
      "8",
      "--temp",
      "0",
      "--store",
      store,
      "--ignore-eos",
    ]);
    assertEquals(r.code, 0, r.err);
    outs.push(r.out);
  }
  assertEquals(outs, [expected, expected, expected]);
});

Deno.test("edgemoe run: bad flags are errors naming the flag", async () => {
  const cases: [string[], string][] = [
    [["run", "-p", "x"], "--model is required"],
    [["run", "-m", MODEL, "-p", "x", "--temp", "hot"], "--temp must be a number"],
    [["run", "-m", MODEL, "-p", "x", "--top-p", "0"], "topP must be in (0, 1]"],
    [["run", "-m", MODEL, "-p", "x", "--store", "disk"], "--store must be one of ram, uring, pread, mmap"],
    [["run", "-m", MODEL, "-p", "x", "--mem-budget", "1KiB", "--store", "uring"], "smallest budget that works"],
    [["run", "-m", "/nonexistent.gguf", "-p", "x"], "/nonexistent.gguf"],
    [["frobnicate"], 'unknown command "frobnicate"'],
  ];
  for (const [args, msg] of cases) {
    const r = await edgemoe(args);
    assert(r.code !== 0, `${args.join(" ")} should fail`);
    assert(r.err.includes(msg), `${args.join(" ")}: expected "${msg}" in:\n${r.err}`);
  }
});

Deno.test("edgemoe chat: renders the template, streams replies, ends at an empty line", async () => {
  const dir = Deno.makeTempDirSync();
  const tpl = `${dir}/chat.jinja`;
  Deno.writeTextFileSync(
    tpl,
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
  );
  const r = await edgemoe([
    "chat",
    "-m",
    MODEL,
    "--chat-template-file",
    tpl,
    "-n",
    "4",
    "--temp",
    "0",
    "-s",
    "Be brief.",
  ], "Hello\nAgain\n\n");
  assertEquals(r.code, 0, r.err);
  assertEquals(r.out.split("\n").length >= 2, true);
  const missing = await edgemoe(["chat", "-m", MODEL], "Hello\n");
  assert(missing.err.includes("no tokenizer.chat_template"), missing.err);
});

Deno.test("edgemoe profile: writes a valid profile atomically", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/t.txt`, "The quick brown fox jumps over the lazy dog. ".repeat(4));
  const r = await edgemoe(["profile", "-m", MODEL, "-f", `${dir}/t.txt`, "-o", `${dir}/p.json`, "-c", "16"]);
  assertEquals(r.code, 0, r.err);
  const p = JSON.parse(Deno.readTextFileSync(`${dir}/p.json`));
  assertEquals([p.format, p.nLayers, p.nExperts], ["edgemoe.routing-profile", 2, 8]);
  assert(p.tokens > 16);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["p.json", "t.txt"]);
});

Deno.test("edgemoe run: peak RSS stays under the memory budget (experts on disk)", async () => {
  const budget = 160 << 20;
  const r = await edgemoe([
    "run",
    "-m",
    MODEL,
    "-p",
    "The quick brown fox",
    "-n",
    "16",
    "--temp",
    "0",
    "--store",
    "uring",
    "--mem-budget",
    String(budget),
    "--stats",
  ]);
  assertEquals(r.code, 0, r.err);
  const rss = Number(/peak RSS: .*\((\d+) bytes\)/.exec(r.err)?.[1]);
  assert(rss > 0 && rss <= budget, `peak RSS ${rss} > budget ${budget}:\n${r.err}`);
});

Deno.test("edgemoe convert --type: every expert requantized to one type; the pack runs", async () => {
  const dir = Deno.makeTempDirSync();
  const out = `${dir}/q8.pack.gguf`;
  const r = await edgemoe(["convert", "-m", MODEL, "-o", out, "--type", "q8_0"]);
  assertEquals(r.code, 0, r.err);
  using pack = PackFile.open(out);
  const types = new Set(pack.blobs().flatMap((b) => Object.values(b.tensors).map((t) => t.type.name)));
  assertEquals([...types], ["q8_0"]);
  const run = await edgemoe(["run", "-m", out, "-p", "The quick", "-n", "4", "--temp", "0"]);
  assertEquals(run.code, 0, run.err);
  const bad = await edgemoe(["convert", "-m", MODEL, "-o", `${dir}/x.gguf`, "--type", "q9_9"]);
  assert(bad.code !== 0 && bad.err.includes("q9_9"), bad.err);
});

Deno.test("deno task edgemoe grants exactly the CLI's permissions", () => {
  const task: string = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url))).tasks.edgemoe;
  assertEquals(task, `deno run ${[...CLI_RUNTIME_FLAGS, ...CLI_PERMISSIONS].join(" ")} src/cli/main.ts`);
});
