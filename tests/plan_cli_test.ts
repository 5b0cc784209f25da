/** `edgemoe perplexity`, `kld`, `plan` and `convert --plan` as users run them (subprocesses). */
import { assert, assertEquals } from "../src/std/assert.ts";
import { FIXTURE_DIR } from "./oracle/reference.ts";
import { readPlan } from "../src/plan/plan_file.ts";
import { PackFile } from "../src/pack/reader.ts";
import { edgemoe } from "./cli_helpers.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe-q4_k_m.gguf`;
const CALIB = new URL("fixtures/text/moby_dick_ch1.txt", import.meta.url).pathname;
const HELD = new URL("fixtures/text/moby_dick_ch3.txt", import.meta.url).pathname;

Deno.test("edgemoe plan → convert --plan → kld: the pack has the planned types and the plan's budget", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plan = `${dir}/plan.json`, pack = `${dir}/mixed.pack.gguf`;
    const p = await edgemoe([
      "plan",
      "-m",
      MODEL,
      "-f",
      CALIB,
      "-c",
      "32",
      "--max-tokens",
      "64",
      "--types",
      "q2_k,q4_k,q8_0",
      "--target-bits",
      "4",
      "-o",
      plan,
    ]);
    assertEquals(p.code, 0, p.err);
    assert(/\| edgemoe \|/.test(p.out) && /\| knapsack \|/.test(p.out), p.out);
    assert(/plan: measuring: \d+\/\d+ token evaluations/.test(p.err), p.err);
    const planned = readPlan(plan);
    assert(planned.plans.knapsack.bits <= 4 && planned.plans.edgemoe.bits <= 4);
    const c = await edgemoe(["convert", "-m", MODEL, "--plan", plan, "-o", pack]);
    assertEquals(c.code, 0, c.err);
    using f = PackFile.open(pack);
    for (const b of f.blobs()) assertEquals(b.tensors.down.type.name, planned.types[b.layer][b.expert]);
    const k = await edgemoe(["kld", "-m", pack, "--base", MODEL, "-f", HELD, "-c", "32", "--chunks", "2"]);
    assertEquals(k.code, 0, k.err);
    assert(/KL divergence: mean \S+ ± \S+, p99 \S+, max \S+; same top-1: [\d.]+%/.test(k.out), k.out);
    const ppl = await edgemoe(["perplexity", "-m", pack, "-f", HELD, "-c", "32", "--chunks", "2"]);
    assertEquals(ppl.code, 0, ppl.err);
    assert(
      /perplexity: [\d.]+ ± [\d.]+, bits per byte: [\d.]+ \(2 windows of 32, 30 tokens scored\)/.test(ppl.out),
      ppl.out,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("edgemoe plan: exactly one budget; a text too short for one window is refused", async () => {
  const none = await edgemoe(["plan", "-m", MODEL, "-f", CALIB, "-o", "/dev/null"]);
  assertEquals(none.code, 1);
  assert(none.err.includes("give exactly one of --target-bits, --max-kld, --budget (got 0)"), none.err);
  const short = await edgemoe(["perplexity", "-m", MODEL, "-f", "/dev/null", "-c", "32"]);
  assertEquals(short.code, 1);
  assert(short.err.includes("the text has 0 tokens; at least one window of 32 is needed"), short.err);
});
