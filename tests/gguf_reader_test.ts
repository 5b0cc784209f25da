/**
 * The GGUF reader against files written by gguf-py (tests/fixtures/gguf/,
 * made by tools/fixtures/make_gguf.py), and every validation on files
 * handcrafted or mutated here.
 */
import { EdgeMoeError, type EdgeMoeErrorCode } from "../src/errors.ts";
import { GgufEncoder } from "../src/gguf/encode.ts";
import { GgufFile, MAX_ARRAY_LEN, MAX_KV, MAX_TENSORS, memorySource } from "../src/gguf/reader.ts";
import { GgufValueType } from "../src/gguf/types.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { canonMetadata, llamaGguf, sha256 } from "./gguf_oracle.ts";

const FIX = new URL("./fixtures/gguf/", import.meta.url).pathname;
const BASIC = Deno.readFileSync(FIX + "basic.gguf");

interface Expected {
  metadata: Record<string, unknown>;
  tensors: { name: string; type: number; dims: number[]; offset: number; sha256: string }[];
}

async function checkAgainstGgufPy(f: GgufFile, expected: Expected): Promise<void> {
  assertEquals(canonMetadata(f), expected.metadata);
  assertEquals(f.tensors.map((t) => t.name), expected.tensors.map((t) => t.name));
  for (const [i, t] of f.tensors.entries()) {
    const e = expected.tensors[i];
    assertEquals({ type: t.type.id, dims: [...t.dims], offset: t.offset }, {
      type: e.type,
      dims: e.dims,
      offset: e.offset,
    }, t.name);
    assertEquals(await sha256(f.readTensor(t.name)), e.sha256, `bytes of ${t.name}`);
  }
}

for (const name of ["basic", "moe_tiny"]) {
  Deno.test(`reader matches what gguf-py wrote: ${name}.gguf`, async () => {
    using f = GgufFile.open(`${FIX}${name}.gguf`);
    await checkAgainstGgufPy(f, JSON.parse(Deno.readTextFileSync(`${FIX}${name}.json`)));
  });
}

Deno.test("typed metadata access returns values and names key, expected and found type on a mismatch", () => {
  using f = GgufFile.open(FIX + "basic.gguf");
  assertEquals(f.version, 3);
  assertEquals(f.alignment, 64);
  assertEquals(f.getU32("test.u32"), 4000000000);
  assertEquals(f.getI32("test.i32"), -2000000000);
  assertEquals(f.getU64("test.u64"), 2n ** 63n + 5n);
  assertEquals(f.getBool("test.bool"), true);
  assertEquals(f.getString("general.architecture"), "llama");
  assertEquals(f.getInt("llama.block_count"), 2);
  assertEquals([...f.getArray("test.arr.u32", "u32")], [7, 4294967295]);
  assertEquals(f.getStringArray("test.arr.string"), ["a", "ß", "", "tok en"]);
  const cases: [() => unknown, string][] = [
    [() => f.getU32("test.string"), `metadata key "test.string": expected u32, found string`],
    [() => f.getString("test.arr.string"), `metadata key "test.arr.string": expected string, found array of string`],
    [
      () => f.getArray("test.arr.u32", "string"),
      `metadata key "test.arr.u32": expected array of string, found array of u32`,
    ],
    [
      () => f.getInt("test.f32"),
      `metadata key "test.f32": expected u8 or i8 or u16 or i16 or u32 or i32 or u64 or i64, found f32`,
    ],
    [() => f.getU32("no.such.key"), `metadata key "no.such.key" is missing`],
  ];
  for (const [fn, msg] of cases) {
    const e = assertThrows(fn, EdgeMoeError, msg);
    assertEquals(e.code, "corrupt_data");
  }
  assertThrows(() => f.readTensor("nope"), EdgeMoeError, `no tensor named "nope"`);
});

