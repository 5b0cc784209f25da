/**
 * `edgemoe serve -m MODEL`: the OpenAI-compatible server.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { startServer } from "../server/server.ts";
import { parseArgs } from "../std/cli.ts";
import { ENGINE_ALIASES, ENGINE_FLAGS, ENGINE_HELP, engineOptions, intFlag, stringFlag } from "./flags.ts";

const USAGE =
  `usage: edgemoe serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY | --api-key-file F] [--parallel N]

Serves POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health and a chat page at /.
  --host H                 address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)
  --port P                 port (default 8080)
  --api-key KEY            require "Authorization: Bearer KEY" on /v1/*
  --api-key-file F         read the key from F (first line)
  --parallel N             concurrent generations, one engine each (default 1); more requests queue
  --alias NAME             model name clients use (default: the file name)
  --max-body BYTES         largest request body (default 1048576)

${ENGINE_HELP}`;

/** Runs `edgemoe serve` until SIGINT or SIGTERM. */
export async function serve(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    string: [...ENGINE_FLAGS, "host", "port", "api-key", "api-key-file", "parallel", "alias", "max-body"],
    boolean: ["help"],
    alias: { ...ENGINE_ALIASES, h: "help" },
  });
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  let apiKey = a["api-key"] as string | undefined;
  if (typeof a["api-key-file"] === "string") {
    if (apiKey !== undefined) {
      throw new EdgeMoeError("invalid_argument", "serve", "give --api-key or --api-key-file, not both");
    }
    try {
      apiKey = Deno.readTextFileSync(a["api-key-file"]).split("\n")[0].trim();
    } catch (e) {
      throw new EdgeMoeError("io", "serve", `cannot read ${a["api-key-file"]}`, { cause: e });
    }
    if (!apiKey) throw new EdgeMoeError("invalid_argument", "serve", `${a["api-key-file"]} holds no key`);
  }
  const server = startServer({
    model: stringFlag(a, "model", USAGE),
    modelName: a.alias as string | undefined,
    host: (a.host as string | undefined) ?? "127.0.0.1",
    port: intFlag(a, "port", 8080, 0),
    apiKey,
    parallel: intFlag(a, "parallel", 1, 1),
    maxBodyBytes: intFlag(a, "max-body", 1 << 20, 1),
    engine: engineOptions(a),
    onListen: (addr) => console.error(`edgemoe: listening on http://${addr.hostname}:${addr.port}/`),
    onRequestDone: (r) =>
      console.error(
        `edgemoe: ${r.path} ${r.finishReason} ${r.promptTokens}+${r.completionTokens} tokens ${r.ms.toFixed(0)} ms`,
      ),
  });
  const stop = () => {
    console.error("edgemoe: shutting down");
    void server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}
