/**
 * The error hierarchy of `@remotemedia/multiprocess`. Every error the module
 * raises for a runtime condition is a {@linkcode MultiprocessError}; plain
 * argument mistakes (a negative size, a wrong type) are built-in errors such as
 * `TypeError` and `RangeError`.
 *
 * @module
 */

/** Options shared by every {@linkcode MultiprocessError}. */
export interface MultiprocessErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** The node the error concerns, if any. */
  nodeId?: string;
}

/**
 * Base class of every error raised by this module.
 *
 * @example Catch any error of the module
 * ```ts
 * import { MultiprocessError } from "@remotemedia/multiprocess/errors";
 * try {
 *   throw new MultiprocessError("boom", { nodeId: "asr" });
 * } catch (e) {
 *   if (e instanceof MultiprocessError) console.log(e.nodeId); // "asr"
 * }
 * ```
 */
export class MultiprocessError extends Error {
  /** The node the error concerns, if any. */
  readonly nodeId?: string;

  /**
   * Creates the error.
   *
   * @param message What went wrong.
   * @param options Cause and context.
   */
  constructor(message: string, options: MultiprocessErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.nodeId = options.nodeId;
  }
}

/** Why a RuntimeData header was rejected (see docs/wire-format.md). */
export type WireFormatReason =
  | "too_short"
  | "bad_magic"
  | "bad_version"
  | "bad_header_len"
  | "length_mismatch"
  | "unknown_type"
  | "bad_metadata";

/**
 * A RuntimeData header or payload that does not follow the wire format.
 *
 * @example
 * ```ts
 * import { WireFormatError } from "@remotemedia/multiprocess/errors";
 * const e = new WireFormatError("bad_magic", "magic is 0x00000000");
 * console.log(e.reason); // "bad_magic"
 * ```
 */
export class WireFormatError extends MultiprocessError {
  /** The rule that was broken. */
  readonly reason: WireFormatReason;

  /**
   * Creates the error.
   *
   * @param reason The rule that was broken.
   * @param message Details.
   * @param options Cause and context.
   */
  constructor(
    reason: WireFormatReason,
    message: string,
    options?: MultiprocessErrorOptions,
  ) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * The native iceoryx2 library could not be loaded, or one of its calls failed.
 *
 * @example
 * ```ts
 * import { NativeLibraryError } from "@remotemedia/multiprocess/errors";
 * const e = new NativeLibraryError("iceoryx2 failed", { code: -2 });
 * console.log(e.code); // -2
 * ```
 */
export class NativeLibraryError extends MultiprocessError {
  /** The negative `RMP_ERR_*` code, when a call failed. */
  readonly code?: number;

  /**
   * Creates the error.
   *
   * @param message What failed, including the native message.
   * @param options The code and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { code?: number } = {},
  ) {
    super(message, options);
    this.code = options.code;
  }
}

/**
 * A channel operation failed: the channel is closed, or a payload is larger
 * than the channel allows.
 *
 * @example
 * ```ts
 * import { ChannelError } from "@remotemedia/multiprocess/errors";
 * const e = new ChannelError("closed", { channel: "audio" });
 * console.log(e.channel); // "audio"
 * ```
 */
export class ChannelError extends MultiprocessError {
  /** The channel name. */
  readonly channel?: string;

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param options The channel and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { channel?: string } = {},
  ) {
    super(message, options);
    this.channel = options.channel;
  }
}

/**
 * A publish waited longer than its bound for a subscriber to free space: the
 * subscriber is dead or stalled. Nothing already sent was lost.
 *
 * @example
 * ```ts
 * import { BackpressureTimeoutError } from "@remotemedia/multiprocess/errors";
 * const e = new BackpressureTimeoutError("no space", { channel: "a", timeoutMs: 5000 });
 * console.log(e.timeoutMs); // 5000
 * ```
 */
export class BackpressureTimeoutError extends ChannelError {
  /** The bound that passed, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the error.
   *
   * @param message What happened.
   * @param options The channel, bound and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { channel?: string; timeoutMs: number },
  ) {
    super(message, options);
    this.timeoutMs = options.timeoutMs;
  }
}

/**
 * A configuration value is unknown, of the wrong type, or out of range.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@remotemedia/multiprocess/errors";
 * const e = new ConfigError("must be a positive integer", {
 *   key: "multiprocess.channel_capacity",
 *   file: "runtime.toml",
 * });
 * console.log(e.key); // "multiprocess.channel_capacity"
 * ```
 */
export class ConfigError extends MultiprocessError {
  /** The dotted key at fault, when there is one. */
  readonly key?: string;
  /** The file the value came from, when it came from a file. */
  readonly file?: string;

