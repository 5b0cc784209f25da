import { NativeLibrary } from "../mod.ts";
import type { StoreBackend } from "../ffi/slot_reader.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";

function makeFile(bytes: number): { path: string; content: Uint8Array } {
  const content = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) content[i] = (i * 131 + 17) & 0xff;
  // Inside the repo's tree, not /tmp: /tmp may be tmpfs, where O_DIRECT is refused.
  const dir = Deno.makeTempDirSync({ dir: new URL("../zig/", import.meta.url).pathname, prefix: ".test-store-" });
  const path = `${dir}/model.bin`;
  Deno.writeFileSync(path, content);
  return { path, content };
}

const backends: StoreBackend[] = ["pread", "uring", "mmap"];

Deno.test("checksum64 is XXH64 (published test vectors)", () => {
  using lib = NativeLibrary.open();
  assertEquals(lib.checksum64(new Uint8Array(0)), 0xef46db3751d8e999n);
  assertEquals(lib.checksum64(new TextEncoder().encode("abc")), 0x44bc2cf5ad770999n);
});

for (const backend of backends) {
  Deno.test(`slot reader (${backend}): exact bytes for aligned and unaligned ranges, checksums verified`, () => {
    using lib = NativeLibrary.open();
    const { path, content } = makeFile(64 * 1024 + 123);
    try {
      using r = lib.openSlotReader(path, { backend, slotCount: 4, slotBytes: 16384, queueDepth: 4, threads: 2 });
      const ranges = [[0, 4096], [100, 9000], [8192, 4096], [content.length - 500, 500]];
      ranges.forEach(([off, len], slot) => r.submit(slot, off, len, lib.checksum64(content.subarray(off, off + len))));
      ranges.forEach(([off, len], slot) => assertEquals(r.wait(slot), content.subarray(off, off + len)));
      r.submit(0, 10, 20, 0x1234n);
      const e = assertThrows(() => r.wait(0), EdgeMoeError, "checksum mismatch in bytes 10..30");
      assertEquals(e.code, "corrupt_data");
      const s = r.stats();
      assertEquals(s.checksumFailuresTotal, 1);
      assert(s.readsTotal >= 5);
      // This machine's filesystem takes O_DIRECT; the default "try" must have used it.
      assertEquals(s.direct, backend === "mmap" ? 0 : 1);
      if (backend !== "mmap") assertThrows(() => r.submit(1, 0, 20000), EdgeMoeError, "does not fit");
      assertThrows(() => r.submit(1, content.length - 1, 2), EdgeMoeError, "past the end of the file");
      assertThrows(() => r.submit(9, 0, 1), EdgeMoeError, "slot 9 is outside 0..3");
      r.close();
      assertEquals(assertThrows(() => r.wait(0), EdgeMoeError).code, "closed");
    } finally {
      Deno.removeSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    }
  });
}

Deno.test("slot reader: a file truncated under a pending read is an io error, never zeros", () => {
  using lib = NativeLibrary.open();
  for (const backend of ["pread", "uring"] as const) {
    const { path } = makeFile(32 * 1024);
    try {
      using r = lib.openSlotReader(path, { backend, slotCount: 1, slotBytes: 32768, direct: "off" });
      Deno.truncateSync(path, 1000);
      r.submit(0, 4096, 8192);
      const e = assertThrows(() => r.wait(0), EdgeMoeError, "short read");
      assertEquals(e.code, "io");
    } finally {
      Deno.removeSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    }
  }
});

Deno.test("slot reader: bad options and missing files are clear errors", () => {
  using lib = NativeLibrary.open();
  assertEquals(
    assertThrows(
      () => lib.openSlotReader("/nonexistent/model.gguf", { slotCount: 1, slotBytes: 4096 }),
      EdgeMoeError,
      "does not exist",
    )
      .code,
    "io",
  );
  assertThrows(
    () => lib.openSlotReader("/dev/null", { slotCount: 0, slotBytes: 4096 }),
    EdgeMoeError,
    "slotCount must be",
  );
  assertThrows(
    () => lib.openSlotReader("/dev/null", { slotCount: 1, slotBytes: 4096, backend: "nvme" as StoreBackend }),
    EdgeMoeError,
    "backend must be one of",
  );
});

Deno.test("slot reader: an injected EIO is an io error for that read only; injected short reads still give exact bytes", () => {
  using lib = NativeLibrary.open();
  for (const backend of ["pread", "uring"] as const) {
    const { path, content } = makeFile(40 * 1024);
    try {
      {
        using r = lib.openSlotReader(path, {
          backend,
          slotCount: 2,
          slotBytes: 16384,
          fault: { mode: "eio", after: 2 },
        });
        r.submit(0, 0, 4096);
        r.submit(1, 5000, 3000);
        assertEquals(r.wait(0), content.subarray(0, 4096));
        const e = assertThrows(() => r.wait(1), EdgeMoeError, "read error at 5000..8000");
        assertEquals(e.code, "io");
        r.submit(1, 5000, 3000);
        assertEquals(r.wait(1), content.subarray(5000, 8000));
      }
      using s = lib.openSlotReader(path, {
        backend,
        slotCount: 1,
        slotBytes: 16384,
        fault: { mode: "short", after: 0 },
      });
      s.submit(0, 123, 9000, lib.checksum64(content.subarray(123, 9123)));
      assertEquals(s.wait(0), content.subarray(123, 9123));
      assert(s.stats().shortReadsTotal >= 1);
    } finally {
      Deno.removeSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    }
  }
});
