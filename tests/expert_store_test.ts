import { NativeLibrary } from "../mod.ts";
import { ExpertStore, type ExpertStoreOptions } from "../src/store/expert_store.ts";
import { cachePolicy, edgemoe, lfu, lru } from "../src/store/policy.ts";
import type { ExpertWeights, TensorData } from "../src/models/weights.ts";
import { EdgeMoeError } from "../src/errors.ts";
import type { SlotReaderOptions } from "../ffi/slot_reader.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";

const LAYERS = 3, EXPERTS = 4, PART = 6000; // deliberately not a multiple of 4096

/** A file with LAYERS×EXPERTS experts of 3 parts each; part bytes encode (layer, expert, part). */
function makeModelFile(): { path: string; content: Uint8Array; dir: string } {
  const content = new Uint8Array(LAYERS * EXPERTS * 3 * PART + 77);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 9)) & 0xff;
  const dir = Deno.makeTempDirSync({ dir: new URL("../zig/", import.meta.url).pathname, prefix: ".test-store-" });
  Deno.writeFileSync(`${dir}/m.bin`, content);
  return { path: `${dir}/m.bin`, content, dir };
}

function partOffset(layer: number, id: number, part: number): number {
  return 77 + ((layer * EXPERTS + id) * 3 + part) * PART;
}

function tensor(name: string, data: Uint8Array): TensorData {
  return { name, type: 0, dims: [PART / 4], data };
}

function setup(
  lib: NativeLibrary,
  slots: number,
  policy = lru,
  checksums = true,
  readerOpts: Partial<SlotReaderOptions> = { backend: "uring" },
) {
  const { path, content, dir } = makeModelFile();
  const reader = lib.openSlotReader(path, { slotCount: slots, slotBytes: PART + 4096, ...readerOpts });
  const opts: ExpertStoreOptions = {
    nLayers: LAYERS,
    nExperts: EXPERTS,
    partsPerExpert: 3,
    policy,
    locate: (layer, id) => ({
      parts: [0, 1, 2].map((p) => {
        const offset = partOffset(layer, id, p);
        return {
          offset,
          length: PART,
          checksum: checksums ? lib.checksum64(content.subarray(offset, offset + PART)) : 0n,
        };
      }),
      build: ([g, u, d]): ExpertWeights => ({ gate: tensor("g", g), up: tensor("u", u), down: tensor("d", d) }),
    }),
  };
  return { store: new ExpertStore(reader, opts), content, dir };
}

function expectExpert(content: Uint8Array, e: ExpertWeights, layer: number, id: number): void {
  [e.gate, e.up, e.down].forEach((t, p) => {
    const o = partOffset(layer, id, p);
    assertEquals(t.data, content.subarray(o, o + PART), `layer ${layer} expert ${id} part ${p}`);
  });
}