  /**
   * Creates the error.
   *
   * @param message What is wrong (the key and file are added to it).
   * @param options Key, file and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { key?: string; file?: string } = {},
  ) {
    const prefix = options.key
      ? `Invalid key "${options.key}"${
        options.file ? ` in ${options.file}` : ""
      }: `
      : options.file
      ? `Cannot load ${options.file}: `
      : "";
    super(prefix + message, options);
    this.key = options.key;
    this.file = options.file;
  }
}

/** What is wrong with a pipeline definition. */
export type PipelineErrorCode =
  | "duplicate_id"
  | "unknown_node"
  | "unknown_node_type"
  | "unknown_port"
  | "cycle"
  | "unreachable_node"
  | "duplicate_name"
  | "invalid_schema"
  | "port_in_use"
  | "duplicate_connection"
  | "invalid_name"
  | "unknown_env"
  | "unknown_host"
  | "remote_edge";

/**
 * A pipeline definition is invalid. Raised before any process is spawned.
 *
 * @example
 * ```ts
 * import { PipelineValidationError } from "@remotemedia/multiprocess/errors";
 * const e = new PipelineValidationError("cycle", "a -> b -> a");
 * console.log(e.code); // "cycle"
 * ```
 */
export class PipelineValidationError extends MultiprocessError {
  /** The rule that was broken. */
  readonly code: PipelineErrorCode;

  /**
   * Creates the error.
   *
   * @param code The rule that was broken.
   * @param message Details.
   * @param options Node and cause.
   */
  constructor(
    code: PipelineErrorCode,
    message: string,
    options?: MultiprocessErrorOptions,
  ) {
    super(message, options);
    this.code = code;
  }
}

/**
 * A node process could not be started (missing Python or venv, for example).
 *
 * @example
 * ```ts
 * import { ProcessSpawnError } from "@remotemedia/multiprocess/errors";
 * const e = new ProcessSpawnError("python not found", { path: "/nope/python" });
 * console.log(e.path); // "/nope/python"
 * ```
 */
export class ProcessSpawnError extends MultiprocessError {
  /** The executable path that was tried. */
  readonly path: string;

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param options The path tried, node and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { path: string },
  ) {
    super(message, options);
    this.path = options.path;
  }
}

/**
 * A Python environment (the default one or a named
 * `[multiprocess.python.envs.<name>]`) whose `iceoryx2` package is not the
 * version the native library was built with. iceoryx2 refuses shared memory
 * of any other version, so no node is started in it.
 *
 * @example
 * ```ts
 * import { Iceoryx2VersionError } from "@remotemedia/multiprocess/errors";
 * const e = new Iceoryx2VersionError({
 *   env: "mediapipe",
 *   executable: ".venvs/mediapipe/bin/python",
 *   found: "0.9.0",
 *   wanted: "0.10.0",
 * });
 * console.log(e.env, e.found, e.wanted); // "mediapipe" "0.9.0" "0.10.0"
 * ```
 */
export class Iceoryx2VersionError extends MultiprocessError {
  /** The environment's name; `"default"` for `[multiprocess.python]`. */
  readonly env: string;
  /** Its Python executable. */
  readonly executable: string;
  /** The iceoryx2 version installed there, or null when none is. */
  readonly found: string | null;
  /** The version every side must run (`ICEORYX2_VERSION`). */
  readonly wanted: string;

