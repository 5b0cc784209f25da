/**
 * `edgemoe info`: which native library was loaded, for which CPU variant, and
 * what the CPU supports.
 *
 * @module
 */
import { NativeLibrary } from "../../ffi/native.ts";
import { parseArgs } from "../std/cli.ts";
import { VERSION } from "../version.ts";

/** Prints library and CPU information; `--json` for machine-readable output. */
export function info(argv: string[]): number {
  const args = parseArgs(argv, { boolean: ["json", "help"], alias: { h: "help" } });
  if (args.help) {
    console.log(
      "usage: edgemoe info [--json]\n\nShows the native library in use, its CPU variant and the CPU's features.",
    );
    return 0;
  }
  using lib = NativeLibrary.open();
  const report = {
    version: VERSION,
    library: lib.path,
    variant: lib.variant,
    cpuFeatures: lib.cpuFeatures(),
    deno: Deno.version.deno,
    os: `${Deno.build.os}-${Deno.build.arch}`,
  };
  if (args.json) console.log(JSON.stringify(report, null, 2));
  else {
    for (const [k, v] of Object.entries(report)) console.log(`${k.padEnd(12)} ${Array.isArray(v) ? v.join(" ") : v}`);
  }
  return 0;
}
