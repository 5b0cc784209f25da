import { formatSize, parseSize, planMemory } from "../src/store/budget.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assertEquals, assertThrows } from "../src/std/assert.ts";

Deno.test("parseSize: bytes and units", () => {
  assertEquals(parseSize("4096"), 4096);
  assertEquals(parseSize("4K"), 4096);
  assertEquals(parseSize("1.5GiB"), 1.5 * 1024 ** 3);
  assertEquals(parseSize("2 MB"), 2_000_000);
  assertEquals(parseSize("512mib"), 512 * 1024 ** 2);
  for (const bad of ["", "-1", "1.5.2G", "4X", "0", "GiB"]) assertThrows(() => parseSize(bad), EdgeMoeError);
});

Deno.test("planMemory: slots fill the budget, capped at one per expert part", () => {
  const needs = {
    residentBytes: 1000,
    kvBytes: 500,
    scratchBytes: 500,
    slotBytes: 100,
    partsPerExpert: 3,
    expertsPerToken: 2,
    totalExperts: 10,
  };
  assertEquals(planMemory(needs, 2000 + 600).slotCount, 6);
  assertEquals(planMemory(needs, 2000 + 750).slotCount, 6); // 7.5 slots → whole experts only
  assertEquals(planMemory(needs, 2000 + 900).slotCount, 9);
  assertEquals(planMemory(needs, 10 ** 9).slotCount, 30);
  const e = assertThrows(() => planMemory(needs, 2599), EdgeMoeError, "the smallest budget that works is 2600 bytes");
  assertEquals(e.code, "out_of_memory");
  assertEquals(formatSize(1536), "1.50 KiB");
});
