/**
 * `SlotReader`: the native slot arena of an expert store and the reads that
 * fill it (zig/src/io/store.zig). Which expert goes in which slot is decided
 * by src/store/; this class only moves bytes and reports what went wrong.
 *
 * @module
 */
import { EdgeMoeError } from "../src/errors.ts";
import { STORE_OPTIONS_LAYOUT, STORE_STATS_FIELDS, type Symbols } from "./symbols.ts";

/** How expert bytes are read from disk. */
export type StoreBackend = "uring" | "pread" | "mmap";

const BACKENDS: readonly StoreBackend[] = ["uring", "pread", "mmap"];

/** Options of {@linkcode SlotReader.open}. */
export interface SlotReaderOptions {
  /** Read path (default `"pread"`). */
  backend?: StoreBackend;
  /** Number of slots. */
  slotCount: number;
  /** Bytes per slot (rounded up to 4096); must hold the largest read plus 4095 bytes of alignment slack. */
  slotBytes: number;
  /** io_uring queue depth (default 8). */
  queueDepth?: number;
  /** pread reader threads (default 2). */
  threads?: number;
  /**
   * Most reads in flight at once (default: the queue depth for uring, the thread count for pread);
   * further submits wait in a queue, and a slot waited for moves to its front.
   */
  maxInFlight?: number;
  /** Testing hook (pread): each read first sleeps this many microseconds, so reads stay in flight. */
  readDelayUs?: number;
  /** `"off"`, `"try"` (default: O_DIRECT where the filesystem allows) or `"require"`. */
  direct?: "off" | "try" | "require";
  /** Fault injection, for testing what callers do with failed reads. */
  fault?: ReadFault;
}

/**
 * An injected read fault: `"eio"` fails read number `after` (1-based, in
 * submission order; 0 = every read) with EIO; `"short"` makes it return half
 * its bytes, which the reader must complete (the data stays exact).
 */
export interface ReadFault {
  mode: "eio" | "short";
  after: number;
}

/** Counters since open. */
export type SlotReaderStats = Record<(typeof STORE_STATS_FIELDS)[number], number>;

/** The internal bridge NativeLibrary hands to the classes that wrap its handles. */
export interface NativeBridge {
  symbols: Symbols;
  /** Throws the EdgeMoeError for a non-zero status, with the native detail text. */
  check(op: string, status: number): void;
}

/** A native slot arena reading byte ranges of one file. */
export class SlotReader implements Disposable {
  #bridge: NativeBridge;
  #handle: Deno.PointerValue;
  #lens: number[];
  /** The file being read. */
  readonly path: string;
  /** The backend in use. */
  readonly backend: StoreBackend;
  /** Number of slots. */
  readonly slotCount: number;

  private constructor(
    bridge: NativeBridge,
    handle: Deno.PointerValue,
    path: string,
    backend: StoreBackend,
    slots: number,
  ) {
    this.#bridge = bridge;
    this.#handle = handle;
    this.path = path;
    this.backend = backend;
    this.slotCount = slots;
    this.#lens = new Array(slots).fill(0);
  }

