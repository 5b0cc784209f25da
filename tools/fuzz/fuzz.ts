/**
 * `deno task fuzz`: mutation-based fuzzing of every reader of untrusted input
 * (tools/fuzz/targets.ts), each in a worker with hang detection. Findings are
 * saved under tests/fixtures/fuzz/TARGET/ (and then replayed by
 * tests/fuzz_test.ts on every run).
 *
 *   deno task fuzz [--target NAME] [--iterations N] [--seconds S] [--seed S]
 *   deno task fuzz --target NAME --input FILE     reproduce one input
 */
import { parseArgs } from "../../src/std/cli.ts";
import { type Finding, replay } from "./loop.ts";
import { TARGETS } from "./targets.ts";

const a = parseArgs(Deno.args, { string: ["target", "iterations", "seconds", "seed", "input", "hang-ms"] });
const targets = a.target ? TARGETS.filter((t) => t.name === a.target) : TARGETS;
if (targets.length === 0) {
  console.error(`unknown target ${a.target}; targets: ${TARGETS.map((t) => t.name).join(", ")}`);
  Deno.exit(2);
}
const OUT = new URL("../../tests/fixtures/fuzz/", import.meta.url);

async function save(f: Finding): Promise<string> {
  const hash = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", f.input.slice().buffer)).slice(0, 8),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const dir = new URL(`${f.target}/`, OUT);
  Deno.mkdirSync(dir, { recursive: true });
  const path = new URL(`${f.kind}-${hash}.bin`, dir).pathname;
  Deno.writeFileSync(path, f.input);
  return path;
}

if (typeof a.input === "string") {
  const f = replay(targets[0], Deno.readFileSync(a.input));
  console.log(f ? `FINDING (${f.kind}): ${f.error}` : "handled: accepted or EdgeMoeError");
  Deno.exit(f ? 1 : 0);
}

const iterations = Number(a.iterations ?? 2000);
const seconds = Number(a.seconds ?? 0);
const seed = Number(a.seed ?? Date.now() % 2 ** 31);
const hangMs = Number(a["hang-ms"] ?? 5000);
let total = 0, found = 0;

for (const t of targets) {
  // --seconds is shared out evenly; without it, one round of --iterations per target.
  const deadline = seconds > 0 ? performance.now() + (seconds * 1000) / targets.length : 0;
  let round = 0;
  do {
    const shared = new SharedArrayBuffer(8 + (16 << 20));
    const head = new Int32Array(shared, 0, 2);
    const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    const roundSeed = seed + round++;
    const result = await new Promise<{ findings: Finding[]; started: number }>((resolve) => {
      let last = -1, since = performance.now();
      const timer = setInterval(() => {
        const now = Atomics.load(head, 0);
        if (now !== last) {
          last = now;
          since = performance.now();
        } else if (performance.now() - since > hangMs) {
          clearInterval(timer);
          w.terminate();
          const input = new Uint8Array(shared, 8, Atomics.load(head, 1)).slice();
          resolve({
            findings: [{ target: t.name, kind: "hang", error: `no progress for ${hangMs} ms`, input }],
            started: now,
          });
        }
      }, 100);
      w.onmessage = (ev) => {
        clearInterval(timer);
        w.terminate();
        resolve({ findings: ev.data.findings, started: Atomics.load(head, 0) });
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        clearInterval(timer);
        w.terminate();
        const input = new Uint8Array(shared, 8, Atomics.load(head, 1)).slice();
        resolve({
          findings: [{ target: t.name, kind: "crash", error: String(ev.message), input }],
          started: Atomics.load(head, 0),
        });
      };
      w.postMessage({ target: t.name, iterations, seed: roundSeed, shared });
    });
    total += result.started;
    for (const f of result.findings) {
      found++;
      console.log(`${t.name}: ${f.kind} saved to ${await save(f)}\n  ${f.error.split("\n").slice(0, 3).join("\n  ")}`);
    }
    console.log(
      `${t.name}: round ${round}, ${result.started} inputs (seed ${roundSeed}), ${result.findings.length} findings`,
    );
  } while (performance.now() < deadline);
}
console.log(`${total} inputs, ${found} findings`);
Deno.exit(found > 0 ? 1 : 0);