Deno.test("expert store: acquires exact bytes; a second acquire is a hit", () => {
  using lib = NativeLibrary.open();
  const { store, content, dir } = setup(lib, 12);
  try {
    using _ = store;
    {
      using lease = store.acquire(1, new Uint32Array([2, 0]));
      expectExpert(content, lease.experts[0], 1, 2);
      expectExpert(content, lease.experts[1], 1, 0);
    }
    using again = store.acquire(1, new Uint32Array([0]));
    expectExpert(content, again.experts[0], 1, 0);
    const s = store.stats();
    assertEquals([s.hits, s.misses, s.evictions], [1, 2, 0]);
    assertEquals(s.readsTotal, 6);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("expert store: eviction follows the policy and never touches pinned experts", () => {
  using lib = NativeLibrary.open();
  const { store, content, dir } = setup(lib, 6); // two experts fit
  try {
    using _ = store;
    store.acquire(0, new Uint32Array([0]))[Symbol.dispose]();
    store.acquire(0, new Uint32Array([1]))[Symbol.dispose]();
    store.acquire(0, new Uint32Array([0]))[Symbol.dispose](); // 0 is now more recent than 1
    {
      using lease = store.acquire(0, new Uint32Array([2])); // LRU evicts 1
      expectExpert(content, lease.experts[0], 0, 2);
      // With 2 pinned and 0 the only candidate, a request for two new experts cannot fit.
      assertThrows(() => store.acquire(0, new Uint32Array([3, 1])), EdgeMoeError, "all are pinned");
    }
    using hit = store.acquire(0, new Uint32Array([0]));
    expectExpert(content, hit.experts[0], 0, 0);
    assertEquals(store.stats().evictions >= 1, true);
    assertThrows(
      () => store.acquire(0, new Uint32Array([1, 2, 3])),
      EdgeMoeError,
      "needs 3 experts at once but the store holds 2",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("expert store: prefetched experts are hits, and prefetch never evicts the current layer's pins", () => {
  using lib = NativeLibrary.open();
  const { store, content, dir } = setup(lib, 9); // three experts fit
  try {
    using _ = store;
    using cur = store.acquire(0, new Uint32Array([0, 1]));
    store.prefetch(1, new Uint32Array([3, 2])); // only one slot group is free: 3 is read, 2 is dropped
    expectExpert(content, cur.experts[0], 0, 0);
    cur[Symbol.dispose]();
    using next = store.acquire(1, new Uint32Array([3]));
    expectExpert(content, next.experts[0], 1, 3);
    let s = store.stats();
    assertEquals([s.prefetches, s.prefetchUsed, s.hits], [1, 1, 1]);
    // A prefetch never used: evicted once read (counted as wasted, with its bytes), or cancelled if the router
    // picked other experts of its layer while its read was still in flight.
    store.prefetch(2, new Uint32Array([0]));
    store.acquire(2, new Uint32Array([1]))[Symbol.dispose]();
    store.acquire(2, new Uint32Array([2]))[Symbol.dispose]();
    store.acquire(2, new Uint32Array([3]))[Symbol.dispose]();
    s = store.stats();
    assertEquals(s.prefetchWasted + s.prefetchCancelled, 1);
    assertEquals(s.prefetchWastedBytes, s.prefetchWasted * 3 * PART);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("expert store: a corrupted expert is an error naming it, and the store stays usable", () => {
  using lib = NativeLibrary.open();
  const { store, content, dir } = setup(lib, 6);
  try {
    using _ = store;
    // Flip one byte inside expert 1 of layer 2 on disk.
    const f = Deno.openSync(`${dir}/m.bin`, { write: true });
    f.seekSync(partOffset(2, 1, 1) + 100, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array([content[partOffset(2, 1, 1) + 100] ^ 1]));
    f.close();
    const e = assertThrows(() => store.acquire(2, new Uint32Array([1])), EdgeMoeError, "expert 1 of layer 2");
    assertEquals(e.code, "corrupt_data");
    using ok = store.acquire(2, new Uint32Array([0]));
    expectExpert(content, ok.experts[0], 2, 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("cache policies rank as specified", () => {
  const c = [
    { layer: 0, id: 0, uses: 5, lastUse: 1 },
    { layer: 1, id: 0, uses: 1, lastUse: 3 },
    { layer: 2, id: 0, uses: 2, lastUse: 2 },
  ];
  assertEquals(lru.victim(c, 0, 3), c[0]);
  assertEquals(lfu.victim(c, 0, 3), c[1]);
  // Computing layer 0 of 3: layer 1 runs next (d=1), layer 2 after (d=2), layer 0 last (d=3).
  // Kept values: 5/3, 1/1, 2/2 → layers 1 and 2 tie; the least recently used (layer 2) goes.
  assertEquals(edgemoe.victim(c, 0, 3), c[2]);
  assertEquals(cachePolicy("lfu"), lfu);
  assert(assertThrows(() => cachePolicy("fifo"), EdgeMoeError).message.includes("lru, lfu, edgemoe"));
});

Deno.test("expert store: superseded prefetches still queued are cancelled, reads in flight stay bounded, and cancelled experts read correctly later", () => {
  using lib = NativeLibrary.open();
  // pread with one read at a time, each slowed by 20 ms: prefetches are still queued or in flight when superseded.
  for (
    const readerOpts of [{ backend: "pread", maxInFlight: 1, threads: 3, readDelayUs: 20_000 }, {
      backend: "uring",
      maxInFlight: 2,
      queueDepth: 2,
    }] as const
  ) {
    const { store, content, dir } = setup(lib, 12, lru, true, readerOpts); // four experts fit
    try {
      using _ = store;
      // The router picks expert 3 of layer 1: the three guesses still in flight are stopped, their slots freed.
      store.prefetch(1, new Uint32Array([0, 1, 2]));
      {
        using lease = store.acquire(1, new Uint32Array([3]));
        expectExpert(content, lease.experts[0], 1, 3);
      }
      let s = store.stats();
      if (readerOpts.backend === "pread") {
        // One read (the first part of expert 0) may already be in flight: it is left to complete.
        assertEquals([s.prefetches, s.prefetchCancelled], [3, 3]);
        assert(s.cancelledTotal === 8 || s.cancelledTotal === 9, `${s.cancelledTotal} reads cancelled`);
        // Every slot is free again: four experts of another layer fit without evicting anything.
        using all = store.acquire(2, new Uint32Array([0, 1, 2]));
        all.experts.forEach((e, i) => expectExpert(content, e, 2, i));
        assertEquals(store.stats().evictions, 0);
      }
      // A cancelled expert acquired later is read again, exactly.
      using again = store.acquire(1, new Uint32Array([0, 2]));
      expectExpert(content, again.experts[0], 1, 0);
      expectExpert(content, again.experts[1], 1, 2);
      again[Symbol.dispose]();
      // A prefetch whose slots are needed by the current layer is cancelled, not waited for.
      store.prefetch(0, new Uint32Array([0, 1, 2, 3]));
      using cur = store.acquire(2, new Uint32Array([1, 2, 3]));
      cur.experts.forEach((e, i) => expectExpert(content, e, 2, i + 1));
      s = store.stats();
      assert(
        s.inFlightMax <= readerOpts.maxInFlight,
        `${s.inFlightMax} reads in flight, bound ${readerOpts.maxInFlight}`,
      );
      assertEquals(s.checksumFailuresTotal, 0);
      if (readerOpts.backend === "pread") assert(s.prefetchCancelled >= 4, `${s.prefetchCancelled} cancelled`);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }
});

Deno.test("expert store: a prefetch the router picks starts all its queued parts at once", () => {
  using lib = NativeLibrary.open();
  // Four reads in flight, two of them speculative: the guess's third part waits in the queue.
  const { store, content, dir } = setup(lib, 6, lru, true, { backend: "uring", maxInFlight: 4, queueDepth: 4 });
  try {
    using _ = store;
    store.prefetch(1, new Uint32Array([0]));
    let inFlight = 0;
    // Picked: the queued part starts as a needed read before anything is waited for or reaped.
    using lease = store.acquire(1, new Uint32Array([0]), () => (inFlight = store.stats().inFlightMax));
    expectExpert(content, lease.experts[0], 1, 0);
    const s = store.stats();
    assertEquals([inFlight, s.speculativeInFlightMax, s.prefetchUsed], [3, 2, 1]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("expert store: the slots of a partly read prefetch are reused safely while its read is in flight", () => {
  using lib = NativeLibrary.open();
  // One prefetch read at a time: the first part of expert 0 is in flight when the router picks expert 3
  // (uring: handed to the kernel at submit; pread: slowed to 20 ms).
  for (
    const readerOpts of [
      { backend: "uring", maxInFlight: 2, queueDepth: 2 },
      { backend: "pread", maxInFlight: 1, threads: 1, readDelayUs: 20_000 },
    ] as const
  ) {
    const { store, content, dir } = setup(lib, 12, lru, true, readerOpts);
    try {
      using _ = store;
      store.prefetch(1, new Uint32Array([0, 1, 2]));
      // The freed slots are taken at once by the next layer's prefetches, before anything is waited for.
      using lease = store.acquire(1, new Uint32Array([3]), () => store.prefetch(2, new Uint32Array([0, 1])));
      expectExpert(content, lease.experts[0], 1, 3);
      lease[Symbol.dispose]();
      using next = store.acquire(2, new Uint32Array([1, 0]));
      expectExpert(content, next.experts[0], 2, 1);
      expectExpert(content, next.experts[1], 2, 0);
      const s = store.stats();
      assertEquals([s.prefetchCancelled, s.prefetchUsed, s.checksumFailuresTotal], [3, 2, 0]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }
});
