/**
 * The entry point: a {@linkcode MultiprocessExecutor} holds the runtime
 * configuration and creates {@linkcode Session}s, one Python process per
 * pipeline node.
 *
 * @module
 */
import {
  loadConfig,
  resolveConfig,
  type RuntimeConfig,
  type RuntimeConfigOptions,
} from "./config.ts";
import {
  type ModuleImportFailure,
  MultiprocessError,
  NodeModuleError,
  PipelineValidationError,
  ProcessSpawnError,
  ResourceLimitError,
} from "./errors.ts";
import type { NodeTypeInfo, Pipeline } from "./pipeline.ts";
import { Session, type SessionOptions } from "./session.ts";

/** Options of {@linkcode MultiprocessExecutor.listNodeTypes}. */
export interface ListNodeTypesOptions {
  /**
   * Python modules that register node types.
   * @default {[]}
   */
  modules?: string[];
  /**
   * Folders to import them from.
   * @default {[]}
   */
  modulePaths?: string[];
}

/** What the runner reported for a set of modules. */
export interface NodeTypeListing {
  /** Every registered type with its ports. */
  types: Map<string, NodeTypeInfo>;
  /** Modules that failed to import, with the error and where. */
  errors: ModuleImportFailure[];
  /** The module folders searched (absolute), before the Python path. */
  modulePaths: string[];
  /** Those of `modulePaths` that do not exist. */
  missingPaths: string[];
}

/** The runner's wording (runner.py `_folders_text`), so both sides say the same. */
function foldersText(listing: NodeTypeListing): string {
  if (!listing.modulePaths.length) {
    return "No module folders were given, so only the Python path was searched.";
  }
  const shown = listing.modulePaths.map((p) =>
    listing.missingPaths.includes(p) ? `${p} (does not exist)` : p
  );
  return `Module folders searched: ${shown.join(", ")}, then the Python path.`;
}

/** The message of a {@linkcode NodeModuleError} (runner.py `describe_import_errors`). */
function importErrorsText(listing: NodeTypeListing): string {
  const detail = (f: ModuleImportFailure) =>
    f.notFound
      ? `${f.error} (not found in the module folders or on the Python path)`
      : f.location
      ? `${f.error} (at ${f.location})`
      : f.error;
  const names = listing.errors.map((f) => `"${f.module}"`).join(", ");
  const head = listing.errors.length === 1
    ? `Cannot import node module ${names}: ${detail(listing.errors[0])}`
    : `Cannot import node modules ${names}:` +
      listing.errors.map((f) => `\n  ${f.module}: ${detail(f)}`).join("");
  return `${head}\n${foldersText(listing)}`;
}

const MODULE_PYTHON_DIR = new URL("../python/", import.meta.url).pathname;

/**
 * Creates sessions that run pipelines, one Python process per node.
 *
 * @example Run a one-node pipeline
 * ```ts ignore
 * import { MultiprocessExecutor, Pipeline, text } from "@remotemedia/multiprocess";
 * const executor = new MultiprocessExecutor({ channelCapacity: 4 });
 * const pipeline = new Pipeline()
 *   .addNode("echo", "e")
 *   .addInput("in", "e", "in")
 *   .addOutput("out", "e", "out");
 * await using session = await executor.createSession(pipeline, {
 *   modules: ["demo_nodes"],
 *   modulePaths: ["./examples/nodes"],
 *   onProgress: (p) => console.log(p.nodeId, p.phase, p.fraction),
 * });
 * await session.initialize();
 * await session.send("in", text("hello"));
 * for await (const sample of session.receive("out")) {
 *   console.log(sample.data);
 *   break;
 * }
 * ```
 */
export class MultiprocessExecutor implements AsyncDisposable {
  /** The resolved configuration. */
  readonly config: RuntimeConfig;
  readonly #sessions = new Set<Session>();
  readonly #typeCache = new Map<string, Promise<NodeTypeListing>>();

  /**
   * Creates an executor.
   *
   * @param config Options in code (validated; merged over the defaults).
   * Use {@linkcode MultiprocessExecutor.fromConfigFile} to read runtime.toml.
   * @throws {ConfigError} when an option is invalid.
   */
  constructor(config: RuntimeConfigOptions | RuntimeConfig = {}) {
    this.config = resolveConfig(undefined, config as RuntimeConfigOptions);
  }

