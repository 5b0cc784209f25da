/**
 * The pack: convert of a gguf-py-written MoE model, checked against what
 * gguf-py and the reference `xxhash` read from the committed pack
 * (tools/fixtures/make_gguf.py --ours), against llama.cpp's parser, and the
 * pack reader's validation on mutated packs. Also the convert/inspect CLI.
 */
import { nativeLibrary } from "../ffi/native.ts";
import { main } from "../src/cli/main.ts";
import { EdgeMoeError, type EdgeMoeErrorCode } from "../src/errors.ts";
import { GgufFile } from "../src/gguf/reader.ts";
import type { GgufValue } from "../src/gguf/types.ts";
import { type GgufTensorSpec, writeGguf } from "../src/gguf/writer.ts";
import { convertGgufToPack } from "../src/pack/convert.ts";
import { PACK_KEYS } from "../src/pack/format.ts";
import { PackFile } from "../src/pack/reader.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../src/std/assert.ts";
import { llamaGguf, sha256 } from "./gguf_oracle.ts";

const FIX = new URL("./fixtures/gguf/", import.meta.url).pathname;
const SRC = FIX + "moe_tiny.gguf";
const PACK = FIX + "moe_tiny.pack.gguf";
const checksum = (b: Uint8Array) => nativeLibrary().checksum64(b);

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "edgemoe-pack-" });
}

