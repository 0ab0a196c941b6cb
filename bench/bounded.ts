/** A wait with a bound, so a lost message fails a benchmark instead of hanging it. */

/**
 * `promise`, or an error naming `what` once `ms` milliseconds pass.
 *
 * @example
 * ```ts
 * import { bounded } from "./bounded.ts";
 * console.log(await bounded(Promise.resolve(1), 1000, "one")); // 1
 * ```
 */
export async function bounded<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: nothing within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
