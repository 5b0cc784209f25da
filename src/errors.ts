/**
 * The one error type of edgemoe, and the one helper that turns a native status
 * code into it.
 *
 * @module
 */

/** Why an operation failed. Stable strings: match on `code`, not on the message. */
export type EdgeMoeErrorCode =
  /** A value passed in is out of range, of the wrong shape or inconsistent. */
  | "invalid_argument"
  /** An allocation failed, or a memory budget cannot hold what is needed. */
  | "out_of_memory"
  /** Reading or writing a file failed, or it was shorter than it said. */
  | "io"
  /** The input uses something edgemoe does not support (yet). */
  | "unsupported"
  /** Bytes on disk do not match what the format or a checksum demands. */
  | "corrupt_data"
  /** The object was already closed. */
  | "closed"
  /** The resource is in use. */
  | "busy"
  /** A Deno permission is missing (for example `--allow-ffi`). */
  | "permission_denied"
  /** The native library could not be found, opened or built. */
  | "library_not_found"
  /** The native library was built for another CPU architecture. */
  | "library_arch_mismatch"
  /** The native library speaks another ABI version than these bindings. */
  | "abi_mismatch"
  /** The native side returned a status these bindings do not know. */
  | "native_error";

/** Options of {@linkcode EdgeMoeError}. */
export interface EdgeMoeErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * An error with a machine-readable `code` and the operation that failed.
 *
 * @example
 * ```ts
 * import { EdgeMoeError } from "@edgemoe/edgemoe";
 * try {
 *   throw new EdgeMoeError("invalid_argument", "matvec", "x has 3 floats, expected 4");
 * } catch (e) {
 *   if (e instanceof EdgeMoeError && e.code === "invalid_argument") console.log(e.message);
 * }
 * ```
 */
export class EdgeMoeError extends Error {
  /** Why it failed. */
  readonly code: EdgeMoeErrorCode;
  /** What was being done, e.g. `"open native library"` or `"read tensor blk.0.attn_q.weight"`. */
  readonly op: string;

  /**
   * @param code why it failed
   * @param op what was being done
   * @param detail what was expected and what was found
   * @param options the underlying cause, if any
   */
  constructor(code: EdgeMoeErrorCode, op: string, detail: string, options?: EdgeMoeErrorOptions) {
    super(`${op}: ${detail}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EdgeMoeError";
    this.code = code;
    this.op = op;
  }
}

/** Native status codes (zig/src/c_api/status.zig) and the error code each maps to. */
const STATUS_CODES: ReadonlyMap<number, EdgeMoeErrorCode> = new Map([
  [-1, "invalid_argument"],
  [-2, "out_of_memory"],
  [-3, "io"],
  [-4, "unsupported"],
  [-5, "corrupt_data"],
  [-6, "closed"],
  [-7, "busy"],
]);

/**
 * Turns a native status into an {@linkcode EdgeMoeError}, or `undefined` when
 * the status is 0 (success).
 *
 * @param status the i32 a native export returned
 * @param op the operation, for the message
 * @param detail the native side's `last_error` text
 */
export function errorFromStatus(status: number, op: string, detail: string): EdgeMoeError | undefined {
  if (status === 0) return undefined;
  const code = STATUS_CODES.get(status);
  if (code === undefined) {
    return new EdgeMoeError("native_error", op, `unknown native status ${status}${detail ? `: ${detail}` : ""}`);
  }
  return new EdgeMoeError(code, op, detail || code);
}