Deno.test("a v2 file (same layout as v3 for little-endian) reads the same", () => {
  const v2 = BASIC.slice();
  new DataView(v2.buffer).setUint32(4, 2, true);
  using f = GgufFile.fromSource(memorySource(v2));
  assertEquals(f.version, 2);
  assertEquals(f.tensors.length, 7);
});

Deno.test("a big-endian file written by gguf-py is refused as unsupported", () => {
  const e = assertThrows(() => GgufFile.open(FIX + "big_endian.gguf"), EdgeMoeError, "big-endian GGUF");
  assertEquals(e.code, "unsupported");
});

// ---------------------------------------------------------------------------
// Handcrafted files

type Body = (e: GgufEncoder) => void;

interface Craft {
  version?: number;
  nTensors?: bigint;
  nKv?: bigint;
  kv?: Body;
  tensors?: Body;
  dataBytes?: number;
  alignment?: number;
}

/** A GGUF file from parts; the data section is `dataBytes` zeros after padding. */
function craft(c: Craft): Uint8Array {
  const e = new GgufEncoder();
  e.bytes(new TextEncoder().encode("GGUF"));
  e.u32(c.version ?? 3);
  e.u64(c.nTensors ?? 0n);
  e.u64(c.nKv ?? 0n);
  c.kv?.(e);
  c.tensors?.(e);
  const align = c.alignment ?? 32;
  e.bytes(new Uint8Array((align - (e.length % align)) % align + (c.dataBytes ?? 0)));
  return e.finish().slice();
}

function kvU32(key: string, v: number): Body {
  return (e) => {
    e.string(key);
    e.u32(GgufValueType.u32);
    e.u32(v);
  };
}

function tensor(name: string, dims: (number | bigint)[], type: number, offset: bigint): Body {
  return (e) => {
    e.string(name);
    e.u32(dims.length);
    for (const d of dims) e.u64(BigInt(d));
    e.u32(type);
    e.u64(offset);
  };
}

function both(...bodies: Body[]): Body {
  return (e) => bodies.forEach((b) => b(e));
}

function expectError(bytes: Uint8Array, code: EdgeMoeErrorCode, includes: string): void {
  const e = assertThrows(() => GgufFile.fromSource(memorySource(bytes), "t.gguf"), EdgeMoeError, includes);
  assertEquals(e.code, code, e.message);
  assert(e.message.startsWith("read gguf t.gguf: "), e.message);
}

Deno.test("a handcrafted valid file parses (the base every malformed case departs from)", () => {
  using f = GgufFile.fromSource(
    memorySource(craft({
      nTensors: 2n,
      nKv: 1n,
      kv: kvU32("a.b", 7),
      tensors: both(tensor("x", [32, 2], 8, 0n), tensor("y", [4], 0, 96n)),
      dataBytes: 112,
    })),
  );
  assertEquals(f.tensors.map((t) => [t.name, t.bytes, t.offset - f.dataOffset]), [["x", 68, 0], ["y", 16, 96]]);
});

