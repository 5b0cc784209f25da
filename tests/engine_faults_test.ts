/**
 * The model file changed under a running engine, with every store backend:
 * truncated (a plain GGUF and a pack) or modified (a pack's expert blobs).
 * Each must surface as an EdgeMoeError naming the expert — never wrong
 * tokens, never a crash (with mmap, touching a truncated mapping would be
 * SIGBUS: the store checks the file size first).
 */
import { NativeLibrary } from "../mod.ts";
import { createEngine } from "../src/engine.ts";
import { convertGgufToPack } from "../src/pack/mod.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { FIXTURE_DIR, readReference } from "./oracle/reference.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;
const ref = readReference("qwen3moe");
const BACKENDS = ["uring", "pread", "mmap"] as const;

/** Generates until the reference's length; returns the error it must end with. */
function failingRun(engine: ReturnType<typeof createEngine>): EdgeMoeError {
  return assertThrows(
    () => [...engine.generateSync(ref.greedy.prompt, { maxTokens: ref.greedy.tokens.length, stopAtEog: false })],
    EdgeMoeError,
  );
}

/** The smallest budget that opens `path`, from the error the engine gives below it (it forces expert re-reads). */
function smallestBudget(lib: NativeLibrary, path: string): number {
  const e = assertThrows(() => createEngine(path, { lib, store: "pread", memBudget: 1 << 20 }), EdgeMoeError);
  const smallest = Number(/smallest budget that works is (\d+) bytes/.exec(e.message)?.[1]);
  assert(smallest > 0, e.message);
  return smallest;
}

function flipBytes(path: string, from: number): void {
  const size = Deno.statSync(path).size;
  using f = Deno.openSync(path, { read: true, write: true });
  for (let off = from; off < size; off += 4096) {
    const b = new Uint8Array(1);
    f.seekSync(off, Deno.SeekMode.Start);
    f.readSync(b);
    f.seekSync(off, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array([b[0] ^ 0x04]));
  }
}

Deno.test("engine faults: a model truncated or modified while the engine runs is an error with every backend", async () => {
  using lib = NativeLibrary.open();
  const dir = Deno.makeTempDirSync({ dir: new URL("../zig/", import.meta.url).pathname, prefix: ".test-faults-" });
  try {
    const pack = `${dir}/m.pack.gguf`;
    await convertGgufToPack(MODEL, pack, { checksum: (b) => lib.checksum64(b) });
    for (const store of BACKENDS) {
      for (const source of [MODEL, pack]) {
        // Truncated after open: the resident weights are in RAM, the experts are not.
        const copy = `${dir}/${store}-${source === pack ? "pack" : "plain"}.gguf`;
        Deno.copyFileSync(source, copy);
        {
          using engine = createEngine(copy, { lib, store, memBudget: 256 << 20 });
          Deno.truncateSync(copy, Math.floor(Deno.statSync(copy).size * 0.6));
          const e = failingRun(engine);
          assertEquals(e.code, "io", `${store} ${copy}: ${e.message}`);
          assert(
            /read expert \d+ of layer \d+/.test(e.message) && /past the end|ends early/.test(e.message),
            e.message,
          );
        }
        // Truncated mid-generation (experts evicted and read again): llama.cpp's tokens up to the fault, then an error.
        Deno.copyFileSync(source, copy);
        {
          using engine = createEngine(copy, { lib, store, memBudget: smallestBudget(lib, copy) });
          const got: number[] = [];
          const e = assertThrows(() => {
            for (const t of engine.generateSync(ref.greedy.prompt, { maxTokens: ref.greedy.tokens.length })) {
              if (t.id < 0) continue;
              got.push(t.id);
              if (got.length === 1) Deno.truncateSync(copy, Math.floor(Deno.statSync(copy).size * 0.6));
            }
          }, EdgeMoeError);
          assertEquals(e.code, "io", `${store}: ${e.message}`);
          assertEquals(got, ref.greedy.tokens.slice(0, got.length));
        }
      }
      // A pack's expert blobs modified after open: a checksum error naming the expert.
      const copy = `${dir}/${store}-modified.pack.gguf`;
      Deno.copyFileSync(pack, copy);
      using engine = createEngine(copy, { lib, store, memBudget: smallestBudget(lib, copy) });
      flipBytes(copy, Math.floor(Deno.statSync(copy).size / 2));
      const e = failingRun(engine);
      assertEquals(e.code, "corrupt_data", `${store}: ${e.message}`);
      assert(/read expert \d+ of layer \d+/.test(e.message) && e.message.includes("checksum mismatch"), e.message);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
