/**
 * Assertions for tests, with `@std/assert`'s names. JSR is not reachable here,
 * so they are built on `node:assert/strict`; moving to `@std/assert` is
 * replacing this file with `export * from "jsr:@std/assert";`.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts that `cond` is truthy. */
export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts deep inequality. */
export function assertNotEquals(actual: unknown, expected: unknown, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/** Asserts `|actual - expected| <= tolerance` (default 1e-7). */
export function assertAlmostEquals(actual: number, expected: number, tolerance = 1e-7, msg?: string): void {
  const diff = Math.abs(actual - expected);
  if (!(diff <= tolerance)) {
    throw new nodeAssert.AssertionError({
      message: msg ?? `expected ${actual} to be within ${tolerance} of ${expected} (difference ${diff})`,
      actual,
      expected,
    });
  }
}

/** Asserts that `actual` is an instance of `type`. */
export function assertInstanceOf<T extends abstract new (...args: never[]) => unknown>(
  actual: unknown,
  type: T,
  msg?: string,
): asserts actual is InstanceType<T> {
  nodeAssert.ok(actual instanceof type, msg ?? `expected an instance of ${type.name}, got ${String(actual)}`);
}

/** Asserts that `fn` throws an error of `type` whose message includes `includes`; returns it. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  type?: abstract new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (e) {
    checkThrown(e, type, includes);
    return e as E;
  }
  throw new nodeAssert.AssertionError({ message: "expected the function to throw" });
}

/** Asserts that the promise rejects with an error of `type` whose message includes `includes`. */
export async function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  type?: abstract new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    checkThrown(e, type, includes);
    return e as E;
  }
  throw new nodeAssert.AssertionError({ message: "expected the promise to reject" });
}

function checkThrown(e: unknown, type?: abstract new (...args: never[]) => unknown, includes?: string): void {
  if (type && !(e instanceof type)) {
    throw new nodeAssert.AssertionError({ message: `expected ${type.name} to be thrown, got ${String(e)}` });
  }
  if (includes !== undefined && !(e instanceof Error && e.message.includes(includes))) {
    throw new nodeAssert.AssertionError({
      message: `expected the error message to include "${includes}", got "${
        e instanceof Error ? e.message : String(e)
      }"`,
    });
  }
}