  /**
   * Creates the error; the message names the environment and both versions.
   *
   * @param options The environment, its executable and the versions.
   */
  constructor(
    options: MultiprocessErrorOptions & {
      env: string;
      executable: string;
      found: string | null;
      wanted: string;
    },
  ) {
    super(
      `Python environment "${options.env}" (${options.executable}) has ${
        options.found === null
          ? "no iceoryx2 package"
          : `iceoryx2 ${options.found}`
      }, but this module needs iceoryx2==${options.wanted} (iceoryx2 refuses shared memory of any other version): install it there (\`pip install iceoryx2==${options.wanted}\`, which the remotemedia-multiprocess package pins)`,
      options,
    );
    this.env = options.env;
    this.executable = options.executable;
    this.found = options.found;
    this.wanted = options.wanted;
  }
}

/**
 * A node process exited while its session was running.
 *
 * @example
 * ```ts
 * import { ProcessCrashError } from "@remotemedia/multiprocess/errors";
 * const e = new ProcessCrashError({ nodeId: "tts", exitCode: 3, signal: null });
 * console.log(e.message); // Node "tts" process exited with code 3
 * ```
 *
 * @example A node on another host
 * ```ts
 * import { ProcessCrashError } from "@remotemedia/multiprocess/errors";
 * const e = new ProcessCrashError({
 *   nodeId: "asr",
 *   exitCode: null,
 *   signal: "SIGKILL",
 *   host: "gpu",
 * });
 * console.log(e.message); // Node "asr" process on host "gpu" killed by SIGKILL
 * ```
 */
export class ProcessCrashError extends MultiprocessError {
  /** The node whose process exited. */
  declare readonly nodeId: string;
  /**
   * The host the node ran on (a name of `[multiprocess.hosts]`), or
   * `undefined` for this host.
   */
  readonly host: string | undefined;
  /** The exit code, or null when a signal ended it. */
  readonly exitCode: number | null;
  /** The signal that ended it (for example "SIGKILL"), or null. */
  readonly signal: string | null;
  /** The last lines the process wrote to stderr (at most 20), oldest first. */
  readonly stderrTail: string[];
  /**
   * Restarts its restart policy had already made within the policy's window
   * when this exit made the session give up (0: no restart policy applied).
   */
  readonly restarts: number;

  /**
   * Creates the error.
   *
   * @param info The node, exit code, signal, the end of its stderr, the
   * restarts made before the session gave up, and the host it ran on (absent:
   * this host).
   */
  constructor(
    info: {
      nodeId: string;
      exitCode: number | null;
      signal: string | null;
      stderrTail?: string[];
      restarts?: number;
      windowSecs?: number;
      host?: string;
      cause?: unknown;
    },
  ) {
    const how = info.signal
      ? `killed by ${info.signal}`
      : `exited with code ${info.exitCode}`;
    const tail = info.stderrTail ?? [];
    const restarts = info.restarts ?? 0;
    const gaveUp = restarts > 0
      ? ` after ${restarts} restart${restarts > 1 ? "s" : ""}${
        info.windowSecs ? ` within ${info.windowSecs} s` : ""
      } (its restart limit)`
      : "";
    const where = info.host === undefined ? "" : ` on host "${info.host}"`;
    super(
      `Node "${info.nodeId}" process${where} ${how}${gaveUp}${
        tail.length ? `; its last stderr lines:\n  ${tail.join("\n  ")}` : ""
      }`,
      { nodeId: info.nodeId, cause: info.cause },
    );
    this.exitCode = info.exitCode;
    this.signal = info.signal;
    this.stderrTail = tail;
    this.restarts = restarts;
    this.host = info.host;
  }
}

/**
 * How a {@linkcode HostLostError}'s host was lost: `lease_expired` (its
 * agent's liveliness token was deleted: no keep-alive within the Zenoh lease),
 * `agent_exited` (the agent said it was leaving, or stopped answering after
 * its process ended), `unreachable` (no agent answered when the session
 * started) or `link_exited` (the local process holding the Zenoh link to it
 * ended).
 */
export type HostLostReason =
  | "lease_expired"
  | "agent_exited"
  | "unreachable"
  | "link_exited";

/**
 * A remote host of the session (a name of `[multiprocess.hosts]`) was lost
 * or could not be reached, so the nodes placed there cannot run: the session
 * fails. A lost link is detected within the host's lease (`lease_secs`).
 *
 * @example A host whose link went down
 * ```ts
 * import { HostLostError } from "@remotemedia/multiprocess/errors";
 * const e = new HostLostError({ host: "gpu", reason: "lease_expired", leaseSecs: 10 });
 * console.log(e.message);
 * // Host "gpu" was lost: its agent's liveliness token expired (lease 10 s); the link is down or the host is gone (check the network path to the host and that its agent still runs)
 * ```
 *
 * @example A host with no agent
 * ```ts
 * import { HostLostError } from "@remotemedia/multiprocess/errors";
 * const e = new HostLostError({
 *   host: "gpu",
 *   reason: "unreachable",
 *   endpoint: "tcp/10.0.0.3:7447",
 *   detail: "no agent answered at tcp/10.0.0.3:7447 within 10 s",
 * });
 * console.log(e.message);
 * // Host "gpu" is unreachable: no agent answered at tcp/10.0.0.3:7447 within 10 s (start it there with: python -m remotemedia_multiprocess.agent --listen tcp/0.0.0.0:7447)
 * ```
 */
export class HostLostError extends MultiprocessError {
  /** The host's name (a key of `[multiprocess.hosts]`). */
  readonly host: string;
  /** How it was lost. */
  readonly reason: HostLostReason;
  /** The Zenoh lease that bounded the detection, seconds, when known. */
  readonly leaseSecs?: number;
  /** The host agent's Zenoh locator (`tcp/10.0.0.3:7447`), when known. */
  readonly endpoint?: string;

