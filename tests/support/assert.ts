/** Minimal std-style assertions over node:assert (JSR is not reachable here). */
import nodeAssert from "node:assert/strict";

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** Fails unless `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Deep strict equality. */
export function assertEquals<T>(
  actual: T,
  expected: T,
  message?: string,
): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

function check(error: unknown, cls?: ErrorClass, includes?: string): Error {
  if (!(error instanceof Error)) {
    throw new Error(`expected an Error, got ${error}`);
  }
  if (cls && !((error as Error) instanceof cls)) {
    const e = error as Error;
    throw new Error(
      `expected ${cls.name}, got ${e.name}: ${e.message}`,
    );
  }
  if (includes && !error.message.includes(includes)) {
    throw new Error(
      `expected the message to include "${includes}", got "${error.message}"`,
    );
  }
  return error;
}

/** Fails unless `fn` throws (an instance of `cls` whose message includes `includes`). */
export function assertThrows(
  fn: () => unknown,
  cls?: ErrorClass,
  includes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    return check(e, cls, includes);
  }
  throw new Error("expected the function to throw");
}

/** Fails unless `fn` rejects (an instance of `cls` whose message includes `includes`). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return check(e, cls, includes);
  }
  throw new Error("expected the promise to reject");
}

/** Asserts that `value` is an instance of `type` (and narrows it). */
export function assertInstanceOf<T>(
  value: unknown,
  // deno-lint-ignore no-explicit-any
  type: abstract new (...args: any[]) => T,
  message?: string,
): asserts value is T {
  if (!(value instanceof type)) {
    throw new Error(
      message ??
        `Expected an instance of ${type.name}, got ${
          value instanceof Error ? `${value.name}: ${value.message}` : value
        }`,
    );
  }
}
