/**
 * The pipeline builder: nodes, connections, named pipeline inputs and outputs,
 * validation before anything is spawned, and loading/saving as JSON or TOML
 * with one schema (see docs/pipeline-schema.md; the Python package
 * `remotemedia_multiprocess.pipeline` implements the same schema, rules and
 * messages).
 *
 * @example Build, validate and save a pipeline
 * ```ts
 * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
 *
 * const p = new Pipeline("voice")
 *   .addNode("vad", "vad", { threshold: 0.5 })
 *   .addNode("whisper_like", "asr")
 *   .connect("vad", "out", "asr", "in")
 *   .addInput("audio", "vad", "in")
 *   .addOutput("text", "asr", "out");
 * p.validate();
 * console.log(p.toToml());
 * ```
 *
 * @module
 */

import { parse as parseToml, TomlError } from "smol-toml";
import { missingPermission, PipelineValidationError } from "../errors.ts";

/** A value allowed in a node's `config`: what both JSON and TOML can hold. */
export type ConfigValue =
  | string
  | number
  | boolean
  | ConfigValue[]
  | { [key: string]: ConfigValue };

/** A node's configuration table. */
export type NodeConfig = { [key: string]: ConfigValue };

/** One port of one node. */
export interface PortRef {
  /** The node id. */
  node: string;
  /** The port name. */
  port: string;
}

/** A node of a {@linkcode PipelineDefinition}. */
export interface NodeDefinition {
  /** Unique id within the pipeline. */
  id: string;
  /** The registered node type the runner imports. */
  type: string;
  /** Passed to the node unchanged. */
  config: NodeConfig;
}

/** A connection from a node's output port to a node's input port. */
export interface ConnectionDefinition {
  /** The output port that is read. */
  from: PortRef;
  /** The input port that is fed. */
  to: PortRef;
}

/** A named pipeline input, fed by the Deno process. */
export interface InputDefinition {
  /** The input name (unique among inputs). */
  name: string;
  /** The input ports it feeds (several: fan-out of one shared sample). */
  to: PortRef[];
}

/** A named pipeline output, read by the Deno process. */
export interface OutputDefinition {
  /** The output name (unique among outputs). */
  name: string;
  /** The node output port it reads. */
  from: PortRef;
}

/** The serialized form of a pipeline (schema version 1). */
export interface PipelineDefinition {
  /** Schema version; always 1. */
  version: 1;
  /** Optional pipeline name. */
  name?: string;
  /** The nodes, in definition order. */
  nodes: NodeDefinition[];
  /** Node-to-node connections. */
  connections: ConnectionDefinition[];
  /** Pipeline inputs. */
  inputs: InputDefinition[];
  /** Pipeline outputs. */
  outputs: OutputDefinition[];
}

/** The ports of a registered node type, as the runner's `--list-types` reports them. */
export interface NodeTypeInfo {
  /** Input port names. */
  inputs: readonly string[];
  /** Output port names. */
  outputs: readonly string[];
}

/** A node type registry: type name to its ports. */
export type NodeRegistry =
  | ReadonlyMap<string, NodeTypeInfo>
  | Readonly<Record<string, NodeTypeInfo>>;

/** Options for {@linkcode Pipeline.prototype.validate}. */
export interface ValidateOptions {
  /**
   * The node types the runner can import, with their ports. When given,
   * unknown node types and unknown ports are errors, and a node whose type has
   * no input ports (a source) needs no pipeline input to be reachable. When
   * omitted, those checks are skipped.
   *
   * @default {undefined}
   */
  registry?: NodeRegistry;
}

/** One data channel: a node output port that something reads. */
export interface PipelineChannel {
  /** The channel name, `<node id>.<port>`. */
  name: string;
  /** The output port that publishes into it. */
  source: PortRef;
  /** The node input ports that read it (fan-out), in connection order. */
  readers: PortRef[];
  /** The pipeline outputs that read it. */
  outputs: string[];
  /** True when the Deno process reads it (it is a pipeline output). */
  denoReads: boolean;
}

