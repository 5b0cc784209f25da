/**
 * The sampler's random numbers: the 32-bit Mersenne Twister (MT19937, as C++'s
 * `std::mt19937`), and uniform doubles in [0, 1) built from two draws the way
 * libstdc++'s `generate_canonical<double, 53>` builds them. This is what
 * llama.cpp's `dist` sampler draws from, so a seed picks the same tokens here
 * as there. Integer arithmetic only: identical on every platform.
 *
 * @module
 */

const N = 624;
const M = 397;
const TWO_32 = 4294967296;

/** MT19937 with C++'s seeding. */
export class Mt19937 {
  readonly #mt = new Uint32Array(N);
  #i = N;

  /** @param seed an integer in [0, 2^32) */
  constructor(seed: number) {
    const mt = this.#mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** The next 32-bit output. */
  nextU32(): number {
    const mt = this.#mt;
    if (this.#i >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
        mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.#i = 0;
    }
    let y = mt[this.#i++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1): (first + second · 2^32) / 2^64, kept below 1. */
  nextDouble(): number {
    const lo = this.nextU32();
    const hi = this.nextU32();
    const r = (lo + hi * TWO_32) / (TWO_32 * TWO_32);
    return r >= 1 ? 1 - Number.EPSILON / 2 : r;
  }
}
