/**
 * The expert store: experts live on disk and are read into a fixed arena of
 * slots only when the router (or a prefetch) asks for them. A cached expert
 * is reused; when no slot is free, the cache policy picks an unpinned victim.
 * `acquire` pins the experts of a layer until the lease is disposed, so a
 * prefetch can never evict what the current layer is using. A prefetch still
 * in flight when it is superseded (its layer was routed elsewhere, or its
 * slots are needed) is cancelled, not waited for.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { SlotReader, SlotReaderStats } from "../../ffi/slot_reader.ts";
import type { ExpertLease, ExpertSource, ExpertWeights } from "../models/weights.ts";
import type { CacheEntryInfo, CachePolicy } from "./policy.ts";

/** One byte range of an expert in the file (a pack blob, or one of three stacked slices). */
export interface ExpertPart {
  offset: number;
  length: number;
  /** XXH64 of the bytes, or `0n` when the file carries none. */
  checksum: bigint;
}

/** Where an expert's bytes are and how to see them as tensors once read. */
export interface ExpertLayout {
  parts: readonly ExpertPart[];
  /** Builds the expert's tensors from the bytes of each part, in order. */
  build(parts: readonly Uint8Array[]): ExpertWeights;
}

/** Store counters. */
export interface ExpertStoreStats extends SlotReaderStats {
  /** Experts acquired that were already cached (or in flight from a prefetch). */
  hits: number;
  /** Experts acquired that had to be read on demand. */
  misses: number;
  /** Experts read because of a prefetch. */
  prefetches: number;
  /** Prefetched experts later acquired before eviction. */
  prefetchUsed: number;
  /** Prefetched experts evicted without ever being acquired, and the bytes read for them. */
  prefetchWasted: number;
  prefetchWastedBytes: number;
  /** Prefetches cancelled before their read completed (superseded, or their slots were needed). */
  prefetchCancelled: number;
  evictions: number;
}

interface Entry extends CacheEntryInfo {
  group: number;
  layout: ExpertLayout;
  loaded: boolean;
  pins: number;
  prefetched: boolean;
  weights?: ExpertWeights;
}

/** Options of {@linkcode ExpertStore}. */
export interface ExpertStoreOptions {
  nLayers: number;
  nExperts: number;
  /** Byte ranges per expert (1 for a pack, 3 for a plain GGUF). */
  partsPerExpert: number;
  locate(layer: number, id: number): ExpertLayout;
  policy: CachePolicy;
}

