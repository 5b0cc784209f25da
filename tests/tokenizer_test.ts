/**
 * Streaming decode (multi-byte characters split across tokens, byte-fallback
 * tokens), special-token handling, and the errors of bad ids and malformed
 * vocabularies.
 */
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { tokenizerFromGguf, tokenizerFromHf } from "../src/tokenizer/mod.ts";
import type { Tokenizer } from "../src/types.ts";

const DIR = new URL("./fixtures/tokenizer/", import.meta.url);
const readJson = async (name: string) => JSON.parse(await Deno.readTextFile(new URL(name, DIR)));

const qwenJson = await readJson("qwen2.tokenizer.json");
const qwen = tokenizerFromHf(qwenJson, await readJson("qwen2.tokenizer_config.json"));
const spmMeta = await readJson("spm.gguf_meta.json");
const spm = tokenizerFromGguf(spmMeta);
const qwenMeta = await readJson("qwen2.gguf_meta.json");

const TEXT = "Whale 🐋 and 你好 — naïve 👨‍👩‍👧 end";

/** Streams `ids` and checks each chunk is whole characters; returns the chunks. */
function stream(tok: Tokenizer, ids: ArrayLike<number>): string[] {
  const dec = tok.createStreamDecoder();
  const chunks: string[] = [];
  for (let i = 0; i < ids.length; i++) chunks.push(dec.push(ids[i]));
  chunks.push(dec.flush());
  for (const c of chunks) {
    assert(!c.includes("\ufffd"), `chunk ${JSON.stringify(c)} holds a broken character`);
    assert(!/[\ud800-\udbff]$/.test(c), `chunk ${JSON.stringify(c)} ends in half a surrogate pair`);
  }
  return chunks;
}

Deno.test("stream decode (byte-level BPE): characters split over several tokens come out whole", () => {
  const ids = qwen.encode(TEXT);
  assert(ids.length > [...TEXT].length / 2);
  const chunks = stream(qwen, ids);
  assertEquals(chunks.join(""), TEXT);
  assert(chunks.filter((c) => c === "").length >= 3, "some tokens held back part of a character");
});

Deno.test("stream decode (SentencePiece byte fallback): <0xNN> tokens are assembled into characters", () => {
  const ids = spm.encode(TEXT, { addSpecial: false });
  const byteTokens = Array.from(ids).filter((id) => spm.tokenKind(id) === "byte");
  assert(byteTokens.length >= 8, "CJK and emoji fall back to byte tokens in this vocabulary");
  const chunks = stream(spm, ids);
  assertEquals(chunks.join(""), " " + TEXT);
});

Deno.test("stream decode: flush turns a dangling partial character into U+FFFD and resets", () => {
  const fourBytes = Array.from(spm.encode("🐋", { addSpecial: false })).filter((id) => spm.tokenKind(id) === "byte");
  assertEquals(fourBytes.length, 4);
  const dec = spm.createStreamDecoder();
  assertEquals(dec.push(fourBytes[0]) + dec.push(fourBytes[1]), "");
  assertEquals(dec.flush(), "\ufffd");
  assertEquals(fourBytes.map((id) => dec.push(id)).join(""), "🐋");
});

Deno.test("decode: control tokens are hidden unless renderSpecial", () => {
  const ids = qwen.encode("<|im_start|>user\nhi<|im_end|>", { parseSpecial: true });
  assertEquals(qwen.tokenKind(ids[0]), "control");
  assertEquals(qwen.decode(ids), "user\nhi");
  assertEquals(qwen.decode(ids, { renderSpecial: true }), "<|im_start|>user\nhi<|im_end|>");
  const s = qwen.createStreamDecoder({ renderSpecial: true });
  assertEquals(Array.from(ids).map((id) => s.push(id)).join("") + s.flush(), "<|im_start|>user\nhi<|im_end|>");
});

