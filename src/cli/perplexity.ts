/**
 * `edgemoe perplexity -m MODEL -f TEXT [-c CTX]`: perplexity and bits per
 * byte over non-overlapping windows, second half of each scored (as
 * llama.cpp's `llama-perplexity`).
 *
 * @module
 */
import { createEngine } from "../engine.ts";
import type { Tokenizer } from "../types.ts";
import { EdgeMoeError } from "../errors.ts";
import { modelLogits } from "../plan/measure.ts";
import { makeWindows, perplexity as measurePerplexity, type Windows } from "../quality/quality.ts";
import { parseArgs } from "../std/cli.ts";
import { intFlag, stringFlag } from "./flags.ts";

const USAGE = `usage: edgemoe perplexity -m MODEL -f TEXT [-c CTX] [--chunks N]

Cuts TEXT's tokens into non-overlapping windows of CTX tokens (default 512; at most N windows),
evaluates each from a fresh context (first token BOS when the model adds one) and scores the
second half of each window, as llama.cpp's llama-perplexity. Prints perplexity ± its standard
error and bits per UTF-8 byte; progress goes to stderr.`;

/** Reads `path` and cuts it into windows with `t` (shared by perplexity, kld and plan). */
export function textWindows(t: Tokenizer, path: string, ctx: number, maxWindows = Infinity, first?: number): Windows {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new EdgeMoeError("io", "read text", `cannot read ${path}`, { cause: e });
  }
  const addsBos = t.bosId !== undefined && t.encode("", { addSpecial: true })[0] === t.bosId;
  const ids = t.encode(text, { addSpecial: false });
  return makeWindows(ids, ctx, addsBos ? t.bosId : undefined, maxWindows, first);
}

/** Writes a progress line to stderr (overwritten in place on a terminal). */
export function progress(label: string, done: number, total: number, extra = ""): void {
  const line = `${label}: ${done}/${total}${extra}`;
  const enc = new TextEncoder();
  if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(enc.encode(`\r${line}${done === total ? "\n" : ""}`));
  else if (done === total || Math.floor((done * 10) / total) > Math.floor(((done - 1) * 10) / total)) {
    Deno.stderr.writeSync(enc.encode(`${line}\n`));
  }
}

/** Runs `edgemoe perplexity`. */
export function perplexity(argv: string[]): number {
  const a = parseArgs(argv, {
    string: ["model", "file", "ctx-size", "chunks"],
    boolean: ["help"],
    alias: { m: "model", f: "file", c: "ctx-size", h: "help" },
  });
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  const model = stringFlag(a, "model", USAGE), file = stringFlag(a, "file", USAGE);
  const ctx = intFlag(a, "ctx-size", 512, 4);
  const chunks = intFlag(a, "chunks", Infinity, 1);
  using engine = createEngine(model, { nCtx: ctx, predictor: "none" });
  const w = textWindows(engine.tokenizer, file, ctx, chunks);
  const r = measurePerplexity(
    modelLogits(engine.model),
    w,
    (ids) => new TextEncoder().encode(engine.tokenizer.decode(ids)).length,
    (done, total, running) => progress("perplexity", done, total, ` windows, [${done}]${running.toFixed(4)}`),
  );
  console.log(
    `perplexity: ${r.perplexity.toFixed(4)} ± ${r.perplexityError.toFixed(4)}, bits per byte: ${
      r.bitsPerByte.toFixed(4)
    } (${r.windows} windows of ${ctx}, ${r.tokens} tokens scored)`,
  );
  return 0;
}
