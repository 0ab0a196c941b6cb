/**
 * Where the native library `librmp_iceoryx2` is loaded from, in this order:
 * 1. `RMP_ICEORYX2_LIB`, when set (and `--allow-env` granted);
 * 2. the library carried by the `remotemedia-multiprocess` package of the
 *    configured Python (asked once per interpreter, then cached);
 * 3. the development build of a checkout (`ffi/target/release/`).
 *
 * @module
 */

import { missingPermission, NativeLibraryError } from "../errors.ts";
import { readEnv } from "./_env.ts";
import { checkoutLibrary, checkoutPython } from "./_checkout.ts";

/** The environment variable that overrides where the library is loaded from. */
export const LIBRARY_ENV = "RMP_ICEORYX2_LIB";

/** The pip package that carries the library. */
export const PYTHON_PACKAGE = "remotemedia-multiprocess";

/**
 * Asks the package where its library is without importing the package
 * itself (its `__init__` loads numpy and iceoryx2): finds it, loads its
 * stdlib-only `_native_lib.py` by path and calls `library_path()`.
 * Prints the path, or nothing when the package has no library (a checkout's
 * editable install); exits 3 when the package is not installed.
 */
const PROBE = [
  "import importlib.util as u, sys",
  "s = u.find_spec('remotemedia_multiprocess')",
  "sys.exit(3) if s is None or not s.submodule_search_locations else None",
  "f = u.spec_from_file_location('_rmp_native_lib', s.submodule_search_locations[0] + '/_native_lib.py')",
  "m = u.module_from_spec(f); f.loader.exec_module(m)",
  "p = m.library_path()",
  "print(p or '')",
].join("\n");

/** What one step of the lookup found. */
export interface LookupStep {
  /** Which step: `env`, `python` or `checkout`. */
  step: "env" | "python" | "checkout";
  /** The library's path, when this step gave one. */
  path?: string;
  /** Why this step gave none, for the error message. */
  reason?: string;
}

/** Options of {@linkcode findLibrary}. */
export interface FindLibraryOptions {
  /**
   * The Python interpreter whose `remotemedia-multiprocess` package is asked.
   *
   * @default {a checkout's ".venv/bin/python" when it exists, else "python3"}
   */
  python?: string;
}

const asked = new Map<string, LookupStep>();

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (cause) {
    // Without --allow-read the path cannot be checked: say so, not "missing".
    const denied = missingPermission(
      cause,
      `Cannot check the native iceoryx2 library "${path}"`,
    );
    if (denied) throw denied;
    return false;
  }
}

/**
 * Step 2: the library of the package installed in `python`'s environment.
 * Asked once per interpreter; the answer (found or not) is cached.
 */
function fromPython(python: string): LookupStep {
  const known = asked.get(python);
  if (known) return known;
  let output: Deno.CommandOutput;
  try {
    output = probeCommand(python).outputSync();
  } catch (cause) {
    return failedProbe(python, cause);
  }
  return probed(python, output);
}

/**
 * Asks `python` (step 2) without blocking the event loop and caches the
 * answer, so that a lookup right after finds it: the probe starts a Python
 * interpreter, 100 ms and more on a busy machine, which the synchronous
 * lookup spent blocking every timer and socket of the program.
 *
 * @param python The interpreter to ask.
 * @returns When the answer is cached (or could not be, see `fromPython`).
 *
 * @example
 * ```ts ignore
 * import { askPython, findLibrary } from "./data/_library_path.ts";
 * await askPython("python3");
 * console.log(findLibrary({ python: "python3" }).path); // no process started
 * ```
 */
export async function askPython(python: string): Promise<void> {
  if (asked.has(python)) return;
  let output: Deno.CommandOutput;
  try {
    output = await probeCommand(python).output();
  } catch (cause) {
    failedProbe(python, cause);
    return;
  }
  if (!asked.has(python)) probed(python, output);
}

/**
 * Runs the slow step of {@linkcode lookupLibrary} (asking Python) without
 * blocking the event loop, when the lookup would run it: the lookup that
 * follows then finds the answer cached.
 *
 * @param options The Python interpreter to ask.
 * @returns When the lookup will not start a process.
 */
export async function prepareLookup(
  options: FindLibraryOptions = {},
): Promise<void> {
  if (readEnv(LIBRARY_ENV)) return;
  await askPython(options.python ?? checkoutPython() ?? "python3");
}

