/**
 * The Deno permissions the `edgemoe` CLI runs with. `deno task edgemoe`
 * (deno.json) grants exactly these; `deno task compile` bakes them into the
 * binary; tests spawn the CLI with them. tests/cli_test.ts checks deno.json agrees.
 *
 * @module
 */

/** Flags for `deno run` / `deno compile`: FFI for the kernels, files, env, spawning zig, the server's network. */
export const CLI_PERMISSIONS: readonly string[] = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-sys",
];

/** Runtime flags `deno run` needs besides permissions (request.signal aborts only on disconnect). */
export const CLI_RUNTIME_FLAGS: readonly string[] = ["--unstable-no-legacy-abort"];
