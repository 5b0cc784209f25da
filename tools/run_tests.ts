/**
 * The whole test suite: Zig unit tests (every x86-64 variant natively, a
 * ReleaseSafe build, and aarch64 under qemu-user), then the Deno tests. The
 * last line is the total, `N passed, N failed`, alone on its line.
 *
 *   deno task test [DENO_TEST_ARGS...]
 */
import { findZig, ZIG_DIR, zigBuild } from "../ffi/build.ts";

/** Runs a command, echoing its output as it comes, and returns all of it. */
async function tee(cmd: string, args: string[], cwd?: string): Promise<{ ok: boolean; text: string }> {
  const child = new Deno.Command(cmd, { args, cwd, env: { NO_COLOR: "1" }, stdout: "piped", stderr: "piped" }).spawn();
  const decoder = new TextDecoder();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      await sink.write(chunk);
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const status = await child.status;
  return { ok: status.success, text };
}

let passed = 0, failed = 0;

console.log("== zig: unit tests (x86-64 variants, ReleaseSafe, aarch64 under qemu)");
const zig = await tee(
  findZig(),
  ["build", "test", "-Dtest-aarch64=true", "-fqemu", "--summary", "all"],
  ZIG_DIR.pathname,
);
const zsum = zig.text.match(/(\d+)\/(\d+) tests passed(?:; (\d+) skipped)?/);
if (zsum) {
  const [p, total, skipped] = [Number(zsum[1]), Number(zsum[2]), Number(zsum[3] ?? 0)];
  passed += p;
  failed += total - p - skipped;
}
if (!zig.ok && (!zsum || Number(zsum[1]) === Number(zsum[2]))) failed += 1; // build failed before tests ran

console.log("== zig: build the libraries the Deno tests load");
try {
  zigBuild([], true);
} catch (e) {
  console.error((e as Error).message);
  failed += 1;
}

console.log("== deno: tests");
const deno = await tee(Deno.execPath(), [
  "test",
  "--allow-all",
  "--unstable-no-legacy-abort",
  "--parallel",
  ...Deno.args,
]);
const dsum = deno.text.match(/(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/);
if (dsum) {
  passed += Number(dsum[1]);
  failed += Number(dsum[2]);
} else if (!deno.ok) failed += 1;

console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 && passed > 0 ? 0 : 1);