/** The channel of one pipeline input, published by the Deno process. */
export interface InputChannel {
  /** The channel name, `in.<input name>`. */
  name: string;
  /** The pipeline input name. */
  input: string;
  /** The node input ports that read it (fan-out). */
  readers: PortRef[];
}

/** The channels of one node, in the shape of the runner spec's `inputs`/`outputs`. */
export interface NodePorts {
  /** Input port to the channels it reads (several: fan-in). */
  inputs: Record<string, string[]>;
  /** Output port to the one channel it publishes (only ports something reads). */
  outputs: Record<string, string>;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const NAME_RULE =
  'use letters, digits, "_" and "-", starting with a letter or "_", at most 64 characters';
const TOP_KEYS = [
  "version",
  "name",
  "nodes",
  "connections",
  "inputs",
  "outputs",
];

function fail(code: "invalid_schema" | "invalid_name", msg: string): never {
  throw new PipelineValidationError(code, msg);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date";
  if (isPlainObject(v)) return "an object";
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

function checkName(kind: string, v: unknown, path: string): string {
  if (typeof v !== "string") {
    fail(
      "invalid_schema",
      `${prefix(path)}${kind} must be a string, got ${describe(v)}`,
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

function checkConfig(v: unknown, path: string): NodeConfig {
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

function checkNonEmptyString(v: unknown, path: string): string {
  if (typeof v !== "string") {
    fail("invalid_schema", `${path}: must be a string, got ${describe(v)}`);
  }
  if (v.length === 0) fail("invalid_schema", `${path}: must not be empty`);
  return v;
}

/** Checks the shape of a parsed definition and returns a normalized copy. */
function checkDefinition(raw: unknown): PipelineDefinition {
  const o = checkObject(raw, "$", TOP_KEYS, ["version"]);
  if (o.version !== 1) {
    fail(
      "invalid_schema",
      `$.version: must be 1, got ${
        typeof o.version === "number" ? o.version : describe(o.version)
      }`,
    );
  }
  const def: PipelineDefinition = {
    version: 1,
    nodes: [],
    connections: [],
    inputs: [],
    outputs: [],
  };
  if (o.name !== undefined) {
    if (typeof o.name !== "string") {
      fail(
        "invalid_schema",
        `$.name: must be a string, got ${describe(o.name)}`,
      );
    }
    def.name = o.name;
  }
  checkArray(o.nodes, "$.nodes").forEach((n, i) => {
    const p = at("$.nodes", i);
    const no = checkObject(n, p, ["id", "type", "config"], ["id", "type"]);
    def.nodes.push({
      id: checkName("node id", no.id, at(p, "id")),
      type: checkNonEmptyString(no.type, at(p, "type")),
      config: no.config === undefined
        ? {}
        : checkConfig(no.config, at(p, "config")),
    });
  });
  checkArray(o.connections, "$.connections").forEach((c, i) => {
    const p = at("$.connections", i);
    const co = checkObject(c, p, ["from", "to"], ["from", "to"]);
    def.connections.push({
      from: checkPortRef(co.from, at(p, "from")),
      to: checkPortRef(co.to, at(p, "to")),
    });
  });
  checkArray(o.inputs, "$.inputs").forEach((x, i) => {
    const p = at("$.inputs", i);
    const io = checkObject(x, p, ["name", "to"], ["name", "to"]);
    const name = checkName("input name", io.name, at(p, "name"));
    const to = checkArray(io.to, at(p, "to"));
    if (to.length === 0) {
      fail("invalid_schema", `${at(p, "to")}: must not be empty`);
    }
    def.inputs.push({
      name,
      to: to.map((t, j) => checkPortRef(t, at(at(p, "to"), j))),
    });
  });
  checkArray(o.outputs, "$.outputs").forEach((x, i) => {
    const p = at("$.outputs", i);
    const oo = checkObject(x, p, ["name", "from"], ["name", "from"]);
    def.outputs.push({
      name: checkName("output name", oo.name, at(p, "name")),
      from: checkPortRef(oo.from, at(p, "from")),
    });
  });
  return def;
}

// ---- TOML writer (the same algorithm as the Python writer, so both sides
// write byte-identical files for the same definition, floats aside).

function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (c === 8) out += "\\b";
    else if (c === 9) out += "\\t";
    else if (c === 10) out += "\\n";
    else if (c === 12) out += "\\f";
    else if (c === 13) out += "\\r";
    else if (c < 0x20 || c === 0x7f) {
      out += "\\u" + c.toString(16).toUpperCase().padStart(4, "0");
    } else out += ch;
  }
  return out + '"';
}

function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

function tomlValue(v: ConfigValue): string {
  if (typeof v === "string") return tomlString(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    // JS has one number type: integral values are written as TOML integers.
    if (Number.isInteger(v) && Math.abs(v) < 2 ** 63) {
      return BigInt(v).toString();
    }
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  const entries = Object.entries(v);
  if (entries.length === 0) return "{}";
  return `{ ${
    entries.map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`).join(", ")
  } }`;
}

function tomlPortRef(r: PortRef): string {
  return `{ node = ${tomlString(r.node)}, port = ${tomlString(r.port)} }`;
}

function definitionToToml(def: PipelineDefinition): string {
  const lines = ["version = 1"];
  if (def.name !== undefined) lines.push(`name = ${tomlString(def.name)}`);
  for (const n of def.nodes) {
    lines.push("", "[[nodes]]", `id = ${tomlString(n.id)}`);
    lines.push(`type = ${tomlString(n.type)}`);
    const entries = Object.entries(n.config);
    if (entries.length > 0) {
      lines.push("", "[nodes.config]");
      for (const [k, v] of entries) {
        lines.push(`${tomlKey(k)} = ${tomlValue(v)}`);
      }
    }
  }
  for (const c of def.connections) {
    lines.push("", "[[connections]]");
    lines.push(`from = ${tomlPortRef(c.from)}`, `to = ${tomlPortRef(c.to)}`);
  }
  for (const i of def.inputs) {
    lines.push("", "[[inputs]]", `name = ${tomlString(i.name)}`);
    lines.push(`to = [${i.to.map(tomlPortRef).join(", ")}]`);
  }
  for (const o of def.outputs) {
    lines.push("", "[[outputs]]", `name = ${tomlString(o.name)}`);
    lines.push(`from = ${tomlPortRef(o.from)}`);
  }
  return lines.join("\n") + "\n";
}

function portKey(r: PortRef): string {
  return `${r.node}.${r.port}`;
}

function listOrNone(xs: readonly string[]): string {
  return xs.length > 0 ? xs.join(", ") : "none";
}

function lookupType(
  registry: NodeRegistry,
  type: string,
): NodeTypeInfo | undefined {
  if (registry instanceof Map) return registry.get(type);
  const rec = registry as Readonly<Record<string, NodeTypeInfo>>;
  return Object.hasOwn(rec, type) ? rec[type] : undefined;
}

function registryTypes(registry: NodeRegistry): string[] {
  return registry instanceof Map
    ? [...registry.keys()]
    : Object.keys(registry as Record<string, NodeTypeInfo>);
}

function extensionOf(path: string | URL): "json" | "toml" {
  const s = path instanceof URL ? path.pathname : path;
  const m = /\.([A-Za-z]+)$/.exec(s);
  const ext = m?.[1].toLowerCase();
  if (ext === "json" || ext === "toml") return ext;
  throw new TypeError(
    `Cannot tell the pipeline format of "${
      String(path)
    }": use a .json or .toml file`,
  );
}