  /**
   * Creates the error; the message names the host, what failed and what to
   * check.
   *
   * @param info The host, the reason, the lease, the agent's endpoint, a
   * detail appended to the message (what was observed, e.g. `"no agent
   * answered at tcp/10.0.0.3:7447 within 10 s"`) and the cause.
   */
  constructor(
    info: {
      host: string;
      reason: HostLostReason;
      leaseSecs?: number;
      endpoint?: string;
      detail?: string;
      cause?: unknown;
    },
  ) {
    super(hostLostMessage(info), { cause: info.cause });
    this.host = info.host;
    this.reason = info.reason;
    this.leaseSecs = info.leaseSecs;
    this.endpoint = info.endpoint;
  }
}

function hostLostMessage(info: {
  host: string;
  reason: HostLostReason;
  leaseSecs?: number;
  endpoint?: string;
  detail?: string;
}): string {
  const host = `Host "${info.host}"`;
  const detail = info.detail ? ` (${info.detail})` : "";
  // The agent listens on every address of its host, on the endpoint's port.
  const m = info.endpoint && /^([a-z]+)\/.*:(\d+)$/.exec(info.endpoint);
  const listen = m ? `${m[1]}/0.0.0.0:${m[2]}` : "tcp/0.0.0.0:7447";
  const start = `python -m remotemedia_multiprocess.agent --listen ${listen}`;
  switch (info.reason) {
    case "lease_expired":
      return `${host} was lost: its agent's liveliness token expired${
        info.leaseSecs === undefined ? "" : ` (lease ${info.leaseSecs} s)`
      }; the link is down or the host is gone${detail} (check the network path to the host and that its agent still runs)`;
    case "agent_exited":
      return `${host} was lost: its agent exited${detail}, and the nodes placed there with it (start it again there with: ${start})`;
    case "unreachable":
      return `${host} is unreachable: ${
        info.detail ??
          `no agent answered${info.endpoint ? ` at ${info.endpoint}` : ""}`
      } (start it there with: ${start})`;
    case "link_exited":
      return `${host} was lost: the local process holding the Zenoh link to it exited${detail}; the session cannot reach the nodes placed there`;
  }
}

/**
 * The link to a remote host, or that host's agent, failed outside any node:
 * a bridge refused a message, a relay could not reach the session, the link
 * process could not start. The session fails (nothing crossing that host can
 * be trusted to arrive).
 *
 * @example
 * ```ts
 * import { HostLinkError } from "@remotemedia/multiprocess/errors";
 * const e = new HostLinkError("A bridge refused a message of 70 MB (the limit is 64 MiB)", { host: "gpu" });
 * console.log(e.message); // Host "gpu": A bridge refused a message of 70 MB (the limit is 64 MiB)
 * ```
 */
export class HostLinkError extends MultiprocessError {
  /** The host concerned, when one is. */
  readonly host?: string;

