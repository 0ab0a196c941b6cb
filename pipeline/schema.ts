/**
 * The pipeline schema (version 1): the serialized definition, its parts, the
 * node type registry and the channel shapes derived from a pipeline. Types
 * only; see docs/pipeline-schema.md.
 *
 * @module
 */

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
  /**
   * The Python environment the node runs in: a name that `runtime.toml` maps
   * to a venv or an executable (`[multiprocess.python.envs.<name>]`). Absent:
   * the default interpreter (`[multiprocess.python]`).
   */
  env?: string;
  /**
   * The host the node runs on: a name that `runtime.toml` maps to a host
   * agent's Zenoh endpoint (`[multiprocess.hosts.<name>]`). Absent, or
   * `"local"`: this host.
   */
  host?: string;
  /** What happens when the node's process ends unexpectedly. Absent: `never`. */
  restart?: RestartPolicy;
  /**
   * A `process()` call running longer is reported (`unhealthy` event) and
   * handled by the restart policy. Absent: no bound.
   */
  process_timeout_secs?: number;
  /**
   * A ready node that answers no control ping for this long is reported and
   * handled by the restart policy; 0 turns pings off. Absent: the runtime
   * config's `ping_timeout_secs`.
   */
  ping_timeout_secs?: number;
}

/** The restart policy of a node (docs/pipeline-schema.md, "Supervision"). */
export interface RestartPolicy {
  /**
   * `never`: the session fails; `on-failure`: the node is restarted when its
   * process ends without being asked to (a crash, a kill, a health check);
   * `always`: also when it exits cleanly on its own.
   */
  policy: "never" | "on-failure" | "always";
  /** Most restarts within `window_secs`; one more fails the session. @default {3} */
  max_restarts?: number;
  /** The window of `max_restarts`, seconds. @default {60} */
  window_secs?: number;
  /**
   * Wait before the first restart, milliseconds; doubled for each further
   * restart within the window, at most 10 s. @default {100}
   */
  backoff_ms?: number;
}

/** Options of {@linkcode Pipeline.prototype.addNode}. */
export interface AddNodeOptions {
  /**
   * The Python environment the node runs in (a name of
   * `[multiprocess.python.envs]`; letters, digits, `_` and `-`).
   *
   * @default {undefined} the default interpreter
   */
  env?: string;
  /**
   * The host the node runs on (a name of `[multiprocess.hosts]`, or
   * `"local"`; letters, digits, `_` and `-`).
   *
   * @default {undefined} this host
   */
  host?: string;
  /**
   * The restart policy (`restart` in the pipeline file).
   *
   * @default {undefined} `never`: the session fails when the node's process ends
   */
  restart?: {
    policy: RestartPolicy["policy"];
    maxRestarts?: number;
    windowSecs?: number;
    backoffMs?: number;
  };
  /**
   * Bound on one `process()` call, seconds (`process_timeout_secs`).
   *
   * @default {undefined} no bound
   */
  processTimeoutSecs?: number;
  /**
   * Bound on a control ping's answer, seconds; 0 turns pings off
   * (`ping_timeout_secs`).
   *
   * @default {undefined} the runtime config's `ping_timeout_secs`
   */
  pingTimeoutSecs?: number;
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
  /** Python modules that register the node types (for the CLI; optional). */
  modules?: string[];
  /** Folders to import them from, relative to the pipeline file (optional). */
  module_paths?: string[];
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
