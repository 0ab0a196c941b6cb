/**
 * The entry point: a {@linkcode MultiprocessExecutor} holds the runtime
 * configuration and creates {@linkcode Session}s, one Python process per
 * pipeline node.
 *
 * @module
 */
import {
  loadConfig,
  readEnv,
  resolveConfig,
  type RuntimeConfig,
  type RuntimeConfigOptions,
} from "./config.ts";
import {
  ConfigError,
  Iceoryx2VersionError,
  missingPermission,
  MissingPermissionError,
  type ModuleImportFailure,
  MultiprocessError,
  NodeModuleError,
  PipelineValidationError,
  ProcessSpawnError,
  ResourceLimitError,
} from "../errors.ts";
import { ICEORYX2_VERSION } from "../protocol/contracts.ts";
import { checkHosts } from "./_hosts.ts";
import {
  checkEnvNames,
  DEFAULT_ENV_NAME,
  envPython,
  LIST_TYPES_SCRIPT,
  unknownTypeInEnv,
  usedEnvs,
} from "./_python_envs.ts";
import { removeIsolation } from "../data/isolation.ts";
import { loadNativeLibrary } from "../data/native.ts";
import { PYTHON_PACKAGE } from "../data/_library_path.ts";
import { checkoutPythonDir } from "../data/_checkout.ts";
import type { NodeTypeInfo, Pipeline } from "../pipeline/mod.ts";
import { Session, type SessionOptions } from "./session.ts";
import { Prewarm, type PrewarmOptions } from "./prewarm.ts";
import { ForkServer } from "./fork_server.ts";
import { nodeBaseEnv } from "./_node_env.ts";
import {
  type CachedListing,
  interpreterIdentity,
  type NodeTypeListing,
  readCached,
  sdkSourcesHash,
  sha256Hex,
  stillValid,
  writeCached,
} from "./_type_cache.ts";

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
  /**
   * The Python environment to list in (a name of
   * `[multiprocess.python.envs]`): each environment imports the modules with
   * its own packages, so it may register other types.
   * @default {undefined} the default interpreter
   */
  env?: string;
}

export type { NodeTypeListing } from "./_type_cache.ts";
export { Prewarm, type PrewarmOptions } from "./prewarm.ts";

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

/**
 * Options of the {@linkcode MultiprocessExecutor} constructor: the runtime
 * configuration, and whether the executor handles SIGINT and SIGTERM.
 *
 * @example A program that handles SIGINT itself
 * ```ts
 * import { MultiprocessExecutor } from "@remotemedia/multiprocess";
 * const executor = new MultiprocessExecutor({ handleSignals: false });
 * console.log(executor.handleSignals); // false
 * const onSigint = () => executor.close().then(() => Deno.exit(0));
 * Deno.addSignalListener("SIGINT", onSigint);
 * Deno.removeSignalListener("SIGINT", onSigint); // (this example ends here)
 * ```
 */
export interface MultiprocessExecutorOptions extends RuntimeConfigOptions {
  /**
   * While a session of this executor is open, SIGINT (Ctrl-C) and SIGTERM
   * close every open session of every executor in the program (each node
   * gets a grace of at most 2 s, then SIGKILL; every shared-memory file is
   * removed), then the program exits as the signal would: code 130 for
   * SIGINT, 143 for SIGTERM. A second signal during that clean-up exits at
   * once (after removing what files it can). With no session open, signals
   * behave as they would without this module.
   *
   * Set it to `false` in a program that handles these signals itself; it
   * should then close its sessions (`executor.close()`) before it exits.
   * Not a `runtime.toml` key: whether a program handles signals is decided
   * by its code, not by a deployment.
   *
   * @default {true}
   */
  handleSignals?: boolean;
  /**
   * The folder of the node type cache: what the runner's `--list-types`
   * reported for a set of modules, kept across programs so that a session
   * start spawns no extra Python process. An entry is used only while the
   * interpreter, the SDK sources, the modules, their folders and the Python
   * path are the same and every source file the modules' import read has
   * the same contents (SHA-256); listings with import errors are never
   * kept. `false` keeps the cache in memory only (per executor).
   *
   * @default {"$XDG_CACHE_HOME/remotemedia-multiprocess/node-types", else "~/.cache/remotemedia-multiprocess/node-types"}
   */
  typeCacheDir?: string | false;
  /**
   * Start node runners from a fork server: one Python process per executor,
   * started with its first session, that has imported the SDK (iceoryx2,
   * numpy, the runner) once and forks each runner, which then skips those
   * imports (~0.4 s of CPU per node). A forked runner leads a process group
   * of its own, dies with the server, and the server (which dies with this
   * program) reports its exit, so crash detection is the same. `false`
   * spawns every runner as a new interpreter. If the server cannot start,
   * runners are spawned (and the reason printed once).
   *
   * @default {true}
   */
  forkServer?: boolean;
}

