/** Shared by the tokenizer tests. */

/** Compares and names the first differing case and position, so a failure shows where the tokenizers part. */
export function assertIds(actual: ArrayLike<number>, expected: number[], what: string): void {
  const a = Array.from(actual);
  const at = a.findIndex((x, i) => x !== expected[i]);
  if (at >= 0 || a.length !== expected.length) {
    const i = at >= 0 ? at : Math.min(a.length, expected.length);
    throw new Error(
      `NOT OK ${what}: first difference at index ${i}\n  ours:     [${a.slice(i, i + 8)}] (${a.length} ids)\n` +
        `  expected: [${expected.slice(i, i + 8)}] (${expected.length} ids)`,
    );
  }
}
