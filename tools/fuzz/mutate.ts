/**
 * Mutations for fuzzing readers of untrusted input: bit flips, interesting
 * integers written over length and offset fields, chunk insertions,
 * deletions and duplications, truncation, and splices of two seeds. A
 * seeded PRNG makes every run reproducible.
 *
 * @module
 */

/** xorshift128+: small, fast, seeded. */
export class Rng {
  #s0: bigint;
  #s1: bigint;

  constructor(seed: number) {
    this.#s0 = BigInt(seed) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn | 1n;
    this.#s1 = (BigInt(seed) + 0x632be59bd9b4e019n) & 0xffffffffffffffffn;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    let x = this.#s0;
    const y = this.#s1;
    this.#s0 = y;
    x ^= (x << 23n) & 0xffffffffffffffffn;
    this.#s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(((this.#s1 + y) & 0xffffffffn) % BigInt(Math.max(1, n)));
  }
}

const INTERESTING_32 = [
  0,
  1,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x7fff,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xfffffffe,
  0xffffffff,
];
const INTERESTING_64 = [
  0n,
  1n,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0xffffffffffffffffn,
  1n << 32n,
  (1n << 53n) + 1n,
];

/** One random mutation of `input` (never the input itself). */
export function mutate(input: Uint8Array, rng: Rng, other?: Uint8Array): Uint8Array {
  const b = input.slice();
  const at = (extra = 0) => rng.int(Math.max(1, b.length - extra));
  switch (rng.int(10)) {
    case 0: { // flip bits
      const n = 1 + rng.int(4);
      for (let i = 0; i < n && b.length; i++) b[at()] ^= 1 << rng.int(8);
      return b;
    }
    case 1: { // an interesting byte
      if (b.length) b[at()] = [0, 1, 0x7f, 0x80, 0xff][rng.int(5)];
      return b;
    }
    case 2: { // an interesting u32 over a (likely) length or count
      if (b.length >= 4) new DataView(b.buffer).setUint32(at(4), INTERESTING_32[rng.int(INTERESTING_32.length)], true);
      return b;
    }
    case 3: { // an interesting u64
      if (b.length >= 8) {
        new DataView(b.buffer).setBigUint64(at(8), INTERESTING_64[rng.int(INTERESTING_64.length)], true);
      }
      return b;
    }
    case 4: // truncate
      return b.subarray(0, rng.int(b.length + 1));
    case 5: { // delete a chunk
      const s = at(), n = 1 + rng.int(64);
      return concat(b.subarray(0, s), b.subarray(s + n));
    }
    case 6: { // duplicate a chunk
      const s = at(), n = 1 + rng.int(64);
      return concat(b.subarray(0, s + n), b.subarray(s, s + n), b.subarray(s + n));
    }
    case 7: { // insert random bytes
      const s = at(), n = 1 + rng.int(16);
      const r = new Uint8Array(n).map(() => rng.int(256));
      return concat(b.subarray(0, s), r, b.subarray(s));
    }
    case 8: { // splice with another seed
      if (!other || other.length === 0) return mutate(input, rng);
      const s = at(), o = rng.int(other.length);
      return concat(b.subarray(0, s), other.subarray(o, o + 1 + rng.int(256)));
    }
    default: { // text-aware: swap an ASCII digit or punctuation for another
      const s = at();
      b[s] = '0123456789{}[]",:-e%'.charCodeAt(rng.int(20));
      return b;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
