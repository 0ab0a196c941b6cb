/**
 * Shape checks of pipeline definitions and builder arguments: names, config
 * values and the schema's keys and types. They throw a
 * `PipelineValidationError` with code `invalid_schema` or `invalid_name` and
 * the JSON path of the bad field; the graph rules live in `validate.ts`.
 *
 * @module
 */

import { PipelineValidationError } from "../errors.ts";
import {
  PIPELINE_NAME_PATTERN,
  PIPELINE_NAME_RULE,
  PIPELINE_TOP_KEYS,
  PIPELINE_VERSION,
} from "../protocol/contracts.ts";
import type {
  ConfigValue,
  ConnectionDefinition,
  InputDefinition,
  NodeConfig,
  NodeDefinition,
  OutputDefinition,
  PipelineDefinition,
  PortRef,
  RestartPolicy,
} from "./schema.ts";

const NAME_RE = new RegExp(`^(?:${PIPELINE_NAME_PATTERN})$`);
const NAME_RULE = PIPELINE_NAME_RULE;
const TOP_KEYS = PIPELINE_TOP_KEYS;

function fail(code: "invalid_schema" | "invalid_name", msg: string): never {
  throw new PipelineValidationError(code, msg);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * What a value is, for messages ("a string", "an array", ...).
 *
 * @param v The value.
 * @param plainObject The word for a plain object (config files say "a table").
 * @returns An article and a type name.
 */
export function describe(v: unknown, plainObject = "an object"): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date";
  if (isPlainObject(v)) return plainObject;
  switch (typeof v) {
    case "string":
      return "a string";
    case "number":
    case "bigint":
      return "a number";
    case "boolean":
      return "a boolean";
  }
  // TomlDate and other class instances.
  const ctor = (v as { constructor?: { name?: string } }).constructor?.name;
  return ctor && /date/i.test(ctor) ? "a date" : `a ${typeof v}`;
}

function at(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
    ? `${path}.${key}`
    : `${path}[${JSON.stringify(key)}]`;
}

function prefix(path: string): string {
  return path ? `${path}: ` : "";
}

/**
 * Checks a node id, port, input or output name.
 *
 * @param kind What the name is, for messages (`"node id"`, `"port name"`, ...).
 * @param v The value.
 * @param path The JSON path for messages (`""` for builder arguments).
 * @returns The name.
 */
export function checkName(kind: string, v: unknown, path: string): string {
  if (typeof v !== "string") {
    fail(
      "invalid_schema",
      path
        ? `${path}: ${kind} must be a string, got ${describe(v)}`
        : `${kind[0].toUpperCase()}${kind.slice(1)} must be a string, got ${
          describe(v)
        }`,
    );
  }
  if (!NAME_RE.test(v)) {
    fail(
      "invalid_name",
      `${prefix(path)}${
        JSON.stringify(v)
      } is not a valid ${kind}: ${NAME_RULE}`,
    );
  }
  if (kind === "node id" && v === "in") {
    fail(
      "invalid_name",
      `${
        prefix(path)
      }"in" is reserved (pipeline input channels are named in.<input>)`,
    );
  }
  return v;
}

function checkObject(
  v: unknown,
  path: string,
  keys: readonly string[],
  required: readonly string[],
): Record<string, unknown> {
  if (!isPlainObject(v)) {
    fail("invalid_schema", `${path}: must be an object, got ${describe(v)}`);
  }
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) {
      fail("invalid_schema", `${at(path, k)}: unknown key`);
    }
  }
  for (const k of required) {
    if (!(k in v)) fail("invalid_schema", `${at(path, k)}: missing`);
  }
  return v;
}

function checkArray(v: unknown, path: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    fail("invalid_schema", `${path}: must be an array, got ${describe(v)}`);
  }
  return v;
}

function checkPortRef(v: unknown, path: string): PortRef {
  const o = checkObject(v, path, ["node", "port"], ["node", "port"]);
  return {
    node: checkName("node id", o.node, at(path, "node")),
    port: checkName("port name", o.port, at(path, "port")),
  };
}

