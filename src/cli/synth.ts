/**
 * `edgemoe synth [--preset NAME] [--layers L --experts E ...] --type T -o FILE`:
 * writes a synthetic Qwen3-MoE GGUF with random weights for benchmarks.
 *
 * @module
 */
import { nativeLibrary } from "../../ffi/native.ts";
import { EdgeMoeError } from "../errors.ts";
import { parseArgs } from "../std/cli.ts";
import { formatSize } from "../store/budget.ts";
import { SYNTH_PRESETS, synthBytes, type SynthSpec, writeSynth } from "../synth/synth.ts";
import { intFlag, stringFlag } from "./flags.ts";

const SHAPE_FLAGS = {
  layers: "layers",
  experts: "experts",
  "top-k": "topK",
  hidden: "hidden",
  "expert-ffn": "expertFfn",
  heads: "heads",
  "kv-heads": "kvHeads",
  "head-dim": "headDim",
  vocab: "vocab",
} as const;

const USAGE = `usage: edgemoe synth [--preset NAME] [shape flags] [--type T] [--seed S] -o FILE [--force]

Writes a valid GGUF with random weights (the same file for the same flags and seed) and a small
byte-level BPE tokenizer; llama.cpp loads it. Shape flags override the preset's values.
  --preset NAME        ${Object.keys(SYNTH_PRESETS).join(" | ")} (default tiny)
  --arch A             qwen3moe (the only one today)
  --layers L           transformer blocks
  --experts E          experts per layer
  --top-k K            experts used per token
  --hidden H           embedding width
  --expert-ffn F       FFN width of each expert
  --heads N            attention heads;  --kv-heads N  key/value heads;  --head-dim D  head width
  --vocab V            tokens in the synthetic vocabulary (≥ 259)
  --type T             GGML type of the matrices: f32, f16, q8_0, q4_0, q4_k, q6_k, ... (default f16)
  --seed S             seed of the weights (default 42)
  -o, --output FILE    where to write (atomically: FILE.partial, fsync, rename)
  --force              replace an existing FILE`;

/** The spec from parsed flags (exported for tests). */
export function synthSpecFromArgs(argv: string[]): { spec: SynthSpec; output: string; force: boolean } | undefined {
  const a = parseArgs(argv, {
    string: ["preset", "arch", "type", "seed", "output", ...Object.keys(SHAPE_FLAGS)],
    boolean: ["force", "help"],
    alias: { o: "output", h: "help" },
  });
  if (a.help) return undefined;
  if (a._.length > 0) {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `unexpected argument "${a._[0]}"\n\n${USAGE}`);
  }
  const presetName = typeof a.preset === "string" ? a.preset : "tiny";
  const preset = SYNTH_PRESETS[presetName];
  if (!preset) {
    throw new EdgeMoeError(
      "invalid_argument",
      "parse arguments",
      `--preset must be one of ${Object.keys(SYNTH_PRESETS).join(", ")}, got "${presetName}"`,
    );
  }
  const spec: SynthSpec = {
    ...preset,
    type: typeof a.type === "string" ? a.type : "f16",
    seed: intFlag(a, "seed", 42),
  };
  if (a.arch !== undefined) spec.arch = a.arch as SynthSpec["arch"];
  for (const [flag, key] of Object.entries(SHAPE_FLAGS)) spec[key] = intFlag(a, flag, spec[key], 1);
  return { spec, output: stringFlag(a, "output", USAGE), force: Boolean(a.force) };
}

/** Runs `edgemoe synth`. */
export async function synth(argv: string[]): Promise<number> {
  const parsed = synthSpecFromArgs(argv);
  if (!parsed) {
    console.log(USAGE);
    return 0;
  }
  const { spec, output, force } = parsed;
  const { expertBytes, residentBytes } = synthBytes(spec);
  console.error(
    `synth: ${spec.layers} layers × ${spec.experts} experts (top-${spec.topK}), ${spec.type}: ${
      formatSize(expertBytes)
    } of experts + ${formatSize(residentBytes)} resident`,
  );
  const t0 = performance.now();
  let last = 0;
  const { fileBytes } = await writeSynth(nativeLibrary(), output, spec, {
    overwrite: force,
    onTensor(done, total) {
      const pct = Math.floor((done * 100) / total);
      if (pct >= last + 10 || done === total) {
        last = pct;
        console.error(`synth: ${done}/${total} tensors (${pct}%)`);
      }
    },
  });
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `wrote ${output}: ${fileBytes} bytes (${formatSize(fileBytes)}) in ${secs.toFixed(1)} s (${
      (fileBytes / secs / 1e6).toFixed(0)
    } MB/s)`,
  );
  return 0;
}
