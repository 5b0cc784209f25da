/**
 * edgemoe and llama.cpp on the same GGUF file in one process, their
 * repetitions interleaved (llama.cpp first in odd rounds, edgemoe first in
 * even ones), so that drift in the machine's speed (other jobs, other guests
 * on the host's memory bus) slows both alike. For models that fit in RAM: no
 * cap; edgemoe with its default store (all experts in RAM), llama.cpp with
 * mmap, F32 KV cache, flash attention off, as `compare.ts`.
 *
 *   deno run -A bench/interleaved.ts -m MODEL [-p 64] [-n 64] [-r 8] [--threads 2]
 *
 * `ppN`: one evaluation of N prompt tokens (only the last logits kept);
 * `tgN`: N single-token evaluations with an argmax between them (llama-bench's
 * tests). Prints, per test, each engine's median tok/s over the rounds, its
 * range, and the median of the per-round ratios edgemoe / llama.cpp.
 *
 * @module
 */
import { NativeLibrary } from "../ffi/native.ts";
import { benchTokens } from "../src/bench/bench.ts";
import { Engine } from "../src/engine.ts";
import { parseArgs } from "../src/std/cli.ts";
import { LlamaModel } from "../tests/oracle/llama.ts";

const a = parseArgs(Deno.args, {
  string: ["model", "n-prompt", "n-gen", "repetitions", "threads"],
  alias: { m: "model", p: "n-prompt", n: "n-gen", r: "repetitions" },
  default: { "n-prompt": "64", "n-gen": "64", repetitions: "8", threads: "2" },
});
if (typeof a.model !== "string") {
  console.error("usage: deno run -A bench/interleaved.ts -m MODEL [-p 64] [-n 64] [-r 8] [--threads 2]");
  Deno.exit(2);
}
const nPrompt = Number(a["n-prompt"]), nGen = Number(a["n-gen"]), reps = Number(a.repetitions);
const threads = Number(a.threads);
const nCtx = nPrompt + nGen + 1;

using lib = NativeLibrary.open();
using llama = LlamaModel.load(a.model, { threads, nCtx });
using engine = Engine.open(a.model, { threads, lib, nCtx });
const vocab = engine.model.hp.nVocab;

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Tokens per second of one test on one engine. */
function run(which: "llama.cpp" | "edgemoe", test: "pp" | "tg", ids: number[]): number {
  const t0 = performance.now();
  if (which === "llama.cpp") {
    if (test === "pp") llama.greedy(ids, 0);
    else llama.greedy(ids.slice(0, 1), nGen - 1);
  } else {
    engine.reset();
    if (test === "pp") engine.evaluate(ids);
    else {
      let logits = engine.evaluate(ids.slice(0, 1));
      for (let i = 1; i < nGen; i++) logits = engine.evaluate([argmax(logits)]);
    }
  }
  return ((test === "pp" ? nPrompt : nGen) * 1000) / (performance.now() - t0);
}

const median = (v: number[]) => {
  const s = [...v].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// Warm-up: first touches of every page, JIT, thread start.
run("llama.cpp", "pp", benchTokens(nPrompt, vocab, 1));
run("edgemoe", "pp", benchTokens(nPrompt, vocab, 1));
console.log(
  `| test | threads | llama.cpp t/s (median, range) | edgemoe t/s (median, range) | edgemoe / llama.cpp (median of ${reps} rounds) |`,
);
console.log("| ---- | ------: | ---- | ---- | ----: |");
for (const test of ["pp", "tg"] as const) {
  if ((test === "pp" ? nPrompt : nGen) === 0) continue;
  const l: number[] = [], e: number[] = [], ratio: number[] = [];
  for (let r = 0; r < reps; r++) {
    const ids = benchTokens(test === "pp" ? nPrompt : nGen, vocab, 100 + r);
    const order = r % 2 === 0 ? (["llama.cpp", "edgemoe"] as const) : (["edgemoe", "llama.cpp"] as const);
    const got: Record<string, number> = {};
    for (const which of order) got[which] = run(which, test, ids);
    l.push(got["llama.cpp"]);
    e.push(got.edgemoe);
    ratio.push(got.edgemoe / got["llama.cpp"]);
  }
  const fmt = (v: number[]) => `${median(v).toFixed(1)} (${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)})`;
  console.log(
    `| ${test}${test === "pp" ? nPrompt : nGen} | ${threads} | ${fmt(l)} | ${fmt(e)} | ${median(ratio).toFixed(2)} |`,
  );
}