const MALFORMED: [string, Uint8Array, EdgeMoeErrorCode, string][] = [
  [
    "bad magic",
    (() => {
      const b = BASIC.slice();
      b[0] = 0x47, b[3] = 0x00;
      return b;
    })(),
    "corrupt_data",
    "not a GGUF file",
  ],
  [
    "empty file",
    new Uint8Array(0),
    "corrupt_data",
    "truncated: magic needs 4 bytes at offset 0, but the file is 0 bytes",
  ],
  ["version 1", craft({ version: 1 }), "unsupported", "GGUF version 1 is not supported, expected 2 or 3"],
  ["version 4", craft({ version: 4 }), "unsupported", "GGUF version 4 is not supported"],
  ["big-endian version", craft({ version: 0x03000000 }), "unsupported", "big-endian"],
  [
    "n_tensors huge",
    craft({ nTensors: 1n << 62n }),
    "corrupt_data",
    `n_tensors at offset 8 is ${1n << 62n}, expected at most ${MAX_TENSORS}`,
  ],
  ["n_tensors negative", craft({ nTensors: (1n << 64n) - 1n }), "corrupt_data", "n_tensors at offset 8 is -1"],
  [
    "n_kv huge",
    craft({ nKv: BigInt(MAX_KV + 1) }),
    "corrupt_data",
    `n_kv at offset 16 is ${MAX_KV + 1}, expected at most ${MAX_KV}`,
  ],
  [
    "n_kv more than present (padding read as a key)",
    craft({ nKv: 3n, kv: kvU32("a", 1) }),
    "corrupt_data",
    "key 1 at offset 41 is empty",
  ],
  [
    "n_tensors more than the file can hold",
    craft({ nTensors: 1000n }),
    "corrupt_data",
    "1000 tensor infos need at least 24000 bytes",
  ],
  [
    "key length huge",
    craft({ nKv: 1n, kv: (e) => e.u64(1n << 40n) }),
    "corrupt_data",
    "length of key 0 at offset 24 is 1099511627776, expected at most",
  ],
  [
    "key past end",
    craft({ nKv: 1n, kv: (e) => e.u64(5000n) }),
    "corrupt_data",
    "truncated: key 0 needs 5000 bytes at offset 32",
  ],
  ["empty key", craft({ nKv: 1n, kv: kvU32("", 1) }), "corrupt_data", "key 0 at offset 24 is empty"],
  [
    "duplicate key",
    craft({ nKv: 2n, kv: both(kvU32("a.b", 1), kvU32("a.b", 2)) }),
    "corrupt_data",
    `duplicate metadata key "a.b" at offset`,
  ],
  [
    "unknown value type",
    craft({ nKv: 1n, kv: (e) => (e.string("k"), e.u32(13), e.u32(0)) }),
    "corrupt_data",
    `metadata key "k" at offset 33 has value type 13, expected 0 to 12`,
  ],
  [
    "string value past end",
    craft({ nKv: 1n, kv: (e) => (e.string("k"), e.u32(8), e.u64(999n)) }),
    "corrupt_data",
    `truncated: value of metadata key "k" needs 999 bytes`,
  ],
  [
    "bool value 2",
    craft({ nKv: 1n, kv: (e) => (e.string("k"), e.u32(7), e.num("u8", 2)) }),
    "corrupt_data",
    `value of metadata key "k" at offset 37 is bool 2, expected 0 or 1`,
  ],
  [
    "array length over cap",
    craft({ nKv: 1n, kv: (e) => (e.string("k"), e.u32(9), e.u32(4), e.u64(BigInt(MAX_ARRAY_LEN) + 1n)) }),
    "corrupt_data",
    `length of metadata key "k" at offset 41 is ${MAX_ARRAY_LEN + 1}, expected at most ${MAX_ARRAY_LEN}`,
  ],
  [
    "array longer than the file",
    craft({ nKv: 1n, kv: (e) => (e.string("k"), e.u32(9), e.u32(10), e.u64(1000n)) }),
    "corrupt_data",
    `truncated: metadata key "k" has 1000 u64 items (at least 8000 bytes)`,
  ],
  [
    "array of arrays",
    craft({ nKv: 1n, kv: (e) => (e.string("k"), e.u32(9), e.u32(9), e.u64(1n)) }),
    "unsupported",
    `metadata key "k" is an array of arrays`,
  ],
  [
    "array of unknown item type",
    craft({ nKv: 1n, kv: (e) => (e.string("k"), e.u32(9), e.u32(77), e.u64(1n)) }),
    "corrupt_data",
    `items of metadata key "k" at offset 37 has value type 77`,
  ],
  [
    "alignment not a power of two",
    craft({ nKv: 1n, kv: kvU32("general.alignment", 48) }),
    "corrupt_data",
    "general.alignment is 48, expected a power of two",
  ],
  [
    "alignment zero",
    craft({ nKv: 1n, kv: kvU32("general.alignment", 0) }),
    "corrupt_data",
    "general.alignment is 0, expected a power of two",
  ],
  [
    "alignment of the wrong type",
    craft({ nKv: 1n, kv: (e) => (e.string("general.alignment"), e.u32(5), e.u32(32)) }),
    "corrupt_data",
    `metadata key "general.alignment": expected u32, found i32`,
  ],
  [
    "alignment as an array",
    craft({ nKv: 1n, kv: (e) => (e.string("general.alignment"), e.u32(9), e.u32(4), e.u64(1n), e.u32(32)) }),
    "corrupt_data",
    "expected u32, found array of u32",
  ],
  [
    "n_dims 5",
    craft({ nTensors: 1n, tensors: tensor("t", [1, 1, 1, 1, 1], 0, 0n), dataBytes: 32 }),
    "corrupt_data",
    `tensor "t" (info at offset 24): n_dims is 5, expected 1 to 4`,
  ],
  [
    "n_dims 0",
    craft({ nTensors: 1n, tensors: tensor("t", [], 0, 0n), dataBytes: 32 }),
    "corrupt_data",
    "n_dims is 0, expected 1 to 4",
  ],
  [
    "a zero dim",
    craft({ nTensors: 1n, tensors: tensor("t", [4, 0], 0, 0n), dataBytes: 32 }),
    "corrupt_data",
    `tensor "t" (info at offset 24): dim 1 is 0, expected 1 to 2^53-1`,
  ],
  [
    "a negative dim",
    craft({ nTensors: 1n, tensors: tensor("t", [4, (1n << 64n) - 2n], 0, 0n), dataBytes: 32 }),
    "corrupt_data",
    "dim 1 is -2",
  ],
  [
    "dims whose product overflows 64 bits",
    craft({ nTensors: 1n, tensors: tensor("t", [1n << 50n, 1n << 50n], 0, 0n), dataBytes: 32 }),
    "corrupt_data",
    `tensor "t": data [`,
  ],
  [
    "unknown GGML type",
    craft({ nTensors: 1n, tensors: tensor("t", [4], 99, 0n), dataBytes: 32 }),
    "unsupported",
    `tensor "t" (info at offset 24): GGML type id 99 is not supported`,
  ],
  [
    "row not a multiple of the block",
    craft({ nTensors: 1n, tensors: tensor("t", [33, 2], 8, 0n), dataBytes: 128 }),
    "corrupt_data",
    "row length 33 is not a multiple of the q8_0 block size 32",
  ],
  [
    "k-quant row not a multiple of 256",
    craft({ nTensors: 1n, tensors: tensor("t", [128], 12, 0n), dataBytes: 256 }),
    "corrupt_data",
    "row length 128 is not a multiple of the q4_k block size 256",
  ],
  [
    "offset not aligned",
    craft({ nTensors: 1n, tensors: tensor("t", [4], 0, 8n), dataBytes: 64 }),
    "corrupt_data",
    `tensor "t" (info at offset 24): data offset 8 is not a multiple of the alignment 32`,
  ],
  [
    "data past the end",
    craft({ nTensors: 1n, tensors: tensor("t", [64], 0, 0n), dataBytes: 255 }),
    "corrupt_data",
    `tensor "t": data [64, 320) lies past the end of the file (319 bytes)`,
  ],
  [
    "offset far past the end",
    craft({ nTensors: 1n, tensors: tensor("t", [4], 0, 1n << 60n), dataBytes: 16 }),
    "corrupt_data",
    "lies past the end of the file",
  ],
  [
    "overlapping tensors",
    craft({ nTensors: 2n, tensors: both(tensor("a", [16], 0, 0n), tensor("b", [16], 0, 32n)), dataBytes: 128 }),
    "corrupt_data",
    `tensor "b" data at 128 overlaps tensor "a" [96, 160)`,
  ],
  [
    "duplicate tensor name",
    craft({ nTensors: 2n, tensors: both(tensor("a", [8], 0, 0n), tensor("a", [8], 0, 32n)), dataBytes: 64 }),
    "corrupt_data",
    `duplicate tensor name "a"`,
  ],
  [
    "tensor name of 64 bytes",
    craft({ nTensors: 1n, tensors: tensor("n".repeat(64), [8], 0, 0n), dataBytes: 32 }),
    "corrupt_data",
    "name must be 1 to 63 bytes",
  ],
  [
    "tensor name empty",
    craft({ nTensors: 1n, tensors: tensor("", [8], 0, 0n), dataBytes: 32 }),
    "corrupt_data",
    "name must be 1 to 63 bytes",
  ],
];

