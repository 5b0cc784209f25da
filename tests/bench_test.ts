/**
 * `edgemoe bench`: records of the expected tests and fields, every output
 * format parses back to the same values, flags are validated. No timing is
 * asserted (only that times are positive and consistent).
 */
import { NativeLibrary } from "../mod.ts";
import { runBench } from "../src/bench/bench.ts";
import { BENCH_FIELDS, type BenchRecord, formatBench, meanSd, testName } from "../src/bench/format.ts";
import { benchArgs } from "../src/cli/bench.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../src/std/assert.ts";
import { FIXTURE_DIR } from "./oracle/reference.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;

/** RFC 4180 CSV (quoted cells with doubled quotes), written here independently of the formatter. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [[]];
  let cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"', i++);
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") (rows.at(-1)!.push(cell), cell = "");
    else if (c === "\n") (rows.at(-1)!.push(cell), cell = "", rows.push([]));
    else cell += c;
  }
  rows.at(-1)!.push(cell);
  return rows;
}

function records(): BenchRecord[] {
  using lib = NativeLibrary.open();
  return runBench(MODEL, {
    nPrompt: [4, 0],
    nGen: [3],
    repetitions: 2,
    threads: 1,
    engine: { lib, store: "pread", memBudget: "256MiB", predictor: "lookahead" },
  });
}

Deno.test("bench: one record per test with the MoE columns filled in", () => {
  const rs = records();
  assertEquals(rs.map(testName), ["pp4", "tg3"]);
  for (const r of rs) {
    assertEquals(Object.keys(r).sort(), [...BENCH_FIELDS].sort());
    assert(r.avg_ns > 0 && r.avg_ts > 0, "positive times");
    // tokens/s and ns are two views of the same repetitions.
    assertAlmostEquals(r.avg_ts, ((r.n_prompt + r.n_gen) * 1e9) / r.avg_ns, r.avg_ts * 0.5 + r.stddev_ts);
    assert(r.expert_hit_rate >= 0 && r.expert_hit_rate <= 1, `hit rate ${r.expert_hit_rate}`);
    // Prompt chunks fetch each routed expert once and do not predict: no precision/recall (-1) for pp rows.
    const lo = r.n_prompt > 0 ? -1 : 0;
    assert(r.prefetch_precision >= lo && r.prefetch_precision <= 1, `precision ${r.prefetch_precision}`);
    assert(r.prefetch_recall >= lo && r.prefetch_recall <= 1, `recall ${r.prefetch_recall}`);
    if (r.n_gen > 0) assert(r.prefetch_precision >= 0, "generation predicts");
    assert(r.peak_rss_bytes > 1 << 20, `peak RSS ${r.peak_rss_bytes}`);
    assertEquals(r.store, "pread");
    assertEquals(r.predictor, "lookahead");
    assertEquals(r.mem_budget, 256 * 1024 ** 2);
    assertEquals(r.repetitions, 2);
    assertEquals(r.model_size, Deno.statSync(MODEL).size);
    assert(/^[0-9a-f]{12}(-dirty)?$|^unknown$/.test(r.build_commit), r.build_commit);
    assert(r.kernel_variant.length > 0);
  }
  // The first test starts with a cold expert cache: it reads experts; 2 experts × 2 layers fit in a few KiB each.
  assert(rs[0].bytes_read_per_token > 0, "pp read experts");
});

Deno.test("bench: CSV, JSON and JSONL hold llama-bench's single field list and parse back to the records", () => {
  const rs = records();
  rs[0].model_filename = 'a "quoted", name';
  const csv = parseCsv(formatBench(rs, "csv"));
  assertEquals(csv[0], [...BENCH_FIELDS]);
  assertEquals(csv.length, rs.length + 1);
  rs.forEach((r, i) => assertEquals(csv[i + 1], BENCH_FIELDS.map((f) => String(r[f]))));
  assertEquals(
    JSON.parse(formatBench(rs, "json")),
    rs.map((r) => Object.fromEntries(BENCH_FIELDS.map((f) => [f, r[f]]))),
  );
  const lines = formatBench(rs, "jsonl").split("\n");
  assertEquals(lines.length, rs.length);
  lines.forEach((l, i) => {
    const o = JSON.parse(l);
    assertEquals(Object.keys(o), [...BENCH_FIELDS]);
    assertEquals(o.avg_ts, rs[i].avg_ts);
  });
  const md = formatBench(rs, "md").split("\n");
  assert(md[0].startsWith("build: "), md[0]);
  assert(md[0].includes(rs[0].kernel_variant));
  const table = md.filter((l) => l.startsWith("|"));
  assertEquals(table.length, 2 + rs.length);
  assert(table[2].includes("pp4") && table[3].includes("tg3"));
});

Deno.test("bench: mean and sample standard deviation", () => {
  assertEquals(meanSd([2, 4, 4, 4, 5, 5, 7, 9]).mean, 5);
  assertAlmostEquals(meanSd([2, 4, 4, 4, 5, 5, 7, 9]).sd, Math.sqrt(32 / 7), 1e-12);
  assertEquals(meanSd([3]).sd, 0);
});

Deno.test("bench: flags are validated", () => {
  const a = benchArgs(["-m", "x.gguf", "-p", "512,0", "-n", "128", "-r", "3", "-t", "2", "-o", "jsonl"])!;
  assertEquals([a.nPrompt, a.nGen, a.repetitions, a.threads, a.output], [[512, 0], [128], 3, 2, "jsonl"]);
  assertEquals(benchArgs(["-m", "x"])!.nPrompt, [512]);
  for (
    const bad of [
      ["-p", "5x"],
      ["-n", "-1"],
      ["-r", "0"],
      ["--threads", "0"],
      ["-o", "xml"],
      ["--store", "floppy"],
      ["extra"],
    ]
  ) {
    assertThrows(() => benchArgs(["-m", "x.gguf", ...bad]), EdgeMoeError);
  }
  assertThrows(() => benchArgs(["-p", "1"]), EdgeMoeError, "--model");
  assertThrows(
    () => runBench(MODEL, { nPrompt: [0], nGen: [0], repetitions: 1, threads: 1, engine: {} }),
    EdgeMoeError,
    "no test",
  );
});