function checkConfigValue(v: unknown, path: string): ConfigValue {
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) {
      fail("invalid_schema", `${path}: must be a finite number`);
    }
    return v;
  }
  if (Array.isArray(v)) {
    return v.map((x, i) => checkConfigValue(x, at(path, i)));
  }
  if (isPlainObject(v)) return checkConfig(v, path);
  return fail(
    "invalid_schema",
    `${path}: ${
      describe(v)
    } is not allowed (config values are strings, numbers, booleans, arrays and tables)`,
  );
}

/**
 * Checks a node config table and returns a deep copy.
 *
 * @param v The value.
 * @param path The JSON path for messages.
 * @returns The copy.
 */
export function checkConfig(v: unknown, path: string): NodeConfig {
  if (!isPlainObject(v)) {
    fail("invalid_schema", `${path}: must be an object, got ${describe(v)}`);
  }
  // A fresh object with a normal prototype: also a deep copy.
  const out: NodeConfig = {};
  for (const [k, x] of Object.entries(v)) {
    Object.defineProperty(out, k, {
      value: checkConfigValue(x, at(path, k)),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * Checks a non-empty string (a node type).
 *
 * @param v The value.
 * @param path The JSON path for messages.
 * @returns The string.
 */
export function checkNonEmptyString(v: unknown, path: string): string {
  if (typeof v !== "string") {
    fail("invalid_schema", `${path}: must be a string, got ${describe(v)}`);
  }
  if (v.length === 0) fail("invalid_schema", `${path}: must not be empty`);
  return v;
}

/** The restart policies a node may have. */
const RESTART_POLICIES = ["never", "on-failure", "always"] as const;

function checkNumber(
  v: unknown,
  path: string,
  rule: { min: number; exclusive?: boolean; integer?: boolean },
): number {
  const ok = typeof v === "number" && Number.isFinite(v) &&
    (rule.exclusive ? v > rule.min : v >= rule.min) &&
    (!rule.integer || Number.isInteger(v));
  if (!ok) {
    const what = rule.integer ? "an integer" : "a number";
    const bound = rule.exclusive ? `> ${rule.min}` : `>= ${rule.min}`;
    fail(
      "invalid_schema",
      `${path}: must be ${what} ${bound}, got ${
        typeof v === "number" ? v : describe(v)
      }`,
    );
  }
  return v as number;
}

/** The supervision keys of a node, as written in a pipeline file. */
export type NodeSupervision = Pick<
  NodeDefinition,
  "restart" | "process_timeout_secs" | "ping_timeout_secs"
>;

/**
 * Checks a node's `restart`, `process_timeout_secs` and `ping_timeout_secs`.
 *
 * @param no The node object (other keys are ignored).
 * @param p The node's JSON path (`""` for builder arguments).
 * @returns The keys that are present, checked.
 */
export function checkSupervision(
  no: Record<string, unknown>,
  p: string,
): NodeSupervision {
  const key = (k: string) => p ? at(p, k) : k;
  const out: NodeSupervision = {};
  if (no.restart !== undefined) {
    const path = key("restart");
    const r = checkObject(no.restart, path, [
      "policy",
      "max_restarts",
      "window_secs",
      "backoff_ms",
    ], ["policy"]);
    if (!RESTART_POLICIES.includes(r.policy as RestartPolicy["policy"])) {
      fail(
        "invalid_schema",
        `${at(path, "policy")}: must be one of ${
          RESTART_POLICIES.map((x) => `"${x}"`).join(", ")
        }, got ${
          typeof r.policy === "string"
            ? JSON.stringify(r.policy)
            : describe(r.policy)
        }`,
      );
    }
    const policy: RestartPolicy = {
      policy: r.policy as RestartPolicy["policy"],
    };
    if (r.max_restarts !== undefined) {
      policy.max_restarts = checkNumber(
        r.max_restarts,
        at(path, "max_restarts"),
        { min: 0, integer: true },
      );
    }
    if (r.window_secs !== undefined) {
      policy.window_secs = checkNumber(r.window_secs, at(path, "window_secs"), {
        min: 0,
        exclusive: true,
      });
    }
    if (r.backoff_ms !== undefined) {
      policy.backoff_ms = checkNumber(r.backoff_ms, at(path, "backoff_ms"), {
        min: 0,
      });
    }
    out.restart = policy;
  }
  if (no.process_timeout_secs !== undefined) {
    out.process_timeout_secs = checkNumber(
      no.process_timeout_secs,
      key("process_timeout_secs"),
      { min: 0, exclusive: true },
    );
  }
  if (no.ping_timeout_secs !== undefined) {
    out.ping_timeout_secs = checkNumber(
      no.ping_timeout_secs,
      key("ping_timeout_secs"),
      { min: 0 },
    );
  }
  return out;
}

/** The keys of a node in a pipeline file. */
const NODE_KEYS = [
  "id",
  "type",
  "config",
  "env",
  "host",
  "restart",
  "process_timeout_secs",
  "ping_timeout_secs",
];

function checkNodes(v: unknown): NodeDefinition[] {
  return checkArray(v, "$.nodes").map((n, i) => {
    const p = at("$.nodes", i);
    const no = checkObject(n, p, NODE_KEYS, ["id", "type"]);
    return {
      id: checkName("node id", no.id, at(p, "id")),
      type: checkNonEmptyString(no.type, at(p, "type")),
      config: no.config === undefined
        ? {}
        : checkConfig(no.config, at(p, "config")),
      ...(no.env === undefined
        ? {}
        : { env: checkName("environment name", no.env, at(p, "env")) }),
      ...(no.host === undefined
        ? {}
        : { host: checkName("host name", no.host, at(p, "host")) }),
      ...checkSupervision(no, p),
    };
  });
}

function checkConnections(v: unknown): ConnectionDefinition[] {
  return checkArray(v, "$.connections").map((c, i) => {
    const p = at("$.connections", i);
    const co = checkObject(c, p, ["from", "to"], ["from", "to"]);
    return {
      from: checkPortRef(co.from, at(p, "from")),
      to: checkPortRef(co.to, at(p, "to")),
    };
  });
}

function checkInputs(v: unknown): InputDefinition[] {
  return checkArray(v, "$.inputs").map((x, i) => {
    const p = at("$.inputs", i);
    const io = checkObject(x, p, ["name", "to"], ["name", "to"]);
    const name = checkName("input name", io.name, at(p, "name"));
    const to = checkArray(io.to, at(p, "to"));
    if (to.length === 0) {
      fail("invalid_schema", `${at(p, "to")}: must not be empty`);
    }
    return {
      name,
      to: to.map((t, j) => checkPortRef(t, at(at(p, "to"), j))),
    };
  });
}

function checkOutputs(v: unknown): OutputDefinition[] {
  return checkArray(v, "$.outputs").map((x, i) => {
    const p = at("$.outputs", i);
    const oo = checkObject(x, p, ["name", "from"], ["name", "from"]);
    return {
      name: checkName("output name", oo.name, at(p, "name")),
      from: checkPortRef(oo.from, at(p, "from")),
    };
  });
}

/**
 * Checks the shape of a parsed definition and returns a normalized copy.
 *
 * @param raw The parsed JSON or TOML value.
 * @returns The definition.
 */
export function checkDefinition(raw: unknown): PipelineDefinition {
  const o = checkObject(raw, "$", TOP_KEYS, ["version"]);
  if (o.version !== PIPELINE_VERSION) {
    fail(
      "invalid_schema",
      `$.version: must be ${PIPELINE_VERSION}, got ${
        typeof o.version === "number" ? o.version : describe(o.version)
      }`,
    );
  }
  if (o.name !== undefined && typeof o.name !== "string") {
    fail("invalid_schema", `$.name: must be a string, got ${describe(o.name)}`);
  }
  const def: PipelineDefinition = {
    version: 1,
    nodes: checkNodes(o.nodes),
    connections: checkConnections(o.connections),
    inputs: checkInputs(o.inputs),
    outputs: checkOutputs(o.outputs),
  };
  if (o.name !== undefined) def.name = o.name as string;
  for (const key of ["modules", "module_paths"] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || !x)) {
      fail(
        "invalid_schema",
        `$.${key}: must be an array of non-empty strings, got ${describe(v)}`,
      );
    }
    def[key] = [...v as string[]];
  }
  return def;
}
