/**
 * `edgemoe inspect MODEL [--json] [--tensors]`: what a GGUF file or pack holds.
 *
 * @module
 */
import { GgufFile } from "../gguf/reader.ts";
import type { GgufValue } from "../gguf/types.ts";
import { PACK_KEYS } from "../pack/format.ts";
import { isPack, PackFile } from "../pack/reader.ts";
import { parseArgs } from "../std/cli.ts";

const USAGE = `usage: edgemoe inspect MODEL [--json] [--tensors]

Shows a GGUF file's architecture, hyperparameters, tokenizer, tensor types and sizes
(resident vs expert), and its metadata; for a pack also the per-expert types, the plan
and the experts' average bits per weight. Arrays longer than 16 items are shown by length.
--tensors lists every tensor (always included with --json).`;

const MAX_SHOWN_ITEMS = 16;
const MAX_SHOWN_CHARS = 200;

/** A metadata value for display: short values in full, long ones summarised. */
function show(v: GgufValue): unknown {
  if (v.type === "array") {
    if (v.value.length > MAX_SHOWN_ITEMS) return `[${v.itemType} × ${v.value.length}]`;
    return Array.from(v.value as ArrayLike<unknown>, (x) => (typeof x === "bigint" ? x.toString() : x));
  }
  if (typeof v.value === "bigint") return v.value.toString();
  if (typeof v.value === "string" && v.value.length > MAX_SHOWN_CHARS) {
    return `${v.value.slice(0, 60)}… (${v.value.length} chars)`;
  }
  return v.value;
}

const EXPERT_RE = /^blk\.\d+\.ffn_(gate|up|down)(_exps|\.\d+)\.weight$/;

/** The inspect report of one file. */
export function inspectReport(path: string): Record<string, unknown> {
  using f = GgufFile.open(path);
  const arch = f.has("general.architecture") ? f.getString("general.architecture") : "(none)";
  const hparams: Record<string, unknown> = {};
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of f.metadata) {
    metadata[k] = show(v);
    if (k.startsWith(`${arch}.`)) hparams[k.slice(arch.length + 1)] = show(v);
  }
  const types: Record<string, { tensors: number; bytes: number }> = {};
  let resident = 0, expert = 0, expertElems = 0;
  for (const t of f.tensors) {
    const s = types[t.type.name] ??= { tensors: 0, bytes: 0 };
    s.tensors++;
    s.bytes += t.bytes;
    if (EXPERT_RE.test(t.name)) {
      expert += t.bytes;
      expertElems += t.elems;
    } else resident += t.bytes;
  }
  const report: Record<string, unknown> = {
    file: path,
    format: isPack(f) ? "edgemoe pack" : "gguf",
    version: f.version,
    fileBytes: f.size,
    alignment: f.alignment,
    architecture: arch,
    name: f.has("general.name") ? show(f.get("general.name")!) : undefined,
    hyperparameters: hparams,
    tokenizer: f.has("tokenizer.ggml.model")
      ? {
        model: show(f.get("tokenizer.ggml.model")!),
        tokens: f.get("tokenizer.ggml.tokens")?.type === "array" ? f.getStringArray("tokenizer.ggml.tokens").length : 0,
      }
      : undefined,
    tensorCount: f.tensors.length,
    types,
    residentBytes: resident,
    expertBytes: expert,
    expertBitsPerWeight: expertElems ? Number(((expert * 8) / expertElems).toFixed(3)) : undefined,
    metadata,
    tensors: f.tensors.map((t) => ({
      name: t.name,
      type: t.type.name,
      dims: t.dims,
      bytes: t.bytes,
      offset: t.offset,
    })),
  };
  if (isPack(f)) {
    using pack = PackFile.fromGguf(GgufFile.open(path));
    const combos: Record<string, number> = {};
    for (const b of pack.blobs()) {
      const key = `${b.tensors.gate.type.name}/${b.tensors.up.type.name}/${b.tensors.down.type.name}`;
      combos[key] = (combos[key] ?? 0) + 1;
    }
    report.pack = {
      expertLayers: pack.expertLayers,
      expertCount: pack.expertCount,
      expertTypes: combos,
      plan: { method: pack.plan.method, source: pack.plan.source },
      sourceBytes: f.has(PACK_KEYS.sourceBytes) ? show(f.get(PACK_KEYS.sourceBytes)!) : undefined,
      sourceXxh64: f.has(PACK_KEYS.sourceHash) ? show(f.get(PACK_KEYS.sourceHash)!) : undefined,
      perExpertTypes: pack.plan.types.map((l) => l.map((e) => e.join("/"))),
    };
  }
  return report;
}

function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(2)} MiB`;
}

/** Runs `edgemoe inspect`; returns the exit code. */
export function inspect(argv: string[]): number {
  const args = parseArgs(argv, { boolean: ["json", "tensors", "help"], alias: { h: "help" } });
  if (args.help || args._.length !== 1) {
    console.log(USAGE);
    return args.help ? 0 : 2;
  }
  const r = inspectReport(args._[0]);
  if (args.json) {
    console.log(JSON.stringify(r, null, 2));
    return 0;
  }
  const out: string[] = [];
  out.push(`${r.file}: ${r.format}, GGUF v${r.version}, ${mib(r.fileBytes as number)}, alignment ${r.alignment}`);
  out.push(`architecture  ${r.architecture}${r.name ? ` (${r.name})` : ""}`);
  for (const [k, v] of Object.entries(r.hyperparameters as object)) out.push(`  ${k.padEnd(40)} ${JSON.stringify(v)}`);
  if (r.tokenizer) out.push(`tokenizer     ${JSON.stringify(r.tokenizer)}`);
  out.push(`tensors       ${r.tensorCount}`);
  for (const [k, v] of Object.entries(r.types as Record<string, { tensors: number; bytes: number }>)) {
    out.push(`  ${k.padEnd(6)} ${String(v.tensors).padStart(6)} tensors  ${mib(v.bytes)}`);
  }
  out.push(`resident      ${mib(r.residentBytes as number)}`);
  out.push(
    `experts       ${mib(r.expertBytes as number)}${
      r.expertBitsPerWeight ? `, ${r.expertBitsPerWeight} bits per weight on average` : ""
    }`,
  );
  if (r.pack) {
    const p = r.pack as Record<string, unknown>;
    out.push(`pack          layers [${p.expertLayers}] × ${p.expertCount} experts, plan ${JSON.stringify(p.plan)}`);
    for (const [k, v] of Object.entries(p.expertTypes as object)) {
      out.push(`  gate/up/down ${k.padEnd(20)} ${v} experts`);
    }
  }
  out.push("metadata");
  for (const [k, v] of Object.entries(r.metadata as object)) out.push(`  ${k.padEnd(40)} ${JSON.stringify(v)}`);
  if (args.tensors) {
    out.push("tensors");
    for (const t of r.tensors as { name: string; type: string; dims: number[]; bytes: number }[]) {
      out.push(`  ${t.name.padEnd(40)} ${t.type.padEnd(6)} [${t.dims.join(", ")}]`.padEnd(80) + ` ${t.bytes}`);
    }
  }
  console.log(out.join("\n"));
  return 0;
}
