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

const FIXTURES = new URL("../../tests/fixtures/", import.meta.url);
const read = (p: string) => Deno.readFileSync(new URL(p, FIXTURES));
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const MESSAGES = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hello" },
  { role: "assistant", content: "Hi." },
  { role: "user", content: "And again?" },
];

/** A reader under fuzz. */
export interface FuzzTarget {
  name: string;
  /** Valid inputs to mutate. */
  seeds(): Uint8Array[];
  /** Parses (and uses) one input. */
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
];