  /**
   * Creates the error.
   *
   * @param message What failed and why.
   * @param options The host, the node and the cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { host?: string } = {},
  ) {
    super(
      options.host ? `Host "${options.host}": ${message}` : message,
      options,
    );
    this.host = options.host;
  }
}

/**
 * A node failed a health check: a `process()` call ran longer than its
 * `process_timeout_secs`, or it answered no control ping within
 * `ping_timeout_secs`. With the restart policy `never` it fails the session;
 * otherwise the node is killed and restarted.
 *
 * @example
 * ```ts
 * import { NodeHealthError } from "@remotemedia/multiprocess/errors";
 * const e = new NodeHealthError({ nodeId: "asr", reason: "process_timeout", timeoutSecs: 5 });
 * console.log(e.message); // Node "asr" is unhealthy: a process() call ran longer than 5 s
 * ```
 */
export class NodeHealthError extends MultiprocessError {
  /** The node. */
  declare readonly nodeId: string;
  /** Which check failed. */
  readonly reason: "process_timeout" | "ping_timeout";
  /** The bound it broke, seconds. */
  readonly timeoutSecs: number;

  /**
   * Creates the error.
   *
   * @param info The node, the check and its bound.
   */
  constructor(
    info: {
      nodeId: string;
      reason: "process_timeout" | "ping_timeout";
      timeoutSecs: number;
      cause?: unknown;
    },
  ) {
    const what = info.reason === "process_timeout"
      ? `a process() call ran longer than ${info.timeoutSecs} s`
      : `it answered no control ping within ${info.timeoutSecs} s`;
    super(`Node "${info.nodeId}" is unhealthy: ${what}`, {
      nodeId: info.nodeId,
      cause: info.cause,
    });
    this.reason = info.reason;
    this.timeoutSecs = info.timeoutSecs;
  }
}

/**
 * A node's `initialize()` raised, or did not finish within the init timeout.
 *
 * @example
 * ```ts
 * import { NodeInitError } from "@remotemedia/multiprocess/errors";
 * const e = new NodeInitError("model missing", { nodeId: "asr", traceback: "Traceback..." });
 * console.log(e.nodeId, e.timedOut); // "asr" false
 * ```
 */
export class NodeInitError extends MultiprocessError {
  /** The node that failed. */
  declare readonly nodeId: string;
  /** The Python traceback, when the node raised. */
  readonly traceback?: string;
  /** True when the init timeout passed. */
  readonly timedOut: boolean;

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param options Node, traceback, timeout flag and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & {
      nodeId: string;
      traceback?: string;
      timedOut?: boolean;
    },
  ) {
    super(
      options.traceback ? `${message}\n${options.traceback}` : message,
      options,
    );
    this.traceback = options.traceback;
    this.timedOut = options.timedOut ?? false;
  }
}

/**
 * A node's `process()` raised. The node and the pipeline keep running; this
 * error is delivered as an event, not thrown from `send` or `receive`.
 *
 * @example
 * ```ts
 * import { NodeProcessError } from "@remotemedia/multiprocess/errors";
 * const e = new NodeProcessError("ValueError: bad", { nodeId: "asr", traceback: "..." });
 * console.log(e.nodeId); // "asr"
 * ```
 */
export class NodeProcessError extends MultiprocessError {
  /** The node that raised. */
  declare readonly nodeId: string;
  /** The Python traceback. */
  readonly traceback: string;

