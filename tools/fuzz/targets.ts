/**
 * The fuzz targets: every reader of untrusted input, with its valid seeds.
 * A target either accepts an input or throws `EdgeMoeError`; anything else
 * (a TypeError, a RangeError, a native crash, a hang, a huge allocation) is
 * a finding.
 *
 * @module
 */
import { GgufFile, memorySource } from "../../src/gguf/mod.ts";
import { PackFile } from "../../src/pack/mod.ts";
import { tokenizerFromHf } from "../../src/tokenizer/mod.ts";
import { ChatTemplate } from "../../src/template/chat_template.ts";
import { ProfileBuilder, profileFromJson, profileToJson } from "../../src/predictor/predictor.ts";
import { parseSafetensorsHeader, parseSafetensorsPrefix } from "../../src/safetensors/mod.ts";
import { archMetadata, parseHfConfig, planTensors, tokenizerMetadata } from "../../src/hf/mod.ts";
import { SAFETENSORS_INDEX, SafetensorsModel } from "../../src/safetensors/mod.ts";
import { tokenizerFromGgufFile } from "../../src/tokenizer/mod.ts";
import { createEngine } from "../../src/engine.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { PLAN_FORMAT, PLAN_VERSION, planFromJson, planToJson } from "../../src/plan/plan_file.ts";

const FIXTURES = new URL("../../tests/fixtures/", import.meta.url);
const read = (p: string) => Deno.readFileSync(new URL(p, FIXTURES));
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const MESSAGES = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hello" },
  { role: "assistant", content: "Hi." },
  { role: "user", content: "And again?" },
];