  /**
   * An executor configured by a runtime.toml file, merged with defaults and
   * then with `overrides`.
   *
   * @param path The TOML file.
   * @param overrides Options in code, which win over the file.
   * @returns The executor.
   * @throws {ConfigError} naming the key and the file.
   *
   * @example
   * ```ts ignore
   * const executor = await MultiprocessExecutor.fromConfigFile("runtime.toml");
   * ```
   */
  static async fromConfigFile(
    path: string | URL,
    overrides: RuntimeConfigOptions = {},
  ): Promise<MultiprocessExecutor> {
    const config = await loadConfig(path, overrides);
    return new MultiprocessExecutor(config);
  }

  /** Sessions not yet closed. */
  get sessions(): readonly Session[] {
    return [...this.#sessions];
  }

  #pythonPath(modulePaths: string[]): string[] {
    return [
      MODULE_PYTHON_DIR,
      ...modulePaths,
      ...this.config.python.extraPaths,
    ];
  }

  #checkPython(): void {
    const { executable, venvPath } = this.config.python;
    if (venvPath) {
      try {
        Deno.statSync(venvPath);
      } catch (cause) {
        throw new ProcessSpawnError(
          `the Python venv ${venvPath} does not exist (run \`deno task setup\`)`,
          {
            path: venvPath,
            cause,
          },
        );
      }
    }
    if (executable.includes("/")) {
      try {
        Deno.statSync(executable);
      } catch (cause) {
        throw new ProcessSpawnError(
          `the Python executable ${executable} does not exist`,
          { path: executable, cause },
        );
      }
    }
  }

  /**
   * The node types the runner can import from the given modules (cached per
   * module set). Spawns one short-lived Python process.
   *
   * @param options Modules and folders.
   * @returns Types with their ports, the modules that failed to import (with
   * the error and where), and the folders searched (and which do not exist).
   * @throws {ProcessSpawnError} when Python cannot run.
   *
   * @example
   * ```ts ignore
   * const { types } = await executor.listNodeTypes({ modules: ["demo_nodes"], modulePaths: ["examples/nodes"] });
   * ```
   */
  listNodeTypes(options: ListNodeTypesOptions = {}): Promise<NodeTypeListing> {
    const modules = options.modules ?? [];
    const modulePaths = options.modulePaths ?? [];
    const key = JSON.stringify([modules, modulePaths]);
    let listing = this.#typeCache.get(key);
    if (!listing) {
      listing = this.#listNodeTypes(modules, modulePaths);
      this.#typeCache.set(key, listing);
      // A failed import is not kept: the user may fix the module and retry.
      listing.then(
        (l) => l.errors.length && this.#typeCache.delete(key),
        () => this.#typeCache.delete(key),
      );
    }
    return listing;
  }

  async #listNodeTypes(
    modules: string[],
    modulePaths: string[],
  ): Promise<NodeTypeListing> {
    this.#checkPython();
    const { executable } = this.config.python;
    const args = ["-m", "remotemedia_multiprocess.runner", "--list-types"];
    for (const p of modulePaths) args.push("--module-path", p);
    for (const m of modules) args.push("--module", m);
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(executable, {
        args,
        env: {
          ...this.config.python.env,
          PYTHONPATH: [
            ...this.#pythonPath(modulePaths),
            Deno.env.get("PYTHONPATH") ?? "",
          ].filter(Boolean).join(":"),
        },
        stdin: "null",
        signal: AbortSignal.timeout(30_000),
      }).output();
    } catch (cause) {
      throw new ProcessSpawnError(
        `cannot run the Python runner with ${executable}: ${
          cause instanceof Deno.errors.NotFound
            ? "not found"
            : (cause as Error).message
        }`,
        { path: executable, cause },
      );
    }
    const stdout = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      throw new ProcessSpawnError(
        `the Python runner (${executable}) failed to list node types (exit ${output.code}): ${
          new TextDecoder().decode(output.stderr).trim().slice(-2000)
        }`,
        { path: executable },
      );
    }
    try {
      const parsed = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
      const errors = (parsed.errors ?? []) as Record<string, unknown>[];
      return {
        types: new Map(
          Object.entries(parsed.types as Record<string, NodeTypeInfo>),
        ),
        errors: errors.map((e) => ({
          module: String(e.module),
          error: String(e.error),
          notFound: e.not_found === true,
          location: typeof e.location === "string" ? e.location : undefined,
          traceback: typeof e.traceback === "string" ? e.traceback : "",
        })),
        // An older runner does not report folders: say nothing wrong then.
        modulePaths: parsed.module_paths ?? modulePaths,
        missingPaths: parsed.missing_paths ?? [],
      };
    } catch (cause) {
      throw new MultiprocessError(
        `the runner's node type listing is not JSON: ${stdout.slice(0, 500)}`,
        { cause },
      );
    }
  }

  /**
   * Validates the pipeline (including that the runner can import every node
   * type), then spawns every node process at once. Call
   * `session.initialize()` to wait until every node is ready.
   *
   * @param pipeline The pipeline.
   * @param options Progress callback, abort signal, node modules.
   * @returns The session.
   * @throws {NodeModuleError} when any of `options.modules` fails to import,
   * naming each module, its error and the folders searched (nothing spawned).
   * @throws {PipelineValidationError} for an invalid pipeline (nothing
   * spawned); an `unknown_node_type` one also names the modules imported and
   * the folders searched, and says when no modules were given.
   * @throws {ResourceLimitError} when the pipeline needs more processes than allowed.
   * @throws {ProcessSpawnError} when Python is missing.
   *
   * @example
   * ```ts ignore
   * const session = await executor.createSession(pipeline, { onProgress: console.log });
   * ```
   */
  async createSession(
    pipeline: Pipeline,
    options: SessionOptions = {},
  ): Promise<Session> {
    options.signal?.throwIfAborted();
    const nodeCount = pipeline.toJSON().nodes.length;
    const limit = this.config.maxProcessesPerSession;
    if (limit !== undefined && nodeCount > limit) {
      throw new ResourceLimitError(
        `the pipeline needs ${nodeCount} processes but max_processes_per_session is ${limit}`,
        { limit, requested: nodeCount },
      );
    }
    const listing = await this.listNodeTypes(options);
    if (listing.errors.length) {
      // Fails even when the types needed were found: a module that failed
      // half-way may have registered some of its types only.
      const unknown = [
        ...new Set(
          pipeline.toJSON().nodes.map((n) => n.type).filter((t) =>
            !listing.types.has(t)
          ),
        ),
      ].map((t) => `\nNode type "${t}" is not registered.`).join("");
      throw new NodeModuleError(importErrorsText(listing) + unknown, {
        failures: listing.errors,
        modulePaths: listing.modulePaths,
        missingPaths: listing.missingPaths,
      });
    }
    try {
      pipeline.validate({ registry: listing.types });
    } catch (e) {
      if (
        e instanceof PipelineValidationError && e.code === "unknown_node_type"
      ) {
        const modules = options.modules ?? [];
        const where = modules.length
          ? `Imported modules: ${modules.join(", ")}.`
          : "No node modules were given: list the modules that register your node types in `modules`.";
        throw new PipelineValidationError(
          "unknown_node_type",
          `${e.message.replace(/^unknown_node_type: /, "")}. ${where} ${
            foldersText(listing)
          }`,
          { cause: e, nodeId: e.nodeId },
        );
      }
      throw e;
    }
    const session = new Session(crypto.randomUUID().replaceAll("-", ""), {
      pipeline,
      config: this.config,
      options,
      pythonPathEntries: this.#pythonPath(options.modulePaths ?? []),
    });
    this.#sessions.add(session);
    session.addEventListener("closed", () => this.#sessions.delete(session));
    await session.start(this.#pythonPath(options.modulePaths ?? []));
    return session;
  }

  /**
   * Closes every open session.
   *
   * @example
   * ```ts ignore
   * await executor.close();
   * ```
   */
  async close(): Promise<void> {
    await Promise.all([...this.#sessions].map((s) => s.close()));
  }

  /** Same as {@linkcode MultiprocessExecutor.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