  /**
   * Creates the error.
   *
   * @param message The exception line.
   * @param options Node, traceback and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { nodeId: string; traceback: string },
  ) {
    super(message, options);
    this.traceback = options.traceback;
  }
}

/**
 * A configured resource limit would be exceeded (checked before spawning).
 *
 * @example
 * ```ts
 * import { ResourceLimitError } from "@remotemedia/multiprocess/errors";
 * const e = new ResourceLimitError("too many processes", { limit: 4, requested: 5 });
 * console.log(e.limit, e.requested); // 4 5
 * ```
 */
export class ResourceLimitError extends MultiprocessError {
  /** The configured limit. */
  readonly limit: number;
  /** What was asked for. */
  readonly requested: number;

  /**
   * Creates the error.
   *
   * @param message What limit.
   * @param options Limit, request and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { limit: number; requested: number },
  ) {
    super(message, options);
    this.limit = options.limit;
    this.requested = options.requested;
  }
}

/**
 * The session is closed (by `close()`, an abort signal, or a failure), so the
 * operation cannot run. `cause` holds the failure that closed it, if any.
 *
 * @example
 * ```ts
 * import { SessionClosedError } from "@remotemedia/multiprocess/errors";
 * const e = new SessionClosedError("session closed");
 * console.log(e instanceof Error); // true
 * ```
 */
export class SessionClosedError extends MultiprocessError {}

/**
 * No sample arrived on a session output within the `timeoutMs` given to
 * `session.receive()`.
 *
 * @example
 * ```ts
 * import { ReceiveTimeoutError } from "@remotemedia/multiprocess/errors";
 * const e = new ReceiveTimeoutError("No sample", { output: "text", timeoutMs: 100 });
 * console.log(e.output, e.timeoutMs); // "text" 100
 * ```
 */
export class ReceiveTimeoutError extends MultiprocessError {
  /** The pipeline output. */
  readonly output: string;
  /** The bound that passed, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the error.
   *
   * @param message What timed out.
   * @param options Output, bound and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & { output: string; timeoutMs: number },
  ) {
    super(message, options);
    this.output = options.output;
    this.timeoutMs = options.timeoutMs;
  }
}

/** One node module the runner could not import. */
export interface ModuleImportFailure {
  /** The module name, as given in `modules`. */
  module: string;
  /** The exception line (`ImportError: ...`). */
  error: string;
  /** True when the module itself is not on the path (not something it imports). */
  notFound: boolean;
  /** `file:line` where the import failed, when known. */
  location?: string;
  /** The Python traceback from the module's own frames ("" when not found). */
  traceback: string;
}

/**
 * Node modules failed to import, so nothing was spawned. Raised even when the
 * node types the pipeline needs were found: a module that fails half-way may
 * have registered some of its types only.
 *
 * @example
 * ```ts
 * import { NodeModuleError } from "@remotemedia/multiprocess/errors";
 * const e = new NodeModuleError("Cannot import node module \"asr\"", {
 *   failures: [{ module: "asr", error: "ImportError: no torch", notFound: false, traceback: "" }],
 *   modulePaths: ["/srv/nodes"],
 *   missingPaths: [],
 * });
 * console.log(e.failures[0].module); // "asr"
 * ```
 */
export class NodeModuleError extends MultiprocessError {
  /** Every module that failed, in the order given. */
  readonly failures: ModuleImportFailure[];
  /** The module folders searched (absolute), before the Python path. */
  readonly modulePaths: string[];
  /** Those of {@linkcode NodeModuleError.modulePaths} that do not exist. */
  readonly missingPaths: string[];

