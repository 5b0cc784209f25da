/**
 * `edgemoe convert -m IN.gguf -o OUT.pack.gguf [--force]`: a plain GGUF
 * (experts stacked as llama.cpp stores them) to a pack, atomically, then read
 * back and every expert blob's checksum verified. `-m` may also be a Hugging
 * Face model directory: it is first converted to a plain GGUF (kept as the
 * output with `--gguf`, else a temporary file beside the output).
 *
 * @module
 */
import { type GgmlTypeName, nativeLibrary } from "../../ffi/native.ts";
import { ggmlTypeById, ggmlTypeByName } from "../gguf/types.ts";
import { readPlan } from "../plan/plan_file.ts";
import { EdgeMoeError } from "../errors.ts";
import { GgufFile } from "../gguf/reader.ts";
import { convertHfToGguf } from "../hf/convert.ts";
import { convertGgufToPack } from "../pack/convert.ts";
import { PackFile } from "../pack/reader.ts";
import { parseArgs } from "../std/cli.ts";

const USAGE =
  `usage: edgemoe convert -m IN.gguf|HF_DIR -o OUT.pack.gguf [--type T | --plan PLAN.json] [--force] [--gguf]

Converts a GGUF model whose experts are stacked (blk.N.ffn_{gate,up,down}_exps.weight)
into an edgemoe pack: resident tensors first, then one 4096-aligned, checksummed blob per
layer and expert. Tensor types are kept, or with --plan (from edgemoe plan) each expert's gate,
up and down are requantized natively to its planned type (from their f32 values); --type T does the same
with one type for every expert (e.g. q4_k, q8_0). The output is written to OUT.partial, synced and
renamed; an existing OUT is refused unless --force. The result is read back and verified.

IN may be a Hugging Face model directory (config.json, tokenizer.json, *.safetensors) of
Mixtral, Qwen2-MoE, Qwen3-MoE or OLMoE: it is converted to GGUF first (F32/F16/BF16 kept).
With --gguf the output is that plain GGUF, which llama.cpp loads, instead of a pack.`;

/** A progress reporter: a bar on a TTY, a line every 10% otherwise. */
function progress(unit: string): (done: number, total: number) => void {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let lastPct = -1;
  return (done, total) => {
    const pct = Math.floor((done * 100) / total);
    if (tty) {
      const bar = "#".repeat(Math.floor(pct / 4)).padEnd(25, ".");
      Deno.stderr.writeSync(enc.encode(`\r[${bar}] ${done}/${total} ${unit}`));
      if (done === total) Deno.stderr.writeSync(enc.encode("\n"));
    } else if (pct >= lastPct + 10 || done === total) {
      lastPct = pct;
      console.error(`convert: ${done}/${total} ${unit} (${pct}%)`);
    }
  };
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** Every expert of every expert layer at type `type` (`--type`). */
function uniformPlan(path: string, type: string): { method: string; types: string[][] } {
  using f = GgufFile.open(path);
  const layers = f.tensors.filter((t) => /^blk\.\d+\.ffn_gate_exps\.weight$/.test(t.name));
  return { method: `uniform ${type}`, types: layers.map((t) => new Array(t.dims[2]).fill(type)) };
}

/** Runs `edgemoe convert`; returns the exit code. */
export async function convert(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    string: ["model", "output", "plan", "type"],
    boolean: ["force", "help", "gguf"],
    alias: { m: "model", o: "output", h: "help" },
  });
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const input = args.model as string | undefined;
  const output = args.output as string | undefined;
  if (!input || !output || args._.length > 0) {
    throw new EdgeMoeError("invalid_argument", "convert", `expected -m IN.gguf -o OUT.pack.gguf\n\n${USAGE}`);
  }
  const t0 = performance.now();
  const fromHf = isDirectory(input);
  const tensorProgress = progress("tensors");
  const onTensor = (i: number, n: number) => tensorProgress(i + 1, n);
  if (args.gguf) {
    if (!fromHf) {
      throw new EdgeMoeError("invalid_argument", "convert", "--gguf needs a Hugging Face model directory as input");
    }
    await convertHfToGguf(input, output, { overwrite: Boolean(args.force), onTensor });
    using g = GgufFile.open(output);
    const secs = (performance.now() - t0) / 1000;
    console.log(`wrote ${output}: ${g.size} bytes, ${g.tensors.length} tensors (read back) in ${secs.toFixed(2)} s`);
    return 0;
  }
  const lib = nativeLibrary();
  const checksum = (b: Uint8Array) => lib.checksum64(b);
  if (args.plan !== undefined && args.type !== undefined) {
    throw new EdgeMoeError("invalid_argument", "convert", "give --type or --plan, not both");
  }
  if (typeof args.type === "string" && ggmlTypeByName(args.type) === undefined) {
    throw new EdgeMoeError(
      "invalid_argument",
      "convert",
      `--type ${args.type} is not a GGML type (e.g. q4_k, q8_0, f16)`,
    );
  }
  let planned: { method: string; types: readonly (readonly string[])[] } | undefined = typeof args.plan === "string"
    ? readPlan(args.plan)
    : undefined;
  // The intermediate GGUF has a name derived from the output, so a run killed midway leaves at most one
  // stale file, which the next run replaces (a random temporary name would leak one per killed run).
  const ggufIn = fromHf ? `${dirOf(output)}/.${baseName(output)}.hf.gguf` : input;
  let result;
  try {
    if (fromHf) await convertHfToGguf(input, ggufIn, { overwrite: true, onTensor });
    if (typeof args.type === "string") planned = uniformPlan(ggufIn, args.type);
    result = await convertGgufToPack(ggufIn, output, {
      overwrite: Boolean(args.force),
      checksum,
      plan: planned && {
        method: planned.method,
        types: planned.types,
        transcode: (bytes, from, to, n) => {
          const name = ggmlTypeById(from)!.name as GgmlTypeName;
          const data = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
          return lib.quantize(to as GgmlTypeName, lib.dequantize(name, data, n));
        },
      },
      onExpert: progress("experts"),
      source: baseName(input),
    });
  } finally {
    if (fromHf) await Deno.remove(ggufIn).catch(() => {});
  }
  using pack = PackFile.open(output);
  for (const b of pack.blobs()) pack.readExpert(b.layer, b.expert, checksum);
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `wrote ${output}: ${result.fileBytes} bytes, ${pack.resident.length} resident tensors, ${pack.expertLayers.length} layers × ${pack.expertCount} experts (checksums verified) in ${
      secs.toFixed(2)
    } s`,
  );
  return 0;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function baseName(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p.slice(p.lastIndexOf("/") + 1);
}
