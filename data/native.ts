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
import {
  findLibrary,
  LIBRARY_ENV,
  prepareLookup,
  PYTHON_PACKAGE,
} from "./_library_path.ts";

/** The loaded library's symbols. */
export type NativeSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** The call succeeded. */
export const RMP_OK = 0;
/** The call would block: the channel is full, or no sample is waiting. */
export const RMP_WOULD_BLOCK = 1;

export { LIBRARY_ENV } from "./_library_path.ts";

let library: Deno.DynamicLibrary<typeof symbols> | undefined;
let loadedFrom: string | undefined;

/** Options of {@linkcode libraryPath} and {@linkcode nativeLibrary}. */
export interface NativeLibraryOptions {
  /**
   * The Python interpreter whose `remotemedia-multiprocess` package carries
   * the library (step 2 of the lookup). The executor passes its configured
   * `python.executable`.
   *
   * @default {a development checkout's ".venv/bin/python" when it exists, else "python3"}
   */
  python?: string;
}

/**
 * Where the native library is loaded from, in this order: `RMP_ICEORYX2_LIB`
 * when set (without `--allow-env` it counts as unset); else the library
 * carried by the `remotemedia-multiprocess` package of the configured Python
 * (`python -m remotemedia_multiprocess --native-lib`; asked once per
 * interpreter and cached); else, in a development checkout only, its build
 * `ffi/target/release/librmp_iceoryx2.so`. Once the library is loaded, the
 * path it was loaded from.
 *
 * @param options The Python interpreter to ask.
 * @returns The path.
 * @throws {NativeLibraryError} when no step finds a library; the message
 * says what each step found and what to do.
 *
 * @example
 * ```ts
 * import { libraryPath } from "@remotemedia/multiprocess/native";
 * console.log(libraryPath().endsWith(".so"));
 * ```
 */
export function libraryPath(options: NativeLibraryOptions = {}): string {
  return loadedFrom ?? findLibrary(options).path;
}

/**
 * {@linkcode nativeLibrary} without blocking the event loop while the
 * lookup asks Python where the library is (a Python start, 100 ms and more
 * on a busy machine; once per program).
 *
 * @param options The Python interpreter to ask.
 * @returns The symbols.
 * @throws The errors of {@linkcode nativeLibrary}.
 *
 * @example
 * ```ts
 * import { loadNativeLibrary } from "@remotemedia/multiprocess/native";
 * console.log((await loadNativeLibrary()).rmp_abi_version()); // 1
 * ```
 */
export async function loadNativeLibrary(
  options: NativeLibraryOptions = {},
): Promise<NativeSymbols> {
  if (!library) await prepareLookup(options);
  return nativeLibrary(options);
}

/**
 * The native library's symbols, loading the library on first use (from
 * {@linkcode libraryPath}; later calls return the loaded library whatever
 * their options).
 *
 * @param options The Python interpreter to ask.
 * @returns The symbols.
 * @throws {NativeLibraryError} when no library is found or it cannot load;
 * the message names the path tried and what to do.
 * @throws {MissingPermissionError} without `--allow-read` for the library's
 * path or without `--allow-ffi`.
 *
 * @example
 * ```ts
 * import { nativeLibrary } from "@remotemedia/multiprocess/native";
 * console.log(nativeLibrary().rmp_abi_version()); // 1
 * ```
 */
export function nativeLibrary(
  options: NativeLibraryOptions = {},
): NativeSymbols {
  if (library) return library.symbols;
  const { path, step } = findLibrary(options);
  const fix = {
    env: `set ${LIBRARY_ENV} to a library built from this version, or unset it`,
    python:
      `install the ${PYTHON_PACKAGE} version that matches this module into the configured Python, or set ${LIBRARY_ENV}`,
    checkout: "rebuild it with `deno task setup`",
  }[step];
  try {
    Deno.statSync(path);
  } catch (cause) {
    throw missingPermission(
      cause,
      `Cannot check the native iceoryx2 library "${path}"`,
    ) ?? new NativeLibraryError(
      `The native iceoryx2 library ${path} does not exist: ${fix}`,
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
      }; ${fix}`,
      { cause },
    );
  }
  const abi = library.symbols.rmp_abi_version();
  if (abi !== ABI_VERSION) {
    library.close();
    library = undefined;
    throw new NativeLibraryError(
      `The native library at ${path} has ABI ${abi}, expected ${ABI_VERSION}: ${fix}`,
    );
  }
  loadedFrom = path;
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