/** Experts read from disk into a fixed slot arena, under a cache policy. */
export class ExpertStore implements ExpertSource, Disposable {
  readonly #reader: SlotReader;
  readonly #opts: ExpertStoreOptions;
  readonly #entries = new Map<number, Entry>();
  readonly #freeGroups: number[] = [];
  readonly #lifetimeUses = new Map<number, number>();
  #clock = 0;
  #currentLayer = 0;
  #counters = {
    hits: 0,
    misses: 0,
    prefetches: 0,
    prefetchUsed: 0,
    prefetchWasted: 0,
    prefetchWastedBytes: 0,
    prefetchCancelled: 0,
    evictions: 0,
  };

  /**
   * @param reader the slot arena; it must have at least `partsPerExpert × nExpertUsed` slots
   * @throws {EdgeMoeError} `invalid_argument` if the arena cannot hold one expert.
   */
  constructor(reader: SlotReader, opts: ExpertStoreOptions) {
    this.#reader = reader;
    this.#opts = opts;
    const groups = Math.floor(reader.slotCount / opts.partsPerExpert);
    if (groups < 1) {
      throw new EdgeMoeError(
        "invalid_argument",
        "open expert store",
        `${reader.slotCount} slots cannot hold one expert of ${opts.partsPerExpert} parts`,
      );
    }
    for (let g = groups - 1; g >= 0; g--) this.#freeGroups.push(g);
  }

  /** How many experts fit at once. */
  get capacity(): number {
    return Math.floor(this.#reader.slotCount / this.#opts.partsPerExpert);
  }

  #key(layer: number, id: number): number {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.#opts.nLayers) {
      throw new EdgeMoeError(
        "invalid_argument",
        "acquire experts",
        `layer ${layer} is outside 0..${this.#opts.nLayers - 1}`,
      );
    }
    if (!Number.isInteger(id) || id < 0 || id >= this.#opts.nExperts) {
      throw new EdgeMoeError(
        "invalid_argument",
        "acquire experts",
        `expert ${id} is outside 0..${this.#opts.nExperts - 1}`,
      );
    }
    return layer * this.#opts.nExperts + id;
  }

  /** A free slot group, evicting an unpinned expert not in `keep` if needed; undefined if none can go. */
  #takeGroup(keep: ReadonlySet<number>): number | undefined {
    const free = this.#freeGroups.pop();
    if (free !== undefined) return free;
    const candidates: Entry[] = [];
    for (const [k, e] of this.#entries) if (e.pins === 0 && !keep.has(k)) candidates.push(e);
    if (candidates.length === 0) return undefined;
    const v = this.#opts.policy.victim(candidates, this.#currentLayer, this.#opts.nLayers) as Entry;
    // A prefetch still in flight is cancelled (a later submit into its slots waits until the kernel lets go).
    if (!this.#cancel(v, true)) {
      this.#entries.delete(v.layer * this.#opts.nExperts + v.id);
      this.#counters.evictions++;
      if (v.prefetched) {
        this.#counters.prefetchWasted++;
        this.#counters.prefetchWastedBytes += v.layout.parts.reduce((n, p) => n + p.length, 0);
      }
    }
    return v.group;
  }

  /**
   * Stops the reads of an unpinned entry not yet waited for (only queued ones
   * unless `inFlight`); true if any was stopped (the entry is then forgotten,
   * its slots free to reuse).
   */
  /** The slots that hold `e`'s parts, in order. */
  #slots(e: Entry): number[] {
    return Array.from({ length: this.#opts.partsPerExpert }, (_, i) => e.group * this.#opts.partsPerExpert + i);
  }

  #cancel(e: Entry, inFlight: boolean): boolean {
    if (e.loaded) return false;
    const slots = this.#slots(e);
    let stopped = false;
    for (const slot of slots) if (this.#reader.cancel(slot, inFlight)) stopped = true;
    if (!stopped) return false;
    // A partly read expert is of no use: stop its reads still in flight too, so its slots can be reused.
    if (!inFlight) { for (const slot of slots) this.#reader.cancel(slot, true); }
    this.#entries.delete(e.layer * this.#opts.nExperts + e.id);
    this.#counters.prefetchCancelled++;
    return true;
  }

  #load(layer: number, id: number, group: number, prefetched: boolean): Entry {
    const layout = this.#opts.locate(layer, id);
    if (layout.parts.length !== this.#opts.partsPerExpert) {
      throw new EdgeMoeError(
        "corrupt_data",
        "read expert",
        `expert ${id} of layer ${layer} has ${layout.parts.length} parts, expected ${this.#opts.partsPerExpert}`,
      );
    }
    layout.parts.forEach((p, i) =>
      this.#reader.submit(group * this.#opts.partsPerExpert + i, p.offset, p.length, p.checksum, prefetched)
    );
    const key = layer * this.#opts.nExperts + id;
    const e: Entry = {
      layer,
      id,
      group,
      layout,
      loaded: false,
      pins: 0,
      prefetched,
      uses: this.#lifetimeUses.get(key) ?? 0,
      lastUse: ++this.#clock,
    };
    this.#entries.set(key, e);
    return e;
  }

  #finish(e: Entry): ExpertWeights {
    if (!e.loaded) {
      const views: Uint8Array[] = [];
      try {
        for (const slot of this.#slots(e)) views.push(this.#reader.wait(slot));
      } catch (err) {
        // The slot holds nothing usable: forget the expert and give its slots back.
        this.#entries.delete(e.layer * this.#opts.nExperts + e.id);
        this.#freeGroups.push(e.group);
        if (err instanceof EdgeMoeError) {
          throw new EdgeMoeError(err.code, `read expert ${e.id} of layer ${e.layer}`, err.message, { cause: err });
        }
        throw err;
      }
      e.weights = e.layout.build(views);
      e.loaded = true;
    }
    return e.weights!;
  }

  /** Starts reads for experts of `layer` not yet cached, without evicting pinned or in-use experts. */
  prefetch(layer: number, ids: Uint32Array): void {
    const keep = new Set([...ids].map((id) => this.#key(layer, id)));
    for (const id of ids) {
      const key = layer * this.#opts.nExperts + id;
      if (this.#entries.has(key)) continue;
      const g = this.#takeGroup(keep);
      if (g === undefined) return;
      this.#load(layer, id, g, true);
      this.#counters.prefetches++;
    }
  }

  /**
   * Pins and returns experts `ids` of `layer`, reading the missing ones (all
   * submitted before any is waited for). `whileReading` runs after the reads
   * are submitted and before they are waited for (see `ExpertSource`).
   *
   * @throws {EdgeMoeError} `out_of_memory` if the arena cannot hold this layer's experts at once;
   * `io` / `corrupt_data` if a read fails (naming the expert).
   */
  acquire(layer: number, ids: Uint32Array, whileReading?: () => void): ExpertLease {
    this.#currentLayer = layer;
    const keys = [...ids].map((id) => this.#key(layer, id));
    const keep = new Set(keys);
    if (keep.size > this.capacity) {
      throw new EdgeMoeError(
        "out_of_memory",
        "acquire experts",
        `layer ${layer} needs ${keep.size} experts at once but the store holds ${this.capacity}`,
      );
    }
    // Guesses for this layer that the router did not pick: drop those still queued, so the reads this
    // layer needs do not wait behind them. Those already in flight are left to complete (the kernel
    // rarely stops a file read it has started, and reusing their slots now would wait for it) and
    // become the least recently used experts, the first a policy evicts.
    for (const [k, e] of this.#entries) {
      if (e.layer !== layer || !e.prefetched || e.pins > 0 || keep.has(k)) continue;
      if (this.#cancel(e, false)) this.#freeGroups.push(e.group);
      else e.lastUse = 0;
    }
    const entries: Entry[] = [];
    for (let i = 0; i < keys.length; i++) {
      let e = this.#entries.get(keys[i]);
      if (e) {
        this.#counters.hits++;
        if (e.prefetched) {
          this.#counters.prefetchUsed++;
          e.prefetched = false;
          // A guess the router picked is a needed read: its parts still queued behind the bound on
          // prefetches start now, not one by one as each is waited for.
          if (!e.loaded) { for (const slot of this.#slots(e)) this.#reader.need(slot); }
        }
      } else {
        const g = this.#takeGroup(keep);
        if (g === undefined) {
          throw new EdgeMoeError(
            "out_of_memory",
            "acquire experts",
            `no slot can be freed for expert ${ids[i]} of layer ${layer}: all are pinned`,
          );
        }
        e = this.#load(layer, ids[i], g, false);
        this.#counters.misses++;
      }
      e.pins++;
      e.uses++;
      e.lastUse = ++this.#clock;
      this.#lifetimeUses.set(keys[i], e.uses);
      entries.push(e);
    }
    let experts: ExpertWeights[];
    try {
      whileReading?.();
      experts = entries.map((e) => this.#finish(e));
    } catch (err) {
      for (const e of entries) e.pins--;
      throw err;
    }
    let released = false;
    return {
      experts,
      [Symbol.dispose]: () => {
        if (released) return;
        released = true;
        for (const e of entries) e.pins--;
      },
    };
  }

  /** Reaps completed reads and starts queued ones, without waiting (see `ExpertSource.poll`). */
  poll(): void {
    this.#reader.poll();
  }

  /** Counters: cache hits and misses, prefetch use, evictions, and the reader's I/O totals. */
  stats(): ExpertStoreStats {
    return { ...this.#reader.stats(), ...this.#counters };
  }

  /** Closes the slot reader. Idempotent. */
  close(): void {
    this.#reader.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
