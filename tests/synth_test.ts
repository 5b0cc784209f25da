/**
 * `edgemoe synth`: files deterministic for a seed, valid for llama.cpp (which
 * loads them, tokenizes with their merges, and whose logits our engine
 * matches, on the GGUF and on its pack); sizes as predicted; flags validated.
 */
import { NativeLibrary } from "../mod.ts";
import { createEngine } from "../src/engine.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { convertGgufToPack } from "../src/pack/convert.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../src/std/assert.ts";
import { SYNTH_PRESETS, synthBytes, type SynthSpec, validateSynthSpec, writeSynth } from "../src/synth/synth.ts";
import { synthSpecFromArgs } from "../src/cli/synth.ts";
import { LlamaModel } from "./oracle/llama.ts";
import { maxAbsDiff } from "./oracle/reference.ts";

const TINY: SynthSpec = { ...SYNTH_PRESETS.tiny, type: "f32", seed: 7 };

async function sha256(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("synth: same seed, same bytes; another seed, other weights", async () => {
  using lib = NativeLibrary.open();
  const dir = await Deno.makeTempDir();
  try {
    await writeSynth(lib, `${dir}/a.gguf`, TINY);
    await writeSynth(lib, `${dir}/b.gguf`, TINY);
    await writeSynth(lib, `${dir}/c.gguf`, { ...TINY, seed: 8 });
    assertEquals(await sha256(`${dir}/a.gguf`), await sha256(`${dir}/b.gguf`));
    assert(await sha256(`${dir}/a.gguf`) !== await sha256(`${dir}/c.gguf`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("synth: the file has the shape asked for and the sizes synthBytes predicts", async () => {
  using lib = NativeLibrary.open();
  const dir = await Deno.makeTempDir();
  try {
    const spec: SynthSpec = { ...TINY, type: "q8_0", layers: 3, experts: 6, topK: 3 };
    await writeSynth(lib, `${dir}/m.gguf`, spec);
    using f = GgufFile.open(`${dir}/m.gguf`);
    assertEquals(f.getInt("qwen3moe.block_count"), 3);
    assertEquals(f.getInt("qwen3moe.expert_count"), 6);
    assertEquals(f.getInt("qwen3moe.expert_used_count"), 3);
    const gate = f.tensor("blk.2.ffn_gate_exps.weight")!;
    assertEquals([...gate.dims], [spec.hidden, spec.expertFfn, 6]);
    assertEquals(gate.type.name, "q8_0");
    assertEquals(f.tensor("blk.0.ffn_gate_inp.weight")!.type.name, "f32");
    let experts = 0, resident = 0;
    for (const t of f.tensors) {
      if (/_exps\./.test(t.name)) experts += t.bytes;
      else resident += t.bytes;
    }
    assertEquals({ expertBytes: experts, residentBytes: resident }, synthBytes(spec));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const type of ["f32", "f16"] as const) {
  Deno.test(`synth ${type}: llama.cpp loads it and our engine's logits agree with llama.cpp's (GGUF and pack)`, async () => {
    using lib = NativeLibrary.open();
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/m.gguf`;
      await writeSynth(lib, path, { ...TINY, type });
      await convertGgufToPack(path, `${dir}/m.pack.gguf`, { checksum: (b) => lib.checksum64(b) });
      const prompt = [1, 300, 17, 42, 99, 256, 5, 380];
      using llama = LlamaModel.load(path, { threads: 1 });
      assertEquals(llama.nVocab, TINY.vocab);
      const ref = llama.evaluate(prompt, { oneByOne: true });
      // llama.cpp tokenizes text with the synthetic merges: "the" is one merged piece per pair.
      assert(llama.tokenize("the the").length < "the the".length);
      const tol = type === "f32" ? 1e-4 : 4e-3;
      for (
        const [file, opts] of [[path, {}], [`${dir}/m.pack.gguf`, { store: "pread", memBudget: "256MiB" }]] as const
      ) {
        using engine = createEngine(file, { lib, ...opts });
        assertEquals(
          engine.tokenizer.encode("the the", { addSpecial: false }),
          Uint32Array.from(llama.tokenize("the the")),
        );
        const ours = prompt.map((t) => engine.evaluate([t]).slice());
        const d = maxAbsDiff(ours, ref);
        console.log(
          `  synth ${type} ${file.endsWith("pack.gguf") ? "pack" : "gguf"}: max |Δ| = ${d.max.toExponential(2)}`,
        );
        assert(d.max <= tol, `max |Δ| ${d.max} > ${tol}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("synth q4_k / q8_0: llama.cpp loads the natively quantized files and computes finite logits", async () => {
  using lib = NativeLibrary.open();
  const dir = await Deno.makeTempDir();
  try {
    for (const type of ["q4_k", "q8_0"]) {
      const path = `${dir}/${type}.gguf`;
      await writeSynth(lib, path, { ...TINY, hidden: 256, expertFfn: 256, heads: 4, kvHeads: 2, headDim: 64, type });
      using f = GgufFile.open(path);
      assertEquals(f.tensor("blk.1.ffn_down_exps.weight")!.type.name, type);
      using llama = LlamaModel.load(path, { threads: 1 });
      const [logits] = llama.evaluate([3, 200, 17]).slice(-1);
      assert(logits.every(Number.isFinite), `${type}: non-finite logits`);
      assert(Math.max(...logits) > Math.min(...logits), `${type}: constant logits`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("synth: presets have the real shapes; bad specs and flags are refused", async () => {
  const q = SYNTH_PRESETS["qwen3-30b-a3b"];
  assertEquals([q.layers, q.experts, q.topK, q.hidden, q.expertFfn, q.heads, q.kvHeads, q.headDim], [
    48,
    128,
    8,
    2048,
    768,
    32,
    4,
    128,
  ]);
  const small = synthBytes({ ...SYNTH_PRESETS["qwen3-moe-small"], type: "f16", seed: 1 });
  assert(small.expertBytes > 4 * 1024 ** 3, `qwen3-moe-small has ${small.expertBytes} bytes of experts`);
  for (
    const bad of [
      { topK: 9, experts: 8 },
      { heads: 3 },
      { vocab: 100 },
      { type: "q4_k" }, // hidden 64 is not a multiple of 256
      { type: "nope" },
      { seed: -1 },
      { layers: 0 },
    ]
  ) {
    assertThrows(() => validateSynthSpec({ ...TINY, ...bad } as SynthSpec), EdgeMoeError);
  }
  using lib = NativeLibrary.open();
  const dir = await Deno.makeTempDir();
  try {
    await writeSynth(lib, `${dir}/m.gguf`, TINY);
    await assertRejects(() => writeSynth(lib, `${dir}/m.gguf`, TINY), EdgeMoeError, "exists");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(synthSpecFromArgs(["--preset", "qwen3-30b-a3b", "--type", "q4_k", "-o", "x"])!.spec.layers, 48);
  assertEquals(synthSpecFromArgs(["--layers", "3", "--top-k", "1", "-o", "x"])!.spec.topK, 1);
  assertThrows(() => synthSpecFromArgs(["--preset", "nope", "-o", "x"]), EdgeMoeError, "--preset");
  assertThrows(() => synthSpecFromArgs(["--layers", "two", "-o", "x"]), EdgeMoeError, "--layers");
  assertThrows(() => synthSpecFromArgs(["--layers", "2"]), EdgeMoeError, "--output");
});
