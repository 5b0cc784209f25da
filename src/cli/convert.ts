/**
 * `edgemoe convert -m IN.gguf -o OUT.pack.gguf [--force]`: a plain GGUF
 * (experts stacked as llama.cpp stores them) to a pack, atomically, then read
 * back and every expert blob's checksum verified.
 *
 * @module
 */
import { nativeLibrary } from "../../ffi/native.ts";
import { EdgeMoeError } from "../errors.ts";
import { convertGgufToPack } from "../pack/convert.ts";
import { PackFile } from "../pack/reader.ts";
import { parseArgs } from "../std/cli.ts";

const USAGE = `usage: edgemoe convert -m IN.gguf -o OUT.pack.gguf [--force]

Converts a GGUF model whose experts are stacked (blk.N.ffn_{gate,up,down}_exps.weight)
into an edgemoe pack: resident tensors first, then one 4096-aligned, checksummed blob per
layer and expert. Tensor types are kept. The output is written to OUT.partial, synced and
renamed; an existing OUT is refused unless --force. The result is read back and verified.`;

/** Runs `edgemoe convert`; returns the exit code. */
export async function convert(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    string: ["model", "output"],
    boolean: ["force", "help"],
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
  const lib = nativeLibrary();
  const checksum = (b: Uint8Array) => lib.checksum64(b);
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let lastPct = -1;
  const t0 = performance.now();
  const result = await convertGgufToPack(input, output, {
    overwrite: Boolean(args.force),
    checksum,
    onExpert(done, total) {
      const pct = Math.floor((done * 100) / total);
      if (tty) {
        const bar = "#".repeat(Math.floor(pct / 4)).padEnd(25, ".");
        Deno.stderr.writeSync(enc.encode(`\r[${bar}] ${done}/${total} experts`));
        if (done === total) Deno.stderr.writeSync(enc.encode("\n"));
      } else if (pct >= lastPct + 10 || done === total) {
        lastPct = pct;
        console.error(`convert: ${done}/${total} experts (${pct}%)`);
      }
    },
  });
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
