/**
 * Runtime configuration: the `[multiprocess]`, `[multiprocess.python]` and
 * `[multiprocess.hosts.<name>]` tables of `runtime.toml`, merged as
 * defaults < file < options given in code.
 * Every key, type and default is listed in docs/config.md.
 *
 * @example Load runtime.toml and override one value in code
 * ```ts ignore
 * import { loadConfig } from "@remotemedia/multiprocess/config";
 * const config = await loadConfig("runtime.toml", { channelCapacity: 16 });
 * console.log(config.python.executable);
 * ```
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- a copy imported by plain URL (no JSR import map) must resolve it too
import { parse as parseToml, TomlError } from "npm:smol-toml@1.9.1";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkoutPython } from "../data/_checkout.ts";
import { readEnv as readEnvOrUndefined } from "../data/_env.ts";
import { ConfigError, missingPermission } from "../errors.ts";
import {
  CHANNEL_DEFAULT_MAX_PAYLOAD_BYTES,
  PIPELINE_NAME_PATTERN,
} from "../protocol/contracts.ts";
import { describe as describeValue } from "../pipeline/_shape.ts";

/** The Python side of the configuration (`[multiprocess.python]`). */
export interface PythonConfig {
  /** The Python interpreter that runs the nodes. */
  executable: string;
  /** The virtual environment, if one was configured. */
  venvPath: string | undefined;
  /** Directories added to `sys.path` (and `PYTHONPATH`) of every node process. */
  extraPaths: string[];
  /** Extra environment variables of every node process. */
  env: Record<string, string>;
  /**
   * Named Python environments a node may run in (`env = "<name>"` on the
   * node): `[multiprocess.python.envs.<name>]`.
   */
  envs: Record<string, PythonEnvConfig>;
}

/** One named Python environment (`[multiprocess.python.envs.<name>]`). */
export interface PythonEnvConfig {
  /** The interpreter of the environment's nodes. */
  executable: string;
  /** The virtual environment, when it was given as `venv`. */
  venvPath: string | undefined;
}

/** One named Python environment, given in code (the shape of
 * {@linkcode PythonEnvConfig}, so a resolved configuration passes back in). */
export interface PythonEnvOptions {
  /**
   * A virtual environment; its `bin/python` runs the nodes unless
   * `executable` is given. Give at least one of the two.
   *
   * @default {undefined}
   */
  venvPath?: string;
  /**
   * The interpreter (a bare name is looked up in `PATH`).
   *
   * @default {"<venvPath>/bin/python"}
   */
  executable?: string;
}

/**
 * One remote host a pipeline node may run on (`host = "<name>"` on the node):
 * `[multiprocess.hosts.<name>]`, the host agent it runs under and how its
 * Zenoh link is watched.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@remotemedia/multiprocess/config";
 * const c = resolveConfig({
 *   multiprocess: { hosts: { gpu: { endpoint: "tcp/10.0.0.3:7447" } } },
 * });
 * console.log(c.hosts.gpu); // { endpoint: "tcp/10.0.0.3:7447", leaseSecs: 10, connectTimeoutSecs: 10 }
 * ```
 */
export interface HostConfig {
  /**
   * The host agent's Zenoh locator: `tcp/<address>:<port>`,
   * `tls/<address>:<port>` or `quic/<address>:<port>`.
   */
  endpoint: string;
  /**
   * The Zenoh transport lease, seconds: a host whose link is down (or that
   * is gone) is detected within it.
   */
  leaseSecs: number;
  /** How long session start waits for the host's agent to answer, seconds. */
  connectTimeoutSecs: number;
  /** The certificate authority that signs the agent's certificate (TLS, QUIC). */
  tlsRootCa?: string;
  /** This side's certificate, for mutual TLS (with {@linkcode HostConfig.tlsKey}). */
  tlsCert?: string;
  /** This side's private key, for mutual TLS (with {@linkcode HostConfig.tlsCert}). */
  tlsKey?: string;
}

/**
 * One remote host, given in code (the shape of {@linkcode HostConfig}, so a
 * resolved configuration passes back in).
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@remotemedia/multiprocess/config";
 * const c = resolveConfig({}, {
 *   hosts: { gpu: { endpoint: "tls/gpu.lan:7447", leaseSecs: 3, tlsRootCa: "/etc/rmp/ca.pem" } },
 * });
 * console.log(c.hosts.gpu.leaseSecs); // 3
 * ```
 */