/** The default {@linkcode MultiprocessExecutorOptions.typeCacheDir}. */
function defaultTypeCacheDir(): string | false {
  const xdg = readEnv("XDG_CACHE_HOME");
  const home = readEnv("HOME");
  const base = xdg || (home ? `${home}/.cache` : undefined);
  return base ? `${base}/remotemedia-multiprocess/node-types` : false;
}

/** The pool key of a pipeline and its modules. */
function poolKey(
  pipeline: Pipeline,
  options: { modules?: string[]; modulePaths?: string[] },
): string {
  return JSON.stringify([
    pipeline.toJSON(),
    options.modules ?? [],
    options.modulePaths ?? [],
  ]);
}

/** The exit code of a program ended by the signal, as a shell reports it. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type HandledSignal = keyof typeof SIGNAL_EXIT_CODES;
/** The longest a node may take to exit after a signal before SIGKILL. */
const SIGNAL_GRACE_MS = 2000;
/** Past the grace, how long closing may still take before the program
 * removes what is left and exits anyway. */
const SIGNAL_CLOSE_BOUND_MS = 3000;

interface OpenSession {
  /** The session's own copy of the configuration: a signal shortens its
   * grace period there before closing it. */
  config: RuntimeConfig;
  /** Settles when `start()` has (closing earlier would race it). */
  started: Promise<unknown>;
  /** Whether its executor handles signals. */
  handleSignals: boolean;
}

/** Every open session of every executor: one process-wide signal handler. */
const openSessions = new Map<Session, OpenSession>();
let listening = false;
let signalled: HandledSignal | undefined;
const onSigint = (): void => onSignal("SIGINT");
const onSigterm = (): void => onSignal("SIGTERM");
const ignoreDuringExit = (event: Event): void => event.preventDefault();

/** Listens for SIGINT and SIGTERM exactly while a session that wants it is
 * open (or a signal is being handled), so an idle program's Ctrl-C is the
 * default one. */
function updateSignalListeners(): void {
  const wanted = signalled !== undefined ||
    [...openSessions.values()].some((s) => s.handleSignals);
  if (wanted === listening) return;
  listening = wanted;
  for (
    const [signal, listener] of [
      ["SIGINT", onSigint],
      ["SIGTERM", onSigterm],
    ] as const
  ) {
    try {
      if (wanted) Deno.addSignalListener(signal, listener);
      else Deno.removeSignalListener(signal, listener);
    } catch { /* a signal this platform does not have */ }
  }
}

function onSignal(signal: HandledSignal): void {
  if (signalled !== undefined) return exitNow(signal);
  signalled = signal;
  // Closing rejects the program's pending awaits (SessionClosedError): the
  // program is ending by the signal, so they must not end it first with
  // another exit code and the clean-up half done.
  globalThis.addEventListener("unhandledrejection", ignoreDuringExit);
  globalThis.addEventListener("error", ignoreDuringExit);
  const bound = setTimeout(
    () => exitNow(signal),
    SIGNAL_GRACE_MS + SIGNAL_CLOSE_BOUND_MS,
  );
  closeOpenSessions().finally(() => {
    clearTimeout(bound);
    Deno.exit(SIGNAL_EXIT_CODES[signal]);
  });
}

/** Closes every open session, sessions created meanwhile included. */
async function closeOpenSessions(): Promise<void> {
  while (openSessions.size > 0) {
    await Promise.all(
      [...openSessions].map(async ([session, open]) => {
        await open.started;
        open.config.cleanupGracePeriodSecs = Math.min(
          open.config.cleanupGracePeriodSecs,
          SIGNAL_GRACE_MS / 1000,
        );
        await session.close().catch(() => {});
        openSessions.delete(session);
      }),
    );
  }
}

