/**
 * `edgemoe convert` under faults: killed (SIGKILL) at many points of a run,
 * and its input truncated while it is read. The output name never holds a
 * partial file, the input is never modified, and a re-run succeeds.
 */
import { EdgeMoeError } from "../src/errors.ts";
import { convertHfToGguf } from "../src/hf/mod.ts";
import { nativeLibrary } from "../ffi/native.ts";
import { convertGgufToPack, PackFile } from "../src/pack/mod.ts";
import { assert, assertEquals, assertRejects } from "../src/std/assert.ts";
import { FIXTURE_DIR } from "./oracle/reference.ts";
import { edgemoeCommand } from "./cli_helpers.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;
const HF = new URL("./fixtures/hf/qwen2moe", import.meta.url).pathname;

async function sha256(path: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", Deno.readFileSync(path)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of every file under `dir`, by relative path. */
async function treeHash(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of Deno.readDirSync(dir)) if (e.isFile) out[e.name] = await sha256(`${dir}/${e.name}`);
  return out;
}

/** `edgemoe convert` as `deno task edgemoe` runs it. */
function spawnConvert(input: string, output: string): Deno.ChildProcess {
  return edgemoeCommand(["convert", "-m", input, "-o", output], { stdout: "null" }).spawn();
}

/**
 * Runs a conversion; with `killAfterMs`, kills it with SIGKILL that long
 * after its first progress line (the conversion has started). Returns
 * whether the kill hit a running process and the time from the first
 * progress line to the exit.
 */
async function run(input: string, output: string, killAfterMs?: number): Promise<{ killed: boolean; spanMs: number }> {
  const child = spawnConvert(input, output);
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  const t0 = performance.now();
  let killed = false;
  if (killAfterMs !== undefined) {
    await new Promise((r) => setTimeout(r, killAfterMs));
    try {
      child.kill("SIGKILL");
      killed = true;
    } catch {
      // already exited
    }
  }
  for (let r = await reader.read(); !r.done; r = await reader.read()) buf += r.value;
  const status = await child.status;
  if (killAfterMs === undefined) assertEquals(status.code, 0, buf);
  return { killed: killed && status.signal === "SIGKILL", spanMs: performance.now() - t0 };
}

/** After a kill: nothing at the output name, or the complete pack (killed after the rename, while verifying). */
async function assertNoPartialOutput(output: string, complete: string, where: string): Promise<void> {
  let exists = true;
  try {
    Deno.statSync(output);
  } catch {
    exists = false;
  }
  if (exists) {
    assertEquals(await sha256(output), complete, `${where}: ${output} holds a partial file after a kill`);
    Deno.removeSync(output);
  }
}

/** Runs a conversion to completion and verifies every checksum; returns the output's hash and timing. */
async function fullRun(input: string, output: string): Promise<{ hash: string; spanMs: number }> {
  const { spanMs } = await run(input, output);
  using pack = PackFile.open(output);
  const lib = nativeLibrary();
  for (const b of pack.blobs()) pack.readExpert(b.layer, b.expert, (x) => lib.checksum64(x));
  return { hash: await sha256(output), spanMs };
}

async function killCampaign(input: string, isDir: boolean, label: string): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "edgemoe-kill-" });
  try {
    const before = isDir ? JSON.stringify(await treeHash(input)) : await sha256(input);
    const output = `${dir}/out.pack.gguf`;
    const { hash: complete, spanMs } = await fullRun(input, output);
    Deno.removeSync(output);
    // Kill points spread over the conversion (from its first progress line to its exit), with seeded jitter.
    // Run times vary with the machine's load: a kill that comes after the exit halves the later delays, so
    // ten kills land in a running conversion however fast the runs get (at most 30 attempts).
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let hits = 0, scale = 0.8;
    for (let i = 0; hits < 10 && i < 30; i++) {
      const delay = Math.floor(((hits + rand()) / 10) * scale * spanMs);
      if ((await run(input, output, delay)).killed) {
        hits++;
        await assertNoPartialOutput(output, complete, `${label} kill ${i} (${delay} ms into the conversion)`);
      } else {
        Deno.removeSync(output); // finished before the kill: a complete pack, removed for the next round
        scale /= 2;
      }
      const after = isDir ? JSON.stringify(await treeHash(input)) : await sha256(input);
      assertEquals(after, before, `${label}: the input changed`);
    }
    assertEquals(hits, 10, `${label}: only ${hits} kills in 30 attempts hit a running conversion`);
    // A re-run succeeds over whatever the kills left (stale .partial files are replaced), and leaves only the pack.
    assertEquals((await fullRun(input, output)).hash, complete);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["out.pack.gguf"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("convert faults: a GGUF conversion killed at 10 points never leaves a partial output; input untouched; re-run succeeds", async () => {
  await killCampaign(MODEL, false, "gguf");
});

Deno.test("convert faults: a Hugging Face conversion killed at 10 points never leaves a partial output; input untouched; re-run succeeds", async () => {
  await killCampaign(HF, true, "hf");
});

Deno.test("convert faults: the input truncated while converting is an EdgeMoeError and no output", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "edgemoe-trunc-" });
  try {
    const input = `${dir}/in.gguf`;
    Deno.copyFileSync(MODEL, input);
    const output = `${dir}/out.pack.gguf`;
    const lib = nativeLibrary();
    const e = await assertRejects(
      () =>
        convertGgufToPack(input, output, {
          checksum: (b) => lib.checksum64(b),
          onExpert: (done) => {
            if (done === 2) Deno.truncateSync(input, Math.floor(Deno.statSync(input).size * 0.7));
          },
        }),
      EdgeMoeError,
    );
    assert(["io", "corrupt_data"].includes(e.code), `${e.code}: ${e.message}`);
    assertEquals([...Deno.readDirSync(dir)].map((x) => x.name), ["in.gguf"]);

    // A Hugging Face shard truncated while its tensors are read.
    const hf = `${dir}/hf`;
    Deno.mkdirSync(hf);
    for (const f of Deno.readDirSync(HF)) Deno.copyFileSync(`${HF}/${f.name}`, `${hf}/${f.name}`);
    const shard = `${hf}/model.safetensors`;
    const e2 = await assertRejects(
      () =>
        convertHfToGguf(hf, `${dir}/out.gguf`, {
          onTensor: (i) => {
            if (i === 3) Deno.truncateSync(shard, Math.floor(Deno.statSync(shard).size * 0.5));
          },
        }),
      EdgeMoeError,
    );
    assert(["io", "corrupt_data"].includes(e2.code), `${e2.code}: ${e2.message}`);
    assertEquals([...Deno.readDirSync(dir)].map((x) => x.name).sort(), ["hf", "in.gguf"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