Deno.test("special tokens: ids, EOG set, user-defined tokens always split, control tokens only with parseSpecial", () => {
  const imEnd = qwen.tokenId("<|im_end|>")!;
  assertEquals(qwen.eosId, imEnd);
  assert(qwen.eogIds.has(imEnd) && qwen.eogIds.has(qwen.tokenId("<|endoftext|>")!));
  assertEquals(qwen.bosId, undefined);
  const tool = qwen.tokenId("<tool_call>")!;
  assertEquals(qwen.tokenKind(tool), "user_defined");
  assert(qwen.encode("a <tool_call> b").includes(tool));
  assert(!qwen.encode("a<|im_end|>").includes(imEnd));
  assert(qwen.encode("a<|im_end|>", { parseSpecial: true }).includes(imEnd));
  assertEquals(spm.encode("hi")[0], spm.bosId);
  assertEquals(spm.encode("hi", { addSpecial: false }).includes(spm.bosId!), false);
});

Deno.test("ids out of range: EdgeMoeError naming the id and the vocabulary size", () => {
  for (const id of [qwen.vocabSize, -1, 1.5, 1e12]) {
    const e = assertThrows(() => qwen.decode([1, id]), EdgeMoeError, `token id ${id} is out of range`);
    assertEquals((e as EdgeMoeError).code, "invalid_argument");
    assert(e.message.includes(`${qwen.vocabSize} tokens`));
  }
  assertThrows(() => qwen.createStreamDecoder().push(qwen.vocabSize), EdgeMoeError, `${qwen.vocabSize} tokens`);
  assertThrows(() => spm.tokenText(spm.vocabSize + 5), EdgeMoeError, "out of range");
  assertThrows(() => qwen.encode(42 as unknown as string), EdgeMoeError, "expected a string");
});

function expectError(fn: () => unknown, code: string, includes: string): void {
  const e = assertThrows(fn, EdgeMoeError, includes);
  assertEquals((e as EdgeMoeError).code, code, e.message);
}

Deno.test("malformed tokenizer.json: typed errors naming the problem", () => {
  // deno-lint-ignore no-explicit-any -- the edits reach into arbitrary JSON
  const edit = (f: (j: Record<string, any>) => void) => {
    const j = structuredClone(qwenJson);
    f(j);
    return () => tokenizerFromHf(j);
  };
  expectError(edit((j) => delete j.model.merges), "corrupt_data", "model.merges: expected an array");
  expectError(edit((j) => j.model.merges = 7), "corrupt_data", "model.merges");
  expectError(
    edit((j) => j.model.merges.push(["Ġzzq", "xyy"])),
    "corrupt_data",
    `"Ġzzq", which is not in the vocabulary`,
  );
  expectError(edit((j) => j.model.merges[3] = 12), "corrupt_data", "merge 3 is 12");
  expectError(edit((j) => j.model.vocab["Ġthe"] = "five"), "corrupt_data", `"Ġthe" has id "five"`);
  expectError(edit((j) => j.model.vocab["extra"] = 5000), "corrupt_data", "no token has id 901");
  expectError(edit((j) => j.model.vocab["Ġthe"] = 1e9), "corrupt_data", "expected an integer");
  expectError(edit((j) => j.model.type = "Unigram"), "unsupported", "Unigram");
  expectError(edit((j) => j.added_tokens[0].lstrip = true), "unsupported", "lstrip");
  expectError(edit((j) => j.pre_tokenizer.pretokenizers[0].pattern.Regex = "(?<=a"), "unsupported", "regex");
  expectError(edit((j) => j.pre_tokenizer = { type: "Whitespace" }), "unsupported", "Whitespace");
  expectError(edit((j) => j.model = null), "corrupt_data", "model: expected an object, found null");
  expectError(() => tokenizerFromHf("{}"), "corrupt_data", "tokenizer.json: expected an object");
  expectError(edit((j) => delete j.model.vocab["Ā"]), "corrupt_data", "no token has id");
});

