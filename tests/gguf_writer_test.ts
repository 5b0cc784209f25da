/**
 * The GGUF writer: its output is what gguf-py read back (committed by
 * tools/fixtures/make_gguf.py --ours), llama.cpp's parser accepts it, our
 * reader round-trips it, and a failed write leaves nothing behind.
 */
import { EdgeMoeError } from "../src/errors.ts";
import { GgufFile } from "../src/gguf/reader.ts";
import { GgmlType } from "../src/gguf/types.ts";
import { writeGguf } from "../src/gguf/writer.ts";
import { assert, assertEquals, assertRejects } from "../src/std/assert.ts";
import { OURS_METADATA, oursTensors } from "./gguf_ours_spec.ts";
import { canonMetadata, canonValue, llamaGguf, sha256 } from "./gguf_oracle.ts";

const FIX = new URL("./fixtures/gguf/", import.meta.url).pathname;

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "edgemoe-gguf-" });
}

async function exists(p: string): Promise<boolean> {
  return await Deno.lstat(p).then(() => true, () => false);
}

Deno.test("the writer's output is byte-identical to the file gguf-py read back, and gguf-py saw the spec", async () => {
  const dir = await tmp();
  const path = `${dir}/ours.gguf`;
  const res = await writeGguf(path, OURS_METADATA, oursTensors());
  assertEquals(await Deno.readFile(path), await Deno.readFile(FIX + "ours.gguf"));
  assertEquals(res.fileBytes, (await Deno.stat(path)).size);

  const seen = JSON.parse(await Deno.readTextFile(FIX + "ours.gguf-py.json"));
  assertEquals(seen.metadata, Object.fromEntries(OURS_METADATA.map(([k, v]) => [k, canonValue(v)])));
  const specs = oursTensors();
  assertEquals(seen.tensors.length, specs.length);
  for (const [i, s] of specs.entries()) {
    const bytes = s.data instanceof Uint8Array
      ? s.data
      : new Uint8Array((await Array.fromAsync(s.data())).flatMap((c) => [...c]));
    assertEquals(seen.tensors[i], {
      name: s.name,
      type: s.type,
      dims: [...s.dims],
      offset: res.tensors[i].offset,
      sha256: await sha256(bytes),
    });
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("llama.cpp's gguf_init_from_file accepts the writer's output with the same directory", () => {
  const path = FIX + "ours.gguf";
  const view = llamaGguf(path);
  assert(view !== null, "llama.cpp refused ours.gguf");
  using f = GgufFile.open(path);
  assertEquals(view.nKv, f.metadata.size);
  assertEquals(view.alignment, f.alignment);
  assertEquals(view.dataOffset, f.dataOffset);
  assertEquals(
    view.tensors,
    f.tensors.map((t) => ({ name: t.name, type: t.type.id, offset: t.offset - f.dataOffset })),
  );
});

Deno.test("our reader reads back what our writer wrote", () => {
  using f = GgufFile.open(FIX + "ours.gguf");
  assertEquals(canonMetadata(f), Object.fromEntries(OURS_METADATA.map(([k, v]) => [k, canonValue(v)])));
  assertEquals(f.tensors.map((t) => t.dims), oursTensors().map((t) => [...t.dims]));
  for (const t of f.tensors) assertEquals(t.offset % 64, 0);
});

Deno.test("atomic: a failure midway leaves no file at the final name and no .partial", async () => {
  const dir = await tmp();
  const path = `${dir}/out.gguf`;
  const failing = {
    name: "b",
    type: GgmlType.f32,
    dims: [1 << 16],
    data: async function* () {
      yield new Uint8Array(1 << 17);
      throw new Error("disk on fire");
    },
  };
  const e = await assertRejects(
    () => writeGguf(path, [], [{ name: "a", type: GgmlType.f32, dims: [4], data: new Uint8Array(16) }, failing]),
    EdgeMoeError,
    "disk on fire",
  );
  assertEquals(e.code, "io");
  assertEquals(await exists(path), false);
  assertEquals(await exists(`${path}.partial`), false);
  assertEquals([...Deno.readDirSync(dir)], []);

  await Deno.writeTextFile(path, "previous");
  await assertRejects(() => writeGguf(path, [], [failing], { overwrite: true }), EdgeMoeError, "disk on fire");
  assertEquals(await Deno.readTextFile(path), "previous");
  assertEquals(await exists(`${path}.partial`), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic: a short stream, an existing file without overwrite and bad specs are refused before or without output", async () => {
  const dir = await tmp();
  const path = `${dir}/out.gguf`;
  const short = {
    name: "s",
    type: GgmlType.f32,
    dims: [8],
    data: async function* () {
      yield new Uint8Array(20);
    },
  };
  const e = await assertRejects(
    () => writeGguf(path, [], [short]),
    EdgeMoeError,
    `tensor "s": data has 20 bytes, expected 32`,
  );
  assertEquals(e.code, "invalid_argument");
  assertEquals([...Deno.readDirSync(dir)], []);
  const t = (over: object) => ({ name: "t", type: GgmlType.f32, dims: [4], data: new Uint8Array(16), ...over });
  const cases: [Parameters<typeof writeGguf>[1], object[], string][] = [
    [[], [t({ dims: [33], type: GgmlType.q8_0 })], "row length 33 is not a multiple of the q8_0 block size 32"],
    [[], [t({}), t({})], `tensor "t" is given twice`],
    [[], [t({ dims: [1, 1, 1, 1, 4] })], "5 dims, expected 1 to 4"],
    [[], [t({ dims: [0] })], "expected positive integers"],
    [[], [t({ name: "x".repeat(64) })], "name is 64 bytes, expected 1 to 63"],
    [[], [t({ data: new Uint8Array(3) })], "data has 3 bytes, expected 16"],
    [[], [t({ type: 99 })], "unknown GGML type id 99"],
    [[["general.alignment", { type: "u32", value: 48 }]], [], "general.alignment is 48, expected a power of two"],
    [[["k", { type: "u8", value: 256 }]], [], `metadata key "k": expected an integer in u8 range, got 256`],
    [[["k", { type: "u64", value: 1 as unknown as bigint }]], [], `metadata key "k": expected a bigint for u64`],
    [[["k", { type: "u8", value: 1 }], ["k", { type: "u8", value: 2 }]], [], `metadata key "k" is given twice`],
  ];
  for (const [meta, tensors, msg] of cases) {
    await assertRejects(() => writeGguf(path, meta, tensors as never), EdgeMoeError, msg);
    assertEquals([...Deno.readDirSync(dir)], [], msg);
  }
  await Deno.writeTextFile(path, "keep");
  await assertRejects(() => writeGguf(path, [], []), EdgeMoeError, "exists (pass overwrite / --force to replace it)");
  assertEquals(await Deno.readTextFile(path), "keep");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic: a full disk (ENOSPC from /dev/full) is an io error, the previous file is intact, no .partial", async () => {
  const dir = await tmp();
  const path = `${dir}/out.gguf`;
  await Deno.writeTextFile(path, "previous");
  // The writer opens PATH.partial; a symlink to /dev/full makes every write fail with ENOSPC.
  await Deno.symlink("/dev/full", `${path}.partial`);
  const e = await assertRejects(
    () => writeGguf(path, OURS_METADATA, oursTensors(), { overwrite: true }),
    EdgeMoeError,
    "No space left on device",
  );
  assertEquals(e.code, "io");
  assertEquals(await Deno.readTextFile(path), "previous");
  assertEquals(await exists(`${path}.partial`), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic: a process killed mid-write leaves the previous file intact; the next write replaces the stale .partial", async () => {
  const dir = await tmp();
  const path = `${dir}/out.gguf`;
  await Deno.writeTextFile(path, "previous");
  const writer = new URL("../src/gguf/writer.ts", import.meta.url).href;
  const code = `
    import { writeGguf } from ${JSON.stringify(writer)};
    await writeGguf(${JSON.stringify(path)}, [], [{ name: "t", type: 0, dims: [1 << 20], data: async function* () {
      yield new Uint8Array(1 << 21);
      Deno.kill(Deno.pid, "SIGKILL");
      yield new Uint8Array(1 << 21);
    } }], { overwrite: true });`;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "null", stderr: "null" })
    .output();
  assertEquals(out.signal, "SIGKILL");
  assertEquals(await Deno.readTextFile(path), "previous");
  assert(await exists(`${path}.partial`), "the killed writer's .partial should be there (nothing can remove it)");
  await writeGguf(path, OURS_METADATA, oursTensors(), { overwrite: true });
  assertEquals(await Deno.readFile(path), await Deno.readFile(FIX + "ours.gguf"));
  assertEquals(await exists(`${path}.partial`), false);
  await Deno.remove(dir, { recursive: true });
});
