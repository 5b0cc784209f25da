/**
 * Finding the pinned Zig compiler and building libedgemoe from source.
 *
 * @module
 */
import { EdgeMoeError } from "../src/errors.ts";

/** The zig/ folder of this checkout (only meaningful for a local file: URL). */
export const ZIG_DIR: URL = new URL("../zig/", import.meta.url);
/** Where `zig build` installs the libraries. */
export const LIB_DIR: URL = new URL("zig-out/lib/", ZIG_DIR);
const PINNED_ZIG = new URL("../.tools/bin/zig", import.meta.url);

/** `$name`, or undefined when unset, empty, or not permitted to read. */
export function envGet(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return undefined;
  return Deno.env.get(name) || undefined;
}

/** Whether `path` is an existing regular file. */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * The Zig compiler to use: `$EDGEMOE_ZIG`, else the pinned one that `./dev`
 * installs in `.tools/`. A `zig` on PATH is not used silently: its version
 * may differ from the pin.
 *
 * @throws {EdgeMoeError} `library_not_found` saying how to install the pin.
 */
export function findZig(): string {
  const override = envGet("EDGEMOE_ZIG");
  if (override) return override;
  if (ZIG_DIR.protocol === "file:") {
    const pinned = PINNED_ZIG.pathname;
    if (isFile(pinned)) return pinned;
  }
  throw new EdgeMoeError(
    "library_not_found",
    "find zig",
    `the pinned Zig compiler is not installed (looked for ${PINNED_ZIG.pathname}); run ./dev setup, or set EDGEMOE_ZIG to a zig 0.14.1 binary`,
  );
}

/**
 * Runs `zig build ARGS...` in zig/, inheriting stdout/stderr when `verbose`.
 *
 * @throws {EdgeMoeError} `library_not_found` if zig cannot run or the build fails.
 */
export function zigBuild(args: readonly string[] = [], verbose = false): void {
  if (ZIG_DIR.protocol !== "file:") {
    throw new EdgeMoeError("library_not_found", "build native library", `sources are not local (${ZIG_DIR.href})`);
  }
  const zig = findZig();
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command(zig, {
      args: ["build", ...args],
      cwd: ZIG_DIR.pathname,
      stdout: verbose ? "inherit" : "piped",
      stderr: verbose ? "inherit" : "piped",
    }).outputSync();
  } catch (e) {
    throw new EdgeMoeError("library_not_found", "build native library", `could not run ${zig}`, { cause: e });
  }
  if (!out.success) {
    const stderr = verbose ? "" : new TextDecoder().decode(out.stderr).slice(-2000);
    throw new EdgeMoeError(
      "library_not_found",
      "build native library",
      `zig build ${args.join(" ")} failed with exit code ${out.code}${stderr ? `:\n${stderr}` : ""}`,
    );
  }
}
