/**
 * Reading the environment when `--allow-env` may be missing, shared by the
 * data and control planes (`./config` exports it as `readEnv`).
 *
 * @module
 */

/**
 * The value of an environment variable, or `undefined` when it is unset or
 * the program lacks `--allow-env` for it (callers then use their default).
 *
 * @param name The variable.
 * @returns Its value, if set and readable.
 */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) return undefined;
    throw e;
  }
}
