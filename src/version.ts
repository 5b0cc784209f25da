/**
 * The package version, read from deno.json so there is one source of truth.
 *
 * @module
 */
import meta from "../deno.json" with { type: "json" };

/** The edgemoe package version, e.g. `"0.1.0"`. */
export const VERSION: string = meta.version;
