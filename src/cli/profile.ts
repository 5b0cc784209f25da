/**
 * `edgemoe profile -m MODEL -f TEXT -o profile.json`: runs text through the
 * model and records its routing (per-layer expert frequencies and
 * layer-to-layer transitions), for the table predictor and bitwidth planning.
 *
 * @module
 */
import { createEngine } from "../engine.ts";
import { EdgeMoeError } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { ProfileBuilder, profileToJson } from "../predictor/predictor.ts";
import { parseArgs } from "../std/cli.ts";
import { choiceFlag, intFlag, stringFlag } from "./flags.ts";

const USAGE = `usage: edgemoe profile -m MODEL -f TEXT -o OUT.json [-c CTX] [--mem-budget SIZE] [--store S]

Runs TEXT through MODEL in windows of CTX tokens (default 512) and writes the routing profile:
per-layer expert frequencies and layer-to-layer co-activation counts (versioned JSON).`;

/** Runs `edgemoe profile`. */
export function profile(argv: string[]): number {
  const a = parseArgs(argv, {
    string: ["model", "file", "output", "ctx-size", "mem-budget", "store"],
    boolean: ["help"],
    alias: { m: "model", f: "file", o: "output", c: "ctx-size", h: "help" },
  });
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  const model = stringFlag(a, "model", USAGE),
    file = stringFlag(a, "file", USAGE),
    out = stringFlag(a, "output", USAGE);
  const ctx = intFlag(a, "ctx-size", 512, 2);
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new EdgeMoeError("io", "profile", `cannot read ${file}`, { cause: e });
  }
  // The builder needs the model's shape, known once the engine is open.
  const sink: { builder?: ProfileBuilder } = {};
  using engine = createEngine(model, {
    nCtx: ctx,
    memBudget: a["mem-budget"] as string | undefined,
    store: choiceFlag(a, "store", ["ram", "uring", "pread", "mmap"] as const),
    predictor: "none",
    onRoute: (l, ids) => sink.builder!.record(l, ids),
  });
  const builder = sink.builder = new ProfileBuilder(engine.model.hp.nLayer, engine.model.hp.nExpert);
  const ids = engine.tokenizer.encode(text, { addSpecial: false });
  for (let start = 0; start < ids.length; start += ctx) {
    engine.reset();
    engine.evaluate(ids.subarray(start, start + ctx));
    Deno.stderr.writeSync(
      new TextEncoder().encode(`\rprofile: ${Math.min(start + ctx, ids.length)}/${ids.length} tokens`),
    );
  }
  Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  writeFileAtomic(out, profileToJson(builder.profile()));
  console.log(
    `wrote ${out}: ${builder.profile().tokens} tokens, ${engine.model.hp.nLayer} layers × ${engine.model.hp.nExpert} experts`,
  );
  return 0;
}