/** How long a second signal's exit retries removing files, in ms. */
const EXIT_NOW_REMOVE_MS = 1000;

/** Exits at once: kills the node processes it can and removes what files
 * it can of every open session. */
function exitNow(signal: HandledSignal): never {
  for (const session of openSessions.keys()) {
    for (const node of session.status()) {
      if (node.pid === undefined || node.exit) continue;
      try {
        Deno.kill(node.pid, "SIGKILL");
      } catch {
        // Deno.kill needs unscoped --allow-run; the node still exits by
        // itself when its control socket closes with this process.
      }
    }
  }
  // The killed runners hold a shared lock on each isolation until the
  // kernel has ended them: retry for a moment (synchronously: this program
  // exits now), then leave the rest to the next sweep.
  const pending = new Set(openSessions.keys());
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + EXIT_NOW_REMOVE_MS;
  while (pending.size > 0) {
    for (const session of pending) {
      try {
        if (removeIsolation(session.isolation)) pending.delete(session);
      } catch {
        pending.delete(session); // not started far enough to have files
      }
    }
    if (pending.size === 0 || performance.now() > deadline) break;
    Atomics.wait(pause, 0, 0, 10);
  }
  Deno.exit(SIGNAL_EXIT_CODES[signal]);
}

/**
 * Throws unless the program may list `/dev/shm` and stat other processes'
 * `/proc` entries, which Deno 2.9 allows only with `--allow-all`
 * (denoland/deno#30979). A session needs both: the first to remove its
 * shared memory, the second to tell a dead program's files from a live
 * one's. Without it the sweep of stale files takes every other program's
 * session for stale and deletes its files, so no session may start.
 */
function checkFullAccess(): void {
  for (const path of ["/dev/shm", "/proc/1"]) {
    try {
      Deno.statSync(path);
    } catch (e) {
      // Not there, or refused by the OS: nothing a Deno flag changes.
      const missing = missingPermission(
        e,
        "Cannot create a session, which lists /dev/shm and reads /proc to clean up shared memory",
        "all",
      );
      if (missing) throw missing;
    }
  }
}

