/**
 * Where a CLI command gets its pipeline, runtime configuration and node
 * modules: the pipeline file (its optional top-level `modules` and
 * `module_paths`, paths relative to the file), `runtime.toml` (its optional
 * `[cli]` table with the same two keys, paths relative to that file; the
 * rest is the runtime configuration) and `--module`/`--module-path` flags.
 *
 * @module
 */
import { parse as parseToml } from "smol-toml";
import { dirname, isAbsolute, resolve } from "node:path";
import { loadDefinition } from "../pipeline/io.ts";
import { Pipeline } from "../pipeline/mod.ts";
import type { PipelineDefinition } from "../pipeline/schema.ts";
import { resolveConfig, type RuntimeConfig } from "../control/config.ts";
import { ConfigError } from "../errors.ts";
import { CliError } from "./_errors.ts";

/** A loaded pipeline file. */
export interface PipelineFile {
  /** The absolute path. */
  path: string;
  /** The definition as written (shape-checked). */
  definition: PipelineDefinition;
  /** The pipeline. */
  pipeline: Pipeline;
  /** Its `modules`. */
  modules: string[];
  /** Its `module_paths`, absolute. */
  modulePaths: string[];
}

function absolute(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

/**
 * Loads a pipeline file (`.toml` or `.json`).
 *
 * @param path The file.
 * @returns The pipeline and the modules it names.
 * @throws {CliError} when the file is missing or has another extension.
 * @throws {PipelineValidationError} for a file that breaks the schema.
 *
 * @example
 * ```ts ignore
 * const { pipeline, modules } = await loadPipelineFile("pipeline.toml");
 * ```
 */
export async function loadPipelineFile(path: string): Promise<PipelineFile> {
  const abs = resolve(path);
  if (!/\.(toml|json)$/i.test(abs)) {
    throw new CliError(
      `Cannot load the pipeline "${path}": its extension must be .toml or .json; rename it or give the right file`,
    );
  }
  try {
    Deno.statSync(abs);
  } catch {
    throw new CliError(
      `Cannot load the pipeline "${path}": the file does not exist; check the path (\`remotemedia new pipeline NAME\` makes one)`,
    );
  }
  const definition = await loadDefinition(abs);
  const base = dirname(abs);
  return {
    path: abs,
    definition,
    pipeline: Pipeline.fromJSON(definition),
    modules: definition.modules ?? [],
    modulePaths: (definition.module_paths ?? []).map((p) => absolute(base, p)),
  };
}

/** A loaded runtime configuration. */
export interface CliConfig {
  /** The resolved configuration. */
  config: RuntimeConfig;
  /** The `[cli]` table's modules. */
  modules: string[];
  /** The `[cli]` table's module paths, absolute. */
  modulePaths: string[];
}

/**
 * Loads `runtime.toml` (or the defaults when `path` is undefined).
 *
 * @param path The file.
 * @returns The configuration and the modules of its `[cli]` table.
 * @throws {ConfigError} naming the key and the file.
 *
 * @example
 * ```ts ignore
 * const { config } = await loadCliConfig("runtime.toml");
 * ```
 */
export async function loadCliConfig(path?: string): Promise<CliConfig> {
  if (path === undefined) {
    return { config: resolveConfig({}), modules: [], modulePaths: [] };
  }
  const abs = resolve(path);
  let text: string;
  try {
    text = await Deno.readTextFile(abs);
  } catch {
    throw new CliError(
      `Cannot read the config file "${path}": it does not exist or is not readable; check the path given to --config`,
    );
  }
  let values: Record<string, unknown>;
  try {
    values = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(
      `invalid TOML: ${(e as Error).message.split("\n")[0]}`,
      { file: abs, cause: e },
    );
  }
  const { cli, ...rest } = values;
  const table = (cli ?? {}) as Record<string, unknown>;
  const list = (key: string): string[] => {
    const v = table[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      throw new CliError(
        `The config file "${path}" has an invalid cli.${key}: it must be an array of strings, e.g. ${key} = ["my_nodes"]`,
      );
    }
    return v as string[];
  };
  const base = dirname(abs);
  return {
    config: resolveConfig(rest, {}, { file: abs }),
    modules: list("modules"),
    modulePaths: list("module_paths").map((p) => absolute(base, p)),
  };
}

/**
 * Every module and folder from all sources, each once, in order: flags,
 * pipeline file, config file.
 *
 * @param sources The lists.
 * @returns Modules and folders.
 *
 * @example
 * ```ts ignore
 * const { modules, modulePaths } = mergeModules([file, config]);
 * ```
 */
export function mergeModules(
  sources: { modules: string[]; modulePaths: string[] }[],
): { modules: string[]; modulePaths: string[] } {
  return {
    modules: [...new Set(sources.flatMap((s) => s.modules))],
    modulePaths: [...new Set(sources.flatMap((s) => s.modulePaths))],
  };
}