for (const [name, bytes, code, includes] of MALFORMED) {
  Deno.test(`malformed: ${name} is ${code}`, () => expectError(bytes, code, includes));
}

Deno.test("truncation sweep: every cut of a valid file is a corrupt_data error, never a crash", () => {
  using whole = GgufFile.fromSource(memorySource(BASIC));
  const lastEnd = Math.max(...whole.tensors.map((t) => t.offset + t.bytes));
  for (let n = 0; n < lastEnd; n++) {
    const e = assertThrows(() => GgufFile.fromSource(memorySource(BASIC.subarray(0, n))), EdgeMoeError);
    assertEquals(e.code, "corrupt_data", `cut at ${n}: ${e.message}`);
    if (n >= whole.dataOffset) assert(e.message.includes("lies past the end of the file"), e.message);
  }
  using ok = GgufFile.fromSource(memorySource(BASIC.subarray(0, lastEnd)));
  assertEquals(ok.tensors.length, whole.tensors.length);
});

Deno.test("fuzz: random byte mutations of a valid file parse or fail with EdgeMoeError only", () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  let failures = 0;
  for (let i = 0; i < 3000; i++) {
    const b = BASIC.slice();
    const flips = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * 1472)] = Math.floor(rand() * 256);
    try {
      GgufFile.fromSource(memorySource(b)).close();
    } catch (e) {
      if (!(e instanceof EdgeMoeError)) throw new Error(`mutation ${i} threw a non-EdgeMoeError`, { cause: e });
      failures++;
    }
  }
  assert(failures > 100, `only ${failures} mutations were caught`);
});

