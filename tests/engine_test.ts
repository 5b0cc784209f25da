/**
 * The engine end to end on the tiny fixtures: the same greedy tokens as
 * llama.cpp whatever the store, cache policy and memory budget, and a clear
 * error (with the smallest working budget) when the budget is too small.
 */
import { NativeLibrary } from "../mod.ts";
import { createEngine, type EngineOptions } from "../src/engine.ts";
import { convertGgufToPack } from "../src/pack/mod.ts";
import { ProfileBuilder, profileToJson } from "../src/predictor/predictor.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { FIXTURE_DIR, readReference } from "./oracle/reference.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;
const ref = readReference("qwen3moe");

function greedyTokens(
  path: string,
  opts: EngineOptions,
): { tokens: number[]; engine: ReturnType<typeof createEngine> } {
  const engine = createEngine(path, opts);
  const tokens = [...engine.generate(ref.greedy.prompt, { maxTokens: ref.greedy.tokens.length, stopAtEog: false })]
    .map((t) => t.id)
    .filter((id) => id >= 0);
  return { tokens, engine };
}

Deno.test("engine: identical greedy tokens (= llama.cpp's) for every store, policy and budget", async () => {
  using lib = NativeLibrary.open();
  const dir = Deno.makeTempDirSync({ dir: new URL("../zig/", import.meta.url).pathname, prefix: ".test-engine-" });
  try {
    const pack = `${dir}/qwen3moe.pack.gguf`;
    await convertGgufToPack(MODEL, pack, { checksum: (b) => lib.checksum64(b) });
    // The smallest budget that works, from the error the engine gives below it.
    const e = assertThrows(() => createEngine(MODEL, { lib, store: "pread", memBudget: 1 << 20 }), EdgeMoeError);
    assertEquals(e.code, "out_of_memory");
    const smallest = Number(/smallest budget that works is (\d+) bytes/.exec(e.message)?.[1]);
    assert(smallest > 0, e.message);
    // A routing profile for the table predictor, from the reference prompts.
    const builder = new ProfileBuilder(2, 8);
    {
      using profiler = createEngine(MODEL, { lib, onRoute: (l, ids) => builder.record(l, ids) });
      for (const p of ref.prompts) {
        profiler.reset();
        profiler.evaluate(p.tokens);
      }
    }
    const profile = `${dir}/profile.json`;
    Deno.writeTextFileSync(profile, profileToJson(builder.profile()));
    const runs: [string, EngineOptions][] = [
      [MODEL, { store: "ram" }],
      [MODEL, { store: "uring", memBudget: smallest, predictor: "none" }],
      [MODEL, { store: "uring", memBudget: smallest + (4 << 20), predictor: "table", profile }],
      [MODEL, { store: "pread", memBudget: smallest + (4 << 20), predictor: "lookahead", prefetchDepth: 6 }],
      [MODEL, { store: "pread", memBudget: smallest, cachePolicy: "lru" }],
      [MODEL, { store: "uring", memBudget: smallest, cachePolicy: "lfu" }],
      [MODEL, { store: "mmap", memBudget: smallest + (1 << 20), cachePolicy: "edgemoe" }],
      [pack, { store: "uring", memBudget: 256 << 20 }],
      [pack, { store: "pread", cachePolicy: "edgemoe" }],
    ];
    for (const [path, opts] of runs) {
      const { tokens, engine } = greedyTokens(path, { ...opts, lib });
      using _ = engine;
      assertEquals(tokens, ref.greedy.tokens, `${path} ${JSON.stringify(opts)}`);
      const s = engine.stats().store;
      const p = engine.stats().predictor;
      assert(p.correct <= p.predicted && p.correct <= p.actual, JSON.stringify(p));
      if (opts.predictor === "table" || opts.predictor === "lookahead") {
        assert(p.predicted > 0 && s!.prefetches > 0, `${opts.predictor} prefetched: ${JSON.stringify(s)}`);
        console.log(
          `  ${opts.predictor}: precision ${(p.correct / p.predicted).toFixed(2)}, recall ${
            (p.correct / p.actual).toFixed(2)
          }, prefetches ${s!.prefetches}, used ${s!.prefetchUsed}`,
        );
      }
      if (opts.store !== "ram") {
        assert(s && s.misses > 0, "experts were read from disk");
        if (opts.memBudget === smallest) assert(s.evictions > 0, "the smallest budget forces evictions");
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("engine: a budget below the minimum is out_of_memory naming what takes the space", () => {
  const e = assertThrows(() => createEngine(MODEL, { store: "uring", memBudget: "1MiB" }), EdgeMoeError);
  assertEquals(e.code, "out_of_memory");
  for (const part of ["resident weights", "KV cache", "expert slots", "smallest budget that works"]) {
    assert(e.message.includes(part), e.message);
  }
  assertThrows(() => createEngine(MODEL, { memBudget: "lots" }), EdgeMoeError, "is not a size");
});

Deno.test("engine: text in, text out, and the context limit is enforced", () => {
  using engine = createEngine(MODEL, { nCtx: 16 });
  const text = [...engine.generate("The quick brown fox", { maxTokens: 4, stopAtEog: false })].map((t) => t.text).join(
    "",
  );
  assertEquals(typeof text, "string");
  assertThrows(() => engine.evaluate(new Array(20).fill(1)), EdgeMoeError, "exceed the context of 16");
  engine.close();
  assertThrows(() => engine.evaluate([1]), EdgeMoeError, "closed");
});