Deno.test("convert writes the same bytes gguf-py read back; blob and source checksums match the reference xxhash", async () => {
  const dir = await tmp();
  await convertGgufToPack(SRC, `${dir}/p.gguf`, { checksum });
  assertEquals(await Deno.readFile(`${dir}/p.gguf`), await Deno.readFile(PACK));
  const seen = JSON.parse(await Deno.readTextFile(FIX + "moe_tiny.pack.gguf-py.json"));
  assertEquals(seen.metadata[PACK_KEYS.checksums].value, seen.blobChecksums);
  assertEquals(seen.metadata[PACK_KEYS.sourceHash].value, seen.sourceHash);
  assertEquals(seen.metadata[PACK_KEYS.sourceBytes].value, String((await Deno.stat(SRC)).size));
  using pack = PackFile.open(PACK);
  assertEquals(pack.blobs().map((b) => b.checksum.toString()), seen.blobChecksums);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("every pack expert tensor is its slice of the source's stacked tensor; resident tensors are copied", async () => {
  const seen = JSON.parse(await Deno.readTextFile(FIX + "moe_tiny.pack.gguf-py.json"));
  const byName = new Map<string, { sha256: string; dims: number[]; type: number }>(
    seen.tensors.map((t: { name: string }) => [t.name, t]),
  );
  using src = GgufFile.open(SRC);
  using pack = PackFile.open(PACK);
  assertEquals(pack.expertLayers, [0, 1]);
  assertEquals(pack.expertCount, 4);
  for (const b of pack.blobs()) {
    assertEquals(b.offset % 4096, 0);
    for (const part of ["gate", "up", "down"] as const) {
      const stacked = src.tensor(`blk.${b.layer}.ffn_${part}_exps.weight`)!;
      const size = stacked.bytes / 4;
      const slice = src.readRange(stacked.offset + b.expert * size, size);
      const t = b.tensors[part];
      assertEquals(byName.get(t.name), { ...byName.get(t.name)!, sha256: await sha256(slice) }, t.name);
      assertEquals(byName.get(t.name)!.dims, stacked.dims.slice(0, 2));
      assertEquals(byName.get(t.name)!.type, stacked.type.id);
      assertEquals(t.bytes, size);
    }
  }
  assertEquals(
    pack.resident.map((t) => t.name),
    src.tensors.filter((t) => !t.name.includes("_exps")).map((t) => t.name),
  );
  for (const t of pack.resident) {
    assertEquals(byName.get(t.name)!.sha256, await sha256(src.readTensor(t.name)), t.name);
  }
  assertEquals(pack.plan.types[1][3], ["q4_0", "q4_0", "f32"]);
});

Deno.test("llama.cpp's gguf_init_from_file accepts the pack with the same directory and alignment 4096", () => {
  const view = llamaGguf(PACK);
  assert(view !== null, "llama.cpp refused the pack");
  using f = GgufFile.open(PACK);
  assertEquals(view.alignment, 4096);
  assertEquals(
    view.tensors,
    f.tensors.map((t) => ({ name: t.name, type: t.type.id, offset: t.offset - f.dataOffset })),
  );
});

Deno.test("a flipped byte inside a blob is a checksum mismatch (corrupt_data), not garbage", async () => {
  const dir = await tmp();
  const bytes = await Deno.readFile(PACK);
  const path = `${dir}/bad.gguf`;
  {
    using pack = PackFile.open(PACK);
    const b = pack.expert(1, 2);
    bytes[b.offset + b.tensors.up.offset + 7] ^= 0x10;
  }
  await Deno.writeFile(path, bytes);
  using pack = PackFile.open(path);
  pack.readExpert(1, 1, checksum);
  const e = assertThrows(() => pack.readExpert(1, 2, checksum), EdgeMoeError, "expert 2 of layer 1");
  assertEquals(e.code, "corrupt_data");
  assert(e.message.includes("checksum"), e.message);
  assertThrows(() => pack.expert(2, 0), EdgeMoeError, "no expert 0 in layer 2");
  await Deno.remove(dir, { recursive: true });
});

type Mutation = (meta: Map<string, GgufValue>, tensors: GgufTensorSpec[]) => void;

/** The committed pack rewritten with `mutate` applied; returns the new path. */
async function mutatedPack(dir: string, mutate: Mutation): Promise<string> {
  using f = GgufFile.open(PACK);
  const meta = new Map(f.metadata);
  const tensors: GgufTensorSpec[] = f.tensors.map((t) => ({
    name: t.name,
    type: t.type.id,
    dims: t.dims,
    data: f.readTensor(t.name),
  }));
  mutate(meta, tensors);
  const path = `${dir}/m${crypto.randomUUID()}.gguf`;
  await writeGguf(path, meta, tensors);
  return path;
}

const moveToEnd = (name: string): Mutation => (_m, ts) => {
  const i = ts.findIndex((t) => t.name === name);
  ts.push(...ts.splice(i, 1));
};

const PACK_MALFORMED: [string, Mutation, EdgeMoeErrorCode, string][] = [
  [
    "another format version",
    (m) => m.set(PACK_KEYS.formatVersion, { type: "u32", value: 9 }),
    "unsupported",
    "pack format version 9, expected 1",
  ],
  [
    "alignment 32",
    (m) => m.set("general.alignment", { type: "u32", value: 32 }),
    "corrupt_data",
    "general.alignment is 32, expected 4096",
  ],
  [
    "a missing expert tensor",
    (_m, ts) => ts.splice(ts.findIndex((t) => t.name === "blk.1.ffn_up.2.weight"), 1),
    "corrupt_data",
    `expert 2 of layer 1 has no tensor "blk.1.ffn_up.2.weight"`,
  ],
  [
    "an expert beyond expert_count",
    (m) => {
      m.set(PACK_KEYS.expertCount, { type: "u32", value: 3 });
      m.set(PACK_KEYS.checksums, { type: "array", itemType: "u64", value: new BigUint64Array(6) });
    },
    "corrupt_data",
    `tensor "blk.0.ffn_gate.3.weight" is an expert outside`,
  ],
  [
    "checksums of the wrong length",
    (m) => m.set(PACK_KEYS.checksums, { type: "array", itemType: "u64", value: new BigUint64Array(7) }),
    "corrupt_data",
    "has 7 entries, expected 2 layers × 4 experts",
  ],
  [
    "checksums of the wrong item type",
    (m) => m.set(PACK_KEYS.checksums, { type: "array", itemType: "u32", value: new Uint32Array(8) }),
    "corrupt_data",
    "expected array of u64, found array of u32",
  ],
  [
    "layers not ascending",
    (m) => m.set(PACK_KEYS.expertLayers, { type: "array", itemType: "u32", value: new Uint32Array([1, 0]) }),
    "corrupt_data",
    "is not strictly ascending",
  ],
  [
    "a plan that is not JSON",
    (m) => m.set(PACK_KEYS.plan, { type: "string", value: "{" }),
    "corrupt_data",
    "edgemoe.plan is not JSON",
  ],
  [
    "a blob split by another tensor",
    moveToEnd("blk.0.ffn_up.1.weight"),
    "corrupt_data",
    `expert 1 of layer 0: "blk.0.ffn_up.1.weight" is at`,
  ],
  [
    "a resident tensor after the blobs",
    moveToEnd("output.weight"),
    "corrupt_data",
    `resident tensor "output.weight" lies after the first expert blob`,
  ],
  [
    "experts of one layer with different dims",
    (_m, ts) => {
      const t = ts.find((t) => t.name === "blk.1.ffn_down.2.weight")!;
      t.dims = [64, 32];
    },
    "corrupt_data",
    `"blk.1.ffn_down.2.weight" has dims [64,32], expert 0 of layer 1 has [32,64]`,
  ],
];

for (const [name, mutate, code, includes] of PACK_MALFORMED) {
  Deno.test(`malformed pack: ${name} is ${code}`, async () => {
    const dir = await tmp();
    const path = await mutatedPack(dir, mutate);
    const e = assertThrows(() => PackFile.open(path), EdgeMoeError, includes);
    assertEquals(e.code, code);
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("convert refuses a pack, a model without experts and an existing output", async () => {
  const dir = await tmp();
  const cases: [string, string, string][] = [
    [PACK, `${dir}/a.gguf`, "the input is already a pack"],
    [FIX + "basic.gguf", `${dir}/b.gguf`, "no stacked expert tensors"],
    [SRC, PACK, "exists (pass overwrite / --force to replace it)"],
  ];
  for (const [input, output, msg] of cases) {
    const e = await assertRejects(() => convertGgufToPack(input, output, { checksum }), EdgeMoeError, msg);
    assertEquals(e.code, "invalid_argument");
  }
  assertEquals([...Deno.readDirSync(dir)], []);
  await Deno.remove(dir, { recursive: true });
});

async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = () => {};
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

Deno.test("CLI: convert then inspect --json report the pack; inspect shows long arrays by length", async () => {
  const dir = await tmp();
  const out = `${dir}/x.pack.gguf`;
  const c = await captured(() => main(["convert", "-m", SRC, "-o", out]));
  assertEquals(c.code, 0);
  assert(c.out.includes("2 layers × 4 experts (checksums verified)"), c.out);
  assertEquals(await Deno.readFile(out), await Deno.readFile(PACK));
  assertEquals((await captured(() => main(["convert", "-m", SRC, "-o", out]))).code, 1);

  const j = await captured(() => main(["inspect", "--json", out]));
  assertEquals(j.code, 0);
  const r = JSON.parse(j.out);
  assertEquals(r.architecture, "qwen2moe");
  assertEquals(r.hyperparameters.expert_count, 4);
  assertEquals(r.pack.expertTypes, { "q8_0/f16/q8_0": 4, "q4_0/q4_0/f32": 4 });
  assertEquals(r.tensorCount, 37);
  assertEquals(r.tokenizer, { model: "gpt2", tokens: 16 });
  const expertBytes = 4 * (2176 + 4096 + 2176) + 4 * (1152 + 1152 + 8192); // q8_0/f16/q8_0, q4_0/q4_0/f32
  assertEquals(r.expertBytes, expertBytes);
  assertEquals(r.expertBitsPerWeight, Number(((expertBytes * 8) / (8 * 3 * 64 * 32)).toFixed(3)));

  const big = `${dir}/big.gguf`;
  await writeGguf(big, [["a.tokens", { type: "array", itemType: "u32", value: new Uint32Array(100) }]], []);
  const t = await captured(() => main(["inspect", big]));
  assert(t.out.includes('"[u32 × 100]"'), t.out);
  await Deno.remove(dir, { recursive: true });
});

const MODELS = new URL("./fixtures/models/", import.meta.url).pathname;
for (const name of ["qwen3moe-q4_k_m", "qwen2moe", "mixtral", "olmoe"]) {
  Deno.test(`convert of the model fixture ${name}.gguf: llama.cpp accepts the pack, every blob is its source slices`, async () => {
    const dir = await tmp();
    const out = `${dir}/p.gguf`;
    await convertGgufToPack(`${MODELS}${name}.gguf`, out, { checksum });
    assert(llamaGguf(out) !== null, `llama.cpp refused the pack of ${name}`);
    using src = GgufFile.open(`${MODELS}${name}.gguf`);
    using pack = PackFile.open(out);
    for (const b of pack.blobs()) {
      const blob = pack.readExpert(b.layer, b.expert, checksum);
      for (const part of ["gate", "up", "down"] as const) {
        const stacked = src.tensor(`blk.${b.layer}.ffn_${part}_exps.weight`)!;
        const size = stacked.bytes / pack.expertCount;
        const t = b.tensors[part];
        assertEquals(t.type.id, stacked.type.id);
        assertEquals(
          blob.subarray(t.offset, t.offset + t.bytes),
          src.readRange(stacked.offset + b.expert * size, size),
        );
      }
    }
    for (const t of pack.resident) assertEquals(pack.gguf.readTensor(t.name), src.readTensor(t.name), t.name);
    await Deno.remove(dir, { recursive: true });
  });
}