Deno.test("readRange refuses ranges outside the file", () => {
  using f = GgufFile.fromSource(memorySource(BASIC));
  const e = assertThrows(() => f.readRange(f.size - 4, 8), EdgeMoeError, "is past the end");
  assertEquals(e.code, "invalid_argument");
  assertThrows(() => f.readRange(-1, 2), EdgeMoeError, "is not a byte range");
});

Deno.test("opening a missing file or a directory is a clear error", () => {
  const missing = assertThrows(
    () => GgufFile.open("/nonexistent/model.gguf"),
    EdgeMoeError,
    "open /nonexistent/model.gguf",
  );
  assertEquals(missing.code, "invalid_argument");
  const dir = assertThrows(() => GgufFile.open(FIX), EdgeMoeError, "not a regular file");
  assertEquals(dir.code, "invalid_argument");
});

Deno.test("reader's directory equals llama.cpp's for every model fixture (incl. llama.cpp-quantized Q4_K_M)", () => {
  const dir = new URL("./fixtures/models/", import.meta.url).pathname;
  const files = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".gguf")).map((e) => dir + e.name);
  assert(files.length >= 4, `only ${files.length} model fixtures`);
  for (const path of [...files, FIX + "basic.gguf", FIX + "moe_tiny.gguf"]) {
    const view = llamaGguf(path);
    assert(view !== null, `llama.cpp refused ${path}`);
    using f = GgufFile.open(path);
    assertEquals(
      { nKv: f.metadata.size, alignment: f.alignment, dataOffset: f.dataOffset },
      { nKv: view.nKv, alignment: view.alignment, dataOffset: view.dataOffset },
      path,
    );
    assertEquals(
      f.tensors.map((t) => ({ name: t.name, type: t.type.id, offset: t.offset - f.dataOffset })),
      view.tensors,
    );
  }
});
