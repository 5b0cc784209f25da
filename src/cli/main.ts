/**
 * The `edgemoe` command line: `edgemoe SUBCOMMAND [ARGS...]`.
 * One file per subcommand in this folder.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { info } from "./info.ts";
import { convert } from "./convert.ts";
import { inspect } from "./inspect.ts";
import { profile } from "./profile.ts";
import { run } from "./run.ts";
import { chat } from "./chat.ts";
import { serve } from "./serve.ts";
import { perplexity } from "./perplexity.ts";
import { kld } from "./kld.ts";
import { plan } from "./plan.ts";
import { synth } from "./synth.ts";
import { bench } from "./bench.ts";

/** A subcommand: its one-line summary and its entry point. */
interface Command {
  summary: string;
  run(args: string[]): Promise<number> | number;
}

const COMMANDS: Record<string, Command> = {
  run: { summary: "generate text from a prompt", run },
  chat: { summary: "chat with a model through its chat template", run: chat },
  serve: { summary: "serve the OpenAI HTTP API and a chat page", run: serve },
  info: { summary: "show the native library, its CPU variant and features", run: info },
  inspect: { summary: "show a GGUF file's or pack's architecture, tensors and metadata", run: inspect },
  convert: { summary: "convert a GGUF model into an expert-major pack", run: convert },
  profile: { summary: "record a model's expert routing on a text (for --predictor table)", run: profile },
  perplexity: { summary: "perplexity and bits per byte of a model on a text", run: perplexity },
  kld: { summary: "KL divergence of a model from a base model on a text", run: kld },
  plan: { summary: "measure expert sensitivities and plan per-expert quantization types", run: plan },
  synth: { summary: "write a synthetic MoE GGUF with random weights (benchmarks)", run: synth },
  bench: { summary: "measure prompt and generation speed, llama-bench style, with MoE columns", run: bench },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `edgemoe ${VERSION}: run Mixture-of-Experts models larger than memory\n\nusage: edgemoe COMMAND [ARGS...]\n\ncommands:\n${
    lines.join("\n")
  }\n  help         show this text\n  version      print the version\n\nRun \`edgemoe COMMAND --help\` for a command's flags.`;
}

/** Runs the CLI with `args`; returns the exit code. Errors are printed, not thrown. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "version" || name === "--version") {
    console.log(VERSION);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`edgemoe: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof EdgeMoeError) {
      console.error(`edgemoe ${name}: error [${e.code}] ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