export interface HostOptions {
  /**
   * The host agent's Zenoh locator: `tcp/<address>:<port>`,
   * `tls/<address>:<port>` or `quic/<address>:<port>` (required).
   */
  endpoint: string;
  /**
   * The Zenoh transport lease, seconds (greater than 0, at most 86400).
   *
   * @default {10}
   */
  leaseSecs?: number;
  /**
   * How long session start waits for the agent to answer, seconds (greater
   * than 0, at most 86400).
   *
   * @default {10}
   */
  connectTimeoutSecs?: number;
  /**
   * The certificate authority of the agent's certificate (a `tls/` or
   * `quic/` endpoint only).
   *
   * @default {undefined}
   */
  tlsRootCa?: string;
  /**
   * This side's certificate for mutual TLS (give `tlsKey` with it).
   *
   * @default {undefined}
   */
  tlsCert?: string;
  /**
   * This side's private key for mutual TLS (give `tlsCert` with it).
   *
   * @default {undefined}
   */
  tlsKey?: string;
}

/** The resolved runtime configuration. */
export interface RuntimeConfig {
  /** Most node processes one session may run; `undefined` is no limit. */
  maxProcessesPerSession: number | undefined;
  /** Samples each channel buffers per subscriber (iceoryx2 buffer and chunks). */
  channelCapacity: number;
  /** How long a node's `initialize()` may take, in seconds. */
  initTimeoutSecs: number;
  /** How long a node may take to exit after shutdown before it is killed, in seconds. */
  cleanupGracePeriodSecs: number;
  /** How long a publish may wait for a reader to free space, in seconds. */
  publishTimeoutSecs: number;
  /** How often a ready node is pinged over its control socket, in seconds. */
  pingIntervalSecs: number;
  /**
   * How long a ready node may leave a ping unanswered before it is unhealthy,
   * in seconds (0: no pings). A node's `ping_timeout_secs` overrides it.
   */
  pingTimeoutSecs: number;
  /** Whether a full channel makes the publisher wait (true) or fail at once (false). */
  enableBackpressure: boolean;
  /** The largest payload one sample may carry, header included, in bytes. */
  maxPayloadBytes: number;
  /** The Python interpreter and environment of node processes. */
  python: PythonConfig;
  /**
   * The remote hosts nodes may run on (`host = "<name>"` on the node), by
   * name: `[multiprocess.hosts.<name>]`. Empty: every node runs here.
   */
  hosts: Record<string, HostConfig>;
}

/** Options for the Python side, given in code. */
export interface PythonConfigOptions {
  /**
   * The Python interpreter. A bare name is looked up in `PATH`.
   *
   * @default {"<venvPath>/bin/python", else a development checkout's ".venv/bin/python" when it exists, else "python3"}
   */
  executable?: string;
  /**
   * A virtual environment whose `bin/python` is the default executable.
   *
   * @default {undefined}
   */
  venvPath?: string;
  /**
   * Directories added to `sys.path` of node processes (replaces the file's list).
   *
   * @default {[]}
   */
  extraPaths?: string[];
  /**
   * Extra environment variables (merged over the file's, key by key).
   *
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * Named environments a node may run in (merged over the file's, name by
   * name). Names: letters, digits, `_` and `-`.
   *
   * @default {{}}
   */
  envs?: Record<string, PythonEnvOptions>;
}

