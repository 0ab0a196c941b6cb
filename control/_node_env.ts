/**
 * The environment of node processes (runners, the fork server, the node type
 * listing): only what the runtime needs plus what the config passes, never
 * the whole Deno environment (docs/config.md, "Node environment").
 *
 * @module
 */
import { readEnv } from "../data/_env.ts";

/**
 * The variables a node process inherits from this program, when set: `PATH`
 * (a node may run tools, e.g. ffmpeg), `HOME` (model caches under `~/.cache`,
 * the user's site-packages), the locale (`LANG`, `LC_ALL`, `LC_CTYPE`: text
 * decoding), `TZ` and `TMPDIR`. Anything else (tokens, keys) reaches a node
 * only through `python.env`.
 */
export const INHERITED_ENV: readonly string[] = [
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
];

/**
 * The inherited part of a node process's environment
 * ({@linkcode INHERITED_ENV}, those set and readable), plus
 * `PYTHONSAFEPATH=1` so that the working folder is not on a node's
 * `sys.path` (Python >= 3.11): node code comes only from the configured
 * folders; and `PYTHONDONTWRITEBYTECODE=1`, so that no stale bytecode
 * cache of a node module can shadow its source. Callers spread `python.env` and the runtime's own variables over
 * it and spawn with `clearEnv: true`.
 *
 * @returns The variables.
 */
export function nodeBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = readEnv(name);
    if (value !== undefined) env[name] = value;
  }
  env.PYTHONSAFEPATH = "1";
  // No bytecode cache is written for node modules: Python checks a .pyc only
  // by the source's mtime in seconds and its size, so an edit within the same
  // second that kept the size ran the old code (seen in the prewarm test).
  env.PYTHONDONTWRITEBYTECODE = "1";
  return env;
}
