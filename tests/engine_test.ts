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
import { assert, assertEquals, assertRejects, assertThrows } from "../src/std/assert.ts";
import { FIXTURE_DIR, readReference } from "./oracle/reference.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;
const ref = readReference("qwen3moe");

function greedyTokens(
  path: string,
  opts: EngineOptions,
): { tokens: number[]; engine: ReturnType<typeof createEngine> } {
  const engine = createEngine(path, opts);
  const tokens = [...engine.generateSync(ref.greedy.prompt, { maxTokens: ref.greedy.tokens.length, stopAtEog: false })]
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
  const text = [...engine.generateSync("The quick brown fox", { maxTokens: 4, stopAtEog: false })].map((t) => t.text)
    .join(
      "",
    );
  assertEquals(typeof text, "string");
  assertThrows(() => engine.evaluate(new Array(20).fill(1)), EdgeMoeError, "exceed the context of 16");
  engine.close();
  assertThrows(() => engine.evaluate([1]), EdgeMoeError, "closed");
});

Deno.test("engine: a disk error or a corrupted expert surfaces as an error naming the expert, never as tokens", async () => {
  using lib = NativeLibrary.open();
  const dir = Deno.makeTempDirSync({ dir: new URL("../zig/", import.meta.url).pathname, prefix: ".test-engine-" });
  try {
    // EIO on the 5th expert read.
    {
      using engine = createEngine(MODEL, {
        lib,
        store: "uring",
        memBudget: 256 << 20,
        storeFault: { mode: "eio", after: 5 },
      });
      const e = assertThrows(() => [...engine.generateSync(ref.greedy.prompt, { maxTokens: 4 })], EdgeMoeError);
      assertEquals(e.code, "io");
      assert(/read expert \d+ of layer \d+/.test(e.message), e.message);
    }
    // Short reads everywhere: recovered, same tokens as llama.cpp.
    {
      const { tokens, engine } = greedyTokens(MODEL, {
        lib,
        store: "pread",
        memBudget: 256 << 20,
        storeFault: { mode: "short", after: 0 },
      });
      using _ = engine;
      assertEquals(tokens, ref.greedy.tokens);
    }
    // A bit flipped in a pack's expert blob after the engine opened it.
    const pack = `${dir}/m.pack.gguf`;
    await convertGgufToPack(MODEL, pack, { checksum: (b) => lib.checksum64(b) });
    using engine = createEngine(pack, { lib, store: "uring", memBudget: 256 << 20 });
    const size = Deno.statSync(pack).size;
    const f = Deno.openSync(pack, { read: true, write: true });
    // Flip a byte in every 4 KiB page of the second half of the file (the expert blobs).
    for (let off = Math.floor(size / 2); off < size; off += 4096) {
      const b = new Uint8Array(1);
      f.seekSync(off, Deno.SeekMode.Start);
      f.readSync(b);
      f.seekSync(off, Deno.SeekMode.Start);
      f.writeSync(new Uint8Array([b[0] ^ 0x10]));
    }
    f.close();
    const e = assertThrows(
      () => [...engine.generateSync(ref.greedy.prompt, { maxTokens: ref.greedy.tokens.length })],
      EdgeMoeError,
    );
    assertEquals(e.code, "corrupt_data");
    assert(/read expert \d+ of layer \d+/.test(e.message) && e.message.includes("checksum mismatch"), e.message);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("engine.generate: an async stream of text ending with usage and timings; stop strings; abort; messages", async () => {
  const stages: string[] = [];
  await using engine = createEngine(MODEL, {
    store: "ram",
    chatTemplate: "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:",
    onProgress: (p) => stages.push(p.stage),
  });
  assertEquals(stages.at(-1), "ready");
  // The stream's text equals the synchronous greedy continuation.
  const sync = [...engine.generateSync(ref.greedy.prompt, { maxTokens: 8, stopAtEog: false })].map((t) => t.text).join(
    "",
  );
  engine.reset();
  let text = "", done;
  for await (const c of engine.generate(ref.greedy.prompt, { maxTokens: 8, stopAtEog: false })) {
    if (c.type === "text") text += c.text;
    else done = c;
  }
  assertEquals(text, sync);
  assertEquals(done?.finishReason, "length");
  assertEquals(done?.usage, { promptTokens: ref.greedy.prompt.length, completionTokens: 8 });
  assert(done!.timings.generationMs >= 0 && done!.timings.promptMs > 0);
  // A stop string taken from the middle of that text: generation ends before it, and it is not emitted.
  const stop = sync.slice(Math.floor(sync.length / 2), Math.floor(sync.length / 2) + 2);
  engine.reset();
  let stopped = "", reason;
  for await (const c of engine.generate(ref.greedy.prompt, { maxTokens: 8, stopAtEog: false, stop: [stop] })) {
    if (c.type === "text") stopped += c.text;
    else reason = c.finishReason;
  }
  assertEquals(stopped, sync.slice(0, sync.indexOf(stop)));
  assertEquals(reason, "stop");
  // Abort between tokens.
  engine.reset();
  const ctrl = new AbortController();
  let n = 0, last;
  for await (const c of engine.generate(ref.greedy.prompt, { maxTokens: 8, stopAtEog: false, signal: ctrl.signal })) {
    if (c.type === "text" && ++n === 2) ctrl.abort();
    if (c.type === "done") last = c;
  }
  assertEquals(last?.finishReason, "cancelled");
  assert(last!.usage.completionTokens <= 3);
  // Chat messages go through the chat template.
  engine.reset();
  const chunks = [];
  for await (const c of engine.generate([{ role: "user", content: "hi" }], { maxTokens: 2, stopAtEog: false })) {
    chunks.push(c);
  }
  assertEquals(chunks.at(-1)?.type, "done");
  engine.reset();
  await assertRejects(
    async () => {
      for await (const _ of engine.generate(new Array(5000).fill(1))) { /* too long */ }
    },
    EdgeMoeError,
    "the context holds",
  );
});