/** Options given in code; they win over `runtime.toml`. */
export interface RuntimeConfigOptions {
  /**
   * Most node processes one session may run (a positive integer).
   *
   * @default {undefined}
   */
  maxProcessesPerSession?: number;
  /**
   * Samples each channel buffers per subscriber, 1 to 1024.
   *
   * @default {8}
   */
  channelCapacity?: number;
  /**
   * Seconds a node's `initialize()` may take (greater than 0, at most 86400).
   *
   * @default {60}
   */
  initTimeoutSecs?: number;
  /**
   * Seconds a node may take to exit after shutdown (0 to 86400).
   *
   * @default {5}
   */
  cleanupGracePeriodSecs?: number;
  /**
   * Seconds between control pings of a ready node (greater than 0).
   *
   * @default {1}
   */
  pingIntervalSecs?: number;
  /**
   * Seconds a ready node may leave a ping unanswered before it is reported
   * unhealthy and handled by its restart policy (0: no pings). A node's
   * `ping_timeout_secs` in the pipeline overrides it.
   *
   * @default {30}
   */
  pingTimeoutSecs?: number;
  /**
   * Seconds a publish (Deno's `session.send` or a node's output) may wait
   * for a reader to free space before it fails with
   * `BackpressureTimeoutError` (greater than 0, at most 86400).
   *
   * @default {5}
   */
  publishTimeoutSecs?: number;
  /**
   * Whether a full channel makes the publisher wait for space.
   *
   * @default {true}
   */
  enableBackpressure?: boolean;
  /**
   * The largest sample, header included: 129 bytes to 1 GiB.
   *
   * @default {67108992}
   */
  maxPayloadBytes?: number;
  /** The Python side. */
  python?: PythonConfigOptions;
  /**
   * Remote hosts nodes may run on, by name (merged over the file's, name by
   * name). Names: letters, digits, `_` and `-`, starting with a letter or
   * `_`; `"local"` is reserved for this host.
   *
   * @default {{}}
   */
  hosts?: Record<string, HostOptions>;
}

/** Options for {@linkcode resolveConfig}. */
export interface ResolveConfigOptions {
  /**
   * The file the values came from: named in errors, and relative paths in it
   * (`venv_path`, `extra_paths`, an `executable` containing `/`, a host's
   * `tls_*` files) are resolved against its directory.
   *
   * @default {undefined}
   */
  file?: string;
}

/** The default largest sample: 64 MiB of payload plus the 128-byte header. */
export const DEFAULT_MAX_PAYLOAD_BYTES: number =
  CHANNEL_DEFAULT_MAX_PAYLOAD_BYTES;
const MAX_SECS = 86400;
const ONE_GIB = 1024 * 1024 * 1024;

type Kind =
  | { type: "int"; min: number; max?: number; unit?: string }
  | { type: "number"; min: number; exclusiveMin: boolean; max: number }
  | { type: "bool" }
  | { type: "string" }
  | { type: "path" }
  | { type: "paths" }
  | { type: "env" }
  | { type: "envs" }
  | { type: "endpoint" }
  | { type: "hosts" };

interface Field {
  toml: string;
  ts: string;
  kind: Kind;
}

const TOP_FIELDS: Field[] = [
  {
    toml: "max_processes_per_session",
    ts: "maxProcessesPerSession",
    kind: { type: "int", min: 1 },
  },
  {
    toml: "channel_capacity",
    ts: "channelCapacity",
    kind: { type: "int", min: 1, max: 1024 },
  },
  {
    toml: "init_timeout_secs",
    ts: "initTimeoutSecs",
    kind: { type: "number", min: 0, exclusiveMin: true, max: MAX_SECS },
  },
  {
    toml: "cleanup_grace_period_secs",
    ts: "cleanupGracePeriodSecs",
    kind: { type: "number", min: 0, exclusiveMin: false, max: MAX_SECS },
  },
  {
    toml: "publish_timeout_secs",
    ts: "publishTimeoutSecs",
    kind: { type: "number", min: 0, exclusiveMin: true, max: MAX_SECS },
  },
  {
    toml: "ping_interval_secs",
    ts: "pingIntervalSecs",
    kind: { type: "number", min: 0, exclusiveMin: true, max: MAX_SECS },
  },
  {
    toml: "ping_timeout_secs",
    ts: "pingTimeoutSecs",
    kind: { type: "number", min: 0, exclusiveMin: false, max: MAX_SECS },
  },
  {
    toml: "enable_backpressure",
    ts: "enableBackpressure",
    kind: { type: "bool" },
  },
  {
    toml: "max_payload_bytes",
    ts: "maxPayloadBytes",
    kind: { type: "int", min: 129, max: ONE_GIB, unit: "bytes" },
  },
  { toml: "hosts", ts: "hosts", kind: { type: "hosts" } },
];

