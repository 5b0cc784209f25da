import { EdgeMoeError, type EdgeMoeErrorCode } from "../src/errors.ts";
import { parseStrictJson } from "../src/safetensors/json.ts";
import { SafetensorsModel } from "../src/safetensors/model.ts";
import {
  parseSafetensorsHeader,
  parseSafetensorsPrefix,
  SAFETENSORS_MAX_HEADER_BYTES,
  SafetensorsFile,
} from "../src/safetensors/reader.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";

type Entry = { dtype: unknown; shape: unknown; data_offsets: unknown };

/** A file from a header given as text (so tests can write any JSON) and data bytes. */
function fileBytes(headerText: string, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** A valid file: a = F32 [2,3] (24 bytes), b = F16 [4] (8 bytes), with metadata. */
function validParts(): { header: Record<string, Entry | Record<string, string>>; data: Uint8Array } {
  const data = new Uint8Array(32);
  for (let i = 0; i < data.length; i++) data[i] = i + 1;
  return {
    header: {
      __metadata__: { format: "pt" },
      a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
      b: { dtype: "F16", shape: [4], data_offsets: [24, 32] },
    },
    data,
  };
}

function write(bytes: Uint8Array, dir = Deno.makeTempDirSync({ prefix: "edgemoe-st-" }), name = "model.safetensors") {
  const path = `${dir}/${name}`;
  Deno.writeFileSync(path, bytes);
  return path;
}

function expectError(bytes: Uint8Array, code: EdgeMoeErrorCode, includes: string): void {
  const path = write(bytes);
  const e = assertThrows(() => SafetensorsFile.open(path), EdgeMoeError, includes);
  assertEquals(e.code, code, e.message);
  assert(e.message.includes(path), `the error names the file: ${e.message}`);
}

/** Applies `mutate` to a valid header and expects the open to fail with `code` and `includes`. */
function expectHeaderError(
  mutate: (h: Record<string, Entry | Record<string, string>>) => void,
  code: EdgeMoeErrorCode,
  includes: string,
  data?: Uint8Array,
): void {
  const p = validParts();
  mutate(p.header);
  expectError(fileBytes(JSON.stringify(p.header), data ?? p.data), code, includes);
}

Deno.test("safetensors: a valid file lists its tensors and reads their bytes lazily", () => {
  const p = validParts();
  const path = write(fileBytes(JSON.stringify(p.header) + "   ", p.data));
  using f = SafetensorsFile.open(path);
  assertEquals([...f.tensors.keys()], ["a", "b"]);
  assertEquals(f.tensor("a").shape, [2, 3]);
  assertEquals(f.tensor("b").dtype, "F16");
  assertEquals(f.metadata.get("format"), "pt");
  assertEquals(f.read("b"), p.data.slice(24, 32));
  assertEquals(f.read("a", 4, 8), p.data.slice(4, 12));
  assertThrows(() => f.read("a", 20, 8), EdgeMoeError, "outside its 24 bytes");
  assertThrows(() => f.read("zz"), EdgeMoeError, 'no tensor named "zz"');
  f.close();
  f.close();
  assertEquals(assertThrows(() => f.read("a"), EdgeMoeError).code, "closed");
});

Deno.test("safetensors: tensors in any key order, zero-element tensors and every dtype are accepted", () => {
  const dtypes: [string, number][] = [
    ["F64", 8],
    ["F32", 4],
    ["F16", 2],
    ["BF16", 2],
    ["I64", 8],
    ["I32", 4],
    ["I16", 2],
    ["I8", 1],
    ["U8", 1],
    ["BOOL", 1],
    ["F8_E4M3", 1],
    ["F8_E5M2", 1],
  ];
  const header: Record<string, Entry> = {};
  let off = 0;
  for (const [dt, size] of dtypes.toReversed()) {
    header[`t_${dt}`] = { dtype: dt, shape: [3], data_offsets: [off, off + 3 * size] };
    off += 3 * size;
  }
  header.empty = { dtype: "F32", shape: [0, 5], data_offsets: [off, off] };
  const path = write(fileBytes(JSON.stringify(header), new Uint8Array(off)));
  using f = SafetensorsFile.open(path);
  assertEquals(f.tensors.size, dtypes.length + 1);
  assertEquals(f.tensor("empty").byteLength, 0);
  assertEquals(f.read("t_F64").length, 24);
});

Deno.test("safetensors: bad header length", async (t) => {
  const p = validParts();
  const good = fileBytes(JSON.stringify(p.header), p.data);
  await t.step("file shorter than 8 bytes", () => {
    expectError(new Uint8Array(5), "corrupt_data", "at least the 8-byte header length");
  });
  await t.step("empty file", () => {
    expectError(new Uint8Array(0), "corrupt_data", "file has 0 bytes");
  });
  await t.step("length 0", () => {
    expectError(fileBytes("", new Uint8Array(0), 0n), "corrupt_data", "header length is 0");
  });
  await t.step("length over the 100 MB cap", () => {
    expectError(
      fileBytes("{}", new Uint8Array(0), BigInt(SAFETENSORS_MAX_HEADER_BYTES + 1)),
      "corrupt_data",
      "exceeds the limit",
    );
  });
  await t.step("length 2^64-1", () => {
    expectError(fileBytes("{}", new Uint8Array(0), 0xffff_ffff_ffff_ffffn), "corrupt_data", "exceeds the limit");
  });
  await t.step("length past the end of the file", () => {
    expectError(fileBytes("{}", new Uint8Array(0), 1000n), "corrupt_data", "runs past the end of the file");
  });
  await t.step("truncation sweep: every shorter prefix of a valid file is refused", () => {
    const dir = Deno.makeTempDirSync({ prefix: "edgemoe-st-" });
    for (let n = 0; n < good.length; n++) {
      const path = write(good.subarray(0, n), dir, `t${n}.safetensors`);
      const e = assertThrows(() => SafetensorsFile.open(path), EdgeMoeError);
      assertEquals(e.code, "corrupt_data", `prefix of ${n} bytes: ${e.message}`);
    }
  });
});

Deno.test("safetensors: malformed JSON", async (t) => {
  const d = new Uint8Array(0);
  await t.step("not JSON", () => expectError(fileBytes("{not json", d), "corrupt_data", "invalid JSON"));
  await t.step("not starting with {", () => expectError(fileBytes(" {}", d), "corrupt_data", 'must start with "{"'));
  await t.step("an array", () => expectError(fileBytes("[1]", d), "corrupt_data", 'must start with "{"'));
  await t.step("trailing garbage", () => expectError(fileBytes("{} x", d), "corrupt_data", "the end of the text"));
  await t.step("invalid UTF-8", () => {
    const bytes = fileBytes('{"__metadata__":{"k":"vv"}}', d);
    bytes[8 + 23] = 0xff;
    expectError(bytes, "corrupt_data", "not valid UTF-8");
  });
  await t.step("duplicate tensor key", () => {
    const text =
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
    expectError(fileBytes(text, new Uint8Array(2)), "corrupt_data", 'duplicate key "a"');
  });
  await t.step("duplicate key inside a tensor entry", () => {
    const text = '{"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}';
    expectError(fileBytes(text, new Uint8Array(1)), "corrupt_data", 'duplicate key "dtype"');
  });
  await t.step("nesting too deep", () => {
    const text = `{"__metadata__":${"[".repeat(100)}${"]".repeat(100)}}`;
    expectError(fileBytes(text, d), "corrupt_data", "nesting no deeper");
  });
});

Deno.test("safetensors: bad tensor entries", async (t) => {
  await t.step("unknown dtype is unsupported, listing the supported ones", () => {
    const want = 'dtype "Q4" is not supported (supported: F64, F32, F16, BF16';
    expectHeaderError((h) => (h.a as Entry).dtype = "Q4", "unsupported", want);
  });
  await t.step(
    "dtype not a string",
    () => expectHeaderError((h) => (h.a as Entry).dtype = 4, "corrupt_data", "dtype must be a string"),
  );
  await t.step("missing dtype", () => {
    expectHeaderError((h) => delete (h.a as Partial<Entry>).dtype, "corrupt_data", "dtype must be a string");
  });
  await t.step("extra field", () => {
    expectHeaderError((h) => (h.a as Record<string, unknown>).extra = 1, "corrupt_data", 'unexpected field "extra"');
  });
  await t.step(
    "entry not an object",
    () => expectHeaderError((h) => (h as Record<string, unknown>).a = 3, "corrupt_data", "expected an object"),
  );
  await t.step(
    "shape not an array",
    () => expectHeaderError((h) => (h.a as Entry).shape = 6, "corrupt_data", "shape must be an array"),
  );
  await t.step(
    "negative dim",
    () =>
      expectHeaderError(
        (h) => (h.a as Entry).shape = [-2, -3],
        "corrupt_data",
        "shape[0] must be a non-negative integer",
      ),
  );
  await t.step(
    "fractional dim",
    () => expectHeaderError((h) => (h.a as Entry).shape = [2, 3.5], "corrupt_data", "shape[1]"),
  );
  await t.step(
    "string dim",
    () => expectHeaderError((h) => (h.a as Entry).shape = [2, "3"], "corrupt_data", "shape[1]"),
  );
  await t.step(
    "too many dims",
    () => expectHeaderError((h) => (h.a as Entry).shape = new Array(17).fill(1), "corrupt_data", "at most 16"),
  );
  await t.step("element count overflow", () => {
    expectHeaderError((h) => (h.a as Entry).shape = [2 ** 30, 2 ** 30, 2 ** 30], "corrupt_data", "overflow");
  });
  await t.step("byte count overflow", () => {
    expectHeaderError((h) => (h.a as Entry).shape = [2 ** 52], "corrupt_data", "overflow the byte count");
  });
  await t.step("data_offsets not a pair", () => {
    expectHeaderError((h) => (h.a as Entry).data_offsets = [0], "corrupt_data", "data_offsets must be [begin, end]");
  });
  await t.step("negative offset", () => {
    expectHeaderError((h) => (h.a as Entry).data_offsets = [-24, 0], "corrupt_data", "begin must be a non-negative");
  });
  await t.step("offset beyond 2^53", () => {
    const p = validParts();
    const text = JSON.stringify(p.header).replace("[24,32]", "[24,18446744073709551615]");
    expectError(fileBytes(text, p.data), "corrupt_data", "end must be a non-negative integer");
  });
  await t.step("end before begin", () => {
    expectHeaderError((h) => (h.b as Entry).data_offsets = [32, 24], "corrupt_data", "end before begin");
  });
  await t.step("size disagrees with shape × dtype", () => {
    expectHeaderError((h) => (h.a as Entry).shape = [2, 2], "corrupt_data", "hold 24 bytes, expected 16");
  });
  await t.step("tensor data past the end of the file", () => {
    const p = validParts();
    expectError(
      fileBytes(JSON.stringify(p.header), p.data.subarray(0, 28)),
      "corrupt_data",
      "run past the data section",
    );
  });
  await t.step("overlapping tensors", () => {
    expectHeaderError(
      (h) => {
        (h.b as Entry).data_offsets = [16, 24];
        (h.b as Entry).shape = [4];
      },
      "corrupt_data",
      "overlaps the previous tensor",
      new Uint8Array(24),
    );
  });
  await t.step("a hole between tensors", () => {
    expectHeaderError(
      (h) => {
        (h.b as Entry).data_offsets = [28, 36];
      },
      "corrupt_data",
      "leaving a hole after byte 24",
      new Uint8Array(36),
    );
  });
  await t.step("trailing bytes after the last tensor", () => {
    const p = validParts();
    const data = new Uint8Array(40);
    expectError(fileBytes(JSON.stringify(p.header), data), "corrupt_data", "trailing bytes");
  });
  await t.step("metadata not an object", () => {
    expectHeaderError(
      (h) => (h as Record<string, unknown>).__metadata__ = ["x"],
      "corrupt_data",
      "__metadata__ must be an object",
    );
  });
  await t.step("metadata value not a string", () => {
    expectHeaderError(
      (h) => (h as Record<string, unknown>).__metadata__ = { n: 3 },
      "corrupt_data",
      "__metadata__.n must be a string",
    );
  });
});

Deno.test("safetensors: a key named __proto__ is plain data", () => {
  const text = '{"__proto__":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}';
  const path = write(fileBytes(text, new Uint8Array([7, 9])));
  using f = SafetensorsFile.open(path);
  assertEquals(f.read("__proto__"), new Uint8Array([7, 9]));
});

Deno.test("safetensors: a file truncated after opening is a short read, not zeros", () => {
  const p = validParts();
  const path = write(fileBytes(JSON.stringify(p.header), p.data));
  using f = SafetensorsFile.open(path);
  Deno.truncateSync(path, 8 + JSON.stringify(p.header).length + 26);
  const e = assertThrows(() => f.read("b"), EdgeMoeError, "short read");
  assertEquals(e.code, "io");
});

Deno.test("strict JSON: values and escapes match JSON.parse", () => {
  const text = '{"s":"a\\u00e9\\n\\"","n":[-1.5e3,0,12],"t":true,"f":false,"z":null,"o":{}}';
  const v = parseStrictJson(text, "test");
  assert(v instanceof Map);
  assertEquals(Object.fromEntries(v), { ...JSON.parse(text), o: new Map() });
});

// ---- sharded models ----

/** A shard holding U8 tensors `names` (1 byte each). */
function shard(names: string[]): Uint8Array {
  const header: Record<string, Entry> = {};
  names.forEach((n, i) => header[n] = { dtype: "U8", shape: [1], data_offsets: [i, i + 1] });
  return fileBytes(JSON.stringify(header), new Uint8Array(names.map((_, i) => i + 10)));
}

function shardedDir(weightMap: Record<string, string> | string, shards: Record<string, string[]>): string {
  const dir = Deno.makeTempDirSync({ prefix: "edgemoe-shards-" });
  const index = typeof weightMap === "string" ? weightMap : JSON.stringify({ metadata: {}, weight_map: weightMap });
  Deno.writeTextFileSync(`${dir}/model.safetensors.index.json`, index);
  for (const [name, tensors] of Object.entries(shards)) Deno.writeFileSync(`${dir}/${name}`, shard(tensors));
  return dir;
}

function expectDirError(dir: string, code: EdgeMoeErrorCode, includes: string): void {
  const e = assertThrows(() => SafetensorsModel.open(dir), EdgeMoeError, includes);
  assertEquals(e.code, code, e.message);
}

Deno.test("safetensors model: shards are read through the index", () => {
  const dir = shardedDir({ x: "s1.safetensors", y: "s2.safetensors", z: "s2.safetensors" }, {
    "s1.safetensors": ["x"],
    "s2.safetensors": ["y", "z"],
  });
  using m = SafetensorsModel.open(dir);
  assertEquals(m.files.length, 2);
  assertEquals([...m.tensors.keys()].sort(), ["x", "y", "z"]);
  assertEquals(m.read("z"), new Uint8Array([11]));
  assertEquals(m.read("x"), new Uint8Array([10]));
});

Deno.test("safetensors model: a single model.safetensors without an index", () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeFileSync(`${dir}/model.safetensors`, shard(["w"]));
  using m = SafetensorsModel.open(dir);
  assertEquals(m.read("w"), new Uint8Array([10]));
});

