/**
 * The symbol table (ffi/symbols.ts) and the export block (zig/src/root.zig)
 * must agree on every function name and every parameter and result type.
 */
import { symbols } from "../ffi/symbols.ts";
import { assertEquals } from "../src/std/assert.ts";

/** The Deno FFI type each Zig parameter type is passed as. */
function ffiType(zig: string): string {
  const t = zig.replace(/\s+/g, "");
  if (t === "?*anyopaque") return "pointer"; // an opaque handle
  if (t.startsWith("?[*]") || t.startsWith("?*") || t.startsWith("[*]") || t.startsWith("*")) return "buffer";
  const scalars: Record<string, string> = {
    usize: "usize",
    isize: "isize",
    u32: "u32",
    i32: "i32",
    u64: "u64",
    i64: "i64",
    u8: "u8",
    f32: "f32",
    f64: "f64",
    void: "void",
  };
  if (!(t in scalars)) throw new Error(`no FFI mapping for Zig type ${zig}`);
  return scalars[t];
}

Deno.test("ffi/symbols.ts matches every export of zig/src/root.zig", () => {
  const src = Deno.readTextFileSync(new URL("../zig/src/root.zig", import.meta.url));
  const exports: Record<string, { parameters: string[]; result: string }> = {};
  for (const m of src.matchAll(/^export fn (\w+)\(([^)]*)\)\s*([\w?*\[\]]+)\s*\{/gm)) {
    const params = m[2].trim() === ""
      ? []
      : m[2].split(",").map((p) => p.trim()).filter(Boolean).map((p) => ffiType(p.split(":")[1]));
    exports[m[1]] = { parameters: params, result: ffiType(m[3]) };
  }
  const declared = Object.fromEntries(
    Object.entries(symbols).map((
      [name, s],
    ) => [name, { parameters: [...s.parameters] as string[], result: s.result as string }]),
  );
  assertEquals(declared, exports);
});