Deno.test("malformed GGUF tokenizer metadata: typed errors naming the key", () => {
  // deno-lint-ignore no-explicit-any -- the edits reach into arbitrary JSON
  const edit = (f: (m: Record<string, any>) => void, base: Record<string, unknown> = spmMeta) => {
    const m = structuredClone(base);
    f(m);
    return () => tokenizerFromGguf(m);
  };
  expectError(edit((m) => delete m["tokenizer.ggml.tokens"]), "corrupt_data", "tokenizer.ggml.tokens is missing");
  expectError(edit((m) => delete m["tokenizer.ggml.model"]), "corrupt_data", "tokenizer.ggml.model is missing");
  expectError(edit((m) => m["tokenizer.ggml.model"] = "bert"), "unsupported", `"bert"`);
  expectError(edit((m) => m["tokenizer.ggml.model"] = 3), "corrupt_data", "tokenizer.ggml.model: expected a string");
  expectError(edit((m) => m["tokenizer.ggml.tokens"][5] = 17), "corrupt_data", "tokenizer.ggml.tokens[5]");
  expectError(edit((m) => m["tokenizer.ggml.tokens"] = { length: 2 ** 40 }), "corrupt_data", "exceed the limit");
  expectError(
    edit((m) => m["tokenizer.ggml.scores"].pop()),
    "corrupt_data",
    `needs ${spm.vocabSize} scores, found ${spm.vocabSize - 1}`,
  );
  expectError(edit((m) => delete m["tokenizer.ggml.scores"]), "corrupt_data", "tokenizer.ggml.scores");
  expectError(edit((m) => m["tokenizer.ggml.token_type"][9] = 11), "corrupt_data", "token 9 has type 11");
  expectError(
    edit((m) => m["tokenizer.ggml.token_type"].pop()),
    "corrupt_data",
    `${spm.vocabSize - 1} token types for ${spm.vocabSize}`,
  );
  expectError(edit((m) => m["tokenizer.ggml.bos_token_id"] = 5000), "corrupt_data", "BOS id 5000 is out of range");
  expectError(edit((m) => m["tokenizer.ggml.eos_token_id"] = 2.5), "corrupt_data", "an integer");
  expectError(edit((m) => m["tokenizer.ggml.tokens"][3] = "<0xZZ>"), "corrupt_data", `byte token 3 is "<0xZZ>"`);
  const bpe = qwenMeta;
  expectError(edit((m) => m["tokenizer.ggml.pre"] = "falcon", bpe), "unsupported", `"falcon" is not supported`);
  expectError(
    edit((m) => m["tokenizer.ggml.pre"] = "constructor", bpe),
    "unsupported",
    `"constructor" is not supported`,
  );
  expectError(edit((m) => delete m["tokenizer.ggml.merges"], bpe), "corrupt_data", "tokenizer.ggml.merges");
  expectError(edit((m) => m["tokenizer.ggml.merges"].push("Ġq zz"), bpe), "corrupt_data", "not in the vocabulary");
  expectError(edit((m) => m["tokenizer.ggml.merges"][0] = "nospace", bpe), "corrupt_data", `merge 0 "nospace"`);
  expectError(
    edit((m) => m["tokenizer.ggml.tokens"][m["tokenizer.ggml.tokens"].indexOf("Ġ")] = "Ġ2", bpe),
    "corrupt_data",
    "byte 0x20",
  );
  const ok = new Map(Object.entries(bpe).map(([k, v]) => [k, k.endsWith("_id") ? BigInt(v as number) : v]));
  assertEquals(
    tokenizerFromGguf(ok as Map<string, never>).eosId,
    (bpe as Record<string, number>)["tokenizer.ggml.eos_token_id"],
  );
});

Deno.test("GGUF: end-of-generation texts become control tokens whatever their type, as in llama.cpp", () => {
  const meta = structuredClone(qwenMeta);
  const imEnd = meta["tokenizer.ggml.tokens"].indexOf("<|im_end|>");
  meta["tokenizer.ggml.token_type"][imEnd] = 1;
  meta["tokenizer.ggml.eos_token_id"] = meta["tokenizer.ggml.tokens"].indexOf("<|endoftext|>");
  const tok = tokenizerFromGguf(meta);
  assertEquals(tok.tokenKind(imEnd), "control");
  assert(tok.eogIds.has(imEnd));
  assertEquals(tok.decode([imEnd]), "");
  assert(!tok.encode("<|im_end|>").includes(imEnd));
});