Deno.test("safetensors model: index and shard errors", async (t) => {
  await t.step("no weights at all", () => expectDirError(Deno.makeTempDirSync(), "io", "found neither"));
  await t.step("missing shard", () => {
    expectDirError(
      shardedDir({ x: "s1.safetensors", y: "gone.safetensors" }, { "s1.safetensors": ["x"] }),
      "io",
      'shard "gone.safetensors" named by the index is missing',
    );
  });
  await t.step("path traversal in a shard name", () => {
    expectDirError(shardedDir({ x: "../s1.safetensors" }, {}), "corrupt_data", "not a plain file name");
  });
  await t.step("absolute shard name", () => {
    expectDirError(shardedDir({ x: "/etc/passwd" }, {}), "corrupt_data", "not a plain file name");
  });
  await t.step(
    "shard name ..",
    () => expectDirError(shardedDir({ x: ".." }, {}), "corrupt_data", "not a plain file name"),
  );
  await t.step("tensor in another shard than the index says", () => {
    expectDirError(
      shardedDir({ x: "s1.safetensors", y: "s1.safetensors" }, { "s1.safetensors": ["x"], "s2.safetensors": ["y"] }),
      "corrupt_data",
      'tensor "y" is listed in shard s1.safetensors, which does not hold it',
    );
  });
  await t.step("tensor present in two shards", () => {
    expectDirError(
      shardedDir({ x: "s1.safetensors", y: "s2.safetensors" }, {
        "s1.safetensors": ["x"],
        "s2.safetensors": ["x", "y"],
      }),
      "corrupt_data",
      'tensor "x" is in shard s2.safetensors, but the index says s1.safetensors',
    );
  });
  await t.step("shard holds a tensor the index does not list", () => {
    expectDirError(
      shardedDir({ x: "s1.safetensors" }, { "s1.safetensors": ["x", "extra"] }),
      "corrupt_data",
      "which the index does not list",
    );
  });
  await t.step("duplicate key in weight_map", () => {
    expectDirError(
      shardedDir('{"weight_map":{"x":"s1.safetensors","x":"s2.safetensors"}}', { "s1.safetensors": ["x"] }),
      "corrupt_data",
      'duplicate key "x"',
    );
  });
  await t.step(
    "weight_map missing",
    () => expectDirError(shardedDir('{"metadata":{}}', {}), "corrupt_data", "weight_map"),
  );
  await t.step("weight_map value not a string", () => {
    expectDirError(shardedDir('{"weight_map":{"x":1}}', {}), "corrupt_data", "must be a file name string");
  });
  await t.step("empty weight_map", () => expectDirError(shardedDir({}, {}), "corrupt_data", "lists no tensors"));
  await t.step("a corrupt shard is reported with its path", () => {
    const dir = shardedDir({ x: "s1.safetensors" }, {});
    Deno.writeFileSync(`${dir}/s1.safetensors`, new Uint8Array(3));
    expectDirError(dir, "corrupt_data", "s1.safetensors");
  });
});

Deno.test("safetensors fuzz: random corruptions of a valid file give EdgeMoeError or a valid header, nothing else", () => {
  const p = validParts();
  const good = fileBytes(JSON.stringify(p.header), p.data);
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  let refused = 0;
  for (let iter = 0; iter < 5000; iter++) {
    const bytes = good.slice(0, good.length - (rand(4) === 0 ? rand(good.length) : 0));
    for (let k = 1 + rand(4); k > 0; k--) {
      if (bytes.length > 0) {
        bytes[rand(bytes.length)] = rand(3) === 0 ? rand(256) : '{}[],:"0123456789-e.'
          .charCodeAt(rand(21));
      }
    }
    try {
      const n = parseSafetensorsPrefix(bytes, bytes.length, "fuzz");
      const h = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length, "fuzz");
      for (const t of h.tensors.values()) {
        assert(t.fileOffset + t.byteLength <= bytes.length, "a tensor accepted lies inside the file");
      }
    } catch (e) {
      if (!(e instanceof EdgeMoeError)) throw new Error(`iteration ${iter}: ${e}`, { cause: e });
      refused++;
    }
  }
  assert(refused > 4000, `most corruptions are refused (${refused} of 5000)`);
});
