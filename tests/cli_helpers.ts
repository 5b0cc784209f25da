/** Running the CLI as users do: a subprocess with the flags `deno task edgemoe` uses. */
import { CLI_PERMISSIONS, CLI_RUNTIME_FLAGS } from "../src/cli/permissions.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;

/** `deno run … src/cli/main.ts ARGS` as a command (stdout and stderr piped unless `opts` says otherwise). */
export function edgemoeCommand(args: string[], opts: Deno.CommandOptions = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...CLI_RUNTIME_FLAGS, ...CLI_PERMISSIONS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    ...opts,
  });
}

/** Runs the CLI to completion, feeding `stdin` if given; returns the exit code and decoded output. */
export async function edgemoe(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const child = edgemoeCommand(args, { stdin: stdin === undefined ? "null" : "piped" }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await child.output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}