/** Checks that `path` exists, naming a missing permission as such. */
function checkExists(path: string, what: string, missing: string): void {
  try {
    Deno.statSync(path);
  } catch (cause) {
    throw missingPermission(cause, `Cannot check ${what} "${path}"`) ??
      new ProcessSpawnError(
        cause instanceof Deno.errors.NotFound
          ? missing
          : `Cannot check ${what} ${path}: ${(cause as Error).message}`,
        { path, cause },
      );
  }
}

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
  /** Whether SIGINT and SIGTERM close the sessions and exit (see
   * {@linkcode MultiprocessExecutorOptions.handleSignals}). */
  readonly handleSignals: boolean;
  readonly #sessions = new Set<Session>();
  /** Pre-warmed sessions not yet taken (not listed in `sessions`). */
  readonly #spares = new Set<Session>();
  readonly #pools = new Map<string, Prewarm>();
  #closing = false;
  readonly #useForkServer: boolean;
  #forkServer: Promise<ForkServer | undefined> | undefined;
  #forkServerWarned = false;
  /** Listings by cache key (a pending one too, so concurrent callers share it). */
  readonly #typeCache = new Map<string, Promise<CachedListing>>();
  readonly #typeCacheDir: string | false;

  /**
   * Creates an executor.
   *
   * @param config Options in code (validated; merged over the defaults).
   * Use {@linkcode MultiprocessExecutor.fromConfigFile} to read runtime.toml.
   * @throws {ConfigError} when an option is invalid.
   */
  constructor(config: MultiprocessExecutorOptions | RuntimeConfig = {}) {
    const { handleSignals, typeCacheDir, forkServer, ...rest } =
      config as MultiprocessExecutorOptions;
    if (forkServer !== undefined && typeof forkServer !== "boolean") {
      throw new ConfigError("must be a boolean", { key: "forkServer" });
    }
    this.#useForkServer = forkServer ?? true;
    if (
      typeCacheDir !== undefined && typeCacheDir !== false &&
      (typeof typeCacheDir !== "string" || !typeCacheDir)
    ) {
      throw new ConfigError(
        "must be a folder path or false",
        { key: "typeCacheDir" },
      );
    }
    this.#typeCacheDir = typeCacheDir ?? defaultTypeCacheDir();
    if (handleSignals !== undefined && typeof handleSignals !== "boolean") {
      throw new ConfigError(
        `must be a boolean, got ${
          handleSignals === null ? "null" : `a ${typeof handleSignals}`
        }`,
        { key: "handleSignals" },
      );
    }
    this.handleSignals = handleSignals ?? true;
    this.config = resolveConfig(undefined, rest);
  }

  /**
   * An executor configured by a runtime.toml file, merged with defaults and
   * then with `overrides`.
   *
   * @param path The TOML file.
   * @param overrides Options in code, which win over the file (and
   * `handleSignals`).
   * @returns The executor.
   * @throws {ConfigError} naming the key and the file.
   * @throws {MissingPermissionError} without read permission for the file.
   *
   * @example
   * ```ts ignore
   * const executor = await MultiprocessExecutor.fromConfigFile("runtime.toml");
   * ```
   */
  static async fromConfigFile(
    path: string | URL,
    overrides: MultiprocessExecutorOptions = {},
  ): Promise<MultiprocessExecutor> {
    const { handleSignals, typeCacheDir, forkServer, ...rest } = overrides;
    const config = await loadConfig(path, rest);
    return new MultiprocessExecutor({
      ...config,
      handleSignals,
      typeCacheDir,
      forkServer,
    });
  }

  /** Sessions not yet closed. */
  get sessions(): readonly Session[] {
    return [...this.#sessions];
  }

  #pythonPath(modulePaths: string[]): string[] {
    // A checkout puts its own SDK first; elsewhere the runners import the
    // remotemedia-multiprocess package of their Python environment.
    const sdk = checkoutPythonDir();
    return [
      ...(sdk === undefined ? [] : [sdk]),
      ...modulePaths,
      ...this.config.python.extraPaths,
    ];
  }

  #checkPython(env?: string): void {
    const { executable, venvPath } = envPython(this.config, env);
    const of = env === undefined ? "" : ` of Python environment "${env}"`;
    if (venvPath) {
      checkExists(
        venvPath,
        "the Python venv",
        `The Python venv ${venvPath}${of} does not exist: create it with \`python3 -m venv ${venvPath}\` and \`${venvPath}/bin/pip install ${PYTHON_PACKAGE}\` (in a checkout: \`deno task setup${
          env === undefined ? "" : " --examples"
        }\`), or point ${
          env === undefined ? "python.venv_path" : `python.envs.${env}`
        } at one that exists`,
      );
    }
    if (executable.includes("/")) {
      checkExists(
        executable,
        "the Python executable",
        `The Python executable ${executable}${of} does not exist: point ${
          env === undefined ? "python.executable" : `python.envs.${env}`
        } at an installed interpreter`,
      );
    }
  }

  /** The running fork server (started on first use, restarted when it
   * died), or undefined when runners are spawned. */
  #forkServerFor(): Promise<ForkServer | undefined> {
    if (!this.#useForkServer) return Promise.resolve(undefined);
    const current = this.#forkServer;
    if (current) {
      return current.then((server) => {
        if (!server?.dead) return server;
        if (this.#forkServer === current) this.#forkServer = undefined;
        return this.#forkServerFor();
      });
    }
    const { executable, env } = this.config.python;
    const starting = ForkServer.start({
      executable,
      env: {
        ...nodeBaseEnv(),
        ...env,
        PYTHONPATH: [...this.#pythonPath([]), readEnv("PYTHONPATH") ?? ""]
          .filter(Boolean).join(":"),
      },
    }).catch((e: Error) => {
      // A missing permission is the program's to fix: spawning needs it too.
      if (e instanceof MissingPermissionError) {
        if (this.#forkServer === starting) this.#forkServer = undefined;
        throw e;
      }
      if (!this.#forkServerWarned) {
        this.#forkServerWarned = true;
        console.error(
          `The Python fork server did not start, so runners are spawned as new interpreters: ${e.message}`,
        );
      }
      return undefined;
    });
    this.#forkServer = starting;
    return starting;
  }

  /** Throws the error a listing would, without --allow-run for Python (a
   * cached listing runs nothing, so it would come later, worded otherwise). */
  #checkRunPermission(): void {
    const { executable } = this.config.python;
    let state: Deno.PermissionState = "granted";
    try {
      state = Deno.permissions.querySync({ name: "run", command: executable })
        .state;
    } catch { /* not queryable here: the spawn tells */ }
    if (state === "granted") return;
    throw missingPermission(
      new Deno.errors.NotCapable(
        `Requires run access to "${executable}", run again with the --allow-run flag`,
      ),
      `Cannot run the Python runner "${executable}"`,
      "run",
    );
  }

  /** Tracks an open session here and process-wide, until it closes. */
  #track(
    session: Session,
    config: RuntimeConfig,
    started: Promise<void>,
    visible: boolean,
  ): void {
    if (visible) this.#sessions.add(session);
    else this.#spares.add(session);
    openSessions.set(session, {
      config,
      started: started.catch(() => {}),
      handleSignals: this.handleSignals,
    });
    updateSignalListeners();
    session.addEventListener("closed", () => {
      this.#sessions.delete(session);
      this.#spares.delete(session);
      openSessions.delete(session);
      updateSignalListeners();
    }, { once: true });
  }

  /**
   * The node types the runner can import from the given modules. Cached in
   * memory and in {@linkcode MultiprocessExecutorOptions.typeCacheDir},
   * keyed by the interpreter, the SDK sources, the modules, their folders and
   * the Python path, and used only while every source file the modules'
   * import read has the same contents: a hit spawns nothing, a miss spawns
   * one short-lived Python process (`--list-types`). A listing with import
   * errors is never cached (the user may fix the module and retry).
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
  async listNodeTypes(
    options: ListNodeTypesOptions = {},
  ): Promise<NodeTypeListing> {
    return (await this.#typeEntry(options)).listing;
  }

  /** The listing with the files it depends on (see `listNodeTypes`). */
  async #typeEntry(options: ListNodeTypesOptions): Promise<CachedListing> {
    const modules = options.modules ?? [];
    const modulePaths = options.modulePaths ?? [];
    const env = options.env;
    if (env !== undefined && !Object.hasOwn(this.config.python.envs, env)) {
      throw new ConfigError(
        `No Python environment "${env}" is configured (configured: ${
          Object.keys(this.config.python.envs).join(", ") || "none"
        })`,
        { key: `python.envs.${env}` },
      );
    }
    this.#checkPython(env);
    this.#checkRunPermission();
    const key = await this.#typeCacheKey(modules, modulePaths, env);
    const known = this.#typeCache.get(key);
    if (known) {
      const entry = await known.catch(() => undefined);
      if (entry && !entry.listing.errors.length && await stillValid(entry)) {
        return entry;
      }
      if (this.#typeCache.get(key) === known) this.#typeCache.delete(key);
    }
    let pending = this.#typeCache.get(key);
    if (!pending) {
      pending = this.#lookUpTypes(key, modules, modulePaths, env);
      this.#typeCache.set(key, pending);
      pending.then(
        (e) => e.listing.errors.length && this.#typeCache.delete(key),
        () => this.#typeCache.delete(key),
      );
    }
    return await pending;
  }

  /** The cache key of a module set (see `typeCacheDir`). */
  async #typeCacheKey(
    modules: string[],
    modulePaths: string[],
    env: string | undefined,
  ): Promise<string> {
    const cwd = (() => {
      try {
        return Deno.cwd();
      } catch {
        return "";
      }
    })();
    return await sha256Hex(JSON.stringify([
      env ?? null,
      interpreterIdentity(envPython(this.config, env).executable),
      this.config.python.env,
      await sdkSourcesHash(),
      modules,
      modulePaths,
      cwd, // relative module folders resolve against it
      this.#pythonPath(modulePaths),
      readEnv("PYTHONPATH") ?? "",
    ]));
  }

  /** The disk cache's entry when still valid, else a fresh listing. */
  async #lookUpTypes(
    key: string,
    modules: string[],
    modulePaths: string[],
    env: string | undefined,
  ): Promise<CachedListing> {
    const dir = this.#typeCacheDir;
    if (dir) {
      const cached = await readCached(dir, key);
      if (cached && await stillValid(cached)) return cached;
    }
    const fresh = await this.#listNodeTypes(modules, modulePaths, env);
    if (dir && !fresh.listing.errors.length) {
      await writeCached(dir, key, fresh);
    }
    return fresh;
  }

  async #listNodeTypes(
    modules: string[],
    modulePaths: string[],
    env: string | undefined,
  ): Promise<CachedListing> {
    const { executable } = envPython(this.config, env);
    // The script checks the environment's iceoryx2 first (LIST_TYPES_SCRIPT).
    const args = ["-c", LIST_TYPES_SCRIPT, "--list-types"];
    for (const p of modulePaths) args.push("--module-path", p);
    for (const m of modules) args.push("--module", m);
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(executable, {
        args,
        env: {
          ...nodeBaseEnv(),
          ...this.config.python.env,
          PYTHONPATH: [
            ...this.#pythonPath(modulePaths),
            readEnv("PYTHONPATH") ?? "",
          ].filter(Boolean).join(":"),
        },
        // The node modules' import runs here: the environment of a node.
        clearEnv: true,
        stdin: "null",
        signal: AbortSignal.timeout(30_000),
      }).output();
    } catch (cause) {
      throw missingPermission(
        cause,
        `Cannot run the Python runner "${executable}"`,
      ) ?? new ProcessSpawnError(
        `Cannot run the Python runner with ${executable}: ${
          cause instanceof Deno.errors.NotFound
            ? "not found"
            : (cause as Error).message
        }`,
        { path: executable, cause },
      );
    }
    const stdout = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      const stderr = new TextDecoder().decode(output.stderr);
      if (/No module named '?remotemedia_multiprocess/.test(stderr)) {
        throw new ProcessSpawnError(
          `The Python ${executable} has no ${PYTHON_PACKAGE} package, so it cannot run nodes: install it with \`${executable} -m pip install ${PYTHON_PACKAGE}\`, or set python.executable (or python.venv_path) to an environment that has it`,
          { path: executable },
        );
      }
      throw new ProcessSpawnError(
        `The Python runner (${executable}) failed to list node types (exit ${output.code}): ${
          new TextDecoder().decode(output.stderr).trim().slice(-2000)
        }`,
        { path: executable },
      );
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
    } catch (cause) {
      throw new MultiprocessError(
        `The runner's node type listing is not JSON: ${stdout.slice(0, 500)}`,
        { cause },
      );
    }
    if ("iceoryx2_version" in parsed && !("types" in parsed)) {
      throw new Iceoryx2VersionError({
        env: env ?? DEFAULT_ENV_NAME,
        executable,
        found: typeof parsed.iceoryx2_version === "string"
          ? parsed.iceoryx2_version
          : null,
        wanted: ICEORYX2_VERSION,
      });
    }
    try {
      const errors = (parsed.errors ?? []) as Record<string, unknown>[];
      const listing: NodeTypeListing = {
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
        modulePaths: (parsed.module_paths as string[] | undefined) ??
          modulePaths,
        missingPaths: (parsed.missing_paths as string[] | undefined) ?? [],
      };
      return {
        listing,
        files: (parsed.files as Record<string, string> | undefined) ?? {},
      };
    } catch (cause) {
      throw new MultiprocessError(
        `The runner's node type listing is not JSON: ${stdout.slice(0, 500)}`,
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
   * @throws {MissingPermissionError} when the program lacks a Deno permission
   * the session needs (the message names the flag).
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
    const pool = this.#pools.get(poolKey(pipeline, options));
    const spare = pool && await pool.take();
    if (spare) {
      options.signal?.throwIfAborted();
      this.#sessions.add(spare);
      spare.adopt(options);
      return spare;
    }
    this.#warmForkServer();
    await this.#validate(pipeline, options);
    return await this.#start(pipeline, options, true);
  }

  /** Starts the fork server (if it is used and not running) while the
   * pipeline is validated, so its imports overlap the listing. */
  #warmForkServer(): void {
    try {
      this.#checkPython();
    } catch {
      return; // validation reports it
    }
    this.#forkServerFor().catch(() => {}); // the session start reports it
  }

  /**
   * Keeps `options.sessions` sessions of `pipeline` spawned and initialised
   * (every node's `initialize()` has returned, models loaded) in the
   * background: a `createSession` of the same pipeline with the same
   * `modules` and `modulePaths` then takes a ready spare (its
   * `initialize()` resolves at once; its `onProgress` hears one `ready` event
   * per node) and the pool starts a replacement. Spares are cleaned up as any
   * session is (`executor.close()`, SIGINT/SIGTERM, the program's death); a
   * spare that fails is reported (`onError`, `error` events, else stderr).
   * Without a ready spare, `createSession` starts cold as usual.
   *
   * @param pipeline The pipeline.
   * @param options How many spares, the node modules, error reporting.
   * @returns The pool; close it to stop pre-warming.
   * @throws The errors `createSession` throws before spawning
   * (`NodeModuleError`, `PipelineValidationError`, `ResourceLimitError`,
   * `ProcessSpawnError`), checked once here.
   * @throws {RangeError} when `sessions` is not a whole number >= 1.
   *
   * @example
   * ```ts ignore
   * await using warm = await executor.prewarm(pipeline, { sessions: 2, modules: ["demo_nodes"], modulePaths: ["examples/nodes"] });
   * await warm.whenReady();
   * const session = await executor.createSession(pipeline, { modules: ["demo_nodes"], modulePaths: ["examples/nodes"] });
   * await session.initialize(); // at once
   * ```
   */
  async prewarm(
    pipeline: Pipeline,
    options: PrewarmOptions = {},
  ): Promise<Prewarm> {
    const count = options.sessions ?? 1;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(
        `Invalid sessions ${count}: it must be a whole number >= 1`,
      );
    }
    const key = poolKey(pipeline, options);
    if (this.#pools.has(key)) {
      throw new ConfigError(
        "This pipeline is already pre-warmed with these modules: close that pool first",
        { key: "prewarm" },
      );
    }
    const sessionOptions: SessionOptions = {
      modules: options.modules,
      modulePaths: options.modulePaths,
      printLogs: options.printLogs,
    };
    this.#warmForkServer();
    await this.#validate(pipeline, sessionOptions);
    /** The listing each spare was validated with. */
    const listedWith = new WeakMap<Session, CachedListing[]>();
    const pool: Prewarm = new Prewarm(
      {
        start: async () => {
          const entry = await this.#validate(pipeline, sessionOptions);
          const session = await this.#start(pipeline, sessionOptions, false);
          listedWith.set(session, entry);
          try {
            await session.initialize();
          } catch (e) {
            await session.close().catch(() => {});
            throw e;
          }
          return session;
        },
        canStart: () => !this.#closing && signalled === undefined,
        // The memory cache hands out the same entry while every file
        // still hashes the same, and a fresh one once any changed.
        stillValid: async (spare) => {
          const then = listedWith.get(spare) ?? [];
          const now = await this.#typeEntries(pipeline, sessionOptions)
            .then((m) => [...m.values()], () => undefined);
          return now !== undefined && now.length === then.length &&
            now.every((e, i) => e === then[i]);
        },
      },
      options,
      () => {
        if (this.#pools.get(key) === pool) this.#pools.delete(key);
      },
    );
    this.#pools.set(key, pool);
    return pool;
  }

  /** Checks the pipeline and its modules; spawns nothing. */
  async #validate(
    pipeline: Pipeline,
    options: SessionOptions,
  ): Promise<CachedListing[]> {
    const nodeCount = pipeline.toJSON().nodes.length;
    const limit = this.config.maxProcessesPerSession;
    if (limit !== undefined && nodeCount > limit) {
      throw new ResourceLimitError(
        `The pipeline needs ${nodeCount} processes but max_processes_per_session is ${limit}`,
        { limit, requested: nodeCount },
      );
    }
    checkEnvNames(pipeline, this.config);
    checkHosts(pipeline, this.config);
    const envs = usedEnvs(pipeline);
    const entries = await this.#typeEntries(pipeline, options);
    const listings = new Map(
      [...entries].map(([env, e]) => [env, e.listing] as const),
    );
    const failed = [...listings].find(([, l]) => l.errors.length);
    const [failedEnv, listing] = failed ??
      [undefined, listings.get(undefined) ?? [...listings.values()][0]];
    if (listing && listing.errors.length) {
      // Fails even when the types needed were found: a module that failed
      // half-way may have registered some of its types only.
      const unknown = [
        ...new Set(
          pipeline.toJSON().nodes.map((n) => n.type).filter((t) =>
            !listing.types.has(t)
          ),
        ),
      ].map((t) => `\nNode type "${t}" is not registered.`).join("");
      const inEnv = envs.length > 1 || failedEnv !== undefined
        ? `In Python environment "${failedEnv ?? DEFAULT_ENV_NAME}": `
        : "";
      throw new NodeModuleError(inEnv + importErrorsText(listing) + unknown, {
        failures: listing.errors,
        modulePaths: listing.modulePaths,
        missingPaths: listing.missingPaths,
      });
    }
    // Each node's type must be registered in its own environment.
    const registry = new Map<string, NodeTypeInfo>();
    const where = () => {
      const modules = options.modules ?? [];
      return modules.length
        ? `Imported modules: ${modules.join(", ")}.`
        : "No node modules were given: list the modules that register your node types in `modules`.";
    };
    if (envs.some((e) => e !== undefined)) {
      for (const n of pipeline.toJSON().nodes) {
        const info = listings.get(n.env)!.types.get(n.type);
        if (!info) {
          throw unknownTypeInEnv(
            n.id,
            n.type,
            n.env,
            new Map([...listings].map(([e, l]) => [e, l.types.keys()])),
            `${where()} ${foldersText(listings.get(n.env)!)}`,
          );
        }
        registry.set(n.type, info);
      }
    } else if (listing) {
      for (const [t, info] of listing.types) registry.set(t, info);
    }
    try {
      pipeline.validate({ registry });
    } catch (e) {
      if (
        e instanceof PipelineValidationError && e.code === "unknown_node_type"
      ) {
        throw new PipelineValidationError(
          "unknown_node_type",
          `${e.message}. ${where()} ${foldersText(listing!)}`,
          { cause: e, nodeId: e.nodeId },
        );
      }
      throw e;
    }
    return [...entries.values()];
  }

  /** The type listing of every Python environment the pipeline's nodes use
   * (in parallel), by environment name (undefined: the default). */
  async #typeEntries(
    pipeline: Pipeline,
    options: SessionOptions,
  ): Promise<Map<string | undefined, CachedListing>> {
    return new Map(
      await Promise.all(
        usedEnvs(pipeline).map(async (env) =>
          [env, await this.#typeEntry({ ...options, env })] as const
        ),
      ),
    );
  }

  /** Spawns a validated session; `visible` ones are listed in `sessions`. */
  async #start(
    pipeline: Pipeline,
    options: SessionOptions,
    visible: boolean,
  ): Promise<Session> {
    checkFullAccess();
    // Loads the library (once per program) from this executor's Python
    // environment unless RMP_ICEORYX2_LIB says otherwise.
    await loadNativeLibrary({ python: this.config.python.executable });
    const config = { ...this.config }; // its own: a signal shortens its grace
    const session = new Session(crypto.randomUUID().replaceAll("-", ""), {
      pipeline,
      config,
      options,
      pythonPathEntries: this.#pythonPath(options.modulePaths ?? []),
      forkServer: () => this.#forkServerFor(),
    });
    const started = session.start(this.#pythonPath(options.modulePaths ?? []));
    this.#track(session, config, started, visible);
    try {
      await started;
    } catch (e) {
      await session.close().catch(() => {}); // a failed start leaves nothing
      throw missingPermission(e, "Cannot start the session") ?? e;
    }
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
    this.#closing = true;
    try {
      await Promise.all([...this.#pools.values()].map((p) => p.close()));
      await Promise.all(
        [...this.#sessions, ...this.#spares].map((s) => s.close()),
      );
      const server = this.#forkServer;
      this.#forkServer = undefined;
      await (await server)?.close();
    } finally {
      this.#closing = false; // the executor may start sessions again
    }
  }

  /** Same as {@linkcode MultiprocessExecutor.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