function probeCommand(python: string): Deno.Command {
  return new Deno.Command(python, {
    args: ["-c", PROBE],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** The step when `python` could not be started (cached unless a permission is missing). */
function failedProbe(python: string, cause: unknown): LookupStep {
  if (cause instanceof Deno.errors.NotCapable) {
    // Not cached: the program may be granted --allow-run later.
    return {
      step: "python",
      reason: `${python} was not asked (no --allow-run for it)`,
    };
  }
  const step: LookupStep = {
    step: "python",
    reason: `${python} cannot run (${
      cause instanceof Deno.errors.NotFound
        ? "not found"
        : (cause as Error).message
    }); set the Python executable (python.executable) to an interpreter that has the ${PYTHON_PACKAGE} package`,
  };
  asked.set(python, step);
  return step;
}

/** The step from the probe's `output` (cached). */
function probed(python: string, output: Deno.CommandOutput): LookupStep {
  let step: LookupStep;
  const path = new TextDecoder().decode(output.stdout).trim();
  if (output.code === 3) {
    step = {
      step: "python",
      reason:
        `the Python ${python} has no ${PYTHON_PACKAGE} package: install it with \`${python} -m pip install ${PYTHON_PACKAGE}\``,
    };
  } else if (!output.success) {
    step = {
      step: "python",
      reason:
        `asking the ${PYTHON_PACKAGE} package of ${python} failed (exit ${output.code}): ${
          new TextDecoder().decode(output.stderr).trim().slice(-500)
        }`,
    };
  } else if (path === "") {
    step = {
      step: "python",
      reason:
        `the ${PYTHON_PACKAGE} package of ${python} carries no native library (an editable or source install): reinstall it from a wheel with \`${python} -m pip install --force-reinstall ${PYTHON_PACKAGE}\``,
    };
  } else {
    step = { step: "python", path };
  }
  asked.set(python, step);
  return step;
}

/**
 * Goes through the lookup order and returns every step tried, the last one
 * with the path when one was found.
 *
 * @param options The Python interpreter to ask.
 * @returns The steps tried, in order.
 * @throws {MissingPermissionError} without `--allow-read` for a path it
 * must check.
 *
 * @example
 * ```ts ignore
 * import { lookupLibrary } from "./data/_library_path.ts";
 * console.log(lookupLibrary().at(-1)?.path);
 * ```
 */
export function lookupLibrary(options: FindLibraryOptions = {}): LookupStep[] {
  const steps: LookupStep[] = [];
  const override = readEnv(LIBRARY_ENV);
  if (override) {
    // An explicit choice is final, even when the file is missing: the
    // error then names it rather than loading something else.
    steps.push({ step: "env", path: override });
    return steps;
  }
  steps.push({ step: "env", reason: `${LIBRARY_ENV} is not set` });
  const python = options.python ?? checkoutPython() ?? "python3";
  const fromPackage = fromPython(python);
  steps.push(fromPackage);
  if (fromPackage.path !== undefined) return steps;
  const dev = checkoutLibrary();
  if (dev === undefined) {
    steps.push({
      step: "checkout",
      reason: "this copy of the module is not a development checkout",
    });
  } else if (exists(dev)) {
    steps.push({ step: "checkout", path: dev });
  } else {
    steps.push({
      step: "checkout",
      reason:
        `the checkout's build ${dev} does not exist: build it with \`deno task setup\``,
    });
  }
  return steps;
}

/**
 * The path of the native library to load, by the lookup order of this
 * module.
 *
 * @param options The Python interpreter to ask.
 * @returns The step that found it, with the path (which exists, except
 * when `RMP_ICEORYX2_LIB` names it).
 * @throws {NativeLibraryError} when no step gave a library; the message
 * says what each step found and what to do.
 *
 * @example
 * ```ts ignore
 * import { findLibrary } from "./data/_library_path.ts";
 * console.log(findLibrary({ python: "python3" }).path);
 * ```
 */
export function findLibrary(
  options: FindLibraryOptions = {},
): LookupStep & { path: string } {
  const steps = lookupLibrary(options);
  const found = steps.at(-1)!;
  if (found.path !== undefined) return found as LookupStep & { path: string };
  throw new NativeLibraryError(
    `No native iceoryx2 library (librmp_iceoryx2) was found: ${
      steps.map((s, i) => `(${i + 1}) ${s.reason}`).join("; ")
    }. Install ${PYTHON_PACKAGE} into the configured Python, or set ${LIBRARY_ENV} to the library's path`,
  );
}