  /**
   * Creates the error.
   *
   * @param message What failed (every module, error and folder).
   * @param options Failures, folders and cause.
   */
  constructor(
    message: string,
    options: MultiprocessErrorOptions & {
      failures: ModuleImportFailure[];
      modulePaths: string[];
      missingPaths: string[];
    },
  ) {
    super(message, options);
    this.failures = options.failures;
    this.modulePaths = options.modulePaths;
    this.missingPaths = options.missingPaths;
  }
}

/** A Deno permission, named as in its `--allow-<name>` flag. */
export type PermissionName =
  | "read"
  | "write"
  | "net"
  | "env"
  | "run"
  | "ffi"
  | "sys"
  | "import"
  | "all";

/**
 * The program lacks a Deno permission the runtime needs (Deno threw
 * `Deno.errors.NotCapable`). `permission` and `flag` say which one and the
 * flag that grants it; `cause` is Deno's error, which names the resource.
 *
 * An operating-system refusal (`EACCES`, `Deno.errors.PermissionDenied`) is a
 * different thing: file modes, not Deno flags. It is not this error.
 *
 * @example
 * ```ts
 * import { MissingPermissionError } from "@remotemedia/multiprocess/errors";
 * const e = new MissingPermissionError('Cannot read the config file "runtime.toml"', {
 *   permission: "read",
 * });
 * console.log(e.flag); // "--allow-read"
 * console.log(e.message);
 * // Cannot read the config file "runtime.toml": the program lacks read permission (run Deno with --allow-read)
 * ```
 */
export class MissingPermissionError extends MultiprocessError {
  /** The permission that is missing. */
  readonly permission: PermissionName;
  /** The flag that grants it, e.g. `--allow-read`. */
  readonly flag: string;
  /** What Deno refused access to (e.g. `"/tmp/rmp"`), when known. */
  readonly resource?: string;

  /**
   * Creates the error.
   *
   * @param action What failed, e.g. `Cannot read the config file "x"`.
   * @param options The permission, the resource refused, node and cause.
   */
  constructor(
    action: string,
    options: MultiprocessErrorOptions & {
      permission: PermissionName;
      resource?: string;
    },
  ) {
    const { permission, resource } = options;
    const flag = `--allow-${permission}`;
    const what = permission === "all"
      ? "full permissions"
      : `${permission} permission`;
    const target = resource && !action.includes(resource)
      ? ` for ${resource}`
      : "";
    const hint = permission === "all"
      ? "Deno grants them only with --allow-all: run Deno with -A"
      : `run Deno with ${flag}`;
    super(`${action}: the program lacks ${what}${target} (${hint})`, options);
    this.permission = permission;
    this.flag = flag;
    this.resource = resource;
  }
}

const PERMISSION_NAMES = new Set<string>([
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
  "all",
]);

/**
 * Turns Deno's permission error (`Deno.errors.NotCapable`) into a
 * {@linkcode MissingPermissionError} that says what failed and which flag
 * grants the permission; any other error gives `undefined`. Use it in a
 * `catch` block: `throw missingPermission(e, "Cannot ...") ?? e`.
 *
 * @param error The caught error.
 * @param action What failed, e.g. `Cannot read the config file "x"`.
 * @param fallback The permission to name when Deno's message names none.
 * @returns The error to throw, or `undefined` when `error` is not Deno's
 * permission error.
 *
 * @example
 * ```ts
 * import { missingPermission } from "@remotemedia/multiprocess/errors";
 * const denied = new Deno.errors.NotCapable(
 *   'Requires read access to "runtime.toml", run again with the --allow-read flag',
 * );
 * console.log(missingPermission(denied, 'Cannot read the config file "runtime.toml"')?.flag); // "--allow-read"
 * console.log(missingPermission(new Error("other"), "Cannot do it")); // undefined
 * ```
 */
export function missingPermission(
  error: unknown,
  action: string,
  fallback: PermissionName = "all",
): MissingPermissionError | undefined {
  if (!(error instanceof Deno.errors.NotCapable)) return undefined;
  // Deno 2: 'Requires read access to "/x", run again with the --allow-read flag'
  const named = /Requires (\w+) access to (.+?), run again with/.exec(
    error.message,
  );
  const flagged = /--allow-(\w+)/.exec(error.message);
  const name = named?.[1] ?? flagged?.[1];
  const permission = name && PERMISSION_NAMES.has(name)
    ? name as PermissionName
    : fallback;
  return new MissingPermissionError(action, {
    permission,
    resource: named?.[2],
    cause: error,
  });
}