  /**
   * Opens `path` and allocates the arena. Used through `NativeLibrary.openSlotReader`.
   *
   * @throws {EdgeMoeError} `invalid_argument` for bad options, `io` if the file cannot be opened,
   * `unsupported` if io_uring is unavailable, `out_of_memory` if the arena cannot be allocated.
   */
  static open(bridge: NativeBridge, path: string, opts: SlotReaderOptions): SlotReader {
    const op = `open expert store ${path}`;
    const backend = opts.backend ?? "pread";
    const b = BACKENDS.indexOf(backend);
    if (b < 0) {
      throw new EdgeMoeError("invalid_argument", op, `backend must be one of ${BACKENDS.join(", ")}, got "${backend}"`);
    }
    for (const [name, v] of [["slotCount", opts.slotCount], ["slotBytes", opts.slotBytes]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) {
        throw new EdgeMoeError("invalid_argument", op, `${name} must be a positive integer, got ${v}`);
      }
    }
    const L = STORE_OPTIONS_LAYOUT;
    const raw = new Uint8Array(L.size);
    const dv = new DataView(raw.buffer);
    dv.setUint32(L.backend, b, true);
    dv.setUint32(L.slotCount, opts.slotCount, true);
    dv.setBigUint64(L.slotBytes, BigInt(opts.slotBytes), true);
    dv.setUint32(L.queueDepth, opts.queueDepth ?? 8, true);
    dv.setUint32(L.threads, opts.threads ?? 2, true);
    dv.setUint32(L.direct, { off: 0, try: 1, require: 2 }[opts.direct ?? "try"], true);
    for (
      const [name, v, at] of [["maxInFlight", opts.maxInFlight, L.maxInFlight], [
        "readDelayUs",
        opts.readDelayUs,
        L.readDelayUs,
      ]] as const
    ) {
      if (v === undefined) continue;
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new EdgeMoeError("invalid_argument", op, `${name} must be an integer in 0..2^32-1, got ${v}`);
      }
      dv.setUint32(at, v, true);
    }
    if (opts.fault) {
      if (!Number.isInteger(opts.fault.after) || opts.fault.after < 0 || opts.fault.after > 0xffffffff) {
        throw new EdgeMoeError(
          "invalid_argument",
          op,
          `fault.after must be an integer in 0..2^32-1, got ${opts.fault.after}`,
        );
      }
      dv.setUint32(L.faultMode, { eio: 1, short: 2 }[opts.fault.mode], true);
      dv.setUint32(L.faultAfter, opts.fault.after, true);
    }
    const p = new TextEncoder().encode(path);
    const out = new BigUint64Array(1);
    bridge.check(op, bridge.symbols.emoe_store_open(p, BigInt(p.length), raw, out));
    return new SlotReader(bridge, Deno.UnsafePointer.create(out[0]), path, backend, opts.slotCount);
  }

  #h(op: string): Deno.PointerObject {
    if (!this.#handle) throw new EdgeMoeError("closed", op, `the expert store of ${this.path} was closed`);
    return this.#handle;
  }

  #slot(op: string, slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) {
      throw new EdgeMoeError("invalid_argument", op, `slot ${slot} is outside 0..${this.slotCount - 1}`);
    }
  }

  /**
   * Starts reading `length` bytes at `offset` into `slot`. `checksum` (XXH64)
   * is verified when the read completes; `0n` skips it. A `speculative` read
   * (a prefetch) starts only while fewer than half the reads in flight are
   * speculative, so needed reads never queue behind many prefetches; waiting
   * for it makes it a needed read.
   */
  submit(slot: number, offset: number, length: number, checksum = 0n, speculative = false): void {
    const op = "submit read";
    this.#slot(op, slot);
    this.#bridge.check(
      op,
      this.#bridge.symbols.emoe_store_submit(
        this.#h(op),
        slot,
        BigInt(offset),
        BigInt(length),
        checksum,
        speculative ? 1 : 0,
      ),
    );
    this.#lens[slot] = length;
  }

  /**
   * Blocks until `slot` is loaded and verified; returns a view of its bytes,
   * valid until the slot is submitted again or the reader is closed.
   *
   * @throws {EdgeMoeError} `io` (EIO, short read), `corrupt_data` (checksum mismatch).
   */
  wait(slot: number): Uint8Array {
    const op = "wait for read";
    this.#slot(op, slot);
    const addr = new BigUint64Array(1);
    this.#bridge.check(op, this.#bridge.symbols.emoe_store_wait(this.#h(op), slot, addr));
    const ptr = Deno.UnsafePointer.create(addr[0]);
    if (!ptr) throw new EdgeMoeError("native_error", op, `slot ${slot} returned a null address`);
    return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, this.#lens[slot]));
  }

  /**
   * Marks the read into `slot` as needed without waiting: if it is still
   * queued (a prefetch behind the bound on speculative reads) it moves to the
   * front of the queue and starts as soon as there is room.
   */
  need(slot: number): void {
    const op = "mark read needed";
    this.#slot(op, slot);
    this.#bridge.check(op, this.#bridge.symbols.emoe_store_need(this.#h(op), slot));
  }

  /**
   * Stops the read into `slot` if it has not completed: a queued read is
   * dropped; one in flight is cancelled if `inFlight` (default), else left to
   * complete. Returns whether a read was stopped (the slot then holds no data:
   * waiting for it is an error) or false if the slot is as it was (a completed
   * read's data stays valid). The slot may be submitted again at once; that
   * submit waits if the kernel is still writing it.
   */
  cancel(slot: number, inFlight = true): boolean {
    const op = "cancel read";
    this.#slot(op, slot);
    const out = new Uint32Array(1);
    this.#bridge.check(op, this.#bridge.symbols.emoe_store_cancel(this.#h(op), slot, inFlight ? 1 : 0, out));
    return out[0] === 1;
  }

  /** Reaps finished reads without blocking. */
  poll(): void {
    const op = "poll reads";
    this.#bridge.check(op, this.#bridge.symbols.emoe_store_poll(this.#h(op)));
  }

  /** Counters since open. */
  stats(): SlotReaderStats {
    const op = "store stats";
    const out = new BigUint64Array(STORE_STATS_FIELDS.length);
    this.#bridge.check(op, this.#bridge.symbols.emoe_store_stats(this.#h(op), out));
    return Object.fromEntries(STORE_STATS_FIELDS.map((k, i) => [k, Number(out[i])])) as SlotReaderStats;
  }

  /** Waits for reads in flight and frees the arena. Idempotent. */
  close(): void {
    if (!this.#handle) return;
    this.#bridge.symbols.emoe_store_close(this.#handle);
    this.#handle = null;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
