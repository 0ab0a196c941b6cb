/**
 * Whether this copy of the module is a development checkout, and its paths.
 *
 * The one place that derives file paths from `import.meta.url`. A copy
 * imported from JSR or any other URL, or a published file set on disk (which
 * has neither `ffi/` nor `python/`), is not a checkout: its runners import the
 * SDK from their own Python environment and the native library comes from
 * that environment's `remotemedia-multiprocess` package.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The files that make a folder a checkout of this repository. */
const MARKERS = ["deno.json", "ffi/Cargo.toml", "python/pyproject.toml"];

let cached: { root: string | undefined } | undefined;

/**
 * The root of the development checkout this module runs from (ending in
 * `/`), or `undefined` when it runs from a URL that is not a local file or
 * from a folder that lacks any of `deno.json`, `ffi/Cargo.toml` and
 * `python/pyproject.toml` (or cannot be read). Checked once.
 *
 * @returns The checkout root, if any.
 *
 * @example
 * ```ts ignore
 * import { checkoutRoot } from "./control/_checkout.ts";
 * console.log(checkoutRoot() ?? "not a checkout");
 * ```
 */
export function checkoutRoot(): string | undefined {
  if (cached) return cached.root;
  const url = new URL("../", import.meta.url);
  if (url.protocol !== "file:") return (cached = { root: undefined }).root;
  const path = fileURLToPath(url);
  const found = MARKERS.map((m) => isFile(`${path}${m}`));
  // Without --allow-read the markers cannot be checked: take it for a
  // checkout (not cached), so the next check of one of its files reports
  // the missing permission instead of "not found".
  if (found.includes("denied") && !found.includes(false)) return path;
  const root = found.every((f) => f === true) ? path : undefined;
  cached = { root };
  return root;
}

/**
 * The checkout's `python/` folder (the SDK's source), put first on the
 * runners' `PYTHONPATH` only in a checkout.
 *
 * @returns The folder, ending in `/`, or `undefined` outside a checkout.
 *
 * @example
 * ```ts ignore
 * import { checkoutPythonDir } from "./control/_checkout.ts";
 * console.log(checkoutPythonDir() ?? "the SDK comes from the environment");
 * ```
 */
export function checkoutPythonDir(): string | undefined {
  const root = checkoutRoot();
  return root === undefined ? undefined : `${root}python/`;
}

/**
 * The checkout's development venv interpreter (`.venv/bin/python`, made by
 * `deno task setup`), when in a checkout and it exists.
 *
 * @returns The interpreter's path, or `undefined`.
 *
 * @example
 * ```ts ignore
 * import { checkoutPython } from "./control/_checkout.ts";
 * console.log(checkoutPython() ?? "python3");
 * ```
 */
export function checkoutPython(): string | undefined {
  const root = checkoutRoot();
  if (root === undefined) return undefined;
  const path = `${root}.venv/bin/python`;
  // Denied: keep it, so the check before spawning names the permission.
  return isFile(path) !== false ? path : undefined;
}

/**
 * The checkout's development build of the native library
 * (`ffi/target/release/librmp_iceoryx2.so`, made by `deno task setup`),
 * whether or not it was built yet.
 *
 * @returns The path, or `undefined` outside a checkout.
 *
 * @example
 * ```ts ignore
 * import { checkoutLibrary } from "./control/_checkout.ts";
 * console.log(checkoutLibrary() ?? "not a checkout");
 * ```
 */
export function checkoutLibrary(): string | undefined {
  const root = checkoutRoot();
  if (root === undefined) return undefined;
  const suffix = Deno.build.os === "darwin" ? "dylib" : "so";
  return `${root}ffi/target/release/librmp_iceoryx2.${suffix}`;
}

function isFile(path: string): boolean | "denied" {
  try {
    return Deno.statSync(path).isFile;
  } catch (e) {
    return e instanceof Deno.errors.NotCapable ? "denied" : false;
  }
}
