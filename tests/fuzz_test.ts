/**
 * A short, bounded, seeded fuzz run of every reader of untrusted input, and
 * the replay of every input a longer run ever saved (tests/fixtures/fuzz/).
 * Longer runs: `deno task fuzz --seconds 600`.
 */
import { fuzzLoop, replay } from "../tools/fuzz/loop.ts";
import { cleanupTargets, TARGETS } from "../tools/fuzz/targets.ts";
import { assertEquals } from "../src/std/assert.ts";

Deno.test("fuzz: every target accepts its first seed (so mutations reach past the first check)", () => {
  const refused: string[] = [];
  for (const t of TARGETS) {
    try {
      t.run(t.seeds()[0]);
    } catch (e) {
      refused.push(`${t.name}: ${(e as Error).message}`);
    }
  }
  cleanupTargets();
  assertEquals(refused, []);
});

for (const t of TARGETS) {
  const iterations = t.quickIterations ?? 300;
  Deno.test(`fuzz ${t.name}: ${iterations} mutated inputs are accepted or refused with EdgeMoeError`, () => {
    const findings = fuzzLoop(t, { iterations, seed: 20261125 });
    assertEquals(findings.map((f) => `${f.kind}: ${f.error.split("\n")[0]}`), []);
  });
}

Deno.test("fuzz regressions: every saved input is handled", () => {
  const dir = new URL("./fixtures/fuzz/", import.meta.url);
  const failures: string[] = [];
  for (const t of TARGETS) {
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(new URL(`${t.name}/`, dir))];
    } catch {
      continue;
    }
    for (const e of entries) {
      const f = replay(t, Deno.readFileSync(new URL(`${t.name}/${e.name}`, dir)));
      if (f) failures.push(`${t.name}/${e.name}: ${f.error.split("\n")[0]}`);
    }
  }
  assertEquals(failures, []);
});
