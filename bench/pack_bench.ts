/**
 * Pack benchmarks: `deno task bench`. A synthetic MoE GGUF (2 layers × 16
 * experts, q8_0 2048×1024 per matrix, about 215 MB) is written, then timed:
 * opening it (head only), converting it to a pack (read, slice, checksum,
 * write, fsync, verify by reading back), and the XXH64 blob checksum.
 */
import { NativeLibrary } from "../mod.ts";
import { GgufFile } from "../src/gguf/reader.ts";
import { GgmlType } from "../src/gguf/types.ts";
import { writeGguf } from "../src/gguf/writer.ts";
import { convertGgufToPack } from "../src/pack/convert.ts";
import { PackFile } from "../src/pack/reader.ts";

const lib = NativeLibrary.open();
const checksum = (b: Uint8Array) => lib.checksum64(b);
const dir = Deno.makeTempDirSync({ prefix: "edgemoe-pack-bench-" });
const src = `${dir}/moe.gguf`, out = `${dir}/moe.pack.gguf`;
const [nEmbd, nFf, nExpert, nLayer] = [2048, 1024, 16, 2];
const q8 = (elems: number) => (elems / 32) * 34;
const fill = (n: number) => new Uint8Array(n).map((_, i) => (i * 2654435761) >>> 24);
const tensors = [{ name: "token_embd.weight", type: GgmlType.q8_0, dims: [nEmbd, 1000], data: fill(q8(nEmbd * 1000)) }];
for (let l = 0; l < nLayer; l++) {
  for (const p of ["gate", "up", "down"]) {
    const dims = p === "down" ? [nFf, nEmbd, nExpert] : [nEmbd, nFf, nExpert];
    tensors.push({
      name: `blk.${l}.ffn_${p}_exps.weight`,
      type: GgmlType.q8_0,
      dims,
      data: fill(q8(nEmbd * nFf * nExpert)),
    });
  }
}
await writeGguf(src, [["general.architecture", { type: "string", value: "qwen2moe" }]], tensors);
const bytes = Deno.statSync(src).size;

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, (performance.now() - t0) / 1000];
}

const [, openS] = time(() => GgufFile.open(src).close());
console.log(`open (head only) of a ${(bytes / 1e6).toFixed(0)} MB GGUF: ${(openS * 1e3).toFixed(2)} ms`);
const t0 = performance.now();
await convertGgufToPack(src, out, { checksum });
const convS = (performance.now() - t0) / 1000;
console.log(`convert (slice, checksum, write, fsync, rename): ${(bytes / convS / 1e9).toFixed(2)} GB/s`);
{
  using pack = PackFile.open(out);
  const [, verifyS] = time(() => pack.blobs().forEach((b) => pack.readExpert(b.layer, b.expert, checksum)));
  console.log(`read back + verify every expert blob: ${(bytes / verifyS / 1e9).toFixed(2)} GB/s`);
}
const blob = fill(64 << 20);
const [, sumS] = time(() => checksum(blob));
console.log(`XXH64 checksum: ${(blob.length / sumS / 1e9).toFixed(1)} GB/s [${lib.variant}]`);
Deno.bench({ name: "open gguf head", group: "pack", fn: () => GgufFile.open(out).close() });
Deno.bench({ name: "checksum64 1 MiB", group: "pack", fn: () => void checksum(blob.subarray(0, 1 << 20)) });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
