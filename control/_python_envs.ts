/**
 * Per-node Python environments: which interpreter runs a node
 * (`env = "<name>"` on the node, `[multiprocess.python.envs.<name>]` in
 * runtime.toml), the check that every name is configured, the listing script
 * that refuses an environment with another iceoryx2, and the per-environment
 * type listing in errors.
 *
 * @module
 */
import { PipelineValidationError } from "../errors.ts";
import type { Pipeline } from "../pipeline/mod.ts";
import { ICEORYX2_VERSION } from "../protocol/contracts.ts";
import type { RuntimeConfig } from "./config.ts";

/** The name errors use for `[multiprocess.python]`. */
export const DEFAULT_ENV_NAME = "default";

/**
 * The interpreter and venv of environment `env` (undefined: the default).
 * The name must be configured ({@linkcode checkEnvNames}).
 */
export function envPython(
  config: RuntimeConfig,
  env: string | undefined,
): { executable: string; venvPath: string | undefined } {
  if (env === undefined) return config.python;
  const e = Object.hasOwn(config.python.envs, env)
    ? config.python.envs[env]
    : undefined;
  if (!e) throw new RangeError(`No Python environment "${env}" is configured`);
  return e;
}

/**
 * The environments the pipeline's nodes use, the default one as undefined
 * (only the default one for a pipeline without nodes).
 */
export function usedEnvs(pipeline: Pipeline): (string | undefined)[] {
  const envs = [...new Set(pipeline.toJSON().nodes.map((n) => n.env))];
  return envs.length ? envs : [undefined];
}

/**
 * Throws `unknown_env` for the first node whose environment is not configured.
 */
export function checkEnvNames(pipeline: Pipeline, config: RuntimeConfig): void {
  const known = Object.keys(config.python.envs);
  for (const n of pipeline.toJSON().nodes) {
    if (n.env === undefined || Object.hasOwn(config.python.envs, n.env)) {
      continue;
    }
    throw new PipelineValidationError(
      "unknown_env",
      `Node "${n.id}": Python environment "${n.env}" is not configured (configured: ${
        known.length ? known.join(", ") : "none"
      }; add [multiprocess.python.envs.${n.env}] with venv or executable to runtime.toml, or python.envs in code)`,
      { nodeId: n.id },
    );
  }
}

/**
 * The script the listing runs with `python -c`: it prints
 * `{"iceoryx2_version": <found or null>}` and stops when the environment's
 * iceoryx2 is not {@linkcode ICEORYX2_VERSION} (before importing it: another
 * version may not even import), else runs the runner's `--list-types`.
 */
export const LIST_TYPES_SCRIPT: string = [
  "import importlib.metadata as m, importlib.util as u, json, sys",
  // Without the SDK the import below fails with "No module named ...", which
  // the executor turns into the pip install advice; say it before iceoryx2.
  "if u.find_spec('remotemedia_multiprocess') is None:",
  "    sys.exit(\"No module named 'remotemedia_multiprocess'\")",
  "try:",
  "    v = m.version('iceoryx2')",
  "except m.PackageNotFoundError:",
  "    v = None",
  `if v != ${JSON.stringify(ICEORYX2_VERSION)}:`,
  "    print(json.dumps({'iceoryx2_version': v}))",
  "    sys.exit(0)",
  "from remotemedia_multiprocess.runner import main",
  "sys.exit(main(sys.argv[1:]))",
].join("\n");

/**
 * The `unknown_node_type` error of a node whose type its environment does not
 * register, listing the types of every environment the pipeline uses.
 */
export function unknownTypeInEnv(
  nodeId: string,
  type: string,
  env: string | undefined,
  typesByEnv: Map<string | undefined, Iterable<string>>,
  where: string,
): PipelineValidationError {
  const name = (e: string | undefined) => e ?? DEFAULT_ENV_NAME;
  const perEnv = [...typesByEnv].map(([e, types]) => {
    const list = [...types].sort();
    return `${name(e)}: ${list.length ? list.join(", ") : "none"}`;
  }).join("; ");
  const elsewhere = [...typesByEnv].filter(([e, types]) =>
    e !== env && [...types].includes(type)
  ).map(([e]) => `"${name(e)}"`);
  const hint = elsewhere.length
    ? ` It is registered in ${
      elsewhere.join(", ")
    }: set the node's env to that.`
    : "";
  return new PipelineValidationError(
    "unknown_node_type",
    `Node "${nodeId}": type "${type}" is not registered in Python environment "${
      name(env)
    }".${hint} Types per environment: ${perEnv}. ${where}`,
    { nodeId },
  );
}
