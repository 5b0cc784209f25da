/**
 * Runs the pinned Zig: `deno run -A tools/zig.ts ARGS...` is `zig ARGS...`,
 * with `build` run inside zig/. Used by the `build` and `check` tasks so they
 * work without zig on PATH.
 */
import { findZig, ZIG_DIR } from "../ffi/build.ts";

const args = Deno.args;
const inZigDir = args[0] === "build";
const { code } = await new Deno.Command(findZig(), {
  args,
  cwd: inZigDir ? ZIG_DIR.pathname : Deno.cwd(),
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(code);
