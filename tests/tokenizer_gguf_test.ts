/**
 * Tokenizers built from GGUF metadata against llama.cpp's own tokenizer
 * (libllama v0.5.0 on vocab-only GGUF files of the same vocabularies; goldens
 * from tools/fixtures/make_tokenizer_llama_goldens.ts): byte-level BPE with the
 * qwen2, llama-bpe, gpt-2 and olmo pre-tokenizers, and SentencePiece ("llama").
 */
import { GgufFile } from "../src/gguf/mod.ts";
import { tokenizerFromGguf, tokenizerFromGgufFile } from "../src/tokenizer/mod.ts";
import { assertEquals } from "../src/std/assert.ts";
import { assertIds } from "./tokenizer_helpers.ts";

const DIR = new URL("./fixtures/tokenizer/", import.meta.url);

interface LlamaGolden {
  cases: { text: string; ids: number[]; ids_no_parse_special: number[]; ids_add_special: number[] }[];
  pieces: number[][];
  pieces_special: number[][];
}

async function load(name: string) {
  const meta = JSON.parse(await Deno.readTextFile(new URL(`${name}.gguf_meta.json`, DIR)));
  const golden: LlamaGolden = JSON.parse(await Deno.readTextFile(new URL(`${name}.llama.json`, DIR)));
  return { tok: tokenizerFromGguf(meta), golden };
}

for (const name of ["qwen2", "llama3", "gpt2", "olmo", "spm"]) {
  Deno.test(`GGUF ${name}: encode matches llama.cpp`, async () => {
    const { tok, golden } = await load(name);
    assertEquals(golden.cases.length > 50, true);
    for (const c of golden.cases) {
      const label = `${name} ${JSON.stringify(c.text).slice(0, 60)}`;
      assertIds(tok.encode(c.text, { addSpecial: false, parseSpecial: true }), c.ids, `${label} (parse special)`);
      assertIds(tok.encode(c.text, { addSpecial: false }), c.ids_no_parse_special, `${label} (special as text)`);
      assertIds(tok.encode(c.text, { parseSpecial: true }), c.ids_add_special, `${label} (add special)`);
    }
  });

  Deno.test(`GGUF ${name}: every token's bytes match llama_token_to_piece`, async () => {
    const { tok, golden } = await load(name);
    assertEquals(tok.vocabSize, golden.pieces.length);
    for (let id = 0; id < tok.vocabSize; id++) {
      assertEquals(Array.from(tok.tokenBytes(id)), golden.pieces[id], `${name} id ${id}`);
      assertEquals(
        Array.from(tok.tokenBytes(id, { renderSpecial: true })),
        golden.pieces_special[id],
        `${name} id ${id}`,
      );
    }
  });
}

Deno.test("GgufFile → tokenizerFromGgufFile: the vocab-only GGUFs written by PyPI gguf tokenize as llama.cpp does", async () => {
  for (const name of ["qwen2", "llama3", "gpt2", "olmo", "spm"]) {
    const { golden } = await load(name);
    using file = GgufFile.open(new URL(`gguf/${name}.gguf`, DIR).pathname);
    const tok = tokenizerFromGgufFile(file);
    assertEquals(tok.vocabSize, golden.pieces.length);
    for (const c of golden.cases) {
      assertIds(
        tok.encode(c.text, { parseSpecial: true }),
        c.ids_add_special,
        `${name} ${JSON.stringify(c.text).slice(0, 60)}`,
      );
    }
  }
});

Deno.test("tiny model GGUFs (tests/fixtures/models): ids match the llama.cpp tokenizations recorded with them", async () => {
  const models = new URL("./fixtures/models/", import.meta.url);
  let checked = 0;
  for await (const entry of Deno.readDir(models)) {
    if (!entry.name.endsWith(".reference.json")) continue;
    const name = entry.name.slice(0, -".reference.json".length);
    const ref = JSON.parse(await Deno.readTextFile(new URL(entry.name, models)));
    using file = GgufFile.open(new URL(`${name}.gguf`, models).pathname);
    const tok = tokenizerFromGgufFile(file);
    for (
      const t of ref.tokenizations as { text: string; addSpecial: boolean; parseSpecial: boolean; ids: number[] }[]
    ) {
      const opts = { addSpecial: t.addSpecial, parseSpecial: t.parseSpecial };
      assertIds(
        tok.encode(t.text, opts),
        t.ids,
        `${name} ${JSON.stringify(t.text).slice(0, 60)} ${JSON.stringify(opts)}`,
      );
      checked++;
    }
  }
  assertEquals(checked > 20, true);
});