/**
 * A pipeline of Python nodes with named inputs and outputs.
 *
 * Builder methods check names and argument shapes at once (invalid names are a
 * `PipelineValidationError` with code `"invalid_name"`); the graph rules
 * (duplicate ids, unknown nodes, types and ports, cycles, unreachable nodes)
 * are checked by {@linkcode Pipeline.prototype.validate}.
 *
 * @example Fan-out and fan-in
 * ```ts
 * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
 *
 * const p = new Pipeline()
 *   .addNode("resample", "rs")
 *   .addNode("vad", "vad")
 *   .addNode("asr", "asr")
 *   .addNode("mix", "mix")
 *   .addInput("audio", "rs", "in")
 *   .connect("rs", "out", "vad", "in") // fan-out: rs.out is read twice
 *   .connect("rs", "out", "asr", "in")
 *   .connect("vad", "out", "mix", "in") // fan-in: mix.in has two sources
 *   .connect("asr", "out", "mix", "in")
 *   .addOutput("mixed", "mix", "out");
 * p.validate();
 * console.log(p.channels().map((c) => c.name)); // ["rs.out", "vad.out", "asr.out", "mix.out"]
 * ```
 */
export class Pipeline {
  #name?: string;
  #nodes: NodeDefinition[] = [];
  #connections: ConnectionDefinition[] = [];
  #inputs: InputDefinition[] = [];
  #outputs: OutputDefinition[] = [];