const HOST_FIELDS: Field[] = [
  { toml: "endpoint", ts: "endpoint", kind: { type: "endpoint" } },
  {
    toml: "lease_secs",
    ts: "leaseSecs",
    kind: { type: "number", min: 0, exclusiveMin: true, max: MAX_SECS },
  },
  {
    toml: "connect_timeout_secs",
    ts: "connectTimeoutSecs",
    kind: { type: "number", min: 0, exclusiveMin: true, max: MAX_SECS },
  },
  { toml: "tls_root_ca", ts: "tlsRootCa", kind: { type: "path" } },
  { toml: "tls_cert", ts: "tlsCert", kind: { type: "path" } },
  { toml: "tls_key", ts: "tlsKey", kind: { type: "path" } },
];

/** The host name that means this host. */
const LOCAL_HOST = "local";
const HOST_NAME = new RegExp(`^(?:${PIPELINE_NAME_PATTERN})$`);
/** `<scheme>/<address>:<port>`; an IPv6 address is in brackets. */
const LOCATOR = /^([A-Za-z0-9]+)\/(\[[0-9A-Fa-f:.]+\]|[^\s/\[\]?#:]+):(\d+)$/;
const SCHEMES = ["tcp", "tls", "quic"];

const PYTHON_FIELDS: Field[] = [
  { toml: "executable", ts: "executable", kind: { type: "string" } },
  { toml: "venv_path", ts: "venvPath", kind: { type: "path" } },
  { toml: "extra_paths", ts: "extraPaths", kind: { type: "paths" } },
  { toml: "env", ts: "env", kind: { type: "env" } },
  { toml: "envs", ts: "envs", kind: { type: "envs" } },
];

const ENV_NAME = /^[A-Za-z0-9_-]+$/;

function describe(v: unknown): string {
  return describeValue(v, "a table");
}

function isTable(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function keyPart(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

/** Where values come from, for error messages and relative paths. */
interface Source {
  /** The file, or undefined for options given in code. */
  file?: string;
  /** "toml" names keys as in the file; "ts" as in the options object. */
  names: "toml" | "ts";
}

function err(src: Source, key: string, message: string): ConfigError {
  return new ConfigError(message, { key: key || undefined, file: src.file });
}

function checkValue(
  src: Source,
  key: string,
  kind: Kind,
  v: unknown,
): unknown {
  switch (kind.type) {
    case "int": {
      if (typeof v !== "number") {
        throw err(src, key, `must be an integer, got ${describe(v)}`);
      }
      if (!Number.isInteger(v)) {
        throw err(src, key, `must be an integer, got ${v}`);
      }
      const unit = kind.unit ? ` ${kind.unit}` : "";
      if (kind.max !== undefined && (v < kind.min || v > kind.max)) {
        throw err(
          src,
          key,
          `must be between ${kind.min} and ${kind.max}${unit}, got ${v}`,
        );
      }
      if (v < kind.min) {
        throw err(
          src,
          key,
          kind.min === 1
            ? `must be a positive integer, got ${v}`
            : `must be at least ${kind.min}${unit}, got ${v}`,
        );
      }
      return v;
    }
    case "number": {
      if (typeof v !== "number") {
        throw err(src, key, `must be a number, got ${describe(v)}`);
      }
      if (
        Number.isNaN(v) || (kind.exclusiveMin ? v <= kind.min : v < kind.min) ||
        v > kind.max
      ) {
        const low = kind.exclusiveMin
          ? `greater than ${kind.min}`
          : `at least ${kind.min}`;
        throw err(src, key, `must be ${low} and at most ${kind.max}, got ${v}`);
      }
      return v;
    }
    case "bool":
      if (typeof v !== "boolean") {
        throw err(src, key, `must be a boolean, got ${describe(v)}`);
      }
      return v;
    case "string":
    case "path":
      if (typeof v !== "string") {
        throw err(src, key, `must be a string, got ${describe(v)}`);
      }
      if (v.length === 0) throw err(src, key, "must not be empty");
      if (v.includes("\0")) {
        throw err(src, key, "must not contain a NUL character");
      }
      return v;
    case "paths": {
      if (!Array.isArray(v)) {
        throw err(src, key, `must be an array of strings, got ${describe(v)}`);
      }
      return v.map((p, i) =>
        checkValue(src, `${key}[${i}]`, { type: "path" }, p)
      );
    }
    case "env": {
      if (!isTable(v)) {
        throw err(
          src,
          key,
          `must be a table of strings, got ${describe(v)}`,
        );
      }
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(v)) {
        const k = `${key}.${keyPart(name)}`;
        if (name.length === 0 || name.includes("=") || name.includes("\0")) {
          throw err(
            src,
            k,
            'is not a valid environment variable name (empty, or contains "=" or NUL)',
          );
        }
        if (typeof value !== "string") {
          throw err(src, k, `must be a string, got ${describe(value)}`);
        }
        if (value.includes("\0")) {
          throw err(src, k, "must not contain a NUL character");
        }
        setOwn(out, name, value);
      }
      return out;
    }
    case "envs": {
      if (!isTable(v)) {
        throw err(src, key, `must be a table of tables, got ${describe(v)}`);
      }
      const out: Record<string, PythonEnvOptions> = {};
      for (const [name, table] of Object.entries(v)) {
        const k = `${key}.${keyPart(name)}`;
        if (!ENV_NAME.test(name)) {
          throw err(
            src,
            k,
            "is not a valid environment name (letters, digits, _ and - only)",
          );
        }
        if (!isTable(table)) {
          throw err(src, k, `must be a table, got ${describe(table)}`);
        }
        // In the file: `venv` or `executable`; in code: `venvPath` and/or
        // `executable` (the shape of a resolved PythonEnvConfig).
        const names = src.names === "toml"
          ? { venv: "venv", executable: "executable" }
          : { venv: "venvPath", executable: "executable" };
        const one: PythonEnvOptions = {};
        for (const [field, value] of Object.entries(table)) {
          if (field !== names.venv && field !== names.executable) {
            throw err(
              src,
              `${k}.${keyPart(field)}`,
              `unknown key (known: ${names.venv}, ${names.executable})`,
            );
          }
          if (value === undefined && src.names === "ts") continue;
          const checked = checkValue(
            src,
            `${k}.${field}`,
            { type: "path" },
            value,
          ) as string;
          if (field === names.venv) one.venvPath = checked;
          else one.executable = checked;
        }
        if (one.venvPath === undefined && one.executable === undefined) {
          throw err(
            src,
            k,
            `needs \`${names.venv}\` or \`${names.executable}\``,
          );
        }
        if (
          src.names === "toml" && one.venvPath !== undefined &&
          one.executable !== undefined
        ) {
          throw err(src, k, "gives both `venv` and `executable`: give one");
        }
        setOwn(out, name, one);
      }
      return out;
    }
    case "endpoint": {
      const e = checkValue(src, key, { type: "string" }, v) as string;
      const example = "tcp/10.0.0.3:7447";
      const scheme = /^([A-Za-z0-9]+)\//.exec(e)?.[1];
      if (scheme === undefined) {
        throw err(
          src,
          key,
          `must be a Zenoh locator <scheme>/<address>:<port> with scheme tcp, tls or quic (for example "${example}"), got ${
            JSON.stringify(e)
          }`,
        );
      }
      if (!SCHEMES.includes(scheme)) {
        throw err(
          src,
          key,
          `scheme "${scheme}" of ${
            JSON.stringify(e)
          } is not supported: use tcp, tls or quic (for example "${example}")`,
        );
      }
      const m = LOCATOR.exec(e);
      if (!m) {
        throw err(
          src,
          key,
          `must be ${scheme}/<address>:<port> (for example "${scheme}/10.0.0.3:7447"; an IPv6 address in brackets, "${scheme}/[fd00::3]:7447"), got ${
            JSON.stringify(e)
          }: the port is missing or the address is malformed`,
        );
      }
      const port = Number(m[3]);
      if (port < 1 || port > 65535) {
        throw err(
          src,
          key,
          `port ${m[3]} of ${JSON.stringify(e)} is out of range (1 to 65535)`,
        );
      }
      return e;
    }
    case "hosts": {
      if (!isTable(v)) {
        throw err(src, key, `must be a table of tables, got ${describe(v)}`);
      }
      const out: Record<string, HostOptions> = {};
      for (const [name, table] of Object.entries(v)) {
        const k = `${key}.${keyPart(name)}`;
        if (name === LOCAL_HOST) {
          throw err(
            src,
            k,
            `"${LOCAL_HOST}" is reserved: it means this host (a node without host, or with host = "${LOCAL_HOST}", runs here); give the remote host another name`,
          );
        }
        if (!HOST_NAME.test(name)) {
          throw err(
            src,
            k,
            "is not a valid host name (letters, digits, _ and -, starting with a letter or _, at most 64 characters)",
          );
        }
        const one = checkTable(src, k, table, HOST_FIELDS) as Partial<
          HostOptions
        >;
        const n = (f: string): string =>
          src.names === "toml" ? HOST_FIELDS.find((x) => x.ts === f)!.toml : f;
        if (one.endpoint === undefined) {
          throw err(
            src,
            k,
            `needs \`${
              n("endpoint")
            }\` (the host agent's Zenoh locator, for example "tcp/10.0.0.3:7447")`,
          );
        }
        if ((one.tlsCert === undefined) !== (one.tlsKey === undefined)) {
          throw err(
            src,
            k,
            `gives \`${
              n(one.tlsCert === undefined ? "tlsKey" : "tlsCert")
            }\` without \`${
              n(one.tlsCert === undefined ? "tlsCert" : "tlsKey")
            }\`: mutual TLS needs both`,
          );
        }
        const tls = (["tlsRootCa", "tlsCert", "tlsKey"] as const).find((f) =>
          one[f] !== undefined
        );
        if (tls !== undefined && one.endpoint.startsWith("tcp/")) {
          throw err(
            src,
            k,
            `gives \`${
              n(tls)
            }\` but its endpoint ${one.endpoint} is plain TCP: use a tls/ or quic/ endpoint, or drop the TLS keys`,
          );
        }
        setOwn(out, name, one);
      }
      return out;
    }
  }
}

/** Checks one table against its fields; returns the values keyed by their TS names. */
function checkTable(
  src: Source,
  path: string,
  table: unknown,
  fields: Field[],
  nested?: { name: string; ts: string },
): Record<string, unknown> {
  const name = (f: Field): string => src.names === "toml" ? f.toml : f.ts;
  if (!isTable(table)) {
    const what = src.names === "toml" ? "a table" : "an object";
    throw err(src, path, `must be ${what}, got ${describe(table)}`);
  }
  const known = [...fields.map(name)];
  const nestedName = nested
    ? (src.names === "toml" ? nested.name : nested.ts)
    : undefined;
  if (nestedName) known.push(nestedName);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(table)) {
    const key = path ? `${path}.${keyPart(k)}` : keyPart(k);
    if (k === nestedName) continue;
    const f = fields.find((f) => name(f) === k);
    if (!f) {
      throw err(
        src,
        key,
        `unknown ${src.names === "toml" ? "key" : "option"} (known: ${
          known.join(", ")
        })`,
      );
    }
    // An explicit undefined in code options means "not given".
    if (v === undefined && src.names === "ts") continue;
    out[f.ts] = checkValue(src, key, f.kind, v);
  }
  return out;
}

function resolvePath(p: string, base: string | undefined): string {
  return base !== undefined && !isAbsolute(p) ? join(base, p) : p;
}

function defaultExecutable(): string {
  // A checkout's development venv, else python3 on PATH (whose environment
  // must have the remotemedia-multiprocess package).
  return checkoutPython() ?? "python3";
}

/**
 * The defaults, with no file and no options.
 *
 * @returns A fresh default configuration.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "@remotemedia/multiprocess/config";
 * console.log(defaultConfig().channelCapacity); // 8
 * ```
 */
export function defaultConfig(): RuntimeConfig {
  return resolveConfig();
}

/**
 * Merges defaults < values from a parsed `runtime.toml` < options given in
 * code, and validates both. File values use the TOML names (`multiprocess`,
 * `channel_capacity`, ...); options use the camelCase names.
 *
 * @param fileValues The whole parsed TOML document (only `[multiprocess]` is allowed in it).
 * @param overrides Options given in code.
 * @param options The file name, for errors and relative paths.
 * @returns The resolved configuration.
 * @throws {ConfigError} Naming the dotted key (and the file, for file values).
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@remotemedia/multiprocess/config";
 * const c = resolveConfig(
 *   { multiprocess: { channel_capacity: 4, python: { env: { A: "1" } } } },
 *   { python: { env: { B: "2" } } },
 * );
 * console.log(c.channelCapacity, c.python.env); // 4 { A: "1", B: "2" }
 * ```
 */
export function resolveConfig(
  fileValues: Record<string, unknown> = {},
  overrides: RuntimeConfigOptions = {},
  options: ResolveConfigOptions = {},
): RuntimeConfig {
  const fileSrc: Source = { file: options.file, names: "toml" };
  const codeSrc: Source = { names: "ts" };
  const base = options.file !== undefined ? dirname(options.file) : undefined;

  if (!isTable(fileValues)) {
    throw err(fileSrc, "", `must be a table, got ${describe(fileValues)}`);
  }
  let fileTop: Record<string, unknown> = {};
  let filePy: Record<string, unknown> = {};
  for (const k of Object.keys(fileValues)) {
    if (k !== "multiprocess") {
      // Hosts and Python settings live under [multiprocess]: say where.
      const hint = k === "hosts" || k === "python"
        ? `; write [multiprocess.${k}${k === "hosts" ? ".<name>" : ""}]`
        : "";
      throw err(
        fileSrc,
        keyPart(k),
        `unknown key (known: multiprocess)${hint}`,
      );
    }
  }
  if (fileValues.multiprocess !== undefined) {
    fileTop = checkTable(
      fileSrc,
      "multiprocess",
      fileValues.multiprocess,
      TOP_FIELDS,
      { name: "python", ts: "python" },
    );
    const py = (fileValues.multiprocess as Record<string, unknown>).python;
    if (py !== undefined) {
      filePy = checkTable(fileSrc, "multiprocess.python", py, PYTHON_FIELDS);
    }
  }
  // Paths in a file are relative to the file; a bare executable name is not a path.
  if (typeof filePy.venvPath === "string") {
    filePy.venvPath = resolvePath(filePy.venvPath, base);
  }
  if (Array.isArray(filePy.extraPaths)) {
    filePy.extraPaths = filePy.extraPaths.map((p) => resolvePath(p, base));
  }
  if (
    typeof filePy.executable === "string" && filePy.executable.includes("/")
  ) {
    filePy.executable = resolvePath(filePy.executable, base);
  }
  const fileHosts = fileTop.hosts as Record<string, HostOptions> | undefined;
  for (const h of Object.values(fileHosts ?? {})) {
    for (const f of ["tlsRootCa", "tlsCert", "tlsKey"] as const) {
      if (h[f] !== undefined) h[f] = resolvePath(h[f], base);
    }
  }
  if (isTable(filePy.envs)) {
    for (
      const e of Object.values(filePy.envs as Record<string, PythonEnvOptions>)
    ) {
      if (e.venvPath !== undefined) e.venvPath = resolvePath(e.venvPath, base);
      if (e.executable?.includes("/")) {
        e.executable = resolvePath(e.executable, base);
      }
    }
  }

  if (!isTable(overrides)) {
    throw err(
      codeSrc,
      "",
      `options must be an object, got ${describe(overrides)}`,
    );
  }
  const codeTop = checkTable(codeSrc, "", overrides, TOP_FIELDS, {
    name: "python",
    ts: "python",
  });
  const codePy = overrides.python === undefined
    ? {}
    : checkTable(codeSrc, "python", overrides.python, PYTHON_FIELDS);

  const top = { ...fileTop, ...codeTop } as Partial<RuntimeConfig>;
  const py = { ...filePy, ...codePy } as Partial<PythonConfig>;
  const venvPath = py.venvPath;
  return {
    maxProcessesPerSession: top.maxProcessesPerSession,
    channelCapacity: top.channelCapacity ?? 8,
    initTimeoutSecs: top.initTimeoutSecs ?? 60,
    cleanupGracePeriodSecs: top.cleanupGracePeriodSecs ?? 5,
    publishTimeoutSecs: top.publishTimeoutSecs ?? 5,
    pingIntervalSecs: top.pingIntervalSecs ?? 1,
    pingTimeoutSecs: top.pingTimeoutSecs ?? 30,
    enableBackpressure: top.enableBackpressure ?? true,
    maxPayloadBytes: top.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    python: {
      executable: py.executable ??
        (venvPath !== undefined
          ? join(venvPath, "bin", "python")
          : defaultExecutable()),
      venvPath,
      extraPaths: [...(py.extraPaths ?? [])],
      env: {
        ...(filePy.env as Record<string, string> | undefined),
        ...(codePy.env as Record<string, string> | undefined),
      },
      envs: resolveEnvs({
        ...(filePy.envs as Record<string, PythonEnvOptions> | undefined),
        ...(codePy.envs as Record<string, PythonEnvOptions> | undefined),
      }),
    },
    hosts: resolveHosts({
      ...fileHosts,
      ...(codeTop.hosts as Record<string, HostOptions> | undefined),
    }),
  };
}

function resolveHosts(
  hosts: Record<string, HostOptions>,
): Record<string, HostConfig> {
  const out: Record<string, HostConfig> = {};
  for (const [name, h] of Object.entries(hosts)) {
    const one: HostConfig = {
      endpoint: h.endpoint,
      leaseSecs: h.leaseSecs ?? 10,
      connectTimeoutSecs: h.connectTimeoutSecs ?? 10,
    };
    if (h.tlsRootCa !== undefined) one.tlsRootCa = h.tlsRootCa;
    if (h.tlsCert !== undefined) one.tlsCert = h.tlsCert;
    if (h.tlsKey !== undefined) one.tlsKey = h.tlsKey;
    setOwn(out, name, one);
  }
  return out;
}

/**
 * Sets `out[name]` as an own property even for a name such as `__proto__`
 * (an environment, variable or host name comes from the user's file).
 */
function setOwn<T>(out: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(out, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function resolveEnvs(
  envs: Record<string, PythonEnvOptions>,
): Record<string, PythonEnvConfig> {
  const out: Record<string, PythonEnvConfig> = {};
  for (const [name, e] of Object.entries(envs)) {
    setOwn(out, name, {
      executable: e.executable ?? join(e.venvPath!, "bin", "python"),
      venvPath: e.venvPath,
    });
  }
  return out;
}

/**
 * Reads a `runtime.toml` (with a TOML parser from npm) and resolves it with
 * {@linkcode resolveConfig}. Without a path, only defaults and options apply.
 * Needs `--allow-read` for the file (and to find the module's `.venv`).
 *
 * @param path The TOML file; a missing file given here is an error.
 * @param overrides Options given in code; they win over the file.
 * @returns The resolved configuration.
 * @throws {ConfigError} For a missing file, invalid TOML (with the line), an
 * unknown key, a wrong type or a bad value (with the dotted key and the file).
 * @throws {MissingPermissionError} Without read permission for the file.
 *
 * @example
 * ```ts
 * import { loadConfig } from "@remotemedia/multiprocess/config";
 * const config = await loadConfig(undefined, { initTimeoutSecs: 30 });
 * console.log(config.initTimeoutSecs); // 30
 * ```
 */
export async function loadConfig(
  path?: string | URL,
  overrides: RuntimeConfigOptions = {},
): Promise<RuntimeConfig> {
  if (path === undefined) return resolveConfig({}, overrides);
  const file = path instanceof URL ? fileURLToPath(path) : path;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw missingPermission(e, `Cannot read the config file "${file}"`) ??
      new ConfigError(
        e instanceof Deno.errors.NotFound
          ? "file not found"
          : `cannot read: ${(e as Error).message}`,
        { file, cause: e },
      );
  }
  let values: Record<string, unknown>;
  try {
    values = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    const where = e instanceof TomlError
      ? ` at line ${e.line}, column ${e.column}`
      : "";
    throw new ConfigError(
      `invalid TOML${where}: ${
        (e as Error).message.split("\n")[0].replace(
          /^Invalid TOML document: /,
          "",
        )
      }`,
      { file, cause: e },
    );
  }
  return resolveConfig(values, overrides, { file });
}

/**
 * The value of an environment variable, or `undefined` when it is unset or
 * the program lacks `--allow-env` for it (callers then use their default).
 *
 * @param name The variable.
 * @returns Its value, if set and readable.
 *
 * @example
 * ```ts
 * import { readEnv } from "@remotemedia/multiprocess/config";
 * console.log(readEnv("RMP_SURELY_UNSET_VARIABLE") ?? "default"); // "default"
 * ```
 */
export function readEnv(name: string): string | undefined {
  return readEnvOrUndefined(name);
}