/** A safetensors file holding one F32 tensor per name (4 bytes each). */
function safetensorsBytes(names: readonly string[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  names.forEach((n, i) => header[n] = { dtype: "F32", shape: [1], data_offsets: [4 * i, 4 * i + 4] });
  const h = new TextEncoder().encode(JSON.stringify(header));
  const file = new Uint8Array(8 + h.length + 4 * names.length);
  new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
  file.set(h, 8);
  return file;
}

/** A scratch directory for targets whose reader takes a path (removed by {@linkcode cleanupTargets}). */
let scratchDir: string | undefined;
function scratch(): string {
  scratchDir ??= Deno.makeTempDirSync({ prefix: "edgemoe-fuzz-" });
  return scratchDir;
}

/** A model directory with two shards (and a file outside it) for the index target. */
let indexDir: string | undefined;
function shardedDir(): string {
  if (indexDir === undefined) {
    indexDir = `${scratch()}/model`;
    Deno.mkdirSync(indexDir, { recursive: true });
    Deno.writeFileSync(`${indexDir}/model-00001-of-00002.safetensors`, safetensorsBytes(["a", "b"]));
    Deno.writeFileSync(`${indexDir}/model-00002-of-00002.safetensors`, safetensorsBytes(["c"]));
    Deno.writeFileSync(`${scratch()}/outside.safetensors`, safetensorsBytes(["a", "b", "c"]));
  }
  return indexDir;
}

let fuzzLib: NativeLibrary | undefined;

/** Removes the scratch directory and closes the native library the targets opened. */
export function cleanupTargets(): void {
  if (scratchDir !== undefined) Deno.removeSync(scratchDir, { recursive: true });
  scratchDir = indexDir = undefined;
  fuzzLib?.close();
  fuzzLib = undefined;
}

/** A reader under fuzz. */
export interface FuzzTarget {
  name: string;
  /** Valid inputs to mutate. */
  seeds(): Uint8Array[];
  /** Inputs in the test suite's short bounded run (default 300; fewer for slow targets). */
  quickIterations?: number;
  /** Parses (and uses) one input. The first seed must be accepted (tests/fuzz_test.ts checks); others may be deliberately invalid. */
  run(input: Uint8Array): void;
}

function useGguf(f: GgufFile): void {
  for (const [k] of f.metadata) f.get(k);
  for (const t of f.tensors.slice(0, 64)) if (t.bytes <= 1 << 20) f.readTensor(t.name);
}

/** Every target, by name. */
export const TARGETS: readonly FuzzTarget[] = [
  {
    name: "gguf",
    seeds: () => ["gguf/basic.gguf", "gguf/ours.gguf", "gguf/big_endian.gguf"].map(read),
    run: (b) => {
      using f = GgufFile.fromSource(memorySource(b), "fuzz.gguf");
      useGguf(f);
    },
  },
  {
    name: "pack",
    seeds: () => [read("gguf/moe_tiny.pack.gguf")],
    run: (b) => {
      using p = PackFile.fromGguf(GgufFile.fromSource(memorySource(b), "fuzz.pack.gguf"));
      for (const blob of p.blobs()) p.gguf.readRange(blob.offset, blob.length);
    },
  },
  {
    name: "tokenizer.json",
    seeds: () => ["gpt2", "qwen2", "llama3", "spm"].map((n) => read(`tokenizer/${n}.tokenizer.json`)),
    run: (b) => {
      let json: unknown;
      try {
        json = JSON.parse(text(b));
      } catch {
        return; // not JSON: the caller's JSON.parse fails before our reader runs
      }
      const t = tokenizerFromHf(json);
      const ids = t.encode("Hello, world! 3.14 — ünïcødé 🙂 <|im_start|>", { parseSpecial: true });
      t.decode(ids);
    },
  },
  {
    name: "chat_template",
    seeds: () =>
      ["im_tools", "inst", "kitchen_sink", "tulu", "whitespace"].map((n) => read(`chat_templates/${n}.jinja`)),
    run: (b) => {
      ChatTemplate.fromString(text(b)).render(MESSAGES, {
        addGenerationPrompt: true,
        bosToken: "<s>",
        eosToken: "</s>",
        limits: { maxOutputChars: 1 << 20, maxSteps: 1 << 20 },
      });
    },
  },
  {
    name: "profile",
    seeds: () => {
      const p = new ProfileBuilder(3, 4);
      for (let i = 0; i < 5; i++) for (let l = 0; l < 3; l++) p.record(l, new Uint32Array([i % 4, (i + l) % 4]));
      return [new TextEncoder().encode(profileToJson(p.profile()))];
    },
    run: (b) => void profileFromJson(text(b)),
  },
  {
    name: "safetensors",
    seeds: () => {
      const header = JSON.stringify({
        __metadata__: { format: "pt" },
        a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
        b: { dtype: "BF16", shape: [4], data_offsets: [24, 32] },
        c: { dtype: "U8", shape: [0], data_offsets: [32, 32] },
      });
      const h = new TextEncoder().encode(header);
      const file = new Uint8Array(8 + h.length + 32);
      new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
      file.set(h, 8);
      return [file];
    },
    run: (b) => {
      const n = parseSafetensorsPrefix(b, b.length, "fuzz.safetensors");
      const header = parseSafetensorsHeader(b.subarray(8, 8 + n), b.length, "fuzz.safetensors");
      for (const t of header.tensors.values()) {
        if (t.fileOffset < 8 + n || t.fileOffset + t.byteLength > b.length) {
          throw new Error(`tensor ${t.name} accepted outside the data section`);
        }
      }
    },
  },
  {
    name: "hf_config",
    seeds: () => ["mixtral", "qwen2moe", "qwen3moe", "olmoe"].map((a) => read(`hf/${a}/config.json`)),
    run: (b) => {
      const cfg = parseHfConfig(text(b), "fuzz/config.json");
      archMetadata(cfg);
      if (cfg.numLayers * cfg.numExperts <= 1 << 16) planTensors(cfg, () => true);
      const tok = cfg.arch === "llama" ? "mixtral" : "qwen3moe";
      tokenizerMetadata(cfg, text(read(`hf/${tok}/tokenizer.json`)), undefined, "fuzz");
    },
  },
  {
    name: "safetensors_index",
    seeds: () => {
      const map = (m: Record<string, string>) =>
        new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: m }));
      const one = "model-00001-of-00002.safetensors", two = "model-00002-of-00002.safetensors";
      return [
        map({ a: one, b: one, c: two }),
        map({ a: "../outside.safetensors", b: one, c: two }),
        map({ a: one, b: two, c: two }),
      ];
    },
    run: (b) => {
      const dir = shardedDir();
      Deno.writeFileSync(`${dir}/${SAFETENSORS_INDEX}`, b);
      using m = SafetensorsModel.open(dir);
      for (const f of m.files) {
        if (!f.path.startsWith(`${dir}/`) || f.path.slice(dir.length + 1).includes("/")) {
          throw new Error(`index opened ${f.path}, outside ${dir}`);
        }
      }
    },
  },
  {
    name: "gguf_tokenizer",
    seeds: () => ["models/qwen3moe.gguf", "models/mixtral.gguf"].map(read),
    run: (b) => {
      using f = GgufFile.fromSource(memorySource(b), "fuzz.gguf");
      const t = tokenizerFromGgufFile(f);
      t.decode(t.encode("Hello, world! 3.14 — ünïcødé 🙂 <|im_start|>", { parseSpecial: true }));
    },
  },
  {
    name: "engine",
    quickIterations: 40,
    seeds: () => [read("models/qwen3moe.gguf")],
    run: (b) => {
      const path = `${scratch()}/model.gguf`;
      Deno.writeFileSync(path, b);
      fuzzLib ??= NativeLibrary.open();
      using engine = createEngine(path, { lib: fuzzLib, store: "pread", memBudget: 256 << 20, nCtx: 8 });
      const logits = engine.evaluate([1, 2]);
      if (logits.length === 0) throw new Error("evaluate returned no logits");
    },
  },
  {
    name: "plan",
    seeds: () => {
      const types = [["q4_k", "q6_k", "q4_k"], ["q8_0", "q4_k", "q6_k"]];
      const grid = (v: number) => types.map((row) => row.map(() => v));
      const summary = { loss: 0.5, bytes: 4096, bits: 5, bytesPerToken: 1024, types };
      return [
        new TextEncoder().encode(planToJson({
          format: PLAN_FORMAT,
          version: PLAN_VERSION,
          model: "m.gguf",
          method: "knapsack",
          budget: { maxBytes: 8192 },
          nLayers: 2,
          nExperts: 3,
          candidates: ["q4_k", "q6_k", "q8_0"],
          types,
          frequency: grid(1 / 3),
          sensitivity: {
            tokens: 16,
            kl: types.map((row) => row.map(() => [0.3, 0.1, 0.01])),
            bytes: types.map((row) => row.map(() => [144, 210, 272])),
          },
          plans: { edgemoe: summary, knapsack: summary },
        })),
      ];
    },
    run: (b) => void planFromJson(text(b), "fuzz.plan.json"),
  },
];
