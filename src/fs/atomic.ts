/**
 * Atomic small-file writes: `PATH.partial`, fsync, rename. A failure leaves
 * the previous file (if any) untouched and no `.partial` behind.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/**
 * Writes `data` to `path` atomically.
 *
 * @throws {EdgeMoeError} `io` naming the path.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const partial = `${path}.partial`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    const f = Deno.openSync(partial, { write: true, create: true, truncate: true });
    try {
      let done = 0;
      while (done < bytes.length) done += f.writeSync(bytes.subarray(done));
      f.syncSync();
    } finally {
      f.close();
    }
    Deno.renameSync(partial, path);
  } catch (e) {
    try {
      Deno.removeSync(partial);
    } catch { /* it may not exist */ }
    throw new EdgeMoeError("io", `write ${path}`, (e as Error).message, { cause: e });
  }
}
