import { main } from "../src/cli/main.ts";
import { GgufFile } from "../src/gguf/reader.ts";
import { PackFile } from "../src/pack/reader.ts";
import { assertEquals } from "../src/std/assert.ts";

const QWEN2 = new URL("./fixtures/hf/qwen2moe", import.meta.url).pathname;

Deno.test("edgemoe convert: a Hugging Face directory to a plain GGUF with --gguf", async () => {
  const dir = Deno.makeTempDirSync();
  const out = `${dir}/q.gguf`;
  assertEquals(await main(["convert", "-m", QWEN2, "-o", out, "--gguf"]), 0);
  using g = GgufFile.open(out);
  assertEquals(g.getString("general.architecture"), "qwen2moe");
  assertEquals(g.tensors.some((t) => t.name === "blk.1.ffn_down_exps.weight"), true);
  assertEquals(await main(["convert", "-m", QWEN2, "-o", out, "--gguf"]), 1, "an existing output is refused");
});

Deno.test("edgemoe convert: a Hugging Face directory to a pack leaves only the pack", async () => {
  const dir = Deno.makeTempDirSync();
  const out = `${dir}/q.pack.gguf`;
  assertEquals(await main(["convert", "-m", `${QWEN2}/`, "-o", out]), 0);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["q.pack.gguf"]);
  using pack = PackFile.open(out);
  assertEquals(pack.expertCount, 4);
  assertEquals(pack.expertLayers.length, 2);
});

Deno.test("edgemoe convert: --gguf with a GGUF input is refused", async () => {
  const dir = Deno.makeTempDirSync();
  assertEquals(await main(["convert", "-m", `${dir}/x.gguf`, "-o", `${dir}/y.gguf`, "--gguf"]), 1);
});

Deno.test("edgemoe convert: a refused Hugging Face conversion leaves no temporary file", async () => {
  const dir = Deno.makeTempDirSync();
  const out = `${dir}/q.pack.gguf`;
  Deno.writeTextFileSync(out, "keep");
  assertEquals(await main(["convert", "-m", QWEN2, "-o", out]), 1, "an existing pack is refused without --force");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["q.pack.gguf"]);
  assertEquals(Deno.readTextFileSync(out), "keep");
  const bad = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${bad}/config.json`, JSON.stringify({ architectures: ["GPT2LMHeadModel"] }));
  assertEquals(await main(["convert", "-m", bad, "-o", `${dir}/other.pack.gguf`]), 1);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["q.pack.gguf"]);
});
