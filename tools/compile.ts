/**
 * `deno task compile`: builds a standalone `edgemoe` binary in dist/.
 * `deno compile` needs a `denort` runtime: it downloads one unless DENORT_BIN
 * points at a local copy. Where neither works (this machine has no route to
 * dl.deno.land) the task says so and stops without an obscure failure.
 */
import { CLI_PERMISSIONS, CLI_RUNTIME_FLAGS } from "../src/cli/permissions.ts";

const out = "dist/edgemoe";
const args = [
  "compile",
  ...CLI_RUNTIME_FLAGS,
  ...CLI_PERMISSIONS,
  "--include",
  "zig/zig-out/lib",
  "--output",
  out,
  "src/cli/main.ts",
];
const r = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "piped" }).output();
const err = new TextDecoder().decode(r.stderr);
if (r.success) {
  console.log(`compiled ${out}`);
  Deno.exit(0);
}
if (/denort|dl\.deno\.land|download|network|dns|connect/i.test(err)) {
  console.error(
    `deno compile skipped: it needs the denort runtime for Deno ${Deno.version.deno}, which it could not download ` +
      `(no network route to dl.deno.land here). Set DENORT_BIN to a local denort of that version to compile offline.\n` +
      `deno said: ${err.split("\n").find((l) => /error/i.test(l))?.trim() ?? "(nothing)"}`,
  );
  Deno.exit(0);
}
console.error(err);
Deno.exit(r.code);
