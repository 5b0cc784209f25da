import { EdgeMoeError, errorFromStatus } from "../src/errors.ts";
import { assert, assertEquals, assertInstanceOf } from "../src/std/assert.ts";

Deno.test("errorFromStatus: 0 is success", () => {
  assertEquals(errorFromStatus(0, "op", ""), undefined);
});

Deno.test("errorFromStatus: known statuses map to their codes with the native text", () => {
  const cases: [number, string][] = [[-1, "invalid_argument"], [-2, "out_of_memory"], [-3, "io"], [-5, "corrupt_data"]];
  for (const [status, code] of cases) {
    const e = errorFromStatus(status, "matvec f32", "x has 3 elements, expected 4");
    assertInstanceOf(e, EdgeMoeError);
    assertEquals(e.code, code);
    assertEquals(e.op, "matvec f32");
    assertEquals(e.message, "matvec f32: x has 3 elements, expected 4");
  }
});

Deno.test("errorFromStatus: an unknown status is native_error naming the number", () => {
  const e = errorFromStatus(-99, "op", "");
  assertInstanceOf(e, EdgeMoeError);
  assertEquals(e.code, "native_error");
  assert(e.message.includes("-99"));
});

Deno.test("EdgeMoeError keeps its cause", () => {
  const cause = new Error("disk");
  const e = new EdgeMoeError("io", "read", "short read", { cause });
  assertEquals(e.cause, cause);
  assertEquals(e.name, "EdgeMoeError");
});