  /**
   * Creates an empty pipeline.
   *
   * @param name Optional pipeline name (saved with it).
   */
  constructor(name?: string) {
    if (name !== undefined && typeof name !== "string") {
      throw new TypeError("The pipeline name must be a string");
    }
    this.#name = name;
  }

  /**
   * The pipeline name, if any.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * console.log(new Pipeline("voice").name); // "voice"
   * ```
   */
  get name(): string | undefined {
    return this.#name;
  }

  /**
   * Adds a node.
   *
   * @param type The registered node type.
   * @param id The node id, unique in the pipeline (letters, digits, `_`, `-`).
   * @param config The node's configuration (deep-copied).
   * @returns This pipeline, for chaining.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("vad", "vad", { threshold: 0.5 });
   * ```
   */
  addNode(type: string, id: string, config: NodeConfig = {}): this {
    this.#nodes.push({
      id: checkName("node id", id, ""),
      type: checkNonEmptyString(type, "node type"),
      config: checkConfig(config, "config"),
    });
    return this;
  }

  /**
   * Connects a node output port to a node input port. An output port may be
   * read by several nodes (fan-out: they share each sample, nothing is
   * copied), and an input port may have several sources (fan-in).
   *
   * @param fromNode The node that publishes.
   * @param fromPort Its output port.
   * @param toNode The node that reads.
   * @param toPort Its input port.
   * @returns This pipeline, for chaining.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("a", "a").addNode("b", "b")
   *   .connect("a", "out", "b", "in");
   * ```
   */
  connect(
    fromNode: string,
    fromPort: string,
    toNode: string,
    toPort: string,
  ): this {
    this.#connections.push({
      from: {
        node: checkName("node id", fromNode, ""),
        port: checkName("port name", fromPort, ""),
      },
      to: {
        node: checkName("node id", toNode, ""),
        port: checkName("port name", toPort, ""),
      },
    });
    return this;
  }

  /**
   * Declares a pipeline input feeding a node input port. Calling it again with
   * the same name adds another reader of the same input (fan-out: every
   * reader gets the same shared sample).
   *
   * @param name The input name.
   * @param toNode The node that reads it.
   * @param toPort Its input port.
   * @returns This pipeline, for chaining.
   *
   * @example One input read by two nodes
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("vad", "vad").addNode("asr", "asr")
   *   .addInput("audio", "vad", "in")
   *   .addInput("audio", "asr", "in");
   * console.log(p.inputChannels()[0].readers.length); // 2
   * ```
   */
  addInput(name: string, toNode: string, toPort: string): this {
    checkName("input name", name, "");
    const ref = {
      node: checkName("node id", toNode, ""),
      port: checkName("port name", toPort, ""),
    };
    const existing = this.#inputs.find((i) => i.name === name);
    if (existing) existing.to.push(ref);
    else this.#inputs.push({ name, to: [ref] });
    return this;
  }

  /**
   * Declares a pipeline output reading a node output port.
   *
   * @param name The output name (unique among outputs).
   * @param fromNode The node that publishes it.
   * @param fromPort Its output port.
   * @returns This pipeline, for chaining.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("asr", "asr")
   *   .addInput("audio", "asr", "in")
   *   .addOutput("text", "asr", "out");
   * ```
   */
  addOutput(name: string, fromNode: string, fromPort: string): this {
    this.#outputs.push({
      name: checkName("output name", name, ""),
      from: {
        node: checkName("node id", fromNode, ""),
        port: checkName("port name", fromPort, ""),
      },
    });
    return this;
  }

  /**
   * Checks the graph rules, in this order, and throws the first broken one as
   * a `PipelineValidationError`: `duplicate_id`, `duplicate_name`,
   * `unknown_node`, `unknown_node_type` and `unknown_port` (only with a
   * registry), `duplicate_connection`, `cycle`, `unreachable_node`.
   *
   * @param options The node registry, if known.
   * @throws {PipelineValidationError} When a rule is broken.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("asr", "asr").addInput("audio", "asr", "in");
   * p.validate({ registry: new Map([["asr", { inputs: ["in"], outputs: ["out"] }]]) });
   * ```
   */
  validate(options: ValidateOptions = {}): void {
    const { registry } = options;
    const byId = new Map<string, NodeDefinition>();
    for (const n of this.#nodes) {
      if (byId.has(n.id)) {
        throw new PipelineValidationError(
          "duplicate_id",
          `node id "${n.id}" is used by more than one node`,
          { nodeId: n.id },
        );
      }
      byId.set(n.id, n);
    }
    for (
      const [kind, list] of [["input", this.#inputs], [
        "output",
        this.#outputs,
      ]] as const
    ) {
      const seen = new Set<string>();
      for (const x of list) {
        if (seen.has(x.name)) {
          throw new PipelineValidationError(
            "duplicate_name",
            `pipeline ${kind} name "${x.name}" is declared more than once`,
          );
        }
        seen.add(x.name);
      }
    }

    // Every reference, with a label for messages and the direction of the port.
    const refs: { label: string; ref: PortRef; dir: "input" | "output" }[] = [];
    for (const c of this.#connections) {
      const label = `connection ${portKey(c.from)} -> ${portKey(c.to)}`;
      refs.push({ label, ref: c.from, dir: "output" });
      refs.push({ label, ref: c.to, dir: "input" });
    }
    for (const i of this.#inputs) {
      for (const t of i.to) {
        refs.push({
          label: `pipeline input "${i.name}"`,
          ref: t,
          dir: "input",
        });
      }
    }
    for (const o of this.#outputs) {
      refs.push({
        label: `pipeline output "${o.name}"`,
        ref: o.from,
        dir: "output",
      });
    }
    for (const { label, ref } of refs) {
      if (!byId.has(ref.node)) {
        throw new PipelineValidationError(
          "unknown_node",
          `${label}: no node "${ref.node}"`,
          { nodeId: ref.node },
        );
      }
    }

    if (registry) {
      for (const n of this.#nodes) {
        if (!lookupType(registry, n.type)) {
          throw new PipelineValidationError(
            "unknown_node_type",
            `node "${n.id}": type "${n.type}" is not in the registry (known types: ${
              listOrNone(registryTypes(registry).sort())
            })`,
            { nodeId: n.id },
          );
        }
      }
      for (const { label, ref, dir } of refs) {
        const type = byId.get(ref.node)!.type;
        const ports = dir === "input"
          ? lookupType(registry, type)!.inputs
          : lookupType(registry, type)!.outputs;
        if (!ports.includes(ref.port)) {
          throw new PipelineValidationError(
            "unknown_port",
            `${label}: node "${ref.node}" (type "${type}") has no ${dir} port "${ref.port}" (${dir}s: ${
              listOrNone(ports)
            })`,
            { nodeId: ref.node },
          );
        }
      }
    }

    const seenConn = new Set<string>();
    for (const c of this.#connections) {
      const key = `${portKey(c.from)} -> ${portKey(c.to)}`;
      if (seenConn.has(key)) {
        throw new PipelineValidationError(
          "duplicate_connection",
          `connection ${key} is declared more than once`,
          { nodeId: c.to.node },
        );
      }
      seenConn.add(key);
    }
    for (const i of this.#inputs) {
      const seen = new Set<string>();
      for (const t of i.to) {
        if (seen.has(portKey(t))) {
          throw new PipelineValidationError(
            "duplicate_connection",
            `pipeline input "${i.name}" feeds ${portKey(t)} more than once`,
            { nodeId: t.node },
          );
        }
        seen.add(portKey(t));
      }
    }

    const cycle = this.#findCycle();
    if (cycle) {
      throw new PipelineValidationError(
        "cycle",
        `nodes form a cycle: ${cycle.join(" -> ")}`,
        { nodeId: cycle[0] },
      );
    }

    const unreachable = this.#unreachable(registry);
    if (unreachable.length > 0) {
      throw new PipelineValidationError(
        "unreachable_node",
        `no pipeline input reaches these nodes: ${unreachable.join(", ")}`,
        { nodeId: unreachable[0] },
      );
    }
  }

  #adjacency(): Map<string, string[]> {
    const adj = new Map<string, string[]>();
    for (const n of this.#nodes) if (!adj.has(n.id)) adj.set(n.id, []);
    for (const c of this.#connections) {
      const next = adj.get(c.from.node);
      if (next && adj.has(c.to.node) && !next.includes(c.to.node)) {
        next.push(c.to.node);
      }
    }
    return adj;
  }

  #findCycle(): string[] | undefined {
    const adj = this.#adjacency();
    const state = new Map<string, 1 | 2>(); // 1: on the stack, 2: done
    const stack: string[] = [];
    const visit = (u: string): string[] | undefined => {
      state.set(u, 1);
      stack.push(u);
      for (const v of adj.get(u)!) {
        const s = state.get(v);
        if (s === 1) return [...stack.slice(stack.indexOf(v)), v];
        if (s === undefined) {
          const found = visit(v);
          if (found) return found;
        }
      }
      stack.pop();
      state.set(u, 2);
      return undefined;
    };
    for (const id of adj.keys()) {
      if (!state.has(id)) {
        const found = visit(id);
        if (found) return found;
      }
    }
    return undefined;
  }

  #unreachable(registry?: NodeRegistry): string[] {
    const adj = this.#adjacency();
    const seen = new Set<string>();
    const queue: string[] = [];
    const reach = (id: string): void => {
      if (!seen.has(id) && adj.has(id)) {
        seen.add(id);
        queue.push(id);
      }
    };
    for (const i of this.#inputs) for (const t of i.to) reach(t.node);
    if (registry) {
      // Source nodes (types without input ports) produce data on their own.
      for (const n of this.#nodes) {
        if (lookupType(registry, n.type)?.inputs.length === 0) reach(n.id);
      }
    }
    while (queue.length > 0) for (const v of adj.get(queue.shift()!)!) reach(v);
    return [...adj.keys()].filter((id) => !seen.has(id));
  }

  /**
   * The node ids in an order where every node comes after the nodes it reads
   * from (ties in definition order). Call {@linkcode Pipeline.prototype.validate}
   * first: with a cycle, the nodes on it are left out.
   *
   * @returns Node ids.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("b", "b").addNode("a", "a")
   *   .connect("a", "out", "b", "in");
   * console.log(p.topologicalOrder()); // ["a", "b"]
   * ```
   */
  topologicalOrder(): string[] {
    const adj = this.#adjacency();
    const indeg = new Map<string, number>();
    for (const id of adj.keys()) indeg.set(id, 0);
    for (const next of adj.values()) {
      for (const v of next) indeg.set(v, indeg.get(v)! + 1);
    }
    const order: string[] = [];
    const done = new Set<string>();
    let progress = true;
    while (progress) {
      progress = false;
      for (const id of adj.keys()) {
        if (!done.has(id) && indeg.get(id) === 0) {
          done.add(id);
          order.push(id);
          for (const v of adj.get(id)!) indeg.set(v, indeg.get(v)! - 1);
          progress = true;
          break;
        }
      }
    }
    return order;
  }

  /**
   * The data channels between processes: one per node output port that a node
   * or a pipeline output reads, in order of first use (connections first, then
   * outputs). Data between two Python nodes never passes through Deno: Deno
   * reads a channel only when `denoReads` is true.
   *
   * @returns The channels.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("a", "a").addNode("b", "b")
   *   .addInput("x", "a", "in")
   *   .connect("a", "out", "b", "in")
   *   .addOutput("y", "b", "out");
   * for (const c of p.channels()) console.log(c.name, c.denoReads);
   * // a.out false
   * // b.out true
   * ```
   */
  channels(): PipelineChannel[] {
    const byKey = new Map<string, PipelineChannel>();
    const get = (r: PortRef): PipelineChannel => {
      const key = portKey(r);
      let c = byKey.get(key);
      if (!c) {
        c = {
          name: key,
          source: { ...r },
          readers: [],
          outputs: [],
          denoReads: false,
        };
        byKey.set(key, c);
      }
      return c;
    };
    for (const c of this.#connections) get(c.from).readers.push({ ...c.to });
    for (const o of this.#outputs) {
      const c = get(o.from);
      c.outputs.push(o.name);
      c.denoReads = true;
    }
    return [...byKey.values()];
  }

  /**
   * The channels of the pipeline inputs, which the Deno process publishes.
   *
   * @returns One channel per input, with its readers.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("a", "a").addInput("audio", "a", "in");
   * console.log(p.inputChannels()[0].name); // "in.audio"
   * ```
   */
  inputChannels(): InputChannel[] {
    return this.#inputs.map((i) => ({
      name: `in.${i.name}`,
      input: i.name,
      readers: i.to.map((t) => ({ ...t })),
    }));
  }

  /**
   * The channels one node reads and writes, in the shape the runner spec
   * expects (`inputs`: port to channels, `outputs`: port to channel).
   *
   * @param nodeId The node.
   * @returns Its ports' channels.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("a", "a").addNode("b", "b")
   *   .addInput("x", "a", "in").connect("a", "out", "b", "in");
   * console.log(p.nodePorts("b")); // { inputs: { in: ["a.out"] }, outputs: {} }
   * ```
   */
  nodePorts(nodeId: string): NodePorts {
    if (!this.#nodes.some((n) => n.id === nodeId)) {
      throw new PipelineValidationError("unknown_node", `no node "${nodeId}"`, {
        nodeId,
      });
    }
    const inputs: Record<string, string[]> = {};
    const outputs: Record<string, string> = {};
    const addIn = (port: string, channel: string): void => {
      (inputs[port] ??= []).includes(channel) || inputs[port].push(channel);
    };
    for (const i of this.#inputs) {
      for (const t of i.to) {
        if (t.node === nodeId) addIn(t.port, `in.${i.name}`);
      }
    }
    for (const c of this.#connections) {
      if (c.to.node === nodeId) addIn(c.to.port, portKey(c.from));
    }
    for (const ch of this.channels()) {
      if (ch.source.node === nodeId) outputs[ch.source.port] = ch.name;
    }
    return { inputs, outputs };
  }

  /**
   * The serialized definition (a deep copy).
   *
   * @returns The definition, schema version 1.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const def = new Pipeline("p").addNode("a", "a").toJSON();
   * console.log(JSON.stringify(def));
   * ```
   */
  toJSON(): PipelineDefinition {
    return {
      version: 1,
      ...(this.#name === undefined ? {} : { name: this.#name }),
      nodes: this.#nodes.map((n) => ({
        id: n.id,
        type: n.type,
        config: structuredClone(n.config),
      })),
      connections: this.#connections.map((c) => ({
        from: { ...c.from },
        to: { ...c.to },
      })),
      inputs: this.#inputs.map((i) => ({
        name: i.name,
        to: i.to.map((t) => ({ ...t })),
      })),
      outputs: this.#outputs.map((o) => ({
        name: o.name,
        from: { ...o.from },
      })),
    };
  }

  /**
   * Builds a pipeline from a definition object or JSON text. Only the schema
   * shape is checked here (`invalid_schema`, `invalid_name`); call
   * {@linkcode Pipeline.prototype.validate} for the graph rules.
   *
   * @param def The definition, or its JSON text.
   * @returns A new pipeline.
   * @throws {PipelineValidationError} `invalid_schema` with the JSON path of the bad field.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = Pipeline.fromJSON('{"version": 1, "nodes": [{"id": "a", "type": "a"}]}');
   * console.log(p.toJSON().nodes[0].config); // {}
   * ```
   */
  static fromJSON(def: unknown): Pipeline {
    let raw = def;
    if (typeof def === "string") {
      try {
        raw = JSON.parse(def);
      } catch (e) {
        throw new PipelineValidationError(
          "invalid_schema",
          `$: invalid JSON: ${(e as Error).message}`,
          { cause: e },
        );
      }
    }
    const d = checkDefinition(raw);
    const p = new Pipeline(d.name);
    p.#nodes = d.nodes;
    p.#connections = d.connections;
    p.#inputs = d.inputs;
    p.#outputs = d.outputs;
    return p;
  }

  /**
   * The definition as TOML (same schema as JSON; see docs/pipeline-schema.md).
   *
   * @returns TOML text.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * console.log(new Pipeline().addNode("a", "a").toToml());
   * ```
   */
  toToml(): string {
    return definitionToToml(this.toJSON());
  }

  /**
   * Builds a pipeline from TOML text (schema shape checked as in
   * {@linkcode Pipeline.fromJSON}).
   *
   * @param text TOML text.
   * @returns A new pipeline.
   * @throws {PipelineValidationError} `invalid_schema` for bad TOML or a bad field.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = Pipeline.fromToml('version = 1\n[[nodes]]\nid = "a"\ntype = "a"\n');
   * ```
   */
  static fromToml(text: string): Pipeline {
    let raw: unknown;
    try {
      raw = parseToml(text);
    } catch (e) {
      if (e instanceof TomlError) {
        throw new PipelineValidationError(
          "invalid_schema",
          `$: invalid TOML at line ${e.line}, column ${e.column}: ${
            e.message.split("\n")[0].replace(/^Invalid TOML document: /, "")
          }`,
          { cause: e },
        );
      }
      throw new PipelineValidationError(
        "invalid_schema",
        `$: invalid TOML: ${(e as Error).message}`,
        { cause: e },
      );
    }
    return Pipeline.fromJSON(raw);
  }

  /**
   * Loads a pipeline from a `.json` or `.toml` file (chosen by extension).
   * Needs `--allow-read`.
   *
   * @param path The file.
   * @returns A new pipeline (shape checked, graph not validated).
   * @throws {MissingPermissionError} Without read permission for the file.
   *
   * @example
   * ```ts ignore
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = await Pipeline.load("pipeline.toml");
   * p.validate();
   * ```
   */
  static async load(path: string | URL): Promise<Pipeline> {
    const ext = extensionOf(path);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw missingPermission(e, `Cannot read the pipeline file "${path}"`) ??
        e;
    }
    return ext === "json" ? Pipeline.fromJSON(text) : Pipeline.fromToml(text);
  }

  /**
   * Saves the pipeline as `.json` (2-space indented) or `.toml`, by extension.
   * Needs `--allow-write`.
   *
   * @param path The file.
   * @throws {MissingPermissionError} Without write permission for the file.
   *
   * @example
   * ```ts ignore
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * await new Pipeline().addNode("a", "a").save("pipeline.json");
   * ```
   */
  async save(path: string | URL): Promise<void> {
    const ext = extensionOf(path);
    const text = ext === "json"
      ? JSON.stringify(this.toJSON(), null, 2) + "\n"
      : this.toToml();
    try {
      await Deno.writeTextFile(path, text);
    } catch (e) {
      throw missingPermission(e, `Cannot write the pipeline file "${path}"`) ??
        e;
    }
  }
}
