/**
 * Byte-level BPE (Qwen2, Llama 3, GPT-2 pre-tokenizers) and SentencePiece-style
 * BPE built from tokenizer.json, against the ids Hugging Face `tokenizers`
 * 0.21.1 produced for the same vocabularies (tools/fixtures/make_tokenizer_fixtures.py).
 */
import { tokenizerFromHf } from "../src/tokenizer/mod.ts";
import { assertEquals } from "../src/std/assert.ts";
import { assertIds } from "./tokenizer_helpers.ts";

const DIR = new URL("./fixtures/tokenizer/", import.meta.url);

interface HfCase {
  text: string;
  ids: number[];
  ids_add_special: number[];
  ids_no_parse_special: number[];
  decoded: string;
}

async function load(name: string) {
  const json = JSON.parse(await Deno.readTextFile(new URL(`${name}.tokenizer.json`, DIR)));
  const config = JSON.parse(await Deno.readTextFile(new URL(`${name}.tokenizer_config.json`, DIR)));
  const cases: HfCase[] = JSON.parse(await Deno.readTextFile(new URL(`${name}.hf.json`, DIR))).cases;
  return { tok: tokenizerFromHf(json, config), cases };
}

for (const name of ["qwen2", "llama3", "gpt2", "spm", "spm_first", "spm_split"]) {
  Deno.test(`tokenizer.json ${name}: encode matches Hugging Face tokenizers on ${name} fixtures`, async () => {
    const { tok, cases } = await load(name);
    assertEquals(cases.length > 50, true);
    for (const c of cases) {
      const label = `${name} ${JSON.stringify(c.text).slice(0, 60)}`;
      assertIds(tok.encode(c.text, { addSpecial: false, parseSpecial: true }), c.ids, `${label} (parse special)`);
      assertIds(tok.encode(c.text, { addSpecial: false }), c.ids_no_parse_special, `${label} (special as text)`);
      assertIds(tok.encode(c.text, { parseSpecial: true }), c.ids_add_special, `${label} (add special)`);
    }
  });

  Deno.test(`tokenizer.json ${name}: decode matches Hugging Face tokenizers`, async () => {
    const { tok, cases } = await load(name);
    for (const c of cases) {
      let ours = tok.decode(c.ids_no_parse_special, { renderSpecial: true });
      // The SentencePiece decoder of tokenizer.json strips the one space the normalizer prepended.
      if (name.startsWith("spm") && ours.startsWith(" ")) ours = ours.slice(1);
      assertEquals(ours, c.decoded, `${name} ${JSON.stringify(c.text)}`);
    }
  });
}
