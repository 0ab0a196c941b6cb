/**
 * The {@linkcode Pipeline} class: the builder and model of nodes, connections,
 * named pipeline inputs and outputs. It checks builder arguments itself and
 * delegates the graph rules to `validate.ts`, the channel graph to `graph.ts`
 * and loading/saving as JSON or TOML to `io.ts` (one schema: see
 * docs/pipeline-schema.md; import it from `mod.ts`).
 *
 * @module
 */

import {
  checkConfig,
  checkName,
  checkNonEmptyString,
  checkSupervision,
} from "./_shape.ts";
import { definitionToToml } from "./_toml_writer.ts";
import {
  channels,
  inputChannels,
  nodePorts,
  type PipelineGraph,
  topologicalOrder,
} from "./graph.ts";
import {
  definitionFromJson,
  definitionFromToml,
  loadDefinition,
  saveDefinition,
} from "./io.ts";
import type {
  AddNodeOptions,
  ConnectionDefinition,
  InputChannel,
  InputDefinition,
  NodeConfig,
  NodeDefinition,
  NodePorts,
  OutputDefinition,
  PipelineChannel,
  PipelineDefinition,
  ValidateOptions,
} from "./schema.ts";
import { validateGraph } from "./validate.ts";

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
   * @param options The node's Python environment (`env`), host (`host`),
   * restart policy and health bounds.
   * @returns This pipeline, for chaining.
   *
   * @example
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("vad", "vad", { threshold: 0.5 });
   * ```
   *
   * @example A node on another host (`[multiprocess.hosts.gpu]` in runtime.toml)
   * ```ts
   * import { Pipeline } from "@remotemedia/multiprocess/pipeline";
   * const p = new Pipeline().addNode("asr", "asr", {}, { host: "gpu" });
   * console.log(p.toJSON().nodes[0].host); // "gpu"
   * ```
   */
  addNode(
    type: string,
    id: string,
    config: NodeConfig = {},
    options: AddNodeOptions = {},
  ): this {
    this.#nodes.push({
      id: checkName("node id", id, ""),
      type: checkNonEmptyString(type, "node type"),
      config: checkConfig(config, "config"),
      ...(options.env === undefined
        ? {}
        : { env: checkName("environment name", options.env, "env") }),
      ...(options.host === undefined
        ? {}
        : { host: checkName("host name", options.host, "host") }),
      ...checkSupervision({
        restart: options.restart && {
          policy: options.restart.policy,
          max_restarts: options.restart.maxRestarts,
          window_secs: options.restart.windowSecs,
          backoff_ms: options.restart.backoffMs,
        },
        process_timeout_secs: options.processTimeoutSecs,
        ping_timeout_secs: options.pingTimeoutSecs,
      }, ""),
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
    validateGraph(this.#graph(), options.registry);
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
    return topologicalOrder(this.#graph());
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
    return channels(this.#graph());
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
    return inputChannels(this.#graph());
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
    return nodePorts(this.#graph(), nodeId);
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
        ...(n.env === undefined ? {} : { env: n.env }),
        ...(n.host === undefined ? {} : { host: n.host }),
        ...(n.restart === undefined ? {} : { restart: { ...n.restart } }),
        ...(n.process_timeout_secs === undefined
          ? {}
          : { process_timeout_secs: n.process_timeout_secs }),
        ...(n.ping_timeout_secs === undefined
          ? {}
          : { ping_timeout_secs: n.ping_timeout_secs }),
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
    return Pipeline.#fromDefinition(definitionFromJson(def));
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
    return Pipeline.#fromDefinition(definitionFromToml(text));
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
    return Pipeline.#fromDefinition(await loadDefinition(path));
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
    await saveDefinition(path, this.toJSON());
  }

  /** The internal lists, read by the graph and validation functions. */
  #graph(): PipelineGraph {
    return {
      nodes: this.#nodes,
      connections: this.#connections,
      inputs: this.#inputs,
      outputs: this.#outputs,
    };
  }

  /** A pipeline holding a shape-checked definition (taken, not copied). */
  static #fromDefinition(d: PipelineDefinition): Pipeline {
    const p = new Pipeline(d.name);
    p.#nodes = d.nodes;
    p.#connections = d.connections;
    p.#inputs = d.inputs;
    p.#outputs = d.outputs;
    return p;
  }
}
