/**
 * `edgemoe bench -m MODEL [-p 512] [-n 128] [-r 5] [--threads T] [--output md|json|jsonl|csv]`:
 * llama-bench's tests and output formats, plus the MoE columns.
 *
 * @module
 */
import { runBench } from "../bench/bench.ts";
import { type BenchOutput, formatBench } from "../bench/format.ts";
import { EdgeMoeError } from "../errors.ts";
import type { EngineOptions } from "../engine.ts";
import { parseArgs } from "../std/cli.ts";
import { choiceFlag, ENGINE_ALIASES, ENGINE_FLAGS, ENGINE_HELP, engineOptions, intFlag, stringFlag } from "./flags.ts";

const USAGE = `usage: edgemoe bench -m MODEL [-p 512] [-n 128] [-r 5] [--threads T] [--output md|json|jsonl|csv] [flags]

Measures prompt processing (ppN: N tokens in one evaluate) and generation (tgN: N single-token
evaluates) on random token ids, so tokenization and sampling are not timed; each test repeated
-r times from an empty context, reported as mean ± sd tokens/s with the expert cache hit rate,
bytes read and I/O wait per token, prefetch precision/recall and the peak RSS of each test.
  -p, --n-prompt N[,N...]  prompt lengths (default 512; 0 skips)
  -n, --n-gen N[,N...]     generation lengths (default 128; 0 skips)
  -r, --repetitions R      repetitions of each test (default 5)
  -t, --threads T          compute threads (default 1)
  -o, --output F           md (default) | csv | json | jsonl

${ENGINE_HELP}`;

function listFlag(v: unknown, name: string, fallback: number[]): number[] {
  if (v === undefined) return fallback;
  const parts = String(v).split(",");
  return parts.map((p) => {
    const n = Number(p);
    if (p.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
      throw new EdgeMoeError("invalid_argument", "parse arguments", `--${name} must be integers ≥ 0, got "${v}"`);
    }
    return n;
  });
}

/** Parsed `edgemoe bench` flags. */
export interface BenchArgs {
  model: string;
  nPrompt: number[];
  nGen: number[];
  repetitions: number;
  threads: number;
  output: BenchOutput;
  engine: EngineOptions;
}

/** Parsed `edgemoe bench` flags (exported for tests); undefined for --help. */
export function benchArgs(argv: string[]): BenchArgs | undefined {
  const a = parseArgs(argv, {
    string: [...ENGINE_FLAGS, "n-prompt", "n-gen", "repetitions", "threads", "output"],
    boolean: ["help"],
    alias: { ...ENGINE_ALIASES, p: "n-prompt", n: "n-gen", r: "repetitions", t: "threads", o: "output", h: "help" },
  });
  if (a.help) return undefined;
  if (a._.length > 0) {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `unexpected argument "${a._[0]}"\n\n${USAGE}`);
  }
  return {
    model: stringFlag(a, "model", USAGE),
    nPrompt: listFlag(a["n-prompt"], "n-prompt", [512]),
    nGen: listFlag(a["n-gen"], "n-gen", [128]),
    repetitions: intFlag(a, "repetitions", 5, 1),
    threads: intFlag(a, "threads", 1, 1),
    output: choiceFlag(a, "output", ["md", "csv", "json", "jsonl"] as const) ?? ("md" as BenchOutput),
    engine: engineOptions(a),
  };
}

/** Runs `edgemoe bench`. */
export function bench(argv: string[]): number {
  const a = benchArgs(argv);
  if (!a) {
    console.log(USAGE);
    return 0;
  }
  const records = runBench(a.model, {
    nPrompt: a.nPrompt,
    nGen: a.nGen,
    repetitions: a.repetitions,
    threads: a.threads,
    engine: a.engine,
    onRep: (test, rep) => console.error(`bench: ${test} repetition ${rep + 1}/${a.repetitions}`),
  });
  console.log(formatBench(records, a.output));
  return 0;
}
