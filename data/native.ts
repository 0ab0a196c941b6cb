/**
 * Loads the native iceoryx2 library (`librmp_iceoryx2`) and turns its return
 * codes into errors. All unsafe pointer work of the module lives here and in
 * `channel/`.
 *
 * @module
 */
import { ABI_VERSION } from "../protocol/contracts.ts";
import { symbols } from "./symbols.ts";
import { missingPermission, NativeLibraryError } from "../errors.ts";
import { readEnv } from "../control/config.ts";

/** The loaded library's symbols. */
export type NativeSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** The call succeeded. */
export const RMP_OK = 0;
/** The call would block: the channel is full, or no sample is waiting. */
export const RMP_WOULD_BLOCK = 1;

/** The environment variable that overrides where the library is loaded from. */
export const LIBRARY_ENV = "RMP_ICEORYX2_LIB";

/** The command that builds the library, quoted in errors. */
export const BUILD_COMMAND = "deno task setup";

let library: Deno.DynamicLibrary<typeof symbols> | undefined;

/**
 * Where the native library is looked for: `RMP_ICEORYX2_LIB` when set, else
 * the project's own build output `ffi/target/release/librmp_iceoryx2.so`.
 * Without `--allow-env` the variable counts as unset.
 *
 * @example
 * ```ts
 * import { libraryPath } from "@remotemedia/multiprocess/native";
 * console.log(libraryPath().endsWith(".so"));
 * ```
 */
export function libraryPath(): string {
  const override = readEnv(LIBRARY_ENV);
  if (override) return override;
  const suffix = Deno.build.os === "darwin" ? "dylib" : "so";
  return new URL(
    `../ffi/target/release/librmp_iceoryx2.${suffix}`,
    import.meta.url,
  ).pathname;
}

/**
 * The native library's symbols, loading the library on first use.
 *
 * @throws {NativeLibraryError} when the library is missing or cannot load;
 * the message names the path tried and the command that builds it.
 * @throws {MissingPermissionError} without `--allow-read` for the library's
 * path or without `--allow-ffi`.
 *
 * @example
 * ```ts
 * import { nativeLibrary } from "@remotemedia/multiprocess/native";
 * console.log(nativeLibrary().rmp_abi_version()); // 1
 * ```
 */
export function nativeLibrary(): NativeSymbols {
  if (library) return library.symbols;
  const path = libraryPath();
  try {
    Deno.statSync(path);
  } catch (cause) {
    throw missingPermission(
      cause,
      `Cannot check the native iceoryx2 library "${path}"`,
    ) ?? new NativeLibraryError(
      `The native iceoryx2 library is missing at ${path}: build it with \`${BUILD_COMMAND}\` (or set ${LIBRARY_ENV})`,
      { cause },
    );
  }
  try {
    library = Deno.dlopen(path, symbols);
  } catch (cause) {
    throw missingPermission(
      cause,
      `Cannot load the native iceoryx2 library "${path}"`,
    ) ?? new NativeLibraryError(
      `Cannot load the native iceoryx2 library at ${path}: ${
        (cause as Error).message
      }; rebuild it with \`${BUILD_COMMAND}\``,
      { cause },
    );
  }
  const abi = library.symbols.rmp_abi_version();
  if (abi !== ABI_VERSION) {
    library.close();
    library = undefined;
    throw new NativeLibraryError(
      `The native library at ${path} has ABI ${abi}, expected ${ABI_VERSION}: rebuild it with \`${BUILD_COMMAND}\``,
    );
  }
  return library.symbols;
}

const errorBuffer = new Uint8Array(4096);
const decoder = new TextDecoder();

/**
 * The calling thread's last native error message.
 *
 * @example
 * ```ts
 * import { lastNativeError } from "@remotemedia/multiprocess/native";
 * console.log(typeof lastNativeError()); // "string"
 * ```
 */
export function lastNativeError(): string {
  const length = Number(
    nativeLibrary().rmp_last_error(errorBuffer, BigInt(errorBuffer.length)),
  );
  return decoder.decode(
    errorBuffer.subarray(0, Math.min(length, errorBuffer.length)),
  );
}

/**
 * Returns `code` when it is not an error, else throws a
 * {@linkcode NativeLibraryError} carrying the native message.
 *
 * @param code A return code of a native call.
 * @param what What was being done, for the message.
 * @returns The code (`RMP_OK` or `RMP_WOULD_BLOCK`).
 *
 * @example
 * ```ts
 * import { checkCode, RMP_OK } from "@remotemedia/multiprocess/native";
 * console.log(checkCode(RMP_OK, "nothing")); // 0
 * ```
 */
export function checkCode(code: number, what: string): number {
  if (code >= 0) return code;
  throw new NativeLibraryError(`${what} failed: ${lastNativeError()}`, {
    code,
  });
}

/**
 * CLOCK_MONOTONIC in nanoseconds: the clock every process on this machine
 * shares (Python's `time.monotonic_ns()`), used to stamp RuntimeData.
 *
 * @example
 * ```ts
 * import { monotonicNs } from "@remotemedia/multiprocess/native";
 * console.log(monotonicNs() > 0n); // true
 * ```
 */
export function monotonicNs(): bigint {
  return nativeLibrary().rmp_monotonic_ns();
}
