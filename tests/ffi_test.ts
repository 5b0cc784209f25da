import { findZig } from "../ffi/build.ts";
import { openNativeLibrary } from "../ffi/load.ts";
import { NativeLibrary } from "../mod.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";

const FIXTURE = new URL("./fixtures/abi_999.zig", import.meta.url).pathname;

/** Builds the abi_999 fixture for `target` into a temp dir; returns the .so path. */
function buildFixture(target: string): string {
  const dir = Deno.makeTempDirSync({ prefix: "edgemoe-ffi-" });
  const out = `${dir}/libabi999.so`;
  const r = new Deno.Command(findZig(), {
    args: ["build-lib", "-dynamic", "-OReleaseSmall", "-target", target, FIXTURE, `-femit-bin=${out}`],
    cwd: dir,
    stderr: "piped",
  }).outputSync();
  assert(r.success, new TextDecoder().decode(r.stderr));
  return out;
}

Deno.test("a missing library is library_not_found naming the path and the fix", () => {
  const e = assertThrows(() => NativeLibrary.open({ path: "/nonexistent/libedgemoe.so" }), EdgeMoeError);
  assertEquals(e.code, "library_not_found");
  assert(e.message.includes("/nonexistent/libedgemoe.so"), e.message);
  assert(e.message.includes("the path given"), e.message);
});

Deno.test("a file that is not a shared library is refused before dlopen", () => {
  const f = Deno.makeTempFileSync({ suffix: ".so" });
  Deno.writeTextFileSync(f, "not a library at all, just text");
  const e = assertThrows(() => NativeLibrary.open({ path: f }), EdgeMoeError, "not an ELF shared library");
  assertEquals(e.code, "library_not_found");
});

Deno.test("a library for another architecture is library_arch_mismatch", () => {
  const other = Deno.build.arch === "x86_64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  const path = buildFixture(other);
  const e = assertThrows(() => NativeLibrary.open({ path }), EdgeMoeError);
  assertEquals(e.code, "library_arch_mismatch");
  assert(e.message.includes(`this process runs on ${Deno.build.arch}`), e.message);
  assert(e.message.includes("deno task build"), e.message);
});

Deno.test("a library with another ABI version is abi_mismatch", () => {
  const path = buildFixture(`${Deno.build.arch}-linux-gnu`);
  const e = assertThrows(() => NativeLibrary.open({ path }), EdgeMoeError);
  assertEquals(e.code, "abi_mismatch");
  assert(e.message.includes("ABI version 999"), e.message);
});

Deno.test("EDGEMOE_LIB overrides the search and is named in the error", async () => {
  const script = `import { NativeLibrary } from "${new URL("../mod.ts", import.meta.url).href}";
try { NativeLibrary.open(); } catch (e) { console.log(e.code + "|" + e.message); }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    env: { EDGEMOE_LIB: "/nowhere/lib.so" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(text.startsWith("library_not_found|"), text);
  assert(text.includes("/nowhere/lib.so") && text.includes("EDGEMOE_LIB"), text);
});

Deno.test("without --allow-ffi the error is permission_denied and names the flag", async () => {
  const script = `import { NativeLibrary } from "${new URL("../mod.ts", import.meta.url).href}";
try { NativeLibrary.open(); } catch (e) { console.log(e.code + "|" + e.message); }`;
  const dir = Deno.makeTempDirSync();
  const file = `${dir}/noffi.ts`;
  Deno.writeTextFileSync(file, script);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-read", "--allow-env", file],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(text.startsWith("permission_denied|"), text + new TextDecoder().decode(out.stderr));
  assert(text.includes("--allow-ffi"), text);
});

Deno.test("native side: a bad call returns a status and last_error explains it", () => {
  const { dl } = openNativeLibrary();
  try {
    const w = new Float32Array(4), x = new Float32Array(2), y = new Float32Array(3);
    const status = dl.symbols.emoe_matvec_f32(w, 4n, x, 2n, y, 3n, 3n, 2n);
    assertEquals(status, -1);
    const buf = new Uint8Array(256), len = new BigUint64Array(1);
    assertEquals(dl.symbols.emoe_last_error(buf, 256n, len), 0);
    const text = new TextDecoder().decode(buf.subarray(0, Number(len[0])));
    assertEquals(text, "w has 4 elements, expected rows*cols = 6");
    // A null pointer with a non-zero length is refused, not dereferenced.
    assertEquals(dl.symbols.emoe_matvec_f32(null, 6n, x, 2n, y, 3n, 3n, 2n), -1);
  } finally {
    dl.close();
  }
});

Deno.test("a script that never closes its engine (pool and store threads running) exits cleanly", async () => {
  // Deno unloads the library at exit while the pool's threads may still be polling in its code;
  // the library pins itself (RTLD_NODELETE) before starting threads, so this exits 0, not SIGSEGV.
  const model = new URL("../models/demo/edgemoe-demo-q8_0.gguf", import.meta.url).pathname;
  const engine = new URL("../src/engine.ts", import.meta.url).href;
  const script = `import { createEngine } from ${JSON.stringify(engine)};
const e = createEngine(${JSON.stringify(model)}, { threads: 2, store: "pread", memBudget: 110 * 2 ** 20 });
let n = 0;
for (const t of e.generateSync("Once upon", { maxTokens: 6 })) n += t.text.length;
console.log(n > 0 ? "generated" : "nothing");`;
  for (let i = 0; i < 3; i++) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--unstable-no-legacy-abort", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assertEquals([out.code, out.signal], [0, null], err);
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "generated");
  }
});

Deno.test("allocateWeights: zeroed buffers of the asked size, small or huge-page backed, fully writable", () => {
  using lib = NativeLibrary.open();
  for (const n of [0, 100, 4 << 20, (9 << 20) + 123]) {
    const b = lib.allocateWeights(n);
    assertEquals(b.length, n);
    assert(b.every((v) => v === 0), `${n} bytes: not all zero`);
    b.fill(0xa5);
    assert(b.every((v) => v === 0xa5), `${n} bytes: writes did not stick`);
  }
});
