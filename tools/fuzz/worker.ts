/**
 * Fuzz worker: runs one target and publishes each input in shared memory
 * before running it, so the parent can save the input of a hang.
 */
import { fuzzLoop } from "./loop.ts";
import { TARGETS } from "./targets.ts";

interface Job {
  target: string;
  iterations: number;
  seed: number;
  shared: SharedArrayBuffer; // [0]: inputs started (i32), [1]: input length; bytes from 8
}

const scope = self as unknown as { onmessage: (ev: MessageEvent<Job>) => void; postMessage(m: unknown): void };

scope.onmessage = (ev: MessageEvent<Job>) => {
  const { target, iterations, seed, shared } = ev.data;
  const t = TARGETS.find((x) => x.name === target)!;
  const head = new Int32Array(shared, 0, 2);
  const bytes = new Uint8Array(shared, 8);
  const findings = fuzzLoop(t, {
    iterations,
    seed,
    before: (input) => {
      const n = Math.min(input.length, bytes.length);
      bytes.set(input.subarray(0, n));
      Atomics.store(head, 1, n);
      Atomics.add(head, 0, 1);
    },
  });
  scope.postMessage({ done: true, findings });
};
